#include "sabot/operators/topn.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <optional>

#include "sabot/base/arith.h"
#include "sabot/base/bytes.h"
#include "sabot/columnar/builder.h"
#include "sabot/columnar/ipc.h"
#include "sabot/compute/grouper.h"
#include "sabot/compute/hash.h"
#include "sabot/compute/selection.h"
#include "sabot/operators/keyed_process.h"
#include "sabot/state/key_registry.h"
#include "sabot/state/snapshot.h"
#include "sabot/state/value_bytes.h"

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

// A candidate of a key in its keyed state: ((score, seq), the row's values in the key-bytes
// encoding). score: larger is better (already flipped for ascending order); seq: arrival order,
// smaller wins ties. A key's candidates are kept best first.
using Candidate = std::pair<std::pair<uint64_t, uint64_t>, std::string>;
using Candidates = std::vector<Candidate>;
const state::ValueStateDescriptor<Candidates> kCandidates{"candidates"};
// Once a key holds n candidates: the worst one's (score, seq), the rank a row must beat to enter.
// Read first, so a key whose rows of a batch do not make the cut (most keys, once full) costs a
// read of 16 bytes held in the state's slot, not of its candidate rows.
const state::ValueStateDescriptor<std::pair<uint64_t, uint64_t>> kCut{"cut"};

struct Rank {
  uint64_t score;
  uint64_t seq;
};
bool better(const Rank& a, const Rank& b) {
  return a.score != b.score ? a.score > b.score : a.seq < b.seq;
}
Rank rank_of(const Candidate& c) { return {c.first.first, c.first.second}; }

// A ranked row of the batch being processed.
struct BatchRow {
  state::KeyId key;
  Rank rank;
  int32_t row;
};

// What the operator shares with its driver.
struct TopNShared {
  uint64_t next_seq = 0;  // the arrival number of the next ranked row
  int value_columns = 0;  // the input's columns (without the constant key column of unkeyed top-N)
};

// Per batch: the rows ranked, the best n of each key found in the batch, and only then each touched
// key's candidates read and, when one of its rows makes the cut, written once (one
// read-modify-write per key and batch, not per row).
class TopNDriver final : public KeyedProcessDriver {
 public:
  TopNDriver(int order, int64_t n, bool descending, TopNShared* shared)
      : order_(order), n_(static_cast<size_t>(n)), descending_(descending), shared_(shared) {}

  Status open(KeyedProcessScope* scope, const runtime::OperatorContext&) override {
    backend_ = scope->backend;
    SABOT_ASSIGN_OR_RETURN(candidates_, backend_->get_state(kCandidates));
    SABOT_ASSIGN_OR_RETURN(cut_, backend_->get_state(kCut));
    return Status::ok();
  }

  Status process_rows(const RecordBatch& batch, std::span<const state::KeyId> ids) override {
    group_by_key(batch, ids);
    const std::span<const Array> values(batch.columns().data(),
                                        static_cast<size_t>(shared_->value_columns));
    const auto by_rank = [](const BatchRow& a, const BatchRow& b) {
      return better(a.rank, b.rank);
    };
    for (size_t g = 0; g + 1 < group_start_.size(); ++g) {
      const size_t i = group_start_[g];
      const size_t j = group_start_[g + 1];
      // The key's best n rows of the batch first, best first (ranks are distinct: seq is).
      const auto first = rows_.begin() + static_cast<std::ptrdiff_t>(i);
      const auto last = rows_.begin() + static_cast<std::ptrdiff_t>(j);
      std::partial_sort(first, first + static_cast<std::ptrdiff_t>(std::min(j - i, n_)), last,
                        by_rank);
      backend_->set_current_key(rows_[i].key);
      // The key's best row of the batch does not beat its worst candidate: nothing changes.
      const std::pair<uint64_t, uint64_t>* cut = cut_->get();
      if (cut != nullptr && !better(rows_[i].rank, {cut->first, cut->second})) continue;
      const Candidates* held = candidates_->get();
      merged_ = held != nullptr ? *held : Candidates{};
      for (size_t k = i; k < j && k < i + n_; ++k) {
        const Rank r = rows_[k].rank;
        if (merged_.size() >= n_ && !better(r, rank_of(merged_.back()))) break;
        auto at = std::upper_bound(
            merged_.begin(), merged_.end(), r,
            [](const Rank& x, const Candidate& c) { return better(x, rank_of(c)); });
        Candidate c{{r.score, r.seq}, {}};
        state::encode_values(values, rows_[k].row, &c.second);
        merged_.insert(at, std::move(c));
        if (merged_.size() > n_) merged_.pop_back();
      }
      if (merged_.size() >= n_) cut_->update(merged_.back().first);
      candidates_->update(std::move(merged_));
    }
    return Status::ok();
  }
  Status on_timer(Timestamp) override { return Status::ok(); }  // sets none
  Result<std::optional<RecordBatch>> take_output() override {
    return std::optional<RecordBatch>();  // ranks are emitted by finish()
  }

