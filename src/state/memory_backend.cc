// The memory keyed-state backend: registered states, snapshot writing and restore parsing.

#include <algorithm>
#include <cstring>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "sabot/columnar/builder.h"
#include "sabot/compute/hash.h"
#include "sabot/state/keyed_state_backend.h"
#include "sabot/state/snapshot.h"

namespace sabot::state {

using columnar::Array;
using columnar::DataType;
using columnar::Scalar;

std::string_view state_kind_name(StateKind kind) {
  switch (kind) {
    case StateKind::kValue:
      return "value";
    case StateKind::kList:
      return "list";
    case StateKind::kMap:
      return "map";
    case StateKind::kReducing:
      return "reducing";
    case StateKind::kAggregating:
      return "aggregating";
  }
  return "unknown";
}

namespace {

struct RegisteredState {
  StateSpec spec;
  std::unique_ptr<State> state;
  internal::MemoryTable* table = nullptr;
};

// Restored entries of a state that has not been registered yet.
struct PendingEntry {
  KeyId key;
  Namespace ns;
  int64_t write_ms;
  std::string value;
};
struct PendingState {
  StateKind kind;
  std::string type_tag;
  std::vector<PendingEntry> entries;
};

Status check_same(const StateSpec& spec, StateKind kind, std::string_view type_tag,
                  std::string_view what) {
  if (spec.kind != kind) {
    return Status::invalid_argument(
        "state '" + spec.name + "' is " + std::string(state_kind_name(spec.kind)) + " state but " +
        std::string(what) + " " + std::string(state_kind_name(kind)) + " state");
  }
  if (spec.type_tag != type_tag) {
    return Status::invalid_argument("state '" + spec.name + "' has C++ type " + spec.type_tag +
                                    " but " + std::string(what) + " type " + std::string(type_tag));
  }
  return Status::ok();
}

class MemoryKeyedStateBackend final : public KeyedStateBackend {
 public:
  MemoryKeyedStateBackend(std::unique_ptr<KeyRegistry> keys, const Clock* clock, std::string name)
      : KeyedStateBackend(std::move(keys), clock), name_(std::move(name)) {}

  std::string_view backend_name() const override { return "memory"; }

  std::vector<std::string> state_names() const override {
    std::vector<std::string> out;
    for (const auto& s : states_) out.push_back(s->spec.name);
    return out;
  }

  size_t purge_expired() override {
    refresh_time();
    const int64_t now = ctx_.now_ms;
    size_t n = 0;
    for (auto& s : states_) {
      if (s->spec.options.ttl.count() > 0) n += s->table->purge_expired(now);
    }
    return n;
  }

  void prefetch(KeyId key) override {
    for (const auto& s : states_) s->table->prefetch(key);
  }

  size_t num_entries(std::string_view state_name) const override {
    for (const auto& s : states_) {
      if (s->spec.name == state_name) return s->table->num_entries();
    }
    return 0;
  }

  Result<std::vector<KeyId>> keys_with_state(std::string_view state_name,
                                             Namespace ns) const override {
    for (const auto& s : states_) {
      if (s->spec.name != state_name) continue;
      std::vector<KeyId> out;
      s->table->collect_keys(ns, ctx_.now_ms, &out);
      return out;
    }
    return Status::not_found(name_ + ": no state named '" + std::string(state_name) + "'");
  }

  Status snapshot_parts(std::span<const KeyGroup> key_groups, SnapshotParts* parts) override;
  Status restore_header(ByteReader& r, RestoreHeader* header) override;
  Status restore_key_group(const RestoreHeader& header, KeyGroup kg, ByteReader& r,
                           std::vector<KeyId>* ids) override;
  Status forget_keys(std::span<const KeyId> pinned, std::vector<KeyId>* remap) override;

