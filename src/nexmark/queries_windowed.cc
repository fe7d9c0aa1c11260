// Nexmark q4 (average closing price per category), q5 (hot items) and q7 (highest bid): the
// queries that need windows, keyed state and timers, written with the public DataStream API.
#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>

#include "sabot/base/arith.h"
#include "sabot/compute/selection.h"
#include "sabot/nexmark/queries.h"

using namespace std::chrono_literals;

// ---- q4 rows ----

namespace sabot::nexmark::q4_rows {
// An auction (price < 0) or a bid (expires and category < 0), so that both meet in one keyed
// function.
struct AuctionOrBid {
  int64_t id;  // auction id
  int64_t date_time;
  int64_t price;
  int64_t expires;
  int64_t category;
};
struct AuctionFinal {
  int64_t category;
  int64_t final_price;
};
struct CategoryAverage {
  int64_t category;
  double avg_final;
};
}  // namespace sabot::nexmark::q4_rows
SABOT_RECORD(sabot::nexmark::q4_rows::AuctionOrBid, id, date_time, price, expires, category);
SABOT_RECORD(sabot::nexmark::q4_rows::AuctionFinal, category, final_price);
SABOT_RECORD(sabot::nexmark::q4_rows::CategoryAverage, category, avg_final);

// ---- q5 rows ----

namespace sabot::nexmark::q5_rows {
struct AuctionCount {
  int64_t window_start;
  int64_t window_end;
  int64_t auction;
  int64_t num;
};
}  // namespace sabot::nexmark::q5_rows
SABOT_RECORD(sabot::nexmark::q5_rows::AuctionCount, window_start, window_end, auction, num);

// ---- q7 rows ----

namespace sabot::nexmark::q7_rows {
struct WindowedBid {
  int64_t auction;
  int64_t bidder;
  int64_t price;
  int64_t date_time;
  std::string_view extra;
  int64_t window_start;
};
struct HighestBid {
  int64_t auction;
  int64_t bidder;
  int64_t price;
  int64_t date_time;
  std::string extra;  // kept in state: owns its bytes
};
}  // namespace sabot::nexmark::q7_rows
SABOT_RECORD(sabot::nexmark::q7_rows::WindowedBid, auction, bidder, price, date_time, extra,
             window_start);
SABOT_RECORD(sabot::nexmark::q7_rows::HighestBid, auction, bidder, price, date_time, extra);

namespace sabot::nexmark {
namespace {

using namespace q4_rows;
using namespace q5_rows;
using namespace q7_rows;

const columnar::DataType kMillis = columnar::timestamp(columnar::TimeUnit::kMilli);

// ---- q4 ----

// Per auction: the highest bid with auction.date_time <= bid.date_time <= auction.expires, emitted
// when the watermark passes expires (nothing when no bid qualified). Bids that arrive before their
// auction wait in `pending_` until it comes, or until the watermark passes them: an auction that
// arrives after that starts later than the bid.
class WinningBid final : public KeyedProcessFunction<AuctionOrBid, AuctionFinal> {
 public:
  struct Auction {
    int64_t date_time;
    int64_t expires;
    int64_t category;
    int64_t best;  // highest qualifying price so far, -1: none
  };
  struct PendingBid {
    int64_t date_time;
    int64_t price;
  };

  void open(RuntimeContext& ctx) override {
    auction_ = ctx.value_state<Auction>("auction");
    pending_ = ctx.list_state<PendingBid>("pending-bids");
  }

  void process(const AuctionOrBid& row, Context& ctx, Emitter<AuctionFinal>& out) override {
    if (row.price < 0) {  // the auction
      Auction a{row.date_time, row.expires, row.category, -1};
      for (const PendingBid& b : pending_->get()) {
        if (a.date_time <= b.date_time && b.date_time <= a.expires)
          a.best = std::max(a.best, b.price);
      }
      pending_->clear();
      auction_->update(a);
      ctx.register_event_time_timer(Timestamp(a.expires));
      return;
    }
    if (const Auction* a = auction_->get()) {
      if (a->date_time <= row.date_time && row.date_time <= a->expires && row.price > a->best) {
        Auction next = *a;
        next.best = row.price;
        auction_->update(next);
      }
      return;
    }
    pending_->add(PendingBid{row.date_time, row.price});
    ctx.register_event_time_timer(Timestamp(row.date_time));
  }

  void on_timer(Timestamp time, Context&, Emitter<AuctionFinal>& out) override {
    const Auction* a = auction_->get();
    if (a == nullptr) {  // bids whose auction has not come by now can no longer count
      std::vector<PendingBid> keep;
      for (const PendingBid& b : pending_->get()) {
        if (b.date_time > time.millis()) keep.push_back(b);
      }
      pending_->update(std::move(keep));
      return;
    }
    if (time.millis() != a->expires) return;
    if (a->best >= 0) out.emit(AuctionFinal{a->category, a->best});
    auction_->clear();
  }

