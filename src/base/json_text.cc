#include "sabot/base/json_text.h"

#include <cstdio>

namespace sabot {

void append_json_escaped(std::string* out, std::string_view s) {
  out->reserve(out->size() + s.size());
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        *out += "\\\"";
        break;
      case '\\':
        *out += "\\\\";
        break;
      case '\n':
        *out += "\\n";
        break;
      case '\r':
        *out += "\\r";
        break;
      case '\t':
        *out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          *out += buf;
        } else {
          *out += ch;
        }
    }
  }
}

void append_json_string(std::string* out, std::string_view s) {
  *out += '"';
  append_json_escaped(out, s);
  *out += '"';
}

}  // namespace sabot
