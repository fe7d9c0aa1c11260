#include "sabot/columnar/scalar.h"

#include <cstdio>
#include <cstdlib>

namespace sabot::columnar {

std::string Scalar::to_string() const {
  if (!is_valid) return "null";
  switch (type.id()) {
    case TypeId::kBool:
      return as_bool() ? "true" : "false";
    case TypeId::kInt32:
    case TypeId::kInt64:
    case TypeId::kTimestamp:
      return std::to_string(as_int64());
    case TypeId::kUInt64:
      return std::to_string(as_uint64());
    case TypeId::kFloat64: {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.17g", as_float64());
      // Prefer the shortest form that reads back the same value.
      for (int precision = 1; precision <= 17; ++precision) {
        char shorter[32];
        std::snprintf(shorter, sizeof shorter, "%.*g", precision, as_float64());
        if (std::strtod(shorter, nullptr) == as_float64()) return shorter;
      }
      return buf;
    }
    case TypeId::kUtf8:
      return "\"" + as_string() + "\"";
    case TypeId::kBinary: {
      static const char* kHex = "0123456789abcdef";
      std::string out = "0x";
      for (unsigned char c : as_string()) {
        out += kHex[c >> 4];
        out += kHex[c & 15];
      }
      return out;
    }
  }
  return "?";
}

}  // namespace sabot::columnar
