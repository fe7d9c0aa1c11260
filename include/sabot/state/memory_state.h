// Implementation detail of the memory keyed-state backend: typed tables indexed by KeyId (paged
// slots for the default namespace, a hash map for other namespaces) holding C++ values, with
// TTL, and the hooks the backend uses to snapshot and restore them. Users include
// keyed_state_backend.h instead. Owned by one backend; not thread-safe.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "sabot/base/check.h"
#include "sabot/base/prefetch.h"
#include "sabot/state/state.h"
#include "sabot/state/state_codec.h"

namespace sabot::state::internal {

// Which keys a snapshot includes: bucket (index of the key group in the snapshot, -1 = excluded)
// and index within the bucket's key list, both by KeyId.
struct SnapshotPlan {
  std::vector<int32_t> key_bucket;
  std::vector<uint32_t> key_index;
};

// Per-bucket output of one state: the encoded entries and their count.
struct SnapshotBuckets {
  std::vector<std::string> bytes;
  std::vector<uint64_t> counts;
};

// The backend's view of a memory state table.
class MemoryTable {
 public:
  virtual ~MemoryTable() = default;
  // Appends each live entry of an included key to its bucket as
  // u32 key_index, u64 namespace, i64 write_ms, u64 length + StateCodec bytes of the value.
  virtual void snapshot_entries(const SnapshotPlan& plan, int64_t now_ms,
                                SnapshotBuckets* out) const = 0;
  // Sets one entry from snapshot bytes; InvalidData when they do not decode.
  virtual Status restore_entry(KeyId key, Namespace ns, int64_t write_ms,
                               std::string_view value) = 0;
  // Removes expired entries; returns how many were removed.
  virtual size_t purge_expired(int64_t now_ms) = 0;
  // Entries held (expired ones not yet purged included).
  virtual size_t num_entries() const = 0;
  // Appends the keys with a live entry in namespace `ns`, in increasing KeyId order.
  virtual void collect_keys(Namespace ns, int64_t now_ms, std::vector<KeyId>* out) const = 0;
  // Asks the CPU to fetch the key's default-namespace entry into cache; changes nothing.
  virtual void prefetch(KeyId key) const {}
  // Sets live[k] = 1 for every key k with an entry (any namespace; expired ones not yet purged
  // included). `live` has one byte per key.
  virtual void mark_live(std::vector<uint8_t>* live) const = 0;
  // Renumbers keys after the registry forgot some: the entry of old key k moves to remap[k]
  // (kNoKey: k has no entry, see mark_live). Storage is rebuilt, so memory follows the live keys.
  virtual void remap_keys(std::span<const KeyId> remap) = 0;
};

struct NsKey {
  KeyId key;
  Namespace ns;
  bool operator==(const NsKey&) const = default;
};
struct NsKeyHash {
  size_t operator()(const NsKey& k) const {
    uint64_t x = (k.ns * 0x9e3779b97f4a7c15ULL) ^ k.key;
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ULL;
    return static_cast<size_t>(x ^ (x >> 32));
  }
};

template <typename V>
struct Slot {
  std::optional<V> value;
  int64_t write_ms = 0;  // last write by the clock; only kept up to date when TTL is on
};

// Default-namespace slots by KeyId in fixed pages of kPageSlots: growing adds pages and never
// moves existing slots (a doubling vector copied every slot and faulted in fresh memory for each
// copy while the key count grew). Slot addresses stay stable.
template <typename V>
class PagedSlots {
 public:
  static constexpr size_t kPageBits = 10;
  static constexpr size_t kPageSlots = size_t{1} << kPageBits;

  size_t size() const { return size_; }
  Slot<V>& operator[](size_t k) { return pages_[k >> kPageBits][k & (kPageSlots - 1)]; }
  const Slot<V>& operator[](size_t k) const { return pages_[k >> kPageBits][k & (kPageSlots - 1)]; }
  // Makes slots [0, n) addressable; new slots are empty.
  void grow_to(size_t n) {
    while (pages_.size() * kPageSlots < n)
      pages_.push_back(std::make_unique<Slot<V>[]>(kPageSlots));
    size_ = std::max(size_, n);
  }
  // Calls f(key, slot) for every addressable slot in KeyId order.
  template <typename F>
  void for_each(F&& f) {
    for (size_t k = 0; k < size_; ++k) f(k, (*this)[k]);
  }
  template <typename F>
  void for_each(F&& f) const {
    for (size_t k = 0; k < size_; ++k) f(k, (*this)[k]);
  }

