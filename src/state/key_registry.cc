#include "sabot/state/key_registry.h"

#include <cstring>
#include <utility>

#include "sabot/base/arith.h"
#include "sabot/base/check.h"
#include "sabot/columnar/builder.h"
#include "sabot/compute/hash.h"
#include "sabot/state/state_codec.h"
#include "sabot/state/value_bytes.h"

namespace sabot::state {

using columnar::Array;
using columnar::DataType;
using columnar::Scalar;
using columnar::TypeId;

std::vector<KeyGroup> key_groups_for_subtask(int subtask, int parallelism, int max_parallelism) {
  SABOT_CHECK_GE(subtask, 0);
  SABOT_CHECK_LT(subtask, parallelism);
  SABOT_CHECK_LE(parallelism, max_parallelism);
  std::vector<KeyGroup> out;
  for (int kg = 0; kg < max_parallelism; ++kg) {
    if (subtask_for_key_group(kg, parallelism, max_parallelism) == subtask) out.emplace_back(kg);
  }
  return out;
}

KeyRegistry::KeyRegistry(std::unique_ptr<compute::Grouper> grouper, uint32_t max_parallelism,
                         std::vector<uint8_t> owned)
    : grouper_(std::move(grouper)), max_parallelism_(max_parallelism), owned_(std::move(owned)) {}

Result<std::unique_ptr<KeyRegistry>> KeyRegistry::make(std::vector<DataType> key_types,
                                                       uint32_t max_parallelism,
                                                       std::span<const KeyGroup> owned) {
  if (max_parallelism == 0) {
    return Status::invalid_argument("KeyRegistry: max_parallelism must be > 0");
  }
  std::vector<uint8_t> mask(max_parallelism, owned.empty() ? 1 : 0);
  for (KeyGroup kg : owned) {
    if (kg.value() < 0 || static_cast<uint32_t>(kg.value()) >= max_parallelism) {
      return Status::invalid_argument("KeyRegistry: key group " + std::to_string(kg.value()) +
                                      " is outside [0, " + std::to_string(max_parallelism) + ")");
    }
    mask[static_cast<size_t>(kg.value())] = 1;
  }
  SABOT_ASSIGN_OR_RETURN(auto grouper, compute::Grouper::make(std::move(key_types)));
  return std::unique_ptr<KeyRegistry>(
      new KeyRegistry(std::move(grouper), max_parallelism, std::move(mask)));
}

std::vector<KeyGroup> KeyRegistry::owned_key_groups() const {
  std::vector<KeyGroup> out;
  for (uint32_t kg = 0; kg < max_parallelism_; ++kg) {
    if (owned_[kg]) out.emplace_back(static_cast<int32_t>(kg));
  }
  return out;
}

namespace {

void encode_key_value(const Array& a, int64_t i, ByteWriter& w) {
  if (a.is_null(i)) {
    w.put<uint8_t>(0);
    return;
  }
  w.put<uint8_t>(1);
  switch (a.type().id()) {
    case TypeId::kBool:
      w.put<uint8_t>(a.bool_value(i) ? 1 : 0);
      break;
    case TypeId::kInt32:
      w.put<int32_t>(a.value<int32_t>(i));
      break;
    case TypeId::kInt64:
    case TypeId::kTimestamp:
      w.put<int64_t>(a.value<int64_t>(i));
      break;
    case TypeId::kUInt64:
      w.put<uint64_t>(a.value<uint64_t>(i));
      break;
    case TypeId::kFloat64:
      w.put<double>(a.value<double>(i));
      break;
    case TypeId::kUtf8:
    case TypeId::kBinary:
      w.put_bytes(a.string_view(i));
      break;
  }
}

}  // namespace

void encode_values(std::span<const Array> columns, int64_t row, std::string* out) {
  ByteWriter w(out);
  for (const Array& col : columns) encode_key_value(col, row, w);
}

Status KeyRegistry::register_new_keys(std::span<const Array> key_columns,
                                      std::span<const KeyId> ids, uint32_t first_new) {
  const uint32_t n = num_keys();
  SABOT_RETURN_IF_ERROR(compute::hash_columns(key_columns, &hashes_));
  groups_scratch_.resize(hashes_.size());
  compute::key_groups(hashes_, max_parallelism_, groups_scratch_);
  key_groups_.resize(n);
  key_offsets_.resize(n + 1);
  ByteWriter w(&arena_);
  // New ids appear in increasing order of first occurrence, so one pass appends their bytes in id
  // order.
  uint32_t next = first_new;
  for (size_t i = 0; i < ids.size() && next < n; ++i) {
    if (ids[i] != next) continue;
    const uint32_t kg = groups_scratch_[i];
    if (!owned_[kg]) {
      return Status::invalid_argument("keyed state: a key of key group " + std::to_string(kg) +
                                      " reached a subtask that does not own that key group (row " +
                                      std::to_string(i) +
                                      "); the input is not partitioned by these key columns");
    }
    key_groups_[next] = kg;
    for (const Array& col : key_columns) encode_key_value(col, static_cast<int64_t>(i), w);
    key_offsets_[next + 1] = arena_.size();
    ++next;
  }
  SABOT_CHECK_EQ(next, n);
  return Status::ok();
}

Status KeyRegistry::resolve(std::span<const Array> key_columns, std::vector<KeyId>* ids) {
  const uint32_t before = num_keys();
  SABOT_RETURN_IF_ERROR(grouper_->consume(key_columns, ids));
  if (num_keys() == before) return Status::ok();
  return register_new_keys(key_columns, *ids, before);
}

Status KeyRegistry::resolve(const columnar::RecordBatch& batch, std::span<const int> key_columns,
                            std::vector<KeyId>* ids) {
  scratch_columns_.clear();
  for (int c : key_columns) {
    if (c < 0 || c >= batch.num_columns()) {
      return Status::out_of_range("keyed state: key column index " + std::to_string(c) +
                                  " is outside the batch's " + std::to_string(batch.num_columns()) +
                                  " columns");
    }
    scratch_columns_.push_back(batch.column(c));
  }
  Status st = resolve(scratch_columns_, ids);
  scratch_columns_.clear();  // drop the references to the batch's buffers
  return st;
}

Result<KeyId> KeyRegistry::resolve_values(std::span<const Scalar> key) {
  const auto& types = key_types();
  if (key.size() != types.size()) {
    return Status::invalid_argument("keyed state: key has " + std::to_string(key.size()) +
                                    " values, expected " + std::to_string(types.size()));
  }
  std::vector<Array> cols;
  cols.reserve(key.size());
  for (size_t c = 0; c < key.size(); ++c) {
    if (!(key[c].type == types[c])) {
      return Status::type_error("keyed state: key value " + std::to_string(c) + " has type " +
                                key[c].type.to_string() + ", expected " + types[c].to_string());
    }
    cols.push_back(Array::make_repeated(key[c], 1));
  }
  std::vector<KeyId> ids;
  SABOT_RETURN_IF_ERROR(resolve(cols, &ids));
  return ids[0];
}

Status KeyRegistry::lookup(std::span<const Array> key_columns, std::vector<KeyId>* ids) const {
  static_assert(kNoKey == compute::Grouper::kUnknownGroup);
  return grouper_->lookup(key_columns, ids);
}

Status KeyRegistry::retain_only(std::span<const KeyId> keep) {
  SABOT_ASSIGN_OR_RETURN(std::vector<Array> kept_keys, grouper_->keys_of(keep));
  SABOT_ASSIGN_OR_RETURN(auto grouper, compute::Grouper::make(grouper_->key_types()));
  std::vector<KeyId> ids;
  if (!keep.empty()) SABOT_RETURN_IF_ERROR(grouper->consume(kept_keys, &ids));
  SABOT_CHECK_EQ(grouper->num_groups(), keep.size());
  std::string arena;
  std::vector<uint64_t> offsets;
  std::vector<uint32_t> key_groups;
  offsets.reserve(keep.size() + 1);
  key_groups.reserve(keep.size());
  offsets.push_back(0);
  for (size_t i = 0; i < keep.size(); ++i) {
    SABOT_CHECK_EQ(ids[i], i);  // distinct keys in order: ids are 0, 1, 2, ...
    arena.append(key_bytes(keep[i]));
    offsets.push_back(arena.size());
    key_groups.push_back(key_groups_[keep[i]]);
  }
  grouper_ = std::move(grouper);
  arena_ = std::move(arena);
  key_offsets_ = std::move(offsets);
  key_groups_ = std::move(key_groups);
  hashes_ = {};
  groups_scratch_ = {};
  return Status::ok();
}

std::vector<Scalar> KeyRegistry::key_values(KeyId id) const {
  SABOT_CHECK_LT(id, num_keys());
  std::vector<Scalar> out;
  SABOT_CHECK_OK(decode_key(key_bytes(id), key_types(), &out));
  return out;
}

namespace {

template <typename T, typename Sink>
Status read_value(ByteReader& r, size_t c, Sink& sink) {
  T v{};
  SABOT_RETURN_IF_ERROR(r.get(&v));
  sink.value(c, v);
  return Status::ok();
}

// Reads row values in the key-bytes encoding (value_bytes.h), handing each to `sink` as
// null(column) or value(column, v) with v a bool, int32_t, int64_t (also timestamps), uint64_t,
// double or std::string_view (utf8 checked).
template <typename Sink>
Status read_values(std::string_view bytes, std::span<const DataType> types, Sink& sink) {
  ByteReader r(bytes, "key");
  for (size_t c = 0; c < types.size(); ++c) {
    const DataType& t = types[c];
    uint8_t valid = 0;
    SABOT_RETURN_IF_ERROR(r.get(&valid));
    if (valid > 1) return r.invalid("validity byte " + std::to_string(valid));
    if (valid == 0) {
      sink.null(c);
      continue;
    }
    switch (t.id()) {
      case TypeId::kBool: {
        bool b = false;
        SABOT_RETURN_IF_ERROR(StateCodec<bool>::decode(r, &b));
        sink.value(c, b);
        break;
      }
      case TypeId::kInt32:
        SABOT_RETURN_IF_ERROR(read_value<int32_t>(r, c, sink));
        break;
      case TypeId::kInt64:
      case TypeId::kTimestamp:
        SABOT_RETURN_IF_ERROR(read_value<int64_t>(r, c, sink));
        break;
      case TypeId::kUInt64:
        SABOT_RETURN_IF_ERROR(read_value<uint64_t>(r, c, sink));
        break;
      case TypeId::kFloat64:
        SABOT_RETURN_IF_ERROR(read_value<double>(r, c, sink));
        break;
      case TypeId::kUtf8:
      case TypeId::kBinary: {
        std::string_view v;
        SABOT_RETURN_IF_ERROR(r.get_bytes(&v));
        if (t.id() == TypeId::kUtf8 && !columnar::is_valid_utf8(v)) {
          return r.invalid("utf8 key value is not valid UTF-8");
        }
        sink.value(c, v);
        break;
      }
    }
  }
  return r.expect_end();
}

// read_values' sink of append_values.
struct ToBuilders {
  std::span<const std::unique_ptr<columnar::ArrayBuilder>> builders;
  void null(size_t c) { builders[c]->append_null(); }
  void value(size_t c, bool v) { static_cast<columnar::BooleanBuilder&>(*builders[c]).append(v); }
  void value(size_t c, std::string_view v) {
    static_cast<columnar::BinaryBuilder&>(*builders[c]).append(v);
  }
  template <typename T>
  void value(size_t c, T v) {
    static_cast<columnar::NumericBuilder<T>&>(*builders[c]).append(v);
  }
};

}  // namespace

Status KeyRegistry::decode_key(std::string_view bytes, std::span<const DataType> types,
                               std::vector<Scalar>* out) {
  struct ToScalars {
    std::span<const DataType> types;
    std::vector<Scalar>* out;
    void null(size_t c) { out->push_back(Scalar::null(types[c])); }
    void value(size_t, bool v) { out->push_back(Scalar::of_bool(v)); }
    void value(size_t, int32_t v) { out->push_back(Scalar::of_int32(v)); }
    void value(size_t c, int64_t v) { out->push_back(Scalar{types[c], true, v}); }
    void value(size_t, uint64_t v) { out->push_back(Scalar::of_uint64(v)); }
    void value(size_t, double v) { out->push_back(Scalar::of_float64(v)); }
    void value(size_t c, std::string_view v) {
      out->push_back(Scalar{types[c], true, std::string(v)});
    }
  } sink{types, out};
  out->clear();
  return read_values(bytes, types, sink);
}

Status append_values(std::string_view bytes, std::span<const DataType> types,
                     std::span<const std::unique_ptr<columnar::ArrayBuilder>> builders) {
  SABOT_CHECK_EQ(types.size(), builders.size());
  ToBuilders sink{builders};
  return read_values(bytes, types, sink);
}

}  // namespace sabot::state
