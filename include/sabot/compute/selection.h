// Selection vectors, take and filter: the kernels that pick rows out of arrays and batches.
// A selection is a list of int32 row indices into a batch, built from a boolean mask with SQL WHERE
// semantics (null means "not selected"). The functions are stateless and thread-safe; a
// SelectionVector has one owner and is not thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "sabot/base/status.h"
#include "sabot/columnar/array.h"
#include "sabot/columnar/record_batch.h"

namespace sabot::compute {

// The row indices selected by a boolean mask, in increasing order. Owns one buffer that is reused
// across batches: assign_from_mask() allocates only when a mask is longer than any seen before, so
// an operator keeps one SelectionVector and rebuilds it per batch without allocating.
class SelectionVector {
 public:
  SelectionVector() = default;
  explicit SelectionVector(int64_t capacity) { reserve(capacity); }
  SelectionVector(SelectionVector&&) noexcept = default;
  SelectionVector& operator=(SelectionVector&&) noexcept = default;

  // Builds the selection from `mask` (type bool; rows where the mask is true and valid), honouring
  // the mask's offset. TypeError when the mask is not bool, InvalidArgument when it is longer than
  // int32 indices can address.
  static Result<SelectionVector> from_mask(const columnar::Array& mask);
  Status assign_from_mask(const columnar::Array& mask);

  // Ensures room for masks of `rows` rows without reallocating.
  void reserve(int64_t rows);
  void clear() { size_ = 0; }

  int64_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  int64_t capacity() const { return capacity_; }
  const int32_t* data() const { return storage_.get(); }
  int32_t operator[](int64_t i) const { return storage_[static_cast<size_t>(i)]; }
  std::span<const int32_t> indices() const { return {storage_.get(), static_cast<size_t>(size_)}; }

 private:
  std::unique_ptr<int32_t[]> storage_;  // capacity_ + slack entries; the kernel writes ahead
  int64_t capacity_ = 0;
  int64_t size_ = 0;
};

// Number of rows where `mask` is true and not null. TypeError when the mask is not bool.
Result<int64_t> count_selected(const columnar::Array& mask);

// Gathers values[indices[i]] for every i, for every type; nulls are preserved and the output has no
// validity bitmap when it holds no nulls. Indices are checked once: OutOfRange names the first bad
// index, its position and the array length.
Result<columnar::Array> take(const columnar::Array& values, std::span<const int32_t> indices);
// take() applied to every column.
Result<columnar::RecordBatch> take(const columnar::RecordBatch& batch,
                                   std::span<const int32_t> indices);

// The rows of `values` where `mask` is true (null counts as false). The mask must be bool and of
// the same length. An all-true mask returns the input itself (zero copy); an all-false mask returns
// an empty array of the same type.
Result<columnar::Array> filter(const columnar::Array& values, const columnar::Array& mask);
// filter() over every column: all-true returns the input batch, all-false an empty batch with the
// same schema.
Result<columnar::RecordBatch> filter(const columnar::RecordBatch& batch,
                                     const columnar::Array& mask);

}  // namespace sabot::compute
