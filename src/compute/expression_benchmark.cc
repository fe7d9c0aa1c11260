// Micro-benchmarks of expression evaluation over one 1 M-row batch (bind once, evaluate per
// iteration, output allocation included). Items are rows.
#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <vector>

#include "sabot/columnar/builder.h"
#include "sabot/columnar/record_batch.h"
#include "sabot/compute/expression.h"

namespace sabot::compute {
namespace {

using columnar::Array;
using columnar::RecordBatch;

constexpr int64_t kRows = 1 << 20;

Array random_int64(int64_t n, double null_density, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int64_t> value(0, 1'000'000);
  std::bernoulli_distribution is_null(null_density);
  columnar::Int64Builder b;
  b.reserve(n);
  for (int64_t i = 0; i < n; ++i) {
    if (null_density > 0 && is_null(rng)) {
      b.append_null();
    } else {
      b.append(value(rng));
    }
  }
  return b.finish();
}

Array random_bool(int64_t n, double null_density, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::bernoulli_distribution coin(0.5);
  std::bernoulli_distribution is_null(null_density);
  columnar::BooleanBuilder b;
  b.reserve(n);
  for (int64_t i = 0; i < n; ++i) {
    if (is_null(rng)) {
      b.append_null();
    } else {
      b.append(coin(rng));
    }
  }
  return b.finish();
}

Array random_utf8(int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> len(4, 16);
  std::uniform_int_distribution<int> ch('a', 'd');
  columnar::StringBuilder b;
  b.reserve(n);
  std::string s;
  for (int64_t i = 0; i < n; ++i) {
    s.resize(static_cast<size_t>(len(rng)));
    for (char& c : s) c = static_cast<char>(ch(rng));
    b.append(s);
  }
  return b.finish();
}

RecordBatch make_batch(std::vector<std::pair<std::string, Array>> cols) {
  std::vector<columnar::Field> fields;
  std::vector<Array> arrays;
  for (auto& [name, a] : cols) {
    fields.push_back(columnar::field(name, a.type()));
    arrays.push_back(a);
  }
  return *RecordBatch::make(columnar::schema(std::move(fields)), std::move(arrays));
}

void run(benchmark::State& state, const Expr& expr, const RecordBatch& batch,
         int64_t bytes_per_row) {
  auto bound = bind(expr, batch.schema());
  if (!bound.is_ok()) {
    state.SkipWithError(bound.status().to_string().c_str());
    return;
  }
  for (auto _ : state) {
    auto out = bound->evaluate(batch);
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(state.iterations() * batch.num_rows());
  state.SetBytesProcessed(state.iterations() * batch.num_rows() * bytes_per_row);
}

void BM_Int64GreaterThanLiteral(benchmark::State& state) {
  RecordBatch batch = make_batch({{"price", random_int64(kRows, 0.0, 1)}});
  run(state, col("price") > lit(500'000), batch, 8);
}
BENCHMARK(BM_Int64GreaterThanLiteral);

void BM_Int64GreaterThanLiteralWithNulls(benchmark::State& state) {
  RecordBatch batch = make_batch({{"price", random_int64(kRows, 0.1, 1)}});
  run(state, col("price") > lit(500'000), batch, 8);
}
BENCHMARK(BM_Int64GreaterThanLiteralWithNulls);

void BM_Int64GreaterThanLiteralSliced(benchmark::State& state) {
  // A non-byte-aligned slice: the validity bitmap has to be shifted.
  RecordBatch batch = make_batch({{"price", random_int64(kRows + 3, 0.1, 1)}}).slice(3, kRows);
  run(state, col("price") > lit(500'000), batch, 8);
}
BENCHMARK(BM_Int64GreaterThanLiteralSliced);

void BM_Int32GreaterThanLiteral(benchmark::State& state) {
  Array wide = random_int64(kRows, 0.0, 1);
  columnar::Int32Builder b;
  b.reserve(kRows);
  for (int64_t i = 0; i < kRows; ++i) b.append(static_cast<int32_t>(wide.value<int64_t>(i)));
  RecordBatch batch = make_batch({{"qty", b.finish()}});
  run(state, col("qty") > lit(500'000), batch, 4);
}
BENCHMARK(BM_Int32GreaterThanLiteral);

void BM_Float64LessThanLiteral(benchmark::State& state) {
  Array wide = random_int64(kRows, 0.0, 1);
  columnar::Float64Builder b;
  b.reserve(kRows);
  for (int64_t i = 0; i < kRows; ++i) b.append(static_cast<double>(wide.value<int64_t>(i)) / 7);
  RecordBatch batch = make_batch({{"price", b.finish()}});
  run(state, col("price") < lit(12'345.5), batch, 8);
}
BENCHMARK(BM_Float64LessThanLiteral);

void BM_Int64LessThanColumn(benchmark::State& state) {
  RecordBatch batch =
      make_batch({{"a", random_int64(kRows, 0.0, 1)}, {"b", random_int64(kRows, 0.0, 2)}});
  run(state, col("a") < col("b"), batch, 16);
}
BENCHMARK(BM_Int64LessThanColumn);

void BM_Int64PlusInt64(benchmark::State& state) {
  RecordBatch batch =
      make_batch({{"a", random_int64(kRows, 0.0, 1)}, {"b", random_int64(kRows, 0.0, 2)}});
  run(state, col("a") + col("b"), batch, 16);
}
BENCHMARK(BM_Int64PlusInt64);

void BM_Int64PlusInt64WithNulls(benchmark::State& state) {
  RecordBatch batch =
      make_batch({{"a", random_int64(kRows, 0.1, 1)}, {"b", random_int64(kRows, 0.1, 2)}});
  run(state, col("a") + col("b"), batch, 16);
}
BENCHMARK(BM_Int64PlusInt64WithNulls);

void BM_Int64DivideInt64(benchmark::State& state) {
  RecordBatch batch =
      make_batch({{"a", random_int64(kRows, 0.0, 1)}, {"b", random_int64(kRows, 0.0, 2)}});
  run(state, col("a") / col("b"), batch, 16);
}
BENCHMARK(BM_Int64DivideInt64);

void BM_KleeneAndWithNulls(benchmark::State& state) {
  RecordBatch batch =
      make_batch({{"p", random_bool(kRows, 0.1, 1)}, {"q", random_bool(kRows, 0.1, 2)}});
  run(state, col("p") && col("q"), batch, 0);
}
BENCHMARK(BM_KleeneAndWithNulls);

void BM_FilterPredicate(benchmark::State& state) {
  // A typical filter: two comparisons joined by and.
  RecordBatch batch =
      make_batch({{"a", random_int64(kRows, 0.05, 1)}, {"b", random_int64(kRows, 0.0, 2)}});
  run(state, col("a") > 250'000 && col("b") <= 750'000, batch, 16);
}
BENCHMARK(BM_FilterPredicate);

void BM_IfElseInt64(benchmark::State& state) {
  RecordBatch batch = make_batch({{"c", random_bool(kRows, 0.05, 3)},
                                  {"a", random_int64(kRows, 0.05, 1)},
                                  {"b", random_int64(kRows, 0.0, 2)}});
  run(state, if_else(col("c"), col("a"), col("b")), batch, 16);
}
BENCHMARK(BM_IfElseInt64);

void BM_Utf8StartsWith(benchmark::State& state) {
  Array s = random_utf8(kRows, 3);
  RecordBatch batch = make_batch({{"name", s}});
  run(state, starts_with(col("name"), "ab"), batch, s.data().data->size() / kRows + 4);
}
BENCHMARK(BM_Utf8StartsWith);

void BM_Utf8Contains(benchmark::State& state) {
  Array s = random_utf8(kRows, 3);
  RecordBatch batch = make_batch({{"name", s}});
  run(state, contains(col("name"), "dab"), batch, s.data().data->size() / kRows + 4);
}
BENCHMARK(BM_Utf8Contains);

}  // namespace
}  // namespace sabot::compute

BENCHMARK_MAIN();
