// JsonDecoder: each record is read with simdjson's on-demand API, checked against the schema into
// per-field slots, and only appended to the column builders once the whole record is known to be
// good, so a bad record never leaves half a row behind. On-demand only validates what it is asked
// to read, so the fast path reads every value (unknown fields included), checks that nothing
// follows the object, and gives up on anything unusual. A record the fast path gives up on is
// parsed again with the DOM parser (the reference path), which either accepts it or says exactly
// what is wrong: error messages come from one place, and a record is only ever accepted with the
// same values the DOM parse would give.
#include <simdjson.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "codec/json_test_access.h"
#include "codec/utf8.h"
#include "sabot/base/check.h"
#include "sabot/codec/json.h"
#include "sabot/columnar/builder.h"

namespace sabot::codec {

using columnar::Array;
using columnar::DataType;
using columnar::RecordBatch;
using columnar::SchemaPtr;
using columnar::TimeUnit;
using columnar::TypeId;
namespace dom = simdjson::dom;
namespace ondemand = simdjson::ondemand;

namespace {

// Names longer than this are cut in error messages so that a 10 MB key does not become a 10 MB
// message.
constexpr size_t kMaxQuoted = 64;

std::string quoted(std::string_view s) {
  std::string out = "'";
  if (s.size() > kMaxQuoted) {
    out.append(s.substr(0, kMaxQuoted));
    out.append("...");
  } else {
    out.append(s);
  }
  out.push_back('\'');
  return out;
}

const char* json_kind(dom::element_type t) {
  switch (t) {
    case dom::element_type::ARRAY:
      return "array";
    case dom::element_type::OBJECT:
      return "object";
    case dom::element_type::INT64:
    case dom::element_type::UINT64:
    case dom::element_type::DOUBLE:
      return "number";
    case dom::element_type::STRING:
      return "string";
    case dom::element_type::BOOL:
      return "boolean";
    case dom::element_type::NULL_VALUE:
      return "null";
  }
  return "unknown";
}

std::string double_text(double d) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof(buf), d);
  return std::string(buf, r.ptr);
}

// ---------------------------------------------------------------------------------------------
// Error location. simdjson reports what kind of error it found but not where; on the (rare) error
// path a small iterative validator finds the first offending byte and says why.
struct JsonErrorLocation {
  int64_t offset = -1;  // -1: the grammar is fine (the problem is a number's range, say)
  const char* reason = "";
};

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// The name of the object field whose value (or name) holds byte `at` of `text`, by a light scan
// of strings and brackets; "" when `at` is outside any field.
std::string field_at(std::string_view text, size_t at) {
  std::vector<std::string> keys;  // per open container: the field being read ("" in arrays)
  std::string last_string;
  size_t i = 0;
  while (i < text.size() && i <= at) {
    const char c = text[i];
    if (c == '"') {
      const size_t start = i + 1;
      ++i;
      while (i < text.size() && text[i] != '"') i += text[i] == '\\' ? 2 : 1;
      if (at < i || i >= text.size()) {
        // `at` is inside this string: a field name when a ':' follows it, else a value.
        size_t j = i + 1;
        while (j < text.size() && is_ws(text[j])) ++j;
        if (j < text.size() && text[j] == ':') {
          return std::string(text.substr(start, std::min(i, text.size()) - start));
        }
        break;
      }
      last_string.assign(text.substr(start, i - start));
      ++i;
      continue;
    }
    if (c == '{') keys.emplace_back();
    if (c == '[') keys.push_back(keys.empty() ? std::string() : keys.back());
    if ((c == '}' || c == ']') && !keys.empty()) keys.pop_back();
    if (c == ':' && !keys.empty()) keys.back() = last_string;
    ++i;
  }
  return keys.empty() ? std::string() : keys.back();
}

std::string in_field(std::string_view text, size_t at) {
  std::string field = field_at(text, at);
  if (first_invalid_utf8(field) >= 0) return " in a field name";  // the bad bytes are in it
  return field.empty() ? std::string() : " in field '" + field + "'";
}

// The first number token of `text` (outside strings) that is not a finite double: its offset and
// text. nullopt when there is none.
std::optional<std::pair<size_t, std::string_view>> first_out_of_range_number(
    std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (c == '"') {
      ++i;
      while (i < text.size() && text[i] != '"') i += text[i] == '\\' ? 2 : 1;
      ++i;
      continue;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
      size_t j = i;
      while (j < text.size() &&
             (std::isdigit(static_cast<unsigned char>(text[j])) || text[j] == '-' ||
              text[j] == '+' || text[j] == '.' || text[j] == 'e' || text[j] == 'E')) {
        ++j;
      }
      const std::string token(text.substr(i, j - i));
      const double v = std::strtod(token.c_str(), nullptr);
      if (!std::isfinite(v)) return std::make_pair(i, text.substr(i, j - i));
      i = j;
      continue;
    }
    ++i;
  }
  return std::nullopt;
}

constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";

