#include "sabot/runtime/metrics.h"

#include <algorithm>
#include <cstdio>

namespace sabot::runtime {

int64_t batch_bytes(const columnar::RecordBatch& batch) {
  const int64_t n = batch.num_rows();
  int64_t bytes = 0;
  for (const columnar::Array& a : batch.columns()) {
    if (a.null_count() > 0) bytes += (n + 7) / 8;
    if (a.type().is_var_length()) {
      if (n > 0) bytes += 4 * (n + 1) + (a.offsets()[n] - a.offsets()[0]);
    } else {
      bytes += (n * a.type().bit_width() + 7) / 8;
    }
  }
  return bytes;
}

OperatorEntry& JobMetrics::entry_locked(int operator_index) {
  if (static_cast<int>(entries_.size()) <= operator_index) {
    entries_.resize(static_cast<size_t>(operator_index) + 1);
  }
  return entries_[static_cast<size_t>(operator_index)];
}

OperatorCounters* JobMetrics::add(const std::string& operator_name, int operator_index,
                                  int parallelism) {
  std::lock_guard<std::mutex> lock(mu_);
  OperatorEntry& e = entry_locked(operator_index);
  e.name = operator_name;
  e.parallelism = parallelism;
  e.positions.resize(static_cast<size_t>(parallelism));
  e.subtasks.push_back(std::make_unique<OperatorCounters>());
  return e.subtasks.back().get();
}

void JobMetrics::set_shape(int operator_index, OperatorShape shape) {
  std::lock_guard<std::mutex> lock(mu_);
  entry_locked(operator_index).shape = std::move(shape);
}

SplitGauges* JobMetrics::add_split(int operator_index, int subtask, int split) {
  std::lock_guard<std::mutex> lock(mu_);
  OperatorEntry& e = entry_locked(operator_index);
  e.splits.push_back(std::make_unique<SplitGauges>());
  e.splits.back()->subtask = subtask;
  e.splits.back()->split = split;
  return e.splits.back().get();
}

PartitionGauges* JobMetrics::add_partition(int operator_index, int subtask, int split) {
  std::lock_guard<std::mutex> lock(mu_);
  OperatorEntry& e = entry_locked(operator_index);
  e.partitions.push_back(std::make_unique<PartitionGauges>());
  e.partitions.back()->subtask = subtask;
  e.partitions.back()->split = split;
  return e.partitions.back().get();
}

InputGauges* JobMetrics::add_input(int operator_index, int subtask, int from_operator,
                                   int from_subtask) {
  std::lock_guard<std::mutex> lock(mu_);
  OperatorEntry& e = entry_locked(operator_index);
  e.inputs.push_back(std::make_unique<InputGauges>());
  InputGauges* g = e.inputs.back().get();
  g->subtask = subtask;
  g->from_operator = from_operator;
  g->from_subtask = from_subtask;
  return g;
}

void JobMetrics::read(const std::function<void(const std::vector<OperatorEntry>&)>& f) const {
  std::lock_guard<std::mutex> lock(mu_);
  f(entries_);
}

void JobMetrics::set_job(std::string name, int64_t start_ms, std::string description) {
  std::lock_guard<std::mutex> lock(mu_);
  job_name_ = std::move(name);
  description_ = std::move(description);
  start_ms_.store(start_ms);
}

void JobMetrics::set_state_memory_probe(std::string backend, MemoryProbe probe) {
  std::lock_guard<std::mutex> lock(mu_);
  state_backend_ = std::move(backend);
  state_memory_ = std::move(probe);
}

std::string JobMetrics::state_backend_name() const {
  std::lock_guard<std::mutex> lock(mu_);
  return state_backend_;
}

std::vector<std::pair<std::string, int64_t>> JobMetrics::state_memory() const {
  MemoryProbe probe;
  {
    std::lock_guard<std::mutex> lock(mu_);
    probe = state_memory_;
  }
  return probe ? probe() : std::vector<std::pair<std::string, int64_t>>{};
}

std::string JobMetrics::job_name() const {
  std::lock_guard<std::mutex> lock(mu_);
  return job_name_;
}

std::string JobMetrics::description() const {
  std::lock_guard<std::mutex> lock(mu_);
  return description_;
}

void JobMetrics::record_checkpoint(CheckpointRecord record) {
  std::lock_guard<std::mutex> lock(mu_);
  (record.completed ? checkpoints_completed_ : checkpoints_aborted_).fetch_add(1);
  checkpoints_.push_back(std::move(record));
  while (checkpoints_.size() > kCheckpointHistory) checkpoints_.pop_front();
}

std::vector<CheckpointRecord> JobMetrics::checkpoints() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {checkpoints_.begin(), checkpoints_.end()};
}

void JobMetrics::set_position(int operator_index, int subtask, std::string position) {
  std::lock_guard<std::mutex> lock(mu_);
  OperatorEntry& e = entries_[static_cast<size_t>(operator_index)];
  if (subtask < static_cast<int>(e.positions.size())) {
    e.positions[static_cast<size_t>(subtask)] = std::move(position);
  }
}

std::vector<OperatorMetrics> JobMetrics::snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<OperatorMetrics> out;
  for (const OperatorEntry& e : entries_) {
    if (e.name.empty()) continue;
    OperatorMetrics m;
    m.name = e.name;
    m.parallelism = e.parallelism;
    for (const auto& c : e.subtasks) {
      m.records_in += c->records_in.load(std::memory_order_relaxed);
      m.records_out += c->records_out.load(std::memory_order_relaxed);
      m.batches_in += c->batches_in.load(std::memory_order_relaxed);
      m.batches_out += c->batches_out.load(std::memory_order_relaxed);
      m.bytes_in += c->bytes_in.load(std::memory_order_relaxed);
      m.bytes_out += c->bytes_out.load(std::memory_order_relaxed);
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

namespace {
struct Registry {
  std::mutex mu;
  std::vector<std::shared_ptr<const JobMetrics>> running;
  std::shared_ptr<const JobMetrics> last_finished;
};
Registry& registry() {
  static Registry* r = new Registry();  // never destroyed: jobs may end during static teardown
  return *r;
}
}  // namespace

std::vector<std::shared_ptr<const JobMetrics>> running_jobs() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  return r.running;
}

std::shared_ptr<const JobMetrics> last_finished_job() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  return r.last_finished;
}

void register_running_job(std::shared_ptr<const JobMetrics> metrics) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.running.push_back(std::move(metrics));
}

void unregister_running_job(const JobMetrics* metrics) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  for (auto it = r.running.begin(); it != r.running.end(); ++it) {
    if (it->get() == metrics) {
      r.last_finished = *it;
      r.running.erase(it);
      return;
    }
  }
}

}  // namespace sabot::runtime
