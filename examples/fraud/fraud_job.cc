// The streaming fraud detector and the `sabot demo fraud` driver; see fraud_job.h.
#include "fraud_job.h"

#include <simdjson.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <time.h>
#include <algorithm>
#include <bit>
#include <charconv>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

#include "demo_report.h"
#include "sabot/codec/codec.h"
#include "sabot/codec/json.h"
#include "sabot/columnar/builder.h"
#include "sabot/connectors/kafka.h"
#include "sabot/connectors/topic_scheme.h"

namespace sabot::fraud {

using demo::append_json_string;
using demo::cpu_seconds;
using demo::fmt;
using demo::grouped;
using demo::rate;
using demo::steady_ns;
using demo::thread_cpu_seconds;

namespace {

constexpr std::string_view kTypeNames[DetectorStats::kTypes] = {"VELOCITY", "AMOUNT_ANOMALY",
                                                                "GEO_IMPOSSIBLE"};
constexpr std::string_view kSeverityNames[DetectorStats::kSeverities] = {"HIGH", "CRITICAL"};
enum : int { kVelocity = 0, kAmount = 1, kGeo = 2 };
enum : int { kHigh = 0, kCritical = 1 };

void append_int(int64_t v, std::string* out) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, static_cast<size_t>(r.ptr - buf));
}

// ---- alert codec ---------------------------------------------------------------------------

class AlertJsonEncoder final : public codec::Encoder {
 public:
  Result<columnar::Array> encode(const columnar::RecordBatch& batch) override {
    if (!bound_) {
      SABOT_RETURN_IF_ERROR(reader_.bind(batch.schema()));
      bound_ = true;
    }
    columnar::BinaryBuilder out(columnar::binary());
    out.reserve(batch.num_rows());
    AlertEvent a;
    for (int64_t r = 0; r < batch.num_rows(); ++r) {
      SABOT_RETURN_IF_ERROR(reader_.read(batch, r, &a));
      text_.clear();
      append_alert_json(a, &text_);
      out.append(text_);
    }
    return out.finish();
  }

 private:
  RowReader<AlertEvent> reader_;
  bool bound_ = false;
  std::string text_;
};

class AlertJsonCodec final : public codec::Codec {
 public:
  std::string name() const override { return "fraud-alert-json"; }
  columnar::SchemaPtr schema() const override { return nullptr; }
  Result<std::unique_ptr<codec::Decoder>> make_decoder() const override {
    return Status::not_implemented(
        "fraud-alert-json is encode-only; read alerts with fraud::parse_alert_json");
  }
  Result<std::unique_ptr<codec::Encoder>> make_encoder() const override {
    return std::unique_ptr<codec::Encoder>(new AlertJsonEncoder());
  }
};

}  // namespace

// ---- schemas --------------------------------------------------------------------------------

const columnar::SchemaPtr& detector_input_schema() {
  using namespace columnar;
  static const SchemaPtr kSchema = schema({
      field("transaction_id", int64(), false),
      field("account_number", utf8(), false),
      field("transaction_amount", float64(), false),
      field("currency", utf8(), false),
      field("branch_city", utf8(), false),
      field("timestamp_ms", int64(), false),
  });
  return kSchema;
}

const columnar::SchemaPtr& stamped_input_schema() {
  static const columnar::SchemaPtr kSchema = [] {
    std::vector<columnar::Field> fields = detector_input_schema()->fields();
    fields.push_back(columnar::field(kReadStampColumn, columnar::int64(), false));
    return columnar::schema(std::move(fields));
  }();
  return kSchema;
}

// ---- LatencyHistogram ------------------------------------------------------------------------

int LatencyHistogram::bucket_of(int64_t ns) {
  if (ns < 16) return static_cast<int>(ns);
  const int e = 63 - std::countl_zero(static_cast<uint64_t>(ns));  // >= 4
  const int sub = static_cast<int>((ns >> (e - 3)) & 7);
  return std::min(16 + (e - 4) * 8 + sub, kBuckets - 1);
}

void LatencyHistogram::merge(const LatencyHistogram& other) {
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
}

int64_t LatencyHistogram::count() const {
  int64_t n = 0;
  for (int64_t c : counts_) n += c;
  return n;
}

double LatencyHistogram::quantile_ns(double q) const {
  const int64_t n = count();
  if (n == 0) return 0;
  const int64_t rank = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(q * n)));
  int64_t seen = 0;
  for (int b = 0; b < kBuckets; ++b) {
    seen += counts_[static_cast<size_t>(b)];
    if (seen < rank) continue;
    if (b < 16) return b;
    const int e = (b - 16) / 8 + 4;
    const int sub = (b - 16) % 8;
    const double width = std::ldexp(1.0, e - 3);
    return std::ldexp(1.0, e) + (sub + 0.5) * width;
  }
  return 0;
}

// ---- DetectorStats ---------------------------------------------------------------------------

DetectorStats::Slot* DetectorStats::add_subtask() {
  std::lock_guard<std::mutex> lock(mu_);
  return &slots_.emplace_back();
}

int64_t DetectorStats::transactions() const {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t n = 0;
  for (const Slot& s : slots_) n += s.transactions.load(std::memory_order_relaxed);
  return n;
}

int64_t DetectorStats::out_of_order() const {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t n = 0;
  for (const Slot& s : slots_) n += s.out_of_order.load(std::memory_order_relaxed);
  return n;
}

int64_t DetectorStats::alerts() const {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t n = 0;
  for (const Slot& s : slots_) n += s.alerts.load(std::memory_order_relaxed);
  return n;
}

int64_t DetectorStats::alerts_of(int type, int severity) const {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t n = 0;
  for (const Slot& s : slots_) {
    n += s.by_type_severity[static_cast<size_t>(type * kSeverities + severity)].load(
        std::memory_order_relaxed);
  }
  return n;
}

LatencyHistogram DetectorStats::latency() const {
  std::lock_guard<std::mutex> lock(mu_);
  LatencyHistogram h;
  for (const Slot& s : slots_) h.merge(s.latency);
  return h;
}

// ---- FraudDetector ---------------------------------------------------------------------------

void FraudDetector::open(RuntimeContext& ctx) {
  account_ = ctx.value_state<Account>("account");
  recent_ = ctx.list_state<Recent>("recent");
  unknown_city_ = ctx.value_state<std::string>("unknown-city");
  if (stats_) slot_ = stats_->add_subtask();
}

