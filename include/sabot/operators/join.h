// Two-input join operators (namespace sabot::operators): interval, stream-table, window, as-of and
// regular keyed hash join. Input 0 is the left side, input 1 the right side; in a plan both come
// through key_by (Partitioning::kHash) edges on the join keys so that equal keys meet in one
// subtask. Factories are immutable and shared; each operator instance is driven by one thread.
//
// Output schema: the left columns, then the right columns; a right column whose name clashes with
// a left column (or an added column) is renamed `right_prefix + name`. Columns of the missing side
// of an outer row are null (and declared nullable).
//
// Event time: the time column of each side is timestamp (any unit, converted to milliseconds) or
// int64 (milliseconds). With watermark W and allowed lateness L, a row whose time is <= W - L on
// arrival is late: it is dropped and added to counters->records_dropped, or, with
// late_to_side_output, emitted unchanged to side output "late_left" (input 0) or "late_right"
// (input 1). Rows with a null time are treated as late. Join keys compare like compute::Grouper
// (null equals null); both sides need the same key types.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sabot/runtime/plan.h"

namespace sabot::operators {

enum class JoinKind { kInner, kLeft, kRight, kFull };

// Options shared by every join.
struct JoinCommon {
  std::vector<std::string> left_keys;
  std::vector<std::string> right_keys;  // same count and types as left_keys
  std::string right_prefix = "right_";  // renames clashing right columns
};

struct EventTimeOptions {
  std::string left_time;
  std::string right_time;
  int64_t allowed_lateness_ms = 0;
  bool late_to_side_output = false;  // else dropped and counted
};

// Interval join: pairs with equal keys and left.time + lower_ms <= right.time <= left.time +
// upper_ms, emitted as soon as the second row of a pair arrives. State cleanup with T = W - L
// (every later row has time > T): a left row is unmatchable once left.time + upper_ms <= T, a
// right row once right.time - lower_ms <= T; such rows are removed on the watermark, and for outer
// kinds emitted with nulls then if they never matched. finish() emits every remaining never-matched
// outer row. The output watermark is held back to T - max(|lower_ms|, |upper_ms|) so that emitted
// rows are not late downstream (Timestamp::max() is forwarded as is).
struct IntervalJoinOptions {
  JoinCommon common;
  EventTimeOptions time;
  int64_t lower_ms = 0;
  int64_t upper_ms = 0;  // lower_ms <= upper_ms, both within +-2^50
  JoinKind kind = JoinKind::kInner;
};
std::shared_ptr<const runtime::OperatorFactory> interval_join(IntervalJoinOptions options);

// Stream-table join: the right input is a changelog (upsert) stream; the latest right row per key
// (in arrival order) is the table. Each left row is enriched with the current table row on arrival
// (kInner: dropped when the key is absent; kLeft: right columns null). A right row whose
// `right_delete_marker` column (bool, optional) is true deletes its key instead. The order between
// the two inputs is arrival order; no event time. Watermarks pass through.
struct StreamTableJoinOptions {
  JoinCommon common;
  JoinKind kind = JoinKind::kInner;  // kInner or kLeft
  std::string right_delete_marker;   // empty: none
};
std::shared_ptr<const runtime::OperatorFactory> stream_table_join(StreamTableJoinOptions options);

// Window join (inner): rows of both sides with equal keys in the same event-time window
// [start, start + size_ms) are joined when the window fires, i.e. when T = W - L >= end - 1.
// Tumbling when slide_ms == size_ms (or 0), sliding when slide_ms < size_ms (a row belongs to every
// window containing it; size_ms must be a multiple of slide_ms). Windows are aligned to the epoch.
// Output: left columns, right columns, then window_start and window_end (timestamp[ms]).
// finish() fires every remaining window.
struct WindowJoinOptions {
  JoinCommon common;
  EventTimeOptions time;
  int64_t size_ms = 0;
  int64_t slide_ms = 0;
  // Outer kinds emit, per window and key, the rows of one side when the other side had none.
  JoinKind kind = JoinKind::kInner;
};
std::shared_ptr<const runtime::OperatorFactory> window_join(WindowJoinOptions options);

// As-of join: for each left row, the right row with the same key and the greatest right.time <=
// left.time (ties: the one that arrived last), optionally with left.time - right.time <=
// tolerance_ms. A left row waits until T = W - L >= left.time (no right row that could still
// qualify can arrive after that), then is emitted (kInner: dropped without a match; kLeft: nulls).
// Right rows that can no longer be chosen by a pending or future left row are removed when their
// key gets a newer right row (so a key's rows are about those within the watermark's bound).
// finish() resolves every pending left row against what has arrived.
struct AsOfJoinOptions {
  JoinCommon common;
  EventTimeOptions time;
  int64_t tolerance_ms = -1;         // < 0: unlimited
  JoinKind kind = JoinKind::kInner;  // kInner or kLeft
};
std::shared_ptr<const runtime::OperatorFactory> asof_join(AsOfJoinOptions options);

// Regular (unbounded) keyed hash join: both sides are stored; each arriving row is joined with
// every stored row of the other side with the same key, then stored. With state_ttl_ms > 0 a
// stored row is removed state_ttl_ms after it arrived, by processing time (OperatorContext clock,
// checked on every batch and watermark). Outer kinds emit a never-matched row with nulls when it
// is removed by TTL and, for rows still stored, at finish(). Rows that matched are never emitted
// as outer rows. Watermarks pass through unchanged.
struct RegularJoinOptions {
  JoinCommon common;
  JoinKind kind = JoinKind::kInner;
  int64_t state_ttl_ms = 0;  // <= 0: keep forever
};
std::shared_ptr<const runtime::OperatorFactory> regular_join(RegularJoinOptions options);

}  // namespace sabot::operators

namespace sabot::operators {

// Implemented by every join and dedup operator made by these factories, for tests and metrics.
class StatefulOperator : public runtime::Operator {
 public:
  // The number of input rows currently buffered in its state (dedup: keys remembered).
  virtual int64_t buffered_rows() const = 0;
  // The number of keys in its key dictionary (the window join forgets keys no open window holds).
  virtual int64_t dictionary_keys() const = 0;
  // sabot_operator_state_keys: the key dictionary.
  int64_t state_keys() const override { return dictionary_keys(); }
};

}  // namespace sabot::operators
