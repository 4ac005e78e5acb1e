// Sharded<T>: the one sharded, mutex-guarded map layout in sluice. Sixteen
// cache-line-aligned shards, each a T (the caller's map and whatever goes
// with it) plus its own mutex; a key picks its shard by hash. Used where a
// slow path needs a map that many threads touch at once: the limiter's
// names and transactions, the score board, the DNS cache, event dedup.
//
// Thread safety: the shards array itself is immutable after construction;
// a shard's T is guarded by that shard's `mu`, which the caller takes.
#ifndef SLUICE_RATELIMIT_SHARDED_H_
#define SLUICE_RATELIMIT_SHARDED_H_

#include <cstdint>
#include <memory>
#include <mutex>

#include "absl/strings/string_view.h"
#ifndef XXH_INLINE_ALL
#define XXH_INLINE_ALL
#endif
#include <xxhash.h>

namespace sluice {

template <typename T>
class Sharded {
 public:
  static constexpr int kShards = 16;

  // alignas: shards used by different threads do not share cache lines.
  struct alignas(64) Shard : T {
    mutable std::mutex mu;
  };

  // The shard of a hashed key, or of a key hashed here (XXH3).
  Shard& For(uint64_t hash) const { return shards_[hash % kShards]; }
  Shard& For(absl::string_view key) const { return For(XXH3_64bits(key.data(), key.size())); }
  // Shard i, 0 <= i < kShards.
  Shard& at(int i) const { return shards_[i]; }
  // Calls f(shard) for every shard in turn, each under its mutex.
  template <typename F>
  void ForEach(F f) const {
    for (int i = 0; i < kShards; ++i) {
      std::lock_guard<std::mutex> lock(shards_[i].mu);
      f(shards_[i]);
    }
  }

 private:
  std::unique_ptr<Shard[]> shards_{new Shard[kShards]};
};

}  // namespace sluice

#endif  // SLUICE_RATELIMIT_SHARDED_H_
