#include "sabot/compute/hash.h"

#include <algorithm>

#include "sabot/base/check.h"
#include "sabot/columnar/bitmap.h"

namespace sabot::compute {

using columnar::TypeId;
namespace bits = columnar::bits;

namespace {

// Odd 64-bit constants with a balanced mix of bits (from the golden ratio and well-known
// avalanche searches). Part of the stable hash definition: never change them.
constexpr uint64_t kK0 = 0x9e3779b97f4a7c15ULL;
constexpr uint64_t kK1 = 0xc2b2ae3d27d4eb4fULL;
constexpr uint64_t kK2 = 0x165667b19e3779f9ULL;
constexpr uint64_t kK3 = 0xd6e8feb86659fd93ULL;

inline uint64_t load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;  // little-endian machines only (x86-64, aarch64); pinned by hash_test
}
inline uint64_t load32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// 64x64->128 multiply folded to 64 bits: one instruction pair, mixes every input bit into the
// middle of the product.
inline uint64_t fold_mul(uint64_t a, uint64_t b) {
  unsigned __int128 r = static_cast<unsigned __int128>(a) * b;
  return static_cast<uint64_t>(r) ^ static_cast<uint64_t>(r >> 64);
}

inline uint64_t hash_bytes_inline(const uint8_t* p, size_t n) {
  uint64_t seed = kHashSeed;
  uint64_t a;
  uint64_t b;
  if (n - 4 <= 12) {
    // 4 to 16 bytes without a branch on the length: four 4-byte loads, two from each end, step q
    // apart (q = 0 below 8 bytes, 4 from 8 on), together cover every byte.
    const size_t q = (n >> 3) << 2;
    a = (load32(p) << 32) | load32(p + q);
    b = (load32(p + n - 4) << 32) | load32(p + n - 4 - q);
  } else if (n < 4) {
    a = n == 0 ? 0 : (uint64_t{p[0]} << 16) | (uint64_t{p[n >> 1]} << 8) | p[n - 1];
    b = 0;
  } else {
    // Two independent lanes over 32-byte blocks keep two multipliers busy.
    seed ^= fold_mul(n ^ kK0, kK1);
    uint64_t s0 = seed;
    uint64_t s1 = seed ^ kK2;
    size_t i = n;
    while (i > 32) {
      s0 = fold_mul(load64(p) ^ kK1, load64(p + 8) ^ s0);
      s1 = fold_mul(load64(p + 16) ^ kK2, load64(p + 24) ^ s1);
      p += 32;
      i -= 32;
    }
    seed = s0 ^ s1;
    if (i > 16) {
      seed = fold_mul(load64(p) ^ kK1, load64(p + 8) ^ seed);
    }
    // The last 16 bytes of the string (overlapping what came before when i < 16).
    a = load64(p + i - 16);
    b = load64(p + i - 8);
  }
  // The length enters the final multiply, so strings that differ only in length still differ.
  return fold_mul(fold_mul(a ^ kK1, b ^ seed) ^ kK3, n ^ kK0);
}

inline uint64_t normalize_float_bits(double v) {
  if (v == 0.0) v = 0.0;
  if (v != v) v = std::numeric_limits<double>::quiet_NaN();
  return std::bit_cast<uint64_t>(v);
}

// Hashes elements [start, start + n) of `array` into out[0, n): the one place that knows every
// type, shared by hash_column and hash_combine_column.
void hash_range(const Array& array, int64_t start, int64_t n, uint64_t* out) {
  switch (array.type().id()) {
    case TypeId::kInt32: {
      const int32_t* v = array.values<int32_t>() + start;
      for (int64_t i = 0; i < n; ++i) out[i] = hash_int64(v[i]);
      break;
    }
    case TypeId::kInt64:
    case TypeId::kTimestamp: {
      const int64_t* v = array.values<int64_t>() + start;
      for (int64_t i = 0; i < n; ++i) out[i] = hash_int64(v[i]);
      break;
    }
    case TypeId::kUInt64: {
      const uint64_t* v = array.values<uint64_t>() + start;
      for (int64_t i = 0; i < n; ++i) out[i] = hash_int64(static_cast<int64_t>(v[i]));
      break;
    }
    case TypeId::kFloat64: {
      const double* v = array.values<double>() + start;
      for (int64_t i = 0; i < n; ++i) {
        out[i] = hash_int64(static_cast<int64_t>(normalize_float_bits(v[i])));
      }
      break;
    }
    case TypeId::kBool: {
      const uint8_t* b = array.bool_bits();
      const int64_t off = array.offset() + start;
      for (int64_t i = 0; i < n; ++i) out[i] = hash_int64(bits::get(b, off + i) ? 1 : 0);
      break;
    }
    case TypeId::kUtf8:
    case TypeId::kBinary: {
      const int32_t* o = array.offsets() + start;
      const uint8_t* data = array.raw_data();
      for (int64_t i = 0; i < n; ++i) {
        out[i] = hash_bytes_inline(data + o[i], static_cast<size_t>(o[i + 1] - o[i]));
      }
      break;
    }
  }
  if (array.null_count() != 0) {
    // Branch-free select keeps this loop cheap even at 50 % nulls.
    const uint8_t* valid = array.validity_bits();
    const int64_t off = array.offset() + start;
    for (int64_t i = 0; i < n; ++i) {
      uint64_t mask = uint64_t{0} - static_cast<uint64_t>(bits::get(valid, off + i));
      out[i] = (out[i] & mask) | (kNullHash & ~mask);
    }
  }
}

}  // namespace

