// The embedded `memory://` broker: in-process, Kafka-shaped topics (partitions, contiguous offsets
// from 0, keyed records) for the demo, for tests and for apps that need no external broker.
// Each partition is an append-only log of immutable columnar chunks, so producers append whole
// batches without per-record allocation and consumers read zero-copy slices of them.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sabot/base/ids.h"
#include "sabot/base/status.h"
#include "sabot/columnar/array.h"
#include "sabot/columnar/builder.h"
#include "sabot/columnar/record_batch.h"

namespace sabot::connectors {

// The columns of every record chunk and of every polled batch, in this order:
//   key: binary (null = no key), value: binary (null = tombstone), timestamp: timestamp[ms] not
//   null.
// The offset of row i of a chunk is its base offset + i; the partition is the chunk's.
const columnar::SchemaPtr& record_schema();
inline constexpr int kKeyColumn = 0;
inline constexpr int kValueColumn = 1;
inline constexpr int kTimestampColumn = 2;

// ---------------------------------------------------------------------------------------------
// Reader and writer interfaces: what source and sink operators see. The Kafka connector implements
// the same two, so they stay small and shaped like Kafka's consumer (assign/poll/seek/position)
// and producer (send/flush).

// Records of one partition returned by a poll: a zero-copy slice of the partition's log.
struct PartitionBatch {
  PartitionId partition;
  int64_t base_offset = 0;        // offset of row 0; row i has offset base_offset + i
  columnar::RecordBatch records;  // record_schema(): key, value, timestamp
  // Readers of brokers with message headers (kafka://): one utf8 JSON object per record, when the
  // reader was asked for them. Absent otherwise.
  std::optional<columnar::Array> headers;
  int64_t end_offset() const { return base_offset + records.num_rows(); }
};

struct PollResult {
  // In partition order of the poll (rotating between polls for fairness); one partition may appear
  // several times, in offset order, when the records span several chunks.
  std::vector<PartitionBatch> batches;
  // True when the topic is closed and every assigned partition has been read to its end: a bounded
  // job has seen everything. May come with the last records.
  bool end_of_input = false;
  int64_t num_records() const;
};

// Where a reader starts in a partition.
struct StartPosition {
  enum class Kind : uint8_t { kEarliest, kLatest, kOffset, kTimestamp };
  Kind kind = Kind::kEarliest;
  int64_t offset = 0;  // kOffset: the offset; kTimestamp: milliseconds since the epoch

  static StartPosition earliest() { return {Kind::kEarliest, 0}; }
  // The end offset when the reader is opened: only records produced afterwards are read.
  static StartPosition latest() { return {Kind::kLatest, 0}; }
  // A given next offset, e.g. from a checkpoint; must be within [0, end offset].
  static StartPosition at(int64_t offset) { return {Kind::kOffset, offset}; }
  // The first record whose timestamp is at or after `time` (the end when none is); kafka://
  // only (Kafka's offsetsForTimes).
  static StartPosition at_time(Timestamp time) { return {Kind::kTimestamp, time.millis()}; }
};

struct PartitionAssignment {
  PartitionId partition;
  StartPosition start = StartPosition::earliest();
};

// A consumer of an assigned set of partitions. One thread uses a reader at a time; wakeup() may be
// called from any thread.
class RecordReader {
 public:
  virtual ~RecordReader() = default;

  // Returns up to max_records (>= 1) records that follow the current positions and advances them.
  // Waits up to `timeout` while there is nothing to read and the input has not ended; returns an
  // empty result on timeout or wakeup(). `out` is cleared first; its vector is reused.
  virtual Status poll_into(int64_t max_records, std::chrono::milliseconds timeout,
                           PollResult& out) = 0;
  Result<PollResult> poll(int64_t max_records, std::chrono::milliseconds timeout);

