// Fuzzes the keyed-state snapshot reader (KeyedStateBackend::restore: the envelope of
// state/snapshot.h, then src/state/memory_backend.cc and the StateCodec decoders of
// include/sabot/state/state_codec.h it uses). Input: one option byte (key types, max parallelism,
// owned key groups, states registered before or after restore), then the snapshot without its
// trailing CRC-32C: the fuzzer appends the right checksum so that mutations reach the parser
// instead of the checksum test. Checks beyond "no crash, no sanitizer report": every restored entry
// can be read, and a backend that restored successfully snapshots into bytes that restore again.
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sabot/base/bytes.h"
#include "sabot/base/check.h"
#include "sabot/state/state_codec.h"
#include "snapshot_fuzz_util.h"

namespace {

using namespace sabot;

void read_all(state::KeyedStateBackend& b, const fuzz::Handles& h) {
  for (state::KeyId k = 0; k < b.keys().num_keys(); ++k) {
    b.set_current_key(k);
    (void)b.current_key_values();
    for (state::Namespace ns : {state::Namespace{0}, state::Namespace{1}}) {
      b.set_current_namespace(ns);
      if (h.value != nullptr) (void)h.value->value();
      if (h.list != nullptr) (void)h.list->get().size();
      if (h.map != nullptr) (void)h.map->entries();
      if (h.reducing != nullptr) (void)h.reducing->get();
      if (h.agg != nullptr) (void)h.agg->get();
      if (h.nested != nullptr) (void)h.nested->value();
    }
  }
  b.set_current_namespace(0);
}

// The StateCodec decoders on their own, over the raw bytes.
void decode_values(std::string_view bytes) {
  std::string s;
  (void)state::decode_state_value(bytes, &s);
  std::vector<std::string> vs;
  (void)state::decode_state_value(bytes, &vs);
  std::map<int64_t, std::vector<uint32_t>> m;
  (void)state::decode_state_value(bytes, &m);
  std::optional<std::pair<bool, std::string>> o;
  (void)state::decode_state_value(bytes, &o);
  std::vector<std::optional<double>> vo;
  (void)state::decode_state_value(bytes, &vo);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t flags = data[0];
  const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  decode_values(body);

  std::string snapshot(body);
  ByteWriter w(&snapshot);
  w.put<uint32_t>(crc32c(body));  // the envelope's trailing CRC-32C

  const int keys = flags & 3;
  const uint32_t maxp = (flags & 4) != 0 ? 16 : 128;
  std::vector<KeyGroup> groups;  // all
  if ((flags & 8) != 0) groups = state::key_groups_for_subtask(1, 2, static_cast<int>(maxp));
  const bool register_first = (flags & 16) != 0;

  ManualClock clock(Timestamp(500));
  auto backend = fuzz::make_backend(keys, maxp, groups, &clock);
  fuzz::Handles h;
  if (register_first) h = fuzz::get_handles(*backend);
  const Status restored = backend->restore(fuzz::kUid, snapshot);
  if (!restored.is_ok()) {
    SABOT_CHECK(!restored.message().empty());
    return 0;
  }
  if (!register_first) h = fuzz::get_handles(*backend);
  read_all(*backend, h);
  clock.advance_millis(600);  // past the list's TTL for some entries
  (void)backend->purge_expired();
  read_all(*backend, h);

  // What restored writes a snapshot that restores.
  std::string again;
  SABOT_CHECK_OK(backend->snapshot(fuzz::kUid, &again));
  auto fresh = fuzz::make_backend(keys, maxp, groups, &clock);
  SABOT_CHECK_OK(fresh->restore(fuzz::kUid, again));
  fuzz::Handles fh = fuzz::get_handles(*fresh);
  read_all(*fresh, fh);
  return 0;
}
