// The limiter's per-thread state on the hot path: a cache of the counters
// a recent request was charged to (a repeat sender skips path resolution,
// hashing and probing), leases on busy counters (one CAS for many
// messages), and the request's epochs. Included by limiter.cc only.
//
// Thread safety: thread-local by construction; entries are validated on
// use (limiter generation, snapshot, slot key), never trusted.
#ifndef SLUICE_RATELIMIT_INTERNAL_THREAD_CACHE_H_
#define SLUICE_RATELIMIT_INTERNAL_THREAD_CACHE_H_

#include <atomic>
#include <cstdint>

#include "ratelimit/internal/limiter_state.h"
#include "ratelimit/sliding_window.h"

namespace sluice {
namespace internal {

inline std::atomic<uint64_t> g_generation{1};

// The counters a recently seen request was charged to, so a repeat sender
// skips path resolution, hashing and probing. Validated on use: generation
// (limiter), snapshot pointer, and each slot's key.
struct CachedCounter {
  const Rule* rule;
  Slot* slot;
  uint64_t key_word;
};
inline constexpr int kCacheCounters = 8;
struct PathCacheEntry {
  uint64_t key = 0;
  uint64_t generation = 0;
  const void* snapshot = nullptr;
  int n = 0;
  CachedCounter c[kCacheCounters];
};
inline constexpr int kPathCacheSize = 4096;
// static (internal linkage), not inline: the compiler can then use the
// cheapest TLS access (no __tls_get_addr call in position-independent
// code). This header belongs to limiter.cc alone.
static thread_local PathCacheEntry tls_path_cache[kPathCacheSize];

// Units of a counter this thread has taken in advance (one CAS for many
// messages on busy shared counters such as the server's).
struct LeaseEntry {
  uint64_t generation = 0;
  uint64_t key_word = 0;
  Slot* slot = nullptr;
  uint32_t epoch = 0;
  uint64_t remaining = 0;
};
inline constexpr int kLeases = 256;
static thread_local LeaseEntry tls_leases[kLeases];

inline LeaseEntry& LeaseFor(uint64_t key_word) {
  return tls_leases[((key_word >> 16) ^ (key_word >> 40)) & (kLeases - 1)];
}

// The common case of a busy shared counter: spend from this thread's lease.
inline bool SpendLease(uint64_t generation, Slot* slot, uint64_t owner, uint32_t epoch,
                       uint64_t amount) {
  LeaseEntry& l = LeaseFor(owner);
  if (l.key_word == owner && l.generation == generation && l.slot == slot && l.epoch == epoch &&
      l.remaining >= amount) {
    l.remaining -= amount;
    return true;
  }
  return false;
}

// Epochs of the request's time for each sub-bucket length, memoised: a
// 64-bit division costs ~40 cycles and most rules share a window.
class EpochMemo {
 public:
  explicit EpochMemo(int64_t since_ms) : since_ms_(since_ms) {}
  uint32_t Get(uint32_t sub_s) {
    if (sub_s != sub_) {
      sub_ = sub_s;
      epoch_ = SlidingWindow::EpochAt(since_ms_, sub_s);
    }
    return epoch_;
  }

 private:
  int64_t since_ms_;
  uint32_t sub_ = 0;
  uint32_t epoch_ = 0;
};

inline uint64_t RequestKey(const Request& r, bool count_messages) {
  uint64_t mask =
      (count_messages && r.messages ? 1 : 0) | (r.recipients ? 2 : 0) | (r.bytes ? 4 : 0);
  uint64_t h = XXH3_64bits_withSeed(r.sender.data(), r.sender.size(), mask);
  absl::string_view dims[4] = {r.sasl_user, r.client_ip, r.script, r.list};
  for (int i = 0; i < 4; ++i) {
    if (!dims[i].empty()) h ^= Mix64(XXH3_64bits_withSeed(dims[i].data(), dims[i].size(), i + 8));
  }
  return h | 1;
}

}  // namespace internal
}  // namespace sluice

#endif  // SLUICE_RATELIMIT_INTERNAL_THREAD_CACHE_H_
