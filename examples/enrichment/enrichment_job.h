// The trade-enrichment job (docs/enrichment.md) written with the public API, and the driver behind
// `sabot demo enrichment`: trades, quotes and securities from three topics of the embedded broker;
// each trade joined as-of with its symbol's latest quote and latest securities row at its time;
// derived fields (mid, spread, notional, slippage); VWAP per sector and 1-minute event-time window.
// run_enrichment_demo blocks and owns everything it creates; JobStats is thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "sabot/api/environment.h"
#include "sabot/enrichment/generator.h"

namespace sabot::enrichment {

inline constexpr const char* kTradesUrl = "memory://trades";
inline constexpr const char* kQuotesUrl = "memory://quotes";
inline constexpr const char* kSecuritiesUrl = "memory://securities";
inline constexpr int kTopicPartitions = 3;
// The watermarks' bound: the generator's files are at most 2 s out of order.
inline constexpr std::chrono::milliseconds kMaxDisorder{2'000};
inline constexpr std::chrono::milliseconds kWindowSize{60'000};
// The column added to trades after the source: when their batch was read (steady clock, ns).
inline constexpr const char* kReadStampColumn = "source_read_ns";

// trade_id, symbol, time, price, quantity, side, bid, ask, mid, spread_bps, sector, notional,
// slippage_bps; bid..spread_bps, slippage_bps and sector nullable.
const columnar::SchemaPtr& enriched_schema();
// window_start, window_end (int64 epoch ms), sector, trades, volume (int64), vwap (float64).
const columnar::SchemaPtr& vwap_schema();

// Counters of the job's sinks, readable while it runs; latency samples merged at the end.
class JobStats {
 public:
  // One trade in this many is stamped into the latency samples.
  static constexpr int64_t kLatencySampleEvery = 8;
  std::atomic<int64_t> enriched{0};
  std::atomic<int64_t> with_quote{0};
  std::atomic<int64_t> with_sector{0};
  std::atomic<int64_t> windows{0};  // VWAP rows
  void add_latencies(const std::vector<int64_t>& ns);
  // The q-quantile (0..1) of the sampled latencies in ns; 0 when none.
  double latency_quantile_ns(double q) const;

 private:
  mutable std::mutex mu_;
  mutable std::vector<int64_t> latencies_;
  mutable bool sorted_ = false;
};

struct JobOptions {
  // Holds the three topics; null means MemoryBroker::default_instance(). Not owned.
  connectors::MemoryBroker* broker = nullptr;
};

struct EnrichmentStreams {
  DataStream enriched;  // enriched_schema() plus kReadStampColumn last
  DataStream vwap;      // vwap_schema()
};

// Adds the job to `env`:
//   trades (watermarks: time - 2 s) -> stamp read time -> key_by(symbol)
//     asof_join(quotes keyed by symbol, left)          quote.time <= trade.time
//     -> key_by(symbol) asof_join(securities keyed by symbol, left)   update_time <= trade.time
//     -> select(enriched fields)                                       = enriched
//   enriched -> key_by(sector, "unknown" when null) -> tumbling 1 min -> count, sum(quantity),
//     sum(notional) -> vwap = sum(notional) / sum(quantity)            = vwap
// The three topics must exist; attach sinks to the returned streams.
EnrichmentStreams add_enrichment_job(Environment& env, const JobOptions& options);

// Writes the rows of `batches` (any of the generator's three schemas, given by `symbol_column` and
// `time_column`) as JSON messages keyed by symbol, timestamped with the time, into `topic`.
class TopicProducer {
 public:
  static Result<TopicProducer> open(connectors::TopicPtr topic);
  Status send(const columnar::RecordBatch& batch, const std::string& time_column);
  int64_t rows() const { return rows_; }
  // Flushes and closes the topic (readers then see its end).
  Status close();

 private:
  TopicProducer(connectors::TopicPtr topic, std::unique_ptr<connectors::MemoryTopicWriter> writer)
      : topic_(std::move(topic)), writer_(std::move(writer)) {}
  connectors::TopicPtr topic_;
  std::unique_ptr<connectors::MemoryTopicWriter> writer_;
  codec::JsonEncoder encoder_;
  int64_t rows_ = 0;
};

struct DemoOptions {
  // Input: the generator (trades, securities, seed) or the three files of `input_dir`
  // (securities.jsonl, quotes.jsonl, trades.jsonl, as `sabot enrichment generate` writes them).
  GeneratorOptions generator{};
  std::string input_dir{};
  int parallelism = 2;
  // enriched.jsonl and vwap.jsonl are written into this directory (created) when not empty.
  std::string output_dir{};
  bool quiet = false;              // summary only (no VWAP lines)
  bool json = false;               // the summary as one JSON object on `out`, nothing else on `out`
  std::ostream* out = &std::cout;  // VWAP lines and the summary
  int64_t batch_size = 4096;       // rows per source batch
  int worker_threads = 0;          // 0: one per core
  // Holds the topics; null: a private broker for this run. Existing topics of the demo's names
  // in a given broker are replaced. Not owned.
  connectors::MemoryBroker* broker = nullptr;
};

struct DemoSummary {
  int64_t trades_in = 0, quotes_in = 0, securities_in = 0;
  int64_t enriched = 0, with_quote = 0, with_sector = 0, windows = 0;
  double wall_s = 0;            // the job only
  double cpu_s = 0;             // process CPU (user + system) over the job
  double events_per_s = 0;      // (trades + quotes + securities) / wall_s
  double events_per_cpu_s = 0;  // ... / cpu_s
  // From the source reading a trade's batch from the topic to the enriched trade reaching its sink.
  double latency_p50_ms = 0, latency_p95_ms = 0, latency_p99_ms = 0;
  double produce_s = 0;  // generating or reading the input and filling the topics (not counted)
  int parallelism = 0;
  std::string input;
  std::string job_metrics;
  std::string to_text() const;
  std::string to_json() const;
};

// Runs the demo. InvalidArgument on bad options; a bad input line names file and line.
Result<DemoSummary> run_enrichment_demo(const DemoOptions& options);

}  // namespace sabot::enrichment