 protected:
  Result<State*> get_or_create_state(StateSpec spec) override {
    if (spec.name.empty()) return Status::invalid_argument(name_ + ": state name is empty");
    for (auto& s : states_) {
      if (s->spec.name != spec.name) continue;
      SABOT_RETURN_IF_ERROR(check_same(s->spec, spec.kind, spec.type_tag, "it is now asked for as")
                                .with_context(name_));
      if (s->spec.options.ttl != spec.options.ttl ||
          s->spec.options.refresh_on_read != spec.options.refresh_on_read) {
        return Status::invalid_argument(name_ + ": state '" + spec.name +
                                        "' is asked for again with different StateOptions");
      }
      return s->state.get();
    }
    auto reg = std::make_unique<RegisteredState>();
    StateSpec::Made made = spec.make_memory(&ctx_);
    reg->state = std::move(made.state);
    reg->table = made.table;
    reg->spec = std::move(spec);
    auto it = pending_.find(reg->spec.name);
    if (it != pending_.end()) {
      SABOT_RETURN_IF_ERROR(check_same(reg->spec, it->second.kind, it->second.type_tag,
                                       "the restored snapshot holds it as")
                                .with_context(name_));
      for (const PendingEntry& e : it->second.entries) {
        SABOT_RETURN_IF_ERROR(reg->table->restore_entry(e.key, e.ns, e.write_ms, e.value)
                                  .with_context("restoring state '" + reg->spec.name + "'"));
      }
      pending_.erase(it);
    }
    states_.push_back(std::move(reg));
    return states_.back()->state.get();
  }

 private:
  RegisteredState* find_state(std::string_view name) const {
    for (const auto& s : states_) {
      if (s->spec.name == name) return s.get();
    }
    return nullptr;
  }

  std::string name_;
  std::vector<std::unique_ptr<RegisteredState>> states_;
  std::map<std::string, PendingState, std::less<>> pending_;
};

Status MemoryKeyedStateBackend::snapshot_parts(std::span<const KeyGroup> key_groups,
                                               SnapshotParts* parts) {
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
  const uint32_t n = reg.num_keys();
  internal::SnapshotPlan plan;
  plan.key_bucket.resize(n);
  plan.key_index.resize(n);
  std::vector<std::vector<KeyId>> bucket_keys(key_groups.size());
  for (KeyId k = 0; k < n; ++k) {
    const int32_t b = bucket_of_kg[static_cast<size_t>(reg.key_group(k).value())];
    plan.key_bucket[k] = b;
    if (b < 0) continue;
    plan.key_index[k] = static_cast<uint32_t>(bucket_keys[static_cast<size_t>(b)].size());
    bucket_keys[static_cast<size_t>(b)].push_back(k);
  }
  refresh_time();
  const int64_t now = ctx_.now_ms;
  std::vector<internal::SnapshotBuckets> per_state(states_.size());
  for (size_t s = 0; s < states_.size(); ++s) {
    per_state[s].bytes.resize(key_groups.size());
    per_state[s].counts.assign(key_groups.size(), 0);
    states_[s]->table->snapshot_entries(plan, now, &per_state[s]);
  }

  parts->header.clear();
  ByteWriter h(&parts->header);
  const auto& types = reg.key_types();
  h.put<uint32_t>(static_cast<uint32_t>(types.size()));
  for (const DataType& t : types) {
    h.put<uint8_t>(static_cast<uint8_t>(t.id()));
    h.put<uint8_t>(static_cast<uint8_t>(t.unit()));
  }
  h.put<uint64_t>(states_.size());
  for (const auto& s : states_) {
    h.put_bytes(s->spec.name);
    h.put<uint8_t>(static_cast<uint8_t>(s->spec.kind));
    h.put_bytes(s->spec.type_tag);
    h.put<int64_t>(s->spec.options.ttl.count());
  }
  // Key groups in increasing order, so that equal state gives equal bytes.
  std::vector<size_t> order(key_groups.size());
  for (size_t b = 0; b < order.size(); ++b) order[b] = b;
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return key_groups[a].value() < key_groups[b].value(); });
  parts->key_groups.clear();
  parts->payloads.clear();
  parts->keys.clear();
  for (size_t b : order) {
    if (bucket_keys[b].empty()) continue;
    parts->key_groups.push_back(key_groups[b]);
    std::string& payload = parts->payloads.emplace_back();
    size_t size = sizeof(uint64_t);
    for (size_t s = 0; s < states_.size(); ++s) size += 8 + per_state[s].bytes[b].size();
    for (KeyId k : bucket_keys[b]) size += 8 + reg.key_bytes(k).size();
    // Written through a cursor into the buffer sized once: the same bytes as ByteWriter's put and
    // put_bytes, without a string append per key (which dominated snapshots of small keys).
    payload.resize(size);
    char* at = payload.data();
    auto put_u64 = [&at](uint64_t v) {
      std::memcpy(at, &v, sizeof v);
      at += sizeof v;
    };
    auto put_raw = [&at](std::string_view v) {
      if (!v.empty()) std::memcpy(at, v.data(), v.size());
      at += v.size();
    };
    put_u64(bucket_keys[b].size());
    for (KeyId k : bucket_keys[b]) {
      const std::string_view key = reg.key_bytes(k);
      put_u64(key.size());
      put_raw(key);
    }
    for (size_t s = 0; s < states_.size(); ++s) {
      put_u64(per_state[s].counts[b]);
      put_raw(per_state[s].bytes[b]);
      per_state[s].bytes[b] = std::string();
    }
    SABOT_CHECK_EQ(static_cast<size_t>(at - payload.data()), size);
    parts->keys.push_back(std::move(bucket_keys[b]));
  }
  return Status::ok();
}

