// A write-back cache of a byte store's entries, in front of the RocksDB keyed-state backend.
// Keyed state is read-modify-write: each record reads its key's value and writes it back. Against
// RocksDB that is a Get and a Put, about 3 µs together, per state per record. Here a cached entry
// costs a probe of an open-addressing table instead, absent entries are remembered as absent, and
// dirty entries reach RocksDB together (one WriteBatch) when the cache outgrows its byte budget or
// before anything reads the instance directly (scans, snapshots, checkpoints, key remapping). This
// is Kafka Streams' record cache in front of its RocksDB stores. Not thread-safe; owned by one
// backend.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sabot/base/check.h"
#include "sabot/base/prefetch.h"
#include "sabot/state/key_registry.h"
#include "sabot/state/state.h"

namespace sabot::state::internal {

// The bytes of a cached entry: a pointer and two 32-bit lengths, 16 bytes where std::string takes
// 32 (whose inline buffer holds at most 15 bytes, too few for most state values): an entry is then
// 32 bytes, not 48, and a third more of them fit in a given cache. Empty: nothing on the heap.
class CacheBytes {
 public:
  CacheBytes() = default;
  CacheBytes(const CacheBytes&) = delete;
  CacheBytes& operator=(const CacheBytes&) = delete;
  CacheBytes(CacheBytes&& o) noexcept { *this = std::move(o); }
  CacheBytes& operator=(CacheBytes&& o) noexcept {
    if (this != &o) {
      release();
      std::swap(data_, o.data_);
      std::swap(size_, o.size_);
      std::swap(capacity_, o.capacity_);
    }
    return *this;
  }
  ~CacheBytes() { std::free(data_); }

  const char* data() const { return data_; }
  char* data() { return data_; }
  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }
  bool empty() const { return size_ == 0; }
  std::string_view view() const { return {data_, size_}; }
  bool operator==(std::string_view other) const { return view() == other; }

  // Replaces the bytes, in an allocation of exactly their size when the old one is too small.
  void assign(std::string_view v) {
    if (v.size() > capacity_) reallocate(v.size());
    if (!v.empty()) std::memcpy(data_, v.data(), v.size());
    size_ = static_cast<uint32_t>(v.size());
  }
  // Appends, growing the allocation geometrically (lists are appended to one element at a time).
  void append(const char* p, size_t n) {
    if (size_ + n > capacity_) reallocate(std::max<size_t>(size_ + n, size_t{capacity_} * 2));
    if (n > 0) std::memcpy(data_ + size_, p, n);
    size_ += static_cast<uint32_t>(n);
  }
  // Empties the bytes and frees them.
  void release() {
    std::free(data_);
    data_ = nullptr;
    size_ = capacity_ = 0;
  }

 private:
  void reallocate(size_t capacity) {
    SABOT_CHECK_LE(capacity, size_t{UINT32_MAX});
    char* p = static_cast<char*>(std::realloc(data_, capacity));
    SABOT_CHECK(p != nullptr);
    data_ = p;
    capacity_ = static_cast<uint32_t>(capacity);
  }

  char* data_ = nullptr;
  uint32_t size_ = 0;
  uint32_t capacity_ = 0;
};

class KvWriteCache {
 public:
  struct Key {
    uint16_t sid = 0;  // the state
    KeyId key = 0;
    Namespace ns = 0;
    bool operator==(const Key&) const = default;
  };
  // 32 bytes: the value, the entry's key and its flags.
  struct Entry {
    CacheBytes value;  // the stored bytes when present
    Namespace ns = 0;
    KeyId key = 0;
    uint16_t sid = 0;
    bool present : 1 = false;  // false: the store has no entry (a cached miss or an erase)
    bool dirty : 1 = false;    // differs from the store
    // The value is list elements to append to whatever the store holds (merge operands not yet
    // written), not the whole entry; present and dirty. A read merges them with the store's.
    bool appends : 1 = false;
    bool referenced : 1 = true;  // read or written since the last eviction

