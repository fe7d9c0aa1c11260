// Tests of the JSON codec: round trips of every type, each error kind with its message and index,
// JSON lines, options, and randomized round trips checked against values built by a scalar loop.
#include <gtest/gtest.h>

#include <charconv>
#include <cmath>
#include <ctime>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "sabot/codec/json.h"
#include "sabot/columnar/builder.h"

namespace sabot::codec {
namespace {

using columnar::Array;
using columnar::DataType;
using columnar::Field;
using columnar::RecordBatch;
using columnar::Scalar;
using columnar::SchemaPtr;
using columnar::TimeUnit;
using columnar::TypeId;

JsonDecoder make_decoder(SchemaPtr schema, JsonDecodeOptions options = {}) {
  auto d = JsonDecoder::make(std::move(schema), options);
  EXPECT_TRUE(d.is_ok()) << d.status().to_string();
  return std::move(d).value();
}

DecodeResult decode_strings(JsonDecoder& d, const std::vector<std::string>& messages) {
  std::vector<std::string_view> views(messages.begin(), messages.end());
  auto r = d.decode(std::span<const std::string_view>(views));
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  return std::move(r).value();
}

// The message of the only error, or a note that there was not exactly one.
std::string only_error(const DecodeResult& r) {
  if (r.errors.size() != 1) {
    std::string note = "<";
    note += std::to_string(r.errors.size());
    note += " errors>";
    return note;
  }
  return r.errors[0].message;
}

std::string decode_one_error(const SchemaPtr& schema, const std::string& message,
                             JsonDecodeOptions options = {}) {
  JsonDecoder d = make_decoder(schema, options);
  DecodeResult r = decode_strings(d, {message});
  EXPECT_EQ(r.batch.num_rows(), 0);
  if (r.errors.size() == 1) {
    EXPECT_EQ(r.errors[0].index, 0);
  }
  return only_error(r);
}

const std::vector<DataType>& all_types() {
  static const std::vector<DataType> types = {columnar::boolean(),
                                              columnar::int32(),
                                              columnar::int64(),
                                              columnar::uint64(),
                                              columnar::float64(),
                                              columnar::utf8(),
                                              columnar::binary(),
                                              columnar::timestamp(TimeUnit::kMilli),
                                              columnar::timestamp(TimeUnit::kNano)};
  return types;
}

RecordBatch batch_of(SchemaPtr schema, std::vector<Array> columns) {
  auto b = RecordBatch::make(std::move(schema), std::move(columns));
  EXPECT_TRUE(b.is_ok()) << b.status().to_string();
  return std::move(b).value();
}

// ---------------------------------------------------------------------------------------------
// Round trips

TEST(JsonCodec, RoundTripsEveryTypeWithNulls) {
  using L = std::numeric_limits<int64_t>;
  auto schema = columnar::schema({
      columnar::field("b", columnar::boolean()),
      columnar::field("i32", columnar::int32()),
      columnar::field("i64", columnar::int64()),
      columnar::field("u64", columnar::uint64()),
      columnar::field("f64", columnar::float64()),
      columnar::field("s", columnar::utf8()),
      columnar::field("bin", columnar::binary()),
      columnar::field("ts", columnar::timestamp(TimeUnit::kMicro)),
  });
  std::string all_bytes;
  for (int c = 0; c < 256; ++c) all_bytes.push_back(static_cast<char>(c));
  std::string nul_inside("a\0b", 3);
  RecordBatch in = batch_of(
      schema, {columnar::bool_array({true, std::nullopt, false, true}),
               columnar::int32_array({std::numeric_limits<int32_t>::min(), 0, std::nullopt,
                                      std::numeric_limits<int32_t>::max()}),
               columnar::int64_array({L::min(), L::max(), -1, std::nullopt}),
               columnar::uint64_array(
                   {std::nullopt, 0, std::numeric_limits<uint64_t>::max(), uint64_t{1} << 63}),
               columnar::float64_array({0.1, -0.0, 5e-324, std::nullopt}),
               columnar::utf8_array({"plain", "quote \" back \\ slash / \n\t\r\b\f \x01\x1f",
                                     std::nullopt, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"}),
               columnar::binary_array({all_bytes, "", std::nullopt, nul_inside}),
               columnar::timestamp_array(TimeUnit::kMicro,
                                         {std::nullopt, 1'700'000'000'123'456, L::min(), -1})});
  JsonEncoder encoder;
  auto encoded = encoder.encode(in);
  ASSERT_TRUE(encoded.is_ok()) << encoded.status().to_string();
  JsonDecoder d = make_decoder(schema);
  auto out = d.decode(*encoded);
  ASSERT_TRUE(out.is_ok()) << out.status().to_string();
  EXPECT_TRUE(out->errors.empty()) << out->errors[0].message;
  EXPECT_TRUE(out->batch.equals(in)) << out->batch.to_string() << "\nvs\n" << in.to_string();
  // -0.0 keeps its sign.
  EXPECT_TRUE(std::signbit(out->batch.column(4).value<double>(1)));

  auto lines = d.decode_lines(encoder.encode_lines(in));
  ASSERT_TRUE(lines.is_ok());
  EXPECT_TRUE(lines->errors.empty());
  EXPECT_TRUE(lines->batch.equals(in));
}

TEST(JsonCodec, FloatsRoundTripBitExactly) {
  std::mt19937_64 rng(11);
  auto schema = columnar::schema({columnar::field("x", columnar::float64())});
  columnar::Float64Builder b;
  for (int i = 0; i < 2000; ++i) {
    double d;
    uint64_t bits = rng();
    std::memcpy(&d, &bits, sizeof(d));
    if (!std::isfinite(d)) d = static_cast<double>(static_cast<int64_t>(rng())) / 3.0;
    b.append(d);
  }
  RecordBatch in = batch_of(schema, {b.finish()});
  JsonEncoder encoder;
  std::string text = encoder.encode_lines(in);
  JsonDecoder d = make_decoder(schema);
  auto out = d.decode_lines(text);
  ASSERT_TRUE(out.is_ok());
  ASSERT_TRUE(out->errors.empty())
      << out->errors[0].message << " line " << out->errors[0].index << ": "
      << text.substr(static_cast<size_t>(out->errors[0].byte_offset), 40);
  ASSERT_EQ(out->batch.num_rows(), in.num_rows());
  for (int64_t i = 0; i < in.num_rows(); ++i) {
    double a = in.column(0).value<double>(i), c = out->batch.column(0).value<double>(i);
    ASSERT_EQ(std::memcmp(&a, &c, sizeof(a)), 0) << "row " << i << ": " << a << " vs " << c;
  }
  // Shortest form: the text has no more significant digits than needed.
  EXPECT_NE(text.find("{\"x\":"), std::string::npos);
  EXPECT_EQ(JsonEncoder().encode_lines(batch_of(schema, {columnar::float64_array({0.1, 100})})),
            "{\"x\":0.1}\n{\"x\":100}\n");
}

// A random value of `type` over its whole domain, with the awkward ones often.
Scalar random_scalar(DataType type, std::mt19937_64& rng, bool allow_non_finite) {
  switch (type.id()) {
    case TypeId::kBool:
      return Scalar::of_bool(rng() & 1);
    case TypeId::kInt32:
      return Scalar::of_int32(static_cast<int32_t>(rng() % 3 == 0 ? rng() : rng() % 100));
    case TypeId::kInt64:
      return Scalar::of_int64(static_cast<int64_t>(rng() % 3 == 0 ? rng() : rng() % 100));
    case TypeId::kUInt64:
      return Scalar::of_uint64(rng() % 3 == 0 ? rng() : rng() % 100);
    case TypeId::kTimestamp:
      return Scalar{type, true, static_cast<int64_t>(rng())};
    case TypeId::kFloat64: {
      switch (rng() % 8) {
        case 0:
          if (allow_non_finite) return Scalar::of_float64(std::nan(""));
          return Scalar::of_float64(-0.0);
        case 1:
          if (allow_non_finite) return Scalar::of_float64(-HUGE_VAL);
          return Scalar::of_float64(std::numeric_limits<double>::max());
        case 2:
          return Scalar::of_float64(std::numeric_limits<double>::denorm_min());
        default:
          return Scalar::of_float64(static_cast<double>(static_cast<int64_t>(rng())) /
                                    static_cast<double>((rng() % 1000) + 1));
      }
    }
    case TypeId::kUtf8: {
      static const char* const kPieces[] = {"a",
                                            "\"",
                                            "\\",
                                            "\n",
                                            "\x01",
                                            "\x7f",
                                            "\xc3\xa9",
                                            "\xe2\x82\xac",
                                            "\xf0\x9f\x98\x80",
                                            "" /* NUL */,
                                            " "};
      std::string s;
      int len = static_cast<int>(rng() % 12);
      for (int i = 0; i < len; ++i) {
        size_t k = rng() % 11;
        if (k == 9) {
          s.push_back('\0');
        } else {
          s += kPieces[k];
        }
      }
      return Scalar::of_utf8(std::move(s));
    }
    case TypeId::kBinary: {
      std::string s;
      int len = static_cast<int>(rng() % 12);
      for (int i = 0; i < len; ++i) s.push_back(static_cast<char>(rng()));
      return Scalar::of_binary(std::move(s));
    }
  }
  return Scalar::null(type);
}

// The JSON encoder writes NaN and infinities as null: what a decoded value should be.
Scalar after_round_trip(const Scalar& v) {
  if (v.is_valid && v.type.id() == TypeId::kFloat64 && !std::isfinite(v.as_float64())) {
    return Scalar::null(v.type);
  }
  return v;
}

TEST(JsonCodec, RandomizedRoundTripMatchesScalarModel) {
  std::mt19937_64 rng(20240601);
  JsonEncoder encoder;
  for (int iter = 0; iter < 150; ++iter) {
    // A random schema over every type; nullable fields may hold NaN (written as null).
    std::vector<Field> fields;
    int nf = 1 + static_cast<int>(rng() % 9);
    for (int f = 0; f < nf; ++f) {
      DataType t = all_types()[rng() % all_types().size()];
      fields.push_back(
          columnar::field(std::string("f").append(std::to_string(f)), t, rng() % 3 != 0));
    }
    auto schema = columnar::schema(fields);
    int64_t len = static_cast<int64_t>(rng() % 200);
    int64_t offset = rng() % 3 == 0 ? 0 : static_cast<int64_t>(rng() % 17);
    double null_rate = std::uniform_real_distribution<double>(0, 0.6)(rng);
    std::bernoulli_distribution is_null(null_rate);
    std::vector<Array> columns;
    std::vector<Array> expected;  // what decoding must give: the slice, NaN/Inf as null
    for (const Field& f : fields) {
      auto in_b = columnar::make_builder(f.type);
      auto ex_b = columnar::make_builder(f.type);
      for (int64_t i = 0; i < offset + len; ++i) {
        Scalar v = f.nullable && is_null(rng) ? Scalar::null(f.type)
                                              : random_scalar(f.type, rng, f.nullable);
        if (v.is_valid) {
          in_b->append_scalar(v);
        } else {
          in_b->append_null();
        }
        if (i < offset) continue;
        Scalar e = after_round_trip(v);
        if (e.is_valid) {
          ex_b->append_scalar(e);
        } else {
          ex_b->append_null();
        }
      }
      columns.push_back(in_b->finish().slice(offset, len));
      expected.push_back(ex_b->finish());
    }
    RecordBatch in = batch_of(schema, columns);
    RecordBatch want = batch_of(schema, expected);

    JsonDecoder d = make_decoder(schema);
    DataType out_type = rng() % 2 ? columnar::binary() : columnar::utf8();
    auto encoded = encoder.encode(in, out_type);
    ASSERT_TRUE(encoded.is_ok());
    ASSERT_EQ(encoded->length(), len);
    // Decode a slice of the encoded messages too, so the decoder honours array offsets.
    int64_t skip = len > 0 ? static_cast<int64_t>(rng() % static_cast<uint64_t>(len)) : 0;
    auto out = d.decode(encoded->slice(skip, len - skip));
    ASSERT_TRUE(out.is_ok());
    ASSERT_TRUE(out->errors.empty()) << "iter " << iter << ": " << out->errors[0].message;
    ASSERT_TRUE(out->batch.equals(want.slice(skip, len - skip))) << "iter " << iter;

    auto lines = d.decode_lines(encoder.encode_lines(in));
    ASSERT_TRUE(lines.is_ok());
    ASSERT_TRUE(lines->errors.empty()) << lines->errors[0].message;
    ASSERT_TRUE(lines->batch.equals(want)) << "iter " << iter;
  }
}

TEST(JsonCodec, EmptyInputsGiveEmptyBatches) {
  auto schema = columnar::schema({columnar::field("a", columnar::int64())});
  JsonDecoder d = make_decoder(schema);
  auto r1 = d.decode(Array::make_empty(columnar::binary()));
  ASSERT_TRUE(r1.is_ok());
  EXPECT_EQ(r1->batch.num_rows(), 0);
  EXPECT_EQ(r1->batch.num_columns(), 1);
  EXPECT_TRUE(r1->errors.empty());
  auto r2 = d.decode_lines("");
  ASSERT_TRUE(r2.is_ok());
  EXPECT_EQ(r2->batch.num_rows(), 0);
  auto r3 = d.decode_lines("\n  \n\r\n\t\n");
  ASSERT_TRUE(r3.is_ok());
  EXPECT_EQ(r3->batch.num_rows(), 0);
  EXPECT_TRUE(r3->errors.empty());
  JsonEncoder e;
  RecordBatch empty = RecordBatch::make_empty(schema);
  EXPECT_EQ(e.encode_lines(empty), "");
  auto enc = e.encode(empty);
  ASSERT_TRUE(enc.is_ok());
  EXPECT_EQ(enc->length(), 0);
  // An empty object decodes to all-null when every field is nullable.
  auto r4 = d.decode_lines("{}");
  ASSERT_TRUE(r4.is_ok());
  ASSERT_EQ(r4->batch.num_rows(), 1);
  EXPECT_TRUE(r4->batch.column(0).is_null(0));
}

// ---------------------------------------------------------------------------------------------
// Encoder details

TEST(JsonEncoder, EscapesStringsAndPassesUtf8Through) {
  auto schema = columnar::schema({columnar::field("k\"ey", columnar::utf8())});
  RecordBatch b = batch_of(
      schema,
      {columnar::utf8_array({std::string_view("q\"b\\s/\n\r\t\b\f\x01\x1f\0\x7f\xc3\xa9", 17)})});
  EXPECT_EQ(JsonEncoder().encode_lines(b),
            "{\"k\\\"ey\":\"q\\\"b\\\\s/\\n\\r\\t\\b\\f\\u0001\\u001f\\u0000\x7f\xc3\xa9\"}\n");
}

TEST(JsonEncoder, WritesBinaryAsBase64AndTimestampsAsIntegers) {
  auto schema = columnar::schema({columnar::field("b", columnar::binary()),
                                  columnar::field("t", columnar::timestamp(TimeUnit::kNano))});
  RecordBatch b =
      batch_of(schema, {columnar::binary_array({std::string_view("\xff\x00\x01", 3), "ab"}),
                        columnar::timestamp_array(TimeUnit::kNano, {-5, 17})});
  EXPECT_EQ(JsonEncoder().encode_lines(b),
            "{\"b\":\"/wAB\",\"t\":-5}\n{\"b\":\"YWI=\",\"t\":17}\n");
}

TEST(JsonEncoder, WritesNanAndInfinityAsNull) {
  auto schema = columnar::schema({columnar::field("x", columnar::float64())});
  RecordBatch b =
      batch_of(schema, {columnar::float64_array({std::nan(""), HUGE_VAL, -HUGE_VAL, 1.5})});
  EXPECT_EQ(JsonEncoder().encode_lines(b),
            "{\"x\":null}\n{\"x\":null}\n{\"x\":null}\n{\"x\":1.5}\n");
}

TEST(JsonEncoder, OmitsNullsWhenAsked) {
  auto schema = columnar::schema(
      {columnar::field("a", columnar::int64()), columnar::field("b", columnar::boolean())});
  RecordBatch b = batch_of(schema, {columnar::int64_array({1, std::nullopt, std::nullopt}),
                                    columnar::bool_array({std::nullopt, true, std::nullopt})});
  EXPECT_EQ(JsonEncoder(JsonEncodeOptions{.omit_nulls = true}).encode_lines(b),
            "{\"a\":1}\n{\"b\":true}\n{}\n");
  EXPECT_EQ(JsonEncoder().encode_lines(b),
            "{\"a\":1,\"b\":null}\n{\"a\":null,\"b\":true}\n{\"a\":null,\"b\":null}\n");
  // Omitted nulls decode back to nulls (missing nullable fields are null by default).
  JsonDecoder d = make_decoder(schema);
  auto r = d.decode_lines(JsonEncoder(JsonEncodeOptions{.omit_nulls = true}).encode_lines(b));
  ASSERT_TRUE(r.is_ok());
  EXPECT_TRUE(r->batch.equals(b));
}

TEST(JsonEncoder, RefusesNonStringOutputType) {
  auto schema = columnar::schema({columnar::field("a", columnar::int64())});
  auto r = JsonEncoder().encode(RecordBatch::make_empty(schema), columnar::int64());
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("int64"), std::string::npos);
}

TEST(Base64, RoundTripsRandomBytesAndRejectsBadText) {
  std::mt19937_64 rng(5);
  for (int i = 0; i < 500; ++i) {
    std::string bytes;
    size_t n = rng() % 40;
    for (size_t k = 0; k < n; ++k) bytes.push_back(static_cast<char>(rng()));
    std::string text;
    base64_encode(bytes, text);
    EXPECT_EQ(text.size() % 4, 0u);
    std::string back;
    int64_t pos = -1;
    ASSERT_TRUE(base64_decode(text, back, &pos));
    EXPECT_EQ(back, bytes);
    // Without padding too.
    while (!text.empty() && text.back() == '=') text.pop_back();
    ASSERT_TRUE(base64_decode(text, back, &pos));
    EXPECT_EQ(back, bytes);
  }
  std::string out;
  int64_t pos = -1;
  EXPECT_FALSE(base64_decode("ab!d", out, &pos));
  EXPECT_EQ(pos, 2);
  EXPECT_FALSE(base64_decode("abcde", out, &pos));  // one char left over
  EXPECT_FALSE(base64_decode("ab=", out, &pos));    // padding without a multiple of 4
  EXPECT_FALSE(base64_decode("YR==", out, &pos));   // non-zero leftover bits
  EXPECT_TRUE(base64_decode("", out, &pos));
  EXPECT_EQ(out, "");
}

// ---------------------------------------------------------------------------------------------
// Error kinds, one each, with the message and index

SchemaPtr account_schema() {
  return columnar::schema({
      columnar::field("id", columnar::int64(), /*nullable=*/false),
      columnar::field("amount", columnar::float64()),
      columnar::field("n32", columnar::int32()),
      columnar::field("u", columnar::uint64()),
      columnar::field("ok", columnar::boolean()),
      columnar::field("name", columnar::utf8()),
      columnar::field("raw", columnar::binary()),
      columnar::field("ts", columnar::timestamp(TimeUnit::kMilli)),
  });
}

TEST(JsonDecoderErrors, WrongTypeNamesFieldExpectedAndGot) {
  auto s = account_schema();
  EXPECT_EQ(decode_one_error(s, R"({"id":1,"amount":"12.5"})"),
            "field 'amount': expected a number, got string");
  EXPECT_EQ(decode_one_error(s, R"({"id":"7"})"), "field 'id': expected an integer, got string");
  EXPECT_EQ(decode_one_error(s, R"({"id":1.5})"),
            "field 'id': expected an integer, got number 1.5");
  EXPECT_EQ(decode_one_error(s, R"({"id":1,"ok":1})"),
            "field 'ok': expected a boolean, got number");
  EXPECT_EQ(decode_one_error(s, R"({"id":1,"name":[]})"),
            "field 'name': expected a string, got array");
  EXPECT_EQ(decode_one_error(s, R"({"id":1,"raw":{}})"),
            "field 'raw': expected a string, got object");
  EXPECT_EQ(decode_one_error(s, R"({"id":1,"ts":true})"),
            "field 'ts': expected an integer timestamp, got boolean");
}

TEST(JsonDecoderErrors, OutOfRangeIntegersNameValueAndType) {
  auto s = account_schema();
  EXPECT_EQ(decode_one_error(s, R"({"id":1,"u":-1})"),
            "field 'u': value -1 out of range for uint64");
  EXPECT_EQ(decode_one_error(s, R"({"id":1,"n32":2147483648})"),
            "field 'n32': value 2147483648 out of range for int32");
  EXPECT_EQ(decode_one_error(s, R"({"id":1,"n32":-2147483649})"),
            "field 'n32': value -2147483649 out of range for int32");
  EXPECT_EQ(decode_one_error(s, R"({"id":18446744073709551615})"),
            "field 'id': value 18446744073709551615 out of range for int64");
  // The edges themselves are fine.
  JsonDecoder d = make_decoder(s);
  DecodeResult r = decode_strings(
      d, {R"({"id":-9223372036854775808,"n32":-2147483648,"u":18446744073709551615})"});
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].message;
  EXPECT_EQ(r.batch.column(0).value<int64_t>(0), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(r.batch.column(2).value<int32_t>(0), std::numeric_limits<int32_t>::min());
  EXPECT_EQ(r.batch.column(3).value<uint64_t>(0), std::numeric_limits<uint64_t>::max());
}

TEST(JsonDecoderErrors, MissingAndNullFields) {
  auto s = account_schema();
  EXPECT_EQ(decode_one_error(s, R"({"amount":1})"), "missing field 'id'");
  EXPECT_EQ(decode_one_error(s, R"({"id":null})"), "field 'id': null for a non-nullable field");
  EXPECT_EQ(decode_one_error(s, R"({"id":1})", JsonDecodeOptions{.missing_as_null = false}),
            "missing field 'amount'");
  EXPECT_EQ(decode_one_error(s, R"({"id":1,"extra":2})",
                             JsonDecodeOptions{.ignore_unknown_fields = false}),
            "unknown field 'extra'");
}

TEST(JsonDecoderErrors, MalformedJsonNamesTheByte) {
  auto s = account_schema();
  EXPECT_EQ(decode_one_error(s, R"({"id":1,})"), "malformed JSON at byte 8: expected a string key");
  EXPECT_EQ(decode_one_error(s, R"({"id":1)"), "malformed JSON at byte 7: unexpected end of input");
  EXPECT_EQ(decode_one_error(s, R"({"id":1 "amount":2})"),
            "malformed JSON at byte 8: expected ',' or '}'");
  EXPECT_EQ(decode_one_error(s, R"({"id":tru})"), "malformed JSON at byte 9: invalid literal");
  EXPECT_EQ(decode_one_error(s, R"({"id":1} x)"),
            "malformed JSON at byte 9: unexpected content after the JSON value");
  EXPECT_EQ(decode_one_error(s, R"({"id":01})"), "malformed JSON at byte 7: expected ',' or '}'");
  EXPECT_EQ(decode_one_error(s, R"({"id":1,"name":"a\qb"})"),
            "malformed JSON at byte 18: invalid escape");
  EXPECT_EQ(decode_one_error(s, ""), "empty message");
  EXPECT_EQ(decode_one_error(s, "   "), "empty message");
}

TEST(JsonDecoderErrors, NotAnObjectInvalidUtf8AndBadBase64) {
  auto s = account_schema();
  EXPECT_EQ(decode_one_error(s, "[1,2]"), "expected a JSON object, got array");
  EXPECT_EQ(decode_one_error(s, "42"), "expected a JSON object, got number");
  EXPECT_EQ(decode_one_error(s, "null"), "expected a JSON object, got null");
  EXPECT_EQ(decode_one_error(s, "{\"id\":1,\"name\":\"\xc3\x28\"}"),
            "invalid UTF-8 at byte 16 in field 'name' (0xC3)");
  EXPECT_EQ(decode_one_error(s, "{\"id\":1e999}"),
            "number 1e999 at byte 6 in field 'id' is out of range (not a finite double)");
  EXPECT_EQ(decode_one_error(s, "\xEF\xBB\xBF{\"id\":1}"),
            "malformed JSON at byte 0: a UTF-8 byte-order mark (EF BB BF), accepted only at the "
            "start of a file");
  EXPECT_EQ(decode_one_error(s, "{\"id\":1,\"raw\":\"ab$d\"}"),
            "field 'raw': invalid base64 at position 2");
}

TEST(JsonDecoderErrors, NullElementOfTheInputArrayIsABadRecord) {
  auto s = account_schema();
  JsonDecoder d = make_decoder(s);
  Array messages = columnar::binary_array({R"({"id":1})", std::nullopt, R"({"id":3})"});
  auto r = d.decode(messages);
  ASSERT_TRUE(r.is_ok());
  ASSERT_EQ(r->errors.size(), 1u);
  EXPECT_EQ(r->errors[0].index, 1);
  EXPECT_EQ(r->errors[0].message, "null message");
  EXPECT_TRUE(r->batch.column(0).equals(columnar::int64_array({1, 3})));
}

TEST(JsonDecoderErrors, RefusesNonStringMessageArrays) {
  JsonDecoder d = make_decoder(account_schema());
  auto r = d.decode(columnar::int64_array({1}));
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kTypeError);
}

TEST(JsonDecoderErrors, MakeRefusesNullSchemaAndDuplicateFields) {
  EXPECT_FALSE(JsonDecoder::make(nullptr).is_ok());
  auto dup = columnar::schema(
      {columnar::field("a", columnar::int64()), columnar::field("a", columnar::utf8())});
  auto r = JsonDecoder::make(dup);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("'a'"), std::string::npos);
}

TEST(JsonDecoder, MixedBatchKeepsEveryGoodRecordInOrder) {
  auto s = account_schema();
  JsonDecoder d = make_decoder(s);
  std::vector<std::string> msgs = {R"({"id":0,"name":"zero"})",
                                   R"({"id":"bad"})",
                                   R"({"id":2,"name":"two"})",
                                   R"({"id":3,"name":"three"})",
                                   R"({"id":4,)",
                                   R"({"name":"no id"})",
                                   R"({"id":6,"u":-6})",
                                   R"({"id":7,"name":"seven"})"};
  DecodeResult r = decode_strings(d, msgs);
  ASSERT_EQ(r.errors.size(), 4u);
  EXPECT_EQ(r.errors[0].index, 1);
  EXPECT_EQ(r.errors[1].index, 4);
  EXPECT_EQ(r.errors[2].index, 5);
  EXPECT_EQ(r.errors[3].index, 6);
  EXPECT_EQ(r.errors[3].message, "field 'u': value -6 out of range for uint64");
  EXPECT_TRUE(r.batch.column(0).equals(columnar::int64_array({0, 2, 3, 7})));
  EXPECT_TRUE(r.batch.column(5).equals(columnar::utf8_array({"zero", "two", "three", "seven"})));
  // A bad record in the middle leaves nothing behind: other columns are all null and aligned.
  EXPECT_EQ(r.batch.column(3).null_count(), 4);
}

TEST(JsonDecoder, RandomMixOfGoodAndBadRecordsMatchesScalarModel) {
  // Each record is good or spoiled in one of several ways; the model says which, and what the
  // good rows must hold.
  std::mt19937_64 rng(99);
  auto s = columnar::schema({columnar::field("id", columnar::int64(), false),
                             columnar::field("v", columnar::int32()),
                             columnar::field("name", columnar::utf8())});
  JsonDecoder d = make_decoder(s);
  for (int iter = 0; iter < 50; ++iter) {
    size_t n = rng() % 300;
    double bad_rate = std::uniform_real_distribution<double>(0, 1)(rng);
    std::vector<std::string> msgs;
    std::vector<int64_t> want_bad;
    columnar::Int64Builder ids;
    columnar::Int32Builder vs;
    columnar::StringBuilder names;
    for (size_t i = 0; i < n; ++i) {
      int64_t id = static_cast<int64_t>(rng());
      int32_t v = static_cast<int32_t>(rng());
      std::string name = std::string("n").append(std::to_string(rng() % 1000));
      bool v_null = rng() % 4 == 0;
      std::string vtext = v_null ? "null" : std::to_string(v);
      if (std::bernoulli_distribution(bad_rate)(rng)) {
        switch (rng() % 5) {
          case 0:
            msgs.push_back("{\"v\":" + vtext + "}");
            break;
          case 1:
            msgs.push_back("{\"id\":" + std::to_string(id) + ",\"v\":4294967296}");
            break;
          case 2:
            msgs.push_back("{\"id\":" + std::to_string(id) + ",\"name\":7}");
            break;
          case 3:
            msgs.push_back("{\"id\":" + std::to_string(id) + ",\"name\":\"x\"");
            break;
          default:
            msgs.push_back("{\"id\":" + std::to_string(id) + ",\"v\":1e2}");
            break;
        }
        want_bad.push_back(static_cast<int64_t>(i));
        continue;
      }
      msgs.push_back("{\"name\":\"" + name + "\",\"id\":" + std::to_string(id) + ",\"v\":" + vtext +
                     "}");
      ids.append(id);
      if (v_null) {
        vs.append_null();
      } else {
        vs.append(v);
      }
      names.append(name);
    }
    DecodeResult r = decode_strings(d, msgs);
    std::vector<int64_t> got_bad;
    for (const RecordError& e : r.errors) got_bad.push_back(e.index);
    ASSERT_EQ(got_bad, want_bad) << "iter " << iter;
    RecordBatch want = batch_of(s, {ids.finish(), vs.finish(), names.finish()});
    ASSERT_TRUE(r.batch.equals(want)) << "iter " << iter;
  }
}

// ---------------------------------------------------------------------------------------------
// JSON lines, options, semantics

TEST(JsonDecoder, DecodeLinesReportsLineNumbersAndByteOffsets) {
  auto s = columnar::schema({columnar::field("a", columnar::int64(), false)});
  JsonDecoder d = make_decoder(s);
  std::string text = "{\"a\":1}\r\n\n   \n{\"a\":\"x\"}\n{\"a\":3}\n{\"a\":4}";
  auto r = d.decode_lines(text);
  ASSERT_TRUE(r.is_ok());
  ASSERT_EQ(r->errors.size(), 1u);
  EXPECT_EQ(r->errors[0].index, 3);
  EXPECT_EQ(r->errors[0].byte_offset, static_cast<int64_t>(text.find("{\"a\":\"x\"}")));
  EXPECT_EQ(r->errors[0].message, "field 'a': expected an integer, got string");
  EXPECT_TRUE(r->batch.column(0).equals(columnar::int64_array({1, 3, 4})));
}

TEST(JsonDecoder, DuplicateKeysLastOneWins) {
  auto s = columnar::schema(
      {columnar::field("a", columnar::int64()), columnar::field("b", columnar::utf8())});
  JsonDecoder d = make_decoder(s);
  DecodeResult r = decode_strings(d, {R"({"a":1,"b":"x","a":2,"b":"y"})", R"({"a":"bad","a":5})"});
  // Every occurrence must have the right type: a bad earlier value still spoils the record.
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].index, 1);
  EXPECT_TRUE(r.batch.column(0).equals(columnar::int64_array({2})));
  EXPECT_TRUE(r.batch.column(1).equals(columnar::utf8_array({"y"})));
}

TEST(JsonDecoder, IgnoresUnknownFieldsOfAnyShapeByDefault) {
  auto s = columnar::schema({columnar::field("a", columnar::int64())});
  JsonDecoder d = make_decoder(s);
  DecodeResult r = decode_strings(
      d, {R"({"x":{"y":[1,2,{"z":null}]},"a":7,"w":"s"})", R"({"nested":[[[]]],"a":null})"});
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].message;
  EXPECT_TRUE(r.batch.column(0).equals(columnar::int64_array({7, std::nullopt})));
}

TEST(JsonDecoder, FieldOrderDoesNotMatterAndManyFieldsUseTheIndex) {
  std::vector<Field> fields;
  auto key = [](int i) { return std::string("k").append(std::to_string(i)); };
  for (int i = 0; i < 20; ++i) fields.push_back(columnar::field(key(i), columnar::int64()));
  auto s = columnar::schema(fields);
  JsonDecoder d = make_decoder(s);
  std::string fwd = "{", rev = "{";
  for (int i = 0; i < 20; ++i) {
    for (auto [text, k] : {std::pair<std::string*, int>{&fwd, i}, {&rev, 19 - i}}) {
      if (i > 0) text->push_back(',');
      text->append("\"").append(key(k)).append("\":").append(std::to_string(k));
    }
  }
  DecodeResult r = decode_strings(d, {fwd + "}", rev + "}"});
  ASSERT_TRUE(r.errors.empty());
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(r.batch.column(i).value<int64_t>(0), i);
    EXPECT_EQ(r.batch.column(i).value<int64_t>(1), i);
  }
}

TEST(JsonDecoder, Float64AcceptsIntegersAndBinaryCanBeRaw) {
  auto s = columnar::schema(
      {columnar::field("f", columnar::float64()), columnar::field("b", columnar::binary())});
  JsonDecoder d = make_decoder(s, JsonDecodeOptions{.binary_as_base64 = false});
  DecodeResult r =
      decode_strings(d, {R"({"f":3,"b":"raw \u0000 text"})", R"({"f":-9223372036854775808,"b":""})",
                         R"({"f":18446744073709551615})"});
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].message;
  EXPECT_TRUE(r.batch.column(0).equals(
      columnar::float64_array({3.0, -9223372036854775808.0, 18446744073709551615.0})));
  EXPECT_TRUE(r.batch.column(1).equals(
      columnar::binary_array({std::string_view("raw \0 text", 10), "", std::nullopt})));
}

