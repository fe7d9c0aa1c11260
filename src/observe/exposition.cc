// The Prometheus text exposition of running jobs, and the process's CPU and memory.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "sabot/observe/metrics_server.h"

namespace sabot::observe {

using runtime::JobMetrics;
using runtime::OperatorEntry;

ProcessStats process_stats() {
  ProcessStats p;
  // /proc/self/stat: utime and stime are fields 14 and 15, in clock ticks; after the command
  // name (in parentheses, may hold spaces) come the fields from 3 on.
  std::ifstream stat("/proc/self/stat");
  std::string line;
  if (std::getline(stat, line)) {
    const size_t close = line.rfind(')');
    if (close != std::string::npos) {
      std::istringstream rest(line.substr(close + 2));
      std::string field;
      long long utime = 0, stime = 0;
      for (int i = 3; i <= 15 && rest >> field; ++i) {
        if (i == 14) utime = std::atoll(field.c_str());
        if (i == 15) stime = std::atoll(field.c_str());
      }
      p.cpu_seconds =
          static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
    }
  }
  std::ifstream statm("/proc/self/statm");
  long long size = 0, resident = 0;
  if (statm >> size >> resident) p.rss_bytes = resident * sysconf(_SC_PAGESIZE);
  return p;
}

std::vector<std::shared_ptr<const JobMetrics>> observed_jobs() {
  auto jobs = runtime::running_jobs();
  if (jobs.empty()) {
    if (auto last = runtime::last_finished_job()) jobs.push_back(std::move(last));
  }
  return jobs;
}

namespace {

std::string escape_label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

// Collects samples per metric so that each family is written once with its HELP and TYPE.
class Exposition {
 public:
  void add(const std::string& name, const char* type, const char* help, const std::string& labels,
           double value) {
    auto it = index_.find(name);
    if (it == index_.end()) {
      it = index_.emplace(name, families_.size()).first;
      families_.push_back({name, type, help, {}});
    }
    families_[it->second].samples +=
        name + (labels.empty() ? std::string() : "{" + labels + "}") + " " + number(value) + "\n";
  }
  std::string text() const {
    std::string out;
    for (const Family& f : families_) {
      out += "# HELP " + f.name + " " + f.help + "\n# TYPE " + f.name + " " + f.type + "\n";
      out += f.samples;
    }
    return out;
  }

