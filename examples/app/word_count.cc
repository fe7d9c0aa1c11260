// `word_count`: Faust's word count as an App. Lines of text are split into words, which are sent
// keyed by the word to `words`; a second agent counts them in a table and sends a milestone to
// `milestones` at every 1000th occurrence of a word. A timer reports the words seen per 10 s.
//   word_count send lines "the quick brown fox" --state-dir st
//   word_count worker --state-dir st --checkpoint-dir chk --until-done
//   word_count table word-counts --checkpoint-dir chk --key fox
#include <atomic>
#include <iostream>
#include <string>

#include "sabot/app/app.h"

using namespace std::chrono_literals;
using sabot::app::AgentContext;

int main(int argc, char** argv) {
  sabot::app::App app("word-count");
  auto lines = app.topic<std::string>("lines", {.partitions = 2});
  auto words = app.topic<std::string>("words", {.partitions = 4});
  app.topic<std::string>("milestones");
  auto counts = app.table<std::string, int64_t>("word-counts");
  static std::atomic<int64_t> seen{0};

  app.agent(lines,
            [words](std::string_view line, AgentContext& ctx) {
              size_t start = 0;
              while (start < line.size()) {
                size_t end = line.find_first_of(" \t", start);
                if (end == std::string_view::npos) end = line.size();
                if (end > start) {
                  std::string word(line.substr(start, end - start));
                  ctx.send(words, word, word);
                }
                start = end + 1;
              }
            },
            {.name = "split", .sinks = {"words"}});
  app.agent(words,
            [counts](std::string_view word, AgentContext& ctx) {
              std::string w(word);
              counts[w] += 1;
              seen.fetch_add(1, std::memory_order_relaxed);
              if (counts[w].get() % 1000 == 0) {
                ctx.send("milestones", word, w + " " + std::to_string(counts[w].get()));
              }
            },
            {.name = "count", .concurrency = 2, .sinks = {"milestones"}});
  app.timer(10s, [] { std::cerr << "word_count: " << seen.exchange(0) << " words in 10 s\n"; });
  return app.main(argc, argv);
}
