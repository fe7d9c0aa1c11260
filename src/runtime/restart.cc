#include "sabot/runtime/restart.h"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace sabot::runtime {

using std::chrono::milliseconds;

RestartStrategy RestartStrategy::none() { return RestartStrategy{}; }

RestartStrategy RestartStrategy::fixed_delay(int max_attempts, milliseconds delay) {
  RestartStrategy s;
  s.kind = Kind::kFixedDelay;
  s.max_attempts = max_attempts;
  s.delay = delay;
  return s;
}

RestartStrategy RestartStrategy::exponential_backoff(int max_attempts, milliseconds initial,
                                                     milliseconds max, double multiplier) {
  RestartStrategy s;
  s.kind = Kind::kExponentialBackoff;
  s.max_attempts = max_attempts;
  s.delay = initial;
  s.max_delay = max;
  s.multiplier = multiplier;
  return s;
}

milliseconds RestartStrategy::delay_before(int attempt) const {
  switch (kind) {
    case Kind::kNone:
      return milliseconds(0);
    case Kind::kFixedDelay:
      return delay;
    case Kind::kExponentialBackoff: {
      // In double, so that a large attempt saturates at max_delay instead of overflowing.
      double d = static_cast<double>(delay.count());
      for (int k = 1; k < attempt && d < static_cast<double>(max_delay.count()); ++k) {
        d *= multiplier;
      }
      if (d >= static_cast<double>(max_delay.count())) return max_delay;
      return milliseconds(static_cast<int64_t>(d));
    }
  }
  return milliseconds(0);
}

namespace {

// What is wrong with `s`, or "" when it is valid.
std::string problem_of(const RestartStrategy& s) {
  using Kind = RestartStrategy::Kind;
  if (s.kind == Kind::kNone) {
    if (s.max_attempts != 0) {
      return "max_attempts must be 0 without restarts, got " + std::to_string(s.max_attempts);
    }
    return "";
  }
  if (s.max_attempts < 1) {
    return "max_attempts must be >= 1, got " + std::to_string(s.max_attempts);
  }
  if (s.delay.count() < 0) {
    return "delay must be >= 0, got " + std::to_string(s.delay.count()) + "ms";
  }
  if (s.kind == Kind::kExponentialBackoff) {
    if (s.max_delay < s.delay) {
      return "max_delay (" + format_duration(s.max_delay) + ") must be >= the initial delay (" +
             format_duration(s.delay) + ")";
    }
    if (!std::isfinite(s.multiplier) || s.multiplier < 1.0) {
      return "multiplier must be a finite number >= 1, got " + std::to_string(s.multiplier);
    }
  }
  return "";
}

}  // namespace

Status RestartStrategy::validate() const {
  std::string problem = problem_of(*this);
  if (problem.empty()) return Status::ok();
  return Status::invalid_argument("restart strategy '" + to_string() + "': " + problem);
}

std::string RestartStrategy::to_string() const {
  switch (kind) {
    case Kind::kNone:
      return "none";
    case Kind::kFixedDelay:
      return "fixed:" + std::to_string(max_attempts) + ":" + format_duration(delay);
    case Kind::kExponentialBackoff: {
      std::string out = "backoff:" + std::to_string(max_attempts) + ":" + format_duration(delay) +
                        ":" + format_duration(max_delay);
      if (multiplier != 2.0) {
        char buf[32];
        auto r = std::to_chars(buf, buf + sizeof(buf), multiplier);
        out += ":" + std::string(buf, r.ptr);
      }
      return out;
    }
  }
  return "?";
}

std::string format_duration(milliseconds d) {
  const int64_t ms = d.count();
  if (ms != 0 && ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms != 0 && ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms != 0 && ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

Result<milliseconds> parse_duration(std::string_view text) {
  const std::string quoted = "'" + std::string(text) + "'";
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0) {
    return Status::invalid_argument("duration " + quoted +
                                    ": expected a whole number with a unit (ms, s, m, h), e.g. "
                                    "200ms or 10s");
  }
  int64_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + digits, n);
  if (ec != std::errc() || end != text.data() + digits) {
    return Status::invalid_argument("duration " + quoted + ": the number is too large");
  }
  const std::string_view unit = text.substr(digits);
  int64_t scale = 0;
  if (unit == "ms") {
    scale = 1;
  } else if (unit == "s") {
    scale = 1000;
  } else if (unit == "m") {
    scale = 60'000;
  } else if (unit == "h") {
    scale = 3'600'000;
  } else if (unit.empty() && n == 0) {
    scale = 1;
  } else if (unit.empty()) {
    return Status::invalid_argument("duration " + quoted + ": missing unit (ms, s, m or h)");
  } else {
    return Status::invalid_argument("duration " + quoted + ": unknown unit '" + std::string(unit) +
                                    "' (use ms, s, m or h)");
  }
  // A day is plenty for a restart delay; the bound keeps every later multiplication exact.
  constexpr int64_t kMaxMs = int64_t{1} << 40;  // about 35 years
  if (n > kMaxMs / scale) {
    return Status::invalid_argument("duration " + quoted + ": too large");
  }
  return milliseconds(n * scale);
}

