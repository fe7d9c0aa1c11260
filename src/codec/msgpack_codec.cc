// The MessagePack codec (codec.h has the type mapping): msgpack-c++ parses each message, with
// size limits derived from the message's length so that hostile counts cannot make it allocate
// more than the message could hold; values are checked into per-field slots and appended only
// once the whole record is good, as in the JSON decoder.
#include <msgpack.hpp>

#include <bit>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "codec/message_decoding.h"
#include "codec/utf8.h"
#include "sabot/codec/codec.h"
#include "sabot/columnar/builder.h"

namespace sabot::codec {
namespace {

using columnar::Array;
using columnar::RecordBatch;
using columnar::SchemaPtr;
using columnar::TypeId;

constexpr size_t kMaxQuoted = 64;

std::string quote_name(std::string_view s) {
  std::string out = "'";
  out.append(s.substr(0, kMaxQuoted));
  if (s.size() > kMaxQuoted) out.append("...");
  out.push_back('\'');
  return out;
}

const char* kind(const msgpack::object& o) {
  switch (o.type) {
    case msgpack::type::NIL:
      return "nil";
    case msgpack::type::BOOLEAN:
      return "boolean";
    case msgpack::type::POSITIVE_INTEGER:
    case msgpack::type::NEGATIVE_INTEGER:
      return "integer";
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64:
      return "float";
    case msgpack::type::STR:
      return "str";
    case msgpack::type::BIN:
      return "bin";
    case msgpack::type::ARRAY:
      return "array";
    case msgpack::type::MAP:
      return "map";
    case msgpack::type::EXT:
      return "ext";
  }
  return "unknown";
}

// Strings and bins point into the message, which outlives the decoded object.
bool reference_everything(msgpack::type::object_type, std::size_t, void*) { return true; }

class MsgpackDecoder final : public Decoder {
 public:
  MsgpackDecoder(SchemaPtr schema, MsgpackOptions options)
      : schema_(std::move(schema)), options_(options) {
    for (const columnar::Field& f : schema_->fields()) {
      builders_.push_back(columnar::make_builder(f.type));
    }
    slots_.resize(builders_.size());
  }

  Result<DecodeResult> decode(const Array& messages) override {
    SABOT_RETURN_IF_ERROR(check_message_array("msgpack", messages));
    return decode_messages(messages, schema_, builders_,
                           [&](std::string_view m, std::string& error) {
                             error_.clear();
                             if (decode_one(m)) return true;
                             error = std::move(error_);
                             return false;
                           });
  }

 private:
  struct Slot {
    enum State : uint8_t { kMissing, kNull, kValue };
    State state = kMissing;
    const msgpack::object* value = nullptr;
  };

  bool fail(std::string message) {
    error_ = std::move(message);
    return false;
  }
  bool field_fail(int f, const std::string& what) {
    return fail("field " + quote_name(schema_->field(f).name) + ": " + what);
  }

