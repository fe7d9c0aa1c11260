// Hostile input for the JSON decoder: truncation, deep nesting, huge strings, invalid UTF-8, NUL
// bytes, enormous numbers and random mutations. The decoder must never crash or hang, must report
// every bad record, and must keep the batch and the error list consistent.
#include <gtest/gtest.h>

#include <random>
#include <set>
#include <string>
#include <vector>

#include "sabot/codec/json.h"
#include "sabot/columnar/builder.h"

namespace sabot::codec {
namespace {

using columnar::RecordBatch;
using columnar::SchemaPtr;
using columnar::TimeUnit;

SchemaPtr event_schema() {
  return columnar::schema({
      columnar::field("id", columnar::int64(), false),
      columnar::field("account", columnar::utf8()),
      columnar::field("amount", columnar::float64()),
      columnar::field("n", columnar::int32()),
      columnar::field("u", columnar::uint64()),
      columnar::field("flag", columnar::boolean()),
      columnar::field("blob", columnar::binary()),
      columnar::field("ts", columnar::timestamp(TimeUnit::kMilli)),
  });
}

const char* const kValid =
    R"({"id":123456,"account":"ACC-00012345","amount":1234.56,"n":-7,"u":9,"flag":true,)"
    R"("blob":"AAEC","ts":1700000000000})";

JsonDecoder make_decoder(SchemaPtr schema = event_schema()) {
  auto d = JsonDecoder::make(std::move(schema));
  EXPECT_TRUE(d.is_ok());
  return std::move(d).value();
}

DecodeResult decode(JsonDecoder& d, const std::vector<std::string>& messages) {
  std::vector<std::string_view> views(messages.begin(), messages.end());
  auto r = d.decode(std::span<const std::string_view>(views));
  EXPECT_TRUE(r.is_ok());
  return std::move(r).value();
}

// Every input is either a row or an error, errors in increasing index order.
void expect_consistent(const DecodeResult& r, size_t inputs) {
  EXPECT_EQ(static_cast<size_t>(r.batch.num_rows()) + r.errors.size(), inputs);
  for (size_t i = 1; i < r.errors.size(); ++i) EXPECT_LT(r.errors[i - 1].index, r.errors[i].index);
  for (const RecordError& e : r.errors) EXPECT_FALSE(e.message.empty());
  for (int c = 0; c < r.batch.num_columns(); ++c) {
    EXPECT_TRUE(r.batch.column(c).validate_full().is_ok());
  }
}

TEST(JsonHostile, EveryTruncationOfAValidRecordIsAnError) {
  JsonDecoder d = make_decoder();
  std::string valid = kValid;
  std::vector<std::string> prefixes;
  for (size_t n = 0; n < valid.size(); ++n) prefixes.push_back(valid.substr(0, n));
  prefixes.push_back(valid);
  DecodeResult r = decode(d, prefixes);
  expect_consistent(r, prefixes.size());
  ASSERT_EQ(r.errors.size(), valid.size());
  ASSERT_EQ(r.batch.num_rows(), 1);
  for (size_t n = 1; n < valid.size(); ++n) {
    EXPECT_EQ(r.errors[n].message,
              "malformed JSON at byte " + std::to_string(n) + ": unexpected end of input")
        << "prefix of " << n << " bytes";
  }
}

TEST(JsonHostile, TenThousandLevelsOfNestingAreRefused) {
  JsonDecoder d = make_decoder();
  std::string open(10000, '[');
  std::string closed = open + std::string(10000, ']');
  std::vector<std::string> msgs = {
      "{\"id\":1,\"x\":" + open,                // unknown field, truncated
      "{\"id\":1,\"x\":" + closed + "}",        // unknown field, complete but too deep
      "{\"id\":1,\"account\":" + closed + "}",  // known field
      open,
      kValid,
  };
  DecodeResult r = decode(d, msgs);
  expect_consistent(r, msgs.size());
  ASSERT_EQ(r.errors.size(), 4u);
  EXPECT_EQ(r.batch.num_rows(), 1);
  EXPECT_EQ(r.errors[1].message, "malformed JSON: nesting deeper than 1024");
  EXPECT_EQ(r.errors[2].message, "malformed JSON: nesting deeper than 1024");
}

TEST(JsonHostile, TenMegabyteStringsDecode) {
  JsonDecoder d = make_decoder();
  std::string big(10 << 20, 'x');
  for (size_t i = 0; i < big.size(); i += 4096) big[i] = static_cast<char>('a' + (i / 4096) % 26);
  std::vector<std::string> msgs = {"{\"id\":1,\"account\":\"" + big + "\"}",
                                   "{\"id\":2,\"account\":\"" + big,  // unterminated
                                   kValid};
  DecodeResult r = decode(d, msgs);
  expect_consistent(r, msgs.size());
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].index, 1);
  ASSERT_EQ(r.batch.num_rows(), 2);
  EXPECT_EQ(r.batch.column(1).string_view(0), big);
  EXPECT_EQ(r.batch.column(1).string_view(1), "ACC-00012345");
}

