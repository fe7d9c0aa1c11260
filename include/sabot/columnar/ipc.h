// The Arrow IPC streaming format: a schema message, record batch messages and an end-of-stream
// marker, readable and writable by every Arrow implementation. The writer streams into a ByteSink;
// the reader walks an in-memory buffer and hands out batches that share its memory where alignment
// allows. Writers and readers have one owner each and are not thread-safe; the batches they return
// are ordinary immutable batches.
#pragma once

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "sabot/base/status.h"
#include "sabot/columnar/buffer.h"
#include "sabot/columnar/record_batch.h"

namespace sabot::columnar {

// Where an IPC writer puts its bytes (a vector, a file, a socket). Not thread-safe.
class ByteSink {
 public:
  virtual ~ByteSink() = default;
  virtual Status write(const void* data, int64_t size) = 0;
};

// Appends to a caller-owned vector, which must outlive the sink.
class VectorSink final : public ByteSink {
 public:
  explicit VectorSink(std::vector<uint8_t>* out) : out_(out) {}
  Status write(const void* data, int64_t size) override {
    const auto* p = static_cast<const uint8_t*>(data);
    out_->insert(out_->end(), p, p + size);
    return Status::ok();
  }

 private:
  std::vector<uint8_t>* out_;
};

struct IpcWriteOptions {
  // Alignment, in bytes, of every buffer in a message body, relative to the start of the stream;
  // 8 or 64. Default 64: a reader that holds the stream in 64-byte-aligned memory gets
  // 64-byte-aligned buffers. 8 is the spec's minimum and makes small batches smaller.
  int64_t alignment = 64;
};

// Writes one stream: the schema (explicitly, or implicitly from the first batch), batches with
// that schema, then close() writes the end-of-stream marker. Sliced batches are written as their
// logical contents (offsets re-based, bitmaps shifted to bit 0). The sink is not owned and must
// outlive the writer.
class IpcStreamWriter {
 public:
  explicit IpcStreamWriter(ByteSink* sink, IpcWriteOptions options = {});

  // Writes the schema message; only once, and before any batch.
  Status write_schema(SchemaPtr schema);
  // Writes one batch; its schema must equal the stream's (written first if none yet).
  Status write(const RecordBatch& batch);
  // Writes the end-of-stream marker; further writes are refused. Refused without a schema.
  Status close();

  const SchemaPtr& schema() const { return schema_; }
  int64_t bytes_written() const { return position_; }

 private:
  struct Piece {
    const uint8_t* data;
    int64_t size;
  };
  Status emit(const void* data, int64_t size);
  Status emit_message(const std::vector<uint8_t>& metadata_fb, int64_t body_length);
  // Appends the bitmap's bits [offset, offset + length) to pieces_, shifted to bit 0 if needed.
  void add_bitmap(const uint8_t* bits, int64_t offset, int64_t length);

  ByteSink* sink_;
  IpcWriteOptions options_;
  SchemaPtr schema_;
  bool closed_ = false;
  int64_t position_ = 0;
  // Reused between batches: pieces of the body, and storage for re-based offsets and bitmaps.
  std::vector<Piece> pieces_;
  std::vector<std::vector<uint8_t>> scratch_;
  size_t scratch_used_ = 0;
  std::vector<uint8_t> metadata_;
};

struct IpcReadOptions {
  // Check that utf8 columns hold valid UTF-8 (one pass over the string bytes; ASCII is fast).
  // Offsets, lengths and null counts are always checked.
  bool validate_utf8 = true;
};

// Reads a stream from memory. Hostile input is refused with InvalidData (or NotImplemented for
// valid Arrow features Sabot lacks: dictionaries, compression, other types), naming what is wrong
// and the stream byte offset; it never reads out of bounds. Buffers are zero-copy slices of the
// input when suitably aligned (8 bytes for 64-bit values), copies otherwise. Accepts the legacy
// pre-0.15 framing without the continuation marker, and a stream that ends without the
// end-of-stream marker at a message boundary.
class IpcStreamReader {
 public:
  // Reads up to and including the schema message.
  static Result<IpcStreamReader> open(BufferPtr stream, IpcReadOptions options = {});

  const SchemaPtr& schema() const { return schema_; }
  // The next batch, or nullopt at the end of the stream.
  Result<std::optional<RecordBatch>> next();
  // Stream byte offset of the next message.
  int64_t position() const { return position_; }

 private:
  IpcStreamReader(BufferPtr stream, IpcReadOptions options)
      : stream_(std::move(stream)), options_(options) {}
  struct Message;
  Result<std::optional<Message>> next_message();
  Result<RecordBatch> read_batch(const Message& message);

  BufferPtr stream_;
  IpcReadOptions options_;
  SchemaPtr schema_;
  int64_t position_ = 0;
  bool done_ = false;
};

// The whole stream for `batches` (which must share one schema, and be at least one).
Result<std::vector<uint8_t>> write_ipc_stream(const std::vector<RecordBatch>& batches,
                                              IpcWriteOptions options = {});
// The same with an explicit schema, so that zero batches are allowed.
Result<std::vector<uint8_t>> write_ipc_stream(SchemaPtr schema,
                                              const std::vector<RecordBatch>& batches,
                                              IpcWriteOptions options = {});
// Reads the schema and every batch.
Result<std::pair<SchemaPtr, std::vector<RecordBatch>>> read_ipc_stream(BufferPtr stream,
                                                                       IpcReadOptions options = {});

}  // namespace sabot::columnar
