// The App's declarations and its worker: one job per agent, supervised (one-for-one, one-for-all,
// rest-for-one, restart intensity), timers on the app's clock, memory:// topics optionally backed
// by spool files in the state directory, and kafka:// topics created on the cluster when missing.
#include "sabot/app/app.h"

#include <sys/stat.h>
#include <unistd.h>

#include <condition_variable>
#include <deque>
#include <filesystem>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "app/agent.h"
#include "sabot/checkpoint/storage.h"
#include "sabot/connectors/kafka.h"
#include "sabot/connectors/topic_scheme.h"
#include "sabot/state/rocksdb_backend.h"

namespace sabot::app {

using detail::AgentDecl;

std::string_view strategy_name(Strategy s) {
  switch (s) {
    case Strategy::kOneForOne:
      return "one-for-one";
    case Strategy::kOneForAll:
      return "one-for-all";
    case Strategy::kRestForOne:
      return "rest-for-one";
  }
  return "?";
}

struct App::Impl {
  std::mutex mu;
  std::condition_variable cv;
  struct Event {
    size_t agent;
    int generation;
    Status status;
  };
  std::deque<Event> events;
  bool stop_requested = false;
  std::shared_ptr<std::atomic<int64_t>> dead_letters = std::make_shared<std::atomic<int64_t>>(0);
  // Per agent, for agent_run_counts() (guarded by counts_mu).
  mutable std::mutex counts_mu;
  std::vector<App::AgentRunCounts> counts;
  void count(size_t agent, bool restart) {
    std::lock_guard<std::mutex> lock(counts_mu);
    if (counts.size() <= agent) counts.resize(agent + 1);
    ++(restart ? counts[agent].restarts : counts[agent].failures);
  }
};

std::vector<App::AgentRunCounts> App::agent_run_counts() const {
  std::lock_guard<std::mutex> lock(impl_->counts_mu);
  std::vector<AgentRunCounts> out = impl_->counts;
  out.resize(agents_.size());
  return out;
}

App::App(std::string name, AppOptions options)
    : name_(std::move(name)), options_(std::move(options)), impl_(std::make_unique<Impl>()) {}

App::~App() = default;

connectors::MemoryBroker& App::broker() const {
  return options_.memory_broker ? *options_.memory_broker
                                : connectors::MemoryBroker::default_instance();
}

bool App::embedded_broker() const { return options_.broker.rfind("memory://", 0) == 0; }

std::string App::topic_url(std::string_view topic) const {
  if (embedded_broker()) return "memory://" + std::string(topic);
  std::string base = options_.broker;
  while (!base.empty() && base.back() == '/') base.pop_back();
  return base + "/" + std::string(topic);
}

namespace {

// The app's broker URL: memory:// or kafka://host:port[,host:port] (the cluster, no topic).
Status check_broker_url(const std::string& broker) {
  if (broker.rfind("memory://", 0) == 0) return Status::ok();
  if (broker.rfind("kafka://", 0) != 0) {
    return Status::invalid_argument("broker '" + broker +
                                    "': the App takes memory:// or kafka://HOST:PORT[,HOST:PORT]");
  }
  SABOT_ASSIGN_OR_RETURN(connectors::KafkaUrl url, connectors::parse_kafka_url(broker));
  if (!url.topic.empty()) {
    return Status::invalid_argument("broker '" + broker +
                                    "' names a topic: give the cluster only (kafka://HOST:PORT)");
  }
  return Status::ok();
}

}  // namespace

Status App::ensure_broker_topics(const std::vector<std::pair<std::string, int>>& wanted,
                                 std::ostream* log) const {
  SABOT_RETURN_IF_ERROR(check_broker_url(options_.broker));
  SABOT_ASSIGN_OR_RETURN(auto scheme, connectors::topic_scheme_for(options_.broker));
  SABOT_ASSIGN_OR_RETURN(auto existing, scheme->list_topics(options_.broker, {}));
  for (const auto& [name, partitions] : wanted) {
    const connectors::TopicDescription* found = nullptr;
    for (const auto& t : existing) {
      if (t.name == name) found = &t;
    }
    if (found != nullptr) {
      if (found->partitions != partitions && log != nullptr) {
        *log << ("app: topic '" + name + "' has " + std::to_string(found->partitions) +
                 " partitions on " + options_.broker + " (the app declares " +
                 std::to_string(partitions) + "); the broker's partitions are used\n");
      }
      continue;
    }
    Status s = scheme->create_topic(options_.broker, name, partitions, {});
    if (!s.is_ok() && s.code() != StatusCode::kAlreadyExists) {
      return std::move(s).with_context("creating topic '" + name + "' with " +
                                       std::to_string(partitions) + " partitions on " +
                                       options_.broker);
    }
    if (log != nullptr && s.is_ok()) {
      *log << ("app: created topic '" + name + "' with " + std::to_string(partitions) +
               " partitions on " + options_.broker + "\n");
    }
  }
  return Status::ok();
}

Result<std::vector<std::pair<std::string, int>>> App::broker_partitions() const {
  SABOT_RETURN_IF_ERROR(check_broker_url(options_.broker));
  std::vector<std::pair<std::string, int>> out;
  if (embedded_broker()) {
    for (const auto& t : topics_) {
      auto p = broker().topic(t.name);
      out.emplace_back(t.name, p.is_ok() ? (*p)->num_partitions() : 0);
    }
    return out;
  }
  SABOT_ASSIGN_OR_RETURN(auto scheme, connectors::topic_scheme_for(options_.broker));
  SABOT_ASSIGN_OR_RETURN(auto existing, scheme->list_topics(options_.broker, {}));
  for (const auto& t : topics_) {
    int n = 0;
    for (const auto& e : existing) {
      if (e.name == t.name) n = e.partitions;
    }
    out.emplace_back(t.name, n);
  }
  return out;
}

std::string App::agent_checkpoint_dir(const std::string& agent) const {
  if (options_.checkpoints.empty()) return {};
  return options_.checkpoints + "/" + agent;
}

void App::check_new_name(std::string_view what, const std::string& name) {
  if (name.empty()) add_problem(std::string(what) + " without a name");
  for (const auto& t : tables_) {
    if (what == "table" && t->name == name) add_problem("table '" + name + "' declared twice");
  }
}

void App::add_topic(detail::TopicDecl d) {
  if (Status s = connectors::validate_topic_name(d.name); !s.is_ok()) add_problem(s.message());
  if (d.partitions < 1) {
    add_problem("topic '" + d.name + "': partitions must be >= 1, got " +
                std::to_string(d.partitions));
  }
  for (const auto& t : topics_) {
    if (t.name == d.name) {
      add_problem("topic '" + d.name + "' declared twice");
      return;
    }
  }
  topics_.push_back(std::move(d));
}

void App::add_agent(AgentDecl d) {
  if (d.options.name.empty()) {
    d.options.name = d.topic + "-agent";
    int k = 1;
    auto taken = [&](const std::string& n) {
      for (const auto& a : agents_) {
        if (a.name == n) return true;
      }
      return false;
    };
    while (taken(d.options.name)) d.options.name = d.topic + "-agent-" + std::to_string(++k);
  }
  d.name = d.options.name;
  for (const auto& a : agents_) {
    if (a.name == d.name) add_problem("agent '" + d.name + "' declared twice");
  }
  if (d.options.concurrency < 1) {
    add_problem("agent '" + d.name + "': concurrency must be >= 1, got " +
                std::to_string(d.options.concurrency));
  }
  if (d.options.supervisor.max_restarts < 0) {
    add_problem("agent '" + d.name + "': max_restarts must be >= 0");
  }
  if (d.options.on_error == OnError::kDeadLetter && d.options.dead_letter.empty()) {
    d.options.dead_letter = d.name + "-dead-letters";
  }
  agents_.push_back(std::move(d));
}

void App::timer(std::chrono::milliseconds interval, std::function<void()> fn, std::string name) {
  if (interval.count() <= 0) add_problem("timer interval must be > 0");
  if (name.empty()) name = "timer-" + std::to_string(timers_.size() + 1);
  timers_.add_interval(std::move(name), interval, std::move(fn));
}

void App::crontab(std::string_view expression, std::function<void()> fn, std::string name) {
  auto c = Crontab::parse(expression);
  if (!c.is_ok()) {
    add_problem(c.status().message());
    return;
  }
  if (name.empty()) name = "crontab '" + std::string(expression) + "'";
  timers_.add_crontab(std::move(name), std::move(c).value(), std::move(fn));
}

Status App::send(std::string_view topic, std::optional<std::string_view> key,
                 std::string_view value) {
  if (!embedded_broker()) {
    std::vector<Message> one(1);
    if (key) one[0].key = std::string(*key);
    one[0].value = std::string(value);
    return send(topic, one);
  }
  const detail::TopicDecl* decl = nullptr;
  for (const auto& t : topics_) {
    if (t.name == topic) decl = &t;
  }
  if (decl == nullptr) {
    return Status::not_found("app '" + name_ + "' declares no topic '" + std::string(topic) + "'");
  }
  const Clock& clock = options_.clock ? *options_.clock : SystemClock::instance();
  if (!options_.state_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(options_.state_dir + "/topics", ec);
    if (ec) {
      return Status::io_error("cannot create '" + options_.state_dir + "/topics': " + ec.message());
    }
    return detail::spool_append(detail::spool_path(options_.state_dir, decl->name), key, value,
                                clock.now().millis());
  }
  SABOT_ASSIGN_OR_RETURN(auto t,
                         broker().create_topic(decl->name, {.partitions = decl->partitions}));
  SABOT_ASSIGN_OR_RETURN(auto w, connectors::MemoryTopicWriter::open(t));
  SABOT_RETURN_IF_ERROR(w->send(key, value, clock.now()).status());
  return w->close();
}

Status App::send(std::string_view topic, const std::vector<Message>& messages) {
  if (embedded_broker()) {
    for (const Message& m : messages) {
      SABOT_RETURN_IF_ERROR(
          send(topic, m.key ? std::optional<std::string_view>(*m.key) : std::nullopt, m.value));
    }
    return Status::ok();
  }
  const detail::TopicDecl* decl = nullptr;
  for (const auto& t : topics_) {
    if (t.name == topic) decl = &t;
  }
  if (decl == nullptr) {
    return Status::not_found("app '" + name_ + "' declares no topic '" + std::string(topic) + "'");
  }
  // A producer would have the cluster auto-create a missing topic with its default partitions.
  SABOT_RETURN_IF_ERROR(ensure_broker_topics({{decl->name, decl->partitions}}, options_.log));
  if (messages.empty()) return Status::ok();
  RowWriter<detail::SendRow> rows;
  for (const Message& m : messages) {
    rows.append(detail::SendRow{0, m.key ? std::optional<std::string_view>(*m.key) : std::nullopt,
                                m.value});
  }
  EnvironmentOptions eo;
  eo.parallelism = 1;
  eo.clock = options_.clock;
  Environment env(eo);
  env.from_batches({rows.finish()})
      .to_topic(topic_url(topic), detail::value_codec(false), {.key_column = "key"})
      .name("send/" + decl->name);
  JobResult r = env.execute(name_ + "-send");
  if (!r.ok()) return r.status().with_context("sending to " + topic_url(topic));
  return Status::ok();
}

void App::stop() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->stop_requested = true;
  impl_->cv.notify_all();
}