namespace {
// A relaxed increment by the slot's only writer: no locked read-modify-write per row.
void bump(std::atomic<int64_t>& c, int64_t by = 1) {
  c.store(c.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
}

int32_t city_index(std::string_view name) {
  const City* c = find_city(name);
  return c == nullptr ? FraudDetector::kUnknownCity : static_cast<int32_t>(c - cities().data());
}

FraudDetector::Account new_account() {
  FraudDetector::Account a{};
  a.city = FraudDetector::kUnknownCity;
  a.in_order = 1;
  return a;
}

std::string_view clip(const char* buf, int len, size_t size) {
  return std::string_view(buf, std::min(static_cast<size_t>(std::max(len, 0)), size - 1));
}
}  // namespace

void FraudDetector::process(const TxnEvent& t, Context&, Emitter<AlertEvent>& out) {
  char details[256];
  const Account* previous = account_->get();
  // Copied, not zero-filled first: the account is 152 bytes and this runs for every row.
  Account account = previous != nullptr ? *previous : new_account();
  const auto in_window = [&](const Recent& r) {
    return t.timestamp_ms - r.timestamp_ms < kVelocityWindowMs;
  };

  // VELOCITY: earlier transactions among the last 100 less than 60 s before this one. The
  // spilled part is older; when the account's times are in order and the oldest inline entry is
  // out of the window, every spilled one is too.
  const std::span<const Recent> newest(account.newest, static_cast<size_t>(account.inline_n));
  std::span<const Recent> older;
  if (account.spilled > 0 &&
      (account.in_order == 0 || (!newest.empty() && in_window(newest.front())))) {
    older = recent_->get();
    const size_t keep = static_cast<size_t>(kVelocityHistory) - newest.size();
    if (older.size() > keep) older = older.subspan(older.size() - keep);
  }
  int64_t count = 0;
  for (const Recent& r : older) count += in_window(r);
  for (const Recent& r : newest) count += in_window(r);
  if (count >= 2) {
    related_.assign(1, '[');
    for (std::span<const Recent> part : {older, newest}) {
      for (const Recent& r : part) {
        if (!in_window(r)) continue;
        if (related_.size() > 1) related_.push_back(',');
        append_int(r.id, &related_);
      }
    }
    related_.push_back(']');
    const int n = std::snprintf(details, sizeof details, "%lld transactions in 60s",
                                static_cast<long long>(count + 1));
    emit(t, kVelocity, kHigh, clip(details, n, sizeof details), related_, out);
  }

  // AMOUNT_ANOMALY: z-score against the earlier amounts (the same arithmetic as the reference).
  if (account.count >= kAmountMinCount) {
    const double n = static_cast<double>(account.count);
    const double mean = account.sum / n;
    const double variance = account.sum_sq / n - mean * mean;
    if (variance > 0) {
      const double z = (t.transaction_amount - mean) / std::sqrt(variance);
      if (std::abs(z) > kAmountAlertZ) {
        const int len = std::snprintf(
            details, sizeof details, "Amount %.2f %.*s is %.1fσ from mean %.2f",
            t.transaction_amount, static_cast<int>(t.currency.size()), t.currency.data(), z, mean);
        emit(t, kAmount, z > kAmountCriticalZ ? kCritical : kHigh,
             clip(details, len, sizeof details), "[]", out);
      }
    }
  }

  // GEO_IMPOSSIBLE: another city than the previous transaction's, less than 10 minutes later.
  bool same_city = false;
  if (previous != nullptr) {
    const std::string* unknown = nullptr;
    std::string_view previous_city;
    if (account.city != kUnknownCity) {
      previous_city = cities()[static_cast<size_t>(account.city)].name;
    } else {
      unknown = unknown_city_->get();
      if (unknown != nullptr) previous_city = *unknown;
    }
    same_city = previous_city == t.branch_city;
    if (!same_city) {
      const double minutes = static_cast<double>(t.timestamp_ms - account.previous_ms) / 60000.0;
      if (minutes < kGeoMaxMinutes) {
        const int len = std::snprintf(details, sizeof details, "%.*s→%.*s in %.1fmin (%.0fkm)",
                                      static_cast<int>(previous_city.size()), previous_city.data(),
                                      static_cast<int>(t.branch_city.size()), t.branch_city.data(),
                                      minutes, city_distance_km(previous_city, t.branch_city));
        emit(t, kGeo, kCritical, clip(details, len, sizeof details), "[]", out);
      }
    }
  }

  // State update, after the rules.
  const bool out_of_order = previous != nullptr && t.timestamp_ms < account.latest_ms;
  if (out_of_order) account.in_order = 0;
  ++account.count;
  account.sum += t.transaction_amount;
  account.sum_sq += t.transaction_amount * t.transaction_amount;
  account.previous_ms = t.timestamp_ms;
  account.latest_ms =
      previous != nullptr ? std::max(account.latest_ms, t.timestamp_ms) : t.timestamp_ms;
  if (!same_city) {
    account.city = city_index(t.branch_city);
    if (account.city == kUnknownCity) {
      unknown_city_->update(std::string(t.branch_city));
    } else if (previous != nullptr && previous->city == kUnknownCity) {
      unknown_city_->clear();
    }
  }
  if (account.inline_n == kInline) {
    // Spill the oldest kSpill to "recent"; keep it between 100 and 200 long.
    recent_->add_all(std::span<const Recent>(account.newest, kSpill));
    std::move(account.newest + kSpill, account.newest + kInline, account.newest);
    account.inline_n -= kSpill;
    account.spilled += kSpill;
    if (account.spilled >= 2 * kVelocityHistory) {
      std::span<const Recent> all = recent_->get();
      trimmed_.assign(all.end() - kVelocityHistory, all.end());
      recent_->update(trimmed_);
      account.spilled = kVelocityHistory;
    }
  }
  account.newest[account.inline_n++] = Recent{t.transaction_id, t.timestamp_ms};
  account_->update(account);

  if (slot_ != nullptr) {
    bump(slot_->transactions);
    if (out_of_order) bump(slot_->out_of_order);
    if (measure_latency_ && rows_++ % kLatencySampleEvery == 0) {
      slot_->latency.record(steady_ns() - t.source_read_ns);
    }
  }
}

void FraudDetector::emit(const TxnEvent& t, int type, int severity, std::string_view details,
                         std::string_view related, Emitter<AlertEvent>& out) {
  alert_id_.assign("FA-");
  append_int(t.transaction_id, &alert_id_);
  alert_id_.push_back('-');
  alert_id_.append(kTypeNames[type]);
  out.emit(AlertEvent{alert_id_, t.transaction_id, t.account_number, kTypeNames[type],
                      kSeverityNames[severity], details, t.timestamp_ms, related});
  if (slot_ != nullptr) {
    bump(slot_->alerts);
    bump(
        slot_->by_type_severity[static_cast<size_t>(type * DetectorStats::kSeverities + severity)]);
  }
}

// ---- the job ---------------------------------------------------------------------------------

DataStream add_fraud_detector(Environment& env, const DetectorOptions& options,
                              std::shared_ptr<DetectorStats> stats) {
  connectors::TopicSourceOptions source;
  source.broker = options.broker;
  source.stop_at_end = options.stop_at_end;
  source.start = options.start;
  return env.from_topic(options.input_url, codec::json(detector_input_schema()), source)
      .uid("transactions")
      .map_batches(
          [](const columnar::RecordBatch& b) -> Result<columnar::RecordBatch> {
            std::vector<columnar::Array> columns = b.columns();
            columns.push_back(columnar::Array::make_repeated(
                columnar::Scalar::of_int64(steady_ns()), b.num_rows()));
            return columnar::RecordBatch::make_unchecked(stamped_input_schema(), std::move(columns),
                                                         b.num_rows());
          },
          stamped_input_schema())
      .name("stamp-read-time")
      .key_by("account_number")
      .process(FraudDetector(std::move(stats), options.measure_latency))
      .name("fraud-detector")
      .uid("fraud-detector");
}

codec::CodecPtr alert_json_codec() { return std::make_shared<AlertJsonCodec>(); }

void append_alert_json(const AlertEvent& a, std::string* out) {
  out->append("{\"alert_id\":");
  append_json_string(a.alert_id, out);
  out->append(",\"transaction_id\":");
  append_int(a.transaction_id, out);
  out->append(",\"account_number\":");
  append_json_string(a.account_number, out);
  out->append(",\"fraud_type\":");
  append_json_string(a.fraud_type, out);
  out->append(",\"severity\":");
  append_json_string(a.severity, out);
  out->append(",\"details\":");
  append_json_string(a.details, out);
  out->append(",\"timestamp_ms\":");
  append_int(a.timestamp_ms, out);
  out->append(",\"related_transactions\":");
  out->append(a.related_transactions.empty() ? std::string_view("[]") : a.related_transactions);
  out->push_back('}');
}

Result<Alert> parse_alert_json(std::string_view json) {
  thread_local simdjson::dom::parser parser;
  simdjson::padded_string padded(json);
  simdjson::dom::element root;
  if (auto err = parser.parse(padded).get(root); err) {
    return Status::invalid_argument(std::string("alert JSON is malformed: ") +
                                    simdjson::error_message(err));
  }
  simdjson::dom::object obj;
  if (root.get(obj)) return Status::invalid_argument("alert JSON is not an object");
  Alert a;
  int seen = 0;
  for (const simdjson::dom::key_value_pair& field : obj) {
    // Plain variables, not a structured binding: clang before 16 cannot capture bindings in the
    // lambdas below.
    const std::string_view key = field.key;
    const simdjson::dom::element value = field.value;
    auto bad = [&, k = key](const char* what) {
      return Status::invalid_argument("alert JSON field '" + std::string(k) + "': " + what);
    };
    auto get_string = [&](std::string* out) -> Status {
      std::string_view s;
      if (value.get(s)) return bad("expected a string");
      out->assign(s);
      return Status::ok();
    };
    auto get_int = [&](int64_t* out) -> Status {
      if (value.get(*out)) return bad("expected an int64");
      return Status::ok();
    };
    ++seen;
    if (key == "alert_id") {
      SABOT_RETURN_IF_ERROR(get_string(&a.alert_id));
    } else if (key == "transaction_id") {
      SABOT_RETURN_IF_ERROR(get_int(&a.transaction_id));
    } else if (key == "account_number") {
      SABOT_RETURN_IF_ERROR(get_string(&a.account_number));
    } else if (key == "fraud_type") {
      SABOT_RETURN_IF_ERROR(get_string(&a.fraud_type));
    } else if (key == "severity") {
      SABOT_RETURN_IF_ERROR(get_string(&a.severity));
    } else if (key == "details") {
      SABOT_RETURN_IF_ERROR(get_string(&a.details));
    } else if (key == "timestamp_ms") {
      SABOT_RETURN_IF_ERROR(get_int(&a.timestamp_ms));
    } else if (key == "related_transactions") {
      simdjson::dom::array arr;
      if (value.get(arr)) return bad("expected an array");
      for (simdjson::dom::element e : arr) {
        int64_t id = 0;
        if (e.get(id)) return bad("expected an array of int64");
        a.related_transactions.push_back(id);
      }
    } else {
      return bad("unknown field");
    }
  }
  if (seen != 8) {
    return Status::invalid_argument("alert JSON has " + std::to_string(seen) +
                                    " fields, expected the 8 of a fraud alert");
  }
  return a;
}

std::string_view severity_mark(std::string_view severity) {
  if (severity == "LOW") return "⚠️";
  if (severity == "MEDIUM") return "🟡";
  if (severity == "HIGH") return "🟠";
  if (severity == "CRITICAL") return "🚨";
  return "";
}

std::string alert_console_line(std::string_view severity, std::string_view fraud_type,
                               std::string_view account_number, std::string_view details) {
  std::string line(severity_mark(severity));
  line += " FRAUD: ";
  line += fraud_type;
  line += " - Account …";
  // The last 6 characters (not bytes: a cut must not split a UTF-8 sequence).
  size_t from = account_number.size();
  for (int chars = 0; from > 0 && chars < 6; ++chars) {
    --from;
    while (from > 0 && (static_cast<unsigned char>(account_number[from]) & 0xC0) == 0x80) --from;
  }
  line += account_number.substr(from);
  line += " - ";
  line += details;
  return line;
}

// ---- producing the input ---------------------------------------------------------------------

namespace {
Status send_transactions(const columnar::RecordBatch& batch, codec::JsonEncoder& encoder,
                         connectors::MemoryTopicWriter& writer) {
  SABOT_ASSIGN_OR_RETURN(columnar::Array values, encoder.encode(batch));
  // Keyed by account_number (column 1), stamped with the event time (column 10).
  return writer.send_batch(batch.column(1), values, batch.column(10));
}
}  // namespace

Status produce_transactions(const std::vector<Transaction>& rows, connectors::TopicPtr topic) {
  SABOT_ASSIGN_OR_RETURN(auto writer, connectors::MemoryTopicWriter::open(topic));
  codec::JsonEncoder encoder;
  constexpr size_t kChunk = 8192;
  for (size_t i = 0; i < rows.size(); i += kChunk) {
    const size_t n = std::min(kChunk, rows.size() - i);
    SABOT_RETURN_IF_ERROR(send_transactions(
        to_record_batch(std::span<const Transaction>(rows.data() + i, n)), encoder, *writer));
  }
  SABOT_RETURN_IF_ERROR(writer->close());
  topic->close();
  return Status::ok();
}

Status produce_generated(const GeneratorOptions& options, connectors::TopicPtr topic) {
  SABOT_ASSIGN_OR_RETURN(TransactionGenerator gen, TransactionGenerator::make(options));
  SABOT_ASSIGN_OR_RETURN(auto writer, connectors::MemoryTopicWriter::open(topic));
  codec::JsonEncoder encoder;
  while (!gen.done()) {
    SABOT_RETURN_IF_ERROR(send_transactions(gen.next_batch(8192), encoder, *writer));
  }
  SABOT_RETURN_IF_ERROR(writer->close());
  topic->close();
  return Status::ok();
}

namespace {
// The whole of `path` ("-": standard input); directories and other non-files refused.
Result<std::string> read_input_text(const std::string& path) {
  std::stringstream buffer;
  if (path == "-") {
    buffer << std::cin.rdbuf();
    if (std::cin.bad()) return Status::io_error("cannot read transactions from standard input");
    return std::move(buffer).str();
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return Status::io_error("cannot open transactions file '" + path +
                            "': " + std::strerror(errno));
  }
  if (S_ISDIR(st.st_mode)) {
    return Status::invalid_argument("transactions file '" + path + "' is a directory, not a file");
  }
  if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode)) {
    return Status::invalid_argument("transactions file '" + path + "' is not a regular file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status::io_error("cannot open transactions file '" + path +
                            "': " + std::strerror(errno));
  }
  buffer << in.rdbuf();
  if (in.bad()) return Status::io_error("cannot read transactions file '" + path + "'");
  return std::move(buffer).str();
}
}  // namespace

