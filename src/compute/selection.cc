#include "sabot/compute/selection.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "sabot/base/check.h"
#include "sabot/columnar/bitmap.h"
#include "sabot/columnar/buffer.h"

namespace sabot::compute {

using columnar::Array;
using columnar::ArrayData;
using columnar::Buffer;
using columnar::BufferPtr;
using columnar::DataType;
using columnar::RecordBatch;
using columnar::TypeId;
namespace bits = columnar::bits;

namespace {

// Entries the selection kernel may write past the last selected index (one 8-lane store).
constexpr int64_t kSelectionSlack = 8;

// A buffer whose payload is left uninitialized because the kernel overwrites all of it; only the
// padding up to the 64-byte capacity is zeroed so no indeterminate bytes leave the kernel. Saves
// the zero-fill of Buffer::allocate, which costs as much as the copy itself for filter outputs.
std::pair<BufferPtr, uint8_t*> allocate_uninitialized(int64_t size, int64_t slack_bytes = 0) {
  int64_t capacity = columnar::round_up_to_64(std::max<int64_t>(size + slack_bytes, 1));
  void* raw = std::aligned_alloc(columnar::kBufferAlignment, static_cast<size_t>(capacity));
  if (raw == nullptr) throw std::bad_alloc();
  auto* bytes = static_cast<uint8_t*>(raw);
  std::memset(bytes + size, 0, static_cast<size_t>(capacity - size));
  std::shared_ptr<void> owner(raw, [](void* p) { std::free(p); });
  return {Buffer::wrap(bytes, size, std::move(owner)), bytes};
}

Array make_array(DataType type, int64_t length, BufferPtr validity, int64_t null_count,
                 BufferPtr values, BufferPtr data = nullptr) {
  auto d = std::make_shared<ArrayData>();
  d->type = type;
  d->length = length;
  d->offset = 0;
  d->null_count = validity ? null_count : 0;
  d->validity = validity ? std::move(validity) : nullptr;
  d->values = std::move(values);
  d->data = std::move(data);
  return Array(std::move(d));
}

// Bits [pos, pos + 64) of a bitmap that holds all of them. The unaligned case reads exactly the
// 9 bytes that hold the 64 bits, so it never reads past the bitmap.
inline uint64_t load_full_word(const uint8_t* bitmap, int64_t pos) {
  const uint8_t* p = bitmap + (pos >> 3);
  int shift = static_cast<int>(pos & 7);
  uint64_t lo;
  std::memcpy(&lo, p, sizeof(lo));
  if (shift == 0) return lo;
  return (lo >> shift) | (uint64_t{p[8]} << (64 - shift));
}

// Bits [pos, pos + n) for n < 64, higher bits zero; reads only the bytes that hold them.
inline uint64_t load_partial_word(const uint8_t* bitmap, int64_t pos, int64_t n) {
  uint64_t w = 0;
  for (int64_t k = 0; k < n; ++k) w |= uint64_t{bits::get(bitmap, pos + k)} << k;
  return w;
}

// Calls f(first_row, word, nbits) for each run of 64 mask rows (the last may be shorter); bit k
// of word is set when row first_row + k is selected (mask true and valid).
template <typename F>
inline void for_each_mask_word(const Array& mask, F&& f) {
  const uint8_t* vals = mask.bool_bits();
  const uint8_t* valid = mask.null_count() > 0 ? mask.validity_bits() : nullptr;
  const int64_t off = mask.offset();
  const int64_t n = mask.length();
  const int64_t full = n / 64;
  if (valid != nullptr) {
    for (int64_t w = 0; w < full; ++w) {
      f(w * 64, load_full_word(vals, off + w * 64) & load_full_word(valid, off + w * 64),
        int64_t{64});
    }
  } else {
    for (int64_t w = 0; w < full; ++w) f(w * 64, load_full_word(vals, off + w * 64), int64_t{64});
  }
  const int64_t rem = n - full * 64;
  if (rem > 0) {
    uint64_t word = load_partial_word(vals, off + full * 64, rem);
    if (valid != nullptr) word &= load_partial_word(valid, off + full * 64, rem);
    f(full * 64, word, rem);
  }
}

Status check_mask(const Array& mask, const char* what) {
  if (mask.type().id() != TypeId::kBool) {
    return Status::type_error(std::string(what) + ": mask must be bool, got " +
                              mask.type().to_string());
  }
  return Status::ok();
}

int64_t count_selected_unchecked(const Array& mask) {
  int64_t count = 0;
  for_each_mask_word(mask, [&](int64_t, uint64_t word, int64_t) { count += std::popcount(word); });
  return count;
}

// For each byte value, the positions of its set bits packed one per byte, lowest first.
constexpr std::array<uint64_t, 256> make_byte_positions() {
  std::array<uint64_t, 256> table{};
  for (int b = 0; b < 256; ++b) {
    uint64_t packed = 0;
    int j = 0;
    for (int k = 0; k < 8; ++k) {
      if ((b >> k) & 1) packed |= uint64_t(k) << (8 * j++);
    }
    table[static_cast<size_t>(b)] = packed;
  }
  return table;
}
// Used by the AVX2 path only (a build without -march=x86-64-v3 leaves it unused).
[[maybe_unused]] alignas(64) constexpr std::array<uint64_t, 256> kBytePositions =
    make_byte_positions();

// Writes the selected row indices of `mask` to out (room for length + kSelectionSlack entries);
// returns how many. Zero words are skipped, full words written as a run, mixed words compacted
// without branches: each byte stores its 8 candidate positions and advances by its popcount.
int64_t mask_to_indices(const Array& mask, int32_t* out) {
  int64_t j = 0;
  for_each_mask_word(mask, [&](int64_t first, uint64_t word, int64_t nbits) {
    if (word == 0) return;
    const auto base = static_cast<int32_t>(first);
    if (nbits == 64 && word == ~uint64_t{0}) {
      for (int32_t k = 0; k < 64; ++k) out[j + k] = base + k;
      j += 64;
      return;
    }
#if defined(__AVX2__)
    for (int b = 0; b < 8; ++b) {
      const auto byte = static_cast<uint32_t>((word >> (8 * b)) & 0xff);
      __m256i pos =
          _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<long long>(kBytePositions[byte])));
      pos = _mm256_add_epi32(pos, _mm256_set1_epi32(base + 8 * b));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + j), pos);
      j += std::popcount(byte);
    }
#else
    for (int32_t k = 0; k < 64; ++k) {
      out[j] = base + k;
      j += static_cast<int64_t>((word >> k) & 1);
    }
#endif
  });
  return j;
}

