// Status and Result<T>: the one error mechanism for everything that can fail at run time.
// A Status is cheap when OK (one null pointer) and carries a code, a message and context lines
// when not. Both are [[nodiscard]] so an ignored error is a compile warning.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace sabot {

enum class StatusCode : int {
  kOk = 0,
  kInvalidArgument = 1,  // the caller passed something wrong (bad option, unknown column)
  kTypeError = 2,        // types do not fit (expression over the wrong column type)
  kOutOfRange = 3,       // an index or offset beyond the end
  kNotFound = 4,         // a named thing does not exist
  kAlreadyExists = 5,
  kIoError = 6,      // the operating system refused (file, socket)
  kInvalidData = 7,  // input bytes that do not decode (IPC, JSON, snapshots)
  kNotImplemented = 8,
  kCancelled = 9,
  kInternal = 10,  // a bug in Sabot
};

std::string_view status_code_name(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message);

  static Status ok() { return Status(); }
  static Status invalid_argument(std::string msg) {
    return Status(StatusCode::kInvalidArgument, std::move(msg));
  }
  static Status type_error(std::string msg) {
    return Status(StatusCode::kTypeError, std::move(msg));
  }
  static Status out_of_range(std::string msg) {
    return Status(StatusCode::kOutOfRange, std::move(msg));
  }
  static Status not_found(std::string msg) { return Status(StatusCode::kNotFound, std::move(msg)); }
  static Status already_exists(std::string msg) {
    return Status(StatusCode::kAlreadyExists, std::move(msg));
  }
  static Status io_error(std::string msg) { return Status(StatusCode::kIoError, std::move(msg)); }
  static Status invalid_data(std::string msg) {
    return Status(StatusCode::kInvalidData, std::move(msg));
  }
  static Status not_implemented(std::string msg) {
    return Status(StatusCode::kNotImplemented, std::move(msg));
  }
  static Status cancelled(std::string msg) {
    return Status(StatusCode::kCancelled, std::move(msg));
  }
  static Status internal(std::string msg) { return Status(StatusCode::kInternal, std::move(msg)); }

  bool is_ok() const { return state_ == nullptr; }
  explicit operator bool() const { return is_ok(); }
  StatusCode code() const { return state_ ? state_->code : StatusCode::kOk; }
  // The message without the code name or context.
  const std::string& message() const;
  // "InvalidArgument: message\n  while context\n  while outer context"
  std::string to_string() const;
  // Process exit code for a CLI: 0 when OK, 1 otherwise.
  int exit_code() const { return is_ok() ? 0 : 1; }

  // Adds a line saying what was being done when the error happened. No-op on OK.
  Status with_context(std::string_view context) &&;
  Status with_context(std::string_view context) const&;

  bool operator==(const Status& other) const {
    return code() == other.code() && message() == other.message();
  }

 private:
  struct State {
    StatusCode code;
    std::string message;
    std::string context;  // lines prefixed with "\n  while "
  };
  // shared so that copying an error Status is cheap; a State is never mutated once shared.
  std::shared_ptr<const State> state_;
};

// Holds either a value or an error Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    if (std::get<Status>(v_).is_ok()) {
      v_ = Status::internal("Result constructed from an OK Status without a value");
    }
  }

  bool is_ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return is_ok(); }
  const Status& status() const {
    static const Status kOk;
    return is_ok() ? kOk : std::get<Status>(v_);
  }

  const T& value() const&;
  T& value() &;
  // By value, so that `for (auto& x : make().value())` does not dangle.
  T value() &&;
  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  T operator*() && { return std::move(*this).value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }

  T value_or(T fallback) const& { return is_ok() ? std::get<T>(v_) : std::move(fallback); }

 private:
  std::variant<T, Status> v_;
};

namespace detail {
[[noreturn]] void die_on_bad_result_access(const Status& status);
}

template <typename T>
const T& Result<T>::value() const& {
  if (!is_ok()) detail::die_on_bad_result_access(std::get<Status>(v_));
  return std::get<T>(v_);
}
template <typename T>
T& Result<T>::value() & {
  if (!is_ok()) detail::die_on_bad_result_access(std::get<Status>(v_));
  return std::get<T>(v_);
}
template <typename T>
T Result<T>::value() && {
  if (!is_ok()) detail::die_on_bad_result_access(std::get<Status>(v_));
  return std::get<T>(std::move(v_));
}

}  // namespace sabot

#define SABOT_CONCAT_INNER_(a, b) a##b
#define SABOT_CONCAT_(a, b) SABOT_CONCAT_INNER_(a, b)

// Returns the Status from the enclosing function when it is an error.
#define SABOT_RETURN_IF_ERROR(expr)                   \
  do {                                                \
    ::sabot::Status sabot_status_ = (expr);           \
    if (!sabot_status_.is_ok()) return sabot_status_; \
  } while (false)

#define SABOT_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, rexpr) \
  auto tmp = (rexpr);                                 \
  if (!tmp.is_ok()) return tmp.status();              \
  lhs = std::move(tmp).value()

// `SABOT_ASSIGN_OR_RETURN(auto x, make_x());` binds the value or returns the error.
#define SABOT_ASSIGN_OR_RETURN(lhs, rexpr) \
  SABOT_ASSIGN_OR_RETURN_IMPL_(SABOT_CONCAT_(sabot_result_, __LINE__), lhs, rexpr)
