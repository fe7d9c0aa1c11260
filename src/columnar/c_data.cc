#include "sabot/columnar/c_data.h"

#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "sabot/base/check.h"
#include "sabot/columnar/bitmap.h"

namespace sabot::columnar {
namespace {

// A non-null address for buffers that are absent or empty: consumers may dereference buffer
// pointers of zero-length arrays (the spec only allows null for absent validity bitmaps).
alignas(64) const uint8_t kEmpty[64] = {};

// ---------------------------------------------------------------------------------------------
// Export

struct ExportedSchema {
  std::string format;
  std::string name;
  std::vector<ArrowSchema> children;  // sized once, never resized: addresses are handed out
  std::vector<ArrowSchema*> child_ptrs;
};

void release_schema(ArrowSchema* schema) {
  if (schema == nullptr || schema->release == nullptr) return;
  auto* priv = static_cast<ExportedSchema*>(schema->private_data);
  for (ArrowSchema& child : priv->children) {
    // The consumer may have moved a child out, which marks our copy released.
    if (child.release != nullptr) child.release(&child);
  }
  delete priv;
  schema->release = nullptr;
  schema->private_data = nullptr;
}

void fill_schema(ArrowSchema* out, std::string format, std::string name, bool nullable,
                 int64_t n_children) {
  auto* priv = new ExportedSchema{std::move(format), std::move(name), {}, {}};
  priv->children.resize(static_cast<size_t>(n_children));
  for (ArrowSchema& c : priv->children) priv->child_ptrs.push_back(&c);
  out->format = priv->format.c_str();
  out->name = priv->name.c_str();
  out->metadata = nullptr;
  out->flags = nullable ? ARROW_FLAG_NULLABLE : 0;
  out->n_children = n_children;
  out->children = n_children > 0 ? priv->child_ptrs.data() : nullptr;
  out->dictionary = nullptr;
  out->release = &release_schema;
  out->private_data = priv;
}

struct ExportedArray {
  std::shared_ptr<const ArrayData> data;  // keeps the buffers alive
  const void* buffers[3] = {nullptr, nullptr, nullptr};
  std::vector<ArrowArray> children;  // sized once, never resized
  std::vector<ArrowArray*> child_ptrs;
};

void release_array(ArrowArray* array) {
  if (array == nullptr || array->release == nullptr) return;
  auto* priv = static_cast<ExportedArray*>(array->private_data);
  for (ArrowArray& child : priv->children) {
    if (child.release != nullptr) child.release(&child);
  }
  delete priv;
  array->release = nullptr;
  array->private_data = nullptr;
}

const void* buffer_address(const BufferPtr& buffer) {
  return buffer != nullptr ? static_cast<const void*>(buffer->data()) : kEmpty;
}

void fill_array(const Array& array, ArrowArray* out) {
  auto* priv = new ExportedArray();
  priv->data = array.data_ptr();
  const ArrayData& d = array.data();
  priv->buffers[0] = d.null_count > 0 ? buffer_address(d.validity) : nullptr;
  priv->buffers[1] = buffer_address(d.values);
  priv->buffers[2] = buffer_address(d.data);
  out->length = d.length;
  out->null_count = d.null_count;
  out->offset = d.offset;
  out->n_buffers = d.type.num_buffers();
  out->n_children = 0;
  out->buffers = priv->buffers;
  out->children = nullptr;
  out->dictionary = nullptr;
  out->release = &release_array;
  out->private_data = priv;
}

// ---------------------------------------------------------------------------------------------
// Import

// Owns a moved-in foreign struct and releases it exactly once, when the last buffer wrapping its
// memory goes away.
struct ImportedArray {
  ArrowArray array{};
  ImportedArray() = default;
  ImportedArray(const ImportedArray&) = delete;
  ImportedArray& operator=(const ImportedArray&) = delete;
  ~ImportedArray() {
    if (array.release != nullptr) array.release(&array);
  }
};

struct ImportedSchema {
  ArrowSchema schema{};
  ImportedSchema() = default;
  ImportedSchema(const ImportedSchema&) = delete;
  ImportedSchema& operator=(const ImportedSchema&) = delete;
  ~ImportedSchema() {
    if (schema.release != nullptr) schema.release(&schema);
  }
};

// Moves both structs into owners first, so that every error path below releases them.
struct ImportedPair {
  std::shared_ptr<ImportedArray> array;
  std::unique_ptr<ImportedSchema> schema;
};

Result<ImportedPair> take_ownership(ArrowArray* array, ArrowSchema* schema) {
  ImportedPair pair;
  if (schema != nullptr && schema->release != nullptr) {
    pair.schema = std::make_unique<ImportedSchema>();
    pair.schema->schema = *schema;
    schema->release = nullptr;
  }
  if (array != nullptr && array->release != nullptr) {
    pair.array = std::make_shared<ImportedArray>();
    pair.array->array = *array;
    array->release = nullptr;
  }
  if (pair.array == nullptr) {
    return Status::invalid_argument("Arrow C import: the ArrowArray is null or already released");
  }
  if (pair.schema == nullptr) {
    return Status::invalid_argument("Arrow C import: the ArrowSchema is null or already released");
  }
  return pair;
}

std::string describe(std::string_view where) {
  return where.empty() ? std::string("array") : "column '" + std::string(where) + "'";
}

// Wraps foreign memory, or copies it when its address is not aligned for the element type (Sabot
// kernels read values through typed pointers).
BufferPtr wrap_foreign(const void* address, int64_t size, int64_t alignment,
                       const std::shared_ptr<const void>& owner) {
  const auto* p = static_cast<const uint8_t*>(address);
  if (p == nullptr) return Buffer::wrap(nullptr, 0, nullptr);
  if (alignment > 1 && reinterpret_cast<uintptr_t>(p) % static_cast<uintptr_t>(alignment) != 0) {
    return Buffer::copy_of(p, size);
  }
  return Buffer::wrap(p, size, owner);
}

int64_t element_size(const DataType& type) {
  switch (type.id()) {
    case TypeId::kInt32:
      return 4;
    case TypeId::kInt64:
    case TypeId::kUInt64:
    case TypeId::kFloat64:
    case TypeId::kTimestamp:
      return 8;
    default:
      return 1;
  }
}

// Imports one non-nested array whose memory is owned by `owner`.
Result<Array> import_leaf(const ArrowArray& a, const DataType& type,
                          const std::shared_ptr<const void>& owner, std::string_view where) {
  const std::string what = describe(where);
  if (a.dictionary != nullptr) {
    return Status::not_implemented(what + ": dictionary-encoded arrays are not supported");
  }
  if (a.n_children != 0) {
    return Status::invalid_data(what + " of type " + type.to_string() + " has " +
                                std::to_string(a.n_children) + " children, expected 0");
  }
  if (a.n_buffers != type.num_buffers()) {
    return Status::invalid_data(what + " of type " + type.to_string() + " has " +
                                std::to_string(a.n_buffers) + " buffers, expected " +
                                std::to_string(type.num_buffers()));
  }
  if (a.buffers == nullptr) {
    return Status::invalid_data(what + ": the buffers pointer is null");
  }
  constexpr int64_t kMaxLength = std::numeric_limits<int64_t>::max() / 16;
  if (a.length < 0 || a.offset < 0 || a.length > kMaxLength || a.offset > kMaxLength) {
    return Status::invalid_data(what + ": invalid length " + std::to_string(a.length) +
                                " or offset " + std::to_string(a.offset));
  }
  const int64_t end = a.offset + a.length;  // elements addressed by the buffers
  if (type.is_var_length() && end >= std::numeric_limits<int32_t>::max()) {
    return Status::invalid_data(what + ": length " + std::to_string(end) +
                                " does not fit int32 offsets");
  }

  auto data = std::make_shared<ArrayData>();
  data->type = type;
  data->length = a.length;
  data->offset = a.offset;

  // Validity.
  if (a.buffers[0] != nullptr) {
    data->validity = wrap_foreign(a.buffers[0], bits::bytes_for(end), 1, owner);
    const int64_t nulls = a.length - bits::count_set(data->validity->data(), a.offset, a.length);
    if (a.null_count != -1 && a.null_count != nulls) {
      return Status::invalid_data(what + ": null_count is " + std::to_string(a.null_count) +
                                  " but the validity bitmap has " + std::to_string(nulls) +
                                  " nulls");
    }
    data->null_count = nulls;
    if (nulls == 0) data->validity = nullptr;
  } else {
    if (a.null_count != 0 && a.null_count != -1) {
      return Status::invalid_data(what + ": null_count is " + std::to_string(a.null_count) +
                                  " but there is no validity bitmap");
    }
    data->null_count = 0;
  }

  // Values (and data for var-length types).
  const void* values = a.buffers[1];
  if (values == nullptr && end > 0) {
    return Status::invalid_data(what + ": the values buffer (buffer 1) is null for " +
                                std::to_string(a.length) + " elements");
  }
  switch (type.id()) {
    case TypeId::kBool:
      data->values = wrap_foreign(values, bits::bytes_for(end), 1, owner);
      break;
    case TypeId::kUtf8:
    case TypeId::kBinary: {
      if (values == nullptr) {
        // Zero elements and no offsets: Sabot always keeps the one leading offset.
        data->values = Buffer::allocate(4);
        data->data = Buffer::allocate(0);
        break;
      }
      data->values = wrap_foreign(values, (end + 1) * 4, 4, owner);
      const int32_t last = data->values->data_as<int32_t>()[end];
      const int32_t first = data->values->data_as<int32_t>()[a.offset];
      if (last < 0 || first < 0 || first > last) {
        return Status::invalid_data(what + ": offsets [" + std::to_string(first) + ", " +
                                    std::to_string(last) + "] are not increasing from 0");
      }
      if (a.buffers[2] == nullptr && last > 0) {
        return Status::invalid_data(what +
                                    ": the data buffer (buffer 2) is null but offsets "
                                    "reach " +
                                    std::to_string(last));
      }
      data->data = wrap_foreign(a.buffers[2], last, 1, owner);
      break;
    }
    default:
      data->values = wrap_foreign(values, end * element_size(type), element_size(type), owner);
      break;
  }
  Array result(std::move(data));
  SABOT_RETURN_IF_ERROR(
      result.validate_full().with_context("importing " + what + " through the Arrow C interface"));
  return result;
}

Result<DataType> import_type(const ArrowSchema& s, std::string_view where) {
  if (s.format == nullptr) {
    return Status::invalid_data(describe(where) + ": the ArrowSchema format is null");
  }
  if (s.dictionary != nullptr) {
    return Status::not_implemented(describe(where) +
                                   ": dictionary-encoded arrays are not supported");
  }
  auto type = parse_arrow_format_string(s.format);
  if (!type.is_ok()) return type.status().with_context("importing " + describe(where));
  return type;
}

}  // namespace

const char* arrow_format_string(const DataType& type) {
  switch (type.id()) {
    case TypeId::kBool:
      return "b";
    case TypeId::kInt32:
      return "i";
    case TypeId::kInt64:
      return "l";
    case TypeId::kUInt64:
      return "L";
    case TypeId::kFloat64:
      return "g";
    case TypeId::kUtf8:
      return "u";
    case TypeId::kBinary:
      return "z";
    case TypeId::kTimestamp:
      switch (type.unit()) {
        case TimeUnit::kSecond:
          return "tss:";
        case TimeUnit::kMilli:
          return "tsm:";
        case TimeUnit::kMicro:
          return "tsu:";
        case TimeUnit::kNano:
          return "tsn:";
      }
  }
  SABOT_CHECK(false);
  return "";
}

Result<DataType> parse_arrow_format_string(const char* format) {
  if (format == nullptr) return Status::invalid_data("Arrow format string is null");
  std::string_view f(format);
  if (f == "b") return boolean();
  if (f == "i") return int32();
  if (f == "l") return int64();
  if (f == "L") return uint64();
  if (f == "g") return float64();
  if (f == "u") return utf8();
  if (f == "z") return binary();
  if (f.size() >= 4 && f.substr(0, 2) == "ts" && f[3] == ':') {
    if (f.size() > 4) {
      return Status::not_implemented("Arrow format string '" + std::string(f) +
                                     "': timestamps with a time zone are not supported");
    }
    switch (f[2]) {
      case 's':
        return timestamp(TimeUnit::kSecond);
      case 'm':
        return timestamp(TimeUnit::kMilli);
      case 'u':
        return timestamp(TimeUnit::kMicro);
      case 'n':
        return timestamp(TimeUnit::kNano);
      default:
        break;
    }
  }
  return Status::not_implemented("Arrow format string '" + std::string(f) +
                                 "' is not a type Sabot supports (b, i, l, L, g, u, z, tss:, tsm:, "
                                 "tsu:, tsn:)");
}

Status export_array(const Array& array, ArrowArray* out_array, ArrowSchema* out_schema) {
  if (out_array == nullptr || out_schema == nullptr) {
    return Status::invalid_argument("export_array: output struct pointer is null");
  }
  fill_schema(out_schema, arrow_format_string(array.type()), "", true, 0);
  fill_array(array, out_array);
  return Status::ok();
}

Status export_batch(const RecordBatch& batch, ArrowArray* out_array, ArrowSchema* out_schema) {
  if (out_array == nullptr || out_schema == nullptr) {
    return Status::invalid_argument("export_batch: output struct pointer is null");
  }
  const int n = batch.num_columns();
  fill_schema(out_schema, "+s", "", false, n);
  auto* schema_priv = static_cast<ExportedSchema*>(out_schema->private_data);
  for (int i = 0; i < n; ++i) {
    const Field& f = batch.schema().field(i);
    fill_schema(&schema_priv->children[static_cast<size_t>(i)], arrow_format_string(f.type), f.name,
                f.nullable, 0);
  }

  auto* priv = new ExportedArray();
  priv->children.resize(static_cast<size_t>(n));
  for (ArrowArray& c : priv->children) priv->child_ptrs.push_back(&c);
  for (int i = 0; i < n; ++i) fill_array(batch.column(i), &priv->children[static_cast<size_t>(i)]);
  out_array->length = batch.num_rows();
  out_array->null_count = 0;
  out_array->offset = 0;
  out_array->n_buffers = 1;  // the struct's validity bitmap, absent
  out_array->n_children = n;
  out_array->buffers = priv->buffers;
  out_array->children = n > 0 ? priv->child_ptrs.data() : nullptr;
  out_array->dictionary = nullptr;
  out_array->release = &release_array;
  out_array->private_data = priv;
  return Status::ok();
}

Result<Array> import_array(ArrowArray* array, ArrowSchema* schema) {
  SABOT_ASSIGN_OR_RETURN(ImportedPair pair, take_ownership(array, schema));
  SABOT_ASSIGN_OR_RETURN(DataType type, import_type(pair.schema->schema, ""));
  std::shared_ptr<const void> owner = pair.array;
  return import_leaf(pair.array->array, type, owner, "");
}

Result<RecordBatch> import_batch(ArrowArray* array, ArrowSchema* schema) {
  SABOT_ASSIGN_OR_RETURN(ImportedPair pair, take_ownership(array, schema));
  const ArrowSchema& s = pair.schema->schema;
  const ArrowArray& a = pair.array->array;
  if (s.format == nullptr || std::string_view(s.format) != "+s") {
    return Status::invalid_data(std::string("import_batch: expected a struct array (format '+s'), "
                                            "got format '") +
                                (s.format ? s.format : "(null)") + "'");
  }
  if (s.n_children != a.n_children || s.n_children < 0) {
    return Status::invalid_data("import_batch: the schema has " + std::to_string(s.n_children) +
                                " children but the array has " + std::to_string(a.n_children));
  }
  if (a.n_buffers != 1 || a.buffers == nullptr) {
    return Status::invalid_data("import_batch: a struct array has 1 buffer, got " +
                                std::to_string(a.n_buffers));
  }
  if (a.length < 0 || a.offset < 0) {
    return Status::invalid_data("import_batch: invalid length " + std::to_string(a.length) +
                                " or offset " + std::to_string(a.offset));
  }
  if (a.buffers[0] != nullptr &&
      bits::count_set(static_cast<const uint8_t*>(a.buffers[0]), a.offset, a.length) != a.length) {
    return Status::not_implemented("import_batch: the struct array has null rows; a batch cannot");
  }
  if (a.n_children > 0 && (a.children == nullptr || s.children == nullptr)) {
    return Status::invalid_data("import_batch: the children pointer is null");
  }
  std::shared_ptr<const void> owner = pair.array;
  std::vector<Field> fields;
  std::vector<Array> columns;
  for (int64_t i = 0; i < a.n_children; ++i) {
    const ArrowSchema* cs = s.children[i];
    const ArrowArray* ca = a.children[i];
    if (cs == nullptr || ca == nullptr) {
      return Status::invalid_data("import_batch: child " + std::to_string(i) + " is null");
    }
    std::string name = cs->name != nullptr ? cs->name : "";
    SABOT_ASSIGN_OR_RETURN(DataType type, import_type(*cs, name));
    if (ca->release == nullptr) {
      return Status::invalid_data("import_batch: " + describe(name) + " is already released");
    }
    SABOT_ASSIGN_OR_RETURN(Array column, import_leaf(*ca, type, owner, name));
    if (column.length() < a.offset + a.length) {
      return Status::invalid_data("import_batch: " + describe(name) + " has " +
                                  std::to_string(column.length()) + " rows, the struct needs " +
                                  std::to_string(a.offset + a.length));
    }
    if (a.offset != 0 || column.length() != a.length) column = column.slice(a.offset, a.length);
    fields.push_back(Field{std::move(name), type, (cs->flags & ARROW_FLAG_NULLABLE) != 0});
    columns.push_back(std::move(column));
  }
  SABOT_ASSIGN_OR_RETURN(SchemaPtr batch_schema, Schema::make(std::move(fields)));
  return RecordBatch::make(std::move(batch_schema), std::move(columns));
}

}  // namespace sabot::columnar
