#include "columnar/flatbuffer.h"

#include <algorithm>
#include <limits>

namespace sabot::columnar::fb {
namespace {

void pad_to(std::vector<uint8_t>* out, size_t base, size_t alignment) {
  while ((out->size() - base) % alignment != 0) out->push_back(0);
}

template <typename T>
void put(std::vector<uint8_t>* out, size_t at, T value) {
  std::memcpy(out->data() + at, &value, sizeof(T));
}

template <typename T>
void append(std::vector<uint8_t>* out, T value) {
  size_t at = out->size();
  out->resize(at + sizeof(T));
  put(out, at, value);
}

template <typename T>
T load(const uint8_t* data, size_t pos) {
  T v;
  std::memcpy(&v, data + pos, sizeof(T));
  return v;
}

Status bad(std::string what, uint64_t pos) {
  return Status::invalid_data("flatbuffer: " + what + " at byte " + std::to_string(pos));
}

}  // namespace

void TableBuilder::add_string(int id, std::string_view value) {
  Entry e;
  e.kind = Kind::kString;
  e.id = id;
  e.bytes = std::string(value);
  entries_.push_back(std::move(e));
}

void TableBuilder::add_table(int id, TableBuilder table) {
  Entry e;
  e.kind = Kind::kTable;
  e.id = id;
  e.tables.push_back(std::move(table));
  entries_.push_back(std::move(e));
}

void TableBuilder::add_table_vector(int id, std::vector<TableBuilder> tables) {
  Entry e;
  e.kind = Kind::kTableVector;
  e.id = id;
  e.tables = std::move(tables);
  entries_.push_back(std::move(e));
}

void TableBuilder::add_struct_vector(int id, const void* data, int64_t count, int struct_size,
                                     int alignment) {
  Entry e;
  e.kind = Kind::kStructVector;
  e.id = id;
  e.count = count;
  e.alignment = std::max(alignment, 4);
  e.bytes.assign(static_cast<const char*>(data), static_cast<size_t>(count * struct_size));
  entries_.push_back(std::move(e));
}

std::vector<uint8_t> TableBuilder::finish() const {
  std::vector<uint8_t> out;
  finish_into(&out);
  return out;
}

void TableBuilder::finish_into(std::vector<uint8_t>* out) const {
  const size_t base = out->size();
  append<uint32_t>(out, 0);
  size_t root = write(out, base);
  put<uint32_t>(out, base, static_cast<uint32_t>(root));
}

size_t TableBuilder::write(std::vector<uint8_t>* out, size_t base) const {
  struct Slot {
    const Entry* entry;
    uint32_t size;
    uint32_t offset;
  };
  std::vector<Slot> slots;
  int max_id = -1;
  for (const Entry& e : entries_) {
    slots.push_back(Slot{&e, e.kind == Kind::kScalar ? static_cast<uint32_t>(e.size) : 4u, 0});
    max_id = std::max(max_id, e.id);
  }
  // Largest first packs the inline part without holes (the table start is 8-aligned).
  std::stable_sort(slots.begin(), slots.end(),
                   [](const Slot& a, const Slot& b) { return a.size > b.size; });
  uint32_t cursor = 4;  // after the soffset to the vtable
  for (Slot& s : slots) {
    cursor = (cursor + s.size - 1) / s.size * s.size;
    s.offset = cursor;
    cursor += s.size;
  }
  const uint16_t inline_size = static_cast<uint16_t>(cursor);
  const uint16_t vtable_size = static_cast<uint16_t>(4 + 2 * (max_id + 1));

  pad_to(out, base, 2);
  const size_t vtable = out->size() - base;
  out->resize(out->size() + vtable_size, 0);
  put<uint16_t>(out, base + vtable, vtable_size);
  put<uint16_t>(out, base + vtable + 2, inline_size);
  for (const Slot& s : slots) {
    put<uint16_t>(out, base + vtable + 4 + 2 * static_cast<size_t>(s.entry->id),
                  static_cast<uint16_t>(s.offset));
  }

  pad_to(out, base, 8);
  const size_t table = out->size() - base;
  out->resize(out->size() + inline_size, 0);
  put<int32_t>(out, base + table, static_cast<int32_t>(table - vtable));
  for (const Slot& s : slots) {
    if (s.entry->kind == Kind::kScalar) {
      std::memcpy(out->data() + base + table + s.offset, &s.entry->scalar, s.size);
    }
  }

  // Children follow the table, so every uoffset points forward as the format requires.
  for (const Slot& s : slots) {
    const Entry& e = *s.entry;
    if (e.kind == Kind::kScalar) continue;
    size_t child = 0;
    switch (e.kind) {
      case Kind::kString:
        pad_to(out, base, 4);
        child = out->size() - base;
        append<uint32_t>(out, static_cast<uint32_t>(e.bytes.size()));
        out->insert(out->end(), e.bytes.begin(), e.bytes.end());
        out->push_back(0);
        break;
      case Kind::kTable:
        child = e.tables[0].write(out, base);
        break;
      case Kind::kTableVector: {
        pad_to(out, base, 4);
        child = out->size() - base;
        append<uint32_t>(out, static_cast<uint32_t>(e.tables.size()));
        out->resize(out->size() + 4 * e.tables.size(), 0);
        for (size_t i = 0; i < e.tables.size(); ++i) {
          size_t slot = child + 4 + 4 * i;
          size_t t = e.tables[i].write(out, base);
          put<uint32_t>(out, base + slot, static_cast<uint32_t>(t - slot));
        }
        break;
      }
      case Kind::kStructVector:
        pad_to(out, base, 4);
        // The elements (after the 4-byte length) must sit at their own alignment.
        while ((out->size() - base + 4) % static_cast<size_t>(e.alignment) != 0) out->push_back(0);
        child = out->size() - base;
        append<uint32_t>(out, static_cast<uint32_t>(e.count));
        out->insert(out->end(), e.bytes.begin(), e.bytes.end());
        break;
      case Kind::kScalar:
        break;
    }
    const size_t field = table + s.offset;
    put<uint32_t>(out, base + field, static_cast<uint32_t>(child - field));
  }
  return table;
}

Result<Table> Table::root(const uint8_t* data, size_t size) {
  if (size < 4) return bad("buffer of " + std::to_string(size) + " bytes is too short", 0);
  if (size > std::numeric_limits<uint32_t>::max()) return bad("buffer larger than 4 GiB", 0);
  return at(data, size, load<uint32_t>(data, 0));
}

Result<Table> Table::at(const uint8_t* data, size_t size, uint32_t pos) {
  if (uint64_t{pos} + 4 > size) return bad("table offset beyond the end", pos);
  Table t(data, size, pos);
  const int64_t vtable = int64_t{pos} - load<int32_t>(data, pos);
  if (vtable < 0 || vtable + 4 > static_cast<int64_t>(size)) {
    return bad("vtable offset " + std::to_string(vtable) + " out of bounds for table", pos);
  }
  t.vtable_ = static_cast<uint32_t>(vtable);
  t.vtable_size_ = load<uint16_t>(data, t.vtable_);
  t.inline_size_ = load<uint16_t>(data, t.vtable_ + 2);
  if (t.vtable_size_ < 4 || t.vtable_size_ % 2 != 0 ||
      t.vtable_ + uint64_t{t.vtable_size_} > size) {
    return bad("vtable of " + std::to_string(t.vtable_size_) + " bytes out of bounds", t.vtable_);
  }
  if (t.inline_size_ < 4 || uint64_t{pos} + t.inline_size_ > size) {
    return bad("table of " + std::to_string(t.inline_size_) + " bytes out of bounds", pos);
  }
  return t;
}

Result<uint32_t> Table::field_position(int id, size_t size) const {
  const uint32_t entry = 4 + 2 * static_cast<uint32_t>(id);
  if (entry + 2 > vtable_size_) return uint32_t{0};
  const uint16_t offset = load<uint16_t>(data_, vtable_ + entry);
  if (offset == 0) return uint32_t{0};
  if (offset < 4 || offset + size > inline_size_) {
    return bad("field " + std::to_string(id) + " at offset " + std::to_string(offset) +
                   " lies outside its table of " + std::to_string(inline_size_) + " bytes",
               pos_);
  }
  return pos_ + offset;
}

Result<uint32_t> Table::follow(int id) const {
  SABOT_ASSIGN_OR_RETURN(uint32_t field, field_position(id, 4));
  if (field == 0) return uint32_t{0};
  const uint32_t offset = load<uint32_t>(data_, field);
  const uint64_t target = uint64_t{field} + offset;
  if (offset == 0 || target + 4 > size_) {
    return bad("offset " + std::to_string(offset) + " of field " + std::to_string(id) +
                   " points beyond the end",
               field);
  }
  return static_cast<uint32_t>(target);
}

Result<std::optional<Table>> Table::table(int id) const {
  SABOT_ASSIGN_OR_RETURN(uint32_t target, follow(id));
  if (target == 0) return std::optional<Table>();
  SABOT_ASSIGN_OR_RETURN(Table t, at(data_, size_, target));
  return std::optional<Table>(t);
}

Result<std::optional<std::string_view>> Table::string(int id) const {
  SABOT_ASSIGN_OR_RETURN(uint32_t target, follow(id));
  if (target == 0) return std::optional<std::string_view>();
  const uint32_t length = load<uint32_t>(data_, target);
  if (uint64_t{target} + 4 + length > size_) {
    return bad("string of " + std::to_string(length) + " bytes runs beyond the end", target);
  }
  return std::optional<std::string_view>(
      std::string_view(reinterpret_cast<const char*>(data_) + target + 4, length));
}

Result<std::optional<Vector>> Table::vector(int id, uint32_t element_size) const {
  SABOT_ASSIGN_OR_RETURN(uint32_t target, follow(id));
  if (target == 0) return std::optional<Vector>();
  const uint32_t count = load<uint32_t>(data_, target);
  if (uint64_t{target} + 4 + uint64_t{count} * element_size > size_) {
    return bad("vector of " + std::to_string(count) + " elements runs beyond the end", target);
  }
  return std::optional<Vector>(Vector{target + 4, count});
}

Result<Table> Table::table_at(const Vector& v, uint32_t i) const {
  if (i >= v.count) return bad("vector index " + std::to_string(i) + " out of range", v.pos);
  const uint32_t slot = v.pos + 4 * i;
  const uint32_t offset = load<uint32_t>(data_, slot);
  const uint64_t target = uint64_t{slot} + offset;
  if (offset == 0 || target + 4 > size_) {
    return bad("table offset " + std::to_string(offset) + " points beyond the end", slot);
  }
  return at(data_, size_, static_cast<uint32_t>(target));
}

}  // namespace sabot::columnar::fb
