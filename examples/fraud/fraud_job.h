// The streaming fraud detector of FRAUD.md written with the public API, and the driver behind
// `sabot demo fraud`: produce transactions into memory://bank-transactions, run the detector
// (from_topic -> key_by(account_number) -> KeyedProcessFunction with keyed state) into
// memory://fraud-alerts, the console and a file, and summarise throughput and latency.
// run_fraud_demo blocks and owns everything it creates; DetectorStats is thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "sabot/api/environment.h"
#include "sabot/connectors/bad_records.h"
#include "sabot/fraud/rules.h"
#include "sabot/fraud/transactions.h"

namespace sabot::fraud {

// The detector's typed input: only the fields the rules and the alerts use (the JSON decoder
// skips the others), plus the latency stamp added after the source. Views into the batch.
struct TxnEvent {
  int64_t transaction_id = 0;
  std::string_view account_number;
  double transaction_amount = 0;
  std::string_view currency;
  std::string_view branch_city;
  int64_t timestamp_ms = 0;
  int64_t source_read_ns = 0;  // steady-clock ns when the source read the batch from the topic
};

// One `fraud-alerts` row. The columnar core has no list type, so related_transactions holds the
// ids as JSON array text ("[12,15]", "[]"); alert_json_codec() writes it raw, so the message
// carries a real JSON array of int64.
struct AlertEvent {
  std::string_view alert_id;
  int64_t transaction_id = 0;
  std::string_view account_number;
  std::string_view fraud_type;
  std::string_view severity;
  std::string_view details;
  int64_t timestamp_ms = 0;
  std::string_view related_transactions;
};

}  // namespace sabot::fraud

SABOT_RECORD(sabot::fraud::TxnEvent, transaction_id, account_number, transaction_amount, currency,
             branch_city, timestamp_ms, source_read_ns);
SABOT_RECORD(sabot::fraud::AlertEvent, alert_id, transaction_id, account_number, fraud_type,
             severity, details, timestamp_ms, related_transactions);

namespace sabot::fraud {

inline constexpr const char* kTransactionsUrl = "memory://bank-transactions";
inline constexpr const char* kAlertsUrl = "memory://fraud-alerts";
inline constexpr int kTopicPartitions = 3;
// The column map_batches adds after the source: when the batch was read (for latency).
inline constexpr const char* kReadStampColumn = "source_read_ns";

// The columns the detector decodes from each message (the JSON decoder skips the others), and
// the same plus kReadStampColumn: what the FraudDetector reads.
const columnar::SchemaPtr& detector_input_schema();
const columnar::SchemaPtr& stamped_input_schema();

// Log-linear histogram of nanosecond durations: exact below 16 ns, then 8 sub-buckets per power
// of two (relative error <= 6.25% at the bucket midpoint). One writer; merge() to combine.
class LatencyHistogram {
 public:
  static constexpr int kBuckets = 16 + 8 * 60;
  void record(int64_t ns) { ++counts_[static_cast<size_t>(bucket_of(ns < 0 ? 0 : ns))]; }
  void merge(const LatencyHistogram& other);
  int64_t count() const;
  // The midpoint of the bucket holding the q-quantile (0 <= q <= 1), in ns; 0 when empty.
  double quantile_ns(double q) const;
  static int bucket_of(int64_t ns);

 private:
  std::array<int64_t, kBuckets> counts_{};
};

// Counters of the detector's subtasks, readable while the job runs (progress) and merged at the
// end. Each subtask writes only its own Slot; thread-safe.
class DetectorStats {
 public:
  static constexpr int kTypes = 3;       // VELOCITY, AMOUNT_ANOMALY, GEO_IMPOSSIBLE
  static constexpr int kSeverities = 2;  // HIGH, CRITICAL
  struct alignas(64) Slot {
    std::atomic<int64_t> transactions{0};
    std::atomic<int64_t> out_of_order{0};
    std::atomic<int64_t> alerts{0};
    std::array<std::atomic<int64_t>, kTypes * kSeverities> by_type_severity{};
    LatencyHistogram latency;  // read only after the job ended
  };
  // A new slot for one subtask; lives as long as the DetectorStats.
  Slot* add_subtask();
  int64_t transactions() const;
  int64_t out_of_order() const;
  int64_t alerts() const;
  int64_t alerts_of(int type, int severity) const;
  // Merged over subtasks; call after the job has ended.
  LatencyHistogram latency() const;