 private:
  int order_;
  size_t n_;
  bool descending_;
  TopNShared* shared_;
  state::KeyedStateBackend* backend_ = nullptr;
  state::ValueState<Candidates>* candidates_ = nullptr;
  state::ValueState<std::pair<uint64_t, uint64_t>>* cut_ = nullptr;
  std::vector<BatchRow> rows_;          // the batch's ranked rows, grouped by key (a counting sort)
  std::vector<uint32_t> group_start_;   // group g is rows_[group_start_[g], group_start_[g + 1])
  std::vector<uint32_t> group_of_key_;  // by KeyId: the key's group in this batch, or kNoGroup
  std::vector<state::KeyId> group_key_;
  std::vector<BatchRow> ranked_;
  Candidates merged_;

  static constexpr uint32_t kNoGroup = UINT32_MAX;

  // Ranks the batch's rows with an order value and groups them by key into rows_, keys in order
  // of first appearance, rows in arrival order: a counting sort over the dense key ids, O(rows).
  void group_by_key(const RecordBatch& batch, std::span<const state::KeyId> ids) {
    const Array& order = batch.column(order_);
    ranked_.clear();
    group_key_.clear();
    group_start_.clear();
    for (int64_t r = 0; r < batch.num_rows(); ++r) {
      if (order.is_null(r)) continue;
      const state::KeyId key = ids[static_cast<size_t>(r)];
      if (key >= group_of_key_.size()) group_of_key_.resize(key + 1 + key / 2, kNoGroup);
      uint32_t& g = group_of_key_[key];
      if (g == kNoGroup) {
        g = static_cast<uint32_t>(group_key_.size());
        group_key_.push_back(key);
        group_start_.push_back(0);
      }
      ++group_start_[g];  // counts first
      const uint64_t score = order_key(order, r);
      ranked_.push_back(
          {key, {descending_ ? score : ~score, shared_->next_seq++}, static_cast<int32_t>(r)});
    }
    uint32_t at = 0;
    for (uint32_t& start : group_start_) at += std::exchange(start, at);
    group_start_.push_back(at);
    rows_.resize(ranked_.size());
    for (const BatchRow& row : ranked_) {
      rows_[group_start_[group_of_key_[row.key]]++] = row;  // bumps each group's start to its end
    }
    // The starts were bumped to the ends: shift them back by one group.
    for (size_t g = group_start_.size() - 1; g > 0; --g) group_start_[g] = group_start_[g - 1];
    group_start_[0] = 0;
    for (state::KeyId key : group_key_) group_of_key_[key] = kNoGroup;
  }
};

class DiscardOutput final : public runtime::Output {
 public:
  Status emit(const RecordBatch&) override { return Status::ok(); }
  Status emit_watermark(Timestamp) override { return Status::ok(); }
};

// Keeps each key's candidates in keyed state (the job's backend, memory or RocksDB) through a
// KeyedProcessOperator; top-N without key columns runs it on a constant key column.
class TopNOperator final : public WrapsKeyedProcessOperator<runtime::Operator> {
 public:
  TopNOperator(TopNOptions options, const runtime::OperatorContext& ctx, std::vector<int> keys,
               int order, SchemaPtr in, SchemaPtr out,
               std::unique_ptr<state::KeyedStateBackend> backend)
      : options_(std::move(options)),
        ctx_(ctx),
        keyed_columns_(!keys.empty()),
        in_schema_(std::move(in)),
        out_schema_(std::move(out)),
        backend_(backend.get()) {
    shared_.value_columns = in_schema_->num_fields();
    if (keys.empty()) {
      constant_key_.emplace(in_schema_);
      keys = {constant_key_->key_index()};
    }
    keyed_ = std::make_unique<KeyedProcessOperator>(
        std::make_unique<TopNDriver>(order, options_.n, options_.descending, &shared_),
        std::move(keys), std::move(backend), ctx);
  }

  // sabot_operator_state_keys: the keys seen (none without key columns).
  int64_t state_keys() const override { return keyed_columns_ ? keyed_->num_keys() : -1; }

  Status open(const runtime::OperatorContext& ctx) override {
    ctx_ = ctx;
    SABOT_RETURN_IF_ERROR(keyed_->open(ctx));
    SABOT_ASSIGN_OR_RETURN(candidates_, backend_->get_state(kCandidates));
    return Status::ok();
  }

  Status process_batch(const RecordBatch& batch, int, runtime::Output& out) override {
    if (batch.num_rows() == 0) return Status::ok();
    if (keyed_columns_) return keyed_->process_batch(batch, 0, out);
    return keyed_->process_batch(constant_key_->append(batch), 0, out);
  }

