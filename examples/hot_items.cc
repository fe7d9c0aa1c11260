// Hot items: bids generated on the fly, filtered, keyed by auction, counted in sliding windows.
// Shows the DataStream API end to end; run it with `build/release/examples/hot_items [bids]`
// (or --bids N; --help). Arguments are parsed like the `sabot` command's (tools/sabot/flags.h).
#include <iostream>

#include "flags.h"
#include "sabot/sabot.h"

using namespace std::chrono_literals;
using namespace sabot;

int main(int argc, char** argv) {
  int64_t total = 1'000'000;
  cli::FlagSet flags(
      "hot_items",
      "Generates bids (one per millisecond on each of two splits), keeps those above\n"
      "price 1000, and counts them per auction in 10 s windows sliding by 2 s; prints\n"
      "the (auction, window) pairs with more than 150 bids and the job's metrics.");
  flags.add_positional("bids", &total, "number of bids (also --bids N)", 0);
  flags.add_int("bids", &total, "number of bids", 0);
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (std::optional<int> exit = cli::parse_flags(flags, args)) return *exit;
  auto schema = columnar::schema(
      {columnar::field("auction", columnar::int64()), columnar::field("price", columnar::int64()),
       columnar::field("date_time", columnar::timestamp(columnar::TimeUnit::kMilli))});

  Environment env({.parallelism = 2});
  // Two splits of bids, one bid per millisecond each, prices 0..9999.
  auto bids = env.from_generator(
      "bids", schema, 2,
      [&](int split, int64_t next, int64_t max) -> Result<std::optional<RecordBatch>> {
        const int64_t per_split = total / 2;
        if (next >= per_split) return std::optional<RecordBatch>();
        const int64_t n = std::min(max, per_split - next);
        columnar::Int64Builder auction, price, ts(columnar::timestamp(columnar::TimeUnit::kMilli));
        for (int64_t i = next; i < next + n; ++i) {
          auction.append((i * 7 + split) % 100);
          price.append((i * 2654435761LL) % 10'000);
          ts.append(i);
        }
        return std::optional<RecordBatch>(
            RecordBatch::make(schema, {auction.finish(), price.finish(), ts.finish()}).value());
      });

  auto hot = bids.with_watermarks(bounded_out_of_orderness("date_time", 4s))
                 .filter(col("price") > lit(1'000))
                 .key_by("auction")
                 .window(sliding(10s, 2s))
                 .aggregate({count().as("bids"), max("price").as("top_price")})
                 .filter(col("bids") > lit(150))
                 .collect();

  JobResult result = env.execute("hot-items");
  if (!result.ok()) {
    std::cerr << result.status().to_string() << "\n";
    return result.exit_code();
  }
  RecordBatch windows = hot->to_batch().value();
  std::cout << windows.num_rows() << " (auction, window) pairs with more than 150 bids\n"
            << windows.to_string(5) << "\n"
            << result.metrics().to_string();
  if (!std::cout.flush()) {
    std::cerr << "hot_items: writing standard output failed\n";
    return 1;
  }
  return 0;
}
