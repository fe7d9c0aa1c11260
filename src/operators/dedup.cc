#include "sabot/operators/dedup.h"

#include "operators/join_state.h"
#include "sabot/compute/selection.h"
#include "sabot/operators/join.h"
#include "sabot/operators/keyed_process.h"
#include "sabot/state/snapshot.h"

namespace sabot::operators {

using columnar::RecordBatch;
using columnar::SchemaPtr;
using runtime::Operator;
using runtime::OperatorContext;
using runtime::OperatorFactory;
using runtime::Output;

namespace {

constexpr std::string_view kStateType = "deduplicate";
// Version 2: one operator-wide section, [i64 watermark][bytes: the keyed state's snapshot] (the
// KeyedProcessOperator's, full or incremental RocksDB). Version 1 (restore only): the watermark,
// then per key group its keys and the time of the row last emitted for each, as rows.
constexpr uint16_t kStateVersion = 2;
// The keyed state: per key the time of the row last emitted for it.
const state::ValueStateDescriptor<int64_t> kFirst{"first"};

// What the operator hands the driver with each batch of on-time rows.
struct DedupBatch {
  int64_t threshold = INT64_MIN;                // watermark - allowed lateness
  const std::vector<int64_t>* times = nullptr;  // per row; null without a time column
  int64_t new_keys = 0;  // keys the driver gave their first entry (counted up)
};

// Per row: emit it and remember its time when its key has no entry or its entry expired.
class DedupDriver final : public KeyedProcessDriver {
 public:
  DedupDriver(int64_t ttl_ms, DedupBatch* in) : ttl_ms_(ttl_ms), in_(in) {}

  Status open(KeyedProcessScope* scope, const runtime::OperatorContext&) override {
    backend_ = scope->backend;
    SABOT_ASSIGN_OR_RETURN(first_, backend_->get_state(kFirst));
    return Status::ok();
  }
  Status process_rows(const RecordBatch& batch, std::span<const state::KeyId> ids) override {
    const int64_t t = in_->threshold;
    const bool expires = ttl_ms_ > 0 && in_->times != nullptr && t != INT64_MIN;
    emit_.clear();
    for (size_t i = 0; i < ids.size(); ++i) {
      backend_->prefetch_ahead(ids, i);
      backend_->set_current_key(ids[i]);
      const int64_t* f = first_->get();
      if (f != nullptr && !(expires && t >= internal::sat_add(*f, ttl_ms_))) continue;
      if (f == nullptr) ++in_->new_keys;
      first_->update(in_->times != nullptr ? (*in_->times)[i] : 0);
      emit_.push_back(static_cast<int32_t>(i));
    }
    if (emit_.empty()) return Status::ok();
    if (emit_.size() == ids.size()) {
      pending_ = batch;
      return Status::ok();
    }
    SABOT_ASSIGN_OR_RETURN(pending_, compute::take(batch, emit_));
    return Status::ok();
  }
  Status on_timer(Timestamp) override { return Status::ok(); }  // sets none
  Result<std::optional<RecordBatch>> take_output() override { return std::exchange(pending_, {}); }

 private:
  int64_t ttl_ms_;
  DedupBatch* in_;
  state::KeyedStateBackend* backend_ = nullptr;
  state::ValueState<int64_t>* first_ = nullptr;
  std::vector<int32_t> emit_;
  std::optional<RecordBatch> pending_;
};

// Drops late rows, then hands the rest to a KeyedProcessOperator whose keyed state (on the job's
// backend, memory or RocksDB) remembers each key's first row; its snapshots, full or incremental,
// nest in this operator's.
class DedupOperator final : public WrapsKeyedProcessOperator<StatefulOperator> {
 public:
  DedupOperator(DedupOptions o, std::vector<int> key_cols, int time_col,
                std::unique_ptr<state::KeyedStateBackend> backend, const OperatorContext& ctx,
                const columnar::Schema& input)
      : o_(std::move(o)),
        key_cols_(std::move(key_cols)),
        time_col_(time_col),
        backend_(backend.get()) {
    keyed_ = std::make_unique<KeyedProcessOperator>(std::make_unique<DedupDriver>(o_.ttl_ms, &in_),
                                                    key_cols_, std::move(backend), ctx);
    std::vector<columnar::Field> keys;
    for (int c : key_cols_) keys.push_back(input.field(c));
    v1_schema_ = internal::rows_schema(**columnar::Schema::make(std::move(keys)), {"first"});
  }

