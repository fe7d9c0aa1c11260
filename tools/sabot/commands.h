// The subcommands of the `sabot` tool and what they share. Each command takes the arguments after
// its name and returns the process exit code.
#pragma once

#include <cstdio>
#include <optional>
#include <span>
#include <string>

#include "flags.h"

namespace sabot::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // the work itself failed (bad input file, job error)
inline constexpr int kExitUsage = 2;    // bad command line

// Parses the command's flags. nullopt: go on. Otherwise the exit code to return: --help printed
// the help (0), or the error was printed to stderr (2).
std::optional<int> parse_flags(FlagSet& flags, std::span<const std::string> args);

// Prints "sabot: <message>" to stderr and returns kExitFailure.
int fail(const std::string& message);

// User plus system CPU seconds of the whole process so far.
double process_cpu_seconds();

// A buffered writer to standard output or to a file; errors (disk full, closed pipe) are sticky and
// reported by close(). Not thread-safe.
class OutputFile {
 public:
  // Empty path or "-": standard output.
  static Result<OutputFile> open(const std::string& path);
  OutputFile(OutputFile&& o) noexcept;
  OutputFile& operator=(OutputFile&&) = delete;
  ~OutputFile();
  void write(std::string_view bytes);
  bool is_terminal() const;
  const std::string& name() const { return name_; }
  Status close();

 private:
  OutputFile(std::FILE* file, std::string name, bool owned)
      : file_(file), name_(std::move(name)), owned_(owned) {}
  std::FILE* file_;
  std::string name_;
  bool owned_;
  bool failed_ = false;
};

int fraud_generate(std::span<const std::string> args);
int demo_fraud(std::span<const std::string> args);
int nexmark_generate(std::span<const std::string> args);
int bench_nexmark(std::span<const std::string> args);

}  // namespace sabot::cli
