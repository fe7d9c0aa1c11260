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
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "sabot/api/environment.h"
#include "sabot/api/process.h"
#include "sabot/state/rocksdb_backend.h"

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

// The job started on `env`, returned once its generator has given exactly `rows_per_split` rows of
// each split (it waits there until feed->limit moves). job is null when it did not start.
struct GatedJob {
  std::shared_ptr<Feed> feed = std::make_shared<Feed>();
  std::unique_ptr<runtime::Job> job;
};
GatedJob start_gated(Environment& env, const std::string& out, int64_t rows_per_split) {
  GatedJob g;
  g.feed->limit = rows_per_split;
  build(env, g.feed, std::make_shared<Fault>(), out);
  auto job = env.start(kJob);
  EXPECT_TRUE(job.is_ok()) << job.status().to_string();
  if (!job.is_ok()) return g;
  g.job = std::move(*job);
  g.feed->wait_produced(rows_per_split * kSplits);
  return g;
}

// Starts the job on `storage`, lets the generator give `limits[k]` rows per split, takes an
// on-demand checkpoint after each, then cancels the job. Returns the checkpoint ids.
std::vector<int64_t> run_and_cancel(std::shared_ptr<checkpoint::CheckpointStorage> storage,
                                    const std::string& out, std::vector<int64_t> limits) {
  EnvironmentOptions o = options(std::move(storage));
  o.restore_latest = false;
  Environment env(o);
  GatedJob g = start_gated(env, out, 0);
  if (g.job == nullptr) return {};
  auto& feed = g.feed;
  auto& job = g.job;
  std::vector<int64_t> ids;
  for (int64_t limit : limits) {
    feed->limit = limit;
    // The source has given every row up to the gate: the checkpoint holds exactly these.
    feed->wait_produced(limit * kSplits);
    auto id = job->trigger_checkpoint();
    EXPECT_TRUE(id.is_ok()) << id.status().to_string();
    if (!id.is_ok()) break;
    auto snap = job->wait_for_checkpoint(*id);
    EXPECT_TRUE(snap.is_ok()) << snap.status().to_string();
    ids.push_back(id->value());
  }
  job->cancel();
  Status s = job->wait();
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

// ---- Savepoints ----

// A savepoint is taken on demand and outlives the retention of checkpoints; a changed job starts
// from it: operators are matched by uid (a new stateful operator starts empty), and state of an
// operator the job no longer has is refused, naming it, unless allowed.
TEST(Savepoint, OutlivesRetentionAndAChangedJobStartsFromItByUid) {
  const auto& expected = expected_output();
  TempDir dir;
  const std::string out = dir.path + "/out.jsonl";
  const std::string chk = dir.path + "/checkpoints";
  auto storage = checkpoint::CheckpointStorage::open(chk, {.retained = 1});
  ASSERT_TRUE(storage.is_ok()) << storage.status().to_string();
  auto shared = std::make_shared<checkpoint::CheckpointStorage>(std::move(*storage));

  // Run until 800 rows per split, take a savepoint, then three checkpoints further on.
  int64_t savepoint_id = 0;
  {
    Environment env(options(shared));
    GatedJob g = start_gated(env, out, 800);
    ASSERT_NE(g.job, nullptr);
    auto& feed = g.feed;
    auto& job = g.job;
    auto id = job->trigger_checkpoint(/*savepoint=*/true);
    ASSERT_TRUE(id.is_ok()) << id.status().to_string();
    ASSERT_TRUE(job->wait_for_checkpoint(*id).is_ok());
    savepoint_id = id->value();
    for (int64_t limit : {1200, 1600, 2000}) {
      feed->limit = limit;
      feed->wait_produced(limit * kSplits);
      auto c = job->trigger_checkpoint();
      ASSERT_TRUE(c.is_ok()) << c.status().to_string();
      ASSERT_TRUE(job->wait_for_checkpoint(*c).is_ok());
    }
    job->cancel();
    (void)job->wait();
  }
  auto listed = shared->list();
  ASSERT_TRUE(listed.is_ok());
  int checkpoints = 0;
  bool savepoint_kept = false;
  for (const auto& info : *listed) {
    if (info.savepoint) {
      savepoint_kept |= info.checkpoint_id == savepoint_id && info.usable;
    } else {
      ++checkpoints;
    }
  }
  EXPECT_TRUE(savepoint_kept) << "savepoint " << savepoint_id << " was deleted";
  EXPECT_EQ(checkpoints, 1) << "retention keeps one checkpoint";
  const std::string path = chk + "/savepoint-" + std::to_string(savepoint_id);
  auto snap = checkpoint::load_checkpoint(path);
  ASSERT_TRUE(snap.is_ok()) << snap.status().to_string();
  EXPECT_TRUE(snap->savepoint);

  // The job with a new stateful operator (uid "count", a side branch): the restored operators
  // continue, the new one starts empty, the file is the uninterrupted run's.
  {
    EnvironmentOptions o = options(nullptr);
    o.restore_from = std::make_shared<runtime::JobSnapshot>(*snap);
    Environment env(o);
    auto feed = std::make_shared<Feed>();
    build(env, feed, std::make_shared<Fault>(), out);
    struct Counted {
      std::mutex mu;
      std::map<int64_t, int64_t> last;  // key -> the newest running count
    };
    auto counted = std::make_shared<Counted>();
    env.from_generator("more", record_schema<Row>(), 1,
                       [](int, int64_t next, int64_t) -> Result<std::optional<RecordBatch>> {
                         if (next >= 10) return std::optional<RecordBatch>();
                         RowWriter<Row> w;
                         for (int64_t i = next; i < 10; ++i) w.append(Row{i % 3, i, 1});
                         return std::optional<RecordBatch>(w.finish());
                       })
        .uid("more")
        .key_by("key")
        .reduce<Row>([](const Row& acc, const Row& r) {
          return Row{acc.key, r.seq, acc.v + r.v};
        })
        .uid("count")
        .map<Row, Row>([counted](const Row& r) {
          std::lock_guard<std::mutex> lock(counted->mu);
          counted->last[r.key] = std::max(counted->last[r.key], r.v);
          return r;
        })
        .blackhole();
    testing::internal::CaptureStderr();
    JobResult r = env.execute(kJob);
    const std::string err = testing::internal::GetCapturedStderr();
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_TRUE(contains(err, "restored from savepoint " + std::to_string(savepoint_id))) << err;
    EXPECT_EQ(feed->produced.load(), kTotalRows - 800 * kSplits);
    EXPECT_EQ(sorted_lines(out), expected);
    // The new operator counted its 10 rows from zero: key 0 has 4 (0, 3, 6, 9), keys 1 and 2
    // have 3.
    std::lock_guard<std::mutex> lock(counted->mu);
    EXPECT_EQ(counted->last, (std::map<int64_t, int64_t>{{0, 4}, {1, 3}, {2, 3}}));
  }

  // The job without the running sum (uid "sum"): refused before anything runs, naming the uid;
  // allowed with allow_non_restored_state.
  for (bool allow : {false, true}) {
    EnvironmentOptions o = options(nullptr);
    o.restore_from = std::make_shared<runtime::JobSnapshot>(*snap);
    o.allow_non_restored_state = allow;
    Environment env(o);
    const std::string other = dir.path + "/other.jsonl";
    env.from_generator(
           "rows", record_schema<Row>(), kSplits,
           [](int split, int64_t next, int64_t max_rows) -> Result<std::optional<RecordBatch>> {
             if (next >= kRowsPerSplit) return std::optional<RecordBatch>();
             RowWriter<Row> w;
             const int64_t end = std::min(kRowsPerSplit, next + max_rows);
             for (int64_t i = next; i < end; ++i) w.append(row_at(split, i));
             return std::optional<RecordBatch>(w.finish());
           })
        .uid("rows")
        .to_file({.path = other, .format = FileFormat::kJsonLines})
        .set_parallelism(1)
        .uid("plain-out");
    JobResult r = env.execute(kJob);
    if (!allow) {
      ASSERT_FALSE(r.ok());
      EXPECT_TRUE(contains(r.status().message(), "uid 'sum'")) << r.status().to_string();
      EXPECT_FALSE(std::filesystem::exists(other)) << "nothing may run";
    } else {
      ASSERT_TRUE(r.ok()) << r.status().to_string();
      // Only the rows after the savepoint's source positions are read.
      EXPECT_EQ(sorted_lines(other).size(), static_cast<size_t>(kTotalRows - 800 * kSplits));
    }
  }
}

// request_savepoint() (what `sabot` calls on SIGUSR1) makes a running job take a savepoint and
// say where it wrote it.
TEST(Savepoint, RequestedFromOutsideTheJobIsWrittenAndAnnounced) {
  TempDir dir;
  const std::string out = dir.path + "/out.jsonl";
  auto shared = open_storage(dir.path + "/checkpoints");
  Environment env(options(shared));
  GatedJob g = start_gated(env, out, 500);
  ASSERT_NE(g.job, nullptr);
  auto& job = g.job;
  testing::internal::CaptureStderr();
  runtime::request_savepoint();
  while (job->checkpoint_stats().completed < 1) std::this_thread::yield();
  const std::string err = testing::internal::GetCapturedStderr();
  const auto stats = job->checkpoint_stats();
  const std::string path =
      dir.path + "/checkpoints/savepoint-" + std::to_string(stats.latest_completed_id);
  EXPECT_EQ(stats.latest_path, path);
  EXPECT_TRUE(contains(err, "savepoint " + std::to_string(stats.latest_completed_id) + " of job '" +
                                kJob + "' written to " + path + "\n"))
      << err;
  auto info = checkpoint::read_manifest(path);
  ASSERT_TRUE(info.is_ok()) << info.status().to_string();
  EXPECT_TRUE(info->savepoint);
  job->cancel();
  (void)job->wait();
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

// ---- Step 2: restarts ----

// Runs `env.execute(kJob)` on a thread of its own (the test drives the clock or the gate), then
// calls `on_done`.
struct Runner {
  std::optional<JobResult> result;
  std::thread thread;
  explicit Runner(
      Environment& env, std::function<void()> on_done = [] {})
      : thread([this, &env, on_done] {
          result.emplace(env.execute(kJob));
          on_done();
        }) {}
  ~Runner() {
    if (thread.joinable()) thread.join();  // after a failed ASSERT
  }
  const JobResult& join() {
    thread.join();
    return *result;
  }
};

TEST(Recovery, FailureAtARandomRecordIsRestartedAndTheOutputIsExact) {
  const auto& expected = expected_output();
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937_64 rng(seed);
    // Even seeds: a checkpoint completes before the failure; odd seeds: none does (the restart
    // starts from scratch).
    const bool checkpointed = seed % 2 == 0;
    TempDir dir;
    const std::string out = dir.path + "/out.jsonl";
    const std::string chk = dir.path + "/checkpoints";
    auto feed = std::make_shared<Feed>();
    auto fault = std::make_shared<Fault>();
    const int split = static_cast<int>(rng() % kSplits);
    int64_t gate = 0;
    if (checkpointed) {
      gate = 100 + static_cast<int64_t>(rng() % 2000);
      feed->limit = gate;
      // Beyond the gate, so that it fails only after the checkpoint.
      fault->at = row_at(split, gate + static_cast<int64_t>(rng() % (kRowsPerSplit - gate))).seq;
    } else {
      fault->at = row_at(split, static_cast<int64_t>(rng() % kRowsPerSplit)).seq;
    }
    fault->armed = true;
    ManualClock clock(Timestamp(0));
    EnvironmentOptions o = options(open_storage(chk));
    o.clock = &clock;
    o.checkpoint_interval = 100ms;  // on the ManualClock: only when the test moves it
    o.checkpoint_timeout = std::chrono::hours(24 * 365);  // never, however far the test moves it
    std::atomic<bool> writing{false};
    o.checkpoint_write_hook = [&writing](const runtime::JobSnapshot&) {
      writing = true;
      return Status::ok();
    };
    o.restart = runtime::RestartStrategy::fixed_delay(3, 0ms);
    Environment env(o);
    build(env, feed, fault, out);
    testing::internal::CaptureStderr();
    Runner runner(env);
    if (checkpointed) {
      feed->wait_produced(gate * kSplits);
      // The coordinator reads the clock when it starts, maybe only after this point: move the
      // clock until a checkpoint is being written (then it has been triggered), then wait until
      // the storage lists it complete.
      auto reader = open_storage(chk);
      while (true) {
        auto listed = reader->list();
        if (!listed.is_ok()) {
          ADD_FAILURE() << listed.status().to_string();
          break;
        }
        if (std::any_of(listed->begin(), listed->end(), [](const auto& c) { return c.usable; })) {
          break;
        }
        if (!writing.load()) clock.advance_millis(100);
        std::this_thread::yield();
      }
      feed->limit = INT64_MAX;  // now the record that fails can come
    }
    const JobResult& r = runner.join();
    const std::string err = testing::internal::GetCapturedStderr();
    ASSERT_TRUE(r.ok()) << r.status().to_string() << "\n" << err;
    EXPECT_EQ(r.restarts(), 1);
    EXPECT_EQ(fault->thrown.load(), 1);
    EXPECT_TRUE(contains(err, "job '" + kJob + "' failed: ")) << err;
    EXPECT_TRUE(contains(err, "injected failure at record " + std::to_string(fault->at.load())))
        << err;
    if (checkpointed) {
      const std::string said = "; restart 1 of 3 in 0ms from checkpoint ";
      const size_t at = err.find(said);
      ASSERT_NE(at, std::string::npos) << err;
      const size_t digits = at + said.size();
      const size_t end = err.find('\n', digits);
      ASSERT_NE(end, std::string::npos) << err;
      const std::string n = err.substr(digits, end - digits);
      ASSERT_FALSE(n.empty()) << err;
      ASSERT_EQ(n.find_first_not_of("0123456789"), std::string::npos) << err;
      EXPECT_TRUE(contains(err, "restored from checkpoint " + n + " (" + chk + "/chk-" + n + ")\n"))
          << err;
    } else {
      EXPECT_TRUE(contains(err, "; restart 1 of 3 in 0ms from the start (no checkpoint)\n")) << err;
      EXPECT_FALSE(contains(err, "restored from")) << err;
    }
    EXPECT_EQ(sorted_lines(out), expected);
  }
}

TEST(Recovery, JobThatAlwaysFailsGivesUpAfterMaxRestartsWithTheCause) {
  TempDir dir;
  const std::string out = dir.path + "/out.jsonl";
  for (int max : {0, 2}) {
    SCOPED_TRACE("max restarts " + std::to_string(max));
    auto fault = std::make_shared<Fault>();
    fault->at = row_at(1, 10).seq;
    fault->always = true;
    EnvironmentOptions o = options(nullptr);
    o.restart = max == 0 ? runtime::RestartStrategy::none()
                         : runtime::RestartStrategy::fixed_delay(max, 0ms);
    Environment env(o);
    build(env, std::make_shared<Feed>(), fault, out);
    testing::internal::CaptureStderr();
    JobResult r = env.execute(kJob);
    const std::string err = testing::internal::GetCapturedStderr();
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.restarts(), max);
    EXPECT_EQ(fault->thrown.load(), max + 1);
    const std::string msg = r.status().to_string();
    EXPECT_TRUE(contains(msg, "injected failure at record " + std::to_string(fault->at.load())))
        << msg;
    EXPECT_TRUE(contains(msg, "running job '" + kJob + "'")) << msg;
    if (max > 0) {
      EXPECT_TRUE(contains(msg, "job '" + kJob + "' failed 3 times; giving up after 2 restarts"))
          << msg;
      EXPECT_EQ(count_of(err, "job '" + kJob + "' failed: "), 2) << err;
      EXPECT_TRUE(contains(err, "; restart 2 of 2 in 0ms")) << err;
    } else {
      EXPECT_FALSE(contains(msg, "giving up")) << msg;
      EXPECT_EQ(count_of(err, "failed: "), 0) << err;
    }
  }
}

