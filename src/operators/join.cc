#include "sabot/operators/join.h"

#include <algorithm>
#include <deque>
#include <map>
#include <queue>

#include "operators/join_state.h"
#include "sabot/base/check.h"
#include "sabot/columnar/builder.h"
#include "sabot/compute/grouper.h"
#include "sabot/compute/selection.h"
#include "sabot/operators/keyed_process.h"
#include "sabot/runtime/metrics.h"
#include "sabot/state/key_registry.h"
#include "sabot/state/snapshot.h"
#include "sabot/state/value_bytes.h"

namespace sabot::operators {

using columnar::Array;
using columnar::DataType;
using columnar::RecordBatch;
using columnar::Schema;
using columnar::SchemaPtr;
using internal::ResolvedJoin;
using internal::RowRef;
using internal::RowStore;
using runtime::Operator;
using runtime::OperatorContext;
using runtime::OperatorFactory;
using runtime::Output;

namespace {

constexpr int64_t kMaxBound = int64_t{1} << 50;

// The rows_schema of both sides' buffered rows with the metadata columns `meta`.
struct SnapshotSchemas {
  SchemaPtr side[2];
  SnapshotSchemas(std::span<const SchemaPtr> inputs, const std::vector<std::string>& meta)
      : side{internal::rows_schema(*inputs[0], meta), internal::rows_schema(*inputs[1], meta)} {}
};

Status restore_watermark(ByteReader& r, bool* any_restored, int64_t* wm) {
  int64_t w = 0;
  SABOT_RETURN_IF_ERROR(r.get(&w));
  internal::merge_watermark(w, any_restored, wm);
  return Status::ok();
}

Status check_two_inputs(std::span<const SchemaPtr> inputs, const std::string& what) {
  if (inputs.size() != 2) {
    return Status::invalid_argument(what + " takes two inputs (left, right), got " +
                                    std::to_string(inputs.size()));
  }
  return Status::ok();
}

Result<ResolvedJoin> resolve(std::span<const SchemaPtr> inputs, const JoinCommon& c,
                             const EventTimeOptions* time, JoinKind kind, const std::string& what,
                             const std::vector<columnar::Field>& extra = {}) {
  SABOT_RETURN_IF_ERROR(check_two_inputs(inputs, what));
  ResolvedJoin r;
  std::vector<DataType> right_types;
  SABOT_ASSIGN_OR_RETURN(
      r.key_cols[0], internal::key_columns(*inputs[0], c.left_keys, what + " left", &r.key_types));
  SABOT_ASSIGN_OR_RETURN(r.key_cols[1], internal::key_columns(*inputs[1], c.right_keys,
                                                              what + " right", &right_types));
  if (r.key_types.size() != right_types.size()) {
    return Status::invalid_argument(what + ": " + std::to_string(c.left_keys.size()) +
                                    " left key columns but " + std::to_string(c.right_keys.size()) +
                                    " right key columns");
  }
  for (size_t i = 0; i < right_types.size(); ++i) {
    if (!(r.key_types[i] == right_types[i])) {
      return Status::type_error(what + ": left key '" + c.left_keys[i] + "' is " +
                                r.key_types[i].to_string() + " but right key '" + c.right_keys[i] +
                                "' is " + right_types[i].to_string());
    }
  }
  if (time) {
    SABOT_ASSIGN_OR_RETURN(r.time_col[0],
                           internal::time_column(*inputs[0], time->left_time, what + " left"));
    SABOT_ASSIGN_OR_RETURN(r.time_col[1],
                           internal::time_column(*inputs[1], time->right_time, what + " right"));
    if (time->allowed_lateness_ms < 0) {
      return Status::invalid_argument(what + ": allowed_lateness_ms is negative (" +
                                      std::to_string(time->allowed_lateness_ms) + ")");
    }
  }
  bool left_null = kind == JoinKind::kRight || kind == JoinKind::kFull;
  bool right_null = kind == JoinKind::kLeft || kind == JoinKind::kFull;
  SABOT_ASSIGN_OR_RETURN(r.out_schema, internal::join_schema(*inputs[0], *inputs[1], c.right_prefix,
                                                             left_null, right_null, extra));
  return r;
}

Result<SchemaPtr> late_side_schema(std::string_view tag, std::span<const SchemaPtr> inputs,
                                   const std::string& kind) {
  if (inputs.size() == 2 && tag == "late_left") return inputs[0];
  if (inputs.size() == 2 && tag == "late_right") return inputs[1];
  return Status::not_found("operator '" + kind + "' has no side output '" + std::string(tag) +
                           "' (it has late_left and late_right)");
}

const char* kLateTags[2] = {"late_left", "late_right"};

// Emits the pairs collected in `l`/`r` (if any) and clears them.
Status flush_pairs(const SchemaPtr& schema, const RowStore& left, std::vector<RowRef>* l,
                   const RowStore& right, std::vector<RowRef>* r, Output& out) {
  if (l->empty()) return Status::ok();
  SABOT_ASSIGN_OR_RETURN(RecordBatch b, internal::join_rows(schema, left, *l, right, *r));
  l->clear();
  r->clear();
  return out.emit(b);
}

// ============================== interval join ==============================

class IntervalJoinOperator final : public StatefulOperator {
 public:
  IntervalJoinOperator(IntervalJoinOptions o, ResolvedJoin r, std::span<const SchemaPtr> inputs,
                       std::unique_ptr<compute::Grouper> grouper)
      : o_(std::move(o)),
        r_(std::move(r)),
        grouper_(std::move(grouper)),
        store_{RowStore(inputs[0]), RowStore(inputs[1])},
        snap_(inputs, {"time", "matched"}) {
    outer_[0] = o_.kind == JoinKind::kLeft || o_.kind == JoinKind::kFull;
    outer_[1] = o_.kind == JoinKind::kRight || o_.kind == JoinKind::kFull;
    max_span_ = std::max({std::abs(o_.lower_ms), std::abs(o_.upper_ms), int64_t{0}});
  }

  Status open(const OperatorContext& ctx) override {
    ctx_ = ctx;
    return Status::ok();
  }

  int64_t buffered_rows() const override { return store_[0].live_rows() + store_[1].live_rows(); }
  int64_t dictionary_keys() const override { return grouper_->num_groups(); }

  Status process_batch(const RecordBatch& batch, int input, Output& out) override {
    if (batch.num_rows() == 0) return Status::ok();
    const int side = input == 0 ? 0 : 1;
    SABOT_RETURN_IF_ERROR(internal::time_millis(batch.column(r_.time_col[side]), &times_));
    SABOT_RETURN_IF_ERROR(internal::handle_late(batch, times_, threshold(),
                                                o_.time.late_to_side_output, kLateTags[side], ctx_,
                                                out, &keep_));
    if (keep_.empty()) return Status::ok();
    std::vector<Array> keys = internal::key_arrays(batch, r_.key_cols[side]);
    SABOT_RETURN_IF_ERROR(grouper_->consume(keys, &ids_));
    if (keys_.size() < grouper_->num_groups()) keys_.resize(grouper_->num_groups());
    const uint32_t chunk = store_[side].add(batch);
    const int other = 1 - side;
    // Bounds on the other side's time for a match with a row of time t.
    const int64_t lo_off = side == 0 ? o_.lower_ms : -o_.upper_ms;
    const int64_t hi_off = side == 0 ? o_.upper_ms : -o_.lower_ms;
    for (int32_t i : keep_) {
      const int64_t t = times_[static_cast<size_t>(i)];
      const uint32_t k = ids_[static_cast<size_t>(i)];
      KeyState& ks = keys_[k];
      const RowRef self{chunk, static_cast<uint32_t>(i)};
      uint8_t matched = 0;
      const int64_t lo = t + lo_off;
      const int64_t hi = t + hi_off;
      for (Entry& e : ks.rows[other]) {
        if (e.time >= lo && e.time <= hi) {
          e.matched = 1;
          matched = 1;
          if (side == 0) {
            out_l_.push_back(self);
            out_r_.push_back(e.ref);
          } else {
            out_l_.push_back(e.ref);
            out_r_.push_back(self);
          }
        }
      }
      ks.rows[side].push_back(Entry{t, self, matched});
      const int64_t exp = expiry(side, t);
      if (exp < ks.scheduled[side]) {
        ks.scheduled[side] = exp;
        heap_.push(HeapItem{exp, k, static_cast<uint8_t>(side)});
      }
    }
    store_[side].retain(chunk, static_cast<int64_t>(keep_.size()));
    return flush_pairs(r_.out_schema, store_[0], &out_l_, store_[1], &out_r_, out);
  }

