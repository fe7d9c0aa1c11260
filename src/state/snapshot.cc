#include "sabot/state/snapshot.h"

#include <climits>
#include <cstring>

#include "sabot/base/check.h"

namespace sabot::state {
namespace {

constexpr std::string_view kMagic = "SBSN";
constexpr int32_t kEndMarker = INT32_MIN;
// The end marker, section count and checksum.
constexpr size_t kTrailerBytes = sizeof(int32_t) + sizeof(uint32_t) + sizeof(uint32_t);

}  // namespace

std::string describe_snapshot(std::string_view uid, std::string_view state_type) {
  return "operator '" + std::string(uid) + "' state '" + std::string(state_type) + "'";
}

SnapshotWriter::SnapshotWriter(std::string* out, const SnapshotHeader& header)
    : out_(out),
      w_(out),
      start_(out->size()),
      max_parallelism_(header.max_parallelism),
      seen_(header.max_parallelism + 1, false) {
  w_.put_raw(kMagic.data(), kMagic.size());
  w_.put<uint16_t>(kSnapshotFormatVersion);
  w_.put_bytes(header.operator_uid);
  w_.put_bytes(header.state_type);
  w_.put<uint16_t>(header.state_version);
  w_.put<uint32_t>(header.max_parallelism);
}

ByteWriter& SnapshotWriter::begin_section(int32_t key_group) {
  SABOT_CHECK(!finished_);
  SABOT_CHECK_GE(key_group, kOperatorWide);
  SABOT_CHECK_LT(key_group, static_cast<int64_t>(max_parallelism_));
  SABOT_CHECK(!seen_[static_cast<size_t>(key_group + 1)]);  // one section per key group
  seen_[static_cast<size_t>(key_group + 1)] = true;
  end_section();
  w_.put<int32_t>(key_group);
  length_at_ = out_->size();
  w_.put<uint64_t>(0);
  ++sections_;
  return w_;
}

void SnapshotWriter::end_section() {
  if (length_at_ == 0) return;
  const uint64_t len = out_->size() - length_at_ - sizeof(uint64_t);
  std::memcpy(out_->data() + length_at_, &len, sizeof(len));
  length_at_ = 0;
}

void SnapshotWriter::finish() {
  SABOT_CHECK(!finished_);
  end_section();
  w_.put<int32_t>(kEndMarker);
  w_.put<uint32_t>(sections_);
  w_.put<uint32_t>(crc32c(std::string_view(*out_).substr(start_)));
  finished_ = true;
}

Result<SnapshotReader> SnapshotReader::open(std::string_view bytes, std::string_view uid,
                                            std::string_view state_type, uint16_t max_state_version,
                                            uint32_t max_parallelism) {
  const std::string what = describe_snapshot(uid, state_type);
  auto bad = [&](const std::string& msg, size_t at) {
    return Status::invalid_data(what + ": " + msg + " at byte " + std::to_string(at));
  };
  const size_t min_size = kMagic.size() + sizeof(uint16_t) + kTrailerBytes;
  if (bytes.size() < min_size) {
    return bad("truncated snapshot of " + std::to_string(bytes.size()) + " bytes", bytes.size());
  }
  if (bytes.substr(0, kMagic.size()) != kMagic) return bad("no 'SBSN' snapshot magic", 0);
  uint16_t format = 0;
  std::memcpy(&format, bytes.data() + kMagic.size(), sizeof(format));
  if (format != kSnapshotFormatVersion) {
    return bad("snapshot format version " + std::to_string(format) + " is not readable (this " +
                   "build reads version " + std::to_string(kSnapshotFormatVersion) + ")",
               kMagic.size());
  }
  const size_t body_size = bytes.size() - sizeof(uint32_t);
  uint32_t stored = 0;
  std::memcpy(&stored, bytes.data() + body_size, sizeof(stored));
  const uint32_t computed = crc32c(bytes.substr(0, body_size));
  if (stored != computed) {
    return bad("checksum mismatch (stored " + std::to_string(stored) + ", computed " +
                   std::to_string(computed) + "): the snapshot is corrupt or truncated",
               body_size);
  }

  SnapshotReader out;
  ByteReader r(bytes.substr(0, body_size), what);
  SABOT_RETURN_IF_ERROR(r.skip(kMagic.size() + sizeof(uint16_t)));
  std::string_view s;
  SABOT_RETURN_IF_ERROR(r.get_bytes(&s));
  out.header_.operator_uid = std::string(s);
  SABOT_RETURN_IF_ERROR(r.get_bytes(&s));
  out.header_.state_type = std::string(s);
  SABOT_RETURN_IF_ERROR(r.get(&out.header_.state_version));
  SABOT_RETURN_IF_ERROR(r.get(&out.header_.max_parallelism));
  if (out.header_.operator_uid != uid) {
    return Status::invalid_argument(what + ": the snapshot belongs to operator '" +
                                    out.header_.operator_uid + "'");
  }
  if (out.header_.state_type != state_type) {
    return Status::invalid_argument(what + ": the snapshot holds state of type '" +
                                    out.header_.state_type + "'");
  }
  if (out.header_.state_version > max_state_version || out.header_.state_version == 0) {
    return Status::invalid_argument(what + ": state version " +
                                    std::to_string(out.header_.state_version) +
                                    " is not readable (this build reads versions 1 to " +
                                    std::to_string(max_state_version) + ")");
  }
  if (out.header_.max_parallelism != max_parallelism) {
    return Status::invalid_argument(
        what + ": the snapshot has max parallelism " + std::to_string(out.header_.max_parallelism) +
        ", the job " + std::to_string(max_parallelism) + " (key groups cannot be re-split)");
  }
  std::vector<bool> seen(max_parallelism + 1, false);
  while (true) {
    const size_t at = r.position();
    int32_t kg = 0;
    SABOT_RETURN_IF_ERROR(r.get(&kg));
    if (kg == kEndMarker) break;
    if (kg < kOperatorWide || kg >= static_cast<int64_t>(max_parallelism)) {
      return bad("section of key group " + std::to_string(kg) + " outside [-1, " +
                     std::to_string(max_parallelism) + ")",
                 at);
    }
    if (seen[static_cast<size_t>(kg + 1)]) {
      return bad("second section of key group " + std::to_string(kg), at);
    }
    seen[static_cast<size_t>(kg + 1)] = true;
    std::string_view payload;
    SABOT_RETURN_IF_ERROR(r.get_bytes(&payload));
    out.sections_.push_back({kg, payload, static_cast<size_t>(payload.data() - bytes.data())});
  }
  uint32_t count = 0;
  SABOT_RETURN_IF_ERROR(r.get(&count));
  if (count != out.sections_.size()) {
    return bad("trailer counts " + std::to_string(count) + " sections, the snapshot holds " +
                   std::to_string(out.sections_.size()),
               r.position() - sizeof(count));
  }
  SABOT_RETURN_IF_ERROR(r.expect_end());
  out.section_names_.reserve(out.sections_.size());
  for (const Section& sec : out.sections_) {
    out.section_names_.push_back(sec.key_group == kOperatorWide
                                     ? what + " operator-wide section"
                                     : what + " key group " + std::to_string(sec.key_group));
  }
  return out;
}

Result<SnapshotHeader> SnapshotReader::peek_header(std::string_view bytes) {
  ByteReader r(bytes, "snapshot header");
  char magic[4] = {};
  SABOT_RETURN_IF_ERROR(r.get_raw(magic, sizeof(magic)));
  if (std::string_view(magic, sizeof(magic)) != kMagic) return r.invalid("no 'SBSN' magic");
  uint16_t format = 0;
  SABOT_RETURN_IF_ERROR(r.get(&format));
  SnapshotHeader h;
  std::string_view s;
  SABOT_RETURN_IF_ERROR(r.get_bytes(&s));
  h.operator_uid = std::string(s);
  SABOT_RETURN_IF_ERROR(r.get_bytes(&s));
  h.state_type = std::string(s);
  SABOT_RETURN_IF_ERROR(r.get(&h.state_version));
  SABOT_RETURN_IF_ERROR(r.get(&h.max_parallelism));
  return h;
}

ByteReader SnapshotReader::section_reader(size_t i) const {
  SABOT_CHECK_LT(i, sections_.size());
  return ByteReader(sections_[i].payload, section_names_[i], sections_[i].offset);
}

}  // namespace sabot::state
