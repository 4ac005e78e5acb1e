// ScoreBoard: a reputation score per client IP or account that decays over
// time (exponentially, with a configurable half-life) and is fed by what
// sluice sees: DNS list hits, local deny lists, abuse detector trips.
// Thresholds on it map to actions in the policy engine.
//
//   score(t) = score(t0) * 2^-((t - t0) / half_life) + points added since
//
// Memory is bounded: beyond max_keys per shard's share, one key is dropped
// per new one: of the 8 oldest keys, the one with the lowest current score
// (it has the least to say); the other 7 go to the back of the line, so a
// heavy key is not dropped while lighter ones exist. If even that one
// weighs more than the new key, the new key is not kept. Bounded work per
// insert, never a scan of the shard.
//
// Thread safety: all methods are thread-safe (16 shards, a mutex each).
#ifndef SLUICE_REPUTATION_SCORE_BOARD_H_
#define SLUICE_REPUTATION_SCORE_BOARD_H_

#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "ratelimit/sharded.h"

namespace sluice {

class ScoreBoard {
 public:
  struct Options {
    absl::Duration half_life = absl::Hours(1);
    size_t max_keys = 1 << 16;
  };
  ScoreBoard() : ScoreBoard(Options()) {}
  explicit ScoreBoard(Options o);

  // Adds `points` (negative for good signs) to `key`'s decayed score;
  // returns the new score.
  double Add(absl::string_view key, double points, absl::Time now);
  // The decayed score (0 for an unknown key).
  double Get(absl::string_view key, absl::Time now) const;
  size_t size() const;

 private:
  struct Value {
    double score;
    absl::Time at;
  };
  struct Map {
    absl::flat_hash_map<std::string, Value> map;
    std::deque<std::string> order;  // the keys, oldest first (for eviction)
  };
  double Decayed(const Value& v, absl::Time now) const;

  Options options_;
  Sharded<Map> shards_;
};

}  // namespace sluice

#endif  // SLUICE_REPUTATION_SCORE_BOARD_H_
