#include "operators/join_state.h"

#include "sabot/base/check.h"
#include "sabot/base/time_unit.h"
#include "sabot/columnar/builder.h"
#include "sabot/columnar/ipc.h"
#include "sabot/compute/hash.h"
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

state::SnapshotHeader snapshot_header(const runtime::OperatorContext& ctx,
                                      std::string_view state_type) {
  return state::SnapshotHeader{ctx.uid, std::string(state_type), kJoinStateVersion,
                               static_cast<uint32_t>(ctx.max_parallelism)};
}

void key_groups_of_keys(const compute::Grouper& grouper, const runtime::OperatorContext& ctx,
                        std::vector<uint32_t>* out) {
  std::vector<uint64_t> hashes;
  grouper.group_hashes(&hashes);
  out->resize(hashes.size());
  compute::key_groups(hashes, static_cast<uint32_t>(ctx.max_parallelism), *out);
}

SchemaPtr rows_schema(const Schema& rows, const std::vector<std::string>& meta) {
  std::vector<Field> fields = rows.fields();
  for (std::string m : meta) {
    while (rows.field_index(m) >= 0) m = "_" + m;  // never clash with an input column
    fields.push_back(columnar::field(m, columnar::int64(), false));
  }
  auto s = Schema::make(std::move(fields));
  SABOT_CHECK(s.is_ok());  // metadata names are the operator's own, never the input's
  return *s;
}

Array int64_array(std::span<const int64_t> values) {
  auto buf = columnar::Buffer::copy_of(values.data(),
                                       static_cast<int64_t>(values.size() * sizeof(int64_t)));
  auto a = Array::make(columnar::int64(), static_cast<int64_t>(values.size()), nullptr, buf);
  SABOT_CHECK(a.is_ok());
  return *a;
}

void put_rows(ByteWriter& w, const SchemaPtr& schema, std::vector<Array> columns,
              int64_t num_rows) {
  RecordBatch b = RecordBatch::make_unchecked(schema, std::move(columns), num_rows);
  auto bytes = columnar::write_ipc_stream(schema, {b});
  SABOT_CHECK(bytes.is_ok());  // batches of the operator's own schema always encode
  w.put_bytes(std::string_view(reinterpret_cast<const char*>(bytes->data()), bytes->size()));
}

Status put_store_rows(ByteWriter& w, const SchemaPtr& schema, const RowStore& store,
                      std::span<const RowRef> refs,
                      std::span<const std::vector<int64_t>* const> meta) {
  std::vector<Array> cols;
  cols.reserve(static_cast<size_t>(schema->num_fields()));
  for (int c = 0; c < store.schema()->num_fields(); ++c) {
    SABOT_ASSIGN_OR_RETURN(Array a, gather_column(store, c, refs));
    cols.push_back(std::move(a));
  }
  for (const std::vector<int64_t>* m : meta) {
    SABOT_CHECK_EQ(m->size(), refs.size());
    cols.push_back(int64_array(*m));
  }
  SABOT_CHECK_EQ(static_cast<int>(cols.size()), schema->num_fields());
  put_rows(w, schema, std::move(cols), static_cast<int64_t>(refs.size()));
  return Status::ok();
}

Result<RecordBatch> get_rows(ByteReader& r, const SchemaPtr& schema) {
  const size_t at = r.position();
  std::string_view bytes;
  SABOT_RETURN_IF_ERROR(r.get_bytes(&bytes));
  auto read = columnar::read_ipc_stream(
      columnar::Buffer::copy_of(bytes.data(), static_cast<int64_t>(bytes.size())));
  auto bad = [&](const std::string& msg) {
    return Status::invalid_data(std::string(r.what()) + ": " + msg + " at byte " +
                                std::to_string(at));
  };
  if (!read.is_ok()) return bad("buffered rows do not decode (" + read.status().message() + ")");
  if (!(*read->first == *schema) || read->second.size() != 1) {
    return bad("buffered rows are not one batch of {" + schema->to_string() + "}");
  }
  for (int c = 0; c < schema->num_fields(); ++c) {
    if (!schema->field(c).nullable && read->second[0].column(c).null_count() > 0) {
      return bad("buffered rows have nulls in column '" + schema->field(c).name + "'");
    }
  }
  return std::move(read->second[0]);
}

RecordBatch input_part(const RecordBatch& rows, const SchemaPtr& input) {
  std::vector<Array> cols(rows.columns().begin(), rows.columns().begin() + input->num_fields());
  return RecordBatch::make_unchecked(input, std::move(cols), rows.num_rows());
}

KeyGroupedRows::KeyGroupedRows(int max_parallelism, std::vector<int> meta_per_list)
    : meta_per_list_(std::move(meta_per_list)), groups_(static_cast<size_t>(max_parallelism)) {}

KeyGroupedRows::List& KeyGroupedRows::list_of(uint32_t key_group, int list) {
  std::vector<List>& g = groups_[key_group];
  if (g.empty()) {
    g.resize(meta_per_list_.size());
    for (size_t l = 0; l < g.size(); ++l) g[l].meta.resize(static_cast<size_t>(meta_per_list_[l]));
  }
  return g[static_cast<size_t>(list)];
}

Status KeyGroupedRows::write(state::SnapshotWriter& w, std::span<const RowStore* const> stores,
                             std::span<const SchemaPtr> schemas) const {
  for (size_t kg = 0; kg < groups_.size(); ++kg) {
    const std::vector<List>& g = groups_[kg];
    if (g.empty()) continue;
    ByteWriter& out = w.begin_section(static_cast<int32_t>(kg));
    for (size_t l = 0; l < g.size(); ++l) {
      std::vector<const std::vector<int64_t>*> meta;
      for (const std::vector<int64_t>& m : g[l].meta) meta.push_back(&m);
      SABOT_RETURN_IF_ERROR(put_store_rows(out, schemas[l], *stores[l], g[l].refs, meta));
    }
  }
  return Status::ok();
}

Status restore_sections(std::string_view bytes, const runtime::OperatorContext& ctx,
                        std::string_view state_type,
                        const std::function<Status(ByteReader&)>& operator_wide,
                        const std::function<Status(int32_t, ByteReader&)>& key_group) {
  SABOT_ASSIGN_OR_RETURN(state::SnapshotReader snap,
                         state::SnapshotReader::open(bytes, ctx.uid, state_type, kJoinStateVersion,
                                                     static_cast<uint32_t>(ctx.max_parallelism)));
  for (size_t i = 0; i < snap.sections().size(); ++i) {
    const int32_t kg = snap.sections()[i].key_group;
    if (kg != state::kOperatorWide &&
        subtask_for_key_group(kg, ctx.parallelism, ctx.max_parallelism) != ctx.subtask_index) {
      continue;
    }
    ByteReader r = snap.section_reader(i);
    SABOT_RETURN_IF_ERROR(kg == state::kOperatorWide ? operator_wide(r) : key_group(kg, r));
    SABOT_RETURN_IF_ERROR(r.expect_end());
  }
  return Status::ok();
}

}  // namespace sabot::operators::internal
