// Test hook for JsonDecoder: runs every record through the DOM reference path, so that tests can
// check that the on-demand fast path accepts exactly what the reference accepts, with the same
// values and the same messages.
#pragma once

#include <cstdint>

#include "sabot/codec/json.h"

namespace sabot::codec {

struct JsonDecoderTestAccess {
  static void set_dom_only(JsonDecoder& decoder, bool dom_only);
  // Records the on-demand fast path accepted since the decoder was made.
  static int64_t fast_path_records(const JsonDecoder& decoder);
};

}  // namespace sabot::codec
