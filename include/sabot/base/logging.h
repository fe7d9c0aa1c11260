// Minimal structured logging to stderr: a level, a component and a message per line. Thread-safe
// (one write per line). The level is set by SABOT_LOG_LEVEL (debug, info, warn, error, off) or in
// code.
#pragma once

#include <sstream>
#include <string_view>

namespace sabot {

enum class LogLevel : int { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kOff = 4 };

// kText: "<time> <LEVEL> [component] message"; kJson: one JSON object per line with the keys
// ts, level, component and msg (for log shippers). Default kText.
enum class LogFormat : int { kText = 0, kJson = 1 };
void set_log_format(LogFormat format);

void set_log_level(LogLevel level);
LogLevel log_level();
bool log_enabled(LogLevel level);
void log_line(LogLevel level, std::string_view component, std::string_view message);

namespace detail {
class LogMessage {
 public:
  LogMessage(LogLevel level, std::string_view component) : level_(level), component_(component) {}
  ~LogMessage() { log_line(level_, component_, os_.str()); }
  std::ostringstream& stream() { return os_; }

 private:
  LogLevel level_;
  std::string_view component_;
  std::ostringstream os_;
};
}  // namespace detail

}  // namespace sabot

// SABOT_LOG(kInfo, "runtime") << "started " << n << " tasks";
#define SABOT_LOG(level, component)                      \
  if (!::sabot::log_enabled(::sabot::LogLevel::level)) { \
  } else                                                 \
    ::sabot::detail::LogMessage(::sabot::LogLevel::level, component).stream()
