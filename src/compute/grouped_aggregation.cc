// GroupedAggregation and the whole-batch kernels aggregate() and group_by() built on it.
#include <unordered_set>

#include "compute/state_codec.h"
#include "sabot/base/check.h"
#include "sabot/compute/aggregate.h"

namespace sabot::compute {

using internal::expect_header;
using internal::get_type;
using internal::put_type;

Result<std::unique_ptr<GroupedAggregation>> GroupedAggregation::make(
    const Schema& input_schema, std::vector<std::string> keys, std::vector<Aggregate> aggregates) {
  std::unique_ptr<GroupedAggregation> agg(new GroupedAggregation());
  agg->input_schema_ = std::make_shared<const Schema>(input_schema);
  std::vector<columnar::Field> out_fields;
  std::vector<DataType> key_types;
  for (const std::string& k : keys) {
    SABOT_ASSIGN_OR_RETURN(int idx, input_schema.require_field_index(k));
    agg->key_indices_.push_back(idx);
    key_types.push_back(input_schema.field(idx).type);
    out_fields.push_back(columnar::field(k, input_schema.field(idx).type));
  }
  std::unordered_set<std::string> names(keys.begin(), keys.end());
  if (names.size() != keys.size()) {
    return Status::invalid_argument("group_by: a key column is listed twice");
  }
  for (const Aggregate& a : aggregates) {
    int idx = -1;
    DataType input = columnar::int64();
    if (a.kind != AggregateKind::kCountAll || !a.column.empty()) {
      if (a.column.empty()) {
        return Status::invalid_argument(std::string(aggregate_kind_name(a.kind)) +
                                        " needs a column name");
      }
      SABOT_ASSIGN_OR_RETURN(idx, input_schema.require_field_index(a.column));
      input = input_schema.field(idx).type;
    }
    SABOT_ASSIGN_OR_RETURN(auto acc, make_accumulator(a.kind, input, a.column));
    std::string name = a.resolved_name();
    if (!names.insert(name).second) {
      return Status::invalid_argument("aggregate output name '" + name +
                                      "' is used twice; rename one with .as(\"...\")");
    }
    out_fields.push_back(columnar::field(name, acc->output_type()));
    agg->value_indices_.push_back(idx);
    agg->accumulators_.push_back(std::move(acc));
  }
  agg->aggregates_ = std::move(aggregates);
  agg->output_schema_ = columnar::schema(std::move(out_fields));
  if (!key_types.empty()) {
    SABOT_ASSIGN_OR_RETURN(agg->grouper_, Grouper::make(std::move(key_types)));
  } else {
    for (auto& acc : agg->accumulators_) acc->resize(1);  // a global aggregation has one group
  }
  return agg;
}

uint32_t GroupedAggregation::num_groups() const { return grouper_ ? grouper_->num_groups() : 1; }

Status GroupedAggregation::consume(const RecordBatch& batch) {
  const Schema& expected = *input_schema_;
  if (batch.num_columns() != expected.num_fields()) {
    return Status::invalid_argument("aggregation: batch has " +
                                    std::to_string(batch.num_columns()) + " columns, expected " +
                                    std::to_string(expected.num_fields()));
  }
  for (int c = 0; c < batch.num_columns(); ++c) {
    if (!(batch.column(c).type() == expected.field(c).type)) {
      return Status::type_error("aggregation: column '" + expected.field(c).name + "' has type " +
                                batch.column(c).type().to_string() + ", expected " +
                                expected.field(c).type.to_string());
    }
  }
  const int64_t n = batch.num_rows();
  if (grouper_) {
    key_scratch_.clear();
    for (int k : key_indices_) key_scratch_.push_back(batch.column(k));
    SABOT_RETURN_IF_ERROR(grouper_->consume(key_scratch_, &group_ids_));
  } else {
    group_ids_.assign(static_cast<size_t>(n), 0);
  }
  const uint32_t groups = num_groups();
  for (size_t a = 0; a < accumulators_.size(); ++a) {
    GroupedAccumulator& acc = *accumulators_[a];
    acc.resize(groups);
    const int idx = value_indices_[a];
    Status st;
    if (idx >= 0) {
      st = acc.update(batch.column(idx), group_ids_);
    } else if (batch.num_columns() > 0) {
      st = acc.update(batch.column(0), group_ids_);  // count_all only looks at the length
    } else {
      st = acc.update(Array::make_null(columnar::int64(), n), group_ids_);
    }
    if (!st.is_ok()) {
      return std::move(st).with_context("aggregate " + aggregates_[a].resolved_name());
    }
  }
  return Status::ok();
}

Status GroupedAggregation::merge(const GroupedAggregation& other) {
  if (other.accumulators_.size() != accumulators_.size() || other.key_indices_ != key_indices_ ||
      !(*other.output_schema_ == *output_schema_)) {
    return Status::invalid_argument(
        "aggregation merge: the other aggregation has different keys or aggregates");
  }
  std::vector<uint32_t> map;
  if (grouper_) {
    SABOT_ASSIGN_OR_RETURN(std::vector<Array> keys, other.grouper_->keys());
    SABOT_RETURN_IF_ERROR(grouper_->consume(keys, &map));
  } else {
    map.assign(1, 0);
  }
  for (size_t a = 0; a < accumulators_.size(); ++a) {
    accumulators_[a]->resize(num_groups());
    Status st = accumulators_[a]->merge(*other.accumulators_[a], map);
    if (!st.is_ok()) {
      return std::move(st).with_context("merging aggregate " + aggregates_[a].resolved_name());
    }
  }
  return Status::ok();
}

Result<RecordBatch> GroupedAggregation::finalize() const {
  std::vector<Array> columns;
  if (grouper_) {
    SABOT_ASSIGN_OR_RETURN(columns, grouper_->keys());
  }
  for (const auto& acc : accumulators_) {
    // A group can exist in the grouper before an accumulator saw a batch (merge of nothing).
    SABOT_CHECK_EQ(acc->num_groups(), num_groups());
    SABOT_ASSIGN_OR_RETURN(Array col, acc->finalize());
    columns.push_back(std::move(col));
  }
  return RecordBatch::make(output_schema_, std::move(columns));
}

void GroupedAggregation::clear() {
  if (grouper_) grouper_->clear();
  for (auto& acc : accumulators_) {
    acc->resize(0);
    acc->resize(grouper_ ? 0 : 1);
  }
}

void GroupedAggregation::serialize(std::string* out) const {
  ByteWriter w(out);
  out->append("SGAG");
  w.put<uint8_t>(1);
  w.put<uint32_t>(static_cast<uint32_t>(accumulators_.size()));
  std::string part;
  if (grouper_) grouper_->serialize(&part);
  w.put_bytes(part);
  for (const auto& acc : accumulators_) {
    part.clear();
    acc->serialize(&part);
    w.put_bytes(part);
  }
}

Status GroupedAggregation::deserialize(std::string_view bytes) {
  ByteReader r(bytes, "grouped aggregation");
  SABOT_RETURN_IF_ERROR(expect_header(r, "SGAG", 1));
  uint32_t count = 0;
  SABOT_RETURN_IF_ERROR(r.get(&count));
  if (count != accumulators_.size()) {
    return r.invalid(std::to_string(count) + " aggregates, this aggregation has " +
                     std::to_string(accumulators_.size()));
  }
  std::string part;
  SABOT_RETURN_IF_ERROR(r.get_bytes(&part));
  if (grouper_) {
    SABOT_RETURN_IF_ERROR(grouper_->deserialize(part));
  } else if (!part.empty()) {
    return r.invalid("has grouping keys, this aggregation is global");
  }
  for (size_t a = 0; a < accumulators_.size(); ++a) {
    SABOT_RETURN_IF_ERROR(r.get_bytes(&part));
    SABOT_RETURN_IF_ERROR(accumulators_[a]->deserialize(part).with_context(
        "restoring aggregate " + aggregates_[a].resolved_name()));
    if (accumulators_[a]->num_groups() != num_groups()) {
      return r.invalid("aggregate " + aggregates_[a].resolved_name() + " has " +
                       std::to_string(accumulators_[a]->num_groups()) + " groups, the keys " +
                       std::to_string(num_groups()));
    }
  }
  return r.expect_end();
}

Result<RecordBatch> aggregate(const RecordBatch& batch, std::span<const Aggregate> aggregates) {
  SABOT_ASSIGN_OR_RETURN(auto agg, GroupedAggregation::make(
                                       batch.schema(), {}, {aggregates.begin(), aggregates.end()}));
  SABOT_RETURN_IF_ERROR(agg->consume(batch));
  return agg->finalize();
}

Result<RecordBatch> group_by(const RecordBatch& batch, std::span<const std::string> keys,
                             std::span<const Aggregate> aggregates) {
  if (keys.empty()) return Status::invalid_argument("group_by: no key columns given");
  SABOT_ASSIGN_OR_RETURN(auto agg,
                         GroupedAggregation::make(batch.schema(), {keys.begin(), keys.end()},
                                                  {aggregates.begin(), aggregates.end()}));
  SABOT_RETURN_IF_ERROR(agg->consume(batch));
  return agg->finalize();
}

}  // namespace sabot::compute
