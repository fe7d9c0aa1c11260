#include <gtest/gtest.h>

#include <sstream>
#include <unordered_set>
#include <vector>

#include "sabot/base/arith.h"
#include "sabot/base/bytes.h"
#include "sabot/base/check.h"
#include "sabot/base/clock.h"
#include "sabot/base/ids.h"
#include "sabot/base/json_text.h"
#include "sabot/base/logging.h"
#include "sabot/base/time_unit.h"

namespace sabot {
namespace {

TEST(JsonText, EscapesQuotesBackslashesAndControlCharactersOnly) {
  EXPECT_EQ(json_string("a\"b\\c"), R"("a\"b\\c")");
  EXPECT_EQ(json_string("l1\nl2\t\r"), R"("l1\nl2\t\r")");
  EXPECT_EQ(json_string(std::string_view("\x01\0\x1f", 3)), R"("\u0001\u0000\u001f")");
  EXPECT_EQ(json_string("caf\xC3\xA9 /"), "\"caf\xC3\xA9 /\"");
  EXPECT_EQ(json_escaped("x\"y"), R"(x\"y)");
  std::string out = "[";
  append_json_string(&out, "");
  EXPECT_EQ(out, "[\"\"");
}

TEST(TimeUnit, TimesBefore1970RoundDownToTheContainingMillisecond) {
  // 1969-12-31T23:59:59.999999 is -1 us: it lies in millisecond -1, not 0.
  EXPECT_EQ(to_millis(-1, TimeUnit::kMicro), -1);
  EXPECT_EQ(to_millis(-1'000, TimeUnit::kMicro), -1);
  EXPECT_EQ(to_millis(-1'001, TimeUnit::kMicro), -2);
  EXPECT_EQ(to_millis(-1, TimeUnit::kNano), -1);
  EXPECT_EQ(to_millis(-2'000'000, TimeUnit::kNano), -2);
  EXPECT_EQ(to_millis(1'999, TimeUnit::kMicro), 1);
  EXPECT_EQ(to_millis(-3, TimeUnit::kSecond), -3'000);
  EXPECT_EQ(to_millis(-5, TimeUnit::kMilli), -5);
}

TEST(TimeUnit, SecondsSaturateInsteadOfWrapping) {
  EXPECT_EQ(to_millis(INT64_MAX / 1000 + 1, TimeUnit::kSecond), INT64_MAX);
  EXPECT_EQ(to_millis(INT64_MIN / 1000 - 1, TimeUnit::kSecond), INT64_MIN);
  EXPECT_EQ(to_millis(INT64_MIN, TimeUnit::kNano), INT64_MIN / 1'000'000 - 1);
}

TEST(TimeUnit, ColumnFormEqualsTheScalarFormForEveryUnit) {
  const std::vector<int64_t> in = {INT64_MIN, -1'000'001, -1'000, -999,      -1,       0,
                                   1,         999,        1'000,  1'000'001, INT64_MAX};
  for (TimeUnit u : {TimeUnit::kSecond, TimeUnit::kMilli, TimeUnit::kMicro, TimeUnit::kNano}) {
    std::vector<int64_t> out(in.size());
    to_millis(in, u, out.data());
    for (size_t i = 0; i < in.size(); ++i) {
      EXPECT_EQ(out[i], to_millis(in[i], u))
          << "unit " << static_cast<int>(u) << " value " << in[i];
    }
  }
}

TEST(Arith, SaturatingAddAndSubClampAtTheInt64Range) {
  EXPECT_EQ(sat_sub(INT64_MIN, 5), INT64_MIN);
  EXPECT_EQ(sat_sub(INT64_MAX, -5), INT64_MAX);
  EXPECT_EQ(sat_add(INT64_MAX, 5), INT64_MAX);
  EXPECT_EQ(sat_add(INT64_MIN, -5), INT64_MIN);
  EXPECT_EQ(sat_sub(10, 3), 7);
  EXPECT_EQ(sat_add(-10, 3), -7);
}

TEST(Arith, KeyGroupsGoToSubtasksInContiguousRanges) {
  // 128 key groups over 3 subtasks: [0, 43) -> 0, [43, 86) -> 1, [86, 128) -> 2.
  EXPECT_EQ(subtask_for_key_group(0, 3, 128), 0);
  EXPECT_EQ(subtask_for_key_group(42, 3, 128), 0);
  EXPECT_EQ(subtask_for_key_group(43, 3, 128), 1);
  EXPECT_EQ(subtask_for_key_group(127, 3, 128), 2);
  for (int kg = 1; kg < 128; ++kg) {
    EXPECT_GE(subtask_for_key_group(kg, 5, 128), subtask_for_key_group(kg - 1, 5, 128));
  }
}

TEST(Bytes, Crc32cMatchesTheCastagnoliCheckValue) {
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(crc32c(""), 0u);
  // Continuing a checksum equals checksumming the concatenation, at every split point.
  const std::string s = "a longer input that crosses several eight-byte words";
  for (size_t i = 0; i <= s.size(); ++i) {
    EXPECT_EQ(crc32c(std::string_view(s).substr(i), crc32c(std::string_view(s).substr(0, i))),
              crc32c(s));
  }
}

TEST(Crc32c, TheCrc32InstructionAndTheTablesAgreeOnEveryLengthAndSplit) {
  std::string s;
  for (int i = 0; i < 300; ++i) s.push_back(static_cast<char>((i * 131 + 7) % 256));
  for (size_t len = 0; len <= s.size(); ++len) {
    const std::string_view v = std::string_view(s).substr(0, len);
    ASSERT_EQ(crc32c(v), crc32c_without_hardware(v)) << "length " << len;
    const size_t cut = len / 3;
    ASSERT_EQ(crc32c(v.substr(cut), crc32c_without_hardware(v.substr(0, cut))), crc32c(v));
  }
  EXPECT_EQ(crc32c_without_hardware("123456789"), 0xE3069283u);
}

TEST(Bytes, ReaderReturnsWhatTheWriterWroteAndNamesTruncation) {
  std::string out;
  ByteWriter w(&out);
  w.put<int64_t>(-7);
  w.put_bytes("abc");
  w.put_vector(std::vector<uint32_t>{1, 2, 3});
  ByteReader r(out, "test state", 100);
  int64_t v = 0;
  std::string_view s;
  std::vector<uint32_t> vec;
  ASSERT_TRUE(r.get(&v).is_ok());
  ASSERT_TRUE(r.get_bytes(&s).is_ok());
  ASSERT_TRUE(r.get_vector(&vec).is_ok());
  EXPECT_EQ(v, -7);
  EXPECT_EQ(s, "abc");
  EXPECT_EQ(vec, (std::vector<uint32_t>{1, 2, 3}));
  EXPECT_TRUE(r.expect_end().is_ok());

  // Cut anywhere: every read fails cleanly, naming the thing and the offset in the snapshot.
  ByteReader cut(std::string_view(out).substr(0, 10), "test state", 100);
  ASSERT_TRUE(cut.get(&v).is_ok());
  Status st = cut.get_bytes(&s);
  EXPECT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("test state: truncated"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("at byte 108"), std::string::npos) << st.message();
  // A huge count is refused before anything is allocated.
  std::string big;
  ByteWriter(&big).put<uint64_t>(uint64_t{1} << 60);
  ByteReader huge(big, "test state");
  EXPECT_FALSE(huge.get_vector(&vec).is_ok());
}

TEST(StrongId, ComparesHashesAndPrints) {
  PartitionId a(1), b(2);
  EXPECT_LT(a, b);
  EXPECT_EQ(a, PartitionId(1));
  std::unordered_set<PartitionId> set{a, b, PartitionId(1)};
  EXPECT_EQ(set.size(), 2u);
  std::ostringstream os;
  os << CheckpointId(42);
  EXPECT_EQ(os.str(), "42");
  static_assert(!std::is_convertible_v<PartitionId, KeyGroup>);
}

TEST(Timestamp, OrdersAndBounds) {
  EXPECT_LT(Timestamp::min(), Timestamp(0));
  EXPECT_LT(Timestamp(5), Timestamp::max());
  EXPECT_EQ(Timestamp(7).millis(), 7);
}

TEST(Clock, ManualClockMovesOnlyWhenTold) {
  ManualClock clock(Timestamp(1000));
  EXPECT_EQ(clock.now(), Timestamp(1000));
  clock.advance_millis(250);
  EXPECT_EQ(clock.now(), Timestamp(1250));
  clock.set(Timestamp(5));
  EXPECT_EQ(clock.now().millis(), 5);
}

TEST(Clock, SystemClockIsMonotonicAndNearNow) {
  const Clock& c = SystemClock::instance();
  int64_t a = c.monotonic_nanos();
  int64_t b = c.monotonic_nanos();
  EXPECT_LE(a, b);
  EXPECT_GT(c.now().millis(), 1'600'000'000'000);  // after 2020
}

TEST(CheckDeathTest, FailedCheckPrintsBothValues) {
  int a = 3, b = 4;
  EXPECT_DEATH(SABOT_CHECK_EQ(a, b), "a == b \\(3 vs 4\\)");
  EXPECT_DEATH(SABOT_CHECK(a > b), "check failed.*a > b");
}

TEST(Logging, LevelFiltersMessages) {
  LogLevel saved = log_level();
  set_log_level(LogLevel::kError);
  EXPECT_FALSE(log_enabled(LogLevel::kInfo));
  EXPECT_TRUE(log_enabled(LogLevel::kError));
  testing::internal::CaptureStderr();
  SABOT_LOG(kInfo, "test") << "hidden";
  SABOT_LOG(kError, "test") << "shown " << 42;
  std::string out = testing::internal::GetCapturedStderr();
  EXPECT_EQ(out.find("hidden"), std::string::npos);
  EXPECT_NE(out.find("ERROR [test] shown 42"), std::string::npos);
  set_log_level(saved);
}

}  // namespace
}  // namespace sabot
