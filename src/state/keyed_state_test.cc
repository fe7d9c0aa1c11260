#include <unistd.h>
#include <algorithm>

#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "sabot/columnar/builder.h"
#include "sabot/compute/hash.h"
#include "sabot/state/backend_testing.h"
#include "sabot/state/keyed_state_backend.h"
#include "sabot/state/rocksdb_backend.h"
#include "sabot/state/value_bytes.h"

namespace sabot::state {
namespace {

using columnar::Array;
using columnar::DataType;
using columnar::Scalar;
using std::chrono::milliseconds;

// The operator uid the snapshots of these tests are addressed by.
constexpr std::string_view kUid = "keyed-test";

Array int64_array(const std::vector<int64_t>& v) {
  columnar::Int64Builder b;
  for (int64_t x : v) b.append(x);
  return b.finish();
}

// Every test of a suite below runs against both backends (the conformance of the RocksDB backend
// to the memory backend's behaviour); make_backend() makes the kind of the running test.
using testing::backend_kind_name;
using testing::BackendKind;
BackendKind g_backend_kind = BackendKind::kMemory;

const StateBackend& current_backend() { return testing::backend_of(g_backend_kind); }

class BackendTest : public ::testing::TestWithParam<BackendKind> {
 protected:
  void SetUp() override { g_backend_kind = GetParam(); }
  void TearDown() override { g_backend_kind = BackendKind::kMemory; }
};

#define SABOT_BACKEND_SUITE(Suite)                                                         \
  class Suite : public BackendTest {};                                                     \
  INSTANTIATE_TEST_SUITE_P(Backends, Suite,                                                \
                           ::testing::Values(BackendKind::kMemory, BackendKind::kRocksDb), \
                           backend_kind_name)

SABOT_BACKEND_SUITE(TtlTest);
SABOT_BACKEND_SUITE(NamespaceTest);
SABOT_BACKEND_SUITE(RegistrationTest);
SABOT_BACKEND_SUITE(SnapshotTest);
SABOT_BACKEND_SUITE(ForgetKeysTest);
SABOT_BACKEND_SUITE(KeyedStateTest);
SABOT_BACKEND_SUITE(PrefetchTest);

std::unique_ptr<KeyedStateBackend> make_backend(const Clock* clock,
                                                std::vector<KeyGroup> groups = {},
                                                std::vector<DataType> types = {columnar::int64()},
                                                uint32_t maxp = 128) {
  KeyedBackendOptions o;
  o.key_types = std::move(types);
  o.key_groups = std::move(groups);
  o.max_parallelism = maxp;
  o.clock = clock;
  auto r = current_backend().create_keyed_backend(o);
  SABOT_CHECK_OK(r);
  return std::move(r).value();
}

KeyId key_of(KeyedStateBackend& b, int64_t k) {
  auto r = b.keys().resolve_values(std::vector<Scalar>{Scalar::of_int64(k)});
  SABOT_CHECK_OK(r);
  return *r;
}

KeyGroup group_of_int64(int64_t k, uint32_t maxp = 128) {
  return KeyGroup(static_cast<int32_t>(compute::key_group_of(compute::hash_int64(k), maxp)));
}

struct SumFn {
  int64_t operator()(const int64_t& a, const int64_t& b) const { return a + b; }
};

// Average: accumulator (sum, count).
struct AvgFn {
  std::pair<int64_t, int64_t> create() const { return {0, 0}; }
  void add(std::pair<int64_t, int64_t>& acc, const int64_t& v) const {
    acc.first += v;
    acc.second += 1;
  }
  void merge(std::pair<int64_t, int64_t>& acc, const std::pair<int64_t, int64_t>& o) const {
    acc.first += o.first;
    acc.second += o.second;
  }
  double result(const std::pair<int64_t, int64_t>& acc) const {
    return static_cast<double>(acc.first) / static_cast<double>(acc.second);
  }
};
using AvgDescriptor =
    AggregatingStateDescriptor<int64_t, std::pair<int64_t, int64_t>, double, AvgFn>;

// ---------------------------------------------------------------------------------------------
// The five state kinds used together, with a std::map model of what each should hold.

struct Handles {
  ValueState<int64_t>* value;
  ListState<std::string>* list;
  MapState<int64_t, std::string>* map;
  ReducingState<int64_t>* reducing;
  AggregatingState<int64_t, std::pair<int64_t, int64_t>, double>* agg;
};

Handles get_handles(KeyedStateBackend& b, milliseconds ttl) {
  StateOptions o{.ttl = ttl};
  Handles h{};
  h.value = *b.get_state(ValueStateDescriptor<int64_t>{.name = "value", .options = o});
  h.list = *b.get_state(ListStateDescriptor<std::string>{.name = "list", .options = o});
  h.map = *b.get_state(MapStateDescriptor<int64_t, std::string>{.name = "map", .options = o});
  h.reducing = *b.get_state(reducing_descriptor<int64_t>("reducing", SumFn{}, o));
  h.agg = *b.get_state(AvgDescriptor{.name = "agg", .options = o});
  return h;
}

// Model: per (key, ns) entry its contents and last write time.
struct Model {
  int64_t ttl = 0;
  template <typename V>
  struct Timed {
    V v;
    int64_t t;
  };
  using K = std::pair<int64_t, Namespace>;
  std::map<K, Timed<int64_t>> value;
  std::map<K, Timed<std::vector<std::string>>> list;
  std::map<K, std::map<int64_t, Timed<std::string>>> map;
  std::map<K, Timed<int64_t>> reducing;
  std::map<K, Timed<std::pair<int64_t, int64_t>>> agg;

