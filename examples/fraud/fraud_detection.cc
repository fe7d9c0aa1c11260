// Fraud detection on the embedded broker: generates (or reads) Chile/Peru card transactions into
// memory://bank-transactions, runs the streaming detector and prints alerts and a summary.
//   build/release/examples/fraud/fraud_detection [--transactions N] [--seed S] [--parallelism P]
//       [--fraud-rate R] [--input FILE.jsonl] [--alerts-out FILE.jsonl] [--quiet] [--json]
//       [--metrics]
#include <cstdlib>
#include <iostream>
#include <string>
#include <string_view>

#include "fraud_job.h"

namespace {

int usage(const char* argv0, const std::string& problem) {
  std::cerr
      << problem << "\nusage: " << argv0
      << " [--transactions N] [--seed S] [--parallelism P] [--fraud-rate R]\n"
      << "    [--batch-size ROWS] [--threads T] [--input FILE.jsonl] [--alerts-out FILE.jsonl]\n"
      << "    [--quiet] [--json] [--metrics]\n";
  return 2;
}

bool parse_int(const char* text, int64_t* out) {
  char* end = nullptr;
  const long long v = std::strtoll(text, &end, 10);
  if (end == text || *end != '\0') return false;
  *out = v;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  sabot::fraud::DemoOptions options;
  bool metrics = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const bool has_value = i + 1 < argc;
    int64_t n = 0;
    if (arg == "--metrics") {
      metrics = true;
    } else if (arg == "--quiet") {
      options.quiet = true;
    } else if (arg == "--json") {
      options.json = true;
    } else if (arg == "--input" && has_value) {
      options.input_path = argv[++i];
    } else if (arg == "--alerts-out" && has_value) {
      options.alerts_out = argv[++i];
    } else if (arg == "--fraud-rate" && has_value) {
      options.generator.fraud_rate = std::atof(argv[++i]);
    } else if ((arg == "--transactions" || arg == "--seed" || arg == "--parallelism" ||
                arg == "--batch-size" || arg == "--threads") &&
               has_value) {
      if (!parse_int(argv[++i], &n)) {
        return usage(argv[0], std::string(arg) + " needs an integer, got '" + argv[i] + "'");
      }
      if (arg == "--transactions") options.transactions = n;
      if (arg == "--seed") options.seed = static_cast<uint64_t>(n);
      if (arg == "--parallelism") options.parallelism = static_cast<int>(n);
      if (arg == "--batch-size") options.batch_size = n;
      if (arg == "--threads") options.worker_threads = static_cast<int>(n);
    } else {
      return usage(argv[0], "unknown or incomplete argument '" + std::string(arg) + "'");
    }
  }
  auto summary = sabot::fraud::run_fraud_demo(options);
  if (!summary.is_ok()) {
    std::cerr << "fraud_detection: " << summary.status().to_string() << "\n";
    return summary.status().exit_code();
  }
  if (metrics) std::cerr << summary->job_metrics;
  return 0;
}