JsonErrorLocation locate_json_error(std::string_view text, int max_depth) {
  const char* p = text.data();
  const size_t n = text.size();
  size_t i = 0;
  std::vector<char> stack;  // 'A' array, 'O' object
  auto fail = [&](size_t at, const char* why) {
    return JsonErrorLocation{static_cast<int64_t>(at), at >= n ? "unexpected end of input" : why};
  };
  auto skip_ws = [&] {
    while (i < n && is_ws(p[i])) ++i;
  };
  // Scans a string starting at p[i] == '"'; returns nullptr on success (i past the closing quote).
  auto scan_string = [&]() -> const char* {
    ++i;
    while (i < n) {
      unsigned char c = static_cast<unsigned char>(p[i]);
      if (c == '"') {
        ++i;
        return nullptr;
      }
      if (c < 0x20) return "control character in string (must be escaped)";
      if (c == '\\') {
        ++i;
        if (i >= n) return "unexpected end of input";
        char e = p[i];
        if (e == 'u') {
          // i is at 'u'. Reads the 4 hex digits after it into *unit.
          auto hex4 = [&](unsigned* unit) -> const char* {
            *unit = 0;
            for (int k = 1; k <= 4; ++k) {
              if (i + k >= n) {
                i = n;
                return "unexpected end of input";
              }
              char h = p[i + k];
              if (!is_hex(h)) {
                i += k;
                return "invalid \\u escape";
              }
              *unit =
                  *unit * 16 + static_cast<unsigned>(is_digit(h) ? h - '0' : (h | 0x20) - 'a' + 10);
            }
            return nullptr;
          };
          unsigned unit;
          size_t escape_start = i - 1;
          if (const char* err = hex4(&unit)) return err;
          i += 5;
          if (unit >= 0xDC00 && unit <= 0xDFFF) {
            i = escape_start;
            return "low surrogate without a high one in \\u escape";
          }
          if (unit >= 0xD800 && unit <= 0xDBFF) {
            if (i + 1 >= n || p[i] != '\\' || p[i + 1] != 'u') {
              i = escape_start;
              return "high surrogate not followed by a low one in \\u escape";
            }
            ++i;  // to the 'u'
            if (const char* err = hex4(&unit)) return err;
            if (unit < 0xDC00 || unit > 0xDFFF) {
              i = escape_start;
              return "high surrogate not followed by a low one in \\u escape";
            }
            i += 5;
          }
          continue;
        }
        if (std::strchr("\"\\/bfnrt", e) == nullptr || e == '\0') return "invalid escape";
      }
      ++i;
    }
    return "unexpected end of input";
  };
  auto scan_number = [&]() -> const char* {
    if (p[i] == '-') ++i;
    if (i >= n) return "unexpected end of input";
    if (p[i] == '0') {
      ++i;
    } else if (is_digit(p[i])) {
      while (i < n && is_digit(p[i])) ++i;
    } else {
      return "invalid number";
    }
    if (i < n && p[i] == '.') {
      ++i;
      if (i >= n || !is_digit(p[i])) return "invalid number: digit expected after '.'";
      while (i < n && is_digit(p[i])) ++i;
    }
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
      ++i;
      if (i < n && (p[i] == '+' || p[i] == '-')) ++i;
      if (i >= n || !is_digit(p[i])) return "invalid number: digit expected in exponent";
      while (i < n && is_digit(p[i])) ++i;
    }
    return nullptr;
  };
  auto scan_key = [&]() -> const char* {
    if (i >= n) return "unexpected end of input";
    if (p[i] != '"') return "expected a string key";
    if (const char* e = scan_string()) return e;
    skip_ws();
    if (i >= n) return "unexpected end of input";
    if (p[i] != ':') return "expected ':' after key";
    ++i;
    return nullptr;
  };

  skip_ws();
  for (;;) {
    // Expecting a value at p[i].
    skip_ws();
    if (i >= n) return fail(i, "");
    char c = p[i];
    bool value_done = true;
    if (c == '{' || c == '[') {
      if (static_cast<int>(stack.size()) >= max_depth) return fail(i, "nesting too deep");
      stack.push_back(c == '{' ? 'O' : 'A');
      ++i;
      skip_ws();
      if (i < n && p[i] == (c == '{' ? '}' : ']')) {
        stack.pop_back();
        ++i;
      } else if (c == '{') {
        if (const char* e = scan_key()) return fail(i, e);
        value_done = false;
      } else {
        value_done = false;
      }
    } else if (c == '"') {
      if (const char* e = scan_string()) return fail(i, e);
    } else if (c == '-' || is_digit(c)) {
      if (const char* e = scan_number()) return fail(i, e);
    } else if (c == 't' || c == 'f' || c == 'n') {
      std::string_view lit = c == 't' ? "true" : (c == 'f' ? "false" : "null");
      for (size_t k = 0; k < lit.size(); ++k) {
        if (i + k >= n) return fail(n, "");
        if (p[i + k] != lit[k]) return fail(i + k, "invalid literal");
      }
      i += lit.size();
    } else {
      return fail(i, "unexpected character");
    }
    if (!value_done) continue;
    // After a value: close containers or move to the next element.
    for (;;) {
      skip_ws();
      if (stack.empty()) {
        if (i < n) return fail(i, "unexpected content after the JSON value");
        return JsonErrorLocation{};
      }
      if (i >= n) return fail(i, "");
      char top = stack.back();
      if (p[i] == ',') {
        ++i;
        if (top == 'O') {
          skip_ws();
          if (const char* e = scan_key()) return fail(i, e);
        }
        break;
      }
      if ((top == 'O' && p[i] == '}') || (top == 'A' && p[i] == ']')) {
        stack.pop_back();
        ++i;
        continue;
      }
      return fail(i, top == 'O' ? "expected ',' or '}'" : "expected ',' or ']'");
    }
  }
}

// ---------------------------------------------------------------------------------------------
// ISO-8601 / RFC 3339 timestamps.

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

