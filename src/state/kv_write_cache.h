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
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sabot/base/prefetch.h"
#include "sabot/state/key_registry.h"
#include "sabot/state/state.h"

namespace sabot::state::internal {

class KvWriteCache {
 public:
  struct Key {
    uint16_t sid = 0;  // the state
    KeyId key = 0;
    Namespace ns = 0;
    bool operator==(const Key&) const = default;
  };
  struct Entry {
    std::string value;     // the stored bytes when present
    bool present = false;  // false: the store has no entry (a cached miss or an erase)
    bool dirty = false;    // differs from the store
    // The value is list elements to append to whatever the store holds (merge operands not yet
    // written), not the whole entry; present and dirty. A read merges them with the store's.
    bool appends = false;
    bool referenced = true;  // read or written since the last eviction
  };

  // budget_bytes == 0 turns the cache off: find() never hits and every write goes through.
  explicit KvWriteCache(size_t budget_bytes) : budget_bytes_(budget_bytes) {}

  bool enabled() const { return budget_bytes_ > 0; }
  size_t size() const { return size_; }
  // What the cache holds in memory: its table (64-byte slots, at most 3/4 full) and the values
  // too long to sit in their slot.
  size_t bytes() const { return value_bytes_ + slots_.size() * sizeof(Slot); }
  bool over_budget() const { return bytes() > budget_bytes_; }
  size_t budget_bytes() const { return budget_bytes_; }

  // The entry of k, or nullptr. The pointer stays valid until the next set() or eviction.
  Entry* find(const Key& k) {
    if (size_ == 0) return nullptr;
    for (size_t i = hash(k) & mask_;; i = (i + 1) & mask_) {
      Slot& s = slots_[i];
      if (!s.used) return nullptr;
      if (s.key == k) {
        s.entry.referenced = true;
        return &s.entry;
      }
    }
  }
  // Starts loading the slot where k's probe begins into the CPU cache (a hint; changes nothing).
  // Both ends: the table is not aligned to cache lines, so a slot usually spans two, and the
  // probe reads its key at the start and its `used` flag at the end.
  void prefetch(const Key& k) const {
    if (size_ == 0) return;
    const char* p = reinterpret_cast<const char*>(&slots_[hash(k) & mask_]);
    sabot::prefetch(p);
    sabot::prefetch(p + sizeof(Slot) - 1);
  }

  // Starts loading the value bytes of k's entry, if cached (a hint; changes nothing). Looks at the
  // first two slots of k's probe only, those prefetch(k) brought in: walking further would wait
  // for memory, and a key with no entry (a state most keys never write) can probe far.
  void prefetch_value(const Key& k) const {
    if (size_ == 0) return;
    for (size_t n = 0, i = hash(k) & mask_; n < 2; ++n, i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (!s.used) return;
      if (s.key == k) {
        const char* p = s.entry.value.data();
        const size_t bytes = std::min<size_t>(s.entry.value.size(), 4 * 64);
        for (size_t off = 0; off < bytes; off += 64) sabot::prefetch(p + off);
        return;
      }
    }
  }

