// KeyedStateBackend: the keyed state of one operator subtask — its keys (KeyRegistry), the
// current key and namespace, named typed state handles, TTL cleanup and snapshot/restore of chosen
// key groups. StateBackend is the factory chosen by configuration (memory now, RocksDB later with
// the same API). A backend and its handles belong to one subtask's thread; not thread-safe.
//
// Use per batch:
//   backend->resolve_keys(batch, key_columns, &ids);      // one hash-table pass for the batch
//   for (i...) { backend->set_current_key(ids[i]); counter->update(counter->value().value_or(0)+1);
//   }
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <typeinfo>
#include <vector>

#include "sabot/base/bytes.h"
#include "sabot/base/clock.h"
#include "sabot/base/ids.h"
#include "sabot/base/status.h"
#include "sabot/columnar/record_batch.h"
#include "sabot/state/key_registry.h"
#include "sabot/state/kv_state.h"
#include "sabot/state/memory_state.h"
#include "sabot/state/state.h"

namespace sabot::state {

// The state type of KeyedStateBackend::snapshot()'s envelope.
inline constexpr std::string_view kKeyedStateType = "keyed-state";

// A state's description without its C++ types, plus how each backend builds it. The typed
// get_state() overloads fill it in.
struct StateSpec {
  std::string name;
  StateKind kind = StateKind::kValue;
  // Identifies the handle's C++ type (mangled type name); re-registering a name or restoring a
  // snapshot must use the same type.
  std::string type_tag;
  StateOptions options;
  // Builds the memory backend's table.
  struct Made {
    std::unique_ptr<State> state;
    internal::MemoryTable* table = nullptr;  // the same object, seen as a table
  };
  std::function<Made(const StateContext*)> make_memory;
  // Builds a byte-store backend's handle (RocksDB) over `store`, which the backend owns.
  struct MadeKv {
    std::unique_ptr<State> state;
    internal::KvTable* table = nullptr;  // the same object, seen as a table
  };
  std::function<MadeKv(const StateContext*, internal::KvStore*)> make_kv;
};

class KeyedStateBackend {
 public:
  virtual ~KeyedStateBackend() = default;

  // The backend's name ("memory").
  virtual std::string_view backend_name() const = 0;

  KeyRegistry& keys() { return *keys_; }
  const KeyRegistry& keys() const { return *keys_; }
  // KeyIds of a batch's key rows; see KeyRegistry::resolve. Also samples the clock for TTL
  // (refresh_time()).
  Status resolve_keys(const columnar::RecordBatch& batch, std::span<const int> key_columns,
                      std::vector<KeyId>* ids) {
    refresh_time();
    const uint32_t before = keys_->num_keys();
    SABOT_RETURN_IF_ERROR(keys_->resolve(batch, key_columns, ids));
    if (keys_->num_keys() != before) on_new_keys(before, keys_->num_keys());
    return Status::ok();
  }
  Status resolve_keys(std::span<const columnar::Array> key_columns, std::vector<KeyId>* ids) {
    refresh_time();
    const uint32_t before = keys_->num_keys();
    SABOT_RETURN_IF_ERROR(keys_->resolve(key_columns, ids));
    if (keys_->num_keys() != before) on_new_keys(before, keys_->num_keys());
    return Status::ok();
  }
  // Samples the clock: TTL checks and write times of state accesses use the time of the last
  // sample, so a batch costs one clock read, not one per row. Call it before state accesses that
  // do not follow resolve_keys() (timers). purge_expired() and snapshot() sample it themselves.
  void refresh_time() { ctx_.now_ms = ctx_.clock->now().millis(); }

  // Scopes every handle to `key` (a KeyId from this backend's registry) until the next call.
  void set_current_key(KeyId key) {
    SABOT_CHECK_LT(key, keys_->num_keys());
    ctx_.key = key;
  }
  KeyId current_key() const { return ctx_.key; }
  // The current key's values, one per key column.
  std::vector<columnar::Scalar> current_key_values() const {
    SABOT_CHECK(ctx_.key != kNoKey);
    return keys_->key_values(ctx_.key);
  }
  // Scopes every handle to namespace `ns` (default 0) until the next call.
  void set_current_namespace(Namespace ns) { ctx_.ns = ns; }
  Namespace current_namespace() const { return ctx_.ns; }
  const Clock& clock() const { return *ctx_.clock; }

