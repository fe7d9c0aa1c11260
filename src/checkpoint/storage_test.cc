#include "sabot/checkpoint/storage.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "sabot/base/bytes.h"
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
  void TearDown() override {
    fs::remove_all(dir_);
    fs::remove_all(sources_dir());
  }

  std::string sources_dir() const { return dir_ + "-sources"; }
  // A shared file as an operator hands it over: a file of its own holding `contents`.
  SharedFile source(const std::string& name, const std::string& contents) const {
    fs::create_directories(sources_dir());
    const std::string path = sources_dir() + "/" + name;
    std::ofstream(path, std::ios::binary | std::ios::trunc) << contents;
    return {name, contents.size(), path};
  }
  static std::string contents_of(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
  }
  std::vector<std::string> shared_names() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_ + "/shared")) {
      names.push_back(e.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

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

TEST_F(CheckpointStorageTest, SharedFilesAreCopiedOnceAndReferencedByLaterCheckpoints) {
  auto storage = CheckpointStorage::open(dir_);
  ASSERT_TRUE(storage.is_ok());
  const SharedFile a = source("000011.sst", "contents of a");
  const SharedFile b = source("000012.sst", std::string(300'000, 'b') + "end of b");
  const SharedFile c = source("000013.sst", "c, the newest");
  CheckpointData first = sample(1);
  first.shared_files = {a, b};
  ASSERT_TRUE(storage->write(first).is_ok());
  CheckpointData second = sample(2);
  second.shared_files = {b, c};
  auto path = storage->write(second);
  ASSERT_TRUE(path.is_ok()) << path.status().message();

  EXPECT_EQ(shared_names(), (std::vector<std::string>{a.name, b.name, c.name}));
  EXPECT_EQ(contents_of(dir_ + "/shared/" + b.name), contents_of(b.source_path));
  EXPECT_EQ(contents_of(dir_ + "/shared/" + a.name), "contents of a");

  auto first_info = read_manifest(dir_ + "/chk-1");
  ASSERT_TRUE(first_info.is_ok() && first_info->usable) << first_info->status;
  EXPECT_EQ(first_info->shared_bytes_copied, a.size + b.size);
  auto info = read_manifest(*path);
  ASSERT_TRUE(info.is_ok() && info->usable) << info->status;
  EXPECT_EQ(info->shared_bytes_copied, c.size);  // b was already stored
  ASSERT_EQ(info->shared_files.size(), 2u);
  EXPECT_EQ(info->shared_files[0].name, b.name);
  EXPECT_EQ(info->shared_files[0].size, b.size);
  EXPECT_EQ(info->shared_files[1].name, c.name);
  EXPECT_EQ(info->shared_files[1].size, c.size);

  auto loaded = load_checkpoint(*path);
  ASSERT_TRUE(loaded.is_ok()) << loaded.status().message();
  EXPECT_EQ(loaded->shared_dir, dir_ + "/shared");
  ASSERT_EQ(loaded->shared_files.size(), 2u);
  EXPECT_EQ(loaded->shared_files[0].name, b.name);
  EXPECT_EQ(loaded->shared_files[0].size, b.size);
  EXPECT_TRUE(loaded->shared_files[0].source_path.empty());
  EXPECT_EQ(loaded->shared_files[1].name, c.name);
  EXPECT_EQ(loaded->operators.at("source").subtasks, std::vector<std::string>{"offsets 2"});
  // A trailing '/' (shell completion of --restore) finds the same directory.
  auto slash = load_checkpoint(*path + "/");
  ASSERT_TRUE(slash.is_ok()) << slash.status().message();
  EXPECT_EQ(slash->shared_dir, dir_ + "/shared");

  // A checkpoint without shared files loads with none, and its manifest lists none.
  ASSERT_TRUE(storage->write(sample(3)).is_ok());
  auto plain = load_checkpoint(dir_ + "/chk-3");
  ASSERT_TRUE(plain.is_ok()) << plain.status().message();
  EXPECT_TRUE(plain->shared_files.empty());
}

TEST_F(CheckpointStorageTest, SharedFilesNoCheckpointListsAreDeleted) {
  auto storage = CheckpointStorage::open(dir_, {.retained = 1});
  ASSERT_TRUE(storage.is_ok());
  const SharedFile a = source("a.sst", "aaaa");
  const SharedFile b = source("b.sst", "bbbbbb");
  const SharedFile c = source("c.sst", "cc");
  CheckpointData first = sample(1);
  first.shared_files = {a, b};
  ASSERT_TRUE(storage->write(first).is_ok());
  // A copy a crash interrupted.
  std::ofstream(dir_ + "/shared/d.sst.tmp") << "half";
  CheckpointData second = sample(2);
  second.shared_files = {b, c};
  ASSERT_TRUE(storage->write(second).is_ok());
  EXPECT_FALSE(fs::exists(dir_ + "/chk-1"));
  EXPECT_EQ(shared_names(), (std::vector<std::string>{b.name, c.name}));

  // A savepoint holds copies of its shared files in its own directory: it refers to nothing in
  // DIR/shared, survives the retention of checkpoints, and loads from wherever it is moved.
  CheckpointData sp = sample(3);
  sp.savepoint = true;
  sp.shared_files = {a, c};
  ASSERT_TRUE(storage->write(sp).is_ok());
  EXPECT_EQ(contents_of(dir_ + "/savepoint-3/shared/" + a.name), "aaaa");
  EXPECT_EQ(contents_of(dir_ + "/savepoint-3/shared/" + c.name), "cc");
  EXPECT_EQ(read_manifest(dir_ + "/savepoint-3")->shared_bytes_copied, a.size + c.size);
  CheckpointData fourth = sample(4);
  fourth.shared_files = {b};
  ASSERT_TRUE(storage->write(fourth).is_ok());
  EXPECT_EQ(shared_names(), (std::vector<std::string>{b.name}));  // c went with chk-2
  auto restored = load_checkpoint(dir_ + "/savepoint-3");
  ASSERT_TRUE(restored.is_ok()) << restored.status().message();
  EXPECT_EQ(restored->shared_dir, dir_ + "/savepoint-3/shared");
  const std::string moved = sources_dir() + "/moved-savepoint";
  fs::create_directories(sources_dir());
  fs::rename(dir_ + "/savepoint-3", moved);
  auto from_moved = load_checkpoint(moved);
  ASSERT_TRUE(from_moved.is_ok()) << from_moved.status().message();
  EXPECT_EQ(from_moved->shared_dir, moved + "/shared");
  EXPECT_EQ(from_moved->shared_files.size(), 2u);
  fs::rename(moved, dir_ + "/savepoint-3");

  // A savepoint written before savepoints held their files refers to DIR/shared, which keeps them.
  fs::remove_all(dir_ + "/savepoint-3/shared");
  ASSERT_TRUE(fs::copy_file(a.source_path, dir_ + "/shared/" + a.name));
  ASSERT_TRUE(fs::copy_file(c.source_path, dir_ + "/shared/" + c.name));
  ASSERT_TRUE(storage->write(sample(5)).is_ok());
  EXPECT_EQ(shared_names(), (std::vector<std::string>{a.name, c.name}));
  auto old_style = load_checkpoint(dir_ + "/savepoint-3");
  ASSERT_TRUE(old_style.is_ok()) << old_style.status().message();
  EXPECT_EQ(old_style->shared_dir, dir_ + "/shared");

  // A directory whose manifest cannot be read may list anything: nothing is deleted meanwhile.
  fs::resize_file(dir_ + "/savepoint-3/MANIFEST", 10);
  ASSERT_TRUE(storage->write(sample(6)).is_ok());
  EXPECT_EQ(shared_names(), (std::vector<std::string>{a.name, c.name}));
}

TEST_F(CheckpointStorageTest, ACheckpointWithAMissingOrTruncatedSharedFileIsRefused) {
  auto storage = CheckpointStorage::open(dir_);
  ASSERT_TRUE(storage.is_ok());
  const SharedFile a = source("a.sst", "aaaa");
  const SharedFile b = source("b.sst", "bbbbbb");
  const SharedFile c = source("c.sst", "cccccccc");
  CheckpointData one = sample(1);
  one.shared_files = {a};
  CheckpointData two = sample(2);
  two.shared_files = {a, b};
  CheckpointData three = sample(3);
  three.shared_files = {a, c};
  for (const auto* d : {&one, &two, &three}) ASSERT_TRUE(storage->write(*d).is_ok());

  fs::remove(dir_ + "/shared/c.sst");
  fs::resize_file(dir_ + "/shared/b.sst", 3);
  auto missing = load_checkpoint(dir_ + "/chk-3");
  ASSERT_FALSE(missing.is_ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kInvalidData);
  EXPECT_NE(missing.status().message().find(dir_ + "/shared/c.sst"), std::string::npos)
      << missing.status().message();
  EXPECT_NE(missing.status().message().find(dir_ + "/chk-3"), std::string::npos);
  auto truncated = load_checkpoint(dir_ + "/chk-2");
  ASSERT_FALSE(truncated.is_ok());
  EXPECT_NE(truncated.status().message().find(dir_ + "/shared/b.sst' has 3 bytes"),
            std::string::npos)
      << truncated.status().message();

  auto loaded = storage->load_latest();
  ASSERT_TRUE(loaded.is_ok() && loaded->has_value());
  EXPECT_EQ((*loaded)->checkpoint_id, 1);
}

TEST_F(CheckpointStorageTest, BadSharedFilesAreRefusedAndLeaveNoCheckpoint) {
  auto storage = CheckpointStorage::open(dir_);
  ASSERT_TRUE(storage.is_ok());
  const SharedFile good = source("good.sst", "good");
  for (const std::string name : {"", "a/b", ".", "..", "x.sst.tmp"}) {
    CheckpointData d = sample(1);
    d.shared_files = {good, {name, 4, good.source_path}};
    auto written = storage->write(d);
    ASSERT_FALSE(written.is_ok()) << "name '" << name << "'";
    EXPECT_EQ(written.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(written.status().message().find("shared file name '" + name + "'"), std::string::npos)
        << written.status().message();
    EXPECT_FALSE(fs::exists(dir_ + "/chk-1"));
  }
  CheckpointData twice = sample(1);
  twice.shared_files = {good, good};
  auto dup = storage->write(twice);
  ASSERT_FALSE(dup.is_ok());
  EXPECT_NE(dup.status().message().find("listed twice"), std::string::npos);

  CheckpointData missing = sample(2);
  missing.shared_files = {{"gone.sst", 4, sources_dir() + "/gone.sst"}};
  auto no_source = storage->write(missing);
  ASSERT_FALSE(no_source.is_ok());
  EXPECT_NE(no_source.status().message().find(sources_dir() + "/gone.sst"), std::string::npos)
      << no_source.status().message();
  EXPECT_FALSE(fs::exists(dir_ + "/chk-2"));

  CheckpointData wrong_size = sample(3);
  wrong_size.shared_files = {{"good.sst", 5, good.source_path}};
  auto mismatch = storage->write(wrong_size);
  ASSERT_FALSE(mismatch.is_ok());
  EXPECT_EQ(mismatch.status().code(), StatusCode::kInvalidData);
  EXPECT_NE(mismatch.status().message().find("'good.sst'"), std::string::npos)
      << mismatch.status().message();
  EXPECT_FALSE(fs::exists(dir_ + "/chk-3"));
  EXPECT_FALSE(fs::exists(dir_ + "/shared/good.sst.tmp"));
  EXPECT_FALSE(fs::exists(dir_ + "/shared/good.sst"));
}

TEST_F(CheckpointStorageTest, AVersion1ManifestStillLoads) {
  auto storage = CheckpointStorage::open(dir_);
  ASSERT_TRUE(storage.is_ok());
  ASSERT_TRUE(storage->write(sample(4)).is_ok());
  auto info = read_manifest(dir_ + "/chk-4");
  ASSERT_TRUE(info.is_ok() && info->usable);
  // The manifest as builds before shared files wrote it: version 1, ending after the files.
  std::string v1;
  state::SnapshotWriter w(&v1, {"checkpoint", "manifest", 1, info->max_parallelism});
  ByteWriter& b = w.begin_section(state::kOperatorWide);
  b.put_bytes(info->job_name);
  b.put<int64_t>(info->checkpoint_id);
  b.put<int64_t>(info->created_unix_ms);
  b.put<uint8_t>(0);
  b.put<uint64_t>(info->files.size());
  for (const auto& f : info->files) {
    b.put_bytes(f.uid);
    b.put<int32_t>(f.subtask);
    b.put<int32_t>(f.parallelism);
    b.put_bytes(f.name);
    b.put<uint64_t>(f.size);
    b.put<uint32_t>(f.crc);
  }
  w.finish();
  std::ofstream(dir_ + "/chk-4/MANIFEST", std::ios::binary | std::ios::trunc) << v1;

  auto old = read_manifest(dir_ + "/chk-4");
  ASSERT_TRUE(old.is_ok());
  ASSERT_TRUE(old->usable) << old->status;
  EXPECT_TRUE(old->shared_files.empty());
  EXPECT_EQ(old->shared_bytes_copied, 0u);
  auto loaded = storage->load_latest("job");
  ASSERT_TRUE(loaded.is_ok() && loaded->has_value());
  EXPECT_EQ((*loaded)->checkpoint_id, 4);
  EXPECT_EQ((*loaded)->operators.at("source").subtasks, std::vector<std::string>{"offsets 4"});
  EXPECT_TRUE((*loaded)->shared_files.empty());
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