Status MemoryKeyedStateBackend::restore_header(ByteReader& r, RestoreHeader* out) {
  const KeyRegistry& reg = *keys_;
  uint32_t ncols = 0;
  SABOT_RETURN_IF_ERROR(r.get(&ncols));
  const auto& types = reg.key_types();
  if (ncols != types.size()) {
    return Status::invalid_argument(std::string(r.what()) + ": the snapshot has " +
                                    std::to_string(ncols) + " key columns, the backend " +
                                    std::to_string(types.size()));
  }
  for (uint32_t c = 0; c < ncols; ++c) {
    uint8_t id = 0;
    uint8_t unit = 0;
    SABOT_RETURN_IF_ERROR(r.get(&id));
    SABOT_RETURN_IF_ERROR(r.get(&unit));
    if (id != static_cast<uint8_t>(types[c].id()) ||
        unit != static_cast<uint8_t>(types[c].unit())) {
      return Status::invalid_argument(std::string(r.what()) + ": key column " + std::to_string(c) +
                                      " has type id " + std::to_string(id) + " unit " +
                                      std::to_string(unit) + ", the backend " +
                                      types[c].to_string());
    }
  }
  uint64_t nstates = 0;
  SABOT_RETURN_IF_ERROR(r.get_count(&nstates, 2 * sizeof(uint64_t) + 1 + sizeof(int64_t)));
  out->states.clear();
  for (uint64_t s = 0; s < nstates; ++s) {
    RestoreHeader::StateHeader h;
    std::string_view name;
    std::string_view tag;
    uint8_t kind = 0;
    SABOT_RETURN_IF_ERROR(r.get_bytes(&name));
    SABOT_RETURN_IF_ERROR(r.get(&kind));
    SABOT_RETURN_IF_ERROR(r.get_bytes(&tag));
    SABOT_RETURN_IF_ERROR(r.get(&h.ttl_ms));
    if (kind < 1 || kind > 5) return r.invalid("unknown state kind " + std::to_string(kind));
    if (name.empty()) return r.invalid("empty state name");
    h.name = std::string(name);
    h.kind = static_cast<StateKind>(kind);
    h.type_tag = std::string(tag);
    for (const auto& prev : out->states) {
      if (prev.name == h.name) return r.invalid("state '" + h.name + "' appears twice");
    }
    if (RegisteredState* target = find_state(h.name)) {
      SABOT_RETURN_IF_ERROR(check_same(target->spec, h.kind, h.type_tag, "the snapshot holds it as")
                                .with_context(std::string(r.what())));
    } else {
      auto it = pending_.find(h.name);
      if (it != pending_.end() &&
          (it->second.kind != h.kind || it->second.type_tag != h.type_tag)) {
        return r.invalid("state '" + h.name +
                         "' has another kind or type than in an earlier restored snapshot");
      }
    }
    out->states.push_back(std::move(h));
  }
  return r.expect_end();
}

