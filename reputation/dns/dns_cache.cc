#include "reputation/dns/dns_cache.h"

#include <algorithm>
#include <chrono>

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace sluice {

namespace {
constexpr int kShards = Sharded<int>::kShards;

// The cache's key: the name itself for A (blocklist queries), else a
// control byte naming the type, then the name (DNS names hold none).
std::string KeyOf(const std::string& name, DnsResolver::Type type) {
  if (type == DnsResolver::Type::kA) return name;
  std::string key(1, static_cast<char>(type));
  key += name;
  return key;
}

void SplitKey(const std::string& key, std::string* name, DnsResolver::Type* type) {
  if (!key.empty() && static_cast<unsigned char>(key[0]) < 0x20) {
    *type = static_cast<DnsResolver::Type>(key[0]);
    *name = key.substr(1);
  } else {
    *type = DnsResolver::Type::kA;
    *name = key;
  }
}
}  // namespace

// One query in flight; every lookup of the name waits on it.
struct DnsCache::Flight {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  absl::Status status;
  DnsAnswer answer;
  std::vector<std::function<void()>> waiters;  // Peek's `ready` callbacks
};

struct DnsCache::Entry {
  bool has = false;
  DnsAnswer answer;
  absl::Time fetched, expires, stale_until;
  absl::Time failed_until = absl::InfinitePast();  // a failure is remembered until then
  std::shared_ptr<Flight> flight;                  // non-null while a query is out
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
  if (a.rcode == 3 || (a.a.empty() && a.aaaa.empty() && a.ptr.empty() && a.txt.empty())) {
    // NXDOMAIN, or no record of the asked type
    ttl = a.negative_ttl >= 0 ? absl::Seconds(a.negative_ttl) : options_.default_negative_ttl;
    ttl = std::clamp(ttl, options_.min_ttl, options_.max_negative_ttl);
  } else {
    ttl = std::clamp(absl::Seconds(a.ttl), options_.min_ttl, options_.max_ttl);
  }
  return now + ttl;
}

void DnsCache::Start(const std::string& key) {
  std::weak_ptr<std::atomic<bool>> alive = alive_;
  std::string name;
  DnsResolver::Type type;
  SplitKey(key, &name, &type);
  resolver_->Query(name, type, [this, alive, key](const absl::Status& s, const DnsAnswer& a) {
    auto live = alive.lock();
    if (live == nullptr || !live->load()) return;
    Finish(key, s, a);
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
    const absl::Time now = clock_->Now();
    if (!usable) e.failed_until = now + options_.failure_ttl;
    if (usable) {
      e.failed_until = absl::InfinitePast();
      e.has = true;
      e.answer = a;
      e.fetched = now;
      e.expires = Expiry(a, now);
      e.stale_until = e.expires + options_.stale_for;
    }
  }
  if (flight != nullptr) {
    std::vector<std::function<void()>> waiters;
    {
      std::lock_guard<std::mutex> lock(flight->mu);
      flight->done = true;
      flight->status =
          s.ok() && a.rcode != 0 && a.rcode != 3 ? absl::UnavailableError("DNS server failure") : s;
      flight->answer = a;
      waiters.swap(flight->waiters);
      flight->cv.notify_all();
    }
    for (auto& w : waiters) w();  // outside every lock: a waiter may ask again
  }
}

DnsCache::Result DnsCache::Lookup(const std::string& name, DnsResolver::Type type,
                                  absl::Time deadline) {
  return Find(KeyOf(name, type), deadline, /*wait=*/true);
}

DnsCache::Result DnsCache::Peek(const std::string& name, DnsResolver::Type type,
                                std::function<void()> ready) {
  return Find(KeyOf(name, type), absl::InfinitePast(), /*wait=*/false, std::move(ready));
}

DnsCache::Result DnsCache::Find(const std::string& name, absl::Time deadline, bool wait,
                                std::function<void()> ready) {
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
    } else if (now < e.failed_until) {
      // Failed a moment ago: no new query, no wait (a dead zone costs one
      // budget per failure_ttl, not one per message).
      if (e.has && now < e.stale_until) {
        stale_.fetch_add(1, std::memory_order_relaxed);
        r.source = Source::kStale;
        r.answer = e.answer;
      } else {
        failed_.fetch_add(1, std::memory_order_relaxed);
        r.source = Source::kFailed;
        r.status = absl::UnavailableError("the last query failed; not asked again yet");
      }
      return r;
    } else {
      misses_.fetch_add(1, std::memory_order_relaxed);
      e.flight = std::make_shared<Flight>();
      flight = e.flight;
      start = true;
    }
  }
  bool ended = false;  // the flight ended before `ready` could join it
  if (ready != nullptr && r.source != Source::kCache) {
    std::lock_guard<std::mutex> lock(flight->mu);
    if (!flight->done) {
      flight->waiters.push_back(std::move(ready));
    } else {
      ended = true;
    }
  }
  if (start) Start(name);
  if (ended) ready();                                 // the caller asks again and finds the answer
  if (r.source == Source::kCache || !wait) return r;  // a prefetch, Prepare or Peek: no wait
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
  s.failed = failed_.load();
  return s;
}

size_t DnsCache::size() const {
  size_t n = 0;
  shards_.ForEach([&n](const Map& m) { n += m.map.size(); });
  return n;
}

}  // namespace sluice
