// Typed rows over columnar batches. SABOT_RECORD(Type, field...) maps a plain struct's members to
// columns of the same names, so user code can read a batch row by row as `const Type&` and write
// results as structs. Member types: bool, int32_t, int64_t (also reads timestamp columns),
// uint64_t, double, std::string_view (reads utf8/binary; valid while the batch lives), std::string,
// and std::optional<T> of these for nullable columns. Use SABOT_RECORD at global namespace scope.
// Lives in columnar (it needs only builders and batches) so that operators, which sit below the
// API, can read and write typed rows; user code includes it through sabot/api/record.h.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <vector>

#include "sabot/columnar/builder.h"
#include "sabot/columnar/record_batch.h"

namespace sabot {

template <typename T>
struct RecordTraits;  // specialised by SABOT_RECORD

namespace detail {

template <typename Class, typename Member>
struct RecordField {
  const char* name;
  Member Class::*member;
  using type = Member;
};
template <typename Class, typename Member>
constexpr RecordField<Class, Member> record_field(const char* name, Member Class::*member) {
  return {name, member};
}

template <typename T>
struct Unoptional {
  using type = T;
  static constexpr bool optional = false;
};
template <typename T>
struct Unoptional<std::optional<T>> {
  using type = T;
  static constexpr bool optional = true;
};

template <typename V>
constexpr columnar::DataType column_type_of() {
  if constexpr (std::is_same_v<V, bool>)
    return columnar::boolean();
  else if constexpr (std::is_same_v<V, int32_t>)
    return columnar::int32();
  else if constexpr (std::is_same_v<V, int64_t>)
    return columnar::int64();
  else if constexpr (std::is_same_v<V, uint64_t>)
    return columnar::uint64();
  else if constexpr (std::is_same_v<V, double>)
    return columnar::float64();
  else if constexpr (std::is_same_v<V, std::string> || std::is_same_v<V, std::string_view>)
    return columnar::utf8();
  else
    static_assert(sizeof(V) == 0, "unsupported record member type");
}

template <typename V>
bool column_fits(const columnar::DataType& t) {
  if constexpr (std::is_same_v<V, int64_t>) {
    return t == columnar::int64() || t.id() == columnar::TypeId::kTimestamp;
  } else if constexpr (std::is_same_v<V, std::string> || std::is_same_v<V, std::string_view>) {
    return t.is_var_length();
  } else {
    return t == column_type_of<V>();
  }
}

template <typename V>
V read_value(const columnar::Array& a, int64_t row) {
  if constexpr (std::is_same_v<V, bool>)
    return a.bool_value(row);
  else if constexpr (std::is_same_v<V, std::string_view>)
    return a.string_view(row);
  else if constexpr (std::is_same_v<V, std::string>)
    return std::string(a.string_view(row));
  else
    return a.value<V>(row);
}

std::string describe_row(const columnar::RecordBatch& batch, int64_t row);

}  // namespace detail

template <typename T>
concept Record = requires {
  RecordTraits<T>::fields();
};

// The schema a record type writes: one column per member, nullable for std::optional members.
template <Record T>
columnar::SchemaPtr record_schema() {
  std::vector<columnar::Field> fields;
  std::apply(
      [&](auto... f) {
        (fields.push_back(
             columnar::field(f.name,
                             detail::column_type_of<
                                 typename detail::Unoptional<typename decltype(f)::type>::type>(),
                             detail::Unoptional<typename decltype(f)::type>::optional)),
         ...);
      },
      RecordTraits<T>::fields());
  return columnar::schema(std::move(fields));
}

// Reads rows of batches with one schema as T. bind() checks names and types once per schema.
template <Record T>
class RowReader {
 public:
  Status bind(const columnar::Schema& schema) {
    indices_.clear();
    Status status;
    std::apply(
        [&](auto... f) {
          (
              [&] {
                if (!status.is_ok()) return;
                using M = typename decltype(f)::type;
                using V = typename detail::Unoptional<M>::type;
                int i = schema.field_index(f.name);
                if (i < 0) {
                  status = schema.require_field_index(f.name).status();
                  return;
                }
                if (!detail::column_fits<V>(schema.field(i).type)) {
                  status =
                      Status::type_error(std::string("record field '") + f.name + "' is " +
                                         detail::column_type_of<V>().to_string() +
                                         " but the column is " + schema.field(i).type.to_string());
                  return;
                }
                indices_.push_back(i);
              }(),
              ...);
        },
        RecordTraits<T>::fields());
    return status;
  }

