// Two-phase-commit sinks driven directly (no coordinator): an exactly-once file sink that is
// dropped without finish at random points and restored from the last completed snapshot, with
// the input since then replayed, must end with exactly the uninterrupted output, and its target
// must only ever hold the rows of completed checkpoints.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <sstream>

#include "sabot/columnar/builder.h"
#include "sabot/columnar/ipc.h"
#include "sabot/connectors/files.h"
#include "sabot/connectors/topic.h"
#include "sabot/runtime/operator.h"

namespace sabot::connectors {
namespace {

namespace fs = std::filesystem;
using columnar::field;
using columnar::RecordBatch;
using columnar::SchemaPtr;
using runtime::DeliveryGuarantee;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = "/tmp/sabot-sinks-2pc-XXXXXX";
    EXPECT_NE(::mkdtemp(tmpl.data()), nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> listing(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

SchemaPtr id_schema() {
  return columnar::schema({field("id", columnar::int64(), false), field("s", columnar::utf8())});
}

RecordBatch rows(int64_t first, int64_t n) {
  columnar::Int64Builder id;
  columnar::StringBuilder s(columnar::utf8());
  for (int64_t i = first; i < first + n; ++i) {
    id.append(i);
    std::string text = "v";  // appended piecewise: `+` trips a GCC 12 -Wrestrict false positive
    text += std::to_string(i * 7 % 13);
    s.append(text);
  }
  return RecordBatch::make(id_schema(), {id.finish(), s.finish()}).value();
}

class NullOutput final : public runtime::Output {
 public:
  Status emit(const RecordBatch&) override { return Status::ok(); }
  Status emit_watermark(Timestamp) override { return Status::ok(); }
};

runtime::OperatorContext eo_context(int subtask = 0, int parallelism = 1) {
  runtime::OperatorContext ctx;
  ctx.uid = "eo-sink";
  ctx.subtask_index = subtask;
  ctx.parallelism = parallelism;
  ctx.delivery = DeliveryGuarantee::kExactlyOnce;
  return ctx;
}

std::unique_ptr<runtime::Operator> make_sink(const runtime::OperatorFactory& f,
                                             const runtime::OperatorContext& ctx) {
  std::vector<SchemaPtr> in = {id_schema()};
  auto op = f.create(in, ctx);
  EXPECT_TRUE(op.is_ok()) << op.status().to_string();
  EXPECT_TRUE((*op)->open(ctx).is_ok());
  return std::move(op).value();
}

// The uninterrupted run's file (delivery kNone).
std::string reference_output(const FileSinkOptions& options, int64_t total) {
  TempDir dir;
  FileSinkOptions o = options;
  o.path = dir.file(fs::path(options.path).filename().string());
  auto f = file_sink(o);
  runtime::OperatorContext ctx;
  auto op = make_sink(*f, ctx);
  NullOutput out;
  if (total > 0) {
    EXPECT_TRUE(op->process_batch(rows(0, total), 0, out).is_ok());
  }
  EXPECT_TRUE(op->finish(out).is_ok());
  op.reset();
  return read_file(o.path);
}

// Runs `total` rows through an exactly-once sink in random batches with a checkpoint every few
// batches, crashing (dropping the instance) at random points and restoring from the last
// completed snapshot; returns the number of crashes. After every completed checkpoint the target
// must equal the reference output of the rows before it.
int run_with_crashes(const FileSinkOptions& options, int64_t total, uint64_t seed,
                     const std::function<std::string(int64_t)>& prefix_of) {
  std::mt19937_64 rng(seed);
  auto factory = file_sink(options);
  NullOutput out;
  const runtime::OperatorContext ctx = eo_context();
  struct Completed {
    std::string snapshot;
    int64_t position;
    int64_t id;
  };
  std::optional<Completed> completed;
  int crashes = 0;
  int64_t next_id = 1;
  for (;;) {
    auto op = make_sink(*factory, ctx);
    int64_t pos = 0;
    if (completed) {
      Status s = op->restore_state(completed->snapshot);
      EXPECT_TRUE(s.is_ok()) << s.to_string();
      pos = completed->position;
      EXPECT_EQ(read_file(options.path), prefix_of(pos)) << "after restore";
    }
    bool crashed = false;
    while (!crashed) {
      if (pos < total) {
        const int64_t n = std::min<int64_t>(total - pos, 1 + static_cast<int64_t>(rng() % 40));
        EXPECT_TRUE(op->process_batch(rows(pos, n), 0, out).is_ok());
        pos += n;
      } else {
        EXPECT_TRUE(op->finish(out).is_ok());
      }
      const bool final = pos >= total;
      if (!final && rng() % 3 != 0) {
        if (rng() % 25 == 0) {  // a crash between barriers
          crashed = true;
        }
        continue;
      }
      // Barrier (or the final checkpoint after finish).
      const int64_t id = next_id++;
      std::string snap;
      Status s = op->snapshot_state(CheckpointId(id), &snap);
      EXPECT_TRUE(s.is_ok()) << s.to_string();
      int mode = static_cast<int>(rng() % 8);
      if (final && mode == 2) mode = 4;  // finish() ran once: the final checkpoint completes
      if (mode == 0) {  // crash after the snapshot, before the checkpoint completed
        crashed = true;
        continue;
      }
      Completed c{snap, pos, id};
      if (mode == 1) {  // the checkpoint completed, the crash came before notify
        completed = c;
        crashed = true;
        continue;
      }
      if (mode == 2) continue;  // notify skipped: a later checkpoint completes first
      completed = c;
      s = op->notify_checkpoint_complete(CheckpointId(id));
      EXPECT_TRUE(s.is_ok()) << s.to_string();
      EXPECT_EQ(read_file(options.path), prefix_of(pos)) << "after notify " << id;
      if (mode == 3 && !final) {  // crash right after notify
        crashed = true;
        continue;
      }
      if (final) return crashes;
    }
    ++crashes;
    // A crash never lets uncommitted rows into the target.
    const std::string now = read_file(options.path);
    EXPECT_EQ(now, prefix_of(completed ? completed->position : 0).substr(0, now.size()));
    if (crashes > 200) {
      ADD_FAILURE() << "too many crashes";
      return crashes;
    }
  }
}

TEST(ExactlyOnceFileSink, CrashesAtRandomPointsGiveExactlyTheUninterruptedOutput) {
  for (FileFormat format : {FileFormat::kJsonLines, FileFormat::kCsv}) {
    for (uint64_t seed = 1; seed <= 6; ++seed) {
      TempDir dir;
      FileSinkOptions options{.path = dir.file("out.txt"), .format = format, .buffer_bytes = 64};
      const int64_t total = 600;
      const std::string full = reference_output(options, total);
      auto prefix_of = [&](int64_t n) {
        return n == 0 ? std::string() : reference_output(options, n);
      };
      int crashes = run_with_crashes(options, total, seed, prefix_of);
      EXPECT_GT(crashes, 0) << "seed " << seed;
      EXPECT_EQ(read_file(options.path), full) << "seed " << seed;
      // Only the target is left: no staged files.
      EXPECT_EQ(listing(dir.path()), std::vector<std::string>{"out.txt"});
    }
  }
}

// The commit path under SIGKILL: a child process runs the sink (restoring from the last completed
// checkpoint file, the coordinator's part played by an atomic rename before notify) and reports
// progress through a pipe; the parent kills it after a random number of steps, again and again,
// until a child finishes. The file must then equal the uninterrupted output.
// The runtime may deliver notify(n-1) after the sink took snapshot n: snapshot n then lists n-1's
// staged file (committed and deleted by that notify) and n's (still staged). A restore from n
// must keep n-1's bytes and re-commit n's (seen in recovery_test's restarts).
TEST(ExactlyOnceFileSink, RestoreAfterTheEarlierCheckpointsNotifyCameAfterTheNextSnapshot) {
  TempDir dir;
  FileSinkOptions options{.path = dir.file("out.jsonl"), .buffer_bytes = 64};
  auto factory = file_sink(options);
  NullOutput out;
  const runtime::OperatorContext ctx = eo_context();
  std::string snap2;
  {
    auto op = make_sink(*factory, ctx);
    std::string snap1;
    ASSERT_TRUE(op->process_batch(rows(0, 10), 0, out).is_ok());
    ASSERT_TRUE(op->snapshot_state(CheckpointId(1), &snap1).is_ok());
    ASSERT_TRUE(op->process_batch(rows(10, 10), 0, out).is_ok());
    ASSERT_TRUE(op->snapshot_state(CheckpointId(2), &snap2).is_ok());
    ASSERT_TRUE(op->notify_checkpoint_complete(CheckpointId(1)).is_ok());
    EXPECT_EQ(read_file(options.path), reference_output(options, 10));
    ASSERT_TRUE(op->process_batch(rows(20, 5), 0, out).is_ok());
  }  // crash: checkpoint 2 completed, its notify never came
  // Twice: a second restore from the same checkpoint (after the first one's commit) is the same.
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto op = make_sink(*factory, ctx);
    Status s = op->restore_state(snap2);
    ASSERT_TRUE(s.is_ok()) << s.to_string();
    EXPECT_EQ(read_file(options.path), reference_output(options, 20)) << "restore " << attempt;
    ASSERT_TRUE(op->process_batch(rows(20, 10), 0, out).is_ok());
    if (attempt == 0) continue;  // crash again before the next checkpoint
    ASSERT_TRUE(op->finish(out).is_ok());
    std::string snap3;
    ASSERT_TRUE(op->snapshot_state(CheckpointId(3), &snap3).is_ok());
    ASSERT_TRUE(op->notify_checkpoint_complete(CheckpointId(3)).is_ok());
  }
  EXPECT_EQ(read_file(options.path), reference_output(options, 30));
}

TEST(ExactlyOnceFileSink, KilledWithSigkillAtRandomStepsGivesTheUninterruptedOutput) {
  TempDir dir;
  FileSinkOptions options{
      .path = dir.file("out.csv"), .format = FileFormat::kCsv, .buffer_bytes = 256};
  const std::string checkpoint = dir.file("completed.bin");
  const int64_t total = 20000;
  auto child = [&](int fd) {
    auto factory = file_sink(options);
    std::vector<SchemaPtr> in = {id_schema()};
    const runtime::OperatorContext ctx = eo_context();
    auto op = std::move(factory->create(in, ctx)).value();
    if (!op->open(ctx).is_ok()) ::_exit(2);
    int64_t pos = 0;
    const std::string saved = read_file(checkpoint);
    if (!saved.empty()) {
      std::memcpy(&pos, saved.data(), sizeof pos);
      if (!op->restore_state(std::string_view(saved).substr(sizeof pos)).is_ok()) ::_exit(3);
    }
    std::mt19937_64 rng(static_cast<uint64_t>(pos) * 31 + 5);
    NullOutput out;
    int64_t id = 1000 + pos;
    for (;;) {
      if (pos < total) {
        const int64_t n = std::min<int64_t>(total - pos, 1 + static_cast<int64_t>(rng() % 50));
        if (!op->process_batch(rows(pos, n), 0, out).is_ok()) ::_exit(4);
        pos += n;
      } else if (!op->finish(out).is_ok()) {
        ::_exit(5);
      }
      (void)!::write(fd, "b", 1);
      if (pos < total && rng() % 2 != 0) continue;
      std::string snap(sizeof pos, '\0');
      std::memcpy(snap.data(), &pos, sizeof pos);
      if (!op->snapshot_state(CheckpointId(++id), &snap).is_ok()) ::_exit(6);
      (void)!::write(fd, "s", 1);
      {
        std::ofstream tmp(checkpoint + ".tmp", std::ios::binary);
        tmp << snap;
      }
      if (::rename((checkpoint + ".tmp").c_str(), checkpoint.c_str()) != 0) ::_exit(7);
      (void)!::write(fd, "c", 1);
      if (!op->notify_checkpoint_complete(CheckpointId(id)).is_ok()) ::_exit(8);
      (void)!::write(fd, "n", 1);
      if (pos >= total) ::_exit(0);
    }
  };
  std::mt19937_64 rng(11);
  int kills = 0;
  for (int attempt = 0; attempt < 100; ++attempt) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(fds[0]);
      child(fds[1]);
      ::_exit(9);
    }
    ::close(fds[1]);
    const int steps = attempt < 25 ? 1 + static_cast<int>(rng() % 40) : 1 << 30;
    char c;
    int seen = 0;
    while (seen < steps && ::read(fds[0], &c, 1) == 1) ++seen;
    if (seen == steps) {
      ::kill(pid, SIGKILL);
      ++kills;
    }
    ::close(fds[0]);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    if (WIFEXITED(status)) {
      ASSERT_EQ(WEXITSTATUS(status), 0) << "child failed";
      break;
    }
    ASSERT_TRUE(WIFSIGNALED(status));
  }
  EXPECT_GE(kills, 20);
  EXPECT_EQ(read_file(options.path), reference_output(options, total));
}

TEST(ExactlyOnceFileSink, ArrowIpcOutputIsAValidStreamAfterCrashes) {
  TempDir dir;
  FileSinkOptions options{.path = dir.file("out.arrow"), .format = FileFormat::kArrowIpc};
  auto factory = file_sink(options);
  NullOutput out;
  std::string snap;
  {
    auto op = make_sink(*factory, eo_context());
    ASSERT_TRUE(op->process_batch(rows(0, 100), 0, out).is_ok());
    ASSERT_TRUE(op->snapshot_state(CheckpointId(1), &snap).is_ok());
    ASSERT_TRUE(op->notify_checkpoint_complete(CheckpointId(1)).is_ok());
    ASSERT_TRUE(op->process_batch(rows(100, 50), 0, out).is_ok());
    std::string later;
    ASSERT_TRUE(op->snapshot_state(CheckpointId(2), &later).is_ok());
    ASSERT_TRUE(op->notify_checkpoint_complete(CheckpointId(2)).is_ok());
    // Checkpoint 2 turns out damaged: recovery uses 1, dropping what 2 committed.
  }
  auto op = make_sink(*factory, eo_context());
  ASSERT_TRUE(op->restore_state(snap).is_ok());
  ASSERT_TRUE(op->process_batch(rows(100, 200), 0, out).is_ok());
  ASSERT_TRUE(op->finish(out).is_ok());
  std::string fin;
  ASSERT_TRUE(op->snapshot_state(CheckpointId(3), &fin).is_ok());
  ASSERT_TRUE(op->notify_checkpoint_complete(CheckpointId(3)).is_ok());
  const std::string bytes = read_file(options.path);
  auto reader = columnar::IpcStreamReader::open(
      columnar::Buffer::copy_of(bytes.data(), static_cast<int64_t>(bytes.size())));
  ASSERT_TRUE(reader.is_ok()) << reader.status().to_string();
  int64_t next = 0;
  for (;;) {
    auto b = reader->next();
    ASSERT_TRUE(b.is_ok()) << b.status().to_string();
    if (!b->has_value()) break;
    for (int64_t i = 0; i < (*b)->num_rows(); ++i) {
      EXPECT_EQ((*b)->column(0).value<int64_t>(i), next++);
    }
  }
  EXPECT_EQ(next, 300);
}

TEST(ExactlyOnceFileSink, OutputWithoutRowsHoldsTheCsvHeader) {
  TempDir dir;
  FileSinkOptions options{.path = dir.file("out.csv"), .format = FileFormat::kCsv};
  auto op = make_sink(*file_sink(options), eo_context());
  NullOutput out;
  ASSERT_TRUE(op->finish(out).is_ok());
  std::string snap;
  ASSERT_TRUE(op->snapshot_state(CheckpointId(1), &snap).is_ok());
  EXPECT_EQ(read_file(options.path), "");  // nothing before the checkpoint completes
  ASSERT_TRUE(op->notify_checkpoint_complete(CheckpointId(1)).is_ok());
  EXPECT_EQ(read_file(options.path), reference_output(options, 0));
  EXPECT_NE(read_file(options.path), "");
}

TEST(FileSink, StalePartsOfAnEarlierRunAreRemoved) {
  for (DeliveryGuarantee g : {DeliveryGuarantee::kNone, DeliveryGuarantee::kExactlyOnce}) {
    TempDir dir;
    for (const char* name :
         {"out-0.jsonl", "out-1.jsonl", "out-2.jsonl", "out-3.jsonl", ".out-3.jsonl.0.inprogress",
          "out.jsonl", "out-x.jsonl", "out-01.jsonl", "other.jsonl"}) {
      std::ofstream(dir.file(name)) << "old\n";
    }
    FileSinkOptions options{.path = dir.file("out.jsonl")};
    auto f = file_sink(options);
    NullOutput out;
    for (int s = 0; s < 2; ++s) {
      runtime::OperatorContext ctx = eo_context(s, 2);
      ctx.delivery = g;
      auto op = make_sink(*f, ctx);
      ASSERT_TRUE(op->process_batch(rows(s * 10, 10), 0, out).is_ok());
      ASSERT_TRUE(op->finish(out).is_ok());
      std::string snap;
      ASSERT_TRUE(op->snapshot_state(CheckpointId(1), &snap).is_ok());
      ASSERT_TRUE(op->notify_checkpoint_complete(CheckpointId(1)).is_ok());
    }
    EXPECT_EQ(listing(dir.path()),
              (std::vector<std::string>{"other.jsonl", "out-0.jsonl", "out-01.jsonl", "out-1.jsonl",
                                        "out-x.jsonl"}));
    EXPECT_EQ(read_file(dir.file("out-1.jsonl")).find("old"), std::string::npos);
  }
}

TEST(ExactlyOnceFileSink, DamagedForeignAndRescaledSnapshotsAreRefused) {
  TempDir dir;
  FileSinkOptions options{.path = dir.file("out.jsonl")};
  auto f = file_sink(options);
  NullOutput out;
  std::string snap;
  {
    auto op = make_sink(*f, eo_context());
    ASSERT_TRUE(op->process_batch(rows(0, 10), 0, out).is_ok());
    ASSERT_TRUE(op->snapshot_state(CheckpointId(1), &snap).is_ok());
  }
  for (size_t at : {size_t{10}, snap.size() / 2, snap.size() - 3}) {
    std::string bad = snap;
    bad[at] ^= 0x20;
    auto op = make_sink(*f, eo_context());
    Status s = op->restore_state(bad);
    EXPECT_FALSE(s.is_ok());
    EXPECT_NE(s.message().find("eo-sink"), std::string::npos) << s.to_string();
    EXPECT_NE(s.message().find("byte"), std::string::npos) << s.to_string();
  }
  {
    auto op = make_sink(*f, eo_context());
    Status s = op->restore_state(snap.substr(0, snap.size() - 9));
    EXPECT_FALSE(s.is_ok());
    EXPECT_NE(s.message().find("eo-sink"), std::string::npos) << s.to_string();
  }
  {
    runtime::OperatorContext ctx = eo_context();
    ctx.uid = "someone-else";
    auto op = make_sink(*f, ctx);
    Status s = op->restore_state(snap);
    EXPECT_FALSE(s.is_ok());
    EXPECT_NE(s.message().find("someone-else"), std::string::npos) << s.to_string();
  }
  {  // the checkpoint of parallelism 1 restored into subtask 0 of 2
    auto op = make_sink(*f, eo_context(0, 2));
    Status s = op->restore_state(snap);
    EXPECT_FALSE(s.is_ok());
    EXPECT_NE(s.message().find("parallelism"), std::string::npos) << s.to_string();
  }
  {  // two old snapshots into one subtask
    auto op = make_sink(*f, eo_context());
    ASSERT_TRUE(op->restore_state(snap).is_ok());
    Status s = op->restore_state(snap);
    EXPECT_FALSE(s.is_ok());
    EXPECT_NE(s.message().find("parallelism"), std::string::npos) << s.to_string();
  }
}

// Every record id a reader of `topic` sees (read_committed unless `uncommitted`), sorted.
std::vector<int64_t> topic_ids(const TopicPtr& topic, bool uncommitted = false) {
  auto reader = MemoryTopicReader::open_all(
                    topic, StartPosition::earliest(),
                    uncommitted ? IsolationLevel::kReadUncommitted : IsolationLevel::kReadCommitted)
                    .value();
  std::vector<int64_t> ids;
  for (;;) {
    auto r = reader->poll(1000, std::chrono::milliseconds(0)).value();
    for (const auto& pb : r.batches) {
      for (int64_t i = 0; i < pb.records.num_rows(); ++i) {
        std::string v(pb.records.column(kValueColumn).string_view(i));
        size_t at = v.find("\"id\":");
        EXPECT_NE(at, std::string::npos) << v;
        ids.push_back(std::stoll(v.substr(at + 5)));
      }
    }
    if (r.num_records() == 0) break;
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

std::vector<int64_t> iota_ids(int64_t n) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = i;
  return v;
}

TEST(ExactlyOnceTopicSink, CrashesAtRandomPointsGiveEveryRecordOnceToReadCommittedReaders) {
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    MemoryBroker broker;
    auto factory = topic_sink(
        {.url = "memory://out", .codec = codec::json(), .partitions = 2, .broker = &broker});
    std::mt19937_64 rng(seed);
    NullOutput out;
    const runtime::OperatorContext ctx = eo_context();
    const int64_t total = 500;
    std::optional<std::pair<std::string, int64_t>> completed;  // snapshot, position
    int64_t next_id = 1;
    int crashes = 0;
    bool hidden_seen = false;
    bool done = false;
    while (!done) {
      auto op = make_sink(*factory, ctx);
      TopicPtr topic = broker.topic("out").value();
      int64_t pos = 0;
      if (completed) {
        Status s = op->restore_state(completed->first);
        ASSERT_TRUE(s.is_ok()) << s.to_string();
        pos = completed->second;
      }
      bool crashed = false;
      while (!crashed && !done) {
        if (pos < total) {
          const int64_t n = std::min<int64_t>(total - pos, 1 + static_cast<int64_t>(rng() % 30));
          ASSERT_TRUE(op->process_batch(rows(pos, n), 0, out).is_ok());
          pos += n;
        } else {
          ASSERT_TRUE(op->finish(out).is_ok());
        }
        const bool final = pos >= total;
        if (!final && rng() % 3 != 0) {
          if (rng() % 20 == 0) crashed = true;
          continue;
        }
        const int64_t id = next_id++;
        std::string snap;
        ASSERT_TRUE(op->snapshot_state(CheckpointId(id), &snap).is_ok());
        if (topic_ids(topic, true).size() > topic_ids(topic).size()) hidden_seen = true;
        int mode = static_cast<int>(rng() % 6);
        if (final && mode == 2) mode = 4;
        if (mode == 0) {  // crash before the checkpoint completed
          crashed = true;
          continue;
        }
        if (mode == 1) {  // completed, crash before notify
          completed.emplace(snap, pos);
          crashed = true;
          continue;
        }
        if (mode == 2) continue;  // notify skipped
        completed.emplace(snap, pos);
        Status s = op->notify_checkpoint_complete(CheckpointId(id));
        ASSERT_TRUE(s.is_ok()) << s.to_string();
        ASSERT_EQ(topic_ids(topic), iota_ids(pos)) << "seed " << seed << " after notify " << id;
        if (final) done = true;
      }
      if (crashed) {
        ++crashes;
        op.reset();
        // A read_committed reader never sees records of open, prepared or aborted transactions.
        std::vector<int64_t> seen = topic_ids(topic);
        std::vector<int64_t> allowed = iota_ids(completed ? completed->second : total);
        ASSERT_TRUE(std::includes(allowed.begin(), allowed.end(), seen.begin(), seen.end()))
            << "seed " << seed;
        ASSERT_EQ(std::adjacent_find(seen.begin(), seen.end()), seen.end()) << "duplicates";
      }
    }
    EXPECT_GT(crashes, 0) << "seed " << seed;
    EXPECT_TRUE(hidden_seen) << "seed " << seed;
    TopicPtr topic = broker.topic("out").value();
    EXPECT_EQ(topic_ids(topic), iota_ids(total)) << "seed " << seed;
    for (const TxnInfo& t : topic->transactions()) {
      EXPECT_TRUE(t.state == TxnState::kCommitted || t.state == TxnState::kAborted)
          << t.transactional_id << " " << t.sequence << " " << txn_state_name(t.state);
    }
  }
}

TEST(ExactlyOnceTopicSink, DamagedSnapshotIsRefusedNamingUidAndOffset) {
  MemoryBroker broker;
  auto factory = topic_sink({.url = "memory://out", .codec = codec::json(), .broker = &broker});
  NullOutput out;
  std::string snap;
  {
    auto op = make_sink(*factory, eo_context());
    ASSERT_TRUE(op->process_batch(rows(0, 10), 0, out).is_ok());
    ASSERT_TRUE(op->snapshot_state(CheckpointId(1), &snap).is_ok());
  }
  std::string bad = snap;
  bad[snap.size() / 2] ^= 0x40;
  auto op = make_sink(*factory, eo_context());
  Status s = op->restore_state(bad);
  EXPECT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("eo-sink"), std::string::npos) << s.to_string();
  EXPECT_NE(s.message().find("byte"), std::string::npos) << s.to_string();
}

}  // namespace
}  // namespace sabot::connectors
