// The RocksDB keyed-state backend and its incremental checkpoints; see rocksdb_backend.h and
// docs/state-backends.md.
//
// Layout of an instance: one default column family; a RocksDB key is
//   [u16 big-endian key group][u16 big-endian state id][the key's registry bytes][u64 big-endian
//   namespace]
// so one key group is one contiguous range and one state of a key group a sub-range. The value is
// [i64 write time][StateCodec bytes], the entry of a keyed-state snapshot as is. List appends are
// merge operands (ListAppendOperator) so adding to a list does not read it.

#include "sabot/state/rocksdb_backend.h"

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/merge_operator.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/write_batch.h>
#include <rocksdb/write_buffer_manager.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <unordered_map>
#include <utility>

#include "sabot/columnar/scalar.h"
#include "sabot/state/snapshot.h"
#include "state/keyed_snapshot_format.h"
#include "state/kv_write_cache.h"

namespace sabot::state {

namespace fs = std::filesystem;

namespace {

constexpr size_t kPrefixBytes = 4;  // key group, state id
constexpr size_t kNsBytes = 8;
constexpr std::string_view kManifestName = "MANIFEST.sabot";
constexpr std::string_view kManifestMagic = "SABOT-ROCKSDB-CHECKPOINT-1";

void put_be16(std::string* out, uint16_t v) {
  out->push_back(static_cast<char>(v >> 8));
  out->push_back(static_cast<char>(v & 0xff));
}
void put_be64(std::string* out, uint64_t v) {
  for (int i = 7; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint64_t get_be64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}
std::string range_prefix(uint32_t kg, uint16_t sid) {
  std::string p;
  put_be16(&p, static_cast<uint16_t>(kg));
  put_be16(&p, sid);
  return p;
}
// The first key after every key starting with `prefix` (prefixes here never are all 0xff).
std::string prefix_end(std::string prefix) {
  for (size_t i = prefix.size(); i-- > 0;) {
    if (static_cast<uint8_t>(prefix[i]) != 0xff) {
      prefix[i] = static_cast<char>(static_cast<uint8_t>(prefix[i]) + 1);
      prefix.resize(i + 1);
      return prefix;
    }
  }
  return prefix;
}

Status from_rocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return Status::ok();
  return Status::io_error(std::string(what) + ": RocksDB: " + s.ToString());
}

// Appends a list to a list in place: both are [i64 write_ms][u64 n][n element encodings]; `list`
// gets the larger write time, the summed count and the operand's elements after its own. False
// when either is too short to be a list.
template <typename Bytes>  // std::string, or the write cache's CacheBytes
bool append_list(Bytes* list, std::string_view operand) {
  constexpr size_t kHead = sizeof(int64_t) + sizeof(uint64_t);
  if (list->size() < kHead || operand.size() < kHead) return false;
  int64_t ms_a = 0;
  int64_t ms_b = 0;
  uint64_t n_a = 0;
  uint64_t n_b = 0;
  std::memcpy(&ms_a, list->data(), 8);
  std::memcpy(&n_a, list->data() + 8, 8);
  std::memcpy(&ms_b, operand.data(), 8);
  std::memcpy(&n_b, operand.data() + 8, 8);
  const int64_t ms = std::max(ms_a, ms_b);
  const uint64_t n = n_a + n_b;
  std::memcpy(list->data(), &ms, 8);
  std::memcpy(list->data() + 8, &n, 8);
  list->append(operand.data() + kHead, operand.size() - kHead);
  return true;
}

// RocksDB's side of ListState::add: append_list as an associative merge operator, so RocksDB may
// combine operands before it sees the base value.
class ListAppendOperator final : public rocksdb::AssociativeMergeOperator {
 public:
  bool Merge(const rocksdb::Slice&, const rocksdb::Slice* existing, const rocksdb::Slice& value,
             std::string* out, rocksdb::Logger*) const override {
    if (existing == nullptr) {
      if (value.size() < sizeof(int64_t) + sizeof(uint64_t)) return false;
      out->assign(value.data(), value.size());
      return true;
    }
    out->reserve(existing->size() + value.size());
    out->assign(existing->data(), existing->size());
    return append_list(out, std::string_view(value.data(), value.size()));
  }
  const char* Name() const override { return "sabot.ListAppend"; }
};

std::string sanitize(std::string_view name) {
  std::string out;
  for (char c : name) out.push_back(std::isalnum(static_cast<unsigned char>(c)) ? c : '_');
  if (out.empty()) out = "state";
  if (out.size() > 40) out.resize(40);
  return out;
}

Result<uint64_t> copy_into(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  const fs::path tmp = to.string() + ".tmp";
  fs::copy_file(from, tmp, fs::copy_options::overwrite_existing, ec);
  if (ec) return Status::io_error("copying " + from.string() + ": " + ec.message());
  fs::rename(tmp, to, ec);
  if (ec) return Status::io_error("renaming " + tmp.string() + ": " + ec.message());
  const uint64_t size = fs::file_size(to, ec);
  if (ec) return Status::io_error("size of " + to.string() + ": " + ec.message());
  return size;
}

// MANIFEST.sabot: what a checkpoint of one backend holds.
struct CheckpointManifest {
  uint32_t max_parallelism = 0;
  std::string header;               // write_keyed_header bytes: key types and states
  std::vector<uint16_t> state_ids;  // per state of the header, its id in the instance
  struct File {
    std::string name;         // the file's name in the instance
    std::string shared_name;  // its name under root/shared; empty: in the checkpoint directory
    uint64_t size = 0;
  };
  std::vector<File> files;

  std::string encode() const {
    std::string out;
    ByteWriter w(&out);
    w.put_bytes(kManifestMagic);
    w.put<uint32_t>(max_parallelism);
    w.put_bytes(header);
    w.put<uint64_t>(state_ids.size());
    for (uint16_t id : state_ids) w.put<uint16_t>(id);
    w.put<uint64_t>(files.size());
    for (const File& f : files) {
      w.put_bytes(f.name);
      w.put_bytes(f.shared_name);
      w.put<uint64_t>(f.size);
    }
    return out;
  }
  static Result<CheckpointManifest> read(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return Status::not_found("no checkpoint manifest " + path.string());
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return decode(bytes, path.string());
  }
  static Result<CheckpointManifest> decode(std::string_view bytes, const std::string& what) {
    ByteReader r(bytes, what);
    CheckpointManifest m;
    std::string_view s;
    SABOT_RETURN_IF_ERROR(r.get_bytes(&s));
    if (s != kManifestMagic) return r.invalid("not a Sabot RocksDB checkpoint manifest");
    SABOT_RETURN_IF_ERROR(r.get(&m.max_parallelism));
    SABOT_RETURN_IF_ERROR(r.get_bytes(&s));
    m.header = std::string(s);
    uint64_t n = 0;
    SABOT_RETURN_IF_ERROR(r.get_count(&n, sizeof(uint16_t)));
    m.state_ids.resize(n);
    for (auto& id : m.state_ids) SABOT_RETURN_IF_ERROR(r.get(&id));
    SABOT_RETURN_IF_ERROR(r.get_count(&n, 3 * sizeof(uint64_t)));
    m.files.resize(n);
    for (File& f : m.files) {
      SABOT_RETURN_IF_ERROR(r.get_bytes(&s));
      f.name = std::string(s);
      SABOT_RETURN_IF_ERROR(r.get_bytes(&s));
      f.shared_name = std::string(s);
      SABOT_RETURN_IF_ERROR(r.get(&f.size));
      if (f.name.empty() || f.name.find('/') != std::string::npos ||
          f.shared_name.find('/') != std::string::npos) {
        return r.invalid("bad file name in manifest");
      }
    }
    SABOT_RETURN_IF_ERROR(r.expect_end());
    return m;
  }
};

fs::path checkpoint_dir(const std::string& root, CheckpointId id) {
  return fs::path(root) / ("chk-" + std::to_string(id.value()));
}

}  // namespace

namespace {
// What one live instance holds in memory besides the shared block cache, for memory_usage().
struct InstanceMemory {
  rocksdb::DB* db = nullptr;
  std::atomic<size_t> write_cache_bytes{0};  // published by the instance's thread
};
}  // namespace

struct RocksDbStateBackend::Shared {
  std::shared_ptr<rocksdb::Cache> cache;
  // With a memory budget: the memtables of every instance, charged to `cache`.
  std::shared_ptr<rocksdb::WriteBufferManager> write_buffers;
  std::shared_ptr<rocksdb::MergeOperator> list_append = std::make_shared<ListAppendOperator>();
  std::atomic<uint64_t> instances{0};
  uint64_t process_nonce = 0;
  // With a memory budget: the write caches of all live instances together (each gets an equal
  // share, at most its write_cache_bytes); 0: no shared limit.
  size_t write_cache_pool = 0;
  std::atomic<size_t> live_instances{0};
  mutable std::mutex mu;
  std::set<InstanceMemory*> live;  // guarded by mu

