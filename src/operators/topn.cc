#include "sabot/operators/topn.h"

#include <algorithm>
#include <bit>
#include <cstring>

#include "sabot/base/arith.h"
#include "sabot/base/bytes.h"
#include "sabot/columnar/builder.h"
#include "sabot/columnar/ipc.h"
#include "sabot/compute/grouper.h"
#include "sabot/compute/hash.h"
#include "sabot/compute/selection.h"
#include "sabot/state/snapshot.h"

namespace sabot::operators {

using columnar::Array;
using columnar::RecordBatch;
using columnar::SchemaPtr;
using columnar::TypeId;

namespace {

// An order-preserving unsigned encoding of the order value, so one comparison serves every type.
uint64_t order_key(const Array& a, int64_t i) {
  switch (a.type().id()) {
    case TypeId::kInt32:
      return static_cast<uint64_t>(static_cast<int64_t>(a.value<int32_t>(i))) ^ (uint64_t{1} << 63);
    case TypeId::kInt64:
    case TypeId::kTimestamp:
      return static_cast<uint64_t>(a.value<int64_t>(i)) ^ (uint64_t{1} << 63);
    case TypeId::kUInt64:
      return a.value<uint64_t>(i);
    case TypeId::kFloat64: {
      uint64_t bits = std::bit_cast<uint64_t>(a.value<double>(i) == 0.0 ? 0.0 : a.value<double>(i));
      return (bits & (uint64_t{1} << 63)) ? ~bits : bits | (uint64_t{1} << 63);
    }
    default:
      return 0;
  }
}

struct Candidate {
  uint64_t score;  // larger is better (already flipped for ascending order)
  uint64_t seq;    // arrival order: smaller wins ties
  int32_t batch;   // index into kept_
  int32_t row;
};

// Heap order: the worst candidate on top.
bool better(const Candidate& a, const Candidate& b) {
  return a.score != b.score ? a.score > b.score : a.seq < b.seq;
}
struct WorstOnTop {
  bool operator()(const Candidate& a, const Candidate& b) const { return better(a, b); }
};

class TopNOperator final : public runtime::Operator {
 public:
  TopNOperator(TopNOptions options, const runtime::OperatorContext& ctx, std::vector<int> keys,
               int order, SchemaPtr in, SchemaPtr out, std::unique_ptr<compute::Grouper> grouper)
      : options_(std::move(options)),
        ctx_(ctx),
        keys_(std::move(keys)),
        order_(order),
        in_schema_(std::move(in)),
        out_schema_(std::move(out)),
        grouper_(std::move(grouper)) {}

  // sabot_operator_state_keys: the keys with a heap (none without key columns).
  int64_t state_keys() const override { return grouper_ ? grouper_->num_groups() : -1; }

  Status process_batch(const RecordBatch& batch, int, runtime::Output&) override {
    return consume(batch);
  }

  Status finish(runtime::Output& out) override {
    SABOT_ASSIGN_OR_RETURN(RecordBatch ranked, ranked_rows());
    return out.emit(ranked);
  }

  Status open(const runtime::OperatorContext& ctx) override {
    ctx_ = ctx;
    return Status::ok();
  }

  // One envelope (state type "top-n"): per key group, its live candidates in arrival order as an
  // Arrow IPC stream of the input schema; without key columns one operator-wide section.
  // Restoring re-inserts them in that order, which rebuilds the heaps with the same ties.
  Status snapshot_state(CheckpointId, std::string* out) override {
    SABOT_ASSIGN_OR_RETURN(RecordBatch live, live_rows_in_arrival_order());
    state::SnapshotWriter w(out, {.operator_uid = ctx_.uid,
                                  .state_type = std::string(kStateType),
                                  .state_version = 1,
                                  .max_parallelism = static_cast<uint32_t>(ctx_.max_parallelism)});
    if (keys_.empty()) {
      if (live.num_rows() > 0)
        SABOT_RETURN_IF_ERROR(put_rows(live, w.begin_section(state::kOperatorWide)));
      w.finish();
      return Status::ok();
    }
    key_arrays_.clear();
    for (int k : keys_) key_arrays_.push_back(live.column(k));
    std::vector<uint64_t> hashes;
    SABOT_RETURN_IF_ERROR(compute::hash_columns(key_arrays_, &hashes));
    key_arrays_.clear();
    std::vector<uint32_t> groups(hashes.size());
    compute::key_groups(hashes, static_cast<uint32_t>(ctx_.max_parallelism), groups);
    std::vector<std::vector<int32_t>> rows_of_group(static_cast<size_t>(ctx_.max_parallelism));
    for (size_t i = 0; i < groups.size(); ++i) {
      rows_of_group[groups[i]].push_back(static_cast<int32_t>(i));
    }
    for (size_t kg = 0; kg < rows_of_group.size(); ++kg) {
      if (rows_of_group[kg].empty()) continue;
      SABOT_ASSIGN_OR_RETURN(RecordBatch rows, compute::take(live, rows_of_group[kg]));
      SABOT_RETURN_IF_ERROR(put_rows(rows, w.begin_section(static_cast<int32_t>(kg))));
    }
    w.finish();
    return Status::ok();
  }

