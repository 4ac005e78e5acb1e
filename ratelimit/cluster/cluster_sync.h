// ClusterSync: the limiter's shared view (Limiter::Options::shared) for a
// host of a farm. It keeps one SharedCounter (shared_counter.h: the rule
// and its bound) per shared rule and entity this host has charged, and a
// sync loop on its own thread that, every interval, sends one operation
// per counter used since the last sync to the store (RedisStore: batched
// script calls, pipelined) and applies the answers. The request path
// never waits for the store: Admit spends leases, first-use units or the
// fallback share with atomics only.
//
// Fallback: when a round failed (the store refused, did not answer within
// `fault`, or answered errors), or no round was answered for two
// intervals and `fault` (a stuck loop), Admit lets a host admit,
// past its live leases, what keeps its own window within its share of the
// limit (fallback_share, default 1/hosts). The loop keeps trying (the
// store's backoff) and the first answered round counts what was admitted
// meanwhile, once.
//
// Counters are kept (at most max_counters; a host meets few senders per
// window) until the process ends. When the table is full a new counter
// gets the fallback rule (its share of its own window): a flood of new
// senders cannot make a host admit more than its share of each.
//
// Thread safety: Admit, Refund, GlobalUsage and stats are thread-safe and
// lock-free; SyncOnce is for one thread at a time (Start's thread, or a
// test's).
#ifndef SLUICE_RATELIMIT_CLUSTER_CLUSTER_SYNC_H_
#define SLUICE_RATELIMIT_CLUSTER_CLUSTER_SYNC_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ratelimit/cluster/shared_counter.h"
#include "ratelimit/config.pb.h"
#include "ratelimit/limiter.h"

namespace sluice {

class ClusterSync : public SharedLimits {
 public:
  struct Options {
    int hosts = 1;
    std::string host_name;  // this host's name in the store
    absl::Duration interval = absl::Milliseconds(200);
    absl::Duration fault = absl::Milliseconds(50);
    double fallback_share = 0;    // 0: 1/hosts
    double first_use_share = -1;  // < 0: 1 / (20 * hosts)
    std::string key_prefix = "sluice:";
    size_t max_counters = 65536;
  };
  struct Stats {
    uint64_t counters = 0;       // shared counters known
    uint64_t rounds = 0;         // sync rounds run
    uint64_t failed_rounds = 0;  // rounds with an operation unanswered
    uint64_t ops = 0;            // counter operations answered
    uint64_t last_batch = 0;     // operations in the last round
    uint64_t max_batch = 0;
    int64_t lag_ms = 0;            // since the last answered round
    bool fallback = false;         // hosts limits are in force
    uint64_t fallback_admits = 0;  // units admitted on the fallback rule
    uint64_t table_full = 0;       // admissions that found no room for a counter
  };

  // The options of a config's `cluster` section (hosts, names, durations).
  static Options FromConfig(const config::Cluster& c);
  // A RedisStore for a config's `cluster` section, and the sync on it.
  static absl::StatusOr<std::unique_ptr<ClusterSync>> Create(const config::Cluster& c);

  ClusterSync(std::unique_ptr<ClusterStore> store, Options options, absl::Time now);
  ~ClusterSync() override;  // stops the loop

  // Starts the sync loop (its own thread, real time).
  void Start();
  // One round at unix time now_ms. Returns whether every operation was
  // answered. One thread at a time.
  bool SyncOnce(int64_t now_ms);

  uint64_t Admit(const Key& key, uint64_t n, uint64_t local_usage,
                 absl::Time now) noexcept override;
  void Refund(uint64_t token, uint64_t n) noexcept override;
  uint64_t GlobalUsage(const Key& key) const noexcept override;

  Stats stats(absl::Time now) const;
  // Prometheus text lines (sluice_cluster_*).
  std::string MetricsText(absl::Time now) const;
  ClusterStore& store() { return *store_; }

 private:
  SharedCounter* Find(uint64_t hash) const noexcept;
  SharedCounter* FindOrAdd(const Key& key) noexcept;
  bool Fallback(int64_t now_ms) const noexcept;

  std::unique_ptr<ClusterStore> store_;
  const Options options_;
  const int64_t interval_ms_;
  const int64_t fault_ms_;
  // Open addressing over counters (the hash is in the counter): a slot
  // goes from null to a counter once and stays.
  std::unique_ptr<std::atomic<SharedCounter*>[]> table_;
  uint64_t mask_ = 0;
  std::atomic<uint64_t> count_{0};
  std::atomic<int64_t> last_ok_ms_;
  std::atomic<bool> failing_{false};
  std::atomic<uint64_t> rounds_{0}, failed_rounds_{0}, ops_{0}, last_batch_{0}, max_batch_{0},
      fallback_admits_{0}, table_full_{0};
  std::vector<SyncOp> ops_buf_;  // the loop's

  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
};

}  // namespace sluice

#endif  // SLUICE_RATELIMIT_CLUSTER_CLUSTER_SYNC_H_