 private:
  std::vector<std::unique_ptr<Slot<V>[]>> pages_;
  size_t size_ = 0;
};

// Storage and TTL shared by every kind: one Slot<V> per (key, namespace).
template <typename V>
class SlotTable : public MemoryTable {
 public:
  SlotTable(const StateContext* ctx, const StateOptions& options)
      : ctx_(ctx), ttl_ms_(options.ttl.count()), refresh_on_read_(options.refresh_on_read) {}

  void snapshot_entries(const SnapshotPlan& plan, int64_t now_ms,
                        SnapshotBuckets* out) const override {
    dense_.for_each([&](size_t k, const Slot<V>& slot) {
      emit(plan, static_cast<KeyId>(k), kDefaultNamespace, slot, now_ms, out);
    });
    for (const auto& [nk, slot] : sparse_) emit(plan, nk.key, nk.ns, slot, now_ms, out);
  }

  Status restore_entry(KeyId key, Namespace ns, int64_t write_ms, std::string_view value) override {
    V v{};
    SABOT_RETURN_IF_ERROR(decode_state_value(value, &v, "keyed state snapshot value"));
    Slot<V>& s = slot_ref(key, ns);
    s.value = std::move(v);
    s.write_ms = write_ms;
    return Status::ok();
  }

  size_t purge_expired(int64_t now_ms) override {
    size_t n = 0;
    dense_.for_each([&](size_t, Slot<V>& s) {
      if (s.value && purge_slot(s, now_ms, &n)) {
        s.value.reset();
        ++n;
      }
    });
    for (auto it = sparse_.begin(); it != sparse_.end();) {
      if (purge_slot(it->second, now_ms, &n)) {
        it = sparse_.erase(it);
        ++n;
      } else {
        ++it;
      }
    }
    return n;
  }

  void collect_keys(Namespace ns, int64_t now_ms, std::vector<KeyId>* out) const override {
    const size_t first = out->size();
    if (ns == kDefaultNamespace) {
      dense_.for_each([&](size_t k, const Slot<V>& s) {
        if (s.value && !(ttl_on() && expired(s.write_ms, now_ms))) {
          out->push_back(static_cast<KeyId>(k));
        }
      });
      return;
    }
    for (const auto& [nk, s] : sparse_) {
      if (nk.ns == ns && s.value && !(ttl_on() && expired(s.write_ms, now_ms))) {
        out->push_back(nk.key);
      }
    }
    std::sort(out->begin() + static_cast<std::ptrdiff_t>(first), out->end());
  }

  void prefetch(KeyId k) const override {
    if (k >= dense_.size()) return;
    const char* p = reinterpret_cast<const char*>(&dense_[k]);
    for (size_t off = 0; off < sizeof(Slot<V>); off += 64) sabot::prefetch(p + off);
    sabot::prefetch(p + sizeof(Slot<V>) - 1);
  }

  void mark_live(std::vector<uint8_t>* live) const override {
    dense_.for_each([&](size_t k, const Slot<V>& s) {
      if (s.value) (*live)[k] = 1;
    });
    for (const auto& [nk, s] : sparse_) {
      if (s.value) (*live)[nk.key] = 1;
    }
  }

  void remap_keys(std::span<const KeyId> remap) override {
    PagedSlots<V> dense;
    dense_.for_each([&](size_t k, Slot<V>& s) {
      if (!s.value) return;
      const KeyId to = remap[k];
      SABOT_CHECK(to != kNoKey);
      dense.grow_to(static_cast<size_t>(to) + 1);
      dense[to] = std::move(s);
    });
    dense_ = std::move(dense);
    std::unordered_map<NsKey, Slot<V>, NsKeyHash> sparse;
    sparse.reserve(sparse_.size());
    for (auto& [nk, s] : sparse_) {
      if (!s.value) continue;
      const KeyId to = remap[nk.key];
      SABOT_CHECK(to != kNoKey);
      sparse.emplace(NsKey{to, nk.ns}, std::move(s));
    }
    sparse_ = std::move(sparse);
  }

  size_t num_entries() const override {
    size_t n = sparse_.size();
    dense_.for_each([&](size_t, const Slot<V>& s) { n += s.value.has_value(); });
    return n;
  }

 protected:
  // Kinds whose values hold their own timed entries (MapState) purge inside a slot: remove expired
  // parts, add their count to *removed, return true when the slot is then empty.
  virtual bool purge_inside(V& value, int64_t now_ms, size_t* removed) { return false; }