// "YYYY-MM-DD[T ]HH:MM:SS[.f{1,9}][Z|(+|-)HH:MM|(+|-)HHMM]"; no offset means UTC.
bool parse_iso8601(std::string_view s, TimeUnit unit, int64_t* out) {
  size_t i = 0;
  auto digits = [&](int count, int* v) {
    if (i + static_cast<size_t>(count) > s.size()) return false;
    int r = 0;
    for (int k = 0; k < count; ++k) {
      char c = s[i + static_cast<size_t>(k)];
      if (!is_digit(c)) return false;
      r = r * 10 + (c - '0');
    }
    i += static_cast<size_t>(count);
    *v = r;
    return true;
  };
  auto expect = [&](char c) {
    if (i < s.size() && s[i] == c) {
      ++i;
      return true;
    }
    return false;
  };
  int year, month, day, hour, minute, second;
  if (!digits(4, &year) || !expect('-') || !digits(2, &month) || !expect('-') || !digits(2, &day)) {
    return false;
  }
  if (!(expect('T') || expect('t') || expect(' '))) return false;
  if (!digits(2, &hour) || !expect(':') || !digits(2, &minute) || !expect(':') ||
      !digits(2, &second)) {
    return false;
  }
  static constexpr int kDaysIn[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month < 1 || month > 12 || day < 1 || day > kDaysIn[month - 1] || hour > 23 || minute > 59 ||
      second > 60) {
    return false;
  }
  bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  if (month == 2 && day == 29 && !leap) return false;
  int64_t nanos = 0;
  if (expect('.') || expect(',')) {
    int count = 0;
    while (i < s.size() && is_digit(s[i])) {
      if (count < 9) nanos = nanos * 10 + (s[i] - '0');
      ++count;
      ++i;
    }
    if (count == 0) return false;
    for (int k = count; k < 9; ++k) nanos *= 10;
  }
  int64_t offset_seconds = 0;
  if (i < s.size()) {
    if (expect('Z') || expect('z')) {
    } else if (s[i] == '+' || s[i] == '-') {
      int sign = s[i] == '-' ? -1 : 1;
      ++i;
      int oh, om;
      if (!digits(2, &oh)) return false;
      expect(':');
      if (!digits(2, &om) || oh > 23 || om > 59) return false;
      offset_seconds = sign * (oh * 3600 + om * 60);
    } else {
      return false;
    }
  }
  if (i != s.size()) return false;
  int64_t secs =
      days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day)) * 86400 +
      hour * 3600 + minute * 60 + second - offset_seconds;
  int64_t mult = 1, sub = 0;
  switch (unit) {
    case TimeUnit::kSecond:
      mult = 1;
      sub = 0;
      break;
    case TimeUnit::kMilli:
      mult = 1000;
      sub = nanos / 1000000;
      break;
    case TimeUnit::kMicro:
      mult = 1000000;
      sub = nanos / 1000;
      break;
    case TimeUnit::kNano:
      mult = 1000000000;
      sub = nanos;
      break;
  }
  int64_t v;
  if (__builtin_mul_overflow(secs, mult, &v) || __builtin_add_overflow(v, sub, &v)) return false;
  *out = v;
  return true;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

struct JsonDecoder::Impl {
  // A field's decoded value for the record being parsed, held until the record is known good.
  struct Slot {
    enum State : uint8_t { kMissing, kNull, kValue };
    State state = kMissing;
    bool b = false;
    int64_t i = 0;  // int32/int64/timestamp; uint64 stored bit-cast
    double d = 0;
    std::string_view s;  // points into the parser's string buffer or into `scratch`
  };
  struct Column {
    std::string_view name;  // into the schema, which the decoder keeps alive
    DataType type;
    bool nullable;
    // The name holds no '"', '\\' or control character, so its JSON key is its own bytes.
    bool plain_name;
    std::unique_ptr<columnar::ArrayBuilder> builder;
    std::string scratch;  // base64-decoded bytes of the current record
  };

  SchemaPtr schema;
  JsonDecodeOptions options;
  dom::parser parser;
  ondemand::parser od_parser;
  // Test hook (JsonDecoderTestAccess): every record through the DOM reference path.
  bool dom_only = false;
  int64_t fast_records = 0;       // records the fast path accepted (for tests)
  const char* doc_end = nullptr;  // end of the record the fast path reads
  std::vector<Column> columns;
  std::vector<Slot> slots;
  std::unordered_map<std::string_view, int> index_of;
  // The record copied with simdjson's padding behind it; grows, never shrinks.
  std::unique_ptr<char[]> padded;
  size_t padded_capacity = 0;
  std::string error;  // message of the current bad record

  int find_field(std::string_view key, int hint) const {
    int n = static_cast<int>(columns.size());
    // Producers usually write keys in schema order: try the expected one first.
    if (hint < n && columns[static_cast<size_t>(hint)].name == key) return hint;
    if (n <= 8) {
      for (int f = 0; f < n; ++f) {
        if (columns[static_cast<size_t>(f)].name == key) return f;
      }
      return -1;
    }
    auto it = index_of.find(key);
    return it == index_of.end() ? -1 : it->second;
  }

  bool field_error(const Column& c, std::string_view what) {
    error = "field ";
    error += quoted(c.name);
    error += ": ";
    error += what;
    return false;
  }

  bool expected(const Column& c, const char* what, dom::element_type got) {
    std::string m = "expected ";
    m += what;
    m += ", got ";
    m += json_kind(got);
    return field_error(c, m);
  }

  // Reads an integer element into [lo, hi] (as int64), or fails with a message naming the field.
  bool read_signed(const Column& c, dom::element v, int64_t lo, int64_t hi, const char* type_name,
                   int64_t* out) {
    switch (v.type()) {
      case dom::element_type::INT64: {
        int64_t x = v.get_int64().value_unsafe();
        if (x < lo || x > hi) {
          return field_error(
              c, "value " + std::to_string(x) + " out of range for " + std::string(type_name));
        }
        *out = x;
        return true;
      }
      case dom::element_type::UINT64:
        return field_error(c, "value " + std::to_string(v.get_uint64().value_unsafe()) +
                                  " out of range for " + std::string(type_name));
      case dom::element_type::DOUBLE:
        return field_error(
            c, "expected an integer, got number " + double_text(v.get_double().value_unsafe()));
      default:
        return expected(c, "an integer", v.type());
    }
  }

