// Watermark strategies: how a source derives event time progress from a timestamp column. The
// source task tracks the largest timestamp per split (partition) and emits the minimum over the
// splits that are not idle; a split with no data for `idle_timeout` (processing time) stops holding
// time back until data returns.
//
// Watermark alignment (with_alignment): the source subtasks of one job whose strategies name the
// same group stop reading while their watermark is more than `max_drift` ahead of the group's
// lowest (finished and idle subtasks do not hold the group back; a subtask that has not emitted a
// watermark yet does). Sources whose streams meet downstream (a union, a join) then move through
// event time together, so what the ahead one reads does not wait in state for the behind one.
// Pausing a source changes no result, only when records are read. During a checkpoint's barrier
// alignment paused sources read on, so that a barrier is never held back by a paused source.
#pragma once

#include <chrono>
#include <string>

#include "sabot/base/ids.h"
#include "sabot/base/status.h"
#include "sabot/columnar/record_batch.h"

namespace sabot::runtime {

struct WatermarkStrategy {
  enum class Kind {
    kNone,                   // no watermarks (only the end of a bounded input advances time)
    kMonotonic,              // timestamps never decrease per split: watermark = max - 1
    kBoundedOutOfOrderness,  // records are at most `max_out_of_orderness` late: max - bound - 1
  };
  Kind kind = Kind::kNone;
  // timestamp (any unit) or int64 milliseconds.
  std::string timestamp_column{};
  std::chrono::milliseconds max_out_of_orderness{0};
  // A split without records for this long is idle; 0 disables idleness.
  std::chrono::milliseconds idle_timeout{0};
  // Watermark alignment group; empty: not aligned.
  std::string alignment_group{};
  // How far (event time) this source's watermark may run ahead of its group's lowest. >= 0.
  std::chrono::milliseconds max_drift{0};

  WatermarkStrategy with_idle_timeout(std::chrono::milliseconds t) const {
    WatermarkStrategy s = *this;
    s.idle_timeout = t;
    return s;
  }
  WatermarkStrategy with_alignment(std::string group, std::chrono::milliseconds drift) const {
    WatermarkStrategy s = *this;
    s.alignment_group = std::move(group);
    s.max_drift = drift;
    return s;
  }
};

inline WatermarkStrategy no_watermarks() { return {}; }
inline WatermarkStrategy monotonic_timestamps(std::string column) {
  return {WatermarkStrategy::Kind::kMonotonic, std::move(column), {}, {}, {}, {}};
}
inline WatermarkStrategy bounded_out_of_orderness(std::string column,
                                                  std::chrono::milliseconds bound) {
  return {WatermarkStrategy::Kind::kBoundedOutOfOrderness, std::move(column), bound, {}, {}, {}};
}

// Checks that the column exists and holds timestamps or int64, and that an aligned strategy has
// watermarks and a drift >= 0.
Status validate_watermark_strategy(const WatermarkStrategy& s, const columnar::Schema& schema);

// The event time of row i of a timestamp or int64 column, in milliseconds.
int64_t event_time_millis(const columnar::Array& column, int64_t i);
// The largest event time (ms) of the valid rows of a column; INT64_MIN when there is none.
int64_t max_event_time_millis(const columnar::Array& column);

}  // namespace sabot::runtime