  Status process_watermark(Timestamp time, Output& out) override {
    wm_ = std::max(wm_, time.millis());
    const int64_t t = threshold();
    while (!heap_.empty() && heap_.top().expire <= t) {
      HeapItem h = heap_.top();
      heap_.pop();
      KeyState& ks = keys_[h.key];
      if (ks.scheduled[h.side] != h.expire) continue;  // superseded by an earlier expiry
      std::vector<Entry>& rows = ks.rows[h.side];
      int64_t next = INT64_MAX;
      size_t w = 0;
      for (size_t j = 0; j < rows.size(); ++j) {
        const int64_t exp = expiry(h.side, rows[j].time);
        if (exp <= t) {
          expire_row(h.side, rows[j]);
        } else {
          next = std::min(next, exp);
          rows[w++] = rows[j];
        }
      }
      rows.resize(w);
      ks.scheduled[h.side] = next;
      if (next != INT64_MAX) heap_.push(HeapItem{next, h.key, h.side});
    }
    SABOT_RETURN_IF_ERROR(flush_expired(out));
    SABOT_RETURN_IF_ERROR(maybe_forget_keys());
    if (time == Timestamp::max()) return out.emit_watermark(time);
    return out.emit_watermark(Timestamp(internal::sat_sub(t, max_span_)));
  }

  Status finish(Output& out) override {
    for (KeyState& ks : keys_) {
      for (int side = 0; side < 2; ++side) {
        for (Entry& e : ks.rows[side]) expire_row(side, e);
        ks.rows[side].clear();
        ks.scheduled[side] = INT64_MAX;
      }
    }
    heap_ = {};
    return flush_expired(out);
  }

  // Snapshot: the watermark (operator-wide), then per key group the buffered rows of each side
  // with their event time and matched flag.
  Status snapshot_state(CheckpointId, std::string* out) override {
    state::SnapshotWriter w(out, internal::snapshot_header(ctx_, kStateType));
    w.begin_section(state::kOperatorWide).put<int64_t>(wm_);
    internal::key_groups_of_keys(*grouper_, ctx_, &kgs_);
    internal::KeyGroupedRows rows(ctx_.max_parallelism, {2, 2});
    for (size_t k = 0; k < keys_.size(); ++k) {
      for (int side = 0; side < 2; ++side) {
        for (const Entry& e : keys_[k].rows[side])
          rows.add(kgs_[k], side, e.ref, {e.time, e.matched});
      }
    }
    const RowStore* stores[2] = {&store_[0], &store_[1]};
    SABOT_RETURN_IF_ERROR(rows.write(w, stores, snap_.side));
    w.finish();
    return Status::ok();
  }

  Status restore_state(std::string_view data) override {
    return internal::restore_sections(
        data, ctx_, kStateType,
        [&](ByteReader& r) { return restore_watermark(r, &restored_, &wm_); },
        [&](int32_t, ByteReader& r) {
          for (int side = 0; side < 2; ++side) {
            SABOT_ASSIGN_OR_RETURN(RecordBatch rows, internal::get_rows(r, snap_.side[side]));
            SABOT_RETURN_IF_ERROR(restore_rows(side, rows));
          }
          return Status::ok();
        });
  }

 private:
  struct Entry {
    int64_t time;
    RowRef ref;
    uint8_t matched;
  };
  struct KeyState {
    std::vector<Entry> rows[2];
    int64_t scheduled[2] = {INT64_MAX, INT64_MAX};  // earliest expiry pushed to the heap
  };
  struct HeapItem {
    int64_t expire;
    uint32_t key;
    uint8_t side;
    bool operator>(const HeapItem& o) const { return expire > o.expire; }
  };

  static constexpr const char* kStateType = "interval-join";
  static constexpr uint32_t kMinDeadKeys = 64;

  // Forgets the keys without buffered rows: a new grouper of the live keys, keys_ and the expiry
  // heap renumbered. Expired rows are freed on the watermark, but the grouper and keys_ would keep
  // every key ever seen. The live keys are counted only once the dictionary has grown by
  // max(live, 64) keys since the last count, so the scan is amortized O(1) per new key.
  Status maybe_forget_keys() {
    const uint32_t n = grouper_->num_groups();
    if (n < next_key_scan_) return Status::ok();
    std::vector<uint32_t> live;
    for (uint32_t k = 0; k < n; ++k) {
      if (!keys_[k].rows[0].empty() || !keys_[k].rows[1].empty()) live.push_back(k);
    }
    const uint32_t dead = n - static_cast<uint32_t>(live.size());
    if (dead >= kMinDeadKeys && dead > live.size()) {
      SABOT_ASSIGN_OR_RETURN(std::vector<Array> keys, grouper_->keys_of(live));
      SABOT_ASSIGN_OR_RETURN(auto fresh, compute::Grouper::make(grouper_->key_types()));
      SABOT_RETURN_IF_ERROR(fresh->consume(keys, &ids_));
      SABOT_CHECK_EQ(fresh->num_groups(), static_cast<uint32_t>(live.size()));
      std::vector<KeyState> kept(live.size());
      heap_ = {};
      for (size_t i = 0; i < live.size(); ++i) {
        const uint32_t k = ids_[i];
        kept[k] = std::move(keys_[live[i]]);
        for (int side = 0; side < 2; ++side) {
          if (kept[k].scheduled[side] != INT64_MAX) {
            heap_.push(HeapItem{kept[k].scheduled[side], k, static_cast<uint8_t>(side)});
          }
        }
      }
      grouper_ = std::move(fresh);
      keys_ = std::move(kept);
    }
    next_key_scan_ =
        grouper_->num_groups() + std::max(static_cast<uint32_t>(live.size()), kMinDeadKeys);
    return Status::ok();
  }

  Status restore_rows(int side, const RecordBatch& rows) {
    const int64_t n = rows.num_rows();
    if (n == 0) return Status::ok();
    RecordBatch in = internal::input_part(rows, store_[side].schema());
    std::vector<Array> keys = internal::key_arrays(in, r_.key_cols[side]);
    SABOT_RETURN_IF_ERROR(grouper_->consume(keys, &ids_));
    if (keys_.size() < grouper_->num_groups()) keys_.resize(grouper_->num_groups());
    const uint32_t chunk = store_[side].add(in);
    store_[side].retain(chunk, n);
    const int nf = store_[side].schema()->num_fields();
    const int64_t* time = internal::meta_values(rows, nf);
    const int64_t* matched = internal::meta_values(rows, nf + 1);
    for (int64_t i = 0; i < n; ++i) {
      const uint32_t k = ids_[static_cast<size_t>(i)];
      KeyState& ks = keys_[k];
      ks.rows[side].push_back(Entry{time[i], RowRef{chunk, static_cast<uint32_t>(i)},
                                    matched[i] != 0 ? uint8_t{1} : uint8_t{0}});
      const int64_t exp = expiry(side, time[i]);
      if (exp < ks.scheduled[side]) {
        ks.scheduled[side] = exp;
        heap_.push(HeapItem{exp, k, static_cast<uint8_t>(side)});
      }
    }
    return Status::ok();
  }

  int64_t threshold() const {
    return wm_ == INT64_MIN ? INT64_MIN : internal::sat_sub(wm_, o_.time.allowed_lateness_ms);
  }
  // A row is unmatchable once its expiry is <= threshold().
  int64_t expiry(int side, int64_t t) const {
    return side == 0 ? internal::sat_add(t, o_.upper_ms) : internal::sat_sub(t, o_.lower_ms);
  }
  // Emits the outer rows of expired entries, then releases their rows.
  Status flush_expired(Output& out) {
    SABOT_RETURN_IF_ERROR(flush_pairs(r_.out_schema, store_[0], &out_l_, store_[1], &out_r_, out));
    for (const auto& [side, ref] : pending_release_) store_[side].release(ref);
    pending_release_.clear();
    return Status::ok();
  }
  void expire_row(int side, const Entry& e) {
    if (outer_[side] && !e.matched) {
      if (side == 0) {
        out_l_.push_back(e.ref);
        out_r_.push_back(RowRef{});
      } else {
        out_l_.push_back(RowRef{});
        out_r_.push_back(e.ref);
      }
      pending_release_.push_back({side, e.ref});
    } else {
      store_[side].release(e.ref);
    }
  }