Status MemoryKeyedStateBackend::restore_key_group(const RestoreHeader& header, KeyGroup kg,
                                                  ByteReader& r, std::vector<KeyId>* ids) {
  KeyRegistry& reg = *keys_;
  if (!reg.owns(kg)) {
    return Status::invalid_argument(name_ + ": cannot restore key group " +
                                    std::to_string(kg.value()) + ": not owned by this backend");
  }
  const auto& types = reg.key_types();
  uint64_t nkeys = 0;
  SABOT_RETURN_IF_ERROR(r.get_count(&nkeys, sizeof(uint64_t)));
  std::vector<std::unique_ptr<columnar::ArrayBuilder>> builders;
  for (const DataType& t : types) builders.push_back(columnar::make_builder(t));
  std::vector<Scalar> key_values;
  for (uint64_t k = 0; k < nkeys; ++k) {
    std::string_view kb;
    const size_t at = r.position();
    SABOT_RETURN_IF_ERROR(r.get_bytes(&kb));
    Status st = KeyRegistry::decode_key(kb, types, &key_values);
    if (!st.is_ok()) {
      return Status::invalid_data(std::string(r.what()) + ": key " + std::to_string(k) +
                                  " does not decode (" + st.message() + ") at byte " +
                                  std::to_string(at));
    }
    for (size_t c = 0; c < types.size(); ++c) builders[c]->append_scalar(key_values[c]);
  }
  ids->clear();
  if (nkeys > 0) {
    std::vector<Array> key_arrays;
    for (auto& b : builders) key_arrays.push_back(b->finish());
    // A key that hashes elsewhere would be refused by resolve only if its group is not owned;
    // check it before registering anything.
    std::vector<uint64_t> hashes;
    SABOT_RETURN_IF_ERROR(compute::hash_columns(key_arrays, &hashes));
    std::vector<uint32_t> groups(hashes.size());
    compute::key_groups(hashes, reg.max_parallelism(), groups);
    for (size_t i = 0; i < groups.size(); ++i) {
      if (groups[i] != static_cast<uint32_t>(kg.value())) {
        return r.invalid("key " + std::to_string(i) + " stored in key group " +
                         std::to_string(kg.value()) + " hashes to key group " +
                         std::to_string(groups[i]));
      }
    }
    SABOT_RETURN_IF_ERROR(reg.resolve(key_arrays, ids));
  }
  for (const auto& h : header.states) {
    RegisteredState* target = find_state(h.name);
    uint64_t nentries = 0;
    SABOT_RETURN_IF_ERROR(
        r.get_count(&nentries, sizeof(uint32_t) + sizeof(uint64_t) * 2 + sizeof(int64_t)));
    for (uint64_t e = 0; e < nentries; ++e) {
      uint32_t key_index = 0;
      uint64_t ns = 0;
      int64_t write_ms = 0;
      std::string_view value;
      SABOT_RETURN_IF_ERROR(r.get(&key_index));
      SABOT_RETURN_IF_ERROR(r.get(&ns));
      SABOT_RETURN_IF_ERROR(r.get(&write_ms));
      const size_t value_at = r.position() + sizeof(uint64_t);
      SABOT_RETURN_IF_ERROR(r.get_bytes(&value));
      if (key_index >= nkeys) {
        return r.invalid("entry of state '" + h.name + "' names key " + std::to_string(key_index) +
                         " of " + std::to_string(nkeys));
      }
      const KeyId key = (*ids)[key_index];
      if (target != nullptr) {
        Status st = target->table->restore_entry(key, ns, write_ms, value);
        if (!st.is_ok()) {
          return Status::invalid_data(std::string(r.what()) + ": state '" + h.name +
                                      "': value at byte " + std::to_string(value_at) +
                                      " does not decode: " + st.message());
        }
      } else {
        PendingState& p = pending_[h.name];
        p.kind = h.kind;
        p.type_tag = h.type_tag;
        p.entries.push_back(PendingEntry{key, ns, write_ms, std::string(value)});
      }
    }
  }
  return Status::ok();
}

