#include "sabot/app/app.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include <unistd.h>

#include "sabot/connectors/memory_broker.h"

namespace sabot::app {
namespace {

using namespace std::chrono_literals;
using connectors::MemoryBroker;
using connectors::TopicPtr;

struct Message {
  int32_t partition;
  int64_t offset;
  std::optional<std::string> key;
  std::string value;
  int64_t timestamp_ms;
};

// Every committed message of a closed topic, partition by partition in offset order.
std::vector<Message> read_all(MemoryBroker& broker, const std::string& name) {
  TopicPtr t = broker.topic(name).value();
  auto reader = connectors::MemoryTopicReader::open_all(t).value();
  std::vector<Message> out;
  while (true) {
    auto polled = reader->poll(1 << 20, 1000ms).value();
    for (const auto& pb : polled.batches) {
      const auto& keys = pb.records.column(connectors::kKeyColumn);
      const auto& values = pb.records.column(connectors::kValueColumn);
      const auto& ts = pb.records.column(connectors::kTimestampColumn);
      for (int64_t r = 0; r < pb.records.num_rows(); ++r) {
        Message m{pb.partition.value(), pb.base_offset + r, std::nullopt,
                  std::string(values.string_view(r)), ts.value<int64_t>(r)};
        if (keys.is_valid(r)) m.key = std::string(keys.string_view(r));
        out.push_back(std::move(m));
      }
    }
    if (polled.end_of_input) break;
  }
  std::stable_sort(out.begin(), out.end(), [](const Message& a, const Message& b) {
    return a.partition != b.partition ? a.partition < b.partition : a.offset < b.offset;
  });
  return out;
}

void produce(MemoryBroker& broker, const std::string& name, int partitions,
             const std::vector<std::pair<std::string, std::string>>& records,
             int64_t timestamp_ms = 0) {
  TopicPtr t = broker.create_topic(name, {.partitions = partitions}).value();
  auto w = connectors::MemoryTopicWriter::open(t).value();
  for (const auto& [k, v] : records) {
    ASSERT_TRUE(w->send(std::string_view(k), std::string_view(v), Timestamp(timestamp_ms)).is_ok());
  }
  ASSERT_TRUE(w->close().is_ok());
}

// Values per key in the order they appear (one partition per key keeps their order).
std::map<std::string, std::vector<std::string>> by_key(const std::vector<Message>& messages) {
  std::map<std::string, std::vector<std::string>> out;
  for (const auto& m : messages) out[m.key.value_or("")].push_back(m.value);
  return out;
}

std::vector<std::string> one_to(int64_t n) {
  std::vector<std::string> out;
  for (int64_t i = 1; i <= n; ++i) out.push_back(std::to_string(i));
  return out;
}

class WordCountTest : public testing::TestWithParam<std::string> {};

// Word count with its tables in memory and in RocksDB.
TEST_P(WordCountTest, AgentsTalkThroughTopicsAndCountExactlyOnce) {
  MemoryBroker broker;
  std::ostringstream log;
  const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                    ("app_test_" + GetParam() + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  App app("word-count", {.checkpoint_interval = 20ms,
                         .state_backend = GetParam(),
                         .state_dir = GetParam() == "rocksdb" ? dir.string() : std::string(),
                         .memory_broker = &broker,
                         .log = &log});
  auto lines = app.topic<std::string>("lines", {.partitions = 2});
  auto words = app.topic<std::string>("words", {.partitions = 3});
  app.topic<std::string>("counts");
  auto counts = app.table<std::string, int64_t>("word-counts");
  app.agent(lines,
            [&](std::string_view line, AgentContext& ctx) {
              size_t start = 0;
              while (start < line.size()) {
                size_t end = line.find(' ', start);
                if (end == std::string_view::npos) end = line.size();
                if (end > start) {
                  std::string w(line.substr(start, end - start));
                  ctx.send(words, w, w);
                }
                start = end + 1;
              }
            },
            {.name = "split", .sinks = {"words"}});
  app.agent(words,
            [&](std::string_view w, AgentContext& ctx) {
              counts[std::string(w)] += 1;
              ctx.send("counts", w, std::to_string(counts[std::string(w)].get()));
            },
            {.name = "count", .concurrency = 3, .sinks = {"counts"}});

  std::vector<std::pair<std::string, std::string>> input;
  std::map<std::string, int64_t> expected;
  std::mt19937 rng(7);
  const std::vector<std::string> vocabulary = {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"};
  for (int i = 0; i < 300; ++i) {
    std::string line;
    for (int j = 0; j < 5; ++j) {
      const std::string& w = vocabulary[rng() % vocabulary.size()];
      ++expected[w];
      line += (j ? " " : "") + w;
    }
    input.emplace_back("line-" + std::to_string(i), line);
  }
  produce(broker, "lines", 2, input);
  broker.topic("lines").value()->close();

  WorkerReport report = app.run();
  ASSERT_TRUE(report.status.is_ok()) << report.status.to_string() << log.str();
  EXPECT_EQ(report.failures, 0);
  auto got = by_key(read_all(broker, "counts"));
  ASSERT_EQ(got.size(), expected.size());
  for (const auto& [w, n] : expected) EXPECT_EQ(got[w], one_to(n)) << w;
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Backends, WordCountTest, testing::Values("memory", "rocksdb"));

// App::read_table and table_json (the `table` command and /api/tables/NAME): the values of the
// newest checkpoint of every agent, across subtasks, with key filter, limit and refusals.
// On RocksDB (with a checkpoint directory) the agents' checkpoints are incremental: the reader
// restores them into a scratch instance first.
class TableReadTest : public testing::TestWithParam<std::string> {};

TEST_P(TableReadTest, ReadsTheNewestCheckpointsOfEveryAgent) {
  MemoryBroker broker;
  std::ostringstream log;
  const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                    ("app_table_read_" + GetParam() + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  App app("tables", {.checkpoints = (dir / "ck").string(),
                     .checkpoint_interval = 20ms,
                     .state_backend = GetParam(),
                     .state_dir = GetParam() == "rocksdb" ? (dir / "state").string() : "",
                     .memory_broker = &broker,
                     .log = &log});
  auto words = app.topic<std::string>("words", {.partitions = 3});
  auto counts = app.table<std::string, int64_t>("counts");
  app.agent(words, [&](std::string_view w, AgentContext&) { counts[std::string(w)] += 1; },
            {.name = "count", .concurrency = 2});
  produce(broker, "words", 3,
          {{"a", "a"}, {"b", "b"}, {"a", "a"}, {"q\"", "q\""}, {"a", "a"}, {"c", "c"}});
  broker.topic("words").value()->close();
  WorkerReport report = app.run();
  ASSERT_TRUE(report.status.is_ok()) << report.status.to_string() << log.str();

  auto all = app.read_table("counts", "", (dir / "ck").string());
  ASSERT_TRUE(all.is_ok()) << all.status().to_string();
  std::map<std::string, std::string> values;
  for (const auto& e : all->entries) values[e.key] = e.value_json;
  EXPECT_EQ(values,
            (std::map<std::string, std::string>{{"a", "3"}, {"b", "1"}, {"c", "1"}, {"q\"", "1"}}));
  ASSERT_EQ(all->checkpoints.size(), 1u);
  EXPECT_EQ(all->checkpoints[0].first, "count");
  EXPECT_FALSE(all->truncated);

  auto limited = app.read_table("counts", "", (dir / "ck").string(), 2);
  ASSERT_TRUE(limited.is_ok());
  EXPECT_EQ(limited->entries.size(), 2u);
  EXPECT_TRUE(limited->truncated);

  auto one = app.table_json("counts", "q\"", (dir / "ck").string(), 0);
  ASSERT_TRUE(one.is_ok());
  EXPECT_EQ(*one,
            "{\"table\":\"counts\",\"key\":\"q\\\"\",\"checkpoints\":[{\"agent\":\"count\","
            "\"id\":" +
                std::to_string(all->checkpoints[0].second) +
                "}],\"entries\":[{\"key\":\"q\\\"\",\"value\":1}],\"truncated\":false}");
  auto none = app.read_table("counts", "zzz", (dir / "ck").string());
  ASSERT_TRUE(none.is_ok());
  EXPECT_TRUE(none->entries.empty());

  auto unknown = app.read_table("nope", "", (dir / "ck").string());
  EXPECT_EQ(unknown.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(unknown.status().message(), "the app declares no table 'nope'");
  EXPECT_EQ(app.read_table("counts", "", "").status().code(), StatusCode::kInvalidArgument);
  if (GetParam() == "rocksdb") {
    // The incremental checkpoint keeps its SST files in the checkpoint directory's shared/.
    EXPECT_TRUE(std::filesystem::exists(dir / "ck" / "count" / "shared"));
  }
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Backends, TableReadTest, testing::Values("memory", "rocksdb"));

// Three agents over their own topics; one fails once on a chosen record.
struct SupervisionCase {
  Strategy strategy;
  std::string failing;              // the agent that fails
  std::set<std::string> restarted;  // who the supervisor restarts
};

class SupervisionTest : public testing::TestWithParam<SupervisionCase> {};

TEST_P(SupervisionTest, RestartsWhomTheStrategySaysAndStaysExactlyOnce) {
  const SupervisionCase& c = GetParam();
  MemoryBroker broker;
  std::ostringstream log;
  App app("supervised", {.checkpoint_interval = 10ms, .memory_broker = &broker, .log = &log});
  auto counts = app.table<std::string, int64_t>("counts");
  std::atomic<bool> armed{true};
  std::atomic<bool> thrown{false};
  std::atomic<int> after_restart{0};  // records the failed agent processed after its restart
  for (const std::string name : {"a", "b", "c"}) {
    auto in = app.topic<std::string>("in-" + name);
    app.topic<std::string>("out-" + name);
    const bool failing = name == c.failing;
    app.agent(in,
              [&, failing, name](std::string_view v, AgentContext& ctx) {
                if (failing && v == "poison" && armed.exchange(false)) {
                  thrown = true;
                  throw std::runtime_error("poison record");
                }
                if (failing && thrown.load()) ++after_restart;
                counts[std::string(ctx.key())] += 1;
                ctx.send("out-" + name, ctx.key(),
                         std::to_string(counts[std::string(ctx.key())].get()));
              },
              {.name = name,
               .supervisor = {.strategy = c.strategy, .max_restarts = 3, .within = 60s},
               .sinks = {"out-" + name}});
  }
  for (const std::string name : {"a", "b", "c"}) {
    std::vector<std::pair<std::string, std::string>> records;
    for (int i = 0; i < 10; ++i) {
      records.emplace_back("k" + std::to_string(i % 3), i == 5 ? "poison" : "v");
    }
    TopicPtr t = broker.create_topic("in-" + name, {.partitions = 1}).value();
    auto w = connectors::MemoryTopicWriter::open(t).value();
    for (const auto& [k, v] : records) ASSERT_TRUE(w->send(k, v, Timestamp(0)).is_ok());
    ASSERT_TRUE(w->close().is_ok());
  }
  WorkerReport report;
  std::thread worker([&] { report = app.run(); });
  // The inputs stay open (no agent can finish) until the failed agent runs again: by then the
  // supervisor has stopped every agent its strategy restarts.
  while (after_restart.load() == 0) std::this_thread::sleep_for(1ms);
  for (const std::string name : {"a", "b", "c"}) broker.topic("in-" + name).value()->close();
  worker.join();
  ASSERT_TRUE(report.status.is_ok()) << report.status.to_string() << log.str();
  EXPECT_EQ(report.failures, 1);
  EXPECT_EQ(std::set<std::string>(report.agents_restarted.begin(), report.agents_restarted.end()),
            c.restarted);
  EXPECT_EQ(report.agents_restarted.size(), c.restarted.size());
  const std::string l = log.str();
  EXPECT_NE(l.find("agent '" + c.failing + "' failed on topic 'in-" + c.failing +
                   "' partition 0 offset 5 (key 'k2'): poison record"),
            std::string::npos)
      << l;
  EXPECT_NE(l.find(std::string(strategy_name(c.strategy)) + ", restart 1 of at most 3"),
            std::string::npos)
      << l;
  for (const std::string name : {"a", "b", "c"}) {
    auto got = by_key(read_all(broker, "out-" + name));
    EXPECT_EQ(got["k0"], one_to(4)) << name;
    EXPECT_EQ(got["k1"], one_to(3)) << name;
    EXPECT_EQ(got["k2"], one_to(3)) << name;
  }
}

INSTANTIATE_TEST_SUITE_P(Strategies, SupervisionTest,
                         testing::Values(SupervisionCase{Strategy::kOneForOne, "a", {"a"}},
                                         SupervisionCase{
                                             Strategy::kOneForAll, "a", {"a", "b", "c"}},
                                         SupervisionCase{Strategy::kRestForOne, "b", {"b", "c"}}),
                         [](const auto& info) {
                           std::string n(strategy_name(info.param.strategy));
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

TEST(AppTest, AnAgentThatKeepsFailingStopsTheWorkerWithTheCause) {
  MemoryBroker broker;
  std::ostringstream log;
  App app("failing", {.checkpoint_interval = 10ms, .memory_broker = &broker, .log = &log});
  auto in = app.topic<std::string>("in");
  std::atomic<int> attempts{0};
  app.agent(in,
            [&](std::string_view v, AgentContext&) {
              if (v == "poison") {
                ++attempts;
                throw std::runtime_error("cannot handle " + std::string(v));
              }
            },
            {.name = "fragile", .supervisor = {.max_restarts = 2, .within = 60s}});
  // The topic stays open: without the intensity limit the worker would run forever.
  TopicPtr t = broker.create_topic("in", {.partitions = 1}).value();
  auto w = connectors::MemoryTopicWriter::open(t).value();
  for (std::string v : {"ok", "ok", "poison", "ok"})
    ASSERT_TRUE(w->send("k", v, Timestamp(0)).is_ok());
  ASSERT_TRUE(w->flush().is_ok());
  WorkerReport report = app.run();
  ASSERT_FALSE(report.status.is_ok());
  const std::string m = report.status.message();
  EXPECT_NE(m.find("agent 'fragile' failed more than 2 restarts allow within 60000 ms"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("topic 'in' partition 0 offset 2 (key 'k'): cannot handle poison"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("cannot handle poison"), std::string::npos) << m;
  EXPECT_EQ(report.failures, 3);
  EXPECT_EQ(report.restarts, 2);
  EXPECT_EQ(attempts.load(), 3);
  EXPECT_NE(log.str().find("app: worker stopped: agent 'fragile'"), std::string::npos) << log.str();
}

TEST(AppTest, PoisonRecordsGoToTheDeadLetterTopicByPolicy) {
  MemoryBroker broker;
  std::ostringstream log;
  App app("dlq", {.checkpoint_interval = 10ms, .memory_broker = &broker, .log = &log});
  auto in = app.topic<std::string>("in", {.partitions = 2});
  app.topic<std::string>("out");
  app.agent(in,
            [&](std::string_view v, AgentContext& ctx) {
              if (v.starts_with("bad"))
                throw std::invalid_argument("not a number: " + std::string(v));
              ctx.send("out", ctx.key(), v);
            },
            {.name = "parser", .on_error = OnError::kDeadLetter, .sinks = {"out"}});
  std::vector<std::pair<std::string, std::string>> records;
  for (int i = 0; i < 20; ++i) {
    records.emplace_back("k" + std::to_string(i), i % 7 == 3 ? "bad" + std::to_string(i) : "1");
  }
  produce(broker, "in", 2, records);
  broker.topic("in").value()->close();
  WorkerReport report = app.run();
  ASSERT_TRUE(report.status.is_ok()) << report.status.to_string();
  EXPECT_EQ(report.dead_letters, 3);
  EXPECT_EQ(report.failures, 0);
  EXPECT_EQ(read_all(broker, "out").size(), 17u);
  auto letters = read_all(broker, "parser-dead-letters");
  ASSERT_EQ(letters.size(), 3u);
  std::set<std::string> keys;
  for (const auto& l : letters) {
    keys.insert(*l.key);
    EXPECT_NE(l.value.find("\"agent\":\"parser\",\"topic\":\"in\",\"partition\":"),
              std::string::npos)
        << l.value;
    EXPECT_NE(l.value.find("\"error\":\"not a number: bad"), std::string::npos) << l.value;
  }
  EXPECT_EQ(keys, (std::set<std::string>{"k3", "k10", "k17"}));
}

TEST(AppTest, ConcurrencySpreadsPartitionsAndTheContextNamesEachRecord) {
  MemoryBroker broker;
  std::ostringstream log;
  App app("spread", {.checkpoint_interval = 20ms, .memory_broker = &broker, .log = &log});
  auto in = app.topic<Raw>("in", {.partitions = 3});
  app.topic<std::string>("seen");
  app.agent(in,
            [&](Raw v, AgentContext& ctx) {
              ctx.send("seen", ctx.key(),
                       std::to_string(ctx.partition()) + ":" + std::to_string(ctx.offset()) + ":" +
                           std::to_string(ctx.timestamp().millis()) + ":" + std::string(v.bytes));
            },
            {.concurrency = 3, .sinks = {"seen"}});
  std::vector<std::pair<std::string, std::string>> records;
  for (int i = 0; i < 200; ++i) records.emplace_back("key" + std::to_string(i % 17), "x");
  produce(broker, "in", 3, records, 1234);
  TopicPtr t = broker.topic("in").value();
  t->close();
  WorkerReport report = app.run();
  ASSERT_TRUE(report.status.is_ok()) << report.status.to_string();
  std::set<std::pair<int, int64_t>> seen;
  for (const auto& m : read_all(broker, "seen")) {
    int p = 0;
    long long off = 0;
    long long ts = 0;
    ASSERT_EQ(std::sscanf(m.value.c_str(), "%d:%lld:%lld:", &p, &off, &ts), 3) << m.value;
    EXPECT_EQ(ts, 1234);
    EXPECT_EQ(p, t->partition_for_key(*m.key).value());
    EXPECT_TRUE(seen.insert({p, off}).second) << "duplicate " << m.value;
  }
  std::set<std::pair<int, int64_t>> all;
  for (int p = 0; p < 3; ++p) {
    for (int64_t o = 0; o < t->end_offset(PartitionId(p)).value(); ++o) all.insert({p, o});
  }
  EXPECT_EQ(seen, all);
}

// A windowed table against a plain model: each record adds 1 to every window of its key that
// holds its time; current() is the newest such window's count after the update.
TEST(AppTest, WindowedTablesMatchAReferenceModel) {
  for (const auto& [size, step] : std::vector<std::pair<int64_t, int64_t>>{{10, 10}, {30, 10}}) {
    MemoryBroker broker;
    std::ostringstream log;
    App app("windows", {.checkpoint_interval = 20ms, .memory_broker = &broker, .log = &log});
    auto in = app.topic<std::string>("events", {.partitions = 2});
    app.topic<std::string>("current");
    auto table = app.hopping_table<std::string, int64_t>(
        "per-window", std::chrono::milliseconds(size), std::chrono::milliseconds(step));
    app.agent(in,
              [&](std::string_view, AgentContext& ctx) {
                std::string k(ctx.key());
                table[k] += 1;
                ctx.send("current", k,
                         std::to_string(ctx.timestamp().millis()) + " " +
                             std::to_string(table[k].current()) + " " +
                             std::to_string(table[k].value_at(ctx.timestamp().millis() - size)));
              },
              {.concurrency = 2, .sinks = {"current"}});
    std::mt19937 rng(11);
    TopicPtr t = broker.create_topic("events", {.partitions = 2}).value();
    auto w = connectors::MemoryTopicWriter::open(t).value();
    std::map<std::string, std::vector<int64_t>> times;  // per key, in arrival order
    for (int i = 0; i < 400; ++i) {
      std::string k = "k" + std::to_string(rng() % 5);
      int64_t ts = static_cast<int64_t>(rng() % 200);  // out of order
      times[k].push_back(ts);
      ASSERT_TRUE(w->send(std::string_view(k), std::string_view("e"), Timestamp(ts)).is_ok());
    }
    ASSERT_TRUE(w->close().is_ok());
    t->close();
    WorkerReport report = app.run();
    ASSERT_TRUE(report.status.is_ok()) << report.status.to_string();
    auto got = by_key(read_all(broker, "current"));
    for (const auto& [k, ts] : times) {
      ASSERT_EQ(got[k].size(), ts.size()) << k;
      for (size_t i = 0; i < ts.size(); ++i) {
        // The model: windows [s, s + size) with s a multiple of step; the newest holding t.
        auto newest = [&](int64_t t0) {
          return (t0 >= 0 ? t0 / step : (t0 - step + 1) / step) * step;
        };
        auto count_in = [&](int64_t start) {
          int64_t n = 0;
          for (size_t j = 0; j <= i; ++j) n += ts[j] >= start && ts[j] < start + size;
          return n;
        };
        const int64_t s = newest(ts[i]);
        const int64_t older = newest(ts[i] - size);
        // A window is only written by records it holds, so it counts them all.
        const std::string want = std::to_string(ts[i]) + " " + std::to_string(count_in(s)) + " " +
                                 std::to_string(count_in(older));
        EXPECT_EQ(got[k][i], want) << k << " #" << i << " size " << size << " step " << step;
      }
    }
  }
}

// A list table against a plain model, in memory and in RocksDB (where appends are merges): random
// appends, multi-appends, replacements and erasures per key; after each the agent sends the list.
class ListTableTest : public testing::TestWithParam<std::string> {};

TEST_P(ListTableTest, AppendsReplacesAndErasesMatchAModel) {
  MemoryBroker broker;
  std::ostringstream log;
  const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                    ("app_list_table_" + GetParam() + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  App app("lists", {.checkpoint_interval = 5ms,
                    .state_backend = GetParam(),
                    .state_dir = GetParam() == "rocksdb" ? dir.string() : std::string(),
                    .memory_broker = &broker,
                    .log = &log});
  auto ops = app.topic<std::string>("ops", {.partitions = 3});
  app.topic<std::string>("lists");
  auto lists = app.list_table<std::string, int64_t>("lists");
  auto render = [](std::span<const int64_t> values) {
    std::string out;
    for (int64_t v : values) out += std::to_string(v) + ",";
    return out;
  };
  // An op: "+N" appends N, "*N" appends N, N+1 and N+2 at once, "=N" replaces the list with
  // [N], "!" erases the key.
  app.agent(ops,
            [&](std::string_view op, AgentContext& ctx) {
              const std::string k(ctx.key());
              const int64_t n = op.size() > 1 ? std::stoll(std::string(op.substr(1))) : 0;
              if (op[0] == '+') {
                lists[k].append(n);
              } else if (op[0] == '*') {
                const std::vector<int64_t> three = {n, n + 1, n + 2};
                lists[k].append_all(three);
              } else if (op[0] == '=') {
                lists[k].replace({n});
              } else {
                lists[k].erase();
              }
              ctx.send("lists", k,
                       std::to_string(lists[k].size()) + ":" + render(lists[k].values()));
            },
            {.concurrency = 2, .sinks = {"lists"}});
  std::mt19937 rng(5);
  std::vector<std::pair<std::string, std::string>> input;
  std::map<std::string, std::vector<int64_t>> model;
  std::map<std::string, std::vector<std::string>> expected;
  for (int i = 0; i < 2000; ++i) {
    const std::string k = "k" + std::to_string(rng() % 7);
    const int64_t n = static_cast<int64_t>(rng() % 1000);
    const unsigned kind = rng() % 20;
    std::string op;
    std::vector<int64_t>& m = model[k];
    if (kind < 12) {
      op = "+" + std::to_string(n);
      m.push_back(n);
    } else if (kind < 17) {
      op = "*" + std::to_string(n);
      m.insert(m.end(), {n, n + 1, n + 2});
    } else if (kind < 19) {
      op = "=" + std::to_string(n);
      m = {n};
    } else {
      op = "!";
      m.clear();
    }
    input.emplace_back(k, op);
    expected[k].push_back(std::to_string(m.size()) + ":" + render(m));
  }
  produce(broker, "ops", 3, input);
  broker.topic("ops").value()->close();
  WorkerReport report = app.run();
  ASSERT_TRUE(report.status.is_ok()) << report.status.to_string() << log.str();
  EXPECT_EQ(by_key(read_all(broker, "lists")), expected);
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Backends, ListTableTest, testing::Values("memory", "rocksdb"));

TEST(AppTest, TimersRunOnTheAppClockAndSendToTopics) {
  MemoryBroker broker;
  ManualClock clock(Timestamp(1'000'000));
  std::ostringstream log;
  App app("ticker",
          {.checkpoint_interval = 20ms, .clock = &clock, .memory_broker = &broker, .log = &log});
  auto ticks = app.topic<std::string>("ticks");
  std::atomic<int> fired{0};
  app.timer(10s, [&] {
    ++fired;
    ASSERT_TRUE(app.send("ticks", std::nullopt, "tick").is_ok());
  });
  app.agent(ticks, [](std::string_view, AgentContext&) {});
  WorkerReport report;
  std::atomic<bool> started{false};
  std::thread worker([&] { report = app.run({.on_started = [&] { started = true; }}); });
  while (!started.load()) std::this_thread::sleep_for(1ms);
  clock.advance_millis(9'999);
  clock.advance_millis(1);
  while (fired.load() < 1) std::this_thread::sleep_for(1ms);
  clock.advance_millis(20'000);
  while (fired.load() < 3) std::this_thread::sleep_for(1ms);
  app.stop();
  worker.join();
  EXPECT_EQ(fired.load(), 3);
  EXPECT_TRUE(report.status.is_ok()) << report.status.to_string();
}

TEST(AppTest, InvalidDeclarationsAreRefusedTogether) {
  MemoryBroker broker;
  App app("bad", {.memory_broker = &broker});
  auto in = app.topic<std::string>("in");
  app.topic<std::string>("in");
  app.agent(in, [](std::string_view, AgentContext&) {}, {.concurrency = 0, .sinks = {"nowhere"}});
  app.crontab("61 * * * *", [] {});
  WorkerReport report = app.run();
  ASSERT_FALSE(report.status.is_ok());
  const std::string m = report.status.message();
  EXPECT_NE(m.find("topic 'in' declared twice"), std::string::npos) << m;
  EXPECT_NE(m.find("concurrency must be >= 1"), std::string::npos) << m;
  EXPECT_NE(m.find("sends to undeclared topic 'nowhere'"), std::string::npos) << m;
  EXPECT_NE(m.find("crontab minute"), std::string::npos) << m;
}

TEST(AppTest, ATableKeyOtherThanTheRecordsIsAnError) {
  MemoryBroker broker;
  std::ostringstream log;
  App app("keys", {.checkpoint_interval = 20ms, .memory_broker = &broker, .log = &log});
  auto in = app.topic<std::string>("in");
  auto table = app.table<std::string, int64_t>("t");
  app.agent(in, [&](std::string_view, AgentContext&) { table["other"] += 1; },
            {.name = "wrong", .on_error = OnError::kStop});
  produce(broker, "in", 1, {{"mine", "v"}});
  WorkerReport report = app.run();
  ASSERT_FALSE(report.status.is_ok());
  EXPECT_NE(
      report.status.message().find("table 't': key 'other' is not the current record's key 'mine'"),
      std::string::npos)
      << report.status.message();
}

}  // namespace
}  // namespace sabot::app
