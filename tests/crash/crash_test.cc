// kill -9 of the `sabot` command: a checkpointed job (`demo fraud --alerts-out`, and
// `bench nexmark --output` for a windowed query and a join) is started as a child process, killed
// with SIGKILL at random moments (seeded) and during checkpoint writes, and started again with the
// same flags until it exits 0; its output must then equal an uninterrupted run's exactly (as
// sorted lines: several subtasks feed the files, so the order of lines is not deterministic).
// The kill times are random and the number of runs with them; the assertions do not depend on
// either. Label `crash` (release build only).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/inotify.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "sabot/checkpoint/storage.h"
#include "support/text_files.h"

extern char** environ;

namespace sabot {
namespace {

namespace fs = std::filesystem;

using test_support::read_file;
using test_support::sorted_lines;

// A running `sabot` child: standard input and output /dev/null, standard error into a file. The
// pidfd lets poll() wait for its exit with a timeout (and together with an inotify descriptor).
class Child {
 public:
  Child(const std::vector<std::string>& args, const fs::path& err) {
    std::vector<std::string> argv_storage = {SABOT_CLI};
    argv_storage.insert(argv_storage.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& a : argv_storage) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int rc = posix_spawn(&pid_, SABOT_CLI, &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
      ADD_FAILURE() << "posix_spawn " << SABOT_CLI << ": " << std::strerror(rc);
      pid_ = -1;
      return;
    }
    pidfd_ = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
    if (pidfd_ < 0) ADD_FAILURE() << "pidfd_open: " << std::strerror(errno);
  }
  ~Child() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      reap();
    }
    if (pidfd_ >= 0) ::close(pidfd_);
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  int pidfd() const { return pidfd_; }
  pid_t pid() const { return pid_; }
  bool ok() const { return pid_ > 0 && pidfd_ >= 0; }
  // True when the child exited within `timeout` (then reaped).
  bool wait_for(std::chrono::milliseconds timeout) {
    pollfd p{pidfd_, POLLIN, 0};
    const int n = ::poll(&p, 1, static_cast<int>(timeout.count()));
    if (n <= 0) return false;
    reap();
    return true;
  }
  // SIGKILL, then reaped. False when the child had exited already (a kill that came too late).
  bool kill_now() {
    ::kill(pid_, SIGKILL);
    reap();
    return killed();
  }
  // The raw wait status.
  int status() const { return status_; }
  bool exited_ok() const { return reaped_ && WIFEXITED(status_) && WEXITSTATUS(status_) == 0; }
  bool killed() const { return reaped_ && WIFSIGNALED(status_) && WTERMSIG(status_) == SIGKILL; }

 private:
  void reap() {
    while (::waitpid(pid_, &status_, 0) < 0 && errno == EINTR) {
    }
    reaped_ = true;
  }
  pid_t pid_ = -1;
  int pidfd_ = -1;
  int status_ = 0;
  bool reaped_ = false;
};

// Watches a checkpoint directory for new chk-<n> directories (inotify).
class CheckpointWatch {
 public:
  explicit CheckpointWatch(const fs::path& dir) {
    fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd_ >= 0 && inotify_add_watch(fd_, dir.c_str(), IN_CREATE) < 0) {
      ADD_FAILURE() << "inotify_add_watch " << dir << ": " << std::strerror(errno);
    }
  }
  ~CheckpointWatch() {
    if (fd_ >= 0) ::close(fd_);
  }
  int fd() const { return fd_; }
  // The chk-<n> directories created since the last call.
  std::vector<std::string> created() {
    std::vector<std::string> names;
    alignas(inotify_event) char buf[4096];
    ssize_t n;
    while ((n = ::read(fd_, buf, sizeof buf)) > 0) {
      for (char* p = buf; p < buf + n;) {
        auto* e = reinterpret_cast<inotify_event*>(p);
        if ((e->mask & IN_ISDIR) && e->len > 0 && std::strncmp(e->name, "chk-", 4) == 0) {
          names.emplace_back(e->name);
        }
        p += sizeof(inotify_event) + e->len;
      }
    }
    return names;
  }

