// StateCodec<T>: how keyed-state values are written into snapshots and read back. Built in for
// arithmetic types and enums, bool, std::string, std::vector, std::pair, std::optional, std::map
// and trivially-copyable structs; specialise StateCodec for other types. Encodings are
// little-endian and bounds-checked on read: bad bytes give Status::invalid_data, never a crash.
// Written and read through base/bytes.h's ByteWriter/ByteReader (strings and containers carry u64
// lengths and counts). Stateless.
#pragma once

#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "sabot/base/bytes.h"
#include "sabot/base/check.h"
#include "sabot/base/status.h"

namespace sabot::state {

// The byte codec is base/bytes.h's (one for every snapshot); these names keep state code short.
using ::sabot::ByteReader;
using ::sabot::ByteWriter;

// The codec trait. Specialise for your own types:
//   template <> struct sabot::state::StateCodec<MyType> {
//     static void encode(const MyType& v, ByteWriter& w);
//     static Status decode(ByteReader& r, MyType* v);
//   };
template <typename T>
struct StateCodec;

namespace detail {
template <typename T>
struct IsStdTemplate : std::false_type {};
template <typename A, typename B>
struct IsStdTemplate<std::pair<A, B>> : std::true_type {};
template <typename A>
struct IsStdTemplate<std::optional<A>> : std::true_type {};
template <typename A, typename B>
struct IsStdTemplate<std::vector<A, B>> : std::true_type {};
template <typename K, typename V, typename C, typename A>
struct IsStdTemplate<std::map<K, V, C, A>> : std::true_type {};
}  // namespace detail

// True when StateCodec<T> has a definition (built in or user specialisation).
template <typename T>
concept HasStateCodec = requires(const T& v, ByteWriter& w, ByteReader& r, T* p) {
  StateCodec<T>::encode(v, w);
  { StateCodec<T>::decode(r, p) } -> std::same_as<Status>;
};

// bool: one byte, 0 or 1 (anything else is invalid data, so a corrupt byte never becomes a bool
// with an impossible representation).
template <>
struct StateCodec<bool> {
  static void encode(bool v, ByteWriter& w) { w.put<uint8_t>(v ? 1 : 0); }
  static Status decode(ByteReader& r, bool* v) {
    uint8_t b = 0;
    SABOT_RETURN_IF_ERROR(r.get(&b));
    if (b > 1) return r.invalid("bool byte " + std::to_string(b) + " is neither 0 nor 1");
    *v = b == 1;
    return Status::ok();
  }
};

// Arithmetic types and enums: their bytes.
template <typename T>
requires((std::is_arithmetic_v<T> && !std::is_same_v<T, bool>) ||
         std::is_enum_v<T>) struct StateCodec<T> {
  static void encode(T v, ByteWriter& w) { w.put<T>(v); }
  static Status decode(ByteReader& r, T* v) { return r.get(v); }
};

// Trivially-copyable structs (not the std templates above, which have their own encodings): their
// object bytes. Such a struct must not hold pointers, and members like bool or enums accept
// whatever bytes a snapshot holds; specialise StateCodec when that matters.
template <typename T>
requires(std::is_class_v<T>&& std::is_trivially_copyable_v<T> &&
         !detail::IsStdTemplate<T>::value) struct StateCodec<T> {
  static void encode(const T& v, ByteWriter& w) { w.put_raw(&v, sizeof(T)); }
  static Status decode(ByteReader& r, T* v) { return r.get_raw(v, sizeof(T)); }
};

template <>
struct StateCodec<std::string> {
  static void encode(const std::string& v, ByteWriter& w) { w.put_bytes(v); }
  static Status decode(ByteReader& r, std::string* v) {
    std::string_view s;
    SABOT_RETURN_IF_ERROR(r.get_bytes(&s));
    v->assign(s);
    return Status::ok();
  }
};

namespace detail {
// Reads an element count and rejects counts that cannot fit in the remaining bytes (every
// encoding takes at least one byte), so a corrupt count never triggers a huge allocation.
inline Status get_count(ByteReader& r, uint64_t* n) { return r.get_count(n, 1); }
}  // namespace detail

template <typename T, typename A>
struct StateCodec<std::vector<T, A>> {
  static void encode(const std::vector<T, A>& v, ByteWriter& w) {
    w.put<uint64_t>(v.size());
    if constexpr (std::is_arithmetic_v<T> && !std::is_same_v<T, bool>) {
      w.put_raw(v.data(), v.size() * sizeof(T));
    } else {
      for (const T& e : v) StateCodec<T>::encode(e, w);
    }
  }
  static Status decode(ByteReader& r, std::vector<T, A>* v) {
    uint64_t n = 0;
    SABOT_RETURN_IF_ERROR(detail::get_count(r, &n));
    v->clear();
    if constexpr (std::is_arithmetic_v<T> && !std::is_same_v<T, bool>) {
      if (n > r.remaining() / sizeof(T)) return r.invalid("vector is truncated");
      v->resize(static_cast<size_t>(n));
      return r.get_raw(v->data(), static_cast<size_t>(n) * sizeof(T));
    } else {
      v->reserve(static_cast<size_t>(n));
      for (uint64_t i = 0; i < n; ++i) {
        T e{};
        SABOT_RETURN_IF_ERROR(StateCodec<T>::decode(r, &e));
        v->push_back(std::move(e));
      }
      return Status::ok();
    }
  }
};

template <typename A, typename B>
struct StateCodec<std::pair<A, B>> {
  static void encode(const std::pair<A, B>& v, ByteWriter& w) {
    StateCodec<A>::encode(v.first, w);
    StateCodec<B>::encode(v.second, w);
  }
  static Status decode(ByteReader& r, std::pair<A, B>* v) {
    SABOT_RETURN_IF_ERROR(StateCodec<A>::decode(r, &v->first));
    return StateCodec<B>::decode(r, &v->second);
  }
};

template <typename T>
struct StateCodec<std::optional<T>> {
  static void encode(const std::optional<T>& v, ByteWriter& w) {
    StateCodec<bool>::encode(v.has_value(), w);
    if (v) StateCodec<T>::encode(*v, w);
  }
  static Status decode(ByteReader& r, std::optional<T>* v) {
    bool has = false;
    SABOT_RETURN_IF_ERROR(StateCodec<bool>::decode(r, &has));
    if (!has) {
      v->reset();
      return Status::ok();
    }
    T e{};
    SABOT_RETURN_IF_ERROR(StateCodec<T>::decode(r, &e));
    *v = std::move(e);
    return Status::ok();
  }
};

template <typename K, typename V, typename C, typename A>
struct StateCodec<std::map<K, V, C, A>> {
  static void encode(const std::map<K, V, C, A>& m, ByteWriter& w) {
    w.put<uint64_t>(m.size());
    for (const auto& [k, v] : m) {
      StateCodec<K>::encode(k, w);
      StateCodec<V>::encode(v, w);
    }
  }
  static Status decode(ByteReader& r, std::map<K, V, C, A>* m) {
    uint64_t n = 0;
    SABOT_RETURN_IF_ERROR(detail::get_count(r, &n));
    m->clear();
    for (uint64_t i = 0; i < n; ++i) {
      K k{};
      V v{};
      SABOT_RETURN_IF_ERROR(StateCodec<K>::decode(r, &k));
      SABOT_RETURN_IF_ERROR(StateCodec<V>::decode(r, &v));
      (*m)[std::move(k)] = std::move(v);
    }
    return Status::ok();
  }
};

// Convenience: encode a value into a fresh string / decode a whole string (trailing bytes are an
// error).
template <typename T>
std::string encode_state_value(const T& v) {
  std::string s;
  ByteWriter w(&s);
  StateCodec<T>::encode(v, w);
  return s;
}
template <typename T>
Status decode_state_value(std::string_view bytes, T* v, std::string_view what = "state value") {
  ByteReader r(bytes, what);
  SABOT_RETURN_IF_ERROR(StateCodec<T>::decode(r, v));
  return r.expect_end();
}

}  // namespace sabot::state
