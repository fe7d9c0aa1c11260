// fraud_app (the FRAUD.md detector as an App) gives exactly the alerts of `sabot demo fraud` for
// the same transactions, at concurrency 1 and 3, over the memory broker and over a Kafka cluster
// (the development broker, librdkafka's mock cluster, started in this process on loopback).
#include "fraud_app.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "fraud_job.h"
#include "sabot/codec/json.h"
#include "sabot/connectors/kafka.h"

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

// On kafka://: the transactions are produced with App::send (JSON lines keyed by account), the
// worker runs with until_done (each agent reads what its topic holds) and checkpoints every
// 50 ms (transactional sink); the alerts are read back from the fraud-alerts topic and from
// --topic-out.
struct KafkaAlerts {
  std::vector<std::string> topic;
  std::vector<std::string> file;
};
KafkaAlerts kafka_app_alerts(const std::vector<fraud::Transaction>& rows, int concurrency) {
  KafkaAlerts got;
  auto broker = connectors::KafkaDevBroker::start({.partitions = kPartitions});
  EXPECT_TRUE(broker.is_ok()) << broker.status().to_string();
  if (!broker.is_ok()) return got;
  // The mock cluster does not implement CreateTopics: the topics are made as a cluster's admin
  // would; the worker finds them with the partitions the app declares.
  EXPECT_TRUE((*broker)->create_topic(kTransactionsTopic, kPartitions).is_ok());
  EXPECT_TRUE((*broker)->create_topic(kAlertsTopic, kPartitions).is_ok());
  std::ostringstream log;
  app::App app(
      "fraud-app",
      {.broker = "kafka://" + (*broker)->bootstrap(), .checkpoint_interval = 50ms, .log = &log});
  define_fraud_app(app, {.concurrency = concurrency});
  const std::string text = codec::JsonEncoder().encode_lines(fraud::to_record_batch(rows));
  std::vector<app::App::Message> messages;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    messages.push_back({rows.at(messages.size()).account_number, line});
  }
  EXPECT_EQ(messages.size(), rows.size());
  Status sent = app.send(kTransactionsTopic, messages);
  EXPECT_TRUE(sent.is_ok()) << sent.to_string();
  const auto file = std::filesystem::temp_directory_path() /
                    ("fraud_app_test_kafka_" + std::to_string(::getpid()) + ".jsonl");
  std::filesystem::remove(file);
  app::WorkerReport report =
      app.run({.until_done = true, .topic_out = {{kAlertsTopic, file.string()}}});
  EXPECT_TRUE(report.status.is_ok()) << report.status.to_string() << log.str();
  EXPECT_EQ(report.failures, 0);
  EXPECT_EQ(log.str().find("created topic"), std::string::npos) << log.str();
  {
    std::ifstream in(file);
    std::stringstream ss;
    ss << in.rdbuf();
    got.file = sorted_lines(ss.str());
    std::filesystem::remove(file);
  }
  Environment env({.parallelism = 1});
  auto collected =
      env.from_topic((*broker)->url(kAlertsTopic), codec::text(), {.stop_at_end = true}).collect();
  JobResult r = env.execute("read-alerts");
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  for (const auto& b : collected->batches()) {
    const auto& values = b.column(b.schema().field_index("value"));
    for (int64_t i = 0; i < b.num_rows(); ++i) got.topic.emplace_back(values.string_view(i));
  }
  std::sort(got.topic.begin(), got.topic.end());
  return got;
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

TEST(FraudAppTest, AlertsOverKafkaEqualTheDemosAtConcurrencyOneAndThree) {
  fraud::GeneratorOptions g;
  g.transactions = 30'000;
  g.seed = 42;
  auto rows = fraud::generate_transactions(g).value();
  const std::vector<std::string> expected = demo_alerts(g);
  ASSERT_GT(expected.size(), 100u);
  for (int concurrency : {1, 3}) {
    KafkaAlerts got = kafka_app_alerts(rows, concurrency);
    EXPECT_EQ(got.topic.size(), expected.size()) << "concurrency " << concurrency;
    EXPECT_TRUE(got.topic == expected) << "fraud-alerts topic, concurrency " << concurrency;
    EXPECT_EQ(got.file.size(), expected.size()) << "concurrency " << concurrency;
    EXPECT_TRUE(got.file == expected) << "--topic-out file, concurrency " << concurrency;
  }
}

}  // namespace
}  // namespace sabot::fraud_app