 private:
  int fd_ = -1;
};

bool has_usable_checkpoint(const fs::path& dir, const std::string& job) {
  auto storage = checkpoint::CheckpointStorage::open(dir.string());
  if (!storage.is_ok()) return false;
  auto listed = storage->list();
  if (!listed.is_ok()) return false;
  for (const auto& info : *listed) {
    if (info.usable && info.job_name == job) return true;
  }
  return false;
}

// One job under kill -9. `args(dir, out)` gives the flags for a round's checkpoint directory and
// output; `outputs(out)` the files the output is made of; `expected` their uninterrupted content
// as sorted lines.
struct Job {
  std::string name;      // for messages
  std::string job_name;  // the Sabot job's name (checkpoints are filtered by it)
  std::function<std::vector<std::string>(const fs::path& dir, const fs::path& out)> args;
  std::function<std::vector<fs::path>(const fs::path& out)> outputs;
  std::string out_name;  // the output file's name
};

struct Figures {
  int kills = 0;
  int checkpoint_kills = 0;     // kills aimed at a checkpoint's write
  int found_incomplete = 0;     // ... that left a chk-<n> without MANIFEST
  int runs = 0;                 // processes started
  int rounds = 0;               // runs to exit 0 (each one checked)
  int restored_runs = 0;        // runs whose stderr says "restored from checkpoint"
  int final_runs_restored = 0;  // rounds whose last run restored
};

// The parts a file sink at parallelism 2 writes for `out`: <stem>-0<ext>, <stem>-1<ext>.
std::vector<fs::path> parts_of(const fs::path& out) {
  std::vector<fs::path> parts;
  for (int i = 0; i < 2; ++i) {
    parts.push_back(out.parent_path() /
                    (out.stem().string() + "-" + std::to_string(i) + out.extension().string()));
  }
  return parts;
}

class CrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("sabot_crash_test_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(dir_);
  }
  void fraud_under_kills(const std::string& name, const std::vector<std::string>& extra, int kills);

  // Runs `args` to its end without interruption; returns its wall time (only used to choose kill
  // times, never asserted on).
  std::chrono::milliseconds run_once(const std::vector<std::string>& args, const fs::path& err) {
    const auto start = std::chrono::steady_clock::now();
    Child child(args, err);
    EXPECT_TRUE(child.ok());
    EXPECT_TRUE(child.wait_for(std::chrono::minutes(2))) << "the run did not end";
    EXPECT_TRUE(child.exited_ok()) << "status " << child.status() << ": " << read_file(err);
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 start);
  }

  // Kills `job` `kills` times: every third kill (and the last) as soon as a checkpoint directory
  // appears (the first or second of that run, at random; the second for the last kill, so that
  // one completed before it), the others after a random delay in [0, max_delay]. A run that ends
  // before its kill ends the round: its output is checked and the next round starts afresh. Each
  // round's output, once a run exits 0, must hold exactly `expected` (sorted lines) and no staged
  // file.
  Figures kill_repeatedly(const Job& job, const std::vector<std::string>& expected, int kills,
                          std::chrono::milliseconds max_delay, uint64_t seed) {
    std::mt19937_64 rng(seed);
    Figures f;
    // Kills aimed at a checkpoint that found the run ended first (it wrote fewer checkpoints than
    // aimed at): the next aimed kill takes the first checkpoint, so that the test always ends.
    int missed_aims = 0;
    int missed_in_a_row = 0;
    while (f.kills < kills && !HasFatalFailure()) {
      if (f.runs > 40 * kills) {
        ADD_FAILURE() << job.name << ": " << f.runs << " runs and only " << f.kills
                      << " kills: the runs end before the kills land";
        return f;
      }
      const fs::path round = dir_ / (job.name + "-round" + std::to_string(f.rounds));
      fs::create_directories(round / "ck");
      const fs::path out = round / job.out_name;
      const std::vector<std::string> args = job.args(round / "ck", out);
      bool last_run_restored = false;
      bool checkpoint_before_last = false;
      for (int run = 0;; ++run) {
        const fs::path err = round / ("stderr-" + std::to_string(run) + ".txt");
        const bool had_checkpoint = has_usable_checkpoint(round / "ck", job.job_name);
        CheckpointWatch watch(round / "ck");
        Child child(args, err);
        EXPECT_TRUE(child.ok());
        if (!child.ok()) return f;
        ++f.runs;
        bool ended = false;
        if (f.kills >= kills) {
          ended = child.wait_for(std::chrono::minutes(2));
          EXPECT_TRUE(ended) << job.name << ": the run did not end";
        } else if (f.kills % 3 == 2 || f.kills == kills - 1) {
          // Aimed at a checkpoint's write: kill when a chk-<n> directory appears.
          const int skip = missed_in_a_row > 0    ? 0
                           : f.kills == kills - 1 ? 1
                                                  : static_cast<int>(rng() % 2);
          int seen = 0;
          std::string victim;
          while (victim.empty()) {
            pollfd p[2] = {{child.pidfd(), POLLIN, 0}, {watch.fd(), POLLIN, 0}};
            if (::poll(p, 2, 120'000) <= 0) {
              ADD_FAILURE() << job.name << ": no checkpoint and no end within 2 minutes";
              return f;
            }
            if (p[1].revents & POLLIN) {
              for (const std::string& name : watch.created()) {
                if (seen++ == skip) {
                  if (child.kill_now()) {
                    victim = name;
                  } else {
                    ended = true;
                  }
                  break;
                }
              }
            }
            if (ended) break;
            if (victim.empty() && (p[0].revents & POLLIN)) {
              ended = child.wait_for(std::chrono::milliseconds(0));
              break;
            }
          }
          if (victim.empty()) {
            ++missed_aims;
            ++missed_in_a_row;
          }
          if (!victim.empty()) {
            // The "restored from" line comes before the job starts, so before its first
            // checkpoint: a run that started with a usable checkpoint has printed it by now.
            if (had_checkpoint) {
              EXPECT_NE(read_file(err).find("restored from checkpoint"), std::string::npos)
                  << job.name << ": killed at " << victim << " without having restored";
            }
            ++f.kills;
            ++f.checkpoint_kills;
            missed_in_a_row = 0;
            const fs::path chk = round / "ck" / victim;
            if (fs::exists(chk) && !fs::exists(chk / "MANIFEST")) ++f.found_incomplete;
          }
        } else {
          std::uniform_int_distribution<int64_t> delay(0, max_delay.count());
          ended = child.wait_for(std::chrono::milliseconds(delay(rng)));
          if (!ended) {
            ended = !child.kill_now();
            f.kills += !ended;
          }
        }
        const std::string err_text = read_file(err);
        const bool restored = err_text.find("restored from checkpoint") != std::string::npos;
        f.restored_runs += restored;
        if (!ended) {
          EXPECT_TRUE(child.killed())
              << job.name << ": status " << child.status() << ": " << err_text;
          continue;
        }
        EXPECT_TRUE(child.exited_ok())
            << job.name << " run " << run << ": status " << child.status() << ": " << err_text;
        last_run_restored = restored;
        checkpoint_before_last = had_checkpoint;
        break;
      }
      ++f.rounds;
      // A run that started with a usable checkpoint of its job says that it restored it.
      if (checkpoint_before_last) {
        EXPECT_TRUE(last_run_restored) << job.name << ": the last run of " << round
                                       << " started with a checkpoint but did not restore it";
      }
      f.final_runs_restored += last_run_restored;
      std::string text;
      for (const fs::path& part : job.outputs(out)) text += read_file(part);
      const std::vector<std::string> got = sorted_lines(text);
      EXPECT_EQ(got.size(), expected.size()) << job.name << " " << round;
      EXPECT_TRUE(got == expected)
          << job.name << ": the output of " << round << " differs from the uninterrupted run's";
      for (const auto& entry : fs::directory_iterator(round)) {
        const std::string name = entry.path().filename().string();
        EXPECT_EQ(name.find(".inprogress"), std::string::npos)
            << job.name << ": a staged file is left: " << entry.path();
      }
    }
    // The last kill lands when the run's second checkpoint starts, so its first is complete and
    // the next run must restore it: recovery from a checkpoint is exercised in every job (unless
    // a run ended before its second checkpoint and the aim fell back to the first).
    if (missed_aims == 0) {
      EXPECT_GE(f.restored_runs, 1) << job.name << ": no run restored from a checkpoint";
    }
    std::cout << "[ crash    ] " << job.name << ": " << f.kills << " kills (" << f.checkpoint_kills
              << " at a checkpoint's write, " << f.found_incomplete
              << " of them left a chk-<n> without MANIFEST), " << f.runs << " runs in " << f.rounds
              << " rounds, " << f.restored_runs << " runs restored (" << f.final_runs_restored
              << " of the rounds' last runs)\n";
    return f;
  }

  // `sabot bench nexmark --output` at parallelism 2 for one query: the reference run without
  // checkpoints, an uninterrupted checkpointed run, then `kills` kills.
  void nexmark_under_kills(const std::string& query, const std::vector<std::string>& generator,
                           int kills, uint64_t seed) {
    auto args = [&](const fs::path& ck, const fs::path& out) {
      std::vector<std::string> a = {"bench",         "nexmark", "--query",  query,
                                    "--parallelism", "2",       "--output", out.string()};
      a.insert(a.end(), generator.begin(), generator.end());
      if (!ck.empty()) {
        // 20 ms: a run of these few million events writes several checkpoints, so that kills
        // aimed at the second one land (at 100 ms an idle machine ends a run after one or two).
        a.insert(a.end(), {"--checkpoint-dir", ck.string(), "--checkpoint-interval", "20ms"});
      }
      return a;
    };
    fs::create_directories(dir_ / "plain");
    run_once(args({}, dir_ / "plain" / "out.jsonl"), dir_ / "plain.err");
    std::string text;
    for (const fs::path& p : parts_of(dir_ / "plain" / "out.jsonl")) text += read_file(p);
    const std::vector<std::string> expected = sorted_lines(text);
    ASSERT_GT(expected.size(), 10u) << query;
    fs::create_directories(dir_ / "once" / "ck");
    const auto wall =
        run_once(args(dir_ / "once" / "ck", dir_ / "once" / "out.jsonl"), dir_ / "once.err");
    text.clear();
    for (const fs::path& p : parts_of(dir_ / "once" / "out.jsonl")) text += read_file(p);
    EXPECT_EQ(sorted_lines(text), expected) << query;
    Job job{query, "nexmark-" + query, args, parts_of, "out.jsonl"};
    const Figures f = kill_repeatedly(job, expected, kills, wall, seed);
    EXPECT_EQ(f.kills, kills);
  }

  fs::path dir_;
};

