#include "ratelimit/cluster/shared_counter.h"

#include <algorithm>
#include <cmath>
#include <utility>

namespace sluice {

void MemoryStore::Run(const std::vector<SyncOp*>& ops) {
  if (down_.load(std::memory_order_relaxed)) return;
  std::lock_guard<std::mutex> lock(mu_);
  for (SyncOp* op : ops) {
    Entry& e = keys_[op->key];
    auto last = e.last.find(op->host);
    if (last != e.last.end() && last->second.seq == op->seq) {  // applied already
      op->granted = last->second.granted;
      op->usage = last->second.usage;
      op->answered = true;
      continue;
    }
    auto& b = e.buckets;
    for (int i = 0; i < 2; ++i) {
      if (op->give_back[i] == 0) continue;
      auto it = b.find(op->give_back_bucket[i]);
      if (it != b.end()) it->second -= std::min(it->second, op->give_back[i]);  // never below 0
    }
    if (op->spent > 0) b[op->spent_bucket] += op->spent;
    b.erase(b.begin(), b.upper_bound(op->sum_from));  // out of every window from now on
    uint64_t used = 0;
    for (auto it = b.begin(); it != b.end() && it->first <= op->sum_to; ++it) used += it->second;
    const uint64_t headroom = op->limit > used ? op->limit - used : 0;
    const uint64_t hosts = static_cast<uint64_t>(std::max(1, op->hosts));
    const uint64_t share = (headroom + hosts - 1) / hosts;
    const uint64_t floor = (headroom + 4 * hosts - 1) / (4 * hosts);
    op->granted = op->want == 0 ? 0 : std::min(std::max(op->want, floor), share);
    op->usage = used;
    if (op->granted > 0) b[op->lease_bucket] += op->granted;
    e.last[op->host] = *op;
    op->answered = !lose_next_.exchange(false, std::memory_order_relaxed);
  }
}

uint64_t MemoryStore::Sum(const std::string& key, int64_t from, int64_t to) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto k = keys_.find(key);
  if (k == keys_.end()) return 0;
  uint64_t used = 0;
  const auto& b = k->second.buckets;
  for (auto it = b.upper_bound(from); it != b.end() && it->first <= to; ++it) used += it->second;
  return used;
}

SharedCounter::SharedCounter(std::string key, Options options)
    : key_(std::move(key)), options_(std::move(options)), limit_(options_.limit) {}

uint64_t SharedCounter::FallbackShare(uint64_t limit, int hosts, double fraction) {
  if (fraction > 0) return static_cast<uint64_t>(std::ceil(static_cast<double>(limit) * fraction));
  const uint64_t n = static_cast<uint64_t>(std::max(1, hosts));
  return (limit + n - 1) / n;
}

SharedCounter::Admission SharedCounter::TryAdmit(uint64_t n, int64_t now_ms, bool fallback,
                                                 uint64_t local_usage) noexcept {
  Admission a;
  // relaxed: a hint for the sync loop, which reads it with exchange.
  if (!touched_.load(std::memory_order_relaxed)) touched_.store(true, std::memory_order_relaxed);
  // The live lease that expires first (spend the older one before it goes).
  int order[2] = {0, 1};
  // acquire: pairs with Finish's release of the expiry before the units.
  if (slots_[1].expires_ms.load(std::memory_order_acquire) <
      slots_[0].expires_ms.load(std::memory_order_acquire)) {
    std::swap(order[0], order[1]);
  }
  for (int i : order) {
    Slot& s = slots_[i];
    if (s.expires_ms.load(std::memory_order_acquire) <= now_ms) continue;
    uint64_t w = s.word.load(std::memory_order_acquire);
    while ((w & kLeftMask) >= n) {
      // relaxed: the units are a count; the sync takes what is left with exchange.
      if (s.word.compare_exchange_weak(w, w - n, std::memory_order_relaxed)) {
        a.ok = true;
        a.source = static_cast<uint8_t>(i + 1);
        a.lease_id = static_cast<uint16_t>(w >> 48);
        return a;
      }
    }
  }
  if (options_.first_lease > 0 && !synced_.load(std::memory_order_acquire)) {
    uint64_t used = first_used_.load(std::memory_order_relaxed);
    while (used + n <= options_.first_lease) {
      if (first_used_.compare_exchange_weak(used, used + n, std::memory_order_relaxed)) {
        unleased_.fetch_add(n, std::memory_order_relaxed);
        a.ok = true;
        a.source = 3;
        return a;
      }
    }
  }
  if (fallback && local_usage <= Share()) {
    unleased_.fetch_add(n, std::memory_order_relaxed);
    a.ok = true;
    a.source = 4;
  }
  return a;
}

namespace {
// Subtracts up to n from a count, never below 0.
void SubtractFloor(std::atomic<uint64_t>& v, uint64_t n) {
  uint64_t cur = v.load(std::memory_order_relaxed);
  while (!v.compare_exchange_weak(cur, cur - std::min(cur, n), std::memory_order_relaxed)) {
  }
}
}  // namespace

