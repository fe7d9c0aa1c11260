// Internal: the concrete GroupedAccumulator implementations behind make_accumulator(). Templated
// per value type so that every update loop is a tight loop over raw pointers with no virtual call
// per row. Snapshot layout of every accumulator: "SACC", version, kind, input type, num_groups,
// then the accumulator's own per-group vectors.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "compute/state_codec.h"
#include "sabot/columnar/bitmap.h"
#include "sabot/columnar/builder.h"
#include "sabot/compute/aggregate.h"

namespace sabot::compute::internal {

inline constexpr uint8_t kAccumulatorVersion = 1;

// Calls f(i) for every non-null element i of `a`.
template <typename F>
inline void for_each_valid(const Array& a, F&& f) {
  const int64_t n = a.length();
  if (a.null_count() == 0) {
    for (int64_t i = 0; i < n; ++i) f(i);
    return;
  }
  const uint8_t* valid = a.validity_bits();
  const int64_t off = a.offset();
  for (int64_t i = 0; i < n; ++i) {
    if (columnar::bits::get(valid, off + i)) f(i);
  }
}

void write_accumulator_header(const GroupedAccumulator& acc, std::string* out);
// Checks the header against `acc` and returns the snapshot's number of groups.
Status read_accumulator_header(const GroupedAccumulator& acc, ByteReader* r, uint32_t* num_groups);

// serialize_groups()/deserialize_groups(): kind, input type and group count, then per state
// vector the values of the listed groups, gathered (scattered) in one pass.
void write_groups_header(const GroupedAccumulator& acc, size_t num_groups, ByteWriter& w);
Status read_groups_header(const GroupedAccumulator& acc, ByteReader& r, size_t num_groups);

// Appends v[groups[0]], v[groups[1]], ... as raw bytes.
template <typename T>
void put_gathered(ByteWriter& w, const std::vector<T>& v, std::span<const uint32_t> groups) {
  static_assert(std::is_trivially_copyable_v<T>);
  std::string* out = w.out();
  const size_t at = out->size();
  out->resize(at + groups.size() * sizeof(T));
  char* dst = out->data() + at;
  for (size_t i = 0; i < groups.size(); ++i) {
    std::memcpy(dst + i * sizeof(T), &v[groups[i]], sizeof(T));
  }
}

// Reads groups.size() values written by put_gathered into v[groups[i]].
template <typename T>
Status get_scattered(ByteReader& r, std::vector<T>& v, std::span<const uint32_t> groups) {
  static_assert(std::is_trivially_copyable_v<T>);
  if (r.remaining() / sizeof(T) < groups.size()) {
    return r.invalid("truncated (need " + std::to_string(groups.size() * sizeof(T)) + " bytes, " +
                     std::to_string(r.remaining()) + " left)");
  }
  std::vector<T> tmp(groups.size());
  SABOT_RETURN_IF_ERROR(r.get_raw(tmp.data(), tmp.size() * sizeof(T)));
  for (size_t i = 0; i < groups.size(); ++i) v[groups[i]] = tmp[i];
  return Status::ok();
}

// ---------------------------------------------------------------------------------------------
class CountAccumulator final : public GroupedAccumulator {
 public:
  CountAccumulator(AggregateKind kind, DataType input)
      : GroupedAccumulator(kind, input, columnar::int64()) {}
  void resize(uint32_t n) override;
  Status update(const Array& values, std::span<const uint32_t> group_ids) override;
  Status merge(const GroupedAccumulator& other, std::span<const uint32_t> map) override;
  Result<Array> finalize() const override;
  void serialize(std::string* out) const override;
  Status deserialize(std::string_view bytes) override;
  void serialize_groups(std::span<const uint32_t> groups, ByteWriter& w) const override;
  Status deserialize_groups(ByteReader& r, std::span<const uint32_t> groups) override;

 private:
  std::vector<int64_t> counts_;
};

// ---------------------------------------------------------------------------------------------
// Sum of In values in an Acc accumulator; integer sums check overflow (see aggregate.h).
template <typename In, typename Acc>
class SumAccumulator final : public GroupedAccumulator {
 public:
  SumAccumulator(AggregateKind kind, DataType input, DataType output)
      : GroupedAccumulator(kind, input, output) {}

