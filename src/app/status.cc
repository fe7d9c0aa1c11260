// App::status_json: what an App worker's dashboard shows about its agents and tables (served at
// /api/app by the worker's metrics server), from the declarations, the agents' running jobs
// (runtime::running_jobs(): each agent runs as a job named after it, its operator too) and the
// supervisor's counts.
#include <cstdio>
#include <string>
#include <vector>

#include "sabot/app/app.h"
#include "sabot/base/json_text.h"
#include "sabot/runtime/metrics.h"
#include "sabot/state/keyed_snapshot_reader.h"

namespace sabot::app {

namespace {

// The agent's live job: records into its operator, its parallelism and per subtask its keys.
struct AgentLive {
  bool running = false;
  int parallelism = 0;
  int64_t records = 0;
  std::vector<int64_t> keys;  // per subtask (-1: not reported yet)
};

AgentLive live_of(const std::string& agent) {
  AgentLive live;
  for (const auto& job : runtime::running_jobs()) {
    if (job->job_name() != agent) continue;
    live.running = job->phase() == runtime::JobPhase::kRunning;
    job->read([&](const std::vector<runtime::OperatorEntry>& entries) {
      for (const runtime::OperatorEntry& e : entries) {
        if (e.name != agent) continue;
        live.parallelism = e.parallelism;
        for (const auto& c : e.subtasks) {
          live.records += c->records_in.load(std::memory_order_relaxed);
          live.keys.push_back(c->state_keys.load(std::memory_order_relaxed));
        }
      }
    });
  }
  return live;
}

}  // namespace

std::string App::status_json() const {
  const std::vector<AgentRunCounts> counts = agent_run_counts();
  std::string s = "{\"name\":" + json_string(name_) + ",\"agents\":[";
  for (size_t i = 0; i < agents_.size(); ++i) {
    const detail::AgentDecl& a = agents_[i];
    const AgentLive live = live_of(a.name);
    const int concurrency = live.parallelism > 0 ? live.parallelism : a.options.concurrency;
    if (i) s += ",";
    s += "{\"name\":" + json_string(a.name) + ",\"topic\":" + json_string(a.topic) +
         ",\"concurrency\":" + std::to_string(concurrency) +
         ",\"running\":" + (live.running ? "true" : "false") +
         ",\"records\":" + std::to_string(live.records) +
         ",\"failures\":" + std::to_string(counts[i].failures) +
         ",\"restarts\":" + std::to_string(counts[i].restarts) + ",\"subtasks\":[";
    // Per subtask: the keys of its key registry (the keys of the records it has processed, which
    // key every table the agent writes).
    for (size_t k = 0; k < live.keys.size(); ++k) {
      if (k) s += ",";
      s += "{\"subtask\":" + std::to_string(k) +
           ",\"keys\":" + (live.keys[k] < 0 ? std::string("null") : std::to_string(live.keys[k])) +
           "}";
    }
    s += "]}";
  }
  s += "],\"tables\":[";
  for (size_t i = 0; i < tables_.size(); ++i) {
    const detail::TableDecl& t = *tables_[i];
    if (i) s += ",";
    s += "{\"name\":" + json_string(t.name) + ",\"key_type\":" + json_string(t.key_type) +
         ",\"value_type\":" + json_string(state::demangle_type_tag(t.value_type)) +
         ",\"window\":" + json_string(t.window) + "}";
  }
  return s + "]}";
}

}  // namespace sabot::app