  void add(InstanceMemory* m) {
    std::lock_guard lock(mu);
    live.insert(m);
    live_instances.store(live.size(), std::memory_order_relaxed);
  }
  void remove(InstanceMemory* m) {
    std::lock_guard lock(mu);
    live.erase(m);
    live_instances.store(live.size(), std::memory_order_relaxed);
  }
  // The byte budget of one instance's write cache whose configured size is `configured`.
  size_t write_cache_budget(size_t configured) const {
    if (write_cache_pool == 0 || configured == 0) return configured;
    const size_t n = std::max<size_t>(1, live_instances.load(std::memory_order_relaxed));
    return std::min(configured, write_cache_pool / n);
  }
};

namespace {

class RocksKeyedBackend;

// The bytes of one state: builds the RocksDB key of (key, namespace).
class RocksKvStore final : public internal::KvStore {
 public:
  RocksKvStore(RocksKeyedBackend* backend, uint16_t sid) : backend_(backend), sid_(sid) {}
  bool get(KeyId key, Namespace ns, std::string* value) override;
  void put(KeyId key, Namespace ns, std::string_view value) override;
  void merge_list(KeyId key, Namespace ns, std::string_view operand) override;
  void erase(KeyId key, Namespace ns) override;

 private:
  RocksKeyedBackend* backend_;
  uint16_t sid_;
};

struct RegisteredState {
  StateSpec spec;
  uint16_t sid = 0;
  std::unique_ptr<RocksKvStore> store;
  std::unique_ptr<State> state;
  internal::KvTable* table = nullptr;
};

// A state restored (from a snapshot or checkpoint) whose handle has not been asked for yet; its
// entries are in the instance already and are checked when it is registered.
struct PendingState {
  StateSpec spec;  // name, kind, type tag, TTL; no factories
  uint16_t sid = 0;
};

class LocalCheckpoint final : public RocksDbLocalCheckpoint {
 public:
  LocalCheckpoint(fs::path dir, std::string instance_uid, CheckpointManifest manifest)
      : dir_(std::move(dir)), uid_(std::move(instance_uid)), manifest_(std::move(manifest)) {}
  ~LocalCheckpoint() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  Result<RocksDbCheckpointStore::Stats> upload(RocksDbCheckpointStore& store, CheckpointId id,
                                               const std::string& name, bool incremental) override {
    if (name.empty() || name.find('/') != std::string::npos) {
      return Status::invalid_argument("checkpoint name '" + name + "' must be a file name");
    }
    const fs::path shared = fs::path(store.root()) / "shared";
    const fs::path target = checkpoint_dir(store.root(), id) / name;
    std::error_code ec;
    fs::create_directories(shared, ec);
    if (!ec) fs::create_directories(target, ec);
    if (ec) return Status::io_error("creating " + target.string() + ": " + ec.message());
    RocksDbCheckpointStore::Stats stats;
    CheckpointManifest m = manifest_;
    for (const auto& entry : fs::directory_iterator(dir_, ec)) {
      const std::string fname = entry.path().filename().string();
      CheckpointManifest::File f;
      f.name = fname;
      const bool sst = entry.path().extension() == ".sst";
      if (sst) ++stats.sst_files;
      if (sst && incremental) {
        // The instance uid makes the name unique across instances and processes; RocksDB never
        // reuses a file number within an instance, so an equal name is an equal file.
        f.shared_name = uid_ + "-" + fname;
        const fs::path to = shared / f.shared_name;
        if (fs::exists(to)) {
          f.size = fs::file_size(to, ec);
        } else {
          SABOT_ASSIGN_OR_RETURN(f.size, copy_into(entry.path(), to));
          stats.bytes_copied += f.size;
          ++stats.sst_files_copied;
        }
      } else {
        SABOT_ASSIGN_OR_RETURN(f.size, copy_into(entry.path(), target / fname));
        stats.bytes_copied += f.size;
        if (sst) ++stats.sst_files_copied;
      }
      stats.bytes_total += f.size;
      m.files.push_back(std::move(f));
    }
    if (ec) return Status::io_error("listing " + dir_.string() + ": " + ec.message());
    {
      const fs::path tmp = target / (std::string(kManifestName) + ".tmp");
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      const std::string bytes = m.encode();
      out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
      out.close();
      if (!out) return Status::io_error("writing " + tmp.string());
      fs::rename(tmp, target / kManifestName, ec);
      if (ec) return Status::io_error("renaming " + tmp.string() + ": " + ec.message());
    }
    fs::remove_all(dir_, ec);
    return stats;
  }

  Result<Image> image() const override {
    Image out;
    CheckpointManifest m = manifest_;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir_, ec)) {
      const std::string fname = entry.path().filename().string();
      CheckpointManifest::File f;
      f.name = fname;
      f.size = fs::file_size(entry.path(), ec);
      if (ec) return Status::io_error("size of " + entry.path().string() + ": " + ec.message());
      if (entry.path().extension() == ".sst") {
        f.shared_name = uid_ + "-" + fname;
        out.ssts.push_back({f.shared_name, entry.path().string(), f.size});
      } else {
        std::ifstream in(entry.path(), std::ios::binary);
        std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        if (!in.good() && !in.eof()) return Status::io_error("reading " + entry.path().string());
        f.size = bytes.size();
        out.private_files.emplace_back(fname, std::move(bytes));
      }
      m.files.push_back(std::move(f));
    }
    if (ec) return Status::io_error("listing " + dir_.string() + ": " + ec.message());
    out.manifest = m.encode();
    return out;
  }
  const std::string& local_dir() const override { return dir_str_; }

 private:
  fs::path dir_;
  std::string dir_str_ = dir_.string();
  std::string uid_;
  CheckpointManifest manifest_;
};

class RocksKeyedBackend final : public RocksDbKeyedStateBackend {
 public:
  RocksKeyedBackend(std::unique_ptr<KeyRegistry> keys, const Clock* clock, std::string name,
                    std::string dir, std::string uid, std::unique_ptr<rocksdb::DB> db,
                    std::shared_ptr<RocksDbStateBackend::Shared> shared,
                    rocksdb::Options db_options, bool keep_dir, size_t write_cache_bytes)
      : RocksDbKeyedStateBackend(std::move(keys), clock),
        name_(std::move(name)),
        dir_(std::move(dir)),
        uid_(std::move(uid)),
        db_(std::move(db)),
        shared_(std::move(shared)),
        db_options_(std::move(db_options)),
        keep_dir_(keep_dir),
        cache_(write_cache_bytes) {
    write_.disableWAL = true;  // checkpoints give durability; the instance is scratch space
    memory_.db = db_.get();
    shared_->add(&memory_);
  }
  ~RocksKeyedBackend() override {
    shared_->remove(&memory_);
    states_.clear();
    db_.reset();
    if (!keep_dir_) {
      std::error_code ec;
      fs::remove_all(dir_, ec);
    }
  }

  std::string_view backend_name() const override { return "rocksdb"; }
  const std::string& instance_dir() const override { return dir_; }

  std::vector<std::string> state_names() const override {
    std::vector<std::string> out;
    for (const auto& s : states_) out.push_back(s->spec.name);
    return out;
  }

  rocksdb::DB* db() { return db_.get(); }
  KeyRegistry& registry() { return *keys_; }

  bool fresh(KeyId key) const { return key < fresh_.size() && fresh_[key] != 0; }
  // An entry of `key` is about to reach the instance.
  void mark_stored(KeyId key) const {
    if (key < fresh_.size()) fresh_[key] = 0;
  }

