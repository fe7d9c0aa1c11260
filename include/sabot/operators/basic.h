// Factories for the stateless operators of the DataStream API: filter, select, with_column,
// map_batches, union. Each factory validates against its input schema when the plan is checked
// and creates one operator per subtask. Factories are immutable and shared.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "sabot/compute/expression.h"
#include "sabot/runtime/plan.h"

namespace sabot::operators {

using BatchFunction = std::function<Result<columnar::RecordBatch>(const columnar::RecordBatch&)>;
// Emits any number of batches for each input batch.
using FlatBatchFunction = std::function<Status(const columnar::RecordBatch&, runtime::Output& out)>;

// Keeps the rows where `predicate` (a bool expression) is true; null counts as false.
std::shared_ptr<const runtime::OperatorFactory> filter(compute::Expr predicate);
// Computes the given expressions; output column names come from Expr::name().
std::shared_ptr<const runtime::OperatorFactory> select(std::vector<compute::Expr> exprs);
// Adds column `name` computed by `expr`, or replaces the column of that name in place.
std::shared_ptr<const runtime::OperatorFactory> with_column(std::string name, compute::Expr expr);
// Applies `fn` to every batch. `output_schema` null means "same as the input"; the operator checks
// each result against the declared schema and names the operator when it does not match.
std::shared_ptr<const runtime::OperatorFactory> map_batches(BatchFunction fn,
                                                            columnar::SchemaPtr output_schema);
std::shared_ptr<const runtime::OperatorFactory> flat_map_batches(FlatBatchFunction fn,
                                                                 columnar::SchemaPtr output_schema);
// Merges its inputs, which must have equal schemas, into one stream.
std::shared_ptr<const runtime::OperatorFactory> union_all();
// Derives watermarks from a timestamp column on a stream that is not a source: per subtask,
// largest timestamp seen minus the bound minus 1, after each batch. Incoming watermarks are
// replaced (only the end-of-input watermark passes through).
std::shared_ptr<const runtime::OperatorFactory> assign_watermarks(runtime::WatermarkStrategy s);
// Passes batches through unchanged (used where only the partitioning changes).
std::shared_ptr<const runtime::OperatorFactory> identity(std::string kind);

}  // namespace sabot::operators
