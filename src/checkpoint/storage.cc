#include "sabot/checkpoint/storage.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "sabot/base/bytes.h"
#include "sabot/base/logging.h"
#include "sabot/state/snapshot.h"

namespace sabot::checkpoint {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kManifest = "MANIFEST";
constexpr std::string_view kManifestUid = "checkpoint";
constexpr std::string_view kManifestType = "manifest";
constexpr uint16_t kManifestVersion = 1;
constexpr std::string_view kCheckpointPrefix = "chk-";
constexpr std::string_view kSavepointPrefix = "savepoint-";

Status errno_status(const std::string& what) {
  return Status::io_error(what + ": " + std::strerror(errno));
}

Status write_all(int fd, std::string_view bytes, const std::string& path) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_status("writing '" + path + "' failed");
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return Status::ok();
}

Status fsync_path(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return errno_status("opening '" + path + "' to sync it failed");
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) {
    errno = err;
    return errno_status("syncing '" + path + "' failed");
  }
  return Status::ok();
}

// Writes `bytes` to `path` and syncs it; with `atomic`, through a temporary file renamed over it,
// then syncs the directory so that the rename itself survives a crash.
Status write_file(const std::string& path, std::string_view bytes, bool atomic) {
  const std::string target = atomic ? path + ".tmp" : path;
  const int fd = ::open(target.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return errno_status("creating '" + target + "' failed");
  Status st = write_all(fd, bytes, target);
  if (st.is_ok() && ::fsync(fd) != 0) st = errno_status("syncing '" + target + "' failed");
  ::close(fd);
  SABOT_RETURN_IF_ERROR(st);
  if (!atomic) return Status::ok();
  if (::rename(target.c_str(), path.c_str()) != 0) {
    return errno_status("renaming '" + target + "' to '" + path + "' failed");
  }
  return fsync_path(fs::path(path).parent_path().string(), O_RDONLY | O_DIRECTORY);
}

Result<std::string> read_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno_status("opening '" + path + "' failed");
  std::string out;
  char buf[1 << 16];
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      const Status st = errno_status("reading '" + path + "' failed");
      ::close(fd);
      return st;
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

// The number in "chk-<n>" / "savepoint-<n>", or nullopt for other names.
std::optional<std::pair<int64_t, bool>> parse_dir_name(std::string_view name) {
  bool savepoint = false;
  if (name.starts_with(kCheckpointPrefix)) {
    name.remove_prefix(kCheckpointPrefix.size());
  } else if (name.starts_with(kSavepointPrefix)) {
    name.remove_prefix(kSavepointPrefix.size());
    savepoint = true;
  } else {
    return std::nullopt;
  }
  if (name.empty() || name.size() > 18) return std::nullopt;
  int64_t n = 0;
  for (char c : name) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + (c - '0');
  }
  return std::make_pair(n, savepoint);
}

// A file name for a uid: the uid's safe characters, then the subtask; uids are unique per job, and
// the file name is only a hint (the manifest maps uids to files).
std::string state_file_name(std::string_view uid, int subtask, size_t index) {
  std::string name = "op-" + std::to_string(index) + "-";
  for (char c : uid.substr(0, 64)) {
    const bool safe = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '_';
    name.push_back(safe ? c : '_');
  }
  return name + "-" + std::to_string(subtask) + ".state";
}

std::string encode_manifest(const CheckpointInfo& m) {
  std::string out;
  state::SnapshotWriter w(&out, {std::string(kManifestUid), std::string(kManifestType),
                                 kManifestVersion, m.max_parallelism});
  ByteWriter& b = w.begin_section(state::kOperatorWide);
  b.put_bytes(m.job_name);
  b.put<int64_t>(m.checkpoint_id);
  b.put<int64_t>(m.created_unix_ms);
  b.put<uint8_t>(m.savepoint ? 1 : 0);
  b.put<uint64_t>(m.files.size());
  for (const auto& f : m.files) {
    b.put_bytes(f.uid);
    b.put<int32_t>(f.subtask);
    b.put<int32_t>(f.parallelism);
    b.put_bytes(f.name);
    b.put<uint64_t>(f.size);
    b.put<uint32_t>(f.crc);
  }
  w.finish();
  return out;
}