// Gathers bit (offset + indices[i]) of src into dst bit i; returns the number of set bits.
// dst must have room for whole 64-bit words.
int64_t gather_bits(const uint8_t* src, int64_t offset, std::span<const int32_t> indices,
                    uint8_t* dst) {
  const int64_t n = static_cast<int64_t>(indices.size());
  const int32_t* idx = indices.data();
  int64_t set = 0;
  for (int64_t first = 0; first < n; first += 64) {
    const int64_t m = std::min<int64_t>(64, n - first);
    uint64_t word = 0;
    for (int64_t k = 0; k < m; ++k) {
      word |= uint64_t{bits::get(src, offset + idx[first + k])} << k;
    }
    set += std::popcount(word);
    std::memcpy(dst + first / 8, &word, sizeof(word));
  }
  return set;
}

// The output validity of a take: null when the input has no nulls or none was picked.
BufferPtr take_validity(const Array& values, std::span<const int32_t> indices,
                        int64_t* null_count) {
  *null_count = 0;
  if (values.null_count() == 0) return nullptr;
  const auto n = static_cast<int64_t>(indices.size());
  // Rounded to whole words because gather_bits stores 8 bytes at a time.
  auto [buffer, out] = allocate_uninitialized(bits::bytes_for(n), 8);
  int64_t valid = gather_bits(values.validity_bits(), values.offset(), indices, out);
  *null_count = n - valid;
  return *null_count == 0 ? nullptr : buffer;
}

template <typename T>
Array take_fixed(const Array& values, std::span<const int32_t> indices) {
  const auto n = static_cast<int64_t>(indices.size());
  auto [buffer, bytes] = allocate_uninitialized(n * static_cast<int64_t>(sizeof(T)));
  T* out = reinterpret_cast<T*>(bytes);
  const T* in = values.values<T>();
  const int32_t* idx = indices.data();
  for (int64_t i = 0; i < n; ++i) out[i] = in[idx[i]];
  int64_t null_count = 0;
  BufferPtr validity = take_validity(values, indices, &null_count);
  return make_array(values.type(), n, std::move(validity), null_count, std::move(buffer));
}

Array take_bool(const Array& values, std::span<const int32_t> indices) {
  const auto n = static_cast<int64_t>(indices.size());
  auto [buffer, out] = allocate_uninitialized(bits::bytes_for(n), 8);
  gather_bits(values.bool_bits(), values.offset(), indices, out);
  int64_t null_count = 0;
  BufferPtr validity = take_validity(values, indices, &null_count);
  return make_array(values.type(), n, std::move(validity), null_count, std::move(buffer));
}