// A ManualClock that counts how often it is read, so that the test knows the restart loop has
// looked at the time after the test moved it.
class PolledClock final : public Clock {
 public:
  Timestamp now() const override {
    Timestamp t(ms_.load());
    polls_.fetch_add(1);
    return t;
  }
  int64_t monotonic_nanos() const override {
    int64_t ns = ms_.load() * 1'000'000;
    polls_.fetch_add(1);
    return ns;
  }
  void advance_millis(int64_t ms) { ms_.fetch_add(ms); }
  // Returns once the clock has been read twice more (the second read started after the first
  // one ended, so after this call, and saw the time as it is now) or `stop()` is true.
  void wait_two_reads(const std::function<bool()>& stop) const {
    const int64_t start = polls_.load();
    while (polls_.load() < start + 2 && !stop()) std::this_thread::yield();
  }

 private:
  std::atomic<int64_t> ms_{0};
  mutable std::atomic<int64_t> polls_{0};
};

// A pass-through operator that counts its open() calls: a new run of the job has started.
struct Opens {
  std::mutex mu;
  std::condition_variable cv;
  int count = 0;
  int get() {
    std::lock_guard<std::mutex> lock(mu);
    return count;
  }
};

class OpenCounter final : public runtime::Operator {
 public:
  explicit OpenCounter(std::shared_ptr<Opens> opens) : opens_(std::move(opens)) {}
  Status open(const runtime::OperatorContext&) override {
    std::lock_guard<std::mutex> lock(opens_->mu);
    ++opens_->count;
    opens_->cv.notify_all();
    return Status::ok();
  }
  Status process_batch(const RecordBatch& b, int, runtime::Output& out) override {
    return out.emit(b);
  }

