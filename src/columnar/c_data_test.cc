#include "sabot/columnar/c_data.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "columnar/interop_test_util.h"
#include "sabot/columnar/builder.h"

namespace sabot::columnar {
namespace {

using testing::all_types;
using testing::expect_same_batch;
using testing::expect_same_values;
using testing::random_array;
using testing::random_batch;

Array round_trip(const Array& array) {
  ArrowArray c_array;
  ArrowSchema c_schema;
  Status exported = export_array(array, &c_array, &c_schema);
  EXPECT_TRUE(exported.is_ok()) << exported.to_string();
  auto imported = import_array(&c_array, &c_schema);
  EXPECT_TRUE(imported.is_ok()) << imported.status().to_string();
  if (!imported.is_ok()) return Array::make_empty(array.type());
  EXPECT_EQ(c_array.release, nullptr);
  EXPECT_EQ(c_schema.release, nullptr);
  return *imported;
}

TEST(CData, FormatStringsRoundTripForEveryType) {
  for (DataType t : all_types()) {
    auto parsed = parse_arrow_format_string(arrow_format_string(t));
    ASSERT_TRUE(parsed.is_ok()) << t;
    EXPECT_EQ(*parsed, t);
  }
  EXPECT_STREQ(arrow_format_string(timestamp(TimeUnit::kNano)), "tsn:");
  EXPECT_STREQ(arrow_format_string(uint64()), "L");
}

TEST(CData, RefusesTimeZonesAndUnknownFormatsNamingTheFormat) {
  auto tz = parse_arrow_format_string("tsu:Europe/Paris");
  ASSERT_FALSE(tz.is_ok());
  EXPECT_NE(tz.status().message().find("tsu:Europe/Paris"), std::string::npos);
  auto list = parse_arrow_format_string("+l");
  ASSERT_FALSE(list.is_ok());
  EXPECT_NE(list.status().message().find("'+l'"), std::string::npos);
  EXPECT_FALSE(parse_arrow_format_string("tsx:").is_ok());
  EXPECT_FALSE(parse_arrow_format_string("").is_ok());
}

TEST(CData, RoundTripsEveryTypeWithNulls) {
  std::mt19937_64 rng(1);
  for (DataType t : all_types()) {
    Array a = random_array(t, 300, 0.3, rng);
    ASSERT_GT(a.null_count(), 0) << t;
    expect_same_values(a, round_trip(a), t.to_string());
  }
}

TEST(CData, RoundTripsEmptyAndAllNullArrays) {
  for (DataType t : all_types()) {
    expect_same_values(Array::make_empty(t), round_trip(Array::make_empty(t)), t.to_string());
    Array nulls = Array::make_null(t, 17);
    expect_same_values(nulls, round_trip(nulls), t.to_string());
  }
}

TEST(CData, ExportsSlicesWithOffsetAndWithoutCopying) {
  std::mt19937_64 rng(2);
  for (DataType t : all_types()) {
    Array base = random_array(t, 200, 0.2, rng);
    Array slice = base.slice(13, 150);
    ArrowArray c_array;
    ArrowSchema c_schema;
    ASSERT_TRUE(export_array(slice, &c_array, &c_schema).is_ok());
    EXPECT_EQ(c_array.offset, 13);
    EXPECT_EQ(c_array.length, 150);
    EXPECT_EQ(c_array.null_count, slice.null_count());
    EXPECT_EQ(c_array.buffers[1], base.data().values->data());  // shared, not copied
    auto imported = import_array(&c_array, &c_schema);
    ASSERT_TRUE(imported.is_ok()) << imported.status().to_string();
    EXPECT_EQ(imported->data().values->data(), base.data().values->data());
    expect_same_values(slice, *imported, t.to_string());
  }
}

TEST(CData, ExportKeepsBuffersAliveUntilTheConsumerReleases) {
  ArrowArray c_array;
  ArrowSchema c_schema;
  {
    Array a = int64_array({1, 2, std::nullopt, 4});
    ASSERT_TRUE(export_array(a, &c_array, &c_schema).is_ok());
  }  // the Array handle is gone; the exported struct must still own the memory
  EXPECT_STREQ(c_schema.format, "l");
  EXPECT_EQ(c_array.n_buffers, 2);
  EXPECT_EQ(c_array.null_count, 1);
  const auto* values = static_cast<const int64_t*>(c_array.buffers[1]);
  EXPECT_EQ(values[3], 4);
  const auto* validity = static_cast<const uint8_t*>(c_array.buffers[0]);
  EXPECT_FALSE(bits::get(validity, 2));
  c_array.release(&c_array);
  c_schema.release(&c_schema);
  EXPECT_EQ(c_array.release, nullptr);
  EXPECT_EQ(c_schema.release, nullptr);
}

// A producer implemented by hand, as a foreign library would, counting release calls.
struct ForeignArray {
  std::vector<uint8_t> validity;
  std::vector<int32_t> offsets;
  std::vector<uint8_t> data;
  std::vector<int64_t> values;
  std::vector<const void*> buffers;
  int* release_count = nullptr;
};

void release_foreign(ArrowArray* a) {
  auto* f = static_cast<ForeignArray*>(a->private_data);
  ++*f->release_count;
  delete f;
  a->release = nullptr;
}

void release_foreign_schema(ArrowSchema* s) {
  ++*static_cast<int*>(s->private_data);
  s->release = nullptr;
}

ArrowSchema foreign_schema(const char* format, int* count) {
  ArrowSchema s{};
  s.format = format;
  s.name = "x";
  s.flags = ARROW_FLAG_NULLABLE;
  s.release = &release_foreign_schema;
  s.private_data = count;
  return s;
}

// int64 [10, null, 30, 40] owned by a ForeignArray.
ArrowArray foreign_int64(int* count) {
  auto* f = new ForeignArray();
  f->release_count = count;
  f->values = {10, 0, 30, 40};
  f->validity = {0b1101};
  f->buffers = {f->validity.data(), f->values.data()};
  ArrowArray a{};
  a.length = 4;
  a.null_count = 1;
  a.n_buffers = 2;
  a.buffers = f->buffers.data();
  a.release = &release_foreign;
  a.private_data = f;
  return a;
}

// utf8 ["ab", "", "cde"] owned by a ForeignArray.
ArrowArray foreign_utf8(int* count, std::vector<int32_t> offsets, std::string bytes) {
  auto* f = new ForeignArray();
  f->release_count = count;
  f->offsets = std::move(offsets);
  f->data.assign(bytes.begin(), bytes.end());
  f->buffers = {nullptr, f->offsets.data(), f->data.data()};
  ArrowArray a{};
  a.length = static_cast<int64_t>(f->offsets.size()) - 1;
  a.null_count = 0;
  a.n_buffers = 3;
  a.buffers = f->buffers.data();
  a.release = &release_foreign;
  a.private_data = f;
  return a;
}

TEST(CData, ImportWrapsForeignMemoryAndReleasesExactlyOnce) {
  int array_releases = 0, schema_releases = 0;
  ArrowArray a = foreign_int64(&array_releases);
  ArrowSchema s = foreign_schema("l", &schema_releases);
  const void* foreign_values = a.buffers[1];
  {
    auto imported = import_array(&a, &s);
    ASSERT_TRUE(imported.is_ok()) << imported.status().to_string();
    // Moved: the source structs are marked released, and the schema is no longer needed.
    EXPECT_EQ(a.release, nullptr);
    EXPECT_EQ(s.release, nullptr);
    EXPECT_EQ(schema_releases, 1);
    EXPECT_EQ(imported->data().values->data(), foreign_values);  // zero-copy
    EXPECT_EQ(imported->to_string(), int64_array({10, std::nullopt, 30, 40}).to_string());
    Array copy = *imported;
    Array slice = imported->slice(1, 2);
    imported = Status::internal("drop");
    copy = Array();
    EXPECT_EQ(array_releases, 0);  // the slice still refers to the foreign memory
    EXPECT_EQ(slice.value<int64_t>(1), 30);
  }
  EXPECT_EQ(array_releases, 1);
  EXPECT_EQ(schema_releases, 1);
}

TEST(CData, ImportReleasesOnErrorToo) {
  int array_releases = 0, schema_releases = 0;
  ArrowArray a = foreign_int64(&array_releases);
  ArrowSchema s = foreign_schema("i", &schema_releases);
  a.n_buffers = 3;  // wrong for int32
  auto imported = import_array(&a, &s);
  ASSERT_FALSE(imported.is_ok());
  EXPECT_EQ(imported.status().code(), StatusCode::kInvalidData);
  EXPECT_NE(imported.status().message().find("3 buffers"), std::string::npos);
  EXPECT_EQ(array_releases, 1);
  EXPECT_EQ(schema_releases, 1);
  EXPECT_EQ(a.release, nullptr);
}

TEST(CData, ImportRefusesAlreadyReleasedStructs) {
  ArrowArray a{};
  ArrowSchema s{};
  auto imported = import_array(&a, &s);
  ASSERT_FALSE(imported.is_ok());
  EXPECT_EQ(imported.status().code(), StatusCode::kInvalidArgument);
}

TEST(CData, ImportValidatesForeignData) {
  struct Case {
    std::string name;
    std::vector<int32_t> offsets;
    std::string bytes;
    const char* format;
    std::string expect;  // substring of the error
  };
  std::vector<Case> cases = {
      {"decreasing offsets", {0, 3, 2, 4}, "abcd", "u", "monotonic"},
      {"negative last offset", {0, 2, -1}, "ab", "z", "offsets"},
      {"invalid utf8", {0, 2}, "\xC3\x28", "u", "UTF-8"},
      {"time zone", {0, 2}, "ab", "tsm:UTC", "tsm:UTC"},
  };
  for (const Case& c : cases) {
    int array_releases = 0, schema_releases = 0;
    ArrowArray a = foreign_utf8(&array_releases, c.offsets, c.bytes);
    ArrowSchema s = foreign_schema(c.format, &schema_releases);
    auto imported = import_array(&a, &s);
    ASSERT_FALSE(imported.is_ok()) << c.name;
    EXPECT_NE(imported.status().to_string().find(c.expect), std::string::npos)
        << c.name << ": " << imported.status().to_string();
    EXPECT_EQ(array_releases, 1) << c.name;
    EXPECT_EQ(schema_releases, 1) << c.name;
  }
  // Binary data may hold any bytes.
  int array_releases = 0, schema_releases = 0;
  ArrowArray a = foreign_utf8(&array_releases, {0, 2, 2}, "\xC3\x28");
  ArrowSchema s = foreign_schema("z", &schema_releases);
  auto imported = import_array(&a, &s);
  ASSERT_TRUE(imported.is_ok()) << imported.status().to_string();
  EXPECT_EQ(imported->string_view(0), "\xC3\x28");
}

TEST(CData, ImportRefusesNullValuesBufferAndWrongNullCount) {
  int array_releases = 0, schema_releases = 0;
  ArrowArray a = foreign_int64(&array_releases);
  a.buffers[1] = nullptr;
  ArrowSchema s = foreign_schema("l", &schema_releases);
  auto imported = import_array(&a, &s);
  ASSERT_FALSE(imported.is_ok());
  EXPECT_NE(imported.status().message().find("buffer 1"), std::string::npos);

  ArrowArray b = foreign_int64(&array_releases);
  b.null_count = 2;  // the bitmap has one null
  ArrowSchema t = foreign_schema("l", &schema_releases);
  imported = import_array(&b, &t);
  ASSERT_FALSE(imported.is_ok());
  EXPECT_NE(imported.status().message().find("null_count"), std::string::npos);

  ArrowArray c = foreign_int64(&array_releases);
  c.null_count = -1;  // unknown: computed from the bitmap
  ArrowSchema u = foreign_schema("l", &schema_releases);
  imported = import_array(&c, &u);
  ASSERT_TRUE(imported.is_ok()) << imported.status().to_string();
  EXPECT_EQ(imported->null_count(), 1);
  imported = Status::internal("drop");
  EXPECT_EQ(array_releases, 3);
  EXPECT_EQ(schema_releases, 3);
}

TEST(CData, ImportCopiesMisalignedValues) {
  int array_releases = 0, schema_releases = 0;
  ArrowArray a = foreign_int64(&array_releases);
  // Point the values one byte into a larger, owned allocation: misaligned for int64.
  auto* f = static_cast<ForeignArray*>(a.private_data);
  f->data.assign(8 * 4 + 1, 0);
  int64_t v[4] = {1, 2, 3, 4};
  std::memcpy(f->data.data() + 1, v, sizeof(v));
  f->buffers[1] = f->data.data() + 1;
  ArrowSchema s = foreign_schema("l", &schema_releases);
  auto imported = import_array(&a, &s);
  ASSERT_TRUE(imported.is_ok()) << imported.status().to_string();
  EXPECT_EQ(reinterpret_cast<uintptr_t>(imported->values<int64_t>()) % 8, 0u);
  EXPECT_EQ(imported->value<int64_t>(3), 4);
}

TEST(CData, BatchRoundTripsAsStructArray) {
  std::mt19937_64 rng(3);
  RecordBatch batch = random_batch(500, 0.25, rng);
  ArrowArray c_array;
  ArrowSchema c_schema;
  ASSERT_TRUE(export_batch(batch, &c_array, &c_schema).is_ok());
  EXPECT_STREQ(c_schema.format, "+s");
  ASSERT_EQ(c_schema.n_children, batch.num_columns());
  ASSERT_EQ(c_array.n_children, batch.num_columns());
  EXPECT_EQ(c_array.n_buffers, 1);
  EXPECT_EQ(c_array.buffers[0], nullptr);
  for (int i = 0; i < batch.num_columns(); ++i) {
    EXPECT_EQ(c_schema.children[i]->name, batch.schema().field(i).name);
    EXPECT_STREQ(c_schema.children[i]->format, arrow_format_string(batch.column(i).type()));
    EXPECT_EQ(c_schema.children[i]->flags & ARROW_FLAG_NULLABLE, ARROW_FLAG_NULLABLE);
    EXPECT_EQ(c_array.children[i]->length, 500);
  }
  auto imported = import_batch(&c_array, &c_schema);
  ASSERT_TRUE(imported.is_ok()) << imported.status().to_string();
  expect_same_batch(batch, *imported, "batch");
}

TEST(CData, SlicedBatchRoundTrips) {
  std::mt19937_64 rng(4);
  RecordBatch batch = random_batch(300, 0.5, rng).slice(77, 101);
  ArrowArray c_array;
  ArrowSchema c_schema;
  ASSERT_TRUE(export_batch(batch, &c_array, &c_schema).is_ok());
  auto imported = import_batch(&c_array, &c_schema);
  ASSERT_TRUE(imported.is_ok()) << imported.status().to_string();
  expect_same_batch(batch, *imported, "sliced batch");
}

TEST(CData, StructOffsetSlicesTheChildren) {
  std::mt19937_64 rng(5);
  RecordBatch batch = random_batch(64, 0.3, rng);
  ArrowArray c_array;
  ArrowSchema c_schema;
  ASSERT_TRUE(export_batch(batch, &c_array, &c_schema).is_ok());
  c_array.offset = 10;  // a producer that slices at the struct level
  c_array.length = 40;
  auto imported = import_batch(&c_array, &c_schema);
  ASSERT_TRUE(imported.is_ok()) << imported.status().to_string();
  expect_same_batch(batch.slice(10, 40), *imported, "struct offset");
}

TEST(CData, ConsumerMayMoveAChildOutOfAnExportedBatch) {
  RecordBatch batch =
      RecordBatch::make(schema({field("a", int64()), field("s", utf8())}),
                        {int64_array({1, 2, 3}), utf8_array({"x", std::nullopt, "zz"})})
          .value();
  ArrowArray c_array;
  ArrowSchema c_schema;
  ASSERT_TRUE(export_batch(batch, &c_array, &c_schema).is_ok());
  // Move child 1 out (the spec allows it), then release the parent: the moved child survives.
  ArrowArray moved = *c_array.children[1];
  c_array.children[1]->release = nullptr;
  ArrowSchema moved_schema = *c_schema.children[1];
  c_schema.children[1]->release = nullptr;
  c_array.release(&c_array);
  c_schema.release(&c_schema);
  batch = RecordBatch();
  auto imported = import_array(&moved, &moved_schema);
  ASSERT_TRUE(imported.is_ok()) << imported.status().to_string();
  EXPECT_EQ(imported->to_string(), utf8_array({"x", std::nullopt, "zz"}).to_string());
}

TEST(CData, ImportBatchRefusesNonStructAndMismatchedChildren) {
  Array a = int64_array({1});
  ArrowArray c_array;
  ArrowSchema c_schema;
  ASSERT_TRUE(export_array(a, &c_array, &c_schema).is_ok());
  auto imported = import_batch(&c_array, &c_schema);
  ASSERT_FALSE(imported.is_ok());
  EXPECT_NE(imported.status().message().find("'l'"), std::string::npos);
  EXPECT_EQ(c_array.release, nullptr);

  RecordBatch batch = RecordBatch::make(schema({field("a", int64())}), {a}).value();
  ASSERT_TRUE(export_batch(batch, &c_array, &c_schema).is_ok());
  c_schema.children[0]->format = "i";  // lies about the child type: buffers too small to trust
  c_array.children[0]->n_buffers = 3;
  imported = import_batch(&c_array, &c_schema);
  ASSERT_FALSE(imported.is_ok());
  EXPECT_NE(imported.status().to_string().find("column 'a'"), std::string::npos);
}

TEST(CData, RandomizedRoundTripsMatchTheSource) {
  std::mt19937_64 rng(6);
  for (int iter = 0; iter < 200; ++iter) {
    DataType t = all_types()[rng() % all_types().size()];
    const int64_t length = static_cast<int64_t>(rng() % 300);
    const double null_probability = std::uniform_real_distribution<double>(0, 1)(rng);
    Array a = random_array(t, length, null_probability, rng);
    const int64_t offset = length == 0 ? 0 : static_cast<int64_t>(rng() % (length + 1));
    const int64_t slice_length = static_cast<int64_t>(rng() % (length - offset + 1));
    Array slice = a.slice(offset, slice_length);
    Array back = round_trip(slice);
    expect_same_values(slice, back, t.to_string() + " iteration " + std::to_string(iter));
    if (::testing::Test::HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace sabot::columnar
