// Transactions: Reserve at RCPT, Commit at end-of-data, Release on abort,
// keyed by transaction id, in 16 shards under a mutex each.
#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "ratelimit/internal/limiter_state.h"

namespace sluice {

Decision Limiter::Reserve(absl::string_view txn_id, absl::string_view item, const Request& request,
                          absl::Time now) {
  auto& shard = txns_->For(txn_id);
  std::lock_guard<std::mutex> lock(shard.mu);
  const size_t shard_cap =
      std::max<size_t>(4, options_.max_transactions / Sharded<TxnShard>::kShards);
  if (shard.map.size() >= shard_cap && shard.map.find(txn_id) == shard.map.end()) {
    // End the oldest open transaction (kept counted).
    while (!shard.order.empty()) {
      auto oldest = shard.map.find(shard.order.front());
      shard.order.pop_front();
      if (oldest != shard.map.end()) {
        shard.map.erase(oldest);
        evicted_txns_.fetch_add(1, std::memory_order_relaxed);
        break;
      }
    }
  }
  auto [it, created] = shard.map.try_emplace(std::string(txn_id));
  Txn& t = it->second;
  if (created) {
    if (shard.order.size() >= 2 * shard_cap) {  // mostly ended ones: drop them
      std::deque<std::string> open;
      for (auto& id : shard.order) {
        if (shard.map.contains(id)) open.push_back(std::move(id));
      }
      shard.order.swap(open);
    }
    shard.order.push_back(it->first);
    t.created = now;
    t.sender = std::string(request.sender);
    t.sasl_user = std::string(request.sasl_user);
    t.client_ip = std::string(request.client_ip);
    t.script = std::string(request.script);
    t.list = std::string(request.list);
  }
  auto found = t.items.find(item);
  if (found != t.items.end()) return found->second;
  ChargeList charges;
  Decision d = Apply(*current(), request, now, &charges, !t.counted_message);
  if (d.admitted()) {
    if (!d.exempt) t.counted_message = true;
    for (int i = 0; i < charges.n; ++i) t.charges.push_back(charges.items[i]);
  }
  t.items.emplace(std::string(item), d);
  return d;
}

Decision Limiter::Commit(absl::string_view txn_id, uint64_t bytes, absl::Time now) {
  auto& shard = txns_->For(txn_id);
  std::lock_guard<std::mutex> lock(shard.mu);
  auto it = shard.map.find(txn_id);
  if (it == shard.map.end()) return Decision();
  Txn& t = it->second;
  Decision d;
  if (bytes > 0) {
    Request r;
    r.sender = t.sender;
    r.sasl_user = t.sasl_user;
    r.client_ip = t.client_ip;
    r.script = t.script;
    r.list = t.list;
    r.messages = 0;
    r.recipients = 0;
    r.bytes = bytes;
    ChargeList charges;
    d = Apply(*current(), r, now, &charges, false);
    if (!d.admitted()) {
      Undo(t.charges.data(), t.charges.size(), now);
      shard.map.erase(it);
      return d;
    }
  }
  shard.map.erase(it);
  return d;
}

void Limiter::Release(absl::string_view txn_id, absl::Time now) {
  auto& shard = txns_->For(txn_id);
  std::lock_guard<std::mutex> lock(shard.mu);
  auto it = shard.map.find(txn_id);
  if (it == shard.map.end()) return;
  Undo(it->second.charges.data(), it->second.charges.size(), now);
  shard.map.erase(it);
}

int Limiter::ExpireTransactions(absl::Time now, absl::Duration max_age, bool keep) {
  int released = 0;
  txns_->ForEach([&](TxnShard& shard) {
    for (auto it = shard.map.begin(); it != shard.map.end();) {
      if (now - it->second.created > max_age) {
        if (!keep) Undo(it->second.charges.data(), it->second.charges.size(), now);
        shard.map.erase(it++);
        ++released;
      } else {
        ++it;
      }
    }
  });
  return released;
}

uint64_t Limiter::Maintain(absl::Time now, absl::Duration max_txn_age) {
  ExpireTransactions(now, max_txn_age);
  if (!names_path_.empty()) SaveNames();
  return table_->Sweep(now);
}

size_t Limiter::open_transactions() const {
  size_t n = 0;
  txns_->ForEach([&n](const TxnShard& t) { n += t.map.size(); });
  return n;
}

}  // namespace sluice
