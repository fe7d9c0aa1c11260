// Keyed tumbling and sliding windows whose panes live in the job's keyed state backend, so that on
// RocksDB a window's state may be larger than memory and checkpoints incrementally (window.cc keeps
// them in the operator's columns, which the memory backend does faster).
//
// Rows are pre-aggregated in memory per (key, pane) with the same columnar accumulators as
// window.cc, in a buffer of at most kMaxBufferedGroups groups. The buffer is written when it is
// full, after a batch with rows behind the watermark, and before anything reads the panes (a
// watermark that fires, an early firing, a snapshot, forgetting keys): each (key, pane)'s partial
// ([i64 pane start] then its group's serialize_groups bytes, accumulator after accumulator) is
// appended to the key's list state "panes", a write-cache append or a RocksDB merge, never a read.
// One list per key, not per (key, pane): a firing reads it once for all the window's panes and
// never looks up panes the key has no data in. Each key has an event-time timer (the
// KeyedProcessOperator's) at the first thing due: a window over its panes to fire (at end - 1),
// or panes whose last window is past the allowed lateness to drop. At a watermark W the key's
// first timer fires every window of the key due by W in one read of its list, drops what is due,
// and sets the next timer. Rows behind the watermark but within the allowed lateness refire their
// key's windows after their batch, as window.cc does.
#include <algorithm>
#include <cstring>
#include <memory>
#include <numeric>
#include <optional>
#include <set>
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
using compute::GroupedAccumulator;
using runtime::OperatorContext;
using runtime::Output;
using Accumulators = std::vector<std::unique_ptr<GroupedAccumulator>>;

const state::ListStateDescriptor<std::string> kPanes{"panes"};

constexpr uint16_t kStateVersion = 1;

class PaneDriver final : public KeyedProcessDriver {
 public:
  PaneDriver(std::shared_ptr<const WindowPlan> plan, const int64_t* watermark)
      : plan_(std::move(plan)),
        wm_(watermark),
        size_(plan_->opts.spec.size.count()),
        slide_(plan_->opts.spec.slide.count()),
        pane_(std::gcd(size_, slide_)),
        lateness_(plan_->opts.allowed_lateness.count()) {}

  Status open(KeyedProcessScope* scope, const OperatorContext&) override {
    scope_ = scope;
    backend_ = scope->backend;
    SABOT_ASSIGN_OR_RETURN(panes_, backend_->get_state(kPanes));
    SABOT_ASSIGN_OR_RETURN(buffer_accs_, make_window_accumulators(*plan_));
    SABOT_ASSIGN_OR_RETURN(partials_, make_window_accumulators(*plan_));
    return Status::ok();
  }

  // Where take_output() emits: the Output of the operator call in progress.
  void set_output(Output* out) { out_ = out; }

  Status process_rows(const RecordBatch& batch, std::span<const state::KeyId> ids) override {
    const int64_t* t = event_times_ms(*plan_, batch, &time_scratch_);
    const auto n = static_cast<size_t>(batch.num_rows());
    row_groups_.resize(n);
    for (size_t i = 0; i < n; ++i) {
      const int64_t pane = floor_div(t[i], pane_) * pane_;
      const uint32_t k = ids[i];
      row_groups_[i] = table_.find_or_insert(k, pane, [&] {
        group_key_.push_back(k);
        group_pane_.push_back(pane);
        // The timer also keeps the key in the registry until the partial is written.
        scope_->event_timers.emplace(next_due(pane, *wm_), k);
        return static_cast<uint32_t>(group_key_.size() - 1);
      });
      if (t[i] <= *wm_) note_refire(k, t[i]);
    }
    for (auto& a : buffer_accs_) a->resize(static_cast<uint32_t>(group_key_.size()));
    SABOT_RETURN_IF_ERROR(feed_.update(*plan_, buffer_accs_, batch, row_groups_));
    buffered_rows_ += n;
    if (refire_.empty() && group_key_.size() < kMaxBufferedGroups &&
        (!plan_->process || buffered_rows_ < kMaxBufferedRows)) {
      return Status::ok();
    }
    SABOT_RETURN_IF_ERROR(write_buffer());
    // Windows that fired already and got rows of this batch fire again for their key.
    std::sort(refire_.begin(), refire_.end());
    refire_.erase(std::unique(refire_.begin(), refire_.end()), refire_.end());
    for (auto [end, key] : refire_) {
      backend_->set_current_key(key);
      SABOT_RETURN_IF_ERROR(add_window(key, panes_->get(), end - size_, end));
    }
    refire_.clear();
    return Status::ok();
  }

