#include "sabot/base/check.h"

#include <cstdio>
#include <cstdlib>

namespace sabot::detail {

void check_failed(const char* file, int line, const char* expr, const std::string& detail) {
  std::fprintf(stderr, "sabot: check failed at %s:%d: %s %s\n", file, line, expr, detail.c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace sabot::detail
