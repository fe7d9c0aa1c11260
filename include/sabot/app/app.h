// The Faust-style App: topics, tables, agents and timers over the same runtime as the DataStream
// API. An agent is a keyed process operator over its topic's partitions (one job per agent), a
// table is keyed state of the agents that use it (so it is inside their checkpoints), a send is
// an exactly-once topic sink, a timer runs on the worker's clock. Declare everything, then run
// the worker (App::run or app.main(argc, argv)); an App is built from one thread, and agent
// functions run on the runtime's threads (one instance per subtask). See docs/app.md.
#pragma once

#include <chrono>
#include <concepts>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sabot/api/environment.h"
#include "sabot/app/timers.h"
#include "sabot/base/clock.h"
#include "sabot/connectors/memory_broker.h"

namespace sabot::app {

// The value of a raw topic: the message bytes as they are.
struct Raw {
  std::string_view bytes;
};

// What a topic's values are: SABOT_RECORD structs (JSON objects of their fields), text
// (std::string; the agent sees std::string_view) or Raw bytes.
template <typename V>
concept TopicValue = Record<V> || std::same_as<V, std::string> || std::same_as<V, Raw>;

enum class ValueKind : uint8_t { kRecord, kText, kRaw };

struct AppOptions {
  // "memory://" (the embedded broker) or "kafka://host:port[,host:port]" (a Kafka cluster,
  // docs/kafka.md): the worker creates the declared topics that the cluster lacks (with their
  // partition counts), agents read their partitions through the Kafka source with the offsets in
  // their checkpoints, and sends go through the Kafka sink (transactional: exactly-once).
  std::string broker = "memory://";
  // A directory: each agent checkpoints into <checkpoints>/<agent> and a restarted worker resumes
  // from there (exactly-once across kill -9). Empty: checkpoints in memory only (exactly-once
  // across supervisor restarts inside the process).
  std::string checkpoints{};
  std::chrono::milliseconds checkpoint_interval{1000};
  // Keyed state backend of the agents' tables: "memory" (the default) or "rocksdb" (in
  // <state_dir>/rocksdb/<agent>; needs state_dir).
  std::string state_backend = "memory";
  // A directory in which memory:// topics are backed by files (<dir>/topics/<topic>.log): the
  // worker loads them at start and follows them while it runs, and `send` appends to them, so
  // records sent from another process reach the worker and a restarted worker sees the same
  // offsets. Empty: topics live in memory only.
  std::string state_dir{};
  // Time of timers, crontabs and restart intensity; null: the system clock. Not owned.
  const Clock* clock = nullptr;
  // The broker of memory:// topics; null: MemoryBroker::default_instance(). Not owned.
  connectors::MemoryBroker* memory_broker = nullptr;
  // Threads per agent job (0: one per core).
  int worker_threads = 0;
  // Where failures, restarts and worker messages are logged; null: std::cerr. Not owned.
  std::ostream* log = nullptr;
};

struct TopicOptions {
  // Partitions of the topic (created by the worker when missing). >= 1.
  int partitions = 1;
};

// A declared topic. Cheap to copy; V is the value type agents read and send.
template <TopicValue V>
class AppTopic {
 public:
  AppTopic() = default;
  AppTopic(std::string name, int partitions) : name_(std::move(name)), partitions_(partitions) {}
  const std::string& name() const { return name_; }
  int partitions() const { return partitions_; }

