// Rolling aggregations on a keyed stream: every record updates its key's running value, which is
// emitted right away (Flink's KeyedStream.reduce / aggregate). Built on KeyedProcessFunction with
// keyed state, so they are checkpointed like any state. Records kept in state must own their data:
// use std::string members, not std::string_view.
#pragma once

#include <type_traits>

#include "sabot/api/process.h"
#include "sabot/state/state_codec.h"

namespace sabot::state {

// Records declared with SABOT_RECORD are snapshotted member by member.
template <sabot::Record T>
requires(!std::is_trivially_copyable_v<T>) struct StateCodec<T> {
  static void encode(const T& v, ByteWriter& w) {
    std::apply(
        [&](auto... f) { (StateCodec<typename decltype(f)::type>::encode(v.*(f.member), w), ...); },
        sabot::RecordTraits<T>::fields());
  }
  static Status decode(ByteReader& r, T* v) {
    Status s;
    std::apply(
        [&](auto... f) {
          ((s.is_ok()
                ? (void)(s = StateCodec<typename decltype(f)::type>::decode(r, &(v->*(f.member))))
                : void()),
           ...);
        },
        sabot::RecordTraits<T>::fields());
    return s;
  }
};

}  // namespace sabot::state

namespace sabot {

// T reduce(const T& accumulated, const T& next), per key; emits the new value for every record.
template <Record T, typename F>
class ReduceFunction final : public KeyedProcessFunction<T, T> {
 public:
  explicit ReduceFunction(F fn) : fn_(std::move(fn)) {}
  void open(RuntimeContext& ctx) override { acc_ = ctx.value_state<T>("reduce"); }
  void process(const T& row, Context&, Emitter<T>& out) override {
    const T* cur = acc_->get();
    T next = cur ? fn_(*cur, row) : row;
    out.emit(next);
    acc_->update(std::move(next));
  }

 private:
  F fn_;
  state::ValueState<T>* acc_ = nullptr;
};

// Fn has create() -> Acc, add(Acc&, const In&), merge(Acc&, const Acc&), result(const Acc&) -> Out;
// emits the key's new result for every record.
template <Record In, typename Acc, Record Out, typename Fn>
requires state::AggregateFunctionFor<Fn, In, Acc, Out>
class RollingAggregateFunction final : public KeyedProcessFunction<In, Out> {
 public:
  explicit RollingAggregateFunction(Fn fn) : fn_(std::move(fn)) {}
  void open(RuntimeContext& ctx) override { acc_ = ctx.value_state<Acc>("aggregate"); }
  void process(const In& row, Context&, Emitter<Out>& out) override {
    const Acc* cur = acc_->get();
    Acc next = cur ? *cur : fn_.create();
    fn_.add(next, row);
    out.emit(fn_.result(next));
    acc_->update(std::move(next));
  }

 private:
  Fn fn_;
  state::ValueState<Acc>* acc_ = nullptr;
};

}  // namespace sabot