  bool read_value(Column& c, Slot& slot, dom::element v) {
    dom::element_type t = v.type();
    if (t == dom::element_type::NULL_VALUE) {
      slot.state = Slot::kNull;  // non-nullable fields are checked once the record is complete
      return true;
    }
    switch (c.type.id()) {
      case TypeId::kBool:
        if (t != dom::element_type::BOOL) return expected(c, "a boolean", t);
        slot.b = v.get_bool().value_unsafe();
        break;
      case TypeId::kInt32:
        if (!read_signed(c, v, std::numeric_limits<int32_t>::min(),
                         std::numeric_limits<int32_t>::max(), "int32", &slot.i)) {
          return false;
        }
        break;
      case TypeId::kInt64:
        if (!read_signed(c, v, std::numeric_limits<int64_t>::min(),
                         std::numeric_limits<int64_t>::max(), "int64", &slot.i)) {
          return false;
        }
        break;
      case TypeId::kTimestamp:
        if (t == dom::element_type::STRING && options.timestamp_accept_iso8601) {
          std::string_view s = v.get_string().value_unsafe();
          if (!parse_iso8601(s, c.type.unit(), &slot.i)) {
            return field_error(
                c, "invalid ISO-8601 timestamp " + quoted(s) + " for " + c.type.to_string());
          }
          break;
        }
        if (t != dom::element_type::INT64 && t != dom::element_type::UINT64 &&
            t != dom::element_type::DOUBLE) {
          return expected(c,
                          options.timestamp_accept_iso8601
                              ? "an integer or ISO-8601 string timestamp"
                              : "an integer timestamp",
                          t);
        }
        if (!read_signed(c, v, std::numeric_limits<int64_t>::min(),
                         std::numeric_limits<int64_t>::max(), "timestamp", &slot.i)) {
          return false;
        }
        break;
      case TypeId::kUInt64:
        switch (t) {
          case dom::element_type::INT64: {
            int64_t x = v.get_int64().value_unsafe();
            if (x < 0) {
              return field_error(c, "value " + std::to_string(x) + " out of range for uint64");
            }
            slot.i = x;
            break;
          }
          case dom::element_type::UINT64:
            slot.i = static_cast<int64_t>(v.get_uint64().value_unsafe());
            break;
          case dom::element_type::DOUBLE:
            return field_error(
                c, "expected an integer, got number " + double_text(v.get_double().value_unsafe()));
          default:
            return expected(c, "an integer", t);
        }
        break;
      case TypeId::kFloat64:
        switch (t) {
          case dom::element_type::DOUBLE:
            slot.d = v.get_double().value_unsafe();
            break;
          case dom::element_type::INT64:
            slot.d = static_cast<double>(v.get_int64().value_unsafe());
            break;
          case dom::element_type::UINT64:
            slot.d = static_cast<double>(v.get_uint64().value_unsafe());
            break;
          default:
            return expected(c, "a number", t);
        }
        break;
      case TypeId::kUtf8:
        if (t != dom::element_type::STRING) return expected(c, "a string", t);
        slot.s = v.get_string().value_unsafe();
        break;
      case TypeId::kBinary: {
        if (t != dom::element_type::STRING) return expected(c, "a string", t);
        std::string_view s = v.get_string().value_unsafe();
        if (options.binary_as_base64) {
          int64_t pos = 0;
          if (!base64_decode(s, c.scratch, &pos)) {
            return field_error(c, "invalid base64 at position " + std::to_string(pos));
          }
          s = c.scratch;
        }
        slot.s = s;
        break;
      }
    }
    slot.state = Slot::kValue;
    return true;
  }

  void describe_parse_error(simdjson::error_code code, std::string_view text) {
    switch (code) {
      case simdjson::UTF8_ERROR: {
        const int64_t at = first_invalid_utf8(text);
        error = "invalid UTF-8";
        if (at >= 0) {
          char byte[8];
          std::snprintf(byte, sizeof byte, "0x%02X", static_cast<unsigned char>(text[at]));
          error += " at byte " + std::to_string(at) + in_field(text, static_cast<size_t>(at)) +
                   " (" + byte + ")";
        }
        return;
      }
      case simdjson::EMPTY:
        error = "empty message";
        return;
      case simdjson::DEPTH_ERROR:
        error = "malformed JSON: nesting deeper than " + std::to_string(options.max_depth);
        return;
      case simdjson::CAPACITY:
        error = "message too large (" + std::to_string(text.size()) + " bytes)";
        return;
      default:
        break;
    }
    if (text.substr(0, kUtf8Bom.size()) == kUtf8Bom) {
      error =
          "malformed JSON at byte 0: a UTF-8 byte-order mark (EF BB BF), accepted only at the "
          "start of a file";
      return;
    }
    if (code == simdjson::NUMBER_ERROR) {
      if (auto bad = first_out_of_range_number(text)) {
        error = "number " + std::string(bad->second) + " at byte " + std::to_string(bad->first) +
                in_field(text, bad->first) + " is out of range (not a finite double)";
        return;
      }
    }
    JsonErrorLocation loc = locate_json_error(text, options.max_depth);
    if (loc.offset >= 0) {
      error = "malformed JSON at byte " + std::to_string(loc.offset) + ": " + loc.reason;
    } else if (code == simdjson::NUMBER_ERROR) {
      error = "malformed JSON: number out of range";
    } else {
      error = std::string("malformed JSON: ") + simdjson::error_message(code);
    }
  }