void SharedCounter::Refund(const Admission& a, uint64_t n) noexcept {
  if (!a.ok) return;
  if (a.source == 1 || a.source == 2) {
    Slot& s = slots_[a.source - 1];
    uint64_t w = s.word.load(std::memory_order_relaxed);
    // Only into the same lease: a reclaimed one was given back already
    // (the units stay counted in the store: under-admission, never over).
    while ((w >> 48) == a.lease_id && (w & kLeftMask) + n <= kLeftMask &&
           !s.word.compare_exchange_weak(w, w + n, std::memory_order_relaxed)) {
    }
    return;
  }
  if (a.source == 3) SubtractFloor(first_used_, n);
  // Not yet counted in the store: take it out (if the sync took it
  // meanwhile, it stays counted there: under-admission, never over).
  SubtractFloor(unleased_, n);
}

uint64_t SharedCounter::lease_left(int64_t now_ms) const {
  uint64_t total = 0;
  for (const Slot& s : slots_) {
    if (s.expires_ms.load(std::memory_order_acquire) > now_ms) {
      total += s.word.load(std::memory_order_relaxed) & kLeftMask;
    }
  }
  return total;
}

bool SharedCounter::Prepare(int64_t now_ms, SyncOp* op) {
  // Demand since the last sync: what the leases lost.
  uint64_t left_before = 0;
  for (Slot& s : slots_) left_before += s.word.load(std::memory_order_relaxed) & kLeftMask;
  const uint64_t spent = last_left_total_ > left_before ? last_left_total_ - left_before : 0;
  // Reclaim expired leases: nothing is spent of them any more (a spender
  // that raced with the exchange fails its compare-and-swap).
  for (Slot& s : slots_) {
    if (s.granted > 0 && s.expires_ms.load(std::memory_order_relaxed) <= now_ms) {
      s.to_give_back +=
          s.word.exchange(uint64_t{s.id} << 48, std::memory_order_relaxed) & kLeftMask;
      s.granted = 0;
    }
  }
  last_left_total_ = 0;
  for (Slot& s : slots_) last_left_total_ += s.word.load(std::memory_order_relaxed) & kLeftMask;
  if (pending_) {  // the same operation again (the store answers it once)
    *op = op_;
    op->answered = false;
    return true;
  }
  const bool touched = touched_.exchange(false, std::memory_order_relaxed);
  const uint64_t unleased = unleased_.exchange(0, std::memory_order_relaxed);
  int free = -1;
  for (int i = 0; i < 2; ++i) {
    if (slots_[i].granted == 0) free = i;
  }
  uint64_t want = 0;
  if (free >= 0 && (touched || spent > 0 || unleased > 0)) {
    want = std::max(options_.min_lease, 2 * (spent + unleased));
  }
  if (want == 0 && unleased == 0 && slots_[0].to_give_back == 0 && slots_[1].to_give_back == 0) {
    return false;
  }
  const int64_t horizon = now_ms + 2 * options_.interval_ms;
  const int64_t windows = options_.window_ms / options_.sub_bucket_ms;
  SyncOp& o = op_;
  o = SyncOp();
  o.key = key_;
  o.host = options_.host;
  o.seq = ++seq_;
  for (int i = 0; i < 2; ++i) {
    o.give_back_bucket[i] = slots_[i].charged_bucket;
    o.give_back[i] = slots_[i].to_give_back;
    slots_[i].to_give_back = 0;  // in op_ now, sent until answered
  }
  o.spent_bucket = Bucket(now_ms);
  o.spent = unleased;
  o.sum_from = Bucket(now_ms) - windows;
  o.sum_to = Bucket(horizon) + 1;
  o.lease_bucket = o.sum_to;
  o.want = want;
  o.limit = limit();
  o.hosts = options_.hosts;
  o.ttl_ms = options_.window_ms + 2 * options_.sub_bucket_ms + 4 * options_.interval_ms;
  pending_ = true;
  pending_slot_ = want > 0 ? free : -1;
  pending_horizon_ = horizon;
  *op = o;
  return true;
}

void SharedCounter::Finish(const SyncOp& op, int64_t now_ms) {
  static_cast<void>(now_ms);
  if (!pending_ || !op.answered || op.seq != op_.seq) return;  // kept for the next Prepare
  pending_ = false;
  global_usage_.store(op.usage + op.granted, std::memory_order_relaxed);
  if (pending_slot_ >= 0 && op.granted > 0) {
    Slot& s = slots_[pending_slot_];
    s.charged_bucket = op.lease_bucket;
    s.granted = op.granted;
    ++s.id;
    // release: TryAdmit that sees the units sees the expiry (set first). A
    // lease whose answer came after its horizon is dead on arrival; the
    // next Prepare gives it back whole.
    s.expires_ms.store(pending_horizon_, std::memory_order_release);
    s.word.store((uint64_t{s.id} << 48) | op.granted, std::memory_order_release);
    last_left_total_ += op.granted;
  }
  synced_.store(true, std::memory_order_release);
}

bool SharedCounter::Sync(ClusterStore& store, int64_t now_ms) {
  SyncOp op;
  if (!Prepare(now_ms, &op)) return true;
  std::vector<SyncOp*> ops{&op};
  store.Run(ops);
  Finish(op, now_ms);
  return op.answered;
}

}  // namespace sluice
