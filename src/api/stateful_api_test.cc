// The fluent API over the stateful operators: windows, joins and deduplication wired through
// key_by, with_watermarks and side outputs. The operators themselves are tested against reference
// models in src/operators; these tests check the wiring.
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "sabot/api/environment.h"

namespace sabot {
namespace {

using namespace std::chrono_literals;
using columnar::field;

SchemaPtr bid_schema() {
  return columnar::schema({field("auction", columnar::int64()), field("price", columnar::int64()),
                           field("ts", columnar::timestamp(columnar::TimeUnit::kMilli))});
}

RecordBatch bids(const std::vector<std::array<int64_t, 3>>& rows) {
  columnar::Int64Builder a, p, t(columnar::timestamp(columnar::TimeUnit::kMilli));
  for (const auto& r : rows) {
    a.append(r[0]);
    p.append(r[1]);
    t.append(r[2]);
  }
  return RecordBatch::make(bid_schema(), {a.finish(), p.finish(), t.finish()}).value();
}

TEST(StatefulApi, TumblingWindowCountsPerKeyMatchReference) {
  std::mt19937_64 rng(3);
  std::vector<std::array<int64_t, 3>> rows;
  for (int i = 0; i < 5000; ++i) {
    rows.push_back({static_cast<int64_t>(rng() % 20), static_cast<int64_t>(rng() % 1000),
                    static_cast<int64_t>(i * 3)});
  }
  std::map<std::tuple<int64_t, int64_t>, std::pair<int64_t, int64_t>> expected;  // (key, start)
  for (const auto& r : rows) {
    auto& [n, top] = expected[{r[0], r[2] / 1000 * 1000}];
    ++n;
    top = std::max(top, r[1]);
  }
  for (int p : {1, 3}) {
    Environment env({.parallelism = p, .batch_size = 333});
    auto out = env.from_batches({bids(rows)})
                   .with_watermarks(bounded_out_of_orderness("ts", 0ms))
                   .key_by("auction")
                   .window(tumbling(1s))
                   .aggregate({count().as("bids"), max("price").as("top")})
                   .collect();
    JobResult r = env.execute();
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    RecordBatch b = out->to_batch().value();
    ASSERT_EQ(b.num_rows(), static_cast<int64_t>(expected.size()));
    int key = b.schema().field_index("auction"), start = b.schema().field_index("window_start");
    int n = b.schema().field_index("bids"), top = b.schema().field_index("top");
    for (int64_t i = 0; i < b.num_rows(); ++i) {
      auto it = expected.find({b.column(key).value<int64_t>(i), b.column(start).value<int64_t>(i)});
      ASSERT_NE(it, expected.end());
      EXPECT_EQ(b.column(n).value<int64_t>(i), it->second.first);
      EXPECT_EQ(b.column(top).value<int64_t>(i), it->second.second);
    }
  }
}

TEST(StatefulApi, LateRowsReachTheSideOutput) {
  // One split read a row at a time: the watermark passes 4999 before the row at 200 arrives.
  Environment env({.batch_size = 1});
  auto windows = env.from_batches({bids({{1, 10, 100}, {1, 20, 5000}, {1, 30, 200}})})
                     .with_watermarks(monotonic_timestamps("ts"))
                     .key_by("auction")
                     .window(tumbling(1s))
                     .late_to_side_output()
                     .aggregate({count().as("n")});
  auto main = windows.collect();
  auto late = windows.side_output("late").collect();
  JobResult r = env.execute();
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(main->num_rows(), 2);  // windows [0,1000) and [5000,6000)
  ASSERT_EQ(late->num_rows(), 1);  // ts 200 arrived after the watermark passed 4999
  EXPECT_EQ(late->to_batch().value().column(1).value<int64_t>(0), 30);
}

TEST(StatefulApi, IntervalJoinOfTwoKeyedStreams) {
  Environment env({.parallelism = 2});
  auto auction_schema =
      columnar::schema({field("id", columnar::int64()),
                        field("opened", columnar::timestamp(columnar::TimeUnit::kMilli))});
  columnar::Int64Builder id, opened(columnar::timestamp(columnar::TimeUnit::kMilli));
  for (int64_t a = 0; a < 10; ++a) {
    id.append(a);
    opened.append(a * 1000);
  }
  auto auctions =
      env.from_batches({RecordBatch::make(auction_schema, {id.finish(), opened.finish()}).value()})
          .with_watermarks(monotonic_timestamps("opened"))
          .key_by("id");
  std::vector<std::array<int64_t, 3>> rows;
  for (int64_t a = 0; a < 10; ++a) {
    rows.push_back({a, 1, a * 1000 + 500});     // within 10 s after the auction opened
    rows.push_back({a, 2, a * 1000 + 20'000});  // too late
  }
  auto matched = env.from_batches({bids(rows)})
                     .with_watermarks(bounded_out_of_orderness("ts", 100ms))
                     .key_by("auction")
                     .interval_join(auctions, -10s, 0s)
                     .collect();
  JobResult r = env.execute();
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  RecordBatch b = matched->to_batch().value();
  EXPECT_EQ(b.num_rows(), 10);
  int price = b.schema().field_index("price");
  for (int64_t i = 0; i < b.num_rows(); ++i) EXPECT_EQ(b.column(price).value<int64_t>(i), 1);
}

TEST(StatefulApi, DeduplicateKeepsTheFirstRowPerKey) {
  Environment env({.parallelism = 3});
  auto out = env.from_batches({bids({{1, 10, 1}, {2, 20, 2}, {1, 30, 3}, {3, 40, 4}, {2, 50, 5}})})
                 .key_by("auction")
                 .deduplicate()
                 .collect();
  ASSERT_TRUE(env.execute().ok());
  RecordBatch b = out->to_batch().value();
  std::map<int64_t, int64_t> first;
  for (int64_t i = 0; i < b.num_rows(); ++i)
    first[b.column(0).value<int64_t>(i)] = b.column(1).value<int64_t>(i);
  EXPECT_EQ(first, (std::map<int64_t, int64_t>{{1, 10}, {2, 20}, {3, 40}}));
}

TEST(StatefulApi, WindowWithoutEventTimeIsRefused) {
  Environment env;
  env.from_batches({bids({{1, 1, 1}})})
      .key_by("auction")
      .window(tumbling(1s))
      .aggregate({count()})
      .blackhole();
  JobResult r = env.execute();
  EXPECT_FALSE(r.ok());
}

}  // namespace
}  // namespace sabot
