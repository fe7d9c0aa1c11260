// RecordBatch: a schema plus equal-length columns, the unit that moves through Sabot. Immutable and
// cheap to copy (a schema pointer and one handle per column); slices share buffers.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sabot/columnar/array.h"
#include "sabot/columnar/type.h"

namespace sabot::columnar {

class RecordBatch {
 public:
  // An empty batch with no columns.
  RecordBatch();
  // Checks column count, types and lengths against the schema; names the offending column.
  static Result<RecordBatch> make(SchemaPtr schema, std::vector<Array> columns);
  // For kernels that already guarantee the invariants (checked in debug builds).
  static RecordBatch make_unchecked(SchemaPtr schema, std::vector<Array> columns, int64_t num_rows);
  static RecordBatch make_empty(SchemaPtr schema);

  const Schema& schema() const { return *schema_; }
  const SchemaPtr& schema_ptr() const { return schema_; }
  int64_t num_rows() const { return num_rows_; }
  int num_columns() const { return static_cast<int>(columns_.size()); }
  const Array& column(int i) const { return columns_[static_cast<size_t>(i)]; }
  const std::vector<Array>& columns() const { return columns_; }
  // NotFound names the column and the batch's columns.
  Result<Array> column(std::string_view name) const;

  RecordBatch slice(int64_t offset, int64_t length) const;
  // The named columns in the given order.
  Result<RecordBatch> select(std::span<const std::string> names) const;

  bool equals(const RecordBatch& other) const;
  // A table with a header row; at most `max_rows` rows shown.
  std::string to_string(int64_t max_rows = 20) const;

 private:
  RecordBatch(SchemaPtr schema, std::vector<Array> columns, int64_t num_rows)
      : schema_(std::move(schema)), columns_(std::move(columns)), num_rows_(num_rows) {}
  SchemaPtr schema_;
  std::vector<Array> columns_;
  int64_t num_rows_ = 0;
};

// Appends arrays of one type into one new array.
Result<Array> concat(std::span<const Array> arrays);
// Appends batches with equal schemas into one batch.
Result<RecordBatch> concat(std::span<const RecordBatch> batches);

}  // namespace sabot::columnar