  bool ttl_on() const { return ttl_ms_ > 0; }
  int64_t now_ms() const { return ctx_->now_ms; }
  bool expired(int64_t write_ms, int64_t now) const {
    // A write time far from now (a corrupt or foreign snapshot holds any int64) must not overflow:
    // an age beyond int64 is expired when the write lies in the past, live when in the future.
    int64_t age = 0;
    if (__builtin_sub_overflow(now, write_ms, &age)) return write_ms < now;
    return age >= ttl_ms_;
  }
  KeyId key() const {
    SABOT_CHECK(ctx_->key != kNoKey);  // state accessed before set_current_key
    return ctx_->key;
  }

  // The live slot of (key, ns) or nullptr; drops it if expired.
  Slot<V>* read_slot(KeyId k, Namespace ns) {
    Slot<V>* s = find(k, ns);
    if (s == nullptr || !ttl_on()) return s;
    const int64_t now = now_ms();
    if (expired(s->write_ms, now)) {
      erase(k, ns);
      return nullptr;
    }
    if (refresh_on_read_) s->write_ms = now;
    return s;
  }
  // The slot of (key, ns) for writing: created if absent, reset if expired, write time refreshed.
  // The caller sets or modifies `value`.
  Slot<V>& write_slot(KeyId k, Namespace ns) {
    Slot<V>& s = slot_ref(k, ns);
    if (ttl_on()) {
      const int64_t now = now_ms();
      if (s.value && expired(s.write_ms, now)) s.value.reset();
      s.write_ms = now;
    }
    return s;
  }
  Slot<V>* read_current() { return read_slot(key(), ctx_->ns); }
  Slot<V>& write_current() { return write_slot(key(), ctx_->ns); }

  void erase(KeyId k, Namespace ns) {
    if (ns == kDefaultNamespace) {
      if (k < dense_.size()) dense_[k].value.reset();
    } else {
      sparse_.erase(NsKey{k, ns});
    }
  }

  const StateContext* ctx_;
  int64_t ttl_ms_;
  bool refresh_on_read_;

 private:
  Slot<V>* find(KeyId k, Namespace ns) {
    if (ns == kDefaultNamespace) {
      if (k >= dense_.size() || !dense_[k].value) return nullptr;
      return &dense_[k];
    }
    auto it = sparse_.find(NsKey{k, ns});
    return it == sparse_.end() ? nullptr : &it->second;
  }
  Slot<V>& slot_ref(KeyId k, Namespace ns) {
    if (ns == kDefaultNamespace) {
      if (k >= dense_.size()) dense_.grow_to(static_cast<size_t>(k) + 1);
      return dense_[k];
    }
    return sparse_[NsKey{k, ns}];
  }
  // True when the whole slot should go.
  bool purge_slot(Slot<V>& s, int64_t now_ms, size_t* removed) {
    if (!s.value) return true;
    if (ttl_on() && expired(s.write_ms, now_ms)) return true;
    return ttl_on() && purge_inside(*s.value, now_ms, removed);
  }
  void emit(const SnapshotPlan& plan, KeyId k, Namespace ns, const Slot<V>& s, int64_t now_ms,
            SnapshotBuckets* out) const {
    if (!s.value || k >= plan.key_bucket.size()) return;
    const int32_t b = plan.key_bucket[k];
    if (b < 0) return;
    if (ttl_on() && expired(s.write_ms, now_ms)) return;
    std::string& buf = out->bytes[static_cast<size_t>(b)];
    // The entry's fixed fields in one append (u32 key index, u64 namespace, i64 write time, u64
    // length patched below): one call instead of four per entry.
    char head[sizeof(uint32_t) + 3 * sizeof(uint64_t)] = {};
    const uint32_t key_index = plan.key_index[k];
    const uint64_t ns_bits = ns;
    const int64_t write_ms = s.write_ms;
    std::memcpy(head, &key_index, sizeof key_index);
    std::memcpy(head + 4, &ns_bits, sizeof ns_bits);
    std::memcpy(head + 12, &write_ms, sizeof write_ms);
    buf.append(head, sizeof head);
    const size_t len_at = buf.size() - sizeof(uint64_t);
    ByteWriter w(&buf);
    StateCodec<V>::encode(*s.value, w);
    const uint64_t len = buf.size() - len_at - sizeof(uint64_t);
    std::memcpy(buf.data() + len_at, &len, sizeof(len));
    ++out->counts[static_cast<size_t>(b)];
  }

