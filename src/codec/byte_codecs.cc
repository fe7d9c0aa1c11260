// The codecs whose messages are bytes with little or no structure: text and raw bytes (one column,
// one value per message) and Arrow IPC per message (one stream of one row per message).
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "codec/message_decoding.h"
#include "codec/utf8.h"
#include "sabot/codec/codec.h"
#include "sabot/columnar/builder.h"
#include "sabot/columnar/ipc.h"

namespace sabot::codec {
namespace {

using columnar::Array;
using columnar::RecordBatch;
using columnar::SchemaPtr;
using columnar::TypeId;

// ---------------------------------------------------------------------------------------------
// Text and raw bytes.

class SingleColumnDecoder final : public Decoder {
 public:
  SingleColumnDecoder(SchemaPtr schema, bool check_utf8)
      : schema_(std::move(schema)), check_utf8_(check_utf8) {}

  Result<DecodeResult> decode(const Array& messages) override {
    SABOT_RETURN_IF_ERROR(check_message_array(check_utf8_ ? "text" : "raw", messages));
    DecodeResult result;
    columnar::BinaryBuilder builder(schema_->field(0).type);
    builder.reserve(messages.length());
    for (int64_t i = 0; i < messages.length(); ++i) {
      if (messages.is_null(i)) {
        result.errors.push_back(RecordError{i, -1, "null message"});
        continue;
      }
      const std::string_view m = messages.string_view(i);
      if (check_utf8_) {
        const int64_t bad = first_invalid_utf8(m);
        if (bad >= 0) {
          result.errors.push_back(
              RecordError{i, -1, "invalid UTF-8 at byte " + std::to_string(bad)});
          continue;
        }
      }
      builder.append(m);
    }
    const int64_t rows = builder.length();
    result.batch = RecordBatch::make_unchecked(schema_, {builder.finish()}, rows);
    return result;
  }

 private:
  SchemaPtr schema_;
  bool check_utf8_;
};

class SingleColumnEncoder final : public Encoder {
 public:
  SingleColumnEncoder(std::string codec, std::string column)
      : codec_(std::move(codec)), column_(std::move(column)) {}

  Result<Array> encode(const RecordBatch& batch) override {
    int c = batch.schema().field_index(column_);
    if (c < 0 && batch.num_columns() == 1) c = 0;
    if (c < 0) {
      return Status::invalid_argument(codec_ + " codec: the batch has no column '" + column_ +
                                      "' (and more than one column)");
    }
    const Array& values = batch.column(c);
    const std::string& name = batch.schema().field(c).name;
    if (values.type().id() != TypeId::kUtf8 && values.type().id() != TypeId::kBinary) {
      return Status::type_error(codec_ + " codec: column '" + name +
                                "' must be utf8 or binary, got " + values.type().to_string());
    }
    columnar::BinaryBuilder builder(columnar::binary());
    builder.reserve(values.length());
    for (int64_t i = 0; i < values.length(); ++i) {
      if (values.is_null(i)) {
        return Status::invalid_argument(codec_ + " codec: column '" + name + "' is null in row " +
                                        std::to_string(i) + "; a message cannot be null");
      }
      builder.append(values.string_view(i));
    }
    return builder.finish();
  }

 private:
  std::string codec_;
  std::string column_;
};

class SingleColumnCodec final : public Codec {
 public:
  SingleColumnCodec(std::string column, bool text) : column_(std::move(column)), text_(text) {
    schema_ = columnar::schema(
        {columnar::field(column_, text ? columnar::utf8() : columnar::binary(), false)});
  }
  std::string name() const override { return text_ ? "text" : "raw"; }
  SchemaPtr schema() const override { return schema_; }
  Result<std::unique_ptr<Decoder>> make_decoder() const override {
    return std::unique_ptr<Decoder>(new SingleColumnDecoder(schema_, text_));
  }
  Result<std::unique_ptr<Encoder>> make_encoder() const override {
    return std::unique_ptr<Encoder>(new SingleColumnEncoder(name(), column_));
  }

 private:
  std::string column_;
  bool text_;
  SchemaPtr schema_;
};

// ---------------------------------------------------------------------------------------------
// Arrow IPC per message.

class IpcDecoder final : public Decoder {
 public:
  explicit IpcDecoder(SchemaPtr schema) : schema_(std::move(schema)) {
    for (const columnar::Field& f : schema_->fields())
      builders_.push_back(columnar::make_builder(f.type));
  }