Result<Array> take_binary(const Array& values, std::span<const int32_t> indices) {
  const auto n = static_cast<int64_t>(indices.size());
  const int32_t* in_offsets = values.offsets();
  const uint8_t* in_data = values.raw_data();
  const int32_t* idx = indices.data();
  int64_t total = 0;
  for (int64_t i = 0; i < n; ++i) total += in_offsets[idx[i] + 1] - in_offsets[idx[i]];
  if (total > std::numeric_limits<int32_t>::max()) {
    return Status::invalid_argument("take: " + values.type().to_string() + " result of " +
                                    std::to_string(n) + " rows would hold " +
                                    std::to_string(total) +
                                    " bytes, more than int32 offsets can address");
  }
  auto [offsets_buffer, offset_bytes] =
      allocate_uninitialized((n + 1) * static_cast<int64_t>(sizeof(int32_t)));
  auto [data_buffer, out_data] = allocate_uninitialized(total);
  auto* out_offsets = reinterpret_cast<int32_t*>(offset_bytes);
  int32_t pos = 0;
  out_offsets[0] = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int32_t begin = in_offsets[idx[i]];
    const int32_t len = in_offsets[idx[i] + 1] - begin;
    if (len > 0) std::memcpy(out_data + pos, in_data + begin, static_cast<size_t>(len));
    pos += len;
    out_offsets[i + 1] = pos;
  }
  int64_t null_count = 0;
  BufferPtr validity = take_validity(values, indices, &null_count);
  return make_array(values.type(), n, std::move(validity), null_count, std::move(offsets_buffer),
                    std::move(data_buffer));
}

// take() without the bounds check, for indices known to be in range.
Result<Array> take_unchecked(const Array& values, std::span<const int32_t> indices) {
  switch (values.type().id()) {
    case TypeId::kBool:
      return take_bool(values, indices);
    case TypeId::kInt32:
      return take_fixed<int32_t>(values, indices);
    case TypeId::kInt64:
    case TypeId::kTimestamp:
      return take_fixed<int64_t>(values, indices);
    case TypeId::kUInt64:
      return take_fixed<uint64_t>(values, indices);
    case TypeId::kFloat64:
      return take_fixed<double>(values, indices);
    case TypeId::kUtf8:
    case TypeId::kBinary:
      return take_binary(values, indices);
  }
  return Status::not_implemented("take: unsupported type " + values.type().to_string());
}

Status check_indices(std::span<const int32_t> indices, int64_t length) {
  // One branch-free min/max pass (vectorized); the slow search only runs on failure.
  if (indices.empty()) return Status::ok();
  int32_t lo = std::numeric_limits<int32_t>::max();
  int32_t hi = std::numeric_limits<int32_t>::min();
  for (int32_t v : indices) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  if (lo >= 0 && hi < length) return Status::ok();
  for (size_t i = 0; i < indices.size(); ++i) {
    if (indices[i] < 0 || indices[i] >= length) {
      return Status::out_of_range("take: index " + std::to_string(indices[i]) + " at position " +
                                  std::to_string(i) + " is out of range for length " +
                                  std::to_string(length));
    }
  }
  return Status::internal("take: index check disagrees with itself");
}

// Copies the rows of a fixed-width column without nulls where the mask is set. `out` needs room
// for the selected rows plus one: every row is stored at out[j] and j advances by the mask bit,
// which keeps random masks free of branch mispredictions.
template <typename T>
void compact_fixed(const Array& mask, const T* in, T* out) {
  int64_t j = 0;
  for_each_mask_word(mask, [&](int64_t first, uint64_t word, int64_t nbits) {
    if (word == 0) return;
    const T* src = in + first;
    if (nbits == 64 && word == ~uint64_t{0}) {
      std::memcpy(out + j, src, 64 * sizeof(T));
      j += 64;
      return;
    }
    for (int64_t k = 0; k < nbits; ++k) {
      out[j] = src[k];
      j += static_cast<int64_t>((word >> k) & 1);
    }
  });
}

template <typename T>
Array filter_fixed(const Array& values, const Array& mask, int64_t selected) {
  auto [buffer, bytes] = allocate_uninitialized(selected * static_cast<int64_t>(sizeof(T)),
                                                static_cast<int64_t>(sizeof(T)));
  compact_fixed<T>(mask, values.values<T>(), reinterpret_cast<T*>(bytes));
  return make_array(values.type(), selected, nullptr, 0, std::move(buffer));
}

// The fused mask-to-values path, for fixed-width columns without nulls; nullopt otherwise.
std::optional<Array> try_filter_fused(const Array& values, const Array& mask, int64_t selected) {
  if (values.null_count() != 0) return std::nullopt;
  switch (values.type().id()) {
    case TypeId::kInt32:
      return filter_fixed<int32_t>(values, mask, selected);
    case TypeId::kInt64:
    case TypeId::kTimestamp:
      return filter_fixed<int64_t>(values, mask, selected);
    case TypeId::kUInt64:
      return filter_fixed<uint64_t>(values, mask, selected);
    case TypeId::kFloat64:
      return filter_fixed<double>(values, mask, selected);
    default:
      return std::nullopt;
  }
}