  // The write cache (kv_write_cache.h). Every method that reads the instance other than through
  // a KvStore, or renumbers keys, calls flush_cache() first.
  void flush_cache() const { write_back(0); }
  // Over budget (this instance's share of the memory budget's write-cache pool, when there is
  // one): writes the dirty entries and keeps the hottest half of the cache. Publishes the cache's
  // size for RocksDbStateBackend::memory_usage().
  void flush_cache_if_full() const {
    const size_t budget = shared_->write_cache_budget(cache_.budget_bytes());
    if (cache_.bytes() > budget) write_back(budget / 2);
    memory_.write_cache_bytes.store(cache_.bytes(), std::memory_order_relaxed);
  }
  // Writes the dirty entries of the cache to the instance, then evicts down to keep_bytes.
  void write_back(size_t keep_bytes) const;
  // The RocksDB key of (state, key, namespace), built in a reused buffer.
  const std::string& rocks_key(uint16_t sid, KeyId key, Namespace ns) const;

  size_t purge_expired() override;
  size_t num_entries(std::string_view state_name) const override;
  Result<std::vector<KeyId>> keys_with_state(std::string_view state_name,
                                             Namespace ns) const override;
  Status snapshot_parts(std::span<const KeyGroup> key_groups, SnapshotParts* parts) override;
  Status restore_header(ByteReader& r, RestoreHeader* header) override;
  Status restore_key_group(const RestoreHeader& header, KeyGroup kg, ByteReader& r,
                           std::vector<KeyId>* ids) override;
  Status forget_keys(std::span<const KeyId> pinned, std::vector<KeyId>* remap) override;
  Result<std::unique_ptr<RocksDbLocalCheckpoint>> checkpoint_local() override;
  Status restore_checkpoint(const RocksDbCheckpointStore& store, CheckpointId id,
                            const std::string& name) override;
  Status restore_image(std::string_view manifest,
                       std::span<const std::pair<std::string, std::string>> private_files,
                       const std::string& shared_dir) override;
  // Three steps, a call apart (callers go in row order, kPrefetchAhead rows ahead): the index
  // slots of `key` now, the entries of the key given one call ago, whose slots should have
  // arrived, and the values of the key given two calls ago (long ones live on the heap, one more
  // dependent miss).
  void prefetch(KeyId key) override {
    const KeyId previous = prefetched_[0];
    const KeyId earlier = prefetched_[1];
    prefetched_[1] = previous;
    prefetched_[0] = key;
    for (const auto& s : states_) {
      if (earlier != kNoKey) cache_.prefetch_value({s->sid, earlier, kDefaultNamespace});
      if (previous != kNoKey) cache_.prefetch_entry({s->sid, previous, kDefaultNamespace});
      cache_.prefetch({s->sid, key, kDefaultNamespace});
    }
  }
  uint64_t live_sst_bytes() const override {
    flush_cache();
    std::vector<rocksdb::LiveFileMetaData> files;
    db_->GetLiveFilesMetaData(&files);
    uint64_t n = 0;
    for (const auto& f : files) n += f.size;
    return n;
  }

 protected:
  Result<State*> get_or_create_state(StateSpec spec) override;
  void on_new_keys(KeyId first, KeyId end) override {
    fresh_.resize(first, 0);
    fresh_.resize(end, 1);
  }

 private:
  const RegisteredState* find_state(std::string_view name) const {
    for (const auto& s : states_) {
      if (s->spec.name == name) return s.get();
    }
    return nullptr;
  }
  // Calls fn(key bytes, namespace, stored value) for every entry of state `sid` in the owned key
  // groups, in key order; fn returns false to stop.
  template <typename Fn>
  void scan_state(uint16_t sid, Fn&& fn) const {
    for (const KeyGroup kg : keys_->owned_key_groups()) {
      if (!scan_range(range_prefix(static_cast<uint32_t>(kg.value()), sid), fn)) return;
    }
  }
  template <typename Fn>
  bool scan_range(const std::string& prefix, Fn&& fn) const {
    const std::string end = prefix_end(prefix);
    rocksdb::Slice upper(end);
    rocksdb::ReadOptions ro;
    ro.iterate_upper_bound = &upper;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
    for (it->Seek(prefix); it->Valid(); it->Next()) {
      const rocksdb::Slice k = it->key();
      SABOT_CHECK_GE(k.size(), kPrefixBytes + kNsBytes);
      const std::string_view kb(k.data() + kPrefixBytes, k.size() - kPrefixBytes - kNsBytes);
      const Namespace ns = get_be64(k.data() + k.size() - kNsBytes);
      if (!fn(k, kb, ns, std::string_view(it->value().data(), it->value().size()))) return false;
    }
    SABOT_CHECK_OK(from_rocks(it->status(), name_));
    return true;
  }
  bool expired_entry(const StateSpec& spec, std::string_view value, int64_t now) const {
    const int64_t ttl = spec.options.ttl.count();
    return ttl > 0 && internal::kv_expired(ttl, internal::kv_write_ms(value), now);
  }
  // The KeyId of registry key bytes (registering the key if the registry forgot it).
  Result<KeyId> key_id_of(std::string_view key_bytes) const {
    std::vector<columnar::Scalar> values;
    SABOT_RETURN_IF_ERROR(KeyRegistry::decode_key(key_bytes, keys_->key_types(), &values));
    return keys_->resolve_values(values);
  }
  // Copies the owned key groups of the checkpoint materialized in `tmp` (described by `m`) in.
  Status restore_materialized(const CheckpointManifest& m, const fs::path& tmp,
                              const std::string& what);
  // Checks and adopts the description `h` of a restored state: the id of its entries in this
  // instance (a registered state's, a pending one's, or a new pending one).
  Result<uint16_t> adopt_state(const RestoreHeader::StateHeader& h, std::string_view what);
  Status check_pending_entries(const RegisteredState& reg);

  std::string name_;
  std::string dir_;
  std::string uid_;
  std::unique_ptr<rocksdb::DB> db_;
  std::shared_ptr<RocksDbStateBackend::Shared> shared_;
  mutable InstanceMemory memory_;
  KeyId prefetched_[2] = {kNoKey, kNoKey};  // prefetch(): the last key given, the one before
  rocksdb::Options db_options_;
  bool keep_dir_;
  rocksdb::WriteOptions write_;
  std::vector<std::unique_ptr<RegisteredState>> states_;
  std::map<std::string, PendingState, std::less<>> pending_;
  uint16_t next_sid_ = 0;
  uint64_t local_checkpoints_ = 0;
  mutable internal::KvWriteCache cache_;
  mutable std::string key_;  // rocks_key's buffer
  // fresh_[k] != 0: key k was new to the registry when a batch resolved it and nothing of it has
  // been written to the instance since, so it has no entry there and a read needs no RocksDB Get
  // (the first read of every new key, most reads when ingesting distinct keys). Holds because
  // every key with an entry in the instance is registered (forget_keys keeps those; restores
  // register what they add, and clear this). Keys past the end are not fresh.
  mutable std::vector<uint8_t> fresh_;

  friend class RocksKvStore;
};

const std::string& RocksKeyedBackend::rocks_key(uint16_t sid, KeyId key, Namespace ns) const {
  key_.clear();
  put_be16(&key_, static_cast<uint16_t>(keys_->key_group(key).value()));
  put_be16(&key_, sid);
  key_.append(keys_->key_bytes(key));
  put_be64(&key_, ns);
  return key_;
}

