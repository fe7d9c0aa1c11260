#include "sabot/operators/join.h"

#include <algorithm>
#include <queue>

#include "operators/join_state.h"
#include "sabot/columnar/builder.h"
#include "sabot/compute/grouper.h"
#include "sabot/runtime/metrics.h"

namespace sabot::operators {

using columnar::Array;
using columnar::DataType;
using columnar::RecordBatch;
using columnar::Schema;
using columnar::SchemaPtr;
using internal::ByteReader;
using internal::ByteWriter;
using internal::RowRef;
using internal::RowStore;
using runtime::Operator;
using runtime::OperatorContext;
using runtime::OperatorFactory;
using runtime::Output;

namespace {

constexpr int64_t kMaxBound = int64_t{1} << 50;

// What every join factory resolves against its two input schemas.
struct ResolvedJoin {
  std::vector<int> key_cols[2];
  std::vector<DataType> key_types;
  int time_col[2] = {-1, -1};
  SchemaPtr out_schema;
};

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
        store_{RowStore(inputs[0]), RowStore(inputs[1])} {
    outer_[0] = o_.kind == JoinKind::kLeft || o_.kind == JoinKind::kFull;
    outer_[1] = o_.kind == JoinKind::kRight || o_.kind == JoinKind::kFull;
    max_span_ = std::max({std::abs(o_.lower_ms), std::abs(o_.upper_ms), int64_t{0}});
  }

  Status open(const OperatorContext& ctx) override {
    ctx_ = ctx;
    return Status::ok();
  }

  int64_t buffered_rows() const override { return store_[0].live_rows() + store_[1].live_rows(); }

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

  Status snapshot_state(CheckpointId, std::string* out) override {
    ByteWriter w(out);
    w.put<uint32_t>(0x494A4E31);  // "IJN1"
    w.put<int64_t>(wm_);
    std::string g;
    grouper_->serialize(&g);
    w.put_bytes(g);
    store_[0].serialize(out);
    store_[1].serialize(out);
    w.put<uint64_t>(keys_.size());
    for (const KeyState& ks : keys_) {
      w.put_vector(ks.rows[0]);
      w.put_vector(ks.rows[1]);
    }
    return Status::ok();
  }

  Status restore_state(std::string_view data) override {
    ByteReader in(data, "interval join");
    SABOT_RETURN_IF_ERROR(in.expect_magic(0x494A4E31));
    SABOT_RETURN_IF_ERROR(in.get(&wm_));
    std::string_view g;
    SABOT_RETURN_IF_ERROR(in.get_bytes(&g));
    SABOT_RETURN_IF_ERROR(grouper_->deserialize(g));
    SABOT_RETURN_IF_ERROR(store_[0].deserialize(&in));
    SABOT_RETURN_IF_ERROR(store_[1].deserialize(&in));
    uint64_t n = 0;
    SABOT_RETURN_IF_ERROR(in.get(&n));
    keys_.assign(n, KeyState{});
    heap_ = {};
    for (uint64_t k = 0; k < n; ++k) {
      for (int side = 0; side < 2; ++side) {
        SABOT_RETURN_IF_ERROR(in.get_vector(&keys_[k].rows[side]));
        int64_t next = INT64_MAX;
        for (const Entry& e : keys_[k].rows[side]) next = std::min(next, expiry(side, e.time));
        keys_[k].scheduled[side] = next;
        if (next != INT64_MAX) {
          heap_.push(HeapItem{next, static_cast<uint32_t>(k), static_cast<uint8_t>(side)});
        }
      }
    }
    return Status::ok();
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
  OperatorContext ctx_;
  bool outer_[2] = {false, false};
  int64_t max_span_ = 0;
  int64_t wm_ = INT64_MIN;
  std::vector<KeyState> keys_;
  std::priority_queue<HeapItem, std::vector<HeapItem>, std::greater<HeapItem>> heap_;
  // Per-batch scratch, reused.
  std::vector<int64_t> times_;
  std::vector<int32_t> keep_;
  std::vector<uint32_t> ids_;
  std::vector<RowRef> out_l_, out_r_;
  std::vector<std::pair<int, RowRef>> pending_release_;
};

class IntervalJoinFactory final : public OperatorFactory {
 public:
  explicit IntervalJoinFactory(IntervalJoinOptions o) : o_(std::move(o)) {}
  std::string kind() const override { return "interval_join"; }
  int num_logical_inputs() const override { return 2; }
  Result<SchemaPtr> output_schema(std::span<const SchemaPtr> inputs) const override {
    SABOT_ASSIGN_OR_RETURN(ResolvedJoin r, check(inputs));
    return r.out_schema;
  }
  Result<SchemaPtr> side_output_schema(std::string_view tag,
                                       std::span<const SchemaPtr> inputs) const override {
    return late_side_schema(tag, inputs, kind());
  }
  Result<std::unique_ptr<Operator>> create(std::span<const SchemaPtr> inputs,
                                           const OperatorContext&) const override {
    SABOT_ASSIGN_OR_RETURN(ResolvedJoin r, check(inputs));
    SABOT_ASSIGN_OR_RETURN(auto g, compute::Grouper::make(r.key_types));
    return std::unique_ptr<Operator>(
        new IntervalJoinOperator(o_, std::move(r), inputs, std::move(g)));
  }

 private:
  Result<ResolvedJoin> check(std::span<const SchemaPtr> inputs) const {
    if (o_.lower_ms > o_.upper_ms || std::abs(o_.lower_ms) > kMaxBound ||
        std::abs(o_.upper_ms) > kMaxBound) {
      return Status::invalid_argument("interval_join: bounds [" + std::to_string(o_.lower_ms) +
                                      ", " + std::to_string(o_.upper_ms) +
                                      "] must satisfy lower <= upper and lie within +-2^50 ms");
    }
    return resolve(inputs, o_.common, &o_.time, o_.kind, kind());
  }
  IntervalJoinOptions o_;
};

}  // namespace

std::shared_ptr<const OperatorFactory> interval_join(IntervalJoinOptions options) {
  return std::make_shared<IntervalJoinFactory>(std::move(options));
}

}  // namespace sabot::operators
