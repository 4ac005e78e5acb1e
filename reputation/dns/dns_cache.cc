#include "reputation/dns/dns_cache.h"

#include <algorithm>
#include <chrono>

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace sluice {

namespace {
constexpr int kShards = Sharded<int>::kShards;
}  // namespace

// One query in flight; every lookup of the name waits on it.
struct DnsCache::Flight {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  absl::Status status;
  DnsAnswer answer;
};

struct DnsCache::Entry {
  bool has = false;
  DnsAnswer answer;
  absl::Time fetched, expires, stale_until;
  std::shared_ptr<Flight> flight;  // non-null while a query is out
  std::list<std::string>::iterator lru;
  bool referenced = false;  // used since it was last passed by eviction (CLOCK)
};

// One shard's entries (Sharded adds the mutex and the alignment).
struct DnsCache::Map {
  absl::flat_hash_map<std::string, Entry> map;
  std::list<std::string> lru;  // front = newest; eviction gives a second chance
  uint64_t hits = 0;           // under mu: no shared counter on the hit path
};

DnsCache::DnsCache(DnsResolver* resolver, const Clock* clock, Options options)
    : resolver_(resolver),
      clock_(clock),
      options_(options),
      alive_(std::make_shared<std::atomic<bool>>(true)) {}

DnsCache::~DnsCache() { alive_->store(false); }

absl::Time DnsCache::Expiry(const DnsAnswer& a, absl::Time now) const {
  absl::Duration ttl;
  if (a.rcode == 3 || a.a.empty()) {  // NXDOMAIN (or no A record)
    ttl = a.negative_ttl >= 0 ? absl::Seconds(a.negative_ttl) : options_.default_negative_ttl;
    ttl = std::clamp(ttl, options_.min_ttl, options_.max_negative_ttl);
  } else {
    ttl = std::clamp(absl::Seconds(a.ttl), options_.min_ttl, options_.max_ttl);
  }
  return now + ttl;
}

void DnsCache::Start(const std::string& name) {
  std::weak_ptr<std::atomic<bool>> alive = alive_;
  resolver_->Query(name, DnsResolver::Type::kA,
                   [this, alive, name](const absl::Status& s, const DnsAnswer& a) {
                     auto live = alive.lock();
                     if (live == nullptr || !live->load()) return;
                     Finish(name, s, a);
                   });
}

void DnsCache::Finish(const std::string& name, const absl::Status& s, const DnsAnswer& a) {
  auto& shard = shards_.For(name);
  std::shared_ptr<Flight> flight;
  {
    std::lock_guard<std::mutex> lock(shard.mu);
    auto it = shard.map.find(name);
    if (it == shard.map.end()) return;
    Entry& e = it->second;
    flight = std::move(e.flight);
    e.flight = nullptr;
    const bool usable = s.ok() && (a.rcode == 0 || a.rcode == 3);
    if (usable) {
      const absl::Time now = clock_->Now();
      e.has = true;
      e.answer = a;
      e.fetched = now;
      e.expires = Expiry(a, now);
      e.stale_until = e.expires + options_.stale_for;
    }
  }
  if (flight != nullptr) {
    std::lock_guard<std::mutex> lock(flight->mu);
    flight->done = true;
    flight->status =
        s.ok() && a.rcode != 0 && a.rcode != 3 ? absl::UnavailableError("DNS server failure") : s;
    flight->answer = a;
    flight->cv.notify_all();
  }
}

DnsCache::Result DnsCache::Lookup(const std::string& name, absl::Time deadline) {
  return Find(name, deadline, /*wait=*/true);
}

DnsCache::Result DnsCache::Find(const std::string& name, absl::Time deadline, bool wait) {
  auto& shard = shards_.For(name);
  const absl::Time now = clock_->Now();
  std::shared_ptr<Flight> flight;
  bool start = false;
  Result r;
  {
    std::lock_guard<std::mutex> lock(shard.mu);
    auto [it, inserted] = shard.map.try_emplace(name);
    Entry& e = it->second;
    if (inserted) {
      shard.lru.push_front(name);
      e.lru = shard.lru.begin();
      // Evict from the old end: a name used since the last pass gets a
      // second chance (CLOCK); names with a query out stay.
      const size_t cap = std::max<size_t>(1, options_.max_entries / kShards);
      for (size_t budget = 2 * shard.lru.size(); shard.map.size() > cap && budget > 0; --budget) {
        auto victim = std::prev(shard.lru.end());
        if (victim == e.lru) break;
        auto v = shard.map.find(*victim);
        if (v != shard.map.end() && (v->second.referenced || v->second.flight != nullptr)) {
          v->second.referenced = false;
          shard.lru.splice(shard.lru.begin(), shard.lru, victim);
          continue;
        }
        if (v != shard.map.end()) shard.map.erase(v);
        shard.lru.erase(victim);
        evictions_.fetch_add(1, std::memory_order_relaxed);
      }
    } else {
      if (!e.referenced) e.referenced = true;
    }
    if (e.has && now < e.expires) {
      ++shard.hits;
      r.source = Source::kCache;
      r.answer = e.answer;
      // Prefetch in the last `prefetch` fraction of the TTL (no one waits).
      const absl::Duration ttl = e.expires - e.fetched;
      if (e.flight == nullptr && e.expires - now <= ttl * options_.prefetch) {
        e.flight = std::make_shared<Flight>();
        prefetches_.fetch_add(1, std::memory_order_relaxed);
        flight = e.flight;
        start = true;
      }
      if (!start) return r;
    } else if (e.flight != nullptr) {
      joined_.fetch_add(1, std::memory_order_relaxed);
      flight = e.flight;
    } else {
      misses_.fetch_add(1, std::memory_order_relaxed);
      e.flight = std::make_shared<Flight>();
      flight = e.flight;
      start = true;
    }
  }
  if (start) Start(name);
  if (r.source == Source::kCache || !wait) return r;  // a prefetch or Prepare: do not wait
  {
    std::unique_lock<std::mutex> lock(flight->mu);
    const auto until = absl::ToChronoTime(deadline);
    flight->cv.wait_until(lock, until, [&] { return flight->done; });
    if (flight->done && flight->status.ok()) {
      r.source = Source::kNetwork;
      r.answer = flight->answer;
      return r;
    }
    r.status = flight->done ? flight->status : absl::DeadlineExceededError("DNS budget spent");
  }
  // Failed or too slow: an expired answer if it is not too old.
  std::lock_guard<std::mutex> lock(shard.mu);
  auto it = shard.map.find(name);
  if (it != shard.map.end() && it->second.has && clock_->Now() < it->second.stale_until) {
    stale_.fetch_add(1, std::memory_order_relaxed);
    r.source = Source::kStale;
    r.answer = it->second.answer;
    return r;
  }
  unknown_.fetch_add(1, std::memory_order_relaxed);
  r.source = Source::kUnknown;
  return r;
}

void DnsCache::Prepare(const std::string& name) {
  auto& shard = shards_.For(name);
  const absl::Time now = clock_->Now();
  {
    std::lock_guard<std::mutex> lock(shard.mu);
    auto it = shard.map.find(name);
    if (it != shard.map.end() &&
        (it->second.flight != nullptr || (it->second.has && now < it->second.expires))) {
      return;
    }
  }
  Find(name, absl::InfinitePast(), /*wait=*/false);
}

DnsCache::Stats DnsCache::GetStats() const {
  Stats s;
  shards_.ForEach([&s](const Map& m) { s.hits += m.hits; });
  s.misses = misses_.load();
  s.joined = joined_.load();
  s.stale = stale_.load();
  s.unknown = unknown_.load();
  s.prefetches = prefetches_.load();
  s.evictions = evictions_.load();
  return s;
}

size_t DnsCache::size() const {
  size_t n = 0;
  shards_.ForEach([&n](const Map& m) { n += m.map.size(); });
  return n;
}

}  // namespace sluice
