#include "sabot/api/process.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <thread>

#include "sabot/api/environment.h"
#include "sabot/base/arith.h"
#include "sabot/compute/hash.h"
#include "sabot/compute/selection.h"
#include "sabot/operators/keyed_process.h"

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

// Each event sets a timer 10 ms on and a timeout 100 ms on; the first timer deletes the timeout.
// One watermark fires every first timer, and each deletes a timer further on in the set being
// fired (the firing loop must not hold iterators into it across on_timer).
class CancelsTimeout final : public KeyedProcessFunction<Event, Fired> {
 public:
  void process(const Event&, Context& ctx, Emitter<Fired>&) override {
    ctx.register_event_time_timer(Timestamp(*ctx.timestamp() + 10));
    ctx.register_event_time_timer(Timestamp(*ctx.timestamp() + 100));
  }
  void on_timer(Timestamp t, Context& ctx, Emitter<Fired>& out) override {
    ctx.delete_event_time_timer(Timestamp(t.millis() + 90));
    out.emit({ctx.current_key()[0].as_string(), t.millis(), 0});
  }
};

TEST(KeyedProcessFunction, ATimerDeletingLaterTimersOfTheSameFiringCancelsThem) {
  columnar::StringBuilder users;
  columnar::Int64Builder ts, amounts;
  for (int64_t u = 0; u < 12; ++u) {
    std::string user = "u";
    user += std::to_string(u);
    users.append(user);
    ts.append(u);
    amounts.append(1);
  }
  Environment env({.parallelism = 1});
  auto out = env.from_batches({RecordBatch::make(event_schema(),
                                                 {users.finish(), ts.finish(), amounts.finish()})
                                   .value()})
                 .with_watermarks(monotonic_timestamps("ts"))
                 .key_by("user")
                 .process(CancelsTimeout{}, {.time_column = "ts"})
                 .collect();
  JobResult r = env.execute();
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  std::vector<int64_t> fired;
  for (const Fired& f : read_rows<Fired>(out->to_batch().value()).value()) fired.push_back(f.at);
  std::sort(fired.begin(), fired.end());
  std::vector<int64_t> want;
  for (int64_t u = 0; u < 12; ++u) want.push_back(u + 10);
  EXPECT_EQ(fired, want) << "a deleted timeout fired, or a timer did not";
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

// ---------------------------------------------------------------------------------------------
// Rescaling: P instances fed rows routed by key group, snapshot at a random point, restored into
// Q fresh instances (each given every old snapshot), continued; the output equals the
// uninterrupted run and the reference model.

struct Tallied {
  std::string user;
  int64_t at = 0;
  int64_t count = 0;
  int64_t sum = 0;
};
SABOT_RECORD(Tallied, user, at, count, sum);

namespace sabot {
namespace {

constexpr int64_t kProcStart = 1'000'000'000'000;  // processing times; event times stay far below

// Per key: a count (value state) and the amounts (list state). An event-time timer 10 ms after
// each event emits (count, sum) and clears both; a processing-time timer 7 ms after the first
// event since the last flush emits (count, -1) and clears nothing.
class Tally final : public KeyedProcessFunction<Event, Tallied> {
 public:
  void open(RuntimeContext& ctx) override {
    count_ = ctx.value_state<int64_t>("count");
    amounts_ = ctx.list_state<int64_t>("amounts");
  }
  void process(const Event& e, Context& ctx, Emitter<Tallied>&) override {
    const int64_t c = count_->value().value_or(0) + 1;
    count_->update(c);
    amounts_->add(e.amount);
    ctx.register_event_time_timer(Timestamp(*ctx.timestamp() + 10));
    if (c == 1) {
      ctx.register_processing_time_timer(Timestamp(ctx.current_processing_time().millis() + 7));
    }
  }
  void on_timer(Timestamp t, Context& ctx, Emitter<Tallied>& out) override {
    const std::string user = ctx.current_key()[0].as_string();
    const int64_t c = count_->value().value_or(0);
    if (t.millis() >= kProcStart) {
      out.emit({user, t.millis(), c, -1});
      return;
    }
    int64_t sum = 0;
    for (int64_t a : amounts_->get()) sum += a;
    out.emit({user, t.millis(), c, sum});
    count_->clear();
    amounts_->clear();
  }

 private:
  state::ValueState<int64_t>* count_ = nullptr;
  state::ListState<int64_t>* amounts_ = nullptr;
};

using TallyRow = std::tuple<std::string, int64_t, int64_t, int64_t>;

// The reference model of Tally driven like the operators below: per step the rows in order, then
// the watermark (last ts - 5) fires event timers, then the clock (+3 ms) processing timers.
std::vector<TallyRow> tally_model(const std::vector<RecordBatch>& steps) {
  struct Key {
    int64_t count = 0;
    std::vector<int64_t> amounts;
    std::set<int64_t> event, proc;
  };
  std::map<std::string, Key> keys;
  std::vector<TallyRow> out;
  int64_t now = kProcStart;
  auto fire = [&](Key& k, const std::string& user, int64_t t) {
    if (t >= kProcStart) {
      out.emplace_back(user, t, k.count, -1);
      return;
    }
    int64_t sum = 0;
    for (int64_t a : k.amounts) sum += a;
    out.emplace_back(user, t, k.count, sum);
    k.count = 0;
    k.amounts.clear();
  };
  for (const RecordBatch& b : steps) {
    for (const Event& e : read_rows<Event>(b).value()) {
      Key& k = keys[std::string(e.user)];
      ++k.count;
      k.amounts.push_back(e.amount);
      k.event.insert(e.ts + 10);
      if (k.count == 1) k.proc.insert(now + 7);
    }
    const int64_t wm = b.column(1).value<int64_t>(b.num_rows() - 1) - 5;
    for (auto& [user, k] : keys) {
      while (!k.event.empty() && *k.event.begin() <= wm) {
        const int64_t t = *k.event.begin();
        k.event.erase(k.event.begin());
        fire(k, user, t);
      }
    }
    now += 3;
    for (auto& [user, k] : keys) {
      while (!k.proc.empty() && *k.proc.begin() <= now) {
        const int64_t t = *k.proc.begin();
        k.proc.erase(k.proc.begin());
        fire(k, user, t);
      }
    }
  }
  return out;
}

// Rows of `batch` for each of `parallelism` subtasks, routed by the key group of column 0 as the
// keyed exchange routes them.
std::vector<RecordBatch> route(const RecordBatch& batch, int parallelism, int max_parallelism) {
  std::vector<uint64_t> hashes;
  const columnar::Array key = batch.column(0);
  SABOT_CHECK_OK(compute::hash_columns(std::span(&key, 1), &hashes));
  std::vector<uint32_t> groups(hashes.size());
  compute::key_groups(hashes, static_cast<uint32_t>(max_parallelism), groups);
  std::vector<std::vector<int32_t>> rows(static_cast<size_t>(parallelism));
  for (size_t i = 0; i < groups.size(); ++i) {
    rows[static_cast<size_t>(
             subtask_for_key_group(static_cast<int>(groups[i]), parallelism, max_parallelism))]
        .push_back(static_cast<int32_t>(i));
  }
  std::vector<RecordBatch> out;
  for (const auto& r : rows) out.push_back(compute::take(batch, r).value());
  return out;
}

// Drives `factory`'s operators over `steps` at parallelism `p`, snapshotting after step `cut`
// (none: -1) and continuing at parallelism `q` in fresh instances given every snapshot. Per step:
// each subtask's rows, the watermark (last ts - 5) to all, then the clock +3 ms and due
// processing timers. Returns every emitted batch.
std::vector<RecordBatch> drive_rescaled(const runtime::OperatorFactory& factory,
                                        const std::vector<RecordBatch>& steps, int p, int q,
                                        int64_t cut, int max_parallelism = 128) {
  ManualClock clock{Timestamp(kProcStart)};
  std::vector<SchemaPtr> in{steps[0].schema_ptr()};
  CollectOutput out;
  auto make = [&](int parallelism) {
    std::vector<std::unique_ptr<runtime::Operator>> ops;
    for (int s = 0; s < parallelism; ++s) {
      runtime::OperatorContext ctx;
      ctx.uid = "tally";
      ctx.subtask_index = s;
      ctx.parallelism = parallelism;
      ctx.max_parallelism = max_parallelism;
      ctx.clock = &clock;
      ops.push_back(factory.create(in, ctx).value());
      SABOT_CHECK_OK(ops.back()->open(ctx));
    }
    return ops;
  };
  auto ops = make(p);
  int parallelism = p;
  for (size_t i = 0; i < steps.size(); ++i) {
    auto parts = route(steps[i], parallelism, max_parallelism);
    for (int s = 0; s < parallelism; ++s) {
      if (parts[static_cast<size_t>(s)].num_rows() == 0) continue;
      SABOT_CHECK_OK(
          ops[static_cast<size_t>(s)]->process_batch(parts[static_cast<size_t>(s)], 0, out));
    }
    const int64_t wm = steps[i].column(1).value<int64_t>(steps[i].num_rows() - 1) - 5;
    for (auto& op : ops) SABOT_CHECK_OK(op->process_watermark(Timestamp(wm), out));
    clock.advance_millis(3);
    for (auto& op : ops) {
      if (op->next_processing_time() <= clock.now()) {
        SABOT_CHECK_OK(op->on_processing_time(clock.now(), out));
      }
    }
    if (static_cast<int64_t>(i) == cut) {
      std::vector<std::string> snaps(ops.size());
      for (size_t s = 0; s < ops.size(); ++s) {
        SABOT_CHECK_OK(ops[s]->snapshot_state(CheckpointId(1), &snaps[s]));
      }
      ops = make(q);
      parallelism = q;
      for (auto& op : ops) {
        for (const std::string& snap : snaps) SABOT_CHECK_OK(op->restore_state(snap));
      }
    }
  }
  return out.batches;
}

std::vector<TallyRow> tally_rows(const std::vector<RecordBatch>& batches) {
  std::vector<TallyRow> out;
  for (const auto& b : batches) {
    for (const Tallied& t : read_rows<Tallied>(b).value()) {
      out.emplace_back(t.user, t.at, t.count, t.sum);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(KeyedProcessRescale, SnapshotAtPRestoresAtQWithTimersLikeTheUninterruptedRunAndTheModel) {
  ProcessFactory<Event, Tallied> factory([] { return std::make_unique<Tally>(); }, {"user"},
                                         {.time_column = "ts"});
  std::mt19937_64 rng(31);
  for (int trial = 0; trial < 6; ++trial) {
    auto steps =
        random_events(rng, 1500 + static_cast<int>(rng() % 1500), 5 + static_cast<int>(rng() % 60));
    std::vector<TallyRow> model = tally_model(steps);
    std::sort(model.begin(), model.end());
    ASSERT_GT(model.size(), 50u);
    const auto whole = tally_rows(drive_rescaled(factory, steps, 3, 3, -1));
    EXPECT_EQ(whole, model) << "trial " << trial;
    const int64_t cut = static_cast<int64_t>(rng() % steps.size());
    for (auto [p, q] : {std::pair{3, 2}, std::pair{1, 3}, std::pair{2, 1}}) {
      EXPECT_EQ(tally_rows(drive_rescaled(factory, steps, p, q, cut)), model)
          << "trial " << trial << ", " << p << " -> " << q << " at step " << cut;
    }
  }
}

// Rolling reduce and aggregate (built on the same operator): running sums and means per user.
TEST(KeyedProcessRescale, RollingReduceAndAggregateRestoreAtAnotherParallelism) {
  std::mt19937_64 rng(41);
  auto steps = random_events(rng, 3000, 23);
  // Model: every event emits its user's running total / running (sum, n).
  std::vector<std::pair<std::string, int64_t>> totals;
  std::vector<std::tuple<std::string, double, int64_t>> means;
  std::map<std::string, std::pair<int64_t, int64_t>> acc;
  for (const auto& b : steps) {
    for (const Event& e : read_rows<Event>(b).value()) {
      auto& [sum, n] = acc[std::string(e.user)];
      sum += e.amount;
      ++n;
      totals.emplace_back(std::string(e.user), sum);
      means.emplace_back(std::string(e.user), static_cast<double>(sum) / static_cast<double>(n), n);
    }
  }
  std::sort(totals.begin(), totals.end());
  std::sort(means.begin(), means.end());
  // Reduce over (user, amount) rows.
  std::vector<RecordBatch> total_steps;
  for (const auto& b : steps) {
    total_steps.push_back(
        RecordBatch::make(record_schema<Total>(), {b.column(0), b.column(2)}).value());
  }
  auto add = [](const Total& a, const Total& b) { return Total{a.user, a.amount + b.amount}; };
  ProcessFactory<Total, Total> reduce(
      [add] { return std::make_unique<ReduceFunction<Total, decltype(add)>>(add); }, {"user"}, {});
  ProcessFactory<Event, Avg> aggregate(
      [] {
        return std::make_unique<
            RollingAggregateFunction<Event, std::pair<int64_t, int64_t>, Avg, MeanFn>>(MeanFn{});
      },
      {"user"}, {});
  for (auto [p, q] : {std::pair{3, 2}, std::pair{1, 3}}) {
    const int64_t cut = static_cast<int64_t>(rng() % steps.size());
    // The watermark column of drive_rescaled is column 1: the amount for Total rows, harmless
    // (no timers).
    std::vector<std::pair<std::string, int64_t>> got_totals;
    for (const auto& b : drive_rescaled(reduce, total_steps, p, q, cut)) {
      for (const Total& t : read_rows<Total>(b).value()) got_totals.emplace_back(t.user, t.amount);
    }
    std::sort(got_totals.begin(), got_totals.end());
    EXPECT_EQ(got_totals, totals) << p << " -> " << q;
    // Means carry no user: compare (mean, n) per position in the key's sequence via the model's
    // multiset of (mean, n).
    std::vector<std::pair<double, int64_t>> got_means, want_means;
    for (const auto& b : drive_rescaled(aggregate, steps, p, q, cut)) {
      for (const Avg& a : read_rows<Avg>(b).value()) got_means.emplace_back(a.mean, a.n);
    }
    for (const auto& [u, m, n] : means) want_means.emplace_back(m, n);
    std::sort(got_means.begin(), got_means.end());
    std::sort(want_means.begin(), want_means.end());
    EXPECT_EQ(got_means, want_means) << p << " -> " << q;
  }
}

TEST(KeyedProcessRescale, TruncatedFlippedOrForeignSnapshotsAreRefusedNamingUidAndOffset) {
  ProcessFactory<Event, Tallied> factory([] { return std::make_unique<Tally>(); }, {"user"},
                                         {.time_column = "ts"});
  std::mt19937_64 rng(3);
  auto steps = random_events(rng, 500, 17);
  ManualClock clock{Timestamp(kProcStart)};
  runtime::OperatorContext ctx;
  ctx.uid = "tally";
  ctx.clock = &clock;
  std::vector<SchemaPtr> in{event_schema()};
  auto op = factory.create(in, ctx).value();
  ASSERT_TRUE(op->open(ctx).is_ok());
  CollectOutput out;
  for (const auto& b : steps) ASSERT_TRUE(op->process_batch(b, 0, out).is_ok());
  std::string snap;
  ASSERT_TRUE(op->snapshot_state(CheckpointId(1), &snap).is_ok());
  auto fresh = [&] {
    auto o = factory.create(in, ctx).value();
    SABOT_CHECK_OK(o->open(ctx));
    return o;
  };
  for (int trial = 0; trial < 60; ++trial) {
    std::string bad = snap;
    if (trial % 2 == 0) {
      bad.resize(rng() % bad.size());
    } else {
      bad[rng() % bad.size()] ^= static_cast<char>(1 << (rng() % 8));
    }
    Status st = fresh()->restore_state(bad);
    ASSERT_FALSE(st.is_ok()) << "trial " << trial;
    EXPECT_EQ(st.code(), StatusCode::kInvalidData) << st.to_string();
    EXPECT_NE(st.message().find("'tally'"), std::string::npos) << st.to_string();
    EXPECT_NE(st.message().find("at byte"), std::string::npos) << st.to_string();
  }
  // Another operator's snapshot, or one of another state type, is refused.
  runtime::OperatorContext other = ctx;
  other.uid = "other";
  auto o = factory.create(in, other).value();
  ASSERT_TRUE(o->open(other).is_ok());
  EXPECT_EQ(o->restore_state(snap).code(), StatusCode::kInvalidArgument);
  std::string keyed;
  state::KeyedBackendOptions bo{.key_types = {columnar::utf8()}};
  auto backend = state::MemoryStateBackend().create_keyed_backend(bo).value();
  ASSERT_TRUE(backend->snapshot("tally", &keyed).is_ok());
  Status wrong_type = fresh()->restore_state(keyed);
  EXPECT_EQ(wrong_type.code(), StatusCode::kInvalidArgument) << wrong_type.to_string();
  EXPECT_NE(wrong_type.message().find("keyed-state"), std::string::npos) << wrong_type.to_string();
}

// Keys whose state was cleared and that have no timers are forgotten, so the registry follows the
// live keys (without forgetting it would hold every key ever seen).
TEST(KeyedProcessRescale, KeysWithoutStateOrTimersAreForgotten) {
  ProcessFactory<Event, Tallied> factory([] { return std::make_unique<Tally>(); }, {"user"},
                                         {.time_column = "ts"});
  ManualClock clock{Timestamp(kProcStart)};
  runtime::OperatorContext ctx;
  ctx.clock = &clock;
  std::vector<SchemaPtr> in{event_schema()};
  auto op = factory.create(in, ctx).value();
  ASSERT_TRUE(op->open(ctx).is_ok());
  auto* keyed = dynamic_cast<operators::KeyedProcessOperator*>(op.get());
  ASSERT_NE(keyed, nullptr);
  CollectOutput out;
  int64_t ts = 0;
  int64_t user = 0;
  uint32_t peak = 0;
  const int64_t total_users = 300'000;
  while (user < total_users) {
    columnar::StringBuilder u;
    columnar::Int64Builder t, a;
    for (int i = 0; i < 1000; ++i, ++user, ++ts) {
      std::string name = "u";
      name += std::to_string(user);
      u.append(name);
      t.append(ts);
      a.append(1);
    }
    auto batch = RecordBatch::make(event_schema(), {u.finish(), t.finish(), a.finish()}).value();
    ASSERT_TRUE(op->process_batch(batch, 0, out).is_ok());
    ASSERT_TRUE(op->process_watermark(Timestamp(ts), out).is_ok());  // event timers fire
    clock.advance_millis(10);
    ASSERT_TRUE(op->on_processing_time(clock.now(), out).is_ok());
    peak = std::max(peak, keyed->num_keys());
  }
  EXPECT_LT(peak, 140'000u) << "of " << total_users << " keys seen";
  ASSERT_TRUE(op->process_watermark(Timestamp::max(), out).is_ok());
  clock.advance_millis(10);
  ASSERT_TRUE(op->on_processing_time(clock.now(), out).is_ok());
  size_t emitted = 0;
  for (const auto& b : out.batches) emitted += static_cast<size_t>(b.num_rows());
  EXPECT_EQ(emitted, 2 * static_cast<size_t>(total_users));  // every key's two timers fired
}

}  // namespace
}  // namespace sabot