// `demo fraud` under `kills` kills, with `extra` flags (the state backend); `name` names the
// rounds' directories.
void CrashTest::fraud_under_kills(const std::string& name, const std::vector<std::string>& extra,
                                  int kills) {
  // 150k generated transactions and three bad lines (dead-lettered) among them.
  const fs::path input = dir_ / "tx.jsonl";
  {
    Child gen({"fraud", "generate", "--transactions", "150k", "--seed", "11", "--output",
               (dir_ / "gen.jsonl").string()},
              dir_ / "gen.err");
    ASSERT_TRUE(gen.wait_for(std::chrono::minutes(1)));
    ASSERT_TRUE(gen.exited_ok()) << read_file(dir_ / "gen.err");
    std::string text = read_file(dir_ / "gen.jsonl");
    const size_t middle = text.find('\n', text.size() / 2) + 1;
    text.insert(middle, "not json\n{\"transaction_id\": \"seven\"}\n");
    text += "{\"truncated\n";
    std::ofstream(input, std::ios::binary) << text;
  }
  auto args = [&](const fs::path& ck, const fs::path& out) {
    std::vector<std::string> a = {"demo",
                                  "fraud",
                                  "--input",
                                  input.string(),
                                  "--quiet",
                                  "--parallelism",
                                  "2",
                                  "--alerts-out",
                                  out.string(),
                                  "--on-bad-record",
                                  "dead-letter",
                                  "--dead-letter-out",
                                  (out.parent_path() / "dead.jsonl").string()};
    a.insert(a.end(), extra.begin(), extra.end());
    if (!ck.empty()) {
      // 20 ms rather than the 100 ms: a run of 150k transactions lasts a few hundred ms,
      // and kills aimed at its second checkpoint must find one (more checkpoints, more to kill).
      a.insert(a.end(), {"--checkpoint-dir", ck.string(), "--checkpoint-interval", "20ms"});
    }
    return a;
  };
  // The uninterrupted runs: without checkpoints (the reference) and with them (its wall time
  // bounds the random kill delays).
  fs::create_directories(dir_ / "plain");
  run_once(args({}, dir_ / "plain" / "alerts.jsonl"), dir_ / "plain.err");
  const std::vector<std::string> expected =
      sorted_lines(read_file(dir_ / "plain" / "alerts.jsonl"));
  const std::string dead = read_file(dir_ / "plain" / "dead.jsonl");
  ASSERT_GT(expected.size(), 100u);
  ASSERT_EQ(sorted_lines(dead).size(), 3u);
  fs::create_directories(dir_ / "once" / "ck");
  const auto wall =
      run_once(args(dir_ / "once" / "ck", dir_ / "once" / "alerts.jsonl"), dir_ / "once.err");
  EXPECT_EQ(sorted_lines(read_file(dir_ / "once" / "alerts.jsonl")), expected);

  Job job{name, "fraud-detection", args,
          [](const fs::path& out) { return std::vector<fs::path>{out}; }, "alerts.jsonl"};
  const Figures f = kill_repeatedly(job, expected, kills, wall, 20261205);
  EXPECT_EQ(f.kills, kills);
  // Each round's dead letters: the whole file, each bad line once.
  for (int r = 0; r < f.rounds; ++r) {
    EXPECT_EQ(read_file(dir_ / (name + "-round" + std::to_string(r)) / "dead.jsonl"), dead) << r;
  }
}