void RocksKeyedBackend::write_back(size_t keep_bytes) const {
  if (cache_.size() == 0) return;
  // The batch goes in RocksDB key order: the memtable's skip list inserts a run of increasing keys
  // next to the previous insert instead of searching from the top for each (measured: a flush of
  // 300K new keys in hash order spent most of its time in that search).
  struct Dirty {
    uint32_t offset;
    uint32_t size;
    const internal::KvWriteCache::Entry* entry;
  };
  std::string keys;
  std::vector<Dirty> dirty;
  dirty.reserve(cache_.size());
  cache_.for_each_dirty([&](const internal::KvWriteCache::Key& k,
                            const internal::KvWriteCache::Entry& e) {
    const std::string& key = rocks_key(k.sid, k.key, k.ns);
    dirty.push_back({static_cast<uint32_t>(keys.size()), static_cast<uint32_t>(key.size()), &e});
    keys.append(key);
    mark_stored(k.key);
  });
  const auto view = [&](const Dirty& d) { return std::string_view(keys).substr(d.offset, d.size); };
  std::sort(dirty.begin(), dirty.end(),
            [&](const Dirty& a, const Dirty& b) { return view(a) < view(b); });
  rocksdb::WriteBatch batch;
  for (const Dirty& d : dirty) {
    const rocksdb::Slice key(keys.data() + d.offset, d.size);
    if (d.entry->appends) {
      batch.Merge(key, rocksdb::Slice(d.entry->value.data(), d.entry->value.size()));
    } else if (d.entry->present) {
      batch.Put(key, rocksdb::Slice(d.entry->value.data(), d.entry->value.size()));
    } else {
      batch.Delete(key);
    }
  }
  SABOT_CHECK_OK(from_rocks(db_->Write(write_, &batch), name_));
  cache_.written_back(keep_bytes);
  memory_.write_cache_bytes.store(cache_.bytes(), std::memory_order_relaxed);
}

bool RocksKvStore::get(KeyId key, Namespace ns, std::string* value) {
  internal::KvWriteCache& cache = backend_->cache_;
  const internal::KvWriteCache::Key k{sid_, key, ns};
  if (internal::KvWriteCache::Entry* e = cache.find(k)) {
    if (!e->present) return false;
    if (e->appends) {
      // Appends not written yet: the list is the store's (if any) followed by them.
      std::string stored;
      const rocksdb::Status s =
          backend_->db()->Get(rocksdb::ReadOptions(), backend_->rocks_key(sid_, key, ns), &stored);
      if (!s.IsNotFound()) {
        SABOT_CHECK_OK(from_rocks(s, backend_->name_));
        cache.update(e, [&](internal::KvWriteCache::Entry& entry) {
          SABOT_CHECK(append_list(&stored, entry.value.view()));
          entry.value.assign(stored);
          entry.appends = false;
        });
      } else {
        cache.update(e, [](internal::KvWriteCache::Entry& entry) { entry.appends = false; });
      }
    }
    value->assign(e->value.view());
    // Also on hits: an instance whose share shrank (another one opened) gives the memory back
    // even if it only reads cached entries from now on.
    backend_->flush_cache_if_full();
    return true;
  }
  if (backend_->fresh(key)) return false;
  const rocksdb::Status s =
      backend_->db()->Get(rocksdb::ReadOptions(), backend_->rocks_key(sid_, key, ns), value);
  const bool found = !s.IsNotFound();
  if (found) SABOT_CHECK_OK(from_rocks(s, backend_->name_));
  if (cache.enabled()) {
    cache.set(k, found, found ? std::string_view(*value) : std::string_view(), /*dirty=*/false);
    backend_->flush_cache_if_full();
  }
  return found;
}
void RocksKvStore::put(KeyId key, Namespace ns, std::string_view value) {
  internal::KvWriteCache& cache = backend_->cache_;
  if (cache.enabled()) {
    cache.set({sid_, key, ns}, true, value, /*dirty=*/true);
    backend_->flush_cache_if_full();
    return;
  }
  backend_->mark_stored(key);
  SABOT_CHECK_OK(
      from_rocks(backend_->db()->Put(backend_->write_, backend_->rocks_key(sid_, key, ns),
                                     rocksdb::Slice(value.data(), value.size())),
                 backend_->name_));
}
void RocksKvStore::merge_list(KeyId key, Namespace ns, std::string_view operand) {
  internal::KvWriteCache& cache = backend_->cache_;
  // A cached list (or cached appends) is appended to in the cache. An uncached one becomes
  // cached appends, written as one merge operand at the next flush, without a read; when the
  // store cannot hold the key (fresh), the appended elements are the whole list.
  if (internal::KvWriteCache::Entry* e = cache.find({sid_, key, ns})) {
    cache.update(e, [&](internal::KvWriteCache::Entry& entry) {
      if (entry.present) {
        SABOT_CHECK(append_list(&entry.value, operand));
      } else {
        entry.value.assign(operand);
      }
    });
    backend_->flush_cache_if_full();
    return;
  }
  if (cache.enabled()) {
    internal::KvWriteCache::Entry* e = cache.set({sid_, key, ns}, true, operand, /*dirty=*/true);
    e->appends = !backend_->fresh(key);
    backend_->flush_cache_if_full();
    return;
  }
  backend_->mark_stored(key);
  SABOT_CHECK_OK(
      from_rocks(backend_->db()->Merge(backend_->write_, backend_->rocks_key(sid_, key, ns),
                                       rocksdb::Slice(operand.data(), operand.size())),
                 backend_->name_));
}
void RocksKvStore::erase(KeyId key, Namespace ns) {
  internal::KvWriteCache& cache = backend_->cache_;
  if (cache.enabled()) {
    cache.set({sid_, key, ns}, false, {}, /*dirty=*/true);
    backend_->flush_cache_if_full();
    return;
  }
  backend_->mark_stored(key);
  SABOT_CHECK_OK(
      from_rocks(backend_->db()->Delete(backend_->write_, backend_->rocks_key(sid_, key, ns)),
                 backend_->name_));
}

Status RocksKeyedBackend::check_pending_entries(const RegisteredState& reg) {
  flush_cache();
  Status bad = Status::ok();
  scan_state(reg.sid,
             [&](const rocksdb::Slice&, std::string_view, Namespace, std::string_view value) {
               if (value.size() < sizeof(int64_t)) {
                 bad = Status::invalid_data("value without write time");
                 return false;
               }
               bad = reg.table->check_value(value.substr(sizeof(int64_t)));
               return bad.is_ok();
             });
  if (!bad.is_ok()) {
    return Status::invalid_data(name_ + ": restoring state '" + reg.spec.name +
                                "': " + bad.message());
  }
  return Status::ok();
}

Result<State*> RocksKeyedBackend::get_or_create_state(StateSpec spec) {
  if (spec.name.empty()) return Status::invalid_argument(name_ + ": state name is empty");
  for (auto& s : states_) {
    if (s->spec.name != spec.name) continue;
    SABOT_RETURN_IF_ERROR(
        internal::check_same_state(s->spec, spec.kind, spec.type_tag, "it is now asked for as")
            .with_context(name_));
    if (s->spec.options.ttl != spec.options.ttl ||
        s->spec.options.refresh_on_read != spec.options.refresh_on_read) {
      return Status::invalid_argument(name_ + ": state '" + spec.name +
                                      "' is asked for again with different StateOptions");
    }
    return s->state.get();
  }
  auto reg = std::make_unique<RegisteredState>();
  auto it = pending_.find(spec.name);
  if (it != pending_.end()) {
    SABOT_RETURN_IF_ERROR(internal::check_same_state(spec, it->second.spec.kind,
                                                     it->second.spec.type_tag,
                                                     "the restored snapshot holds it as")
                              .with_context(name_));
    reg->sid = it->second.sid;
  } else {
    if (next_sid_ == UINT16_MAX) return Status::invalid_argument(name_ + ": too many states");
    reg->sid = next_sid_++;
  }
  reg->store = std::make_unique<RocksKvStore>(this, reg->sid);
  StateSpec::MadeKv made = spec.make_kv(&ctx_, reg->store.get());
  reg->state = std::move(made.state);
  reg->table = made.table;
  reg->spec = std::move(spec);
  if (it != pending_.end()) {
    SABOT_RETURN_IF_ERROR(check_pending_entries(*reg));
    pending_.erase(it);
  }
  states_.push_back(std::move(reg));
  return states_.back()->state.get();
}

