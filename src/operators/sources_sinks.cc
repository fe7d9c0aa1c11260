#include "sabot/operators/sources_sinks.h"

#include <algorithm>
#include <iostream>

namespace sabot::operators {

using columnar::RecordBatch;
using columnar::SchemaPtr;
using runtime::Operator;
using runtime::OperatorContext;
using runtime::OperatorFactory;
using runtime::Output;
using runtime::Source;
using runtime::SourcePoll;
using runtime::SourceReader;

namespace {

// ---- batches ----

class BatchesReader final : public SourceReader {
 public:
  BatchesReader(std::shared_ptr<const std::vector<RecordBatch>> batches, std::vector<int> splits)
      : batches_(std::move(batches)), splits_(std::move(splits)), start_(splits_.size(), 0) {}
  Result<SourcePoll> poll(int64_t max_rows) override {
    while (next_split_ < splits_.size()) {
      const RecordBatch& b = (*batches_)[static_cast<size_t>(splits_[next_split_])];
      if (row_ < b.num_rows()) {
        int64_t n = std::min(max_rows, b.num_rows() - row_);
        RecordBatch part = (row_ == 0 && n == b.num_rows()) ? b : b.slice(row_, n);
        row_ += n;
        SourcePoll p = SourcePoll::of(std::move(part));
        p.split = splits_[next_split_];
        return p;
      }
      ++next_split_;
      row_ = next_split_ < splits_.size() ? start_[next_split_] : 0;
    }
    return SourcePoll::end();
  }
  std::string position() const override {
    return "batch " + std::to_string(next_split_) + "/" + std::to_string(splits_.size()) + " row " +
           std::to_string(row_);
  }
  // A split's position is the next row of its batch.
  Result<std::vector<runtime::SplitPosition>> snapshot_positions() const override {
    std::vector<runtime::SplitPosition> out;
    for (size_t k = 0; k < splits_.size(); ++k) {
      const int64_t rows = (*batches_)[static_cast<size_t>(splits_[k])].num_rows();
      const int64_t row = k < next_split_ ? rows : k == next_split_ ? row_ : start_[k];
      out.push_back({splits_[k], runtime::encode_position(row)});
    }
    return out;
  }
  Status restore_positions(std::span<const runtime::SplitPosition> positions) override {
    for (const auto& p : positions) {
      auto it = std::find(splits_.begin(), splits_.end(), p.split);
      if (it == splits_.end()) {
        return Status::invalid_argument("batches source: split " + std::to_string(p.split) +
                                        " is not this reader's");
      }
      SABOT_ASSIGN_OR_RETURN(int64_t row, runtime::decode_position(p, "batches source"));
      const size_t k = static_cast<size_t>(it - splits_.begin());
      if (row < 0 || row > (*batches_)[static_cast<size_t>(p.split)].num_rows()) {
        return Status::invalid_data("batches source: row " + std::to_string(row) +
                                    " lies outside split " + std::to_string(p.split));
      }
      start_[k] = row;
    }
    row_ = splits_.empty() ? 0 : start_[0];
    return Status::ok();
  }

 private:
  std::shared_ptr<const std::vector<RecordBatch>> batches_;
  std::vector<int> splits_;
  std::vector<int64_t> start_;  // per split: the row to start at (restored positions)
  size_t next_split_ = 0;
  int64_t row_ = 0;
};

class BatchesSource final : public Source {
 public:
  BatchesSource(std::vector<RecordBatch> batches, SchemaPtr schema)
      : batches_(std::make_shared<const std::vector<RecordBatch>>(std::move(batches))),
        schema_(std::move(schema)) {}
  std::string name() const override { return "batches"; }
  SchemaPtr schema() const override { return schema_; }
  int num_splits() const override { return std::max<int>(1, static_cast<int>(batches_->size())); }
  Result<std::unique_ptr<SourceReader>> open_reader(std::span<const int> splits,
                                                    const OperatorContext&) const override {
    std::vector<int> mine;
    for (int s : splits) {
      if (s < static_cast<int>(batches_->size())) mine.push_back(s);
    }
    return std::unique_ptr<SourceReader>(new BatchesReader(batches_, std::move(mine)));
  }
  bool checkpointable() const override { return true; }