  // Parses one record and appends it to the builders, or sets `error` and appends nothing.
  // `readable_end`: where the memory that holds `text` ends (nullptr when unknown); when at least
  // SIMDJSON_PADDING bytes follow the record, the fast path reads it in place, without a copy.
  bool decode_one(std::string_view text, const char* readable_end) {
    if (!dom_only && readable_end != nullptr && !text.empty() &&
        readable_end - (text.data() + text.size()) >=
            static_cast<std::ptrdiff_t>(simdjson::SIMDJSON_PADDING) &&
        decode_fast(text.data(), text.size(), static_cast<size_t>(readable_end - text.data()))) {
      ++fast_records;
      for (size_t f = 0; f < columns.size(); ++f) append(columns[f], slots[f]);
      return true;
    }
    size_t need = text.size() + simdjson::SIMDJSON_PADDING;
    if (need > padded_capacity) {
      padded_capacity = std::max(need, padded_capacity * 2);
      padded = std::make_unique<char[]>(padded_capacity);
    }
    if (!text.empty()) std::memcpy(padded.get(), text.data(), text.size());
    // simdjson reads (but ignores) the padding; zeroing it keeps sanitizers and valgrind quiet.
    std::memset(padded.get() + text.size(), 0, simdjson::SIMDJSON_PADDING);
    if (!dom_only && readable_end == nullptr &&
        decode_fast(padded.get(), text.size(), padded_capacity)) {
      ++fast_records;
      for (size_t f = 0; f < columns.size(); ++f) append(columns[f], slots[f]);
      return true;
    }
    return decode_dom(text);
  }

  // --- The on-demand fast path. Every function returns false to give up (no message): the
  // record then goes through decode_dom, which decides. So anything unusual may give up; only
  // accepting a record the DOM path would refuse, or with other values, would be a bug.

  // Nesting allowed below a field's value before giving up: the DOM parser counts the record's
  // object as one level, so values nested this deep are always within its limit.
  int fast_depth_limit() const { return options.max_depth - 3; }

  // Reads (and so validates) any value and throws it away. `depth`: containers around `v`.
  bool skip_checked(ondemand::value& v, int depth) {
    ondemand::json_type t;
    if (v.type().get(t) != simdjson::SUCCESS) return false;
    switch (t) {
      case ondemand::json_type::array: {
        if (depth >= fast_depth_limit()) return false;
        ondemand::array a;
        if (v.get_array().get(a) != simdjson::SUCCESS) return false;
        for (auto element : a) {
          ondemand::value e;
          if (std::move(element).get(e) != simdjson::SUCCESS || !skip_checked(e, depth + 1))
            return false;
        }
        return true;
      }
      case ondemand::json_type::object: {
        if (depth >= fast_depth_limit()) return false;
        ondemand::object o;
        if (v.get_object().get(o) != simdjson::SUCCESS) return false;
        for (auto member : o) {
          ondemand::field field;
          std::string_view key;
          if (std::move(member).get(field) != simdjson::SUCCESS ||
              field.unescaped_key().get(key) != simdjson::SUCCESS ||
              !skip_checked(field.value(), depth + 1)) {
            return false;
          }
        }
        return true;
      }
      case ondemand::json_type::number: {
        ondemand::number n;
        return v.get_number().get(n) == simdjson::SUCCESS;
      }
      case ondemand::json_type::string: {
        std::string_view s;
        return fast_string(v, &s);
      }
      case ondemand::json_type::boolean: {
        bool b;
        return v.get_bool().get(b) == simdjson::SUCCESS;
      }
      case ondemand::json_type::null: {
        bool is_null = false;
        return v.is_null().get(is_null) == simdjson::SUCCESS && is_null;
      }
    }
    return false;
  }

