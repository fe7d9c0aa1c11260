// The interval, as-of, window and regular joins with their buffered rows in the job's keyed state
// backend, so that on RocksDB they may be larger than memory and checkpoint incrementally
// (join.cc keeps the rows in the operator, as the input batches themselves, which the memory
// backend does faster). Same results, same late-row handling, same output watermarks.
//
// Each join runs on a KeyedProcessOperator keyed by its join columns (both inputs register their
// keys). A buffered row is one element of its key's list state, "left" or "right":
// [i64 time][u8 matched][the row's values, state/value_bytes.h], where time is the row's event
// time (interval and as-of joins), the start of the window it waits in (window join, one element
// per window) or its expiry in processing time (regular join with a TTL). A row is matched
// against the other side's list of its key when it arrives (interval and regular joins) or when
// the watermark resolves it (as-of and window joins). Rows leave the state through the keyed
// operator's timers: an event-time timer per key at each (time at which something of the key is
// due + allowed lateness), a processing-time timer per key at each expiry for the regular join.
// The first timer of a key that fires handles everything of the key that is due and deletes the
// key's other timers it made redundant, so a key's lists are read once per watermark.
#include <algorithm>
#include <cstring>
#include <functional>
#include <iterator>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "operators/join_state.h"
#include "sabot/base/arith.h"
#include "sabot/columnar/builder.h"
#include "sabot/compute/selection.h"
#include "sabot/operators/keyed_process.h"
#include "sabot/state/snapshot.h"
#include "sabot/state/value_bytes.h"

namespace sabot::operators::internal {

namespace {

using columnar::DataType;
using columnar::Schema;
using runtime::OperatorContext;
using runtime::Output;
using state::KeyId;

const state::ListStateDescriptor<std::string> kSideRows[2] = {{"left"}, {"right"}};
constexpr uint16_t kStateVersion = 1;
constexpr size_t kEntryHeader = sizeof(int64_t) + 1;

// ---- buffered rows ----

struct Buffered {
  int64_t time = 0;
  bool matched = false;
  std::string_view row;  // the values, into the element
};

void encode_buffered(int64_t time, bool matched, const RecordBatch& batch, int64_t row,
                     std::string* out) {
  out->resize(kEntryHeader);
  std::memcpy(out->data(), &time, sizeof(time));
  (*out)[sizeof(time)] = matched ? 1 : 0;
  state::encode_values(batch.columns(), row, out);
}

Result<Buffered> decode_buffered(std::string_view e) {
  if (e.size() < kEntryHeader) {
    return Status::invalid_data("a join's buffered row holds " + std::to_string(e.size()) +
                                " bytes, fewer than its " + std::to_string(kEntryHeader) +
                                "-byte header");
  }
  Buffered b;
  std::memcpy(&b.time, e.data(), sizeof(b.time));
  b.matched = e[sizeof(b.time)] != 0;
  b.row = e.substr(kEntryHeader);
  return b;
}

void mark_matched(std::string* e) { (*e)[sizeof(int64_t)] = 1; }

// Output rows built value by value: each side from a batch row, from a buffered row's bytes or
// null, then the extra columns (the window join's bounds).
class JoinedRows {
 public:
  static constexpr int64_t kFlushRows = 8192;

  JoinedRows(SchemaPtr out, const Schema& left, const Schema& right) : out_(std::move(out)) {
    for (const auto& f : out_->fields()) builders_.push_back(columnar::make_builder(f.type));
    for (const auto& f : left.fields()) types_[0].push_back(f.type);
    for (const auto& f : right.fields()) types_[1].push_back(f.type);
    offset_[1] = static_cast<int>(types_[0].size());
  }

  void add_batch_row(int side, const RecordBatch& b, int64_t r) {
    for (int c = 0; c < b.num_columns(); ++c) builder(side, c)->append_array(b.column(c), r, 1);
  }
  Status add_bytes(int side, std::string_view row) {
    return state::append_values(row, types_[side], side_builders(side));
  }
  void add_null(int side) {
    for (auto& b : side_builders(side)) b->append_null();
  }
  // Extra column `i` (after both sides) of the row being built.
  void add_extra(int i, const columnar::Scalar& v) {
    builders_[types_[0].size() + types_[1].size() + static_cast<size_t>(i)]->append_scalar(v);
  }
  // A row is complete: emits the rows built so far once there are kFlushRows.
  Status end_row(Output& out) { return ++rows_ >= kFlushRows ? flush(out) : Status::ok(); }
  Status flush(Output& out) {
    if (rows_ == 0) return Status::ok();
    std::vector<Array> cols;
    cols.reserve(builders_.size());
    for (auto& b : builders_) cols.push_back(b->finish());
    rows_ = 0;
    SABOT_ASSIGN_OR_RETURN(RecordBatch batch, RecordBatch::make(out_, std::move(cols)));
    return out.emit(batch);
  }

