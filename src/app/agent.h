// Internal to the app module: the agent operator (a keyed process operator whose driver calls the
// user's function per record with the record's metadata, tables scoped to its key and a buffer
// of sends), the raw value codec of text and raw topics, and the spool files that back memory://
// topics in a state directory.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sabot/app/app.h"
#include "sabot/codec/codec.h"
#include "sabot/runtime/plan.h"

namespace sabot::app::detail {

// One send of an agent: to sink `dest` (an index into the agent's sinks; sinks.size() is the
// dead-letter topic).
struct SendRow {
  int64_t dest = 0;
  std::optional<std::string_view> key;
  std::string_view value;
};

}  // namespace sabot::app::detail

SABOT_RECORD(sabot::app::detail::SendRow, dest, key, value);

namespace sabot::app::detail {

// Metadata columns the agents' topic sources add (connectors::MessageColumns).
inline constexpr const char* kKeyColumn = "_key";
inline constexpr const char* kPartitionColumn = "_partition";
inline constexpr const char* kOffsetColumn = "_offset";
inline constexpr const char* kTimestampColumn = "_timestamp";

// Text and raw topics: decodes each message into one "value" column (utf8 for text, binary for
// raw) without copying; encodes the "value" column of a batch as the messages.
codec::CodecPtr value_codec(bool text);

// The operator of one agent. `dead_letters` counts records routed to the dead-letter topic.
std::shared_ptr<const runtime::OperatorFactory> agent_operator(
    const AgentDecl& agent, const std::vector<std::shared_ptr<TableDecl>>& tables,
    std::shared_ptr<std::atomic<int64_t>> dead_letters);

// ---- Spool files: <state_dir>/topics/<topic>.log, records appended as
// "<key length or -1> <value length> <timestamp ms>\n<key><value>\n".
std::string spool_path(const std::string& state_dir, const std::string& topic);
// Appends one record with a single write (O_APPEND), so concurrent senders never interleave.
Status spool_append(const std::string& path, std::optional<std::string_view> key,
                    std::string_view value, int64_t timestamp_ms);

// Follows one spool file into a memory topic: keyed records go to the key's partition, others
// round-robin by their index in the file, so every load gives the same offsets.
class SpoolFollower {
 public:
  SpoolFollower(std::string path, connectors::TopicPtr topic)
      : path_(std::move(path)), topic_(std::move(topic)) {}
  // Appends the complete records written since the last call. Returns how many.
  Result<int64_t> poll();
  const connectors::TopicPtr& topic() const { return topic_; }

 private:
  std::string path_;
  connectors::TopicPtr topic_;
  int64_t bytes_read_ = 0;
  int64_t records_ = 0;
  std::string buffer_;
};

}  // namespace sabot::app::detail
