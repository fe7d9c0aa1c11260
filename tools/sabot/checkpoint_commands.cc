// `sabot checkpoints list|show` and `sabot state read`: what a checkpoint directory holds, read
// without the job's code (the manifest and the snapshot envelopes describe themselves; keyed state
// is decoded by state/keyed_snapshot_reader.h).
#include <algorithm>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "commands.h"
#include "sabot/checkpoint/storage.h"
#include "sabot/operators/keyed_process.h"
#include "sabot/state/keyed_snapshot_reader.h"
#include "sabot/state/snapshot.h"

namespace sabot::cli {
namespace {

std::string utc_time(int64_t unix_ms) {
  if (unix_ms <= 0) return "-";
  const std::time_t secs = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string pad(std::string s, size_t width) {
  if (s.size() < width) s.append(width - s.size(), ' ');
  return s;
}

// "3 key groups (0-2, 7), 1.2 KB"-style summary of a snapshot envelope's sections.
std::string describe_sections(const state::SnapshotReader& r) {
  std::vector<int32_t> groups;
  bool operator_wide = false;
  for (const auto& s : r.sections()) {
    if (s.key_group == state::kOperatorWide) {
      operator_wide = true;
    } else {
      groups.push_back(s.key_group);
    }
  }
  std::string ranges;
  for (size_t i = 0; i < groups.size();) {
    size_t j = i;
    while (j + 1 < groups.size() && groups[j + 1] == groups[j] + 1) ++j;
    if (!ranges.empty()) ranges.push_back(',');
    ranges.append(std::to_string(groups[i]));
    if (j > i) ranges.append("-").append(std::to_string(groups[j]));
    i = j + 1;
  }
  std::string out = std::to_string(groups.size()) + " key groups";
  if (!groups.empty()) out.append(" [").append(ranges).append("]");
  if (operator_wide) out += " + operator-wide";
  return out;
}

// What `checkpoints show` adds under a keyed-state or process-function subtask: keys, timers and,
// per state, its kind, value type, TTL and counts.
std::string describe_keyed(const state::KeyedSnapshotReader& k) {
  std::string out = "    " + std::to_string(k.num_keys()) + " keys, key type ";
  for (size_t c = 0; c < k.key_types().size(); ++c) {
    if (c) out += ", ";
    out += k.key_types()[c].to_string();
  }
  if (k.header().state_type == state::kProcessFunctionStateType) {
    out += "; timers: " + std::to_string(k.event_timers()) + " event-time, " +
           std::to_string(k.processing_timers()) + " processing-time";
  }
  out += "\n";
  for (const auto& s : k.states()) {
    const state::ValueDecoder d = state::ValueDecoder::for_state(s.kind, s.type_tag);
    out += "    state '" + s.name + "': " + std::string(state::state_kind_name(s.kind)) + " of " +
           d.value_type();
    if (s.ttl_ms > 0) out += ", TTL " + std::to_string(s.ttl_ms) + " ms";
    out += ", " + std::to_string(s.entries) + " entries over " + std::to_string(s.keys) + " keys\n";
  }
  return out;
}

// Source positions as the executor stores them (runtime/executor.cc: state type
// "source-positions", one operator-wide section: u64 count, then per split an i32 split number
// and its position bytes). Positions of one encoded number (runtime::encode_position, what the
// built-in sources write) are printed as that number, others as hex.
constexpr std::string_view kSourcePositionsType = "source-positions";

std::string describe_positions(const state::SnapshotReader& r) {
  std::string out;
  for (size_t i = 0; i < r.sections().size(); ++i) {
    if (r.sections()[i].key_group != state::kOperatorWide) continue;
    ByteReader b = r.section_reader(i);
    uint64_t n = 0;
    if (Status st = b.get_count(&n, sizeof(int32_t) + sizeof(uint64_t)); !st.is_ok()) {
      return "    unreadable positions: " + st.message() + "\n";
    }
    out += "    positions:";
    for (uint64_t k = 0; k < n; ++k) {
      int32_t split = 0;
      std::string_view bytes;
      Status st = b.get(&split);
      if (st.is_ok()) st = b.get_bytes(&bytes);
      if (!st.is_ok()) return out + " (unreadable: " + st.message() + ")\n";
      out += " split " + std::to_string(split) + " @ ";
      if (bytes.size() == sizeof(int64_t)) {
        int64_t v = 0;
        std::memcpy(&v, bytes.data(), sizeof(v));
        out += std::to_string(v);
      } else {
        out += "0x" + state::to_hex(bytes);
      }
      if (k + 1 < n) out += ",";
    }
    out += "\n";
  }
  return out;
}

int checkpoints_list(std::span<const std::string> args) {
  std::string dir;
  FlagSet flags(
      "sabot checkpoints list",
      "Lists the checkpoints and savepoints in a checkpoint directory (the --checkpoint-dir "
      "of a job): number, kind, completion time (UTC), size of the state files, job and "
      "status. A checkpoint whose run stopped before its manifest was written, or whose "
      "manifest is damaged, is listed with the reason; recovery skips it.");
  flags.add_positional_string("DIR", &dir, "the checkpoint directory");
  if (auto code = parse_flags(flags, args)) return *code;
  if (dir.empty()) return fail("checkpoints list: give the checkpoint directory (DIR)");
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return fail("checkpoints list: '" + dir + "' is not a directory");
  }
  auto storage = checkpoint::CheckpointStorage::open(dir);
  if (!storage.is_ok()) return fail(storage.status().message());
  auto all = storage->list();
  if (!all.is_ok()) return fail(all.status().message());
  auto out = OutputFile::open("-");
  if (!out.is_ok()) return fail(out.status().message());
  out->write(pad("NUMBER", 8) + pad("KIND", 11) + pad("COMPLETED (UTC)", 22) + pad("BYTES", 14) +
             pad("JOB", 20) + "STATUS\n");
  for (const auto& c : *all) {
    out->write(pad(std::to_string(c.checkpoint_id), 8) +
               pad(c.savepoint ? "savepoint" : "checkpoint", 11) +
               pad(utc_time(c.created_unix_ms), 22) + pad(std::to_string(c.bytes), 14) +
               pad(c.job_name.empty() ? "-" : c.job_name, 20) + c.status + "\n");
  }
  if (Status st = out->close(); !st.is_ok()) return fail(st.message());
  return kExitOk;
}

int checkpoints_show(std::span<const std::string> args) {
  std::string path;
  FlagSet flags("sabot checkpoints show",
                "Describes one checkpoint (DIR/chk-<n> or DIR/savepoint-<n>): the job, when it "
                "completed, and per operator uid its parallelism and bytes and, per subtask, the "
                "state type and version, the key groups held and the bytes. Keyed state (state "
                "types keyed-state and process-function) also shows its keys, key types and "
                "timers and, per state, its kind, C++ value type, TTL and entry and key counts; "
                "sources show their split positions. Every file is checked against the "
                "manifest's size and checksum. 'sabot state read' prints a state's values.");
  flags.add_positional_string("PATH", &path, "the checkpoint's directory");
  if (auto code = parse_flags(flags, args)) return *code;
  if (path.empty()) return fail("checkpoints show: give the checkpoint's directory (PATH)");
  auto info = checkpoint::read_manifest(path);
  if (!info.is_ok()) return fail(info.status().message());
  if (!info->usable) return fail("checkpoint '" + path + "': " + info->status);
  auto data = checkpoint::load_checkpoint(path);
  if (!data.is_ok()) return fail(data.status().message());
  auto out = OutputFile::open("-");
  if (!out.is_ok()) return fail(out.status().message());
  out->write("checkpoint " + std::to_string(info->checkpoint_id) +
             (info->savepoint ? " (savepoint)" : "") + " of job '" + info->job_name + "'\n");
  out->write("completed " + utc_time(info->created_unix_ms) + ", max parallelism " +
             std::to_string(info->max_parallelism) + ", " + std::to_string(info->bytes) +
             " bytes in " + std::to_string(info->files.size()) + " files\n");
  if (!info->shared_files.empty()) {
    uint64_t shared = 0;
    for (const auto& f : info->shared_files) shared += f.size;
    out->write("shared files (incremental RocksDB checkpoints, in " + data->shared_dir +
               "): " + std::to_string(info->shared_files.size()) + ", " + std::to_string(shared) +
               " bytes, of which this checkpoint copied " +
               std::to_string(info->shared_bytes_copied) + "\n");
  }
  for (const auto& [uid, op] : data->operators) {
    uint64_t op_bytes = 0;
    for (const std::string& b : op.subtasks) op_bytes += b.size();
    out->write("\noperator '" + uid + "' (parallelism " + std::to_string(op.parallelism) + "), " +
               std::to_string(op_bytes) + " bytes\n");
    for (size_t s = 0; s < op.subtasks.size(); ++s) {
      std::string line = "  subtask " + std::to_string(s) + ": ";
      if (op.subtasks[s].empty()) {
        out->write(line + "no state\n");
        continue;
      }
      // Dedup and top-N wrap their keyed state in their own snapshot: described as that state.
      auto nested = operators::unwrap_keyed_snapshot(op.subtasks[s], uid, info->max_parallelism);
      if (!nested.is_ok()) {
        out->write(line + "unreadable: " + nested.status().message() + "\n");
        continue;
      }
      const std::string_view stored = nested->has_value() ? (*nested)->keyed : op.subtasks[s];
      if (nested->has_value()) {
        line += "'" + (*nested)->state_type + "' v" + std::to_string((*nested)->state_version) +
                " holding ";
      }
      // An incremental RocksDB snapshot is described as the full snapshot it stands for.
      auto full =
          operators::full_process_snapshot(stored, uid, info->max_parallelism, data->shared_dir);
      if (!full.is_ok()) {
        out->write(line + "unreadable: " + full.status().message() + "\n");
        continue;
      }
      if (operators::is_incremental_process_snapshot(stored)) {
        line += "incremental RocksDB checkpoint (" + std::to_string(stored.size()) +
                " bytes, its SST files shared), read as ";
      }
      const std::string& bytes = *full;
      // The envelope names its own state type; read it back under that name.
      auto header = state::SnapshotReader::peek_header(bytes);
      if (!header.is_ok()) {
        out->write(line + "unreadable: " + header.status().message() + "\n");
        continue;
      }
      const std::string& type = header->state_type;
      auto r = state::SnapshotReader::open(bytes, uid, type, UINT16_MAX, info->max_parallelism);
      if (!r.is_ok()) {
        out->write(line + "unreadable: " + r.status().message() + "\n");
        continue;
      }
      out->write(line + "state '" + r->header().state_type + "' v" +
                 std::to_string(r->header().state_version) + ", " + describe_sections(*r) + ", " +
                 std::to_string(bytes.size()) + " bytes\n");
      if (state::is_keyed_state_type(type)) {
        auto keyed = state::KeyedSnapshotReader::open(bytes, uid, info->max_parallelism);
        out->write(keyed.is_ok()
                       ? describe_keyed(*keyed)
                       : "    unreadable keyed state: " + keyed.status().message() + "\n");
      } else if (type == kSourcePositionsType) {
        out->write(describe_positions(*r));
      }
    }
  }
  if (Status st = out->close(); !st.is_ok()) return fail(st.message());
  return kExitOk;
}

int state_read(std::span<const std::string> args) {
  std::string path;
  std::string uid;
  std::string name;
  std::string key_text;
  FlagSet flags(
      "sabot state read",
      "Prints the values of one keyed state in a checkpoint (DIR/chk-<n> or DIR/savepoint-<n>) "
      "as JSON lines, {\"key\": ..., \"namespace\": ..., \"value\": ...}, read without the "
      "job's code: keys by the key types the snapshot stores (several key columns as an array), "
      "values by the state's stored C++ type for the types StateCodec encodes built in (numbers, "
      "bool, std::string, and std::vector, std::pair, std::optional, std::map of those; list "
      "state as an array, map state as an object). Values of other types (structs, enums, own "
      "codecs) are printed as \"value_hex\", their encoded bytes, with a note on stderr. Reads "
      "keyed-state and process-function state, deduplicate's (state 'first': per key the time of "
      "the row last emitted), top-n's (state 'candidates': per key the best rows, best "
      "first, as [[order value as a sortable u64, arrival number], the row's encoded values]) "
      "and the stream-table join's (state 'table': per key the latest right row's encoded "
      "values); 'sabot checkpoints show' lists operators and states.");
  flags.add_positional_string("PATH", &path, "the checkpoint's directory");
  flags.add_string("operator", &uid, "the operator's uid (required)");
  flags.add_string("state", &name, "the state's name (required)");
  flags.add_string("key", &key_text,
                   "only this key, parsed by the key type (several key columns: the values "
                   "separated by ','; null for a null value)");
  if (auto code = parse_flags(flags, args)) return *code;
  if (path.empty()) return fail("state read: give the checkpoint's directory (PATH)");
  if (uid.empty()) return fail("state read: give the operator's uid (--operator UID)");
  if (name.empty()) return fail("state read: give the state's name (--state NAME)");
  auto info = checkpoint::read_manifest(path);
  if (!info.is_ok()) return fail(info.status().message());
  if (!info->usable) return fail("checkpoint '" + path + "': " + info->status);
  auto data = checkpoint::load_checkpoint(path);
  if (!data.is_ok()) return fail(data.status().message());
  auto op = data->operators.find(uid);
  if (op == data->operators.end()) {
    std::string uids;
    for (const auto& [u, o] : data->operators) uids += (uids.empty() ? "'" : ", '") + u + "'";
    return fail("checkpoint '" + path + "' has no operator '" + uid +
                "'; its operators: " + (uids.empty() ? "none" : uids));
  }
  std::vector<state::KeyedSnapshotReader> readers;
  std::vector<std::string> expanded;  // what the readers read
  expanded.reserve(op->second.subtasks.size());
  for (const std::string& stored : op->second.subtasks) {
    if (stored.empty()) continue;
    // Dedup and top-N wrap their keyed state in their own snapshot; an incremental RocksDB
    // snapshot is read as the full snapshot it stands for.
    auto nested = operators::unwrap_keyed_snapshot(stored, uid, info->max_parallelism);
    if (!nested.is_ok()) return fail(nested.status().message());
    auto full = operators::full_process_snapshot(nested->has_value() ? (*nested)->keyed : stored,
                                                 uid, info->max_parallelism, data->shared_dir);
    if (!full.is_ok()) return fail(full.status().message());
    const std::string& bytes = expanded.emplace_back(std::move(full).value());
    auto header = state::SnapshotReader::peek_header(bytes);
    if (!header.is_ok()) return fail("operator '" + uid + "': " + header.status().message());
    if (!state::is_keyed_state_type(header->state_type)) {
      return fail(
          "operator '" + uid + "' holds state type '" + header->state_type +
          "', which 'sabot state read' cannot decode (it reads keyed-state, process-function, "
          "deduplicate, top-n and stream-table-join state); 'sabot checkpoints show' describes it");
    }
    auto r = state::KeyedSnapshotReader::open(bytes, uid, info->max_parallelism);
    if (!r.is_ok()) return fail(r.status().message());
    readers.push_back(std::move(r).value());
  }
  if (readers.empty()) return fail("operator '" + uid + "' has no state in '" + path + "'");
  const auto* st = readers.front().find_state(name);
  if (st == nullptr) {
    std::string names;
    for (const auto& s : readers.front().states()) {
      names += (names.empty() ? "'" : ", '") + s.name + "' (" +
               std::string(state::state_kind_name(s.kind)) + ")";
    }
    return fail("operator '" + uid + "' has no state '" + name +
                "'; its states: " + (names.empty() ? "none" : names));
  }
  const state::ValueDecoder decoder = state::ValueDecoder::for_state(st->kind, st->type_tag);
  if (!decoder.decodable()) {
    std::fprintf(stderr,
                 "sabot: note: state '%s' is not decoded: %s; its values are printed as "
                 "\"value_hex\", the bytes of their encoding\n",
                 name.c_str(), decoder.reason().c_str());
  }
  const std::vector<columnar::DataType> key_types = readers.front().key_types();
  std::optional<std::vector<columnar::Scalar>> want;
  if (flags.is_set("key")) {
    auto k = state::parse_key(key_text, key_types);
    if (!k.is_ok()) return fail("state read: --key: " + k.status().message());
    want = std::move(k).value();
  }
  auto out = OutputFile::open("-");
  if (!out.is_ok()) return fail(out.status().message());
  std::string line;
  for (const auto& r : readers) {
    if (r.key_types() != key_types) {
      return fail("operator '" + uid + "': its subtasks' snapshots have different key types");
    }
    Status walked = r.for_each_entry(name, [&](const state::KeyedSnapshotReader::Entry& e) {
      if (want && !std::equal(e.key.begin(), e.key.end(), want->begin(), want->end())) {
        return Status::ok();
      }
      line = "{\"key\": ";
      if (e.key.size() == 1) {
        line += state::scalar_to_json(e.key[0]);
      } else {
        line += "[";
        for (size_t c = 0; c < e.key.size(); ++c) {
          if (c) line += ", ";
          line += state::scalar_to_json(e.key[c]);
        }
        line += "]";
      }
      line += ", \"namespace\": " + std::to_string(e.ns);
      if (decoder.decodable()) {
        auto v = decoder.to_json(e.value);
        if (!v.is_ok()) {
          return Status::invalid_data("operator '" + uid + "' state '" + name + "' key group " +
                                      std::to_string(e.key_group) + ": " + v.status().message());
        }
        line += ", \"value\": " + *v + "}\n";
      } else {
        line += ", \"value_hex\": \"" + state::to_hex(e.value) + "\"}\n";
      }
      out->write(line);
      return Status::ok();
    });
    if (!walked.is_ok()) return fail(walked.message());
  }
  if (Status s = out->close(); !s.is_ok()) return fail(s.message());
  return kExitOk;
}

}  // namespace

int state_read_command(std::span<const std::string> args) { return state_read(args); }
int checkpoints_list_command(std::span<const std::string> args) { return checkpoints_list(args); }
int checkpoints_show_command(std::span<const std::string> args) { return checkpoints_show(args); }

}  // namespace sabot::cli
