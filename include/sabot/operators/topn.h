// Top-N per key: the N rows with the largest (or smallest) value of an order column for every key,
// emitted when the input ends, with a 1-based `rank` column appended. Ties keep the row that
// arrived first; rows whose order value is null are not ranked. Only the current candidates are
// kept (at most N rows per key), as keyed state on the job's state backend
// (OperatorContext::state_backend): in memory, or in RocksDB, where they may be larger than memory
// and checkpoint incrementally. Each batch costs one read (and, when a row makes the cut, one
// write) per key it holds. Snapshots (state type "top-n", version 2) nest the keyed state's, so
// restore works at any parallelism and keeps the tie order; version 1 snapshots (the candidates as
// Arrow IPC rows per key group) still restore.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "sabot/runtime/plan.h"

namespace sabot::operators {

struct TopNOptions {
  // Rank within each key (use on a key_by stream); empty: over the whole stream (parallelism 1).
  std::vector<std::string> key_columns{};
  // int32, int64, uint64, float64 or timestamp.
  std::string order_column{};
  // Rows kept per key, >= 1.
  int64_t n = 1;
  // true: largest values first.
  bool descending = true;
};

std::shared_ptr<const runtime::OperatorFactory> top_n(TopNOptions options);

}  // namespace sabot::operators
