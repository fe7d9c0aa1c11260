// Keyed state micro-benchmarks: per-row state access after resolving a batch's keys at once.

#include <unistd.h>

#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include <chrono>

#include "sabot/columnar/builder.h"
#include "sabot/state/keyed_state_backend.h"
#include "sabot/state/rocksdb_backend.h"

namespace sabot::state {
namespace {

constexpr int kBatchRows = 4096;
constexpr int kBatches = 32;

std::vector<columnar::Array> make_key_batches(int64_t distinct, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<columnar::Array> out;
  for (int b = 0; b < kBatches; ++b) {
    columnar::Int64Builder builder;
    for (int i = 0; i < kBatchRows; ++i) {
      builder.append(static_cast<int64_t>(rng() % static_cast<uint64_t>(distinct)) * 7919);
    }
    out.push_back(builder.finish());
  }
  return out;
}

std::unique_ptr<KeyedStateBackend> make_backend() {
  KeyedBackendOptions o;
  o.key_types = {columnar::int64()};
  return std::move(MemoryStateBackend().create_keyed_backend(o)).value();
}

// Registers every key once so that the timed loop measures steady state.
void warm_keys(KeyedStateBackend& b, const std::vector<columnar::Array>& batches) {
  std::vector<KeyId> ids;
  for (const auto& a : batches) SABOT_CHECK_OK(b.resolve_keys(std::span(&a, 1), &ids));
}

// ValueState<int64_t> read-modify-write over 100K distinct keys, keys resolved per batch.
void BM_ValueStateReadModifyWrite(benchmark::State& state) {
  const auto batches = make_key_batches(state.range(0), 1);
  auto b = make_backend();
  auto* v = *b->get_state(ValueStateDescriptor<int64_t>{.name = "count"});
  warm_keys(*b, batches);
  std::vector<KeyId> ids;
  for (auto _ : state) {
    for (const auto& a : batches) {
      SABOT_CHECK_OK(b->resolve_keys(std::span(&a, 1), &ids));
      for (KeyId id : ids) {
        b->set_current_key(id);
        const int64_t* cur = v->get();
        v->update((cur ? *cur : 0) + 1);
      }
    }
  }
  state.SetItemsProcessed(state.iterations() * kBatches * kBatchRows);
}
BENCHMARK(BM_ValueStateReadModifyWrite)->Arg(100'000)->Arg(1'000);

// The RocksDB backend (default options, a scratch directory under /tmp): the same
// read-modify-write, each one a RocksDB Get and Put (WAL off).
// Arguments: distinct keys, write cache MiB (0: every access is a RocksDB Get and Put). With more
// keys than the cache holds, it flushes (a WriteBatch of every dirty entry) again and again.
void BM_RocksDbValueStateReadModifyWrite(benchmark::State& state) {
  const auto batches = make_key_batches(state.range(0), 1);
  const std::string dir = "/tmp/keyed_state_benchmark_rocksdb_" + std::to_string(::getpid());
  auto rocks = RocksDbStateBackend::make(
                   dir, {.write_cache_bytes = static_cast<size_t>(state.range(1)) << 20})
                   .value();
  KeyedBackendOptions o;
  o.key_types = {columnar::int64()};
  auto b = rocks->create_keyed_backend(o).value();
  auto* v = *b->get_state(ValueStateDescriptor<int64_t>{.name = "count"});
  warm_keys(*b, batches);
  std::vector<KeyId> ids;
  for (auto _ : state) {
    for (const auto& a : batches) {
      SABOT_CHECK_OK(b->resolve_keys(std::span(&a, 1), &ids));
      for (KeyId id : ids) {
        b->set_current_key(id);
        v->update(v->value().value_or(0) + 1);
      }
    }
  }
  state.SetItemsProcessed(state.iterations() * kBatches * kBatchRows);
  b.reset();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_RocksDbValueStateReadModifyWrite)
    ->Args({100'000, 32})
    ->Args({1'000, 32})
    ->Args({100'000, 0})
    ->Args({1'000, 0})
    ->Args({1'000'000, 4});

// ListState::add on RocksDB: a merge operand per add, no read.
void BM_RocksDbListStateAdd(benchmark::State& state) {
  const auto batches = make_key_batches(100'000, 3);
  const std::string dir = "/tmp/keyed_state_benchmark_rocksdb_list_" + std::to_string(::getpid());
  auto rocks = RocksDbStateBackend::make(dir).value();
  KeyedBackendOptions o;
  o.key_types = {columnar::int64()};
  auto b = rocks->create_keyed_backend(o).value();
  auto* l = *b->get_state(ListStateDescriptor<int64_t>{.name = "events"});
  warm_keys(*b, batches);
  std::vector<KeyId> ids;
  for (auto _ : state) {
    for (const auto& a : batches) {
      SABOT_CHECK_OK(b->resolve_keys(std::span(&a, 1), &ids));
      for (KeyId id : ids) {
        b->set_current_key(id);
        l->add(static_cast<int64_t>(id));
      }
    }
  }
  state.SetItemsProcessed(state.iterations() * kBatches * kBatchRows);
  b.reset();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_RocksDbListStateAdd);

// The same with TTL on (a clock read per access).
void BM_ValueStateReadModifyWriteTtl(benchmark::State& state) {
  const auto batches = make_key_batches(100'000, 1);
  auto b = make_backend();
  auto* v = *b->get_state(
      ValueStateDescriptor<int64_t>{.name = "count", .options = {.ttl = std::chrono::hours(1)}});
  warm_keys(*b, batches);
  std::vector<KeyId> ids;
  for (auto _ : state) {
    for (const auto& a : batches) {
      SABOT_CHECK_OK(b->resolve_keys(std::span(&a, 1), &ids));
      for (KeyId id : ids) {
        b->set_current_key(id);
        v->update(v->value().value_or(0) + 1);
      }
    }
  }
  state.SetItemsProcessed(state.iterations() * kBatches * kBatchRows);
}
BENCHMARK(BM_ValueStateReadModifyWriteTtl);

// Only the batch key resolution (hash table pass), for comparison.
void BM_ResolveKeys(benchmark::State& state) {
  const auto batches = make_key_batches(100'000, 1);
  auto b = make_backend();
  warm_keys(*b, batches);
  std::vector<KeyId> ids;
  for (auto _ : state) {
    for (const auto& a : batches) SABOT_CHECK_OK(b->resolve_keys(std::span(&a, 1), &ids));
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetItemsProcessed(state.iterations() * kBatches * kBatchRows);
}
BENCHMARK(BM_ResolveKeys);

// ListState<int64_t>::add over 10K keys; a fresh backend per iteration (not timed) bounds growth.
void BM_ListStateAdd(benchmark::State& state) {
  const auto batches = make_key_batches(10'000, 2);
  std::vector<KeyId> ids;
  for (auto _ : state) {
    state.PauseTiming();
    auto b = make_backend();
    auto* l = *b->get_state(ListStateDescriptor<int64_t>{.name = "events"});
    state.ResumeTiming();
    int64_t x = 0;
    for (const auto& a : batches) {
      SABOT_CHECK_OK(b->resolve_keys(std::span(&a, 1), &ids));
      for (KeyId id : ids) {
        b->set_current_key(id);
        l->add(++x);
      }
    }
    state.PauseTiming();
    b.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * kBatches * kBatchRows);
}
BENCHMARK(BM_ListStateAdd);

// MapState<int64_t, int64_t>: a get and a put per row, 10K keys x 16 map keys.
void BM_MapStatePutGet(benchmark::State& state) {
  const auto batches = make_key_batches(10'000, 3);
  auto b = make_backend();
  auto* m = *b->get_state(MapStateDescriptor<int64_t, int64_t>{.name = "m"});
  warm_keys(*b, batches);
  std::vector<KeyId> ids;
  int64_t x = 0;
  for (auto _ : state) {
    for (const auto& a : batches) {
      SABOT_CHECK_OK(b->resolve_keys(std::span(&a, 1), &ids));
      for (KeyId id : ids) {
        b->set_current_key(id);
        const int64_t mk = ++x & 15;
        m->put(mk, m->get(mk).value_or(0) + 1);
      }
    }
  }
  state.SetItemsProcessed(state.iterations() * kBatches * kBatchRows);
}
BENCHMARK(BM_MapStatePutGet);

// A backend with `keys` keys, each holding value_of(its KeyId) in value state `name`.
template <typename T, typename F>
std::unique_ptr<KeyedStateBackend> backend_with_values(int64_t keys, const std::string& name,
                                                       F value_of) {
  auto b = make_backend();
  auto* v = *b->get_state(ValueStateDescriptor<T>{.name = name});
  std::vector<KeyId> ids;
  columnar::Int64Builder builder;
  for (int64_t k = 0; k < keys; ++k) builder.append(k);
  const columnar::Array a = builder.finish();
  SABOT_CHECK_OK(b->resolve_keys(std::span(&a, 1), &ids));
  for (KeyId id : ids) {
    b->set_current_key(id);
    v->update(value_of(id));
  }
  return b;
}

// A backend with `keys` keys holding one int64 value each.
std::unique_ptr<KeyedStateBackend> backend_with_keys(int64_t keys) {
  return backend_with_values<int64_t>(keys, "count",
                                      [](KeyId id) { return static_cast<int64_t>(id); });
}

// Snapshot of N keys with one int64 value each (100K and 1M): bytes/s is the snapshot's size per
// second, the time per iteration the time of one snapshot.
void BM_Snapshot(benchmark::State& state) {
  auto b = backend_with_keys(state.range(0));
  std::string out;
  for (auto _ : state) {
    out.clear();
    SABOT_CHECK_OK(b->snapshot("bench", &out));
  }
  state.SetItemsProcessed(state.iterations() * b->keys().num_keys());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(out.size()));
}
BENCHMARK(BM_Snapshot)->Arg(100'000)->Arg(1'000'000)->Unit(benchmark::kMillisecond);

// Restore of the same snapshots into a fresh backend.
void BM_Restore(benchmark::State& state) {
  std::string snap;
  SABOT_CHECK_OK(backend_with_keys(state.range(0))->snapshot("bench", &snap));
  for (auto _ : state) {
    state.PauseTiming();
    auto b = make_backend();
    state.ResumeTiming();
    SABOT_CHECK_OK(b->restore("bench", snap));
    auto* v = *b->get_state(ValueStateDescriptor<int64_t>{.name = "count"});
    benchmark::DoNotOptimize(v);
    state.PauseTiming();
    b.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(snap.size()));
}
BENCHMARK(BM_Restore)->Arg(100'000)->Arg(1'000'000)->Unit(benchmark::kMillisecond);

// Restore of about 1 GB of state: range(0) keys with a string value of range(1) bytes each (the
// issue's "time to restore 1 GB"). Also reports the snapshot time of the same state once.
void BM_RestoreGigabyte(benchmark::State& state) {
  const int64_t keys = state.range(0);
  const auto value_bytes = static_cast<size_t>(state.range(1));
  std::string snap;
  {
    auto b = backend_with_values<std::string>(keys, "blob", [&](KeyId id) {
      return std::string(value_bytes, static_cast<char>('a' + id % 26));
    });
    const auto t0 = std::chrono::steady_clock::now();
    SABOT_CHECK_OK(b->snapshot("bench", &snap));
    state.counters["snapshot_s"] =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  for (auto _ : state) {
    state.PauseTiming();
    auto b = make_backend();
    state.ResumeTiming();
    SABOT_CHECK_OK(b->restore("bench", snap));
    auto* v = *b->get_state(ValueStateDescriptor<std::string>{.name = "blob"});
    benchmark::DoNotOptimize(v);
    state.PauseTiming();
    b.reset();
    state.ResumeTiming();
  }
  state.counters["snapshot_MB"] = static_cast<double>(snap.size()) / 1e6;
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(snap.size()));
}
BENCHMARK(BM_RestoreGigabyte)
    ->Args({1'000'000, 1000})
    ->Iterations(3)
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace sabot::state

BENCHMARK_MAIN();