 private:
  std::shared_ptr<Opens> opens_;
};

class OpenCounterFactory final : public runtime::OperatorFactory {
 public:
  explicit OpenCounterFactory(std::shared_ptr<Opens> opens) : opens_(std::move(opens)) {}
  std::string kind() const override { return "open-counter"; }
  Result<SchemaPtr> output_schema(std::span<const SchemaPtr> in) const override { return in[0]; }
  Result<std::unique_ptr<runtime::Operator>> create(
      std::span<const SchemaPtr>, const runtime::OperatorContext&) const override {
    return std::unique_ptr<runtime::Operator>(new OpenCounter(opens_));
  }

 private:
  std::shared_ptr<Opens> opens_;
};

TEST(Recovery, RestartWaitsForTheDelayOnTheJobClock) {
  PolledClock clock;
  auto opens = std::make_shared<Opens>();
  auto fault = std::make_shared<Fault>();
  fault->at = row_at(0, 5).seq;
  fault->armed = true;
  std::mutex mu;
  std::condition_variable cv;
  bool waiting = false;
  bool done = false;
  int hook_attempt = 0;
  std::chrono::milliseconds hook_delay{-1};
  EnvironmentOptions o;
  o.parallelism = 1;
  o.worker_threads = 2;
  o.clock = &clock;
  o.restart = runtime::RestartStrategy::fixed_delay(1, 10s);
  o.on_restart = [&](int attempt, const Status&, std::chrono::milliseconds delay) {
    std::lock_guard<std::mutex> lock(mu);
    waiting = true;
    hook_attempt = attempt;
    hook_delay = delay;
    cv.notify_all();
  };
  Environment env(o);
  auto feed = std::make_shared<Feed>();
  auto gen = [feed](int split, int64_t next,
                    int64_t max_rows) -> Result<std::optional<RecordBatch>> {
    if (next >= kRowsPerSplit) return std::optional<RecordBatch>();
    RowWriter<Row> w;
    for (int64_t i = next; i < std::min(kRowsPerSplit, next + max_rows); ++i) {
      w.append(row_at(split, i));
    }
    return std::optional<RecordBatch>(w.finish());
  };
  auto c = env.from_generator("rows", record_schema<Row>(), 1, gen)
               .apply(std::make_shared<OpenCounterFactory>(opens))
               .map<Row, Row>([fault](const Row& r) {
                 if (r.seq == fault->at.load() && fault->armed.exchange(false)) {
                   throw std::runtime_error("injected failure");
                 }
                 return r;
               })
               .collect();
  testing::internal::CaptureStderr();
  Runner runner(env, [&] {
    std::lock_guard<std::mutex> lock(mu);
    done = true;
    cv.notify_all();
  });
  {
    // The first run has failed and the restart loop is about to wait.
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return waiting || done; });
    ASSERT_TRUE(waiting) << "execute() returned without restarting";
  }
  EXPECT_EQ(hook_attempt, 1);
  EXPECT_EQ(hook_delay, 10s);
  const int first_run_opens = opens->get();
  EXPECT_EQ(first_run_opens, 1);
  // A broken wait restarts at once: stop looking then (the next run need not read the clock).
  auto restarted = [&] { return opens->get() != first_run_opens; };
  clock.wait_two_reads(restarted);
  EXPECT_EQ(opens->get(), first_run_opens) << "restarted before any time passed";
  clock.advance_millis(9'999);
  clock.wait_two_reads(restarted);
  EXPECT_EQ(opens->get(), first_run_opens) << "restarted 1 ms before the delay was over";
  clock.advance_millis(1);
  {
    std::unique_lock<std::mutex> lock(opens->mu);
    opens->cv.wait(lock, [&] { return opens->count > first_run_opens; });
  }
  const JobResult& r = runner.join();
  const std::string err = testing::internal::GetCapturedStderr();
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r.restarts(), 1);
  EXPECT_TRUE(contains(err, "; restart 1 of 1 in 10s from the start (no checkpoint)\n")) << err;
  // The first run failed on its only batch (all 3000 rows: batch_size is 4096), so the sink saw
  // the final run's rows only.
  EXPECT_EQ(c->num_rows(), kRowsPerSplit);
}

