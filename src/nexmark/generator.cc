#include "sabot/nexmark/generator.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstddef>
#include <cstring>

#include "sabot/base/check.h"

namespace sabot::nexmark {

using columnar::Array;
using columnar::ArrayData;
using columnar::DataType;
using columnar::MutableBuffer;
using columnar::RecordBatch;
using columnar::SchemaPtr;
using columnar::TimeUnit;

namespace {

constexpr int64_t kActivePeople = 1000;
constexpr int64_t kInFlightAuctions = 100;
constexpr int64_t kLeadIds = 10;
constexpr int64_t kNumChannels = 10'000;
constexpr int64_t kPersonAvgSize = 200;
constexpr int64_t kAuctionAvgSize = 500;
constexpr int64_t kBidAvgSize = 100;
constexpr int64_t kBidFixedSize = 4 * 8;  // auction, bidder, price, date_time
constexpr int64_t kMinStringLength = 3;
constexpr int64_t kMaxItemLength = 20;          // item_name: [3, 20) characters
constexpr int64_t kMaxDescriptionLength = 100;  // description: [3, 100)
// Every text fill writes whole 32-byte chunks, so each string column keeps this much spare room.
constexpr int64_t kTextSlack = 64;
constexpr int64_t kMaxUrlLength = 80;  // 24 + 3 * 6 + 16 + 12 + 10 digits

constexpr const char* kFirstNames[] = {"Peter", "Paul",  "Luke",  "John",   "Saul",  "Vicky",
                                       "Kate",  "Julie", "Sarah", "Deiter", "Walter"};
constexpr const char* kLastNames[] = {"Shultz", "Abrams", "Spencer", "White", "Bartels",
                                      "Walton", "Smith",  "Jones",   "Noris"};
constexpr const char* kCities[] = {"Phoenix", "Los Angeles", "San Francisco", "Boise", "Portland",
                                   "Bend",    "Redmond",     "Seattle",       "Kent",  "Cheyenne"};
constexpr const char* kStates[] = {"AZ", "CA", "ID", "OR", "WA", "WY"};
constexpr const char* kHotChannels[] = {"Google", "Facebook", "Baidu", "Apple"};
constexpr uint32_t kNumHotChannels = std::size(kHotChannels);

uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// The 128-bit product folded to 64 bits (wyhash's mixing step: one mulx and one xor).
inline uint64_t mum(uint64_t a, uint64_t b) {
  unsigned __int128 r = static_cast<unsigned __int128>(a) * b;
  return static_cast<uint64_t>(r) ^ static_cast<uint64_t>(r >> 64);
}

// Two 64-bit keys derived from the seed once per batch.
struct SeedKeys {
  uint64_t a, b;
  explicit SeedKeys(uint64_t seed)
      : a(mix64(seed ^ 0x243F6A8885A308D3ULL)), b(mix64(seed + 0x13198A2E03707344ULL) | 1) {}
};

// Counter-based: the stream of event n is a function of (seed, n) only, which makes the generator
// splittable. wyrand steps from there (one multiply per 64 random bits).
class Rng {
 public:
  Rng(const SeedKeys& keys, uint64_t counter) : state_(mum(counter ^ keys.a, keys.b)) {}
  uint64_t next() {
    state_ += 0xA0761D6478BD642FULL;
    return mum(state_, state_ ^ 0xE7037ED1A0B428DBULL);
  }

