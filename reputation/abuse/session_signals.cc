#include "reputation/abuse/session_signals.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "ratelimit/hash.h"
#include "ratelimit/ip.h"
#include "ratelimit/sliding_window.h"
#include "ratelimit/window_counter.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace sluice {

namespace {

enum Kind : uint64_t {
  kAuthIp = 1,
  kAuthUser,
  kUnknownRcpt,
  kConcurrent,
  kConnRate,
  kBlock,
};

uint64_t Key(Kind kind, absl::string_view s) {
  return Mix64(XXH3_64bits_withSeed(s.data(), s.size(), 0x5e55000000000000ull + kind)) | 1;
}

// The gauge of simultaneous connections uses a day-long window, so a
// connection's +1 is still in it when the connection ends.
constexpr int64_t kGaugeWindowS = 86400;

}  // namespace

absl::StatusOr<std::unique_ptr<SessionSignals>> SessionSignals::Create(const Options& o,
                                                                       absl::Time now) {
  for (absl::Duration w :
       {o.auth_window, o.unknown_recipient_window, o.login_window, o.connection_window}) {
    if (w < absl::Seconds(1) || w > absl::Hours(24)) {
      return absl::InvalidArgumentError("session signals: windows must be 1s .. 24h");
    }
  }
  if (o.hll_precision < 4 || o.hll_precision > 16) {
    return absl::InvalidArgumentError("session signals: hll_precision must be in [4, 16]");
  }
  auto table = CounterTable::Open(o.table, now);
  if (!table.ok()) return table.status();
  std::unique_ptr<SessionSignals> s(new SessionSignals());
  s->options_ = o;
  s->table_ = std::move(*table);
  return s;
}

uint64_t SessionSignals::Count(uint64_t key, int64_t window_s, int64_t since_ms,
                               int64_t delta) noexcept {
  const uint64_t overflow = Key(kBlock, "\x01overflow") ^ static_cast<uint64_t>(window_s);
  return CountInWindow(*table_, key, overflow, SlidingWindow::SubBucketSeconds(window_s), since_ms,
                       delta);
}

void SessionSignals::Block(uint64_t key, absl::Duration d, absl::Time now) noexcept {
  const int64_t until = table_->SinceBaseUs(now + d);
  const int64_t since_ms = table_->SinceBaseMs(now);
  CounterTable::Placement how;
  internal::Slot* slot = table_->FindOrClaim(key, internal::MakeKeyWord(key, 0), key ^ 1,
                                             internal::MakeKeyWord(key ^ 1, 0), since_ms, &how);
  if (slot == nullptr || how == CounterTable::Placement::kOverflow) return;
  uint64_t cur = slot->head.load(std::memory_order_acquire);
  // acq_rel: a later "blocked until" wins; nothing else lives in the word.
  while (cur != internal::kDeadHead && static_cast<int64_t>(cur) < until &&
         !slot->head.compare_exchange_weak(cur, static_cast<uint64_t>(until),
                                           std::memory_order_acq_rel, std::memory_order_acquire)) {
  }
}

absl::Duration SessionSignals::BlockedFor(uint64_t key, absl::Time now) noexcept {
  const internal::Slot* slot = table_->Find(key, internal::MakeKeyWord(key, 0));
  if (slot == nullptr) return absl::ZeroDuration();
  const uint64_t until = slot->head.load(std::memory_order_acquire);
  if (until == internal::kDeadHead) return absl::ZeroDuration();
  const int64_t left = static_cast<int64_t>(until) - table_->SinceBaseUs(now);
  return left > 0 ? absl::Microseconds(left) : absl::ZeroDuration();
}

SessionSignals::Signal SessionSignals::CheckBlocked(absl::string_view ip, absl::string_view user,
                                                    absl::Time now) noexcept {
  Signal v;
  absl::Duration left = absl::ZeroDuration();
  if (!ip.empty()) left = BlockedFor(Key(kBlock, ip), now);
  if (!user.empty()) left = std::max(left, BlockedFor(Key(kBlock, user), now));
  if (left > absl::ZeroDuration()) {
    v.detector = Detector::kBlocked;
    v.retry_after = left;
  }
  return v;
}

void SessionSignals::Unblock(absl::string_view ip_or_user, absl::Time now) noexcept {
  const uint64_t key = Key(kBlock, ip_or_user);
  internal::Slot* slot =
      const_cast<internal::Slot*>(table_->Find(key, internal::MakeKeyWord(key, 0)));
  if (slot == nullptr) return;
  uint64_t cur = slot->head.load(std::memory_order_acquire);
  const uint64_t past = static_cast<uint64_t>(std::max<int64_t>(0, table_->SinceBaseUs(now)));
  while (cur != internal::kDeadHead && cur > past &&
         !slot->head.compare_exchange_weak(cur, past, std::memory_order_acq_rel,
                                           std::memory_order_acquire)) {
  }
}

SessionSignals::Signal SessionSignals::Connect(absl::string_view ip, absl::Time now) noexcept {
  Signal v = CheckBlocked(ip, "", now);
  if (v.reject()) return v;
  const int64_t since_ms = table_->SinceBaseMs(now);
  const uint64_t rate =
      Count(Key(kConnRate, ip), absl::ToInt64Seconds(options_.connection_window), since_ms, 1);
  if (rate > options_.max_connections_per_ip) {
    v.detector = Detector::kConnectionsPerIp;
    v.count = rate;
    v.limit = options_.max_connections_per_ip;
    return v;
  }
  const uint64_t key = Key(kConcurrent, ip);
  const uint64_t open = Count(key, kGaugeWindowS, since_ms, 1);
  if (open > options_.max_concurrent_per_ip) {
    Count(key, kGaugeWindowS, since_ms, -1);  // not admitted: no Disconnect follows
    v.detector = Detector::kConcurrentConnectionsPerIp;
    v.count = open;
    v.limit = options_.max_concurrent_per_ip;
  }
  return v;
}

