// A write-back cache of a byte store's entries, in front of the RocksDB keyed-state backend.
// Keyed state is read-modify-write: each record reads its key's value and writes it back. Against
// RocksDB that is a Get and a Put, about 3 µs together, per state per record. Here a cached entry
// costs a hash lookup instead, absent entries are remembered as absent, and dirty entries reach
// RocksDB together (one WriteBatch) when the cache outgrows its byte budget or before anything
// reads the instance directly (scans, snapshots, checkpoints, key remapping). This is Kafka
// Streams' record cache in front of its RocksDB stores. Not thread-safe; owned by one backend.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

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
  size_t size() const { return entries_.size(); }
  size_t bytes() const { return bytes_; }
  bool over_budget() const { return bytes_ > budget_bytes_; }

  Entry* find(const Key& k) {
    auto it = entries_.find(k);
    if (it == entries_.end()) return nullptr;
    it->second.referenced = true;
    return &it->second;
  }

  // Records the entry's bytes (present) or its absence (value ignored); returns the entry.
  Entry* set(const Key& k, bool present, std::string_view value, bool dirty) {
    auto [it, inserted] = entries_.try_emplace(k);
    Entry& e = it->second;
    if (inserted) {
      bytes_ += kEntryOverhead;
    } else {
      bytes_ -= e.value.capacity();
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
    bytes_ += e.value.capacity();
    return &e;
  }

  // Changes cached entry `e` (from find) in place through fn(*e), after which it is present and
  // dirty (appends stays as fn leaves it).
  template <typename Fn>
  void update(Entry* e, Fn&& fn) {
    bytes_ -= e->value.capacity();
    fn(*e);
    e->present = true;
    e->dirty = true;
    bytes_ += e->value.capacity();
  }

  // Calls fn(key, entry) for every dirty entry, in no particular order.
  template <typename Fn>
  void for_each_dirty(Fn&& fn) const {
    for (const auto& [k, e] : entries_) {
      if (e.dirty) fn(k, e);
    }
  }
  // Empties the cache (after for_each_dirty wrote the dirty entries out).
  void clear() {
    entries_.clear();
    bytes_ = 0;
  }
  // After for_each_dirty wrote the dirty entries out: every entry is clean, cached appends are
  // dropped (their value is not the whole entry), and entries are evicted until the cache holds
  // at most keep_bytes, those not read or written since the last eviction first (a second-chance
  // clock), so that the hot keys stay cached across flushes.
  void written_back(size_t keep_bytes) {
    if (keep_bytes == 0) {
      clear();
      return;
    }
    const auto drop = [&](auto it) {
      bytes_ -= kEntryOverhead + it->second.value.capacity();
      return entries_.erase(it);
    };
    for (auto it = entries_.begin(); it != entries_.end();) {
      if (it->second.appends || (bytes_ > keep_bytes && !it->second.referenced)) {
        it = drop(it);
      } else {
        ++it;
      }
    }
    for (auto it = entries_.begin(); it != entries_.end() && bytes_ > keep_bytes;) it = drop(it);
    for (auto& [k, e] : entries_) {
      e.dirty = false;
      e.referenced = false;
    }
  }
  size_t budget_bytes() const { return budget_bytes_; }

 private:
  // Node, key and string header of an unordered_map entry, roughly: counted so that the budget
  // bounds memory, not only value bytes.
  static constexpr size_t kEntryOverhead = 96;
  struct Hash {
    size_t operator()(const Key& k) const {
      uint64_t h = (uint64_t{k.key} << 16 | k.sid) * 0x9E3779B97F4A7C15ull;
      h ^= k.ns + 0x632BE59BD9B4E019ull + (h << 6) + (h >> 2);
      return static_cast<size_t>(h ^ (h >> 29));
    }
  };
  size_t budget_bytes_;
  size_t bytes_ = 0;
  std::unordered_map<Key, Entry, Hash> entries_;
};

}  // namespace sabot::state::internal