 private:
  std::string name_;
  int partitions_ = 1;
};

// How a failed agent is restarted (Erlang/OTP's and Faust's supervisor strategies).
enum class Strategy : uint8_t {
  kOneForOne,   // only the failed agent
  kOneForAll,   // every agent of the app
  kRestForOne,  // the failed agent and every agent declared after it
};
std::string_view strategy_name(Strategy s);

struct Supervisor {
  Strategy strategy = Strategy::kOneForOne;
  // Restart intensity: more than `max_restarts` restarts of this agent within `within` (on the
  // app's clock) stop the worker with the last failure as the cause.
  int max_restarts = 3;
  std::chrono::milliseconds within{std::chrono::seconds(5)};
};

// What an exception thrown by an agent's function does.
enum class OnError : uint8_t {
  kRestart,     // the agent fails and its supervisor restarts it from its last checkpoint
  kDeadLetter,  // the record goes to the dead-letter topic with the error, processing goes on
  kStop,        // the worker stops with the failure
};

struct AgentOptions {
  // Unique name; the operator uid and checkpoint directory derive from it. Default
  // "<topic>-agent" (then "-2", "-3", ... for more agents of one topic).
  std::string name{};
  // Subtasks the topic's partitions are spread over (the keys of a partition stay in one).
  int concurrency = 1;
  Supervisor supervisor{};
  OnError on_error = OnError::kRestart;
  // Topics the agent sends to (ctx.send to any other is an error naming it).
  std::vector<std::string> sinks{};
  // kDeadLetter: the topic failed records go to; default "<agent>-dead-letters". Each message is
  // a JSON object with "agent", "topic", "partition", "offset", "error" and "value", keyed by
  // the record's key.
  std::string dead_letter{};
};

namespace detail {
struct AgentScope;
// The scope of the record the calling thread's agent is processing; null outside agents.
AgentScope* current_scope();
[[noreturn]] void throw_no_scope(std::string_view table);
// The current record's key and state backend, for tables.
std::string_view scope_key(const AgentScope& s);
bool scope_has_key(const AgentScope& s);
int64_t scope_timestamp(const AgentScope& s);
Timestamp scope_now(const AgentScope& s);
state::KeyedStateBackend& scope_backend(const AgentScope& s);
state::State* scope_table(const AgentScope& s, int table_id);

// What the App knows of a table: its name and how to register its state in an agent's backend.
struct TableDecl {
  std::string name;
  std::string key_type;    // "string" or "int64"
  std::string value_type;  // the C++ value type, for `tables`
  std::string window;      // "" or "tumbling 10s" / "hopping 10s/5s"
  int id = 0;
  std::function<Result<state::State*>(state::KeyedStateBackend&)> register_state;
};

template <typename K>
K key_from_text(std::string_view text) {
  if constexpr (std::is_integral_v<K>) {
    return static_cast<K>(std::stoll(std::string(text)));
  } else {
    return K(text);
  }
}
// Throws when `key` is not the current record's key: a table is partitioned like the agent's
// topic, so a subtask holds only the keys of its own records.
void check_current_key(const AgentScope& s, std::string_view table, std::string_view key);
// check_current_key for a typed key (string keys without a copy).
template <typename K>
void check_key(const AgentScope& s, std::string_view table, const K& key) {
  if constexpr (std::is_integral_v<K>) {
    check_current_key(s, table, std::to_string(key));
  } else {
    check_current_key(s, table, std::string_view(key));
  }
}
template <typename T>
T* table_handle(const AgentScope& s, int id) {
  return static_cast<T*>(scope_table(s, id));
}
}  // namespace detail

template <typename K, typename V>
class WindowedTable;

// A keyed table: `table[key]` reads and writes the value of `key` inside an agent, where `key`
// must be the key of the record being processed (tables are partitioned like their source
// topic). Values are keyed state of the agent (state "table:<name>"), so checkpointed with its
// offsets and sends. Cheap to copy; thread-safe (every subtask has its own state).
template <typename K, typename V>
class Table {
 public:
  class Ref {
   public:
    operator V() const { return get(); }  // NOLINT: a reference reads as the value
    V get() const {
      const V* v = handle()->get();
      return v ? *v : table_->default_;
    }
    Ref& operator=(V value) {
      handle()->update(std::move(value));
      return *this;
    }
    template <typename U>
    Ref& operator+=(const U& d) {
      return *this = get() + d;
    }
    template <typename U>
    Ref& operator-=(const U& d) {
      return *this = get() - d;
    }
    void erase() { handle()->clear(); }

   private:
    friend class Table;
    Ref(const Table* table, const detail::AgentScope* scope) : table_(table), scope_(scope) {}
    state::ValueState<V>* handle() const {
      return detail::table_handle<state::ValueState<V>>(*scope_, table_->decl_->id);
    }
    const Table* table_;
    const detail::AgentScope* scope_;
  };

