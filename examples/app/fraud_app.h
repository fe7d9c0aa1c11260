// The fraud detector of FRAUD.md written as an App: an agent over `bank-transactions` keeps a
// table entry per account and sends alerts, as the JSON lines of `sabot demo fraud --alerts-out`,
// to `fraud-alerts` keyed by account. The same rules as the reference (sabot/fraud/rules.h), per
// account in arrival order.
#pragma once

#include <cstdint>
#include <string_view>
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

// One earlier transaction of an account's VELOCITY history.
struct Recent {
  int64_t id = 0;
  int64_t timestamp_ms = 0;
};

// One account's running figures, a table value (trivially copyable, so stored as its bytes): the
// AMOUNT_ANOMALY sums, the previous time and city (GEO_IMPOSSIBLE) and the newest kInline
// transactions of its VELOCITY history. The older part of the history is the list table
// "recent", spilled kSpill at a time and cut back to 100 once it reaches 200, and read only when
// it can matter (the account's arrivals were not all in time order, or the oldest inline entry is
// itself within 60 s). So a transaction usually costs one table read and one write, and accounts
// stay small in memory and in checkpoints: the layout of `sabot demo fraud`'s detector.
struct Account {
  static constexpr int32_t kUnknownCity = -1;  // the name is in table "unknown-city"
  static constexpr int32_t kInline = 6;
  static constexpr int32_t kSpill = 3;
  int64_t count = 0;  // earlier transactions (0: the account is new)
  double sum = 0;
  double sum_sq = 0;
  int64_t previous_ms = 0;
  int64_t latest_ms = 0;
  int32_t city = kUnknownCity;  // the previous transaction's city: index into fraud::cities()
  int32_t spilled = 0;          // entries in "recent", all older than those in `newest`
  int32_t inline_n = 0;         // entries in `newest`
  int32_t in_order = 1;         // 1 while no arrival was behind the account's latest time
  Recent newest[kInline] = {};  // the newest transactions, oldest first
};

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
