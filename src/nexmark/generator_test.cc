#include "sabot/nexmark/generator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <random>
#include <set>

namespace sabot::nexmark {
namespace {

using columnar::RecordBatch;

// Event numbers of the k-th person / auction / bid, written from the rotation independently.
int64_t person_event(int64_t k) { return 50 * k; }
int64_t auction_event(int64_t j) { return 50 * (j / 3) + 1 + j % 3; }
int64_t bid_event(int64_t j) { return 50 * (j / 46) + 4 + j % 46; }

EventBatches gen(const GeneratorConfig& c, int64_t first, int64_t last) {
  Generator g(c);
  auto r = g.generate(first, last);
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  return std::move(r).value();
}

RecordBatch concat_all(const std::vector<RecordBatch>& parts) {
  auto r = columnar::concat(parts);
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  return std::move(r).value();
}

TEST(NexmarkGenerator, RotationIsOnePersonThreeAuctionsFortySixBids) {
  for (int64_t n = 0; n < 200; ++n) {
    int64_t o = n % 50;
    EventKind want = o == 0 ? EventKind::kPerson : o <= 3 ? EventKind::kAuction : EventKind::kBid;
    EXPECT_EQ(event_kind(n), want) << n;
  }
  GeneratorConfig c;
  EventBatches b = gen(c, 0, 5000);
  EXPECT_EQ(b.persons.num_rows(), 100);
  EXPECT_EQ(b.auctions.num_rows(), 300);
  EXPECT_EQ(b.bids.num_rows(), 4600);
  // A range not aligned to the rotation: [7, 103) holds events 50, 51-53, and the bids.
  EventBatches p = gen(c, 7, 103);
  EXPECT_EQ(p.persons.num_rows(), 2);   // 50, 100
  EXPECT_EQ(p.auctions.num_rows(), 5);  // 51, 52, 53, 101, 102
  EXPECT_EQ(p.bids.num_rows(), 103 - 7 - 7);
}

TEST(NexmarkGenerator, IdsAreNumberedFrom1000InCreationOrder) {
  GeneratorConfig c;
  EventBatches b = gen(c, 0, 10'000);
  const int64_t* pid = b.persons.column(0).values<int64_t>();
  for (int64_t k = 0; k < b.persons.num_rows(); ++k) EXPECT_EQ(pid[k], 1000 + k);
  const int64_t* aid = b.auctions.column(0).values<int64_t>();
  for (int64_t j = 0; j < b.auctions.num_rows(); ++j) EXPECT_EQ(aid[j], 1000 + j);
  // Bids and sellers refer to existing ids or the lead of 10 not yet created.
  const int64_t* ba = b.bids.column(0).values<int64_t>();
  const int64_t* bb = b.bids.column(1).values<int64_t>();
  int64_t hot = 0;
  for (int64_t j = 0; j < b.bids.num_rows(); ++j) {
    int64_t n = bid_event(j);
    int64_t last_auction = 1000 + (n / 50) * 3 + 2;
    int64_t last_person = 1000 + n / 50;
    EXPECT_GE(ba[j], 1000);
    EXPECT_LE(ba[j], last_auction + 10) << j;
    EXPECT_GE(ba[j], std::max<int64_t>(last_auction - 100, 1000) - 100) << j;
    EXPECT_LE(bb[j], last_person + 10) << j;
    if (ba[j] == 1000 + ((last_auction - 1000) / 100) * 100) ++hot;
  }
  // The hot auction takes about half of the bids.
  double frac = static_cast<double>(hot) / static_cast<double>(b.bids.num_rows());
  EXPECT_GT(frac, 0.45);
  EXPECT_LT(frac, 0.6);
  EXPECT_EQ(last_base0_person_id(0), 0);
  EXPECT_EQ(last_base0_person_id(149), 2);
  EXPECT_EQ(last_base0_auction_id(1), 0);
  EXPECT_EQ(last_base0_auction_id(3), 2);
  EXPECT_EQ(last_base0_auction_id(50), 2);
  EXPECT_EQ(last_base0_auction_id(52), 4);
}

TEST(NexmarkGenerator, EventTimeFollowsRate) {
  for (int64_t rate : {int64_t{10'000'000}, int64_t{1000}, int64_t{7}, int64_t{333'333}}) {
    GeneratorConfig c;
    c.rate = rate;
    c.base_time_ms = 1'600'000'000'000;
    EventBatches b = gen(c, 0, 3000);
    auto expect_ms = [&](int64_t n) {
      long double us = static_cast<long double>(n) * 1e6L / static_cast<long double>(rate);
      return c.base_time_ms + static_cast<int64_t>(us) / 1000;
    };
    for (int64_t k = 0; k < b.persons.num_rows(); ++k) {
      EXPECT_EQ(b.persons.column(6).value<int64_t>(k), expect_ms(person_event(k))) << rate;
    }
    for (int64_t j = 0; j < b.auctions.num_rows(); ++j) {
      EXPECT_EQ(b.auctions.column(5).value<int64_t>(j), expect_ms(auction_event(j))) << rate;
      EXPECT_GT(b.auctions.column(6).value<int64_t>(j), b.auctions.column(5).value<int64_t>(j));
    }
    for (int64_t j = 0; j < b.bids.num_rows(); ++j) {
      EXPECT_EQ(b.bids.column(5).value<int64_t>(j), expect_ms(bid_event(j))) << rate;
    }
    EXPECT_EQ(event_time_ms(c, 2999), expect_ms(2999));
  }
  // 100 M events span 10 s at the default rate.
  GeneratorConfig d;
  EXPECT_EQ(event_time_ms(d, 100'000'000), 10'000);
  // Beyond the 64-bit fast path (n * 1e6 overflows int64): 1e13 events at 1e7/s are 1e6 s.
  EXPECT_EQ(event_time_ms(d, 10'000'000'000'000), 1'000'000'000);
  EXPECT_EQ(event_time_ms(d, 10'000'000'000'007), 1'000'000'000);
}

TEST(NexmarkGenerator, CategoriesPricesAndPersonFieldsInRange) {
  GeneratorConfig c;
  c.seed = 42;
  EventBatches b = gen(c, 0, 50'000);
  std::set<int64_t> cats;
  for (int64_t j = 0; j < b.auctions.num_rows(); ++j) {
    int64_t cat = b.auctions.column(8).value<int64_t>(j);
    EXPECT_GE(cat, 10);
    EXPECT_LE(cat, 14);
    cats.insert(cat);
    int64_t initial = b.auctions.column(3).value<int64_t>(j);
    int64_t reserve = b.auctions.column(4).value<int64_t>(j);
    EXPECT_GE(initial, 100);
    EXPECT_LE(initial, 100'000'000);
    EXPECT_GE(reserve, initial + 100);
  }
  EXPECT_EQ(cats.size(), 5u);
  int64_t lo = INT64_MAX, hi = 0;
  for (int64_t j = 0; j < b.bids.num_rows(); ++j) {
    int64_t p = b.bids.column(2).value<int64_t>(j);
    EXPECT_GE(p, 100);
    EXPECT_LE(p, 100'000'000);
    lo = std::min(lo, p);
    hi = std::max(hi, p);
    std::string_view ch = b.bids.column(3).string_view(j);
    std::string_view url = b.bids.column(4).string_view(j);
    EXPECT_TRUE(ch == "Google" || ch == "Facebook" || ch == "Baidu" || ch == "Apple" ||
                ch.starts_with("channel-"))
        << ch;
    EXPECT_TRUE(url.starts_with("https://www.nexmark.com/")) << url;
  }
  // Log-uniform over [100, 1e8): both ends of the range are reached.
  EXPECT_LT(lo, 200);
  EXPECT_GT(hi, 50'000'000);
  const std::set<std::string_view> states = {"AZ", "CA", "ID", "OR", "WA", "WY"};
  for (int64_t k = 0; k < b.persons.num_rows(); ++k) {
    EXPECT_TRUE(states.count(b.persons.column(5).string_view(k))) << k;
    std::string_view card = b.persons.column(3).string_view(k);
    ASSERT_EQ(card.size(), 19u);
    for (size_t i = 0; i < card.size(); ++i) {
      if (i % 5 == 4) {
        EXPECT_EQ(card[i], ' ');
      } else {
        EXPECT_TRUE(card[i] >= '0' && card[i] <= '9');
      }
    }
    EXPECT_TRUE(b.persons.column(2).string_view(k).ends_with(".com"));
  }
}

TEST(NexmarkGenerator, SameSeedSameEventsDifferentSeedDifferent) {
  GeneratorConfig c;
  c.seed = 7;
  EventBatches a = gen(c, 0, 20'000);
  EventBatches b = gen(c, 0, 20'000);
  EXPECT_TRUE(a.persons.equals(b.persons));
  EXPECT_TRUE(a.auctions.equals(b.auctions));
  EXPECT_TRUE(a.bids.equals(b.bids));
  c.seed = 8;
  EventBatches d = gen(c, 0, 20'000);
  EXPECT_FALSE(a.persons.equals(d.persons));
  EXPECT_FALSE(a.auctions.equals(d.auctions));
  EXPECT_FALSE(a.bids.equals(d.bids));
  // Ids and times do not depend on the seed, the random fields do.
  EXPECT_TRUE(a.persons.column(0).equals(d.persons.column(0)));
  EXPECT_FALSE(a.bids.column(2).equals(d.bids.column(2)));
}

TEST(NexmarkGenerator, SplitsYieldTheSameEventsAsOnePiece) {
  std::mt19937_64 rng(12345);
  for (int trial = 0; trial < 20; ++trial) {
    GeneratorConfig c;
    c.seed = rng();
    c.rate = 1 + static_cast<int64_t>(rng() % 10'000'000);
    int64_t first = static_cast<int64_t>(rng() % 1000);
    int64_t last = first + static_cast<int64_t>(rng() % 8000);
    EventBatches whole = gen(c, first, last);
    std::vector<int64_t> cuts = {first, last};
    for (int i = 0; i < 2; ++i)
      cuts.push_back(first + static_cast<int64_t>(rng() % (last - first + 1)));
    std::sort(cuts.begin(), cuts.end());
    Generator g(c);  // one generator reused across slices, also in reverse order
    std::vector<EventBatches> parts(3);
    for (int i = 2; i >= 0; --i) {
      auto r = g.generate(cuts[i], cuts[i + 1]);
      ASSERT_TRUE(r.is_ok());
      parts[i] = std::move(r).value();
    }
    std::vector<RecordBatch> p, a, b;
    for (auto& e : parts) {
      p.push_back(e.persons);
      a.push_back(e.auctions);
      b.push_back(e.bids);
    }
    EXPECT_TRUE(concat_all(p).equals(whole.persons)) << trial;
    EXPECT_TRUE(concat_all(a).equals(whole.auctions)) << trial;
    EXPECT_TRUE(concat_all(b).equals(whole.bids)) << trial;
  }
}

TEST(NexmarkGenerator, EmptyAndBadRanges) {
  GeneratorConfig c;
  Generator g(c);
  auto e = g.generate(10, 10);
  ASSERT_TRUE(e.is_ok());
  EXPECT_EQ(e->persons.num_rows(), 0);
  EXPECT_EQ(e->bids.num_rows(), 0);
  EXPECT_TRUE(*e->bids.schema_ptr() == *bid_schema());
  EXPECT_FALSE(g.generate(10, 5).is_ok());
  EXPECT_FALSE(g.generate(-1, 5).is_ok());
  // Only the requested kinds are built.
  auto only_bids = g.generate(0, 100, kBids);
  ASSERT_TRUE(only_bids.is_ok());
  EXPECT_EQ(only_bids->persons.num_rows(), 0);
  EXPECT_EQ(only_bids->bids.num_rows(), 92);
  EXPECT_TRUE(only_bids->bids.equals(gen(c, 0, 100).bids));
}

TEST(NexmarkGenerator, AverageSizesNearTargets) {
  GeneratorConfig c;
  c.seed = 3;
  EventBatches b = gen(c, 0, 200'000);
  auto len = [](const RecordBatch& r, int col, int64_t i) {
    return static_cast<double>(r.column(col).string_view(i).size());
  };
  double person = 0;
  for (int64_t k = 0; k < b.persons.num_rows(); ++k) {
    person += 8 + len(b.persons, 1, k) + len(b.persons, 2, k) + len(b.persons, 3, k) +
              len(b.persons, 4, k) + len(b.persons, 5, k) + len(b.persons, 7, k);
  }
  double auction = 0;
  for (int64_t j = 0; j < b.auctions.num_rows(); ++j) {
    auction += 8 + len(b.auctions, 1, j) + len(b.auctions, 2, j) + 40 + len(b.auctions, 9, j);
  }
  double bid = 0, extra = 0;
  for (int64_t j = 0; j < b.bids.num_rows(); ++j) {
    bid += 32 + len(b.bids, 6, j);
    extra += len(b.bids, 6, j);
    for (char ch : b.bids.column(6).string_view(j)) ASSERT_TRUE(ch >= 'a' && ch <= 'z');
  }
  EXPECT_NEAR(person / static_cast<double>(b.persons.num_rows()), 200, 2);
  EXPECT_NEAR(auction / static_cast<double>(b.auctions.num_rows()), 500, 3);
  EXPECT_NEAR(bid / static_cast<double>(b.bids.num_rows()), 100, 1);
  EXPECT_NEAR(extra / static_cast<double>(b.bids.num_rows()), 68, 1);
}

TEST(NexmarkGenerator, PricesAreLogUniform) {
  GeneratorConfig c;
  c.seed = 21;
  EventBatches b = gen(c, 0, 200'000);
  std::vector<int64_t> prices;
  for (int64_t j = 0; j < b.bids.num_rows(); ++j)
    prices.push_back(b.bids.column(2).value<int64_t>(j));
  for (int64_t j = 0; j < b.auctions.num_rows(); ++j) {
    prices.push_back(b.auctions.column(3).value<int64_t>(j));
  }
  std::sort(prices.begin(), prices.end());
  // The q-quantile of round(100 * 10^(6u)) is 100 * 10^(6q).
  for (double q : {0.05, 0.25, 0.5, 0.75, 0.95}) {
    auto k = static_cast<size_t>(q * static_cast<double>(prices.size()));
    double want = 100.0 * std::pow(10.0, 6.0 * q);
    EXPECT_NEAR(std::log10(static_cast<double>(prices[k])), std::log10(want), 0.03) << q;
  }
  EXPECT_GE(prices.front(), 100);
  EXPECT_LE(prices.back(), 100'000'000);
}

// Far into the stream (where n * 1000 no longer fits 64 bits, too) times and ids keep to the spec.
TEST(NexmarkGenerator, LargeEventNumbersKeepTimesAndIds) {
  for (int64_t first : {int64_t{10'000'000'000'003}, int64_t{20'000'000'000'000'011}}) {
    GeneratorConfig c;
    c.seed = 4;
    c.base_time_ms = 1'000;
    EventBatches b = gen(c, first, first + 500);
    ASSERT_EQ(b.persons.num_rows(), 10);
    ASSERT_EQ(b.bids.num_rows(), 460);
    int64_t j = 0;
    for (int64_t n = first; n < first + 500; ++n) {
      if (event_kind(n) != EventKind::kBid) continue;
      EXPECT_EQ(b.bids.column(5).value<int64_t>(j), event_time_ms(c, n)) << n;
      EXPECT_LE(b.bids.column(0).value<int64_t>(j), 1000 + last_base0_auction_id(n) + 10);
      EXPECT_GE(b.bids.column(0).value<int64_t>(j), 1000 + last_base0_auction_id(n) - 100);
      ++j;
    }
    int64_t n = (first / 50 + 1) * 50;
    EXPECT_EQ(b.persons.column(0).value<int64_t>(0), 1000 + n / 50);
    EXPECT_EQ(b.persons.column(6).value<int64_t>(0), event_time_ms(c, n));
  }
}

bool lowercase(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char ch) { return ch >= 'a' && ch <= 'z'; });
}

// https://www.nexmark.com/<5>/<5>/<5>/item.htm?query=1, optionally &channel_id=<digits>.
bool url_well_formed(std::string_view url, bool* has_id) {
  constexpr std::string_view kHead = "https://www.nexmark.com/", kItem = "item.htm?query=1",
                             kId = "&channel_id=";
  if (!url.starts_with(kHead)) return false;
  url.remove_prefix(kHead.size());
  for (int i = 0; i < 3; ++i) {
    if (url.size() < 6 || !lowercase(url.substr(0, 5)) || url[5] != '/') return false;
    url.remove_prefix(6);
  }
  if (!url.starts_with(kItem)) return false;
  url.remove_prefix(kItem.size());
  *has_id = !url.empty();
  if (url.empty()) return true;
  if (!url.starts_with(kId)) return false;
  url.remove_prefix(kId.size());
  return !url.empty() && url.size() <= 10 &&
         std::all_of(url.begin(), url.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
}

TEST(NexmarkGenerator, ChannelsHaveOneFixedUrlEach) {
  GeneratorConfig c;
  c.seed = 5;
  EventBatches b = gen(c, 0, 100'000);
  std::map<std::string, std::string> url_of;
  int64_t hot = 0, cold = 0, cold_with_id = 0;
  for (int64_t j = 0; j < b.bids.num_rows(); ++j) {
    std::string ch(b.bids.column(3).string_view(j));
    std::string url(b.bids.column(4).string_view(j));
    bool has_id = false;
    ASSERT_TRUE(url_well_formed(url, &has_id)) << url;
    auto [it, fresh] = url_of.emplace(ch, url);
    EXPECT_EQ(it->second, url) << ch;  // cached per channel
    if (ch.starts_with("channel-")) {
      int64_t i = std::stoll(ch.substr(8));
      EXPECT_EQ(ch, "channel-" + std::to_string(i));
      EXPECT_GE(i, 0);
      EXPECT_LT(i, 10'000);
      ++cold;
      if (fresh) cold_with_id += has_id;
    } else {
      EXPECT_TRUE(ch == "Google" || ch == "Facebook" || ch == "Baidu" || ch == "Apple") << ch;
      EXPECT_FALSE(has_id) << url;
      ++hot;
    }
  }
  // Half of the bids go to the 4 hot channels; 9 in 10 cold channels carry a channel_id.
  double hot_frac = static_cast<double>(hot) / static_cast<double>(hot + cold);
  EXPECT_NEAR(hot_frac, 0.5, 0.02);
  int64_t cold_channels = static_cast<int64_t>(url_of.size()) - 4;
  EXPECT_GT(cold_channels, 9000);
  EXPECT_NEAR(static_cast<double>(cold_with_id) / static_cast<double>(cold_channels), 0.9, 0.02);
  // Another generator of the same seed has the same tables; another seed other urls.
  EXPECT_TRUE(b.bids.column(4).equals(gen(c, 0, 100'000).bids.column(4)));
  c.seed = 6;
  EventBatches d = gen(c, 0, 2'000);
  std::map<std::string, std::string> other;
  for (int64_t j = 0; j < d.bids.num_rows(); ++j) {
    other.emplace(std::string(d.bids.column(3).string_view(j)),
                  std::string(d.bids.column(4).string_view(j)));
  }
  EXPECT_NE(other.at("Google"), url_of.at("Google"));
}

// The random text is lowercase letters, all 26 about equally often, and differs between events.
TEST(NexmarkGenerator, ExtraIsUniformLowercaseText) {
  GeneratorConfig c;
  c.seed = 11;
  EventBatches b = gen(c, 0, 100'000);
  std::array<int64_t, 26> count{};
  int64_t total = 0;
  std::set<std::string_view> distinct;
  for (const auto& [batch, col] :
       {std::pair{&b.bids, 6}, std::pair{&b.auctions, 9}, std::pair{&b.persons, 7}}) {
    for (int64_t j = 0; j < batch->num_rows(); ++j) {
      std::string_view e = batch->column(col).string_view(j);
      ASSERT_TRUE(lowercase(e)) << e;
      for (char ch : e) ++count[static_cast<size_t>(ch - 'a')];
      total += static_cast<int64_t>(e.size());
      distinct.insert(e);
    }
  }
  // A random byte v picks 'a' + (v * 26 >> 8): each letter has 9 or 10 of the 256 values.
  for (int64_t n : count) {
    double frac = static_cast<double>(n) / static_cast<double>(total);
    EXPECT_GT(frac, 9.0 / 256 - 0.001);
    EXPECT_LT(frac, 10.0 / 256 + 0.001);
  }
  EXPECT_EQ(distinct.size(),
            static_cast<size_t>(b.bids.num_rows() + b.auctions.num_rows() + b.persons.num_rows()));
  // Item names and descriptions: letters with an occasional space (about 1 in 13).
  int64_t spaces = 0, chars = 0;
  for (int64_t j = 0; j < b.auctions.num_rows(); ++j) {
    for (int col : {1, 2}) {
      std::string_view t = b.auctions.column(col).string_view(j);
      EXPECT_GE(t.size(), 3u);
      EXPECT_LT(t.size(), col == 1 ? 20u : 100u);
      for (char ch : t) {
        ASSERT_TRUE(ch == ' ' || (ch >= 'a' && ch <= 'z')) << t;
        spaces += ch == ' ';
      }
      chars += static_cast<int64_t>(t.size());
    }
  }
  EXPECT_NEAR(static_cast<double>(spaces) / static_cast<double>(chars), 1.0 / 13, 0.01);
}

// Reads every split of a source through one reader per subtask, small polls.
RecordBatch read_all(const runtime::Source& src, int parallelism, int64_t max_rows) {
  std::vector<RecordBatch> out;
  for (int sub = 0; sub < parallelism; ++sub) {
    std::vector<int> splits;
    for (int s = sub; s < src.num_splits(); s += parallelism) splits.push_back(s);
    runtime::OperatorContext ctx;
    auto reader = src.open_reader(splits, ctx);
    EXPECT_TRUE(reader.is_ok());
    while (true) {
      auto p = (*reader)->poll(max_rows);
      EXPECT_TRUE(p.is_ok());
      if (p->kind == runtime::SourcePoll::Kind::kEnd) break;
      EXPECT_EQ(p->kind, runtime::SourcePoll::Kind::kBatch);
      EXPECT_GT(p->batch.num_rows(), 0);
      EXPECT_LE(p->batch.num_rows(), max_rows);
      EXPECT_GE(p->split, 0);
      out.push_back(p->batch);
    }
  }
  return concat_all(out);
}

// Subtasks polled in turn stay close in event time: no subtask reads far ahead of another, so a
// downstream window never holds a faster subtask's events for long while it waits for the
// watermark of a slower one. At 100 events/s a chunk of 4096 events spans 41 s; with contiguous
// ranges the two subtasks below were 50,000 s apart.
TEST(NexmarkSources, SubtasksAdvanceThroughEventTimeTogether) {
  GeneratorConfig c;
  c.events = 10'000'000;
  c.rate = 100;
  auto src = bids_source(c, 2);
  runtime::OperatorContext ctx;
  std::vector<std::unique_ptr<runtime::SourceReader>> readers;
  for (int s = 0; s < 2; ++s) {
    std::vector<int> splits = {s};
    auto r = src->open_reader(splits, ctx);
    ASSERT_TRUE(r.is_ok());
    readers.push_back(std::move(*r));
  }
  std::array<int64_t, 2> last = {INT64_MIN, INT64_MIN};
  const int64_t chunk_ms = 4096 * 1000 / c.rate;
  for (int round = 0; round < 200; ++round) {
    for (int s = 0; s < 2; ++s) {
      auto p = readers[static_cast<size_t>(s)]->poll(1000);
      ASSERT_TRUE(p.is_ok());
      ASSERT_EQ(p->kind, runtime::SourcePoll::Kind::kBatch);
      const auto& t = p->batch.column(p->batch.schema().field_index("date_time"));
      int64_t first = t.value<int64_t>(0);
      EXPECT_GE(first, last[static_cast<size_t>(s)]) << "subtask " << s << " went back in time";
      last[static_cast<size_t>(s)] = t.value<int64_t>(t.length() - 1);
    }
    EXPECT_LE(std::abs(last[0] - last[1]), 2 * chunk_ms) << "round " << round;
  }
}

TEST(NexmarkSources, SplitsCoverAllEventsOnce) {
  GeneratorConfig c;
  c.events = 12'345;
  c.seed = 99;
  EventBatches whole = gen(c, 0, c.events);
  // With splits read in order by one subtask, the concatenation equals one piece.
  for (int splits : {1, 3, 7}) {
    for (int64_t max_rows : {int64_t{1}, int64_t{17}, int64_t{1000}}) {
      EXPECT_TRUE(read_all(*bids_source(c, splits), 1, max_rows).equals(whole.bids));
      EXPECT_TRUE(read_all(*people_source(c, splits), 1, max_rows).equals(whole.persons));
      EXPECT_TRUE(read_all(*auctions_source(c, splits), 1, max_rows).equals(whole.auctions));
    }
  }
  // Several subtasks: same multiset of rows (ids of people, all bids count).
  RecordBatch p = read_all(*people_source(c, 4), 2, 50);
  EXPECT_EQ(p.num_rows(), whole.persons.num_rows());
  RecordBatch b = read_all(*bids_source(c, 5), 3, 64);
  EXPECT_EQ(b.num_rows(), whole.bids.num_rows());
  EXPECT_EQ(bids_source(c, 5)->num_splits(), 5);
  EXPECT_TRUE(*bids_source(c, 1)->schema() == *bid_schema());
}

}  // namespace
}  // namespace sabot::nexmark

namespace sabot::nexmark {
namespace {

// The person ids a reader returns over `polls` polls (all of them when polls < 0).
std::vector<int64_t> read_ids(runtime::SourceReader& reader, int polls, int64_t max_rows) {
  std::vector<int64_t> ids;
  for (int i = 0; polls < 0 || i < polls; ++i) {
    auto p = reader.poll(max_rows);
    EXPECT_TRUE(p.is_ok());
    if (p->kind == runtime::SourcePoll::Kind::kEnd) break;
    const auto& id = p->batch.column(0);
    for (int64_t r = 0; r < id.length(); ++r) ids.push_back(id.value<int64_t>(r));
  }
  return ids;
}

std::vector<std::unique_ptr<runtime::SourceReader>> open_readers(const runtime::Source& src,
                                                                 int parallelism) {
  std::vector<std::unique_ptr<runtime::SourceReader>> readers;
  runtime::OperatorContext ctx;
  for (int sub = 0; sub < parallelism; ++sub) {
    std::vector<int> splits;
    for (int s = sub; s < src.num_splits(); s += parallelism) splits.push_back(s);
    auto r = src.open_reader(splits, ctx);
    EXPECT_TRUE(r.is_ok());
    readers.push_back(std::move(*r));
  }
  return readers;
}

// A checkpoint stores each split's position; readers of another parallelism continue from them,
// and every event is read exactly once across the two runs.
TEST(NexmarkSources, PositionsRestoreIntoAnyParallelismWithEveryEventOnce) {
  GeneratorConfig c;
  c.events = 150'000;
  c.seed = 5;
  auto src = people_source(c, 6);
  ASSERT_TRUE(src->checkpointable());
  std::vector<int64_t> all;
  for (auto& r : open_readers(*src, 1)) all = read_ids(*r, -1, 1000);
  std::sort(all.begin(), all.end());
  ASSERT_GT(all.size(), 2000u);
  for (auto [p, q] : {std::pair{2, 2}, {1, 3}, {3, 2}}) {
    for (int polls : {0, 1, 4}) {
      std::vector<int64_t> ids;
      std::vector<runtime::SplitPosition> positions;
      for (auto& r : open_readers(*src, p)) {
        auto part = read_ids(*r, polls, 37);
        ids.insert(ids.end(), part.begin(), part.end());
        auto pos = r->snapshot_positions();
        ASSERT_TRUE(pos.is_ok()) << pos.status().message();
        positions.insert(positions.end(), pos->begin(), pos->end());
      }
      ASSERT_EQ(positions.size(), 6u);
      auto resumed = open_readers(*src, q);
      for (int sub = 0; sub < q; ++sub) {
        std::vector<runtime::SplitPosition> mine;
        for (const auto& sp : positions) {
          if (sp.split % q == sub) mine.push_back(sp);
        }
        auto& r = resumed[static_cast<size_t>(sub)];
        ASSERT_TRUE(r->restore_positions(mine).is_ok());
        auto part = read_ids(*r, -1, 53);
        ids.insert(ids.end(), part.begin(), part.end());
      }
      std::sort(ids.begin(), ids.end());
      EXPECT_EQ(ids, all) << p << " -> " << q << " after " << polls << " polls";
    }
  }
  // A position that does not decode, or of a split the reader does not read, is refused.
  auto r = open_readers(*src, 2);
  std::vector<runtime::SplitPosition> bad = {{0, "xyz"}};
  Status st = r[0]->restore_positions(bad);
  EXPECT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("nexmark source position of split 0"), std::string::npos)
      << st.message();
  std::vector<runtime::SplitPosition> other = {{1, runtime::encode_position(0)}};
  EXPECT_FALSE(r[0]->restore_positions(other).is_ok());
}

}  // namespace
}  // namespace sabot::nexmark
