// The market-data generator; see sabot/enrichment/generator.h.
#include "sabot/enrichment/generator.h"

#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <numeric>

#include "sabot/base/arith.h"
#include "sabot/codec/json.h"
#include "sabot/columnar/builder.h"

namespace sabot::enrichment {

namespace {

using columnar::RecordBatch;

constexpr std::array<std::string_view, 11> kSectors = {"Energy",
                                                       "Materials",
                                                       "Industrials",
                                                       "Consumer Discretionary",
                                                       "Consumer Staples",
                                                       "Health Care",
                                                       "Financials",
                                                       "Information Technology",
                                                       "Communication Services",
                                                       "Utilities",
                                                       "Real Estate"};
constexpr std::array<std::string_view, 5> kCurrencies = {"USD", "EUR", "GBP", "JPY", "CHF"};

// Streams of randomness: each draw hashes (seed, stream, a, b).
enum : uint64_t {
  kQuoteSymbol = 1,
  kQuoteDelay,
  kQuotePrice,
  kTradeSymbol,
  kTradeDelay,
  kTradePrice,
  kSecurity,
  kSecurityDelay,
  kPrice,
};

uint64_t splitmix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

uint64_t draw(uint64_t seed, uint64_t stream, int64_t a, int64_t b = 0) {
  return splitmix(
      splitmix(splitmix(seed ^ (stream * 0xD6E8FEB86659FD93ULL)) + static_cast<uint64_t>(a)) +
      static_cast<uint64_t>(b));
}

// A uniform double in [0, 1) from the top 53 bits.
double unit(uint64_t h) { return static_cast<double>(h >> 11) * 0x1.0p-53; }

// The smallest index whose time is >= t when index i has time first + slot_ms * (i / per_slot)
// (clamped to [0, count]).
int64_t first_index_at(int64_t t, int64_t first, int64_t slot_ms, int64_t per_slot, int64_t count) {
  const int64_t slot = -floor_div(-(t - first), slot_ms);  // ceil((t - first) / slot_ms)
  return std::clamp<int64_t>(slot * per_slot, 0, count);
}

struct Row {
  int64_t arrival;
  int64_t time;
  int64_t index;
  int64_t symbol;
};

void sort_rows(std::vector<Row>* rows) {
  std::sort(rows->begin(), rows->end(), [](const Row& a, const Row& b) {
    if (a.arrival != b.arrival) return a.arrival < b.arrival;
    if (a.time != b.time) return a.time < b.time;
    return a.index < b.index;
  });
}

double cents(int64_t c) { return static_cast<double>(c) / 100.0; }

}  // namespace

std::span<const std::string_view> sectors() { return kSectors; }

const columnar::SchemaPtr& security_schema() {
  using namespace columnar;
  static const SchemaPtr kSchema =
      schema({field("symbol", utf8(), false), field("sector", utf8(), false),
              field("currency", utf8(), false), field("lot_size", int64(), false),
              field("update_time", int64(), false)});
  return kSchema;
}

const columnar::SchemaPtr& quote_schema() {
  using namespace columnar;
  static const SchemaPtr kSchema =
      schema({field("symbol", utf8(), false), field("time", int64(), false),
              field("bid", float64(), false), field("ask", float64(), false)});
  return kSchema;
}

const columnar::SchemaPtr& trade_schema() {
  using namespace columnar;
  static const SchemaPtr kSchema =
      schema({field("trade_id", int64(), false), field("symbol", utf8(), false),
              field("time", int64(), false), field("price", float64(), false),
              field("quantity", int64(), false), field("side", utf8(), false)});
  return kSchema;
}

Result<Generator> Generator::make(GeneratorOptions o) {
  std::vector<std::string> problems;
  if (o.trades < 0 || o.trades > (int64_t{1} << 40)) {
    problems.push_back("trades must be in [0, 2^40], got " + std::to_string(o.trades));
  }
  if (o.securities < kMinSecurities || o.securities > (int64_t{1} << 32)) {
    problems.push_back("securities must be in [" + std::to_string(kMinSecurities) +
                       ", 2^32], got " + std::to_string(o.securities));
  }
  if (o.slot_ms < 2 || o.slot_ms > 1'000'000) {
    problems.push_back("slot_ms must be in [2, 1000000], got " + std::to_string(o.slot_ms));
  }
  if (o.max_disorder_ms < 0 || o.max_disorder_ms > 60'000) {
    problems.push_back("max_disorder_ms must be in [0, 60000], got " +
                       std::to_string(o.max_disorder_ms));
  }
  if (o.start_ms < kListingLeadMs || o.start_ms > (int64_t{1} << 50)) {
    problems.push_back("start_ms must be in [kListingLeadMs, 2^50], got " +
                       std::to_string(o.start_ms));
  }
  for (auto [name, v] :
       {std::pair{"disorder_rate", o.disorder_rate}, std::pair{"update_rate", o.update_rate},
        std::pair{"late_listing_rate", o.late_listing_rate}}) {
    if (!(v >= 0 && v <= 1)) {
      problems.push_back(std::string(name) + " must be in [0, 1], got " + std::to_string(v));
    }
  }
  if (!problems.empty()) {
    std::string msg = "enrichment generator options:";
    for (const std::string& p : problems) msg += " " + p + ";";
    msg.pop_back();
    return Status::invalid_argument(std::move(msg));
  }
  return Generator(o);
}

Generator::Generator(GeneratorOptions options) : options_(options) {
  const GeneratorOptions& o = options_;
  const int64_t slots = (o.trades + kTradesPerSlot - 1) / kTradesPerSlot;
  end_ms_ = o.start_ms + o.slot_ms * slots + 2;
  symbol_width_ = 1;
  for (int64_t n = 26; n < o.securities; n *= 26) ++symbol_width_;
  symbol_width_ = std::max(symbol_width_, 3);
  bits_ = 1;
  while ((int64_t{1} << bits_) < o.securities) ++bits_;
  // A multiplier coprime with the count scatters the hot ranks over the alphabet.
  scatter_ =
      static_cast<int64_t>(draw(o.seed, kSecurity, -1) % static_cast<uint64_t>(o.securities));
  while (std::gcd(scatter_, o.securities) != 1) scatter_ = (scatter_ + 1) % o.securities;

  // Late listings and sector changes: decided per symbol.
  late_.assign(static_cast<size_t>(o.securities), 0);
  const int64_t span = end_ms_ - o.start_ms;
  for (int64_t s = 0; s < o.securities; ++s) {
    const uint64_t h = draw(o.seed, kSecurity, s, 1);
    const int32_t sector = static_cast<int32_t>(h % kSectors.size());
    int64_t listed = o.start_ms - kListingLeadMs;
    if (unit(draw(o.seed, kSecurity, s, 2)) < o.late_listing_rate) {
      late_[static_cast<size_t>(s)] = 1;
      listed = o.start_ms +
               static_cast<int64_t>(draw(o.seed, kSecurity, s, 3) % static_cast<uint64_t>(span));
      updates_.push_back(Update{0, listed, s, sector});
    }
    if (unit(draw(o.seed, kSecurity, s, 4)) < o.update_rate) {
      const int64_t from = std::max(listed + 1, o.start_ms);
      if (from < end_ms_) {
        const int64_t t = from + static_cast<int64_t>(draw(o.seed, kSecurity, s, 5) %
                                                      static_cast<uint64_t>(end_ms_ - from));
        const int32_t changed =
            static_cast<int32_t>((sector + 1 + static_cast<int64_t>(h >> 32) % 10) % 11);
        updates_.push_back(Update{0, t, s, changed});
      }
    }
  }
  for (size_t i = 0; i < updates_.size(); ++i) {
    Update& u = updates_[i];
    u.arrival = u.time +
                delay(kSecurityDelay, u.symbol * 2 + (i > 0 && updates_[i - 1].symbol == u.symbol));
  }
  std::sort(updates_.begin(), updates_.end(), [](const Update& a, const Update& b) {
    if (a.arrival != b.arrival) return a.arrival < b.arrival;
    if (a.time != b.time) return a.time < b.time;
    return a.symbol < b.symbol;
  });
}

int64_t Generator::delay(uint64_t stream, int64_t index) const {
  if (options_.max_disorder_ms == 0) return 0;
  const uint64_t h = draw(options_.seed, stream, index);
  if (unit(h) >= options_.disorder_rate) return 0;
  return 1 + static_cast<int64_t>(splitmix(h) % static_cast<uint64_t>(options_.max_disorder_ms));
}

std::string Generator::symbol(int64_t i) const {
  std::string s(static_cast<size_t>(symbol_width_), 'A');
  for (int k = symbol_width_ - 1; k >= 0 && i > 0; --k, i /= 26) {
    s[static_cast<size_t>(k)] = static_cast<char>('A' + i % 26);
  }
  return s;
}

// Log-uniform rank: bucket b (uniform over bits_) holds ranks [2^b - 1, 2^(b+1) - 1), so rank 0
// alone gets 1/bits_ of the draws and a few symbols are hot.
int64_t Generator::pick_symbol(uint64_t stream, int64_t a, int64_t b) const {
  const uint64_t h = draw(options_.seed, stream, a, b);
  const int bucket = static_cast<int>(h % static_cast<uint64_t>(bits_));
  const int64_t lo = (int64_t{1} << bucket) - 1;
  const int64_t hi = std::min((int64_t{1} << (bucket + 1)) - 1, options_.securities);
  const int64_t rank = lo + static_cast<int64_t>((h >> 8) % static_cast<uint64_t>(hi - lo));
  // rank and scatter_ are below securities <= 2^32: the product fits in 64 bits.
  return static_cast<int64_t>(static_cast<uint64_t>(rank) * static_cast<uint64_t>(scatter_) %
                              static_cast<uint64_t>(options_.securities));
}

// The mid price in cents: a per-symbol base of $5-$500 on a triangle wave of +-2% with a period
// of 5-30 minutes, plus a cent or so of noise. Integer arithmetic: the same on every machine.
int64_t Generator::mid_cents(int64_t symbol, int64_t time) const {
  const uint64_t h = draw(options_.seed, kPrice, symbol);
  const int64_t base = 500 + static_cast<int64_t>(h % 49'500);
  const int64_t amplitude = std::max<int64_t>(1, base / 50);
  const int64_t period = 60'000 * (5 + static_cast<int64_t>((h >> 20) % 26));
  const int64_t x = (time + static_cast<int64_t>(h >> 40)) % period;
  const int64_t wave = x < period / 2 ? -amplitude + 4 * amplitude * x / period
                                      : 3 * amplitude - 4 * amplitude * x / period;
  const int64_t noise_span = 1 + base / 2'000;
  const int64_t noise =
      static_cast<int64_t>(draw(options_.seed, kPrice, symbol, time) % (2 * noise_span + 1)) -
      noise_span;
  return base + wave + noise;
}

int64_t Generator::half_spread_cents(int64_t symbol, int64_t time) const {
  const int64_t base = 500 + static_cast<int64_t>(draw(options_.seed, kPrice, symbol) % 49'500);
  return 1 + static_cast<int64_t>(draw(options_.seed, kQuotePrice, symbol, time) %
                                  static_cast<uint64_t>(1 + base / 1'000));
}

RecordBatch Generator::quotes(int64_t from_ms, int64_t to_ms) const {
  const GeneratorOptions& o = options_;
  const int64_t n = quotes();
  const int64_t first =
      first_index_at(from_ms - o.max_disorder_ms, o.start_ms, o.slot_ms, kQuotesPerSlot, n);
  const int64_t last = first_index_at(to_ms, o.start_ms, o.slot_ms, kQuotesPerSlot, n);
  std::vector<Row> rows;
  std::array<int64_t, kQuotesPerSlot> slot_symbols{};
  for (int64_t j = first; j < last; ++j) {
    const int64_t slot = j / kQuotesPerSlot;
    const int64_t k = j % kQuotesPerSlot;
    // Distinct symbols within a slot (quote times are strictly increasing per symbol): redraw a
    // symbol already taken by an earlier quote of the slot.
    int64_t s = 0;
    for (int64_t attempt = 0;; ++attempt) {
      s = pick_symbol(kQuoteSymbol, slot, k * 1'000'003 + attempt);
      if (std::find(slot_symbols.begin(), slot_symbols.begin() + k, s) ==
          slot_symbols.begin() + k) {
        break;
      }
    }
    slot_symbols[static_cast<size_t>(k)] = s;
    const int64_t t = o.start_ms + o.slot_ms * slot;
    const int64_t arrival = t + delay(kQuoteDelay, j);
    if (arrival >= from_ms && arrival < to_ms) rows.push_back(Row{arrival, t, j, s});
  }
  // A slot cut by `first` would lose the distinctness history: first is a slot boundary.
  sort_rows(&rows);
  using namespace columnar;
  const auto count = static_cast<int64_t>(rows.size());
  StringBuilder symbols(utf8());
  Int64Builder times(int64());
  Float64Builder bids(float64()), asks(float64());
  symbols.reserve(count);
  times.reserve(count);
  bids.reserve(count);
  asks.reserve(count);
  for (const Row& r : rows) {
    symbols.append(symbol(r.symbol));
    times.unsafe_append(r.time);
    const int64_t mid = mid_cents(r.symbol, r.time);
    const int64_t half = half_spread_cents(r.symbol, r.time);
    bids.unsafe_append(cents(mid - half));
    asks.unsafe_append(cents(mid + half));
  }
  return RecordBatch::make_unchecked(
      quote_schema(), {symbols.finish(), times.finish(), bids.finish(), asks.finish()}, count);
}

RecordBatch Generator::trades(int64_t from_ms, int64_t to_ms) const {
  const GeneratorOptions& o = options_;
  const int64_t first = first_index_at(from_ms - o.max_disorder_ms, o.start_ms + 1, o.slot_ms,
                                       kTradesPerSlot, o.trades);
  const int64_t last = first_index_at(to_ms, o.start_ms + 1, o.slot_ms, kTradesPerSlot, o.trades);
  std::vector<Row> rows;
  for (int64_t i = first; i < last; ++i) {
    const int64_t t = o.start_ms + o.slot_ms * (i / kTradesPerSlot) + 1;
    const int64_t arrival = t + delay(kTradeDelay, i);
    if (arrival >= from_ms && arrival < to_ms) {
      rows.push_back(Row{arrival, t, i, pick_symbol(kTradeSymbol, i, 0)});
    }
  }
  sort_rows(&rows);
  using namespace columnar;
  const auto count = static_cast<int64_t>(rows.size());
  Int64Builder ids(int64()), times(int64()), quantities(int64());
  StringBuilder symbols(utf8()), sides(utf8());
  Float64Builder prices(float64());
  for (auto* b : {&ids, &times, &quantities}) b->reserve(count);
  symbols.reserve(count);
  sides.reserve(count);
  prices.reserve(count);
  for (const Row& r : rows) {
    const uint64_t h = draw(o.seed, kTradePrice, r.index);
    const int64_t half = half_spread_cents(r.symbol, r.time);
    const int64_t offset = static_cast<int64_t>(h % static_cast<uint64_t>(6 * half + 1)) - 3 * half;
    const int64_t price = std::max<int64_t>(1, mid_cents(r.symbol, r.time) + offset);
    const uint64_t hs = draw(o.seed, kSecurity, r.symbol, 1);
    const int64_t lot = (hs >> 16) % 10 < 6 ? 100 : ((hs >> 16) % 10 < 9 ? 10 : 1);
    ids.unsafe_append(1'000'000 + r.index);
    symbols.append(symbol(r.symbol));
    times.unsafe_append(r.time);
    prices.unsafe_append(cents(price));
    quantities.unsafe_append(lot * (1 + static_cast<int64_t>((h >> 32) % 20)));
    sides.append((h >> 60) & 1 ? "sell" : "buy");
  }
  return RecordBatch::make_unchecked(trade_schema(),
                                     {ids.finish(), symbols.finish(), times.finish(),
                                      prices.finish(), quantities.finish(), sides.finish()},
                                     count);
}

namespace {
// The securities row of symbol s (sector given: the listing's or an update's).
struct SecurityColumns {
  columnar::StringBuilder symbols{columnar::utf8()}, sectors{columnar::utf8()},
      currencies{columnar::utf8()};
  columnar::Int64Builder lots{columnar::int64()}, times{columnar::int64()};
  RecordBatch finish(int64_t n) {
    return RecordBatch::make_unchecked(
        security_schema(),
        {symbols.finish(), sectors.finish(), currencies.finish(), lots.finish(), times.finish()},
        n);
  }
};
}  // namespace

RecordBatch Generator::listings(int64_t first, int64_t last) const {
  first = std::clamp<int64_t>(first, 0, options_.securities);
  last = std::clamp<int64_t>(last, first, options_.securities);
  SecurityColumns c;
  int64_t n = 0;
  for (int64_t s = first; s < last; ++s) {
    if (late_[static_cast<size_t>(s)]) continue;
    const uint64_t h = draw(options_.seed, kSecurity, s, 1);
    c.symbols.append(symbol(s));
    c.sectors.append(kSectors[h % kSectors.size()]);
    c.currencies.append(kCurrencies[(h >> 8) % 10 < 6 ? 0 : 1 + (h >> 24) % 4]);
    c.lots.append((h >> 16) % 10 < 6 ? 100 : ((h >> 16) % 10 < 9 ? 10 : 1));
    c.times.append(options_.start_ms - kListingLeadMs);
    ++n;
  }
  return c.finish(n);
}

RecordBatch Generator::security_updates(int64_t from_ms, int64_t to_ms) const {
  auto lo = std::lower_bound(updates_.begin(), updates_.end(), from_ms,
                             [](const Update& u, int64_t t) { return u.arrival < t; });
  SecurityColumns c;
  int64_t n = 0;
  for (auto it = lo; it != updates_.end() && it->arrival < to_ms; ++it) {
    const uint64_t h = draw(options_.seed, kSecurity, it->symbol, 1);
    c.symbols.append(symbol(it->symbol));
    c.sectors.append(kSectors[static_cast<size_t>(it->sector)]);
    c.currencies.append(kCurrencies[(h >> 8) % 10 < 6 ? 0 : 1 + (h >> 24) % 4]);
    c.lots.append((h >> 16) % 10 < 6 ? 100 : ((h >> 16) % 10 < 9 ? 10 : 1));
    c.times.append(it->time);
    ++n;
  }
  return c.finish(n);
}

Status write_files(const GeneratorOptions& options, const std::string& dir) {
  SABOT_ASSIGN_OR_RETURN(Generator gen, Generator::make(options));
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return Status::io_error("cannot create directory '" + dir + "': " + std::strerror(errno));
  }
  codec::JsonEncoder encoder;
  std::string text;
  auto write = [&](const std::string& name, auto&& each_batch) -> Status {
    const std::string path = dir + "/" + name;
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    if (!out) return Status::io_error("cannot write '" + path + "': " + std::strerror(errno));
    Status st = each_batch([&](const RecordBatch& b) {
      text.clear();
      encoder.encode_lines(b, text);
      out.write(text.data(), static_cast<std::streamsize>(text.size()));
    });
    SABOT_RETURN_IF_ERROR(st);
    out.flush();
    if (!out) return Status::io_error("writing '" + path + "' failed");
    return Status::ok();
  };
  constexpr int64_t kChunkMs = 10'000;
  const int64_t start = options.start_ms;
  SABOT_RETURN_IF_ERROR(write("securities.jsonl", [&](auto&& emit) {
    for (int64_t s = 0; s < options.securities; s += 65'536) emit(gen.listings(s, s + 65'536));
    emit(gen.security_updates(INT64_MIN, INT64_MAX));
    return Status::ok();
  }));
  SABOT_RETURN_IF_ERROR(write("quotes.jsonl", [&](auto&& emit) {
    for (int64_t t = start; t < gen.arrival_end_ms(); t += kChunkMs)
      emit(gen.quotes(t, t + kChunkMs));
    return Status::ok();
  }));
  SABOT_RETURN_IF_ERROR(write("trades.jsonl", [&](auto&& emit) {
    for (int64_t t = start; t < gen.arrival_end_ms(); t += kChunkMs)
      emit(gen.trades(t, t + kChunkMs));
    return Status::ok();
  }));
  return Status::ok();
}

}  // namespace sabot::enrichment
