#include "sabot/nexmark/generator.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>

#include "sabot/base/check.h"

namespace sabot::nexmark {

using columnar::Array;
using columnar::RecordBatch;
using columnar::SchemaPtr;
using columnar::TimeUnit;

namespace {

constexpr int64_t kActivePeople = 1000;
constexpr int64_t kInFlightAuctions = 100;
constexpr int64_t kLeadIds = 10;
constexpr int64_t kHotAuctionRatio = 2;
constexpr int64_t kHotBiddersRatio = 4;
constexpr int64_t kHotSellersRatio = 4;
constexpr int64_t kHotChannelsRatio = 2;
constexpr int64_t kNumChannels = 10'000;
constexpr int64_t kPersonAvgSize = 200;
constexpr int64_t kAuctionAvgSize = 500;
constexpr int64_t kBidAvgSize = 100;
constexpr int kMinStringLength = 3;
constexpr size_t kScratchSize = 2048;

constexpr const char* kFirstNames[] = {"Peter", "Paul",  "Luke",  "John",   "Saul",  "Vicky",
                                       "Kate",  "Julie", "Sarah", "Deiter", "Walter"};
constexpr const char* kLastNames[] = {"Shultz", "Abrams", "Spencer", "White", "Bartels",
                                      "Walton", "Smith",  "Jones",   "Noris"};
constexpr const char* kCities[] = {"Phoenix", "Los Angeles", "San Francisco", "Boise", "Portland",
                                   "Bend",    "Redmond",     "Seattle",       "Kent",  "Cheyenne"};
constexpr const char* kStates[] = {"AZ", "CA", "ID", "OR", "WA", "WY"};
constexpr const char* kHotChannels[] = {"Google", "Facebook", "Baidu", "Apple"};

uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// Counter-based: the stream of event n is a function of (seed, n) only, which makes the generator
// splittable. SplitMix64 steps from there.
class Rng {
 public:
  Rng(uint64_t seed, uint64_t counter)
      : state_(mix64(seed + 0x9E3779B97F4A7C15ULL) ^ mix64(counter * 0xD1B54A32D192ED03ULL + 1)) {}
  uint64_t next() {
    state_ += 0x9E3779B97F4A7C15ULL;
    return mix64(state_);
  }
  // Uniform in [0, n), n > 0.
  int64_t below(int64_t n) {
    return static_cast<int64_t>(
        (static_cast<unsigned __int128>(next()) * static_cast<uint64_t>(n)) >> 64);
  }
  double unit() { return static_cast<double>(next() >> 11) * 0x1p-53; }

 private:
  uint64_t state_;
};

// Lowercase letters with an occasional `special`, length in [3, max_length).
size_t next_string(Rng& rng, int max_length, char special, char* out) {
  size_t len = static_cast<size_t>(kMinStringLength + rng.below(max_length - kMinStringLength));
  for (size_t i = 0; i < len; ++i) {
    uint64_t r = rng.next();
    out[i] = (r % 13 == 0) ? special : static_cast<char>('a' + (r >> 8) % 26);
  }
  return len;
}

// Exactly `len` lowercase letters, 13 per random draw.
void next_exact_string(Rng& rng, size_t len, char* out) {
  size_t i = 0;
  while (i < len) {
    uint64_t r = rng.next();
    for (int k = 0; k < 13 && i < len; ++k, ++i) {
      out[i] = static_cast<char>('a' + r % 26);
      r /= 26;
    }
  }
}

// Pads an event of `current` bytes to `desired` on average (uniform within +-20%).
size_t next_extra(Rng& rng, int64_t current, int64_t desired, char* out) {
  if (current > desired) return 0;
  desired -= current;
  int64_t delta = std::llround(static_cast<double>(desired) * 0.2);
  int64_t len = desired - delta + rng.below(2 * delta + 1);
  next_exact_string(rng, static_cast<size_t>(len), out);
  return static_cast<size_t>(len);
}

int64_t next_price(Rng& rng) { return std::llround(std::pow(10.0, rng.unit() * 6.0) * 100.0); }

int64_t next_base0_person_id(Rng& rng, int64_t n) {
  int64_t num_people = last_base0_person_id(n) + 1;
  int64_t active = std::min(num_people, kActivePeople);
  return num_people - active + rng.below(active + kLeadIds);
}

int64_t next_base0_auction_id(Rng& rng, int64_t n) {
  int64_t max_auction = last_base0_auction_id(n);
  int64_t min_auction = std::max<int64_t>(max_auction - kInFlightAuctions, 0);
  return min_auction + rng.below(max_auction - min_auction + 1 + kLeadIds);
}

std::string base_url(Rng& rng) {
  std::string url = "https://www.nexmark.com/";
  char part[5];
  for (int i = 0; i < 3; ++i) {
    next_exact_string(rng, 5, part);
    url.append(part, 5);
    url += '/';
  }
  url += "item.htm?query=1";
  return url;
}

uint32_t reverse_bits(uint32_t v) {
  uint32_t r = 0;
  for (int i = 0; i < 32; ++i) {
    r = (r << 1) | (v & 1);
    v >>= 1;
  }
  return r;
}

Array finish(columnar::ArrayBuilder& b) { return b.finish(); }

}  // namespace

struct ChannelTables {
  std::vector<std::string> channel_names;  // "channel-i"
  std::vector<std::string> channel_urls;
  std::vector<std::string> hot_urls;

