#include "sabot/state/state_codec.h"

#include <map>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

namespace sabot::state {
namespace {

struct Point {
  int32_t x;
  double y;
  bool operator==(const Point&) const = default;
};

enum class Color : uint8_t { kRed = 1, kBlue = 2 };

// A user type with its own codec.
struct Account {
  std::string owner;
  int64_t balance = 0;
  bool operator==(const Account&) const = default;
};

}  // namespace

template <>
struct StateCodec<Account> {
  static void encode(const Account& a, ByteWriter& w) {
    StateCodec<std::string>::encode(a.owner, w);
    w.put<int64_t>(a.balance);
  }
  static Status decode(ByteReader& r, Account* a) {
    SABOT_RETURN_IF_ERROR(StateCodec<std::string>::decode(r, &a->owner));
    return r.get(&a->balance);
  }
};

namespace {

template <typename T>
void expect_round_trip(const T& v) {
  const std::string bytes = encode_state_value(v);
  T back{};
  ASSERT_TRUE(decode_state_value(bytes, &back).is_ok());
  EXPECT_EQ(back, v);
  // Every strict prefix is truncated data, never a crash.
  for (size_t n = 0; n < bytes.size(); ++n) {
    T partial{};
    Status st = decode_state_value(std::string_view(bytes).substr(0, n), &partial);
    EXPECT_EQ(st.code(), StatusCode::kInvalidData) << "prefix " << n;
  }
  // Trailing bytes are an error too.
  T extra{};
  EXPECT_EQ(decode_state_value(bytes + "x", &extra).code(), StatusCode::kInvalidData);
}

TEST(StateCodecTest, BuiltInTypesRoundTripAndRejectEveryTruncation) {
  expect_round_trip<int64_t>(-5);
  expect_round_trip<uint64_t>(UINT64_MAX);
  expect_round_trip<int32_t>(7);
  expect_round_trip<double>(-0.25);
  expect_round_trip<bool>(true);
  expect_round_trip<Color>(Color::kBlue);
  expect_round_trip<std::string>("h\0llo" + std::string(300, 'x'));
  expect_round_trip<std::string>("");
  expect_round_trip(std::vector<int64_t>{1, -2, 3});
  expect_round_trip(std::vector<std::string>{"a", "", "ccc"});
  expect_round_trip(std::vector<bool>{true, false, true});
  expect_round_trip(std::vector<int64_t>{});
  expect_round_trip(std::pair<std::string, double>{"k", 2.5});
  expect_round_trip(std::optional<std::string>{"x"});
  expect_round_trip(std::optional<int64_t>{});
  expect_round_trip(std::map<std::string, std::vector<int32_t>>{{"a", {1, 2}}, {"b", {}}});
  expect_round_trip(Point{3, 4.5});
  expect_round_trip(Account{"ann", 100});
  expect_round_trip(std::vector<Account>{{"a", 1}, {"b", 2}});
}

TEST(StateCodecTest, BadBoolAndHugeCountsAreInvalidData) {
  bool b = false;
  EXPECT_EQ(decode_state_value(std::string("\x02", 1), &b).code(), StatusCode::kInvalidData);
  std::vector<std::string> v;
  std::string huge(8, '\xff');
  EXPECT_EQ(decode_state_value(huge, &v).code(), StatusCode::kInvalidData);
  std::map<int64_t, int64_t> m;
  EXPECT_EQ(decode_state_value(huge, &m).code(), StatusCode::kInvalidData);
  std::vector<int64_t> ints;
  std::string count_too_big(
      "\x03\x00\x00\x00\x00\x00\x00\x00"
      "abcdefgh",
      16);
  EXPECT_EQ(decode_state_value(count_too_big, &ints).code(), StatusCode::kInvalidData);
}

TEST(StateCodecTest, MutatedEncodingsNeverCrashTheDecoders) {
  using Nested = std::map<std::string, std::vector<std::optional<int64_t>>>;
  std::mt19937_64 rng(11);
  int ok = 0;
  int failed = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    Nested value;
    const int n = static_cast<int>(rng() % 5);
    for (int i = 0; i < n; ++i) {
      auto& v = value[std::string(rng() % 4, 'a' + static_cast<char>(i))];
      for (uint64_t j = rng() % 4; j > 0; --j) {
        v.push_back(rng() % 3 == 0 ? std::nullopt
                                   : std::optional<int64_t>(static_cast<int64_t>(rng())));
      }
    }
    std::string bytes = encode_state_value(value);
    if (trial % 3 == 0) {
      bytes.resize(rng() % (bytes.size() + 1));
    } else if (trial % 3 == 1 && !bytes.empty()) {
      bytes[rng() % bytes.size()] ^= static_cast<char>(1 + rng() % 255);
    }  // else unchanged
    Nested back;
    Status st = decode_state_value(bytes, &back);
    if (st.is_ok()) {
      ++ok;
    } else {
      ++failed;
      EXPECT_EQ(st.code(), StatusCode::kInvalidData);
    }
    if (trial % 3 == 2) {
      ASSERT_TRUE(st.is_ok()) << st.to_string();
      EXPECT_EQ(back, value);
    }
  }
  EXPECT_GT(failed, 1000);
  EXPECT_GE(ok, 1000);
}

}  // namespace
}  // namespace sabot::state
