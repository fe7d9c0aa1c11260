#include "sabot/operators/dedup.h"

#include "operators/join_state.h"
#include "sabot/compute/selection.h"
#include "sabot/operators/join.h"

namespace sabot::operators {

using columnar::RecordBatch;
using columnar::SchemaPtr;
using runtime::Operator;
using runtime::OperatorContext;
using runtime::OperatorFactory;
using runtime::Output;

namespace {

class DedupOperator final : public StatefulOperator {
 public:
  DedupOperator(DedupOptions o, std::vector<int> key_cols, int time_col,
                std::unique_ptr<compute::Grouper> g, const columnar::Schema& input)
      : o_(std::move(o)),
        key_cols_(std::move(key_cols)),
        time_col_(time_col),
        grouper_(std::move(g)) {
    std::vector<columnar::Field> keys;
    for (int c : key_cols_) keys.push_back(input.field(c));
    snap_schema_ = internal::rows_schema(**columnar::Schema::make(std::move(keys)), {"first"});
  }

  Status open(const OperatorContext& ctx) override {
    ctx_ = ctx;
    return Status::ok();
  }
  int64_t buffered_rows() const override { return remembered_; }
  int64_t dictionary_keys() const override { return grouper_->num_groups(); }

  Status process_batch(const RecordBatch& batch, int, Output& out) override {
    const int64_t n = batch.num_rows();
    if (n == 0) return Status::ok();
    const int64_t t = threshold();
    if (time_col_ >= 0) {
      SABOT_RETURN_IF_ERROR(internal::time_millis(batch.column(time_col_), &times_));
      SABOT_RETURN_IF_ERROR(internal::handle_late(batch, times_, t, o_.late_to_side_output, "late",
                                                  ctx_, out, &keep_));
    } else {
      keep_.resize(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) keep_[static_cast<size_t>(i)] = static_cast<int32_t>(i);
    }
    if (keep_.empty()) return Status::ok();
    std::vector<columnar::Array> keys = internal::key_arrays(batch, key_cols_);
    SABOT_RETURN_IF_ERROR(grouper_->consume(keys, &ids_));
    if (first_.size() < grouper_->num_groups()) first_.resize(grouper_->num_groups(), kUnseen);
    emit_.clear();
    for (int32_t i : keep_) {
      int64_t& f = first_[ids_[static_cast<size_t>(i)]];
      const int64_t ti = time_col_ >= 0 ? times_[static_cast<size_t>(i)] : 0;
      bool expired = f != kUnseen && o_.ttl_ms > 0 && time_col_ >= 0 && t != INT64_MIN &&
                     t >= internal::sat_add(f, o_.ttl_ms);
      if (f == kUnseen || expired) {
        if (f == kUnseen) ++remembered_;
        f = ti;
        emit_.push_back(i);
      }
    }
    if (emit_.empty()) return Status::ok();
    if (static_cast<int64_t>(emit_.size()) == n) return out.emit(batch);
    SABOT_ASSIGN_OR_RETURN(RecordBatch b, compute::take(batch, emit_));
    return out.emit(b);
  }

  Status process_watermark(Timestamp time, Output& out) override {
    wm_ = std::max(wm_, time.millis());
    return out.emit_watermark(time);
  }

  // Snapshot: the watermark (operator-wide), then per key group its keys with the time of the
  // row last emitted for each.
  Status snapshot_state(CheckpointId, std::string* out) override {
    state::SnapshotWriter w(out, internal::snapshot_header(ctx_, kStateType));
    w.begin_section(state::kOperatorWide).put<int64_t>(wm_);
    internal::key_groups_of_keys(*grouper_, ctx_, &kgs_);
    std::vector<std::vector<uint32_t>> by_kg(static_cast<size_t>(ctx_.max_parallelism));
    for (uint32_t k = 0; k < first_.size(); ++k) {
      if (first_[k] != kUnseen) by_kg[kgs_[k]].push_back(k);
    }
    std::vector<int64_t> first;
    for (size_t kg = 0; kg < by_kg.size(); ++kg) {
      if (by_kg[kg].empty()) continue;
      SABOT_ASSIGN_OR_RETURN(std::vector<columnar::Array> cols, grouper_->keys_of(by_kg[kg]));
      first.clear();
      for (uint32_t k : by_kg[kg]) first.push_back(first_[k]);
      cols.push_back(internal::int64_array(first));
      internal::put_rows(w.begin_section(static_cast<int32_t>(kg)), snap_schema_, std::move(cols),
                         static_cast<int64_t>(first.size()));
    }
    w.finish();
    return Status::ok();
  }
  Status restore_state(std::string_view data) override {
    return internal::restore_sections(
        data, ctx_, kStateType,
        [&](ByteReader& r) {
          int64_t wm = 0;
          SABOT_RETURN_IF_ERROR(r.get(&wm));
          internal::merge_watermark(wm, &restored_, &wm_);
          return Status::ok();
        },
        [&](int32_t, ByteReader& r) {
          SABOT_ASSIGN_OR_RETURN(RecordBatch rows, internal::get_rows(r, snap_schema_));
          const int nk = static_cast<int>(key_cols_.size());
          std::vector<columnar::Array> keys(rows.columns().begin(), rows.columns().begin() + nk);
          SABOT_RETURN_IF_ERROR(grouper_->consume(keys, &ids_));
          if (first_.size() < grouper_->num_groups())
            first_.resize(grouper_->num_groups(), kUnseen);
          const int64_t* first = internal::meta_values(rows, nk);
          for (int64_t i = 0; i < rows.num_rows(); ++i) {
            int64_t& f = first_[ids_[static_cast<size_t>(i)]];
            if (f == kUnseen) ++remembered_;
            f = first[i];
          }
          return Status::ok();
        });
  }

 private:
  static constexpr int64_t kUnseen = INT64_MIN;
  static constexpr const char* kStateType = "deduplicate";
  int64_t threshold() const {
    return wm_ == INT64_MIN ? INT64_MIN : internal::sat_sub(wm_, o_.allowed_lateness_ms);
  }
  DedupOptions o_;
  std::vector<int> key_cols_;
  int time_col_;
  std::unique_ptr<compute::Grouper> grouper_;
  SchemaPtr snap_schema_;  // the key columns, then "first"
  OperatorContext ctx_;
  int64_t wm_ = INT64_MIN;
  bool restored_ = false;  // see merge_watermark
  int64_t remembered_ = 0;
  std::vector<uint32_t> kgs_;
  std::vector<int64_t> first_;  // by key id: time of the row last emitted, kUnseen if none
  std::vector<int64_t> times_;
  std::vector<int32_t> keep_, emit_;
  std::vector<uint32_t> ids_;
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
                                           const OperatorContext&) const override {
    std::vector<int> keys;
    int t = -1;
    std::vector<columnar::DataType> types;
    SABOT_RETURN_IF_ERROR(check(inputs, &keys, &t, &types));
    SABOT_ASSIGN_OR_RETURN(auto g, compute::Grouper::make(types));
    return std::unique_ptr<Operator>(
        new DedupOperator(o_, std::move(keys), t, std::move(g), *inputs[0]));
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