  bool alive(int64_t t, int64_t now) const { return ttl == 0 || now - t < ttl; }
  template <typename M>
  auto* live(M& m, const K& k, int64_t now) {
    auto it = m.find(k);
    if (it == m.end()) return static_cast<decltype(&it->second)>(nullptr);
    if (!alive(it->second.t, now)) {
      m.erase(it);
      return static_cast<decltype(&it->second)>(nullptr);
    }
    return &it->second;
  }
  std::map<int64_t, std::string> live_map(const K& k, int64_t now) {
    std::map<int64_t, std::string> out;
    auto it = map.find(k);
    if (it == map.end()) return out;
    for (auto& [mk, e] : it->second) {
      if (alive(e.t, now)) out[mk] = e.v;
    }
    return out;
  }
};

// Applies one random operation to both the backend (current key/ns already set) and the model.
void random_op(std::mt19937_64& rng, Handles& h, Model& m, const Model::K& k, int64_t now) {
  const int64_t x = static_cast<int64_t>(rng() % 1000) - 500;
  switch (rng() % 16) {
    case 0: {  // value read-modify-write
      auto v = h.value->value();
      auto* mv = m.live(m.value, k, now);
      ASSERT_EQ(v.has_value(), mv != nullptr);
      if (v) {
        ASSERT_EQ(*v, mv->v);
      }
      h.value->update(v.value_or(0) + x);
      m.value[k] = {v.value_or(0) + x, now};
      break;
    }
    case 1:
      h.value->clear();
      m.value.erase(k);
      break;
    case 2: {
      h.list->add(std::to_string(x));
      auto* ml = m.live(m.list, k, now);
      if (ml == nullptr) {
        m.list[k] = {{std::to_string(x)}, now};
      } else {
        ml->v.push_back(std::to_string(x));
        ml->t = now;
      }
      break;
    }
    case 3: {
      std::vector<std::string> vs = {"a" + std::to_string(x), "b"};
      if (rng() % 2) {
        h.list->update(vs);
        m.list[k] = {vs, now};
      } else {
        h.list->add_all(vs);
        auto* ml = m.live(m.list, k, now);
        if (ml == nullptr) {
          m.list[k] = {vs, now};
        } else {
          ml->v.insert(ml->v.end(), vs.begin(), vs.end());
          ml->t = now;
        }
      }
      break;
    }
    case 4:
      h.list->clear();
      m.list.erase(k);
      break;
    case 5: {
      const int64_t mk = x % 7;
      h.map->put(mk, std::to_string(x));
      m.map[k][mk] = {std::to_string(x), now};
      break;
    }
    case 6: {
      const int64_t mk = x % 7;
      auto got = h.map->get(mk);
      auto live = m.live_map(k, now);
      auto it = live.find(mk);
      ASSERT_EQ(got.has_value(), it != live.end());
      if (got) {
        ASSERT_EQ(*got, it->second);
      }
      ASSERT_EQ(h.map->contains(mk), it != live.end());
      break;
    }
    case 7: {
      const int64_t mk = x % 7;
      h.map->remove(mk);
      auto it = m.map.find(k);
      if (it != m.map.end()) {
        it->second.erase(mk);
        if (it->second.empty()) m.map.erase(it);
      }
      break;
    }
    case 8:
    case 9: {
      h.reducing->add(x);
      auto* mr = m.live(m.reducing, k, now);
      if (mr == nullptr) {
        m.reducing[k] = {x, now};
      } else {
        mr->v += x;
        mr->t = now;
      }
      break;
    }
    case 10:
    case 11: {
      h.agg->add(x);
      auto* ma = m.live(m.agg, k, now);
      if (ma == nullptr) {
        m.agg[k] = {{x, 1}, now};
      } else {
        ma->v.first += x;
        ma->v.second += 1;
        ma->t = now;
      }
      break;
    }
    case 12:
      h.reducing->clear();
      m.reducing.erase(k);
      break;
    case 13:
      h.map->clear();
      m.map.erase(k);
      break;
    default:
      break;  // reads only (checked below)
  }
}

// Checks that every kind reads as the model says for the backend's current key/ns.
void expect_reads(Handles& h, Model& m, const Model::K& k, int64_t now) {
  {
    auto v = h.value->value();
    auto* mv = m.live(m.value, k, now);
    ASSERT_EQ(v.has_value(), mv != nullptr) << "value of key " << k.first << " ns " << k.second;
    if (v) {
      ASSERT_EQ(*v, mv->v);
    }
  }
  {
    auto l = h.list->get();
    auto* ml = m.live(m.list, k, now);
    std::vector<std::string> got(l.begin(), l.end());
    ASSERT_EQ(got, ml ? ml->v : std::vector<std::string>{}) << "list of key " << k.first;
  }
  {
    std::map<int64_t, std::string> got;
    for (auto& [mk, mv] : h.map->entries()) got[mk] = mv;
    ASSERT_EQ(got, m.live_map(k, now)) << "map of key " << k.first;
    ASSERT_EQ(h.map->size(), got.size());
  }
  {
    auto r = h.reducing->get();
    auto* mr = m.live(m.reducing, k, now);
    ASSERT_EQ(r.has_value(), mr != nullptr);
    if (r) {
      ASSERT_EQ(*r, mr->v);
    }
  }
  {
    auto a = h.agg->get();
    auto* ma = m.live(m.agg, k, now);
    ASSERT_EQ(a.has_value(), ma != nullptr);
    if (a) {
      ASSERT_DOUBLE_EQ(*a, static_cast<double>(ma->v.first) / static_cast<double>(ma->v.second));
    }
  }
}

constexpr Namespace kNamespaces[] = {0, 1, 2, 1000000007};

// Drives random batches of keys through backend and model; returns the keys used.
std::set<int64_t> drive(std::mt19937_64& rng, KeyedStateBackend& b, Handles& h, Model& m,
                        ManualClock& clock, int batches, int key_domain) {
  std::set<int64_t> used;
  std::vector<KeyId> ids;
  for (int batch = 0; batch < batches; ++batch) {
    const int rows = static_cast<int>(rng() % 300);
    std::vector<int64_t> keys(static_cast<size_t>(rows));
    for (auto& k : keys) k = static_cast<int64_t>(rng() % static_cast<uint64_t>(key_domain)) - 50;
    // Slice off a random prefix so the key column has a non-zero offset.
    const int pad = static_cast<int>(rng() % 4);
    std::vector<int64_t> padded(static_cast<size_t>(pad), 0);
    padded.insert(padded.end(), keys.begin(), keys.end());
    Array col = int64_array(padded).slice(pad, rows);
    std::vector<Array> cols = {col};
    EXPECT_TRUE(b.resolve_keys(cols, &ids).is_ok());
    for (int i = 0; i < rows; ++i) {
      clock.advance_millis(static_cast<int64_t>(rng() % 3));
      b.refresh_time();
      const Namespace ns = kNamespaces[rng() % 4];
      b.set_current_key(ids[static_cast<size_t>(i)]);
      b.set_current_namespace(ns);
      EXPECT_EQ(b.current_key_values()[0], Scalar::of_int64(keys[static_cast<size_t>(i)]));
      const Model::K k{keys[static_cast<size_t>(i)], ns};
      random_op(rng, h, m, k, clock.now().millis());
      if (::testing::Test::HasFatalFailure()) return used;
      if (rng() % 8 == 0) expect_reads(h, m, k, clock.now().millis());
      if (::testing::Test::HasFatalFailure()) return used;
      used.insert(k.first);
    }
    if (rng() % 5 == 0) b.purge_expired();
  }
  b.set_current_namespace(kDefaultNamespace);
  return used;
}

void expect_all_reads(KeyedStateBackend& b, Handles& h, Model& m, const std::set<int64_t>& keys,
                      int64_t now) {
  for (int64_t key : keys) {
    b.set_current_key(key_of(b, key));
    for (Namespace ns : kNamespaces) {
      b.set_current_namespace(ns);
      expect_reads(h, m, {key, ns}, now);
      if (::testing::Test::HasFatalFailure()) return;
    }
  }
  b.set_current_namespace(kDefaultNamespace);
}

class AllKindsTest
    : public ::testing::TestWithParam<std::tuple<BackendKind, int64_t /* ttl ms */>> {
 protected:
  void SetUp() override { g_backend_kind = std::get<0>(GetParam()); }
  void TearDown() override { g_backend_kind = BackendKind::kMemory; }
  int64_t ttl() const { return std::get<1>(GetParam()); }
};

TEST_P(AllKindsTest, MatchesMapModelOnRandomOperations) {
  for (uint64_t seed = 1; seed <= 6; ++seed) {
    std::mt19937_64 rng(seed * 7919 + static_cast<uint64_t>(ttl()));
    ManualClock clock(Timestamp(1'000'000));
    auto b = make_backend(&clock);
    Handles h = get_handles(*b, milliseconds(ttl()));
    Model m;
    m.ttl = ttl();
    auto used = drive(rng, *b, h, m, clock, 30, 40 + static_cast<int>(seed) * 50);
    ASSERT_FALSE(HasFatalFailure());
    expect_all_reads(*b, h, m, used, clock.now().millis());
    ASSERT_FALSE(HasFatalFailure());
    // keys_with_state lists exactly the model's live keys per namespace.
    for (Namespace ns : kNamespaces) {
      std::set<int64_t> want;
      for (auto& [k, e] : m.value) {
        if (k.second == ns && m.alive(e.t, clock.now().millis())) want.insert(k.first);
      }
      std::set<int64_t> got;
      auto with_state = b->keys_with_state("value", ns);
      ASSERT_TRUE(with_state.is_ok());
      for (KeyId id : *with_state) {
        got.insert(b->keys().key_values(id)[0].as_int64());
      }
      EXPECT_EQ(got, want) << "namespace " << ns;
    }
    // Time passes; a cleanup pass leaves the same visible contents.
    clock.advance_millis(ttl() / 2 + 1);
    b->purge_expired();
    expect_all_reads(*b, h, m, used, clock.now().millis());
  }
}

INSTANTIATE_TEST_SUITE_P(WithAndWithoutTtl, AllKindsTest,
                         ::testing::Combine(::testing::Values(BackendKind::kMemory,
                                                              BackendKind::kRocksDb),
                                            ::testing::Values<int64_t>(0, 40, 400)));

// ---------------------------------------------------------------------------------------------
// TTL specifics.

TEST_P(TtlTest, ValueExpiresAfterTtlSinceLastWrite) {
  ManualClock clock(Timestamp(0));
  auto b = make_backend(&clock);
  auto* v = *b->get_state(
      ValueStateDescriptor<int64_t>{.name = "v", .options = {.ttl = milliseconds(100)}});
  b->set_current_key(key_of(*b, 1));
  v->update(5);
  clock.advance_millis(60);
  b->refresh_time();
  EXPECT_EQ(v->value(), 5);
  v->update(6);  // refreshes
  clock.advance_millis(99);
  b->refresh_time();
  EXPECT_EQ(v->value(), 6);
  clock.advance_millis(1);
  b->refresh_time();
  EXPECT_EQ(v->value(), std::nullopt);
  EXPECT_EQ(v->get(), nullptr);
  EXPECT_EQ(b->num_entries("v"), 0u);  // purged on access
}

TEST_P(TtlTest, ReadsDoNotRefreshUnlessAsked) {
  ManualClock clock(Timestamp(0));
  auto b = make_backend(&clock);
  auto* plain = *b->get_state(
      ValueStateDescriptor<int64_t>{.name = "plain", .options = {.ttl = milliseconds(100)}});
  auto* refreshed = *b->get_state(ValueStateDescriptor<int64_t>{
      .name = "refreshed", .options = {.ttl = milliseconds(100), .refresh_on_read = true}});
  b->set_current_key(key_of(*b, 1));
  plain->update(1);
  refreshed->update(1);
  for (int i = 0; i < 5; ++i) {
    clock.advance_millis(50);
    b->refresh_time();
    (void)plain->value();
    EXPECT_EQ(refreshed->value(), 1);
  }
  EXPECT_EQ(plain->value(), std::nullopt);
}

TEST_P(TtlTest, CleanupPassPurgesExpiredEntriesOfEveryKind) {
  ManualClock clock(Timestamp(0));
  auto b = make_backend(&clock);
  Handles h = get_handles(*b, milliseconds(10));
  for (int64_t k = 0; k < 100; ++k) {
    b->set_current_key(key_of(*b, k));
    b->set_current_namespace(static_cast<Namespace>(k % 3));
    h.value->update(k);
    h.list->add("x");
    h.map->put(k, "y");
    h.reducing->add(k);
    h.agg->add(k);
  }
  EXPECT_EQ(b->num_entries("value"), 100u);
  clock.advance_millis(9);
  b->refresh_time();
  EXPECT_EQ(b->purge_expired(), 0u);
  clock.advance_millis(1);
  b->refresh_time();
  EXPECT_EQ(b->purge_expired(), 500u);
  for (const auto& name : b->state_names()) EXPECT_EQ(b->num_entries(name), 0u) << name;
}

TEST_P(TtlTest, MapEntriesExpireOneByOne) {
  ManualClock clock(Timestamp(0));
  auto b = make_backend(&clock);
  auto* m = *b->get_state(
      MapStateDescriptor<std::string, int64_t>{.name = "m", .options = {.ttl = milliseconds(10)}});
  b->set_current_key(key_of(*b, 3));
  m->put("old", 1);
  clock.advance_millis(6);
  b->refresh_time();
  m->put("new", 2);
  clock.advance_millis(5);
  b->refresh_time();
  EXPECT_EQ(m->get("old"), std::nullopt);
  EXPECT_EQ(m->get("new"), 2);
  EXPECT_EQ(m->keys(), std::vector<std::string>{"new"});
  clock.advance_millis(5);
  b->refresh_time();
  EXPECT_TRUE(m->is_empty());
}

TEST_P(TtlTest, WritingAnExpiredListStartsAFreshList) {
  ManualClock clock(Timestamp(0));
  auto b = make_backend(&clock);
  auto* l = *b->get_state(
      ListStateDescriptor<int64_t>{.name = "l", .options = {.ttl = milliseconds(10)}});
  b->set_current_key(key_of(*b, 3));
  l->add(1);
  clock.advance_millis(10);
  b->refresh_time();
  l->add(2);
  EXPECT_EQ(std::vector<int64_t>(l->get().begin(), l->get().end()), std::vector<int64_t>{2});
}

TEST_P(TtlTest, TimeIsSampledPerResolvedBatchNotPerAccess) {
  ManualClock clock(Timestamp(0));
  auto b = make_backend(&clock);
  auto* v = *b->get_state(
      ValueStateDescriptor<int64_t>{.name = "v", .options = {.ttl = milliseconds(10)}});
  std::vector<KeyId> ids;
  std::vector<Array> cols = {int64_array({4})};
  ASSERT_TRUE(b->resolve_keys(cols, &ids).is_ok());
  b->set_current_key(ids[0]);
  v->update(1);
  clock.advance_millis(10);
  EXPECT_EQ(v->value(), 1);  // same batch: the time sampled by resolve_keys
  ASSERT_TRUE(b->resolve_keys(cols, &ids).is_ok());
  EXPECT_EQ(v->value(), std::nullopt);
}

// ---------------------------------------------------------------------------------------------
// Namespaces and merging.

TEST_P(NamespaceTest, NamespacesAreIndependentAndMergeable) {
  ManualClock clock;
  auto b = make_backend(&clock);
  Handles h = get_handles(*b, milliseconds(0));
  b->set_current_key(key_of(*b, 9));
  for (Namespace ns : {Namespace{1}, Namespace{2}, Namespace{3}}) {
    b->set_current_namespace(ns);
    h.list->add("w" + std::to_string(ns));
    h.reducing->add(static_cast<int64_t>(ns) * 10);
    h.agg->add(static_cast<int64_t>(ns));
  }
  b->set_current_namespace(2);
  EXPECT_EQ(h.reducing->get(), 20);
  const Namespace sources[] = {1, 3};
  h.list->merge_namespaces(2, sources);
  h.reducing->merge_namespaces(2, sources);
  h.agg->merge_namespaces(2, sources);
  EXPECT_EQ(b->current_namespace(), 2u);
  std::vector<std::string> got(h.list->get().begin(), h.list->get().end());
  EXPECT_EQ(got, (std::vector<std::string>{"w2", "w1", "w3"}));
  EXPECT_EQ(h.reducing->get(), 60);
  EXPECT_DOUBLE_EQ(*h.agg->get(), 2.0);
  EXPECT_EQ(h.agg->accumulator()->second, 3);
  auto in_two = b->keys_with_state("list", 2);
  auto in_one = b->keys_with_state("list", 1);
  ASSERT_TRUE(in_two.is_ok() && in_one.is_ok());
  EXPECT_EQ(in_two.value(), std::vector<KeyId>{b->current_key()});
  EXPECT_TRUE(in_one.value().empty());
  EXPECT_EQ(b->keys_with_state("nope", 1).status().code(), StatusCode::kNotFound);
  b->set_current_namespace(1);
  EXPECT_TRUE(h.list->get().empty());
  EXPECT_EQ(h.reducing->get(), std::nullopt);
  EXPECT_EQ(h.agg->get(), std::nullopt);
}

// ---------------------------------------------------------------------------------------------
// Registration errors.

TEST_P(RegistrationTest, SameNameReturnsSameHandleAndOtherKindOrTypeIsAnError) {
  ManualClock clock;
  auto b = make_backend(&clock);
  auto a = b->get_state(ValueStateDescriptor<int64_t>{.name = "s"});
  auto again = b->get_state(ValueStateDescriptor<int64_t>{.name = "s"});
  ASSERT_TRUE(a.is_ok() && again.is_ok());
  EXPECT_EQ(*a, *again);
  auto other_type = b->get_state(ValueStateDescriptor<double>{.name = "s"});
  EXPECT_EQ(other_type.status().code(), StatusCode::kInvalidArgument);
  auto other_kind = b->get_state(ListStateDescriptor<int64_t>{.name = "s"});
  EXPECT_EQ(other_kind.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(other_kind.status().message().find("'s'"), std::string::npos);
  auto other_ttl =
      b->get_state(ValueStateDescriptor<int64_t>{.name = "s", .options = {.ttl = milliseconds(5)}});
  EXPECT_EQ(other_ttl.status().code(), StatusCode::kInvalidArgument);
  auto empty = b->get_state(ValueStateDescriptor<int64_t>{.name = ""});
  EXPECT_EQ(empty.status().code(), StatusCode::kInvalidArgument);
}

TEST_P(RegistrationTest, BackendNeedsKeyTypes) {
  KeyedBackendOptions o;
  EXPECT_EQ(current_backend().create_keyed_backend(o).status().code(),
            StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------------------------
// Snapshots.

struct Populated {
  std::unique_ptr<KeyedStateBackend> backend;
  Handles handles;
  Model model;
  std::set<int64_t> keys;
};

Populated populate(std::mt19937_64& rng, ManualClock& clock, int64_t ttl) {
  Populated p;
  p.backend = make_backend(&clock);
  p.handles = get_handles(*p.backend, milliseconds(ttl));
  p.model.ttl = ttl;
  p.keys = drive(rng, *p.backend, p.handles, p.model, clock, 20, 300);
  return p;
}

TEST_P(SnapshotTest, RestoringSubsetsOfKeyGroupsGivesEqualContents) {
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    std::mt19937_64 rng(seed);
    ManualClock clock(Timestamp(5000));
    const int64_t ttl = seed % 2 == 0 ? 0 : 200;
    Populated p = populate(rng, clock, ttl);
    ASSERT_FALSE(HasFatalFailure());
    // Split the key groups among `parallelism` new subtasks, snapshot by old ownership (all) per
    // new range, restore each into a fresh backend owning only that range.
    const int parallelism = 1 + static_cast<int>(seed % 4);
    for (int sub = 0; sub < parallelism; ++sub) {
      auto groups = key_groups_for_subtask(sub, parallelism, 128);
      std::string snap;
      ASSERT_TRUE(p.backend->snapshot(kUid, groups, &snap).is_ok());
      auto fresh = make_backend(&clock, groups);
      // Half the time restore before the states are registered (pending entries).
      const bool register_first = rng() % 2 == 0;
      Handles h{};
      if (register_first) h = get_handles(*fresh, milliseconds(ttl));
      ASSERT_TRUE(fresh->restore(kUid, snap).is_ok());
      if (!register_first) h = get_handles(*fresh, milliseconds(ttl));
      std::set<int64_t> mine;
      for (int64_t k : p.keys) {
        if (fresh->keys().owns(group_of_int64(k))) mine.insert(k);
      }
      EXPECT_EQ(fresh->keys().num_keys(), mine.size());
      expect_all_reads(*fresh, h, p.model, mine, clock.now().millis());
      ASSERT_FALSE(HasFatalFailure());
    }
  }
}

TEST_P(SnapshotTest, RestoredBackendContinuesExactlyLikeTheOriginal) {
  for (int64_t ttl : {0, 100}) {
    std::mt19937_64 rng(42 + static_cast<uint64_t>(ttl));
    ManualClock clock(Timestamp(0));
    Populated p = populate(rng, clock, ttl);
    ASSERT_FALSE(HasFatalFailure());
    std::string snap;
    ASSERT_TRUE(p.backend->snapshot(kUid, &snap).is_ok());
    // The restored backend gets its own clock at the same time, so both see the same times while
    // the same random operations run on the original (checked against the model inside drive)
    // and on the restored backend (against a copy of the model).
    ManualClock clock_b(clock.now());
    auto restored_b = make_backend(&clock_b);
    ASSERT_TRUE(restored_b->restore(kUid, snap).is_ok());
    Handles hb = get_handles(*restored_b, milliseconds(ttl));
    Model copy = p.model;
    std::mt19937_64 rng_a(7);
    std::mt19937_64 rng_b(7);
    auto used_a = drive(rng_a, *p.backend, p.handles, p.model, clock, 10, 300);
    ASSERT_FALSE(HasFatalFailure());
    auto used_b = drive(rng_b, *restored_b, hb, copy, clock_b, 10, 300);
    ASSERT_FALSE(HasFatalFailure());
    EXPECT_EQ(used_a, used_b);
    std::set<int64_t> all = p.keys;
    all.insert(used_a.begin(), used_a.end());
    expect_all_reads(*restored_b, hb, p.model, all, clock_b.now().millis());
  }
}

TEST_P(SnapshotTest, RestoreSkipsKeyGroupsNotOwnedAndMergesSeveralSnapshots) {
  ManualClock clock;
  // Two old subtasks of parallelism 2 -> one new subtask owning everything.
  std::vector<std::string> snaps;
  std::map<int64_t, int64_t> expected;
  for (int sub = 0; sub < 2; ++sub) {
    auto groups = key_groups_for_subtask(sub, 2, 128);
    auto b = make_backend(&clock, groups);
    auto* v = *b->get_state(ValueStateDescriptor<int64_t>{.name = "v"});
    for (int64_t k = 0; k < 500; ++k) {
      if (!b->keys().owns(group_of_int64(k))) continue;
      b->set_current_key(key_of(*b, k));
      v->update(k * 3);
      expected[k] = k * 3;
    }
    snaps.emplace_back();
    ASSERT_TRUE(b->snapshot(kUid, &snaps.back()).is_ok());
  }
  auto merged = make_backend(&clock);
  for (const auto& s : snaps) ASSERT_TRUE(merged->restore(kUid, s).is_ok());
  auto* v = *merged->get_state(ValueStateDescriptor<int64_t>{.name = "v"});
  EXPECT_EQ(merged->keys().num_keys(), 500u);
  for (auto [k, val] : expected) {
    merged->set_current_key(key_of(*merged, k));
    EXPECT_EQ(v->value(), val);
  }
  // A backend owning only the first quarter keeps only those keys.
  auto quarter = make_backend(&clock, key_groups_for_subtask(0, 4, 128));
  for (const auto& s : snaps) ASSERT_TRUE(quarter->restore(kUid, s).is_ok());
  size_t in_quarter = 0;
  for (auto [k, val] : expected) in_quarter += group_of_int64(k).value() < 32;
  EXPECT_EQ(quarter->keys().num_keys(), in_quarter);
}

TEST_P(SnapshotTest, SnapshotOfAKeyGroupNotOwnedIsAnError) {
  ManualClock clock;
  auto b = make_backend(&clock, key_groups_for_subtask(0, 2, 128));
  std::string out;
  const KeyGroup bad[] = {KeyGroup(127)};
  EXPECT_EQ(b->snapshot(kUid, bad, &out).code(), StatusCode::kInvalidArgument);
}

TEST_P(SnapshotTest, MismatchedKeyTypesMaxParallelismOrStateTypesAreRejected) {
  ManualClock clock;
  auto b = make_backend(&clock);
  auto* v = *b->get_state(ValueStateDescriptor<int64_t>{.name = "v"});
  b->set_current_key(key_of(*b, 1));
  v->update(1);
  std::string snap;
  ASSERT_TRUE(b->snapshot(kUid, &snap).is_ok());
  auto other_types = make_backend(&clock, {}, {columnar::utf8()});
  EXPECT_EQ(other_types->restore(kUid, snap).code(), StatusCode::kInvalidArgument);
  auto other_maxp = make_backend(&clock, {}, {columnar::int64()}, 64);
  EXPECT_EQ(other_maxp->restore(kUid, snap).code(), StatusCode::kInvalidArgument);
  // Registered with another type before restore.
  auto typed = make_backend(&clock);
  ASSERT_TRUE(typed->get_state(ValueStateDescriptor<double>{.name = "v"}).is_ok());
  EXPECT_EQ(typed->restore(kUid, snap).code(), StatusCode::kInvalidArgument);
  // Registered with another type after restore.
  auto later = make_backend(&clock);
  ASSERT_TRUE(later->restore(kUid, snap).is_ok());
  EXPECT_EQ(later->get_state(ListStateDescriptor<int64_t>{.name = "v"}).status().code(),
            StatusCode::kInvalidArgument);
}

TEST_P(SnapshotTest, EmptyBackendRoundTrips) {
  ManualClock clock;
  auto b = make_backend(&clock);
  std::string snap;
  ASSERT_TRUE(b->snapshot(kUid, &snap).is_ok());
  auto r = make_backend(&clock);
  Status st = r->restore(kUid, snap);
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  EXPECT_EQ(r->keys().num_keys(), 0u);
}

// Fixes up the envelope's trailing CRC-32C so the parser itself sees the corrupt bytes.
void refresh_checksum(std::string* snap) {
  if (snap->size() < 4) return;
  const uint32_t h = crc32c(std::string_view(*snap).substr(0, snap->size() - 4));
  std::memcpy(snap->data() + snap->size() - 4, &h, 4);
}

TEST_P(SnapshotTest, CorruptOrTruncatedSnapshotsAreInvalidDataNeverACrash) {
  std::mt19937_64 rng(99);
  ManualClock clock(Timestamp(100));
  Populated p = populate(rng, clock, 0);
  ASSERT_FALSE(HasFatalFailure());
  std::string snap;
  ASSERT_TRUE(p.backend->snapshot(kUid, &snap).is_ok());
  for (int trial = 0; trial < 600; ++trial) {
    std::string bad = snap;
    const int mode = trial % 3;
    if (mode == 0) {
      bad.resize(rng() % bad.size());
    } else {
      const int flips = 1 + static_cast<int>(rng() % 4);
      for (int f = 0; f < flips; ++f) bad[rng() % bad.size()] ^= static_cast<char>(1 + rng() % 255);
    }
    auto fresh = make_backend(&clock);
    Status st = fresh->restore(kUid, bad);
    ASSERT_FALSE(st.is_ok()) << "trial " << trial;
    EXPECT_EQ(st.code(), StatusCode::kInvalidData) << st.to_string();
    // Every refusal names the operator and the byte offset.
    EXPECT_NE(st.message().find("keyed-test"), std::string::npos) << st.to_string();
    EXPECT_NE(st.message().find("at byte"), std::string::npos) << st.to_string();
  }
  // With the checksum refreshed the structural checks and codecs see the corruption: any outcome
  // is acceptable except a crash; errors are InvalidData or InvalidArgument (header fields).
  int errors = 0;
  for (int trial = 0; trial < 1500; ++trial) {
    std::string bad = snap;
    if (trial % 4 == 0) {
      bad.resize(8 + rng() % (bad.size() - 8));
    } else {
      bad[5 + rng() % (bad.size() - 13)] ^= static_cast<char>(1 + rng() % 255);
    }
    refresh_checksum(&bad);
    auto fresh = make_backend(&clock);
    Status st = fresh->restore(kUid, bad);
    if (st.is_ok()) {
      // Registration of states may still reveal a bad value.
      (void)fresh->get_state(ValueStateDescriptor<int64_t>{.name = "value"});
      (void)fresh->get_state(ListStateDescriptor<std::string>{.name = "list"});
      (void)fresh->get_state(MapStateDescriptor<int64_t, std::string>{.name = "map"});
    } else {
      ++errors;
      EXPECT_TRUE(st.code() == StatusCode::kInvalidData ||
                  st.code() == StatusCode::kInvalidArgument)
          << st.to_string();
    }
  }
  EXPECT_GT(errors, 100);
}

// Found by fuzz/snapshot_reader_fuzzer: a snapshot entry whose write time lies ~2^63 ms from the
// reader's clock made the TTL check `now - write_ms` overflow (undefined behaviour). A write in
// the far past is expired, one in the far future is live; neither overflows (UBSan checks this).
TEST_P(SnapshotTest, WriteTimesFarFromNowDoNotOverflowTheTtlCheck) {
  const StateOptions ttl{.ttl = milliseconds(100)};
  std::string past_snap, future_snap;
  for (auto [at, key, snap] : {std::tuple{INT64_MIN + 100, int64_t{1}, &past_snap},
                               std::tuple{INT64_MAX - 5, int64_t{2}, &future_snap}}) {
    ManualClock writer_clock{Timestamp(at)};
    auto writer = make_backend(&writer_clock);
    auto* v = *writer->get_state(ValueStateDescriptor<int64_t>{.name = "v", .options = ttl});
    auto* m = *writer->get_state(MapStateDescriptor<int64_t, int64_t>{.name = "m", .options = ttl});
    writer->set_current_key(key_of(*writer, key));
    v->update(key * 10);
    m->put(key, key * 100);
    ASSERT_TRUE(writer->snapshot(kUid, snap).is_ok());
  }
  ManualClock clock(Timestamp(500));
  auto reader = make_backend(&clock);
  ASSERT_TRUE(reader->restore(kUid, past_snap).is_ok());
  ASSERT_TRUE(reader->restore(kUid, future_snap).is_ok());
  auto* v = *reader->get_state(ValueStateDescriptor<int64_t>{.name = "v", .options = ttl});
  auto* m = *reader->get_state(MapStateDescriptor<int64_t, int64_t>{.name = "m", .options = ttl});
  reader->refresh_time();
  reader->set_current_key(key_of(*reader, 1));
  EXPECT_EQ(v->value(), std::nullopt);
  EXPECT_EQ(m->get(1), std::nullopt);
  reader->set_current_key(key_of(*reader, 2));
  EXPECT_EQ(v->value(), std::optional<int64_t>(20));
  EXPECT_EQ(m->get(2), std::optional<int64_t>(200));
  EXPECT_EQ(reader->purge_expired(), 0u);  // the past entries were dropped when read
}

// ---------------------------------------------------------------------------------------------
// Forgetting keys.

// Keys whose state was cleared, expired or never written are forgotten, pinned keys and keys with
// state (in any namespace or state) stay, renumbered in their old order with their values intact.
TEST_P(ForgetKeysTest, KeysWithoutStateAreForgottenAndTheRestRenumberedInOrder) {
  ManualClock clock(Timestamp(0));
  auto b = make_backend(&clock);
  auto* v = *b->get_state(ValueStateDescriptor<int64_t>{.name = "v"});
  auto* l = *b->get_state(
      ListStateDescriptor<int64_t>{.name = "l", .options = StateOptions{.ttl = milliseconds(100)}});
  auto* m = *b->get_state(MapStateDescriptor<int64_t, int64_t>{.name = "m"});
  const int64_t n = 5000;
  std::map<int64_t, int64_t> values;  // keys that keep a value
  std::set<int64_t> listed, mapped;   // keys that keep a list entry (no TTL hit) / a namespaced map
  for (int64_t k = 0; k < n; ++k) {
    b->set_current_key(key_of(*b, k));
    switch (k % 5) {
      case 0:  // value kept
        v->update(k * 7);
        values[k] = k * 7;
        break;
      case 1:  // value cleared
        v->update(k);
        v->clear();
        break;
      case 2:  // list entry that expires
        l->add(k);
        break;
      case 3:  // map entry in namespace 3
        b->set_current_namespace(3);
        m->put(k, k + 1);
        b->set_current_namespace(0);
        mapped.insert(k);
        break;
      default:  // nothing written
        break;
    }
  }
  clock.advance_millis(150);  // every list entry expires
  b->refresh_time();
  for (int64_t k = 2; k < n; k += 500) {  // a few fresh list entries after the expiry
    b->set_current_key(key_of(*b, k));
    l->add(-k);
    listed.insert(k);
  }
  // Pin a key without state (as a key with a timer would be).
  const KeyId pinned_id = key_of(*b, 4);
  ASSERT_EQ(b->keys().num_keys(), static_cast<uint32_t>(n));
  std::vector<KeyId> remap;
  ASSERT_TRUE(b->forget_keys(std::span(&pinned_id, 1), &remap).is_ok());
  ASSERT_EQ(remap.size(), static_cast<size_t>(n));
  const size_t live = values.size() + listed.size() + mapped.size() + 1;
  EXPECT_EQ(b->keys().num_keys(), live);
  EXPECT_EQ(remap[pinned_id], 3u);  // key 4 follows keys 0, 2 (a fresh list entry) and 3
  KeyId prev = 0;
  bool first = true;
  for (KeyId old = 0; old < remap.size(); ++old) {
    if (remap[old] == kNoKey) continue;
    if (!first) EXPECT_GT(remap[old], prev);  // order kept
    prev = remap[old];
    first = false;
  }
  // Values survive the renumbering; forgotten keys come back empty under new ids.
  for (int64_t k = 0; k < n; ++k) {
    b->set_current_key(key_of(*b, k));
    EXPECT_EQ(v->value(), values.count(k) ? std::optional<int64_t>(values[k]) : std::nullopt) << k;
    EXPECT_EQ(l->get().size(), listed.count(k) ? 1u : 0u) << k;
    b->set_current_namespace(3);
    EXPECT_EQ(m->get(k), mapped.count(k) ? std::optional<int64_t>(k + 1) : std::nullopt) << k;
    b->set_current_namespace(0);
  }
  EXPECT_EQ(b->keys().num_keys(), static_cast<uint32_t>(n));  // all asked for again
  // A snapshot after forgetting restores the same contents.
  std::string snap;
  ASSERT_TRUE(b->snapshot(kUid, &snap).is_ok());
  auto r = make_backend(&clock);
  ASSERT_TRUE(r->restore(kUid, snap).is_ok());
  auto* rv = *r->get_state(ValueStateDescriptor<int64_t>{.name = "v"});
  for (auto [k, val] : values) {
    r->set_current_key(key_of(*r, k));
    EXPECT_EQ(rv->value(), val);
  }
}

// should_forget_keys asks again only once the registry doubled past what was kept.
TEST_P(ForgetKeysTest, ForgettingIsAmortized) {
  ManualClock clock;
  auto b = make_backend(&clock);
  auto* v = *b->get_state(ValueStateDescriptor<int64_t>{.name = "v"});
  std::vector<KeyId> ids;
  int64_t next = 0;
  int forgets = 0;
  uint32_t peak = 0;
  for (int batch = 0; batch < 200; ++batch) {
    if (b->should_forget_keys()) {
      std::vector<KeyId> remap;
      ASSERT_TRUE(b->forget_keys({}, &remap).is_ok());
      ++forgets;
    }
    std::vector<int64_t> keys;
    for (int i = 0; i < 2000; ++i) keys.push_back(next++);
    const Array a = int64_array(keys);
    ASSERT_TRUE(b->resolve_keys(std::span(&a, 1), &ids).is_ok());
    for (size_t i = 0; i < ids.size(); ++i) {
      b->set_current_key(ids[i]);
      if (i % 100 == 0) {
        v->update(1);  // 1 % of the keys keep state
      } else {
        v->update(2);
        v->clear();
      }
    }
    peak = std::max(peak, b->keys().num_keys());
  }
  EXPECT_GT(forgets, 2);
  EXPECT_LT(forgets, 10);
  EXPECT_LT(peak, 70'000u);  // 400 K keys seen; without forgetting the registry holds them all
  EXPECT_EQ(b->num_entries("v"), 4000u);
}

// Keys new to the registry when a batch resolves them read as empty without a look at the store
// (the RocksDB backend skips its Get for them): every write, a forget_keys renumbering and a
// restore into a backend that had resolved the same keys before must still be seen. Random
// batches against a model; the restore target resolves (and reads) every key before restoring.
TEST_P(ForgetKeysTest, NewKeysSeeLaterWritesRenumberingAndRestores) {
  ManualClock clock(Timestamp(0));
  std::unique_ptr<KeyedStateBackend> b = make_backend(&clock);
  std::map<int64_t, int64_t> model_v;
  std::map<int64_t, std::vector<int64_t>> model_l;
  std::mt19937_64 rng(11);
  constexpr int64_t kKeys = 6000;
  std::vector<KeyId> ids;
  for (int round = 0; round < 240; ++round) {
    auto* v = *b->get_state(ValueStateDescriptor<int64_t>{.name = "v"});
    auto* l = *b->get_state(ListStateDescriptor<int64_t>{.name = "l"});
    std::vector<int64_t> keys;
    const int64_t span = std::min<int64_t>(kKeys, 200 + round * 40);  // new keys, then repeats
    for (int i = 0; i < 64; ++i) keys.push_back(static_cast<int64_t>(rng() % span));
    const Array a = int64_array(keys);
    ASSERT_TRUE(b->resolve_keys(std::span(&a, 1), &ids).is_ok());
    for (size_t i = 0; i < keys.size(); ++i) {
      const int64_t k = keys[i];
      b->set_current_key(ids[i]);
      ASSERT_EQ(v->value(), model_v.count(k) ? std::optional<int64_t>(model_v[k]) : std::nullopt)
          << "round " << round << " key " << k;
      ASSERT_EQ(l->get().size(), model_l[k].size()) << "round " << round << " key " << k;
      const int64_t x = static_cast<int64_t>(rng() % 1000);
      switch (rng() % 5) {
        case 0:
        case 1:
          v->update(x);
          model_v[k] = x;
          break;
        case 2:
          v->clear();
          model_v.erase(k);
          break;
        case 3:
          l->add(x);
          model_l[k].push_back(x);
          break;
        default:
          break;  // read only
      }
    }
    if (round % 40 == 39) {
      std::vector<KeyId> remap;
      ASSERT_TRUE(b->forget_keys({}, &remap).is_ok());
    }
    if (round % 60 == 59) {
      std::string snap;
      ASSERT_TRUE(b->snapshot(kUid, &snap).is_ok());
      std::unique_ptr<KeyedStateBackend> r = make_backend(&clock);
      auto* rv = *r->get_state(ValueStateDescriptor<int64_t>{.name = "v"});
      std::vector<int64_t> all(kKeys);
      for (int64_t k = 0; k < kKeys; ++k) all[static_cast<size_t>(k)] = k;
      const Array every = int64_array(all);
      ASSERT_TRUE(r->resolve_keys(std::span(&every, 1), &ids).is_ok());
      for (const KeyId id : ids) {
        r->set_current_key(id);
        ASSERT_EQ(rv->value(), std::nullopt);
      }
      ASSERT_TRUE(r->restore(kUid, snap).is_ok());
      b = std::move(r);
    }
  }
  auto* v = *b->get_state(ValueStateDescriptor<int64_t>{.name = "v"});
  auto* l = *b->get_state(ListStateDescriptor<int64_t>{.name = "l"});
  for (int64_t k = 0; k < kKeys; ++k) {
    b->set_current_key(key_of(*b, k));
    EXPECT_EQ(v->value(), model_v.count(k) ? std::optional<int64_t>(model_v[k]) : std::nullopt)
        << k;
    const auto got = l->get();
    EXPECT_EQ(std::vector<int64_t>(got.begin(), got.end()), model_l[k]) << k;
  }
}

// ---------------------------------------------------------------------------------------------
// Keys of every type.

std::vector<DataType> all_key_types() {
  return {columnar::boolean(), columnar::int32(),
          columnar::int64(),   columnar::uint64(),
          columnar::float64(), columnar::utf8(),
          columnar::binary(),  columnar::timestamp(columnar::TimeUnit::kMicro)};
}

Scalar random_scalar(const DataType& t, std::mt19937_64& rng) {
  if (rng() % 10 == 0) return Scalar::null(t);
  const int64_t v = static_cast<int64_t>(rng() % 20) - 10;
  switch (t.id()) {
    case columnar::TypeId::kBool:
      return Scalar::of_bool(v > 0);
    case columnar::TypeId::kInt32:
      return Scalar::of_int32(static_cast<int32_t>(v));
    case columnar::TypeId::kInt64:
      return Scalar::of_int64(v * 1'000'000'007LL);
    case columnar::TypeId::kUInt64:
      return Scalar::of_uint64(static_cast<uint64_t>(v) * 77);
    case columnar::TypeId::kFloat64:
      return Scalar::of_float64(static_cast<double>(v) / 4.0);
    case columnar::TypeId::kUtf8:
      return Scalar::of_utf8(std::string(static_cast<size_t>(v + 10), 'k'));
    case columnar::TypeId::kBinary:
      return Scalar::of_binary(std::string(static_cast<size_t>(v + 10), '\xff'));
    case columnar::TypeId::kTimestamp:
      return Scalar{t, true, v * 1000};
  }
  return Scalar::null(t);
}

// A column of the scalars, sliced at `pad` so the array has a non-zero offset.
Array make_column(const DataType& t, const std::vector<Scalar>& vals, int pad) {
  auto b = columnar::make_builder(t);
  for (int i = 0; i < pad; ++i) b->append_null();
  for (const Scalar& s : vals) b->append_scalar(s);
  return b->finish().slice(pad, static_cast<int64_t>(vals.size()));
}

TEST(KeyRegistryTest, EveryKeyTypeResolvesHashesAndRoundTripsLikeTheModel) {
  std::mt19937_64 rng(5);
  const auto types = all_key_types();
  for (size_t a = 0; a < types.size(); ++a) {
    // Single-column keys of every type, and a two-column key pairing it with the next type.
    for (int width = 1; width <= 2; ++width) {
      std::vector<DataType> kt = {types[a]};
      if (width == 2) kt.push_back(types[(a + 3) % types.size()]);
      auto reg = *KeyRegistry::make(kt, 128);
      std::map<std::vector<std::string>, KeyId> model;  // key (as to_string) -> id
      std::vector<KeyId> ids;
      for (int batch = 0; batch < 8; ++batch) {
        const int rows = static_cast<int>(rng() % 200);
        std::vector<std::vector<Scalar>> vals(kt.size());
        for (int i = 0; i < rows; ++i) {
          for (size_t c = 0; c < kt.size(); ++c) vals[c].push_back(random_scalar(kt[c], rng));
        }
        std::vector<Array> cols;
        for (size_t c = 0; c < kt.size(); ++c) {
          cols.push_back(make_column(kt[c], vals[c], static_cast<int>(rng() % 5)));
        }
        ASSERT_TRUE(reg->resolve(cols, &ids).is_ok());
        ASSERT_EQ(ids.size(), static_cast<size_t>(rows));
        std::vector<uint64_t> hashes;
        ASSERT_TRUE(compute::hash_columns(cols, &hashes).is_ok());
        for (int i = 0; i < rows; ++i) {
          std::vector<std::string> mk;
          std::vector<Scalar> row;
          for (size_t c = 0; c < kt.size(); ++c) {
            mk.push_back(vals[c][static_cast<size_t>(i)].to_string());
            row.push_back(vals[c][static_cast<size_t>(i)]);
          }
          auto [it, inserted] = model.emplace(mk, static_cast<KeyId>(model.size()));
          const KeyId id = ids[static_cast<size_t>(i)];
          ASSERT_EQ(id, it->second) << "type " << kt[0] << " row " << i;
          EXPECT_EQ(reg->key_group(id).value(),
                    static_cast<int32_t>(hashes[static_cast<size_t>(i)] % 128));
          EXPECT_EQ(reg->key_values(id), row);
        }
      }
      EXPECT_EQ(reg->num_keys(), model.size());
      std::vector<KeyId> looked;
      std::vector<Array> unseen;
      for (const DataType& t : kt) {
        unseen.push_back(make_column(t, {random_scalar(t, rng)}, 0));
      }
      ASSERT_TRUE(reg->lookup(unseen, &looked).is_ok());
      EXPECT_EQ(reg->num_keys(), model.size());  // lookup registers nothing
    }
  }
}

TEST(KeyRegistryTest, EmptyBatchResolvesToNoIds) {
  auto reg = *KeyRegistry::make({columnar::int64()}, 128);
  std::vector<KeyId> ids = {1, 2, 3};
  std::vector<Array> cols = {int64_array({})};
  ASSERT_TRUE(reg->resolve(cols, &ids).is_ok());
  EXPECT_TRUE(ids.empty());
  EXPECT_EQ(reg->num_keys(), 0u);
}

TEST(KeyRegistryTest, KeyOfAKeyGroupNotOwnedIsRejected) {
  auto groups = key_groups_for_subtask(0, 2, 128);
  auto reg = *KeyRegistry::make({columnar::int64()}, 128, groups);
  int64_t foreign = 0;
  while (reg->owns(group_of_int64(foreign))) ++foreign;
  std::vector<KeyId> ids;
  std::vector<Array> cols = {int64_array({foreign})};
  Status st = reg->resolve(cols, &ids);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("key group"), std::string::npos);
}

TEST(KeyRegistryTest, SubtaskRangesPartitionTheKeyGroupsLikeTheExchange) {
  for (int maxp : {1, 7, 128}) {
    for (int par = 1; par <= std::min(maxp, 5); ++par) {
      std::vector<int> owner(static_cast<size_t>(maxp), -1);
      for (int s = 0; s < par; ++s) {
        for (KeyGroup kg : key_groups_for_subtask(s, par, maxp)) {
          EXPECT_EQ(owner[static_cast<size_t>(kg.value())], -1);
          owner[static_cast<size_t>(kg.value())] = s;
          EXPECT_EQ(static_cast<int64_t>(kg.value()) * par / maxp, s);
        }
      }
      for (int o : owner) EXPECT_GE(o, 0);
    }
  }
}

TEST(KeyRegistryTest, BadArgumentsAreErrors) {
  EXPECT_FALSE(KeyRegistry::make({columnar::int64()}, 0).is_ok());
  const KeyGroup out[] = {KeyGroup(200)};
  EXPECT_FALSE(KeyRegistry::make({columnar::int64()}, 128, out).is_ok());
  EXPECT_FALSE(KeyRegistry::make({}, 128).is_ok());
  auto reg = *KeyRegistry::make({columnar::int64()}, 128);
  EXPECT_EQ(reg->resolve_values(std::vector<Scalar>{Scalar::of_utf8("x")}).status().code(),
            StatusCode::kTypeError);
  std::vector<KeyId> ids;
  auto batch = *columnar::RecordBatch::make(
      columnar::schema({columnar::field("k", columnar::int64())}), {int64_array({1})});
  const int bad_col[] = {3};
  EXPECT_EQ(reg->resolve(batch, bad_col, &ids).code(), StatusCode::kOutOfRange);
}

// Rows of every column type, nulls included, encoded with encode_values and appended back with
// append_values give the same columns as the Scalar path (decode_key); damaged bytes are errors.
TEST(ValueBytesTest, AppendValuesRebuildsTheEncodedRowsOfEveryType) {
  std::mt19937_64 rng(11);
  const auto types = all_key_types();
  std::vector<std::vector<Scalar>> vals(types.size());
  for (int i = 0; i < 300; ++i) {
    for (size_t c = 0; c < types.size(); ++c) vals[c].push_back(random_scalar(types[c], rng));
  }
  std::vector<Array> cols;
  for (size_t c = 0; c < types.size(); ++c) cols.push_back(make_column(types[c], vals[c], 3));
  std::vector<std::unique_ptr<columnar::ArrayBuilder>> builders;
  for (const DataType& t : types) builders.push_back(columnar::make_builder(t));
  std::string row;
  for (int64_t r = 0; r < 300; ++r) {
    row.clear();
    encode_values(cols, r, &row);
    ASSERT_TRUE(append_values(row, types, builders).is_ok()) << r;
    std::vector<Scalar> scalars;
    ASSERT_TRUE(KeyRegistry::decode_key(row, types, &scalars).is_ok());
    for (size_t c = 0; c < types.size(); ++c)
      EXPECT_EQ(scalars[c], vals[c][static_cast<size_t>(r)]);
  }
  for (size_t c = 0; c < types.size(); ++c) {
    const Array built = builders[c]->finish();
    ASSERT_EQ(built.length(), 300);
    for (int64_t r = 0; r < 300; ++r) {
      EXPECT_EQ(built.scalar_at(r), vals[c][static_cast<size_t>(r)]) << types[c] << " row " << r;
    }
  }
  const DataType t[] = {columnar::utf8()};
  std::vector<std::unique_ptr<columnar::ArrayBuilder>> one;
  one.push_back(columnar::make_builder(columnar::utf8()));
  EXPECT_EQ(append_values(std::string("\x01\x05\x00\x00\x00\x00\x00\x00\x00"
                                      "ab",
                                      11),
                          t, one)
                .code(),
            StatusCode::kInvalidData);  // shorter than its length
  EXPECT_EQ(
      append_values(std::string("\x01\x02\x00\x00\x00\x00\x00\x00\x00\xff\xfe", 11), t, one).code(),
      StatusCode::kInvalidData);  // not UTF-8
  EXPECT_EQ(append_values(std::string("\x00\x00", 2), t, one).code(), StatusCode::kInvalidData);
}

TEST(KeyRegistryTest, DecodeKeyRejectsBadBytes) {
  std::vector<Scalar> out;
  const DataType t[] = {columnar::utf8()};
  EXPECT_EQ(KeyRegistry::decode_key(std::string("\x01\x05\x00\x00\x00"
                                                "ab",
                                                7),
                                    t, &out)
                .code(),
            StatusCode::kInvalidData);
  EXPECT_EQ(KeyRegistry::decode_key(std::string("\x02", 1), t, &out).code(),
            StatusCode::kInvalidData);
  EXPECT_EQ(KeyRegistry::decode_key(std::string("\x00\x00", 2), t, &out).code(),
            StatusCode::kInvalidData);  // trailing byte
  EXPECT_TRUE(KeyRegistry::decode_key(std::string("\x00", 1), t, &out).is_ok());
}

TEST_P(KeyedStateTest, StateOfMultiColumnKeysIsPerKey) {
  ManualClock clock;
  auto b = make_backend(&clock, {}, {columnar::utf8(), columnar::int32()});
  auto* v = *b->get_state(ValueStateDescriptor<std::string>{.name = "v"});
  auto batch = *columnar::RecordBatch::make(
      columnar::schema({columnar::field("s", columnar::utf8()),
                        columnar::field("x", columnar::int64()),
                        columnar::field("i", columnar::int32())}),
      {make_column(columnar::utf8(),
                   {Scalar::of_utf8("a"), Scalar::of_utf8("a"), Scalar::of_utf8("b")}, 1),
       int64_array({1, 2, 3}),
       make_column(columnar::int32(),
                   {Scalar::of_int32(1), Scalar::of_int32(2), Scalar::of_int32(1)}, 2)});
  const int cols[] = {0, 2};
  std::vector<KeyId> ids;
  ASSERT_TRUE(b->resolve_keys(batch, cols, &ids).is_ok());
  EXPECT_EQ(ids, (std::vector<KeyId>{0, 1, 2}));
  for (KeyId id : ids) {
    b->set_current_key(id);
    auto kv = b->current_key_values();
    v->update(kv[0].as_string() + std::to_string(kv[1].as_int64()));
  }
  b->set_current_key(ids[1]);
  EXPECT_EQ(v->value(), "a2");
}

TEST_P(PrefetchTest, PrefetchChangesNoStateForKnownUnknownOrNewKeys) {
  ManualClock clock(Timestamp(0));
  auto b = make_backend(&clock);
  auto* small = *b->get_state(ValueStateDescriptor<int64_t>{.name = "small"});
  struct Wide {  // spans several cache lines
    int64_t v[40];
  };
  auto* wide = *b->get_state(ValueStateDescriptor<Wide>{.name = "wide"});
  auto* list = *b->get_state(ListStateDescriptor<int64_t>{.name = "list"});
  const KeyId k1 = key_of(*b, 1);
  const KeyId k2 = key_of(*b, 2);
  b->set_current_key(k1);
  small->update(7);
  Wide w{};
  w.v[39] = 9;
  wide->update(w);
  list->add(3);
  for (KeyId k : {k1, k2, KeyId{1'000'000}}) b->prefetch(k);  // k2 has no entry, 1e6 no key
  EXPECT_EQ(b->num_entries("small"), 1u);
  EXPECT_EQ(b->num_entries("wide"), 1u);
  EXPECT_EQ(b->num_entries("list"), 1u);
  b->set_current_key(k1);
  EXPECT_EQ(small->value(), 7);
  EXPECT_EQ(wide->get()->v[39], 9);
  EXPECT_EQ(list->get().size(), 1u);
  b->set_current_key(k2);
  EXPECT_FALSE(small->value().has_value());
  EXPECT_EQ(wide->get(), nullptr);
  EXPECT_TRUE(list->get().empty());
}

}  // namespace
}  // namespace sabot::state