  // The characters of the JSON string starting at `p` (just past its opening quote) when it has
  // no escape and no control character, read straight from the input (which stays put until the
  // record is appended); false otherwise. Stage 1 has checked that the string is closed, and the
  // zeroed padding stops the scan in any case.
  // Whether any of the n bytes at p is a backslash or a control character, eight at a time
  // (the "has a byte less than" and "has a zero byte" word tricks; the answer is exact).
  static bool needs_unescaping(const char* p, size_t n) {
    constexpr uint64_t kOnes = 0x0101010101010101ULL;
    constexpr uint64_t kHighs = 0x8080808080808080ULL;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      uint64_t x;
      std::memcpy(&x, p + i, 8);
      const uint64_t backslashes = x ^ (kOnes * '\\');
      if ((((backslashes - kOnes) & ~backslashes) | ((x - kOnes * 0x20) & ~x)) & kHighs) {
        return true;
      }
    }
    for (; i < n; ++i) {
      const auto ch = static_cast<unsigned char>(p[i]);
      if (ch == '\\' || ch < 0x20) return true;
    }
    return false;
  }

  bool plain_string(const char* p, std::string_view* out) const {
    // The first quote ends the string unless an escape precedes it, and then the escape makes
    // the string not plain anyway.
    const char* q = static_cast<const char*>(std::memchr(p, '"', static_cast<size_t>(doc_end - p)));
    if (q == nullptr) return false;
    const size_t n = static_cast<size_t>(q - p);
    if (needs_unescaping(p, n)) return false;
    *out = std::string_view(p, n);
    return true;
  }

  // A string value, without simdjson's (virtual, copying) unescaping when it needs none.
  bool fast_string(ondemand::value& v, std::string_view* out) const {
    const std::string_view token = v.raw_json_token();  // peeks; reads nothing
    if (!token.empty() && token[0] == '"' && plain_string(token.data() + 1, out)) {
      ondemand::raw_json_string raw;
      return v.get_raw_json_string().get(raw) == simdjson::SUCCESS;
    }
    return v.get_string().get(*out) == simdjson::SUCCESS;
  }

  // A field's name, likewise.
  bool fast_key(ondemand::field& field, std::string_view* out) const {
    if (plain_string(field.key().raw(), out)) return true;
    return field.unescaped_key().get(*out) == simdjson::SUCCESS;
  }

  bool fast_value(Column& c, Slot& slot, ondemand::value& v) {
    ondemand::json_type t;
    if (v.type().get(t) != simdjson::SUCCESS) return false;
    if (t == ondemand::json_type::null) {
      bool is_null = false;
      if (v.is_null().get(is_null) != simdjson::SUCCESS || !is_null) return false;
      slot.state = Slot::kNull;  // non-nullable fields are checked once the record is complete
      return true;
    }
    switch (c.type.id()) {
      case TypeId::kBool:
        if (t != ondemand::json_type::boolean || v.get_bool().get(slot.b) != simdjson::SUCCESS) {
          return false;
        }
        break;
      case TypeId::kTimestamp:
        if (t == ondemand::json_type::string) {
          std::string_view s;
          if (!options.timestamp_accept_iso8601 || v.get_string().get(s) != simdjson::SUCCESS ||
              !parse_iso8601(s, c.type.unit(), &slot.i)) {
            return false;
          }
          break;
        }
        [[fallthrough]];
      case TypeId::kInt32:
      case TypeId::kInt64: {
        // get_int64 succeeds exactly on the tokens the DOM parser types as int64.
        if (t != ondemand::json_type::number || v.get_int64().get(slot.i) != simdjson::SUCCESS) {
          return false;
        }
        if (c.type.id() == TypeId::kInt32 && (slot.i < std::numeric_limits<int32_t>::min() ||
                                              slot.i > std::numeric_limits<int32_t>::max())) {
          return false;
        }
        break;
      }
      case TypeId::kUInt64: {
        // Integers in [0, 2^64), typed int64 or uint64 by the DOM parser, the same values.
        uint64_t x = 0;
        if (t != ondemand::json_type::number || v.get_uint64().get(x) != simdjson::SUCCESS) {
          return false;
        }
        slot.i = static_cast<int64_t>(x);
        break;
      }
      case TypeId::kFloat64: {
        // get_double reads integers too (correctly rounded, as the DOM path's int-to-double
        // conversion is), but also integers beyond 64 bits, which the DOM parser refuses: tokens
        // of 19 digits or more go to the DOM path.
        if (t != ondemand::json_type::number) return false;
        const std::string_view token = v.raw_json_token();  // peeks; reads nothing
        if (std::count_if(token.begin(), token.end(), is_digit) >= 19 ||
            v.get_double().get(slot.d) != simdjson::SUCCESS) {
          return false;
        }
        break;
      }
      case TypeId::kUtf8:
        if (t != ondemand::json_type::string || !fast_string(v, &slot.s)) return false;
        break;
      case TypeId::kBinary: {
        std::string_view s;
        if (t != ondemand::json_type::string || !fast_string(v, &s)) return false;
        if (options.binary_as_base64) {
          int64_t pos = 0;
          if (!base64_decode(s, c.scratch, &pos)) return false;
          s = c.scratch;
        }
        slot.s = s;
        break;
      }
      default:
        return false;
    }
    slot.state = Slot::kValue;
    return true;
  }

  // The record at `data` (`size` bytes, `capacity` of them readable) into `slots`, all of it
  // read and checked.
  bool decode_fast(const char* data, size_t size, size_t capacity) {
    doc_end = data + size;
    // Limits this small are for tests; the DOM parser may refuse even a flat record.
    if (options.max_depth < 4) return false;
    ondemand::document doc;
    if (od_parser.iterate(data, size, capacity).get(doc) != simdjson::SUCCESS) {
      return false;
    }
    ondemand::object object;
    if (doc.get_object().get(object) != simdjson::SUCCESS) return false;
    for (Slot& s : slots) s.state = Slot::kMissing;
    int hint = 0;
    for (auto member : object) {
      // The field is used where the iterator built it: moving it out (get()) makes GCC copy it
      // with a vector load of two just-written scalars, a store-forwarding stall per field.
      if (member.error() != simdjson::SUCCESS) return false;
      ondemand::field& field = member.value_unsafe();
      // Producers usually write keys in schema order: compare the raw key with the expected
      // name first (exact when the name needs no escaping), before scanning it.
      int f = -1;
      const char* raw = field.key().raw();
      if (hint < static_cast<int>(columns.size())) {
        const Column& expected = columns[static_cast<size_t>(hint)];
        if (expected.plain_name && raw + expected.name.size() < doc_end &&
            raw[expected.name.size()] == '"' &&
            std::memcmp(raw, expected.name.data(), expected.name.size()) == 0) {
          f = hint;
        }
      }
      std::string_view key;
      if (f < 0) {
        if (!fast_key(field, &key)) return false;
        f = find_field(key, hint);
      }
      if (f < 0) {
        if (!options.ignore_unknown_fields || !skip_checked(field.value(), 0)) return false;
        continue;
      }
      hint = f + 1;
      if (!fast_value(columns[static_cast<size_t>(f)], slots[static_cast<size_t>(f)],
                      field.value())) {
        return false;
      }
    }
    // Nothing may follow the object (on-demand stops reading where the object ends): past the
    // last token, the document has no current location.
    const char* rest = nullptr;
    if (doc.current_location().get(rest) != simdjson::OUT_OF_BOUNDS) return false;
    for (size_t f = 0; f < columns.size(); ++f) {
      Slot& s = slots[f];
      const Column& c = columns[f];
      if (s.state == Slot::kMissing) {
        if (!c.nullable || !options.missing_as_null) return false;
        s.state = Slot::kNull;
      } else if (s.state == Slot::kNull && !c.nullable) {
        return false;
      }
    }
    return true;
  }

  // The reference path: the DOM parser, with a precise message for every bad record. Expects the
  // record in `padded`.
  bool decode_dom(std::string_view text) {
    dom::element root;
    simdjson::error_code code = parser.parse(padded.get(), text.size(), false).get(root);
    if (code != simdjson::SUCCESS) {
      describe_parse_error(code, text);
      return false;
    }
    if (root.type() != dom::element_type::OBJECT) {
      error = std::string("expected a JSON object, got ") + json_kind(root.type());
      return false;
    }
    for (Slot& s : slots) s.state = Slot::kMissing;
    int hint = 0;
    // A named object: iterating the temporary simdjson_result would dangle.
    dom::object object;
    if (root.get_object().get(object) != simdjson::SUCCESS) {
      error = "expected a JSON object";
      return false;
    }
    for (dom::key_value_pair kv : object) {
      int f = find_field(kv.key, hint);
      if (f < 0) {
        if (!options.ignore_unknown_fields) {
          error = "unknown field " + quoted(kv.key);
          return false;
        }
        continue;
      }
      hint = f + 1;
      if (!read_value(columns[static_cast<size_t>(f)], slots[static_cast<size_t>(f)], kv.value)) {
        return false;
      }
    }
    for (size_t f = 0; f < columns.size(); ++f) {
      Slot& s = slots[f];
      const Column& c = columns[f];
      if (s.state == Slot::kMissing) {
        if (!c.nullable || !options.missing_as_null) {
          error = "missing field " + quoted(c.name);
          return false;
        }
        s.state = Slot::kNull;
      } else if (s.state == Slot::kNull && !c.nullable) {
        return field_error(c, "null for a non-nullable field");
      }
    }
    for (size_t f = 0; f < columns.size(); ++f) append(columns[f], slots[f]);
    return true;
  }

  static void append(Column& c, const Slot& s) {
    columnar::ArrayBuilder* b = c.builder.get();
    if (s.state == Slot::kNull) {
      b->append_null();
      return;
    }
    // The builders were made in make() from the same type ids, so these casts are exact.
    switch (c.type.id()) {
      case TypeId::kBool:
        static_cast<columnar::BooleanBuilder*>(b)->append(s.b);
        break;
      case TypeId::kInt32:
        static_cast<columnar::Int32Builder*>(b)->append(static_cast<int32_t>(s.i));
        break;
      case TypeId::kInt64:
      case TypeId::kTimestamp:
        static_cast<columnar::Int64Builder*>(b)->append(s.i);
        break;
      case TypeId::kUInt64:
        static_cast<columnar::UInt64Builder*>(b)->append(static_cast<uint64_t>(s.i));
        break;
      case TypeId::kFloat64:
        static_cast<columnar::Float64Builder*>(b)->append(s.d);
        break;
      case TypeId::kUtf8:
      case TypeId::kBinary:
        static_cast<columnar::BinaryBuilder*>(b)->append(s.s);
        break;
    }
  }

  void begin(int64_t n) {
    for (Column& c : columns) c.builder->reserve(n);
  }

  RecordBatch finish() {
    std::vector<Array> arrays;
    arrays.reserve(columns.size());
    int64_t rows = 0;
    for (Column& c : columns) {
      arrays.push_back(c.builder->finish());
      rows = arrays.back().length();
    }
    return RecordBatch::make_unchecked(schema, std::move(arrays), rows);
  }

  // Decodes one record into the batch being built or into `errors`.
  void decode_record(std::string_view text, int64_t index, int64_t byte_offset,
                     std::vector<RecordError>& errors, const char* readable_end = nullptr) {
    if (!decode_one(text, readable_end)) {
      errors.push_back(RecordError{index, byte_offset, error});
    }
  }
};

