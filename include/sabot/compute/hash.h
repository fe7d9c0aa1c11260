// Hashing of columns and key rows: the hash that places keys in key groups (keyed exchange) and in
// hash tables (grouping, distinct counting). Stateless free functions, safe from any thread.
//
// STABILITY: keyed state, checkpoints and key groups (`hash % max_parallelism`) depend on these
// values. The seed, the mixers and the byte hash must NEVER change once data exists; a change needs
// a new, versioned hash function and a state migration. hash_test.cc pins known values.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <string_view>
#include <vector>

#include "sabot/base/status.h"
#include "sabot/columnar/array.h"
#include "sabot/columnar/record_batch.h"

namespace sabot::compute {

using columnar::Array;
using columnar::DataType;
using columnar::RecordBatch;

// Fixed seed mixed into every hash. Never change it (see above).
inline constexpr uint64_t kHashSeed = 0x53ab07c0ffee1234ULL;
// The hash of a null value, of any type.
inline constexpr uint64_t kNullHash = 0x9e3779b97f4a7c15ULL;

namespace detail {
// A multiply-xorshift finalizer (two multiplies; the constants come from a published search for
// well-avalanching 64-bit mixers). Plain integer ops, so loops over it vectorize with AVX2.
inline constexpr uint64_t mix64(uint64_t x) {
  x ^= x >> 27;
  x *= 0x3c79ac492ba7b653ULL;
  x ^= x >> 33;
  x *= 0x1c69b3f74ac4ae35ULL;
  x ^= x >> 27;
  return x;
}
}  // namespace detail

// Hash of an integer value. int32, int64, uint64, timestamp and bool (0/1) values all hash through
// this on their value widened to 64 bits, so equal values hash equal across those types.
inline constexpr uint64_t hash_int64(int64_t v) {
  return detail::mix64(static_cast<uint64_t>(v) ^ kHashSeed);
}

// Hash of a float64: -0.0 hashes like 0.0 and every NaN like every other NaN.
inline uint64_t hash_float64(double v) {
  if (v == 0.0) v = 0.0;                                     // folds -0.0
  if (v != v) v = std::numeric_limits<double>::quiet_NaN();  // one NaN
  return hash_int64(std::bit_cast<int64_t>(v));
}

// Hash of a byte string (utf8 and binary values): equal bytes hash equal.
uint64_t hash_bytes(std::string_view bytes);

// Folds the hash of another key column into an accumulated row hash. Not commutative: the order of
// key columns matters.
inline constexpr uint64_t hash_combine(uint64_t acc, uint64_t h) {
  return detail::mix64((acc * 0x9fb21c651e98df25ULL) ^ h);
}

// Hashes every element of `array` into out[0, array.length()). Nulls hash to kNullHash.
// `out` must hold at least array.length() elements (checked).
void hash_column(const Array& array, std::span<uint64_t> out);

// out[i] = hash_combine(out[i], hash of element i): adds one more key column to row hashes.
void hash_combine_column(const Array& array, std::span<uint64_t> out);

// Row hashes of several key columns: the first column is hashed with hash_column, each further one
// is folded in with hash_combine_column. With one key column the row hash equals the column hash,
// so a single int64 key k has hash hash_int64(k). `out` is resized to the row count (its capacity
// is reused). InvalidArgument for no columns or columns of different lengths.
Status hash_columns(std::span<const Array> columns, std::vector<uint64_t>* out);
// The same for columns of a batch by index; OutOfRange names a bad index.
Status hash_columns(const RecordBatch& batch, std::span<const int> key_columns,
                    std::vector<uint64_t>* out);

// The key group of a row hash: `hash % max_parallelism` (default 128 in the runtime).
inline uint32_t key_group_of(uint64_t hash, uint32_t max_parallelism) {
  return static_cast<uint32_t>(hash % max_parallelism);
}

// key_group_of for a whole batch of row hashes into out[0, hashes.size()) (out must be at least as
// long; checked). A power-of-two max_parallelism (like the default 128) takes a vectorized mask
// instead of a division per row. max_parallelism must be > 0 (checked).
void key_groups(std::span<const uint64_t> hashes, uint32_t max_parallelism,
                std::span<uint32_t> out);

}  // namespace sabot::compute
