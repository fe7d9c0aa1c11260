// Kafka through librdkafka: the `kafka://host:port[,host:port]/topic` URL, the client properties
// (environment and per-job), and a development broker (librdkafka's mock cluster) for tests, the
// demo and `sabot dev broker`. Sources and sinks are reached through from_topic/to_topic and the
// scheme registry (topic_scheme.h); docs/kafka.md says what they guarantee.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sabot/base/status.h"
#include "sabot/connectors/topic.h"

namespace sabot::connectors {

struct KafkaUrl {
  std::string bootstrap;  // "host:port[,host:port]", librdkafka's bootstrap.servers
  std::string topic;      // empty when the URL names only the cluster ("kafka://host:port")
};
// InvalidArgument naming the URL when it is not kafka://host:port[,host:port][/topic] or the
// topic name breaks Kafka's rules.
Result<KafkaUrl> parse_kafka_url(std::string_view url);

// The client properties of a kafka:// source or sink: every SABOT_KAFKA_<NAME>=value of
// `environ` (null: the process environment) as <name>=value (lower case, '_' -> '.'), then
// `explicit_props` on top.
ClientProperties kafka_properties(const ClientProperties& explicit_props,
                                  char** environ_override = nullptr);

// A Kafka-protocol broker on loopback for development and tests: librdkafka's mock cluster (no
// persistence, no transaction markers, see docs/kafka.md). Owns the cluster; destroying it stops
// it. Thread-safe as librdkafka's mock API is.
class KafkaDevBroker {
 public:
  struct Options {
    int brokers = 1;     // >= 1
    int partitions = 3;  // of topics auto-created by producers (and the default of create_topic)
  };
  static Result<std::unique_ptr<KafkaDevBroker>> start(Options options);
  static Result<std::unique_ptr<KafkaDevBroker>> start() { return start(Options{}); }
  ~KafkaDevBroker();
  KafkaDevBroker(const KafkaDevBroker&) = delete;
  KafkaDevBroker& operator=(const KafkaDevBroker&) = delete;

  // "127.0.0.1:port[,...]".
  const std::string& bootstrap() const { return bootstrap_; }
  // "kafka://<bootstrap>/<topic>".
  std::string url(std::string_view topic) const;

  Status create_topic(std::string_view name, int partitions);
  // Fault injection (tests): broker ids are 1..brokers.
  Status set_broker_down(int32_t broker_id);
  Status set_broker_up(int32_t broker_id);
  Status set_partition_leader(std::string_view topic, int32_t partition, int32_t broker_id);
  // The next `count` requests of API `api_key` (e.g. 0 Produce, 1 Fetch) fail with `error`
  // (an rd_kafka_resp_err_t, e.g. a retriable NOT_LEADER_FOR_PARTITION = 6).
  void push_request_errors(int16_t api_key, int count, int error);

 private:
  KafkaDevBroker() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string bootstrap_;
};

}  // namespace sabot::connectors
