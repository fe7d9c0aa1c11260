// Fuzzes the MessagePack codec's decoder (src/codec/msgpack_codec.cc) over a schema of every type.
// Input: one byte of options, then messages separated by the byte 0xC1 (never valid MessagePack,
// so that each message is parsed alone). Checks beyond "no crash, no sanitizer report":
//   - rows plus errors account for every message, errors in increasing index order, each with a
//     message;
//   - the good rows encode with the same codec and decode again without errors to an equal batch.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "sabot/base/check.h"
#include "sabot/codec/codec.h"
#include "sabot/columnar/builder.h"

namespace {

using namespace sabot;
using columnar::field;

columnar::SchemaPtr schema_for(bool nullable) {
  return columnar::schema({
      field("b", columnar::boolean(), nullable),
      field("i32", columnar::int32(), nullable),
      field("i64", columnar::int64(), nullable),
      field("u64", columnar::uint64(), nullable),
      field("f64", columnar::float64(), nullable),
      field("s", columnar::utf8(), nullable),
      field("bin", columnar::binary(), nullable),
      field("ts", columnar::timestamp(columnar::TimeUnit::kMilli), true),
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t flags = data[0];
  const std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);

  codec::MsgpackOptions options;
  options.ignore_unknown_fields = (flags & 1) == 0;
  options.missing_as_null = (flags & 2) == 0;
  options.max_depth = (flags & 4) != 0 ? 3 : 64;
  const codec::CodecPtr codec = codec::msgpack(schema_for((flags & 8) == 0), options);

  columnar::BinaryBuilder builder(columnar::binary());
  size_t start = 0;
  while (start <= input.size()) {
    size_t end = input.find('\xC1', start);
    if (end == std::string_view::npos) end = input.size();
    builder.append(input.substr(start, end - start));
    start = end + 1;
  }
  const columnar::Array messages = builder.finish();

  auto decoder = codec->make_decoder();
  SABOT_CHECK_OK(decoder);
  auto decoded = (*decoder)->decode(messages);
  SABOT_CHECK_OK(decoded);
  SABOT_CHECK_EQ(decoded->batch.num_rows() + static_cast<int64_t>(decoded->errors.size()),
                 messages.length());
  int64_t previous = -1;
  for (const codec::RecordError& e : decoded->errors) {
    SABOT_CHECK_GT(e.index, previous);
    SABOT_CHECK(!e.message.empty());
    previous = e.index;
  }
  for (const columnar::Array& column : decoded->batch.columns()) {
    SABOT_CHECK_OK(column.validate_full());
  }

  if (decoded->batch.num_rows() > 0) {
    auto encoder = codec->make_encoder();
    SABOT_CHECK_OK(encoder);
    auto encoded = (*encoder)->encode(decoded->batch);
    SABOT_CHECK_OK(encoded);
    auto again = (*decoder)->decode(*encoded);
    SABOT_CHECK_OK(again);
    SABOT_CHECK_EQ(again->errors.size(), size_t{0});
    SABOT_CHECK(again->batch.equals(decoded->batch));
  }
  return 0;
}
