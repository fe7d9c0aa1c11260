#include "sabot/runtime/executor.h"

#include <algorithm>
#include <chrono>
#include <exception>
#include <map>
#include <thread>

#include "runtime/channel.h"
#include "runtime/coordinator.h"
#include "runtime/scheduler.h"
#include "sabot/base/arith.h"
#include "sabot/base/check.h"
#include "sabot/base/logging.h"
#include "sabot/compute/hash.h"
#include "sabot/compute/selection.h"
#include "sabot/state/keyed_state_backend.h"
#include "sabot/state/snapshot.h"

namespace sabot::runtime {

using columnar::RecordBatch;
using columnar::SchemaPtr;

namespace {

// The state type under which a source subtask reports its split positions.
constexpr std::string_view kSourcePositionsState = "source-positions";

// A source subtask's positions in the snapshot envelope: one operator-wide section holding the
// count, then per split its number and bytes.
void encode_positions(const std::string& uid, int max_parallelism,
                      const std::vector<SplitPosition>& positions, std::string* out) {
  state::SnapshotWriter w(out, {.operator_uid = uid,
                                .state_type = std::string(kSourcePositionsState),
                                .state_version = 1,
                                .max_parallelism = static_cast<uint32_t>(max_parallelism)});
  ByteWriter& b = w.begin_section(state::kOperatorWide);
  b.put<uint64_t>(positions.size());
  for (const SplitPosition& p : positions) {
    b.put<int32_t>(p.split);
    b.put_bytes(p.bytes);
  }
  w.finish();
}

// Appends the positions in one subtask snapshot of source `uid` to `out`.
Status decode_positions(std::string_view bytes, const std::string& uid, int max_parallelism,
                        std::vector<SplitPosition>* out) {
  SABOT_ASSIGN_OR_RETURN(state::SnapshotReader r,
                         state::SnapshotReader::open(bytes, uid, kSourcePositionsState, 1,
                                                     static_cast<uint32_t>(max_parallelism)));
  for (size_t i = 0; i < r.sections().size(); ++i) {
    if (r.sections()[i].key_group != state::kOperatorWide) continue;
    ByteReader b = r.section_reader(i);
    uint64_t n = 0;
    SABOT_RETURN_IF_ERROR(b.get_count(&n, sizeof(int32_t) + sizeof(uint64_t)));
    for (uint64_t k = 0; k < n; ++k) {
      SplitPosition p;
      SABOT_RETURN_IF_ERROR(b.get(&p.split));
      SABOT_RETURN_IF_ERROR(b.get_bytes(&p.bytes));
      out->push_back(std::move(p));
    }
    SABOT_RETURN_IF_ERROR(b.expect_end());
  }
  return Status::ok();
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// ---------------------------------------------------------------------------------------------
// Plan analysis shared by validation and building.

struct Analysis {
  std::vector<SchemaPtr> schemas;           // output schema per node (null when invalid)
  std::vector<std::vector<int>> consumers;  // per node
  std::vector<int> chain_head;              // per node: the node that starts its chain
  std::vector<std::vector<std::vector<int>>> key_indices;  // per node, per input edge: keys
};

std::string join_lines(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& l : lines) {
    if (!out.empty()) out += '\n';
    out += l;
  }
  return out;
}

// Why `uid` cannot name an operator, or empty when it can: uids appear in snapshots, checkpoint
// manifests and messages, so they are non-empty, without control characters and valid UTF-8.
std::string uid_problem(const std::string& uid) {
  if (uid.empty()) return "empty uid";
  auto escaped = [&] {
    std::string e;
    for (unsigned char c : uid) {
      if (c < 0x20 || c >= 0x7f) {
        static const char* hex = "0123456789abcdef";
        e += "\\x";
        e += hex[c >> 4];
        e += hex[c & 15];
      } else {
        e += static_cast<char>(c);
      }
    }
    return e;
  };
  for (size_t i = 0; i < uid.size();) {
    const unsigned char c = static_cast<unsigned char>(uid[i]);
    if (c < 0x20 || c == 0x7f) {
      return "uid '" + escaped() + "' has an unprintable character at byte " + std::to_string(i);
    }
    if (c < 0x80) {
      ++i;
      continue;
    }
    // A UTF-8 sequence: lead byte, then 1-3 continuation bytes (no overlong 2-byte leads).
    const size_t len = (c >= 0xc2 && c <= 0xdf)   ? 2
                       : (c >= 0xe0 && c <= 0xef) ? 3
                       : (c >= 0xf0 && c <= 0xf4) ? 4
                                                  : 0;
    bool ok = len != 0 && i + len <= uid.size();
    for (size_t k = 1; ok && k < len; ++k) {
      ok = (static_cast<unsigned char>(uid[i + k]) & 0xc0) == 0x80;
    }
    if (!ok) return "uid '" + escaped() + "' is not valid UTF-8 at byte " + std::to_string(i);
    i += len;
  }
  return {};
}

// Checks the uids (unique, printable) and the snapshot to restore from (its max parallelism, and
// that every uid with state is an operator of this plan), adding one line per problem.
void check_uids_and_restore(const LogicalPlan& plan, const ExecutionOptions& options,
                            std::vector<std::string>* problems) {
  std::map<std::string, const PlanNode*> by_uid;
  for (const PlanNode& node : plan.nodes()) {
    if (std::string p = uid_problem(node.uid); !p.empty()) {
      problems->push_back("'" + node.name + "': " + p);
      continue;
    }
    auto [it, inserted] = by_uid.emplace(node.uid, &node);
    if (!inserted) {
      problems->push_back("'" + it->second->name + "' and '" + node.name + "' have the same uid '" +
                          node.uid + "' (uids must be unique)");
    }
  }
  if (!options.restore_from) return;
  const JobSnapshot& snap = *options.restore_from;
  const std::string what = "snapshot of checkpoint " + std::to_string(snap.checkpoint_id);
  if (static_cast<int64_t>(snap.max_parallelism) != options.max_parallelism) {
    problems->push_back(what + " was taken with max_parallelism " +
                        std::to_string(snap.max_parallelism) + ", the job has " +
                        std::to_string(options.max_parallelism) +
                        " (key groups cannot be split differently)");
  }
  for (const auto& [uid, op] : snap.operators) {
    auto it = by_uid.find(uid);
    if (it == by_uid.end() && options.allow_non_restored_state) continue;
    if (it == by_uid.end()) {
      problems->push_back(what + " holds state of operator uid '" + uid +
                          "', which is not in the job (give the operator that takes it over "
                          "this uid with .uid(), or allow non-restored state)");
      continue;
    }
    if (it->second->source) {
      // A source's state is its split positions.
      std::vector<SplitPosition> positions;
      for (const std::string& bytes : op.subtasks) {
        if (bytes.empty()) continue;
        if (Status ds = decode_positions(bytes, uid, options.max_parallelism, &positions);
            !ds.is_ok()) {
          problems->push_back(what + " holds state of uid '" + uid + "', which is source '" +
                              it->second->name +
                              "', that is not its split positions: " + ds.message());
          break;
        }
      }
      continue;
    }
    if (op.parallelism < 1 || op.parallelism > options.max_parallelism ||
        op.subtasks.size() != static_cast<size_t>(op.parallelism)) {
      problems->push_back(what + ": operator uid '" + uid + "' has parallelism " +
                          std::to_string(op.parallelism) + " and " +
                          std::to_string(op.subtasks.size()) +
                          " subtask snapshots (expected equal, within max_parallelism)");
    }
  }
}

Status analyze(const LogicalPlan& plan, const ExecutionOptions& options, Analysis* a) {
  std::vector<std::string> problems;
  if (options.worker_threads < 0) {
    problems.push_back("worker_threads must be >= 0 (0 means one per core), got " +
                       std::to_string(options.worker_threads));
  }
  if (options.max_parallelism < 1 || options.max_parallelism > 32768) {
    problems.push_back("max_parallelism must be between 1 and 32768, got " +
                       std::to_string(options.max_parallelism));
  }
  if (options.channel_capacity < 1) {
    problems.push_back("channel_capacity must be >= 1, got " +
                       std::to_string(options.channel_capacity));
  }
  if (options.source_batch_rows < 1) {
    problems.push_back("source_batch_rows must be >= 1, got " +
                       std::to_string(options.source_batch_rows));
  }
  if (options.clock == nullptr) problems.push_back("clock must not be null");
  if (options.checkpoint_interval.count() < 0) {
    problems.push_back("checkpoint_interval must be >= 0 (0: only on demand)");
  }
  if (options.checkpoint_timeout.count() <= 0) problems.push_back("checkpoint_timeout must be > 0");
  if (options.max_concurrent_checkpoints != 1) {
    problems.push_back("max_concurrent_checkpoints must be 1 (the only value supported), got " +
                       std::to_string(options.max_concurrent_checkpoints));
  }
  const bool checkpointing = options.checkpoint_interval.count() > 0 ||
                             options.checkpoint_storage != nullptr ||
                             options.delivery != DeliveryGuarantee::kNone;

  const auto& nodes = plan.nodes();
  const size_t n = nodes.size();
  a->schemas.assign(n, nullptr);
  a->consumers.assign(n, {});
  a->chain_head.assign(n, -1);
  a->key_indices.assign(n, {});
  if (n == 0) problems.push_back("the job has no sources and no sinks");
  bool any_sink = false;

  for (const PlanNode& node : nodes) {
    const std::string where = "'" + node.name + "'";
    if (node.parallelism < 1 || node.parallelism > std::max(options.max_parallelism, 1)) {
      problems.push_back(where + ": parallelism " + std::to_string(node.parallelism) +
                         " must be between 1 and max_parallelism (" +
                         std::to_string(options.max_parallelism) + ")");
    }
    if (node.source) {
      a->schemas[node.id] = node.source->schema();
      if (Status ws = validate_watermark_strategy(node.watermarks, *node.source->schema());
          !ws.is_ok()) {
        problems.push_back(where + ": " + ws.message());
      }
      if (node.source->num_splits() < 1) {
        problems.push_back(where + ": source has no splits");
      }
      if (checkpointing && !node.source->checkpointable()) {
        problems.push_back(where +
                           ": source cannot be checkpointed (its positions cannot be "
                           "recorded), but checkpointing is on");
      }
      continue;
    }
    any_sink |= node.is_sink;
    if (node.inputs.empty()) {
      problems.push_back(where + ": operator has no input");
      continue;
    }
    std::vector<SchemaPtr> inputs;
    bool inputs_ok = true;
    for (const PlanEdge& e : node.inputs) {
      if (e.from < 0 || e.from >= node.id) {
        problems.push_back(where + ": input refers to unknown node " + std::to_string(e.from));
        inputs_ok = false;
        continue;
      }
      const PlanNode& up = nodes[static_cast<size_t>(e.from)];
      if (e.side_output.empty()) a->consumers[static_cast<size_t>(e.from)].push_back(node.id);
      if (up.is_sink) problems.push_back(where + ": reads from sink '" + up.name + "'");
      SchemaPtr s = a->schemas[static_cast<size_t>(e.from)];
      if (s == nullptr) {
        inputs_ok = false;  // the upstream problem is already reported
        continue;
      }
      if (!e.side_output.empty()) {
        // A side output's schema comes from the producing operator for its own inputs.
        if (up.source) {
          problems.push_back(where + ": source '" + up.name + "' has no side output '" +
                             e.side_output + "'");
          inputs_ok = false;
          continue;
        }
        std::vector<SchemaPtr> up_inputs;
        for (const PlanEdge& ue : up.inputs)
          up_inputs.push_back(a->schemas[static_cast<size_t>(ue.from)]);
        auto side = up.factory->side_output_schema(e.side_output, up_inputs);
        if (!side.is_ok()) {
          problems.push_back(where + ": " + side.status().message());
          inputs_ok = false;
          continue;
        }
        s = *side;
      }
      std::vector<int> keys;
      if (e.partitioning == Partitioning::kHash) {
        if (e.key_columns.empty()) problems.push_back(where + ": key_by with no key columns");
        for (const std::string& k : e.key_columns) {
          auto idx = s->require_field_index(k);
          if (!idx.is_ok()) {
            problems.push_back(where + ": key_by: " + idx.status().message());
            inputs_ok = false;
          } else {
            keys.push_back(*idx);
          }
        }
      }
      a->key_indices[static_cast<size_t>(node.id)].push_back(keys);
      inputs.push_back(std::move(s));
    }
    if (!inputs_ok) continue;
    auto out = node.factory->output_schema(inputs);
    if (!out.is_ok()) {
      problems.push_back(where + ": " + out.status().message());
      continue;
    }
    a->schemas[node.id] = *out;
  }
  for (const PlanNode& node : nodes) {
    if (!node.is_sink && a->consumers[static_cast<size_t>(node.id)].empty()) {
      problems.push_back("'" + node.name + "': stream has no sink (its results would be lost)");
    }
  }
  if (n > 0 && !any_sink) problems.push_back("the job has no sink");
  check_uids_and_restore(plan, options, &problems);
  if (!problems.empty()) {
    return Status::invalid_argument("invalid job (" + std::to_string(problems.size()) +
                                    (problems.size() == 1 ? " problem" : " problems") + "):\n  " +
                                    [&] {
                                      std::string s = join_lines(problems);
                                      std::string indented;
                                      for (char c : s) {
                                        indented += c;
                                        if (c == '\n') indented += "  ";
                                      }
                                      return indented;
                                    }());
  }
  // Chaining: a node joins its input's chain when the edge is forward, parallelism is equal, the
  // input has no other consumer and the node takes a single input. A key_by edge between two
  // nodes of parallelism 1 sends every row to the one subtask anyway, so it chains too (keyed
  // operators find their key columns themselves; the router only used them to pick a subtask).
  for (const PlanNode& node : nodes) {
    int head = node.id;
    if (!node.source && node.inputs.size() == 1 && node.inputs[0].side_output.empty() &&
        node.factory->num_logical_inputs() == 1) {
      const PlanNode& up = nodes[static_cast<size_t>(node.inputs[0].from)];
      const Partitioning p = node.inputs[0].partitioning;
      const bool one_to_one =
          p == Partitioning::kForward ||
          (p == Partitioning::kHash && up.parallelism == 1 && node.parallelism == 1);
      if (one_to_one && up.parallelism == node.parallelism && !up.is_sink &&
          a->consumers[static_cast<size_t>(up.id)].size() == 1) {
        head = a->chain_head[static_cast<size_t>(up.id)];
      }
    }
    a->chain_head[static_cast<size_t>(node.id)] = head;
  }
  return Status::ok();
}

// ---------------------------------------------------------------------------------------------
// Watermark alignment (WatermarkStrategy::with_alignment): the source subtasks of one group publish
// their watermarks; one that is more than its drift ahead of the group's lowest parks until a
// publish moves the lowest. While any task aligns checkpoint barriers nobody parks, so a barrier
// is never held back by a paused source.

class AlignmentGroup {
 public:
  explicit AlignmentGroup(const std::atomic<int>* barrier_aligning)
      : barrier_aligning_(barrier_aligning) {}

