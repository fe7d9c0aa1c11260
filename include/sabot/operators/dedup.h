// Deduplication (namespace sabot::operators): keeps the first row per key, forever or within an
// event-time TTL. A keyed operator: its input comes through key_by on the key columns. The factory
// is immutable and shared; each operator instance is driven by one thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sabot/runtime/plan.h"

namespace sabot::operators {

// Emits a row when its key has not been emitted before (in arrival order), immediately. With a
// time column and ttl_ms > 0, a key is forgotten once T = W - allowed_lateness >= t0 + ttl_ms,
// where t0 is the time of the row last emitted for the key; the next row of the key is emitted
// again. Late rows (time <= T, or null time) are dropped and counted, or sent to side output
// "late". Without a time column nothing is late and keys are kept forever. Watermarks pass
// through. Keys compare like compute::Grouper (null equals null). What it remembers per key is
// keyed state on the job's state backend (OperatorContext::state_backend): in memory, or in
// RocksDB, where it may be larger than memory and checkpoints incrementally.
struct DedupOptions {
  std::vector<std::string> keys;
  std::string time_column;  // empty: no event time
  int64_t ttl_ms = 0;       // <= 0: forever
  int64_t allowed_lateness_ms = 0;
  bool late_to_side_output = false;
};
std::shared_ptr<const runtime::OperatorFactory> deduplicate(DedupOptions options);

}  // namespace sabot::operators
