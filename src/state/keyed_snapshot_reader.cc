// Keyed state read without the job's code: the snapshot walk and the generic value decoder.

#include "sabot/state/keyed_snapshot_reader.h"

#include <cxxabi.h>

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "sabot/state/key_registry.h"
#include "sabot/state/keyed_state_backend.h"

namespace sabot::state {

using columnar::DataType;
using columnar::Scalar;
using columnar::TypeId;

bool is_keyed_state_type(std::string_view state_type) {
  return state_type == kKeyedStateType || state_type == kProcessFunctionStateType;
}

std::string demangle_type_tag(std::string_view type_tag) {
  const std::string tag(type_tag);
  int status = 0;
  char* out = abi::__cxa_demangle(tag.c_str(), nullptr, nullptr, &status);
  if (status != 0 || out == nullptr) {
    std::free(out);
    return tag;
  }
  std::string result(out);
  std::free(out);
  return result;
}

// ---- JSON pieces ----

std::string to_hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char ch : bytes) {
    const auto c = static_cast<unsigned char>(ch);
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

namespace {

// Shortest text that reads back as the same double; JSON has no NaN or infinities.
std::string double_json(double v) {
  if (std::isnan(v)) return "\"NaN\"";
  if (std::isinf(v)) return v > 0 ? "\"Infinity\"" : "\"-Infinity\"";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  SABOT_CHECK(ec == std::errc());
  return std::string(buf, end);
}

}  // namespace

std::string scalar_to_json(const Scalar& value) {
  if (!value.is_valid) return "null";
  switch (value.type.id()) {
    case TypeId::kBool:
      return value.as_bool() ? "true" : "false";
    case TypeId::kInt32:
    case TypeId::kInt64:
    case TypeId::kTimestamp:
      return std::to_string(value.as_int64());
    case TypeId::kUInt64:
      return std::to_string(value.as_uint64());
    case TypeId::kFloat64:
      return double_json(value.as_float64());
    case TypeId::kUtf8:
      return json_string(value.as_string());
    case TypeId::kBinary:
      return json_string(to_hex(value.as_string()));
  }
  return "null";
}

// ---- Parsing keys given as text ----

namespace {

template <typename T>
bool parse_number(std::string_view text, T* v) {
  if (text.empty()) return false;
  if (text.front() == '+') text.remove_prefix(1);
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *v);
  return ec == std::errc() && end == text.data() + text.size();
}

bool parse_hex(std::string_view text, std::string* out) {
  if (text.size() % 2 != 0) return false;
  out->clear();
  for (size_t i = 0; i < text.size(); i += 2) {
    unsigned v = 0;
    auto [end, ec] = std::from_chars(text.data() + i, text.data() + i + 2, v, 16);
    if (ec != std::errc() || end != text.data() + i + 2) return false;
    out->push_back(static_cast<char>(v));
  }
  return true;
}

}  // namespace

Result<std::vector<Scalar>> parse_key(std::string_view text, std::span<const DataType> types) {
  std::vector<std::string_view> parts;
  if (types.size() == 1) {
    parts.push_back(text);
  } else {
    size_t start = 0;
    while (true) {
      const size_t comma = text.find(',', start);
      parts.push_back(
          text.substr(start, comma == std::string_view::npos ? text.npos : comma - start));
      if (comma == std::string_view::npos) break;
      start = comma + 1;
    }
    if (parts.size() != types.size()) {
      return Status::invalid_argument("key '" + std::string(text) + "' has " +
                                      std::to_string(parts.size()) + " values, the state's key " +
                                      std::to_string(types.size()) +
                                      " columns (give them separated by ',')");
    }
  }
  std::vector<Scalar> out;
  for (size_t c = 0; c < types.size(); ++c) {
    const DataType& t = types[c];
    const std::string_view p = parts[c];
    auto bad = [&] {
      return Status::invalid_argument("key column " + std::to_string(c) + " is " + t.to_string() +
                                      ": '" + std::string(p) + "' is not such a value");
    };
    if (p == "null" && t.id() != TypeId::kUtf8) {
      out.push_back(Scalar::null(t));
      continue;
    }
    switch (t.id()) {
      case TypeId::kBool:
        if (p != "true" && p != "false") return bad();
        out.push_back(Scalar::of_bool(p == "true"));
        break;
      case TypeId::kInt32: {
        int32_t v = 0;
        if (!parse_number(p, &v)) return bad();
        out.push_back(Scalar::of_int32(v));
        break;
      }
      case TypeId::kInt64:
      case TypeId::kTimestamp: {
        int64_t v = 0;
        if (!parse_number(p, &v)) return bad();
        out.push_back(Scalar{t, true, v});
        break;
      }
      case TypeId::kUInt64: {
        uint64_t v = 0;
        if (!parse_number(p, &v)) return bad();
        out.push_back(Scalar::of_uint64(v));
        break;
      }
      case TypeId::kFloat64: {
        double v = 0;
        if (!parse_number(p, &v)) return bad();
        out.push_back(Scalar::of_float64(v));
        break;
      }
      case TypeId::kUtf8:
        out.push_back(Scalar::of_utf8(std::string(p)));
        break;
      case TypeId::kBinary: {
        std::string bytes;
        if (!parse_hex(p, &bytes)) return bad();
        out.push_back(Scalar::of_binary(std::move(bytes)));
        break;
      }
    }
  }
  return out;
}

