// The parts of the "keyed-state" snapshot format (keyed_state_backend.h, snapshot()) that every
// keyed backend writes and reads the same way: the operator-wide header (key types and states),
// a key group's key list and its entries. Shared by the memory and RocksDB backends so that a
// snapshot of one restores into the other. Stateless functions.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sabot/base/bytes.h"
#include "sabot/base/status.h"
#include "sabot/state/key_registry.h"
#include "sabot/state/keyed_state_backend.h"

namespace sabot::state::internal {

// InvalidArgument when `spec` has another kind or type tag than (kind, type_tag); `what` says
// where those come from ("it is now asked for as").
Status check_same_state(const StateSpec& spec, StateKind kind, std::string_view type_tag,
                        std::string_view what);

// The operator-wide section: key column types, then per state name, kind, type tag and TTL.
void write_keyed_header(const KeyRegistry& keys, std::span<const StateSpec* const> states,
                        std::string* out);
// Reads it, checking the key types against `keys`; `check_state` is called for each state
// description (to compare it with registered or pending states).
Status read_keyed_header(
    ByteReader& r, const KeyRegistry& keys,
    const std::function<Status(const KeyedStateBackend::RestoreHeader::StateHeader&)>& check_state,
    KeyedStateBackend::RestoreHeader* out);

// Reads a key group's key list (u64 count, then u64 length + key bytes each), checks that every
// key hashes into `kg`, and registers the keys: ids gets their KeyIds in list order.
Status read_key_list(ByteReader& r, KeyRegistry& keys, KeyGroup kg, std::vector<KeyId>* ids);

// Reads one state's entries of a key group (u64 count, then u32 key index, u64 namespace, i64
// write time, u64 length + StateCodec value bytes each) and calls `fn` per entry with the KeyId
// (from `ids`) and the value's byte offset for messages.
Status read_entries(ByteReader& r, const std::string& state_name, std::span<const KeyId> ids,
                    const std::function<Status(KeyId key, uint64_t ns, int64_t write_ms,
                                               std::string_view value, size_t value_at)>& fn);

}  // namespace sabot::state::internal
