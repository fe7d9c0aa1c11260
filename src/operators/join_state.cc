#include "operators/join_state.h"

#include "sabot/base/check.h"
#include "sabot/base/time_unit.h"
#include "sabot/columnar/builder.h"
#include "sabot/columnar/ipc.h"
#include "sabot/compute/selection.h"
#include "sabot/runtime/metrics.h"

namespace sabot::operators::internal {

using columnar::DataType;
using columnar::Field;
using columnar::Schema;
using columnar::TypeId;

uint32_t RowStore::add(const RecordBatch& batch) {
  uint32_t id;
  if (!free_.empty()) {
    id = free_.back();
    free_.pop_back();
  } else {
    id = static_cast<uint32_t>(chunks_.size());
    chunks_.emplace_back();
  }
  Chunk& c = chunks_[id];
  c.batch = batch;
  c.live = 0;
  c.used = true;
  return id;
}

void RowStore::release(RowRef ref) {
  if (ref.chunk == RowRef::kNone) return;
  Chunk& c = chunks_[ref.chunk];
  SABOT_CHECK(c.live > 0);
  if (--c.live == 0) drop_if_unused(ref.chunk);
}

void RowStore::drop_if_unused(uint32_t chunk) {
  Chunk& c = chunks_[chunk];
  if (!c.used || c.live != 0) return;
  c.batch = RecordBatch();
  c.used = false;
  free_.push_back(chunk);
}

int64_t RowStore::live_rows() const {
  int64_t n = 0;
  for (const Chunk& c : chunks_) n += c.live;
  return n;
}

int64_t RowStore::live_chunks() const {
  int64_t n = 0;
  for (const Chunk& c : chunks_) n += c.used ? 1 : 0;
  return n;
}

void RowStore::serialize(std::string* out) const {
  ByteWriter w(out);
  w.put<uint32_t>(0x52535431);  // "RST1"
  w.put<uint64_t>(chunks_.size());
  std::vector<RecordBatch> batches;
  for (const Chunk& c : chunks_) {
    w.put<uint8_t>(c.used ? 1 : 0);
    w.put<int64_t>(c.live);
    batches.push_back(c.used ? c.batch : RecordBatch::make_empty(schema_));
  }
  auto bytes = columnar::write_ipc_stream(schema_, batches);
  SABOT_CHECK(bytes.is_ok());
  w.put_bytes(std::string_view(reinterpret_cast<const char*>(bytes->data()), bytes->size()));
}

Status RowStore::deserialize(ByteReader* in) {
  SABOT_RETURN_IF_ERROR(in->expect_magic(0x52535431));
  uint64_t n = 0;
  SABOT_RETURN_IF_ERROR(in->get(&n));
  std::vector<Chunk> chunks(n);
  for (Chunk& c : chunks) {
    uint8_t used = 0;
    SABOT_RETURN_IF_ERROR(in->get(&used));
    SABOT_RETURN_IF_ERROR(in->get(&c.live));
    c.used = used != 0;
  }
  std::string_view bytes;
  SABOT_RETURN_IF_ERROR(in->get_bytes(&bytes));
  SABOT_ASSIGN_OR_RETURN(auto read, columnar::read_ipc_stream(columnar::Buffer::copy_of(
                                        bytes.data(), static_cast<int64_t>(bytes.size()))));
  if (!(*read.first == *schema_) || read.second.size() != n) {
    return Status::invalid_data("row store snapshot does not match the schema {" +
                                schema_->to_string() + "}");
  }
  free_.clear();
  for (uint64_t i = 0; i < n; ++i) {
    if (chunks[i].used) {
      chunks[i].batch = std::move(read.second[i]);
    } else {
      free_.push_back(static_cast<uint32_t>(i));
    }
  }
  chunks_ = std::move(chunks);
  return Status::ok();
}

namespace {

template <typename T>
Array gather_fixed(const DataType& type, const std::vector<const Array*>& cols,
                   std::span<const RowRef> refs) {
  columnar::NumericBuilder<T> b(type);
  b.reserve(static_cast<int64_t>(refs.size()));
  for (const RowRef& r : refs) {
    if (r.chunk == RowRef::kNone) {
      b.append_null();
      continue;
    }
    const Array& a = *cols[r.chunk];
    if (a.is_null(r.row)) {
      b.append_null();
    } else {
      b.append(a.value<T>(r.row));
    }
  }
  return b.finish();
}

}  // namespace

Result<Array> gather_column(const RowStore& store, int col, std::span<const RowRef> refs) {
  const DataType type = store.schema()->field(col).type;
  std::vector<const Array*> cols;
  for (const RowRef& r : refs) {
    if (r.chunk == RowRef::kNone) continue;
    if (r.chunk >= cols.size()) cols.resize(r.chunk + 1, nullptr);
    if (!cols[r.chunk]) cols[r.chunk] = &store.batch(r.chunk).column(col);
  }
  switch (type.id()) {
    case TypeId::kInt32:
      return gather_fixed<int32_t>(type, cols, refs);
    case TypeId::kInt64:
    case TypeId::kTimestamp:
      return gather_fixed<int64_t>(type, cols, refs);
    case TypeId::kUInt64:
      return gather_fixed<uint64_t>(type, cols, refs);
    case TypeId::kFloat64:
      return gather_fixed<double>(type, cols, refs);
    case TypeId::kBool: {
      columnar::BooleanBuilder b;
      b.reserve(static_cast<int64_t>(refs.size()));
      for (const RowRef& r : refs) {
        if (r.chunk == RowRef::kNone || cols[r.chunk]->is_null(r.row)) {
          b.append_null();
        } else {
          b.append(cols[r.chunk]->bool_value(r.row));
        }
      }
      return b.finish();
    }
    case TypeId::kUtf8:
    case TypeId::kBinary: {
      columnar::BinaryBuilder b(type);
      b.reserve(static_cast<int64_t>(refs.size()));
      for (const RowRef& r : refs) {
        if (r.chunk == RowRef::kNone || cols[r.chunk]->is_null(r.row)) {
          b.append_null();
        } else {
          b.append(cols[r.chunk]->string_view(r.row));
        }
      }
      return b.finish();
    }
  }
  return Status::internal("gather: unhandled type " + type.to_string());
}

Status time_millis(const Array& times, std::vector<int64_t>* out) {
  const int64_t n = times.length();
  out->resize(static_cast<size_t>(n));
  if (n == 0) return Status::ok();
  const int64_t* v = times.values<int64_t>();
  int64_t* o = out->data();
  const DataType& t = times.type();
  to_millis(std::span<const int64_t>(v, static_cast<size_t>(n)),
            t.id() == TypeId::kTimestamp ? t.unit() : columnar::TimeUnit::kMilli, o);
  if (times.null_count() > 0) {
    for (int64_t i = 0; i < n; ++i) {
      if (times.is_null(i)) o[i] = kNullTime;
    }
  }
  return Status::ok();
}

Result<int> time_column(const Schema& schema, const std::string& name, const std::string& what) {
  int i = schema.field_index(name);
  if (i < 0) {
    return Status::invalid_argument(what + ": time column '" + name + "' not found in {" +
                                    schema.to_string() + "}");
  }
  const DataType& t = schema.field(i).type;
  if (t.id() != TypeId::kTimestamp && t.id() != TypeId::kInt64) {
    return Status::type_error(what + ": time column '" + name + "' is " + t.to_string() +
                              ", expected timestamp or int64 (milliseconds)");
  }
  return i;
}

Status handle_late(const RecordBatch& batch, const std::vector<int64_t>& times, int64_t threshold,
                   bool to_side, const std::string& tag, const runtime::OperatorContext& ctx,
                   runtime::Output& out, std::vector<int32_t>* keep) {
  keep->clear();
  const int64_t n = batch.num_rows();
  keep->reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    // kNullTime is INT64_MIN, so null times are always late.
    if (times[static_cast<size_t>(i)] > threshold || threshold == INT64_MIN) {
      if (times[static_cast<size_t>(i)] != kNullTime) keep->push_back(static_cast<int32_t>(i));
    }
  }
  const int64_t late = n - static_cast<int64_t>(keep->size());
  if (late == 0) return Status::ok();
  if (to_side) {
    std::vector<int32_t> late_rows;
    late_rows.reserve(static_cast<size_t>(late));
    size_t k = 0;
    for (int32_t i = 0; i < n; ++i) {
      if (k < keep->size() && (*keep)[k] == i) {
        ++k;
      } else {
        late_rows.push_back(i);
      }
    }
    SABOT_ASSIGN_OR_RETURN(RecordBatch lb, compute::take(batch, late_rows));
    return out.emit_side(tag, lb);
  }
  if (ctx.counters) ctx.counters->records_dropped.fetch_add(late, std::memory_order_relaxed);
  return Status::ok();
}

