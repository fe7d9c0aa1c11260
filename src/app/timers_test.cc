#include "sabot/app/timers.h"

#include <gtest/gtest.h>

#include "sabot/base/clock.h"

namespace sabot::app {
namespace {

constexpr int64_t kMinute = 60'000;
// 2026-12-05T00:00:00Z, a Saturday.
constexpr int64_t kSaturday = 1'796'428'800'000;

TEST(CrontabTest, EveryFiveMinutesFiresOnMultiplesOfFive) {
  auto c = Crontab::parse("*/5 * * * *").value();
  EXPECT_EQ(c.next_after(Timestamp(kSaturday)).millis(), kSaturday + 5 * kMinute);
  EXPECT_EQ(c.next_after(Timestamp(kSaturday + 5 * kMinute)).millis(), kSaturday + 10 * kMinute);
  EXPECT_EQ(c.next_after(Timestamp(kSaturday + 7 * kMinute + 1)).millis(),
            kSaturday + 10 * kMinute);
}

TEST(CrontabTest, HourRangesListsAndWeekdays) {
  // 09:30 on weekdays: the next after Saturday 00:00 is Monday 09:30.
  auto c = Crontab::parse("30 9 * * 1-5").value();
  EXPECT_EQ(c.next_after(Timestamp(kSaturday)).millis(),
            kSaturday + 2 * 24 * 60 * kMinute + (9 * 60 + 30) * kMinute);
  auto list = Crontab::parse("0,15 22-23 * * *").value();
  EXPECT_EQ(list.next_after(Timestamp(kSaturday)).millis(), kSaturday + 22 * 60 * kMinute);
  EXPECT_EQ(list.next_after(Timestamp(kSaturday + 22 * 60 * kMinute)).millis(),
            kSaturday + (22 * 60 + 15) * kMinute);
  // Day 1 of the month: 2027-01-01.
  auto monthly = Crontab::parse("0 0 1 * *").value();
  EXPECT_EQ(monthly.next_after(Timestamp(kSaturday)).millis(), 1'798'761'600'000);
  // Sunday as 7 and 0.
  EXPECT_EQ(Crontab::parse("0 0 * * 7").value().next_after(Timestamp(kSaturday)).millis(),
            kSaturday + 24 * 60 * kMinute);
}

TEST(CrontabTest, RefusesMalformedExpressionsNamingTheField) {
  auto few = Crontab::parse("* * *");
  ASSERT_FALSE(few.is_ok());
  EXPECT_NE(few.status().message().find("expected 5 fields"), std::string::npos);
  auto hour = Crontab::parse("0 24 * * *");
  ASSERT_FALSE(hour.is_ok());
  EXPECT_NE(hour.status().message().find("hour"), std::string::npos);
  auto step = Crontab::parse("*/0 * * * *");
  ASSERT_FALSE(step.is_ok());
  EXPECT_NE(step.status().message().find("minute"), std::string::npos);
  EXPECT_FALSE(Crontab::parse("x * * * *").is_ok());
}

TEST(TimerScheduleTest, FiresWhatIsDueOnAManualClock) {
  ManualClock clock{Timestamp(kSaturday)};
  TimerSchedule s;
  std::vector<std::string> fired;
  s.add_interval("every-10s", std::chrono::seconds(10), [&] { fired.push_back("10s"); });
  s.add_crontab("cron", Crontab::parse("*/1 * * * *").value(), [&] { fired.push_back("cron"); });
  s.start(clock.now());
  EXPECT_TRUE(s.fire_due(clock.now()).empty());
  EXPECT_TRUE(fired.empty());
  clock.advance_millis(9'999);
  s.fire_due(clock.now());
  EXPECT_TRUE(fired.empty());
  clock.advance_millis(1);
  s.fire_due(clock.now());
  EXPECT_EQ(fired, std::vector<std::string>({"10s"}));
  // Jump 60 s: five missed interval firings (20..60 s), then the minute's crontab, in time
  // order (the crontab at 60 s comes after the interval timer due at 60 s only by insertion).
  fired.clear();
  clock.advance_millis(50'000);
  s.fire_due(clock.now());
  EXPECT_EQ(fired, std::vector<std::string>({"10s", "10s", "10s", "10s", "10s", "cron"}));
  EXPECT_EQ(s.next_due()->millis(), kSaturday + 70'000);
}

TEST(TimerScheduleTest, ACallbackThatThrowsIsReportedAndTheScheduleGoesOn) {
  ManualClock clock(Timestamp(0));
  TimerSchedule s;
  int calls = 0;
  s.add_interval("boom", std::chrono::seconds(1), [&] {
    ++calls;
    throw std::runtime_error("bad tick");
  });
  s.start(clock.now());
  clock.advance_millis(2'000);
  auto errors = s.fire_due(clock.now());
  EXPECT_EQ(calls, 2);
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0], "timer boom: bad tick");
}

}  // namespace
}  // namespace sabot::app
