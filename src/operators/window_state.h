// Internal pieces of the window operators (window.cc keeps its state in operator memory,
// window_keyed.cc in the job's keyed state backend): the validated plan, the input and output steps
// both share, the (key, pane) -> slot hash table and the accumulators for user-defined aggregate
// functions and for buffered window rows. Single-owner, not thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sabot/compute/aggregate.h"
#include "sabot/operators/window.h"
#include "sabot/runtime/operator.h"

namespace sabot::operators::internal {

inline constexpr uint32_t kNone = UINT32_MAX;

inline bool is_time_kind(WindowSpec::Kind k) {
  return k == WindowSpec::Kind::kTumbling || k == WindowSpec::Kind::kSliding ||
         k == WindowSpec::Kind::kSession;
}

// Everything the factory validated, shared by the operators it creates.
struct WindowPlan {
  WindowOptions opts;
  columnar::SchemaPtr input;
  columnar::SchemaPtr output;
  std::vector<int> key_indices;
  int time_index = -1;
  std::vector<int> agg_columns;   // -1: no column (count_all)
  std::vector<int> func_columns;  // -1: no column
  bool process = false;
  columnar::SchemaPtr process_output;
  WindowFunction fn;
};

Result<std::shared_ptr<const WindowPlan>> make_window_plan(const WindowOptions& opts,
                                                           const columnar::SchemaPtr& input,
                                                           bool process,
                                                           columnar::SchemaPtr process_output,
                                                           WindowFunction fn);

// Fresh accumulators, one per aggregate and function (a row collector for a window function).
Result<std::vector<std::unique_ptr<compute::GroupedAccumulator>>> make_window_accumulators(
    const WindowPlan& plan);

// The event times of `batch` in milliseconds: the time column's values when they are, else
// converted into `scratch`.
const int64_t* event_times_ms(const WindowPlan& plan, const columnar::RecordBatch& batch,
                              std::vector<int64_t>* scratch);

// Rows at or behind `threshold` (watermark - allowed lateness) or without a time are late: they go
// to the "late" side output or are dropped, by the plan's policy, and are counted as dropped.
// Returns the other rows.
Result<columnar::RecordBatch> remove_late_rows(const WindowPlan& plan,
                                               const columnar::RecordBatch& batch,
                                               const int64_t* times, int64_t threshold,
                                               const runtime::OperatorContext& ctx,
                                               runtime::Output& out);

// Adds every row of a batch to the accumulators, row i to group groups[i] (one update per
// accumulator for the whole batch).
class AccumulatorFeed {
 public:
  Status update(const WindowPlan& plan,
                std::vector<std::unique_ptr<compute::GroupedAccumulator>>& accs,
                const columnar::RecordBatch& batch, std::span<const uint32_t> groups);

 private:
  columnar::Array row_index_;  // 0, 1, 2, ...: a window function's rows are their indices
  columnar::Array row_index_slice_;
};

// Emits the fired windows: row r is the window [start[r], end[r]) (null times for count and global
// windows) of the key in row r of `key_columns` (none without key columns), its values the
// finalized group r of `result`; for a window function, calls it per window and emits what it
// returns.
Status emit_window_rows(const WindowPlan& plan, std::vector<columnar::Array> key_columns,
                        std::span<const int64_t> start, std::span<const int64_t> end,
                        const std::vector<std::unique_ptr<compute::GroupedAccumulator>>& result,
                        bool is_final, runtime::Output& out);

// A window operator that keeps its state in the keyed state backend of `ctx` (window_keyed.cc):
// every kind of window (one without key columns keys its rows by an appended constant).
Result<std::unique_ptr<runtime::Operator>> make_keyed_window_operator(
    std::shared_ptr<const WindowPlan> plan, const runtime::OperatorContext& ctx);

// Open addressing with linear probing and backward-shift deletion, so that panes can be removed
// when their windows are done without tombstones piling up.
class PaneTable {
 public:
  PaneTable() { rehash(1024); }