Result<TransactionsFile> read_transactions_file(const std::string& path,
                                                const BadLineOptions& options) {
  SABOT_ASSIGN_OR_RETURN(std::string text, read_input_text(path));
  SABOT_ASSIGN_OR_RETURN(codec::JsonDecoder decoder,
                         codec::JsonDecoder::make(transaction_schema()));
  SABOT_ASSIGN_OR_RETURN(codec::DecodeResult decoded, decoder.decode_lines(text));
  SABOT_ASSIGN_OR_RETURN(std::vector<Transaction> decoded_rows, from_record_batch(decoded.batch));

  // The lines the decoder saw (as decode_lines splits them), to name and dead-letter bad ones.
  struct Line {
    int64_t number;  // 0-based
    std::string_view text;
  };
  std::vector<Line> lines;
  {
    size_t pos = std::string_view(text).substr(0, 3) == "\xEF\xBB\xBF" ? 3 : 0;
    int64_t number = 0;
    while (pos < text.size()) {
      size_t end = text.find('\n', pos);
      if (end == std::string::npos) end = text.size();
      std::string_view l(text.data() + pos, end - pos);
      if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
      const bool blank = std::all_of(l.begin(), l.end(), [](char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\r';
      });
      if (!blank) lines.push_back({number, l});
      pos = end + 1;
      ++number;
    }
  }
  // Bad lines (decoder errors and field checks) in line order, and the good rows.
  struct Bad {
    int64_t number;
    std::string_view text;
    std::string error;
  };
  std::vector<Bad> bad;
  std::vector<Transaction> rows;
  rows.reserve(decoded_rows.size());
  size_t next_error = 0;
  size_t next_row = 0;
  for (const Line& l : lines) {
    if (next_error < decoded.errors.size() && decoded.errors[next_error].index == l.number) {
      bad.push_back({l.number, l.text, std::move(decoded.errors[next_error].message)});
      ++next_error;
      continue;
    }
    if (next_row >= decoded_rows.size()) break;  // cannot happen: rows and errors cover all
    Transaction& t = decoded_rows[next_row++];
    if (Status s = validate_transaction(t); !s.is_ok()) {
      bad.push_back({l.number, l.text, s.message()});
      continue;
    }
    rows.push_back(std::move(t));
  }
  auto where = [&path](int64_t number) {
    return (path == "-" ? std::string("<stdin>") : path) + ":" + std::to_string(number + 1);
  };
  if (!bad.empty() && options.policy == connectors::BadRecordPolicy::kFail) {
    std::string msg = where(bad.front().number) + ": bad transaction: " + bad.front().error;
    if (bad.size() > 1) {
      msg += " (and " + std::to_string(bad.size() - 1) + " more bad lines)";
    }
    return Status::invalid_argument(std::move(msg));
  }
  for (size_t i = 0; i < bad.size(); ++i) {
    const Bad& b = bad[i];
    if (options.report != nullptr && static_cast<int64_t>(i) < options.report_first) {
      *options.report << where(b.number) << ": bad transaction "
                      << (options.policy == connectors::BadRecordPolicy::kSkip ? "skipped"
                                                                               : "dead-lettered")
                      << ": " << b.error << "\n";
    }
    if (options.policy == connectors::BadRecordPolicy::kDeadLetter && options.dead_letter) {
      std::string letter = "{\"file\":";
      append_json_string(path, &letter);
      letter += ",\"line\":";
      append_int(b.number + 1, &letter);
      letter += ",\"error\":";
      append_json_string(b.error, &letter);
      if (simdjson::validate_utf8(b.text.data(), b.text.size())) {
        letter += ",\"record\":";
        append_json_string(b.text, &letter);
      } else {  // JSON text cannot hold the bytes: keep them exactly, in base64
        letter += ",\"record_base64\":\"";
        codec::base64_encode(b.text, letter);
        letter += '"';
      }
      letter += "}\n";
      SABOT_RETURN_IF_ERROR(options.dead_letter(letter));
    }
  }
  if (options.report != nullptr && !bad.empty()) {
    *options.report << (path == "-" ? std::string("<stdin>") : path) << ": " << bad.size()
                    << " bad " << (bad.size() == 1 ? "line" : "lines")
                    << (options.policy == connectors::BadRecordPolicy::kSkip ? " skipped"
                                                                             : " dead-lettered")
                    << (static_cast<int64_t>(bad.size()) > options.report_first
                            ? " (the first " + std::to_string(options.report_first) +
                                  " named above)"
                            : std::string())
                    << "\n";
  }
  // Per-account event-time order in the topic: what the detector (and the reference) assume.
  std::stable_sort(rows.begin(), rows.end(), [](const Transaction& a, const Transaction& b) {
    return a.timestamp_ms < b.timestamp_ms;
  });
  return TransactionsFile{std::move(rows), static_cast<int64_t>(bad.size())};
}

