#include "app/agent.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <exception>
#include <fstream>

#include "sabot/base/json_text.h"
#include "sabot/operators/keyed_process.h"
#include "sabot/state/key_registry.h"
#include "sabot/state/memory_state.h"

namespace sabot::app::detail {

using columnar::Array;
using columnar::RecordBatch;
using columnar::SchemaPtr;

// ---- the scope of the record being processed ----

struct AgentScope {
  const AgentDecl* agent = nullptr;
  state::KeyedStateBackend* backend = nullptr;
  const Clock* clock = nullptr;
  std::vector<state::State*> tables;  // by TableDecl::id
  std::string_view key;
  bool has_key = false;
  int32_t partition = 0;
  int64_t offset = 0;
  int64_t timestamp_ms = 0;
  struct PendingSend {
    int64_t dest;
    std::optional<std::string> key;
    std::string value;
  };
  std::vector<PendingSend> sends;  // of the current record, kept once it succeeds
};

namespace {
thread_local AgentScope* tls_scope = nullptr;

// Sets the thread's scope for the duration of one call.
class ScopeGuard {
 public:
  explicit ScopeGuard(AgentScope* s) : previous_(tls_scope) { tls_scope = s; }
  ~ScopeGuard() { tls_scope = previous_; }

 private:
  AgentScope* previous_;
};
}  // namespace

AgentScope* current_scope() { return tls_scope; }
void throw_no_scope(std::string_view table) {
  throw std::logic_error("table '" + std::string(table) +
                         "' used outside an agent (tables are read and written by agents)");
}
std::string_view scope_key(const AgentScope& s) { return s.key; }
bool scope_has_key(const AgentScope& s) { return s.has_key; }
int64_t scope_timestamp(const AgentScope& s) { return s.timestamp_ms; }
Timestamp scope_now(const AgentScope& s) { return s.clock->now(); }
state::KeyedStateBackend& scope_backend(const AgentScope& s) { return *s.backend; }
state::State* scope_table(const AgentScope& s, int table_id) {
  return s.tables.at(static_cast<size_t>(table_id));
}
void check_current_key(const AgentScope& s, std::string_view table, std::string_view key) {
  if (key != s.key) {
    throw std::logic_error("table '" + std::string(table) + "': key '" + std::string(key) +
                           "' is not the current record's key '" + std::string(s.key) +
                           "' (a table is partitioned like its agent's topic: an agent reads "
                           "and writes the keys of its own records)");
  }
}

// ---- the value codec ----

namespace {

Array retype(const Array& a, columnar::DataType type) {
  if (a.type() == type) return a;
  auto data = std::make_shared<columnar::ArrayData>(a.data());
  data->type = type;
  return Array(std::move(data));
}

class ValueDecoder final : public codec::Decoder {
 public:
  explicit ValueDecoder(SchemaPtr schema) : schema_(std::move(schema)) {}
  Result<codec::DecodeResult> decode(const Array& messages) override {
    codec::DecodeResult r;
    std::vector<Array> cols{retype(messages, schema_->field(0).type)};
    r.batch = RecordBatch::make_unchecked(schema_, std::move(cols), messages.length());
    return r;
  }

 private:
  SchemaPtr schema_;
};

class ValueEncoder final : public codec::Encoder {
 public:
  Result<Array> encode(const RecordBatch& batch) override {
    const int col = batch.schema().field_index("value");
    if (col < 0) return Status::invalid_argument("value codec: the batch has no 'value' column");
    return retype(batch.column(col), columnar::binary());
  }
};

class ValueCodec final : public codec::Codec {
 public:
  explicit ValueCodec(bool text)
      : schema_(columnar::schema(
            {columnar::field("value", text ? columnar::utf8() : columnar::binary())})) {}
  std::string name() const override { return "value"; }
  SchemaPtr schema() const override { return schema_; }
  Result<std::unique_ptr<codec::Decoder>> make_decoder() const override {
    return std::unique_ptr<codec::Decoder>(new ValueDecoder(schema_));
  }
  Result<std::unique_ptr<codec::Encoder>> make_encoder() const override {
    return std::unique_ptr<codec::Encoder>(new ValueEncoder());
  }

