#include "sabot/checkpoint/storage.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "sabot/state/snapshot.h"

namespace sabot::checkpoint {
namespace {

namespace fs = std::filesystem;

class CheckpointStorageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() /
            ("sabot-chk-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name()))
               .string();
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  static CheckpointData sample(int64_t id, const std::string& job = "job") {
    CheckpointData d;
    d.job_name = job;
    d.checkpoint_id = id;
    d.created_unix_ms = 1'700'000'000'000 + id;
    d.max_parallelism = 16;
    d.operators["window counts"] = {2, {"state of subtask 0 at " + std::to_string(id), ""}};
    d.operators["source"] = {1, {"offsets " + std::to_string(id)}};
    return d;
  }
  // Overwrites one byte of a file in place.
  static void damage(const std::string& path, size_t at) {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(at));
    char c = 0;
    f.get(c);
    f.seekp(static_cast<std::streamoff>(at));
    f.put(static_cast<char>(c ^ 0x10));
  }

  std::string dir_;
};

TEST_F(CheckpointStorageTest, AWrittenCheckpointLoadsBackWhole) {
  auto storage = CheckpointStorage::open(dir_);
  ASSERT_TRUE(storage.is_ok()) << storage.status().message();
  auto path = storage->write(sample(7));
  ASSERT_TRUE(path.is_ok()) << path.status().message();
  EXPECT_EQ(*path, dir_ + "/chk-7");
  auto loaded = storage->load_latest("job");
  ASSERT_TRUE(loaded.is_ok()) << loaded.status().message();
  ASSERT_TRUE(loaded->has_value());
  const CheckpointData& d = **loaded;
  EXPECT_EQ(d.checkpoint_id, 7);
  EXPECT_EQ(d.max_parallelism, 16u);
  EXPECT_EQ(d.created_unix_ms, 1'700'000'000'007);
  ASSERT_EQ(d.operators.size(), 2u);
  EXPECT_EQ(d.operators.at("window counts").parallelism, 2);
  EXPECT_EQ(d.operators.at("window counts").subtasks,
            (std::vector<std::string>{"state of subtask 0 at 7", ""}));
  EXPECT_EQ(d.operators.at("source").subtasks, std::vector<std::string>{"offsets 7"});

  auto list = storage->list();
  ASSERT_TRUE(list.is_ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].status, "complete");
  EXPECT_EQ((*list)[0].files.size(), 2u);  // the empty subtask has no file
  EXPECT_EQ((*list)[0].bytes, std::string("state of subtask 0 at 7").size() + 9);
}

TEST_F(CheckpointStorageTest, OnlyTheNewestCompleteCheckpointsAreKeptAndSavepointsStay) {
  auto storage = CheckpointStorage::open(dir_, {.retained = 2});
  ASSERT_TRUE(storage.is_ok());
  CheckpointData sp = sample(2);
  sp.savepoint = true;
  ASSERT_TRUE(storage->write(sp).is_ok());
  for (int64_t id = 1; id <= 5; ++id) ASSERT_TRUE(storage->write(sample(id)).is_ok());
  auto list = storage->list();
  ASSERT_TRUE(list.is_ok());
  std::vector<std::string> names;
  for (const auto& c : *list) names.push_back(fs::path(c.path).filename().string());
  EXPECT_EQ(names, (std::vector<std::string>{"savepoint-2", "chk-4", "chk-5"}));
}

TEST_F(CheckpointStorageTest, ACheckpointWithoutManifestIsSkippedAndTheOneBeforeIsUsed) {
  auto storage = CheckpointStorage::open(dir_);
  ASSERT_TRUE(storage.is_ok());
  ASSERT_TRUE(storage->write(sample(3)).is_ok());
  ASSERT_TRUE(storage->write(sample(4)).is_ok());
  // A run killed while writing checkpoint 4 leaves its state files but no manifest.
  fs::remove(dir_ + "/chk-4/MANIFEST");
  auto list = storage->list();
  ASSERT_TRUE(list.is_ok());
  EXPECT_FALSE(list->back().usable);
  EXPECT_NE(list->back().status.find("no manifest"), std::string::npos) << list->back().status;
  auto loaded = storage->load_latest();
  ASSERT_TRUE(loaded.is_ok() && loaded->has_value());
  EXPECT_EQ((*loaded)->checkpoint_id, 3);
  // The next checkpoint removes the incomplete one.
  ASSERT_TRUE(storage->write(sample(5)).is_ok());
  EXPECT_FALSE(fs::exists(dir_ + "/chk-4"));
}

TEST_F(CheckpointStorageTest, DamagedStateFilesAndManifestsAreDetectedAndSkipped) {
  auto storage = CheckpointStorage::open(dir_);
  ASSERT_TRUE(storage.is_ok());
  ASSERT_TRUE(storage->write(sample(1)).is_ok());
  ASSERT_TRUE(storage->write(sample(2)).is_ok());
  ASSERT_TRUE(storage->write(sample(3)).is_ok());
  // Checkpoint 3: a flipped bit in a state file. Checkpoint 2: a truncated manifest.
  std::string state_file;
  for (const auto& e : fs::directory_iterator(dir_ + "/chk-3")) {
    if (e.path().extension() == ".state") state_file = e.path().string();
  }
  damage(state_file, 3);
  fs::resize_file(dir_ + "/chk-2/MANIFEST", fs::file_size(dir_ + "/chk-2/MANIFEST") - 5);

  auto bad_file = load_checkpoint(dir_ + "/chk-3");
  ASSERT_FALSE(bad_file.is_ok());
  EXPECT_NE(bad_file.status().message().find("fails its checksum"), std::string::npos)
      << bad_file.status().message();
  EXPECT_NE(bad_file.status().message().find(state_file), std::string::npos);
  auto bad_manifest = read_manifest(dir_ + "/chk-2");
  ASSERT_TRUE(bad_manifest.is_ok());
  EXPECT_FALSE(bad_manifest->usable);
  EXPECT_NE(bad_manifest->status.find("damaged manifest"), std::string::npos)
      << bad_manifest->status;

  auto loaded = storage->load_latest();
  ASSERT_TRUE(loaded.is_ok() && loaded->has_value());
  EXPECT_EQ((*loaded)->checkpoint_id, 1);
}

TEST_F(CheckpointStorageTest, CheckpointsOfAnotherJobAreNotRestored) {
  auto storage = CheckpointStorage::open(dir_);
  ASSERT_TRUE(storage.is_ok());
  ASSERT_TRUE(storage->write(sample(1, "fraud")).is_ok());
  ASSERT_TRUE(storage->write(sample(2, "nexmark-q5")).is_ok());
  auto fraud = storage->load_latest("fraud");
  ASSERT_TRUE(fraud.is_ok() && fraud->has_value());
  EXPECT_EQ((*fraud)->checkpoint_id, 1);
  auto none = storage->load_latest("q7");
  ASSERT_TRUE(none.is_ok());
  EXPECT_FALSE(none->has_value());
}

TEST_F(CheckpointStorageTest, AFileInPlaceOfTheDirectoryIsRefused) {
  { std::ofstream(dir_) << "x"; }
  auto storage = CheckpointStorage::open(dir_);
  ASSERT_FALSE(storage.is_ok());
  EXPECT_NE(storage.status().message().find("is not a directory"), std::string::npos);
  fs::remove(dir_);
}

}  // namespace
}  // namespace sabot::checkpoint