Result<std::vector<int>> key_columns(const Schema& schema, const std::vector<std::string>& names,
                                     const std::string& what, std::vector<DataType>* types) {
  if (names.empty()) return Status::invalid_argument(what + ": no key columns given");
  std::vector<int> cols;
  for (const std::string& n : names) {
    int i = schema.field_index(n);
    if (i < 0) {
      return Status::invalid_argument(what + ": key column '" + n + "' not found in {" +
                                      schema.to_string() + "}");
    }
    cols.push_back(i);
    types->push_back(schema.field(i).type);
  }
  return cols;
}

std::vector<Array> key_arrays(const RecordBatch& batch, const std::vector<int>& cols) {
  std::vector<Array> out;
  out.reserve(cols.size());
  for (int c : cols) out.push_back(batch.column(c));
  return out;
}

Result<SchemaPtr> join_schema(const Schema& left, const Schema& right,
                              const std::string& right_prefix, bool left_nullable,
                              bool right_nullable, const std::vector<Field>& extra) {
  std::vector<Field> fields;
  for (Field f : left.fields()) {
    if (left_nullable) f.nullable = true;
    fields.push_back(std::move(f));
  }
  auto taken = [&](const std::string& name) {
    for (const Field& f : fields) {
      if (f.name == name) return true;
    }
    for (const Field& f : extra) {
      if (f.name == name) return true;
    }
    return false;
  };
  for (Field f : right.fields()) {
    if (taken(f.name)) f.name = right_prefix + f.name;
    if (taken(f.name)) {
      return Status::invalid_argument("join output: right column '" + f.name +
                                      "' still clashes after adding prefix '" + right_prefix + "'");
    }
    if (right_nullable) f.nullable = true;
    fields.push_back(std::move(f));
  }
  for (const Field& f : extra) fields.push_back(f);
  return Schema::make(std::move(fields));
}

Result<RecordBatch> join_rows(const SchemaPtr& out_schema, const RowStore& left,
                              std::span<const RowRef> left_refs, const RowStore& right,
                              std::span<const RowRef> right_refs, std::vector<Array> extra) {
  SABOT_CHECK_EQ(left_refs.size(), right_refs.size());
  std::vector<Array> cols;
  cols.reserve(static_cast<size_t>(out_schema->num_fields()));
  for (int c = 0; c < left.schema()->num_fields(); ++c) {
    SABOT_ASSIGN_OR_RETURN(Array a, gather_column(left, c, left_refs));
    cols.push_back(std::move(a));
  }
  for (int c = 0; c < right.schema()->num_fields(); ++c) {
    SABOT_ASSIGN_OR_RETURN(Array a, gather_column(right, c, right_refs));
    cols.push_back(std::move(a));
  }
  for (Array& a : extra) cols.push_back(std::move(a));
  return RecordBatch::make_unchecked(out_schema, std::move(cols),
                                     static_cast<int64_t>(left_refs.size()));
}

}  // namespace sabot::operators::internal
