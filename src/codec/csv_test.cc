#include "sabot/codec/csv.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "sabot/columnar/builder.h"

namespace sabot::codec {
namespace {

using columnar::Array;
using columnar::field;
using columnar::RecordBatch;
using columnar::SchemaPtr;
using columnar::TimeUnit;

// Options with some fields changed (designated initializers warn about the skipped string field).
template <typename F>
CsvOptions options_with(F change) {
  CsvOptions o;
  change(o);
  return o;
}

SchemaPtr all_types_schema(bool nullable = true) {
  return columnar::schema({
      field("b", columnar::boolean(), nullable),
      field("i32", columnar::int32(), nullable),
      field("i64", columnar::int64(), nullable),
      field("u64", columnar::uint64(), nullable),
      field("f64", columnar::float64(), nullable),
      field("s", columnar::utf8(), nullable),
      field("bin", columnar::binary(), nullable),
      field("ts", columnar::timestamp(TimeUnit::kMicro), nullable),
  });
}

// Strings that need every kind of quoting, plus ordinary ones.
std::string random_text(std::mt19937_64& rng) {
  static const std::vector<std::string> pieces = {
      "a", "xyz", ",", "\"", "\"\"", "\n", "\r\n", "\r", " ", "\t", "é", "日本", "null", "0", ";"};
  std::string s;
  int n = static_cast<int>(rng() % 6);
  for (int i = 0; i < n; ++i) s += pieces[rng() % pieces.size()];
  return s;
}

std::string random_bytes(std::mt19937_64& rng) {
  std::string s(rng() % 12, '\0');
  for (char& c : s) c = static_cast<char>(rng() % 256);
  return s;
}

// A batch of `n` random rows of every type, nulls with probability `null_p`.
RecordBatch random_batch(std::mt19937_64& rng, int64_t n, double null_p) {
  std::uniform_real_distribution<double> unit(0, 1);
  columnar::BooleanBuilder b;
  columnar::Int32Builder i32;
  columnar::Int64Builder i64;
  columnar::UInt64Builder u64;
  columnar::Float64Builder f64;
  columnar::StringBuilder s(columnar::utf8());
  columnar::BinaryBuilder bin(columnar::binary());
  columnar::Int64Builder ts(columnar::timestamp(TimeUnit::kMicro));
  auto null = [&] { return unit(rng) < null_p; };
  for (int64_t r = 0; r < n; ++r) {
    null() ? b.append_null() : b.append(rng() % 2 == 0);
    null() ? i32.append_null() : i32.append(static_cast<int32_t>(rng()));
    null() ? i64.append_null() : i64.append(static_cast<int64_t>(rng()));
    null() ? u64.append_null() : u64.append(rng());
    if (null()) {
      f64.append_null();
    } else {
      switch (rng() % 4) {
        case 0:
          f64.append(static_cast<double>(static_cast<int64_t>(rng() % 2000)) - 1000);
          break;
        case 1:
          f64.append(std::ldexp(unit(rng), static_cast<int>(rng() % 600) - 300));
          break;
        case 2:
          f64.append(-unit(rng));
          break;
        default:
          f64.append(rng() % 2 ? std::numeric_limits<double>::max() : -0.0);
      }
    }
    null() ? s.append_null() : s.append(random_text(rng));
    null() ? bin.append_null() : bin.append(random_bytes(rng));
    null() ? ts.append_null() : ts.append(static_cast<int64_t>(rng() % 4000000000000000ULL));
  }
  return RecordBatch::make(all_types_schema(),
                           {b.finish(), i32.finish(), i64.finish(), u64.finish(), f64.finish(),
                            s.finish(), bin.finish(), ts.finish()})
      .value();
}

DecodeResult decode_all(const SchemaPtr& schema, std::string_view text, CsvOptions options = {}) {
  CsvDecoder d = CsvDecoder::make(schema, options).value();
  Result<DecodeResult> r = d.decode(text);
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  return r.is_ok() ? std::move(r).value() : DecodeResult{};
}

// Streams `text` in the given pieces, at most `max_records` per batch; concatenates the output.
Result<DecodeResult> decode_streamed(const SchemaPtr& schema,
                                     const std::vector<std::string>& pieces, int64_t max_records,
                                     CsvOptions options = {}) {
  SABOT_ASSIGN_OR_RETURN(CsvDecoder d, CsvDecoder::make(schema, options));
  std::vector<RecordBatch> batches;
  DecodeResult all;
  auto drain = [&]() -> Status {
    for (;;) {
      SABOT_ASSIGN_OR_RETURN(DecodeResult r, d.next_batch(max_records));
      if (r.batch.num_rows() == 0 && r.errors.empty()) return Status::ok();
      EXPECT_LE(r.batch.num_rows() + static_cast<int64_t>(r.errors.size()), max_records);
      if (r.batch.num_rows() > 0) batches.push_back(r.batch);
      for (auto& e : r.errors) all.errors.push_back(e);
    }
  };
  for (const auto& p : pieces) {
    d.feed(p);
    SABOT_RETURN_IF_ERROR(drain());
  }
  d.finish_input();
  SABOT_RETURN_IF_ERROR(drain());
  EXPECT_TRUE(d.exhausted());
  if (batches.empty()) {
    all.batch = RecordBatch::make_empty(schema);
  } else {
    SABOT_ASSIGN_OR_RETURN(all.batch, columnar::concat(std::span<const RecordBatch>(batches)));
  }
  return all;
}

void expect_same(const DecodeResult& a, const DecodeResult& b) {
  EXPECT_TRUE(a.batch.equals(b.batch)) << a.batch.to_string() << "\nvs\n" << b.batch.to_string();
  ASSERT_EQ(a.errors.size(), b.errors.size());
  for (size_t i = 0; i < a.errors.size(); ++i) {
    EXPECT_EQ(a.errors[i].index, b.errors[i].index);
    EXPECT_EQ(a.errors[i].byte_offset, b.errors[i].byte_offset);
    EXPECT_EQ(a.errors[i].message, b.errors[i].message);
  }
}

TEST(CsvCodec, RoundTripsEveryTypeWithNullsAndQuoting) {
  std::mt19937_64 rng(7);
  for (int iter = 0; iter < 200; ++iter) {
    int64_t n = static_cast<int64_t>(rng() % 40);
    double null_p = static_cast<double>(rng() % 5) / 4.0;
    RecordBatch batch = random_batch(rng, n + 10, null_p);
    int64_t offset = static_cast<int64_t>(rng() % 10);
    RecordBatch slice = batch.slice(offset, n);
    CsvEncoder enc;
    std::string text = enc.encode(slice);
    DecodeResult r = decode_all(all_types_schema(), text);
    ASSERT_TRUE(r.errors.empty()) << r.errors[0].message << "\n" << text;
    EXPECT_TRUE(r.batch.equals(slice)) << text;
  }
}

TEST(CsvCodec, RoundTripsWithOtherDelimiterQuoteAndNullString) {
  std::mt19937_64 rng(11);
  CsvOptions o{.delimiter = ';', .quote = '\'', .null_string = "NULL", .binary_as_base64 = false};
  for (int iter = 0; iter < 100; ++iter) {
    RecordBatch batch = random_batch(rng, static_cast<int64_t>(rng() % 30), 0.3);
    // Raw binary must be text-safe only in the sense of quoting; any bytes are fine.
    CsvEncoder enc(o);
    std::string text = enc.encode(batch);
    DecodeResult r = decode_all(all_types_schema(), text, o);
    ASSERT_TRUE(r.errors.empty()) << r.errors[0].message;
    EXPECT_TRUE(r.batch.equals(batch)) << text;
  }
}

TEST(CsvCodec, WritesHeaderQuotesAndNullsAsEmpty) {
  auto schema = columnar::schema({field("id", columnar::int64()), field("name,x", columnar::utf8()),
                                  field("ok", columnar::boolean())});
  RecordBatch b = RecordBatch::make(schema, {columnar::int64_array({1, std::nullopt, 3}),
                                             columnar::utf8_array({"a \"q\"", "", std::nullopt}),
                                             columnar::bool_array({true, false, std::nullopt})})
                      .value();
  CsvEncoder enc;
  EXPECT_EQ(enc.encode(b), "id,\"name,x\",ok\n1,\"a \"\"q\"\"\",true\n,\"\",false\n3,,\n");
  // A second batch has no header.
  EXPECT_EQ(enc.encode(b.slice(0, 1)), "1,\"a \"\"q\"\"\",true\n");
  DecodeResult r =
      decode_all(schema, "id,\"name,x\",ok\n1,\"a \"\"q\"\"\",true\n,\"\",false\n3,,\n");
  ASSERT_TRUE(r.errors.empty());
  EXPECT_TRUE(r.batch.equals(b));
}

TEST(CsvCodec, FloatSpecialValuesRoundTrip) {
  auto schema = columnar::schema({field("x", columnar::float64())});
  double inf = std::numeric_limits<double>::infinity();
  RecordBatch b =
      RecordBatch::make(schema, {columnar::float64_array({inf, -inf, -0.0, 5e-324, 1e308, 0.1})})
          .value();
  DecodeResult r = decode_all(schema, CsvEncoder().encode(b));
  ASSERT_TRUE(r.errors.empty());
  EXPECT_TRUE(r.batch.equals(b));
  EXPECT_TRUE(std::signbit(r.batch.column(0).value<double>(2)));
  RecordBatch nan = RecordBatch::make(schema, {columnar::float64_array({std::nan("")})}).value();
  DecodeResult rn = decode_all(schema, CsvEncoder().encode(nan));
  ASSERT_EQ(rn.batch.num_rows(), 1);
  EXPECT_TRUE(std::isnan(rn.batch.column(0).value<double>(0)));
}

TEST(CsvCodec, MatchesColumnsByNameIgnoresExtrasAndNullsMissingNullable) {
  auto schema = columnar::schema({field("a", columnar::int64(), false),
                                  field("b", columnar::utf8()), field("c", columnar::float64())});
  DecodeResult r = decode_all(schema, "extra,c,a\nzz,1.5,7\r\nyy,,8\r\n");
  ASSERT_TRUE(r.errors.empty());
  ASSERT_EQ(r.batch.num_rows(), 2);
  EXPECT_TRUE(r.batch.column(0).equals(columnar::int64_array({7, 8})));
  EXPECT_TRUE(r.batch.column(1).equals(Array::make_null(columnar::utf8(), 2)));
  EXPECT_TRUE(r.batch.column(2).equals(columnar::float64_array({1.5, std::nullopt})));
}

TEST(CsvCodec, RefusesAHeaderWithoutANonNullableColumnOrWithADuplicate) {
  auto schema =
      columnar::schema({field("a", columnar::int64(), false), field("b", columnar::utf8())});
  CsvDecoder d = CsvDecoder::make(schema).value();
  Result<DecodeResult> r = d.decode("b,x\n1,2\n");
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidData);
  EXPECT_NE(r.status().message().find("'a'"), std::string::npos) << r.status().message();
  Result<DecodeResult> dup = d.decode("a,b,a\n1,2,3\n");
  ASSERT_FALSE(dup.is_ok());
  EXPECT_NE(dup.status().message().find("appears twice"), std::string::npos);
}

TEST(CsvCodec, WithoutHeaderColumnsArePositional) {
  auto schema = columnar::schema({field("a", columnar::int32()), field("b", columnar::utf8())});
  DecodeResult r = decode_all(schema, "1,x\n2,\"y\nz\"\n",
                              options_with([](CsvOptions& o) { o.header = false; }));
  ASSERT_TRUE(r.errors.empty());
  EXPECT_TRUE(r.batch.column(0).equals(columnar::int32_array({1, 2})));
  EXPECT_TRUE(r.batch.column(1).equals(columnar::utf8_array({"x", "y\nz"})));
}

TEST(CsvCodec, ReportsBadRecordsWithLineOffsetAndReason) {
  auto schema =
      columnar::schema({field("id", columnar::int32(), false), field("amount", columnar::float64()),
                        field("u", columnar::uint64()), field("s", columnar::utf8())});
  std::string text =
      "id,amount,u,s\n"          // line 1, byte 0
      "1,2.5,3,ok\n"             // line 2, byte 14
      "2,abc,3,ok\n"             // line 3, byte 25
      "3,1,\"multi\nline\",x\n"  // lines 4-5: u is not a number
      "4,1,-1,x\n"               // line 6
      "5,1,1\n"                  // line 7: ragged
      "99999999999,1,1,x\n"      // line 8
      ",1,1,x\n"                 // line 9: null id
      "6,1,1,\xff\xfe\n"         // line 10: invalid UTF-8
      "7,1,1,a\"b\n"             // line 11: quote in unquoted field
      "8,1,1,\"open\n";          // line 12: unterminated at the end
  DecodeResult r = decode_all(schema, text);
  ASSERT_EQ(r.batch.num_rows(), 1);
  ASSERT_EQ(r.errors.size(), 9u);
  EXPECT_EQ(r.errors[0].index, 2);
  EXPECT_EQ(r.errors[0].byte_offset, 25);
  EXPECT_EQ(r.errors[0].message, "line 3, column 'amount': expected a number, got 'abc'");
  EXPECT_EQ(r.errors[1].index, 3);
  EXPECT_EQ(r.errors[1].message, "line 4, column 'u': expected an integer, got 'multi\\x0aline'");
  EXPECT_EQ(r.errors[2].index, 5);
  EXPECT_EQ(r.errors[2].message, "line 6, column 'u': value '-1' out of range for uint64");
  EXPECT_EQ(r.errors[3].message, "line 7, expected 4 fields, got 3");
  EXPECT_EQ(r.errors[4].message, "line 8, column 'id': value '99999999999' out of range for int32");
  EXPECT_EQ(r.errors[5].message, "line 9, column 'id': null in non-nullable field");
  EXPECT_EQ(r.errors[6].message, "line 10, column 's': invalid UTF-8");
  EXPECT_EQ(r.errors[7].index, 10);
  EXPECT_NE(r.errors[7].message.find("quote inside unquoted field 4"), std::string::npos);
  EXPECT_EQ(r.errors[8].index, 11);
  EXPECT_EQ(r.errors[8].byte_offset, static_cast<int64_t>(text.size() - 12));
  EXPECT_NE(r.errors[8].message.find("unterminated quoted field 4"), std::string::npos);
}

TEST(CsvCodec, ParsesEveryBoolAndIntegerSpelling) {
  auto schema = columnar::schema({field("b", columnar::boolean()), field("i", columnar::int64())});
  DecodeResult r = decode_all(
      schema, "b,i\nTRUE, +5\nfalse,-9223372036854775808\n1,\"9223372036854775807\"\n0 ,0\n");
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].message;
  EXPECT_TRUE(r.batch.column(0).equals(columnar::bool_array({true, false, true, false})));
  EXPECT_TRUE(r.batch.column(1).equals(columnar::int64_array(
      {5, std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(), 0})));
  DecodeResult bad = decode_all(schema, "b,i\nyes,1\n1,+-1\n1,9223372036854775808\n1,1.0\n");
  ASSERT_EQ(bad.errors.size(), 4u);
  EXPECT_EQ(bad.batch.num_rows(), 0);
  EXPECT_NE(bad.errors[2].message.find("out of range for int64"), std::string::npos);
}

