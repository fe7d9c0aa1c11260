// `sabot dev broker` with independent clients: kcat (Debian's, /usr/bin/kcat) produces JSON into
// the dev broker (another process), a Sabot job reads, filters and writes it back, and kcat reads
// the result, which the test compares with what it expects; `sabot demo fraud --broker` writes
// as many alerts into fraud-alerts as its summary counts; the broker stops on SIGTERM.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <thread>

#include "sabot/api/environment.h"
#include "support/text_files.h"

extern char** environ;

namespace sabot {
namespace {

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

TEST(KafkaCli, KcatProducesSabotProcessesKcatReads) {
  if (!have_kcat()) GTEST_SKIP() << "kcat is not installed (scripts/install-deps.sh)";
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
  if (!have_kcat()) GTEST_SKIP() << "kcat is not installed (scripts/install-deps.sh)";
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

}  // namespace
}  // namespace sabot
