// The limiter's per-thread state on the hot path: a cache of the counters
// a recent request was charged to (a repeat sender skips path resolution,
// hashing and probing), leases on busy counters (one CAS for many
// messages), and the sub-bucket of the time (no division per request). Included by limiter.cc only.
//
// Thread safety: thread-local by construction; entries are validated on
// use (limiter generation, snapshot, slot key), never trusted.
//
// Memory: the caches of a thread (ThreadCache, ~1.9 MiB) are one anonymous
// mapping made at the thread's first request and unmapped at its exit. Its
// pages are zero until touched, so a thread or process that sends a few
// messages (an Exim process per connection, a milter thread per
// connection, a C ABI caller's thread) touches a few pages of it, not all:
// as static thread-local arrays they were zeroed by the C library for
// every new thread (and at the first request in a dlopen'ed module).
#ifndef SLUICE_RATELIMIT_INTERNAL_THREAD_CACHE_H_
#define SLUICE_RATELIMIT_INTERNAL_THREAD_CACHE_H_

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <type_traits>

#include "absl/base/attributes.h"
#include "absl/base/optimization.h"
#include "absl/container/flat_hash_set.h"
#include "ratelimit/counter_table.h"
#include "ratelimit/gcra.h"
#include "ratelimit/internal/limiter_state.h"
#include "ratelimit/sliding_window.h"

namespace sluice {
namespace internal {

inline std::atomic<uint64_t> g_generation{1};

// The counters a recently seen request was charged to, so a repeat sender
// skips path resolution, hashing and probing. Validated on use: generation
// (limiter), snapshot pointer, and each slot's key (or its lease's stamp).
struct CachedCounter {
  const Rule* rule;
  Slot* slot;
  uint64_t key_word;
};
inline constexpr int kCacheCounters = 8;
inline constexpr uint16_t kNoLease = 0xffff;  // PathCacheEntry::lease: the rule takes none
// The per-thread tables below are trivially constructible (no member
// initialisers: a new ThreadCache mapping starts zeroed).
//
// Laid out so that a repeat whose counters are all spent from leases (the
// common case) reads the entry's first two cache lines only: the header,
// then per counter its metric, lease entry and stamp; the rest is read
// when a counter is charged itself.
struct alignas(64) PathCacheEntry {
  // (Its request key is in ThreadCache::path_keys.)
  uint64_t generation;
  const void* snapshot;
  // Each counter's sub-bucket (epoch below) is right while the table's
  // clock is in [epochs_from_us, epochs_until_us): a repeat request reads
  // them instead of working out one per counter (RefreshEpochs moves them
  // on). An empty range when filled.
  int64_t epochs_from_us;
  int64_t epochs_until_us;
  int32_t n;
  uint8_t metric[kCacheCounters];  // each counter's rule's Metric, as an index
  // Each counter's lease entry in this thread's table (LeaseIndex), or
  // kNoLease.
  uint16_t lease[kCacheCounters];
  // Each counter's lease entry's stamp (LeaseEntry::stamp) when this path
  // last took units from it at the current sub-bucket: while the entry
  // keeps that stamp it is still this counter's lease of this sub-bucket,
  // so a repeat spends from it after one comparison. 0: not known (filled,
  // or the sub-buckets moved on): the first spend checks the entry in full.
  uint64_t stamp[kCacheCounters];
  // Each counter's sub-bucket (a window's, or GCRA's lease epoch).
  uint32_t epoch[kCacheCounters];
  CachedCounter c[kCacheCounters];
};
static_assert(offsetof(PathCacheEntry, stamp) + 5 * sizeof(uint64_t) <= 128,
              "a five-level path's hot fields fit in two cache lines");
// Two-way set associative: two senders whose keys share a set both stay
// (a direct-mapped cache let two alternating senders evict each other on
// every request: 11% of a 1K hot set's requests took the slow path).
inline constexpr int kPathCacheSets = 2048;
// Requests seen once (their keys): a request gets a path entry at its
// second sighting, so a flood of one-off senders churns only this array.
inline constexpr int kSeenKeys = 8192;

// Units of a counter this thread has taken in advance (one CAS for many
// messages on busy shared counters such as the server's). Written only by
// the owning thread; reports read other threads' entries (to show admitted
// counts, not leased ones), so the fields are atomics, all relaxed: a
// report may be a unit off while a lease changes hands, never more.
// The last stamp this thread gave one of its lease entries.
static thread_local uint64_t tls_lease_stamp;
struct alignas(64) LeaseEntry {  // zeroed: a new ThreadCache (no initialisers)
  // A number new (per thread) whenever the entry's counter or sub-bucket
  // changes (Set, Stamp): equal stamps mean the same counter, slot,
  // limiter generation and sub-bucket (PathCacheEntry::stamp). Read and
  // written by the owning thread only, so a plain field. First, beside
  // `remaining`: a cached path's spend reads these two only.
  uint64_t stamp;
  std::atomic<uint64_t> remaining;
  std::atomic<uint64_t> generation;
  std::atomic<uint64_t> key_word;
  std::atomic<Slot*> slot;
  std::atomic<uint32_t> epoch;  // sub-bucket (window) or GCRA's lease epoch
  std::atomic<int64_t> gcra_t;  // GCRA: the emission interval (us); 0: a sliding window

