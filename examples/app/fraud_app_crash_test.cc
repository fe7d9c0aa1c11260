// kill -9 of a checkpointed `fraud_app worker`, restarted: its alerts (--topic-out, exactly-once)
// and its tables (`fraud_app table`, from the newest checkpoint) equal an uninterrupted run's.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "sabot/codec/json.h"
#include "sabot/fraud/transactions.h"
#include "support/text_files.h"

namespace {

namespace fs = std::filesystem;
using sabot::test_support::read_file;
using sabot::test_support::run_command;
using sabot::test_support::sorted_lines;

const std::string kApp = SABOT_FRAUD_APP;

bool has_checkpoint(const fs::path& dir) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.path().filename().string().rfind("chk-", 0) == 0 && fs::exists(e.path() / "MANIFEST")) {
      return true;
    }
  }
  return false;
}

// Starts the worker in the background with its output in `log`; returns its pid.
pid_t spawn(const std::vector<std::string>& args, const fs::path& log) {
  pid_t pid = fork();
  if (pid == 0) {
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    int in = ::open("/dev/null", O_RDONLY);
    dup2(in, 0);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

TEST(FraudAppCrashTest, KilledWorkerRestartedGivesTheUninterruptedAlertsAndTables) {
  const fs::path dir =
      fs::temp_directory_path() / ("fraud_app_crash_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  // 60k generated transactions as JSON lines, sent into the state directory's topic.
  {
    sabot::fraud::GeneratorOptions g;
    g.transactions = 60'000;
    g.seed = 7;
    auto gen = sabot::fraud::TransactionGenerator::make(g).value();
    sabot::codec::JsonEncoder encoder;
    std::ofstream out(dir / "tx.jsonl", std::ios::binary);
    std::string text;
    while (!gen.done()) {
      text.clear();
      encoder.encode_lines(gen.next_batch(8192), text);
      out << text;
    }
  }
  const std::string err = (dir / "err.txt").string();
  auto sent = run_command(kApp + " send bank-transactions --file " + (dir / "tx.jsonl").string() +
                              " --key-field account_number --state-dir " + (dir / "state").string(),
                          err);
  ASSERT_EQ(sent.code, 0) << sent.err;
  auto worker = [&](const std::string& chk, const std::string& alerts) {
    return std::vector<std::string>{kApp,
                                    "worker",
                                    "--state-dir",
                                    (dir / "state").string(),
                                    "--checkpoint-dir",
                                    (dir / chk).string(),
                                    "--checkpoint-interval-ms",
                                    "20",
                                    "--concurrency",
                                    "2",
                                    "--until-done",
                                    "--topic-out",
                                    "fraud-alerts=" + (dir / alerts).string()};
  };
  auto run_to_end = [&](const std::vector<std::string>& args) {
    std::string line;
    for (const auto& a : args) line += "'" + a + "' ";
    return run_command(line, err);
  };
  auto tables = [&](const std::string& chk) {
    std::string out;
    for (const char* t : {"accounts", "unknown-city", "recent"}) {
      auto r = run_command(kApp + " table " + t + " --checkpoint-dir " + (dir / chk).string(), err);
      EXPECT_EQ(r.code, 0) << r.err;
      out += r.out;
    }
    return sorted_lines(out);
  };

  // Uninterrupted.
  auto clean = run_to_end(worker("chk-clean", "alerts-clean.jsonl"));
  ASSERT_EQ(clean.code, 0) << clean.err;
  const auto expected_alerts = sorted_lines(read_file(dir / "alerts-clean.jsonl"));
  const auto expected_tables = tables("chk-clean");
  ASSERT_GT(expected_alerts.size(), 100u);
  ASSERT_GT(expected_tables.size(), 1000u);

  // Killed with SIGKILL once its first checkpoint is written, then run again to the end.
  pid_t pid = spawn(worker("chk-killed", "alerts-killed.jsonl"), dir / "killed.log");
  ASSERT_GT(pid, 0);
  bool exited = false;
  int status = 0;
  while (!has_checkpoint(dir / "chk-killed" / "detector")) {
    if (waitpid(pid, &status, WNOHANG) == pid) {
      exited = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ASSERT_FALSE(exited) << "the worker ended before its first checkpoint: "
                       << read_file(dir / "killed.log");
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));
  auto resumed = run_to_end(worker("chk-killed", "alerts-killed.jsonl"));
  ASSERT_EQ(resumed.code, 0) << resumed.err;
  EXPECT_NE(resumed.err.find("restored from checkpoint"), std::string::npos) << resumed.err;
  EXPECT_TRUE(sorted_lines(read_file(dir / "alerts-killed.jsonl")) == expected_alerts);
  EXPECT_EQ(sorted_lines(read_file(dir / "alerts-killed.jsonl")).size(), expected_alerts.size());
  EXPECT_TRUE(tables("chk-killed") == expected_tables);
  fs::remove_all(dir);
}

}  // namespace
