// The checkpoint and recovery flags of the `sabot` command (--checkpoint-dir,
// --checkpoint-interval, --restore, --no-restore, --restart) as a user runs them: refusals, a
// damaged or missing --restore, resuming after a finished run, restoring an older checkpoint
// into another directory, and the part files of --output at changing parallelism (stale parts of
// an earlier run are removed, also under exactly-once). Kills are in tests/crash.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "sabot/checkpoint/storage.h"
#include "support/text_files.h"

namespace sabot {
namespace {

namespace fs = std::filesystem;

using test_support::Outcome;

using test_support::read_file;
using test_support::sorted_lines;

class RecoveryCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("sabot_recovery_cli_test_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  Outcome sabot(const std::string& args) const {
    return test_support::run_command(std::string(SABOT_CLI) + " " + args, path("stderr.txt"));
  }

  // The lines of every existing part of `out` (<stem>-<i><ext>, i < 8) or of `out` itself,
  // sorted, and which files there were.
  std::vector<std::string> output_lines(const std::string& out, std::vector<std::string>* files) {
    const fs::path p(out);
    std::string text;
    auto take = [&](const fs::path& f) {
      if (!fs::exists(f)) return;
      files->push_back(f.filename().string());
      text += read_file(f);
    };
    take(p);
    for (int i = 0; i < 8; ++i) {
      take(p.parent_path() /
           (p.stem().string() + "-" + std::to_string(i) + p.extension().string()));
    }
    return sorted_lines(text);
  }

  fs::path dir_;
};

// A small windowed query with several checkpoints at 100 ms.
const std::string kQ5 = "bench nexmark --query q5 --events 2M --rate 20k ";

TEST_F(RecoveryCliTest, RefusesInconsistentFlagsWithExitCode2) {
  struct Case {
    std::string args;
    std::string message;
  };
  const std::string ck = " --checkpoint-dir " + path("ck");
  const std::vector<Case> cases = {
      {"demo fraud --checkpoint-interval 1s", "--checkpoint-interval needs --checkpoint-dir DIR"},
      {"demo fraud --restore " + path("ck/chk-1"), "--restore needs --checkpoint-dir DIR"},
      {"demo fraud --no-restore", "--no-restore needs --checkpoint-dir DIR"},
      {"bench nexmark --restart fixed:3:1s", "--restart needs --checkpoint-dir DIR"},
      {"bench nexmark --query q5" + ck + " --checkpoint-interval 5", "--checkpoint-interval:"},
      {"bench nexmark --query q5" + ck + " --checkpoint-interval 0", "is not longer than 0"},
      {"bench nexmark --query q5" + ck + " --restart sometimes", "--restart:"},
      {"bench nexmark --query q5" + ck + " --restore " + path("x") + " --no-restore",
       "--restore and --no-restore contradict each other"},
      {"bench nexmark --query all" + ck + " --restore " + path("ck/chk-1"),
       "--restore names one job's checkpoint"},
      {"demo fraud --rate 1000" + ck, "--checkpoint-dir: --rate paces a producer"},
      {"demo fraud --input -" + ck, "--input - (standard input) cannot be read again"},
  };
  for (const Case& c : cases) {
    Outcome r = sabot(c.args);
    EXPECT_EQ(r.code, 2) << c.args << "\n" << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << c.args << "\n" << r.err;
  }
  // An exactly-once output must be a regular file (exit 1, like other unwritable outputs).
  const std::vector<Case> outputs = {
      {"demo fraud --quiet --alerts-out -" + ck, "--alerts-out -: standard output cannot"},
      {"demo fraud --quiet --alerts-out /dev/null" + ck,
       "--alerts-out '/dev/null': an exactly-once output must be a regular file"},
      {"bench nexmark --query q5 --events 1000 --output /dev/null" + ck,
       "--output '/dev/null': an exactly-once output must be a regular file"},
  };
  for (const Case& c : outputs) {
    Outcome r = sabot(c.args);
    EXPECT_EQ(r.code, 1) << c.args << "\n" << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << c.args << "\n" << r.err;
  }
  EXPECT_FALSE(fs::exists(path("ck"))) << "a refused command created its checkpoint directory";
  // --help says what the flags and the part files are.
  Outcome fraud = sabot("demo fraud --help");
  EXPECT_NE(fraud.out.find("--checkpoint-dir DIR"), std::string::npos) << fraud.out;
  EXPECT_NE(fraud.out.find("--checkpoint-interval DURATION"), std::string::npos);
  EXPECT_NE(fraud.out.find("one file at any --parallelism"), std::string::npos);
  Outcome bench = sabot("bench nexmark --help");
  EXPECT_NE(bench.out.find("out-0.jsonl, out-1.jsonl"), std::string::npos) << bench.out;
  EXPECT_NE(bench.out.find("--restore PATH"), std::string::npos);
}

TEST_F(RecoveryCliTest, RefusesMissingAndDamagedRestorePaths) {
  const std::string out = path("out.jsonl");
  Outcome first = sabot(kQ5 + "--output " + out + " --checkpoint-dir " + path("ck") +
                        " --checkpoint-interval 100ms");
  ASSERT_EQ(first.code, 0) << first.err;
  auto storage = checkpoint::CheckpointStorage::open(path("ck"));
  ASSERT_TRUE(storage.is_ok());
  auto listed = storage->list();
  ASSERT_TRUE(listed.is_ok());
  ASSERT_FALSE(listed->empty());
  const checkpoint::CheckpointInfo newest = listed->back();
  ASSERT_TRUE(newest.usable) << newest.status;

  Outcome missing = sabot(kQ5 + "--output " + out + " --checkpoint-dir " + path("ck2") +
                          " --restore " + path("ck/chk-999"));
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.err.find("cannot restore from '" + path("ck/chk-999") + "': it does not exist"),
            std::string::npos)
      << missing.err;