  Status restore_state(std::string_view data) override {
    SABOT_ASSIGN_OR_RETURN(
        state::SnapshotReader reader,
        state::SnapshotReader::open(data, ctx_.uid, kStateType, 1,
                                    static_cast<uint32_t>(ctx_.max_parallelism)));
    for (size_t i = 0; i < reader.sections().size(); ++i) {
      const int32_t kg = reader.sections()[i].key_group;
      ByteReader r = reader.section_reader(i);
      if (kg == state::kOperatorWide) {
        if (!keys_.empty()) return r.invalid("operator-wide rows in the snapshot of a keyed top_n");
      } else {
        if (keys_.empty())
          return r.invalid("key-group rows in the snapshot of a top_n without keys");
        if (subtask_for_key_group(kg, ctx_.parallelism, ctx_.max_parallelism) !=
            ctx_.subtask_index) {
          continue;
        }
      }
      SABOT_RETURN_IF_ERROR(get_rows(r));
    }
    return Status::ok();
  }

  int64_t live_candidates() const {
    int64_t n = 0;
    for (const auto& h : heaps_) n += static_cast<int64_t>(h.size());
    return n;
  }

 private:
  static constexpr std::string_view kStateType = "top-n";

  Status put_rows(const RecordBatch& rows, ByteWriter& w) const {
    SABOT_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes,
                           columnar::write_ipc_stream(in_schema_, {rows}));
    w.put_bytes(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
    return Status::ok();
  }

  // A section's rows: decoded, checked against the input schema, consumed in order.
  Status get_rows(ByteReader& r) {
    const size_t at = r.position();
    std::string_view bytes;
    SABOT_RETURN_IF_ERROR(r.get_bytes(&bytes));
    SABOT_RETURN_IF_ERROR(r.expect_end());
    auto buffer = columnar::Buffer::copy_of(bytes.data(), static_cast<int64_t>(bytes.size()));
    auto read = columnar::read_ipc_stream(buffer);
    if (!read.is_ok()) {
      return Status::invalid_data(std::string(r.what()) + ": rows do not decode (" +
                                  read.status().message() + ") at byte " + std::to_string(at));
    }
    if (!(*read->first == *in_schema_)) {
      return Status::invalid_data(std::string(r.what()) +
                                  ": rows have another schema than the input at byte " +
                                  std::to_string(at));
    }
    for (const RecordBatch& b : read->second) SABOT_RETURN_IF_ERROR(consume(b));
    return Status::ok();
  }

