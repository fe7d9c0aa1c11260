// The memory keyed-state backend: registered states, snapshot writing and restore parsing.

#include <cstring>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "sabot/columnar/builder.h"
#include "sabot/compute/hash.h"
#include "sabot/state/keyed_state_backend.h"

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

constexpr std::string_view kMagic = "SBKS";
constexpr uint8_t kVersion = 1;

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

// What a snapshot says about one state.
struct SnapshotStateHeader {
  std::string name;
  StateKind kind;
  std::string type_tag;
  int64_t ttl_ms;
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

  Status snapshot(std::span<const KeyGroup> key_groups, std::string* out) override;
  Status restore(std::string_view bytes) override;

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
  std::string name_;
  std::vector<std::unique_ptr<RegisteredState>> states_;
  std::map<std::string, PendingState, std::less<>> pending_;
};

Status MemoryKeyedStateBackend::snapshot(std::span<const KeyGroup> key_groups, std::string* out) {
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

  const size_t start = out->size();
  ByteWriter w(out);
  w.put_raw(kMagic.data(), kMagic.size());
  w.put<uint8_t>(kVersion);
  w.put<uint32_t>(maxp);
  const auto& types = reg.key_types();
  w.put<uint32_t>(static_cast<uint32_t>(types.size()));
  for (const DataType& t : types) {
    w.put<uint8_t>(static_cast<uint8_t>(t.id()));
    w.put<uint8_t>(static_cast<uint8_t>(t.unit()));
  }
  w.put<uint32_t>(static_cast<uint32_t>(states_.size()));
  for (const auto& s : states_) {
    w.put_bytes(s->spec.name);
    w.put<uint8_t>(static_cast<uint8_t>(s->spec.kind));
    w.put_bytes(s->spec.type_tag);
    w.put<int64_t>(s->spec.options.ttl.count());
  }
  w.put<uint32_t>(static_cast<uint32_t>(key_groups.size()));
  for (size_t b = 0; b < key_groups.size(); ++b) {
    w.put<int32_t>(key_groups[b].value());
    w.put<uint32_t>(static_cast<uint32_t>(bucket_keys[b].size()));
    for (KeyId k : bucket_keys[b]) w.put_bytes(reg.key_bytes(k));
    for (size_t s = 0; s < states_.size(); ++s) {
      w.put<uint64_t>(per_state[s].counts[b]);
      out->append(per_state[s].bytes[b]);
    }
  }
  const uint64_t checksum =
      compute::hash_bytes(std::string_view(*out).substr(start, out->size() - start));
  w.put<uint64_t>(checksum);
  return Status::ok();
}

