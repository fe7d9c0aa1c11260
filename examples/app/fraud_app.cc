#include "fraud_app.h"

#include <cmath>
#include <cstdio>
#include <string>

#include "fraud_job.h"
#include "sabot/fraud/rules.h"
#include "sabot/fraud/transactions.h"

namespace sabot::fraud_app {

namespace {

int32_t city_index(std::string_view name) {
  auto all = fraud::cities();
  for (size_t i = 0; i < all.size(); ++i) {
    if (all[i].name == name) return static_cast<int32_t>(i);
  }
  return Account::kUnknownCity;
}

}  // namespace

void define_fraud_app(app::App& app, const FraudAppOptions& options) {
  auto transactions = app.topic<Txn>(kTransactionsTopic, {.partitions = kPartitions});
  app.topic<std::string>(kAlertsTopic, {.partitions = kPartitions});
  auto accounts = app.table<std::string, Account>("accounts");
  auto unknown_city = app.table<std::string, std::string>("unknown-city");
  auto recent = app.table<std::string, History>("recent");
  app.agent(
      transactions,
      [accounts, unknown_city, recent](const Txn& t, app::AgentContext& ctx) {
        const std::string key(t.account_number);
        Account s = accounts[key];
        History history = recent[key];
        std::string alert;
        char buf[256];
        auto send = [&](const char* type, const char* severity, std::string_view details,
                        std::string_view related) {
          const std::string id = "FA-" + std::to_string(t.transaction_id) + "-" + type;
          fraud::AlertEvent a{id,       t.transaction_id, t.account_number, type,
                              severity, details,          t.timestamp_ms,   related};
          alert.clear();
          fraud::append_alert_json(a, &alert);
          ctx.send(kAlertsTopic, t.account_number, alert);
        };
        // VELOCITY: earlier transactions of the newest 100 less than 60 s before this one.
        std::string related;
        int64_t n_related = 0;
        for (const auto& [id, ms] : history) {
          if (t.timestamp_ms - ms < fraud::kVelocityWindowMs) {
            related += n_related++ ? "," : "[";
            related += std::to_string(id);
          }
        }
        if (n_related >= 2) {
          related += "]";
          send("VELOCITY", "HIGH", std::to_string(n_related + 1) + " transactions in 60s", related);
        }
        // AMOUNT_ANOMALY
        if (s.count >= fraud::kAmountMinCount) {
          const double n = static_cast<double>(s.count);
          const double mean = s.sum / n;
          const double variance = s.sum_sq / n - mean * mean;
          if (variance > 0) {
            const double z = (t.transaction_amount - mean) / std::sqrt(variance);
            if (std::abs(z) > fraud::kAmountAlertZ) {
              const std::string currency(t.currency);
              std::snprintf(buf, sizeof(buf), "Amount %.2f %s is %.1fσ from mean %.2f",
                            t.transaction_amount, currency.c_str(), z, mean);
              send("AMOUNT_ANOMALY", z > fraud::kAmountCriticalZ ? "CRITICAL" : "HIGH", buf, "");
            }
          }
        }
        // GEO_IMPOSSIBLE
        const int32_t city = city_index(t.branch_city);
        std::string previous;
        if (s.city >= 0) {
          previous = std::string(fraud::cities()[static_cast<size_t>(s.city)].name);
        } else if (s.city == Account::kUnknownCity) {
          previous = unknown_city[key];
        }
        if (s.city != Account::kNoCity && previous != t.branch_city) {
          const double minutes = static_cast<double>(t.timestamp_ms - s.previous_ms) / 60000.0;
          if (minutes < fraud::kGeoMaxMinutes) {
            const std::string to(t.branch_city);
            std::snprintf(buf, sizeof(buf), "%s→%s in %.1fmin (%.0fkm)", previous.c_str(),
                          to.c_str(), minutes, fraud::city_distance_km(previous, to));
            send("GEO_IMPOSSIBLE", "CRITICAL", buf, "");
          }
        }
        // The history, after the rules.
        if (history.size() == static_cast<size_t>(Account::kHistory)) {
          history.erase(history.begin());
        }
        history.emplace_back(t.transaction_id, t.timestamp_ms);
        recent[key] = std::move(history);
        ++s.count;
        s.sum += t.transaction_amount;
        s.sum_sq += t.transaction_amount * t.transaction_amount;
        s.previous_ms = t.timestamp_ms;
        if (city == Account::kUnknownCity) unknown_city[key] = std::string(t.branch_city);
        s.city = city;
        accounts[key] = s;
      },
      {.name = "detector", .concurrency = options.concurrency, .sinks = {kAlertsTopic}});
}

}  // namespace sabot::fraud_app
