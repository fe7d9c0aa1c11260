#include "sabot/connectors/memory_broker.h"

#include <algorithm>
#include <deque>
#include <limits>
#include <utility>

#include "connectors/murmur2.h"
#include "sabot/base/check.h"
#include "sabot/base/logging.h"

namespace sabot::connectors {

using columnar::Array;
using columnar::ArrayData;
using columnar::RecordBatch;

// A transaction of one topic. Identity and partitions are written under the topic's txn_mu_;
// `state` is also read by publish() without it (a writer only appends to its own open one).
struct TxnRecord {
  std::string id;
  int64_t sequence = 0;
  std::atomic<TxnState> state{TxnState::kOpen};
  const void* owner = nullptr;  // the writer; null once it is gone (guarded by txn_mu_)
  std::atomic<int64_t> records{0};
  // Partitions it appended to, with its first offset there (guarded by txn_mu_).
  std::vector<std::pair<int32_t, int64_t>> partitions;
};

// One immutable chunk of a partition's log.
struct LogChunk {
  int64_t base_offset;
  RecordBatch records;
  // The transaction it belongs to (null: not transactional) and whether it was aborted (written
  // and read under the partition's mutex only: readers decide under it what to skip).
  TxnRecord* txn = nullptr;
  bool aborted = false;
  int64_t end_offset() const { return base_offset + records.num_rows(); }
};

struct PartitionLog {
  std::mutex mu;
  // Guarded by mu. A deque never moves its elements on push_back or pop_front, and chunks are
  // never changed once pushed, so a reader may keep a pointer to a chunk and use it without the
  // lock. Chunks are removed (bounded topics only) once every open reader's registered position
  // is past them; a reader registers its position only after it has sliced what it gathered, so
  // no chunk a reader is slicing is ever removed.
  std::deque<LogChunk> chunks;
  // Bounded topics, guarded by mu: the first offset still held, and each open reader's position.
  int64_t start_offset = 0;
  std::vector<std::pair<const void*, int64_t>> readers;
  std::condition_variable room;  // appends waiting for readers to catch up
  // Written under mu, read without it: the number of records published so far.
  std::atomic<int64_t> end_offset{0};
  // Set under mu by Topic::close(); once a reader sees it, end_offset is final.
  std::atomic<bool> closed{false};
  // Transactions with records here that are neither committed nor aborted, by first offset
  // (guarded by mu), and the first of those offsets (INT64_MAX: none), written under mu and
  // stored BEFORE end_offset on publish, so a reader that loads end_offset then stable_end never
  // sees records of an open transaction as stable. A partition that never saw a transaction keeps
  // INT64_MAX: the non-transactional path only pays one extra load per poll.
  std::vector<std::pair<int64_t, TxnRecord*>> open_txns;
  std::atomic<int64_t> stable_end{std::numeric_limits<int64_t>::max()};
};

namespace {

// Records larger than this are refused so that a chunk's int32 offsets cannot overflow.
constexpr int64_t kMaxRecordPartBytes = int64_t{1} << 30;
constexpr int32_t kMaxPartitions = 1 << 16;
// Chunks looked up per hold of a partition's mutex, so a poll over tiny chunks stays O(1) per hold.
constexpr size_t kMaxChunksPerLock = 64;

Status closed_error(const std::string& topic, int32_t partition) {
  return Status::invalid_argument("topic '" + topic + "' is closed; cannot append to partition " +
                                  std::to_string(partition));
}

// utf8 shares the binary layout: re-type without copying.
Result<Array> as_binary(const Array& array, std::string_view column, const std::string& topic) {
  if (array.type() == columnar::binary()) return array;
  if (array.type() == columnar::utf8()) {
    auto data = std::make_shared<ArrayData>(array.data());
    data->type = columnar::binary();
    return Array(std::move(data));
  }
  return Status::type_error("record " + std::string(column) + " column for topic '" + topic +
                            "' must be binary or utf8, got " + array.type().to_string());
}

Result<Array> as_millis(const Array& array, const std::string& topic) {
  const auto ms = columnar::timestamp(columnar::TimeUnit::kMilli);
  if (array.type() != ms && array.type() != columnar::int64()) {
    return Status::type_error("record timestamp column for topic '" + topic +
                              "' must be timestamp[ms] or int64, got " + array.type().to_string());
  }
  if (array.null_count() > 0) {
    for (int64_t i = 0; i < array.length(); ++i) {
      if (array.is_null(i)) {
        return Status::invalid_argument("record timestamp column for topic '" + topic +
                                        "' has a null at row " + std::to_string(i));
      }
    }
  }
  if (array.type() == ms) return array;
  auto data = std::make_shared<ArrayData>(array.data());
  data->type = ms;
  return Array(std::move(data));
}

Result<RecordBatch> make_chunk(const Array& keys, const Array& values, const Array& timestamps,
                               const std::string& topic) {
  if (keys.length() != values.length() || keys.length() != timestamps.length()) {
    return Status::invalid_argument("record columns for topic '" + topic +
                                    "' differ in length: keys " + std::to_string(keys.length()) +
                                    ", values " + std::to_string(values.length()) +
                                    ", timestamps " + std::to_string(timestamps.length()));
  }
  SABOT_ASSIGN_OR_RETURN(Array k, as_binary(keys, "key", topic));
  SABOT_ASSIGN_OR_RETURN(Array v, as_binary(values, "value", topic));
  SABOT_ASSIGN_OR_RETURN(Array t, as_millis(timestamps, topic));
  const int64_t n = k.length();
  return RecordBatch::make_unchecked(record_schema(), {std::move(k), std::move(v), std::move(t)},
                                     n);
}

}  // namespace

const columnar::SchemaPtr& record_schema() {
  static const columnar::SchemaPtr kSchema = columnar::schema({
      columnar::field("key", columnar::binary()),
      columnar::field("value", columnar::binary()),
      columnar::field("timestamp", columnar::timestamp(columnar::TimeUnit::kMilli),
                      /*nullable=*/false),
  });
  return kSchema;
}

int64_t PollResult::num_records() const {
  int64_t n = 0;
  for (const PartitionBatch& b : batches) n += b.records.num_rows();
  return n;
}

Result<PollResult> RecordReader::poll(int64_t max_records, std::chrono::milliseconds timeout) {
  PollResult out;
  SABOT_RETURN_IF_ERROR(poll_into(max_records, timeout, out));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Topic

Topic::Topic(std::string name, int32_t num_partitions, int64_t max_unread_records)
    : name_(std::move(name)),
      num_partitions_(num_partitions),
      max_unread_(max_unread_records > 0 ? max_unread_records : 0),
      partitions_(new PartitionLog[static_cast<size_t>(num_partitions)]) {
  SABOT_CHECK_GE(num_partitions, 1);
}

Topic::~Topic() = default;

Status Topic::check_partition(PartitionId partition) const {
  if (partition.value() < 0 || partition.value() >= num_partitions_) {
    return Status::out_of_range("partition " + std::to_string(partition.value()) +
                                " does not exist in topic '" + name_ + "' (it has " +
                                std::to_string(num_partitions_) + " partitions)");
  }
  return Status::ok();
}

Result<int64_t> Topic::append(PartitionId partition, const RecordBatch& records) {
  SABOT_RETURN_IF_ERROR(check_partition(partition));
  if (records.num_columns() != 3) {
    return Status::invalid_argument("records appended to topic '" + name_ +
                                    "' need 3 columns (key, value, timestamp), got " +
                                    std::to_string(records.num_columns()));
  }
  SABOT_ASSIGN_OR_RETURN(RecordBatch chunk,
                         make_chunk(records.column(kKeyColumn), records.column(kValueColumn),
                                    records.column(kTimestampColumn), name_));
  return publish(partition.value(), std::move(chunk));
}

Result<int64_t> Topic::publish(int32_t partition, RecordBatch chunk, TxnRecord* txn) {
  PartitionLog& log = partitions_[static_cast<size_t>(partition)];
  const int64_t n = chunk.num_rows();
  int64_t base;
  bool first_in_partition = false;
  if (txn != nullptr) {
    std::lock_guard<std::mutex> lock(txn_mu_);
    first_in_partition = std::none_of(txn->partitions.begin(), txn->partitions.end(),
                                      [&](const auto& p) { return p.first == partition; });
  }
  {
    std::unique_lock<std::mutex> lock(log.mu);
    if (max_unread_ > 0) {
      // Backpressure: wait until the slowest open reader (or, with none open, the start of the
      // log) is within the budget of the stable end. Records of open transactions do not count:
      // no reader can read them before they commit, so waiting for that would deadlock the
      // writer that holds the transaction open.
      auto unread = [&] {
        int64_t from = log.start_offset;
        if (!log.readers.empty()) {
          from = log.readers.front().second;
          for (const auto& r : log.readers) from = std::min(from, r.second);
        }
        const int64_t end = std::min(log.end_offset.load(std::memory_order_relaxed),
                                     log.stable_end.load(std::memory_order_relaxed));
        return std::max<int64_t>(0, end - from);
      };
      log.room.wait(lock, [&] {
        if (log.closed.load(std::memory_order_relaxed)) return true;
        const int64_t u = unread();
        return u == 0 || u + n <= max_unread_;
      });
    }
    if (log.closed.load(std::memory_order_relaxed)) return closed_error(name_, partition);
    base = log.end_offset.load(std::memory_order_relaxed);
    if (n == 0) return base;
    if (txn != nullptr) {
      if (txn->state.load(std::memory_order_acquire) != TxnState::kOpen) {
        return Status::invalid_argument(
            "transaction " + txn->id + "#" + std::to_string(txn->sequence) + " of topic '" + name_ +
            "' is " + std::string(txn_state_name(txn->state.load())) + "; cannot append to it");
      }
      if (first_in_partition) {
        log.open_txns.emplace_back(base, txn);
        // Before end_offset (see PartitionLog::stable_end).
        if (base < log.stable_end.load(std::memory_order_relaxed)) {
          log.stable_end.store(base, std::memory_order_release);
        }
      }
      txn->records.fetch_add(n, std::memory_order_relaxed);
    }
    log.chunks.push_back(LogChunk{base, std::move(chunk), txn});
    log.end_offset.store(base + n, std::memory_order_release);
  }
  if (first_in_partition) {
    std::lock_guard<std::mutex> lock(txn_mu_);
    txn->partitions.emplace_back(partition, base);
  }
  notify_readers();
  return base;
}

std::string_view txn_state_name(TxnState state) {
  switch (state) {
    case TxnState::kOpen:
      return "open";
    case TxnState::kPrepared:
      return "prepared";
    case TxnState::kCommitted:
      return "committed";
    case TxnState::kAborted:
      return "aborted";
  }
  return "unknown";
}

TxnRecord* Topic::begin_txn(const std::string& id, const void* owner) {
  std::lock_guard<std::mutex> lock(txn_mu_);
  int64_t sequence = 1;
  auto it = txns_.lower_bound(std::make_pair(id, std::numeric_limits<int64_t>::max()));
  if (it != txns_.begin()) {
    auto prev = std::prev(it);
    if (prev->first.first == id) sequence = prev->first.second + 1;
  }
  auto record = std::make_unique<TxnRecord>();
  record->id = id;
  record->sequence = sequence;
  record->owner = owner;
  TxnRecord* raw = record.get();
  txns_.emplace(std::make_pair(id, sequence), std::move(record));
  return raw;
}

Result<TxnRecord*> Topic::find_txn(std::string_view id, int64_t sequence) const {
  std::lock_guard<std::mutex> lock(txn_mu_);
  auto it = txns_.find(std::make_pair(std::string(id), sequence));
  if (it == txns_.end()) {
    return Status::not_found("topic '" + name_ + "' has no transaction " + std::string(id) + "#" +
                             std::to_string(sequence));
  }
  return it->second.get();
}

Status Topic::resolve(TxnRecord* txn, bool commit) {
  const TxnState target = commit ? TxnState::kCommitted : TxnState::kAborted;
  std::vector<std::pair<int32_t, int64_t>> partitions;
  {
    std::lock_guard<std::mutex> lock(txn_mu_);
    const TxnState now = txn->state.load(std::memory_order_acquire);
    if (now == target) return Status::ok();  // idempotent
    if (now == TxnState::kCommitted || now == TxnState::kAborted) {
      return Status::invalid_argument("cannot " + std::string(commit ? "commit" : "abort") +
                                      " transaction " + txn->id + "#" +
                                      std::to_string(txn->sequence) + " of topic '" + name_ +
                                      "': it is " + std::string(txn_state_name(now)));
    }
    partitions = txn->partitions;
  }
  // The partitions a publish in flight is about to add are covered: publish checks the state
  // under the partition's mutex, and a writer resolves only its own transaction after flushing.
  for (const auto& [p, first] : partitions) {
    PartitionLog& log = partitions_[static_cast<size_t>(p)];
    {
      std::lock_guard<std::mutex> lock(log.mu);
      if (!commit) {
        auto it =
            std::upper_bound(log.chunks.begin(), log.chunks.end(), first,
                             [](int64_t pos, const LogChunk& c) { return pos < c.base_offset; });
        if (it != log.chunks.begin()) --it;
        for (; it != log.chunks.end(); ++it) {
          if (it->txn == txn) it->aborted = true;
        }
      }
      std::erase_if(log.open_txns, [txn](const auto& e) { return e.second == txn; });
      int64_t stable = std::numeric_limits<int64_t>::max();
      for (const auto& e : log.open_txns) stable = std::min(stable, e.first);
      log.stable_end.store(stable, std::memory_order_release);
    }
    log.room.notify_all();
  }
  {
    std::lock_guard<std::mutex> lock(txn_mu_);
    txn->state.store(target, std::memory_order_release);
  }
  notify_readers();
  return Status::ok();
}

Result<int64_t> Topic::last_stable_offset(PartitionId partition) const {
  SABOT_RETURN_IF_ERROR(check_partition(partition));
  const PartitionLog& log = partitions_[static_cast<size_t>(partition.value())];
  const int64_t end = log.end_offset.load(std::memory_order_acquire);
  return std::min(end, log.stable_end.load(std::memory_order_acquire));
}

Status Topic::commit_transaction(std::string_view transactional_id, int64_t sequence) {
  SABOT_ASSIGN_OR_RETURN(TxnRecord * txn, find_txn(transactional_id, sequence));
  return resolve(txn, /*commit=*/true);
}

Status Topic::abort_transaction(std::string_view transactional_id, int64_t sequence) {
  SABOT_ASSIGN_OR_RETURN(TxnRecord * txn, find_txn(transactional_id, sequence));
  return resolve(txn, /*commit=*/false);
}

Result<int64_t> Topic::abort_transactions_except(std::string_view transactional_id,
                                                 const std::vector<int64_t>& keep,
                                                 bool only_orphaned) {
  std::vector<TxnRecord*> victims;
  {
    std::lock_guard<std::mutex> lock(txn_mu_);
    const std::string id(transactional_id);
    for (auto it = txns_.lower_bound(std::make_pair(id, std::numeric_limits<int64_t>::min()));
         it != txns_.end() && it->first.first == id; ++it) {
      TxnRecord* t = it->second.get();
      const TxnState st = t->state.load(std::memory_order_acquire);
      if (st == TxnState::kCommitted || st == TxnState::kAborted) continue;
      if (only_orphaned && t->owner != nullptr) continue;
      if (std::find(keep.begin(), keep.end(), t->sequence) != keep.end()) continue;
      victims.push_back(t);
    }
  }
  int64_t aborted = 0;
  for (TxnRecord* t : victims) {
    Status s = resolve(t, /*commit=*/false);
    if (s.is_ok()) {
      ++aborted;
    } else if (t->state.load() != TxnState::kCommitted) {
      return s;  // a concurrent commit wins; anything else is an error
    }
  }
  return aborted;
}

std::vector<TxnInfo> Topic::transactions(std::string_view prefix) const {
  std::vector<TxnInfo> out;
  std::lock_guard<std::mutex> lock(txn_mu_);
  for (const auto& [key, t] : txns_) {
    if (key.first.compare(0, prefix.size(), prefix) != 0) continue;
    out.push_back(TxnInfo{t->id, t->sequence, t->state.load(std::memory_order_acquire),
                          t->owner == nullptr, t->records.load(std::memory_order_relaxed)});
  }
  return out;
}

void Topic::orphan_txns(const void* owner) {
  std::lock_guard<std::mutex> lock(txn_mu_);
  for (auto& [key, t] : txns_) {
    if (t->owner == owner) t->owner = nullptr;
  }
}

Result<int64_t> Topic::end_offset(PartitionId partition) const {
  SABOT_RETURN_IF_ERROR(check_partition(partition));
  return partitions_[static_cast<size_t>(partition.value())].end_offset.load(
      std::memory_order_acquire);
}

Result<int64_t> Topic::start_offset(PartitionId partition) const {
  SABOT_RETURN_IF_ERROR(check_partition(partition));
  PartitionLog& log = partitions_[static_cast<size_t>(partition.value())];
  std::lock_guard<std::mutex> lock(log.mu);
  return log.start_offset;
}

void Topic::set_reader_position(int32_t partition, const void* reader, int64_t position) {
  PartitionLog& log = partitions_[static_cast<size_t>(partition)];
  {
    std::lock_guard<std::mutex> lock(log.mu);
    bool found = false;
    int64_t min_position = position;
    for (auto& r : log.readers) {
      if (r.first == reader) {
        r.second = position;
        found = true;
      }
      min_position = std::min(min_position, r.second);
    }
    if (!found) log.readers.emplace_back(reader, position);
    while (!log.chunks.empty() && log.chunks.front().end_offset() <= min_position) {
      log.start_offset = log.chunks.front().end_offset();
      log.chunks.pop_front();
    }
  }
  log.room.notify_all();
}

void Topic::remove_reader(int32_t partition, const void* reader) {
  PartitionLog& log = partitions_[static_cast<size_t>(partition)];
  {
    std::lock_guard<std::mutex> lock(log.mu);
    std::erase_if(log.readers, [reader](const auto& r) { return r.first == reader; });
  }
  log.room.notify_all();
}

int64_t Topic::total_records() const {
  int64_t n = 0;
  for (int32_t p = 0; p < num_partitions_; ++p) {
    n += partitions_[static_cast<size_t>(p)].end_offset.load(std::memory_order_acquire);
  }
  return n;
}

void Topic::close() {
  // Under each partition's mutex, so an append either completes before the flag or is refused:
  // a reader that sees the flag knows the partition's end offset is final.
  for (int32_t p = 0; p < num_partitions_; ++p) {
    PartitionLog& log = partitions_[static_cast<size_t>(p)];
    {
      std::lock_guard<std::mutex> lock(log.mu);
      log.closed.store(true, std::memory_order_release);
    }
    log.room.notify_all();
  }
  closed_.store(true, std::memory_order_release);
  notify_readers();
}

void Topic::notify_readers() {
  {
    std::lock_guard<std::mutex> lock(notify_mu_);
    version_.fetch_add(1, std::memory_order_release);
  }
  cv_.notify_all();
}

PartitionId Topic::partition_for_key(std::string_view key) const {
  return PartitionId(kafka_partition_for_key(key, num_partitions_));
}

// ---------------------------------------------------------------------------------------------
// URLs and the registry

Status validate_topic_name(std::string_view name) {
  if (name.empty()) return Status::invalid_argument("topic name is empty");
  if (name.size() > 249) {
    return Status::invalid_argument("topic name '" + std::string(name.substr(0, 40)) + "...' is " +
                                    std::to_string(name.size()) +
                                    " characters long; the limit is 249");
  }
  if (name == "." || name == "..") {
    return Status::invalid_argument("topic name '" + std::string(name) + "' is not allowed");
  }
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) {
      return Status::invalid_argument(
          "topic name '" + std::string(name) + "' has an invalid character '" + std::string(1, c) +
          "' at position " + std::to_string(i) + " (allowed: a-z A-Z 0-9 . _ -)");
    }
  }
  return Status::ok();
}