 private:
  mutable std::mutex mu_;
  std::deque<Slot> slots_;
};

// The three rules of FRAUD.md over keyed state, per account in arrival order:
//   "account"      ValueState<Account>: count, sum and sum of squares of earlier amounts
//                  (AMOUNT_ANOMALY), previous timestamp and city (GEO_IMPOSSIBLE), latest
//                  timestamp (out-of-order count), and the account's newest kInline (id,
//                  timestamp) of its VELOCITY history. One trivially copyable value: a row
//                  usually costs one state lookup (one cache miss) for all three rules.
//   "recent"       ListState<Recent>: the older part of the VELOCITY history, spilled from the
//                  inline part kSpill at a time and cut back to 100 once it reaches 200. It is
//                  read only when it can matter: when the account's arrivals have not all been
//                  in time order, or when the oldest inline entry is itself within 60 s.
//   "unknown-city" ValueState<std::string>: the previous city's name when it is not one of the
//                  12 of cities() (input files may hold any name).
// Alerts per transaction in the order VELOCITY, AMOUNT_ANOMALY, GEO_IMPOSSIBLE, as
// reference_alerts() gives them.
class FraudDetector final : public KeyedProcessFunction<TxnEvent, AlertEvent> {
 public:
  struct Recent {
    int64_t id;
    int64_t timestamp_ms;
  };
  static constexpr int32_t kUnknownCity = -1;  // the name is in "unknown-city"
  static constexpr int32_t kInline = 6;
  static constexpr int32_t kSpill = 3;
  struct Account {
    int64_t count;           // earlier transactions
    double sum;              // of earlier amounts
    double sum_sq;           // of their squares
    int64_t previous_ms;     // the previous transaction's time
    int64_t latest_ms;       // the largest time seen
    int32_t city;            // the previous transaction's city: index into cities() or kUnknownCity
    int32_t spilled;         // entries in "recent", all older than those in `newest`
    int32_t inline_n;        // entries in `newest`
    int32_t in_order;        // 1 while no arrival was behind the account's latest time
    Recent newest[kInline];  // the newest transactions, oldest first
  };
  // Latency is stamped for one transaction in this many (a clock read costs about 40 ns here).
  static constexpr int64_t kLatencySampleEvery = 8;

  // `stats` null: nothing is counted. `latency`: stamp latencies into the histogram.
  explicit FraudDetector(std::shared_ptr<DetectorStats> stats, bool latency = true)
      : stats_(std::move(stats)), measure_latency_(latency) {}

  void open(RuntimeContext& ctx) override;
  void process(const TxnEvent& t, Context& ctx, Emitter<AlertEvent>& out) override;

 private:
  void emit(const TxnEvent& t, int type, int severity, std::string_view details,
            std::string_view related, Emitter<AlertEvent>& out);