TEST_F(CrashTest, FraudDemoAlertsAndDeadLettersSurviveKills) { fraud_under_kills("fraud", {}, 12); }

// The same with the detector's keyed state in RocksDB (--state-backend rocksdb): fewer kills, since
// a run is slower.
TEST_F(CrashTest, FraudDemoOnRocksDbSurvivesKills) {
  fraud_under_kills("fraud-rocksdb",
                    {"--state-backend", "rocksdb", "--state-dir", (dir_ / "state").string()}, 4);
}

TEST_F(CrashTest, NexmarkWindowedQuerySurvivesKills) {
  nexmark_under_kills("q5", {"--events", "3M", "--rate", "20k"}, 6, 5);
}

// q5's sliding-window counts with their panes in RocksDB (window_keyed.cc), checkpointed
// incrementally.
TEST_F(CrashTest, NexmarkWindowedQueryOnRocksDbSurvivesKills) {
  nexmark_under_kills("q5",
                      {"--events", "3M", "--rate", "20k", "--state-backend", "rocksdb",
                       "--state-dir", (dir_ / "state").string()},
                      4, 7);
}

TEST_F(CrashTest, NexmarkJoinSurvivesKills) {
  nexmark_under_kills("q8", {"--events", "3M", "--rate", "20k"}, 6, 8);
}

// q8's window join with its buffered rows in RocksDB (join_keyed.cc), checkpointed
// incrementally.
TEST_F(CrashTest, NexmarkJoinOnRocksDbSurvivesKills) {
  nexmark_under_kills("q8",
                      {"--events", "3M", "--rate", "20k", "--state-backend", "rocksdb",
                       "--state-dir", (dir_ / "state").string()},
                      4, 9);
}

}  // namespace
}  // namespace sabot

