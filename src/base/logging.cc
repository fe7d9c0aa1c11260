#include "sabot/base/logging.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>

#include "sabot/base/json_text.h"

namespace sabot {
namespace {

LogLevel level_from_env() {
  const char* v = std::getenv("SABOT_LOG_LEVEL");
  if (v == nullptr) return LogLevel::kWarn;
  std::string_view s(v);
  if (s == "debug") return LogLevel::kDebug;
  if (s == "info") return LogLevel::kInfo;
  if (s == "warn") return LogLevel::kWarn;
  if (s == "error") return LogLevel::kError;
  if (s == "off") return LogLevel::kOff;
  return LogLevel::kWarn;
}

std::atomic<int>& level_storage() {
  static std::atomic<int> level{static_cast<int>(level_from_env())};
  return level;
}

const char* level_name(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "DEBUG";
    case LogLevel::kInfo:
      return "INFO";
    case LogLevel::kWarn:
      return "WARN";
    case LogLevel::kError:
      return "ERROR";
    case LogLevel::kOff:
      return "OFF";
  }
  return "?";
}

std::atomic<int> g_log_format{static_cast<int>(LogFormat::kText)};

}  // namespace

void set_log_format(LogFormat format) { g_log_format.store(static_cast<int>(format)); }

void set_log_level(LogLevel level) { level_storage().store(static_cast<int>(level)); }
LogLevel log_level() { return static_cast<LogLevel>(level_storage().load()); }
bool log_enabled(LogLevel level) {
  return static_cast<int>(level) >= level_storage().load(std::memory_order_relaxed) &&
         level != LogLevel::kOff;
}

void log_line(LogLevel level, std::string_view component, std::string_view message) {
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string line;
  line.reserve(64 + message.size());
  char frac[8];
  std::snprintf(frac, sizeof frac, ".%03dZ", static_cast<int>(ms % 1000));
  if (g_log_format.load(std::memory_order_relaxed) == static_cast<int>(LogFormat::kJson)) {
    line += "{\"ts\":\"";
    line += stamp;
    line += frac;
    line += "\",\"level\":\"";
    line += level_name(level);
    line += "\",\"component\":";
    append_json_string(&line, component);
    line += ",\"msg\":";
    append_json_string(&line, message);
    line += "}\n";
    std::fwrite(line.data(), 1, line.size(), stderr);
    return;
  }
  line += stamp;
  line += frac;
  line += ' ';
  line += level_name(level);
  line += " [";
  line += component;
  line += "] ";
  line += message;
  line += '\n';
  std::fwrite(line.data(), 1, line.size(), stderr);  // one write: lines do not interleave
}

}  // namespace sabot
