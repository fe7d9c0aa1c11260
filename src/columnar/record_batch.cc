#include "sabot/columnar/record_batch.h"

#include <algorithm>

#include "sabot/base/check.h"
#include "sabot/columnar/builder.h"

namespace sabot::columnar {

RecordBatch::RecordBatch() : schema_(columnar::schema(std::vector<Field>{})) {}

Result<RecordBatch> RecordBatch::make(SchemaPtr schema, std::vector<Array> columns) {
  if (schema == nullptr) return Status::invalid_argument("record batch without a schema");
  if (static_cast<int>(columns.size()) != schema->num_fields()) {
    return Status::invalid_argument("record batch has " + std::to_string(columns.size()) +
                                    " columns but its schema has " +
                                    std::to_string(schema->num_fields()) + " fields");
  }
  int64_t rows = columns.empty() ? 0 : columns[0].length();
  for (size_t i = 0; i < columns.size(); ++i) {
    const Field& f = schema->field(static_cast<int>(i));
    if (!(columns[i].type() == f.type)) {
      return Status::type_error("column '" + f.name + "' is " + columns[i].type().to_string() +
                                " but the schema says " + f.type.to_string());
    }
    if (columns[i].length() != rows) {
      return Status::invalid_argument("column '" + f.name + "' has " +
                                      std::to_string(columns[i].length()) + " rows, column '" +
                                      schema->field(0).name + "' has " + std::to_string(rows));
    }
    if (!f.nullable && columns[i].null_count() > 0) {
      return Status::invalid_argument("column '" + f.name + "' is declared not null but has " +
                                      std::to_string(columns[i].null_count()) + " nulls");
    }
  }
  return RecordBatch(std::move(schema), std::move(columns), rows);
}

RecordBatch RecordBatch::make_unchecked(SchemaPtr schema, std::vector<Array> columns,
                                        int64_t num_rows) {
#ifndef NDEBUG
  SABOT_CHECK_EQ(static_cast<int>(columns.size()), schema->num_fields());
  for (const Array& c : columns) SABOT_CHECK_EQ(c.length(), num_rows);
#endif
  return RecordBatch(std::move(schema), std::move(columns), num_rows);
}

RecordBatch RecordBatch::make_empty(SchemaPtr schema) {
  std::vector<Array> columns;
  columns.reserve(static_cast<size_t>(schema->num_fields()));
  for (const Field& f : schema->fields()) columns.push_back(Array::make_empty(f.type));
  return RecordBatch(std::move(schema), std::move(columns), 0);
}

Result<Array> RecordBatch::column(std::string_view name) const {
  SABOT_ASSIGN_OR_RETURN(int i, schema_->require_field_index(name));
  return columns_[static_cast<size_t>(i)];
}

RecordBatch RecordBatch::slice(int64_t offset, int64_t length) const {
  SABOT_CHECK_GE(offset, 0);
  SABOT_CHECK_LE(offset + length, num_rows_);
  std::vector<Array> cols;
  cols.reserve(columns_.size());
  for (const Array& c : columns_) cols.push_back(c.slice(offset, length));
  return RecordBatch(schema_, std::move(cols), length);
}

Result<RecordBatch> RecordBatch::select(std::span<const std::string> names) const {
  std::vector<Field> fields;
  std::vector<Array> cols;
  for (const std::string& name : names) {
    SABOT_ASSIGN_OR_RETURN(int i, schema_->require_field_index(name));
    fields.push_back(schema_->field(i));
    cols.push_back(columns_[static_cast<size_t>(i)]);
  }
  SABOT_ASSIGN_OR_RETURN(SchemaPtr s, Schema::make(std::move(fields)));
  return RecordBatch(std::move(s), std::move(cols), num_rows_);
}

bool RecordBatch::equals(const RecordBatch& other) const {
  if (!(*schema_ == *other.schema_) || num_rows_ != other.num_rows_) return false;
  for (size_t i = 0; i < columns_.size(); ++i) {
    if (!columns_[i].equals(other.columns_[i])) return false;
  }
  return true;
}

std::string RecordBatch::to_string(int64_t max_rows) const {
  const int64_t shown = std::min(num_rows_, max_rows);
  const size_t ncols = columns_.size();
  std::vector<std::vector<std::string>> cells(ncols);
  std::vector<size_t> width(ncols);
  for (size_t c = 0; c < ncols; ++c) {
    const Field& f = schema_->field(static_cast<int>(c));
    cells[c].push_back(f.name);
    cells[c].push_back(f.type.to_string());
    for (int64_t r = 0; r < shown; ++r) {
      Scalar s = columns_[c].scalar_at(r);
      std::string text = s.to_string();
      if (s.is_valid && s.type.id() == TypeId::kUtf8) text = s.as_string();  // unquoted in tables
      if (text.size() > 40) text = text.substr(0, 37) + "...";
      cells[c].push_back(std::move(text));
    }
    for (const std::string& s : cells[c]) width[c] = std::max(width[c], s.size());
  }
  std::string out;
  auto line = [&](size_t row) {
    for (size_t c = 0; c < ncols; ++c) {
      if (c > 0) out += " | ";
      const std::string& s = cells[c][row];
      out += s;
      if (c + 1 < ncols) out.append(width[c] - s.size(), ' ');
    }
    out += '\n';
  };
  line(0);
  line(1);
  for (size_t c = 0; c < ncols; ++c) {
    if (c > 0) out += "-+-";
    out.append(width[c], '-');
  }
  out += '\n';
  for (int64_t r = 0; r < shown; ++r) line(static_cast<size_t>(r) + 2);
  if (shown < num_rows_) {
    out += "... ";
    out += std::to_string(num_rows_ - shown);
    out += " more rows\n";
  }
  // Appended piecewise: `"(" + std::to_string(...)` trips a GCC 12 -Wrestrict false positive.
  out += '(';
  out += std::to_string(num_rows_);
  out += " rows)\n";
  return out;
}

Result<Array> concat(std::span<const Array> arrays) {
  if (arrays.empty()) return Status::invalid_argument("concat of no arrays");
  const DataType type = arrays[0].type();
  int64_t total = 0;
  int64_t bytes = 0;
  for (size_t i = 0; i < arrays.size(); ++i) {
    if (!(arrays[i].type() == type)) {
      return Status::type_error("concat: array " + std::to_string(i) + " is " +
                                arrays[i].type().to_string() + ", array 0 is " + type.to_string());
    }
    total += arrays[i].length();
    if (type.is_var_length() && arrays[i].length() > 0) {
      bytes += arrays[i].offsets()[arrays[i].length()] - arrays[i].offsets()[0];
    }
  }
  if (bytes > INT32_MAX) {
    return Status::out_of_range("concat: " + std::to_string(bytes) +
                                " bytes of strings exceed the 2 GiB limit of int32 offsets");
  }
  if (arrays.size() == 1) return arrays[0];
  auto builder = make_builder(type);
  builder->reserve(total);
  if (type.is_var_length()) static_cast<BinaryBuilder*>(builder.get())->reserve_bytes(bytes);
  for (const Array& a : arrays) builder->append_array(a);
  return builder->finish();
}

Result<RecordBatch> concat(std::span<const RecordBatch> batches) {
  if (batches.empty()) return Status::invalid_argument("concat of no record batches");
  const SchemaPtr& schema = batches[0].schema_ptr();
  for (size_t i = 1; i < batches.size(); ++i) {
    if (!(batches[i].schema() == *schema)) {
      return Status::type_error("concat: batch " + std::to_string(i) +
                                " has a different schema from batch 0");
    }
  }
  std::vector<Array> cols;
  int64_t rows = 0;
  for (const RecordBatch& b : batches) rows += b.num_rows();
  std::vector<Array> parts(batches.size());
  for (int c = 0; c < schema->num_fields(); ++c) {
    for (size_t i = 0; i < batches.size(); ++i) parts[i] = batches[i].column(c);
    SABOT_ASSIGN_OR_RETURN(Array joined, concat(std::span<const Array>(parts)));
    cols.push_back(std::move(joined));
  }
  return RecordBatch::make_unchecked(schema, std::move(cols), rows);
}

}  // namespace sabot::columnar