Status decode_manifest(std::string_view bytes, CheckpointInfo* m) {
  // The manifest's own max parallelism is whatever the job used: read it from the header.
  uint32_t maxp = 0;
  {
    ByteReader peek(bytes, "manifest");
    std::string_view s;
    SABOT_RETURN_IF_ERROR(peek.skip(6));
    SABOT_RETURN_IF_ERROR(peek.get_bytes(&s));
    SABOT_RETURN_IF_ERROR(peek.get_bytes(&s));
    SABOT_RETURN_IF_ERROR(peek.skip(sizeof(uint16_t)));
    SABOT_RETURN_IF_ERROR(peek.get(&maxp));
  }
  SABOT_ASSIGN_OR_RETURN(
      auto reader,
      state::SnapshotReader::open(bytes, kManifestUid, kManifestType, kManifestVersion, maxp));
  if (reader.sections().size() != 1 || reader.sections()[0].key_group != state::kOperatorWide) {
    return Status::invalid_data("manifest: expected one operator-wide section");
  }
  ByteReader r = reader.section_reader(0);
  m->max_parallelism = maxp;
  std::string_view s;
  SABOT_RETURN_IF_ERROR(r.get_bytes(&s));
  m->job_name = std::string(s);
  SABOT_RETURN_IF_ERROR(r.get(&m->checkpoint_id));
  SABOT_RETURN_IF_ERROR(r.get(&m->created_unix_ms));
  uint8_t sp = 0;
  SABOT_RETURN_IF_ERROR(r.get(&sp));
  m->savepoint = sp != 0;
  uint64_t n = 0;
  SABOT_RETURN_IF_ERROR(r.get_count(&n, 40));
  m->files.clear();
  m->bytes = 0;
  for (uint64_t i = 0; i < n; ++i) {
    CheckpointInfo::File f;
    SABOT_RETURN_IF_ERROR(r.get_bytes(&s));
    f.uid = std::string(s);
    SABOT_RETURN_IF_ERROR(r.get(&f.subtask));
    SABOT_RETURN_IF_ERROR(r.get(&f.parallelism));
    SABOT_RETURN_IF_ERROR(r.get_bytes(&s));
    f.name = std::string(s);
    SABOT_RETURN_IF_ERROR(r.get(&f.size));
    SABOT_RETURN_IF_ERROR(r.get(&f.crc));
    if (f.parallelism < 1 || f.subtask < 0 || f.subtask >= f.parallelism) {
      return r.invalid("file '" + f.name + "' of subtask " + std::to_string(f.subtask) + " of " +
                       std::to_string(f.parallelism));
    }
    if (f.name.empty() || f.name.find('/') != std::string::npos || f.name[0] == '.') {
      return r.invalid("bad file name '" + f.name + "'");
    }
    m->bytes += f.size;
    m->files.push_back(std::move(f));
  }
  return r.expect_end();
}

}  // namespace

Result<CheckpointStorage> CheckpointStorage::open(std::string dir, StorageOptions options) {
  if (options.retained < 1) {
    return Status::invalid_argument("checkpoint storage: retained must be at least 1, got " +
                                    std::to_string(options.retained));
  }
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_directory(dir, ec)) {
    return Status::invalid_argument("checkpoint directory '" + dir + "' exists and is not a " +
                                    "directory");
  }
  fs::create_directories(dir, ec);
  if (ec) {
    return Status::io_error("creating checkpoint directory '" + dir + "' failed: " + ec.message());
  }
  return CheckpointStorage(std::move(dir), options);
}

Result<std::string> CheckpointStorage::write(const CheckpointData& data) {
  const std::string name = std::string(data.savepoint ? kSavepointPrefix : kCheckpointPrefix) +
                           std::to_string(data.checkpoint_id);
  const std::string path = (fs::path(dir_) / name).string();
  std::error_code ec;
  if (fs::exists(path, ec)) fs::remove_all(path, ec);  // a leftover of a run that crashed
  if (!fs::create_directory(path, ec) || ec) {
    return Status::io_error("creating '" + path + "' failed: " + ec.message());
  }
  CheckpointInfo m;
  m.job_name = data.job_name;
  m.checkpoint_id = data.checkpoint_id;
  m.created_unix_ms = data.created_unix_ms;
  m.savepoint = data.savepoint;
  m.max_parallelism = data.max_parallelism;
  auto written = [&]() -> Status {
    size_t index = 0;
    for (const auto& [uid, op] : data.operators) {
      for (size_t s = 0; s < op.subtasks.size(); ++s) {
        const std::string& bytes = op.subtasks[s];
        if (bytes.empty()) continue;
        CheckpointInfo::File f{uid,
                               static_cast<int>(s),
                               op.parallelism,
                               state_file_name(uid, static_cast<int>(s), index++),
                               bytes.size(),
                               crc32c(bytes)};
        SABOT_RETURN_IF_ERROR(write_file((fs::path(path) / f.name).string(), bytes, false));
        m.files.push_back(std::move(f));
      }
    }
    SABOT_RETURN_IF_ERROR(fsync_path(path, O_RDONLY | O_DIRECTORY));
    return write_file((fs::path(path) / kManifest).string(), encode_manifest(m), true);
  }();
  if (!written.is_ok()) {
    fs::remove_all(path, ec);
    return written.with_context("writing checkpoint " + std::to_string(data.checkpoint_id));
  }
  SABOT_RETURN_IF_ERROR(remove_old(data.checkpoint_id));
  return path;
}

Status CheckpointStorage::remove_old(int64_t newest_id) const {
  SABOT_ASSIGN_OR_RETURN(auto all, list());
  int kept = 0;
  std::error_code ec;
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    if (it->savepoint) continue;  // savepoints are only deleted by their owner
    const bool keep = it->usable ? kept++ < options_.retained : it->checkpoint_id > newest_id;
    if (keep) continue;
    fs::remove_all(it->path, ec);
    if (ec) {
      SABOT_LOG(kWarn, "checkpoint")
          << "removing old checkpoint '" << it->path << "' failed: " << ec.message();
    }
  }
  return Status::ok();
}

