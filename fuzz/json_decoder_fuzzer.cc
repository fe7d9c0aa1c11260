// Fuzzes JsonDecoder (src/codec/json_decoder.cc) with JSON lines over a schema of every type.
// Input: one byte of options, then the text. Checks beyond "no crash, no sanitizer report":
//   - decode_lines accounts for every non-blank line (rows + errors), errors in line order;
//   - decode() of the same lines one message each gives as many rows plus errors as lines;
//   - the good rows encode with JsonEncoder and decode again without errors to an equal batch.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sabot/base/check.h"
#include "sabot/codec/json.h"

namespace {

using namespace sabot;
using columnar::field;
using columnar::TimeUnit;

columnar::SchemaPtr schema_for(bool nullable) {
  return columnar::schema({
      field("b", columnar::boolean(), nullable),
      field("i32", columnar::int32(), nullable),
      field("i64", columnar::int64(), nullable),
      field("u64", columnar::uint64(), nullable),
      field("f64", columnar::float64(), nullable),
      field("s", columnar::utf8(), nullable),
      field("bin", columnar::binary(), nullable),
      field("ts", columnar::timestamp(TimeUnit::kMilli), nullable),
      field("tsn", columnar::timestamp(TimeUnit::kNano), true),
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t flags = data[0];
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);

  codec::JsonDecodeOptions options;
  options.ignore_unknown_fields = (flags & 1) == 0;
  options.missing_as_null = (flags & 2) == 0;
  options.binary_as_base64 = (flags & 4) == 0;
  options.timestamp_accept_iso8601 = (flags & 8) != 0;
  options.max_depth = (flags & 16) != 0 ? 4 : 1024;
  const bool nullable = (flags & 32) == 0;

  auto decoder = codec::JsonDecoder::make(schema_for(nullable), options);
  SABOT_CHECK_OK(decoder);

  auto lines = decoder->decode_lines(text);
  if (!lines.is_ok()) return 0;  // a refused input is fine; a crash is not
  const codec::DecodeResult& result = *lines;
  for (const columnar::Array& column : result.batch.columns())
    SABOT_CHECK_OK(column.validate_full());
  int64_t previous = -1;
  for (const codec::RecordError& e : result.errors) {
    SABOT_CHECK_GT(e.index, previous);
    SABOT_CHECK(!e.message.empty());
    SABOT_CHECK(e.byte_offset >= 0 && e.byte_offset <= static_cast<int64_t>(text.size()));
    previous = e.index;
  }

  // One message per line through decode(span) must agree on the count of records.
  std::vector<std::string_view> messages;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t\r") != std::string_view::npos) messages.push_back(line);
    start = end + 1;
  }
  auto each = decoder->decode(std::span<const std::string_view>(messages));
  if (each.is_ok()) {
    SABOT_CHECK_EQ(each->batch.num_rows() + static_cast<int64_t>(each->errors.size()),
                   static_cast<int64_t>(messages.size()));
  }

  // Round trip of the good rows.
  if (result.batch.num_rows() > 0 && !options.timestamp_accept_iso8601) {
    codec::JsonEncoder encoder;
    const std::string encoded = encoder.encode_lines(result.batch);
    codec::JsonDecodeOptions strict = options;
    strict.max_depth = 1024;
    strict.binary_as_base64 = true;  // what the encoder writes
    auto again_decoder = codec::JsonDecoder::make(result.batch.schema_ptr(), strict);
    SABOT_CHECK_OK(again_decoder);
    auto again = again_decoder->decode_lines(encoded);
    SABOT_CHECK_OK(again);
    SABOT_CHECK_EQ(again->errors.size(), size_t{0});
    SABOT_CHECK_EQ(again->batch.num_rows(), result.batch.num_rows());
    SABOT_CHECK(again->batch.equals(result.batch));
  }
  return 0;
}
