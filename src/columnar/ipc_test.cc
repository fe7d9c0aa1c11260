#include "sabot/columnar/ipc.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "columnar/flatbuffer.h"
#include "columnar/interop_test_util.h"
#include "sabot/columnar/builder.h"

namespace sabot::columnar {
namespace {

using testing::all_types;
using testing::expect_same_batch;
using testing::random_array;
using testing::random_batch;

BufferPtr to_buffer(const std::vector<uint8_t>& bytes) {
  return Buffer::copy_of(bytes.data(), static_cast<int64_t>(bytes.size()));
}

std::vector<RecordBatch> round_trip(const std::vector<RecordBatch>& batches,
                                    IpcWriteOptions options = {}) {
  auto bytes = write_ipc_stream(batches, options);
  EXPECT_TRUE(bytes.is_ok()) << bytes.status().to_string();
  if (!bytes.is_ok()) return {};
  auto read = read_ipc_stream(to_buffer(*bytes));
  EXPECT_TRUE(read.is_ok()) << read.status().to_string();
  if (!read.is_ok()) return {};
  EXPECT_EQ(*read->first, batches.front().schema());
  return read->second;
}

// ---------------------------------------------------------------------------------------------
// FlatBuffers codec

TEST(FlatBuffer, ScalarsStringsTablesAndVectorsRoundTrip) {
  fb::TableBuilder child;
  child.add_scalar<int32_t>(0, -7);
  fb::TableBuilder root;
  root.add_scalar<int16_t>(0, 4);
  root.add_scalar<uint8_t>(1, 3);
  root.add_table(2, child);
  root.add_scalar<int64_t>(3, int64_t{1} << 40);
  root.add_string(5, "hello");
  std::vector<fb::TableBuilder> list(3);
  for (int i = 0; i < 3; ++i) list[static_cast<size_t>(i)].add_scalar<int64_t>(1, i * 10);
  root.add_table_vector(6, list);
  int64_t structs[4] = {1, 2, 3, 4};
  root.add_struct_vector(7, structs, 2, 16, 8);
  std::vector<uint8_t> bytes = root.finish();

  auto t = fb::Table::root(bytes.data(), bytes.size());
  ASSERT_TRUE(t.is_ok()) << t.status().to_string();
  EXPECT_EQ(*t->scalar<int16_t>(0, 0), 4);
  EXPECT_EQ(*t->scalar<uint8_t>(1, 0), 3);
  EXPECT_EQ(*t->scalar<int64_t>(3, 0), int64_t{1} << 40);
  EXPECT_EQ(*t->scalar<int32_t>(4, 99), 99);   // absent: the default
  EXPECT_EQ(*t->scalar<int32_t>(40, 98), 98);  // beyond the vtable: the default
  auto c = t->table(2);
  ASSERT_TRUE(c.is_ok() && c->has_value());
  EXPECT_EQ(*(*c)->scalar<int32_t>(0, 0), -7);
  EXPECT_EQ(**t->string(5), "hello");
  auto v = t->vector(6, 4);
  ASSERT_TRUE(v.is_ok() && v->has_value());
  ASSERT_EQ((*v)->count, 3u);
  for (uint32_t i = 0; i < 3; ++i) {
    auto e = t->table_at(**v, i);
    ASSERT_TRUE(e.is_ok());
    EXPECT_EQ(*e->scalar<int64_t>(1, -1), int64_t{i} * 10);
    EXPECT_EQ(*e->scalar<int64_t>(0, -1), -1);
  }
  auto s = t->vector(7, 16);
  ASSERT_TRUE(s.is_ok() && s->has_value());
  ASSERT_EQ((*s)->count, 2u);
  // Structs of 8-byte fields are 8-byte aligned, as FlatBuffers requires.
  EXPECT_EQ((*s)->pos % 8, 0u);
  int64_t third;
  std::memcpy(&third, t->element(**s, 1, 16), 8);
  EXPECT_EQ(third, 3);
}

TEST(FlatBuffer, ReaderRefusesOffsetsBeyondTheEnd) {
  fb::TableBuilder root;
  root.add_string(0, "some text");
  std::vector<uint8_t> bytes = root.finish();
  // Every truncation must be refused or read within bounds, never crash.
  for (size_t n = 0; n < bytes.size(); ++n) {
    std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + static_cast<long>(n));
    auto t = fb::Table::root(cut.data(), cut.size());
    if (!t.is_ok()) {
      EXPECT_EQ(t.status().code(), StatusCode::kInvalidData);
      EXPECT_NE(t.status().message().find("at byte"), std::string::npos);
      continue;
    }
    auto s = t->string(0);
    if (s.is_ok() && s->has_value()) {
      EXPECT_LE((*s)->size(), 9u);
    }
  }
  std::vector<uint8_t> bad = bytes;
  uint32_t huge = 0x7FFFFFF0;
  std::memcpy(bad.data(), &huge, 4);
  EXPECT_FALSE(fb::Table::root(bad.data(), bad.size()).is_ok());
}

// ---------------------------------------------------------------------------------------------
// Round trips

TEST(IpcStream, RoundTripsEveryTypeWithNulls) {
  std::mt19937_64 rng(11);
  RecordBatch batch = random_batch(1000, 0.3, rng);
  for (int c = 0; c < batch.num_columns(); ++c) ASSERT_GT(batch.column(c).null_count(), 0);
  auto back = round_trip({batch});
  ASSERT_EQ(back.size(), 1u);
  expect_same_batch(batch, back[0], "batch");
}

TEST(IpcStream, RoundTripsNullabilityAndFieldNames) {
  RecordBatch batch =
      RecordBatch::make(
          schema({field("id", int64(), false), field("name with spaces", utf8(), true)}),
          {int64_array({1, 2}), utf8_array({"a", std::nullopt})})
          .value();
  auto back = round_trip({batch});
  ASSERT_EQ(back.size(), 1u);
  EXPECT_FALSE(back[0].schema().field(0).nullable);
  EXPECT_TRUE(back[0].schema().field(1).nullable);
  EXPECT_EQ(back[0].schema().field(1).name, "name with spaces");
  expect_same_batch(batch, back[0], "batch");
}

TEST(IpcStream, RoundTripsEmptyBatchesAndStreamsWithoutBatches) {
  std::mt19937_64 rng(12);
  RecordBatch full = random_batch(10, 0.5, rng);
  RecordBatch empty = RecordBatch::make_empty(full.schema_ptr());
  auto back = round_trip({empty, full, full.slice(3, 0)});
  ASSERT_EQ(back.size(), 3u);
  EXPECT_EQ(back[0].num_rows(), 0);
  expect_same_batch(full, back[1], "full");
  EXPECT_EQ(back[2].num_rows(), 0);

  auto bytes = write_ipc_stream(full.schema_ptr(), {});
  ASSERT_TRUE(bytes.is_ok());
  auto read = read_ipc_stream(to_buffer(*bytes));
  ASSERT_TRUE(read.is_ok()) << read.status().to_string();
  EXPECT_EQ(*read->first, full.schema());
  EXPECT_TRUE(read->second.empty());
}

TEST(IpcStream, RoundTripsSeveralBatchesInOrder) {
  std::mt19937_64 rng(13);
  std::vector<RecordBatch> batches;
  RecordBatch first = random_batch(100, 0.1, rng);
  batches.push_back(first);
  for (int i = 0; i < 5; ++i) {
    RecordBatch b = random_batch(static_cast<int64_t>(rng() % 200), 0.2, rng);
    batches.push_back(RecordBatch::make(first.schema_ptr(), b.columns()).value());
  }
  auto back = round_trip(batches);
  ASSERT_EQ(back.size(), batches.size());
  for (size_t i = 0; i < batches.size(); ++i) {
    expect_same_batch(batches[i], back[i], "batch " + std::to_string(i));
  }
}

TEST(IpcStream, WritesSlicesAsTheirLogicalContents) {
  std::mt19937_64 rng(14);
  RecordBatch batch = random_batch(500, 0.4, rng);
  // Offsets that are and are not multiples of 8, so bitmaps must be shifted.
  for (int64_t offset : {1, 3, 8, 13, 64, 250}) {
    RecordBatch slice = batch.slice(offset, 200);
    auto back = round_trip({slice});
    ASSERT_EQ(back.size(), 1u);
    expect_same_batch(slice, back[0], "offset " + std::to_string(offset));
    // Strings were re-based: the stream's first offset is 0.
    for (int c = 0; c < back[0].num_columns(); ++c) {
      if (back[0].column(c).type().is_var_length()) {
        EXPECT_EQ(back[0].column(c).offsets()[0], 0);
      }
    }
  }
}

TEST(IpcStream, RandomizedRoundTripsMatchTheSource) {
  std::mt19937_64 rng(15);
  for (int iter = 0; iter < 60; ++iter) {
    const int64_t rows = static_cast<int64_t>(rng() % 400);
    const double null_probability = std::uniform_real_distribution<double>(0, 1)(rng);
    RecordBatch batch = random_batch(rows, null_probability, rng);
    const int64_t offset = static_cast<int64_t>(rng() % (rows + 1));
    const int64_t length = static_cast<int64_t>(rng() % (rows - offset + 1));
    RecordBatch slice = batch.slice(offset, length);
    IpcWriteOptions options;
    options.alignment = (iter % 2 == 0) ? 64 : 8;
    auto back = round_trip({slice, batch}, options);
    ASSERT_EQ(back.size(), 2u);
    expect_same_batch(slice, back[0], "slice, iteration " + std::to_string(iter));
    expect_same_batch(batch, back[1], "batch, iteration " + std::to_string(iter));
    if (HasFatalFailure()) return;
  }
}

TEST(IpcStream, BodyBuffersAreAlignedAndReadWithoutCopying) {
  std::mt19937_64 rng(16);
  RecordBatch batch = random_batch(300, 0.2, rng);
  auto bytes = write_ipc_stream({batch});
  ASSERT_TRUE(bytes.is_ok());
  BufferPtr stream = to_buffer(*bytes);  // 64-byte aligned
  auto reader = IpcStreamReader::open(stream);
  ASSERT_TRUE(reader.is_ok());
  auto next = reader->next();
  ASSERT_TRUE(next.is_ok() && next->has_value());
  const uint8_t* begin = stream->data();
  const uint8_t* end = begin + stream->size();
  for (const Array& column : (*next)->columns()) {
    const uint8_t* values = column.data().values->data();
    EXPECT_TRUE(values >= begin && values < end) << column.type() << " was copied";
    EXPECT_EQ(reinterpret_cast<uintptr_t>(values) % 64, 0u) << column.type();
  }
}

TEST(IpcStream, ReadsStreamsAtMisalignedAddressesByCopying) {
  std::mt19937_64 rng(17);
  RecordBatch batch = random_batch(100, 0.3, rng);
  auto bytes = write_ipc_stream({batch});
  ASSERT_TRUE(bytes.is_ok());
  std::vector<uint8_t> shifted(bytes->size() + 1);
  std::memcpy(shifted.data() + 1, bytes->data(), bytes->size());
  BufferPtr whole = to_buffer(shifted);
  auto read = read_ipc_stream(Buffer::slice(whole, 1, static_cast<int64_t>(bytes->size())));
  ASSERT_TRUE(read.is_ok()) << read.status().to_string();
  ASSERT_EQ(read->second.size(), 1u);
  expect_same_batch(batch, read->second[0], "misaligned");
  for (const Array& column : read->second[0].columns()) {
    if (column.type().bit_width() == 64) {
      EXPECT_EQ(reinterpret_cast<uintptr_t>(column.data().values->data()) % 8, 0u);
    }
  }
}

// Rewrites a stream into the pre-0.15 framing: a 4-byte length instead of marker + length.
std::vector<uint8_t> to_legacy_framing(const std::vector<uint8_t>& stream) {
  std::vector<uint8_t> out;
  size_t pos = 0;
  while (pos + 8 <= stream.size()) {
    int32_t length;
    std::memcpy(&length, stream.data() + pos + 4, 4);
    out.insert(out.end(), stream.begin() + static_cast<long>(pos) + 4,
               stream.begin() + static_cast<long>(pos) + 8);
    pos += 8;
    if (length == 0) break;
    auto root = fb::Table::root(stream.data() + pos, static_cast<size_t>(length));
    int64_t body = *root->scalar<int64_t>(3, 0);
    out.insert(out.end(), stream.begin() + static_cast<long>(pos),
               stream.begin() + static_cast<long>(pos + static_cast<size_t>(length + body)));
    pos += static_cast<size_t>(length + body);
  }
  return out;
}

TEST(IpcStream, AcceptsLegacyFramingWithoutContinuationMarker) {
  std::mt19937_64 rng(18);
  RecordBatch batch = random_batch(70, 0.3, rng);
  auto bytes = write_ipc_stream({batch, batch.slice(5, 20)});
  ASSERT_TRUE(bytes.is_ok());
  auto read = read_ipc_stream(to_buffer(to_legacy_framing(*bytes)));
  ASSERT_TRUE(read.is_ok()) << read.status().to_string();
  ASSERT_EQ(read->second.size(), 2u);
  expect_same_batch(batch, read->second[0], "legacy 0");
  expect_same_batch(batch.slice(5, 20), read->second[1], "legacy 1");
}

TEST(IpcStream, AcceptsAStreamEndingWithoutTheEndMarker) {
  RecordBatch batch =
      RecordBatch::make(schema({field("x", int32())}), {int32_array({1, std::nullopt})}).value();
  auto bytes = write_ipc_stream({batch});
  ASSERT_TRUE(bytes.is_ok());
  bytes->resize(bytes->size() - 8);
  auto read = read_ipc_stream(to_buffer(*bytes));
  ASSERT_TRUE(read.is_ok()) << read.status().to_string();
  ASSERT_EQ(read->second.size(), 1u);
  expect_same_batch(batch, read->second[0], "no end marker");
}

TEST(IpcStream, StreamEndsWithTheEndOfStreamMarker) {
  RecordBatch batch = RecordBatch::make(schema({field("x", int64())}), {int64_array({7})}).value();
  auto bytes = write_ipc_stream({batch});
  ASSERT_TRUE(bytes.is_ok());
  ASSERT_GE(bytes->size(), 8u);
  const uint8_t kEnd[8] = {0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0};
  EXPECT_EQ(0, std::memcmp(bytes->data() + bytes->size() - 8, kEnd, 8));
  EXPECT_EQ(0, std::memcmp(bytes->data(), kEnd, 4));  // the continuation marker
}

// ---------------------------------------------------------------------------------------------
// Writer misuse

TEST(IpcStreamWriter, RefusesBatchesOfAnotherSchemaAndWritesAfterClose) {
  std::vector<uint8_t> out;
  VectorSink sink(&out);
  IpcStreamWriter writer(&sink);
  RecordBatch a = RecordBatch::make(schema({field("x", int64())}), {int64_array({1})}).value();
  RecordBatch b = RecordBatch::make(schema({field("y", int64())}), {int64_array({1})}).value();
  ASSERT_TRUE(writer.write(a).is_ok());
  Status s = writer.write(b);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("y"), std::string::npos);
  EXPECT_FALSE(writer.write_schema(a.schema_ptr()).is_ok());
  ASSERT_TRUE(writer.close().is_ok());
  EXPECT_FALSE(writer.write(a).is_ok());
  EXPECT_FALSE(writer.close().is_ok());
  EXPECT_EQ(writer.bytes_written(), static_cast<int64_t>(out.size()));
  EXPECT_FALSE(write_ipc_stream(std::vector<RecordBatch>{}).is_ok());
}