  // A new member (before the job starts); returns its index.
  int add() {
    wm_.push_back(std::make_unique<std::atomic<int64_t>>(INT64_MIN));
    return static_cast<int>(wm_.size()) - 1;
  }
  // Member i's watermark; INT64_MAX once it is finished or idle. Wakes the parked members.
  void publish(int i, int64_t wm) {
    wm_[static_cast<size_t>(i)]->store(wm);
    wake();
  }
  // True when a member at watermark `wm` may read; otherwise `task` is parked until woken.
  bool may_read_or_park(int64_t wm, int64_t drift, Schedulable* task) {
    if (may_read(wm, drift)) return true;
    {
      std::lock_guard<std::mutex> lock(mu_);
      parked_.push_back(task);
      any_parked_.store(true);
    }
    // A publish between the check and parking may have missed us: check again (a spurious wake
    // later is harmless).
    return may_read(wm, drift);
  }
  void wake() {
    if (!any_parked_.load()) return;
    std::vector<Schedulable*> woken;
    {
      std::lock_guard<std::mutex> lock(mu_);
      woken.swap(parked_);
      any_parked_.store(false);
    }
    for (Schedulable* t : woken) t->notify();
  }

 private:
  bool may_read(int64_t wm, int64_t drift) const {
    if (barrier_aligning_->load() > 0) return true;
    int64_t low = INT64_MAX;
    for (const auto& w : wm_) low = std::min(low, w->load());
    return sat_sub(wm, drift) <= low;
  }

  const std::atomic<int>* barrier_aligning_;
  std::vector<std::unique_ptr<std::atomic<int64_t>>> wm_;
  std::mutex mu_;
  std::vector<Schedulable*> parked_;
  std::atomic<bool> any_parked_{false};
};

// ---------------------------------------------------------------------------------------------
// Job state shared by all tasks.

struct JobState {
  std::atomic<bool> cancelled{false};
  std::mutex mu;
  Status failure;  // first failure wins
  Scheduler* scheduler = nullptr;
  std::shared_ptr<JobMetrics> metrics = std::make_shared<JobMetrics>();
  ExecutionOptions options;
  // Tasks that have not finished; the last one to finish detaches the checkpoint store.
  std::atomic<int> tasks_running{0};
  // Watermark alignment groups by name, and the number of tasks aligning checkpoint barriers.
  std::map<std::string, std::unique_ptr<AlignmentGroup>> alignment_groups;
  std::atomic<int> barrier_aligning{0};

