#include "sabot/api/process.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <thread>

#include "sabot/api/environment.h"

struct Event {
  std::string_view user;
  int64_t ts = 0;
  int64_t amount = 0;
};
SABOT_RECORD(Event, user, ts, amount);

struct Count {
  std::string user;
  int64_t count = 0;
  int64_t total = 0;
};
SABOT_RECORD(Count, user, count, total);

struct Fired {
  std::string user;
  int64_t at = 0;
  int64_t count = 0;
};
SABOT_RECORD(Fired, user, at, count);

namespace sabot {
namespace {

using columnar::field;

// Running count and sum per user, emitted for every event.
class Counter final : public KeyedProcessFunction<Event, Count> {
 public:
  void open(RuntimeContext& ctx) override {
    count_ = ctx.value_state<int64_t>("count");
    total_ = ctx.value_state<int64_t>("total");
  }
  void process(const Event& e, Context&, Emitter<Count>& out) override {
    int64_t c = count_->value().value_or(0) + 1;
    int64_t t = total_->value().value_or(0) + e.amount;
    count_->update(c);
    total_->update(t);
    out.emit({std::string(e.user), c, t});
  }

 private:
  state::ValueState<int64_t>* count_ = nullptr;
  state::ValueState<int64_t>* total_ = nullptr;
};

// Registers an event-time timer 10 ms after each event (deduplicated per key and time) and emits
// how many events the key had when it fires.
class Delayed final : public KeyedProcessFunction<Event, Fired> {
 public:
  void open(RuntimeContext& ctx) override { seen_ = ctx.value_state<int64_t>("seen"); }
  void process(const Event& e, Context& ctx, Emitter<Fired>&) override {
    seen_->update(seen_->value().value_or(0) + 1);
    ctx.register_event_time_timer(Timestamp(*ctx.timestamp() + 10));
  }
  void on_timer(Timestamp t, Context& ctx, Emitter<Fired>& out) override {
    out.emit({ctx.current_key()[0].as_string(), t.millis(), *seen_->value()});
  }

