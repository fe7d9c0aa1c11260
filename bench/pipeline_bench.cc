// Macro benchmark of the dataflow runtime: a chained generator -> filter -> with_column ->
// blackhole pipeline over int64 columns, and the same through a key_by exchange. Prints one JSON
// object per pipeline with rows per second of wall time and per CPU-second of the process.
//   pipeline_bench [--rows N] [--parallelism P] [--threads T] [--batch B]
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "sabot/sabot.h"

namespace {

using namespace sabot;

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

RecordBatch make_batch(int64_t rows) {
  columnar::Int64Builder key, value, ts;
  for (int64_t i = 0; i < rows; ++i) {
    key.append((i * 7919) % 1000);
    value.append((i * 2654435761LL) % 1000);
    ts.append(1'700'000'000'000 + i);
  }
  auto schema = columnar::schema({columnar::field("key", columnar::int64()),
                                  columnar::field("value", columnar::int64()),
                                  columnar::field("ts", columnar::int64())});
  return RecordBatch::make(schema, {key.finish(), value.finish(), ts.finish()}).value();
}

struct Args {
  int64_t rows = 50'000'000;
  int parallelism = 1;
  int threads = 0;
  int64_t batch = 4096;
};

int run(const char* name, const Args& args, bool keyed) {
  RecordBatch batch = make_batch(args.batch);
  const int splits = args.parallelism;
  const int64_t per_split = args.rows / splits;
  Environment env({.parallelism = args.parallelism,
                   .worker_threads = args.threads == 0 ? args.parallelism : args.threads,
                   .batch_size = args.batch});
  DataStream s = env.from_generator(
      "gen", batch.schema_ptr(), splits,
      [&](int, int64_t next, int64_t max) -> Result<std::optional<RecordBatch>> {
        if (next >= per_split) return std::optional<RecordBatch>();
        int64_t n = std::min({max, per_split - next, batch.num_rows()});
        return std::optional<RecordBatch>(n == batch.num_rows() ? batch : batch.slice(0, n));
      });
  s = s.filter(col("value") < lit(500));  // about 50 % selectivity
  if (keyed) s = s.key_by("key");
  s.with_column("doubled", col("value") * lit(2)).blackhole();
  double cpu0 = cpu_seconds();
  auto t0 = std::chrono::steady_clock::now();
  JobResult r = env.execute(name);
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double cpu = cpu_seconds() - cpu0;
  if (!r.ok()) {
    std::fprintf(stderr, "%s failed: %s\n", name, r.status().to_string().c_str());
    return 1;
  }
  const double rows = static_cast<double>(per_split * splits);
  std::printf(
      "{\"pipeline\": \"%s\", \"rows\": %.0f, \"parallelism\": %d, \"batch_rows\": %lld, "
      "\"wall_s\": %.3f, \"cpu_s\": %.3f, \"rows_per_s\": %.0f, \"rows_per_cpu_s\": %.0f}\n",
      name, rows, args.parallelism, static_cast<long long>(args.batch), wall, cpu, rows / wall,
      rows / cpu);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    auto next = [&](const char* flag) -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", flag);
        std::exit(2);
      }
      return argv[++i];
    };
    if (!std::strcmp(argv[i], "--rows")) {
      args.rows = std::atoll(next("--rows"));
    } else if (!std::strcmp(argv[i], "--parallelism")) {
      args.parallelism = std::atoi(next("--parallelism"));
    } else if (!std::strcmp(argv[i], "--threads")) {
      args.threads = std::atoi(next("--threads"));
    } else if (!std::strcmp(argv[i], "--batch")) {
      args.batch = std::atoll(next("--batch"));
    } else {
      std::fprintf(
          stderr, "usage: pipeline_bench [--rows N] [--parallelism P] [--threads T] [--batch B]\n");
      return std::strcmp(argv[i], "--help") == 0 ? 0 : 2;
    }
  }
  if (args.rows < 1 || args.parallelism < 1 || args.batch < 1) {
    std::fprintf(stderr, "--rows, --parallelism and --batch must be >= 1\n");
    return 2;
  }
  int rc = run("chained", args, false);
  rc |= run("keyed", args, true);
  return rc;
}
