// Recovery end to end: a new Environment on a checkpoint directory resumes from the newest usable
// checkpoint of its job (or starts fresh with restore_latest = false), and a job that fails while
// running is restarted from its newest complete checkpoint by its RestartStrategy. The job reads a
// generator whose progress the test gates, keeps a running sum per key (keyed state) and writes an
// exactly-once file: every interrupted, resumed or restarted run must leave exactly the file of
// the uninterrupted run. Failures are injected by a map that throws at a seeded random record;
// nothing waits on wall-clock time (gates, latches and a ManualClock instead).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include "sabot/api/environment.h"

struct Row {
  int64_t key = 0;
  int64_t seq = 0;
  int64_t v = 0;
};
SABOT_RECORD(Row, key, seq, v);

namespace sabot {
namespace {

using namespace std::chrono_literals;

constexpr int kSplits = 2;
constexpr int64_t kRowsPerSplit = 3000;
constexpr int64_t kTotalRows = kSplits * kRowsPerSplit;
const std::string kJob = "recovery-job";

// Every key's rows come from one split, so that each key sees its rows in one order on every run
// (the running sums, hence the output, are then the same on every run).
Row row_at(int split, int64_t i) {
  const int64_t seq = split * kRowsPerSplit + i;
  return Row{split * 100 + (i * 7) % 11, seq, (seq * 31) % 101};
}

// What the test controls and observes of the generator, shared by every run.
struct Feed {
  std::atomic<int64_t> limit{INT64_MAX};  // rows per split the generator may give (idle beyond)
  std::atomic<int64_t> produced{0};       // rows given, all splits, since the last reset
  // Wait (spinning, yielding) until the generator has given `n` rows.
  void wait_produced(int64_t n) const {
    while (produced.load() < n) std::this_thread::yield();
  }
};

// Throws at the record with sequence number `at` while armed (once per arming).
struct Fault {
  std::atomic<int64_t> at{-1};
  std::atomic<bool> armed{false};
  std::atomic<bool> always{false};  // throw at `at` on every run
  std::atomic<int> thrown{0};
};

struct TempDir {
  std::string path;
  TempDir() {
    static std::atomic<int> counter{0};
    path = (std::filesystem::temp_directory_path() /
            ("sabot-recovery-" + std::to_string(::getpid()) + "-" + std::to_string(counter++)))
               .string();
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

std::shared_ptr<checkpoint::CheckpointStorage> open_storage(const std::string& dir) {
  auto s = checkpoint::CheckpointStorage::open(dir, {.retained = 100});
  EXPECT_TRUE(s.is_ok()) << s.status().to_string();
  return std::make_shared<checkpoint::CheckpointStorage>(std::move(*s));
}

// generator -> map (fault injection) -> key_by -> running sum per key -> file (1 subtask).
void build(Environment& env, const std::shared_ptr<Feed>& feed, const std::shared_ptr<Fault>& fault,
           const std::string& out) {
  auto gen = [feed](int split, int64_t next,
                    int64_t max_rows) -> Result<std::optional<RecordBatch>> {
    if (next >= kRowsPerSplit) return std::optional<RecordBatch>();
    const int64_t end = std::min({kRowsPerSplit, next + max_rows, feed->limit.load()});
    RowWriter<Row> w;
    for (int64_t i = next; i < end; ++i) w.append(row_at(split, i));
    feed->produced.fetch_add(w.size());
    return std::optional<RecordBatch>(w.finish());
  };
  env.from_generator("rows", record_schema<Row>(), kSplits, gen)
      .uid("rows")
      .map<Row, Row>([fault](const Row& r) {
        if (r.seq == fault->at.load() && (fault->always.load() || fault->armed.exchange(false))) {
          fault->thrown.fetch_add(1);
          throw std::runtime_error("injected failure at record " + std::to_string(r.seq));
        }
        return r;
      })
      .uid("fault")
      .key_by("key")
      .reduce<Row>([](const Row& acc, const Row& r) {
        return Row{acc.key, r.seq, acc.v + r.v};
      })
      .uid("sum")
      .to_file({.path = out, .format = FileFormat::kJsonLines})
      .set_parallelism(1)
      .uid("out");
}

EnvironmentOptions options(std::shared_ptr<checkpoint::CheckpointStorage> storage) {
  EnvironmentOptions o;
  o.parallelism = 2;
  o.worker_threads = 4;
  o.batch_size = 64;
  o.checkpoint_storage = std::move(storage);
  o.delivery = runtime::DeliveryGuarantee::kExactlyOnce;
  return o;
}

std::vector<std::string> sorted_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  std::sort(out.begin(), out.end());
  return out;
}

// The output of a run that nothing interrupts (sorted lines of the file).
const std::vector<std::string>& expected_output() {
  static const std::vector<std::string> expected = [] {
    TempDir dir;
    const std::string out = dir.path + "/out.jsonl";
    Environment env(options(nullptr));
    build(env, std::make_shared<Feed>(), std::make_shared<Fault>(), out);
    JobResult r = env.execute(kJob);
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return sorted_lines(out);
  }();
  return expected;
}

// Starts the job on `storage`, lets the generator give `limits[k]` rows per split, takes an
// on-demand checkpoint after each, then cancels the job. Returns the checkpoint ids.
std::vector<int64_t> run_and_cancel(std::shared_ptr<checkpoint::CheckpointStorage> storage,
                                    const std::string& out, std::vector<int64_t> limits) {
  auto feed = std::make_shared<Feed>();
  feed->limit = 0;
  EnvironmentOptions o = options(std::move(storage));
  o.restore_latest = false;
  Environment env(o);
  build(env, feed, std::make_shared<Fault>(), out);
  auto job = env.start(kJob);
  EXPECT_TRUE(job.is_ok()) << job.status().to_string();
  if (!job.is_ok()) return {};
  std::vector<int64_t> ids;
  for (int64_t limit : limits) {
    feed->limit = limit;
    // The source has given every row up to the gate: the checkpoint holds exactly these.
    feed->wait_produced(limit * kSplits);
    auto id = (*job)->trigger_checkpoint();
    EXPECT_TRUE(id.is_ok()) << id.status().to_string();
    if (!id.is_ok()) break;
    auto snap = (*job)->wait_for_checkpoint(*id);
    EXPECT_TRUE(snap.is_ok()) << snap.status().to_string();
    ids.push_back(id->value());
  }
  (*job)->cancel();
  Status s = (*job)->wait();
  EXPECT_EQ(s.code(), StatusCode::kCancelled) << s.to_string();
  return ids;
}

bool contains(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

int count_of(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
  return n;
}

// ---- Step 1: resume from the checkpoint directory ----

TEST(Recovery, NewEnvironmentResumesFromTheNewestCheckpointInTheDirectory) {
  const auto& expected = expected_output();
  ASSERT_EQ(expected.size(), static_cast<size_t>(kTotalRows));
  TempDir dir;
  const std::string out = dir.path + "/out.jsonl";
  const std::string chk = dir.path + "/checkpoints";
  auto ids = run_and_cancel(open_storage(chk), out, {1000});
  ASSERT_EQ(ids.size(), 1u);

  auto feed = std::make_shared<Feed>();
  Environment env(options(open_storage(chk)));
  build(env, feed, std::make_shared<Fault>(), out);
  testing::internal::CaptureStderr();
  JobResult r = env.execute(kJob);
  const std::string err = testing::internal::GetCapturedStderr();
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const std::string line =
      "restored from checkpoint " + std::to_string(ids[0]) + " (" +
      (std::filesystem::path(chk) / ("chk-" + std::to_string(ids[0]))).string() + ")\n";
  EXPECT_TRUE(contains(err, line)) << err;
  EXPECT_EQ(count_of(err, "restored from"), 1) << err;
  // It read only what the checkpoint had not covered, and the file is the uninterrupted one.
  EXPECT_EQ(feed->produced.load(), kTotalRows - 1000 * kSplits);
  EXPECT_EQ(sorted_lines(out), expected);
  EXPECT_EQ(r.restarts(), 0);
}

TEST(Recovery, GivenSnapshotSaysMemoryOrItsPath) {
  const auto& expected = expected_output();
  TempDir dir;
  const std::string out = dir.path + "/out.jsonl";
  const std::string chk = dir.path + "/checkpoints";
  auto ids = run_and_cancel(open_storage(chk), out, {700});
  ASSERT_EQ(ids.size(), 1u);
  const std::string path = chk + "/chk-" + std::to_string(ids[0]);
  auto snap = checkpoint::load_checkpoint(path);
  ASSERT_TRUE(snap.is_ok()) << snap.status().to_string();
  for (bool with_path : {false, true}) {
    EnvironmentOptions o = options(nullptr);
    o.restore_from = std::make_shared<runtime::JobSnapshot>(*snap);
    if (with_path) o.restore_from_path = path;
    Environment env(o);
    auto feed = std::make_shared<Feed>();
    build(env, feed, std::make_shared<Fault>(), out);
    testing::internal::CaptureStderr();
    JobResult r = env.execute(kJob);
    const std::string err = testing::internal::GetCapturedStderr();
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_TRUE(contains(err, "restored from checkpoint " + std::to_string(ids[0]) + " (" +
                                  (with_path ? path : "memory") + ")\n"))
        << err;
    EXPECT_EQ(feed->produced.load(), kTotalRows - 700 * kSplits);
    EXPECT_EQ(sorted_lines(out), expected);
  }
}

TEST(Recovery, RestoreLatestFalseStartsEmptyAndCheckpointNumbersContinue) {
  const auto& expected = expected_output();
  TempDir dir;
  const std::string out = dir.path + "/out.jsonl";
  const std::string chk = dir.path + "/checkpoints";
  auto ids = run_and_cancel(open_storage(chk), out, {1000, 2000});
  ASSERT_EQ(ids.size(), 2u);

  auto feed = std::make_shared<Feed>();
  EnvironmentOptions o = options(open_storage(chk));
  o.restore_latest = false;
  Environment env(o);
  build(env, feed, std::make_shared<Fault>(), out);
  testing::internal::CaptureStderr();
  JobResult r = env.execute(kJob);
  const std::string err = testing::internal::GetCapturedStderr();
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_FALSE(contains(err, "restored from")) << err;
  EXPECT_EQ(feed->produced.load(), kTotalRows);  // from the first row
  EXPECT_EQ(sorted_lines(out), expected);
  // The new run's checkpoints (at least the final one) come after the old ones, which are kept.
  auto listed = open_storage(chk)->list();
  ASSERT_TRUE(listed.is_ok());
  ASSERT_GE(listed->size(), 3u);
  EXPECT_EQ((*listed)[0].checkpoint_id, ids[0]);
  EXPECT_EQ((*listed)[1].checkpoint_id, ids[1]);
  EXPECT_GT(listed->back().checkpoint_id, ids[1]);
}

TEST(Recovery, DamagedNewestCheckpointFallsBackToThePreviousOne) {
  const auto& expected = expected_output();
  TempDir dir;
  const std::string out = dir.path + "/out.jsonl";
  const std::string chk = dir.path + "/checkpoints";
  auto ids = run_and_cancel(open_storage(chk), out, {1000, 2000});
  ASSERT_EQ(ids.size(), 2u);
  // Flip one byte of the newest checkpoint's largest state file: its CRC no longer matches.
  const std::string newest = chk + "/chk-" + std::to_string(ids[1]);
  auto manifest = checkpoint::read_manifest(newest);
  ASSERT_TRUE(manifest.is_ok() && manifest->usable);
  auto largest = std::max_element(manifest->files.begin(), manifest->files.end(),
                                  [](const auto& a, const auto& b) { return a.size < b.size; });
  ASSERT_NE(largest, manifest->files.end());
  ASSERT_GT(largest->size, 0u);
  {
    std::fstream f(newest + "/" + largest->name, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(largest->size / 2));
    char c = 0;
    f.get(c);
    f.seekp(static_cast<std::streamoff>(largest->size / 2));
    f.put(static_cast<char>(c ^ 0x5a));
  }

  // start() resumes too.
  auto feed = std::make_shared<Feed>();
  Environment env(options(open_storage(chk)));
  build(env, feed, std::make_shared<Fault>(), out);
  testing::internal::CaptureStderr();
  auto job = env.start(kJob);
  Status s = job.is_ok() ? (*job)->wait() : job.status();
  const std::string err = testing::internal::GetCapturedStderr();
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  EXPECT_TRUE(contains(err, "chk-" + std::to_string(ids[1]))) << err;  // the warning
  EXPECT_TRUE(contains(err, "restored from checkpoint " + std::to_string(ids[0]) + " (")) << err;
  EXPECT_FALSE(contains(err, "restored from checkpoint " + std::to_string(ids[1]))) << err;
  EXPECT_EQ(feed->produced.load(), kTotalRows - 1000 * kSplits);
  EXPECT_EQ(sorted_lines(out), expected);
}

}  // namespace
}  // namespace sabot