// Formats epoch seconds as ISO-8601 with the C library, as an independent oracle.
std::string iso_of(int64_t secs, const std::string& fraction, const std::string& zone) {
  std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  return std::string(buf) + fraction + zone;
}

TEST(JsonDecoder, TimestampsAcceptIso8601WhenEnabled) {
  auto s = columnar::schema({columnar::field("t", columnar::timestamp(TimeUnit::kMicro))});
  EXPECT_EQ(decode_one_error(s, R"({"t":"2024-01-01T00:00:00Z"})"),
            "field 't': expected an integer timestamp, got string");
  JsonDecodeOptions opts{.timestamp_accept_iso8601 = true};
  JsonDecoder d = make_decoder(s, opts);
  std::mt19937_64 rng(3);
  std::vector<std::string> msgs;
  columnar::Int64Builder want(columnar::timestamp(TimeUnit::kMicro));
  for (int i = 0; i < 300; ++i) {
    // 1000-01-02 .. 9999-12-30 in seconds (strftime pads years to four digits only from 1000).
    int64_t secs = -30610137600 + static_cast<int64_t>(rng() % 284012265600ull);
    int64_t micros = static_cast<int64_t>(rng() % 1000000);
    int offset_min = static_cast<int>(rng() % 1440) - 720;
    char frac[16];
    std::snprintf(frac, sizeof(frac), ".%06lld", static_cast<long long>(micros));
    char zone[16];
    std::snprintf(zone, sizeof(zone), "%c%02d:%02d", offset_min < 0 ? '-' : '+',
                  std::abs(offset_min) / 60, std::abs(offset_min) % 60);
    // Local wall time at that offset is secs + offset: that is what gets written.
    msgs.push_back("{\"t\":\"" + iso_of(secs + offset_min * 60, frac, zone) + "\"}");
    want.append(secs * 1000000 + micros);
  }
  msgs.push_back(R"({"t":"1970-01-01 00:00:01.5"})");
  want.append(1500000);
  msgs.push_back(R"({"t":1234})");
  want.append(1234);
  DecodeResult r = decode_strings(d, msgs);
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].message;
  EXPECT_TRUE(r.batch.column(0).equals(want.finish()));

  EXPECT_EQ(decode_one_error(s, R"({"t":"2023-02-29T00:00:00Z"})", opts),
            "field 't': invalid ISO-8601 timestamp '2023-02-29T00:00:00Z' for timestamp[us]");
  EXPECT_EQ(decode_one_error(s, R"({"t":"yesterday"})", opts),
            "field 't': invalid ISO-8601 timestamp 'yesterday' for timestamp[us]");
  auto ns = columnar::schema({columnar::field("t", columnar::timestamp(TimeUnit::kNano))});
  // Beyond int64 nanoseconds (year 2262).
  EXPECT_EQ(decode_one_error(ns, R"({"t":"3000-01-01T00:00:00Z"})", opts),
            "field 't': invalid ISO-8601 timestamp '3000-01-01T00:00:00Z' for timestamp[ns]");
}