    Key cache_key() const { return {sid, key, ns}; }
    bool has_key(const Key& k) const { return key == k.key && ns == k.ns && sid == k.sid; }
  };

  static_assert(sizeof(Entry) == 32);

  // budget_bytes == 0 turns the cache off: find() never hits and every write goes through.
  explicit KvWriteCache(size_t budget_bytes) : budget_bytes_(budget_bytes) {}

  bool enabled() const { return budget_bytes_ > 0; }
  size_t size() const { return size_; }
  // What the cache holds in memory: its entries (32 bytes each, in chunks), its index (8 bytes a
  // slot, at most 3/4 full) and the values' heap bytes.
  size_t bytes() const {
    return value_bytes_ + capacity_for(chunks_.size()) * sizeof(Entry) +
           index_.size() * sizeof(uint64_t);
  }
  size_t budget_bytes() const { return budget_bytes_; }

  // The entry of k, or nullptr. The pointer stays valid until the next eviction or clear.
  Entry* find(const Key& k) { return find(k, hash(k)); }

  // Prefetching, in three steps a row or more apart, each a hint that changes nothing: the index
  // slot where k's probe begins, then the entry its tag points to, then the entry's value bytes
  // (on the heap when long). The later steps look at the first two slots of k's probe only,
  // those the first step brought in: walking further would wait for memory, and a key with no
  // entry (a state most keys never write) can probe far.
  void prefetch(const Key& k) const {
    if (size_ == 0) return;
    sabot::prefetch(&index_[hash(k) & mask_]);
  }
  void prefetch_entry(const Key& k) const {
    near_candidates(k, [&](const Entry& e) {
      // Both ends: an entry is not aligned to cache lines and may span two. Its address only:
      // the entry itself has not arrived.
      const char* p = reinterpret_cast<const char*>(&e);
      sabot::prefetch(p);
      sabot::prefetch(p + sizeof(Entry) - 1);
      return true;
    });
  }
  void prefetch_value(const Key& k) const {
    near_candidates(k, [&](const Entry& e) {
      if (!e.has_key(k)) return false;
      const char* p = e.value.data();
      const size_t bytes = std::min<size_t>(e.value.size(), 4 * 64);
      for (size_t off = 0; off < bytes; off += 64) sabot::prefetch(p + off);
      return true;
    });
  }

  // Records the entry's bytes (present) or its absence (value ignored); returns the entry.
  Entry* set(const Key& k, bool present, std::string_view value, bool dirty) {
    const uint64_t h = hash(k);
    Entry* e = find(k, h);
    const bool inserted = e == nullptr;
    if (inserted) {
      e = &append(k, h);
    } else {
      value_bytes_ -= heap_bytes(e->value);
    }
    e->present = present;
    e->appends = false;
    if (present) {
      e->value.assign(value);
    } else {
      e->value.release();
    }
    e->dirty = inserted ? dirty : (e->dirty || dirty);
    e->referenced = true;
    value_bytes_ += heap_bytes(e->value);
    return e;
  }

  // Changes cached entry `e` (from find) in place through fn(*e), after which it is present and
  // dirty (appends stays as fn leaves it).
  template <typename Fn>
  void update(Entry* e, Fn&& fn) {
    value_bytes_ -= heap_bytes(e->value);
    fn(*e);
    e->present = true;
    e->dirty = true;
    value_bytes_ += heap_bytes(e->value);
  }