 private:
  std::shared_ptr<const std::vector<RecordBatch>> batches_;
  SchemaPtr schema_;
};

// ---- generator ----

class GeneratorReader final : public SourceReader {
 public:
  GeneratorReader(const GeneratorFunction* fn, std::vector<int> splits)
      : fn_(fn), splits_(std::move(splits)), start_(splits_.size(), 0) {}
  Result<SourcePoll> poll(int64_t max_rows) override {
    while (next_split_ < splits_.size()) {
      if (row_ >= 0) {
        SABOT_ASSIGN_OR_RETURN(std::optional<RecordBatch> b,
                               (*fn_)(splits_[next_split_], row_, max_rows));
        if (b) {
          row_ += b->num_rows();
          SourcePoll p = SourcePoll::of(std::move(*b));
          p.split = splits_[next_split_];
          return p;
        }
      }
      ++next_split_;
      row_ = next_split_ < splits_.size() ? start_[next_split_] : 0;
    }
    return SourcePoll::end();
  }
  std::string position() const override {
    if (next_split_ >= splits_.size()) return "done";
    return "split " + std::to_string(splits_[next_split_]) + " row " + std::to_string(row_);
  }
  // A split's position is its next row, or kDone once the function said it has no more.
  Result<std::vector<runtime::SplitPosition>> snapshot_positions() const override {
    std::vector<runtime::SplitPosition> out;
    for (size_t k = 0; k < splits_.size(); ++k) {
      const int64_t row = k < next_split_ ? kDone : k == next_split_ ? row_ : start_[k];
      out.push_back({splits_[k], runtime::encode_position(row)});
    }
    return out;
  }
  Status restore_positions(std::span<const runtime::SplitPosition> positions) override {
    for (const auto& p : positions) {
      auto it = std::find(splits_.begin(), splits_.end(), p.split);
      if (it == splits_.end()) {
        return Status::invalid_argument("generator source: split " + std::to_string(p.split) +
                                        " is not this reader's");
      }
      SABOT_ASSIGN_OR_RETURN(int64_t row, runtime::decode_position(p, "generator source"));
      if (row < kDone) {
        return Status::invalid_data("generator source: row " + std::to_string(row) + " of split " +
                                    std::to_string(p.split));
      }
      start_[static_cast<size_t>(it - splits_.begin())] = row;
    }
    row_ = splits_.empty() ? 0 : start_[0];
    return Status::ok();
  }

 private:
  static constexpr int64_t kDone = -1;
  const GeneratorFunction* fn_;
  std::vector<int> splits_;
  std::vector<int64_t> start_;  // per split: the row to start at, or kDone
  size_t next_split_ = 0;
  int64_t row_ = 0;
};

class GeneratorSource final : public Source {
 public:
  GeneratorSource(std::string name, SchemaPtr schema, int splits, GeneratorFunction fn)
      : name_(std::move(name)), schema_(std::move(schema)), splits_(splits), fn_(std::move(fn)) {}
  std::string name() const override { return name_; }
  SchemaPtr schema() const override { return schema_; }
  int num_splits() const override { return splits_; }
  Result<std::unique_ptr<SourceReader>> open_reader(std::span<const int> splits,
                                                    const OperatorContext&) const override {
    if (!fn_) return Status::invalid_argument("generator '" + name_ + "' has no function");
    return std::unique_ptr<SourceReader>(
        new GeneratorReader(&fn_, std::vector<int>(splits.begin(), splits.end())));
  }
  bool checkpointable() const override { return true; }

 private:
  std::string name_;
  SchemaPtr schema_;
  int splits_;
  GeneratorFunction fn_;
};

// ---- sinks ----

class FunctionSink final : public Operator {
 public:
  explicit FunctionSink(std::function<Status(const RecordBatch&)> fn) : fn_(std::move(fn)) {}
  Status process_batch(const RecordBatch& batch, int, Output&) override { return fn_(batch); }

 private:
  std::function<Status(const RecordBatch&)> fn_;
};

class SinkFactory final : public OperatorFactory {
 public:
  using Make = std::function<std::function<Status(const RecordBatch&)>(const OperatorContext&,
                                                                       const SchemaPtr&)>;
  SinkFactory(std::string kind, Make make) : kind_(std::move(kind)), make_(std::move(make)) {}
  std::string kind() const override { return kind_; }
  Result<SchemaPtr> output_schema(std::span<const SchemaPtr> inputs) const override {
    if (inputs.size() != 1) return Status::invalid_argument(kind_ + " takes one input");
    return inputs[0];
  }
  Result<std::unique_ptr<Operator>> create(std::span<const SchemaPtr> inputs,
                                           const OperatorContext& ctx) const override {
    return std::unique_ptr<Operator>(new FunctionSink(make_(ctx, inputs[0])));
  }