 private:
  SchemaPtr schema_;
};

}  // namespace

codec::CodecPtr value_codec(bool text) { return std::make_shared<ValueCodec>(text); }

// ---- the agent operator ----

namespace {

class AgentDriver final : public operators::KeyedProcessDriver {
 public:
  AgentDriver(const AgentDecl* agent, std::vector<std::shared_ptr<TableDecl>> tables,
              RowInvoker invoker, std::shared_ptr<std::atomic<int64_t>> dead_letters,
              const columnar::Schema& schema)
      : agent_(agent),
        tables_(std::move(tables)),
        invoker_(std::move(invoker)),
        dead_letters_(std::move(dead_letters)),
        key_col_(schema.field_index(kKeyColumn)),
        partition_col_(schema.field_index(kPartitionColumn)),
        offset_col_(schema.field_index(kOffsetColumn)),
        ts_col_(schema.field_index(kTimestampColumn)),
        value_col_(schema.field_index("value")) {}

  Status open(operators::KeyedProcessScope* scope, const runtime::OperatorContext& ctx) override {
    scope_ = scope;
    s_.agent = agent_;
    s_.backend = scope->backend;
    s_.clock = ctx.clock;
    for (const auto& t : tables_) {
      SABOT_ASSIGN_OR_RETURN(state::State * h, t->register_state(*scope->backend));
      s_.tables.push_back(h);
    }
    return Status::ok();
  }

  Status process_rows(const RecordBatch& batch, std::span<const state::KeyId> ids) override {
    ScopeGuard guard(&s_);
    AgentContext ctx = make_context();
    const Array& keys = batch.column(key_col_);
    const Array& partitions = batch.column(partition_col_);
    const Array& offsets = batch.column(offset_col_);
    const Array& times = batch.column(ts_col_);
    const int64_t n = batch.num_rows();
    for (int64_t r = 0; r < n; ++r) {
      // Tables are a random access per record: start fetching a later record's entries now.
      scope_->backend->prefetch_ahead(ids, static_cast<size_t>(r));
      const state::KeyId id = ids[static_cast<size_t>(r)];
      scope_->backend->set_current_key(id);
      scope_->key = id;
      s_.has_key = keys.is_valid(r);
      s_.key = s_.has_key ? keys.string_view(r) : std::string_view();
      s_.partition = static_cast<int32_t>(partitions.value<int32_t>(r));
      s_.offset = offsets.value<int64_t>(r);
      s_.timestamp_ms = times.value<int64_t>(r);
      s_.sends.clear();
      try {
        invoker_(batch, r, ctx);
      } catch (const std::exception& e) {
        SABOT_RETURN_IF_ERROR(failed(batch, r, e.what()));
        continue;
      }
      for (auto& send : s_.sends) {
        out_.append(SendRow{send.dest,
                            send.key ? std::optional<std::string_view>(*send.key) : std::nullopt,
                            send.value});
      }
    }
    return Status::ok();
  }

  Status on_timer(Timestamp) override { return Status::ok(); }

  Result<std::optional<RecordBatch>> take_output() override {
    if (out_.size() == 0) return std::optional<RecordBatch>();
    return std::optional<RecordBatch>(out_.finish());
  }

 private:
  AgentContext make_context();

  // An exception of the user's function on row r: routed to the dead-letter topic, or the
  // agent's failure naming the record.
  Status failed(const RecordBatch& batch, int64_t r, const std::string& what) {
    std::string where = "agent '" + agent_->name + "' failed on topic '" + agent_->topic +
                        "' partition " + std::to_string(s_.partition) + " offset " +
                        std::to_string(s_.offset);
    if (agent_->options.on_error != OnError::kDeadLetter) {
      return Status::internal(where + (s_.has_key ? " (key '" + std::string(s_.key) + "')" : "") +
                              ": " + what);
    }
    std::string letter = "{\"agent\":\"" + json_escaped(agent_->name) + "\",\"topic\":\"" +
                         json_escaped(agent_->topic) + "\",\"partition\":";
    letter += std::to_string(s_.partition);
    letter += ",\"offset\":";
    letter += std::to_string(s_.offset);
    letter += ",\"error\":\"";
    letter += json_escaped(what);
    letter += "\",\"value\":\"";
    if (value_col_ >= 0 && batch.column(value_col_).is_valid(r) &&
        (batch.column(value_col_).type().id() == columnar::TypeId::kUtf8 ||
         batch.column(value_col_).type().id() == columnar::TypeId::kBinary)) {
      letter += json_escaped(batch.column(value_col_).string_view(r));
    } else {
      letter += json_escaped(::sabot::detail::describe_row(batch, r));
    }
    letter += "\"}";
    out_.append(SendRow{static_cast<int64_t>(agent_->options.sinks.size()),
                        s_.has_key ? std::optional<std::string_view>(s_.key) : std::nullopt,
                        letter});
    dead_letters_->fetch_add(1, std::memory_order_relaxed);
    return Status::ok();
  }