  explicit ChannelTables(uint64_t seed) {
    // A counter range far from event numbers so that the tables never alias an event's stream.
    constexpr uint64_t kTableCounter = 0xC0FFEE0000000000ULL;
    Rng hot(seed, kTableCounter);
    for (size_t i = 0; i < std::size(kHotChannels); ++i) hot_urls.push_back(base_url(hot));
    channel_names.reserve(kNumChannels);
    channel_urls.reserve(kNumChannels);
    for (int64_t c = 0; c < kNumChannels; ++c) {
      Rng rng(seed, kTableCounter + 1 + static_cast<uint64_t>(c));
      channel_names.push_back("channel-" + std::to_string(c));
      std::string url = base_url(rng);
      if (rng.below(10) > 0) {
        int64_t id = std::abs(
            static_cast<int64_t>(static_cast<int32_t>(reverse_bits(static_cast<uint32_t>(c)))));
        url += "&channel_id=" + std::to_string(id);
      }
      channel_urls.push_back(std::move(url));
    }
  }
};

int64_t event_time_ms(const GeneratorConfig& config, int64_t n) {
  // 64-bit division when n * 1e6 fits (the common case; 128-bit division is a slow libcall).
  constexpr int64_t kLimit = INT64_MAX / 1'000'000;
  if (n >= 0 && n <= kLimit) return config.base_time_ms + n * 1'000'000 / config.rate / 1000;
  __int128 us = static_cast<__int128>(n) * 1'000'000 / config.rate;
  return config.base_time_ms + static_cast<int64_t>(us / 1000);
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

Generator::Generator(GeneratorConfig config)
    : Generator(config, std::make_shared<const ChannelTables>(config.seed)) {}

Generator::Generator(GeneratorConfig config, std::shared_ptr<const ChannelTables> tables)
    : config_(config),
      tables_(std::move(tables)),
      p_time_(columnar::timestamp(TimeUnit::kMilli)),
      a_time_(columnar::timestamp(TimeUnit::kMilli)),
      a_expires_(columnar::timestamp(TimeUnit::kMilli)),
      b_time_(columnar::timestamp(TimeUnit::kMilli)) {
  SABOT_CHECK(config_.rate > 0);
  scratch_.resize(kScratchSize);
}

void Generator::add_person(int64_t n) {
  Rng rng(config_.seed, static_cast<uint64_t>(n));
  char* buf = scratch_.data();
  p_id_.append(kFirstPersonId + last_base0_person_id(n));
  // name
  const char* first = kFirstNames[rng.below(std::size(kFirstNames))];
  const char* last = kLastNames[rng.below(std::size(kLastNames))];
  size_t len = 0;
  for (const char* p = first; *p; ++p) buf[len++] = *p;
  buf[len++] = ' ';
  for (const char* p = last; *p; ++p) buf[len++] = *p;
  p_name_.append(std::string_view(buf, len));
  int64_t size = 8 + static_cast<int64_t>(len);
  // email
  len = next_string(rng, 7, ' ', buf);
  buf[len++] = '@';
  len += next_string(rng, 5, ' ', buf + len);
  std::memcpy(buf + len, ".com", 4);
  len += 4;
  p_email_.append(std::string_view(buf, len));
  size += static_cast<int64_t>(len);
  // credit card: four 4-digit groups
  len = 0;
  for (int g = 0; g < 4; ++g) {
    if (g > 0) buf[len++] = ' ';
    int64_t v = rng.below(10000);
    for (int d = 3; d >= 0; --d) {
      buf[len + static_cast<size_t>(d)] = static_cast<char>('0' + v % 10);
      v /= 10;
    }
    len += 4;
  }
  p_card_.append(std::string_view(buf, len));
  size += static_cast<int64_t>(len);
  std::string_view city = kCities[rng.below(std::size(kCities))];
  std::string_view state = kStates[rng.below(std::size(kStates))];
  p_city_.append(city);
  p_state_.append(state);
  size += static_cast<int64_t>(city.size() + state.size());
  p_time_.append(event_time_ms(config_, n));
  len = next_extra(rng, size, kPersonAvgSize, buf);
  p_extra_.append(std::string_view(buf, len));
}

void Generator::add_auction(int64_t n) {
  Rng rng(config_.seed, static_cast<uint64_t>(n));
  char* buf = scratch_.data();
  int64_t last_person = last_base0_person_id(n);
  a_id_.append(kFirstAuctionId + last_base0_auction_id(n));
  size_t item_len = next_string(rng, 20, ' ', buf);
  a_item_.append(std::string_view(buf, item_len));
  size_t desc_len = next_string(rng, 100, ' ', buf);
  a_desc_.append(std::string_view(buf, desc_len));
  int64_t initial = next_price(rng);
  a_initial_.append(initial);
  a_reserve_.append(initial + next_price(rng));
  int64_t time = event_time_ms(config_, n);
  a_time_.append(time);
  // Expires after about the time in which kInFlightAuctions further auctions are created.
  int64_t events_for_auctions = kInFlightAuctions * kTotalProportion / kAuctionProportion;
  int64_t horizon = event_time_ms(config_, n + events_for_auctions) - time;
  a_expires_.append(time + 1 + rng.below(std::max<int64_t>(horizon * 2, 1)));
  int64_t seller =
      rng.below(kHotSellersRatio) > 0 ? (last_person / 100) * 100 : next_base0_person_id(rng, n);
  a_seller_.append(kFirstPersonId + seller);
  a_category_.append(kFirstCategoryId + rng.below(kNumCategories));
  int64_t size = 8 + static_cast<int64_t>(item_len + desc_len) + 5 * 8;
  size_t len = next_extra(rng, size, kAuctionAvgSize, buf);
  a_extra_.append(std::string_view(buf, len));
}

void Generator::add_bid(int64_t n) {
  Rng rng(config_.seed, static_cast<uint64_t>(n));
  int64_t auction = rng.below(kHotAuctionRatio) > 0 ? (last_base0_auction_id(n) / 100) * 100
                                                    : next_base0_auction_id(rng, n);
  int64_t bidder = rng.below(kHotBiddersRatio) > 0 ? (last_base0_person_id(n) / 100) * 100 + 1
                                                   : next_base0_person_id(rng, n);
  b_auction_.append(kFirstAuctionId + auction);
  b_bidder_.append(kFirstPersonId + bidder);
  b_price_.append(next_price(rng));
  if (rng.below(kHotChannelsRatio) > 0) {
    size_t i = static_cast<size_t>(rng.below(std::size(kHotChannels)));
    b_channel_.append(kHotChannels[i]);
    b_url_.append(tables_->hot_urls[i]);
  } else {
    size_t c = static_cast<size_t>(rng.below(kNumChannels));
    b_channel_.append(tables_->channel_names[c]);
    b_url_.append(tables_->channel_urls[c]);
  }
  b_time_.append(event_time_ms(config_, n));
  size_t len = next_extra(rng, 4 * 8, kBidAvgSize, scratch_.data());
  b_extra_.append(std::string_view(scratch_.data(), len));
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

}  // namespace

Result<EventBatches> Generator::generate(int64_t first, int64_t last, uint8_t kinds) {
  if (first < 0 || last < first) {
    return Status::invalid_argument("nexmark: bad event range [" + std::to_string(first) + ", " +
                                    std::to_string(last) + ")");
  }
  int64_t np = (kinds & kPersons)
                   ? kind_prefix(EventKind::kPerson, last) - kind_prefix(EventKind::kPerson, first)
                   : 0;
  int64_t na = (kinds & kAuctions) ? kind_prefix(EventKind::kAuction, last) -
                                         kind_prefix(EventKind::kAuction, first)
                                   : 0;
  int64_t nb = (kinds & kBids)
                   ? kind_prefix(EventKind::kBid, last) - kind_prefix(EventKind::kBid, first)
                   : 0;
  for (auto* b : {&p_id_, &p_time_}) b->reserve(np);
  for (auto* b : {&p_name_, &p_email_, &p_card_, &p_city_, &p_state_, &p_extra_}) b->reserve(np);
  p_extra_.reserve_bytes(np * kPersonAvgSize);
  for (auto* b :
       {&a_id_, &a_initial_, &a_reserve_, &a_time_, &a_expires_, &a_seller_, &a_category_}) {
    b->reserve(na);
  }
  for (auto* b : {&a_item_, &a_desc_, &a_extra_}) b->reserve(na);
  a_extra_.reserve_bytes(na * kAuctionAvgSize);
  a_desc_.reserve_bytes(na * 60);
  for (auto* b : {&b_auction_, &b_bidder_, &b_price_, &b_time_}) b->reserve(nb);
  for (auto* b : {&b_channel_, &b_url_, &b_extra_}) b->reserve(nb);
  b_extra_.reserve_bytes(nb * kBidAvgSize);
  b_url_.reserve_bytes(nb * 80);

  for (int64_t n = first; n < last; ++n) {
    switch (event_kind(n)) {
      case EventKind::kPerson:
        if (kinds & kPersons) add_person(n);
        break;
      case EventKind::kAuction:
        if (kinds & kAuctions) add_auction(n);
        break;
      case EventKind::kBid:
        if (kinds & kBids) add_bid(n);
        break;
    }
  }
  EventBatches out;
  out.persons = RecordBatch::make_unchecked(
      person_schema(),
      {finish(p_id_), finish(p_name_), finish(p_email_), finish(p_card_), finish(p_city_),
       finish(p_state_), finish(p_time_), finish(p_extra_)},
      np);
  out.auctions = RecordBatch::make_unchecked(
      auction_schema(),
      {finish(a_id_), finish(a_item_), finish(a_desc_), finish(a_initial_), finish(a_reserve_),
       finish(a_time_), finish(a_expires_), finish(a_seller_), finish(a_category_),
       finish(a_extra_)},
      na);
  out.bids = RecordBatch::make_unchecked(
      bid_schema(),
      {finish(b_auction_), finish(b_bidder_), finish(b_price_), finish(b_channel_), finish(b_url_),
       finish(b_time_), finish(b_extra_)},
      nb);
  return out;
}

// ---- sources ----

namespace {

class NexmarkReader final : public runtime::SourceReader {
 public:
  NexmarkReader(const GeneratorConfig& config, std::shared_ptr<const ChannelTables> tables,
                EventKind kind, int num_splits, std::vector<int> splits)
      : gen_(config, std::move(tables)),
        kind_(kind),
        num_splits_(num_splits),
        splits_(std::move(splits)) {
    if (!splits_.empty()) pos_ = split_begin(splits_[0]);
  }

  Result<runtime::SourcePoll> poll(int64_t max_rows) override {
    max_rows = std::max<int64_t>(max_rows, 1);
    while (next_split_ < splits_.size()) {
      int split = splits_[next_split_];
      int64_t end = split_begin(split + 1);
      if (pos_ < end) {
        int64_t stop = std::min(end, kind_event(kind_, kind_prefix(kind_, pos_) + max_rows));
        uint8_t mask = kind_ == EventKind::kPerson    ? kPersons
                       : kind_ == EventKind::kAuction ? kAuctions
                                                      : kBids;
        SABOT_ASSIGN_OR_RETURN(EventBatches b, gen_.generate(pos_, stop, mask));
        pos_ = stop;
        RecordBatch& batch = kind_ == EventKind::kPerson    ? b.persons
                             : kind_ == EventKind::kAuction ? b.auctions
                                                            : b.bids;
        if (batch.num_rows() == 0) continue;
        runtime::SourcePoll p = runtime::SourcePoll::of(std::move(batch));
        p.split = split;
        return p;
      }
      ++next_split_;
      if (next_split_ < splits_.size()) pos_ = split_begin(splits_[next_split_]);
    }
    return runtime::SourcePoll::end();
  }

  std::string position() const override {
    if (next_split_ >= splits_.size()) return "done";
    return "split " + std::to_string(splits_[next_split_]) + " event " + std::to_string(pos_);
  }

 private:
  int64_t split_begin(int s) const {
    return static_cast<int64_t>(static_cast<__int128>(gen_.config().events) * s / num_splits_);
  }

  Generator gen_;
  EventKind kind_;
  int num_splits_;
  std::vector<int> splits_;
  size_t next_split_ = 0;
  int64_t pos_ = 0;
};

class NexmarkSource final : public runtime::Source {
 public:
  NexmarkSource(GeneratorConfig config, int num_splits, EventKind kind)
      : config_(config),
        num_splits_(std::max(1, num_splits)),
        kind_(kind),
        tables_(std::make_shared<const ChannelTables>(config.seed)) {}
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
        return Status::invalid_argument(name() + ": split " + std::to_string(s) +
                                        " out of range [0, " + std::to_string(num_splits_) + ")");
      }
      mine.push_back(s);
    }
    return std::unique_ptr<runtime::SourceReader>(
        new NexmarkReader(config_, tables_, kind_, num_splits_, std::move(mine)));
  }

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
