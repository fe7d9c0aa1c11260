#include "sabot/enrichment/generator.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "sabot/codec/json.h"

namespace sabot::enrichment {
namespace {

using columnar::RecordBatch;

Generator make(GeneratorOptions o) {
  auto g = Generator::make(o);
  EXPECT_TRUE(g.is_ok()) << g.status().to_string();
  return std::move(g).value();
}

GeneratorOptions small(uint64_t seed) {
  GeneratorOptions o;
  o.trades = 20'000;
  o.securities = 300;
  o.seed = seed;
  o.disorder_rate = 0.05;
  o.update_rate = 0.2;
  o.late_listing_rate = 0.1;
  return o;
}

RecordBatch concat_all(const std::vector<RecordBatch>& parts) {
  auto r = columnar::concat(parts);
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  return std::move(r).value();
}

// One stream over its whole arrival range, in pieces of `chunk` ms.
template <typename F>
RecordBatch whole(const Generator& g, int64_t chunk, F f) {
  std::vector<RecordBatch> parts;
  for (int64_t t = g.options().start_ms; t < g.arrival_end_ms(); t += chunk) {
    parts.push_back(f(t, std::min(t + chunk, g.arrival_end_ms())));
  }
  return concat_all(parts);
}

RecordBatch all_quotes(const Generator& g, int64_t chunk) {
  return whole(g, chunk, [&](int64_t a, int64_t b) { return g.quotes(a, b); });
}
RecordBatch all_trades(const Generator& g, int64_t chunk) {
  return whole(g, chunk, [&](int64_t a, int64_t b) { return g.trades(a, b); });
}

TEST(EnrichmentGenerator, RefusesBadOptions) {
  GeneratorOptions o;
  o.trades = -1;
  o.securities = 5;
  o.disorder_rate = 2;
  auto g = Generator::make(o);
  ASSERT_FALSE(g.is_ok());
  EXPECT_NE(g.status().message().find("trades"), std::string::npos);
  EXPECT_NE(g.status().message().find("securities"), std::string::npos);
  EXPECT_NE(g.status().message().find("disorder_rate"), std::string::npos);
}

TEST(EnrichmentGenerator, CountsAndAnySplitGiveTheSameRecords) {
  Generator g = make(small(7));
  RecordBatch q1 = all_quotes(g, 1'000);
  RecordBatch q2 = all_quotes(g, 333);
  RecordBatch t1 = all_trades(g, 1'000);
  RecordBatch t2 = all_trades(g, 7'919);
  EXPECT_EQ(q1.num_rows(), g.quotes());
  EXPECT_EQ(t1.num_rows(), g.options().trades);
  EXPECT_TRUE(q1.equals(q2));
  EXPECT_TRUE(t1.equals(t2));
  // Same seed, same records; another seed, others.
  EXPECT_TRUE(all_trades(make(small(7)), 5'000).equals(t1));
  EXPECT_FALSE(all_trades(make(small(8)), 5'000).equals(t1));
}

TEST(EnrichmentGenerator, QuotesAndTradesKeepTheirPromises) {
  Generator g = make(small(3));
  const int64_t bound = g.options().max_disorder_ms;
  RecordBatch q = all_quotes(g, 2'000);
  RecordBatch t = all_trades(g, 2'000);

  std::map<std::string, int64_t> last_quote;  // by time, per symbol
  std::map<std::string, int64_t> first_quote;
  std::map<std::string, int64_t> per_symbol;
  std::set<std::pair<std::string, int64_t>> quote_times;
  int64_t newest = g.options().start_ms;
  int64_t delayed = 0;
  for (int64_t i = 0; i < q.num_rows(); ++i) {
    const std::string s(q.column(0).string_view(i));
    const int64_t time = q.column(1).value<int64_t>(i);
    EXPECT_LT(q.column(2).value<double>(i), q.column(3).value<double>(i)) << i;
    EXPECT_GT(q.column(2).value<double>(i), 0) << i;
    EXPECT_TRUE(quote_times.insert({s, time}).second) << "two quotes of " << s << " at " << time;
    if (!first_quote.count(s) || time < first_quote[s]) first_quote[s] = time;
    ++per_symbol[s];
    EXPECT_LT(newest - time, bound) << "quote " << i << " arrives too late";
    if (time < newest) ++delayed;
    newest = std::max(newest, time);
  }
  EXPECT_GT(delayed, 0);  // the disorder is there
  // Skew: the hottest symbol has far more than its uniform share.
  int64_t hottest = 0;
  for (const auto& [s, n] : per_symbol) hottest = std::max(hottest, n);
  EXPECT_GT(hottest, 10 * q.num_rows() / g.options().securities);

  std::set<int64_t> ids;
  newest = g.options().start_ms;
  delayed = 0;
  int64_t before_first_quote = 0;
  for (int64_t i = 0; i < t.num_rows(); ++i) {
    const std::string s(t.column(1).string_view(i));
    const int64_t time = t.column(2).value<int64_t>(i);
    EXPECT_TRUE(ids.insert(t.column(0).value<int64_t>(i)).second);
    EXPECT_FALSE(quote_times.count({s, time})) << "trade " << i << " at a quote time";
    EXPECT_GT(t.column(3).value<double>(i), 0);
    EXPECT_GT(t.column(4).value<int64_t>(i), 0);
    const std::string_view side = t.column(5).string_view(i);
    EXPECT_TRUE(side == "buy" || side == "sell");
    EXPECT_LT(newest - time, bound);
    if (time < newest) ++delayed;
    newest = std::max(newest, time);
    if (!first_quote.count(s) || first_quote[s] > time) ++before_first_quote;
    EXPECT_GE(time, g.options().start_ms);
    EXPECT_LT(time, g.end_ms());
  }
  EXPECT_GT(delayed, 0);
  EXPECT_GT(before_first_quote, 0);
}

TEST(EnrichmentGenerator, SecuritiesHaveListingsLateListingsAndSectorChanges) {
  Generator g = make(small(11));
  RecordBatch listed = concat_all({g.listings(0, 100), g.listings(100, 300)});
  RecordBatch updates = g.security_updates(INT64_MIN, INT64_MAX);
  EXPECT_TRUE(concat_all({g.security_updates(INT64_MIN, g.options().start_ms + 50'000),
                          g.security_updates(g.options().start_ms + 50'000, INT64_MAX)})
                  .equals(updates));
  std::map<std::string, std::vector<std::pair<int64_t, std::string>>> rows;
  for (const RecordBatch* b : {&listed, &updates}) {
    for (int64_t i = 0; i < b->num_rows(); ++i) {
      rows[std::string(b->column(0).string_view(i))].push_back(
          {b->column(4).value<int64_t>(i), std::string(b->column(1).string_view(i))});
    }
  }
  EXPECT_EQ(static_cast<int64_t>(rows.size()), g.options().securities);
  int64_t late = 0, changes = 0;
  const std::set<std::string_view> sector_names(sectors().begin(), sectors().end());
  EXPECT_EQ(sector_names.size(), 11u);
  for (auto& [s, v] : rows) {
    std::sort(v.begin(), v.end());
    ASSERT_LE(v.size(), 2u) << s;
    if (v[0].first >= g.options().start_ms) ++late;
    if (v.size() == 2) {
      ++changes;
      EXPECT_LT(v[0].first, v[1].first) << s;
      EXPECT_NE(v[0].second, v[1].second) << s;
      EXPECT_LT(v[1].first, g.end_ms());
    }
    for (const auto& r : v) EXPECT_TRUE(sector_names.count(r.second)) << r.second;
  }
  EXPECT_GT(late, 10);
  EXPECT_GT(changes, 30);
  EXPECT_EQ(listed.num_rows() + updates.num_rows(), g.options().securities + changes);
}

TEST(EnrichmentGenerator, WritesTheThreeFiles) {
  const std::string dir =
      (std::filesystem::temp_directory_path() / ("enrichment_gen_" + std::to_string(getpid())))
          .string();
  GeneratorOptions o = small(5);
  o.trades = 2'000;
  ASSERT_TRUE(write_files(o, dir).is_ok());
  Generator g = make(o);
  auto read = [&](const std::string& name, const columnar::SchemaPtr& schema) {
    std::ifstream in(dir + "/" + name);
    std::stringstream text;
    text << in.rdbuf();
    auto decoder = codec::JsonDecoder::make(schema);
    EXPECT_TRUE(decoder.is_ok());
    auto decoded = decoder->decode_lines(text.str());
    EXPECT_TRUE(decoded.is_ok());
    EXPECT_TRUE(decoded->errors.empty());
    return decoded->batch;
  };
  EXPECT_TRUE(read("trades.jsonl", trade_schema()).equals(all_trades(g, 100'000)));
  EXPECT_TRUE(read("quotes.jsonl", quote_schema()).equals(all_quotes(g, 100'000)));
  EXPECT_EQ(read("securities.jsonl", security_schema()).num_rows(),
            g.listings(0, o.securities).num_rows() + g.num_security_updates());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace sabot::enrichment
