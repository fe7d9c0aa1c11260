// fraud_app throughput: N generated transactions (seed 42) produced into the embedded broker, then
// the fraud_app worker run to the end; prints one JSON object with the transactions per second
// and per CPU-second of the worker (process user + system time over App::run, the producer left
// out as `sabot demo fraud` leaves out its producer's thread).
//   fraud_app_bench [transactions=1000000] [concurrency=2] [checkpoint interval ms=1000]
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "fraud_app.h"
#include "fraud_job.h"

namespace {
double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}
}  // namespace

int main(int argc, char** argv) {
  using namespace sabot;
  const int64_t n = argc > 1 ? std::atoll(argv[1]) : 1'000'000;
  const int concurrency = argc > 2 ? std::atoi(argv[2]) : 2;
  const int64_t interval_ms = argc > 3 ? std::atoll(argv[3]) : 1000;
  fraud::GeneratorOptions g;
  g.transactions = n;
  g.seed = 42;
  auto rows = fraud::generate_transactions(g);
  if (!rows.is_ok()) return std::cerr << rows.status().to_string() << "\n", 1;
  connectors::MemoryBroker broker;
  app::App app("fraud-app", {.checkpoint_interval = std::chrono::milliseconds(interval_ms),
                             .memory_broker = &broker});
  fraud_app::define_fraud_app(app, {.concurrency = concurrency});
  auto topic =
      broker.create_topic(fraud_app::kTransactionsTopic, {.partitions = fraud_app::kPartitions});
  if (!topic.is_ok()) return 1;
  if (Status s = fraud::produce_transactions(*rows, *topic); !s.is_ok()) return 1;
  const double cpu0 = cpu_seconds();
  const auto t0 = std::chrono::steady_clock::now();
  app::WorkerReport r = app.run();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double cpu = cpu_seconds() - cpu0;
  if (!r.status.is_ok()) return std::cerr << r.status.to_string() << "\n", 1;
  const int64_t alerts = (*broker.topic(fraud_app::kAlertsTopic))->total_records();
  std::printf(
      "{\"transactions\": %lld, \"concurrency\": %d, \"checkpoint_interval_ms\": %lld, "
      "\"alerts\": %lld, \"wall_s\": %.3f, \"cpu_s\": %.3f, \"tx_per_s\": %.0f, "
      "\"tx_per_cpu_s\": %.0f}\n",
      static_cast<long long>(n), concurrency, static_cast<long long>(interval_ms),
      static_cast<long long>(alerts), wall, cpu, static_cast<double>(n) / wall,
      static_cast<double>(n) / cpu);
  return 0;
}