  Table() = default;
  Table(std::shared_ptr<detail::TableDecl> decl, V default_value)
      : decl_(std::move(decl)), default_(std::move(default_value)) {}

  Ref operator[](const K& key) const {
    const detail::AgentScope* s = scope();
    detail::check_key(*s, decl_->name, key);
    return Ref(this, s);
  }
  // The (key, value) pairs of the calling subtask's keys (its partitions of the topic).
  std::vector<std::pair<K, V>> items() const {
    const detail::AgentScope* s = scope();
    state::KeyedStateBackend& b = detail::scope_backend(*s);
    auto* h = detail::table_handle<state::ValueState<V>>(*s, decl_->id);
    std::vector<std::pair<K, V>> out;
    const state::KeyId current = b.current_key();
    const uint32_t n = b.keys().num_keys();
    for (uint32_t id = 0; id < n; ++id) {
      b.set_current_key(id);
      if (const V* v = h->get()) {
        std::vector<columnar::Scalar> key = b.keys().key_values(id);
        const columnar::Scalar& k = key.at(0);
        out.emplace_back(detail::key_from_text<K>(k.is_valid ? k.as_string() : std::string()), *v);
      }
    }
    b.set_current_key(current);
    return out;
  }
  const std::string& name() const { return decl_->name; }

 private:
  template <typename, typename>
  friend class WindowedTable;
  const detail::AgentScope* scope() const {
    const detail::AgentScope* s = detail::current_scope();
    if (s == nullptr) detail::throw_no_scope(decl_->name);
    return s;
  }
  std::shared_ptr<detail::TableDecl> decl_;
  V default_{};
};

// A table of windows per key (Faust's windowed tables): each record's value goes into the windows
// that hold its event time (the message timestamp). `table[key].current()` is the value of the
// newest window holding the current record's time, `.now()` the one holding the clock's time,
// `.value_at(t)` the one holding t. Windows that ended more than `expires` before the current
// record are dropped on write. State "table:<name>": a map from window start (ms) to value.
template <typename K, typename V>
class WindowedTable {
 public:
  class Ref {
   public:
    V current() const { return value_at(detail::scope_timestamp(*scope_)); }
    V now() const { return value_at(detail::scope_now(*scope_).millis()); }
    V value_at(int64_t t) const {
      auto v = handle()->get(table_->newest_start(t));
      return v ? *v : table_->default_;
    }
    // Sets every window holding the current record's time.
    Ref& operator=(const V& value) {
      return apply([&](const V&) { return value; });
    }
    template <typename U>
    Ref& operator+=(const U& d) {
      return apply([&](const V& old) { return old + d; });
    }
    template <typename U>
    Ref& operator-=(const U& d) {
      return apply([&](const V& old) { return old - d; });
    }

   private:
    friend class WindowedTable;
    Ref(const WindowedTable* t, const detail::AgentScope* s) : table_(t), scope_(s) {}
    state::MapState<int64_t, V>* handle() const {
      return detail::table_handle<state::MapState<int64_t, V>>(*scope_, table_->decl_->id);
    }
    template <typename F>
    Ref& apply(F f) {
      const int64_t t = detail::scope_timestamp(*scope_);
      auto* h = handle();
      for (int64_t start = table_->newest_start(t); start > t - table_->size_ms_;
           start -= table_->step_ms_) {
        auto old = h->get(start);
        h->put(start, f(old ? *old : table_->default_));
      }
      if (table_->expires_ms_ > 0) {
        for (int64_t start : h->keys()) {
          if (start + table_->size_ms_ + table_->expires_ms_ <= t) {
            h->remove(start);
          } else {
            break;  // keys() is in ascending order
          }
        }
      }
      return *this;
    }
    const WindowedTable* table_;
    const detail::AgentScope* scope_;
  };

  WindowedTable(std::shared_ptr<detail::TableDecl> decl, V default_value, int64_t size_ms,
                int64_t step_ms, int64_t expires_ms)
      : decl_(std::move(decl)),
        default_(std::move(default_value)),
        size_ms_(size_ms),
        step_ms_(step_ms),
        expires_ms_(expires_ms) {}