Result<std::vector<Transaction>> read_transactions_file(const std::string& path) {
  SABOT_ASSIGN_OR_RETURN(TransactionsFile file, read_transactions_file(path, BadLineOptions{}));
  return std::move(file.rows);
}

// ---- the summary -----------------------------------------------------------------------------

namespace {
void append_json_counts(const std::map<std::string, int64_t>& m, std::string* out) {
  out->push_back('{');
  bool first = true;
  for (const auto& [k, v] : m) {
    if (!first) out->push_back(',');
    first = false;
    append_json_string(k, out);
    out->push_back(':');
    append_int(v, out);
  }
  out->push_back('}');
}
}  // namespace

std::string DemoSummary::to_text() const {
  std::string s = "Fraud detection summary\n";
  s += "  input           ";
  s += input;
  if (producer_in_cpu) {
    s += ", produced into Kafka alongside the job (its CPU is counted below)\n";
  } else {
    s += produced_first ? ", produced before the job (" : ", produced alongside the job (";
    s += fmt("%.2f", generate_cpu_s);
    s += " s CPU, not counted below)\n";
  }
  s += "  transactions    ";
  s += grouped(transactions);
  s += " (parallelism ";
  s += std::to_string(parallelism);
  s += ", ";
  s += grouped(out_of_order);
  s += " out of order";
  if (bad_records > 0) {
    s += ", ";
    s += grouped(bad_records);
    s += bad_records == 1 ? " bad input line" : " bad input lines";
    s += " left out";
  }
  s += ")\n";
  s += "  alerts          ";
  s += grouped(alerts);
  s += '\n';
  // "AMOUNT_ANOMALY 291  GEO_IMPOSSIBLE 1,109", or "none".
  auto append_counts = [&s](const std::map<std::string, int64_t>& counts) {
    if (counts.empty()) s += "none";
    for (auto it = counts.begin(); it != counts.end(); ++it) {
      if (it != counts.begin()) s += "  ";
      s += it->first;
      s += ' ';
      s += grouped(it->second);
    }
    s += '\n';
  };
  s += "    by type       ";
  append_counts(alerts_by_type);
  s += "    by severity   ";
  append_counts(alerts_by_severity);
  s += "  throughput      ";
  s += rate(tx_per_s);
  s += " tx/s (";
  s += fmt("%.3f", wall_s);
  s += " s wall), ";
  s += rate(tx_per_cpu_s);
  s += " tx per CPU-second (";
  s += fmt("%.3f", cpu_s);
  s += " s CPU)\n";
  s += "  latency         p50 ";
  s += fmt("%.3f", latency_p50_ms);
  s += " ms, p95 ";
  s += fmt("%.3f", latency_p95_ms);
  s += " ms, p99 ";
  s += fmt("%.3f", latency_p99_ms);
  s += " ms (topic read to detector done)\n";
  return s;
}

