#include "compute/accumulators.h"

#include <algorithm>
#include <bit>
#include <cstring>

#include "sabot/base/check.h"
#include "sabot/compute/hash.h"

namespace sabot::compute::internal {

using columnar::TypeId;

void write_accumulator_header(const GroupedAccumulator& acc, std::string* out) {
  ByteWriter w(out);
  out->append("SACC");
  w.put<uint8_t>(kAccumulatorVersion);
  w.put<uint8_t>(static_cast<uint8_t>(acc.kind()));
  put_type(w, acc.input_type());
  w.put<uint32_t>(acc.num_groups());
}

Status read_accumulator_header(const GroupedAccumulator& acc, ByteReader* r, uint32_t* num_groups) {
  SABOT_RETURN_IF_ERROR(expect_header(*r, "SACC", kAccumulatorVersion));
  uint8_t kind = 0;
  DataType type;
  SABOT_RETURN_IF_ERROR(r->get(&kind));
  SABOT_RETURN_IF_ERROR(get_type(*r, &type));
  SABOT_RETURN_IF_ERROR(r->get(num_groups));
  if (kind != static_cast<uint8_t>(acc.kind()) || !(type == acc.input_type())) {
    return r->invalid("holds an accumulator of another kind or type (kind " + std::to_string(kind) +
                      ", type " + type.to_string() + "), expected " +
                      std::string(aggregate_kind_name(acc.kind())) + " over " +
                      acc.input_type().to_string());
  }
  return Status::ok();
}

void write_groups_header(const GroupedAccumulator& acc, size_t num_groups, ByteWriter& w) {
  w.put<uint8_t>(static_cast<uint8_t>(acc.kind()));
  put_type(w, acc.input_type());
  w.put<uint64_t>(num_groups);
}

Status read_groups_header(const GroupedAccumulator& acc, ByteReader& r, size_t num_groups) {
  uint8_t kind = 0;
  DataType type;
  uint64_t n = 0;
  SABOT_RETURN_IF_ERROR(r.get(&kind));
  SABOT_RETURN_IF_ERROR(get_type(r, &type));
  if (kind != static_cast<uint8_t>(acc.kind()) || !(type == acc.input_type())) {
    return r.invalid("holds an accumulator of another kind or type (kind " + std::to_string(kind) +
                     ", type " + type.to_string() + "), expected " +
                     std::string(aggregate_kind_name(acc.kind())) + " over " +
                     acc.input_type().to_string());
  }
  SABOT_RETURN_IF_ERROR(r.get(&n));
  if (n != num_groups) {
    return r.invalid("accumulator holds " + std::to_string(n) + " groups, expected " +
                     std::to_string(num_groups));
  }
  return Status::ok();
}

// ---------------------------------------------------------------------------------------------
void CountAccumulator::resize(uint32_t n) {
  counts_.resize(n, 0);
  num_groups_ = n;
}

Status CountAccumulator::update(const Array& values, std::span<const uint32_t> ids) {
  SABOT_RETURN_IF_ERROR(check_update(values, ids));
  int64_t* counts = counts_.data();
  const uint32_t* g = ids.data();
  if (kind_ == AggregateKind::kCountAll) {
    for (size_t i = 0; i < ids.size(); ++i) ++counts[g[i]];
  } else {
    for_each_valid(values, [&](int64_t i) { ++counts[g[i]]; });
  }
  return Status::ok();
}

Status CountAccumulator::merge(const GroupedAccumulator& other_base,
                               std::span<const uint32_t> map) {
  SABOT_RETURN_IF_ERROR(check_merge(other_base, map));
  const auto& other = static_cast<const CountAccumulator&>(other_base);
  for (size_t g = 0; g < map.size(); ++g) counts_[map[g]] += other.counts_[g];
  return Status::ok();
}

Result<Array> CountAccumulator::finalize() const {
  columnar::Int64Builder b;
  b.append_values(counts_.data(), num_groups_);
  return b.finish();
}

void CountAccumulator::serialize(std::string* out) const {
  write_accumulator_header(*this, out);
  ByteWriter(out).put_vector(counts_);
}

Status CountAccumulator::deserialize(std::string_view bytes) {
  ByteReader r(bytes, "count accumulator");
  uint32_t n = 0;
  SABOT_RETURN_IF_ERROR(read_accumulator_header(*this, &r, &n));
  std::vector<int64_t> counts;
  SABOT_RETURN_IF_ERROR(r.get_vector(&counts));
  SABOT_RETURN_IF_ERROR(r.expect_end());
  if (counts.size() != n) return r.invalid("group count mismatch");
  counts_ = std::move(counts);
  num_groups_ = n;
  return Status::ok();
}

void CountAccumulator::serialize_groups(std::span<const uint32_t> groups, ByteWriter& w) const {
  write_groups_header(*this, groups.size(), w);
  put_gathered(w, counts_, groups);
}

Status CountAccumulator::deserialize_groups(ByteReader& r, std::span<const uint32_t> groups) {
  SABOT_RETURN_IF_ERROR(read_groups_header(*this, r, groups.size()));
  return get_scattered(r, counts_, groups);
}

// ---------------------------------------------------------------------------------------------
namespace {
constexpr uint32_t kNoEntry = UINT32_MAX;

inline uint64_t entry_slot_hash(uint32_t gid, uint64_t value_hash) {
  return hash_combine(hash_int64(gid), value_hash);
}
}  // namespace

CountDistinctAccumulator::CountDistinctAccumulator(AggregateKind kind, DataType input)
    : GroupedAccumulator(kind, input, columnar::int64()) {
  entry_offset_.push_back(0);
  rebuild_table(0);
}

void CountDistinctAccumulator::rebuild_table(size_t min_entries) {
  int log = 8;
  while ((size_t{1} << log) < min_entries * 2 + 2) ++log;
  slots_.assign(size_t{1} << log, kNoEntry);
  mask_ = slots_.size() - 1;
  shift_ = 64 - log;
  for (uint32_t e = 0; e < entry_gid_.size(); ++e) {
    size_t idx = static_cast<size_t>(entry_slot_hash(entry_gid_[e], entry_hash_[e]) >> shift_);
    while (slots_[idx] != kNoEntry) idx = (idx + 1) & mask_;
    slots_[idx] = e;
  }
}

void CountDistinctAccumulator::resize(uint32_t n) {
  if (n < num_groups_) {
    // Drop the entries of removed groups and compact the arena.
    std::vector<uint32_t> gids;
    std::vector<uint64_t> hashes;
    std::vector<uint64_t> offsets{0};
    std::vector<uint8_t> arena;
    for (size_t e = 0; e < entry_gid_.size(); ++e) {
      if (entry_gid_[e] >= n) continue;
      gids.push_back(entry_gid_[e]);
      hashes.push_back(entry_hash_[e]);
      arena.insert(arena.end(), arena_.begin() + static_cast<std::ptrdiff_t>(entry_offset_[e]),
                   arena_.begin() + static_cast<std::ptrdiff_t>(entry_offset_[e + 1]));
      offsets.push_back(arena.size());
    }
    entry_gid_ = std::move(gids);
    entry_hash_ = std::move(hashes);
    entry_offset_ = std::move(offsets);
    arena_ = std::move(arena);
    rebuild_table(entry_gid_.size());
    counts_.resize(n);
  }
  counts_.resize(n, 0);
  num_groups_ = n;
}

void CountDistinctAccumulator::insert(uint32_t gid, uint64_t value_hash, const uint8_t* bytes,
                                      uint64_t len) {
  size_t idx = static_cast<size_t>(entry_slot_hash(gid, value_hash) >> shift_);
  while (true) {
    const uint32_t e = slots_[idx];
    if (e == kNoEntry) break;
    if (entry_hash_[e] == value_hash && entry_gid_[e] == gid &&
        entry_offset_[e + 1] - entry_offset_[e] == len &&
        (len == 0 || std::memcmp(arena_.data() + entry_offset_[e], bytes, len) == 0)) {
      return;  // already counted
    }
    idx = (idx + 1) & mask_;
  }
  SABOT_CHECK_LT(entry_gid_.size(), size_t{kNoEntry - 1});
  slots_[idx] = static_cast<uint32_t>(entry_gid_.size());
  entry_gid_.push_back(gid);
  entry_hash_.push_back(value_hash);
  arena_.insert(arena_.end(), bytes, bytes + len);
  entry_offset_.push_back(arena_.size());
  ++counts_[gid];
  if (entry_gid_.size() * 2 > slots_.size()) rebuild_table(entry_gid_.size());
}

Status CountDistinctAccumulator::update(const Array& values, std::span<const uint32_t> ids) {
  SABOT_RETURN_IF_ERROR(check_update(values, ids));
  hash_scratch_.resize(static_cast<size_t>(values.length()));
  hash_column(values, hash_scratch_);
  const uint64_t* h = hash_scratch_.data();
  const uint32_t* g = ids.data();
  switch (input_type_.id()) {
    case TypeId::kBool:
      for_each_valid(values, [&](int64_t i) {
        uint8_t b = values.bool_value(i) ? 1 : 0;
        insert(g[i], h[i], &b, 1);
      });
      break;
    case TypeId::kInt32: {
      const int32_t* v = values.values<int32_t>();
      for_each_valid(values, [&](int64_t i) {
        insert(g[i], h[i], reinterpret_cast<const uint8_t*>(v + i), 4);
      });
      break;
    }
    case TypeId::kInt64:
    case TypeId::kUInt64:
    case TypeId::kTimestamp: {
      const int64_t* v = values.values<int64_t>();
      for_each_valid(values, [&](int64_t i) {
        insert(g[i], h[i], reinterpret_cast<const uint8_t*>(v + i), 8);
      });
      break;
    }
    case TypeId::kFloat64: {
      const double* v = values.values<double>();
      for_each_valid(values, [&](int64_t i) {
        double d = v[i];
        if (d == 0.0) d = 0.0;
        if (d != d) d = std::numeric_limits<double>::quiet_NaN();
        insert(g[i], h[i], reinterpret_cast<const uint8_t*>(&d), 8);
      });
      break;
    }
    case TypeId::kUtf8:
    case TypeId::kBinary:
      for_each_valid(values, [&](int64_t i) {
        std::string_view s = values.string_view(i);
        insert(g[i], h[i], reinterpret_cast<const uint8_t*>(s.data()), s.size());
      });
      break;
  }
  return Status::ok();
}

Status CountDistinctAccumulator::merge(const GroupedAccumulator& other_base,
                                       std::span<const uint32_t> map) {
  SABOT_RETURN_IF_ERROR(check_merge(other_base, map));
  const auto& other = static_cast<const CountDistinctAccumulator&>(other_base);
  for (size_t e = 0; e < other.entry_gid_.size(); ++e) {
    insert(map[other.entry_gid_[e]], other.entry_hash_[e],
           other.arena_.data() + other.entry_offset_[e],
           other.entry_offset_[e + 1] - other.entry_offset_[e]);
  }
  return Status::ok();
}

Result<Array> CountDistinctAccumulator::finalize() const {
  columnar::Int64Builder b;
  b.append_values(counts_.data(), num_groups_);
  return b.finish();
}

void CountDistinctAccumulator::serialize(std::string* out) const {
  write_accumulator_header(*this, out);
  ByteWriter w(out);
  w.put_vector(entry_gid_);
  w.put_vector(entry_hash_);
  w.put_vector(entry_offset_);
  w.put_vector(arena_);
  w.put_vector(counts_);  // redundant with the entries, but bounds num_groups by the input size
}

Status CountDistinctAccumulator::deserialize(std::string_view bytes) {
  ByteReader r(bytes, "count_distinct accumulator");
  uint32_t n = 0;
  SABOT_RETURN_IF_ERROR(read_accumulator_header(*this, &r, &n));
  std::vector<uint32_t> gids;
  std::vector<uint64_t> hashes;
  std::vector<uint64_t> offsets;
  std::vector<uint8_t> arena;
  SABOT_RETURN_IF_ERROR(r.get_vector(&gids));
  SABOT_RETURN_IF_ERROR(r.get_vector(&hashes));
  SABOT_RETURN_IF_ERROR(r.get_vector(&offsets));
  SABOT_RETURN_IF_ERROR(r.get_vector(&arena));
  std::vector<int64_t> counts;
  SABOT_RETURN_IF_ERROR(r.get_vector(&counts));
  SABOT_RETURN_IF_ERROR(r.expect_end());
  if (hashes.size() != gids.size() || offsets.size() != gids.size() + 1 || offsets.front() != 0 ||
      offsets.back() != arena.size() || !std::is_sorted(offsets.begin(), offsets.end()) ||
      counts.size() != n) {
    return r.invalid("inconsistent entries");
  }
  std::vector<int64_t> recount(n, 0);
  for (uint32_t g : gids) {
    if (g >= n) {
      return r.invalid("entry for group " + std::to_string(g) + " beyond " + std::to_string(n) +
                       " groups");
    }
    ++recount[g];
  }
  if (recount != counts) return r.invalid("distinct counts do not match the entries");
  entry_gid_ = std::move(gids);
  entry_hash_ = std::move(hashes);
  entry_offset_ = std::move(offsets);
  arena_ = std::move(arena);
  counts_ = std::move(counts);
  num_groups_ = n;
  rebuild_table(entry_gid_.size());
  return Status::ok();
}

// Entries of the listed groups as (index into `groups`, value hash, value bytes).
void CountDistinctAccumulator::serialize_groups(std::span<const uint32_t> groups,
                                                ByteWriter& w) const {
  write_groups_header(*this, groups.size(), w);
  std::vector<uint32_t> pos(num_groups_, kNoEntry);
  for (size_t i = 0; i < groups.size(); ++i) pos[groups[i]] = static_cast<uint32_t>(i);
  uint64_t entries = 0;
  for (uint32_t g : groups) entries += static_cast<uint64_t>(counts_[g]);
  w.put<uint64_t>(entries);
  for (size_t e = 0; e < entry_gid_.size(); ++e) {
    const uint32_t p = pos[entry_gid_[e]];
    if (p == kNoEntry) continue;
    w.put<uint32_t>(p);
    w.put<uint64_t>(entry_hash_[e]);
    w.put_bytes(std::string_view(reinterpret_cast<const char*>(arena_.data()) + entry_offset_[e],
                                 entry_offset_[e + 1] - entry_offset_[e]));
  }
}

Status CountDistinctAccumulator::deserialize_groups(ByteReader& r,
                                                    std::span<const uint32_t> groups) {
  SABOT_RETURN_IF_ERROR(read_groups_header(*this, r, groups.size()));
  uint64_t entries = 0;
  SABOT_RETURN_IF_ERROR(r.get_count(&entries, sizeof(uint32_t) + 2 * sizeof(uint64_t)));
  for (uint64_t e = 0; e < entries; ++e) {
    uint32_t p = 0;
    uint64_t hash = 0;
    std::string_view bytes;
    SABOT_RETURN_IF_ERROR(r.get(&p));
    SABOT_RETURN_IF_ERROR(r.get(&hash));
    SABOT_RETURN_IF_ERROR(r.get_bytes(&bytes));
    if (p >= groups.size()) {
      return r.invalid("entry of group " + std::to_string(p) + " beyond " +
                       std::to_string(groups.size()) + " groups");
    }
    insert(groups[p], hash, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  }
  return Status::ok();
}

}  // namespace sabot::compute::internal
