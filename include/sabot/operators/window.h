// Window operators: tumbling, sliding (pane-based), session, count and global windows over keyed or
// non-keyed streams, aggregated incrementally with the compute accumulators or user-defined
// aggregate functions, or handed whole to a window function. Factories are immutable and shared;
// each operator instance belongs to one subtask and is driven by one thread (no locking).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "sabot/columnar/record_batch.h"
#include "sabot/columnar/scalar.h"
#include "sabot/compute/aggregate.h"
#include "sabot/runtime/plan.h"

namespace sabot::operators {

struct WindowSpec {
  enum class Kind { kTumbling, kSliding, kSession, kCount, kGlobal };
  Kind kind = Kind::kGlobal;
  std::chrono::milliseconds size{0};   // tumbling, sliding
  std::chrono::milliseconds slide{0};  // sliding (tumbling: == size)
  std::chrono::milliseconds gap{0};    // session
  int64_t count = 0;                   // count windows: elements per window
  int64_t count_slide = 0;             // count windows: fire every count_slide elements

  // [k*size, (k+1)*size). Windows are aligned to the epoch.
  static WindowSpec tumbling(std::chrono::milliseconds size);
  // Windows of `size` starting every `slide`; records are aggregated once into panes of
  // gcd(size, slide) and a window merges its panes when it fires.
  static WindowSpec sliding(std::chrono::milliseconds size, std::chrono::milliseconds slide);
  // A record less than `gap` after the last record of a session (or less than `gap` before its
  // first) joins it; a record that bridges two sessions merges them. A session is
  // [first, last + gap).
  static WindowSpec session(std::chrono::milliseconds gap);
  // Per key: fires on every n-th element with the last n elements.
  static WindowSpec count_window(int64_t n);
  // Per key: fires on every `slide`-th element with the last n (fewer at the start) elements.
  static WindowSpec count_window(int64_t n, int64_t slide);
  // Per key: one window over the whole input, fired only at the end of input.
  static WindowSpec global_window();
};

enum class LatePolicy { kDrop, kSideOutput };

// A user-defined aggregate function over one input column (or none: `input_column` empty, `add`
// then gets a null scalar per row). The accumulator is an opaque byte string so that it is
// snapshotted as is. add() is called once per row (a std::function call per row: use the built-in
// compute aggregates where they suffice). merge(acc, other) adds `other`, which arrived later.
struct AggregateFunction {
  std::string output_name;
  std::string input_column;
  columnar::DataType output_type = columnar::int64();
  std::function<std::string()> create;
  std::function<void(std::string& acc, const columnar::Scalar& value)> add;
  std::function<void(std::string& acc, const std::string& other)> merge;
  std::function<columnar::Scalar(const std::string& acc)> result;
};

// An AggregateFunction whose accumulator is a trivially copyable `Acc` (stored as its bytes).
template <typename Acc>
AggregateFunction make_aggregate_function(std::string output_name, std::string input_column,
                                          columnar::DataType output_type, Acc initial,
                                          std::function<void(Acc&, const columnar::Scalar&)> add,
                                          std::function<void(Acc&, const Acc&)> merge,
                                          std::function<columnar::Scalar(const Acc&)> result) {
  static_assert(std::is_trivially_copyable_v<Acc>);
  // An accumulator of another size (only from a damaged snapshot) reads as far as it goes.
  auto load = [initial](const std::string& s) {
    Acc a = initial;
    std::memcpy(&a, s.data(), std::min(s.size(), sizeof(Acc)));
    return a;
  };
  auto store = [](std::string& s, const Acc& a) {
    s.assign(reinterpret_cast<const char*>(&a), sizeof(Acc));
  };
  AggregateFunction f;
  f.output_name = std::move(output_name);
  f.input_column = std::move(input_column);
  f.output_type = output_type;
  f.create = [initial, store] {
    std::string s;
    store(s, initial);
    return s;
  };
  f.add = [add, load, store](std::string& s, const columnar::Scalar& v) {
    Acc a = load(s);
    add(a, v);
    store(s, a);
  };
  f.merge = [merge, load, store](std::string& s, const std::string& o) {
    Acc a = load(s);
    merge(a, load(o));
    store(s, a);
  };
  f.result = [result, load](const std::string& s) { return result(load(s)); };
  return f;
}

struct WindowOptions {
  WindowSpec spec;
  // Empty: non-keyed, all rows in one window set; the operator then refuses parallelism > 1.
  std::vector<std::string> key_columns;
  // timestamp (any unit, converted to milliseconds) or int64 milliseconds. Required for time
  // windows (tumbling, sliding, session); ignored by count and global windows.
  std::string time_column;
  std::vector<compute::Aggregate> aggregates;
  // User-defined aggregates; their columns follow the built-in aggregates'.
  std::vector<AggregateFunction> functions;
  // A record is late when its time <= watermark - allowed_lateness. A record that is not late but
  // falls into windows that already fired updates them and they fire again (is_final true) with
  // the updated result. Window state is dropped once watermark - allowed_lateness >= end - 1.
  std::chrono::milliseconds allowed_lateness{0};
  LatePolicy late = LatePolicy::kDrop;  // kSideOutput: late rows go to side output "late"
  // Every this much processing time (OperatorContext::clock, checked whenever a batch or a
  // watermark arrives) the current results of all open time windows are emitted with
  // is_final = false. When set, the output has an extra last bool column `is_final` (true for
  // results emitted because the watermark passed the window end).
  std::optional<std::chrono::milliseconds> early_fire_every;
};

// Output columns: the key columns, window_start, window_end (timestamp[ms]; [start, end), null for
// count and global windows), one column per aggregate (Aggregate::resolved_name()), one per
// AggregateFunction, then `is_final` when early firing is on. Time windows fire when the watermark
// reaches window_end - 1; at end of input (watermark Timestamp::max()) everything fires.
std::shared_ptr<const runtime::OperatorFactory> window_aggregate(WindowOptions options);

// Where a window function is called: the key (one scalar per key column) and the window bounds
// (both null scalars' worth of INT64_MIN for count and global windows).
struct WindowInfo {
  std::vector<columnar::Scalar> key;
  int64_t start_ms = INT64_MIN;
  int64_t end_ms = INT64_MIN;
};

// Gets all rows of one (key, window) in arrival order (with the input schema) and returns rows of
// the declared output schema (any number, also none).
using WindowFunction = std::function<Result<columnar::RecordBatch>(
    const WindowInfo& window, const columnar::RecordBatch& rows)>;

// Buffers the rows of every window (options.aggregates/functions must be empty) and calls `fn`
// when a window fires. early_fire_every is not supported here.
std::shared_ptr<const runtime::OperatorFactory> window_process(WindowOptions options,
                                                               columnar::SchemaPtr output_schema,
                                                               WindowFunction fn);

}  // namespace sabot::operators