 private:
  uint64_t state_;
};

// Uniform in [0, n) from 32 random bits (the low or high half of a draw): multiply-shift, no
// division. The bias is below n / 2^32, far under anything the generator's users can observe.
inline int64_t below_lo(uint64_t w, uint64_t n) {
  return static_cast<int64_t>(((w & 0xFFFFFFFFu) * n) >> 32);
}
inline int64_t below_hi(uint64_t w, uint64_t n) {
  return static_cast<int64_t>(((w >> 32) * n) >> 32);
}
// From bits 0..23 of w (bits left over in a draw that also decides coins).
inline int64_t below_bits24(uint64_t w, uint64_t n) {
  return static_cast<int64_t>(((w & 0xFFFFFFu) * n) >> 24);
}
inline int64_t below64(uint64_t w, uint64_t n) {
  return static_cast<int64_t>((static_cast<unsigned __int128>(w) * n) >> 64);
}

// ---- text: 32 bytes per step from eight 32-bit hash lanes (AVX2 with -march=x86-64-v3) ----

typedef uint32_t U32x8 __attribute__((vector_size(32)));
typedef uint8_t U8x32 __attribute__((vector_size(32)));

// Eight independent 32-bit words for chunk `chunk` of the text keyed by (a, b): a counter hash
// (lowbias32 with the key folded in), so chunks need no sequential state. Vectors go by reference:
// by value they would change the ABI between AVX and non-AVX builds (-Wpsabi).
inline void random_lanes(uint32_t a, uint32_t b, uint32_t chunk, U32x8& x) {
  const U32x8 lane = {0, 1, 2, 3, 4, 5, 6, 7};
  x = (lane + chunk * 8u) * 0x9E3779B9u + a;
  x ^= x >> 16;
  x *= 0x21F0AAADu;
  x ^= x >> 15;
  x ^= b;
  x *= 0x735A2D97u;
  x ^= x >> 15;
}

// Each byte v becomes 'a' + (v * 26 >> 8), so each letter has probability 9/256 or 10/256 (as
// uniform as one byte per letter allows). The two 16-bit products of a lane stay below 2^16, so
// one 32-bit multiply handles two bytes without carries between them.
inline void to_letters(U32x8& x) {
  U32x8 even = (((x & 0x00FF00FFu) * 26u) >> 8) & 0x00FF00FFu;
  U32x8 odd = (((x >> 8) & 0x00FF00FFu) * 26u) & 0xFF00FF00u;
  x = (even | odd) + 0x61616161u;
}

// Writes `len` random lowercase letters at `out`, and up to 31 bytes of scratch after them (the
// caller's column keeps kTextSlack spare bytes).
inline void fill_letters(uint8_t* out, int64_t len, uint64_t key) {
  const auto a = static_cast<uint32_t>(key), b = static_cast<uint32_t>(key >> 32);
  for (uint32_t c = 0; static_cast<int64_t>(c) * 32 < len; ++c) {
    U32x8 w;
    random_lanes(a, b, c, w);
    to_letters(w);
    std::memcpy(out + static_cast<size_t>(c) * 32, &w, 32);
  }
}

// As fill_letters, but each character is `special` with probability 20/256 (about 1 in 13).
inline void fill_text(uint8_t* out, int64_t len, uint64_t key, uint8_t special) {
  const auto a = static_cast<uint32_t>(key), b = static_cast<uint32_t>(key >> 32);
  for (uint32_t c = 0; static_cast<int64_t>(c) * 32 < len; ++c) {
    U32x8 letters, pick;
    random_lanes(a, b, 2 * c, letters);
    to_letters(letters);
    random_lanes(a, b, 2 * c + 1, pick);
    auto l = reinterpret_cast<U8x32>(letters);
    auto is_special = reinterpret_cast<U8x32>(reinterpret_cast<U8x32>(pick) < 20);
    U8x32 w = (l & ~is_special) | (is_special & special);
    std::memcpy(out + static_cast<size_t>(c) * 32, &w, 32);
  }
}

// Length of the `extra` padding an event of `current` bytes to `desired` on average: uniform
// within +-20% of the missing bytes, from 32 random bits.
inline int64_t extra_length(int64_t current, int64_t desired, uint64_t w32) {
  if (current > desired) return 0;
  int64_t missing = desired - current;
  int64_t delta = (missing + 2) / 5;  // round(missing * 0.2)
  return missing - delta + below_lo(w32, static_cast<uint64_t>(2 * delta + 1));
}

// ---- price: 100 * 10^(6u), u uniform in [0, 1), without pow() ----

struct PriceTable {
  double v[1024];  // 100 * 10^(6k / 1024)
  PriceTable() {
    for (int k = 0; k < 1024; ++k) v[k] = 100.0 * std::pow(10.0, 6.0 * k / 1024.0);
  }
};
const PriceTable kPrices;

// u = (k + f) / 1024 with k the top 10 bits of w and f the next 40 as a fraction: the table gives
// 100 * 10^(6k/1024), a cubic in f the rest (relative error < 2e-9, under 0.2 at the top price).
// No float-to-int-to-float round trip, so the dependency chain stays short.
inline int64_t price_of(uint64_t w) {
  const auto k = static_cast<size_t>(w >> 54);
  const auto g = static_cast<double>((w >> 14) & ((uint64_t{1} << 40) - 1));  // f * 2^40
  constexpr double kC1 = 6.0 * 2.30258509299404568402 / 1024.0 * 0x1p-40;
  constexpr double kC2 = kC1 * kC1 / 2, kC3 = kC1 * kC1 * kC1 / 6;
  const double growth = g * (kC1 + g * (kC2 + g * kC3));  // e^x - 1 for x = g * kC1
  const double base = kPrices.v[k];
  return static_cast<int64_t>(base + base * growth + 0.5);
}

// ---- event time: base + floor(n * 1000 / rate), stepped without a division per event ----

class TimeCursor {
 public:
  explicit TimeCursor(const GeneratorConfig& c)
      : base_(c.base_time_ms), rate_(c.rate), step_q_(1000 / c.rate), step_r_(1000 % c.rate) {}
  void seek(int64_t n) {
    if (n <= INT64_MAX / 1000) {
      q_ = n * 1000 / rate_;
      r_ = n * 1000 % rate_;
    } else {
      __int128 x = static_cast<__int128>(n) * 1000;
      q_ = static_cast<int64_t>(x / rate_);
      r_ = static_cast<int64_t>(x % rate_);
    }
  }
  int64_t now() const { return base_ + q_; }
  void step() {
    q_ += step_q_;
    r_ += step_r_;
    bool wrap = r_ >= rate_;  // step_r_ < rate_: one wrap at most
    r_ -= wrap ? rate_ : 0;
    q_ += wrap;
  }

 private:
  int64_t base_, rate_, step_q_, step_r_;
  int64_t q_ = 0, r_ = 0;
};

// ---- columns written through raw pointers, reserved for the whole batch up front ----

class Int64Column {
 public:
  explicit Int64Column(int64_t rows) : rows_(rows) {
    buf_.reserve(rows * 8);
    p_ = buf_.data_as<int64_t>();
  }
  int64_t* data() { return p_; }
  Array finish(DataType type) {
    buf_.set_size_after_write(rows_ * 8);
    return Array(std::make_shared<const ArrayData>(
        ArrayData{type, rows_, 0, 0, nullptr, buf_.finish(), nullptr}));
  }