  Ref operator[](const K& key) const {
    const detail::AgentScope* s = detail::current_scope();
    if (s == nullptr) detail::throw_no_scope(decl_->name);
    detail::check_key(*s, decl_->name, key);
    return Ref(this, s);
  }
  // The start of the newest window holding t.
  int64_t newest_start(int64_t t) const {
    int64_t q = t / step_ms_;
    if (t % step_ms_ != 0 && t < 0) --q;
    return q * step_ms_;
  }
  int64_t size_ms() const { return size_ms_; }
  int64_t step_ms() const { return step_ms_; }
  const std::string& name() const { return decl_->name; }

 private:
  std::shared_ptr<detail::TableDecl> decl_;
  V default_;
  int64_t size_ms_;
  int64_t step_ms_;
  int64_t expires_ms_;
};

// A table whose value per key is a list that grows by appends (a Faust table holding a list,
// without copying the list on every change): `table[key].append(v)`, `.values()` in place.
// State "table:<name>": keyed ListState<T>, appended in place in memory and by merge in RocksDB.
template <typename K, typename T>
class ListTable {
 public:
  class Ref {
   public:
    // The elements, oldest first; valid until the next write to this table.
    std::span<const T> values() const { return handle()->get(); }
    size_t size() const { return values().size(); }
    void append(T value) { handle()->add(std::move(value)); }
    void append_all(std::span<const T> values) { handle()->add_all(values); }
    // Replaces the list; an empty one erases the key.
    void replace(std::vector<T> values) { handle()->update(std::move(values)); }
    void erase() { handle()->clear(); }

   private:
    friend class ListTable;
    Ref(const ListTable* t, const detail::AgentScope* s) : table_(t), scope_(s) {}
    state::ListState<T>* handle() const {
      return detail::table_handle<state::ListState<T>>(*scope_, table_->decl_->id);
    }
    const ListTable* table_;
    const detail::AgentScope* scope_;
  };

  ListTable() = default;
  explicit ListTable(std::shared_ptr<detail::TableDecl> decl) : decl_(std::move(decl)) {}
  Ref operator[](const K& key) const {
    const detail::AgentScope* s = detail::current_scope();
    if (s == nullptr) detail::throw_no_scope(decl_->name);
    detail::check_key(*s, decl_->name, key);
    return Ref(this, s);
  }
  const std::string& name() const { return decl_->name; }

 private:
  std::shared_ptr<detail::TableDecl> decl_;
};

template <typename V>
struct TableOptions {
  V default_value{};
};

// What an agent's function gets beside the value: the record's metadata and sends.
class AgentContext {
 public:
  // Made by the agent operator for the record being processed.
  explicit AgentContext(detail::AgentScope* scope) : scope_(scope) {}
  // The record's key (empty when it has none: see has_key()).
  std::string_view key() const;
  bool has_key() const;
  int32_t partition() const;
  int64_t offset() const;
  // The message timestamp (ms since the epoch).
  Timestamp timestamp() const;
  const std::string& topic() const;
  const std::string& agent() const;
  // Sends `value` with `key` to `topic`, which must be one of the agent's sinks. Exactly-once:
  // the message becomes visible with the checkpoint that covers this record.
  void send(std::string_view topic, std::optional<std::string_view> key, std::string_view value);
  template <TopicValue V>
  void send(const AppTopic<V>& topic, std::optional<std::string_view> key, const V& value) {
    if constexpr (std::same_as<V, std::string>) {
      send(topic.name(), key, std::string_view(value));
    } else if constexpr (std::same_as<V, Raw>) {
      send(topic.name(), key, value.bytes);
    } else {
      RowWriter<V> w;
      w.append(value);
      send(topic.name(), key, encode_json_row(w.finish()));
    }
  }