  std::shared_ptr<DetectorStats> stats_;
  bool measure_latency_;
  DetectorStats::Slot* slot_ = nullptr;
  state::ValueState<Account>* account_ = nullptr;
  state::ListState<Recent>* recent_ = nullptr;
  state::ValueState<std::string>* unknown_city_ = nullptr;
  int64_t rows_ = 0;
  std::vector<Recent> trimmed_;  // reused when the history is cut back to 100
  std::string related_;          // reused: JSON array of related ids
  std::string alert_id_;         // reused
};

struct DetectorOptions {
  std::string input_url = kTransactionsUrl;
  // Holds the topics; null means MemoryBroker::default_instance(). Not owned.
  connectors::MemoryBroker* broker = nullptr;
  // Stamp processing latencies (of one transaction in FraudDetector::kLatencySampleEvery).
  bool measure_latency = true;
  // kafka:// input: read what the topic holds when the job starts, then end (stop_at_end).
  bool stop_at_end = false;
  connectors::StartPosition start = connectors::StartPosition::earliest();
};

// Adds the detector to `env`: from_topic(input, json) -> stamp read time -> key_by
// ("account_number") -> process(FraudDetector). Returns the alert stream (AlertEvent rows);
// attach sinks to it. The input topic must exist.
DataStream add_fraud_detector(Environment& env, const DetectorOptions& options,
                              std::shared_ptr<DetectorStats> stats);

// Encode-only codec for AlertEvent rows: one JSON object per alert with the fields of FRAUD.md,
// related_transactions written as a JSON array.
codec::CodecPtr alert_json_codec();
// Appends one alert as a JSON object (no newline).
void append_alert_json(const AlertEvent& alert, std::string* out);
// Parses what append_alert_json wrote (any key order; unknown keys refused); InvalidArgument
// naming the problem.
Result<Alert> parse_alert_json(std::string_view json);
// The console mark of a severity: LOW ⚠️, MEDIUM 🟡, HIGH 🟠, CRITICAL 🚨 ("" when
// unknown).
std::string_view severity_mark(std::string_view severity);
// "{mark} FRAUD: {fraud_type} - Account …{last 6 characters} - {details}" (no newline; the
// account is cut at a UTF-8 character boundary).
std::string alert_console_line(std::string_view severity, std::string_view fraud_type,
                               std::string_view account_number, std::string_view details);

// Writes transactions, in the given order, as JSON values keyed by account_number (timestamped
// with timestamp_ms) into `topic`, then closes the topic. produce_generated writes the generator's.
Status produce_transactions(const std::vector<Transaction>& rows, connectors::TopicPtr topic);
Status produce_generated(const GeneratorOptions& options, connectors::TopicPtr topic);
// What reading a transactions file does with a bad line: one that is not a JSON object of the
// transaction schema, or whose fields fail validate_transaction().
struct BadLineOptions {
  // kFail: the read fails naming the first bad line (file:line: reason) and how many more there
  // are. kSkip: bad lines are dropped and counted. kDeadLetter: also passed to dead_letter.
  connectors::BadRecordPolicy policy = connectors::BadRecordPolicy::kFail;
  // kDeadLetter: receives each bad line as one JSON line (with '\n'):
  //   {"file":"tx.jsonl","line":12,"error":"...","record":"<the original line>"}
  // ("record_base64" with the line's bytes instead of "record" when it is not valid UTF-8).
  std::function<Status(std::string_view)> dead_letter{};
  // kSkip and kDeadLetter: the first `report_first` bad lines are named here (file:line: reason),
  // then one line with the total. Null: not reported (still counted).
  std::ostream* report = nullptr;
  int64_t report_first = 10;
};
struct TransactionsFile {
  std::vector<Transaction> rows;  // the good lines, stably sorted by timestamp_ms
  int64_t bad_lines = 0;          // skipped or dead-lettered
};
// Reads a JSON-lines file of transactions ("-": standard input; a leading UTF-8 byte-order mark
// is accepted). Directories and other non-files are refused. Errors name the file and the 1-based
// line, and the decoder's byte and field.
Result<TransactionsFile> read_transactions_file(const std::string& path,
                                                const BadLineOptions& bad_lines);
// The same with kFail: the rows, stably sorted by timestamp_ms.
Result<std::vector<Transaction>> read_transactions_file(const std::string& path);

struct DemoOptions {
  int64_t transactions = 1'000'000;
  uint64_t seed = 42;
  int parallelism = 2;
  bool quiet = false;          // summary only (no alert lines, no progress)
  bool json = false;           // the summary as one JSON object on `out`, nothing else on `out`
  std::string input_path{};    // JSON-lines transactions instead of the generator
  BadLineOptions bad_lines{};  // what a bad line of input_path does
  std::string alerts_out{};    // every alert as a JSON line into this file
  // Instead of alerts_out: receives every alert as JSON lines (called by one thread at a time);
  // an error fails the job. The caller owns the file (the sabot command writes it atomically).
  std::function<Status(std::string_view)> alerts_writer{};
  std::ostream* out = &std::cout;       // alert lines and the summary
  std::ostream* progress = &std::cerr;  // progress while running (see progress_terminal)
  // `progress` is a terminal: progress is one status line at the bottom, redrawn in place, shown
  // also in quiet and json mode. Otherwise progress is a line a second, not in quiet/json mode.
  bool progress_terminal = false;
  // `out` is the same terminal: alert lines are written above the status line.
  bool out_terminal = false;
  // Transactions per second the producer writes into the topic; 0: as fast as the job takes
  // them (the topic's budget holds the producer back).
  int64_t rate = 0;
  // Records per partition of the input topic that the job has not yet read, at most
  // (TopicOptions::max_unread_records): bounds the demo's memory at any size.
  int64_t topic_budget = 65'536;
  // Generator options beyond transactions and seed (fraud rate, accounts, ...).
  GeneratorOptions generator{};
  // Rows per source batch.
  int64_t batch_size = 4096;
  // Threads that run the detector job's tasks; 0: one per core.
  int worker_threads = 0;
  // Holds the topics; null: a private broker for this run. Existing topics of the demo's names
  // in a given broker are replaced. Not owned.
  connectors::MemoryBroker* broker = nullptr;
  // Latency stamps (see DetectorOptions::measure_latency).
  bool measure_latency = true;
  // The detector job's other EnvironmentOptions (parallelism, worker_threads and batch_size are
  // taken from the fields above): checkpointing and recovery. With environment.checkpoint_storage
  // set (a checkpointed run; the sabot command's --checkpoint-dir) the job must be restartable
  // after a kill: the input topic is unbounded and holds the whole input before the job starts
  // (a restarted process seeks to the restored offsets), `rate`, standard input and
  // `alerts_writer` are refused, alerts_out is written by the exactly-once file sink (one file,
  // written by one subtask: only ever the alerts of completed checkpoints; environment.delivery
  // must be kExactlyOnce), and memory://fraud-alerts is not written (the embedded broker dies
  // with the process, so a transactional topic sink could not be restored). Console alert lines
  // are not transactional: a restored run prints again what it replays.
  EnvironmentOptions environment{};
  // Called once the whole input is read (bad lines dead-lettered) and, in a checkpointed run,
  // produced into the topic, before the job starts; an error ends the run. The sabot command
  // closes its dead-letter file here, so that it is whole before any kill can hit the job.
  std::function<Status()> input_ready{};
  // "kafka://HOST:PORT[,HOST:PORT]": run on that Kafka cluster instead of the embedded broker.
  // The job reads bank-transactions (created with 3 partitions if missing) from its end while
  // the input is produced into it, keyed by account, and writes alerts (JSON, keyed by account)
  // to fraud-alerts; it ends once it has read every transaction produced. The producer stays
  // at most 24 k records ahead of the job (a broker with small retention, like the mock
  // cluster's ~5 MB per partition, must not drop unread records). rate, alerts_writer,
  // alerts_out and checkpointing are refused.
  std::string kafka_broker{};
};

struct DemoSummary {
  int64_t transactions = 0;
  int64_t alerts = 0;
  std::map<std::string, int64_t> alerts_by_type;
  std::map<std::string, int64_t> alerts_by_severity;
  double wall_s = 0;  // the detector job only
  double cpu_s = 0;   // process CPU (user + system) over the detector job
  double tx_per_s = 0;
  double tx_per_cpu_s = 0;
  // Processing latency: from the source reading a transaction's batch from the topic to the
  // detector finishing that transaction.
  double latency_p50_ms = 0;
  double latency_p95_ms = 0;
  double latency_p99_ms = 0;
  // The producer runs alongside the job (wall_s includes waiting for it; in a checkpointed run
  // it runs before the job instead); its thread's CPU time is left out of cpu_s and tx_per_cpu_s.
  double generate_s = 0;         // wall time of the producer
  double generate_cpu_s = 0;     // CPU time of the producer's thread
  bool produced_first = false;   // a checkpointed run: the whole input was produced before the job
  bool producer_in_cpu = false;  // on Kafka: the producer ran in the process, cpu_s includes it
  int64_t out_of_order = 0;
  int64_t bad_records = 0;  // input lines skipped or dead-lettered (BadLineOptions)
  int parallelism = 0;
  std::string input;        // "generator (seed 42)" or the file path
  std::string job_metrics;  // the detector job's per-operator metrics (JobMetrics::to_string)

  std::string to_text() const;
  std::string to_json() const;
};

// Runs the demo. InvalidArgument on bad options; the input file's errors name file and line.
Result<DemoSummary> run_fraud_demo(const DemoOptions& options);
// run_fraud_demo with options.kafka_broker set: produce, then detect, on a Kafka cluster.
// DemoSummary::generate_s is the producing job's wall time (every record acknowledged).
Result<DemoSummary> run_fraud_demo_kafka(const DemoOptions& options);

}  // namespace sabot::fraud
