// `sabot checkpoints list|show`: what a checkpoint directory holds, read without the job's code
// (the manifest and the snapshot envelopes describe themselves).
#include <ctime>
#include <filesystem>
#include <string>
#include <vector>

#include "commands.h"
#include "sabot/checkpoint/storage.h"
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
                "completed, and per operator uid its parallelism and, per subtask, the state type "
                "and version, the key groups held and the bytes. Every file is checked against the "
                "manifest's size and checksum.");
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
  for (const auto& [uid, op] : data->operators) {
    out->write("\noperator '" + uid + "' (parallelism " + std::to_string(op.parallelism) + ")\n");
    for (size_t s = 0; s < op.subtasks.size(); ++s) {
      const std::string& bytes = op.subtasks[s];
      std::string line = "  subtask " + std::to_string(s) + ": ";
      if (bytes.empty()) {
        out->write(line + "no state\n");
        continue;
      }
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
    }
  }
  if (Status st = out->close(); !st.is_ok()) return fail(st.message());
  return kExitOk;
}

}  // namespace

int checkpoints_list_command(std::span<const std::string> args) { return checkpoints_list(args); }
int checkpoints_show_command(std::span<const std::string> args) { return checkpoints_show(args); }

}  // namespace sabot::cli
