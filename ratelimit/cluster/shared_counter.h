// SharedCounter: one limit shared by several hosts (a relay farm) through a
// global store (Redis), as one host sees it: the admission rule and its
// bound. ClusterSync (cluster_sync.h) keeps one per shared counter and runs
// the sync loop; RedisStore (redis_store.h) is the store; MemoryStore here
// has the same arithmetic for tests and the simulation.
//
// The rule: a host never asks the store on the request path. It spends a
// lease, units the store has already counted against the limit for this
// host. A lease lives two intervals, so the next one arrives while it is
// still spendable (a slow store delays no request). At each sync (off the
// request path, every `interval` = I, only for counters used since the
// last one) the host, in one atomic store operation per counter (a Lua
// script on Redis; one script call carries many counters):
//   1. gives back what expired leases left unspent (exact: nothing is
//      spent of a lease after its expiry), to the buckets they were charged to;
//   2. counts the units it admitted outside leases (below) in bucket K(now);
//   3. reads the window's usage U = the store's buckets k with
//      K(now) - R < k <= K(now + 2I) + 1, where K(t) = floor(t / s) on unix
//      time, s the sub-bucket length and R = window / s;
//   4. takes a new lease g = min(max(want, ceil(R / 4N)), ceil(R / N)),
//      R = L - U the room left (g = 0 if U >= L), N the number of hosts,
//      charged to bucket K(now + 2I) + 1: far from the limit a host takes
//      at least a quarter of its share of the room (a sender's sudden
//      burst is not deferred while its leases catch up with its rate);
//      near it, leases shrink with the room.
// The host spends a lease until now + 2I and no longer (a late sync leaves
// it refusing, never overspending); of two live leases, the older first.
// `want` adapts to demand: twice what the host spent in the last interval,
// at least min_lease. Each operation carries (host, sequence): a store
// that already applied it answers its first result again, so an answer
// lost on the way is retried without counting anything twice.
//
// Outside leases a host admits in two cases only, each bounded:
//   - first use: before its first answered sync of a counter, a host may
//     admit F = first_lease units on it (so a sender new to this host is
//     not deferred until the next sync);
//   - store down (fallback): when the store has not answered for
//     `fault_ms` (ClusterSync decides; default 50 ms), past its live leases
//     a host admits while its own local window holds at most S units, its
//     share of the limit (S = ceil(L / N), or a configured fraction of L).
// Both are counted in the store at the next answered sync (step 2).
//
// Bound, for any window of length W:
//   - while every sync is answered (no host falls back): all hosts
//     together admit at most L + N * F.
//     Each leased unit was counted before it was spent (step 4 runs before
//     the spending), in a bucket that is in every later sum from the
//     lease's sync until at least W after its last possible use (the bucket
//     starts after now + 2I, and sums reach one bucket past now + 2I), so
//     no sync in that time sees room the unit took; only first-use units
//     are spent before being counted, at most F per host;
//   - across a fault: at most L + N * (S + F) (each host's fallback stops at
//     S of its own window, whatever it admitted before the fault counting
//     towards S); with the default S that is at most 2L + N * F.
// The cost is under-admission: a lease's units count from the sync, before
// they are spent, and unspent ones count until the next sync gives them
// back; a host admits at most its lease per interval.
// `ratelimit/cluster/shared_counter_test.cc` checks both bounds in a
// deterministic simulation over many seeds (2, 3 and 8 hosts, random
// arrivals, all hosts bursting at once, syncs out of phase, late and lost,
// the store down for seconds).
//
// Thread safety: TryAdmit and Refund are thread-safe and lock-free (one
// atomic word each); Prepare/Finish (the sync) are for one thread at a time
// (the sync loop). MemoryStore is thread-safe.
#ifndef SLUICE_RATELIMIT_CLUSTER_SHARED_COUNTER_H_
#define SLUICE_RATELIMIT_CLUSTER_SHARED_COUNTER_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace sluice {

// One counter's store operation (steps 1-4 above), and its answer.
struct SyncOp {
  std::string key;   // the store's key for the counter
  std::string host;  // this host's name in the store (its idempotency key)
  uint64_t seq = 0;  // per counter and host, increasing
  int64_t give_back_bucket[2] = {0, 0};
  uint64_t give_back[2] = {0, 0};  // unspent units of expired leases
  int64_t spent_bucket = 0;
  uint64_t spent = 0;    // admitted outside leases, counted now
  int64_t sum_from = 0;  // the window: buckets k with sum_from < k <= sum_to
  int64_t sum_to = 0;
  int64_t lease_bucket = 0;  // where the new lease is charged (sum_to)
  uint64_t want = 0;         // 0: no new lease, only give back and count
  uint64_t limit = 0;
  int hosts = 1;
  int64_t ttl_ms = 0;  // the key's life after this operation
  // The answer.
  bool answered = false;
  uint64_t granted = 0;
  uint64_t usage = 0;  // U of step 3 (before the new lease)
};

// The global store: runs a batch of operations, each atomic on its key.
// Operations it could not run are left with answered == false.
class ClusterStore {
 public:
  virtual ~ClusterStore() = default;
  virtual void Run(const std::vector<SyncOp*>& ops) = 0;
  // Whether the store answers now (a round with nothing to send asks it).
  virtual bool Ping() { return true; }
  // Prometheus text lines about the store (calls, errors...), or "".
  // Thread-safe.
  virtual std::string MetricsText() const { return ""; }
};