 private:
  static std::string encode_json_row(const columnar::RecordBatch& row);
  detail::AgentScope* scope_;
};

namespace detail {
// Calls the user's function for row `row` of a batch (the codec's columns and the metadata).
using RowInvoker = std::function<void(const columnar::RecordBatch&, int64_t row, AgentContext&)>;
// Makes one invoker per subtask, bound to the source's schema.
using InvokerFactory = std::function<Result<RowInvoker>(const columnar::Schema&)>;

struct AgentDecl {
  std::string name;
  std::string topic;
  ValueKind kind = ValueKind::kRaw;
  columnar::SchemaPtr value_schema;  // kRecord: the struct's columns
  AgentOptions options;
  InvokerFactory invoker;
};

struct TopicDecl {
  std::string name;
  int partitions = 1;
  ValueKind kind = ValueKind::kRaw;
  columnar::SchemaPtr value_schema;  // kRecord only
};

template <typename V, typename F>
InvokerFactory make_invoker(F fn) {
  return [fn](const columnar::Schema& schema) -> Result<RowInvoker> {
    if constexpr (std::same_as<V, std::string> || std::same_as<V, Raw>) {
      const int col = schema.field_index("value");
      if (col < 0) return Status::invalid_argument("agent input has no 'value' column");
      return RowInvoker([fn, col](const columnar::RecordBatch& b, int64_t r, AgentContext& ctx) {
        const columnar::Array& a = b.column(col);
        std::string_view v = a.is_valid(r) ? a.string_view(r) : std::string_view();
        if constexpr (std::same_as<V, std::string>) {
          fn(v, ctx);
        } else {
          fn(Raw{v}, ctx);
        }
      });
    } else {
      auto reader = std::make_shared<RowReader<V>>();
      SABOT_RETURN_IF_ERROR(reader->bind(schema));
      auto row = std::make_shared<V>();
      return RowInvoker(
          [fn, reader, row](const columnar::RecordBatch& b, int64_t r, AgentContext& ctx) {
            Status s = reader->read(b, r, row.get());
            if (!s.is_ok()) throw std::runtime_error(s.message());
            fn(static_cast<const V&>(*row), ctx);
          });
    }
  };
}
}  // namespace detail

// What the worker's run did.
struct WorkerReport {
  Status status;             // ok, or why the worker stopped (names agent and cause)
  int64_t failures = 0;      // agent failures (exceptions, job errors)
  int64_t restarts = 0;      // agent restarts by supervisors
  int64_t dead_letters = 0;  // records routed to dead-letter topics
  std::vector<std::string> agents_restarted;  // in order, one entry per restart of an agent
};

struct WorkerOptions {
  // Stop when every agent has read its topic to the end (memory:// topics closed, e.g. by
  // `--until-done` after the state directory's topics are loaded, or by the caller). false: run
  // until stop() (or SIGINT/SIGTERM in app.main). On kafka:// (whose topics have no end) an agent
  // reads what its topic holds when it starts, and an agent reading a topic that other agents
  // write starts once they have all finished (so agents must not form a cycle of topics).
  bool until_done = false;
  // Close these topics once they are loaded from the state directory (bounded inputs).
  std::vector<std::string> close_after_load{};
  // Topic -> file: the values sent to the topic are also written to this file, one per line,
  // exactly-once (only values of completed checkpoints). For tests and batch runs.
  std::vector<std::pair<std::string, std::string>> topic_out{};
  // Called once every agent job and the timers have started (timers count from that moment).
  std::function<void()> on_started{};
};

class App {
 public:
  App(std::string name, AppOptions options = {});
  ~App();
  App(const App&) = delete;
  App& operator=(const App&) = delete;

  template <TopicValue V = Raw>
  AppTopic<V> topic(std::string name, TopicOptions options = {}) {
    detail::TopicDecl d{name, options.partitions, kind_of<V>(), nullptr};
    if constexpr (Record<V>) d.value_schema = record_schema<V>();
    add_topic(std::move(d));
    return AppTopic<V>(std::move(name), options.partitions);
  }

