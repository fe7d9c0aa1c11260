// The on-demand fast path of JsonDecoder against its DOM reference path: on valid, odd and broken
// records (random field order, duplicate keys, unknown fields of any shape, escapes, numbers at
// every edge, nesting at the depth limit, trailing content, truncations and byte mutations), both
// must give the same rows and the same errors with the same messages. The fast path must also be
// the one that accepts ordinary records.
#include <gtest/gtest.h>

#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "codec/json_test_access.h"
#include "sabot/codec/json.h"
#include "sabot/columnar/builder.h"

namespace sabot::codec {
namespace {

using columnar::SchemaPtr;
using columnar::TimeUnit;

SchemaPtr all_types_schema(bool nullable) {
  return columnar::schema({
      columnar::field("b", columnar::boolean(), nullable),
      columnar::field("i32", columnar::int32(), nullable),
      columnar::field("i64", columnar::int64(), nullable),
      columnar::field("u64", columnar::uint64(), nullable),
      columnar::field("f64", columnar::float64(), nullable),
      columnar::field("s", columnar::utf8(), nullable),
      columnar::field("bin", columnar::binary(), nullable),
      columnar::field("ts", columnar::timestamp(TimeUnit::kMilli), nullable),
  });
}

template <typename... T>
const char* pick(std::mt19937_64& rng, T... options) {
  const char* all[] = {options...};
  return all[rng() % sizeof...(T)];
}

// Numbers at the edges of every type, and a few that are not JSON numbers at all.
std::string random_number(std::mt19937_64& rng) {
  switch (rng() % 4) {
    case 0:
      return std::to_string(static_cast<int64_t>(rng()) >> (rng() % 64));
    case 1:
      return std::to_string(rng());
    default:
      return pick(rng, "0", "-0", "1", "-1", "2147483647", "2147483648", "-2147483648",
                  "-2147483649", "9223372036854775807", "9223372036854775808",
                  "-9223372036854775808", "-9223372036854775809", "18446744073709551615",
                  "18446744073709551616", "1.5", "-0.0", "1e3", "1E-3", "1.7976931348623157e308",
                  "1e309", "-1e400", "4.9e-324", "1e-400", "123456789012345678901234567890",
                  "0.1e1", "1844674.073709551615", "3.14159265358979323846264338",
                  "-0.00000000000000000000000001", "01", "1.", ".5", "+1", "-", "1e", "0x10", "NaN",
                  "Infinity");
  }
}

std::string random_string(std::mt19937_64& rng) {
  return pick(rng, R"("")", R"("abc")", R"("caf\u00e9 \"q\" \\ \/ \b\f\n\r\t")",
              R"("\ud83d\ude00")", R"("\ud83d")", R"("\ude00")", R"("\x")", R"("\u12")",
              "\"\xC3\xA9\"", "\"\xFF\"", "\"a\tb\"", R"("AAEC")", R"("AAE=")", R"("AA==")",
              R"("A")", R"("2024-01-02T03:04:05.123Z")", R"("2024-02-30T00:00:00Z")",
              R"("2024-01-02 03:04:05+01:00")", R"("not a date")");
}

std::string random_value(std::mt19937_64& rng, int depth);

std::string random_container(std::mt19937_64& rng, int depth) {
  const bool object = rng() % 2 == 0;
  std::string out(1, object ? '{' : '[');
  const int n = depth > 6 ? 0 : static_cast<int>(rng() % 4);
  for (int i = 0; i < n; ++i) {
    if (i > 0) out += ',';
    if (object) out += std::string(pick(rng, "\"k\"", "\"b\"", "\"k\\u0061\"", "\"\"")) + ":";
    out += random_value(rng, depth + 1);
  }
  out += object ? '}' : ']';
  return out;
}

std::string random_value(std::mt19937_64& rng, int depth) {
  switch (rng() % 8) {
    case 0:
    case 1:
      return random_number(rng);
    case 2:
    case 3:
      return random_string(rng);
    case 4:
      return pick(rng, "true", "false", "null", "nul", "tru", "nulll", "True");
    case 5:
      // Deep nesting, around the small depth limits the tests use.
      return std::string(rng() % 7, '[') + "1" + std::string(rng() % 7, ']');
    default:
      return random_container(rng, depth);
  }
}

// A value that usually fits `name`'s type (so that many records are good), sometimes anything.
std::string field_value(std::mt19937_64& rng, const std::string& name) {
  if (rng() % 24 == 0) return random_value(rng, 1);
  if (name == "b") return pick(rng, "true", "false", "null");
  if (name == "s") return pick(rng, R"("x")", R"("caf\u00e9")", R"("\ud83d\ude00")", "null");
  if (name == "bin") return pick(rng, R"("AAEC")", R"("")", R"("AA")", "null");
  if (name == "f64") {
    return pick(rng, "1.25", "-3", "1e10", "18446744073709551615", "-0.0",
                "0.1234567890123456789012");
  }
  if (name == "ts") {
    return pick(rng, "1700000000000", "-1", "0", "42", R"("2024-01-02T03:04:05.123Z")");
  }
  if (name == "u64") return pick(rng, "0", "18446744073709551615", "7");
  return pick(rng, "0", "-5", "2147483647", "-2147483648", "42");
}

std::string random_record(std::mt19937_64& rng) {
  std::vector<std::string> names = {"b", "i32", "i64", "u64", "f64", "s", "bin", "ts"};
  std::shuffle(names.begin(), names.end(), rng);
  std::string out = rng() % 10 == 0 ? " \t{" : "{";
  bool first = true;
  for (const std::string& name : names) {
    if (rng() % 24 == 0) continue;  // missing
    const int copies = rng() % 10 == 0 ? 2 : 1;
    for (int c = 0; c < copies; ++c) {
      if (!first) out += rng() % 20 == 0 ? " , " : ",";
      first = false;
      out += "\"" + name + "\":" + field_value(rng, name);
    }
    if (rng() % 20 == 0) {
      out += std::string(",\"") + pick(rng, "extra", "x\\\"y", "z") + "\":" + random_value(rng, 1);
    }
  }
  out += "}";
  switch (rng() % 16) {
    case 0:
      out += pick(rng, " ", "\t\r", "}", "]", " {}", "x", ",", "\"");
      break;
    case 1:
      out.resize(rng() % (out.size() + 1));  // truncated
      break;
    case 2:
      out[rng() % out.size()] = static_cast<char>(rng());  // one byte changed
      break;
    case 3:
      out.insert(rng() % (out.size() + 1), 1, "{}[]\",:\\ 0e-"[rng() % 13]);
      break;
    case 4:
      out = random_value(rng, 0);  // not an object, or an object of anything
      break;
    default:
      break;
  }
  return out;
}

struct Outcome {
  int64_t rows = 0;
  int64_t errors = 0;
  int64_t fast = 0;  // rows the fast path accepted
};

void expect_same_as_reference(const SchemaPtr& schema, const JsonDecodeOptions& options,
                              const std::vector<std::string>& messages, const std::string& what,
                              Outcome* outcome = nullptr) {
  auto fast = JsonDecoder::make(schema, options);
  auto reference = JsonDecoder::make(schema, options);
  ASSERT_TRUE(fast.is_ok() && reference.is_ok());
  JsonDecoderTestAccess::set_dom_only(*reference, true);
  std::vector<std::string_view> views(messages.begin(), messages.end());
  auto a = fast->decode(std::span<const std::string_view>(views));
  auto b = reference->decode(std::span<const std::string_view>(views));
  ASSERT_TRUE(a.is_ok() && b.is_ok());
  ASSERT_EQ(a->errors.size(), b->errors.size()) << what;
  for (size_t i = 0; i < a->errors.size(); ++i) {
    ASSERT_EQ(a->errors[i].index, b->errors[i].index) << what;
    ASSERT_EQ(a->errors[i].message, b->errors[i].message)
        << what << ": " << messages[static_cast<size_t>(a->errors[i].index)];
  }
  ASSERT_TRUE(a->batch.equals(b->batch)) << what;
  // The same through a binary array (records read in place, padding permitting) and as JSON
  // lines (likewise).
  columnar::BinaryBuilder builder(columnar::binary());
  std::string lines;
  for (const std::string& m : messages) {
    builder.append(m);
    lines += m + "\n";
  }
  auto from_array = fast->decode(builder.finish());
  ASSERT_TRUE(from_array.is_ok());
  ASSERT_EQ(from_array->errors.size(), b->errors.size()) << what;
  for (size_t i = 0; i < b->errors.size(); ++i) {
    ASSERT_EQ(from_array->errors[i].message, b->errors[i].message) << what;
  }
  ASSERT_TRUE(from_array->batch.equals(b->batch)) << what;
  auto fast_lines = fast->decode_lines(lines);
  auto reference_lines = reference->decode_lines(lines);
  ASSERT_TRUE(fast_lines.is_ok() && reference_lines.is_ok());
  ASSERT_EQ(fast_lines->errors.size(), reference_lines->errors.size()) << what;
  for (size_t i = 0; i < fast_lines->errors.size(); ++i) {
    ASSERT_EQ(fast_lines->errors[i].index, reference_lines->errors[i].index) << what;
    ASSERT_EQ(fast_lines->errors[i].message, reference_lines->errors[i].message) << what;
  }
  ASSERT_TRUE(fast_lines->batch.equals(reference_lines->batch)) << what;
  EXPECT_EQ(JsonDecoderTestAccess::fast_path_records(*reference), 0);
  if (outcome != nullptr) {
    outcome->rows += a->batch.num_rows();
    outcome->errors += static_cast<int64_t>(a->errors.size());
    outcome->fast += JsonDecoderTestAccess::fast_path_records(*fast) / 3;  // three passes
  }
}

TEST(JsonOnDemand, RandomRecordsDecodeExactlyAsTheDomReference) {
  std::mt19937_64 rng(20261205);
  int64_t records = 0;
  Outcome outcome;
  for (int round = 0; round < 64; ++round) {
    JsonDecodeOptions options;
    options.ignore_unknown_fields = round % 2 == 0;
    options.missing_as_null = round % 4 < 2;
    options.binary_as_base64 = round % 8 < 4;
    options.timestamp_accept_iso8601 = round % 16 < 8;
    options.max_depth = round % 32 < 16 ? 1024 : 2 + round % 6;
    const bool nullable = round % 3 != 0;
    std::vector<std::string> messages;
    for (int i = 0; i < 300; ++i) messages.push_back(random_record(rng));
    records += static_cast<int64_t>(messages.size());
    expect_same_as_reference(all_types_schema(nullable), options, messages,
                             "round " + std::to_string(round), &outcome);
  }
  EXPECT_EQ(outcome.rows + outcome.errors, records);
  // Both verdicts must be common, and most good rows must come from the fast path, or the
  // comparison proves little.
  EXPECT_GT(outcome.rows, records / 10);
  EXPECT_GT(outcome.errors, records / 4);
  EXPECT_GT(outcome.fast, outcome.rows / 2);
  std::printf("%lld records: %lld rows (%lld by the fast path), %lld errors\n",
              static_cast<long long>(records), static_cast<long long>(outcome.rows),
              static_cast<long long>(outcome.fast), static_cast<long long>(outcome.errors));
}

TEST(JsonOnDemand, NestingAroundEveryDepthLimitMatchesTheReference) {
  for (int max_depth = 1; max_depth <= 8; ++max_depth) {
    std::vector<std::string> messages;
    for (int levels = 0; levels <= 10; ++levels) {
      const std::string nested = std::string(static_cast<size_t>(levels), '[') + "1" +
                                 std::string(static_cast<size_t>(levels), ']');
      std::string objects = "1";
      for (int l = 0; l < levels; ++l) objects = "{\"k\":" + objects + "}";
      messages.push_back(R"({"i64":1,"extra":)" + nested + "}");
      messages.push_back(R"({"i64":1,"extra":)" + objects + "}");
      messages.push_back(R"({"extra":)" + nested + R"(,"i64":2})");
    }
    JsonDecodeOptions options;
    options.max_depth = max_depth;
    expect_same_as_reference(all_types_schema(true), options, messages,
                             "max_depth " + std::to_string(max_depth));
  }
}

TEST(JsonOnDemand, TrailingContentAndTruncationsAreRefusedLikeTheReference) {
  const std::string valid =
      R"({"b":true,"i32":-7,"i64":123,"u64":9,"f64":1.5,"s":"x","bin":"AAEC","ts":17,)"
      R"("extra":{"a":[1,2,{"c":null}],"d":"e"}})";
  std::vector<std::string> messages;
  for (size_t n = 0; n <= valid.size(); ++n) messages.push_back(valid.substr(0, n));
  for (const char* tail : {" ", "\n", "}", "]", "{}", "1", "x", ",", "\"", " \"a\":1}", "\0"}) {
    messages.push_back(valid + tail);
  }
  expect_same_as_reference(all_types_schema(true), {}, messages, "truncations");
}

TEST(JsonOnDemand, KeysMatchByTheirValueNotTheirBytes) {
  const SchemaPtr schema = columnar::schema({
      columnar::field("ab", columnar::int64()),
      columnar::field("a\"b", columnar::int64()),
      columnar::field("abcdefghijklmnopqrstuvwxyz0123456789", columnar::int64()),
      columnar::field("caf\xC3\xA9", columnar::int64()),
  });
  const std::vector<std::string> messages = {
      R"({"ab":1,"a\"b":2,"abcdefghijklmnopqrstuvwxyz0123456789":3,"café":4})",
      R"({"a\u0062":1,"a\u0022b":2,"caf\u00e9":4})",
      R"({"a":1,"abc":2,"ab ":3,"abcdefghijklmnopqrstuvwxyz":4})",
      R"({"ab":1})",
      R"({"a)",
      R"({"abcdefghijklmnopqrstuvwxyz0123456789)",
  };
  for (bool ignore_unknown : {true, false}) {
    JsonDecodeOptions options;
    options.ignore_unknown_fields = ignore_unknown;
    expect_same_as_reference(schema, options, messages, "keys");
  }
}

TEST(JsonOnDemand, OrdinaryRecordsTakeTheFastPath) {
  auto decoder = JsonDecoder::make(all_types_schema(true), {});
  ASSERT_TRUE(decoder.is_ok());
  std::vector<std::string> messages = {
      R"({"b":true,"i32":-7,"i64":123,"u64":9,"f64":1.5,"s":"x","bin":"AAEC","ts":17})",
      R"({"ts":17,"s":"caf\u00e9","unknown":[1,{"a":null}],"i64":-1})",
      R"({"i64":1,"i64":2,"f64":3})",
      R"({"b":"not a bool"})",
  };
  std::vector<std::string_view> views(messages.begin(), messages.end());
  auto r = decoder->decode(std::span<const std::string_view>(views));
  ASSERT_TRUE(r.is_ok());
  ASSERT_EQ(r->batch.num_rows(), 3);
  ASSERT_EQ(r->errors.size(), 1u);
  EXPECT_EQ(r->errors[0].message, "field 'b': expected a boolean, got string");
  EXPECT_EQ(JsonDecoderTestAccess::fast_path_records(*decoder), 3);
}

}  // namespace
}  // namespace sabot::codec