 private:
  columnar::ArrayBuilder* builder(int side, int c) {
    return builders_[static_cast<size_t>(offset_[side] + c)].get();
  }
  std::span<std::unique_ptr<columnar::ArrayBuilder>> side_builders(int side) {
    return std::span(builders_).subspan(static_cast<size_t>(offset_[side]), types_[side].size());
  }

  SchemaPtr out_;
  std::vector<std::unique_ptr<columnar::ArrayBuilder>> builders_;
  std::vector<DataType> types_[2];
  int offset_[2] = {0, 0};
  int64_t rows_ = 0;
};

// What every join's driver shares: the two lists, the output, the operator's watermark, the
// count of buffered rows.
class JoinDriver : public KeyedProcessDriver {
 public:
  JoinDriver(JoinKind kind, const ResolvedJoin& r, std::span<const SchemaPtr> inputs,
             int64_t lateness, const int64_t* wm)
      : r_(r), rows_(r.out_schema, *inputs[0], *inputs[1]), lateness_(lateness), wm_(wm) {
    outer_[0] = kind == JoinKind::kLeft || kind == JoinKind::kFull;
    outer_[1] = kind == JoinKind::kRight || kind == JoinKind::kFull;
  }

  Status open(KeyedProcessScope* scope, const OperatorContext&) override {
    scope_ = scope;
    backend_ = scope->backend;
    for (int side = 0; side < 2; ++side) {
      SABOT_ASSIGN_OR_RETURN(lists_[side], backend_->get_state(kSideRows[side]));
    }
    return Status::ok();
  }
  Status process_rows(const RecordBatch& batch, std::span<const KeyId> ids) override {
    return process_input_rows(0, batch, ids);
  }
  Status process_input_rows(int input, const RecordBatch& batch, std::span<const KeyId> ids) final {
    const int side = input == 0 ? 0 : 1;
    const bool timed = r_.time_col[side] >= 0;
    if (timed) SABOT_RETURN_IF_ERROR(time_millis(batch.column(r_.time_col[side]), &times_));
    for (int64_t i = 0; i < batch.num_rows(); ++i) {
      backend_->prefetch_ahead(ids, static_cast<size_t>(i));
      const KeyId k = ids[static_cast<size_t>(i)];
      backend_->set_current_key(k);
      SABOT_RETURN_IF_ERROR(arrive(side, batch, i, k, timed ? times_[static_cast<size_t>(i)] : 0));
    }
    return Status::ok();
  }
  // Emits through the output set by set_output().
  Result<std::optional<RecordBatch>> take_output() override {
    SABOT_RETURN_IF_ERROR(rows_.flush(*out_));
    return std::optional<RecordBatch>();
  }

  void set_output(Output* out) { out_ = out; }
  // The processing time the operator read for this batch or watermark (the regular join's TTL).
  void set_now(int64_t now) { now_ = now; }
  // The end of the input, as join.cc's finish(): every key with rows is handled as if everything
  // were due (on_timer with finishing_ set), whatever the watermark and the timers say (rows that
  // arrived after the final watermark have timers that never fire), then finish_key() drops what
  // is left of it.
  Status finish() {
    finishing_ = true;
    std::vector<KeyId> keys[2];
    for (int side = 0; side < 2; ++side) {
      SABOT_ASSIGN_OR_RETURN(keys[side], backend_->keys_with_state(kSideRows[side].name, 0));
    }
    std::vector<KeyId> all;  // both are in increasing KeyId order
    std::set_union(keys[0].begin(), keys[0].end(), keys[1].begin(), keys[1].end(),
                   std::back_inserter(all));
    for (KeyId k : all) {
      backend_->set_current_key(k);
      SABOT_RETURN_IF_ERROR(on_timer(Timestamp::max()));
      finish_key();
    }
    scope_->event_timers.clear();
    scope_->processing_timers.clear();
    return Status::ok();
  }

  // Rows in the lists; counted again after a restore (tests and metrics only).
  int64_t buffered_rows() {
    if (count_valid_) return buffered_;
    buffered_ = 0;
    for (int side = 0; side < 2; ++side) {
      auto keys = backend_->keys_with_state(kSideRows[side].name, 0);
      if (!keys.is_ok()) continue;
      for (KeyId k : *keys) {
        backend_->set_current_key(k);
        buffered_ += static_cast<int64_t>(lists_[side]->get().size());
      }
    }
    count_valid_ = true;
    return buffered_;
  }
  void restored() { count_valid_ = false; }

