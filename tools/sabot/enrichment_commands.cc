// `sabot enrichment generate` and `sabot demo enrichment`.
#include <unistd.h>

#include <iostream>

#include "commands.h"
#include "enrichment/enrichment_job.h"
#include "observe_flags.h"
#include "sabot/enrichment/generator.h"

namespace sabot::cli {

int enrichment_generate(std::span<const std::string> args) {
  enrichment::GeneratorOptions options;
  std::string output_dir;
  FlagSet flags(
      "sabot enrichment generate",
      "Writes the market data of the trade-enrichment job (docs/enrichment.md) into\n"
      "DIR: securities.jsonl (symbol, sector, currency, lot_size, update_time; a few\n"
      "symbols listed late or changing sector during the stream), quotes.jsonl\n"
      "(symbol, time, bid, ask; 10 per trade, a few hot symbols) and trades.jsonl\n"
      "(trade_id, symbol, time, price, quantity, side). Times are epoch ms; each file is\n"
      "in time order except a bounded disorder (records up to 2 s late). Same seed and\n"
      "flags, same bytes.");
  flags.add_int("trades", &options.trades, "trades to generate (quotes: 10 per trade)", 0,
                int64_t{1} << 40);
  flags.add_int("securities", &options.securities, "distinct symbols", enrichment::kMinSecurities,
                int64_t{1} << 32);
  flags.add_uint("seed", &options.seed, "random seed");
  flags.add_string("output-dir", &output_dir, "the directory to write the three files into");
  if (auto code = parse_flags(flags, args)) return *code;
  if (output_dir.empty()) {
    std::cerr << flags.command() << ": --output-dir is required (see '" << flags.command()
              << " --help')\n";
    return kExitUsage;
  }
  if (Status s = enrichment::write_files(options, output_dir); !s.is_ok()) {
    return fail(s.message());
  }
  return kExitOk;
}

int demo_enrichment(std::span<const std::string> args) {
  enrichment::DemoOptions options;
  int64_t parallelism = options.parallelism;
  int64_t threads = options.worker_threads;
  bool metrics = false;
  FlagSet flags(
      "sabot demo enrichment",
      "Runs Sabot's trade-enrichment job (docs/enrichment.md) on the embedded broker: trades,\n"
      "quotes and securities (generated, or the three files of --input-dir as 'sabot\n"
      "enrichment generate' writes them) go into memory://trades, memory://quotes and\n"
      "memory://securities (3 partitions keyed by symbol); each trade is joined as-of with its\n"
      "symbol's latest quote and securities row at its time (mid, spread_bps, notional,\n"
      "slippage_bps, sector), and VWAP is computed per sector and 1-minute event-time window.\n"
      "With --output-dir, writes enriched.jsonl and vwap.jsonl there (one file each). Prints\n"
      "the VWAP rows and a summary: trades enriched with a quote and with a sector, windows,\n"
      "events per second and per CPU-second, latency percentiles.");
  flags.add_int("trades", &options.generator.trades, "trades to generate (quotes: 10 per trade)", 0,
                int64_t{1} << 40);
  flags.add_int("securities", &options.generator.securities, "distinct symbols of the generator",
                enrichment::kMinSecurities, int64_t{1} << 32);
  flags.add_uint("seed", &options.generator.seed, "random seed of the generator");
  flags.add_string("input-dir", &options.input_dir,
                   "read securities.jsonl, quotes.jsonl and trades.jsonl from DIR instead of the "
                   "generator");
  flags.add_string("output-dir", &options.output_dir,
                   "write enriched.jsonl and vwap.jsonl into DIR (created if missing)");
  flags.add_int("parallelism", &parallelism, "parallel subtasks of every operator", 1,
                EnvironmentOptions{}.max_parallelism);
  flags.add_bool("quiet", &options.quiet, "print only the summary");
  flags.add_bool("json", &options.json, "print only the summary, as one JSON object");
  flags.add_int("batch-size", &options.batch_size, "rows per source batch", 1, 1 << 20);
  flags.add_int("threads", &threads, "worker threads of the job (0: one per core)", 0, 1024);
  flags.add_bool("metrics", &metrics, "print the job's per-operator metrics to stderr");
  ObserveFlags observe;
  observe.add_to(flags);
  if (auto code = parse_flags(flags, args)) return *code;
  if (auto code = observe.check(flags)) return *code;
  options.parallelism = static_cast<int>(parallelism);
  options.worker_threads = static_cast<int>(threads);

  // A progress line only on a terminal, and not with --quiet or --json.
  auto observing = observe.start(
      !options.quiet && !options.json && isatty(STDOUT_FILENO) == 1 && isatty(STDERR_FILENO) == 1,
      0);
  if (!observing.is_ok()) return fail(observing.status().message());
  auto summary = enrichment::run_enrichment_demo(options);
  observing->reset();
  if (!summary.is_ok()) return fail(summary.status().message());
  if (metrics) std::cerr << summary->job_metrics;
  return kExitOk;
}

}  // namespace sabot::cli
