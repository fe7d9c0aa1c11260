#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>

#include "sabot/fraud/rules.h"
#include "sabot/fraud/transactions.h"

namespace sabot::fraud {
namespace {

std::vector<Transaction> generate(GeneratorOptions o) {
  auto r = generate_transactions(o);
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  return std::move(r).value();
}

Transaction tx(int64_t id, const std::string& account, int64_t ts, double amount = 100.0,
               const std::string& city = "Santiago", const std::string& currency = "CLP") {
  Transaction t;
  t.transaction_id = id;
  t.account_number = account;
  t.timestamp_ms = ts;
  t.transaction_amount = amount;
  t.branch_city = city;
  t.currency = currency;
  return t;
}

std::vector<Alert> of_type(const std::vector<Alert>& alerts, const std::string& type) {
  std::vector<Alert> out;
  for (const Alert& a : alerts) {
    if (a.fraud_type == type) out.push_back(a);
  }
  return out;
}

// ---- generator ------------------------------------------------------------------------------

TEST(FraudGenerator, SameSeedGivesSameTransactionsByteForByte) {
  GeneratorOptions o{.transactions = 20'000, .seed = 7, .accounts = 500};
  auto a = generate(o);
  auto b = generate(o);
  ASSERT_EQ(a.size(), 20'000u);
  EXPECT_TRUE(a == b);
  EXPECT_TRUE(to_record_batch(a).equals(to_record_batch(b)));
  o.seed = 8;
  EXPECT_FALSE(a == generate(o));
}

TEST(FraudGenerator, BatchesOfRandomSizesConcatenateToTheSameRows) {
  GeneratorOptions o{.transactions = 5'000, .seed = 3, .accounts = 300};
  auto all = generate(o);
  auto gen = TransactionGenerator::make(o);
  ASSERT_TRUE(gen.is_ok());
  std::mt19937_64 rng(11);
  std::vector<Transaction> rows;
  while (!gen->done()) {
    columnar::RecordBatch batch = gen->next_batch(1 + static_cast<int64_t>(rng() % 700));
    ASSERT_GT(batch.num_rows(), 0);
    auto decoded = from_record_batch(batch);
    ASSERT_TRUE(decoded.is_ok()) << decoded.status().to_string();
    rows.insert(rows.end(), decoded->begin(), decoded->end());
  }
  EXPECT_TRUE(rows == all);
  EXPECT_EQ(gen->next_batch(10).num_rows(), 0);
}

TEST(FraudGenerator, RejectsOutOfRangeOptions) {
  EXPECT_FALSE(TransactionGenerator::make({.transactions = -1}).is_ok());
  EXPECT_FALSE(TransactionGenerator::make({.accounts = 0}).is_ok());
  EXPECT_FALSE(TransactionGenerator::make({.fraud_rate = 1.5}).is_ok());
  EXPECT_FALSE(TransactionGenerator::make({.transactions_per_account_per_hour = 0}).is_ok());
  auto empty = generate({.transactions = 0});
  EXPECT_TRUE(empty.empty());
  EXPECT_EQ(to_record_batch(empty).num_rows(), 0);
}

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

char rut_check(const std::string& body) {  // written independently of the generator
  int sum = 0;
  const int weights[] = {2, 3, 4, 5, 6, 7};
  for (size_t i = 0; i < body.size(); ++i) {
    sum += (body[body.size() - 1 - i] - '0') * weights[i % 6];
  }
  int d = 11 - sum % 11;
  return d == 11 ? '0' : d == 10 ? 'K' : static_cast<char>('0' + d);
}

TEST(FraudGenerator, FieldsHaveTheSpecifiedFormats) {
  GeneratorOptions o{
      .transactions = 30'000, .seed = 5, .accounts = 1'000, .start_ms = 1'700'000'000'000};
  auto rows = generate(o);
  std::map<std::string, std::string> user_of_account;
  for (size_t i = 0; i < rows.size(); ++i) {
    const Transaction& t = rows[i];
    ASSERT_EQ(t.transaction_id, static_cast<int64_t>(i));
    if (i > 0) {
      ASSERT_GE(t.timestamp_ms, rows[i - 1].timestamp_ms) << "row " << i;
    }
    ASSERT_GE(t.timestamp_ms, o.start_ms);
    ASSERT_TRUE(all_digits(t.account_number)) << t.account_number;
    ASSERT_EQ(t.transaction_date, iso8601_utc(t.timestamp_ms));
    ASSERT_NE(find_city(t.branch_city), nullptr) << t.branch_city;
    ASSERT_GT(t.transaction_amount, 0);
    auto [it, inserted] = user_of_account.emplace(t.account_number, t.user_id);
    ASSERT_EQ(it->second, t.user_id) << "account " << t.account_number << " changed user";
    if (t.country == "Chile") {
      ASSERT_EQ(t.currency, "CLP");
      ASSERT_EQ(t.transaction_amount, std::round(t.transaction_amount));
      auto dash = t.user_id.find('-');
      ASSERT_NE(dash, std::string::npos) << t.user_id;
      ASSERT_TRUE(all_digits(t.user_id.substr(0, dash)));
      ASSERT_EQ(t.user_id.size(), dash + 2);
      ASSERT_EQ(t.user_id.back(), rut_check(t.user_id.substr(0, dash))) << t.user_id;
    } else {
      ASSERT_EQ(t.country, "Peru");
      ASSERT_EQ(t.currency, "PEN");
      ASSERT_NEAR(t.transaction_amount * 100, std::round(t.transaction_amount * 100), 1e-6);
      ASSERT_EQ(t.user_id.size(), 8u);
      ASSERT_TRUE(all_digits(t.user_id));
    }
    const std::set<std::string> types{"PURCHASE", "WITHDRAWAL", "TRANSFER"};
    const std::set<std::string> methods{"CARD", "CASH", "ONLINE"};
    ASSERT_TRUE(types.count(t.transaction_type)) << t.transaction_type;
    ASSERT_TRUE(methods.count(t.payment_method)) << t.payment_method;
  }
  // Distinct accounts have distinct numbers: about all 1000 accounts appear at 30 per account.
  EXPECT_GT(user_of_account.size(), 990u);
}

TEST(FraudGenerator, TrafficIsRealistic) {
  // 2000 accounts at 3 per hour: 100 hours of event time for 600k transactions.
  GeneratorOptions o{.transactions = 200'000, .seed = 9, .accounts = 2'000, .fraud_rate = 0};
  auto rows = generate(o);
  const double hours =
      static_cast<double>(rows.back().timestamp_ms - rows.front().timestamp_ms) / 3.6e6;
  const double per_account_hour = 200'000.0 / 2'000.0 / hours;
  EXPECT_GT(per_account_hour, 2.7);
  EXPECT_LT(per_account_hour, 3.3);
  // Medians by currency: CLP about 1000 times PEN.
  std::vector<double> clp, pen;
  for (const auto& t : rows) (t.currency == "CLP" ? clp : pen).push_back(t.transaction_amount);
  ASSERT_FALSE(clp.empty());
  ASSERT_FALSE(pen.empty());
  std::nth_element(clp.begin(), clp.begin() + clp.size() / 2, clp.end());
  std::nth_element(pen.begin(), pen.begin() + pen.size() / 2, pen.end());
  const double ratio = clp[clp.size() / 2] / pen[pen.size() / 2];
  EXPECT_GT(ratio, 500);
  EXPECT_LT(ratio, 2000);
  // Normal traffic raises few alerts.
  auto alerts = reference_alerts(rows);
  EXPECT_LT(static_cast<double>(alerts.size()), 0.01 * rows.size()) << alerts.size();
}

TEST(FraudGenerator, InjectedAnomaliesRaiseEachAlertType) {
  GeneratorOptions base{.transactions = 200'000, .seed = 21, .accounts = 2'000, .fraud_rate = 0};
  auto clean = reference_alerts(generate(base));
  GeneratorOptions dirty = base;
  dirty.fraud_rate = 0.01;
  auto alerts = reference_alerts(generate(dirty));
  for (const char* type : {"VELOCITY", "AMOUNT_ANOMALY", "GEO_IMPOSSIBLE"}) {
    const size_t with = of_type(alerts, type).size();
    const size_t without = of_type(clean, type).size();
    // ~667 injections of each kind; a burst of k raises k-2 VELOCITY alerts.
    EXPECT_GT(with, without + 300) << type << ": " << with << " vs " << without;
  }
  // Injected outliers are 15-50x the norm: CRITICAL.
  auto critical = [](const std::vector<Alert>& v) {
    return std::count_if(v.begin(), v.end(), [](const Alert& a) {
      return a.fraud_type == "AMOUNT_ANOMALY" && a.severity == "CRITICAL";
    });
  };
  EXPECT_GT(critical(alerts), critical(clean) + 300);
}

TEST(FraudGenerator, Iso8601IsUtcWithMilliseconds) {
  EXPECT_EQ(iso8601_utc(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(iso8601_utc(-1), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(iso8601_utc(951'782'400'000), "2000-02-29T00:00:00.000Z");
  EXPECT_EQ(iso8601_utc(1'704'067'200'000 + 3'723'045), "2024-01-01T01:02:03.045Z");
  EXPECT_EQ(iso8601_utc(1'709'251'199'999), "2024-02-29T23:59:59.999Z");
  EXPECT_EQ(iso8601_utc(253'402'300'799'999), "9999-12-31T23:59:59.999Z");
  EXPECT_EQ(iso8601_utc(253'402'300'800'000), "10000-01-01T00:00:00.000Z");
  EXPECT_EQ(iso8601_utc(-62'135'596'800'000), "0001-01-01T00:00:00.000Z");
}

TEST(FraudSchema, HasTheSpecifiedColumnNamesAndTypes) {
  const auto& s = *transaction_schema();
  const char* names[] = {"transaction_id",   "account_number",     "user_id",
                         "transaction_date", "transaction_amount", "currency",
                         "transaction_type", "branch_city",        "payment_method",
                         "country",          "timestamp_ms"};
  ASSERT_EQ(s.num_fields(), 11);
  for (int i = 0; i < 11; ++i) EXPECT_EQ(s.field(i).name, names[i]);
  EXPECT_EQ(s.field(0).type, columnar::int64());
  EXPECT_EQ(s.field(4).type, columnar::float64());
  EXPECT_EQ(s.field(1).type, columnar::utf8());
  EXPECT_EQ(s.field(10).type, columnar::int64());
}

TEST(FraudSchema, RecordBatchRoundTripsIncludingSlices) {
  auto rows = generate({.transactions = 1'000, .seed = 1, .accounts = 50});
  columnar::RecordBatch batch = to_record_batch(rows);
  ASSERT_EQ(batch.num_rows(), 1'000);
  auto back = from_record_batch(batch);
  ASSERT_TRUE(back.is_ok());
  EXPECT_TRUE(*back == rows);
  auto sliced = from_record_batch(batch.slice(137, 400));
  ASSERT_TRUE(sliced.is_ok());
  EXPECT_TRUE(*sliced == std::vector<Transaction>(rows.begin() + 137, rows.begin() + 537));
  auto wrong = from_record_batch(columnar::RecordBatch());
  EXPECT_FALSE(wrong.is_ok());
}

TEST(FraudCities, DistancesUseHaversineWithEarthRadius6371) {
  EXPECT_EQ(cities().size(), 12u);
  EXPECT_EQ(city_distance_km("Santiago", "Santiago"), 0.0);
  EXPECT_EQ(city_distance_km("Santiago", "Atlantis"), 0.0);
  EXPECT_NEAR(city_distance_km("Santiago", "Lima"), 2466.40, 0.01);
  EXPECT_NEAR(city_distance_km("Lima", "Santiago"), 2466.40, 0.01);
  // A quarter meridian: pi/2 * R.
  EXPECT_NEAR(haversine_km(0, 0, 90, 0), 6371.0 * M_PI / 2, 1e-6);
  EXPECT_NE(find_city("Valparaíso"), nullptr);
  EXPECT_NE(find_city("Concepción"), nullptr);
}

// ---- rules, hand-computed ---------------------------------------------------------------------

TEST(FraudRules, VelocityCountsEarlierTransactionsStrictlyWithin60s) {
  // Earlier at 0 and 1000: at 59999 both are recent (alert), at 60000 only the one at 1000 is.
  auto alerts = reference_alerts({tx(1, "A", 0), tx(2, "A", 1000), tx(3, "A", 59'999)});
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].alert_id, "FA-3-VELOCITY");
  EXPECT_EQ(alerts[0].severity, "HIGH");
  EXPECT_EQ(alerts[0].details, "3 transactions in 60s");
  EXPECT_EQ(alerts[0].related_transactions, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(alerts[0].timestamp_ms, 59'999);
  EXPECT_EQ(alerts[0].account_number, "A");
  EXPECT_TRUE(reference_alerts({tx(1, "A", 0), tx(2, "A", 1000), tx(3, "A", 60'000)}).empty());
  // Other accounts do not count.
  EXPECT_TRUE(reference_alerts({tx(1, "A", 0), tx(2, "B", 1000), tx(3, "A", 2000)}).empty());
}

TEST(FraudRules, VelocityKeepsOnlyTheLast100Transactions) {
  std::vector<Transaction> rows;
  for (int i = 0; i < 102; ++i) rows.push_back(tx(i, "A", 5000));
  auto alerts = of_type(reference_alerts(rows), "VELOCITY");
  ASSERT_EQ(alerts.size(), 100u);  // transactions 2..101
  EXPECT_EQ(alerts[0].details, "3 transactions in 60s");
  EXPECT_EQ(alerts[98].details, "101 transactions in 60s");
  EXPECT_EQ(alerts[99].details, "101 transactions in 60s");
  EXPECT_EQ(alerts[99].related_transactions.front(), 1);
  EXPECT_EQ(alerts[99].related_transactions.back(), 100);
}

std::vector<Transaction> history(std::initializer_list<double> amounts) {
  std::vector<Transaction> rows;
  int64_t id = 0;
  // An hour apart, same city: no VELOCITY or GEO alerts.
  for (double a : amounts) {
    rows.push_back(tx(id, "A", id * 3'600'000, a));
    ++id;
  }
  return rows;
}

std::vector<Alert> amount_alerts_for(std::vector<Transaction> rows, double amount) {
  rows.push_back(tx(static_cast<int64_t>(rows.size()), "A",
                    static_cast<int64_t>(rows.size()) * 3'600'000, amount));
  return reference_alerts(rows);
}

TEST(FraudRules, AmountAnomalyThresholdsAreStrict) {
  // 9, 11 three times each: mean 10, variance 101 - 100 = 1, std 1; all exact in double.
  auto h = history({9, 11, 9, 11, 9, 11});
  EXPECT_TRUE(amount_alerts_for(h, 13).empty());  // z = 3 exactly
  EXPECT_TRUE(amount_alerts_for(h, 7).empty());   // z = -3 exactly
  auto high = amount_alerts_for(h, 14);           // z = 4 exactly: HIGH, not CRITICAL
  ASSERT_EQ(high.size(), 1u);
  EXPECT_EQ(high[0].alert_id, "FA-6-AMOUNT_ANOMALY");
  EXPECT_EQ(high[0].severity, "HIGH");
  EXPECT_EQ(high[0].details, "Amount 14.00 CLP is 4.0σ from mean 10.00");
  EXPECT_TRUE(high[0].related_transactions.empty());
  auto critical = amount_alerts_for(h, 14.5);
  ASSERT_EQ(critical.size(), 1u);
  EXPECT_EQ(critical[0].severity, "CRITICAL");
  EXPECT_EQ(critical[0].details, "Amount 14.50 CLP is 4.5σ from mean 10.00");
  auto low = amount_alerts_for(h, 5);  // z = -5: |z| > 3 but z < 4, so HIGH
  ASSERT_EQ(low.size(), 1u);
  EXPECT_EQ(low[0].severity, "HIGH");
  EXPECT_EQ(low[0].details, "Amount 5.00 CLP is -5.0σ from mean 10.00");
}

TEST(FraudRules, AmountAnomalyNeedsFiveEarlierAmountsAndPositiveVariance) {
  EXPECT_TRUE(amount_alerts_for(history({9, 11, 9, 11}), 1e6).empty());  // count 4
  auto five = amount_alerts_for(history({9, 11, 9, 11, 10}), 1e6);
  ASSERT_EQ(five.size(), 1u);
  EXPECT_EQ(five[0].severity, "CRITICAL");
  EXPECT_TRUE(amount_alerts_for(history({10, 10, 10, 10, 10}), 1e6).empty());  // variance 0
  // The currency in details is the transaction's; 1234.5 PEN formatted with 2 decimals.
  auto rows = history({100, 100, 100, 100, 101});
  rows.push_back(tx(5, "A", 5 * 3'600'000, 1234.5, "Santiago", "PEN"));
  auto alerts = reference_alerts(rows);
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].details.substr(0, 22), "Amount 1234.50 PEN is ");
}

TEST(FraudRules, GeoImpossibleBelowTenMinutesInAnotherCity) {
  auto alerts =
      reference_alerts({tx(1, "A", 0, 100, "Santiago"), tx(2, "A", 120'000, 100, "Lima")});
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].alert_id, "FA-2-GEO_IMPOSSIBLE");
  EXPECT_EQ(alerts[0].severity, "CRITICAL");
  EXPECT_EQ(alerts[0].details, "Santiago→Lima in 2.0min (2466km)");
  EXPECT_EQ(
      of_type(reference_alerts({tx(1, "A", 0, 100, "Santiago"), tx(2, "A", 599'999, 100, "Lima")}),
              "GEO_IMPOSSIBLE")
          .size(),
      1u);
  // Exactly 10.0 minutes is not impossible; the same city never is.
  EXPECT_TRUE(
      reference_alerts({tx(1, "A", 0, 100, "Santiago"), tx(2, "A", 600'000, 100, "Lima")}).empty());
  EXPECT_TRUE(reference_alerts({tx(1, "A", 0, 100, "Lima"), tx(2, "A", 1, 100, "Lima")}).empty());
  // Unknown city: distance 0.
  auto unknown = reference_alerts({tx(1, "A", 0, 100, "Lima"), tx(2, "A", 90'000, 100, "Gotham")});
  ASSERT_EQ(unknown.size(), 1u);
  EXPECT_EQ(unknown[0].details, "Lima→Gotham in 1.5min (0km)");
  // Only the previous transaction counts: Lima, then Santiago 20 min later, then Santiago.
  EXPECT_TRUE(reference_alerts({tx(1, "A", 0, 100, "Lima"), tx(2, "A", 1'200'000, 100, "Santiago"),
                                tx(3, "A", 1'260'000, 100, "Santiago")})
                  .empty());
}

TEST(FraudRules, ProcessesEachAccountInEventTimeOrderStableForTies) {
  // Input out of order: the one at 30 s is second in event time, the one at 50 s third.
  auto alerts = reference_alerts({tx(1, "A", 0, 100, "Lima"), tx(2, "A", 50'000, 100, "Cusco"),
                                  tx(3, "A", 30'000, 100, "Santiago")});
  ASSERT_EQ(alerts.size(), 3u);  // in input order: 2 (VELOCITY, GEO), then 3 (GEO)
  EXPECT_EQ(alerts[0].alert_id, "FA-2-VELOCITY");
  EXPECT_EQ(alerts[0].related_transactions, (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(alerts[1].details, "Santiago→Cusco in 0.3min (2219km)");
  EXPECT_EQ(alerts[2].details, "Lima→Santiago in 0.5min (2466km)");
  // Ties keep input order: previous of 3 is 2 (Cusco), not 1.
  auto ties = reference_alerts(
      {tx(1, "A", 0, 100, "Lima"), tx(2, "A", 0, 100, "Cusco"), tx(3, "A", 0, 100, "Cusco")});
  ASSERT_EQ(ties.size(), 2u);
  EXPECT_EQ(ties[0].alert_id, "FA-2-GEO_IMPOSSIBLE");
  EXPECT_EQ(ties[1].alert_id, "FA-3-VELOCITY");
}

TEST(FraudRules, StateIsUpdatedAfterTheRules) {
  // The current amount is not in its own statistics: a lone huge amount after 5 equal ones raises
  // nothing (variance 0), and the next normal amount is then an outlier neither (std is large).
  auto alerts = reference_alerts(history({10, 10, 10, 10, 10, 1e6, 10}));
  EXPECT_TRUE(alerts.empty());
}

// A second formulation of the rules, by brute force: for each transaction, find the account's
// earlier transactions (event time, then input position) and recompute everything from them.
std::vector<Alert> brute_force_alerts(const std::vector<Transaction>& rows) {
  std::vector<Alert> out;
  char buf[256];
  for (size_t i = 0; i < rows.size(); ++i) {
    const Transaction& t = rows[i];
    std::vector<size_t> earlier;  // in event order
    for (size_t j = 0; j < rows.size(); ++j) {
      const Transaction& u = rows[j];
      if (j == i || u.account_number != t.account_number) continue;
      if (u.timestamp_ms < t.timestamp_ms || (u.timestamp_ms == t.timestamp_ms && j < i)) {
        earlier.push_back(j);
      }
    }
    std::stable_sort(earlier.begin(), earlier.end(), [&](size_t a, size_t b) {
      return rows[a].timestamp_ms < rows[b].timestamp_ms;
    });
    std::vector<int64_t> recent;
    for (size_t k = earlier.size() > 100 ? earlier.size() - 100 : 0; k < earlier.size(); ++k) {
      if (t.timestamp_ms - rows[earlier[k]].timestamp_ms < 60000) {
        recent.push_back(rows[earlier[k]].transaction_id);
      }
    }
    if (recent.size() >= 2) {
      Alert a{.alert_id = "FA-" + std::to_string(t.transaction_id) + "-VELOCITY",
              .transaction_id = t.transaction_id,
              .account_number = t.account_number,
              .fraud_type = "VELOCITY",
              .severity = "HIGH",
              .details = std::to_string(recent.size() + 1) + " transactions in 60s",
              .timestamp_ms = t.timestamp_ms,
              .related_transactions = recent};
      out.push_back(a);
    }
    if (earlier.size() >= 5) {
      double sum = 0, sum_sq = 0;
      for (size_t j : earlier) {
        sum += rows[j].transaction_amount;
        sum_sq += rows[j].transaction_amount * rows[j].transaction_amount;
      }
      const double mean = sum / static_cast<double>(earlier.size());
      const double var = sum_sq / static_cast<double>(earlier.size()) - mean * mean;
      const double z = var > 0 ? (t.transaction_amount - mean) / std::sqrt(var) : 0;
      if (var > 0 && (z > 3 || z < -3)) {
        std::snprintf(buf, sizeof(buf), "Amount %.2f %s is %.1fσ from mean %.2f",
                      t.transaction_amount, t.currency.c_str(), z, mean);
        out.push_back({.alert_id = "FA-" + std::to_string(t.transaction_id) + "-AMOUNT_ANOMALY",
                       .transaction_id = t.transaction_id,
                       .account_number = t.account_number,
                       .fraud_type = "AMOUNT_ANOMALY",
                       .severity = z > 4 ? "CRITICAL" : "HIGH",
                       .details = buf,
                       .timestamp_ms = t.timestamp_ms,
                       .related_transactions = {}});
      }
    }
    if (!earlier.empty()) {
      const Transaction& p = rows[earlier.back()];
      const double minutes = static_cast<double>(t.timestamp_ms - p.timestamp_ms) / 60000.0;
      if (p.branch_city != t.branch_city && minutes < 10.0) {
        std::snprintf(buf, sizeof(buf), "%s→%s in %.1fmin (%.0fkm)", p.branch_city.c_str(),
                      t.branch_city.c_str(), minutes,
                      city_distance_km(p.branch_city, t.branch_city));
        out.push_back({.alert_id = "FA-" + std::to_string(t.transaction_id) + "-GEO_IMPOSSIBLE",
                       .transaction_id = t.transaction_id,
                       .account_number = t.account_number,
                       .fraud_type = "GEO_IMPOSSIBLE",
                       .severity = "CRITICAL",
                       .details = buf,
                       .timestamp_ms = t.timestamp_ms,
                       .related_transactions = {}});
      }
    }
  }
  return out;
}

TEST(FraudRules, MatchesBruteForceOnRandomUnorderedInput) {
  std::mt19937_64 rng(2024);
  const char* city_names[] = {"Santiago", "Lima", "Cusco", "Arica", "Nowhere"};
  std::map<std::string, int> seen;
  for (int round = 0; round < 40; ++round) {
    const int n = static_cast<int>(rng() % 400);
    const int accounts = 1 + static_cast<int>(rng() % 6);
    const int64_t span = 1 + static_cast<int64_t>(rng() % 1'500'000);  // many ties when small
    const double amount_spread = (rng() % 4 == 0) ? 0.0 : 50.0;        // sometimes variance 0
    std::vector<Transaction> rows;
    for (int i = 0; i < n; ++i) {
      Transaction t = tx(i, "ACC" + std::to_string(rng() % accounts),
                         static_cast<int64_t>(rng() % static_cast<uint64_t>(span)),
                         100.0 + amount_spread * static_cast<double>(rng() % 100) / 100.0 +
                             (rng() % 25 == 0 ? 5000.0 : 0.0),
                         city_names[rng() % 5 == 0 ? rng() % 5 : 0], rng() % 2 ? "CLP" : "PEN");
      rows.push_back(t);
    }
    auto expected = brute_force_alerts(rows);
    EXPECT_TRUE(reference_alerts(rows) == expected) << "round " << round;
    for (const Alert& a : expected) ++seen[a.fraud_type];
  }
  // The random inputs exercise every rule.
  EXPECT_GT(seen["VELOCITY"], 10);
  EXPECT_GT(seen["AMOUNT_ANOMALY"], 10);
  EXPECT_GT(seen["GEO_IMPOSSIBLE"], 10);
}

TEST(FraudRules, AlertsDoNotDependOnInterleavingOfAccounts) {
  std::mt19937_64 rng(99);
  for (int round = 0; round < 5; ++round) {
    auto rows = generate({.transactions = 3'000 + static_cast<int64_t>(rng() % 3'000),
                          .seed = rng(),
                          .accounts = 20 + static_cast<int64_t>(rng() % 100),
                          .fraud_rate = 0.05});
    auto expected = reference_alerts(rows);
    // Group by account (stable keeps each account's order), which reorders across accounts.
    auto grouped = rows;
    std::stable_sort(grouped.begin(), grouped.end(),
                     [](const Transaction& a, const Transaction& b) {
                       return a.account_number < b.account_number;
                     });
    auto got = reference_alerts(grouped);
    auto key = [](const Alert& a) { return a.alert_id; };
    auto by_id = [&](std::vector<Alert> v) {
      std::sort(v.begin(), v.end(),
                [&](const Alert& a, const Alert& b) { return key(a) < key(b); });
      return v;
    };
    EXPECT_TRUE(by_id(expected) == by_id(got)) << "round " << round;
    EXPECT_FALSE(expected.empty());
    std::set<std::string> ids;
    for (const Alert& a : expected) EXPECT_TRUE(ids.insert(a.alert_id).second) << a.alert_id;
  }
}

}  // namespace
}  // namespace sabot::fraud