TEST(RestartStrategy, DelaysBeforeEachRestart) {
  using runtime::RestartStrategy;
  const RestartStrategy none = RestartStrategy::none();
  EXPECT_FALSE(none.allows(1));
  EXPECT_EQ(none.delay_before(1), 0ms);
  EXPECT_TRUE(none.validate().is_ok());

  const RestartStrategy fixed = RestartStrategy::fixed_delay(3, 200ms);
  EXPECT_TRUE(fixed.allows(3));
  EXPECT_FALSE(fixed.allows(4));
  for (int k = 1; k <= 5; ++k) EXPECT_EQ(fixed.delay_before(k), 200ms);

  const RestartStrategy backoff = RestartStrategy::exponential_backoff(20, 100ms, 1s);
  EXPECT_EQ(backoff.multiplier, 2.0);
  const std::vector<std::chrono::milliseconds> want = {100ms, 200ms, 400ms, 800ms, 1s, 1s};
  for (size_t k = 0; k < want.size(); ++k) {
    EXPECT_EQ(backoff.delay_before(static_cast<int>(k) + 1), want[k]) << "restart " << k + 1;
  }
  EXPECT_EQ(backoff.delay_before(1'000'000), 1s);  // saturates, no overflow

  const RestartStrategy slow = RestartStrategy::exponential_backoff(5, 100ms, 1h, 1.5);
  EXPECT_EQ(slow.delay_before(1), 100ms);
  EXPECT_EQ(slow.delay_before(2), 150ms);
  EXPECT_EQ(slow.delay_before(3), 225ms);
  EXPECT_TRUE(slow.validate().is_ok());

  struct Bad {
    RestartStrategy strategy;
    std::string says;
  };
  for (const Bad& b : std::vector<Bad>{
           {RestartStrategy::fixed_delay(0, 1s), "max_attempts must be >= 1"},
           {RestartStrategy::fixed_delay(2, -1ms), "delay must be >= 0"},
           {RestartStrategy::exponential_backoff(3, 1s, 100ms), "max_delay (100ms)"},
           {RestartStrategy::exponential_backoff(3, 1s, 2s, 0.5), "multiplier"},
           {RestartStrategy::exponential_backoff(3, 1s, 2s, std::nan("")), "multiplier"},
       }) {
    Status s = b.strategy.validate();
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << b.says;
    EXPECT_TRUE(contains(s.message(), b.says)) << s.message();
  }
}

