#include "sabot/columnar/buffer.h"

#include <algorithm>
#include <cstdlib>
#include <new>
#include <utility>

#include "sabot/base/check.h"

namespace sabot::columnar {
namespace {

uint8_t* aligned_alloc_zeroed(int64_t capacity) {
  if (capacity == 0) return nullptr;
  void* p = std::aligned_alloc(kBufferAlignment, static_cast<size_t>(capacity));
  if (p == nullptr) throw std::bad_alloc();
  std::memset(p, 0, static_cast<size_t>(capacity));
  return static_cast<uint8_t*>(p);
}

// A zero-length buffer still needs a non-null, aligned address (Arrow consumers expect one).
alignas(kBufferAlignment) const uint8_t kEmptyBytes[kBufferAlignment] = {};

}  // namespace

Buffer::~Buffer() { std::free(owned_); }

std::shared_ptr<Buffer> Buffer::allocate(int64_t size) {
  SABOT_CHECK_GE(size, 0);
  auto buf = std::shared_ptr<Buffer>(new Buffer());
  buf->owned_ = aligned_alloc_zeroed(round_up_to_64(size));
  buf->data_ = buf->owned_ ? buf->owned_ : kEmptyBytes;
  buf->size_ = size;
  return buf;
}

BufferPtr Buffer::copy_of(const void* data, int64_t size) {
  auto buf = allocate(size);
  if (size > 0) std::memcpy(buf->mutable_data(), data, static_cast<size_t>(size));
  return buf;
}

BufferPtr Buffer::wrap(const uint8_t* data, int64_t size, std::shared_ptr<const void> owner) {
  auto buf = std::shared_ptr<Buffer>(new Buffer());
  buf->data_ = data ? data : kEmptyBytes;
  buf->size_ = size;
  buf->owner_ = std::move(owner);
  return buf;
}

BufferPtr Buffer::slice(const BufferPtr& parent, int64_t offset, int64_t length) {
  SABOT_CHECK_GE(offset, 0);
  SABOT_CHECK_LE(offset + length, parent->size());
  return wrap(parent->data() + offset, length, parent);
}

MutableBuffer::~MutableBuffer() { std::free(data_); }

MutableBuffer::MutableBuffer(MutableBuffer&& o) noexcept
    : data_(std::exchange(o.data_, nullptr)),
      size_(std::exchange(o.size_, 0)),
      capacity_(std::exchange(o.capacity_, 0)) {}

MutableBuffer& MutableBuffer::operator=(MutableBuffer&& o) noexcept {
  if (this != &o) {
    std::free(data_);
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
    capacity_ = std::exchange(o.capacity_, 0);
  }
  return *this;
}

void MutableBuffer::grow_to(int64_t min_capacity) {
  int64_t cap = capacity_ == 0 ? 64 : capacity_;
  while (cap < min_capacity) cap *= 2;
  cap = round_up_to_64(cap);
  void* p = std::aligned_alloc(kBufferAlignment, static_cast<size_t>(cap));
  if (p == nullptr) throw std::bad_alloc();
  auto* fresh = static_cast<uint8_t*>(p);
  if (size_ > 0) std::memcpy(fresh, data_, static_cast<size_t>(size_));
  std::free(data_);
  data_ = fresh;
  capacity_ = cap;
}

BufferPtr MutableBuffer::finish() {
  // Zero the padding up to the next 64 bytes so that no uninitialised bytes leave the builder.
  if (data_ != nullptr) {
    int64_t padded = std::min(round_up_to_64(size_), capacity_);
    std::memset(data_ + size_, 0, static_cast<size_t>(padded - size_));
  }
  auto buf = std::shared_ptr<Buffer>(new Buffer());
  buf->owned_ = std::exchange(data_, nullptr);
  buf->data_ = buf->owned_ ? buf->owned_ : kEmptyBytes;
  buf->size_ = std::exchange(size_, 0);
  capacity_ = 0;
  return buf;
}

}  // namespace sabot::columnar
