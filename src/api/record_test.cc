#include "sabot/api/record.h"

#include <gtest/gtest.h>

#include "sabot/api/environment.h"

struct Txn {
  int64_t id = 0;
  std::string_view account;
  double amount = 0;
  std::optional<std::string> city;
  int64_t ts = 0;
};
SABOT_RECORD(Txn, id, account, amount, city, ts);

struct Flag {
  std::string account;
  bool big = false;
  int32_t level = 0;
  uint64_t tag = 0;
};
SABOT_RECORD(Flag, account, big, level, tag);

namespace sabot {
namespace {

using columnar::field;

RecordBatch txns() {
  auto s = columnar::schema({field("id", columnar::int64()), field("account", columnar::utf8()),
                             field("amount", columnar::float64()), field("city", columnar::utf8()),
                             field("ts", columnar::timestamp(columnar::TimeUnit::kMilli)),
                             field("extra", columnar::int32())});
  return RecordBatch::make(s,
                           {columnar::int64_array({1, 2, 3}), columnar::utf8_array({"a", "b", "a"}),
                            columnar::float64_array({10, 5000, 7}),
                            columnar::utf8_array({"Lisbon", std::nullopt, "Porto"}),
                            columnar::timestamp_array(columnar::TimeUnit::kMilli, {100, 200, 300}),
                            columnar::int32_array({0, 0, 0})})
      .value();
}

TEST(Record, SchemaFollowsMembers) {
  auto s = record_schema<Txn>();
  EXPECT_EQ(s->to_string(),
            "id: int64 not null\naccount: utf8 not null\namount: float64 not null\ncity: "
            "utf8\nts: int64 not null");
}

TEST(Record, ReadsRowsByColumnNameIgnoringExtraColumns) {
  RecordBatch batch = txns();  // string_view members point into it
  auto rows = read_rows<Txn>(batch).value();
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[1].account, "b");
  EXPECT_EQ(rows[1].amount, 5000);
  EXPECT_FALSE(rows[1].city.has_value());
  EXPECT_EQ(*rows[2].city, "Porto");
  EXPECT_EQ(rows[2].ts, 300);  // timestamp columns read as int64
}

TEST(Record, BindErrorsNameTheFieldAndTypes) {
  auto s = columnar::schema({field("id", columnar::utf8())});
  RowReader<Txn> r;
  Status st = r.bind(*s);
  ASSERT_FALSE(st.is_ok());
  EXPECT_EQ(st.message(), "record field 'id' is int64 but the column is utf8");
  auto missing = columnar::schema({field("id", columnar::int64())});
  EXPECT_NE(r.bind(*missing).message().find("no column named 'account'"), std::string::npos);
}

TEST(Record, NullInNonOptionalMemberIsAnError) {
  auto s = columnar::schema({field("account", columnar::utf8()), field("big", columnar::boolean()),
                             field("level", columnar::int32()), field("tag", columnar::uint64())});
  auto b = RecordBatch::make(s, {columnar::utf8_array({std::nullopt}), columnar::bool_array({true}),
                                 columnar::int32_array({1}), columnar::uint64_array({2})})
               .value();
  auto rows = read_rows<Flag>(b);
  ASSERT_FALSE(rows.is_ok());
  EXPECT_NE(rows.status().message().find("column 'account' is null"), std::string::npos);
}

TEST(Record, WriterRoundTrips) {
  RowWriter<Flag> w;
  w.append({"x", true, -3, 7});
  w.append({"y", false, 4, UINT64_MAX});
  RecordBatch b = w.finish();
  auto back = read_rows<Flag>(b).value();
  EXPECT_EQ(back[0].account, "x");
  EXPECT_TRUE(back[0].big);
  EXPECT_EQ(back[1].level, 4);
  EXPECT_EQ(back[1].tag, UINT64_MAX);
}

TEST(TypedStream, MapFilterFlatMapOverRows) {
  Environment env({.parallelism = 2});
  auto src = env.from_batches({txns(), txns()});
  auto mapped = src.filter<Txn>([](const Txn& t) { return t.city.has_value(); })
                    .map<Txn, Flag>([](const Txn& t) {
                      return Flag{std::string(t.account), t.amount > 100, 1, uint64_t(t.id)};
                    })
                    .collect();
  auto expanded = src.flat_map<Txn, Flag>([](const Txn& t, std::vector<Flag>& out) {
                       for (int64_t i = 0; i < t.id; ++i) out.push_back({"r", false, 0, 0});
                     })
                      .collect();
  JobResult r = env.execute();
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  auto rows = read_rows<Flag>(mapped->to_batch().value()).value();
  EXPECT_EQ(rows.size(), 4u);  // rows 1 and 3 of each copy have a city
  for (const Flag& f : rows) EXPECT_FALSE(f.big);
  EXPECT_EQ(expanded->num_rows(), 2 * (1 + 2 + 3));
}

TEST(TypedStream, FromRecordsRoundTripsACollection) {
  Environment env;
  std::vector<Flag> flags = {{"a", true, 1, 10}, {"b", false, 2, 20}, {"c", true, 3, 30}};
  auto out = env.from_records(flags).filter<Flag>([](const Flag& f) { return f.big; }).collect();
  ASSERT_TRUE(env.execute().ok());
  auto rows = read_rows<Flag>(out->to_batch().value()).value();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].account, "a");
  EXPECT_EQ(rows[1].tag, 30u);
}

TEST(TypedStream, ExceptionNamesOperatorAndRow) {
  Environment env;
  env.from_batches({txns()})
      .map<Txn, Flag>([](const Txn& t) -> Flag {
        if (t.id == 2) throw std::runtime_error("cannot score");
        return Flag{};
      })
      .name("scorer")
      .blackhole();
  JobResult r = env.execute();
  ASSERT_FALSE(r.ok());
  const std::string& m = r.status().message();
  EXPECT_NE(m.find("operator 'scorer'"), std::string::npos) << m;
  EXPECT_NE(m.find("{id: 2, account: \"b\""), std::string::npos) << m;
  EXPECT_NE(m.find("cannot score"), std::string::npos) << m;
}

TEST(TypedStream, WrongRecordTypeIsRefusedBeforeRunning) {
  Environment env;
  env.from_batches({txns()}).filter<Flag>([](const Flag&) { return true; }).blackhole();
  JobResult r = env.execute();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("no column named 'big'"), std::string::npos)
      << r.status().to_string();
}

}  // namespace
}  // namespace sabot