  // One flipped byte in a state file: refused naming the file and the checksum.
  ASSERT_FALSE(newest.files.empty());
  const fs::path state = fs::path(newest.path) / newest.files.front().name;
  std::string bytes = read_file(state);
  ASSERT_GT(bytes.size(), 16u);
  bytes[bytes.size() / 2] ^= 0x40;
  std::ofstream(state, std::ios::binary | std::ios::trunc) << bytes;
  Outcome damaged = sabot(kQ5 + "--output " + out + " --checkpoint-dir " + path("ck2") +
                          " --restore " + newest.path);
  EXPECT_EQ(damaged.code, 1);
  EXPECT_NE(damaged.err.find("cannot restore from '" + newest.path + "'"), std::string::npos)
      << damaged.err;
  EXPECT_NE(damaged.err.find("checksum"), std::string::npos) << damaged.err;
  EXPECT_EQ(damaged.err.find("restored from"), std::string::npos) << damaged.err;
}

TEST_F(RecoveryCliTest, ResumesAFinishedRunAndRestoresAnOlderCheckpointElsewhere) {
  std::vector<std::string> files;
  Outcome plain = sabot(kQ5 + "--parallelism 2 --output " + path("plain.jsonl"));
  ASSERT_EQ(plain.code, 0) << plain.err;
  const std::vector<std::string> expected = output_lines(path("plain.jsonl"), &files);
  ASSERT_GT(expected.size(), 10u);

  const std::string out = path("out.jsonl");
  const std::string run = kQ5 + "--parallelism 2 --output " + out + " --checkpoint-dir " +
                          path("ck") + " --checkpoint-interval 100ms";
  Outcome first = sabot(run);
  ASSERT_EQ(first.code, 0) << first.err;
  EXPECT_EQ(first.err.find("restored from"), std::string::npos) << first.err;
  files.clear();
  EXPECT_EQ(output_lines(out, &files), expected);
  EXPECT_EQ(files, (std::vector<std::string>{"out-0.jsonl", "out-1.jsonl"}));

  // Again with the same flags: it resumes from the final checkpoint, and the output stays.
  Outcome again = sabot(run);
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_NE(again.err.find("restored from checkpoint"), std::string::npos) << again.err;
  files.clear();
  EXPECT_EQ(output_lines(out, &files), expected);

  // The oldest retained checkpoint, restored into another directory: the output goes back to
  // what that checkpoint committed and the rest follows. (The output files must still be the
  // ones that checkpoint's run wrote: the restore truncates them to its committed lengths.)
  auto storage = checkpoint::CheckpointStorage::open(path("ck"));
  ASSERT_TRUE(storage.is_ok());
  auto listed = storage->list();
  ASSERT_TRUE(listed.is_ok());
  ASSERT_FALSE(listed->empty());
  const checkpoint::CheckpointInfo oldest = listed->front();
  const std::string elsewhere = kQ5 + "--parallelism 2 --output " + out + " --checkpoint-dir " +
                                path("ck2") + " --restore " + oldest.path;
  Outcome restored = sabot(elsewhere);
  ASSERT_EQ(restored.code, 0) << restored.err;
  EXPECT_NE(restored.err.find("restored from checkpoint " + std::to_string(oldest.checkpoint_id) +
                              " (" + oldest.path + ")"),
            std::string::npos)
      << restored.err;
  files.clear();
  EXPECT_EQ(output_lines(out, &files), expected);
  // The same command again: ck2 now holds newer checkpoints of the job, which win (a run
  // restarted with the same flags must not go back to --restore).
  Outcome repeated = sabot(elsewhere);
  ASSERT_EQ(repeated.code, 0) << repeated.err;
  EXPECT_NE(repeated.err.find("is older than checkpoint"), std::string::npos) << repeated.err;
  EXPECT_NE(repeated.err.find("restored from checkpoint"), std::string::npos) << repeated.err;
  EXPECT_EQ(repeated.err.find("(" + oldest.path + ")"), std::string::npos) << repeated.err;
  files.clear();
  EXPECT_EQ(output_lines(out, &files), expected);

  // --no-restore starts afresh: the same output, written again from the start.
  Outcome fresh = sabot(run + " --no-restore");
  ASSERT_EQ(fresh.code, 0) << fresh.err;
  EXPECT_EQ(fresh.err.find("restored from"), std::string::npos) << fresh.err;
  files.clear();
  EXPECT_EQ(output_lines(out, &files), expected);

  // Another parallelism with the same checkpoint directory is refused by the exactly-once sink.
  Outcome rescaled = sabot(run + " --parallelism 3");
  EXPECT_EQ(rescaled.code, 1);
  EXPECT_NE(rescaled.err.find("restores only at the parallelism it was checkpointed with"),
            std::string::npos)
      << rescaled.err;
}

