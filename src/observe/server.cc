// The HTTP endpoint (cpp-httplib, Debian's libcpp-httplib-dev) and the command-line watcher.
#include <httplib.h>

#include <charconv>
#include <cstdio>

#include "sabot/base/json_text.h"
#include "sabot/base/logging.h"
#include "sabot/observe/metrics_server.h"

namespace sabot::observe {

struct MetricsServer::Impl {
  MetricsServerOptions options;
  httplib::Server http;
  std::thread thread;
  std::once_flag stopped;

  std::vector<std::shared_ptr<const runtime::JobMetrics>> jobs() const {
    return options.jobs ? options.jobs() : observed_jobs();
  }
  int64_t now() const { return options.clock->now().millis(); }
};

Result<std::unique_ptr<MetricsServer>> MetricsServer::start(MetricsServerOptions options) {
  if (options.port < 0 || options.port > 65535) {
    return Status::invalid_argument("metrics port " + std::to_string(options.port) +
                                    " is not in 0..65535");
  }
  std::unique_ptr<MetricsServer> server(new MetricsServer());
  server->impl_ = std::make_unique<Impl>();
  Impl* impl = server->impl_.get();
  impl->options = std::move(options);
  httplib::Server& http = impl->http;
  constexpr const char* kJson = "application/json";
  http.Get("/metrics", [impl](const httplib::Request&, httplib::Response& res) {
    res.set_content(prometheus_text(impl->jobs(), impl->now()),
                    "text/plain; version=0.0.4; charset=utf-8");
  });
  http.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(std::string(dashboard_html()), "text/html; charset=utf-8");
  });
  http.Get("/api/job", [impl](const httplib::Request&, httplib::Response& res) {
    res.set_content(job_json(impl->jobs(), impl->now()), kJson);
  });
  http.Get("/api/metrics", [impl](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_json(impl->jobs(), impl->now()), kJson);
  });
  http.Get("/api/checkpoints", [impl](const httplib::Request&, httplib::Response& res) {
    res.set_content(checkpoints_json(impl->jobs()), kJson);
  });
  http.Get("/api/watermarks", [impl](const httplib::Request&, httplib::Response& res) {
    res.set_content(watermarks_json(impl->jobs(), impl->now()), kJson);
  });
  http.Get("/api/app", [impl](const httplib::Request&, httplib::Response& res) {
    res.set_content(
        impl->options.app ? "{\"app\":" + impl->options.app() + "}" : std::string("{\"app\":null}"),
        kJson);
  });
  http.Get(R"(/api/tables/([^/]+))", [impl](const httplib::Request& req, httplib::Response& res) {
    auto error = [&](int code, const std::string& message) {
      res.status = code;
      res.set_content("{\"error\":" + json_string(message) + "}", kJson);
    };
    if (!impl->options.table) return error(404, "this job is not an App worker: it has no tables");
    int64_t limit = 1000;
    if (req.has_param("limit")) {
      const std::string text = req.get_param_value("limit");
      auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), limit);
      if (ec != std::errc() || end != text.data() + text.size() || limit < 0) {
        return error(400, "limit '" + text + "' is not a count >= 0 (0: no limit)");
      }
    }
    auto body = impl->options.table(req.matches[1].str(), req.get_param_value("key"), limit);
    if (!body.is_ok()) {
      const StatusCode code = body.status().code();
      return error(code == StatusCode::kNotFound          ? 404
                   : code == StatusCode::kInvalidArgument ? 400
                                                          : 500,
                   body.status().message());
    }
    res.set_content(*body, kJson);
  });
  const std::string& host = impl->options.bind_address;
  if (impl->options.port == 0) {
    server->port_ = http.bind_to_any_port(host);
  } else {
    server->port_ = http.bind_to_port(host, impl->options.port) ? impl->options.port : -1;
  }
  if (server->port_ <= 0) {
    return Status::io_error("cannot listen on " + host + ":" + std::to_string(impl->options.port) +
                            " for metrics (in use, or not a local address)");
  }
  impl->thread = std::thread([impl] { impl->http.listen_after_bind(); });
  return server;
}