Result<MemoryUrl> parse_memory_url(std::string_view url) {
  constexpr std::string_view kScheme = "memory://";
  if (url.substr(0, kScheme.size()) != kScheme) {
    return Status::invalid_argument("'" + std::string(url) +
                                    "' is not a memory URL; expected memory://topic-name");
  }
  std::string_view name = url.substr(kScheme.size());
  if (name.empty()) {
    return Status::invalid_argument("memory URL '" + std::string(url) +
                                    "' names no topic; expected memory://topic-name");
  }
  Status valid = validate_topic_name(name);
  if (!valid.is_ok())
    return std::move(valid).with_context("parsing URL '" + std::string(url) + "'");
  return MemoryUrl{std::string(name)};
}

MemoryBroker& MemoryBroker::default_instance() {
  // Leaked on purpose: static destructors of other objects may still use it at exit.
  static MemoryBroker* instance = new MemoryBroker();
  return *instance;
}

Result<TopicPtr> MemoryBroker::create_topic(std::string_view name, TopicOptions options) {
  SABOT_RETURN_IF_ERROR(validate_topic_name(name));
  if (options.partitions < 1 || options.partitions > kMaxPartitions) {
    return Status::invalid_argument(
        "topic '" + std::string(name) + "': partitions must be in [1, " +
        std::to_string(kMaxPartitions) + "], got " + std::to_string(options.partitions));
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto it = topics_.find(name);
  if (it != topics_.end()) {
    if (it->second->num_partitions() != options.partitions) {
      return Status::already_exists("topic '" + std::string(name) + "' already exists with " +
                                    std::to_string(it->second->num_partitions()) +
                                    " partitions, not " + std::to_string(options.partitions));
    }
    return it->second;
  }
  if (options.max_unread_records < 0) {
    return Status::invalid_argument("topic '" + std::string(name) +
                                    "': max_unread_records must be >= 0, got " +
                                    std::to_string(options.max_unread_records));
  }
  auto topic =
      std::make_shared<Topic>(std::string(name), options.partitions, options.max_unread_records);
  topics_.emplace(std::string(name), topic);
  return topic;
}

Result<TopicPtr> MemoryBroker::topic(std::string_view name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = topics_.find(name);
  if (it == topics_.end()) {
    return Status::not_found("memory broker has no topic '" + std::string(name) + "'");
  }
  return it->second;
}

Result<TopicPtr> MemoryBroker::topic_for_url(std::string_view url) const {
  SABOT_ASSIGN_OR_RETURN(MemoryUrl parsed, parse_memory_url(url));
  return topic(parsed.topic);
}

std::vector<std::string> MemoryBroker::list_topics() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> names;
  names.reserve(topics_.size());
  for (const auto& [name, topic] : topics_) names.push_back(name);
  return names;
}

