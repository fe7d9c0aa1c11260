// `sabot`: the command-line entry point. Finds the subcommand and hands it the remaining arguments.
#include <signal.h>

#include <iostream>
#include <string>
#include <vector>

#include "commands.h"
#include "sabot/base/logging.h"
#include "sabot/runtime/executor.h"

namespace {

using sabot::cli::kExitOk;
using sabot::cli::kExitUsage;

struct Command {
  std::string group;  // "bench"
  std::string name;   // "nexmark"
  std::string summary;
  int (*run)(std::span<const std::string> args);
};

const std::vector<Command>& commands() {
  static const std::vector<Command> all = {
      {"demo", "fraud",
       "run the fraud-detection job on the embedded broker and print alerts and a summary",
       sabot::cli::demo_fraud},
      {"fraud", "generate", "write synthetic bank transactions (JSON lines or Arrow IPC)",
       sabot::cli::fraud_generate},
      {"demo", "enrichment",
       "run the trade-enrichment job (as-of joins, VWAP per sector) on the embedded broker",
       sabot::cli::demo_enrichment},
      {"enrichment", "generate", "write securities, quotes and trades as JSON-lines files",
       sabot::cli::enrichment_generate},
      {"nexmark", "generate", "write Nexmark events as JSON lines", sabot::cli::nexmark_generate},
      {"bench", "nexmark", "run Nexmark queries and report events per second and per CPU-second",
       sabot::cli::bench_nexmark},
      {"checkpoints", "list", "list the checkpoints in a checkpoint directory, with their status",
       sabot::cli::checkpoints_list_command},
      {"checkpoints", "show", "describe one checkpoint: operators, state types, key groups, sizes",
       sabot::cli::checkpoints_show_command},
      {"state", "read", "print one keyed state of a checkpoint as JSON lines (key, value)",
       sabot::cli::state_read_command},
      {"dev", "broker", "run a Kafka-protocol broker on loopback for development (mock cluster)",
       sabot::cli::dev_broker},
      {"topics", "list", "list the topics of a broker (--broker kafka://HOST:PORT)",
       sabot::cli::topics_list},
      {"topics", "create", "create a topic on a broker (--broker kafka://HOST:PORT)",
       sabot::cli::topics_create},
  };
  return all;
}

void print_overview(std::ostream& out) {
  out << "Usage: sabot <command> [flags]\n\n"
         "Sabot is a stream-processing engine. Commands:\n";
  for (const Command& c : commands()) {
    std::string left = "  " + c.group + " " + c.name;
    out << left << std::string(left.size() < 22 ? 22 - left.size() : 1, ' ') << c.summary << "\n";
  }
  out << "\n'sabot <command> --help' describes a command and its flags; 'sabot --version' prints\n"
         "the version. '--log-format json' (anywhere) writes log lines as JSON objects.\n";
}

int run(const std::vector<std::string>& args) {
  if (args.empty()) {
    print_overview(std::cerr);
    return kExitUsage;
  }
  if (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    print_overview(std::cout);
    return kExitOk;
  }
  if (args[0] == "--version" || args[0] == "version") {
    std::cout << "sabot " << SABOT_VERSION << "\n";
    return kExitOk;
  }
  bool known_group = false;
  for (const Command& c : commands()) {
    if (c.group != args[0]) continue;
    known_group = true;
    if (args.size() >= 2 && c.name == args[1]) {
      return c.run(std::span<const std::string>(args).subspan(2));
    }
  }
  if (known_group) {
    const bool help = args.size() >= 2 && (args[1] == "--help" || args[1] == "-h");
    std::ostream& out = help ? std::cout : std::cerr;
    if (!help) {
      out << "sabot: '" << args[0] << "' needs a subcommand"
          << (args.size() >= 2 ? " (unknown: '" + args[1] + "')" : std::string()) << "\n";
    }
    out << "Usage: sabot " << args[0] << " <subcommand> [flags]\n\nSubcommands:\n";
    for (const Command& c : commands()) {
      if (c.group == args[0]) out << "  " << c.group << " " << c.name << "  " << c.summary << "\n";
    }
    return help ? kExitOk : kExitUsage;
  }
  std::cerr << "sabot: unknown command '" << args[0] << "'\n\n";
  print_overview(std::cerr);
  return kExitUsage;
}

}  // namespace

// Every command's exit code, turned into a failure when anything written to standard output was
// lost (disk full, closed pipe): a run whose output is gone did not succeed.
int main(int argc, char** argv) {
  // SIGUSR1: a running job with --checkpoint-dir takes a savepoint (and says where it wrote it);
  // without checkpointing it is ignored rather than ending the process.
  struct sigaction on_usr1 {};
  on_usr1.sa_handler = [](int) { sabot::runtime::request_savepoint(); };
  sigemptyset(&on_usr1.sa_mask);
  on_usr1.sa_flags = SA_RESTART;
  sigaction(SIGUSR1, &on_usr1, nullptr);
  // --log-format text|json applies to every command's log lines (stderr), wherever it stands.
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    std::string value;
    if (a == "--log-format" && i + 1 < argc) {
      value = argv[++i];
    } else if (a.rfind("--log-format=", 0) == 0) {
      value = a.substr(13);
    } else {
      args.push_back(std::move(a));
      continue;
    }
    if (value != "text" && value != "json") {
      std::cerr << "sabot: --log-format: '" << value << "' is not one of text, json\n";
      return kExitUsage;
    }
    sabot::set_log_format(value == "json" ? sabot::LogFormat::kJson : sabot::LogFormat::kText);
  }
  const int code = run(args);
  if (!sabot::cli::stdout_ok()) return code == kExitOk ? sabot::cli::kExitFailure : code;
  return code;
}
