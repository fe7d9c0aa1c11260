// `sabot nexmark generate` and `sabot bench nexmark`.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "commands.h"
#include "observe_flags.h"
#include "recovery.h"
#include "sabot/codec/json.h"
#include "sabot/nexmark/queries.h"
#include "state_flags.h"

namespace sabot::cli {
namespace {

// The flags that choose the events, shared by both commands.
void add_generator_flags(FlagSet& flags, nexmark::GeneratorConfig* config) {
  flags.add_int("events", &config->events, "number of events (persons, auctions and bids)", 0);
  flags.add_int("rate", &config->rate, "events per second of event time", 1);
  flags.add_uint("seed", &config->seed, "random seed; same seed and flags, same events");
}

std::string_view kind_name(nexmark::EventKind kind) {
  switch (kind) {
    case nexmark::EventKind::kPerson:
      return "person";
    case nexmark::EventKind::kAuction:
      return "auction";
    case nexmark::EventKind::kBid:
      return "bid";
  }
  return "?";
}

// "12.3 M" style, for the text table.
std::string human(double v) {
  char buf[32];
  if (v >= 1e9) {
    std::snprintf(buf, sizeof buf, "%.2f G", v / 1e9);
  } else if (v >= 1e6) {
    std::snprintf(buf, sizeof buf, "%.2f M", v / 1e6);
  } else if (v >= 1e3) {
    std::snprintf(buf, sizeof buf, "%.1f K", v / 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  }
  return buf;
}

// Flink 2.0's published events per core-second (NEXMARK.md), for scale.
std::string_view flink_2_per_core(std::string_view query) {
  static constexpr std::pair<std::string_view, std::string_view> kFigures[] = {
      {"q0", "379 K"}, {"q1", "395 K"}, {"q2", "414 K"}, {"q3", "219 K"},
      {"q4", "28 K"},  {"q5", "75 K"},  {"q7", "23 K"},  {"q8", "162 K"},
  };
  for (const auto& [q, f] : kFigures) {
    if (q == query) return f;
  }
  return "-";
}

struct BenchResult {
  std::string metrics;  // the job's per-operator metrics table
  std::string query;
  int64_t events = 0;
  int64_t rows_out = 0;
  double wall_s = 0;
  double cpu_s = 0;
};

// "out.jsonl" -> "out-q5.jsonl", so that --query all keeps every query's output.
std::string output_path_for(const std::string& path, std::string_view query) {
  const size_t slash = path.find_last_of('/');
  size_t dot = path.find_last_of('.');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash) || dot == 0) {
    dot = path.size();
  }
  std::string out = path.substr(0, dot);
  out += "-";
  out.append(query);
  out += path.substr(dot);
  return out;
}

Result<BenchResult> run_query(const nexmark::QueryInfo& query, const nexmark::QueryConfig& config,
                              const std::string& output, const RecoveryFlags& recovery,
                              const std::string& checkpoint_dir, StateBackendFlags& state_flags) {
  const std::string job_name = std::string("nexmark-").append(query.name);
  EnvironmentOptions options;
  options.parallelism = config.parallelism;
  SABOT_RETURN_IF_ERROR(recovery.apply(checkpoint_dir, job_name, &options));
  SABOT_RETURN_IF_ERROR(state_flags.apply(&options));
  Environment env(std::move(options));
  DataStream result = query.build(env, config);
  DataStream sink = output.empty()
                        ? result.blackhole()
                        : result.to_file({.path = output, .format = FileFormat::kJsonLines});
  sink.name("result").uid("result");
  const double cpu_before = process_cpu_seconds();
  const auto start = std::chrono::steady_clock::now();
  JobResult job = env.execute(job_name);
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double cpu = process_cpu_seconds() - cpu_before;
  if (!job.ok()) return job.status();
  BenchResult r;
  r.query = std::string(query.name);
  r.events = config.generator.events;
  r.rows_out = job.metrics().get("result").records_in;
  r.metrics = job.metrics().to_string();
  r.wall_s = wall;
  r.cpu_s = cpu;
  return r;
}

std::string to_json(const BenchResult& r, const nexmark::QueryConfig& config) {
  std::ostringstream os;
  os.precision(6);
  os << "{\"query\":\"" << r.query << "\",\"events\":" << r.events
     << ",\"rate\":" << config.generator.rate << ",\"seed\":" << config.generator.seed
     << ",\"parallelism\":" << config.parallelism << ",\"rows_out\":" << r.rows_out
     << ",\"wall_s\":" << r.wall_s << ",\"cpu_s\":" << r.cpu_s
     << ",\"events_per_s\":" << std::llround(r.events / std::max(r.wall_s, 1e-9))
     << ",\"events_per_cpu_s\":" << std::llround(r.events / std::max(r.cpu_s, 1e-9)) << "}";
  return os.str();
}

}  // namespace