  Status consume(const RecordBatch& batch) {
    const int64_t rows = batch.num_rows();
    if (rows == 0) return Status::ok();
    if (keys_.empty()) {
      ids_.assign(static_cast<size_t>(rows), 0);
      if (heaps_.empty()) heaps_.resize(1);
    } else {
      key_arrays_.clear();
      for (int k : keys_) key_arrays_.push_back(batch.column(k));
      SABOT_RETURN_IF_ERROR(grouper_->consume(key_arrays_, &ids_));
      if (heaps_.size() < grouper_->num_groups()) heaps_.resize(grouper_->num_groups());
    }
    const Array& order = batch.column(order_);
    const int32_t batch_index = static_cast<int32_t>(kept_.size());
    const size_t n = static_cast<size_t>(options_.n);
    touched_.clear();
    for (int64_t r = 0; r < rows; ++r) {
      if (order.is_null(r)) continue;
      uint64_t score = order_key(order, r);
      if (!options_.descending) score = ~score;
      Candidate c{score, next_seq_++, batch_index, static_cast<int32_t>(r)};
      auto& heap = heaps_[ids_[static_cast<size_t>(r)]];
      if (heap.size() < n) {
        heap.push_back(c);
        std::push_heap(heap.begin(), heap.end(), WorstOnTop());
      } else if (better(c, heap.front())) {
        std::pop_heap(heap.begin(), heap.end(), WorstOnTop());
        heap.back() = c;
        std::push_heap(heap.begin(), heap.end(), WorstOnTop());
      } else {
        continue;
      }
      touched_.push_back(ids_[static_cast<size_t>(r)]);
    }
    // Keep only the rows of this batch that are still candidates, re-pointing them.
    std::sort(touched_.begin(), touched_.end());
    touched_.erase(std::unique(touched_.begin(), touched_.end()), touched_.end());
    selected_.clear();
    for (uint32_t g : touched_) {
      for (Candidate& c : heaps_[g]) {
        if (c.batch == batch_index) selected_.push_back(c.row);
      }
    }
    if (selected_.empty()) return Status::ok();
    std::sort(selected_.begin(), selected_.end());
    SABOT_ASSIGN_OR_RETURN(RecordBatch kept, compute::take(batch, selected_));
    for (uint32_t g : touched_) {
      for (Candidate& c : heaps_[g]) {
        if (c.batch != batch_index) continue;
        c.row = static_cast<int32_t>(std::lower_bound(selected_.begin(), selected_.end(), c.row) -
                                     selected_.begin());
      }
    }
    kept_.push_back(std::move(kept));
    kept_rows_ += static_cast<int64_t>(selected_.size());
    // Rows evicted from heaps stay in kept_ until a compaction drops them.
    if (kept_rows_ > 2 * live_candidates() + 4096) SABOT_RETURN_IF_ERROR(compact());
    return Status::ok();
  }

  // All live candidates as one batch; `refs` gets, per candidate in heap order, its new row.
  Status gather(std::vector<std::pair<Candidate*, int32_t>>* order_by, RecordBatch* out) {
    std::vector<int64_t> base(kept_.size() + 1, 0);
    for (size_t i = 0; i < kept_.size(); ++i) base[i + 1] = base[i] + kept_[i].num_rows();
    std::vector<int32_t> idx;
    idx.reserve(order_by->size());
    for (auto& [c, unused] : *order_by) {
      idx.push_back(static_cast<int32_t>(base[static_cast<size_t>(c->batch)] + c->row));
    }
    RecordBatch all = kept_.empty() ? RecordBatch::make_empty(in_schema_)
                                    : columnar::concat(std::span<const RecordBatch>(kept_)).value();
    SABOT_ASSIGN_OR_RETURN(*out, compute::take(all, idx));
    return Status::ok();
  }

  Status compact() {
    std::vector<std::pair<Candidate*, int32_t>> live;
    for (auto& h : heaps_) {
      for (Candidate& c : h) live.emplace_back(&c, 0);
    }
    RecordBatch packed;
    SABOT_RETURN_IF_ERROR(gather(&live, &packed));
    for (size_t i = 0; i < live.size(); ++i) {
      live[i].first->batch = 0;
      live[i].first->row = static_cast<int32_t>(i);
    }
    kept_.clear();
    kept_.push_back(std::move(packed));
    kept_rows_ = static_cast<int64_t>(live.size());
    return Status::ok();
  }

  Result<RecordBatch> live_rows_in_arrival_order() {
    std::vector<std::pair<Candidate*, int32_t>> live;
    for (auto& h : heaps_) {
      for (Candidate& c : h) live.emplace_back(&c, 0);
    }
    std::sort(live.begin(), live.end(),
              [](const auto& a, const auto& b) { return a.first->seq < b.first->seq; });
    RecordBatch rows;
    SABOT_RETURN_IF_ERROR(gather(&live, &rows));
    return rows;
  }

