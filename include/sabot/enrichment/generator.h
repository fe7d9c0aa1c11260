// The market-data generator behind the trade-enrichment job (docs/enrichment.md): securities
// (reference data with late listings and sector changes), quotes and trades as columnar batches.
// Deterministic and splittable like the Nexmark generator: every record depends only on the seed
// and its own index, and each stream is produced by ranges of arrival time, so any split of the
// range yields the same records. A Generator is immutable after make() and may be shared by
// threads.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sabot/base/status.h"
#include "sabot/columnar/record_batch.h"

namespace sabot::enrichment {

struct GeneratorOptions {
  // Trades; the quotes are kQuotesPerTrade times as many. >= 0.
  int64_t trades = 1'000'000;
  // Distinct symbols (one securities row each, plus updates). >= kMinSecurities.
  int64_t securities = 10'000;
  // Same seed and options, same records (and the same bytes in the files).
  uint64_t seed = 42;
  // Event time of the first quote (epoch ms); trades and quotes fill [start, end_ms()).
  int64_t start_ms = 1'700'000'000'000;
  // Milliseconds between two quote slots (>= 2): quotes at start_ms + slot_ms * s, trades
  // one millisecond later. The default 2 gives 1,000 trades per second of event time; tests use
  // more to spread a few trades over several minutes.
  int64_t slot_ms = 2;
  // Records arrive at most this far behind the newest time of their file (bounded disorder);
  // 0: every file is in time order. In [0, 60'000].
  int64_t max_disorder_ms = 2'000;
  // Share of records that arrive late (delayed by 1..max_disorder_ms). In [0, 1].
  double disorder_rate = 0.02;
  // Share of symbols whose sector changes once during the stream. In [0, 1].
  double update_rate = 0.03;
  // Share of symbols listed only during the stream: before that, their trades have no
  // securities row (sector unknown). In [0, 1].
  double late_listing_rate = 0.02;
};

// Layout of event time: quotes at the start of each slot (kQuotesPerSlot distinct symbols each),
// trades 1 ms later (kTradesPerSlot each), so a trade's time never equals a quote time.
inline constexpr int64_t kQuotesPerTrade = 10;
inline constexpr int64_t kTradesPerSlot = 2;
inline constexpr int64_t kQuotesPerSlot = kTradesPerSlot * kQuotesPerTrade;
inline constexpr int64_t kMinSecurities = 100;
// Symbols listed before the stream carry update_time = start_ms - kListingLeadMs.
inline constexpr int64_t kListingLeadMs = 86'400'000;

// The 11 GICS sectors.
std::span<const std::string_view> sectors();

// securities: symbol, sector, currency (utf8), lot_size (int64), update_time (int64 epoch ms).
const columnar::SchemaPtr& security_schema();
// quotes: symbol (utf8), time (int64 epoch ms), bid, ask (float64, bid < ask).
const columnar::SchemaPtr& quote_schema();
// trades: trade_id (int64, unique), symbol, time, price (float64), quantity (int64), side
// ("buy" / "sell").
const columnar::SchemaPtr& trade_schema();

class Generator {
 public:
  // InvalidArgument naming every bad option.
  static Result<Generator> make(GeneratorOptions options);

  const GeneratorOptions& options() const { return options_; }
  int64_t quotes() const { return options_.trades * kQuotesPerTrade; }
  // Every trade and quote time, and every securities update during the stream, is in
  // [options().start_ms, end_ms()).
  int64_t end_ms() const { return end_ms_; }
  // Arrival times (time + delay) of trades, quotes and updates are in [start_ms, arrival_end_ms()).
  int64_t arrival_end_ms() const { return end_ms_ + options_.max_disorder_ms; }
  // Symbol of index i in [0, securities): fixed-width upper-case letters ("AAAA", "AAAB", ...).
  std::string symbol(int64_t i) const;

  // The records that arrive in [from_ms, to_ms), in file order (by arrival time, then time, then
  // index). A record's arrival time is its time plus its delay (0 for most).
  columnar::RecordBatch quotes(int64_t from_ms, int64_t to_ms) const;
  columnar::RecordBatch trades(int64_t from_ms, int64_t to_ms) const;
  // The securities rows of symbols [first, last) listed before the stream (update_time =
  // start_ms - kListingLeadMs), by index. The file starts with all of them.
  columnar::RecordBatch listings(int64_t first, int64_t last) const;
  // Late listings and sector changes that arrive in [from_ms, to_ms), in file order.
  columnar::RecordBatch security_updates(int64_t from_ms, int64_t to_ms) const;
  int64_t num_security_updates() const { return static_cast<int64_t>(updates_.size()); }

 private:
  struct Update {  // a late listing or a sector change, in file order
    int64_t arrival;
    int64_t time;
    int64_t symbol;
    int32_t sector;
  };
  explicit Generator(GeneratorOptions options);
  int64_t delay(uint64_t stream, int64_t index) const;
  int64_t pick_symbol(uint64_t stream, int64_t a, int64_t b) const;
  int64_t mid_cents(int64_t symbol, int64_t time) const;
  int64_t half_spread_cents(int64_t symbol, int64_t time) const;

  GeneratorOptions options_;
  int64_t end_ms_ = 0;
  int symbol_width_ = 4;
  int64_t scatter_ = 1;          // rank -> symbol index: rank * scatter_ % securities
  int bits_ = 1;                 // ceil(log2(securities)): the skew's buckets
  std::vector<uint8_t> late_;    // per symbol: listed during the stream
  std::vector<Update> updates_;  // sorted by (arrival, time, symbol)
};

// Writes securities.jsonl, quotes.jsonl and trades.jsonl into `dir` (created if missing), each
// in file order. Same options, same bytes.
Status write_files(const GeneratorOptions& options, const std::string& dir);

}  // namespace sabot::enrichment