int nexmark_generate(std::span<const std::string> args) {
  nexmark::GeneratorConfig config;
  config.events = 1000;
  std::string output;
  FlagSet flags(
      "sabot nexmark generate",
      "Writes Nexmark events (NEXMARK.md) as JSON lines, one event per line in event\n"
      "order: a \"kind\" field (person, auction, bid) and the fields of that kind's schema,\n"
      "with date_time and expires as epoch milliseconds. 'sabot bench nexmark' with the same\n"
      "--events, --rate and --seed processes exactly these events.");
  add_generator_flags(flags, &config);
  flags.add_string("output", &output, "write to FILE instead of standard output");
  if (auto code = parse_flags(flags, args)) return *code;

  auto out = OutputFile::open(output);
  if (!out.is_ok()) return fail(out.status().message());
  nexmark::Generator generator(config);
  codec::JsonEncoder encoder;
  std::string text;
  constexpr int64_t kChunk = nexmark::kTotalProportion * 200;
  for (int64_t first = 0; first < config.events; first += kChunk) {
    const int64_t last = std::min(config.events, first + kChunk);
    auto batches = generator.generate(first, last);
    if (!batches.is_ok()) return fail(batches.status().message());
    // Each kind's rows as JSON objects, then merged back into event order.
    columnar::Array objects[3];
    const columnar::RecordBatch* kinds[3] = {&batches->persons, &batches->auctions, &batches->bids};
    for (int k = 0; k < 3; ++k) {
      auto encoded = encoder.encode(*kinds[k], columnar::utf8());
      if (!encoded.is_ok()) return fail(encoded.status().message());
      objects[k] = std::move(*encoded);
    }
    int64_t next[3] = {0, 0, 0};
    text.clear();
    for (int64_t n = first; n < last; ++n) {
      const nexmark::EventKind kind = nexmark::event_kind(n);
      const int k = static_cast<int>(kind);
      std::string_view object = objects[k].string_view(next[k]++);
      text += "{\"kind\":\"";
      text.append(kind_name(kind));
      text += "\",";
      text.append(object.substr(1));
      text += '\n';
    }
    out->write(text);
  }
  if (Status s = out->close(); !s.is_ok()) return fail(s.message());
  return kExitOk;
}

