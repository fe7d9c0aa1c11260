// JSON codec: decodes JSON objects (one per message, or one per line of a JSON-lines text) into
// RecordBatches of a declared schema, and encodes RecordBatches back into JSON objects. Decoding
// never drops a bad record silently: every record that does not fit the schema comes back with
// its input index and a precise reason, and the caller applies its policy (fail, skip,
// dead-letter).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sabot/base/status.h"
#include "sabot/columnar/array.h"
#include "sabot/columnar/record_batch.h"
#include "sabot/columnar/type.h"

namespace sabot::codec {

// How JSON values map onto the schema's types when decoding:
//   bool      true / false
//   int32     an integer in [-2^31, 2^31); anything else is "out of range for int32"
//   int64     an integer in [-2^63, 2^63)
//   uint64    an integer in [0, 2^64)
//   float64   any number (integers are converted)
//   utf8      a string (simdjson validates UTF-8 for the whole message)
//   binary    a string: base64 (standard alphabet, padding optional) or its raw UTF-8 bytes
//   timestamp an integer in the type's unit (and, optionally, an ISO-8601 string)
//   null      null for nullable fields, an error for non-nullable ones
// Integers written with a fraction or exponent (1.0, 1e3) are not integers. Integer literals beyond
// 64 bits make the record bad even for float64 fields (simdjson 3.0 refuses them; write 1.5e30).
// When a key appears more than once in an object, the last occurrence wins (as in JavaScript's
// JSON.parse), but every occurrence must fit the field's type.
struct JsonDecodeOptions {
  // Keys that are not in the schema are skipped (true, the default) or make the record bad.
  bool ignore_unknown_fields = true;
  // A missing key of a nullable field becomes null (true, the default) or makes the record bad.
  // A missing key of a non-nullable field always makes the record bad.
  bool missing_as_null = true;
  // Binary fields hold base64 text (true, the default; what JsonEncoder writes) or the string's
  // own bytes (false).
  bool binary_as_base64 = true;
  // Timestamp fields also accept ISO-8601 / RFC 3339 strings such as "2024-01-02T03:04:05.123Z" or
  // "2024-01-02T03:04:05+01:00" (false by default: integers only). Sub-unit digits are truncated.
  bool timestamp_accept_iso8601 = false;
  // Nesting deeper than this makes a record bad (simdjson's depth limit; default 1024).
  int max_depth = 1024;
};

// One record that could not be decoded.
struct RecordError {
  // The element index for decode(Array) and decode(span); the 0-based line number for
  // decode_lines.
  int64_t index = 0;
  // decode_lines only: byte offset of the line's first byte in the text (-1 otherwise), so the
  // caller can forward the raw line to a dead-letter topic.
  int64_t byte_offset = -1;
  // E.g. "field 'amount': expected a number, got string", "missing field 'id'",
  // "malformed JSON at byte 17: ...", "field 'n': value -1 out of range for uint64",
  // "invalid UTF-8", "null message".
  std::string message;
};

struct DecodeResult {
  // The good records, in input order. The input index of a good row is found by skipping the
  // error indices: rows and errors together cover every record exactly once.
  columnar::RecordBatch batch;
  // The bad records, in input order.
  std::vector<RecordError> errors;
};

struct JsonDecoderTestAccess;  // src/codec/json_test_access.h

// Decodes batches of JSON messages into RecordBatches of one schema.
// Reads each record with simdjson's on-demand API (every value, unknown fields included, is read
// and validated); a record it does not accept is parsed again with simdjson's DOM parser, which
// names what is wrong. Owns both parsers and the column builders, reused across records and
// batches, so that a warm decoder allocates only the output columns. Not thread-safe: use one
// decoder per task.
class JsonDecoder {
 public:
  // Fails when the schema is missing or a field type has no JSON mapping.
  static Result<JsonDecoder> make(columnar::SchemaPtr schema, JsonDecodeOptions options = {});

  JsonDecoder(JsonDecoder&&) noexcept;
  JsonDecoder& operator=(JsonDecoder&&) noexcept;
  ~JsonDecoder();

  const columnar::SchemaPtr& schema() const;

  // One JSON object per element of a binary or utf8 array (slices allowed). A null element is a bad
  // record ("null message"). Errs (TypeError) only when the array has another type.
  Result<DecodeResult> decode(const columnar::Array& messages);
  // One JSON object per element.
  Result<DecodeResult> decode(std::span<const std::string_view> messages);
  // JSON lines: one object per line ('\n' or "\r\n" endings); lines holding only whitespace are
  // skipped. The last line needs no terminator.
  Result<DecodeResult> decode_lines(std::string_view text);

 private:
  friend struct JsonDecoderTestAccess;
  struct Impl;
  explicit JsonDecoder(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// How values are written when encoding:
//   bool -> true/false; int32, int64, uint64, timestamp -> integers (timestamps in their unit);
//   float64 -> the shortest text that parses back to the same double (std::to_chars), -0.0 kept
//   as "-0.0", NaN and +-Inf -> null (JSON has no such numbers);
//   utf8 -> a string: '"', '\\' and control characters < 0x20 escaped (\n, \t, ... or \u00XX),
//   everything else (non-ASCII UTF-8 included) copied as is;
//   binary -> a base64 string (standard alphabet, with padding), which JsonDecoder reads back by
//   default; null -> null, or the key is left out when omit_nulls is set.
// Keys appear in schema order.
struct JsonEncodeOptions {
  // Leave out keys whose value is null instead of writing null (false by default).
  bool omit_nulls = false;
};

// Encodes RecordBatches into JSON objects. Stateless apart from its options and a scratch buffer,
// so one encoder per thread; not thread-safe.
class JsonEncoder {
 public:
  explicit JsonEncoder(JsonEncodeOptions options = {}) : options_(options) {}

  // One JSON object per row, as an array of `type` (binary or utf8, otherwise InvalidArgument).
  // OutOfRange when the output exceeds the 2 GiB that int32 offsets can address.
  Result<columnar::Array> encode(const columnar::RecordBatch& batch,
                                 columnar::DataType type = columnar::binary());
  // Appends one JSON object and a '\n' per row to `out` (JSON lines).
  void encode_lines(const columnar::RecordBatch& batch, std::string& out);
  std::string encode_lines(const columnar::RecordBatch& batch);

 private:
  JsonEncodeOptions options_;
  // Reused by encode() so that a warm encoder allocates only the output buffers.
  std::string text_;
  std::vector<int32_t> offsets_;
};

// Base64 (RFC 4648, standard alphabet) helpers used for binary fields; exposed for tests and other
// codecs. base64_decode accepts input with or without '=' padding and rejects anything else,
// returning false and leaving the byte position of the first bad character in *error_pos.
void base64_encode(std::string_view bytes, std::string& out);
bool base64_decode(std::string_view text, std::string& out, int64_t* error_pos);

}  // namespace sabot::codec
