// app.main(argc, argv): every App's command line (worker, agents, topics, tables, table, send),
// with the sabot command's flag parser (tools/sabot/flags.h).
#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "app/agent.h"
#include "flags.h"
#include "sabot/app/app.h"
#include "sabot/observe/metrics_server.h"
#include "sabot/state/keyed_snapshot_reader.h"
#include "sabot/state/snapshot.h"

namespace sabot::app {

namespace {

using cli::FlagSet;
using cli::kExitFailure;
using cli::kExitOk;
using cli::kExitUsage;

volatile std::sig_atomic_t g_signalled = 0;
extern "C" void on_stop_signal(int) { g_signalled = 1; }

int fail(const std::string& program, const std::string& message) {
  std::cerr << program << ": " << message << "\n";
  return kExitFailure;
}

std::string_view kind_name(ValueKind k) {
  switch (k) {
    case ValueKind::kRecord:
      return "json record";
    case ValueKind::kText:
      return "text";
    case ValueKind::kRaw:
      return "raw";
  }
  return "?";
}

// The value of top-level field `field` of a JSON object line, as text (strings unescaped only for
// \" and \\); nullopt when absent. For `send --key-field`.
std::optional<std::string> json_field(std::string_view line, std::string_view field) {
  // Appended piecewise: a `+` chain trips GCC 12's -Wrestrict false positive.
  std::string needle = "\"";
  needle += field;
  needle += '"';
  size_t at = line.find(needle);
  if (at == std::string_view::npos) return std::nullopt;
  at = line.find(':', at + needle.size());
  if (at == std::string_view::npos) return std::nullopt;
  ++at;
  while (at < line.size() && (line[at] == ' ' || line[at] == '\t')) ++at;
  std::string out;
  if (at < line.size() && line[at] == '"') {
    for (size_t i = at + 1; i < line.size(); ++i) {
      if (line[i] == '\\' && i + 1 < line.size()) {
        out += line[++i];
      } else if (line[i] == '"') {
        return out;
      } else {
        out += line[i];
      }
    }
    return std::nullopt;
  }
  while (at < line.size() && line[at] != ',' && line[at] != '}' && line[at] != ' ') {
    out += line[at++];
  }
  return out;
}

}  // namespace

int App::main(int argc, char** argv) {
  const std::string program = argc > 0 ? std::filesystem::path(argv[0]).filename().string() : name_;
  std::vector<std::string> args(argv + std::min(argc, 1), argv + argc);
  const std::string usage = "usage: " + program + " <command> [flags]\n\nThe app '" + name_ +
                            "'. Commands:\n"
                            "  worker   run the agents, tables and timers\n"
                            "  agents   list the agents\n"
                            "  topics   list the topics\n"
                            "  tables   list the tables\n"
                            "  table    print a table's values from the latest checkpoint\n"
                            "  send     produce records into a topic\n"
                            "Every command answers --help.\n";
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::cout << usage;
    return args.empty() ? kExitUsage : kExitOk;
  }
  const std::string command = args[0];
  std::span<const std::string> rest(args.data() + 1, args.size() - 1);
  const std::string full = program + " " + command;

