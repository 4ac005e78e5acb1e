// SharedCounter: one limit shared by several hosts (a relay farm) through a
// global store (Redis), as one host sees it. The first piece of the cluster
// sync (issue 19): the admission rule and its bound, with an in-memory
// store for tests and the simulation; the Redis store comes next.
//
// The rule: a host never asks the store on the request path. It spends a
// lease, units the store has already counted against the limit for this
// host. A lease lives two intervals, so the next one arrives while it is
// still spendable (a slow store delays no request). At each sync (off the
// request path, every `interval` = I) the host, in one atomic store
// operation (a Lua script on Redis):
//   1. gives back what an expired lease left unspent (exact: nothing is
//      spent of a lease after its expiry), to the bucket it was charged to;
//   2. reads the window's usage U = the store's buckets k with
//      K(now) - R < k <= K(now + 2I) + 1, where K(t) = floor(t / s),
//      s the sub-bucket length and R = window / s;
//   3. takes a new lease g = min(want, ceil((L - U) / hosts)) (0 if U >= L)
//      and charges it to bucket K(now + 2I) + 1.
// The host spends a lease until now + 2I and no longer (a late sync leaves
// it refusing, never overspending); of two live leases, the older first.
//
// Bound (while the store answers): in any window of length W, the units
// all hosts admit are at most L. Each admitted unit was counted by the
// store before it was admitted (step 3 runs before the spending), in a
// bucket that is in every later sum from the lease's sync until at least W
// after its last possible use (the bucket starts after now + 2I, and sums
// reach one bucket past now + 2I), so no sync in that time sees room the
// unit took. The cost is under-admission: a lease's units count
// from the sync, before they are spent, and unspent ones count until the
// next sync gives them back; a host admits at most its lease per interval
// (want adapts: twice what it spent in the last interval, at least
// min_lease). `ratelimit/cluster/shared_counter_test.cc` checks the bound
// in a deterministic simulation over many seeds (2, 3 and 8 hosts, random
// arrivals, all hosts bursting at once, syncs out of phase and late).
//
// Thread safety: TryAdmit is thread-safe and lock-free (one atomic word);
// Sync is for one thread at a time (the sync loop). MemoryStore is
// thread-safe.
#ifndef SLUICE_RATELIMIT_CLUSTER_SHARED_COUNTER_H_
#define SLUICE_RATELIMIT_CLUSTER_SHARED_COUNTER_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace sluice {

// The global store's one operation (see above), atomic per key.
class ClusterStore {
 public:
  struct Lease {
    int64_t give_back_bucket = 0;  // where the previous lease was charged
    uint64_t give_back = 0;        // its unspent units
    int64_t sum_from = 0;          // buckets k with sum_from < k <= sum_to
    int64_t sum_to = 0;
    int64_t charge_bucket = 0;  // where the new lease is charged
    uint64_t want = 0;
    uint64_t limit = 0;
    int hosts = 1;
  };
  virtual ~ClusterStore() = default;
  // Returns the units granted (0..want). False if the store did not answer.
  virtual bool ReturnAndLease(const std::string& key, const Lease& request, uint64_t* granted) = 0;
};

// An in-process store (tests, the simulation): the same arithmetic as the
// Redis script.
class MemoryStore : public ClusterStore {
 public:
  bool ReturnAndLease(const std::string& key, const Lease& request, uint64_t* granted) override;
  // The store's usage of `key` over buckets (from, to].
  uint64_t Sum(const std::string& key, int64_t from, int64_t to) const;
  // Makes the store fail (true) or answer again (false).
  void set_down(bool down) { down_.store(down, std::memory_order_relaxed); }

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::map<int64_t, uint64_t>> buckets_;  // guarded by mu_
  std::atomic<bool> down_{false};
};

class SharedCounter {
 public:
  struct Options {
    uint64_t limit = 0;
    int64_t window_ms = 3600 * 1000;
    int64_t sub_bucket_ms = 600 * 1000;  // the store's bucket length (window / 6)
    int64_t interval_ms = 200;           // between syncs
    uint64_t min_lease = 1;
  };
  SharedCounter(std::string key, Options options);

  // Spends n units of a live lease if one holds them. Thread-safe,
  // lock-free.
  bool TryAdmit(uint64_t n, int64_t now_ms) noexcept;
  // Gives back what expired leases left and takes a new lease. False if
  // the store did not answer (live leases stay, to their expiry; nothing is
  // given back twice). One thread at a time.
  bool Sync(ClusterStore& store, int hosts, int64_t now_ms);

  // Units left in live leases at now_ms.
  uint64_t lease_left(int64_t now_ms) const;

 private:
  struct Slot {
    std::atomic<uint64_t> left{0};
    std::atomic<int64_t> expires_ms{0};  // written by Sync before `left`
    int64_t charged_bucket = 0;          // Sync's only
    uint64_t granted = 0;                // Sync's only
    uint64_t to_give_back = 0;           // Sync's only: reclaimed, not yet given back
  };
  int64_t Bucket(int64_t t_ms) const { return t_ms / options_.sub_bucket_ms; }

  const std::string key_;
  const Options options_;
  Slot slots_[2];
  uint64_t last_left_total_ = 0;  // units left after the last sync (demand = what went)
};

}  // namespace sluice

#endif  // SLUICE_RATELIMIT_CLUSTER_SHARED_COUNTER_H_