TEST(RestartStrategy, InvalidStrategyIsReportedWithThePlanProblems) {
  EnvironmentOptions o;
  o.restart = runtime::RestartStrategy::fixed_delay(0, 1s);
  Environment env(o);
  env.from_records(std::vector<Row>{Row{1, 1, 1}}).blackhole();
  JobResult r = env.execute(kJob);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(contains(r.status().message(), "restart strategy 'fixed:0:1s'"))
      << r.status().to_string();
  EXPECT_EQ(r.restarts(), 0);
}

TEST(RestartStrategy, ParsesTheCommandLineForm) {
  using runtime::parse_restart_strategy;
  using runtime::RestartStrategy;
  struct Good {
    std::string text;
    RestartStrategy want;
    std::string canonical;
  };
  for (const Good& g : std::vector<Good>{
           {"none", RestartStrategy::none(), "none"},
           {"fixed:3:10s", RestartStrategy::fixed_delay(3, 10s), "fixed:3:10s"},
           {"fixed:1:0", RestartStrategy::fixed_delay(1, 0ms), "fixed:1:0ms"},
           {"fixed:2:1500ms", RestartStrategy::fixed_delay(2, 1500ms), "fixed:2:1500ms"},
           {"fixed:4:2h", RestartStrategy::fixed_delay(4, 2h), "fixed:4:2h"},
           {"backoff:5:200ms:1m", RestartStrategy::exponential_backoff(5, 200ms, 1min),
            "backoff:5:200ms:1m"},
           {"backoff:5:200ms:60000ms", RestartStrategy::exponential_backoff(5, 200ms, 1min),
            "backoff:5:200ms:1m"},
           {"backoff:2:1s:10s:1.5", RestartStrategy::exponential_backoff(2, 1s, 10s, 1.5),
            "backoff:2:1s:10s:1.5"},
       }) {
    auto got = parse_restart_strategy(g.text);
    ASSERT_TRUE(got.is_ok()) << g.text << ": " << got.status().to_string();
    EXPECT_EQ(*got, g.want) << g.text;
    EXPECT_EQ(got->to_string(), g.canonical);
    auto again = parse_restart_strategy(got->to_string());
    ASSERT_TRUE(again.is_ok());
    EXPECT_EQ(*again, g.want) << "round trip of " << g.text;
  }
  struct Bad {
    std::string text;
    std::string says;
  };
  for (const Bad& b : std::vector<Bad>{
           {"", "unknown kind ''"},
           {"retry:3:1s", "unknown kind 'retry'"},
           {"none:1", "'none' takes no values"},
           {"fixed", "fixed needs 2 values, got 0"},
           {"fixed:3", "fixed needs 2 values, got 1"},
           {"fixed:3:1s:2", "fixed needs 2 values, got 3"},
           {"fixed:x:1s", "attempts must be a whole number >= 1, got 'x'"},
           {"fixed:0:1s", "attempts must be a whole number >= 1, got '0'"},
           {"fixed:-1:1s", "attempts must be a whole number >= 1, got '-1'"},
           {"fixed:99999999999:1s", "attempts must be a whole number >= 1"},
           {"fixed:3:10", "delay: duration '10': missing unit"},
           {"fixed:3:10sec", "unknown unit 'sec'"},
           {"fixed:3:-1s", "delay: duration '-1s': expected a whole number with a unit"},
           {"fixed:3:", "delay: duration ''"},
           {"fixed:3:1.5s", "unknown unit '.5s'"},
           {"fixed:3:99999999999999h", "too large"},
           {"backoff:3:1s", "backoff needs 3 values"},
           {"backoff:3:1s:100ms", "max_delay (100ms) must be >= the initial delay (1s)"},
           {"backoff:3:x:1s", "initial delay: duration 'x'"},
           {"backoff:3:1s:y", "max delay: duration 'y'"},
           {"backoff:3:1s:2s:0.5", "multiplier must be a finite number >= 1"},
           {"backoff:3:1s:2s:fast", "multiplier must be a number >= 1, got 'fast'"},
       }) {
    auto got = parse_restart_strategy(b.text);
    ASSERT_FALSE(got.is_ok()) << "accepted '" << b.text << "'";
    EXPECT_EQ(got.status().code(), StatusCode::kInvalidArgument);
    EXPECT_TRUE(contains(got.status().message(), b.says))
        << b.text << " -> " << got.status().message();
    EXPECT_TRUE(contains(got.status().message(), "restart strategy '" + b.text + "'"))
        << got.status().message();
  }
}