  // A task starts or ends aligning barriers; parked sources read on meanwhile.
  void barrier_alignment(bool begins) {
    if (!begins) {
      barrier_aligning.fetch_sub(1);
      return;
    }
    barrier_aligning.fetch_add(1);
    for (auto& [name, group] : alignment_groups) group->wake();
  }
  // Where subtasks report their snapshots (options.checkpoints, or the job's own when
  // checkpointing is on without one). Null: snapshots are dropped.
  std::shared_ptr<CheckpointStore> store;
  // Null when checkpointing is off.
  std::unique_ptr<CheckpointCoordinator> coordinator;
  // Exactly-once: a task whose input ended stays for the final checkpoint.
  bool lingers = false;

  void fail(Status s) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (failure.is_ok()) failure = std::move(s);
    }
    if (!cancelled.exchange(true)) scheduler->notify_all_tasks();
  }

  // A task returned kFinished (it never runs again).
  void task_finished() {
    if (tasks_running.fetch_sub(1) != 1 || !store) return;
    Status outcome;
    {
      std::lock_guard<std::mutex> lock(mu);
      outcome = failure;
    }
    if (outcome.is_ok() && cancelled.load()) outcome = Status::cancelled("job was cancelled");
    store->detach(outcome);
  }
};

// The key groups [first, end) that subtask `i` of `parallelism` owns: those with
// subtask_for_key_group(kg) == i, i.e. i * max / parallelism <= kg < (i + 1) * max / parallelism
// rounded up.
std::pair<int64_t, int64_t> key_group_range(int i, int parallelism, int max_parallelism) {
  auto ceil_div = [](int64_t a, int64_t b) { return (a + b - 1) / b; };
  return {ceil_div(int64_t{i} * max_parallelism, parallelism),
          ceil_div(int64_t{i + 1} * max_parallelism, parallelism)};
}

// Something a chain element hands its results to: the next operator or the output router.
class Downstream {
 public:
  virtual ~Downstream() = default;
  virtual Status on_batch(const RecordBatch& batch, int input) = 0;
  virtual Status on_watermark(Timestamp time) = 0;
  virtual Status on_barrier(CheckpointId id) = 0;
  virtual Status on_idle(bool idle) = 0;
  virtual Status on_finish() = 0;
};

// Sends a chain's output to the channels of every consumer edge.
class OutputRouter final : public Downstream {
 public:
  struct Edge {
    std::string side_output;  // empty: the main output
    Partitioning partitioning = Partitioning::kForward;
    std::vector<int> key_columns;
    std::vector<Channel*> targets;  // one per downstream subtask (forward: exactly one)
    size_t next_target = 0;         // round robin
  };

  OutputRouter(int max_parallelism, int subtask) : max_parallelism_(max_parallelism) {
    rr_seed_ = static_cast<size_t>(subtask);
  }
  void add_edge(Edge e) {
    e.next_target = rr_seed_ % e.targets.size();
    edges_.push_back(std::move(e));
  }
  bool empty() const { return edges_.empty(); }

  bool has_space() {
    for (Edge& e : edges_) {
      for (Channel* c : e.targets) {
        if (!c->has_space_or_register()) return false;
      }
    }
    return true;
  }

  Status on_batch(const RecordBatch& batch, int /*input*/) override {
    return route(std::string_view(), batch);
  }

  // Sends a batch to the edges of one output (`tag` empty: the main output). Returns false in
  // *routed when no edge reads that output.
  Status route(std::string_view tag, const RecordBatch& batch, bool* routed = nullptr) {
    if (routed) *routed = false;
    if (batch.num_rows() == 0) return Status::ok();
    for (Edge& e : edges_) {
      if (e.side_output != tag) continue;
      if (routed) *routed = true;
      switch (e.partitioning) {
        case Partitioning::kForward:
          e.targets[0]->push(batch);
          break;
        case Partitioning::kRebalance:
          e.targets[e.next_target]->push(batch);
          e.next_target = (e.next_target + 1) % e.targets.size();
          break;
        case Partitioning::kBroadcast:
          for (Channel* c : e.targets) c->push(batch);
          break;
        case Partitioning::kHash:
          SABOT_RETURN_IF_ERROR(scatter_by_key(e, batch));
          break;
      }
    }
    return Status::ok();
  }

  Status on_watermark(Timestamp time) override {
    broadcast(Watermark{time});
    return Status::ok();
  }
  Status on_barrier(CheckpointId id) override {
    broadcast(CheckpointBarrier{id});
    return Status::ok();
  }
  Status on_idle(bool idle) override {
    broadcast(IdleStatus{idle});
    return Status::ok();
  }
  Status on_finish() override {
    broadcast(EndOfInput{});
    return Status::ok();
  }

 private:
  void broadcast(const Event& event) {
    for (Edge& e : edges_) {
      for (Channel* c : e.targets) c->push(event);
    }
  }

  Status scatter_by_key(Edge& e, const RecordBatch& batch) {
    const size_t q = e.targets.size();
    if (q == 1) {
      e.targets[0]->push(batch);
      return Status::ok();
    }
    SABOT_RETURN_IF_ERROR(compute::hash_columns(batch, e.key_columns, &hashes_));
    const int64_t rows = batch.num_rows();
    // Key group -> subtask by contiguous ranges (subtask_for_key_group), precomputed per key
    // group so the per-row work is one modulo (a mask for the usual power-of-two) and one load.
    if (kg_to_target_.size() != static_cast<size_t>(max_parallelism_) || kg_targets_for_ != q) {
      kg_to_target_.resize(static_cast<size_t>(max_parallelism_));
      for (int kg = 0; kg < max_parallelism_; ++kg) {
        kg_to_target_[static_cast<size_t>(kg)] =
            static_cast<uint32_t>(subtask_for_key_group(kg, static_cast<int>(q), max_parallelism_));
      }
      kg_targets_for_ = q;
    }
    targets_.resize(static_cast<size_t>(rows));
    counts_.assign(q, 0);
    const uint64_t maxp = static_cast<uint64_t>(max_parallelism_);
    const uint32_t* table = kg_to_target_.data();
    const uint64_t* h = hashes_.data();
    uint32_t* tgt = targets_.data();
    if ((maxp & (maxp - 1)) == 0) {
      for (int64_t i = 0; i < rows; ++i) tgt[i] = table[h[i] & (maxp - 1)];
    } else {
      for (int64_t i = 0; i < rows; ++i) tgt[i] = table[h[i] % maxp];
    }
    for (int64_t i = 0; i < rows; ++i) ++counts_[tgt[i]];
    // Counting sort of row indices by target, then one take per target.
    starts_.assign(q + 1, 0);
    for (size_t t = 0; t < q; ++t) starts_[t + 1] = starts_[t] + counts_[t];
    indices_.resize(static_cast<size_t>(rows));
    fill_.assign(starts_.begin(), starts_.end() - 1);
    for (int64_t i = 0; i < rows; ++i) {
      indices_[static_cast<size_t>(fill_[targets_[static_cast<size_t>(i)]]++)] =
          static_cast<int32_t>(i);
    }
    for (size_t t = 0; t < q; ++t) {
      if (counts_[t] == 0) continue;
      if (counts_[t] == rows) {
        e.targets[t]->push(batch);
        continue;
      }
      std::span<const int32_t> sel(indices_.data() + starts_[t], static_cast<size_t>(counts_[t]));
      SABOT_ASSIGN_OR_RETURN(RecordBatch part, compute::take(batch, sel));
      e.targets[t]->push(std::move(part));
    }
    return Status::ok();
  }

  int max_parallelism_;
  size_t rr_seed_ = 0;
  std::vector<Edge> edges_;
  // Scratch reused across batches: no per-batch allocation once warmed up.
  std::vector<uint64_t> hashes_;
  std::vector<uint32_t> targets_;
  std::vector<uint32_t> kg_to_target_;
  size_t kg_targets_for_ = 0;
  std::vector<int64_t> counts_;
  std::vector<int64_t> starts_;
  std::vector<int64_t> fill_;
  std::vector<int32_t> indices_;
};

class StreamTask;

// Runs one operator of a chain: counts, times and attributes errors to it.
class OpRunner final : public Downstream, public Output {
 public:
  OpRunner(std::unique_ptr<Operator> op, std::string name, OperatorContext ctx,
           OperatorCounters* counters, bool* error_attributed, CheckpointStore* checkpoints,
           std::vector<const std::string*> restore)
      : op_(std::move(op)),
        name_(std::move(name)),
        ctx_(std::move(ctx)),
        counters_(counters),
        error_attributed_(error_attributed),
        checkpoints_(checkpoints),
        restore_(std::move(restore)) {}

  void set_next(Downstream* next) { next_ = next; }
  // Edges reading this operator's side outputs (owned by the task).
  void set_side_router(OutputRouter* side) { side_ = side; }
  OperatorCounters* counters() { return counters_; }
  const OperatorContext& context() const { return ctx_; }

