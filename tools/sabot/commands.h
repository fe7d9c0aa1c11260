// The subcommands of the `sabot` tool and what they share. Each command takes the arguments after
// its name and returns the process exit code.
#pragma once

#include <cstdio>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "flags.h"

namespace sabot::cli {

// Prints "sabot: <message>" to stderr and returns kExitFailure.
int fail(const std::string& message);

// User plus system CPU seconds of the whole process so far.
double process_cpu_seconds();

// Refuses what a command cannot read as an input file: a directory, a device, a socket, a path
// that does not exist. "-" (standard input), regular files and pipes are accepted.
Status check_input_path(const std::string& path);

// A buffered writer to standard output or to a file; errors (disk full, closed pipe) are sticky and
// reported by close(), naming the target. A regular file is written to a temporary file next to it
// and renamed over it by close(), so a failed or interrupted run leaves the old file (or none),
// never a truncated one; devices and pipes (/dev/null, a FIFO) are written directly. Not
// thread-safe.
class OutputFile {
 public:
  // Empty path or "-": standard output. Refused before anything is opened for writing: a directory,
  // and a path that is the same file (same device and inode, so also through links) as one of
  // `inputs` (paths the command reads; "-" and paths that do not exist are ignored).
  static Result<OutputFile> open(const std::string& path,
                                 const std::vector<std::string>& inputs = {});
  OutputFile(OutputFile&& o) noexcept;
  OutputFile& operator=(OutputFile&&) = delete;
  // Without a successful close(), a temporary file is removed and the target left as it was.
  ~OutputFile();
  void write(std::string_view bytes);
  // True once a write failed (the message comes from close()).
  bool failed() const { return failed_; }
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
  int error_ = 0;          // errno of the first failure
  std::string temp_path_;  // non-empty: rename to name_ on close
};

// Refuses an output path that is a directory or the same file as one of `inputs` (see
// OutputFile::open); for outputs that the engine writes itself.
Status check_output_path(const std::string& path, const std::vector<std::string>& inputs = {});

// Flushes standard output and returns false (after printing "sabot: writing standard output
// failed: <reason>") when anything written to it was lost.
bool stdout_ok();

int fraud_generate(std::span<const std::string> args);
int demo_fraud(std::span<const std::string> args);
int nexmark_generate(std::span<const std::string> args);
int bench_nexmark(std::span<const std::string> args);
int enrichment_generate(std::span<const std::string> args);
int demo_enrichment(std::span<const std::string> args);
int checkpoints_list_command(std::span<const std::string> args);
int checkpoints_show_command(std::span<const std::string> args);
int state_read_command(std::span<const std::string> args);
int dev_broker(std::span<const std::string> args);
int topics_list(std::span<const std::string> args);
int topics_create(std::span<const std::string> args);

}  // namespace sabot::cli