void SessionSignals::Disconnect(absl::string_view ip, absl::Time now) noexcept {
  Count(Key(kConcurrent, ip), kGaugeWindowS, table_->SinceBaseMs(now), -1);
}

SessionSignals::Signal SessionSignals::AuthFailed(absl::string_view ip, absl::string_view user,
                                                  absl::Time now) noexcept {
  Signal v = CheckBlocked(ip, user, now);
  if (v.reject()) return v;
  const int64_t since_ms = table_->SinceBaseMs(now);
  if (!ip.empty()) {
    uint64_t n = Count(Key(kAuthIp, ip), absl::ToInt64Seconds(options_.auth_window), since_ms, 1);
    if (n >= options_.auth_failures_per_ip) {
      Block(Key(kBlock, ip), options_.auth_block, now);
      return Signal{Detector::kAuthFailuresPerIp, n, options_.auth_failures_per_ip,
                    options_.auth_block};
    }
  }
  if (!user.empty()) {
    uint64_t n =
        Count(Key(kAuthUser, user), absl::ToInt64Seconds(options_.auth_user_window), since_ms, 1);
    if (n >= options_.auth_failures_per_user) {
      Block(Key(kBlock, user), options_.auth_user_block, now);
      return Signal{Detector::kAuthFailuresPerUser, n, options_.auth_failures_per_user,
                    options_.auth_user_block};
    }
  }
  return v;
}

SessionSignals::Signal SessionSignals::UnknownRecipient(absl::string_view ip,
                                                        absl::Time now) noexcept {
  Signal v = CheckBlocked(ip, "", now);
  if (v.reject()) return v;
  uint64_t n = Count(Key(kUnknownRcpt, ip), absl::ToInt64Seconds(options_.unknown_recipient_window),
                     table_->SinceBaseMs(now), 1);
  if (n >= options_.unknown_recipients_per_ip) {
    Block(Key(kBlock, ip), options_.harvest_block, now);
    return Signal{Detector::kUnknownRecipientsPerIp, n, options_.unknown_recipients_per_ip,
                  options_.harvest_block};
  }
  return v;
}

std::string SessionSignals::Network(absl::string_view ip) {
  IpAddress a;
  if (!ParseIp(ip, &a)) return std::string(ip);
  const int len = a.family == 4 ? 24 : 48;
  MaskTo(&a, len);
  return FormatIp(a) + (a.family == 4 ? "/24" : "/48");
}

SessionSignals::Signal SessionSignals::AuthSucceeded(absl::string_view ip, absl::string_view user,
                                                     absl::Time now) {
  Signal v = CheckBlocked(ip, user, now);
  if (v.reject() || user.empty()) return v;
  const std::string net = Network(ip);
  const uint64_t ip_hash = XXH3_64bits(ip.data(), ip.size());
  const uint64_t net_hash = XXH3_64bits(net.data(), net.size()) | 1;
  const int64_t window = absl::ToUnixSeconds(now) / absl::ToInt64Seconds(options_.login_window);
  std::lock_guard<std::mutex> lock(users_mu_);
  auto it = users_.find(user);
  if (it == users_.end()) {
    if (users_.size() >= options_.max_users) users_.erase(users_.begin());  // bounded
    it = users_.emplace(std::string(user), std::make_unique<User>(options_.hll_precision)).first;
  }
  User& u = *it->second;
  if (u.window != window) {  // roll the two windows
    if (u.window == window - 1) {
      u.ips[1] = u.ips[0];
      u.nets[1] = u.nets[0];
    } else {
      u.ips[1].Clear();
      u.nets[1].Clear();
    }
    u.ips[0].Clear();
    u.nets[0].Clear();
    u.window = window;
  }
  u.ips[0].Add(Mix64(ip_hash));
  u.nets[0].Add(Mix64(net_hash));
  HyperLogLog ips = u.ips[0], nets = u.nets[0];
  ips.Merge(u.ips[1]);
  nets.Merge(u.nets[1]);
  const uint64_t n_ips = static_cast<uint64_t>(ips.Estimate() + 0.5);
  const uint64_t n_nets = static_cast<uint64_t>(nets.Estimate() + 0.5);
  bool known = false;
  bool first_login = true;
  for (uint64_t k : u.known_nets) {
    known |= k == net_hash;
    first_login &= k == 0;
  }
  if (!known) {
    u.known_nets[u.next_known] = net_hash;
    u.next_known = (u.next_known + 1) % 16;
  }
  if (n_nets > options_.max_networks_per_user) {
    return Signal{Detector::kNetworksPerUser, n_nets, options_.max_networks_per_user,
                  absl::ZeroDuration()};
  }
  if (n_ips > options_.max_ips_per_user) {
    return Signal{Detector::kIpsPerUser, n_ips, options_.max_ips_per_user, absl::ZeroDuration()};
  }
  if (!known && !first_login) {
    return Signal{Detector::kNewNetwork, n_nets, 0, absl::ZeroDuration()};
  }
  return v;
}

}  // namespace sluice