  // Fills `out` from row `row`; a null in a non-optional member is an error naming the column.
  Status read(const columnar::RecordBatch& batch, int64_t row, T* out) const {
    Status status;
    size_t k = 0;
    std::apply(
        [&](auto... f) {
          (
              [&] {
                using M = typename decltype(f)::type;
                using V = typename detail::Unoptional<M>::type;
                const columnar::Array& a = batch.column(indices_[k++]);
                if (a.is_null(row)) {
                  if constexpr (detail::Unoptional<M>::optional) {
                    out->*(f.member) = std::nullopt;
                  } else if (status.is_ok()) {
                    status = Status::invalid_data(std::string("column '") + f.name +
                                                  "' is null but the record field is not "
                                                  "std::optional");
                  }
                  return;
                }
                out->*(f.member) = detail::read_value<V>(a, row);
              }(),
              ...);
        },
        RecordTraits<T>::fields());
    return status;
  }

 private:
  std::vector<int> indices_;
};

// Appends records as rows and finishes them into batches of record_schema<T>().
template <Record T>
class RowWriter {
 public:
  RowWriter() : schema_(record_schema<T>()) {
    for (const columnar::Field& f : schema_->fields()) {
      builders_.push_back(columnar::make_builder(f.type));
    }
  }
  const columnar::SchemaPtr& schema() const { return schema_; }
  int64_t size() const { return rows_; }

  void append(const T& record) {
    size_t k = 0;
    std::apply(
        [&](auto... f) {
          (
              [&] {
                using M = typename decltype(f)::type;
                using V = typename detail::Unoptional<M>::type;
                columnar::ArrayBuilder* b = builders_[k++].get();
                const M& m = record.*(f.member);
                if constexpr (detail::Unoptional<M>::optional) {
                  if (!m.has_value()) {
                    b->append_null();
                    return;
                  }
                  append_value<V>(b, *m);
                } else {
                  append_value<V>(b, m);
                }
              }(),
              ...);
        },
        RecordTraits<T>::fields());
    ++rows_;
  }

  columnar::RecordBatch finish() {
    std::vector<columnar::Array> cols;
    for (auto& b : builders_) cols.push_back(b->finish());
    int64_t n = rows_;
    rows_ = 0;
    return columnar::RecordBatch::make_unchecked(schema_, std::move(cols), n);
  }

 private:
  template <typename V>
  static void append_value(columnar::ArrayBuilder* b, const V& v) {
    if constexpr (std::is_same_v<V, bool>) {
      static_cast<columnar::BooleanBuilder*>(b)->append(v);
    } else if constexpr (std::is_same_v<V, std::string> || std::is_same_v<V, std::string_view>) {
      static_cast<columnar::BinaryBuilder*>(b)->append(v);
    } else {
      static_cast<columnar::NumericBuilder<V>*>(b)->append(v);
    }
  }
  columnar::SchemaPtr schema_;
  std::vector<std::unique_ptr<columnar::ArrayBuilder>> builders_;
  int64_t rows_ = 0;
};

// Reads every row of a batch (tests, small results). std::string_view members point into the
// batch: keep it alive while the rows are used.
template <Record T>
Result<std::vector<T>> read_rows(const columnar::RecordBatch& batch) {
  RowReader<T> reader;
  SABOT_RETURN_IF_ERROR(reader.bind(batch.schema()));
  std::vector<T> out(static_cast<size_t>(batch.num_rows()));
  for (int64_t r = 0; r < batch.num_rows(); ++r) {
    SABOT_RETURN_IF_ERROR(reader.read(batch, r, &out[static_cast<size_t>(r)]));
  }
  return out;
}

}  // namespace sabot

#define SABOT_RECORD_FIELD_(Type, member) ::sabot::detail::record_field(#member, &Type::member)
#define SABOT_RECORD_EXPAND_(x) x
#define SABOT_RECORD_1_(T, a) SABOT_RECORD_FIELD_(T, a)
#define SABOT_RECORD_2_(T, a, ...) \
  SABOT_RECORD_FIELD_(T, a), SABOT_RECORD_EXPAND_(SABOT_RECORD_1_(T, __VA_ARGS__))