namespace {

// One agent's job and its supervision state.
struct AgentRun {
  std::unique_ptr<Environment> env;
  std::unique_ptr<runtime::Job> job;
  std::thread waiter;
  int generation = 0;
  bool running = false;
  bool done = false;
  std::shared_ptr<const runtime::JobSnapshot> last_checkpoint;  // without a checkpoint directory
  std::deque<int64_t> restart_times_ms;
};

const detail::TopicDecl* find_topic(const std::vector<detail::TopicDecl>& topics,
                                    const std::string& name) {
  for (const auto& t : topics) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

}  // namespace

WorkerReport App::run(const WorkerOptions& wopts) {
  WorkerReport report;
  {
    std::lock_guard<std::mutex> lock(impl_->counts_mu);
    impl_->counts.assign(agents_.size(), AgentRunCounts{});
  }
  std::ostream& log = options_.log ? *options_.log : std::cerr;
  const Clock& clock = options_.clock ? *options_.clock : SystemClock::instance();
  auto fail = [&](Status s) {
    report.status = std::move(s);
    return report;
  };
  // ---- validate ----
  std::vector<std::string> problems = problems_;
  const bool embedded = embedded_broker();
  if (Status s = check_broker_url(options_.broker); !s.is_ok()) problems.push_back(s.message());
  if (options_.state_backend != "memory" && options_.state_backend != "rocksdb") {
    problems.push_back("state backend '" + options_.state_backend +
                       "': use \"memory\" or \"rocksdb\"");
  }
  if (options_.state_backend == "rocksdb" && options_.state_dir.empty()) {
    problems.push_back("state backend 'rocksdb' needs a state directory (AppOptions::state_dir)");
  }
  if (agents_.empty()) problems.push_back("the app declares no agent");
  for (const auto& a : agents_) {
    if (!find_topic(topics_, a.topic)) {
      problems.push_back("agent '" + a.name + "' reads undeclared topic '" + a.topic + "'");
    }
    for (const auto& s : a.options.sinks) {
      if (!find_topic(topics_, s)) {
        problems.push_back("agent '" + a.name + "' sends to undeclared topic '" + s + "'");
      }
    }
  }
  for (const auto& [topic, file] : wopts.topic_out) {
    if (!find_topic(topics_, topic)) problems.push_back("--topic-out: no topic '" + topic + "'");
  }
  auto writers_of = [&](const std::string& topic) {
    std::vector<size_t> out;
    for (size_t i = 0; i < agents_.size(); ++i) {
      const auto& o = agents_[i].options;
      if (o.dead_letter == topic ||
          std::find(o.sinks.begin(), o.sinks.end(), topic) != o.sinks.end()) {
        out.push_back(i);
      }
    }
    return out;
  };
  // kafka:// topics have no end: with until_done an agent reading a topic that agents write
  // starts once its writers have finished, which needs the agents' topics to form no cycle.
  const bool staged = !embedded && wopts.until_done;
  if (staged) {
    std::vector<int> state(agents_.size(), 0);  // 0 unvisited, 1 on the path, 2 done
    std::function<bool(size_t)> cyclic = [&](size_t i) {
      if (state[i] == 1) return true;
      if (state[i] == 2) return false;
      state[i] = 1;
      for (size_t w : writers_of(agents_[i].topic)) {
        if (cyclic(w)) return true;
      }
      state[i] = 2;
      return false;
    };
    for (size_t i = 0; i < agents_.size(); ++i) {
      if (cyclic(i)) {
        problems.push_back("until_done over " + options_.broker + ": agent '" + agents_[i].name +
                           "' is in a cycle of agents writing each other's topics (a Kafka "
                           "topic has no end to wait for)");
        break;
      }
    }
  }
  if (!problems.empty()) {
    std::string m = "app '" + name_ + "' is invalid:";
    for (const auto& p : problems) m += "\n  " + p;
    return fail(Status::invalid_argument(m));
  }
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stop_requested = false;
    impl_->events.clear();
  }
  // ---- topics (created; loaded from the state directory) ----
  connectors::MemoryBroker& b = broker();
  std::map<std::string, connectors::TopicPtr> topic_ptrs;  // memory:// only
  if (embedded) {
    for (const auto& t : topics_) {
      auto p = b.create_topic(t.name, {.partitions = t.partitions});
      if (!p.is_ok()) return fail(p.status());
      topic_ptrs[t.name] = *p;
    }
    for (const auto& a : agents_) {
      if (!a.options.dead_letter.empty() && !topic_ptrs.count(a.options.dead_letter)) {
        auto p = b.create_topic(a.options.dead_letter, {.partitions = 1});
        if (!p.is_ok()) return fail(p.status());
        topic_ptrs[a.options.dead_letter] = *p;
      }
    }
  } else {
    std::vector<std::pair<std::string, int>> wanted;
    for (const auto& t : topics_) wanted.emplace_back(t.name, t.partitions);
    for (const auto& a : agents_) {
      if (!a.options.dead_letter.empty() && !find_topic(topics_, a.options.dead_letter)) {
        wanted.emplace_back(a.options.dead_letter, 1);
      }
    }
    if (Status s = ensure_broker_topics(wanted, &log); !s.is_ok()) return fail(std::move(s));
  }
  std::vector<std::unique_ptr<detail::SpoolFollower>> followers;
  if (embedded && !options_.state_dir.empty()) {
    for (const auto& t : topics_) {
      followers.push_back(std::make_unique<detail::SpoolFollower>(
          detail::spool_path(options_.state_dir, t.name), topic_ptrs[t.name]));
      auto n = followers.back()->poll();
      if (!n.is_ok()) return fail(n.status());
    }
  }
  for (const auto& name : wopts.close_after_load) {
    if (!embedded) {  // a Kafka topic is not closed: until_done reads what it holds
      if (!find_topic(topics_, name)) return fail(Status::not_found("no topic '" + name + "'"));
      continue;
    }
    auto it = topic_ptrs.find(name);
    if (it == topic_ptrs.end()) return fail(Status::not_found("no topic '" + name + "' to close"));
    it->second->close();
  }