  // open(), then restore_state() once per old snapshot given (the snapshot stays owned by the
  // job's options and is not copied).
  Status open() {
    SABOT_RETURN_IF_ERROR(guarded([&] { return op_->open(ctx_); }, "open"));
    for (const std::string* bytes : restore_) {
      SABOT_RETURN_IF_ERROR(guarded([&] { return op_->restore_state(*bytes); }, "restore"));
    }
    restore_.clear();
    return Status::ok();
  }

  Status on_batch(const RecordBatch& batch, int input) override {
    counters_->records_in.fetch_add(batch.num_rows(), std::memory_order_relaxed);
    counters_->batches_in.fetch_add(1, std::memory_order_relaxed);
    counters_->bytes_in.fetch_add(batch_bytes(batch), std::memory_order_relaxed);
    return published_keys(timed([&] { return op_->process_batch(batch, input, *this); }));
  }
  Status on_watermark(Timestamp time) override {
    counters_->input_watermark_ms.store(time.millis(), std::memory_order_relaxed);
    return published_keys(timed([&] { return op_->process_watermark(time, *this); }));
  }
  // Publishes the operator's key count (keyed stateful operators) and passes `s` on.
  Status published_keys(Status s) {
    if (const int64_t keys = op_->state_keys(); keys >= 0) {
      counters_->state_keys.store(keys, std::memory_order_relaxed);
    }
    return s;
  }
  Status on_barrier(CheckpointId id) override {
    SABOT_RETURN_IF_ERROR(snapshot_and_report(id));
    if (side_) SABOT_RETURN_IF_ERROR(side_->on_barrier(id));
    return next_ ? next_->on_barrier(id) : Status::ok();
  }
  // Snapshots the operator for checkpoint `id` and reports it, without passing a barrier on
  // (also used after finish(), when no barrier can arrive any more).
  Status snapshot_and_report(CheckpointId id) {
    std::string state;
    // Room for a snapshot a little larger than the last one: growing a large snapshot by
    // doubling copies (and faults in) its bytes again at every step, on the task's thread.
    state.reserve(last_snapshot_bytes_ + last_snapshot_bytes_ / 8);
    const int64_t t0 = now_ns();
    SABOT_RETURN_IF_ERROR(timed([&] { return op_->snapshot_state(id, &state); }));
    std::vector<checkpoint::SharedFile> files = op_->take_shared_files();
    const int64_t spent = now_ns() - t0;
    last_snapshot_bytes_ = state.size();
    counters_->state_bytes.store(static_cast<int64_t>(state.size()), std::memory_order_relaxed);
    counters_->snapshots.fetch_add(1, std::memory_order_relaxed);
    counters_->snapshot_ns.fetch_add(spent, std::memory_order_relaxed);
    if (spent > counters_->snapshot_max_ns.load(std::memory_order_relaxed)) {
      counters_->snapshot_max_ns.store(spent, std::memory_order_relaxed);
    }
    if (checkpoints_) {
      SABOT_RETURN_IF_ERROR(guarded(
          [&] {
            return checkpoints_->report(id, ctx_.uid, ctx_.subtask_index, ctx_.parallelism,
                                        std::move(state), std::move(files));
          },
          "checkpoint"));
    }
    return Status::ok();
  }
  // Checkpoint `id` is durable (called on the task's thread, between events).
  Status notify_complete(CheckpointId id) {
    return guarded([&] { return op_->notify_checkpoint_complete(id); }, "checkpoint commit");
  }
  Timestamp next_processing_time() const { return op_->next_processing_time(); }
  Status on_processing_time(Timestamp now) {
    return published_keys(timed([&] { return op_->on_processing_time(now, *this); }));
  }
  Status on_idle(bool idle) override {
    if (side_) SABOT_RETURN_IF_ERROR(side_->on_idle(idle));
    return next_ ? next_->on_idle(idle) : Status::ok();
  }
  Status on_finish() override {
    SABOT_RETURN_IF_ERROR(timed([&] { return op_->finish(*this); }));
    if (side_) SABOT_RETURN_IF_ERROR(side_->on_finish());
    return next_ ? next_->on_finish() : Status::ok();
  }

  // Output, called by the operator.
  Status emit(const RecordBatch& batch) override {
    if (batch.num_rows() == 0 || next_ == nullptr) return Status::ok();
    counters_->records_out.fetch_add(batch.num_rows(), std::memory_order_relaxed);
    counters_->batches_out.fetch_add(1, std::memory_order_relaxed);
    counters_->bytes_out.fetch_add(batch_bytes(batch), std::memory_order_relaxed);
    int64_t t0 = now_ns();
    Status s = next_->on_batch(batch, 0);
    child_ns_ += now_ns() - t0;
    return s;
  }
  Status emit_watermark(Timestamp time) override {
    if (side_) SABOT_RETURN_IF_ERROR(side_->on_watermark(time));
    if (next_ == nullptr) return Status::ok();
    int64_t t0 = now_ns();
    Status s = next_->on_watermark(time);
    child_ns_ += now_ns() - t0;
    return s;
  }
  Status emit_side(std::string_view tag, const RecordBatch& batch) override {
    bool routed = false;
    if (side_) SABOT_RETURN_IF_ERROR(side_->route(tag, batch, &routed));
    if (!routed) counters_->records_dropped.fetch_add(batch.num_rows(), std::memory_order_relaxed);
    return Status::ok();
  }

 private:
  template <typename F>
  Status timed(F&& f) {
    int64_t child_before = child_ns_;
    int64_t t0 = now_ns();
    Status s = guarded(f, "");
    int64_t spent = now_ns() - t0 - (child_ns_ - child_before);
    counters_->busy_ns.fetch_add(spent, std::memory_order_relaxed);
    return s;
  }

  // Turns exceptions into errors and names this operator in the first error of the task.
  template <typename F>
  Status guarded(F&& f, const char* phase) {
    Status s;
    try {
      s = f();
    } catch (const std::exception& e) {
      s = Status::internal(std::string("exception: ") + e.what());
    } catch (...) {
      s = Status::internal("unknown exception");
    }
    if (!s.is_ok() && !*error_attributed_) {
      *error_attributed_ = true;
      std::string prefix = "operator '" + name_ + "' (subtask " +
                           std::to_string(ctx_.subtask_index + 1) + " of " +
                           std::to_string(ctx_.parallelism) + ")";
      if (phase[0] != '\0') prefix += std::string(" in ") + phase;
      std::string msg = prefix + " failed: " + s.message();
      s = Status(s.code(), std::move(msg));
    }
    return s;
  }

  std::unique_ptr<Operator> op_;
  std::string name_;
  OperatorContext ctx_;
  OperatorCounters* counters_;
  bool* error_attributed_;
  CheckpointStore* checkpoints_;             // null: snapshots are dropped
  std::vector<const std::string*> restore_;  // old snapshots for open(), then cleared
  Downstream* next_ = nullptr;
  OutputRouter* side_ = nullptr;
  int64_t child_ns_ = 0;
  size_t last_snapshot_bytes_ = 0;  // the size of the previous snapshot, to reserve the next
};

// One parallel instance of a chain: optional source reader, chained operators, output router.
class StreamTask final : public Schedulable {
 public:
  StreamTask(JobState* job, std::string name, int max_parallelism, int subtask)
      : job_(job), name_(std::move(name)), router_(max_parallelism, subtask) {}

  // Configuration (before the job starts).
  void set_source(std::unique_ptr<SourceReader> reader, OperatorCounters* counters,
                  int metrics_index, int subtask, std::string source_name,
                  WatermarkStrategy strategy, const std::vector<int>& splits,
                  const OperatorContext& ctx, bool checkpointable, CheckpointStore* store) {
    source_ctx_ = ctx;
    source_checkpointable_ = checkpointable;
    checkpoints_ = store;
    strategy_ = std::move(strategy);
    for (int split : splits) split_time_[split] = SplitTime{};
    if (splits.empty()) split_time_[-1] = SplitTime{};
    reader_ = std::move(reader);
    source_counters_ = counters;
    source_metrics_index_ = metrics_index;
    subtask_ = subtask;
    source_name_ = std::move(source_name);
  }
  void add_operator(std::unique_ptr<OpRunner> runner, int node_id) {
    chain_.push_back(std::move(runner));
    chain_nodes_.push_back(node_id);
    side_routers_.emplace_back();
  }
  // The router for side outputs of chain member `node_id`, created on first use.
  OutputRouter& side_router(int node_id, int max_parallelism, int subtask) {
    for (size_t i = 0; i < chain_nodes_.size(); ++i) {
      if (chain_nodes_[i] != node_id) continue;
      if (!side_routers_[i]) {
        side_routers_[i] = std::make_unique<OutputRouter>(max_parallelism, subtask);
        chain_[i]->set_side_router(side_routers_[i].get());
      }
      return *side_routers_[i];
    }
    SABOT_CHECK(false);
    return router_;
  }
  void set_alignment(AlignmentGroup* group, int member) {
    align_ = group;
    align_member_ = member;
  }
  // `gauges`: where this input's event time is published (owned by the job's metrics).
  void add_input(Channel* c, InputGauges* gauges) {
    inputs_.push_back(c);
    input_gauges_.push_back(gauges);
  }
  OutputRouter& router() { return router_; }
  bool* error_attributed() { return &error_attributed_; }
  const std::string& name() const { return name_; }