  IntervalJoinOptions o_;
  ResolvedJoin r_;
  std::unique_ptr<compute::Grouper> grouper_;
  RowStore store_[2];
  SnapshotSchemas snap_;
  OperatorContext ctx_;
  bool outer_[2] = {false, false};
  int64_t max_span_ = 0;
  int64_t wm_ = INT64_MIN;
  bool restored_ = false;                  // a snapshot's watermark was restored (merge_watermark)
  std::vector<uint32_t> kgs_;              // key group by key id, scratch of snapshot_state
  uint32_t next_key_scan_ = kMinDeadKeys;  // dictionary size at which maybe_forget_keys counts
  std::vector<KeyState> keys_;
  std::priority_queue<HeapItem, std::vector<HeapItem>, std::greater<HeapItem>> heap_;
  // Per-batch scratch, reused.
  std::vector<int64_t> times_;
  std::vector<int32_t> keep_;
  std::vector<uint32_t> ids_;
  std::vector<RowRef> out_l_, out_r_;
  std::vector<std::pair<int, RowRef>> pending_release_;
};

// Option checks of the event-time joins (defined beside their operators).
Result<ResolvedJoin> check_join(const IntervalJoinOptions& o, std::span<const SchemaPtr> inputs,
                                const std::string& kind);
Result<ResolvedJoin> check_join(const AsOfJoinOptions& o, std::span<const SchemaPtr> inputs,
                                const std::string& kind);
Result<ResolvedJoin> check_join(const WindowJoinOptions& o, std::span<const SchemaPtr> inputs,
                                const std::string& kind);

// The factory shared by the event-time joins: validates with `check_join(options, inputs, kind)`,
// declares the late side outputs, and builds `Op` with a grouper for the join keys.
template <typename Options, typename Op>
class EventTimeJoinFactory final : public OperatorFactory {
 public:
  EventTimeJoinFactory(std::string kind, Options o) : kind_(std::move(kind)), o_(std::move(o)) {}
  std::string kind() const override { return kind_; }
  int num_logical_inputs() const override { return 2; }
  Result<SchemaPtr> output_schema(std::span<const SchemaPtr> inputs) const override {
    SABOT_ASSIGN_OR_RETURN(ResolvedJoin r, check_join(o_, inputs, kind_));
    return r.out_schema;
  }
  Result<SchemaPtr> side_output_schema(std::string_view tag,
                                       std::span<const SchemaPtr> inputs) const override {
    return late_side_schema(tag, inputs, kind_);
  }
  Result<std::unique_ptr<Operator>> create(std::span<const SchemaPtr> inputs,
                                           const OperatorContext& ctx) const override {
    SABOT_ASSIGN_OR_RETURN(ResolvedJoin r, check_join(o_, inputs, kind_));
    if (state_in_backend(ctx)) return internal::make_keyed_join(o_, r, inputs, ctx);
    SABOT_ASSIGN_OR_RETURN(auto g, compute::Grouper::make(r.key_types));
    return std::unique_ptr<Operator>(new Op(o_, std::move(r), inputs, std::move(g)));
  }

 private:
  std::string kind_;
  Options o_;
};

Result<ResolvedJoin> check_join(const IntervalJoinOptions& o, std::span<const SchemaPtr> inputs,
                                const std::string& kind) {
  if (o.lower_ms > o.upper_ms || std::abs(o.lower_ms) > kMaxBound ||
      std::abs(o.upper_ms) > kMaxBound) {
    return Status::invalid_argument("interval_join: bounds [" + std::to_string(o.lower_ms) + ", " +
                                    std::to_string(o.upper_ms) +
                                    "] must satisfy lower <= upper and lie within +-2^50 ms");
  }
  return resolve(inputs, o.common, &o.time, o.kind, kind);
}

// ============================== stream-table join ==============================

// The table (the latest right row of each key) is keyed state on the job's backend (ValueState
// "table": the row's values in the key registry's byte encoding, state/value_bytes.h), so on
// RocksDB it may be larger than memory and checkpoints incrementally. Right rows register their
// keys and write (or, with the delete marker set, clear) it; left rows only look their keys up.
const state::ValueStateDescriptor<std::string> kTableRow{"table"};

class StreamTableDriver final : public KeyedProcessDriver {
 public:
  StreamTableDriver(JoinKind kind, int delete_col, const Schema& right, SchemaPtr out)
      : kind_(kind), delete_col_(delete_col), out_(std::move(out)) {
    for (const auto& f : right.fields()) right_types_.push_back(f.type);
  }

  Status open(KeyedProcessScope* scope, const OperatorContext&) override {
    backend_ = scope->backend;
    SABOT_ASSIGN_OR_RETURN(table_, backend_->get_state(kTableRow));
    return Status::ok();
  }
  Status process_rows(const RecordBatch& batch, std::span<const state::KeyId> ids) override {
    return process_input_rows(0, batch, ids);
  }
  Status process_input_rows(int input, const RecordBatch& batch,
                            std::span<const state::KeyId> ids) override {
    return input == 0 ? probe(batch, ids) : upsert(batch, ids);
  }
  Status on_timer(Timestamp) override { return Status::ok(); }  // sets none
  Result<std::optional<RecordBatch>> take_output() override {
    std::optional<RecordBatch> b = std::move(pending_);
    pending_.reset();
    return b;
  }

 private:
  Status upsert(const RecordBatch& batch, std::span<const state::KeyId> ids) {
    const Array* del = delete_col_ >= 0 ? &batch.column(delete_col_) : nullptr;
    for (int64_t r = 0; r < batch.num_rows(); ++r) {
      backend_->prefetch_ahead(ids, static_cast<size_t>(r));
      backend_->set_current_key(ids[static_cast<size_t>(r)]);
      if (del != nullptr && del->is_valid(r) && del->bool_value(r)) {
        table_->clear();
        continue;
      }
      row_.clear();
      state::encode_values(batch.columns(), r, &row_);
      table_->update(row_);
    }
    return Status::ok();
  }

  // Each left row with its key's table row (inner: only rows that have one; left: the others
  // with nulls), the right columns appended from the stored rows' bytes.
  Status probe(const RecordBatch& batch, std::span<const state::KeyId> ids) {
    selected_.clear();
    builders_.clear();
    for (const auto& t : right_types_) builders_.push_back(columnar::make_builder(t));
    for (int64_t r = 0; r < batch.num_rows(); ++r) {
      backend_->prefetch_ahead(ids, static_cast<size_t>(r));
      const state::KeyId k = ids[static_cast<size_t>(r)];
      const std::string* row = nullptr;
      if (k != state::kNoKey) {
        backend_->set_current_key(k);
        row = table_->get();
      }
      if (row == nullptr) {
        if (kind_ == JoinKind::kInner) continue;
        for (auto& b : builders_) b->append_null();
      } else {
        SABOT_RETURN_IF_ERROR(state::append_values(*row, right_types_, builders_));
      }
      selected_.push_back(static_cast<int32_t>(r));
    }
    if (selected_.empty()) return Status::ok();
    std::vector<Array> cols;
    cols.reserve(static_cast<size_t>(out_->num_fields()));
    for (const Array& c : batch.columns()) {
      if (static_cast<int64_t>(selected_.size()) == batch.num_rows()) {
        cols.push_back(c);
      } else {
        SABOT_ASSIGN_OR_RETURN(Array taken, compute::take(c, selected_));
        cols.push_back(std::move(taken));
      }
    }
    for (auto& b : builders_) cols.push_back(b->finish());
    SABOT_ASSIGN_OR_RETURN(RecordBatch joined, RecordBatch::make(out_, std::move(cols)));
    pending_ = std::move(joined);
    return Status::ok();
  }