Status check_int32_length(int64_t length, const char* what) {
  if (length > std::numeric_limits<int32_t>::max()) {
    return Status::invalid_argument(std::string(what) + ": " + std::to_string(length) +
                                    " rows exceed the int32 row indices of a selection");
  }
  return Status::ok();
}

}  // namespace

void SelectionVector::reserve(int64_t rows) {
  if (rows <= capacity_) return;
  // Uninitialized on purpose: the kernel writes every entry it later exposes.
  storage_.reset(new int32_t[static_cast<size_t>(rows + kSelectionSlack)]);
  capacity_ = rows;
  size_ = 0;
}

Status SelectionVector::assign_from_mask(const Array& mask) {
  SABOT_RETURN_IF_ERROR(check_mask(mask, "selection"));
  SABOT_RETURN_IF_ERROR(check_int32_length(mask.length(), "selection"));
  reserve(mask.length());
  size_ = mask_to_indices(mask, storage_.get());
  return Status::ok();
}

Result<SelectionVector> SelectionVector::from_mask(const Array& mask) {
  SelectionVector selection;
  SABOT_RETURN_IF_ERROR(selection.assign_from_mask(mask));
  return selection;
}

Result<int64_t> count_selected(const Array& mask) {
  SABOT_RETURN_IF_ERROR(check_mask(mask, "count_selected"));
  return count_selected_unchecked(mask);
}

Result<Array> take(const Array& values, std::span<const int32_t> indices) {
  SABOT_RETURN_IF_ERROR(check_indices(indices, values.length()));
  return take_unchecked(values, indices);
}

Result<RecordBatch> take(const RecordBatch& batch, std::span<const int32_t> indices) {
  SABOT_RETURN_IF_ERROR(check_indices(indices, batch.num_rows()));
  std::vector<Array> columns;
  columns.reserve(static_cast<size_t>(batch.num_columns()));
  for (int c = 0; c < batch.num_columns(); ++c) {
    auto column = take_unchecked(batch.column(c), indices);
    if (!column.is_ok()) {
      return column.status().with_context("taking column '" + batch.schema().field(c).name + "'");
    }
    columns.push_back(std::move(column).value());
  }
  return RecordBatch::make_unchecked(batch.schema_ptr(), std::move(columns),
                                     static_cast<int64_t>(indices.size()));
}

Result<Array> filter(const Array& values, const Array& mask) {
  SABOT_RETURN_IF_ERROR(check_mask(mask, "filter"));
  if (mask.length() != values.length()) {
    return Status::invalid_argument("filter: mask length " + std::to_string(mask.length()) +
                                    " does not match array length " +
                                    std::to_string(values.length()));
  }
  SABOT_RETURN_IF_ERROR(check_int32_length(values.length(), "filter"));
  const int64_t selected = count_selected_unchecked(mask);
  if (selected == values.length()) return values;
  if (auto fused = try_filter_fused(values, mask, selected)) return *std::move(fused);
  SelectionVector selection(mask.length());
  SABOT_RETURN_IF_ERROR(selection.assign_from_mask(mask));
  return take_unchecked(values, selection.indices());
}

Result<RecordBatch> filter(const RecordBatch& batch, const Array& mask) {
  SABOT_RETURN_IF_ERROR(check_mask(mask, "filter"));
  if (mask.length() != batch.num_rows()) {
    return Status::invalid_argument("filter: mask length " + std::to_string(mask.length()) +
                                    " does not match batch length " +
                                    std::to_string(batch.num_rows()));
  }
  SABOT_RETURN_IF_ERROR(check_int32_length(batch.num_rows(), "filter"));
  const int64_t selected = count_selected_unchecked(mask);
  if (selected == batch.num_rows()) return batch;
  if (selected == 0) return RecordBatch::make_empty(batch.schema_ptr());
  // Built at most once, and only when some column cannot use the fused path.
  SelectionVector selection;
  bool have_selection = false;
  std::vector<Array> columns;
  columns.reserve(static_cast<size_t>(batch.num_columns()));
  for (int c = 0; c < batch.num_columns(); ++c) {
    const Array& column = batch.column(c);
    if (auto fused = try_filter_fused(column, mask, selected)) {
      columns.push_back(*std::move(fused));
      continue;
    }
    if (!have_selection) {
      SABOT_RETURN_IF_ERROR(selection.assign_from_mask(mask));
      have_selection = true;
    }
    auto taken = take_unchecked(column, selection.indices());
    if (!taken.is_ok()) {
      return taken.status().with_context("filtering column '" + batch.schema().field(c).name + "'");
    }
    columns.push_back(std::move(taken).value());
  }
  return RecordBatch::make_unchecked(batch.schema_ptr(), std::move(columns), selected);
}

}  // namespace sabot::compute