 private:
  MutableBuffer buf_;
  int64_t* p_;
  int64_t rows_;
};

// utf8: `max_bytes` bounds the bytes of all rows (checked by the caller against int32 offsets).
class StringColumn {
 public:
  StringColumn(int64_t rows, int64_t max_bytes) : rows_(rows) {
    offsets_.reserve((rows + 1) * 4);
    data_.reserve(max_bytes + kTextSlack);
    off_ = offsets_.data_as<int32_t>();
    off_[0] = 0;
    d_ = data_.data();
  }
  uint8_t* cursor() { return d_ + pos_; }
  // Row i ends `len` bytes after the cursor.
  void commit(int64_t i, int64_t len) {
    pos_ += static_cast<int32_t>(len);
    off_[i + 1] = pos_;
  }
  void append(int64_t i, const char* s, size_t len) {
    std::memcpy(cursor(), s, len);
    commit(i, static_cast<int64_t>(len));
  }
  Array finish() {
    offsets_.set_size_after_write((rows_ + 1) * 4);
    data_.set_size_after_write(pos_);
    return Array(std::make_shared<const ArrayData>(
        ArrayData{columnar::utf8(), rows_, 0, 0, nullptr, offsets_.finish(), data_.finish()}));
  }

 private:
  MutableBuffer offsets_, data_;
  int32_t* off_;
  uint8_t* d_;
  int32_t pos_ = 0;
  int64_t rows_;
};

// A channel as the bytes that differ between channels, 32 per slot so that the 10,004 slots
// (320 KB) stay in L2. Urls and names are assembled from constant pieces and the slot with a few
// fixed-size stores (no length-driven memcpy per bid); ChannelLengths say which bytes count.
//   url  = kUrlHead (24) + path (18, "xxxxx/yyyyy/zzzzz/") + "item.htm?query=1"
//          [+ "&channel_id=" + id digits]
//   name = 8-byte head ("channel-" or a hot channel's name) + name_tail (the channel's digits)
struct alignas(32) ChannelSlot {
  char path[18];
  char id_digits[10];
  char name_tail[4];
};
static_assert(sizeof(ChannelSlot) == 32);
struct ChannelLengths {
  uint8_t url, name;
};
constexpr size_t kUrlHeadSize = 24, kUrlPathSize = 18, kUrlBaseSize = 58, kUrlIdAt = 70;
alignas(32) constexpr char kUrlHead[33] = "https://www.nexmark.com/xxxxxxxx";
alignas(32) constexpr char kUrlTail[33] = "item.htm?query=1&channel_id=xxxx";
constexpr char kChannelHead[9] = "channel-";
static_assert(kUrlHeadSize + kUrlPathSize + 16 == kUrlBaseSize && kUrlBaseSize + 12 == kUrlIdAt);

uint32_t reverse_bits(uint32_t v) {
  uint32_t r = 0;
  for (int i = 0; i < 32; ++i) {
    r = (r << 1) | (v & 1);
    v >>= 1;
  }
  return r;
}

}  // namespace

struct ChannelTables {
  // The hot channels (Google, Facebook, Baidu, Apple), then channel-0 .. channel-9999, then one
  // zero slot so that a 16-byte load from the id digits of the last slot stays inside.
  std::vector<ChannelSlot> slots;
  std::vector<ChannelLengths> lengths;
  uint64_t hot_heads[kNumHotChannels];  // the hot names' bytes, zero-padded to 8

  explicit ChannelTables(uint64_t seed) {
    // A counter range far from event numbers so that the tables never alias an event's stream.
    constexpr uint64_t kTableCounter = 0xC0FFEE0000000000ULL;
    SeedKeys keys(seed);
    slots.reserve(kNumHotChannels + kNumChannels + 1);
    lengths.reserve(kNumHotChannels + kNumChannels);
    Rng hot(keys, kTableCounter);
    for (uint32_t h = 0; h < kNumHotChannels; ++h) {
      std::string_view name = kHotChannels[h];
      SABOT_CHECK_LE(name.size(), 8u);
      char head[8] = {};
      std::memcpy(head, name.data(), name.size());
      std::memcpy(&hot_heads[h], head, 8);
      add(hot, "", name.size(), false);
    }
    for (int64_t c = 0; c < kNumChannels; ++c) {
      Rng rng(keys, kTableCounter + 1 + static_cast<uint64_t>(c));
      std::string digits = std::to_string(c);
      bool with_id = below_hi(rng.next(), 10) > 0;
      add(rng, digits, 8 + digits.size(), with_id, static_cast<uint32_t>(c));
    }
    slots.push_back(ChannelSlot{});
  }