  template <typename K, typename V>
  requires(std::same_as<K, std::string> || std::same_as<K, int64_t>) &&
      state::HasStateCodec<V> Table<K, V> table(std::string name, TableOptions<V> options = {}) {
    return Table<K, V>(add_table<K, V, state::ValueStateDescriptor<V>>(std::move(name), ""),
                       std::move(options.default_value));
  }
  // A list per key (ListTable): appends without copying the list.
  template <typename K, typename T>
  requires(std::same_as<K, std::string> || std::same_as<K, int64_t>) &&
      state::HasStateCodec<T> ListTable<K, T> list_table(std::string name) {
    return ListTable<K, T>(
        add_table<K, std::vector<T>, state::ListStateDescriptor<T>>(std::move(name), ""));
  }
  // Windowed tables: tumbling(size) has step == size.
  template <typename K, typename V>
  requires(std::same_as<K, std::string> || std::same_as<K, int64_t>) &&
      state::HasStateCodec<V> WindowedTable<K, V> tumbling_table(
          std::string name, std::chrono::milliseconds size, TableOptions<V> options = {},
          std::chrono::milliseconds expires = {}) {
    return hopping_table<K, V>(std::move(name), size, size, std::move(options), expires);
  }
  template <typename K, typename V>
  requires(std::same_as<K, std::string> || std::same_as<K, int64_t>) &&
      state::HasStateCodec<V> WindowedTable<K, V> hopping_table(
          std::string name, std::chrono::milliseconds size, std::chrono::milliseconds step,
          TableOptions<V> options = {}, std::chrono::milliseconds expires = {}) {
    std::string window = size == step ? "tumbling " + std::to_string(size.count()) + "ms"
                                      : "hopping " + std::to_string(size.count()) + "ms/" +
                                            std::to_string(step.count()) + "ms";
    auto decl = add_table<K, V, state::MapStateDescriptor<int64_t, V>>(std::move(name), window);
    if (size.count() <= 0 || step.count() <= 0 || step > size) {
      add_problem("table '" + decl->name + "': window size and step must be > 0, step <= size");
      step = size = std::chrono::milliseconds(1);
    }
    return WindowedTable<K, V>(std::move(decl), std::move(options.default_value), size.count(),
                               step.count(), expires.count());
  }

  // `fn(value, ctx)`: value is `const V&` for records, std::string_view for text, Raw for raw.
  template <TopicValue V, typename F>
  void agent(const AppTopic<V>& topic, F fn, AgentOptions options = {}) {
    detail::AgentDecl d;
    d.topic = topic.name();
    d.kind = kind_of<V>();
    if constexpr (Record<V>) d.value_schema = record_schema<V>();
    d.options = std::move(options);
    d.invoker = detail::make_invoker<V>(std::move(fn));
    add_agent(std::move(d));
  }

  // Runs fn every `interval` on the app's clock while the worker runs (first after one interval).
  void timer(std::chrono::milliseconds interval, std::function<void()> fn, std::string name = {});
  // Runs fn at the minutes a five-field crontab expression ("*/5 * * * *", UTC) names.
  void crontab(std::string_view expression, std::function<void()> fn, std::string name = {});
  // Produces one record into a declared topic now (non-transactional; for timers, tests and the
  // `send` command). With a state directory the record is appended to the topic's file.
  Status send(std::string_view topic, std::optional<std::string_view> key, std::string_view value);
  // Produces `messages` into a declared topic in this order (on kafka://, through one producer;
  // keyed messages go to the key's partition as the Java client places them).
  struct Message {
    std::optional<std::string> key;
    std::string value;
  };
  Status send(std::string_view topic, const std::vector<Message>& messages);
  // The URL of a declared topic on the app's broker ("memory://t", "kafka://host:port/t").
  std::string topic_url(std::string_view topic) const;
  // Whether the app's broker is the embedded one (memory://).
  bool embedded_broker() const;

  // Runs the worker: creates the topics, starts every agent and timer, supervises them, and
  // returns when done (WorkerOptions::until_done), stopped, or failed beyond restart intensity.
  WorkerReport run(const WorkerOptions& options = {});
  // Asks a running worker to stop (thread-safe; also from a signal-watching thread).
  void stop();

  // Failures and supervisor restarts of each agent (indexed like agents()) since run() started.
  // Thread-safe: the metrics endpoint reads them while the worker runs.
  struct AgentRunCounts {
    int64_t failures = 0;
    int64_t restarts = 0;
  };
  std::vector<AgentRunCounts> agent_run_counts() const;
  // The worker as JSON for the dashboard (`/api/app`, docs/operations.md): per agent its name,
  // topic, concurrency, records processed, failures, restarts and per subtask its key count (the
  // keys of its records, which key its tables); per table its name, key and value types, window.
  std::string status_json() const;

