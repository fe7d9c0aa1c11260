// Reading keyed state without the job's code: every value type StateCodec encodes built in comes
// back as JSON from the type tag alone; other types are refused with the reason; keys decode by
// the stored key types; counts, damaged bytes and foreign state types.
#include "sabot/state/keyed_snapshot_reader.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sabot/columnar/builder.h"
#include "sabot/state/keyed_state_backend.h"

namespace sabot::state {
namespace {

using columnar::Scalar;

struct Point {
  int32_t x = 0;
  int32_t y = 0;
};

struct SumFn {
  int64_t create() const { return 0; }
  void add(int64_t& acc, const int64_t& v) const { acc += v; }
  void merge(int64_t& acc, const int64_t& o) const { acc += o; }
  double result(const int64_t& acc) const { return static_cast<double>(acc); }
};

// A backend keyed by (utf8 name, int64 id) holding one state of every kind.
struct Fixture {
  std::unique_ptr<KeyedStateBackend> backend;
  std::vector<KeyId> ids;

  Fixture() {
    KeyedBackendOptions o;
    o.key_types = {columnar::utf8(), columnar::int64()};
    o.max_parallelism = 16;
    backend = *MemoryStateBackend().create_keyed_backend(o);
    columnar::StringBuilder names;
    columnar::Int64Builder nums;
    for (const auto& [n, i] :
         std::vector<std::pair<std::string, int64_t>>{{"alice", 1}, {"bob", 2}, {"q\"uote", -3}}) {
      names.append(n);
      nums.append(i);
    }
    std::vector<columnar::Array> cols = {names.finish(), nums.finish()};
    EXPECT_TRUE(backend->resolve_keys(cols, &ids).is_ok());
  }
};

std::string to_json_or_error(const ValueDecoder& d, std::string_view bytes) {
  auto r = d.to_json(bytes);
  return r.is_ok() ? *r : "error: " + r.status().message();
}

template <typename Handle>
ValueDecoder decoder_for(StateKind kind) {
  return ValueDecoder::for_state(kind, typeid(Handle).name());
}

TEST(ValueDecoderTest, DecodesEveryBuiltInEncodingFromTheTypeTagAlone) {
  auto value = [](auto v) {
    using T = decltype(v);
    return to_json_or_error(decoder_for<ValueState<T>>(StateKind::kValue), encode_state_value(v));
  };
  EXPECT_EQ(value(int64_t{-42}), "-42");
  EXPECT_EQ(value(uint64_t{18446744073709551615u}), "18446744073709551615");
  EXPECT_EQ(value(int32_t{7}), "7");
  EXPECT_EQ(value(int16_t{-2}), "-2");
  EXPECT_EQ(value(uint8_t{200}), "200");
  EXPECT_EQ(value(true), "true");
  EXPECT_EQ(value(0.1), "0.1");
  EXPECT_EQ(value(2.5f), "2.5");
  EXPECT_EQ(value(std::numeric_limits<double>::infinity()), "\"Infinity\"");
  EXPECT_EQ(value(std::string("a\"b\\c\n")), "\"a\\\"b\\\\c\\n\"");
  // Bytes that are not UTF-8 would make invalid JSON as a string: hex instead.
  EXPECT_EQ(value(std::string("\xff\x01", 2)), "{\"hex\": \"ff01\"}");
  EXPECT_EQ(value(std::string("caf\xC3\xA9")), "\"caf\xC3\xA9\"");
  EXPECT_EQ(value(std::vector<int64_t>{1, 2, 3}), "[1, 2, 3]");
  EXPECT_EQ(value(std::vector<bool>{true, false}), "[true, false]");
  EXPECT_EQ(value(std::vector<std::string>{"x", ""}), "[\"x\", \"\"]");
  EXPECT_EQ(value(std::pair<int32_t, std::string>{4, "four"}), "[4, \"four\"]");
  EXPECT_EQ(value(std::optional<double>{}), "null");
  EXPECT_EQ(value(std::optional<double>{1.5}), "1.5");
  EXPECT_EQ(value(std::map<std::string, int64_t>{{"a", 1}, {"b", 2}}), "{\"a\": 1, \"b\": 2}");
  EXPECT_EQ(value(std::map<int64_t, std::vector<double>>{{-1, {0.5}}, {3, {}}}),
            "{\"-1\": [0.5], \"3\": []}");
  EXPECT_EQ(value(std::map<std::pair<int32_t, int32_t>, bool>{{{1, 2}, true}}), "[[[1, 2], true]]");

  // Each kind stores its own shape.
  EXPECT_EQ(to_json_or_error(decoder_for<ListState<std::string>>(StateKind::kList),
                             encode_state_value(std::vector<std::string>{"p", "q"})),
            "[\"p\", \"q\"]");
  std::map<std::string, internal::TimedEntry<double>> timed;
  timed["k"] = {0.25, 123};
  EXPECT_EQ(to_json_or_error(decoder_for<MapState<std::string, double>>(StateKind::kMap),
                             encode_state_value(timed)),
            "{\"k\": 0.25}");
  const ValueDecoder agg =
      decoder_for<AggregatingState<int64_t, std::pair<int64_t, int64_t>, double>>(
          StateKind::kAggregating);
  EXPECT_EQ(agg.value_type(), "std::pair<long, long>");
  EXPECT_EQ(to_json_or_error(agg, encode_state_value(std::pair<int64_t, int64_t>{3, 9})), "[3, 9]");
}

TEST(ValueDecoderTest, RefusesTypesWithoutAGenericEncodingAndBadBytes) {
  const ValueDecoder point = decoder_for<ValueState<Point>>(StateKind::kValue);
  EXPECT_FALSE(point.decodable());
  EXPECT_NE(point.reason().find("Point"), std::string::npos) << point.reason();
  EXPECT_NE(point.reason().find("no generic decoding"), std::string::npos) << point.reason();
  const ValueDecoder nested = decoder_for<MapState<int64_t, Point>>(StateKind::kMap);
  EXPECT_FALSE(nested.decodable());
  // A tag that is not a handle of the stated kind.
  EXPECT_FALSE(decoder_for<ValueState<int64_t>>(StateKind::kList).decodable());
  EXPECT_FALSE(ValueDecoder::for_state(StateKind::kValue, "not a mangled name").decodable());

  const ValueDecoder i64 = decoder_for<ValueState<int64_t>>(StateKind::kValue);
  EXPECT_NE(to_json_or_error(i64, "abc").find("truncated"), std::string::npos);
  EXPECT_NE(to_json_or_error(i64, std::string(9, '\0')).find("trailing"), std::string::npos);
  const ValueDecoder flag = decoder_for<ValueState<bool>>(StateKind::kValue);
  EXPECT_NE(to_json_or_error(flag, "\x07").find("neither 0 nor 1"), std::string::npos);
}

TEST(KeyedSnapshotReaderTest, WalksEntriesWithDecodedKeysAndCountsThem) {
  Fixture f;
  auto* count = *f.backend->get_state(ValueStateDescriptor<int64_t>{.name = "count"});
  auto* tags = *f.backend->get_state(MapStateDescriptor<std::string, double>{.name = "tags"});
  auto* point = *f.backend->get_state(ValueStateDescriptor<Point>{.name = "point"});
  for (size_t i = 0; i < f.ids.size(); ++i) {
    f.backend->set_current_key(f.ids[i]);
    count->update(static_cast<int64_t>(10 * (i + 1)));
    if (i == 1) {
      tags->put("x", 1.5);
      tags->put("y", -2);
      f.backend->set_current_namespace(7);
      count->update(99);
      f.backend->set_current_namespace(kDefaultNamespace);
    }
  }
  f.backend->set_current_key(f.ids[0]);
  point->update({1, 2});
  std::string bytes;
  ASSERT_TRUE(f.backend->snapshot("op", &bytes).is_ok());

  auto r = KeyedSnapshotReader::open(bytes, "op", 16);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->header().state_type, "keyed-state");
  ASSERT_EQ(r->key_types().size(), 2u);
  EXPECT_EQ(r->num_keys(), 3u);
  ASSERT_EQ(r->states().size(), 3u);
  EXPECT_EQ(r->states()[0].name, "count");
  EXPECT_EQ(r->states()[0].entries, 4u);
  EXPECT_EQ(r->states()[0].keys, 3u);
  EXPECT_EQ(r->states()[1].entries, 1u);
  EXPECT_EQ(r->states()[2].kind, StateKind::kValue);
  ASSERT_NE(r->find_state("tags"), nullptr);
  EXPECT_EQ(r->find_state("nope"), nullptr);