  if (command == "agents" || command == "topics" || command == "tables") {
    FlagSet flags(full, "Lists the " + command + " the app declares, one per line." +
                            (command == "topics"
                                 ? " With --broker kafka://HOST:PORT also each topic's partitions "
                                   "on that cluster (broker=N, or broker=missing)."
                                 : ""));
    std::string broker_url;
    if (command == "topics") {
      flags.add_string("broker", &broker_url,
                       "kafka://HOST:PORT: show the topics' partitions there");
    }
    if (auto code = cli::parse_flags(flags, rest)) return *code;
    if (command == "agents") {
      for (const auto& a : agents_) {
        std::string sinks;
        for (const auto& s : a.options.sinks) sinks += (sinks.empty() ? "" : ",") + s;
        std::cout << a.name << "\ttopic=" << a.topic << "\tconcurrency=" << a.options.concurrency
                  << "\tsupervisor=" << strategy_name(a.options.supervisor.strategy)
                  << "\tmax_restarts=" << a.options.supervisor.max_restarts << "/"
                  << a.options.supervisor.within.count() << "ms\ton_error="
                  << (a.options.on_error == OnError::kRestart ? "restart"
                      : a.options.on_error == OnError::kStop
                          ? "stop"
                          : "dead-letter:" + a.options.dead_letter)
                  << "\tsinks=" << (sinks.empty() ? "-" : sinks) << "\n";
      }
    } else if (command == "topics") {
      std::vector<std::pair<std::string, int>> on_broker;
      if (!broker_url.empty()) {
        if (broker_url.rfind("memory://", 0) == 0) {
          std::cerr << full << ": --broker takes a kafka:// URL (the embedded broker lives "
                    << "inside the worker's process)\n";
          return kExitUsage;
        }
        options_.broker = broker_url;
        auto listed = broker_partitions();
        if (!listed.is_ok()) return fail(program, listed.status().message());
        on_broker = std::move(*listed);
      }
      for (size_t i = 0; i < topics_.size(); ++i) {
        const auto& t = topics_[i];
        std::cout << t.name << "\tpartitions=" << t.partitions << "\tvalue=" << kind_name(t.kind);
        if (!on_broker.empty()) {
          const int n = on_broker[i].second;
          std::cout << "\tbroker=" << (n > 0 ? std::to_string(n) : std::string("missing"));
        }
        std::cout << "\n";
      }
    } else {
      for (const auto& t : tables_) {
        std::cout << t->name << "\tkey=" << t->key_type
                  << "\tvalue=" << state::demangle_type_tag(t->value_type)
                  << "\twindow=" << (t->window.empty() ? "-" : t->window) << "\n";
      }
    }
    return std::cout.flush() ? kExitOk : kExitFailure;
  }

