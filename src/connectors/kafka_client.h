// Internal to connectors: what the Kafka sink's tests observe of its transactional producer. The
// sink reports each transactional call it makes against the cluster, in order, so that a test
// can check the protocol (the mock cluster writes no transaction markers to check it by).
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace sabot::connectors {

// Called with the transactional id and the call: "init", "begin", "flush", "commit", "abort".
// Thread-safe; null (default) reports nothing.
using KafkaTxnObserver =
    std::function<void(const std::string& transactional_id, std::string_view call)>;
void set_kafka_txn_observer(KafkaTxnObserver observer);

}  // namespace sabot::connectors