  JoinKind kind_;
  int delete_col_;
  SchemaPtr out_;
  std::vector<DataType> right_types_;
  state::KeyedStateBackend* backend_ = nullptr;
  state::ValueState<std::string>* table_ = nullptr;
  std::string row_;
  std::vector<int32_t> selected_;
  std::vector<std::unique_ptr<columnar::ArrayBuilder>> builders_;
  std::optional<RecordBatch> pending_;
};

class StreamTableJoinOperator final : public WrapsKeyedProcessOperator<StatefulOperator> {
 public:
  StreamTableJoinOperator(const StreamTableJoinOptions& o, const ResolvedJoin& r, int delete_col,
                          std::span<const SchemaPtr> inputs, const OperatorContext& ctx,
                          std::unique_ptr<state::KeyedStateBackend> backend)
      : ctx_(ctx), backend_(backend.get()), v1_schema_(internal::rows_schema(*inputs[1], {})) {
    keyed_ = std::make_unique<KeyedProcessOperator>(
        std::make_unique<StreamTableDriver>(o.kind, delete_col, *inputs[1], r.out_schema),
        std::vector<KeyedInput>{{r.key_cols[0], true}, {r.key_cols[1], false}}, std::move(backend),
        ctx);
  }

  Status open(const OperatorContext& ctx) override {
    ctx_ = ctx;
    return keyed_->open(ctx);
  }
  int64_t buffered_rows() const override {
    return static_cast<int64_t>(backend_->num_entries(kTableRow.name));
  }
  int64_t dictionary_keys() const override { return keyed_->num_keys(); }

  Status process_batch(const RecordBatch& batch, int input, Output& out) override {
    if (batch.num_rows() == 0) return Status::ok();
    return keyed_->process_batch(batch, input == 0 ? 0 : 1, out);
  }

  // Version 2: the keyed state's snapshot (full or incremental RocksDB) wrapped in one
  // operator-wide section (write_wrapped_keyed_snapshot; no value of its own: 0).
  Status snapshot_state(CheckpointId id, std::string* out) override {
    return snapshot_wrapped(ctx_, kStateType, kStateVersion, 0, id, out);
  }

  // Version 2: the keyed state (owned key groups). Version 1 (per key group the table rows as an
  // Arrow IPC stream, written before the table moved to the backend): the owned key groups' rows
  // applied as right rows.
  Status restore_state(std::string_view data) override {
    auto header = state::SnapshotReader::peek_header(data);
    if (header.is_ok() && header->state_version < 2) {
      DiscardOutput none;  // right rows emit nothing
      return internal::restore_sections(
          data, ctx_, kStateType, [](ByteReader&) { return Status::ok(); },
          [&](int32_t, ByteReader& r) {
            SABOT_ASSIGN_OR_RETURN(RecordBatch rows, internal::get_rows(r, v1_schema_));
            return rows.num_rows() == 0 ? Status::ok() : keyed_->process_batch(rows, 1, none);
          });
    }
    SABOT_ASSIGN_OR_RETURN(
        state::SnapshotReader reader,
        state::SnapshotReader::open(data, ctx_.uid, kStateType, kStateVersion,
                                    static_cast<uint32_t>(ctx_.max_parallelism)));
    for (size_t i = 0; i < reader.sections().size(); ++i) {
      ByteReader r = reader.section_reader(i);
      if (reader.sections()[i].key_group != state::kOperatorWide) {
        return r.invalid("a key-group section in version 2");
      }
      SABOT_ASSIGN_OR_RETURN(WrappedKeyedSnapshot w, read_wrapped_keyed_snapshot(r));
      SABOT_RETURN_IF_ERROR(keyed_->restore_state(w.keyed));
    }
    return Status::ok();
  }

 private:
  static constexpr const char* kStateType = "stream-table-join";
  static constexpr uint16_t kStateVersion = 2;

  class DiscardOutput final : public Output {
   public:
    Status emit(const RecordBatch&) override { return Status::ok(); }
    Status emit_watermark(Timestamp) override { return Status::ok(); }
  };

  OperatorContext ctx_;
  state::KeyedStateBackend* backend_;  // owned by keyed_
  SchemaPtr v1_schema_;                // a version 1 snapshot's rows: the right input's columns
};

class StreamTableJoinFactory final : public OperatorFactory {
 public:
  explicit StreamTableJoinFactory(StreamTableJoinOptions o) : o_(std::move(o)) {}
  std::string kind() const override { return "stream_table_join"; }
  int num_logical_inputs() const override { return 2; }
  Result<SchemaPtr> output_schema(std::span<const SchemaPtr> inputs) const override {
    int del = -1;
    SABOT_ASSIGN_OR_RETURN(ResolvedJoin r, check(inputs, &del));
    return r.out_schema;
  }
  Result<std::unique_ptr<Operator>> create(std::span<const SchemaPtr> inputs,
                                           const OperatorContext& ctx) const override {
    int del = -1;
    SABOT_ASSIGN_OR_RETURN(ResolvedJoin r, check(inputs, &del));
    SABOT_ASSIGN_OR_RETURN(auto backend, make_keyed_backend(ctx, r.key_types));
    return std::unique_ptr<Operator>(
        new StreamTableJoinOperator(o_, r, del, inputs, ctx, std::move(backend)));
  }

 private:
  Result<ResolvedJoin> check(std::span<const SchemaPtr> inputs, int* del) const {
    if (o_.kind != JoinKind::kInner && o_.kind != JoinKind::kLeft) {
      return Status::invalid_argument("stream_table_join supports inner and left joins only");
    }
    SABOT_ASSIGN_OR_RETURN(ResolvedJoin r, resolve(inputs, o_.common, nullptr, o_.kind, kind()));
    if (!o_.right_delete_marker.empty()) {
      *del = inputs[1]->field_index(o_.right_delete_marker);
      if (*del < 0) {
        return Status::invalid_argument("stream_table_join: delete marker column '" +
                                        o_.right_delete_marker + "' not found in the right input");
      }
      if (!(inputs[1]->field(*del).type == columnar::boolean())) {
        return Status::type_error("stream_table_join: delete marker column '" +
                                  o_.right_delete_marker + "' is " +
                                  inputs[1]->field(*del).type.to_string() + ", expected bool");
      }
    }
    return r;
  }
  StreamTableJoinOptions o_;
};

// ============================== as-of join ==============================

class AsOfJoinOperator final : public StatefulOperator {
 public:
  AsOfJoinOperator(AsOfJoinOptions o, ResolvedJoin r, std::span<const SchemaPtr> inputs,
                   std::unique_ptr<compute::Grouper> grouper)
      : o_(std::move(o)),
        r_(std::move(r)),
        grouper_(std::move(grouper)),
        store_{RowStore(inputs[0]), RowStore(inputs[1])},
        snap_(inputs, {"time"}) {}

  Status open(const OperatorContext& ctx) override {
    ctx_ = ctx;
    return Status::ok();
  }
  int64_t buffered_rows() const override { return store_[0].live_rows() + store_[1].live_rows(); }
  int64_t dictionary_keys() const override { return grouper_->num_groups(); }

  Status process_batch(const RecordBatch& batch, int input, Output& out) override {
    if (batch.num_rows() == 0) return Status::ok();
    const int side = input == 0 ? 0 : 1;
    SABOT_RETURN_IF_ERROR(internal::time_millis(batch.column(r_.time_col[side]), &times_));
    SABOT_RETURN_IF_ERROR(internal::handle_late(batch, times_, threshold(),
                                                o_.time.late_to_side_output, kLateTags[side], ctx_,
                                                out, &keep_));
    if (keep_.empty()) return Status::ok();
    std::vector<Array> keys = internal::key_arrays(batch, r_.key_cols[side]);
    SABOT_RETURN_IF_ERROR(grouper_->consume(keys, &ids_));
    if (rights_.size() < grouper_->num_groups()) rights_.resize(grouper_->num_groups());
    const uint32_t chunk = store_[side].add(batch);
    store_[side].retain(chunk, static_cast<int64_t>(keep_.size()));
    const int64_t q = min_query();
    for (int32_t i : keep_) {
      const int64_t t = times_[static_cast<size_t>(i)];
      const uint32_t k = ids_[static_cast<size_t>(i)];
      const RowRef ref{chunk, static_cast<uint32_t>(i)};
      if (side == 0) {
        pending_.push_back(Pending{t, k, ref});
        std::push_heap(pending_.begin(), pending_.end(), later);
        continue;
      }
      RightList& list = rights_[k];
      std::vector<Entry>& v = list.entries;
      if (v.size() == list.head || v.back().time <= t) {
        v.push_back(Entry{t, ref});
      } else {  // after every entry of the same time: the last arrival wins ties
        auto pos = std::upper_bound(v.begin() + static_cast<std::ptrdiff_t>(list.head), v.end(), t,
                                    [](int64_t x, const Entry& e) { return x < e.time; });
        v.insert(pos, Entry{t, ref});
      }
      trim(list, q);
    }
    return Status::ok();
  }

