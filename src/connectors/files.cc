// File sources and sinks. Readers pull bounded chunks with read(2) and hand complete records to
// the codecs (a line for JSON, a possibly multi-line record for CSV), carrying the incomplete tail
// into the next chunk; Arrow IPC files are memory-mapped and their batches share the mapping.
// Sinks encode straight into one buffer that is written out with write(2) when full.
#include "sabot/connectors/files.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <optional>
#include <utility>

#include "sabot/base/check.h"
#include "sabot/state/snapshot.h"

namespace sabot::connectors {

using columnar::RecordBatch;
using columnar::SchemaPtr;
using runtime::Operator;
using runtime::OperatorContext;
using runtime::OperatorFactory;
using runtime::Output;
using runtime::Source;
using runtime::SourcePoll;
using runtime::SourceReader;

namespace {

std::string errno_text(int err) { return std::strerror(err); }

std::string file_name_of(const std::string& path) {
  return std::filesystem::path(path).filename().string();
}

// ---- reading ----

// An open file descriptor, closed on destruction.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  ~Fd() { reset(); }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

Result<Fd> open_for_reading(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT) return Status::not_found("file '" + path + "' does not exist");
    return Status::io_error("cannot open '" + path + "' for reading: " + errno_text(err));
  }
  return Fd(fd);
}

// The whole file, memory-mapped (read-only, shared by every batch sliced from it).
Result<columnar::BufferPtr> map_file(const std::string& path) {
  SABOT_ASSIGN_OR_RETURN(Fd fd, open_for_reading(path));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) {
    return Status::io_error("cannot stat '" + path + "': " + errno_text(errno));
  }
  if (st.st_size == 0) {
    return Status::invalid_data("file '" + path + "' is empty, not an Arrow IPC stream");
  }
  void* p = ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd.get(), 0);
  if (p == MAP_FAILED) {
    return Status::io_error("cannot map '" + path + "': " + errno_text(errno));
  }
  const size_t size = static_cast<size_t>(st.st_size);
  std::shared_ptr<const void> owner(
      p, [size](const void* q) { ::munmap(const_cast<void*>(q), size); });
  return columnar::Buffer::wrap(static_cast<const uint8_t*>(p), st.st_size, std::move(owner));
}

Result<columnar::IpcStreamReader> open_ipc(const std::string& path) {
  SABOT_ASSIGN_OR_RETURN(columnar::BufferPtr data, map_file(path));
  auto reader = columnar::IpcStreamReader::open(std::move(data));
  if (!reader.is_ok()) {
    return Status(
        reader.status().code(),
        "file '" + path + "' is not a readable Arrow IPC stream: " + reader.status().message());
  }
  return std::move(reader).value();
}

// Reads one JSON-lines or CSV file in chunks and decodes it into batches.
class TextFileDecoder {
 public:
  virtual ~TextFileDecoder() = default;
  // The next batch of at most max_rows rows, with its bad records; nullopt at the end of the file.
  virtual Result<std::optional<codec::DecodeResult>> next(int64_t max_rows) = 0;
  // 0-based line of the next record.
  virtual int64_t line() const = 0;
};

// Reads chunks of a file on demand.
class ChunkReader {
 public:
  ChunkReader(std::string path, Fd fd, int64_t chunk_bytes)
      : path_(std::move(path)), fd_(std::move(fd)), chunk_(static_cast<size_t>(chunk_bytes)) {}
  // Appends up to one chunk to `out`; sets eof() when the file has no more bytes.
  Status read_into(std::string& out) {
    const size_t old = out.size();
    out.resize(old + chunk_);
    for (;;) {
      ssize_t n = ::read(fd_.get(), out.data() + old, chunk_);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        int err = errno;
        out.resize(old);
        return Status::io_error("cannot read '" + path_ + "': " + errno_text(err));
      }
      out.resize(old + static_cast<size_t>(n));
      if (n == 0) {
        eof_ = true;
        fd_.reset();
      }
      return Status::ok();
    }
  }
  bool eof() const { return eof_; }

 private:
  std::string path_;
  Fd fd_;
  size_t chunk_;
  bool eof_ = false;
};

class JsonLinesFileDecoder final : public TextFileDecoder {
 public:
  JsonLinesFileDecoder(std::string path, ChunkReader reader, codec::JsonDecoder decoder,
                       int64_t chunk_bytes, int64_t max_record_bytes)
      : path_(std::move(path)),
        reader_(std::move(reader)),
        decoder_(std::move(decoder)),
        chunk_bytes_(chunk_bytes),
        max_record_bytes_(max_record_bytes) {}

  Result<std::optional<codec::DecodeResult>> next(int64_t max_rows) override {
    for (;;) {
      if (!reader_.eof() && static_cast<int64_t>(buf_.size() - start_) < chunk_bytes_) {
        SABOT_RETURN_IF_ERROR(read_more());
      }
      // Complete lines: JSON strings hold no raw newline, so every '\n' ends a record.
      size_t pos = start_;
      int64_t lines = 0;
      while (lines < max_rows && pos < buf_.size()) {
        const void* nl = std::memchr(buf_.data() + pos, '\n', buf_.size() - pos);
        if (nl == nullptr) break;
        pos = static_cast<size_t>(static_cast<const char*>(nl) - buf_.data()) + 1;
        ++lines;
      }
      if (lines == 0 && reader_.eof() && start_ < buf_.size()) {
        pos = buf_.size();  // the last line needs no terminator
        lines = 1;
      }
      if (lines == 0) {
        if (reader_.eof()) return std::optional<codec::DecodeResult>();
        if (static_cast<int64_t>(buf_.size() - start_) > max_record_bytes_) {
          return Status::invalid_data("file '" + path_ + "' line " + std::to_string(line_ + 1) +
                                      " is longer than max_record_bytes (" +
                                      std::to_string(max_record_bytes_) + ")");
        }
        SABOT_RETURN_IF_ERROR(read_more());  // a line longer than what is buffered
        continue;
      }
      std::string_view text(buf_.data() + start_, pos - start_);
      SABOT_ASSIGN_OR_RETURN(codec::DecodeResult r, decoder_.decode_lines(text));
      for (codec::RecordError& e : r.errors) {
        e.index += line_;
        e.byte_offset += base_byte_ + static_cast<int64_t>(start_);
      }
      line_ += lines;
      start_ = pos;
      return std::optional<codec::DecodeResult>(std::move(r));
    }
  }
  int64_t line() const override { return line_; }

