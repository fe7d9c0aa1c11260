#include "sabot/checkpoint/storage.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>
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
// Version 2 appends the shared files (name, size) and the bytes writing the checkpoint copied;
// version 1 manifests (no shared files) are still read.
constexpr uint16_t kManifestVersion = 2;
constexpr std::string_view kSharedDir = "shared";
constexpr std::string_view kTmpSuffix = ".tmp";
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

// Why `name` cannot be a shared file's name, or empty when it can. Names ending in ".tmp" are
// refused because DIR/shared/<name>.tmp is where a copy is staged.
std::string bad_shared_name(std::string_view name) {
  if (name.empty()) return "is empty";
  if (name.find('/') != std::string_view::npos) return "contains '/'";
  if (name.find('\0') != std::string_view::npos) return "contains a NUL byte";
  if (name == "." || name == "..") return "is not a file name";
  if (name.ends_with(kTmpSuffix)) return "ends in '.tmp'";
  return {};
}

// Copies `from` to `to` (created or truncated) in the kernel where it can, and syncs `to`.
// Returns the bytes copied.
Result<uint64_t> copy_and_sync(const std::string& from, const std::string& to) {
  const int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return errno_status("opening shared file source '" + from + "' failed");
  const int out = ::open(to.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out < 0) {
    const Status st = errno_status("creating '" + to + "' failed");
    ::close(in);
    return st;
  }
  uint64_t copied = 0;
  Status st = Status::ok();
  bool in_kernel = true;
  while (in_kernel) {
    const ssize_t n = ::copy_file_range(in, nullptr, out, nullptr, size_t{1} << 30, 0);
    if (n > 0) {
      copied += static_cast<uint64_t>(n);
      continue;
    }
    if (n == 0) break;
    if (errno == EINTR) continue;
    // Filesystems (or kernels) without copy_file_range between these files: copy in user space.
    if (copied == 0 &&
        (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP)) {
      in_kernel = false;
      break;
    }
    st = errno_status("copying '" + from + "' to '" + to + "' failed");
    break;
  }
  if (st.is_ok() && !in_kernel) {
    char buf[1 << 16];
    while (true) {
      const ssize_t n = ::read(in, buf, sizeof(buf));
      if (n < 0) {
        if (errno == EINTR) continue;
        st = errno_status("reading '" + from + "' failed");
        break;
      }
      if (n == 0) break;
      st = write_all(out, std::string_view(buf, static_cast<size_t>(n)), to);
      if (!st.is_ok()) break;
      copied += static_cast<uint64_t>(n);
    }
  }
  if (st.is_ok() && ::fsync(out) != 0) st = errno_status("syncing '" + to + "' failed");
  ::close(in);
  ::close(out);
  SABOT_RETURN_IF_ERROR(st);
  return copied;
}

// Makes every file of `files` present in `shared_dir` (copying those it lacks or holds at another
// size, through a synced temporary file renamed into place), then syncs the directory: after
// this, a manifest listing them may be written. Returns the bytes copied.
Result<uint64_t> store_shared_files(const std::string& shared_dir,
                                    const std::vector<SharedFile>& files) {
  std::set<std::string_view> seen;
  for (const auto& f : files) {
    if (const std::string why = bad_shared_name(f.name); !why.empty()) {
      return Status::invalid_argument("shared file name '" + f.name + "' " + why);
    }
    if (!seen.insert(f.name).second) {
      return Status::invalid_argument("shared file '" + f.name + "' is listed twice");
    }
  }
  if (files.empty()) return uint64_t{0};
  std::error_code ec;
  if (!fs::is_directory(shared_dir, ec)) {
    fs::create_directories(shared_dir, ec);
    if (ec) return Status::io_error("creating '" + shared_dir + "' failed: " + ec.message());
    SABOT_RETURN_IF_ERROR(
        fsync_path(fs::path(shared_dir).parent_path().string(), O_RDONLY | O_DIRECTORY));
  }
  uint64_t copied = 0;
  bool renamed = false;
  for (const auto& f : files) {
    const std::string target = (fs::path(shared_dir) / f.name).string();
    const uint64_t present = fs::file_size(target, ec);
    if (!ec && present == f.size) continue;  // stored by an earlier checkpoint
    if (!ec) {
      SABOT_LOG(kWarn, "checkpoint") << "shared file '" << target << "' has " << present
                                     << " bytes, expected " << f.size << ": copying it again";
    }
    if (f.source_path.empty()) {
      return Status::invalid_argument("shared file '" + f.name + "' is not in '" + shared_dir +
                                      "' and has no source path to copy it from");
    }
    const std::string tmp = target + std::string(kTmpSuffix);
    auto n = copy_and_sync(f.source_path, tmp);
    if (!n.is_ok()) {
      fs::remove(tmp, ec);
      return n.status().with_context("storing shared file '" + f.name + "'");
    }
    if (*n != f.size) {
      n = Status::invalid_data("shared file '" + f.name + "': its source '" + f.source_path +
                               "' has " + std::to_string(*n) + " bytes, expected " +
                               std::to_string(f.size));
    }
    if (!n.is_ok()) {
      fs::remove(tmp, ec);
      return n.status();
    }
    if (::rename(tmp.c_str(), target.c_str()) != 0) {
      const Status st = errno_status("renaming '" + tmp + "' to '" + target + "' failed");
      fs::remove(tmp, ec);
      return st;
    }
    renamed = true;
    copied += *n;
  }
  if (renamed) SABOT_RETURN_IF_ERROR(fsync_path(shared_dir, O_RDONLY | O_DIRECTORY));
  return copied;
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
  // Version 2.
  b.put<uint64_t>(m.shared_files.size());
  for (const auto& f : m.shared_files) {
    b.put_bytes(f.name);
    b.put<uint64_t>(f.size);
  }
  b.put<uint64_t>(m.shared_bytes_copied);
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
  m->shared_files.clear();
  m->shared_bytes_copied = 0;
  if (reader.header().state_version >= 2) {
    SABOT_RETURN_IF_ERROR(r.get_count(&n, 12));
    std::set<std::string> seen;
    for (uint64_t i = 0; i < n; ++i) {
      SharedFile f;
      SABOT_RETURN_IF_ERROR(r.get_bytes(&s));
      f.name = std::string(s);
      SABOT_RETURN_IF_ERROR(r.get(&f.size));
      if (const std::string why = bad_shared_name(f.name); !why.empty()) {
        return r.invalid("shared file name '" + f.name + "' " + why);
      }
      if (!seen.insert(f.name).second) {
        return r.invalid("shared file '" + f.name + "' listed twice");
      }
      m->shared_files.push_back(std::move(f));
    }
    SABOT_RETURN_IF_ERROR(r.get(&m->shared_bytes_copied));
  }
  return r.expect_end();
}

