#include "connectors/murmur2.h"

#include <gtest/gtest.h>

#include <optional>
#include <random>
#include <string>
#include <vector>

#include "sabot/columnar/builder.h"

namespace sabot::connectors {
namespace {

// A line-by-line transcription of Kafka's Java Utils.murmur2, with Java's signed int arithmetic
// emulated through int64 wrapping and `>>>` as an unsigned shift: the oracle for random inputs.
int32_t java_murmur2(const std::string& data) {
  auto wrap = [](int64_t v) { return static_cast<int32_t>(static_cast<uint32_t>(v)); };
  auto urshift = [](int32_t v, int s) {
    return static_cast<int32_t>(static_cast<uint32_t>(v) >> s);
  };
  const int length = static_cast<int>(data.size());
  const int32_t seed = static_cast<int32_t>(0x9747b28c);
  const int32_t m = 0x5bd1e995;
  const int r = 24;
  int32_t h = seed ^ length;
  const int length4 = length / 4;
  auto byte = [&](int i) { return static_cast<int32_t>(static_cast<uint8_t>(data[i])) & 0xff; };
  for (int i = 0; i < length4; i++) {
    const int i4 = i * 4;
    int32_t k = wrap(int64_t{byte(i4 + 0)} + (int64_t{byte(i4 + 1)} << 8) +
                     (int64_t{byte(i4 + 2)} << 16) + (int64_t{byte(i4 + 3)} << 24));
    k = wrap(int64_t{k} * m);
    k ^= urshift(k, r);
    k = wrap(int64_t{k} * m);
    h = wrap(int64_t{h} * m);
    h ^= k;
  }
  const int rem = length % 4;
  if (rem == 3) h ^= byte((length & ~3) + 2) << 16;
  if (rem >= 2) h ^= byte((length & ~3) + 1) << 8;
  if (rem >= 1) {
    h ^= byte(length & ~3);
    h = wrap(int64_t{h} * m);
  }
  h ^= urshift(h, 13);
  h = wrap(int64_t{h} * m);
  h ^= urshift(h, 15);
  return h;
}

// The expected values of Kafka's UtilsTest.testMurmur2 (clients/src/test/java/org/apache/kafka/
// common/utils/UtilsTest.java).
struct KafkaCase {
  std::string key;
  int32_t hash;
};
const std::vector<KafkaCase>& kafka_cases() {
  static const std::vector<KafkaCase> kCases = {
      {"21", -973932308},
      {"foobar", -790332482},
      {"a-little-bit-long-string", -985981536},
      {"a-little-bit-longer-string", -1486304829},
      {"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
      {"abc", 479470107},
  };
  return kCases;
}

TEST(KafkaMurmur2, MatchesKafkaUtilsTestValues) {
  for (const KafkaCase& c : kafka_cases()) {
    EXPECT_EQ(kafka_murmur2(c.key), c.hash) << "key " << c.key;
  }
}

TEST(KafkaMurmur2, TestOracleMatchesKafkaToo) {
  for (const KafkaCase& c : kafka_cases()) {
    EXPECT_EQ(java_murmur2(c.key), c.hash) << "key " << c.key;
  }
}

// Partitions derived by hand from Kafka's hashes: (hash & 0x7fffffff) % n.
TEST(KafkaMurmur2, KnownKeysLandInKafkasPartitions) {
  struct Expected {
    std::string key;
    int32_t p3, p8, p12;
  };
  const std::vector<Expected> expected = {
      {"21", 0, 4, 0},
      {"foobar", 0, 6, 6},
      {"a-little-bit-long-string", 2, 0, 8},
      {"a-little-bit-longer-string", 2, 3, 11},
      {"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", 2, 5, 5},
      {"abc", 0, 3, 3},
  };
  for (const Expected& e : expected) {
    EXPECT_EQ(kafka_partition_for_key(e.key, 3), e.p3) << e.key;
    EXPECT_EQ(kafka_partition_for_key(e.key, 8), e.p8) << e.key;
    EXPECT_EQ(kafka_partition_for_key(e.key, 12), e.p12) << e.key;
    EXPECT_EQ(kafka_partition_for_key(e.key, 1), 0) << e.key;
  }
}

TEST(KafkaMurmur2, NegativeHashesMaskTheSignBitLikeToPositive) {
  // toPositive clears only the sign bit; it is not abs().
  EXPECT_EQ(kafka_partition_for_hash(-1, 1000), 0x7fffffff % 1000);
  EXPECT_EQ(kafka_partition_for_hash(INT32_MIN, 7), 0);
  EXPECT_EQ(kafka_partition_for_hash(-973932308, 3), ((-973932308) & 0x7fffffff) % 3);
}

TEST(KafkaMurmur2, RandomBytesOfEveryTailLengthMatchJavaTranscription) {
  std::mt19937_64 rng(20240611);
  for (int iter = 0; iter < 2000; ++iter) {
    const size_t len = rng() % 67;  // covers every length % 4 many times, including 0
    std::string s(len, '\0');
    for (char& c : s) c = static_cast<char>(rng() & 0xff);  // high bytes test sign handling
    ASSERT_EQ(kafka_murmur2(s), java_murmur2(s)) << "length " << len;
  }
}

TEST(KafkaMurmur2, PartitionsForKeysArrayMatchesScalarWithNullsAndSlices) {
  std::mt19937_64 rng(7);
  for (int iter = 0; iter < 50; ++iter) {
    const int64_t n = static_cast<int64_t>(rng() % 300);
    const double null_density = static_cast<double>(rng() % 100) / 100.0;
    const int32_t partitions = 1 + static_cast<int32_t>(rng() % 16);
    const bool as_utf8 = rng() % 2 == 0;
    columnar::BinaryBuilder builder(as_utf8 ? columnar::utf8() : columnar::binary());
    std::vector<std::optional<std::string>> model;
    for (int64_t i = 0; i < n; ++i) {
      if (std::uniform_real_distribution<double>(0, 1)(rng) < null_density) {
        builder.append_null();
        model.push_back(std::nullopt);
      } else {
        std::string key = "acct-" + std::to_string(rng() % 100000);
        builder.append(key);
        model.push_back(key);
      }
    }
    columnar::Array keys = builder.finish();
    const int64_t offset = n == 0 ? 0 : static_cast<int64_t>(rng() % static_cast<uint64_t>(n + 1));
    const int64_t length = static_cast<int64_t>(rng() % static_cast<uint64_t>(n - offset + 1));
    columnar::Array slice = keys.slice(offset, length);
    std::vector<int32_t> out(static_cast<size_t>(length), 99);
    kafka_partitions_for_keys(slice, partitions, out.data());
    for (int64_t i = 0; i < length; ++i) {
      const auto& key = model[static_cast<size_t>(offset + i)];
      const int32_t want = key ? kafka_partition_for_hash(java_murmur2(*key), partitions) : -1;
      ASSERT_EQ(out[static_cast<size_t>(i)], want) << "row " << i << " of iteration " << iter;
    }
  }
}

}  // namespace
}  // namespace sabot::connectors
