#include "sabot/base/status.h"

#include <cstdio>
#include <cstdlib>

namespace sabot {

std::string_view status_code_name(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return "OK";
    case StatusCode::kInvalidArgument:
      return "InvalidArgument";
    case StatusCode::kTypeError:
      return "TypeError";
    case StatusCode::kOutOfRange:
      return "OutOfRange";
    case StatusCode::kNotFound:
      return "NotFound";
    case StatusCode::kAlreadyExists:
      return "AlreadyExists";
    case StatusCode::kIoError:
      return "IoError";
    case StatusCode::kInvalidData:
      return "InvalidData";
    case StatusCode::kNotImplemented:
      return "NotImplemented";
    case StatusCode::kCancelled:
      return "Cancelled";
    case StatusCode::kInternal:
      return "Internal";
  }
  return "Unknown";
}

Status::Status(StatusCode code, std::string message) {
  if (code != StatusCode::kOk) {
    state_ = std::make_shared<const State>(State{code, std::move(message), {}});
  }
}

const std::string& Status::message() const {
  static const std::string kEmpty;
  return state_ ? state_->message : kEmpty;
}

std::string Status::to_string() const {
  if (!state_) return "OK";
  std::string out(status_code_name(state_->code));
  out += ": ";
  out += state_->message;
  out += state_->context;
  return out;
}

Status Status::with_context(std::string_view context) && {
  if (!state_) return std::move(*this);
  State s = *state_;
  s.context += "\n  while ";
  s.context += context;
  Status out;
  out.state_ = std::make_shared<const State>(std::move(s));
  return out;
}

Status Status::with_context(std::string_view context) const& {
  Status copy = *this;
  return std::move(copy).with_context(context);
}

namespace detail {
void die_on_bad_result_access(const Status& status) {
  std::fprintf(stderr, "sabot: fatal: value() called on an error Result: %s\n",
               status.to_string().c_str());
  std::abort();
}
}  // namespace detail

}  // namespace sabot