  // Appends each buffered (key, pane)'s partial to the key's list and empties the buffer. Before
  // anything reads the lists: a firing, an early firing, a snapshot.
  Status write_buffer() {
    const auto groups = static_cast<uint32_t>(group_key_.size());
    if (groups == 0) return Status::ok();
    for (uint32_t g = 0; g < groups; ++g) {
      backend_->prefetch_ahead(group_key_, g);
      entry_.clear();
      ByteWriter w(&entry_);
      w.put<int64_t>(group_pane_[g]);
      for (const auto& a : buffer_accs_) a->serialize_groups(std::span<const uint32_t>(&g, 1), w);
      backend_->set_current_key(group_key_[g]);
      panes_->add(entry_);
    }
    table_.clear();
    group_key_.clear();
    group_pane_.clear();
    buffered_rows_ = 0;
    SABOT_ASSIGN_OR_RETURN(buffer_accs_, make_window_accumulators(*plan_));
    return Status::ok();
  }

  Status before_forgetting_keys() override { return write_buffer(); }

  // Writes the buffer if a watermark at `t` fires a timer; starts the watermark's pass.
  Status before_watermark(int64_t t) {
    ++pass_;
    if (scope_->event_timers.empty() || scope_->event_timers.begin()->first > t) {
      return Status::ok();
    }
    return write_buffer();
  }

