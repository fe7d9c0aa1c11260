// The metrics endpoint and the dashboard of a running `sabot` command, checked by the real
// consumers: a Prometheus server that scrapes it (Debian's prometheus), promtool, and headless
// Chromium. Each test starts the fraud demo at a paced rate (a job that runs until it is killed)
// with --metrics-port 0 and reads the URL it prints.
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include "support/text_files.h"

namespace {

namespace fs = std::filesystem;
using sabot::test_support::read_file;
using sabot::test_support::run_command;

// Waits between polls of an explicit condition (never as synchronisation by itself).
void pause_between_polls() { std::this_thread::sleep_for(std::chrono::milliseconds(200)); }

fs::path temp_dir(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / (name + "-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// A child process started with the shell, killed (and reaped) by the destructor.
class Child {
 public:
  explicit Child(const std::string& command_line) {
    pid_ = fork();
    if (pid_ == 0) {
      setpgid(0, 0);
      execl("/bin/sh", "sh", "-c", ("exec " + command_line).c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
  }
  ~Child() {
    if (pid_ <= 0) return;
    kill(-pid_, SIGKILL);
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
  }
  bool running() const {
    int status = 0;
    return pid_ > 0 && waitpid(pid_, &status, WNOHANG) == 0;
  }

 private:
  pid_t pid_ = -1;
};

// The fraud demo, paced so that it runs for minutes, serving metrics on a free port.
struct RunningDemo {
  fs::path dir;
  std::unique_ptr<Child> child;
  int port = 0;

  explicit RunningDemo(const std::string& name) : dir(temp_dir(name)) {
    child = std::make_unique<Child>(std::string(SABOT_CLI) +
                                    " demo fraud --transactions 100M --rate 20k --quiet "
                                    "--parallelism 2 --metrics-port 0 >/dev/null 2>" +
                                    (dir / "sabot.err").string() + " </dev/null");
    const std::regex url("metrics and dashboard at http://127\\.0\\.0\\.1:([0-9]+)/");
    for (int attempt = 0; attempt < 150 && port == 0 && child->running(); ++attempt) {
      std::smatch m;
      const std::string err = read_file(dir / "sabot.err");
      if (std::regex_search(err, m, url)) {
        port = std::stoi(m[1]);
      } else {
        pause_between_polls();
      }
    }
  }
  ~RunningDemo() {
    child.reset();
    if (!::testing::Test::HasFailure()) fs::remove_all(dir);  // kept for a look when failed
  }
  std::string err() const { return read_file(dir / "sabot.err"); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port) + "/"; }
};

int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

// The value of a Prometheus instant query that returns one sample (nullopt: none yet).
std::optional<double> query_value(httplib::Client& prometheus, const std::string& promql) {
  auto res =
      prometheus.Get("/api/v1/query", httplib::Params{{"query", promql}}, httplib::Headers{});
  if (!res || res->status != 200) return std::nullopt;
  static const std::regex value("\"value\":\\[[0-9.]+,\"([0-9.eE+-]+)\"\\]");
  std::smatch m;
  if (!std::regex_search(res->body, m, value)) return std::nullopt;
  return std::stod(m[1]);
}

TEST(PrometheusScrape, SeesTheRecordCountersOfARunningJobIncrease) {
  RunningDemo demo("sabot-prometheus-test");
  ASSERT_GT(demo.port, 0) << demo.err();
  const fs::path config = demo.dir / "prometheus.yml";
  std::ofstream(config) << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                           "scrape_configs:\n  - job_name: sabot\n    honor_labels: true\n"
                           "    static_configs:\n      - targets: ['127.0.0.1:"
                        << demo.port << "']\n";
  const int port = free_port();
  Child prometheus("/usr/bin/prometheus --config.file=" + config.string() +
                   " --storage.tsdb.path=" + (demo.dir / "tsdb").string() +
                   " --web.listen-address=127.0.0.1:" + std::to_string(port) + " >" +
                   (demo.dir / "prometheus.log").string() + " 2>&1");
  httplib::Client client("127.0.0.1", port);
  bool ready = false;
  for (int attempt = 0; attempt < 150 && !ready; ++attempt) {
    auto r = client.Get("/-/ready");
    ready = r && r->status == 200;
    if (!ready) pause_between_polls();
  }
  ASSERT_TRUE(ready) << read_file(demo.dir / "prometheus.log");
  // The source's records read, as Prometheus stored them: a first value, then a larger one.
  const std::string promql =
      "sum(sabot_operator_records_out_total{job=\"fraud-detection\","
      "operator=~\"topic:bank-transactions.*\"})";
  std::optional<double> first, later;
  for (int attempt = 0; attempt < 300 && !(first && later && *later > *first); ++attempt) {
    auto v = query_value(client, promql);
    if (v && !first) {
      first = v;
    } else if (v) {
      later = v;
    }
    if (!(first && later && *later > *first)) pause_between_polls();
  }
  ASSERT_TRUE(first.has_value()) << "Prometheus never stored the counter\n"
                                 << read_file(demo.dir / "prometheus.log");
  ASSERT_TRUE(later.has_value());
  EXPECT_GT(*later, *first);
  // Prometheus found the target healthy.
  auto targets = client.Get("/api/v1/targets");
  ASSERT_TRUE(targets);
  EXPECT_NE(targets->body.find("\"health\":\"up\""), std::string::npos) << targets->body;
  EXPECT_TRUE(demo.child->running()) << demo.err();
}

TEST(PrometheusScrape, PromtoolAcceptsTheExposition) {
  RunningDemo demo("sabot-promtool-test");
  ASSERT_GT(demo.port, 0) << demo.err();
  httplib::Client client("127.0.0.1", demo.port);
  // The server starts before the demo's job: wait until the job is served (bounded).
  const std::string counter = "sabot_operator_records_out_total{job=\"fraud-detection\"";
  auto res = client.Get("/metrics");
  for (int attempt = 0; attempt < 150 && res && res->body.find(counter) == std::string::npos;
       ++attempt) {
    pause_between_polls();
    res = client.Get("/metrics");
  }
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  EXPECT_NE(res->body.find("sabot_operator_records_out_total{job=\"fraud-detection\""),
            std::string::npos);
  std::ofstream(demo.dir / "metrics.txt") << res->body;
  auto checked =
      run_command("/usr/bin/promtool check metrics < " + (demo.dir / "metrics.txt").string(),
                  (demo.dir / "promtool.err").string());
  EXPECT_EQ(checked.code, 0) << checked.out << checked.err;
  // A bad exposition is refused: the check can fail.
  std::ofstream(demo.dir / "bad.txt") << "sabot_bad{job=\"x\" 1\n";
  auto bad = run_command("/usr/bin/promtool check metrics < " + (demo.dir / "bad.txt").string(),
                         (demo.dir / "promtool-bad.err").string());
  EXPECT_NE(bad.code, 0);
}

// Loads the dashboard in headless Chromium and returns the DOM after the page's script ran; the
// browser's log (console messages included) goes to `log`.
std::string load_dashboard(const RunningDemo& demo, const fs::path& log, const std::string& extra) {
  auto r = run_command(
      "timeout 120 /usr/bin/chromium --headless --no-sandbox --disable-gpu "
      "--no-first-run --user-data-dir=" +
          (demo.dir / "chromium-profile").string() +
          " --enable-logging=stderr --v=0 --virtual-time-budget=4000 " + extra + " " + demo.url(),
      log.string());
  return r.out;
}

std::vector<std::string> console_lines(const std::string& log) {
  std::vector<std::string> lines;
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) {
    if (line.find(":CONSOLE") != std::string::npos || line.find("Uncaught") != std::string::npos) {
      lines.push_back(line);
    }
  }
  return lines;
}

int64_t parse_count(const std::string& text) {
  // "397.0 k", "1.20 M", "9116"
  double v = std::stod(text);
  if (text.find(" k") != std::string::npos) v *= 1e3;
  if (text.find(" M") != std::string::npos) v *= 1e6;
  if (text.find(" G") != std::string::npos) v *= 1e9;
  return static_cast<int64_t>(v);
}

TEST(Dashboard, ShowsEveryOperatorWithChangingThroughputAndNoConsoleError) {
  RunningDemo demo("sabot-dashboard-test");
  ASSERT_GT(demo.port, 0) << demo.err();
  httplib::Client client("127.0.0.1", demo.port);
  // The server starts before the demo's job: wait until the job is served (bounded).
  auto job = client.Get("/api/job");
  for (int attempt = 0; attempt < 150 && job && job->body.find("\"jobs\":[]") != std::string::npos;
       ++attempt) {
    pause_between_polls();
    job = client.Get("/api/job");
  }
  ASSERT_TRUE(job);
  std::vector<std::string> operators;
  static const std::regex name("\"name\":\"([^\"]+)\"");
  for (auto it = std::sregex_iterator(job->body.begin(), job->body.end(), name);
       it != std::sregex_iterator(); ++it) {
    operators.push_back((*it)[1]);
  }
  ASSERT_EQ(operators.size(), 4u) << job->body;

  std::vector<std::map<std::string, int64_t>> loads;
  for (int load = 0; load < 2; ++load) {
    const fs::path log = demo.dir / ("chromium-" + std::to_string(load) + ".log");
    const std::string dom = load_dashboard(demo, log, "--dump-dom");
    const std::string browser_log = read_file(log);
    // The page's one console message proves console capture works; anything else fails.
    const auto console = console_lines(browser_log);
    ASSERT_FALSE(console.empty()) << "no console output captured\n" << browser_log;
    for (const std::string& line : console) {
      EXPECT_NE(line.find("\"sabot-dashboard: rendered 4 operators\""), std::string::npos)
          << "console message: " << line;
    }
    // The operators table's bytes and key columns, the partitions table's offset and lag.
    for (const char* column :
         {"<th>bytes in</th>", "<th>bytes out</th>", "<th>keys</th>", "<th>offset</th>"}) {
      EXPECT_NE(dom.find(column), std::string::npos) << column << "\n" << dom;
    }
    std::map<std::string, int64_t> out;
    for (const std::string& op : operators) {
      // The operators table and the job graph both name every operator.
      EXPECT_NE(dom.find("data-graph-op=\"" + op + "\""), std::string::npos) << op << "\n" << dom;
      const std::regex row("data-op=\"" +
                           std::regex_replace(op, std::regex("[.^$|()\\[\\]{}*+?\\\\]"), "\\$&") +
                           "\"[^>]*>.*?class=\"num records-out\">([^<]+)<");
      std::smatch m;
      ASSERT_TRUE(std::regex_search(dom, m, row)) << op << "\n" << dom;
      out[op] = parse_count(m[1]);
    }
    loads.push_back(out);
    // The job keeps reading between the two loads: wait until its counter has moved (explicit).
    if (load == 0) {
      const std::string source = operators[0];
      for (int attempt = 0; attempt < 100; ++attempt) {
        auto metrics = client.Get("/api/metrics");
        static const std::regex records("\"records_out\":([0-9]+)");
        std::smatch m;
        if (metrics && std::regex_search(metrics->body, m, records) &&
            std::stoll(m[1]) > out[source] + 20'000) {
          break;
        }
        pause_between_polls();
      }
    }
  }
  EXPECT_GT(loads[1][operators[0]], loads[0][operators[0]]) << "source throughput did not change";

  // The screenshot, kept as an artifact under the build folder.
  fs::create_directories(SABOT_ARTIFACT_DIR);
  const fs::path png = fs::path(SABOT_ARTIFACT_DIR) / "dashboard.png";
  fs::remove(png);
  load_dashboard(demo, demo.dir / "chromium-shot.log",
                 "--window-size=1400,1100 --screenshot=" + png.string());
  ASSERT_TRUE(fs::exists(png)) << read_file(demo.dir / "chromium-shot.log");
  const std::string bytes = read_file(png);
  EXPECT_GT(bytes.size(), 10'000u);
  EXPECT_EQ(bytes.substr(1, 3), "PNG");
  EXPECT_TRUE(demo.child->running()) << demo.err();
}

}  // namespace

namespace {

// --log-format json: every log line is one JSON object with ts, level, component and msg.
TEST(SabotCommand, LogFormatJsonWritesOneObjectPerLine) {
  const fs::path dir = temp_dir("sabot-logformat-test");
  auto r = run_command("SABOT_LOG_LEVEL=info " + std::string(SABOT_CLI) +
                           " --log-format json bench nexmark --query q0 --events 20k --json "
                           "--checkpoint-dir " +
                           (dir / "chk").string(),
                       (dir / "err").string());
  ASSERT_EQ(r.code, 0) << r.err;
  const std::regex object(
      "\\{\"ts\":\"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z\",\"level\":\"(INFO|WARN|ERROR|DEBUG)\","
      "\"component\":\"[a-z-]+\",\"msg\":\".*\"\\}");
  int logged = 0;
  std::istringstream in(r.err);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] != '{') continue;  // not a log line (e.g. "restored from ...")
    EXPECT_TRUE(std::regex_match(line, object)) << line;
    ++logged;
  }
  EXPECT_GT(logged, 0) << r.err;  // the checkpoint coordinator logs at info
  EXPECT_EQ(r.err.find(" INFO ["), std::string::npos) << r.err;
  auto bad = run_command(std::string(SABOT_CLI) + " --log-format xml bench nexmark --query q0",
                         (dir / "err2").string());
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find("--log-format: 'xml' is not one of text, json"), std::string::npos);
  fs::remove_all(dir);
}