// An in-process store (tests, the simulation): the Redis script's
// arithmetic.
class MemoryStore : public ClusterStore {
 public:
  void Run(const std::vector<SyncOp*>& ops) override;
  bool Ping() override { return !down_.load(std::memory_order_relaxed); }
  // The store's usage of `key` over buckets (from, to].
  uint64_t Sum(const std::string& key, int64_t from, int64_t to) const;
  // Makes the store fail (true) or answer again (false).
  void set_down(bool down) { down_.store(down, std::memory_order_relaxed); }
  // Applies the next operation but loses its answer (a timeout after the
  // store acted), once.
  void LoseNextAnswer() { lose_next_.store(true, std::memory_order_relaxed); }

 private:
  struct Entry {
    std::map<int64_t, uint64_t> buckets;
    std::map<std::string, SyncOp> last;  // per host: its last operation's answer
  };
  mutable std::mutex mu_;
  std::map<std::string, Entry> keys_;  // guarded by mu_
  std::atomic<bool> down_{false};
  std::atomic<bool> lose_next_{false};
};

class alignas(64) SharedCounter {
 public:
  struct Options {
    uint64_t limit = 0;
    int64_t window_ms = 3600 * 1000;
    int64_t sub_bucket_ms = 600 * 1000;  // the store's bucket length (window / 6)
    int64_t interval_ms = 200;           // between syncs
    int hosts = 1;                       // N
    uint64_t min_lease = 1;
    uint64_t first_lease = 0;   // F
    double fallback_share = 0;  // S = ceil(limit * this); 0 = 1 / hosts
    std::string host = "h";     // this host's name in the store
  };
  // Where an admission came from (for Refund).
  struct Admission {
    bool ok = false;
    uint8_t source = 0;  // 0 none, 1/2 lease slot, 3 first use, 4 fallback
    uint16_t lease_id = 0;
  };
  SharedCounter(std::string key, Options options);

  // Admits n units: from a live lease; else on first use (up to F before
  // the first answered sync); else, when `fallback`, while `local_usage`
  // (this host's own window, n included) is at most S. Thread-safe,
  // lock-free.
  Admission TryAdmit(uint64_t n, int64_t now_ms, bool fallback = false,
                     uint64_t local_usage = 0) noexcept;
  // Takes back an admission that did not happen after all (another level
  // refused): into its lease if that lease is still the same, else out of
  // the units not yet counted. Thread-safe, lock-free.
  void Refund(const Admission& a, uint64_t n) noexcept;

  // The sync, around the store's batch (one thread at a time): Prepare
  // fills *op if the counter needs one (used since the last sync, units to
  // give back or to count, or an operation whose answer was lost: then
  // the same operation again) and returns whether it did; Finish applies
  // the answer (an unanswered op is kept for the next Prepare).
  bool Prepare(int64_t now_ms, SyncOp* op);
  void Finish(const SyncOp& op, int64_t now_ms);
  // Prepare, run on `store`, Finish. Returns whether the store answered
  // (true as well when there was nothing to do).
  bool Sync(ClusterStore& store, int64_t now_ms);

  // Units left in live leases at now_ms.
  uint64_t lease_left(int64_t now_ms) const;
  // The window's global usage at the last answered sync, with the lease it
  // took (what the store counts for the counter).
  uint64_t global_usage() const { return global_usage_.load(std::memory_order_relaxed); }
  // Units admitted outside leases not yet counted in the store.
  uint64_t uncounted() const { return unleased_.load(std::memory_order_relaxed); }
  bool synced() const { return synced_.load(std::memory_order_acquire); }
  // Whether the counter was used since the last Prepare.
  bool active() const { return touched_.load(std::memory_order_relaxed); }
  void set_limit(uint64_t limit) { limit_.store(limit, std::memory_order_relaxed); }
  uint64_t limit() const { return limit_.load(std::memory_order_relaxed); }
  const std::string& key() const { return key_; }
  // A host's fallback share S of `limit`: ceil(limit * fraction), or
  // ceil(limit / hosts) when fraction is 0.
  static uint64_t FallbackShare(uint64_t limit, int hosts, double fraction);
  // A caller's tag (ClusterSync: the counter's hash). Set before the
  // counter is published.
  void set_tag(uint64_t tag) { tag_ = tag; }
  uint64_t tag() const { return tag_; }
  const Options& options() const { return options_; }

 private:
  static constexpr uint64_t kLeftMask = (uint64_t{1} << 48) - 1;
  struct Slot {
    // (lease id << 48) | units left; the id tells a refund into the same
    // lease from one into its successor.
    std::atomic<uint64_t> word{0};
    std::atomic<int64_t> expires_ms{0};  // written by Finish before `word`
    int64_t charged_bucket = 0;          // the sync's only
    uint64_t granted = 0;                // the sync's only: nonzero while not reclaimed
    uint64_t to_give_back = 0;           // the sync's only: reclaimed, not yet given back
    uint16_t id = 0;                     // the sync's only
  };
  int64_t Bucket(int64_t t_ms) const { return t_ms / options_.sub_bucket_ms; }
  uint64_t Share() const { return FallbackShare(limit(), options_.hosts, options_.fallback_share); }

  const std::string key_;
  const Options options_;
  uint64_t tag_ = 0;
  std::atomic<uint64_t> limit_;
  Slot slots_[2];
  std::atomic<uint64_t> unleased_{0};    // admitted outside leases, not yet counted
  std::atomic<uint64_t> first_used_{0};  // first-use units admitted
  std::atomic<uint64_t> global_usage_{0};
  std::atomic<bool> synced_{false};
  std::atomic<bool> touched_{false};  // used (or refused) since the last Prepare
  // The sync's only.
  uint64_t last_left_total_ = 0;  // units left after the last sync (demand = what went)
  uint64_t seq_ = 0;
  bool pending_ = false;  // op_ was sent and not answered
  int pending_slot_ = -1;
  int64_t pending_horizon_ = 0;
  SyncOp op_;
};

}  // namespace sluice

#endif  // SLUICE_RATELIMIT_CLUSTER_SHARED_COUNTER_H_
