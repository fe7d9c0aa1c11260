// The registry of topic URL schemes: `from_topic`/`to_topic` and the `topics` commands find the
// broker of a URL by its scheme here, so that the API and the runtime never name a connector.
// `memory://` (the embedded broker) and `kafka://` (librdkafka) are built in; an application may
// register more before it builds jobs.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sabot/base/status.h"
#include "sabot/connectors/topic.h"

namespace sabot::connectors {

struct TopicDescription {
  std::string name;
  int32_t partitions = 0;
};

// One broker kind. Implementations are immutable and thread-safe (one instance serves every job).
class TopicScheme {
 public:
  virtual ~TopicScheme() = default;
  // The URL scheme without "://", e.g. "kafka".
  virtual std::string scheme() const = 0;
  // options.url has this scheme. Refuses bad options naming each problem.
  virtual Result<std::shared_ptr<const runtime::Source>> source(
      const TopicSourceOptions& options) const = 0;
  // Problems (bad URL, missing codec) are reported by the factory's output_schema.
  virtual std::shared_ptr<const runtime::OperatorFactory> sink(
      const TopicSinkOptions& options) const = 0;
  // `url` names the broker ("kafka://host:port" or "memory://"); a topic part is ignored.
  virtual Result<std::vector<TopicDescription>> list_topics(
      std::string_view url, const ClientProperties& props) const = 0;
  // Creates topic `name` with `partitions` partitions; AlreadyExists when it exists.
  virtual Status create_topic(std::string_view url, std::string_view name, int32_t partitions,
                              const ClientProperties& props) const = 0;
};

// Adds a scheme; AlreadyExists when one with its name is registered. Thread-safe.
Status register_topic_scheme(std::shared_ptr<const TopicScheme> scheme);
// The scheme of `url` ("kafka://..." -> the kafka scheme). InvalidArgument naming the URL and the
// known schemes when it has none or an unknown one. Thread-safe.
Result<std::shared_ptr<const TopicScheme>> topic_scheme_for(std::string_view url);

// The built-in schemes (defined in memory_broker's topic.cc and kafka.cc).
std::shared_ptr<const TopicScheme> memory_topic_scheme();
std::shared_ptr<const TopicScheme> kafka_topic_scheme();

}  // namespace sabot::connectors
