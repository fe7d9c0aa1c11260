// Internal: little-endian byte writer and bounds-checked reader for the checkpoint encodings of
// groupers and accumulators. Not a public format on its own; each user writes a magic tag and a
// version first so snapshots stay self-describing.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "sabot/base/status.h"
#include "sabot/columnar/type.h"

namespace sabot::compute::internal {

class StateWriter {
 public:
  explicit StateWriter(std::string* out) : out_(out) {}
  template <typename T>
  void put(T v) {
    static_assert(std::is_trivially_copyable_v<T>);
    out_->append(reinterpret_cast<const char*>(&v), sizeof(T));
  }
  void put_bytes(std::string_view s) {
    put<uint64_t>(s.size());
    out_->append(s.data(), s.size());
  }
  template <typename T>
  void put_vector(const std::vector<T>& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    put<uint64_t>(v.size());
    if (!v.empty()) out_->append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
  }
  void put_type(const columnar::DataType& t) {
    put<uint8_t>(static_cast<uint8_t>(t.id()));
    put<uint8_t>(static_cast<uint8_t>(t.unit()));
  }

 private:
  std::string* out_;
};

class StateReader {
 public:
  StateReader(std::string_view in, const char* what) : in_(in), what_(what) {}
  template <typename T>
  Status get(T* v) {
    static_assert(std::is_trivially_copyable_v<T>);
    if (in_.size() < sizeof(T)) return truncated();
    std::memcpy(v, in_.data(), sizeof(T));
    in_.remove_prefix(sizeof(T));
    return Status::ok();
  }
  Status get_bytes(std::string* s) {
    uint64_t n = 0;
    SABOT_RETURN_IF_ERROR(get(&n));
    if (in_.size() < n) return truncated();
    s->assign(in_.data(), static_cast<size_t>(n));
    in_.remove_prefix(static_cast<size_t>(n));
    return Status::ok();
  }
  template <typename T>
  Status get_vector(std::vector<T>* v) {
    uint64_t n = 0;
    SABOT_RETURN_IF_ERROR(get(&n));
    if (n > in_.size() / (sizeof(T) == 0 ? 1 : sizeof(T))) return truncated();
    v->resize(static_cast<size_t>(n));
    if (n > 0) std::memcpy(v->data(), in_.data(), static_cast<size_t>(n) * sizeof(T));
    in_.remove_prefix(static_cast<size_t>(n) * sizeof(T));
    return Status::ok();
  }
  Status get_type(columnar::DataType* t) {
    uint8_t id = 0;
    uint8_t unit = 0;
    SABOT_RETURN_IF_ERROR(get(&id));
    SABOT_RETURN_IF_ERROR(get(&unit));
    if (id > static_cast<uint8_t>(columnar::TypeId::kTimestamp) ||
        unit > static_cast<uint8_t>(columnar::TimeUnit::kNano)) {
      return Status::invalid_data(std::string(what_) + " snapshot: unknown type id " +
                                  std::to_string(id));
    }
    *t = columnar::DataType(static_cast<columnar::TypeId>(id),
                            static_cast<columnar::TimeUnit>(unit));
    return Status::ok();
  }
  // Reads a 4-byte magic tag and a version byte, and checks both.
  Status expect_header(std::string_view magic, uint8_t version) {
    if (in_.size() < magic.size() + 1 || in_.substr(0, magic.size()) != magic) {
      return Status::invalid_data(std::string(what_) + " snapshot: missing '" + std::string(magic) +
                                  "' header");
    }
    in_.remove_prefix(magic.size());
    uint8_t v = 0;
    SABOT_RETURN_IF_ERROR(get(&v));
    if (v != version) {
      return Status::invalid_data(std::string(what_) + " snapshot: version " + std::to_string(v) +
                                  " is not supported (expected " + std::to_string(version) + ")");
    }
    return Status::ok();
  }
  Status expect_end() const {
    if (!in_.empty()) {
      return Status::invalid_data(std::string(what_) + " snapshot: " + std::to_string(in_.size()) +
                                  " unexpected trailing bytes");
    }
    return Status::ok();
  }
  Status invalid(const std::string& msg) const {
    return Status::invalid_data(std::string(what_) + " snapshot: " + msg);
  }

 private:
  Status truncated() const {
    return Status::invalid_data(std::string(what_) + " snapshot is truncated");
  }
  std::string_view in_;
  const char* what_;
};

}  // namespace sabot::compute::internal