  PagedSlots<V> dense_;  // namespace 0, by KeyId
  std::unordered_map<NsKey, Slot<V>, NsKeyHash> sparse_;
};

template <typename T>
class MemoryValueState final : public ValueState<T>, public SlotTable<T> {
 public:
  using SlotTable<T>::SlotTable;
  std::optional<T> value() override {
    Slot<T>* s = this->read_current();
    return s ? s->value : std::nullopt;
  }
  const T* get() override {
    Slot<T>* s = this->read_current();
    return s ? &*s->value : nullptr;
  }
  void update(T value) override { this->write_current().value = std::move(value); }
  void clear() override { this->erase(this->key(), this->ctx_->ns); }
};

template <typename T>
class MemoryListState final : public ListState<T>, public SlotTable<std::vector<T>> {
 public:
  using SlotTable<std::vector<T>>::SlotTable;
  std::span<const T> get() override {
    Slot<std::vector<T>>* s = this->read_current();
    return s ? std::span<const T>(*s->value) : std::span<const T>();
  }
  void add(T value) override {
    auto& s = this->write_current();
    if (!s.value) s.value.emplace();
    s.value->push_back(std::move(value));
  }
  void add_all(std::span<const T> values) override {
    if (values.empty()) return;
    auto& s = this->write_current();
    if (!s.value) s.value.emplace();
    s.value->insert(s.value->end(), values.begin(), values.end());
  }
  void update(std::vector<T> values) override {
    if (values.empty()) {
      clear();
      return;
    }
    this->write_current().value = std::move(values);
  }
  void clear() override { this->erase(this->key(), this->ctx_->ns); }
  void merge_namespaces(Namespace target, std::span<const Namespace> sources) override {
    const KeyId k = this->key();
    for (Namespace src : sources) {
      if (src == target) continue;
      auto* s = this->read_slot(k, src);
      if (s == nullptr) continue;
      std::vector<T> moved = std::move(*s->value);
      this->erase(k, src);  // before write_slot: it may rehash the namespace map
      auto& t = this->write_slot(k, target);
      if (!t.value) t.value.emplace();
      t.value->insert(t.value->end(), std::make_move_iterator(moved.begin()),
                      std::make_move_iterator(moved.end()));
    }
  }
};

// A map entry with its own write time (MapState TTL is per entry).
template <typename V>
struct TimedEntry {
  V value{};
  int64_t write_ms = 0;
};

template <typename K, typename V>
class MemoryMapState final : public MapState<K, V>, public SlotTable<std::map<K, TimedEntry<V>>> {
  using Map = std::map<K, TimedEntry<V>>;
  using Base = SlotTable<Map>;

 public:
  using Base::Base;
  std::optional<V> get(const K& key) override {
    const TimedEntry<V>* e = find_live(key);
    return e ? std::optional<V>(e->value) : std::nullopt;
  }
  bool contains(const K& key) override { return find_live(key) != nullptr; }
  void put(K key, V value) override {
    auto& s = this->write_current();
    if (!s.value) s.value.emplace();
    (*s.value)[std::move(key)] = TimedEntry<V>{std::move(value), s.write_ms};
  }
  void remove(const K& key) override {
    Slot<Map>* s = this->read_current();
    if (s == nullptr) return;
    s->value->erase(key);
    if (s->value->empty()) clear();
  }
  bool is_empty() override { return size() == 0; }
  size_t size() override {
    Map* m = live_map();
    return m ? m->size() : 0;
  }
  std::vector<std::pair<K, V>> entries() override {
    std::vector<std::pair<K, V>> out;
    if (Map* m = live_map()) {
      out.reserve(m->size());
      for (const auto& [k, e] : *m) out.emplace_back(k, e.value);
    }
    return out;
  }
  std::vector<K> keys() override {
    std::vector<K> out;
    if (Map* m = live_map()) {
      out.reserve(m->size());
      for (const auto& kv : *m) out.push_back(kv.first);
    }
    return out;
  }
  void for_each(const std::function<void(const K&, const V&)>& fn) override {
    if (Map* m = live_map()) {
      for (const auto& [k, e] : *m) fn(k, e.value);
    }
  }
  void clear() override { this->erase(this->key(), this->ctx_->ns); }

