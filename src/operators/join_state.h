// Internal building blocks shared by the join and dedup operators: a store of buffered input rows
// (kept as the input batches themselves, referenced by chunk and row), typed gathers that turn row
// references back into columns, event-time extraction, late-row handling, key-id mapping, and the
// one key-grouped encoding of buffered rows in snapshots (state/snapshot.h sections). One owner
// each, not thread-safe.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sabot/base/arith.h"
#include "sabot/base/bytes.h"
#include "sabot/columnar/record_batch.h"
#include "sabot/compute/grouper.h"
#include "sabot/operators/join.h"
#include "sabot/runtime/operator.h"
#include "sabot/state/snapshot.h"

namespace sabot::operators::internal {

using columnar::Array;
using columnar::RecordBatch;
using columnar::SchemaPtr;

// What every join factory resolves against its two input schemas.
struct ResolvedJoin {
  std::vector<int> key_cols[2];
  std::vector<columnar::DataType> key_types;
  int time_col[2] = {-1, -1};
  SchemaPtr out_schema;
};

// The joins whose buffered rows live in the job's keyed state backend (join_keyed.cc): what the
// join factories make instead of join.cc's operators when the backend is not the memory backend.
Result<std::unique_ptr<runtime::Operator>> make_keyed_join(const IntervalJoinOptions& o,
                                                           const ResolvedJoin& r,
                                                           std::span<const SchemaPtr> inputs,
                                                           const runtime::OperatorContext& ctx);
Result<std::unique_ptr<runtime::Operator>> make_keyed_join(const AsOfJoinOptions& o,
                                                           const ResolvedJoin& r,
                                                           std::span<const SchemaPtr> inputs,
                                                           const runtime::OperatorContext& ctx);
Result<std::unique_ptr<runtime::Operator>> make_keyed_join(const WindowJoinOptions& o,
                                                           const ResolvedJoin& r,
                                                           std::span<const SchemaPtr> inputs,
                                                           const runtime::OperatorContext& ctx);
Result<std::unique_ptr<runtime::Operator>> make_keyed_join(const RegularJoinOptions& o,
                                                           const ResolvedJoin& r,
                                                           std::span<const SchemaPtr> inputs,
                                                           const runtime::OperatorContext& ctx);

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

// ---- key-grouped snapshots ----
//
// Every join and dedup writes one envelope (state/snapshot.h) addressed by ctx.uid: an
// operator-wide section with the watermark where the operator has one, and one section per key
// group holding that key group's buffered rows. A section is a fixed sequence of row lists (e.g.
// the left rows, then the right rows); each list is one Arrow IPC stream (schema and one batch)
// of the rows' own input columns followed by int64 metadata columns (event time, matched flag,
// window start, ...). The key of a row is its key columns, so no separate key dictionary is
// written: restore re-inserts the keys into the operator's grouper. Restore merges: it appends
// the rows of the key groups this subtask owns (a key lives in one key group, so in one old
// subtask's snapshot) and takes the minimum of the operator-wide watermarks (a subtask restored
// from several old subtasks may not run ahead of any of them; in a job they are equal anyway).

inline constexpr uint16_t kJoinStateVersion = 1;

// The header of an operator's snapshot: ctx.uid, `state_type`, kJoinStateVersion, ctx's max
// parallelism.
state::SnapshotHeader snapshot_header(const runtime::OperatorContext& ctx,
                                      std::string_view state_type);

// The key group of every key id of `grouper` (from Grouper::group_hashes, i.e. the hash the keyed
// exchange routes by). `out` is resized, capacity reused.
void key_groups_of_keys(const compute::Grouper& grouper, const runtime::OperatorContext& ctx,
                        std::vector<uint32_t>* out);

// The schema of a list in a snapshot: `rows`' fields then a non-null int64 column per `meta` name.
SchemaPtr rows_schema(const columnar::Schema& rows, const std::vector<std::string>& meta);

// An int64 array holding `values` (no nulls).
Array int64_array(std::span<const int64_t> values);

// Writes one list: `columns` (the fields of `schema`, `num_rows` each) as a length-prefixed Arrow
// IPC stream.
void put_rows(ByteWriter& w, const SchemaPtr& schema, std::vector<Array> columns, int64_t num_rows);
// Writes the rows `refs` of `store` followed by the metadata columns `meta` (one value per ref
// each), with `schema` = rows_schema(store schema, names of meta).
Status put_store_rows(ByteWriter& w, const SchemaPtr& schema, const RowStore& store,
                      std::span<const RowRef> refs,
                      std::span<const std::vector<int64_t>* const> meta);
// Reads one list, refusing anything but a batch of `schema`. Errors name the reader's snapshot,
// key group and byte offset.
Result<RecordBatch> get_rows(ByteReader& r, const SchemaPtr& schema);
// The first `input->num_fields()` columns of restored rows: the batch to add to a RowStore.
RecordBatch input_part(const RecordBatch& rows, const SchemaPtr& input);
// Column `i` of restored rows as int64 values (a metadata column).
inline const int64_t* meta_values(const RecordBatch& rows, int i) {
  return rows.column(i).values<int64_t>();
}

// Buffered rows being collected for a snapshot, bucketed by key group: each key group holds the
// same fixed number of lists (e.g. left rows, right rows), each list its row references and a
// fixed number of metadata values per row. write() then emits one section per key group with
// rows, each list through put_store_rows.
class KeyGroupedRows {
 public:
  // `meta_per_list[l]`: the number of metadata columns of list l.
  KeyGroupedRows(int max_parallelism, std::vector<int> meta_per_list);
  void add(uint32_t key_group, int list, RowRef ref, std::initializer_list<int64_t> meta) {
    List& l = list_of(key_group, list);
    l.refs.push_back(ref);
    auto it = meta.begin();
    for (std::vector<int64_t>& m : l.meta) m.push_back(*it++);
  }
  // `stores[l]` holds the rows of list l, `schemas[l]` is rows_schema(its schema, meta names).
  Status write(state::SnapshotWriter& w, std::span<const RowStore* const> stores,
               std::span<const SchemaPtr> schemas) const;

 private:
  struct List {
    std::vector<RowRef> refs;
    std::vector<std::vector<int64_t>> meta;
  };
  List& list_of(uint32_t key_group, int list);
  std::vector<int> meta_per_list_;
  std::vector<std::vector<List>> groups_;  // by key group; empty: no rows
};

// Decodes a snapshot of `state_type` written for ctx.uid and feeds this subtask's part of it:
// `operator_wide` gets the operator-wide section (if any), `key_group` every section of a key
// group this subtask owns (subtask_for_key_group); other key groups are skipped. Each callback
// must read its whole payload (checked). Truncated, corrupted, foreign or misaddressed snapshots
// are refused with the uid, the state and the byte offset.
Status restore_sections(std::string_view bytes, const runtime::OperatorContext& ctx,
                        std::string_view state_type,
                        const std::function<Status(ByteReader&)>& operator_wide,
                        const std::function<Status(int32_t, ByteReader&)>& key_group);

// Merge rule of operator-wide watermarks over several restore_state calls: the first restore
// sets it, later ones keep the minimum.
inline void merge_watermark(int64_t restored, bool* any_restored, int64_t* wm) {
  *wm = *any_restored ? std::min(*wm, restored) : restored;
  *any_restored = true;
}

}  // namespace sabot::operators::internal