size_t RocksKeyedBackend::purge_expired() {
  refresh_time();
  if (std::none_of(states_.begin(), states_.end(),
                   [](const auto& s) { return s->spec.options.ttl.count() > 0; })) {
    return 0;  // and the cache stays as it is
  }
  flush_cache();
  const int64_t now = ctx_.now_ms;
  size_t n = 0;
  for (const auto& s : states_) {
    if (s->spec.options.ttl.count() <= 0) continue;
    rocksdb::WriteBatch batch;
    scan_state(s->sid,
               [&](const rocksdb::Slice& key, std::string_view, Namespace, std::string_view value) {
                 if (expired_entry(s->spec, value, now)) {
                   batch.Delete(key);
                   ++n;
                   return true;
                 }
                 std::string v(value);
                 size_t removed = 0;
                 const bool empty = s->table->purge_inside(&v, now, &removed);
                 if (empty) {
                   batch.Delete(key);
                   ++n;
                 } else if (removed > 0) {
                   batch.Put(key, v);
                 }
                 n += removed;
                 return true;
               });
    SABOT_CHECK_OK(from_rocks(db_->Write(write_, &batch), name_));
  }
  return n;
}

size_t RocksKeyedBackend::num_entries(std::string_view state_name) const {
  flush_cache();
  const RegisteredState* s = find_state(state_name);
  if (s == nullptr) return 0;
  size_t n = 0;
  scan_state(s->sid, [&](const rocksdb::Slice&, std::string_view, Namespace, std::string_view) {
    ++n;
    return true;
  });
  return n;
}

Result<std::vector<KeyId>> RocksKeyedBackend::keys_with_state(std::string_view state_name,
                                                              Namespace ns) const {
  flush_cache();
  const RegisteredState* s = find_state(state_name);
  if (s == nullptr) {
    return Status::not_found(name_ + ": no state named '" + std::string(state_name) + "'");
  }
  std::vector<KeyId> out;
  Status st = Status::ok();
  const int64_t now = ctx_.now_ms;
  scan_state(s->sid, [&](const rocksdb::Slice&, std::string_view kb, Namespace entry_ns,
                         std::string_view value) {
    if (entry_ns != ns || expired_entry(s->spec, value, now)) return true;
    Result<KeyId> id = key_id_of(kb);
    if (!id.is_ok()) {
      st = id.status();
      return false;
    }
    out.push_back(*id);
    return true;
  });
  SABOT_RETURN_IF_ERROR(st);
  std::sort(out.begin(), out.end());
  return out;
}

Status RocksKeyedBackend::snapshot_parts(std::span<const KeyGroup> key_groups,
                                         SnapshotParts* parts) {
  flush_cache();
  KeyRegistry& reg = *keys_;
  const uint32_t maxp = reg.max_parallelism();
  std::vector<int32_t> bucket_of_kg(maxp, -1);
  for (size_t b = 0; b < key_groups.size(); ++b) {
    const KeyGroup kg = key_groups[b];
    if (!reg.owns(kg)) {
      return Status::invalid_argument(name_ + ": cannot snapshot key group " +
                                      std::to_string(kg.value()) + ": not owned by this backend");
    }
    if (bucket_of_kg[static_cast<size_t>(kg.value())] >= 0) {
      return Status::invalid_argument(name_ + ": key group " + std::to_string(kg.value()) +
                                      " listed twice for snapshot");
    }
    bucket_of_kg[static_cast<size_t>(kg.value())] = static_cast<int32_t>(b);
  }
  // Every registered key of a snapshotted key group is listed (as the memory backend does), so
  // that an operator's own per-key data (timers) can name keys without state.
  std::vector<std::vector<KeyId>> bucket_keys(key_groups.size());
  for (KeyId k = 0; k < reg.num_keys(); ++k) {
    const int32_t b = bucket_of_kg[static_cast<size_t>(reg.key_group(k).value())];
    if (b >= 0) bucket_keys[static_cast<size_t>(b)].push_back(k);
  }
  refresh_time();
  const int64_t now = ctx_.now_ms;

  // Registered states, then restored ones nobody has asked for yet: their entries are in the
  // instance as bytes, so they are kept (and a tool reading a checkpoint sees every state).
  std::vector<const StateSpec*> specs;
  std::vector<uint16_t> sids;
  for (const auto& st : states_) {
    specs.push_back(&st->spec);
    sids.push_back(st->sid);
  }
  for (const auto& [name, p] : pending_) {
    specs.push_back(&p.spec);
    sids.push_back(p.sid);
  }
  internal::write_keyed_header(reg, specs, &parts->header);

  std::vector<size_t> order(key_groups.size());
  for (size_t b = 0; b < order.size(); ++b) order[b] = b;
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return key_groups[a].value() < key_groups[b].value(); });
  parts->key_groups.clear();
  parts->payloads.clear();
  parts->keys.clear();
  std::unordered_map<std::string_view, uint32_t> index_of;
  std::vector<std::string> entries(specs.size());
  std::vector<uint64_t> counts(specs.size());
  for (size_t b : order) {
    const std::vector<KeyId>& keys = bucket_keys[b];
    if (keys.empty()) continue;
    const uint32_t kg = static_cast<uint32_t>(key_groups[b].value());
    index_of.clear();
    for (uint32_t i = 0; i < keys.size(); ++i) index_of.emplace(reg.key_bytes(keys[i]), i);
    Status missing = Status::ok();
    for (size_t s = 0; s < specs.size(); ++s) {
      entries[s].clear();
      counts[s] = 0;
      ByteWriter w(&entries[s]);
      scan_range(range_prefix(kg, sids[s]), [&](const rocksdb::Slice&, std::string_view kb,
                                                Namespace ns, std::string_view value) {
        if (expired_entry(*specs[s], value, now)) return true;
        auto it = index_of.find(kb);
        if (it == index_of.end()) {
          missing = Status::internal(name_ + ": an entry's key is not registered");
          return false;
        }
        w.put<uint32_t>(it->second);
        w.put<uint64_t>(ns);
        w.put<int64_t>(internal::kv_write_ms(value));
        w.put_bytes(value.substr(sizeof(int64_t)));
        ++counts[s];
        return true;
      });
      SABOT_RETURN_IF_ERROR(missing);
    }
    parts->key_groups.push_back(key_groups[b]);
    std::string& payload = parts->payloads.emplace_back();
    ByteWriter w(&payload);
    w.put<uint64_t>(keys.size());
    for (KeyId k : keys) w.put_bytes(reg.key_bytes(k));
    for (size_t s = 0; s < specs.size(); ++s) {
      w.put<uint64_t>(counts[s]);
      w.put_raw(entries[s].data(), entries[s].size());
    }
    parts->keys.push_back(keys);
  }
  return Status::ok();
}

Result<uint16_t> RocksKeyedBackend::adopt_state(const RestoreHeader::StateHeader& h,
                                                std::string_view what) {
  if (const RegisteredState* target = find_state(h.name)) {
    SABOT_RETURN_IF_ERROR(
        internal::check_same_state(target->spec, h.kind, h.type_tag, "the snapshot holds it as")
            .with_context(std::string(what)));
    return target->sid;
  }
  auto it = pending_.find(h.name);
  if (it != pending_.end()) {
    if (it->second.spec.kind != h.kind || it->second.spec.type_tag != h.type_tag) {
      return Status::invalid_data(
          std::string(what) + ": state '" + h.name +
          "' has another kind or type than in an earlier restored snapshot");
    }
    return it->second.sid;
  }
  if (next_sid_ == UINT16_MAX) return Status::invalid_argument(name_ + ": too many states");
  PendingState p;
  p.spec.name = h.name;
  p.spec.kind = h.kind;
  p.spec.type_tag = h.type_tag;
  p.spec.options.ttl = std::chrono::milliseconds(h.ttl_ms);
  p.sid = next_sid_++;
  const uint16_t sid = p.sid;
  pending_.emplace(h.name, std::move(p));
  return sid;
}

Status RocksKeyedBackend::restore_header(ByteReader& r, RestoreHeader* out) {
  flush_cache();
  fresh_.clear();  // restored entries may belong to keys registered before
  return internal::read_keyed_header(
      r, *keys_,
      [&](const RestoreHeader::StateHeader& h) -> Status {
        if (const RegisteredState* target = find_state(h.name)) {
          return internal::check_same_state(target->spec, h.kind, h.type_tag,
                                            "the snapshot holds it as")
              .with_context(std::string(r.what()));
        }
        auto it = pending_.find(h.name);
        if (it != pending_.end() &&
            (it->second.spec.kind != h.kind || it->second.spec.type_tag != h.type_tag)) {
          return r.invalid("state '" + h.name +
                           "' has another kind or type than in an earlier restored snapshot");
        }
        return Status::ok();
      },
      out);
}

