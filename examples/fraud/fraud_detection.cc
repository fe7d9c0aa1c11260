// Fraud detection on the embedded broker, as a user writes it: bank transactions go into a topic,
// a keyed detector (FraudDetector in fraud_job.cc: a KeyedProcessFunction with keyed state) reads
// them and every alert is printed. `sabot demo fraud` runs the same job with progress, a summary
// and every option (see `sabot demo fraud --help`).
//   build/release/examples/fraud/fraud_detection [transactions] [parallelism]
#include <charconv>
#include <iostream>
#include <string_view>

#include "fraud_job.h"

namespace {

int64_t arg_or(int argc, char** argv, int i, int64_t fallback) {
  if (argc <= i) return fallback;
  const std::string_view text = argv[i];
  int64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v < 1) {
    std::cerr << "fraud_detection: argument " << i << " must be a positive integer, got '" << text
              << "'\nusage: fraud_detection [transactions] [parallelism]\n";
    std::exit(2);
  }
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace sabot;
  const int64_t transactions = arg_or(argc, argv, 1, 100'000);
  const int parallelism = static_cast<int>(arg_or(argc, argv, 2, 2));

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
  Environment env({.parallelism = parallelism});
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
  return 0;
}
