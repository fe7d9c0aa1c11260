// Reads keyed state out of a snapshot without the job's code, for tools (`sabot state read`,
// `sabot checkpoints show`): the key types and state descriptions of the operator-wide section,
// and every entry of a state with its key decoded from the normalized key bytes by the stored key
// types. Values decode generically from the C++ type tag the snapshot stores, for the types
// StateCodec encodes built in (see ValueDecoder); any other type is reported as such, never
// guessed. Reads the state types "keyed-state" (KeyedStateBackend::snapshot) and
// "process-function" (operators::KeyedProcessOperator: the same payload, then timers).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sabot/base/json_text.h"
#include "sabot/base/status.h"
#include "sabot/columnar/scalar.h"
#include "sabot/columnar/type.h"
#include "sabot/state/snapshot.h"
#include "sabot/state/state.h"

namespace sabot::state {

// The state type written by operators::KeyedProcessOperator (kProcessStateType there); the state
// module names it so that it can read such snapshots without depending on the operators.
inline constexpr std::string_view kProcessFunctionStateType = "process-function";

// True for the state types whose payload is keyed state ("keyed-state", "process-function").
bool is_keyed_state_type(std::string_view state_type);

// The readable C++ type of a type tag (typeid(...).name(), Itanium-mangled), e.g.
// "sabot::state::ValueState<long>"; the tag itself when it does not demangle.
std::string demangle_type_tag(std::string_view type_tag);

// How one state's stored values decode into JSON, built from the state's kind and C++ type tag.
// What each kind stores (memory_state.h): value and reducing state the value T, list state a
// std::vector<T>, map state a std::map<K, (i64 write time, V)>, aggregating state the accumulator.
// Decodable: bool, char and integer types, float, double, std::string, and std::vector,
// std::pair, std::optional and std::map of decodable types. Structs, enums and types with their
// own StateCodec are not: their encoding is the program's, so the decoder says it cannot (and
// why) instead of guessing. Immutable; copyable; thread-safe.
class ValueDecoder {
 public:
  static ValueDecoder for_state(StateKind kind, std::string_view type_tag);

  bool decodable() const { return root_ != nullptr; }
  // The C++ type of the stored value as the tag names it ("long", "std::vector<double>"), or the
  // demangled tag when it names no known handle.
  const std::string& value_type() const { return value_type_; }
  // Why the values cannot be decoded (empty when they can).
  const std::string& reason() const { return reason_; }
  // The JSON of one stored value. A std::string that is not valid UTF-8 (bytes, such as a
  // window's serialized partials): {"hex": "<hex digits>"}. Map state: an object (keys as strings:
  // a string key as is, a number or bool as its JSON text) without the entries' write times; maps
  // with other keys: an array of [key, value] pairs. std::pair: a two-element array; std::optional:
  // null or the value; non-finite floats: the strings "NaN", "Infinity", "-Infinity". InvalidData
  // (naming the byte) when the bytes do not decode as the type or have bytes left over.
  // Precondition: decodable().
  Result<std::string> to_json(std::string_view bytes) const;

  struct Node;

 private:
  std::shared_ptr<const Node> root_;
  std::string value_type_;
  std::string reason_;
};

// JSON of a key column value: null, true/false, integers, floats as above, utf8 as a string,
// binary as a string of hex digits.
std::string scalar_to_json(const columnar::Scalar& value);
// A JSON string literal (sabot/base/json_text.h).
using ::sabot::json_string;
// Lower-case hex digits of `bytes`.
std::string to_hex(std::string_view bytes);

// Parses a key given on a command line by the key types: one value per key column, separated by
// ',' when there are several; bool true/false, integers, float64, utf8 as is, binary as hex,
// timestamps as integers in their unit, "null" for a null value. InvalidArgument naming the column
// and its type.
Result<std::vector<columnar::Scalar>> parse_key(std::string_view text,
                                                std::span<const columnar::DataType> types);

// One keyed snapshot, checked and described at open(). Holds views into the snapshot bytes, which
// must outlive it. Not thread-safe.
class KeyedSnapshotReader {
 public:
  struct StateInfo {
    std::string name;
    StateKind kind = StateKind::kValue;
    std::string type_tag;
    int64_t ttl_ms = 0;
    uint64_t entries = 0;  // (key, namespace) entries over all key groups
    uint64_t keys = 0;     // distinct keys with at least one entry
  };
  struct Entry {
    int32_t key_group = 0;
    std::span<const columnar::Scalar> key;  // one value per key column
    Namespace ns = kDefaultNamespace;
    int64_t write_ms = 0;    // when the entry was last written (TTL), by the job's clock
    std::string_view value;  // StateCodec bytes (ValueDecoder reads them)
  };

  // Opens the snapshot of operator `uid` with `max_parallelism` key groups. Its state type must be
  // a keyed one (else InvalidArgument naming it); walks every key group once, decoding keys and
  // counting entries, so that bad bytes are found here (InvalidData naming uid, state type, key
  // group and byte offset).
  static Result<KeyedSnapshotReader> open(std::string_view bytes, std::string_view uid,
                                          uint32_t max_parallelism);

  const SnapshotHeader& header() const { return reader_.header(); }
  const std::vector<columnar::DataType>& key_types() const { return key_types_; }
  const std::vector<StateInfo>& states() const { return states_; }
  // nullptr when the snapshot has no state named `name`.
  const StateInfo* find_state(std::string_view name) const;
  uint64_t num_keys() const { return num_keys_; }
  uint64_t num_key_groups() const { return num_key_groups_; }
  // Timers of a process-function snapshot (0 for keyed-state).
  uint64_t event_timers() const { return event_timers_; }
  uint64_t processing_timers() const { return processing_timers_; }

  // Calls `fn` for every entry of state `name`, by increasing key group, then in stored order;
  // stops at the first error `fn` returns. NotFound for an unknown state name.
  Status for_each_entry(std::string_view name, const std::function<Status(const Entry&)>& fn) const;

 private:
  explicit KeyedSnapshotReader(SnapshotReader reader) : reader_(std::move(reader)) {}
  // Reads key group section `i`: calls `fn` for the entries of state index `want` (-1: none);
  // with `counts`, adds the entries and keys per state, the keys and the timers to it.
  Status walk_section(size_t i, int want, const std::function<Status(const Entry&)>& fn,
                      KeyedSnapshotReader* counts) const;

  SnapshotReader reader_;
  std::vector<columnar::DataType> key_types_;
  std::vector<StateInfo> states_;
  uint64_t num_keys_ = 0;
  uint64_t num_key_groups_ = 0;
  uint64_t event_timers_ = 0;
  uint64_t processing_timers_ = 0;
};

}  // namespace sabot::state