 protected:
  // Row i of `batch` (of `side`, at event time t; 0 for the regular join) arrives; its key k is
  // the current key.
  virtual Status arrive(int side, const RecordBatch& batch, int64_t i, KeyId k, int64_t t) = 0;

  // What is left of the current key once finish() has handled it: nothing but for the as-of
  // join's right rows.
  virtual void finish_key() {}

  // join.cc's threshold: rows at or before it are late; in finish() everything is due.
  int64_t threshold() const {
    if (finishing_) return INT64_MAX;
    return *wm_ == INT64_MIN ? INT64_MIN : sat_sub(*wm_, lateness_);
  }
  // The event-time timer that makes something at `time` due once threshold() reaches it.
  int64_t timer_at(int64_t time) const { return sat_add(time, lateness_); }

  // insert, not emplace: most rows find their timer there already, and emplace would allocate a
  // node before finding it.
  void add_event_timer(int64_t time, KeyId k) { scope_->event_timers.insert({time, k}); }

  // Copies the current key's list of `side` into scratch_[side] (reusing its strings).
  std::vector<std::string>& read_list(int side) {
    std::vector<std::string>& v = scratch_[side];
    const std::span<const std::string> elems = lists_[side]->get();
    v.resize(elems.size());
    for (size_t i = 0; i < elems.size(); ++i) v[i].assign(elems[i]);
    return v;
  }
  void add_row(int side, const std::string& entry) {
    lists_[side]->add(entry);
    ++buffered_;
  }
  // Replaces the current key's list of `side` by its elements scratch_[side][i] with keep[i].
  void keep_rows(int side, const std::vector<char>& keep) {
    std::vector<std::string> kept;
    std::vector<std::string>& v = scratch_[side];
    for (size_t i = 0; i < v.size(); ++i) {
      if (keep[i]) kept.push_back(std::move(v[i]));
    }
    buffered_ -= static_cast<int64_t>(v.size() - kept.size());
    lists_[side]->update(std::move(kept));
  }
  // Emits a row of one side with nulls for the other (an outer row).
  Status emit_alone(int side, std::string_view row) {
    SABOT_RETURN_IF_ERROR(rows_.add_bytes(side, row));
    rows_.add_null(1 - side);
    return rows_.end_row(*out_);
  }

  // Row i of `batch` (of `side`) arrives: emits it with each of the current key's rows of the
  // other side whose time `matches` accepts, flagging those of an outer side as matched. Returns
  // whether any matched.
  template <typename Matches>
  Result<bool> match_arrival(int side, const RecordBatch& batch, int64_t i, Matches matches) {
    const int other = 1 - side;
    bool matched = false;
    flag_.clear();  // other-side rows getting their first match
    const std::span<const std::string> others = lists_[other]->get();
    for (size_t j = 0; j < others.size(); ++j) {
      SABOT_ASSIGN_OR_RETURN(Buffered b, decode_buffered(others[j]));
      if (!matches(b.time)) continue;
      matched = true;
      if (side == 0) {
        rows_.add_batch_row(0, batch, i);
        SABOT_RETURN_IF_ERROR(rows_.add_bytes(1, b.row));
      } else {
        SABOT_RETURN_IF_ERROR(rows_.add_bytes(0, b.row));
        rows_.add_batch_row(1, batch, i);
      }
      SABOT_RETURN_IF_ERROR(rows_.end_row(*out_));
      if (outer_[other] && !b.matched) flag_.push_back(j);
    }
    if (!flag_.empty()) {
      std::vector<std::string> flagged(others.begin(), others.end());
      for (size_t j : flag_) mark_matched(&flagged[j]);
      lists_[other]->update(std::move(flagged));
    }
    return matched;
  }

  // Removes the current key's rows for which `due(side, time)` holds, emitting the unmatched ones
  // of an outer side, and calls `dropped(side, time)` for each (to delete their timers).
  template <typename Due, typename Dropped>
  Status drop_due_rows(Due due, Dropped dropped) {
    for (int side = 0; side < 2; ++side) {
      std::vector<std::string>& v = read_list(side);
      if (v.empty()) continue;
      keep_.assign(v.size(), 1);
      bool any = false;
      for (size_t j = 0; j < v.size(); ++j) {
        SABOT_ASSIGN_OR_RETURN(Buffered b, decode_buffered(v[j]));
        if (!due(side, b.time)) continue;
        if (outer_[side] && !b.matched) SABOT_RETURN_IF_ERROR(emit_alone(side, b.row));
        dropped(side, b.time);
        keep_[j] = 0;
        any = true;
      }
      if (any) keep_rows(side, keep_);
    }
    return Status::ok();
  }

