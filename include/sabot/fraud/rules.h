// Reference implementation of the three fraud rules of FRAUD.md (VELOCITY, AMOUNT_ANOMALY,
// GEO_IMPOSSIBLE): plain, row-at-a-time and obviously correct, the test oracle for the streaming
// detector. Stateless free functions; safe to call from several threads.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sabot/fraud/transactions.h"

namespace sabot::fraud {

// One `fraud-alerts` record.
struct Alert {
  std::string alert_id;  // "FA-{transaction_id}-{fraud_type}"
  int64_t transaction_id = 0;
  std::string account_number;
  std::string fraud_type;  // VELOCITY, AMOUNT_ANOMALY, GEO_IMPOSSIBLE
  std::string severity;    // HIGH or CRITICAL
  std::string details;
  int64_t timestamp_ms = 0;  // of the transaction
  std::vector<int64_t> related_transactions;

  bool operator==(const Alert&) const = default;
};

// Thresholds of the rules, named for the streaming detector to share.
inline constexpr int kVelocityHistory = 100;
inline constexpr int64_t kVelocityWindowMs = 60'000;
inline constexpr int64_t kAmountMinCount = 5;
inline constexpr double kAmountAlertZ = 3.0;
inline constexpr double kAmountCriticalZ = 4.0;
inline constexpr double kGeoMaxMinutes = 10.0;

// Runs the rules over the transactions, per account, in event-time order within the account
// (ties keep input order). Alerts come in input order of their transaction, and for one
// transaction in the order VELOCITY, AMOUNT_ANOMALY, GEO_IMPOSSIBLE.
std::vector<Alert> reference_alerts(const std::vector<Transaction>& transactions);

}  // namespace sabot::fraud
