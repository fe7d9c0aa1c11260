// JsonEncoder: writes each row of a RecordBatch as one JSON object, keys in schema order. The
// quoted keys are prepared once per batch; strings are escaped with a table lookup and copied in
// runs between the characters that need escaping.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "sabot/base/check.h"
#include "sabot/codec/json.h"
#include "sabot/columnar/builder.h"

namespace sabot::codec {

using columnar::Array;
using columnar::DataType;
using columnar::RecordBatch;
using columnar::TypeId;

namespace {

// 0: copy as is; otherwise the character after the backslash ('u' for \u00XX).
struct EscapeTable {
  char v[256];
  constexpr EscapeTable() : v() {
    for (int i = 0; i < 256; ++i) v[i] = 0;
    for (int i = 0; i < 0x20; ++i) v[i] = 'u';
    v[static_cast<int>('\b')] = 'b';
    v[static_cast<int>('\f')] = 'f';
    v[static_cast<int>('\n')] = 'n';
    v[static_cast<int>('\r')] = 'r';
    v[static_cast<int>('\t')] = 't';
    v[static_cast<int>('"')] = '"';
    v[static_cast<int>('\\')] = '\\';
  }
};
constexpr EscapeTable kEscape;

void append_escaped(std::string_view s, std::string& out) {
  out.push_back('"');
  const char* p = s.data();
  size_t n = s.size();
  size_t run = 0;
  for (size_t i = 0; i < n; ++i) {
    char e = kEscape.v[static_cast<unsigned char>(p[i])];
    if (e == 0) continue;
    out.append(p + run, i - run);
    run = i + 1;
    out.push_back('\\');
    out.push_back(e);
    if (e == 'u') {
      static constexpr char kHex[] = "0123456789abcdef";
      unsigned char c = static_cast<unsigned char>(p[i]);
      out.append("00");
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  out.append(p + run, n - run);
  out.push_back('"');
}

template <typename T>
void append_integer(T v, std::string& out) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, r.ptr);
}

void append_double(double d, std::string& out) {
  if (!std::isfinite(d)) {
    out.append("null");
    return;
  }
  if (d == 0 && std::signbit(d)) {
    // to_chars writes "-0", which JSON readers take for the integer 0 and lose the sign.
    out.append("-0.0");
    return;
  }
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof(buf), d);
  // to_chars picks plain digits for large integral values ("136742926958265417728"); JSON readers
  // such as simdjson take those for integers and refuse them beyond 64 bits, so such values are
  // written in scientific form, which every reader takes for a double.
  if (std::fabs(d) >= 1e15 &&
      std::find_if(buf, r.ptr, [](char c) { return c == '.' || c == 'e'; }) == r.ptr) {
    r = std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::scientific);
  }
  out.append(buf, r.ptr);
}

}  // namespace

namespace {

// Appends row `row` of `batch` as one JSON object. `keys` holds "\"name\":" per column.
void append_row(const RecordBatch& batch, const std::vector<std::string>& keys, int64_t row,
                bool omit_nulls, std::string& out, std::string& scratch) {
  out.push_back('{');
  bool first = true;
  for (int c = 0; c < batch.num_columns(); ++c) {
    const Array& a = batch.column(c);
    bool null = a.is_null(row);
    if (null && omit_nulls) continue;
    if (!first) out.push_back(',');
    first = false;
    out.append(keys[static_cast<size_t>(c)]);
    if (null) {
      out.append("null");
      continue;
    }
    switch (a.type().id()) {
      case TypeId::kBool:
        out.append(a.bool_value(row) ? "true" : "false");
        break;
      case TypeId::kInt32:
        append_integer(a.value<int32_t>(row), out);
        break;
      case TypeId::kInt64:
      case TypeId::kTimestamp:
        append_integer(a.value<int64_t>(row), out);
        break;
      case TypeId::kUInt64:
        append_integer(a.value<uint64_t>(row), out);
        break;
      case TypeId::kFloat64:
        append_double(a.value<double>(row), out);
        break;
      case TypeId::kUtf8:
        append_escaped(a.string_view(row), out);
        break;
      case TypeId::kBinary:
        scratch.clear();
        base64_encode(a.string_view(row), scratch);
        out.push_back('"');
        out.append(scratch);  // base64 needs no escaping
        out.push_back('"');
        break;
    }
  }
  out.push_back('}');
}

std::vector<std::string> quoted_keys(const RecordBatch& batch) {
  std::vector<std::string> keys;
  keys.reserve(static_cast<size_t>(batch.num_columns()));
  for (const columnar::Field& f : batch.schema().fields()) {
    std::string k;
    append_escaped(f.name, k);
    k.push_back(':');
    keys.push_back(std::move(k));
  }
  return keys;
}

}  // namespace

Result<Array> JsonEncoder::encode(const RecordBatch& batch, DataType type) {
  if (type.id() != TypeId::kBinary && type.id() != TypeId::kUtf8) {
    return Status::invalid_argument("JsonEncoder: output type must be binary or utf8, got " +
                                    type.to_string());
  }
  std::vector<std::string> keys = quoted_keys(batch);
  // All rows go into one reused text buffer, then into the array's buffers with one copy each:
  // cheaper than growing a builder row by row.
  text_.clear();
  offsets_.clear();
  offsets_.reserve(static_cast<size_t>(batch.num_rows()) + 1);
  offsets_.push_back(0);
  std::string scratch;
  constexpr size_t kMaxBytes = std::numeric_limits<int32_t>::max();
  for (int64_t r = 0; r < batch.num_rows(); ++r) {
    append_row(batch, keys, r, options_.omit_nulls, text_, scratch);
    if (text_.size() > kMaxBytes) {
      return Status::out_of_range("JsonEncoder: row " + std::to_string(r) +
                                  " takes the output past the 2 GiB an array can hold; encode "
                                  "smaller batches");
    }
    offsets_.push_back(static_cast<int32_t>(text_.size()));
  }
  return Array::make(type, batch.num_rows(), nullptr,
                     columnar::Buffer::copy_of(
                         offsets_.data(), static_cast<int64_t>(offsets_.size() * sizeof(int32_t))),
                     columnar::Buffer::copy_of(text_.data(), static_cast<int64_t>(text_.size())));
}

void JsonEncoder::encode_lines(const RecordBatch& batch, std::string& out) {
  std::vector<std::string> keys = quoted_keys(batch);
  std::string scratch;
  for (int64_t r = 0; r < batch.num_rows(); ++r) {
    append_row(batch, keys, r, options_.omit_nulls, out, scratch);
    out.push_back('\n');
  }
}

std::string JsonEncoder::encode_lines(const RecordBatch& batch) {
  std::string out;
  encode_lines(batch, out);
  return out;
}

}  // namespace sabot::codec