Result<std::vector<CheckpointInfo>> CheckpointStorage::list() const {
  std::vector<CheckpointInfo> out;
  std::error_code ec;
  fs::directory_iterator it(dir_, ec);
  if (ec) return Status::io_error("listing '" + dir_ + "' failed: " + ec.message());
  for (const auto& entry : it) {
    const auto parsed = parse_dir_name(entry.path().filename().string());
    if (!parsed || !entry.is_directory(ec)) continue;
    auto info = read_manifest(entry.path().string());
    if (info.is_ok()) {
      out.push_back(std::move(*info));
    } else {
      CheckpointInfo bad;
      bad.path = entry.path().string();
      bad.status = info.status().message();
      out.push_back(std::move(bad));
    }
    out.back().checkpoint_id = parsed->first;
    out.back().savepoint = parsed->second;
  }
  std::sort(out.begin(), out.end(), [](const CheckpointInfo& a, const CheckpointInfo& b) {
    return a.checkpoint_id != b.checkpoint_id ? a.checkpoint_id < b.checkpoint_id
                                              : a.savepoint < b.savepoint;
  });
  return out;
}

Result<std::optional<CheckpointData>> CheckpointStorage::load_latest(
    std::string_view job_name) const {
  SABOT_ASSIGN_OR_RETURN(auto all, list());
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    if (!it->usable) {
      SABOT_LOG(kWarn, "checkpoint") << "skipping '" << it->path << "': " << it->status;
      continue;
    }
    if (!job_name.empty() && it->job_name != job_name) {
      SABOT_LOG(kWarn, "checkpoint") << "skipping '" << it->path << "': it belongs to job '"
                                     << it->job_name << "', not '" << job_name << "'";
      continue;
    }
    auto data = load_checkpoint(it->path);
    if (!data.is_ok()) {
      SABOT_LOG(kWarn, "checkpoint")
          << "skipping '" << it->path << "': " << data.status().message();
      continue;
    }
    return std::optional<CheckpointData>(std::move(*data));
  }
  return std::optional<CheckpointData>();
}

Result<CheckpointInfo> read_manifest(const std::string& path) {
  CheckpointInfo info;
  info.path = path;
  const std::string manifest = (fs::path(path) / kManifest).string();
  std::error_code ec;
  if (!fs::exists(manifest, ec)) {
    info.status = "no manifest (incomplete: the run stopped while writing it)";
    return info;
  }
  auto bytes = read_file(manifest);
  if (!bytes.is_ok()) {
    info.status = bytes.status().message();
    return info;
  }
  Status st = decode_manifest(*bytes, &info);
  if (!st.is_ok()) {
    info.status = "damaged manifest: " + st.message();
    return info;
  }
  info.status = "complete";
  info.usable = true;
  return info;
}

Result<CheckpointData> load_checkpoint(const std::string& path) {
  SABOT_ASSIGN_OR_RETURN(CheckpointInfo info, read_manifest(path));
  if (!info.usable) return Status::invalid_data("checkpoint '" + path + "': " + info.status);
  CheckpointData data;
  data.job_name = info.job_name;
  data.checkpoint_id = info.checkpoint_id;
  data.created_unix_ms = info.created_unix_ms;
  data.savepoint = info.savepoint;
  data.max_parallelism = info.max_parallelism;
  for (const auto& f : info.files) {
    const std::string file = (fs::path(path) / f.name).string();
    SABOT_ASSIGN_OR_RETURN(std::string bytes, read_file(file));
    if (bytes.size() != f.size) {
      return Status::invalid_data("checkpoint file '" + file + "' has " +
                                  std::to_string(bytes.size()) + " bytes, the manifest says " +
                                  std::to_string(f.size));
    }
    if (crc32c(bytes) != f.crc) {
      return Status::invalid_data("checkpoint file '" + file + "' fails its checksum (corrupt)");
    }
    OperatorState& op = data.operators[f.uid];
    if (op.subtasks.empty()) {
      op.parallelism = f.parallelism;
      op.subtasks.resize(static_cast<size_t>(f.parallelism));
    } else if (op.parallelism != f.parallelism) {
      return Status::invalid_data("checkpoint '" + path + "': operator '" + f.uid +
                                  "' has files of parallelism " + std::to_string(op.parallelism) +
                                  " and " + std::to_string(f.parallelism));
    }
    if (!op.subtasks[static_cast<size_t>(f.subtask)].empty()) {
      return Status::invalid_data("checkpoint '" + path + "': operator '" + f.uid +
                                  "' has two files for subtask " + std::to_string(f.subtask));
    }
    op.subtasks[static_cast<size_t>(f.subtask)] = std::move(bytes);
  }
  return data;
}

}  // namespace sabot::checkpoint