  void Stamp() noexcept { stamp = ++tls_lease_stamp; }
  void Set(uint64_t g, uint64_t k, Slot* s, uint32_t e, uint64_t r, int64_t t) noexcept {
    Stamp();
    generation.store(g, std::memory_order_relaxed);
    key_word.store(k, std::memory_order_relaxed);
    slot.store(s, std::memory_order_relaxed);
    epoch.store(e, std::memory_order_relaxed);
    remaining.store(r, std::memory_order_relaxed);
    gcra_t.store(t, std::memory_order_relaxed);
  }
  // Returns the unspent units to the counter (if it still has them).
  void GiveBack() noexcept {
    const uint64_t r = remaining.load(std::memory_order_relaxed);
    Slot* s = slot.load(std::memory_order_relaxed);
    if (r == 0 || s == nullptr) return;
    if (CounterTable::StillOwns(s, key_word.load(std::memory_order_relaxed))) {
      const int64_t t = gcra_t.load(std::memory_order_relaxed);
      if (t > 0) {
        // Moves the arrival time back by the unspent units (no clock here:
        // a time already past counts as idle, as the clock would clamp it).
        Gcra::Remove(*s, 0, static_cast<int64_t>(r) * t);
      } else {
        SlidingWindow::Remove(*s, epoch.load(std::memory_order_relaxed), r);
      }
    }
    remaining.store(0, std::memory_order_relaxed);
  }
};
inline constexpr int kLeases = 4096;

// A thread's caches, in one mapping (see the top of this file). The keys
// first and apart from the entries: a lookup that misses (most requests of
// a large uniform population) reads one line of a 32 KiB array, not two
// entries.
struct ThreadCache {
  uint64_t path_keys[kPathCacheSets][2];  // each entry's request key (0: empty)
  uint8_t path_recent[kPathCacheSets];    // the way hit or filled last
  uint64_t seen[kSeenKeys];
  PathCacheEntry path_cache[kPathCacheSets][2];
  LeaseEntry leases[kLeases];
};
static_assert(std::is_trivially_default_constructible<ThreadCache>::value &&
                  std::is_trivially_destructible<ThreadCache>::value,
              "a zeroed mapping is a ThreadCache");

// This thread's caches, null before its first request. static (internal
// linkage): the cheapest TLS access, no __tls_get_addr call in
// position-independent code; this header belongs to limiter.cc alone. The
// functions that read it are static too, so no other file's copy of them
// (the hot path test includes this header) can stand in for limiter.cc's.
static thread_local ThreadCache* tls_cache;

// Unmaps the thread's caches at its exit, after the lease guard (made
// later, so destroyed first) gave its leases back.
struct ThreadCacheOwner {
  ThreadCache* cache = nullptr;
  ~ThreadCacheOwner() {
    if (tls_cache == cache) tls_cache = nullptr;
    if (cache != nullptr) munmap(cache, sizeof(ThreadCache));
  }
};

// Maps this thread's caches (its first request). A thread that uses a
// limiter again from a thread-exit destructor after its caches went gets
// a new mapping, not unmapped at exit (no owner is made twice).
ABSL_ATTRIBUTE_NOINLINE static ThreadCache* NewThreadCache() noexcept {
  void* p = mmap(nullptr, sizeof(ThreadCache), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                 -1, 0);
  if (p == MAP_FAILED) {  // as the C library does when it cannot map thread storage
    std::fputs("sluice: cannot map the limiter's per-thread caches\n", stderr);
    std::abort();
  }
  static thread_local ThreadCacheOwner owner;
  if (owner.cache == nullptr) owner.cache = static_cast<ThreadCache*>(p);
  tls_cache = static_cast<ThreadCache*>(p);
  return tls_cache;
}

// This thread's caches (mapped at its first request).
static inline ThreadCache& Cache() noexcept {
  ThreadCache* tc = tls_cache;
  if (ABSL_PREDICT_FALSE(tc == nullptr)) tc = NewThreadCache();
  return *tc;
}

inline size_t PathSet(uint64_t key) { return key & (kPathCacheSets - 1); }

// The cached path of a request key, or null.
inline PathCacheEntry* FindPath(ThreadCache& tc, uint64_t key) noexcept {
  const size_t set = PathSet(key);
  const uint64_t* keys = tc.path_keys[set];
  PathCacheEntry* const ways = tc.path_cache[set];
  if (keys[0] == key) {
    tc.path_recent[set] = 0;
    return ways;
  }
  if (keys[1] != key) return nullptr;
  tc.path_recent[set] = 1;
  return ways + 1;
}

// The entry to fill with a request's path (now keyed by it): its own, or
// at its second sighting the set's least recently used way; null at a
// first sighting.
inline PathCacheEntry* PathToFill(ThreadCache& tc, uint64_t key) noexcept {
  const size_t set = PathSet(key);
  uint64_t* keys = tc.path_keys[set];
  if (keys[0] == key) return &tc.path_cache[set][0];
  if (keys[1] == key) return &tc.path_cache[set][1];
  uint64_t& seen = tc.seen[(key >> 11) & (kSeenKeys - 1)];
  if (seen != key) {
    seen = key;
    return nullptr;
  }
  const int way = tc.path_recent[set] ^ 1;
  tc.path_recent[set] = static_cast<uint8_t>(way);
  keys[way] = key;
  return &tc.path_cache[set][way];
}

inline size_t LeaseIndex(uint64_t key_word) {
  return ((key_word >> 16) ^ (key_word >> 40)) & (kLeases - 1);
}
static_assert(kLeases <= kNoLease, "a lease index fits PathCacheEntry::lease");
static inline LeaseEntry& LeaseFor(uint64_t key_word) {
  return Cache().leases[LeaseIndex(key_word)];
}

// The common case of a busy counter on a cached path: spend from this
// thread's lease entry `l` of it, if the entry still has the stamp the path
// saw (the same counter and sub-bucket) and enough units.
inline bool SpendLease(LeaseEntry& l, uint64_t stamp, uint64_t amount) {
  const uint64_t left = l.remaining.load(std::memory_order_relaxed);
  if (l.stamp == stamp && left >= amount) {
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
  LeaseEntry* leases;  // the thread's ThreadCache::leases
  explicit LeaseTableGuard(LeaseEntry* table) : leases(table) {
    LeaseRegistry& r = LeaseRegistry::Get();
    std::lock_guard<std::mutex> lock(r.mu);
    r.tables.insert(leases);
  }
  ~LeaseTableGuard() {
    LeaseRegistry& r = LeaseRegistry::Get();
    std::lock_guard<std::mutex> lock(r.mu);
    for (int i = 0; i < kLeases; ++i) {
      LeaseEntry& e = leases[i];
      if (r.live.contains(e.generation.load(std::memory_order_relaxed))) e.GiveBack();
    }
    r.tables.erase(leases);
  }
};

// The sub-bucket of a time (ms since a table's base) for a sub-bucket
// length: SlidingWindow::EpochAt, memoised per thread. A 64-bit division
// costs ~40 cycles, and consecutive requests nearly always fall in the
// same sub-bucket. A pure function of its arguments, so one memo serves
// every limiter and table.
struct EpochSpan {  // zeroed: thread storage
  uint32_t sub_s;
  uint32_t epoch;
  int64_t start_ms;  // the sub-bucket's [start, end)
  int64_t end_ms;
};
static thread_local EpochSpan tls_epochs[8];

inline uint32_t EpochFor(int64_t since_ms, uint32_t sub_s) noexcept {
  if (since_ms < 0) since_ms = 0;  // as EpochAt
  EpochSpan& e = tls_epochs[sub_s & 7];
  if (e.sub_s == sub_s && since_ms >= e.start_ms && since_ms < e.end_ms) return e.epoch;
  const int64_t sub_ms = int64_t{sub_s} * 1000;
  const int64_t q = since_ms / sub_ms;
  e.sub_s = sub_s;
  e.epoch = static_cast<uint32_t>(q) & SlidingWindow::kEpochMask;
  e.start_ms = q * sub_ms;
  e.end_ms = e.start_ms + sub_ms;
  return e.epoch;
}

// The request's sub-bucket per window length, for one request: rules
// mostly share one length, so EpochFor runs once or twice.
class EpochMemo {
 public:
  explicit EpochMemo(int64_t since_ms) : since_ms_(since_ms) {}
  uint32_t Get(uint32_t sub_s) noexcept {
    if (sub_s != sub_s_) {
      sub_s_ = sub_s;
      epoch_ = EpochFor(since_ms_, sub_s);
    }
    return epoch_;
  }

 private:
  int64_t since_ms_;
  uint32_t sub_s_ = 0;
  uint32_t epoch_ = 0;
};

// Works out a cached path's sub-buckets for the table's clock `since_us`
// and the span of that clock over which they hold (none before the
// table's base, where the time is clamped as EpochAt does).
inline void RefreshEpochs(PathCacheEntry* ce, int64_t since_us) noexcept {
  const int64_t t = since_us < 0 ? 0 : since_us;
  int64_t from = 0;
  int64_t until = INT64_MAX;
  for (int k = 0; k < ce->n; ++k) {
    const Rule& rule = *ce->c[k].rule;
    int64_t start;
    int64_t span;
    if (rule.gcra) {
      ce->epoch[k] = GcraLeaseEpoch(t);
      span = int64_t{1} << kGcraLeaseShift;
      start = t & ~(span - 1);
    } else {
      span = int64_t{rule.sub_s} * 1000 * 1000;
      // As EpochAt on whole milliseconds: the same sub-bucket.
      const int64_t q = t / span;
      ce->epoch[k] = static_cast<uint32_t>(q) & SlidingWindow::kEpochMask;
      start = q * span;
    }
    from = std::max(from, start);
    until = std::min(until, start + span);
  }
  if (since_us < 0) from = until = 0;          // an empty span: worked out each time
  std::fill(ce->stamp, ce->stamp + ce->n, 0);  // leases of the old sub-buckets
  ce->epochs_from_us = from;
  ce->epochs_until_us = until;
}

inline uint64_t RequestKey(const Request& r, bool count_messages) {
  const uint64_t mask = uint64_t{count_messages && r.messages != 0} |
                        uint64_t{r.recipients != 0} << 1 | uint64_t{r.bytes != 0} << 2 |
                        uint64_t{r.inbound} << 3;
  uint64_t h = XXH3_64bits_withSeed(r.sender.data(), r.sender.size(), mask);
  // (One test of the four lengths, not four branches.)
  if ((r.sasl_user.size() | r.client_ip.size() | r.script.size() | r.list.size()) == 0) {
    return h | 1;  // the common case: the sender alone
  }
  absl::string_view dims[4] = {r.sasl_user, r.client_ip, r.script, r.list};
  for (int i = 0; i < 4; ++i) {
    if (!dims[i].empty()) h ^= Mix64(XXH3_64bits_withSeed(dims[i].data(), dims[i].size(), i + 8));
  }
  return h | 1;
}

}  // namespace internal
}  // namespace sluice

#endif  // SLUICE_RATELIMIT_INTERNAL_THREAD_CACHE_H_
