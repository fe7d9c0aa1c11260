// The Nexmark queries of /work/shared/spec/NEXMARK.md (q0-q5, q7, q8), each written with the public
// DataStream API as a short function that adds its sources and operators to an Environment and
// returns the result stream (the caller adds the sink). At the end of the bounded input the
// watermark advances to the end of time, so every window fires and the output equals the SQL
// definition over all events. Plain functions; build a plan from one thread.
#pragma once

#include <chrono>
#include <span>
#include <string_view>

#include "sabot/api/environment.h"
#include "sabot/nexmark/generator.h"

namespace sabot::nexmark {

struct QueryConfig {
  GeneratorConfig generator{};
  // Splits of every source and parallelism of every operator of the query.
  int parallelism = 1;
};

// How late a Nexmark event may be: the watermark is date_time - 4 s.
inline constexpr std::chrono::milliseconds kWatermarkDelay{4000};

// The event streams of config.generator's events [0, events), each with config.parallelism
// splits and the watermark date_time - 4 s. A stream generates only its own kind. The streams of a
// query are watermark-aligned (one group; drift: the event time of 16 chunks per subtask).
DataStream bids(Environment& env, const QueryConfig& config);
DataStream people(Environment& env, const QueryConfig& config);
DataStream auctions(Environment& env, const QueryConfig& config);

// Output columns (times are timestamp[ms], i.e. epoch milliseconds):
DataStream q0(Environment& env,
              const QueryConfig& config);  // auction, bidder, price, date_time, extra
DataStream q1(Environment& env, const QueryConfig& config);  // q0 with price * 0.908
DataStream q2(Environment& env, const QueryConfig& config);  // auction, price
DataStream q3(Environment& env, const QueryConfig& config);  // name, city, state, id
DataStream q4(Environment& env, const QueryConfig& config);  // category, avg_final (updates)
DataStream q5(Environment& env,
              const QueryConfig& config);  // window_start, window_end, auction, num
DataStream q7(Environment& env,
              const QueryConfig& config);  // auction, bidder, price, date_time, extra
DataStream q8(Environment& env, const QueryConfig& config);  // id, name, window_start

struct QueryInfo {
  std::string_view name;   // "q0"
  std::string_view title;  // "pass-through"
  DataStream (*build)(Environment& env, const QueryConfig& config);
};
// q0, q1, q2, q3, q4, q5, q7, q8 in that order.
std::span<const QueryInfo> all_queries();
// nullptr when there is no query of that name.
const QueryInfo* find_query(std::string_view name);

}  // namespace sabot::nexmark