 private:
  std::string kind_;
  Make make_;
};

std::string format_row(const RecordBatch& b, int64_t row) {
  std::string line = "{";
  for (int c = 0; c < b.num_columns(); ++c) {
    if (c > 0) line += ", ";
    line += b.schema().field(c).name;
    line += ": ";
    line += b.column(c).scalar_at(row).to_string();
  }
  line += "}";
  return line;
}

}  // namespace

Result<std::shared_ptr<const Source>> batches_source(std::vector<RecordBatch> batches,
                                                     SchemaPtr schema) {
  if (schema == nullptr) {
    if (batches.empty()) {
      return Status::invalid_argument("a source from no batches needs an explicit schema");
    }
    schema = batches[0].schema_ptr();
  }
  for (size_t i = 0; i < batches.size(); ++i) {
    if (!(batches[i].schema() == *schema)) {
      return Status::type_error("batch " + std::to_string(i) + " has schema {" +
                                batches[i].schema().to_string() + "}, expected {" +
                                schema->to_string() + "}");
    }
  }
  return std::shared_ptr<const Source>(
      std::make_shared<BatchesSource>(std::move(batches), std::move(schema)));
}

std::shared_ptr<const Source> generator_source(std::string name, SchemaPtr schema, int num_splits,
                                               GeneratorFunction fn) {
  return std::make_shared<GeneratorSource>(std::move(name), std::move(schema), num_splits,
                                           std::move(fn));
}

void CollectedBatches::add(const RecordBatch& batch) {
  std::lock_guard<std::mutex> lock(mu_);
  batches_.push_back(batch);
}
std::vector<RecordBatch> CollectedBatches::batches() const {
  std::lock_guard<std::mutex> lock(mu_);
  return batches_;
}
int64_t CollectedBatches::num_rows() const {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t n = 0;
  for (const auto& b : batches_) n += b.num_rows();
  return n;
}
void CollectedBatches::set_schema(SchemaPtr schema) {
  std::lock_guard<std::mutex> lock(mu_);
  schema_ = std::move(schema);
}
SchemaPtr CollectedBatches::schema() const {
  std::lock_guard<std::mutex> lock(mu_);
  return schema_;
}
Result<RecordBatch> CollectedBatches::to_batch() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (batches_.empty()) {
    if (!schema_)
      return Status::invalid_argument("nothing was collected and the schema is unknown");
    return RecordBatch::make_empty(schema_);
  }
  return columnar::concat(std::span<const RecordBatch>(batches_));
}

std::shared_ptr<const OperatorFactory> collect_sink(std::shared_ptr<CollectedBatches> into) {
  return std::make_shared<SinkFactory>("collect",
                                       [into](const OperatorContext&, const SchemaPtr& schema) {
                                         into->set_schema(schema);
                                         return [into](const RecordBatch& b) {
                                           into->add(b);
                                           return Status::ok();
                                         };
                                       });
}

std::shared_ptr<const OperatorFactory> callback_sink(BatchCallback fn) {
  auto shared = std::make_shared<std::pair<std::mutex, BatchCallback>>();
  shared->second = std::move(fn);
  return std::make_shared<SinkFactory>("callback",
                                       [shared](const OperatorContext&, const SchemaPtr&) {
                                         return [shared](const RecordBatch& b) {
                                           std::lock_guard<std::mutex> lock(shared->first);
                                           return shared->second(b);
                                         };
                                       });
}

std::shared_ptr<const OperatorFactory> print_sink(std::ostream* out) {
  auto mu = std::make_shared<std::mutex>();
  return std::make_shared<SinkFactory>("print", [out, mu](const OperatorContext& ctx,
                                                          const SchemaPtr&) {
    std::string prefix = ctx.parallelism > 1 ? std::to_string(ctx.subtask_index + 1) + "> " : "";
    return [out, mu, prefix](const RecordBatch& b) {
      std::string text;
      for (int64_t r = 0; r < b.num_rows(); ++r) {
        text += prefix;
        text += format_row(b, r);
        text += '\n';
      }
      std::lock_guard<std::mutex> lock(*mu);
      *out << text;
      out->flush();
      return Status::ok();
    };
  });
}

std::shared_ptr<const OperatorFactory> blackhole_sink() {
  return std::make_shared<SinkFactory>("blackhole", [](const OperatorContext&, const SchemaPtr&) {
    return [](const RecordBatch&) { return Status::ok(); };
  });
}

}  // namespace sabot::operators