#define SABOT_RECORD_3_(T, a, ...) \
  SABOT_RECORD_FIELD_(T, a), SABOT_RECORD_EXPAND_(SABOT_RECORD_2_(T, __VA_ARGS__))
#define SABOT_RECORD_4_(T, a, ...) \
  SABOT_RECORD_FIELD_(T, a), SABOT_RECORD_EXPAND_(SABOT_RECORD_3_(T, __VA_ARGS__))
#define SABOT_RECORD_5_(T, a, ...) \
  SABOT_RECORD_FIELD_(T, a), SABOT_RECORD_EXPAND_(SABOT_RECORD_4_(T, __VA_ARGS__))
#define SABOT_RECORD_6_(T, a, ...) \
  SABOT_RECORD_FIELD_(T, a), SABOT_RECORD_EXPAND_(SABOT_RECORD_5_(T, __VA_ARGS__))
#define SABOT_RECORD_7_(T, a, ...) \
  SABOT_RECORD_FIELD_(T, a), SABOT_RECORD_EXPAND_(SABOT_RECORD_6_(T, __VA_ARGS__))
#define SABOT_RECORD_8_(T, a, ...) \
  SABOT_RECORD_FIELD_(T, a), SABOT_RECORD_EXPAND_(SABOT_RECORD_7_(T, __VA_ARGS__))
#define SABOT_RECORD_9_(T, a, ...) \
  SABOT_RECORD_FIELD_(T, a), SABOT_RECORD_EXPAND_(SABOT_RECORD_8_(T, __VA_ARGS__))
#define SABOT_RECORD_10_(T, a, ...) \
  SABOT_RECORD_FIELD_(T, a), SABOT_RECORD_EXPAND_(SABOT_RECORD_9_(T, __VA_ARGS__))
#define SABOT_RECORD_11_(T, a, ...) \
  SABOT_RECORD_FIELD_(T, a), SABOT_RECORD_EXPAND_(SABOT_RECORD_10_(T, __VA_ARGS__))
#define SABOT_RECORD_12_(T, a, ...) \
  SABOT_RECORD_FIELD_(T, a), SABOT_RECORD_EXPAND_(SABOT_RECORD_11_(T, __VA_ARGS__))
#define SABOT_RECORD_13_(T, a, ...) \
  SABOT_RECORD_FIELD_(T, a), SABOT_RECORD_EXPAND_(SABOT_RECORD_12_(T, __VA_ARGS__))
#define SABOT_RECORD_14_(T, a, ...) \
  SABOT_RECORD_FIELD_(T, a), SABOT_RECORD_EXPAND_(SABOT_RECORD_13_(T, __VA_ARGS__))
#define SABOT_RECORD_15_(T, a, ...) \
  SABOT_RECORD_FIELD_(T, a), SABOT_RECORD_EXPAND_(SABOT_RECORD_14_(T, __VA_ARGS__))
#define SABOT_RECORD_16_(T, a, ...) \
  SABOT_RECORD_FIELD_(T, a), SABOT_RECORD_EXPAND_(SABOT_RECORD_15_(T, __VA_ARGS__))
#define SABOT_RECORD_PICK_(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, _13, _14, _15, _16, \
                           NAME, ...)                                                             \
  NAME
// SABOT_RECORD(Txn, account, amount, ts): up to 16 members.
#define SABOT_RECORD(Type, ...)                                                                   \
  template <>                                                                                     \
  struct sabot::RecordTraits<Type> {                                                              \
    static constexpr auto fields() {                                                              \
      return std::make_tuple(SABOT_RECORD_EXPAND_(SABOT_RECORD_PICK_(                             \
          __VA_ARGS__, SABOT_RECORD_16_, SABOT_RECORD_15_, SABOT_RECORD_14_, SABOT_RECORD_13_,    \
          SABOT_RECORD_12_, SABOT_RECORD_11_, SABOT_RECORD_10_, SABOT_RECORD_9_, SABOT_RECORD_8_, \
          SABOT_RECORD_7_, SABOT_RECORD_6_, SABOT_RECORD_5_, SABOT_RECORD_4_, SABOT_RECORD_3_,    \
          SABOT_RECORD_2_, SABOT_RECORD_1_)(Type, __VA_ARGS__)));                                 \
    }                                                                                             \
  }