  // The next offset the reader will return for `partition` (what a checkpoint stores).
  virtual Result<int64_t> position(PartitionId partition) const = 0;
  // Sets the next offset to read; must be within [0, end offset].
  virtual Status seek(PartitionId partition, int64_t offset) = 0;
  // The high watermark: the offset the next appended record of `partition` will get. Lag is
  // end_offset - position.
  virtual Result<int64_t> end_offset(PartitionId partition) const = 0;
  // The end offset without waiting on the network (metrics): a broker client's cached value, -1
  // when it has none yet. Default: end_offset().
  virtual Result<int64_t> cached_end_offset(PartitionId partition) const {
    return end_offset(partition);
  }
  virtual std::vector<PartitionId> assignment() const = 0;
  // Makes a blocked poll (now or the next one) return early, empty. Thread-safe.
  virtual void wakeup() = 0;
};

// A producer. One thread uses a writer at a time; create one writer per producing thread (many
// writers may write to one topic at once). Records are buffered per partition and become visible
// to readers, in send order per partition, when flushed: by flush(), close(), or when a partition's
// buffer reaches the size threshold.
class RecordWriter {
 public:
  virtual ~RecordWriter() = default;

  virtual int32_t num_partitions() const = 0;
  // Keyed records go to Kafka's default partition for the key (murmur2); records without key stick
  // to one partition until its buffer is flushed, then move to the next (Kafka's sticky
  // partitioner). Returns the partition chosen.
  virtual Result<PartitionId> send(std::optional<std::string_view> key,
                                   std::optional<std::string_view> value, Timestamp timestamp) = 0;
  virtual Status send(PartitionId partition, std::optional<std::string_view> key,
                      std::optional<std::string_view> value, Timestamp timestamp) = 0;
  // Columnar sends. keys and values are binary or utf8 (Array::make_null(binary(), n) for no keys),
  // timestamps are timestamp[ms] or int64 milliseconds without nulls; all of one length.
  // With a partition the columns become one chunk of that partition without copying (after any
  // records still buffered for it); without, rows are partitioned by key like send().
  virtual Status send_batch(PartitionId partition, const columnar::Array& keys,
                            const columnar::Array& values, const columnar::Array& timestamps) = 0;
  virtual Status send_batch(const columnar::Array& keys, const columnar::Array& values,
                            const columnar::Array& timestamps) = 0;
  // Appends every buffered record.
  virtual Status flush() = 0;
  // Flushes; later sends fail. Does not close the topic.
  virtual Status close() = 0;
};

// ---------------------------------------------------------------------------------------------
// The broker.

struct TopicOptions {
  // Number of partitions, >= 1. Fixed for the life of the topic. Default 1.
  int32_t partitions = 1;
  // 0 (default): the topic keeps every record for its lifetime. > 0: a bounded topic, for a
  // producer that runs alongside its readers (the fraud demo at any size). In each partition,
  // records that every open reader has read are dropped (the partition's start offset moves up;
  // a reader cannot start or seek below it), and an append waits while the partition holds this
  // many records that some open reader, or with no reader open yet, anyone, has not read
  // (backpressure; a chunk larger than the budget is appended once the partition is fully
  // read). close() wakes waiting appends, which then fail.
  int64_t max_unread_records = 0;
};

struct PartitionLog;  // defined in memory_broker.cc
struct LogChunk;
struct TxnRecord;

// What a reader sees of transactional records (Kafka's isolation.level).
enum class IsolationLevel : uint8_t {
  // Stops before the first record of any open transaction in a partition (the last stable offset)
  // and skips the records of aborted transactions. Non-transactional records are read as before.
  kReadCommitted,
  // Every appended record, also of open and aborted transactions.
  kReadUncommitted,
};

// The state of a transaction (see MemoryTopicWriter's transactional mode).
enum class TxnState : uint8_t {
  kOpen,       // records may still be added
  kPrepared,   // flushed and closed for writing (pre-committed); waits for commit or abort
  kCommitted,  // visible to read_committed readers; final
  kAborted,    // never visible to read_committed readers; final
};
std::string_view txn_state_name(TxnState state);

// A transaction as the topic knows it: (transactional id, sequence) names it.
struct TxnInfo {
  std::string transactional_id;
  int64_t sequence = 0;
  TxnState state = TxnState::kOpen;
  bool orphaned = false;  // the writer that opened it is gone
  int64_t records = 0;    // appended so far
};

// A topic: partitions of append-only logs. Shared by the broker's registry and by every reader and
// writer that uses it (a deleted topic lives on until the last of them lets go). Thread-safe: any
// number of threads may append, read and close at once; each partition has its own mutex, held
// only to publish or look up a chunk, never per record.
class Topic {
 public:
  Topic(std::string name, int32_t num_partitions, int64_t max_unread_records = 0);
  ~Topic();
  Topic(const Topic&) = delete;
  Topic& operator=(const Topic&) = delete;