uint64_t hash_bytes(std::string_view bytes) {
  return hash_bytes_inline(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

void hash_column(const Array& array, std::span<uint64_t> out) {
  SABOT_CHECK_GE(static_cast<int64_t>(out.size()), array.length());
  hash_range(array, 0, array.length(), out.data());
}

void hash_combine_column(const Array& array, std::span<uint64_t> out) {
  SABOT_CHECK_GE(static_cast<int64_t>(out.size()), array.length());
  // Chunks through a stack buffer: no allocation, and the chunk stays in L1 for the combine.
  constexpr int64_t kChunk = 1024;
  uint64_t tmp[kChunk];
  for (int64_t start = 0; start < array.length(); start += kChunk) {
    int64_t n = std::min(kChunk, array.length() - start);
    hash_range(array, start, n, tmp);
    uint64_t* o = out.data() + start;
    for (int64_t i = 0; i < n; ++i) o[i] = hash_combine(o[i], tmp[i]);
  }
}

void key_groups(std::span<const uint64_t> hashes, uint32_t max_parallelism,
                std::span<uint32_t> out) {
  SABOT_CHECK_GT(max_parallelism, 0u);
  SABOT_CHECK_GE(out.size(), hashes.size());
  const size_t n = hashes.size();
  const uint64_t* h = hashes.data();
  uint32_t* o = out.data();
  if ((max_parallelism & (max_parallelism - 1)) == 0) {
    const uint64_t mask = max_parallelism - 1;
    for (size_t i = 0; i < n; ++i) o[i] = static_cast<uint32_t>(h[i] & mask);
  } else {
    for (size_t i = 0; i < n; ++i) o[i] = static_cast<uint32_t>(h[i] % max_parallelism);
  }
}

Status hash_columns(std::span<const Array> columns, std::vector<uint64_t>* out) {
  if (columns.empty()) return Status::invalid_argument("hash_columns: no key columns given");
  const int64_t n = columns[0].length();
  for (size_t c = 1; c < columns.size(); ++c) {
    if (columns[c].length() != n) {
      return Status::invalid_argument("hash_columns: key column " + std::to_string(c) + " has " +
                                      std::to_string(columns[c].length()) + " rows, column 0 has " +
                                      std::to_string(n));
    }
  }
  out->resize(static_cast<size_t>(n));
  hash_column(columns[0], *out);
  for (size_t c = 1; c < columns.size(); ++c) hash_combine_column(columns[c], *out);
  return Status::ok();
}

Status hash_columns(const RecordBatch& batch, std::span<const int> key_columns,
                    std::vector<uint64_t>* out) {
  if (key_columns.empty()) return Status::invalid_argument("hash_columns: no key columns given");
  for (int k : key_columns) {
    if (k < 0 || k >= batch.num_columns()) {
      return Status::out_of_range("hash_columns: key column index " + std::to_string(k) +
                                  " is outside the batch's " + std::to_string(batch.num_columns()) +
                                  " columns");
    }
  }
  out->resize(static_cast<size_t>(batch.num_rows()));
  hash_column(batch.column(key_columns[0]), *out);
  for (size_t c = 1; c < key_columns.size(); ++c) {
    hash_combine_column(batch.column(key_columns[c]), *out);
  }
  return Status::ok();
}

}  // namespace sabot::compute