  // Calls fn(key, entry) for every entry, in no particular order.
  template <typename Fn>
  void for_each(Fn&& fn) const {
    for (size_t p = 0; p < size_; ++p) {
      const Entry& e = entry(p);
      fn(e.cache_key(), e);
    }
  }
  // Calls fn(key, entry) for every dirty entry, in no particular order.
  template <typename Fn>
  void for_each_dirty(Fn&& fn) const {
    for_each([&](const Key& k, const Entry& e) {
      if (e.dirty) fn(k, e);
    });
  }
  // Empties the cache (after for_each_dirty wrote the dirty entries out). The index stays, for
  // the next entries.
  void clear() {
    if (size_ == 0) return;
    chunks_.clear();
    std::fill(index_.begin(), index_.end(), 0);
    size_ = 0;
    value_bytes_ = 0;
  }
  // Keys were renumbered: each entry's key k becomes remap[k]; entries of forgotten keys
  // (kNoKey) are dropped, which the caller allows only where that loses nothing (no present
  // entry; an erase whose key the store does not hold). Flags stay.
  void renumber(const std::vector<KeyId>& remap) {
    rebuild(
        [&](Entry& e) {
          e.key = remap[e.key];
          return e.key != kNoKey;
        },
        /*reset=*/false);
  }
  // After for_each_dirty wrote the dirty entries out: every entry is clean, cached appends are
  // dropped (their value is not the whole entry), and entries are evicted until the cache holds
  // at most keep_bytes (bytes(): the kept entries and values and an index sized for them), those
  // read or written since the last eviction kept first (a second-chance clock), so that the hot
  // keys stay cached across flushes.
  void written_back(size_t keep_bytes) {
    if (keep_bytes == 0) {
      clear();
      return;
    }
    std::vector<uint8_t> keep(size_, 0);
    size_t kept = 0;
    size_t kept_heap = 0;
    for (const bool referenced : {true, false}) {
      for (size_t p = 0; p < size_; ++p) {
        const Entry& e = entry(p);
        if (keep[p] || e.appends || e.referenced != referenced) continue;
        const size_t h = heap_bytes(e.value);
        if (bytes_for(kept + 1) + kept_heap + h > keep_bytes) continue;
        keep[p] = 1;
        ++kept;
        kept_heap += h;
      }
    }
    size_t p = 0;
    rebuild([&](const Entry&) { return keep[p++] != 0; }, /*reset=*/true);
  }

 private:
  // Chunks of entries: 16, 16, 32, 64, ..., 512 entries (together kChunk), then kChunk each, so
  // that a small cache is not one large chunk and a large one has no more than a chunk to spare.
  static constexpr size_t kChunk = 1024;
  static constexpr size_t kSmallChunks = 7;
  static constexpr size_t kMinSlots = 16;
  static size_t chunk_size(size_t c) { return c == 0 ? 16 : c < kSmallChunks ? 8 << c : kChunk; }
  // Entries in the first `chunks` chunks.
  static size_t capacity_for(size_t chunks) {
    return chunks == 0             ? 0
           : chunks < kSmallChunks ? 8 << chunks
                                   : (chunks - kSmallChunks + 1) * kChunk;
  }
  // The chunk holding position p, and p's offset in it.
  static std::pair<size_t, size_t> chunk_of(size_t p) {
    if (p < 16) return {0, p};
    if (p < kChunk) {
      const int top = std::bit_width(p) - 1;  // p in [2^top, 2^(top+1)): chunk top - 3
      return {static_cast<size_t>(top - 3), p - (size_t{1} << top)};
    }
    return {p / kChunk + kSmallChunks - 1, p % kChunk};
  }
  using Chunk = std::unique_ptr<Entry[]>;

  // Heap bytes of a value.
  static size_t heap_bytes(const CacheBytes& v) { return v.capacity(); }
  // The index size for n entries: a power of two, at most 3/4 full.
  static size_t slots_for(size_t n) {
    size_t slots = kMinSlots;
    while (n * 4 > slots * 3) slots *= 2;
    return slots;
  }
  // bytes() of n entries, their values aside.
  static size_t bytes_for(size_t n) {
    size_t chunks = 0;
    while (capacity_for(chunks) < n) ++chunks;
    return capacity_for(chunks) * sizeof(Entry) + slots_for(n) * sizeof(uint64_t);
  }
  static uint64_t hash(const Key& k) {
    uint64_t h = (uint64_t{k.key} | uint64_t{k.sid} << 32) ^ (k.ns * 0x9E3779B97F4A7C15ull);
    h ^= h >> 33;  // murmur3's fmix64
    h *= 0xFF51AFD7ED558CCDull;
    h ^= h >> 33;
    h *= 0xC4CEB9FE1A85EC53ull;
    h ^= h >> 33;
    return h;
  }
  // An index slot is 0 (empty) or [the high 32 bits of the entry's hash][its position + 1]: a
  // probe compares the tags before it looks at an entry.
  static uint32_t tag_of(uint64_t hash_or_slot) {
    return static_cast<uint32_t>(hash_or_slot >> 32);
  }
  static size_t position_of(uint64_t slot) { return static_cast<uint32_t>(slot) - 1; }

