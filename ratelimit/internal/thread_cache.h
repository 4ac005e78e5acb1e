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
#include <mutex>

#include "absl/container/flat_hash_set.h"
#include "ratelimit/counter_table.h"
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
// messages on busy shared counters such as the server's). Written only by
// the owning thread; reports read other threads' entries (to show admitted
// counts, not leased ones), so the fields are atomics, all relaxed: a
// report may be a unit off while a lease changes hands, never more.
struct LeaseEntry {
  std::atomic<uint64_t> generation{0};
  std::atomic<uint64_t> key_word{0};
  std::atomic<Slot*> slot{nullptr};
  std::atomic<uint32_t> epoch{0};
  std::atomic<uint64_t> remaining{0};

  void Set(uint64_t g, uint64_t k, Slot* s, uint32_t e, uint64_t r) noexcept {
    generation.store(g, std::memory_order_relaxed);
    key_word.store(k, std::memory_order_relaxed);
    slot.store(s, std::memory_order_relaxed);
    epoch.store(e, std::memory_order_relaxed);
    remaining.store(r, std::memory_order_relaxed);
  }
  // Returns the unspent units to the counter (if it still has them).
  void GiveBack() noexcept {
    const uint64_t r = remaining.load(std::memory_order_relaxed);
    Slot* s = slot.load(std::memory_order_relaxed);
    if (r == 0 || s == nullptr) return;
    if (CounterTable::StillOwns(s, key_word.load(std::memory_order_relaxed))) {
      SlidingWindow::Remove(*s, epoch.load(std::memory_order_relaxed), r);
    }
    remaining.store(0, std::memory_order_relaxed);
  }
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
  const uint64_t left = l.remaining.load(std::memory_order_relaxed);
  if (l.key_word.load(std::memory_order_relaxed) == owner &&
      l.generation.load(std::memory_order_relaxed) == generation &&
      l.slot.load(std::memory_order_relaxed) == slot &&
      l.epoch.load(std::memory_order_relaxed) == epoch && left >= amount) {
    l.remaining.store(left - amount, std::memory_order_relaxed);
    return true;
  }
  return false;
}

// Every thread's lease table and every live limiter of this process. A
// thread registers its table when it first takes a lease; at its exit it
// gives back its leases of the limiters still alive (a limiter's
// destruction takes the same mutex, so its table is still mapped then).
// Reports sum the units other threads hold (LeasedUnits). Never destroyed:
// threads may exit after main returns.
struct LeaseRegistry {
  std::mutex mu;
  absl::flat_hash_set<LeaseEntry*> tables;  // guarded by mu
  absl::flat_hash_set<uint64_t> live;       // generations; guarded by mu
  static LeaseRegistry& Get() {
    static LeaseRegistry* r = new LeaseRegistry;
    return *r;
  }
};

// One per thread that ever took a lease (a function-local thread_local in
// the lease path, so the hot path pays no TLS guard).
struct LeaseTableGuard {
  LeaseTableGuard() {
    LeaseRegistry& r = LeaseRegistry::Get();
    std::lock_guard<std::mutex> lock(r.mu);
    r.tables.insert(tls_leases);
  }
  ~LeaseTableGuard() {
    LeaseRegistry& r = LeaseRegistry::Get();
    std::lock_guard<std::mutex> lock(r.mu);
    for (LeaseEntry& e : tls_leases) {
      if (r.live.contains(e.generation.load(std::memory_order_relaxed))) e.GiveBack();
    }
    r.tables.erase(tls_leases);
  }
};

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
  uint64_t mask = (count_messages && r.messages ? 1 : 0) | (r.recipients ? 2 : 0) |
                  (r.bytes ? 4 : 0) | (r.inbound ? 8 : 0);
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
