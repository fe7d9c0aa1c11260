// Reading what a `sabot` process wrote, for the tests that run the command.
#pragma once

#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace sabot::test_support {

// The whole file (empty when it cannot be read).
inline std::string read_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The lines of `text`, sorted: outputs written by several subtasks compare as multisets.
inline std::vector<std::string> sorted_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  std::sort(lines.begin(), lines.end());
  return lines;
}

// What a shell command line did: its exit code, standard output, and standard error.
struct Outcome {
  int code = -1;  // -1: it did not exit normally (or could not be started)
  std::string out;
  std::string err;
};

// Runs `command_line` with the shell, standard error into the file `err_path` (read back into
// Outcome::err) and standard input /dev/null unless the command line redirects it itself.
inline Outcome run_command(const std::string& command_line, const std::string& err_path) {
  std::string command = command_line + " 2>" + err_path;
  if (command_line.find('<') == std::string::npos) command += " </dev/null";
  Outcome r;
  std::FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return r;
  char buf[1 << 16];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) r.out.append(buf, n);
  const int status = pclose(pipe);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.err = read_file(err_path);
  return r;
}

}  // namespace sabot::test_support