Status MemoryBroker::delete_topic(std::string_view name) {
  TopicPtr topic;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = topics_.find(name);
    if (it == topics_.end()) {
      return Status::not_found("cannot delete topic '" + std::string(name) +
                               "': memory broker has no such topic");
    }
    topic = std::move(it->second);
    topics_.erase(it);
  }
  topic->close();
  return Status::ok();
}

// ---------------------------------------------------------------------------------------------
// Writer

Result<std::unique_ptr<MemoryTopicWriter>> MemoryTopicWriter::open(TopicPtr topic,
                                                                   WriterOptions options) {
  if (topic == nullptr) return Status::invalid_argument("writer needs a topic, got null");
  if (options.batch_records < 1) {
    return Status::invalid_argument("writer for topic '" + topic->name() +
                                    "': batch_records must be >= 1, got " +
                                    std::to_string(options.batch_records));
  }
  if (options.batch_bytes < 1 || options.batch_bytes > kMaxRecordPartBytes) {
    return Status::invalid_argument("writer for topic '" + topic->name() +
                                    "': batch_bytes must be in [1, 2^30], got " +
                                    std::to_string(options.batch_bytes));
  }
  return std::unique_ptr<MemoryTopicWriter>(new MemoryTopicWriter(std::move(topic), options));
}