JsonDecoder::JsonDecoder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
JsonDecoder::JsonDecoder(JsonDecoder&&) noexcept = default;
JsonDecoder& JsonDecoder::operator=(JsonDecoder&&) noexcept = default;
JsonDecoder::~JsonDecoder() = default;

Result<JsonDecoder> JsonDecoder::make(SchemaPtr schema, JsonDecodeOptions options) {
  if (schema == nullptr) return Status::invalid_argument("JsonDecoder: schema is null");
  if (options.max_depth < 1) {
    return Status::invalid_argument("JsonDecoder: max_depth must be at least 1, got " +
                                    std::to_string(options.max_depth));
  }
  auto impl = std::make_unique<Impl>();
  impl->schema = schema;
  impl->options = options;
  if (impl->parser.allocate(simdjson::SIMDJSON_PADDING * 64,
                            static_cast<size_t>(options.max_depth)) != simdjson::SUCCESS ||
      impl->od_parser.allocate(simdjson::SIMDJSON_PADDING * 64,
                               static_cast<size_t>(options.max_depth)) != simdjson::SUCCESS) {
    return Status::internal("JsonDecoder: simdjson parser allocation failed");
  }
  for (int f = 0; f < schema->num_fields(); ++f) {
    const columnar::Field& field = schema->field(f);
    const bool plain_name = std::none_of(field.name.begin(), field.name.end(), [](char ch) {
      return ch == '"' || ch == '\\' || static_cast<unsigned char>(ch) < 0x20;
    });
    Impl::Column c{field.name, field.type, field.nullable, plain_name, nullptr, {}};
    switch (field.type.id()) {
      case TypeId::kBool:
        c.builder = std::make_unique<columnar::BooleanBuilder>();
        break;
      case TypeId::kInt32:
        c.builder = std::make_unique<columnar::Int32Builder>(field.type);
        break;
      case TypeId::kInt64:
      case TypeId::kTimestamp:
        c.builder = std::make_unique<columnar::Int64Builder>(field.type);
        break;
      case TypeId::kUInt64:
        c.builder = std::make_unique<columnar::UInt64Builder>(field.type);
        break;
      case TypeId::kFloat64:
        c.builder = std::make_unique<columnar::Float64Builder>(field.type);
        break;
      case TypeId::kUtf8:
      case TypeId::kBinary:
        c.builder = std::make_unique<columnar::BinaryBuilder>(field.type);
        break;
      default:
        return Status::not_implemented("JsonDecoder: field '" + field.name + "' has type " +
                                       field.type.to_string() + ", which has no JSON mapping");
    }
    if (!impl->index_of.emplace(c.name, f).second) {
      return Status::invalid_argument("JsonDecoder: duplicate field '" + field.name +
                                      "' in schema");
    }
    impl->columns.push_back(std::move(c));
  }
  impl->slots.resize(impl->columns.size());
  return JsonDecoder(std::move(impl));
}