 private:
  Status read_more() {
    if (start_ > 0) {
      buf_.erase(0, start_);
      base_byte_ += static_cast<int64_t>(start_);
      start_ = 0;
    }
    return reader_.read_into(buf_);
  }

  std::string path_;
  ChunkReader reader_;
  codec::JsonDecoder decoder_;
  int64_t chunk_bytes_;
  int64_t max_record_bytes_;
  std::string buf_;
  size_t start_ = 0;
  int64_t base_byte_ = 0;  // file offset of buf_[0]
  int64_t line_ = 0;       // 0-based line of buf_[start_]
};

class CsvFileDecoder final : public TextFileDecoder {
 public:
  CsvFileDecoder(std::string path, ChunkReader reader, codec::CsvDecoder decoder,
                 int64_t chunk_bytes)
      : path_(std::move(path)),
        reader_(std::move(reader)),
        decoder_(std::move(decoder)),
        chunk_bytes_(chunk_bytes) {}

  Result<std::optional<codec::DecodeResult>> next(int64_t max_rows) override {
    for (;;) {
      if (!reader_.eof() && decoder_.buffered_bytes() < chunk_bytes_) {
        SABOT_RETURN_IF_ERROR(read_more());
      }
      auto r = decoder_.next_batch(max_rows);
      if (!r.is_ok()) {
        return Status(r.status().code(), "file '" + path_ + "': " + r.status().message());
      }
      if (r->batch.num_rows() > 0 || !r->errors.empty()) {
        return std::optional<codec::DecodeResult>(std::move(r).value());
      }
      if (decoder_.exhausted()) return std::optional<codec::DecodeResult>();
      SABOT_RETURN_IF_ERROR(read_more());  // a record longer than what is buffered
    }
  }
  int64_t line() const override { return decoder_.next_line(); }

 private:
  Status read_more() {
    chunk_.clear();
    SABOT_RETURN_IF_ERROR(reader_.read_into(chunk_));
    decoder_.feed(chunk_);
    if (reader_.eof()) decoder_.finish_input();
    return Status::ok();
  }

  std::string path_;
  ChunkReader reader_;
  codec::CsvDecoder decoder_;
  int64_t chunk_bytes_;
  std::string chunk_;
};

struct FileSourceConfig {
  FileSourceOptions options;
  std::vector<std::string> files;
  SchemaPtr schema;
};

class FileReader final : public SourceReader {
 public:
  FileReader(std::shared_ptr<const FileSourceConfig> config, std::vector<int> splits)
      : config_(std::move(config)), splits_(std::move(splits)) {}

  Result<SourcePoll> poll(int64_t max_rows) override {
    max_rows = std::max<int64_t>(1, max_rows);
    int64_t dropped = 0;
    while (next_split_ < splits_.size()) {
      const std::string& path = config_->files[static_cast<size_t>(splits_[next_split_])];
      if (!opened_) {
        SABOT_RETURN_IF_ERROR(open_file(path));
        opened_ = true;
      }
      std::optional<RecordBatch> batch;
      if (ipc_) {
        SABOT_ASSIGN_OR_RETURN(batch, next_ipc(path, max_rows));
      } else {
        SABOT_ASSIGN_OR_RETURN(std::optional<codec::DecodeResult> r, text_->next(max_rows));
        if (r) {
          for (const codec::RecordError& e : r->errors) {
            if (config_->options.bad_records != BadRecordPolicy::kSkip) {
              return Status::invalid_data(describe(path, e));
            }
            ++dropped;
          }
          batch = std::move(r->batch);
        }
      }
      if (!batch) {
        close_file();
        ++next_split_;
        continue;
      }
      if (batch->num_rows() == 0) continue;  // only bad records in this piece
      SourcePoll p = SourcePoll::of(std::move(*batch));
      p.dropped = dropped;
      return p;
    }
    SourcePoll p = SourcePoll::end();
    p.dropped = dropped;
    return p;
  }

  std::string position() const override {
    if (next_split_ >= splits_.size()) return "done";
    std::string name =
        file_name_of(config_->files[static_cast<size_t>(splits_[next_split_])]) + ":";
    if (ipc_) return name + "batch " + std::to_string(ipc_batches_);
    return name + std::to_string(text_ ? text_->line() + 1 : 1);
  }

 private:
  std::string describe(const std::string& path, const codec::RecordError& e) const {
    std::string where = "bad record in file '" + path + "'";
    if (config_->options.format == FileFormat::kCsv) {
      return where + " at byte " + std::to_string(e.byte_offset) + ": " + e.message;
    }
    return where + " line " + std::to_string(e.index + 1) + " (byte " +
           std::to_string(e.byte_offset) + "): " + e.message;
  }