MemoryTopicWriter::MemoryTopicWriter(TopicPtr topic, WriterOptions options)
    : topic_(std::move(topic)),
      options_(options),
      pending_(static_cast<size_t>(topic_->num_partitions())) {}

MemoryTopicWriter::~MemoryTopicWriter() {
  // Its unresolved transactions stay resolvable by (transactional id, sequence); they are now
  // orphans, which abort_transactions_except() may abort. Buffered records of an open
  // transaction are dropped (they were never appended).
  if (!options_.transactional_id.empty()) {
    topic_->orphan_txns(this);
    return;
  }
  if (closed_) return;
  Status s = flush();
  if (!s.is_ok()) {
    SABOT_LOG(kError, "memory_broker") << "records lost when a writer of topic '" << topic_->name()
                                       << "' was destroyed: " << s.to_string();
  }
}

Status MemoryTopicWriter::check_open() const {
  if (closed_) {
    return Status::invalid_argument("writer of topic '" + topic_->name() + "' is closed");
  }
  // Fails early; publish() re-checks under the partition's mutex.
  if (topic_->is_closed())
    return Status::invalid_argument("topic '" + topic_->name() + "' is closed");
  if (!options_.transactional_id.empty() && txn_ == nullptr) {
    return Status::invalid_argument("transactional writer '" + options_.transactional_id +
                                    "' of topic '" + topic_->name() +
                                    "' has no open transaction; call begin_transaction() first");
  }
  return Status::ok();
}

