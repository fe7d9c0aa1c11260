// What flows through a channel between tasks: data batches and, in order with them, the control
// events that event time and checkpoints rely on (watermarks, checkpoint barriers, end of input).
#pragma once

#include <variant>

#include "sabot/base/ids.h"
#include "sabot/columnar/record_batch.h"

namespace sabot::runtime {

struct Watermark {
  Timestamp time;  // no record with an event time <= time is expected any more
};

struct CheckpointBarrier {
  CheckpointId id;
};

struct EndOfInput {};

// The producer's splits are all idle (true) or one became active again (false). An idle channel
// does not hold back the minimum watermark of its consumer.
struct IdleStatus {
  bool idle = false;
};

using Event =
    std::variant<columnar::RecordBatch, Watermark, CheckpointBarrier, EndOfInput, IdleStatus>;

}  // namespace sabot::runtime
