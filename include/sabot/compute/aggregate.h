// Aggregation: per-group accumulators (count, sum, min, max, avg, variance, stddev, first, last,
// count_distinct) that are updated batch after batch, merged as partials, finalized into arrays and
// snapshotted for checkpoints; plus whole-batch kernels (aggregate, group_by) and the streaming
// GroupedAggregation used by keyed and windowed operators. Objects have one owner and are not
// thread-safe; the free functions are safe from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sabot/base/bytes.h"
#include "sabot/base/status.h"
#include "sabot/columnar/array.h"
#include "sabot/columnar/record_batch.h"
#include "sabot/compute/grouper.h"

namespace sabot::compute {

using columnar::Array;
using columnar::DataType;
using columnar::RecordBatch;
using columnar::Schema;
using columnar::SchemaPtr;

enum class AggregateKind : uint8_t {
  kCount,          // non-null values -> int64 (0 for none)
  kCountAll,       // rows, nulls included -> int64 (0 for none); needs no column
  kSum,            // int32/int64 -> int64, uint64 -> uint64, float64 -> float64; null for none
  kMin,            // any type -> same type; null for none
  kMax,            // any type -> same type; null for none
  kAvg,            // numeric -> float64; null for none
  kVariance,       // numeric -> float64, sample (ddof = 1); null for fewer than 2 values
  kStddev,         // numeric -> float64, sqrt of the sample variance
  kFirst,          // any type; first non-null value in arrival order; null for none
  kLast,           // any type; last non-null value in arrival order; null for none
  kCountDistinct,  // any type -> int64; distinct non-null values (0 for none)
};

// "count", "sum", ... (the spelling used in default output names and error messages).
std::string_view aggregate_kind_name(AggregateKind kind);
// The result type of `kind` over `input`, or TypeError "sum is not defined for utf8 column 'name'".
Result<DataType> aggregate_output_type(AggregateKind kind, const DataType& input,
                                       std::string_view column = {});

// Semantics fixed for all accumulators:
// - Integer sums detect overflow: update()/merge() return OutOfRange ("sum of int64 values
//   overflowed int64") instead of wrapping; GroupedAggregation adds the aggregate's name. int32
//   sums go to int64 and cannot overflow in practice. After such an error the
//   accumulator's contents are unspecified; the caller fails the task (or restores a checkpoint).
// - float64 min/max ignore NaN unless every value is NaN; -0.0 and 0.0 compare equal. Float sums
//   are plain IEEE sums (order-dependent in the last bits). avg/variance of integers go through
//   double. Variance uses Welford's update and Chan's parallel merge.
// - count_distinct and grouping treat -0.0 as 0.0 and all NaNs as one value.
// - merge(other, map) treats other's rows as arriving AFTER this accumulator's (first keeps its own
//   value when it has one, last takes other's).
class GroupedAccumulator {
 public:
  virtual ~GroupedAccumulator() = default;

  AggregateKind kind() const { return kind_; }
  const DataType& input_type() const { return input_type_; }
  const DataType& output_type() const { return output_type_; }
  uint32_t num_groups() const { return num_groups_; }

  // Grows (or shrinks) to `num_groups` groups; new groups start empty. Call after each
  // Grouper::consume with grouper.num_groups().
  virtual void resize(uint32_t num_groups) = 0;

  // Adds values[i] to group group_ids[i]. values must have the input type (count_all accepts any
  // type and only counts rows); lengths must agree; every id must be < num_groups().
  virtual Status update(const Array& values, std::span<const uint32_t> group_ids) = 0;

  // Adds every group g of `other` (same kind and input type) into group other_to_this[g] of this
  // one. other_to_this.size() must equal other.num_groups().
  virtual Status merge(const GroupedAccumulator& other,
                       std::span<const uint32_t> other_to_this) = 0;

  // One value per group, in group-id order, of output_type(). Leaves the state untouched, so a
  // sliding window can finalize and keep accumulating.
  virtual Result<Array> finalize() const = 0;

  // Empties every group and sets num_groups() to 0 (capacity kept).
  void clear() { resize(0); }

  // Checkpoint state: appends a versioned encoding (kind, type and per-group state) to `out`.
  // deserialize() replaces this accumulator's state; the kind and input type must match.
  virtual void serialize(std::string* out) const = 0;
  virtual Status deserialize(std::string_view bytes) = 0;

  // Checkpoint state of some groups, for state split by key group (one snapshot section per key
  // group): appends the kind, input type, groups.size() and the state of groups[0], groups[1],
  // ... (in that order) to `w`, gathered in one pass per state vector. Every id < num_groups().
  virtual void serialize_groups(std::span<const uint32_t> groups, ByteWriter& w) const = 0;
  // Reads what serialize_groups wrote for exactly groups.size() groups and gives groups[i] the
  // state of entry i. The target groups must be empty (just added by resize()); every id <
  // num_groups(). InvalidData from `r` (naming its snapshot and byte offset) for bad bytes, a
  // different kind or type, or another group count.
  virtual Status deserialize_groups(ByteReader& r, std::span<const uint32_t> groups) = 0;

