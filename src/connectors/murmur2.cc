#include "connectors/murmur2.h"

#include <cstring>

#include "sabot/base/check.h"

namespace sabot::connectors {

int32_t kafka_murmur2(const uint8_t* data, size_t length) {
  // Java's int arithmetic wraps modulo 2^32 and `>>>` is a logical shift: uint32_t gives both.
  constexpr uint32_t kSeed = 0x9747b28cu;
  constexpr uint32_t kM = 0x5bd1e995u;
  constexpr int kR = 24;
  uint32_t h = kSeed ^ static_cast<uint32_t>(length);
  const size_t length4 = length / 4;
  for (size_t i = 0; i < length4; ++i) {
    uint32_t k;
    std::memcpy(&k, data + i * 4, 4);  // little-endian load, as Java assembles the bytes
    k *= kM;
    k ^= k >> kR;
    k *= kM;
    h *= kM;
    h ^= k;
  }
  const uint8_t* tail = data + (length & ~size_t{3});
  switch (length % 4) {
    case 3:
      h ^= static_cast<uint32_t>(tail[2]) << 16;
      [[fallthrough]];
    case 2:
      h ^= static_cast<uint32_t>(tail[1]) << 8;
      [[fallthrough]];
    case 1:
      h ^= static_cast<uint32_t>(tail[0]);
      h *= kM;
  }
  h ^= h >> 13;
  h *= kM;
  h ^= h >> 15;
  return static_cast<int32_t>(h);
}

void kafka_partitions_for_keys(const columnar::Array& keys, int32_t num_partitions, int32_t* out) {
  SABOT_CHECK(keys.type().is_var_length());
  SABOT_CHECK_GE(num_partitions, 1);
  const int32_t* offsets = keys.offsets();
  const uint8_t* bytes = keys.raw_data();
  const int64_t n = keys.length();
  for (int64_t i = 0; i < n; ++i) {
    const int32_t begin = offsets[i];
    const int32_t h = kafka_murmur2(bytes + begin, static_cast<size_t>(offsets[i + 1] - begin));
    out[i] = kafka_partition_for_hash(h, num_partitions);
  }
  if (keys.null_count() > 0) {
    for (int64_t i = 0; i < n; ++i) {
      if (keys.is_null(i)) out[i] = -1;
    }
  }
}

}  // namespace sabot::connectors