  const ResolvedJoin r_;
  JoinedRows rows_;
  const int64_t lateness_;
  const int64_t* wm_;  // the operator's watermark
  KeyedProcessScope* scope_ = nullptr;
  state::KeyedStateBackend* backend_ = nullptr;
  state::ListState<std::string>* lists_[2] = {nullptr, nullptr};
  Output* out_ = nullptr;
  bool outer_[2] = {false, false};  // rows of this side without a partner are emitted
  std::vector<int64_t> times_;
  std::string entry_;
  std::vector<std::string> scratch_[2];
  std::vector<char> keep_;
  std::vector<size_t> flag_;
  int64_t now_ = 0;
  bool finishing_ = false;  // in finish()
  int64_t buffered_ = 0;
  bool count_valid_ = true;
};

// Interval join: a row matches the other side's rows of its key within the bounds when it
// arrives; it leaves the state once no row on time can match it (its expiry, as join.cc), an
// unmatched one of an outer side emitted then.
class IntervalDriver final : public JoinDriver {
 public:
  IntervalDriver(const IntervalJoinOptions& o, const ResolvedJoin& r,
                 std::span<const SchemaPtr> inputs, const int64_t* wm)
      : JoinDriver(o.kind, r, inputs, o.time.allowed_lateness_ms, wm),
        lower_(o.lower_ms),
        upper_(o.upper_ms) {}

  Status arrive(int side, const RecordBatch& batch, int64_t i, KeyId k, int64_t t) override {
    const int64_t lo = t + (side == 0 ? lower_ : -upper_);
    const int64_t hi = t + (side == 0 ? upper_ : -lower_);
    SABOT_ASSIGN_OR_RETURN(bool matched, match_arrival(side, batch, i, [&](int64_t other) {
                             return other >= lo && other <= hi;
                           }));
    encode_buffered(t, matched, batch, i, &entry_);
    add_row(side, entry_);
    add_event_timer(timer_at(expiry(side, t)), k);
    return Status::ok();
  }

  // Rows sharing this timer expire with the row that set it: the first timer does their work.
  Status on_timer(Timestamp) override {
    const int64_t th = threshold();
    const KeyId k = backend_->current_key();
    return drop_due_rows([&](int side, int64_t t) { return expiry(side, t) <= th; },
                         [&](int side, int64_t t) {
                           scope_->event_timers.erase({timer_at(expiry(side, t)), k});
                         });
  }

 private:
  // A row is unmatchable once this is <= threshold() (join.cc's expiry).
  int64_t expiry(int side, int64_t t) const {
    return side == 0 ? sat_add(t, upper_) : sat_sub(t, lower_);
  }

  const int64_t lower_, upper_;
};

// As-of join: a left row waits ("left") until the watermark passes its time, then takes the
// latest right row of its key at or before it (within the tolerance). The right rows ("right")
// are kept sorted by time (ties: arrival), trimmed when a row arrives to those a query at or
// after the watermark may still choose, as join.cc does.
class AsOfDriver final : public JoinDriver {
 public:
  AsOfDriver(const AsOfJoinOptions& o, const ResolvedJoin& r, std::span<const SchemaPtr> inputs,
             const int64_t* wm)
      : JoinDriver(o.kind, r, inputs, o.time.allowed_lateness_ms, wm),
        tolerance_(o.tolerance_ms),
        left_kind_(o.kind == JoinKind::kLeft) {}

  Status arrive(int side, const RecordBatch& batch, int64_t i, KeyId k, int64_t t) override {
    encode_buffered(t, false, batch, i, &entry_);
    if (side == 0) {
      add_row(0, entry_);
      add_event_timer(timer_at(t), k);
      return Status::ok();
    }
    std::vector<std::string>& v = read_list(1);
    SABOT_RETURN_IF_ERROR(times_of(v));
    // After every row of the same time: the last arrival wins ties.
    const size_t pos = static_cast<size_t>(
        std::upper_bound(list_times_.begin(), list_times_.end(), t) - list_times_.begin());
    v.insert(v.begin() + static_cast<std::ptrdiff_t>(pos), entry_);
    list_times_.insert(list_times_.begin() + static_cast<std::ptrdiff_t>(pos), t);
    ++buffered_;
    trim(v, min_query());
    return Status::ok();
  }

