// "Why is my watermark stuck?": follows an operator subtask's slowest live input upstream to the
// source partition that holds it back, and reports stalls once.
#include <algorithm>

#include "sabot/base/logging.h"
#include "sabot/observe/metrics_server.h"

namespace sabot::observe {

using runtime::JobMetrics;
using runtime::OperatorEntry;

namespace {

std::string time_text(int64_t ms) {
  if (ms == INT64_MIN) return "none";
  if (ms == INT64_MAX) return "end of input";
  return std::to_string(ms);
}

struct Graph {
  const std::vector<OperatorEntry>& entries;

  const OperatorEntry* at(int i) const {
    if (i < 0 || i >= static_cast<int>(entries.size()) ||
        entries[static_cast<size_t>(i)].name.empty()) {
      return nullptr;
    }
    return &entries[static_cast<size_t>(i)];
  }
  int head_of(int i) const {
    const OperatorEntry* e = at(i);
    return e && e->shape.chain_head >= 0 ? e->shape.chain_head : i;
  }

  // The slowest active split of source `op`'s subtask (all subtasks when `subtask` < 0) into h.
  bool slowest_split(int op, int subtask, int64_t now_ms, WatermarkHold* h) const {
    const OperatorEntry* e = at(op);
    if (e == nullptr) return false;
    const runtime::SplitGauges* slow = nullptr;
    int64_t fastest = INT64_MIN;
    for (const auto& sp : e->splits) {
      const int64_t wm = sp->watermark_ms.load(std::memory_order_relaxed);
      if (!sp->idle.load(std::memory_order_relaxed)) fastest = std::max(fastest, wm);
      if (subtask >= 0 && sp->subtask != subtask) continue;
      if (sp->idle.load(std::memory_order_relaxed)) continue;
      if (slow == nullptr || wm < slow->watermark_ms.load(std::memory_order_relaxed)) {
        slow = sp.get();
      }
    }
    if (slow == nullptr) return false;
    h->source = e->name;
    h->source_subtask = slow->subtask;
    h->partition = slow->split;
    h->partition_watermark_ms = slow->watermark_ms.load(std::memory_order_relaxed);
    h->partition_idle = slow->idle.load(std::memory_order_relaxed);
    h->behind_ms = h->partition_watermark_ms == INT64_MIN || fastest == INT64_MIN
                       ? 0
                       : fastest - h->partition_watermark_ms;
    const int64_t last = slow->last_data_ms.load(std::memory_order_relaxed);
    h->since_data_ms = last == INT64_MIN ? -1 : now_ms - last;
    return true;
  }

  // Follows the slowest live input of chain head `head`'s subtask upstream to a source split.
  bool trace(int head, int subtask, int64_t now_ms, WatermarkHold* h, int depth) const {
    const OperatorEntry* e = at(head);
    if (e == nullptr || depth > 64) return false;
    if (e->shape.source) return slowest_split(head, subtask, now_ms, h);
    const runtime::InputGauges* slow = nullptr;
    for (const auto& in : e->inputs) {
      if (in->subtask != subtask || in->ended.load(std::memory_order_relaxed) ||
          in->idle.load(std::memory_order_relaxed)) {
        continue;
      }
      if (slow == nullptr || in->watermark_ms.load(std::memory_order_relaxed) <
                                 slow->watermark_ms.load(std::memory_order_relaxed)) {
        slow = in.get();
      }
    }
    if (slow == nullptr) return false;
    if (depth == 0) {
      const OperatorEntry* from = at(slow->from_operator);
      h->input = "'" + (from ? from->name : std::string("?")) + "'[" +
                 std::to_string(slow->from_subtask) + "]";
      h->input_watermark_ms = slow->watermark_ms.load(std::memory_order_relaxed);
    }
    return trace(head_of(slow->from_operator), slow->from_subtask, now_ms, h, depth + 1);
  }
};

std::string explain(const WatermarkHold& h) {
  if (!h.held) return "not held back (no live inputs: all ended or idle)";
  std::string s = "held back";
  if (!h.input.empty()) {
    s +=
        " by input from " + h.input + " (watermark " + time_text(h.input_watermark_ms) + "), root:";
  } else {
    s += " by";
  }
  s += " partition " + std::to_string(h.partition) + " of source '" + h.source + "' (subtask " +
       std::to_string(h.source_subtask) + ", watermark " + time_text(h.partition_watermark_ms) +
       ", " + std::to_string(h.behind_ms) + " ms behind the source's fastest partition, ";
  s += h.since_data_ms < 0 ? std::string("no data yet")
                           : "last data " + std::to_string(h.since_data_ms) + " ms ago";
  s += h.partition_idle ? ", idle)" : ", not idle)";
  return s;
}

}  // namespace

std::vector<WatermarkHold> diagnose_watermarks(const JobMetrics& job, int64_t now_ms) {
  std::vector<WatermarkHold> out;
  job.read([&](const std::vector<OperatorEntry>& entries) {
    Graph g{entries};
    for (size_t i = 0; i < entries.size(); ++i) {
      const OperatorEntry& e = entries[i];
      if (e.name.empty()) continue;
      // Operators without event time (no split and no input ever had a watermark) are left out.
      bool has_time = !e.splits.empty();
      for (const auto& c : e.subtasks) {
        if (c->input_watermark_ms.load(std::memory_order_relaxed) != INT64_MIN) has_time = true;
      }
      if (!has_time) continue;
      for (size_t s = 0; s < e.subtasks.size(); ++s) {
        WatermarkHold h;
        h.operator_name = e.name;
        h.subtask = static_cast<int>(s);
        h.watermark_ms = e.subtasks[s]->input_watermark_ms.load(std::memory_order_relaxed);
        h.held = g.trace(g.head_of(static_cast<int>(i)), static_cast<int>(s), now_ms, &h, 0);
        h.explanation = explain(h);
        out.push_back(std::move(h));
      }
    }
  });
  return out;
}

std::vector<std::string> WatermarkStallMonitor::check(const JobMetrics& job, int64_t now_ms) {
  std::vector<std::string> lines;
  if (job.phase() != runtime::JobPhase::kRunning) return lines;
  for (const WatermarkHold& h : diagnose_watermarks(job, now_ms)) {
    Seen& seen = seen_[{&job, h.operator_name + "[" + std::to_string(h.subtask) + "]"}];
    if (h.watermark_ms != seen.watermark_ms) {
      seen = Seen{h.watermark_ms, now_ms, false};
      continue;
    }
    if (seen.reported || h.watermark_ms == INT64_MIN || h.watermark_ms == INT64_MAX || !h.held) {
      continue;
    }
    if (now_ms - seen.since_ms < stall_.count()) continue;
    seen.reported = true;
    std::string line = "job '" + job.job_name() + "': watermark of '" + h.operator_name + "'[" +
                       std::to_string(h.subtask) + "] stuck at " + time_text(h.watermark_ms) +
                       " for " + std::to_string(now_ms - seen.since_ms) + " ms: " + h.explanation;
    SABOT_LOG(kWarn, "watermark") << line;
    lines.push_back(std::move(line));
  }
  return lines;
}

}  // namespace sabot::observe
