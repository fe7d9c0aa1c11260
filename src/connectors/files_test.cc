#include "sabot/connectors/files.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "sabot/api/environment.h"
#include "sabot/columnar/builder.h"

namespace sabot::connectors {
namespace {

namespace fs = std::filesystem;
using columnar::field;
using columnar::TimeUnit;

// A fresh directory under /tmp, removed with everything in it at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = "/tmp/sabot-files-test-XXXXXX";
    char* p = ::mkdtemp(tmpl.data());
    EXPECT_NE(p, nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

SchemaPtr all_types_schema() {
  return columnar::schema({
      field("b", columnar::boolean()),
      field("i32", columnar::int32()),
      field("i64", columnar::int64(), false),
      field("u64", columnar::uint64()),
      field("f64", columnar::float64()),
      field("s", columnar::utf8()),
      field("bin", columnar::binary()),
      field("ts", columnar::timestamp(TimeUnit::kMilli)),
  });
}

// Rows with ids first_id.. (i64 is unique), nulls in every nullable column.
RecordBatch random_batch(std::mt19937_64& rng, int64_t first_id, int64_t n) {
  static const std::vector<std::string> texts = {"plain", "a,b",   "quote\"d", "multi\nline",
                                                 "",      "é日本", "crlf\r\n", "null"};
  columnar::BooleanBuilder b;
  columnar::Int32Builder i32;
  columnar::Int64Builder i64;
  columnar::UInt64Builder u64;
  columnar::Float64Builder f64;
  columnar::StringBuilder s(columnar::utf8());
  columnar::BinaryBuilder bin(columnar::binary());
  columnar::Int64Builder ts(columnar::timestamp(TimeUnit::kMilli));
  for (int64_t r = 0; r < n; ++r) {
    bool null = rng() % 5 == 0;
    null ? b.append_null() : b.append(rng() % 2 == 0);
    null ? i32.append_null() : i32.append(static_cast<int32_t>(rng()));
    i64.append(first_id + r);
    null ? u64.append_null() : u64.append(rng());
    null ? f64.append_null() : f64.append(static_cast<double>(rng() % 100000) / 7.0 - 5000);
    null ? s.append_null() : s.append(texts[rng() % texts.size()]);
    std::string bytes(rng() % 6, '\0');
    for (char& c : bytes) c = static_cast<char>(rng() % 256);
    null ? bin.append_null() : bin.append(bytes);
    null ? ts.append_null() : ts.append(static_cast<int64_t>(rng() % 2000000000000LL));
  }
  return RecordBatch::make(all_types_schema(),
                           {b.finish(), i32.finish(), i64.finish(), u64.finish(), f64.finish(),
                            s.finish(), bin.finish(), ts.finish()})
      .value();
}

// Rows as sorted strings: a multiset comparison that ignores order.
std::vector<std::string> rows_of(const std::vector<RecordBatch>& batches) {
  std::vector<std::string> rows;
  for (const RecordBatch& b : batches) {
    for (int64_t r = 0; r < b.num_rows(); ++r) {
      std::string row;
      for (int c = 0; c < b.num_columns(); ++c) row += b.column(c).scalar_at(r).to_string() + "|";
      rows.push_back(row);
    }
  }
  std::sort(rows.begin(), rows.end());
  return rows;
}

// Reads every batch of `source` with one reader over all splits, checking the batch size bound.
Result<std::vector<RecordBatch>> read_all(const runtime::Source& source, int64_t max_rows,
                                          int64_t* dropped = nullptr,
                                          std::vector<std::string>* positions = nullptr) {
  std::vector<int> splits;
  for (int i = 0; i < source.num_splits(); ++i) splits.push_back(i);
  SABOT_ASSIGN_OR_RETURN(auto reader, source.open_reader(splits, runtime::OperatorContext{}));
  std::vector<RecordBatch> out;
  for (;;) {
    if (positions) positions->push_back(reader->position());
    SABOT_ASSIGN_OR_RETURN(runtime::SourcePoll p, reader->poll(max_rows));
    if (dropped) *dropped += p.dropped;
    if (p.kind == runtime::SourcePoll::Kind::kEnd) {
      if (positions) positions->push_back(reader->position());
      return out;
    }
    if (p.kind == runtime::SourcePoll::Kind::kBatch) {
      EXPECT_LE(p.batch.num_rows(), max_rows);
      EXPECT_GT(p.batch.num_rows(), 0);
      out.push_back(p.batch);
    }
  }
}

class FileRoundTrip : public ::testing::TestWithParam<std::tuple<FileFormat, int>> {};

TEST_P(FileRoundTrip, JobWritesFilesThatAJobReadsBack) {
  const auto [format, parallelism] = GetParam();
  TempDir tmp;
  fs::create_directory(tmp.file("out"));
  const std::string ext = format == FileFormat::kCsv         ? ".csv"
                          : format == FileFormat::kJsonLines ? ".jsonl"
                                                             : ".arrow";
  const std::string path = tmp.file("out/part" + ext);
  std::mt19937_64 rng(42 + parallelism);
  std::vector<RecordBatch> input;
  int64_t id = 0;
  for (int i = 0; i < 7; ++i) {
    int64_t n = static_cast<int64_t>(rng() % 300);
    input.push_back(random_batch(rng, id, n));
    id += n;
  }
  {
    Environment env(EnvironmentOptions{.parallelism = parallelism, .batch_size = 97});
    env.from_batches(input, all_types_schema())
        .sink(file_sink(FileSinkOptions{.path = path, .format = format}));
    JobResult r = env.execute("write");
    ASSERT_TRUE(r.ok()) << r.status().to_string();
  }
  std::vector<std::string> files;
  for (int i = 0; i < parallelism; ++i) {
    files.push_back(file_sink_path(path, i, parallelism));
    EXPECT_TRUE(fs::exists(files.back())) << files.back();
  }
  if (parallelism > 1) {
    EXPECT_EQ(files[1], tmp.file("out/part-1" + ext));
    EXPECT_FALSE(fs::exists(path));
  }
  for (int read_parallelism : {1, 3}) {
    auto source = file_source(FileSourceOptions{
        .paths = {tmp.file("out")},
        .format = format,
        .schema = format == FileFormat::kArrowIpc ? nullptr : all_types_schema(),
        .chunk_bytes = 1000,
    });
    ASSERT_TRUE(source.is_ok()) << source.status().to_string();
    EXPECT_EQ((*source)->num_splits(), parallelism);
    EXPECT_TRUE(*(*source)->schema() == *all_types_schema());
    Environment env(EnvironmentOptions{.parallelism = read_parallelism, .batch_size = 50});
    auto out = env.from_source(*source, "files").collect();
    JobResult r = env.execute("read");
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ(rows_of(out->batches()), rows_of(input));
    for (const RecordBatch& b : out->batches()) EXPECT_LE(b.num_rows(), 50);
  }
}

INSTANTIATE_TEST_SUITE_P(AllFormats, FileRoundTrip,
                         ::testing::Combine(::testing::Values(FileFormat::kJsonLines,
                                                              FileFormat::kCsv,
                                                              FileFormat::kArrowIpc),
                                            ::testing::Values(1, 3)),
                         [](const auto& info) {
                           return std::string(file_format_name(std::get<0>(info.param))) + "_p" +
                                  std::to_string(std::get<1>(info.param));
                         });

TEST(FileSource, SmallChunksAndBatchesGiveTheSameRowsAsTheCodec) {
  TempDir tmp;
  std::mt19937_64 rng(5);
  RecordBatch all = random_batch(rng, 0, 500);
  std::string csv = codec::CsvEncoder().encode(all);
  std::string jsonl = codec::JsonEncoder().encode_lines(all);
  write_file(tmp.file("a.csv"), csv);
  write_file(tmp.file("a.jsonl"), jsonl);
  for (int64_t chunk : {1, 3, 17, 4096, 1 << 20}) {
    for (int64_t max_rows : {1, 7, 1000}) {
      for (auto [format, file] : {std::pair{FileFormat::kCsv, tmp.file("a.csv")},
                                  std::pair{FileFormat::kJsonLines, tmp.file("a.jsonl")}}) {
        if (chunk == 1 && max_rows != 7) continue;  // slow and adds nothing
        auto source = file_source(FileSourceOptions{
            .paths = {file}, .format = format, .schema = all_types_schema(), .chunk_bytes = chunk});
        ASSERT_TRUE(source.is_ok()) << source.status().to_string();
        auto batches = read_all(**source, max_rows);
        ASSERT_TRUE(batches.is_ok()) << batches.status().to_string();
        auto got = columnar::concat(std::span<const RecordBatch>(*batches));
        ASSERT_TRUE(got.is_ok());
        EXPECT_TRUE(got->equals(all))
            << "chunk " << chunk << " max_rows " << max_rows << " " << file_format_name(format);
      }
    }
  }
}

TEST(FileSource, ReadsADirectorysFilesInNameOrderAndReportsPositions) {
  TempDir tmp;
  auto schema = columnar::schema({field("n", columnar::int64())});
  write_file(tmp.file("b.jsonl"), "{\"n\":3}\n{\"n\":4}\n");
  write_file(tmp.file("a.jsonl"), "{\"n\":1}\n\n{\"n\":2}");
  fs::create_directory(tmp.file("sub"));  // not read: not a regular file
  write_file(tmp.file("sub/c.jsonl"), "{\"n\":99}\n");
  auto source = file_source(FileSourceOptions{.paths = {tmp.path()}, .schema = schema});
  ASSERT_TRUE(source.is_ok()) << source.status().to_string();
  std::vector<std::string> positions;
  auto batches = read_all(**source, 1, nullptr, &positions);
  ASSERT_TRUE(batches.is_ok());
  auto got = columnar::concat(std::span<const RecordBatch>(*batches)).value();
  EXPECT_TRUE(got.column(0).equals(columnar::int64_array({1, 2, 3, 4})));
  EXPECT_EQ(positions.front(), "a.jsonl:1");
  EXPECT_NE(std::find(positions.begin(), positions.end(), "a.jsonl:2"), positions.end());
  EXPECT_NE(std::find(positions.begin(), positions.end(), "b.jsonl:2"), positions.end());
  EXPECT_NE(std::find(positions.begin(), positions.end(), "b.jsonl:3"), positions.end());
  EXPECT_EQ(positions.back(), "done");
}

TEST(FileSource, BadRecordFailsTheJobWithPathLineOffsetAndReason) {
  TempDir tmp;
  auto schema =
      columnar::schema({field("id", columnar::int64()), field("amount", columnar::float64())});
  write_file(tmp.file("t.jsonl"), "{\"id\":1,\"amount\":2}\n{\"id\":2,\"amount\":\"abc\"}\n");
  write_file(tmp.file("t.csv"), "id,amount\n1,2\n2,abc\n");
  for (auto [format, file] : {std::pair{FileFormat::kJsonLines, tmp.file("t.jsonl")},
                              std::pair{FileFormat::kCsv, tmp.file("t.csv")}}) {
    Environment env;
    auto source =
        file_source(FileSourceOptions{.paths = {file}, .format = format, .schema = schema});
    ASSERT_TRUE(source.is_ok());
    env.from_source(*source).blackhole();
    JobResult r = env.execute("bad");
    ASSERT_FALSE(r.ok());
    const std::string msg = r.status().to_string();
    EXPECT_NE(msg.find(file), std::string::npos) << msg;
    EXPECT_NE(msg.find("amount"), std::string::npos) << msg;
    if (format == FileFormat::kCsv) {
      EXPECT_NE(msg.find("at byte 14: line 3, column 'amount': expected a number, got 'abc'"),
                std::string::npos)
          << msg;
    } else {
      EXPECT_NE(msg.find("line 2 (byte 20)"), std::string::npos) << msg;
    }
  }
}

TEST(FileSource, SkipPolicyDropsAndCountsBadRecords) {
  TempDir tmp;
  auto schema = columnar::schema({field("id", columnar::int32(), false)});
  std::string jsonl, csv = "id\n";
  int64_t bad = 0, good = 0;
  for (int i = 0; i < 1000; ++i) {
    if (i % 7 == 3) {
      jsonl += "{\"id\":\"x\"}\n";
      csv += "99999999999\n";
      ++bad;
    } else {
      jsonl += "{\"id\":" + std::to_string(i) + "}\n";
      csv += std::to_string(i) + "\n";
      ++good;
    }
  }
  write_file(tmp.file("s.jsonl"), jsonl);
  write_file(tmp.file("s.csv"), csv);
  for (auto [format, file] : {std::pair{FileFormat::kJsonLines, tmp.file("s.jsonl")},
                              std::pair{FileFormat::kCsv, tmp.file("s.csv")}}) {
    Environment env(EnvironmentOptions{.batch_size = 64});
    auto source = file_source(FileSourceOptions{.paths = {file},
                                                .format = format,
                                                .schema = schema,
                                                .bad_records = BadRecordPolicy::kSkip,
                                                .chunk_bytes = 100});
    ASSERT_TRUE(source.is_ok());
    auto out = env.from_source(*source, "files").collect();
    JobResult r = env.execute("skip");
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ(out->num_rows(), good);
    EXPECT_EQ(r.metrics().get("files").records_dropped, bad) << r.metrics().to_string();
  }
}

TEST(FileSource, RefusesMissingFilesAndMissingSchemaBeforeTheJobRuns) {
  TempDir tmp;
  auto r = file_source(FileSourceOptions{.paths = {tmp.file("nope.csv"), tmp.file("gone.csv")},
                                         .format = FileFormat::kCsv});
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find(tmp.file("nope.csv")), std::string::npos);
  EXPECT_NE(r.status().message().find(tmp.file("gone.csv")), std::string::npos);
  EXPECT_NE(r.status().message().find("needs a schema"), std::string::npos);
  EXPECT_FALSE(file_source(FileSourceOptions{}).is_ok());
  write_file(tmp.file("x.jsonl"), "{}\n");
  auto dlq = file_source(FileSourceOptions{.paths = {tmp.file("x.jsonl")},
                                           .schema = all_types_schema(),
                                           .bad_records = BadRecordPolicy::kDeadLetter});
  EXPECT_FALSE(dlq.is_ok());
}

TEST(FileSource, ArrowIpcSchemaIsReadAndChecked) {
  TempDir tmp;
  std::mt19937_64 rng(3);
  RecordBatch b = random_batch(rng, 0, 1000);
  auto bytes = columnar::write_ipc_stream({b}).value();
  write_file(tmp.file("a.arrow"), std::string(bytes.begin(), bytes.end()));
  auto other = columnar::schema({field("x", columnar::int64())});
  auto mismatch = file_source(FileSourceOptions{
      .paths = {tmp.file("a.arrow")}, .format = FileFormat::kArrowIpc, .schema = other});
  ASSERT_FALSE(mismatch.is_ok());
  EXPECT_NE(mismatch.status().message().find(tmp.file("a.arrow")), std::string::npos);
  write_file(tmp.file("junk.arrow"), "not arrow at all");
  auto junk = file_source(
      FileSourceOptions{.paths = {tmp.file("junk.arrow")}, .format = FileFormat::kArrowIpc});
  ASSERT_FALSE(junk.is_ok());
  EXPECT_NE(junk.status().message().find("junk.arrow"), std::string::npos);
  auto ok = file_source(
      FileSourceOptions{.paths = {tmp.file("a.arrow")}, .format = FileFormat::kArrowIpc});
  ASSERT_TRUE(ok.is_ok()) << ok.status().to_string();
  auto batches = read_all(**ok, 300);
  ASSERT_TRUE(batches.is_ok());
  EXPECT_EQ(batches->size(), 4u);  // 1000 rows in slices of at most 300
  EXPECT_TRUE(columnar::concat(std::span<const RecordBatch>(*batches)).value().equals(b));
}

TEST(FileSink, MissingDirectoryIsRefusedBeforeTheJobRuns) {
  TempDir tmp;
  std::mt19937_64 rng(1);
  Environment env;
  env.from_batches({random_batch(rng, 0, 10)})
      .sink(file_sink(
          FileSinkOptions{.path = tmp.file("no/such/dir/out.csv"), .format = FileFormat::kCsv}));
  Status s = env.validate();
  ASSERT_FALSE(s.is_ok());
  EXPECT_NE(s.to_string().find(tmp.file("no/such/dir")), std::string::npos) << s.to_string();
  EXPECT_FALSE(env.execute().ok());
}

TEST(FileSink, EmptyOutputStillHasAHeaderOrASchema) {
  TempDir tmp;
  for (FileFormat format : {FileFormat::kCsv, FileFormat::kArrowIpc, FileFormat::kJsonLines}) {
    const std::string path =
        tmp.file(std::string("empty.") + std::string(file_format_name(format)));
    Environment env;
    env.from_batches({}, all_types_schema())
        .sink(file_sink(FileSinkOptions{.path = path, .format = format}));
    JobResult r = env.execute("empty");
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    std::string bytes = read_file(path);
    if (format == FileFormat::kCsv) {
      EXPECT_EQ(bytes, "b,i32,i64,u64,f64,s,bin,ts\n");
    } else if (format == FileFormat::kJsonLines) {
      EXPECT_EQ(bytes, "");
    } else {
      auto buf = columnar::Buffer::copy_of(bytes.data(), static_cast<int64_t>(bytes.size()));
      auto read = columnar::read_ipc_stream(buf);
      ASSERT_TRUE(read.is_ok()) << read.status().to_string();
      EXPECT_TRUE(*read->first == *all_types_schema());
      EXPECT_TRUE(read->second.empty());
    }
  }
}

// The output's parent is a regular file, so opening fails with ENOTDIR for every user: root
// (as CI runs) ignores permission bits, so a read-only directory would not do.
TEST(FileSink, UnwritableFileFailsTheJobNamingIt) {
  TempDir tmp;
  { std::ofstream(tmp.file("not_a_dir")) << "a regular file\n"; }
  const std::string path = tmp.file("not_a_dir/out.jsonl");
  std::mt19937_64 rng(1);
  Environment env;
  env.from_batches({random_batch(rng, 0, 10)}).sink(file_sink(FileSinkOptions{.path = path}));
  JobResult r = env.execute("unwritable");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().to_string().find(path), std::string::npos) << r.status().to_string();
  EXPECT_TRUE(fs::is_regular_file(tmp.file("not_a_dir")));
}

TEST(FileSink, DiskFullFailsTheJobNamingTheFile) {
  if (!fs::exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  std::mt19937_64 rng(1);
  Environment env;
  env.from_batches({random_batch(rng, 0, 100)})
      .sink(file_sink(FileSinkOptions{.path = "/dev/full", .buffer_bytes = 64}));
  JobResult r = env.execute("full");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().to_string().find("/dev/full"), std::string::npos) << r.status().to_string();
}

TEST(FileSink, PathPerSubtask) {
  EXPECT_EQ(file_sink_path("/x/out.csv", 0, 1), "/x/out.csv");
  EXPECT_EQ(file_sink_path("/x/out.csv", 2, 3), "/x/out-2.csv");
  EXPECT_EQ(file_sink_path("out", 1, 2), "out-1");
  EXPECT_EQ(file_sink_path("a/b.tar.gz", 0, 2), "a/b.tar-0.gz");
}

}  // namespace
}  // namespace sabot::connectors