  bool decode_one(std::string_view m) {
    if (m.empty()) return fail("empty message");
    zone_.clear();
    const msgpack::object* root = nullptr;
    msgpack::object object;
    size_t offset = 0;
    // No count in a well-formed message can exceed its length: every element takes a byte.
    const size_t n = m.size();
    const msgpack::unpack_limit limit(n, n, n, n, n, static_cast<size_t>(options_.max_depth));
    try {
      bool referenced = false;
      object = msgpack::unpack(zone_, m.data(), n, offset, referenced, reference_everything,
                               nullptr, limit);
      root = &object;
    } catch (const msgpack::insufficient_bytes&) {
      return fail("malformed MessagePack: the message ends inside a value");
    } catch (const msgpack::depth_size_overflow&) {
      return fail("malformed MessagePack: nesting deeper than " +
                  std::to_string(options_.max_depth));
    } catch (const msgpack::size_overflow&) {
      return fail("malformed MessagePack: a length or count exceeds the message's size");
    } catch (const msgpack::unpack_error& e) {
      return fail(std::string("malformed MessagePack: ") + e.what());
    } catch (const std::bad_alloc&) {
      return fail("malformed MessagePack: too large to decode");
    }
    if (offset != n) {
      return fail("malformed MessagePack: " + std::to_string(n - offset) +
                  " unexpected bytes after the value at byte " + std::to_string(offset));
    }
    if (root->type != msgpack::type::MAP) {
      return fail(std::string("expected a MessagePack map, got ") + kind(*root));
    }
    for (Slot& s : slots_) s = Slot{};
    const msgpack::object_map& map = root->via.map;
    for (uint32_t k = 0; k < map.size; ++k) {
      const msgpack::object_kv& kv = map.ptr[k];
      if (kv.key.type != msgpack::type::STR) {
        return fail(std::string("map keys must be str, got ") + kind(kv.key));
      }
      const std::string_view key(kv.key.via.str.ptr, kv.key.via.str.size);
      const int f = schema_->field_index(key);
      if (f < 0) {
        if (!options_.ignore_unknown_fields) return fail("unknown field " + quote_name(key));
        continue;
      }
      Slot& slot = slots_[static_cast<size_t>(f)];
      if (kv.val.type == msgpack::type::NIL) {
        slot.state = Slot::kNull;
        continue;
      }
      if (!check_value(f, kv.val)) return false;
      slot.state = Slot::kValue;
      slot.value = &kv.val;
    }
    for (int f = 0; f < schema_->num_fields(); ++f) {
      Slot& s = slots_[static_cast<size_t>(f)];
      const columnar::Field& field = schema_->field(f);
      if (s.state == Slot::kMissing) {
        if (!field.nullable || !options_.missing_as_null) {
          return fail("missing field " + quote_name(field.name));
        }
        s.state = Slot::kNull;
      } else if (s.state == Slot::kNull && !field.nullable) {
        return field_fail(f, "nil for a non-nullable field");
      }
    }
    for (int f = 0; f < schema_->num_fields(); ++f) append(f);
    return true;
  }

  bool expected(int f, const char* what, const msgpack::object& got) {
    return field_fail(f, std::string("expected ") + what + ", got " + kind(got));
  }

  bool check_integer(int f, const msgpack::object& v, const char* type_name, int64_t lo,
                     uint64_t hi) {
    if (v.type == msgpack::type::POSITIVE_INTEGER) {
      if (v.via.u64 > hi) {
        return field_fail(f,
                          "value " + std::to_string(v.via.u64) + " out of range for " + type_name);
      }
      return true;
    }
    if (v.type == msgpack::type::NEGATIVE_INTEGER) {
      if (v.via.i64 < lo) {
        return field_fail(f,
                          "value " + std::to_string(v.via.i64) + " out of range for " + type_name);
      }
      return true;
    }
    return expected(f, "an integer", v);
  }

  // Checks that `v` (not nil) fits field f's type.
  bool check_value(int f, const msgpack::object& v) {
    switch (schema_->field(f).type.id()) {
      case TypeId::kBool:
        return v.type == msgpack::type::BOOLEAN || expected(f, "a boolean", v);
      case TypeId::kInt32:
        return check_integer(f, v, "int32", std::numeric_limits<int32_t>::min(),
                             std::numeric_limits<int32_t>::max());
      case TypeId::kInt64:
        return check_integer(f, v, "int64", std::numeric_limits<int64_t>::min(),
                             std::numeric_limits<int64_t>::max());
      case TypeId::kTimestamp:
        return check_integer(f, v, "timestamp", std::numeric_limits<int64_t>::min(),
                             std::numeric_limits<int64_t>::max());
      case TypeId::kUInt64:
        return check_integer(f, v, "uint64", 0, std::numeric_limits<uint64_t>::max());
      case TypeId::kFloat64:
        return v.type == msgpack::type::FLOAT32 || v.type == msgpack::type::FLOAT64 ||
               v.type == msgpack::type::POSITIVE_INTEGER ||
               v.type == msgpack::type::NEGATIVE_INTEGER || expected(f, "a number", v);
      case TypeId::kUtf8: {
        if (v.type != msgpack::type::STR) return expected(f, "a str", v);
        const int64_t bad = first_invalid_utf8(std::string_view(v.via.str.ptr, v.via.str.size));
        return bad < 0 || field_fail(f, "invalid UTF-8 at byte " + std::to_string(bad));
      }
      case TypeId::kBinary:
        return v.type == msgpack::type::BIN || v.type == msgpack::type::STR ||
               expected(f, "a bin or str", v);
    }
    return field_fail(f, "unsupported type");
  }