Status RocksKeyedBackend::restore_key_group(const RestoreHeader& header, KeyGroup kg, ByteReader& r,
                                            std::vector<KeyId>* ids) {
  flush_cache();
  fresh_.clear();
  KeyRegistry& reg = *keys_;
  if (!reg.owns(kg)) {
    return Status::invalid_argument(name_ + ": cannot restore key group " +
                                    std::to_string(kg.value()) + ": not owned by this backend");
  }
  SABOT_RETURN_IF_ERROR(internal::read_key_list(r, reg, kg, ids));
  rocksdb::WriteBatch batch;
  std::string key;
  std::string value;
  for (const auto& h : header.states) {
    SABOT_ASSIGN_OR_RETURN(const uint16_t sid, adopt_state(h, r.what()));
    const RegisteredState* target = find_state(h.name);
    SABOT_RETURN_IF_ERROR(internal::read_entries(
        r, h.name, *ids,
        [&](KeyId k, uint64_t ns, int64_t write_ms, std::string_view v, size_t value_at) -> Status {
          if (target != nullptr) {
            Status st = target->table->check_value(v);
            if (!st.is_ok()) {
              return Status::invalid_data(std::string(r.what()) + ": state '" + h.name +
                                          "': value at byte " + std::to_string(value_at) +
                                          " does not decode: " + st.message());
            }
          }
          key = range_prefix(static_cast<uint32_t>(kg.value()), sid);
          key.append(reg.key_bytes(k));
          put_be64(&key, ns);
          value.clear();
          value.append(reinterpret_cast<const char*>(&write_ms), sizeof write_ms);
          value.append(v);
          batch.Put(key, value);
          return Status::ok();
        }));
  }
  return from_rocks(db_->Write(write_, &batch), name_);
}

Status RocksKeyedBackend::forget_keys(std::span<const KeyId> pinned, std::vector<KeyId>* remap) {
  purge_expired();
  KeyRegistry& reg = *keys_;
  const uint32_t n = reg.num_keys();
  std::vector<uint8_t> live(n, 0);
  for (KeyId k : pinned) {
    SABOT_CHECK_LT(k, n);
    live[k] = 1;
  }
  // A key with a present cached entry (appends included) has state. A fresh key without one has
  // none: nothing of it ever reached the instance. Only the other keys need the instance scanned,
  // and there are none when every key is pinned (keyed windows: every key with panes has a timer)
  // or, typically, when this pass comes before the cache first wrote back (a job that has just
  // met its first 64K keys): then the pass costs no write-back and no scan.
  cache_.for_each(
      [&](const internal::KvWriteCache::Key& k, const internal::KvWriteCache::Entry& e) {
        SABOT_CHECK_LT(k.key, n);
        if (e.present) live[k.key] = 1;
      });
  bool scan = false;
  for (KeyId k = 0; k < n && !scan; ++k) scan = live[k] == 0 && !fresh(k);
  if (scan) {
    // The scan below must see every write; the cached entries stay (clean) unless keys are
    // renumbered, so a pass that forgets nothing does not cost the job its cache.
    write_back(cache_.budget_bytes());
    std::unordered_map<std::string_view, KeyId> id_of;
    id_of.reserve(n);
    for (KeyId k = 0; k < n; ++k) id_of.emplace(reg.key_bytes(k), k);
    rocksdb::ReadOptions ro;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      const rocksdb::Slice k = it->key();
      const std::string_view kb(k.data() + kPrefixBytes, k.size() - kPrefixBytes - kNsBytes);
      auto f = id_of.find(kb);
      if (f != id_of.end()) live[f->second] = 1;
    }
    SABOT_RETURN_IF_ERROR(from_rocks(it->status(), name_));
  }
  std::vector<KeyId> keep;
  remap->assign(n, kNoKey);
  for (KeyId k = 0; k < n; ++k) {
    if (!live[k]) continue;
    (*remap)[k] = static_cast<KeyId>(keep.size());
    if (keep.size() < fresh_.size()) fresh_[keep.size()] = fresh(k) ? 1 : 0;  // in place: <= k
    keep.push_back(k);
  }
  fresh_.resize(std::min(fresh_.size(), keep.size()));
  // Next time when the registry doubled; quadrupled when this pass forgot almost nothing (a job
  // whose keys all hold state: each pass is a scan of the whole instance).
  const uint32_t growth = keep.size() * 8 >= uint64_t{n} * 7 ? 4 : 2;
  forget_at_ = std::max<uint32_t>(kMinKeysToForget, growth * static_cast<uint32_t>(keep.size()));
  ctx_.key = kNoKey;
  if (keep.size() == n) return Status::ok();
  // The instance is keyed by key bytes, not KeyIds: only the registry and the cache (keyed by
  // KeyId) change. The cache's entries of forgotten keys are erasures only, and each is either
  // written back already (the scan above) or of a fresh key, which the instance does not hold.
  cache_.renumber(*remap);
  return reg.retain_only(keep);
}

Result<std::unique_ptr<RocksDbLocalCheckpoint>> RocksKeyedBackend::checkpoint_local() {
  flush_cache();
  rocksdb::FlushOptions fo;
  fo.wait = true;
  SABOT_RETURN_IF_ERROR(from_rocks(db_->Flush(fo), name_ + ": flushing for a checkpoint"));
  rocksdb::Checkpoint* raw = nullptr;
  SABOT_RETURN_IF_ERROR(from_rocks(rocksdb::Checkpoint::Create(db_.get(), &raw), name_));
  std::unique_ptr<rocksdb::Checkpoint> cp(raw);
  const fs::path local = dir_ + ".chk-" + std::to_string(local_checkpoints_++);
  std::error_code ec;
  fs::remove_all(local, ec);
  SABOT_RETURN_IF_ERROR(
      from_rocks(cp->CreateCheckpoint(local.string()), name_ + ": taking a RocksDB checkpoint"));
  CheckpointManifest m;
  m.max_parallelism = keys_->max_parallelism();
  std::vector<const StateSpec*> specs;
  for (const auto& s : states_) {
    specs.push_back(&s->spec);
    m.state_ids.push_back(s->sid);
  }
  for (const auto& [name, p] : pending_) {
    specs.push_back(&p.spec);
    m.state_ids.push_back(p.sid);
  }
  internal::write_keyed_header(*keys_, specs, &m.header);
  return std::unique_ptr<RocksDbLocalCheckpoint>(new LocalCheckpoint(local, uid_, std::move(m)));
}

Status RocksKeyedBackend::restore_checkpoint(const RocksDbCheckpointStore& store, CheckpointId id,
                                             const std::string& name) {
  flush_cache();
  const fs::path dir = checkpoint_dir(store.root(), id) / name;
  SABOT_ASSIGN_OR_RETURN(CheckpointManifest m, CheckpointManifest::read(dir / kManifestName));
  const std::string what = "checkpoint " + dir.string();
  // Materialize the checkpoint as a RocksDB directory (hard links where possible), open it read
  // only and copy the owned key groups' ranges in; the rest is dropped with the directory.
  const fs::path tmp = dir_ + ".restore-" + std::to_string(local_checkpoints_++);
  std::error_code ec;
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  if (ec) return Status::io_error("creating " + tmp.string() + ": " + ec.message());
  struct Cleanup {
    fs::path p;
    ~Cleanup() {
      std::error_code e;
      fs::remove_all(p, e);
    }
  } cleanup{tmp};
  for (const auto& f : m.files) {
    const fs::path from =
        f.shared_name.empty() ? dir / f.name : fs::path(store.root()) / "shared" / f.shared_name;
    fs::create_hard_link(from, tmp / f.name, ec);
    if (ec) {
      ec.clear();
      fs::copy_file(from, tmp / f.name, ec);
      if (ec) return Status::io_error(what + ": " + from.string() + ": " + ec.message());
    }
  }
  return restore_materialized(m, tmp, what);
}