  Status process_watermark(Timestamp time, Output& out) override {
    wm_ = std::max(wm_, time.millis());
    SABOT_RETURN_IF_ERROR(fire(threshold(), out));
    const int64_t min_pending = pending_.empty() ? INT64_MAX : pending_.front().time;
    if (time == Timestamp::max()) return out.emit_watermark(time);
    return out.emit_watermark(Timestamp(std::min(threshold(), internal::sat_sub(min_pending, 1))));
  }

  Status finish(Output& out) override { return fire(INT64_MAX, out); }

  // Snapshot: the watermark (operator-wide), then per key group the pending left rows and the
  // live right rows (in list order: time, then arrival), each with its event time.
  Status snapshot_state(CheckpointId, std::string* out) override {
    state::SnapshotWriter w(out, internal::snapshot_header(ctx_, kStateType));
    w.begin_section(state::kOperatorWide).put<int64_t>(wm_);
    internal::key_groups_of_keys(*grouper_, ctx_, &kgs_);
    internal::KeyGroupedRows rows(ctx_.max_parallelism, {1, 1});
    for (const Pending& p : pending_) rows.add(kgs_[p.key], 0, p.ref, {p.time});
    for (size_t k = 0; k < rights_.size(); ++k) {
      const RightList& l = rights_[k];
      for (size_t i = l.head; i < l.entries.size(); ++i) {
        rows.add(kgs_[k], 1, l.entries[i].ref, {l.entries[i].time});
      }
    }
    const RowStore* stores[2] = {&store_[0], &store_[1]};
    SABOT_RETURN_IF_ERROR(rows.write(w, stores, snap_.side));
    w.finish();
    return Status::ok();
  }
  Status restore_state(std::string_view data) override {
    return internal::restore_sections(
        data, ctx_, kStateType,
        [&](ByteReader& r) { return restore_watermark(r, &restored_, &wm_); },
        [&](int32_t, ByteReader& r) {
          for (int side = 0; side < 2; ++side) {
            SABOT_ASSIGN_OR_RETURN(RecordBatch rows, internal::get_rows(r, snap_.side[side]));
            const int64_t n = rows.num_rows();
            if (n == 0) continue;
            RecordBatch in = internal::input_part(rows, store_[side].schema());
            std::vector<Array> keys = internal::key_arrays(in, r_.key_cols[side]);
            SABOT_RETURN_IF_ERROR(grouper_->consume(keys, &ids_));
            if (rights_.size() < grouper_->num_groups()) rights_.resize(grouper_->num_groups());
            const uint32_t chunk = store_[side].add(in);
            store_[side].retain(chunk, n);
            const int64_t* time = internal::meta_values(rows, in.num_columns());
            for (int64_t i = 0; i < n; ++i) {
              const uint32_t k = ids_[static_cast<size_t>(i)];
              const RowRef ref{chunk, static_cast<uint32_t>(i)};
              if (side == 0) {
                pending_.push_back(Pending{time[i], k, ref});
                std::push_heap(pending_.begin(), pending_.end(), later);
              } else {
                // In list order already: a key's rows come from one snapshot.
                rights_[k].entries.push_back(Entry{time[i], ref});
              }
            }
          }
          return Status::ok();
        });
  }

 private:
  struct Entry {
    int64_t time;
    RowRef ref;
  };
  struct Pending {
    int64_t time;
    uint32_t key;
    RowRef ref;
  };
  // pending_ is a min-heap on time: a watermark pops only the rows it resolves.
  static bool later(const Pending& a, const Pending& b) { return a.time > b.time; }
  // The right rows of one key: entries[head..] are live, sorted by time (ties: arrival order);
  // the dead prefix is cut off once it is the larger half.
  struct RightList {
    std::vector<Entry> entries;
    size_t head = 0;
  };

  static constexpr const char* kStateType = "asof-join";

  int64_t threshold() const {
    return wm_ == INT64_MIN ? INT64_MIN : internal::sat_sub(wm_, o_.time.allowed_lateness_ms);
  }
  // No pending or future left row has a time below this: pending rows with time <= threshold()
  // were resolved by the last watermark, and later ones would be late.
  int64_t min_query() const {
    return wm_ == INT64_MIN ? INT64_MIN : internal::sat_add(threshold(), 1);
  }

  // Drops the right rows no query at or after q can choose: every entry with time <= q but the
  // last one (that one too when it is out of tolerance for q). Called when a key gets a right row,
  // so a key's list stays about as long as its rows within the watermark's bound, at an amortized
  // O(1) per right row (no pass over the keys per watermark).
  void trim(RightList& list, int64_t q) {
    std::vector<Entry>& v = list.entries;
    size_t h = list.head;
    if (h == v.size() || v[h].time > q) return;
    size_t last = h;  // the last entry with time <= q
    while (last + 1 < v.size() && v[last + 1].time <= q) ++last;
    size_t drop_to = last;
    if (o_.tolerance_ms >= 0 && q - v[last].time > o_.tolerance_ms) drop_to = last + 1;
    for (; h < drop_to; ++h) store_[1].release(v[h].ref);
    list.head = h;
    if (h > 16 && 2 * h > v.size()) {
      v.erase(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(h));
      list.head = 0;
    }
  }

  // Resolves pending left rows with time <= t (in time order); at the end of input (t =
  // INT64_MAX) also drops every right row.
  Status fire(int64_t t, Output& out) {
    released_.clear();
    while (!pending_.empty() && pending_.front().time <= t) {
      std::pop_heap(pending_.begin(), pending_.end(), later);
      const Pending p = pending_.back();
      pending_.pop_back();
      const RightList& list = rights_[p.key];
      const auto begin = list.entries.begin() + static_cast<std::ptrdiff_t>(list.head);
      auto pos = std::upper_bound(begin, list.entries.end(), p.time,
                                  [](int64_t v, const Entry& e) { return v < e.time; });
      RowRef match;
      if (pos != begin) {
        const Entry& e = *(pos - 1);
        if (o_.tolerance_ms < 0 || p.time - e.time <= o_.tolerance_ms) match = e.ref;
      }
      if (match.chunk != RowRef::kNone || o_.kind == JoinKind::kLeft) {
        out_l_.push_back(p.ref);
        out_r_.push_back(match);
      }
      released_.push_back(p.ref);
    }
    SABOT_RETURN_IF_ERROR(flush_pairs(r_.out_schema, store_[0], &out_l_, store_[1], &out_r_, out));
    for (const RowRef& r : released_) store_[0].release(r);
    if (t == INT64_MAX) {  // end of input: nothing can query any more
      for (RightList& l : rights_) {
        for (size_t i = l.head; i < l.entries.size(); ++i) store_[1].release(l.entries[i].ref);
        l = RightList{};
      }
    }
    return Status::ok();
  }