 protected:
  GroupedAccumulator(AggregateKind kind, DataType input, DataType output)
      : kind_(kind), input_type_(input), output_type_(output) {}
  // Shared argument checks for update() and merge().
  Status check_update(const Array& values, std::span<const uint32_t> group_ids) const;
  Status check_merge(const GroupedAccumulator& other,
                     std::span<const uint32_t> other_to_this) const;

  AggregateKind kind_;
  DataType input_type_;
  DataType output_type_;
  uint32_t num_groups_ = 0;
};

// An accumulator for `kind` over values of type `input`. `column` only names the column in errors:
// TypeError "sum is not defined for utf8 column 'name'".
Result<std::unique_ptr<GroupedAccumulator>> make_accumulator(AggregateKind kind, DataType input,
                                                             std::string_view column = {});

// A declarative aggregate: what to compute, over which column, under which output name.
struct Aggregate {
  AggregateKind kind = AggregateKind::kCountAll;
  std::string column;       // empty for count_all
  std::string output_name;  // empty: "<kind>(<column>)", or "count_all"

  // The same aggregate under another output name: sum("price").as("total").
  Aggregate as(std::string name) const {
    Aggregate a = *this;
    a.output_name = std::move(name);
    return a;
  }
  std::string resolved_name() const;
};

inline Aggregate count_all() { return Aggregate{AggregateKind::kCountAll, {}, {}}; }
inline Aggregate count() { return count_all(); }
inline Aggregate count(std::string column) {
  return Aggregate{AggregateKind::kCount, std::move(column), {}};
}
inline Aggregate sum(std::string column) {
  return Aggregate{AggregateKind::kSum, std::move(column), {}};
}
inline Aggregate min(std::string column) {
  return Aggregate{AggregateKind::kMin, std::move(column), {}};
}
inline Aggregate max(std::string column) {
  return Aggregate{AggregateKind::kMax, std::move(column), {}};
}
inline Aggregate avg(std::string column) {
  return Aggregate{AggregateKind::kAvg, std::move(column), {}};
}
inline Aggregate variance(std::string column) {
  return Aggregate{AggregateKind::kVariance, std::move(column), {}};
}
inline Aggregate stddev(std::string column) {
  return Aggregate{AggregateKind::kStddev, std::move(column), {}};
}
inline Aggregate first(std::string column) {
  return Aggregate{AggregateKind::kFirst, std::move(column), {}};
}
inline Aggregate last(std::string column) {
  return Aggregate{AggregateKind::kLast, std::move(column), {}};
}
inline Aggregate count_distinct(std::string column) {
  return Aggregate{AggregateKind::kCountDistinct, std::move(column), {}};
}

// Streaming grouped aggregation: consume batches of one schema, finalize once (or per window).
// With no key columns it is a global aggregation that always yields exactly one row.
// Output: the key columns (named as in the input) and then one column per aggregate.
class GroupedAggregation {
 public:
  // Validates keys and aggregates against `input_schema`: unknown columns (NotFound), types an
  // aggregate does not accept (TypeError), duplicate output names (InvalidArgument).
  static Result<std::unique_ptr<GroupedAggregation>> make(const Schema& input_schema,
                                                          std::vector<std::string> keys,
                                                          std::vector<Aggregate> aggregates);

  // Adds a batch with the input schema's columns (matched by position; types checked).
  Status consume(const RecordBatch& batch);
  // Adds another aggregation's partials (same input schema, keys and aggregates); `other` is
  // treated as later in arrival order.
  Status merge(const GroupedAggregation& other);
  // One row per group (groups in order of first appearance); state is kept.
  Result<RecordBatch> finalize() const;
  // Forgets all groups (e.g. after a window fired); keeps allocations.
  void clear();

  uint32_t num_groups() const;
  const SchemaPtr& output_schema() const { return output_schema_; }
  // The grouper (its keys and group hashes, e.g. to split state by key group); null for a global
  // aggregation.
  const Grouper* grouper() const { return grouper_.get(); }

  // Checkpoint state of the grouper and every accumulator; deserialize() needs an aggregation made
  // with the same arguments. Corrupt snapshots give InvalidData; the aggregation's contents are
  // then unspecified until clear() or a successful deserialize().
  void serialize(std::string* out) const;
  Status deserialize(std::string_view bytes);

 private:
  GroupedAggregation() = default;

  SchemaPtr input_schema_;
  SchemaPtr output_schema_;
  std::vector<int> key_indices_;
  std::vector<int> value_indices_;  // -1 for count_all
  std::vector<Aggregate> aggregates_;
  std::unique_ptr<Grouper> grouper_;  // null for a global aggregation
  std::vector<std::unique_ptr<GroupedAccumulator>> accumulators_;
  // Per-batch scratch, reused.
  std::vector<Array> key_scratch_;
  std::vector<uint32_t> group_ids_;
};

// One row with one column per aggregate over the whole batch.
Result<RecordBatch> aggregate(const RecordBatch& batch, std::span<const Aggregate> aggregates);
// The key columns, then one column per aggregate; one row per distinct key, in order of first
// appearance.
Result<RecordBatch> group_by(const RecordBatch& batch, std::span<const std::string> keys,
                             std::span<const Aggregate> aggregates);

}  // namespace sabot::compute
