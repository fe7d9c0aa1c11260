#include "window_state.h"

#include <algorithm>

#include "sabot/base/bytes.h"
#include "sabot/base/check.h"
#include "sabot/base/time_unit.h"
#include "sabot/columnar/builder.h"
#include "sabot/columnar/ipc.h"
#include "sabot/compute/selection.h"
#include "sabot/runtime/metrics.h"

namespace sabot::operators::internal {

using columnar::Array;
using columnar::DataType;
using columnar::Field;
using columnar::RecordBatch;
using columnar::Schema;
using columnar::SchemaPtr;
using columnar::TypeId;
using compute::GroupedAccumulator;
using Kind = WindowSpec::Kind;

Result<std::shared_ptr<const WindowPlan>> make_window_plan(const WindowOptions& opts,
                                                           const SchemaPtr& input, bool process,
                                                           SchemaPtr process_output,
                                                           WindowFunction fn) {
  auto plan = std::make_shared<WindowPlan>();
  plan->opts = opts;
  plan->input = input;
  plan->process = process;
  plan->process_output = process_output;
  plan->fn = std::move(fn);
  const WindowSpec& s = opts.spec;
  const std::string what = process ? "window_process" : "window_aggregate";
  switch (s.kind) {
    case Kind::kTumbling:
    case Kind::kSliding:
      if (s.size.count() <= 0 || s.slide.count() <= 0 || s.slide > s.size) {
        return Status::invalid_argument(what + ": window size " + std::to_string(s.size.count()) +
                                        "ms and slide " + std::to_string(s.slide.count()) +
                                        "ms must be positive with slide <= size");
      }
      break;
    case Kind::kSession:
      if (s.gap.count() <= 0) {
        return Status::invalid_argument(what + ": session gap must be positive, got " +
                                        std::to_string(s.gap.count()) + "ms");
      }
      break;
    case Kind::kCount:
      if (s.count <= 0 || s.count_slide <= 0 || s.count_slide > s.count) {
        return Status::invalid_argument(what + ": count window of " + std::to_string(s.count) +
                                        " sliding by " + std::to_string(s.count_slide) +
                                        " needs 0 < slide <= size");
      }
      break;
    case Kind::kGlobal:
      break;
  }
  if (opts.allowed_lateness.count() < 0) {
    return Status::invalid_argument(what + ": allowed_lateness must not be negative");
  }
  if (opts.early_fire_every && opts.early_fire_every->count() <= 0) {
    return Status::invalid_argument(what + ": early_fire_every must be positive");
  }
  std::vector<Field> fields;
  for (const std::string& k : opts.key_columns) {
    SABOT_ASSIGN_OR_RETURN(int i, input->require_field_index(k));
    plan->key_indices.push_back(i);
    fields.push_back(input->field(i));
  }
  if (is_time_kind(s.kind)) {
    if (opts.time_column.empty()) {
      return Status::invalid_argument(what + ": time windows need a time_column");
    }
    SABOT_ASSIGN_OR_RETURN(int ti, input->require_field_index(opts.time_column));
    const DataType& t = input->field(ti).type;
    if (t.id() != TypeId::kTimestamp && t.id() != TypeId::kInt64) {
      return Status::type_error(what + ": time column '" + opts.time_column + "' is " +
                                t.to_string() + ", not timestamp or int64 (milliseconds)");
    }
    plan->time_index = ti;
  }
  fields.push_back(
      columnar::field("window_start", columnar::timestamp(columnar::TimeUnit::kMilli)));
  fields.push_back(columnar::field("window_end", columnar::timestamp(columnar::TimeUnit::kMilli)));
  if (process) {
    if (!opts.aggregates.empty() || !opts.functions.empty()) {
      return Status::invalid_argument("window_process takes no aggregates");
    }
    if (opts.early_fire_every) {
      return Status::invalid_argument("window_process does not support early firing");
    }
    if (!process_output) return Status::invalid_argument("window_process needs an output schema");
    if (!plan->fn) return Status::invalid_argument("window_process needs a function");
    plan->output = process_output;
    return std::shared_ptr<const WindowPlan>(plan);
  }
  for (const compute::Aggregate& a : opts.aggregates) {
    int ci = -1;
    DataType in = columnar::int64();
    if (a.kind != compute::AggregateKind::kCountAll || !a.column.empty()) {
      SABOT_ASSIGN_OR_RETURN(ci, input->require_field_index(a.column));
      in = input->field(ci).type;
    }
    SABOT_ASSIGN_OR_RETURN(DataType out, compute::aggregate_output_type(a.kind, in, a.column));
    plan->agg_columns.push_back(a.kind == compute::AggregateKind::kCountAll ? -1 : ci);
    fields.push_back(columnar::field(a.resolved_name(), out));
  }
  for (const AggregateFunction& f : opts.functions) {
    if (!f.create || !f.add || !f.merge || !f.result) {
      return Status::invalid_argument(what + ": aggregate function '" + f.output_name +
                                      "' lacks create, add, merge or result");
    }
    int ci = -1;
    if (!f.input_column.empty()) {
      SABOT_ASSIGN_OR_RETURN(ci, input->require_field_index(f.input_column));
    }
    plan->func_columns.push_back(ci);
    fields.push_back(columnar::field(f.output_name, f.output_type));
  }
  if (opts.early_fire_every) fields.push_back(columnar::field("is_final", columnar::boolean()));
  auto schema = Schema::make(std::move(fields));
  if (!schema.is_ok()) {
    return Status::invalid_argument(what + ": output columns: " + schema.status().message());
  }
  plan->output = *schema;
  return std::shared_ptr<const WindowPlan>(plan);
}

Result<std::vector<std::unique_ptr<GroupedAccumulator>>> make_window_accumulators(
    const WindowPlan& plan) {
  std::vector<std::unique_ptr<GroupedAccumulator>> accs;
  const Schema& in = *plan.input;
  if (plan.process) {
    accs.push_back(std::make_unique<RowCollector>(plan.input));
    return accs;
  }
  for (size_t i = 0; i < plan.opts.aggregates.size(); ++i) {
    const compute::Aggregate& a = plan.opts.aggregates[i];
    int ci = plan.agg_columns[i];
    DataType t = ci >= 0 ? in.field(ci).type : columnar::int64();
    SABOT_ASSIGN_OR_RETURN(auto acc, compute::make_accumulator(a.kind, t, a.column));
    accs.push_back(std::move(acc));
  }
  for (size_t i = 0; i < plan.opts.functions.size(); ++i) {
    int ci = plan.func_columns[i];
    DataType t = ci >= 0 ? in.field(ci).type : columnar::int64();
    accs.push_back(std::make_unique<UdafAccumulator>(plan.opts.functions[i], t, ci >= 0));
  }
  return accs;
}

const int64_t* event_times_ms(const WindowPlan& plan, const RecordBatch& batch,
                              std::vector<int64_t>* scratch) {
  const Array& col = batch.column(plan.time_index);
  const int64_t* raw = col.values<int64_t>();
  columnar::TimeUnit unit =
      col.type().id() == TypeId::kTimestamp ? col.type().unit() : columnar::TimeUnit::kMilli;
  if (unit == columnar::TimeUnit::kMilli) return raw;
  scratch->resize(static_cast<size_t>(batch.num_rows()));
  to_millis(std::span<const int64_t>(raw, scratch->size()), unit, scratch->data());
  return scratch->data();
}

Result<RecordBatch> remove_late_rows(const WindowPlan& plan, const RecordBatch& batch,
                                     const int64_t* times, int64_t threshold,
                                     const runtime::OperatorContext& ctx, runtime::Output& out) {
  const int64_t n = batch.num_rows();
  const Array& tcol = batch.column(plan.time_index);
  int64_t late = 0;
  for (int64_t i = 0; i < n; ++i) late += times[i] <= threshold;
  if (tcol.null_count() > 0) {
    late = 0;
    for (int64_t i = 0; i < n; ++i) late += (times[i] <= threshold) | tcol.is_null(i);
  }
  if (late == 0) return batch;
  std::vector<int32_t> keep, drop;
  for (int64_t i = 0; i < n; ++i) {
    bool is_late = times[i] <= threshold || tcol.is_null(i);
    (is_late ? drop : keep).push_back(static_cast<int32_t>(i));
  }
  if (plan.opts.late == LatePolicy::kSideOutput) {
    SABOT_ASSIGN_OR_RETURN(RecordBatch l, compute::take(batch, drop));
    SABOT_RETURN_IF_ERROR(out.emit_side("late", l));
  }
  if (ctx.counters != nullptr) ctx.counters->records_dropped += late;
  return compute::take(batch, keep);
}

Status AccumulatorFeed::update(const WindowPlan& plan,
                               std::vector<std::unique_ptr<GroupedAccumulator>>& accs,
                               const RecordBatch& batch, std::span<const uint32_t> groups) {
  const int64_t n = batch.num_rows();
  for (size_t a = 0; a < accs.size(); ++a) {
    if (plan.process) {
      if (row_index_.length() < n) {
        columnar::Int32Builder b;
        for (int64_t i = 0; i < std::max<int64_t>(n, 4096); ++i) b.append(static_cast<int32_t>(i));
        row_index_ = b.finish();
      }
      row_index_slice_ = row_index_.slice(0, n);
      static_cast<RowCollector*>(accs[a].get())->set_batch(&batch);
      SABOT_RETURN_IF_ERROR(accs[a]->update(row_index_slice_, groups));
      continue;
    }
    int ci = a < plan.agg_columns.size() ? plan.agg_columns[a]
                                         : plan.func_columns[a - plan.agg_columns.size()];
    SABOT_RETURN_IF_ERROR(accs[a]->update(batch.column(ci >= 0 ? ci : 0), groups));
  }
  return Status::ok();
}

Status emit_window_rows(const WindowPlan& plan, std::vector<Array> cols,
                        std::span<const int64_t> start, std::span<const int64_t> end,
                        const std::vector<std::unique_ptr<GroupedAccumulator>>& result,
                        bool is_final, runtime::Output& out) {
  const auto rows = static_cast<uint32_t>(start.size());
  const bool timed = is_time_kind(plan.opts.spec.kind);
  for (const auto* v : {&start, &end}) {
    columnar::Int64Builder b(columnar::timestamp(columnar::TimeUnit::kMilli));
    b.reserve(rows);
    for (uint32_t r = 0; r < rows; ++r) {
      if (timed) {
        b.unsafe_append((*v)[r]);
      } else {
        b.append_null();
      }
    }
    cols.push_back(b.finish());
  }
  if (plan.process) {
    const auto* collector = static_cast<const RowCollector*>(result[0].get());
    for (uint32_t r = 0; r < rows; ++r) {
      WindowInfo info;
      for (size_t c = 0; c < plan.key_indices.size(); ++c) info.key.push_back(cols[c].scalar_at(r));
      info.start_ms = timed ? start[r] : INT64_MIN;
      info.end_ms = timed ? end[r] : INT64_MIN;
      SABOT_ASSIGN_OR_RETURN(RecordBatch window_rows, collector->rows(r));
      SABOT_ASSIGN_OR_RETURN(RecordBatch produced, plan.fn(info, window_rows));
      if (!(produced.schema() == *plan.output)) {
        return Status::type_error("window function returned {" + produced.schema().to_string() +
                                  "} but declared {" + plan.output->to_string() + "}");
      }
      if (produced.num_rows() > 0) SABOT_RETURN_IF_ERROR(out.emit(produced));
    }
    return Status::ok();
  }
  for (const auto& r : result) {
    SABOT_ASSIGN_OR_RETURN(Array v, r->finalize());
    cols.push_back(v.slice(0, rows));
  }
  if (plan.opts.early_fire_every) {
    columnar::BooleanBuilder b;
    b.reserve(rows);
    for (uint32_t r = 0; r < rows; ++r) b.append(is_final);
    cols.push_back(b.finish());
  }
  return out.emit(RecordBatch::make_unchecked(plan.output, std::move(cols), rows));
}

void PaneTable::rehash(size_t capacity) {
  std::vector<Entry> old = std::move(entries_);
  entries_.assign(capacity, Entry{0, 0, kNone});
  mask_ = capacity - 1;
  size_ = 0;
  for (const Entry& e : old) {
    if (e.slot != kNone) insert(e.key, e.pane, e.slot);
  }
}

void PaneTable::erase(uint32_t key, int64_t pane) {
  size_t i = home(key, pane);
  while (true) {
    if (entries_[i].slot == kNone) return;
    if (entries_[i].key == key && entries_[i].pane == pane) break;
    i = (i + 1) & mask_;
  }
  // Backward shift: move later entries of the probe run into the hole when their home allows.
  size_t j = i;
  while (true) {
    j = (j + 1) & mask_;
    if (entries_[j].slot == kNone) break;
    size_t k = home(entries_[j].key, entries_[j].pane);
    bool movable = (j > i) ? (k <= i || k > j) : (k <= i && k > j);
    if (movable) {
      entries_[i] = entries_[j];
      i = j;
    }
  }
  entries_[i].slot = kNone;
  --size_;
}

// ---- UdafAccumulator ----

UdafAccumulator::UdafAccumulator(const AggregateFunction& fn, columnar::DataType input_type,
                                 bool has_input)
    : GroupedAccumulator(compute::AggregateKind::kFirst, input_type, fn.output_type),
      fn_(&fn),
      has_input_(has_input) {}

void UdafAccumulator::resize(uint32_t num_groups) {
  if (num_groups < accs_.size()) {
    accs_.resize(num_groups);
  } else {
    while (accs_.size() < num_groups) accs_.push_back(fn_->create());
  }
  num_groups_ = num_groups;
}

Status UdafAccumulator::update(const Array& values, std::span<const uint32_t> group_ids) {
  columnar::Scalar none = columnar::Scalar::null(columnar::int64());
  for (size_t i = 0; i < group_ids.size(); ++i) {
    if (group_ids[i] >= num_groups_) {
      return Status::out_of_range("aggregate function '" + fn_->output_name + "': group id " +
                                  std::to_string(group_ids[i]) + " out of range");
    }
    if (has_input_) {
      fn_->add(accs_[group_ids[i]], values.scalar_at(static_cast<int64_t>(i)));
    } else {
      fn_->add(accs_[group_ids[i]], none);
    }
  }
  return Status::ok();
}

Status UdafAccumulator::merge(const GroupedAccumulator& other,
                              std::span<const uint32_t> other_to_this) {
  const auto* o = dynamic_cast<const UdafAccumulator*>(&other);
  if (o == nullptr || o->fn_ != fn_ || other_to_this.size() != o->accs_.size()) {
    return Status::invalid_argument("aggregate function '" + fn_->output_name +
                                    "': merge with a different accumulator");
  }
  for (size_t g = 0; g < other_to_this.size(); ++g) {
    fn_->merge(accs_[other_to_this[g]], o->accs_[g]);
  }
  return Status::ok();
}

Result<Array> UdafAccumulator::finalize() const {
  auto builder = columnar::make_builder(output_type_);
  builder->reserve(static_cast<int64_t>(accs_.size()));
  for (const std::string& acc : accs_) {
    columnar::Scalar r = fn_->result(acc);
    if (!r.is_valid) {
      builder->append_null();
      continue;
    }
    if (!(r.type == output_type_)) {
      return Status::type_error("aggregate function '" + fn_->output_name + "' returned " +
                                r.type.to_string() + ", declared " + output_type_.to_string());
    }
    builder->append_scalar(r);
  }
  return builder->finish();
}

void UdafAccumulator::serialize(std::string* out) const {
  ByteWriter w(out);
  w.put<uint64_t>(accs_.size());
  for (const std::string& a : accs_) w.put_bytes(a);
}

Status UdafAccumulator::deserialize(std::string_view bytes) {
  ByteReader r(bytes, "aggregate function state");
  uint64_t n = 0;
  SABOT_RETURN_IF_ERROR(r.get(&n));
  accs_.assign(static_cast<size_t>(n), std::string());
  for (auto& a : accs_) SABOT_RETURN_IF_ERROR(r.get_bytes(&a));
  num_groups_ = static_cast<uint32_t>(n);
  return Status::ok();
}

// Per group: its accumulator bytes.
void UdafAccumulator::serialize_groups(std::span<const uint32_t> groups, ByteWriter& w) const {
  w.put<uint64_t>(groups.size());
  for (uint32_t g : groups) w.put_bytes(accs_[g]);
}

Status UdafAccumulator::deserialize_groups(ByteReader& r, std::span<const uint32_t> groups) {
  uint64_t n = 0;
  SABOT_RETURN_IF_ERROR(r.get(&n));
  if (n != groups.size()) {
    return r.invalid("aggregate function '" + fn_->output_name + "' holds " + std::to_string(n) +
                     " groups, expected " + std::to_string(groups.size()));
  }
  for (uint32_t g : groups) SABOT_RETURN_IF_ERROR(r.get_bytes(&accs_[g]));
  return Status::ok();
}

// ---- RowCollector ----

RowCollector::RowCollector(columnar::SchemaPtr schema)
    : GroupedAccumulator(compute::AggregateKind::kFirst, columnar::int32(), columnar::int32()),
      schema_(std::move(schema)) {}

void RowCollector::resize(uint32_t num_groups) {
  parts_.resize(num_groups);
  num_groups_ = num_groups;
}

Status RowCollector::update(const Array& values, std::span<const uint32_t> group_ids) {
  if (batch_ == nullptr) return Status::internal("row collector without a batch");
  // Rows ordered by group (stable), then one take() per group of this batch.
  order_.resize(group_ids.size());
  for (size_t i = 0; i < order_.size(); ++i) order_[i] = static_cast<uint32_t>(i);
  std::stable_sort(order_.begin(), order_.end(),
                   [&](uint32_t a, uint32_t b) { return group_ids[a] < group_ids[b]; });
  const int32_t* rows = values.values<int32_t>();
  std::vector<int32_t> idx;
  size_t i = 0;
  while (i < order_.size()) {
    uint32_t g = group_ids[order_[i]];
    idx.clear();
    while (i < order_.size() && group_ids[order_[i]] == g) idx.push_back(rows[order_[i++]]);
    SABOT_ASSIGN_OR_RETURN(RecordBatch part, compute::take(*batch_, idx));
    parts_[g].push_back(std::move(part));
  }
  return Status::ok();
}

Status RowCollector::merge(const GroupedAccumulator& other,
                           std::span<const uint32_t> other_to_this) {
  const auto* o = dynamic_cast<const RowCollector*>(&other);
  if (o == nullptr || other_to_this.size() != o->parts_.size()) {
    return Status::invalid_argument("window rows: merge with a different accumulator");
  }
  for (size_t g = 0; g < other_to_this.size(); ++g) {
    auto& dst = parts_[other_to_this[g]];
    dst.insert(dst.end(), o->parts_[g].begin(), o->parts_[g].end());
  }
  return Status::ok();
}

Result<Array> RowCollector::finalize() const {
  return Array::make_null(columnar::int32(), static_cast<int64_t>(parts_.size()));
}

Result<RecordBatch> RowCollector::rows(uint32_t g) const {
  if (parts_[g].empty()) return RecordBatch::make_empty(schema_);
  if (parts_[g].size() == 1) return parts_[g][0];
  return columnar::concat(parts_[g]);
}

void RowCollector::serialize(std::string* out) const {
  ByteWriter w(out);
  w.put<uint64_t>(parts_.size());
  for (uint32_t g = 0; g < parts_.size(); ++g) {
    auto rb = rows(g);
    auto bytes = columnar::write_ipc_stream(schema_, {rb.value()});
    SABOT_CHECK(bytes.is_ok());
    w.put_bytes(std::string_view(reinterpret_cast<const char*>(bytes->data()), bytes->size()));
  }
}

Status RowCollector::deserialize(std::string_view bytes) {
  ByteReader r(bytes, "window rows");
  uint64_t n = 0;
  SABOT_RETURN_IF_ERROR(r.get(&n));
  parts_.assign(static_cast<size_t>(n), {});
  for (auto& p : parts_) {
    std::string s;
    SABOT_RETURN_IF_ERROR(r.get_bytes(&s));
    SABOT_ASSIGN_OR_RETURN(auto read, columnar::read_ipc_stream(columnar::Buffer::copy_of(
                                          s.data(), static_cast<int64_t>(s.size()))));
    for (auto& b : read.second) {
      if (b.num_rows() > 0) p.push_back(b);
    }
  }
  num_groups_ = static_cast<uint32_t>(n);
  return Status::ok();
}

// The row count of each group, then all their rows in one IPC stream (group after group).
void RowCollector::serialize_groups(std::span<const uint32_t> groups, ByteWriter& w) const {
  w.put<uint64_t>(groups.size());
  std::vector<RecordBatch> all;
  for (uint32_t g : groups) {
    int64_t rows = 0;
    for (const RecordBatch& b : parts_[g]) rows += b.num_rows();
    w.put<int64_t>(rows);
    all.insert(all.end(), parts_[g].begin(), parts_[g].end());
  }
  std::vector<RecordBatch> one;
  if (!all.empty()) {
    auto joined = columnar::concat(all);
    SABOT_CHECK(joined.is_ok());
    one.push_back(std::move(*joined));
  }
  auto bytes = columnar::write_ipc_stream(schema_, one);
  SABOT_CHECK(bytes.is_ok());
  w.put_bytes(std::string_view(reinterpret_cast<const char*>(bytes->data()), bytes->size()));
}

Status RowCollector::deserialize_groups(ByteReader& r, std::span<const uint32_t> groups) {
  uint64_t n = 0;
  SABOT_RETURN_IF_ERROR(r.get(&n));
  if (n != groups.size()) {
    return r.invalid("window rows hold " + std::to_string(n) + " groups, expected " +
                     std::to_string(groups.size()));
  }
  if (r.remaining() / sizeof(int64_t) < n) return r.invalid("truncated row counts");
  std::vector<int64_t> counts(static_cast<size_t>(n));
  SABOT_RETURN_IF_ERROR(r.get_raw(counts.data(), counts.size() * sizeof(int64_t)));
  std::string_view s;
  SABOT_RETURN_IF_ERROR(r.get_bytes(&s));
  auto read = columnar::read_ipc_stream(
      columnar::Buffer::copy_of(s.data(), static_cast<int64_t>(s.size())));
  if (!read.is_ok()) return r.invalid("window rows: " + read.status().message());
  if (!(*read->first == *schema_)) return r.invalid("window rows of another schema");
  RecordBatch all = RecordBatch::make_empty(schema_);
  if (read->second.size() == 1) {
    all = read->second[0];
  } else if (!read->second.empty()) {
    SABOT_ASSIGN_OR_RETURN(all, columnar::concat(read->second));
  }
  int64_t at = 0;
  for (size_t i = 0; i < groups.size(); ++i) {
    if (counts[i] < 0 || counts[i] > all.num_rows() - at) {
      return r.invalid("window rows: group row counts exceed the " +
                       std::to_string(all.num_rows()) + " rows stored");
    }
    if (counts[i] > 0) parts_[groups[i]].push_back(all.slice(at, counts[i]));
    at += counts[i];
  }
  if (at != all.num_rows()) return r.invalid("window rows: rows left over");
  return Status::ok();
}

}  // namespace sabot::operators::internal
