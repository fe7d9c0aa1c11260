// The RocksDB backend beyond the conformance suite (keyed_state_test runs that on both backends):
// the write cache's table, state several times larger than its block cache and memtables, the
// memory budget of all instances, memory snapshots restoring into RocksDB and back, and
// incremental checkpoints (file sharing, discard, restore at another parallelism).

#include "sabot/state/rocksdb_backend.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "sabot/columnar/builder.h"
#include "sabot/columnar/scalar.h"
#include "sabot/state/keyed_state_backend.h"
#include "state/kv_write_cache.h"

namespace sabot::state {
namespace {

namespace fs = std::filesystem;
using columnar::Scalar;

constexpr std::string_view kUid = "rocksdb-test";

// A scratch directory removed with the object.
struct ScratchDir {
  std::string path;
  explicit ScratchDir(std::string_view name) {
    path = ::testing::TempDir() + "/" + std::string(name) + "_" + std::to_string(::getpid());
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::unique_ptr<KeyedStateBackend> make(const StateBackend& b, std::vector<KeyGroup> groups = {}) {
  KeyedBackendOptions o;
  o.key_types = {columnar::int64()};
  o.key_groups = std::move(groups);
  o.name = "counts";
  return b.create_keyed_backend(o).value();
}

KeyId key_of(KeyedStateBackend& b, int64_t k) {
  return b.keys().resolve_values(std::vector<Scalar>{Scalar::of_int64(k)}).value();
}

// A value of ~100 bytes that depends on the key and a version.
std::string payload(int64_t key, int version) {
  std::string s = std::to_string(key) + "/" + std::to_string(version) + "/";
  s.resize(100, static_cast<char>('a' + (key + version) % 26));
  return s;
}

// The write cache's table against a map: entries survive growth with their flags, and a
// write-back keeps the entries used since the previous one before the others, drops cached
// appends, and leaves everything clean.
TEST(KvWriteCacheTest, GrowsKeepsFlagsAndEvictsUnusedEntriesFirst) {
  using internal::KvWriteCache;
  KvWriteCache cache(size_t{1} << 20);
  const std::string v(40, 'x');
  for (KeyId k = 0; k < 2000; ++k) {  // grows from 64 slots several times
    KvWriteCache::Entry* e = cache.set({1, k, 0}, k % 3 != 0, v, /*dirty=*/k % 2 == 0);
    if (k % 10 == 5) e->appends = true;
  }
  ASSERT_EQ(cache.size(), 2000u);
  size_t dirty = 0;
  cache.for_each_dirty([&](const KvWriteCache::Key& k, const KvWriteCache::Entry& e) {
    EXPECT_EQ(k.key % 2, 0u);
    EXPECT_EQ(e.present, k.key % 3 != 0);
    ++dirty;
  });
  EXPECT_EQ(dirty, 1000u);
  EXPECT_EQ(cache.find({1, 2000, 0}), nullptr);
  EXPECT_EQ(cache.find({2, 4, 0}), nullptr);  // another state
  EXPECT_EQ(cache.find({1, 4, 7}), nullptr);  // another namespace
  EXPECT_TRUE(cache.find({1, 15, 0})->appends);
  cache.written_back(cache.bytes());  // room for all: only the appends go
  EXPECT_EQ(cache.size(), 1800u);
  EXPECT_EQ(cache.find({1, 15, 0}), nullptr);
  cache.for_each_dirty(
      [&](const KvWriteCache::Key&, const KvWriteCache::Entry&) { ADD_FAILURE(); });
  // Use the keys divisible by 4, then keep room for about a third of the entries: the table
  // shrinks to fit the kept ones, and bytes() (table plus values) stays within what was asked.
  for (KeyId k = 0; k < 2000; k += 4) ASSERT_NE(cache.find({1, k, 0}), nullptr) << k;
  const size_t keep = cache.bytes() / 3;
  cache.written_back(keep);
  EXPECT_GE(cache.size(), 500u);
  EXPECT_LT(cache.size(), 900u);
  EXPECT_LE(cache.bytes(), keep);
  for (KeyId k = 0; k < 2000; k += 4) {
    const KvWriteCache::Entry* e = cache.find({1, k, 0});
    ASSERT_NE(e, nullptr) << k;
    EXPECT_EQ(e->present, k % 3 != 0);
    EXPECT_EQ(e->value, e->present ? v : "");
  }
  const size_t before = cache.bytes();
  cache.clear();
  EXPECT_EQ(cache.size(), 0u);
  // The values are gone; the empty table stays for the next entries.
  EXPECT_LT(cache.bytes(), before);
  EXPECT_GT(cache.bytes(), 0u);
  EXPECT_EQ(cache.find({1, 0, 0}), nullptr);
}

// After each write-back, every entry the cache still counts is found under its key with its value
// and clean, through collisions, clusters that wrap around the table's end (a table of 64 slots)
// and growth, over hundreds of random rounds of writes, reads and evictions.
TEST(KvWriteCacheTest, WriteBackKeepsEveryRemainingEntryFindable) {
  using internal::KvWriteCache;
  std::mt19937_64 rng(3);
  for (const KeyId keys : {KeyId{15}, KeyId{4000}}) {
    KvWriteCache cache(size_t{64} << 20);
    std::map<std::pair<uint16_t, KeyId>, std::string> model;  // what the cache should hold
    for (int round = 0; round < 300; ++round) {
      const int writes = static_cast<int>(rng() % (keys * 2));
      for (int i = 0; i < writes; ++i) {
        const uint16_t sid = static_cast<uint16_t>(rng() % 3);
        const KeyId k = static_cast<KeyId>(rng() % keys);
        const std::string v(rng() % 40, static_cast<char>('a' + rng() % 26));
        cache.set({sid, k, 0}, true, v, /*dirty=*/true);
        model[{sid, k}] = v;
      }
      for (KeyId i = 0; i < keys / 4; ++i) {
        cache.find({static_cast<uint16_t>(rng() % 3), static_cast<KeyId>(rng() % keys), 0});
      }
      cache.written_back(cache.bytes() * (rng() % 100) / 100);
      size_t found = 0;
      for (auto it = model.begin(); it != model.end();) {
        const KvWriteCache::Entry* e = cache.find({it->first.first, it->first.second, 0});
        if (e == nullptr) {
          it = model.erase(it);  // evicted
          continue;
        }
        ASSERT_EQ(e->value, it->second) << round;
        ASSERT_FALSE(e->dirty);
        ++found;
        ++it;
      }
      ASSERT_EQ(found, cache.size()) << keys << " keys, round " << round;
    }
  }
}

// What a cached entry costs, as bytes() counts it: 32 bytes, its index slot (8 bytes, the index at
// most 3/4 full) and its value's bytes, with less than a chunk of entries to spare. Nexmark q5's
// 600 K window lists (59 bytes each) fit the default 64 MiB cache at parallelism 1 because of it
// (in 64-byte slots with std::string values they took over 100 MB and went through RocksDB).
TEST(KvWriteCacheTest, AnEntryCostsThirtyTwoBytesBesidesItsIndexSlotAndValue) {
  using internal::KvWriteCache;
  KvWriteCache cache(size_t{1} << 30);
  constexpr size_t kEntries = 600'000;
  const std::string value(59, 'v');
  for (KeyId k = 0; k < kEntries; ++k) cache.set({1, k, 0}, true, value, /*dirty=*/true);
  const size_t index = size_t{1} << 20;  // slots: the power of two at least 4/3 of the entries
  EXPECT_LE(cache.bytes(), kEntries * (32 + value.size()) + 1024 * 32 + index * 8);
  EXPECT_LT(cache.bytes(), size_t{64} << 20);
  // Erased entries give their values' bytes back.
  const size_t full = cache.bytes();
  for (KeyId k = 0; k < kEntries; k += 2) cache.set({1, k, 0}, false, {}, /*dirty=*/true);
  EXPECT_EQ(cache.bytes(), full - kEntries / 2 * value.size());
}

TEST(RocksDbBackendTest, StateFourTimesLargerThanCacheAndWriteBuffersRunsToTheEnd) {
  ScratchDir dir("rocksdb_larger_than_memory");
  // 256 KiB block cache + 2 x 128 KiB memtables + 64 KiB write cache = 576 KiB of memory for
  // ~5 MB of state.
  auto backend = RocksDbStateBackend::make(dir.path, {.block_cache_bytes = size_t{256} << 10,
                                                      .write_buffer_bytes = size_t{128} << 10,
                                                      .max_write_buffers = 2,
                                                      .write_cache_bytes = size_t{64} << 10})
                     .value();
  auto b = make(*backend);
  auto* values = b->get_state(ValueStateDescriptor<std::string>{"payload"}).value();
  auto* counts = b->get_state(ValueStateDescriptor<int64_t>{"count"}).value();
  auto* seen = b->get_state(ListStateDescriptor<int32_t>{"seen"}).value();
  constexpr int64_t kKeys = 40'000;
  // Two passes of read-modify-write over every key, the second reading what the first wrote
  // (mostly from SST files, since memory holds a small fraction).
  for (int pass = 0; pass < 2; ++pass) {
    for (int64_t k = 0; k < kKeys; ++k) {
      b->set_current_key(key_of(*b, k));
      if (pass == 1) {
        const std::optional<std::string> v = values->value();
        ASSERT_TRUE(v.has_value()) << k;
        ASSERT_EQ(*v, payload(k, 0));
      }
      values->update(payload(k, pass));
      counts->update(counts->value().value_or(0) + 1);
      seen->add(pass);
    }
  }
  const uint64_t memory = (size_t{256} << 10) + 2 * (size_t{128} << 10) + (size_t{64} << 10);
  const uint64_t sst = as_rocksdb(b.get())->live_sst_bytes();
  EXPECT_GE(kKeys * 100, 4 * memory);
  EXPECT_GE(sst, 2 * memory) << "state should live mostly in SST files";
  for (int64_t k = 0; k < kKeys; k += 7) {
    b->set_current_key(key_of(*b, k));
    ASSERT_EQ(values->value(), payload(k, 1));
    ASSERT_EQ(counts->value(), 2);
    const auto s = seen->get();
    ASSERT_EQ(std::vector<int32_t>(s.begin(), s.end()), (std::vector<int32_t>{0, 1}));
  }
  EXPECT_EQ(b->num_entries("payload"), static_cast<size_t>(kKeys));
}

// The largest memory_usage() figures seen after any thousand keys. RocksDB's block cache is not
// strict: it holds what it may not evict (blocks pinned by reads or background flushes, the
// memtables' charges) even beyond its capacity, so its overshoot is measured apart.
struct MemoryPeaks {
  size_t total = 0;
  size_t total_but_overshoot = 0;  // total less the block cache's usage beyond its capacity
  size_t block_cache_overshoot = 0;
  size_t write_caches = 0;
};

// Three subtasks' instances write ~5 times the budget of state (a value and a counter per key,
// interleaved a thousand keys at a time), then read it all back, checking every value.
MemoryPeaks peak_memory_of_three_instances(const std::string& dir, RocksDbOptions options,
                                           size_t block_cache_capacity) {
  auto backend = RocksDbStateBackend::make(dir, options).value();
  std::vector<std::unique_ptr<KeyedStateBackend>> b;
  std::vector<ValueState<std::string>*> values;
  std::vector<ValueState<int64_t>*> counts;
  for (int i = 0; i < 3; ++i) {
    b.push_back(make(*backend));
    values.push_back(b.back()->get_state(ValueStateDescriptor<std::string>{"payload"}).value());
    counts.push_back(b.back()->get_state(ValueStateDescriptor<int64_t>{"count"}).value());
  }
  constexpr int64_t kKeys = 60'000;  // per instance: 3 x 60 K keys x ~130 bytes = ~23 MB
  MemoryPeaks peak;
  for (int pass = 0; pass < 2; ++pass) {
    for (int64_t from = 0; from < kKeys; from += 1000) {
      for (int i = 0; i < 3; ++i) {
        for (int64_t k = from; k < from + 1000; ++k) {
          b[i]->set_current_key(key_of(*b[i], k));
          if (pass == 0) {
            values[i]->update(payload(k + i, 0));
            counts[i]->update(counts[i]->value().value_or(0) + 1);
          } else {
            EXPECT_EQ(values[i]->value(), payload(k + i, 0)) << i << " " << k;
            EXPECT_EQ(counts[i]->value(), 1) << i << " " << k;
          }
        }
        const RocksDbMemoryUsage u = backend->memory_usage();
        const size_t over =
            u.block_cache > block_cache_capacity ? u.block_cache - block_cache_capacity : 0;
        peak.total = std::max(peak.total, u.total());
        peak.total_but_overshoot = std::max(peak.total_but_overshoot, u.total() - over);
        peak.block_cache_overshoot = std::max(peak.block_cache_overshoot, over);
        peak.write_caches = std::max(peak.write_caches, u.write_caches);
      }
    }
  }
  const RocksDbMemoryUsage end = backend->memory_usage();
  std::printf(
      "peak %zu (%zu without the block cache's overshoot, which peaked at %zu; write caches "
      "%zu); at the end: block cache %zu, memtables %zu (%s), write caches %zu\n",
      peak.total, peak.total_but_overshoot, peak.block_cache_overshoot, peak.write_caches,
      end.block_cache, end.memtables, end.memtables_in_block_cache ? "in the cache" : "apart",
      end.write_caches);
  return peak;
}

// --rocksdb-memory-mb: block cache, memtables and write caches of all instances stay within the
// budget while the state grows to several times it, but for what the block cache holds beyond
// its capacity (RocksDB's, not strict: small, and measured apart). The write caches keep to
// their quarter exactly. The same job without the budget goes well past it, so the bound is the
// budget's doing.
TEST(RocksDbBackendTest, MemoryBudgetBoundsBlockCacheMemtablesAndWriteCachesOfAllInstances) {
  ScratchDir dir("rocksdb_memory_budget");
  constexpr size_t kBudget = size_t{4} << 20;
  const MemoryPeaks bounded = peak_memory_of_three_instances(
      dir.path + "/budget", {.memory_budget_bytes = kBudget}, kBudget - kBudget / 4);
  EXPECT_LE(bounded.total_but_overshoot, kBudget);
  EXPECT_LE(bounded.write_caches, kBudget / 4);
  EXPECT_LE(bounded.block_cache_overshoot, kBudget / 4);
  const MemoryPeaks unbounded =
      peak_memory_of_three_instances(dir.path + "/none", {}, RocksDbOptions{}.block_cache_bytes);
  EXPECT_GT(unbounded.total, 2 * kBudget);
}

TEST(RocksDbBackendTest, MemoryBudgetBelowFourMiBIsRefused) {
  ScratchDir dir("rocksdb_small_budget");
  const auto r = RocksDbStateBackend::make(dir.path, {.memory_budget_bytes = size_t{1} << 20});
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("memory_budget_bytes 1048576 is below 4 MiB"),
            std::string::npos)
      << r.status().message();
}

// The write cache (src/state/kv_write_cache.h) changes when entries reach RocksDB, never what
// the state holds: random reads, writes, clears and list appends (the merge path, which writes a
// cached value through first) on a backend without the cache, one with a cache small enough to
// flush every few dozen writes, and the memory backend, with snapshots, entry counts and key
// scans in between, read the same values and snapshot the same bytes.
TEST(RocksDbBackendTest, WriteCacheChangesNothingButSpeed) {
  ScratchDir dir("rocksdb_write_cache");
  auto uncached = RocksDbStateBackend::make(dir.path + "/off", {.write_cache_bytes = 0}).value();
  auto cached = RocksDbStateBackend::make(dir.path + "/on", {.write_cache_bytes = 4096}).value();
  MemoryStateBackend memory;
  std::vector<std::unique_ptr<KeyedStateBackend>> b;
  b.push_back(make(*uncached));
  b.push_back(make(*cached));
  b.push_back(make(memory));
  std::vector<ValueState<int64_t>*> v;
  std::vector<ListState<std::string>*> l;
  for (auto& x : b) {
    v.push_back(x->get_state(ValueStateDescriptor<int64_t>{"v"}).value());
    l.push_back(x->get_state(ListStateDescriptor<std::string>{"l"}).value());
  }
  std::mt19937_64 rng(7);
  for (int op = 0; op < 20'000; ++op) {
    const int64_t k = static_cast<int64_t>(rng() % 300);
    const Namespace ns = rng() % 4 == 0 ? Namespace{9} : kDefaultNamespace;
    const uint64_t what = rng() % 100;
    std::vector<std::optional<int64_t>> read;
    std::vector<std::vector<std::string>> lists;
    for (size_t i = 0; i < b.size(); ++i) {
      b[i]->set_current_key(key_of(*b[i], k));
      b[i]->set_current_namespace(ns);
      if (what < 40) {
        v[i]->update(v[i]->value().value_or(0) + static_cast<int64_t>(what));
      } else if (what < 50) {
        v[i]->clear();
      } else if (what < 70) {
        l[i]->add(std::to_string(op));
      } else if (what < 75) {
        l[i]->clear();
      } else if (what < 97) {
        read.push_back(v[i]->value());
        const auto got = l[i]->get();
        lists.emplace_back(got.begin(), got.end());
      } else if (what < 99) {
        read.push_back(static_cast<int64_t>(b[i]->num_entries("v")));
        lists.push_back({std::to_string(b[i]->num_entries("l"))});
      } else {
        const auto keys = b[i]->keys_with_state("l", ns).value();
        read.push_back(static_cast<int64_t>(keys.size()));
      }
      b[i]->set_current_namespace(kDefaultNamespace);
    }
    for (size_t i = 1; i < read.size(); ++i) ASSERT_EQ(read[i], read[0]) << "op " << op;
    for (size_t i = 1; i < lists.size(); ++i) ASSERT_EQ(lists[i], lists[0]) << "op " << op;
    if (op % 5000 == 4999) {
      std::string off, on;
      ASSERT_TRUE(b[0]->snapshot(kUid, &off).is_ok());
      ASSERT_TRUE(b[1]->snapshot(kUid, &on).is_ok());
      ASSERT_EQ(on, off) << "op " << op;
    }
  }
  // A restore into a cached backend reads what was restored.
  std::string snap;
  ASSERT_TRUE(b[0]->snapshot(kUid, &snap).is_ok());
  auto restored = make(*cached);
  auto* rv = restored->get_state(ValueStateDescriptor<int64_t>{"v"}).value();
  ASSERT_TRUE(restored->restore(kUid, snap).is_ok());
  for (int64_t k = 0; k < 300; ++k) {
    b[0]->set_current_key(key_of(*b[0], k));
    restored->set_current_key(key_of(*restored, k));
    ASSERT_EQ(rv->value(), v[0]->value()) << "key " << k;
  }
}

// Forgetting keys while every key is new since the cache last wrote back (a job meeting its first
// 64K keys) decides from the cache alone: the right keys are forgotten and kept, values survive
// the renumbering, and nothing is written to RocksDB (its memtable does not grow). Then, once
// some keys' entries are in RocksDB and the cache erased one of them, the pass scans the instance
// and still tells a cleared key from a stored one.
TEST(RocksDbBackendTest, ForgettingNewKeysDecidesFromTheCacheWithoutWritingBack) {
  ScratchDir dir("rocksdb_forget_fresh");
  auto backend = RocksDbStateBackend::make(dir.path, {}).value();
  auto b = make(*backend);
  auto* v = b->get_state(ValueStateDescriptor<int64_t>{"v"}).value();
  auto* l = b->get_state(ListStateDescriptor<int64_t>{"l"}).value();
  const auto resolve = [&](int64_t first, int64_t n) {
    columnar::Int64Builder keys;
    for (int64_t k = first; k < first + n; ++k) keys.append(k);
    const columnar::Array a = keys.finish();
    std::vector<KeyId> ids;
    EXPECT_TRUE(b->resolve_keys(std::span(&a, 1), &ids).is_ok());
    return ids;
  };
  constexpr int64_t kKeys = 4000;
  const std::vector<KeyId> ids = resolve(0, kKeys);
  for (int64_t k = 0; k < kKeys; ++k) {
    b->set_current_key(ids[static_cast<size_t>(k)]);
    switch (k % 4) {
      case 0:
        v->update(k);
        break;
      case 1:  // written, then cleared: no state
        v->update(k);
        v->clear();
        break;
      case 2:
        l->add(k);
        break;
      default:  // only read: no state
        EXPECT_EQ(v->value(), std::nullopt);
        break;
    }
  }
  const size_t memtables = backend->memory_usage().memtables;
  std::vector<KeyId> remap;
  ASSERT_TRUE(b->forget_keys({}, &remap).is_ok());
  EXPECT_EQ(backend->memory_usage().memtables, memtables);  // nothing was written back
  EXPECT_EQ(b->keys().num_keys(), static_cast<uint32_t>(kKeys / 2));
  for (int64_t k = 0; k < kKeys; ++k) {
    const KeyId id = remap[ids[static_cast<size_t>(k)]];
    ASSERT_EQ(id != kNoKey, k % 4 == 0 || k % 4 == 2) << k;
    if (id == kNoKey) continue;
    b->set_current_key(id);
    EXPECT_EQ(v->value(), k % 4 == 0 ? std::optional<int64_t>(k) : std::nullopt) << k;
    EXPECT_EQ(l->get().size(), k % 4 == 2 ? 1u : 0u) << k;
  }

  // The kept keys' entries reach RocksDB (a snapshot writes the cache back); clearing one then
  // leaves an erased cached entry over a stored one, and a new key without state joins them.
  std::string snap;
  ASSERT_TRUE(b->snapshot(kUid, &snap).is_ok());
  b->set_current_key(key_of(*b, 0));
  v->clear();
  const KeyId extra = resolve(kKeys, 1)[0];
  b->set_current_key(extra);
  EXPECT_EQ(v->value(), std::nullopt);
  ASSERT_TRUE(b->forget_keys({}, &remap).is_ok());
  EXPECT_EQ(b->keys().num_keys(), static_cast<uint32_t>(kKeys / 2 - 1));
  EXPECT_EQ(b->num_entries("v"), static_cast<size_t>(kKeys / 4 - 1));
  EXPECT_EQ(b->num_entries("l"), static_cast<size_t>(kKeys / 4));
}

TEST(RocksDbBackendTest, MemorySnapshotRestoresIntoRocksDbAndBack) {
  ScratchDir dir("rocksdb_memory_roundtrip");
  auto rocks = RocksDbStateBackend::make(dir.path).value();
  MemoryStateBackend memory;
  auto m = make(memory);
  auto* mv = m->get_state(ValueStateDescriptor<int64_t>{"v"}).value();
  auto* ml = m->get_state(ListStateDescriptor<std::string>{"l"}).value();
  auto* mm = m->get_state(MapStateDescriptor<int32_t, double>{"m"}).value();
  for (int64_t k = 0; k < 500; ++k) {
    m->set_current_key(key_of(*m, k));
    mv->update(k * 3);
    ml->add("x" + std::to_string(k));
    ml->add("y");
    mm->put(static_cast<int32_t>(k % 5), 0.5 * static_cast<double>(k));
    m->set_current_namespace(7);
    mv->update(-k);
    m->set_current_namespace(kDefaultNamespace);
  }
  std::string snap_memory;
  ASSERT_TRUE(m->snapshot(kUid, &snap_memory).is_ok());

  auto r = make(*rocks);
  ASSERT_TRUE(r->restore(kUid, snap_memory).is_ok());
  auto* rv = r->get_state(ValueStateDescriptor<int64_t>{"v"}).value();
  auto* rl = r->get_state(ListStateDescriptor<std::string>{"l"}).value();
  auto* rm = r->get_state(MapStateDescriptor<int32_t, double>{"m"}).value();
  r->set_current_key(key_of(*r, 42));
  EXPECT_EQ(rv->value(), 126);
  const auto l = rl->get();
  EXPECT_EQ(std::vector<std::string>(l.begin(), l.end()), (std::vector<std::string>{"x42", "y"}));
  EXPECT_EQ(rm->get(2), 21.0);
  r->set_current_namespace(7);
  EXPECT_EQ(rv->value(), -42);
  r->set_current_namespace(kDefaultNamespace);

  std::string snap_rocks;
  ASSERT_TRUE(r->snapshot(kUid, &snap_rocks).is_ok());
  auto back = make(memory);
  ASSERT_TRUE(back->restore(kUid, snap_rocks).is_ok());
  (void)back->get_state(ValueStateDescriptor<int64_t>{"v"}).value();
  (void)back->get_state(ListStateDescriptor<std::string>{"l"}).value();
  (void)back->get_state(MapStateDescriptor<int32_t, double>{"m"}).value();
  // Same keys, states and entries: restoring the RocksDB snapshot into memory gives a memory
  // backend whose snapshot has the size of the original (entry order within a state differs).
  std::string snap_back;
  ASSERT_TRUE(back->snapshot(kUid, &snap_back).is_ok());
  EXPECT_EQ(snap_back.size(), snap_memory.size());
  EXPECT_EQ(back->num_entries("v"), m->num_entries("v"));
  EXPECT_EQ(back->num_entries("l"), m->num_entries("l"));
  EXPECT_EQ(back->num_entries("m"), m->num_entries("m"));
}

// Writes version `version` of keys [first, last) with step `step`.
void write_keys(KeyedStateBackend& b, ValueState<std::string>* v, int64_t first, int64_t last,
                int64_t step, int version) {
  for (int64_t k = first; k < last; k += step) {
    b.set_current_key(key_of(b, k));
    v->update(payload(k, version));
  }
}

TEST(RocksDbCheckpointTest, IncrementalCheckpointCopiesOnlyNewFilesAndRestoresAtAnyParallelism) {
  ScratchDir dir("rocksdb_incremental");
  const std::string store_root = dir.path + "/checkpoints";
  auto rocks = RocksDbStateBackend::make(dir.path + "/work").value();
  RocksDbCheckpointStore store(store_root);
  constexpr int64_t kKeys = 40'000;  // ~4 MB of values: one SST file per flush

  auto b = make(*rocks);
  auto* v = b->get_state(ValueStateDescriptor<std::string>{"payload"}).value();
  write_keys(*b, v, 0, kKeys, 1, 0);
  auto* rdb = as_rocksdb(b.get());
  ASSERT_NE(rdb, nullptr);

  auto up = [&](int64_t id, bool incremental) {
    auto local = rdb->checkpoint_local();
    SABOT_CHECK_OK(local);
    auto stats = (*local)->upload(store, CheckpointId(id), "counts-0", incremental);
    SABOT_CHECK_OK(stats);
    return *stats;
  };
  const RocksDbCheckpointStore::Stats first = up(1, true);
  EXPECT_GE(first.sst_files, 1u);
  EXPECT_EQ(first.sst_files_copied, first.sst_files);
  EXPECT_EQ(first.bytes_copied, first.bytes_total);

  // Change 1 % of the keys.
  write_keys(*b, v, 0, kKeys, 100, 1);
  const RocksDbCheckpointStore::Stats second = up(2, true);
  EXPECT_EQ(second.sst_files, first.sst_files + 1) << "one new SST file for the changes";
  EXPECT_EQ(second.sst_files_copied, 1u) << "the first checkpoint's files are shared";
  EXPECT_LT(second.bytes_copied * 20, second.bytes_total)
      << "copied " << second.bytes_copied << " of " << second.bytes_total;

  // A full checkpoint copies everything again.
  const RocksDbCheckpointStore::Stats full = up(3, false);
  EXPECT_EQ(full.sst_files_copied, full.sst_files);
  EXPECT_EQ(full.bytes_copied, full.bytes_total);
  EXPECT_EQ(store.checkpoints().value(),
            (std::vector<CheckpointId>{CheckpointId(1), CheckpointId(2), CheckpointId(3)}));

  // Discarding checkpoint 1 keeps the files checkpoint 2 shares with it.
  const uint64_t shared_before = store.shared_bytes().value();
  ASSERT_TRUE(store.discard(CheckpointId(1)).is_ok());
  EXPECT_EQ(store.shared_bytes().value(), shared_before);

  // Restore checkpoint 2 at parallelism 1 and at parallelism 2.
  {
    auto r = make(*rocks);
    ASSERT_TRUE(
        as_rocksdb(r.get())->restore_checkpoint(store, CheckpointId(2), "counts-0").is_ok());
    EXPECT_EQ(r->keys().num_keys(), static_cast<uint32_t>(kKeys));
    auto* rv = r->get_state(ValueStateDescriptor<std::string>{"payload"}).value();
    for (int64_t k = 0; k < kKeys; k += 13) {
      r->set_current_key(key_of(*r, k));
      ASSERT_EQ(rv->value(), payload(k, k % 100 == 0 ? 1 : 0)) << k;
    }
  }
  uint32_t total_keys = 0;
  for (int sub = 0; sub < 2; ++sub) {
    auto r = make(*rocks, key_groups_for_subtask(sub, 2, 128));
    ASSERT_TRUE(
        as_rocksdb(r.get())->restore_checkpoint(store, CheckpointId(2), "counts-0").is_ok());
    auto* rv = r->get_state(ValueStateDescriptor<std::string>{"payload"}).value();
    total_keys += r->keys().num_keys();
    EXPECT_GT(r->keys().num_keys(), 0u);
    EXPECT_EQ(r->num_entries("payload"), r->keys().num_keys());
    for (KeyId id = 0; id < r->keys().num_keys(); id += 11) {
      const int64_t k = r->keys().key_values(id)[0].as_int64();
      r->set_current_key(id);
      ASSERT_EQ(rv->value(), payload(k, k % 100 == 0 ? 1 : 0)) << k;
    }
  }
  EXPECT_EQ(total_keys, static_cast<uint32_t>(kKeys));

  // Once no retained checkpoint lists them, shared files are deleted.
  ASSERT_TRUE(store.discard(CheckpointId(2)).is_ok());
  EXPECT_EQ(store.shared_bytes().value(), 0u);
  ASSERT_TRUE(store.discard(CheckpointId(3)).is_ok());
  EXPECT_TRUE(store.checkpoints().value().empty());
}

}  // namespace
}  // namespace sabot::state