  const AgentDecl* agent_;
  std::vector<std::shared_ptr<TableDecl>> tables_;
  RowInvoker invoker_;
  std::shared_ptr<std::atomic<int64_t>> dead_letters_;
  int key_col_, partition_col_, offset_col_, ts_col_, value_col_;
  operators::KeyedProcessScope* scope_ = nullptr;
  AgentScope s_;
  RowWriter<SendRow> out_;
};

class AgentFactory final : public runtime::OperatorFactory {
 public:
  AgentFactory(const AgentDecl& agent, std::vector<std::shared_ptr<TableDecl>> tables,
               std::shared_ptr<std::atomic<int64_t>> dead_letters)
      : agent_(agent), tables_(std::move(tables)), dead_letters_(std::move(dead_letters)) {}
  std::string kind() const override { return "agent"; }

  Result<SchemaPtr> output_schema(std::span<const SchemaPtr> inputs) const override {
    if (inputs.size() != 1) return Status::invalid_argument("an agent takes one input");
    for (const char* c : {kKeyColumn, kPartitionColumn, kOffsetColumn, kTimestampColumn}) {
      SABOT_RETURN_IF_ERROR(inputs[0]->require_field_index(c).status());
    }
    SABOT_RETURN_IF_ERROR(agent_.invoker(*inputs[0]).status());
    return record_schema<SendRow>();
  }

  Result<std::unique_ptr<runtime::Operator>> create(
      std::span<const SchemaPtr> inputs, const runtime::OperatorContext& ctx) const override {
    const columnar::Schema& schema = *inputs[0];
    SABOT_ASSIGN_OR_RETURN(RowInvoker invoker, agent_.invoker(schema));
    const int key = schema.field_index(kKeyColumn);
    // The job's backend (EnvironmentOptions::state_backend: memory or RocksDB).
    SABOT_ASSIGN_OR_RETURN(auto backend,
                           operators::make_keyed_backend(ctx, {schema.field(key).type}));
    auto driver =
        std::make_unique<AgentDriver>(&agent_, tables_, std::move(invoker), dead_letters_, schema);
    return std::unique_ptr<runtime::Operator>(new operators::KeyedProcessOperator(
        std::move(driver), std::vector<int>{key}, std::move(backend), ctx));
  }

 private:
  AgentDecl agent_;
  std::vector<std::shared_ptr<TableDecl>> tables_;
  std::shared_ptr<std::atomic<int64_t>> dead_letters_;
};

}  // namespace

std::shared_ptr<const runtime::OperatorFactory> agent_operator(
    const AgentDecl& agent, const std::vector<std::shared_ptr<TableDecl>>& tables,
    std::shared_ptr<std::atomic<int64_t>> dead_letters) {
  return std::make_shared<AgentFactory>(agent, tables, std::move(dead_letters));
}

AgentContext AgentDriver::make_context() { return AgentContext(&s_); }

// ---- spool files ----

std::string spool_path(const std::string& state_dir, const std::string& topic) {
  return state_dir + "/topics/" + topic + ".log";
}

Status spool_append(const std::string& path, std::optional<std::string_view> key,
                    std::string_view value, int64_t timestamp_ms) {
  std::string rec = std::to_string(key ? static_cast<int64_t>(key->size()) : -1);
  rec += ' ';
  rec += std::to_string(value.size());
  rec += ' ';
  rec += std::to_string(timestamp_ms);
  rec += '\n';
  if (key) rec += *key;
  rec += value;
  rec += '\n';
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Status::io_error("cannot open '" + path + "': " + std::strerror(errno));
  const ssize_t n = ::write(fd, rec.data(), rec.size());
  const int err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(rec.size())) {
    return Status::io_error("cannot append to '" + path + "': " + std::strerror(err));
  }
  return Status::ok();
}