// ---- The value decoder ----

// A StateCodec encoding, reconstructed from a demangled C++ type.
struct ValueDecoder::Node {
  enum class Kind { kBool, kSigned, kUnsigned, kFloat, kString, kVector, kPair, kOptional, kMap };
  Kind kind = Kind::kBool;
  size_t size = 0;  // bytes of a number
  // Map values carry an i64 write time before the value (MapState's TimedEntry).
  bool timed_values = false;
  std::vector<std::shared_ptr<const Node>> args;
};

namespace {

using Node = ValueDecoder::Node;
using NodePtr = std::shared_ptr<const Node>;

// A demangled type: a name and template arguments ("std::pair<long, double>").
struct TypeExpr {
  std::string name;
  std::vector<TypeExpr> args;
};

std::string_view trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

bool parse_type(std::string_view s, TypeExpr* out) {
  s = trim(s);
  // "long const" (a std::map's pair) is the same encoding as "long".
  constexpr std::string_view kConst = " const";
  if (s.size() > kConst.size() && s.substr(s.size() - kConst.size()) == kConst) {
    s = trim(s.substr(0, s.size() - kConst.size()));
  }
  if (s.empty()) return false;
  const size_t lt = s.find('<');
  if (lt == std::string_view::npos) {
    out->name = std::string(s);
    return true;
  }
  if (s.back() != '>') return false;
  out->name = std::string(trim(s.substr(0, lt)));
  const std::string_view inner = s.substr(lt + 1, s.size() - lt - 2);
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i <= inner.size(); ++i) {
    const char c = i < inner.size() ? inner[i] : ',';
    if (c == '<' || c == '(' || c == '[') ++depth;
    if (c == '>' || c == ')' || c == ']') --depth;
    if (depth < 0) return false;
    if (c == ',' && depth == 0) {
      TypeExpr arg;
      if (!parse_type(inner.substr(start, i - start), &arg)) return false;
      out->args.push_back(std::move(arg));
      start = i + 1;
    }
  }
  return depth == 0;
}

bool is_string_type(const TypeExpr& t) {
  if (t.name == "std::string" || t.name == "std::__cxx11::string") return t.args.empty();
  return (t.name == "std::__cxx11::basic_string" || t.name == "std::basic_string") &&
         !t.args.empty() && t.args[0].name == "char" && t.args[0].args.empty();
}

// The readable form of a value type (std::string instead of its basic_string spelling, without
// allocators and comparators).
std::string short_type_text(const TypeExpr& t) {
  if (is_string_type(t)) return "std::string";
  size_t keep = t.args.size();
  if (t.name == "std::vector") keep = std::min<size_t>(keep, 1);
  if (t.name == "std::map") keep = std::min<size_t>(keep, 2);
  if (keep == 0) return t.name;
  std::string out = t.name + "<";
  for (size_t i = 0; i < keep; ++i) {
    if (i) out += ", ";
    out += short_type_text(t.args[i]);
  }
  return out + ">";
}

NodePtr number(Node::Kind kind, size_t size) {
  auto n = std::make_shared<Node>();
  n->kind = kind;
  n->size = size;
  return n;
}

