#include "window_state.h"

#include <algorithm>

#include "sabot/base/bytes.h"
#include "sabot/base/check.h"
#include "sabot/columnar/builder.h"
#include "sabot/columnar/ipc.h"
#include "sabot/compute/selection.h"

namespace sabot::operators::internal {

using columnar::Array;
using columnar::RecordBatch;

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