  // Typed handles by descriptor. The first call with a name creates the state (and applies any
  // restored entries of that name); later calls return the same handle. Asking for a name with
  // another kind or type is InvalidArgument. The handle lives as long as the backend.
  template <typename T>
  Result<ValueState<T>*> get_state(const ValueStateDescriptor<T>& d) {
    return get_typed<ValueState<T>>(
        d.name, StateKind::kValue, d.options,
        [](auto* ctx, auto& o) { return new internal::MemoryValueState<T>(ctx, o); },
        [](auto* ctx, auto* kv, auto& o) { return new internal::KvValueState<T>(ctx, kv, o); });
  }
  template <typename T>
  Result<ListState<T>*> get_state(const ListStateDescriptor<T>& d) {
    return get_typed<ListState<T>>(
        d.name, StateKind::kList, d.options,
        [](auto* ctx, auto& o) { return new internal::MemoryListState<T>(ctx, o); },
        [](auto* ctx, auto* kv, auto& o) { return new internal::KvListState<T>(ctx, kv, o); });
  }
  template <typename K, typename V>
  Result<MapState<K, V>*> get_state(const MapStateDescriptor<K, V>& d) {
    return get_typed<MapState<K, V>>(
        d.name, StateKind::kMap, d.options,
        [](auto* ctx, auto& o) { return new internal::MemoryMapState<K, V>(ctx, o); },
        [](auto* ctx, auto* kv, auto& o) { return new internal::KvMapState<K, V>(ctx, kv, o); });
  }
  template <typename T, typename ReduceFn>
  Result<ReducingState<T>*> get_state(const ReducingStateDescriptor<T, ReduceFn>& d) {
    return get_typed<ReducingState<T>>(
        d.name, StateKind::kReducing, d.options,
        [reduce = d.reduce](auto* ctx, auto& o) {
          return new internal::MemoryReducingState<T, ReduceFn>(ctx, o, reduce);
        },
        [reduce = d.reduce](auto* ctx, auto* kv, auto& o) {
          return new internal::KvReducingState<T, ReduceFn>(ctx, kv, o, reduce);
        });
  }
  template <typename In, typename Acc, typename Out, typename Fn>
  Result<AggregatingState<In, Acc, Out>*> get_state(
      const AggregatingStateDescriptor<In, Acc, Out, Fn>& d) {
    return get_typed<AggregatingState<In, Acc, Out>>(
        d.name, StateKind::kAggregating, d.options,
        [fn = d.fn](auto* ctx, auto& o) {
          return new internal::MemoryAggregatingState<In, Acc, Out, Fn>(ctx, o, fn);
        },
        [fn = d.fn](auto* ctx, auto* kv, auto& o) {
          return new internal::KvAggregatingState<In, Acc, Out, Fn>(ctx, kv, o, fn);
        });
  }

  // Names of the registered states, in registration order.
  virtual std::vector<std::string> state_names() const = 0;

  // Writes the state of `key_groups` (all owned by this backend, else InvalidArgument) as one
  // snapshot envelope (state/snapshot.h) addressed by operator `uid`, state type "keyed-state"
  // (kKeyedStateType), appended to `out`: the operator-wide section describes the key types and
  // every state (name, kind, C++ type, TTL); each key group with keys has a section with its keys
  // and, per state, the entries (key index, namespace, write time, StateCodec value bytes).
  // Expired entries are left out.
  Status snapshot(std::string_view uid, std::span<const KeyGroup> key_groups, std::string* out);
  // All owned key groups.
  Status snapshot(std::string_view uid, std::string* out) {
    return snapshot(uid, keys_->owned_key_groups(), out);
  }