namespace {

std::vector<std::string_view> split(std::string_view text, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t p = text.find(sep, start);
    out.push_back(
        text.substr(start, p == std::string_view::npos ? std::string_view::npos : p - start));
    if (p == std::string_view::npos) return out;
    start = p + 1;
  }
}

Result<int> parse_attempts(std::string_view text, std::string_view whole) {
  int n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || n < 1) {
    return Status::invalid_argument("restart strategy '" + std::string(whole) +
                                    "': attempts must be a whole number >= 1, got '" +
                                    std::string(text) + "'");
  }
  return n;
}

Result<milliseconds> parse_part_duration(std::string_view text, std::string_view what,
                                         std::string_view whole) {
  auto d = parse_duration(text);
  if (!d.is_ok()) {
    return Status::invalid_argument("restart strategy '" + std::string(whole) +
                                    "': " + std::string(what) + ": " + d.status().message());
  }
  return d;
}

}  // namespace

Result<RestartStrategy> parse_restart_strategy(std::string_view text) {
  const std::string whole(text);
  const auto parts = split(text, ':');
  const std::string forms =
      "; expected none, fixed:<attempts>:<delay> or backoff:<attempts>:<initial>:<max>";
  if (parts[0] == "none") {
    if (parts.size() != 1) {
      return Status::invalid_argument("restart strategy '" + whole + "': 'none' takes no values" +
                                      forms);
    }
    return RestartStrategy::none();
  }
  if (parts[0] == "fixed") {
    if (parts.size() != 3) {
      return Status::invalid_argument("restart strategy '" + whole +
                                      "': fixed needs 2 values, got " +
                                      std::to_string(parts.size() - 1) + forms);
    }
    SABOT_ASSIGN_OR_RETURN(int attempts, parse_attempts(parts[1], whole));
    SABOT_ASSIGN_OR_RETURN(milliseconds delay, parse_part_duration(parts[2], "delay", whole));
    return RestartStrategy::fixed_delay(attempts, delay);
  }
  if (parts[0] == "backoff") {
    if (parts.size() != 4 && parts.size() != 5) {
      return Status::invalid_argument("restart strategy '" + whole +
                                      "': backoff needs 3 values (or 4 with a multiplier), got " +
                                      std::to_string(parts.size() - 1) + forms);
    }
    SABOT_ASSIGN_OR_RETURN(int attempts, parse_attempts(parts[1], whole));
    SABOT_ASSIGN_OR_RETURN(milliseconds initial,
                           parse_part_duration(parts[2], "initial delay", whole));
    SABOT_ASSIGN_OR_RETURN(milliseconds max, parse_part_duration(parts[3], "max delay", whole));
    double multiplier = 2.0;
    if (parts.size() == 5) {
      const std::string_view m = parts[4];
      auto [end, ec] = std::from_chars(m.data(), m.data() + m.size(), multiplier);
      if (m.empty() || ec != std::errc() || end != m.data() + m.size()) {
        return Status::invalid_argument("restart strategy '" + whole +
                                        "': multiplier must be a number >= 1, got '" +
                                        std::string(m) + "'");
      }
    }
    RestartStrategy s = RestartStrategy::exponential_backoff(attempts, initial, max, multiplier);
    std::string problem = problem_of(s);
    if (!problem.empty()) {
      return Status::invalid_argument("restart strategy '" + whole + "': " + problem);
    }
    return s;
  }
  return Status::invalid_argument("restart strategy '" + whole + "': unknown kind '" +
                                  std::string(parts[0]) + "'" + forms);
}

}  // namespace sabot::runtime
