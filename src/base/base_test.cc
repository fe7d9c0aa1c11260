#include <gtest/gtest.h>

#include <sstream>
#include <unordered_set>

#include "sabot/base/check.h"
#include "sabot/base/clock.h"
#include "sabot/base/ids.h"
#include "sabot/base/logging.h"

namespace sabot {
namespace {

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