TEST(CsvCodec, EmptyInputAndHeaderOnlyGiveNoRows) {
  auto schema = all_types_schema();
  EXPECT_EQ(decode_all(schema, "").batch.num_rows(), 0);
  EXPECT_EQ(decode_all(schema, "b,i32").batch.num_rows(), 0);
  EXPECT_EQ(decode_all(schema, "b,i32\n\n\n").batch.num_rows(), 0);
  CsvEncoder enc;
  std::string empty;
  enc.write_header(*schema, empty);
  EXPECT_EQ(empty, "b,i32,i64,u64,f64,s,bin,ts\n");
  enc.encode(RecordBatch::make_empty(schema), empty);
  EXPECT_EQ(empty, "b,i32,i64,u64,f64,s,bin,ts\n");
}

TEST(CsvCodec, OneColumnFileKeepsNullRowsAsEmptyLines) {
  auto schema = columnar::schema({field("s", columnar::utf8())});
  RecordBatch b =
      RecordBatch::make(schema, {columnar::utf8_array({"a", std::nullopt, "", std::nullopt})})
          .value();
  std::string text = CsvEncoder().encode(b);
  EXPECT_EQ(text, "s\na\n\n\"\"\n\n");
  EXPECT_TRUE(decode_all(schema, text).batch.equals(b));
}

