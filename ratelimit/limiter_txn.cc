// Transactions: Reserve at RCPT, Commit at end-of-data, Release on abort,
// keyed by transaction id, in 16 shards under a mutex each.
#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "ratelimit/internal/limiter_state.h"

namespace sluice {

size_t Limiter::TxnShardCap() const {
  return std::max<size_t>(4, options_.max_transactions / Sharded<TxnShard>::kShards);
}

Decision Limiter::Reserve(absl::string_view txn_id, absl::string_view item, const Request& request,
                          absl::Time now) {
  const internal::TxnKey id = internal::TxnKey::Of(txn_id, txn_seed_);
  auto& shard = txns_->For(id.lo);
  std::lock_guard<std::mutex> lock(shard.mu);
  const size_t shard_cap = TxnShardCap();
  if (shard.map.size() >= shard_cap && !shard.map.contains(id)) {
    // End the oldest open transaction (kept counted).
    while (!shard.order.empty()) {
      auto oldest = shard.map.find(shard.order.front());
      shard.order.pop_front();
      if (oldest != shard.map.end()) {
        shard.Remember(oldest->first, TxnShard::Ended::kKept, shard_cap);
        shard.map.erase(oldest);
        evicted_txns_.fetch_add(1, std::memory_order_relaxed);
        break;
      }
    }
  }
  auto [it, created] = shard.map.try_emplace(id);
  Txn& t = it->second;
  if (created) {
    if (shard.order.size() >= 2 * shard_cap) {  // mostly ended ones: drop them
      std::deque<internal::TxnKey> open;
      for (const auto& o : shard.order) {
        if (shard.map.contains(o)) open.push_back(o);
      }
      shard.order.swap(open);
    }
    shard.order.push_back(id);
    t.created = now;
    t.SetNames(request);
    t.inbound = request.inbound;
    // Ended earlier with its message kept counted (expired or evicted):
    // its later recipients do not count the message again.
    auto e = shard.ended.find(id);
    if (e != shard.ended.end()) {
      if (e->second == TxnShard::Ended::kKept) t.counted_message = true;
      shard.ended.erase(e);
    }
  }
  const internal::TxnKey item_key = internal::TxnKey::Of(item, txn_seed_);
  if (const Txn::Answer* found = t.FindItem(item_key)) return found->Get();
  if (options_.max_recipients != 0 && t.items.size() >= options_.max_recipients) {
    Decision d;  // not remembered: the cap is not a recipient's answer
    d.action = Action::kDefer;
    d.smtp_code = 452;
    d.enhanced_status = "4.5.3";
    d.text = "too many recipients in one transaction";
    d.limit = options_.max_recipients;
    d.usage = t.items.size();
    d.metric = Metric::kRecipients;
    d.level = Level::kServer;
    d.SetEntity(request.sender.empty() ? request.client_ip : request.sender);
    return d;
  }
  ChargeList charges;
  Decision d = Apply(*current(), request, now, &charges, !t.counted_message);
  if (d.admitted()) {
    if (!d.exempt) t.counted_message = true;
    if (charges.n > 0) t.item_start.push_back(static_cast<uint32_t>(t.charges.size()));
    t.charges.insert(t.charges.end(), charges.items, charges.items + charges.n);  // one allocation
  }
  t.AddItem(item_key, Txn::Answer::Of(d));
  return d;
}

Decision Limiter::Commit(absl::string_view txn_id, uint64_t bytes, absl::Time now,
                         const Request* request) {
  const internal::TxnKey id = internal::TxnKey::Of(txn_id, txn_seed_);
  auto& shard = txns_->For(id.lo);
  std::lock_guard<std::mutex> lock(shard.mu);
  const size_t shard_cap = TxnShardCap();
  auto it = shard.map.find(id);
  if (it == shard.map.end()) {
    auto e = shard.ended.find(id);
    const bool kept = e != shard.ended.end() && e->second == TxnShard::Ended::kKept;
    if ((e != shard.ended.end() && !kept) || request == nullptr) return Decision();
    // Not open any more (or never reserved): charge what it has not paid.
    Request r = *request;
    r.bytes = bytes;
    if (kept) {
      r.recipients = 0;
    } else if (r.recipients == 0) {
      r.recipients = 1;  // unknown: at least one
    }
    ChargeList charges;
    Decision d = Apply(*current(), r, now, &charges, /*count_messages=*/!kept);
    shard.Remember(id, TxnShard::Ended::kCommitted, shard_cap);
    return d;
  }
  Txn& t = it->second;
  // The MTA accepted fewer recipients than were reserved (a later
  // restriction refused some): give the rest back, never the first (it
  // holds the message).
  const uint64_t accepted = request != nullptr ? request->recipients : 0;
  if (accepted > 0 && accepted < t.item_start.size()) {
    const uint32_t keep_end = t.item_start[accepted];
    Undo(t.charges.data() + keep_end, t.charges.size() - keep_end, now);
    t.charges.resize(keep_end);
    t.item_start.resize(accepted);
  }
  Decision d;
  // A script or list the headers named after RCPT: charged now (message,
  // recipients kept, bytes), all or nothing with the reservations.
  if (request != nullptr && !t.inbound &&
      ((t.script().empty() && !request->script.empty()) ||
       (t.list().empty() && !request->list.empty()))) {
    Request late;
    late.late_dimensions = true;
    late.script = t.script().empty() ? request->script : absl::string_view();
    late.list = t.list().empty() ? request->list : absl::string_view();
    late.messages = 1;
    late.recipients = std::max<uint64_t>(1, t.item_start.size());
    late.bytes = bytes;
    ChargeList charges;
    d = Apply(*current(), late, now, &charges, true);
    if (!d.admitted()) {
      Undo(t.charges.data(), t.charges.size(), now);
      shard.Remember(id, TxnShard::Ended::kReleased, shard_cap);
      shard.map.erase(it);
      return d;
    }
    t.charges.insert(t.charges.end(), charges.items, charges.items + charges.n);  // one allocation
  }
  if (bytes > 0) {
    Request r;
    r.sender = t.sender();
    r.sasl_user = t.sasl_user();
    r.client_ip = t.client_ip();
    r.script = t.script();
    r.list = t.list();
    r.inbound = t.inbound;
    r.messages = 0;
    r.recipients = 0;
    r.bytes = bytes;
    ChargeList charges;
    d = Apply(*current(), r, now, &charges, false);
    if (!d.admitted()) {
      Undo(t.charges.data(), t.charges.size(), now);
      shard.Remember(id, TxnShard::Ended::kReleased, shard_cap);
      shard.map.erase(it);
      return d;
    }
  }
  shard.Remember(id, TxnShard::Ended::kCommitted, shard_cap);
  shard.map.erase(it);
  return d;
}

void Limiter::Release(absl::string_view txn_id, absl::Time now) {
  const internal::TxnKey id = internal::TxnKey::Of(txn_id, txn_seed_);
  auto& shard = txns_->For(id.lo);
  std::lock_guard<std::mutex> lock(shard.mu);
  auto it = shard.map.find(id);
  if (it == shard.map.end()) return;
  Undo(it->second.charges.data(), it->second.charges.size(), now);
  shard.Remember(id, TxnShard::Ended::kReleased, TxnShardCap());
  shard.map.erase(it);
}

int Limiter::ExpireTransactions(absl::Time now, absl::Duration max_age, bool keep) {
  int released = 0;
  txns_->ForEach([&](TxnShard& shard) {
    for (auto it = shard.map.begin(); it != shard.map.end();) {
      if (now - it->second.created > max_age) {
        if (!keep) Undo(it->second.charges.data(), it->second.charges.size(), now);
        shard.Remember(it->first, keep ? TxnShard::Ended::kKept : TxnShard::Ended::kReleased,
                       TxnShardCap());
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
  snapshots_.CollectOlderThan(absl::Now(), kSnapshotGrace);  // real time: how long calls take
  return table_->Sweep(now);
}

size_t Limiter::open_transactions() const {
  size_t n = 0;
  txns_->ForEach([&n](const TxnShard& t) { n += t.map.size(); });
  return n;
}

}  // namespace sluice
