// `sabot fraud generate` and `sabot demo fraud`.
#include <unistd.h>

#include <iostream>

#include "commands.h"
#include "fraud/fraud_job.h"
#include "observe_flags.h"
#include "recovery.h"
#include "sabot/codec/json.h"
#include "sabot/columnar/ipc.h"
#include "sabot/fraud/transactions.h"
#include "state_flags.h"

namespace sabot::cli {
namespace {

// Arrow IPC bytes into an OutputFile.
class OutputSink final : public columnar::ByteSink {
 public:
  explicit OutputSink(OutputFile* out) : out_(out) {}
  Status write(const void* data, int64_t size) override {
    out_->write(std::string_view(static_cast<const char*>(data), static_cast<size_t>(size)));
    return Status::ok();
  }

 private:
  OutputFile* out_;
};

}  // namespace

int fraud_generate(std::span<const std::string> args) {
  fraud::GeneratorOptions options;
  options.transactions = 1000;
  std::string format = "jsonl";
  std::string output;
  FlagSet flags("sabot fraud generate",
                "Writes synthetic bank-card transactions from Chile and Peru (FRAUD.md), with\n"
                "injected bursts, amount outliers and distant-city hops, as JSON lines or as an\n"
                "Arrow IPC stream. Same seed and flags, same bytes.");
  flags.add_int("transactions", &options.transactions, "number of transactions", 0);
  flags.add_uint("seed", &options.seed, "random seed");
  flags.add_string("format", &format, "output format", {"jsonl", "arrow"});
  flags.add_int("accounts", &options.accounts, "number of distinct accounts", 1);
  flags.add_double("fraud-rate", &options.fraud_rate,
                   "probability per transaction of starting an injected anomaly", 0, 1);
  flags.add_string("output", &output, "write to FILE instead of standard output");
  if (auto code = parse_flags(flags, args)) return *code;

  auto generator = fraud::TransactionGenerator::make(options);
  if (!generator.is_ok()) return fail(generator.status().message());
  auto out = OutputFile::open(output);
  if (!out.is_ok()) return fail(out.status().message());
  constexpr int64_t kBatchRows = 8192;
  if (format == "jsonl") {
    codec::JsonEncoder encoder;
    std::string text;
    while (!generator->done()) {
      text.clear();
      encoder.encode_lines(generator->next_batch(kBatchRows), text);
      out->write(text);
    }
  } else {
    if (out->is_terminal()) {
      return fail(
          "refusing to write a binary Arrow IPC stream to a terminal; use --output FILE "
          "or redirect standard output");
    }
    OutputSink sink(&*out);
    columnar::IpcStreamWriter writer(&sink);
    Status s = writer.write_schema(fraud::transaction_schema());
    while (s.is_ok() && !generator->done()) s = writer.write(generator->next_batch(kBatchRows));
    if (s.is_ok()) s = writer.close();
    if (!s.is_ok()) return fail(s.message());
  }
  if (Status s = out->close(); !s.is_ok()) return fail(s.message());
  return kExitOk;
}

int demo_fraud(std::span<const std::string> args) {
  fraud::DemoOptions options;
  int64_t parallelism = options.parallelism;
  int64_t threads = options.worker_threads;
  bool metrics = false;
  FlagSet flags(
      "sabot demo fraud",
      "Runs Sabot's fraud-detection job (FRAUD.md) on the embedded broker: generates bank\n"
      "transactions into memory://bank-transactions (3 partitions keyed by account), detects\n"
      "VELOCITY, AMOUNT_ANOMALY and GEO_IMPOSSIBLE fraud with keyed state, writes alerts to\n"
      "memory://fraud-alerts and the console, and ends with a summary: alerts by type and\n"
      "severity, throughput per second and per CPU-second, processing-latency percentiles.\n"
      "With --checkpoint-dir the job checkpoints and --alerts-out is exactly-once across kills\n"
      "and restarts with the same flags; console alert lines are not (a restored run prints\n"
      "again what it replays), and memory://fraud-alerts is not written (the embedded broker\n"
      "does not outlive the process).");
  flags.add_int("transactions", &options.transactions, "transactions to generate", 0);
  flags.add_uint("seed", &options.seed, "random seed of the generator");
  flags.add_int("parallelism", &parallelism, "parallel subtasks of the detector", 1,
                EnvironmentOptions{}.max_parallelism);
  flags.add_bool("quiet", &options.quiet,
                 "print only the summary (and, on a terminal, the progress line)");
  flags.add_bool("json", &options.json, "print only the summary, as one JSON object");
  flags.add_string("input", &options.input_path,
                   "read transactions from a JSON-lines FILE ('-': standard input) instead of the "
                   "generator");
  flags.add_string("alerts-out", &options.alerts_out,
                   "also write every alert as a JSON line to FILE (one file at any "
                   "--parallelism: with --checkpoint-dir one subtask writes it exactly-once; "
                   "otherwise it is written to a temporary file renamed at the end)");
  std::string on_bad_record = "fail";
  std::string dead_letter_out;
  flags.add_string("on-bad-record", &on_bad_record,
                   "what a bad line of --input does: fail the run naming it, skip it (the first "
                   "10 named on stderr, all counted in the summary), or dead-letter it",
                   {"fail", "skip", "dead-letter"});
  flags.add_string("dead-letter-out", &dead_letter_out,
                   "with --on-bad-record dead-letter: write each bad line to FILE as a JSON line "
                   "with its file, line number and error");
  flags.add_double("fraud-rate", &options.generator.fraud_rate,
                   "probability per transaction of starting an injected anomaly", 0, 1);
  flags.add_int("accounts", &options.generator.accounts, "distinct accounts of the generator", 1);
  flags.add_int("batch-size", &options.batch_size, "rows per source batch", 1, 1 << 20);
  flags.add_int("threads", &threads, "worker threads of the job (0: one per core)", 0, 1024);
  flags.add_bool("metrics", &metrics, "print the job's per-operator metrics to stderr");
  flags.add_string("broker", &options.kafka_broker,
                   "run on a Kafka cluster, kafka://HOST:PORT (e.g. 'sabot dev broker'):\n"
                   "transactions are produced into its bank-transactions topic, then read by the\n"
                   "job, alerts written to fraud-alerts (docs/kafka.md)");
  flags.add_int("rate", &options.rate,
                "transactions per second fed into the topic while the job runs (0: as fast as "
                "the job takes them); latency is then measured at that load",
                0);
  ObserveFlags observe;
  observe.add_to(flags);
  StateBackendFlags state_flags;
  state_flags.add_to(flags);
  RecoveryFlags recovery;
  recovery.add_to(flags, "--alerts-out and --dead-letter-out",
                  "; the whole input is put into the topic before the job starts, so neither "
                  "--rate nor --input - (standard input) can be used");
  if (auto code = parse_flags(flags, args)) return *code;
  if (auto code = recovery.check(flags)) return *code;
  if (auto code = observe.check(flags)) return *code;
  if (auto code = state_flags.check(flags)) return *code;
  if (recovery.enabled()) {
    // A run killed and started again with the same flags must see the same input.
    const char* why = flags.is_set("rate") ? "--rate paces a producer that a checkpointed run "
                                             "replaces (it fills the topic before the job starts)"
                      : options.input_path == "-"
                          ? "--input - (standard input) cannot be read again by a restarted run"
                          : nullptr;
    if (why != nullptr) {
      std::cerr << flags.command() << ": --checkpoint-dir: " << why << " (see '" << flags.command()
                << " --help')\n";
      return kExitUsage;
    }
  }
  if (!options.input_path.empty()) {
    // The generator's flags mean nothing with --input: refuse them rather than ignore them.
    std::string ignored;
    for (const char* name : {"transactions", "seed", "fraud-rate", "accounts"}) {
      if (flags.is_set(name)) ignored += (ignored.empty() ? "--" : ", --") + std::string(name);
    }
    if (!ignored.empty()) {
      std::cerr << flags.command() << ": " << ignored
                << (ignored.find(',') == std::string::npos ? " sets" : " set")
                << " the generator, which --input replaces; drop "
                << (ignored.find(',') == std::string::npos ? "it" : "them") << " or --input (see '"
                << flags.command() << " --help')\n";
      return kExitUsage;
    }
  }
  const bool dead_letter = on_bad_record == "dead-letter";
  if (dead_letter != !dead_letter_out.empty() ||
      (flags.is_set("on-bad-record") && options.input_path.empty())) {
    std::cerr << flags.command() << ": "
              << (options.input_path.empty() && flags.is_set("on-bad-record")
                      ? "--on-bad-record applies to --input only (generated transactions are "
                        "never bad)"
                  : dead_letter ? "--on-bad-record dead-letter needs --dead-letter-out FILE"
                                : "--dead-letter-out needs --on-bad-record dead-letter")
              << " (see '" << flags.command() << " --help')\n";
    return kExitUsage;
  }
  options.parallelism = static_cast<int>(parallelism);
  options.worker_threads = static_cast<int>(threads);
  options.progress_terminal = isatty(STDERR_FILENO) == 1;
  options.out_terminal = options.progress_terminal && isatty(STDOUT_FILENO) == 1;

  if (!options.input_path.empty()) {
    if (Status s = check_input_path(options.input_path); !s.is_ok()) return fail(s.message());
  }
  // The alerts file: refused when it is the input, written to a temporary file and renamed at
  // the end, so a failed run never leaves a truncated file.
  std::optional<OutputFile> alerts;
  if (!options.alerts_out.empty() && recovery.enabled()) {
    // Written by the job's exactly-once file sink (DemoOptions::environment).
    Status s = check_output_path(options.alerts_out, {options.input_path});
    if (s.is_ok()) s = RecoveryFlags::check_exactly_once_output("--alerts-out", options.alerts_out);
    if (!s.is_ok()) return fail(s.message());
  } else if (!options.alerts_out.empty()) {
    auto out = OutputFile::open(options.alerts_out, {options.input_path});
    if (!out.is_ok()) return fail(out.status().message());
    alerts.emplace(std::move(*out));
    options.alerts_writer = [&alerts](std::string_view text) -> Status {
      alerts->write(text);
      if (alerts->failed()) return Status::io_error("writing '" + alerts->name() + "' failed");
      return Status::ok();
    };
  }

  // Bad input lines: named on stderr (the first 10), counted in the summary, and dead-lettered
  // into their own file (checked like --alerts-out, and not the same file as it).
  options.bad_lines.policy = on_bad_record == "skip" ? connectors::BadRecordPolicy::kSkip
                             : dead_letter           ? connectors::BadRecordPolicy::kDeadLetter
                                                     : connectors::BadRecordPolicy::kFail;
  options.bad_lines.report = &std::cerr;
  std::optional<OutputFile> letters;
  if (dead_letter) {
    if (dead_letter_out == options.alerts_out) {
      return fail("--dead-letter-out and --alerts-out are the same file '" + dead_letter_out + "'");
    }
    auto out = OutputFile::open(dead_letter_out, {options.input_path, options.alerts_out});
    if (!out.is_ok()) return fail(out.status().message());
    letters.emplace(std::move(*out));
    options.bad_lines.dead_letter = [&letters](std::string_view text) -> Status {
      letters->write(text);
      if (letters->failed()) return Status::io_error("writing '" + letters->name() + "' failed");
      return Status::ok();
    };
    // Every bad line is known once the input is read, before the job starts: the file is
    // complete then, and a run killed later and started again writes the same file again
    // (whole, by rename), never a line twice.
    options.input_ready = [&letters]() { return letters->close(); };
  }
  if (Status s = recovery.apply(recovery.checkpoint_dir(), "fraud-detection", &options.environment);
      !s.is_ok()) {
    return fail(s.message());
  }
  if (Status s = state_flags.apply(&options.environment); !s.is_ok()) return fail(s.message());

  // The demo draws its own progress line.
  auto observing = observe.start(/*progress=*/false, 0);
  if (!observing.is_ok()) return fail(observing.status().message());
  auto summary = fraud::run_fraud_demo(options);
  observing->reset();
  if (!summary.is_ok()) return fail(summary.status().message());
  if (alerts) {
    if (Status s = alerts->close(); !s.is_ok()) return fail(s.message());
  }
  if (metrics) std::cerr << summary->job_metrics;
  return kExitOk;
}

}  // namespace sabot::cli