  // ---- agents ----
  std::vector<AgentRun> runs(agents_.size());
  // The embedded broker dies with the process: a worker restored from a checkpoint directory
  // finds its output topics empty, without the transactions its topic sinks' snapshots would
  // re-commit. Their uids carry this run's incarnation, so sink snapshots of an earlier process
  // are left unrestored (restarts inside this run keep the uids and re-commit as usual).
  // A Kafka cluster outlives the worker: its sinks keep their uids and transactional ids.
  const std::string incarnation = options_.checkpoints.empty() || !embedded
                                      ? std::string()
                                      : "@" + std::to_string(::getpid()) + "-" +
                                            std::to_string(SystemClock::instance().now().millis());
  auto build_and_start = [&](size_t i) -> Status {
    const AgentDecl& a = agents_[i];
    AgentRun& run = runs[i];
    EnvironmentOptions eo;
    eo.parallelism = a.options.concurrency;
    eo.worker_threads = options_.worker_threads;
    eo.clock = options_.clock;
    eo.checkpoint_interval = options_.checkpoint_interval;
    eo.delivery = runtime::DeliveryGuarantee::kExactlyOnce;
    if (!options_.checkpoints.empty()) {
      auto storage = checkpoint::CheckpointStorage::open(agent_checkpoint_dir(a.name));
      if (!storage.is_ok()) return storage.status();
      eo.checkpoint_storage = std::make_shared<checkpoint::CheckpointStorage>(std::move(*storage));
      eo.restore_latest = true;
      eo.allow_non_restored_state = true;  // the sinks of earlier incarnations (see above)
    } else {
      eo.restore_from = run.last_checkpoint;
    }
    if (options_.state_backend == "rocksdb") {
      auto backend = state::rocksdb(options_.state_dir + "/rocksdb/" + a.name);
      if (!backend.is_ok()) return backend.status();
      eo.state_backend = *backend;
    }
    run.env = std::make_unique<Environment>(eo);
    Environment& env = *run.env;
    const detail::TopicDecl* in = find_topic(topics_, a.topic);
    codec::CodecPtr codec = in->kind == ValueKind::kRecord
                                ? codec::json(in->value_schema)
                                : detail::value_codec(in->kind == ValueKind::kText);
    connectors::TopicSourceOptions so;
    if (embedded) {
      so.broker = &b;
    } else {
      // Explicit assignment of the topic's partitions, positions in the agent's checkpoints;
      // committed to this group after each completed checkpoint for monitoring tools.
      so.group_id = name_ + "-" + a.name;
      so.stop_at_end = wopts.until_done;
    }
    so.columns.key = detail::kKeyColumn;
    so.columns.partition = detail::kPartitionColumn;
    so.columns.offset = detail::kOffsetColumn;
    so.columns.timestamp = detail::kTimestampColumn;
    DataStream sends = env.from_topic(topic_url(a.topic), codec, so)
                           .uid(a.name + "/source")
                           .name(a.name + "/source")
                           .key_by(detail::kKeyColumn)
                           .apply(detail::agent_operator(a, tables_, impl_->dead_letters))
                           .uid(a.name)
                           .name(a.name);
    std::vector<std::string> dests = a.options.sinks;
    if (!a.options.dead_letter.empty()) dests.push_back(a.options.dead_letter);
    if (dests.empty()) sends.blackhole().name(a.name + "/no-sinks");
    for (size_t d = 0; d < dests.size(); ++d) {
      DataStream to = sends.filter(col("dest") == lit(static_cast<int64_t>(d)));
      connectors::TopicSinkOptions sink;
      sink.key_column = "key";
      if (embedded) {
        sink.broker = &b;
      } else {
        // Stable across restarts, so that a restarted worker's producers fence the old ones.
        sink.transactional_id_prefix = name_ + "/" + a.name + "/to/" + dests[d];
      }
      const detail::TopicDecl* td = find_topic(topics_, dests[d]);
      sink.partitions = td ? td->partitions : 1;
      to.to_topic(topic_url(dests[d]), detail::value_codec(false), sink)
          .uid(a.name + "/to/" + dests[d] + incarnation)
          .name(a.name + "/to/" + dests[d]);
      for (const auto& [topic, file] : wopts.topic_out) {
        if (topic != dests[d]) continue;
        static const columnar::SchemaPtr kLines =
            columnar::schema({columnar::field("line", columnar::utf8(), false)});
        to.select({col("value").as("line")})
            .to_file({.path = file,
                      .format = FileFormat::kCsv,
                      .csv = {.delimiter = '\x1f', .header = false, .quote = '\x1e'}})
            .set_parallelism(1)
            .uid(a.name + "/file/" + dests[d])
            .name(a.name + "/file/" + dests[d]);
      }
    }
    auto job = env.start(a.name);
    if (!job.is_ok()) return job.status();
    run.job = std::move(job).value();
    run.running = true;
    const int gen = ++run.generation;
    runtime::Job* j = run.job.get();
    run.waiter = std::thread([this, i, gen, j] {
      Status s = j->wait();
      std::lock_guard<std::mutex> lock(impl_->mu);
      impl_->events.push_back({i, gen, std::move(s)});
      impl_->cv.notify_all();
    });
    return Status::ok();
  };
  auto stop_agent = [&](size_t i) {
    AgentRun& run = runs[i];
    if (!run.job) return;
    run.job->cancel();
    if (run.waiter.joinable()) run.waiter.join();
    auto latest = run.job->latest_checkpoint();
    if (latest) run.last_checkpoint = latest;
    run.job.reset();
    run.env.reset();
    run.running = false;
  };
  auto stop_all = [&] {
    for (size_t i = 0; i < runs.size(); ++i) stop_agent(i);
  };

