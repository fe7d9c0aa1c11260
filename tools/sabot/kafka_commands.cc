// `sabot dev broker` (a Kafka-protocol broker on loopback) and `sabot topics list|create`.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include "commands.h"
#include "sabot/connectors/kafka.h"
#include "sabot/connectors/topic_scheme.h"

namespace sabot::cli {
namespace {

// Writes `text` to `path` through a temporary file renamed over it, so a reader polling for the
// file never sees it half written.
Status write_whole(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    out.close();
    if (!out) return Status::io_error("writing '" + tmp + "' failed");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return Status::io_error("renaming '" + tmp + "' to '" + path + "' failed");
  }
  return Status::ok();
}

}  // namespace

int dev_broker(std::span<const std::string> args) {
  int64_t brokers = 1;
  int64_t partitions = 3;
  std::string address_file;
  std::string topics = "bank-transactions,fraud-alerts";
  FlagSet flags(
      "sabot dev broker",
      "Starts a Kafka-protocol broker on loopback for development (librdkafka's mock cluster:\n"
      "in memory, no persistence, no transaction markers; see docs/kafka.md), prints its\n"
      "bootstrap address (host:port[,host:port]) on standard output, and runs until SIGINT or\n"
      "SIGTERM. kcat, other Kafka clients and Sabot jobs (kafka://ADDRESS/topic) can share it.\n"
      "Topics that clients name are created with 4 partitions; --topics are created with\n"
      "--partitions (the mock cluster does not implement CreateTopics, so 'sabot topics create'\n"
      "cannot create them later).");
  flags.add_int("brokers", &brokers, "brokers in the cluster", 1, 16);
  flags.add_int("partitions", &partitions, "partitions of the --topics created at start", 1, 1000);
  flags.add_string("address-file", &address_file,
                   "also write the bootstrap address to FILE (whole, by rename) once it listens");
  flags.add_string("topics", &topics,
                   "comma-separated topics to create at start, NAME or NAME:PARTITIONS (default: "
                   "the fraud demo's)");
  if (auto code = parse_flags(flags, args)) return *code;

  // SIGINT and SIGTERM are taken by sigwait below; blocked before the cluster starts its threads
  // so that none of them receives them.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  auto broker = connectors::KafkaDevBroker::start(
      {.brokers = static_cast<int>(brokers), .partitions = static_cast<int>(partitions)});
  if (!broker.is_ok()) return fail(broker.status().message());
  std::stringstream names(topics);
  for (std::string name; std::getline(names, name, ',');) {
    if (name.empty()) continue;
    int n = static_cast<int>(partitions);
    if (const size_t colon = name.find(':'); colon != std::string::npos) {  // NAME:PARTITIONS
      const std::string count = name.substr(colon + 1);
      name.resize(colon);
      char* end = nullptr;
      const long v = std::strtol(count.c_str(), &end, 10);
      if (count.empty() || *end != '\0' || v < 1 || v > 1000) {
        std::cerr << flags.command() << ": --topics: '" << name << ":" << count
                  << "' needs a partition count from 1 to 1000\n";
        return kExitUsage;
      }
      n = static_cast<int>(v);
    }
    if (Status s = (*broker)->create_topic(name, n); !s.is_ok()) return fail(s.message());
  }
  const std::string& address = (*broker)->bootstrap();
  std::cout << address << std::endl;
  if (!address_file.empty()) {
    if (Status s = write_whole(address_file, address + "\n"); !s.is_ok()) return fail(s.message());
  }
  std::cerr << "sabot dev broker: " << brokers << (brokers == 1 ? " broker" : " brokers") << " at "
            << address << " (URLs: kafka://" << address << "/<topic>); Ctrl-C stops it\n";
  int sig = 0;
  sigwait(&stop, &sig);
  std::cerr << "sabot dev broker: stopping (" << (sig == SIGINT ? "SIGINT" : "SIGTERM") << ")\n";
  return kExitOk;
}

int topics_list(std::span<const std::string> args) {
  std::string url;
  FlagSet flags("sabot topics list",
                "Lists the topics of a broker with their partition counts, one per line\n"
                "(name<TAB>partitions). --broker kafka://HOST:PORT[,HOST:PORT].");
  flags.add_string("broker", &url, "the broker URL, kafka://HOST:PORT (required)");
  if (auto code = parse_flags(flags, args)) return *code;
  if (url.empty()) {
    std::cerr << flags.command() << ": --broker URL is required (see '" << flags.command()
              << " --help')\n";
    return kExitUsage;
  }
  auto scheme = connectors::topic_scheme_for(url);
  if (!scheme.is_ok()) return fail(scheme.status().message());
  auto topics = (*scheme)->list_topics(url, {});
  if (!topics.is_ok()) return fail(topics.status().message());
  for (const auto& t : *topics) std::cout << t.name << '\t' << t.partitions << '\n';
  return stdout_ok() ? kExitOk : kExitFailure;
}

int topics_create(std::span<const std::string> args) {
  std::string url;
  std::string name;
  int64_t partitions = 1;
  FlagSet flags("sabot topics create",
                "Creates topic NAME on a broker (--broker kafka://HOST:PORT) with --partitions\n"
                "partitions. Fails when it exists.");
  flags.add_positional_string("NAME", &name, "the topic name");
  flags.add_string("broker", &url, "the broker URL, kafka://HOST:PORT (required)");
  flags.add_int("partitions", &partitions, "number of partitions", 1, 100000);
  if (auto code = parse_flags(flags, args)) return *code;
  if (url.empty() || name.empty()) {
    std::cerr << flags.command() << ": NAME and --broker URL are required (see '" << flags.command()
              << " --help')\n";
    return kExitUsage;
  }
  auto scheme = connectors::topic_scheme_for(url);
  if (!scheme.is_ok()) return fail(scheme.status().message());
  if (Status s = (*scheme)->create_topic(url, name, static_cast<int32_t>(partitions), {});
      !s.is_ok()) {
    return fail(s.message());
  }
  std::cout << "created topic '" << name << "' with " << partitions
            << (partitions == 1 ? " partition\n" : " partitions\n");
  return stdout_ok() ? kExitOk : kExitFailure;
}

}  // namespace sabot::cli
