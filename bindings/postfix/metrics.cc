#include "bindings/postfix/metrics.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "ratelimit/cluster/cluster_sync.h"
#include "ratelimit/limiter.h"
#include "reputation/abuse/abuse_guard.h"
#include "reputation/dns/dns_cache.h"
#include "reputation/dns/dnsbl.h"
#include "reputation/score_board.h"

namespace sluice {

namespace {

// Latency histogram bounds in microseconds (Prometheus "le" labels).
constexpr double kBucketsUs[WorkerMetrics::WorkerMetrics::kNumBuckets] = {
    10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 50000};

}  // namespace

void WorkerMetrics::CountRequest(int64_t ns) {
  int b = 0;
  while (b<kNumBuckets&& static_cast<double>(ns)> kBucketsUs[b] * 1000) ++b;
  Add(latency[b]);
  Add(latency_sum_ns, static_cast<uint64_t>(ns));
  Add(requests);
}

void WorkerMetrics::CountVerdict(const Verdict& v) {
  Add(by_action[static_cast<int>(v.action)]);
  if (!v.tripped()) return;
  if (v.shadow) Add(shadow);
  if (v.source == "limit") {
    Add(by_source[0]);
    Add(by_level[static_cast<int>(v.level)]);
  } else {
    for (int d = 0; d < AbuseGuard::kNumDetectors; ++d) {
      if (AbuseGuard::DetectorName(static_cast<AbuseGuard::Detector>(d)) == v.source) {
        Add(by_source[1 + d]);
      }
    }
  }
}

std::string MetricsText(const std::vector<const WorkerMetrics*>& workers, const ServerGauges& g,
                        PolicyEngine& engine) {
  auto sum = [&](auto field) {  // over workers; relaxed: statistics
    uint64_t n = 0;
    for (const WorkerMetrics* m : workers) n += field(*m).load(std::memory_order_relaxed);
    return n;
  };
  std::string o;
  absl::StrAppend(&o, "# HELP sluice_requests_total Policy requests answered.\n",
                  "# TYPE sluice_requests_total counter\n", "sluice_requests_total ",
                  sum([](const WorkerMetrics& m) -> auto& { return m.requests; }), "\n");
  absl::StrAppend(&o, "# HELP sluice_bad_requests_total Requests refused as malformed.\n",
                  "# TYPE sluice_bad_requests_total counter\n", "sluice_bad_requests_total ",
                  sum([](const WorkerMetrics& m) -> auto& { return m.bad_requests; }), "\n");
  absl::StrAppend(&o, "# HELP sluice_decisions_total Decisions by action.\n",
                  "# TYPE sluice_decisions_total counter\n");
  for (int a = 0; a < kNumActions; ++a) {
    absl::StrAppend(&o, "sluice_decisions_total{action=\"", ActionName(static_cast<Action>(a)),
                    "\"} ", sum([a](const WorkerMetrics& m) -> auto& { return m.by_action[a]; }),
                    "\n");
  }
  absl::StrAppend(&o, "sluice_decisions_total{action=\"shadow\"} ",
                  sum([](const WorkerMetrics& m) -> auto& { return m.shadow; }), "\n");
  absl::StrAppend(&o, "# HELP sluice_trips_total Rules that tripped, by rule and level.\n",
                  "# TYPE sluice_trips_total counter\n");
  for (int l = 0; l < kNumLevels; ++l) {
    absl::StrAppend(&o, "sluice_trips_total{rule=\"limit\",level=\"",
                    LevelName(static_cast<Level>(l)), "\"} ",
                    sum([l](const WorkerMetrics& m) -> auto& { return m.by_level[l]; }), "\n");
  }
  for (int d = 1; d < AbuseGuard::kNumDetectors; ++d) {
    absl::StrAppend(&o, "sluice_trips_total{rule=\"",
                    AbuseGuard::DetectorName(static_cast<AbuseGuard::Detector>(d)), "\"} ",
                    sum([d](const WorkerMetrics& m) -> auto& { return m.by_source[1 + d]; }), "\n");
  }
  absl::StrAppend(&o, "# HELP sluice_request_duration_seconds Time to decide a request.\n",
                  "# TYPE sluice_request_duration_seconds histogram\n");
  uint64_t cum = 0;
  for (int b = 0; b <= WorkerMetrics::kNumBuckets; ++b) {
    cum += sum([b](const WorkerMetrics& m) -> auto& { return m.latency[b]; });
    std::string le =
        b < WorkerMetrics::kNumBuckets ? absl::StrFormat("%g", kBucketsUs[b] / 1e6) : "+Inf";
    absl::StrAppend(&o, "sluice_request_duration_seconds_bucket{le=\"", le, "\"} ", cum, "\n");
  }
  absl::StrAppend(&o, "sluice_request_duration_seconds_sum ",
                  absl::StrFormat("%.9f", sum([](const WorkerMetrics& m) -> auto& {
                                            return m.latency_sum_ns;
                                          }) / 1e9),
                  "\n", "sluice_request_duration_seconds_count ", cum, "\n");
  absl::StrAppend(&o, "# TYPE sluice_connections_total counter\nsluice_connections_total ",
                  sum([](const WorkerMetrics& m) -> auto& { return m.connections; }), "\n");
  absl::StrAppend(&o, "# TYPE sluice_connections_open gauge\nsluice_connections_open ",
                  g.open_connections, "\n");
  absl::StrAppend(&o,
                  "# TYPE sluice_connections_refused_total counter\n"
                  "sluice_connections_refused_total ",
                  g.refused, "\n");
  absl::StrAppend(&o,
                  "# TYPE sluice_connections_idle_closed_total counter\n"
                  "sluice_connections_idle_closed_total ",
                  sum([](const WorkerMetrics& m) -> auto& { return m.idle_closed; }), "\n");
  absl::StrAppend(&o,
                  "# TYPE sluice_requests_parked_total counter\n"
                  "sluice_requests_parked_total ",
                  sum([](const WorkerMetrics& m) -> auto& { return m.parked; }), "\n");
  const auto st = engine.limiter().table().GetStats(absl::Now());
  absl::StrAppend(&o, "# HELP sluice_table_slots Counter table slots.\n",
                  "# TYPE sluice_table_slots gauge\n", "sluice_table_slots{state=\"used\"} ",
                  st.used_slots, "\n", "sluice_table_slots{state=\"live\"} ", st.live_slots, "\n",
                  "sluice_table_slots{state=\"overflow\"} ", st.overflow_slots_used, "\n",
                  "sluice_table_slots{state=\"capacity\"} ", engine.limiter().table().capacity(),
                  "\n");
  absl::StrAppend(&o, "# TYPE sluice_open_transactions gauge\nsluice_open_transactions ",
                  engine.limiter().open_transactions(), "\n");
  if (DnsCache* cache = engine.dns_cache(); cache != nullptr) {
    const DnsCache::Stats d = cache->GetStats();
    absl::StrAppend(&o, "# HELP sluice_dns_cache_lookups_total DNS list lookups by outcome.\n",
                    "# TYPE sluice_dns_cache_lookups_total counter\n");
    const std::pair<const char*, uint64_t> rows[] = {
        {"hit", d.hits},         {"miss", d.misses},     {"joined", d.joined},
        {"stale", d.stale},      {"unknown", d.unknown}, {"prefetch", d.prefetches},
        {"evicted", d.evictions}};
    for (const auto& [name, n] : rows) {
      absl::StrAppend(&o, "sluice_dns_cache_lookups_total{outcome=\"", name, "\"} ", n, "\n");
    }
    absl::StrAppend(&o, "# TYPE sluice_dns_cache_entries gauge\nsluice_dns_cache_entries ",
                    cache->size(), "\n");
  }
  if (const ClusterSync* cluster = engine.cluster(); cluster != nullptr) {
    absl::StrAppend(&o, cluster->MetricsText(absl::Now()));
  }
  absl::StrAppend(&o, "# TYPE sluice_reloads_total counter\nsluice_reloads_total{result=\"ok\"} ",
                  g.reloads_ok, "\nsluice_reloads_total{result=\"refused\"} ", g.reloads_failed,
                  "\n");
  return o;
}

}  // namespace sluice
