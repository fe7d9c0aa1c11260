// Shared by snapshot_reader_fuzzer.cc and fuzz_seeds.cc: the backends the snapshot fuzzer restores
// into and the states it registers, so that the seeds are snapshots of exactly those.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

#include "sabot/base/check.h"
#include "sabot/state/keyed_state_backend.h"

namespace sabot::fuzz {

// The operator uid the fuzzed keyed-state snapshots are addressed by.
inline constexpr std::string_view kUid = "fuzz";

struct SumFn {
  int64_t operator()(const int64_t& a, const int64_t& b) const {
    return static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
  }
};
struct AvgFn {
  std::pair<int64_t, int64_t> create() const { return {0, 0}; }
  void add(std::pair<int64_t, int64_t>& acc, const int64_t& v) const {
    acc.first = static_cast<int64_t>(static_cast<uint64_t>(acc.first) + static_cast<uint64_t>(v));
    acc.second += 1;
  }
  void merge(std::pair<int64_t, int64_t>& acc, const std::pair<int64_t, int64_t>& o) const {
    acc.first =
        static_cast<int64_t>(static_cast<uint64_t>(acc.first) + static_cast<uint64_t>(o.first));
    acc.second =
        static_cast<int64_t>(static_cast<uint64_t>(acc.second) + static_cast<uint64_t>(o.second));
  }
  double result(const std::pair<int64_t, int64_t>& acc) const {
    return acc.second == 0 ? 0.0 : static_cast<double>(acc.first) / static_cast<double>(acc.second);
  }
};
using AvgDescriptor =
    state::AggregatingStateDescriptor<int64_t, std::pair<int64_t, int64_t>, double, AvgFn>;

struct Handles {
  state::ValueState<int64_t>* value = nullptr;
  state::ListState<std::string>* list = nullptr;
  state::MapState<int64_t, std::string>* map = nullptr;
  state::ReducingState<int64_t>* reducing = nullptr;
  state::AggregatingState<int64_t, std::pair<int64_t, int64_t>, double>* agg = nullptr;
  state::ValueState<std::vector<std::optional<double>>>* nested = nullptr;
};

// Registers the states; a state whose restored entries have another kind or type is left null.
inline Handles get_handles(state::KeyedStateBackend& b) {
  using namespace state;
  Handles h;
  const StateOptions ttl{.ttl = std::chrono::milliseconds(1000)};
  if (auto r = b.get_state(ValueStateDescriptor<int64_t>{.name = "value"}); r.is_ok()) h.value = *r;
  if (auto r = b.get_state(ListStateDescriptor<std::string>{.name = "list", .options = ttl});
      r.is_ok()) {
    h.list = *r;
  }
  if (auto r = b.get_state(MapStateDescriptor<int64_t, std::string>{.name = "map"}); r.is_ok()) {
    h.map = *r;
  }
  if (auto r = b.get_state(reducing_descriptor<int64_t>("reducing", SumFn{})); r.is_ok()) {
    h.reducing = *r;
  }
  if (auto r = b.get_state(AvgDescriptor{.name = "agg"}); r.is_ok()) h.agg = *r;
  if (auto r =
          b.get_state(ValueStateDescriptor<std::vector<std::optional<double>>>{.name = "nested"});
      r.is_ok()) {
    h.nested = *r;
  }
  return h;
}

// Key column types chosen by two bits of the fuzzer's option byte.
inline std::vector<columnar::DataType> key_types_for(int choice) {
  switch (choice & 3) {
    case 0:
      return {columnar::int64()};
    case 1:
      return {columnar::utf8()};
    case 2:
      return {columnar::int64(), columnar::utf8()};
    default:
      return {columnar::binary(), columnar::timestamp(columnar::TimeUnit::kMilli)};
  }
}

inline std::unique_ptr<state::KeyedStateBackend> make_backend(int choice, uint32_t maxp,
                                                              std::vector<KeyGroup> groups,
                                                              const Clock* clock) {
  state::KeyedBackendOptions o;
  o.key_types = key_types_for(choice);
  o.max_parallelism = maxp;
  o.key_groups = std::move(groups);
  o.clock = clock;
  auto r = state::MemoryStateBackend().create_keyed_backend(o);
  SABOT_CHECK_OK(r);
  return std::move(r).value();
}

}  // namespace sabot::fuzz