  void resize(uint32_t n) override {
    sums_.resize(n, Acc{0});
    counts_.resize(n, 0);
    num_groups_ = n;
  }

  Status update(const Array& values, std::span<const uint32_t> ids) override {
    SABOT_RETURN_IF_ERROR(check_update(values, ids));
    const In* v = values.values<In>();
    Acc* sums = sums_.data();
    int64_t* counts = counts_.data();
    const uint32_t* g = ids.data();
    if constexpr (std::is_integral_v<Acc>) {
      bool overflow = false;
      for_each_valid(values, [&](int64_t i) {
        overflow |= __builtin_add_overflow(sums[g[i]], static_cast<Acc>(v[i]), &sums[g[i]]);
        ++counts[g[i]];
      });
      if (overflow) return overflow_error();
    } else {
      for_each_valid(values, [&](int64_t i) {
        sums[g[i]] += v[i];
        ++counts[g[i]];
      });
    }
    return Status::ok();
  }

  Status merge(const GroupedAccumulator& other_base, std::span<const uint32_t> map) override {
    SABOT_RETURN_IF_ERROR(check_merge(other_base, map));
    const auto& other = static_cast<const SumAccumulator&>(other_base);
    bool overflow = false;
    for (size_t g = 0; g < map.size(); ++g) {
      if constexpr (std::is_integral_v<Acc>) {
        overflow |= __builtin_add_overflow(sums_[map[g]], other.sums_[g], &sums_[map[g]]);
      } else {
        sums_[map[g]] += other.sums_[g];
      }
      counts_[map[g]] += other.counts_[g];
    }
    if (overflow) return overflow_error();
    return Status::ok();
  }

  Result<Array> finalize() const override {
    columnar::NumericBuilder<Acc> b(output_type_);
    b.reserve(num_groups_);
    for (uint32_t g = 0; g < num_groups_; ++g) {
      if (counts_[g] == 0) {
        b.append_null();
      } else {
        b.append(sums_[g]);
      }
    }
    return b.finish();
  }

  void serialize(std::string* out) const override {
    write_accumulator_header(*this, out);
    ByteWriter w(out);
    w.put_vector(sums_);
    w.put_vector(counts_);
  }

  Status deserialize(std::string_view bytes) override {
    ByteReader r(bytes, "sum accumulator");
    uint32_t n = 0;
    SABOT_RETURN_IF_ERROR(read_accumulator_header(*this, &r, &n));
    std::vector<Acc> sums;
    std::vector<int64_t> counts;
    SABOT_RETURN_IF_ERROR(r.get_vector(&sums));
    SABOT_RETURN_IF_ERROR(r.get_vector(&counts));
    SABOT_RETURN_IF_ERROR(r.expect_end());
    if (sums.size() != n || counts.size() != n) return r.invalid("group count mismatch");
    sums_ = std::move(sums);
    counts_ = std::move(counts);
    num_groups_ = n;
    return Status::ok();
  }

  void serialize_groups(std::span<const uint32_t> groups, ByteWriter& w) const override {
    write_groups_header(*this, groups.size(), w);
    put_gathered(w, sums_, groups);
    put_gathered(w, counts_, groups);
  }

  Status deserialize_groups(ByteReader& r, std::span<const uint32_t> groups) override {
    SABOT_RETURN_IF_ERROR(read_groups_header(*this, r, groups.size()));
    SABOT_RETURN_IF_ERROR(get_scattered(r, sums_, groups));
    return get_scattered(r, counts_, groups);
  }

 private:
  Status overflow_error() const {
    return Status::out_of_range("sum of " + input_type_.to_string() + " values overflowed " +
                                output_type_.to_string());
  }
  std::vector<Acc> sums_;
  std::vector<int64_t> counts_;
};

// ---------------------------------------------------------------------------------------------
template <typename In>
class AvgAccumulator final : public GroupedAccumulator {
 public:
  AvgAccumulator(AggregateKind kind, DataType input, DataType output)
      : GroupedAccumulator(kind, input, output) {}

  void resize(uint32_t n) override {
    sums_.resize(n, 0.0);
    counts_.resize(n, 0);
    num_groups_ = n;
  }

