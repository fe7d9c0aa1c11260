// CSV decoding and encoding. Decoding runs in two steps per record: a resumable scanner finds where
// the record ends (tracking quotes, so it can stop at the end of one chunk and continue in the
// next without rescanning), then the complete record is split into fields and converted. A record
// is staged field by field and appended to the builders only when every field converted, so a bad
// record leaves no partial row behind.
#include "sabot/codec/csv.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "sabot/base/check.h"
#include "sabot/columnar/builder.h"

namespace sabot::codec {

using columnar::Array;
using columnar::ArrayBuilder;
using columnar::BinaryBuilder;
using columnar::BooleanBuilder;
using columnar::DataType;
using columnar::Float64Builder;
using columnar::Int32Builder;
using columnar::Int64Builder;
using columnar::RecordBatch;
using columnar::SchemaPtr;
using columnar::TypeId;
using columnar::UInt64Builder;

namespace {

// Where the scanner is inside the record it has not finished yet.
enum class ScanState : uint8_t {
  kFieldStart,  // at the first byte of a field
  kUnquoted,    // inside an unquoted field
  kQuoted,      // inside a quoted field
  kQuoteSeen,   // just after a quote inside a quoted field: a closing quote or half of ""
};

// One stream's position: what has been decoded, how far the scanner got, and the header.
struct StreamState {
  size_t start = 0;     // first byte of the next record in the data
  size_t scan_pos = 0;  // the scanner has looked at [start, scan_pos)
  ScanState scan = ScanState::kFieldStart;
  int64_t pending_newlines = 0;  // '\n' inside quotes in [start, scan_pos)
  int64_t line = 0;              // 0-based line of the byte at `start`
  int64_t base_byte = 0;         // stream offset of the data's first byte
  bool header_done = false;
  std::vector<int> col_field;         // CSV column -> schema field, -1 to ignore
  std::vector<std::string> col_name;  // CSV column -> its name for messages
  std::vector<int> field_col;         // schema field -> CSV column, -1 when absent
};

struct FieldSpan {
  std::string_view text;  // between the quotes for a quoted field, "" still doubled
  bool quoted = false;
  bool escaped = false;  // holds "" pairs
};

// A converted value, staged until the whole record has converted.
struct Cell {
  bool null = false;
  bool b = false;
  int64_t i = 0;
  uint64_t u = 0;
  double d = 0;
  std::string_view s;
};

bool is_blank_space(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_blank_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_blank_space(s.back())) s.remove_suffix(1);
  return s;
}

// The value as it appears in a message: at most 40 bytes, non-printable bytes as \xNN.
std::string quote_for_message(std::string_view v) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "'";
  size_t n = std::min<size_t>(v.size(), 40);
  for (size_t i = 0; i < n; ++i) {
    auto c = static_cast<unsigned char>(v[i]);
    if (c >= 0x20 && c < 0x7f) {
      out.push_back(static_cast<char>(c));
    } else {
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  if (v.size() > n) out += "...";
  out += "'";
  return out;
}

bool equals_ignore_case(std::string_view a, std::string_view lower) {
  if (a.size() != lower.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char c = a[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != lower[i]) return false;
  }
  return true;
}

enum class ParseOutcome { kOk, kNotANumber, kOutOfRange };

template <typename T>
ParseOutcome parse_number(std::string_view s, T* v) {
  const char* b = s.data();
  const char* e = b + s.size();
  // from_chars takes no '+'; accept one, but not "+-1".
  if (b != e && *b == '+') {
    ++b;
    if (b != e && *b == '-') return ParseOutcome::kNotANumber;
  }
  if (b == e) return ParseOutcome::kNotANumber;
  auto r = std::from_chars(b, e, *v);
  if (r.ec == std::errc::result_out_of_range) return ParseOutcome::kOutOfRange;
  if (r.ec != std::errc() || r.ptr != e) {
    if constexpr (std::is_unsigned_v<T>) {
      // "-12" is a number, just not one a uint64 can hold.
      if (*b == '-' && b + 1 != e &&
          std::all_of(b + 1, e, [](char c) { return c >= '0' && c <= '9'; })) {
        return ParseOutcome::kOutOfRange;
      }
    }
    return ParseOutcome::kNotANumber;
  }
  return ParseOutcome::kOk;
}

// Splits a complete record (terminator removed) into fields. False with *error on bad syntax.
bool split_fields(std::string_view rec, char delim, char quote, std::vector<FieldSpan>& out,
                  std::string* error) {
  out.clear();
  const char* p = rec.data();
  const size_t n = rec.size();
  size_t i = 0;
  for (;;) {
    FieldSpan f;
    if (i < n && p[i] == quote) {
      size_t j = i + 1;
      for (;;) {
        const void* q = j < n ? std::memchr(p + j, quote, n - j) : nullptr;
        if (q == nullptr) {
          *error = "unterminated quoted field " + std::to_string(out.size() + 1);
          return false;
        }
        size_t qi = static_cast<size_t>(static_cast<const char*>(q) - p);
        if (qi + 1 < n && p[qi + 1] == quote) {
          f.escaped = true;
          j = qi + 2;
          continue;
        }
        f.text = rec.substr(i + 1, qi - i - 1);
        f.quoted = true;
        i = qi + 1;
        break;
      }
      out.push_back(f);
      if (i == n) return true;
      if (p[i] != delim) {
        *error = "unexpected " + quote_for_message(rec.substr(i, 1)) +
                 " after the closing quote of field " + std::to_string(out.size());
        return false;
      }
      ++i;
    } else {
      const void* d = i < n ? std::memchr(p + i, delim, n - i) : nullptr;
      size_t di = d ? static_cast<size_t>(static_cast<const char*>(d) - p) : n;
      f.text = rec.substr(i, di - i);
      if (!f.text.empty() && std::memchr(f.text.data(), quote, f.text.size()) != nullptr) {
        *error = "quote inside unquoted field " + std::to_string(out.size() + 1) +
                 " (quote the whole field and double the quote)";
        return false;
      }
      out.push_back(f);
      if (di == n) return true;
      i = di + 1;
    }
  }
}

void unescape(std::string_view text, char quote, std::string& out) {
  out.clear();
  for (size_t i = 0; i < text.size(); ++i) {
    out.push_back(text[i]);
    if (text[i] == quote) ++i;  // the second quote of ""
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Decoder.

struct CsvDecoder::Impl {
  SchemaPtr schema;
  CsvOptions opt;
  std::vector<std::unique_ptr<ArrayBuilder>> builders;
  std::vector<TypeId> types;

  // Streaming input: buf[stream.start, end) is not decoded yet.
  std::string buf;
  StreamState stream;
  bool input_finished = false;

  // Scratch reused across records.
  std::vector<FieldSpan> fields;
  std::vector<Cell> cells;
  std::vector<std::string> unescaped;  // per CSV column
  std::vector<std::string> decoded;    // per schema field (base64)
  std::string error;

  // Finds the end of the record that starts at s.start. True with *end at its '\n'.
  bool scan(std::string_view data, StreamState& s, size_t* end) const {
    const char* p = data.data();
    const size_t n = data.size();
    const char delim = opt.delimiter;
    const char quote = opt.quote;
    size_t i = s.scan_pos;
    ScanState st = s.scan;
    while (i < n) {
      if (st == ScanState::kQuoted) {
        const void* q = std::memchr(p + i, quote, n - i);
        size_t qi = q ? static_cast<size_t>(static_cast<const char*>(q) - p) : n;
        s.pending_newlines += std::count(p + i, p + qi, '\n');
        if (q == nullptr) {
          i = n;
          break;
        }
        i = qi + 1;
        st = ScanState::kQuoteSeen;
        continue;
      }
      const char c = p[i];
      if (c == '\n') {
        *end = i;
        s.scan = ScanState::kFieldStart;
        s.scan_pos = i + 1;
        return true;
      }
      if (c == delim) {
        st = ScanState::kFieldStart;
      } else if (c == quote && (st == ScanState::kFieldStart || st == ScanState::kQuoteSeen)) {
        st = ScanState::kQuoted;
      } else {
        st = ScanState::kUnquoted;
      }
      ++i;
    }
    s.scan = st;
    s.scan_pos = n;
    return false;
  }

  std::string column_label(const StreamState& s, size_t col) const {
    if (col < s.col_name.size()) return "column '" + s.col_name[col] + "'";
    return "column " + std::to_string(col + 1);
  }

  Status set_positional_header(StreamState& s) const {
    const int nf = schema->num_fields();
    s.col_field.resize(static_cast<size_t>(nf));
    s.col_name.resize(static_cast<size_t>(nf));
    s.field_col.resize(static_cast<size_t>(nf));
    for (int f = 0; f < nf; ++f) {
      s.col_field[static_cast<size_t>(f)] = f;
      s.field_col[static_cast<size_t>(f)] = f;
      s.col_name[static_cast<size_t>(f)] = schema->field(f).name;
    }
    s.header_done = true;
    return Status::ok();
  }

  Status read_header(std::string_view rec, StreamState& s) {
    const std::string where = "CSV header (line " + std::to_string(s.line + 1) + ")";
    if (!split_fields(rec, opt.delimiter, opt.quote, fields, &error)) {
      return Status::invalid_data(where + ": " + error);
    }
    const int nf = schema->num_fields();
    s.col_field.assign(fields.size(), -1);
    s.col_name.assign(fields.size(), std::string());
    s.field_col.assign(static_cast<size_t>(nf), -1);
    std::string name;
    for (size_t c = 0; c < fields.size(); ++c) {
      if (fields[c].escaped) {
        unescape(fields[c].text, opt.quote, name);
      } else {
        name.assign(fields[c].text);
      }
      s.col_name[c] = name;
      int f = schema->field_index(name);
      if (f < 0) continue;
      if (s.field_col[static_cast<size_t>(f)] >= 0) {
        return Status::invalid_data(where + ": column '" + name + "' appears twice (columns " +
                                    std::to_string(s.field_col[static_cast<size_t>(f)] + 1) +
                                    " and " + std::to_string(c + 1) + ")");
      }
      s.field_col[static_cast<size_t>(f)] = static_cast<int>(c);
      s.col_field[c] = f;
    }
    std::string missing;
    for (int f = 0; f < nf; ++f) {
      if (s.field_col[static_cast<size_t>(f)] < 0 && !schema->field(f).nullable) {
        if (!missing.empty()) missing += ", ";
        missing += "'" + schema->field(f).name + "'";
      }
    }
    if (!missing.empty()) {
      return Status::invalid_data(where + " lacks the non-nullable column(s) " + missing);
    }
    s.header_done = true;
    return Status::ok();
  }

  // Converts field `text` of CSV column `col` into cells[f]. False with `error` set.
  bool convert(const FieldSpan& span, size_t col, int f, const StreamState& s) {
    Cell& cell = cells[static_cast<size_t>(f)];
    cell = Cell();
    std::string_view text = span.text;
    if (span.escaped) {
      unescape(text, opt.quote, unescaped[col]);
      text = unescaped[col];
    }
    const columnar::Field& field = schema->field(f);
    if (!span.quoted && text == opt.null_string) {
      if (!field.nullable) {
        error = column_label(s, col) + ": null in non-nullable field";
        return false;
      }
      cell.null = true;
      return true;
    }
    auto fail = [&](const std::string& what) {
      error = column_label(s, col) + ": " + what;
      return false;
    };
    switch (types[static_cast<size_t>(f)]) {
      case TypeId::kBool: {
        std::string_view t = trim(text);
        if (t == "1" || equals_ignore_case(t, "true")) {
          cell.b = true;
        } else if (t == "0" || equals_ignore_case(t, "false")) {
          cell.b = false;
        } else {
          return fail("expected true, false, 1 or 0, got " + quote_for_message(text));
        }
        return true;
      }
      case TypeId::kInt32: {
        int32_t v = 0;
        ParseOutcome o = parse_number(trim(text), &v);
        if (o == ParseOutcome::kNotANumber)
          return fail("expected an integer, got " + quote_for_message(text));
        if (o == ParseOutcome::kOutOfRange)
          return fail("value " + quote_for_message(trim(text)) + " out of range for int32");
        cell.i = v;
        return true;
      }
      case TypeId::kInt64:
      case TypeId::kTimestamp: {
        int64_t v = 0;
        ParseOutcome o = parse_number(trim(text), &v);
        if (o == ParseOutcome::kNotANumber)
          return fail("expected an integer, got " + quote_for_message(text));
        if (o == ParseOutcome::kOutOfRange)
          return fail("value " + quote_for_message(trim(text)) + " out of range for " +
                      field.type.to_string());
        cell.i = v;
        return true;
      }
      case TypeId::kUInt64: {
        uint64_t v = 0;
        ParseOutcome o = parse_number(trim(text), &v);
        if (o == ParseOutcome::kNotANumber)
          return fail("expected an integer, got " + quote_for_message(text));
        if (o == ParseOutcome::kOutOfRange)
          return fail("value " + quote_for_message(trim(text)) + " out of range for uint64");
        cell.u = v;
        return true;
      }
      case TypeId::kFloat64: {
        double v = 0;
        ParseOutcome o = parse_number(trim(text), &v);
        if (o == ParseOutcome::kNotANumber)
          return fail("expected a number, got " + quote_for_message(text));
        if (o == ParseOutcome::kOutOfRange)
          return fail("value " + quote_for_message(trim(text)) + " out of range for float64");
        cell.d = v;
        return true;
      }
      case TypeId::kUtf8:
        if (!columnar::is_valid_utf8(text)) return fail("invalid UTF-8");
        cell.s = text;
        return true;
      case TypeId::kBinary:
        if (opt.binary_as_base64) {
          std::string& out = decoded[static_cast<size_t>(f)];
          out.clear();
          int64_t pos = 0;
          if (!base64_decode(text, out, &pos)) {
            return fail("invalid base64 at byte " + std::to_string(pos) + " of " +
                        quote_for_message(text));
          }
          cell.s = out;
        } else {
          cell.s = text;
        }
        return true;
    }
    return fail("unsupported type " + field.type.to_string());
  }

  void append_cells() {
    const int nf = schema->num_fields();
    for (int f = 0; f < nf; ++f) {
      const Cell& c = cells[static_cast<size_t>(f)];
      ArrayBuilder* b = builders[static_cast<size_t>(f)].get();
      if (c.null) {
        b->append_null();
        continue;
      }
      switch (types[static_cast<size_t>(f)]) {
        case TypeId::kBool:
          static_cast<BooleanBuilder*>(b)->append(c.b);
          break;
        case TypeId::kInt32:
          static_cast<Int32Builder*>(b)->append(static_cast<int32_t>(c.i));
          break;
        case TypeId::kInt64:
        case TypeId::kTimestamp:
          static_cast<Int64Builder*>(b)->append(c.i);
          break;
        case TypeId::kUInt64:
          static_cast<UInt64Builder*>(b)->append(c.u);
          break;
        case TypeId::kFloat64:
          static_cast<Float64Builder*>(b)->append(c.d);
          break;
        case TypeId::kUtf8:
        case TypeId::kBinary:
          static_cast<BinaryBuilder*>(b)->append(c.s);
          break;
      }
    }
  }

  // Decodes one complete record; a bad one goes to `errors`.
  Status decode_record(std::string_view rec, int64_t line, int64_t byte_offset, StreamState& s,
                       std::vector<RecordError>& errors) {
    auto bad = [&](const std::string& what) {
      errors.push_back(
          RecordError{line, byte_offset, "line " + std::to_string(line + 1) + ", " + what});
    };
    if (!split_fields(rec, opt.delimiter, opt.quote, fields, &error)) {
      bad(error);
      return Status::ok();
    }
    if (fields.size() != s.col_field.size()) {
      bad("expected " + std::to_string(s.col_field.size()) + " fields, got " +
          std::to_string(fields.size()));
      return Status::ok();
    }
    if (unescaped.size() < fields.size()) unescaped.resize(fields.size());
    const int nf = schema->num_fields();
    for (int f = 0; f < nf; ++f) {
      int col = s.field_col[static_cast<size_t>(f)];
      if (col < 0) {
        cells[static_cast<size_t>(f)] = Cell();
        cells[static_cast<size_t>(f)].null = true;
        continue;
      }
      if (!convert(fields[static_cast<size_t>(col)], static_cast<size_t>(col), f, s)) {
        bad(error);
        return Status::ok();
      }
    }
    append_cells();
    return Status::ok();
  }

  // Decodes up to max_records complete records of `data` from s.start. `final`: the data ends the
  // stream, so a trailing record without '\n' is complete.
  Status run(std::string_view data, StreamState& s, bool final, int64_t max_records,
             DecodeResult& out) {
    int64_t records = 0;
    while (records < max_records) {
      size_t end = 0;
      std::string_view rec;
      int64_t newlines = 0;
      if (scan(data, s, &end)) {
        rec = data.substr(s.start, end - s.start);
        newlines = s.pending_newlines + 1;
      } else if (final && s.start < data.size()) {
        rec = data.substr(s.start);
        newlines = s.pending_newlines;
        s.scan_pos = data.size();
        end = data.size();
      } else {
        if (!final && static_cast<int64_t>(data.size() - s.start) > opt.max_record_bytes) {
          return Status::invalid_data(
              "CSV record starting at line " + std::to_string(s.line + 1) + " (byte " +
              std::to_string(s.base_byte + static_cast<int64_t>(s.start)) +
              ") is longer than max_record_bytes (" + std::to_string(opt.max_record_bytes) +
              "); an unbalanced quote?");
        }
        break;
      }
      const int64_t line = s.line;
      const int64_t byte_offset = s.base_byte + static_cast<int64_t>(s.start);
      s.start = end + 1 > data.size() ? data.size() : end + 1;
      s.line += newlines;
      s.pending_newlines = 0;
      s.scan = ScanState::kFieldStart;
      s.scan_pos = s.start;
      if (!rec.empty() && rec.back() == '\r') rec.remove_suffix(1);
      if (rec.empty() && (!s.header_done || s.col_field.size() != 1)) continue;
      if (!s.header_done) {
        SABOT_RETURN_IF_ERROR(read_header(rec, s));
        continue;
      }
      SABOT_RETURN_IF_ERROR(decode_record(rec, line, byte_offset, s, out.errors));
      ++records;
    }
    return Status::ok();
  }

  void begin(StreamState& s) {
    if (!s.header_done && !opt.header) (void)set_positional_header(s);
  }

  RecordBatch finish_batch() {
    std::vector<Array> cols;
    cols.reserve(builders.size());
    int64_t rows = builders.empty() ? 0 : builders[0]->length();
    for (auto& b : builders) cols.push_back(b->finish());
    return RecordBatch::make_unchecked(schema, std::move(cols), rows);
  }
};

Result<CsvDecoder> CsvDecoder::make(SchemaPtr schema, CsvOptions options) {
  if (schema == nullptr) return Status::invalid_argument("the CSV decoder needs a schema");
  const char d = options.delimiter;
  const char q = options.quote;
  if (d == q || d == '\n' || d == '\r' || q == '\n' || q == '\r') {
    return Status::invalid_argument(
        "CSV delimiter and quote must differ from each other and from '\\r' and '\\n'");
  }
  if (options.max_record_bytes <= 0) {
    return Status::invalid_argument("CSV max_record_bytes must be positive");
  }
  auto impl = std::make_unique<Impl>();
  impl->schema = std::move(schema);
  impl->opt = std::move(options);
  for (const auto& f : impl->schema->fields()) {
    impl->builders.push_back(columnar::make_builder(f.type));
    impl->types.push_back(f.type.id());
  }
  impl->cells.resize(impl->schema->fields().size());
  impl->decoded.resize(impl->schema->fields().size());
  return CsvDecoder(std::move(impl));
}

CsvDecoder::CsvDecoder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CsvDecoder::CsvDecoder(CsvDecoder&&) noexcept = default;
CsvDecoder& CsvDecoder::operator=(CsvDecoder&&) noexcept = default;
CsvDecoder::~CsvDecoder() = default;

const SchemaPtr& CsvDecoder::schema() const { return impl_->schema; }

Result<DecodeResult> CsvDecoder::decode(std::string_view text) {
  StreamState s;
  impl_->begin(s);
  DecodeResult result;
  Status st = impl_->run(text, s, /*final=*/true, std::numeric_limits<int64_t>::max(), result);
  RecordBatch batch = impl_->finish_batch();  // also resets the builders on error
  if (!st.is_ok()) return st;
  result.batch = std::move(batch);
  return result;
}

void CsvDecoder::feed(std::string_view bytes) {
  StreamState& s = impl_->stream;
  if (s.start > 0) {
    // Drop what is decoded so the buffer holds at most one chunk plus an incomplete record.
    impl_->buf.erase(0, s.start);
    s.base_byte += static_cast<int64_t>(s.start);
    s.scan_pos -= s.start;
    s.start = 0;
  }
  impl_->buf.append(bytes);
}

void CsvDecoder::finish_input() { impl_->input_finished = true; }

Result<DecodeResult> CsvDecoder::next_batch(int64_t max_records) {
  impl_->begin(impl_->stream);
  DecodeResult result;
  Status st = impl_->run(impl_->buf, impl_->stream, impl_->input_finished,
                         std::max<int64_t>(1, max_records), result);
  RecordBatch batch = impl_->finish_batch();
  if (!st.is_ok()) return st;
  result.batch = std::move(batch);
  return result;
}

bool CsvDecoder::exhausted() const {
  return impl_->input_finished && impl_->stream.start >= impl_->buf.size();
}

int64_t CsvDecoder::buffered_bytes() const {
  return static_cast<int64_t>(impl_->buf.size() - impl_->stream.start);
}

int64_t CsvDecoder::next_line() const { return impl_->stream.line; }

int64_t CsvDecoder::next_byte_offset() const {
  return impl_->stream.base_byte + static_cast<int64_t>(impl_->stream.start);
}

void CsvDecoder::reset() {
  impl_->buf.clear();
  impl_->stream = StreamState();
  impl_->input_finished = false;
}

// ---------------------------------------------------------------------------------------------
// Encoder.

void CsvEncoder::append_field(std::string_view text, bool force_quote, std::string& out) const {
  const char d = options_.delimiter;
  const char q = options_.quote;
  bool needs = force_quote || text == options_.null_string;
  if (!needs) {
    for (char c : text) {
      if (c == d || c == q || c == '\n' || c == '\r') {
        needs = true;
        break;
      }
    }
  }
  if (!needs) {
    out.append(text);
    return;
  }
  out.push_back(q);
  size_t run = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != q) continue;
    out.append(text.substr(run, i + 1 - run));
    out.push_back(q);  // doubled
    run = i + 1;
  }
  out.append(text.substr(run));
  out.push_back(q);
}

void CsvEncoder::write_header(const columnar::Schema& schema, std::string& out) {
  for (int c = 0; c < schema.num_fields(); ++c) {
    if (c > 0) out.push_back(options_.delimiter);
    append_field(schema.field(c).name, false, out);
  }
  out.push_back('\n');
  header_written_ = true;
}

void CsvEncoder::encode(const RecordBatch& batch, std::string& out) {
  if (options_.header && !header_written_) write_header(batch.schema(), out);
  header_written_ = true;
  const int nc = batch.num_columns();
  char buf[64];
  for (int64_t r = 0; r < batch.num_rows(); ++r) {
    for (int c = 0; c < nc; ++c) {
      if (c > 0) out.push_back(options_.delimiter);
      const Array& a = batch.column(c);
      if (a.is_null(r)) {
        out.append(options_.null_string);
        continue;
      }
      std::string_view text;
      switch (a.type().id()) {
        case TypeId::kBool:
          text = a.bool_value(r) ? "true" : "false";
          break;
        case TypeId::kInt32: {
          auto res = std::to_chars(buf, buf + sizeof(buf), a.value<int32_t>(r));
          text = std::string_view(buf, static_cast<size_t>(res.ptr - buf));
          break;
        }
        case TypeId::kInt64:
        case TypeId::kTimestamp: {
          auto res = std::to_chars(buf, buf + sizeof(buf), a.value<int64_t>(r));
          text = std::string_view(buf, static_cast<size_t>(res.ptr - buf));
          break;
        }
        case TypeId::kUInt64: {
          auto res = std::to_chars(buf, buf + sizeof(buf), a.value<uint64_t>(r));
          text = std::string_view(buf, static_cast<size_t>(res.ptr - buf));
          break;
        }
        case TypeId::kFloat64: {
          // to_chars writes inf, -inf, nan and -nan, all of which from_chars reads back.
          auto res = std::to_chars(buf, buf + sizeof(buf), a.value<double>(r));
          text = std::string_view(buf, static_cast<size_t>(res.ptr - buf));
          break;
        }
        case TypeId::kUtf8:
          text = a.string_view(r);
          break;
        case TypeId::kBinary:
          if (options_.binary_as_base64) {
            scratch_.clear();
            base64_encode(a.string_view(r), scratch_);
            text = scratch_;
          } else {
            text = a.string_view(r);
          }
          break;
      }
      append_field(text, false, out);
    }
    out.push_back('\n');
  }
}

std::string CsvEncoder::encode(const RecordBatch& batch) {
  std::string out;
  encode(batch, out);
  return out;
}

}  // namespace sabot::codec