namespace sabot {
namespace {

// `kill -USR1` asks a running checkpointed job for a savepoint: it is written as
// DIR/savepoint-<n>, announced on stderr with its path, kept by retention, and a new run can
// start from it with --restore.
TEST(SavepointSignal, UsrOneTakesASavepointThatIsKeptAndRestorable) {
  const fs::path dir = fs::temp_directory_path() / ("sabot_usr1_test_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "ck");
  // Long enough never to end on its own before the test kills it.
  const std::vector<std::string> args = {"bench",
                                         "nexmark",
                                         "--query",
                                         "q7",
                                         "--events",
                                         "2000M",
                                         "--parallelism",
                                         "2",
                                         "--checkpoint-dir",
                                         (dir / "ck").string(),
                                         "--checkpoint-interval",
                                         "100ms"};
  int64_t savepoint = -1;
  {
    CheckpointWatch watch(dir / "ck");
    Child child(args, dir / "err.txt");
    ASSERT_TRUE(child.ok());
    // The coordinator runs once a checkpoint directory appears: ask then.
    bool asked = false;
    for (int i = 0; i < 6000 && savepoint < 0; ++i) {
      ASSERT_FALSE(child.wait_for(std::chrono::milliseconds(10)))
          << "the job ended: " << read_file(dir / "err.txt");
      if (!asked && !watch.created().empty()) {
        ASSERT_EQ(::kill(child.pid(), SIGUSR1), 0);
        asked = true;
      }
      if (!asked) continue;
      auto storage = checkpoint::CheckpointStorage::open((dir / "ck").string());
      ASSERT_TRUE(storage.is_ok());
      auto listed = storage->list();
      ASSERT_TRUE(listed.is_ok());
      for (const auto& info : *listed) {
        if (info.savepoint && info.usable) savepoint = info.checkpoint_id;
      }
    }
    ASSERT_GE(savepoint, 0) << "no savepoint within a minute: " << read_file(dir / "err.txt");
    // Let a few more checkpoints complete so that retention (3) has deleted older ones.
    CheckpointWatch later(dir / "ck");
    for (int seen = 0, i = 0; seen < 5 && i < 6000; ++i) {
      ASSERT_FALSE(child.wait_for(std::chrono::milliseconds(10)));
      seen += static_cast<int>(later.created().size());
    }
    EXPECT_TRUE(child.kill_now());
  }
  const std::string path = (dir / "ck" / ("savepoint-" + std::to_string(savepoint))).string();
  EXPECT_NE(read_file(dir / "err.txt")
                .find("savepoint " + std::to_string(savepoint) +
                      " of job 'nexmark-q7' written to " + path + "\n"),
            std::string::npos)
      << read_file(dir / "err.txt");
  auto info = checkpoint::read_manifest(path);
  ASSERT_TRUE(info.is_ok()) << info.status().to_string();
  EXPECT_TRUE(info->savepoint);
  EXPECT_FALSE(fs::exists(dir / "ck" / "chk-1")) << "retention kept every checkpoint";

  // A run in another directory starts from it.
  std::vector<std::string> again = args;
  again[9] = (dir / "ck2").string();
  again.push_back("--restore");
  again.push_back(path);
  {
    fs::create_directories(dir / "ck2");
    CheckpointWatch watch2(dir / "ck2");
    Child child(again, dir / "err2.txt");
    ASSERT_TRUE(child.ok());
    for (int i = 0; i < 6000 && watch2.created().empty(); ++i) {
      ASSERT_FALSE(child.wait_for(std::chrono::milliseconds(10))) << read_file(dir / "err2.txt");
    }
    EXPECT_TRUE(child.kill_now());
  }
  EXPECT_NE(read_file(dir / "err2.txt")
                .find("restored from savepoint " + std::to_string(savepoint) + " (" + path + ")"),
            std::string::npos)
      << read_file(dir / "err2.txt");
  if (!HasFailure()) fs::remove_all(dir);
}

}  // namespace
}  // namespace sabot
