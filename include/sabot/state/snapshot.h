// The one snapshot format of every stateful operator: an envelope around the operator's own
// payload (written with base/bytes.h) that makes every snapshot self-describing, versioned,
// checksummed and split by key group, so that any range of key groups restores into a subtask at
// any parallelism.
//
//   "SBSN" | u16 format version | operator uid | state type | u16 state version
//   | u32 max parallelism
//   | sections: i32 key group (-1: operator-wide state) | u64 length | payload
//   | i32 end marker (INT32_MIN) | u32 section count | u32 CRC-32C of every byte before it
//
// Strings are a u64 length and the bytes. A key group has at most one section; sections with no
// state may be left out. Every error names the operator uid, the state type and the byte offset.
//
// Restore contract (runtime/operator.h): a subtask gets every snapshot of its operator uid that
// may hold one of its key groups, one restore_state() call each; it keeps the sections of the key
// groups it owns and merges the operator-wide sections (e.g. takes the minimum of watermarks).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sabot/base/bytes.h"
#include "sabot/base/status.h"

namespace sabot::state {

inline constexpr uint16_t kSnapshotFormatVersion = 1;
// The key group of a section that holds operator-wide state (not keyed).
inline constexpr int32_t kOperatorWide = -1;

struct SnapshotHeader {
  std::string operator_uid;  // stable across runs (see DataStream::uid)
  std::string state_type;    // what wrote the payload, e.g. "window", "interval-join"
  uint16_t state_version = 1;
  uint32_t max_parallelism = 128;
};

class SnapshotWriter {
 public:
  // Appends the header to `out`; sections and the trailer follow.
  SnapshotWriter(std::string* out, const SnapshotHeader& header);
  // Starts the section of `key_group` (kOperatorWide or [0, max_parallelism)) and returns the
  // writer of its payload; the previous section ends here. Each key group at most once (checked).
  ByteWriter& begin_section(int32_t key_group);
  // Ends the last section and writes the trailer. Nothing may be written afterwards.
  void finish();

 private:
  void end_section();

  std::string* out_;
  ByteWriter w_;
  size_t start_;
  uint32_t max_parallelism_;
  size_t length_at_ = 0;  // where the open section's length goes; 0: no open section
  uint32_t sections_ = 0;
  std::vector<bool> seen_;  // key groups written, index key_group + 1
  bool finished_ = false;
};

class SnapshotReader {
 public:
  struct Section {
    int32_t key_group = kOperatorWide;
    std::string_view payload;
    size_t offset = 0;  // of the payload within the snapshot
  };

  // Checks everything but the payloads: magic, format version, trailer, checksum, that the
  // snapshot belongs to operator `uid`, holds `state_type` at a version this build reads
  // (<= `max_state_version`) and has `max_parallelism` key groups, and that the sections tile the
  // bytes. InvalidData (bad bytes) or InvalidArgument (the snapshot of something else), naming
  // the uid, the state type and the byte offset.
  static Result<SnapshotReader> open(std::string_view bytes, std::string_view uid,
                                     std::string_view state_type, uint16_t max_state_version,
                                     uint32_t max_parallelism);

  // The header as written, checking only that it decodes (not the checksum): for tools that
  // describe a snapshot without knowing what wrote it. InvalidData naming the offset.
  static Result<SnapshotHeader> peek_header(std::string_view bytes);

  const SnapshotHeader& header() const { return header_; }
  const std::vector<Section>& sections() const { return sections_; }
  // A reader of section `i`'s payload whose errors name the operator, state, key group and the
  // offset within the snapshot. Valid while this SnapshotReader lives.
  ByteReader section_reader(size_t i) const;

 private:
  SnapshotHeader header_;
  std::vector<Section> sections_;
  std::vector<std::string> section_names_;  // "<what> key group N", for section_reader
};

// "operator '<uid>' state '<type>'": how errors name a snapshot.
std::string describe_snapshot(std::string_view uid, std::string_view state_type);

}  // namespace sabot::state