 private:
  void add(Rng& rng, std::string_view name_tail, size_t name_len, bool with_id,
           uint32_t channel = 0) {
    ChannelSlot s{};
    uint8_t letters[32];
    fill_letters(letters, 15, rng.next());
    for (int i = 0; i < 3; ++i) {
      std::memcpy(s.path + 6 * i, letters + 5 * i, 5);
      s.path[6 * i + 5] = '/';
    }
    size_t url_len = kUrlBaseSize;
    if (with_id) {
      int64_t id = std::abs(static_cast<int64_t>(static_cast<int32_t>(reverse_bits(channel))));
      std::string digits = std::to_string(id);
      SABOT_CHECK_LE(digits.size(), sizeof(s.id_digits));
      std::memcpy(s.id_digits, digits.data(), digits.size());
      url_len = kUrlIdAt + digits.size();
    }
    SABOT_CHECK_LE(name_tail.size(), sizeof(s.name_tail));
    std::memcpy(s.name_tail, name_tail.data(), name_tail.size());
    slots.push_back(s);
    lengths.push_back({static_cast<uint8_t>(url_len), static_cast<uint8_t>(name_len)});
  }
};

int64_t event_time_ms(const GeneratorConfig& config, int64_t n) {
  // base + floor(floor(n * 1e6 / rate) / 1000) = base + floor(n * 1000 / rate). 64-bit division
  // when n * 1000 fits (128-bit division is a slow libcall).
  if (n >= 0 && n <= INT64_MAX / 1000) return config.base_time_ms + n * 1000 / config.rate;
  __int128 ms = static_cast<__int128>(n) * 1000 / config.rate;
  return config.base_time_ms + static_cast<int64_t>(ms);
}

int64_t last_base0_person_id(int64_t n) {
  int64_t epoch = n / kTotalProportion;
  int64_t offset = n % kTotalProportion;
  if (offset >= kPersonProportion) offset = kPersonProportion - 1;
  return epoch * kPersonProportion + offset;
}

int64_t last_base0_auction_id(int64_t n) {
  int64_t epoch = n / kTotalProportion;
  int64_t offset = n % kTotalProportion;
  if (offset < kPersonProportion) {
    --epoch;
    offset = kAuctionProportion - 1;
  } else if (offset >= kPersonProportion + kAuctionProportion) {
    offset = kAuctionProportion - 1;
  } else {
    offset -= kPersonProportion;
  }
  return epoch * kAuctionProportion + offset;
}

SchemaPtr person_schema() {
  static const SchemaPtr s = columnar::schema({
      columnar::field("id", columnar::int64()),
      columnar::field("name", columnar::utf8()),
      columnar::field("email_address", columnar::utf8()),
      columnar::field("credit_card", columnar::utf8()),
      columnar::field("city", columnar::utf8()),
      columnar::field("state", columnar::utf8()),
      columnar::field("date_time", columnar::timestamp(TimeUnit::kMilli)),
      columnar::field("extra", columnar::utf8()),
  });
  return s;
}

SchemaPtr auction_schema() {
  static const SchemaPtr s = columnar::schema({
      columnar::field("id", columnar::int64()),
      columnar::field("item_name", columnar::utf8()),
      columnar::field("description", columnar::utf8()),
      columnar::field("initial_bid", columnar::int64()),
      columnar::field("reserve", columnar::int64()),
      columnar::field("date_time", columnar::timestamp(TimeUnit::kMilli)),
      columnar::field("expires", columnar::timestamp(TimeUnit::kMilli)),
      columnar::field("seller", columnar::int64()),
      columnar::field("category", columnar::int64()),
      columnar::field("extra", columnar::utf8()),
  });
  return s;
}

SchemaPtr bid_schema() {
  static const SchemaPtr s = columnar::schema({
      columnar::field("auction", columnar::int64()),
      columnar::field("bidder", columnar::int64()),
      columnar::field("price", columnar::int64()),
      columnar::field("channel", columnar::utf8()),
      columnar::field("url", columnar::utf8()),
      columnar::field("date_time", columnar::timestamp(TimeUnit::kMilli)),
      columnar::field("extra", columnar::utf8()),
  });
  return s;
}

namespace {

// Number of events of `kind` among [0, n).
int64_t kind_prefix(EventKind kind, int64_t n) {
  int64_t start = kind == EventKind::kPerson    ? 0
                  : kind == EventKind::kAuction ? kPersonProportion
                                                : kPersonProportion + kAuctionProportion;
  int64_t prop = kind == EventKind::kPerson    ? kPersonProportion
                 : kind == EventKind::kAuction ? kAuctionProportion
                                               : kBidProportion;
  return (n / kTotalProportion) * prop + std::clamp<int64_t>(n % kTotalProportion - start, 0, prop);
}

// Event number of the k-th (base 0) event of `kind`.
int64_t kind_event(EventKind kind, int64_t k) {
  int64_t start = kind == EventKind::kPerson    ? 0
                  : kind == EventKind::kAuction ? kPersonProportion
                                                : kPersonProportion + kAuctionProportion;
  int64_t prop = kind == EventKind::kPerson    ? kPersonProportion
                 : kind == EventKind::kAuction ? kAuctionProportion
                                               : kBidProportion;
  return (k / prop) * kTotalProportion + start + k % prop;
}

// The largest number of bytes a row of each kind puts in one string column.
constexpr int64_t kMaxPersonText = 32;  // name (14), email (15), card (19), city (13)
constexpr int64_t kMaxPersonExtra = kPersonAvgSize * 6 / 5 + 1;
constexpr int64_t kMaxAuctionExtra = kAuctionAvgSize * 6 / 5 + 1;
// A bid's extra pads its 32 fixed bytes to kBidAvgSize: [missing - delta, missing + delta].
constexpr int64_t kBidExtraMissing = kBidAvgSize - kBidFixedSize;
constexpr int64_t kBidExtraDelta = (kBidExtraMissing + 2) / 5;  // as extra_length()
constexpr int64_t kMaxBidExtra = kBidExtraMissing + kBidExtraDelta;
// The widest column of a kind: a batch of `rows` must keep it within int32 offsets.
constexpr int64_t kWidestRow[] = {kMaxPersonExtra, kMaxAuctionExtra, kMaxBidExtra};

Status check_rows(EventKind kind, int64_t rows, int64_t first, int64_t last) {
  if (rows * kWidestRow[static_cast<int>(kind)] + kTextSlack <= INT32_MAX) return Status::ok();
  std::string msg = "nexmark: event range [";
  msg += std::to_string(first);
  msg += ", ";
  msg += std::to_string(last);
  msg += ") is too large for one batch (its text would overflow 32-bit offsets)";
  return Status::invalid_argument(msg);
}

const RecordBatch& empty_batch(EventKind kind) {
  static const RecordBatch kEmpty[] = {RecordBatch::make_empty(person_schema()),
                                       RecordBatch::make_empty(auction_schema()),
                                       RecordBatch::make_empty(bid_schema())};
  return kEmpty[static_cast<int>(kind)];
}

// Copies a short NUL-terminated table string (names, cities, states).
inline size_t put(uint8_t* out, const char* s) {
  size_t len = std::strlen(s);
  std::memcpy(out, s, len);
  return len;
}

RecordBatch build_persons(const GeneratorConfig& config, int64_t first, int64_t last) {
  const int64_t k0 = kind_prefix(EventKind::kPerson, first);
  const int64_t rows = kind_prefix(EventKind::kPerson, last) - k0;
  const SeedKeys keys(config.seed);
  Int64Column id(rows), time(rows);
  StringColumn name(rows, rows * kMaxPersonText), email(rows, rows * kMaxPersonText),
      card(rows, rows * kMaxPersonText), city(rows, rows * kMaxPersonText), state(rows, rows * 2),
      extra(rows, rows * kMaxPersonExtra);
  TimeCursor clock(config);
  for (int64_t i = 0; i < rows; ++i) {
    const int64_t n = kind_event(EventKind::kPerson, k0 + i);
    Rng rng(keys, static_cast<uint64_t>(n));
    id.data()[i] = kFirstPersonId + last_base0_person_id(n);
    clock.seek(n);
    time.data()[i] = clock.now();
    // name: "first last"
    uint64_t w = rng.next();
    uint8_t* out = name.cursor();
    size_t len = put(out, kFirstNames[below_lo(w, std::size(kFirstNames))]);
    out[len++] = ' ';
    len += put(out + len, kLastNames[below_hi(w, std::size(kLastNames))]);
    name.commit(i, static_cast<int64_t>(len));
    int64_t size = 8 + static_cast<int64_t>(len);
    // email: [3, 7) characters '@' [3, 5) characters ".com"
    w = rng.next();
    int64_t user = kMinStringLength + below_lo(w, 7 - kMinStringLength);
    int64_t host = kMinStringLength + below_hi(w, 5 - kMinStringLength);
    out = email.cursor();
    fill_text(out, user + 1 + host, rng.next(), ' ');
    out[user] = '@';
    std::memcpy(out + user + 1 + host, ".com", 4);
    email.commit(i, user + 1 + host + 4);
    size += user + 1 + host + 4;
    // credit card: four 4-digit groups
    out = card.cursor();
    for (int g = 0; g < 4; g += 2) {
      w = rng.next();
      for (int h = 0; h < 2; ++h) {
        int64_t v = h == 0 ? below_lo(w, 10000) : below_hi(w, 10000);
        uint8_t* grp = out + 5 * (g + h);
        for (int d = 3; d >= 0; --d) {
          grp[d] = static_cast<uint8_t>('0' + v % 10);
          v /= 10;
        }
        if (g + h < 3) grp[4] = ' ';
      }
    }
    card.commit(i, 19);
    size += 19;
    w = rng.next();
    auto city_len =
        static_cast<int64_t>(put(city.cursor(), kCities[below_lo(w, std::size(kCities))]));
    city.commit(i, city_len);
    state.append(i, kStates[below_hi(w, std::size(kStates))], 2);
    size += city_len + 2;
    w = rng.next();
    int64_t extra_len = extra_length(size, kPersonAvgSize, w);
    fill_letters(extra.cursor(), extra_len, rng.next());
    extra.commit(i, extra_len);
  }
  return RecordBatch::make_unchecked(
      person_schema(),
      {id.finish(columnar::int64()), name.finish(), email.finish(), card.finish(), city.finish(),
       state.finish(), time.finish(columnar::timestamp(TimeUnit::kMilli)), extra.finish()},
      rows);
}

RecordBatch build_auctions(const GeneratorConfig& config, int64_t first, int64_t last) {
  const int64_t j0 = kind_prefix(EventKind::kAuction, first);
  const int64_t rows = kind_prefix(EventKind::kAuction, last) - j0;
  const SeedKeys keys(config.seed);
  Int64Column id(rows), initial(rows), reserve(rows), time(rows), expires(rows), seller(rows),
      category(rows);
  StringColumn item(rows, rows * kMaxItemLength), desc(rows, rows * kMaxDescriptionLength),
      extra(rows, rows * kMaxAuctionExtra);
  TimeCursor clock(config), horizon_clock(config);
  // Expires after about the time in which kInFlightAuctions further auctions are created.
  constexpr int64_t kEventsForAuctions = kInFlightAuctions * kTotalProportion / kAuctionProportion;
  for (int64_t i = 0; i < rows; ++i) {
    const int64_t n = kind_event(EventKind::kAuction, j0 + i);
    Rng rng(keys, static_cast<uint64_t>(n));
    const int64_t last_person = last_base0_person_id(n);
    id.data()[i] = kFirstAuctionId + last_base0_auction_id(n);
    uint64_t w = rng.next();
    int64_t item_len = kMinStringLength + below_lo(w, kMaxItemLength - kMinStringLength);
    int64_t desc_len = kMinStringLength + below_hi(w, kMaxDescriptionLength - kMinStringLength);
    fill_text(item.cursor(), item_len, rng.next(), ' ');
    item.commit(i, item_len);
    fill_text(desc.cursor(), desc_len, rng.next(), ' ');
    desc.commit(i, desc_len);
    int64_t price = price_of(rng.next());
    initial.data()[i] = price;
    reserve.data()[i] = price + price_of(rng.next());
    clock.seek(n);
    horizon_clock.seek(n + kEventsForAuctions);
    int64_t now = clock.now();
    time.data()[i] = now;
    int64_t horizon = horizon_clock.now() - now;
    expires.data()[i] =
        now + 1 + below64(rng.next(), static_cast<uint64_t>(std::max<int64_t>(horizon * 2, 1)));
    // seller: the hot seller with probability 3/4, else a random active person
    w = rng.next();
    int64_t num_people = last_person + 1;
    int64_t active = std::min(num_people, kActivePeople);
    int64_t random_person =
        num_people - active + below_lo(w, static_cast<uint64_t>(active + kLeadIds));
    int64_t hot_seller = (last_person / 100) * 100;
    w = rng.next();
    seller.data()[i] = kFirstPersonId + ((w & 3) != 0 ? hot_seller : random_person);
    category.data()[i] = kFirstCategoryId + below_hi(w, kNumCategories);
    int64_t size = 8 + item_len + desc_len + 5 * 8;
    int64_t extra_len = extra_length(size, kAuctionAvgSize, rng.next());
    fill_letters(extra.cursor(), extra_len, rng.next());
    extra.commit(i, extra_len);
  }
  const DataType ts = columnar::timestamp(TimeUnit::kMilli);
  return RecordBatch::make_unchecked(
      auction_schema(),
      {id.finish(columnar::int64()), item.finish(), desc.finish(),
       initial.finish(columnar::int64()), reserve.finish(columnar::int64()), time.finish(ts),
       expires.finish(ts), seller.finish(columnar::int64()), category.finish(columnar::int64()),
       extra.finish()},
      rows);
}

RecordBatch build_bids(const GeneratorConfig& config, const ChannelTables& tables, int64_t first,
                       int64_t last) {
  const int64_t rows = kind_prefix(EventKind::kBid, last) - kind_prefix(EventKind::kBid, first);
  const SeedKeys keys(config.seed);
  Int64Column auction(rows), bidder(rows), price(rows), time(rows);
  StringColumn channel(rows, rows * 12), url(rows, rows * kMaxUrlLength),
      extra(rows, rows * kMaxBidExtra);
  int64_t* auction_out = auction.data();
  int64_t* bidder_out = bidder.data();
  int64_t* price_out = price.data();
  int64_t* time_out = time.data();
  const auto* slot_bytes = reinterpret_cast<const uint8_t*>(tables.slots.data());
  const ChannelLengths* lengths = tables.lengths.data();
  TimeCursor clock(config);
  int64_t i = 0;
  // Rotation by rotation: the latest person and auction are fixed for all bids of one.
  for (int64_t epoch = first / kTotalProportion; epoch * kTotalProportion < last; ++epoch) {
    const int64_t epoch_start = epoch * kTotalProportion;
    const int64_t lo = std::max(first, epoch_start + kPersonProportion + kAuctionProportion);
    const int64_t hi = std::min(last, epoch_start + kTotalProportion);
    if (lo >= hi) continue;
    const int64_t last_auction = epoch * kAuctionProportion + kAuctionProportion - 1;
    const int64_t hot_auction = kFirstAuctionId + (last_auction / 100) * 100;
    const int64_t min_auction = std::max<int64_t>(last_auction - kInFlightAuctions, 0);
    const auto auction_span = static_cast<uint64_t>(last_auction - min_auction + 1 + kLeadIds);
    const int64_t num_people = epoch * kPersonProportion + kPersonProportion;
    const int64_t active = std::min(num_people, kActivePeople);
    const int64_t min_person = kFirstPersonId + num_people - active;
    const auto person_span = static_cast<uint64_t>(active + kLeadIds);
    const int64_t hot_bidder = kFirstPersonId + ((num_people - 1) / 100) * 100 + 1;
    clock.seek(lo);
    for (int64_t n = lo; n < hi; ++n, ++i) {
      Rng rng(keys, static_cast<uint64_t>(n));
      const uint64_t coins = rng.next();
      const uint64_t ids = rng.next();
      // Hot auction with probability 1/2, hot bidder with 3/4: selects, not branches.
      const int64_t random_auction = kFirstAuctionId + min_auction + below_lo(ids, auction_span);
      auction_out[i] = (coins & 1) ? hot_auction : random_auction;
      const int64_t random_bidder = min_person + below_hi(ids, person_span);
      bidder_out[i] = (coins & 6) ? hot_bidder : random_bidder;
      price_out[i] = price_of(rng.next());
      time_out[i] = clock.now();
      clock.step();
      // Channel: a hot one with probability 1/2, else one of kNumChannels.
      const auto hot_channel = static_cast<uint32_t>((coins >> 4) & 3);
      const auto cold_channel =
          kNumHotChannels + static_cast<uint32_t>(below_hi(coins, kNumChannels));
      const uint32_t c = (coins & 8) ? hot_channel : cold_channel;
      const uint8_t* slot = slot_bytes + static_cast<size_t>(c) * sizeof(ChannelSlot);
      uint64_t head;
      std::memcpy(&head, kChannelHead, 8);
      head = c < kNumHotChannels ? tables.hot_heads[c & 3] : head;
      uint8_t* name_out = channel.cursor();
      std::memcpy(name_out, &head, 8);
      std::memcpy(name_out + 8, slot + offsetof(ChannelSlot, name_tail), 4);
      channel.commit(i, lengths[c].name);
      uint8_t* url_out = url.cursor();
      std::memcpy(url_out, kUrlHead, 32);
      std::memcpy(url_out + kUrlHeadSize, slot, 32);
      std::memcpy(url_out + kUrlHeadSize + kUrlPathSize, kUrlTail, 32);
      std::memcpy(url_out + kUrlIdAt, slot + offsetof(ChannelSlot, id_digits), 16);
      url.commit(i, lengths[c].url);
      const int64_t extra_len =
          kBidExtraMissing - kBidExtraDelta + below_bits24(coins >> 8, 2 * kBidExtraDelta + 1);
      fill_letters(extra.cursor(), extra_len, rng.next());
      extra.commit(i, extra_len);
    }
  }
  SABOT_CHECK_EQ(i, rows);
  const DataType ts = columnar::timestamp(TimeUnit::kMilli);
  return RecordBatch::make_unchecked(
      bid_schema(),
      {auction.finish(columnar::int64()), bidder.finish(columnar::int64()),
       price.finish(columnar::int64()), channel.finish(), url.finish(), time.finish(ts),
       extra.finish()},
      rows);
}

}  // namespace

Generator::Generator(GeneratorConfig config)
    : Generator(config, std::make_shared<const ChannelTables>(config.seed)) {}

Generator::Generator(GeneratorConfig config, std::shared_ptr<const ChannelTables> tables)
    : config_(config), tables_(std::move(tables)) {
  SABOT_CHECK(config_.rate > 0);
  SABOT_CHECK(tables_ != nullptr);
}

Result<EventBatches> Generator::generate(int64_t first, int64_t last, uint8_t kinds) {
  if (first < 0 || last < first) {
    std::string msg = "nexmark: bad event range [";
    msg += std::to_string(first);
    msg += ", ";
    msg += std::to_string(last);
    msg += ")";
    return Status::invalid_argument(msg);
  }
  for (EventKind kind : {EventKind::kPerson, EventKind::kAuction, EventKind::kBid}) {
    SABOT_RETURN_IF_ERROR(
        check_rows(kind, kind_prefix(kind, last) - kind_prefix(kind, first), first, last));
  }
  EventBatches out;
  out.persons =
      (kinds & kPersons) ? build_persons(config_, first, last) : empty_batch(EventKind::kPerson);
  out.auctions =
      (kinds & kAuctions) ? build_auctions(config_, first, last) : empty_batch(EventKind::kAuction);
  out.bids =
      (kinds & kBids) ? build_bids(config_, *tables_, first, last) : empty_batch(EventKind::kBid);
  return out;
}

// ---- sources ----

namespace {

// Events are dealt to splits in chunks of kSplitChunkEvents, round robin (chunk c belongs to split
// c % num_splits), and a reader reads its chunks in event order. Every subtask therefore moves
// through event time at the same pace: with contiguous ranges, subtask 2 of 2 started half a run
// ahead in event time, and everything it read waited in the windows for subtask 1's watermark, so
// state and firing cost grew with the length of the run.
constexpr int64_t kSplitChunkEvents = 4096;

class NexmarkReader final : public runtime::SourceReader {
 public:
  NexmarkReader(const GeneratorConfig& config, std::shared_ptr<const ChannelTables> tables,
                EventKind kind, int num_splits, const std::vector<int>& splits)
      : config_(config), tables_(std::move(tables)), kind_(kind), num_splits_(num_splits) {
    owned_.assign(static_cast<size_t>(num_splits_), 0);
    for (int s : splits) owned_[static_cast<size_t>(s)] = 1;
    chunk_ = first_owned_chunk(0);
    pos_ = chunk_begin(chunk_);
  }

