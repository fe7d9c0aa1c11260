#include "sabot/runtime/plan.h"

namespace sabot::runtime {

// "<kind>-<k>" with k the number of earlier nodes of the same kind: deterministic for a plan built
// the same way, and independent of nodes of other kinds.
std::string LogicalPlan::default_uid(const std::string& kind) {
  const std::string k = kind.empty() ? "operator" : kind;
  return k + "-" + std::to_string(kind_counts_[k]++);
}

int LogicalPlan::add_source(std::shared_ptr<const Source> source, int parallelism,
                            std::string name) {
  PlanNode n;
  n.id = static_cast<int>(nodes_.size());
  n.name = name.empty() ? source->name() + "#" + std::to_string(n.id) : std::move(name);
  n.uid = default_uid(source->name());
  n.parallelism = parallelism;
  n.source = std::move(source);
  nodes_.push_back(std::move(n));
  return nodes_.back().id;
}

int LogicalPlan::add_operator(std::shared_ptr<const OperatorFactory> factory,
                              std::vector<PlanEdge> inputs, int parallelism, std::string name,
                              bool is_sink) {
  PlanNode n;
  n.id = static_cast<int>(nodes_.size());
  n.name = name.empty() ? factory->kind() + "#" + std::to_string(n.id) : std::move(name);
  n.uid = default_uid(factory->kind());
  n.parallelism = parallelism;
  n.factory = std::move(factory);
  n.inputs = std::move(inputs);
  n.is_sink = is_sink;
  nodes_.push_back(std::move(n));
  return nodes_.back().id;
}

std::vector<int> LogicalPlan::consumers(int id) const {
  std::vector<int> out;
  for (const PlanNode& n : nodes_) {
    for (const PlanEdge& e : n.inputs) {
      if (e.from == id) {
        out.push_back(n.id);
        break;
      }
    }
  }
  return out;
}

}  // namespace sabot::runtime
