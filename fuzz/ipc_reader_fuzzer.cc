// Fuzzes IpcStreamReader (src/columnar/ipc.cc), the Arrow IPC stream reader. The input is the
// stream. Checks beyond "no crash, no sanitizer report": every batch it hands out passes
// validate_full() and has the stream's schema, every value can be read, and the batches written
// again with IpcStreamWriter read back equal.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <vector>

#include "sabot/base/check.h"
#include "sabot/columnar/ipc.h"

namespace {

using namespace sabot;
using namespace sabot::columnar;

// Reads every value, so that ASan sees any buffer shorter than the array claims.
uint64_t touch(const Array& a) {
  uint64_t sum = 0;
  for (int64_t i = 0; i < a.length(); ++i) {
    if (!a.is_valid(i)) continue;
    switch (a.type().id()) {
      case TypeId::kBool:
        sum += a.bool_value(i) ? 1 : 0;
        break;
      case TypeId::kInt32:
        sum += static_cast<uint64_t>(a.value<int32_t>(i));
        break;
      case TypeId::kInt64:
      case TypeId::kTimestamp:
        sum += static_cast<uint64_t>(a.value<int64_t>(i));
        break;
      case TypeId::kUInt64:
        sum += a.value<uint64_t>(i);
        break;
      case TypeId::kFloat64: {
        double d = a.value<double>(i);
        uint64_t bits = 0;
        std::memcpy(&bits, &d, sizeof(bits));
        sum += bits;
        break;
      }
      case TypeId::kUtf8:
      case TypeId::kBinary:
        for (char c : a.string_view(i)) sum += static_cast<uint8_t>(c);
        break;
    }
  }
  return sum;
}

// Reads the whole stream from `stream` and checks what comes out.
void read_and_check(const BufferPtr& stream) {
  auto reader = IpcStreamReader::open(stream);
  if (!reader.is_ok()) return;
  const SchemaPtr schema = reader->schema();
  SABOT_CHECK(schema != nullptr);
  std::vector<RecordBatch> batches;
  uint64_t sink = 0;
  for (int i = 0; i < 10'000; ++i) {
    auto next = reader->next();
    if (!next.is_ok()) break;
    if (!next->has_value()) break;
    const RecordBatch& batch = **next;
    SABOT_CHECK(batch.schema() == *schema);
    for (const Array& column : batch.columns()) {
      SABOT_CHECK_OK(column.validate_full());
      SABOT_CHECK_EQ(column.length(), batch.num_rows());
      sink += touch(column);
    }
    batches.push_back(batch);
  }
  if (sink == 42) std::memset(&sink, 0, sizeof(sink));  // keep `touch` from being optimised away

  // What was read writes and reads back the same.
  auto written = write_ipc_stream(schema, batches);
  SABOT_CHECK_OK(written);
  auto reread =
      read_ipc_stream(Buffer::copy_of(written->data(), static_cast<int64_t>(written->size())));
  SABOT_CHECK_OK(reread);
  SABOT_CHECK(*reread->first == *schema);
  SABOT_CHECK_EQ(reread->second.size(), batches.size());
  for (size_t i = 0; i < batches.size(); ++i) SABOT_CHECK(reread->second[i].equals(batches[i]));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto n = static_cast<int64_t>(size);
  // In 64-byte-aligned memory, as a reader of a file or socket holds it (zero-copy buffers)...
  read_and_check(Buffer::copy_of(data, n));
  // ...and one byte off, so that every 8-byte buffer is misaligned and copied.
  auto shifted = Buffer::allocate(n + 1);
  if (n > 0) std::memcpy(shifted->mutable_data() + 1, data, size);
  read_and_check(Buffer::slice(shifted, 1, n));
  return 0;
}