Status RocksKeyedBackend::restore_image(
    std::string_view manifest, std::span<const std::pair<std::string, std::string>> private_files,
    const std::string& shared_dir) {
  const std::string what = name_ + ": restoring a RocksDB checkpoint";
  CheckpointManifest m;
  {
    // CheckpointManifest::read takes a path; decode through a scratch file would be wasteful:
    // parse in memory by the same code.
    SABOT_ASSIGN_OR_RETURN(m, CheckpointManifest::decode(manifest, what));
  }
  const fs::path tmp = dir_ + ".restore-" + std::to_string(local_checkpoints_++);
  std::error_code ec;
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  if (ec) return Status::io_error("creating " + tmp.string() + ": " + ec.message());
  struct Cleanup {
    fs::path p;
    ~Cleanup() {
      std::error_code e;
      fs::remove_all(p, e);
    }
  } cleanup{tmp};
  for (const auto& f : m.files) {
    if (f.shared_name.empty()) {
      const std::string* bytes = nullptr;
      for (const auto& [n, b] : private_files) {
        if (n == f.name) bytes = &b;
      }
      if (bytes == nullptr) {
        return Status::invalid_data(what + ": the snapshot lacks the checkpoint's file '" + f.name +
                                    "'");
      }
      std::ofstream out(tmp / f.name, std::ios::binary | std::ios::trunc);
      out.write(bytes->data(), static_cast<std::streamsize>(bytes->size()));
      out.close();
      if (!out) return Status::io_error(what + ": writing " + (tmp / f.name).string());
      continue;
    }
    const fs::path from = fs::path(shared_dir) / f.shared_name;
    fs::create_hard_link(from, tmp / f.name, ec);
    if (ec) {
      ec.clear();
      fs::copy_file(from, tmp / f.name, ec);
      if (ec)
        return Status::io_error(what + ": shared file " + from.string() + ": " + ec.message());
    }
  }
  return restore_materialized(m, tmp, what);
}

Status RocksKeyedBackend::restore_materialized(const CheckpointManifest& m, const fs::path& tmp,
                                               const std::string& what) {
  fresh_.clear();  // restored entries may belong to keys registered before
  if (m.max_parallelism != keys_->max_parallelism()) {
    return Status::invalid_argument(what + " has max parallelism " +
                                    std::to_string(m.max_parallelism) + ", the backend " +
                                    std::to_string(keys_->max_parallelism()));
  }
  RestoreHeader header;
  ByteReader hr(m.header, what);
  SABOT_RETURN_IF_ERROR(restore_header(hr, &header));
  if (header.states.size() != m.state_ids.size()) {
    return Status::invalid_data(what + ": manifest lists " + std::to_string(m.state_ids.size()) +
                                " state ids for " + std::to_string(header.states.size()) +
                                " states");
  }
  rocksdb::Options ro_opts = db_options_;
  ro_opts.create_if_missing = false;
  rocksdb::DB* raw = nullptr;
  SABOT_RETURN_IF_ERROR(
      from_rocks(rocksdb::DB::OpenForReadOnly(ro_opts, tmp.string(), &raw), what));
  std::unique_ptr<rocksdb::DB> src(raw);
  std::string key;
  for (size_t s = 0; s < header.states.size(); ++s) {
    SABOT_ASSIGN_OR_RETURN(const uint16_t sid, adopt_state(header.states[s], what));
    const RegisteredState* target = find_state(header.states[s].name);
    for (const KeyGroup kg : keys_->owned_key_groups()) {
      const std::string prefix = range_prefix(static_cast<uint32_t>(kg.value()), m.state_ids[s]);
      const std::string end = prefix_end(prefix);
      rocksdb::Slice upper(end);
      rocksdb::ReadOptions rdo;
      rdo.iterate_upper_bound = &upper;
      std::unique_ptr<rocksdb::Iterator> it(src->NewIterator(rdo));
      rocksdb::WriteBatch batch;
      for (it->Seek(prefix); it->Valid(); it->Next()) {
        const rocksdb::Slice k = it->key();
        const rocksdb::Slice v = it->value();
        if (k.size() < kPrefixBytes + kNsBytes || v.size() < sizeof(int64_t)) {
          return Status::invalid_data(what + ": malformed entry");
        }
        const std::string_view kb(k.data() + kPrefixBytes, k.size() - kPrefixBytes - kNsBytes);
        SABOT_ASSIGN_OR_RETURN(const KeyId kid, key_id_of(kb));
        if (keys_->key_group(kid) != kg) {
          return Status::invalid_data(what + ": a key stored in key group " +
                                      std::to_string(kg.value()) + " hashes elsewhere");
        }
        if (target != nullptr) {
          Status st = target->table->check_value(std::string_view(v.data(), v.size()).substr(8));
          if (!st.is_ok()) return Status::invalid_data(what + ": " + st.message());
        }
        key = range_prefix(static_cast<uint32_t>(kg.value()), sid);
        key.append(kb);
        key.append(k.data() + k.size() - kNsBytes, kNsBytes);
        batch.Put(key, v);
      }
      SABOT_RETURN_IF_ERROR(from_rocks(it->status(), what));
      SABOT_RETURN_IF_ERROR(from_rocks(db_->Write(write_, &batch), name_));
    }
  }
  return Status::ok();
}

}  // namespace

RocksDbKeyedStateBackend* as_rocksdb(KeyedStateBackend* backend) {
  if (backend == nullptr || backend->backend_name() != "rocksdb") return nullptr;
  return static_cast<RocksDbKeyedStateBackend*>(backend);
}

namespace {

constexpr size_t kMinMemoryBudget = size_t{4} << 20;

// How a memory budget is divided: a quarter for the write caches of all instances, the rest for
// the block cache, to which the memtables are charged up to half of it. Without a budget: the
// configured block cache, memtables and write caches, unshared.
struct BudgetSplit {
  size_t block_cache = 0;
  size_t memtables = 0;         // 0: not charged to the cache
  size_t write_cache_pool = 0;  // 0: each instance its write_cache_bytes
  size_t write_buffer = 0;      // each instance's memtable size
};
BudgetSplit budget_split(const RocksDbOptions& o) {
  BudgetSplit s;
  s.write_buffer = o.write_buffer_bytes;
  if (o.memory_budget_bytes == 0) {
    s.block_cache = o.block_cache_bytes;
    return s;
  }
  s.write_cache_pool = o.write_cache_bytes == 0 ? 0 : o.memory_budget_bytes / 4;
  s.block_cache = o.memory_budget_bytes - s.write_cache_pool;
  s.memtables = s.block_cache / 2;
  // A memtable allocates its arena in blocks of an eighth of its size, charged as allocated: with
  // several instances, full-size memtables could reserve the whole share before holding anything.
  s.write_buffer = std::clamp(s.memtables / 8, size_t{64} << 10, o.write_buffer_bytes);
  return s;
}

}  // namespace

RocksDbStateBackend::RocksDbStateBackend(std::string dir, RocksDbOptions options,
                                         std::shared_ptr<Shared> shared)
    : dir_(std::move(dir)), options_(options), shared_(std::move(shared)) {}
RocksDbStateBackend::~RocksDbStateBackend() = default;