  void link() {
    for (size_t i = 0; i + 1 < chain_.size(); ++i) chain_[i]->set_next(chain_[i + 1].get());
    Downstream* tail = router_.empty() ? nullptr : static_cast<Downstream*>(&router_);
    if (!chain_.empty()) chain_.back()->set_next(tail);
    head_ = chain_.empty() ? tail : chain_.front().get();
    channel_wm_.assign(inputs_.size(), Timestamp::min().millis());
    channel_ended_.assign(inputs_.size(), false);
    channel_idle_.assign(inputs_.size(), false);
    channel_barrier_.assign(inputs_.size(), -1);
  }

  RunResult run_quantum() override {
    RunResult r = run_quantum_once();
    if (r == RunResult::kFinished) job_->task_finished();
    return r;
  }

 private:
  RunResult run_quantum_once() {
    if (job_->cancelled.load(std::memory_order_relaxed)) return RunResult::kFinished;
    if (job_->coordinator && opened_) {
      // Between events: commit what the newest durable checkpoint covers (one relaxed load).
      Status s = deliver_notifications();
      if (s.is_ok() && lingering_) {
        RunResult r = RunResult::kWaiting;
        s = linger(&r);
        if (s.is_ok()) return r;
      }
      if (!s.is_ok()) {
        job_->fail(std::move(s));
        return RunResult::kFinished;
      }
    }
    if (blocked_since_ != 0) {
      OperatorCounters* c = chain_.empty() ? source_counters_ : chain_.back()->counters();
      if (c) c->blocked_ns.fetch_add(now_ns() - blocked_since_, std::memory_order_relaxed);
      blocked_since_ = 0;
    }
    try {
      Status s = opened_ ? Status::ok() : open();
      if (s.is_ok()) s = fire_processing_timers();
      if (s.is_ok()) {
        RunResult r = RunResult::kFinished;
        s = reader_ ? run_source(&r) : run_inputs(&r);
        if (s.is_ok() && r == RunResult::kFinished && finished_ && job_->lingers) {
          // Exactly-once: stay for the final checkpoint and its commit.
          lingering_ = true;
          job_->coordinator->chain_finished();
          s = linger(&r);
        }
        // Parked tasks are not woken by time: poll the clock while timers are pending.
        if (s.is_ok() && r == RunResult::kWaiting && !finished_ && has_processing_timers()) {
          r = RunResult::kPollLater;
        }
        if (s.is_ok()) return r;
      }
      job_->fail(std::move(s));
    } catch (const std::exception& e) {
      job_->fail(Status::internal("task '" + name_ + "' failed: exception: " + e.what()));
    }
    return RunResult::kFinished;
  }

  Status open() {
    opened_ = true;
    for (auto& r : chain_) SABOT_RETURN_IF_ERROR(r->open());
    return Status::ok();
  }

  // Calls notify_checkpoint_complete on every operator of the chain when a newer checkpoint has
  // become durable since the last call.
  Status deliver_notifications() {
    const int64_t done = job_->coordinator->completed.load(std::memory_order_relaxed);
    if (done <= notified_) return Status::ok();
    notified_ = done;
    if (reader_ && source_checkpointable_) {
      SABOT_RETURN_IF_ERROR(reader_->notify_checkpoint_complete(CheckpointId(done)));
    }
    for (auto& op : chain_) SABOT_RETURN_IF_ERROR(op->notify_complete(CheckpointId(done)));
    return Status::ok();
  }

  // The task's input has ended and finish() ran: it snapshots its operators (and, for a source,
  // its end positions) for every checkpoint triggered from now on, since no barrier can reach it
  // any more, and ends once the final checkpoint is durable and notified.
  Status linger(RunResult* result) {
    const int64_t t = job_->coordinator->trigger.load(std::memory_order_relaxed);
    if (t > last_checkpoint_) {
      last_checkpoint_ = t;
      if (reader_) SABOT_RETURN_IF_ERROR(report_positions(CheckpointId(t)));
      for (auto& op : chain_) SABOT_RETURN_IF_ERROR(op->snapshot_and_report(CheckpointId(t)));
    }
    SABOT_RETURN_IF_ERROR(deliver_notifications());
    const int64_t final_id = job_->coordinator->final_id.load(std::memory_order_relaxed);
    *result = final_id >= 0 && notified_ >= final_id ? RunResult::kFinished : RunResult::kWaiting;
    return Status::ok();
  }

  // A source's part of checkpoint `id`: its reader's split positions in the snapshot envelope
  // (uid of the source, state type "source-positions"), or nothing when it cannot be
  // checkpointed.
  Status report_positions(CheckpointId id) {
    if (checkpoints_ == nullptr) return Status::ok();
    std::string bytes;
    if (source_checkpointable_) {
      auto positions = reader_->snapshot_positions();
      if (!positions.is_ok()) {
        return positions.status().with_context(
            "source '" + source_name_ + "' (subtask " + std::to_string(subtask_ + 1) +
            ") taking its positions for checkpoint " + std::to_string(id.value()));
      }
      reader_->positions_taken(id, *positions);
      encode_positions(source_ctx_.uid, source_ctx_.max_parallelism, *positions, &bytes);
    }
    return checkpoints_->report(id, source_ctx_.uid, source_ctx_.subtask_index,
                                source_ctx_.parallelism, std::move(bytes));
  }

  // Source tasks: barrier `id` goes out after the positions are recorded.
  Status inject_barrier(CheckpointId id) {
    last_checkpoint_ = std::max(last_checkpoint_, id.value());
    SABOT_RETURN_IF_ERROR(report_positions(id));
    return head_ ? head_->on_barrier(id) : Status::ok();
  }

  bool outputs_have_space() {
    if (!router_.has_space()) return false;
    for (auto& r : side_routers_) {
      if (r && !r->has_space()) return false;
    }
    return true;
  }

  Status fire_processing_timers() {
    if (finished_) return Status::ok();
    Timestamp now = Timestamp::max();
    for (auto& op : chain_) {
      Timestamp due = op->next_processing_time();
      if (due == Timestamp::max()) continue;
      if (now == Timestamp::max()) now = job_->options.clock->now();
      if (due <= now) SABOT_RETURN_IF_ERROR(op->on_processing_time(now));
    }
    return Status::ok();
  }
  bool has_processing_timers() const {
    for (const auto& op : chain_) {
      if (op->next_processing_time() != Timestamp::max()) return true;
    }
    return false;
  }

  RunResult wait_for_output() {
    blocked_since_ = now_ns();
    return RunResult::kWaiting;
  }

  Status deliver(const RecordBatch& batch, int input) {
    return head_ ? head_->on_batch(batch, input) : Status::ok();
  }
  Status deliver_watermark(Timestamp t) { return head_ ? head_->on_watermark(t) : Status::ok(); }
  Status finish_chain() {
    finished_ = true;
    return head_ ? head_->on_finish() : Status::ok();
  }