// The decoder of `t`, or null with `why` naming the first type without generic decoding.
NodePtr build(const TypeExpr& t, std::string* why) {
  using K = Node::Kind;
  if (t.args.empty()) {
    static const std::vector<std::tuple<std::string_view, K, size_t>> kScalars = {
        {"bool", K::kBool, 1},
        {"char", K::kSigned, 1},
        {"signed char", K::kSigned, 1},
        {"unsigned char", K::kUnsigned, 1},
        {"char8_t", K::kUnsigned, 1},
        {"short", K::kSigned, 2},
        {"unsigned short", K::kUnsigned, 2},
        {"char16_t", K::kUnsigned, 2},
        {"int", K::kSigned, 4},
        {"unsigned int", K::kUnsigned, 4},
        {"char32_t", K::kUnsigned, 4},
        {"wchar_t", K::kSigned, sizeof(wchar_t)},
        {"long", K::kSigned, sizeof(long)},
        {"unsigned long", K::kUnsigned, sizeof(unsigned long)},
        {"long long", K::kSigned, sizeof(long long)},
        {"unsigned long long", K::kUnsigned, sizeof(unsigned long long)},
        {"float", K::kFloat, 4},
        {"double", K::kFloat, 8},
    };
    for (const auto& [name, kind, size] : kScalars) {
      if (t.name == name) return number(kind, size);
    }
  }
  if (is_string_type(t)) {
    auto n = std::make_shared<Node>();
    n->kind = K::kString;
    return n;
  }
  struct Template {
    std::string_view name;
    K kind;
    size_t args;  // used (a vector's allocator and a map's comparator are not)
  };
  static const Template kTemplates[] = {{"std::vector", K::kVector, 1},
                                        {"std::pair", K::kPair, 2},
                                        {"std::optional", K::kOptional, 1},
                                        {"std::map", K::kMap, 2}};
  for (const Template& tt : kTemplates) {
    if (t.name != tt.name || t.args.size() < tt.args) continue;
    auto n = std::make_shared<Node>();
    n->kind = tt.kind;
    for (size_t i = 0; i < tt.args; ++i) {
      NodePtr a = build(t.args[i], why);
      if (!a) return nullptr;
      n->args.push_back(std::move(a));
    }
    return n;
  }
  *why = "C++ type " + short_type_text(t) +
         " has no generic decoding (a struct, an enum or a type with its own StateCodec is "
         "encoded as the program defines it)";
  return nullptr;
}

Status decode_json(const Node& n, ByteReader& r, std::string* out);

// A map key as JSON object key text, or false when the key type is not a string/number/bool.
bool object_key(const Node& key, std::string_view key_json, std::string* out) {
  if (key.kind == Node::Kind::kString) {
    *out = std::string(key_json);
    return true;
  }
  if (key.kind == Node::Kind::kVector || key.kind == Node::Kind::kPair ||
      key.kind == Node::Kind::kOptional || key.kind == Node::Kind::kMap) {
    return false;
  }
  if (!key_json.empty() && key_json.front() == '"') {  // NaN / Infinity
    *out = std::string(key_json);
  } else {
    *out = json_string(key_json);
  }
  return true;
}

template <typename T>
Status get_number(ByteReader& r, std::string* out) {
  T v{};
  SABOT_RETURN_IF_ERROR(r.get(&v));
  if constexpr (std::is_floating_point_v<T>) {
    out->append(double_json(static_cast<double>(v)));
  } else {
    out->append(std::to_string(v));
  }
  return Status::ok();
}