Result<int64_t> MemoryTopicWriter::begin_transaction() {
  if (options_.transactional_id.empty()) {
    return Status::invalid_argument("writer of topic '" + topic_->name() +
                                    "' is not transactional (WriterOptions::transactional_id)");
  }
  if (closed_) {
    return Status::invalid_argument("writer of topic '" + topic_->name() + "' is closed");
  }
  if (txn_ != nullptr) {
    return Status::invalid_argument("transaction " + options_.transactional_id + "#" +
                                    std::to_string(txn_->sequence) + " of topic '" +
                                    topic_->name() + "' is still open");
  }
  txn_ = topic_->begin_txn(options_.transactional_id, this);
  return txn_->sequence;
}

Result<int64_t> MemoryTopicWriter::prepare_transaction() {
  if (txn_ == nullptr) {
    return Status::invalid_argument("writer '" + options_.transactional_id + "' of topic '" +
                                    topic_->name() + "' has no open transaction to prepare");
  }
  SABOT_RETURN_IF_ERROR(flush());
  TxnRecord* t = std::exchange(txn_, nullptr);
  TxnState expected = TxnState::kOpen;
  if (!t->state.compare_exchange_strong(expected, TxnState::kPrepared)) {
    return Status::invalid_argument("transaction " + t->id + "#" + std::to_string(t->sequence) +
                                    " of topic '" + topic_->name() + "' was " +
                                    std::string(txn_state_name(expected)) + " before prepare");
  }
  return t->sequence;
}

Status MemoryTopicWriter::commit_transaction() {
  if (txn_ == nullptr) {
    return Status::invalid_argument("writer '" + options_.transactional_id + "' of topic '" +
                                    topic_->name() + "' has no open transaction to commit");
  }
  SABOT_RETURN_IF_ERROR(flush());
  return topic_->resolve(std::exchange(txn_, nullptr), /*commit=*/true);
}

Status MemoryTopicWriter::abort_transaction() {
  if (txn_ == nullptr) {
    return Status::invalid_argument("writer '" + options_.transactional_id + "' of topic '" +
                                    topic_->name() + "' has no open transaction to abort");
  }
  for (PendingChunk& c : pending_) {
    if (c.keys.length() == 0) continue;
    (void)c.keys.finish();
    (void)c.values.finish();
    (void)c.timestamps.finish();
    c.bytes = 0;
  }
  return topic_->resolve(std::exchange(txn_, nullptr), /*commit=*/false);
}

