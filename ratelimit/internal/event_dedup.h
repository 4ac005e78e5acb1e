// EventDedup: lets one event per key and window through (the limiter's and
// the abuse detectors' "one event per entity, rule and window").
//
// Thread safety: thread-safe (one small mutex per shard; used only when a
// rule trips, never on an admitted request).
#ifndef SLUICE_RATELIMIT_INTERNAL_EVENT_DEDUP_H_
#define SLUICE_RATELIMIT_INTERNAL_EVENT_DEDUP_H_

#include <cstdint>
#include <mutex>

#include "absl/container/flat_hash_map.h"

namespace sluice {
namespace internal {

class EventDedup {
 public:
  // Returns true the first time `key` is seen in window `window_index`
  // (and remembers it). Memory is bounded: a shard that grows past
  // kMaxPerShard keys forgets them all (a repeat event is possible then,
  // never a lost first one).
  bool First(uint64_t key, int64_t window_index) {
    Shard& shard = shards_[key % kShards];
    std::lock_guard<std::mutex> lock(shard.mu);
    auto [it, inserted] = shard.last.try_emplace(key, window_index);
    if (!inserted) {
      if (it->second == window_index) return false;
      it->second = window_index;
    }
    if (shard.last.size() > kMaxPerShard) shard.last.clear();
    return true;
  }

 private:
  static constexpr int kShards = 16;
  static constexpr size_t kMaxPerShard = 4096;
  struct Shard {
    std::mutex mu;
    absl::flat_hash_map<uint64_t, int64_t> last;
  };
  Shard shards_[kShards];
};

}  // namespace internal
}  // namespace sluice

#endif  // SLUICE_RATELIMIT_INTERNAL_EVENT_DEDUP_H_