  uint32_t find(uint32_t key, int64_t pane) const {
    size_t i = home(key, pane);
    while (true) {
      const Entry& e = entries_[i];
      if (e.slot == kNone) return kNone;
      if (e.key == key && e.pane == pane) return e.slot;
      i = (i + 1) & mask_;
    }
  }
  // The slot of (key, pane); when absent, inserts `make()`'s result.
  template <typename MakeSlot>
  uint32_t find_or_insert(uint32_t key, int64_t pane, MakeSlot&& make) {
    size_t i = home(key, pane);
    while (true) {
      Entry& e = entries_[i];
      if (e.slot == kNone) break;
      if (e.key == key && e.pane == pane) return e.slot;
      i = (i + 1) & mask_;
    }
    uint32_t slot = make();
    if ((size_ + 1) * 2 > entries_.size()) {
      rehash(entries_.size() * 2);
      insert(key, pane, slot);
    } else {
      entries_[i] = Entry{pane, key, slot};
      ++size_;
    }
    return slot;
  }
  void insert(uint32_t key, int64_t pane, uint32_t slot) {
    size_t i = home(key, pane);
    while (entries_[i].slot != kNone) i = (i + 1) & mask_;
    entries_[i] = Entry{pane, key, slot};
    ++size_;
  }
  void erase(uint32_t key, int64_t pane);
  // Forgets every entry (rehash keeps them, so clearing must not go through it).
  void clear() {
    entries_.assign(1024, Entry{0, 0, kNone});
    mask_ = 1023;
    size_ = 0;
  }
  size_t size() const { return size_; }
  // Room for `more` further entries without growing (restoring a snapshot inserts many at once).
  void reserve(size_t more) {
    size_t capacity = entries_.size();
    while ((size_ + more) * 2 > capacity) capacity *= 2;
    if (capacity != entries_.size()) rehash(capacity);
  }

 private:
  struct Entry {
    int64_t pane;
    uint32_t key;
    uint32_t slot;
  };
  size_t home(uint32_t key, int64_t pane) const {
    uint64_t h = static_cast<uint64_t>(pane) * 0x9E3779B97F4A7C15ull ^
                 (static_cast<uint64_t>(key) + 0x632BE59BD9B4E019ull) * 0xC2B2AE3D27D4EB4Full;
    h ^= h >> 32;
    return static_cast<size_t>(h) & mask_;
  }
  void rehash(size_t capacity);

  std::vector<Entry> entries_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

// Adapts an AggregateFunction to the GroupedAccumulator interface (one byte string per group).
class UdafAccumulator final : public compute::GroupedAccumulator {
 public:
  UdafAccumulator(const AggregateFunction& fn, columnar::DataType input_type, bool has_input);
  void resize(uint32_t num_groups) override;
  Status update(const columnar::Array& values, std::span<const uint32_t> group_ids) override;
  Status merge(const GroupedAccumulator& other, std::span<const uint32_t> other_to_this) override;
  Result<columnar::Array> finalize() const override;
  void serialize(std::string* out) const override;
  Status deserialize(std::string_view bytes) override;
  void serialize_groups(std::span<const uint32_t> groups, ByteWriter& w) const override;
  Status deserialize_groups(ByteReader& r, std::span<const uint32_t> groups) override;

 private:
  const AggregateFunction* fn_;
  bool has_input_;
  std::vector<std::string> accs_;
};

// Buffers rows per group for window functions. update() gets an int32 array of row indices into
// the batch set with set_batch().
class RowCollector final : public compute::GroupedAccumulator {
 public:
  explicit RowCollector(columnar::SchemaPtr schema);
  void set_batch(const columnar::RecordBatch* batch) { batch_ = batch; }
  void resize(uint32_t num_groups) override;
  Status update(const columnar::Array& values, std::span<const uint32_t> group_ids) override;
  Status merge(const GroupedAccumulator& other, std::span<const uint32_t> other_to_this) override;
  Result<columnar::Array> finalize() const override;
  void serialize(std::string* out) const override;
  Status deserialize(std::string_view bytes) override;
  void serialize_groups(std::span<const uint32_t> groups, ByteWriter& w) const override;
  Status deserialize_groups(ByteReader& r, std::span<const uint32_t> groups) override;
  // All rows of group g in arrival order.
  Result<columnar::RecordBatch> rows(uint32_t g) const;

 private:
  columnar::SchemaPtr schema_;
  const columnar::RecordBatch* batch_ = nullptr;
  std::vector<std::vector<columnar::RecordBatch>> parts_;
  std::vector<uint32_t> order_;  // scratch
};

}  // namespace sabot::operators::internal
