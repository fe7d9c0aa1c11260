#include "sabot/base/status.h"

#include <gtest/gtest.h>

namespace sabot {
namespace {

Result<int> parse_positive(int v) {
  if (v <= 0) return Status::invalid_argument("value must be positive, got " + std::to_string(v));
  return v;
}

Result<int> doubled(int v) {
  SABOT_ASSIGN_OR_RETURN(int x, parse_positive(v));
  return x * 2;
}

Status check_both(int a, int b) {
  SABOT_RETURN_IF_ERROR(parse_positive(a).status());
  SABOT_RETURN_IF_ERROR(parse_positive(b).status());
  return Status::ok();
}

TEST(Status, DefaultIsOk) {
  Status s;
  EXPECT_TRUE(s.is_ok());
  EXPECT_EQ(s.code(), StatusCode::kOk);
  EXPECT_EQ(s.to_string(), "OK");
  EXPECT_EQ(s.exit_code(), 0);
}

TEST(Status, ErrorCarriesCodeMessageAndContext) {
  Status s = Status::not_found("column 'x'").with_context("binding filter").with_context("job j");
  EXPECT_FALSE(s.is_ok());
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "column 'x'");
  EXPECT_EQ(s.to_string(), "NotFound: column 'x'\n  while binding filter\n  while job j");
  EXPECT_EQ(s.exit_code(), 1);
}

TEST(Status, ContextOnOkStaysOk) { EXPECT_TRUE(Status::ok().with_context("anything").is_ok()); }

TEST(Result, PropagatesValueAndError) {
  EXPECT_EQ(*doubled(4), 8);
  auto r = doubled(-1);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("-1"), std::string::npos);
  EXPECT_EQ(r.value_or(7), 7);
}

TEST(Result, ReturnIfErrorStopsAtFirstError) {
  EXPECT_TRUE(check_both(1, 2).is_ok());
  EXPECT_NE(check_both(1, -2).message().find("-2"), std::string::npos);
}

TEST(Result, FromOkStatusIsAnInternalError) {
  Result<int> r{Status::ok()};
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);
}

TEST(ResultDeathTest, ValueOfErrorAborts) {
  Result<int> r{Status::io_error("disk gone")};
  EXPECT_DEATH((void)r.value(), "disk gone");
}

}  // namespace
}  // namespace sabot
