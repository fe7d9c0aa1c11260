// Row values in KeyRegistry's key-bytes encoding (per column a validity byte, then the value:
// 1 byte bool, 4 int32, 8 int64/uint64/float64/timestamp, u64 length + bytes for utf8/binary):
// how top-N and the stream-table join keep whole rows in keyed state. append_values (or
// KeyRegistry::decode_key, as Scalars) reads them back.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "sabot/base/status.h"
#include "sabot/columnar/array.h"
#include "sabot/columnar/builder.h"

namespace sabot::state {

// Appends row `row` of `columns` to `out`.
void encode_values(std::span<const columnar::Array> columns, int64_t row, std::string* out);

// Appends the row `bytes` (encoded by encode_values from columns of `types`) to `builders`, one
// per column, each made by columnar::make_builder of its type: no Scalar per value. Damaged bytes
// are an error naming the offset; the builders may then hold part of the row (drop them).
Status append_values(std::string_view bytes, std::span<const columnar::DataType> types,
                     std::span<const std::unique_ptr<columnar::ArrayBuilder>> builders);

}  // namespace sabot::state