  Status run_source(RunResult* result) {
    const int64_t rows = job_->options.source_batch_rows;
    for (int budget = 8; budget > 0; --budget) {
      if (job_->coordinator) {
        // A checkpoint was triggered: record positions and inject its barrier at this poll
        // boundary (channels take a barrier even when full).
        const int64_t t = job_->coordinator->trigger.load(std::memory_order_relaxed);
        if (t > last_checkpoint_) SABOT_RETURN_IF_ERROR(inject_barrier(CheckpointId(t)));
      }
      if (!outputs_have_space()) {
        *result = wait_for_output();
        return Status::ok();
      }
      if (align_ && !align_->may_read_or_park(source_wm_, strategy_.max_drift.count(), this)) {
        *result = RunResult::kWaiting;  // ahead of the alignment group: woken when it moves
        return Status::ok();
      }
      Result<SourcePoll> polled = [&]() -> Result<SourcePoll> {
        try {
          return reader_->poll(rows);
        } catch (const std::exception& e) {
          return Status::internal(std::string("exception: ") + e.what());
        }
      }();
      if (!polled.is_ok()) {
        return Status(polled.status().code(), "source '" + source_name_ + "' (subtask " +
                                                  std::to_string(subtask_ + 1) +
                                                  ") failed: " + polled.status().message());
      }
      SourcePoll& p = *polled;
      if (p.dropped > 0) {
        source_counters_->records_dropped.fetch_add(p.dropped, std::memory_order_relaxed);
      }
      if (p.kind == SourcePoll::Kind::kBatch) {
        source_counters_->records_out.fetch_add(p.batch.num_rows(), std::memory_order_relaxed);
        source_counters_->batches_out.fetch_add(1, std::memory_order_relaxed);
        source_counters_->bytes_out.fetch_add(batch_bytes(p.batch), std::memory_order_relaxed);
        publish_progress(false);
        SABOT_RETURN_IF_ERROR(deliver(p.batch, 0));
        if (strategy_.kind != WatermarkStrategy::Kind::kNone && p.batch.num_rows() > 0) {
          SABOT_RETURN_IF_ERROR(observe_batch(p.batch, p.split));
        }
      }
      if (p.watermark) SABOT_RETURN_IF_ERROR(deliver_watermark(*p.watermark));
      if (p.barrier) SABOT_RETURN_IF_ERROR(inject_barrier(*p.barrier));
      if (p.kind == SourcePoll::Kind::kIdle) {
        if (strategy_.kind != WatermarkStrategy::Kind::kNone) {
          SABOT_RETURN_IF_ERROR(emit_source_watermark());
        }
        publish_position();
        publish_progress(false);
        *result = RunResult::kPollLater;
        return Status::ok();
      }
      if (p.kind == SourcePoll::Kind::kEnd) {
        publish_position();
        publish_progress(true);
        if (align_) align_->publish(align_member_, INT64_MAX);
        // A bounded input is complete: event time advances to the end so every window fires.
        SABOT_RETURN_IF_ERROR(deliver_watermark(Timestamp::max()));
        SABOT_RETURN_IF_ERROR(finish_chain());
        *result = RunResult::kFinished;
        return Status::ok();
      }
    }
    publish_position();
    *result = RunResult::kYield;
    return Status::ok();
  }

  // Per-split event time: the largest timestamp seen and when the split last had data.
  struct SplitTime {
    int64_t max_ts = INT64_MIN;
    int64_t last_active_ms = INT64_MIN;  // INT64_MIN: not yet (set on first check)
    bool idle = false;
    SplitGauges* gauges = nullptr;  // registered on first use
  };

  Status observe_batch(const RecordBatch& batch, int split) {
    // A reader that does not name the split of a batch: its batches count as one split (the
    // assigned splits, which would never see data, must not hold the watermark back).
    if (split < 0 && !split_time_.contains(-1)) split_time_.clear();
    auto it = split_time_.find(split);
    if (it == split_time_.end()) it = split_time_.emplace(split, SplitTime{}).first;
    const int col = batch.schema().field_index(strategy_.timestamp_column);
    const int64_t ts = max_event_time_millis(batch.column(col));
    SplitTime& st = it->second;
    if (ts != INT64_MIN) st.max_ts = std::max(st.max_ts, ts);
    st.last_active_ms = job_->options.clock->now().millis();
    st.idle = false;
    if (st.gauges == nullptr) {
      st.gauges = job_->metrics->add_split(source_metrics_index_, subtask_, split);
    }
    st.gauges->max_event_time_ms.store(st.max_ts, std::memory_order_relaxed);
    st.gauges->last_data_ms.store(st.last_active_ms, std::memory_order_relaxed);
    return emit_source_watermark();
  }

  // The reader's watermark: minimum over active splits of (max timestamp - bound - 1). Splits
  // without data for the idle timeout do not count; when all are idle, downstream is told so.
  Status emit_source_watermark() {
    const int64_t now = job_->options.clock->now().millis();
    const int64_t timeout = strategy_.idle_timeout.count();
    const int64_t bound = strategy_.kind == WatermarkStrategy::Kind::kBoundedOutOfOrderness
                              ? strategy_.max_out_of_orderness.count()
                              : 0;
    int64_t low = INT64_MAX;
    bool any_active = false;
    for (auto& [split, st] : split_time_) {
      if (st.last_active_ms == INT64_MIN) st.last_active_ms = now;
      if (timeout > 0 && !st.idle && now - st.last_active_ms >= timeout) st.idle = true;
      if (st.gauges != nullptr) {
        st.gauges->idle.store(st.idle, std::memory_order_relaxed);
        st.gauges->watermark_ms.store(st.max_ts == INT64_MIN ? INT64_MIN : st.max_ts - bound - 1,
                                      std::memory_order_relaxed);
      }
      if (st.idle) continue;
      any_active = true;
      low = std::min(low, st.max_ts == INT64_MIN ? INT64_MIN : st.max_ts - bound - 1);
    }
    if (!any_active) {
      if (!source_idle_) {
        source_idle_ = true;
        if (align_) align_->publish(align_member_, INT64_MAX);
        if (head_) SABOT_RETURN_IF_ERROR(head_->on_idle(true));
      }
      return Status::ok();
    }
    if (source_idle_) {
      source_idle_ = false;
      if (align_) align_->publish(align_member_, source_wm_);
      if (head_) SABOT_RETURN_IF_ERROR(head_->on_idle(false));
    }
    if (low != INT64_MIN && low > source_wm_) {
      source_wm_ = low;
      source_counters_->input_watermark_ms.store(low, std::memory_order_relaxed);
      if (align_) align_->publish(align_member_, low);
      return deliver_watermark(Timestamp(low));
    }
    return Status::ok();
  }

  void publish_position() {
    job_->metrics->set_position(source_metrics_index_, subtask_, reader_->position());
  }

  // The reader's offsets and end offsets, at most once per second of the job's clock unless
  // `force` (the end of the input).
  void publish_progress(bool force) {
    const int64_t now = job_->options.clock->now().millis();
    if (!force && last_progress_ms_ != INT64_MIN && now - last_progress_ms_ < 1000) return;
    last_progress_ms_ = now;
    for (const SplitProgress& sp : reader_->progress()) {
      PartitionGauges*& g = progress_gauges_[sp.split];
      if (g == nullptr) g = job_->metrics->add_partition(source_metrics_index_, subtask_, sp.split);
      g->offset.store(sp.offset, std::memory_order_relaxed);
      g->end_offset.store(sp.end_offset, std::memory_order_relaxed);
    }
  }

  // Round robin over channels that are not held back by barrier alignment.
  bool next_event(Event* e, size_t* from) {
    const size_t n = inputs_.size();
    for (size_t k = 0; k < n; ++k) {
      size_t i = (rr_ + k) % n;
      if (channel_ended_[i] || (aligning_ >= 0 && channel_barrier_[i] == aligning_)) continue;
      if (inputs_[i]->try_pop(e)) {
        rr_ = i + 1;
        *from = i;
        return true;
      }
    }
    return false;
  }

  Status run_inputs(RunResult* result) {
    for (int budget = 16; budget > 0; --budget) {
      if (!outputs_have_space()) {
        *result = wait_for_output();
        return Status::ok();
      }
      Event e;
      size_t ch = 0;
      if (!next_event(&e, &ch)) {
        *result = RunResult::kWaiting;
        return Status::ok();
      }
      SABOT_RETURN_IF_ERROR(handle(e, ch));
      if (finished_) {
        *result = RunResult::kFinished;
        return Status::ok();
      }
    }
    *result = RunResult::kYield;
    return Status::ok();
  }

  Status handle(Event& e, size_t ch) {
    if (auto* batch = std::get_if<RecordBatch>(&e)) {
      return deliver(*batch, inputs_[ch]->logical_input());
    }
    if (auto* wm = std::get_if<Watermark>(&e)) {
      channel_wm_[ch] = std::max(channel_wm_[ch], wm->time.millis());
      input_gauges_[ch]->watermark_ms.store(channel_wm_[ch], std::memory_order_relaxed);
      return advance_watermark();
    }
    if (auto* idle = std::get_if<IdleStatus>(&e)) {
      channel_idle_[ch] = idle->idle;
      input_gauges_[ch]->idle.store(idle->idle, std::memory_order_relaxed);
      return update_idleness();
    }
    if (auto* barrier = std::get_if<CheckpointBarrier>(&e)) {
      channel_barrier_[ch] = barrier->id.value();
      if (aligning_ < 0) {
        job_->barrier_alignment(true);
        aligning_since_ns_ = now_ns();
      }
      aligning_ = barrier->id.value();
      return maybe_complete_alignment();
    }
    // End of input on this channel.
    channel_ended_[ch] = true;
    input_gauges_[ch]->ended.store(true, std::memory_order_relaxed);
    ++ended_;
    if (ended_ == inputs_.size()) return finish_chain();
    SABOT_RETURN_IF_ERROR(maybe_complete_alignment());
    return advance_watermark();
  }

  // All live inputs idle: this task is idle too, and says so downstream.
  Status update_idleness() {
    bool all_idle = true;
    for (size_t i = 0; i < inputs_.size(); ++i) {
      if (!channel_ended_[i] && !channel_idle_[i]) all_idle = false;
    }
    if (all_idle != inputs_idle_) {
      inputs_idle_ = all_idle;
      if (head_) SABOT_RETURN_IF_ERROR(head_->on_idle(all_idle));
    }
    return all_idle ? Status::ok() : advance_watermark();
  }

