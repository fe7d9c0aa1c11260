// Kafka's default partitioner: murmur2 exactly as the Java client's Utils.murmur2 (seed
// 0x9747b28c), so that a key lands in the same partition whether Sabot or a Kafka producer wrote
// it. Pure functions; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "sabot/columnar/array.h"

namespace sabot::connectors {

// Utils.murmur2(byte[]) of Kafka's Java client, returned as the same signed 32-bit int.
int32_t kafka_murmur2(const uint8_t* data, size_t length);
inline int32_t kafka_murmur2(std::string_view bytes) {
  return kafka_murmur2(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

// Utils.toPositive(hash) % num_partitions: the partition Kafka's default partitioner gives a keyed
// record. num_partitions must be >= 1.
inline int32_t kafka_partition_for_hash(int32_t hash, int32_t num_partitions) {
  return static_cast<int32_t>(static_cast<uint32_t>(hash) & 0x7fffffffu) % num_partitions;
}
inline int32_t kafka_partition_for_key(std::string_view key, int32_t num_partitions) {
  return kafka_partition_for_hash(kafka_murmur2(key), num_partitions);
}

// The partition of every key of a binary or utf8 array; -1 for a null key (the caller decides
// where those go). `out` holds keys.length() entries.
void kafka_partitions_for_keys(const columnar::Array& keys, int32_t num_partitions, int32_t* out);

}  // namespace sabot::connectors