  Status on_timer(Timestamp) override {
    const int64_t th = threshold();
    const KeyId k = backend_->current_key();
    std::vector<std::string>& pending = read_list(0);
    due_.clear();
    keep_.assign(pending.size(), 1);
    for (size_t j = 0; j < pending.size(); ++j) {
      SABOT_ASSIGN_OR_RETURN(Buffered b, decode_buffered(pending[j]));
      if (b.time > th) continue;
      due_.push_back({b.time, j});
      keep_[j] = 0;
      scope_->event_timers.erase({timer_at(b.time), k});
    }
    if (due_.empty()) return Status::ok();
    std::stable_sort(due_.begin(), due_.end());  // in time order, as join.cc resolves them
    std::vector<std::string>& rights = read_list(1);
    SABOT_RETURN_IF_ERROR(times_of(rights));
    for (const auto& [t, j] : due_) {
      const size_t pos = static_cast<size_t>(
          std::upper_bound(list_times_.begin(), list_times_.end(), t) - list_times_.begin());
      const std::string* match = nullptr;
      if (pos > 0 && (tolerance_ < 0 || t - list_times_[pos - 1] <= tolerance_)) {
        match = &rights[pos - 1];
      }
      if (match == nullptr && !left_kind_) continue;
      SABOT_ASSIGN_OR_RETURN(Buffered l, decode_buffered(pending[j]));
      SABOT_RETURN_IF_ERROR(rows_.add_bytes(0, l.row));
      if (match != nullptr) {
        SABOT_RETURN_IF_ERROR(rows_.add_bytes(1, match->substr(kEntryHeader)));
      } else {
        rows_.add_null(1);
      }
      SABOT_RETURN_IF_ERROR(rows_.end_row(*out_));
    }
    keep_rows(0, keep_);
    return Status::ok();
  }

  // Nothing queries any more: the right rows go.
  void finish_key() override {
    buffered_ -= static_cast<int64_t>(lists_[1]->get().size());
    lists_[1]->clear();
  }

 private:
  // No pending or future left row has a time below this (join.cc's min_query).
  int64_t min_query() const { return *wm_ == INT64_MIN ? INT64_MIN : sat_add(threshold(), 1); }

  Status times_of(const std::vector<std::string>& v) {
    list_times_.clear();
    for (const std::string& e : v) {
      SABOT_ASSIGN_OR_RETURN(Buffered b, decode_buffered(e));
      list_times_.push_back(b.time);
    }
    return Status::ok();
  }

  // Writes the right list `v` (times in list_times_) back without the rows no query at or after
  // q can choose: every row with time <= q but the last one (that one too when it is out of
  // tolerance for q).
  void trim(std::vector<std::string>& v, int64_t q) {
    size_t drop = 0;
    if (!v.empty() && list_times_[0] <= q) {
      size_t last = 0;
      while (last + 1 < v.size() && list_times_[last + 1] <= q) ++last;
      drop = last;
      if (tolerance_ >= 0 && q - list_times_[last] > tolerance_) drop = last + 1;
    }
    buffered_ -= static_cast<int64_t>(drop);
    lists_[1]->update(
        std::vector<std::string>(v.begin() + static_cast<std::ptrdiff_t>(drop), v.end()));
  }

  const int64_t tolerance_;
  const bool left_kind_;
  std::vector<int64_t> list_times_;
  std::vector<std::pair<int64_t, size_t>> due_;  // (time, index in the pending list)
};

// Window join: a row waits in its key's list once per window it belongs to (time: the window's
// start); when the watermark passes a window's end, the key's rows of that window are joined.
class WindowJoinDriver final : public JoinDriver {
 public:
  WindowJoinDriver(const WindowJoinOptions& o, const ResolvedJoin& r,
                   std::span<const SchemaPtr> inputs, const int64_t* wm)
      : JoinDriver(o.kind, r, inputs, o.time.allowed_lateness_ms, wm),
        size_(o.size_ms),
        slide_(o.slide_ms <= 0 ? o.size_ms : o.slide_ms) {}

  Status arrive(int side, const RecordBatch& batch, int64_t i, KeyId k, int64_t t) override {
    // Floor to the slide grid (also for negative times), as join.cc.
    for (int64_t start = t - (((t % slide_) + slide_) % slide_); start > t - size_;
         start -= slide_) {
      encode_buffered(start, false, batch, i, &entry_);
      add_row(side, entry_);
      add_event_timer(timer_at(last_ms(start)), k);
    }
    return Status::ok();
  }