  Status advance_watermark() {
    int64_t low = Timestamp::max().millis();
    bool any = false;
    for (size_t i = 0; i < inputs_.size(); ++i) {
      if (channel_ended_[i] || channel_idle_[i]) continue;
      low = std::min(low, channel_wm_[i]);
      any = true;
    }
    if (!any || low <= current_wm_) return Status::ok();
    current_wm_ = low;
    return deliver_watermark(Timestamp(low));
  }

  // Barrier n has arrived on every live input: snapshot the chain and pass the barrier on.
  Status maybe_complete_alignment() {
    if (aligning_ < 0) return Status::ok();
    for (size_t i = 0; i < inputs_.size(); ++i) {
      if (!channel_ended_[i] && channel_barrier_[i] != aligning_) return Status::ok();
    }
    CheckpointId id(aligning_);
    aligning_ = -1;
    job_->barrier_alignment(false);
    if (!chain_.empty()) {
      OperatorCounters* c = chain_.front()->counters();
      const int64_t spent = now_ns() - aligning_since_ns_;
      c->alignment_ns.fetch_add(spent, std::memory_order_relaxed);
      if (spent > c->alignment_max_ns.load(std::memory_order_relaxed)) {
        c->alignment_max_ns.store(spent, std::memory_order_relaxed);
      }
    }
    last_checkpoint_ = std::max(last_checkpoint_, id.value());
    return head_ ? head_->on_barrier(id) : Status::ok();
  }

  JobState* job_;
  std::string name_;
  OutputRouter router_;
  std::vector<std::unique_ptr<OpRunner>> chain_;
  std::vector<int> chain_nodes_;                             // plan node of each chain member
  std::vector<std::unique_ptr<OutputRouter>> side_routers_;  // per chain member, may be null
  std::vector<Channel*> inputs_;
  Downstream* head_ = nullptr;
  bool error_attributed_ = false;
  bool opened_ = false;
  bool finished_ = false;
  int64_t blocked_since_ = 0;

  // Source tasks.
  WatermarkStrategy strategy_;
  std::map<int, SplitTime> split_time_;
  std::map<int, PartitionGauges*> progress_gauges_;
  int64_t last_progress_ms_ = INT64_MIN;
  int64_t source_wm_ = INT64_MIN;
  bool source_idle_ = false;
  std::unique_ptr<SourceReader> reader_;
  OperatorCounters* source_counters_ = nullptr;
  int source_metrics_index_ = 0;
  int subtask_ = 0;
  std::string source_name_;
  AlignmentGroup* align_ = nullptr;  // watermark alignment, if the strategy names a group
  int align_member_ = -1;
  OperatorContext source_ctx_;
  bool source_checkpointable_ = false;
  CheckpointStore* checkpoints_ = nullptr;  // null: snapshots are dropped

  // Checkpoints.
  int64_t last_checkpoint_ = -1;  // newest checkpoint this task snapshotted
  int64_t notified_ = -1;         // newest checkpoint its operators were notified of
  bool lingering_ = false;        // input ended, waiting for the final checkpoint

  // Input bookkeeping.
  std::vector<InputGauges*> input_gauges_;  // per input, owned by the job's metrics
  int64_t aligning_since_ns_ = 0;
  std::vector<int64_t> channel_wm_;
  std::vector<bool> channel_ended_;
  std::vector<bool> channel_idle_;
  bool inputs_idle_ = false;
  std::vector<int64_t> channel_barrier_;
  size_t ended_ = 0;
  size_t rr_ = 0;
  int64_t current_wm_ = Timestamp::min().millis();
  int64_t aligning_ = -1;
};

// The old subtask snapshots of `node`'s uid that subtask `s` restores: those whose key-group range
// overlaps its own, in old subtask order. Empty snapshots (no state) are left out.
std::vector<const std::string*> snapshots_to_restore(const ExecutionOptions& options,
                                                     const PlanNode& node, int s) {
  std::vector<const std::string*> out;
  if (!options.restore_from) return out;
  auto it = options.restore_from->operators.find(node.uid);
  if (it == options.restore_from->operators.end()) return out;
  const OperatorSnapshot& old = it->second;
  const auto [first, end] = key_group_range(s, node.parallelism, options.max_parallelism);
  for (int i = 0; i < old.parallelism && i < static_cast<int>(old.subtasks.size()); ++i) {
    if (old.subtasks[static_cast<size_t>(i)].empty()) continue;
    const auto [old_first, old_end] = key_group_range(i, old.parallelism, options.max_parallelism);
    if (old_first < end && first < old_end) out.push_back(&old.subtasks[static_cast<size_t>(i)]);
  }
  return out;
}

// Restores the positions of the splits `splits` of a new source subtask from every old subtask
// snapshot of the source's uid (any old parallelism: positions are per split).
Status restore_source_positions(const ExecutionOptions& options, const PlanNode& node,
                                const std::vector<int>& splits, SourceReader& reader) {
  if (!options.restore_from) return Status::ok();
  auto it = options.restore_from->operators.find(node.uid);
  if (it == options.restore_from->operators.end()) return Status::ok();
  std::vector<SplitPosition> all;
  for (const std::string& bytes : it->second.subtasks) {
    if (bytes.empty()) continue;
    SABOT_RETURN_IF_ERROR(decode_positions(bytes, node.uid, options.max_parallelism, &all));
  }
  std::vector<SplitPosition> mine;
  for (SplitPosition& p : all) {
    if (std::find(splits.begin(), splits.end(), p.split) != splits.end()) {
      mine.push_back(std::move(p));
    }
  }
  if (mine.empty()) return Status::ok();
  return reader.restore_positions(mine);
}

}  // namespace

// ---------------------------------------------------------------------------------------------

struct Job::Impl {
  JobState state;
  std::unique_ptr<Scheduler> scheduler;
  std::vector<std::unique_ptr<Channel>> channels;
  std::vector<std::unique_ptr<StreamTask>> tasks;
  std::string description;
  bool waited = false;
  Status outcome;
};

Status validate_plan(const LogicalPlan& plan, const ExecutionOptions& options) {
  Analysis a;
  return analyze(plan, options, &a);
}