  Status open(const OperatorContext& ctx) override {
    ctx_ = ctx;
    SABOT_RETURN_IF_ERROR(keyed_->open(ctx));
    SABOT_ASSIGN_OR_RETURN(first_, backend_->get_state(kFirst));
    return Status::ok();
  }
  int64_t buffered_rows() const override { return restored_keys_ + in_.new_keys; }
  int64_t dictionary_keys() const override { return keyed_->num_keys(); }

  Status process_batch(const RecordBatch& batch, int, Output& out) override {
    const int64_t n = batch.num_rows();
    if (n == 0) return Status::ok();
    in_.threshold = threshold();
    in_.times = nullptr;
    if (time_col_ < 0) return keyed_->process_batch(batch, 0, out);
    SABOT_RETURN_IF_ERROR(internal::time_millis(batch.column(time_col_), &times_));
    SABOT_RETURN_IF_ERROR(internal::handle_late(batch, times_, in_.threshold,
                                                o_.late_to_side_output, "late", ctx_, out, &keep_));
    if (keep_.empty()) return Status::ok();
    if (static_cast<int64_t>(keep_.size()) == n) {
      in_.times = &times_;
      return keyed_->process_batch(batch, 0, out);
    }
    kept_times_.clear();
    for (int32_t i : keep_) kept_times_.push_back(times_[static_cast<size_t>(i)]);
    in_.times = &kept_times_;
    SABOT_ASSIGN_OR_RETURN(RecordBatch on_time, compute::take(batch, keep_));
    return keyed_->process_batch(on_time, 0, out);
  }

  Status process_watermark(Timestamp time, Output& out) override {
    wm_ = std::max(wm_, time.millis());
    return keyed_->process_watermark(time, out);
  }

  Status snapshot_state(CheckpointId id, std::string* out) override {
    return snapshot_wrapped(ctx_, kStateType, kStateVersion, static_cast<uint64_t>(wm_), id, out);
  }

  Status restore_state(std::string_view data) override {
    SABOT_ASSIGN_OR_RETURN(
        state::SnapshotReader snap,
        state::SnapshotReader::open(data, ctx_.uid, kStateType, kStateVersion,
                                    static_cast<uint32_t>(ctx_.max_parallelism)));
    for (size_t i = 0; i < snap.sections().size(); ++i) {
      const int32_t kg = snap.sections()[i].key_group;
      ByteReader r = snap.section_reader(i);
      if (kg == state::kOperatorWide && snap.header().state_version >= 2) {
        SABOT_ASSIGN_OR_RETURN(WrappedKeyedSnapshot w, read_wrapped_keyed_snapshot(r));
        internal::merge_watermark(static_cast<int64_t>(w.value), &restored_, &wm_);
        SABOT_RETURN_IF_ERROR(keyed_->restore_state(w.keyed));
        continue;
      }
      if (kg == state::kOperatorWide) {
        int64_t wm = 0;
        SABOT_RETURN_IF_ERROR(r.get(&wm));
        internal::merge_watermark(wm, &restored_, &wm_);
      } else if (subtask_for_key_group(kg, ctx_.parallelism, ctx_.max_parallelism) ==
                 ctx_.subtask_index) {
        SABOT_RETURN_IF_ERROR(restore_v1_key_group(r));
      } else {
        continue;
      }
      SABOT_RETURN_IF_ERROR(r.expect_end());
    }
    restored_keys_ = static_cast<int64_t>(backend_->num_entries(kFirst.name));
    in_.new_keys = 0;
    return Status::ok();
  }