const SchemaPtr& JsonDecoder::schema() const { return impl_->schema; }

void JsonDecoderTestAccess::set_dom_only(JsonDecoder& decoder, bool dom_only) {
  decoder.impl_->dom_only = dom_only;
}

int64_t JsonDecoderTestAccess::fast_path_records(const JsonDecoder& decoder) {
  return decoder.impl_->fast_records;
}

Result<DecodeResult> JsonDecoder::decode(const Array& messages) {
  TypeId id = messages.type().id();
  if (id != TypeId::kBinary && id != TypeId::kUtf8) {
    return Status::type_error("JsonDecoder: messages must be binary or utf8, got " +
                              messages.type().to_string());
  }
  DecodeResult result;
  impl_->begin(messages.length());
  // Messages lie back to back in the data buffer, so all but the last few have simdjson's padding
  // readable behind them.
  const columnar::BufferPtr& data = messages.data().data;
  const char* readable_end =
      data == nullptr ? nullptr : reinterpret_cast<const char*>(data->data()) + data->size();
  for (int64_t i = 0; i < messages.length(); ++i) {
    if (messages.is_null(i)) {
      result.errors.push_back(RecordError{i, -1, "null message"});
      continue;
    }
    impl_->decode_record(messages.string_view(i), i, -1, result.errors, readable_end);
  }
  result.batch = impl_->finish();
  return result;
}

Result<DecodeResult> JsonDecoder::decode(std::span<const std::string_view> messages) {
  DecodeResult result;
  impl_->begin(static_cast<int64_t>(messages.size()));
  for (size_t i = 0; i < messages.size(); ++i) {
    impl_->decode_record(messages[i], static_cast<int64_t>(i), -1, result.errors);
  }
  result.batch = impl_->finish();
  return result;
}

Result<DecodeResult> JsonDecoder::decode_lines(std::string_view text) {
  DecodeResult result;
  // A cheap upper bound for reserving: one row per '\n', plus a last line without one.
  impl_->begin(static_cast<int64_t>(std::count(text.begin(), text.end(), '\n')) + 1);
  // A UTF-8 byte-order mark at the start of a file is not part of its first record.
  size_t pos = text.substr(0, kUtf8Bom.size()) == kUtf8Bom ? kUtf8Bom.size() : 0;
  int64_t line = 0;
  while (pos < text.size()) {
    const void* nl = std::memchr(text.data() + pos, '\n', text.size() - pos);
    size_t end = nl ? static_cast<size_t>(static_cast<const char*>(nl) - text.data()) : text.size();
    std::string_view l = text.substr(pos, end - pos);
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    // JSON strings cannot hold a raw newline, so splitting at '\n' never cuts a record.
    bool blank = std::all_of(l.begin(), l.end(), [](char c) { return is_ws(c); });
    if (!blank) {
      impl_->decode_record(l, line, static_cast<int64_t>(pos), result.errors,
                           text.data() + text.size());
    }
    pos = end + 1;
    ++line;
  }
  result.batch = impl_->finish();
  return result;
}

// ---------------------------------------------------------------------------------------------
// Base64.

namespace {
constexpr char kBase64Alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

struct Base64Table {
  int8_t v[256];
  constexpr Base64Table() : v() {
    for (int i = 0; i < 256; ++i) v[i] = -1;
    for (int i = 0; i < 64; ++i)
      v[static_cast<unsigned char>(kBase64Alphabet[i])] = static_cast<int8_t>(i);
  }
};
constexpr Base64Table kBase64Table;
}  // namespace

void base64_encode(std::string_view bytes, std::string& out) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  size_t n = bytes.size();
  size_t start = out.size();
  out.resize(start + (n + 2) / 3 * 4);
  char* o = out.data() + start;
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    uint32_t w = (uint32_t{p[i]} << 16) | (uint32_t{p[i + 1]} << 8) | p[i + 2];
    *o++ = kBase64Alphabet[(w >> 18) & 63];
    *o++ = kBase64Alphabet[(w >> 12) & 63];
    *o++ = kBase64Alphabet[(w >> 6) & 63];
    *o++ = kBase64Alphabet[w & 63];
  }
  if (i < n) {
    uint32_t w = uint32_t{p[i]} << 16;
    if (i + 1 < n) w |= uint32_t{p[i + 1]} << 8;
    *o++ = kBase64Alphabet[(w >> 18) & 63];
    *o++ = kBase64Alphabet[(w >> 12) & 63];
    *o++ = i + 1 < n ? kBase64Alphabet[(w >> 6) & 63] : '=';
    *o++ = '=';
  }
}

bool base64_decode(std::string_view text, std::string& out, int64_t* error_pos) {
  out.clear();
  size_t n = text.size();
  // Padding: at most two '=' at the very end, and then the length must be a multiple of 4.
  size_t data_len = n;
  if (n > 0 && text[n - 1] == '=') {
    data_len = (n > 1 && text[n - 2] == '=') ? n - 2 : n - 1;
    if (n % 4 != 0) {
      *error_pos = static_cast<int64_t>(data_len);
      return false;
    }
  }
  if (data_len % 4 == 1) {
    *error_pos = static_cast<int64_t>(data_len);
    return false;
  }
  out.reserve(data_len / 4 * 3 + 2);
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < data_len; ++i) {
    int8_t v = kBase64Table.v[static_cast<unsigned char>(text[i])];
    if (v < 0) {
      *error_pos = static_cast<int64_t>(i);
      return false;
    }
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  // Leftover bits must be zero for the encoding to be canonical; non-canonical input is refused so
  // that decode(encode(x)) is the only way to produce x.
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) {
    *error_pos = static_cast<int64_t>(data_len - 1);
    return false;
  }
  return true;
}

}  // namespace sabot::codec