  // Adds the entries of the key groups this backend owns from a snapshot of operator `uid`
  // (others are skipped, so after rescaling a subtask restores from every old snapshot that
  // overlaps its key groups; several snapshots add up). Entries of states not yet registered are
  // kept and applied when the state is first asked for. Key types and max parallelism must match
  // (InvalidArgument); bad bytes give InvalidData naming the operator, the state and the byte
  // offset. After an error the backend's contents are unspecified: discard it.
  Status restore(std::string_view uid, std::string_view bytes);

  // The parts of snapshot() for operators that keep more per key group than keyed state (timers)
  // and write their own envelope: `header` goes into the operator-wide section, `payloads[i]`
  // (the keys of key_groups[i], then the entries) starts that key group's section. keys[i] are the
  // KeyIds in the order of the payload's key list, so that what else the operator writes can name
  // a key by its index in the section. Only key groups with keys appear.
  struct SnapshotParts {
    std::string header;
    std::vector<KeyGroup> key_groups;
    std::vector<std::string> payloads;
    std::vector<std::vector<KeyId>> keys;
  };
  virtual Status snapshot_parts(std::span<const KeyGroup> key_groups, SnapshotParts* out) = 0;
  // What a snapshot's header says about the states; read before its key groups.
  struct RestoreHeader {
    struct StateHeader {
      std::string name;
      StateKind kind = StateKind::kValue;
      std::string type_tag;
      int64_t ttl_ms = 0;
    };
    std::vector<StateHeader> states;
  };
  // Reads `header` of snapshot_parts from `r` (checking key types and the states' kinds and types
  // against those registered: InvalidArgument).
  virtual Status restore_header(ByteReader& r, RestoreHeader* header) = 0;
  // Reads one key group's payload (an owned `kg`) from `r`, adding its keys and entries; `ids`
  // gets the KeyIds in the payload's key order. Leaves `r` after the payload.
  virtual Status restore_key_group(const RestoreHeader& header, KeyGroup kg, ByteReader& r,
                                   std::vector<KeyId>* ids) = 0;

  // Forgetting keys. The registry numbers every key it has seen; a key with no entry left in any
  // state (cleared, expired and purged, or never written) only costs memory, so the owner of the
  // backend calls forget_keys() now and then (when should_forget_keys() says the registry has
  // doubled since the last time), passing the keys something else still refers to (`pinned`,
  // e.g. keys with timers). Every other key without state is forgotten and the rest renumbered in
  // their old order (KeyIds stay ordered as before); `remap` gets, per old KeyId, the new one or
  // kNoKey. Expired entries are purged first. The current key is reset.
  bool should_forget_keys() const { return keys_->num_keys() >= forget_at_; }
  virtual Status forget_keys(std::span<const KeyId> pinned, std::vector<KeyId>* remap) = 0;

  // The cleanup pass: removes every expired entry of every TTL state; returns how many.
  virtual size_t purge_expired() = 0;
  // A hint that `key`'s state (default namespace) is about to be used: backends may start
  // fetching it (the memory backend prefetches its entries into the CPU cache). Changes nothing.
  virtual void prefetch(KeyId key) {}
  // Before row i of a loop over `ids` that sets each as the current key: prefetches the key
  // kPrefetchAhead rows on (at i == 0 the first kPrefetchAhead too), far enough ahead that it
  // has arrived when its row comes. Call it in row order (the RocksDB backend's second step
  // relies on it): keyed process functions, App agents, dedup and the stream-table join do.
  static constexpr size_t kPrefetchAhead = 4;
  void prefetch_ahead(std::span<const KeyId> ids, size_t i) {
    if (i == 0) {
      for (size_t j = 0; j < std::min(kPrefetchAhead, ids.size()); ++j) prefetch(ids[j]);
    }
    if (i + kPrefetchAhead < ids.size()) prefetch(ids[i + kPrefetchAhead]);
  }
  // Entries held by a state (expired ones not yet purged included); 0 for unknown names.
  virtual size_t num_entries(std::string_view state_name) const = 0;
  // The keys (increasing KeyId) with a live entry of `state_name` in namespace `ns`, e.g. to fire
  // a window for every key that has state in it. NotFound for an unregistered state name.
  virtual Result<std::vector<KeyId>> keys_with_state(std::string_view state_name,
                                                     Namespace ns) const = 0;