TEST(IpcStreamWriter, RefusesNullsInANonNullableColumn) {
  RecordBatch batch = RecordBatch::make_unchecked(schema({field("id", int64(), false)}),
                                                  {int64_array({1, std::nullopt})}, 2);
  auto bytes = write_ipc_stream({batch});
  ASSERT_FALSE(bytes.is_ok());
  EXPECT_NE(bytes.status().message().find("'id'"), std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// Hostile input, crafted with the FlatBuffers builder

fb::TableBuilder int_type(int bits, bool is_signed) {
  fb::TableBuilder t;
  t.add_scalar<int32_t>(0, bits);
  t.add_scalar<uint8_t>(1, is_signed ? 1 : 0);
  return t;
}

fb::TableBuilder field_table(std::string name, uint8_t type_id, fb::TableBuilder type) {
  fb::TableBuilder f;
  f.add_string(0, name);
  f.add_scalar<uint8_t>(1, 1);
  f.add_scalar<uint8_t>(2, type_id);
  f.add_table(3, std::move(type));
  return f;
}

// Appends one framed message (metadata padded to 8) with `body` bytes.
void append_message(std::vector<uint8_t>* out, uint8_t header_type, fb::TableBuilder header,
                    const std::vector<uint8_t>& body = {}, int16_t version = 4) {
  fb::TableBuilder m;
  m.add_scalar<int16_t>(0, version);
  m.add_scalar<uint8_t>(1, header_type);
  m.add_table(2, std::move(header));
  m.add_scalar<int64_t>(3, static_cast<int64_t>(body.size()));
  std::vector<uint8_t> meta = m.finish();
  while (meta.size() % 8 != 0) meta.push_back(0);
  uint32_t prefix[2] = {0xFFFFFFFFu, static_cast<uint32_t>(meta.size())};
  const auto* p = reinterpret_cast<const uint8_t*>(prefix);
  out->insert(out->end(), p, p + 8);
  out->insert(out->end(), meta.begin(), meta.end());
  out->insert(out->end(), body.begin(), body.end());
}

std::vector<uint8_t> schema_stream(fb::TableBuilder field) {
  std::vector<fb::TableBuilder> fields;
  fields.push_back(std::move(field));
  fb::TableBuilder s;
  s.add_table_vector(1, std::move(fields));
  std::vector<uint8_t> out;
  append_message(&out, 1, std::move(s));
  return out;
}

// A record batch header for one int64 column of `length` rows with the given node and buffers.
fb::TableBuilder batch_header(int64_t length, std::vector<int64_t> node,
                              std::vector<int64_t> buffers) {
  fb::TableBuilder rb;
  rb.add_scalar<int64_t>(0, length);
  rb.add_struct_vector(1, node.data(), 1, 16, 8);
  rb.add_struct_vector(2, buffers.data(), static_cast<int64_t>(buffers.size() / 2), 16, 8);
  return rb;
}

Status read_all(const std::vector<uint8_t>& bytes) {
  auto read = read_ipc_stream(to_buffer(bytes));
  return read.is_ok() ? Status::ok() : read.status();
}

void expect_refused(const std::vector<uint8_t>& bytes, StatusCode code, const std::string& needle) {
  Status s = read_all(bytes);
  ASSERT_FALSE(s.is_ok()) << "expected an error mentioning " << needle;
  EXPECT_EQ(s.code(), code) << s.to_string();
  EXPECT_NE(s.to_string().find(needle), std::string::npos) << s.to_string();
}

TEST(IpcStreamReader, RefusesUnknownAndUnsupportedTypesNamingTheField) {
  expect_refused(schema_stream(field_table("f", 99, fb::TableBuilder())), StatusCode::kInvalidData,
                 "unknown Arrow type id 99");
  expect_refused(schema_stream(field_table("lst", 12, fb::TableBuilder())),
                 StatusCode::kNotImplemented, "'lst': Arrow type List");
  expect_refused(schema_stream(field_table("small", 2, int_type(16, true))),
                 StatusCode::kNotImplemented, "bitWidth=16");
  fb::TableBuilder ts;
  ts.add_scalar<int16_t>(0, 1);
  ts.add_string(1, "UTC");
  expect_refused(schema_stream(field_table("when", 10, std::move(ts))), StatusCode::kNotImplemented,
                 "'UTC'");
  fb::TableBuilder half;
  half.add_scalar<int16_t>(0, 0);
  expect_refused(schema_stream(field_table("h", 3, std::move(half))), StatusCode::kNotImplemented,
                 "precision");
}

TEST(IpcStreamReader, RefusesCompressedBodies) {
  std::vector<uint8_t> bytes = schema_stream(field_table("x", 2, int_type(64, true)));
  fb::TableBuilder rb = batch_header(1, {1, 0}, {0, 0, 0, 8});
  fb::TableBuilder compression;
  compression.add_scalar<int8_t>(0, 1);  // ZSTD
  rb.add_table(3, std::move(compression));
  append_message(&bytes, 3, std::move(rb), std::vector<uint8_t>(8, 0));
  expect_refused(bytes, StatusCode::kNotImplemented, "compressed");
}

TEST(IpcStreamReader, RefusesBuffersOutsideTheBody) {
  std::vector<uint8_t> bytes = schema_stream(field_table("x", 2, int_type(64, true)));
  append_message(&bytes, 3, batch_header(2, {2, 0}, {0, 0, 8, 16}), std::vector<uint8_t>(16, 0));
  expect_refused(bytes, StatusCode::kInvalidData, "lies outside the 16-byte body");
}

TEST(IpcStreamReader, RefusesShortValueBuffersAndWrongNullCounts) {
  std::vector<uint8_t> bytes = schema_stream(field_table("x", 2, int_type(64, true)));
  append_message(&bytes, 3, batch_header(3, {3, 0}, {0, 0, 0, 16}), std::vector<uint8_t>(16, 0));
  expect_refused(bytes, StatusCode::kInvalidData, "column 'x' (int64): values buffer of 16 bytes");

  bytes = schema_stream(field_table("x", 2, int_type(64, true)));
  std::vector<uint8_t> body(24, 0);
  body[0] = 0b11;  // two valid of two: but the node claims one null
  append_message(&bytes, 3, batch_header(2, {2, 1}, {0, 1, 8, 16}), body);
  expect_refused(bytes, StatusCode::kInvalidData, "has 0");
}

TEST(IpcStreamReader, RefusesOffsetsThatLeaveTheDataBuffer) {
  std::vector<uint8_t> bytes = schema_stream(field_table("s", 5, fb::TableBuilder()));
  std::vector<uint8_t> body(24, 0);
  int32_t offsets[3] = {0, 2, 100};
  std::memcpy(body.data(), offsets, sizeof(offsets));
  fb::TableBuilder rb;
  rb.add_scalar<int64_t>(0, 2);
  int64_t node[2] = {2, 0};
  int64_t buffers[6] = {0, 0, 0, 12, 16, 8};
  rb.add_struct_vector(1, node, 1, 16, 8);
  rb.add_struct_vector(2, buffers, 3, 16, 8);
  append_message(&bytes, 3, std::move(rb), body);
  expect_refused(bytes, StatusCode::kInvalidData, "column 's' (utf8): offsets");
}

TEST(IpcStreamReader, RefusesInvalidUtf8UnlessAskedNotToCheck) {
  RecordBatch batch =
      RecordBatch::make(schema({field("s", binary())}), {binary_array({"ok", "\xC3\x28"})}).value();
  auto bytes = write_ipc_stream({batch});
  ASSERT_TRUE(bytes.is_ok());
  // Same stream, but the schema message says utf8: the batch message is copied unchanged.
  std::vector<uint8_t> crafted = schema_stream(field_table("s", 5, fb::TableBuilder()));
  // Copy the record batch message (after the original schema message) as is.
  int32_t schema_len;
  std::memcpy(&schema_len, bytes->data() + 4, 4);
  crafted.insert(crafted.end(), bytes->begin() + 8 + schema_len, bytes->end());
  expect_refused(crafted, StatusCode::kInvalidData, "invalid UTF-8");
  IpcReadOptions lenient;
  lenient.validate_utf8 = false;
  EXPECT_TRUE(read_ipc_stream(to_buffer(crafted), lenient).is_ok());
}

TEST(IpcStreamReader, RefusesDictionaryBatchesAndSecondSchemas) {
  std::vector<uint8_t> bytes = schema_stream(field_table("x", 2, int_type(64, true)));
  std::vector<uint8_t> with_dictionary = bytes;
  append_message(&with_dictionary, 2, fb::TableBuilder());
  expect_refused(with_dictionary, StatusCode::kNotImplemented, "dictionary");
  std::vector<uint8_t> twice = bytes;
  twice.insert(twice.end(), bytes.begin(), bytes.end());
  expect_refused(twice, StatusCode::kInvalidData, "second Schema");
}

TEST(IpcStreamReader, RefusesOldMetadataVersionsAndMissingSchema) {
  std::vector<fb::TableBuilder> none;
  fb::TableBuilder s;
  s.add_table_vector(1, std::move(none));
  std::vector<uint8_t> v3;
  append_message(&v3, 1, std::move(s), {}, 2);
  expect_refused(v3, StatusCode::kInvalidData, "metadata version V3");
  expect_refused({}, StatusCode::kInvalidData, "ends before its schema");
  expect_refused({0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0}, StatusCode::kInvalidData,
                 "ends before its schema");
  expect_refused({0xFF, 0xFF, 0xFF, 0xFF, 0x10, 0, 0, 0, 1}, StatusCode::kInvalidData,
                 "runs past the end");
}

TEST(IpcStreamReader, TruncatedStreamsAreRefusedWithTheByteOffset) {
  std::mt19937_64 rng(19);
  RecordBatch batch = random_batch(50, 0.3, rng);
  auto bytes = write_ipc_stream({batch, batch});
  ASSERT_TRUE(bytes.is_ok());
  int refused = 0;
  for (size_t n = 0; n < bytes->size(); n += 3) {
    std::vector<uint8_t> cut(bytes->begin(), bytes->begin() + static_cast<long>(n));
    auto read = read_ipc_stream(to_buffer(cut));
    if (read.is_ok()) {
      // Only a cut exactly at a message boundary reads cleanly, with whole batches.
      for (const RecordBatch& b : read->second) expect_same_batch(batch, b, "prefix");
    } else {
      ++refused;
      EXPECT_EQ(read.status().code(), StatusCode::kInvalidData) << read.status().to_string();
      EXPECT_NE(read.status().to_string().find("byte"), std::string::npos);
    }
  }
  EXPECT_GT(refused, 0);
}

// Flips and truncates bytes of valid streams: every outcome must be an error or batches that pass
// full validation. Run under ASan/UBSan this proves the reader never reads out of bounds.
TEST(IpcStreamReader, RandomCorruptionNeverCrashes) {
  std::mt19937_64 rng(20);
  RecordBatch batch = random_batch(40, 0.3, rng);
  auto bytes = write_ipc_stream({batch, batch.slice(3, 17)}, IpcWriteOptions{.alignment = 8});
  ASSERT_TRUE(bytes.is_ok());
  int errors = 0, successes = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::vector<uint8_t> corrupt = *bytes;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) {
      size_t at = static_cast<size_t>(rng() % corrupt.size());
      switch (rng() % 3) {
        case 0:
          corrupt[at] ^= static_cast<uint8_t>(1u << (rng() % 8));
          break;
        case 1:
          corrupt[at] = static_cast<uint8_t>(rng());
          break;
        default:
          corrupt[at] = 0xFF;
      }
    }
    if (rng() % 4 == 0) corrupt.resize(static_cast<size_t>(rng() % corrupt.size()));
    auto read = read_ipc_stream(to_buffer(corrupt));
    if (!read.is_ok()) {
      ++errors;
      EXPECT_TRUE(read.status().code() == StatusCode::kInvalidData ||
                  read.status().code() == StatusCode::kNotImplemented ||
                  read.status().code() == StatusCode::kInvalidArgument)
          << read.status().to_string();
      continue;
    }
    ++successes;
    for (const RecordBatch& b : read->second) {
      for (const Array& column : b.columns()) {
        Status valid = column.validate_full();
        EXPECT_TRUE(valid.is_ok()) << valid.to_string();
        (void)column.to_string();  // touches every shown value
      }
    }
  }
  EXPECT_GT(errors, 0);
  EXPECT_GT(successes, 0);
}

}  // namespace
}  // namespace sabot::columnar
