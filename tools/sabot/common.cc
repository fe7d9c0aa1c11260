// What the sabot commands share: flag parsing with the exit-code convention, CPU time, output
// files.
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>

#include "commands.h"

namespace sabot::cli {

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

namespace {

std::string describe(const struct stat& st) {
  if (S_ISDIR(st.st_mode)) return "a directory";
  if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) return "a device";
  if (S_ISSOCK(st.st_mode)) return "a socket";
  return "not a regular file";
}

}  // namespace

Status check_input_path(const std::string& path) {
  if (path == "-") return Status::ok();
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return Status::io_error("cannot read '" + path + "': " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode)) {
    return Status::invalid_argument("cannot read '" + path + "': it is " + describe(st) +
                                    ", not a file");
  }
  return Status::ok();
}

Status check_output_path(const std::string& path, const std::vector<std::string>& inputs) {
  if (path.empty() || path == "-") return Status::ok();
  struct stat out {};
  if (::stat(path.c_str(), &out) != 0) return Status::ok();  // a new file
  if (S_ISDIR(out.st_mode)) {
    return Status::invalid_argument("cannot write '" + path + "': it is a directory");
  }
  for (const std::string& input : inputs) {
    struct stat in {};
    if (input.empty() || input == "-" || ::stat(input.c_str(), &in) != 0) continue;
    if (in.st_dev == out.st_dev && in.st_ino == out.st_ino) {
      return Status::invalid_argument("refusing to write '" + path + "': it is the input file '" +
                                      input + "'" +
                                      (input == path ? "" : " (the same file through a link)") +
                                      "; writing it would destroy the input");
    }
  }
  return Status::ok();
}

Result<OutputFile> OutputFile::open(const std::string& path,
                                    const std::vector<std::string>& inputs) {
  if (path.empty() || path == "-") return OutputFile(stdout, "standard output", false);
  SABOT_RETURN_IF_ERROR(check_output_path(path, inputs));
  struct stat st {};
  const bool exists = ::stat(path.c_str(), &st) == 0;
  if (exists && !S_ISREG(st.st_mode)) {
    // A device or a pipe: written in place (renaming over /dev/null would be wrong).
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr) {
      return Status::io_error("cannot open '" + path + "' for writing: " + std::strerror(errno));
    }
    return OutputFile(f, path, true);
  }
  // A temporary file in the same directory, renamed over `path` by close().
  const size_t slash = path.find_last_of('/');
  std::string temp = slash == std::string::npos ? std::string() : path.substr(0, slash + 1);
  temp += ".";
  temp += slash == std::string::npos ? path : path.substr(slash + 1);
  temp += ".sabot-XXXXXX";
  const int fd = ::mkstemp(temp.data());
  if (fd < 0) {
    return Status::io_error("cannot open '" + path + "' for writing: " + std::strerror(errno));
  }
  // mkstemp makes the file 0600; give it the mode a new file would get (or the old file's).
  const mode_t mask = ::umask(0);
  ::umask(mask);
  ::fchmod(fd, exists ? (st.st_mode & 07777) : (0666 & ~mask));
  std::FILE* f = ::fdopen(fd, "wb");
  if (f == nullptr) {
    const int e = errno;
    ::close(fd);
    ::unlink(temp.c_str());
    return Status::io_error("cannot open '" + path + "' for writing: " + std::strerror(e));
  }
  OutputFile out(f, path, true);
  out.temp_path_ = std::move(temp);
  return out;
}

OutputFile::OutputFile(OutputFile&& o) noexcept
    : file_(o.file_),
      name_(std::move(o.name_)),
      owned_(o.owned_),
      failed_(o.failed_),
      error_(o.error_),
      temp_path_(std::move(o.temp_path_)) {
  o.file_ = nullptr;
  o.temp_path_.clear();
}

OutputFile::~OutputFile() {
  if (file_ != nullptr && owned_) std::fclose(file_);
  if (!temp_path_.empty()) ::unlink(temp_path_.c_str());
}

void OutputFile::write(std::string_view bytes) {
  if (failed_ || bytes.empty()) return;
  if (std::fwrite(bytes.data(), 1, bytes.size(), file_) != bytes.size()) {
    failed_ = true;
    error_ = errno;
  }
}

bool OutputFile::is_terminal() const { return isatty(fileno(file_)) == 1; }

Status OutputFile::close() {
  if (file_ == nullptr) return Status::ok();
  if (!failed_ && std::fflush(file_) != 0) {
    failed_ = true;
    error_ = errno;
  }
  if (!failed_ && std::ferror(file_)) {
    failed_ = true;
    error_ = EIO;
  }
  if (owned_) {
    if (std::fclose(file_) != 0 && !failed_) {
      failed_ = true;
      error_ = errno;
    }
  }
  file_ = nullptr;
  if (!failed_ && !temp_path_.empty()) {
    if (::rename(temp_path_.c_str(), name_.c_str()) != 0) {
      failed_ = true;
      error_ = errno;
    } else {
      temp_path_.clear();
    }
  }
  if (failed_) {
    if (!temp_path_.empty()) ::unlink(temp_path_.c_str());
    temp_path_.clear();
    return Status::io_error("writing " + (owned_ ? "'" + name_ + "'" : name_) +
                            " failed: " + std::strerror(error_ != 0 ? error_ : EIO));
  }
  return Status::ok();
}

bool stdout_ok() {
  errno = 0;
  std::cout.flush();
  int e = errno;
  const bool stream_ok = static_cast<bool>(std::cout);
  errno = 0;
  const int flushed = std::fflush(stdout);
  if (e == 0) e = errno;
  if (flushed == 0 && !std::ferror(stdout) && stream_ok) return true;
  std::cerr << "sabot: writing standard output failed"
            << (e != 0 ? std::string(": ") + std::strerror(e) : std::string()) << "\n";
  return false;
}

}  // namespace sabot::cli
