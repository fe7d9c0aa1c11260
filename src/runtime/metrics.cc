#include "sabot/runtime/metrics.h"

#include <algorithm>
#include <cstdio>

namespace sabot::runtime {

OperatorCounters* JobMetrics::add(const std::string& operator_name, int operator_index,
                                  int parallelism) {
  std::lock_guard<std::mutex> lock(mu_);
  if (static_cast<int>(entries_.size()) <= operator_index) {
    entries_.resize(static_cast<size_t>(operator_index) + 1);
  }
  Entry& e = entries_[static_cast<size_t>(operator_index)];
  e.name = operator_name;
  e.parallelism = parallelism;
  e.positions.resize(static_cast<size_t>(parallelism));
  e.subtasks.push_back(std::make_unique<OperatorCounters>());
  return e.subtasks.back().get();
}

void JobMetrics::set_position(int operator_index, int subtask, std::string position) {
  std::lock_guard<std::mutex> lock(mu_);
  Entry& e = entries_[static_cast<size_t>(operator_index)];
  if (subtask < static_cast<int>(e.positions.size())) {
    e.positions[static_cast<size_t>(subtask)] = std::move(position);
  }
}

std::vector<OperatorMetrics> JobMetrics::snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<OperatorMetrics> out;
  for (const Entry& e : entries_) {
    if (e.name.empty()) continue;
    OperatorMetrics m;
    m.name = e.name;
    m.parallelism = e.parallelism;
    for (const auto& c : e.subtasks) {
      m.records_in += c->records_in.load(std::memory_order_relaxed);
      m.records_out += c->records_out.load(std::memory_order_relaxed);
      m.batches_in += c->batches_in.load(std::memory_order_relaxed);
      m.batches_out += c->batches_out.load(std::memory_order_relaxed);
      m.records_dropped += c->records_dropped.load(std::memory_order_relaxed);
      m.busy_seconds += static_cast<double>(c->busy_ns.load(std::memory_order_relaxed)) * 1e-9;
      m.blocked_seconds +=
          static_cast<double>(c->blocked_ns.load(std::memory_order_relaxed)) * 1e-9;
      m.snapshots += c->snapshots.load(std::memory_order_relaxed);
      m.snapshot_seconds +=
          static_cast<double>(c->snapshot_ns.load(std::memory_order_relaxed)) * 1e-9;
      m.snapshot_max_seconds =
          std::max(m.snapshot_max_seconds,
                   static_cast<double>(c->snapshot_max_ns.load(std::memory_order_relaxed)) * 1e-9);
    }
    m.positions = e.positions;
    out.push_back(std::move(m));
  }
  return out;
}

OperatorMetrics JobMetrics::get(const std::string& operator_name) const {
  for (OperatorMetrics& m : snapshot()) {
    if (m.name == operator_name) return std::move(m);
  }
  return {};
}

std::string JobMetrics::to_string() const {
  std::string out;
  char line[256];
  std::snprintf(line, sizeof line, "%-28s %4s %12s %12s %9s %9s\n", "operator", "par", "rows in",
                "rows out", "busy s", "blocked s");
  out += line;
  for (const OperatorMetrics& m : snapshot()) {
    std::snprintf(line, sizeof line, "%-28s %4d %12lld %12lld %9.3f %9.3f\n", m.name.c_str(),
                  m.parallelism, static_cast<long long>(m.records_in),
                  static_cast<long long>(m.records_out), m.busy_seconds, m.blocked_seconds);
    out += line;
  }
  // The synchronous part of checkpoints, for operators that took any.
  bool header = false;
  for (const OperatorMetrics& m : snapshot()) {
    if (m.snapshots == 0) continue;
    if (!header) {
      std::snprintf(line, sizeof line, "%-28s %4s %12s %12s %12s\n", "checkpoint snapshots", "par",
                    "snapshots", "total ms", "longest ms");
      out += line;
      header = true;
    }
    std::snprintf(line, sizeof line, "%-28s %4d %12lld %12.3f %12.3f\n", m.name.c_str(),
                  m.parallelism, static_cast<long long>(m.snapshots), m.snapshot_seconds * 1e3,
                  m.snapshot_max_seconds * 1e3);
    out += line;
  }
  return out;
}

}  // namespace sabot::runtime
