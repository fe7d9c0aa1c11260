#include "sabot/api/environment.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <random>
#include <sstream>
#include <thread>

#include "sabot/columnar/builder.h"
#include "sabot/compute/hash.h"

namespace sabot {
namespace {

using columnar::Array;
using columnar::field;
using columnar::float64;
using columnar::int64;
using columnar::utf8;

SchemaPtr txn_schema() {
  return columnar::schema(
      {field("id", int64()), field("account", utf8()), field("amount", float64())});
}

RecordBatch make_txns(int64_t first_id, int64_t n, int accounts) {
  columnar::Int64Builder ids;
  columnar::StringBuilder account;
  columnar::Float64Builder amount;
  for (int64_t i = first_id; i < first_id + n; ++i) {
    ids.append(i);
    account.append("acc-" + std::to_string(i % accounts));
    if (i % 17 == 0) {
      amount.append_null();
    } else {
      amount.append(static_cast<double>((i * 37) % 1000));
    }
  }
  return RecordBatch::make(txn_schema(), {ids.finish(), account.finish(), amount.finish()}).value();
}

// Rows of a result as sorted strings: multiset comparison independent of order.
std::vector<std::string> rows_of(const RecordBatch& b) {
  std::vector<std::string> rows;
  for (int64_t r = 0; r < b.num_rows(); ++r) {
    std::string row;
    for (int c = 0; c < b.num_columns(); ++c) row += b.column(c).scalar_at(r).to_string() + "|";
    rows.push_back(row);
  }
  std::sort(rows.begin(), rows.end());
  return rows;
}

TEST(DataStream, FilterWithColumnSelect) {
  Environment env;
  auto out = env.from_batches({make_txns(0, 100, 5)})
                 .filter(col("amount") > lit(500.0))
                 .with_column("double_amount", col("amount") * lit(2.0))
                 .select({col("id"), col("double_amount").as("x")})
                 .collect();
  JobResult r = env.execute("test");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  RecordBatch b = out->to_batch().value();
  EXPECT_EQ(b.schema().field(0).name, "id");
  EXPECT_EQ(b.schema().field(1).name, "x");
  int64_t expected = 0;
  for (int64_t i = 0; i < 100; ++i) {
    if (i % 17 != 0 && (i * 37) % 1000 > 500) ++expected;
  }
  EXPECT_EQ(b.num_rows(), expected);
  for (int64_t r2 = 0; r2 < b.num_rows(); ++r2) {
    int64_t id = b.column(0).value<int64_t>(r2);
    EXPECT_DOUBLE_EQ(b.column(1).value<double>(r2), 2.0 * static_cast<double>((id * 37) % 1000));
  }
}

TEST(DataStream, WithColumnReplacesAnExistingColumnInPlace) {
  Environment env;
  auto out =
      env.from_batches({make_txns(0, 10, 2)}).with_column("amount", col("id") + lit(1)).collect();
  ASSERT_TRUE(env.execute().ok());
  RecordBatch b = out->to_batch().value();
  ASSERT_EQ(b.num_columns(), 3);
  EXPECT_EQ(b.schema().field(2).name, "amount");
  EXPECT_EQ(b.schema().field(2).type, int64());
  EXPECT_EQ(b.column(2).value<int64_t>(9), 10);
}

TEST(DataStream, MapBatchesFlatMapUnionRebalanceBroadcast) {
  Environment env({.parallelism = 2});
  auto a = env.from_batches({make_txns(0, 50, 3)});
  auto b = env.from_batches({make_txns(50, 30, 3)});
  auto doubled = a.flat_map([](const RecordBatch& batch, runtime::Output& out) -> Status {
    SABOT_RETURN_IF_ERROR(out.emit(batch));
    return out.emit(batch);
  });
  auto shifted = b.map_batches([](const RecordBatch& batch) -> Result<RecordBatch> {
    return batch.slice(0, batch.num_rows());
  });
  auto merged = doubled.union_with(shifted).rebalance().collect();
  auto everywhere = env.from_batches({make_txns(0, 10, 3)}).broadcast().filter(lit(true)).collect();
  JobResult r = env.execute();
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(merged->num_rows(), 2 * 50 + 30);
  EXPECT_EQ(everywhere->num_rows(), 10 * 2);  // each of the 2 subtasks got every row
}

TEST(DataStream, PrintWritesOneLinePerRow) {
  Environment env;
  std::ostringstream os;
  env.from_batches({make_txns(1, 2, 2)}).select({col("id"), col("account")}).print(os);
  ASSERT_TRUE(env.execute().ok());
  EXPECT_EQ(os.str(), "{id: 1, account: \"acc-1\"}\n{id: 2, account: \"acc-0\"}\n");
}

// Records the subtask that saw each key, to check that key_by routes every key to one subtask.
class KeyOwnerFactory final : public runtime::OperatorFactory {
 public:
  struct Seen {
    std::mutex mu;
    std::map<std::string, std::set<int>> subtasks_by_key;
  };
  explicit KeyOwnerFactory(std::shared_ptr<Seen> seen) : seen_(std::move(seen)) {}
  std::string kind() const override { return "key_owner"; }
  Result<SchemaPtr> output_schema(std::span<const SchemaPtr> in) const override { return in[0]; }
  Result<std::unique_ptr<runtime::Operator>> create(
      std::span<const SchemaPtr>, const runtime::OperatorContext& ctx) const override {
    class Op final : public runtime::Operator {
     public:
      Op(std::shared_ptr<Seen> seen, int subtask) : seen_(std::move(seen)), subtask_(subtask) {}
      Status process_batch(const RecordBatch& b, int, runtime::Output& out) override {
        Array acc = b.column(1);
        std::lock_guard<std::mutex> lock(seen_->mu);
        for (int64_t i = 0; i < b.num_rows(); ++i) {
          seen_->subtasks_by_key[std::string(acc.string_view(i))].insert(subtask_);
        }
        return out.emit(b);
      }
      std::shared_ptr<Seen> seen_;
      int subtask_;
    };
    return std::unique_ptr<runtime::Operator>(new Op(seen_, ctx.subtask_index));
  }