// The progress line: drawn on a terminal (script(1) gives the command one), never into a pipe,
// and not with --quiet.
TEST(SabotCommand, ProgressLineOnlyOnATerminalAndNotWhenQuiet) {
  const fs::path dir = temp_dir("sabot-progress-test");
  const std::string bench = std::string(SABOT_CLI) + " bench nexmark --query q0 --events 300k";
  auto piped = run_command(bench, (dir / "err").string());
  ASSERT_EQ(piped.code, 0) << piped.err;
  EXPECT_EQ(piped.err.find("records"), std::string::npos) << piped.err;
  EXPECT_EQ(piped.out.find("records"), std::string::npos) << piped.out;
  auto tty = run_command("script -qec '" + bench + "' /dev/null", (dir / "err-tty").string());
  ASSERT_EQ(tty.code, 0) << tty.err;
  // q0 reads the bids of the 300k events (92%); the line is drawn at least once, at the end.
  EXPECT_TRUE(std::regex_search(tty.out, std::regex("[0-9.]+ k records \\([0-9]+%\\)  [0-9.]+ "
                                                    "[kMG]?/s  elapsed [0-9]+ s")))
      << tty.out;
  EXPECT_NE(tty.out.find("\r\033[K"), std::string::npos);
  auto quiet =
      run_command("script -qec '" + bench + " --quiet' /dev/null", (dir / "err-quiet").string());
  ASSERT_EQ(quiet.code, 0) << quiet.err;
  EXPECT_EQ(quiet.out.find("records"), std::string::npos) << quiet.out;
  fs::remove_all(dir);
}

}  // namespace

