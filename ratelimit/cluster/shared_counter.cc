#include "ratelimit/cluster/shared_counter.h"

#include <algorithm>
#include <utility>

namespace sluice {

bool MemoryStore::ReturnAndLease(const std::string& key, const Lease& r, uint64_t* granted) {
  if (down_.load(std::memory_order_relaxed)) return false;
  std::lock_guard<std::mutex> lock(mu_);
  auto& b = buckets_[key];
  if (r.give_back > 0) {
    auto it = b.find(r.give_back_bucket);
    if (it != b.end()) it->second -= std::min(it->second, r.give_back);  // never below 0
  }
  uint64_t used = 0;
  for (auto it = b.upper_bound(r.sum_from); it != b.end() && it->first <= r.sum_to; ++it) {
    used += it->second;
  }
  const uint64_t headroom = r.limit > used ? r.limit - used : 0;
  const uint64_t hosts = static_cast<uint64_t>(std::max(1, r.hosts));
  const uint64_t share = (headroom + hosts - 1) / hosts;
  *granted = std::min(r.want, share);
  if (*granted > 0) b[r.charge_bucket] += *granted;
  return true;
}

uint64_t MemoryStore::Sum(const std::string& key, int64_t from, int64_t to) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto k = buckets_.find(key);
  if (k == buckets_.end()) return 0;
  uint64_t used = 0;
  for (auto it = k->second.upper_bound(from); it != k->second.end() && it->first <= to; ++it) {
    used += it->second;
  }
  return used;
}

SharedCounter::SharedCounter(std::string key, Options options)
    : key_(std::move(key)), options_(options) {}

bool SharedCounter::TryAdmit(uint64_t n, int64_t now_ms) noexcept {
  // The live lease that expires first (spend the older one before it goes).
  Slot* order[2] = {&slots_[0], &slots_[1]};
  // acquire: pairs with Sync's release of the expiry before the units.
  if (order[1]->expires_ms.load(std::memory_order_acquire) <
      order[0]->expires_ms.load(std::memory_order_acquire)) {
    std::swap(order[0], order[1]);
  }
  for (Slot* s : order) {
    if (s->expires_ms.load(std::memory_order_acquire) <= now_ms) continue;
    uint64_t left = s->left.load(std::memory_order_relaxed);
    while (left >= n) {
      // relaxed: the units are a count; Sync takes what is left with exchange.
      if (s->left.compare_exchange_weak(left, left - n, std::memory_order_relaxed)) return true;
    }
  }
  return false;
}

uint64_t SharedCounter::lease_left(int64_t now_ms) const {
  uint64_t total = 0;
  for (const Slot& s : slots_) {
    if (s.expires_ms.load(std::memory_order_acquire) > now_ms) {
      total += s.left.load(std::memory_order_relaxed);
    }
  }
  return total;
}

bool SharedCounter::Sync(ClusterStore& store, int hosts, int64_t now_ms) {
  // Demand since the last sync: what the live leases lost.
  uint64_t left_now = 0;
  for (Slot& s : slots_) left_now += s.left.load(std::memory_order_relaxed);
  const uint64_t spent = last_left_total_ > left_now ? last_left_total_ - left_now : 0;
  // Reclaim expired leases: nothing is spent of them any more.
  for (Slot& s : slots_) {
    if (s.granted > 0 && s.expires_ms.load(std::memory_order_relaxed) <= now_ms) {
      s.to_give_back += s.left.exchange(0, std::memory_order_relaxed);
      s.granted = 0;
    }
  }
  // A free slot for the new lease (the older reclaimed one).
  Slot* free = nullptr;
  for (Slot& s : slots_) {
    if (s.granted == 0 && (free == nullptr || s.to_give_back > free->to_give_back)) free = &s;
  }
  const int64_t horizon = now_ms + 2 * options_.interval_ms;
  const int64_t windows = options_.window_ms / options_.sub_bucket_ms;
  bool ok = true;
  for (Slot& s : slots_) {  // give back, one call per charged bucket
    if (s.to_give_back == 0 || &s == free) continue;
    ClusterStore::Lease r;
    r.give_back_bucket = s.charged_bucket;
    r.give_back = s.to_give_back;
    r.sum_from = r.sum_to = r.charge_bucket = Bucket(horizon) + 1;
    r.limit = options_.limit;
    r.hosts = hosts;
    uint64_t ignored = 0;
    if (!store.ReturnAndLease(key_, r, &ignored)) return false;
    s.to_give_back = 0;
  }
  if (free != nullptr) {
    ClusterStore::Lease r;
    r.give_back_bucket = free->charged_bucket;
    r.give_back = free->to_give_back;
    r.sum_from = Bucket(now_ms) - windows;
    r.sum_to = Bucket(horizon) + 1;
    r.charge_bucket = r.sum_to;
    r.want = std::max(options_.min_lease, 2 * spent);
    r.limit = options_.limit;
    r.hosts = hosts;
    uint64_t granted = 0;
    ok = store.ReturnAndLease(key_, r, &granted);
    if (ok) {
      free->to_give_back = 0;
      free->charged_bucket = r.charge_bucket;
      free->granted = granted;
      // release: TryAdmit that sees the units sees the expiry (set first).
      free->expires_ms.store(horizon, std::memory_order_release);
      free->left.store(granted, std::memory_order_release);
    }
  }
  last_left_total_ = 0;
  for (Slot& s : slots_) last_left_total_ += s.left.load(std::memory_order_relaxed);
  return ok;
}

}  // namespace sluice