 private:
  std::shared_ptr<Seen> seen_;
};

TEST(DataStream, KeyByRoutesEachKeyToItsKeyGroupRange) {
  Environment env({.parallelism = 3, .max_parallelism = 128});
  auto seen = std::make_shared<KeyOwnerFactory::Seen>();
  auto out = env.from_batches({make_txns(0, 3000, 40), make_txns(3000, 1000, 40)})
                 .key_by("account")
                 .apply(std::make_shared<KeyOwnerFactory>(seen))
                 .collect();
  ASSERT_TRUE(env.execute().ok());
  EXPECT_EQ(out->num_rows(), 4000);
  ASSERT_EQ(seen->subtasks_by_key.size(), 40u);
  std::set<int> used;
  for (const auto& [key, subtasks] : seen->subtasks_by_key) {
    ASSERT_EQ(subtasks.size(), 1u) << key;
    uint64_t kg = compute::hash_bytes(key) % 128;
    EXPECT_EQ(*subtasks.begin(), static_cast<int>(kg * 3 / 128)) << key;
    used.insert(*subtasks.begin());
  }
  EXPECT_EQ(used.size(), 3u);
}

TEST(Validation, ReportsEveryProblemAndRunsNothing) {
  Environment env({.parallelism = 2, .channel_capacity = 0});
  std::atomic<int> polled{0};
  auto gen = env.from_generator("gen", txn_schema(), 2,
                                [&](int, int64_t, int64_t) -> Result<std::optional<RecordBatch>> {
                                  ++polled;
                                  return std::optional<RecordBatch>();
                                });
  gen.filter(col("amout") > lit(1.0)).print();     // unknown column
  gen.filter(col("account") > lit(1)).print();     // type mismatch
  gen.key_by("acount").filter(lit(true)).print();  // key on a missing column
  gen.select({col("id")});                         // no sink
  gen.filter(col("id")).print();                   // predicate is not bool
  JobResult r = env.execute("bad");
  ASSERT_FALSE(r.ok());
  const std::string msg = r.status().to_string();
  EXPECT_NE(msg.find("channel_capacity must be >= 1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unknown column 'amout'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("utf8"), std::string::npos) << msg;
  EXPECT_NE(msg.find("key_by: no column named 'acount'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("stream has no sink"), std::string::npos) << msg;
  EXPECT_NE(msg.find("not bool"), std::string::npos) << msg;
  EXPECT_NE(msg.find("6 problems"), std::string::npos) << msg;
  EXPECT_EQ(polled.load(), 0);
}

TEST(Validation, JobWithoutSinkIsRefused) {
  Environment env;
  env.from_batches({make_txns(0, 1, 1)});
  JobResult r = env.execute();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("no sink"), std::string::npos);
}

TEST(Failure, ExceptionInUserCodeNamesTheOperatorAndStopsTheJob) {
  Environment env({.parallelism = 2, .worker_threads = 2});
  std::atomic<int64_t> produced{0};
  auto gen = env.from_generator(
      "endless", txn_schema(), 2,
      [&](int split, int64_t row, int64_t max) -> Result<std::optional<RecordBatch>> {
        produced += max;
        return std::optional<RecordBatch>(make_txns(row, max, 3));
      });
  gen.map_batches([](const RecordBatch& b) -> Result<RecordBatch> {
       if (b.column(0).value<int64_t>(0) >= 40'000) throw std::runtime_error("bad row value");
       return b;
     })
      .name("explode")
      .blackhole();
  JobResult r = env.execute("failing");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("operator 'explode'"), std::string::npos)
      << r.status().to_string();
  EXPECT_NE(r.status().message().find("bad row value"), std::string::npos);
}

TEST(Failure, ErrorStatusFromSourceFailsTheJob) {
  Environment env;
  env.from_generator("broken", txn_schema(), 1,
                     [](int, int64_t row, int64_t) -> Result<std::optional<RecordBatch>> {
                       if (row > 0) return Status::io_error("disk vanished");
                       return std::optional<RecordBatch>(make_txns(0, 10, 1));
                     })
      .blackhole();
  JobResult r = env.execute();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kIoError);
  EXPECT_NE(r.status().message().find("source 'broken'"), std::string::npos);
  EXPECT_NE(r.status().message().find("disk vanished"), std::string::npos);
}

TEST(Runtime, TwentyOperatorsRunOnTwoThreads) {
  Environment env({.parallelism = 2, .worker_threads = 2, .batch_size = 512});
  DataStream s = env.from_batches({make_txns(0, 5000, 7), make_txns(5000, 5000, 7)});
  for (int i = 0; i < 20; ++i) {
    const std::string names[] = {"c0", "c1", "c2"};
    s = s.with_column(names[i % 3], col("id") + lit(i));
    if (i % 4 == 3) s = s.rebalance();  // break chains so several tasks share the two threads
  }
  auto out = s.collect();
  JobResult r = env.execute();
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(out->num_rows(), 10'000);
  auto m = r.metrics().snapshot();
  EXPECT_GE(m.size(), 22u);  // source + 20 operators + sink
}

// Parallelism invariance: the same program gives the same multiset of rows for parallelism 1..4,
// random batch sizes and random channel capacities.
TEST(Runtime, ResultsAreIndependentOfParallelismAndBatchSize) {
  std::mt19937_64 rng(99);
  std::vector<RecordBatch> input;
  int64_t next = 0;
  for (int i = 0; i < 7; ++i) {
    int64_t n = static_cast<int64_t>(rng() % 900) + 1;
    input.push_back(make_txns(next, n, 13));
    next += n;
  }
  std::vector<std::string> reference;
  for (int parallelism = 1; parallelism <= 4; ++parallelism) {
    for (int trial = 0; trial < 3; ++trial) {
      Environment env({.parallelism = parallelism,
                       .worker_threads = 1 + static_cast<int>(rng() % 3),
                       .channel_capacity = 1 + static_cast<int>(rng() % 4),
                       .batch_size = 1 + static_cast<int64_t>(rng() % 700)});
      auto out = env.from_batches(input)
                     .filter(is_valid(col("amount")) && col("amount") < lit(800.0))
                     .key_by("account")
                     .with_column("bucket", col("id") % lit(10))
                     .rebalance()
                     .select({col("account"), col("bucket"), col("amount")})
                     .collect();
      JobResult r = env.execute();
      ASSERT_TRUE(r.ok()) << r.status().to_string();
      auto rows = rows_of(out->to_batch().value());
      if (reference.empty()) {
        reference = rows;
        ASSERT_GT(reference.size(), 100u);
      } else {
        ASSERT_EQ(rows, reference) << "parallelism " << parallelism;
      }
    }
  }
}

// A fast source into a slow sink: the rows in flight stay bounded by the channel capacities.
TEST(Runtime, BackpressureBoundsRowsInFlight) {
  constexpr int64_t kBatch = 1024;
  constexpr int kCapacity = 2;
  std::atomic<int64_t> produced{0}, consumed{0}, peak{0};
  Environment env(
      {.parallelism = 1, .worker_threads = 2, .channel_capacity = kCapacity, .batch_size = kBatch});
  env.from_generator("fast", txn_schema(), 1,
                     [&](int, int64_t row, int64_t max) -> Result<std::optional<RecordBatch>> {
                       if (row >= 400 * kBatch) return std::optional<RecordBatch>();
                       produced += max;
                       int64_t in_flight = produced - consumed;
                       int64_t p = peak.load();
                       while (in_flight > p && !peak.compare_exchange_weak(p, in_flight)) {
                       }
                       return std::optional<RecordBatch>(make_txns(row, max, 3));
                     })
      .rebalance()  // a channel between source and sink
      .for_each_batch([&](const RecordBatch& b) {
        if (consumed.load() == 0) {
          // Hold the first batch until the source has stopped producing for a while: then it
          // is waiting on the full channel, however slow this machine or build is.
          int64_t last = -1;
          for (int i = 0; i < 2000 && produced.load() != last; ++i) {
            last = produced.load();
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
          }
        }
        std::this_thread::sleep_for(std::chrono::microseconds(200));
        consumed += b.num_rows();
        return Status::ok();
      });
  JobResult r = env.execute();
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(consumed.load(), 400 * kBatch);
  // Channel capacity + the batch being produced + the batch in the sink, with slack.
  EXPECT_LE(peak.load(), (kCapacity + 3) * kBatch);
  auto src = r.metrics().snapshot().front();
  EXPECT_GT(src.blocked_seconds, 0.0);  // the source waited for the sink
}

TEST(Runtime, MetricsCountRowsPerOperator) {
  Environment env({.parallelism = 2});
  env.from_batches({make_txns(0, 1000, 5), make_txns(1000, 1000, 5)})
      .filter(col("id") < lit(500))
      .name("small-ids")
      .blackhole()
      .name("sink");
  JobResult r = env.execute();
  ASSERT_TRUE(r.ok());
  auto f = r.metrics().get("small-ids");
  EXPECT_EQ(f.records_in, 2000);
  EXPECT_EQ(f.records_out, 500);
  EXPECT_EQ(f.parallelism, 2);
  EXPECT_EQ(r.metrics().get("sink").records_in, 500);
  EXPECT_NE(r.metrics().to_string().find("small-ids"), std::string::npos);
}

}  // namespace
}  // namespace sabot