  Result<runtime::SourcePoll> poll(int64_t max_rows) override {
    max_rows = std::max<int64_t>(max_rows, 1);
    while (pos_ < config_.events) {
      if (!resume_.empty())
        pos_ = std::max(pos_, resume_[static_cast<size_t>(chunk_ % num_splits_)]);
      const int64_t end = chunk_begin(chunk_ + 1);
      if (pos_ < end) {
        // Exactly max_rows events of the kind, unless the chunk ends first.
        int64_t stop = std::min(end, kind_event(kind_, kind_prefix(kind_, pos_) + max_rows));
        int64_t rows = kind_prefix(kind_, stop) - kind_prefix(kind_, pos_);
        SABOT_RETURN_IF_ERROR(check_rows(kind_, rows, pos_, stop));
        int64_t from = pos_;
        pos_ = stop;
        if (rows == 0) continue;
        RecordBatch batch = kind_ == EventKind::kPerson ? build_persons(config_, from, stop)
                            : kind_ == EventKind::kAuction
                                ? build_auctions(config_, from, stop)
                                : build_bids(config_, *tables_, from, stop);
        runtime::SourcePoll p = runtime::SourcePoll::of(std::move(batch));
        p.split = static_cast<int>(chunk_ % num_splits_);
        return p;
      }
      chunk_ = first_owned_chunk(chunk_ + 1);
      pos_ = chunk_begin(chunk_);
    }
    return runtime::SourcePoll::end();
  }