  const std::string& name() const { return name_; }
  int32_t num_partitions() const { return num_partitions_; }

  // Appends `records` (record_schema(); utf8 key/value and int64 timestamps are accepted and
  // re-typed without copying) to `partition` as one chunk. Returns the offset of its first row.
  // Fails when the topic is closed.
  Result<int64_t> append(PartitionId partition, const columnar::RecordBatch& records);

  // The high watermark of `partition` (0 when empty). The first offset is always 0.
  Result<int64_t> end_offset(PartitionId partition) const;
  int64_t total_records() const;

  // The first offset still held by `partition`: 0 unless the topic is bounded
  // (TopicOptions::max_unread_records) and has dropped records every reader has read.
  Result<int64_t> start_offset(PartitionId partition) const;
  int64_t max_unread_records() const { return max_unread_; }

  // Marks end of input: appends fail from now on, and readers report end_of_input once they have
  // read every partition to its end. Idempotent. Wakes blocked readers and blocked appends.
  void close();
  bool is_closed() const { return closed_.load(std::memory_order_acquire); }

  // Kafka's default partition for a keyed record.
  PartitionId partition_for_key(std::string_view key) const;

  // ---- Transactions (scoped to this topic) ----
  // The last stable offset of `partition`: the first offset of its earliest open or prepared
  // transaction, or the end offset when there is none. read_committed readers stop here.
  Result<int64_t> last_stable_offset(PartitionId partition) const;
  // Commits transaction (id, sequence): its records become visible to read_committed readers,
  // which are woken. Idempotent (committing a committed transaction is OK); InvalidArgument
  // when it was aborted, NotFound when it never existed. Works after its writer is gone.
  Status commit_transaction(std::string_view transactional_id, int64_t sequence);
  // Aborts it: read_committed readers skip its records. Idempotent; InvalidArgument when it
  // was committed.
  Status abort_transaction(std::string_view transactional_id, int64_t sequence);
  // Aborts every open or prepared transaction of `transactional_id` except the sequences in
  // `keep` (the lingering transactions of a failed attempt). Only transactions whose writer is
  // gone when `only_orphaned`. Returns how many were aborted.
  Result<int64_t> abort_transactions_except(std::string_view transactional_id,
                                            const std::vector<int64_t>& keep,
                                            bool only_orphaned = true);
  // Every transaction whose transactional id starts with `prefix`, by (id, sequence).
  std::vector<TxnInfo> transactions(std::string_view prefix = {}) const;

 private:
  friend class MemoryTopicReader;
  friend class MemoryTopicWriter;

  Status check_partition(PartitionId partition) const;
  // Publishes an already valid chunk; O(1) under the partition's mutex. `txn`: the open
  // transaction the chunk belongs to (null: not transactional).
  Result<int64_t> publish(int32_t partition, columnar::RecordBatch chunk, TxnRecord* txn = nullptr);
  // Transactions: a new open transaction of `id` owned by `owner` (sequence = last + 1).
  TxnRecord* begin_txn(const std::string& id, const void* owner);
  Status resolve(TxnRecord* txn, bool commit);
  Result<TxnRecord*> find_txn(std::string_view id, int64_t sequence) const;
  void orphan_txns(const void* owner);
  // Bumps the change counter and wakes waiting readers; called after each publish and on close.
  void notify_readers();
  // Bounded topics: a reader's position in `partition` (registered on open, updated after each
  // read, removed on destruction, under the partition's mutex); drops the chunks every reader has
  // read and wakes appends waiting for room.
  void set_reader_position(int32_t partition, const void* reader, int64_t position);
  void remove_reader(int32_t partition, const void* reader);
  // The next partition for records without key, spread over the topic's writers.
  int32_t next_sticky_partition() {
    return static_cast<int32_t>(sticky_counter_.fetch_add(1, std::memory_order_relaxed) %
                                static_cast<uint32_t>(num_partitions_));
  }

