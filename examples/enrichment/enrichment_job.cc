// The trade-enrichment job and the `sabot demo enrichment` driver; see enrichment_job.h.
#include "enrichment_job.h"

#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "demo_report.h"
#include "sabot/codec/json.h"

namespace sabot::enrichment {

using demo::cpu_seconds;
using demo::fmt;
using demo::grouped;
using demo::json_string;
using demo::rate;
using demo::steady_ns;

namespace {

const columnar::SchemaPtr& stamped_trade_schema() {
  static const columnar::SchemaPtr kSchema = [] {
    std::vector<columnar::Field> fields = trade_schema()->fields();
    fields.push_back(columnar::field(kReadStampColumn, columnar::int64(), false));
    return columnar::schema(std::move(fields));
  }();
  return kSchema;
}

}  // namespace

const columnar::SchemaPtr& enriched_schema() {
  using namespace columnar;
  static const SchemaPtr kSchema = schema({
      field("trade_id", int64(), false),
      field("symbol", utf8(), false),
      field("time", int64(), false),
      field("price", float64(), false),
      field("quantity", int64(), false),
      field("side", utf8(), false),
      field("bid", float64()),
      field("ask", float64()),
      field("mid", float64()),
      field("spread_bps", float64()),
      field("sector", utf8()),
      field("notional", float64(), false),
      field("slippage_bps", float64()),
  });
  return kSchema;
}

const columnar::SchemaPtr& vwap_schema() {
  using namespace columnar;
  static const SchemaPtr kSchema = schema({
      field("window_start", int64(), false),
      field("window_end", int64(), false),
      field("sector", utf8(), false),
      field("trades", int64(), false),
      field("volume", int64(), false),
      field("vwap", float64()),
  });
  return kSchema;
}

// ---- JobStats --------------------------------------------------------------------------------

void JobStats::add_latencies(const std::vector<int64_t>& ns) {
  std::lock_guard<std::mutex> lock(mu_);
  latencies_.insert(latencies_.end(), ns.begin(), ns.end());
  sorted_ = false;
}

double JobStats::latency_quantile_ns(double q) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (latencies_.empty()) return 0;
  if (!sorted_) {
    std::sort(latencies_.begin(), latencies_.end());
    sorted_ = true;
  }
  const auto n = static_cast<int64_t>(latencies_.size());
  const int64_t rank = std::clamp<int64_t>(static_cast<int64_t>(std::ceil(q * n)), 1, n);
  return static_cast<double>(latencies_[static_cast<size_t>(rank - 1)]);
}

// ---- the job ---------------------------------------------------------------------------------

