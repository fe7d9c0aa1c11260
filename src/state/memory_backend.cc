// The memory keyed-state backend: registered states, snapshot writing and restore parsing.

#include <algorithm>
#include <cstring>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "sabot/state/keyed_state_backend.h"
#include "sabot/state/snapshot.h"
#include "state/keyed_snapshot_format.h"

namespace sabot::state {

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

using internal::check_same_state;

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
      SABOT_RETURN_IF_ERROR(
          check_same_state(s->spec, spec.kind, spec.type_tag, "it is now asked for as")
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
      SABOT_RETURN_IF_ERROR(check_same_state(reg->spec, it->second.kind, it->second.type_tag,
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

  std::vector<const StateSpec*> specs;
  for (const auto& st : states_) specs.push_back(&st->spec);
  internal::write_keyed_header(reg, specs, &parts->header);
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
  return internal::read_keyed_header(
      r, *keys_,
      [&](const RestoreHeader::StateHeader& h) -> Status {
        if (RegisteredState* target = find_state(h.name)) {
          return check_same_state(target->spec, h.kind, h.type_tag, "the snapshot holds it as")
              .with_context(std::string(r.what()));
        }
        auto it = pending_.find(h.name);
        if (it != pending_.end() &&
            (it->second.kind != h.kind || it->second.type_tag != h.type_tag)) {
          return r.invalid("state '" + h.name +
                           "' has another kind or type than in an earlier restored snapshot");
        }
        return Status::ok();
      },
      out);
}

Status MemoryKeyedStateBackend::restore_key_group(const RestoreHeader& header, KeyGroup kg,
                                                  ByteReader& r, std::vector<KeyId>* ids) {
  KeyRegistry& reg = *keys_;
  if (!reg.owns(kg)) {
    return Status::invalid_argument(name_ + ": cannot restore key group " +
                                    std::to_string(kg.value()) + ": not owned by this backend");
  }
  SABOT_RETURN_IF_ERROR(internal::read_key_list(r, reg, kg, ids));
  for (const auto& h : header.states) {
    RegisteredState* target = find_state(h.name);
    SABOT_RETURN_IF_ERROR(internal::read_entries(
        r, h.name, *ids,
        [&](KeyId key, uint64_t ns, int64_t write_ms, std::string_view value,
            size_t value_at) -> Status {
          if (target == nullptr) {
            PendingState& p = pending_[h.name];
            p.kind = h.kind;
            p.type_tag = h.type_tag;
            p.entries.push_back(PendingEntry{key, ns, write_ms, std::string(value)});
            return Status::ok();
          }
          Status st = target->table->restore_entry(key, ns, write_ms, value);
          if (!st.is_ok()) {
            return Status::invalid_data(std::string(r.what()) + ": state '" + h.name +
                                        "': value at byte " + std::to_string(value_at) +
                                        " does not decode: " + st.message());
          }
          return Status::ok();
        }));
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