  std::string name_;
  int32_t num_partitions_;
  int64_t max_unread_ = 0;  // 0: unbounded
  std::unique_ptr<PartitionLog[]> partitions_;
  std::atomic<bool> closed_{false};
  std::atomic<uint32_t> sticky_counter_{0};
  // Readers wait on cv_ for `version_` to change. version_ is written under notify_mu_ and read
  // atomically before a reader looks at the logs, so no wake-up is lost.
  std::mutex notify_mu_;
  std::condition_variable cv_;
  std::atomic<uint64_t> version_{0};
  // The transactions ever begun on this topic (kept after they resolve so that a late commit or
  // abort gets a definite answer), by (transactional id, sequence). Guarded by txn_mu_.
  mutable std::mutex txn_mu_;
  std::map<std::pair<std::string, int64_t>, std::unique_ptr<TxnRecord>, std::less<>> txns_;
};

using TopicPtr = std::shared_ptr<Topic>;

// A `memory://topic-name` URL. Topic names follow Kafka's rules: 1 to 249 characters of
// [a-zA-Z0-9._-], not "." or "..".
struct MemoryUrl {
  std::string topic;
};
Result<MemoryUrl> parse_memory_url(std::string_view url);
// InvalidArgument naming the topic and the offending character when `name` is not a valid name.
Status validate_topic_name(std::string_view name);

// A registry of topics by name. Thread-safe (one mutex, held only to look up or change the map).
class MemoryBroker {
 public:
  MemoryBroker() = default;
  MemoryBroker(const MemoryBroker&) = delete;
  MemoryBroker& operator=(const MemoryBroker&) = delete;

  // The process-wide broker that `memory://` URLs refer to. Never destroyed.
  static MemoryBroker& default_instance();

  // Creates the topic, or returns the existing one when it has the same partition count;
  // AlreadyExists when it exists with a different count.
  Result<TopicPtr> create_topic(std::string_view name, TopicOptions options = {});
  // NotFound naming the topic.
  Result<TopicPtr> topic(std::string_view name) const;
  // The topic a `memory://name` URL names (which must exist).
  Result<TopicPtr> topic_for_url(std::string_view url) const;
  // Sorted names.
  std::vector<std::string> list_topics() const;
  // Removes the topic from the registry and closes it, so its readers finish; handles still held
  // keep working for reading. NotFound when absent.
  Status delete_topic(std::string_view name);

 private:
  mutable std::mutex mu_;
  std::map<std::string, TopicPtr, std::less<>> topics_;
};

// ---------------------------------------------------------------------------------------------
// The memory broker's reader and writer.

struct WriterOptions {
  // A partition's buffered records are appended as one chunk once it holds this many records.
  // >= 1. Default 8192.
  int64_t batch_records = 8192;
  // ... or this many key and value bytes. >= 1. Default 1 MiB.
  int64_t batch_bytes = int64_t{1} << 20;
  // Non-empty: a transactional writer. Records are sent inside transactions
  // (begin_transaction, send..., commit_transaction / abort_transaction, or prepare_transaction
  // for two-phase commit); sends outside a transaction fail. The records of a transaction are
  // appended (offsets assigned) when flushed, but read_committed readers see them only once it
  // commits. A transaction covers the partitions of this one topic.
  std::string transactional_id{};
};

// Writes to one topic. Single-threaded (see RecordWriter); flushes on destruction.
class MemoryTopicWriter final : public RecordWriter {
 public:
  // InvalidArgument naming the option when options are out of range.
  static Result<std::unique_ptr<MemoryTopicWriter>> open(TopicPtr topic,
                                                         WriterOptions options = {});
  ~MemoryTopicWriter() override;

  int32_t num_partitions() const override { return topic_->num_partitions(); }
  Result<PartitionId> send(std::optional<std::string_view> key,
                           std::optional<std::string_view> value, Timestamp timestamp) override;
  Status send(PartitionId partition, std::optional<std::string_view> key,
              std::optional<std::string_view> value, Timestamp timestamp) override;
  Status send_batch(PartitionId partition, const columnar::Array& keys,
                    const columnar::Array& values, const columnar::Array& timestamps) override;
  Status send_batch(const columnar::Array& keys, const columnar::Array& values,
                    const columnar::Array& timestamps) override;
  Status flush() override;
  // Flushes; later sends fail. A transactional writer's open transaction stays unresolved.
  Status close() override;