  Status update(const Array& values, std::span<const uint32_t> ids) override {
    SABOT_RETURN_IF_ERROR(check_update(values, ids));
    const In* v = values.values<In>();
    const uint32_t* g = ids.data();
    double* sums = sums_.data();
    int64_t* counts = counts_.data();
    for_each_valid(values, [&](int64_t i) {
      sums[g[i]] += static_cast<double>(v[i]);
      ++counts[g[i]];
    });
    return Status::ok();
  }

  Status merge(const GroupedAccumulator& other_base, std::span<const uint32_t> map) override {
    SABOT_RETURN_IF_ERROR(check_merge(other_base, map));
    const auto& other = static_cast<const AvgAccumulator&>(other_base);
    for (size_t g = 0; g < map.size(); ++g) {
      sums_[map[g]] += other.sums_[g];
      counts_[map[g]] += other.counts_[g];
    }
    return Status::ok();
  }

  Result<Array> finalize() const override {
    columnar::Float64Builder b;
    b.reserve(num_groups_);
    for (uint32_t g = 0; g < num_groups_; ++g) {
      if (counts_[g] == 0) {
        b.append_null();
      } else {
        b.append(sums_[g] / static_cast<double>(counts_[g]));
      }
    }
    return b.finish();
  }

  void serialize(std::string* out) const override {
    write_accumulator_header(*this, out);
    ByteWriter w(out);
    w.put_vector(sums_);
    w.put_vector(counts_);
  }

  Status deserialize(std::string_view bytes) override {
    ByteReader r(bytes, "avg accumulator");
    uint32_t n = 0;
    SABOT_RETURN_IF_ERROR(read_accumulator_header(*this, &r, &n));
    std::vector<double> sums;
    std::vector<int64_t> counts;
    SABOT_RETURN_IF_ERROR(r.get_vector(&sums));
    SABOT_RETURN_IF_ERROR(r.get_vector(&counts));
    SABOT_RETURN_IF_ERROR(r.expect_end());
    if (sums.size() != n || counts.size() != n) return r.invalid("group count mismatch");
    sums_ = std::move(sums);
    counts_ = std::move(counts);
    num_groups_ = n;
    return Status::ok();
  }

  void serialize_groups(std::span<const uint32_t> groups, ByteWriter& w) const override {
    write_groups_header(*this, groups.size(), w);
    put_gathered(w, sums_, groups);
    put_gathered(w, counts_, groups);
  }

  Status deserialize_groups(ByteReader& r, std::span<const uint32_t> groups) override {
    SABOT_RETURN_IF_ERROR(read_groups_header(*this, r, groups.size()));
    SABOT_RETURN_IF_ERROR(get_scattered(r, sums_, groups));
    return get_scattered(r, counts_, groups);
  }

 private:
  std::vector<double> sums_;
  std::vector<int64_t> counts_;
};

// ---------------------------------------------------------------------------------------------
// Sample variance / standard deviation: Welford per value, Chan et al. to merge partials.
template <typename In>
class VarianceAccumulator final : public GroupedAccumulator {
 public:
  VarianceAccumulator(AggregateKind kind, DataType input, DataType output)
      : GroupedAccumulator(kind, input, output) {}

  void resize(uint32_t n) override {
    counts_.resize(n, 0);
    means_.resize(n, 0.0);
    m2s_.resize(n, 0.0);
    num_groups_ = n;
  }

  Status update(const Array& values, std::span<const uint32_t> ids) override {
    SABOT_RETURN_IF_ERROR(check_update(values, ids));
    const In* v = values.values<In>();
    const uint32_t* g = ids.data();
    for_each_valid(values, [&](int64_t i) {
      const uint32_t k = g[i];
      const double x = static_cast<double>(v[i]);
      const int64_t n = ++counts_[k];
      const double delta = x - means_[k];
      means_[k] += delta / static_cast<double>(n);
      m2s_[k] += delta * (x - means_[k]);
    });
    return Status::ok();
  }

  Status merge(const GroupedAccumulator& other_base, std::span<const uint32_t> map) override {
    SABOT_RETURN_IF_ERROR(check_merge(other_base, map));
    const auto& other = static_cast<const VarianceAccumulator&>(other_base);
    for (size_t g = 0; g < map.size(); ++g) {
      const int64_t nb = other.counts_[g];
      if (nb == 0) continue;
      const uint32_t k = map[g];
      const int64_t na = counts_[k];
      const double n = static_cast<double>(na + nb);
      const double delta = other.means_[g] - means_[k];
      means_[k] += delta * static_cast<double>(nb) / n;
      m2s_[k] +=
          other.m2s_[g] + delta * delta * static_cast<double>(na) * static_cast<double>(nb) / n;
      counts_[k] = na + nb;
    }
    return Status::ok();
  }