  void append(int f) {
    const Slot& s = slots_[static_cast<size_t>(f)];
    columnar::ArrayBuilder* b = builders_[static_cast<size_t>(f)].get();
    if (s.state == Slot::kNull) {
      b->append_null();
      return;
    }
    const msgpack::object& v = *s.value;
    // The builders come from make_builder with the same types, so these casts are exact.
    switch (schema_->field(f).type.id()) {
      case TypeId::kBool:
        static_cast<columnar::BooleanBuilder*>(b)->append(v.via.boolean);
        break;
      case TypeId::kInt32:
        static_cast<columnar::Int32Builder*>(b)->append(static_cast<int32_t>(v.via.i64));
        break;
      case TypeId::kInt64:
      case TypeId::kTimestamp:
        static_cast<columnar::Int64Builder*>(b)->append(v.via.i64);
        break;
      case TypeId::kUInt64:
        static_cast<columnar::UInt64Builder*>(b)->append(v.via.u64);
        break;
      case TypeId::kFloat64:
        static_cast<columnar::Float64Builder*>(b)->append(
            v.type == msgpack::type::POSITIVE_INTEGER   ? static_cast<double>(v.via.u64)
            : v.type == msgpack::type::NEGATIVE_INTEGER ? static_cast<double>(v.via.i64)
                                                        : v.via.f64);
        break;
      case TypeId::kUtf8:
        static_cast<columnar::BinaryBuilder*>(b)->append(
            std::string_view(v.via.str.ptr, v.via.str.size));
        break;
      case TypeId::kBinary:
        static_cast<columnar::BinaryBuilder*>(b)->append(
            v.type == msgpack::type::BIN ? std::string_view(v.via.bin.ptr, v.via.bin.size)
                                         : std::string_view(v.via.str.ptr, v.via.str.size));
        break;
    }
  }

  SchemaPtr schema_;
  MsgpackOptions options_;
  std::vector<std::unique_ptr<columnar::ArrayBuilder>> builders_;
  std::vector<Slot> slots_;
  msgpack::zone zone_;  // reused: cleared per message
  std::string error_;
};

// msgpack-c++'s packer writes into anything with write(const char*, size_t).
struct StringBuffer {
  std::string bytes;
  void write(const char* p, size_t n) { bytes.append(p, n); }
};

// MessagePack's float 64 format: 0xcb, then the IEEE 754 bits big-endian.
void write_float64(StringBuffer& buffer, double value) {
  const uint64_t bits = std::bit_cast<uint64_t>(value);
  char bytes[9];
  bytes[0] = static_cast<char>(0xcb);
  for (int i = 0; i < 8; ++i) bytes[1 + i] = static_cast<char>(bits >> (56 - 8 * i));
  buffer.write(bytes, sizeof bytes);
}

class MsgpackEncoder final : public Encoder {
 public:
  explicit MsgpackEncoder(SchemaPtr schema) : schema_(std::move(schema)) {}

