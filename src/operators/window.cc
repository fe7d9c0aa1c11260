#include "sabot/operators/window.h"

#include <algorithm>
#include <deque>
#include <map>
#include <numeric>
#include <set>
#include <unordered_map>

#include "sabot/base/arith.h"
#include "sabot/base/bytes.h"
#include "sabot/base/check.h"
#include "sabot/base/time_unit.h"
#include "sabot/columnar/builder.h"
#include "sabot/columnar/ipc.h"
#include "sabot/compute/grouper.h"
#include "sabot/compute/hash.h"
#include "sabot/compute/selection.h"
#include "sabot/operators/keyed_process.h"
#include "sabot/runtime/metrics.h"
#include "sabot/state/keyed_state_backend.h"
#include "sabot/state/snapshot.h"
#include "window_state.h"

namespace sabot::operators {

using columnar::Array;
using columnar::DataType;
using columnar::Field;
using columnar::RecordBatch;
using columnar::Schema;
using columnar::SchemaPtr;
using columnar::TypeId;
using compute::GroupedAccumulator;
using internal::kNone;
using runtime::Operator;
using runtime::OperatorContext;
using runtime::OperatorFactory;
using runtime::Output;
using Kind = WindowSpec::Kind;

WindowSpec WindowSpec::tumbling(std::chrono::milliseconds size) {
  WindowSpec s;
  s.kind = Kind::kTumbling;
  s.size = size;
  s.slide = size;
  return s;
}
WindowSpec WindowSpec::sliding(std::chrono::milliseconds size, std::chrono::milliseconds slide) {
  WindowSpec s;
  s.kind = Kind::kSliding;
  s.size = size;
  s.slide = slide;
  return s;
}
WindowSpec WindowSpec::session(std::chrono::milliseconds gap) {
  WindowSpec s;
  s.kind = Kind::kSession;
  s.gap = gap;
  return s;
}
WindowSpec WindowSpec::count_window(int64_t n) { return count_window(n, n); }
WindowSpec WindowSpec::count_window(int64_t n, int64_t slide) {
  WindowSpec s;
  s.kind = Kind::kCount;
  s.count = n;
  s.count_slide = slide;
  return s;
}
WindowSpec WindowSpec::global_window() { return WindowSpec(); }

namespace {

using Plan = internal::WindowPlan;
using internal::is_time_kind;

// The snapshot envelope's state type and version (state/snapshot.h); the payload is described at
// WindowOperator::live_state_in_order.
constexpr std::string_view kStateType = "window";
constexpr uint16_t kStateVersion = 1;
// Keys are forgotten (maybe_compact_keys) only once this many are dead, so that a window over a
// few keys never rebuilds its grouper.
constexpr uint32_t kMinDeadKeys = 64;

// Output rows waiting to be materialized: each is a (key, window) with the accumulator groups whose
// partials it merges.
struct FireSet {
  std::vector<uint32_t> key;
  std::vector<int64_t> start;
  std::vector<int64_t> end;
  std::vector<uint32_t> offsets{0};
  std::vector<uint32_t> groups;
  size_t size() const { return key.size(); }
  void add(uint32_t k, int64_t s, int64_t e) {
    key.push_back(k);
    start.push_back(s);
    end.push_back(e);
    offsets.push_back(static_cast<uint32_t>(groups.size()));
  }
  void add_group(uint32_t g) {
    groups.push_back(g);
    ++offsets.back();
  }
};

struct CountPane {
  int64_t index;  // elements [index * pane, (index + 1) * pane)
  uint32_t slot;
};

struct Session {
  int64_t start;
  int64_t end;  // last record + gap
  uint32_t slot;
  bool fired;
  bool dirty;
};

class WindowOperator final : public Operator {
 public:
  explicit WindowOperator(std::shared_ptr<const Plan> plan)
      : plan_(std::move(plan)), opts_(plan_->opts), spec_(opts_.spec) {
    if (spec_.kind == Kind::kTumbling || spec_.kind == Kind::kSliding) {
      size_ = spec_.size.count();
      slide_ = spec_.slide.count();
      pane_ = std::gcd(size_, slide_);
    }
    gap_ = spec_.gap.count();
    lateness_ = opts_.allowed_lateness.count();
    if (spec_.kind == Kind::kCount) count_pane_ = std::gcd(spec_.count, spec_.count_slide);
  }

  Status init() {
    if (!plan_->key_indices.empty()) {
      std::vector<DataType> types;
      std::vector<Field> fields;
      for (int i : plan_->key_indices) {
        types.push_back(plan_->input->field(i).type);
        fields.push_back(plan_->input->field(i));
      }
      SABOT_ASSIGN_OR_RETURN(grouper_, compute::Grouper::make(std::move(types)));
      SABOT_ASSIGN_OR_RETURN(key_schema_, Schema::make(std::move(fields)));
    }
    SABOT_ASSIGN_OR_RETURN(accs_, make_accs());
    return Status::ok();
  }

  // sabot_operator_state_keys: the key dictionary (keys of fired and purged windows leave it when
  // they outnumber the live ones, see maybe_compact_keys); -1 for windows over the whole stream.
  int64_t state_keys() const override { return grouper_ ? num_keys_ : -1; }

  Status open(const OperatorContext& ctx) override {
    ctx_ = ctx;
    if (opts_.early_fire_every && next_early_ == INT64_MIN) {
      next_early_ = ctx_.clock->now().millis() + opts_.early_fire_every->count();
    }
    return Status::ok();
  }

  Status process_batch(const RecordBatch& batch, int, Output& out) override {
    SABOT_RETURN_IF_ERROR(consume(batch, out));
    return maybe_early_fire(out);
  }

  Status process_watermark(Timestamp time, Output& out) override {
    SABOT_RETURN_IF_ERROR(advance_watermark(time.millis(), out));
    SABOT_RETURN_IF_ERROR(maybe_early_fire(out));
    return out.emit_watermark(time);
  }

  Status finish(Output& out) override {
    if (wm_ != INT64_MAX) return advance_watermark(INT64_MAX, out);
    return Status::ok();
  }

  Status snapshot_state(CheckpointId, std::string* out) override;
  Status restore_state(std::string_view data) override;

 private:
  void live_state_in_order(std::vector<uint32_t>* keys, std::vector<uint32_t>* slots) const;
  Status write_key_group(std::span<const uint32_t> keys, std::span<const uint32_t> slots,
                         std::vector<uint32_t>& local, ByteWriter& w) const;
  Status restore_key_group(ByteReader& r);

