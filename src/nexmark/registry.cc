// The table of Nexmark queries, for runners such as `sabot bench nexmark`.
#include "sabot/nexmark/queries.h"

namespace sabot::nexmark {

std::span<const QueryInfo> all_queries() {
  static constexpr QueryInfo kQueries[] = {
      {"q0", "pass-through", q0},
      {"q1", "currency conversion", q1},
      {"q2", "selection", q2},
      {"q3", "local item suggestion", q3},
      {"q4", "average price per category", q4},
      {"q5", "hot items", q5},
      {"q7", "highest bid", q7},
      {"q8", "monitor new users", q8},
  };
  return kQueries;
}

const QueryInfo* find_query(std::string_view name) {
  for (const QueryInfo& q : all_queries()) {
    if (q.name == name) return &q;
  }
  return nullptr;
}

}  // namespace sabot::nexmark