  // A table's values as its agents' newest checkpoints hold them (what `table NAME` prints and
  // `/api/tables/NAME` serves; safe while the worker runs: checkpoints are immutable once
  // complete). `key`: only that key (empty: every key); `limit`: at most that many entries (0: no
  // limit). Values are JSON (windowed tables: an object from window start in ms to value; a
  // struct the state reader cannot decode: {"value_hex": ...}).
  struct TableEntry {
    std::string key;
    std::string value_json;
  };
  struct TableRead {
    std::vector<TableEntry> entries;
    // The checkpoint read of each agent that has one: (agent, checkpoint id).
    std::vector<std::pair<std::string, int64_t>> checkpoints;
    bool truncated = false;  // `limit` entries were read and more were left
  };
  Result<TableRead> read_table(const std::string& table, const std::string& key,
                               const std::string& checkpoint_dir, int64_t limit = 0) const;
  // read_table as the JSON object `/api/tables/NAME` answers: {"table", "key", "checkpoints":
  // [{"agent", "id"}], "entries": [{"key", "value"}], "truncated"}.
  Result<std::string> table_json(const std::string& table, const std::string& key,
                                 const std::string& checkpoint_dir, int64_t limit) const;

  // The command line: worker, agents, topics, tables, table, send (see docs/app.md).
  int main(int argc, char** argv);

  const std::string& name() const { return name_; }
  const AppOptions& options() const { return options_; }
  const std::vector<detail::TopicDecl>& topics() const { return topics_; }
  const std::vector<detail::AgentDecl>& agents() const { return agents_; }
  const std::vector<std::shared_ptr<detail::TableDecl>>& tables() const { return tables_; }
  connectors::MemoryBroker& broker() const;
  // Checkpoint directory of an agent (empty without AppOptions::checkpoints).
  std::string agent_checkpoint_dir(const std::string& agent) const;

  struct Impl;

 private:
  template <typename V>
  static constexpr ValueKind kind_of() {
    if constexpr (std::same_as<V, std::string>) {
      return ValueKind::kText;
    } else if constexpr (std::same_as<V, Raw>) {
      return ValueKind::kRaw;
    } else {
      return ValueKind::kRecord;
    }
  }
  template <typename K, typename V, typename Descriptor>
  std::shared_ptr<detail::TableDecl> add_table(std::string name, std::string window) {
    auto d = std::make_shared<detail::TableDecl>();
    d->name = std::move(name);
    d->key_type = std::same_as<K, std::string> ? "string" : "int64";
    d->value_type = typeid(V).name();
    d->window = std::move(window);
    d->id = static_cast<int>(tables_.size());
    const std::string state_name = "table:" + d->name;
    d->register_state = [state_name](state::KeyedStateBackend& b) -> Result<state::State*> {
      SABOT_ASSIGN_OR_RETURN(auto* h, b.get_state(Descriptor{state_name, {}}));
      return static_cast<state::State*>(h);
    };
    check_new_name("table", d->name);
    tables_.push_back(d);
    return d;
  }
  // kafka://: creates the topics (name, partitions) the cluster lacks; logs declared partition
  // counts that differ from the cluster's (which are used).
  Status ensure_broker_topics(const std::vector<std::pair<std::string, int>>& wanted,
                              std::ostream* log) const;
  // The partitions of each declared topic on the broker (0: missing).
  Result<std::vector<std::pair<std::string, int>>> broker_partitions() const;
  void add_topic(detail::TopicDecl d);
  void add_agent(detail::AgentDecl d);
  void add_problem(std::string problem) { problems_.push_back(std::move(problem)); }
  void check_new_name(std::string_view what, const std::string& name);

  std::string name_;
  AppOptions options_;
  std::vector<detail::TopicDecl> topics_;
  std::vector<detail::AgentDecl> agents_;
  std::vector<std::shared_ptr<detail::TableDecl>> tables_;
  std::vector<std::string> problems_;
  TimerSchedule timers_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sabot::app
