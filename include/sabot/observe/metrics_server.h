// Makes running jobs observable: the Prometheus text exposition of their metrics, a JSON view for
// the dashboard, the "why is my watermark stuck?" diagnosis, and an HTTP server (cpp-httplib) that
// serves all of it plus the embedded dashboard page. Reads runtime::JobMetrics only: nothing here
// runs on a task's thread or touches the per-row path.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "sabot/base/clock.h"
#include "sabot/base/status.h"
#include "sabot/runtime/metrics.h"

namespace sabot::observe {

// CPU time and resident memory of this process (from /proc/self).
struct ProcessStats {
  double cpu_seconds = 0;
  int64_t rss_bytes = 0;
};
ProcessStats process_stats();

// The jobs an endpoint shows: every running job of the process (runtime::running_jobs()), or,
// when none runs, the last one that ended.
std::vector<std::shared_ptr<const runtime::JobMetrics>> observed_jobs();

// The Prometheus text exposition format (version 0.0.4) of `jobs`: `sabot_` names in base units
// (seconds, bytes), `_total` counters, labels job / operator / subtask / partition. `now_ms` is the
// jobs' clock, for watermark lags.
std::string prometheus_text(const std::vector<std::shared_ptr<const runtime::JobMetrics>>& jobs,
                            int64_t now_ms);

// What holds one operator subtask's watermark where it is. For an operator that reads other
// tasks, the slowest live input channel, followed upstream to the source split at its root; for a
// source, its slowest active split.
struct WatermarkHold {
  std::string operator_name;
  int subtask = 0;
  int64_t watermark_ms = INT64_MIN;  // the subtask's current watermark (INT64_MIN: none yet)
  bool held = false;                 // false: nothing holds it (no inputs, all ended or idle)
  // The input channel (empty for sources) and the source split at the root.
  std::string input;  // e.g. "'source'[1]"
  int64_t input_watermark_ms = INT64_MIN;
  std::string source;  // the source operator's name
  int source_subtask = 0;
  int partition = -1;  // the split (partition) number
  int64_t partition_watermark_ms = INT64_MIN;
  int64_t behind_ms = 0;  // behind the fastest split of the same source
  bool partition_idle = false;
  int64_t since_data_ms = -1;  // time since the split's last data (-1: never had any)
  // One sentence naming the cause, e.g. "held back by partition 2 of source 'tx' ...".
  std::string explanation;
};

// One entry per operator subtask that has watermarks (sources included), in plan order.
std::vector<WatermarkHold> diagnose_watermarks(const runtime::JobMetrics& job, int64_t now_ms);

// Remembers when each operator subtask's watermark last moved and reports, once per stall, those
// that have not moved for `stall` while the job runs (subtasks that never had a watermark, and
// finished inputs, are not reported). Not thread-safe: one caller.
class WatermarkStallMonitor {
 public:
  explicit WatermarkStallMonitor(std::chrono::milliseconds stall) : stall_(stall) {}
  // The diagnoses of the subtasks that have just crossed the stall threshold, as log lines
  // ("watermark of 'op'[s] stuck at <time> for <ms> ms: <explanation>"); also logged (WARN).
  std::vector<std::string> check(const runtime::JobMetrics& job, int64_t now_ms);

 private:
  struct Seen {
    int64_t watermark_ms = INT64_MIN;
    int64_t since_ms = 0;
    bool reported = false;
  };
  std::chrono::milliseconds stall_;
  std::map<std::pair<const runtime::JobMetrics*, std::string>, Seen> seen_;
};

// JSON documents of the HTTP API (also usable without the server).
std::string job_json(const std::vector<std::shared_ptr<const runtime::JobMetrics>>& jobs,
                     int64_t now_ms);
std::string metrics_json(const std::vector<std::shared_ptr<const runtime::JobMetrics>>& jobs,
                         int64_t now_ms);
std::string checkpoints_json(const std::vector<std::shared_ptr<const runtime::JobMetrics>>& jobs);
std::string watermarks_json(const std::vector<std::shared_ptr<const runtime::JobMetrics>>& jobs,
                            int64_t now_ms);
// The dashboard page (HTML with its CSS and JavaScript inline).
std::string_view dashboard_html();

struct MetricsServerOptions {
  // Address to listen on. Default loopback only: the endpoint has no authentication.
  std::string bind_address = "127.0.0.1";
  // TCP port; 0 picks a free one (see MetricsServer::port()).
  int port = 0;
  // The jobs' clock, for watermark lags and stalls. Not owned; must outlive the server.
  const Clock* clock = &SystemClock::instance();
  // Which jobs to serve. Null: observed_jobs() (every running job of the process). An App worker
  // may pass its own.
  std::function<std::vector<std::shared_ptr<const runtime::JobMetrics>>()> jobs = nullptr;
  // `/api/app`: a JSON object describing an App worker (its agents and tables), or null (the
  // endpoint then answers {"app":null} and the dashboard shows no App section).
  std::function<std::string()> app = nullptr;
  // `/api/tables/NAME?key=K&limit=N`: an App worker's table as a JSON object (App::table_json),
  // or an error (not found: 404; a bad request: 400). Null: the endpoint answers 404.
  std::function<Result<std::string>(const std::string& table, const std::string& key,
                                    int64_t limit)>
      table = nullptr;
};

// An HTTP server on its own threads: `/metrics` (Prometheus), `/` (the dashboard), `/api/job`,
// `/api/metrics`, `/api/checkpoints`, `/api/watermarks`, `/api/app`, `/api/tables/NAME`. Owns its
// threads; stop() or the destructor ends them. Thread-safe.
class MetricsServer {
 public:
  static Result<std::unique_ptr<MetricsServer>> start(MetricsServerOptions options);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;
  int port() const { return port_; }
  // http://<bind address>:<port>/
  std::string url() const;
  void stop();
  struct Impl;

 private:
  MetricsServer() = default;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

// A background thread for long command-line runs: every `interval` it checks watermark stalls
// (logging each as WatermarkStallMonitor does) and, when `progress` is set, hands it a progress
// line ("1.2 M records  310 k/s  elapsed 4 s  ETA 12 s"). Stopped by stop() or the destructor.
struct WatcherOptions {
  std::chrono::milliseconds interval{1000};
  std::chrono::milliseconds watermark_stall{30'000};  // 0: no stall checks
  const Clock* clock = &SystemClock::instance();
  // Records the input holds in total (0: unbounded, no ETA).
  int64_t expected_records = 0;
  std::function<void(const std::string& line)> progress = nullptr;
};

class Watcher {
 public:
  explicit Watcher(WatcherOptions options);
  ~Watcher();
  Watcher(const Watcher&) = delete;
  Watcher& operator=(const Watcher&) = delete;
  void stop();
  // The progress line for `records` read after `elapsed_s` seconds at `rate` per second.
  static std::string progress_line(int64_t records, double rate, double elapsed_s,
                                   int64_t expected_records);

 private:
  void run();
  WatcherOptions options_;
  WatermarkStallMonitor monitor_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace sabot::observe