std::string DemoSummary::to_json() const {
  std::string s = "{\"transactions\":";
  append_int(transactions, &s);
  s += ",\"alerts\":";
  append_int(alerts, &s);
  s += ",\"alerts_by_type\":";
  append_json_counts(alerts_by_type, &s);
  s += ",\"alerts_by_severity\":";
  append_json_counts(alerts_by_severity, &s);
  s += ",\"wall_s\":";
  s += fmt("%.6f", wall_s);
  s += ",\"cpu_s\":";
  s += fmt("%.6f", cpu_s);
  s += ",\"tx_per_s\":";
  s += fmt("%.1f", tx_per_s);
  s += ",\"tx_per_cpu_s\":";
  s += fmt("%.1f", tx_per_cpu_s);
  s += ",\"latency_ms\":{\"p50\":";
  s += fmt("%.6f", latency_p50_ms);
  s += ",\"p95\":";
  s += fmt("%.6f", latency_p95_ms);
  s += ",\"p99\":";
  s += fmt("%.6f", latency_p99_ms);
  s += "},\"generate_s\":";
  s += fmt("%.6f", generate_s);
  s += ",\"generate_cpu_s\":";
  s += fmt("%.6f", generate_cpu_s);
  s += ",\"out_of_order\":";
  append_int(out_of_order, &s);
  s += ",\"bad_records\":";
  append_int(bad_records, &s);
  s += ",\"parallelism\":";
  append_int(parallelism, &s);
  s += ",\"input\":";
  append_json_string(input, &s);
  s += '}';
  return s;
}

// ---- the demo --------------------------------------------------------------------------------

namespace {

Status check_options(const DemoOptions& o) {
  std::vector<std::string> problems;
  if (o.parallelism < 1 || o.parallelism > 128) {
    problems.push_back("parallelism must be in [1, 128], got " + std::to_string(o.parallelism));
  }
  if (o.input_path.empty() && o.transactions < 0) {
    problems.push_back("transactions must be >= 0, got " + std::to_string(o.transactions));
  }
  if (o.batch_size < 1) {
    problems.push_back("batch_size must be >= 1, got " + std::to_string(o.batch_size));
  }
  if (o.worker_threads < 0) {
    problems.push_back("worker_threads must be >= 0, got " + std::to_string(o.worker_threads));
  }
  if (o.out == nullptr) problems.push_back("out must not be null");
  if (o.rate < 0) problems.push_back("rate must be >= 0, got " + std::to_string(o.rate));
  if (o.topic_budget < 0) {
    problems.push_back("topic_budget must be >= 0, got " + std::to_string(o.topic_budget));
  }
  if (o.environment.checkpoint_storage) {
    // A checkpointed run must be able to start again after a kill and see the same input.
    if (o.rate > 0) {
      problems.push_back(
          "a checkpointed run produces the whole input before the job starts, so it cannot "
          "pace it (rate)");
    }
    if (o.input_path == "-") {
      problems.push_back(
          "a checkpointed run cannot read standard input: a restarted run must read the same "
          "input again");
    }
    if (o.alerts_writer) {
      problems.push_back(
          "a checkpointed run writes alerts_out through the exactly-once file sink, not "
          "alerts_writer");
    }
    if (!o.alerts_out.empty() &&
        o.environment.delivery != runtime::DeliveryGuarantee::kExactlyOnce) {
      problems.push_back("a checkpointed run with alerts_out needs delivery kExactlyOnce");
    }
  }
  if (problems.empty()) return Status::ok();
  std::string msg = "fraud demo options:";
  for (const std::string& p : problems) {
    msg += ' ';
    msg += p;
    msg += ';';
  }
  msg.pop_back();
  return Status::invalid_argument(std::move(msg));
}

// The alerts file of a checkpointed run: every alert as the JSON line append_alert_json writes,
// through the exactly-once file sink at parallelism 1 (one file, whatever the detector's
// parallelism). The file sink encodes rows itself; a one-column batch of the lines, written as CSV
// without a header and with a delimiter and a quote (0x1F, 0x1E) that JSON text never holds raw
// (control characters are escaped), is exactly those lines.
void add_alert_file_sink(const DataStream& alerts, const std::string& path) {
  static const columnar::SchemaPtr kLines =
      columnar::schema({columnar::field("line", columnar::utf8(), false)});
  alerts
      .map_batches(
          [](const columnar::RecordBatch& batch) -> Result<columnar::RecordBatch> {
            SABOT_ASSIGN_OR_RETURN(std::vector<AlertEvent> rows, read_rows<AlertEvent>(batch));
            columnar::BinaryBuilder lines(columnar::utf8());
            lines.reserve(static_cast<int64_t>(rows.size()));
            std::string text;
            for (const AlertEvent& a : rows) {
              text.clear();
              append_alert_json(a, &text);
              lines.append(text);
            }
            return columnar::RecordBatch::make_unchecked(kLines, {lines.finish()},
                                                         static_cast<int64_t>(rows.size()));
          },
          kLines)
      .name("alert-json")
      .to_file({.path = path,
                .format = FileFormat::kCsv,
                .csv = {.delimiter = '\x1f', .header = false, .quote = '\x1e'}})
      .set_parallelism(1)
      .name("alerts-file")
      .uid("alerts-file");
}

// The progress line. On a terminal it is one status line at the bottom, redrawn in place
// ("\r" + clear-line), and console output written through above() scrolls above it; elsewhere
// each update is a line of its own. Thread-safe.
class StatusLine {
 public:
  StatusLine(std::ostream* out, bool terminal, bool shares_terminal)
      : out_(out), terminal_(terminal), shares_terminal_(shares_terminal) {}
  bool enabled() const { return out_ != nullptr; }
  void show(const std::string& line) {
    if (out_ == nullptr) return;
    std::lock_guard<std::mutex> lock(mu_);
    current_ = line;
    if (terminal_) {
      *out_ << "\r\x1b[K" << line << std::flush;
    } else {
      *out_ << line << '\n' << std::flush;
    }
  }
  // Runs `write` (output to the terminal the status line is on) with the line cleared, then
  // redraws it.
  template <typename F>
  auto above(F&& write) {
    if (out_ == nullptr || !terminal_ || !shares_terminal_) return write();
    std::lock_guard<std::mutex> lock(mu_);
    if (!current_.empty()) *out_ << "\r\x1b[K" << std::flush;
    auto r = write();
    if (!current_.empty()) *out_ << current_ << std::flush;
    return r;
  }
  // Clears a terminal's status line (the summary follows).
  void finish() {
    if (out_ == nullptr || !terminal_) return;
    std::lock_guard<std::mutex> lock(mu_);
    if (!current_.empty()) *out_ << "\r\x1b[K" << std::flush;
    current_.clear();
  }

