#include "sabot/operators/keyed_process.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <string>
#include <utility>

#include "sabot/base/arith.h"
#include "sabot/columnar/builder.h"
#include "sabot/state/snapshot.h"

namespace sabot::operators {

using state::KeyId;

KeyedProcessOperator::KeyedProcessOperator(std::unique_ptr<KeyedProcessDriver> driver,
                                           std::vector<int> key_columns,
                                           std::unique_ptr<state::KeyedStateBackend> backend,
                                           const runtime::OperatorContext& ctx)
    : KeyedProcessOperator(std::move(driver), std::vector<KeyedInput>{{std::move(key_columns)}},
                           std::move(backend), ctx) {}

KeyedProcessOperator::KeyedProcessOperator(std::unique_ptr<KeyedProcessDriver> driver,
                                           std::vector<KeyedInput> inputs,
                                           std::unique_ptr<state::KeyedStateBackend> backend,
                                           const runtime::OperatorContext& ctx)
    : driver_(std::move(driver)),
      inputs_(std::move(inputs)),
      backend_(std::move(backend)),
      ctx_(ctx) {
  SABOT_CHECK(!inputs_.empty());
  scope_.backend = backend_.get();
  scope_.clock = ctx.clock;
}

Status KeyedProcessOperator::open(const runtime::OperatorContext& ctx) {
  ctx_ = ctx;
  scope_.clock = ctx.clock;
  return driver_->open(&scope_, ctx_);
}

Status KeyedProcessOperator::maybe_forget_keys() {
  if (!backend_->should_forget_keys()) return Status::ok();
  SABOT_RETURN_IF_ERROR(driver_->before_forgetting_keys());
  std::vector<KeyId> pinned;
  pinned.reserve(num_timers());
  for (const auto& [t, k] : scope_.event_timers) pinned.push_back(k);
  for (const auto& [t, k] : scope_.processing_timers) pinned.push_back(k);
  std::vector<KeyId> remap;
  SABOT_RETURN_IF_ERROR(backend_->forget_keys(pinned, &remap));
  // KeyIds keep their order, so each set's order is unchanged: rebuild with hints at the end.
  for (KeyedTimerSet* timers : {&scope_.event_timers, &scope_.processing_timers}) {
    KeyedTimerSet renumbered;
    for (const auto& [t, k] : *timers) renumbered.emplace_hint(renumbered.end(), t, remap[k]);
    *timers = std::move(renumbered);
  }
  scope_.key = state::kNoKey;
  return Status::ok();
}

Status KeyedProcessOperator::process_batch(const columnar::RecordBatch& batch, int input,
                                           runtime::Output& out) {
  SABOT_RETURN_IF_ERROR(maybe_forget_keys());
  // One key-column set serves every input of a single-input (or union-fed) operator.
  SABOT_CHECK(inputs_.size() == 1 || (input >= 0 && static_cast<size_t>(input) < inputs_.size()));
  const KeyedInput& in = inputs_[inputs_.size() == 1 ? 0 : static_cast<size_t>(input)];
  if (in.lookup_only) {
    backend_->refresh_time();
    lookup_keys_.clear();
    for (int c : in.key_columns) lookup_keys_.push_back(batch.column(c));
    SABOT_RETURN_IF_ERROR(backend_->keys().lookup(lookup_keys_, &ids_));
  } else {
    SABOT_RETURN_IF_ERROR(backend_->resolve_keys(batch, in.key_columns, &ids_));
  }
  SABOT_RETURN_IF_ERROR(driver_->process_input_rows(input, batch, ids_));
  return flush(out);
}

Status KeyedProcessOperator::process_watermark(Timestamp t, runtime::Output& out) {
  scope_.watermark = t;
  SABOT_RETURN_IF_ERROR(fire(scope_.event_timers, t.millis(), out));
  return out.emit_watermark(t);
}

Timestamp KeyedProcessOperator::next_processing_time() const {
  return scope_.processing_timers.empty() ? Timestamp::max()
                                          : Timestamp(scope_.processing_timers.begin()->first);
}

Status KeyedProcessOperator::on_processing_time(Timestamp now, runtime::Output& out) {
  return fire(scope_.processing_timers, now.millis(), out);
}

Status KeyedProcessOperator::fire(KeyedTimerSet& timers, int64_t until, runtime::Output& out) {
  backend_->refresh_time();
  // The keys of the timers kPrefetchAhead on are prefetched, in timer order, as process_rows
  // does for rows (keyed windows fire a timer per key on a watermark). The last timer prefetched
  // is remembered by value, not by iterator: on_timer may add and delete timers.
  std::optional<std::pair<int64_t, KeyId>> prefetched;
  const auto prefetch_next = [&] {
    auto it = prefetched ? timers.upper_bound(*prefetched) : timers.begin();
    if (it == timers.end() || it->first > until) return;
    backend_->prefetch(it->second);
    prefetched = *it;
  };
  for (size_t n = 0; n < state::KeyedStateBackend::kPrefetchAhead; ++n) prefetch_next();
  while (!timers.empty() && timers.begin()->first <= until) {
    prefetch_next();
    const int64_t time = timers.begin()->first;
    const KeyId key = timers.begin()->second;
    timers.erase(timers.begin());
    backend_->set_current_key(key);
    scope_.key = key;
    scope_.timestamp = time;
    SABOT_RETURN_IF_ERROR(driver_->on_timer(Timestamp(time)));
  }
  return flush(out);
}

Status KeyedProcessOperator::flush(runtime::Output& out) {
  SABOT_ASSIGN_OR_RETURN(std::optional<columnar::RecordBatch> rows, driver_->take_output());
  if (!rows) return Status::ok();
  return out.emit(*rows);
}

Result<std::unique_ptr<state::KeyedStateBackend>> make_keyed_backend(
    const runtime::OperatorContext& ctx, std::vector<columnar::DataType> key_types) {
  state::KeyedBackendOptions bo;
  bo.key_types = std::move(key_types);
  bo.max_parallelism = static_cast<uint32_t>(ctx.max_parallelism);
  bo.key_groups =
      state::key_groups_for_subtask(ctx.subtask_index, ctx.parallelism, ctx.max_parallelism);
  bo.clock = ctx.clock;
  bo.name = ctx.operator_name;
  static const state::MemoryStateBackend kMemory;
  const state::StateBackend& states = ctx.state_backend != nullptr ? *ctx.state_backend : kMemory;
  return states.create_keyed_backend(bo);
}

namespace {

// Per key group of a snapshot, the (key index, time) of its timers.
struct TimerLists {
  std::vector<std::pair<uint32_t, int64_t>> event;
  std::vector<std::pair<uint32_t, int64_t>> processing;
};

void put_timers(ByteWriter& w, const std::vector<std::pair<uint32_t, int64_t>>& timers) {
  w.put<uint64_t>(timers.size());
  for (const auto& [index, time] : timers) {
    w.put<uint32_t>(index);
    w.put<int64_t>(time);
  }
}

Status get_timers(ByteReader& r, std::span<const KeyId> ids, KeyedTimerSet* timers) {
  uint64_t n = 0;
  SABOT_RETURN_IF_ERROR(r.get_count(&n, sizeof(uint32_t) + sizeof(int64_t)));
  for (uint64_t i = 0; i < n; ++i) {
    uint32_t index = 0;
    int64_t time = 0;
    SABOT_RETURN_IF_ERROR(r.get(&index));
    SABOT_RETURN_IF_ERROR(r.get(&time));
    if (index >= ids.size()) {
      return r.invalid("timer " + std::to_string(i) + " names key " + std::to_string(index) +
                       " of " + std::to_string(ids.size()));
    }
    timers->emplace(time, ids[index]);
  }
  return Status::ok();
}

// The full format: the backend's entries per key group and the timers by key index.
Status write_full_snapshot(state::KeyedStateBackend& backend, const KeyedProcessScope& scope,
                           const std::string& uid, int max_parallelism, std::string* out) {
  state::KeyedStateBackend::SnapshotParts parts;
  SABOT_RETURN_IF_ERROR(backend.snapshot_parts(backend.keys().owned_key_groups(), &parts));
  // Where each key went: its section and its index there.
  const uint32_t n = backend.keys().num_keys();
  std::vector<uint32_t> section_of(n, UINT32_MAX);
  std::vector<uint32_t> index_of(n, 0);
  for (size_t g = 0; g < parts.keys.size(); ++g) {
    for (size_t i = 0; i < parts.keys[g].size(); ++i) {
      section_of[parts.keys[g][i]] = static_cast<uint32_t>(g);
      index_of[parts.keys[g][i]] = static_cast<uint32_t>(i);
    }
  }
  std::vector<TimerLists> timers(parts.key_groups.size());
  for (const auto& [t, k] : scope.event_timers) {
    SABOT_CHECK_NE(section_of[k], UINT32_MAX);
    timers[section_of[k]].event.emplace_back(index_of[k], t);
  }
  for (const auto& [t, k] : scope.processing_timers) {
    SABOT_CHECK_NE(section_of[k], UINT32_MAX);
    timers[section_of[k]].processing.emplace_back(index_of[k], t);
  }
  // Sized once: the snapshot of a large state is tens of MB, and growing it by appends copies it
  // again at every doubling.
  size_t size = out->size() + parts.header.size() + 256 + uid.size();
  for (size_t g = 0; g < parts.payloads.size(); ++g) {
    size +=
        parts.payloads[g].size() + 32 + 16 * (timers[g].event.size() + timers[g].processing.size());
  }
  out->reserve(size);
  state::SnapshotWriter w(out, {.operator_uid = uid,
                                .state_type = std::string(kProcessStateType),
                                .state_version = 1,
                                .max_parallelism = static_cast<uint32_t>(max_parallelism)});
  w.begin_section(state::kOperatorWide).put_raw(parts.header.data(), parts.header.size());
  for (size_t g = 0; g < parts.key_groups.size(); ++g) {
    ByteWriter& sec = w.begin_section(parts.key_groups[g].value());
    sec.put_raw(parts.payloads[g].data(), parts.payloads[g].size());
    put_timers(sec, timers[g].event);
    put_timers(sec, timers[g].processing);
  }
  w.finish();
  return Status::ok();
}

// ---- The incremental RocksDB format (kProcessRocksDbStateType, version 1): one operator-wide
// section: the key column types [u32 n, (u8 type id, u8 unit)...], the RocksDB checkpoint's
// manifest (bytes), its private files [u64 n, (bytes name, bytes contents)...], its SST files
// [u64 n, (bytes shared name, u64 size)...], then event-time and processing-time timers, each
// [u64 n, (i32 key group, bytes key, i64 time)...].

struct IncrementalSnapshot {
  std::vector<columnar::DataType> key_types;
  std::string_view manifest;
  std::vector<std::pair<std::string, std::string>> private_files;
  std::vector<checkpoint::SharedFile> ssts;
  struct Timer {
    int32_t key_group;
    std::string_view key;
    int64_t time;
  };
  std::vector<Timer> event_timers;
  std::vector<Timer> processing_timers;
};

void put_key_timers(ByteWriter& w, const KeyedTimerSet& timers, const state::KeyRegistry& keys) {
  w.put<uint64_t>(timers.size());
  for (const auto& [t, k] : timers) {
    w.put<int32_t>(keys.key_group(k).value());
    w.put_bytes(keys.key_bytes(k));
    w.put<int64_t>(t);
  }
}

Status get_key_timers(ByteReader& r, std::vector<IncrementalSnapshot::Timer>* out) {
  uint64_t n = 0;
  SABOT_RETURN_IF_ERROR(r.get_count(&n, sizeof(int32_t) + sizeof(uint64_t) + sizeof(int64_t)));
  for (uint64_t i = 0; i < n; ++i) {
    IncrementalSnapshot::Timer t{};
    SABOT_RETURN_IF_ERROR(r.get(&t.key_group));
    SABOT_RETURN_IF_ERROR(r.get_bytes(&t.key));
    SABOT_RETURN_IF_ERROR(r.get(&t.time));
    out->push_back(t);
  }
  return Status::ok();
}

// Decodes an incremental snapshot (views into `data`).
Result<IncrementalSnapshot> read_incremental(std::string_view data, const std::string& uid,
                                             uint32_t max_parallelism) {
  SABOT_ASSIGN_OR_RETURN(
      state::SnapshotReader reader,
      state::SnapshotReader::open(data, uid, kProcessRocksDbStateType, 1, max_parallelism));
  IncrementalSnapshot snap;
  bool seen = false;
  for (size_t i = 0; i < reader.sections().size(); ++i) {
    if (reader.sections()[i].key_group != state::kOperatorWide) {
      return Status::invalid_data(state::describe_snapshot(uid, kProcessRocksDbStateType) +
                                  ": unexpected key-group section");
    }
    seen = true;
    ByteReader r = reader.section_reader(i);
    uint32_t ncols = 0;
    SABOT_RETURN_IF_ERROR(r.get(&ncols));
    if (ncols == 0 || ncols > 64) return r.invalid("bad key column count");
    for (uint32_t c = 0; c < ncols; ++c) {
      uint8_t id = 0;
      uint8_t unit = 0;
      SABOT_RETURN_IF_ERROR(r.get(&id));
      SABOT_RETURN_IF_ERROR(r.get(&unit));
      snap.key_types.emplace_back(static_cast<columnar::TypeId>(id),
                                  static_cast<columnar::TimeUnit>(unit));
    }
    SABOT_RETURN_IF_ERROR(r.get_bytes(&snap.manifest));
    uint64_t n = 0;
    SABOT_RETURN_IF_ERROR(r.get_count(&n, 2 * sizeof(uint64_t)));
    for (uint64_t f = 0; f < n; ++f) {
      std::string_view name;
      std::string_view bytes;
      SABOT_RETURN_IF_ERROR(r.get_bytes(&name));
      SABOT_RETURN_IF_ERROR(r.get_bytes(&bytes));
      snap.private_files.emplace_back(std::string(name), std::string(bytes));
    }
    SABOT_RETURN_IF_ERROR(r.get_count(&n, 2 * sizeof(uint64_t)));
    for (uint64_t f = 0; f < n; ++f) {
      std::string_view name;
      checkpoint::SharedFile sf;
      SABOT_RETURN_IF_ERROR(r.get_bytes(&name));
      SABOT_RETURN_IF_ERROR(r.get(&sf.size));
      sf.name = std::string(name);
      snap.ssts.push_back(std::move(sf));
    }
    SABOT_RETURN_IF_ERROR(get_key_timers(r, &snap.event_timers));
    SABOT_RETURN_IF_ERROR(get_key_timers(r, &snap.processing_timers));
    SABOT_RETURN_IF_ERROR(r.expect_end());
  }
  if (!seen) {
    return Status::invalid_data(state::describe_snapshot(uid, kProcessRocksDbStateType) +
                                ": no operator-wide section");
  }
  return snap;
}

// Adds the snapshot's entries of the key groups `backend` owns (a RocksDB backend), and their
// timers, to `scope`.
Status restore_incremental(const IncrementalSnapshot& snap, state::KeyedStateBackend& backend,
                           const std::string& shared_dir, const std::string& what,
                           KeyedProcessScope* scope) {
  state::RocksDbKeyedStateBackend* rocks = state::as_rocksdb(&backend);
  if (rocks == nullptr) {
    return Status::invalid_argument(
        what + " is an incremental RocksDB checkpoint: restore it with the rocksdb state backend");
  }
  if (shared_dir.empty()) {
    return Status::invalid_argument(
        what +
        " is an incremental RocksDB checkpoint, but the checkpoint's shared directory is "
        "unknown (restore it from its checkpoint directory)");
  }
  SABOT_RETURN_IF_ERROR(rocks->restore_image(snap.manifest, snap.private_files, shared_dir));
  state::KeyRegistry& keys = backend.keys();
  std::vector<columnar::Scalar> values;
  for (const auto& [timers, set] :
       {std::pair{&snap.event_timers, &scope->event_timers},
        std::pair{&snap.processing_timers, &scope->processing_timers}}) {
    for (const IncrementalSnapshot::Timer& t : *timers) {
      if (!keys.owns(KeyGroup(t.key_group))) continue;
      values.clear();
      SABOT_RETURN_IF_ERROR(state::KeyRegistry::decode_key(t.key, keys.key_types(), &values));
      SABOT_ASSIGN_OR_RETURN(const state::KeyId id, keys.resolve_values(values));
      set->emplace(t.time, id);
    }
  }
  return Status::ok();
}

}  // namespace

Status KeyedProcessOperator::snapshot_state(CheckpointId id, std::string* out) {
  state::RocksDbKeyedStateBackend* rocks =
      ctx_.incremental_checkpoints ? state::as_rocksdb(backend_.get()) : nullptr;
  if (rocks == nullptr) {
    return write_full_snapshot(*backend_, scope_, ctx_.uid, ctx_.max_parallelism, out);
  }
  // The synchronous part: flush and hard-link the live files; their copy into the storage runs
  // on the coordinator's thread.
  SABOT_ASSIGN_OR_RETURN(std::unique_ptr<state::RocksDbLocalCheckpoint> local,
                         rocks->checkpoint_local());
  SABOT_ASSIGN_OR_RETURN(state::RocksDbLocalCheckpoint::Image image, local->image());
  state::SnapshotWriter w(out, {.operator_uid = ctx_.uid,
                                .state_type = std::string(kProcessRocksDbStateType),
                                .state_version = 1,
                                .max_parallelism = static_cast<uint32_t>(ctx_.max_parallelism)});
  ByteWriter& sec = w.begin_section(state::kOperatorWide);
  const state::KeyRegistry& keys = backend_->keys();
  sec.put<uint32_t>(static_cast<uint32_t>(keys.key_types().size()));
  for (const columnar::DataType& t : keys.key_types()) {
    sec.put<uint8_t>(static_cast<uint8_t>(t.id()));
    sec.put<uint8_t>(static_cast<uint8_t>(t.unit()));
  }
  sec.put_bytes(image.manifest);
  sec.put<uint64_t>(image.private_files.size());
  for (const auto& [name, bytes] : image.private_files) {
    sec.put_bytes(name);
    sec.put_bytes(bytes);
  }
  sec.put<uint64_t>(image.ssts.size());
  shared_files_.clear();
  for (const auto& sst : image.ssts) {
    sec.put_bytes(sst.shared_name);
    sec.put<uint64_t>(sst.size);
    shared_files_.push_back({sst.shared_name, sst.size, sst.path});
  }
  put_key_timers(sec, scope_.event_timers, keys);
  put_key_timers(sec, scope_.processing_timers, keys);
  w.finish();
  // Earlier checkpoints are complete or will never be (the coordinator triggers one at a time):
  // their hard links, which would pin old SST files, can go.
  local_checkpoints_.erase(local_checkpoints_.begin(), local_checkpoints_.lower_bound(id.value()));
  local_checkpoints_[id.value()] = std::move(local);
  return Status::ok();
}

std::vector<checkpoint::SharedFile> KeyedProcessOperator::take_shared_files() {
  return std::exchange(shared_files_, {});
}

Status KeyedProcessOperator::notify_checkpoint_complete(CheckpointId id) {
  local_checkpoints_.erase(local_checkpoints_.begin(), local_checkpoints_.upper_bound(id.value()));
  return Status::ok();
}

Status KeyedProcessOperator::restore_state(std::string_view data) {
  if (is_incremental_process_snapshot(data)) {
    SABOT_ASSIGN_OR_RETURN(
        IncrementalSnapshot snap,
        read_incremental(data, ctx_.uid, static_cast<uint32_t>(ctx_.max_parallelism)));
    SABOT_RETURN_IF_ERROR(
        restore_incremental(snap, *backend_, ctx_.restore_shared_dir,
                            state::describe_snapshot(ctx_.uid, kProcessRocksDbStateType), &scope_));
    scope_.key = state::kNoKey;
    return Status::ok();
  }
  SABOT_ASSIGN_OR_RETURN(state::SnapshotReader reader,
                         state::SnapshotReader::open(data, ctx_.uid, kProcessStateType, 1,
                                                     static_cast<uint32_t>(ctx_.max_parallelism)));
  state::KeyedStateBackend::RestoreHeader header;
  bool have_header = false;
  for (size_t i = 0; i < reader.sections().size(); ++i) {
    if (reader.sections()[i].key_group != state::kOperatorWide) continue;
    ByteReader r = reader.section_reader(i);
    SABOT_RETURN_IF_ERROR(backend_->restore_header(r, &header));
    have_header = true;
  }
  if (!have_header) {
    return Status::invalid_data(state::describe_snapshot(ctx_.uid, kProcessStateType) +
                                ": no operator-wide section (the states' descriptions)");
  }
  std::vector<KeyId> ids;
  for (size_t i = 0; i < reader.sections().size(); ++i) {
    const int32_t kg = reader.sections()[i].key_group;
    if (kg == state::kOperatorWide) continue;
    if (subtask_for_key_group(kg, ctx_.parallelism, ctx_.max_parallelism) != ctx_.subtask_index) {
      continue;
    }
    ByteReader r = reader.section_reader(i);
    SABOT_RETURN_IF_ERROR(backend_->restore_key_group(header, KeyGroup(kg), r, &ids));
    SABOT_RETURN_IF_ERROR(get_timers(r, ids, &scope_.event_timers));
    SABOT_RETURN_IF_ERROR(get_timers(r, ids, &scope_.processing_timers));
    SABOT_RETURN_IF_ERROR(r.expect_end());
  }
  scope_.key = state::kNoKey;
  return Status::ok();
}

bool is_incremental_process_snapshot(std::string_view bytes) {
  auto header = state::SnapshotReader::peek_header(bytes);
  return header.is_ok() && header->state_type == kProcessRocksDbStateType;
}

Result<std::string> full_process_snapshot(std::string_view bytes, const std::string& uid,
                                          uint32_t max_parallelism, const std::string& shared_dir,
                                          std::string scratch_dir) {
  if (!is_incremental_process_snapshot(bytes)) return std::string(bytes);
  SABOT_ASSIGN_OR_RETURN(IncrementalSnapshot snap, read_incremental(bytes, uid, max_parallelism));
  if (scratch_dir.empty()) {
    static std::atomic<int64_t> counter{0};
    scratch_dir = (std::filesystem::temp_directory_path() /
                   ("sabot-read-" + std::to_string(::getpid()) + "-" + std::to_string(counter++)))
                      .string();
  }
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  } cleanup{scratch_dir};
  // A small instance: it only holds the state while it is read back.
  state::RocksDbOptions options;
  options.block_cache_bytes = size_t{8} << 20;
  options.write_cache_bytes = 0;
  SABOT_ASSIGN_OR_RETURN(auto backends, state::RocksDbStateBackend::make(scratch_dir, options));
  state::KeyedBackendOptions bo;
  bo.key_types = snap.key_types;
  bo.max_parallelism = max_parallelism;
  bo.name = "reading " + state::describe_snapshot(uid, kProcessRocksDbStateType);
  SABOT_ASSIGN_OR_RETURN(auto backend, backends->create_keyed_backend(bo));
  KeyedProcessScope scope;
  scope.backend = backend.get();
  SABOT_RETURN_IF_ERROR(restore_incremental(snap, *backend, shared_dir, bo.name, &scope));
  std::string out;
  SABOT_RETURN_IF_ERROR(
      write_full_snapshot(*backend, scope, uid, static_cast<int>(max_parallelism), &out));
  return out;
}

