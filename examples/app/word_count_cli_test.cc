// The command line every App gets (app.main), through the word_count example: send, worker,
// table, the listings, --help of every subcommand, and bad flags refused naming them.
#include <gtest/gtest.h>

#include <filesystem>

#include "support/text_files.h"

namespace {

namespace fs = std::filesystem;
using sabot::test_support::run_command;

const std::string kApp = SABOT_WORD_COUNT;

TEST(WordCountCliTest, SendWorkerAndTableFromTheCheckpoint) {
  const fs::path dir = fs::temp_directory_path() / ("word_count_cli_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string err = (dir / "err.txt").string();
  const std::string st = " --state-dir " + (dir / "st").string();
  for (const char* line : {"the quick brown fox", "the lazy dog and the fox"}) {
    auto r = run_command(kApp + " send lines '" + line + "'" + st, err);
    ASSERT_EQ(r.code, 0) << r.err;
  }
  const std::string chk = " --checkpoint-dir " + (dir / "chk").string();
  auto w = run_command(kApp + " worker --until-done --checkpoint-interval-ms 20" + st + chk, err);
  ASSERT_EQ(w.code, 0) << w.err;
  EXPECT_NE(w.err.find("worker finished: failures 0, restarts 0"), std::string::npos) << w.err;
  auto fox = run_command(kApp + " table word-counts --key fox" + chk, err);
  ASSERT_EQ(fox.code, 0) << fox.err;
  EXPECT_EQ(fox.out, "{\"key\": \"fox\", \"value\": 2}\n");
  auto all = run_command(kApp + " table word-counts" + chk, err);
  ASSERT_EQ(all.code, 0) << all.err;
  EXPECT_EQ(sabot::test_support::sorted_lines(all.out).size(), 7u) << all.out;
  EXPECT_NE(all.out.find("{\"key\": \"the\", \"value\": 3}"), std::string::npos) << all.out;
  // The embedded broker dies with the worker: "words", written by the split agent, is empty in a
  // new process, so the count agent cannot resume at its checkpointed offsets. The worker says so
  // instead of counting again (docs/app.md, "Not yet").
  auto again = run_command(kApp + " worker --until-done" + st + chk, err);
  EXPECT_EQ(again.code, 1);
  EXPECT_NE(again.err.find("topic 'words' to offset"), std::string::npos) << again.err;
  fs::remove_all(dir);
}

TEST(WordCountCliTest, ListsWhatTheAppDeclares) {
  const std::string err = (fs::temp_directory_path() / "word_count_cli_err.txt").string();
  auto agents = run_command(kApp + " agents", err);
  ASSERT_EQ(agents.code, 0);
  EXPECT_NE(agents.out.find("split\ttopic=lines\tconcurrency=1\tsupervisor=one-for-one"),
            std::string::npos)
      << agents.out;
  EXPECT_NE(agents.out.find("count\ttopic=words\tconcurrency=2"), std::string::npos);
  auto topics = run_command(kApp + " topics", err);
  EXPECT_EQ(topics.out,
            "lines\tpartitions=2\tvalue=text\nwords\tpartitions=4\tvalue=text\n"
            "milestones\tpartitions=1\tvalue=text\n");
  auto tables = run_command(kApp + " tables", err);
  EXPECT_EQ(tables.out, "word-counts\tkey=string\tvalue=long\twindow=-\n");
}

TEST(WordCountCliTest, EveryCommandAnswersHelpAndRefusesBadFlags) {
  const std::string err = (fs::temp_directory_path() / "word_count_cli_err.txt").string();
  for (const char* c : {"worker", "agents", "topics", "tables", "table", "send"}) {
    auto help = run_command(kApp + " " + c + " --help", err);
    EXPECT_EQ(help.code, 0) << c;
    EXPECT_NE(help.out.find(std::string("word_count ") + c), std::string::npos) << help.out;
    auto bad = run_command(kApp + " " + c + " --no-such-flag", err);
    EXPECT_EQ(bad.code, 2) << c;
    EXPECT_NE(bad.err.find("--no-such-flag"), std::string::npos) << bad.err;
  }
  auto unknown = run_command(kApp + " frobnicate", err);
  EXPECT_EQ(unknown.code, 2);
  EXPECT_NE(unknown.err.find("unknown command 'frobnicate'"), std::string::npos);
  auto no_dir = run_command(kApp + " send lines hello", err);
  EXPECT_EQ(no_dir.code, 2);
  EXPECT_NE(no_dir.err.find("--state-dir"), std::string::npos) << no_dir.err;
}

}  // namespace
