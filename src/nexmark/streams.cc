// The Nexmark event streams that every query starts from.
#include "sabot/nexmark/queries.h"

namespace sabot::nexmark {
namespace {

DataStream event_stream(Environment& env, const QueryConfig& config,
                        std::shared_ptr<const runtime::Source> source, std::string name) {
  return env.from_source(std::move(source), std::move(name))
      .set_parallelism(config.parallelism)
      .with_watermarks(bounded_out_of_orderness("date_time", kWatermarkDelay));
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