  Result<std::vector<std::unique_ptr<GroupedAccumulator>>> make_accs() const {
    return internal::make_window_accumulators(*plan_);
  }

  // ---- slots: a logical window-state id with one accumulator group ----

  uint32_t new_slot(uint32_t key, int64_t tag) {
    uint32_t s;
    if (!free_slots_.empty()) {
      s = free_slots_.back();
      free_slots_.pop_back();
    } else {
      s = static_cast<uint32_t>(slot_group_.size());
      slot_group_.push_back(0);
      slot_key_.push_back(0);
      slot_tag_.push_back(0);
      slot_live_.push_back(0);
    }
    slot_group_[s] = num_groups_++;
    slot_key_[s] = key;
    slot_tag_[s] = tag;
    slot_live_[s] = 1;
    ++live_slots_;
    if (key_slots_.size() <= key) key_slots_.resize(key + 1, 0);
    if (key_slots_[key]++ == 0) ++live_keys_;
    return s;
  }
  void free_slot(uint32_t s) {
    slot_live_[s] = 0;
    free_slots_.push_back(s);
    --live_slots_;
    if (--key_slots_[slot_key_[s]] == 0) --live_keys_;
  }

  // Forgets the keys that no longer have a live slot: a new grouper holding only the live keys,
  // and every key id renumbered. Time windows free a key's panes and sessions once they have fired
  // and their allowed lateness has passed, but the grouper would keep the key itself forever, so
  // memory grew with every key ever seen. Amortized: runs when dead keys outnumber live ones.
  Status maybe_compact_keys() {
    if (!grouper_ || !is_time_kind(spec_.kind)) return Status::ok();
    const uint32_t dead = num_keys_ - live_keys_;
    if (dead < kMinDeadKeys || dead <= live_keys_) return Status::ok();
    std::vector<uint32_t> live;
    live.reserve(live_keys_);
    for (uint32_t k = 0; k < num_keys_ && k < key_slots_.size(); ++k) {
      if (key_slots_[k] > 0) live.push_back(k);
    }
    SABOT_ASSIGN_OR_RETURN(std::vector<Array> keys, grouper_->keys_of(live));
    SABOT_ASSIGN_OR_RETURN(auto fresh, compute::Grouper::make(grouper_->key_types()));
    std::vector<uint32_t> ids;
    SABOT_RETURN_IF_ERROR(fresh->consume(keys, &ids));
    SABOT_CHECK_EQ(fresh->num_groups(), static_cast<uint32_t>(live.size()));
    std::vector<uint32_t> renumber(num_keys_, kNone);
    for (size_t i = 0; i < live.size(); ++i) renumber[live[i]] = ids[i];
    for (uint32_t sl = 0; sl < slot_key_.size(); ++sl) {
      if (slot_live_[sl]) slot_key_[sl] = renumber[slot_key_[sl]];
    }
    std::vector<uint32_t> key_slots(live.size(), 0);
    for (size_t i = 0; i < live.size(); ++i) key_slots[ids[i]] = key_slots_[live[i]];
    key_slots_ = std::move(key_slots);
    if (!sessions_.empty()) {
      std::vector<std::vector<Session>> sessions(live.size());
      for (size_t i = 0; i < live.size(); ++i) {
        if (live[i] < sessions_.size()) sessions[ids[i]] = std::move(sessions_[live[i]]);
      }
      sessions_ = std::move(sessions);
    }
    grouper_ = std::move(fresh);
    num_keys_ = grouper_->num_groups();
    rebuild_pane_table();
    return Status::ok();
  }

  // The (key, pane) -> slot table from panes_ and slot_key_ (after a restore or renumbering).
  void rebuild_pane_table() {
    table_.clear();
    for (const auto& [pane, slots] : panes_) {
      for (uint32_t sl : slots) table_.find_or_insert(slot_key_[sl], pane, [sl] { return sl; });
    }
  }

  // Renumbers the groups of the live slots densely; `into` maps slots merged away (sessions) to
  // the slot whose group takes their partials. Amortized: runs when dead groups outnumber live.
  Status compact(const std::vector<std::pair<uint32_t, uint32_t>>& into) {
    SABOT_ASSIGN_OR_RETURN(auto fresh, make_accs());
    uint32_t n = 0;
    std::vector<uint32_t> map(num_groups_, kNone);
    for (uint32_t s = 0; s < slot_group_.size(); ++s) {
      if (slot_live_[s]) map[slot_group_[s]] = n++;
    }
    for (auto [from, to] : into) map[slot_group_[from]] = map[slot_group_[to]];
    for (uint32_t& m : map) {
      if (m == kNone) m = n;  // dead: merged into an extra group that is dropped below
    }
    for (size_t a = 0; a < accs_.size(); ++a) {
      accs_[a]->resize(num_groups_);
      fresh[a]->resize(n + 1);
      SABOT_RETURN_IF_ERROR(fresh[a]->merge(*accs_[a], map));
      fresh[a]->resize(n);
    }
    accs_ = std::move(fresh);
    for (uint32_t s = 0; s < slot_group_.size(); ++s) {
      if (slot_live_[s]) slot_group_[s] = map[slot_group_[s]];
    }
    num_groups_ = n;
    return Status::ok();
  }

  Status maybe_compact() {
    uint32_t dead = num_groups_ - live_slots_;
    if (dead > 4096 && dead > live_slots_) return compact({});
    return Status::ok();
  }

  // ---- input ----

  void times_of(const RecordBatch& batch) {
    times_ = internal::event_times_ms(*plan_, batch, &time_scratch_);
  }

