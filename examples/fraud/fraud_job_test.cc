#include "fraud_job.h"

#include <gtest/gtest.h>
#include <simdjson.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "sabot/codec/json.h"

namespace sabot::fraud {
namespace {

// Dense traffic: 2000 accounts and 5 % injected anomalies, so every rule fires many times.
GeneratorOptions dense(uint64_t seed, int64_t n) {
  return {.transactions = n, .seed = seed, .accounts = 2'000, .fraud_rate = 0.05};
}

std::vector<Transaction> generate(const GeneratorOptions& o) {
  auto r = generate_transactions(o);
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  return std::move(r).value();
}

std::vector<Alert> sorted(std::vector<Alert> v) {
  std::sort(v.begin(), v.end(),
            [](const Alert& a, const Alert& b) { return a.alert_id < b.alert_id; });
  return v;
}

// Every message of a closed topic, parsed as alerts.
std::vector<Alert> read_alert_topic(connectors::MemoryBroker& broker) {
  auto topic = broker.topic("fraud-alerts");
  EXPECT_TRUE(topic.is_ok()) << topic.status().to_string();
  if (!topic.is_ok()) return {};
  EXPECT_TRUE((*topic)->is_closed());
  auto reader = connectors::MemoryTopicReader::open_all(*topic);
  EXPECT_TRUE(reader.is_ok());
  std::vector<Alert> out;
  for (;;) {
    auto polled = (*reader)->poll(100'000, std::chrono::milliseconds(100));
    EXPECT_TRUE(polled.is_ok());
    if (!polled.is_ok()) break;
    for (const auto& pb : polled->batches) {
      const columnar::Array& values = pb.records.column(connectors::kValueColumn);
      for (int64_t i = 0; i < values.length(); ++i) {
        auto alert = parse_alert_json(values.string_view(i));
        EXPECT_TRUE(alert.is_ok()) << alert.status().to_string();
        if (alert.is_ok()) out.push_back(std::move(alert).value());
      }
    }
    if (polled->end_of_input) break;
  }
  return out;
}

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("fraud_job_test_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

void write_jsonl(const std::string& path, const std::vector<Transaction>& rows) {
  codec::JsonEncoder encoder;
  std::ofstream f(path, std::ios::binary);
  f << encoder.encode_lines(to_record_batch(rows));
}

void expect_counts_match(const DemoSummary& s, const std::vector<Alert>& reference) {
  std::map<std::string, int64_t> by_type, by_severity;
  for (const Alert& a : reference) {
    ++by_type[a.fraud_type];
    ++by_severity[a.severity];
  }
  EXPECT_EQ(s.alerts, static_cast<int64_t>(reference.size()));
  EXPECT_EQ(s.alerts_by_type, by_type);
  EXPECT_EQ(s.alerts_by_severity, by_severity);
}

// ---- the streaming detector against the reference --------------------------------------------

TEST(FraudJob, StreamingAlertsEqualTheReferenceForSeedsParallelismAndBatchSizes) {
  std::mt19937_64 rng(2024);
  const int64_t n = 30'000;
  struct Run {
    uint64_t seed;
    int parallelism;
  };
  for (Run run :
       {Run{1, 1}, Run{1, 2}, Run{1, 3}, Run{1, 4}, Run{2, 2}, Run{2, 3}, Run{3, 1}, Run{3, 4}}) {
    const GeneratorOptions g = dense(run.seed, n);
    const std::vector<Alert> reference = reference_alerts(generate(g));
    std::set<std::string> types;
    for (const Alert& a : reference) types.insert(a.fraud_type + "/" + a.severity);
    ASSERT_EQ(types.size(), 4u) << "every rule and both AMOUNT severities should fire";
    ASSERT_GT(reference.size(), 500u);

    connectors::MemoryBroker broker;
    std::ostringstream out;
    DemoOptions o;
    o.transactions = n;
    o.seed = run.seed;
    o.parallelism = run.parallelism;
    o.quiet = true;
    o.out = &out;
    o.generator = g;
    o.batch_size = 1 + static_cast<int64_t>(rng() % 3000);
    o.broker = &broker;
    SCOPED_TRACE("seed " + std::to_string(run.seed) + " parallelism " +
                 std::to_string(run.parallelism) + " batch " + std::to_string(o.batch_size));
    auto summary = run_fraud_demo(o);
    ASSERT_TRUE(summary.is_ok()) << summary.status().to_string();
    EXPECT_EQ(summary->transactions, n);
    EXPECT_EQ(summary->out_of_order, 0);
    expect_counts_match(*summary, reference);
    const std::vector<Alert> streamed = read_alert_topic(broker);
    EXPECT_EQ(streamed.size(), reference.size());
    EXPECT_TRUE(sorted(streamed) == sorted(reference));
  }
}

TEST(FraudJob, AlertsFileHoldsEveryAlertAsAJsonLine) {
  const GeneratorOptions g = dense(5, 20'000);
  const std::vector<Alert> reference = reference_alerts(generate(g));
  const std::string path = temp_path("alerts.jsonl");
  std::ostringstream out;
  DemoOptions o;
  o.transactions = g.transactions;
  o.seed = g.seed;
  o.generator = g;
  o.quiet = true;
  o.out = &out;
  o.alerts_out = path;
  auto summary = run_fraud_demo(o);
  ASSERT_TRUE(summary.is_ok()) << summary.status().to_string();
  std::ifstream f(path);
  std::vector<Alert> lines;
  for (std::string line; std::getline(f, line);) {
    auto a = parse_alert_json(line);
    ASSERT_TRUE(a.is_ok()) << a.status().to_string() << ": " << line;
    lines.push_back(std::move(a).value());
  }
  std::filesystem::remove(path);
  EXPECT_TRUE(sorted(lines) == sorted(reference));
  // Quiet: the summary only.
  EXPECT_EQ(out.str().find("FRAUD:"), std::string::npos);
  EXPECT_NE(out.str().find("Fraud detection summary"), std::string::npos);
}

TEST(FraudJob, ShuffledInputFileGivesTheSameAlertsAsTheGenerator) {
  const GeneratorOptions g = dense(7, 20'000);
  std::vector<Transaction> rows = generate(g);
  // With no two transactions of an account at the same millisecond, the order after sorting by
  // time is unique, so a shuffled file must give exactly the generator's alerts.
  std::set<std::pair<std::string, int64_t>> times;
  for (const Transaction& t : rows) {
    ASSERT_TRUE(times.emplace(t.account_number, t.timestamp_ms).second) << "tie in seed 7";
  }
  std::ostringstream generated_out;
  connectors::MemoryBroker generated_broker;
  DemoOptions o;
  o.transactions = g.transactions;
  o.seed = g.seed;
  o.generator = g;
  o.quiet = true;
  o.out = &generated_out;
  o.broker = &generated_broker;
  ASSERT_TRUE(run_fraud_demo(o).is_ok());
  const std::vector<Alert> from_generator = read_alert_topic(generated_broker);

  std::mt19937_64 rng(99);
  std::shuffle(rows.begin(), rows.end(), rng);
  const std::string path = temp_path("shuffled.jsonl");
  write_jsonl(path, rows);
  connectors::MemoryBroker file_broker;
  std::ostringstream file_out;
  o.input_path = path;
  o.transactions = -1;  // ignored with an input file
  o.parallelism = 3;
  o.broker = &file_broker;
  o.out = &file_out;
  auto summary = run_fraud_demo(o);
  std::filesystem::remove(path);
  ASSERT_TRUE(summary.is_ok()) << summary.status().to_string();
  EXPECT_EQ(summary->transactions, g.transactions);
  EXPECT_EQ(summary->out_of_order, 0);  // the file is sorted by time before producing
  const std::vector<Alert> from_file = read_alert_topic(file_broker);
  EXPECT_GT(from_file.size(), 500u);
  EXPECT_TRUE(sorted(from_file) == sorted(from_generator));
  EXPECT_TRUE(sorted(from_file) == sorted(reference_alerts(rows)));
}

TEST(FraudJob, BadInputLineIsAnErrorNamingFileAndLine) {
  std::vector<Transaction> rows = generate(dense(1, 3));
  const std::string path = temp_path("bad.jsonl");
  {
    codec::JsonEncoder encoder;
    std::ofstream f(path, std::ios::binary);
    f << encoder.encode_lines(to_record_batch(rows));
    f << R"({"transaction_id": 9, "account_number": "1", "transaction_amount": "lots"})"
      << "\n";
  }
  DemoOptions o;
  std::ostringstream out;
  o.out = &out;
  o.quiet = true;
  o.input_path = path;
  auto r = run_fraud_demo(o);
  std::filesystem::remove(path);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find(path + ":4:"), std::string::npos) << r.status().to_string();
  EXPECT_NE(r.status().message().find("transaction_amount"), std::string::npos)
      << r.status().to_string();

  o.input_path = temp_path("does-not-exist.jsonl");
  r = run_fraud_demo(o);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find(o.input_path), std::string::npos) << r.status().to_string();
}

TEST(FraudJob, BadOptionsAreRefusedNamingEachProblem) {
  DemoOptions o;
  o.parallelism = 0;
  o.batch_size = 0;
  auto r = run_fraud_demo(o);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("parallelism"), std::string::npos);
  EXPECT_NE(r.status().message().find("batch_size"), std::string::npos);
  o = DemoOptions{};
  o.transactions = -5;
  EXPECT_FALSE(run_fraud_demo(o).is_ok());
}

// ---- checkpointed runs (the sabot command's --checkpoint-dir) --------------------------------

std::vector<Alert> read_alerts_file(const std::string& path) {
  std::ifstream f(path);
  std::vector<Alert> lines;
  for (std::string line; std::getline(f, line);) {
    auto a = parse_alert_json(line);
    EXPECT_TRUE(a.is_ok()) << a.status().to_string() << ": " << line;
    if (a.is_ok()) lines.push_back(std::move(a).value());
  }
  return lines;
}

TEST(FraudJob, CheckpointedRunWritesTheAlertsFileExactlyOnceAndResumesFromItsCheckpoint) {
  const GeneratorOptions g = dense(13, 20'000);
  const std::vector<Alert> reference = reference_alerts(generate(g));
  const std::string dir = temp_path("checkpoints");
  std::string path = temp_path("checkpointed-alerts.jsonl");
  std::filesystem::remove_all(dir);
  auto run = [&](connectors::MemoryBroker* broker) {
    std::ostringstream out;
    DemoOptions o;
    o.transactions = g.transactions;
    o.seed = g.seed;
    o.generator = g;
    o.parallelism = 3;
    o.quiet = true;
    o.out = &out;
    o.alerts_out = path;
    o.broker = broker;
    auto storage = checkpoint::CheckpointStorage::open(dir);
    EXPECT_TRUE(storage.is_ok());
    o.environment.checkpoint_storage =
        std::make_shared<checkpoint::CheckpointStorage>(std::move(*storage));
    o.environment.checkpoint_interval = std::chrono::milliseconds(20);
    o.environment.delivery = runtime::DeliveryGuarantee::kExactlyOnce;
    return run_fraud_demo(o);
  };
  connectors::MemoryBroker broker;
  auto first = run(&broker);
  ASSERT_TRUE(first.is_ok()) << first.status().to_string();
  EXPECT_EQ(first->transactions, g.transactions);
  expect_counts_match(*first, reference);
  // One file written by the exactly-once sink; no alerts topic (it could not be restored).
  EXPECT_TRUE(sorted(read_alerts_file(path)) == sorted(reference));
  EXPECT_FALSE(broker.topic("fraud-alerts").is_ok());
  // Again: it resumes from the final checkpoint, processes nothing and keeps the file.
  auto again = run(nullptr);
  ASSERT_TRUE(again.is_ok()) << again.status().to_string();
  EXPECT_EQ(again->transactions, 0);
  EXPECT_TRUE(sorted(read_alerts_file(path)) == sorted(reference));
  std::filesystem::remove_all(dir);
  // Without an alerts file (and quiet) the alerts are only counted.
  std::filesystem::remove(path);
  path.clear();
  auto counted = run(nullptr);
  ASSERT_TRUE(counted.is_ok()) << counted.status().to_string();
  expect_counts_match(*counted, reference);
  EXPECT_FALSE(std::filesystem::exists(temp_path("checkpointed-alerts.jsonl")));
  std::filesystem::remove_all(dir);
}

TEST(FraudJob, CheckpointedRunRefusesWhatCannotBeReplayed) {
  const std::string dir = temp_path("refused-checkpoints");
  auto storage = checkpoint::CheckpointStorage::open(dir);
  ASSERT_TRUE(storage.is_ok());
  DemoOptions o;
  o.environment.checkpoint_storage =
      std::make_shared<checkpoint::CheckpointStorage>(std::move(*storage));
  o.rate = 1000;
  o.input_path = "-";
  o.alerts_writer = [](std::string_view) { return Status::ok(); };
  auto r = run_fraud_demo(o);
  std::filesystem::remove_all(dir);
  ASSERT_FALSE(r.is_ok());
  for (const char* what : {"(rate)", "standard input", "alerts_writer"}) {
    EXPECT_NE(r.status().message().find(what), std::string::npos) << r.status().to_string();
  }
}

// ---- summary and console output ----------------------------------------------------------------

TEST(FraudJob, JsonSummaryIsOneWellFormedObjectWithMatchingCounts) {
  const GeneratorOptions g = dense(11, 10'000);
  const std::vector<Alert> reference = reference_alerts(generate(g));
  std::ostringstream out, progress;
  DemoOptions o;
  o.transactions = g.transactions;
  o.seed = g.seed;
  o.generator = g;
  o.json = true;
  o.out = &out;
  o.progress = &progress;
  auto summary = run_fraud_demo(o);
  ASSERT_TRUE(summary.is_ok()) << summary.status().to_string();
  expect_counts_match(*summary, reference);
  EXPECT_TRUE(progress.str().empty());

  const std::string text = out.str();
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1);
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  ASSERT_EQ(parser.parse(text).get(root), simdjson::SUCCESS) << text;
  int64_t transactions = 0, alerts = 0, by_type_sum = 0, by_severity_sum = 0;
  ASSERT_EQ(root["transactions"].get(transactions), simdjson::SUCCESS);
  ASSERT_EQ(root["alerts"].get(alerts), simdjson::SUCCESS);
  EXPECT_EQ(transactions, g.transactions);
  EXPECT_EQ(alerts, static_cast<int64_t>(reference.size()));
  simdjson::dom::object by_type, by_severity;
  ASSERT_EQ(root["alerts_by_type"].get(by_type), simdjson::SUCCESS);
  ASSERT_EQ(root["alerts_by_severity"].get(by_severity), simdjson::SUCCESS);
  for (auto [k, v] : by_type) {
    int64_t n = 0;
    ASSERT_EQ(v.get(n), simdjson::SUCCESS);
    EXPECT_EQ(n, summary->alerts_by_type.at(std::string(k)));
    by_type_sum += n;
  }
  for (auto [k, v] : by_severity) {
    int64_t n = 0;
    ASSERT_EQ(v.get(n), simdjson::SUCCESS);
    by_severity_sum += n;
  }
  EXPECT_EQ(by_type_sum, alerts);
  EXPECT_EQ(by_severity_sum, alerts);
  for (const char* key : {"wall_s", "cpu_s", "tx_per_s", "tx_per_cpu_s", "generate_s"}) {
    double v = -1;
    ASSERT_EQ(root[key].get(v), simdjson::SUCCESS) << key;
    EXPECT_GT(v, 0) << key;
  }
  double p50 = -1, p95 = -1, p99 = -1;
  ASSERT_EQ(root["latency_ms"]["p50"].get(p50), simdjson::SUCCESS);
  ASSERT_EQ(root["latency_ms"]["p95"].get(p95), simdjson::SUCCESS);
  ASSERT_EQ(root["latency_ms"]["p99"].get(p99), simdjson::SUCCESS);
  EXPECT_GT(p50, 0);
  EXPECT_LE(p50, p95);
  EXPECT_LE(p95, p99);
}

TEST(FraudJob, ConsoleModePrintsOneLinePerAlertThenTheSummary) {
  const GeneratorOptions g = dense(13, 5'000);
  const std::vector<Alert> reference = reference_alerts(generate(g));
  std::ostringstream out, progress;
  DemoOptions o;
  o.transactions = g.transactions;
  o.seed = g.seed;
  o.generator = g;
  o.out = &out;
  o.progress = &progress;
  ASSERT_TRUE(run_fraud_demo(o).is_ok());
  std::multiset<std::string> expected, printed;
  for (const Alert& a : reference) {
    expected.insert(alert_console_line(a.severity, a.fraud_type, a.account_number, a.details));
  }
  std::istringstream lines(out.str());
  std::string line;
  while (std::getline(lines, line) && line != "Fraud detection summary") printed.insert(line);
  EXPECT_EQ(line, "Fraud detection summary");
  EXPECT_TRUE(printed == expected);
}

TEST(FraudJob, ConsoleLineHasTheMarkOfEachSeverityAndTheLastSixDigits) {
  EXPECT_EQ(alert_console_line("LOW", "VELOCITY", "1234567890", "3 transactions in 60s"),
            "⚠️ FRAUD: VELOCITY - Account …567890 - 3 transactions in 60s");
  EXPECT_EQ(alert_console_line("MEDIUM", "VELOCITY", "1234567890", "x"),
            "🟡 FRAUD: VELOCITY - Account …567890 - x");
  EXPECT_EQ(alert_console_line("HIGH", "AMOUNT_ANOMALY", "000111222333", "Amount 1.00 PEN"),
            "🟠 FRAUD: AMOUNT_ANOMALY - Account …222333 - Amount 1.00 PEN");
  EXPECT_EQ(alert_console_line("CRITICAL", "GEO_IMPOSSIBLE", "42", "Lima→Cusco in 1.0min (570km)"),
            "🚨 FRAUD: GEO_IMPOSSIBLE - Account …42 - Lima→Cusco in 1.0min (570km)");
}

// ---- pieces
// --------------------------------------------------------------------------------------

TEST(FraudJob, AlertJsonHasARealArrayAndRoundTrips) {
  AlertEvent e{"FA-7-VELOCITY",   7,      "0012\"34", "VELOCITY", "HIGH", "3 transactions in 60s\n",
               1'700'000'000'000, "[3,5]"};
  std::string json;
  append_alert_json(e, &json);
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  ASSERT_EQ(parser.parse(json).get(root), simdjson::SUCCESS) << json;
  simdjson::dom::array related;
  ASSERT_EQ(root["related_transactions"].get(related), simdjson::SUCCESS) << json;
  EXPECT_EQ(related.size(), 2u);
  auto a = parse_alert_json(json);
  ASSERT_TRUE(a.is_ok()) << a.status().to_string();
  EXPECT_EQ(a->alert_id, "FA-7-VELOCITY");
  EXPECT_EQ(a->account_number, "0012\"34");
  EXPECT_EQ(a->details, "3 transactions in 60s\n");
  EXPECT_EQ(a->timestamp_ms, 1'700'000'000'000);
  EXPECT_EQ(a->related_transactions, (std::vector<int64_t>{3, 5}));
  e.related_transactions = "";
  json.clear();
  append_alert_json(e, &json);
  EXPECT_NE(json.find("\"related_transactions\":[]"), std::string::npos) << json;
  EXPECT_FALSE(parse_alert_json(R"({"alert_id": 1})").is_ok());
  EXPECT_FALSE(parse_alert_json("{").is_ok());
}

TEST(FraudJob, LatencyQuantilesAreWithinTheBucketPrecision) {
  std::mt19937_64 rng(3);
  std::lognormal_distribution<double> dist(12.0, 2.0);  // ~160 us median, wide spread
  LatencyHistogram h, a, b;
  std::vector<int64_t> values;
  for (int i = 0; i < 50'000; ++i) {
    const auto v = static_cast<int64_t>(dist(rng));
    values.push_back(v);
    h.record(v);
    (i % 2 ? a : b).record(v);
  }
  a.merge(b);
  std::sort(values.begin(), values.end());
  for (double q : {0.01, 0.5, 0.95, 0.99, 1.0}) {
    const auto rank = static_cast<size_t>(std::ceil(q * static_cast<double>(values.size())));
    const double exact = static_cast<double>(values[rank - 1]);
    EXPECT_NEAR(h.quantile_ns(q), exact, exact * 0.0625 + 1) << q;
    EXPECT_EQ(a.quantile_ns(q), h.quantile_ns(q));
  }
  EXPECT_EQ(h.count(), 50'000);
  for (int64_t v = 0; v < 16; ++v) EXPECT_EQ(LatencyHistogram::bucket_of(v), v);
  EXPECT_EQ(LatencyHistogram().quantile_ns(0.5), 0);
}

// The rules of FRAUD.md applied plainly in arrival order (no sorting): what the detector must
// give when rows of an account arrive behind its latest time.
std::vector<Alert> arrival_order_alerts(const std::vector<Transaction>& rows) {
  struct State {
    std::deque<std::pair<int64_t, int64_t>> recent;
    int64_t count = 0;
    double sum = 0, sum_sq = 0;
    bool has_previous = false;
    std::string city;
    int64_t previous_ms = 0;
  };
  std::map<std::string, State> states;
  std::vector<Alert> out;
  auto alert = [&](const Transaction& t, const std::string& type, const std::string& severity,
                   const std::string& details) {
    Alert a;
    a.alert_id = "FA-" + std::to_string(t.transaction_id) + "-" + type;
    a.transaction_id = t.transaction_id;
    a.account_number = t.account_number;
    a.fraud_type = type;
    a.severity = severity;
    a.details = details;
    a.timestamp_ms = t.timestamp_ms;
    return a;
  };
  char buf[256];
  for (const Transaction& t : rows) {
    State& s = states[t.account_number];
    std::vector<int64_t> related;
    for (const auto& [id, ts] : s.recent) {
      if (t.timestamp_ms - ts < 60'000) related.push_back(id);
    }
    if (related.size() >= 2) {
      out.push_back(alert(t, "VELOCITY", "HIGH",
                          std::to_string(related.size() + 1) + " transactions in 60s"));
      out.back().related_transactions = related;
    }
    if (s.count >= 5) {
      const double mean = s.sum / static_cast<double>(s.count);
      const double variance = s.sum_sq / static_cast<double>(s.count) - mean * mean;
      if (variance > 0) {
        const double z = (t.transaction_amount - mean) / std::sqrt(variance);
        if (std::abs(z) > 3.0) {
          std::snprintf(buf, sizeof buf, "Amount %.2f %s is %.1fσ from mean %.2f",
                        t.transaction_amount, t.currency.c_str(), z, mean);
          out.push_back(alert(t, "AMOUNT_ANOMALY", z > 4.0 ? "CRITICAL" : "HIGH", buf));
        }
      }
    }
    if (s.has_previous && s.city != t.branch_city) {
      const double minutes = static_cast<double>(t.timestamp_ms - s.previous_ms) / 60000.0;
      if (minutes < 10.0) {
        std::snprintf(buf, sizeof buf, "%s→%s in %.1fmin (%.0fkm)", s.city.c_str(),
                      t.branch_city.c_str(), minutes, city_distance_km(s.city, t.branch_city));
        out.push_back(alert(t, "GEO_IMPOSSIBLE", "CRITICAL", buf));
      }
    }
    s.recent.emplace_back(t.transaction_id, t.timestamp_ms);
    if (s.recent.size() > 100) s.recent.pop_front();
    ++s.count;
    s.sum += t.transaction_amount;
    s.sum_sq += t.transaction_amount * t.transaction_amount;
    s.has_previous = true;
    s.city = t.branch_city;
    s.previous_ms = t.timestamp_ms;
  }
  return out;
}

TEST(FraudJob, DetectorFollowsArrivalOrderWithLongHistoriesUnknownCitiesAndLateRows) {
  // 30 accounts: ~700 transactions each, so the VELOCITY history is spilled and cut back many
  // times. Some cities are not among the 12 (one longer than a short string), and some rows
  // arrive behind their account's latest time.
  std::vector<Transaction> rows =
      generate({.transactions = 20'000, .seed = 17, .accounts = 30, .fraud_rate = 0.05});
  for (size_t i = 0; i < rows.size(); i += 53) {
    rows[i].branch_city = i % 2 ? "Gotham" : "Llanfairpwllgwyngyll-on-Sea";
  }
  for (size_t i = 0; i + 1 < rows.size(); i += 7) std::swap(rows[i], rows[i + 1]);
  std::map<std::string, int64_t> latest;
  int64_t expected_late = 0;
  for (const Transaction& t : rows) {
    auto [it, fresh] = latest.emplace(t.account_number, t.timestamp_ms);
    if (!fresh) {
      expected_late += t.timestamp_ms < it->second;
      it->second = std::max(it->second, t.timestamp_ms);
    }
  }
  ASSERT_GT(expected_late, 100);
  const std::vector<Alert> expected = arrival_order_alerts(rows);
  std::set<std::string> kinds;
  for (const Alert& a : expected) {
    kinds.insert(a.fraud_type);
    if (a.details.find("Gotham") != std::string::npos) kinds.insert("unknown city");
  }
  ASSERT_EQ(kinds.size(), 4u);

  connectors::MemoryBroker broker;
  auto topic = broker.create_topic("bank-transactions", {.partitions = kTopicPartitions});
  ASSERT_TRUE(topic.is_ok());
  ASSERT_TRUE(produce_transactions(rows, *topic).is_ok());  // in the given order
  Environment env({.parallelism = 2, .batch_size = 777});
  auto stats = std::make_shared<DetectorStats>();
  auto collected = add_fraud_detector(env, {.broker = &broker}, stats).collect();
  JobResult result = env.execute("arrival-order");
  ASSERT_TRUE(result.ok()) << result.status().to_string();
  EXPECT_EQ(stats->transactions(), static_cast<int64_t>(rows.size()));
  EXPECT_EQ(stats->out_of_order(), expected_late);
  EXPECT_EQ(stats->alerts(), static_cast<int64_t>(expected.size()));

  auto batch = collected->to_batch();
  ASSERT_TRUE(batch.is_ok());
  auto events = read_rows<AlertEvent>(*batch);
  ASSERT_TRUE(events.is_ok());
  std::vector<Alert> streamed;
  for (const AlertEvent& e : *events) {
    std::string json;
    append_alert_json(e, &json);
    auto a = parse_alert_json(json);
    ASSERT_TRUE(a.is_ok()) << a.status().to_string();
    streamed.push_back(std::move(a).value());
  }
  EXPECT_EQ(streamed.size(), expected.size());
  EXPECT_TRUE(sorted(streamed) == sorted(expected));
}

}  // namespace
}  // namespace sabot::fraud