 private:
  state::ValueState<int64_t>* seen_ = nullptr;
};

SchemaPtr event_schema() {
  return columnar::schema({field("user", columnar::utf8()), field("ts", columnar::int64()),
                           field("amount", columnar::int64())});
}

std::vector<RecordBatch> random_events(std::mt19937_64& rng, int n, int users) {
  std::vector<RecordBatch> out;
  int made = 0;
  int64_t ts = 1000;
  while (made < n) {
    int size = 1 + static_cast<int>(rng() % 97);
    columnar::StringBuilder u;
    columnar::Int64Builder t, a;
    for (int i = 0; i < size && made < n; ++i, ++made) {
      std::string user = "u";  // appended piecewise: GCC 12 -Wrestrict false positive on "u" + ...
      user += std::to_string(rng() % users);
      u.append(user);
      ts += static_cast<int64_t>(rng() % 3);
      t.append(ts);
      a.append(static_cast<int64_t>(rng() % 100));
    }
    out.push_back(RecordBatch::make(event_schema(), {u.finish(), t.finish(), a.finish()}).value());
  }
  return out;
}

TEST(KeyedProcessFunction, ValueStatePerKeyMatchesReferenceForAnyParallelism) {
  std::mt19937_64 rng(5);
  auto events = random_events(rng, 3000, 37);
  // Reference: final count and total per user.
  std::map<std::string, std::pair<int64_t, int64_t>> expected;
  for (const auto& b : events) {
    for (const Event& e : read_rows<Event>(b).value()) {
      auto& [c, t] = expected[std::string(e.user)];
      ++c;
      t += e.amount;
    }
  }
  for (int p = 1; p <= 4; ++p) {
    Environment env({.parallelism = p, .batch_size = 1 + static_cast<int64_t>(rng() % 300)});
    auto out = env.from_batches(events).key_by("user").process(Counter{}).collect();
    JobResult r = env.execute();
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    RecordBatch all = out->to_batch().value();
    ASSERT_EQ(all.num_rows(), 3000);
    std::map<std::string, std::pair<int64_t, int64_t>> last;
    for (const Count& c : read_rows<Count>(all).value()) {
      auto& [cnt, tot] = last[c.user];
      // Per key, emitted counts increase by one: rows of a key stay in order.
      if (c.count > cnt) {
        cnt = c.count;
        tot = c.total;
      }
    }
    EXPECT_EQ(last, expected) << "parallelism " << p;
  }
}

TEST(KeyedProcessFunction, EventTimeTimersFireOncePerKeyAndTimeInOrder) {
  std::mt19937_64 rng(9);
  auto events = random_events(rng, 2000, 11);
  std::map<std::string, std::set<int64_t>> expected;
  for (const auto& b : events) {
    for (const Event& e : read_rows<Event>(b).value()) {
      expected[std::string(e.user)].insert(e.ts + 10);
    }
  }
  for (int p : {1, 3}) {
    Environment env({.parallelism = p});
    auto out = env.from_batches(events)
                   .with_watermarks(monotonic_timestamps("ts"))
                   .key_by("user")
                   .process(Delayed{}, {.time_column = "ts"})
                   .collect();
    JobResult r = env.execute();
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    std::map<std::string, std::vector<int64_t>> fired;
    for (const Fired& f : read_rows<Fired>(out->to_batch().value()).value()) {
      fired[f.user].push_back(f.at);
      EXPECT_GE(f.count, 1);
    }
    ASSERT_EQ(fired.size(), expected.size());
    for (auto& [user, times] : fired) {
      EXPECT_TRUE(std::is_sorted(times.begin(), times.end())) << user;
      EXPECT_EQ(std::set<int64_t>(times.begin(), times.end()), expected[user]) << user;
      EXPECT_EQ(times.size(), expected[user].size()) << user << ": a timer fired twice";
    }
  }
}

// Collects what an operator emits when driven directly.
class CollectOutput final : public runtime::Output {
 public:
  Status emit(const RecordBatch& b) override {
    batches.push_back(b);
    return Status::ok();
  }
  Status emit_watermark(Timestamp) override { return Status::ok(); }
  std::vector<RecordBatch> batches;
};

TEST(KeyedProcessFunction, SnapshotAndRestoreContinueLikeAnUninterruptedRun) {
  std::mt19937_64 rng(21);
  auto events = random_events(rng, 1000, 13);
  ProcessFactory<Event, Fired> factory([] { return std::make_unique<Delayed>(); }, {"user"},
                                       {.time_column = "ts"});
  std::vector<SchemaPtr> in{event_schema()};
  runtime::OperatorContext ctx;
  auto run = [&](size_t from, size_t to, runtime::Operator& op, CollectOutput& out) {
    for (size_t i = from; i < to; ++i) {
      ASSERT_TRUE(op.process_batch(events[i], 0, out).is_ok());
      int64_t last_ts = events[i].column(1).value<int64_t>(events[i].num_rows() - 1);
      ASSERT_TRUE(op.process_watermark(Timestamp(last_ts - 5), out).is_ok());
    }
  };
  const size_t half = events.size() / 2;
  // Uninterrupted.
  auto whole = factory.create(in, ctx).value();
  ASSERT_TRUE(whole->open(ctx).is_ok());
  CollectOutput expected_out;
  run(0, events.size(), *whole, expected_out);
  ASSERT_TRUE(whole->process_watermark(Timestamp::max(), expected_out).is_ok());
  // Interrupted at half: snapshot, a fresh operator restores and continues.
  auto first = factory.create(in, ctx).value();
  ASSERT_TRUE(first->open(ctx).is_ok());
  CollectOutput got;
  run(0, half, *first, got);
  std::string snap;
  ASSERT_TRUE(first->snapshot_state(CheckpointId(1), &snap).is_ok());
  first.reset();
  auto second = factory.create(in, ctx).value();
  ASSERT_TRUE(second->open(ctx).is_ok());
  Status restored = second->restore_state(snap);
  ASSERT_TRUE(restored.is_ok()) << restored.to_string();
  run(half, events.size(), *second, got);
  ASSERT_TRUE(second->process_watermark(Timestamp::max(), got).is_ok());
  // Timers of one time fire in key-id order, which a restore may renumber: compare as multisets.
  auto rows = [](const std::vector<RecordBatch>& batches) {
    std::vector<std::tuple<std::string, int64_t, int64_t>> out;
    for (const auto& b : batches) {
      for (const Fired& f : read_rows<Fired>(b).value()) out.emplace_back(f.user, f.at, f.count);
    }
    std::sort(out.begin(), out.end());
    return out;
  };
  auto a = rows(expected_out.batches);
  EXPECT_GT(a.size(), 100u);
  EXPECT_EQ(a, rows(got.batches));
  // A truncated snapshot is refused, not a crash.
  auto third = factory.create(in, ctx).value();
  EXPECT_FALSE(third->restore_state(std::string_view(snap).substr(0, snap.size() / 2)).is_ok());
}

TEST(KeyedProcessFunction, WrongRecordOrMissingKeyIsRefusedBeforeRunning) {
  Environment env;
  auto bad = columnar::schema({field("name", columnar::utf8())});
  env.from_batches({RecordBatch::make_empty(bad)}).key_by("name").process(Counter{}).blackhole();
  JobResult r = env.execute();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("no column named 'user'"), std::string::npos)
      << r.status().to_string();
}

}  // namespace
}  // namespace sabot

