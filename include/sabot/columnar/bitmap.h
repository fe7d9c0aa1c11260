// Bit-level helpers for Arrow validity bitmaps and boolean values (LSB-first bit order).
#pragma once

#include <cstdint>

namespace sabot::columnar::bits {

inline bool get(const uint8_t* bits, int64_t i) { return (bits[i >> 3] >> (i & 7)) & 1; }
inline void set(uint8_t* bits, int64_t i) { bits[i >> 3] |= static_cast<uint8_t>(1u << (i & 7)); }
inline void clear(uint8_t* bits, int64_t i) {
  bits[i >> 3] &= static_cast<uint8_t>(~(1u << (i & 7)));
}
inline void set_to(uint8_t* bits, int64_t i, bool v) {
  bits[i >> 3] = static_cast<uint8_t>((bits[i >> 3] & ~(1u << (i & 7))) | (unsigned{v} << (i & 7)));
}
constexpr int64_t bytes_for(int64_t nbits) { return (nbits + 7) / 8; }

// Number of set bits in [offset, offset + length).
int64_t count_set(const uint8_t* bits, int64_t offset, int64_t length);
// Copies `length` bits from src at src_offset to dst at dst_offset (other dst bits untouched).
void copy(const uint8_t* src, int64_t src_offset, int64_t length, uint8_t* dst, int64_t dst_offset);
// Sets `length` bits from `offset` to v.
void fill(uint8_t* bits, int64_t offset, int64_t length, bool v);
// Reads min(64, available_bits) bits starting at bit `offset` into the low bits of a word; reads
// no byte beyond the last bit asked for.
uint64_t load_word(const uint8_t* bits, int64_t offset, int64_t available_bits);
// dst = a AND b over `length` bits, each at its own offset; dst written from bit 0.
void and_bitmaps(const uint8_t* a, int64_t a_offset, const uint8_t* b, int64_t b_offset,
                 int64_t length, uint8_t* dst);

}  // namespace sabot::columnar::bits
