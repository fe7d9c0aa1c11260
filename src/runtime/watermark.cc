#include "sabot/runtime/watermark.h"

#include <algorithm>

#include "sabot/base/time_unit.h"

namespace sabot::runtime {

using columnar::TypeId;

Status validate_watermark_strategy(const WatermarkStrategy& s, const columnar::Schema& schema) {
  if (!s.alignment_group.empty() && s.kind == WatermarkStrategy::Kind::kNone) {
    return Status::invalid_argument("watermark alignment group '" + s.alignment_group +
                                    "' needs a strategy with watermarks");
  }
  if (s.max_drift.count() < 0) {
    return Status::invalid_argument("watermark alignment drift must not be negative");
  }
  if (s.kind == WatermarkStrategy::Kind::kNone) return Status::ok();
  SABOT_ASSIGN_OR_RETURN(int i, schema.require_field_index(s.timestamp_column));
  const columnar::DataType& t = schema.field(i).type;
  if (t.id() != TypeId::kTimestamp && t.id() != TypeId::kInt64) {
    return Status::type_error("watermark column '" + s.timestamp_column + "' is " + t.to_string() +
                              "; it must be a timestamp or int64 milliseconds");
  }
  if (s.max_out_of_orderness.count() < 0 || s.idle_timeout.count() < 0) {
    return Status::invalid_argument("watermark bound and idle timeout must not be negative");
  }
  return Status::ok();
}

namespace {

int64_t to_millis(int64_t v, const columnar::DataType& t) {
  return t.id() == TypeId::kTimestamp ? sabot::to_millis(v, t.unit()) : v;
}

}  // namespace

int64_t event_time_millis(const columnar::Array& column, int64_t i) {
  return to_millis(column.value<int64_t>(i), column.type());
}

int64_t max_event_time_millis(const columnar::Array& column) {
  const int64_t n = column.length();
  const int64_t* v = column.values<int64_t>();
  int64_t m = INT64_MIN;
  if (column.null_count() == 0) {
    for (int64_t i = 0; i < n; ++i) m = std::max(m, v[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) {
      if (column.is_valid(i)) m = std::max(m, v[i]);
    }
  }
  return m == INT64_MIN ? m : to_millis(m, column.type());
}

}  // namespace sabot::runtime
