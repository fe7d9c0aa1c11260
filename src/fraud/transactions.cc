// Generator of synthetic Chile/Peru card transactions; see sabot/fraud/transactions.h.
#include "sabot/fraud/transactions.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numbers>

#include "sabot/base/arith.h"
#include "sabot/base/check.h"
#include "sabot/columnar/builder.h"

namespace sabot::fraud {

namespace {

constexpr City kCities[] = {
    {"Santiago", "Chile", -33.4489, -70.6693},    {"Valparaíso", "Chile", -33.0472, -71.6127},
    {"Concepción", "Chile", -36.8201, -73.0444},  {"La Serena", "Chile", -29.9027, -71.2519},
    {"Antofagasta", "Chile", -23.6509, -70.3975}, {"Temuco", "Chile", -38.7359, -72.5904},
    {"Arica", "Chile", -18.4783, -70.3126},       {"Punta Arenas", "Chile", -53.1638, -70.9171},
    {"Lima", "Peru", -12.0464, -77.0428},         {"Arequipa", "Peru", -16.4090, -71.5375},
    {"Trujillo", "Peru", -8.1116, -79.0288},      {"Cusco", "Peru", -13.5319, -71.9675},
};
constexpr int kNumCities = 12;
constexpr int kNumChileCities = 8;

uint64_t splitmix64(uint64_t* state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

// Chilean RUT check digit (modulo 11 with weights 2..7 from the right; 10 is 'K').
char rut_check_digit(uint64_t body) {
  int sum = 0;
  int weight = 2;
  for (; body > 0; body /= 10) {
    sum += static_cast<int>(body % 10) * weight;
    weight = weight == 7 ? 2 : weight + 1;
  }
  int d = 11 - sum % 11;
  return d == 11 ? '0' : d == 10 ? 'K' : static_cast<char>('0' + d);
}

// Days since 1970-01-01 to civil date (H. Hinnant's algorithm), valid for negative days too.
void civil_from_days(int64_t z, int64_t* y, unsigned* m, unsigned* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = static_cast<int64_t>(yoe) + era * 400 + (*m <= 2);
}

}  // namespace

std::span<const City> cities() { return kCities; }

const City* find_city(std::string_view name) {
  for (const City& c : kCities) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

double haversine_km(double lat1_deg, double lon1_deg, double lat2_deg, double lon2_deg) {
  constexpr double kRad = std::numbers::pi / 180.0;
  const double dlat = (lat2_deg - lat1_deg) * kRad;
  const double dlon = (lon2_deg - lon1_deg) * kRad;
  const double a = std::sin(dlat / 2) * std::sin(dlat / 2) +
                   std::cos(lat1_deg * kRad) * std::cos(lat2_deg * kRad) * std::sin(dlon / 2) *
                       std::sin(dlon / 2);
  return 2.0 * 6371.0 * std::asin(std::sqrt(a));
}

double city_distance_km(std::string_view a, std::string_view b) {
  const City* ca = find_city(a);
  const City* cb = find_city(b);
  if (ca == nullptr || cb == nullptr) return 0.0;
  return haversine_km(ca->lat_deg, ca->lon_deg, cb->lat_deg, cb->lon_deg);
}

std::string iso8601_utc(int64_t timestamp_ms) {
  const int64_t days = floor_div(timestamp_ms, 86'400'000);
  const int64_t ms_of_day = timestamp_ms - days * 86'400'000;
  int64_t y;
  unsigned m, d;
  civil_from_days(days, &y, &m, &d);
  if (y < 0 || y > 9999) {  // outside the 4-digit years of the fast path below
    char buf[64];
    const int64_t secs = ms_of_day / 1000;
    std::snprintf(buf, sizeof(buf), "%04lld-%02u-%02uT%02lld:%02lld:%02lld.%03lldZ",
                  static_cast<long long>(y), m, d, static_cast<long long>(secs / 3600),
                  static_cast<long long>(secs / 60 % 60), static_cast<long long>(secs % 60),
                  static_cast<long long>(ms_of_day % 1000));
    return buf;
  }
  // Written digit by digit: snprintf was a third of the generator's time per transaction.
  std::string out = "0000-00-00T00:00:00.000Z";
  auto put = [&out](size_t pos, int64_t value, int digits) {
    for (int i = digits - 1; i >= 0; --i, value /= 10)
      out[pos + i] = static_cast<char>('0' + value % 10);
  };
  const int64_t secs = ms_of_day / 1000;
  put(0, y, 4);
  put(5, m, 2);
  put(8, d, 2);
  put(11, secs / 3600, 2);
  put(14, secs / 60 % 60, 2);
  put(17, secs % 60, 2);
  put(20, ms_of_day % 1000, 3);
  return out;
}

const columnar::SchemaPtr& transaction_schema() {
  using namespace columnar;
  static const SchemaPtr kSchema = schema({
      field("transaction_id", int64(), false),
      field("account_number", utf8(), false),
      field("user_id", utf8(), false),
      field("transaction_date", utf8(), false),
      field("transaction_amount", float64(), false),
      field("currency", utf8(), false),
      field("transaction_type", utf8(), false),
      field("branch_city", utf8(), false),
      field("payment_method", utf8(), false),
      field("country", utf8(), false),
      field("timestamp_ms", int64(), false),
  });
  return kSchema;
}

namespace {
// String members in schema order (columns 1-3 and 5-9).
constexpr std::string Transaction::*kStringMembers[] = {
    &Transaction::account_number, &Transaction::user_id,          &Transaction::transaction_date,
    &Transaction::currency,       &Transaction::transaction_type, &Transaction::branch_city,
    &Transaction::payment_method, &Transaction::country};
constexpr int kStringColumns[] = {1, 2, 3, 5, 6, 7, 8, 9};
}  // namespace

columnar::RecordBatch to_record_batch(std::span<const Transaction> rows) {
  using namespace columnar;
  const auto n = static_cast<int64_t>(rows.size());
  Int64Builder ids(int64());
  Int64Builder times(int64());
  Float64Builder amounts(float64());
  ids.reserve(n);
  times.reserve(n);
  amounts.reserve(n);
  std::vector<Array> columns(11);
  for (const Transaction& t : rows) {
    ids.unsafe_append(t.transaction_id);
    times.unsafe_append(t.timestamp_ms);
    amounts.unsafe_append(t.transaction_amount);
  }
  for (int k = 0; k < 8; ++k) {
    StringBuilder b(utf8());
    b.reserve(n);
    for (const Transaction& t : rows) b.append(t.*kStringMembers[k]);
    columns[kStringColumns[k]] = b.finish();
  }
  columns[0] = ids.finish();
  columns[4] = amounts.finish();
  columns[10] = times.finish();
  return RecordBatch::make_unchecked(transaction_schema(), std::move(columns), n);
}

Status validate_transaction(const Transaction& t) {
  if (t.timestamp_ms < kMinTimestampMs || t.timestamp_ms >= kMaxTimestampMs) {
    return Status::invalid_argument("field 'timestamp_ms': " + std::to_string(t.timestamp_ms) +
                                    " is outside [" + iso8601_utc(kMinTimestampMs) + ", " +
                                    iso8601_utc(kMaxTimestampMs) + ")");
  }
  if (!std::isfinite(t.transaction_amount) || t.transaction_amount < 0 ||
      t.transaction_amount > kMaxAmount) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%g", t.transaction_amount);
    return Status::invalid_argument("field 'transaction_amount': " + std::string(buf) +
                                    " is not a finite amount in [0, 1e15]");
  }
  if (t.account_number.empty()) {
    return Status::invalid_argument("field 'account_number' is empty");
  }
  return Status::ok();
}

Result<std::vector<Transaction>> from_record_batch(const columnar::RecordBatch& batch) {
  const columnar::Schema& want = *transaction_schema();
  if (!(batch.schema() == want)) {
    return Status::invalid_argument("fraud::from_record_batch: schema is\n" +
                                    batch.schema().to_string() + "\nexpected\n" + want.to_string());
  }
  for (int c = 0; c < batch.num_columns(); ++c) {
    if (batch.column(c).null_count() != 0) {
      return Status::invalid_argument("fraud::from_record_batch: column '" + want.field(c).name +
                                      "' has nulls");
    }
  }
  std::vector<Transaction> out(static_cast<size_t>(batch.num_rows()));
  for (int64_t i = 0; i < batch.num_rows(); ++i) {
    Transaction& t = out[static_cast<size_t>(i)];
    t.transaction_id = batch.column(0).value<int64_t>(i);
    t.transaction_amount = batch.column(4).value<double>(i);
    t.timestamp_ms = batch.column(10).value<int64_t>(i);
    for (int k = 0; k < 8; ++k) {
      t.*kStringMembers[k] = std::string(batch.column(kStringColumns[k]).string_view(i));
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Generator

Result<TransactionGenerator> TransactionGenerator::make(const GeneratorOptions& o) {
  auto bad = [](const char* name, const std::string& why) {
    return Status::invalid_argument(std::string("fraud::GeneratorOptions.") + name + " " + why);
  };
  if (o.transactions < 0)
    return bad("transactions", "must be >= 0, got " + std::to_string(o.transactions));
  if (o.accounts <= 0) return bad("accounts", "must be > 0, got " + std::to_string(o.accounts));
  if (!(o.fraud_rate >= 0 && o.fraud_rate <= 1)) {
    return bad("fraud_rate", "must be in [0, 1], got " + std::to_string(o.fraud_rate));
  }
  if (!(o.transactions_per_account_per_hour > 0)) {
    return bad("transactions_per_account_per_hour",
               "must be > 0, got " + std::to_string(o.transactions_per_account_per_hour));
  }
  if (!(o.chile_share >= 0 && o.chile_share <= 1)) {
    return bad("chile_share", "must be in [0, 1], got " + std::to_string(o.chile_share));
  }
  if (!(o.travel_rate >= 0 && o.travel_rate <= 1)) {
    return bad("travel_rate", "must be in [0, 1], got " + std::to_string(o.travel_rate));
  }
  return TransactionGenerator(o);
}

TransactionGenerator::TransactionGenerator(const GeneratorOptions& options) : options_(options) {
  uint64_t s = options.seed;
  for (uint64_t& r : rng_) r = splitmix64(&s);
  clock_ms_ = static_cast<double>(options.start_ms);
  mean_gap_ms_ = 3'600'000.0 / (static_cast<double>(options.accounts) *
                                options.transactions_per_account_per_hour);
  accounts_.resize(static_cast<size_t>(options.accounts));
  // Multiplying by an odd number not divisible by 5 is a bijection modulo 10^10: distinct
  // indexes give distinct, scattered account numbers.
  constexpr uint64_t kMod = 10'000'000'000ULL;
  const uint64_t offset = next_u64() % kMod;
  for (size_t i = 0; i < accounts_.size(); ++i) {
    Account& a = accounts_[i];
    const uint64_t number = (static_cast<uint64_t>(i) * 7'919'133ULL + offset) % kMod;
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%010llu", static_cast<unsigned long long>(number));
    a.number = buf;
    const bool chile = uniform() < options.chile_share;
    if (chile) {
      // Santiago dominates, as in the real population.
      a.home_city = uniform() < 0.4 ? 0 : static_cast<int>(uniform_int(kNumChileCities));
      const uint64_t body = 5'000'000 + next_u64() % 20'000'000;
      std::snprintf(buf, sizeof(buf), "%llu-%c", static_cast<unsigned long long>(body),
                    rut_check_digit(body));
      a.user_id = buf;
      // CLP amounts are about 1000 times PEN amounts.
      a.log_typical = std::log(45'000.0) + 0.9 * standard_normal();
    } else {
      a.home_city =
          kNumChileCities +
          (uniform() < 0.4 ? 0 : static_cast<int>(uniform_int(kNumCities - kNumChileCities)));
      std::snprintf(buf, sizeof(buf), "%08llu",
                    static_cast<unsigned long long>(10'000'000 + next_u64() % 80'000'000));
      a.user_id = buf;
      a.log_typical = std::log(45.0) + 0.9 * standard_normal();
    }
  }
}

// xoshiro256**: fast, and the same sequence on every platform (unlike std:: distributions).
uint64_t TransactionGenerator::next_u64() {
  const uint64_t result = rotl(rng_[1] * 5, 7) * 9;
  const uint64_t t = rng_[1] << 17;
  rng_[2] ^= rng_[0];
  rng_[3] ^= rng_[1];
  rng_[1] ^= rng_[2];
  rng_[0] ^= rng_[3];
  rng_[2] ^= t;
  rng_[3] = rotl(rng_[3], 45);
  return result;
}

double TransactionGenerator::uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

int64_t TransactionGenerator::uniform_int(int64_t n) {
  return static_cast<int64_t>(uniform() * static_cast<double>(n));
}

double TransactionGenerator::standard_normal() {
  // Box-Muller with 1 - u in the log so it never sees 0.
  const double u1 = 1.0 - uniform();
  const double u2 = uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

double TransactionGenerator::normal_amount(const Account& a) {
  // Clamped at 1.5 sigma: with unbounded tails an account's first few amounts give a small
  // variance and ordinary purchases then look like AMOUNT_ANOMALY outliers (1.3% of normal
  // traffic with a 2.5 sigma clamp, about 0.3% with 1.5 sigma, measured by simulation).
  const double z = std::clamp(standard_normal(), -1.5, 1.5);
  return std::exp(a.log_typical + 0.35 * z);
}

int TransactionGenerator::random_other_city(int city, bool same_country, double min_km) {
  int candidates[kNumCities];
  int n = 0;
  for (int c = 0; c < kNumCities; ++c) {
    if (c == city) continue;
    if (same_country && kCities[c].country != kCities[city].country) continue;
    if (haversine_km(kCities[c].lat_deg, kCities[c].lon_deg, kCities[city].lat_deg,
                     kCities[city].lon_deg) < min_km) {
      continue;
    }
    candidates[n++] = c;
  }
  SABOT_CHECK_GT(n, 0);
  return candidates[uniform_int(n)];
}

void TransactionGenerator::advance_clock() {
  clock_ms_ += -std::log(1.0 - uniform()) * mean_gap_ms_;
}

void TransactionGenerator::inject() {
  const auto now = static_cast<int64_t>(clock_ms_);
  const int64_t account = uniform_int(options_.accounts);
  const Account& a = accounts_[static_cast<size_t>(account)];
  switch (uniform_int(3)) {
    case 0: {  // burst: 3-6 transactions at home within a minute (at most 5 gaps of 11.5 s)
      const int64_t k = 3 + uniform_int(4);
      int64_t t = now;
      for (int64_t i = 0; i < k; ++i) {
        pending_.push({t, pending_seq_++, account, a.home_city, normal_amount(a)});
        t += 500 + uniform_int(11'000);
      }
      break;
    }
    case 1: {  // amount far above the norm, preferably for an account with some history
      int64_t chosen = account;
      for (int tries = 0; tries < 16 && accounts_[static_cast<size_t>(chosen)].count < 5; ++tries) {
        chosen = uniform_int(options_.accounts);
      }
      const Account& c = accounts_[static_cast<size_t>(chosen)];
      const double amount = std::exp(c.log_typical) * (15.0 + 35.0 * uniform());
      pending_.push({now, pending_seq_++, chosen, c.home_city, amount});
      break;
    }
    default: {  // at home, then 1-9 minutes later in a city at least 1000 km away
      const int far = random_other_city(a.home_city, false, 1000.0);
      pending_.push({now, pending_seq_++, account, a.home_city, normal_amount(a)});
      pending_.push(
          {now + 60'000 + uniform_int(480'000), pending_seq_++, account, far, normal_amount(a)});
      break;
    }
  }
}

Transaction TransactionGenerator::emit(int64_t account, int city, double amount,
                                       int64_t timestamp_ms) {
  Account& a = accounts_[static_cast<size_t>(account)];
  ++a.count;
  const bool chile = a.home_city < kNumChileCities;
  Transaction t;
  t.transaction_id = produced_++;
  t.account_number = a.number;
  t.user_id = a.user_id;
  t.transaction_date = iso8601_utc(timestamp_ms);
  // CLP has no minor unit; PEN has centimos.
  t.transaction_amount = chile ? std::max(1.0, std::round(amount))
                               : std::max(0.01, std::round(amount * 100.0) / 100.0);
  t.currency = chile ? "CLP" : "PEN";
  const double kind = uniform();
  if (kind < 0.6) {
    t.transaction_type = "PURCHASE";
    t.payment_method = uniform() < 0.7 ? "CARD" : "ONLINE";
  } else if (kind < 0.85) {
    t.transaction_type = "WITHDRAWAL";
    t.payment_method = "CASH";
  } else {
    t.transaction_type = "TRANSFER";
    t.payment_method = "ONLINE";
  }
  t.branch_city = std::string(kCities[city].name);
  // country and currency are those of the account's bank, wherever the branch is.
  t.country = chile ? "Chile" : "Peru";
  t.timestamp_ms = timestamp_ms;
  return t;
}

Transaction TransactionGenerator::next() {
  SABOT_CHECK(!done());
  for (;;) {
    const auto now = static_cast<int64_t>(clock_ms_);
    if (!pending_.empty() && pending_.top().timestamp_ms <= now) {
      const Pending p = pending_.top();
      pending_.pop();
      return emit(p.account, p.city, p.amount, p.timestamp_ms);
    }
    if (uniform() < options_.fraud_rate) {
      inject();  // schedules its first transaction at `now`, emitted by the next iteration
      continue;
    }
    const int64_t account = uniform_int(options_.accounts);
    const Account& a = accounts_[static_cast<size_t>(account)];
    const int city =
        uniform() < options_.travel_rate ? random_other_city(a.home_city, true, 0.0) : a.home_city;
    const double amount = normal_amount(a);
    advance_clock();
    return emit(account, city, amount, now);
  }
}

int64_t TransactionGenerator::next_rows(int64_t max_rows, std::vector<Transaction>* out) {
  int64_t n = 0;
  for (; n < max_rows && !done(); ++n) out->push_back(next());
  return n;
}

columnar::RecordBatch TransactionGenerator::next_batch(int64_t max_rows) {
  std::vector<Transaction> rows;
  rows.reserve(static_cast<size_t>(std::min(max_rows, options_.transactions - produced_)));
  next_rows(max_rows, &rows);
  return to_record_batch(rows);
}

Result<std::vector<Transaction>> generate_transactions(const GeneratorOptions& options) {
  SABOT_ASSIGN_OR_RETURN(TransactionGenerator gen, TransactionGenerator::make(options));
  std::vector<Transaction> out;
  out.reserve(static_cast<size_t>(options.transactions));
  gen.next_rows(options.transactions, &out);
  return out;
}

}  // namespace sabot::fraud
