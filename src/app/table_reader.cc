// App::read_table: a table's values from its agents' newest checkpoints, for the `table` command
// and the worker's `/api/tables/NAME`. A table is the keyed state "table:<name>" of every agent
// that declares it, split by subtask; the snapshot reader decodes it without the app's types where
// it can.
#include <filesystem>
#include <string>

#include "sabot/app/app.h"
#include "sabot/base/json_text.h"
#include "sabot/checkpoint/storage.h"
#include "sabot/operators/keyed_process.h"
#include "sabot/state/keyed_snapshot_reader.h"
#include "sabot/state/snapshot.h"

namespace sabot::app {

Result<App::TableRead> App::read_table(const std::string& table, const std::string& key,
                                       const std::string& checkpoint_dir, int64_t limit) const {
  bool declared = false;
  for (const auto& t : tables_) declared = declared || t->name == table;
  if (!declared) return Status::not_found("the app declares no table '" + table + "'");
  if (checkpoint_dir.empty()) {
    return Status::invalid_argument("table '" + table +
                                    "': no checkpoint directory (the worker's --checkpoint-dir)");
  }
  const std::string state_name = "table:" + table;
  auto read_once = [&]() -> Result<TableRead> {
    TableRead read;
    for (const auto& a : agents_) {
      const std::string dir = checkpoint_dir + "/" + a.name;
      if (!std::filesystem::is_directory(dir)) continue;
      SABOT_ASSIGN_OR_RETURN(auto storage, checkpoint::CheckpointStorage::open(dir));
      SABOT_ASSIGN_OR_RETURN(auto data, storage.load_latest(a.name));
      if (!data.has_value()) continue;
      read.checkpoints.emplace_back(a.name, data->checkpoint_id);
      auto op = data->operators.find(a.name);
      if (op == data->operators.end()) continue;
      for (const std::string& stored : op->second.subtasks) {
        if (stored.empty()) continue;
        // Tables on RocksDB are checkpointed incrementally: read back in the full format.
        SABOT_ASSIGN_OR_RETURN(const std::string bytes,
                               operators::full_process_snapshot(
                                   stored, a.name, data->max_parallelism, data->shared_dir));
        SABOT_ASSIGN_OR_RETURN(
            auto reader, state::KeyedSnapshotReader::open(bytes, a.name, data->max_parallelism));
        const auto* st = reader.find_state(state_name);
        if (st == nullptr) continue;
        const state::ValueDecoder decoder = state::ValueDecoder::for_state(st->kind, st->type_tag);
        SABOT_RETURN_IF_ERROR(
            reader.for_each_entry(state_name, [&](const state::KeyedSnapshotReader::Entry& e) {
              std::string k =
                  e.key.empty() || !e.key[0].is_valid ? std::string() : e.key[0].as_string();
              if (!key.empty() && k != key) return Status::ok();
              if (limit > 0 && static_cast<int64_t>(read.entries.size()) >= limit) {
                read.truncated = true;
                return Status::ok();
              }
              std::string v;
              if (decoder.decodable()) {
                SABOT_ASSIGN_OR_RETURN(v, decoder.to_json(e.value));
              } else {
                v = "{\"value_hex\": \"" + state::to_hex(e.value) + "\"}";
              }
              read.entries.push_back({std::move(k), std::move(v)});
              return Status::ok();
            }));
      }
    }
    return read;
  };
  // A running worker's retention may delete the shared files of the checkpoint just loaded (an
  // incremental RocksDB checkpoint reads them after loading it): a newer checkpoint then exists,
  // so read again.
  Result<TableRead> read = read_once();
  for (int attempt = 1; attempt < 3 && !read.is_ok(); ++attempt) read = read_once();
  return read;
}

Result<std::string> App::table_json(const std::string& table, const std::string& key,
                                    const std::string& checkpoint_dir, int64_t limit) const {
  SABOT_ASSIGN_OR_RETURN(TableRead read, read_table(table, key, checkpoint_dir, limit));
  std::string s = "{\"table\":" + json_string(table) +
                  ",\"key\":" + (key.empty() ? std::string("null") : json_string(key)) +
                  ",\"checkpoints\":[";
  for (size_t i = 0; i < read.checkpoints.size(); ++i) {
    if (i) s += ",";
    s += "{\"agent\":" + json_string(read.checkpoints[i].first) +
         ",\"id\":" + std::to_string(read.checkpoints[i].second) + "}";
  }
  s += "],\"entries\":[";
  for (size_t i = 0; i < read.entries.size(); ++i) {
    if (i) s += ",";
    s += "{\"key\":" + json_string(read.entries[i].key) +
         ",\"value\":" + read.entries[i].value_json + "}";
  }
  return s + "],\"truncated\":" + (read.truncated ? "true" : "false") + "}";
}

}  // namespace sabot::app
