// DnsCache: blocklist answers in memory, asking the network once per name
// per TTL.
//
//   positive answers   kept for their TTL clamped to [min_ttl, max_ttl]
//   NXDOMAIN           kept for the SOA's negative TTL (RFC 2308), clamped
//                      to [min_ttl, max_negative_ttl]; default_negative_ttl
//                      without a SOA
//   single-flight      concurrent lookups of a name that is not cached
//                      share one query
//   serve-stale        if the resolver fails or times out, an expired
//                      answer up to stale_for old is returned (marked)
//   prefetch           a hit in the last `prefetch` fraction of its TTL
//                      refreshes the entry in the background
//   failures           a timeout or server failure is remembered for
//                      failure_ttl: lookups meanwhile get "failed" (or a
//                      stale answer) at once, no new query, no wait
//   memory             at most max_entries names (least recently used go)
//   types              A by default; PTR, AAAA, TXT (FCrDNS) are cached
//                      the same way, apart from A answers of the same name
//
// Lookup never waits past its deadline: then the answer is "unknown", never
// "listed". Peek never waits at all: an event loop calls it with a `ready`
// callback and asks again when the callback says the query has ended.
// TTLs follow the injected clock; waiting uses real time.
//
// Thread safety: all methods are thread-safe. Names are split over 16
// shards, each with its own mutex: a hit locks one shard briefly.
#ifndef SLUICE_REPUTATION_DNS_DNS_CACHE_H_
#define SLUICE_REPUTATION_DNS_DNS_CACHE_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "ratelimit/clock.h"
#include "ratelimit/sharded.h"
#include "reputation/dns/dns_answer.h"
#include "reputation/dns/resolver.h"

namespace sluice {

class DnsCache {
 public:
  struct Options {
    absl::Duration min_ttl = absl::Seconds(60);
    absl::Duration max_ttl = absl::Hours(24);
    absl::Duration max_negative_ttl = absl::Hours(1);
    absl::Duration default_negative_ttl = absl::Minutes(5);
    absl::Duration stale_for = absl::Hours(1);
    double prefetch = 0.1;
    size_t max_entries = 1 << 17;
    absl::Duration failure_ttl = absl::Seconds(60);
  };
  // kUnknown: not answered yet (a query is out); kFailed: the last query
  // failed or timed out less than failure_ttl ago (no query is out).
  enum class Source : uint8_t { kCache, kNetwork, kStale, kUnknown, kFailed };
  struct Result {
    Source source = Source::kUnknown;
    absl::Status status;  // why it is unknown (or stale)
    DnsAnswer answer;
    bool known() const { return source != Source::kUnknown && source != Source::kFailed; }
    // A query is out: waiting (or a `ready` callback) may still bring it.
    bool pending() const { return source == Source::kUnknown; }
  };
  struct Stats {
    uint64_t hits = 0, misses = 0, joined = 0, stale = 0, unknown = 0, prefetches = 0,
             evictions = 0;
    uint64_t failed = 0;  // answered from a remembered failure (no query)
  };

  // `resolver` and `clock` are not owned and must outlive the cache.
  DnsCache(DnsResolver* resolver, const Clock* clock, Options options);
  DnsCache(DnsResolver* resolver, const Clock* clock) : DnsCache(resolver, clock, Options()) {}
  ~DnsCache();

  // The A records of `name` (a blocklist query). Blocks at most until
  // `deadline` (real time).
  Result Lookup(const std::string& name, absl::Time deadline) {
    return Lookup(name, DnsResolver::Type::kA, deadline);
  }
  Result Lookup(const std::string& name, DnsResolver::Type type, absl::Time deadline);
  // Never waits: the answer if known (cached, stale after a failure), else
  // kFailed (a remembered failure) or kUnknown with a query out (started
  // if needed). With kUnknown, `ready` (if set) is called once when that
  // query ends, on the resolver's thread; it must not block.
  Result Peek(const std::string& name, DnsResolver::Type type, std::function<void()> ready);
  // Starts a query for `name` if it is neither cached nor asked yet, and
  // returns at once: a message's lookups then go out together and Lookup
  // waits for them in parallel.
  void Prepare(const std::string& name);
  Stats GetStats() const;
  size_t size() const;

 private:
  struct Flight;
  struct Entry;
  struct Map;
  void Start(const std::string& key);  // sends the query of a new flight
  Result Find(const std::string& key, absl::Time deadline, bool wait,
              std::function<void()> ready = nullptr);
  void Finish(const std::string& name, const absl::Status& s, const DnsAnswer& a);
  absl::Time Expiry(const DnsAnswer& a, absl::Time now) const;

  DnsResolver* resolver_;
  const Clock* clock_;
  Options options_;
  Sharded<Map> shards_;
  std::atomic<uint64_t> misses_{0}, joined_{0}, stale_{0}, unknown_{0}, prefetches_{0},
      evictions_{0}, failed_{0};
  std::shared_ptr<std::atomic<bool>> alive_;  // callbacks after destruction do nothing
};

}  // namespace sluice

#endif  // SLUICE_REPUTATION_DNS_DNS_CACHE_H_
