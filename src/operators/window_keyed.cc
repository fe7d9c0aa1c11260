// Windows (tumbling, sliding, session, count, global; keyed, or at parallelism 1 keyed by an
// appended constant) whose state lives in the job's keyed state backend, so that on RocksDB it may
// be larger than memory and checkpoints incrementally (window.cc keeps it in the operator's
// columns, which the memory backend does faster).
//
// Rows are pre-aggregated in memory with the same columnar accumulators as window.cc, per (key,
// pane), per (key, gap-wide span of time) for sessions, per (key, pane of elements) for count
// windows, per key for global windows, in a buffer of at most kMaxBufferedGroups groups. The
// buffer is written when it is full, after a batch with rows behind the watermark or a count
// window complete, and before anything reads the state (a watermark that fires, an early firing,
// a snapshot, forgetting keys): each group's partial (a header, then its serialize_groups bytes,
// accumulator after accumulator) is appended to its key's list state, a write-cache append or a
// RocksDB merge, never a read; every kCompactAfter appends a key's entries are merged. One list
// per key: a firing reads it once for all of the key's panes or sessions and never looks up what
// the key has no data in. Each key of a time or global window has an event-time timer (the
// KeyedProcessOperator's) at the first thing due for it: a window to fire (at end - 1), or state
// past the allowed lateness to drop. At a watermark W the key's first timer does everything of
// the key due by W in one read of its list and sets the next timer. Rows behind the watermark
// but within the allowed lateness fire their windows again right after their batch, as
// window.cc does.
#include <algorithm>
#include <cstring>
#include <memory>
#include <numeric>
#include <optional>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

#include "operators/join_state.h"
#include "sabot/base/arith.h"
#include "sabot/base/bytes.h"
#include "sabot/columnar/builder.h"
#include "sabot/operators/keyed_process.h"
#include "sabot/state/snapshot.h"
#include "sabot/state/value_bytes.h"
#include "window_state.h"

namespace sabot::operators::internal {

namespace {

using columnar::Array;
using columnar::RecordBatch;
using columnar::SchemaPtr;
using compute::GroupedAccumulator;
using runtime::OperatorContext;
using runtime::Output;
using Accumulators = std::vector<std::unique_ptr<GroupedAccumulator>>;

const state::ListStateDescriptor<std::string> kPanes{"panes"};
const state::ListStateDescriptor<std::string> kSessions{"sessions"};
const state::ListStateDescriptor<std::string> kGlobal{"global"};
const state::ListStateDescriptor<std::string> kCounted{"counted"};
const state::ValueStateDescriptor<int64_t> kCount{"count"};

constexpr uint16_t kStateVersion = 1;

// What the pane and session drivers share: the pre-aggregation buffer of (key, tag) groups and
// its writing into the key's list, the timer pass of a watermark, and the output of fired
// windows. The list entries are [header][the group's serialize_groups bytes, accumulator after
// accumulator]; the header is the subclass's.
class BufferedWindowDriver : public KeyedProcessDriver {
 public:
  BufferedWindowDriver(std::shared_ptr<const WindowPlan> plan, const int64_t* watermark,
                       const state::ListStateDescriptor<std::string>& list)
      : plan_(std::move(plan)),
        wm_(watermark),
        lateness_(plan_->opts.allowed_lateness.count()),
        list_descriptor_(list) {}

  Status open(KeyedProcessScope* scope, const OperatorContext&) override {
    scope_ = scope;
    backend_ = scope->backend;
    SABOT_ASSIGN_OR_RETURN(list_, backend_->get_state(list_descriptor_));
    SABOT_ASSIGN_OR_RETURN(buffer_accs_, make_window_accumulators(*plan_));
    SABOT_ASSIGN_OR_RETURN(partials_, make_window_accumulators(*plan_));
    return Status::ok();
  }

  // Where take_output() emits: the Output of the operator call in progress.
  void set_output(Output* out) { out_ = out; }

  Status process_rows(const RecordBatch& keyed, std::span<const state::KeyId> ids) override {
    // A window without keys gets its rows with a constant key column appended
    // (KeyedWindowOperator): the accumulators see the input's columns only.
    const RecordBatch batch =
        plan_->key_indices.empty()
            ? RecordBatch::make_unchecked(
                  plan_->input,
                  std::vector<Array>(keyed.columns().begin(), keyed.columns().end() - 1),
                  keyed.num_rows())
            : keyed;
    // Global windows have no time column.
    const int64_t* t =
        plan_->time_index >= 0 ? event_times_ms(*plan_, batch, &time_scratch_) : nullptr;
    const auto n = static_cast<size_t>(batch.num_rows());
    row_groups_.resize(n);
    for (size_t i = 0; i < n; ++i) {
      const uint32_t k = ids[i];
      const int64_t time = t != nullptr ? t[i] : 0;
      const int64_t tag = tag_of(k, time);
      bool new_group = false;
      row_groups_[i] = table_.find_or_insert(k, tag, [&] {
        group_key_.push_back(k);
        group_tag_.push_back(tag);
        new_group = true;
        return static_cast<uint32_t>(group_key_.size() - 1);
      });
      add_row(k, time, row_groups_[i], new_group);
    }
    for (auto& a : buffer_accs_) a->resize(static_cast<uint32_t>(group_key_.size()));
    SABOT_RETURN_IF_ERROR(feed_.update(*plan_, buffer_accs_, batch, row_groups_));
    buffered_rows_ += n;
    SABOT_RETURN_IF_ERROR(after_rows());
    if (!write_now_ && group_key_.size() < kMaxBufferedGroups &&
        (!plan_->process || buffered_rows_ < kMaxBufferedRows)) {
      return Status::ok();
    }
    SABOT_RETURN_IF_ERROR(write_buffer());
    write_now_ = false;
    return after_written_now();
  }