  Status on_timer(Timestamp) override {
    const int64_t th = threshold();
    const KeyId k = backend_->current_key();
    // The due windows' starts, and per side which elements are due.
    starts_.clear();
    for (int side = 0; side < 2; ++side) {
      std::vector<std::string>& v = read_list(side);
      due_[side].assign(v.size(), INT64_MIN);
      for (size_t j = 0; j < v.size(); ++j) {
        SABOT_ASSIGN_OR_RETURN(Buffered b, decode_buffered(v[j]));
        if (last_ms(b.time) > th) continue;
        due_[side][j] = b.time;
        starts_.push_back(b.time);
      }
    }
    std::sort(starts_.begin(), starts_.end());
    starts_.erase(std::unique(starts_.begin(), starts_.end()), starts_.end());
    for (int64_t start : starts_) {
      scope_->event_timers.erase({timer_at(last_ms(start)), k});
      SABOT_RETURN_IF_ERROR(join_window(start));
    }
    for (int side = 0; side < 2; ++side) {
      if (starts_.empty()) break;
      keep_.resize(due_[side].size());
      for (size_t j = 0; j < keep_.size(); ++j) keep_[j] = due_[side][j] == INT64_MIN;
      keep_rows(side, keep_);
    }
    return Status::ok();
  }

 private:
  // A window's last millisecond: it fires once threshold() reaches it.
  int64_t last_ms(int64_t start) const { return sat_add(start, size_ - 1); }

  // The current key's rows of window `start`: every left with every right, in arrival order;
  // rows of an outer side without a partner with nulls.
  Status join_window(int64_t start) {
    const std::vector<std::string>& l = scratch_[0];
    const std::vector<std::string>& r = scratch_[1];
    bool any[2] = {false, false};
    for (int side = 0; side < 2; ++side) {
      for (int64_t s : due_[side]) any[side] = any[side] || s == start;
    }
    const columnar::Scalar bounds[2] = {
        columnar::Scalar::of_timestamp(start, columnar::TimeUnit::kMilli),
        columnar::Scalar::of_timestamp(start + size_, columnar::TimeUnit::kMilli)};
    auto end_row = [&] {
      rows_.add_extra(0, bounds[0]);
      rows_.add_extra(1, bounds[1]);
      return rows_.end_row(*out_);
    };
    for (int side = 0; side < 2; ++side) {
      if (any[1 - side] || !outer_[side]) continue;
      const std::vector<std::string>& v = side == 0 ? l : r;
      for (size_t j = 0; j < v.size(); ++j) {
        if (due_[side][j] != start) continue;
        SABOT_RETURN_IF_ERROR(rows_.add_bytes(side, std::string_view(v[j]).substr(kEntryHeader)));
        rows_.add_null(1 - side);
        SABOT_RETURN_IF_ERROR(end_row());
      }
    }
    if (!any[0] || !any[1]) return Status::ok();
    for (size_t a = 0; a < l.size(); ++a) {
      if (due_[0][a] != start) continue;
      for (size_t b = 0; b < r.size(); ++b) {
        if (due_[1][b] != start) continue;
        SABOT_RETURN_IF_ERROR(rows_.add_bytes(0, std::string_view(l[a]).substr(kEntryHeader)));
        SABOT_RETURN_IF_ERROR(rows_.add_bytes(1, std::string_view(r[b]).substr(kEntryHeader)));
        SABOT_RETURN_IF_ERROR(end_row());
      }
    }
    return Status::ok();
  }

  const int64_t size_, slide_;
  std::vector<int64_t> starts_;
  std::vector<int64_t> due_[2];  // per element: its window start if due, else INT64_MIN
};

// Regular join: a row matches every row of its key on the other side when it arrives and stays
// until its TTL (processing time) runs out, or for good without one; an unmatched row of an
// outer side is emitted when it leaves.
class RegularDriver final : public JoinDriver {
 public:
  RegularDriver(const RegularJoinOptions& o, const ResolvedJoin& r,
                std::span<const SchemaPtr> inputs, const int64_t* wm)
      : JoinDriver(o.kind, r, inputs, 0, wm), ttl_(o.state_ttl_ms) {}

  Status arrive(int side, const RecordBatch& batch, int64_t i, KeyId k, int64_t) override {
    const int64_t exp = ttl_ > 0 ? sat_add(now_, ttl_) : INT64_MAX;
    SABOT_ASSIGN_OR_RETURN(bool matched,
                           match_arrival(side, batch, i, [](int64_t) { return true; }));
    encode_buffered(exp, matched, batch, i, &entry_);
    add_row(side, entry_);
    if (ttl_ > 0) scope_->processing_timers.insert({exp, k});
    return Status::ok();
  }

