// q0, q1, q2, q3 and q8 run as jobs at parallelism 1-3 against the SQL meaning of each query,
// computed with plain loops over the generator's own batches and compared as multisets of rows.
#include "sabot/nexmark/queries.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

namespace sabot::nexmark {
namespace {

using columnar::Array;
using columnar::TypeId;

using Row = std::string;  // the row's values, each written exactly, separated by '|'
using QueryFn = DataStream (*)(Environment&, const QueryConfig&);

struct Case {
  int parallelism;
  uint64_t seed;
  int64_t events;
  int64_t rate;
};

// Events 20000-40000 at 50-500 events/s: 40-800 windows of 10 s, so the windowed joins see
// many windows; small batches so that each window spans several batches.
const Case kCases[] = {
    {1, 1, 20'000, 50},  {1, 7, 30'000, 400}, {2, 2, 40'000, 100},
    {2, 8, 25'000, 500}, {3, 3, 40'000, 200}, {3, 9, 30'000, 60},
};

std::string case_name(const Case& c) {
  std::string s = "parallelism ";
  s += std::to_string(c.parallelism);
  s += " seed ";
  s += std::to_string(c.seed);
  s += " events ";
  s += std::to_string(c.events);
  s += " rate ";
  s += std::to_string(c.rate);
  return s;
}

GeneratorConfig generator_config(const Case& c) {
  GeneratorConfig g;
  g.events = c.events;
  g.rate = c.rate;
  g.seed = c.seed;
  return g;
}

// One value written exactly (doubles by their bits).
void append_value(const Array& a, int64_t i, std::string* out) {
  if (a.is_null(i)) {
    *out += "null";
    return;
  }
  switch (a.type().id()) {
    case TypeId::kInt64:
    case TypeId::kTimestamp:
      *out += std::to_string(a.value<int64_t>(i));
      break;
    case TypeId::kFloat64:
      *out += "f";
      *out += std::to_string(std::bit_cast<uint64_t>(a.value<double>(i)));
      break;
    case TypeId::kUtf8:
      *out += a.string_view(i);
      break;
    default:
      ADD_FAILURE() << "unexpected column type " << a.type().to_string();
  }
}

std::vector<Row> rows_of(const columnar::RecordBatch& batch) {
  std::vector<Row> rows;
  for (int64_t i = 0; i < batch.num_rows(); ++i) {
    Row r;
    for (int c = 0; c < batch.num_columns(); ++c) {
      if (c > 0) r += '|';
      append_value(batch.column(c), i, &r);
    }
    rows.push_back(std::move(r));
  }
  return rows;
}

// Builds a row from values: int64, double or string-like.
void put(Row* r, int64_t v) { *r += std::to_string(v); }
void put(Row* r, double v) {
  *r += "f";
  *r += std::to_string(std::bit_cast<uint64_t>(v));
}
void put(Row* r, std::string_view v) { *r += v; }
template <typename... T>
Row row(const T&... values) {
  Row r;
  bool first = true;
  ((r += first ? "" : "|", first = false, put(&r, values)), ...);
  return r;
}

struct JobOutput {
  columnar::SchemaPtr schema;
  std::vector<Row> rows;
};

JobOutput run(QueryFn query, const Case& c) {
  EnvironmentOptions options;
  options.parallelism = c.parallelism;
  options.batch_size = 97;  // many batches per window, not aligned to the rotation of 50
  Environment env(options);
  QueryConfig config;
  config.generator = generator_config(c);
  config.parallelism = c.parallelism;
  auto collected = query(env, config).collect();
  JobResult result = env.execute("nexmark-query-test");
  EXPECT_TRUE(result.ok()) << result.status().to_string();
  auto batch = collected->to_batch();
  EXPECT_TRUE(batch.is_ok()) << batch.status().to_string();
  if (!batch.is_ok()) return {};
  return {batch->schema_ptr(), rows_of(*batch)};
}

EventBatches generate_all(const Case& c) {
  Generator g(generator_config(c));
  auto r = g.generate(0, c.events);
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  return std::move(r).value();
}

const Array& column(const columnar::RecordBatch& b, std::string_view name) {
  for (int i = 0; i < b.num_columns(); ++i) {
    if (b.schema().field(i).name == name) return b.column(i);
  }
  ADD_FAILURE() << "no column " << name;
  return b.column(0);
}

void expect_schema(const columnar::SchemaPtr& schema,
                   const std::vector<std::pair<std::string, TypeId>>& want) {
  ASSERT_TRUE(schema);
  ASSERT_EQ(schema->num_fields(), static_cast<int>(want.size())) << schema->to_string();
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(schema->field(static_cast<int>(i)).name, want[i].first);
    EXPECT_EQ(schema->field(static_cast<int>(i)).type.id(), want[i].second)
        << want[i].first << ": " << schema->field(static_cast<int>(i)).type.to_string();
  }
}

void expect_same_rows(std::vector<Row> got, std::vector<Row> want, const Case& c) {
  std::sort(got.begin(), got.end());
  std::sort(want.begin(), want.end());
  EXPECT_EQ(got.size(), want.size()) << case_name(c);
  std::vector<Row> missing, extra;
  std::set_difference(want.begin(), want.end(), got.begin(), got.end(),
                      std::back_inserter(missing));
  std::set_difference(got.begin(), got.end(), want.begin(), want.end(), std::back_inserter(extra));
  EXPECT_TRUE(missing.empty()) << case_name(c) << ": " << missing.size() << " rows missing, first "
                               << missing.front();
  EXPECT_TRUE(extra.empty()) << case_name(c) << ": " << extra.size() << " unexpected rows, first "
                             << extra.front();
}

const std::vector<std::pair<std::string, TypeId>> kBidColumns = {{"auction", TypeId::kInt64},
                                                                 {"bidder", TypeId::kInt64},
                                                                 {"price", TypeId::kInt64},
                                                                 {"date_time", TypeId::kTimestamp},
                                                                 {"extra", TypeId::kUtf8}};

// q0 and q1: every bid, the price converted by `convert` when given.
template <typename Price>
std::vector<Row> reference_bids(const EventBatches& e, Price price_of) {
  const auto& b = e.bids;
  const Array &auction = column(b, "auction"), &bidder = column(b, "bidder"),
              &price = column(b, "price"), &time = column(b, "date_time"),
              &extra = column(b, "extra");
  std::vector<Row> rows;
  for (int64_t i = 0; i < b.num_rows(); ++i) {
    rows.push_back(row(auction.value<int64_t>(i), bidder.value<int64_t>(i),
                       price_of(price.value<int64_t>(i)), time.value<int64_t>(i),
                       extra.string_view(i)));
  }
  return rows;
}

TEST(NexmarkQueries, Q0PassesEveryBidThrough) {
  for (const Case& c : kCases) {
    JobOutput out = run(q0, c);
    expect_schema(out.schema, kBidColumns);
    std::vector<Row> want = reference_bids(generate_all(c), [](int64_t p) { return p; });
    ASSERT_FALSE(want.empty());
    expect_same_rows(out.rows, want, c);
  }
}

TEST(NexmarkQueries, Q1ConvertsEveryPriceToFloat64Euros) {
  auto columns = kBidColumns;
  columns[2].second = TypeId::kFloat64;
  for (const Case& c : kCases) {
    JobOutput out = run(q1, c);
    expect_schema(out.schema, columns);
    std::vector<Row> want =
        reference_bids(generate_all(c), [](int64_t p) { return static_cast<double>(p) * 0.908; });
    expect_same_rows(out.rows, want, c);
  }
}

TEST(NexmarkQueries, Q2KeepsBidsOfAuctionsDivisibleBy123) {
  for (const Case& c : kCases) {
    JobOutput out = run(q2, c);
    expect_schema(out.schema, {{"auction", TypeId::kInt64}, {"price", TypeId::kInt64}});
    EventBatches e = generate_all(c);
    const Array &auction = column(e.bids, "auction"), &price = column(e.bids, "price");
    std::vector<Row> want;
    for (int64_t i = 0; i < e.bids.num_rows(); ++i) {
      if (auction.value<int64_t>(i) % 123 == 0) {
        want.push_back(row(auction.value<int64_t>(i), price.value<int64_t>(i)));
      }
    }
    ASSERT_FALSE(want.empty()) << case_name(c);
    ASSERT_LT(want.size(), static_cast<size_t>(e.bids.num_rows()));
    expect_same_rows(out.rows, want, c);
  }
}

struct Person {
  std::string name, city, state;
  int64_t time;
};

std::map<int64_t, Person> persons_by_id(const EventBatches& e) {
  const auto& p = e.persons;
  const Array &id = column(p, "id"), &name = column(p, "name"), &city = column(p, "city"),
              &state = column(p, "state"), &time = column(p, "date_time");
  std::map<int64_t, Person> out;
  for (int64_t i = 0; i < p.num_rows(); ++i) {
    bool added =
        out.emplace(id.value<int64_t>(i),
                    Person{std::string(name.string_view(i)), std::string(city.string_view(i)),
                           std::string(state.string_view(i)), time.value<int64_t>(i)})
            .second;
    EXPECT_TRUE(added) << "person " << id.value<int64_t>(i) << " registered twice";
  }
  return out;
}

TEST(NexmarkQueries, Q3JoinsCategory10AuctionsWithSellersFromOregonIdahoCalifornia) {
  int64_t seller_registered_later = 0;
  for (const Case& c : kCases) {
    JobOutput out = run(q3, c);
    expect_schema(out.schema, {{"name", TypeId::kUtf8},
                               {"city", TypeId::kUtf8},
                               {"state", TypeId::kUtf8},
                               {"id", TypeId::kInt64}});
    EventBatches e = generate_all(c);
    std::map<int64_t, Person> persons = persons_by_id(e);
    const auto& a = e.auctions;
    const Array &id = column(a, "id"), &seller = column(a, "seller"),
                &category = column(a, "category"), &time = column(a, "date_time");
    std::vector<Row> want;
    for (int64_t i = 0; i < a.num_rows(); ++i) {
      if (category.value<int64_t>(i) != 10) continue;
      auto it = persons.find(seller.value<int64_t>(i));
      if (it == persons.end()) continue;
      const Person& p = it->second;
      if (p.state != "OR" && p.state != "ID" && p.state != "CA") continue;
      want.push_back(row(p.name, p.city, p.state, id.value<int64_t>(i)));
      if (p.time > time.value<int64_t>(i)) ++seller_registered_later;
    }
    ASSERT_FALSE(want.empty()) << case_name(c);
    expect_same_rows(out.rows, want, c);
  }
  // The generator's lead of 10 ids: some sellers register after their auction.
  EXPECT_GT(seller_registered_later, 0);
}

TEST(NexmarkQueries, Q8FindsPeopleWhoSoldInTheWindowTheyRegisteredIn) {
  constexpr int64_t kWindowMs = 10'000;
  auto window_of = [](int64_t t) { return t - (((t % kWindowMs) + kWindowMs) % kWindowMs); };
  for (const Case& c : kCases) {
    JobOutput out = run(q8, c);
    expect_schema(
        out.schema,
        {{"id", TypeId::kInt64}, {"name", TypeId::kUtf8}, {"window_start", TypeId::kTimestamp}});
    EventBatches e = generate_all(c);
    // A: the (seller, window) pairs with at least one auction.
    std::set<std::pair<int64_t, int64_t>> selling;
    const Array &seller = column(e.auctions, "seller"), &atime = column(e.auctions, "date_time");
    for (int64_t i = 0; i < e.auctions.num_rows(); ++i) {
      selling.emplace(seller.value<int64_t>(i), window_of(atime.value<int64_t>(i)));
    }
    // P: the distinct (id, name, window) of the registrations.
    std::set<std::tuple<int64_t, std::string, int64_t>> registered;
    const Array &pid = column(e.persons, "id"), &name = column(e.persons, "name"),
                &ptime = column(e.persons, "date_time");
    for (int64_t i = 0; i < e.persons.num_rows(); ++i) {
      registered.emplace(pid.value<int64_t>(i), std::string(name.string_view(i)),
                         window_of(ptime.value<int64_t>(i)));
    }
    std::vector<Row> want;
    std::set<int64_t> windows;
    for (const auto& [id, n, w] : registered) {
      if (selling.count({id, w}) == 0) continue;
      want.push_back(row(id, n, w));
      windows.insert(w);
    }
    ASSERT_FALSE(want.empty()) << case_name(c);
    EXPECT_GT(windows.size(), 1u) << case_name(c);
    expect_same_rows(out.rows, want, c);
  }
}

}  // namespace
}  // namespace sabot::nexmark
