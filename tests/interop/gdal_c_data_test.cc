// Proves Sabot's Arrow C Data Interface import against an independent implementation: GDAL's OGR
// (Debian's libgdal32, installed by scripts/install-deps.sh) exports a layer as an
// ArrowArrayStream with its own C implementation of the interface (OGR_L_GetArrowStream, GDAL 3.6),
// Sabot imports every batch with import_batch, and each value is checked against what was written
// through GDAL's feature API. GDAL 3.6 has no consumer of the interface, so Sabot's export
// direction is not proven here (README says so). libgdal.so.32 is loaded at run time (no GDAL
// headers are needed); the test fails when it is missing.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "sabot/columnar/c_data.h"

namespace sabot::columnar {
namespace {

// The C stream interface, as the Arrow specification defines it (Sabot's header has the two data
// structs only).
extern "C" struct ArrowArrayStream {
  int (*get_schema)(struct ArrowArrayStream*, struct ArrowSchema* out);
  int (*get_next)(struct ArrowArrayStream*, struct ArrowArray* out);
  const char* (*get_last_error)(struct ArrowArrayStream*);
  void (*release)(struct ArrowArrayStream*);
  void* private_data;
};

// The few functions of GDAL's stable C API the test uses, with their values from ogr_core.h.
struct Gdal {
  void* lib = nullptr;
  void (*AllRegister)();
  void* (*GetDriverByName)(const char*);
  void* (*Create)(void*, const char*, int, int, int, int, char**);
  void (*Close)(void*);
  void* (*CreateLayer)(void*, const char*, void*, int, char**);
  void* (*FldCreate)(const char*, int);
  void (*FldSetSubType)(void*, int);
  void (*FldDestroy)(void*);
  int (*CreateField)(void*, void*, int);
  void* (*GetLayerDefn)(void*);
  void* (*FCreate)(void*);
  void (*FDestroy)(void*);
  void (*SetInteger)(void*, int, int);
  void (*SetInteger64)(void*, int, long long);
  void (*SetDouble)(void*, int, double);
  void (*SetString)(void*, int, const char*);
  void (*SetBinary)(void*, int, int, const void*);
  void (*SetDateTimeEx)(void*, int, int, int, int, int, int, float, int);
  void (*SetNull)(void*, int);
  int (*CreateFeature)(void*, void*);
  bool (*GetArrowStream)(void*, ArrowArrayStream*, char**);

  static constexpr int kOFTInteger = 0, kOFTReal = 2, kOFTString = 4, kOFTBinary = 8,
                       kOFTDateTime = 11, kOFTInteger64 = 12, kOFSTBoolean = 1, kWkbNone = 100,
                       kGdtUnknown = 0, kTimeZoneUtc = 100;

