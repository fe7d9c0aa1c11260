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

}  // namespace sabot::codec