  AsOfJoinOptions o_;
  ResolvedJoin r_;
  std::unique_ptr<compute::Grouper> grouper_;
  RowStore store_[2];
  SnapshotSchemas snap_;
  OperatorContext ctx_;
  int64_t wm_ = INT64_MIN;
  bool restored_ = false;  // see merge_watermark
  std::vector<uint32_t> kgs_;
  std::vector<RightList> rights_;  // by key id
  std::vector<Pending> pending_;   // min-heap on time (see later())
  std::vector<RowRef> released_;   // scratch of fire()
  std::vector<int64_t> times_;
  std::vector<int32_t> keep_;
  std::vector<uint32_t> ids_;
  std::vector<RowRef> out_l_, out_r_;
};

Result<ResolvedJoin> check_join(const AsOfJoinOptions& o, std::span<const SchemaPtr> inputs,
                                const std::string& kind) {
  if (o.kind != JoinKind::kInner && o.kind != JoinKind::kLeft) {
    return Status::invalid_argument("asof_join supports inner and left joins only");
  }
  return resolve(inputs, o.common, &o.time, o.kind, kind);
}

// ============================== window join ==============================

class WindowJoinOperator final : public StatefulOperator {
 public:
  WindowJoinOperator(WindowJoinOptions o, ResolvedJoin r, std::span<const SchemaPtr> inputs,
                     std::unique_ptr<compute::Grouper> grouper)
      : o_(std::move(o)),
        r_(std::move(r)),
        grouper_(std::move(grouper)),
        store_{RowStore(inputs[0]), RowStore(inputs[1])},
        snap_(inputs, {"window_start"}) {
    if (o_.slide_ms <= 0) o_.slide_ms = o_.size_ms;
  }

  Status open(const OperatorContext& ctx) override {
    ctx_ = ctx;
    return Status::ok();
  }
  int64_t buffered_rows() const override { return store_[0].live_rows() + store_[1].live_rows(); }
  int64_t dictionary_keys() const override { return grouper_->num_groups(); }

  Status process_batch(const RecordBatch& batch, int input, Output& out) override {
    if (batch.num_rows() == 0) return Status::ok();
    const int side = input == 0 ? 0 : 1;
    SABOT_RETURN_IF_ERROR(internal::time_millis(batch.column(r_.time_col[side]), &times_));
    SABOT_RETURN_IF_ERROR(internal::handle_late(batch, times_, threshold(),
                                                o_.time.late_to_side_output, kLateTags[side], ctx_,
                                                out, &keep_));
    if (keep_.empty()) return Status::ok();
    std::vector<Array> keys = internal::key_arrays(batch, r_.key_cols[side]);
    SABOT_RETURN_IF_ERROR(grouper_->consume(keys, &ids_));
    if (key_refs_.size() < grouper_->num_groups()) key_refs_.resize(grouper_->num_groups(), 0);
    const uint32_t chunk = store_[side].add(batch);
    int64_t refs = 0;
    for (int32_t i : keep_) {
      const int64_t t = times_[static_cast<size_t>(i)];
      const uint32_t k = ids_[static_cast<size_t>(i)];
      // Floor to the slide grid (also for negative times).
      int64_t start = t - (((t % o_.slide_ms) + o_.slide_ms) % o_.slide_ms);
      for (; start > t - o_.size_ms; start -= o_.slide_ms) {
        windows_[start].rows[side].push_back(KeyedRef{k, RowRef{chunk, static_cast<uint32_t>(i)}});
        add_key_ref(k);
        ++refs;
      }
    }
    store_[side].retain(chunk, refs);
    return Status::ok();
  }

  Status process_watermark(Timestamp time, Output& out) override {
    wm_ = std::max(wm_, time.millis());
    SABOT_RETURN_IF_ERROR(fire(threshold(), out));
    SABOT_RETURN_IF_ERROR(maybe_forget_keys());
    return out.emit_watermark(time == Timestamp::max() ? time : Timestamp(threshold()));
  }
  Status finish(Output& out) override { return fire(INT64_MAX, out); }

  // Snapshot: the watermark (operator-wide), then per key group the rows of each side with the
  // start of the window they wait in (a row of a sliding window once per window).
  Status snapshot_state(CheckpointId, std::string* out) override {
    state::SnapshotWriter w(out, internal::snapshot_header(ctx_, kStateType));
    w.begin_section(state::kOperatorWide).put<int64_t>(wm_);
    internal::key_groups_of_keys(*grouper_, ctx_, &kgs_);
    internal::KeyGroupedRows rows(ctx_.max_parallelism, {1, 1});
    for (const auto& [start, win] : windows_) {
      for (int side = 0; side < 2; ++side) {
        for (const KeyedRef& r : win.rows[side]) rows.add(kgs_[r.key], side, r.ref, {start});
      }
    }
    const RowStore* stores[2] = {&store_[0], &store_[1]};
    SABOT_RETURN_IF_ERROR(rows.write(w, stores, snap_.side));
    w.finish();
    return Status::ok();
  }
  Status restore_state(std::string_view data) override {
    return internal::restore_sections(
        data, ctx_, kStateType,
        [&](ByteReader& r) { return restore_watermark(r, &restored_, &wm_); },
        [&](int32_t, ByteReader& r) {
          for (int side = 0; side < 2; ++side) {
            SABOT_ASSIGN_OR_RETURN(RecordBatch rows, internal::get_rows(r, snap_.side[side]));
            const int64_t n = rows.num_rows();
            if (n == 0) continue;
            RecordBatch in = internal::input_part(rows, store_[side].schema());
            std::vector<Array> keys = internal::key_arrays(in, r_.key_cols[side]);
            SABOT_RETURN_IF_ERROR(grouper_->consume(keys, &ids_));
            if (key_refs_.size() < grouper_->num_groups()) {
              key_refs_.resize(grouper_->num_groups(), 0);
            }
            const uint32_t chunk = store_[side].add(in);
            store_[side].retain(chunk, n);
            const int64_t* start = internal::meta_values(rows, in.num_columns());
            for (int64_t i = 0; i < n; ++i) {
              const uint32_t k = ids_[static_cast<size_t>(i)];
              windows_[start[i]].rows[side].push_back(
                  KeyedRef{k, RowRef{chunk, static_cast<uint32_t>(i)}});
              add_key_ref(k);
            }
          }
          return Status::ok();
        });
  }

 private:
  struct KeyedRef {
    uint32_t key;
    RowRef ref;
  };
  struct Window {
    std::vector<KeyedRef> rows[2];
  };

  static constexpr const char* kStateType = "window-join";
  // Keys are forgotten only once this many are dead, so a join over few keys never rebuilds.
  static constexpr uint32_t kMinDeadKeys = 64;

  int64_t threshold() const {
    return wm_ == INT64_MIN ? INT64_MIN : internal::sat_sub(wm_, o_.time.allowed_lateness_ms);
  }

  void add_key_ref(uint32_t k) {
    if (key_refs_[k]++ == 0) ++live_keys_;
  }
  void drop_key_ref(uint32_t k) {
    if (--key_refs_[k] == 0) --live_keys_;
  }

  // Forgets the keys no open window holds: a new grouper of the live keys, every key id in the
  // windows renumbered. A fired window frees its rows, but the grouper would keep every key ever
  // seen (Nexmark q8 grew with the number of sellers). Amortized O(1) per key: runs only when the
  // dead keys outnumber the live ones.
  Status maybe_forget_keys() {
    const uint32_t num_keys = grouper_->num_groups();
    const uint32_t dead = num_keys - live_keys_;
    if (dead < kMinDeadKeys || dead <= live_keys_) return Status::ok();
    std::vector<uint32_t> live;
    live.reserve(live_keys_);
    for (uint32_t k = 0; k < num_keys; ++k) {
      if (key_refs_[k] > 0) live.push_back(k);
    }
    SABOT_ASSIGN_OR_RETURN(std::vector<Array> keys, grouper_->keys_of(live));
    SABOT_ASSIGN_OR_RETURN(auto fresh, compute::Grouper::make(grouper_->key_types()));
    std::vector<uint32_t> ids;
    SABOT_RETURN_IF_ERROR(fresh->consume(keys, &ids));
    SABOT_CHECK_EQ(fresh->num_groups(), static_cast<uint32_t>(live.size()));
    std::vector<uint32_t> renumber(num_keys, UINT32_MAX);
    std::vector<uint32_t> key_refs(live.size(), 0);
    for (size_t i = 0; i < live.size(); ++i) {
      renumber[live[i]] = ids[i];
      key_refs[ids[i]] = key_refs_[live[i]];
    }
    for (auto& [start, win] : windows_) {
      for (int side = 0; side < 2; ++side) {
        for (KeyedRef& r : win.rows[side]) r.key = renumber[r.key];
      }
    }
    grouper_ = std::move(fresh);
    key_refs_ = std::move(key_refs);
    return Status::ok();
  }