Status MemoryTopicWriter::append_record(int32_t partition, std::optional<std::string_view> key,
                                        std::optional<std::string_view> value,
                                        Timestamp timestamp) {
  const int64_t key_size = key ? static_cast<int64_t>(key->size()) : 0;
  const int64_t value_size = value ? static_cast<int64_t>(value->size()) : 0;
  if (key_size > kMaxRecordPartBytes || value_size > kMaxRecordPartBytes) {
    return Status::invalid_argument("record for topic '" + topic_->name() + "' is too large (key " +
                                    std::to_string(key_size) + " bytes, value " +
                                    std::to_string(value_size) + " bytes; the limit is 2^30 each)");
  }
  PendingChunk& c = pending_[static_cast<size_t>(partition)];
  if (key) {
    c.keys.append(*key);
  } else {
    c.keys.append_null();
  }
  if (value) {
    c.values.append(*value);
  } else {
    c.values.append_null();
  }
  c.timestamps.append(timestamp.millis());
  c.bytes += key_size + value_size;
  if (c.keys.length() >= options_.batch_records || c.bytes >= options_.batch_bytes) {
    return flush_partition(partition, /*at_threshold=*/true);
  }
  return Status::ok();
}

Status MemoryTopicWriter::flush_partition(int32_t partition, bool at_threshold) {
  PendingChunk& c = pending_[static_cast<size_t>(partition)];
  const int64_t n = c.keys.length();
  if (n == 0) return Status::ok();
  const int64_t key_bytes = c.keys.data_size();
  const int64_t value_bytes = c.values.data_size();
  RecordBatch chunk = RecordBatch::make_unchecked(
      record_schema(), {c.keys.finish(), c.values.finish(), c.timestamps.finish()}, n);
  c.bytes = 0;
  if (at_threshold) {
    // A steady producer fills the next chunk alike: sizing the builders once avoids regrowing
    // (and re-zeroing) them. Not after an explicit flush, whose chunk may be small: a chunk keeps
    // its builder's capacity.
    c.keys.reserve(n);
    c.keys.reserve_bytes(key_bytes);
    c.values.reserve(n);
    c.values.reserve_bytes(value_bytes);
    c.timestamps.reserve(n);
  }
  if (sticky_partition_ == partition) sticky_partition_ = -1;
  Result<int64_t> base = topic_->publish(partition, std::move(chunk), txn_);
  if (!base.is_ok()) {
    return base.status().with_context(std::to_string(n) + " buffered records were not appended");
  }
  return Status::ok();
}

Result<PartitionId> MemoryTopicWriter::send(std::optional<std::string_view> key,
                                            std::optional<std::string_view> value,
                                            Timestamp timestamp) {
  SABOT_RETURN_IF_ERROR(check_open());
  int32_t partition;
  if (key) {
    partition = kafka_partition_for_key(*key, topic_->num_partitions());
  } else {
    if (sticky_partition_ < 0) sticky_partition_ = topic_->next_sticky_partition();
    partition = sticky_partition_;
  }
  SABOT_RETURN_IF_ERROR(append_record(partition, key, value, timestamp));
  return PartitionId(partition);
}

Status MemoryTopicWriter::send(PartitionId partition, std::optional<std::string_view> key,
                               std::optional<std::string_view> value, Timestamp timestamp) {
  SABOT_RETURN_IF_ERROR(check_open());
  SABOT_RETURN_IF_ERROR(topic_->check_partition(partition));
  return append_record(partition.value(), key, value, timestamp);
}

Status MemoryTopicWriter::send_batch(PartitionId partition, const Array& keys, const Array& values,
                                     const Array& timestamps) {
  SABOT_RETURN_IF_ERROR(check_open());
  SABOT_RETURN_IF_ERROR(topic_->check_partition(partition));
  SABOT_ASSIGN_OR_RETURN(RecordBatch chunk, make_chunk(keys, values, timestamps, topic_->name()));
  // Records sent earlier to this partition must come first.
  SABOT_RETURN_IF_ERROR(flush_partition(partition.value(), /*at_threshold=*/false));
  return topic_->publish(partition.value(), std::move(chunk), txn_).status();
}

Status MemoryTopicWriter::send_batch(const Array& keys, const Array& values,
                                     const Array& timestamps) {
  SABOT_RETURN_IF_ERROR(check_open());
  SABOT_ASSIGN_OR_RETURN(RecordBatch chunk, make_chunk(keys, values, timestamps, topic_->name()));
  const Array& k = chunk.column(kKeyColumn);
  const Array& v = chunk.column(kValueColumn);
  const int64_t* ts = chunk.column(kTimestampColumn).values<int64_t>();
  const int64_t n = chunk.num_rows();
  partition_scratch_.resize(static_cast<size_t>(n));
  kafka_partitions_for_keys(k, topic_->num_partitions(), partition_scratch_.data());
  for (int64_t i = 0; i < n; ++i) {
    int32_t partition = partition_scratch_[static_cast<size_t>(i)];
    if (partition < 0) {
      if (sticky_partition_ < 0) sticky_partition_ = topic_->next_sticky_partition();
      partition = sticky_partition_;
    }
    std::optional<std::string_view> key;
    if (k.is_valid(i)) key = k.string_view(i);
    std::optional<std::string_view> value;
    if (v.is_valid(i)) value = v.string_view(i);
    SABOT_RETURN_IF_ERROR(append_record(partition, key, value, Timestamp(ts[i])));
  }
  return Status::ok();
}

Status MemoryTopicWriter::flush() {
  Status first_error;
  for (int32_t p = 0; p < topic_->num_partitions(); ++p) {
    Status s = flush_partition(p, /*at_threshold=*/false);
    if (!s.is_ok() && first_error.is_ok()) first_error = std::move(s);
  }
  return first_error;
}