  // Appends each buffered group to its key's list and empties the buffer. Before anything reads
  // the lists: a firing, an early firing, a snapshot, forgetting keys.
  Status write_buffer() {
    const auto groups = static_cast<uint32_t>(group_key_.size());
    if (groups == 0) return Status::ok();
    for (uint32_t g = 0; g < groups; ++g) {
      backend_->prefetch_ahead(group_key_, g);
      entry_.clear();
      ByteWriter w(&entry_);
      put_header(g, w);
      for (const auto& a : buffer_accs_) a->serialize_groups(std::span<const uint32_t>(&g, 1), w);
      const state::KeyId k = group_key_[g];
      backend_->set_current_key(k);
      list_->add(entry_);
      // A key that gets rows in every buffer would grow its list by an entry each time (without
      // bound for a global window): every kCompactAfter appends its entries are merged.
      if (appended_.size() <= k) appended_.resize(k + 1, 0);
      if (++appended_[k] >= kCompactAfter) {
        appended_[k] = 0;
        SABOT_RETURN_IF_ERROR(compact());
      }
    }
    table_.clear();
    group_key_.clear();
    group_tag_.clear();
    buffered_rows_ = 0;
    cleared_buffer();
    SABOT_ASSIGN_OR_RETURN(buffer_accs_, make_window_accumulators(*plan_));
    return Status::ok();
  }

  Status before_forgetting_keys() override {
    SABOT_RETURN_IF_ERROR(write_buffer());
    appended_.clear();  // by KeyId, which forgetting renumbers
    return Status::ok();
  }

  // Writes the buffer if a watermark at `t` fires a timer; starts the watermark's pass.
  Status before_watermark(int64_t t) {
    ++pass_;
    if (scope_->event_timers.empty() || scope_->event_timers.begin()->first > t) {
      return Status::ok();
    }
    return write_buffer();
  }

  // The scope's key's first timer of a watermark W: does everything of the key due by W in one
  // read of its list and sets the timer of what is due next (the timer is at the first thing
  // due: nothing of the key is due before it). Later timers of the key in the same pass find
  // nothing to do.
  Status on_timer(Timestamp time) override {
    const state::KeyId key = scope_->key;
    if (handled_.size() <= key) handled_.resize(key + 1, 0);
    if (handled_[key] == pass_) return Status::ok();
    handled_[key] = pass_;
    return settle(key, time.millis(), scope_->watermark.millis());
  }

  // Emits the windows read since the last call, in one batch.
  Result<std::optional<RecordBatch>> take_output() override {
    SABOT_RETURN_IF_ERROR(emit_read_windows(true));
    return std::optional<RecordBatch>();
  }

  // Early firing: the windows that have not fired, as they stand, marked not final.
  Status fire_early(Output& out) {
    out_ = &out;
    SABOT_RETURN_IF_ERROR(write_buffer());
    SABOT_ASSIGN_OR_RETURN(std::vector<state::KeyId> keys, keys_with_windows());
    for (state::KeyId key : keys) {
      backend_->set_current_key(key);
      SABOT_RETURN_IF_ERROR(read_open_windows(key));
    }
    return emit_read_windows(false);
  }

 protected:
  // The buffer group of `key`'s next row, at `t` (rows come in order).
  virtual int64_t tag_of(state::KeyId key, int64_t t) = 0;
  // Row at `t` of `key` went into buffer group `g` (made for it when `new_group`). A new group
  // sets a timer of its key, which also keeps the key in the registry until the group is written.
  virtual void add_row(state::KeyId key, int64_t t, uint32_t g, bool new_group) = 0;
  // The entry header of buffer group g.
  virtual void put_header(uint32_t g, ByteWriter& w) const = 0;
  virtual void cleared_buffer() {}
  // After a batch's rows are in the buffer.
  virtual Status after_rows() { return Status::ok(); }
  // After the buffer was written because write_now_ was set (rows behind the watermark, a count
  // window complete): fire what the batch changed.
  virtual Status after_written_now() = 0;
  // The keys with state, increasing: every key with state has a timer, but for count windows.
  virtual Result<std::vector<state::KeyId>> keys_with_windows() {
    std::vector<state::KeyId> keys;
    for (const auto& [time, key] : scope_->event_timers) keys.push_back(key);
    std::sort(keys.begin(), keys.end());
    keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
    return keys;
  }
  // With `key` current: fires its windows due from `from` to `wm`, drops what is past the
  // allowed lateness at `wm`, sets the key's next timer.
  virtual Status settle(state::KeyId key, int64_t from, int64_t wm) = 0;
  // With `key` current: adds its windows that have not fired to the next output.
  virtual Status read_open_windows(state::KeyId key) = 0;
  // With a key current: rewrites its list with the entries of one pane (one session, ...) merged.
  virtual Status compact() = 0;