namespace {

// An App worker (examples/app word_count) serves every agent's job.
TEST(AppWorker, ServesTheMetricsOfEveryAgent) {
  const fs::path dir = temp_dir("sabot-app-metrics-test");
  const std::string app = SABOT_WORD_COUNT;
  auto sent =
      run_command(app + " send lines 'the quick brown fox' --state-dir " + (dir / "st").string(),
                  (dir / "send.err").string());
  ASSERT_EQ(sent.code, 0) << sent.err;
  auto worker = std::make_unique<Child>(app + " worker --state-dir " + (dir / "st").string() +
                                        " --checkpoint-dir " + (dir / "chk").string() +
                                        " --metrics-port 0 >/dev/null 2>" +
                                        (dir / "worker.err").string() + " </dev/null");
  const std::regex url("metrics and dashboard at http://127\\.0\\.0\\.1:([0-9]+)/");
  int port = 0;
  for (int attempt = 0; attempt < 150 && port == 0 && worker->running(); ++attempt) {
    std::smatch m;
    const std::string err = read_file(dir / "worker.err");
    if (std::regex_search(err, m, url)) {
      port = std::stoi(m[1]);
    } else {
      pause_between_polls();
    }
  }
  ASSERT_GT(port, 0) << read_file(dir / "worker.err");
  httplib::Client client("127.0.0.1", port);
  // Both agents' jobs run (explicit condition, bounded), and the words reach the counter.
  size_t jobs = 0;
  std::string body;
  for (int attempt = 0; attempt < 150 && jobs < 2; ++attempt) {
    auto res = client.Get("/api/job");
    body = res ? res->body : "";
    jobs = 0;
    for (size_t p = body.find("\"state\":\"running\""); p != std::string::npos;
         p = body.find("\"state\":\"running\"", p + 1)) {
      ++jobs;
    }
    if (jobs < 2) pause_between_polls();
  }
  EXPECT_EQ(jobs, 2u) << body;
  // The agents keep keyed state and read memory:// topics: key counts, offsets and lags appear
  // once they have processed the words (explicit condition, bounded).
  httplib::Result metrics = client.Get("/metrics");
  for (int attempt = 0; attempt < 150; ++attempt) {
    if (attempt > 0) metrics = client.Get("/metrics");
    if (metrics && metrics->body.find("sabot_operator_state_keys{job=") != std::string::npos &&
        metrics->body.find("sabot_source_partition_lag_records{job=") != std::string::npos) {
      break;
    }
    pause_between_polls();
  }
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("sabot_operator_records_out_total{job="), std::string::npos);
  EXPECT_NE(metrics->body.find("sabot_operator_bytes_in_total{job="), std::string::npos);
  EXPECT_NE(metrics->body.find("sabot_operator_state_keys{job="), std::string::npos)
      << metrics->body;
  EXPECT_NE(metrics->body.find("sabot_source_partition_offset{job="), std::string::npos);
  EXPECT_NE(metrics->body.find("sabot_source_partition_lag_records{job="), std::string::npos)
      << metrics->body;
  std::ofstream(dir / "metrics.txt") << metrics->body;
  auto checked = run_command("/usr/bin/promtool check metrics < " + (dir / "metrics.txt").string(),
                             (dir / "promtool.err").string());
  EXPECT_EQ(checked.code, 0) << checked.out << checked.err;
  // /api/app: both agents (topic, concurrency, records processed, keys per subtask) and the table;
  // the count agent processes the four words (explicit condition, bounded).
  static const std::regex count_records("\"name\":\"count\"[^\\]]*\"records\":([0-9]+)");
  httplib::Result app_doc = client.Get("/api/app");
  int64_t counted = -1;
  for (int attempt = 0; attempt < 150 && counted != 4; ++attempt) {
    if (attempt > 0) app_doc = client.Get("/api/app");
    std::smatch m;
    if (app_doc && std::regex_search(app_doc->body, m, count_records)) counted = std::stoll(m[1]);
    if (counted != 4) pause_between_polls();
  }
  ASSERT_TRUE(app_doc);
  EXPECT_EQ(counted, 4) << app_doc->body;
  for (const char* part :
       {"\"name\":\"word-count\"", "{\"name\":\"split\",\"topic\":\"lines\",\"concurrency\":1,",
        "{\"name\":\"count\",\"topic\":\"words\",\"concurrency\":2,",
        "\"failures\":0,\"restarts\":0",
        "\"tables\":[{\"name\":\"word-counts\",\"key_type\":\"string\""}) {
    EXPECT_NE(app_doc->body.find(part), std::string::npos) << part << "\n" << app_doc->body;
  }
  // /api/tables/NAME: the table's values in the newest checkpoint, the same as the `table`
  // command prints. Each word counted once, once a checkpoint covers them (explicit condition,
  // bounded).
  httplib::Result fox = client.Get("/api/tables/word-counts?key=fox");
  for (int attempt = 0; attempt < 150; ++attempt) {
    if (attempt > 0) fox = client.Get("/api/tables/word-counts?key=fox");
    if (fox && fox->body.find("\"entries\":[{") != std::string::npos) break;
    pause_between_polls();
  }
  ASSERT_TRUE(fox);
  EXPECT_EQ(fox->status, 200);
  EXPECT_NE(fox->body.find("\"entries\":[{\"key\":\"fox\",\"value\":1}],\"truncated\":false}"),
            std::string::npos)
      << fox->body;
  EXPECT_NE(fox->body.find("{\"agent\":\"count\",\"id\":"), std::string::npos) << fox->body;
  auto shown =
      run_command(app + " table word-counts --key fox --checkpoint-dir " + (dir / "chk").string(),
                  (dir / "table.err").string());
  EXPECT_EQ(shown.code, 0) << shown.err;
  EXPECT_EQ(shown.out, "{\"key\": \"fox\", \"value\": 1}\n");
  httplib::Result limited = client.Get("/api/tables/word-counts?limit=2");
  ASSERT_TRUE(limited);
  EXPECT_NE(limited->body.find("\"truncated\":true}"), std::string::npos) << limited->body;
  httplib::Result missing = client.Get("/api/tables/no-such-table");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(missing->body, "{\"error\":\"the app declares no table 'no-such-table'\"}");
  httplib::Result bad_limit = client.Get("/api/tables/word-counts?limit=ten");
  ASSERT_TRUE(bad_limit);
  EXPECT_EQ(bad_limit->status, 400);
  // The dashboard shows the agents and the table (headless Chromium).
  auto dom = run_command(
      "timeout 120 /usr/bin/chromium --headless --no-sandbox --disable-gpu "
      "--no-first-run --user-data-dir=" +
          (dir / "chromium-profile").string() +
          " --virtual-time-budget=4000 --dump-dom http://127.0.0.1:" + std::to_string(port) + "/",
      (dir / "chromium.log").string());
  for (const char* part :
       {"data-agent=\"split\"", "data-agent=\"count\"", "data-table=\"word-counts\"",
        "<th>keys per subtask</th>", "href=\"/api/tables/word-counts?limit=100\""}) {
    EXPECT_NE(dom.out.find(part), std::string::npos) << part << "\n" << dom.out;
  }
  worker.reset();
  if (!::testing::Test::HasFailure()) fs::remove_all(dir);
}

}  // namespace