Status MemoryTopicWriter::close() {
  if (closed_) return Status::ok();
  Status s = txn_ != nullptr || options_.transactional_id.empty() ? flush() : Status::ok();
  closed_ = true;
  return s;
}

// ---------------------------------------------------------------------------------------------
// Reader

Result<std::unique_ptr<MemoryTopicReader>> MemoryTopicReader::open(
    TopicPtr topic, const std::vector<PartitionAssignment>& assignments, IsolationLevel isolation) {
  if (topic == nullptr) return Status::invalid_argument("reader needs a topic, got null");
  std::unique_ptr<MemoryTopicReader> reader(new MemoryTopicReader(topic));
  reader->isolation_ = isolation;
  std::vector<bool> seen(static_cast<size_t>(topic->num_partitions()), false);
  for (const PartitionAssignment& a : assignments) {
    SABOT_RETURN_IF_ERROR(topic->check_partition(a.partition));
    const int32_t p = a.partition.value();
    if (seen[static_cast<size_t>(p)]) {
      return Status::invalid_argument("partition " + std::to_string(p) + " of topic '" +
                                      topic->name() + "' is assigned twice");
    }
    seen[static_cast<size_t>(p)] = true;
    const int64_t end =
        topic->partitions_[static_cast<size_t>(p)].end_offset.load(std::memory_order_acquire);
    int64_t start = 0;
    if (topic->max_unread_ > 0) {
      PartitionLog& log = topic->partitions_[static_cast<size_t>(p)];
      std::lock_guard<std::mutex> lock(log.mu);
      start = log.start_offset;
    }
    int64_t position = 0;
    switch (a.start.kind) {
      case StartPosition::Kind::kEarliest:
        position = start;
        break;
      case StartPosition::Kind::kLatest:
        position = end;
        break;
      case StartPosition::Kind::kOffset:
        if (a.start.offset < start || a.start.offset > end) {
          return Status::out_of_range("start offset " + std::to_string(a.start.offset) +
                                      " of partition " + std::to_string(p) + " of topic '" +
                                      topic->name() + "' is outside [" + std::to_string(start) +
                                      ", " + std::to_string(end) + "]");
        }
        position = a.start.offset;
        break;
      case StartPosition::Kind::kTimestamp:
        return Status::invalid_argument("topic '" + topic->name() +
                                        "': memory:// topics cannot start at a timestamp");
    }
    reader->assigned_.push_back(Assigned{p, position, 0});
  }
  if (topic->max_unread_ > 0) {
    for (const Assigned& a : reader->assigned_) {
      topic->set_reader_position(a.partition, reader.get(), a.position);
    }
  }
  return reader;
}

MemoryTopicReader::~MemoryTopicReader() {
  if (topic_->max_unread_ > 0) {
    for (const Assigned& a : assigned_) topic_->remove_reader(a.partition, this);
  }
}

Result<std::unique_ptr<MemoryTopicReader>> MemoryTopicReader::open_all(TopicPtr topic,
                                                                       StartPosition start,
                                                                       IsolationLevel isolation) {
  if (topic == nullptr) return Status::invalid_argument("reader needs a topic, got null");
  std::vector<PartitionAssignment> assignments;
  for (int32_t p = 0; p < topic->num_partitions(); ++p) {
    assignments.push_back(PartitionAssignment{PartitionId(p), start});
  }
  return open(std::move(topic), assignments, isolation);
}

Result<MemoryTopicReader::Assigned*> MemoryTopicReader::find(PartitionId partition) {
  for (Assigned& a : assigned_) {
    if (a.partition == partition.value()) return &a;
  }
  return Status::not_found("partition " + std::to_string(partition.value()) + " of topic '" +
                           topic_->name() + "' is not assigned to this reader");
}

Result<const MemoryTopicReader::Assigned*> MemoryTopicReader::find(PartitionId partition) const {
  for (const Assigned& a : assigned_) {
    if (a.partition == partition.value()) return &a;
  }
  return Status::not_found("partition " + std::to_string(partition.value()) + " of topic '" +
                           topic_->name() + "' is not assigned to this reader");
}

Result<int64_t> MemoryTopicReader::position(PartitionId partition) const {
  SABOT_ASSIGN_OR_RETURN(const Assigned* a, find(partition));
  return a->position;
}

Status MemoryTopicReader::seek(PartitionId partition, int64_t offset) {
  SABOT_ASSIGN_OR_RETURN(Assigned * a, find(partition));
  PartitionLog& log = topic_->partitions_[static_cast<size_t>(a->partition)];
  const int64_t end = log.end_offset.load(std::memory_order_acquire);
  int64_t start = 0;
  if (topic_->max_unread_ > 0) {
    std::lock_guard<std::mutex> lock(log.mu);
    start = log.start_offset;
  }
  if (offset < start || offset > end) {
    return Status::out_of_range("cannot seek partition " + std::to_string(a->partition) +
                                " of topic '" + topic_->name() + "' to offset " +
                                std::to_string(offset) + ": outside [" + std::to_string(start) +
                                ", " + std::to_string(end) + "]");
  }
  a->position = offset;
  if (topic_->max_unread_ > 0) topic_->set_reader_position(a->partition, this, offset);
  return Status::ok();
}

Result<int64_t> MemoryTopicReader::end_offset(PartitionId partition) const {
  SABOT_ASSIGN_OR_RETURN(const Assigned* a, find(partition));
  return topic_->partitions_[static_cast<size_t>(a->partition)].end_offset.load(
      std::memory_order_acquire);
}