  // The partials merged into one, written to `w`.
  Status write_merged(std::span<const std::string_view> partials, ByteWriter& w) {
    SABOT_ASSIGN_OR_RETURN(Accumulators parts, make_window_accumulators(*plan_));
    SABOT_ASSIGN_OR_RETURN(Accumulators one, make_window_accumulators(*plan_));
    const auto n = static_cast<uint32_t>(partials.size());
    for (auto& a : parts) a->resize(n);
    for (auto& a : one) a->resize(1);
    for (uint32_t i = 0; i < n; ++i) SABOT_RETURN_IF_ERROR(read_partial(partials[i], parts, i));
    const std::vector<uint32_t> to_one(n, 0);
    const uint32_t g = 0;
    for (size_t a = 0; a < one.size(); ++a) {
      SABOT_RETURN_IF_ERROR(one[a]->merge(*parts[a], to_one));
      one[a]->serialize_groups(std::span<const uint32_t>(&g, 1), w);
    }
    return Status::ok();
  }
  // compact() of lists whose entries are [`header_bytes` naming what they belong to][partial]:
  // the entries with equal headers merged into one, in the order of their first entries (the
  // order in which a firing merges them, which first and last aggregates see).
  Status compact_by_header(size_t header_bytes) {
    std::vector<std::pair<std::string_view, std::vector<std::string_view>>> partials;
    std::unordered_map<std::string_view, size_t> index_of;
    for (const std::string& e : list_->get()) {
      if (e.size() < header_bytes) return Status::invalid_data("window state: short entry");
      const std::string_view header = std::string_view(e).substr(0, header_bytes);
      auto [it, added] = index_of.try_emplace(header, partials.size());
      if (added) partials.emplace_back(header, std::vector<std::string_view>{});
      partials[it->second].second.push_back(std::string_view(e).substr(header_bytes));
    }
    kept_.clear();
    for (const auto& [header, parts] : partials) {
      std::string& entry = kept_.emplace_back(header);
      ByteWriter w(&entry);
      if (parts.size() == 1) {
        w.put_raw(parts[0].data(), parts[0].size());
      } else {
        SABOT_RETURN_IF_ERROR(write_merged(parts, w));
      }
    }
    list_->update(std::move(kept_));
    return Status::ok();
  }

  // Adds a window of `key` to the next output; add_partial() adds the partials merged into it.
  uint32_t add_window_row(state::KeyId key, int64_t start, int64_t end) {
    fire_key_.push_back(key);
    fire_start_.push_back(start);
    fire_end_.push_back(end);
    return static_cast<uint32_t>(fire_key_.size() - 1);
  }
  Status add_partial(std::string_view partial, uint32_t row) {
    const auto g = static_cast<uint32_t>(partial_row_.size());
    for (auto& a : partials_) a->resize(g + 1);
    SABOT_RETURN_IF_ERROR(read_partial(partial, partials_, g));
    partial_row_.push_back(row);
    return Status::ok();
  }
  // Deserializes an entry's partial into group g of `accs`.
  static Status read_partial(std::string_view partial, Accumulators& accs, uint32_t g) {
    ByteReader r(partial, "window state");
    for (auto& a : accs) {
      SABOT_RETURN_IF_ERROR(a->deserialize_groups(r, std::span<const uint32_t>(&g, 1)));
    }
    return r.expect_end();
  }

  // The buffer is written when it holds this many groups (or, for a window function, rows).
  static constexpr size_t kMaxBufferedGroups = size_t{1} << 16;
  static constexpr size_t kMaxBufferedRows = size_t{1} << 16;
  static constexpr uint16_t kCompactAfter = 8;

  std::shared_ptr<const WindowPlan> plan_;
  const int64_t* wm_;  // the operator's watermark
  const int64_t lateness_;
  KeyedProcessScope* scope_ = nullptr;
  state::KeyedStateBackend* backend_ = nullptr;
  state::ListState<std::string>* list_ = nullptr;
  bool write_now_ = false;  // write the buffer after this batch (see after_written_now)
  std::vector<state::KeyId> group_key_;
  std::vector<int64_t> group_tag_;
  Accumulators buffer_accs_;
  std::string entry_;
  std::vector<std::string> kept_;

 private:
  Status emit_read_windows(bool is_final) {
    const auto rows = static_cast<uint32_t>(fire_key_.size());
    if (rows == 0) return Status::ok();
    SABOT_ASSIGN_OR_RETURN(Accumulators result, make_window_accumulators(*plan_));
    for (size_t a = 0; a < result.size(); ++a) {
      result[a]->resize(rows);
      SABOT_RETURN_IF_ERROR(result[a]->merge(*partials_[a], partial_row_));
    }
    std::vector<Array> key_columns;
    if (!plan_->key_indices.empty()) {  // a window without keys has its one constant key
      const state::KeyRegistry& keys = backend_->keys();
      std::vector<std::unique_ptr<columnar::ArrayBuilder>> builders;
      for (const auto& type : keys.key_types()) builders.push_back(columnar::make_builder(type));
      for (state::KeyId k : fire_key_) {
        SABOT_RETURN_IF_ERROR(state::append_values(keys.key_bytes(k), keys.key_types(), builders));
      }
      for (auto& b : builders) key_columns.push_back(b->finish());
    }
    Status st = emit_window_rows(*plan_, std::move(key_columns), fire_start_, fire_end_, result,
                                 is_final, *out_);
    fire_key_.clear();
    fire_start_.clear();
    fire_end_.clear();
    partial_row_.clear();
    SABOT_ASSIGN_OR_RETURN(partials_, make_window_accumulators(*plan_));
    return st;
  }