  // Every owned split has consumed exactly its events before pos_ (chunks are read in event
  // order), so each split's position is pos_ (or where a restore put it, if that is later).
  Result<std::vector<runtime::SplitPosition>> snapshot_positions() const override {
    std::vector<runtime::SplitPosition> out;
    for (int s = 0; s < num_splits_; ++s) {
      if (!owned_[static_cast<size_t>(s)]) continue;
      int64_t at = pos_;
      if (!resume_.empty()) at = std::max(at, resume_[static_cast<size_t>(s)]);
      out.push_back({s, runtime::encode_position(at)});
    }
    return out;
  }
  Status restore_positions(std::span<const runtime::SplitPosition> positions) override {
    resume_.assign(static_cast<size_t>(num_splits_), 0);
    for (const auto& p : positions) {
      if (p.split < 0 || p.split >= num_splits_ || !owned_[static_cast<size_t>(p.split)]) {
        return Status::invalid_argument("nexmark source: split " + std::to_string(p.split) +
                                        " is not this reader's");
      }
      SABOT_ASSIGN_OR_RETURN(int64_t at, runtime::decode_position(p, "nexmark source"));
      if (at < 0 || at > config_.events) {
        return Status::invalid_data("nexmark source: event " + std::to_string(at) + " of split " +
                                    std::to_string(p.split) + " outside [0, " +
                                    std::to_string(config_.events) + "]");
      }
      resume_[static_cast<size_t>(p.split)] = at;
    }
    return Status::ok();
  }

