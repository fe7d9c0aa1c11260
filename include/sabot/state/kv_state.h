// Implementation detail of byte-store keyed-state backends (RocksDB): typed state handles that keep
// each (key, namespace) entry as bytes in a KvStore, encoded as an i64 write time followed by the
// StateCodec bytes of the same value type the memory backend snapshots (T, std::vector<T>,
// std::map<K, TimedEntry<V>>, Acc), so a stored value is a snapshot entry as is. Users include
// keyed_state_backend.h instead. Owned by one backend; not thread-safe.
#pragma once

#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sabot/base/check.h"
#include "sabot/state/memory_state.h"
#include "sabot/state/state.h"
#include "sabot/state/state_codec.h"

namespace sabot::state::internal {

// The bytes of one state in a byte store, addressed by (KeyId, namespace); implemented by the
// backend (one per registered state). Values are [i64 write_ms][StateCodec bytes].
class KvStore {
 public:
  virtual ~KvStore() = default;
  // Copies the entry's bytes into *value; false when absent.
  virtual bool get(KeyId key, Namespace ns, std::string* value) = 0;
  virtual void put(KeyId key, Namespace ns, std::string_view value) = 0;
  // Appends a list: `operand` is [i64 write_ms][u64 n][n element encodings]; the stored list gets
  // the elements appended and the larger write time (the backend's merge operator).
  virtual void merge_list(KeyId key, Namespace ns, std::string_view operand) = 0;
  virtual void erase(KeyId key, Namespace ns) = 0;
};

// The backend's view of a typed table: what needs the value's C++ type.
class KvTable {
 public:
  virtual ~KvTable() = default;
  // OK when `value` (StateCodec bytes, no write time) decodes as this state's value type.
  virtual Status check_value(std::string_view value) const = 0;
  // MapState under TTL: removes expired map entries from the stored `value` (with write time),
  // adding their count to *removed; returns true when the map is then empty. Others: false.
  virtual bool purge_inside(std::string* value, int64_t now_ms, size_t* removed) const {
    return false;
  }
};

inline int64_t kv_write_ms(std::string_view stored) {
  int64_t ms = 0;
  SABOT_CHECK_GE(stored.size(), sizeof ms);
  std::memcpy(&ms, stored.data(), sizeof ms);
  return ms;
}

// TTL check shared with the memory tables: an age beyond int64 is expired when the write lies in
// the past.
inline bool kv_expired(int64_t ttl_ms, int64_t write_ms, int64_t now) {
  int64_t age = 0;
  if (__builtin_sub_overflow(now, write_ms, &age)) return write_ms < now;
  return age >= ttl_ms;
}

// Storage and TTL shared by every kind: one encoded V per (key, namespace).
template <typename V>
class KvSlotTable : public KvTable {
 public:
  KvSlotTable(const StateContext* ctx, KvStore* store, const StateOptions& options)
      : ctx_(ctx),
        store_(store),
        ttl_ms_(options.ttl.count()),
        refresh_on_read_(options.refresh_on_read) {}

  Status check_value(std::string_view value) const override {
    V v{};
    return decode_state_value(value, &v, "keyed state snapshot value");
  }

 protected:
  bool ttl_on() const { return ttl_ms_ > 0; }
  int64_t now_ms() const { return ctx_->now_ms; }
  bool expired(int64_t write_ms, int64_t now) const { return kv_expired(ttl_ms_, write_ms, now); }
  KeyId key() const {
    SABOT_CHECK(ctx_->key != kNoKey);  // state accessed before set_current_key
    return ctx_->key;
  }
  // Reads the live value of (k, ns) into *out; false when absent. Drops an expired entry and
  // refreshes the write time on read when asked to. *write_ms gets the entry's write time.
  bool read(KeyId k, Namespace ns, V* out, int64_t* write_ms = nullptr) {
    if (!store_->get(k, ns, &buf_)) return false;
    const int64_t ms = kv_write_ms(buf_);
    if (ttl_on()) {
      const int64_t now = now_ms();
      if (expired(ms, now)) {
        store_->erase(k, ns);
        return false;
      }
      if (refresh_on_read_) {
        std::memcpy(buf_.data(), &now, sizeof now);
        store_->put(k, ns, buf_);
      }
    }
    if (write_ms != nullptr) *write_ms = ms;
    SABOT_CHECK_OK(decode_state_value(std::string_view(buf_).substr(sizeof(int64_t)), out));
    return true;
  }
  // The write time a write stores now: the clock's when TTL is on, else 0 (as the memory tables).
  int64_t write_time() const { return ttl_on() ? now_ms() : 0; }
  void write(KeyId k, Namespace ns, const V& v) {
    buf_.clear();
    ByteWriter w(&buf_);
    w.put<int64_t>(write_time());
    StateCodec<V>::encode(v, w);
    store_->put(k, ns, buf_);
  }
  void erase(KeyId k, Namespace ns) { store_->erase(k, ns); }