  const state::ListStateDescriptor<std::string>& list_descriptor_;
  Output* out_ = nullptr;

  // The pre-aggregation buffer: (key, tag) -> group.
  PaneTable table_;
  AccumulatorFeed feed_;
  size_t buffered_rows_ = 0;

  // Per key: the last watermark pass (numbered by before_watermark) whose timers it has had, and
  // the entries appended since its list was last compacted.
  std::vector<uint32_t> handled_;
  std::vector<uint16_t> appended_;
  uint32_t pass_ = 1;

  // Windows read for the next output: row r is (fire_key_[r], [fire_start_[r], fire_end_[r])),
  // group g of partials_ belongs to row partial_row_[g].
  std::vector<state::KeyId> fire_key_;
  std::vector<int64_t> fire_start_, fire_end_;
  std::vector<uint32_t> partial_row_;
  Accumulators partials_;

  std::vector<int64_t> time_scratch_;
  std::vector<uint32_t> row_groups_;
};

// Tumbling and sliding windows: a buffer group per (key, pane); entries [i64 pane start][partial]
// in the key's list "panes". The key's timer is at the first window over its panes to fire (at
// end - 1) or, when all have, at the first drop time of a pane (its last window's end - 1 +
// allowed lateness).
class PaneDriver final : public BufferedWindowDriver {
 public:
  PaneDriver(std::shared_ptr<const WindowPlan> plan, const int64_t* watermark)
      : BufferedWindowDriver(std::move(plan), watermark, kPanes),
        size_(plan_->opts.spec.size.count()),
        slide_(plan_->opts.spec.slide.count()),
        pane_(std::gcd(size_, slide_)) {}

 private:
  int64_t tag_of(state::KeyId, int64_t t) override { return floor_div(t, pane_) * pane_; }
  void add_row(state::KeyId key, int64_t t, uint32_t g, bool new_group) override {
    if (new_group) scope_->event_timers.emplace(next_due(group_tag_[g], *wm_), key);
    if (t <= *wm_) {
      // Behind the watermark: the windows containing it that fired fire again for the key.
      for (int64_t start = floor_div(t, slide_) * slide_; start > t - size_; start -= slide_) {
        if (start + size_ - 1 <= *wm_) refire_.emplace_back(start + size_, key);
      }
      write_now_ = true;
    }
  }
  void put_header(uint32_t g, ByteWriter& w) const override { w.put<int64_t>(group_tag_[g]); }
  Status compact() override { return compact_by_header(sizeof(int64_t)); }

  Status after_written_now() override {
    std::sort(refire_.begin(), refire_.end());
    refire_.erase(std::unique(refire_.begin(), refire_.end()), refire_.end());
    for (auto [end, key] : refire_) {
      backend_->set_current_key(key);
      SABOT_RETURN_IF_ERROR(add_window(key, list_->get(), end - size_, end));
    }
    refire_.clear();
    return Status::ok();
  }

  Status settle(state::KeyId key, int64_t from, int64_t wm) override {
    std::span<const std::string> entries = list_->get();
    ends_.clear();
    for (const std::string& e : entries) {
      const int64_t pane = pane_of(e);
      for (int64_t s = floor_div(pane, slide_) * slide_; s > pane - size_; s -= slide_) {
        if (s + size_ - 1 >= from && s + size_ - 1 <= wm) ends_.push_back(s + size_);
      }
    }
    std::sort(ends_.begin(), ends_.end());
    ends_.erase(std::unique(ends_.begin(), ends_.end()), ends_.end());
    for (int64_t end : ends_) SABOT_RETURN_IF_ERROR(add_window(key, entries, end - size_, end));
    int64_t next = INT64_MAX;
    kept_.clear();
    bool dropped = false;
    for (const std::string& e : entries) {
      const int64_t pane = pane_of(e);
      if (drop_time(pane) <= wm) {
        dropped = true;
        continue;
      }
      next = std::min(next, next_due(pane, wm));
      kept_.push_back(e);
    }
    if (dropped) list_->update(std::move(kept_));
    if (next != INT64_MAX) scope_->event_timers.emplace(next, key);
    return Status::ok();
  }

  Status read_open_windows(state::KeyId key) override {
    std::span<const std::string> entries = list_->get();
    ends_.clear();
    for (const std::string& e : entries) {
      const int64_t pane = pane_of(e);
      for (int64_t s = floor_div(pane, slide_) * slide_; s > pane - size_; s -= slide_) {
        if (s + size_ - 1 > *wm_) ends_.push_back(s + size_);
      }
    }
    std::sort(ends_.begin(), ends_.end());
    ends_.erase(std::unique(ends_.begin(), ends_.end()), ends_.end());
    for (int64_t end : ends_) SABOT_RETURN_IF_ERROR(add_window(key, entries, end - size_, end));
    return Status::ok();
  }

  static int64_t pane_of(std::string_view entry) {
    int64_t pane = 0;
    std::memcpy(&pane, entry.data(), sizeof(pane));
    return pane;
  }
  // When `pane` goes: once its last window is past the allowed lateness.
  int64_t drop_time(int64_t pane) const {
    return sat_add(floor_div(pane, slide_) * slide_ + size_ - 1, lateness_);
  }
  // The first time after `after` something is due for `pane`: a window over it to fire (at its
  // end - 1) or, when all have, its drop time.
  int64_t next_due(int64_t pane, int64_t after) const {
    int64_t due = drop_time(pane);
    for (int64_t s = floor_div(pane, slide_) * slide_; s > pane - size_; s -= slide_) {
      if (s + size_ - 1 > after) due = std::min(due, s + size_ - 1);
    }
    return due;
  }

