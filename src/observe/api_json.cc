// The JSON documents of the HTTP API: the job graph, per-subtask metrics, checkpoints and
// watermarks (with the diagnosis). Times are epoch milliseconds; null when unknown.
#include <algorithm>
#include <cstdio>

#include "sabot/base/json_text.h"
#include "sabot/observe/metrics_server.h"

namespace sabot::observe {

using runtime::JobMetrics;
using runtime::OperatorEntry;

namespace {

std::string time_or_null(int64_t ms) {
  return ms == INT64_MIN || ms == INT64_MAX ? "null" : std::to_string(ms);
}

std::string seconds(int64_t ns) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6f", static_cast<double>(ns) * 1e-9);
  return buf;
}

const char* phase_name(runtime::JobPhase p) {
  switch (p) {
    case runtime::JobPhase::kRunning:
      return "running";
    case runtime::JobPhase::kFinished:
      return "finished";
    case runtime::JobPhase::kFailed:
      return "failed";
    case runtime::JobPhase::kCancelled:
      return "cancelled";
  }
  return "?";
}

template <typename F>
std::string for_jobs(const std::vector<std::shared_ptr<const JobMetrics>>& jobs, F f) {
  std::string out = "{\"jobs\":[";
  for (size_t j = 0; j < jobs.size(); ++j) {
    if (j) out += ",";
    out += "{\"job\":" + json_string(jobs[j]->job_name()) + ",";
    out += f(*jobs[j]);
    out += "}";
  }
  return out + "]}";
}

}  // namespace

std::string job_json(const std::vector<std::shared_ptr<const JobMetrics>>& jobs, int64_t now_ms) {
  const ProcessStats ps = process_stats();
  std::string out = for_jobs(jobs, [&](const JobMetrics& job) {
    std::string s = "\"state\":" + std::string("\"") + phase_name(job.phase()) + "\"";
    s += ",\"start_ms\":" + std::to_string(job.start_ms());
    s += ",\"uptime_ms\":" + std::to_string(now_ms - job.start_ms());
    s += ",\"restarts\":" + std::to_string(job.restarts());
    s += ",\"plan\":" + json_string(job.description());
    s += ",\"operators\":[";
    job.read([&](const std::vector<OperatorEntry>& entries) {
      bool first = true;
      for (size_t i = 0; i < entries.size(); ++i) {
        const OperatorEntry& e = entries[i];
        if (e.name.empty()) continue;
        if (!first) s += ",";
        first = false;
        s += "{\"id\":" + std::to_string(i) + ",\"name\":" + json_string(e.name) +
             ",\"parallelism\":" + std::to_string(e.parallelism) +
             ",\"source\":" + (e.shape.source ? "true" : "false") +
             ",\"chain_head\":" + std::to_string(e.shape.chain_head) + ",\"inputs\":[";
        for (size_t k = 0; k < e.shape.inputs.size(); ++k) {
          const auto& in = e.shape.inputs[k];
          if (k) s += ",";
          s += "{\"from\":" + std::to_string(in.from) +
               ",\"partitioning\":" + json_string(in.partitioning) +
               ",\"side_output\":" + json_string(in.side_output) + "}";
        }
        s += "]}";
      }
    });
    return s + "]";
  });
  // The process, beside the jobs.
  char buf[96];
  std::snprintf(buf, sizeof buf, ",\"process\":{\"cpu_seconds\":%.3f,\"rss_bytes\":%lld}}",
                ps.cpu_seconds, static_cast<long long>(ps.rss_bytes));
  out.pop_back();
  return out + buf;
}

