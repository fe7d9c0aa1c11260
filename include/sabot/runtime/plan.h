// The logical plan: what the DataStream API builds and the executor runs. Nodes are sources,
// operators (through validating factories) and sinks; edges say how records move between them
// (forward, by key hash, round robin, to every subtask). Built single-threaded, immutable after.
#pragma once

#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "sabot/base/status.h"
#include "sabot/columnar/type.h"
#include "sabot/runtime/operator.h"
#include "sabot/runtime/source.h"
#include "sabot/runtime/watermark.h"

namespace sabot::runtime {

// Validates input schemas and creates one operator per subtask. Shared by the plan and the
// executor; immutable.
class OperatorFactory {
 public:
  virtual ~OperatorFactory() = default;
  // Short kind name for messages and metrics, e.g. "filter".
  virtual std::string kind() const = 0;
  // The output schema for these inputs, or an error naming what does not fit. Sinks return their
  // input schema.
  virtual Result<columnar::SchemaPtr> output_schema(
      std::span<const columnar::SchemaPtr> inputs) const = 0;
  virtual Result<std::unique_ptr<Operator>> create(std::span<const columnar::SchemaPtr> inputs,
                                                   const OperatorContext& ctx) const = 0;
  // A two-input operator tells its inputs apart (joins); otherwise all inputs are one stream
  // (union).
  virtual int num_logical_inputs() const { return 1; }
  // The schema of side output `tag` (see Output::emit_side), or NotFound when the operator has no
  // such side output.
  virtual Result<columnar::SchemaPtr> side_output_schema(
      std::string_view tag, std::span<const columnar::SchemaPtr> inputs) const {
    return Status::not_found("operator '" + kind() + "' has no side output '" + std::string(tag) +
                             "'");
  }
};

enum class Partitioning {
  kForward,    // subtask i to subtask i (rebalance when parallelism differs)
  kHash,       // by key columns: hash -> key group -> subtask (contiguous key-group ranges)
  kRebalance,  // round robin per batch
  kBroadcast,  // every batch to every subtask
};

struct PlanEdge {
  int from = -1;
  Partitioning partitioning = Partitioning::kForward;
  std::vector<std::string> key_columns{};  // for kHash
  int logical_input = 0;                   // which input of a two-input operator
  std::string side_output{};               // read this side output of `from`, not its output
};

struct PlanNode {
  int id = -1;
  std::string name;  // unique in the plan, e.g. "filter#3" or a user-given name
  // Stable identity across runs and versions of the job: snapshots are addressed by it
  // (OperatorContext::uid). DataStream::uid() sets it; otherwise LogicalPlan gives the default
  // "<kind>-<k>": the factory's kind (a source's name for sources) and k, the number of nodes of
  // that kind added before this one (window-0, window-1, ...). A default moves when a node of the
  // same kind is added in front of it, so long-lived jobs set uids. Unique in the plan, non-empty,
  // printable (validate_plan).
  std::string uid;
  int parallelism = 1;
  std::shared_ptr<const Source> source;            // set for source nodes
  WatermarkStrategy watermarks{};                  // source nodes: how event time advances
  std::shared_ptr<const OperatorFactory> factory;  // set for every other node
  std::vector<PlanEdge> inputs;
  bool is_sink = false;
};

class LogicalPlan {
 public:
  // Both give the new node its default uid (see PlanNode::uid).
  int add_source(std::shared_ptr<const Source> source, int parallelism, std::string name = {});
  int add_operator(std::shared_ptr<const OperatorFactory> factory, std::vector<PlanEdge> inputs,
                   int parallelism, std::string name = {}, bool is_sink = false);
  PlanNode& node(int id) { return nodes_[static_cast<size_t>(id)]; }
  const PlanNode& node(int id) const { return nodes_[static_cast<size_t>(id)]; }
  const std::vector<PlanNode>& nodes() const { return nodes_; }
  // Nodes that read from `id`.
  std::vector<int> consumers(int id) const;

 private:
  std::string default_uid(const std::string& kind);

  std::vector<PlanNode> nodes_;
  std::map<std::string, int> kind_counts_;  // nodes per kind so far, for default uids
};

}  // namespace sabot::runtime