  Result<DecodeResult> decode(const Array& messages) override {
    SABOT_RETURN_IF_ERROR(check_message_array("arrow_ipc", messages));
    return decode_messages(
        messages, schema_, builders_, [&](std::string_view m, std::string& error) {
          error = decode_one(columnar::Buffer::copy_of(m.data(), static_cast<int64_t>(m.size())));
          return error.empty();
        });
  }

 private:
  // Appends the message's row to the builders, or returns why it cannot.
  std::string decode_one(columnar::BufferPtr bytes) {
    auto reader = columnar::IpcStreamReader::open(std::move(bytes));
    if (!reader.is_ok()) return "invalid Arrow IPC stream: " + reader.status().message();
    if (!(*reader->schema() == *schema_)) {
      return "Arrow IPC schema differs from the codec's: got " + reader->schema()->to_string();
    }
    std::optional<RecordBatch> row;
    int64_t count = 0;
    for (;;) {
      auto next = reader->next();
      if (!next.is_ok()) return "invalid Arrow IPC stream: " + next.status().message();
      if (!next->has_value()) break;
      count += (*next)->num_rows();
      if ((*next)->num_rows() > 0) row = std::move(**next);
    }
    if (count != 1) {
      return "an Arrow IPC message must hold exactly one row, got " + std::to_string(count);
    }
    for (int c = 0; c < row->num_columns(); ++c) {
      builders_[static_cast<size_t>(c)]->append_array(row->column(c), 0, 1);
    }
    return std::string();
  }

  SchemaPtr schema_;
  std::vector<std::unique_ptr<columnar::ArrayBuilder>> builders_;
};

class IpcEncoder final : public Encoder {
 public:
  explicit IpcEncoder(SchemaPtr schema) : schema_(std::move(schema)) {}

  Result<Array> encode(const RecordBatch& batch) override {
    if (schema_ != nullptr && !(batch.schema() == *schema_)) {
      return Status::invalid_argument("arrow_ipc codec: the batch's schema\n" +
                                      batch.schema().to_string() + "\ndiffers from the codec's\n" +
                                      schema_->to_string());
    }
    columnar::BinaryBuilder builder(columnar::binary());
    builder.reserve(batch.num_rows());
    for (int64_t i = 0; i < batch.num_rows(); ++i) {
      bytes_.clear();
      columnar::VectorSink sink(&bytes_);
      // 8-byte alignment, the spec's minimum, keeps one-row messages small.
      columnar::IpcStreamWriter writer(&sink, {.alignment = 8});
      SABOT_RETURN_IF_ERROR(writer.write(batch.slice(i, 1)));
      SABOT_RETURN_IF_ERROR(writer.close());
      builder.append(std::string_view(reinterpret_cast<const char*>(bytes_.data()), bytes_.size()));
    }
    return builder.finish();
  }

 private:
  SchemaPtr schema_;
  std::vector<uint8_t> bytes_;  // reused between rows
};

class IpcCodec final : public Codec {
 public:
  explicit IpcCodec(SchemaPtr schema) : schema_(std::move(schema)) {}
  std::string name() const override { return "arrow_ipc"; }
  SchemaPtr schema() const override { return schema_; }
  Result<std::unique_ptr<Decoder>> make_decoder() const override {
    if (schema_ == nullptr) {
      return Status::invalid_argument("the arrow_ipc codec needs a schema to decode messages");
    }
    return std::unique_ptr<Decoder>(new IpcDecoder(schema_));
  }
  Result<std::unique_ptr<Encoder>> make_encoder() const override {
    return std::unique_ptr<Encoder>(new IpcEncoder(schema_));
  }

 private:
  SchemaPtr schema_;
};

}  // namespace

CodecPtr text(std::string column) {
  return std::make_shared<SingleColumnCodec>(std::move(column), true);
}
CodecPtr raw(std::string column) {
  return std::make_shared<SingleColumnCodec>(std::move(column), false);
}
CodecPtr arrow_ipc(SchemaPtr schema) { return std::make_shared<IpcCodec>(std::move(schema)); }
CodecPtr arrow_ipc() { return std::make_shared<IpcCodec>(nullptr); }

}  // namespace sabot::codec
