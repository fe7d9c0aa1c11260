// The one byte codec of Sabot's snapshots: ByteWriter appends little-endian values to a string,
// ByteReader reads them back with every read bounds-checked, so bad bytes give InvalidData naming
// what was read and the byte offset, never a crash. Operators, groupers, accumulators and keyed
// state all write through these; the envelope around them (magic, version, key-group sections,
// checksum) is state/snapshot.h. Single owner, not thread-safe.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "sabot/base/status.h"

namespace sabot {

class ByteWriter {
 public:
  explicit ByteWriter(std::string* out) : out_(out) {}
  template <typename T>
  void put(T v) {
    static_assert(std::is_trivially_copyable_v<T>);
    out_->append(reinterpret_cast<const char*>(&v), sizeof(T));
  }
  // A u64 length then the bytes.
  void put_bytes(std::string_view s) {
    put<uint64_t>(s.size());
    out_->append(s.data(), s.size());
  }
  // A u64 element count then the elements' bytes.
  template <typename T>
  void put_vector(const std::vector<T>& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    put<uint64_t>(v.size());
    put_raw(v.data(), v.size() * sizeof(T));
  }
  void put_raw(const void* p, size_t n) {
    if (n > 0) out_->append(static_cast<const char*>(p), n);
  }
  std::string* out() { return out_; }

 private:
  std::string* out_;
};

class ByteReader {
 public:
  // `what` names the thing read in error messages (e.g. "operator 'counts' state 'window' key
  // group 7"); `base_offset` is the position of `in` within the whole snapshot, so that offsets
  // in messages are offsets in the snapshot.
  explicit ByteReader(std::string_view in, std::string_view what = "snapshot",
                      size_t base_offset = 0)
      : in_(in), size_(in.size()), base_(base_offset), what_(what) {}

  template <typename T>
  Status get(T* v) {
    static_assert(std::is_trivially_copyable_v<T>);
    if (in_.size() < sizeof(T)) return truncated(sizeof(T));
    std::memcpy(v, in_.data(), sizeof(T));
    in_.remove_prefix(sizeof(T));
    return Status::ok();
  }
  // A u64 length then that many bytes; the view points into the input.
  Status get_bytes(std::string_view* s) {
    uint64_t n = 0;
    SABOT_RETURN_IF_ERROR(get(&n));
    if (in_.size() < n) return truncated(n);
    *s = in_.substr(0, static_cast<size_t>(n));
    in_.remove_prefix(static_cast<size_t>(n));
    return Status::ok();
  }
  Status get_bytes(std::string* s) {
    std::string_view v;
    SABOT_RETURN_IF_ERROR(get_bytes(&v));
    s->assign(v);
    return Status::ok();
  }
  template <typename T>
  Status get_vector(std::vector<T>* v) {
    static_assert(std::is_trivially_copyable_v<T>);
    uint64_t n = 0;
    SABOT_RETURN_IF_ERROR(get(&n));
    if (n > in_.size() / sizeof(T)) return truncated(n * sizeof(T));
    v->resize(static_cast<size_t>(n));
    return get_raw(v->data(), static_cast<size_t>(n) * sizeof(T));
  }
  Status get_raw(void* p, size_t n) {
    if (in_.size() < n) return truncated(n);
    if (n > 0) std::memcpy(p, in_.data(), n);
    in_.remove_prefix(n);
    return Status::ok();
  }
  // The next `n` bytes, in place.
  Status get_view(std::string_view* v, size_t n) {
    if (in_.size() < n) return truncated(n);
    *v = in_.substr(0, n);
    in_.remove_prefix(n);
    return Status::ok();
  }
  Status skip(size_t n) {
    if (in_.size() < n) return truncated(n);
    in_.remove_prefix(n);
    return Status::ok();
  }
  // A count that each following item needs at least `min_item_bytes` for: refuses counts the
  // remaining bytes cannot hold before anything is allocated for them.
  Status get_count(uint64_t* n, size_t min_item_bytes = 1) {
    SABOT_RETURN_IF_ERROR(get(n));
    if (min_item_bytes > 0 && *n > in_.size() / min_item_bytes) {
      return invalid("count " + std::to_string(*n) + " exceeds the " + std::to_string(in_.size()) +
                     " bytes left");
    }
    return Status::ok();
  }

  size_t remaining() const { return in_.size(); }
  // Offset of the next byte within the whole snapshot.
  size_t position() const { return base_ + size_ - in_.size(); }
  bool at_end() const { return in_.empty(); }
  std::string_view what() const { return what_; }
  // InvalidData "<what>: <msg> at byte <position>".
  Status invalid(std::string_view msg) const {
    return Status::invalid_data(std::string(what_) + ": " + std::string(msg) + " at byte " +
                                std::to_string(position()));
  }
  Status expect_end() const {
    if (in_.empty()) return Status::ok();
    return invalid(std::to_string(in_.size()) + " unexpected trailing bytes");
  }

 private:
  Status truncated(uint64_t need) const {
    return invalid("truncated (need " + std::to_string(need) + " bytes, " +
                   std::to_string(in_.size()) + " left)");
  }
  std::string_view in_;
  size_t size_;
  size_t base_;
  std::string_view what_;
};

// CRC-32C (Castagnoli) of `bytes`, continuing from `crc` (0 to start): the snapshot checksum.
uint32_t crc32c(std::string_view bytes, uint32_t crc = 0);
// The same with the portable tables only, whatever the CPU offers (for tests and benchmarks).
uint32_t crc32c_without_hardware(std::string_view bytes, uint32_t crc = 0);

}  // namespace sabot