Job::Job(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Job::~Job() {
  if (impl_ && !impl_->waited) {
    cancel();
    (void)wait();
  }
}

Result<std::unique_ptr<Job>> Job::start(const LogicalPlan& plan, ExecutionOptions options) {
  Analysis a;
  SABOT_RETURN_IF_ERROR(analyze(plan, options, &a));
  if (options.worker_threads == 0) {
    options.worker_threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  }
  auto impl = std::make_unique<Impl>();
  impl->state.options = options;
  const bool checkpointing = options.checkpoint_interval.count() > 0 ||
                             options.checkpoint_storage != nullptr ||
                             options.delivery != DeliveryGuarantee::kNone;
  impl->state.store = options.checkpoints;
  if (checkpointing && !impl->state.store) impl->state.store = std::make_shared<CheckpointStore>();
  impl->state.lingers = checkpointing && options.delivery == DeliveryGuarantee::kExactlyOnce;
  impl->scheduler = std::make_unique<Scheduler>(options.worker_threads);
  impl->state.scheduler = impl->scheduler.get();
  JobState* job = &impl->state;
  const auto& nodes = plan.nodes();

  // Tasks: one per chain head and subtask. Chain members are added in node order.
  std::vector<std::vector<StreamTask*>> task_of(nodes.size());  // per chain head
  int operator_subtasks = 0;
  std::string desc;
  for (const PlanNode& node : nodes) {
    const int head = a.chain_head[static_cast<size_t>(node.id)];
    if (head == node.id) {
      for (int s = 0; s < node.parallelism; ++s) {
        impl->tasks.push_back(std::make_unique<StreamTask>(
            job, node.name + "[" + std::to_string(s) + "]", options.max_parallelism, s));
        task_of[static_cast<size_t>(head)].push_back(impl->tasks.back().get());
      }
      if (!desc.empty()) desc += " | ";
      desc += node.name;
    } else {
      desc += " -> " + node.name;
    }
    desc += node.parallelism > 1 ? "(x" + std::to_string(node.parallelism) + ")" : "";

    std::vector<SchemaPtr> input_schemas;
    for (const PlanEdge& e : node.inputs) {
      input_schemas.push_back(a.schemas[static_cast<size_t>(e.from)]);
    }
    for (int s = 0; s < node.parallelism; ++s) {
      StreamTask* task = task_of[static_cast<size_t>(head)][static_cast<size_t>(s)];
      OperatorCounters* counters = job->metrics->add(node.name, node.id, node.parallelism);
      OperatorContext ctx;
      ctx.operator_name = node.name;
      ctx.uid = node.uid;
      ctx.subtask_index = s;
      ctx.parallelism = node.parallelism;
      ctx.max_parallelism = options.max_parallelism;
      ctx.clock = options.clock;
      ctx.counters = counters;
      ctx.delivery = options.delivery;
      ctx.state_backend = options.state_backend.get();
      ctx.incremental_checkpoints =
          options.incremental_checkpoints && options.checkpoint_storage != nullptr;
      if (options.restore_from) ctx.restore_shared_dir = options.restore_from->shared_dir;
      if (node.source) {
        std::vector<int> splits;
        for (int split = s; split < node.source->num_splits(); split += node.parallelism) {
          splits.push_back(split);
        }
        auto reader = node.source->open_reader(splits, ctx);
        if (!reader.is_ok()) {
          return std::move(reader).status().with_context("opening source '" + node.name + "'");
        }
        if (Status rs = restore_source_positions(options, node, splits, **reader); !rs.is_ok()) {
          return std::move(rs).with_context("restoring source '" + node.name + "'");
        }
        ++operator_subtasks;
        task->set_source(std::move(reader).value(), counters, node.id, s, node.name,
                         node.watermarks, splits, ctx, node.source->checkpointable(),
                         impl->state.store.get());
        if (const std::string& g = node.watermarks.alignment_group; !g.empty()) {
          auto& group = impl->state.alignment_groups[g];
          if (!group) group = std::make_unique<AlignmentGroup>(&impl->state.barrier_aligning);
          task->set_alignment(group.get(), group->add());
        }
      } else {
        auto op = node.factory->create(input_schemas, ctx);
        if (!op.is_ok()) {
          return std::move(op).status().with_context("creating operator '" + node.name + "'");
        }
        ++operator_subtasks;
        task->add_operator(
            std::make_unique<OpRunner>(std::move(op).value(), node.name, ctx, counters,
                                       task->error_attributed(), impl->state.store.get(),
                                       snapshots_to_restore(options, node, s)),
            node.id);
      }
    }
  }

  // Channels for every edge that is not inside a chain.
  for (const PlanNode& node : nodes) {
    if (a.chain_head[static_cast<size_t>(node.id)] != node.id || node.source) continue;
    const auto& consumers_tasks = task_of[static_cast<size_t>(node.id)];
    for (size_t ei = 0; ei < node.inputs.size(); ++ei) {
      const PlanEdge& e = node.inputs[ei];
      const PlanNode& up = nodes[static_cast<size_t>(e.from)];
      const auto& producer_tasks =
          task_of[static_cast<size_t>(a.chain_head[static_cast<size_t>(up.id)])];
      Partitioning p = e.partitioning;
      if (p == Partitioning::kForward && up.parallelism != node.parallelism) {
        p = Partitioning::kRebalance;
      }
      for (int u = 0; u < up.parallelism; ++u) {
        OutputRouter::Edge out;
        out.side_output = e.side_output;
        out.partitioning = p;
        out.key_columns = a.key_indices[static_cast<size_t>(node.id)][ei];
        for (int d = 0; d < node.parallelism; ++d) {
          if (p == Partitioning::kForward && d != u) continue;
          impl->channels.push_back(
              std::make_unique<Channel>(options.channel_capacity, e.logical_input));
          Channel* c = impl->channels.back().get();
          c->connect(producer_tasks[static_cast<size_t>(u)],
                     consumers_tasks[static_cast<size_t>(d)]);
          consumers_tasks[static_cast<size_t>(d)]->add_input(
              c, job->metrics->add_input(node.id, d, up.id, u));
          out.targets.push_back(c);
        }
        StreamTask* producer = producer_tasks[static_cast<size_t>(u)];
        OutputRouter& router = e.side_output.empty()
                                   ? producer->router()
                                   : producer->side_router(up.id, options.max_parallelism, u);
        router.add_edge(std::move(out));
      }
    }
  }
  if (impl->state.store) {
    SABOT_RETURN_IF_ERROR(
        impl->state.store->attach(options.job_name, operator_subtasks, options.max_parallelism));
  }
  if (checkpointing) {
    CheckpointCoordinator::Config cc;
    cc.job_name = options.job_name;
    cc.clock = options.clock;
    cc.interval = options.checkpoint_interval;
    cc.timeout = options.checkpoint_timeout;
    cc.storage = options.checkpoint_storage;
    cc.write_hook = options.checkpoint_write_hook;
    cc.exactly_once = impl->state.lingers;
    cc.tasks = static_cast<int>(impl->tasks.size());
    cc.metrics = job->metrics.get();
    // Ids continue after the restored checkpoint and after every one in the storage, so that
    // nothing already written is overwritten.
    cc.first_id = options.restore_from ? options.restore_from->checkpoint_id + 1 : 1;
    if (options.checkpoint_storage) {
      auto listed = options.checkpoint_storage->list();
      if (listed.is_ok()) {
        for (const auto& info : *listed)
          cc.first_id = std::max(cc.first_id, info.checkpoint_id + 1);
      }
    }
    Scheduler* scheduler = impl->scheduler.get();
    impl->state.coordinator = std::make_unique<CheckpointCoordinator>(
        std::move(cc), impl->state.store, [scheduler] { scheduler->notify_all_tasks(); },
        [job](Status s) { job->fail(std::move(s)); });
  }
  impl->state.tasks_running.store(static_cast<int>(impl->tasks.size()));
  for (auto& t : impl->tasks) {
    t->link();
    impl->scheduler->add(t.get());
  }
  impl->description = desc;
  for (const PlanNode& node : nodes) {
    OperatorShape shape;
    shape.source = node.source != nullptr;
    shape.chain_head = a.chain_head[static_cast<size_t>(node.id)];
    for (const PlanEdge& e : node.inputs) {
      static constexpr const char* kNames[] = {"forward", "hash", "rebalance", "broadcast"};
      shape.inputs.push_back(
          {e.from, kNames[static_cast<int>(e.partitioning)], std::string(e.side_output)});
    }
    job->metrics->set_shape(node.id, std::move(shape));
  }
  job->metrics->set_job(options.job_name, options.clock->now().millis(), desc);
  job->metrics->set_restarts(options.restarts);
  if (options.state_backend) {
    job->metrics->set_state_memory_probe(std::string(options.state_backend->name()),
                                         [b = options.state_backend] { return b->memory_parts(); });
  }
  register_running_job(job->metrics);
  impl->scheduler->start();
  if (impl->state.coordinator) impl->state.coordinator->start();
  return std::unique_ptr<Job>(new Job(std::move(impl)));
}

Status Job::wait() {
  if (impl_->waited) return impl_->outcome;
  impl_->scheduler->wait();
  if (impl_->state.coordinator) impl_->state.coordinator->stop();
  impl_->waited = true;
  {
    std::lock_guard<std::mutex> lock(impl_->state.mu);
    impl_->outcome = impl_->state.failure;
    if (impl_->outcome.is_ok() && impl_->state.cancelled.load()) {
      impl_->outcome = Status::cancelled("job was cancelled");
    }
  }
  JobMetrics& m = *impl_->state.metrics;
  m.set_phase(impl_->outcome.is_ok()                            ? JobPhase::kFinished
              : impl_->outcome.code() == StatusCode::kCancelled ? JobPhase::kCancelled
                                                                : JobPhase::kFailed);
  unregister_running_job(&m);
  return impl_->outcome;
}

void Job::cancel() {
  if (!impl_->state.cancelled.exchange(true)) impl_->scheduler->notify_all_tasks();
}

Result<CheckpointId> Job::trigger_checkpoint(bool savepoint) {
  if (!impl_->state.coordinator) {
    return Status::invalid_argument(
        "checkpointing is off for this job (set checkpoint_interval, checkpoint_storage or "
        "delivery)");
  }
  return impl_->state.coordinator->trigger_now(savepoint);
}

Result<JobSnapshot> Job::wait_for_checkpoint(CheckpointId id) {
  if (!impl_->state.coordinator) return Status::invalid_argument("checkpointing is off");
  return impl_->state.coordinator->wait_for(id);
}

std::shared_ptr<const JobSnapshot> Job::latest_checkpoint() const {
  return impl_->state.coordinator ? impl_->state.coordinator->latest() : nullptr;
}

CheckpointStats Job::checkpoint_stats() const {
  return impl_->state.coordinator ? impl_->state.coordinator->stats() : CheckpointStats{};
}

const JobMetrics& Job::metrics() const { return *impl_->state.metrics; }
std::shared_ptr<const JobMetrics> Job::metrics_ptr() const { return impl_->state.metrics; }
std::string Job::describe() const { return impl_->description; }

Status execute_plan(const LogicalPlan& plan, ExecutionOptions options,
                    std::shared_ptr<const JobMetrics>* metrics_out) {
  SABOT_ASSIGN_OR_RETURN(std::unique_ptr<Job> job, Job::start(plan, options));
  Status s = job->wait();
  if (metrics_out) *metrics_out = job->metrics_ptr();
  return s;
}

}  // namespace sabot::runtime
