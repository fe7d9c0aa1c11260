#include "sabot/columnar/type.h"

#include <unordered_set>

namespace sabot::columnar {
namespace {

const char* unit_suffix(TimeUnit unit) {
  switch (unit) {
    case TimeUnit::kSecond:
      return "s";
    case TimeUnit::kMilli:
      return "ms";
    case TimeUnit::kMicro:
      return "us";
    case TimeUnit::kNano:
      return "ns";
  }
  return "?";
}

}  // namespace

int DataType::bit_width() const {
  switch (id_) {
    case TypeId::kBool:
      return 1;
    case TypeId::kInt32:
      return 32;
    case TypeId::kInt64:
    case TypeId::kUInt64:
    case TypeId::kFloat64:
    case TypeId::kTimestamp:
      return 64;
    case TypeId::kUtf8:
    case TypeId::kBinary:
      return 0;
  }
  return 0;
}

std::string DataType::to_string() const {
  switch (id_) {
    case TypeId::kBool:
      return "bool";
    case TypeId::kInt32:
      return "int32";
    case TypeId::kInt64:
      return "int64";
    case TypeId::kUInt64:
      return "uint64";
    case TypeId::kFloat64:
      return "float64";
    case TypeId::kUtf8:
      return "utf8";
    case TypeId::kBinary:
      return "binary";
    case TypeId::kTimestamp:
      return std::string("timestamp[") + unit_suffix(unit_) + "]";
  }
  return "unknown";
}

Result<DataType> parse_data_type(std::string_view text) {
  static constexpr DataType kSimple[] = {boolean(), int32(), int64(), uint64(),
                                         float64(), utf8(),  binary()};
  for (const DataType& t : kSimple) {
    if (t.to_string() == text) return t;
  }
  for (TimeUnit u : {TimeUnit::kSecond, TimeUnit::kMilli, TimeUnit::kMicro, TimeUnit::kNano}) {
    if (timestamp(u).to_string() == text) return timestamp(u);
  }
  return Status::invalid_argument(
      "unknown data type '" + std::string(text) +
      "' (expected bool, int32, int64, uint64, float64, utf8, binary or timestamp[s|ms|us|ns])");
}

std::string Field::to_string() const {
  std::string out = name + ": " + type.to_string();
  if (!nullable) out += " not null";
  return out;
}

Result<SchemaPtr> Schema::make(std::vector<Field> fields) {
  std::unordered_set<std::string_view> seen;
  for (size_t i = 0; i < fields.size(); ++i) {
    if (fields[i].name.empty()) {
      return Status::invalid_argument("schema field " + std::to_string(i) + " has an empty name");
    }
    if (!seen.insert(fields[i].name).second) {
      return Status::invalid_argument("schema has two fields named '" + fields[i].name + "'");
    }
  }
  return std::make_shared<const Schema>(std::move(fields));
}

int Schema::field_index(std::string_view name) const {
  for (size_t i = 0; i < fields_.size(); ++i) {
    if (fields_[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

Result<int> Schema::require_field_index(std::string_view name) const {
  int i = field_index(name);
  if (i >= 0) return i;
  std::string names;
  for (const Field& f : fields_) {
    if (!names.empty()) names += ", ";
    names += f.name;
  }
  return Status::not_found("no column named '" + std::string(name) +
                           "' (columns: " + (names.empty() ? std::string("none") : names) + ")");
}

std::string Schema::to_string() const {
  std::string out;
  for (const Field& f : fields_) {
    if (!out.empty()) out += '\n';
    out += f.to_string();
  }
  return out;
}

}  // namespace sabot::columnar