  // Adds the window [start, end) of `key` to the next output if any of its panes (`entries`, the
  // key's list) has data in it.
  // The partials go in pane order, each pane's in the order they were written, as window.cc
  // merges a window's panes (first and last aggregates see it).
  Status add_window(state::KeyId key, std::span<const std::string> entries, int64_t start,
                    int64_t end) {
    in_window_.clear();
    for (size_t i = 0; i < entries.size(); ++i) {
      const int64_t pane = pane_of(entries[i]);
      if (pane >= start && pane < end) in_window_.emplace_back(pane, i);
    }
    if (in_window_.empty()) return Status::ok();
    std::sort(in_window_.begin(), in_window_.end());
    const uint32_t row = add_window_row(key, start, end);
    for (const auto& [pane, i] : in_window_) {
      SABOT_RETURN_IF_ERROR(add_partial(std::string_view(entries[i]).substr(sizeof(int64_t)), row));
    }
    return Status::ok();
  }

  const int64_t size_, slide_, pane_;
  std::vector<std::pair<int64_t, size_t>> in_window_;     // (pane, entry index), scratch
  std::vector<std::pair<int64_t, state::KeyId>> refire_;  // (end, key)
  std::vector<int64_t> ends_;
};

// Session windows: a buffer group per (key, gap-wide span of time), since rows of one span are
// less than a gap apart and so in one session; entries [i64 start][i64 end][u8 fired][partial] in
// the key's list "sessions" (start the earliest row, end the latest + gap). Reading a list merges
// overlapping entries into the key's sessions (a session has fired when all its entries have); a
// settled list holds one entry per session. The key's timer is at the end - 1 of its first
// session to fire or, when all have, at the first drop time (end - 1 + allowed lateness).
class SessionDriver final : public BufferedWindowDriver {
 public:
  SessionDriver(std::shared_ptr<const WindowPlan> plan, const int64_t* watermark)
      : BufferedWindowDriver(std::move(plan), watermark, kSessions),
        gap_(plan_->opts.spec.gap.count()) {}

 private:
  struct Entry {
    int64_t start;
    int64_t end;
    bool fired;
    std::string_view partial;
  };
  struct Session {
    int64_t start;
    int64_t end;
    bool fired;    // all its entries have
    size_t first;  // its entries are order_[first, last)
    size_t last;
  };
  static constexpr size_t kHeaderBytes = 2 * sizeof(int64_t) + 1;

  int64_t tag_of(state::KeyId, int64_t t) override { return floor_div(t, gap_); }
  void add_row(state::KeyId key, int64_t t, uint32_t g, bool new_group) override {
    if (new_group) {
      group_min_.push_back(t);
      group_max_.push_back(t);
      scope_->event_timers.emplace(sat_add(t, gap_) - 1, key);
    } else {
      group_min_[g] = std::min(group_min_[g], t);
      group_max_[g] = std::max(group_max_[g], t);
    }
    if (sat_add(t, gap_) - 1 <= *wm_) {
      // Its session ends behind the watermark: it fires again as soon as the row is in.
      late_keys_.push_back(key);
      write_now_ = true;
    }
  }
  void put_header(uint32_t g, ByteWriter& w) const override {
    w.put<int64_t>(group_min_[g]);
    w.put<int64_t>(sat_add(group_max_[g], gap_));
    w.put<uint8_t>(0);
  }
  void cleared_buffer() override {
    group_min_.clear();
    group_max_.clear();
  }

  Status after_written_now() override {
    std::sort(late_keys_.begin(), late_keys_.end());
    late_keys_.erase(std::unique(late_keys_.begin(), late_keys_.end()), late_keys_.end());
    for (state::KeyId key : late_keys_) {
      backend_->set_current_key(key);
      SABOT_RETURN_IF_ERROR(settle(key, INT64_MIN, *wm_));
    }
    late_keys_.clear();
    return Status::ok();
  }

  // The current key's entries, merged into sessions ordered by start.
  Status read_sessions() {
    entries_.clear();
    for (const std::string& e : list_->get()) {
      if (e.size() < kHeaderBytes) return Status::invalid_data("window state: short session entry");
      Entry x{};
      std::memcpy(&x.start, e.data(), sizeof(int64_t));
      std::memcpy(&x.end, e.data() + sizeof(int64_t), sizeof(int64_t));
      x.fired = e[2 * sizeof(int64_t)] != 0;
      x.partial = std::string_view(e).substr(kHeaderBytes);
      entries_.push_back(x);
    }
    order_.resize(entries_.size());
    for (size_t i = 0; i < order_.size(); ++i) order_[i] = i;
    std::sort(order_.begin(), order_.end(),
              [&](size_t a, size_t b) { return entries_[a].start < entries_[b].start; });
    sessions_.clear();
    for (size_t i = 0; i < order_.size(); ++i) {
      const Entry& x = entries_[order_[i]];
      if (!sessions_.empty() && x.start < sessions_.back().end) {
        Session& cur = sessions_.back();
        cur.end = std::max(cur.end, x.end);
        cur.fired = cur.fired && x.fired;
        cur.last = i + 1;
      } else {
        sessions_.push_back(Session{x.start, x.end, x.fired, i, i + 1});
      }
    }
    return Status::ok();
  }

