// UTF-8 validation with the position of the first bad byte, for the codecs' error messages.
#pragma once

#include <cstdint>
#include <string_view>

namespace sabot::codec {

// The byte offset of the first byte of `s` that does not start a valid UTF-8 sequence (overlong
// forms, surrogates and code points above U+10FFFF are invalid), or -1 when all of it is valid.
inline int64_t first_invalid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  auto cont = [&](size_t k) { return i + k < n && (p[i + k] & 0xC0) == 0x80; };
  while (i < n) {
    const unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
    } else if (c >= 0xC2 && c <= 0xDF && cont(1)) {
      i += 2;
    } else if (c >= 0xE0 && c <= 0xEF && cont(1) && cont(2) && !(c == 0xE0 && p[i + 1] < 0xA0) &&
               !(c == 0xED && p[i + 1] > 0x9F)) {
      i += 3;
    } else if (c >= 0xF0 && c <= 0xF4 && cont(1) && cont(2) && cont(3) &&
               !(c == 0xF0 && p[i + 1] < 0x90) && !(c == 0xF4 && p[i + 1] > 0x8F)) {
      i += 4;
    } else {
      return static_cast<int64_t>(i);
    }
  }
  return -1;
}

}  // namespace sabot::codec