TEST(JsonDecoder, ReusedAcrossBatchesGivesIndependentResults) {
  auto s = columnar::schema({columnar::field("s", columnar::utf8())});
  JsonDecoder d = make_decoder(s);
  DecodeResult a = decode_strings(d, {R"({"s":"first"})", R"({"s":"second"})"});
  DecodeResult b = decode_strings(d, {R"({"s":"third"})"});
  EXPECT_TRUE(a.batch.column(0).equals(columnar::utf8_array({"first", "second"})));
  EXPECT_TRUE(b.batch.column(0).equals(columnar::utf8_array({"third"})));
}

TEST(JsonDecoderErrors, DecodeLinesAcceptsALeadingByteOrderMark) {
  auto d = JsonDecoder::make(account_schema());
  ASSERT_TRUE(d.is_ok());
  auto r = d->decode_lines("\xEF\xBB\xBF{\"id\":1}\n{\"id\":2}\n\xEF\xBB\xBF{\"id\":3}\n");
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->batch.num_rows(), 2);
  ASSERT_EQ(r->errors.size(), 1u);
  EXPECT_EQ(r->errors[0].index, 2);  // a mark inside the file is named, not skipped
  EXPECT_NE(r->errors[0].message.find("byte-order mark"), std::string::npos);
}

}  // namespace
}  // namespace sabot::codec