  const StateContext* ctx_;
  KvStore* store_;
  int64_t ttl_ms_;
  bool refresh_on_read_;
  std::string buf_;
};

template <typename T>
class KvValueState final : public ValueState<T>, public KvSlotTable<T> {
 public:
  using KvSlotTable<T>::KvSlotTable;
  std::optional<T> value() override {
    T v{};
    if (!this->read(this->key(), this->ctx_->ns, &v)) return std::nullopt;
    return std::optional<T>(std::move(v));
  }
  const T* get() override {
    cache_.emplace();
    if (!this->read(this->key(), this->ctx_->ns, &*cache_)) return nullptr;
    return &*cache_;
  }
  void update(T value) override { this->write(this->key(), this->ctx_->ns, value); }
  void clear() override { this->erase(this->key(), this->ctx_->ns); }

 private:
  std::optional<T> cache_;  // what get() points into
};

template <typename T>
class KvListState final : public ListState<T>, public KvSlotTable<std::vector<T>> {
  using Base = KvSlotTable<std::vector<T>>;

 public:
  using Base::Base;
  std::span<const T> get() override {
    if (!this->read(this->key(), this->ctx_->ns, &cache_)) cache_.clear();
    return std::span<const T>(cache_);
  }
  void add(T value) override { add_all(std::span<const T>(&value, 1)); }
  void add_all(std::span<const T> values) override {
    if (values.empty()) return;
    append(this->key(), this->ctx_->ns, values);
  }
  void update(std::vector<T> values) override {
    if (values.empty()) {
      clear();
      return;
    }
    this->write(this->key(), this->ctx_->ns, values);
  }
  void clear() override { this->erase(this->key(), this->ctx_->ns); }
  void merge_namespaces(Namespace target, std::span<const Namespace> sources) override {
    const KeyId k = this->key();
    std::vector<T> moved;
    for (Namespace src : sources) {
      if (src == target) continue;
      if (!this->read(k, src, &moved)) continue;
      this->erase(k, src);
      append(k, target, moved);
    }
  }

 private:
  // Without TTL an append is a merge (no read); with TTL an expired list must restart, so the
  // entry is read first.
  void append(KeyId k, Namespace ns, std::span<const T> values) {
    if (this->ttl_on()) {
      std::vector<T> cur;
      if (!this->read(k, ns, &cur)) cur.clear();
      cur.insert(cur.end(), values.begin(), values.end());
      this->write(k, ns, cur);
      return;
    }
    operand_.clear();
    ByteWriter w(&operand_);
    w.put<int64_t>(0);
    w.put<uint64_t>(values.size());
    for (const T& v : values) StateCodec<T>::encode(v, w);
    this->store_->merge_list(k, ns, operand_);
  }

  std::vector<T> cache_;  // what get() points into
  std::string operand_;
};

template <typename K, typename V>
class KvMapState final : public MapState<K, V>, public KvSlotTable<std::map<K, TimedEntry<V>>> {
  using Map = std::map<K, TimedEntry<V>>;
  using Base = KvSlotTable<Map>;

 public:
  using Base::Base;
  std::optional<V> get(const K& key) override {
    Map* m = live_map();
    if (m == nullptr) return std::nullopt;
    auto it = m->find(key);
    if (it == m->end()) return std::nullopt;
    return std::optional<V>(it->second.value);
  }
  bool contains(const K& key) override { return get(key).has_value(); }
  void put(K key, V value) override {
    const KeyId k = this->key();
    const Namespace ns = this->ctx_->ns;
    Map m;
    if (!this->read(k, ns, &m)) m.clear();
    prune(m);
    m[std::move(key)] = TimedEntry<V>{std::move(value), this->write_time()};
    this->write(k, ns, m);
  }
  void remove(const K& key) override {
    const KeyId k = this->key();
    const Namespace ns = this->ctx_->ns;
    Map m;
    if (!this->read(k, ns, &m)) return;
    if (m.erase(key) == 0) return;
    if (m.empty()) {
      this->erase(k, ns);
    } else {
      this->write(k, ns, m);
    }
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
      const Map copy = *m;  // fn may read this state, which reuses cache_
      for (const auto& [k, e] : copy) fn(k, e.value);
    }
  }
  void clear() override { this->erase(this->key(), this->ctx_->ns); }