void write_wrapped_keyed_snapshot(const runtime::OperatorContext& ctx, std::string_view state_type,
                                  uint16_t state_version, uint64_t value, std::string_view keyed,
                                  std::string* out, std::string_view trailing) {
  state::SnapshotWriter w(out, {.operator_uid = ctx.uid,
                                .state_type = std::string(state_type),
                                .state_version = state_version,
                                .max_parallelism = static_cast<uint32_t>(ctx.max_parallelism)});
  ByteWriter& sec = w.begin_section(state::kOperatorWide);
  sec.put<uint64_t>(value);
  sec.put_bytes(keyed);
  sec.put_raw(trailing.data(), trailing.size());
  w.finish();
}

ConstantKeyColumn::ConstantKeyColumn(const columnar::SchemaPtr& input) {
  std::vector<columnar::Field> fields = input->fields();
  fields.push_back(columnar::field("__constant_key", columnar::int32(), false));
  schema_ = columnar::Schema::make(std::move(fields)).value();
}

columnar::RecordBatch ConstantKeyColumn::append(const columnar::RecordBatch& batch) {
  const int64_t n = batch.num_rows();
  if (zeros_.length() < n) {
    columnar::Int32Builder b;
    for (int64_t i = 0; i < std::max<int64_t>(n, 4096); ++i) b.append(0);
    zeros_ = b.finish();
  }
  std::vector<columnar::Array> cols = batch.columns();
  cols.push_back(zeros_.slice(0, n));
  return columnar::RecordBatch::make_unchecked(schema_, std::move(cols), n);
}

