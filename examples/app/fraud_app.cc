#include "fraud_app.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <span>
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
  auto recent = app.list_table<std::string, Recent>("recent");
  app.agent(
      transactions,
      [accounts, unknown_city, recent](const Txn& t, app::AgentContext& ctx) {
        const std::string key(t.account_number);
        Account s = accounts[key];
        const bool seen = s.count > 0;
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
        const auto in_window = [&](const Recent& r) {
          return t.timestamp_ms - r.timestamp_ms < fraud::kVelocityWindowMs;
        };
        // VELOCITY: earlier transactions of the newest 100 less than 60 s before this one. The
        // spilled part is older: when the account's times are in order and the oldest inline
        // entry is out of the window, every spilled one is too.
        const std::span<const Recent> newest(s.newest, static_cast<size_t>(s.inline_n));
        std::span<const Recent> older;
        if (s.spilled > 0 && (s.in_order == 0 || (!newest.empty() && in_window(newest.front())))) {
          older = recent[key].values();
          const size_t keep = static_cast<size_t>(fraud::kVelocityHistory) - newest.size();
          if (older.size() > keep) older = older.subspan(older.size() - keep);
        }
        std::string related = "[";
        int64_t n_related = 0;
        for (std::span<const Recent> part : {older, newest}) {
          for (const Recent& r : part) {
            if (!in_window(r)) continue;
            if (n_related++) related += ',';
            related += std::to_string(r.id);
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
        // GEO_IMPOSSIBLE: another city than the previous transaction's, less than 10 minutes
        // later.
        bool same_city = false;
        if (seen) {
          std::string previous;
          if (s.city != Account::kUnknownCity) {
            previous = std::string(fraud::cities()[static_cast<size_t>(s.city)].name);
          } else {
            previous = unknown_city[key];
          }
          same_city = previous == t.branch_city;
          if (!same_city) {
            const double minutes = static_cast<double>(t.timestamp_ms - s.previous_ms) / 60000.0;
            if (minutes < fraud::kGeoMaxMinutes) {
              const std::string to(t.branch_city);
              std::snprintf(buf, sizeof(buf), "%s→%s in %.1fmin (%.0fkm)", previous.c_str(),
                            to.c_str(), minutes, fraud::city_distance_km(previous, to));
              send("GEO_IMPOSSIBLE", "CRITICAL", buf, "");
            }
          }
        }
        // The account, after the rules.
        if (seen && t.timestamp_ms < s.latest_ms) s.in_order = 0;
        s.latest_ms = seen ? std::max(s.latest_ms, t.timestamp_ms) : t.timestamp_ms;
        ++s.count;
        s.sum += t.transaction_amount;
        s.sum_sq += t.transaction_amount * t.transaction_amount;
        s.previous_ms = t.timestamp_ms;
        if (!same_city) {
          const int32_t previous_city = s.city;
          s.city = city_index(t.branch_city);
          if (s.city == Account::kUnknownCity) {
            unknown_city[key] = std::string(t.branch_city);
          } else if (seen && previous_city == Account::kUnknownCity) {
            unknown_city[key].erase();
          }
        }
        if (s.inline_n == Account::kInline) {
          // Spill the oldest kSpill to "recent"; keep it between 100 and 200 long.
          recent[key].append_all(std::span<const Recent>(s.newest, Account::kSpill));
          std::move(s.newest + Account::kSpill, s.newest + Account::kInline, s.newest);
          s.inline_n -= Account::kSpill;
          s.spilled += Account::kSpill;
          if (s.spilled >= 2 * fraud::kVelocityHistory) {
            const std::span<const Recent> all = recent[key].values();
            recent[key].replace(
                std::vector<Recent>(all.end() - fraud::kVelocityHistory, all.end()));
            s.spilled = fraud::kVelocityHistory;
          }
        }
        s.newest[s.inline_n++] = Recent{t.transaction_id, t.timestamp_ms};
        accounts[key] = s;
      },
      {.name = "detector", .concurrency = options.concurrency, .sinks = {kAlertsTopic}});
}

}  // namespace sabot::fraud_app
