// `sabot dev broker` with independent clients: kcat (Debian's, /usr/bin/kcat) produces JSON into
// the dev broker (another process), a Sabot job reads, filters and writes it back, and kcat reads
// the result, which the test compares with what it expects; `sabot demo fraud --broker` writes
// as many alerts into fraud-alerts as its summary counts; the broker stops on SIGTERM; a
// checkpointed job reading from the dev broker in another process (this test binary, started
// again in child mode) is killed with SIGKILL and restarted, and its exactly-once output holds
// every running count once.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <thread>

#include "sabot/api/environment.h"
#include "sabot/checkpoint/storage.h"
#include "support/text_files.h"

extern char** environ;

struct Tx {
  int64_t id = 0;
  std::string account;
};
SABOT_RECORD(Tx, id, account);
struct Count {
  std::string account;
  int64_t n = 0;
};
SABOT_RECORD(Count, account, n);

namespace sabot {
namespace {

// Child mode (SABOT_TEST_KAFKA_JOB="<broker address>|<checkpoint dir>|<output file>|<bounded
// 0/1>"): counts the records of topic `in` per account with keyed state into an exactly-once
// JSON-lines file, checkpointing every 20 ms, then exits (bounded: at the topic's end; else when
// killed). Runs from a static initializer, before GoogleTest, and never returns.
const bool kChildMode = [] {
  const char* spec = std::getenv("SABOT_TEST_KAFKA_JOB");
  if (spec == nullptr) return false;
  std::vector<std::string> parts;
  std::string text(spec);
  for (size_t at = 0;;) {
    const size_t bar = text.find('|', at);
    parts.push_back(text.substr(at, bar - at));
    if (bar == std::string::npos) break;
    at = bar + 1;
  }
  if (parts.size() != 4) _exit(2);
  auto storage = checkpoint::CheckpointStorage::open(parts[1], {.retained = 100});
  if (!storage.is_ok()) _exit(3);
  EnvironmentOptions o;
  o.parallelism = 2;
  o.checkpoint_storage = std::make_shared<checkpoint::CheckpointStorage>(std::move(*storage));
  o.checkpoint_interval = std::chrono::milliseconds(20);
  o.delivery = runtime::DeliveryGuarantee::kExactlyOnce;
  Environment env(o);
  env.from_topic("kafka://" + parts[0] + "/in", codec::json(record_schema<Tx>()),
                 {.stop_at_end = parts[3] == "1"})
      .uid("in")
      .map<Tx, Count>([](const Tx& t) {
        return Count{t.account, 1};
      })
      .uid("one")
      .key_by("account")
      .reduce<Count>([](const Count& a, const Count& b) {
        return Count{a.account, a.n + b.n};
      })
      .uid("count")
      .to_file({.path = parts[2], .format = FileFormat::kJsonLines})
      .set_parallelism(1)
      .uid("out");
  JobResult r = env.execute("kafka-kill");
  if (!r.ok()) std::cerr << r.status().to_string() << "\n";
  std::cerr.flush();
  _exit(r.ok() ? 0 : 1);
}();

using test_support::read_file;
using test_support::run_command;

struct DevBroker {
  pid_t pid = -1;
  std::string address;
  std::string dir;

