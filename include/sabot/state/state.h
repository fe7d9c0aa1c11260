// Keyed state primitives (modelled on Flink's keyed state): typed handles scoped to the backend's
// current key and namespace — ValueState, ListState, MapState, ReducingState, AggregatingState —
// their descriptors (name, types, functions, TTL), and StateOptions. Handles are owned by the
// KeyedStateBackend that created them (see keyed_state_backend.h) and share its thread: one
// operator subtask, not thread-safe.
#pragma once

#include <chrono>
#include <concepts>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "sabot/base/clock.h"
#include "sabot/state/key_registry.h"

namespace sabot::state {

// A namespace subdivides a key's state (e.g. one window of the key). Namespace 0 is the default.
using Namespace = uint64_t;
inline constexpr Namespace kDefaultNamespace = 0;

enum class StateKind : uint8_t {
  kValue = 1,
  kList = 2,
  kMap = 3,
  kReducing = 4,
  kAggregating = 5,
};
std::string_view state_kind_name(StateKind kind);

struct StateOptions {
  // Time to live, by the backend's clock (processing time, sampled once per resolved batch and on
  // KeyedStateBackend::refresh_time()). An entry not written for `ttl` reads as absent and is
  // purged (lazily when accessed, and by KeyedStateBackend::purge_expired()). The unit of expiry is
  // the (key, namespace) entry for value, list, reducing and aggregating state, and each map entry
  // for MapState. Zero (the default) means never expires. Fixed once the state is created.
  std::chrono::milliseconds ttl{0};
  // When true a read also counts as a write for TTL (Flink's OnReadAndWrite). Default false:
  // only writes refresh an entry.
  bool refresh_on_read = false;
};

// What the handles read to know where they are: the backend's current key and namespace.
struct StateContext {
  KeyId key = kNoKey;
  Namespace ns = kDefaultNamespace;
  const Clock* clock = nullptr;
  // The clock's time as last sampled by the backend (KeyedStateBackend::refresh_time()); TTL
  // checks use it so that a row costs no clock read.
  int64_t now_ms = 0;
};

// Base of every state handle.
class State {
 public:
  virtual ~State() = default;
  // Removes the current key's entry in the current namespace.
  virtual void clear() = 0;
};

// One value per (key, namespace).
template <typename T>
class ValueState : public State {
 public:
  // A copy of the value, or nullopt when absent (never written, cleared or expired).
  virtual std::optional<T> value() = 0;
  // The value in place, or nullptr when absent; valid until the next write to this state.
  virtual const T* get() = 0;
  virtual void update(T value) = 0;
};

// An append-mostly list per (key, namespace).
template <typename T>
class ListState : public State {
 public:
  // The elements (empty when absent); valid until the next write to this state.
  virtual std::span<const T> get() = 0;
  virtual void add(T value) = 0;
  virtual void add_all(std::span<const T> values) = 0;
  // Replaces the list; an empty vector clears it.
  virtual void update(std::vector<T> values) = 0;
  // Appends the lists of `sources` (in order) to `target` and clears the sources (merging
  // windows). Uses the current key; leaves the current namespace unchanged.
  virtual void merge_namespaces(Namespace target, std::span<const Namespace> sources) = 0;
};

// A map per (key, namespace); entries expire one by one under TTL.
template <typename K, typename V>
class MapState : public State {
 public:
  virtual std::optional<V> get(const K& key) = 0;
  virtual bool contains(const K& key) = 0;
  virtual void put(K key, V value) = 0;
  virtual void remove(const K& key) = 0;
  virtual bool is_empty() = 0;
  virtual size_t size() = 0;
  // The live entries in key order (copies).
  virtual std::vector<std::pair<K, V>> entries() = 0;
  virtual std::vector<K> keys() = 0;
  // Calls fn for each live entry in key order; fn must not modify this state.
  virtual void for_each(const std::function<void(const K&, const V&)>& fn) = 0;
};

// Folds every added value into one with a reduce function.
template <typename T>
class ReducingState : public State {
 public:
  virtual std::optional<T> get() = 0;
  virtual void add(const T& value) = 0;
  virtual void merge_namespaces(Namespace target, std::span<const Namespace> sources) = 0;
};

// Folds inputs into an accumulator; get() returns the function's result for it.
template <typename In, typename Acc, typename Out>
class AggregatingState : public State {
 public:
  virtual std::optional<Out> get() = 0;
  virtual const Acc* accumulator() = 0;  // nullptr when absent
  virtual void add(const In& value) = 0;
  virtual void merge_namespaces(Namespace target, std::span<const Namespace> sources) = 0;
};

// The functions of an AggregatingState (Flink's AggregateFunction), called inline (no type
// erasure per row).
template <typename Fn, typename In, typename Acc, typename Out>
concept AggregateFunctionFor = requires(const Fn& f, Acc& acc, const Acc& other, const In& in) {
  { f.create() } -> std::convertible_to<Acc>;
  f.add(acc, in);
  f.merge(acc, other);
  { f.result(other) } -> std::convertible_to<Out>;
};

// Descriptors: a state is identified by its name within a backend; asking twice for the same name
// returns the same handle, asking with another kind or type is an error.
template <typename T>
struct ValueStateDescriptor {
  std::string name;
  StateOptions options{};
};

template <typename T>
struct ListStateDescriptor {
  std::string name;
  StateOptions options{};
};

template <typename K, typename V>
struct MapStateDescriptor {
  std::string name;
  StateOptions options{};
};

// `reduce(a, b)` returns the merge of two values; pass a lambda through reducing_descriptor<T>()
// to have it called without std::function.
template <typename T, typename ReduceFn = std::function<T(const T&, const T&)>>
struct ReducingStateDescriptor {
  std::string name;
  ReduceFn reduce;
  StateOptions options{};
};
template <typename T, typename ReduceFn>
ReducingStateDescriptor<T, ReduceFn> reducing_descriptor(std::string name, ReduceFn reduce,
                                                         StateOptions options = {}) {
  return {std::move(name), std::move(reduce), options};
}

template <typename In, typename Acc, typename Out, typename Fn>
requires AggregateFunctionFor<Fn, In, Acc, Out>
struct AggregatingStateDescriptor {
  std::string name;
  Fn fn{};
  StateOptions options{};
};

}  // namespace sabot::state