 private:
  int64_t threshold() const {
    return wm_ == INT64_MIN ? INT64_MIN : internal::sat_sub(wm_, o_.allowed_lateness_ms);
  }
  // A key group of a version 1 snapshot: its keys and their times as rows.
  Status restore_v1_key_group(ByteReader& r) {
    SABOT_ASSIGN_OR_RETURN(RecordBatch rows, internal::get_rows(r, v1_schema_));
    const int nk = static_cast<int>(key_cols_.size());
    std::vector<columnar::Array> keys(rows.columns().begin(), rows.columns().begin() + nk);
    std::vector<state::KeyId> ids;
    SABOT_RETURN_IF_ERROR(backend_->resolve_keys(keys, &ids));
    const int64_t* first = internal::meta_values(rows, nk);
    for (size_t i = 0; i < ids.size(); ++i) {
      backend_->set_current_key(ids[i]);
      first_->update(first[i]);
    }
    return Status::ok();
  }

  DedupOptions o_;
  std::vector<int> key_cols_;
  int time_col_;
  state::KeyedStateBackend* backend_;            // owned by keyed_
  state::ValueState<int64_t>* first_ = nullptr;  // the driver's state, for version 1 restores
  SchemaPtr v1_schema_;                          // version 1 rows: the key columns, then "first"
  OperatorContext ctx_;
  DedupBatch in_;
  int64_t wm_ = INT64_MIN;
  bool restored_ = false;  // see merge_watermark
  int64_t restored_keys_ = 0;
  std::vector<int64_t> times_, kept_times_;
  std::vector<int32_t> keep_;
};

class DedupFactory final : public OperatorFactory {
 public:
  explicit DedupFactory(DedupOptions o) : o_(std::move(o)) {}
  std::string kind() const override { return "deduplicate"; }
  Result<SchemaPtr> output_schema(std::span<const SchemaPtr> inputs) const override {
    std::vector<int> keys;
    int t = -1;
    SABOT_RETURN_IF_ERROR(check(inputs, &keys, &t, nullptr));
    return inputs[0];
  }
  Result<SchemaPtr> side_output_schema(std::string_view tag,
                                       std::span<const SchemaPtr> inputs) const override {
    if (tag == "late" && inputs.size() == 1 && !o_.time_column.empty()) return inputs[0];
    return Status::not_found("deduplicate has no side output '" + std::string(tag) + "'");
  }
  Result<std::unique_ptr<Operator>> create(std::span<const SchemaPtr> inputs,
                                           const OperatorContext& ctx) const override {
    std::vector<int> keys;
    int t = -1;
    std::vector<columnar::DataType> types;
    SABOT_RETURN_IF_ERROR(check(inputs, &keys, &t, &types));
    SABOT_ASSIGN_OR_RETURN(auto backend, make_keyed_backend(ctx, std::move(types)));
    return std::unique_ptr<Operator>(
        new DedupOperator(o_, std::move(keys), t, std::move(backend), ctx, *inputs[0]));
  }

 private:
  Status check(std::span<const SchemaPtr> inputs, std::vector<int>* keys, int* t,
               std::vector<columnar::DataType>* types) const {
    if (inputs.size() != 1) return Status::invalid_argument("deduplicate takes one input");
    std::vector<columnar::DataType> tmp;
    SABOT_ASSIGN_OR_RETURN(
        *keys, internal::key_columns(*inputs[0], o_.keys, kind(), types ? types : &tmp));
    if (!o_.time_column.empty()) {
      SABOT_ASSIGN_OR_RETURN(*t, internal::time_column(*inputs[0], o_.time_column, kind()));
    } else if (o_.ttl_ms > 0) {
      return Status::invalid_argument("deduplicate: ttl_ms needs a time_column");
    }
    return Status::ok();
  }
  DedupOptions o_;
};

}  // namespace

std::shared_ptr<const OperatorFactory> deduplicate(DedupOptions options) {
  return std::make_shared<DedupFactory>(std::move(options));
}

}  // namespace sabot::operators
