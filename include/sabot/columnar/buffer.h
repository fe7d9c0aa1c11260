// Memory for columnar data: 64-byte-aligned, reference-counted, immutable once shared.
// A Buffer either owns its allocation or keeps alive a foreign owner (an imported Arrow array, a
// parent buffer it slices). MutableBuffer is the growable single-owner form used by builders.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>

namespace sabot::columnar {

inline constexpr int64_t kBufferAlignment = 64;

// Rounds n up to a multiple of 64 bytes (Arrow's recommended padding).
constexpr int64_t round_up_to_64(int64_t n) { return (n + 63) & ~int64_t{63}; }

class Buffer;
using BufferPtr = std::shared_ptr<const Buffer>;

class Buffer {
 public:
  ~Buffer();
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  // A new zero-filled buffer of `size` bytes (capacity padded to 64).
  static std::shared_ptr<Buffer> allocate(int64_t size);
  // Copies `size` bytes into a new aligned buffer.
  static BufferPtr copy_of(const void* data, int64_t size);
  // Points at memory owned by `owner`; the buffer keeps `owner` alive.
  static BufferPtr wrap(const uint8_t* data, int64_t size, std::shared_ptr<const void> owner);
  // A zero-copy view of [offset, offset + length) of `parent`.
  static BufferPtr slice(const BufferPtr& parent, int64_t offset, int64_t length);

  const uint8_t* data() const { return data_; }
  // Only for a buffer that nobody else sees yet (fresh from allocate()).
  uint8_t* mutable_data() { return const_cast<uint8_t*>(data_); }
  int64_t size() const { return size_; }
  template <typename T>
  const T* data_as() const {
    return reinterpret_cast<const T*>(data_);
  }

 private:
  friend class MutableBuffer;
  Buffer() = default;
  const uint8_t* data_ = nullptr;
  int64_t size_ = 0;
  uint8_t* owned_ = nullptr;           // aligned allocation this buffer frees, if any
  std::shared_ptr<const void> owner_;  // foreign owner kept alive, if any
};

// A growable, 64-byte-aligned byte buffer with one owner. Growth doubles the capacity, so appending
// n values costs O(log n) allocations; reserve() up front makes it zero.
class MutableBuffer {
 public:
  MutableBuffer() = default;
  ~MutableBuffer();
  MutableBuffer(MutableBuffer&& o) noexcept;
  MutableBuffer& operator=(MutableBuffer&& o) noexcept;
  MutableBuffer(const MutableBuffer&) = delete;
  MutableBuffer& operator=(const MutableBuffer&) = delete;

  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  int64_t size() const { return size_; }
  int64_t capacity() const { return capacity_; }

  // Ensures capacity >= n bytes. Does not touch the new capacity (no zeroing, no page faults).
  void reserve(int64_t n) {
    if (n > capacity_) grow_to(n);
  }
  // Sets the size; bytes exposed by growing are zeroed.
  void resize(int64_t n) {
    reserve(n);
    if (n > size_) std::memset(data_ + size_, 0, static_cast<size_t>(n - size_));
    size_ = n;
  }
  // Sets the size without zeroing, after the caller wrote bytes [size, n) itself.
  void set_size_after_write(int64_t n) { size_ = n; }
  void append(const void* src, int64_t n) {
    reserve(size_ + n);
    if (n > 0) std::memcpy(data_ + size_, src, static_cast<size_t>(n));
    size_ += n;
  }
  template <typename T>
  void append_value(T v) {
    reserve(size_ + static_cast<int64_t>(sizeof(T)));
    std::memcpy(data_ + size_, &v, sizeof(T));
    size_ += static_cast<int64_t>(sizeof(T));
  }
  template <typename T>
  T* data_as() {
    return reinterpret_cast<T*>(data_);
  }
  void clear() { size_ = 0; }

  // Hands the bytes [0, size) to an immutable Buffer and leaves this one empty.
  BufferPtr finish();

 private:
  void grow_to(int64_t min_capacity);
  uint8_t* data_ = nullptr;
  int64_t size_ = 0;
  int64_t capacity_ = 0;
};

}  // namespace sabot::columnar