  // Staged (kafka:// until_done): an agent whose topic other agents write waits for them.
  auto ready = [&](size_t i) {
    if (!staged) return true;
    for (size_t w : writers_of(agents_[i].topic)) {
      if (!runs[w].done) return false;
    }
    return true;
  };
  auto start_ready = [&]() -> Status {
    for (size_t i = 0; i < agents_.size(); ++i) {
      if (runs[i].generation > 0 || !ready(i)) continue;
      Status s = build_and_start(i);
      if (!s.is_ok()) return std::move(s).with_context("starting agent '" + agents_[i].name + "'");
    }
    return Status::ok();
  };
  if (Status s = start_ready(); !s.is_ok()) {
    stop_all();
    return fail(std::move(s));
  }

  // ---- timers and spool followers ----
  std::thread background;
  bool background_stop = false;
  std::mutex bg_mu;
  std::condition_variable bg_cv;
  timers_.start(clock.now());
  if (wopts.on_started) wopts.on_started();
  if (timers_.size() > 0 || !followers.empty()) {
    background = std::thread([&] {
      std::unique_lock<std::mutex> lock(bg_mu);
      while (!background_stop) {
        lock.unlock();
        for (auto& e : timers_.fire_due(clock.now())) log << ("app: " + e + "\n");
        for (auto& f : followers) {
          if (f->topic()->is_closed()) continue;
          auto n = f->poll();
          if (!n.is_ok()) log << ("app: " + n.status().message() + "\n");
        }
        lock.lock();
        bg_cv.wait_for(lock, std::chrono::milliseconds(20), [&] { return background_stop; });
      }
    });
  }