  // The scope's key's first timer of a watermark W: fires the key's windows that end from
  // time + 1 to W + 1 and have data, drops the panes whose last window ended at or before
  // W + 1 - allowed lateness, and sets the timer of what is due next. One list read per key and
  // watermark, however many of its windows fire (the timer is at the first thing due: nothing of
  // the key is due before it).
  Status on_timer(Timestamp time) override {
    const state::KeyId key = scope_->key;
    if (handled_.size() <= key) handled_.resize(key + 1, 0);
    if (handled_[key] == pass_) return Status::ok();  // a later timer of the key, done already
    handled_[key] = pass_;
    const int64_t t = time.millis();
    const int64_t wm = scope_->watermark.millis();
    std::span<const std::string> entries = panes_->get();
    ends_.clear();
    for (const std::string& e : entries) {
      const int64_t pane = pane_of(e);
      for (int64_t s = floor_div(pane, slide_) * slide_; s > pane - size_; s -= slide_) {
        if (s + size_ - 1 >= t && s + size_ - 1 <= wm) ends_.push_back(s + size_);
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
    if (dropped) panes_->update(std::move(kept_));
    if (next != INT64_MAX) scope_->event_timers.emplace(next, key);
    return Status::ok();
  }

  // Emits the windows read since the last call, in one batch.
  Result<std::optional<RecordBatch>> take_output() override {
    SABOT_RETURN_IF_ERROR(emit_read_windows(true));
    return std::optional<RecordBatch>();
  }

  // Early firing: the windows that have not fired, as they stand, marked not final. Every key
  // with panes has a timer.
  Status fire_early(Output& out) {
    out_ = &out;
    SABOT_RETURN_IF_ERROR(write_buffer());
    std::vector<state::KeyId> keys;
    for (const auto& [time, key] : scope_->event_timers) keys.push_back(key);
    std::sort(keys.begin(), keys.end());
    keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
    std::set<int64_t> ends;
    for (state::KeyId key : keys) {
      backend_->set_current_key(key);
      std::span<const std::string> entries = panes_->get();
      ends.clear();
      for (const std::string& e : entries) {
        const int64_t pane = pane_of(e);
        for (int64_t s = floor_div(pane, slide_) * slide_; s > pane - size_; s -= slide_) {
          if (s + size_ - 1 > *wm_) ends.insert(s + size_);
        }
      }
      for (int64_t end : ends) SABOT_RETURN_IF_ERROR(add_window(key, entries, end - size_, end));
    }
    return emit_read_windows(false);
  }

 private:
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

  // A row at `t` behind the watermark: the windows containing it that fired fire again for `key`.
  void note_refire(state::KeyId key, int64_t t) {
    for (int64_t start = floor_div(t, slide_) * slide_; start > t - size_; start -= slide_) {
      const int64_t end = start + size_;
      if (end - 1 <= *wm_) refire_.emplace_back(end, key);
    }
  }

  // Adds the window [start, end) of `key` to the next output if any of its panes (`entries`, the
  // key's list) has data: each partial in it goes into a group of partials_ that take_output
  // merges into the window's row.
  Status add_window(state::KeyId key, std::span<const std::string> entries, int64_t start,
                    int64_t end) {
    const auto row = static_cast<uint32_t>(fire_key_.size());
    bool any = false;
    for (const std::string& e : entries) {
      const int64_t pane = pane_of(e);
      if (pane < start || pane >= end) continue;
      const auto g = static_cast<uint32_t>(partial_row_.size());
      for (auto& a : partials_) a->resize(g + 1);
      ByteReader r(std::string_view(e).substr(sizeof(int64_t)), "window pane");
      for (auto& a : partials_) {
        SABOT_RETURN_IF_ERROR(a->deserialize_groups(r, std::span<const uint32_t>(&g, 1)));
      }
      SABOT_RETURN_IF_ERROR(r.expect_end());
      partial_row_.push_back(row);
      any = true;
    }
    if (any) {
      fire_key_.push_back(key);
      fire_start_.push_back(start);
      fire_end_.push_back(end);
    }
    return Status::ok();
  }

  Status emit_read_windows(bool is_final) {
    const auto rows = static_cast<uint32_t>(fire_key_.size());
    if (rows == 0) return Status::ok();
    SABOT_ASSIGN_OR_RETURN(Accumulators result, make_window_accumulators(*plan_));
    for (size_t a = 0; a < result.size(); ++a) {
      result[a]->resize(rows);
      SABOT_RETURN_IF_ERROR(result[a]->merge(*partials_[a], partial_row_));
    }
    const state::KeyRegistry& keys = backend_->keys();
    std::vector<std::unique_ptr<columnar::ArrayBuilder>> builders;
    for (const auto& type : keys.key_types()) builders.push_back(columnar::make_builder(type));
    for (state::KeyId k : fire_key_) {
      SABOT_RETURN_IF_ERROR(state::append_values(keys.key_bytes(k), keys.key_types(), builders));
    }
    std::vector<Array> key_columns;
    for (auto& b : builders) key_columns.push_back(b->finish());
    Status st = emit_window_rows(*plan_, std::move(key_columns), fire_start_, fire_end_, result,
                                 is_final, *out_);
    fire_key_.clear();
    fire_start_.clear();
    fire_end_.clear();
    partial_row_.clear();
    SABOT_ASSIGN_OR_RETURN(partials_, make_window_accumulators(*plan_));
    return st;
  }

  std::shared_ptr<const WindowPlan> plan_;
  const int64_t* wm_;  // the operator's watermark
  const int64_t size_, slide_, pane_, lateness_;
  KeyedProcessScope* scope_ = nullptr;
  state::KeyedStateBackend* backend_ = nullptr;
  state::ListState<std::string>* panes_ = nullptr;
  Output* out_ = nullptr;

  // The pre-aggregation buffer: (key, pane) -> group, written to the lists when it is full, when
  // rows came behind the watermark, and before a firing or a snapshot.
  static constexpr size_t kMaxBufferedGroups = size_t{1} << 16;
  static constexpr size_t kMaxBufferedRows = size_t{1} << 16;  // of a window function
  PaneTable table_;
  std::vector<state::KeyId> group_key_;
  std::vector<int64_t> group_pane_;
  Accumulators buffer_accs_;
  size_t buffered_rows_ = 0;
  AccumulatorFeed feed_;
  std::vector<std::pair<int64_t, state::KeyId>> refire_;  // (end, key)

  // Per key: the last watermark pass (numbered by before_watermark) whose timers it has had.
  std::vector<uint32_t> handled_;
  uint32_t pass_ = 1;

  // Windows read for the next output: row r is (fire_key_[r], [fire_start_[r], fire_end_[r])),
  // group g of partials_ belongs to row partial_row_[g].
  std::vector<state::KeyId> fire_key_;
  std::vector<int64_t> fire_start_, fire_end_;
  std::vector<uint32_t> partial_row_;
  Accumulators partials_;

  // Scratch.
  std::vector<int64_t> time_scratch_;
  std::vector<uint32_t> row_groups_;
  std::vector<int64_t> ends_;
  std::string entry_;
  std::vector<std::string> kept_;
};

// Passes rows on and holds watermarks back: finish() fires what is left without a watermark.
class RowsOnly final : public Output {
 public:
  explicit RowsOnly(Output& out) : out_(out) {}
  Status emit(const RecordBatch& batch) override { return out_.emit(batch); }
  Status emit_watermark(Timestamp) override { return Status::ok(); }
  Status emit_side(std::string_view tag, const RecordBatch& batch) override {
    return out_.emit_side(tag, batch);
  }

 private:
  Output& out_;
};

// Snapshot (state type kKeyedWindowStateType, version 1): write_wrapped_keyed_snapshot's section
// with the watermark as its value, the keyed process operator's snapshot (the panes and the
// timers; full or incremental RocksDB) and, after it, the i64 next early-firing time (INT64_MIN:
// none).
class KeyedWindowOperator final : public runtime::Operator {
 public:
  KeyedWindowOperator(std::shared_ptr<const WindowPlan> plan, const OperatorContext& ctx,
                      std::unique_ptr<state::KeyedStateBackend> backend)
      : plan_(std::move(plan)), ctx_(ctx), lateness_(plan_->opts.allowed_lateness.count()) {
    auto driver = std::make_unique<PaneDriver>(plan_, &wm_);
    driver_ = driver.get();
    keyed_ = std::make_unique<KeyedProcessOperator>(std::move(driver), plan_->key_indices,
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
      const int64_t* times = event_times_ms(*plan_, input, &time_scratch_);
      SABOT_ASSIGN_OR_RETURN(
          RecordBatch batch,
          remove_late_rows(*plan_, input, times, sat_sub(wm_, lateness_), ctx_, out));
      if (batch.num_rows() > 0) {
        driver_->set_output(&out);
        SABOT_RETURN_IF_ERROR(keyed_->process_batch(batch, 0, out));
      }
    }
    return maybe_fire_early(out);
  }

  Status process_watermark(Timestamp time, Output& out) override {
    wm_ = std::max(wm_, time.millis());
    driver_->set_output(&out);
    SABOT_RETURN_IF_ERROR(driver_->before_watermark(time.millis()));
    SABOT_RETURN_IF_ERROR(keyed_->process_watermark(time, out));
    return maybe_fire_early(out);
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
    std::string keyed;
    SABOT_RETURN_IF_ERROR(keyed_->snapshot_state(id, &keyed));
    write_wrapped_keyed_snapshot(
        ctx_, kKeyedWindowStateType, kStateVersion, static_cast<uint64_t>(wm_), keyed, out,
        std::string_view(reinterpret_cast<const char*>(&next_early_), sizeof(next_early_)));
    return Status::ok();
  }
  std::vector<checkpoint::SharedFile> take_shared_files() override {
    return keyed_->take_shared_files();
  }
  Status notify_checkpoint_complete(CheckpointId id) override {
    return keyed_->notify_checkpoint_complete(id);
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
  bool restored_ = false;  // see merge_watermark
  PaneDriver* driver_;     // owned by keyed_
  std::unique_ptr<KeyedProcessOperator> keyed_;
  std::vector<int64_t> time_scratch_;
};

}  // namespace

Result<std::unique_ptr<runtime::Operator>> make_keyed_window_operator(
    std::shared_ptr<const WindowPlan> plan, const OperatorContext& ctx) {
  std::vector<columnar::DataType> key_types;
  for (int i : plan->key_indices) key_types.push_back(plan->input->field(i).type);
  SABOT_ASSIGN_OR_RETURN(auto backend, make_keyed_backend(ctx, std::move(key_types)));
  return std::unique_ptr<runtime::Operator>(
      new KeyedWindowOperator(std::move(plan), ctx, std::move(backend)));
}

}  // namespace sabot::operators::internal
