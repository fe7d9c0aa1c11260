#include "flags.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <iostream>
#include <optional>
#include <sstream>

namespace sabot::cli {
namespace {

std::string quoted(std::string_view s) {
  std::string out = "'";
  out.append(s);
  out += "'";
  return out;
}

std::string join(const std::vector<std::string>& items, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out.append(sep);
    out += items[i];
  }
  return out;
}

std::string format_double(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

}  // namespace

Result<int64_t> parse_count(std::string_view text) {
  std::string digits;
  int64_t scale = 1;
  std::string_view body = text;
  if (!body.empty()) {
    switch (body.back()) {
      case 'k':
      case 'K':
        scale = 1'000;
        break;
      case 'm':
      case 'M':
        scale = 1'000'000;
        break;
      case 'g':
      case 'G':
        scale = 1'000'000'000;
        break;
      default:
        break;
    }
    if (scale != 1) body.remove_suffix(1);
  }
  bool ok = !body.empty();
  for (size_t i = 0; ok && i < body.size(); ++i) {
    const char c = body[i];
    if (c == '_') {
      // Only between digits.
      ok = i > 0 && i + 1 < body.size() && std::isdigit(static_cast<unsigned char>(body[i - 1])) &&
           std::isdigit(static_cast<unsigned char>(body[i + 1]));
    } else if (c == '-' && i == 0) {
      digits += c;
    } else if (std::isdigit(static_cast<unsigned char>(c))) {
      digits += c;
    } else {
      ok = false;
    }
  }
  int64_t value = 0;
  if (ok) {
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    ok = ec == std::errc() && end == digits.data() + digits.size();
    if (ec == std::errc::result_out_of_range) {
      return Status::invalid_argument(quoted(text) + " is too large");
    }
  }
  if (!ok) {
    return Status::invalid_argument("expected an integer such as 1000000, 1_000_000 or 1M, got " +
                                    quoted(text));
  }
  if (__builtin_mul_overflow(value, scale, &value)) {
    return Status::invalid_argument(quoted(text) + " is too large");
  }
  return value;
}

FlagSet::FlagSet(std::string command, std::string summary)
    : command_(std::move(command)), summary_(std::move(summary)) {}

namespace {
std::string int_range(int64_t min, int64_t max) {
  std::string msg = "[";
  msg += min == INT64_MIN ? "-inf" : std::to_string(min);
  msg += ", ";
  msg += max == INT64_MAX ? "inf" : std::to_string(max);
  msg += "]";
  return msg;
}
}  // namespace

FlagSet::Flag FlagSet::make_int(std::string name, int64_t* value, std::string help, int64_t min,
                                int64_t max) {
  Flag f{name, std::move(help), "N", std::to_string(*value), {}, {}};
  if (min != INT64_MIN || max != INT64_MAX) f.range_text = int_range(min, max);
  f.set = [value, min, max](std::string_view text) -> Status {
    SABOT_ASSIGN_OR_RETURN(int64_t v, parse_count(text));
    if (v < min || v > max) {
      return Status::invalid_argument("value " + std::to_string(v) + " is out of range " +
                                      int_range(min, max));
    }
    *value = v;
    return Status::ok();
  };
  return f;
}

void FlagSet::add_int(std::string name, int64_t* value, std::string help, int64_t min,
                      int64_t max) {
  flags_.push_back(make_int(std::move(name), value, std::move(help), min, max));
}

void FlagSet::add_positional_string(std::string name, std::string* value, std::string help) {
  add_string(std::move(name), value, std::move(help));
  flags_.back().positional = true;
  flags_.back().value_name = "PATH";
}

void FlagSet::add_positional(std::string name, int64_t* value, std::string help, int64_t min,
                             int64_t max) {
  Flag f = make_int(std::move(name), value, std::move(help), min, max);
  f.positional = true;
  flags_.push_back(std::move(f));
}

bool FlagSet::is_set(std::string_view name) const {
  for (const Flag& f : flags_) {
    if (f.name == name) return f.given;
  }
  return false;
}

void FlagSet::add_uint(std::string name, uint64_t* value, std::string help) {
  Flag f{name, std::move(help), "N", std::to_string(*value), {}, {}};
  f.set = [value](std::string_view text) -> Status {
    uint64_t v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
      return Status::invalid_argument("expected a non-negative integer below 2^64, got " +
                                      quoted(text));
    }
    *value = v;
    return Status::ok();
  };
  flags_.push_back(std::move(f));
}

void FlagSet::add_double(std::string name, double* value, std::string help, double min,
                         double max) {
  Flag f{name, std::move(help), "X", format_double(*value), {}, {}};
  f.range_text = "[" + format_double(min) + ", " + format_double(max) + "]";
  f.set = [value, min, max](std::string_view text) -> Status {
    double v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size() ||
        !std::isfinite(v)) {
      return Status::invalid_argument("expected a number, got " + quoted(text));
    }
    if (v < min || v > max) {
      return Status::invalid_argument("value " + format_double(v) + " is out of range [" +
                                      format_double(min) + ", " + format_double(max) + "]");
    }
    *value = v;
    return Status::ok();
  };
  flags_.push_back(std::move(f));
}