  Status open_file(const std::string& path) {
    const FileSourceOptions& o = config_->options;
    if (o.format == FileFormat::kArrowIpc) {
      SABOT_ASSIGN_OR_RETURN(columnar::IpcStreamReader r, open_ipc(path));
      if (!(*r.schema() == *config_->schema)) {
        return Status::type_error("file '" + path + "' has schema {" + r.schema()->to_string() +
                                  "}, expected {" + config_->schema->to_string() + "}");
      }
      ipc_.emplace(std::move(r));
      ipc_batches_ = 0;
      return Status::ok();
    }
    SABOT_ASSIGN_OR_RETURN(Fd fd, open_for_reading(path));
    ChunkReader chunks(path, std::move(fd), o.chunk_bytes);
    if (o.format == FileFormat::kJsonLines) {
      SABOT_ASSIGN_OR_RETURN(codec::JsonDecoder d,
                             codec::JsonDecoder::make(config_->schema, o.json));
      text_ = std::make_unique<JsonLinesFileDecoder>(path, std::move(chunks), std::move(d),
                                                     o.chunk_bytes, o.max_record_bytes);
    } else {
      codec::CsvOptions csv = o.csv;
      csv.max_record_bytes = o.max_record_bytes;
      SABOT_ASSIGN_OR_RETURN(codec::CsvDecoder d, codec::CsvDecoder::make(config_->schema, csv));
      text_ =
          std::make_unique<CsvFileDecoder>(path, std::move(chunks), std::move(d), o.chunk_bytes);
    }
    return Status::ok();
  }

  void close_file() {
    ipc_.reset();
    ipc_pending_.reset();
    text_.reset();
    opened_ = false;
  }

  // The next at most max_rows rows of the IPC file; larger batches are handed out in slices.
  Result<std::optional<RecordBatch>> next_ipc(const std::string& path, int64_t max_rows) {
    for (;;) {
      if (ipc_pending_ && ipc_offset_ < ipc_pending_->num_rows()) {
        int64_t n = std::min(max_rows, ipc_pending_->num_rows() - ipc_offset_);
        RecordBatch part = (ipc_offset_ == 0 && n == ipc_pending_->num_rows())
                               ? *ipc_pending_
                               : ipc_pending_->slice(ipc_offset_, n);
        ipc_offset_ += n;
        return std::optional<RecordBatch>(std::move(part));
      }
      auto b = ipc_->next();
      if (!b.is_ok()) {
        return Status(b.status().code(), "file '" + path + "' batch " +
                                             std::to_string(ipc_batches_) + ": " +
                                             b.status().message());
      }
      if (!b->has_value()) return std::optional<RecordBatch>();
      ++ipc_batches_;
      ipc_pending_ = std::move(**b);
      ipc_offset_ = 0;
    }
  }

  std::shared_ptr<const FileSourceConfig> config_;
  std::vector<int> splits_;
  size_t next_split_ = 0;
  bool opened_ = false;
  std::unique_ptr<TextFileDecoder> text_;
  std::optional<columnar::IpcStreamReader> ipc_;
  std::optional<RecordBatch> ipc_pending_;
  int64_t ipc_offset_ = 0;
  int64_t ipc_batches_ = 0;
};

class FileSource final : public Source {
 public:
  explicit FileSource(std::shared_ptr<const FileSourceConfig> config)
      : config_(std::move(config)) {}
  std::string name() const override {
    return std::string("file:") + std::string(file_format_name(config_->options.format));
  }
  SchemaPtr schema() const override { return config_->schema; }
  int num_splits() const override {
    return std::max<int>(1, static_cast<int>(config_->files.size()));
  }
  Result<std::unique_ptr<SourceReader>> open_reader(std::span<const int> splits,
                                                    const OperatorContext&) const override {
    std::vector<int> mine;
    for (int s : splits) {
      if (s < static_cast<int>(config_->files.size())) mine.push_back(s);
    }
    return std::unique_ptr<SourceReader>(new FileReader(config_, std::move(mine)));
  }

 private:
  std::shared_ptr<const FileSourceConfig> config_;
};

// ---- writing ----

// A file written through one buffer that callers may append to directly.
class BufferedFile {
 public:
  static Result<std::unique_ptr<BufferedFile>> create(const std::string& path,
                                                      int64_t buffer_bytes) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
      return Status::io_error("cannot create '" + path + "': " + errno_text(errno));
    }
    return std::unique_ptr<BufferedFile>(new BufferedFile(path, Fd(fd), buffer_bytes));
  }
  // Appending to buffer() and then calling written() is the copy-free path.
  std::string& buffer() { return buf_; }
  Status written() {
    return static_cast<int64_t>(buf_.size()) >= capacity_ ? flush() : Status::ok();
  }
  Status write(const void* data, int64_t size) {
    buf_.append(static_cast<const char*>(data), static_cast<size_t>(size));
    return written();
  }
  Status flush() {
    size_t done = 0;
    while (done < buf_.size()) {
      ssize_t n = ::write(fd_.get(), buf_.data() + done, buf_.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Status::io_error("cannot write '" + path_ + "': " + errno_text(errno));
      done += static_cast<size_t>(n);
    }
    buf_.clear();
    return Status::ok();
  }
  Status close() {
    SABOT_RETURN_IF_ERROR(flush());
    // close() can report a failed delayed write (NFS, quotas), so its result matters.
    if (::close(fd_.release()) != 0) {
      return Status::io_error("cannot close '" + path_ + "': " + errno_text(errno));
    }
    return Status::ok();
  }
  const std::string& path() const { return path_; }
  int fd() const { return fd_.get(); }

 private:
  BufferedFile(std::string path, Fd fd, int64_t capacity)
      : path_(std::move(path)), fd_(std::move(fd)), capacity_(capacity) {
    buf_.reserve(static_cast<size_t>(capacity_) + 4096);
  }
  std::string path_;
  Fd fd_;
  int64_t capacity_;
  std::string buf_;
};

class FileByteSink final : public columnar::ByteSink {
 public:
  explicit FileByteSink(BufferedFile* file) : file_(file) {}
  Status write(const void* data, int64_t size) override { return file_->write(data, size); }

 private:
  BufferedFile* file_;
};

// ---- stale part files ----

