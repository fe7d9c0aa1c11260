#include "sabot/columnar/record.h"

namespace sabot::detail {

std::string describe_row(const columnar::RecordBatch& batch, int64_t row) {
  std::string out = "{";
  for (int c = 0; c < batch.num_columns(); ++c) {
    if (c > 0) out += ", ";
    out += batch.schema().field(c).name;
    out += ": ";
    out += batch.column(c).scalar_at(row).to_string();
  }
  out += "}";
  return out;
}

}  // namespace sabot::detail
