// Keyed state inside a real keyed job: an operator keeps a per-key running count and sum in the
// job's state backend (EnvironmentOptions::state_backend: memory, or RocksDB), each subtask's
// owning exactly the key groups the runtime's key_by routes to it.

#include <unistd.h>

#include <filesystem>
#include <map>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "sabot/api/environment.h"
#include "sabot/columnar/builder.h"
#include "sabot/state/keyed_state_backend.h"
#include "sabot/state/rocksdb_backend.h"

namespace sabot::state {
namespace {

using columnar::RecordBatch;
using columnar::SchemaPtr;

SchemaPtr input_schema() {
  return columnar::schema(
      {columnar::field("k", columnar::int64()), columnar::field("v", columnar::int64())});
}
SchemaPtr output_schema() {
  return columnar::schema({columnar::field("k", columnar::int64()),
                           columnar::field("count", columnar::int64()),
                           columnar::field("sum", columnar::int64())});
}

class RunningSumOp final : public runtime::Operator {
 public:
  explicit RunningSumOp(std::unique_ptr<KeyedStateBackend> backend) : backend_(std::move(backend)) {
    count_ = *backend_->get_state(ValueStateDescriptor<int64_t>{.name = "count"});
    sum_ = *backend_->get_state(reducing_descriptor<int64_t>(
        "sum", [](const int64_t& a, const int64_t& b) { return a + b; }));
  }
  Status process_batch(const RecordBatch& batch, int, runtime::Output& out) override {
    const int key_cols[] = {0};
    SABOT_RETURN_IF_ERROR(backend_->resolve_keys(batch, key_cols, &ids_));
    const int64_t* v = batch.column(1).values<int64_t>();
    columnar::Int64Builder counts;
    columnar::Int64Builder sums;
    for (size_t i = 0; i < ids_.size(); ++i) {
      backend_->set_current_key(ids_[i]);
      const int64_t* c = count_->get();
      count_->update((c ? *c : 0) + 1);
      sum_->add(v[i]);
      counts.append(*count_->get());
      sums.append(*sum_->get());
    }
    return out.emit(RecordBatch::make_unchecked(
        output_schema(), {batch.column(0), counts.finish(), sums.finish()}, batch.num_rows()));
  }

 private:
  std::unique_ptr<KeyedStateBackend> backend_;
  ValueState<int64_t>* count_;
  ReducingState<int64_t>* sum_;
  std::vector<KeyId> ids_;
};

class RunningSumFactory final : public runtime::OperatorFactory {
 public:
  std::string kind() const override { return "running_sum"; }
  Result<SchemaPtr> output_schema(std::span<const SchemaPtr>) const override {
    return state::output_schema();
  }
  Result<std::unique_ptr<runtime::Operator>> create(
      std::span<const SchemaPtr>, const runtime::OperatorContext& ctx) const override {
    KeyedBackendOptions o;
    o.key_types = {columnar::int64()};
    o.max_parallelism = static_cast<uint32_t>(ctx.max_parallelism);
    o.key_groups = key_groups_for_subtask(ctx.subtask_index, ctx.parallelism, ctx.max_parallelism);
    o.clock = ctx.clock;
    o.name = ctx.operator_name;
    static const MemoryStateBackend kMemory;
    const StateBackend& states = ctx.state_backend != nullptr ? *ctx.state_backend : kMemory;
    SABOT_ASSIGN_OR_RETURN(auto backend, states.create_keyed_backend(o));
    return std::unique_ptr<runtime::Operator>(new RunningSumOp(std::move(backend)));
  }
};

// The parameter: the job's state backend ("memory" or "rocksdb").
class KeyedStateJobTest : public ::testing::TestWithParam<std::string> {};

TEST_P(KeyedStateJobTest, RunningSumsMatchTheModelAtEveryParallelism) {
  const std::string dir =
      ::testing::TempDir() + "/keyed_state_job_test_" + std::to_string(getpid());
  std::shared_ptr<const StateBackend> backend;
  if (GetParam() == "rocksdb") backend = rocksdb(dir).value();
  for (int parallelism = 1; parallelism <= 4; ++parallelism) {
    for (int max_parallelism : {128, 100}) {
      std::mt19937_64 rng(static_cast<uint64_t>(parallelism * 1000 + max_parallelism));
      std::vector<RecordBatch> batches;
      std::map<int64_t, std::vector<std::pair<int64_t, int64_t>>> model;  // key -> (count, sum)
      for (int b = 0; b < 12; ++b) {
        columnar::Int64Builder ks;
        columnar::Int64Builder vs;
        const int rows = static_cast<int>(rng() % 700);
        for (int i = 0; i < rows; ++i) {
          const int64_t k = static_cast<int64_t>(rng() % 300) * 31 - 2000;
          const int64_t v = static_cast<int64_t>(rng() % 100);
          ks.append(k);
          vs.append(v);
          auto& seq = model[k];
          const int64_t prev_sum = seq.empty() ? 0 : seq.back().second;
          seq.emplace_back(static_cast<int64_t>(seq.size()) + 1, prev_sum + v);
        }
        batches.push_back(*RecordBatch::make(input_schema(), {ks.finish(), vs.finish()}));
      }
      Environment env({.parallelism = parallelism,
                       .max_parallelism = max_parallelism,
                       .state_backend = backend});
      // One source subtask, so each key's rows reach the keyed operator in input order (the
      // model's running sums depend on it); the keyed operator runs at `parallelism`.
      auto out = env.from_batches(batches, input_schema())
                     .set_parallelism(1)
                     .key_by("k")
                     .apply(std::make_shared<RunningSumFactory>())
                     .collect();
      JobResult r = env.execute();
      ASSERT_TRUE(r.ok()) << r.status().to_string();
      std::map<int64_t, std::vector<std::pair<int64_t, int64_t>>> got;
      for (const RecordBatch& b : out->batches()) {
        for (int64_t i = 0; i < b.num_rows(); ++i) {
          got[b.column(0).value<int64_t>(i)].emplace_back(b.column(1).value<int64_t>(i),
                                                          b.column(2).value<int64_t>(i));
        }
      }
      for (auto& [k, seq] : got) std::sort(seq.begin(), seq.end());
      EXPECT_EQ(got, model) << "parallelism " << parallelism << " max " << max_parallelism;
    }
  }
  backend.reset();
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Backends, KeyedStateJobTest, ::testing::Values("memory", "rocksdb"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace sabot::state
