#include "sabot/operators/keyed_process.h"

#include <string>

#include "sabot/base/arith.h"
#include "sabot/state/snapshot.h"

namespace sabot::operators {

using state::KeyId;

KeyedProcessOperator::KeyedProcessOperator(std::unique_ptr<KeyedProcessDriver> driver,
                                           std::vector<int> key_columns,
                                           std::unique_ptr<state::KeyedStateBackend> backend,
                                           const runtime::OperatorContext& ctx)
    : driver_(std::move(driver)),
      key_columns_(std::move(key_columns)),
      backend_(std::move(backend)),
      ctx_(ctx) {
  scope_.backend = backend_.get();
  scope_.clock = ctx.clock;
}

Status KeyedProcessOperator::open(const runtime::OperatorContext& ctx) {
  ctx_ = ctx;
  scope_.clock = ctx.clock;
  return driver_->open(&scope_, ctx_);
}

Status KeyedProcessOperator::maybe_forget_keys() {
  if (!backend_->should_forget_keys()) return Status::ok();
  std::vector<KeyId> pinned;
  pinned.reserve(num_timers());
  for (const auto& [t, k] : scope_.event_timers) pinned.push_back(k);
  for (const auto& [t, k] : scope_.processing_timers) pinned.push_back(k);
  std::vector<KeyId> remap;
  SABOT_RETURN_IF_ERROR(backend_->forget_keys(pinned, &remap));
  // KeyIds keep their order, so each set's order is unchanged: rebuild with hints at the end.
  for (KeyedTimerSet* timers : {&scope_.event_timers, &scope_.processing_timers}) {
    KeyedTimerSet renumbered;
    for (const auto& [t, k] : *timers) renumbered.emplace_hint(renumbered.end(), t, remap[k]);
    *timers = std::move(renumbered);
  }
  scope_.key = state::kNoKey;
  return Status::ok();
}

Status KeyedProcessOperator::process_batch(const columnar::RecordBatch& batch, int,
                                           runtime::Output& out) {
  SABOT_RETURN_IF_ERROR(maybe_forget_keys());
  SABOT_RETURN_IF_ERROR(backend_->resolve_keys(batch, key_columns_, &ids_));
  SABOT_RETURN_IF_ERROR(driver_->process_rows(batch, ids_));
  return flush(out);
}

Status KeyedProcessOperator::process_watermark(Timestamp t, runtime::Output& out) {
  scope_.watermark = t;
  SABOT_RETURN_IF_ERROR(fire(scope_.event_timers, t.millis(), out));
  return out.emit_watermark(t);
}

Timestamp KeyedProcessOperator::next_processing_time() const {
  return scope_.processing_timers.empty() ? Timestamp::max()
                                          : Timestamp(scope_.processing_timers.begin()->first);
}

Status KeyedProcessOperator::on_processing_time(Timestamp now, runtime::Output& out) {
  return fire(scope_.processing_timers, now.millis(), out);
}

Status KeyedProcessOperator::fire(KeyedTimerSet& timers, int64_t until, runtime::Output& out) {
  backend_->refresh_time();
  while (!timers.empty() && timers.begin()->first <= until) {
    const int64_t time = timers.begin()->first;
    const KeyId key = timers.begin()->second;
    timers.erase(timers.begin());
    backend_->set_current_key(key);
    scope_.key = key;
    scope_.timestamp = time;
    SABOT_RETURN_IF_ERROR(driver_->on_timer(Timestamp(time)));
  }
  return flush(out);
}

Status KeyedProcessOperator::flush(runtime::Output& out) {
  SABOT_ASSIGN_OR_RETURN(std::optional<columnar::RecordBatch> rows, driver_->take_output());
  if (!rows) return Status::ok();
  return out.emit(*rows);
}

namespace {

// Per key group of a snapshot, the (key index, time) of its timers.
struct TimerLists {
  std::vector<std::pair<uint32_t, int64_t>> event;
  std::vector<std::pair<uint32_t, int64_t>> processing;
};

void put_timers(ByteWriter& w, const std::vector<std::pair<uint32_t, int64_t>>& timers) {
  w.put<uint64_t>(timers.size());
  for (const auto& [index, time] : timers) {
    w.put<uint32_t>(index);
    w.put<int64_t>(time);
  }
}

Status get_timers(ByteReader& r, std::span<const KeyId> ids, KeyedTimerSet* timers) {
  uint64_t n = 0;
  SABOT_RETURN_IF_ERROR(r.get_count(&n, sizeof(uint32_t) + sizeof(int64_t)));
  for (uint64_t i = 0; i < n; ++i) {
    uint32_t index = 0;
    int64_t time = 0;
    SABOT_RETURN_IF_ERROR(r.get(&index));
    SABOT_RETURN_IF_ERROR(r.get(&time));
    if (index >= ids.size()) {
      return r.invalid("timer " + std::to_string(i) + " names key " + std::to_string(index) +
                       " of " + std::to_string(ids.size()));
    }
    timers->emplace(time, ids[index]);
  }
  return Status::ok();
}

}  // namespace

Status KeyedProcessOperator::snapshot_state(CheckpointId, std::string* out) {
  state::KeyedStateBackend::SnapshotParts parts;
  SABOT_RETURN_IF_ERROR(backend_->snapshot_parts(backend_->keys().owned_key_groups(), &parts));
  // Where each key went: its section and its index there.
  const uint32_t n = backend_->keys().num_keys();
  std::vector<uint32_t> section_of(n, UINT32_MAX);
  std::vector<uint32_t> index_of(n, 0);
  for (size_t g = 0; g < parts.keys.size(); ++g) {
    for (size_t i = 0; i < parts.keys[g].size(); ++i) {
      section_of[parts.keys[g][i]] = static_cast<uint32_t>(g);
      index_of[parts.keys[g][i]] = static_cast<uint32_t>(i);
    }
  }
  std::vector<TimerLists> timers(parts.key_groups.size());
  for (const auto& [t, k] : scope_.event_timers) {
    SABOT_CHECK_NE(section_of[k], UINT32_MAX);
    timers[section_of[k]].event.emplace_back(index_of[k], t);
  }
  for (const auto& [t, k] : scope_.processing_timers) {
    SABOT_CHECK_NE(section_of[k], UINT32_MAX);
    timers[section_of[k]].processing.emplace_back(index_of[k], t);
  }
  // Sized once: the snapshot of a large state is tens of MB, and growing it by appends copies it
  // again at every doubling.
  size_t size = out->size() + parts.header.size() + 256 + ctx_.uid.size();
  for (size_t g = 0; g < parts.payloads.size(); ++g) {
    size +=
        parts.payloads[g].size() + 32 + 16 * (timers[g].event.size() + timers[g].processing.size());
  }
  out->reserve(size);
  state::SnapshotWriter w(out, {.operator_uid = ctx_.uid,
                                .state_type = std::string(kProcessStateType),
                                .state_version = 1,
                                .max_parallelism = static_cast<uint32_t>(ctx_.max_parallelism)});
  w.begin_section(state::kOperatorWide).put_raw(parts.header.data(), parts.header.size());
  for (size_t g = 0; g < parts.key_groups.size(); ++g) {
    ByteWriter& s = w.begin_section(parts.key_groups[g].value());
    s.put_raw(parts.payloads[g].data(), parts.payloads[g].size());
    put_timers(s, timers[g].event);
    put_timers(s, timers[g].processing);
  }
  w.finish();
  return Status::ok();
}

Status KeyedProcessOperator::restore_state(std::string_view data) {
  SABOT_ASSIGN_OR_RETURN(state::SnapshotReader reader,
                         state::SnapshotReader::open(data, ctx_.uid, kProcessStateType, 1,
                                                     static_cast<uint32_t>(ctx_.max_parallelism)));
  state::KeyedStateBackend::RestoreHeader header;
  bool have_header = false;
  for (size_t i = 0; i < reader.sections().size(); ++i) {
    if (reader.sections()[i].key_group != state::kOperatorWide) continue;
    ByteReader r = reader.section_reader(i);
    SABOT_RETURN_IF_ERROR(backend_->restore_header(r, &header));
    have_header = true;
  }
  if (!have_header) {
    return Status::invalid_data(state::describe_snapshot(ctx_.uid, kProcessStateType) +
                                ": no operator-wide section (the states' descriptions)");
  }
  std::vector<KeyId> ids;
  for (size_t i = 0; i < reader.sections().size(); ++i) {
    const int32_t kg = reader.sections()[i].key_group;
    if (kg == state::kOperatorWide) continue;
    if (subtask_for_key_group(kg, ctx_.parallelism, ctx_.max_parallelism) != ctx_.subtask_index) {
      continue;
    }
    ByteReader r = reader.section_reader(i);
    SABOT_RETURN_IF_ERROR(backend_->restore_key_group(header, KeyGroup(kg), r, &ids));
    SABOT_RETURN_IF_ERROR(get_timers(r, ids, &scope_.event_timers));
    SABOT_RETURN_IF_ERROR(get_timers(r, ids, &scope_.processing_timers));
    SABOT_RETURN_IF_ERROR(r.expect_end());
  }
  scope_.key = state::kNoKey;
  return Status::ok();
}

}  // namespace sabot::operators
