// Codecs turn message bytes into record batches and back, for topics (and any other byte-oriented
// connector). A Codec is an immutable description shared by every subtask; each subtask makes its
// own Decoder / Encoder, which are single-threaded and reuse their buffers across batches.
#pragma once

#include <memory>
#include <string>

#include "sabot/codec/json.h"
#include "sabot/columnar/record_batch.h"

namespace sabot::codec {

class Decoder {
 public:
  virtual ~Decoder() = default;
  // `messages` is a binary or utf8 array, one message per element. Bad messages are reported in
  // DecodeResult::errors by index; the caller applies its bad-record policy.
  virtual Result<DecodeResult> decode(const columnar::Array& messages) = 0;
};

class Encoder {
 public:
  virtual ~Encoder() = default;
  // One message per row, as a binary array.
  virtual Result<columnar::Array> encode(const columnar::RecordBatch& batch) = 0;
};

class Codec {
 public:
  virtual ~Codec() = default;
  virtual std::string name() const = 0;
  // The schema decoded messages have; null for an encode-only codec.
  virtual columnar::SchemaPtr schema() const = 0;
  virtual Result<std::unique_ptr<Decoder>> make_decoder() const = 0;
  virtual Result<std::unique_ptr<Encoder>> make_encoder() const = 0;
};

using CodecPtr = std::shared_ptr<const Codec>;

// JSON objects decoded into `schema` (see JsonDecodeOptions) and rows encoded as JSON objects.
CodecPtr json(columnar::SchemaPtr schema, JsonDecodeOptions options = {});
// JSON for writing only (any schema).
CodecPtr json();

// MessagePack: one map per message, decoded into a schema as follows:
//   bool      true / false
//   int32, int64, uint64, timestamp   an integer in the type's range (timestamps in their unit)
//   float64   a float 32 or float 64, or an integer (converted)
//   utf8      a str holding valid UTF-8
//   binary    a bin (or a str: its bytes)
//   null      nil for nullable fields, an error for non-nullable ones
// Keys must be str. The last of repeated keys wins. Encoding writes one map per row, keys in schema
// order, null as nil, binary as bin, timestamps as integers in their unit.
struct MsgpackOptions {
  // Keys that are not in the schema are skipped (true, the default; their values must still be
  // well-formed MessagePack) or make the record bad.
  bool ignore_unknown_fields = true;
  // A missing key of a nullable field becomes null (true, the default) or makes the record bad.
  // A missing key of a non-nullable field always makes the record bad.
  bool missing_as_null = true;
  // Arrays and maps nested deeper than this (the record's map is level 1) make a record bad.
  int max_depth = 64;
};
CodecPtr msgpack(columnar::SchemaPtr schema, MsgpackOptions options = {});
// MessagePack for writing only (any schema).
CodecPtr msgpack();

// Arrow IPC per message: each message is a complete Arrow IPC stream (schema message, record
// batch messages, end-of-stream marker) holding exactly one row whose schema equals `schema`
// (names, types and nullability). Readable and writable by any Arrow implementation.
CodecPtr arrow_ipc(columnar::SchemaPtr schema);
// Arrow IPC for writing only (any schema).
CodecPtr arrow_ipc();

// Text: each message is one value of a single non-nullable utf8 column named `column`; a message
// that is not valid UTF-8 is a bad record. Encoding writes the bytes of the column named `column`
// (or of the batch's only column), which must be utf8 or binary and hold no nulls.
CodecPtr text(std::string column = "value");
// Raw bytes: like text with a binary column, and every message is good.
CodecPtr raw(std::string column = "value");

}  // namespace sabot::codec
