// What every per-message codec's decoder does around its own parsing: refuse a message array that
// is not binary or utf8, turn null messages into bad records, and build one row per good message.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sabot/codec/codec.h"
#include "sabot/columnar/builder.h"

namespace sabot::codec {

inline Status check_message_array(std::string_view codec, const columnar::Array& messages) {
  const columnar::TypeId id = messages.type().id();
  if (id != columnar::TypeId::kBinary && id != columnar::TypeId::kUtf8) {
    return Status::type_error(std::string(codec) + " codec: messages must be binary or utf8, got " +
                              messages.type().to_string());
  }
  return Status::ok();
}

// Decodes `messages` one by one into `builders` (one per field of `schema`).
// `decode_one(message, error)` appends exactly one row and returns true, or appends nothing, sets
// `error` to why the message is bad and returns false.
template <typename DecodeOne>
DecodeResult decode_messages(const columnar::Array& messages, const columnar::SchemaPtr& schema,
                             std::vector<std::unique_ptr<columnar::ArrayBuilder>>& builders,
                             DecodeOne&& decode_one) {
  DecodeResult result;
  for (auto& b : builders) b->reserve(messages.length());
  int64_t rows = 0;
  std::string error;
  for (int64_t i = 0; i < messages.length(); ++i) {
    if (messages.is_null(i)) {
      result.errors.push_back(RecordError{i, -1, "null message"});
      continue;
    }
    error.clear();
    if (!decode_one(messages.string_view(i), error)) {
      result.errors.push_back(RecordError{i, -1, std::move(error)});
      continue;
    }
    ++rows;
  }
  std::vector<columnar::Array> columns;
  columns.reserve(builders.size());
  for (auto& b : builders) columns.push_back(b->finish());
  result.batch = columnar::RecordBatch::make_unchecked(schema, std::move(columns), rows);
  return result;
}

}  // namespace sabot::codec
