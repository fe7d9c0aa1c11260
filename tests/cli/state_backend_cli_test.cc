// `--state-backend memory|rocksdb` and `--state-dir` of `sabot demo fraud` and `sabot bench
// nexmark`: refused without a state dir, and the same results on RocksDB as in memory (the fraud
// detector and the q4/q5/q7 process functions keep their keyed state in the backend).

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "support/text_files.h"

namespace sabot {
namespace {

namespace fs = std::filesystem;
using test_support::Outcome;

class StateBackendCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("sabot_state_backend_cli_test_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  Outcome sabot(const std::string& args) const {
    return test_support::run_command(std::string(SABOT_CLI) + " " + args, path("stderr.txt"));
  }
  fs::path dir_;
};

// The --json summary without its timing fields (everything from "wall_s" on is measured).
std::string results_of(const std::string& json) { return json.substr(0, json.find("\"wall_s\"")); }

TEST_F(StateBackendCliTest, RocksDbWithoutStateDirIsAUsageErrorNamingTheFlag) {
  for (const char* cmd : {"demo fraud --transactions 10", "bench nexmark --query q7"}) {
    const Outcome r = sabot(std::string(cmd) + " --state-backend rocksdb");
    EXPECT_EQ(r.code, 2) << cmd;
    EXPECT_NE(r.err.find("--state-dir"), std::string::npos) << r.err;
  }
  const Outcome r = sabot("demo fraud --transactions 10 --state-dir " + path("s"));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--state-backend rocksdb"), std::string::npos) << r.err;
  const Outcome small = sabot("demo fraud --transactions 10 --state-backend rocksdb --state-dir " +
                              path("s") + " --rocksdb-memory-mb 3");
  EXPECT_EQ(small.code, 2);
  EXPECT_NE(small.err.find("--rocksdb-memory-mb: 3 MiB is below the smallest budget, 4"),
            std::string::npos)
      << small.err;
}

TEST_F(StateBackendCliTest, FraudOnRocksDbRaisesTheSameAlertsAsInMemory) {
  const std::string args = "demo fraud --transactions 50000 --parallelism 2 --json";
  const Outcome memory = sabot(args);
  ASSERT_EQ(memory.code, 0) << memory.err;
  EXPECT_NE(results_of(memory.out).find("\"alerts\":"), std::string::npos) << memory.out;
  // Small caches and buffers, then the smallest memory budget.
  for (const char* tuning :
       {" --rocksdb-block-cache-mb 1 --rocksdb-write-buffer-mb 1", " --rocksdb-memory-mb 4"}) {
    const Outcome rocks =
        sabot(args + " --state-backend rocksdb --state-dir " + path("state") + tuning);
    ASSERT_EQ(rocks.code, 0) << tuning << ": " << rocks.err;
    EXPECT_EQ(results_of(rocks.out), results_of(memory.out)) << tuning;
    // The instances are scratch space: gone once the job ended.
    EXPECT_TRUE(fs::is_empty(path("state")));
  }
}

// A RocksDB job's checkpoints are incremental (their SST files in DIR/shared) or, with
// --full-checkpoints, hold the same keyed-state envelope as a memory job's: the inspection
// commands read both, with the same values.
TEST_F(StateBackendCliTest, CheckpointsShowAndStateReadWorkOnRocksDbCheckpoints) {
  std::string values[2];
  for (const bool full : {false, true}) {
    const std::string ck = path(full ? "ck-full" : "ck");
    const Outcome run = sabot(
        "demo fraud --transactions 20000 --quiet --json --state-backend rocksdb --state-dir " +
        path("state") + " --checkpoint-dir " + ck + " --alerts-out " + path("alerts.jsonl") +
        (full ? " --full-checkpoints" : ""));
    ASSERT_EQ(run.code, 0) << run.err;
    const Outcome show = sabot("checkpoints show " + ck + "/chk-1");
    ASSERT_EQ(show.code, 0) << show.err;
    EXPECT_NE(show.out.find("state 'account': value of"), std::string::npos) << show.out;
    EXPECT_EQ(show.out.find("incremental RocksDB checkpoint") != std::string::npos, !full)
        << show.out;
    EXPECT_EQ(show.out.find("shared files (incremental RocksDB checkpoints") != std::string::npos,
              !full)
        << show.out;
    EXPECT_EQ(fs::exists(ck + "/shared") && !fs::is_empty(ck + "/shared"), !full);
    const Outcome read =
        sabot("state read " + ck + "/chk-1 --operator fraud-detector --state account");
    ASSERT_EQ(read.code, 0) << read.err;
    EXPECT_GT(test_support::sorted_lines(read.out).size(), 1000u);
    EXPECT_NE(read.out.find("{\"key\": \""), std::string::npos);
    values[full ? 1 : 0] = read.out;
  }
  EXPECT_EQ(test_support::sorted_lines(values[0]), test_support::sorted_lines(values[1]));
  // --full-checkpoints is a RocksDB option.
  const Outcome refused = sabot("demo fraud --transactions 10 --full-checkpoints");
  EXPECT_EQ(refused.code, 2);
  EXPECT_NE(refused.err.find("--full-checkpoints needs --state-backend rocksdb"), std::string::npos)
      << refused.err;
}

TEST_F(StateBackendCliTest, NexmarkProcessQueriesOnRocksDbGiveTheSameRowsAsInMemory) {
  // q4 is left out: its running averages depend on how its two inputs interleave, also in memory.
  // q8 is a window join: on RocksDB its rows wait in the backend (join_keyed.cc).
  for (const char* q : {"q5", "q7", "q8"}) {
    const std::string args =
        std::string("bench nexmark --events 20000 --json --query ") + q + " --output ";
    const Outcome memory = sabot(args + path(std::string(q) + "-memory.jsonl"));
    ASSERT_EQ(memory.code, 0) << memory.err;
    const Outcome rocks = sabot(args + path(std::string(q) + "-rocksdb.jsonl") +
                                " --state-backend rocksdb --state-dir " + path("state"));
    ASSERT_EQ(rocks.code, 0) << rocks.err;
    const std::string expected = test_support::read_file(path(std::string(q) + "-memory.jsonl"));
    EXPECT_FALSE(expected.empty()) << q;
    EXPECT_EQ(test_support::sorted_lines(
                  test_support::read_file(path(std::string(q) + "-rocksdb.jsonl"))),
              test_support::sorted_lines(expected))
        << q;
  }
}

// sabot checkpoints show names a join's state on RocksDB: the wrapping state type and its lists.
TEST_F(StateBackendCliTest, CheckpointsShowListsAJoinsRowsInRocksDb) {
  const std::string ck = path("ck-q8");
  const Outcome run = sabot(
      "bench nexmark --events 20000 --json --query q8 --state-backend rocksdb "
      "--state-dir " +
      path("state") + " --checkpoint-dir " + ck);
  ASSERT_EQ(run.code, 0) << run.err;
  const Outcome show = sabot("checkpoints show " + ck + "/chk-1");
  ASSERT_EQ(show.code, 0) << show.err;
  EXPECT_NE(show.out.find("'keyed-window-join' v1 holding incremental RocksDB checkpoint"),
            std::string::npos)
      << show.out;
  EXPECT_NE(show.out.find("state 'left': list of"), std::string::npos) << show.out;
  EXPECT_NE(show.out.find("state 'right': list of"), std::string::npos) << show.out;
}

}  // namespace
}  // namespace sabot
