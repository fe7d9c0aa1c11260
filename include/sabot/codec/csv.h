// CSV codec (RFC 4180): decodes CSV text into RecordBatches of a declared schema, either all at
// once or as a stream of byte chunks of any size (records, quoted fields and open quotes carry
// across chunk boundaries), and encodes RecordBatches back into CSV text. Like the JSON codec,
// decoding never drops a bad record silently: each comes back with its line, byte offset and
// reason.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "sabot/base/status.h"
#include "sabot/codec/json.h"  // DecodeResult, RecordError
#include "sabot/columnar/record_batch.h"
#include "sabot/columnar/type.h"

namespace sabot::codec {

// Syntax (both directions):
//   records end with '\n' or "\r\n"; the last record needs no terminator;
//   a field that starts with `quote` is quoted: it ends at the next lone quote, "" inside it is
//   one quote, and delimiters, '\r' and '\n' inside it are data; a quoted field must be followed by
//   the delimiter or the end of the record; a quote inside an unquoted field makes the record bad;
//   an unquoted field equal to `null_string` is null (a quoted one never is: "" is an empty
//   string); empty lines are skipped, except in a one-column file where an empty line is a null
//   field.
// Values, per schema type (surrounding spaces and tabs are ignored for all but utf8 and binary):
//   bool      true / false (any case), 1 / 0
//   int32, int64, uint64  decimal integers with an optional sign, range-checked
//   float64   decimal or scientific notation, inf, nan (what std::from_chars accepts)
//   utf8      the field's bytes, which must be valid UTF-8
//   binary    base64 (binary_as_base64, the default) or the field's raw bytes
//   timestamp an integer in the type's unit
struct CsvOptions {
  // Separates fields. Default ','. Must differ from `quote`, '\r' and '\n'.
  char delimiter = ',';
  // Decoding: the first record names the columns; columns are matched to the schema by name, CSV
  // columns that are not in the schema are ignored, and a schema field with no column is null in
  // every row (an error when the field is not nullable). Without a header (false) the columns are
  // the schema's fields in order. Encoding: write a header line first. Default true.
  bool header = true;
  // Opens and closes quoted fields. Default '"'.
  char quote = '"';
  // The unquoted text of a null field. Default "" (an empty field).
  std::string null_string{};
  // Binary fields hold base64 text (true, the default, what CsvEncoder writes) or raw bytes.
  bool binary_as_base64 = true;
  // Streaming: a record still incomplete after this many buffered bytes fails the stream with
  // InvalidData (typically an unbalanced quote), so that memory stays bounded. Default 64 MiB.
  int64_t max_record_bytes = int64_t{64} << 20;
};

// Decodes CSV text into batches of one schema. RecordError::index is the 0-based number of the
// line on which the record starts (lines counted across the whole stream, header included, so a
// quoted field spanning lines moves later records down); byte_offset is the stream offset of the
// record's first byte; message reads "line 7, column 'amount': expected a number, got 'abc'" with
// the 1-based line number that editors show. Problems with the header (a required column missing,
// a duplicate column) are not record errors: they fail the decode with InvalidData.
// Owns its column builders and a buffer for incomplete input, reused across calls. Not
// thread-safe: use one decoder per task.
class CsvDecoder {
 public:
  // Fails when the schema is missing or the options are inconsistent.
  static Result<CsvDecoder> make(columnar::SchemaPtr schema, CsvOptions options = {});

  CsvDecoder(CsvDecoder&&) noexcept;
  CsvDecoder& operator=(CsvDecoder&&) noexcept;
  ~CsvDecoder();

  const columnar::SchemaPtr& schema() const;

  // The whole text at once (header first when options.header). Independent of the streaming state.
  Result<DecodeResult> decode(std::string_view text);

  // ---- streaming ----
  // Appends the next bytes of the stream (copied).
  void feed(std::string_view bytes);
  // No more bytes will come: a final record without a terminator is complete.
  void finish_input();
  // Decodes the complete records buffered so far, at most `max_records` of them (good and bad
  // together), so the batch holds at most max_records rows. An empty result (no rows, no errors)
  // means that more input is needed, or, after finish_input(), that the stream is exhausted.
  // InvalidData for header problems and for a record longer than max_record_bytes.
  Result<DecodeResult> next_batch(int64_t max_records);
  // True after finish_input() once every buffered byte has been decoded.
  bool exhausted() const;
  // Bytes fed but not yet decoded (an incomplete record, or records not yet asked for).
  int64_t buffered_bytes() const;
  // 0-based line number and stream byte offset of the next record to decode.
  int64_t next_line() const;
  int64_t next_byte_offset() const;
  // Forgets the stream (buffer, header, line count) to start a new one.
  void reset();

 private:
  struct Impl;
  explicit CsvDecoder(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// How values are written: bool -> true/false; integers and timestamps -> decimal; float64 -> the
// shortest text that parses back to the same double (inf, -inf, nan included); utf8 -> as is;
// binary -> base64 (or raw with binary_as_base64 = false); null -> null_string. A field is quoted
// when it contains the delimiter, the quote, '\r' or '\n', when it is empty or equal to
// null_string (so that it does not read back as null), or when it starts or ends with a space or
// tab (so that it reads back unchanged as a number or bool). Keys and values in schema order.
// Stateless apart from its options and whether the header was written; not thread-safe.
class CsvEncoder {
 public:
  explicit CsvEncoder(CsvOptions options = {}) : options_(std::move(options)) {}

  // Appends one line per row, preceded by the header line on the first call when options.header.
  void encode(const columnar::RecordBatch& batch, std::string& out);
  std::string encode(const columnar::RecordBatch& batch);
  // Appends the header line for `schema` now (for an output with no rows); later calls to encode()
  // write no header.
  void write_header(const columnar::Schema& schema, std::string& out);
  bool header_written() const { return header_written_; }
  // The next encode() writes the header again (a new file).
  void reset() { header_written_ = false; }

 private:
  void append_field(std::string_view text, bool force_quote, std::string& out) const;
  CsvOptions options_;
  bool header_written_ = false;
  std::string scratch_;
};

}  // namespace sabot::codec