Status MemoryKeyedStateBackend::restore(std::string_view bytes) {
  KeyRegistry& reg = *keys_;
  const std::string what = name_ + ": keyed state snapshot";
  if (bytes.size() < kMagic.size() + 1 + sizeof(uint64_t)) {
    return Status::invalid_data(what + " is truncated (" + std::to_string(bytes.size()) +
                                " bytes)");
  }
  if (bytes.substr(0, kMagic.size()) != kMagic) {
    return Status::invalid_data(what + ": missing 'SBKS' magic");
  }
  const uint8_t version = static_cast<uint8_t>(bytes[kMagic.size()]);
  if (version != kVersion) {
    return Status::invalid_data(what + ": version " + std::to_string(version) +
                                " is not supported (expected " + std::to_string(kVersion) + ")");
  }
  const std::string_view body = bytes.substr(0, bytes.size() - sizeof(uint64_t));
  uint64_t stored_checksum = 0;
  std::memcpy(&stored_checksum, bytes.data() + body.size(), sizeof(stored_checksum));
  if (compute::hash_bytes(body) != stored_checksum) {
    return Status::invalid_data(what + ": checksum mismatch (corrupt or truncated)");
  }

  ByteReader r(body.substr(kMagic.size() + 1), what);
  uint32_t maxp = 0;
  SABOT_RETURN_IF_ERROR(r.get(&maxp));
  if (maxp != reg.max_parallelism()) {
    return Status::invalid_argument(what + " has max_parallelism " + std::to_string(maxp) +
                                    ", the backend " + std::to_string(reg.max_parallelism()));
  }
  uint32_t ncols = 0;
  SABOT_RETURN_IF_ERROR(r.get(&ncols));
  const auto& types = reg.key_types();
  if (ncols != types.size()) {
    return Status::invalid_argument(what + " has " + std::to_string(ncols) +
                                    " key columns, the backend " + std::to_string(types.size()));
  }
  for (uint32_t c = 0; c < ncols; ++c) {
    uint8_t id = 0;
    uint8_t unit = 0;
    SABOT_RETURN_IF_ERROR(r.get(&id));
    SABOT_RETURN_IF_ERROR(r.get(&unit));
    if (id != static_cast<uint8_t>(types[c].id()) ||
        unit != static_cast<uint8_t>(types[c].unit())) {
      return Status::invalid_argument(what + ": key column " + std::to_string(c) + " has type id " +
                                      std::to_string(id) + " unit " + std::to_string(unit) +
                                      ", the backend " + types[c].to_string());
    }
  }
  uint32_t nstates = 0;
  SABOT_RETURN_IF_ERROR(r.get(&nstates));
  if (nstates > r.remaining()) return r.invalid("state count " + std::to_string(nstates));
  std::vector<SnapshotStateHeader> headers;
  std::vector<RegisteredState*> targets;
  for (uint32_t s = 0; s < nstates; ++s) {
    SnapshotStateHeader h;
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
    for (const auto& prev : headers) {
      if (prev.name == h.name) return r.invalid("state '" + h.name + "' appears twice");
    }
    RegisteredState* target = nullptr;
    for (auto& reg_state : states_) {
      if (reg_state->spec.name == h.name) target = reg_state.get();
    }
    if (target != nullptr) {
      SABOT_RETURN_IF_ERROR(
          check_same(target->spec, h.kind, h.type_tag, "the snapshot holds it as"));
    } else {
      auto it = pending_.find(h.name);
      if (it != pending_.end() &&
          (it->second.kind != h.kind || it->second.type_tag != h.type_tag)) {
        return r.invalid("state '" + h.name +
                         "' has another kind or type than in an earlier "
                         "restored snapshot");
      }
    }
    headers.push_back(std::move(h));
    targets.push_back(target);
  }

  uint32_t ngroups = 0;
  SABOT_RETURN_IF_ERROR(r.get(&ngroups));
  if (ngroups > maxp) return r.invalid("key group count " + std::to_string(ngroups));
  std::vector<uint8_t> seen(maxp, 0);
  std::vector<Scalar> key_values;
  std::vector<std::unique_ptr<columnar::ArrayBuilder>> builders;
  std::vector<Array> key_arrays;
  std::vector<KeyId> ids;
  for (uint32_t g = 0; g < ngroups; ++g) {
    int32_t kg = 0;
    SABOT_RETURN_IF_ERROR(r.get(&kg));
    if (kg < 0 || static_cast<uint32_t>(kg) >= maxp) {
      return r.invalid("key group " + std::to_string(kg) + " outside [0, " + std::to_string(maxp) +
                       ")");
    }
    if (seen[static_cast<size_t>(kg)]) {
      return r.invalid("key group " + std::to_string(kg) + " appears twice");
    }
    seen[static_cast<size_t>(kg)] = 1;
    const bool owned = reg.owns(KeyGroup(kg));
    uint32_t nkeys = 0;
    SABOT_RETURN_IF_ERROR(r.get(&nkeys));
    if (nkeys > r.remaining()) return r.invalid("key count " + std::to_string(nkeys));
    builders.clear();
    for (const DataType& t : types) builders.push_back(columnar::make_builder(t));
    for (uint32_t k = 0; k < nkeys; ++k) {
      std::string_view kb;
      SABOT_RETURN_IF_ERROR(r.get_bytes(&kb));
      if (!owned) continue;
      SABOT_RETURN_IF_ERROR(KeyRegistry::decode_key(kb, types, &key_values)
                                .with_context("in key group " + std::to_string(kg)));
      for (size_t c = 0; c < types.size(); ++c) builders[c]->append_scalar(key_values[c]);
    }
    ids.clear();
    if (owned && nkeys > 0) {
      key_arrays.clear();
      for (auto& b : builders) key_arrays.push_back(b->finish());
      SABOT_RETURN_IF_ERROR(reg.resolve(key_arrays, &ids));
      for (KeyId id : ids) {
        if (reg.key_group(id).value() != kg) {
          return r.invalid("a key stored in key group " + std::to_string(kg) +
                           " hashes to key group " + std::to_string(reg.key_group(id).value()));
        }
      }
    }
    for (uint32_t s = 0; s < nstates; ++s) {
      uint64_t nentries = 0;
      SABOT_RETURN_IF_ERROR(r.get(&nentries));
      if (nentries > r.remaining()) return r.invalid("entry count " + std::to_string(nentries));
      for (uint64_t e = 0; e < nentries; ++e) {
        uint32_t key_index = 0;
        uint64_t ns = 0;
        int64_t write_ms = 0;
        std::string_view value;
        SABOT_RETURN_IF_ERROR(r.get(&key_index));
        SABOT_RETURN_IF_ERROR(r.get(&ns));
        SABOT_RETURN_IF_ERROR(r.get(&write_ms));
        SABOT_RETURN_IF_ERROR(r.get_bytes(&value));
        if (key_index >= nkeys) {
          return r.invalid("entry of state '" + headers[s].name + "' names key " +
                           std::to_string(key_index) + " of " + std::to_string(nkeys));
        }
        if (!owned) continue;
        const KeyId key = ids[key_index];
        if (targets[s] != nullptr) {
          SABOT_RETURN_IF_ERROR(targets[s]
                                    ->table->restore_entry(key, ns, write_ms, value)
                                    .with_context("restoring state '" + headers[s].name +
                                                  "' in key group " + std::to_string(kg)));
        } else {
          PendingState& p = pending_[headers[s].name];
          p.kind = headers[s].kind;
          p.type_tag = headers[s].type_tag;
          p.entries.push_back(PendingEntry{key, ns, write_ms, std::string(value)});
        }
      }
    }
  }
  return r.expect_end();
}

}  // namespace

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
