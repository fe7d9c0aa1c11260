// Nexmark q0, q1, q2, q3 and q8 (the stateless queries and the two joins), written as a user
// would with the DataStream API. Every operator takes the Environment's parallelism, so run them
// with EnvironmentOptions::parallelism equal to config.parallelism (the sources' splits).
#include <chrono>

#include "sabot/nexmark/queries.h"

namespace sabot::nexmark {

using namespace std::chrono_literals;

DataStream q0(Environment& env, const QueryConfig& config) {
  return bids(env, config)
      .select({col("auction"), col("bidder"), col("price"), col("date_time"), col("extra")});
}

DataStream q1(Environment& env, const QueryConfig& config) {
  // Dollars to euros, 0.908 * price as in the Nexmark SQL: an int64 price times a float64 literal
  // is a float64 column, so the product is kept rather than truncated to an integer.
  return bids(env, config)
      .select({col("auction"), col("bidder"), (col("price") * 0.908).as("price"), col("date_time"),
               col("extra")});
}

DataStream q2(Environment& env, const QueryConfig& config) {
  return bids(env, config).filter(col("auction") % 123 == 0).select({col("auction"), col("price")});
}

DataStream q3(Environment& env, const QueryConfig& config) {
  // Both sides are filtered (and narrowed) before the join so that only candidates are stored.
  DataStream sellers =
      people(env, config)
          .filter(col("state") == "OR" || col("state") == "ID" || col("state") == "CA")
          .select({col("id"), col("name"), col("city"), col("state")});
  DataStream items =
      auctions(env, config).filter(col("category") == 10).select({col("id"), col("seller")});
  // Unbounded: a person may register before or after their auctions arrive, so both sides are
  // kept for the whole run. Output: id, seller, right_id, name, city, state.
  operators::RegularJoinOptions join;
  join.common.left_keys = {"seller"};
  join.common.right_keys = {"id"};
  return items.key_by("seller")
      .join_with(sellers.key_by("id"), operators::regular_join(std::move(join)))
      .select({col("name"), col("city"), col("state"), col("id")});
}

DataStream q8(Environment& env, const QueryConfig& config) {
  constexpr std::chrono::milliseconds kWindow = 10s;
  // P: one row per (id, name, window) in which the person registered.
  DataStream registered = people(env, config)
                              .key_by({"id", "name"})
                              .window(tumbling(kWindow))
                              .aggregate({})
                              .select({col("id"), col("name"), col("window_start").as("p_start")});
  // A: one row per (seller, window) in which the seller created at least one auction.
  DataStream selling = auctions(env, config)
                           .key_by("seller")
                           .window(tumbling(kWindow))
                           .aggregate({})
                           .select({col("seller"), col("window_start").as("a_start")});
  // P JOIN A ON id = seller AND the same window: a window join on the windows' starts. A window
  // result reaches the join before the watermark that fired it, which may be up to one window past
  // its start, hence the allowed lateness of one window.
  operators::WindowJoinOptions join;
  join.common.left_keys = {"id"};
  join.common.right_keys = {"seller"};
  join.time.left_time = "p_start";
  join.time.right_time = "a_start";
  join.time.allowed_lateness_ms = kWindow.count();
  join.size_ms = kWindow.count();
  return registered.key_by("id")
      .join_with(selling.key_by("seller"), operators::window_join(std::move(join)))
      .select({col("id"), col("name"), col("window_start")});
}

}  // namespace sabot::nexmark
