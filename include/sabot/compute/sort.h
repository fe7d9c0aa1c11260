// Sorting kernels: the row order of an array or batch by one or more keys, full sorts and top-n.
// Sorts are stable. Order: utf8/binary by bytes (unsigned), bool false < true, float64 NaN after
// every number in either direction, nulls first or last per key. Stateless and thread-safe.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "sabot/base/status.h"
#include "sabot/columnar/array.h"
#include "sabot/columnar/record_batch.h"

namespace sabot::compute {

struct SortKey {
  // Name of the column to sort by.
  std::string column;
  // Ascending (smallest first) or descending.
  bool ascending = true;
  // Whether nulls come before all values (true) or after them (false, the default).
  bool nulls_first = false;
};

// Row indices of `values` in sorted order; ties keep their input order.
Result<std::vector<int32_t>> sort_indices(const columnar::Array& values, bool ascending = true,
                                          bool nulls_first = false);
// Row indices of `batch` ordered by `keys` (the first key most significant); ties keep their input
// order. NotFound, listing the batch's columns, when a key names no column.
Result<std::vector<int32_t>> sort_indices(const columnar::RecordBatch& batch,
                                          std::span<const SortKey> keys);

// The batch with its rows in sorted order.
Result<columnar::RecordBatch> sort(const columnar::RecordBatch& batch,
                                   std::span<const SortKey> keys);
// The first `n` rows of the sorted order (all rows when n exceeds the batch), found by a partial
// sort. InvalidArgument when n is negative.
Result<columnar::RecordBatch> top_n(const columnar::RecordBatch& batch,
                                    std::span<const SortKey> keys, int64_t n);

}  // namespace sabot::compute
