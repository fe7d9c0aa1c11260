// Internal building blocks shared by the join and dedup/top-N operators: a store of buffered input
// rows (kept as the input batches themselves, referenced by chunk and row), typed gathers that turn
// row references back into columns, event-time extraction, late-row handling, key-id mapping and
// a small byte codec for snapshots. One owner each, not thread-safe.
#pragma once

#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "sabot/base/arith.h"
#include "sabot/columnar/record_batch.h"
#include "sabot/compute/grouper.h"
#include "sabot/runtime/operator.h"

namespace sabot::operators::internal {

using columnar::Array;
using columnar::RecordBatch;
using columnar::SchemaPtr;

// ---- snapshot codec ----

class ByteWriter {
 public:
  explicit ByteWriter(std::string* out) : out_(out) {}
  template <typename T>
  void put(T v) {
    static_assert(std::is_trivially_copyable_v<T>);
    out_->append(reinterpret_cast<const char*>(&v), sizeof(T));
  }
  template <typename T>
  void put_vector(const std::vector<T>& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    put<uint64_t>(v.size());
    if (!v.empty()) out_->append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
  }
  void put_bytes(std::string_view s) {
    put<uint64_t>(s.size());
    out_->append(s.data(), s.size());
  }

 private:
  std::string* out_;
};

class ByteReader {
 public:
  ByteReader(std::string_view in, std::string what) : in_(in), what_(std::move(what)) {}
  template <typename T>
  Status get(T* v) {
    static_assert(std::is_trivially_copyable_v<T>);
    if (in_.size() < sizeof(T)) return truncated();
    std::memcpy(v, in_.data(), sizeof(T));
    in_.remove_prefix(sizeof(T));
    return Status::ok();
  }
  template <typename T>
  Status get_vector(std::vector<T>* v) {
    uint64_t n = 0;
    SABOT_RETURN_IF_ERROR(get(&n));
    if (n > in_.size() / sizeof(T)) return truncated();
    v->resize(n);
    if (n > 0) std::memcpy(v->data(), in_.data(), n * sizeof(T));
    in_.remove_prefix(n * sizeof(T));
    return Status::ok();
  }
  Status get_bytes(std::string_view* s) {
    uint64_t n = 0;
    SABOT_RETURN_IF_ERROR(get(&n));
    if (n > in_.size()) return truncated();
    *s = in_.substr(0, n);
    in_.remove_prefix(n);
    return Status::ok();
  }
  Status expect_magic(uint32_t magic) {
    uint32_t m = 0;
    SABOT_RETURN_IF_ERROR(get(&m));
    if (m != magic) return Status::invalid_data(what_ + " snapshot: bad magic/version");
    return Status::ok();
  }
  bool done() const { return in_.empty(); }

 private:
  Status truncated() const { return Status::invalid_data(what_ + " snapshot is truncated"); }
  std::string_view in_;
  std::string what_;
};

// ---- buffered rows ----

struct RowRef {
  static constexpr uint32_t kNone = UINT32_MAX;
  uint32_t chunk = kNone;  // kNone: a missing row (null columns in outer output)
  uint32_t row = 0;
};

// Input batches kept while some of their rows are buffered. A chunk is freed when its last
// retained row is released (so one long-lived row keeps its whole batch alive; snapshots store
// whole live chunks for the same reason).
class RowStore {
 public:
  explicit RowStore(SchemaPtr schema) : schema_(std::move(schema)) {}
  const SchemaPtr& schema() const { return schema_; }
  // Adds a batch with no retained rows yet; call retain() per kept row, then drop_if_unused().
  uint32_t add(const RecordBatch& batch);
  void retain(uint32_t chunk, int64_t n = 1) { chunks_[chunk].live += n; }
  void release(RowRef ref);
  void drop_if_unused(uint32_t chunk);
  const RecordBatch& batch(uint32_t chunk) const { return chunks_[chunk].batch; }
  int64_t live_rows() const;
  int64_t live_chunks() const;
  void serialize(std::string* out) const;
  Status deserialize(ByteReader* in);

 private:
  struct Chunk {
    RecordBatch batch;
    int64_t live = 0;
    bool used = false;
  };
  SchemaPtr schema_;
  std::vector<Chunk> chunks_;
  std::vector<uint32_t> free_;
};

// Column `col` of the referenced rows (kNone refs give nulls).
Result<Array> gather_column(const RowStore& store, int col, std::span<const RowRef> refs);

// Event time of every row in milliseconds; null times become kNullTime.
inline constexpr int64_t kNullTime = std::numeric_limits<int64_t>::min();
Status time_millis(const Array& times, std::vector<int64_t>* out);
// Checks that column `name` exists and is timestamp or int64; returns its index.
Result<int> time_column(const columnar::Schema& schema, const std::string& name,
                        const std::string& what);

using sabot::sat_add;  // sabot/base/arith.h, for the joins' internal:: callers
using sabot::sat_sub;

// Splits `rows` (indices of a batch with `times`) into on-time and late rows (time <= threshold or
// null); late rows are emitted to side output `tag` or counted as dropped. `keep` receives the
// on-time row indices.
Status handle_late(const RecordBatch& batch, const std::vector<int64_t>& times, int64_t threshold,
                   bool to_side, const std::string& tag, const runtime::OperatorContext& ctx,
                   runtime::Output& out, std::vector<int32_t>* keep);

// Resolves key column names against a schema; the types are appended to `types`.
Result<std::vector<int>> key_columns(const columnar::Schema& schema,
                                     const std::vector<std::string>& names, const std::string& what,
                                     std::vector<columnar::DataType>* types);

// The key arrays of a batch.
std::vector<Array> key_arrays(const RecordBatch& batch, const std::vector<int>& cols);

// Output layout of a join: left fields, then right fields (renamed on clash), then `extra`.
Result<SchemaPtr> join_schema(const columnar::Schema& left, const columnar::Schema& right,
                              const std::string& right_prefix, bool left_nullable,
                              bool right_nullable, const std::vector<columnar::Field>& extra = {});

// Builds a joined batch from row references of both sides (equal lengths) plus extra columns.
Result<RecordBatch> join_rows(const SchemaPtr& out_schema, const RowStore& left,
                              std::span<const RowRef> left_refs, const RowStore& right,
                              std::span<const RowRef> right_refs, std::vector<Array> extra = {});

}  // namespace sabot::operators::internal
