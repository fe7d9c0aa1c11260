// Row values in KeyRegistry's key-bytes encoding (per column a validity byte, then the value:
// 1 byte bool, 4 int32, 8 int64/uint64/float64/timestamp, u64 length + bytes for utf8/binary):
// how top-N keeps whole candidate rows in keyed state. KeyRegistry::decode_key reads them back.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "sabot/columnar/array.h"

namespace sabot::state {

// Appends row `row` of `columns` to `out`.
void encode_values(std::span<const columnar::Array> columns, int64_t row, std::string* out);

}  // namespace sabot::state
