// Row-at-a-time reference of the fraud rules; see sabot/fraud/rules.h.
#include "sabot/fraud/rules.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <deque>
#include <numeric>
#include <unordered_map>
#include <utility>

namespace sabot::fraud {

namespace {

struct AccountState {
  std::deque<std::pair<int64_t, int64_t>> recent;  // (transaction_id, timestamp_ms), oldest first
  int64_t count = 0;
  double sum = 0;
  double sum_sq = 0;
  bool has_previous = false;
  std::string previous_city;
  int64_t previous_ms = 0;
};

Alert make_alert(const Transaction& t, const char* type, const char* severity,
                 std::string details) {
  Alert a;
  a.alert_id = "FA-" + std::to_string(t.transaction_id) + "-" + type;
  a.transaction_id = t.transaction_id;
  a.account_number = t.account_number;
  a.fraud_type = type;
  a.severity = severity;
  a.details = std::move(details);
  a.timestamp_ms = t.timestamp_ms;
  return a;
}

// Appends the alerts of transaction t given the account's earlier history, then adds t to it.
void run_rules(const Transaction& t, AccountState& s, std::vector<Alert>* out) {
  char buf[256];
  // VELOCITY
  std::vector<int64_t> related;
  for (const auto& [id, ts] : s.recent) {
    if (t.timestamp_ms - ts < kVelocityWindowMs) related.push_back(id);
  }
  if (related.size() >= 2) {
    Alert a = make_alert(t, "VELOCITY", "HIGH",
                         std::to_string(related.size() + 1) + " transactions in 60s");
    a.related_transactions = std::move(related);
    out->push_back(std::move(a));
  }
  // AMOUNT_ANOMALY
  if (s.count >= kAmountMinCount) {
    const double n = static_cast<double>(s.count);
    const double mean = s.sum / n;
    const double variance = s.sum_sq / n - mean * mean;
    if (variance > 0) {
      const double z = (t.transaction_amount - mean) / std::sqrt(variance);
      if (std::abs(z) > kAmountAlertZ) {
        std::snprintf(buf, sizeof(buf), "Amount %.2f %s is %.1fσ from mean %.2f",
                      t.transaction_amount, t.currency.c_str(), z, mean);
        out->push_back(
            make_alert(t, "AMOUNT_ANOMALY", z > kAmountCriticalZ ? "CRITICAL" : "HIGH", buf));
      }
    }
  }
  // GEO_IMPOSSIBLE
  if (s.has_previous && s.previous_city != t.branch_city) {
    const double minutes = static_cast<double>(t.timestamp_ms - s.previous_ms) / 60000.0;
    if (minutes < kGeoMaxMinutes) {
      std::snprintf(buf, sizeof(buf), "%s→%s in %.1fmin (%.0fkm)", s.previous_city.c_str(),
                    t.branch_city.c_str(), minutes,
                    city_distance_km(s.previous_city, t.branch_city));
      out->push_back(make_alert(t, "GEO_IMPOSSIBLE", "CRITICAL", buf));
    }
  }
  // State update, after the rules.
  s.recent.emplace_back(t.transaction_id, t.timestamp_ms);
  if (s.recent.size() > static_cast<size_t>(kVelocityHistory)) s.recent.pop_front();
  ++s.count;
  s.sum += t.transaction_amount;
  s.sum_sq += t.transaction_amount * t.transaction_amount;
  s.has_previous = true;
  s.previous_city = t.branch_city;
  s.previous_ms = t.timestamp_ms;
}

}  // namespace

std::vector<Alert> reference_alerts(const std::vector<Transaction>& transactions) {
  // Event-time order within each account, input order among equal times; the interleaving of
  // accounts does not matter since state is per account.
  std::vector<size_t> order(transactions.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return transactions[a].timestamp_ms < transactions[b].timestamp_ms;
  });
  std::unordered_map<std::string, AccountState> states;
  std::vector<std::pair<size_t, Alert>> found;  // (input position, alert)
  std::vector<Alert> scratch;
  for (size_t i : order) {
    const Transaction& t = transactions[i];
    scratch.clear();
    run_rules(t, states[t.account_number], &scratch);
    for (Alert& a : scratch) found.emplace_back(i, std::move(a));
  }
  // Rules append in VELOCITY, AMOUNT_ANOMALY, GEO_IMPOSSIBLE order; stable keeps it.
  std::stable_sort(found.begin(), found.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<Alert> out;
  out.reserve(found.size());
  for (auto& [i, a] : found) out.push_back(std::move(a));
  return out;
}

}  // namespace sabot::fraud
