// Topic sources and sinks: read messages from a topic on a broker, decode them with a codec into
// batches, and write batches back as messages. `memory://name` URLs use the embedded broker; the
// Kafka connector will plug in under `kafka://` with the same options. A message that cannot be
// decoded is never silently dropped: by policy it fails the job (naming topic, partition, offset
// and reason), is skipped and counted, or is sent with its error to a dead-letter topic.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "sabot/codec/codec.h"
#include "sabot/connectors/bad_records.h"
#include "sabot/connectors/memory_broker.h"
#include "sabot/runtime/plan.h"
#include "sabot/runtime/source.h"

namespace sabot::connectors {

struct TopicSourceOptions {
  // "memory://topic-name". The topic must exist when the job is built (its partitions are the
  // source's splits).
  std::string url{};
  // Decodes message values into the source's schema. Required.
  codec::CodecPtr codec{};
  BadRecordPolicy on_bad_record = BadRecordPolicy::kFail;
  // Where bad records go under kDeadLetter ("memory://name"; created with 1 partition if missing).
  // Each dead letter's key is the original key; its value is a JSON object with "topic",
  // "partition", "offset", "error" and "value" (the original message as a string).
  std::string dead_letter_url{};
  // Where every partition starts. Default: the earliest offset.
  StartPosition start = StartPosition::earliest();
  // The job ends when the topic is closed and read to its end; an open topic is read until the job
  // is cancelled.
  // The broker holding memory:// topics; null means MemoryBroker::default_instance(). Not owned.
  MemoryBroker* broker = nullptr;
};

// Refuses bad options (unknown scheme, missing topic, no codec, dead-letter policy without a URL)
// with one message naming each problem.
Result<std::shared_ptr<const runtime::Source>> topic_source(TopicSourceOptions options);

struct TopicSinkOptions {
  std::string url{};  // "memory://topic-name"; created with `partitions` partitions if missing
  codec::CodecPtr codec{};
  // Message keys: this column's values (utf8 or binary; other types as their text); empty: no key,
  // so records spread over partitions (Kafka's sticky partitioner).
  std::string key_column{};
  int partitions = 1;
  // Close the topic when every subtask of the sink has finished (a bounded job's output is then
  // complete for its readers).
  bool close_on_finish = false;
  MemoryBroker* broker = nullptr;
};

// Under DeliveryGuarantee::kExactlyOnce the sink writes through a transactional producer per
// subtask (transactional id "sabot/<uid>/<subtask>"; two jobs writing one broker need distinct
// uids): the records since the last barrier form one transaction, prepared at the barrier and
// committed when the checkpoint completes, so read_committed readers see only results of
// completed checkpoints. Restore re-commits the prepared transactions the checkpoint lists and
// aborts the lingering ones of the same transactional ids (whose writers are gone). A topic
// cannot be truncated: what a later checkpoint committed before a failure stays visible if
// recovery falls back to an earlier checkpoint (as in Kafka/Flink).
std::shared_ptr<const runtime::OperatorFactory> topic_sink(TopicSinkOptions options);

}  // namespace sabot::connectors