  Result<Array> finalize() const override {
    columnar::Float64Builder b;
    b.reserve(num_groups_);
    for (uint32_t g = 0; g < num_groups_; ++g) {
      if (counts_[g] < 2) {
        b.append_null();
        continue;
      }
      const double var = std::max(0.0, m2s_[g] / static_cast<double>(counts_[g] - 1));
      b.append(kind_ == AggregateKind::kStddev ? std::sqrt(var) : var);
    }
    return b.finish();
  }

  void serialize(std::string* out) const override {
    write_accumulator_header(*this, out);
    ByteWriter w(out);
    w.put_vector(counts_);
    w.put_vector(means_);
    w.put_vector(m2s_);
  }

  Status deserialize(std::string_view bytes) override {
    ByteReader r(bytes, "variance accumulator");
    uint32_t n = 0;
    SABOT_RETURN_IF_ERROR(read_accumulator_header(*this, &r, &n));
    std::vector<int64_t> counts;
    std::vector<double> means;
    std::vector<double> m2s;
    SABOT_RETURN_IF_ERROR(r.get_vector(&counts));
    SABOT_RETURN_IF_ERROR(r.get_vector(&means));
    SABOT_RETURN_IF_ERROR(r.get_vector(&m2s));
    SABOT_RETURN_IF_ERROR(r.expect_end());
    if (counts.size() != n || means.size() != n || m2s.size() != n) {
      return r.invalid("group count mismatch");
    }
    counts_ = std::move(counts);
    means_ = std::move(means);
    m2s_ = std::move(m2s);
    num_groups_ = n;
    return Status::ok();
  }

  void serialize_groups(std::span<const uint32_t> groups, ByteWriter& w) const override {
    write_groups_header(*this, groups.size(), w);
    put_gathered(w, counts_, groups);
    put_gathered(w, means_, groups);
    put_gathered(w, m2s_, groups);
  }

  Status deserialize_groups(ByteReader& r, std::span<const uint32_t> groups) override {
    SABOT_RETURN_IF_ERROR(read_groups_header(*this, r, groups.size()));
    SABOT_RETURN_IF_ERROR(get_scattered(r, counts_, groups));
    SABOT_RETURN_IF_ERROR(get_scattered(r, means_, groups));
    return get_scattered(r, m2s_, groups);
  }