std::vector<PartitionId> MemoryTopicReader::assignment() const {
  std::vector<PartitionId> out;
  out.reserve(assigned_.size());
  for (const Assigned& a : assigned_) out.push_back(PartitionId(a.partition));
  return out;
}

void MemoryTopicReader::wakeup() {
  wakeup_.store(true, std::memory_order_release);
  // Taking the mutex orders the flag before a waiter's predicate check, so the wake-up is not lost.
  { std::lock_guard<std::mutex> lock(topic_->notify_mu_); }
  topic_->cv_.notify_all();
}

bool MemoryTopicReader::at_end_of_input() const {
  if (assigned_.empty()) return topic_->is_closed();
  for (const Assigned& a : assigned_) {
    const PartitionLog& log = topic_->partitions_[static_cast<size_t>(a.partition)];
    // closed first: once it is set, end_offset no longer moves.
    if (!log.closed.load(std::memory_order_acquire)) return false;
    if (a.position < log.end_offset.load(std::memory_order_acquire)) return false;
  }
  return true;
}

int64_t MemoryTopicReader::gather(int64_t max_records, PollResult& out, bool& skipped) {
  const size_t n = assigned_.size();
  if (n == 0) return 0;
  const bool committed = isolation_ == IsolationLevel::kReadCommitted;
  int64_t total = 0;
  for (size_t i = 0; i < n && total < max_records; ++i) {
    Assigned& a = assigned_[(next_first_ + i) % n];
    PartitionLog& log = topic_->partitions_[static_cast<size_t>(a.partition)];
    int64_t end = log.end_offset.load(std::memory_order_acquire);
    // After end_offset (see PartitionLog::stable_end): stop before open transactions.
    if (committed) end = std::min(end, log.stable_end.load(std::memory_order_acquire));
    const int64_t want_end = std::min(end, a.position + (max_records - total));
    const int64_t before = a.position;
    while (a.position < want_end) {
      chunk_scratch_.clear();
      {
        std::lock_guard<std::mutex> lock(log.mu);
        size_t idx = a.chunk_hint;
        const size_t size = log.chunks.size();
        auto holds = [&](size_t j) {
          return j < size && log.chunks[j].base_offset <= a.position &&
                 a.position < log.chunks[j].end_offset();
        };
        if (!holds(idx)) {
          if (holds(idx + 1)) {
            ++idx;
          } else {
            auto it = std::upper_bound(
                log.chunks.begin(), log.chunks.end(), a.position,
                [](int64_t pos, const LogChunk& c) { return pos < c.base_offset; });
            SABOT_CHECK(it != log.chunks.begin());
            idx = static_cast<size_t>(it - log.chunks.begin()) - 1;
          }
        }
        int64_t pos = a.position;
        size_t looked = 0;
        while (pos < want_end && looked < kMaxChunksPerLock) {
          const LogChunk& c = log.chunks[idx];
          ++looked;
          // Aborted records are decided here, under the mutex, and skipped by moving past them.
          if (committed && c.aborted) {
            if (chunk_scratch_.empty()) {
              a.position = std::min(want_end, c.end_offset());
              skipped = true;
            } else {
              break;  // slice what came before first; the next round skips this chunk
            }
          } else {
            chunk_scratch_.push_back(&c);
          }
          pos = c.end_offset();
          if (pos < want_end && idx + 1 < size) ++idx;
        }
        a.chunk_hint = idx;
      }
      // Chunks are immutable and never move: slicing needs no lock.
      for (const LogChunk* c : chunk_scratch_) {
        const int64_t from = std::max(a.position, c->base_offset);
        const int64_t to = std::min(want_end, c->end_offset());
        PartitionBatch batch;
        batch.partition = PartitionId(a.partition);
        batch.base_offset = from;
        if (from == c->base_offset && to == c->end_offset()) {
          batch.records = c->records;
        } else {
          batch.records = c->records.slice(from - c->base_offset, to - from);
        }
        out.batches.push_back(std::move(batch));
        total += to - from;
        a.position = to;
      }
    }
    // After slicing (see PartitionLog::chunks): what every reader has read can go.
    if (topic_->max_unread_ > 0 && a.position > before) {
      topic_->set_reader_position(a.partition, this, a.position);
    }
  }
  next_first_ = (next_first_ + 1) % n;
  return total;
}

Status MemoryTopicReader::poll_into(int64_t max_records, std::chrono::milliseconds timeout,
                                    PollResult& out) {
  out.batches.clear();
  out.end_of_input = false;
  if (max_records < 1) {
    return Status::invalid_argument("poll of topic '" + topic_->name() +
                                    "': max_records must be >= 1, got " +
                                    std::to_string(max_records));
  }
  // Clamped so that now + timeout cannot overflow; a negative timeout means do not wait.
  timeout = std::clamp(timeout, std::chrono::milliseconds(0),
                       std::chrono::milliseconds(std::chrono::hours(24 * 365)));
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    // Read the change counter before looking: a publish after this point changes it, so the
    // wait below cannot miss it.
    const uint64_t seen = topic_->version_.load(std::memory_order_acquire);
    bool skipped = false;
    const int64_t got = gather(max_records, out, skipped);
    out.end_of_input = at_end_of_input();
    if (got > 0 || out.end_of_input) return Status::ok();
    if (skipped) continue;  // moved over aborted records only: look again at once
    if (wakeup_.exchange(false, std::memory_order_acq_rel)) return Status::ok();
    std::unique_lock<std::mutex> lock(topic_->notify_mu_);
    const bool changed = topic_->cv_.wait_until(lock, deadline, [&] {
      return topic_->version_.load(std::memory_order_relaxed) != seen ||
             wakeup_.load(std::memory_order_relaxed);
    });
    if (!changed) return Status::ok();
  }
}

}  // namespace sabot::connectors