  std::map<std::string, std::string> got;  // key + ns -> value
  const ValueDecoder d = ValueDecoder::for_state(StateKind::kValue, r->states()[0].type_tag);
  ASSERT_TRUE(r->for_each_entry("count", [&](const KeyedSnapshotReader::Entry& e) {
                 std::string key = scalar_to_json(e.key[0]) + "," + scalar_to_json(e.key[1]);
                 got[key + "@" + std::to_string(e.ns)] = *d.to_json(e.value);
                 return Status::ok();
               }).is_ok());
  const std::map<std::string, std::string> want = {{"\"alice\",1@0", "10"},
                                                   {"\"bob\",2@0", "20"},
                                                   {"\"bob\",2@7", "99"},
                                                   {"\"q\\\"uote\",-3@0", "30"}};
  EXPECT_EQ(got, want);
  EXPECT_EQ(r->for_each_entry("nope", [](const auto&) { return Status::ok(); }).code(),
            StatusCode::kNotFound);

  // Keys given as text, by the stored types.
  auto key = parse_key("bob,2", r->key_types());
  ASSERT_TRUE(key.is_ok()) << key.status().to_string();
  EXPECT_EQ((*key)[0], Scalar::of_utf8("bob"));
  EXPECT_EQ((*key)[1], Scalar::of_int64(2));
  EXPECT_FALSE(parse_key("bob", r->key_types()).is_ok());
  auto bad = parse_key("bob,two", r->key_types());
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("key column 1 is int64"), std::string::npos)
      << bad.status().message();
}

