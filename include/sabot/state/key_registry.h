// KeyRegistry: maps the distinct keys an operator subtask sees to dense KeyIds (0, 1, 2, ... in
// order of first appearance) and remembers each key's key group and its values, so keyed state is
// an array index per row instead of a hash lookup. Key rows of a whole batch resolve at once.
// One owner (the keyed state backend of one subtask); not thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sabot/base/ids.h"
#include "sabot/base/status.h"
#include "sabot/columnar/array.h"
#include "sabot/columnar/record_batch.h"
#include "sabot/columnar/scalar.h"
#include "sabot/compute/grouper.h"

namespace sabot::state {

using KeyId = uint32_t;
// "No current key" (before set_current_key) and "unknown key" (lookup).
inline constexpr KeyId kNoKey = UINT32_MAX;

// The key groups owned by `subtask` of `parallelism` with `max_parallelism` key groups: the
// contiguous range the runtime's keyed exchange routes to it (kg * parallelism / max_parallelism ==
// subtask). Requires 0 <= subtask < parallelism <= max_parallelism (checked).
std::vector<KeyGroup> key_groups_for_subtask(int subtask, int parallelism, int max_parallelism);

class KeyRegistry {
 public:
  // A registry for key rows of `key_types` (one or more columns) whose subtask owns `owned` of the
  // `max_parallelism` key groups. An empty `owned` means all key groups.
  static Result<std::unique_ptr<KeyRegistry>> make(std::vector<columnar::DataType> key_types,
                                                   uint32_t max_parallelism,
                                                   std::span<const KeyGroup> owned = {});

  const std::vector<columnar::DataType>& key_types() const { return grouper_->key_types(); }
  uint32_t max_parallelism() const { return max_parallelism_; }
  bool owns(KeyGroup kg) const {
    return kg.value() >= 0 && static_cast<uint32_t>(kg.value()) < max_parallelism_ &&
           owned_[static_cast<size_t>(kg.value())] != 0;
  }
  std::vector<KeyGroup> owned_key_groups() const;

  // Number of distinct keys; KeyIds are [0, num_keys()).
  uint32_t num_keys() const { return grouper_->num_groups(); }

  // Key ids of every row of the key columns (types as made, equal lengths); new keys get the next
  // ids. `ids` is resized to the row count (capacity reused). New keys are hashed into their key
  // group (the same hash and modulo as the runtime's key_by); a key whose group this subtask does
  // not own is InvalidArgument (a routing bug upstream; the registry is then unusable and the
  // task must fail).
  Status resolve(std::span<const columnar::Array> key_columns, std::vector<KeyId>* ids);
  Status resolve(const columnar::RecordBatch& batch, std::span<const int> key_columns,
                 std::vector<KeyId>* ids);
  // One key given as values (one per key column, of the key types); for process functions that
  // address state by value, and for restore.
  Result<KeyId> resolve_values(std::span<const columnar::Scalar> key);

  // Like resolve() but registers nothing: unknown keys get kNoKey.
  Status lookup(std::span<const columnar::Array> key_columns, std::vector<KeyId>* ids) const;

  KeyGroup key_group(KeyId id) const { return KeyGroup(static_cast<int32_t>(key_groups_[id])); }
  // The key's values in a normalized byte encoding (per column: a validity byte, then the value:
  // 1 byte bool, 4 int32, 8 int64/uint64/float64/timestamp, u64 length + bytes for utf8/binary).
  std::string_view key_bytes(KeyId id) const {
    return std::string_view(arena_).substr(key_offsets_[id],
                                           key_offsets_[id + 1] - key_offsets_[id]);
  }
  // The key's values, one Scalar per key column.
  std::vector<columnar::Scalar> key_values(KeyId id) const;

  // Forgets every key but `keep` (increasing KeyIds): they become KeyIds 0, 1, 2, ... in that
  // order (so the order of KeyIds is kept), and the hash table, key bytes and key groups shrink to
  // them. The caller renumbers whatever holds KeyIds (KeyedStateBackend::forget_keys).
  Status retain_only(std::span<const KeyId> keep);
  // Decodes key_bytes() into Scalars of `types`; InvalidData when the bytes do not fit.
  static Status decode_key(std::string_view bytes, std::span<const columnar::DataType> types,
                           std::vector<columnar::Scalar>* out);

 private:
  KeyRegistry(std::unique_ptr<compute::Grouper> grouper, uint32_t max_parallelism,
              std::vector<uint8_t> owned);
  // Records key group and key bytes of ids [first_new, num_keys()) found in `key_columns`.
  Status register_new_keys(std::span<const columnar::Array> key_columns, std::span<const KeyId> ids,
                           uint32_t first_new);

  std::unique_ptr<compute::Grouper> grouper_;
  uint32_t max_parallelism_;
  std::vector<uint8_t> owned_;            // by key group
  std::vector<uint32_t> key_groups_;      // by KeyId
  std::string arena_;                     // key bytes of all keys, back to back
  std::vector<uint64_t> key_offsets_{0};  // num_keys() + 1 offsets into arena_
  std::vector<columnar::Array> scratch_columns_;
  std::vector<uint64_t> hashes_;
  std::vector<uint32_t> groups_scratch_;
};

}  // namespace sabot::state