  Status add_session(state::KeyId key, const Session& s) {
    const uint32_t row = add_window_row(key, s.start, s.end);
    for (size_t i = s.first; i < s.last; ++i) {
      SABOT_RETURN_IF_ERROR(add_partial(entries_[order_[i]].partial, row));
    }
    return Status::ok();
  }

  // Fires the sessions that end by `wm` and have not fired, drops those past the allowed
  // lateness, and writes the list back as one entry per session when that changed it.
  Status settle(state::KeyId key, int64_t, int64_t wm) override {
    SABOT_RETURN_IF_ERROR(read_sessions());
    bool changed = sessions_.size() != entries_.size();
    int64_t next = INT64_MAX;
    for (Session& s : sessions_) {
      if (!s.fired && s.end - 1 <= wm) {
        SABOT_RETURN_IF_ERROR(add_session(key, s));
        s.fired = true;
        changed = true;
      }
    }
    kept_.clear();
    for (const Session& s : sessions_) {
      if (s.end - 1 <= sat_sub(wm, lateness_)) {
        changed = true;
        continue;
      }
      next = std::min(next, s.fired ? sat_add(s.end - 1, lateness_) : s.end - 1);
      SABOT_RETURN_IF_ERROR(keep_session(s));
    }
    if (changed) list_->update(std::move(kept_));
    if (next != INT64_MAX) scope_->event_timers.emplace(next, key);
    return Status::ok();
  }

  // Adds the session's entry to kept_: its entries' partials merged.
  Status keep_session(const Session& s) {
    std::string& entry = kept_.emplace_back();
    ByteWriter w(&entry);
    w.put<int64_t>(s.start);
    w.put<int64_t>(s.end);
    w.put<uint8_t>(s.fired ? 1 : 0);
    parts_.clear();
    for (size_t i = s.first; i < s.last; ++i) parts_.push_back(entries_[order_[i]].partial);
    if (parts_.size() == 1) {
      w.put_raw(parts_[0].data(), parts_[0].size());
      return Status::ok();
    }
    return write_merged(parts_, w);
  }

  Status compact() override {
    SABOT_RETURN_IF_ERROR(read_sessions());
    if (sessions_.size() == entries_.size()) return Status::ok();
    kept_.clear();
    for (const Session& s : sessions_) SABOT_RETURN_IF_ERROR(keep_session(s));
    list_->update(std::move(kept_));
    return Status::ok();
  }

  Status read_open_windows(state::KeyId key) override {
    SABOT_RETURN_IF_ERROR(read_sessions());
    for (const Session& s : sessions_) {
      if (!s.fired) SABOT_RETURN_IF_ERROR(add_session(key, s));
    }
    return Status::ok();
  }

  const int64_t gap_;
  std::vector<int64_t> group_min_, group_max_;  // per buffer group: its rows' times
  std::vector<state::KeyId> late_keys_;
  std::vector<Entry> entries_;
  std::vector<size_t> order_;  // entries_ by start
  std::vector<Session> sessions_;
  std::vector<std::string_view> parts_;
};

// Global windows: a buffer group per key; entries [partial] in the key's list "global". The key's
// timer is at the end of time: its window fires (and goes) at the end of input.
class GlobalDriver final : public BufferedWindowDriver {
 public:
  GlobalDriver(std::shared_ptr<const WindowPlan> plan, const int64_t* watermark)
      : BufferedWindowDriver(std::move(plan), watermark, kGlobal) {}

 private:
  int64_t tag_of(state::KeyId, int64_t) override { return 0; }
  void add_row(state::KeyId key, int64_t, uint32_t, bool new_group) override {
    if (new_group) scope_->event_timers.emplace(INT64_MAX, key);
  }
  void put_header(uint32_t, ByteWriter&) const override {}
  Status compact() override { return compact_by_header(0); }
  Status after_written_now() override { return Status::ok(); }
  Status settle(state::KeyId key, int64_t, int64_t) override {
    SABOT_RETURN_IF_ERROR(read_open_windows(key));
    list_->clear();
    return Status::ok();
  }
  Status read_open_windows(state::KeyId key) override {
    std::span<const std::string> entries = list_->get();
    if (entries.empty()) return Status::ok();
    const uint32_t row = add_window_row(key, INT64_MIN, INT64_MIN);
    for (const std::string& e : entries) SABOT_RETURN_IF_ERROR(add_partial(e, row));
    return Status::ok();
  }
};

// Count windows: the elements of a key counted in the value state "count"; a buffer group per
// (key, pane of gcd(size, slide) elements); entries [i64 pane index][partial] in the key's list
// "counted". A window fires on its last element, inside its batch: the buffer is written after
// that batch and the window read from the list; panes that the key's next window does not cover
// go. No timers (nothing waits for time); every key keeps its count, as in window.cc.
class CountDriver final : public BufferedWindowDriver {
 public:
  CountDriver(std::shared_ptr<const WindowPlan> plan, const int64_t* watermark)
      : BufferedWindowDriver(std::move(plan), watermark, kCounted),
        size_(plan_->opts.spec.count),
        slide_(plan_->opts.spec.count_slide),
        pane_(std::gcd(size_, slide_)) {}

