// Command-line flags for the `sabot` tool: each command declares its flags with a help line and
// where the parsed value goes; parse() fills them, refuses unknown flags and bad values with a
// message that names the command and the flag, and answers --help. One FlagSet per command
// invocation; not thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sabot/base/status.h"

namespace sabot::cli {

class FlagSet {
 public:
  // `command` is the full command ("sabot bench nexmark"); `summary` one paragraph saying what it
  // does, printed by --help above the flags.
  FlagSet(std::string command, std::string summary);

  // Integers accept an optional k, M or G suffix (thousands, millions, billions: 10M) and
  // underscores between digits (1_000_000). Values outside [min, max] are refused.
  void add_int(std::string name, int64_t* value, std::string help, int64_t min = INT64_MIN,
               int64_t max = INT64_MAX);
  void add_uint(std::string name, uint64_t* value, std::string help);
  void add_double(std::string name, double* value, std::string help, double min, double max);
  // With choices, any other value is refused (and --help lists them).
  void add_string(std::string name, std::string* value, std::string help,
                  std::vector<std::string> choices = {});
  // A switch: present means true. Takes no value.
  void add_bool(std::string name, bool* value, std::string help);
  // A positional integer argument (in the order added), for programs whose usage is
  // "program [count]"; same syntax and range check as add_int. Arguments beyond the declared
  // positionals are refused.
  void add_positional(std::string name, int64_t* value, std::string help, int64_t min = INT64_MIN,
                      int64_t max = INT64_MAX);

  // A positional string argument (a path), e.g. the DIR of "sabot checkpoints list DIR".
  void add_positional_string(std::string name, std::string* value, std::string help);

  // Parses "--name value" and "--name=value". Returns false when --help or -h was given (the
  // caller prints help() and exits 0). InvalidArgument names the flag and the command.
  Result<bool> parse(std::span<const std::string> args);

  // Usage, summary and one line per flag with its range or choices and its default.
  std::string help() const;
  const std::string& command() const { return command_; }
  // True when the last parse() was given flag `name` (without dashes) or positional `name`.
  bool is_set(std::string_view name) const;

 private:
  struct Flag {
    std::string name;
    std::string help;
    std::string value_name;  // "N", "S", "FILE"...; empty for switches
    std::string default_text;
    std::vector<std::string> choices;
    std::function<Status(std::string_view)> set;
    std::string range_text{};  // "[1, 128]"; empty when unbounded
    bool positional = false;
    bool given = false;  // set by the last parse()
  };
  Flag* find(std::string_view name);
  Flag make_int(std::string name, int64_t* value, std::string help, int64_t min, int64_t max);
  Status error(std::string message) const;

  std::string command_;
  std::string summary_;
  std::vector<Flag> flags_;
};

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // the work itself failed (bad input file, job error)
inline constexpr int kExitUsage = 2;    // bad command line

// Parses a command's or program's flags with the exit-code convention. nullopt: go on. Otherwise
// the exit code to return: --help printed the help (0, or 1 when standard output is lost), or the
// error was printed to stderr (2).
std::optional<int> parse_flags(FlagSet& flags, std::span<const std::string> args);

// Parses a whole decimal integer with an optional k/M/G suffix and digit-separating underscores;
// InvalidArgument when the text is anything else or overflows int64.
Result<int64_t> parse_count(std::string_view text);

}  // namespace sabot::cli