Result<int64_t> SpoolFollower::poll() {
  std::ifstream in(path_, std::ios::binary);
  if (!in) return int64_t{0};  // nothing sent yet
  in.seekg(bytes_read_);
  std::string chunk((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  bytes_read_ += static_cast<int64_t>(chunk.size());
  buffer_ += chunk;
  SABOT_ASSIGN_OR_RETURN(auto writer, connectors::MemoryTopicWriter::open(topic_));
  size_t pos = 0;
  int64_t added = 0;
  while (true) {
    const size_t nl = buffer_.find('\n', pos);
    if (nl == std::string::npos) break;
    // The header: "<key length or -1> <value length> <timestamp>" (from_chars: sscanf would
    // measure the whole buffer on every call).
    long long klen = 0;
    long long vlen = 0;
    long long ts = 0;
    const char* cursor = buffer_.data() + pos;
    const char* end = buffer_.data() + nl;
    bool ok = true;
    for (long long* field : {&klen, &vlen, &ts}) {
      while (cursor < end && *cursor == ' ') ++cursor;
      auto [next, ec] = std::from_chars(cursor, end, *field);
      ok = ok && ec == std::errc();
      cursor = next;
    }
    if (!ok || vlen < 0 || klen < -1) {
      return Status::invalid_data("spool file '" + path_ + "': bad record header at record " +
                                  std::to_string(records_));
    }
    const size_t body = nl + 1;
    const size_t need = static_cast<size_t>(std::max<long long>(klen, 0) + vlen) + 1;
    if (buffer_.size() < body + need) break;  // the rest is still being written
    std::optional<std::string_view> key;
    if (klen >= 0) key = std::string_view(buffer_).substr(body, static_cast<size_t>(klen));
    std::string_view value = std::string_view(buffer_).substr(
        body + static_cast<size_t>(std::max<long long>(klen, 0)), static_cast<size_t>(vlen));
    const PartitionId p =
        key ? topic_->partition_for_key(*key)
            : PartitionId(static_cast<int32_t>(records_ % topic_->num_partitions()));
    SABOT_RETURN_IF_ERROR(writer->send(p, key, value, Timestamp(ts)));
    ++records_;
    ++added;
    pos = body + need;
  }
  buffer_.erase(0, pos);
  SABOT_RETURN_IF_ERROR(writer->close());
  return added;
}

}  // namespace sabot::app::detail

namespace sabot::app {

std::string_view AgentContext::key() const { return scope_->key; }
bool AgentContext::has_key() const { return scope_->has_key; }
int32_t AgentContext::partition() const { return scope_->partition; }
int64_t AgentContext::offset() const { return scope_->offset; }
Timestamp AgentContext::timestamp() const { return Timestamp(scope_->timestamp_ms); }
const std::string& AgentContext::topic() const { return scope_->agent->topic; }
const std::string& AgentContext::agent() const { return scope_->agent->name; }

void AgentContext::send(std::string_view topic, std::optional<std::string_view> key,
                        std::string_view value) {
  const auto& sinks = scope_->agent->options.sinks;
  for (size_t i = 0; i < sinks.size(); ++i) {
    if (sinks[i] == topic) {
      scope_->sends.push_back({static_cast<int64_t>(i),
                               key ? std::optional<std::string>(std::string(*key)) : std::nullopt,
                               std::string(value)});
      return;
    }
  }
  throw std::invalid_argument("agent '" + scope_->agent->name + "' sends to topic '" +
                              std::string(topic) +
                              "', which is not one of its sinks (AgentOptions::sinks)");
}

std::string AgentContext::encode_json_row(const columnar::RecordBatch& row) {
  auto encoder = codec::json()->make_encoder();
  if (!encoder.is_ok()) throw std::runtime_error(encoder.status().message());
  auto messages = (*encoder)->encode(row);
  if (!messages.is_ok()) throw std::runtime_error(messages.status().message());
  return std::string(messages->string_view(0));
}

}  // namespace sabot::app
