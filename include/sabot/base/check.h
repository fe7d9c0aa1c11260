// Always-on invariant checks. A failed check is a bug in Sabot, not a user error: it prints the
// expression, both values where there are two, and the source location, then aborts. User errors
// are Status values, never checks.
#pragma once

#include <sstream>
#include <string>

#include "sabot/base/status.h"

namespace sabot::detail {

[[noreturn]] void check_failed(const char* file, int line, const char* expr,
                               const std::string& detail);

inline const Status& status_of(const Status& s) { return s; }
template <typename T>
const Status& status_of(const Result<T>& r) {
  return r.status();
}

template <typename A, typename B>
std::string describe_operands(const A& a, const B& b) {
  std::ostringstream os;
  os << "(" << a << " vs " << b << ")";
  return os.str();
}

}  // namespace sabot::detail

#define SABOT_CHECK(cond)                                                      \
  do {                                                                         \
    if (__builtin_expect(!(cond), 0)) {                                        \
      ::sabot::detail::check_failed(__FILE__, __LINE__, #cond, std::string()); \
    }                                                                          \
  } while (false)

#define SABOT_CHECK_OP_(a, b, op)                                                            \
  do {                                                                                       \
    const auto& sabot_a_ = (a);                                                              \
    const auto& sabot_b_ = (b);                                                              \
    if (__builtin_expect(!(sabot_a_ op sabot_b_), 0)) {                                      \
      ::sabot::detail::check_failed(__FILE__, __LINE__, #a " " #op " " #b,                   \
                                    ::sabot::detail::describe_operands(sabot_a_, sabot_b_)); \
    }                                                                                        \
  } while (false)

#define SABOT_CHECK_EQ(a, b) SABOT_CHECK_OP_(a, b, ==)
#define SABOT_CHECK_NE(a, b) SABOT_CHECK_OP_(a, b, !=)
#define SABOT_CHECK_LT(a, b) SABOT_CHECK_OP_(a, b, <)
#define SABOT_CHECK_LE(a, b) SABOT_CHECK_OP_(a, b, <=)
#define SABOT_CHECK_GT(a, b) SABOT_CHECK_OP_(a, b, >)
#define SABOT_CHECK_GE(a, b) SABOT_CHECK_OP_(a, b, >=)

// Checks that a Status or Result is OK; for places where failure is impossible by construction.
#define SABOT_CHECK_OK(expr)                                                           \
  do {                                                                                 \
    const auto& sabot_s_ = (expr);                                                     \
    if (__builtin_expect(!sabot_s_.is_ok(), 0)) {                                      \
      ::sabot::detail::check_failed(__FILE__, __LINE__, #expr " is OK",                \
                                    ::sabot::detail::status_of(sabot_s_).to_string()); \
    }                                                                                  \
  } while (false)