  Result<RecordBatch> ranked_rows() {
    std::vector<std::pair<Candidate*, int32_t>> order;
    columnar::Int64Builder rank;
    for (auto& h : heaps_) {
      std::sort(h.begin(), h.end(), better);
      for (size_t i = 0; i < h.size(); ++i) {
        order.emplace_back(&h[i], 0);
        rank.append(static_cast<int64_t>(i) + 1);
      }
    }
    RecordBatch rows;
    SABOT_RETURN_IF_ERROR(gather(&order, &rows));
    std::vector<Array> cols = rows.columns();
    cols.push_back(rank.finish());
    return RecordBatch::make(out_schema_, std::move(cols));
  }

  TopNOptions options_;
  runtime::OperatorContext ctx_;
  std::vector<int> keys_;
  int order_;
  SchemaPtr in_schema_;
  SchemaPtr out_schema_;
  std::unique_ptr<compute::Grouper> grouper_;
  std::vector<std::vector<Candidate>> heaps_;  // per key group id
  std::vector<RecordBatch> kept_;
  int64_t kept_rows_ = 0;
  uint64_t next_seq_ = 0;
  // Scratch reused across batches.
  std::vector<Array> key_arrays_;
  std::vector<uint32_t> ids_;
  std::vector<uint32_t> touched_;
  std::vector<int32_t> selected_;
};

class TopNFactory final : public runtime::OperatorFactory {
 public:
  explicit TopNFactory(TopNOptions options) : options_(std::move(options)) {}
  std::string kind() const override { return "top_n"; }

  Result<SchemaPtr> output_schema(std::span<const SchemaPtr> inputs) const override {
    if (inputs.size() != 1) return Status::invalid_argument("top_n takes one input");
    const columnar::Schema& s = *inputs[0];
    if (options_.n < 1) {
      return Status::invalid_argument("top_n: n must be >= 1, got " + std::to_string(options_.n));
    }
    for (const std::string& k : options_.key_columns) {
      SABOT_RETURN_IF_ERROR(s.require_field_index(k).status());
    }
    SABOT_ASSIGN_OR_RETURN(int order, s.require_field_index(options_.order_column));
    const columnar::DataType& t = s.field(order).type;
    if (!t.is_numeric() && t.id() != TypeId::kTimestamp) {
      return Status::type_error("top_n: order column '" + options_.order_column + "' is " +
                                t.to_string() + "; it must be numeric or a timestamp");
    }
    if (s.field_index("rank") >= 0) {
      return Status::invalid_argument("top_n adds a 'rank' column, but the input already has one");
    }
    std::vector<columnar::Field> fields = s.fields();
    fields.push_back(columnar::field("rank", columnar::int64(), false));
    return columnar::Schema::make(std::move(fields));
  }

  Result<std::unique_ptr<runtime::Operator>> create(
      std::span<const SchemaPtr> inputs, const runtime::OperatorContext& ctx) const override {
    if (options_.key_columns.empty() && ctx.parallelism > 1) {
      return Status::invalid_argument(
          "top_n without key columns must run with parallelism 1, got " +
          std::to_string(ctx.parallelism));
    }
    SABOT_ASSIGN_OR_RETURN(SchemaPtr out, output_schema(inputs));
    const columnar::Schema& s = *inputs[0];
    std::vector<int> keys;
    std::vector<columnar::DataType> key_types;
    for (const std::string& k : options_.key_columns) {
      keys.push_back(s.field_index(k));
      key_types.push_back(s.field(keys.back()).type);
    }
    std::unique_ptr<compute::Grouper> grouper;
    if (!keys.empty()) {
      SABOT_ASSIGN_OR_RETURN(grouper, compute::Grouper::make(key_types));
    }
    return std::unique_ptr<runtime::Operator>(
        new TopNOperator(options_, ctx, std::move(keys), s.field_index(options_.order_column),
                         inputs[0], std::move(out), std::move(grouper)));
  }

 private:
  TopNOptions options_;
};

}  // namespace

std::shared_ptr<const runtime::OperatorFactory> top_n(TopNOptions options) {
  return std::make_shared<TopNFactory>(std::move(options));
}

}  // namespace sabot::operators