  // Records the entry's bytes (present) or its absence (value ignored); returns the entry.
  Entry* set(const Key& k, bool present, std::string_view value, bool dirty) {
    if ((size_ + 1) * 4 > slots_.size() * 3) grow();
    size_t i = hash(k) & mask_;
    while (slots_[i].used && !(slots_[i].key == k)) i = (i + 1) & mask_;
    Slot& s = slots_[i];
    Entry& e = s.entry;
    const bool inserted = !s.used;
    if (inserted) {
      s.used = true;
      s.key = k;
      e = Entry{};
      ++size_;
    } else {
      value_bytes_ -= heap_bytes(e.value);
    }
    e.present = present;
    e.appends = false;
    if (present) {
      e.value.assign(value.data(), value.size());
    } else {
      e.value.clear();
    }
    e.dirty = inserted ? dirty : (e.dirty || dirty);
    e.referenced = true;
    value_bytes_ += heap_bytes(e.value);
    return &e;
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
    if (size_ == 0) return;
    for (const Slot& s : slots_) {
      if (s.used) fn(s.key, s.entry);
    }
  }
  // Calls fn(key, entry) for every dirty entry, in no particular order.
  template <typename Fn>
  void for_each_dirty(Fn&& fn) const {
    for_each([&](const Key& k, const Entry& e) {
      if (e.dirty) fn(k, e);
    });
  }
  // Empties the cache (after for_each_dirty wrote the dirty entries out).
  void clear() {
    if (size_ == 0) return;
    for (Slot& s : slots_) s = Slot{};
    size_ = 0;
    value_bytes_ = 0;
  }
  // Keys were renumbered: each entry's key k becomes remap[k]; entries of forgotten keys
  // (kNoKey) are dropped, which the caller allows only where that loses nothing (no present
  // entry; an erase whose key the store does not hold). Flags stay.
  void renumber(const std::vector<KeyId>& remap) {
    std::vector<Slot> old;
    old.swap(slots_);
    size_t kept = 0;
    for (Slot& s : old) kept += s.used && remap[s.key.key] != kNoKey;
    slots_.resize(slots_for(kept));
    mask_ = slots_.size() - 1;
    size_ = 0;
    value_bytes_ = 0;
    for (Slot& s : old) {
      if (!s.used) continue;
      s.key.key = remap[s.key.key];
      if (s.key.key != kNoKey) place(std::move(s), /*reset=*/false);
    }
  }
  // After for_each_dirty wrote the dirty entries out: every entry is clean, cached appends are
  // dropped (their value is not the whole entry), and entries are evicted until the cache holds
  // at most keep_bytes (bytes(): the kept values and a table sized for them), those read or
  // written since the last eviction kept first (a second-chance clock), so that the hot keys stay
  // cached across flushes.
  void written_back(size_t keep_bytes) {
    if (keep_bytes == 0) {
      clear();
      return;
    }
    std::vector<Slot> old;
    old.swap(slots_);
    std::vector<Slot*> kept;
    size_t kept_heap = 0;
    for (const bool referenced : {true, false}) {
      for (Slot& s : old) {
        if (!s.used || s.entry.appends || s.entry.referenced != referenced) continue;
        const size_t h = heap_bytes(s.entry.value);
        if (slots_for(kept.size() + 1) * sizeof(Slot) + kept_heap + h > keep_bytes) continue;
        kept.push_back(&s);
        kept_heap += h;
      }
    }
    slots_.resize(slots_for(kept.size()));
    mask_ = slots_.size() - 1;
    size_ = 0;
    value_bytes_ = 0;
    for (Slot* s : kept) place(std::move(*s), /*reset=*/true);
  }

 private:
  struct Slot {
    Key key;
    Entry entry;
    bool used = false;
  };
  static constexpr size_t kMinSlots = 16;
  // Heap bytes of a value: none while it fits in the string itself (short-string optimisation).
  static size_t heap_bytes(const std::string& v) {
    static const size_t inline_capacity = std::string().capacity();
    return v.capacity() > inline_capacity ? v.capacity() + 1 : 0;
  }
  // The table size for n entries: a power of two, at most 3/4 full.
  static size_t slots_for(size_t n) {
    size_t slots = kMinSlots;
    while (n * 4 > slots * 3) slots *= 2;
    return slots;
  }
  static size_t hash(const Key& k) {
    uint64_t h = (uint64_t{k.key} | uint64_t{k.sid} << 32) ^ (k.ns * 0x9E3779B97F4A7C15ull);
    h ^= h >> 33;  // murmur3's fmix64
    h *= 0xFF51AFD7ED558CCDull;
    h ^= h >> 33;
    h *= 0xC4CEB9FE1A85EC53ull;
    h ^= h >> 33;
    return static_cast<size_t>(h);
  }
  // Moves a slot whose key is not in the table into it; with reset, clean and unreferenced.
  void place(Slot&& s, bool reset) {
    size_t i = hash(s.key) & mask_;
    while (slots_[i].used) i = (i + 1) & mask_;
    Slot& t = slots_[i];
    t = std::move(s);
    t.used = true;
    if (reset) {
      t.entry.dirty = false;
      t.entry.referenced = false;
    }
    ++size_;
    value_bytes_ += heap_bytes(t.entry.value);
  }
  void grow() {
    std::vector<Slot> old;
    old.swap(slots_);
    slots_.resize(old.empty() ? kMinSlots : old.size() * 2);
    mask_ = slots_.size() - 1;
    size_ = 0;
    value_bytes_ = 0;
    for (Slot& s : old) {
      if (s.used) place(std::move(s), /*reset=*/false);
    }
  }

  size_t budget_bytes_;
  size_t value_bytes_ = 0;  // heap_bytes of the entries' values
  size_t size_ = 0;
  size_t mask_ = 0;
  std::vector<Slot> slots_;  // open addressing, linear probing, power-of-two size, <= 3/4 full
};

}  // namespace sabot::state::internal