// The names (in the sink's directory) that `path` could be written as at any parallelism:
// "<stem>-<i><ext>" for a part index i, and the staged files ".<name>.<k>.inprogress" of any of
// them. Returns the part index of `name` or -1 when it is not such a part file.
int part_index_of(const std::string& name, const std::string& stem, const std::string& ext) {
  const std::string prefix = stem + "-";
  if (name.size() <= prefix.size() + ext.size()) return -1;
  if (name.compare(0, prefix.size(), prefix) != 0) return -1;
  if (name.compare(name.size() - ext.size(), ext.size(), ext) != 0) return -1;
  const std::string digits = name.substr(prefix.size(), name.size() - prefix.size() - ext.size());
  if (digits.empty() || digits.size() > 9) return -1;
  for (char c : digits) {
    if (c < '0' || c > '9') return -1;
  }
  const int i = std::stoi(digits);
  return std::to_string(i) == digits ? i : -1;  // "01" is not part 1
}

constexpr std::string_view kStagedSuffix = ".inprogress";

// True when `name` is a staged file ".<target>.<k>.inprogress" of the target named `target`.
bool is_staged_of(const std::string& name, const std::string& target) {
  const std::string prefix = "." + target + ".";
  if (name.size() <= prefix.size() + kStagedSuffix.size()) return false;
  if (name.compare(0, prefix.size(), prefix) != 0) return false;
  if (name.compare(name.size() - kStagedSuffix.size(), kStagedSuffix.size(), kStagedSuffix) != 0) {
    return false;
  }
  std::string_view k(name);
  k = k.substr(prefix.size(), k.size() - prefix.size() - kStagedSuffix.size());
  return !k.empty() && std::all_of(k.begin(), k.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// If `name` is a staged file of some part "<stem>-<i><ext>", that part's name; else empty.
std::string staged_target_of(const std::string& name) {
  if (name.size() < 2 || name[0] != '.') return {};
  if (name.size() <= kStagedSuffix.size() ||
      name.compare(name.size() - kStagedSuffix.size(), kStagedSuffix.size(), kStagedSuffix) != 0) {
    return {};
  }
  std::string inner = name.substr(1, name.size() - 1 - kStagedSuffix.size());  // <target>.<k>
  size_t dot = inner.rfind('.');
  if (dot == std::string::npos) return {};
  std::string target = inner.substr(0, dot);
  return is_staged_of(name, target) ? target : std::string();
}

// Removes what an earlier run of the sink for `path` at another parallelism left behind: part
// files "<stem>-<i><ext>" with i >= parallelism (all of them at parallelism 1), the plain `path`
// at parallelism > 1, and the staged files of those. Errors name the file.
Status remove_stale_parts(const std::string& path, int parallelism) {
  namespace fs = std::filesystem;
  fs::path p(path);
  const fs::path dir = p.parent_path().empty() ? fs::path(".") : p.parent_path();
  const std::string stem = p.stem().string();
  const std::string ext = p.extension().string();
  const std::string plain = p.filename().string();
  auto stale = [&](const std::string& target) {
    if (target == plain) return parallelism > 1;
    const int i = part_index_of(target, stem, ext);
    return i >= 0 && (parallelism <= 1 || i >= parallelism);
  };
  std::error_code ec;
  std::vector<fs::path> doomed;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    std::string target = staged_target_of(name);
    if (target.empty()) target = name;
    if (stale(target)) doomed.push_back(it->path());
  }
  if (ec) return Status::io_error("cannot list directory '" + dir.string() + "': " + ec.message());
  for (const fs::path& f : doomed) {
    if (!fs::remove(f, ec) && ec) {
      return Status::io_error("cannot remove stale part file '" + f.string() +
                              "': " + ec.message());
    }
  }
  return Status::ok();
}

class FileSinkOperator final : public Operator {
 public:
  FileSinkOperator(const FileSinkOptions& options, SchemaPtr schema, std::string path)
      : options_(options),
        schema_(std::move(schema)),
        path_(std::move(path)),
        csv_(options.csv),
        json_(options.json) {}

  Status open(const OperatorContext& ctx) override {
    if (ctx.subtask_index == 0) {
      SABOT_RETURN_IF_ERROR(remove_stale_parts(options_.path, ctx.parallelism));
    }
    SABOT_ASSIGN_OR_RETURN(file_, BufferedFile::create(path_, options_.buffer_bytes));
    if (options_.format == FileFormat::kArrowIpc) {
      byte_sink_ = std::make_unique<FileByteSink>(file_.get());
      ipc_ = std::make_unique<columnar::IpcStreamWriter>(byte_sink_.get(), options_.ipc);
      return with_path(ipc_->write_schema(schema_));
    }
    return Status::ok();
  }

  Status process_batch(const RecordBatch& batch, int, Output&) override {
    switch (options_.format) {
      case FileFormat::kJsonLines:
        json_.encode_lines(batch, file_->buffer());
        return file_->written();
      case FileFormat::kCsv:
        csv_.encode(batch, file_->buffer());
        return file_->written();
      case FileFormat::kArrowIpc:
        return with_path(ipc_->write(batch));
    }
    return Status::internal("unknown file format");
  }

  Status finish(Output&) override {
    if (options_.format == FileFormat::kCsv && options_.csv.header && !csv_.header_written()) {
      csv_.write_header(*schema_, file_->buffer());
    }
    if (ipc_) SABOT_RETURN_IF_ERROR(with_path(ipc_->close()));
    return file_->close();
  }

 private:
  Status with_path(Status s) const {
    if (s.is_ok() || s.message().find(path_) != std::string::npos) return s;
    return Status(s.code(), "file '" + path_ + "': " + s.message());
  }

  FileSinkOptions options_;
  SchemaPtr schema_;
  std::string path_;
  std::unique_ptr<BufferedFile> file_;
  codec::CsvEncoder csv_;
  codec::JsonEncoder json_;
  std::unique_ptr<FileByteSink> byte_sink_;
  std::unique_ptr<columnar::IpcStreamWriter> ipc_;
};

// ---- exactly-once file sink ----

Status fsync_fd(int fd, const std::string& path) {
  if (::fsync(fd) != 0)
    return Status::io_error("cannot fsync '" + path + "': " + errno_text(errno));
  return Status::ok();
}

Status fsync_dir(const std::string& dir) {
  Fd fd(::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0)
    return Status::io_error("cannot open directory '" + dir + "': " + errno_text(errno));
  return fsync_fd(fd.get(), dir);
}

// Size of `path`, -1 when it does not exist.
Result<int64_t> file_size(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return int64_t{-1};
    return Status::io_error("cannot stat '" + path + "': " + errno_text(errno));
  }
  return static_cast<int64_t>(st.st_size);
}

