// The Arrow C Data Interface: hands arrays and batches to, and takes them from, any Arrow
// implementation in the same process without copying. Export keeps Sabot's buffers alive until the
// consumer calls release; import takes ownership of the foreign structs and wraps their buffers.
// The functions are thread-safe; one ArrowArray/ArrowSchema must be used by one thread at a time.
#pragma once

#include <cstdint>

#include "sabot/base/status.h"
#include "sabot/columnar/array.h"
#include "sabot/columnar/record_batch.h"

// The two ABI structs, exactly as the Arrow specification defines them (guarded so that another
// Arrow header in the same translation unit does not redefine them).
#ifdef __cplusplus
extern "C" {
#endif

#ifndef ARROW_C_DATA_INTERFACE
#define ARROW_C_DATA_INTERFACE

#define ARROW_FLAG_DICTIONARY_ORDERED 1
#define ARROW_FLAG_NULLABLE 2
#define ARROW_FLAG_MAP_KEYS_SORTED 4

struct ArrowSchema {
  // Array type description
  const char* format;
  const char* name;
  const char* metadata;
  int64_t flags;
  int64_t n_children;
  struct ArrowSchema** children;
  struct ArrowSchema* dictionary;

  // Release callback
  void (*release)(struct ArrowSchema*);
  // Opaque producer-specific data
  void* private_data;
};

struct ArrowArray {
  // Array data description
  int64_t length;
  int64_t null_count;
  int64_t offset;
  int64_t n_buffers;
  int64_t n_children;
  const void** buffers;
  struct ArrowArray** children;
  struct ArrowArray* dictionary;

  // Release callback
  void (*release)(struct ArrowArray*);
  // Opaque producer-specific data
  void* private_data;
};

#endif  // ARROW_C_DATA_INTERFACE

#ifdef __cplusplus
}
#endif

namespace sabot::columnar {

// The Arrow format string of a type: "b", "i", "l", "L", "g", "u", "z", "tss:", "tsm:", "tsu:",
// "tsn:".
const char* arrow_format_string(const DataType& type);
// The inverse; refuses formats Sabot does not support (time zones, other types) naming the format.
Result<DataType> parse_arrow_format_string(const char* format);

// Fills both structs (which the caller owns; their previous contents are ignored). The exported
// array shares the Array's buffers: they stay alive until the consumer calls out_array->release.
// The ArrowArray keeps the array's offset (no copy for slices).
Status export_array(const Array& array, ArrowArray* out_array, ArrowSchema* out_schema);
// Exports the batch as a struct array ("+s") with one child per column, named like the fields.
Status export_batch(const RecordBatch& batch, ArrowArray* out_array, ArrowSchema* out_schema);

// Takes ownership of both structs in every case (also on error): their contents are moved out and
// the source structs are marked released (release == nullptr). The array's buffers are wrapped
// without copying; the producer's release callback runs exactly once, when the last Sabot buffer
// referring to them is destroyed. The data is validated (buffer count, non-null buffers, offsets,
// UTF-8, null count) before it is returned. Either pointer may already be released: that is an
// InvalidArgument error.
Result<Array> import_array(ArrowArray* array, ArrowSchema* schema);
// Imports a struct array ("+s") without struct-level nulls as a batch, one column per child.
Result<RecordBatch> import_batch(ArrowArray* array, ArrowSchema* schema);

}  // namespace sabot::columnar
