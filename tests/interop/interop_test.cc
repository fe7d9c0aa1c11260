// Proves Sabot's Arrow IPC stream format against an independent implementation, the apache-arrow
// npm package: node reads what Sabot writes and Sabot reads what node writes, and each side checks
// every value against the same deterministic generator (generator.cjs, mirrored below).
// Requires node and apache-arrow in .deps/npm (scripts/install-deps.sh); fails without them.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "sabot/columnar/builder.h"
#include "sabot/columnar/ipc.h"

#ifndef SABOT_SOURCE_DIR
#error "SABOT_SOURCE_DIR must be defined by the build"
#endif

namespace sabot::columnar {
namespace {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// The generator of generator.cjs, in C++.

bool is_null(const std::string& column, int64_t i) {
  if (column == "id") return false;
  if (column == "b") return i % 7 == 3;
  if (column == "i32") return i % 11 == 5;
  if (column == "i64") return i % 13 == 0;
  if (column == "u64") return i % 17 == 2;
  if (column == "f64") return i % 19 == 4;
  if (column == "s") return i % 5 == 1;
  if (column == "bin") return i % 9 == 4;
  if (column == "ts_s") return i % 29 == 1;
  if (column == "ts_ms") return i % 23 == 7;
  if (column == "ts_us") return i % 31 == 3;
  if (column == "ts_ns") return i % 37 == 5;
  ADD_FAILURE() << "unknown column " << column;
  return true;
}

bool bool_value(int64_t i) { return (i * 5) % 3 == 1; }
int32_t int32_value(int64_t i) {
  return static_cast<int32_t>(static_cast<uint32_t>(static_cast<uint64_t>(i) * 2654435761u));
}
uint64_t uint64_value(int64_t i) {
  return static_cast<uint64_t>(i) * 0xD1B54A32D192ED03ull + 12345u;
}
double float64_value(int64_t i) { return static_cast<double>(i - 1000) / 7.0; }
std::string string_value(int64_t i) {
  static const char* const kWords[] = {"",
                                       "a",
                                       "h\xC3\xA9llo",
                                       "\xE2\x82\xAC",
                                       "\xF0\x9F\x98\x80",
                                       "w\xC3\xB6rld \xC3\xA9\xE2\x82\xAC"};
  return std::string(kWords[i % 6]) + std::to_string(i);
}
std::string binary_value(int64_t i) {
  std::string bytes(static_cast<size_t>(i % 10), '\0');
  for (size_t k = 0; k < bytes.size(); ++k) {
    bytes[k] = static_cast<char>((i * 31 + static_cast<int64_t>(k) * 7) & 0xFF);
  }
  return bytes;
}
// id, i64 and the timestamps.
int64_t int64_value(const std::string& column, int64_t i) {
  if (column == "id") return i;
  if (column == "i64")
    return static_cast<int64_t>(static_cast<uint64_t>(i) * 0x9E3779B97F4A7C15ull);
  if (column == "ts_s") return 1700000000 + i;
  if (column == "ts_ms") return 1700000000000 + i * 1000;
  if (column == "ts_us") return 1700000000000000 + i * 1000003;
  if (column == "ts_ns") return 1700000000000000000 + i * 1000000007;
  ADD_FAILURE() << "unknown int64 column " << column;
  return 0;
}

SchemaPtr interop_schema() {
  return schema(
      {field("id", int64(), false), field("b", boolean()), field("i32", int32()),
       field("i64", int64()), field("u64", uint64()), field("f64", float64()), field("s", utf8()),
       field("bin", binary()), field("ts_s", timestamp(TimeUnit::kSecond)),
       field("ts_ms", timestamp(TimeUnit::kMilli)), field("ts_us", timestamp(TimeUnit::kMicro)),
       field("ts_ns", timestamp(TimeUnit::kNano))});
}

// Rows [base, base + length) of the generator.
RecordBatch generate(int64_t base, int64_t length) {
  SchemaPtr s = interop_schema();
  std::vector<Array> columns;
  for (const Field& f : s->fields()) {
    auto builder = make_builder(f.type);
    for (int64_t i = base; i < base + length; ++i) {
      if (is_null(f.name, i)) {
        builder->append_null();
        continue;
      }
      switch (f.type.id()) {
        case TypeId::kBool:
          builder->append_scalar(Scalar::of_bool(bool_value(i)));
          break;
        case TypeId::kInt32:
          builder->append_scalar(Scalar::of_int32(int32_value(i)));
          break;
        case TypeId::kUInt64:
          builder->append_scalar(Scalar::of_uint64(uint64_value(i)));
          break;
        case TypeId::kFloat64:
          builder->append_scalar(Scalar::of_float64(float64_value(i)));
          break;
        case TypeId::kUtf8:
          builder->append_scalar(Scalar::of_utf8(string_value(i)));
          break;
        case TypeId::kBinary:
          builder->append_scalar(Scalar::of_binary(binary_value(i)));
          break;
        case TypeId::kInt64:
          builder->append_scalar(Scalar::of_int64(int64_value(f.name, i)));
          break;
        case TypeId::kTimestamp:
          builder->append_scalar(Scalar::of_timestamp(int64_value(f.name, i), f.type.unit()));
          break;
      }
    }
    columns.push_back(builder->finish());
  }
  return RecordBatch::make(s, std::move(columns)).value();
}

// Checks every value of `batch` against rows [base, base + length) of the generator, in plain
// loops over the raw accessors.
void expect_generated(const RecordBatch& batch, int64_t base, int64_t length,
                      const std::string& what) {
  ASSERT_EQ(batch.schema(), *interop_schema()) << what;
  ASSERT_EQ(batch.num_rows(), length) << what;
  for (int c = 0; c < batch.num_columns(); ++c) {
    const Field& f = batch.schema().field(c);
    const Array& a = batch.column(c);
    int64_t nulls = 0;
    for (int64_t r = 0; r < length; ++r) {
      const int64_t i = base + r;
      const std::string where = what + " column " + f.name + " row " + std::to_string(r);
      const bool null = is_null(f.name, i);
      nulls += null ? 1 : 0;
      ASSERT_EQ(a.is_null(r), null) << where;
      if (null) continue;
      switch (f.type.id()) {
        case TypeId::kBool:
          ASSERT_EQ(a.bool_value(r), bool_value(i)) << where;
          break;
        case TypeId::kInt32:
          ASSERT_EQ(a.value<int32_t>(r), int32_value(i)) << where;
          break;
        case TypeId::kUInt64:
          ASSERT_EQ(a.value<uint64_t>(r), uint64_value(i)) << where;
          break;
        case TypeId::kFloat64:
          ASSERT_EQ(a.value<double>(r), float64_value(i)) << where;
          break;
        case TypeId::kUtf8:
          ASSERT_EQ(a.string_view(r), string_value(i)) << where;
          break;
        case TypeId::kBinary:
          ASSERT_EQ(a.string_view(r), binary_value(i)) << where;
          break;
        case TypeId::kInt64:
        case TypeId::kTimestamp:
          ASSERT_EQ(a.value<int64_t>(r), int64_value(f.name, i)) << where;
          break;
      }
    }
    ASSERT_EQ(a.null_count(), nulls) << what << " column " << f.name;
  }
}

// ---------------------------------------------------------------------------------------------
// Running node

struct CommandResult {
  int status = -1;
  std::string output;
};

CommandResult run(const std::string& command) {
  CommandResult result;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) result.output.append(buf, n);
  result.status = pclose(pipe);
  return result;
}

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

const std::string kSourceDir = SABOT_SOURCE_DIR;
const std::string kArrowPackage = kSourceDir + "/.deps/npm/node_modules/apache-arrow";
const std::string kScripts = kSourceDir + "/tests/interop";

class ArrowJsInterop : public ::testing::Test {
 protected:
  void SetUp() override {
    CommandResult node = run("node --version");
    ASSERT_EQ(node.status, 0) << "node is not on PATH (" << node.output
                              << "); run scripts/install-deps.sh";
    ASSERT_TRUE(fs::exists(kArrowPackage + "/package.json"))
        << "apache-arrow is not installed in " << kArrowPackage << "; run scripts/install-deps.sh";
    dir_ = fs::temp_directory_path() /
           ("sabot_interop_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // Runs a script of tests/interop with the package, a file and a batch spec; expects success.
  void run_node(const std::string& script, const std::string& file, const std::string& spec) {
    CommandResult r = run("node " + quote(kScripts + "/" + script) + " " + quote(kArrowPackage) +
                          " " + quote(file) + " " + quote(spec));
    EXPECT_EQ(r.status, 0) << script << " failed:\n" << r.output;
    EXPECT_NE(r.output.find("OK:"), std::string::npos) << r.output;
  }

  fs::path dir_;
};

void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

BufferPtr read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return Buffer::copy_of(bytes.data(), static_cast<int64_t>(bytes.size()));
}

TEST_F(ArrowJsInterop, ApacheArrowJsReadsEveryValueSabotWrites) {
  // A whole batch, a slice at an offset that is not a multiple of 8 (shifted bitmaps, re-based
  // offsets), and an empty batch.
  std::vector<RecordBatch> batches = {generate(0, 3000), generate(0, 4000).slice(1003, 1500),
                                      generate(0, 0)};
  for (int64_t alignment : {64, 8}) {
    auto bytes = write_ipc_stream(batches, IpcWriteOptions{.alignment = alignment});
    ASSERT_TRUE(bytes.is_ok()) << bytes.status().to_string();
    const std::string file = path("sabot_" + std::to_string(alignment) + ".arrows");
    write_file(file, *bytes);
    run_node("read_sabot_stream.cjs", file, "0:3000,1003:1500,0:0");
  }
}

TEST_F(ArrowJsInterop, SabotReadsEveryValueApacheArrowJsWrites) {
  const std::string file = path("js.arrows");
  run_node("write_js_stream.cjs", file, "0:2500,5000:777,0:0");
  auto read = read_ipc_stream(read_file(file));
  ASSERT_TRUE(read.is_ok()) << read.status().to_string();
  EXPECT_EQ(*read->first, *interop_schema());
  ASSERT_EQ(read->second.size(), 3u);
  expect_generated(read->second[0], 0, 2500, "js batch 0");
  expect_generated(read->second[1], 5000, 777, "js batch 1");
  expect_generated(read->second[2], 0, 0, "js batch 2");
}

TEST_F(ArrowJsInterop, BatchesReadFromJsAndWrittenAgainAreReadByJs) {
  const std::string in = path("js.arrows");
  run_node("write_js_stream.cjs", in, "100:2000");
  auto read = read_ipc_stream(read_file(in));
  ASSERT_TRUE(read.is_ok()) << read.status().to_string();
  ASSERT_EQ(read->second.size(), 1u);
  // Write the zero-copy batch back, whole and sliced.
  const RecordBatch& b = read->second[0];
  auto bytes = write_ipc_stream({b, b.slice(13, 1001)});
  ASSERT_TRUE(bytes.is_ok()) << bytes.status().to_string();
  const std::string out = path("again.arrows");
  write_file(out, *bytes);
  run_node("read_sabot_stream.cjs", out, "100:2000,113:1001");
}

}  // namespace
}  // namespace sabot::columnar