Status write_all(int fd, const char* data, size_t size, const std::string& path) {
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::write(fd, data + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::io_error("cannot write '" + path + "': " + errno_text(errno));
    done += static_cast<size_t>(n);
  }
  return Status::ok();
}

// A ByteSink that writes into the current staged file, or discards while there is none (used to
// bring a restored IPC writer past the schema that the target already holds).
class SwitchableByteSink final : public columnar::ByteSink {
 public:
  void set(BufferedFile* file) { file_ = file; }
  Status write(const void* data, int64_t size) override {
    return file_ ? file_->write(data, size) : Status::ok();
  }

 private:
  BufferedFile* file_ = nullptr;
};

constexpr std::string_view kFileSinkStateType = "file-sink-2pc";

// The file sink under DeliveryGuarantee::kExactlyOnce (see FileSinkOptions and docs/design.md
// "Exactly-once sinks"). Records since the last barrier go to a staged hidden file
// ".<target>.<k>.inprogress" next to the target; snapshot_state(n) flushes and fsyncs it and
// records (target, committed length L, pending staged files with their checkpoint ids and
// sizes); notify_checkpoint_complete(n) appends the pending files <= n to the target in order,
// fsyncs it and deletes them. restore_state re-establishes the target as L plus the pending files
// (re-appending them when they still exist, otherwise keeping the bytes a commit already
// appended), which also drops what later, not restored checkpoints committed.
class ExactlyOnceFileSink final : public Operator {
 public:
  ExactlyOnceFileSink(const FileSinkOptions& options, SchemaPtr schema, std::string path)
      : options_(options),
        schema_(std::move(schema)),
        target_(std::move(path)),
        csv_(options.csv),
        json_(options.json) {
    std::filesystem::path p(target_);
    dir_ = p.parent_path().string();
    target_name_ = p.filename().string();
  }

  Status open(const OperatorContext& ctx) override {
    uid_ = ctx.uid;
    subtask_ = ctx.subtask_index;
    parallelism_ = ctx.parallelism;
    max_parallelism_ = static_cast<uint32_t>(ctx.max_parallelism);
    if (options_.format == FileFormat::kArrowIpc) {
      ipc_ = std::make_unique<columnar::IpcStreamWriter>(&byte_sink_, options_.ipc);
    }
    return Status::ok();  // nothing is touched before we know whether a restore follows
  }

  Status process_batch(const RecordBatch& batch, int, Output&) override {
    SABOT_RETURN_IF_ERROR(ensure_started());
    SABOT_RETURN_IF_ERROR(ensure_part());
    switch (options_.format) {
      case FileFormat::kJsonLines:
        json_.encode_lines(batch, part_->buffer());
        return part_->written();
      case FileFormat::kCsv:
        csv_.encode(batch, part_->buffer());
        return part_->written();
      case FileFormat::kArrowIpc:
        return with_path(ipc_->write(batch));
    }
    return Status::internal("unknown file format");
  }

  // Stages what the end of the stream needs (a CSV header or IPC schema for an output without
  // rows, the IPC end-of-stream marker); the final checkpoint commits it.
  Status finish(Output&) override {
    SABOT_RETURN_IF_ERROR(ensure_started());
    const bool empty_output = committed_ == 0 && pending_.empty() && part_ == nullptr;
    if (options_.format == FileFormat::kCsv && options_.csv.header && empty_output) {
      SABOT_RETURN_IF_ERROR(ensure_part());
      csv_.write_header(*schema_, part_->buffer());
    }
    if (ipc_) {
      SABOT_RETURN_IF_ERROR(ensure_part());
      if (ipc_->schema() == nullptr) SABOT_RETURN_IF_ERROR(with_path(ipc_->write_schema(schema_)));
      SABOT_RETURN_IF_ERROR(with_path(ipc_->close()));
    }
    return Status::ok();
  }

  Status snapshot_state(CheckpointId id, std::string* out) override {
    SABOT_RETURN_IF_ERROR(ensure_started());
    if (part_) {
      SABOT_RETURN_IF_ERROR(part_->flush());
      SABOT_RETURN_IF_ERROR(fsync_fd(part_->fd(), part_->path()));
      SABOT_ASSIGN_OR_RETURN(int64_t size, file_size(part_->path()));
      SABOT_RETURN_IF_ERROR(part_->close());
      pending_.push_back({id.value(), file_name_of(part_->path()), size});
      part_.reset();
      byte_sink_.set(nullptr);
      // The staged file's directory entry must survive a crash once the checkpoint lists it.
      SABOT_RETURN_IF_ERROR(fsync_dir(dir_));
    }
    state::SnapshotWriter w(out, {.operator_uid = uid_,
                                  .state_type = std::string(kFileSinkStateType),
                                  .state_version = 1,
                                  .max_parallelism = max_parallelism_});
    ByteWriter& b = w.begin_section(state::kOperatorWide);
    b.put_bytes(target_);
    b.put<int32_t>(subtask_);
    b.put<int32_t>(parallelism_);
    b.put<int64_t>(committed_);
    b.put<uint64_t>(pending_.size());
    for (const Pending& p : pending_) {
      b.put<int64_t>(p.checkpoint);
      b.put_bytes(p.name);
      b.put<int64_t>(p.size);
    }
    w.finish();
    return Status::ok();
  }