 private:
  state::ValueState<Auction>* auction_ = nullptr;
  state::ListState<PendingBid>* pending_ = nullptr;
};

struct Average {
  struct Acc {
    int64_t sum = 0;
    int64_t count = 0;
    int64_t category = 0;
  };
  Acc create() const { return {}; }
  void add(Acc& acc, const AuctionFinal& in) const {
    acc.sum += in.final_price;
    ++acc.count;
    acc.category = in.category;
  }
  void merge(Acc& acc, const Acc& other) const {
    acc.sum += other.sum;
    acc.count += other.count;
  }
  CategoryAverage result(const Acc& acc) const {
    return {acc.category, static_cast<double>(acc.sum) / static_cast<double>(acc.count)};
  }
};

// ---- q5 ----

constexpr int64_t kQ5Size = 10'000;  // hopping windows of 10 s every 2 s
constexpr int64_t kQ5Slide = 2'000;

// Per window (keyed by its end): the auctions whose count is the window's largest, emitted when
// the watermark reaches the window's last millisecond (the counts of that window all came
// before: the window operator emits them ahead of the watermark that fired them).
class HottestAuctions final : public KeyedProcessFunction<AuctionCount, AuctionCount> {
 public:
  void open(RuntimeContext& ctx) override {
    top_ = ctx.value_state<int64_t>("top-count");
    auctions_ = ctx.list_state<int64_t>("top-auctions");
  }
  void process(const AuctionCount& row, Context& ctx, Emitter<AuctionCount>&) override {
    const int64_t* top = top_->get();
    if (top == nullptr) ctx.register_event_time_timer(Timestamp(row.window_end - 1));
    if (top == nullptr || row.num > *top) {
      top_->update(row.num);
      auctions_->update({row.auction});
    } else if (row.num == *top) {
      auctions_->add(row.auction);
    }
  }
  void on_timer(Timestamp time, Context&, Emitter<AuctionCount>& out) override {
    const int64_t* top = top_->get();
    if (top == nullptr) return;
    const int64_t end = time.millis() + 1;
    for (int64_t auction : auctions_->get()) {
      out.emit(AuctionCount{end - kQ5Size, end, auction, *top});
    }
    top_->clear();
    auctions_->clear();
  }

 private:
  state::ValueState<int64_t>* top_ = nullptr;
  state::ListState<int64_t>* auctions_ = nullptr;
};

// ---- q7 ----

constexpr int64_t kQ7Size = 10'000;  // tumbling windows of 10 s

// Per tumbling window (keyed by its start): the bids with the window's highest price, emitted when
// the watermark reaches the window's last millisecond.
class HighestBids final : public KeyedProcessFunction<WindowedBid, HighestBid> {
 public:
  void open(RuntimeContext& ctx) override {
    top_ = ctx.value_state<int64_t>("top-price");
    bids_ = ctx.list_state<HighestBid>("top-bids");
  }
  void process(const WindowedBid& row, Context& ctx, Emitter<HighestBid>&) override {
    const int64_t* top = top_->get();
    if (top == nullptr) ctx.register_event_time_timer(Timestamp(row.window_start + kQ7Size - 1));
    if (top != nullptr && row.price < *top) return;
    HighestBid bid{row.auction, row.bidder, row.price, row.date_time, std::string(row.extra)};
    if (top == nullptr || row.price > *top) {
      top_->update(row.price);
      bids_->update({std::move(bid)});
    } else {
      bids_->add(std::move(bid));
    }
  }
  void on_timer(Timestamp, Context&, Emitter<HighestBid>& out) override {
    for (const HighestBid& b : bids_->get()) out.emit(b);
    top_->clear();
    bids_->clear();
  }

