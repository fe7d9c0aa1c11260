// The Nexmark event generator (docs: /work/shared/spec/NEXMARK.md, "Generator" and "Schemas"):
// Person, Auction and Bid events as columnar batches, deterministic and splittable. The
// randomness of event n depends only on (seed, n), so any split of [0, events) into slices yields
// the same events. generate() writes fresh column buffers through raw pointers, reserved once per
// batch. A Generator is not thread-safe (one per thread); the sources share only immutable tables
// and may be read by several subtasks at once.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sabot/base/status.h"
#include "sabot/columnar/builder.h"  // kept for includers that rely on it
#include "sabot/columnar/record_batch.h"
#include "sabot/runtime/source.h"

namespace sabot::nexmark {

struct GeneratorConfig {
  int64_t events = 1'000'000;  // total number of events (all kinds) of a source
  int64_t rate = 10'000'000;   // events per second of event time
  uint64_t seed = 0;           // same seed and parameters, same events
  int64_t base_time_ms = 0;    // event time of event 0
};

// The fixed rotation of 50 events: 1 person, 3 auctions, 46 bids.
inline constexpr int64_t kPersonProportion = 1;
inline constexpr int64_t kAuctionProportion = 3;
inline constexpr int64_t kBidProportion = 46;
inline constexpr int64_t kTotalProportion = 50;
inline constexpr int64_t kFirstPersonId = 1000;
inline constexpr int64_t kFirstAuctionId = 1000;
inline constexpr int64_t kFirstCategoryId = 10;
inline constexpr int64_t kNumCategories = 5;

enum class EventKind : uint8_t { kPerson, kAuction, kBid };

inline EventKind event_kind(int64_t n) {
  int64_t offset = n % kTotalProportion;
  if (offset < kPersonProportion) return EventKind::kPerson;
  if (offset < kPersonProportion + kAuctionProportion) return EventKind::kAuction;
  return EventKind::kBid;
}

// Event time of event n in milliseconds: base_time + n * 1e6 / rate microseconds, truncated.
int64_t event_time_ms(const GeneratorConfig& config, int64_t n);
// Base-0 id of the last person / auction created at or before event n (as the Java generator:
// before the first auction event of a rotation, the previous rotation's last auction).
int64_t last_base0_person_id(int64_t n);
int64_t last_base0_auction_id(int64_t n);

columnar::SchemaPtr person_schema();
columnar::SchemaPtr auction_schema();
columnar::SchemaPtr bid_schema();

// Which kinds generate() builds (the others come back as empty batches).
enum Kinds : uint8_t { kPersons = 1, kAuctions = 2, kBids = 4, kAllKinds = 7 };

struct EventBatches {
  columnar::RecordBatch persons;
  columnar::RecordBatch auctions;
  columnar::RecordBatch bids;
};

// Immutable tables shared by generators of one seed (the per-channel urls, the hot urls).
struct ChannelTables;

class Generator {
 public:
  explicit Generator(GeneratorConfig config);
  // Shares the tables of another generator with the same seed (cheap to construct).
  Generator(GeneratorConfig config, std::shared_ptr<const ChannelTables> tables);

  const GeneratorConfig& config() const { return config_; }
  const std::shared_ptr<const ChannelTables>& tables() const { return tables_; }

  // The events numbered [first, last), in event order, split by kind. Fails on a bad range and on
  // one too large for a batch's 32-bit string offsets (over about 60 M events).
  Result<EventBatches> generate(int64_t first, int64_t last, uint8_t kinds = kAllKinds);

 private:
  GeneratorConfig config_;
  std::shared_ptr<const ChannelTables> tables_;
};

// Sources over [0, config.events): the events are dealt to the k splits in chunks of 4096, round
// robin (chunk c to split c % k), so that subtasks advance through event time together; a reader
// reads its chunks in event order. Batches hold about max_rows rows of the source's kind and never
// span two chunks; SourcePoll::split is set. No watermark is emitted (use the job's watermark
// strategy: date_time - 4 s).
std::shared_ptr<const runtime::Source> bids_source(const GeneratorConfig& config, int num_splits);
std::shared_ptr<const runtime::Source> people_source(const GeneratorConfig& config, int num_splits);
std::shared_ptr<const runtime::Source> auctions_source(const GeneratorConfig& config,
                                                       int num_splits);

}  // namespace sabot::nexmark