 private:
  std::ostream* out_;
  bool terminal_;
  bool shares_terminal_;
  std::mutex mu_;
  std::string current_;
};

// Updates the status line at once and then about once a second until stopped.
class ProgressPrinter {
 public:
  ProgressPrinter(StatusLine* line, const DetectorStats* stats,
                  const std::atomic<int64_t>* produced)
      : line_(line), stats_(stats), produced_(produced) {
    if (line_->enabled()) thread_ = std::thread([this] { run(); });
  }
  ~ProgressPrinter() { stop(); }
  void stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void run() {
    const auto start = std::chrono::steady_clock::now();
    auto last_time = start;
    int64_t last_tx = 0;
    std::unique_lock<std::mutex> lock(mu_);
    do {
      const auto now = std::chrono::steady_clock::now();
      const int64_t tx = stats_->transactions();
      const double dt = std::chrono::duration<double>(now - last_time).count();
      std::string line = "progress: ";
      line += fmt("%.0f", std::chrono::duration<double>(now - start).count());
      line += " s, ";
      line += grouped(produced_->load(std::memory_order_relaxed));
      line += " produced, ";
      line += grouped(tx);
      line += " checked, ";
      line += grouped(stats_->alerts());
      line += " alerts, ";
      line += rate(dt > 0 ? static_cast<double>(tx - last_tx) / dt : 0);
      line += " tx/s";
      line_->show(line);
      last_time = now;
      last_tx = tx;
    } while (!cv_.wait_for(lock, std::chrono::seconds(1), [this] { return done_; }));
  }