 private:
  std::vector<int64_t> counts_;
  std::vector<double> means_;
  std::vector<double> m2s_;
};

// ---------------------------------------------------------------------------------------------
// Value traits for accumulators that keep one value per group (min, max, first, last).
template <typename T>
struct FixedTraits {
  using Value = T;
  using Store = T;
  using Builder = columnar::NumericBuilder<T>;
  struct Reader {
    explicit Reader(const Array& a) : v(a.values<T>()) {}
    T operator[](int64_t i) const { return v[i]; }
    const T* v;
  };
  static Value view(const Store& s) { return s; }
  static void assign(Store& s, Value v) { s = v; }
  static void append(Builder& b, const Store& s) { b.append(s); }
  static void write(ByteWriter& w, const std::vector<Store>& v) { w.put_vector(v); }
  static Status read(ByteReader& r, std::vector<Store>* v) { return r.get_vector(v); }
  static void write_groups(ByteWriter& w, const std::vector<Store>& v,
                           std::span<const uint32_t> groups) {
    put_gathered(w, v, groups);
  }
  static Status read_groups(ByteReader& r, std::vector<Store>& v,
                            std::span<const uint32_t> groups) {
    return get_scattered(r, v, groups);
  }
};

struct BoolTraits {
  using Value = bool;
  using Store = uint8_t;
  using Builder = columnar::BooleanBuilder;
  struct Reader {
    explicit Reader(const Array& a) : bits(a.bool_bits()), off(a.offset()) {}
    bool operator[](int64_t i) const { return columnar::bits::get(bits, off + i); }
    const uint8_t* bits;
    int64_t off;
  };
  static Value view(const Store& s) { return s != 0; }
  static void assign(Store& s, Value v) { s = v ? 1 : 0; }
  static void append(Builder& b, const Store& s) { b.append(s != 0); }
  static void write(ByteWriter& w, const std::vector<Store>& v) { w.put_vector(v); }
  static Status read(ByteReader& r, std::vector<Store>* v) { return r.get_vector(v); }
  static void write_groups(ByteWriter& w, const std::vector<Store>& v,
                           std::span<const uint32_t> groups) {
    put_gathered(w, v, groups);
  }
  static Status read_groups(ByteReader& r, std::vector<Store>& v,
                            std::span<const uint32_t> groups) {
    return get_scattered(r, v, groups);
  }
};

struct StringTraits {
  using Value = std::string_view;
  using Store = std::string;
  using Builder = columnar::BinaryBuilder;
  struct Reader {
    explicit Reader(const Array& a)
        : offsets(a.offsets()), data(reinterpret_cast<const char*>(a.raw_data())) {}
    std::string_view operator[](int64_t i) const {
      return std::string_view(data + offsets[i], static_cast<size_t>(offsets[i + 1] - offsets[i]));
    }
    const int32_t* offsets;
    const char* data;
  };
  static Value view(const Store& s) { return s; }
  static void assign(Store& s, Value v) { s.assign(v.data(), v.size()); }
  static void append(Builder& b, const Store& s) { b.append(s); }
  static void write(ByteWriter& w, const std::vector<Store>& v) {
    w.put<uint64_t>(v.size());
    for (const std::string& s : v) w.put_bytes(s);
  }
  static Status read(ByteReader& r, std::vector<Store>* v) {
    uint64_t n = 0;
    SABOT_RETURN_IF_ERROR(r.get(&n));
    v->clear();
    for (uint64_t i = 0; i < n; ++i) {
      std::string s;
      SABOT_RETURN_IF_ERROR(r.get_bytes(&s));
      v->push_back(std::move(s));
    }
    return Status::ok();
  }
  static void write_groups(ByteWriter& w, const std::vector<Store>& v,
                           std::span<const uint32_t> groups) {
    for (uint32_t g : groups) w.put_bytes(v[g]);
  }
  static Status read_groups(ByteReader& r, std::vector<Store>& v,
                            std::span<const uint32_t> groups) {
    for (uint32_t g : groups) SABOT_RETURN_IF_ERROR(r.get_bytes(&v[g]));
    return Status::ok();
  }
};

// Replacement rules: should the group's current value `cur` (present when `has`) give way to v?
struct MinPolicy {
  template <typename V>
  static bool replace(bool has, V cur, V v) {
    if (!has) return true;
    if constexpr (std::is_floating_point_v<V>) {
      if (std::isnan(cur)) return !std::isnan(v);  // NaN only survives when all values are NaN
    }
    return v < cur;
  }
};
struct MaxPolicy {
  template <typename V>
  static bool replace(bool has, V cur, V v) {
    if (!has) return true;
    if constexpr (std::is_floating_point_v<V>) {
      if (std::isnan(cur)) return !std::isnan(v);
    }
    return cur < v;
  }
};
struct FirstPolicy {
  template <typename V>
  static bool replace(bool has, V, V) {
    return !has;
  }
};
struct LastPolicy {
  template <typename V>
  static bool replace(bool, V, V) {
    return true;
  }
};

template <typename Traits, typename Policy>
class SelectAccumulator final : public GroupedAccumulator {
 public:
  using Value = typename Traits::Value;
  SelectAccumulator(AggregateKind kind, DataType input) : GroupedAccumulator(kind, input, input) {}

  void resize(uint32_t n) override {
    values_.resize(n);  // groups beyond the old size start empty (has_ = 0)
    has_.resize(n, 0);
    num_groups_ = n;
  }

  Status update(const Array& values, std::span<const uint32_t> ids) override {
    SABOT_RETURN_IF_ERROR(check_update(values, ids));
    typename Traits::Reader reader(values);
    const uint32_t* g = ids.data();
    for_each_valid(values, [&](int64_t i) {
      const uint32_t k = g[i];
      const Value v = reader[i];
      if (Policy::replace(has_[k] != 0, Traits::view(values_[k]), v)) {
        Traits::assign(values_[k], v);
        has_[k] = 1;
      }
    });
    return Status::ok();
  }

