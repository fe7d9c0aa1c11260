// JSON string literals for the hand-written JSON of the CLI, logs, HTTP API and reports.
#pragma once

#include <string>
#include <string_view>

namespace sabot {

// Appends the characters of `s` to *out as they stand inside a JSON string literal (no quotes):
// '"' and '\\' escaped, \n \r \t as themselves and other control characters as \u00XX. Bytes
// >= 0x80 pass through (UTF-8 text stays UTF-8; callers that may hold invalid UTF-8 check it
// first).
void append_json_escaped(std::string* out, std::string_view s);

// The same as a new string.
inline std::string json_escaped(std::string_view s) {
  std::string out;
  append_json_escaped(&out, s);
  return out;
}

// Appends `s` to *out as a JSON string literal: quoted, with '"' and '\\' escaped, \n \r \t as
// themselves and other control characters as \u00XX. Bytes >= 0x80 pass through (UTF-8 text stays
// UTF-8; callers that may hold invalid UTF-8 check it first).
void append_json_string(std::string* out, std::string_view s);

// The same as a new string.
inline std::string json_string(std::string_view s) {
  std::string out;
  append_json_string(&out, s);
  return out;
}

}  // namespace sabot