// DIR/shared for the checkpoint directory `path` (DIR/chk-<n>, with or without a trailing '/').
std::string shared_dir_of(const std::string& path) {
  fs::path p(path);
  while (!p.has_filename() && p.has_relative_path()) p = p.parent_path();
  return (p.parent_path() / kSharedDir).string();
}

// Where the shared files of the checkpoint or savepoint directory `path` are: a savepoint holds
// its own (`path`/shared, so that it can be moved or copied on its own); a checkpoint, and a
// savepoint written before savepoints held theirs, refer to DIR/shared.
std::string shared_dir_of(const std::string& path, bool savepoint) {
  const fs::path own = fs::path(path) / kSharedDir;
  std::error_code ec;
  if (savepoint && fs::is_directory(own, ec)) return own.string();
  return shared_dir_of(path);
}

// Deletes the files of DIR/shared that no remaining checkpoint or savepoint lists (and leftover
// temporary copies). When a remaining directory's manifest cannot be read, what it refers to is
// unknown: everything is kept.
void remove_unreferenced_shared_files(const std::string& dir,
                                      const std::vector<const CheckpointInfo*>& remaining) {
  const fs::path shared_dir = fs::path(dir) / kSharedDir;
  std::error_code ec;
  if (!fs::is_directory(shared_dir, ec)) return;
  std::set<std::string> referenced;
  for (const CheckpointInfo* c : remaining) {
    if (!c->usable) {
      SABOT_LOG(kWarn, "checkpoint")
          << "keeping every file of '" << shared_dir.string() << "': the manifest of '" << c->path
          << "' cannot be read (" << c->status << ")";
      return;
    }
    // A savepoint holding its own shared files refers to none of DIR/shared.
    if (c->savepoint && shared_dir_of(c->path, true) != shared_dir_of(c->path)) continue;
    for (const auto& f : c->shared_files) referenced.insert(f.name);
  }
  fs::directory_iterator it(shared_dir, ec);
  if (ec) {
    SABOT_LOG(kWarn, "checkpoint")
        << "listing '" << shared_dir.string() << "' failed: " << ec.message();
    return;
  }
  for (const auto& entry : it) {
    if (referenced.contains(entry.path().filename().string())) continue;
    if (entry.is_directory(ec)) continue;  // not ours
    fs::remove(entry.path(), ec);
    if (ec) {
      SABOT_LOG(kWarn, "checkpoint") << "removing unreferenced shared file '"
                                     << entry.path().string() << "' failed: " << ec.message();
    }
  }
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
    // Shared files first: the manifest, written last, must never list one that is not stored.
    // A savepoint gets copies of its own, so that it outlives the job's directory.
    const fs::path shared =
        data.savepoint ? fs::path(path) / kSharedDir : fs::path(dir_) / kSharedDir;
    SABOT_ASSIGN_OR_RETURN(m.shared_bytes_copied,
                           store_shared_files(shared.string(), data.shared_files));
    for (const auto& f : data.shared_files) m.shared_files.push_back({f.name, f.size, {}});
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
  std::vector<const CheckpointInfo*> remaining;
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    // Savepoints are only deleted by their owner.
    const bool keep =
        it->savepoint || (it->usable ? kept++ < options_.retained : it->checkpoint_id > newest_id);
    if (!keep) {
      fs::remove_all(it->path, ec);
      if (!ec) continue;
      SABOT_LOG(kWarn, "checkpoint")
          << "removing old checkpoint '" << it->path << "' failed: " << ec.message();
    }
    remaining.push_back(&*it);
  }
  remove_unreferenced_shared_files(dir_, remaining);
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

std::string shared_files_dir(const std::string& path, bool savepoint) {
  return shared_dir_of(path, savepoint);
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
  data.shared_dir = shared_files_dir(path, info.savepoint);
  for (const auto& f : info.shared_files) {
    const std::string file = (fs::path(data.shared_dir) / f.name).string();
    std::error_code ec;
    const uint64_t size = fs::file_size(file, ec);
    if (ec) {
      return Status::invalid_data("checkpoint '" + path + "': shared file '" + file +
                                  "' is missing or unreadable: " + ec.message());
    }
    if (size != f.size) {
      return Status::invalid_data("checkpoint '" + path + "': shared file '" + file + "' has " +
                                  std::to_string(size) + " bytes, the manifest says " +
                                  std::to_string(f.size));
    }
    data.shared_files.push_back({f.name, f.size, {}});
  }
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