MetricsServer::~MetricsServer() { stop(); }

void MetricsServer::stop() {
  if (!impl_) return;
  std::call_once(impl_->stopped, [this] {
    impl_->http.stop();
    if (impl_->thread.joinable()) impl_->thread.join();
  });
}

std::string MetricsServer::url() const {
  return "http://" + impl_->options.bind_address + ":" + std::to_string(port_) + "/";
}

Watcher::Watcher(WatcherOptions options)
    : options_(std::move(options)), monitor_(options_.watermark_stall) {
  thread_ = std::thread([this] { run(); });
}

Watcher::~Watcher() { stop(); }

void Watcher::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::string Watcher::progress_line(int64_t records, double rate, double elapsed_s,
                                   int64_t expected_records) {
  auto human = [](double v) {
    char buf[32];
    if (v >= 1e9) {
      std::snprintf(buf, sizeof buf, "%.2f G", v / 1e9);
    } else if (v >= 1e6) {
      std::snprintf(buf, sizeof buf, "%.2f M", v / 1e6);
    } else if (v >= 1e4) {
      std::snprintf(buf, sizeof buf, "%.1f k", v / 1e3);
    } else {
      std::snprintf(buf, sizeof buf, "%.0f", v);
    }
    return std::string(buf);
  };
  std::string line = human(static_cast<double>(records)) + " records";
  if (expected_records > 0) {
    char pct[16];
    std::snprintf(pct, sizeof pct, " (%.0f%%)",
                  100.0 * static_cast<double>(records) / static_cast<double>(expected_records));
    line += pct;
  }
  line +=
      "  " + human(rate) + "/s  elapsed " + std::to_string(static_cast<int64_t>(elapsed_s)) + " s";
  if (expected_records > 0 && rate > 0 && records < expected_records) {
    line += "  ETA " +
            std::to_string(static_cast<int64_t>(
                static_cast<double>(expected_records - records) / rate + 0.5)) +
            " s";
  }
  return line;
}

void Watcher::run() {
  const auto started = std::chrono::steady_clock::now();
  auto last = started;
  int64_t last_records = 0;
  // One tick per interval, and a last one when stopped (so that even a run shorter than the
  // interval draws its final progress line once).
  auto tick = [&](bool final) {
    const int64_t now_ms = options_.clock->now().millis();
    if (!final && options_.watermark_stall.count() > 0) {
      for (const auto& job : runtime::running_jobs()) (void)monitor_.check(*job, now_ms);
    }
    if (!options_.progress) return;
    int64_t records = 0;
    for (const auto& job : observed_jobs()) {
      job->read([&](const std::vector<runtime::OperatorEntry>& entries) {
        for (const runtime::OperatorEntry& e : entries) {
          if (!e.shape.source) continue;
          for (const auto& c : e.subtasks)
            records += c->records_out.load(std::memory_order_relaxed);
        }
      });
    }
    const auto t = std::chrono::steady_clock::now();
    const double dt = std::chrono::duration<double>(t - last).count();
    const double rate =
        final ? static_cast<double>(records) /
                    std::max(1e-9, std::chrono::duration<double>(t - started).count())
        : dt > 0 ? static_cast<double>(std::max<int64_t>(0, records - last_records)) / dt
                 : 0;
    options_.progress(progress_line(records, rate,
                                    std::chrono::duration<double>(t - started).count(),
                                    options_.expected_records));
    last = t;
    last_records = records;
  };
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    const bool stopping = cv_.wait_for(lock, options_.interval, [this] { return stop_; });
    lock.unlock();
    tick(stopping);
    lock.lock();
    if (stopping) return;
  }
}

}  // namespace sabot::observe