  Status open(KeyedProcessScope* scope, const OperatorContext& ctx) override {
    SABOT_RETURN_IF_ERROR(BufferedWindowDriver::open(scope, ctx));
    SABOT_ASSIGN_OR_RETURN(count_, backend_->get_state(kCount));
    return Status::ok();
  }

 private:
  int64_t tag_of(state::KeyId key, int64_t) override {
    auto [it, first] = batch_counts_.try_emplace(key, 0);
    if (first) {
      backend_->set_current_key(key);
      it->second = count_->value().value_or(0);
    }
    const int64_t c = it->second++;
    if ((c + 1) % slide_ == 0) {
      fires_.emplace_back(key, c + 1);
      write_now_ = true;
    }
    return c / pane_;
  }
  void add_row(state::KeyId, int64_t, uint32_t, bool) override {}
  void put_header(uint32_t g, ByteWriter& w) const override { w.put<int64_t>(group_tag_[g]); }
  Status compact() override { return compact_by_header(sizeof(int64_t)); }

  Status after_rows() override {
    for (const auto& [key, count] : batch_counts_) {
      backend_->set_current_key(key);
      count_->update(count);
    }
    batch_counts_.clear();
    return Status::ok();
  }

  // The windows completed in the batch, in row order: each the last `size` elements before its
  // end; then the panes the next window of the key (ending `slide` later) does not cover go.
  Status after_written_now() override {
    for (const auto& [key, end] : fires_) {
      backend_->set_current_key(key);
      std::span<const std::string> entries = list_->get();
      const uint32_t row = add_window_row(key, INT64_MIN, INT64_MIN);
      kept_.clear();
      for (const std::string& e : entries) {
        const int64_t index = pane_of(e);
        if (index * pane_ >= end - size_ && index * pane_ < end) {
          SABOT_RETURN_IF_ERROR(add_partial(std::string_view(e).substr(sizeof(int64_t)), row));
        }
        if ((index + 1) * pane_ > end + slide_ - size_) kept_.push_back(e);
      }
      if (kept_.size() != entries.size()) list_->update(std::move(kept_));
    }
    fires_.clear();
    return Status::ok();
  }

  Status settle(state::KeyId, int64_t, int64_t) override { return Status::ok(); }

  // The window that fires next: the elements up to the next multiple of slide.
  Status read_open_windows(state::KeyId key) override {
    std::span<const std::string> entries = list_->get();
    if (entries.empty()) return Status::ok();
    const int64_t next_end = (count_->value().value_or(0) / slide_ + 1) * slide_;
    const uint32_t row = add_window_row(key, INT64_MIN, INT64_MIN);
    for (const std::string& e : entries) {
      if (pane_of(e) * pane_ >= next_end - size_) {
        SABOT_RETURN_IF_ERROR(add_partial(std::string_view(e).substr(sizeof(int64_t)), row));
      }
    }
    return Status::ok();
  }

  Result<std::vector<state::KeyId>> keys_with_windows() override {
    return backend_->keys_with_state(kCounted.name, state::kDefaultNamespace);
  }

  static int64_t pane_of(std::string_view entry) {
    int64_t index = 0;
    std::memcpy(&index, entry.data(), sizeof(index));
    return index;
  }

  const int64_t size_, slide_, pane_;
  state::ValueState<int64_t>* count_ = nullptr;
  std::unordered_map<state::KeyId, int64_t> batch_counts_;  // this batch's keys: count so far
  std::vector<std::pair<state::KeyId, int64_t>> fires_;     // (key, end): windows complete
};

// Snapshot (state type kKeyedWindowStateType, version 1): write_wrapped_keyed_snapshot's section
// with the watermark as its value, the keyed process operator's snapshot (the panes and the
// timers; full or incremental RocksDB) and, after it, the i64 next early-firing time (INT64_MIN:
// none).
class KeyedWindowOperator final : public WrapsKeyedProcessOperator<runtime::Operator> {
 public:
  KeyedWindowOperator(std::shared_ptr<const WindowPlan> plan, const OperatorContext& ctx,
                      std::unique_ptr<state::KeyedStateBackend> backend)
      : plan_(std::move(plan)), ctx_(ctx), lateness_(plan_->opts.allowed_lateness.count()) {
    std::unique_ptr<BufferedWindowDriver> driver;
    if (plan_->opts.spec.kind == WindowSpec::Kind::kSession) {
      driver = std::make_unique<SessionDriver>(plan_, &wm_);
    } else if (plan_->opts.spec.kind == WindowSpec::Kind::kGlobal) {
      driver = std::make_unique<GlobalDriver>(plan_, &wm_);
    } else if (plan_->opts.spec.kind == WindowSpec::Kind::kCount) {
      driver = std::make_unique<CountDriver>(plan_, &wm_);
    } else {
      driver = std::make_unique<PaneDriver>(plan_, &wm_);
    }
    driver_ = driver.get();
    std::vector<int> key_columns = plan_->key_indices;
    if (key_columns.empty()) {
      // A window without keys (parallelism 1) keys every row by a constant appended column.
      constant_key_.emplace(plan_->input);
      key_columns.push_back(constant_key_->key_index());
    }
    keyed_ = std::make_unique<KeyedProcessOperator>(std::move(driver), std::move(key_columns),
                                                    std::move(backend), ctx);
  }

  Status open(const OperatorContext& ctx) override {
    ctx_ = ctx;
    if (plan_->opts.early_fire_every && next_early_ == INT64_MIN) {
      next_early_ = ctx_.clock->now().millis() + plan_->opts.early_fire_every->count();
    }
    return keyed_->open(ctx);
  }

