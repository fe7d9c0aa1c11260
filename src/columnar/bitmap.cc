#include "sabot/columnar/bitmap.h"

#include <bit>
#include <cstring>

namespace sabot::columnar::bits {

uint64_t load_word(const uint8_t* bits, int64_t offset, int64_t available_bits) {
  // Reads up to 9 bytes so that a word starting at any bit offset is complete; bits beyond
  // available_bits are cleared.
  const uint8_t* p = bits + (offset >> 3);
  int shift = static_cast<int>(offset & 7);
  int64_t nbits = available_bits < 64 ? available_bits : 64;
  int64_t nbytes = bytes_for(nbits + shift);
  uint64_t lo = 0;
  std::memcpy(&lo, p, static_cast<size_t>(nbytes < 8 ? nbytes : 8));
  uint64_t word = lo >> shift;
  if (shift != 0 && nbytes > 8) word |= static_cast<uint64_t>(p[8]) << (64 - shift);
  if (nbits < 64) word &= (uint64_t{1} << nbits) - 1;
  return word;
}

int64_t count_set(const uint8_t* bits, int64_t offset, int64_t length) {
  int64_t count = 0;
  int64_t i = 0;
  for (; i + 64 <= length; i += 64) count += std::popcount(load_word(bits, offset + i, 64));
  if (i < length) count += std::popcount(load_word(bits, offset + i, length - i));
  return count;
}

void copy(const uint8_t* src, int64_t src_offset, int64_t length, uint8_t* dst,
          int64_t dst_offset) {
  if ((src_offset & 7) == 0 && (dst_offset & 7) == 0) {
    int64_t whole = length / 8;
    std::memcpy(dst + dst_offset / 8, src + src_offset / 8, static_cast<size_t>(whole));
    for (int64_t i = whole * 8; i < length; ++i) {
      set_to(dst, dst_offset + i, get(src, src_offset + i));
    }
    return;
  }
  if ((dst_offset & 7) == 0) {
    // Word-at-a-time from an unaligned source into an aligned destination.
    int64_t i = 0;
    for (; i + 64 <= length; i += 64) {
      uint64_t w = load_word(src, src_offset + i, 64);
      std::memcpy(dst + (dst_offset + i) / 8, &w, 8);
    }
    for (; i < length; ++i) set_to(dst, dst_offset + i, get(src, src_offset + i));
    return;
  }
  for (int64_t i = 0; i < length; ++i) set_to(dst, dst_offset + i, get(src, src_offset + i));
}

void fill(uint8_t* bits, int64_t offset, int64_t length, bool v) {
  int64_t i = 0;
  while (i < length && ((offset + i) & 7) != 0) set_to(bits, offset + i++, v);
  int64_t whole = (length - i) / 8;
  std::memset(bits + (offset + i) / 8, v ? 0xFF : 0, static_cast<size_t>(whole));
  i += whole * 8;
  for (; i < length; ++i) set_to(bits, offset + i, v);
}

void and_bitmaps(const uint8_t* a, int64_t a_offset, const uint8_t* b, int64_t b_offset,
                 int64_t length, uint8_t* dst) {
  int64_t i = 0;
  for (; i + 64 <= length; i += 64) {
    uint64_t w = load_word(a, a_offset + i, 64) & load_word(b, b_offset + i, 64);
    std::memcpy(dst + i / 8, &w, 8);
  }
  if (i < length) {
    uint64_t w = load_word(a, a_offset + i, length - i) & load_word(b, b_offset + i, length - i);
    std::memcpy(dst + i / 8, &w, static_cast<size_t>(bytes_for(length - i)));
  }
}

}  // namespace sabot::columnar::bits