Result<WrappedKeyedSnapshot> read_wrapped_keyed_snapshot(ByteReader& reader,
                                                         size_t trailing_bytes) {
  WrappedKeyedSnapshot w;
  SABOT_RETURN_IF_ERROR(reader.get(&w.value));
  SABOT_RETURN_IF_ERROR(reader.get_bytes(&w.keyed));
  SABOT_RETURN_IF_ERROR(reader.get_view(&w.trailing, trailing_bytes));
  SABOT_RETURN_IF_ERROR(reader.expect_end());
  return w;
}

Result<std::optional<UnwrappedKeyedSnapshot>> unwrap_keyed_snapshot(std::string_view bytes,
                                                                    const std::string& uid,
                                                                    uint32_t max_parallelism) {
  // The operators whose snapshots wrap a keyed one (dedup.cc, topn.cc, join.cc,
  // window_keyed.cc, join_keyed.cc), from that version on, and the bytes they write after it.
  struct Wrapping {
    std::string_view type;
    uint16_t since;
    size_t trailing;
  };
  static constexpr Wrapping kWrapping[] = {
      {"deduplicate", 2, 0},         {"top-n", 2, 0},
      {"stream-table-join", 2, 0},   {kKeyedWindowStateType, 1, sizeof(int64_t)},
      {"keyed-interval-join", 1, 0}, {"keyed-asof-join", 1, 0},
      {"keyed-window-join", 1, 0},   {"keyed-regular-join", 1, 0}};
  auto header = state::SnapshotReader::peek_header(bytes);
  if (!header.is_ok()) return std::optional<UnwrappedKeyedSnapshot>();
  for (const auto& [type, since, trailing] : kWrapping) {
    if (header->state_type != type || header->state_version < since) continue;
    SABOT_ASSIGN_OR_RETURN(
        state::SnapshotReader snap,
        state::SnapshotReader::open(bytes, uid, type, header->state_version, max_parallelism));
    for (size_t i = 0; i < snap.sections().size(); ++i) {
      if (snap.sections()[i].key_group != state::kOperatorWide) continue;
      ByteReader r = snap.section_reader(i);
      SABOT_ASSIGN_OR_RETURN(WrappedKeyedSnapshot w, read_wrapped_keyed_snapshot(r, trailing));
      return std::optional<UnwrappedKeyedSnapshot>(
          UnwrappedKeyedSnapshot{std::string(type), header->state_version, std::string(w.keyed)});
    }
    return Status::invalid_data(state::describe_snapshot(uid, type) + ": no operator-wide section");
  }
  return std::optional<UnwrappedKeyedSnapshot>();
}

}  // namespace sabot::operators