  // ---- supervise ----
  Status outcome = Status::ok();
  while (true) {
    std::unique_lock<std::mutex> lock(impl_->mu);
    impl_->cv.wait(lock, [&] { return impl_->stop_requested || !impl_->events.empty(); });
    if (impl_->stop_requested) break;
    Impl::Event ev = std::move(impl_->events.front());
    impl_->events.pop_front();
    lock.unlock();
    AgentRun& run = runs[ev.agent];
    if (ev.generation != run.generation || !run.running) continue;  // a job we stopped
    const AgentDecl& a = agents_[ev.agent];
    if (ev.status.is_ok()) {
      if (run.waiter.joinable()) run.waiter.join();
      run.running = false;
      run.done = true;
      // A topic whose every writer has finished is complete: close it so its readers finish.
      std::vector<std::string> dests = a.options.sinks;
      if (!a.options.dead_letter.empty()) dests.push_back(a.options.dead_letter);
      for (const auto& t : dests) {
        bool all_done = true;
        for (size_t w : writers_of(t)) all_done = all_done && runs[w].done;
        if (all_done && embedded) topic_ptrs[t]->close();
      }
      if (Status s = start_ready(); !s.is_ok()) {
        outcome = std::move(s);
        break;
      }
      bool all = true;
      for (const auto& r : runs) all = all && r.done;
      if (all) break;
      continue;
    }
    // A failure: never silent.
    ++report.failures;
    impl_->count(ev.agent, false);
    log << ("app: agent '" + a.name + "' failed: " + ev.status.to_string() + "\n");
    if (a.options.on_error == OnError::kStop) {
      outcome = Status::internal("agent '" + a.name +
                                 "' failed (on_error = stop): " + ev.status.message());
      break;
    }
    const Supervisor& sup = a.options.supervisor;
    const int64_t now = clock.now().millis();
    while (!run.restart_times_ms.empty() &&
           run.restart_times_ms.front() <= now - sup.within.count()) {
      run.restart_times_ms.pop_front();
    }
    if (static_cast<int>(run.restart_times_ms.size()) >= sup.max_restarts) {
      outcome = Status::internal(
          "agent '" + a.name + "' failed more than " + std::to_string(sup.max_restarts) +
          " restarts allow within " + std::to_string(sup.within.count()) +
          " ms (restart intensity); the worker stops. Last failure: " + ev.status.message());
      break;
    }
    run.restart_times_ms.push_back(now);
    std::vector<size_t> restart;
    for (size_t i = 0; i < agents_.size(); ++i) {
      const bool pick = i == ev.agent || (sup.strategy == Strategy::kOneForAll) ||
                        (sup.strategy == Strategy::kRestForOne && i > ev.agent);
      if (pick && !runs[i].done && runs[i].generation > 0) restart.push_back(i);
    }
    std::string names;
    for (size_t i : restart) names += (names.empty() ? "" : ", ") + agents_[i].name;
    log << ("app: restarting " + names + " (" + std::string(strategy_name(sup.strategy)) +
            ", restart " + std::to_string(run.restart_times_ms.size()) + " of at most " +
            std::to_string(sup.max_restarts) + " within " + std::to_string(sup.within.count()) +
            " ms)\n");
    // The failed job has ended: keep its newest checkpoint, then stop the others to restart.
    if (run.waiter.joinable()) run.waiter.join();
    if (run.job) {
      auto latest = run.job->latest_checkpoint();
      if (latest) run.last_checkpoint = latest;
      run.job.reset();
      run.env.reset();
    }
    run.running = false;
    for (size_t i : restart) stop_agent(i);
    Status started = Status::ok();
    for (size_t i : restart) {
      ++report.restarts;
      impl_->count(i, true);
      report.agents_restarted.push_back(agents_[i].name);
      started = build_and_start(i);
      if (!started.is_ok()) {
        started = std::move(started).with_context("restarting agent '" + agents_[i].name + "'");
        break;
      }
    }
    if (!started.is_ok()) {
      outcome = std::move(started);
      break;
    }
  }
  stop_all();
  if (background.joinable()) {
    {
      std::lock_guard<std::mutex> lock(bg_mu);
      background_stop = true;
    }
    bg_cv.notify_all();
    background.join();
  }
  report.dead_letters = impl_->dead_letters->load();
  if (!outcome.is_ok()) log << ("app: worker stopped: " + outcome.message() + "\n");
  report.status = std::move(outcome);
  return report;
}

}  // namespace sabot::app