int bench_nexmark(std::span<const std::string> args) {
  nexmark::QueryConfig config;
  config.generator.events = 10'000'000;
  std::string query = "all";
  std::string output;
  bool json = false;
  std::vector<std::string> names;
  for (const nexmark::QueryInfo& q : nexmark::all_queries()) names.emplace_back(q.name);
  std::vector<std::string> choices = names;
  choices.emplace_back("all");
  FlagSet flags(
      "sabot bench nexmark",
      "Runs Nexmark queries (NEXMARK.md) over generated events into a blackhole sink (or into\n"
      "--output as JSON lines) and reports events, wall and CPU seconds of the whole process\n"
      "(generator included), events per second and events per CPU-second. With --query all,\n"
      "each query runs in turn; with --output, query qN writes FILE's name with -qN added.\n"
      "With --checkpoint-dir DIR the job checkpoints into DIR (with --query all: DIR/qN) and\n"
      "--output is exactly-once: killed and started again with the same flags, the run resumes\n"
      "from its newest checkpoint and the finished files hold every result once.");
  flags.add_string("query", &query, "the query to run", choices);
  add_generator_flags(flags, &config.generator);
  int64_t parallelism = config.parallelism;
  flags.add_int("parallelism", &parallelism, "parallel subtasks of every operator", 1,
                EnvironmentOptions{}.max_parallelism);
  flags.add_string("output", &output,
                   "write the query's result as JSON lines to FILE; at --parallelism P > 1 each "
                   "of the P result subtasks writes its own part, FILE's name with -0, -1, ... "
                   "before the extension (out.jsonl: out-0.jsonl, out-1.jsonl), and parts of an "
                   "earlier run at another parallelism (and FILE itself) are removed");
  flags.add_bool("json", &json, "print each result as one JSON object per line");
  bool metrics = false;
  flags.add_bool("metrics", &metrics,
                 "print each query's per-operator metrics to stderr (with --checkpoint-dir also "
                 "the checkpoint snapshots each operator took and the longest of them)");
  bool quiet = false;
  flags.add_bool("quiet", &quiet, "no progress line (there is one only on a terminal anyway)");
  ObserveFlags observe;
  observe.add_to(flags);
  RecoveryFlags recovery;
  recovery.add_to(flags, "the --output files");
  StateBackendFlags state_flags;
  state_flags.add_to(flags);
  if (auto code = parse_flags(flags, args)) return *code;
  if (auto code = recovery.check(flags)) return *code;
  if (auto code = observe.check(flags)) return *code;
  if (auto code = state_flags.check(flags)) return *code;
  if (recovery.restoring_path() && query == "all") {
    std::cerr << flags.command()
              << ": --restore names one job's checkpoint; with --query all give one query or "
                 "let each resume from --checkpoint-dir (see '"
              << flags.command() << " --help')\n";
    return kExitUsage;
  }
  config.parallelism = static_cast<int>(parallelism);

  std::vector<const nexmark::QueryInfo*> selected;
  for (const nexmark::QueryInfo& q : nexmark::all_queries()) {
    if (query == "all" || q.name == query) selected.push_back(&q);
  }
  for (const nexmark::QueryInfo* q : selected) {
    if (output.empty()) break;
    const std::string path = selected.size() > 1 ? output_path_for(output, q->name) : output;
    Status s = check_output_path(path);
    if (s.is_ok() && recovery.enabled()) {
      s = RecoveryFlags::check_exactly_once_output("--output", path);
    }
    if (!s.is_ok()) return fail(s.message());
  }
  if (!json) {
    std::printf("Nexmark: %lld events, rate %lld/s, seed %llu, parallelism %d\n",
                static_cast<long long>(config.generator.events),
                static_cast<long long>(config.generator.rate),
                static_cast<unsigned long long>(config.generator.seed), config.parallelism);
    std::printf("%-5s %12s %8s %8s %12s %14s %16s\n", "query", "rows_out", "wall_s", "cpu_s",
                "events/s", "events/cpu-s", "Flink 2.0/core");
    std::fflush(stdout);
  }
  // The server, the stall watch and the progress line (terminals only, not --json or --quiet)
  // run across all selected queries; the progress line counts each query's events.
  auto observing =
      observe.start(!json && !quiet && isatty(STDOUT_FILENO) == 1 && isatty(STDERR_FILENO) == 1,
                    config.generator.events);
  if (!observing.is_ok()) return fail(observing.status().message());
  for (const nexmark::QueryInfo* q : selected) {
    std::string path;
    if (!output.empty()) path = selected.size() > 1 ? output_path_for(output, q->name) : output;
    std::string checkpoint_dir = recovery.checkpoint_dir();
    if (recovery.enabled() && selected.size() > 1) checkpoint_dir += "/" + std::string(q->name);
    auto r = run_query(*q, config, path, recovery, checkpoint_dir, state_flags);
    if ((*observing)->progress) std::fprintf(stderr, "\r\033[K");
    if (!r.is_ok()) return fail(std::string(q->name) + ": " + r.status().message());
    if (metrics) std::cerr << q->name << ":\n" << r->metrics;
    if (json) {
      std::printf("%s\n", to_json(*r, config).c_str());
    } else {
      std::printf("%-5s %12lld %8.3f %8.3f %12s %14s %16s\n", r->query.c_str(),
                  static_cast<long long>(r->rows_out), r->wall_s, r->cpu_s,
                  human(r->events / std::max(r->wall_s, 1e-9)).c_str(),
                  human(r->events / std::max(r->cpu_s, 1e-9)).c_str(),
                  std::string(flink_2_per_core(q->name)).c_str());
    }
    std::fflush(stdout);
  }
  return kExitOk;
}

}  // namespace sabot::cli