std::string metrics_json(const std::vector<std::shared_ptr<const JobMetrics>>& jobs,
                         int64_t now_ms) {
  return for_jobs(jobs, [&](const JobMetrics& job) {
    std::string s = "\"now_ms\":" + std::to_string(now_ms) + ",\"operators\":[";
    job.read([&](const std::vector<OperatorEntry>& entries) {
      bool first = true;
      for (const OperatorEntry& e : entries) {
        if (e.name.empty()) continue;
        if (!first) s += ",";
        first = false;
        s += "{\"name\":" + json_string(e.name) + ",\"subtasks\":[";
        for (size_t k = 0; k < e.subtasks.size(); ++k) {
          const runtime::OperatorCounters& c = *e.subtasks[k];
          auto v = [](const std::atomic<int64_t>& a) {
            return std::to_string(a.load(std::memory_order_relaxed));
          };
          if (k) s += ",";
          s += "{\"subtask\":" + std::to_string(k) + ",\"records_in\":" + v(c.records_in) +
               ",\"records_out\":" + v(c.records_out) + ",\"batches_in\":" + v(c.batches_in) +
               ",\"batches_out\":" + v(c.batches_out) + ",\"bytes_in\":" + v(c.bytes_in) +
               ",\"bytes_out\":" + v(c.bytes_out) + ",\"records_dropped\":" + v(c.records_dropped) +
               ",\"busy_seconds\":" + seconds(c.busy_ns.load(std::memory_order_relaxed)) +
               ",\"backpressured_seconds\":" +
               seconds(c.blocked_ns.load(std::memory_order_relaxed)) + ",\"watermark_ms\":" +
               time_or_null(c.input_watermark_ms.load(std::memory_order_relaxed)) +
               ",\"snapshots\":" + v(c.snapshots) +
               ",\"snapshot_seconds\":" + seconds(c.snapshot_ns.load(std::memory_order_relaxed)) +
               ",\"alignment_seconds\":" + seconds(c.alignment_ns.load(std::memory_order_relaxed)) +
               ",\"state_bytes\":" + v(c.state_bytes) + ",\"state_keys\":" + v(c.state_keys) + "}";
        }
        s += "]}";
      }
    });
    return s + "]";
  });
}

std::string checkpoints_json(const std::vector<std::shared_ptr<const JobMetrics>>& jobs) {
  return for_jobs(jobs, [&](const JobMetrics& job) {
    std::string s = "\"completed\":" + std::to_string(job.checkpoints_completed()) +
                    ",\"aborted\":" + std::to_string(job.checkpoints_aborted()) + ",\"history\":[";
    bool first = true;
    for (const runtime::CheckpointRecord& r : job.checkpoints()) {
      if (!first) s += ",";
      first = false;
      s += "{\"id\":" + std::to_string(r.id) +
           ",\"savepoint\":" + (r.savepoint ? "true" : "false") +
           ",\"status\":" + (r.completed ? "\"completed\"" : "\"aborted\"") +
           ",\"trigger_ms\":" + std::to_string(r.trigger_ms) +
           ",\"duration_ms\":" + std::to_string(r.duration_ms) +
           ",\"bytes\":" + std::to_string(r.bytes) + ",\"path\":" + json_string(r.path) + "}";
    }
    return s + "]";
  });
}

namespace {
// ",\"offset\":N,\"end_offset\":N,\"lag\":N" of a source partition (null where unknown).
std::string progress_fields(const OperatorEntry& e, int subtask, int split) {
  int64_t at = -1;
  int64_t end = -1;
  for (const auto& pg : e.partitions) {
    if (pg->subtask == subtask && pg->split == split) {
      at = pg->offset.load(std::memory_order_relaxed);
      end = pg->end_offset.load(std::memory_order_relaxed);
    }
  }
  auto num = [](int64_t v) { return v < 0 ? std::string("null") : std::to_string(v); };
  return ",\"offset\":" + num(at) + ",\"end_offset\":" + num(end) + ",\"lag\":" +
         (at >= 0 && end >= 0 ? std::to_string(std::max<int64_t>(0, end - at))
                              : std::string("null"));
}
}  // namespace