 protected:
  KeyedStateBackend(std::unique_ptr<KeyRegistry> keys, const Clock* clock)
      : keys_(std::move(keys)) {
    ctx_.clock = clock != nullptr ? clock : &SystemClock::instance();
    refresh_time();
  }
  // Returns the state registered under spec.name (checking kind and type) or creates it.
  virtual Result<State*> get_or_create_state(StateSpec spec) = 0;
  // resolve_keys() registered the keys [first, end), which no registry held before: unless a
  // restore adds entries, they have none in any state (the RocksDB backend then skips looking).
  virtual void on_new_keys(KeyId first, KeyId end) {}

  StateContext ctx_;
  std::unique_ptr<KeyRegistry> keys_;
  // should_forget_keys() is true from this many keys on; forget_keys() sets it to twice the keys
  // it keeps (at least kMinKeysToForget), so forgetting costs amortized O(1) per new key.
  static constexpr uint32_t kMinKeysToForget = 1u << 16;
  uint32_t forget_at_ = kMinKeysToForget;

 private:
  template <typename Handle, typename MakeFn, typename MakeKvFn>
  Result<Handle*> get_typed(const std::string& name, StateKind kind, const StateOptions& options,
                            MakeFn make, MakeKvFn make_kv) {
    StateSpec spec;
    spec.name = name;
    spec.kind = kind;
    spec.type_tag = typeid(Handle).name();
    spec.options = options;
    spec.make_memory = [make, options](const StateContext* ctx) {
      auto* impl = make(ctx, options);
      return StateSpec::Made{std::unique_ptr<State>(static_cast<Handle*>(impl)),
                             static_cast<internal::MemoryTable*>(impl)};
    };
    spec.make_kv = [make_kv, options](const StateContext* ctx, internal::KvStore* kv) {
      auto* impl = make_kv(ctx, kv, options);
      return StateSpec::MadeKv{std::unique_ptr<State>(static_cast<Handle*>(impl)),
                               static_cast<internal::KvTable*>(impl)};
    };
    SABOT_ASSIGN_OR_RETURN(State * s, get_or_create_state(std::move(spec)));
    // get_or_create_state checked kind and type tag, so the handle has this type.
    return static_cast<Handle*>(s);
  }
};

struct KeyedBackendOptions {
  // Types of the key columns (one or more). Required.
  std::vector<columnar::DataType> key_types;
  // Number of key groups; must equal the job's max parallelism (default 128, as the runtime).
  uint32_t max_parallelism = 128;
  // Key groups this subtask owns (see key_groups_for_subtask); empty means all.
  std::vector<KeyGroup> key_groups{};
  // Clock for TTL; null means SystemClock. Must outlive the backend.
  const Clock* clock = nullptr;
  // Names the owner in error messages (e.g. the operator name).
  std::string name = "keyed state";
};

// Creates keyed backends; the choice of implementation is configuration. Stateless, thread-safe.
class StateBackend {
 public:
  virtual ~StateBackend() = default;
  virtual std::string_view name() const = 0;
  virtual Result<std::unique_ptr<KeyedStateBackend>> create_keyed_backend(
      const KeyedBackendOptions& options) const = 0;
  // What the backend holds in memory apart from the operators' own state, by part: (part, bytes)
  // pairs for the metrics endpoint. Empty for the memory backend, whose state lives in the
  // operator subtasks. Thread-safe.
  virtual std::vector<std::pair<std::string, int64_t>> memory_parts() const { return {}; }
};

// Typed C++ values in memory; serialization only at snapshot.
class MemoryStateBackend final : public StateBackend {
 public:
  std::string_view name() const override { return "memory"; }
  Result<std::unique_ptr<KeyedStateBackend>> create_keyed_backend(
      const KeyedBackendOptions& options) const override;
};

}  // namespace sabot::state
