// What a connector does with a record it cannot decode. Never silently dropped: either the job
// fails naming where the record was, or it is counted (and, for topics, kept in a dead-letter
// topic with its error).
#pragma once

namespace sabot::connectors {

enum class BadRecordPolicy {
  kFail,        // the job fails naming the record's place (topic/partition/offset, file/line)
  kSkip,        // the record is dropped and counted (metrics: records_dropped)
  kDeadLetter,  // topics only: the record goes to a dead-letter topic with its error, counted
};

}  // namespace sabot::connectors