std::string watermarks_json(const std::vector<std::shared_ptr<const JobMetrics>>& jobs,
                            int64_t now_ms) {
  return for_jobs(jobs, [&](const JobMetrics& job) {
    std::string s = "\"now_ms\":" + std::to_string(now_ms) + ",\"partitions\":[";
    bool first = true;
    job.read([&](const std::vector<OperatorEntry>& entries) {
      for (const OperatorEntry& e : entries) {
        for (const auto& sp : e.splits) {
          if (!first) s += ",";
          first = false;
          const int64_t last = sp->last_data_ms.load(std::memory_order_relaxed);
          const size_t sub = static_cast<size_t>(sp->subtask);
          s +=
              "{\"source\":" + json_string(e.name) + ",\"subtask\":" + std::to_string(sp->subtask) +
              ",\"partition\":" + std::to_string(sp->split) +
              ",\"event_time\":true,\"watermark_ms\":" +
              time_or_null(sp->watermark_ms.load(std::memory_order_relaxed)) +
              ",\"max_event_time_ms\":" +
              time_or_null(sp->max_event_time_ms.load(std::memory_order_relaxed)) +
              ",\"since_data_ms\":" + (last == INT64_MIN ? "null" : std::to_string(now_ms - last)) +
              ",\"idle\":" + (sp->idle.load(std::memory_order_relaxed) ? "true" : "false") +
              ",\"position\":" + json_string(sub < e.positions.size() ? e.positions[sub] : "") +
              progress_fields(e, sp->subtask, sp->split) + "}";
        }
        // Partitions with offsets but no event time (a source without watermarks).
        for (const auto& pg : e.partitions) {
          bool listed = false;
          for (const auto& sp : e.splits) {
            listed = listed || (sp->subtask == pg->subtask && sp->split == pg->split);
          }
          if (listed) continue;
          if (!first) s += ",";
          first = false;
          const size_t sub = static_cast<size_t>(pg->subtask);
          s += "{\"source\":" + json_string(e.name) +
               ",\"subtask\":" + std::to_string(pg->subtask) +
               ",\"partition\":" + std::to_string(pg->split) +
               ",\"event_time\":false,\"watermark_ms\":null,\"max_event_time_ms\":null,"
               "\"since_data_ms\":null,"
               "\"idle\":false,\"position\":" +
               json_string(sub < e.positions.size() ? e.positions[sub] : "") +
               progress_fields(e, pg->subtask, pg->split) + "}";
        }
      }
    });
    s += "],\"operators\":[";
    first = true;
    for (const WatermarkHold& h : diagnose_watermarks(job, now_ms)) {
      if (!first) s += ",";
      first = false;
      s += "{\"operator\":" + json_string(h.operator_name) +
           ",\"subtask\":" + std::to_string(h.subtask) +
           ",\"watermark_ms\":" + time_or_null(h.watermark_ms) + ",\"lag_ms\":" +
           (h.watermark_ms == INT64_MIN || h.watermark_ms == INT64_MAX
                ? std::string("null")
                : std::to_string(now_ms - h.watermark_ms)) +
           ",\"held\":" + (h.held ? "true" : "false");
      if (h.held) {
        s += ",\"input\":" + json_string(h.input) + ",\"source\":" + json_string(h.source) +
             ",\"source_subtask\":" + std::to_string(h.source_subtask) +
             ",\"partition\":" + std::to_string(h.partition) +
             ",\"partition_watermark_ms\":" + time_or_null(h.partition_watermark_ms) +
             ",\"behind_ms\":" + std::to_string(h.behind_ms) +
             ",\"idle\":" + (h.partition_idle ? "true" : "false") + ",\"since_data_ms\":" +
             (h.since_data_ms < 0 ? std::string("null") : std::to_string(h.since_data_ms));
      }
      s += ",\"explanation\":" + json_string(h.explanation) + "}";
    }
    return s + "]";
  });
}

}  // namespace sabot::observe
