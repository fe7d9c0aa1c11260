// Internal: the pieces of compute's snapshot encodings (groupers, accumulators) that
// base/bytes.h does not know: data types, and the tag and version each of those blobs starts
// with so that a blob given to the wrong reader is refused by name.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "sabot/base/bytes.h"
#include "sabot/base/status.h"
#include "sabot/columnar/type.h"

namespace sabot::compute::internal {

inline void put_type(ByteWriter& w, const columnar::DataType& t) {
  w.put<uint8_t>(static_cast<uint8_t>(t.id()));
  w.put<uint8_t>(static_cast<uint8_t>(t.unit()));
}

inline Status get_type(ByteReader& r, columnar::DataType* t) {
  uint8_t id = 0;
  uint8_t unit = 0;
  SABOT_RETURN_IF_ERROR(r.get(&id));
  SABOT_RETURN_IF_ERROR(r.get(&unit));
  if (id > static_cast<uint8_t>(columnar::TypeId::kTimestamp) ||
      unit > static_cast<uint8_t>(columnar::TimeUnit::kNano)) {
    return r.invalid("unknown type id " + std::to_string(id));
  }
  *t = columnar::DataType(static_cast<columnar::TypeId>(id), static_cast<columnar::TimeUnit>(unit));
  return Status::ok();
}

inline void put_header(ByteWriter& w, std::string_view tag, uint8_t version) {
  w.put_raw(tag.data(), tag.size());
  w.put<uint8_t>(version);
}

// Reads a tag and a version byte written by put_header, and checks both.
inline Status expect_header(ByteReader& r, std::string_view tag, uint8_t version) {
  std::string got(tag.size(), '\0');
  SABOT_RETURN_IF_ERROR(r.get_raw(got.data(), got.size()));
  if (got != tag) return r.invalid("missing '" + std::string(tag) + "' tag");
  uint8_t v = 0;
  SABOT_RETURN_IF_ERROR(r.get(&v));
  if (v != version) {
    return r.invalid("version " + std::to_string(v) + " is not supported (expected " +
                     std::to_string(version) + ")");
  }
  return Status::ok();
}

}  // namespace sabot::compute::internal
