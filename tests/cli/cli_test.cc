// The `sabot` command as a user runs it: help, errors and exit codes, and that its outputs are
// the right data (generated events and transactions, benchmark results, the fraud demo's alerts).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <pty.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include "sabot/checkpoint/storage.h"
#include "sabot/codec/json.h"
#include "sabot/columnar/builder.h"
#include "sabot/columnar/ipc.h"
#include "sabot/fraud/rules.h"
#include "sabot/fraud/transactions.h"
#include "sabot/nexmark/generator.h"
#include "sabot/operators/dedup.h"
#include "sabot/operators/join.h"
#include "sabot/operators/topn.h"
#include "sabot/state/keyed_state_backend.h"
#include "sabot/state/rocksdb_backend.h"
#include "sabot/state/snapshot.h"
#include "support/text_files.h"

namespace sabot {
namespace {

namespace fs = std::filesystem;
using columnar::RecordBatch;
using test_support::Outcome;

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("sabot_cli_test_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  Outcome sabot(const std::string& args) const { return run(std::string(SABOT_CLI) + " " + args); }

  // Runs a shell command line; standard input is /dev/null unless it redirects it itself.
  Outcome run(const std::string& command_line) const {
    return test_support::run_command(command_line, path("stderr.txt"));
  }

  static std::string read(const std::string& file) { return test_support::read_file(file); }

  fs::path dir_;
};

// Decodes JSON lines with `schema` (other keys ignored), failing the test on any bad line.
RecordBatch decode(const std::string& text, columnar::SchemaPtr schema) {
  auto decoder = codec::JsonDecoder::make(std::move(schema));
  EXPECT_TRUE(decoder.is_ok());
  auto result = decoder->decode_lines(text);
  EXPECT_TRUE(result.is_ok());
  EXPECT_TRUE(result->errors.empty()) << result->errors.front().message;
  return std::move(result->batch);
}

size_t count_lines(const std::string& text) { return std::count(text.begin(), text.end(), '\n'); }

TEST_F(CliTest, HelpAndUsageErrorsUseTheirExitCodes) {
  Outcome top = sabot("--help");
  EXPECT_EQ(top.code, 0);
  for (const char* c : {"demo fraud", "fraud generate", "nexmark generate", "bench nexmark"}) {
    EXPECT_NE(top.out.find(c), std::string::npos) << c;
    Outcome help = sabot(std::string(c) + " --help");
    EXPECT_EQ(help.code, 0) << c;
    EXPECT_NE(help.out.find(std::string("Usage: sabot ") + c), std::string::npos) << help.out;
  }
  EXPECT_EQ(sabot("").code, 2);
  Outcome unknown = sabot("frobnicate");
  EXPECT_EQ(unknown.code, 2);
  EXPECT_NE(unknown.err.find("unknown command 'frobnicate'"), std::string::npos) << unknown.err;
  Outcome group = sabot("bench");
  EXPECT_EQ(group.code, 2);
  EXPECT_NE(group.err.find("bench nexmark"), std::string::npos) << group.err;
  Outcome bad_query = sabot("bench nexmark --query q6");
  EXPECT_EQ(bad_query.code, 2);
  EXPECT_NE(bad_query.err.find("--query: 'q6' is not one of q0, q1, q2, q3, q4, q5, q7, q8, all"),
            std::string::npos)
      << bad_query.err;
  Outcome bad_count = sabot("nexmark generate --events ten");
  EXPECT_EQ(bad_count.code, 2);
  EXPECT_NE(bad_count.err.find("--events: expected an integer"), std::string::npos);
  Outcome bad_file = sabot("demo fraud --input /nonexistent/tx.jsonl --quiet");
  EXPECT_EQ(bad_file.code, 1);
  EXPECT_NE(bad_file.err.find("/nonexistent/tx.jsonl"), std::string::npos) << bad_file.err;
}

TEST_F(CliTest, NexmarkGenerateWritesTheGeneratorsEventsInEventOrder) {
  nexmark::GeneratorConfig config{.events = 5000, .rate = 1000, .seed = 7, .base_time_ms = 0};
  Outcome r = sabot("nexmark generate --events 5000 --rate 1000 --seed 7");
  ASSERT_EQ(r.code, 0) << r.err;
  ASSERT_EQ(count_lines(r.out), 5000u);
  // Each line's kind follows the rotation of 50.
  std::istringstream lines(r.out);
  std::string line;
  std::string by_kind[3];
  for (int64_t n = 0; std::getline(lines, line); ++n) {
    const int k = static_cast<int>(nexmark::event_kind(n));
    const char* names[] = {"{\"kind\":\"person\",", "{\"kind\":\"auction\",", "{\"kind\":\"bid\","};
    ASSERT_EQ(line.rfind(names[k], 0), 0u) << "line " << n << ": " << line;
    by_kind[k] += line + "\n";
  }
  auto expected = nexmark::Generator(config).generate(0, config.events);
  ASSERT_TRUE(expected.is_ok());
  EXPECT_TRUE(decode(by_kind[0], nexmark::person_schema()).equals(expected->persons));
  EXPECT_TRUE(decode(by_kind[1], nexmark::auction_schema()).equals(expected->auctions));
  EXPECT_TRUE(decode(by_kind[2], nexmark::bid_schema()).equals(expected->bids));
}

TEST_F(CliTest, BenchProcessesExactlyTheGeneratedEvents) {
  const std::string out = path("q0.jsonl");
  Outcome bench =
      sabot("bench nexmark --query q0 --events 20000 --rate 500 --seed 3 --json --output " + out);
  ASSERT_EQ(bench.code, 0) << bench.err;
  auto expected = nexmark::Generator({.events = 20000, .rate = 500, .seed = 3}).generate(0, 20000);
  ASSERT_TRUE(expected.is_ok());
  RecordBatch got = decode(read(out), nexmark::bid_schema());
  EXPECT_EQ(got.num_rows(), expected->bids.num_rows());
  // Compare as multisets of JSON rows: a parallel run may interleave sources.
  codec::JsonEncoder encoder;
  auto rows = [&](const RecordBatch& b) {
    std::multiset<std::string> s;
    std::istringstream in(encoder.encode_lines(b));
    for (std::string l; std::getline(in, l);) s.insert(l);
    return s;
  };
  auto bid_columns = [](const RecordBatch& b) {
    const std::vector<std::string> names = {"auction", "bidder", "price", "date_time", "extra"};
    return b.select(names).value();
  };
  EXPECT_EQ(rows(bid_columns(got)), rows(bid_columns(expected->bids)));

  auto summary_schema = columnar::schema({columnar::field("query", columnar::utf8()),
                                          columnar::field("events", columnar::int64()),
                                          columnar::field("rows_out", columnar::int64()),
                                          columnar::field("events_per_cpu_s", columnar::int64())});
  RecordBatch summary = decode(bench.out, summary_schema);
  ASSERT_EQ(summary.num_rows(), 1);
  EXPECT_EQ(summary.column(0).string_view(0), "q0");
  EXPECT_EQ(summary.column(1).value<int64_t>(0), 20000);
  EXPECT_EQ(summary.column(2).value<int64_t>(0), expected->bids.num_rows());
  EXPECT_GT(summary.column(3).value<int64_t>(0), 0);
}

TEST_F(CliTest, BenchAllRunsEveryQueryInTurn) {
  Outcome r = sabot("bench nexmark --query all --events 20000 --rate 200 --parallelism 2 --json");
  ASSERT_EQ(r.code, 0) << r.err;
  auto schema = columnar::schema({columnar::field("query", columnar::utf8()),
                                  columnar::field("parallelism", columnar::int64())});
  RecordBatch results = decode(r.out, schema);
  ASSERT_EQ(results.num_rows(), 8);
  const char* names[] = {"q0", "q1", "q2", "q3", "q4", "q5", "q7", "q8"};
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(results.column(0).string_view(i), names[i]);
    EXPECT_EQ(results.column(1).value<int64_t>(i), 2);
  }
  Outcome text = sabot("bench nexmark --query q2 --events 10000");
  ASSERT_EQ(text.code, 0) << text.err;
  EXPECT_NE(text.out.find("events/cpu-s"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("q2"), std::string::npos) << text.out;
}

TEST_F(CliTest, CheckpointsListAndShowDescribeADirectoryWithoutTheJobsCode) {
  const std::string dir = path("chk");
  auto storage = checkpoint::CheckpointStorage::open(dir);
  ASSERT_TRUE(storage.is_ok());
  for (int64_t id = 1; id <= 2; ++id) {
    checkpoint::CheckpointData d;
    d.job_name = "fraud";
    d.checkpoint_id = id;
    d.created_unix_ms = 1'764'806'400'000;  // 2025-12-04T00:00:00Z
    d.max_parallelism = 8;
    std::string window;
    state::SnapshotWriter w(&window, {"alerts window", "window", 3, 8});
    for (int32_t kg : {0, 1, 2, 5}) w.begin_section(kg).put<int64_t>(kg);
    w.begin_section(state::kOperatorWide).put<int64_t>(-1);
    w.finish();
    d.operators["alerts window"] = {2, {window, ""}};
    ASSERT_TRUE(storage->write(d).is_ok());
  }
  std::filesystem::remove(dir + "/chk-2/MANIFEST");  // a run killed while writing checkpoint 2

  Outcome list = sabot("checkpoints list " + dir);
  ASSERT_EQ(list.code, 0) << list.err;
  EXPECT_NE(list.out.find("1       checkpoint 2025-12-04T00:00:00Z"), std::string::npos)
      << list.out;
  EXPECT_NE(list.out.find("fraud"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("complete"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("no manifest (incomplete"), std::string::npos) << list.out;

  Outcome show = sabot("checkpoints show " + dir + "/chk-1");
  ASSERT_EQ(show.code, 0) << show.err;
  EXPECT_NE(show.out.find("checkpoint 1 of job 'fraud'"), std::string::npos) << show.out;
  EXPECT_NE(show.out.find("operator 'alerts window' (parallelism 2)"), std::string::npos)
      << show.out;
  EXPECT_NE(show.out.find("subtask 0: state 'window' v3, 4 key groups [0-2,5] + operator-wide"),
            std::string::npos)
      << show.out;
  EXPECT_NE(show.out.find("subtask 1: no state"), std::string::npos) << show.out;

  Outcome incomplete = sabot("checkpoints show " + dir + "/chk-2");
  EXPECT_EQ(incomplete.code, 1);
  EXPECT_NE(incomplete.err.find("no manifest"), std::string::npos) << incomplete.err;
  Outcome missing = sabot("checkpoints list " + path("nowhere"));
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.err.find("is not a directory"), std::string::npos) << missing.err;
}

// A value type without a generic encoding: `state read` prints its bytes, never a guess.
struct Limits {
  int32_t low = 0;
  int32_t high = 0;
};

TEST_F(CliTest, StateReadPrintsKeyedStateAsJsonLinesWithoutTheJobsCode) {
  // Keyed state written through the state API, as a keyed operator keeps it, in a checkpoint on
  // disk; the reader has only the bytes.
  state::KeyedBackendOptions o;
  o.key_types = {columnar::int64()};
  o.max_parallelism = 8;
  auto backend = state::MemoryStateBackend().create_keyed_backend(o);
  ASSERT_TRUE(backend.is_ok());
  auto& b = **backend;
  auto* count = *b.get_state(state::ValueStateDescriptor<int64_t>{.name = "count"});
  auto* spent =
      *b.get_state(state::MapStateDescriptor<std::string, int64_t>{.name = "spent by merchant"});
  auto* amounts = *b.get_state(state::ListStateDescriptor<double>{.name = "amounts"});
  auto* limits = *b.get_state(state::ValueStateDescriptor<Limits>{.name = "limits"});
  columnar::Int64Builder keys;
  for (int64_t k : {17, -4, 1000}) keys.append(k);
  std::vector<columnar::Array> cols = {keys.finish()};
  std::vector<state::KeyId> ids;
  ASSERT_TRUE(b.resolve_keys(cols, &ids).is_ok());
  b.set_current_key(ids[0]);
  count->update(3);
  spent->put("acme", 250);
  spent->put("bob's \"shop\"", 5);
  amounts->add(1.5);
  amounts->add(-0.25);
  limits->update({-1, 2});
  b.set_current_key(ids[1]);
  count->update(-9);
  b.set_current_namespace(42);
  count->update(7);
  b.set_current_namespace(state::kDefaultNamespace);
  b.set_current_key(ids[2]);
  spent->put("zed", 1);
  std::string bytes;
  ASSERT_TRUE(b.snapshot("alerts", &bytes).is_ok());
  checkpoint::CheckpointData d;
  d.job_name = "fraud";
  d.checkpoint_id = 4;
  d.max_parallelism = 8;
  d.operators["alerts"] = {1, {bytes}};
  auto storage = checkpoint::CheckpointStorage::open(path("chk"));
  ASSERT_TRUE(storage.is_ok());
  auto written = storage->write(d);
  ASSERT_TRUE(written.is_ok()) << written.status().to_string();
  const std::string chk = *written;

  using test_support::sorted_lines;
  Outcome counts = sabot("state read " + chk + " --operator alerts --state count");
  ASSERT_EQ(counts.code, 0) << counts.err;
  EXPECT_EQ(sorted_lines(counts.out),
            (std::vector<std::string>{R"({"key": -4, "namespace": 0, "value": -9})",
                                      R"({"key": -4, "namespace": 42, "value": 7})",
                                      R"({"key": 17, "namespace": 0, "value": 3})"}));
  Outcome spent_out = sabot("state read " + chk + " --operator alerts --state 'spent by merchant'");
  ASSERT_EQ(spent_out.code, 0) << spent_out.err;
  EXPECT_EQ(sorted_lines(spent_out.out),
            (std::vector<std::string>{
                R"({"key": 1000, "namespace": 0, "value": {"zed": 1}})",
                R"({"key": 17, "namespace": 0, "value": {"acme": 250, "bob's \"shop\"": 5}})"}));
  Outcome list = sabot("state read " + chk + " --operator alerts --state amounts --key 17");
  ASSERT_EQ(list.code, 0) << list.err;
  EXPECT_EQ(list.out, "{\"key\": 17, \"namespace\": 0, \"value\": [1.5, -0.25]}\n");
  Outcome one = sabot("state read " + chk + " --operator alerts --state count --key -4");
  ASSERT_EQ(one.code, 0) << one.err;
  EXPECT_EQ(sorted_lines(one.out),
            (std::vector<std::string>{R"({"key": -4, "namespace": 0, "value": -9})",
                                      R"({"key": -4, "namespace": 42, "value": 7})"}));
  Outcome none = sabot("state read " + chk + " --operator alerts --state count --key 5");
  ASSERT_EQ(none.code, 0) << none.err;
  EXPECT_EQ(none.out, "");

  // A struct: its bytes (int32 -1, int32 2), with a note saying why.
  Outcome hex = sabot("state read " + chk + " --operator alerts --state limits");
  ASSERT_EQ(hex.code, 0) << hex.err;
  EXPECT_EQ(hex.out, "{\"key\": 17, \"namespace\": 0, \"value_hex\": \"ffffffff02000000\"}\n");
  EXPECT_NE(hex.err.find("Limits has no generic decoding"), std::string::npos) << hex.err;

  // Errors name what is wrong and what there is.
  Outcome bad_uid = sabot("state read " + chk + " --operator alert --state count");
  EXPECT_EQ(bad_uid.code, 1);
  EXPECT_NE(bad_uid.err.find("no operator 'alert'; its operators: 'alerts'"), std::string::npos)
      << bad_uid.err;
  Outcome bad_state = sabot("state read " + chk + " --operator alerts --state counts");
  EXPECT_EQ(bad_state.code, 1);
  EXPECT_NE(bad_state.err.find("no state 'counts'; its states: 'count' (value), 'spent by "
                               "merchant' (map), 'amounts' (list), 'limits' (value)"),
            std::string::npos)
      << bad_state.err;
  Outcome bad_key = sabot("state read " + chk + " --operator alerts --state count --key x1");
  EXPECT_EQ(bad_key.code, 1);
  EXPECT_NE(bad_key.err.find("key column 0 is int64: 'x1' is not such a value"), std::string::npos)
      << bad_key.err;
  Outcome no_state = sabot("state read " + chk + " --operator alerts");
  EXPECT_EQ(no_state.code, 1);
  EXPECT_NE(no_state.err.find("--state NAME"), std::string::npos) << no_state.err;

  // checkpoints show describes the same state.
  Outcome show = sabot("checkpoints show " + chk);
  ASSERT_EQ(show.code, 0) << show.err;
  EXPECT_NE(show.out.find("3 keys, key type int64"), std::string::npos) << show.out;
  EXPECT_NE(show.out.find("state 'count': value of long, 3 entries over 2 keys"), std::string::npos)
      << show.out;
  EXPECT_NE(show.out.find("state 'spent by merchant': map of std::map<std::string, long>, 2 "
                          "entries over 2 keys"),
            std::string::npos)
      << show.out;
  EXPECT_NE(show.out.find("state 'limits': value of "), std::string::npos) << show.out;

  // Other state types: refused by state read, described by show.
  std::string window;
  state::SnapshotWriter w(&window, {"win", "window", 1, 8});
  w.begin_section(2).put<int64_t>(0);
  w.finish();
  d.checkpoint_id = 5;
  d.operators["win"] = {1, {window}};
  auto second = storage->write(d);
  ASSERT_TRUE(second.is_ok());
  Outcome refused = sabot("state read " + *second + " --operator win --state x");
  EXPECT_EQ(refused.code, 1);
  EXPECT_NE(refused.err.find("holds state type 'window', which 'sabot state read' cannot decode"),
            std::string::npos)
      << refused.err;
  Outcome help = sabot("--help");
  EXPECT_NE(help.out.find("state read"), std::string::npos) << help.out;
  Outcome state_help = sabot("state read --help");
  EXPECT_EQ(state_help.code, 0);
  EXPECT_NE(state_help.out.find("--operator"), std::string::npos) << state_help.out;
}

// Runs an operator `factory` makes (uid `uid`, max parallelism 8, on the memory backend or on
// `rocksdb` with incremental checkpoints) over rows (k int64, t timestamp ms) = `rows` given to
// input `input` (a two-input operator gets that schema on both) and writes its snapshot as
// checkpoint 1 into `dir`; the checkpoint's path.
std::string write_operator_checkpoint(const runtime::OperatorFactory& factory,
                                      const std::string& uid,
                                      const std::vector<std::pair<int64_t, int64_t>>& rows,
                                      const state::StateBackend* rocksdb, const std::string& dir,
                                      int input = 0) {
  const state::MemoryStateBackend memory;
  const columnar::SchemaPtr schema =
      columnar::schema({columnar::field("k", columnar::int64()),
                        columnar::field("t", columnar::timestamp(columnar::TimeUnit::kMilli))});
  std::vector<columnar::SchemaPtr> in(static_cast<size_t>(factory.num_logical_inputs()), schema);
  runtime::OperatorContext ctx;
  ctx.uid = uid;
  ctx.max_parallelism = 8;
  ctx.state_backend = rocksdb != nullptr ? rocksdb : &memory;
  ctx.incremental_checkpoints = rocksdb != nullptr;
  auto op = factory.create(in, ctx);
  EXPECT_TRUE(op.is_ok()) << op.status().to_string();
  if (!op.is_ok()) return "";
  EXPECT_TRUE((*op)->open(ctx).is_ok());
  columnar::Int64Builder keys;
  auto times = columnar::make_builder(schema->field(1).type);
  for (auto [k, t] : rows) {
    keys.append(k);
    times->append_scalar(columnar::Scalar::of_timestamp(t, columnar::TimeUnit::kMilli));
  }
  auto batch = columnar::RecordBatch::make(schema, {keys.finish(), times->finish()});
  EXPECT_TRUE(batch.is_ok());
  struct Discard final : runtime::Output {
    Status emit(const columnar::RecordBatch&) override { return Status::ok(); }
    Status emit_watermark(Timestamp) override { return Status::ok(); }
  } discard;
  EXPECT_TRUE((*op)->process_batch(*batch, input, discard).is_ok());
  checkpoint::CheckpointData d;
  d.job_name = uid + "-job";
  d.checkpoint_id = 1;
  d.max_parallelism = 8;
  std::string bytes;
  EXPECT_TRUE((*op)->snapshot_state(CheckpointId(1), &bytes).is_ok());
  d.operators[uid] = {1, {bytes}};
  d.shared_files = (*op)->take_shared_files();
  EXPECT_EQ(d.shared_files.empty(), rocksdb == nullptr);
  auto storage = checkpoint::CheckpointStorage::open(dir);
  EXPECT_TRUE(storage.is_ok());
  if (!storage.is_ok()) return "";
  auto written = storage->write(d);
  EXPECT_TRUE(written.is_ok()) << written.status().to_string();
  return written.is_ok() ? *written
                         : "";  // the RocksDB instance goes; the checkpoint holds its files
}

// Writes a checkpoint of `factory`'s operator (write_operator_checkpoint) on the memory backend,
// then on RocksDB (incremental), and hands each, with the output of `checkpoints show` on it (which
// must succeed and name an incremental RocksDB checkpoint only on RocksDB), to check(path, show).
void check_on_both_backends(
    const std::string& root, const runtime::OperatorFactory& factory, const std::string& uid,
    const std::vector<std::pair<int64_t, int64_t>>& rows, int input,
    const std::function<void(const std::string& written, const std::string& show)>& check) {
  auto rocks = state::RocksDbStateBackend::make(root + "/rocks", {});
  ASSERT_TRUE(rocks.is_ok()) << rocks.status().to_string();
  for (const bool on_rocksdb : {false, true}) {
    SCOPED_TRACE(on_rocksdb ? "rocksdb" : "memory");
    const std::string written =
        write_operator_checkpoint(factory, uid, rows, on_rocksdb ? rocks->get() : nullptr,
                                  root + (on_rocksdb ? "/ck-rocksdb" : "/ck-memory"), input);
    ASSERT_FALSE(written.empty());
    const Outcome show = test_support::run_command(
        std::string(SABOT_CLI) + " checkpoints show " + written, root + "/stderr.txt");
    ASSERT_EQ(show.code, 0) << show.err;
    EXPECT_EQ(show.out.find("incremental RocksDB checkpoint") != std::string::npos, on_rocksdb)
        << show.out;
    check(written, show.out);
  }
}

// Dedup nests its keyed state (per key the time of the row last emitted, state 'first') in its own
// snapshot: state read and checkpoints show read it from a memory job's checkpoint and from a
// RocksDB job's incremental one (its SST files in the checkpoint's shared directory).
TEST_F(CliTest, StateReadAndCheckpointsShowReadDedupStateOnBothBackends) {
  auto factory = operators::deduplicate({{"k"}, "t", 0, 0, false});
  check_on_both_backends(
      path(""), *factory, "dedup", {{17, 5}, {-4, 6}, {17, 9}}, 0,
      [&](const std::string& written, const std::string& show) {
        Outcome read = sabot("state read " + written + " --operator dedup --state first");
        ASSERT_EQ(read.code, 0) << read.err;
        EXPECT_EQ(test_support::sorted_lines(read.out),
                  (std::vector<std::string>{R"({"key": -4, "namespace": 0, "value": 6})",
                                            R"({"key": 17, "namespace": 0, "value": 5})"}));
        EXPECT_NE(show.find("'deduplicate' v2 holding "), std::string::npos) << show;
        EXPECT_NE(show.find("state 'first': value of long, 2 entries over 2 keys"),
                  std::string::npos)
            << show;
      });
}

TEST_F(CliTest, StateReadAndCheckpointsShowReadTopNStateOnBothBackends) {
  auto factory = operators::top_n({.key_columns = {"k"}, .order_column = "t", .n = 2});
  check_on_both_backends(
      path(""), *factory, "top", {{17, 5}, {-4, 6}, {17, 9}, {17, 7}}, 0,
      [&](const std::string& written, const std::string& show) {
        EXPECT_NE(show.find("'top-n' v2 holding "), std::string::npos) << show;
        EXPECT_NE(show.find("state 'candidates': value of "), std::string::npos) << show;
        EXPECT_NE(show.find(", 2 entries over 2 keys"), std::string::npos) << show;
        Outcome read =
            sabot("state read " + written + " --operator top --state candidates --key 17");
        ASSERT_EQ(read.code, 0) << read.err;
        EXPECT_EQ(read.out.rfind(R"({"key": 17, "namespace": 0, "value": )", 0), 0u) << read.out;
        EXPECT_EQ(std::count(read.out.begin(), read.out.end(), '\n'), 1) << read.out;
        // Best first: t = 9 (the second row of key 17, arrival number 2), then t = 7 (number 3).
        EXPECT_LT(read.out.find(", 2], "), read.out.find(", 3], ")) << read.out;
        EXPECT_NE(read.out.find(", 3], "), std::string::npos) << read.out;
      });
}

TEST_F(CliTest, StateReadAndCheckpointsShowReadTheStreamTableJoinsTableOnBothBackends) {
  auto factory =
      operators::stream_table_join({{{"k"}, {"k"}, "right_"}, operators::JoinKind::kLeft, ""});
  check_on_both_backends(
      path(""), *factory, "enrich", {{17, 5}, {-4, 6}, {17, 9}}, /*input=*/1,
      [&](const std::string& written, const std::string& show) {
        EXPECT_NE(show.find("'stream-table-join' v2 holding "), std::string::npos) << show;
        EXPECT_NE(show.find("state 'table': value of std::string, 2 entries over 2 keys"),
                  std::string::npos)
            << show;
        Outcome read = sabot("state read " + written + " --operator enrich --state table");
        ASSERT_EQ(read.code, 0) << read.err;
        const std::vector<std::string> lines = test_support::sorted_lines(read.out);
        ASSERT_EQ(lines.size(), 2u) << read.out;
        EXPECT_EQ(lines[0].rfind(R"({"key": -4, "namespace": 0, "value": )", 0), 0u) << read.out;
        EXPECT_EQ(lines[1].rfind(R"({"key": 17, "namespace": 0, "value": )", 0), 0u) << read.out;
        // Key 17's latest row (t = 9) replaced its first (t = 5): the value's last byte is t's
        // lowest.
        EXPECT_NE(lines[1].find(R"(\t\u0000\u0000\u0000\u0000\u0000\u0000\u0000")"),
                  std::string::npos)
            << read.out;
      });
}

TEST_F(CliTest, FraudGenerateWritesTheGeneratorsTransactions) {
  fraud::GeneratorOptions options;
  options.transactions = 3000;
  options.seed = 11;
  auto expected = fraud::generate_transactions(options);
  ASSERT_TRUE(expected.is_ok());
  const RecordBatch want = fraud::to_record_batch(*expected);

  Outcome jsonl = sabot("fraud generate --transactions 3000 --seed 11");
  ASSERT_EQ(jsonl.code, 0) << jsonl.err;
  EXPECT_TRUE(decode(jsonl.out, fraud::transaction_schema()).equals(want));

  const std::string arrow = path("tx.arrow");
  Outcome ipc =
      sabot("fraud generate --transactions 3000 --seed 11 --format arrow --output " + arrow);
  ASSERT_EQ(ipc.code, 0) << ipc.err;
  const std::string bytes = read(arrow);
  auto buffer = columnar::Buffer::copy_of(bytes.data(), static_cast<int64_t>(bytes.size()));
  auto read_back = columnar::read_ipc_stream(buffer);
  ASSERT_TRUE(read_back.is_ok()) << read_back.status().to_string();
  auto all = columnar::concat(std::span<const RecordBatch>(read_back->second));
  ASSERT_TRUE(all.is_ok());
  EXPECT_TRUE(all->equals(want));
}

TEST_F(CliTest, FraudDemoFindsExactlyTheReferenceAlerts) {
  fraud::GeneratorOptions options;
  options.transactions = 20000;
  options.seed = 5;
  options.accounts = 2000;
  auto transactions = fraud::generate_transactions(options);
  ASSERT_TRUE(transactions.is_ok());
  // The demo generates with its own defaults; give it the same input through --input.
  const std::string input = path("tx.jsonl");
  {
    std::ofstream f(input, std::ios::binary);
    f << codec::JsonEncoder().encode_lines(fraud::to_record_batch(*transactions));
  }
  const std::vector<fraud::Alert> want = fraud::reference_alerts(*transactions);
  ASSERT_FALSE(want.empty());
  const std::string alerts = path("alerts.jsonl");
  Outcome r =
      sabot("demo fraud --input " + input + " --parallelism 3 --json --alerts-out " + alerts);
  ASSERT_EQ(r.code, 0) << r.err;
  auto schema = columnar::schema({columnar::field("transactions", columnar::int64()),
                                  columnar::field("alerts", columnar::int64()),
                                  columnar::field("tx_per_cpu_s", columnar::float64())});
  RecordBatch summary = decode(r.out, schema);
  ASSERT_EQ(summary.num_rows(), 1) << r.out;
  EXPECT_EQ(summary.column(0).value<int64_t>(0), 20000);
  EXPECT_EQ(summary.column(1).value<int64_t>(0), static_cast<int64_t>(want.size()));
  auto alert_schema = columnar::schema({columnar::field("alert_id", columnar::utf8())});
  RecordBatch got = decode(read(alerts), alert_schema);
  std::multiset<std::string> got_ids, want_ids;
  for (int64_t i = 0; i < got.num_rows(); ++i) got_ids.emplace(got.column(0).string_view(i));
  for (const fraud::Alert& a : want) want_ids.insert(a.alert_id);
  EXPECT_EQ(got_ids, want_ids);

  Outcome text = sabot("demo fraud --transactions 20000");
  ASSERT_EQ(text.code, 0) << text.err;
  EXPECT_NE(text.out.find("FRAUD: "), std::string::npos);
  EXPECT_NE(text.out.find("Account …"), std::string::npos);
}

// ---- Issue 14: the command line never loses a user's data ---------------------------------
// Each test is one row of the issue's table, run through the built binary.

class CliSafetyTest : public CliTest {
 protected:
  // A JSON-lines file of `n` generated transactions.
  std::string transactions_file(const std::string& name, int n) const {
    const std::string p = path(name);
    Outcome r = sabot("fraud generate --transactions " + std::to_string(n) + " --output " + p);
    EXPECT_EQ(r.code, 0) << r.err;
    return p;
  }
  // Files of dir_ other than stderr.txt (to see that no temporary file is left behind).
  std::set<std::string> files() const {
    std::set<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_)) {
      if (e.path().filename() != "stderr.txt") out.insert(e.path().filename().string());
    }
    return out;
  }
};

// Row 1: `--input same.jsonl --alerts-out same.jsonl` truncated the input.
TEST_F(CliSafetyTest, AnOutputThatIsTheInputIsRefusedEvenThroughLinks) {
  const std::string input = transactions_file("same.jsonl", 3000);
  const std::string before = read(input);
  ASSERT_FALSE(before.empty());
  fs::create_symlink(input, path("soft.jsonl"));
  fs::create_hard_link(input, path("hard.jsonl"));
  for (const std::string& out : {input, path("soft.jsonl"), path("hard.jsonl")}) {
    Outcome r = sabot("demo fraud --quiet --input " + input + " --alerts-out " + out);
    EXPECT_EQ(r.code, 1) << out;
    EXPECT_NE(r.err.find("refusing to write '" + out + "': it is the input file"),
              std::string::npos)
        << r.err;
    EXPECT_EQ(read(input), before) << out;
  }
  Outcome via_link = sabot("demo fraud --quiet --input " + path("soft.jsonl") + " --alerts-out " +
                           path("hard.jsonl"));
  EXPECT_EQ(via_link.code, 1);
  EXPECT_NE(via_link.err.find("the same file through a link"), std::string::npos) << via_link.err;
  EXPECT_EQ(read(input), before);
  EXPECT_EQ(files(), (std::set<std::string>{"same.jsonl", "soft.jsonl", "hard.jsonl"}));
}

// Outputs are written to a temporary file and renamed: a failed run leaves the old file whole.
TEST_F(CliSafetyTest, AFailedRunLeavesAnExistingOutputAsItWas) {
  const std::string bad = path("bad.jsonl");
  std::ofstream(bad) << "{\"transaction_id\": oops}\n";
  const std::string alerts = path("alerts.jsonl");
  std::ofstream(alerts) << "precious\n";
  Outcome r = sabot("demo fraud --quiet --input " + bad + " --alerts-out " + alerts);
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_EQ(read(alerts), "precious\n");
  EXPECT_EQ(files(), (std::set<std::string>{"bad.jsonl", "alerts.jsonl"}));
  // A successful run replaces it, keeping its mode.
  fs::permissions(alerts, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
  const std::string input = transactions_file("tx.jsonl", 3000);
  Outcome ok = sabot("demo fraud --quiet --input " + input + " --alerts-out " + alerts);
  ASSERT_EQ(ok.code, 0) << ok.err;
  EXPECT_NE(read(alerts).find("\"alert_id\""), std::string::npos);
  EXPECT_EQ(fs::status(alerts).permissions(),
            fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
  EXPECT_EQ(files(), (std::set<std::string>{"bad.jsonl", "tx.jsonl", "alerts.jsonl"}));
}

// Row 2: `--input some_directory` ran on nothing and exited 0.
TEST_F(CliSafetyTest, DirectoriesAndDevicesAreRefusedWithAMessage) {
  fs::create_directories(path("some_directory"));
  Outcome dir = sabot("demo fraud --quiet --input " + path("some_directory"));
  EXPECT_EQ(dir.code, 1);
  EXPECT_NE(dir.err.find("'" + path("some_directory") + "': it is a directory"), std::string::npos)
      << dir.err;
  EXPECT_EQ(dir.out.find("transactions"), std::string::npos) << dir.out;
  Outcome dev = sabot("demo fraud --quiet --input /dev/zero");
  EXPECT_EQ(dev.code, 1);
  EXPECT_NE(dev.err.find("it is a device"), std::string::npos) << dev.err;
  const std::string input = transactions_file("tx.jsonl", 100);
  Outcome out_dir =
      sabot("demo fraud --quiet --input " + input + " --alerts-out " + path("some_directory"));
  EXPECT_EQ(out_dir.code, 1);
  EXPECT_NE(out_dir.err.find("it is a directory"), std::string::npos) << out_dir.err;
  Outcome gen_dir = sabot("fraud generate --output " + path("some_directory"));
  EXPECT_EQ(gen_dir.code, 1);
  EXPECT_NE(gen_dir.err.find("it is a directory"), std::string::npos) << gen_dir.err;
  Outcome bench_dir =
      sabot("bench nexmark --events 1000 --query q0 --output " + path("some_directory"));
  EXPECT_EQ(bench_dir.code, 1);
  EXPECT_NE(bench_dir.err.find("it is a directory"), std::string::npos) << bench_dir.err;
}

// Row 3: output to a full disk was lost with exit 0.
TEST_F(CliSafetyTest, LostStandardOutputFailsTheRunNamingIt) {
  if (!fs::exists("/dev/full")) GTEST_SKIP() << "no /dev/full on this machine";
  const std::string input = transactions_file("tx.jsonl", 2000);
  for (const std::string& args :
       {"demo fraud --input " + input, "demo fraud --json --input " + input,
        std::string("demo fraud --quiet --transactions 1000"),
        std::string("bench nexmark --events 1000"),
        std::string("bench nexmark --events 1000 --json --query q1"), std::string("--help"),
        std::string("demo fraud --help"), std::string("--version"),
        std::string("fraud generate --transactions 100000"),
        std::string("nexmark generate --events 100000")}) {
    Outcome r = sabot(args + " >/dev/full");
    EXPECT_EQ(r.code, 1) << args;
    EXPECT_NE(r.err.find("standard output failed"), std::string::npos) << args << ": " << r.err;
  }
  Outcome file = sabot("fraud generate --transactions 1000 --output /dev/full");
  EXPECT_EQ(file.code, 1);
  EXPECT_NE(file.err.find("writing '/dev/full' failed: No space left on device"), std::string::npos)
      << file.err;
  Outcome alerts = sabot("demo fraud --quiet --input " + input + " --alerts-out /dev/full");
  EXPECT_EQ(alerts.code, 1);
  EXPECT_NE(alerts.err.find("/dev/full"), std::string::npos) << alerts.err;
}

// Row 9: `--parallelism 129` passed the parser (help said [1, 256]) and bench printed its header.
TEST_F(CliSafetyTest, RangesInHelpAreTheEnginesAndAreCheckedBeforeAnythingRuns) {
  for (const std::string command : {"demo fraud", "bench nexmark"}) {
    Outcome help = sabot(command + " --help");
    EXPECT_EQ(help.code, 0);
    EXPECT_NE(help.out.find("[1, 128]"), std::string::npos) << help.out;
    EXPECT_EQ(help.out.find("256"), std::string::npos) << help.out;
    Outcome r = sabot(command + " --parallelism 129 --quiet");
    if (command == "bench nexmark") r = sabot(command + " --parallelism 129 --events 1000");
    EXPECT_EQ(r.code, 2) << command;
    EXPECT_NE(r.err.find("--parallelism: value 129 is out of range [1, 128]"), std::string::npos)
        << r.err;
    EXPECT_EQ(r.out, "") << command;  // no table header, no summary
    Outcome max = sabot(command == "bench nexmark"
                            ? command + " --parallelism 128 --events 1000 --query q0"
                            : command + " --parallelism 128 --transactions 1000 --quiet");
    EXPECT_EQ(max.code, 0) << max.err;
  }
}

// Row 10: generator flags with --input were ignored; `--input -` was a file named "-".
TEST_F(CliSafetyTest, GeneratorFlagsWithInputAreRefusedAndDashIsStandardInput) {
  const std::string input = transactions_file("tx.jsonl", 3000);
  Outcome r =
      sabot("demo fraud --quiet --input " + input + " --transactions 5 --seed 7 --fraud-rate 0.5");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--transactions, --seed, --fraud-rate set the generator, which --input "
                       "replaces"),
            std::string::npos)
      << r.err;
  Outcome one = sabot("demo fraud --quiet --input " + input + " --accounts 3");
  EXPECT_EQ(one.code, 2);
  EXPECT_NE(one.err.find("--accounts sets the generator"), std::string::npos) << one.err;
  Outcome from_file = sabot("demo fraud --json --input " + input);
  Outcome from_stdin = sabot("demo fraud --json --input - < " + input);
  ASSERT_EQ(from_stdin.code, 0) << from_stdin.err;
  EXPECT_NE(from_stdin.out.find("\"transactions\":3000,"), std::string::npos) << from_stdin.out;
  auto alerts_of = [](const std::string& json) {
    return json.substr(json.find("\"alerts\""), json.find(",\"wall_s\"") - json.find("\"alerts\""));
  };
  EXPECT_EQ(alerts_of(from_stdin.out), alerts_of(from_file.out));
  Outcome cat = sabot("demo fraud --json --input /dev/stdin < " + input);
  EXPECT_EQ(cat.code, 0) << cat.err;
}

// Row 11: the example programs ran with 0 bids on `--help`, `abc` or `-5`.
TEST_F(CliSafetyTest, ExampleProgramsParseArgumentsLikeSabot) {
  // SABOT_CLI is build/<preset>/tools/sabot/sabot; the examples are in build/<preset>/examples.
  const std::string examples =
      fs::path(SABOT_CLI).parent_path().parent_path().parent_path().string() + "/examples";
  const std::string hot = examples + "/hot_items";
  const std::string fraud = examples + "/fraud/fraud_detection";
  const std::string enrichment = examples + "/enrichment/trade_enrichment";
  for (const std::string& program : {hot, fraud, enrichment}) {
    if (!fs::exists(program)) {
      ADD_FAILURE() << program << " is not built";
      continue;
    }
    Outcome help = run(program + " --help");
    EXPECT_EQ(help.code, 0) << program;
    EXPECT_NE(help.out.find("Usage: "), std::string::npos) << help.out;
    for (const char* bad : {"abc", "-5", "--frobnicate", "1 2 3"}) {
      Outcome r = run(program + " " + bad);
      EXPECT_EQ(r.code, 2) << program << " " << bad << ": " << r.out;
      EXPECT_NE(r.err.find(fs::path(program).filename().string() + ": "), std::string::npos)
          << r.err;
      EXPECT_EQ(r.out, "") << program << " " << bad;
    }
  }
  Outcome few = run(hot + " 20000");
  EXPECT_EQ(few.code, 0) << few.err;
  Outcome flag = run(hot + " --bids 20000");
  EXPECT_EQ(flag.code, 0) << flag.err;
  EXPECT_EQ(few.out.substr(0, few.out.find('\n')), flag.out.substr(0, flag.out.find('\n')));
  Outcome alerts = run(fraud + " 2000 1");
  EXPECT_EQ(alerts.code, 0) << alerts.err;
}

// Row 12 (second half): `sabot --version` was an unknown command.
TEST_F(CliSafetyTest, VersionIsACommand) {
  Outcome r = sabot("--version");
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out.rfind("sabot ", 0), 0u) << r.out;
  EXPECT_NE(sabot("--help").out.find("--version"), std::string::npos);
}

// Writes `lines` (already JSON text) as a file and returns its path.
std::string write_lines(const fs::path& file, const std::vector<std::string>& lines,
                        const std::string& prefix = "") {
  std::ofstream out(file, std::ios::binary);
  out << prefix;
  for (const std::string& l : lines) out << l << "\n";
  return file.string();
}

// One generated transaction line with `field` replaced by `value` (raw JSON text).
std::string with_field(std::string line, const std::string& field, const std::string& value) {
  const size_t key = line.find("\"" + field + "\":");
  const size_t start = line.find(':', key) + 1;
  size_t end = start;
  int depth = 0;
  bool in_string = false;
  for (; end < line.size(); ++end) {
    const char c = line[end];
    if (in_string) {
      if (c == '\\') ++end;
      if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    if ((c == ',' || c == '}') && depth == 0) break;
  }
  return line.substr(0, start) + value + line.substr(end);
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

// Row 5: INT64_MIN and INT64_MAX timestamps were accepted and made absurd alerts.
TEST_F(CliSafetyTest, TimestampsOutsideASaneWindowAreBadRecords) {
  std::vector<std::string> lines = split_lines(read(transactions_file("tx.jsonl", 1000)));
  ASSERT_EQ(lines.size(), 1000u);
  lines[10] = with_field(lines[10], "timestamp_ms", "-9223372036854775808");
  lines[20] = with_field(lines[20], "timestamp_ms", "9223372036854775807");
  lines[30] = with_field(lines[30], "transaction_amount", "-5");
  const std::string input = write_lines(path("bad_time.jsonl"), lines);
  Outcome r = sabot("demo fraud --quiet --input " + input);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find(input +
                       ":11: bad transaction: field 'timestamp_ms': -9223372036854775808 is "
                       "outside [1970-01-01T00:00:00.000Z, 2100-01-01T00:00:00.000Z) (and 2 more"),
            std::string::npos)
      << r.err;
  Outcome skip = sabot("demo fraud --input " + input + " --on-bad-record skip");
  EXPECT_EQ(skip.code, 0) << skip.err;
  EXPECT_NE(
      skip.err.find(":21: bad transaction skipped: field 'timestamp_ms': 9223372036854775807"),
      std::string::npos)
      << skip.err;
  EXPECT_NE(skip.err.find(":31: bad transaction skipped: field 'transaction_amount': -5"),
            std::string::npos)
      << skip.err;
  EXPECT_EQ(skip.out.find(" in -"), std::string::npos) << skip.out.substr(0, 300);
  EXPECT_EQ(skip.out.find("-1537"), std::string::npos);
}

// Row 6: one malformed line among 100,000 failed the whole run; no skip or dead-letter choice.
TEST_F(CliSafetyTest, OnBadRecordSkipsOrDeadLettersEveryBadLine) {
  std::vector<std::string> lines = split_lines(read(transactions_file("tx.jsonl", 100000)));
  ASSERT_EQ(lines.size(), 100000u);
  const std::string good_count = std::to_string(100000 - 13);
  for (int i = 0; i < 13; ++i) lines[static_cast<size_t>(5000 + i * 7000)] = "{\"oops\": ";
  const std::string input = write_lines(path("bad.jsonl"), lines);

  Outcome failed = sabot("demo fraud --quiet --input " + input);
  EXPECT_EQ(failed.code, 1);
  EXPECT_NE(failed.err.find(input + ":5001: bad transaction: malformed JSON at byte 9: "),
            std::string::npos)
      << failed.err;
  EXPECT_NE(failed.err.find("(and 12 more bad lines)"), std::string::npos) << failed.err;

  Outcome skip = sabot("demo fraud --json --input " + input + " --on-bad-record skip");
  ASSERT_EQ(skip.code, 0) << skip.err;
  EXPECT_NE(skip.out.find("\"transactions\":" + good_count + ","), std::string::npos) << skip.out;
  EXPECT_NE(skip.out.find("\"bad_records\":13"), std::string::npos) << skip.out;
  // The first 10 named, then the total.
  EXPECT_EQ(count_lines(skip.err), 11u) << skip.err;
  EXPECT_NE(skip.err.find(input + ":68001: bad transaction skipped"), std::string::npos);
  EXPECT_EQ(skip.err.find(input + ":75001:"), std::string::npos);
  EXPECT_NE(skip.err.find(input + ": 13 bad lines skipped (the first 10 named above)"),
            std::string::npos)
      << skip.err;
  Outcome text = sabot("demo fraud --quiet --input " + input + " --on-bad-record skip");
  EXPECT_NE(text.out.find(", 13 bad input lines left out)"), std::string::npos) << text.out;

  const std::string letters = path("dead.jsonl");
  Outcome dead = sabot("demo fraud --json --input " + input +
                       " --on-bad-record dead-letter --dead-letter-out " + letters);
  ASSERT_EQ(dead.code, 0) << dead.err;
  EXPECT_NE(dead.out.find("\"transactions\":" + good_count + ","), std::string::npos);
  auto schema = columnar::schema(
      {columnar::field("file", columnar::utf8()), columnar::field("line", columnar::int64()),
       columnar::field("error", columnar::utf8()), columnar::field("record", columnar::utf8())});
  RecordBatch got = decode(read(letters), schema);
  ASSERT_EQ(got.num_rows(), 13);
  for (int64_t i = 0; i < 13; ++i) {
    EXPECT_EQ(got.column(1).value<int64_t>(i), 5001 + i * 7000);
    EXPECT_EQ(got.column(3).string_view(i), "{\"oops\": ");
    EXPECT_NE(got.column(2).string_view(i).find("malformed JSON at byte 9"), std::string::npos);
  }
  // Usage errors: each half of the dead-letter pair needs the other; policies need --input.
  EXPECT_EQ(sabot("demo fraud --input " + input + " --on-bad-record dead-letter").code, 2);
  EXPECT_EQ(sabot("demo fraud --input " + input + " --dead-letter-out " + letters).code, 2);
  EXPECT_EQ(sabot("demo fraud --on-bad-record skip --transactions 10").code, 2);
  EXPECT_EQ(sabot("demo fraud --input " + input +
                  " --on-bad-record dead-letter --dead-letter-out " + input)
                .code,
            1);
  EXPECT_EQ(count_lines(read(input)), 100000u);
}

// Row 7: a BOM was "unexpected character"; invalid UTF-8 and 1e999 named no byte or field.
TEST_F(CliSafetyTest, ABomIsAcceptedAndDecodeErrorsNameByteAndField) {
  std::vector<std::string> lines = split_lines(read(transactions_file("tx.jsonl", 2000)));
  const std::string with_bom = write_lines(path("bom.jsonl"), lines, "\xEF\xBB\xBF");
  Outcome bom = sabot("demo fraud --json --input " + with_bom);
  ASSERT_EQ(bom.code, 0) << bom.err;
  EXPECT_NE(bom.out.find("\"transactions\":2000,"), std::string::npos) << bom.out;

  const std::string account = "\"account_number\":\"";
  std::string utf8 = lines[3];
  utf8.insert(utf8.find(account) + account.size(), "\xC3\x28");  // a lead byte, no continuation
  const size_t at = utf8.find("\xC3\x28");
  std::vector<std::string> bad_utf8 = lines;
  bad_utf8[3] = utf8;
  Outcome u = sabot("demo fraud --quiet --input " + write_lines(path("utf8.jsonl"), bad_utf8));
  EXPECT_EQ(u.code, 1);
  EXPECT_NE(u.err.find(":4: bad transaction: invalid UTF-8 at byte " + std::to_string(at) +
                       " in field 'account_number' (0xC3)"),
            std::string::npos)
      << u.err;

  std::vector<std::string> huge = lines;
  huge[5] = with_field(lines[5], "transaction_amount", "1e999");
  const size_t num_at = huge[5].find("1e999");
  Outcome h = sabot("demo fraud --quiet --input " + write_lines(path("huge.jsonl"), huge));
  EXPECT_EQ(h.code, 1);
  EXPECT_NE(h.err.find(":6: bad transaction: number 1e999 at byte " + std::to_string(num_at) +
                       " in field 'transaction_amount' is out of range"),
            std::string::npos)
      << h.err;
  // A BOM anywhere but at the start of the file is named.
  std::vector<std::string> inner = lines;
  inner[7] = "\xEF\xBB\xBF" + inner[7];
  Outcome i = sabot("demo fraud --quiet --input " + write_lines(path("inner.jsonl"), inner));
  EXPECT_EQ(i.code, 1);
  EXPECT_NE(i.err.find(":8: bad transaction: malformed JSON at byte 0: a UTF-8 byte-order mark"),
            std::string::npos)
      << i.err;
}

// Row 8: the last-6-bytes cut of "☃☃ab" split a character on the console.
TEST_F(CliSafetyTest, AccountsAreCutAtCharacterBoundaries) {
  // Four transactions of one account within a minute: a VELOCITY alert for it.
  std::vector<std::string> lines;
  for (const std::string account : {"☃☃ab", "☃☃☃☃☃☃☃ab"}) {
    for (int i = 0; i < 4; ++i) {
      lines.push_back("{\"transaction_id\":" + std::to_string(lines.size()) +
                      ",\"account_number\":\"" + account +
                      "\",\"user_id\":\"1\",\"transaction_date\":\"2024-01-01T00:00:00.000Z\","
                      "\"transaction_amount\":10,\"currency\":\"CLP\",\"transaction_type\":"
                      "\"PURCHASE\",\"branch_city\":\"Santiago\",\"payment_method\":\"CARD\","
                      "\"country\":\"Chile\",\"timestamp_ms\":" +
                      std::to_string(1704067200000 + i * 1000) + "}");
    }
  }
  Outcome r = sabot("demo fraud --input " + write_lines(path("snow.jsonl"), lines));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("Account …☃☃ab - "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Account …☃☃☃☃ab - "), std::string::npos) << r.out;
  // Every byte of the output is valid UTF-8.
  auto codec = codec::JsonDecoder::make(columnar::schema({columnar::field("s", columnar::utf8())}));
  std::string as_json = "{\"s\":\"";
  for (char c : r.out) {
    if (c == '\n') {
      as_json += "\\n";
    } else if (c == '"' || c == '\\') {
      as_json += '\\';
      as_json += c;
    } else {
      as_json += c;
    }
  }
  as_json += "\"}";
  auto decoded = codec->decode_lines(as_json);
  ASSERT_TRUE(decoded.is_ok());
  EXPECT_TRUE(decoded->errors.empty()) << decoded->errors.front().message;
}

// Row 13: progress scrolled away among alert lines on a terminal; --quiet showed none. With
// stderr on a pseudo-terminal, progress is one status line redrawn in place ("\r" + clear-line),
// drawn at once (not after a second), and cleared before the summary.
TEST_F(CliSafetyTest, OnATerminalProgressIsOneStatusLineEvenWhenQuiet) {
  int master = -1;
  int slave = -1;
  ASSERT_EQ(openpty(&master, &slave, nullptr, nullptr, nullptr), 0);
  const std::string out_path = path("out.txt");
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(master);
    const int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(out, STDOUT_FILENO);
    ::dup2(slave, STDERR_FILENO);
    const int null = ::open("/dev/null", O_RDONLY);
    ::dup2(null, STDIN_FILENO);
    ::execl(SABOT_CLI, SABOT_CLI, "demo", "fraud", "--quiet", "--transactions", "20000",
            static_cast<char*>(nullptr));
    _exit(127);
  }
  ::close(slave);
  std::string tty;
  char buf[4096];
  while (true) {
    const ssize_t n = ::read(master, buf, sizeof buf);
    if (n <= 0) break;  // EIO once the child has exited and the slave is closed
    tty.append(buf, static_cast<size_t>(n));
  }
  ::close(master);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << tty;
  EXPECT_EQ(tty.rfind("\r\x1b[Kprogress: 0 s, ", 0), 0u) << tty;  // drawn at once
  EXPECT_EQ(tty.find('\n'), std::string::npos) << tty;            // never a new line
  EXPECT_EQ(tty.size() >= 4 ? tty.substr(tty.size() - 4) : tty, "\r\x1b[K") << tty;  // cleared
  const std::string out = read(out_path);
  EXPECT_EQ(out.rfind("Fraud detection summary", 0), 0u) << out;
  EXPECT_EQ(out.find("progress"), std::string::npos);
  // Not a terminal: no progress at all with --quiet, as before.
  Outcome piped = sabot("demo fraud --quiet --transactions 20000");
  EXPECT_EQ(piped.err, "");
}

// Row 12 (first half): docs/fraud.md "Running it" used txns.jsonl before the command that makes it.
TEST_F(CliSafetyTest, DocsRunningItCreatesEachFileBeforeUsingIt) {
  const fs::path doc = fs::path(SABOT_SOURCE_DIR) / "docs" / "fraud.md";
  const std::string text = read(doc.string());
  ASSERT_FALSE(text.empty()) << doc;
  const size_t start = text.find("## Running it");
  ASSERT_NE(start, std::string::npos);
  const size_t block = text.find("```", start);
  const size_t end = text.find("```", block + 3);
  std::set<std::string> made;
  std::istringstream lines(text.substr(block + 3, end - block - 3));
  int commands = 0;
  for (std::string line; std::getline(lines, line);) {
    line = line.substr(0, line.find('#'));
    std::istringstream words(line);
    std::vector<std::string> w;
    for (std::string x; words >> x;) w.push_back(x);
    for (size_t i = 0; i + 1 < w.size(); ++i) {
      if (w[i] == "--input" && w[i + 1] != "-") {
        EXPECT_TRUE(made.count(w[i + 1])) << w[i + 1] << " is read before it is written: " << line;
      }
    }
    for (size_t i = 0; i + 1 < w.size(); ++i) {
      if (w[i] == ">" || w[i] == "--output" || w[i] == "--alerts-out") made.insert(w[i + 1]);
    }
    commands += w.empty() ? 0 : 1;
  }
  EXPECT_GE(commands, 4);
}

// Row 4: 20 M transactions took 7.1 GB (the whole input was produced before the job started).
// The producer now feeds a bounded topic while the job runs, so the topics hold a fixed budget;
// what still grows is the detector's keyed state, bounded by the accounts (100 K by default, each
// keeping at most 200 recent transactions): about 80 MB at 1 M transactions, 200 MB at 4 M, 580 MB
// at 20 M where every account's history is full, flat beyond. Unbounded, the topic alone took 355
// bytes per transaction: over 1 GB at 3 M. The bound: 500 MB at 3 M transactions, which keeps the
// test to seconds on 2 cores while an unbounded demo would exceed it twice over.
TEST_F(CliSafetyTest, DemoMemoryIsBoundedWhateverTheCount) {
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    const int null = ::open("/dev/null", O_RDWR);
    ::dup2(null, STDIN_FILENO);
    ::dup2(null, STDOUT_FILENO);
    ::dup2(null, STDERR_FILENO);
    ::execl(SABOT_CLI, SABOT_CLI, "demo", "fraud", "--quiet", "--transactions", "3M",
            static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  rusage usage{};
  ASSERT_EQ(wait4(child, &status, 0, &usage), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  const long peak_mb = usage.ru_maxrss / 1024;  // ru_maxrss is in KiB on Linux
  std::cout << "peak RSS of demo fraud --transactions 3M: " << peak_mb << " MB\n";
  EXPECT_LT(peak_mb, 500);
}

// `sabot enrichment generate` writes the three files; `sabot demo enrichment` reads them (or
// generates the same data) and writes every trade once, enriched, and the VWAP rows.
TEST_F(CliTest, EnrichmentDemoEnrichesEveryGeneratedTradeOnce) {
  using namespace columnar;
  const std::string in = path("market");
  Outcome usage = sabot("enrichment generate --trades 10");
  EXPECT_EQ(usage.code, 2);
  EXPECT_NE(usage.err.find("--output-dir"), std::string::npos) << usage.err;
  Outcome gen =
      sabot("enrichment generate --trades 2000 --securities 150 --seed 3 --output-dir " + in);
  ASSERT_EQ(gen.code, 0) << gen.err;
  const std::string trades_text = read(in + "/trades.jsonl");
  EXPECT_EQ(count_lines(trades_text), 2000u);
  EXPECT_EQ(count_lines(read(in + "/quotes.jsonl")), 20000u);
  EXPECT_GE(count_lines(read(in + "/securities.jsonl")), 150u);

  const std::string out = path("out");
  Outcome run =
      sabot("demo enrichment --json --parallelism 2 --input-dir " + in + " --output-dir " + out);
  ASSERT_EQ(run.code, 0) << run.err;
  EXPECT_NE(run.out.find("\"trades\":2000,\"quotes\":20000,"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("\"enriched\":2000,"), std::string::npos) << run.out;

  // Every trade once, with its own fields; VWAP volumes add up to the traded quantity.
  const RecordBatch trades =
      decode(trades_text, schema({field("trade_id", int64()), field("quantity", int64())}));
  const RecordBatch enriched = decode(
      read(out + "/enriched.jsonl"),
      schema({field("trade_id", int64()), field("quantity", int64()), field("sector", utf8())}));
  ASSERT_EQ(enriched.num_rows(), trades.num_rows());
  std::map<int64_t, int64_t> want, got;
  int64_t total = 0;
  for (int64_t i = 0; i < trades.num_rows(); ++i) {
    want[trades.column(0).value<int64_t>(i)] = trades.column(1).value<int64_t>(i);
    total += trades.column(1).value<int64_t>(i);
  }
  for (int64_t i = 0; i < enriched.num_rows(); ++i) {
    got[enriched.column(0).value<int64_t>(i)] = enriched.column(1).value<int64_t>(i);
  }
  EXPECT_EQ(got, want);
  const RecordBatch vwap = decode(read(out + "/vwap.jsonl"),
                                  schema({field("volume", int64()), field("vwap", float64())}));
  int64_t volume = 0;
  for (int64_t i = 0; i < vwap.num_rows(); ++i) volume += vwap.column(0).value<int64_t>(i);
  EXPECT_EQ(volume, total);
  EXPECT_NE(run.out.find("\"windows\":" + std::to_string(vwap.num_rows()) + ","), std::string::npos)
      << run.out;

  // The generator path gives the same data as its files (same counts); the console shows one
  // line per VWAP row before the summary.
  auto counts = [](const std::string& json) {
    const size_t from = json.find("\"with_quote\":");
    return json.substr(from, json.find("\"wall_s\"") - from);
  };
  Outcome direct =
      sabot("demo enrichment --json --trades 2000 --securities 150 --seed 3 --parallelism 3");
  ASSERT_EQ(direct.code, 0) << direct.err;
  EXPECT_EQ(counts(direct.out), counts(run.out));
  Outcome console = sabot("demo enrichment --trades 2000 --securities 150 --seed 3");
  ASSERT_EQ(console.code, 0) << console.err;
  const std::string lines = console.out.substr(0, console.out.find("Trade enrichment summary"));
  EXPECT_EQ(count_lines(lines), static_cast<size_t>(vwap.num_rows())) << console.out;
  EXPECT_EQ(lines.rfind("VWAP [", 0), 0u) << console.out;
}

}  // namespace
}  // namespace sabot