TEST(CsvCodec, EveryChunkSplitPointGivesTheSameResult) {
  auto schema = columnar::schema({field("id", columnar::int64()), field("s", columnar::utf8()),
                                  field("f", columnar::float64())});
  std::string text =
      "s,id,f\r\n\"a,\"\"b\"\"\r\nc\",1,2.5\r\nplain,2,x\r\n\r\n\"\",3,\n\"x\ny\",4,1e3\n\"open,5,"
      "6";
  DecodeResult whole = decode_all(schema, text);
  EXPECT_EQ(whole.batch.num_rows(), 3);
  EXPECT_EQ(whole.errors.size(), 2u);
  for (size_t k = 0; k <= text.size(); ++k) {
    for (int64_t max_records : {1, 2, 1000}) {
      auto r = decode_streamed(schema, {text.substr(0, k), text.substr(k)}, max_records);
      ASSERT_TRUE(r.is_ok()) << r.status().to_string();
      SCOPED_TRACE("split at " + std::to_string(k));
      expect_same(*r, whole);
    }
  }
  std::vector<std::string> bytes;
  for (char c : text) bytes.emplace_back(1, c);
  auto r = decode_streamed(schema, bytes, 1);
  ASSERT_TRUE(r.is_ok());
  expect_same(*r, whole);
}