Status decode_json(const Node& n, ByteReader& r, std::string* out) {
  using K = Node::Kind;
  switch (n.kind) {
    case K::kBool: {
      uint8_t b = 0;
      SABOT_RETURN_IF_ERROR(r.get(&b));
      if (b > 1) return r.invalid("bool byte " + std::to_string(b) + " is neither 0 nor 1");
      out->append(b ? "true" : "false");
      return Status::ok();
    }
    case K::kSigned:
      switch (n.size) {
        case 1:
          return get_number<int8_t>(r, out);
        case 2:
          return get_number<int16_t>(r, out);
        case 4:
          return get_number<int32_t>(r, out);
        default:
          return get_number<int64_t>(r, out);
      }
    case K::kUnsigned:
      switch (n.size) {
        case 1:
          return get_number<uint8_t>(r, out);
        case 2:
          return get_number<uint16_t>(r, out);
        case 4:
          return get_number<uint32_t>(r, out);
        default:
          return get_number<uint64_t>(r, out);
      }
    case K::kFloat:
      return n.size == 4 ? get_number<float>(r, out) : get_number<double>(r, out);
    case K::kString: {
      std::string_view s;
      SABOT_RETURN_IF_ERROR(r.get_bytes(&s));
      if (columnar::is_valid_utf8(s)) {
        out->append(json_string(s));
      } else {
        // Bytes, not text (e.g. a window's serialized partials): JSON strings hold Unicode.
        out->append("{\"hex\": ");
        out->append(json_string(to_hex(s)));
        out->append("}");
      }
      return Status::ok();
    }
    case K::kVector: {
      uint64_t count = 0;
      SABOT_RETURN_IF_ERROR(r.get_count(&count, 1));
      out->push_back('[');
      for (uint64_t i = 0; i < count; ++i) {
        if (i) out->append(", ");
        SABOT_RETURN_IF_ERROR(decode_json(*n.args[0], r, out));
      }
      out->push_back(']');
      return Status::ok();
    }
    case K::kPair:
      out->push_back('[');
      SABOT_RETURN_IF_ERROR(decode_json(*n.args[0], r, out));
      out->append(", ");
      SABOT_RETURN_IF_ERROR(decode_json(*n.args[1], r, out));
      out->push_back(']');
      return Status::ok();
    case K::kOptional: {
      uint8_t has = 0;
      SABOT_RETURN_IF_ERROR(r.get(&has));
      if (has > 1) return r.invalid("optional flag " + std::to_string(has) + " is neither 0 nor 1");
      if (has == 0) {
        out->append("null");
        return Status::ok();
      }
      return decode_json(*n.args[0], r, out);
    }
    case K::kMap: {
      uint64_t count = 0;
      SABOT_RETURN_IF_ERROR(r.get_count(&count, 1));
      std::string key_json;
      std::string key_text;
      bool as_object = true;
      std::string body;
      std::string pairs;
      for (uint64_t i = 0; i < count; ++i) {
        key_json.clear();
        SABOT_RETURN_IF_ERROR(decode_json(*n.args[0], r, &key_json));
        if (n.timed_values) {
          int64_t write_ms = 0;
          SABOT_RETURN_IF_ERROR(r.get(&write_ms));
        }
        std::string value_json;
        SABOT_RETURN_IF_ERROR(decode_json(*n.args[1], r, &value_json));
        if (i) {
          body.append(", ");
          pairs.append(", ");
        }
        if (as_object && object_key(*n.args[0], key_json, &key_text)) {
          body.append(key_text).append(": ").append(value_json);
        } else {
          as_object = false;
        }
        pairs.append("[").append(key_json).append(", ").append(value_json).append("]");
      }
      if (as_object) {
        out->append("{").append(body).append("}");
      } else {
        out->append("[").append(pairs).append("]");
      }
      return Status::ok();
    }
  }
  return r.invalid("unknown value kind");
}

}  // namespace

ValueDecoder ValueDecoder::for_state(StateKind kind, std::string_view type_tag) {
  ValueDecoder d;
  const std::string readable = demangle_type_tag(type_tag);
  TypeExpr handle;
  struct Handle {
    StateKind kind;
    std::string_view name;
    size_t args;
  };
  static const Handle kHandles[] = {{StateKind::kValue, "sabot::state::ValueState", 1},
                                    {StateKind::kList, "sabot::state::ListState", 1},
                                    {StateKind::kMap, "sabot::state::MapState", 2},
                                    {StateKind::kReducing, "sabot::state::ReducingState", 1},
                                    {StateKind::kAggregating, "sabot::state::AggregatingState", 3}};
  const Handle* h = nullptr;
  for (const Handle& c : kHandles) {
    if (c.kind == kind) h = &c;
  }
  if (h == nullptr || !parse_type(readable, &handle) || handle.name != h->name ||
      handle.args.size() != h->args) {
    d.value_type_ = readable;
    d.reason_ = "type tag '" + std::string(type_tag) + "' (" + readable + ") is not a " +
                std::string(state_kind_name(kind)) + " state handle this build knows";
    return d;
  }
  std::string why;
  switch (kind) {
    case StateKind::kValue:
    case StateKind::kReducing:
      d.value_type_ = short_type_text(handle.args[0]);
      d.root_ = build(handle.args[0], &why);
      break;
    case StateKind::kList: {
      d.value_type_ = "std::vector<" + short_type_text(handle.args[0]) + ">";
      NodePtr element = build(handle.args[0], &why);
      if (element) {
        auto n = std::make_shared<Node>();
        n->kind = Node::Kind::kVector;
        n->args.push_back(std::move(element));
        d.root_ = std::move(n);
      }
      break;
    }
    case StateKind::kMap: {
      d.value_type_ = "std::map<" + short_type_text(handle.args[0]) + ", " +
                      short_type_text(handle.args[1]) + ">";
      NodePtr key = build(handle.args[0], &why);
      NodePtr value = key ? build(handle.args[1], &why) : nullptr;
      if (key && value) {
        auto n = std::make_shared<Node>();
        n->kind = Node::Kind::kMap;
        n->timed_values = true;
        n->args = {std::move(key), std::move(value)};
        d.root_ = std::move(n);
      }
      break;
    }
    case StateKind::kAggregating:
      // The accumulator is what is stored.
      d.value_type_ = short_type_text(handle.args[1]);
      d.root_ = build(handle.args[1], &why);
      break;
  }
  if (!d.root_) d.reason_ = why;
  return d;
}