  Status merge(const GroupedAccumulator& other_base, std::span<const uint32_t> map) override {
    SABOT_RETURN_IF_ERROR(check_merge(other_base, map));
    const auto& other = static_cast<const SelectAccumulator&>(other_base);
    for (size_t g = 0; g < map.size(); ++g) {
      if (!other.has_[g]) continue;
      const uint32_t k = map[g];
      const Value v = Traits::view(other.values_[g]);
      if (Policy::replace(has_[k] != 0, Traits::view(values_[k]), v)) {
        Traits::assign(values_[k], v);
        has_[k] = 1;
      }
    }
    return Status::ok();
  }

  Result<Array> finalize() const override {
    auto builder = columnar::make_builder(output_type_);
    auto& b = static_cast<typename Traits::Builder&>(*builder);
    b.reserve(num_groups_);
    for (uint32_t g = 0; g < num_groups_; ++g) {
      if (has_[g]) {
        Traits::append(b, values_[g]);
      } else {
        b.append_null();
      }
    }
    return b.finish();
  }

  void serialize(std::string* out) const override {
    write_accumulator_header(*this, out);
    ByteWriter w(out);
    w.put_vector(has_);
    Traits::write(w, values_);
  }

  Status deserialize(std::string_view bytes) override {
    ByteReader r(bytes, "accumulator");
    uint32_t n = 0;
    SABOT_RETURN_IF_ERROR(read_accumulator_header(*this, &r, &n));
    std::vector<uint8_t> has;
    std::vector<typename Traits::Store> values;
    SABOT_RETURN_IF_ERROR(r.get_vector(&has));
    SABOT_RETURN_IF_ERROR(Traits::read(r, &values));
    SABOT_RETURN_IF_ERROR(r.expect_end());
    if (has.size() != n || values.size() != n) return r.invalid("group count mismatch");
    has_ = std::move(has);
    values_ = std::move(values);
    num_groups_ = n;
    return Status::ok();
  }

  void serialize_groups(std::span<const uint32_t> groups, ByteWriter& w) const override {
    write_groups_header(*this, groups.size(), w);
    put_gathered(w, has_, groups);
    Traits::write_groups(w, values_, groups);
  }

  Status deserialize_groups(ByteReader& r, std::span<const uint32_t> groups) override {
    SABOT_RETURN_IF_ERROR(read_groups_header(*this, r, groups.size()));
    SABOT_RETURN_IF_ERROR(get_scattered(r, has_, groups));
    return Traits::read_groups(r, values_, groups);
  }

 private:
  std::vector<typename Traits::Store> values_;
  std::vector<uint8_t> has_;
};

// ---------------------------------------------------------------------------------------------
// Distinct non-null values per group: one open-addressing set over (group, normalized value bytes)
// entries, so merging partials is re-inserting the other's entries under mapped group ids.
class CountDistinctAccumulator final : public GroupedAccumulator {
 public:
  CountDistinctAccumulator(AggregateKind kind, DataType input);
  void resize(uint32_t n) override;
  Status update(const Array& values, std::span<const uint32_t> group_ids) override;
  Status merge(const GroupedAccumulator& other, std::span<const uint32_t> map) override;
  Result<Array> finalize() const override;
  void serialize(std::string* out) const override;
  Status deserialize(std::string_view bytes) override;
  // O(entries) per call (one scan picks the listed groups' entries).
  void serialize_groups(std::span<const uint32_t> groups, ByteWriter& w) const override;
  Status deserialize_groups(ByteReader& r, std::span<const uint32_t> groups) override;

 private:
  void insert(uint32_t gid, uint64_t value_hash, const uint8_t* bytes, uint64_t len);
  void rebuild_table(size_t min_capacity);

  std::vector<uint32_t> slots_;  // entry index or empty
  size_t mask_ = 0;
  int shift_ = 64;
  std::vector<uint32_t> entry_gid_;
  std::vector<uint64_t> entry_hash_;    // hash of the value alone (hash_column)
  std::vector<uint64_t> entry_offset_;  // entry e's bytes: arena_[offset[e], offset[e+1])
  std::vector<uint8_t> arena_;
  std::vector<int64_t> counts_;
  std::vector<uint64_t> hash_scratch_;
};

}  // namespace sabot::compute::internal
