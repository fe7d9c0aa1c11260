// Fuzzes CsvDecoder (src/codec/csv.cc). Input: two bytes of options (delimiter, header, null
// string, binary encoding, nullability, one-column schema; the streaming chunk size), then the
// text. Checks beyond "no crash, no sanitizer report":
//   - streaming the text in chunks of any size gives the same rows and errors as decode();
//   - the good rows encode with CsvEncoder and decode again without errors to an equal batch.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sabot/base/check.h"
#include "sabot/codec/csv.h"

namespace {

using namespace sabot;
using columnar::field;
using columnar::TimeUnit;

columnar::SchemaPtr schema_for(bool nullable, bool one_column) {
  if (one_column) return columnar::schema({field("s", columnar::utf8(), nullable)});
  return columnar::schema({
      field("b", columnar::boolean(), nullable),
      field("i32", columnar::int32(), nullable),
      field("i64", columnar::int64(), nullable),
      field("u64", columnar::uint64(), nullable),
      field("f64", columnar::float64(), nullable),
      field("s", columnar::utf8(), nullable),
      field("bin", columnar::binary(), nullable),
      field("ts", columnar::timestamp(TimeUnit::kMicro), nullable),
  });
}

void check_same_errors(const std::vector<codec::RecordError>& a,
                       const std::vector<codec::RecordError>& b) {
  SABOT_CHECK_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    SABOT_CHECK_EQ(a[i].index, b[i].index);
    SABOT_CHECK_EQ(a[i].byte_offset, b[i].byte_offset);
    SABOT_CHECK_EQ(a[i].message, b[i].message);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint8_t flags = data[0];
  const size_t chunk = 1 + data[1] % 64;
  const std::string_view text(reinterpret_cast<const char*>(data + 2), size - 2);

  codec::CsvOptions options;
  static constexpr char kDelimiters[] = {',', ';', '\t', '|'};
  options.delimiter = kDelimiters[flags & 3];
  options.header = (flags & 4) == 0;
  if ((flags & 8) != 0) options.null_string = "NA";
  options.binary_as_base64 = (flags & 16) == 0;
  if ((flags & 32) != 0) options.quote = '\'';
  const bool nullable = (flags & 64) == 0;
  const bool one_column = (flags & 128) != 0;
  options.max_record_bytes = 4096;

  auto made = codec::CsvDecoder::make(schema_for(nullable, one_column), options);
  SABOT_CHECK_OK(made);
  codec::CsvDecoder& decoder = *made;

  auto whole = decoder.decode(text);

  // The same text as a stream of `chunk`-byte pieces.
  std::vector<columnar::RecordBatch> batches;
  std::vector<codec::RecordError> errors;
  bool stream_failed = false;
  for (size_t pos = 0; pos <= text.size() && !stream_failed; pos += chunk) {
    if (pos < text.size()) decoder.feed(text.substr(pos, std::min(chunk, text.size() - pos)));
    if (pos + chunk > text.size()) decoder.finish_input();
    while (true) {
      auto next = decoder.next_batch(7);
      if (!next.is_ok()) {
        stream_failed = true;
        break;
      }
      if (next->batch.num_rows() == 0 && next->errors.empty()) break;
      SABOT_CHECK_LE(next->batch.num_rows() + static_cast<int64_t>(next->errors.size()), 7);
      if (next->batch.num_rows() > 0) batches.push_back(next->batch);
      errors.insert(errors.end(), next->errors.begin(), next->errors.end());
    }
  }
  if (!stream_failed) SABOT_CHECK(decoder.exhausted());

  if (!whole.is_ok()) return 0;  // refused input (a header problem): fine
  for (const columnar::Array& column : whole->batch.columns()) {
    SABOT_CHECK_OK(column.validate_full());
  }
  // max_record_bytes bounds only the stream, so a long record may fail it and not decode().
  if (!stream_failed) {
    check_same_errors(whole->errors, errors);
    if (batches.empty()) {
      SABOT_CHECK_EQ(whole->batch.num_rows(), 0);
    } else {
      auto joined = columnar::concat(std::span<const columnar::RecordBatch>(batches));
      SABOT_CHECK_OK(joined);
      SABOT_CHECK(joined->equals(whole->batch));
    }
  }

  // Round trip of the good rows.
  if (whole->batch.num_rows() > 0) {
    codec::CsvEncoder encoder(options);
    const std::string encoded = encoder.encode(whole->batch);
    auto again_decoder = codec::CsvDecoder::make(whole->batch.schema_ptr(), options);
    SABOT_CHECK_OK(again_decoder);
    auto again = again_decoder->decode(encoded);
    SABOT_CHECK_OK(again);
    SABOT_CHECK_EQ(again->errors.size(), size_t{0});
    SABOT_CHECK(again->batch.equals(whole->batch));
  }
  return 0;
}
