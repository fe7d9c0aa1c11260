// Restart strategies: what Environment::execute does when a running job fails (an operator, a
// source or a checkpoint write returned an error or threw). Each restart starts the job again
// from its newest complete checkpoint after a delay on the job's clock; the strategy says how many
// restarts are allowed and how long each waits. Plain values, copyable, thread-compatible.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "sabot/base/status.h"

namespace sabot::runtime {

struct RestartStrategy {
  enum class Kind { kNone, kFixedDelay, kExponentialBackoff };

  // kNone: a failure ends the job. kFixedDelay: `delay` before every restart.
  // kExponentialBackoff: `delay` before the first restart, times `multiplier` before each next
  // one, never more than `max_delay`.
  Kind kind = Kind::kNone;
  // Restarts allowed in one execute() (not counting the first run); 0 with kNone, >= 1 otherwise.
  int max_attempts = 0;
  // The delay before the first restart (kFixedDelay: before every restart). >= 0.
  std::chrono::milliseconds delay{0};
  // kExponentialBackoff: the longest delay, >= delay. Unused otherwise.
  std::chrono::milliseconds max_delay{0};
  // kExponentialBackoff: growth of the delay per restart, finite and >= 1. Unused otherwise.
  double multiplier = 1.0;

  static RestartStrategy none();
  static RestartStrategy fixed_delay(int max_attempts, std::chrono::milliseconds delay);
  static RestartStrategy exponential_backoff(int max_attempts, std::chrono::milliseconds initial,
                                             std::chrono::milliseconds max,
                                             double multiplier = 2.0);

  // The wait before restart `attempt` (1 for the first restart): `delay` for kFixedDelay,
  // min(max_delay, delay * multiplier^(attempt-1)) for kExponentialBackoff, 0 for kNone.
  std::chrono::milliseconds delay_before(int attempt) const;
  // Whether restart `attempt` (1-based) is allowed: attempt <= max_attempts.
  bool allows(int attempt) const { return kind != Kind::kNone && attempt <= max_attempts; }
  // InvalidArgument naming the field that is out of range.
  Status validate() const;
  // The command-line form: "none", "fixed:3:1s", "backoff:5:200ms:1m" (and ":<multiplier>" when it
  // is not 2).
  std::string to_string() const;

  bool operator==(const RestartStrategy&) const = default;
};

// Parses the command-line form (the `--restart` flag):
//   none
//   fixed:<attempts>:<delay>                         e.g. fixed:3:10s
//   backoff:<attempts>:<initial>:<max>[:<multiplier>] e.g. backoff:5:200ms:1m (multiplier 2)
// Durations are a whole number with a unit: ms, s, m or h (0 needs no unit). InvalidArgument naming
// the part that is wrong.
Result<RestartStrategy> parse_restart_strategy(std::string_view text);

// "0ms", "200ms", "10s", "2m", "1h": the largest unit that divides the duration exactly.
std::string format_duration(std::chrono::milliseconds d);
// A whole number with a unit (ms, s, m, h; "0" alone is allowed), as parse_restart_strategy reads
// durations. InvalidArgument naming `text` and what is wrong.
Result<std::chrono::milliseconds> parse_duration(std::string_view text);

}  // namespace sabot::runtime
