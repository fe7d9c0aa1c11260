#include "demo_report.h"

#include <gtest/gtest.h>

#include <cmath>

namespace sabot::demo {
namespace {

TEST(DemoReport, GroupsDigitsInThousands) {
  EXPECT_EQ(grouped(0), "0");
  EXPECT_EQ(grouped(999), "999");
  EXPECT_EQ(grouped(1'000), "1,000");
  EXPECT_EQ(grouped(1'234'567), "1,234,567");
  EXPECT_EQ(grouped(-1'234'567), "-1,234,567");
}

TEST(DemoReport, RatesInThousandsOrMillions) {
  EXPECT_EQ(rate(1'530'000), "1.53 M");
  EXPECT_EQ(rate(456'700), "456.7 k");
  EXPECT_EQ(fmt("%.1f", std::nan("")), "0.0");
}

TEST(DemoReport, JsonStringsEscapeQuotesBackslashesAndControlCharacters) {
  EXPECT_EQ(json_string("a\"b\\c"), R"("a\"b\\c")");
  EXPECT_EQ(json_string("l1\nl2\t\r"), R"("l1\nl2\t\r")");
  EXPECT_EQ(json_string(std::string_view("\x01", 1)), R"("\u0001")");
  EXPECT_EQ(json_string("☃"), "\"☃\"");
}

}  // namespace
}  // namespace sabot::demo