  int64_t state_keys() const override { return keyed_->num_keys(); }

  Status process_batch(const RecordBatch& input, int, Output& out) override {
    if (input.num_rows() > 0) {
      RecordBatch batch = input;
      if (plan_->time_index >= 0) {  // global windows have no time column
        const int64_t* times = event_times_ms(*plan_, input, &time_scratch_);
        SABOT_ASSIGN_OR_RETURN(
            batch, remove_late_rows(*plan_, input, times, sat_sub(wm_, lateness_), ctx_, out));
      }
      if (batch.num_rows() > 0) {
        if (constant_key_) batch = constant_key_->append(batch);
        driver_->set_output(&out);
        SABOT_RETURN_IF_ERROR(keyed_->process_batch(batch, 0, out));
      }
    }
    return maybe_fire_early(out);
  }

  Status process_watermark(Timestamp time, Output& out) override {
    wm_ = std::max(wm_, time.millis());
    // The fired windows, then the early firing, then the watermark, as window.cc emits them.
    RowsOnly rows(out);
    driver_->set_output(&rows);
    SABOT_RETURN_IF_ERROR(driver_->before_watermark(time.millis()));
    SABOT_RETURN_IF_ERROR(keyed_->process_watermark(time, rows));
    SABOT_RETURN_IF_ERROR(maybe_fire_early(out));
    return out.emit_watermark(time);
  }

  Status finish(Output& out) override {
    if (wm_ == INT64_MAX) return Status::ok();
    wm_ = INT64_MAX;
    RowsOnly rows(out);
    driver_->set_output(&rows);
    SABOT_RETURN_IF_ERROR(driver_->before_watermark(INT64_MAX));
    return keyed_->process_watermark(Timestamp::max(), rows);
  }

  Status snapshot_state(CheckpointId id, std::string* out) override {
    SABOT_RETURN_IF_ERROR(driver_->write_buffer());
    return snapshot_wrapped(
        ctx_, kKeyedWindowStateType, kStateVersion, static_cast<uint64_t>(wm_), id, out,
        std::string_view(reinterpret_cast<const char*>(&next_early_), sizeof(next_early_)));
  }

  // Adds the owned key groups' panes and timers; the watermark and the next early firing are the
  // minimum over the snapshots restored.
  Status restore_state(std::string_view data) override {
    auto header = state::SnapshotReader::peek_header(data);
    if (header.is_ok() && header->state_type == "window") {
      return Status::invalid_argument(
          state::describe_snapshot(ctx_.uid, "window") +
          " holds a window's state as the memory backend keeps it, in the operator; on this "
          "backend keyed tumbling and sliding windows keep it in the backend: restore it with "
          "the memory state backend");
    }
    SABOT_ASSIGN_OR_RETURN(
        state::SnapshotReader reader,
        state::SnapshotReader::open(data, ctx_.uid, kKeyedWindowStateType, kStateVersion,
                                    static_cast<uint32_t>(ctx_.max_parallelism)));
    for (size_t i = 0; i < reader.sections().size(); ++i) {
      ByteReader r = reader.section_reader(i);
      if (reader.sections()[i].key_group != state::kOperatorWide) {
        return r.invalid("a key-group section");
      }
      SABOT_ASSIGN_OR_RETURN(WrappedKeyedSnapshot w,
                             read_wrapped_keyed_snapshot(r, sizeof(int64_t)));
      int64_t next_early = 0;
      std::memcpy(&next_early, w.trailing.data(), sizeof(next_early));
      next_early_ = restored_ ? std::min(next_early_, next_early) : next_early;
      merge_watermark(static_cast<int64_t>(w.value), &restored_, &wm_);
      SABOT_RETURN_IF_ERROR(keyed_->restore_state(w.keyed));
    }
    return Status::ok();
  }

 private:
  Status maybe_fire_early(Output& out) {
    if (!plan_->opts.early_fire_every) return Status::ok();
    const int64_t now = ctx_.clock->now().millis();
    if (now < next_early_) return Status::ok();
    next_early_ = now + plan_->opts.early_fire_every->count();
    return driver_->fire_early(out);
  }

  std::shared_ptr<const WindowPlan> plan_;
  OperatorContext ctx_;
  const int64_t lateness_;
  int64_t wm_ = INT64_MIN;
  int64_t next_early_ = INT64_MIN;
  bool restored_ = false;                          // see merge_watermark
  BufferedWindowDriver* driver_;                   // owned by keyed_
  std::optional<ConstantKeyColumn> constant_key_;  // a window without key columns
  std::vector<int64_t> time_scratch_;
};

}  // namespace

Result<std::unique_ptr<runtime::Operator>> make_keyed_window_operator(
    std::shared_ptr<const WindowPlan> plan, const OperatorContext& ctx) {
  std::vector<columnar::DataType> key_types;
  for (int i : plan->key_indices) key_types.push_back(plan->input->field(i).type);
  if (key_types.empty()) key_types.push_back(columnar::int32());  // the constant key
  SABOT_ASSIGN_OR_RETURN(auto backend, make_keyed_backend(ctx, std::move(key_types)));
  return std::unique_ptr<runtime::Operator>(
      new KeyedWindowOperator(std::move(plan), ctx, std::move(backend)));
}

}  // namespace sabot::operators::internal
