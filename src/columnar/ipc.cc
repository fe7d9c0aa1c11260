#include "sabot/columnar/ipc.h"

#include <cstring>
#include <limits>
#include <string>

#include "columnar/flatbuffer.h"
#include "sabot/base/check.h"
#include "sabot/columnar/bitmap.h"

namespace sabot::columnar {
namespace {

// Identifiers from the Arrow format (format/Schema.fbs and format/Message.fbs).
constexpr int16_t kMetadataV4 = 3;
constexpr int16_t kMetadataV5 = 4;
constexpr uint8_t kHeaderSchema = 1;
constexpr uint8_t kHeaderDictionaryBatch = 2;
constexpr uint8_t kHeaderRecordBatch = 3;
constexpr uint32_t kContinuation = 0xFFFFFFFFu;

enum ArrowType : uint8_t {
  kArrowInt = 2,
  kArrowFloatingPoint = 3,
  kArrowBinary = 4,
  kArrowUtf8 = 5,
  kArrowBool = 6,
  kArrowTimestamp = 10,
  kArrowLastKnownType = 26,  // LargeListView
};
constexpr int16_t kPrecisionDouble = 2;

const char* arrow_type_name(uint8_t id) {
  static const char* const kNames[] = {
      "NONE",          "Null",      "Int",           "FloatingPoint",
      "Binary",        "Utf8",      "Bool",          "Decimal",
      "Date",          "Time",      "Timestamp",     "Interval",
      "List",          "Struct",    "Union",         "FixedSizeBinary",
      "FixedSizeList", "Map",       "Duration",      "LargeBinary",
      "LargeUtf8",     "LargeList", "RunEndEncoded", "BinaryView",
      "Utf8View",      "ListView",  "LargeListView"};
  return id <= kArrowLastKnownType ? kNames[id] : "unknown";
}

// Field ids of the tables used here.
namespace message_field {
constexpr int kVersion = 0, kHeaderType = 1, kHeader = 2, kBodyLength = 3;
}
namespace schema_field {
constexpr int kEndianness = 0, kFields = 1;
}
namespace field_field {
constexpr int kName = 0, kNullable = 1, kTypeType = 2, kType = 3, kDictionary = 4, kChildren = 5;
}
namespace batch_field {
constexpr int kLength = 0, kNodes = 1, kBuffers = 2, kCompression = 3;
}

struct FieldNode {
  int64_t length;
  int64_t null_count;
};
struct BufferSpec {
  int64_t offset;
  int64_t length;
};
static_assert(sizeof(FieldNode) == 16 && sizeof(BufferSpec) == 16);

int64_t align_up(int64_t n, int64_t alignment) {
  return (n + alignment - 1) / alignment * alignment;
}

fb::TableBuilder type_table(const DataType& type, uint8_t* type_id) {
  fb::TableBuilder t;
  switch (type.id()) {
    case TypeId::kBool:
      *type_id = kArrowBool;
      break;
    case TypeId::kInt32:
    case TypeId::kInt64:
    case TypeId::kUInt64:
      *type_id = kArrowInt;
      t.add_scalar<int32_t>(0, type.id() == TypeId::kInt32 ? 32 : 64);
      t.add_scalar<uint8_t>(1, type.id() == TypeId::kUInt64 ? 0 : 1);
      break;
    case TypeId::kFloat64:
      *type_id = kArrowFloatingPoint;
      t.add_scalar<int16_t>(0, kPrecisionDouble);
      break;
    case TypeId::kUtf8:
      *type_id = kArrowUtf8;
      break;
    case TypeId::kBinary:
      *type_id = kArrowBinary;
      break;
    case TypeId::kTimestamp:
      *type_id = kArrowTimestamp;
      t.add_scalar<int16_t>(0, static_cast<int16_t>(type.unit()));  // same order as Arrow's
      break;
  }
  return t;
}

fb::TableBuilder message_table(uint8_t header_type, fb::TableBuilder header, int64_t body_length) {
  fb::TableBuilder m;
  m.add_scalar<int16_t>(message_field::kVersion, kMetadataV5);
  m.add_scalar<uint8_t>(message_field::kHeaderType, header_type);
  m.add_table(message_field::kHeader, std::move(header));
  m.add_scalar<int64_t>(message_field::kBodyLength, body_length);
  return m;
}

int64_t value_width(const DataType& type) { return type.bit_width() / 8; }

}  // namespace

// ---------------------------------------------------------------------------------------------
// Writer

IpcStreamWriter::IpcStreamWriter(ByteSink* sink, IpcWriteOptions options)
    : sink_(sink), options_(options) {
  SABOT_CHECK(sink_ != nullptr);
}

Status IpcStreamWriter::emit(const void* data, int64_t size) {
  if (size == 0) return Status::ok();
  SABOT_RETURN_IF_ERROR(sink_->write(data, size));
  position_ += size;
  return Status::ok();
}

Status IpcStreamWriter::emit_message(const std::vector<uint8_t>& metadata_fb, int64_t body_length) {
  static const uint8_t kZeros[64] = {};
  // The metadata is padded so that the body starts at the requested alignment (at least 8).
  const int64_t unpadded = position_ + 8 + static_cast<int64_t>(metadata_fb.size());
  const int64_t padding = align_up(unpadded, options_.alignment) - unpadded;
  const int64_t length = static_cast<int64_t>(metadata_fb.size()) + padding;
  if (length > std::numeric_limits<int32_t>::max()) {
    return Status::invalid_argument("IPC metadata of " + std::to_string(length) +
                                    " bytes exceeds the int32 limit");
  }
  uint32_t prefix[2] = {kContinuation, static_cast<uint32_t>(length)};
  SABOT_RETURN_IF_ERROR(emit(prefix, sizeof(prefix)));
  SABOT_RETURN_IF_ERROR(emit(metadata_fb.data(), static_cast<int64_t>(metadata_fb.size())));
  SABOT_RETURN_IF_ERROR(emit(kZeros, padding));
  int64_t body_position = 0;
  for (const Piece& p : pieces_) {
    SABOT_RETURN_IF_ERROR(emit(p.data, p.size));
    body_position += p.size;
    const int64_t pad = align_up(body_position, options_.alignment) - body_position;
    SABOT_RETURN_IF_ERROR(emit(kZeros, pad));
    body_position += pad;
  }
  SABOT_CHECK_EQ(body_position, body_length);
  return Status::ok();
}

Status IpcStreamWriter::write_schema(SchemaPtr schema) {
  if (options_.alignment != 8 && options_.alignment != 64) {
    return Status::invalid_argument("IpcWriteOptions.alignment must be 8 or 64, got " +
                                    std::to_string(options_.alignment));
  }
  if (schema == nullptr) return Status::invalid_argument("IPC write_schema: the schema is null");
  if (schema_ != nullptr) {
    return Status::invalid_argument("IPC stream: the schema has already been written");
  }
  if (closed_) return Status::invalid_argument("IPC stream: already closed");
  std::vector<fb::TableBuilder> fields;
  for (const Field& f : schema->fields()) {
    fb::TableBuilder t;
    uint8_t type_id = 0;
    fb::TableBuilder type = type_table(f.type, &type_id);
    t.add_string(field_field::kName, f.name);
    t.add_scalar<uint8_t>(field_field::kNullable, f.nullable ? 1 : 0);
    t.add_scalar<uint8_t>(field_field::kTypeType, type_id);
    t.add_table(field_field::kType, std::move(type));
    t.add_table_vector(field_field::kChildren, {});  // some readers require the vector
    fields.push_back(std::move(t));
  }
  fb::TableBuilder s;
  s.add_scalar<int16_t>(schema_field::kEndianness, 0);  // little-endian
  s.add_table_vector(schema_field::kFields, std::move(fields));
  metadata_.clear();
  message_table(kHeaderSchema, std::move(s), 0).finish_into(&metadata_);
  pieces_.clear();
  SABOT_RETURN_IF_ERROR(emit_message(metadata_, 0));
  schema_ = std::move(schema);
  return Status::ok();
}

void IpcStreamWriter::add_bitmap(const uint8_t* bits, int64_t offset, int64_t length) {
  const int64_t nbytes = bits::bytes_for(length);
  if (offset % 8 == 0) {
    pieces_.push_back(Piece{bits + offset / 8, nbytes});
    return;
  }
  if (scratch_used_ == scratch_.size()) scratch_.emplace_back();
  std::vector<uint8_t>& dst = scratch_[scratch_used_++];
  dst.assign(static_cast<size_t>(nbytes), 0);
  bits::copy(bits, offset, length, dst.data(), 0);
  pieces_.push_back(Piece{dst.data(), nbytes});
}

Status IpcStreamWriter::write(const RecordBatch& batch) {
  if (closed_) return Status::invalid_argument("IPC stream: write after close");
  if (schema_ == nullptr) SABOT_RETURN_IF_ERROR(write_schema(batch.schema_ptr()));
  if (!(batch.schema() == *schema_)) {
    return Status::invalid_argument("IPC stream: the batch's schema\n" +
                                    batch.schema().to_string() +
                                    "\ndiffers from the stream's schema\n" + schema_->to_string());
  }
  pieces_.clear();
  scratch_used_ = 0;
  std::vector<FieldNode> nodes;
  nodes.reserve(static_cast<size_t>(batch.num_columns()));
  const int64_t n = batch.num_rows();
  for (int c = 0; c < batch.num_columns(); ++c) {
    const Array& column = batch.column(c);
    if (column.null_count() > 0 && !schema_->field(c).nullable) {
      // Any Arrow reader (Sabot's included) would refuse the stream; fail where the bug is.
      return Status::invalid_argument("IPC stream: column '" + schema_->field(c).name +
                                      "' is declared not null but has " +
                                      std::to_string(column.null_count()) + " nulls");
    }
    const int64_t offset = column.offset();
    nodes.push_back(FieldNode{n, column.null_count()});
    if (column.null_count() > 0) {
      add_bitmap(column.validity_bits(), offset, n);
    } else {
      pieces_.push_back(Piece{nullptr, 0});
    }
    const DataType& type = column.type();
    if (type.id() == TypeId::kBool) {
      add_bitmap(column.bool_bits(), offset, n);
    } else if (type.is_fixed_width()) {
      const int64_t width = value_width(type);
      pieces_.push_back(Piece{column.data().values->data() + offset * width, n * width});
    } else {
      const int32_t* offsets = column.offsets();
      const int32_t first = offsets[0];
      if (first == 0) {
        pieces_.push_back(
            Piece{reinterpret_cast<const uint8_t*>(offsets), (n + 1) * int64_t{sizeof(int32_t)}});
      } else {
        // A slice: offsets must start at 0 in the stream.
        if (scratch_used_ == scratch_.size()) scratch_.emplace_back();
        std::vector<uint8_t>& dst = scratch_[scratch_used_++];
        dst.resize(static_cast<size_t>(n + 1) * sizeof(int32_t));
        auto* out = reinterpret_cast<int32_t*>(dst.data());
        for (int64_t i = 0; i <= n; ++i) out[i] = offsets[i] - first;
        pieces_.push_back(Piece{dst.data(), static_cast<int64_t>(dst.size())});
      }
      pieces_.push_back(Piece{column.raw_data() + first, int64_t{offsets[n]} - first});
    }
  }

  std::vector<BufferSpec> specs;
  specs.reserve(pieces_.size());
  int64_t body_length = 0;
  for (const Piece& p : pieces_) {
    specs.push_back(BufferSpec{body_length, p.size});
    body_length = align_up(body_length + p.size, options_.alignment);
  }
  fb::TableBuilder rb;
  rb.add_scalar<int64_t>(batch_field::kLength, n);
  rb.add_struct_vector(batch_field::kNodes, nodes.data(), static_cast<int64_t>(nodes.size()),
                       sizeof(FieldNode), 8);
  rb.add_struct_vector(batch_field::kBuffers, specs.data(), static_cast<int64_t>(specs.size()),
                       sizeof(BufferSpec), 8);
  metadata_.clear();
  message_table(kHeaderRecordBatch, std::move(rb), body_length).finish_into(&metadata_);
  return emit_message(metadata_, body_length);
}

Status IpcStreamWriter::close() {
  if (closed_) return Status::invalid_argument("IPC stream: already closed");
  if (schema_ == nullptr) {
    return Status::invalid_argument("IPC stream: close() before any schema was written");
  }
  const uint32_t eos[2] = {kContinuation, 0};
  SABOT_RETURN_IF_ERROR(emit(eos, sizeof(eos)));
  closed_ = true;
  return Status::ok();
}

// ---------------------------------------------------------------------------------------------
// Reader

struct IpcStreamReader::Message {
  int64_t start = 0;  // stream offset of the message (its prefix)
  uint8_t header_type = 0;
  fb::Table header;
  int64_t body_start = 0;
  int64_t body_length = 0;
};

namespace {

Status bad_data(std::string what, int64_t position) {
  return Status::invalid_data("Arrow IPC stream: " + what + " (message at byte " +
                              std::to_string(position) + ")");
}

Result<Field> read_field(const fb::Table& f, int index) {
  SABOT_ASSIGN_OR_RETURN(auto name, f.string(field_field::kName));
  std::string field_name = name ? std::string(*name) : std::string();
  const std::string what = "field " + std::to_string(index) + " '" + field_name + "'";
  SABOT_ASSIGN_OR_RETURN(uint8_t nullable, f.scalar<uint8_t>(field_field::kNullable, 0));
  SABOT_ASSIGN_OR_RETURN(uint8_t type_type, f.scalar<uint8_t>(field_field::kTypeType, 0));
  SABOT_ASSIGN_OR_RETURN(auto type_table, f.table(field_field::kType));
  SABOT_ASSIGN_OR_RETURN(auto dictionary, f.table(field_field::kDictionary));
  if (dictionary) {
    return Status::not_implemented(what + ": dictionary-encoded fields are not supported");
  }
  SABOT_ASSIGN_OR_RETURN(auto children, f.vector(field_field::kChildren, 4));
  fb::Table t = type_table.value_or(fb::Table());
  const bool has_table = type_table.has_value();
  DataType type;
  switch (type_type) {
    case kArrowBool:
      type = boolean();
      break;
    case kArrowUtf8:
      type = utf8();
      break;
    case kArrowBinary:
      type = binary();
      break;
    case kArrowInt: {
      int32_t bit_width = 0;
      uint8_t is_signed = 0;
      if (has_table) {
        SABOT_ASSIGN_OR_RETURN(bit_width, t.scalar<int32_t>(0, 0));
        SABOT_ASSIGN_OR_RETURN(is_signed, t.scalar<uint8_t>(1, 0));
      }
      if (bit_width == 32 && is_signed) {
        type = int32();
      } else if (bit_width == 64 && is_signed) {
        type = int64();
      } else if (bit_width == 64 && !is_signed) {
        type = uint64();
      } else {
        return Status::not_implemented(what + ": Int(bitWidth=" + std::to_string(bit_width) +
                                       ", signed=" + (is_signed ? "true" : "false") +
                                       ") is not supported (int32, int64, uint64 are)");
      }
      break;
    }
    case kArrowFloatingPoint: {
      int16_t precision = 0;
      if (has_table) {
        SABOT_ASSIGN_OR_RETURN(precision, t.scalar<int16_t>(0, 0));
      }
      if (precision != kPrecisionDouble) {
        return Status::not_implemented(what + ": FloatingPoint precision " +
                                       std::to_string(precision) +
                                       " is not supported (only DOUBLE)");
      }
      type = float64();
      break;
    }
    case kArrowTimestamp: {
      int16_t unit = 0;
      std::optional<std::string_view> timezone;
      if (has_table) {
        SABOT_ASSIGN_OR_RETURN(unit, t.scalar<int16_t>(0, 0));
        SABOT_ASSIGN_OR_RETURN(timezone, t.string(1));
      }
      if (unit < 0 || unit > 3) {
        return Status::invalid_data(what + ": unknown timestamp unit " + std::to_string(unit));
      }
      if (timezone && !timezone->empty()) {
        return Status::not_implemented(what + ": timestamps with a time zone ('" +
                                       std::string(*timezone) + "') are not supported");
      }
      type = timestamp(static_cast<TimeUnit>(unit));
      break;
    }
    default:
      if (type_type >= 1 && type_type <= kArrowLastKnownType) {
        return Status::not_implemented(what + ": Arrow type " + arrow_type_name(type_type) +
                                       " is not supported");
      }
      return Status::invalid_data(what + ": unknown Arrow type id " + std::to_string(type_type));
  }
  if (children && children->count != 0) {
    return Status::invalid_data(what + " of type " + type.to_string() + " has " +
                                std::to_string(children->count) + " children, expected none");
  }
  return Field{std::move(field_name), type, nullable != 0};
}

Result<SchemaPtr> read_schema(const fb::Table& s) {
  SABOT_ASSIGN_OR_RETURN(int16_t endianness, s.scalar<int16_t>(schema_field::kEndianness, 0));
  if (endianness != 0) {
    return Status::not_implemented("big-endian Arrow IPC streams are not supported");
  }
  SABOT_ASSIGN_OR_RETURN(auto fields_vector, s.vector(schema_field::kFields, 4));
  std::vector<Field> fields;
  if (fields_vector) {
    for (uint32_t i = 0; i < fields_vector->count; ++i) {
      SABOT_ASSIGN_OR_RETURN(fb::Table f, s.table_at(*fields_vector, i));
      SABOT_ASSIGN_OR_RETURN(Field field, read_field(f, static_cast<int>(i)));
      fields.push_back(std::move(field));
    }
  }
  return Schema::make(std::move(fields));
}

// True when no byte has its high bit set; vectorizes.
bool is_ascii(const uint8_t* data, int64_t size) {
  uint8_t any = 0;
  for (int64_t i = 0; i < size; ++i) any |= data[i];
  return (any & 0x80) == 0;
}

// Checks offsets[0..n] are non-decreasing, start at >= 0 and end within `data_size`.
bool offsets_valid(const int32_t* offsets, int64_t n, int64_t data_size) {
  if (offsets[0] < 0 || offsets[n] > data_size) return false;
  bool decreasing = false;
  for (int64_t i = 0; i < n; ++i) decreasing |= offsets[i + 1] < offsets[i];
  return !decreasing;
}

// Whole-range UTF-8 check plus no string boundary inside a multi-byte character: together they
// make every string valid, at the cost of one pass over the bytes.
bool utf8_valid(const int32_t* offsets, int64_t n, const uint8_t* data) {
  const int64_t begin = offsets[0];
  const int64_t size = int64_t{offsets[n]} - begin;
  if (is_ascii(data + begin, size)) return true;
  if (!is_valid_utf8(std::string_view(reinterpret_cast<const char*>(data) + begin,
                                      static_cast<size_t>(size)))) {
    return false;
  }
  for (int64_t i = 0; i <= n; ++i) {
    const int64_t o = offsets[i];
    if (o < offsets[n] && (data[o] & 0xC0) == 0x80) return false;
  }
  return true;
}

}  // namespace

Result<IpcStreamReader> IpcStreamReader::open(BufferPtr stream, IpcReadOptions options) {
  if (stream == nullptr) return Status::invalid_argument("IpcStreamReader::open: null buffer");
  IpcStreamReader reader(std::move(stream), options);
  SABOT_ASSIGN_OR_RETURN(std::optional<Message> first, reader.next_message());
  if (!first) {
    return Status::invalid_data(
        "Arrow IPC stream: the stream ends before its schema message (at byte " +
        std::to_string(reader.position_) + ")");
  }
  if (first->header_type != kHeaderSchema) {
    return bad_data("the first message is not a Schema (header type " +
                        std::to_string(first->header_type) + ")",
                    first->start);
  }
  auto schema = read_schema(first->header);
  if (!schema.is_ok()) {
    return schema.status().with_context("reading the Arrow IPC schema message at byte " +
                                        std::to_string(first->start));
  }
  reader.schema_ = std::move(schema).value();
  return reader;
}

Result<std::optional<IpcStreamReader::Message>> IpcStreamReader::next_message() {
  if (done_) return std::optional<Message>();
  const uint8_t* data = stream_->data();
  const int64_t size = stream_->size();
  const int64_t start = position_;
  if (start == size) {  // a stream may end at a message boundary without the marker
    done_ = true;
    return std::optional<Message>();
  }
  if (start + 4 > size) return bad_data("truncated message prefix", start);
  uint32_t first_word;
  std::memcpy(&first_word, data + start, 4);
  int64_t prefix = 4;
  int32_t metadata_length;
  if (first_word == kContinuation) {
    if (start + 8 > size) return bad_data("truncated message length", start);
    std::memcpy(&metadata_length, data + start + 4, 4);
    prefix = 8;
  } else {
    metadata_length = static_cast<int32_t>(first_word);  // legacy framing (before Arrow 0.15)
  }
  if (metadata_length == 0) {
    done_ = true;
    position_ = start + prefix;
    return std::optional<Message>();
  }
  if (metadata_length < 0) {
    return bad_data("negative metadata length " + std::to_string(metadata_length), start);
  }
  const int64_t metadata_start = start + prefix;
  if (metadata_length > size - metadata_start) {
    return bad_data("metadata of " + std::to_string(metadata_length) +
                        " bytes runs past the end "
                        "of the " +
                        std::to_string(size) + "-byte stream",
                    start);
  }
  Message m;
  m.start = start;
  auto parsed = [&]() -> Status {
    SABOT_ASSIGN_OR_RETURN(fb::Table root, fb::Table::root(data + metadata_start,
                                                           static_cast<size_t>(metadata_length)));
    SABOT_ASSIGN_OR_RETURN(int16_t version, root.scalar<int16_t>(message_field::kVersion, 0));
    if (version < kMetadataV4 || version > kMetadataV5) {
      return Status::invalid_data("unsupported metadata version V" + std::to_string(version + 1) +
                                  " (V4 and V5 are supported)");
    }
    SABOT_ASSIGN_OR_RETURN(m.header_type, root.scalar<uint8_t>(message_field::kHeaderType, 0));
    SABOT_ASSIGN_OR_RETURN(auto header, root.table(message_field::kHeader));
    if (!header) return Status::invalid_data("the message has no header");
    m.header = *header;
    SABOT_ASSIGN_OR_RETURN(m.body_length, root.scalar<int64_t>(message_field::kBodyLength, 0));
    return Status::ok();
  }();
  if (!parsed.is_ok()) {
    return parsed.with_context("reading the Arrow IPC message at byte " + std::to_string(start) +
                               " (metadata starts at byte " + std::to_string(metadata_start) + ")");
  }
  m.body_start = metadata_start + metadata_length;
  if (m.body_length < 0 || m.body_length > size - m.body_start) {
    return bad_data("body of " + std::to_string(m.body_length) + " bytes at byte " +
                        std::to_string(m.body_start) + " runs past the end of the " +
                        std::to_string(size) + "-byte stream",
                    start);
  }
  position_ = m.body_start + m.body_length;
  return std::optional<Message>(m);
}

Result<std::optional<RecordBatch>> IpcStreamReader::next() {
  while (true) {
    SABOT_ASSIGN_OR_RETURN(std::optional<Message> m, next_message());
    if (!m) return std::optional<RecordBatch>();
    switch (m->header_type) {
      case kHeaderRecordBatch: {
        auto batch = read_batch(*m);
        if (!batch.is_ok()) {
          return batch.status().with_context("reading the Arrow IPC record batch at byte " +
                                             std::to_string(m->start));
        }
        return std::optional<RecordBatch>(std::move(batch).value());
      }
      case kHeaderSchema:
        return bad_data("a second Schema message", m->start);
      case kHeaderDictionaryBatch:
        return Status::not_implemented(
            "Arrow IPC stream: dictionary batches are not supported "
            "(message at byte " +
            std::to_string(m->start) + ")");
      default:
        return bad_data("unknown message header type " + std::to_string(m->header_type), m->start);
    }
  }
}

Result<RecordBatch> IpcStreamReader::read_batch(const Message& m) {
  const fb::Table& rb = m.header;
  SABOT_ASSIGN_OR_RETURN(int64_t length, rb.scalar<int64_t>(batch_field::kLength, 0));
  SABOT_ASSIGN_OR_RETURN(auto compression, rb.table(batch_field::kCompression));
  if (compression) {
    return Status::not_implemented("compressed record batch bodies are not supported");
  }
  SABOT_ASSIGN_OR_RETURN(auto nodes, rb.vector(batch_field::kNodes, sizeof(FieldNode)));
  SABOT_ASSIGN_OR_RETURN(auto buffers, rb.vector(batch_field::kBuffers, sizeof(BufferSpec)));
  const Schema& schema = *schema_;
  int64_t expected_buffers = 0;
  for (const Field& f : schema.fields()) expected_buffers += f.type.num_buffers();
  const uint32_t node_count = nodes ? nodes->count : 0;
  const uint32_t buffer_count = buffers ? buffers->count : 0;
  if (length < 0 || length >= std::numeric_limits<int32_t>::max()) {
    return Status::invalid_data("invalid batch length " + std::to_string(length));
  }
  if (node_count != static_cast<uint32_t>(schema.num_fields())) {
    return Status::invalid_data("the batch has " + std::to_string(node_count) +
                                " field nodes, the schema " + std::to_string(schema.num_fields()) +
                                " fields");
  }
  if (buffer_count != expected_buffers) {
    return Status::invalid_data("the batch has " + std::to_string(buffer_count) +
                                " buffers, the schema needs " + std::to_string(expected_buffers));
  }

  const uint8_t* stream = stream_->data();
  uint32_t next_buffer = 0;
  // The next buffer of the body, zero-copy when its address suits `alignment`.
  auto take_buffer = [&](int64_t alignment, int64_t* size_out) -> Result<BufferPtr> {
    BufferSpec spec;
    std::memcpy(&spec, rb.element(*buffers, next_buffer, sizeof(BufferSpec)), sizeof(spec));
    const uint32_t index = next_buffer++;
    if (spec.offset < 0 || spec.length < 0 || spec.offset > m.body_length ||
        spec.length > m.body_length - spec.offset) {
      return Status::invalid_data(
          "buffer " + std::to_string(index) + " [offset " + std::to_string(spec.offset) +
          ", length " + std::to_string(spec.length) + "] lies outside the " +
          std::to_string(m.body_length) + "-byte body at byte " + std::to_string(m.body_start));
    }
    *size_out = spec.length;
    const int64_t at = m.body_start + spec.offset;
    if (reinterpret_cast<uintptr_t>(stream + at) % static_cast<uintptr_t>(alignment) == 0) {
      return Buffer::slice(stream_, at, spec.length);
    }
    return Buffer::copy_of(stream + at, spec.length);
  };

  std::vector<Array> columns;
  columns.reserve(static_cast<size_t>(schema.num_fields()));
  for (int i = 0; i < schema.num_fields(); ++i) {
    const Field& field = schema.field(i);
    const std::string what = "column '" + field.name + "' (" + field.type.to_string() + ")";
    FieldNode node;
    std::memcpy(&node, rb.element(*nodes, static_cast<uint32_t>(i), sizeof(FieldNode)),
                sizeof(node));
    if (node.length != length) {
      return Status::invalid_data(what + ": field node length " + std::to_string(node.length) +
                                  " differs from the batch length " + std::to_string(length));
    }
    if (node.null_count < 0 || node.null_count > length) {
      return Status::invalid_data(what + ": invalid null count " + std::to_string(node.null_count));
    }
    if (node.null_count > 0 && !field.nullable) {
      return Status::invalid_data(what + " is not nullable but has " +
                                  std::to_string(node.null_count) + " nulls");
    }
    auto data = std::make_shared<ArrayData>();
    data->type = field.type;
    data->length = length;
    data->null_count = node.null_count;
    int64_t size = 0;
    SABOT_ASSIGN_OR_RETURN(BufferPtr validity, take_buffer(1, &size));
    if (node.null_count > 0) {
      if (size < bits::bytes_for(length)) {
        return Status::invalid_data(what + ": validity bitmap of " + std::to_string(size) +
                                    " bytes is too short for " + std::to_string(length) + " rows");
      }
      const int64_t nulls = length - bits::count_set(validity->data(), 0, length);
      if (nulls != node.null_count) {
        return Status::invalid_data(what + ": the field node says " +
                                    std::to_string(node.null_count) +
                                    " nulls, the validity bitmap has " + std::to_string(nulls));
      }
      data->validity = std::move(validity);
    }
    const DataType& type = field.type;
    if (type.id() == TypeId::kBool || type.is_fixed_width()) {
      const bool is_bool = type.id() == TypeId::kBool;
      const int64_t width = is_bool ? 1 : value_width(type);
      SABOT_ASSIGN_OR_RETURN(data->values, take_buffer(width, &size));
      const int64_t need = is_bool ? bits::bytes_for(length) : length * width;
      if (size < need) {
        return Status::invalid_data(what + ": values buffer of " + std::to_string(size) +
                                    " bytes is too short for " + std::to_string(length) +
                                    " rows (needs " + std::to_string(need) + ")");
      }
    } else {
      SABOT_ASSIGN_OR_RETURN(data->values, take_buffer(4, &size));
      if (length == 0 && size == 0) {
        data->values = Buffer::allocate(4);  // a single zero offset
      } else if (size < (length + 1) * 4) {
        return Status::invalid_data(what + ": offsets buffer of " + std::to_string(size) +
                                    " bytes is too short for " + std::to_string(length) + " rows");
      }
      int64_t data_size = 0;
      SABOT_ASSIGN_OR_RETURN(data->data, take_buffer(1, &data_size));
      const int32_t* offsets = data->values->data_as<int32_t>();
      if (!offsets_valid(offsets, length, data_size)) {
        return Status::invalid_data(what + ": offsets are not non-decreasing within the " +
                                    std::to_string(data_size) + "-byte data buffer");
      }
      if (type.id() == TypeId::kUtf8 && options_.validate_utf8 &&
          !utf8_valid(offsets, length, data->data->data())) {
        return Status::invalid_data(what + ": invalid UTF-8");
      }
    }
    columns.emplace_back(std::move(data));
  }
  return RecordBatch::make_unchecked(schema_, std::move(columns), length);
}

// ---------------------------------------------------------------------------------------------
// Convenience

Result<std::vector<uint8_t>> write_ipc_stream(SchemaPtr schema,
                                              const std::vector<RecordBatch>& batches,
                                              IpcWriteOptions options) {
  std::vector<uint8_t> out;
  VectorSink sink(&out);
  IpcStreamWriter writer(&sink, options);
  SABOT_RETURN_IF_ERROR(writer.write_schema(std::move(schema)));
  for (const RecordBatch& b : batches) SABOT_RETURN_IF_ERROR(writer.write(b));
  SABOT_RETURN_IF_ERROR(writer.close());
  return out;
}

Result<std::vector<uint8_t>> write_ipc_stream(const std::vector<RecordBatch>& batches,
                                              IpcWriteOptions options) {
  if (batches.empty()) {
    return Status::invalid_argument("write_ipc_stream: no batches and no schema given");
  }
  return write_ipc_stream(batches.front().schema_ptr(), batches, options);
}

Result<std::pair<SchemaPtr, std::vector<RecordBatch>>> read_ipc_stream(BufferPtr stream,
                                                                       IpcReadOptions options) {
  SABOT_ASSIGN_OR_RETURN(IpcStreamReader reader, IpcStreamReader::open(std::move(stream), options));
  std::vector<RecordBatch> batches;
  while (true) {
    SABOT_ASSIGN_OR_RETURN(std::optional<RecordBatch> batch, reader.next());
    if (!batch) break;
    batches.push_back(std::move(*batch));
  }
  return std::make_pair(reader.schema(), std::move(batches));
}

}  // namespace sabot::columnar