  Status consume(const RecordBatch& input, Output& out) {
    if (input.num_rows() == 0) return Status::ok();
    RecordBatch batch = input;
    if (plan_->time_index >= 0) {
      times_of(batch);
      SABOT_ASSIGN_OR_RETURN(batch, internal::remove_late_rows(*plan_, batch, times_,
                                                               sat_sub(wm_, lateness_), ctx_, out));
      if (batch.num_rows() == 0) return Status::ok();
      if (batch.num_rows() != input.num_rows()) times_of(batch);
    }
    const int64_t n = batch.num_rows();
    // Dense key ids for the whole batch.
    if (grouper_) {
      key_arrays_.clear();
      for (int i : plan_->key_indices) key_arrays_.push_back(batch.column(i));
      SABOT_RETURN_IF_ERROR(grouper_->consume(key_arrays_, &key_ids_));
      num_keys_ = grouper_->num_groups();
    } else {
      key_ids_.assign(static_cast<size_t>(n), 0);
      num_keys_ = 1;
    }
    row_groups_.resize(static_cast<size_t>(n));
    FireSet fires;
    switch (spec_.kind) {
      case Kind::kTumbling:
      case Kind::kSliding:
        assign_panes(n);
        break;
      case Kind::kSession:
        SABOT_RETURN_IF_ERROR(assign_sessions(n));
        break;
      case Kind::kCount:
        assign_counts(n, &fires);
        break;
      case Kind::kGlobal:
        assign_global(n);
        break;
    }
    for (auto& a : accs_) a->resize(num_groups_);
    SABOT_RETURN_IF_ERROR(feed_.update(*plan_, accs_, batch, row_groups_));
    if (spec_.kind == Kind::kTumbling || spec_.kind == Kind::kSliding) {
      refire_panes(&fires);
    } else if (spec_.kind == Kind::kSession) {
      refire_sessions(&fires);
    }
    SABOT_RETURN_IF_ERROR(emit(fires, true, out));
    return maybe_compact();
  }

  // Tumbling and sliding: each row goes into exactly one pane of gcd(size, slide).
  void assign_panes(int64_t n) {
    const int64_t* t = times_;
    const uint32_t* keys = key_ids_.data();
    uint32_t* groups = row_groups_.data();
    for (int64_t i = 0; i < n; ++i) {
      const int64_t pane = floor_div(t[i], pane_) * pane_;
      const uint32_t k = keys[i];
      uint32_t slot = table_.find_or_insert(k, pane, [&] { return add_pane_slot(k, pane); });
      groups[i] = slot_group_[slot];
      if (t[i] <= wm_) note_refire(k, t[i]);
    }
  }

  uint32_t add_pane_slot(uint32_t key, int64_t pane) {
    uint32_t s = new_slot(key, pane);
    auto [it, inserted] = panes_.try_emplace(pane);
    it->second.push_back(s);
    if (inserted) {
      // The ends of the windows containing this pane that have not fired yet.
      for (int64_t start = floor_div(pane, slide_) * slide_; start > pane - size_;
           start -= slide_) {
        int64_t end = start + size_;
        if (end - 1 > wm_) pending_ends_.insert(end);
      }
    }
    return s;
  }

  // A row behind the watermark (but within the allowed lateness) updates windows that already
  // fired: they fire again for this key.
  void note_refire(uint32_t key, int64_t t) {
    for (int64_t start = floor_div(t, slide_) * slide_; start > t - size_; start -= slide_) {
      int64_t end = start + size_;
      if (end - 1 <= wm_) refire_.emplace_back(end, key);
    }
  }

  void refire_panes(FireSet* fires) {
    if (refire_.empty()) return;
    std::sort(refire_.begin(), refire_.end());
    refire_.erase(std::unique(refire_.begin(), refire_.end()), refire_.end());
    for (auto [end, key] : refire_) {
      fires->add(key, end - size_, end);
      for (int64_t p = end - size_; p < end; p += pane_) {
        uint32_t s = table_.find(key, p);
        if (s != kNone) fires->add_group(slot_group_[s]);
      }
    }
    refire_.clear();
  }