TEST(JsonHostile, InvalidUtf8AnywhereIsReported) {
  JsonDecoder d = make_decoder();
  std::vector<std::string> msgs = {
      "{\"id\":1,\"account\":\"\xff\"}",              // bad byte in a value
      "{\"id\":1,\"acc\xc0\xafount\":\"a\"}",         // overlong encoding in a key
      "{\"id\":1,\"other\":\"\xed\xa0\x80\"}",        // surrogate in an ignored field
      "{\"id\":1,\"account\":\"\xe2\x82\"}",          // truncated sequence
      "{\"id\":1,\"account\":\"\xf4\x90\x80\x80\"}",  // beyond U+10FFFF
  };
  DecodeResult r = decode(d, msgs);
  expect_consistent(r, msgs.size());
  ASSERT_EQ(r.errors.size(), msgs.size());
  // Each names the byte and the field (issue 14).
  const char* want[] = {"invalid UTF-8 at byte 19 in field 'account' (0xFF)",
                        "invalid UTF-8 at byte 12 in a field name (0xC0)",
                        "invalid UTF-8 at byte 17 in field 'other' (0xED)",
                        "invalid UTF-8 at byte 19 in field 'account' (0xE2)",
                        "invalid UTF-8 at byte 19 in field 'account' (0xF4)"};
  for (const RecordError& e : r.errors) EXPECT_EQ(e.message, want[e.index]) << e.index;
}

TEST(JsonHostile, EscapedLoneSurrogatesAndRawControlCharactersAreRefused) {
  JsonDecoder d = make_decoder();
  std::vector<std::string> msgs = {
      R"({"id":1,"account":"\ud800"})",        // high surrogate alone
      R"({"id":1,"account":"\udc00x"})",       // low surrogate alone
      R"({"id":1,"account":"\ud800\u0041"})",  // high surrogate, then not a low one
      "{\"id\":1,\"account\":\"a\x01b\"}",     // raw control character
      R"({"id":1,"account":"\ud83d\ude00"})",  // a valid pair: U+1F600
  };
  DecodeResult r = decode(d, msgs);
  expect_consistent(r, msgs.size());  // includes: every utf8 value is valid UTF-8
  ASSERT_EQ(r.errors.size(), 4u);
  EXPECT_EQ(r.errors[0].message,
            "malformed JSON at byte 19: high surrogate not followed by a low one in \\u escape");
  EXPECT_EQ(r.errors[1].message,
            "malformed JSON at byte 19: low surrogate without a high one in \\u escape");
  EXPECT_EQ(r.errors[2].message,
            "malformed JSON at byte 19: high surrogate not followed by a low one in \\u escape");
  EXPECT_EQ(r.errors[3].message,
            "malformed JSON at byte 20: control character in string (must be escaped)");
  ASSERT_EQ(r.batch.num_rows(), 1);
  EXPECT_EQ(r.batch.column(1).string_view(0), "\xf0\x9f\x98\x80");
}

TEST(JsonHostile, NulBytesAreRefusedUnlessEscaped) {
  JsonDecoder d = make_decoder();
  using namespace std::string_literals;
  std::vector<std::string> msgs = {
      "{\"id\":1,\"account\":\"a\0b\"}"s,  // raw NUL inside a string
      "{\"id\":1,\0\"n\":2}"s,             // raw NUL between tokens
      "{\"id\":1}\0"s,                     // trailing NUL
      "{\"id\":1,\"account\":\"a\\u0000b\"}"s,
  };
  DecodeResult r = decode(d, msgs);
  expect_consistent(r, msgs.size());
  ASSERT_EQ(r.errors.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(r.errors[i].index, static_cast<int64_t>(i));
    EXPECT_NE(r.errors[i].message.find("malformed JSON"), std::string::npos) << r.errors[i].message;
  }
  ASSERT_EQ(r.batch.num_rows(), 1);
  EXPECT_EQ(r.batch.column(1).string_view(0), "a\0b"s);
}

