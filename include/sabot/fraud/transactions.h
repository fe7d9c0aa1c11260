// Synthetic bank-card transactions from Chile and Peru for the fraud-detection job
// (/work/shared/spec/FRAUD.md): the record, its columnar schema, the 12 cities, and a seeded,
// deterministic generator of realistic traffic with injected anomalies (bursts, amount outliers,
// distant-city hops). Same options and seed give the same transactions, byte for byte.
#pragma once

#include <cstdint>
#include <queue>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sabot/base/status.h"
#include "sabot/columnar/record_batch.h"
#include "sabot/columnar/type.h"

namespace sabot::fraud {

// One `bank-transactions` record; field names and meanings as in FRAUD.md.
struct Transaction {
  int64_t transaction_id = 0;     // unique, increasing in generation order
  std::string account_number;     // digits
  std::string user_id;            // Chilean RUT ("12345678-K") or Peruvian DNI (8 digits)
  std::string transaction_date;   // ISO-8601 of timestamp_ms, "2023-11-14T22:13:20.000Z"
  double transaction_amount = 0;  // local currency
  std::string currency;           // "CLP" or "PEN"
  std::string transaction_type;   // PURCHASE, WITHDRAWAL, TRANSFER
  std::string branch_city;        // one of cities()
  std::string payment_method;     // CARD, CASH, ONLINE
  std::string country;            // "Chile" or "Peru"
  int64_t timestamp_ms = 0;       // event time, ms since the epoch

  bool operator==(const Transaction&) const = default;
};

struct City {
  std::string_view name;     // UTF-8, e.g. "Valparaíso"
  std::string_view country;  // "Chile" or "Peru"
  double lat_deg;
  double lon_deg;
};

// The 12 cities of FRAUD.md: 8 in Chile, then 4 in Peru.
std::span<const City> cities();
// nullptr for a name not in cities().
const City* find_city(std::string_view name);
// Great-circle distance, earth radius 6371 km.
double haversine_km(double lat1_deg, double lon1_deg, double lat2_deg, double lon2_deg);
// Distance between two named cities; 0 when either is unknown (as the GEO_IMPOSSIBLE rule wants).
double city_distance_km(std::string_view a, std::string_view b);

// "YYYY-MM-DDTHH:MM:SS.mmmZ" (UTC), also for times before 1970.
std::string iso8601_utc(int64_t timestamp_ms);

// Columns named as FRAUD.md, in Transaction's field order: int64, utf8, float64, int64
// timestamp_ms.
const columnar::SchemaPtr& transaction_schema();
// Builds one batch with transaction_schema() from the given rows.
columnar::RecordBatch to_record_batch(std::span<const Transaction> rows);
// The inverse of to_record_batch; InvalidArgument naming the column if the schema differs.
Result<std::vector<Transaction>> from_record_batch(const columnar::RecordBatch& batch);

// The event times a transaction may have: [1970-01-01T00:00:00Z, 2100-01-01T00:00:00Z). Outside
// it, a timestamp is a bug or an attack (INT64_MIN made alerts such as "Lima→Santiago in
// -153722838879792.9min"), never a bank transaction.
inline constexpr int64_t kMinTimestampMs = 0;
inline constexpr int64_t kMaxTimestampMs = 4'102'444'800'000;  // exclusive
// Largest accepted |amount| (in local currency): beyond any real transaction, far below where
// the detector's sums of squares would lose all precision.
inline constexpr double kMaxAmount = 1e15;
// InvalidArgument naming the field and the value when a transaction read from outside (a file,
// a topic) is not one the detector can reason about: timestamp_ms outside [kMinTimestampMs,
// kMaxTimestampMs), transaction_amount not finite or outside [0, kMaxAmount], an empty
// account_number.
Status validate_transaction(const Transaction& t);

struct GeneratorOptions {
  // Number of transactions produced in all (including injected ones). Must be >= 0.
  int64_t transactions = 1'000'000;
  // Seed of the only random source; same seed and options, same output.
  uint64_t seed = 42;
  // Number of distinct accounts (each with a country, home city and typical amount). Must be > 0.
  int64_t accounts = 100'000;
  // Probability, per generated transaction, of starting an injected anomaly (a burst of 3-6
  // transactions within a minute, an amount far above the account's norm, or a hop to a distant
  // city a few minutes after a transaction at home), in [0, 1].
  double fraud_rate = 0.01;
  // Event time of the first transaction (default 2024-01-01T00:00:00Z).
  int64_t start_ms = 1'704'067'200'000;
  // Average transactions per account per hour of event time; sets how fast event time advances
  // (accounts * rate / 3600 transactions per event-time second). Must be > 0.
  double transactions_per_account_per_hour = 3.0;
  // Share of Chilean accounts; the rest are Peruvian. In [0, 1].
  double chile_share = 0.6;
  // Probability that a normal transaction happens away from the account's home city (a trip within
  // its country). Kept small so normal traffic raises few GEO_IMPOSSIBLE alerts.
  double travel_rate = 0.002;
};

// Produces transactions one at a time in generation order (ids 0, 1, 2, ...; timestamps
// non-decreasing). Injected transactions are scheduled at their event time and interleaved with
// normal traffic; those still scheduled when `transactions` is reached are not produced.
// Owns all of its state; not thread-safe, use one per thread.
class TransactionGenerator {
 public:
  // InvalidArgument naming the option when one is out of range.
  static Result<TransactionGenerator> make(const GeneratorOptions& options);

  bool done() const { return produced_ == options_.transactions; }
  int64_t produced() const { return produced_; }
  // Requires !done().
  Transaction next();
  // Appends up to max_rows transactions to *out; returns how many were appended (0 when done).
  int64_t next_rows(int64_t max_rows, std::vector<Transaction>* out);
  // Up to max_rows transactions as one batch; an empty batch when done.
  columnar::RecordBatch next_batch(int64_t max_rows);

 private:
  struct Account {
    std::string number;
    std::string user_id;
    int home_city;       // index into cities()
    double log_typical;  // log of the account's typical amount in local currency
    int64_t count = 0;   // transactions so far
  };
  struct Pending {  // an injected transaction scheduled for a later event time
    int64_t timestamp_ms;
    int64_t seq;  // tie-break: scheduling order
    int64_t account;
    int city;
    double amount;
    bool operator>(const Pending& o) const {
      return timestamp_ms != o.timestamp_ms ? timestamp_ms > o.timestamp_ms : seq > o.seq;
    }
  };

  explicit TransactionGenerator(const GeneratorOptions& options);
  uint64_t next_u64();
  double uniform();                // [0, 1)
  int64_t uniform_int(int64_t n);  // [0, n)
  double standard_normal();
  double normal_amount(const Account& a);
  int random_other_city(int city, bool same_country, double min_km);
  void advance_clock();
  void inject();
  Transaction emit(int64_t account, int city, double amount, int64_t timestamp_ms);

  GeneratorOptions options_;
  uint64_t rng_[4];
  std::vector<Account> accounts_;
  std::priority_queue<Pending, std::vector<Pending>, std::greater<Pending>> pending_;
  int64_t pending_seq_ = 0;
  double clock_ms_ = 0;  // event time of the next normal transaction
  double mean_gap_ms_ = 0;
  int64_t produced_ = 0;
};

// All options.transactions transactions at once (a convenience for tests and the oracle).
Result<std::vector<Transaction>> generate_transactions(const GeneratorOptions& options);

}  // namespace sabot::fraud
