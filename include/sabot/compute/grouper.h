// Grouper: maps the key rows of batches to dense group ids (0, 1, 2, ... in order of first
// appearance), batch after batch. The basis of grouped and windowed aggregation and of keyed state
// lookups. A Grouper has one owner and is not thread-safe; distinct Groupers share nothing.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sabot/base/status.h"
#include "sabot/columnar/array.h"

namespace sabot::compute {

using columnar::Array;
using columnar::DataType;

class Grouper {
 public:
  // Returned by lookup() for a key the grouper has never seen.
  static constexpr uint32_t kUnknownGroup = UINT32_MAX;

  // A grouper for key rows of the given column types (one or more). A single int32, int64, uint64
  // or timestamp key gets a specialised open-addressing table with the keys stored inline; every
  // other combination uses a generic table over a normalized byte encoding of the key row.
  // Equality: null equals null (null is a key of its own); float64 -0.0 equals 0.0 and NaN equals
  // NaN; utf8/binary compare bytes.
  static Result<std::unique_ptr<Grouper>> make(std::vector<DataType> key_types);

  virtual ~Grouper() = default;

  const std::vector<DataType>& key_types() const { return key_types_; }
  // Number of distinct keys seen so far; group ids are [0, num_groups()).
  virtual uint32_t num_groups() const = 0;

  // Assigns a group id to every row of `keys` (one array per key column, equal lengths, types as
  // made); unseen keys get the next ids. `group_ids` is resized to the row count, its capacity
  // reused. InvalidArgument/TypeError when the columns do not fit.
  virtual Status consume(std::span<const Array> keys, std::vector<uint32_t>* group_ids) = 0;

  // Like consume() but inserts nothing: unseen keys get kUnknownGroup. Reuses the grouper's
  // scratch buffers, so it is no more thread-safe than consume().
  virtual Status lookup(std::span<const Array> keys, std::vector<uint32_t>* group_ids) const = 0;
  Result<std::vector<uint32_t>> lookup(std::span<const Array> keys) const;

  // The distinct keys, one array per key column, row g holding the key of group g.
  virtual Result<std::vector<Array>> keys() const = 0;
  // The keys of the given groups (repeats allowed), one array per key column, row i holding the
  // key of groups[i]. Costs O(groups.size()) where keys() costs O(num_groups()): for emitting a few
  // groups out of many. InvalidArgument for an id >= num_groups().
  virtual Result<std::vector<Array>> keys_of(std::span<const uint32_t> groups) const = 0;

  // The row hash of every group's key, in group-id order: exactly what hash_columns() gives for
  // keys() (so `hash % max_parallelism` is the group's key group). Lets state be split by key
  // group for checkpoints and rescaling without re-hashing. `out` is resized, capacity reused.
  virtual void group_hashes(std::vector<uint64_t>* out) const = 0;

  // Forgets every key (e.g. when a window fires); keeps allocated capacity for reuse.
  virtual void clear() = 0;

  // Checkpoint state: appends a self-describing, versioned encoding to `out`. deserialize()
  // replaces this grouper's contents (same key types required) and restores the same group ids.
  virtual void serialize(std::string* out) const = 0;
  virtual Status deserialize(std::string_view bytes) = 0;

 protected:
  explicit Grouper(std::vector<DataType> key_types) : key_types_(std::move(key_types)) {}
  // Checks count, types and lengths of a batch of key columns against key_types().
  Status check_keys(std::span<const Array> keys, const char* what) const;

  std::vector<DataType> key_types_;
};

}  // namespace sabot::compute
