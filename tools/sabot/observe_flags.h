// The observability flags that the job commands (`demo fraud`, `demo enrichment`, `bench
// nexmark`) share: --metrics-port, --metrics-address and --watermark-stall, and what they start
// while the command runs (the metrics/dashboard server, the stall watch, a progress line).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "flags.h"
#include "sabot/observe/metrics_server.h"

namespace sabot::cli {

class ObserveFlags {
 public:
  void add_to(FlagSet& flags);
  // Checks --watermark-stall and the address after parsing; an exit code when they are bad.
  std::optional<int> check(const FlagSet& flags) const;

  // What runs beside the job until it is destroyed.
  struct Running {
    std::unique_ptr<observe::MetricsServer> server;
    std::unique_ptr<observe::Watcher> watcher;
    bool progress = false;  // a progress line is on the terminal: cleared at the end
    ~Running();
  };
  // Starts the server (when --metrics-port was given; prints "metrics and dashboard at URL" on
  // stderr) and the watcher (stall log lines; the progress line on stderr when `progress`, which
  // the command sets only when standard output and standard error are terminals and it is not
  // quiet). `expected_records`: records the input holds (0: unbounded, no ETA).
  Result<std::unique_ptr<Running>> start(bool progress, int64_t expected_records) const;

 private:
  int64_t port_ = -1;
  std::string address_ = "127.0.0.1";
  std::string stall_ = "30s";
};

}  // namespace sabot::cli
