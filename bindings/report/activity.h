// Activity: what a daemon (or a replay) remembers for `sluice report`:
// messages, recipients and bytes per hour of every entity a message was
// charged to (server, plan, subscription, domain, mailbox, client IP, SASL
// user, script, list), for a bounded history, and the trips (notices).
//
// The engine records a message that passed its end of data (an MTA that
// never reports the end, such as a policy service asked only at RCPT,
// leaves its messages out of the hourly figures; the limits still count
// them). A live door sees only messages its rules let through that far;
// a replay plays every message of the log to its end, so there the
// figures are the log's traffic, which the report draws against the
// limits. Memory is bounded: at most max_entities entities (beyond that a
// new entity is counted under "(other)" of its level), hours older than
// the history are dropped by Sweep, and at most max_trips trips are kept
// (the oldest go first). Per entity the hours are stored sparsely (only
// hours with traffic), about 100 bytes plus 32 per active hour.
//
// Snapshot turns it into a config::ActivityReport: per level the heaviest
// entities (by messages over the history), each with one value per hour.
//
// Thread safety: all methods are thread-safe (sharded mutexes; Record
// takes one shard's mutex and allocates only for a new entity or hour).
#ifndef SLUICE_BINDINGS_REPORT_ACTIVITY_H_
#define SLUICE_BINDINGS_REPORT_ACTIVITY_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "bindings/engine/smtp_event.h"
#include "ratelimit/config.pb.h"
#include "ratelimit/sharded.h"
#include "ratelimit/types.h"

namespace sluice {

class Activity {
 public:
  struct Options {
    absl::Duration history = absl::Hours(48);
    size_t max_entities = 20000;
    size_t max_trips = 10000;
  };
  // The options of a config's `report` section (defaults where unset).
  // REQUIRES: the config passed ValidateConfig.
  static Options FromConfig(const config::Config& config);

  explicit Activity(Options options);
  Activity(const Activity&) = delete;
  Activity& operator=(const Activity&) = delete;

  // Changes the history and the caps (a reload). Entities already
  // remembered stay until Sweep finds them idle. Thread-safe.
  void Configure(Options options);

  // One entity of a message's path: level and name.
  using PathEntity = std::pair<Level, absl::string_view>;
  // Records one message charged to `path` (the chain from the server down,
  // then the extra dimensions, as Limiter::WithPath lists them): each
  // entity's parent for the drill-down is the chain entity above it.
  // Thread-safe.
  void Record(absl::Span<const PathEntity> path, uint64_t messages, uint64_t recipients,
              uint64_t bytes, absl::Time now);
  // Records a trip. Thread-safe.
  void RecordTrip(const Notice& notice);

  // The report of the last `history` hours up to `now`: per level the
  // `per_level` entities with the most messages (ties by name), the
  // rest counted in entities_left_out; the most recent `max_trips` trips
  // (oldest first). Rules are not filled in (the engine adds them).
  // Thread-safe.
  config::ActivityReport Snapshot(absl::Time now, size_t per_level) const;

  // Drops hours older than the history and entities with none left.
  // Thread-safe.
  void Sweep(absl::Time now);

  size_t entities() const { return entities_.load(std::memory_order_relaxed); }

 private:
  struct Hour {
    int64_t hour;  // unix seconds / 3600
    uint64_t messages;
    uint64_t recipients;
    uint64_t bytes;
  };
  struct Entity {
    Level parent_level = Level::kServer;
    std::string parent;  // "" for none
    std::deque<Hour> hours;
  };
  struct Map {
    // Key: level byte + name.
    absl::flat_hash_map<std::string, Entity> map;
  };

  void Add(Level level, absl::string_view name, Level parent_level, absl::string_view parent,
           int64_t hour, uint64_t messages, uint64_t recipients, uint64_t bytes);
  int64_t history_hours() const { return history_hours_.load(std::memory_order_relaxed); }

  // relaxed: settings and the entity count are advisory bounds.
  std::atomic<int64_t> history_hours_;
  std::atomic<size_t> max_entities_;
  std::atomic<size_t> max_trips_;
  std::atomic<size_t> entities_{0};
  std::atomic<uint64_t> over_cap_{0};  // messages of entities beyond the cap
  Sharded<Map> shards_;

  mutable std::mutex trips_mu_;
  std::deque<config::NoticeRecord> trips_;  // guarded by trips_mu_
  uint64_t trips_dropped_ = 0;              // guarded by trips_mu_
};

}  // namespace sluice

#endif  // SLUICE_BINDINGS_REPORT_ACTIVITY_H_
