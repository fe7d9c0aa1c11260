// Fraud detection on the embedded broker, as a user writes it: bank transactions go into a topic,
// a keyed detector (FraudDetector in fraud_job.cc: a KeyedProcessFunction with keyed state) reads
// them and every alert is printed. `sabot demo fraud` runs the same job with progress, a summary
// and every option (see `sabot demo fraud --help`).
//   build/release/examples/fraud/fraud_detection [transactions] [parallelism]
#include <iostream>
#include <string>
#include <vector>

#include "flags.h"
#include "fraud_job.h"

int main(int argc, char** argv) {
  using namespace sabot;
  int64_t transactions = 100'000;
  int64_t parallelism = 2;
  // Parsed like the `sabot` command's arguments (tools/sabot/flags.h).
  cli::FlagSet flags(
      "fraud_detection",
      "Produces generated bank transactions into a topic, runs the fraud detector on\n"
      "them and prints one line per alert (see 'sabot demo fraud' for every option).");
  flags.add_positional("transactions", &transactions, "transactions to generate", 1);
  flags.add_positional("parallelism", &parallelism, "parallel subtasks of the detector", 1,
                       EnvironmentOptions{}.max_parallelism);
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (std::optional<int> exit = cli::parse_flags(flags, args)) return *exit;

  // 1. The input topic: 3 partitions keyed by account, JSON values (FRAUD.md).
  connectors::MemoryBroker broker;
  auto topic = broker.create_topic("bank-transactions", {.partitions = fraud::kTopicPartitions});
  fraud::GeneratorOptions generator;
  generator.transactions = transactions;
  if (Status s = topic.is_ok() ? fraud::produce_generated(generator, *topic) : topic.status();
      !s.is_ok()) {
    std::cerr << "fraud_detection: " << s.to_string() << "\n";
    return 1;
  }

  // 2. The job: topic -> key_by(account) -> FraudDetector -> one console line per alert.
  Environment env({.parallelism = static_cast<int>(parallelism)});
  auto stats = std::make_shared<fraud::DetectorStats>();
  fraud::add_fraud_detector(env, {.input_url = fraud::kTransactionsUrl, .broker = &broker}, stats)
      .for_each_batch([](const RecordBatch& batch) -> Status {
        SABOT_ASSIGN_OR_RETURN(auto alerts, read_rows<fraud::AlertEvent>(batch));
        for (const fraud::AlertEvent& a : alerts) {
          std::cout << fraud::alert_console_line(a.severity, a.fraud_type, a.account_number,
                                                 a.details)
                    << "\n";
        }
        return Status::ok();
      });
  JobResult result = env.execute("fraud-detection");
  if (!result.ok()) {
    std::cerr << "fraud_detection: " << result.status().to_string() << "\n";
    return result.exit_code();
  }
  std::cerr << transactions << " transactions checked in " << result.wall_seconds() << " s\n";
  if (!std::cout.flush()) {
    std::cerr << "fraud_detection: writing standard output failed\n";
    return 1;
  }
  return 0;
}