TEST(JsonHostile, FourHundredDigitNumbersAreErrors) {
  JsonDecoder d = make_decoder();
  std::string digits(400, '7');
  std::vector<std::string> msgs = {
      "{\"id\":" + digits + "}",
      "{\"id\":-" + digits + "}",
      "{\"id\":1,\"amount\":" + digits + "}",
      "{\"id\":1,\"u\":" + digits + "}",
      "{\"id\":1,\"amount\":" + digits + "e400}",
      "{\"id\":1,\"other\":" + digits + "}",
  };
  DecodeResult r = decode(d, msgs);
  expect_consistent(r, msgs.size());
  // Integers beyond 64 bits never become a silently rounded value in an integer column.
  for (const RecordError& e : r.errors) {
    EXPECT_TRUE(e.message.find("number") != std::string::npos ||
                e.message.find("out of range") != std::string::npos)
        << e.message;
  }
  std::set<int64_t> bad;
  for (const RecordError& e : r.errors) bad.insert(e.index);
  EXPECT_TRUE(bad.count(0) && bad.count(1) && bad.count(3) && bad.count(4));
  // 400 digits of float64 are 7.7e399: beyond double, so not accepted as a value either.
  EXPECT_TRUE(bad.count(2));
}

// Mutates a byte string: flips, inserts, deletes, duplicates or truncates at random spots.
std::string mutate(std::string s, std::mt19937_64& rng) {
  static const char kInteresting[] = "{}[]\",:\\0-.eE \x00\xff\xc3\x80tfn";
  int edits = 1 + static_cast<int>(rng() % 4);
  for (int e = 0; e < edits; ++e) {
    size_t pos = s.empty() ? 0 : rng() % s.size();
    switch (rng() % 6) {
      case 0:
        if (!s.empty()) s[pos] = static_cast<char>(rng());
        break;
      case 1:
        if (!s.empty()) s[pos] = kInteresting[rng() % (sizeof(kInteresting) - 1)];
        break;
      case 2:
        s.insert(pos, 1, kInteresting[rng() % (sizeof(kInteresting) - 1)]);
        break;
      case 3:
        if (!s.empty()) s.erase(pos, 1 + rng() % 3);
        break;
      case 4:
        s.insert(pos, s.substr(pos, rng() % 10));
        break;
      default:
        s.resize(pos);
        break;
    }
  }
  return s;
}

TEST(JsonHostile, RandomMutationsNeverCrashAndAgreeRecordByRecord) {
  std::mt19937_64 rng(777);
  JsonDecoder batch_decoder = make_decoder();
  JsonDecoder single_decoder = make_decoder();
  JsonEncoder encoder;
  size_t total_bad = 0, total = 0;
  for (int iter = 0; iter < 40; ++iter) {
    std::vector<std::string> msgs;
    size_t n = 50 + rng() % 200;
    for (size_t i = 0; i < n; ++i) msgs.push_back(mutate(kValid, rng));
    DecodeResult r = decode(batch_decoder, msgs);
    expect_consistent(r, msgs.size());
    // Decoding alone gives the same verdict and, for good records, the same row.
    size_t err = 0;
    int64_t row = 0;
    for (size_t i = 0; i < msgs.size(); ++i) {
      DecodeResult one = decode(single_decoder, {msgs[i]});
      bool bad_in_batch = err < r.errors.size() && r.errors[err].index == static_cast<int64_t>(i);
      ASSERT_EQ(one.errors.size() == 1, bad_in_batch) << "iter " << iter << " record " << i;
      if (bad_in_batch) {
        EXPECT_EQ(one.errors[0].message, r.errors[err].message);
        ++err;
      } else {
        ASSERT_TRUE(one.batch.equals(r.batch.slice(row, 1)));
        ++row;
      }
    }
    total_bad += r.errors.size();
    total += msgs.size();
    // Good rows re-encode and decode back to themselves.
    auto again = batch_decoder.decode_lines(encoder.encode_lines(r.batch));
    ASSERT_TRUE(again.is_ok());
    EXPECT_TRUE(again->errors.empty());
    EXPECT_TRUE(again->batch.equals(r.batch));
  }
  // The mutations must actually produce both outcomes, or the test proves little.
  EXPECT_GT(total_bad, total / 4);
  EXPECT_LT(total_bad, total);
}

TEST(JsonHostile, RandomBytesNeverCrash) {
  std::mt19937_64 rng(4242);
  JsonDecoder d = make_decoder();
  std::string text;
  for (int i = 0; i < 200000; ++i) {
    uint64_t r = rng();
    // Mostly JSON-ish characters so the parser gets past the first byte now and then.
    text.push_back(r % 3 ? "{}[]\":,0123456789-.eEtrufalsn \n\\"[r % 32]
                         : static_cast<char>(r >> 8));
  }
  auto r = d.decode_lines(text);
  ASSERT_TRUE(r.is_ok());
  size_t lines = 0;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string_view l(text.data() + start, end - start);
    if (l.find_first_not_of(" \t\r") != std::string_view::npos) ++lines;
    start = end + 1;
  }
  EXPECT_EQ(static_cast<size_t>(r->batch.num_rows()) + r->errors.size(), lines);
}

}  // namespace
}  // namespace sabot::codec