  std::string position() const override {
    if (pos_ >= config_.events) return "done";
    std::string s = "chunk ";
    s += std::to_string(chunk_);
    s += " event ";
    s += std::to_string(pos_);
    return s;
  }

 private:
  int64_t chunk_begin(int64_t c) const { return std::min(config_.events, c * kSplitChunkEvents); }
  // The first chunk >= c of an owned split, or one past the last chunk.
  int64_t first_owned_chunk(int64_t c) const {
    const int64_t chunks = (config_.events + kSplitChunkEvents - 1) / kSplitChunkEvents;
    while (c < chunks && !owned_[static_cast<size_t>(c % num_splits_)]) ++c;
    return std::min(c, chunks);
  }

  GeneratorConfig config_;
  std::shared_ptr<const ChannelTables> tables_;
  EventKind kind_;
  int num_splits_;
  std::vector<uint8_t> owned_;   // per split: read by this reader
  std::vector<int64_t> resume_;  // per split: the first event to read (restored); empty: none
  int64_t chunk_ = 0;
  int64_t pos_ = 0;
};

class NexmarkSource final : public runtime::Source {
 public:
  NexmarkSource(GeneratorConfig config, int num_splits, EventKind kind)
      : config_(config),
        num_splits_(std::max(1, num_splits)),
        kind_(kind),
        tables_(std::make_shared<const ChannelTables>(config.seed)) {
    SABOT_CHECK(config_.rate > 0);
  }
  std::string name() const override {
    return kind_ == EventKind::kPerson    ? "nexmark_people"
           : kind_ == EventKind::kAuction ? "nexmark_auctions"
                                          : "nexmark_bids";
  }
  SchemaPtr schema() const override {
    return kind_ == EventKind::kPerson    ? person_schema()
           : kind_ == EventKind::kAuction ? auction_schema()
                                          : bid_schema();
  }
  int num_splits() const override { return num_splits_; }
  Result<std::unique_ptr<runtime::SourceReader>> open_reader(
      std::span<const int> splits, const runtime::OperatorContext&) const override {
    std::vector<int> mine;
    for (int s : splits) {
      if (s < 0 || s >= num_splits_) {
        std::string msg = name();
        msg += ": split ";
        msg += std::to_string(s);
        msg += " out of range [0, ";
        msg += std::to_string(num_splits_);
        msg += ")";
        return Status::invalid_argument(msg);
      }
      mine.push_back(s);
    }
    return std::unique_ptr<runtime::SourceReader>(
        new NexmarkReader(config_, tables_, kind_, num_splits_, mine));
  }
  // Events are a function of their index, so a split restarts at any event.
  bool checkpointable() const override { return true; }

 private:
  GeneratorConfig config_;
  int num_splits_;
  EventKind kind_;
  std::shared_ptr<const ChannelTables> tables_;
};

}  // namespace

std::shared_ptr<const runtime::Source> bids_source(const GeneratorConfig& config, int num_splits) {
  return std::make_shared<NexmarkSource>(config, num_splits, EventKind::kBid);
}
std::shared_ptr<const runtime::Source> people_source(const GeneratorConfig& config,
                                                     int num_splits) {
  return std::make_shared<NexmarkSource>(config, num_splits, EventKind::kPerson);
}
std::shared_ptr<const runtime::Source> auctions_source(const GeneratorConfig& config,
                                                       int num_splits) {
  return std::make_shared<NexmarkSource>(config, num_splits, EventKind::kAuction);
}

}  // namespace sabot::nexmark
