// The enrichment job against a straightforward reference over the generated files: sort the
// quotes and securities rows per symbol, binary-search the as-of row of every trade, compute the
// derived fields in the job's order, group by (1-minute window, sector).
#include "enrichment_job.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <sstream>

#include "sabot/codec/json.h"

namespace sabot::enrichment {
namespace {

using columnar::RecordBatch;

std::string temp_dir(const std::string& name) {
  auto p = std::filesystem::temp_directory_path() /
           ("enrichment_job_" + name + "_" + std::to_string(getpid()));
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p.string();
}

RecordBatch read_jsonl(const std::string& path, const columnar::SchemaPtr& schema) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  std::stringstream text;
  text << in.rdbuf();
  auto decoder = codec::JsonDecoder::make(schema);
  EXPECT_TRUE(decoder.is_ok());
  auto decoded = decoder->decode_lines(text.str());
  EXPECT_TRUE(decoded.is_ok()) << decoded.status().to_string();
  EXPECT_TRUE(decoded->errors.empty()) << path << ": " << decoded->errors.front().message;
  return decoded->batch;
}

std::optional<double> opt_double(const columnar::Array& a, int64_t i) {
  if (a.is_null(i)) return std::nullopt;
  return a.value<double>(i);
}

struct Enriched {
  std::string symbol;
  int64_t time = 0;
  double price = 0;
  int64_t quantity = 0;
  std::string side;
  std::optional<double> bid, ask, mid, spread_bps;
  std::optional<std::string> sector;
  double notional = 0;
  std::optional<double> slippage_bps;
  bool operator==(const Enriched&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Enriched& e) {
  auto o = [&os](const char* k, const std::optional<double>& v) {
    os << " " << k << "=";
    if (v) {
      os << *v;
    } else {
      os << "null";
    }
  };
  os << e.symbol << " t=" << e.time << " price=" << e.price << " qty=" << e.quantity << " "
     << e.side;
  o("bid", e.bid);
  o("ask", e.ask);
  o("mid", e.mid);
  o("spread", e.spread_bps);
  os << " sector=" << (e.sector ? *e.sector : "null") << " notional=" << e.notional;
  o("slippage", e.slippage_bps);
  return os;
}

struct Window {
  int64_t trades = 0;
  int64_t volume = 0;
  double notional = 0;
  double vwap = 0;
};

struct Reference {
  std::map<int64_t, Enriched> enriched;  // by trade_id
  std::map<std::pair<int64_t, std::string>, Window> windows;
  int64_t with_quote = 0, with_sector = 0;
  int64_t before_first_quote = 0;     // trades with no quote at or before their time
  int64_t changes_inside_window = 0;  // trades priced under a sector that changed in their window
};

// The reference over the three files of `dir`.
Reference reference(const std::string& dir) {
  RecordBatch securities = read_jsonl(dir + "/securities.jsonl", security_schema());
  RecordBatch quotes = read_jsonl(dir + "/quotes.jsonl", quote_schema());
  RecordBatch trades = read_jsonl(dir + "/trades.jsonl", trade_schema());
  struct Quote {
    int64_t time;
    double bid, ask;
  };
  struct Sec {
    int64_t time;
    std::string sector;
  };
  std::map<std::string, std::vector<Quote>, std::less<>> q;
  std::map<std::string, std::vector<Sec>, std::less<>> s;
  for (int64_t i = 0; i < quotes.num_rows(); ++i) {
    q[std::string(quotes.column(0).string_view(i))].push_back({quotes.column(1).value<int64_t>(i),
                                                               quotes.column(2).value<double>(i),
                                                               quotes.column(3).value<double>(i)});
  }
  for (int64_t i = 0; i < securities.num_rows(); ++i) {
    s[std::string(securities.column(0).string_view(i))].push_back(
        {securities.column(4).value<int64_t>(i), std::string(securities.column(1).string_view(i))});
  }
  // Stable: among equal times the row later in the file wins (the join's tie rule).
  for (auto& [k, v] : q) {
    std::stable_sort(v.begin(), v.end(),
                     [](const Quote& a, const Quote& b) { return a.time < b.time; });
  }
  for (auto& [k, v] : s) {
    std::stable_sort(v.begin(), v.end(),
                     [](const Sec& a, const Sec& b) { return a.time < b.time; });
  }
  Reference ref;
  for (int64_t i = 0; i < trades.num_rows(); ++i) {
    Enriched e;
    const int64_t id = trades.column(0).value<int64_t>(i);
    e.symbol = std::string(trades.column(1).string_view(i));
    e.time = trades.column(2).value<int64_t>(i);
    e.price = trades.column(3).value<double>(i);
    e.quantity = trades.column(4).value<int64_t>(i);
    e.side = std::string(trades.column(5).string_view(i));
    if (auto it = q.find(e.symbol); it != q.end()) {
      auto pos = std::upper_bound(it->second.begin(), it->second.end(), e.time,
                                  [](int64_t t, const Quote& x) { return t < x.time; });
      if (pos != it->second.begin()) {
        e.bid = (pos - 1)->bid;
        e.ask = (pos - 1)->ask;
      }
    }
    if (e.bid) {
      const double mid = (*e.bid + *e.ask) / 2.0;
      e.mid = mid;
      e.spread_bps = (*e.ask - *e.bid) / mid * 1e4;
      e.slippage_bps = e.side == "buy" ? (e.price - mid) / mid * 1e4 : (mid - e.price) / mid * 1e4;
      ++ref.with_quote;
    } else {
      ++ref.before_first_quote;
    }
    const int64_t window_start = e.time - e.time % 60'000;
    if (auto it = s.find(e.symbol); it != s.end()) {
      auto pos = std::upper_bound(it->second.begin(), it->second.end(), e.time,
                                  [](int64_t t, const Sec& x) { return t < x.time; });
      if (pos != it->second.begin()) {
        e.sector = (pos - 1)->sector;
        ++ref.with_sector;
        if (pos - 1 != it->second.begin() && (pos - 1)->time >= window_start) {
          ++ref.changes_inside_window;
        }
      }
    }
    e.notional = e.price * static_cast<double>(e.quantity);
    Window& w = ref.windows[{window_start, e.sector.value_or("unknown")}];
    ++w.trades;
    w.volume += e.quantity;
    w.notional += e.notional;
    EXPECT_TRUE(ref.enriched.emplace(id, e).second) << "duplicate trade_id " << id;
  }
  for (auto& [k, w] : ref.windows) w.vwap = w.notional / static_cast<double>(w.volume);
  return ref;
}

GeneratorOptions small(uint64_t seed) {
  GeneratorOptions o;
  o.trades = 3'000;  // 30 k quotes, over 5 minutes of event time
  o.securities = 150;
  o.seed = seed;
  o.slot_ms = 200;
  o.disorder_rate = 0.05;
  o.update_rate = 0.3;
  o.late_listing_rate = 0.1;
  return o;
}

// Runs the demo over the files of `input_dir` (or the generator when empty) and compares its
// output files with the reference.
void run_and_compare(const GeneratorOptions& g, const std::string& input_dir, const Reference& ref,
                     int parallelism, int64_t batch_size) {
  SCOPED_TRACE("seed " + std::to_string(g.seed) + " parallelism " + std::to_string(parallelism) +
               " batch size " + std::to_string(batch_size) +
               (input_dir.empty() ? " (generator)" : " (files)"));
  const std::string out_dir = temp_dir("out");
  DemoOptions o;
  o.generator = g;
  o.input_dir = input_dir;
  o.parallelism = parallelism;
  o.batch_size = batch_size;
  o.output_dir = out_dir;
  o.quiet = true;
  std::ostringstream console;
  o.out = &console;
  auto summary = run_enrichment_demo(o);
  ASSERT_TRUE(summary.is_ok()) << summary.status().to_string();
  EXPECT_EQ(summary->trades_in, static_cast<int64_t>(ref.enriched.size()));
  EXPECT_EQ(summary->enriched, static_cast<int64_t>(ref.enriched.size()));
  EXPECT_EQ(summary->with_quote, ref.with_quote);
  EXPECT_EQ(summary->with_sector, ref.with_sector);
  EXPECT_EQ(summary->windows, static_cast<int64_t>(ref.windows.size()));

  RecordBatch enriched = read_jsonl(out_dir + "/enriched.jsonl", enriched_schema());
  ASSERT_EQ(enriched.num_rows(), static_cast<int64_t>(ref.enriched.size()));
  std::map<int64_t, Enriched> got;
  for (int64_t i = 0; i < enriched.num_rows(); ++i) {
    Enriched e;
    e.symbol = std::string(enriched.column(1).string_view(i));
    e.time = enriched.column(2).value<int64_t>(i);
    e.price = enriched.column(3).value<double>(i);
    e.quantity = enriched.column(4).value<int64_t>(i);
    e.side = std::string(enriched.column(5).string_view(i));
    e.bid = opt_double(enriched.column(6), i);
    e.ask = opt_double(enriched.column(7), i);
    e.mid = opt_double(enriched.column(8), i);
    e.spread_bps = opt_double(enriched.column(9), i);
    if (enriched.column(10).is_valid(i)) e.sector = std::string(enriched.column(10).string_view(i));
    e.notional = enriched.column(11).value<double>(i);
    e.slippage_bps = opt_double(enriched.column(12), i);
    EXPECT_TRUE(got.emplace(enriched.column(0).value<int64_t>(i), e).second);
  }
  int64_t mismatches = 0;
  for (const auto& [id, want] : ref.enriched) {
    auto it = got.find(id);
    if (it == got.end()) {
      ADD_FAILURE() << "trade " << id << " missing";
    } else if (!(it->second == want) && ++mismatches <= 5) {
      // Derived fields are computed in the same order as the reference: bit for bit equal.
      ADD_FAILURE() << "trade " << id << "\n  got  " << it->second << "\n  want " << want;
    }
  }
  EXPECT_EQ(mismatches, 0);

  RecordBatch vwap = read_jsonl(out_dir + "/vwap.jsonl", vwap_schema());
  ASSERT_EQ(vwap.num_rows(), static_cast<int64_t>(ref.windows.size()));
  for (int64_t i = 0; i < vwap.num_rows(); ++i) {
    const int64_t start = vwap.column(0).value<int64_t>(i);
    const std::string sector(vwap.column(2).string_view(i));
    auto it = ref.windows.find({start, sector});
    ASSERT_NE(it, ref.windows.end()) << "unexpected window " << start << " " << sector;
    EXPECT_EQ(vwap.column(1).value<int64_t>(i), start + 60'000);
    EXPECT_EQ(vwap.column(3).value<int64_t>(i), it->second.trades) << start << " " << sector;
    EXPECT_EQ(vwap.column(4).value<int64_t>(i), it->second.volume) << start << " " << sector;
    // The sum of notionals is added in arrival order, which depends on parallelism and batching:
    // equal within a relative 1e-12, not bit for bit.
    EXPECT_NEAR(vwap.column(5).value<double>(i), it->second.vwap, 1e-12 * it->second.vwap)
        << start << " " << sector;
  }
  std::filesystem::remove_all(out_dir);
}

TEST(EnrichmentJob, EqualsTheReferenceForSeedsParallelismAndBatchSizes) {
  std::mt19937_64 rng(20261204);
  const std::vector<std::pair<uint64_t, int>> runs = {{1, 1}, {2, 2}, {3, 3}, {4, 4}};
  for (const auto& [seed, parallelism] : runs) {
    const GeneratorOptions g = small(seed);
    const std::string dir = temp_dir("in");
    ASSERT_TRUE(write_files(g, dir).is_ok());
    const Reference ref = reference(dir);
    // The cases the issue asks to cover are in the data.
    EXPECT_GT(ref.before_first_quote, 0) << "seed " << seed;
    EXPECT_GT(ref.changes_inside_window, 0) << "seed " << seed;
    EXPECT_LT(ref.with_sector, static_cast<int64_t>(ref.enriched.size())) << "seed " << seed;
    EXPECT_GE(ref.windows.size(), 5u * 6u) << "seed " << seed;
    const int64_t small_batch = 1 + static_cast<int64_t>(rng() % 64);
    const int64_t large_batch = 100 + static_cast<int64_t>(rng() % 4000);
    run_and_compare(g, dir, ref, parallelism, parallelism % 2 == 0 ? small_batch : large_batch);
    if (seed == 1) run_and_compare(g, "", ref, 2, large_batch);  // the generator path: same input
    std::filesystem::remove_all(dir);
  }
}

TEST(EnrichmentJob, ABadInputLineNamesFileAndLine) {
  const std::string dir = temp_dir("bad");
  GeneratorOptions g = small(9);
  g.trades = 100;
  ASSERT_TRUE(write_files(g, dir).is_ok());
  {
    std::ofstream f(dir + "/quotes.jsonl", std::ios::app);
    f << "{\"symbol\":\"AAA\",\"time\":\"soon\",\"bid\":1,\"ask\":2}\n";
  }
  DemoOptions o;
  o.input_dir = dir;
  o.quiet = true;
  std::ostringstream console;
  o.out = &console;
  auto summary = run_enrichment_demo(o);
  ASSERT_FALSE(summary.is_ok());
  EXPECT_NE(summary.status().message().find("quotes.jsonl:1001:"), std::string::npos)
      << summary.status().message();
  std::filesystem::remove_all(dir);
}

TEST(EnrichmentJob, JsonSummaryIsOneObjectWithTheCounts) {
  DemoOptions o;
  o.generator = small(5);
  o.json = true;
  o.parallelism = 2;
  std::ostringstream console;
  o.out = &console;
  auto summary = run_enrichment_demo(o);
  ASSERT_TRUE(summary.is_ok()) << summary.status().to_string();
  const std::string text = console.str();
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.front(), '{');
  EXPECT_EQ(text.find('\n'), text.size() - 1);
  EXPECT_NE(text.find("\"trades\":3000,"), std::string::npos) << text;
  EXPECT_NE(text.find("\"quotes\":30000,"), std::string::npos) << text;
  EXPECT_NE(text.find("\"enriched\":3000,"), std::string::npos) << text;
  EXPECT_NE(text.find("\"latency_ms\":{\"p50\":"), std::string::npos) << text;
  EXPECT_GT(summary->latency_p50_ms, 0);
}

}  // namespace
}  // namespace sabot::enrichment