  // Fires every window whose last millisecond (end - 1) is <= t.
  Status fire(int64_t t, Output& out) {
    while (!windows_.empty()) {
      auto it = windows_.begin();
      const int64_t start = it->first;
      if (t != INT64_MAX && internal::sat_add(start, o_.size_ms - 1) > t) break;
      Window& win = it->second;
      auto by_key = [](const KeyedRef& a, const KeyedRef& b) { return a.key < b.key; };
      std::stable_sort(win.rows[0].begin(), win.rows[0].end(), by_key);
      std::stable_sort(win.rows[1].begin(), win.rows[1].end(), by_key);
      size_t i = 0, j = 0;
      const auto& L = win.rows[0];
      const auto& R = win.rows[1];
      const bool left_outer = o_.kind == JoinKind::kLeft || o_.kind == JoinKind::kFull;
      const bool right_outer = o_.kind == JoinKind::kRight || o_.kind == JoinKind::kFull;
      auto unmatched_left = [&](size_t a) {
        if (!left_outer) return;
        out_l_.push_back(L[a].ref);
        out_r_.push_back(RowRef{});  // missing: nulls
      };
      auto unmatched_right = [&](size_t b) {
        if (!right_outer) return;
        out_l_.push_back(RowRef{});
        out_r_.push_back(R[b].ref);
      };
      while (i < L.size() || j < R.size()) {
        if (j == R.size() || (i < L.size() && L[i].key < R[j].key)) {
          unmatched_left(i++);
        } else if (i == L.size() || R[j].key < L[i].key) {
          unmatched_right(j++);
        } else {
          const uint32_t k = L[i].key;
          size_t i2 = i, j2 = j;
          while (i2 < L.size() && L[i2].key == k) ++i2;
          while (j2 < R.size() && R[j2].key == k) ++j2;
          for (size_t a = i; a < i2; ++a) {
            for (size_t b = j; b < j2; ++b) {
              out_l_.push_back(L[a].ref);
              out_r_.push_back(R[b].ref);
            }
          }
          i = i2;
          j = j2;
        }
      }
      if (!out_l_.empty()) {
        const int64_t n = static_cast<int64_t>(out_l_.size());
        std::vector<Array> extra = {
            Array::make_repeated(columnar::Scalar::of_timestamp(start, columnar::TimeUnit::kMilli),
                                 n),
            Array::make_repeated(
                columnar::Scalar::of_timestamp(start + o_.size_ms, columnar::TimeUnit::kMilli), n)};
        SABOT_ASSIGN_OR_RETURN(
            RecordBatch b, internal::join_rows(r_.out_schema, store_[0], out_l_, store_[1], out_r_,
                                               std::move(extra)));
        out_l_.clear();
        out_r_.clear();
        SABOT_RETURN_IF_ERROR(out.emit(b));
      }
      for (int side = 0; side < 2; ++side) {
        for (const KeyedRef& r : win.rows[side]) {
          store_[side].release(r.ref);
          drop_key_ref(r.key);
        }
      }
      windows_.erase(it);
    }
    return Status::ok();
  }

  WindowJoinOptions o_;
  ResolvedJoin r_;
  std::unique_ptr<compute::Grouper> grouper_;
  RowStore store_[2];
  SnapshotSchemas snap_;
  OperatorContext ctx_;
  int64_t wm_ = INT64_MIN;
  bool restored_ = false;              // see merge_watermark
  std::map<int64_t, Window> windows_;  // by window start
  std::vector<uint32_t> key_refs_;     // by key id: references in windows_
  uint32_t live_keys_ = 0;             // key ids with key_refs_ > 0
  std::vector<uint32_t> kgs_;
  std::vector<int64_t> times_;
  std::vector<int32_t> keep_;
  std::vector<uint32_t> ids_;
  std::vector<RowRef> out_l_, out_r_;
};

std::vector<columnar::Field> window_fields() {
  return {columnar::field("window_start", columnar::timestamp(columnar::TimeUnit::kMilli), false),
          columnar::field("window_end", columnar::timestamp(columnar::TimeUnit::kMilli), false)};
}

Result<ResolvedJoin> check_join(const WindowJoinOptions& o, std::span<const SchemaPtr> inputs,
                                const std::string& kind) {
  const int64_t slide = o.slide_ms <= 0 ? o.size_ms : o.slide_ms;
  if (o.size_ms <= 0 || o.size_ms > kMaxBound || slide > o.size_ms || o.size_ms % slide != 0) {
    return Status::invalid_argument(
        "window_join: size_ms " + std::to_string(o.size_ms) + " and slide_ms " +
        std::to_string(o.slide_ms) +
        " must be positive with size a multiple of slide (at most 2^50 ms)");
  }
  return resolve(inputs, o.common, &o.time, o.kind, kind, window_fields());
}

// ============================== regular join ==============================

class RegularJoinOperator final : public StatefulOperator {
 public:
  RegularJoinOperator(RegularJoinOptions o, ResolvedJoin r, std::span<const SchemaPtr> inputs,
                      std::unique_ptr<compute::Grouper> grouper)
      : o_(std::move(o)),
        r_(std::move(r)),
        grouper_(std::move(grouper)),
        store_{RowStore(inputs[0]), RowStore(inputs[1])},
        snap_(inputs, {"expire", "matched"}) {
    outer_[0] = o_.kind == JoinKind::kLeft || o_.kind == JoinKind::kFull;
    outer_[1] = o_.kind == JoinKind::kRight || o_.kind == JoinKind::kFull;
  }

  Status open(const OperatorContext& ctx) override {
    ctx_ = ctx;
    return Status::ok();
  }
  int64_t buffered_rows() const override { return store_[0].live_rows() + store_[1].live_rows(); }
  int64_t dictionary_keys() const override { return grouper_->num_groups(); }

  Status process_batch(const RecordBatch& batch, int input, Output& out) override {
    SABOT_RETURN_IF_ERROR(expire(ctx_.clock->now().millis(), out));
    if (batch.num_rows() == 0) return Status::ok();
    const int side = input == 0 ? 0 : 1;
    const int other = 1 - side;
    std::vector<Array> keys = internal::key_arrays(batch, r_.key_cols[side]);
    SABOT_RETURN_IF_ERROR(grouper_->consume(keys, &ids_));
    if (keys_.size() < grouper_->num_groups()) keys_.resize(grouper_->num_groups());
    const uint32_t chunk = store_[side].add(batch);
    const int64_t exp = o_.state_ttl_ms > 0
                            ? internal::sat_add(ctx_.clock->now().millis(), o_.state_ttl_ms)
                            : INT64_MAX;
    const int64_t n = batch.num_rows();
    for (int64_t i = 0; i < n; ++i) {
      const uint32_t k = ids_[static_cast<size_t>(i)];
      KeyRows& kr = keys_[k].rows[other];
      const RowRef self{chunk, static_cast<uint32_t>(i)};
      uint8_t matched = 0;
      for (size_t j = kr.head; j < kr.rows.size(); ++j) {
        Entry& e = kr.rows[j];
        e.matched = 1;
        matched = 1;
        out_l_.push_back(side == 0 ? self : e.ref);
        out_r_.push_back(side == 0 ? e.ref : self);
      }
      keys_[k].rows[side].rows.push_back(Entry{exp, self, matched});
      if (o_.state_ttl_ms > 0) queue_[side].push_back(QueueItem{exp, k});
    }
    store_[side].retain(chunk, n);
    return flush_pairs(r_.out_schema, store_[0], &out_l_, store_[1], &out_r_, out);
  }

  Status process_watermark(Timestamp time, Output& out) override {
    SABOT_RETURN_IF_ERROR(expire(ctx_.clock->now().millis(), out));
    return out.emit_watermark(time);
  }

  Status finish(Output& out) override {
    for (KeyState& ks : keys_) {
      for (int side = 0; side < 2; ++side) {
        KeyRows& kr = ks.rows[side];
        for (size_t j = kr.head; j < kr.rows.size(); ++j) drop_row(side, kr.rows[j]);
        kr.rows.clear();
        kr.head = 0;
      }
    }
    queue_[0].clear();
    queue_[1].clear();
    return flush_dropped(out);
  }