  // Every key's candidates, best first, with their rank.
  Status finish(runtime::Output& out) override {
    SABOT_ASSIGN_OR_RETURN(std::vector<state::KeyId> keys,
                           backend_->keys_with_state(kCandidates.name, state::kDefaultNamespace));
    std::vector<std::unique_ptr<columnar::ArrayBuilder>> builders;
    std::vector<columnar::DataType> types;
    for (const auto& f : in_schema_->fields()) {
      builders.push_back(columnar::make_builder(f.type));
      types.push_back(f.type);
    }
    columnar::Int64Builder rank;
    for (state::KeyId k : keys) {
      backend_->set_current_key(k);
      const Candidates* held = candidates_->get();
      if (held == nullptr) continue;
      for (size_t i = 0; i < held->size(); ++i) {
        SABOT_RETURN_IF_ERROR(state::append_values((*held)[i].second, types, builders));
        rank.append(static_cast<int64_t>(i) + 1);
      }
    }
    std::vector<Array> cols;
    for (auto& b : builders) cols.push_back(b->finish());
    cols.push_back(rank.finish());
    SABOT_ASSIGN_OR_RETURN(RecordBatch ranked, RecordBatch::make(out_schema_, std::move(cols)));
    return out.emit(ranked);
  }

  // Version 2: one operator-wide section, [u64 next arrival number][bytes: the keyed state's
  // snapshot] (the KeyedProcessOperator's, full or incremental RocksDB).
  Status snapshot_state(CheckpointId id, std::string* out) override {
    return snapshot_wrapped(ctx_, kStateType, kStateVersion, shared_.next_seq, id, out);
  }

  // Version 2: the keyed state (owned key groups) and the largest arrival number. Version 1 (per
  // key group, or operator-wide without key columns, the live candidates in arrival order as an
  // Arrow IPC stream): the owned sections' rows ranked again in that order.
  Status restore_state(std::string_view data) override {
    SABOT_ASSIGN_OR_RETURN(
        state::SnapshotReader reader,
        state::SnapshotReader::open(data, ctx_.uid, kStateType, kStateVersion,
                                    static_cast<uint32_t>(ctx_.max_parallelism)));
    const bool v1 = reader.header().state_version < 2;
    for (size_t i = 0; i < reader.sections().size(); ++i) {
      const int32_t kg = reader.sections()[i].key_group;
      ByteReader r = reader.section_reader(i);
      if (!v1) {
        if (kg != state::kOperatorWide) return r.invalid("a key-group section in version 2");
        SABOT_ASSIGN_OR_RETURN(WrappedKeyedSnapshot w, read_wrapped_keyed_snapshot(r));
        SABOT_RETURN_IF_ERROR(keyed_->restore_state(w.keyed));
        shared_.next_seq = std::max(shared_.next_seq, w.value);
        continue;
      }
      if (kg == state::kOperatorWide) {
        if (keyed_columns_) return r.invalid("operator-wide rows in the snapshot of a keyed top_n");
      } else {
        if (!keyed_columns_)
          return r.invalid("key-group rows in the snapshot of a top_n without keys");
        if (subtask_for_key_group(kg, ctx_.parallelism, ctx_.max_parallelism) !=
            ctx_.subtask_index) {
          continue;
        }
      }
      SABOT_RETURN_IF_ERROR(restore_v1_rows(r));
    }
    return Status::ok();
  }

 private:
  static constexpr std::string_view kStateType = "top-n";
  static constexpr uint16_t kStateVersion = 2;

  // A version 1 section's rows: decoded, checked against the input schema, ranked in order.
  Status restore_v1_rows(ByteReader& r) {
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
    DiscardOutput none;  // the driver emits nothing
    for (const RecordBatch& b : read->second) SABOT_RETURN_IF_ERROR(process_batch(b, 0, none));
    return Status::ok();
  }

  TopNOptions options_;
  runtime::OperatorContext ctx_;
  bool keyed_columns_;
  SchemaPtr in_schema_;
  SchemaPtr out_schema_;
  state::KeyedStateBackend* backend_;  // owned by keyed_
  TopNShared shared_;
  state::ValueState<Candidates>* candidates_ = nullptr;
  std::optional<ConstantKeyColumn> constant_key_;  // top-N without key columns
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
    if (key_types.empty()) key_types = {columnar::int32()};  // the constant key column
    SABOT_ASSIGN_OR_RETURN(auto backend, make_keyed_backend(ctx, std::move(key_types)));
    return std::unique_ptr<runtime::Operator>(
        new TopNOperator(options_, ctx, std::move(keys), s.field_index(options_.order_column),
                         inputs[0], std::move(out), std::move(backend)));
  }

 private:
  TopNOptions options_;
};

}  // namespace

std::shared_ptr<const runtime::OperatorFactory> top_n(TopNOptions options) {
  return std::make_shared<TopNFactory>(std::move(options));
}

}  // namespace sabot::operators
