// The keyed-state snapshot format's shared parts; see keyed_snapshot_format.h.

#include "state/keyed_snapshot_format.h"

#include <memory>
#include <string>
#include <vector>

#include "sabot/columnar/builder.h"
#include "sabot/compute/hash.h"

namespace sabot::state::internal {

using columnar::Array;
using columnar::DataType;
using columnar::Scalar;

Status check_same_state(const StateSpec& spec, StateKind kind, std::string_view type_tag,
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

void write_keyed_header(const KeyRegistry& keys, std::span<const StateSpec* const> states,
                        std::string* out) {
  out->clear();
  ByteWriter h(out);
  const auto& types = keys.key_types();
  h.put<uint32_t>(static_cast<uint32_t>(types.size()));
  for (const DataType& t : types) {
    h.put<uint8_t>(static_cast<uint8_t>(t.id()));
    h.put<uint8_t>(static_cast<uint8_t>(t.unit()));
  }
  h.put<uint64_t>(states.size());
  for (const StateSpec* s : states) {
    h.put_bytes(s->name);
    h.put<uint8_t>(static_cast<uint8_t>(s->kind));
    h.put_bytes(s->type_tag);
    h.put<int64_t>(s->options.ttl.count());
  }
}

Status read_keyed_header(
    ByteReader& r, const KeyRegistry& keys,
    const std::function<Status(const KeyedStateBackend::RestoreHeader::StateHeader&)>& check_state,
    KeyedStateBackend::RestoreHeader* out) {
  uint32_t ncols = 0;
  SABOT_RETURN_IF_ERROR(r.get(&ncols));
  const auto& types = keys.key_types();
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
    KeyedStateBackend::RestoreHeader::StateHeader h;
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
    SABOT_RETURN_IF_ERROR(check_state(h));
    out->states.push_back(std::move(h));
  }
  return r.expect_end();
}

Status read_key_list(ByteReader& r, KeyRegistry& keys, KeyGroup kg, std::vector<KeyId>* ids) {
  const auto& types = keys.key_types();
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
  if (nkeys == 0) return Status::ok();
  std::vector<Array> key_arrays;
  for (auto& b : builders) key_arrays.push_back(b->finish());
  // A key that hashes elsewhere would be refused by resolve only if its group is not owned;
  // check it before registering anything.
  std::vector<uint64_t> hashes;
  SABOT_RETURN_IF_ERROR(compute::hash_columns(key_arrays, &hashes));
  std::vector<uint32_t> groups(hashes.size());
  compute::key_groups(hashes, keys.max_parallelism(), groups);
  for (size_t i = 0; i < groups.size(); ++i) {
    if (groups[i] != static_cast<uint32_t>(kg.value())) {
      return r.invalid("key " + std::to_string(i) + " stored in key group " +
                       std::to_string(kg.value()) + " hashes to key group " +
                       std::to_string(groups[i]));
    }
  }
  return keys.resolve(key_arrays, ids);
}

Status read_entries(ByteReader& r, const std::string& state_name, std::span<const KeyId> ids,
                    const std::function<Status(KeyId key, uint64_t ns, int64_t write_ms,
                                               std::string_view value, size_t value_at)>& fn) {
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
    if (key_index >= ids.size()) {
      return r.invalid("entry of state '" + state_name + "' names key " +
                       std::to_string(key_index) + " of " + std::to_string(ids.size()));
    }
    SABOT_RETURN_IF_ERROR(fn(ids[key_index], ns, write_ms, value, value_at));
  }
  return Status::ok();
}

}  // namespace sabot::state::internal