  bool purge_inside(std::string* value, int64_t now_ms, size_t* removed) const override {
    Map m;
    SABOT_CHECK_OK(decode_state_value(std::string_view(*value).substr(sizeof(int64_t)), &m));
    const size_t before = m.size();
    std::erase_if(m, [&](const auto& kv) { return this->expired(kv.second.write_ms, now_ms); });
    *removed += before - m.size();
    if (m.size() != before) {
      const int64_t ms = kv_write_ms(*value);
      value->clear();
      ByteWriter w(value);
      w.put<int64_t>(ms);
      StateCodec<Map>::encode(m, w);
    }
    return m.empty();
  }

 private:
  // Drops expired map entries (TTL is per entry).
  void prune(Map& m) const {
    if (!this->ttl_on()) return;
    const int64_t now = this->now_ms();
    std::erase_if(m, [&](const auto& kv) { return this->expired(kv.second.write_ms, now); });
  }
  // The current map without its expired entries (written back when some expired or a read
  // refreshes them), or nullptr when absent or empty.
  Map* live_map() {
    const KeyId k = this->key();
    const Namespace ns = this->ctx_->ns;
    if (!this->read(k, ns, &cache_)) return nullptr;
    if (this->ttl_on()) {
      const size_t before = cache_.size();
      prune(cache_);
      if (cache_.empty()) {
        this->erase(k, ns);
        return nullptr;
      }
      if (this->refresh_on_read_) {
        for (auto& kv : cache_) kv.second.write_ms = this->now_ms();
      }
      if (cache_.size() != before || this->refresh_on_read_) this->write(k, ns, cache_);
    }
    return &cache_;
  }

  Map cache_;
};

template <typename T, typename ReduceFn>
class KvReducingState final : public ReducingState<T>, public KvSlotTable<T> {
 public:
  KvReducingState(const StateContext* ctx, KvStore* store, const StateOptions& options,
                  ReduceFn reduce)
      : KvSlotTable<T>(ctx, store, options), reduce_(std::move(reduce)) {}
  std::optional<T> get() override {
    T v{};
    if (!this->read(this->key(), this->ctx_->ns, &v)) return std::nullopt;
    return std::optional<T>(std::move(v));
  }
  void add(const T& value) override { add_to(this->key(), this->ctx_->ns, value); }
  void clear() override { this->erase(this->key(), this->ctx_->ns); }
  void merge_namespaces(Namespace target, std::span<const Namespace> sources) override {
    const KeyId k = this->key();
    for (Namespace src : sources) {
      if (src == target) continue;
      T v{};
      if (!this->read(k, src, &v)) continue;
      this->erase(k, src);
      add_to(k, target, v);
    }
  }

 private:
  void add_to(KeyId k, Namespace ns, const T& value) {
    T cur{};
    if (this->read(k, ns, &cur)) {
      this->write(k, ns, reduce_(cur, value));
    } else {
      this->write(k, ns, value);
    }
  }
  ReduceFn reduce_;
};

template <typename In, typename Acc, typename Out, typename Fn>
class KvAggregatingState final : public AggregatingState<In, Acc, Out>, public KvSlotTable<Acc> {
 public:
  KvAggregatingState(const StateContext* ctx, KvStore* store, const StateOptions& options, Fn fn)
      : KvSlotTable<Acc>(ctx, store, options), fn_(std::move(fn)) {}
  std::optional<Out> get() override {
    Acc a{};
    if (!this->read(this->key(), this->ctx_->ns, &a)) return std::nullopt;
    return std::optional<Out>(fn_.result(a));
  }
  const Acc* accumulator() override {
    cache_.emplace();
    if (!this->read(this->key(), this->ctx_->ns, &*cache_)) return nullptr;
    return &*cache_;
  }
  void add(const In& value) override {
    const KeyId k = this->key();
    const Namespace ns = this->ctx_->ns;
    Acc a{};
    if (!this->read(k, ns, &a)) a = fn_.create();
    fn_.add(a, value);
    this->write(k, ns, a);
  }
  void clear() override { this->erase(this->key(), this->ctx_->ns); }
  void merge_namespaces(Namespace target, std::span<const Namespace> sources) override {
    const KeyId k = this->key();
    for (Namespace src : sources) {
      if (src == target) continue;
      Acc a{};
      if (!this->read(k, src, &a)) continue;
      this->erase(k, src);
      Acc t{};
      if (this->read(k, target, &t)) {
        fn_.merge(t, a);
        this->write(k, target, t);
      } else {
        this->write(k, target, a);
      }
    }
  }

 private:
  Fn fn_;
  std::optional<Acc> cache_;
};

}  // namespace sabot::state::internal