TEST(CsvCodec, RandomStreamsMatchOneShotDecoding) {
  std::mt19937_64 rng(99);
  for (int iter = 0; iter < 40; ++iter) {
    RecordBatch b = random_batch(rng, static_cast<int64_t>(rng() % 200), 0.2);
    std::string text = CsvEncoder().encode(b);
    std::vector<std::string> pieces;
    size_t pos = 0;
    while (pos < text.size()) {
      size_t len = std::min<size_t>(text.size() - pos, 1 + rng() % 64);
      pieces.push_back(text.substr(pos, len));
      pos += len;
    }
    auto r = decode_streamed(all_types_schema(), pieces, 1 + static_cast<int64_t>(rng() % 50));
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    EXPECT_TRUE(r->errors.empty());
    EXPECT_TRUE(r->batch.equals(b));
  }
}

TEST(CsvCodec, StreamingLineNumbersAndOffsetsAreAbsolute) {
  auto schema = columnar::schema({field("n", columnar::int32())});
  CsvDecoder d = CsvDecoder::make(schema).value();
  d.feed("n\n1\n2\nx");
  DecodeResult r1 = d.next_batch(10).value();
  EXPECT_EQ(r1.batch.num_rows(), 2);
  EXPECT_EQ(d.next_line(), 3);
  EXPECT_EQ(d.next_byte_offset(), 6);
  EXPECT_EQ(d.buffered_bytes(), 1);
  d.feed("y\n4\n");
  DecodeResult r2 = d.next_batch(10).value();
  EXPECT_EQ(r2.batch.num_rows(), 1);
  ASSERT_EQ(r2.errors.size(), 1u);
  EXPECT_EQ(r2.errors[0].index, 3);
  EXPECT_EQ(r2.errors[0].byte_offset, 6);
  EXPECT_EQ(r2.errors[0].message, "line 4, column 'n': expected an integer, got 'xy'");
  EXPECT_FALSE(d.exhausted());
  d.finish_input();
  EXPECT_EQ(d.next_batch(10).value().batch.num_rows(), 0);
  EXPECT_TRUE(d.exhausted());
}