  Status notify_checkpoint_complete(CheckpointId id) override {
    size_t n = 0;
    while (n < pending_.size() && pending_[n].checkpoint <= id.value()) ++n;
    if (n == 0) return Status::ok();
    SABOT_RETURN_IF_ERROR(append_parts(committed_, n));
    for (size_t i = 0; i < n; ++i) {
      committed_ += pending_[i].size;
      // A failed delete only leaves garbage that the next start or restore removes.
      ::unlink(staged_path(pending_[i].name).c_str());
    }
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(n));
    return Status::ok();
  }

  Status restore_state(std::string_view data) override {
    if (restored_) {
      return Status::invalid_argument(
          "file sink '" + uid_ + "' (" + target_ +
          "): restoring from several subtask snapshots (a checkpoint taken at another "
          "parallelism); an exactly-once file sink restores only at the parallelism it was "
          "checkpointed with");
    }
    SABOT_ASSIGN_OR_RETURN(
        state::SnapshotReader reader,
        state::SnapshotReader::open(data, uid_, kFileSinkStateType, 1, max_parallelism_));
    std::string target;
    int32_t subtask = 0;
    int32_t parallelism = 0;
    int64_t committed = 0;
    std::vector<Pending> pending;
    for (size_t s = 0; s < reader.sections().size(); ++s) {
      if (reader.sections()[s].key_group != state::kOperatorWide) {
        return reader.section_reader(s).invalid("a keyed section in a file sink snapshot");
      }
      ByteReader r = reader.section_reader(s);
      SABOT_RETURN_IF_ERROR(r.get_bytes(&target));
      SABOT_RETURN_IF_ERROR(r.get(&subtask));
      SABOT_RETURN_IF_ERROR(r.get(&parallelism));
      SABOT_RETURN_IF_ERROR(r.get(&committed));
      if (committed < 0) return r.invalid("negative committed length");
      uint64_t count = 0;
      SABOT_RETURN_IF_ERROR(r.get_count(&count, 24));
      for (uint64_t i = 0; i < count; ++i) {
        Pending p;
        SABOT_RETURN_IF_ERROR(r.get(&p.checkpoint));
        SABOT_RETURN_IF_ERROR(r.get_bytes(&p.name));
        SABOT_RETURN_IF_ERROR(r.get(&p.size));
        if (p.size < 0) return r.invalid("negative staged file size");
        if (!is_staged_of(p.name, file_name_of(target))) {
          return r.invalid("staged file '" + p.name + "' does not belong to '" + target + "'");
        }
        pending.push_back(std::move(p));
      }
      SABOT_RETURN_IF_ERROR(r.expect_end());
    }
    if (parallelism != parallelism_ || subtask != subtask_) {
      return Status::invalid_argument(
          "file sink '" + uid_ + "': the checkpoint holds subtask " + std::to_string(subtask) +
          " of " + std::to_string(parallelism) + ", this is subtask " + std::to_string(subtask_) +
          " of " + std::to_string(parallelism_) +
          "; an exactly-once file sink restores only at the parallelism it was checkpointed with");
    }
    if (target != target_) {
      return Status::invalid_argument("file sink '" + uid_ + "': the checkpoint was written for '" +
                                      target + "', this sink writes '" + target_ + "'");
    }
    pending_ = std::move(pending);
    committed_ = committed;
    // This run's staged files are numbered after the listed ones: a later restore from the same
    // checkpoint must never take a file this run staged for one that it lists.
    const size_t number_at = target_name_.size() + 2;  // "." + target + "."
    for (const Pending& p : pending_) {
      int64_t k = 0;
      const char* first = p.name.data() + number_at;
      const char* last = p.name.data() + p.name.size() - kStagedSuffix.size();
      if (std::from_chars(first, last, k).ec == std::errc() && k >= next_part_) next_part_ = k + 1;
    }
    // notify_checkpoint_complete appends staged files in order and deletes them only after the
    // append, so the ones gone are a prefix whose bytes follow the committed ones in the target.
    // Some and not all are gone when a notify of an earlier checkpoint ran after this snapshot
    // was taken (snapshot n, then notify n-1): the state lists n-1's and n's files, n-1's are
    // committed and deleted, n's are still staged.
    int64_t total = committed_;
    std::vector<bool> present;
    for (const Pending& p : pending_) {
      total += p.size;
      SABOT_ASSIGN_OR_RETURN(int64_t size, file_size(staged_path(p.name)));
      present.push_back(size == p.size);
    }
    size_t gone = 0;
    int64_t kept = committed_;  // the committed bytes plus those of the files gone
    while (gone < pending_.size() && !present[gone]) kept += pending_[gone++].size;
    const bool rest_present = std::all_of(present.begin() + static_cast<std::ptrdiff_t>(gone),
                                          present.end(), [](bool b) { return b; });
    SABOT_ASSIGN_OR_RETURN(int64_t have, file_size(target_));
    if (have >= kept && rest_present) {
      // Re-commit the files still staged after the bytes of those gone: whatever a commit of this
      // or a later checkpoint appended is replaced. All gone: the target is cut at `total`.
      pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(gone));
      SABOT_RETURN_IF_ERROR(append_parts(kept, pending_.size()));
    } else if (have >= total) {
      // The pending files were committed (and deleted) before the failure: keep their bytes,
      // drop what later checkpoints committed.
      SABOT_RETURN_IF_ERROR(truncate_target(total));
    } else {
      const size_t missing = static_cast<size_t>(std::count(present.begin(), present.end(), false));
      return Status::invalid_data(
          "file sink '" + uid_ + "': '" + target_ + "' holds " +
          (have < 0 ? std::string("nothing (it does not exist)")
                    : std::to_string(have) + " bytes") +
          " but the checkpoint needs its first " + std::to_string(kept) + " bytes and " +
          std::to_string(missing) + " of the " + std::to_string(present.size()) +
          " staged files it lists are gone; was the file changed or removed outside the job?");
    }
    committed_ = total;
    pending_.clear();
    restored_ = true;
    SABOT_RETURN_IF_ERROR(remove_staged_files());
    if (committed_ > 0) skip_prefix();
    return Status::ok();
  }

 private:
  struct Pending {
    int64_t checkpoint = 0;
    std::string name;  // of the staged file, in the target's directory
    int64_t size = 0;
  };

  std::string staged_path(const std::string& name) const {
    return (std::filesystem::path(dir_) / name).string();
  }

  // The first event (or checkpoint) of this run: a run that did not restore starts with an empty
  // target; subtask 0 removes parts of earlier runs at other parallelism.
  Status ensure_started() {
    if (started_) return Status::ok();
    if (!restored_) {
      SABOT_RETURN_IF_ERROR(remove_staged_files());
      SABOT_RETURN_IF_ERROR(truncate_target(0));
      committed_ = 0;
    }
    if (subtask_ == 0) {
      SABOT_RETURN_IF_ERROR(remove_stale_parts(options_.path, parallelism_));
    }
    started_ = true;
    return Status::ok();
  }

  // Opens a new staged file for records after the last barrier.
  Status ensure_part() {
    if (part_) return Status::ok();
    std::string name =
        "." + target_name_ + "." + std::to_string(next_part_++) + std::string(kStagedSuffix);
    SABOT_ASSIGN_OR_RETURN(part_, BufferedFile::create(staged_path(name), options_.buffer_bytes));
    byte_sink_.set(part_.get());
    return Status::ok();
  }

  // The restored target already holds the CSV header or the IPC schema: the encoders must not
  // write them again.
  void skip_prefix() {
    if (options_.format == FileFormat::kCsv && options_.csv.header) {
      std::string discard;
      csv_.write_header(*schema_, discard);
    }
    if (ipc_ && ipc_->schema() == nullptr) {
      byte_sink_.set(nullptr);
      (void)ipc_->write_schema(schema_);
    }
  }

  Status truncate_target(int64_t length) {
    Fd fd(::open(target_.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    if (fd.get() < 0) {
      return Status::io_error("cannot open '" + target_ + "': " + errno_text(errno));
    }
    if (::ftruncate(fd.get(), length) != 0) {
      return Status::io_error("cannot truncate '" + target_ + "': " + errno_text(errno));
    }
    SABOT_RETURN_IF_ERROR(fsync_fd(fd.get(), target_));
    return fsync_dir(dir_);
  }

  // Writes the first `count` pending staged files into the target from byte `at` on (cutting
  // whatever follows), then fsyncs it. Idempotent.
  Status append_parts(int64_t at, size_t count) {
    Fd out(::open(target_.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    if (out.get() < 0) {
      return Status::io_error("cannot open '" + target_ + "': " + errno_text(errno));
    }
    if (::ftruncate(out.get(), at) != 0 || ::lseek(out.get(), at, SEEK_SET) != at) {
      return Status::io_error("cannot truncate '" + target_ + "': " + errno_text(errno));
    }
    std::string buf(size_t{1} << 20, '\0');
    for (size_t i = 0; i < count; ++i) {
      const std::string path = staged_path(pending_[i].name);
      SABOT_ASSIGN_OR_RETURN(Fd in, open_for_reading(path));
      int64_t copied = 0;
      for (;;) {
        ssize_t n = ::read(in.get(), buf.data(), buf.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return Status::io_error("cannot read '" + path + "': " + errno_text(errno));
        if (n == 0) break;
        SABOT_RETURN_IF_ERROR(write_all(out.get(), buf.data(), static_cast<size_t>(n), target_));
        copied += n;
      }
      if (copied != pending_[i].size) {
        return Status::invalid_data("staged file '" + path + "' holds " + std::to_string(copied) +
                                    " bytes, its checkpoint recorded " +
                                    std::to_string(pending_[i].size));
      }
    }
    SABOT_RETURN_IF_ERROR(fsync_fd(out.get(), target_));
    return fsync_dir(dir_);
  }

  // Deletes every staged file of this sink's target.
  Status remove_staged_files() {
    namespace fs = std::filesystem;
    std::error_code ec;
    std::vector<fs::path> doomed;
    for (fs::directory_iterator it(dir_.empty() ? "." : dir_, ec), end; !ec && it != end;
         it.increment(ec)) {
      if (is_staged_of(it->path().filename().string(), target_name_)) doomed.push_back(it->path());
    }
    if (ec) return Status::io_error("cannot list directory '" + dir_ + "': " + ec.message());
    for (const fs::path& f : doomed) {
      if (!fs::remove(f, ec) && ec) {
        return Status::io_error("cannot remove '" + f.string() + "': " + ec.message());
      }
    }
    return Status::ok();
  }

  Status with_path(Status s) const {
    if (s.is_ok() || s.message().find(target_) != std::string::npos) return s;
    return Status(s.code(), "file '" + target_ + "': " + s.message());
  }

  FileSinkOptions options_;
  SchemaPtr schema_;
  std::string target_;
  std::string dir_;
  std::string target_name_;
  std::string uid_;
  int subtask_ = 0;
  int parallelism_ = 1;
  uint32_t max_parallelism_ = 128;
  codec::CsvEncoder csv_;
  codec::JsonEncoder json_;
  SwitchableByteSink byte_sink_;
  std::unique_ptr<columnar::IpcStreamWriter> ipc_;
  std::unique_ptr<BufferedFile> part_;  // the staged file of records since the last barrier
  int64_t next_part_ = 0;
  std::vector<Pending> pending_;  // pre-committed staged files, by checkpoint
  int64_t committed_ = 0;         // bytes of the target that completed checkpoints hold
  bool restored_ = false;
  bool started_ = false;
};

class FileSinkFactory final : public OperatorFactory {
 public:
  explicit FileSinkFactory(FileSinkOptions options) : options_(std::move(options)) {}
  std::string kind() const override {
    return std::string("file_sink:") + std::string(file_format_name(options_.format));
  }
  Result<SchemaPtr> output_schema(std::span<const SchemaPtr> inputs) const override {
    if (inputs.size() != 1) return Status::invalid_argument(kind() + " takes one input");
    if (options_.path.empty()) return Status::invalid_argument("file sink needs a path");
    if (options_.buffer_bytes <= 0) {
      return Status::invalid_argument("file sink '" + options_.path +
                                      "': buffer_bytes must be positive");
    }
    std::filesystem::path dir = std::filesystem::path(options_.path).parent_path();
    std::error_code ec;
    if (!dir.empty() && !std::filesystem::is_directory(dir, ec)) {
      return Status::not_found("file sink '" + options_.path + "': directory '" + dir.string() +
                               "' does not exist");
    }
    if (std::filesystem::is_directory(options_.path, ec)) {
      return Status::invalid_argument("file sink '" + options_.path + "' is a directory");
    }
    return inputs[0];
  }
  Result<std::unique_ptr<Operator>> create(std::span<const SchemaPtr> inputs,
                                           const OperatorContext& ctx) const override {
    SABOT_RETURN_IF_ERROR(output_schema(inputs).status());
    std::string path = file_sink_path(options_.path, ctx.subtask_index, ctx.parallelism);
    if (ctx.delivery == runtime::DeliveryGuarantee::kExactlyOnce) {
      return std::unique_ptr<Operator>(
          new ExactlyOnceFileSink(options_, inputs[0], std::move(path)));
    }
    return std::unique_ptr<Operator>(new FileSinkOperator(options_, inputs[0], std::move(path)));
  }

 private:
  FileSinkOptions options_;
};

// Expands directories and checks each file; problems go to `problems`.
std::vector<std::string> resolve_files(const std::vector<std::string>& paths,
                                       std::vector<std::string>& problems) {
  namespace fs = std::filesystem;
  std::vector<std::string> files;
  for (const std::string& p : paths) {
    std::error_code ec;
    fs::file_status st = fs::status(p, ec);
    if (ec || !fs::exists(st)) {
      problems.push_back("'" + p + "' does not exist");
      continue;
    }
    if (fs::is_directory(st)) {
      std::vector<std::string> listed;
      for (fs::directory_iterator it(p, ec), end; !ec && it != end; it.increment(ec)) {
        std::error_code ec2;
        if (it->is_regular_file(ec2)) listed.push_back(it->path().string());
      }
      if (ec) {
        problems.push_back("cannot list directory '" + p + "': " + ec.message());
        continue;
      }
      std::sort(listed.begin(), listed.end());
      for (auto& f : listed) files.push_back(std::move(f));
    } else if (fs::is_regular_file(st)) {
      files.push_back(p);
    } else {
      problems.push_back("'" + p + "' is not a regular file or a directory");
    }
  }
  for (const std::string& f : files) {
    if (::access(f.c_str(), R_OK) != 0) {
      problems.push_back("'" + f + "' is not readable: " + errno_text(errno));
    }
  }
  return files;
}

}  // namespace

std::string_view file_format_name(FileFormat format) {
  switch (format) {
    case FileFormat::kJsonLines:
      return "jsonl";
    case FileFormat::kCsv:
      return "csv";
    case FileFormat::kArrowIpc:
      return "arrow_ipc";
  }
  return "unknown";
}

std::string file_sink_path(const std::string& path, int subtask, int parallelism) {
  if (parallelism <= 1) return path;
  std::filesystem::path p(path);
  std::string name = p.stem().string() + "-" + std::to_string(subtask) + p.extension().string();
  return (p.parent_path() / name).string();
}

Result<std::shared_ptr<const Source>> file_source(FileSourceOptions options) {
  std::vector<std::string> problems;
  if (options.paths.empty()) problems.push_back("no paths given");
  auto config = std::make_shared<FileSourceConfig>();
  config->files = resolve_files(options.paths, problems);
  if (options.bad_records == BadRecordPolicy::kDeadLetter) {
    problems.push_back("the dead-letter policy is not supported for files (use fail or skip)");
  }
  if (options.chunk_bytes <= 0) problems.push_back("chunk_bytes must be positive");
  if (options.max_record_bytes <= 0) problems.push_back("max_record_bytes must be positive");
  if (options.format == FileFormat::kArrowIpc) {
    config->schema = options.schema;
    if (problems.empty()) {
      for (const std::string& f : config->files) {
        auto r = open_ipc(f);
        if (!r.is_ok()) {
          problems.push_back(r.status().message());
          continue;
        }
        if (config->schema == nullptr) config->schema = r->schema();
        if (!(*r->schema() == *config->schema)) {
          problems.push_back("file '" + f + "' has schema {" + r->schema()->to_string() +
                             "}, expected {" + config->schema->to_string() + "}");
        }
      }
      if (config->schema == nullptr) {
        problems.push_back("no schema given and no Arrow IPC file to read one from");
      }
    }
  } else {
    config->schema = options.schema;
    if (config->schema == nullptr) {
      problems.push_back(std::string("a ") + std::string(file_format_name(options.format)) +
                         " file source needs a schema");
    } else if (options.format == FileFormat::kJsonLines) {
      auto d = codec::JsonDecoder::make(config->schema, options.json);
      if (!d.is_ok()) problems.push_back(d.status().message());
    } else {
      auto d = codec::CsvDecoder::make(config->schema, options.csv);
      if (!d.is_ok()) problems.push_back(d.status().message());
    }
  }
  if (!problems.empty()) {
    std::string msg = std::string(file_format_name(options.format)) + " file source:";
    for (const std::string& p : problems) msg += " " + p + ";";
    msg.pop_back();
    bool missing = std::any_of(problems.begin(), problems.end(), [](const std::string& p) {
      return p.find("does not exist") != std::string::npos;
    });
    return missing ? Status::not_found(msg) : Status::invalid_argument(msg);
  }
  config->options = std::move(options);
  return std::shared_ptr<const Source>(std::make_shared<FileSource>(std::move(config)));
}

std::shared_ptr<const OperatorFactory> file_sink(FileSinkOptions options) {
  return std::make_shared<FileSinkFactory>(std::move(options));
}

}  // namespace sabot::connectors
