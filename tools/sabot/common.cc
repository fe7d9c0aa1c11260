// What the sabot commands share: flag parsing with the exit-code convention, CPU time, output
// files.
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>

#include "commands.h"

namespace sabot::cli {

std::optional<int> parse_flags(FlagSet& flags, std::span<const std::string> args) {
  Result<bool> parsed = flags.parse(args);
  if (!parsed.is_ok()) {
    std::cerr << parsed.status().message() << "\n";
    return kExitUsage;
  }
  if (!*parsed) {
    std::cout << flags.help();
    return kExitOk;
  }
  return std::nullopt;
}

int fail(const std::string& message) {
  std::cerr << "sabot: " << message << "\n";
  return kExitFailure;
}

double process_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec * 1e-6; };
  return seconds(u.ru_utime) + seconds(u.ru_stime);
}

Result<OutputFile> OutputFile::open(const std::string& path) {
  if (path.empty() || path == "-") return OutputFile(stdout, "standard output", false);
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) {
    return Status::io_error("cannot open '" + path + "' for writing: " + std::strerror(errno));
  }
  return OutputFile(f, path, true);
}

OutputFile::OutputFile(OutputFile&& o) noexcept
    : file_(o.file_), name_(std::move(o.name_)), owned_(o.owned_), failed_(o.failed_) {
  o.file_ = nullptr;
}

OutputFile::~OutputFile() {
  if (file_ != nullptr && owned_) std::fclose(file_);
}

void OutputFile::write(std::string_view bytes) {
  if (failed_ || bytes.empty()) return;
  if (std::fwrite(bytes.data(), 1, bytes.size(), file_) != bytes.size()) failed_ = true;
}

bool OutputFile::is_terminal() const { return isatty(fileno(file_)) == 1; }

Status OutputFile::close() {
  bool ok = !failed_ && std::fflush(file_) == 0;
  if (owned_) {
    ok = std::fclose(file_) == 0 && ok;
    file_ = nullptr;
  }
  if (!ok) return Status::io_error("writing " + name_ + " failed: " + std::strerror(errno));
  return Status::ok();
}

}  // namespace sabot::cli
