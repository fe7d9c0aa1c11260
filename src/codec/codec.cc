#include "sabot/codec/codec.h"

namespace sabot::codec {
namespace {

class JsonMessageDecoder final : public Decoder {
 public:
  explicit JsonMessageDecoder(JsonDecoder decoder) : decoder_(std::move(decoder)) {}
  Result<DecodeResult> decode(const columnar::Array& messages) override {
    return decoder_.decode(messages);
  }

 private:
  JsonDecoder decoder_;
};

class JsonMessageEncoder final : public Encoder {
 public:
  Result<columnar::Array> encode(const columnar::RecordBatch& batch) override {
    return encoder_.encode(batch, columnar::binary());
  }

 private:
  JsonEncoder encoder_;
};

class JsonCodec final : public Codec {
 public:
  JsonCodec(columnar::SchemaPtr schema, JsonDecodeOptions options)
      : schema_(std::move(schema)), options_(options) {}
  std::string name() const override { return "json"; }
  columnar::SchemaPtr schema() const override { return schema_; }
  Result<std::unique_ptr<Decoder>> make_decoder() const override {
    if (schema_ == nullptr) {
      return Status::invalid_argument("the json codec needs a schema to decode messages");
    }
    SABOT_ASSIGN_OR_RETURN(JsonDecoder d, JsonDecoder::make(schema_, options_));
    return std::unique_ptr<Decoder>(new JsonMessageDecoder(std::move(d)));
  }
  Result<std::unique_ptr<Encoder>> make_encoder() const override {
    return std::unique_ptr<Encoder>(new JsonMessageEncoder());
  }

 private:
  columnar::SchemaPtr schema_;
  JsonDecodeOptions options_;
};

}  // namespace

CodecPtr json(columnar::SchemaPtr schema, JsonDecodeOptions options) {
  return std::make_shared<JsonCodec>(std::move(schema), options);
}

CodecPtr json() { return std::make_shared<JsonCodec>(nullptr, JsonDecodeOptions{}); }

}  // namespace sabot::codec