  // ---- Transactional writers only (WriterOptions::transactional_id) ----
  // Opens a transaction and returns its sequence (1, 2, ... per transactional id on the topic).
  // InvalidArgument when one is already open.
  Result<int64_t> begin_transaction();
  // Flushes and commits the open transaction.
  Status commit_transaction();
  // Drops what is buffered and aborts the open transaction.
  Status abort_transaction();
  // Two-phase commit: flushes the open transaction and closes it for writing (prepared); it is
  // then committed or aborted through the topic by (transactional id, sequence), also after this
  // writer is gone. Returns its sequence. The writer has no open transaction afterwards.
  Result<int64_t> prepare_transaction();
  bool in_transaction() const { return txn_ != nullptr; }
  const std::string& transactional_id() const { return options_.transactional_id; }

  const Topic& topic() const { return *topic_; }

 private:
  struct PendingChunk {
    columnar::BinaryBuilder keys{columnar::binary()};
    columnar::BinaryBuilder values{columnar::binary()};
    columnar::Int64Builder timestamps{columnar::timestamp(columnar::TimeUnit::kMilli)};
    int64_t bytes = 0;
  };
  MemoryTopicWriter(TopicPtr topic, WriterOptions options);
  Status append_record(int32_t partition, std::optional<std::string_view> key,
                       std::optional<std::string_view> value, Timestamp timestamp);
  Status flush_partition(int32_t partition, bool at_threshold);
  Status check_open() const;

  TopicPtr topic_;
  WriterOptions options_;
  std::vector<PendingChunk> pending_;  // one per partition
  int32_t sticky_partition_ = -1;      // where records without key go; -1 = pick the next
  bool closed_ = false;
  std::vector<int32_t> partition_scratch_;  // reused by send_batch
  TxnRecord* txn_ = nullptr;                // the open transaction (transactional writers)
};

// Reads assigned partitions of one topic. Single-threaded except wakeup() (see RecordReader).
class MemoryTopicReader final : public RecordReader {
 public:
  // OutOfRange names the partition or offset when an assignment is outside the topic;
  // InvalidArgument when a partition is assigned twice.
  // `isolation`: read_committed (the default) never returns records of open or aborted
  // transactions; on topics without transactions both levels read the same.
  static Result<std::unique_ptr<MemoryTopicReader>> open(
      TopicPtr topic, const std::vector<PartitionAssignment>& assignments,
      IsolationLevel isolation = IsolationLevel::kReadCommitted);
  // Every partition of the topic, all from `start`.
  static Result<std::unique_ptr<MemoryTopicReader>> open_all(
      TopicPtr topic, StartPosition start = StartPosition::earliest(),
      IsolationLevel isolation = IsolationLevel::kReadCommitted);
  ~MemoryTopicReader() override;

  Status poll_into(int64_t max_records, std::chrono::milliseconds timeout,
                   PollResult& out) override;
  Result<int64_t> position(PartitionId partition) const override;
  Status seek(PartitionId partition, int64_t offset) override;
  Result<int64_t> end_offset(PartitionId partition) const override;
  std::vector<PartitionId> assignment() const override;
  void wakeup() override;

  const Topic& topic() const { return *topic_; }

 private:
  struct Assigned {
    int32_t partition;
    int64_t position;
    size_t chunk_hint;  // index of the chunk that held `position` last time; a lookup shortcut
  };
  explicit MemoryTopicReader(TopicPtr topic) : topic_(std::move(topic)) {}
  Result<Assigned*> find(PartitionId partition);
  Result<const Assigned*> find(PartitionId partition) const;
  // Moves available records of the assigned partitions into `out`; returns how many. Sets
  // `skipped` when positions moved over aborted records only.
  int64_t gather(int64_t max_records, PollResult& out, bool& skipped);
  bool at_end_of_input() const;

  TopicPtr topic_;
  std::vector<Assigned> assigned_;
  size_t next_first_ = 0;  // the partition a poll starts with, rotated for fairness
  std::atomic<bool> wakeup_{false};
  std::vector<const LogChunk*> chunk_scratch_;  // reused by gather
  IsolationLevel isolation_ = IsolationLevel::kReadCommitted;
};

}  // namespace sabot::connectors
