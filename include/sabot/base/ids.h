// Strong id and time types so that a partition is never passed where a checkpoint id belongs.
// Each is a thin wrapper over an integer: trivially copyable, ordered, hashable, printable.
#pragma once

#include <cstdint>
#include <functional>
#include <ostream>

namespace sabot {

template <typename Tag, typename Rep = int64_t>
class StrongId {
 public:
  using rep = Rep;
  constexpr StrongId() = default;
  constexpr explicit StrongId(Rep v) : v_(v) {}
  constexpr Rep value() const { return v_; }
  constexpr auto operator<=>(const StrongId&) const = default;
  friend std::ostream& operator<<(std::ostream& os, StrongId id) { return os << id.v_; }

 private:
  Rep v_{};
};

struct CheckpointIdTag {};
struct PartitionIdTag {};
struct KeyGroupTag {};
struct OperatorIdTag {};
struct SubtaskIndexTag {};

using CheckpointId = StrongId<CheckpointIdTag, int64_t>;
using PartitionId = StrongId<PartitionIdTag, int32_t>;
using KeyGroup = StrongId<KeyGroupTag, int32_t>;
using OperatorId = StrongId<OperatorIdTag, int32_t>;
using SubtaskIndex = StrongId<SubtaskIndexTag, int32_t>;

// A point in event or processing time, in milliseconds since the Unix epoch.
class Timestamp {
 public:
  constexpr Timestamp() = default;
  constexpr explicit Timestamp(int64_t millis) : ms_(millis) {}
  static constexpr Timestamp min() { return Timestamp(INT64_MIN); }
  static constexpr Timestamp max() { return Timestamp(INT64_MAX); }
  constexpr int64_t millis() const { return ms_; }
  constexpr auto operator<=>(const Timestamp&) const = default;
  friend std::ostream& operator<<(std::ostream& os, Timestamp t) { return os << t.ms_ << "ms"; }

 private:
  int64_t ms_ = 0;
};

}  // namespace sabot

template <typename Tag, typename Rep>
struct std::hash<sabot::StrongId<Tag, Rep>> {
  size_t operator()(sabot::StrongId<Tag, Rep> id) const noexcept {
    return std::hash<Rep>{}(id.value());
  }
};