TEST(CsvCodec, UnbalancedQuoteBeyondMaxRecordBytesFailsTheStream) {
  auto schema = columnar::schema({field("s", columnar::utf8())});
  CsvDecoder d =
      CsvDecoder::make(schema, options_with([](CsvOptions& o) { o.max_record_bytes = 100; }))
          .value();
  d.feed("s\nok\n\"never closed");
  EXPECT_EQ(d.next_batch(10).value().batch.num_rows(), 1);
  d.feed(std::string(200, 'x'));
  Result<DecodeResult> r = d.next_batch(10);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("line 3"), std::string::npos) << r.status().message();
}

TEST(CsvCodec, HostileInputNeverCrashes) {
  std::mt19937_64 rng(2024);
  auto schema = all_types_schema();
  const std::string alphabet = "\",\n\r\\ 0123456789.e-+aAtrufl\xff\xc3\xa9";
  for (int iter = 0; iter < 2000; ++iter) {
    std::string text = "b,i32,i64,u64,f64,s,bin,ts\n";
    size_t n = rng() % 300;
    for (size_t i = 0; i < n; ++i) text.push_back(alphabet[rng() % alphabet.size()]);
    CsvDecoder d =
        CsvDecoder::make(schema, options_with([&](CsvOptions& o) { o.header = rng() % 2 == 0; }))
            .value();
    Result<DecodeResult> r = d.decode(text);
    if (r.is_ok()) {
      ASSERT_TRUE(r->batch.schema() == *schema);
      for (int c = 0; c < r->batch.num_columns(); ++c) {
        EXPECT_TRUE(r->batch.column(c).validate_full().is_ok());
      }
    }
    size_t k = rng() % (text.size() + 1);
    auto s = decode_streamed(schema, {text.substr(0, k), text.substr(k)}, 7);
    (void)s;
  }
  // A huge field and a huge ragged row.
  auto one = columnar::schema({field("s", columnar::utf8())});
  std::string huge(5 << 20, 'z');
  DecodeResult r = decode_all(one, "s\n\"" + huge + "\"\n");
  ASSERT_EQ(r.batch.num_rows(), 1);
  EXPECT_EQ(r.batch.column(0).string_view(0).size(), huge.size());
  std::string ragged = "s\n" + std::string(100000, ',') + "\n";
  DecodeResult rr = decode_all(one, ragged);
  ASSERT_EQ(rr.errors.size(), 1u);
  EXPECT_EQ(rr.errors[0].message, "line 2, expected 1 fields, got 100001");
}

TEST(CsvCodec, RejectsInconsistentOptions) {
  EXPECT_FALSE(CsvDecoder::make(nullptr).is_ok());
  EXPECT_FALSE(
      CsvDecoder::make(all_types_schema(), options_with([](CsvOptions& o) { o.delimiter = '"'; }))
          .is_ok());
  EXPECT_FALSE(
      CsvDecoder::make(all_types_schema(), options_with([](CsvOptions& o) { o.delimiter = '\n'; }))
          .is_ok());
}

}  // namespace
}  // namespace sabot::codec