  // Drops the key's rows whose TTL ran out by now (each has a timer at or before now); in
  // finish() every row.
  Status on_timer(Timestamp) override {
    const KeyId k = backend_->current_key();
    const int64_t until = finishing_ ? INT64_MAX : now_;
    return drop_due_rows([&](int, int64_t expire) { return expire <= until; },
                         [&](int, int64_t expire) {
                           scope_->processing_timers.erase({expire, k});
                         });
  }

 private:
  const int64_t ttl_;
};

// The operator around a driver: late rows, the watermark, the snapshot.
struct KeyedJoinPlan {
  std::string memory_type;     // join.cc's state type; this operator's is "keyed-" + it
  bool event_time = true;      // false: the regular join (no late rows, watermarks pass)
  EventTimeOptions time;       // lateness and the late side outputs
  int64_t watermark_hold = 0;  // output watermark: threshold minus this (interval: max span)
};

class KeyedJoinOperator final : public WrapsKeyedProcessOperator<StatefulOperator> {
 public:
  // `make_driver` gets the operator's watermark, which the driver reads.
  using MakeDriver = std::function<std::unique_ptr<JoinDriver>(const int64_t* wm)>;
  KeyedJoinOperator(KeyedJoinPlan plan, const MakeDriver& make_driver, const ResolvedJoin& r,
                    const OperatorContext& ctx, std::unique_ptr<state::KeyedStateBackend> backend)
      : plan_(std::move(plan)), state_type_("keyed-" + plan_.memory_type), r_(r), ctx_(ctx) {
    std::unique_ptr<JoinDriver> driver = make_driver(&wm_);
    driver_ = driver.get();
    keyed_ = std::make_unique<KeyedProcessOperator>(
        std::move(driver), std::vector<KeyedInput>{{r_.key_cols[0]}, {r_.key_cols[1]}},
        std::move(backend), ctx);
  }

  Status open(const OperatorContext& ctx) override {
    ctx_ = ctx;
    return keyed_->open(ctx);
  }
  int64_t buffered_rows() const override { return driver_->buffered_rows(); }
  int64_t dictionary_keys() const override { return keyed_->num_keys(); }

  Status process_batch(const RecordBatch& input, int in, Output& out) override {
    const int side = in == 0 ? 0 : 1;
    driver_->set_output(&out);
    SABOT_RETURN_IF_ERROR(expire(out));
    if (input.num_rows() == 0) return Status::ok();
    RecordBatch batch = input;
    if (plan_.event_time) {
      SABOT_RETURN_IF_ERROR(time_millis(input.column(r_.time_col[side]), &times_));
      static const std::string kLate[2] = {"late_left", "late_right"};
      SABOT_RETURN_IF_ERROR(handle_late(input, times_, late_threshold(),
                                        plan_.time.late_to_side_output, kLate[side], ctx_, out,
                                        &keep_));
      if (keep_.empty()) return Status::ok();
      if (static_cast<int64_t>(keep_.size()) < input.num_rows()) {
        SABOT_ASSIGN_OR_RETURN(batch, compute::take(input, keep_));
      }
    }
    return keyed_->process_batch(batch, side, out);
  }

  Status process_watermark(Timestamp time, Output& out) override {
    driver_->set_output(&out);
    SABOT_RETURN_IF_ERROR(expire(out));
    if (!plan_.event_time) return out.emit_watermark(time);
    wm_ = std::max(wm_, time.millis());
    RowsOnly rows(out);
    SABOT_RETURN_IF_ERROR(keyed_->process_watermark(time, rows));
    if (time == Timestamp::max()) return out.emit_watermark(time);
    return out.emit_watermark(Timestamp(sat_sub(late_threshold(), plan_.watermark_hold)));
  }

  Status finish(Output& out) override {
    driver_->set_output(&out);
    SABOT_RETURN_IF_ERROR(driver_->finish());
    SABOT_ASSIGN_OR_RETURN(std::optional<RecordBatch> none, driver_->take_output());
    (void)none;
    return Status::ok();
  }

  // The keyed operator's snapshot wrapped with the watermark (write_wrapped_keyed_snapshot).
  Status snapshot_state(CheckpointId id, std::string* out) override {
    return snapshot_wrapped(ctx_, state_type_, kStateVersion, static_cast<uint64_t>(wm_), id, out);
  }