  template <typename F>
  void bind(F*& f, const char* name) {
    f = reinterpret_cast<F*>(dlsym(lib, name));
    if (f == nullptr) ADD_FAILURE() << "libgdal lacks " << name;
  }
  bool load() {
    lib = dlopen("libgdal.so.32", RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) return false;
    bind(AllRegister, "GDALAllRegister");
    bind(GetDriverByName, "GDALGetDriverByName");
    bind(Create, "GDALCreate");
    bind(Close, "GDALClose");
    bind(CreateLayer, "GDALDatasetCreateLayer");
    bind(FldCreate, "OGR_Fld_Create");
    bind(FldSetSubType, "OGR_Fld_SetSubType");
    bind(FldDestroy, "OGR_Fld_Destroy");
    bind(CreateField, "OGR_L_CreateField");
    bind(GetLayerDefn, "OGR_L_GetLayerDefn");
    bind(FCreate, "OGR_F_Create");
    bind(FDestroy, "OGR_F_Destroy");
    bind(SetInteger, "OGR_F_SetFieldInteger");
    bind(SetInteger64, "OGR_F_SetFieldInteger64");
    bind(SetDouble, "OGR_F_SetFieldDouble");
    bind(SetString, "OGR_F_SetFieldString");
    bind(SetBinary, "OGR_F_SetFieldBinary");
    bind(SetDateTimeEx, "OGR_F_SetFieldDateTimeEx");
    bind(SetNull, "OGR_F_SetFieldNull");
    bind(CreateFeature, "OGR_L_CreateFeature");
    bind(GetArrowStream, "OGR_L_GetArrowStream");
    return true;
  }
};

// The rows, a pure function of the row number; each column has its own null pattern.
constexpr int64_t kRows = 1000;
bool is_null(int column, int64_t i) { return i % (5 + column) == static_cast<int64_t>(column); }
bool bool_value(int64_t i) { return i % 3 == 1; }
int32_t int32_value(int64_t i) { return static_cast<int32_t>(i * 2'654'435 - 1'000'000'000); }
int64_t int64_value(int64_t i) { return (i - 500) * 1'000'000'007'000LL; }
double float64_value(int64_t i) { return static_cast<double>(i - 300) / 8.0; }
std::string string_value(int64_t i) {
  static const char* const kWords[] = {"", "a", "h\xC3\xA9llo", "\xE2\x82\xAC",
                                       "\xF0\x9F\x98\x80 w\xC3\xB6rld"};
  return std::string(kWords[i % 5]) + std::to_string(i);
}
std::string binary_value(int64_t i) {
  std::string s;
  for (int64_t k = 0; k < i % 7; ++k) s.push_back(static_cast<char>((i * 31 + k * 17) & 0xff));
  return s;
}
// 2024-01-d hh:mm:ss.mmm UTC, and its milliseconds since the epoch.
struct DateTime {
  int day, hour, minute, second, millis;
};
DateTime datetime_value(int64_t i) {
  return {1 + static_cast<int>(i % 28), static_cast<int>(i % 24), static_cast<int>(i % 60),
          static_cast<int>((i * 7) % 60), static_cast<int>((i * 125) % 1000)};
}
int64_t datetime_millis(int64_t i) {
  const DateTime d = datetime_value(i);
  const int64_t jan_1_2024 = 1'704'067'200'000;  // 2024-01-01T00:00:00Z
  return jan_1_2024 + ((((d.day - 1) * 24LL + d.hour) * 60 + d.minute) * 60 + d.second) * 1000 +
         d.millis;
}

TEST(GdalCDataInterop, SabotImportsEveryBatchGdalExportsWithEveryValue) {
  Gdal g;
  ASSERT_TRUE(g.load()) << "libgdal.so.32 not found (scripts/install-deps.sh installs libgdal32): "
                        << dlerror();
  ASSERT_FALSE(HasFailure());
  g.AllRegister();
  void* driver = g.GetDriverByName("Memory");
  ASSERT_NE(driver, nullptr);
  void* ds = g.Create(driver, "sabot", 0, 0, 0, Gdal::kGdtUnknown, nullptr);
  ASSERT_NE(ds, nullptr);
  void* layer = g.CreateLayer(ds, "rows", nullptr, Gdal::kWkbNone, nullptr);
  ASSERT_NE(layer, nullptr);
  struct Column {
    const char* name;
    int type;
    bool boolean;
  };
  const std::vector<Column> columns = {
      {"b", Gdal::kOFTInteger, true},      {"i32", Gdal::kOFTInteger, false},
      {"i64", Gdal::kOFTInteger64, false}, {"f64", Gdal::kOFTReal, false},
      {"s", Gdal::kOFTString, false},      {"bin", Gdal::kOFTBinary, false},
      {"ts", Gdal::kOFTDateTime, false}};
  for (const Column& c : columns) {
    void* field = g.FldCreate(c.name, c.type);
    if (c.boolean) g.FldSetSubType(field, Gdal::kOFSTBoolean);
    ASSERT_EQ(g.CreateField(layer, field, 0), 0) << c.name;
    g.FldDestroy(field);
  }
  for (int64_t i = 0; i < kRows; ++i) {
    void* f = g.FCreate(g.GetLayerDefn(layer));
    const int n = static_cast<int>(i);
    if (is_null(0, i))
      g.SetNull(f, 0);
    else
      g.SetInteger(f, 0, bool_value(i) ? 1 : 0);
    if (is_null(1, i))
      g.SetNull(f, 1);
    else
      g.SetInteger(f, 1, int32_value(i));
    if (is_null(2, i))
      g.SetNull(f, 2);
    else
      g.SetInteger64(f, 2, int64_value(i));
    if (is_null(3, i))
      g.SetNull(f, 3);
    else
      g.SetDouble(f, 3, float64_value(i));
    if (is_null(4, i))
      g.SetNull(f, 4);
    else
      g.SetString(f, 4, string_value(i).c_str());
    const std::string bin = binary_value(i);
    if (is_null(5, i))
      g.SetNull(f, 5);
    else
      g.SetBinary(f, 5, static_cast<int>(bin.size()), bin.data());
    const DateTime d = datetime_value(i);
    if (is_null(6, i)) {
      g.SetNull(f, 6);
    } else {
      g.SetDateTimeEx(f, 6, 2024, 1, d.day, d.hour, d.minute,
                      static_cast<float>(d.second) + static_cast<float>(d.millis) / 1000.0f,
                      Gdal::kTimeZoneUtc);
    }
    ASSERT_EQ(g.CreateFeature(layer, f), 0) << "row " << n;
    g.FDestroy(f);
  }

  ArrowArrayStream stream{};
  char max_batch[] = "MAX_FEATURES_IN_BATCH=300";
  char* options[] = {max_batch, nullptr};
  ASSERT_TRUE(g.GetArrowStream(layer, &stream, options));
  std::vector<RecordBatch> batches;
  while (true) {
    ArrowArray array{};
    ASSERT_EQ(stream.get_next(&stream, &array), 0) << stream.get_last_error(&stream);
    if (array.release == nullptr) break;  // end of stream
    ArrowSchema schema{};
    ASSERT_EQ(stream.get_schema(&stream, &schema), 0) << stream.get_last_error(&stream);
    auto batch = import_batch(&array, &schema);
    ASSERT_TRUE(batch.is_ok()) << batch.status().to_string();
    EXPECT_EQ(array.release, nullptr);  // Sabot took ownership
    batches.push_back(*batch);
  }
  stream.release(&stream);
  ASSERT_EQ(batches.size(), 4u);  // 300 + 300 + 300 + 100

  int64_t row = 0;
  for (const RecordBatch& batch : batches) {
    const Schema& s = batch.schema();
    ASSERT_EQ(s.num_fields(), 8) << s.to_string();
    EXPECT_EQ(s.field(0).type, int64()) << s.field(0).name;  // GDAL's feature id column
    EXPECT_EQ(s.field(1).type, boolean());
    EXPECT_EQ(s.field(2).type, int32());
    EXPECT_EQ(s.field(3).type, int64());
    EXPECT_EQ(s.field(4).type, float64());
    EXPECT_EQ(s.field(5).type, utf8());
    EXPECT_EQ(s.field(6).type, binary());
    EXPECT_EQ(s.field(7).type, timestamp(TimeUnit::kMilli));
    for (int c = 0; c < 7; ++c)
      EXPECT_EQ(s.field(c + 1).name, columns[static_cast<size_t>(c)].name);
    for (int64_t r = 0; r < batch.num_rows(); ++r, ++row) {
      // Feature ids are consecutive.
      EXPECT_EQ(batch.column(0).value<int64_t>(r), batches[0].column(0).value<int64_t>(0) + row);
      for (int c = 0; c < 7; ++c) {
        EXPECT_EQ(batch.column(c + 1).is_null(r), is_null(c, row)) << "row " << row << " col " << c;
      }
      if (!is_null(0, row)) EXPECT_EQ(batch.column(1).bool_value(r), bool_value(row)) << row;
      if (!is_null(1, row)) EXPECT_EQ(batch.column(2).value<int32_t>(r), int32_value(row)) << row;
      if (!is_null(2, row)) EXPECT_EQ(batch.column(3).value<int64_t>(r), int64_value(row)) << row;
      if (!is_null(3, row)) EXPECT_EQ(batch.column(4).value<double>(r), float64_value(row)) << row;
      if (!is_null(4, row)) EXPECT_EQ(batch.column(5).string_view(r), string_value(row)) << row;
      if (!is_null(5, row)) EXPECT_EQ(batch.column(6).string_view(r), binary_value(row)) << row;
      if (!is_null(6, row)) {
        EXPECT_EQ(batch.column(7).value<int64_t>(r), datetime_millis(row)) << row;
      }
    }
  }
  EXPECT_EQ(row, kRows);
  batches.clear();  // the last Sabot buffers go: GDAL's release callbacks run now
  g.Close(ds);
}

}  // namespace
}  // namespace sabot::columnar