Result<std::string> ValueDecoder::to_json(std::string_view bytes) const {
  SABOT_CHECK(root_ != nullptr);
  const std::string what = "value of type " + value_type_;  // ByteReader keeps a view of it
  ByteReader r(bytes, what);
  std::string out;
  SABOT_RETURN_IF_ERROR(decode_json(*root_, r, &out));
  SABOT_RETURN_IF_ERROR(r.expect_end());
  return out;
}

// ---- The snapshot walk ----

Result<KeyedSnapshotReader> KeyedSnapshotReader::open(std::string_view bytes, std::string_view uid,
                                                      uint32_t max_parallelism) {
  SABOT_ASSIGN_OR_RETURN(SnapshotHeader peek, SnapshotReader::peek_header(bytes));
  if (!is_keyed_state_type(peek.state_type)) {
    return Status::invalid_argument(describe_snapshot(uid, peek.state_type) +
                                    " is not keyed state (keyed-state or process-function)");
  }
  SABOT_ASSIGN_OR_RETURN(SnapshotReader sr,
                         SnapshotReader::open(bytes, uid, peek.state_type, 1, max_parallelism));
  KeyedSnapshotReader out(std::move(sr));
  const auto& sections = out.reader_.sections();
  bool have_header = false;
  for (size_t i = 0; i < sections.size(); ++i) {
    if (sections[i].key_group != kOperatorWide) continue;
    ByteReader r = out.reader_.section_reader(i);
    uint32_t ncols = 0;
    SABOT_RETURN_IF_ERROR(r.get(&ncols));
    if (ncols == 0) return r.invalid("no key columns");
    for (uint32_t c = 0; c < ncols; ++c) {
      uint8_t id = 0;
      uint8_t unit = 0;
      SABOT_RETURN_IF_ERROR(r.get(&id));
      SABOT_RETURN_IF_ERROR(r.get(&unit));
      if (id > static_cast<uint8_t>(TypeId::kTimestamp)) {
        return r.invalid("key column " + std::to_string(c) + " has unknown type id " +
                         std::to_string(id));
      }
      if (unit > static_cast<uint8_t>(TimeUnit::kNano)) {
        return r.invalid("key column " + std::to_string(c) + " has unknown time unit " +
                         std::to_string(unit));
      }
      out.key_types_.emplace_back(static_cast<TypeId>(id), static_cast<TimeUnit>(unit));
    }
    uint64_t nstates = 0;
    SABOT_RETURN_IF_ERROR(r.get_count(&nstates, 2 * sizeof(uint64_t) + 1 + sizeof(int64_t)));
    for (uint64_t s = 0; s < nstates; ++s) {
      StateInfo info;
      std::string_view name;
      std::string_view tag;
      uint8_t kind = 0;
      SABOT_RETURN_IF_ERROR(r.get_bytes(&name));
      SABOT_RETURN_IF_ERROR(r.get(&kind));
      SABOT_RETURN_IF_ERROR(r.get_bytes(&tag));
      SABOT_RETURN_IF_ERROR(r.get(&info.ttl_ms));
      if (kind < 1 || kind > 5) return r.invalid("unknown state kind " + std::to_string(kind));
      info.name = std::string(name);
      info.kind = static_cast<StateKind>(kind);
      info.type_tag = std::string(tag);
      out.states_.push_back(std::move(info));
    }
    SABOT_RETURN_IF_ERROR(r.expect_end());
    have_header = true;
  }
  if (!have_header) {
    return Status::invalid_data(describe_snapshot(uid, peek.state_type) +
                                ": no operator-wide section (the states' descriptions)");
  }
  for (size_t i = 0; i < sections.size(); ++i) {
    if (sections[i].key_group == kOperatorWide) continue;
    SABOT_RETURN_IF_ERROR(out.walk_section(i, -1, nullptr, &out));
  }
  return out;
}