  // Adds the rows of window [end - size, end) for every key with state in it.
  void add_window(FireSet* fires, int64_t end) {
    key_row_.resize(num_keys_, kNone);
    pairs_.clear();
    uint32_t rows = 0;
    const size_t first = fires->size();
    for (auto it = panes_.lower_bound(end - size_); it != panes_.end() && it->first < end; ++it) {
      for (uint32_t s : it->second) {
        uint32_t k = slot_key_[s];
        if (key_row_[k] == kNone) {
          key_row_[k] = rows++;
          fires->add(k, end - size_, end);
        }
        pairs_.emplace_back(key_row_[k], slot_group_[s]);
      }
    }
    std::stable_sort(pairs_.begin(), pairs_.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    // Rebuild this window's group lists in row order.
    fires->groups.resize(fires->offsets[first]);
    for (uint32_t r = 0, p = 0; r < rows; ++r) {
      while (p < pairs_.size() && pairs_[p].first == r) fires->groups.push_back(pairs_[p++].second);
      fires->offsets[first + r + 1] = static_cast<uint32_t>(fires->groups.size());
    }
    for (uint32_t r = 0; r < rows; ++r) key_row_[fires->key[first + r]] = kNone;
  }

  // Sessions: per row, find the sessions of its key within gap, extend or merge them.
  Status assign_sessions(int64_t n) {
    if (sessions_.size() < num_keys_) sessions_.resize(num_keys_);
    row_slots_.resize(static_cast<size_t>(n));
    merges_.clear();
    for (int64_t i = 0; i < n; ++i) {
      const int64_t t = times_[i];
      const uint32_t k = key_ids_[i];
      auto& list = sessions_[k];
      // First session that may overlap [t, t + gap): ordered by start, disjoint.
      size_t j = 0;
      while (j < list.size() && list[j].end <= t) ++j;
      if (j == list.size() || list[j].start >= t + gap_) {
        Session s{t, t + gap_, new_slot(k, 0), false, true};
        list.insert(list.begin() + static_cast<ptrdiff_t>(j), s);
        row_slots_[i] = s.slot;
      } else {
        Session& s = list[j];
        s.start = std::min(s.start, t);
        s.end = std::max(s.end, t + gap_);
        s.dirty = true;
        // Absorb following sessions that now overlap.
        size_t m = j + 1;
        while (m < list.size() && list[m].start < s.end) {
          s.end = std::max(s.end, list[m].end);
          merges_.emplace_back(list[m].slot, s.slot);
          ++m;
        }
        list.erase(list.begin() + static_cast<ptrdiff_t>(j + 1),
                   list.begin() + static_cast<ptrdiff_t>(m));
        row_slots_[i] = s.slot;
      }
      touched_.push_back(k);
    }
    if (!merges_.empty()) {
      // Resolve chains (a merged into b, b later into c) to the final surviving slot.
      std::unordered_map<uint32_t, uint32_t> into;
      for (auto [from, to] : merges_) into[from] = to;
      auto root = [&](uint32_t s) {
        auto it = into.find(s);
        while (it != into.end()) {
          s = it->second;
          it = into.find(s);
        }
        return s;
      };
      std::vector<std::pair<uint32_t, uint32_t>> resolved;
      for (auto [from, to] : merges_) resolved.emplace_back(from, root(to));
      for (auto& s : row_slots_) s = root(s);
      for (size_t a = 0; a < accs_.size(); ++a) accs_[a]->resize(num_groups_);
      SABOT_RETURN_IF_ERROR(compact(resolved));
      for (auto [from, to] : resolved) free_slot(from);
    }
    for (int64_t i = 0; i < n; ++i) row_groups_[i] = slot_group_[row_slots_[i]];
    return Status::ok();
  }

  void refire_sessions(FireSet* fires) {
    std::sort(touched_.begin(), touched_.end());
    touched_.erase(std::unique(touched_.begin(), touched_.end()), touched_.end());
    for (uint32_t k : touched_) {
      for (Session& s : sessions_[k]) {
        if (!s.dirty) continue;
        s.dirty = false;
        if (s.end - 1 <= wm_) {
          fires->add(k, s.start, s.end);
          fires->add_group(slot_group_[s.slot]);
          s.fired = true;
        } else {
          s.fired = false;
        }
      }
    }
    touched_.clear();
  }

  // Count windows: panes of gcd(n, slide) elements per key; a window fires on its last element.
  void assign_counts(int64_t n, FireSet* fires) {
    if (counts_.size() < num_keys_) {
      counts_.resize(num_keys_, 0);
      count_panes_.resize(num_keys_);
    }
    const int64_t size = spec_.count, slide = spec_.count_slide, g = count_pane_;
    for (int64_t i = 0; i < n; ++i) {
      const uint32_t k = key_ids_[i];
      const int64_t c = counts_[k]++;
      auto& panes = count_panes_[k];
      const int64_t p = c / g;
      if (panes.empty() || panes.back().index != p) panes.push_back(CountPane{p, new_slot(k, p)});
      row_groups_[i] = slot_group_[panes.back().slot];
      if ((c + 1) % slide == 0) {
        const int64_t end = c + 1;
        fires->add(k, INT64_MIN, INT64_MIN);
        for (auto& [pi, s] : panes) {
          if (pi * g >= end - size) fires->add_group(slot_group_[s]);
        }
        // Drop panes that the next window (ending at end + slide) no longer covers.
        while (!panes.empty() && (panes.front().index + 1) * g <= end + slide - size) {
          free_slot(panes.front().slot);
          panes.pop_front();
        }
      }
    }
  }

  void assign_global(int64_t n) {
    if (global_slot_.size() < num_keys_) global_slot_.resize(num_keys_, kNone);
    for (int64_t i = 0; i < n; ++i) {
      uint32_t k = key_ids_[i];
      if (global_slot_[k] == kNone) global_slot_[k] = new_slot(k, 0);
      row_groups_[i] = slot_group_[global_slot_[k]];
    }
  }

  // ---- watermarks and firing ----

  Status advance_watermark(int64_t wm, Output& out) {
    if (wm <= wm_) return Status::ok();
    wm_ = wm;
    for (auto& a : accs_) a->resize(num_groups_);
    FireSet fires;
    const int64_t thr = sat_sub(wm_, lateness_);
    switch (spec_.kind) {
      case Kind::kTumbling:
      case Kind::kSliding: {
        while (!pending_ends_.empty() && *pending_ends_.begin() - 1 <= wm_) {
          add_window(&fires, *pending_ends_.begin());
          pending_ends_.erase(pending_ends_.begin());
        }
        SABOT_RETURN_IF_ERROR(emit(fires, true, out));
        // Panes whose last window is past the allowed lateness go.
        while (!panes_.empty()) {
          int64_t pane = panes_.begin()->first;
          int64_t last_end = floor_div(pane, slide_) * slide_ + size_;
          if (last_end - 1 > thr) break;
          for (uint32_t s : panes_.begin()->second) {
            table_.erase(slot_key_[s], pane);
            free_slot(s);
          }
          panes_.erase(panes_.begin());
        }
        break;
      }
      case Kind::kSession: {
        for (uint32_t k = 0; k < sessions_.size(); ++k) {
          for (Session& s : sessions_[k]) {
            if (!s.fired && s.end - 1 <= wm_) {
              fires.add(k, s.start, s.end);
              fires.add_group(slot_group_[s.slot]);
              s.fired = true;
            }
          }
        }
        SABOT_RETURN_IF_ERROR(emit(fires, true, out));
        for (auto& list : sessions_) {
          size_t w = 0;
          for (size_t r = 0; r < list.size(); ++r) {
            if (list[r].end - 1 <= thr) {
              free_slot(list[r].slot);
            } else {
              list[w++] = list[r];
            }
          }
          list.resize(w);
        }
        break;
      }
      case Kind::kCount:
        break;
      case Kind::kGlobal:
        if (wm_ == INT64_MAX) {
          for (uint32_t k = 0; k < global_slot_.size(); ++k) {
            if (global_slot_[k] == kNone) continue;
            fires.add(k, INT64_MIN, INT64_MIN);
            fires.add_group(slot_group_[global_slot_[k]]);
          }
          SABOT_RETURN_IF_ERROR(emit(fires, true, out));
          for (uint32_t& s : global_slot_) {
            if (s != kNone) free_slot(s);
            s = kNone;
          }
        }
        break;
    }
    SABOT_RETURN_IF_ERROR(maybe_compact_keys());
    return maybe_compact();
  }

  Status maybe_early_fire(Output& out) {
    if (!opts_.early_fire_every) return Status::ok();
    const int64_t now = ctx_.clock->now().millis();
    if (now < next_early_) return Status::ok();
    next_early_ = now + opts_.early_fire_every->count();
    for (auto& a : accs_) a->resize(num_groups_);
    FireSet fires;
    switch (spec_.kind) {
      case Kind::kTumbling:
      case Kind::kSliding:
        for (int64_t end : pending_ends_) add_window(&fires, end);
        break;
      case Kind::kSession:
        for (uint32_t k = 0; k < sessions_.size(); ++k) {
          for (const Session& s : sessions_[k]) {
            if (s.fired) continue;
            fires.add(k, s.start, s.end);
            fires.add_group(slot_group_[s.slot]);
          }
        }
        break;
      case Kind::kCount:
        for (uint32_t k = 0; k < count_panes_.size(); ++k) {
          if (count_panes_[k].empty()) continue;
          fires.add(k, INT64_MIN, INT64_MIN);
          const int64_t c = counts_[k], g = count_pane_;
          // The window that will fire next: elements up to the next multiple of slide.
          const int64_t next_end = (c / spec_.count_slide + 1) * spec_.count_slide;
          for (auto& [pi, s] : count_panes_[k]) {
            if (pi * g >= next_end - spec_.count) fires.add_group(slot_group_[s]);
          }
        }
        break;
      case Kind::kGlobal:
        for (uint32_t k = 0; k < global_slot_.size(); ++k) {
          if (global_slot_[k] == kNone) continue;
          fires.add(k, INT64_MIN, INT64_MIN);
          fires.add_group(slot_group_[global_slot_[k]]);
        }
        break;
    }
    return emit(fires, false, out);
  }

  // Merges each output row's groups into fresh accumulators (in rounds, so that no group feeds
  // two rows of one merge) and emits one batch.
  Status emit(const FireSet& fires, bool is_final, Output& out) {
    const uint32_t rows = static_cast<uint32_t>(fires.size());
    if (rows == 0) return Status::ok();
    SABOT_ASSIGN_OR_RETURN(auto result, make_accs());
    for (auto& r : result) r->resize(rows + 1);  // the last group collects the rest
    std::vector<uint32_t> pending(rows);
    std::iota(pending.begin(), pending.end(), 0u);
    std::vector<uint32_t> round_of(num_groups_, kNone);
    std::vector<uint32_t> map;
    std::vector<uint32_t> deferred;
    for (uint32_t round = 0; !pending.empty(); ++round) {
      map.assign(num_groups_, rows);
      deferred.clear();
      for (uint32_t r : pending) {
        bool clash = false;
        for (uint32_t i = fires.offsets[r]; i < fires.offsets[r + 1]; ++i) {
          clash |= round_of[fires.groups[i]] == round;
        }
        if (clash) {
          deferred.push_back(r);
          continue;
        }
        for (uint32_t i = fires.offsets[r]; i < fires.offsets[r + 1]; ++i) {
          round_of[fires.groups[i]] = round;
          map[fires.groups[i]] = r;
        }
      }
      for (size_t a = 0; a < accs_.size(); ++a) {
        SABOT_RETURN_IF_ERROR(result[a]->merge(*accs_[a], map));
      }
      pending.swap(deferred);
    }
    std::vector<Array> keys;
    if (grouper_) {
      // Only the fired keys: the grouper keeps every key ever seen, and materializing all of them
      // on each firing made emitting quadratic in the number of windows.
      SABOT_ASSIGN_OR_RETURN(keys, grouper_->keys_of(fires.key));
    }
    return internal::emit_window_rows(*plan_, std::move(keys), fires.start, fires.end, result,
                                      is_final, out);
  }

  std::shared_ptr<const Plan> plan_;
  const WindowOptions& opts_;
  const WindowSpec& spec_;
  OperatorContext ctx_;
  int64_t size_ = 0, slide_ = 0, pane_ = 1, gap_ = 0, lateness_ = 0, count_pane_ = 1;

  std::unique_ptr<compute::Grouper> grouper_;
  SchemaPtr key_schema_;   // the key columns, for the keys in snapshots
  bool restored_ = false;  // a snapshot's operator-wide section was restored (merge, see restore)
  std::vector<bool> restored_key_groups_;
  std::vector<std::unique_ptr<GroupedAccumulator>> accs_;
  uint32_t num_groups_ = 0;
  uint32_t live_slots_ = 0;
  uint32_t num_keys_ = 0;
  std::vector<uint32_t> key_slots_;  // per key id: live slots (the key is forgotten at zero)
  uint32_t live_keys_ = 0;
  int64_t wm_ = INT64_MIN;
  int64_t next_early_ = INT64_MIN;

  // Per slot.
  std::vector<uint32_t> slot_group_;
  std::vector<uint32_t> slot_key_;
  std::vector<int64_t> slot_tag_;  // pane start (time) or pane index (count)
  std::vector<uint8_t> slot_live_;
  std::vector<uint32_t> free_slots_;

  // Tumbling / sliding.
  internal::PaneTable table_;
  std::map<int64_t, std::vector<uint32_t>> panes_;  // pane start -> slots (creation order)
  std::set<int64_t> pending_ends_;                  // ends of windows that have not fired
  std::vector<std::pair<int64_t, uint32_t>> refire_;
  // Sessions, per key: ordered by start, disjoint.
  std::vector<std::vector<Session>> sessions_;
  std::vector<uint32_t> touched_;
  std::vector<std::pair<uint32_t, uint32_t>> merges_;
  std::vector<uint32_t> row_slots_;
  // Count windows, per key.
  std::vector<int64_t> counts_;
  std::vector<std::deque<CountPane>> count_panes_;
  // Global windows, per key.
  std::vector<uint32_t> global_slot_;

  // Scratch.
  const int64_t* times_ = nullptr;
  std::vector<int64_t> time_scratch_;
  std::vector<Array> key_arrays_;
  std::vector<uint32_t> key_ids_;
  std::vector<uint32_t> row_groups_;
  std::vector<uint32_t> key_row_;
  std::vector<std::pair<uint32_t, uint32_t>> pairs_;
  internal::AccumulatorFeed feed_;
};

// Snapshot layout (inside the envelope of state/snapshot.h, state type "window", version 1):
//
//   operator-wide section: i64 watermark | i64 next early-fire time (INT64_MIN: none)
//   one section per key group with state:
//     u64 number of keys | [keyed] bytes: IPC stream of the key columns, one row per key
//     | [count windows] i64 elements seen, per key
//     | u64 number of slots | u32 key (index into this section's keys), per slot
//     | i64 tag (pane start, count-pane index; 0 for sessions and global windows), per slot
//     | [sessions] i64 start, i64 end, u8 fired, per slot
//     | per accumulator: serialize_groups() of the slots' groups
//
// Slots are written in an order that restores the per-key structures as they were: panes by
// start (each pane's slots in creation order), a key's sessions by start, its count panes
// oldest first. Ends of pending windows are not stored: they are the ends > watermark of the
// windows over the live panes, recomputed after a restore. A non-keyed window (parallelism 1)
// keeps its one key in key group 0.
void WindowOperator::live_state_in_order(std::vector<uint32_t>* keys,
                                         std::vector<uint32_t>* slots) const {
  keys->clear();
  slots->clear();
  switch (spec_.kind) {
    case Kind::kTumbling:
    case Kind::kSliding: {
      std::vector<uint8_t> seen(num_keys_, 0);
      for (const auto& [pane, list] : panes_) {
        for (uint32_t s : list) {
          slots->push_back(s);
          if (!seen[slot_key_[s]]) {
            seen[slot_key_[s]] = 1;
            keys->push_back(slot_key_[s]);
          }
        }
      }
      break;
    }
    case Kind::kSession:
      for (uint32_t k = 0; k < sessions_.size(); ++k) {
        if (sessions_[k].empty()) continue;
        keys->push_back(k);
        for (const Session& x : sessions_[k]) slots->push_back(x.slot);
      }
      break;
    case Kind::kCount:
      for (uint32_t k = 0; k < counts_.size(); ++k) {
        if (counts_[k] == 0) continue;
        keys->push_back(k);
        for (const CountPane& p : count_panes_[k]) slots->push_back(p.slot);
      }
      break;
    case Kind::kGlobal:
      for (uint32_t k = 0; k < global_slot_.size(); ++k) {
        if (global_slot_[k] == kNone) continue;
        keys->push_back(k);
        slots->push_back(global_slot_[k]);
      }
      break;
  }
}

// One key group's section: `keys` and the slots of those keys; `local` maps a key id to its index
// among `keys` (filled here).
Status WindowOperator::write_key_group(std::span<const uint32_t> keys,
                                       std::span<const uint32_t> slots,
                                       std::vector<uint32_t>& local, ByteWriter& w) const {
  w.put<uint64_t>(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) local[keys[i]] = static_cast<uint32_t>(i);
  if (grouper_) {
    SABOT_ASSIGN_OR_RETURN(std::vector<Array> cols, grouper_->keys_of(keys));
    RecordBatch batch = RecordBatch::make_unchecked(key_schema_, std::move(cols),
                                                    static_cast<int64_t>(keys.size()));
    SABOT_ASSIGN_OR_RETURN(auto bytes, columnar::write_ipc_stream(key_schema_, {batch}));
    w.put_bytes(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  }
  if (spec_.kind == Kind::kCount) {
    for (uint32_t k : keys) w.put<int64_t>(counts_[k]);
  }
  w.put<uint64_t>(slots.size());
  std::vector<uint32_t> column(slots.size());
  for (size_t i = 0; i < slots.size(); ++i) column[i] = local[slot_key_[slots[i]]];
  w.put_raw(column.data(), column.size() * sizeof(uint32_t));
  std::vector<int64_t> tags(slots.size());
  for (size_t i = 0; i < slots.size(); ++i) tags[i] = slot_tag_[slots[i]];
  w.put_raw(tags.data(), tags.size() * sizeof(int64_t));
  if (spec_.kind == Kind::kSession) {
    // A key's slots follow its session list in order (live_state_in_order; bucketing is stable).
    std::vector<const Session*> of(slots.size());
    for (size_t i = 0, at = 0; i < slots.size(); ++i) {
      const uint32_t k = slot_key_[slots[i]];
      if (i == 0 || k != slot_key_[slots[i - 1]]) at = 0;
      of[i] = &sessions_[k][at++];
      SABOT_CHECK_EQ(of[i]->slot, slots[i]);
    }
    for (const Session* x : of) w.put<int64_t>(x->start);
    for (const Session* x : of) w.put<int64_t>(x->end);
    for (const Session* x : of) w.put<uint8_t>(x->fired ? 1 : 0);
  }
  for (size_t i = 0; i < slots.size(); ++i) column[i] = slot_group_[slots[i]];
  for (const auto& a : accs_) a->serialize_groups(column, w);
  return Status::ok();
}

Status WindowOperator::snapshot_state(CheckpointId, std::string* out) {
  for (auto& a : accs_) a->resize(num_groups_);
  const auto max_p = static_cast<uint32_t>(ctx_.max_parallelism);
  state::SnapshotWriter sw(out, {ctx_.uid, std::string(kStateType), kStateVersion, max_p});
  ByteWriter& wide = sw.begin_section(state::kOperatorWide);
  wide.put<int64_t>(wm_);
  wide.put<int64_t>(next_early_);

  std::vector<uint32_t> keys, slots;
  live_state_in_order(&keys, &slots);
  // The key group of every key id: from the grouper's hashes, exactly as the keyed exchange
  // routes rows.
  std::vector<uint32_t> kg_of_key(num_keys_, 0);
  if (grouper_) {
    std::vector<uint64_t> hashes;
    grouper_->group_hashes(&hashes);
    SABOT_CHECK_EQ(hashes.size(), static_cast<size_t>(num_keys_));
    compute::key_groups(hashes, max_p, kg_of_key);
  }
  // Keys and slots bucketed by key group (stable: the orders above are kept within a group).
  std::vector<uint32_t> key_start(max_p + 1, 0), slot_start(max_p + 1, 0);
  for (uint32_t k : keys) ++key_start[kg_of_key[k] + 1];
  for (uint32_t s : slots) ++slot_start[kg_of_key[slot_key_[s]] + 1];
  for (uint32_t g = 0; g < max_p; ++g) {
    key_start[g + 1] += key_start[g];
    slot_start[g + 1] += slot_start[g];
  }
  std::vector<uint32_t> keys_by_group(keys.size()), slots_by_group(slots.size());
  {
    std::vector<uint32_t> kat(key_start.begin(), key_start.end() - 1);
    std::vector<uint32_t> sat(slot_start.begin(), slot_start.end() - 1);
    for (uint32_t k : keys) keys_by_group[kat[kg_of_key[k]]++] = k;
    for (uint32_t s : slots) slots_by_group[sat[kg_of_key[slot_key_[s]]]++] = s;
  }
  std::vector<uint32_t> local(num_keys_, 0);
  for (uint32_t g = 0; g < max_p; ++g) {
    if (key_start[g] == key_start[g + 1]) continue;
    std::span<const uint32_t> gk(keys_by_group.data() + key_start[g],
                                 key_start[g + 1] - key_start[g]);
    std::span<const uint32_t> gs(slots_by_group.data() + slot_start[g],
                                 slot_start[g + 1] - slot_start[g]);
    SABOT_RETURN_IF_ERROR(
        write_key_group(gk, gs, local, sw.begin_section(static_cast<int32_t>(g))));
  }
  sw.finish();
  return Status::ok();
}

// Times and counts in a snapshot lie within +-2^62, so that the window arithmetic on them cannot
// overflow whatever bytes a damaged snapshot holds.
constexpr int64_t kTimeBound = int64_t{1} << 62;

// Restores one key group's keys, slots and accumulator values into this operator's state (next to
// whatever earlier sections and snapshots brought).
Status WindowOperator::restore_key_group(ByteReader& r) {
  uint64_t nkeys = 0;
  SABOT_RETURN_IF_ERROR(r.get_count(&nkeys, 0));
  std::vector<uint32_t> ids;
  if (grouper_) {
    std::string_view bytes;
    SABOT_RETURN_IF_ERROR(r.get_bytes(&bytes));
    auto read = columnar::read_ipc_stream(
        columnar::Buffer::copy_of(bytes.data(), static_cast<int64_t>(bytes.size())));
    if (!read.is_ok()) return r.invalid("keys: " + read.status().message());
    if (!(*read->first == *key_schema_)) {
      return r.invalid("keys {" + read->first->to_string() + "}, expected {" +
                       key_schema_->to_string() + "}");
    }
    RecordBatch batch = RecordBatch::make_empty(key_schema_);
    if (read->second.size() == 1) {
      batch = read->second[0];
    } else if (!read->second.empty()) {
      SABOT_ASSIGN_OR_RETURN(batch, columnar::concat(read->second));
    }
    if (static_cast<uint64_t>(batch.num_rows()) != nkeys) {
      return r.invalid(std::to_string(batch.num_rows()) + " key rows for " + std::to_string(nkeys) +
                       " keys");
    }
    std::vector<Array> cols;
    for (int c = 0; c < batch.num_columns(); ++c) cols.push_back(batch.column(c));
    const uint32_t before = grouper_->num_groups();
    SABOT_RETURN_IF_ERROR(grouper_->consume(cols, &ids));
    if (grouper_->num_groups() - before != nkeys) {
      return r.invalid("keys repeat or were restored before");
    }
    num_keys_ = grouper_->num_groups();
  } else {
    if (nkeys > 1) return r.invalid(std::to_string(nkeys) + " keys in a non-keyed window");
    ids.assign(static_cast<size_t>(nkeys), 0);
    num_keys_ = 1;
  }
  if (key_slots_.size() < num_keys_) key_slots_.resize(num_keys_, 0);
  switch (spec_.kind) {
    case Kind::kSession:
      if (sessions_.size() < num_keys_) sessions_.resize(num_keys_);
      break;
    case Kind::kCount:
      if (counts_.size() < num_keys_) {
        counts_.resize(num_keys_, 0);
        count_panes_.resize(num_keys_);
      }
      break;
    case Kind::kGlobal:
      if (global_slot_.size() < num_keys_) global_slot_.resize(num_keys_, kNone);
      break;
    default:
      break;
  }
  if (spec_.kind == Kind::kCount) {
    for (uint32_t id : ids) {
      int64_t c = 0;
      SABOT_RETURN_IF_ERROR(r.get(&c));
      if (c <= 0 || c > kTimeBound || counts_[id] != 0) {
        return r.invalid("bad element count " + std::to_string(c));
      }
      counts_[id] = c;
    }
  }
  uint64_t nslots = 0;
  SABOT_RETURN_IF_ERROR(r.get_count(&nslots, sizeof(uint32_t) + sizeof(int64_t)));
  const size_t m = static_cast<size_t>(nslots);
  std::vector<uint32_t> slot_keys(m);
  std::vector<int64_t> tags(m), starts, ends;
  std::vector<uint8_t> fired;
  SABOT_RETURN_IF_ERROR(r.get_raw(slot_keys.data(), m * sizeof(uint32_t)));
  SABOT_RETURN_IF_ERROR(r.get_raw(tags.data(), m * sizeof(int64_t)));
  if (spec_.kind == Kind::kSession) {
    starts.resize(m);
    ends.resize(m);
    fired.resize(m);
    SABOT_RETURN_IF_ERROR(r.get_raw(starts.data(), m * sizeof(int64_t)));
    SABOT_RETURN_IF_ERROR(r.get_raw(ends.data(), m * sizeof(int64_t)));
    SABOT_RETURN_IF_ERROR(r.get_raw(fired.data(), m));
  }
  std::vector<uint32_t> groups(m);
  if (spec_.kind == Kind::kTumbling || spec_.kind == Kind::kSliding) table_.reserve(m);
  auto pane_it = panes_.end();  // slots come pane by pane: the last pane's list
  for (size_t i = 0; i < m; ++i) {
    if (slot_keys[i] >= ids.size()) return r.invalid("slot of key " + std::to_string(slot_keys[i]));
    const uint32_t key = ids[slot_keys[i]];
    const int64_t tag = tags[i];
    switch (spec_.kind) {
      case Kind::kTumbling:
      case Kind::kSliding: {
        if (tag < -kTimeBound || tag > kTimeBound || floor_div(tag, pane_) * pane_ != tag) {
          return r.invalid("pane start " + std::to_string(tag) + " is not a multiple of " +
                           std::to_string(pane_));
        }
        if (table_.find(key, tag) != kNone) return r.invalid("pane restored twice");
        const uint32_t s = new_slot(key, tag);
        if (pane_it == panes_.end() || pane_it->first != tag) {
          pane_it = panes_.try_emplace(tag).first;
        }
        pane_it->second.push_back(s);
        table_.find_or_insert(key, tag, [s] { return s; });
        groups[i] = slot_group_[s];
        break;
      }
      case Kind::kSession: {
        auto& list = sessions_[key];
        if (starts[i] < -kTimeBound || ends[i] > kTimeBound || starts[i] >= ends[i] ||
            (!list.empty() && list.back().end > starts[i]) || fired[i] > 1) {
          return r.invalid("session [" + std::to_string(starts[i]) + ", " +
                           std::to_string(ends[i]) + ") out of order");
        }
        const uint32_t s = new_slot(key, tag);
        list.push_back(Session{starts[i], ends[i], s, fired[i] != 0, false});
        groups[i] = slot_group_[s];
        break;
      }
      case Kind::kCount: {
        auto& panes = count_panes_[key];
        if (tag < 0 || tag > (counts_[key] - 1) / count_pane_ ||
            (!panes.empty() && panes.back().index >= tag)) {
          return r.invalid("count pane " + std::to_string(tag) + " out of order");
        }
        const uint32_t s = new_slot(key, tag);
        panes.push_back(CountPane{tag, s});
        groups[i] = slot_group_[s];
        break;
      }
      case Kind::kGlobal: {
        if (global_slot_[key] != kNone) return r.invalid("global window restored twice");
        const uint32_t s = new_slot(key, tag);
        global_slot_[key] = s;
        groups[i] = slot_group_[s];
        break;
      }
    }
  }
  for (auto& a : accs_) {
    a->resize(num_groups_);
    SABOT_RETURN_IF_ERROR(a->deserialize_groups(r, groups));
  }
  return r.expect_end();
}

// Restore contract (runtime/operator.h): once per snapshot of this uid, at any old parallelism.
// Key-group sections this subtask owns are added to the state. Operator-wide fields merge as:
// - watermark: the minimum over the snapshots. At an aligned barrier every subtask has seen the
//   same watermarks (each upstream broadcasts its watermarks on every channel ahead of the
//   barrier), so the snapshots agree and the minimum is that value. Should they differ, the
//   minimum never makes a record late that the uninterrupted run would have taken, and a window
//   whose end lies between the minimum and a larger snapshot's watermark fires (again) when the
//   watermark passes it rather than never; sessions keep their own fired flags.
// - next early-fire time: the earliest (no subtask fires later than it would have).
// The first restore replaces what open() set up; the pending window ends are recomputed from the
// restored panes with the merged watermark after every call.
Status WindowOperator::restore_state(std::string_view data) {
  const auto max_p = static_cast<uint32_t>(ctx_.max_parallelism);
  SABOT_ASSIGN_OR_RETURN(
      state::SnapshotReader snapshot,
      state::SnapshotReader::open(data, ctx_.uid, kStateType, kStateVersion, max_p));
  restored_key_groups_.resize(max_p, false);
  for (size_t i = 0; i < snapshot.sections().size(); ++i) {
    const int32_t kg = snapshot.sections()[i].key_group;
    ByteReader r = snapshot.section_reader(i);
    if (kg == state::kOperatorWide) {
      int64_t wm = 0, next_early = 0;
      SABOT_RETURN_IF_ERROR(r.get(&wm));
      SABOT_RETURN_IF_ERROR(r.get(&next_early));
      SABOT_RETURN_IF_ERROR(r.expect_end());
      wm_ = restored_ ? std::min(wm_, wm) : wm;
      next_early_ = restored_ ? std::min(next_early_, next_early) : next_early;
      restored_ = true;
      continue;
    }
    if (subtask_for_key_group(kg, ctx_.parallelism, ctx_.max_parallelism) != ctx_.subtask_index) {
      continue;
    }
    if (restored_key_groups_[kg]) return r.invalid("key group restored twice");
    restored_key_groups_[kg] = true;
    SABOT_RETURN_IF_ERROR(restore_key_group(r));
  }
  if (spec_.kind == Kind::kTumbling || spec_.kind == Kind::kSliding) {
    pending_ends_.clear();
    for (const auto& [pane, list] : panes_) {
      for (int64_t start = floor_div(pane, slide_) * slide_; start > pane - size_;
           start -= slide_) {
        if (start + size_ - 1 > wm_) pending_ends_.insert(start + size_);
      }
    }
  }
  return Status::ok();
}

class WindowFactory final : public OperatorFactory {
 public:
  WindowFactory(WindowOptions opts, bool process, SchemaPtr process_output, WindowFunction fn)
      : opts_(std::move(opts)),
        process_(process),
        process_output_(std::move(process_output)),
        fn_(std::move(fn)) {}
  std::string kind() const override { return process_ ? "window_process" : "window_aggregate"; }

  Result<SchemaPtr> output_schema(std::span<const SchemaPtr> inputs) const override {
    SABOT_ASSIGN_OR_RETURN(auto plan, plan_for(inputs));
    return plan->output;
  }

  Result<std::unique_ptr<Operator>> create(std::span<const SchemaPtr> inputs,
                                           const OperatorContext& ctx) const override {
    SABOT_ASSIGN_OR_RETURN(auto plan, plan_for(inputs));
    if (opts_.key_columns.empty() && ctx.parallelism > 1) {
      return Status::invalid_argument(kind() + " without key columns needs parallelism 1, got " +
                                      std::to_string(ctx.parallelism));
    }
    // On a backend other than memory (RocksDB), windows keep their state in it (window_keyed.cc);
    // on the memory backend in the operator's columns.
    if (state_in_backend(ctx)) return internal::make_keyed_window_operator(std::move(plan), ctx);
    auto op = std::make_unique<WindowOperator>(std::move(plan));
    SABOT_RETURN_IF_ERROR(op->init());
    return std::unique_ptr<Operator>(std::move(op));
  }

  Result<SchemaPtr> side_output_schema(std::string_view tag,
                                       std::span<const SchemaPtr> inputs) const override {
    if (tag == "late" && opts_.late == LatePolicy::kSideOutput && inputs.size() == 1) {
      return inputs[0];
    }
    return OperatorFactory::side_output_schema(tag, inputs);
  }

 private:
  Result<std::shared_ptr<const Plan>> plan_for(std::span<const SchemaPtr> inputs) const {
    if (inputs.size() != 1) {
      return Status::invalid_argument(kind() + " takes one input, got " +
                                      std::to_string(inputs.size()));
    }
    return internal::make_window_plan(opts_, inputs[0], process_, process_output_, fn_);
  }

  WindowOptions opts_;
  bool process_;
  SchemaPtr process_output_;
  WindowFunction fn_;
};

}  // namespace

std::shared_ptr<const OperatorFactory> window_aggregate(WindowOptions options) {
  return std::make_shared<WindowFactory>(std::move(options), false, nullptr, nullptr);
}

std::shared_ptr<const OperatorFactory> window_process(WindowOptions options,
                                                      SchemaPtr output_schema, WindowFunction fn) {
  return std::make_shared<WindowFactory>(std::move(options), true, std::move(output_schema),
                                         std::move(fn));
}

}  // namespace sabot::operators
