#include "observe_flags.h"

#include <cstdio>
#include <iostream>

#include "sabot/runtime/restart.h"

namespace sabot::cli {

void ObserveFlags::add_to(FlagSet& flags) {
  flags.add_int("metrics-port", &port_,
                "serve Prometheus metrics (/metrics), the live dashboard (/) and its JSON API "
                "(/api/...) on port N while the job runs; 0 picks a free port (the URL is "
                "printed on stderr); -1: no server",
                -1, 65535);
  flags.add_string("metrics-address", &address_,
                   "address the --metrics-port server listens on (default loopback only; the "
                   "endpoint has no authentication)");
  flags.add_string("watermark-stall", &stall_,
                   "log a warning naming the source partition or input that holds an operator's "
                   "watermark back once it has not moved for this long (0: never)");
}

std::optional<int> ObserveFlags::check(const FlagSet& flags) const {
  auto stall = runtime::parse_duration(stall_);
  if (!stall.is_ok() || stall->count() < 0) {
    std::cerr << flags.command() << ": --watermark-stall: "
              << (stall.is_ok() ? "'" + stall_ + "' is negative" : stall.status().message())
              << " (see '" << flags.command() << " --help')\n";
    return kExitUsage;
  }
  if (flags.is_set("metrics-address") && port_ < 0) {
    std::cerr << flags.command() << ": --metrics-address needs --metrics-port N (see '"
              << flags.command() << " --help')\n";
    return kExitUsage;
  }
  return std::nullopt;
}

ObserveFlags::Running::~Running() {
  if (watcher) watcher->stop();
  if (server) server->stop();
  if (progress) std::fprintf(stderr, "\r\033[K");
}

Result<std::unique_ptr<ObserveFlags::Running>> ObserveFlags::start(bool progress,
                                                                   int64_t expected_records) const {
  auto running = std::make_unique<Running>();
  if (port_ >= 0) {
    SABOT_ASSIGN_OR_RETURN(
        running->server,
        observe::MetricsServer::start({.bind_address = address_, .port = static_cast<int>(port_)}));
    std::cerr << "metrics and dashboard at " << running->server->url() << std::endl;
  }
  SABOT_ASSIGN_OR_RETURN(auto stall, runtime::parse_duration(stall_));
  observe::WatcherOptions w;
  w.watermark_stall = stall;
  w.expected_records = expected_records;
  if (progress) {
    running->progress = true;
    w.progress = [](const std::string& line) {
      // One line redrawn in place on the terminal.
      std::fprintf(stderr, "\r\033[K%s", line.c_str());
      std::fflush(stderr);
    };
  }
  if (stall.count() > 0 || progress) running->watcher = std::make_unique<observe::Watcher>(w);
  return running;
}

}  // namespace sabot::cli