 protected:
  bool purge_inside(Map& m, int64_t now_ms, size_t* removed) override {
    std::erase_if(m, [&](const auto& kv) {
      const bool gone = this->expired(kv.second.write_ms, now_ms);
      *removed += gone;
      return gone;
    });
    return m.empty();
  }

 private:
  // The current map with its expired entries removed, or nullptr when absent or empty.
  Map* live_map() {
    Slot<Map>* s = this->read_current();
    if (s == nullptr) return nullptr;
    if (this->ttl_on()) {
      size_t removed = 0;
      if (purge_inside(*s->value, this->now_ms(), &removed)) {
        clear();
        return nullptr;
      }
    }
    return &*s->value;
  }
  const TimedEntry<V>* find_live(const K& key) {
    Slot<Map>* s = this->read_current();
    if (s == nullptr) return nullptr;
    auto it = s->value->find(key);
    if (it == s->value->end()) return nullptr;
    if (this->ttl_on()) {
      const int64_t now = this->now_ms();
      if (this->expired(it->second.write_ms, now)) {
        s->value->erase(it);
        if (s->value->empty()) clear();
        return nullptr;
      }
      if (this->refresh_on_read_) it->second.write_ms = now;
    }
    return &it->second;
  }
};

template <typename T, typename ReduceFn>
class MemoryReducingState final : public ReducingState<T>, public SlotTable<T> {
 public:
  MemoryReducingState(const StateContext* ctx, const StateOptions& options, ReduceFn reduce)
      : SlotTable<T>(ctx, options), reduce_(std::move(reduce)) {}
  std::optional<T> get() override {
    Slot<T>* s = this->read_current();
    return s ? s->value : std::nullopt;
  }
  void add(const T& value) override {
    auto& s = this->write_current();
    if (s.value) {
      *s.value = reduce_(*s.value, value);
    } else {
      s.value = value;
    }
  }
  void clear() override { this->erase(this->key(), this->ctx_->ns); }
  void merge_namespaces(Namespace target, std::span<const Namespace> sources) override {
    const KeyId k = this->key();
    for (Namespace src : sources) {
      if (src == target) continue;
      Slot<T>* s = this->read_slot(k, src);
      if (s == nullptr) continue;
      T v = std::move(*s->value);
      this->erase(k, src);
      auto& t = this->write_slot(k, target);
      if (t.value) {
        *t.value = reduce_(*t.value, v);
      } else {
        t.value = std::move(v);
      }
    }
  }

 private:
  ReduceFn reduce_;
};

template <typename In, typename Acc, typename Out, typename Fn>
class MemoryAggregatingState final : public AggregatingState<In, Acc, Out>, public SlotTable<Acc> {
 public:
  MemoryAggregatingState(const StateContext* ctx, const StateOptions& options, Fn fn)
      : SlotTable<Acc>(ctx, options), fn_(std::move(fn)) {}
  std::optional<Out> get() override {
    Slot<Acc>* s = this->read_current();
    if (s == nullptr) return std::nullopt;
    return std::optional<Out>(fn_.result(*s->value));
  }
  const Acc* accumulator() override {
    Slot<Acc>* s = this->read_current();
    return s ? &*s->value : nullptr;
  }
  void add(const In& value) override {
    auto& s = this->write_current();
    if (!s.value) s.value.emplace(fn_.create());
    fn_.add(*s.value, value);
  }
  void clear() override { this->erase(this->key(), this->ctx_->ns); }
  void merge_namespaces(Namespace target, std::span<const Namespace> sources) override {
    const KeyId k = this->key();
    for (Namespace src : sources) {
      if (src == target) continue;
      Slot<Acc>* s = this->read_slot(k, src);
      if (s == nullptr) continue;
      Acc a = std::move(*s->value);
      this->erase(k, src);
      auto& t = this->write_slot(k, target);
      if (t.value) {
        fn_.merge(*t.value, a);
      } else {
        t.value = std::move(a);
      }
    }
  }

 private:
  Fn fn_;
};

}  // namespace sabot::state::internal

namespace sabot::state {
template <typename V>
struct StateCodec<internal::TimedEntry<V>> {
  static void encode(const internal::TimedEntry<V>& e, ByteWriter& w) {
    w.put<int64_t>(e.write_ms);
    StateCodec<V>::encode(e.value, w);
  }
  static Status decode(ByteReader& r, internal::TimedEntry<V>* e) {
    SABOT_RETURN_IF_ERROR(r.get(&e->write_ms));
    return StateCodec<V>::decode(r, &e->value);
  }
};
}  // namespace sabot::state