  // Adds the owned key groups' rows and timers; the watermark is the minimum over the snapshots.
  Status restore_state(std::string_view data) override {
    auto header = state::SnapshotReader::peek_header(data);
    if (header.is_ok() && header->state_type == plan_.memory_type) {
      return Status::invalid_argument(
          state::describe_snapshot(ctx_.uid, plan_.memory_type) +
          " holds the join's rows as the memory backend keeps them, in the operator; on this "
          "backend the join keeps them in the backend: restore it with the memory state backend");
    }
    SABOT_ASSIGN_OR_RETURN(
        state::SnapshotReader reader,
        state::SnapshotReader::open(data, ctx_.uid, state_type_, kStateVersion,
                                    static_cast<uint32_t>(ctx_.max_parallelism)));
    for (size_t i = 0; i < reader.sections().size(); ++i) {
      ByteReader r = reader.section_reader(i);
      if (reader.sections()[i].key_group != state::kOperatorWide) {
        return r.invalid("a key-group section");
      }
      SABOT_ASSIGN_OR_RETURN(WrappedKeyedSnapshot w, read_wrapped_keyed_snapshot(r));
      merge_watermark(static_cast<int64_t>(w.value), &restored_, &wm_);
      SABOT_RETURN_IF_ERROR(keyed_->restore_state(w.keyed));
    }
    driver_->restored();
    return Status::ok();
  }

 private:
  // join.cc's threshold: rows at or before it are late.
  int64_t late_threshold() const {
    return wm_ == INT64_MIN ? INT64_MIN : sat_sub(wm_, plan_.time.allowed_lateness_ms);
  }

  // The regular join's TTL: rows whose time ran out go before a batch or watermark is handled,
  // as join.cc does.
  Status expire(Output& out) {
    if (plan_.event_time) return Status::ok();
    const int64_t now = ctx_.clock->now().millis();
    driver_->set_now(now);
    return keyed_->on_processing_time(Timestamp(now), out);
  }

  KeyedJoinPlan plan_;
  std::string state_type_;  // of this operator's snapshots
  ResolvedJoin r_;
  OperatorContext ctx_;
  JoinDriver* driver_ = nullptr;  // owned by keyed_
  int64_t wm_ = INT64_MIN;
  bool restored_ = false;  // see merge_watermark
  std::vector<int64_t> times_;
  std::vector<int32_t> keep_;
};

template <typename Driver, typename Options>
Result<std::unique_ptr<runtime::Operator>> make(KeyedJoinPlan plan, const Options& o,
                                                const ResolvedJoin& r,
                                                std::span<const SchemaPtr> inputs,
                                                const OperatorContext& ctx) {
  SABOT_ASSIGN_OR_RETURN(auto backend, make_keyed_backend(ctx, r.key_types));
  std::vector<SchemaPtr> in(inputs.begin(), inputs.end());
  return std::unique_ptr<runtime::Operator>(new KeyedJoinOperator(
      std::move(plan), [&](const int64_t* wm) { return std::make_unique<Driver>(o, r, in, wm); }, r,
      ctx, std::move(backend)));
}

}  // namespace

Result<std::unique_ptr<runtime::Operator>> make_keyed_join(const IntervalJoinOptions& o,
                                                           const ResolvedJoin& r,
                                                           std::span<const SchemaPtr> inputs,
                                                           const OperatorContext& ctx) {
  const int64_t max_span = std::max({std::abs(o.lower_ms), std::abs(o.upper_ms), int64_t{0}});
  return make<IntervalDriver>({"interval-join", true, o.time, max_span}, o, r, inputs, ctx);
}

Result<std::unique_ptr<runtime::Operator>> make_keyed_join(const AsOfJoinOptions& o,
                                                           const ResolvedJoin& r,
                                                           std::span<const SchemaPtr> inputs,
                                                           const OperatorContext& ctx) {
  // join.cc holds its watermark at min(threshold, earliest pending left row - 1); after a
  // watermark has resolved every pending row at or before the threshold that is the threshold.
  return make<AsOfDriver>({"asof-join", true, o.time, 0}, o, r, inputs, ctx);
}

Result<std::unique_ptr<runtime::Operator>> make_keyed_join(const WindowJoinOptions& o,
                                                           const ResolvedJoin& r,
                                                           std::span<const SchemaPtr> inputs,
                                                           const OperatorContext& ctx) {
  return make<WindowJoinDriver>({"window-join", true, o.time, 0}, o, r, inputs, ctx);
}

Result<std::unique_ptr<runtime::Operator>> make_keyed_join(const RegularJoinOptions& o,
                                                           const ResolvedJoin& r,
                                                           std::span<const SchemaPtr> inputs,
                                                           const OperatorContext& ctx) {
  return make<RegularDriver>({"regular-join", false, {}, 0}, o, r, inputs, ctx);
}

}  // namespace sabot::operators::internal