EnrichmentStreams add_enrichment_job(Environment& env, const JobOptions& options) {
  connectors::TopicSourceOptions source;
  source.broker = options.broker;
  // Trades and quotes are watermark-aligned: in a replay the trades (ten times fewer batches for
  // the same span of event time) would otherwise run ahead and wait in the as-of join for the
  // quotes' watermark. The securities are not: they hold nobody back.
  auto from = [&](const char* url, const columnar::SchemaPtr& schema, const char* time,
                  bool aligned) {
    WatermarkStrategy strategy = bounded_out_of_orderness(time, kMaxDisorder);
    if (aligned) strategy = strategy.with_alignment("enrichment", kMaxDisorder);
    return env.from_topic(url, codec::json(schema), source)
        .name(std::string(url).substr(9))
        .with_watermarks(strategy);
  };
  DataStream trades = from(kTradesUrl, trade_schema(), "time", true)
                          .map_batches(
                              [](const RecordBatch& b) -> Result<RecordBatch> {
                                std::vector<columnar::Array> columns = b.columns();
                                columns.push_back(columnar::Array::make_repeated(
                                    columnar::Scalar::of_int64(steady_ns()), b.num_rows()));
                                return RecordBatch::make_unchecked(
                                    stamped_trade_schema(), std::move(columns), b.num_rows());
                              },
                              stamped_trade_schema())
                          .name("stamp-read-time");
  DataStream quotes = from(kQuotesUrl, quote_schema(), "time", true);
  // Only the columns the job uses are decoded (the JSON decoder skips currency and lot_size).
  static const columnar::SchemaPtr kSecurityColumns = columnar::schema(
      {security_schema()->field(0), security_schema()->field(1), security_schema()->field(4)});
  DataStream securities = from(kSecuritiesUrl, kSecurityColumns, "update_time", false);

  // As-of with the quotes: trade columns, then the quote's (symbol and time renamed right_*).
  DataStream with_quote =
      trades.key_by("symbol")
          .asof_join(quotes.key_by("symbol"), JoinKind::kLeft)
          .name("asof-quotes")
          .select({col("trade_id"), col("symbol"), col("time"), col("price"), col("quantity"),
                   col("side"), col(kReadStampColumn), col("bid"), col("ask")})
          .name("trade-and-quote");
  // As-of with the securities rows, the reference data as a stream of updates.
  DataStream joined = with_quote.key_by("symbol")
                          .asof_join(securities.key_by("symbol"), JoinKind::kLeft)
                          .name("asof-securities");

  // Derived fields, written exactly as docs/enrichment.md states them (the reference in the test
  // computes them in the same order, so results compare bit for bit).
  const Expr price = col("price");
  const Expr mid = (col("bid") + col("ask")) / lit(2.0);
  const Expr quantity = cast(col("quantity"), columnar::float64());
  DataStream enriched =
      joined
          .select({col("trade_id"), col("symbol"), col("time"), price, col("quantity"), col("side"),
                   col("bid"), col("ask"), mid.as("mid"),
                   ((col("ask") - col("bid")) / mid * lit(1e4)).as("spread_bps"), col("sector"),
                   (price * quantity).as("notional"),
                   if_else(col("side") == lit("buy"), (price - mid) / mid * lit(1e4),
                           (mid - price) / mid * lit(1e4))
                       .as("slippage_bps"),
                   col(kReadStampColumn)})
          .name("enriched");

  DataStream vwap =
      enriched
          .with_column("sector_key", if_else(is_null(col("sector")), lit("unknown"), col("sector")))
          .name("sector-key")
          .key_by("sector_key")
          .window(tumbling(kWindowSize))
          .aggregate({count().as("trades"), sum("quantity").as("volume"),
                      sum("notional").as("notional_sum")})
          .name("vwap-window")
          .select({cast(col("window_start"), columnar::int64()).as("window_start"),
                   cast(col("window_end"), columnar::int64()).as("window_end"),
                   col("sector_key").as("sector"), col("trades"), col("volume"),
                   (col("notional_sum") / cast(col("volume"), columnar::float64())).as("vwap")})
          .name("vwap");
  return {enriched, vwap};
}

// ---- producing -------------------------------------------------------------------------------

Result<TopicProducer> TopicProducer::open(connectors::TopicPtr topic) {
  SABOT_ASSIGN_OR_RETURN(auto writer, connectors::MemoryTopicWriter::open(topic));
  return TopicProducer(std::move(topic), std::move(writer));
}

Status TopicProducer::send(const RecordBatch& batch, const std::string& time_column) {
  if (batch.num_rows() == 0) return Status::ok();
  SABOT_ASSIGN_OR_RETURN(columnar::Array values, encoder_.encode(batch));
  SABOT_ASSIGN_OR_RETURN(columnar::Array keys, batch.column("symbol"));
  SABOT_ASSIGN_OR_RETURN(columnar::Array times, batch.column(time_column));
  rows_ += batch.num_rows();
  return writer_->send_batch(keys, values, times);
}

Status TopicProducer::close() {
  SABOT_RETURN_IF_ERROR(writer_->close());
  topic_->close();
  return Status::ok();
}

namespace {

// Reads a JSON-lines file of one of the generator's schemas; a bad line names file:line.
Result<RecordBatch> read_jsonl(const std::string& path, const columnar::SchemaPtr& schema) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::io_error("cannot open '" + path + "': " + std::strerror(errno));
  std::stringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return Status::io_error("cannot read '" + path + "'");
  const std::string text = std::move(buffer).str();
  SABOT_ASSIGN_OR_RETURN(codec::JsonDecoder decoder, codec::JsonDecoder::make(schema));
  SABOT_ASSIGN_OR_RETURN(codec::DecodeResult decoded, decoder.decode_lines(text));
  if (!decoded.errors.empty()) {
    const codec::RecordError& e = decoded.errors.front();
    std::string msg = path + ":" + std::to_string(e.index + 1) + ": " + e.message;
    if (decoded.errors.size() > 1) {
      msg += " (and " + std::to_string(decoded.errors.size() - 1) + " more bad lines)";
    }
    return Status::invalid_argument(std::move(msg));
  }
  return std::move(decoded.batch);
}

struct Topics {
  connectors::TopicPtr trades, quotes, securities;
};

