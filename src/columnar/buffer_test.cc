#include "sabot/columnar/buffer.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "sabot/columnar/bitmap.h"

namespace sabot::columnar {
namespace {

bool aligned(const void* p) { return reinterpret_cast<uintptr_t>(p) % kBufferAlignment == 0; }

TEST(Buffer, AllocateIsAlignedAndZeroed) {
  for (int64_t size : {0, 1, 63, 64, 1000}) {
    auto b = Buffer::allocate(size);
    EXPECT_EQ(b->size(), size);
    EXPECT_TRUE(aligned(b->data())) << size;
    for (int64_t i = 0; i < size; ++i) ASSERT_EQ(b->data()[i], 0);
  }
}

TEST(Buffer, SliceKeepsParentAlive) {
  BufferPtr slice;
  {
    auto parent = Buffer::copy_of("abcdefgh", 8);
    slice = Buffer::slice(parent, 2, 3);
  }
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(slice->data()), 3), "cde");
}

TEST(Buffer, WrapKeepsOwnerAlive) {
  auto owner = std::make_shared<std::vector<uint8_t>>(std::vector<uint8_t>{1, 2, 3});
  std::weak_ptr<std::vector<uint8_t>> watch = owner;
  BufferPtr b = Buffer::wrap(owner->data(), 3, owner);
  owner.reset();
  EXPECT_FALSE(watch.expired());
  EXPECT_EQ(b->data()[2], 3);
  b.reset();
  EXPECT_TRUE(watch.expired());
}

TEST(MutableBuffer, GrowsGeometricallyAndFinishes) {
  MutableBuffer m;
  int reallocations = 0;
  const uint8_t* last = nullptr;
  for (int64_t i = 0; i < 100'000; ++i) {
    m.append_value(i);
    if (m.data() != last) {
      ++reallocations;
      last = m.data();
    }
  }
  EXPECT_LE(reallocations, 20);  // doubling: about log2(800 KB / 64 B)
  EXPECT_TRUE(aligned(m.data()));
  BufferPtr b = m.finish();
  EXPECT_EQ(b->size(), 100'000 * 8);
  EXPECT_EQ(b->data_as<int64_t>()[99'999], 99'999);
  EXPECT_EQ(m.size(), 0);
}

TEST(MutableBuffer, ReserveMakesAppendsAllocationFree) {
  MutableBuffer m;
  m.reserve(8 * 1000);
  const uint8_t* p = m.data();
  for (int64_t i = 0; i < 1000; ++i) m.append_value(i);
  EXPECT_EQ(m.data(), p);
}

TEST(Bitmap, CountCopyFillAgainstPlainLoops) {
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 300; ++trial) {
    int64_t n = static_cast<int64_t>(rng() % 300);
    int64_t src_off = static_cast<int64_t>(rng() % 70);
    int64_t dst_off = static_cast<int64_t>(rng() % 70);
    std::vector<uint8_t> src(static_cast<size_t>(bits::bytes_for(n + src_off)) + 1);
    for (auto& b : src) b = static_cast<uint8_t>(rng());
    int64_t expected = 0;
    for (int64_t i = 0; i < n; ++i) expected += bits::get(src.data(), src_off + i);
    ASSERT_EQ(bits::count_set(src.data(), src_off, n), expected);

    std::vector<uint8_t> dst(static_cast<size_t>(bits::bytes_for(n + dst_off)) + 1, 0xA5);
    std::vector<uint8_t> before = dst;
    bits::copy(src.data(), src_off, n, dst.data(), dst_off);
    for (int64_t i = 0; i < dst_off; ++i) {
      ASSERT_EQ(bits::get(dst.data(), i), bits::get(before.data(), i));
    }
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_EQ(bits::get(dst.data(), dst_off + i), bits::get(src.data(), src_off + i));
    }
    bool v = rng() & 1;
    bits::fill(dst.data(), dst_off, n, v);
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(bits::get(dst.data(), dst_off + i), v);

    std::vector<uint8_t> other(src.size());
    for (auto& b : other) b = static_cast<uint8_t>(rng());
    std::vector<uint8_t> anded(static_cast<size_t>(bits::bytes_for(n)) + 8);
    bits::and_bitmaps(src.data(), src_off, other.data(), src_off, n, anded.data());
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_EQ(bits::get(anded.data(), i),
                bits::get(src.data(), src_off + i) && bits::get(other.data(), src_off + i));
    }
  }
}

}  // namespace
}  // namespace sabot::columnar
