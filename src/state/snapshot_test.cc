#include "sabot/state/snapshot.h"

#include <gtest/gtest.h>

#include <string>

namespace sabot::state {
namespace {

constexpr uint32_t kMaxP = 16;

std::string sample_snapshot() {
  std::string out;
  SnapshotWriter w(&out, {"counts", "window", 2, kMaxP});
  w.begin_section(kOperatorWide).put<int64_t>(1234);
  ByteWriter& s3 = w.begin_section(3);
  s3.put_bytes("key three");
  s3.put<uint32_t>(33);
  w.begin_section(9).put_bytes("key nine");
  w.finish();
  return out;
}

Result<SnapshotReader> open_sample(std::string_view bytes) {
  return SnapshotReader::open(bytes, "counts", "window", 2, kMaxP);
}

TEST(Snapshot, SectionsComeBackByKeyGroup) {
  const std::string bytes = sample_snapshot();
  auto r = open_sample(bytes);
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->header().operator_uid, "counts");
  EXPECT_EQ(r->header().state_version, 2);
  ASSERT_EQ(r->sections().size(), 3u);
  EXPECT_EQ(r->sections()[0].key_group, kOperatorWide);
  EXPECT_EQ(r->sections()[1].key_group, 3);
  EXPECT_EQ(r->sections()[2].key_group, 9);
  ByteReader s3 = r->section_reader(1);
  std::string_view key;
  uint32_t v = 0;
  ASSERT_TRUE(s3.get_bytes(&key).is_ok());
  ASSERT_TRUE(s3.get(&v).is_ok());
  EXPECT_EQ(key, "key three");
  EXPECT_EQ(v, 33u);
  EXPECT_TRUE(s3.expect_end().is_ok());
  // A payload that is read too far names the operator, the state, the key group and the offset
  // of the byte in the whole snapshot.
  Status st = s3.get(&v);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("operator 'counts' state 'window' key group 3: truncated"),
            std::string::npos)
      << st.message();
  const size_t end_of_section = r->sections()[1].offset + r->sections()[1].payload.size();
  EXPECT_NE(st.message().find("at byte " + std::to_string(end_of_section)), std::string::npos)
      << st.message();
}

TEST(Snapshot, EveryTruncationIsRefusedNamingTheOperatorAndState) {
  const std::string bytes = sample_snapshot();
  for (size_t n = 0; n < bytes.size(); ++n) {
    auto r = open_sample(std::string_view(bytes).substr(0, n));
    ASSERT_FALSE(r.is_ok()) << "accepted a snapshot cut to " << n << " bytes";
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidData);
    EXPECT_NE(r.status().message().find("operator 'counts' state 'window'"), std::string::npos)
        << r.status().message();
    EXPECT_NE(r.status().message().find("at byte"), std::string::npos) << r.status().message();
  }
}

TEST(Snapshot, EveryFlippedBitIsRefused) {
  const std::string bytes = sample_snapshot();
  for (size_t i = 0; i < bytes.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string bad = bytes;
      bad[i] = static_cast<char>(bad[i] ^ (1 << bit));
      auto r = open_sample(bad);
      ASSERT_FALSE(r.is_ok()) << "accepted a flip of bit " << bit << " of byte " << i;
      EXPECT_NE(r.status().message().find("operator 'counts' state 'window'"), std::string::npos)
          << r.status().message();
    }
  }
  // The checksum is what catches a flip inside a payload, and it says so with the offset.
  std::string bad = bytes;
  bad[bytes.size() - 20] ^= 1;
  auto r = open_sample(bad);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("checksum mismatch"), std::string::npos)
      << r.status().message();
  EXPECT_NE(r.status().message().find("at byte " + std::to_string(bytes.size() - 4)),
            std::string::npos)
      << r.status().message();
}

TEST(Snapshot, TheSnapshotOfAnythingElseIsRefusedByName) {
  const std::string bytes = sample_snapshot();
  auto other_type = SnapshotReader::open(bytes, "counts", "interval-join", 2, kMaxP);
  ASSERT_FALSE(other_type.is_ok());
  EXPECT_EQ(other_type.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(other_type.status().message().find("holds state of type 'window'"), std::string::npos)
      << other_type.status().message();

  auto newer = SnapshotReader::open(bytes, "counts", "window", 1, kMaxP);
  ASSERT_FALSE(newer.is_ok());
  EXPECT_NE(newer.status().message().find("state version 2 is not readable"), std::string::npos)
      << newer.status().message();

  auto other_uid = SnapshotReader::open(bytes, "sums", "window", 2, kMaxP);
  ASSERT_FALSE(other_uid.is_ok());
  EXPECT_NE(other_uid.status().message().find("belongs to operator 'counts'"), std::string::npos)
      << other_uid.status().message();

  auto other_maxp = SnapshotReader::open(bytes, "counts", "window", 2, 128);
  ASSERT_FALSE(other_maxp.is_ok());
  EXPECT_NE(other_maxp.status().message().find("max parallelism 16"), std::string::npos)
      << other_maxp.status().message();

  // Another format version: rewrite the version and the checksum, as a future writer would.
  std::string future = bytes;
  future[4] = 2;
  const uint32_t crc = crc32c(std::string_view(future).substr(0, future.size() - 4));
  std::memcpy(future.data() + future.size() - 4, &crc, 4);
  auto f = open_sample(future);
  ASSERT_FALSE(f.is_ok());
  EXPECT_NE(f.status().message().find("snapshot format version 2 is not readable"),
            std::string::npos)
      << f.status().message();
}

TEST(Snapshot, AnEmptySnapshotHasNoSections) {
  std::string out = "prefix";
  SnapshotWriter w(&out, {"dedup", "dedup", 1, kMaxP});
  w.finish();
  auto r = SnapshotReader::open(std::string_view(out).substr(6), "dedup", "dedup", 1, kMaxP);
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_TRUE(r->sections().empty());
}

}  // namespace
}  // namespace sabot::state
