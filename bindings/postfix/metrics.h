// The policy daemon's Prometheus metrics: per-worker counters (requests,
// malformed requests, decisions by action, trips by rule and level, a
// latency histogram, connections) and the text /metrics serves, which
// adds the server's gauges, the counter table, open transactions, the DNS
// cache and reloads.
//
// Thread safety: a WorkerMetrics has one writer (its worker thread) and
// any number of readers; MetricsText may run beside the writers (it reads
// relaxed, so a scrape may be a request behind).
#ifndef SLUICE_BINDINGS_POSTFIX_METRICS_H_
#define SLUICE_BINDINGS_POSTFIX_METRICS_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "bindings/engine/policy_engine.h"
#include "reputation/abuse/detector.h"

namespace sluice {

// Per-worker counters (one writer each; summed when scraped).
struct alignas(64) WorkerMetrics {
  static constexpr int kNumSources = 1 + kNumDetectors;  // "limit" + detectors
  static constexpr int kNumBuckets = 11;                 // latency buckets

  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> bad_requests{0};
  std::atomic<uint64_t> connections{0};
  std::atomic<uint64_t> idle_closed{0};
  std::atomic<uint64_t> parked{0};  // requests that waited for DNS off the loop
  std::atomic<uint64_t> by_action[kNumActions] = {};
  std::atomic<uint64_t> shadow{0};
  std::atomic<uint64_t> by_source[kNumSources] = {};
  std::atomic<uint64_t> by_level[kNumLevels] = {};
  std::atomic<uint64_t> latency[kNumBuckets + 1] = {};
  std::atomic<uint64_t> latency_sum_ns{0};

  void Add(std::atomic<uint64_t>& c, uint64_t n = 1) {
    // relaxed: a statistic; one writer, readers tolerate staleness.
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  // One request answered in `ns` nanoseconds.
  void CountRequest(int64_t ns);
  // The verdict's action and, if it tripped, its rule and level.
  void CountVerdict(const Verdict& v);
};

// The server's own gauges at the time of a scrape.
struct ServerGauges {
  uint64_t open_connections = 0;
  uint64_t refused = 0;  // connections refused (over the limit)
  uint64_t reloads_ok = 0;
  uint64_t reloads_failed = 0;
};

// The Prometheus text exposition of every worker's counters, the gauges,
// and the engine's table, transactions and DNS cache.
std::string MetricsText(const std::vector<const WorkerMetrics*>& workers, const ServerGauges& g,
                        PolicyEngine& engine);

}  // namespace sluice

#endif  // SLUICE_BINDINGS_POSTFIX_METRICS_H_