 private:
  struct Family {
    std::string name;
    const char* type;
    const char* help;
    std::string samples;
  };
  std::vector<Family> families_;
  std::map<std::string, size_t> index_;
};

double seconds_of_ns(int64_t ns) { return static_cast<double>(ns) * 1e-9; }
bool real_time(int64_t ms) { return ms != INT64_MIN && ms != INT64_MAX; }

}  // namespace

std::string prometheus_text(const std::vector<std::shared_ptr<const JobMetrics>>& jobs,
                            int64_t now_ms) {
  Exposition x;
  const ProcessStats ps = process_stats();
  x.add("sabot_process_cpu_seconds_total", "counter", "User and system CPU time of the process.",
        "", ps.cpu_seconds);
  x.add("sabot_process_resident_memory_bytes", "gauge", "Resident memory of the process.", "",
        static_cast<double>(ps.rss_bytes));
  for (const auto& job : jobs) {
    const std::string jl = "job=\"" + escape_label(job->job_name()) + "\"";
    const runtime::JobPhase phase = job->phase();
    x.add("sabot_job_running", "gauge", "1 while the job runs, 0 once it ended.", jl,
          phase == runtime::JobPhase::kRunning ? 1 : 0);
    x.add("sabot_job_uptime_seconds", "gauge", "Time since the job (this run) started.", jl,
          static_cast<double>(now_ms - job->start_ms()) / 1e3);
    x.add("sabot_job_restarts_total", "counter", "Restarts of the job after failures.", jl,
          static_cast<double>(job->restarts()));
    x.add("sabot_job_failures_total", "counter",
          "Failed runs of the job (restarted ones and a final failure).", jl,
          static_cast<double>(job->restarts() + (phase == runtime::JobPhase::kFailed ? 1 : 0)));
    if (const auto parts = job->state_memory(); !parts.empty()) {
      const std::string bl = jl + ",backend=\"" + escape_label(job->state_backend_name()) + "\"";
      for (const auto& [part, bytes] : parts) {
        x.add("sabot_state_backend_memory_bytes", "gauge",
              "Memory the job's state backend holds apart from the operators, by part (rocksdb: "
              "block_cache, memtables, write_caches, total, and the budget when set).",
              bl + ",part=\"" + escape_label(part) + "\"", static_cast<double>(bytes));
      }
    }
    x.add("sabot_checkpoints_completed_total", "counter", "Checkpoints completed.", jl,
          static_cast<double>(job->checkpoints_completed()));
    x.add("sabot_checkpoints_aborted_total", "counter",
          "Checkpoints aborted (timeout, failed write).", jl,
          static_cast<double>(job->checkpoints_aborted()));
    const auto history = job->checkpoints();
    for (auto it = history.rbegin(); it != history.rend(); ++it) {
      if (!it->completed) continue;
      x.add("sabot_checkpoint_last_duration_seconds", "gauge",
            "Trigger to durable of the latest completed checkpoint.", jl,
            static_cast<double>(it->duration_ms) / 1e3);
      x.add("sabot_checkpoint_last_size_bytes", "gauge",
            "State bytes of the latest completed checkpoint.", jl, static_cast<double>(it->bytes));
      x.add("sabot_checkpoint_last_id", "gauge", "Id of the latest completed checkpoint.", jl,
            static_cast<double>(it->id));
      break;
    }
    job->read([&](const std::vector<OperatorEntry>& entries) {
      for (const OperatorEntry& e : entries) {
        if (e.name.empty()) continue;
        const std::string ol = jl + ",operator=\"" + escape_label(e.name) + "\"";
        for (size_t s = 0; s < e.subtasks.size(); ++s) {
          const runtime::OperatorCounters& c = *e.subtasks[s];
          const std::string l = ol + ",subtask=\"" + std::to_string(s) + "\"";
          auto load = [](const std::atomic<int64_t>& a) {
            return a.load(std::memory_order_relaxed);
          };
          x.add("sabot_operator_records_in_total", "counter", "Records into the operator.", l,
                static_cast<double>(load(c.records_in)));
          x.add("sabot_operator_records_out_total", "counter",
                "Records out of the operator (sources: records read).", l,
                static_cast<double>(load(c.records_out)));
          x.add("sabot_operator_bytes_in_total", "counter",
                "Bytes of the batches into the operator (their rows in the columnar layout).", l,
                static_cast<double>(load(c.bytes_in)));
          x.add("sabot_operator_bytes_out_total", "counter",
                "Bytes of the batches out of the operator (their rows in the columnar layout).", l,
                static_cast<double>(load(c.bytes_out)));
          x.add("sabot_operator_batches_in_total", "counter", "Batches into the operator.", l,
                static_cast<double>(load(c.batches_in)));
          x.add("sabot_operator_batches_out_total", "counter", "Batches out of the operator.", l,
                static_cast<double>(load(c.batches_out)));
          x.add("sabot_operator_records_dropped_total", "counter",
                "Malformed or unrouted records dropped.", l,
                static_cast<double>(load(c.records_dropped)));
          x.add("sabot_operator_busy_seconds_total", "counter",
                "Time in the operator's own code (rate() gives its busy share).", l,
                seconds_of_ns(load(c.busy_ns)));
          x.add("sabot_operator_backpressured_seconds_total", "counter",
                "Time its task waited for room in full output channels.", l,
                seconds_of_ns(load(c.blocked_ns)));
          x.add("sabot_operator_checkpoint_snapshots_total", "counter",
                "Checkpoint snapshots taken.", l, static_cast<double>(load(c.snapshots)));
          x.add("sabot_operator_checkpoint_sync_seconds_total", "counter",
                "Synchronous snapshot time on the task thread.", l,
                seconds_of_ns(load(c.snapshot_ns)));
          x.add("sabot_operator_checkpoint_alignment_seconds_total", "counter",
                "Time spent aligning checkpoint barriers.", l, seconds_of_ns(load(c.alignment_ns)));
          if (const int64_t b = load(c.state_bytes); b >= 0) {
            x.add("sabot_operator_state_bytes", "gauge",
                  "Bytes of the operator's latest state snapshot.", l, static_cast<double>(b));
          }
          if (const int64_t k = load(c.state_keys); k >= 0) {
            x.add("sabot_operator_state_keys", "gauge",
                  "Keys a keyed stateful operator subtask holds (its key registry).", l,
                  static_cast<double>(k));
          }
          if (const int64_t wm = load(c.input_watermark_ms); real_time(wm)) {
            x.add("sabot_operator_watermark_timestamp_seconds", "gauge",
                  "The operator's current watermark (sources: the one they emit), epoch seconds.",
                  l, static_cast<double>(wm) / 1e3);
            x.add("sabot_operator_watermark_lag_seconds", "gauge",
                  "How far the operator's watermark is behind the clock.", l,
                  static_cast<double>(now_ms - wm) / 1e3);
          }
        }
        for (const auto& sp : e.splits) {
          const std::string l = ol + ",subtask=\"" + std::to_string(sp->subtask) +
                                "\",partition=\"" + std::to_string(sp->split) + "\"";
          if (const int64_t wm = sp->watermark_ms.load(std::memory_order_relaxed); real_time(wm)) {
            x.add("sabot_source_partition_watermark_timestamp_seconds", "gauge",
                  "Watermark of one source partition, epoch seconds.", l,
                  static_cast<double>(wm) / 1e3);
          }
          if (const int64_t t = sp->last_data_ms.load(std::memory_order_relaxed); real_time(t)) {
            x.add("sabot_source_partition_last_data_age_seconds", "gauge",
                  "Time since the partition last had data.", l,
                  static_cast<double>(now_ms - t) / 1e3);
          }
          x.add("sabot_source_partition_idle", "gauge",
                "1 when the partition is idle (no data for the idle timeout).", l,
                sp->idle.load(std::memory_order_relaxed) ? 1 : 0);
        }
        for (const auto& pg : e.partitions) {
          const std::string l = ol + ",subtask=\"" + std::to_string(pg->subtask) +
                                "\",partition=\"" + std::to_string(pg->split) + "\"";
          const int64_t at = pg->offset.load(std::memory_order_relaxed);
          const int64_t end = pg->end_offset.load(std::memory_order_relaxed);
          if (at >= 0) {
            x.add("sabot_source_partition_offset", "gauge",
                  "Offset of the next record the source reads from the partition.", l,
                  static_cast<double>(at));
          }
          if (at >= 0 && end >= 0) {
            x.add("sabot_source_partition_lag_records", "gauge",
                  "Records of the partition not yet read: end offset minus position.", l,
                  static_cast<double>(std::max<int64_t>(0, end - at)));
          }
        }
        // Positions are strings that change with every read: in /api/watermarks, not here
        // (a label that changes makes a new series per scrape).
      }
    });
  }
  return x.text();
}

}  // namespace sabot::observe
