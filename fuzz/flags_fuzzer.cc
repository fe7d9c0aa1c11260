// Fuzzes the `sabot` command's flag parser (tools/sabot/flags.cc). The input is an argument list,
// arguments separated by NUL bytes, parsed by a FlagSet with one flag of every kind, and also
// handed to parse_count() one by one (also a positional argument). Checks beyond "no crash, no
// sanitizer report": a refusal names the command, and an accepted value is within the flag's
// declared range.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "flags.h"
#include "sabot/base/check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sabot;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> args;
  size_t start = 0;
  while (start <= input.size() && args.size() < 64) {
    size_t end = input.find('\0', start);
    if (end == std::string_view::npos) end = input.size();
    args.emplace_back(input.substr(start, end - start));
    start = end + 1;
  }

  int64_t count = 1000;
  int64_t parallelism = 1;
  uint64_t seed = 42;
  double rate = 0.01;
  std::string input_file;
  std::string mode = "fail";
  bool quiet = false;
  cli::FlagSet flags("sabot fuzz", "Parses fuzzed arguments.");
  flags.add_int("transactions", &count, "records", 0, int64_t{1} << 40);
  flags.add_int("parallelism", &parallelism, "subtasks", 1, 128);
  flags.add_uint("seed", &seed, "seed");
  flags.add_double("fraud-rate", &rate, "rate", 0.0, 1.0);
  flags.add_string("input", &input_file, "file");
  flags.add_string("on-bad-record", &mode, "policy", {"fail", "skip", "dead-letter"});
  flags.add_bool("quiet", &quiet, "quiet");
  int64_t positional = 5;
  flags.add_positional("count", &positional, "a count", 1, 1'000'000);

  auto parsed = flags.parse(args);
  if (parsed.is_ok()) {
    SABOT_CHECK(count >= 0 && count <= (int64_t{1} << 40));
    SABOT_CHECK(parallelism >= 1 && parallelism <= 128);
    SABOT_CHECK(rate >= 0.0 && rate <= 1.0);
    SABOT_CHECK(mode == "fail" || mode == "skip" || mode == "dead-letter");
    SABOT_CHECK(positional >= 1 && positional <= 1'000'000);
    if (!flags.is_set("count")) SABOT_CHECK_EQ(positional, 5);
  } else {
    SABOT_CHECK(parsed.status().message().find("sabot fuzz") != std::string::npos);
  }
  (void)flags.help();
  for (const std::string& a : args) (void)cli::parse_count(a);
  return 0;
}