 private:
  state::ValueState<int64_t>* top_ = nullptr;
  state::ListState<HighestBid>* bids_ = nullptr;
};

// Bids counted per (auction, pane of one slide) within each batch, so that the window adds about a
// hundred partial counts per batch instead of every bid (Flink's local-global aggregation). All
// times of a pane fall into the same windows, and the pane's latest bid time is no later than
// the bids it stands for.
SchemaPtr pane_schema() {
  return columnar::schema({columnar::field("auction", columnar::int64()),
                           columnar::field("pane", columnar::int64()),
                           columnar::field("date_time", kMillis)});
}
Result<RecordBatch> count_in_batch(const RecordBatch& bids) {
  static const SchemaPtr schema = pane_schema();
  static const std::vector<std::string> keys = {"auction", "pane"};
  static const std::vector<compute::Aggregate> counts = {count().as("num"),
                                                         max("date_time").as("date_time")};
  const columnar::Array& time = bids.column(bids.schema().field_index("date_time"));
  if (time.null_count() > 0) return Status::invalid_data("q5: a bid's date_time is null");
  const int64_t n = bids.num_rows();
  const int64_t* t = time.values<int64_t>();
  columnar::Int64Builder pane;  // a plain loop: the constant divisor becomes a multiplication
  pane.reserve(n);
  for (int64_t i = 0; i < n; ++i) pane.unsafe_append(floor_div(t[i], kQ5Slide) * kQ5Slide);
  RecordBatch keyed = RecordBatch::make_unchecked(
      schema, {bids.column(bids.schema().field_index("auction")), pane.finish(), time}, n);
  return compute::group_by(keyed, keys, counts);
}
SchemaPtr count_in_batch_schema() {
  return columnar::schema(
      {columnar::field("auction", columnar::int64()), columnar::field("pane", columnar::int64()),
       columnar::field("num", columnar::int64()), columnar::field("date_time", kMillis)});
}

// Keeps, of a batch of window counts, the rows at the highest count of their window within the
// batch: the others cannot be the window's highest (a local top before the global one), so a
// few rows per window reach the keyed stage instead of one per auction.
Result<RecordBatch> top_counts_in_batch(const RecordBatch& counts) {
  const columnar::Array& end_col = counts.column(counts.schema().field_index("window_end"));
  const columnar::Array& num_col = counts.column(counts.schema().field_index("num"));
  if (num_col.null_count() > 0 || end_col.null_count() > 0) {
    return Status::invalid_data("q5: a window count or end is null");
  }
  const int64_t* end = end_col.values<int64_t>();
  const int64_t* num = num_col.values<int64_t>();
  const int64_t n = counts.num_rows();
  std::vector<std::pair<int64_t, int64_t>> tops;  // (window end, top count); few per batch
  size_t w = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (w >= tops.size() || tops[w].first != end[i]) {
      w = 0;
      while (w < tops.size() && tops[w].first != end[i]) ++w;
      if (w == tops.size()) tops.emplace_back(end[i], num[i]);
    }
    tops[w].second = std::max(tops[w].second, num[i]);
  }
  std::vector<int32_t> keep;
  w = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (tops[w].first != end[i]) {
      w = 0;
      while (tops[w].first != end[i]) ++w;
    }
    if (num[i] == tops[w].second) keep.push_back(static_cast<int32_t>(i));
  }
  return compute::take(counts, keep);
}

// floor(t / size) * size for an int64 millisecond expression, also for negative t.
Expr window_start_of(Expr t, int64_t size) { return t - ((t % lit(size)) + lit(size)) % lit(size); }

}  // namespace

// Auctions and bids meet in one keyed function (as rows of one schema); its closing prices feed a
// rolling average per category.
DataStream q4(Environment& env, const QueryConfig& config) {
  const Expr none = lit(int64_t{-1});
  DataStream auction_rows =
      auctions(env, config)
          .select({col("id"), cast(col("date_time"), columnar::int64()).as("date_time"),
                   none.as("price"), cast(col("expires"), columnar::int64()).as("expires"),
                   col("category")});
  DataStream bid_rows = bids(env, config)
                            .select({col("auction").as("id"),
                                     cast(col("date_time"), columnar::int64()).as("date_time"),
                                     col("price"), none.as("expires"), none.as("category")});
  return auction_rows.union_with(bid_rows)
      .key_by("id")
      .process(WinningBid{})
      .key_by("category")
      .aggregate<AuctionFinal, Average::Acc, CategoryAverage>(Average{});
}

// Counts per auction and hopping window (pre-counted per batch), then the top counts per window.
DataStream q5(Environment& env, const QueryConfig& config) {
  return bids(env, config)
      .map_batches(count_in_batch, count_in_batch_schema())
      .key_by("auction")
      .window(sliding(std::chrono::milliseconds(kQ5Size), std::chrono::milliseconds(kQ5Slide)))
      .aggregate({sum("num").as("num")})
      .map_batches(top_counts_in_batch)
      .key_by("window_end")
      .process(HottestAuctions{})
      .select({cast(col("window_start"), kMillis).as("window_start"),
               cast(col("window_end"), kMillis).as("window_end"), col("auction"), col("num")});
}

// The bids keyed by their tumbling window, each window keeping its highest-priced bids.
DataStream q7(Environment& env, const QueryConfig& config) {
  const Expr t = cast(col("date_time"), columnar::int64());
  return bids(env, config)
      .with_column("window_start", window_start_of(t, kQ7Size))
      .key_by("window_start")
      .process(HighestBids{})
      .select({col("auction"), col("bidder"), col("price"),
               cast(col("date_time"), kMillis).as("date_time"), col("extra")});
}

}  // namespace sabot::nexmark
