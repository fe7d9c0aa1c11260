// Topic sources and sinks: read messages from a topic on a broker, decode them with a codec into
// batches, and write batches back as messages. The URL's scheme picks the broker through the
// registry in topic_scheme.h: `memory://name` is the embedded broker, `kafka://host:port/name` a
// Kafka cluster (docs/kafka.md). A message that cannot be decoded is never silently dropped: by
// policy it fails the job (naming topic, partition, offset and reason), is skipped and counted,
// or is sent with its error to a dead-letter topic.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "sabot/codec/codec.h"
#include "sabot/connectors/bad_records.h"
#include "sabot/connectors/memory_broker.h"
#include "sabot/runtime/plan.h"
#include "sabot/runtime/source.h"

namespace sabot::connectors {

// Message metadata as extra columns after the codec's: each named column is added when its name is
// non-empty (e.g. {.partition = "_partition", .offset = "_offset"}).
struct MessageColumns {
  std::string key{};        // binary; null when the message has no key
  std::string timestamp{};  // timestamp[ms], the message's timestamp
  std::string partition{};  // int32
  std::string offset{};     // int64
  // utf8: the headers as a JSON object of strings ({} when none; memory:// messages have none).
  std::string headers{};
  bool empty() const {
    return key.empty() && timestamp.empty() && partition.empty() && offset.empty() &&
           headers.empty();
  }
};

// Client properties passed to the broker's client as they are (for kafka://, librdkafka's
// configuration, e.g. {"compression.type", "zstd"}); memory:// takes none. For kafka://, the
// environment's SABOT_KAFKA_<NAME> variables come first (SABOT_KAFKA_COMPRESSION_TYPE=lz4 is
// compression.type=lz4: lower case, '_' as '.'), then these.
using ClientProperties = std::map<std::string, std::string>;

struct TopicSourceOptions {
  // "memory://topic-name" or "kafka://host:port[,host:port]/topic-name". The topic must exist
  // when the job is built (its partitions are the source's splits).
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
  // Metadata columns appended to the decoded ones. Default: none.
  MessageColumns columns{};
  ClientProperties properties{};
  // kafka:// only. True: each partition ends at the high watermark it had when its reader opened,
  // so the job is bounded (reads what the topic holds now). False (default): read until
  // cancelled.
  bool stop_at_end = false;
  // kafka:// only: the consumer group the checkpointed offsets are committed to after each
  // completed checkpoint (for monitoring tools; Sabot restores from its checkpoints, not from the
  // group). Default "sabot-<source uid>".
  std::string group_id{};
  // kafka:// only. True: consumer-group mode, for scaling out stateless pipelines: Kafka's group
  // protocol assigns the partitions among every consumer of `group_id` (this job's subtasks and
  // any other process in the group) and moves them on rebalances; positions live in the group
  // (committed offsets), not in Sabot's checkpoints. At-least-once; refused under
  // DeliveryGuarantee::kExactlyOnce and with stop_at_end (docs/kafka.md, "Consumer groups").
  // `start` applies to partitions the group has no committed offset for. Default false: explicit
  // assignment, offsets in checkpoints.
  bool group_mode = false;

  TopicSourceOptions& property(std::string name, std::string value) {
    properties[std::move(name)] = std::move(value);
    return *this;
  }
  // Consumer-group mode in group `id` (sets group_id and group_mode).
  TopicSourceOptions& consumer_group(std::string id) {
    group_id = std::move(id);
    group_mode = true;
    return *this;
  }
};

// Refuses bad options (unknown scheme, missing topic, no codec, dead-letter policy without a URL)
// with one message naming each problem.
Result<std::shared_ptr<const runtime::Source>> topic_source(TopicSourceOptions options);

struct TopicSinkOptions {
  // "memory://topic-name" (created with `partitions` partitions if missing) or
  // "kafka://host:port[,host:port]/topic-name" (must exist, or the cluster auto-creates it).
  std::string url{};
  codec::CodecPtr codec{};
  // Message keys: this column's values (utf8 or binary; other types as their text); empty: no key,
  // so records spread over partitions (Kafka's sticky partitioner).
  std::string key_column{};
  int partitions = 1;
  // Close the topic when every subtask of the sink has finished (a bounded job's output is then
  // complete for its readers).
  bool close_on_finish = false;
  MemoryBroker* broker = nullptr;
  ClientProperties properties{};
  // kafka:// under exactly-once: transactional ids are "<prefix>-<subtask>". Default
  // "sabot-<uid>". Two jobs writing one cluster need distinct prefixes.
  std::string transactional_id_prefix{};

  TopicSinkOptions& property(std::string name, std::string value) {
    properties[std::move(name)] = std::move(value);
    return *this;
  }
};

// memory://: under DeliveryGuarantee::kExactlyOnce the sink writes through a transactional producer
// per subtask (transactional id "sabot/<uid>/<subtask>"; two jobs writing one broker need distinct
// uids): the records since the last barrier form one transaction, prepared at the barrier and
// committed when the checkpoint completes, so read_committed readers see only results of
// completed checkpoints. Restore re-commits the prepared transactions the checkpoint lists and
// aborts the lingering ones of the same transactional ids (whose writers are gone). A topic
// cannot be truncated: what a later checkpoint committed before a failure stays visible if
// recovery falls back to an earlier checkpoint (as in Kafka/Flink).
// kafka://: keys are partitioned by murmur2 like the Java client; kAtLeastOnce and kNone use the
// idempotent producer (flushed at each barrier); kExactlyOnce a transactional producer per
// subtask (docs/kafka.md).
std::shared_ptr<const runtime::OperatorFactory> topic_sink(TopicSinkOptions options);

}  // namespace sabot::connectors
