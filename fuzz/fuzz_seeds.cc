// Writes the binary seed corpora of the fuzzers with Sabot's own writers, so that they start from
// valid inputs and the mutations reach deep into the readers:
//   fuzz_seeds ipc DIR       Arrow IPC streams (every type, nulls, slices, empty batches, 8- and
//                            64-byte alignment, no batches)
//   fuzz_seeds snapshot DIR  keyed-state snapshots as snapshot_reader_fuzzer takes them: an
//                            option byte, then the snapshot without its checksum
// The files are committed in fuzz/corpus/; rerun after a format change.
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "sabot/base/check.h"
#include "sabot/columnar/builder.h"
#include "sabot/columnar/ipc.h"
#include "snapshot_fuzz_util.h"

namespace {

using namespace sabot;
using namespace sabot::columnar;

void write_file(const std::string& path, const void* data, size_t size) {
  std::ofstream out(path, std::ios::binary);
  out.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
  SABOT_CHECK(out.good());
}

RecordBatch all_types_batch(int rows) {
  auto s = schema({field("b", boolean()), field("i32", int32()), field("i64", int64(), false),
                   field("u64", uint64()), field("f64", float64()), field("s", utf8()),
                   field("bin", binary()), field("ts", timestamp(TimeUnit::kMicro))});
  std::vector<Array> columns;
  for (const Field& f : s->fields()) {
    auto b = make_builder(f.type);
    for (int i = 0; i < rows; ++i) {
      if (f.nullable && i % 3 == 2) {
        b->append_null();
        continue;
      }
      switch (f.type.id()) {
        case TypeId::kBool:
          b->append_scalar(Scalar::of_bool(i % 2 == 0));
          break;
        case TypeId::kInt32:
          b->append_scalar(Scalar::of_int32(i == 0 ? std::numeric_limits<int32_t>::min() : i));
          break;
        case TypeId::kInt64:
          b->append_scalar(Scalar::of_int64(i == 0 ? std::numeric_limits<int64_t>::max() : -i));
          break;
        case TypeId::kUInt64:
          b->append_scalar(Scalar::of_uint64(~uint64_t{0} - static_cast<uint64_t>(i)));
          break;
        case TypeId::kFloat64:
          b->append_scalar(Scalar::of_float64(i == 1 ? -0.0 : i * 1.5));
          break;
        case TypeId::kUtf8:
          b->append_scalar(
              Scalar::of_utf8(i == 0 ? "" : std::string(static_cast<size_t>(i), 'x') + "é☃"));
          break;
        case TypeId::kBinary:
          b->append_scalar(Scalar::of_binary(std::string(static_cast<size_t>(i), '\0') + "\xff"));
          break;
        case TypeId::kTimestamp:
          b->append_scalar(Scalar::of_timestamp(1'700'000'000'000'000 + i, TimeUnit::kMicro));
          break;
      }
    }
    columns.push_back(b->finish());
  }
  auto batch = RecordBatch::make(s, std::move(columns));
  SABOT_CHECK_OK(batch);
  return *batch;
}

void ipc_seeds(const std::string& dir) {
  auto put = [&](const std::string& name, SchemaPtr schema, const std::vector<RecordBatch>& batches,
                 int64_t alignment) {
    auto bytes =
        write_ipc_stream(std::move(schema), batches, IpcWriteOptions{.alignment = alignment});
    SABOT_CHECK_OK(bytes);
    write_file(dir + "/" + name, bytes->data(), bytes->size());
  };
  const RecordBatch batch = all_types_batch(7);
  put("all_types_two_batches", batch.schema_ptr(), {batch, all_types_batch(3)}, 64);
  put("all_types_align8", batch.schema_ptr(), {batch}, 8);
  put("sliced", batch.schema_ptr(), {batch.slice(1, 5)}, 8);
  put("empty_batch", batch.schema_ptr(), {batch.slice(0, 0)}, 8);
  put("no_batches", batch.schema_ptr(), {}, 8);
  auto one = schema({field("n", int64(), false)});
  put("one_int64_column", one, {RecordBatch::make(one, {int64_array({1, 2, 3})}).value()}, 8);
}

void snapshot_seeds(const std::string& dir) {
  // option byte: bits 0-1 key types, bit 2 max parallelism 16, bit 3 owns half the key groups,
  // bit 4 states registered before restore (see snapshot_reader_fuzzer.cc).
  for (uint8_t option : {0, 1, 2, 3, 4, 8 | 2, 16 | 1}) {
    const int keys = option & 3;
    const uint32_t maxp = (option & 4) != 0 ? 16 : 128;
    ManualClock clock(Timestamp(100));
    auto backend = fuzz::make_backend(keys, maxp, {}, &clock);
    fuzz::Handles h = fuzz::get_handles(*backend);
    std::vector<Array> key_columns;
    for (const DataType& t : fuzz::key_types_for(keys)) {
      auto b = make_builder(t);
      for (int i = 0; i < 5; ++i) {
        switch (t.id()) {
          case TypeId::kInt64:
            b->append_scalar(Scalar::of_int64(i * 1000 - 2));
            break;
          case TypeId::kUtf8:
            b->append_scalar(Scalar::of_utf8("acct-" + std::to_string(i)));
            break;
          case TypeId::kBinary:
            b->append_scalar(Scalar::of_binary(std::string(static_cast<size_t>(i), '\x01')));
            break;
          default:
            b->append_scalar(Scalar::of_timestamp(i, TimeUnit::kMilli));
            break;
        }
      }
      key_columns.push_back(b->finish());
    }
    std::vector<state::KeyId> ids;
    SABOT_CHECK_OK(backend->resolve_keys(key_columns, &ids));
    for (size_t i = 0; i < ids.size(); ++i) {
      backend->set_current_key(ids[i]);
      const auto n = static_cast<int64_t>(i);
      for (state::Namespace ns : {state::Namespace{0}, state::Namespace{1}}) {
        backend->set_current_namespace(ns);
        h.value->update(n * 7);
        h.list->add("item " + std::to_string(n));
        if (i % 2 == 0) h.list->add("");
        h.map->put(n, "v");
        h.map->put(-n - 1, "w");
        h.reducing->add(n);
        h.agg->add(n);
        h.nested->update({std::nullopt, 1.5 * static_cast<double>(n)});
      }
      clock.advance_millis(100);
    }
    std::string snap;
    SABOT_CHECK_OK(backend->snapshot(fuzz::kUid, &snap));
    snap.resize(snap.size() - sizeof(uint32_t));  // the fuzzer appends the CRC-32C
    snap.insert(snap.begin(), static_cast<char>(option));
    write_file(dir + "/keys" + std::to_string(keys) + "_option" + std::to_string(option),
               snap.data(), snap.size());
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: fuzz_seeds ipc|snapshot DIR\n");
    return 2;
  }
  const std::string what = argv[1];
  if (what == "ipc") {
    ipc_seeds(argv[2]);
  } else if (what == "snapshot") {
    snapshot_seeds(argv[2]);
  } else {
    std::fprintf(stderr, "fuzz_seeds: unknown corpus '%s'\n", argv[1]);
    return 2;
  }
  return 0;
}
