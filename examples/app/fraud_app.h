// The fraud detector of FRAUD.md written as an App: an agent over `bank-transactions` keeps a
// table entry per account and sends alerts, as the JSON lines of `sabot demo fraud --alerts-out`,
// to `fraud-alerts` keyed by account. The same rules as the reference (sabot/fraud/rules.h), per
// account in arrival order.
#pragma once

#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

#include "sabot/app/app.h"

namespace sabot::fraud_app {

// The columns of a transaction the rules read (the JSON decoder skips the others).
struct Txn {
  int64_t transaction_id = 0;
  std::string_view account_number;
  double transaction_amount = 0;
  std::string_view currency;
  std::string_view branch_city;
  int64_t timestamp_ms = 0;
};

// One account's running figures: a table value (trivially copyable, so stored as its bytes). Its
// VELOCITY history (the newest 100 (transaction id, time) pairs, oldest first) is the table
// "recent", so that accounts with few transactions stay small in memory and in checkpoints.
struct Account {
  static constexpr int kHistory = 100;
  static constexpr int32_t kNoCity = -2;
  static constexpr int32_t kUnknownCity = -1;  // the name is in table "unknown-city"
  int64_t count = 0;                           // earlier transactions
  double sum = 0;
  double sum_sq = 0;
  int64_t previous_ms = 0;
  int32_t city = kNoCity;  // the previous transaction's city: index into fraud::cities()
  int32_t pad = 0;
};
using History = std::vector<std::pair<int64_t, int64_t>>;

inline constexpr const char* kTransactionsTopic = "bank-transactions";
inline constexpr const char* kAlertsTopic = "fraud-alerts";
inline constexpr int kPartitions = 3;

struct FraudAppOptions {
  int concurrency = 1;
};

// Declares the topics, tables and the detector agent on `app`.
void define_fraud_app(app::App& app, const FraudAppOptions& options = {});

}  // namespace sabot::fraud_app

SABOT_RECORD(sabot::fraud_app::Txn, transaction_id, account_number, transaction_amount, currency,
             branch_city, timestamp_ms);