  if (command == "worker") {
    std::string broker = options_.broker;
    std::string checkpoint_dir = options_.checkpoints;
    std::string state_dir = options_.state_dir;
    int64_t interval_ms = options_.checkpoint_interval.count();
    bool until_done = false;
    std::string topic_out;
    int64_t concurrency = 0;
    FlagSet flags(full,
                  "Runs the app: every agent over its topic (one job each, supervised), the "
                  "timers, and the topics of --state-dir. Stops on SIGINT/SIGTERM, with "
                  "--until-done when every agent has read its input, or when an agent fails "
                  "beyond its restart intensity (exit 1, naming the cause).");
    flags.add_string("broker", &broker,
                     "memory:// (the embedded broker) or kafka://HOST:PORT[,HOST:PORT] (topics "
                     "the cluster lacks are created)");
    flags.add_string("checkpoint-dir", &checkpoint_dir,
                     "checkpoint every agent into DIR/<agent>; a restarted worker resumes there");
    flags.add_int("checkpoint-interval-ms", &interval_ms, "milliseconds between checkpoints", 1,
                  86'400'000);
    flags.add_string("state-dir", &state_dir,
                     "memory:// topics backed by DIR/topics/<topic>.log (what `send` appends to)");
    std::string backend = options_.state_backend;
    flags.add_string("state-backend", &backend, "where tables live (rocksdb: in --state-dir)",
                     {"memory", "rocksdb"});
    flags.add_bool("until-done", &until_done,
                   "close the topics no agent writes to once loaded, and stop when every agent "
                   "has read its input (kafka://: what its topic holds when the agent starts; "
                   "agents reading other agents' topics start once those have finished)");
    flags.add_string("topic-out", &topic_out,
                     "TOPIC=FILE: also write the values sent to TOPIC to FILE, one per line, "
                     "exactly-once");
    flags.add_int("concurrency", &concurrency,
                  "every agent's concurrency (0: as each agent declares)", 0, 1024);
    int64_t metrics_port = -1;
    flags.add_int("metrics-port", &metrics_port,
                  "serve Prometheus metrics (/metrics), the dashboard (/) and its JSON API of "
                  "every agent's job, and the tables of the newest checkpoints "
                  "(/api/tables/NAME?key=K), on 127.0.0.1:N; 0 picks a free port (the URL is "
                  "printed on stderr); -1: no server (docs/operations.md)",
                  -1, 65535);
    if (auto code = cli::parse_flags(flags, rest)) return *code;
    std::unique_ptr<observe::MetricsServer> metrics_server;
    if (metrics_port >= 0) {
      auto server = observe::MetricsServer::start(
          {.port = static_cast<int>(metrics_port),
           .app = [this] { return status_json(); },
           .table = [this, checkpoint_dir](
                        const std::string& table, const std::string& key,
                        int64_t limit) { return table_json(table, key, checkpoint_dir, limit); }});
      if (!server.is_ok()) return fail(program, server.status().message());
      metrics_server = std::move(*server);
      std::cerr << "metrics and dashboard at " << metrics_server->url() << std::endl;
    }
    if (concurrency > 0) {
      for (auto& a : agents_) a.options.concurrency = static_cast<int>(concurrency);
    }
    options_.broker = broker;
    options_.checkpoints = checkpoint_dir;
    options_.state_dir = state_dir;
    options_.state_backend = backend;
    options_.checkpoint_interval = std::chrono::milliseconds(interval_ms);
    WorkerOptions wo;
    wo.until_done = until_done;
    if (!topic_out.empty()) {
      const size_t eq = topic_out.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == topic_out.size()) {
        std::cerr << full << ": --topic-out: expected TOPIC=FILE, got '" << topic_out << "'\n";
        return kExitUsage;
      }
      wo.topic_out.emplace_back(topic_out.substr(0, eq), topic_out.substr(eq + 1));
    }
    if (until_done) {
      for (const auto& t : topics_) {
        bool written = false;
        for (const auto& a : agents_) {
          for (const auto& s : a.options.sinks) written = written || s == t.name;
        }
        if (!written) wo.close_after_load.push_back(t.name);
      }
    }
    g_signalled = 0;
    std::signal(SIGINT, on_stop_signal);
    std::signal(SIGTERM, on_stop_signal);
    std::atomic<bool> finished{false};
    std::thread watcher([&] {
      while (!finished.load()) {
        if (g_signalled) {
          stop();
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    });
    WorkerReport r = run(wo);
    finished = true;
    watcher.join();
    std::cerr << (program + ": worker " + (r.status.is_ok() ? "finished" : "stopped") +
                  ": failures " + std::to_string(r.failures) + ", restarts " +
                  std::to_string(r.restarts) + ", dead letters " + std::to_string(r.dead_letters) +
                  "\n");
    if (!r.status.is_ok()) return fail(program, r.status.message());
    return kExitOk;
  }

  if (command == "table") {
    std::string table;
    std::string key;
    std::string checkpoint_dir = options_.checkpoints;
    FlagSet flags(full,
                  "Prints the values of table NAME from the newest checkpoint of every agent, one "
                  "JSON object per line: {\"key\": ..., \"value\": ...} (windowed tables: the "
                  "value is an object from window start in ms to value).");
    flags.add_positional_string("NAME", &table, "the table");
    flags.add_string("key", &key, "only this key");
    flags.add_string("checkpoint-dir", &checkpoint_dir, "the worker's --checkpoint-dir");
    if (auto code = cli::parse_flags(flags, rest)) return *code;
    if (table.empty()) {
      std::cerr << full << ": give the table's NAME\n";
      return kExitUsage;
    }
    bool declared = false;
    for (const auto& t : tables_) declared = declared || t->name == table;
    if (!declared) return fail(program, "the app declares no table '" + table + "'");
    if (checkpoint_dir.empty()) {
      std::cerr << full << ": give the worker's --checkpoint-dir\n";
      return kExitUsage;
    }
    auto read = read_table(table, key, checkpoint_dir);
    if (!read.is_ok()) return fail(program, read.status().message());
    const size_t printed = read->entries.size();
    for (const TableEntry& e : read->entries) {
      std::cout << "{\"key\": " << json_string(e.key) << ", \"value\": " << e.value_json << "}\n";
    }
    if (!std::cout.flush()) return kExitFailure;
    if (printed == 0 && !key.empty())
      return fail(program,
                  "table '" + table + "' has no key '" + key + "' in the newest checkpoints");
    return kExitOk;
  }

  if (command == "send") {
    std::string topic;
    std::string value;
    std::string key;
    std::string key_field;
    std::string file;
    std::string state_dir = options_.state_dir;
    FlagSet flags(full,
                  "Produces records into TOPIC: VALUE, or every line of --file. With a memory:// "
                  "broker the records are appended to the worker's --state-dir, which a running "
                  "worker follows; with --broker kafka://HOST:PORT they are produced into the "
                  "cluster's topic (created when missing).");
    flags.add_positional_string("TOPIC", &topic, "the topic");
    flags.add_positional_string("VALUE", &value, "the value (or --file)");
    flags.add_string("key", &key, "the records' key");
    flags.add_string("key-field", &key_field,
                     "with --file of JSON objects: each record's key is this field's value");
    flags.add_string("file", &file, "send every line of FILE as one record");
    flags.add_string("state-dir", &state_dir, "the worker's --state-dir (memory://)");
    std::string broker = options_.broker;
    flags.add_string("broker", &broker,
                     "memory:// (with --state-dir) or kafka://HOST:PORT[,HOST:PORT] (produces "
                     "into the cluster's topic)");
    if (auto code = cli::parse_flags(flags, rest)) return *code;
    if (topic.empty()) {
      std::cerr << full << ": give the TOPIC\n";
      return kExitUsage;
    }
    if (flags.is_set("VALUE") == flags.is_set("file")) {
      std::cerr << full << ": give either a VALUE or --file FILE\n";
      return kExitUsage;
    }
    if (!key_field.empty() && !flags.is_set("file")) {
      std::cerr << full << ": --key-field needs --file\n";
      return kExitUsage;
    }
    if (flags.is_set("key") && !key_field.empty()) {
      std::cerr << full << ": give either --key or --key-field\n";
      return kExitUsage;
    }
    options_.broker = broker;
    if (state_dir.empty() && embedded_broker()) {
      std::cerr << full
                << ": with a memory:// broker, give the worker's --state-dir (the embedded "
                   "broker lives inside the worker's process)\n";
      return kExitUsage;
    }
    options_.state_dir = state_dir;
    std::optional<std::string_view> k;
    if (flags.is_set("key")) k = key;
    if (!embedded_broker()) {  // one producer for all the records
      std::vector<Message> messages;
      if (!flags.is_set("file")) {
        messages.push_back(
            {flags.is_set("key") ? std::optional<std::string>(key) : std::nullopt, value});
      } else {
        std::ifstream in(file, std::ios::binary);
        if (!in) return fail(program, "cannot open '" + file + "'");
        std::string line;
        for (int64_t n = 1; std::getline(in, line); ++n) {
          if (!line.empty() && line.back() == '\r') line.pop_back();
          if (line.empty()) continue;
          Message m;
          if (!key_field.empty()) {
            m.key = json_field(line, key_field);
            if (!m.key) {
              return fail(program,
                          file + ":" + std::to_string(n) + ": no field '" + key_field + "'");
            }
          } else if (flags.is_set("key")) {
            m.key = key;
          }
          m.value = std::move(line);
          messages.push_back(std::move(m));
        }
      }
      Status s = send(topic, messages);
      if (!s.is_ok()) return fail(program, s.message());
      if (flags.is_set("file")) {
        std::cerr << program << ": sent " << messages.size() << " records to '" << topic << "'\n";
      }
      return kExitOk;
    }
    if (!flags.is_set("file")) {
      Status s = send(topic, k, value);
      return s.is_ok() ? kExitOk : fail(program, s.message());
    }
    std::ifstream in(file, std::ios::binary);
    if (!in) return fail(program, "cannot open '" + file + "'");
    std::string line;
    int64_t n = 0;
    while (std::getline(in, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty()) continue;
      ++n;
      std::optional<std::string> field;
      if (!key_field.empty()) {
        field = json_field(line, key_field);
        if (!field) {
          return fail(program, file + ":" + std::to_string(n) + ": no field '" + key_field + "'");
        }
      }
      Status s = send(topic, field ? std::optional<std::string_view>(*field) : k, line);
      if (!s.is_ok()) return fail(program, s.message());
    }
    std::cerr << program << ": sent " << n << " records to '" << topic << "'\n";
    return kExitOk;
  }

  std::cerr << program << ": unknown command '" << command << "'\n" << usage;
  return kExitUsage;
}

}  // namespace sabot::app
