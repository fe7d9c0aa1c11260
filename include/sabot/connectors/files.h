// File sources and sinks: read JSON lines, CSV or Arrow IPC stream files into a job, and write a
// job's output to such files. Sources read in bounded chunks (JSON lines and CSV never hold a whole
// file in memory), one split per file; sinks write through a buffer, one file per subtask.
// file_source() and file_sink() return immutable objects that the plan shares between subtasks;
// every reader and sink operator belongs to one subtask and is driven by one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sabot/codec/csv.h"
#include "sabot/codec/json.h"
#include "sabot/columnar/ipc.h"
#include "sabot/connectors/bad_records.h"  // BadRecordPolicy
#include "sabot/runtime/plan.h"
#include "sabot/runtime/source.h"

namespace sabot::connectors {

enum class FileFormat {
  kJsonLines,  // one JSON object per line (codec::JsonDecoder / JsonEncoder)
  kCsv,        // RFC 4180 CSV (codec::CsvDecoder / CsvEncoder)
  kArrowIpc,   // the Arrow IPC stream format (columnar::IpcStreamReader / IpcStreamWriter)
};

// "jsonl", "csv", "arrow_ipc".
std::string_view file_format_name(FileFormat format);

struct FileSourceOptions {
  // Files to read, in order; a directory stands for its regular files sorted by name (not
  // recursive). Each file is one split: subtask i of p reads files i, i + p, ... Required.
  std::vector<std::string> paths{};
  FileFormat format = FileFormat::kJsonLines;
  // The rows' schema. Required for JSON lines and CSV. For Arrow IPC it is read from the files;
  // when given, every file's schema must equal it; when not, every file must have the first
  // file's schema.
  columnar::SchemaPtr schema{};
  // A record that does not decode fails the job (kFail, the default; the message names the file,
  // line, byte offset and reason) or is skipped and counted in the source's records_dropped
  // (kSkip). kDeadLetter is refused: files have no dead-letter destination yet.
  BadRecordPolicy bad_records = BadRecordPolicy::kFail;
  // CSV syntax and header handling (see codec::CsvOptions).
  codec::CsvOptions csv{};
  // JSON decoding (see codec::JsonDecodeOptions).
  codec::JsonDecodeOptions json{};
  // Bytes read from a file at a time (JSON lines, CSV). Default 1 MiB.
  int64_t chunk_bytes = int64_t{1} << 20;
  // A JSON line or CSV record longer than this fails the job (it is probably not the format that
  // was declared, or a CSV quote is unbalanced); bounds the memory a reader holds. Default 64 MiB.
  int64_t max_record_bytes = int64_t{64} << 20;
};

// Validates everything it can before the job runs, reporting every problem in one InvalidArgument
// (or NotFound) message that names each path: files that do not exist or cannot be read, a
// missing schema, an IPC file that is not a stream or whose schema differs. The file list is fixed
// here (directories are listed now). position() of a reader reads "file:line" (1-based line of
// the next record) or "file:batch n" for Arrow IPC.
Result<std::shared_ptr<const runtime::Source>> file_source(FileSourceOptions options);

struct FileSinkOptions {
  // The file to write, created or truncated. With parallelism 1 the sink writes exactly `path`;
  // with parallelism p > 1, subtask i (0-based) writes "<stem>-<i><extension>" in the same
  // directory, e.g. out/part.csv -> out/part-0.csv, out/part-1.csv, ... (see file_sink_path).
  // The directory must exist (it is not created). Required.
  // What is written: exactly these files. When the sink starts, subtask 0 removes what an
  // earlier run of the same path at another parallelism left behind: "<stem>-<i><extension>" for
  // i >= p (every such part at parallelism 1), the plain `path` at p > 1, and their staged files.
  // Under DeliveryGuarantee::kExactlyOnce (two-phase commit; docs/design.md "Exactly-once
  // sinks") each subtask still writes one file, which only ever holds the output of completed
  // checkpoints: records since the last barrier go to a hidden staged file
  // ".<file name>.<k>.inprogress" next to it and are appended to it when their checkpoint
  // completes. A run that does not restore starts the file empty; a restore sets it back to what
  // the restored checkpoint committed. Restoring at another parallelism is refused. A CSV header
  // or the Arrow IPC schema is part of the first commit; the IPC end-of-stream marker of the
  // final one.
  std::string path{};
  FileFormat format = FileFormat::kJsonLines;
  // CSV: a header line is written when csv.header is set (the default), even with no rows.
  codec::CsvOptions csv{};
  codec::JsonEncodeOptions json{};
  // Arrow IPC: the stream starts with the schema (so a file with no rows is still a valid stream)
  // and ends with the end-of-stream marker when the sink finishes.
  columnar::IpcWriteOptions ipc{};
  // Bytes buffered before a write to the file. Default 1 MiB. Everything is written and the file
  // closed when the sink finishes; a job that fails leaves a partial file.
  int64_t buffer_bytes = int64_t{1} << 20;
};

// A sink (its output schema is its input's). The directory is checked when the plan is validated;
// files are opened when the job starts. Errors (cannot open, disk full) name the file.
std::shared_ptr<const runtime::OperatorFactory> file_sink(FileSinkOptions options);

// The file that subtask `subtask` of a sink with `parallelism` subtasks writes for `path`.
std::string file_sink_path(const std::string& path, int subtask, int parallelism);

}  // namespace sabot::connectors
