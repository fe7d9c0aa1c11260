#include "flags.h"

#include <gtest/gtest.h>

namespace sabot::cli {
namespace {

Result<bool> parse(FlagSet& flags, std::vector<std::string> args) { return flags.parse(args); }

TEST(ParseCount, AcceptsPlainSuffixedAndUnderscoredIntegers) {
  EXPECT_EQ(*parse_count("0"), 0);
  EXPECT_EQ(*parse_count("-12"), -12);
  EXPECT_EQ(*parse_count("1_000_000"), 1'000'000);
  EXPECT_EQ(*parse_count("10M"), 10'000'000);
  EXPECT_EQ(*parse_count("3k"), 3'000);
  EXPECT_EQ(*parse_count("2G"), 2'000'000'000);
}

TEST(ParseCount, RefusesAnythingElseAndOverflow) {
  for (const char* bad : {"", "x", "1.5", "1e6", "_1", "1_", "1__0", "M", "10MB", "--1"}) {
    EXPECT_FALSE(parse_count(bad).is_ok()) << bad;
  }
  EXPECT_NE(parse_count("99999999999999999999").status().message().find("too large"),
            std::string::npos);
  EXPECT_FALSE(parse_count("10000000000G").is_ok());
}

TEST(FlagSet, FillsValuesFromBothSpellings) {
  int64_t events = 5;
  uint64_t seed = 1;
  std::string query = "q0";
  bool json = false;
  double rate = 0.5;
  FlagSet flags("sabot test", "A test.");
  flags.add_int("events", &events, "events", 0);
  flags.add_uint("seed", &seed, "seed");
  flags.add_string("query", &query, "query", {"q0", "q1"});
  flags.add_bool("json", &json, "json");
  flags.add_double("rate", &rate, "rate", 0, 1);
  ASSERT_TRUE(*parse(flags, {"--events", "2M", "--seed=18446744073709551615", "--query=q1",
                             "--json", "--rate", "0.25"}));
  EXPECT_EQ(events, 2'000'000);
  EXPECT_EQ(seed, UINT64_MAX);
  EXPECT_EQ(query, "q1");
  EXPECT_TRUE(json);
  EXPECT_EQ(rate, 0.25);
}

TEST(FlagSet, HelpStopsParsingAndListsFlagsWithDefaults) {
  int64_t events = 7;
  FlagSet flags("sabot test", "A test command.");
  flags.add_int("events", &events, "how many events", 0);
  EXPECT_FALSE(*parse(flags, {"--events", "3", "--help"}));
  const std::string help = flags.help();
  EXPECT_NE(help.find("Usage: sabot test [flags]"), std::string::npos) << help;
  EXPECT_NE(help.find("--events N"), std::string::npos) << help;
  EXPECT_NE(help.find("[default: 7]"), std::string::npos) << help;
  EXPECT_NE(help.find("--help"), std::string::npos) << help;
}

TEST(FlagSet, ErrorsNameTheCommandAndTheFlag) {
  int64_t events = 0;
  std::string format = "jsonl";
  bool quiet = false;
  FlagSet flags("sabot x", "X.");
  flags.add_int("events", &events, "events", 1, 100);
  flags.add_string("format", &format, "format", {"jsonl", "arrow"});
  flags.add_bool("quiet", &quiet, "quiet");
  auto message = [&](std::vector<std::string> args) {
    Result<bool> r = parse(flags, std::move(args));
    return r.is_ok() ? std::string("ok") : r.status().message();
  };
  EXPECT_NE(message({"--evnts", "3"}).find("unknown flag '--evnts'"), std::string::npos);
  EXPECT_NE(message({"--evnts", "3"}).find("--events, --format, --quiet"), std::string::npos);
  EXPECT_NE(message({"--events"}).find("--events needs a value"), std::string::npos);
  EXPECT_NE(message({"--events", "abc"}).find("--events: expected an integer"), std::string::npos);
  EXPECT_NE(message({"--events", "0"}).find("out of range [1, 100]"), std::string::npos);
  EXPECT_NE(message({"--format", "csv"}).find("'csv' is not one of jsonl, arrow"),
            std::string::npos);
  EXPECT_NE(message({"--quiet=yes"}).find("--quiet takes no value"), std::string::npos);
  EXPECT_NE(message({"stray"}).find("unexpected argument 'stray'"), std::string::npos);
  EXPECT_EQ(message({"--events", "3"}).rfind("ok", 0), 0u);
  EXPECT_EQ(message({"--events", "3"}).find("sabot x"), std::string::npos);
  EXPECT_EQ(message({"--evnts"}).rfind("sabot x: ", 0), 0u);
}

TEST(FlagSet, HelpShowsRangesAndParseRecordsWhatWasGiven) {
  int64_t parallelism = 2;
  int64_t events = 0;
  FlagSet flags("sabot x", "X.");
  flags.add_int("parallelism", &parallelism, "subtasks", 1, 128);
  flags.add_int("events", &events, "events", 0);
  EXPECT_NE(flags.help().find("subtasks [1, 128] [default: 2]"), std::string::npos) << flags.help();
  EXPECT_NE(flags.help().find("events [0, inf] [default: 0]"), std::string::npos) << flags.help();
  ASSERT_TRUE(*parse(flags, {"--events", "5"}));
  EXPECT_TRUE(flags.is_set("events"));
  EXPECT_FALSE(flags.is_set("parallelism"));
  ASSERT_TRUE(*parse(flags, {"--parallelism=3"}));
  EXPECT_FALSE(flags.is_set("events"));  // per parse
  EXPECT_TRUE(flags.is_set("parallelism"));
}

TEST(FlagSet, PositionalArgumentsAreCheckedLikeFlags) {
  int64_t count = 10;
  int64_t parallelism = 2;
  FlagSet flags("prog", "P.");
  flags.add_positional("count", &count, "count", 1);
  flags.add_positional("parallelism", &parallelism, "parallelism", 1, 128);
  auto message = [&](std::vector<std::string> args) {
    Result<bool> r = parse(flags, std::move(args));
    return r.is_ok() ? std::string("ok") : r.status().message();
  };
  EXPECT_EQ(message({"5", "3"}), "ok");
  EXPECT_EQ(count, 5);
  EXPECT_EQ(parallelism, 3);
  EXPECT_NE(message({"abc"}).find("count: expected an integer"), std::string::npos);
  EXPECT_NE(message({"-5"}).find("count: value -5 is out of range [1, inf]"), std::string::npos);
  EXPECT_NE(message({"1", "200"}).find("out of range [1, 128]"), std::string::npos);
  EXPECT_NE(message({"1", "2", "3"}).find("unexpected argument '3'"), std::string::npos);
  EXPECT_NE(message({"--count", "3"}).find("unknown flag '--count'"), std::string::npos);
  EXPECT_NE(flags.help().find("Usage: prog [count] [parallelism]"), std::string::npos)
      << flags.help();
}

}  // namespace
}  // namespace sabot::cli