Status MemoryKeyedStateBackend::forget_keys(std::span<const KeyId> pinned,
                                            std::vector<KeyId>* remap) {
  purge_expired();
  const uint32_t n = keys_->num_keys();
  std::vector<uint8_t> live(n, 0);
  for (const auto& s : states_) s->table->mark_live(&live);
  for (const auto& [name, p] : pending_) {
    for (const PendingEntry& e : p.entries) live[e.key] = 1;
  }
  for (KeyId k : pinned) {
    SABOT_CHECK_LT(k, n);
    live[k] = 1;
  }
  std::vector<KeyId> keep;
  remap->assign(n, kNoKey);
  for (KeyId k = 0; k < n; ++k) {
    if (!live[k]) continue;
    (*remap)[k] = static_cast<KeyId>(keep.size());
    keep.push_back(k);
  }
  forget_at_ = std::max<uint32_t>(kMinKeysToForget, 2 * static_cast<uint32_t>(keep.size()));
  ctx_.key = kNoKey;
  if (keep.size() == n) return Status::ok();  // nothing to forget; ids unchanged
  SABOT_RETURN_IF_ERROR(keys_->retain_only(keep));
  for (auto& s : states_) s->table->remap_keys(*remap);
  for (auto& [name, p] : pending_) {
    for (PendingEntry& e : p.entries) e.key = (*remap)[e.key];
  }
  return Status::ok();
}

}  // namespace

Status KeyedStateBackend::snapshot(std::string_view uid, std::span<const KeyGroup> key_groups,
                                   std::string* out) {
  SnapshotParts parts;
  SABOT_RETURN_IF_ERROR(snapshot_parts(key_groups, &parts));
  // One allocation for the whole snapshot: growing it by doubling would copy (and fault in) every
  // byte again at each step, which dominated snapshots of large state.
  size_t total = out->size() + parts.header.size() + 256 + uid.size();
  for (const std::string& p : parts.payloads) total += p.size() + 16;
  out->reserve(total);
  SnapshotWriter w(out, {.operator_uid = std::string(uid),
                         .state_type = std::string(kKeyedStateType),
                         .state_version = 1,
                         .max_parallelism = keys_->max_parallelism()});
  w.begin_section(kOperatorWide).put_raw(parts.header.data(), parts.header.size());
  for (size_t i = 0; i < parts.key_groups.size(); ++i) {
    w.begin_section(parts.key_groups[i].value())
        .put_raw(parts.payloads[i].data(), parts.payloads[i].size());
  }
  w.finish();
  return Status::ok();
}

Status KeyedStateBackend::restore(std::string_view uid, std::string_view bytes) {
  SABOT_ASSIGN_OR_RETURN(SnapshotReader reader, SnapshotReader::open(bytes, uid, kKeyedStateType, 1,
                                                                     keys_->max_parallelism()));
  RestoreHeader header;
  bool have_header = false;
  for (size_t i = 0; i < reader.sections().size(); ++i) {
    if (reader.sections()[i].key_group != kOperatorWide) continue;
    ByteReader r = reader.section_reader(i);
    SABOT_RETURN_IF_ERROR(restore_header(r, &header));
    have_header = true;
  }
  if (!have_header) {
    return Status::invalid_data(describe_snapshot(uid, kKeyedStateType) +
                                ": no operator-wide section (the states' descriptions)");
  }
  std::vector<KeyId> ids;
  for (size_t i = 0; i < reader.sections().size(); ++i) {
    const int32_t kg = reader.sections()[i].key_group;
    if (kg == kOperatorWide || !keys_->owns(KeyGroup(kg))) continue;
    ByteReader r = reader.section_reader(i);
    SABOT_RETURN_IF_ERROR(restore_key_group(header, KeyGroup(kg), r, &ids));
    SABOT_RETURN_IF_ERROR(r.expect_end());
  }
  return Status::ok();
}

Result<std::unique_ptr<KeyedStateBackend>> MemoryStateBackend::create_keyed_backend(
    const KeyedBackendOptions& options) const {
  if (options.key_types.empty()) {
    return Status::invalid_argument(options.name + ": keyed state needs at least one key type");
  }
  SABOT_ASSIGN_OR_RETURN(
      auto keys, KeyRegistry::make(options.key_types, options.max_parallelism, options.key_groups));
  return std::unique_ptr<KeyedStateBackend>(
      new MemoryKeyedStateBackend(std::move(keys), options.clock, options.name));
}

}  // namespace sabot::state