  // Starts `sabot dev broker` and waits for its address file (the broker writes it whole, by
  // rename, once it listens).
  bool start(const std::string& topics) {
    dir =
        (std::filesystem::temp_directory_path() / ("sabot-kafka-cli-" + std::to_string(::getpid())))
            .string();
    std::filesystem::create_directories(dir);
    const std::string file = dir + "/address";
    std::filesystem::remove(file);
    std::vector<std::string> args = {SABOT_CLI,        "dev",          "broker",
                                     "--address-file", file,           "--topics",
                                     topics,           "--partitions", "3"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, (dir + "/stdout").c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&actions, 2, (dir + "/stderr").c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int rc = posix_spawn(&pid, SABOT_CLI, &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) return false;
    // Waits for the broker process to say where it listens (or to die).
    for (int i = 0; i < 3000; ++i) {
      std::string text = read_file(file);
      if (!text.empty()) {
        address = text.substr(0, text.find('\n'));
        return true;
      }
      int status = 0;
      if (waitpid(pid, &status, WNOHANG) == pid) {
        pid = -1;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  // SIGTERM; returns the exit code (-1: did not exit normally).
  int stop() {
    if (pid <= 0) return -1;
    kill(pid, SIGTERM);
    int status = 0;
    waitpid(pid, &status, 0);
    pid = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  ~DevBroker() {
    if (pid > 0) stop();
    if (!dir.empty()) std::filesystem::remove_all(dir);
  }
};

bool have_kcat() { return access("/usr/bin/kcat", X_OK) == 0; }

// Starts this binary in child mode with `spec`; stdout and stderr into `log`.
pid_t spawn_child(const std::string& spec, const std::string& log) {
  std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  std::vector<std::string> envs;
  for (char** e = environ; *e != nullptr; ++e) envs.emplace_back(*e);
  envs.push_back("SABOT_TEST_KAFKA_JOB=" + spec);
  std::vector<char*> envp;
  for (auto& e : envs) envp.push_back(e.data());
  envp.push_back(nullptr);
  char* argv[] = {self.data(), nullptr};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, self.c_str(), &actions, nullptr, argv, envp.data());
  posix_spawn_file_actions_destroy(&actions);
  return rc == 0 ? pid : -1;
}

// The number of complete checkpoints (chk-<n>/MANIFEST) in `dir`.
int complete_checkpoints(const std::string& dir) {
  int n = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    if (e.path().filename().string().rfind("chk-", 0) == 0 &&
        std::filesystem::exists(e.path() / "MANIFEST")) {
      ++n;
    }
  }
  return n;
}

TEST(KafkaCli, KcatProducesSabotProcessesKcatReads) {
  ASSERT_TRUE(have_kcat()) << "kcat is not installed: run scripts/install-deps.sh";
  DevBroker broker;
  ASSERT_TRUE(broker.start("in,out")) << read_file(broker.dir + "/stderr");
  EXPECT_EQ(read_file(broker.dir + "/stdout"), broker.address + "\n");

  // 300 keyed JSON messages, produced by kcat (key:value per line).
  std::map<int64_t, std::string> expected;  // id -> account, for amounts > 50
  {
    std::ofstream in(broker.dir + "/input.txt");
    for (int64_t i = 0; i < 300; ++i) {
      const std::string account = "acc-" + std::to_string(i % 11);
      const double amount = static_cast<double>((i * 37) % 100) + 0.5;
      in << account << ":{\"id\":" << i << ",\"account\":\"" << account
         << "\",\"amount\":" << amount << "}\n";
      if (amount > 50) expected[i] = account;
    }
  }
  auto produced = run_command(
      "/usr/bin/kcat -P -b " + broker.address + " -t in -K: -l " + broker.dir + "/input.txt",
      broker.dir + "/kcat-p.err");
  ASSERT_EQ(produced.code, 0) << produced.err;

  auto schema = columnar::schema({columnar::field("id", columnar::int64()),
                                  columnar::field("account", columnar::utf8()),
                                  columnar::field("amount", columnar::float64())});
  Environment env({.parallelism = 2});
  env.from_topic("kafka://" + broker.address + "/in", codec::json(schema), {.stop_at_end = true})
      .filter(col("amount") > lit(50.0))
      .to_topic("kafka://" + broker.address + "/out", codec::json(), {.key_column = "account"});
  JobResult r = env.execute();
  ASSERT_TRUE(r.ok()) << r.status().to_string();

  auto consumed = run_command(
      "/usr/bin/kcat -C -b " + broker.address + " -t out -o beginning -e -q -f '%k|%s\\n'",
      broker.dir + "/kcat-c.err");
  ASSERT_EQ(consumed.code, 0) << consumed.err;
  std::map<int64_t, std::string> got;
  int lines = 0;
  for (const std::string& line : test_support::sorted_lines(consumed.out)) {
    ++lines;
    const size_t bar = line.find('|');
    ASSERT_NE(bar, std::string::npos) << line;
    const std::string key = line.substr(0, bar);
    const size_t id_at = line.find("\"id\":");
    ASSERT_NE(id_at, std::string::npos) << line;
    const int64_t id = std::stoll(line.substr(id_at + 5));
    EXPECT_NE(line.find("\"account\":\"" + key + "\""), std::string::npos) << line;
    got[id] = key;
  }
  EXPECT_EQ(lines, static_cast<int>(expected.size()));
  EXPECT_EQ(got, expected);
  EXPECT_EQ(broker.stop(), 0) << read_file(broker.dir + "/stderr");
}

TEST(KafkaCli, FraudDemoWritesItsAlertsToTheDevBroker) {
  ASSERT_TRUE(have_kcat()) << "kcat is not installed: run scripts/install-deps.sh";
  DevBroker broker;
  ASSERT_TRUE(broker.start("bank-transactions,fraud-alerts")) << read_file(broker.dir + "/stderr");
  auto demo = run_command(std::string(SABOT_CLI) + " demo fraud --transactions 20000 --json " +
                              "--broker kafka://" + broker.address,
                          broker.dir + "/demo.err");
  ASSERT_EQ(demo.code, 0) << demo.err;
  const size_t at = demo.out.find("\"alerts\":");
  ASSERT_NE(at, std::string::npos) << demo.out;
  const int64_t alerts = std::stoll(demo.out.substr(at + 9));
  EXPECT_GT(alerts, 0);
  EXPECT_NE(demo.out.find("\"transactions\":20000"), std::string::npos) << demo.out;

  auto read = run_command(
      "/usr/bin/kcat -C -b " + broker.address + " -t fraud-alerts -o beginning -e -q -f '%s\\n'",
      broker.dir + "/kcat.err");
  ASSERT_EQ(read.code, 0) << read.err;
  auto lines = test_support::sorted_lines(read.out);
  EXPECT_EQ(static_cast<int64_t>(lines.size()), alerts);
  for (const std::string& line : lines) {
    EXPECT_NE(line.find("\"fraud_type\":"), std::string::npos) << line;
  }
  EXPECT_EQ(broker.stop(), 0);
}

// A checkpointed job reading from the dev broker is killed with SIGKILL while it runs (after a
// checkpoint completed and more input arrived) and started again: it resumes from its
// checkpointed offsets and state, so its exactly-once output holds the running count of every
// account from 1 to its number of records, each once (a record skipped or counted twice would
// leave a gap or a repeat).
TEST(KafkaCli, KilledJobResumesFromItsCheckpointedOffsets) {
  ASSERT_TRUE(have_kcat()) << "kcat is not installed: run scripts/install-deps.sh";
  DevBroker broker;
  ASSERT_TRUE(broker.start("in")) << read_file(broker.dir + "/stderr");
  const std::string checkpoints = broker.dir + "/chk";
  const std::string out = broker.dir + "/counts.jsonl";
  const std::string log = broker.dir + "/child.log";
  std::map<std::string, int64_t> expected;
  auto produce = [&](int64_t from, int64_t to) {
    std::ofstream in(broker.dir + "/input.txt", std::ios::trunc);
    for (int64_t i = from; i < to; ++i) {
      const std::string account = "acc-" + std::to_string((i * 7) % 13);
      in << account << ":{\"id\":" << i << ",\"account\":\"" << account << "\"}\n";
      ++expected[account];
    }
    in.close();
    auto r = run_command(
        "/usr/bin/kcat -P -b " + broker.address + " -t in -K: -l " + broker.dir + "/input.txt",
        broker.dir + "/kcat.err");
    ASSERT_EQ(r.code, 0) << r.err;
  };
  produce(0, 3000);
  const std::string spec = broker.address + "|" + checkpoints + "|" + out + "|";
  pid_t child = spawn_child(spec + "0", log);  // unbounded: runs until killed
  ASSERT_GT(child, 0);
  auto wait_checkpoints = [&](int n) {
    for (int i = 0; i < 6000 && complete_checkpoints(checkpoints) < n; ++i) {
      int st = 0;
      if (waitpid(child, &st, WNOHANG) == child) return false;  // the job died
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return complete_checkpoints(checkpoints) >= n;
  };
  ASSERT_TRUE(wait_checkpoints(1)) << read_file(log);
  produce(3000, 6000);
  const int before = complete_checkpoints(checkpoints);
  ASSERT_TRUE(wait_checkpoints(before + 1)) << read_file(log);
  kill(child, SIGKILL);
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the job ended before the kill: " << read_file(log);

  const size_t log_before = read_file(log).size();
  child = spawn_child(spec + "1", log);  // bounded: reads to the topic's end, then finishes
  ASSERT_GT(child, 0);
  waitpid(child, &status, 0);
  const std::string restart_log = read_file(log).substr(log_before);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << restart_log;
  EXPECT_NE(restart_log.find("restored from checkpoint"), std::string::npos) << restart_log;

  std::vector<std::string> want;
  for (const auto& [account, n] : expected) {
    for (int64_t i = 1; i <= n; ++i) {
      want.push_back("{\"account\":\"" + account + "\",\"n\":" + std::to_string(i) + "}");
    }
  }
  std::sort(want.begin(), want.end());
  EXPECT_EQ(test_support::sorted_lines(read_file(out)), want);
  EXPECT_EQ(broker.stop(), 0);
}

}  // namespace
}  // namespace sabot
