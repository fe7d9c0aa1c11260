// fraud_app (the FRAUD.md detector as an App) gives exactly the alerts of `sabot demo fraud` for
// the same transactions, at concurrency 1 and 3, over the memory broker.
#include "fraud_app.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "fraud_job.h"

namespace sabot::fraud_app {
namespace {

using namespace std::chrono_literals;

std::vector<std::string> sorted_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  std::sort(lines.begin(), lines.end());
  return lines;
}

// The alerts `sabot demo fraud` writes with --alerts-out for these generator options.
std::vector<std::string> demo_alerts(const fraud::GeneratorOptions& g) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("fraud_app_test_demo_" + std::to_string(::getpid()) + ".jsonl");
  std::ostringstream out;
  std::ostringstream progress;
  fraud::DemoOptions d;
  d.transactions = g.transactions;
  d.seed = g.seed;
  d.generator = g;
  d.parallelism = 2;
  d.quiet = true;
  d.alerts_out = path.string();
  d.out = &out;
  d.progress = &progress;
  auto summary = fraud::run_fraud_demo(d);
  EXPECT_TRUE(summary.is_ok()) << summary.status().to_string();
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::filesystem::remove(path);
  return sorted_lines(ss.str());
}

std::vector<std::string> app_alerts(const std::vector<fraud::Transaction>& rows, int concurrency) {
  connectors::MemoryBroker broker;
  std::ostringstream log;
  app::App app("fraud-app", {.checkpoint_interval = 50ms, .memory_broker = &broker, .log = &log});
  define_fraud_app(app, {.concurrency = concurrency});
  auto topic = broker.create_topic(kTransactionsTopic, {.partitions = kPartitions}).value();
  EXPECT_TRUE(fraud::produce_transactions(rows, topic).is_ok());  // also closes the topic
  app::WorkerReport report = app.run();
  EXPECT_TRUE(report.status.is_ok()) << report.status.to_string() << log.str();
  EXPECT_EQ(report.failures, 0);
  auto alerts = broker.topic(kAlertsTopic).value();
  auto reader = connectors::MemoryTopicReader::open_all(alerts).value();
  std::vector<std::string> lines;
  while (true) {
    auto polled = reader->poll(1 << 20, 1000ms).value();
    for (const auto& pb : polled.batches) {
      const auto& values = pb.records.column(connectors::kValueColumn);
      for (int64_t r = 0; r < pb.records.num_rows(); ++r) {
        lines.emplace_back(values.string_view(r));
      }
    }
    if (polled.end_of_input) break;
  }
  std::sort(lines.begin(), lines.end());
  return lines;
}

TEST(FraudAppTest, AlertsEqualTheDemosAtConcurrencyOneAndThree) {
  fraud::GeneratorOptions g;
  g.transactions = 30'000;
  g.seed = 42;
  auto rows = fraud::generate_transactions(g).value();
  const std::vector<std::string> expected = demo_alerts(g);
  ASSERT_GT(expected.size(), 100u);
  // Every rule fires in this input.
  for (const char* type : {"VELOCITY", "AMOUNT_ANOMALY", "GEO_IMPOSSIBLE"}) {
    EXPECT_TRUE(std::any_of(expected.begin(), expected.end(), [&](const std::string& l) {
      return l.find(type) != std::string::npos;
    })) << type;
  }
  for (int concurrency : {1, 3}) {
    std::vector<std::string> got = app_alerts(rows, concurrency);
    EXPECT_EQ(got.size(), expected.size()) << "concurrency " << concurrency;
    EXPECT_TRUE(got == expected) << "concurrency " << concurrency;
  }
}

}  // namespace
}  // namespace sabot::fraud_app