// The process operator's envelope (operators/keyed_process.cc): the keyed payload per key group,
// then its event-time and processing-time timers as (key index, time).
TEST(KeyedSnapshotReaderTest, ReadsProcessFunctionSnapshotsWithTheirTimers) {
  Fixture f;
  auto* count = *f.backend->get_state(ValueStateDescriptor<int64_t>{.name = "count"});
  for (size_t i = 0; i < f.ids.size(); ++i) {
    f.backend->set_current_key(f.ids[i]);
    count->update(static_cast<int64_t>(i));
  }
  KeyedStateBackend::SnapshotParts parts;
  ASSERT_TRUE(f.backend->snapshot_parts(f.backend->keys().owned_key_groups(), &parts).is_ok());
  std::string bytes;
  SnapshotWriter w(&bytes, {"proc", std::string(kProcessFunctionStateType), 1, 16});
  w.begin_section(kOperatorWide).put_raw(parts.header.data(), parts.header.size());
  for (size_t g = 0; g < parts.key_groups.size(); ++g) {
    ByteWriter& s = w.begin_section(parts.key_groups[g].value());
    s.put_raw(parts.payloads[g].data(), parts.payloads[g].size());
    s.put<uint64_t>(2);  // two event-time timers on the section's first key
    for (int64_t t : {100, 200}) {
      s.put<uint32_t>(0);
      s.put<int64_t>(t);
    }
    s.put<uint64_t>(0);  // no processing-time timers
  }
  w.finish();
  auto r = KeyedSnapshotReader::open(bytes, "proc", 16);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->num_keys(), 3u);
  EXPECT_EQ(r->event_timers(), 2 * parts.key_groups.size());
  EXPECT_EQ(r->processing_timers(), 0u);
  EXPECT_EQ(r->states()[0].entries, 3u);
  std::vector<std::string> values;
  const ValueDecoder d = ValueDecoder::for_state(StateKind::kValue, r->states()[0].type_tag);
  ASSERT_TRUE(r->for_each_entry("count", [&](const KeyedSnapshotReader::Entry& e) {
                 values.push_back(*d.to_json(e.value));
                 return Status::ok();
               }).is_ok());
  std::sort(values.begin(), values.end());
  EXPECT_EQ(values, (std::vector<std::string>{"0", "1", "2"}));
}

TEST(KeyedSnapshotReaderTest, RefusesOtherStateTypesAndDamagedBytes) {
  std::string window;
  SnapshotWriter w(&window, {"win", "window", 1, 16});
  w.begin_section(kOperatorWide).put<int64_t>(0);
  w.finish();
  auto other = KeyedSnapshotReader::open(window, "win", 16);
  ASSERT_FALSE(other.is_ok());
  EXPECT_NE(other.status().message().find("is not keyed state"), std::string::npos);

  Fixture f;
  auto* count = *f.backend->get_state(ValueStateDescriptor<int64_t>{.name = "count"});
  f.backend->set_current_key(f.ids[0]);
  count->update(1);
  std::string bytes;
  ASSERT_TRUE(f.backend->snapshot("op", &bytes).is_ok());
  EXPECT_FALSE(KeyedSnapshotReader::open(bytes, "other", 16).is_ok());
  std::string flipped = bytes;
  flipped[flipped.size() / 2] ^= 0x40;
  auto damaged = KeyedSnapshotReader::open(flipped, "op", 16);
  ASSERT_FALSE(damaged.is_ok());
  EXPECT_EQ(damaged.status().code(), StatusCode::kInvalidData);
}

}  // namespace
}  // namespace sabot::state