  // Snapshot: per key group the stored rows of each side (in arrival order) with their expiry
  // time (processing time) and matched flag. No operator-wide state; the TTL queues are rebuilt
  // from the expiry times on restore.
  Status snapshot_state(CheckpointId, std::string* out) override {
    state::SnapshotWriter w(out, internal::snapshot_header(ctx_, kStateType));
    internal::key_groups_of_keys(*grouper_, ctx_, &kgs_);
    internal::KeyGroupedRows rows(ctx_.max_parallelism, {2, 2});
    for (size_t k = 0; k < keys_.size(); ++k) {
      for (int side = 0; side < 2; ++side) {
        const KeyRows& kr = keys_[k].rows[side];
        for (size_t j = kr.head; j < kr.rows.size(); ++j) {
          rows.add(kgs_[k], side, kr.rows[j].ref, {kr.rows[j].expire, kr.rows[j].matched});
        }
      }
    }
    const RowStore* stores[2] = {&store_[0], &store_[1]};
    SABOT_RETURN_IF_ERROR(rows.write(w, stores, snap_.side));
    w.finish();
    return Status::ok();
  }
  Status restore_state(std::string_view data) override {
    SABOT_RETURN_IF_ERROR(internal::restore_sections(
        data, ctx_, kStateType, [](ByteReader&) { return Status::ok(); },
        [&](int32_t, ByteReader& r) {
          for (int side = 0; side < 2; ++side) {
            SABOT_ASSIGN_OR_RETURN(RecordBatch rows, internal::get_rows(r, snap_.side[side]));
            const int64_t n = rows.num_rows();
            if (n == 0) continue;
            RecordBatch in = internal::input_part(rows, store_[side].schema());
            std::vector<Array> keys = internal::key_arrays(in, r_.key_cols[side]);
            SABOT_RETURN_IF_ERROR(grouper_->consume(keys, &ids_));
            if (keys_.size() < grouper_->num_groups()) keys_.resize(grouper_->num_groups());
            const uint32_t chunk = store_[side].add(in);
            store_[side].retain(chunk, n);
            const int64_t* expire = internal::meta_values(rows, in.num_columns());
            const int64_t* matched = internal::meta_values(rows, in.num_columns() + 1);
            for (int64_t i = 0; i < n; ++i) {
              keys_[ids_[static_cast<size_t>(i)]].rows[side].rows.push_back(
                  Entry{expire[i], RowRef{chunk, static_cast<uint32_t>(i)},
                        matched[i] != 0 ? uint8_t{1} : uint8_t{0}});
            }
          }
          return Status::ok();
        }));
    rebuild_queues();
    return Status::ok();
  }

 private:
  struct Entry {
    int64_t expire;
    RowRef ref;
    uint8_t matched;
  };
  // Rows of one key and side in arrival (= expiry) order; [0, head) are already removed.
  struct KeyRows {
    std::vector<Entry> rows;
    size_t head = 0;
  };
  struct KeyState {
    KeyRows rows[2];
  };
  struct QueueItem {
    int64_t expire;
    uint32_t key;
  };

  static constexpr const char* kStateType = "regular-join";

  // The TTL queues from the stored rows: each side's (expiry, key) in expiry order. A key's rows
  // are in expiry order (arrival order), and the stable sort keeps them so, which is what
  // expire() relies on.
  void rebuild_queues() {
    if (o_.state_ttl_ms <= 0) return;
    for (int side = 0; side < 2; ++side) {
      std::vector<QueueItem> q;
      for (size_t k = 0; k < keys_.size(); ++k) {
        const KeyRows& kr = keys_[k].rows[side];
        for (size_t j = kr.head; j < kr.rows.size(); ++j) {
          q.push_back(QueueItem{kr.rows[j].expire, static_cast<uint32_t>(k)});
        }
      }
      std::stable_sort(q.begin(), q.end(),
                       [](const QueueItem& a, const QueueItem& b) { return a.expire < b.expire; });
      queue_[side].assign(q.begin(), q.end());
    }
  }

  // Removes rows whose TTL ran out by processing time `now` (oldest first on each side).
  Status expire(int64_t now, Output& out) {
    if (o_.state_ttl_ms <= 0) return Status::ok();
    for (int side = 0; side < 2; ++side) {
      auto& q = queue_[side];
      while (!q.empty() && q.front().expire <= now) {
        KeyRows& kr = keys_[q.front().key].rows[side];
        drop_row(side, kr.rows[kr.head++]);
        if (kr.head == kr.rows.size()) {
          kr.rows.clear();
          kr.head = 0;
        } else if (kr.head > 16 && kr.head * 2 > kr.rows.size()) {
          kr.rows.erase(kr.rows.begin(), kr.rows.begin() + static_cast<std::ptrdiff_t>(kr.head));
          kr.head = 0;
        }
        q.pop_front();
      }
    }
    return flush_dropped(out);
  }
  void drop_row(int side, const Entry& e) {
    if (outer_[side] && !e.matched) {
      out_l_.push_back(side == 0 ? e.ref : RowRef{});
      out_r_.push_back(side == 0 ? RowRef{} : e.ref);
    }
    dropped_.push_back({side, e.ref});
  }
  Status flush_dropped(Output& out) {
    SABOT_RETURN_IF_ERROR(flush_pairs(r_.out_schema, store_[0], &out_l_, store_[1], &out_r_, out));
    for (const auto& [side, ref] : dropped_) store_[side].release(ref);
    dropped_.clear();
    return Status::ok();
  }

  RegularJoinOptions o_;
  ResolvedJoin r_;
  std::unique_ptr<compute::Grouper> grouper_;
  RowStore store_[2];
  SnapshotSchemas snap_;
  OperatorContext ctx_;
  std::vector<uint32_t> kgs_;
  bool outer_[2] = {false, false};
  std::vector<KeyState> keys_;
  std::deque<QueueItem> queue_[2];
  std::vector<uint32_t> ids_;
  std::vector<RowRef> out_l_, out_r_;
  std::vector<std::pair<int, RowRef>> dropped_;
};

class RegularJoinFactory final : public OperatorFactory {
 public:
  explicit RegularJoinFactory(RegularJoinOptions o) : o_(std::move(o)) {}
  std::string kind() const override { return "regular_join"; }
  int num_logical_inputs() const override { return 2; }
  Result<SchemaPtr> output_schema(std::span<const SchemaPtr> inputs) const override {
    SABOT_ASSIGN_OR_RETURN(ResolvedJoin r, resolve(inputs, o_.common, nullptr, o_.kind, kind()));
    return r.out_schema;
  }
  Result<std::unique_ptr<Operator>> create(std::span<const SchemaPtr> inputs,
                                           const OperatorContext& ctx) const override {
    SABOT_ASSIGN_OR_RETURN(ResolvedJoin r, resolve(inputs, o_.common, nullptr, o_.kind, kind()));
    if (state_in_backend(ctx)) return internal::make_keyed_join(o_, r, inputs, ctx);
    SABOT_ASSIGN_OR_RETURN(auto g, compute::Grouper::make(r.key_types));
    return std::unique_ptr<Operator>(
        new RegularJoinOperator(o_, std::move(r), inputs, std::move(g)));
  }

 private:
  RegularJoinOptions o_;
};

}  // namespace

std::shared_ptr<const OperatorFactory> interval_join(IntervalJoinOptions options) {
  return std::make_shared<EventTimeJoinFactory<IntervalJoinOptions, IntervalJoinOperator>>(
      "interval_join", std::move(options));
}

}  // namespace sabot::operators

namespace sabot::operators {

std::shared_ptr<const OperatorFactory> stream_table_join(StreamTableJoinOptions options) {
  return std::make_shared<StreamTableJoinFactory>(std::move(options));
}
std::shared_ptr<const OperatorFactory> asof_join(AsOfJoinOptions options) {
  return std::make_shared<EventTimeJoinFactory<AsOfJoinOptions, AsOfJoinOperator>>(
      "asof_join", std::move(options));
}
std::shared_ptr<const OperatorFactory> window_join(WindowJoinOptions options) {
  return std::make_shared<EventTimeJoinFactory<WindowJoinOptions, WindowJoinOperator>>(
      "window_join", std::move(options));
}
std::shared_ptr<const OperatorFactory> regular_join(RegularJoinOptions options) {
  return std::make_shared<RegularJoinFactory>(std::move(options));
}

}  // namespace sabot::operators