  Result<Array> encode(const RecordBatch& batch) override {
    if (schema_ != nullptr && !(batch.schema() == *schema_)) {
      return Status::invalid_argument("msgpack codec: the batch's schema\n" +
                                      batch.schema().to_string() + "\ndiffers from the codec's\n" +
                                      schema_->to_string());
    }
    columnar::BinaryBuilder builder(columnar::binary());
    builder.reserve(batch.num_rows());
    msgpack::packer<StringBuffer> packer(buffer_);
    const columnar::Schema& schema = batch.schema();
    for (int64_t row = 0; row < batch.num_rows(); ++row) {
      buffer_.bytes.clear();
      packer.pack_map(static_cast<uint32_t>(batch.num_columns()));
      for (int c = 0; c < batch.num_columns(); ++c) {
        const std::string& name = schema.field(c).name;
        packer.pack_str(static_cast<uint32_t>(name.size()));
        packer.pack_str_body(name.data(), static_cast<uint32_t>(name.size()));
        const Array& a = batch.column(c);
        if (a.is_null(row)) {
          packer.pack_nil();
          continue;
        }
        switch (a.type().id()) {
          case TypeId::kBool:
            if (a.bool_value(row)) {
              packer.pack_true();
            } else {
              packer.pack_false();
            }
            break;
          case TypeId::kInt32:
            packer.pack_int32(a.value<int32_t>(row));
            break;
          case TypeId::kInt64:
          case TypeId::kTimestamp:
            packer.pack_int64(a.value<int64_t>(row));
            break;
          case TypeId::kUInt64:
            packer.pack_uint64(a.value<uint64_t>(row));
            break;
          case TypeId::kFloat64:
            // Not packer.pack_double: msgpack-c packs integral doubles as integers (a consumer
            // then sees 1 where the schema says 1.0), and its range check converts 2^64 to
            // uint64_t, which is undefined (found by msgpack_decoder_fuzzer).
            write_float64(buffer_, a.value<double>(row));
            break;
          case TypeId::kUtf8: {
            const std::string_view s = a.string_view(row);
            packer.pack_str(static_cast<uint32_t>(s.size()));
            packer.pack_str_body(s.data(), static_cast<uint32_t>(s.size()));
            break;
          }
          case TypeId::kBinary: {
            const std::string_view s = a.string_view(row);
            packer.pack_bin(static_cast<uint32_t>(s.size()));
            packer.pack_bin_body(s.data(), static_cast<uint32_t>(s.size()));
            break;
          }
        }
      }
      builder.append(buffer_.bytes);
    }
    return builder.finish();
  }

 private:
  SchemaPtr schema_;
  StringBuffer buffer_;  // reused between rows
};

class MsgpackCodec final : public Codec {
 public:
  MsgpackCodec(SchemaPtr schema, MsgpackOptions options)
      : schema_(std::move(schema)), options_(options) {}
  std::string name() const override { return "msgpack"; }
  SchemaPtr schema() const override { return schema_; }
  Result<std::unique_ptr<Decoder>> make_decoder() const override {
    if (schema_ == nullptr) {
      return Status::invalid_argument("the msgpack codec needs a schema to decode messages");
    }
    if (options_.max_depth < 1) {
      return Status::invalid_argument("msgpack codec: max_depth must be at least 1, got " +
                                      std::to_string(options_.max_depth));
    }
    return std::unique_ptr<Decoder>(new MsgpackDecoder(schema_, options_));
  }
  Result<std::unique_ptr<Encoder>> make_encoder() const override {
    return std::unique_ptr<Encoder>(new MsgpackEncoder(schema_));
  }

 private:
  SchemaPtr schema_;
  MsgpackOptions options_;
};

}  // namespace

CodecPtr msgpack(SchemaPtr schema, MsgpackOptions options) {
  return std::make_shared<MsgpackCodec>(std::move(schema), options);
}
CodecPtr msgpack() { return std::make_shared<MsgpackCodec>(nullptr, MsgpackOptions{}); }

}  // namespace sabot::codec