// ---- Incremental RocksDB checkpoints (docs/state-backends.md) ----

struct Counted {
  int64_t key = 0;
  int64_t seq = 0;
  int64_t count = 0;
};

}  // namespace
}  // namespace sabot

SABOT_RECORD(sabot::Counted, key, seq, count);

namespace sabot {
namespace {

constexpr int64_t kIncKeys = 20'000;
constexpr int64_t kIncChanged = kIncKeys / 100;  // 1 % of the keys change between checkpoints
constexpr int64_t kIncRows = kIncKeys + kIncChanged + 3'000;

// Row i: every key once, then 1 % of them again, then a tail on a few hundred keys.
Row inc_row(int64_t i) {
  const int64_t key = i < kIncKeys ? i : (i * 37) % kIncKeys;
  return Row{key, i, i % 7};
}

// Counts each key's rows in ValueState and emits the count with every row; the first row of a key
// registers an event-time timer that only the end of the input fires (the source emits no other
// watermark), emitting the key's final count: so timers, too, must come through every restore.
class CountPerKey final : public KeyedProcessFunction<Row, Counted> {
 public:
  void open(RuntimeContext& ctx) override { count_ = ctx.value_state<int64_t>("count"); }
  void process(const Row& r, Context& ctx, Emitter<Counted>& out) override {
    const int64_t n = count_->value().value_or(0) + 1;
    count_->update(n);
    if (n == 1) ctx.register_event_time_timer(Timestamp(r.seq));
    out.emit({r.key, r.seq, n});
  }
  void on_timer(Timestamp, Context& ctx, Emitter<Counted>& out) override {
    out.emit({ctx.current_key()[0].as_int64(), -1, *count_->value()});
  }

