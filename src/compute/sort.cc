#include "sabot/compute/sort.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <functional>
#include <limits>
#include <memory>
#include <numeric>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "sabot/columnar/bitmap.h"
#include "sabot/compute/selection.h"

namespace sabot::compute {

using columnar::Array;
using columnar::RecordBatch;
using columnar::TypeId;
namespace bits = columnar::bits;

namespace {

Status check_length(int64_t length, const char* what) {
  if (length > std::numeric_limits<int32_t>::max()) {
    return Status::invalid_argument(std::string(what) + ": " + std::to_string(length) +
                                    " rows exceed the int32 row indices of a sort");
  }
  return Status::ok();
}

// One sort key with its buffers resolved once, so comparing two rows is a switch on the type and
// never a virtual call.
struct KeyView {
  TypeId id = TypeId::kInt64;
  const uint8_t* validity = nullptr;  // null when the column has no nulls
  int64_t offset = 0;                 // bit offset for validity and bool values
  const void* values = nullptr;       // fixed width: already offset; bool: raw bits
  const int32_t* offsets = nullptr;   // utf8/binary: already offset
  const uint8_t* data = nullptr;
  bool ascending = true;
  bool nulls_first = false;
};

KeyView make_key_view(const Array& a, bool ascending, bool nulls_first) {
  KeyView k;
  k.id = a.type().id();
  k.validity = a.null_count() > 0 ? a.validity_bits() : nullptr;
  k.offset = a.offset();
  k.ascending = ascending;
  k.nulls_first = nulls_first;
  switch (k.id) {
    case TypeId::kBool:
      k.values = a.bool_bits();
      break;
    case TypeId::kInt32:
      k.values = a.values<int32_t>();
      break;
    case TypeId::kInt64:
    case TypeId::kTimestamp:
      k.values = a.values<int64_t>();
      break;
    case TypeId::kUInt64:
      k.values = a.values<uint64_t>();
      break;
    case TypeId::kFloat64:
      k.values = a.values<double>();
      break;
    case TypeId::kUtf8:
    case TypeId::kBinary:
      k.offsets = a.offsets();
      k.data = a.raw_data();
      break;
  }
  return k;
}

template <typename T>
inline int three_way(T a, T b) {
  return (a > b) - (a < b);
}

inline std::string_view bytes_at(const KeyView& k, int32_t i) {
  return {reinterpret_cast<const char*>(k.data) + k.offsets[i],
          static_cast<size_t>(k.offsets[i + 1] - k.offsets[i])};
}

// <0, 0, >0 as row a sorts before, with, or after row b under this key.
inline int compare_rows(const KeyView& k, int32_t a, int32_t b) {
  if (k.validity != nullptr) {
    const bool va = bits::get(k.validity, k.offset + a);
    const bool vb = bits::get(k.validity, k.offset + b);
    if (!va || !vb) {
      if (va == vb) return 0;
      return (!va) == k.nulls_first ? -1 : 1;
    }
  }
  int c = 0;
  switch (k.id) {
    case TypeId::kBool: {
      const auto* b8 = static_cast<const uint8_t*>(k.values);
      c = three_way<int>(bits::get(b8, k.offset + a), bits::get(b8, k.offset + b));
      break;
    }
    case TypeId::kInt32: {
      const auto* v = static_cast<const int32_t*>(k.values);
      c = three_way(v[a], v[b]);
      break;
    }
    case TypeId::kInt64:
    case TypeId::kTimestamp: {
      const auto* v = static_cast<const int64_t*>(k.values);
      c = three_way(v[a], v[b]);
      break;
    }
    case TypeId::kUInt64: {
      const auto* v = static_cast<const uint64_t*>(k.values);
      c = three_way(v[a], v[b]);
      break;
    }
    case TypeId::kFloat64: {
      const auto* v = static_cast<const double*>(k.values);
      const bool na = std::isnan(v[a]);
      const bool nb = std::isnan(v[b]);
      // NaN follows every number whatever the direction, so it is decided before the flip.
      if (na || nb) return na == nb ? 0 : (na ? 1 : -1);
      c = three_way(v[a], v[b]);
      break;
    }
    case TypeId::kUtf8:
    case TypeId::kBinary: {
      // char_traits<char>::compare orders bytes as unsigned char, like memcmp.
      const int r = bytes_at(k, a).compare(bytes_at(k, b));
      c = (r > 0) - (r < 0);
      break;
    }
  }
  return k.ascending ? c : -c;
}

// Orders rows by keys[first..] and then by row index, which makes any sort with it stable.
struct RowLess {
  const std::vector<KeyView>* keys;
  size_t first;
  bool operator()(int32_t a, int32_t b) const {
    for (size_t i = first; i < keys->size(); ++i) {
      const int c = compare_rows((*keys)[i], a, b);
      if (c != 0) return c < 0;
    }
    return a < b;
  }
};

// Writes nulls, sorted values and NaNs in the requested order.
void emit(bool nulls_first, const std::vector<int32_t>& nulls, const std::vector<int32_t>& sorted,
          const std::vector<int32_t>& nans, int32_t* out) {
  if (nulls_first) out = std::copy(nulls.begin(), nulls.end(), out);
  out = std::copy(sorted.begin(), sorted.end(), out);
  out = std::copy(nans.begin(), nans.end(), out);
  if (!nulls_first) std::copy(nulls.begin(), nulls.end(), out);
}

// Below this many rows a comparison sort of (value, row) pairs beats the radix passes.
constexpr size_t kRadixMinRows = 256;

// An unsigned image of a value whose unsigned order is the value order (NaN excluded).
template <typename T>
auto radix_key(T v) {
  if constexpr (std::is_same_v<T, int32_t>) {
    return static_cast<uint32_t>(v) ^ 0x8000'0000u;
  } else if constexpr (std::is_same_v<T, int64_t>) {
    return static_cast<uint64_t>(v) ^ (uint64_t{1} << 63);
  } else if constexpr (std::is_same_v<T, uint64_t>) {
    return v;
  } else {
    // -0.0 and 0.0 compare equal, so they share one key and keep their input order.
    const uint64_t b = std::bit_cast<uint64_t>(v == 0.0 ? 0.0 : v);
    return (b >> 63) != 0 ? ~b : b | (uint64_t{1} << 63);
  }
}

// Stable LSD radix sort of keys, carrying rows along: 11-bit digits, one histogram pass for all
// digits, and digits that every key shares are skipped (small value ranges sort in few passes).
template <typename K>
void radix_sort(K* keys, int32_t* rows, size_t n) {
  constexpr int kDigitBits = 11;
  constexpr size_t kBuckets = size_t{1} << kDigitBits;
  constexpr K kMask = static_cast<K>(kBuckets - 1);
  constexpr int kPasses = (8 * static_cast<int>(sizeof(K)) + kDigitBits - 1) / kDigitBits;
  if (n == 0) return;
  std::vector<uint32_t> counts(kPasses * kBuckets, 0);
  for (size_t i = 0; i < n; ++i) {
    const K k = keys[i];
    for (int p = 0; p < kPasses; ++p) ++counts[p * kBuckets + ((k >> (p * kDigitBits)) & kMask)];
  }
  // Scratch left uninitialized: every pass writes all of it before reading.
  std::unique_ptr<K[]> keys_scratch(new K[n]);
  std::unique_ptr<int32_t[]> rows_scratch(new int32_t[n]);
  K* keys_in = keys;
  int32_t* rows_in = rows;
  K* keys_out = keys_scratch.get();
  int32_t* rows_out = rows_scratch.get();
  for (int p = 0; p < kPasses; ++p) {
    uint32_t* c = &counts[p * kBuckets];
    const int shift = p * kDigitBits;
    if (c[(keys_in[0] >> shift) & kMask] == n) continue;
    uint32_t sum = 0;
    for (size_t b = 0; b < kBuckets; ++b) {
      const uint32_t t = c[b];
      c[b] = sum;
      sum += t;
    }
    for (size_t i = 0; i < n; ++i) {
      const uint32_t pos = c[(keys_in[i] >> shift) & kMask]++;
      keys_out[pos] = keys_in[i];
      rows_out[pos] = rows_in[i];
    }
    std::swap(keys_in, keys_out);
    std::swap(rows_in, rows_out);
  }
  if (keys_in != keys) {
    std::copy(keys_in, keys_in + n, keys);
    std::copy(rows_in, rows_in + n, rows);
  }
}

// Splits `rows` (in their current order) into nulls, NaNs and the rest.
template <typename IsNaN>
void partition_rows(const Array& a, std::span<const int32_t> rows, IsNaN is_nan,
                    std::vector<int32_t>* valid, std::vector<int32_t>* nulls,
                    std::vector<int32_t>* nans) {
  valid->reserve(rows.size());
  for (const int32_t r : rows) {
    if (a.is_null(r)) {
      nulls->push_back(r);
    } else if (is_nan(r)) {
      nans->push_back(r);
    } else {
      valid->push_back(r);
    }
  }
}

// Sorts (value, row) pairs with the row as tie-break and writes the rows back.
template <typename V, typename Less>
void sort_pairs(std::vector<std::pair<V, int32_t>>& pairs, bool ascending, Less less,
                std::vector<int32_t>* rows) {
  if (ascending) {
    std::sort(pairs.begin(), pairs.end(), [&](const auto& x, const auto& y) {
      return less(x.first, y.first) || (!less(y.first, x.first) && x.second < y.second);
    });
  } else {
    std::sort(pairs.begin(), pairs.end(), [&](const auto& x, const auto& y) {
      return less(y.first, x.first) || (!less(x.first, y.first) && x.second < y.second);
    });
  }
  for (size_t i = 0; i < pairs.size(); ++i) (*rows)[i] = pairs[i].second;
}

// The functions below sort `rows` of one column in place. `rows` must be in increasing order (all
// rows, or a run of rows that tied on earlier keys), so keeping ties in their current order is
// what makes the sort stable.

// Fixed-width keys never compare through indirection: large inputs radix-sort order-preserving
// keys, small ones sort (value, row) pairs.
template <typename T>
void sort_fixed(const Array& a, bool ascending, bool nulls_first, std::span<int32_t> rows) {
  const T* v = a.values<T>();
  std::vector<int32_t> valid;
  std::vector<int32_t> nulls;
  std::vector<int32_t> nans;
  using K = decltype(radix_key(T{}));
  // Complementing the keys reverses the order while the radix sort keeps ties stable.
  const K flip = ascending ? K{0} : static_cast<K>(~K{0});
  if (a.null_count() == 0 && !std::is_floating_point_v<T> && rows.size() >= kRadixMinRows) {
    // The common case sorts in place: no partition, no copies.
    std::unique_ptr<K[]> keys(new K[rows.size()]);
    for (size_t i = 0; i < rows.size(); ++i) keys[i] = radix_key(v[rows[i]]) ^ flip;
    radix_sort(keys.get(), rows.data(), rows.size());
    return;
  }
  if (a.null_count() == 0 && !std::is_floating_point_v<T>) {
    valid.assign(rows.begin(), rows.end());
  } else {
    partition_rows(
        a, rows,
        [&](int32_t r) {
          if constexpr (std::is_floating_point_v<T>) {
            return std::isnan(v[r]);
          } else {
            return false;
          }
        },
        &valid, &nulls, &nans);
  }
  if (valid.size() >= kRadixMinRows) {
    std::unique_ptr<K[]> keys(new K[valid.size()]);
    for (size_t i = 0; i < valid.size(); ++i) keys[i] = radix_key(v[valid[i]]) ^ flip;
    radix_sort(keys.get(), valid.data(), valid.size());
  } else {
    std::vector<std::pair<T, int32_t>> pairs(valid.size());
    for (size_t i = 0; i < valid.size(); ++i) pairs[i] = {v[valid[i]], valid[i]};
    sort_pairs(pairs, ascending, std::less<T>(), &valid);
  }
  emit(nulls_first, nulls, valid, nans, rows.data());
}

// Bool keys need no comparison sort: false rows then true rows (or the reverse), each in order.
void sort_bool(const Array& a, bool ascending, bool nulls_first, std::span<int32_t> rows) {
  std::vector<int32_t> nulls;
  std::vector<int32_t> groups[2];
  for (const int32_t r : rows) {
    if (a.is_null(r)) {
      nulls.push_back(r);
    } else {
      groups[a.bool_value(r) ? 1 : 0].push_back(r);
    }
  }
  std::vector<int32_t>& first = ascending ? groups[0] : groups[1];
  const std::vector<int32_t>& second = ascending ? groups[1] : groups[0];
  first.insert(first.end(), second.begin(), second.end());
  emit(nulls_first, nulls, first, {}, rows.data());
}

// The first 8 bytes big-endian, zero-padded: comparing prefixes as integers agrees with
// comparing the strings whenever the prefixes differ.
inline uint64_t string_prefix(std::string_view s) {
  uint64_t k = 0;
  const size_t m = std::min<size_t>(s.size(), 8);
  for (size_t i = 0; i < m; ++i) k |= uint64_t{static_cast<unsigned char>(s[i])} << (56 - 8 * i);
  return k;
}

// Strings radix-sort their 8-byte prefixes; only runs of equal prefixes are then compared in
// full, and runs whose strings all fit in the prefix differ only by length.
void sort_binary(const Array& a, bool ascending, bool nulls_first, std::span<int32_t> rows) {
  std::vector<int32_t> valid;
  std::vector<int32_t> nulls;
  std::vector<int32_t> nans;
  partition_rows(
      a, rows, [](int32_t) { return false; }, &valid, &nulls, &nans);
  // string_view::compare orders bytes as unsigned char, like memcmp.
  auto less = [](std::string_view x, std::string_view y) { return x.compare(y) < 0; };
  if (valid.size() < kRadixMinRows) {
    std::vector<std::pair<std::string_view, int32_t>> pairs(valid.size());
    for (size_t i = 0; i < valid.size(); ++i) pairs[i] = {a.string_view(valid[i]), valid[i]};
    sort_pairs(pairs, ascending, less, &valid);
    emit(nulls_first, nulls, valid, {}, rows.data());
    return;
  }
  const uint64_t flip = ascending ? 0 : ~uint64_t{0};
  std::vector<uint64_t> keys(valid.size());
  for (size_t i = 0; i < valid.size(); ++i) keys[i] = string_prefix(a.string_view(valid[i])) ^ flip;
  radix_sort(keys.data(), valid.data(), valid.size());
  std::vector<std::pair<std::string_view, int32_t>> pairs;
  size_t begin = 0;
  while (begin < valid.size()) {
    size_t end = begin + 1;
    size_t max_len = a.string_view(valid[begin]).size();
    bool same_len = true;
    while (end < valid.size() && keys[end] == keys[begin]) {
      const size_t len = a.string_view(valid[end]).size();
      same_len = same_len && len == max_len;
      max_len = std::max(max_len, len);
      ++end;
    }
    // Equal prefixes and every string within them: equal strings, already in order.
    const bool all_equal = same_len && max_len <= 8;
    if (end - begin > 1 && !all_equal) {
      pairs.resize(end - begin);
      for (size_t i = begin; i < end; ++i) pairs[i - begin] = {a.string_view(valid[i]), valid[i]};
      std::vector<int32_t> run(end - begin);
      sort_pairs(pairs, ascending, less, &run);
      std::copy(run.begin(), run.end(), valid.begin() + static_cast<ptrdiff_t>(begin));
    }
    begin = end;
  }
  emit(nulls_first, nulls, valid, {}, rows.data());
}

void sort_rows(const Array& a, bool ascending, bool nulls_first, std::span<int32_t> rows) {
  switch (a.type().id()) {
    case TypeId::kBool:
      return sort_bool(a, ascending, nulls_first, rows);
    case TypeId::kInt32:
      return sort_fixed<int32_t>(a, ascending, nulls_first, rows);
    case TypeId::kInt64:
    case TypeId::kTimestamp:
      return sort_fixed<int64_t>(a, ascending, nulls_first, rows);
    case TypeId::kUInt64:
      return sort_fixed<uint64_t>(a, ascending, nulls_first, rows);
    case TypeId::kFloat64:
      return sort_fixed<double>(a, ascending, nulls_first, rows);
    case TypeId::kUtf8:
    case TypeId::kBinary:
      return sort_binary(a, ascending, nulls_first, rows);
  }
}

// Below this many rows a tie run is ordered by comparing rows under the remaining keys; longer
// runs recurse through the typed single-column sorts.
constexpr size_t kMinTypedRun = 32;

// Sorts `rows` (increasing) by keys[k..]: the typed sort on key k, then each run of rows that tie
// on it by the keys after it.
void sort_by_keys(const std::vector<Array>& columns, std::span<const SortKey> keys,
                  const std::vector<KeyView>& views, size_t k, std::span<int32_t> rows) {
  sort_rows(columns[k], keys[k].ascending, keys[k].nulls_first, rows);
  if (k + 1 == views.size()) return;
  const RowLess rest{&views, k + 1};
  size_t begin = 0;
  while (begin < rows.size()) {
    size_t end = begin + 1;
    while (end < rows.size() && compare_rows(views[k], rows[begin], rows[end]) == 0) ++end;
    const size_t len = end - begin;
    if (len >= kMinTypedRun) {
      // The run is still in increasing row order because every sort here is stable.
      sort_by_keys(columns, keys, views, k + 1, rows.subspan(begin, len));
    } else if (len > 1) {
      std::sort(rows.begin() + static_cast<ptrdiff_t>(begin),
                rows.begin() + static_cast<ptrdiff_t>(end), rest);
    }
    begin = end;
  }
}

Result<std::vector<KeyView>> resolve_keys(const RecordBatch& batch, std::span<const SortKey> keys,
                                          const char* what) {
  if (keys.empty()) {
    return Status::invalid_argument(std::string(what) + ": at least one sort key is required");
  }
  std::vector<KeyView> views;
  views.reserve(keys.size());
  for (const SortKey& key : keys) {
    auto index = batch.schema().require_field_index(key.column);
    if (!index.is_ok()) {
      return index.status().with_context(std::string(what) + " by column '" + key.column + "'");
    }
    views.push_back(make_key_view(batch.column(*index), key.ascending, key.nulls_first));
  }
  return views;
}

}  // namespace

Result<std::vector<int32_t>> sort_indices(const Array& values, bool ascending, bool nulls_first) {
  SABOT_RETURN_IF_ERROR(check_length(values.length(), "sort_indices"));
  std::vector<int32_t> out(static_cast<size_t>(values.length()));
  std::iota(out.begin(), out.end(), 0);
  sort_rows(values, ascending, nulls_first, out);
  return out;
}

Result<std::vector<int32_t>> sort_indices(const RecordBatch& batch, std::span<const SortKey> keys) {
  SABOT_RETURN_IF_ERROR(check_length(batch.num_rows(), "sort_indices"));
  SABOT_ASSIGN_OR_RETURN(std::vector<KeyView> views, resolve_keys(batch, keys, "sort_indices"));
  std::vector<Array> columns;
  columns.reserve(keys.size());
  for (const SortKey& key : keys) columns.push_back(*batch.column(key.column));
  std::vector<int32_t> out(static_cast<size_t>(batch.num_rows()));
  std::iota(out.begin(), out.end(), 0);
  sort_by_keys(columns, keys, views, 0, out);
  return out;
}

Result<RecordBatch> sort(const RecordBatch& batch, std::span<const SortKey> keys) {
  SABOT_ASSIGN_OR_RETURN(std::vector<int32_t> indices, sort_indices(batch, keys));
  return take(batch, indices);
}

Result<RecordBatch> top_n(const RecordBatch& batch, std::span<const SortKey> keys, int64_t n) {
  if (n < 0) {
    return Status::invalid_argument("top_n: n must be >= 0, got " + std::to_string(n));
  }
  SABOT_RETURN_IF_ERROR(check_length(batch.num_rows(), "top_n"));
  SABOT_ASSIGN_OR_RETURN(std::vector<KeyView> views, resolve_keys(batch, keys, "top_n"));
  if (n >= batch.num_rows()) return sort(batch, keys);
  std::vector<int32_t> indices(static_cast<size_t>(batch.num_rows()));
  std::iota(indices.begin(), indices.end(), 0);
  // The index tie-break in RowLess makes the partial sort stable.
  std::partial_sort(indices.begin(), indices.begin() + n, indices.end(), RowLess{&views, 0});
  indices.resize(static_cast<size_t>(n));
  return take(batch, indices);
}

}  // namespace sabot::compute
