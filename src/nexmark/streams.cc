// The Nexmark event streams that every query starts from.
#include <algorithm>

#include "sabot/nexmark/queries.h"

namespace sabot::nexmark {
namespace {

// The event time of 16 polls of every subtask (a poll reads one 4096-event chunk; a subtask reads
// every parallelism-th chunk): room for two scheduling quanta of slack, whatever the rate.
std::chrono::milliseconds alignment_drift(const QueryConfig& config) {
  const int64_t events = int64_t{16} * 4096 * std::max(config.parallelism, 1);
  const GeneratorConfig& g = config.generator;
  return std::chrono::milliseconds(
      std::max<int64_t>(1, event_time_ms(g, events) - event_time_ms(g, 0)));
}

// The streams of one query share an alignment group: a source does not read more than
// alignment_drift ahead (in event time) of the slowest, so q4's auctions and q8's people and
// auctions do not wait in state for the bids' (the auctions') watermark; results do not change.
DataStream event_stream(Environment& env, const QueryConfig& config,
                        std::shared_ptr<const runtime::Source> source, std::string name) {
  return env.from_source(std::move(source), std::move(name))
      .set_parallelism(config.parallelism)
      .with_watermarks(bounded_out_of_orderness("date_time", kWatermarkDelay)
                           .with_alignment("nexmark", alignment_drift(config)));
}

}  // namespace

DataStream bids(Environment& env, const QueryConfig& config) {
  return event_stream(env, config, bids_source(config.generator, config.parallelism), "bids");
}

DataStream people(Environment& env, const QueryConfig& config) {
  return event_stream(env, config, people_source(config.generator, config.parallelism), "people");
}

DataStream auctions(Environment& env, const QueryConfig& config) {
  return event_stream(env, config, auctions_source(config.generator, config.parallelism),
                      "auctions");
}

}  // namespace sabot::nexmark