  StatusLine* line_;
  const DetectorStats* stats_;
  const std::atomic<int64_t>* produced_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

// Feeds the input topic while the job runs: batches from `next` (empty when done), at most
// `rate` transactions per second (0: as fast as the topic takes them; the bounded topic holds
// the producer back when the job falls behind). Closes the topic at the end, also on error.
Status produce_live(const std::function<columnar::RecordBatch(int64_t)>& next, int64_t rate,
                    const connectors::TopicPtr& topic, std::atomic<int64_t>* produced) {
  Status status = [&]() -> Status {
    SABOT_ASSIGN_OR_RETURN(auto writer, connectors::MemoryTopicWriter::open(topic));
    codec::JsonEncoder encoder;
    // Paced in small steps: about 100 batches a second at the chosen rate.
    const int64_t step = rate > 0 ? std::clamp<int64_t>(rate / 100, 1, 8192) : 8192;
    const auto start = std::chrono::steady_clock::now();
    int64_t sent = 0;
    while (true) {
      columnar::RecordBatch batch = next(step);
      if (batch.num_rows() == 0) break;
      if (rate > 0) {
        std::this_thread::sleep_until(
            start + std::chrono::nanoseconds(static_cast<int64_t>(static_cast<double>(sent) * 1e9 /
                                                                  static_cast<double>(rate))));
      }
      SABOT_RETURN_IF_ERROR(send_transactions(batch, encoder, *writer));
      // Paced: visible to the job at once. Unpaced, the writer appends a partition's chunk once
      // it holds 8192 records. Either way an append waits here while the topic is full.
      if (rate > 0) SABOT_RETURN_IF_ERROR(writer->flush());
      sent += batch.num_rows();
      produced->store(sent, std::memory_order_relaxed);
    }
    return writer->close();
  }();
  topic->close();
  return status;
}

}  // namespace

namespace {

// The detector's counts, rates (from wall_s and cpu_s) and latencies into `summary`.
void fill_from_stats(const DetectorStats& stats, DemoSummary* summary) {
  summary->transactions = stats.transactions();
  summary->alerts = stats.alerts();
  summary->out_of_order = stats.out_of_order();
  for (int t = 0; t < DetectorStats::kTypes; ++t) {
    for (int s = 0; s < DetectorStats::kSeverities; ++s) {
      const int64_t n = stats.alerts_of(t, s);
      if (n == 0) continue;
      summary->alerts_by_type[std::string(kTypeNames[t])] += n;
      summary->alerts_by_severity[std::string(kSeverityNames[s])] += n;
    }
  }
  const double tx = static_cast<double>(summary->transactions);
  summary->tx_per_s = summary->wall_s > 0 ? tx / summary->wall_s : 0;
  summary->tx_per_cpu_s = summary->cpu_s > 0 ? tx / summary->cpu_s : 0;
  const LatencyHistogram latency = stats.latency();
  summary->latency_p50_ms = latency.quantile_ns(0.50) / 1e6;
  summary->latency_p95_ms = latency.quantile_ns(0.95) / 1e6;
  summary->latency_p99_ms = latency.quantile_ns(0.99) / 1e6;
}

}  // namespace

Result<DemoSummary> run_fraud_demo(const DemoOptions& options) {
  if (!options.kafka_broker.empty()) return run_fraud_demo_kafka(options);
  SABOT_RETURN_IF_ERROR(check_options(options));
  const bool console = !options.quiet && !options.json;

  std::unique_ptr<connectors::MemoryBroker> own_broker;
  connectors::MemoryBroker* broker = options.broker;
  if (broker == nullptr) {
    own_broker = std::make_unique<connectors::MemoryBroker>();
    broker = own_broker.get();
  }
  for (const char* url : {kTransactionsUrl, kAlertsUrl}) {
    SABOT_ASSIGN_OR_RETURN(connectors::MemoryUrl parsed, connectors::parse_memory_url(url));
    if (broker->topic(parsed.topic).is_ok()) {
      SABOT_RETURN_IF_ERROR(broker->delete_topic(parsed.topic));
    }
  }

  // A checkpointed run (see DemoOptions::environment) can be killed and started again.
  const bool checkpointed = options.environment.checkpoint_storage != nullptr;

  // Every alert's JSON lines go to `write_alerts` (serially: the callback sink holds a lock);
  // in a checkpointed run to the exactly-once file sink instead.
  std::function<Status(std::string_view)> write_alerts = options.alerts_writer;
  if (!write_alerts && !options.alerts_out.empty() && !checkpointed) {
    auto file = std::make_shared<std::ofstream>(options.alerts_out, std::ios::binary);
    if (!*file) {
      return Status::io_error("cannot write alerts file '" + options.alerts_out +
                              "': " + std::strerror(errno));
    }
    write_alerts = [file, path = options.alerts_out](std::string_view text) -> Status {
      file->write(text.data(), static_cast<std::streamsize>(text.size()));
      if (text.empty()) file->flush();
      if (!*file) return Status::io_error("writing alerts file '" + path + "' failed");
      return Status::ok();
    };
  }

  DemoSummary summary;
  summary.parallelism = options.parallelism;

  // 1. The input topic: bounded, so that the producer runs alongside the job in bounded memory
  // at any size. A checkpointed run needs every offset a checkpoint can hold: the topic is
  // unbounded and filled before the job starts (a reader cannot seek beyond a topic's end).
  SABOT_ASSIGN_OR_RETURN(connectors::MemoryUrl input_url,
                         connectors::parse_memory_url(kTransactionsUrl));
  SABOT_ASSIGN_OR_RETURN(
      connectors::TopicPtr topic,
      broker->create_topic(input_url.topic,
                           {.partitions = kTopicPartitions,
                            .max_unread_records = checkpointed ? 0 : options.topic_budget}));
  std::function<columnar::RecordBatch(int64_t)> next_batch;
  std::vector<Transaction> file_rows;
  size_t file_next = 0;
  std::optional<TransactionGenerator> generator;
  if (!options.input_path.empty()) {
    SABOT_ASSIGN_OR_RETURN(TransactionsFile file,
                           read_transactions_file(options.input_path, options.bad_lines));
    summary.bad_records = file.bad_lines;
    file_rows = std::move(file.rows);
    next_batch = [&](int64_t max) {
      const size_t n = std::min(static_cast<size_t>(max), file_rows.size() - file_next);
      columnar::RecordBatch b =
          to_record_batch(std::span<const Transaction>(file_rows.data() + file_next, n));
      file_next += n;
      return b;
    };
    summary.input = options.input_path;
  } else {
    GeneratorOptions g = options.generator;
    g.transactions = options.transactions;
    g.seed = options.seed;
    SABOT_ASSIGN_OR_RETURN(TransactionGenerator gen, TransactionGenerator::make(g));
    generator.emplace(std::move(gen));
    next_batch = [&](int64_t max) {
      return generator->done() ? to_record_batch(std::span<const Transaction>())
                               : generator->next_batch(max);
    };
    summary.input = "generator (seed " + std::to_string(options.seed) + ")";
  }

  // 2. The detector job.
  EnvironmentOptions env_options = options.environment;
  env_options.parallelism = options.parallelism;
  env_options.worker_threads = options.worker_threads;
  env_options.batch_size = options.batch_size;
  Environment env(std::move(env_options));
  auto stats = std::make_shared<DetectorStats>();
  DataStream alerts = add_fraud_detector(
      env,
      {.input_url = kTransactionsUrl, .broker = broker, .measure_latency = options.measure_latency},
      stats);
  if (!checkpointed) {
    connectors::TopicSinkOptions sink;
    sink.key_column = "account_number";
    sink.partitions = kTopicPartitions;
    sink.close_on_finish = true;
    sink.broker = broker;
    alerts.to_topic(kAlertsUrl, alert_json_codec(), sink).name("fraud-alerts");
  } else if (!options.alerts_out.empty()) {
    add_alert_file_sink(alerts, options.alerts_out);
  } else if (!console) {
    // Nothing to write the alerts to: they are only counted (DetectorStats), but every stream
    // needs a sink.
    alerts.blackhole().name("alerts-counted");
  }
  // Progress: always on a terminal (one status line), else as lines unless quiet or json.
  StatusLine status_line(console || options.progress_terminal ? options.progress : nullptr,
                         options.progress_terminal, options.out_terminal);
  if (console || write_alerts) {
    std::ostream* out = console ? options.out : nullptr;
    alerts
        .for_each_batch([out, write_alerts,
                         status = &status_line](const columnar::RecordBatch& batch) -> Status {
          SABOT_ASSIGN_OR_RETURN(std::vector<AlertEvent> rows, read_rows<AlertEvent>(batch));
          std::string text;
          if (out != nullptr) {
            for (const AlertEvent& a : rows) {
              text += alert_console_line(a.severity, a.fraud_type, a.account_number, a.details);
              text += '\n';
            }
            const bool written = status->above([&] { return static_cast<bool>(*out << text); });
            if (!written) {
              return Status::io_error("writing the alert lines to standard output failed");
            }
          }
          if (write_alerts) {
            text.clear();
            for (const AlertEvent& a : rows) {
              append_alert_json(a, &text);
              text += '\n';
            }
            SABOT_RETURN_IF_ERROR(write_alerts(text));
          }
          return Status::ok();
        })
        .name("alert-lines");
  }

  // With a private broker nobody else can read the alerts topic: it is bounded like the input and
  // read by a consumer here (as a downstream service would), so memory stays flat at any size.
  // A caller's broker keeps every alert for the caller to read.
  connectors::TopicPtr alerts_topic;
  std::unique_ptr<connectors::MemoryTopicReader> alerts_reader;
  if (own_broker && !checkpointed) {
    SABOT_ASSIGN_OR_RETURN(connectors::MemoryUrl alerts_url,
                           connectors::parse_memory_url(kAlertsUrl));
    SABOT_ASSIGN_OR_RETURN(
        alerts_topic,
        broker->create_topic(alerts_url.topic, {.partitions = kTopicPartitions,
                                                .max_unread_records = options.topic_budget}));
    SABOT_ASSIGN_OR_RETURN(alerts_reader, connectors::MemoryTopicReader::open_all(alerts_topic));
  }

  // 3. The producer feeds the topic while the job runs (in a checkpointed run: before it
  // starts); its CPU time is measured on its own thread and left out of the job's figures.
  std::atomic<int64_t> produced{0};
  Status produce_status;
  double produce_cpu = 0;
  auto produce = [&] {
    const auto t0 = std::chrono::steady_clock::now();
    produce_status = produce_live(next_batch, options.rate, topic, &produced);
    produce_cpu = thread_cpu_seconds();
    summary.generate_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  summary.produced_first = checkpointed;
  if (checkpointed) {
    std::thread(produce).join();
    SABOT_RETURN_IF_ERROR(produce_status);
  }
  if (options.input_ready) SABOT_RETURN_IF_ERROR(options.input_ready());
  const double cpu_start = cpu_seconds();
  const auto wall_start = std::chrono::steady_clock::now();
  JobResult result = [&] {
    ProgressPrinter progress(&status_line, stats.get(), &produced);
    std::thread producer;
    if (!checkpointed) producer = std::thread(produce);
    std::thread consumer;
    if (alerts_reader) {
      consumer = std::thread([&] {
        connectors::PollResult polled;
        while (alerts_reader->poll_into(1 << 16, std::chrono::milliseconds(100), polled).is_ok() &&
               !polled.end_of_input) {
        }
      });
    }
    JobResult r = env.execute("fraud-detection");
    topic->close();  // a job that ended early must not leave the producer waiting for room
    if (producer.joinable()) producer.join();
    if (consumer.joinable()) {
      alerts_topic->close();  // the sink closes it when the job succeeds; this covers a failure
      consumer.join();
    }
    return r;
  }();
  status_line.finish();
  summary.wall_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  summary.generate_cpu_s = produce_cpu;
  summary.cpu_s = std::max(0.0, cpu_seconds() - cpu_start - (checkpointed ? 0.0 : produce_cpu));
  if (!result.ok()) return result.status();
  SABOT_RETURN_IF_ERROR(produce_status);
  summary.job_metrics = result.metrics().to_string();
  if (write_alerts && !options.alerts_writer) {
    SABOT_RETURN_IF_ERROR(write_alerts({}));  // flushes the file
  }

  fill_from_stats(*stats, &summary);

  *options.out << (options.json ? summary.to_json() + "\n" : summary.to_text());
  options.out->flush();
  if (!*options.out) return Status::io_error("writing the summary to standard output failed");
  return summary;
}

Result<DemoSummary> run_fraud_demo_kafka(const DemoOptions& options) {
  const std::vector<std::string> refused = {
      options.rate > 0 ? "rate" : "", options.alerts_writer ? "alerts_writer" : "",
      options.environment.checkpoint_storage ? "checkpointing" : "",
      !options.alerts_out.empty() ? "alerts_out" : ""};
  for (const std::string& r : refused) {
    if (!r.empty()) {
      return Status::invalid_argument("the fraud demo on Kafka does not take " + r +
                                      " (alerts go to the fraud-alerts topic)");
    }
  }
  SABOT_ASSIGN_OR_RETURN(connectors::KafkaUrl url,
                         connectors::parse_kafka_url(options.kafka_broker));
  if (!url.topic.empty()) {
    return Status::invalid_argument(
        "--broker names the cluster only (kafka://HOST:PORT), not a topic");
  }
  const std::string base = "kafka://" + url.bootstrap + "/";
  const std::string input_url = base + "bank-transactions";
  const std::string alerts_url = base + "fraud-alerts";
  auto scheme = connectors::kafka_topic_scheme();
  SABOT_ASSIGN_OR_RETURN(auto topics, scheme->list_topics(base, {}));
  for (const char* name : {"bank-transactions", "fraud-alerts"}) {
    bool exists = false;
    for (const auto& t : topics) exists = exists || t.name == name;
    if (!exists) SABOT_RETURN_IF_ERROR(scheme->create_topic(base, name, kTopicPartitions, {}));
  }

  DemoSummary summary;
  summary.parallelism = options.parallelism;
  summary.producer_in_cpu = true;
  // The input, in batches.
  std::vector<columnar::RecordBatch> batches;
  if (!options.input_path.empty()) {
    SABOT_ASSIGN_OR_RETURN(TransactionsFile file,
                           read_transactions_file(options.input_path, options.bad_lines));
    summary.bad_records = file.bad_lines;
    for (size_t i = 0; i < file.rows.size(); i += 8192) {
      const size_t n = std::min<size_t>(8192, file.rows.size() - i);
      batches.push_back(to_record_batch(std::span<const Transaction>(file.rows).subspan(i, n)));
    }
    summary.input = options.input_path;
  } else {
    GeneratorOptions g = options.generator;
    g.transactions = options.transactions;
    g.seed = options.seed;
    SABOT_ASSIGN_OR_RETURN(TransactionGenerator gen, TransactionGenerator::make(g));
    while (!gen.done()) batches.push_back(gen.next_batch(8192));
    summary.input = "generator (seed " + std::to_string(options.seed) + ")";
  }
  int64_t produced = 0;
  for (const auto& b : batches) produced += b.num_rows();
  if (options.input_ready) SABOT_RETURN_IF_ERROR(options.input_ready());

  // 1. The detector, reading from the topic's end (what this run produces), alerts into
  // fraud-alerts.
  EnvironmentOptions env_options = options.environment;
  env_options.parallelism = options.parallelism;
  env_options.worker_threads = options.worker_threads;
  env_options.batch_size = options.batch_size;
  Environment env(std::move(env_options));
  auto stats = std::make_shared<DetectorStats>();
  add_fraud_detector(env,
                     {.input_url = input_url,
                      .measure_latency = options.measure_latency,
                      .start = connectors::StartPosition::latest()},
                     stats)
      .to_topic(alerts_url, alert_json_codec(), {.key_column = "account_number"})
      .name("fraud-alerts");
  const double cpu_start = cpu_seconds();
  const auto wall_start = std::chrono::steady_clock::now();
  SABOT_ASSIGN_OR_RETURN(auto job, env.start("fraud-detection"));

  // 2. The producer: a Sabot job writing the batches keyed by account, at most kAhead records
  // ahead of the detector.
  constexpr int64_t kAhead = 24'000;
  std::vector<int64_t> starts;
  int64_t at = 0;
  for (const auto& b : batches) {
    starts.push_back(at);
    at += b.num_rows();
  }
  auto gen = [&](int, int64_t next, int64_t) -> Result<std::optional<columnar::RecordBatch>> {
    const auto it = std::upper_bound(starts.begin(), starts.end(), next);
    if (next >= produced || it == starts.begin()) return std::optional<columnar::RecordBatch>();
    const size_t i = static_cast<size_t>(it - starts.begin()) - 1;
    while (next - stats->transactions() > kAhead) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    const int64_t off = next - starts[i];
    return std::optional<columnar::RecordBatch>(batches[i].slice(off, batches[i].num_rows() - off));
  };
  Status produce_status;
  {
    Environment penv({.parallelism = 1, .batch_size = options.batch_size});
    penv.from_generator("transactions", transaction_schema(), 1, gen)
        .to_topic(input_url, codec::json(), {.key_column = "account_number"})
        .name("bank-transactions");
    const auto t0 = std::chrono::steady_clock::now();
    JobResult r = penv.execute("fraud-produce");
    summary.generate_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!r.ok()) produce_status = r.status().with_context("producing into " + input_url);
  }
  // 3. Wait until the detector has read everything, then stop it (a Kafka topic has no end).
  int64_t last = -1;
  auto last_progress = std::chrono::steady_clock::now();
  while (produce_status.is_ok() && stats->transactions() < produced) {
    if (stats->transactions() != last) {
      last = stats->transactions();
      last_progress = std::chrono::steady_clock::now();
    } else if (std::chrono::steady_clock::now() - last_progress > std::chrono::seconds(30)) {
      produce_status = Status::io_error("the detector read " + std::to_string(last) + " of " +
                                        std::to_string(produced) +
                                        " transactions and made no progress for 30 s");
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  summary.wall_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  job->cancel();
  Status job_status = job->wait();
  summary.cpu_s = std::max(0.0, cpu_seconds() - cpu_start);
  if (!job_status.is_ok() && job_status.code() != StatusCode::kCancelled) return job_status;
  SABOT_RETURN_IF_ERROR(produce_status);
  summary.job_metrics = job->metrics().to_string();
  fill_from_stats(*stats, &summary);
  if (summary.transactions > produced) {
    // Another producer wrote into the topic meanwhile: the job read that too.
    *options.progress << "note: the job read " << summary.transactions - produced
                      << " more transactions than this run produced\n";
  }
  *options.out << (options.json ? summary.to_json() + "\n" : summary.to_text());
  if (!options.json) {
    *options.out << "kafka: produced " << produced << " transactions into " << input_url << " in "
                 << summary.generate_s << " s ("
                 << (summary.generate_s > 0 ? static_cast<double>(produced) / summary.generate_s
                                            : 0)
                 << " msg/s); consumed " << summary.transactions << " in " << summary.wall_s
                 << " s (" << summary.tx_per_s << " msg/s); alerts in " << alerts_url << "\n";
  }
  options.out->flush();
  if (!*options.out) return Status::io_error("writing the summary to standard output failed");
  return summary;
}

}  // namespace sabot::fraud