const KeyedSnapshotReader::StateInfo* KeyedSnapshotReader::find_state(std::string_view name) const {
  for (const StateInfo& s : states_) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

Status KeyedSnapshotReader::for_each_entry(std::string_view name,
                                           const std::function<Status(const Entry&)>& fn) const {
  int want = -1;
  for (size_t s = 0; s < states_.size(); ++s) {
    if (states_[s].name == name) want = static_cast<int>(s);
  }
  if (want < 0) {
    return Status::not_found(describe_snapshot(header().operator_uid, header().state_type) +
                             " has no state named '" + std::string(name) + "'");
  }
  for (size_t i = 0; i < reader_.sections().size(); ++i) {
    if (reader_.sections()[i].key_group == kOperatorWide) continue;
    SABOT_RETURN_IF_ERROR(walk_section(i, want, fn, nullptr));
  }
  return Status::ok();
}

Status KeyedSnapshotReader::walk_section(size_t i, int want,
                                         const std::function<Status(const Entry&)>& fn,
                                         KeyedSnapshotReader* counts) const {
  const int32_t kg = reader_.sections()[i].key_group;
  ByteReader r = reader_.section_reader(i);
  uint64_t nkeys = 0;
  SABOT_RETURN_IF_ERROR(r.get_count(&nkeys, sizeof(uint64_t)));
  std::vector<std::vector<Scalar>> keys(static_cast<size_t>(nkeys));
  for (uint64_t k = 0; k < nkeys; ++k) {
    std::string_view kb;
    const size_t at = r.position();
    SABOT_RETURN_IF_ERROR(r.get_bytes(&kb));
    Status st = KeyRegistry::decode_key(kb, key_types_, &keys[static_cast<size_t>(k)]);
    if (!st.is_ok()) {
      return Status::invalid_data(std::string(r.what()) + ": key " + std::to_string(k) +
                                  " does not decode (" + st.message() + ") at byte " +
                                  std::to_string(at));
    }
  }
  std::vector<uint8_t> seen;
  for (size_t s = 0; s < states_.size(); ++s) {
    uint64_t nentries = 0;
    SABOT_RETURN_IF_ERROR(
        r.get_count(&nentries, sizeof(uint32_t) + sizeof(uint64_t) * 2 + sizeof(int64_t)));
    if (counts) seen.assign(static_cast<size_t>(nkeys), 0);
    for (uint64_t e = 0; e < nentries; ++e) {
      uint32_t key_index = 0;
      Entry entry;
      entry.key_group = kg;
      SABOT_RETURN_IF_ERROR(r.get(&key_index));
      SABOT_RETURN_IF_ERROR(r.get(&entry.ns));
      SABOT_RETURN_IF_ERROR(r.get(&entry.write_ms));
      SABOT_RETURN_IF_ERROR(r.get_bytes(&entry.value));
      if (key_index >= nkeys) {
        return r.invalid("entry of state '" + states_[s].name + "' names key " +
                         std::to_string(key_index) + " of " + std::to_string(nkeys));
      }
      if (counts) {
        if (!seen[key_index]) ++counts->states_[s].keys;
        seen[key_index] = 1;
      }
      if (static_cast<int>(s) == want) {
        entry.key = keys[key_index];
        SABOT_RETURN_IF_ERROR(fn(entry));
      }
    }
    if (counts) counts->states_[s].entries += nentries;
  }
  if (header().state_type == kProcessFunctionStateType) {
    // Event-time, then processing-time timers: a count, then (u32 key index, i64 time) each.
    for (int list = 0; list < 2; ++list) {
      uint64_t n = 0;
      SABOT_RETURN_IF_ERROR(r.get_count(&n, sizeof(uint32_t) + sizeof(int64_t)));
      for (uint64_t t = 0; t < n; ++t) {
        uint32_t key_index = 0;
        int64_t time = 0;
        SABOT_RETURN_IF_ERROR(r.get(&key_index));
        SABOT_RETURN_IF_ERROR(r.get(&time));
        if (key_index >= nkeys) {
          return r.invalid("timer " + std::to_string(t) + " names key " +
                           std::to_string(key_index) + " of " + std::to_string(nkeys));
        }
      }
      if (counts) (list == 0 ? counts->event_timers_ : counts->processing_timers_) += n;
    }
  }
  if (counts) {
    counts->num_keys_ += nkeys;
    counts->num_key_groups_ += 1;
  }
  return r.expect_end();
}

}  // namespace sabot::state