TEST_F(RecoveryCliTest, OutputPartsFollowTheParallelismAndStalePartsAreRemoved) {
  for (const bool checkpointed : {false, true}) {
    SCOPED_TRACE(checkpointed ? "with --checkpoint-dir" : "without checkpoints");
    const std::string out = path(checkpointed ? "eo/out.jsonl" : "plain/out.jsonl");
    fs::create_directories(fs::path(out).parent_path());
    std::vector<std::string> reference;
    int round = 0;
    for (const int p : {3, 2, 1, 2}) {
      std::string args = kQ5 + "--parallelism " + std::to_string(p) + " --output " + out;
      // A new checkpoint directory per parallelism: an exactly-once sink restores only at the
      // parallelism it was checkpointed with.
      if (checkpointed) {
        args += " --checkpoint-dir " + path("ck" + std::to_string(round++)) +
                " --checkpoint-interval 100ms";
      }
      Outcome r = sabot(args);
      ASSERT_EQ(r.code, 0) << args << "\n" << r.err;
      std::vector<std::string> files;
      const std::vector<std::string> lines = output_lines(out, &files);
      std::vector<std::string> want;
      if (p == 1) {
        want = {"out.jsonl"};
      } else {
        for (int i = 0; i < p; ++i) want.push_back("out-" + std::to_string(i) + ".jsonl");
      }
      EXPECT_EQ(files, want) << "parallelism " << p;
      if (reference.empty()) reference = lines;
      EXPECT_EQ(lines, reference) << "parallelism " << p;
      for (const auto& entry : fs::directory_iterator(fs::path(out).parent_path())) {
        EXPECT_EQ(entry.path().filename().string().find(".inprogress"), std::string::npos)
            << entry.path();
      }
    }
    EXPECT_GT(reference.size(), 10u);
  }
}

}  // namespace
}  // namespace sabot

namespace sabot {
namespace {

// --metrics on a checkpointed benchmark lists, per operator, the checkpoint snapshots taken on its
// task threads and the longest one (the synchronous part of a checkpoint).
TEST(RecoveryCliMetrics, CheckpointedBenchmarkReportsItsSnapshots) {
  const fs::path dir =
      fs::temp_directory_path() / ("sabot_recovery_cli_metrics_" + std::to_string(getpid()));
  fs::remove_all(dir);
  const std::string err = (dir.string() + ".err");
  const std::string command = std::string(SABOT_CLI) + " " + kQ5 + "--parallelism 2 --metrics " +
                              "--checkpoint-dir " + dir.string() +
                              " --checkpoint-interval 100ms >/dev/null 2>" + err;
  ASSERT_EQ(std::system(command.c_str()), 0) << read_file(err);
  const std::string text = read_file(err);
  fs::remove_all(dir);
  fs::remove(err);
  const size_t table = text.find("checkpoint snapshots");
  ASSERT_NE(table, std::string::npos) << text;
  // The window operator took at least the final checkpoint's snapshot on each of its 2 subtasks.
  std::istringstream rows(text.substr(table));
  std::string line;
  bool window = false;
  while (std::getline(rows, line)) {
    if (line.rfind("window_aggregate", 0) != 0) continue;
    std::istringstream fields(line);
    std::string name;
    int par = 0;
    long long snapshots = 0;
    double total_ms = -1, longest_ms = -1;
    fields >> name >> par >> snapshots >> total_ms >> longest_ms;
    EXPECT_EQ(par, 2) << line;
    EXPECT_GE(snapshots, 2) << line;
    EXPECT_GE(total_ms, longest_ms) << line;
    EXPECT_GE(longest_ms, 0) << line;
    window = true;
  }
  EXPECT_TRUE(window) << text;
}

}  // namespace
}  // namespace sabot