  // find() of k, whose hash is h.
  Entry* find(const Key& k, uint64_t h) {
    if (size_ == 0) return nullptr;
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const uint64_t s = index_[i];
      if (s == 0) return nullptr;
      if (tag_of(s) != tag_of(h)) continue;
      Entry& e = entry(position_of(s));
      if (e.has_key(k)) {
        e.referenced = true;
        return &e;
      }
    }
  }
  // Calls fn(entry) for the entries whose tags match k's among the first two slots of k's probe,
  // until it returns true.
  template <typename Fn>
  void near_candidates(const Key& k, Fn&& fn) const {
    if (size_ == 0) return;
    const uint64_t h = hash(k);
    for (size_t n = 0, i = h & mask_; n < 2; ++n, i = (i + 1) & mask_) {
      const uint64_t s = index_[i];
      if (s == 0) return;
      if (tag_of(s) == tag_of(h) && fn(entry(position_of(s)))) return;
    }
  }
  Entry& entry(size_t p) const {
    const auto [c, i] = chunk_of(p);
    return chunks_[c][i];
  }
  // Position size_ has room, in a new chunk if need be.
  void reserve_next() {
    if (size_ == capacity_for(chunks_.size())) {
      chunks_.push_back(std::make_unique<Entry[]>(chunk_size(chunks_.size())));
    }
  }

  void index_insert(uint64_t h, size_t p) {
    size_t i = h & mask_;
    while (index_[i] != 0) i = (i + 1) & mask_;
    index_[i] = (h & ~uint64_t{0xFFFFFFFF}) | (p + 1);
  }
  void resize_index(size_t slots) {
    index_.assign(slots, 0);
    mask_ = slots - 1;
    for (size_t p = 0; p < size_; ++p) index_insert(hash(entry(p).cache_key()), p);
  }
  // A new entry of k (whose hash is h), not in the cache.
  Entry& append(const Key& k, uint64_t h) {
    if (index_.size() < slots_for(size_ + 1)) resize_index(slots_for(size_ + 1));
    reserve_next();
    Entry& e = entry(size_);
    e = Entry{};
    e.sid = k.sid;
    e.key = k.key;
    e.ns = k.ns;
    index_insert(h, size_);
    ++size_;
    return e;
  }
  // Keeps the entries for which keep(entry) is true (called once per entry, in position order;
  // it may change the entry's key), moved into fresh chunks; with reset, clean and unreferenced.
  template <typename KeepFn>
  void rebuild(KeepFn&& keep, bool reset) {
    std::vector<Chunk> old;
    old.swap(chunks_);
    const size_t n = size_;
    size_ = 0;
    value_bytes_ = 0;
    for (size_t p = 0; p < n; ++p) {
      const auto [c, i] = chunk_of(p);
      Entry& e = old[c][i];
      if (!keep(e)) continue;
      reserve_next();
      Entry& t = entry(size_++);
      t = std::move(e);
      if (reset) {
        t.dirty = false;
        t.referenced = false;
      }
      value_bytes_ += heap_bytes(t.value);
    }
    resize_index(slots_for(size_));
  }

  size_t budget_bytes_;
  size_t value_bytes_ = 0;  // heap_bytes of the entries' values
  size_t size_ = 0;         // entries: positions [0, size_) of the chunks
  size_t mask_ = 0;
  std::vector<Chunk> chunks_;    // the entries in insertion order, kChunk to a chunk
  std::vector<uint64_t> index_;  // open addressing, linear probing, power-of-two size, <= 3/4 full
};

}  // namespace sabot::state::internal