struct Total {
  std::string user;
  int64_t amount = 0;
};
SABOT_RECORD(Total, user, amount);

struct Avg {
  double mean = 0;
  int64_t n = 0;
};
SABOT_RECORD(Avg, mean, n);

namespace sabot {
namespace {

struct MeanFn {
  std::pair<int64_t, int64_t> create() const { return {0, 0}; }
  void add(std::pair<int64_t, int64_t>& acc, const Event& e) const {
    acc.first += e.amount;
    acc.second += 1;
  }
  void merge(std::pair<int64_t, int64_t>& acc, const std::pair<int64_t, int64_t>& o) const {
    acc.first += o.first;
    acc.second += o.second;
  }
  Avg result(const std::pair<int64_t, int64_t>& acc) const {
    return {static_cast<double>(acc.first) / static_cast<double>(acc.second), acc.second};
  }
};

TEST(RollingAggregation, ReduceAndAggregateEmitEveryUpdatePerKey) {
  std::mt19937_64 rng(77);
  auto events = random_events(rng, 2000, 9);
  std::map<std::string, int64_t> sums;
  int64_t total_events = 0;
  for (const auto& b : events) {
    for (const Event& e : read_rows<Event>(b).value()) {
      sums[std::string(e.user)] += e.amount;
      ++total_events;
    }
  }
  Environment env({.parallelism = 3});
  auto totals = env.from_batches(events)
                    .select({col("user"), col("amount")})
                    .key_by("user")
                    .reduce<Total>([](const Total& acc, const Total& next) {
                      return Total{acc.user, acc.amount + next.amount};
                    })
                    .collect();
  auto means = env.from_batches(events)
                   .key_by("user")
                   .aggregate<Event, std::pair<int64_t, int64_t>, Avg>(MeanFn{})
                   .collect();
  JobResult r = env.execute();
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(totals->num_rows(), total_events);
  EXPECT_EQ(means->num_rows(), total_events);
  std::map<std::string, int64_t> last;
  for (const Total& t : read_rows<Total>(totals->to_batch().value()).value()) {
    last[t.user] = std::max(last[t.user], t.amount);  // amounts are >= 0: the max is the last
  }
  EXPECT_EQ(last, sums);
  int64_t max_n = 0;
  for (const Avg& a : read_rows<Avg>(means->to_batch().value()).value())
    max_n = std::max(max_n, a.n);
  EXPECT_GT(max_n, total_events / 20);
}

TEST(RollingAggregation, RecordStateSnapshotsMemberByMember) {
  std::string bytes;
  state::ByteWriter w(&bytes);
  state::StateCodec<Total>::encode(Total{"alice", 42}, w);
  Total back;
  state::ByteReader r(bytes);
  ASSERT_TRUE(state::StateCodec<Total>::decode(r, &back).is_ok());
  EXPECT_EQ(back.user, "alice");
  EXPECT_EQ(back.amount, 42);
  state::ByteReader truncated(std::string_view(bytes).substr(0, 3));
  EXPECT_FALSE(state::StateCodec<Total>::decode(truncated, &back).is_ok());
}

}  // namespace
}  // namespace sabot
