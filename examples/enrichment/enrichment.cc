// Trade enrichment on the embedded broker, as a user writes it: generated trades, quotes and
// securities go into three topics; the job (add_enrichment_job in enrichment_job.cc) joins every
// trade as-of with its quote and its securities row and aggregates VWAP per sector and minute;
// this program prints the VWAP rows. `sabot demo enrichment` runs the same job with files, a
// summary and every option (see `sabot demo enrichment --help`).
//   build/release/examples/enrichment/trade_enrichment [trades] [parallelism]
#include <iostream>
#include <string>
#include <vector>

#include "enrichment_job.h"
#include "flags.h"

int main(int argc, char** argv) {
  using namespace sabot;
  enrichment::GeneratorOptions generator;
  generator.trades = 100'000;
  int64_t parallelism_arg = 2;
  // Parsed like the `sabot` command's arguments (tools/sabot/flags.h).
  cli::FlagSet flags(
      "trade_enrichment",
      "Produces generated securities, quotes and trades into three topics, runs the\n"
      "enrichment job on them and prints the VWAP rows (see 'sabot demo enrichment'\n"
      "for every option).");
  flags.add_positional("trades", &generator.trades, "trades to generate", 1);
  flags.add_positional("parallelism", &parallelism_arg, "parallel subtasks of the job", 1,
                       EnvironmentOptions{}.max_parallelism);
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (std::optional<int> exit = cli::parse_flags(flags, args)) return *exit;
  const int parallelism = static_cast<int>(parallelism_arg);

  // 1. Three topics keyed by symbol, JSON values, filled from the generator in file order.
  connectors::MemoryBroker broker;
  auto gen = enrichment::Generator::make(generator);
  Status status = gen.status();
  for (auto [name, stream] :
       {std::pair{"securities", 0}, std::pair{"quotes", 1}, std::pair{"trades", 2}}) {
    if (!status.is_ok()) break;
    auto topic = broker.create_topic(name, {.partitions = enrichment::kTopicPartitions});
    auto producer = topic.is_ok() ? enrichment::TopicProducer::open(*topic)
                                  : Result<enrichment::TopicProducer>(topic.status());
    if (!producer.is_ok()) {
      status = producer.status();
      break;
    }
    if (stream == 0) {
      status = producer->send(gen->listings(0, generator.securities), "update_time");
      if (status.is_ok()) {
        status = producer->send(gen->security_updates(INT64_MIN, INT64_MAX), "update_time");
      }
    }
    for (int64_t t = generator.start_ms; stream > 0 && status.is_ok() && t < gen->arrival_end_ms();
         t += 1'000) {
      status = producer->send(stream == 1 ? gen->quotes(t, t + 1'000) : gen->trades(t, t + 1'000),
                              "time");
    }
    if (status.is_ok()) status = producer->close();
  }
  if (!status.is_ok()) {
    std::cerr << "enrichment: " << status.to_string() << "\n";
    return 1;
  }

  // 2. The job; print each VWAP row (window, sector, trades, volume, vwap).
  Environment env({.parallelism = parallelism});
  enrichment::EnrichmentStreams job = enrichment::add_enrichment_job(env, {.broker = &broker});
  job.enriched.blackhole();
  job.vwap.print();
  JobResult result = env.execute("trade-enrichment");
  if (!result.ok()) {
    std::cerr << "enrichment: " << result.status().to_string() << "\n";
    return result.exit_code();
  }
  std::cerr << generator.trades << " trades enriched in " << result.wall_seconds() << " s\n";
  return 0;
}
