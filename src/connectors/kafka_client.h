// Internal to connectors: what the Kafka sink's tests observe of its transactional producer. The
// sink reports each transactional call it makes against the cluster, in order, so that a test
// can check the protocol (the mock cluster writes no transaction markers to check it by).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace sabot::connectors {

// Called with the transactional id and the call: "init", "begin", "flush", "commit", "abort".
// Thread-safe; null (default) reports nothing.
using KafkaTxnObserver =
    std::function<void(const std::string& transactional_id, std::string_view call)>;
void set_kafka_txn_observer(KafkaTxnObserver observer);

// Consumer-group mode: what a group member's tests observe of the group. `member` is the
// consumer's `client.id`; `what` is "assigned" (the partition starts at `offset`) or "committed"
// (the coordinator accepted `offset` for the partition: a commit on revoke or librdkafka's
// auto-commit). Reported on the member's polling thread (or the thread closing it), in the order
// the member learns them. Null (default) reports nothing.
struct KafkaGroupEvent {
  std::string group;
  std::string member;
  std::string_view what;
  int32_t partition = 0;
  int64_t offset = 0;
};
using KafkaGroupObserver = std::function<void(const KafkaGroupEvent& event)>;
void set_kafka_group_observer(KafkaGroupObserver observer);

}  // namespace sabot::connectors