Result<std::shared_ptr<RocksDbStateBackend>> RocksDbStateBackend::make(std::string dir,
                                                                       RocksDbOptions options) {
  if (dir.empty()) return Status::invalid_argument("rocksdb state backend: the state dir is empty");
  if (options.write_buffer_bytes < (size_t{64} << 10)) {
    return Status::invalid_argument("rocksdb state backend: write_buffer_bytes " +
                                    std::to_string(options.write_buffer_bytes) +
                                    " is below 64 KiB");
  }
  if (options.max_write_buffers < 1) {
    return Status::invalid_argument("rocksdb state backend: max_write_buffers must be >= 1");
  }
  if (options.memory_budget_bytes > 0 && options.memory_budget_bytes < kMinMemoryBudget) {
    return Status::invalid_argument("rocksdb state backend: memory_budget_bytes " +
                                    std::to_string(options.memory_budget_bytes) +
                                    " is below 4 MiB");
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::io_error("rocksdb state backend: creating " + dir + ": " + ec.message());
  auto shared = std::make_shared<Shared>();
  const BudgetSplit split = budget_split(options);
  shared->cache = rocksdb::NewLRUCache(split.block_cache);
  shared->write_cache_pool = split.write_cache_pool;
  if (split.memtables > 0) {
    shared->write_buffers =
        std::make_shared<rocksdb::WriteBufferManager>(split.memtables, shared->cache);
  }
  std::random_device rd;
  shared->process_nonce = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  return std::shared_ptr<RocksDbStateBackend>(
      new RocksDbStateBackend(std::move(dir), options, std::move(shared)));
}

RocksDbMemoryUsage RocksDbStateBackend::memory_usage() const {
  RocksDbMemoryUsage u;
  u.block_cache = shared_->cache->GetUsage();
  u.memtables_in_block_cache = shared_->write_buffers != nullptr;
  std::lock_guard lock(shared_->mu);
  for (const InstanceMemory* m : shared_->live) {
    uint64_t bytes = 0;
    if (m->db->GetIntProperty(rocksdb::DB::Properties::kCurSizeAllMemTables, &bytes)) {
      u.memtables += bytes;
    }
    u.write_caches += m->write_cache_bytes.load(std::memory_order_relaxed);
  }
  return u;
}

std::vector<std::pair<std::string, int64_t>> RocksDbStateBackend::memory_parts() const {
  const RocksDbMemoryUsage u = memory_usage();
  std::vector<std::pair<std::string, int64_t>> parts = {
      {"block_cache", static_cast<int64_t>(u.block_cache)},
      {"memtables", static_cast<int64_t>(u.memtables)},
      {"write_caches", static_cast<int64_t>(u.write_caches)},
      {"total", static_cast<int64_t>(u.total())}};
  if (options_.memory_budget_bytes > 0) {
    parts.emplace_back("budget", static_cast<int64_t>(options_.memory_budget_bytes));
  }
  return parts;
}

Result<std::unique_ptr<KeyedStateBackend>> RocksDbStateBackend::create_keyed_backend(
    const KeyedBackendOptions& options) const {
  if (options.key_types.empty()) {
    return Status::invalid_argument(options.name + ": keyed state needs at least one key type");
  }
  if (options.max_parallelism > 65536) {
    return Status::invalid_argument(options.name + ": the rocksdb state backend supports at most " +
                                    "65536 key groups, not " +
                                    std::to_string(options.max_parallelism));
  }
  SABOT_ASSIGN_OR_RETURN(
      auto keys, KeyRegistry::make(options.key_types, options.max_parallelism, options.key_groups));
  char uid[64];
  std::snprintf(uid, sizeof uid, "%016llx-%llu",
                static_cast<unsigned long long>(shared_->process_nonce ^ ::getpid()),
                static_cast<unsigned long long>(shared_->instances.fetch_add(1)));
  const std::string inst_uid = sanitize(options.name) + "-" + uid;
  const std::string dir = (fs::path(dir_) / inst_uid).string();

  rocksdb::Options o;
  o.create_if_missing = true;
  o.error_if_exists = true;
  o.merge_operator = shared_->list_append;
  o.write_buffer_size = budget_split(options_).write_buffer;
  o.max_write_buffer_number = options_.max_write_buffers;
  o.write_buffer_manager = shared_->write_buffers;
  o.max_open_files = 256;
  // Every checkpoint flushes and so adds a version edit to the MANIFEST, which each incremental
  // snapshot carries whole: roll it over while it is small.
  o.max_manifest_file_size = size_t{4} << 20;
  o.keep_log_file_num = 2;
  o.max_background_jobs = 2;
  // One instance per subtask, made and dropped with jobs: keep opening cheap and quiet.
  o.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
  o.stats_dump_period_sec = 0;
  // Without the write cache, read-modify-write of hot keys updates a memtable entry in place
  // when the new value is no larger (fixed-size counters and accumulators), instead of stacking a
  // version per update in the memtable's skip list. With the cache, hot keys reach RocksDB once
  // per cache flush, and in-place updates would cost every flushed entry a second skip-list
  // search. Needs single-threaded memtable writes (one writer per instance).
  o.inplace_update_support = options_.write_cache_bytes == 0;
  o.allow_concurrent_memtable_write = false;
  o.stats_persist_period_sec = 0;
  // A whole-key Bloom filter on the memtables: most reads of keys not seen before (every new
  // key's first read) then skip the skip-list search, which was the largest cost of ingesting
  // distinct keys.
  o.memtable_prefix_bloom_size_ratio = 0.05;
  o.memtable_whole_key_filtering = true;
  rocksdb::BlockBasedTableOptions t;
  t.block_cache = shared_->cache;
  t.cache_index_and_filter_blocks = true;
  // Partitioned index and filters, as RocksDB advises when they are charged to the block cache:
  // a whole-file filter of a 64 MB SST file is several MB, more than one of the cache's shards
  // holds, so it was read from the file again on every point lookup (measured: with 10 M keys,
  // nearly all of a read-modify-write's time). Partitions are 4 KB blocks cached like data; the
  // small top-level index stays pinned.
  t.index_type = rocksdb::BlockBasedTableOptions::IndexType::kTwoLevelIndexSearch;
  t.partition_filters = true;
  t.metadata_block_size = 4096;
  t.cache_index_and_filter_blocks_with_high_priority = true;
  t.pin_top_level_index_and_filter = true;
  t.pin_l0_filter_and_index_blocks_in_cache = true;
  if (options_.bloom_bits_per_key > 0) {
    t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(options_.bloom_bits_per_key, false));
  }
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(o, dir, &raw);
  if (!s.ok()) {
    return Status::io_error(options.name + ": opening RocksDB in " + dir + ": " + s.ToString());
  }
  return std::unique_ptr<KeyedStateBackend>(
      new RocksKeyedBackend(std::move(keys), options.clock, options.name, dir, inst_uid,
                            std::unique_ptr<rocksdb::DB>(raw), shared_, o,
                            options_.keep_instance_dirs, options_.write_cache_bytes));
}

Result<std::shared_ptr<const StateBackend>> rocksdb(std::string dir, RocksDbOptions options) {
  SABOT_ASSIGN_OR_RETURN(auto b, RocksDbStateBackend::make(std::move(dir), options));
  return std::shared_ptr<const StateBackend>(std::move(b));
}

Result<std::vector<CheckpointId>> RocksDbCheckpointStore::checkpoints() const {
  std::vector<CheckpointId> out;
  std::error_code ec;
  if (!fs::exists(root_)) return out;
  for (const auto& e : fs::directory_iterator(root_, ec)) {
    const std::string n = e.path().filename().string();
    if (n.rfind("chk-", 0) != 0) continue;
    try {
      out.push_back(CheckpointId(std::stoll(n.substr(4))));
    } catch (...) {
    }
  }
  if (ec) return Status::io_error("listing " + root_ + ": " + ec.message());
  std::sort(out.begin(), out.end(), [](CheckpointId a, CheckpointId b) { return a < b; });
  return out;
}

Status RocksDbCheckpointStore::discard(CheckpointId id) {
  std::error_code ec;
  fs::remove_all(checkpoint_dir(root_, id), ec);
  if (ec)
    return Status::io_error("removing checkpoint " + std::to_string(id.value()) + ": " +
                            ec.message());
  std::set<std::string> used;
  SABOT_ASSIGN_OR_RETURN(auto ids, checkpoints());
  for (CheckpointId c : ids) {
    for (const auto& e : fs::directory_iterator(checkpoint_dir(root_, c), ec)) {
      SABOT_ASSIGN_OR_RETURN(CheckpointManifest m,
                             CheckpointManifest::read(e.path() / kManifestName));
      for (const auto& f : m.files) {
        if (!f.shared_name.empty()) used.insert(f.shared_name);
      }
    }
  }
  const fs::path shared = fs::path(root_) / "shared";
  if (!fs::exists(shared)) return Status::ok();
  for (const auto& e : fs::directory_iterator(shared, ec)) {
    if (!used.contains(e.path().filename().string())) fs::remove(e.path(), ec);
  }
  return Status::ok();
}

Result<uint64_t> RocksDbCheckpointStore::shared_bytes() const {
  uint64_t n = 0;
  std::error_code ec;
  const fs::path shared = fs::path(root_) / "shared";
  if (!fs::exists(shared)) return n;
  for (const auto& e : fs::directory_iterator(shared, ec)) n += fs::file_size(e.path(), ec);
  return n;
}

}  // namespace sabot::state