// Fills the three topics, each in file order; returns the rows of each.
Status produce(const DemoOptions& o, const Topics& topics, DemoSummary* summary) {
  SABOT_ASSIGN_OR_RETURN(TopicProducer trades, TopicProducer::open(topics.trades));
  SABOT_ASSIGN_OR_RETURN(TopicProducer quotes, TopicProducer::open(topics.quotes));
  SABOT_ASSIGN_OR_RETURN(TopicProducer securities, TopicProducer::open(topics.securities));
  if (!o.input_dir.empty()) {
    struct File {
      const char* name;
      const columnar::SchemaPtr* schema;
      TopicProducer* producer;
      const char* time;
    };
    for (const File& f : {File{"securities.jsonl", &security_schema(), &securities, "update_time"},
                          File{"quotes.jsonl", &quote_schema(), &quotes, "time"},
                          File{"trades.jsonl", &trade_schema(), &trades, "time"}}) {
      SABOT_ASSIGN_OR_RETURN(RecordBatch rows, read_jsonl(o.input_dir + "/" + f.name, *f.schema));
      for (int64_t i = 0; i < rows.num_rows(); i += 8192) {
        SABOT_RETURN_IF_ERROR(
            f.producer->send(rows.slice(i, std::min<int64_t>(8192, rows.num_rows() - i)), f.time));
      }
    }
    summary->input = o.input_dir;
  } else {
    SABOT_ASSIGN_OR_RETURN(Generator gen, Generator::make(o.generator));
    for (int64_t s = 0; s < o.generator.securities; s += 8192) {
      SABOT_RETURN_IF_ERROR(securities.send(gen.listings(s, s + 8192), "update_time"));
    }
    SABOT_RETURN_IF_ERROR(
        securities.send(gen.security_updates(INT64_MIN, INT64_MAX), "update_time"));
    // Quotes: 20 per even millisecond, so 400 ms hold about 4 k of them.
    for (int64_t t = o.generator.start_ms; t < gen.arrival_end_ms(); t += 400) {
      SABOT_RETURN_IF_ERROR(quotes.send(gen.quotes(t, t + 400), "time"));
    }
    for (int64_t t = o.generator.start_ms; t < gen.arrival_end_ms(); t += 4'000) {
      SABOT_RETURN_IF_ERROR(trades.send(gen.trades(t, t + 4'000), "time"));
    }
    summary->input = "generator (seed " + std::to_string(o.generator.seed) + ", " +
                     std::to_string(o.generator.securities) + " securities)";
  }
  summary->trades_in = trades.rows();
  summary->quotes_in = quotes.rows();
  summary->securities_in = securities.rows();
  SABOT_RETURN_IF_ERROR(trades.close());
  SABOT_RETURN_IF_ERROR(quotes.close());
  return securities.close();
}

Status check_options(const DemoOptions& o) {
  std::vector<std::string> problems;
  if (o.parallelism < 1 || o.parallelism > 128) {
    problems.push_back("parallelism must be in [1, 128], got " + std::to_string(o.parallelism));
  }
  if (o.batch_size < 1) {
    problems.push_back("batch_size must be >= 1, got " + std::to_string(o.batch_size));
  }
  if (o.worker_threads < 0) {
    problems.push_back("worker_threads must be >= 0, got " + std::to_string(o.worker_threads));
  }
  if (o.out == nullptr) problems.push_back("out must not be null");
  if (o.input_dir.empty()) {
    if (auto g = Generator::make(o.generator); !g.is_ok()) problems.push_back(g.status().message());
  }
  if (problems.empty()) return Status::ok();
  std::string msg = "enrichment demo options:";
  for (const std::string& p : problems) msg += " " + p + ";";
  msg.pop_back();
  return Status::invalid_argument(std::move(msg));
}

// A JSON-lines output file written by one sink (the sink's calls are serialized).
struct LinesFile {
  std::ofstream out;
  std::string path;
  codec::JsonEncoder encoder;
  std::string text;
  Status write(const RecordBatch& batch) {
    text.clear();
    encoder.encode_lines(batch, text);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    if (!out) return Status::io_error("writing '" + path + "' failed");
    return Status::ok();
  }
};

Result<std::shared_ptr<LinesFile>> open_lines(const std::string& dir, const char* name) {
  if (dir.empty()) return std::shared_ptr<LinesFile>();
  auto f = std::make_shared<LinesFile>();
  f->path = dir + "/" + name;
  f->out.open(f->path, std::ios::binary | std::ios::trunc);
  if (!f->out) return Status::io_error("cannot write '" + f->path + "': " + std::strerror(errno));
  return f;
}

}  // namespace

std::string DemoSummary::to_text() const {
  std::string s = "Trade enrichment summary\n";
  s += "  input           " + input + ", produced in " + fmt("%.2f", produce_s) +
       " s (not counted below)\n";
  s += "  events          " + grouped(trades_in + quotes_in + securities_in) + " (" +
       grouped(trades_in) + " trades, " + grouped(quotes_in) + " quotes, " +
       grouped(securities_in) + " securities rows; parallelism " + std::to_string(parallelism) +
       ")\n";
  s += "  enriched trades " + grouped(enriched) + ", " + grouped(with_quote) + " with a quote, " +
       grouped(with_sector) + " with a sector\n";
  if (enriched != trades_in) {
    s += "  late, dropped   " + grouped(trades_in - enriched) + " trades\n";
  }
  s += "  VWAP rows       " + grouped(windows) + " (sector x 1-minute window)\n";
  s += "  throughput      " + rate(events_per_s) + " events/s (" + fmt("%.3f", wall_s) +
       " s wall), " + rate(events_per_cpu_s) + " events per CPU-second (" + fmt("%.3f", cpu_s) +
       " s CPU)\n";
  s += "  latency         p50 " + fmt("%.3f", latency_p50_ms) + " ms, p95 " +
       fmt("%.3f", latency_p95_ms) + " ms, p99 " + fmt("%.3f", latency_p99_ms) +
       " ms (trade read from its topic to enriched trade at the sink)\n";
  return s;
}

std::string DemoSummary::to_json() const {
  std::string s = "{";
  auto num = [&s](const char* k, int64_t v) {
    s += json_string(k) + ":" + std::to_string(v) + ",";
  };
  auto real = [&s](const char* k, double v) { s += json_string(k) + ":" + fmt("%.6f", v) + ","; };
  num("trades", trades_in);
  num("quotes", quotes_in);
  num("securities", securities_in);
  num("events", trades_in + quotes_in + securities_in);
  num("enriched", enriched);
  num("with_quote", with_quote);
  num("with_sector", with_sector);
  num("windows", windows);
  real("wall_s", wall_s);
  real("cpu_s", cpu_s);
  real("events_per_s", events_per_s);
  real("events_per_cpu_s", events_per_cpu_s);
  s += "\"latency_ms\":{\"p50\":" + fmt("%.6f", latency_p50_ms) +
       ",\"p95\":" + fmt("%.6f", latency_p95_ms) + ",\"p99\":" + fmt("%.6f", latency_p99_ms) + "},";
  real("produce_s", produce_s);
  num("parallelism", parallelism);
  s += "\"input\":" + json_string(input) + "}";
  return s;
}

Result<DemoSummary> run_enrichment_demo(const DemoOptions& options) {
  SABOT_RETURN_IF_ERROR(check_options(options));
  const bool console = !options.quiet && !options.json;

  std::unique_ptr<connectors::MemoryBroker> own_broker;
  connectors::MemoryBroker* broker = options.broker;
  if (broker == nullptr) {
    own_broker = std::make_unique<connectors::MemoryBroker>();
    broker = own_broker.get();
  }
  Topics topics;
  for (auto [url, topic] :
       {std::pair{kTradesUrl, &topics.trades}, std::pair{kQuotesUrl, &topics.quotes},
        std::pair{kSecuritiesUrl, &topics.securities}}) {
    SABOT_ASSIGN_OR_RETURN(connectors::MemoryUrl parsed, connectors::parse_memory_url(url));
    if (broker->topic(parsed.topic).is_ok()) {
      SABOT_RETURN_IF_ERROR(broker->delete_topic(parsed.topic));
    }
    SABOT_ASSIGN_OR_RETURN(*topic,
                           broker->create_topic(parsed.topic, {.partitions = kTopicPartitions}));
  }
  if (!options.output_dir.empty() && ::mkdir(options.output_dir.c_str(), 0755) != 0 &&
      errno != EEXIST) {
    return Status::io_error("cannot create directory '" + options.output_dir +
                            "': " + std::strerror(errno));
  }
  SABOT_ASSIGN_OR_RETURN(auto enriched_file, open_lines(options.output_dir, "enriched.jsonl"));
  SABOT_ASSIGN_OR_RETURN(auto vwap_file, open_lines(options.output_dir, "vwap.jsonl"));

  DemoSummary summary;
  summary.parallelism = options.parallelism;
  const auto produce_start = std::chrono::steady_clock::now();
  SABOT_RETURN_IF_ERROR(produce(options, topics, &summary));
  summary.produce_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - produce_start).count();

  Environment env({.parallelism = options.parallelism,
                   .worker_threads = options.worker_threads,
                   .batch_size = options.batch_size});
  auto stats = std::make_shared<JobStats>();
  EnrichmentStreams streams = add_enrichment_job(env, {.broker = broker});
  const std::vector<std::string> enriched_columns = [] {
    std::vector<std::string> names;
    for (const columnar::Field& f : enriched_schema()->fields()) names.push_back(f.name);
    return names;
  }();
  streams.enriched
      .for_each_batch([stats, enriched_file, enriched_columns](const RecordBatch& b) -> Status {
        const int64_t now = steady_ns();
        const int64_t n = b.num_rows();
        SABOT_ASSIGN_OR_RETURN(columnar::Array stamp, b.column(kReadStampColumn));
        std::vector<int64_t> samples;
        for (int64_t i = 0; i < n; i += JobStats::kLatencySampleEvery) {
          samples.push_back(now - stamp.value<int64_t>(i));
        }
        stats->add_latencies(samples);
        SABOT_ASSIGN_OR_RETURN(columnar::Array bid, b.column("bid"));
        SABOT_ASSIGN_OR_RETURN(columnar::Array sector, b.column("sector"));
        stats->enriched.fetch_add(n, std::memory_order_relaxed);
        stats->with_quote.fetch_add(n - bid.null_count(), std::memory_order_relaxed);
        stats->with_sector.fetch_add(n - sector.null_count(), std::memory_order_relaxed);
        if (!enriched_file) return Status::ok();
        SABOT_ASSIGN_OR_RETURN(RecordBatch out, b.select(enriched_columns));
        return enriched_file->write(out);
      })
      .name("enriched-sink");
  std::ostream* console_out = console ? options.out : nullptr;
  streams.vwap
      .for_each_batch([stats, vwap_file, console_out](const RecordBatch& b) -> Status {
        stats->windows.fetch_add(b.num_rows(), std::memory_order_relaxed);
        if (console_out != nullptr) {
          std::string text;
          for (int64_t i = 0; i < b.num_rows(); ++i) {
            char line[160];
            const int len =
                std::snprintf(line, sizeof line,
                              "VWAP [%lld, %lld) %-24.*s trades %6lld volume %10lld vwap %.4f\n",
                              static_cast<long long>(b.column(0).value<int64_t>(i)),
                              static_cast<long long>(b.column(1).value<int64_t>(i)),
                              static_cast<int>(b.column(2).string_view(i).size()),
                              b.column(2).string_view(i).data(),
                              static_cast<long long>(b.column(3).value<int64_t>(i)),
                              static_cast<long long>(b.column(4).value<int64_t>(i)),
                              b.column(5).is_valid(i) ? b.column(5).value<double>(i) : 0.0);
            text.append(line, static_cast<size_t>(std::clamp(len, 0, 159)));
          }
          *console_out << text;
        }
        return vwap_file ? vwap_file->write(b) : Status::ok();
      })
      .name("vwap-sink");

  const double cpu_start = cpu_seconds();
  const auto wall_start = std::chrono::steady_clock::now();
  JobResult result = env.execute("trade-enrichment");
  summary.wall_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  summary.cpu_s = cpu_seconds() - cpu_start;
  if (!result.ok()) return result.status();
  summary.job_metrics = result.metrics().to_string();
  for (const auto& f : {enriched_file, vwap_file}) {
    if (!f) continue;
    f->out.flush();
    if (!f->out) return Status::io_error("writing '" + f->path + "' failed");
  }

  summary.enriched = stats->enriched.load();
  summary.with_quote = stats->with_quote.load();
  summary.with_sector = stats->with_sector.load();
  summary.windows = stats->windows.load();
  const double events =
      static_cast<double>(summary.trades_in + summary.quotes_in + summary.securities_in);
  summary.events_per_s = summary.wall_s > 0 ? events / summary.wall_s : 0;
  summary.events_per_cpu_s = summary.cpu_s > 0 ? events / summary.cpu_s : 0;
  summary.latency_p50_ms = stats->latency_quantile_ns(0.50) / 1e6;
  summary.latency_p95_ms = stats->latency_quantile_ns(0.95) / 1e6;
  summary.latency_p99_ms = stats->latency_quantile_ns(0.99) / 1e6;
  *options.out << (options.json ? summary.to_json() + "\n" : summary.to_text());
  options.out->flush();
  return summary;
}

}  // namespace sabot::enrichment