void FlagSet::add_string(std::string name, std::string* value, std::string help,
                         std::vector<std::string> choices) {
  // What --help shows after the flag, guessed from its name.
  const auto ends_with = [&name](std::string_view s) {
    return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
  };
  const char* value_name = ends_with("-dir")                                          ? "DIR"
                           : ends_with("interval")                                    ? "DURATION"
                           : name == "restore"                                        ? "PATH"
                           : name == "restart"                                        ? "STRATEGY"
                           : name.find("out") != std::string::npos || name == "input" ? "FILE"
                                                                                      : "S";
  Flag f{name, std::move(help), value_name, *value, choices, {}};
  f.set = [value, choices = std::move(choices)](std::string_view text) -> Status {
    if (!choices.empty()) {
      bool known = false;
      for (const std::string& c : choices) known = known || c == text;
      if (!known) {
        return Status::invalid_argument(quoted(text) + " is not one of " + join(choices, ", "));
      }
    }
    if (text.empty()) return Status::invalid_argument("the value is empty");
    *value = std::string(text);
    return Status::ok();
  };
  flags_.push_back(std::move(f));
}

void FlagSet::add_bool(std::string name, bool* value, std::string help) {
  Flag f{name, std::move(help), "", "", {}, {}};
  f.set = [value](std::string_view) {
    *value = true;
    return Status::ok();
  };
  flags_.push_back(std::move(f));
}

FlagSet::Flag* FlagSet::find(std::string_view name) {
  for (Flag& f : flags_) {
    if (f.name == name && !f.positional) return &f;
  }
  return nullptr;
}

Status FlagSet::error(std::string message) const {
  return Status::invalid_argument(command_ + ": " + message + " (see '" + command_ + " --help')");
}

Result<bool> FlagSet::parse(std::span<const std::string> args) {
  for (Flag& f : flags_) f.given = false;
  size_t next_positional = 0;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i];
    if (arg == "--help" || arg == "-h") return false;
    if (arg.size() < 3 || arg.substr(0, 2) != "--") {
      // A positional argument, if the command takes one more.
      Flag* positional = nullptr;
      for (size_t k = 0, seen = 0; k < flags_.size(); ++k) {
        if (!flags_[k].positional) continue;
        if (seen++ == next_positional) {
          positional = &flags_[k];
          break;
        }
      }
      if (positional == nullptr) {
        return error("unexpected argument " + quoted(arg) + "; flags look like --name value");
      }
      ++next_positional;
      if (Status s = positional->set(arg); !s.is_ok()) {
        return error(positional->name + ": " + s.message());
      }
      positional->given = true;
      continue;
    }
    std::string_view name = arg.substr(2);
    std::optional<std::string_view> value;
    if (size_t eq = name.find('='); eq != std::string_view::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    Flag* flag = find(name);
    if (flag == nullptr) {
      std::vector<std::string> names;
      for (const Flag& f : flags_) {
        if (!f.positional) names.push_back("--" + f.name);
      }
      return error(
          "unknown flag " + quoted(std::string("--").append(name)) +
          (names.empty() ? "; it takes no flags" : "; its flags are " + join(names, ", ")));
    }
    if (flag->value_name.empty()) {
      if (value) return error("--" + flag->name + " takes no value");
      SABOT_RETURN_IF_ERROR(flag->set(""));
      flag->given = true;
      continue;
    }
    if (!value) {
      if (i + 1 >= args.size()) return error("--" + flag->name + " needs a value");
      value = args[++i];
    }
    if (Status s = flag->set(*value); !s.is_ok()) {
      return error("--" + flag->name + ": " + s.message());
    }
    flag->given = true;
  }
  return true;
}

std::string FlagSet::help() const {
  std::string usage = "Usage: " + command_;
  bool any_flags = false;
  for (const Flag& f : flags_) {
    if (f.positional) {
      usage += " [" + f.name + "]";
    } else {
      any_flags = true;
    }
  }
  std::string out = usage + (any_flags ? " [flags]" : "") + "\n\n";
  out += summary_;
  out += "\n";
  if (flags_.empty()) return out;
  bool any_positional = false;
  for (const Flag& f : flags_) any_positional = any_positional || f.positional;
  out += any_positional ? "\nArguments and flags:\n" : "\nFlags:\n";
  std::vector<std::string> lefts;
  size_t width = 0;
  for (const Flag& f : flags_) {
    std::string left = f.positional ? "  " + f.name : "  --" + f.name;
    if (!f.value_name.empty() && !f.positional) left += " " + f.value_name;
    width = std::max(width, left.size());
    lefts.push_back(std::move(left));
  }
  lefts.emplace_back("  --help");
  width = std::max(width, lefts.back().size());
  for (size_t i = 0; i < flags_.size(); ++i) {
    const Flag& f = flags_[i];
    out += lefts[i] + std::string(width + 2 - lefts[i].size(), ' ') + f.help;
    if (!f.choices.empty()) out += " (" + join(f.choices, ", ") + ")";
    if (!f.range_text.empty()) out += " " + f.range_text;
    if (!f.value_name.empty() && !f.default_text.empty())
      out += " [default: " + f.default_text + "]";
    out += "\n";
  }
  out += lefts.back() + std::string(width + 2 - lefts.back().size(), ' ') + "show this help\n";
  return out;
}

std::optional<int> parse_flags(FlagSet& flags, std::span<const std::string> args) {
  Result<bool> parsed = flags.parse(args);
  if (!parsed.is_ok()) {
    std::cerr << parsed.status().message() << "\n";
    return kExitUsage;
  }
  if (!*parsed) {
    std::cout << flags.help();
    return std::cout.flush() ? kExitOk : kExitFailure;
  }
  return std::nullopt;
}

}  // namespace sabot::cli