 private:
  state::ValueState<int64_t>* count_ = nullptr;
};

// The keyed stage of the incremental-checkpoint jobs: CountPerKey (a process function), or
// deduplicate (a built-in operator whose keys are keyed state on the job's backend).
enum class IncJob { kCount, kDedup };

// Row i of the dedup job: every key once, then 1 % new keys, then a tail of repeats of old keys
// that only the remembered keys drop.
Row dedup_row(int64_t i) {
  const int64_t key = i < kIncKeys + kIncChanged ? i : (i * 37) % kIncKeys;
  return Row{key, i, i % 7};
}

// generator (1 split, gated) -> key_by -> CountPerKey or deduplicate (parallelism p) ->
// exactly-once file.
void build_counting(Environment& env, const std::shared_ptr<Feed>& feed, const std::string& out,
                    IncJob kind = IncJob::kCount) {
  auto gen = [feed, kind](int, int64_t next,
                          int64_t max_rows) -> Result<std::optional<RecordBatch>> {
    if (next >= kIncRows) return std::optional<RecordBatch>();
    const int64_t end = std::min({kIncRows, next + max_rows, feed->limit.load()});
    RowWriter<Row> w;
    for (int64_t i = next; i < end; ++i)
      w.append(kind == IncJob::kDedup ? dedup_row(i) : inc_row(i));
    feed->produced.fetch_add(w.size());
    return std::optional<RecordBatch>(w.finish());
  };
  KeyedStream keyed =
      env.from_generator("rows", record_schema<Row>(), 1, gen).uid("rows").key_by("key");
  DataStream stage = kind == IncJob::kDedup
                         ? keyed.deduplicate().uid("dedup")
                         : keyed.process(CountPerKey{}, {.time_column = "seq"}).uid("count");
  stage.to_file({.path = out, .format = FileFormat::kJsonLines}).set_parallelism(1).uid("out");
}

EnvironmentOptions counting_options(std::shared_ptr<checkpoint::CheckpointStorage> storage,
                                    const std::string& rocksdb_dir, int parallelism,
                                    bool incremental) {
  EnvironmentOptions o = options(std::move(storage));
  o.parallelism = parallelism;
  o.batch_size = 512;
  o.incremental_checkpoints = incremental;
  if (!rocksdb_dir.empty()) {
    // Small memtables and no write cache: the state reaches SST files as it would at scale.
    auto backend = state::rocksdb(rocksdb_dir,
                                  {.write_buffer_bytes = size_t{1} << 20, .write_cache_bytes = 0});
    EXPECT_TRUE(backend.is_ok()) << backend.status().to_string();
    o.state_backend = *backend;
  }
  return o;
}

// Runs the counting job at parallelism 2 until every key was seen (checkpoint 1) and then until
// 1 % of the keys changed (checkpoint 2), and cancels it. Returns the two checkpoints' manifests.
std::pair<checkpoint::CheckpointInfo, checkpoint::CheckpointInfo> two_checkpoints(
    const std::shared_ptr<checkpoint::CheckpointStorage>& storage, const std::string& dir,
    bool incremental, IncJob kind = IncJob::kCount) {
  EnvironmentOptions o = counting_options(storage, dir + "/rocks", 2, incremental);
  o.restore_latest = false;
  Environment env(o);
  auto feed = std::make_shared<Feed>();
  feed->limit = 0;
  build_counting(env, feed, dir + "/out.jsonl", kind);
  auto job = env.start("counting");
  EXPECT_TRUE(job.is_ok()) << job.status().to_string();
  if (!job.is_ok()) return {};
  std::vector<checkpoint::CheckpointInfo> infos;
  for (int64_t limit : {kIncKeys, kIncKeys + kIncChanged}) {
    feed->limit = limit;
    feed->wait_produced(limit);
    auto id = (*job)->trigger_checkpoint();
    EXPECT_TRUE(id.is_ok()) << id.status().to_string();
    if (!id.is_ok()) break;
    auto snap = (*job)->wait_for_checkpoint(*id);
    EXPECT_TRUE(snap.is_ok()) << snap.status().to_string();
    auto info = checkpoint::read_manifest(storage->dir() + "/chk-" + std::to_string(id->value()));
    EXPECT_TRUE(info.is_ok()) << info.status().to_string();
    if (info.is_ok()) infos.push_back(*info);
  }
  (*job)->cancel();
  (void)(*job)->wait();
  if (infos.size() != 2) return {};
  return {infos[0], infos[1]};
}

uint64_t shared_total(const checkpoint::CheckpointInfo& info) {
  uint64_t n = 0;
  for (const auto& f : info.shared_files) n += f.size;
  return n;
}

// After a checkpoint, 1 % of the keys change: the next incremental checkpoint copies a small part
// of what it references (the SST files of the first are shared, not copied again), where a full
// checkpoint writes the whole state again. A job restored from the incremental checkpoint at
// another parallelism (3, from 2) then finishes with exactly the output of an uninterrupted run,
// timers included.
// The output of an uninterrupted run of the counting job, sorted.
std::vector<std::string> uninterrupted_counting(const std::string& dir,
                                                IncJob kind = IncJob::kCount) {
  Environment env(counting_options(nullptr, "", 2, true));
  auto feed = std::make_shared<Feed>();
  build_counting(env, feed, dir + "/expected.jsonl", kind);
  JobResult r = env.execute("counting");
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  std::vector<std::string> expected = sorted_lines(dir + "/expected.jsonl");
  EXPECT_EQ(expected.size(), static_cast<size_t>(kind == IncJob::kDedup ? kIncKeys + kIncChanged
                                                                        : kIncRows + kIncKeys));
  return expected;
}

TEST(IncrementalCheckpoint, OnePercentChangedCopiesLittleAndRestoresAtAnotherParallelism) {
  TempDir dir;
  const std::vector<std::string> expected = uninterrupted_counting(dir.path);
  ASSERT_FALSE(HasFailure());
  auto storage = open_storage(dir.path + "/ck");
  const auto [first, second] = two_checkpoints(storage, dir.path, true);
  ASSERT_FALSE(first.shared_files.empty());
  ASSERT_FALSE(second.shared_files.empty());
  // The first checkpoint copied everything it references; the second shares most of it.
  EXPECT_EQ(first.shared_bytes_copied, shared_total(first));
  EXPECT_GT(second.shared_bytes_copied, 0u);
  EXPECT_LT(second.shared_bytes_copied * 5, shared_total(second))
      << "copied " << second.shared_bytes_copied << " of " << shared_total(second);
  size_t reused = 0;
  for (const auto& f : second.shared_files) {
    for (const auto& g : first.shared_files) reused += f.name == g.name;
  }
  EXPECT_GT(reused, 0u);
  // The same job with full checkpoints writes the whole state into each one.
  TempDir full_dir;
  auto full_storage = open_storage(full_dir.path + "/ck");
  const auto [full_first, full_second] = two_checkpoints(full_storage, full_dir.path, false);
  EXPECT_TRUE(full_second.shared_files.empty());
  std::cout << "incremental checkpoint 2 copied " << second.shared_bytes_copied << " of "
            << shared_total(second) << " shared bytes (+" << second.bytes
            << " bytes of state files); full checkpoint 2 wrote " << full_second.bytes
            << " bytes\n";
  EXPECT_LT(second.shared_bytes_copied * 5, full_second.bytes)
      << "incremental copied " << second.shared_bytes_copied << ", full wrote "
      << full_second.bytes;

  // Restore at parallelism 3 and finish: the file holds every result exactly once.
  {
    Environment env(counting_options(storage, dir.path + "/rocks3", 3, true));
    auto feed = std::make_shared<Feed>();
    build_counting(env, feed, dir.path + "/out.jsonl");
    JobResult r = env.execute("counting");
    ASSERT_TRUE(r.ok()) << r.status().to_string();
  }
  EXPECT_EQ(sorted_lines(dir.path + "/out.jsonl"), expected);
}

// A savepoint of a job checkpointing incrementally holds its SST files itself: moved away and
// restored (at parallelism 3) after the job's checkpoint directory was deleted, the job finishes
// with exactly the output of an uninterrupted run.
TEST(IncrementalCheckpoint, ASavepointRestoresWithoutTheCheckpointDirectory) {
  TempDir dir;
  const std::vector<std::string> expected = uninterrupted_counting(dir.path);
  ASSERT_FALSE(HasFailure());
  auto storage = open_storage(dir.path + "/ck");
  int64_t savepoint_id = 0;
  {
    EnvironmentOptions o = counting_options(storage, dir.path + "/rocks", 2, true);
    o.restore_latest = false;
    Environment env(o);
    auto feed = std::make_shared<Feed>();
    feed->limit = 0;
    build_counting(env, feed, dir.path + "/out.jsonl");
    auto job = env.start("counting");
    ASSERT_TRUE(job.is_ok()) << job.status().to_string();
    for (int64_t limit : {kIncKeys, kIncKeys + kIncChanged}) {  // a checkpoint, then a savepoint
      feed->limit = limit;
      feed->wait_produced(limit);
      auto id = (*job)->trigger_checkpoint(/*savepoint=*/limit != kIncKeys);
      ASSERT_TRUE(id.is_ok()) << id.status().to_string();
      auto snap = (*job)->wait_for_checkpoint(*id);
      ASSERT_TRUE(snap.is_ok()) << snap.status().to_string();
      savepoint_id = id->value();
    }
    (*job)->cancel();
    (void)(*job)->wait();
  }
  const std::string moved = dir.path + "/moved-savepoint";
  std::filesystem::rename(storage->dir() + "/savepoint-" + std::to_string(savepoint_id), moved);
  std::filesystem::remove_all(dir.path + "/ck");
  auto data = checkpoint::load_checkpoint(moved);
  ASSERT_TRUE(data.is_ok()) << data.status().to_string();
  EXPECT_FALSE(data->shared_files.empty());
  EXPECT_EQ(data->shared_dir, moved + "/shared");
  {
    EnvironmentOptions o = counting_options(nullptr, dir.path + "/rocks3", 3, true);
    o.restore_from = std::make_shared<const runtime::JobSnapshot>(std::move(*data));
    Environment env(o);
    auto feed = std::make_shared<Feed>();
    build_counting(env, feed, dir.path + "/out.jsonl");
    JobResult r = env.execute("counting");
    ASSERT_TRUE(r.ok()) << r.status().to_string();
  }
  EXPECT_EQ(sorted_lines(dir.path + "/out.jsonl"), expected);
}

// Dedup's remembered keys are keyed state on the job's backend: on RocksDB its checkpoints are
// incremental like a process function's. After 1 % new keys the second checkpoint copies a small
// part of what it references; restored at parallelism 3 from 2, the job drops every repeat of a
// key seen before the cut and emits each key exactly once.
TEST(IncrementalCheckpoint, DedupSharesItsSstFilesAndRestoresAtAnotherParallelism) {
  TempDir dir;
  const std::vector<std::string> expected = uninterrupted_counting(dir.path, IncJob::kDedup);
  ASSERT_FALSE(HasFailure());
  auto storage = open_storage(dir.path + "/ck");
  const auto [first, second] = two_checkpoints(storage, dir.path, true, IncJob::kDedup);
  ASSERT_FALSE(first.shared_files.empty());
  ASSERT_FALSE(second.shared_files.empty());
  EXPECT_EQ(first.shared_bytes_copied, shared_total(first));
  EXPECT_GT(second.shared_bytes_copied, 0u);
  EXPECT_LT(second.shared_bytes_copied * 5, shared_total(second))
      << "copied " << second.shared_bytes_copied << " of " << shared_total(second);
  {
    Environment env(counting_options(storage, dir.path + "/rocks3", 3, true));
    auto feed = std::make_shared<Feed>();
    build_counting(env, feed, dir.path + "/out.jsonl", IncJob::kDedup);
    JobResult r = env.execute("counting");
    ASSERT_TRUE(r.ok()) << r.status().to_string();
  }
  EXPECT_EQ(sorted_lines(dir.path + "/out.jsonl"), expected);
}

// Shared files that no retained checkpoint lists any more are deleted (retention 1).
TEST(IncrementalCheckpoint, SharedFilesOfDroppedCheckpointsAreDeleted) {
  TempDir dir;
  auto s = checkpoint::CheckpointStorage::open(dir.path + "/ck", {.retained = 1});
  ASSERT_TRUE(s.is_ok()) << s.status().to_string();
  auto storage = std::make_shared<checkpoint::CheckpointStorage>(std::move(*s));
  const auto [first, second] = two_checkpoints(storage, dir.path, true);
  ASSERT_FALSE(second.shared_files.empty());
  std::set<std::string> listed;
  for (const auto& f : second.shared_files) listed.insert(f.name);
  std::set<std::string> present;
  for (const auto& e : std::filesystem::directory_iterator(dir.path + "/ck/shared")) {
    present.insert(e.path().filename().string());
  }
  EXPECT_EQ(present, listed);
}

}  // namespace
}  // namespace sabot
