#include "ratelimit/limiter.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <new>
#include <random>
#include <utility>

#include "absl/base/attributes.h"
#include "absl/base/optimization.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "ratelimit/gcra.h"
#include "ratelimit/internal/limiter_state.h"
#include "ratelimit/internal/thread_cache.h"
#include "ratelimit/ip.h"
#include "ratelimit/sliding_window.h"

namespace sluice {

using internal::CachedCounter;
using internal::FindPath;
using internal::g_generation;
using internal::kCacheCounters;
using internal::kNoLease;
using internal::LeaseEntry;
using internal::LeaseFor;
using internal::LeaseIndex;
using internal::LeaseRegistry;
using internal::LeaseTableGuard;
using internal::PathCacheEntry;
using internal::PathToFill;
using internal::RequestKey;
using internal::SpendLease;

namespace {

SlidingWindow::Outcome ToWindowOutcome(Gcra::Outcome o) {
  return o == Gcra::Outcome::kAdmitted   ? SlidingWindow::Outcome::kAdmitted
         : o == Gcra::Outcome::kSlotGone ? SlidingWindow::Outcome::kSlotGone
                                         : SlidingWindow::Outcome::kDenied;
}

}  // namespace

bool Limiter::TakesLeases(const void* rule) const noexcept {
  return options_.lease && static_cast<const Rule*>(rule)->lease > 0;
}

// Charges a counter itself (either algorithm; no lease): its owner checked,
// then one CAS. `epoch` is the window's sub-bucket (unused for GCRA). Fills
// *charge when admitted, and *usage (a window's usage) or *gcra (GCRA's
// answer). Inline: the cached path charges its counters without leases
// through it.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline SlidingWindow::Outcome Limiter::ChargeDirect(
    Slot* slot, uint64_t owner, const void* rule_ptr, uint32_t epoch, int64_t since_us,
    uint64_t amount, uint64_t* usage, Gcra::Result* gcra, Charge* charge) noexcept {
  const Rule& rule = *static_cast<const Rule*>(rule_ptr);
  if (!CounterTable::StillOwns(slot, owner)) return SlidingWindow::Outcome::kSlotGone;
  if (rule.gcra) {
    *gcra = Gcra::TryAdd(*slot, since_us, amount, rule.gcra_params);
    if (gcra->outcome == Gcra::Outcome::kAdmitted) {
      *charge = Charge{slot, owner, true, 0, gcra->charged_us, amount, false};
    }
    return ToWindowOutcome(gcra->outcome);
  }
  const auto res = SlidingWindow::TryAdd(*slot, epoch, amount, rule.max);
  *usage = res.usage;
  if (res.outcome == SlidingWindow::Outcome::kAdmitted) {
    *charge = Charge{slot, owner, false, res.epoch, 0, amount, false};
  }
  return res.outcome;
}

// Our lease entry `l` of a counter is spent or of another sub-bucket: gives
// back the rest and takes a new lease, only while far from the limit (a
// window at most half full; a GCRA arrival time at most half its tolerance
// ahead). Returns true with *out set if that decided (admitted from the new
// lease, or the slot gone); false if the counter must be charged itself.
bool Limiter::RenewLease(LeaseEntry& l, Slot* slot, uint64_t owner, const void* rule_ptr,
                         uint32_t epoch, int64_t since_us, uint64_t amount, uint64_t* usage,
                         Charge* charge, SlidingWindow::Outcome* out) noexcept {
  using Outcome = SlidingWindow::Outcome;
  const Rule& rule = *static_cast<const Rule*>(rule_ptr);
  l.GiveBack();
  static thread_local LeaseTableGuard guard(internal::Cache().leases);  // gives leases back at exit
  static_cast<void>(guard);
  Outcome took;
  uint32_t lease_epoch = epoch;
  if (rule.gcra) {
    const Gcra::Params half{rule.gcra_params.emission_us, rule.gcra_params.tolerance_us / 2};
    took = ToWindowOutcome(Gcra::TryAdd(*slot, since_us, amount + rule.lease, half).outcome);
  } else {
    auto res = SlidingWindow::TryAdd(*slot, epoch, amount + rule.lease, rule.max / 2);
    took = res.outcome;
    lease_epoch = res.epoch;
    if (took == Outcome::kAdmitted) *usage = res.usage;
  }
  *out = took;
  if (took == Outcome::kSlotGone) return true;
  if (took != Outcome::kAdmitted) return false;
  // Still this counter's entry (RenewLease is for our own): a new stamp
  // only if the sub-bucket changed, so cached paths keep spending from it.
  if (l.epoch.load(std::memory_order_relaxed) != lease_epoch) l.Stamp();
  l.epoch.store(lease_epoch, std::memory_order_relaxed);
  l.remaining.store(rule.lease, std::memory_order_relaxed);
  *charge = Charge::Leased(slot, owner, rule, lease_epoch, amount);
  return true;
}

// Charges a counter (either algorithm), from this thread's lease when the
// rule takes leases. `epoch` is the window's sub-bucket, or for GCRA the
// lease epoch (GcraLeaseEpoch). Fills *charge when admitted; *usage (a
// window's usage) and *gcra (GCRA's answer) when the counter itself was
// asked rather than a lease. Inline (every caller is on the hot path);
// taking a new lease is RenewLease.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline SlidingWindow::Outcome Limiter::ChargeCounter(
    Slot* slot, uint64_t owner, const void* rule_ptr, uint32_t epoch, int64_t since_us,
    uint64_t amount, uint64_t* usage, Gcra::Result* gcra, Charge* charge) noexcept {
  using Outcome = SlidingWindow::Outcome;
  const Rule& rule = *static_cast<const Rule*>(rule_ptr);
  if (TakesLeases(&rule)) {
    const uint64_t generation = Generation();
    LeaseEntry& l = LeaseFor(owner);
    // Each field read once (SpendLease's test, then what to do if it fails).
    const uint64_t left = l.remaining.load(std::memory_order_relaxed);
    const uint64_t entry_generation = l.generation.load(std::memory_order_relaxed);
    const bool mine = entry_generation == generation &&
                      l.key_word.load(std::memory_order_relaxed) == owner &&
                      l.slot.load(std::memory_order_relaxed) == slot;
    if (mine && l.epoch.load(std::memory_order_relaxed) == epoch && left >= amount) {
      l.remaining.store(left - amount, std::memory_order_relaxed);
      *charge = Charge::Leased(slot, owner, rule, epoch, amount);
      return Outcome::kAdmitted;
    }
    if (!CounterTable::StillOwns(slot, owner)) return Outcome::kSlotGone;
    if (mine) {
      Outcome out;
      if (RenewLease(l, slot, owner, &rule, epoch, since_us, amount, usage, charge, &out)) {
        return out;
      }
    } else if (entry_generation != generation || left == 0) {
      // A counter earns a lease entry by being seen twice in a row here, so
      // busy shared counters keep theirs and one-off senders do not churn.
      // An entry of another limiter still holding units gives them back.
      if (left > 0) GiveBackOtherLease(&l);
      l.Set(generation, owner, slot, 0, 0, rule.gcra ? rule.gcra_params.emission_us : 0);
    }
  }
  return ChargeDirect(slot, owner, &rule, epoch, since_us, amount, usage, gcra, charge);
}

// A repeat request from this thread: its counters straight from the path
// cache, at the sub-buckets the entry keeps for the current span of the
// clock. Per counter: a lease spend (no atomic read-modify-write) or one
// inline CAS; no hashing, probing or division. The common case, every
// counter a busy one spent from this thread's lease, is the loop here;
// anything else goes on in FastApplyRest.
Limiter::Fast Limiter::FastApply(const Snapshot& s, const Request& r, absl::Time now,
                                 ChargeList* charges, bool count_messages, uint64_t key) noexcept {
  internal::ThreadCache& tc = internal::Cache();
  PathCacheEntry* ce = FindPath(tc, key);
  if (ce == nullptr || ce->generation != Generation() || ce->snapshot != &s) return Fast::kMiss;
  const int64_t since_us = table_->SinceBaseUs(now);
  if (ABSL_PREDICT_FALSE(since_us < ce->epochs_from_us || since_us >= ce->epochs_until_us)) {
    internal::RefreshEpochs(ce, since_us);
  }
  const uint64_t amounts[kNumMetrics] = {count_messages ? r.messages : 0, r.recipients, r.bytes};
  const int n = ce->n;
  int k = 0;
  LeaseEntry* const leases = tc.leases;
  // One comparison says a lease entry is still this counter's, of this
  // sub-bucket (its stamp).
  while (k < n && ce->lease[k] != kNoLease &&
         SpendLease(leases[ce->lease[k]], ce->stamp[k], amounts[ce->metric[k]])) {
    ++k;
  }
  if (ABSL_PREDICT_TRUE(k == n && !charges->keep)) return Fast::kAdmitted;
  return FastApplyRest(ce, leases, k, amounts, since_us, now, charges);
}

// Counters k.. of a cached path, after k spent from leases: each from its
// lease checked in full, a new lease, or the counter itself. The charge
// records are built only here (to take a refused request back, or for a
// caller that keeps them).
ABSL_ATTRIBUTE_NOINLINE Limiter::Fast Limiter::FastApplyRest(PathCacheEntry* ce, LeaseEntry* leases,
                                                             int k, const uint64_t* amounts,
                                                             int64_t since_us, absl::Time now,
                                                             ChargeList* charges) noexcept {
  const int n = ce->n;
  Charge done[kCacheCounters];
  uint32_t leased = (1u << k) - 1;  // bit i: counter i was spent from its lease
  for (; k < n; ++k) {
    const CachedCounter& c = ce->c[k];
    const uint64_t amount = amounts[ce->metric[k]];
    LeaseEntry* lease = ce->lease[k] == kNoLease ? nullptr : &leases[ce->lease[k]];
    if (lease != nullptr && SpendLease(*lease, ce->stamp[k], amount)) {
      leased |= 1u << k;
      continue;
    }
    const uint32_t e = ce->epoch[k];
    uint64_t usage;
    Gcra::Result gcra;
    if (lease != nullptr) {
      // ChargeCounter spends from the lease after checking it in full, takes
      // a new one, or charges the counter itself.
      if (ChargeCounter(c.slot, c.key_word, c.rule, e, since_us, amount, &usage, &gcra, &done[k]) !=
          SlidingWindow::Outcome::kAdmitted) {
        break;
      }
      // From the lease: its entry is this counter's now, at this sub-bucket.
      if (done[k].leased) ce->stamp[k] = lease->stamp;
    } else if (ChargeDirect(c.slot, c.key_word, c.rule, e, since_us, amount, &usage, &gcra,
                            &done[k]) != SlidingWindow::Outcome::kAdmitted) {
      break;
    }
  }
  if (k < n || charges->keep) {
    for (int i = 0; i < k; ++i) {
      if ((leased >> i & 1) == 0) continue;
      const CachedCounter& c = ce->c[i];
      done[i] = Charge::Leased(c.slot, c.key_word, *c.rule, ce->epoch[i], amounts[ce->metric[i]]);
    }
  }
  if (k < n) {
    Undo(done, k, now);
    return Fast::kRefused;
  }
  if (charges->keep) {
    for (int i = 0; i < n; ++i) charges->Add(done[i]);
  }
  return Fast::kAdmitted;
}

// ---- Construction ----------------------------------------------------------

absl::StatusOr<std::unique_ptr<Limiter>> Limiter::Create(const config::Config& config,
                                                         absl::Time now, Options options) {
  auto snap = Compile(config);
  if (!snap.ok()) return snap.status();
  std::unique_ptr<Limiter> l(new Limiter());
  l->options_ = options;
  l->NewGeneration();
  CounterTable::Options topt = options.table;
  if (options.table_from_config && config.has_table()) {
    if (config.table().has_path()) topt.path = config.table().path();
    if (config.table().has_max_memory_bytes()) {
      // The cap covers the whole limiter: 7/8 for counters, 1/8 for names.
      uint64_t cap = config.table().max_memory_bytes();
      topt.max_memory_bytes = cap - cap / 8;
      options.max_names = std::min<size_t>(options.max_names, cap / 8 / 256);
    }
    if (config.table().has_max_probe()) topt.max_probe = config.table().max_probe();
  }
  auto table = CounterTable::Open(topt, now);
  if (!table.ok()) return table.status();
  l->table_ = std::move(*table);
  l->names_ = std::make_unique<Names>();
  l->names_->cap = options.max_names;
  if (options.save_names && !l->table_->path().empty()) {
    l->names_path_ = l->table_->path() + ".names";
    l->LoadNames();
  }
  l->txns_ = std::make_unique<Sharded<TxnShard>>();
  std::random_device rd;
  l->txn_seed_ = (uint64_t{rd()} << 32) ^ rd();
  l->snapshots_.Publish(std::move(*snap), absl::Now());
  return l;
}

Limiter::~Limiter() {
  // This thread's leases go back now; other threads' at their exit (their
  // owner stopped them first, as a daemon does at a clean stop), except
  // for this limiter once it is gone (the registry says so).
  GiveBackLeases();
  {
    LeaseRegistry& reg = LeaseRegistry::Get();
    std::lock_guard<std::mutex> lock(reg.mu);
    for (uint64_t g : generations_) reg.live.erase(g);
  }
  if (!names_path_.empty()) SaveNames();
}

void Limiter::NewGeneration() {
  const uint64_t g = g_generation.fetch_add(1, std::memory_order_relaxed);
  LeaseRegistry& reg = LeaseRegistry::Get();
  std::lock_guard<std::mutex> lock(reg.mu);
  reg.live.insert(g);
  generations_.push_back(g);
  generation_.store(g, std::memory_order_relaxed);
}

void Limiter::GiveBackLeases() noexcept {
  LeaseRegistry& reg = LeaseRegistry::Get();
  std::lock_guard<std::mutex> lock(reg.mu);
  internal::ThreadCache* tc = internal::tls_cache;
  if (tc == nullptr) return;  // this thread never charged anything
  for (LeaseEntry& e : tc->leases) {
    const uint64_t g = e.generation.load(std::memory_order_relaxed);
    if (std::find(generations_.begin(), generations_.end(), g) != generations_.end()) e.GiveBack();
  }
}

void Limiter::GiveBackOtherLease(LeaseEntry* e) noexcept {
  LeaseRegistry& reg = LeaseRegistry::Get();
  std::lock_guard<std::mutex> lock(reg.mu);  // its limiter cannot go meanwhile
  if (reg.live.contains(e->generation.load(std::memory_order_relaxed))) e->GiveBack();
}

uint64_t Limiter::LeasedUnits(const Slot* slot, uint32_t epoch) const {
  uint64_t n = 0;
  // A counter's lease sits at one index of each thread's table (LeaseIndex
  // of its owner's key word): one entry per thread to look at.
  const size_t index = LeaseIndex(slot->key.load(std::memory_order_relaxed));
  LeaseRegistry& reg = LeaseRegistry::Get();
  std::lock_guard<std::mutex> lock(reg.mu);
  for (const LeaseEntry* table : reg.tables) {
    const LeaseEntry& e = table[index];
    if (e.slot.load(std::memory_order_relaxed) != slot) continue;
    const uint64_t g = e.generation.load(std::memory_order_relaxed);
    if (std::find(generations_.begin(), generations_.end(), g) == generations_.end()) continue;
    const int32_t age = SlidingWindow::Diff(epoch, e.epoch.load(std::memory_order_relaxed));
    if (age >= 0 && age <= SlidingWindow::kSubBuckets) {
      n += e.remaining.load(std::memory_order_relaxed);
    }
  }
  return n;
}

const config::Config& Limiter::config() const { return current()->config; }

absl::Status Limiter::Reload(const config::Config& config) {
  const config::Config& old = current()->config;
  if (config.table().path() != old.table().path() ||
      config.table().max_memory_bytes() != old.table().max_memory_bytes()) {
    return absl::FailedPreconditionError(
        "reload: the counter table settings changed; they take effect only on restart");
  }
  auto snap = Compile(config);
  if (!snap.ok()) return snap.status();
  std::lock_guard<std::mutex> lock(reload_mu_);
  snapshots_.Publish(std::move(*snap), absl::Now());
  snapshots_.CollectOlderThan(absl::Now(), kSnapshotGrace);
  // The rules leases were taken under may have changed: this thread's go
  // back now, other threads' when they next meet them (a new generation).
  GiveBackLeases();
  NewGeneration();
  return absl::OkStatus();
}

void Limiter::AddEventSink(std::function<void(const Event&)> sink) { events_.Add(std::move(sink)); }

void Limiter::RecordName(uint64_t entity_hash, Level level, absl::string_view name, Level anc_level,
                         absl::string_view anc_name) noexcept {
  Names& n = *names_;
  // relaxed: an approximate cap is enough.
  if (n.size.load(std::memory_order_relaxed) >= n.cap) return;
  auto& shard = n.shards.For(entity_hash);
  std::lock_guard<std::mutex> lock(shard.mu);
  auto [it, inserted] = shard.map.try_emplace(
      entity_hash, Names::Entry{level, std::string(name), anc_level, std::string(anc_name)});
  if (inserted) n.size.fetch_add(1, std::memory_order_relaxed);
}

// ---- The hot path ----------------------------------------------------------

int Limiter::ResolvePath(const Snapshot& s, const Request& r, char* mailbox_buf, PathEntry* out,
                         bool all_levels) const noexcept {
  int n = 0;
  const auto& root = s.nodes[0];
  // Extra dimensions.
  auto dim = [&](Level level, absl::string_view name) {
    if ((!s.enabled[static_cast<int>(level)] && !all_levels) || name.empty()) return;
    uint64_t h = EntityHash(level, name);
    int found = s.Lookup(h);
    int node = found >= 0 ? found : 0;
    out[n++].Set(level, name, h, &s.nodes[node].resolved[static_cast<int>(level)], node);
  };
  if (r.inbound) {  // mail from the internet: its client is all that counts it
    dim(Level::kClientIp, r.client_ip);
    return n;
  }
  if (r.late_dimensions) {  // learnt from the headers: charged at the end
    dim(Level::kScript, r.script);
    dim(Level::kList, r.list);
    return n;
  }
  // Chain: find the names (and, for directory entities, their nodes), then
  // walk top-down inheriting from the nearest configured ancestor.
  absl::string_view names[kNumChainLevels];
  int known[kNumChainLevels] = {0, -1, -1, -1, -1};  // node, if already found
  uint64_t hashes[kNumChainLevels];
  names[0] = root.name;
  hashes[0] = root.hash;
  absl::string_view mailbox = LowerAddress(r.sender, mailbox_buf);
  size_t at = LastAt(mailbox);
  absl::string_view domain;
  if (at != absl::string_view::npos) {
    domain = mailbox.substr(at + 1);
    if (at > 0) names[static_cast<int>(Level::kMailbox)] = mailbox;
  } else if (!mailbox.empty()) {
    names[static_cast<int>(Level::kMailbox)] = mailbox;  // a bare local user
  }
  names[static_cast<int>(Level::kDomain)] = domain;
  // Start fetching the mailbox's and domain's counters now (with the level
  // defaults' rules, right for most entities): the DRAM latency overlaps
  // with the directory work below.
  constexpr int kM = static_cast<int>(Level::kMailbox);
  int mailbox_node = -1;
  if (!names[kM].empty() && s.enabled[kM]) {
    hashes[kM] = EntityHash(Level::kMailbox, names[kM]);
    mailbox_node = s.Lookup(hashes[kM]);
    for (const Rule& rule : root.resolved[kM]) table_->Prefetch(CounterHash(hashes[kM], rule));
  }
  if (!domain.empty()) {
    constexpr int kD = static_cast<int>(Level::kDomain);
    hashes[kD] = EntityHash(Level::kDomain, domain);
    for (const Rule& rule : root.resolved[kD]) table_->Prefetch(CounterHash(hashes[kD], rule));
    int d = s.Lookup(hashes[kD]);
    known[kD] = d;
    int p = d >= 0 ? s.nodes[d].parent : -1;
    if (p > 0) {
      for (int j = p; j > 0; j = s.nodes[j].parent) {
        int L = static_cast<int>(s.nodes[j].level);
        names[L] = s.nodes[j].name;
        known[L] = j;
        hashes[L] = s.nodes[j].hash;
      }
    } else if (options_.resolver != nullptr) {
      PathResolver::Path path = options_.resolver->Resolve(domain);
      names[static_cast<int>(Level::kSubscription)] = path.subscription;
      names[static_cast<int>(Level::kPlan)] = path.plan;
      if (path.plan.empty() && !path.subscription.empty()) {
        int sub = s.Find(Level::kSubscription, path.subscription);
        if (sub >= 0 && s.nodes[sub].parent > 0) {
          names[static_cast<int>(Level::kPlan)] = s.nodes[s.nodes[sub].parent].name;
        }
      }
    }
  }
  int anc = 0;
  int chain_node[kNumChainLevels];
  for (int L = 0; L < kNumChainLevels; ++L) {
    chain_node[L] = -1;
    if (names[L].empty()) continue;
    int node = known[L];
    if (L == kM && s.enabled[kM]) {
      node = mailbox_node;  // hashed and looked up above
    } else if (node < 0 && L != static_cast<int>(Level::kDomain)) {
      hashes[L] = EntityHash(static_cast<Level>(L), names[L]);
      node = s.Lookup(hashes[L]);
    }
    if (node >= 0) {
      anc = node;
    } else {
      node = anc;
    }
    if (!s.enabled[L] && !all_levels) continue;
    chain_node[L] = node;
  }
  dim(Level::kClientIp, r.client_ip);  // (aggregated by the caller if needed)
  dim(Level::kSaslUser, r.sasl_user);
  dim(Level::kScript, r.script);
  dim(Level::kList, r.list);
  // Most specific first: mailbox ... server.
  for (int L = kNumChainLevels - 1; L >= 0; --L) {
    if (chain_node[L] < 0) continue;
    out[n++].Set(static_cast<Level>(L), names[L], hashes[L], &s.nodes[chain_node[L]].resolved[L],
                 chain_node[L]);
  }
  return n;
}

namespace {

void FillDecision(Decision* d, Action action, Level level, absl::string_view entity,
                  const Rule& rule, uint64_t usage) {
  d->action = action;
  d->level = level;
  d->metric = rule.metric;
  d->window_seconds = rule.window_s;
  d->limit = rule.max;
  d->usage = usage;
  d->smtp_code = rule.smtp_code;
  d->enhanced_status = rule.enhanced;
  d->text = rule.text;
  d->SetEntity(entity);
}

}  // namespace

bool Limiter::Exempt(const Snapshot& s, const Request& r) noexcept {
  if (!s.any_exemption) return false;
  if (!s.exempt_cidrs.empty() && !r.client_ip.empty()) {
    IpAddress a;
    if (ParseIp(r.client_ip, &a)) {
      for (const Cidr& c : s.exempt_cidrs) {
        if (c.Contains(a)) return true;
      }
    }
  }
  if (r.inbound) return false;  // a forged sender or login earns nothing
  if (!s.exempt_senders.empty() && !r.sender.empty()) {
    char buf[kMaxAddress];
    absl::string_view m = Lower(r.sender, buf, sizeof(buf));
    size_t at = m.rfind('@');
    if (s.exempt_senders.contains(std::string(m)) ||
        (at != absl::string_view::npos && s.exempt_senders.contains(std::string(m.substr(at))))) {
      return true;
    }
  }
  if (!s.exempt_sasl.empty() && !r.sasl_user.empty() &&
      s.exempt_sasl.contains(std::string(r.sasl_user))) {
    return true;
  }
  return false;
}

bool Limiter::IsExempt(const Request& r) const noexcept { return Exempt(*current(), r); }

bool Limiter::IsExemptClient(absl::string_view ip) const noexcept {
  Request r;  // only the address: only the CIDRs can match
  r.client_ip = ip;
  return Exempt(*current(), r);
}

// Room for an address's network as text ("2001:db8:abcd::/48").
constexpr size_t kIpTextBytes = 64;

// A rule on the request's path with something to count.
struct Limiter::Pending {
  const Rule* rule;
  const PathEntry* entry;
  uint64_t hash;
  uint64_t key_word;
  uint64_t amount;
};

// What one pass of ChargeRules found (Apply starts over from a fresh one
// when it charges a second time).
struct Limiter::PassResult {
  const Pending* failed = nullptr;  // the rule that had no room
  uint64_t failed_usage = 0;
  int64_t failed_retry_ms = 0;  // -1: never (a limit of 0)
  bool failed_overflow = false;
  bool failed_oversized = false;        // the request alone exceeds the rule
  const Pending* shadow_hit = nullptr;  // the first soft rule that tripped
  uint64_t shadow_usage = 0;
  bool cacheable = false;  // the path may go to the thread's cache
};

// What charging a request's rules found.
struct Limiter::Charging : PassResult {
  Charging(int64_t us, bool may_cache) : since_us(us), since_ms(us / 1000), epochs(us / 1000) {
    cacheable = may_cache;
  }
  // Forgets what a pass found (before charging again).
  void Restart(bool may_cache) {
    static_cast<PassResult&>(*this) = PassResult();
    cacheable = may_cache;
  }
  const int64_t since_us;  // the request's time on the table's clock
  const int64_t since_ms;
  internal::EpochMemo epochs;  // the request's sub-bucket per window length
  CachedCounter to_cache[kCacheCounters];
  uint64_t usage[kMaxPending];  // a sliding window's own usage once charged (shared rules)
};

// The client address as the text of its configured network ("192.0.2.0/24")
// when the client-IP level aggregates; else the request itself. ipbuf
// holds kIpTextBytes; `aggregated` is raw storage, where the copy is built
// when one is needed.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline const Request& Limiter::AggregateClientIp(
    const Snapshot& s, const Request& r, char* ipbuf, Request* aggregated) const noexcept {
  const Request* rp = &r;
  if (s.enabled[static_cast<int>(Level::kClientIp)] && !r.client_ip.empty()) {
    IpAddress a;
    if (ParseIp(r.client_ip, &a)) {
      const int prefix = a.family == 4 ? s.v4_prefix : s.v6_prefix;
      if (prefix < a.bits()) {
        MaskTo(&a, prefix);
        if (!FormatIp(a, ipbuf, kIpTextBytes).empty()) {
          size_t len = std::strlen(ipbuf);
          int w = snprintf(ipbuf + len, kIpTextBytes - len, "/%d", prefix);
          new (aggregated) Request(r);
          aggregated->client_ip = absl::string_view(ipbuf, len + (w > 0 ? w : 0));
          rp = aggregated;
        }
      }
    }
  }

  return *rp;
}

// Every rule on the path with something to count, its counter's hash
// prefetched. Returns how many.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline int Limiter::CollectRules(const PathEntry* path, int np,
                                                              const Request& req,
                                                              bool count_messages,
                                                              Pending* pending) const noexcept {
  int n = 0;
  for (int i = 0; i < np; ++i) {
    for (const Rule& rule : *path[i].rules) {
      uint64_t amount = rule.metric == Metric::kMessages     ? (count_messages ? req.messages : 0)
                        : rule.metric == Metric::kRecipients ? req.recipients
                                                             : req.bytes;
      if (amount == 0) continue;
      uint64_t h = CounterHash(path[i].entity_hash, rule);
      pending[n++] = Pending{&rule, &path[i], h, MakeKeyWord(h, rule.sub_s), amount};
      table_->Prefetch(h);
    }
  }
  return n;
}

// Charges the rules in order until one has no room (c->failed). Soft rules
// (shadow, notify) that trip are charged anyway and noted (c->shadow_hit).
//
// With `reverse`, the least specific rule goes first: the mailbox's counter,
// the one least likely to be in cache (its fetch was started in
// ResolvePath), is touched last, so its DRAM latency overlaps the work on
// the others. Apply only keeps such a pass if nothing tripped; otherwise it
// takes it back and charges again in the documented order, so which rule a
// refusal or a shadow trip names does not change.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline void Limiter::ChargeRules(const Snapshot& s,
                                                              const Pending* pending, int n,
                                                              ChargeList* charges, Charging* c,
                                                              bool reverse) noexcept {
  for (int k = 0; k < n && c->failed == nullptr; ++k) {
    const int i = reverse ? n - 1 - k : k;
    const Pending& p = pending[i];
    const Rule& rule = *p.rule;
    const bool soft = rule.soft;
    c->usage[i] = 0;
    // A request larger than the rule ever admits (over a window's limit,
    // over a GCRA burst) can never pass: refuse it without a counter.
    // Soft rules go on below (they count it and report a shadow trip).
    if (!soft && rule.max != 0 &&
        (rule.gcra ? !Gcra::Fits(p.amount, rule.gcra_params) : p.amount > rule.max)) {
      c->cacheable = false;
      c->failed = &p;
      c->failed_retry_ms = -1;
      c->failed_oversized = true;
      break;
    }
    if (rule.max == 0 && !rule.gcra) {  // 0 blocks: no counter needed
      c->cacheable = false;
      if (soft) {
        if (c->shadow_hit == nullptr) c->shadow_hit = &p;
        continue;
      }
      c->failed = &p;
      c->failed_retry_ms = -1;
      break;
    }
    for (int attempt = 0; attempt < 8; ++attempt) {
      CounterTable::Placement how;
      const uint64_t overflow_word = rule.overflow_word;
      Slot* slot = table_->FindOrClaim(p.hash, p.key_word, rule.overflow_hash, overflow_word,
                                       c->since_ms, &how);
      if (slot == nullptr) {  // even the overflow region is full: fail closed
        c->failed = &p;
        c->failed_retry_ms = 60000;
        break;
      }
      uint64_t owner = how == CounterTable::Placement::kOverflow ? overflow_word : p.key_word;
      if (how == CounterTable::Placement::kClaimed) {
        const auto& node = s.nodes[p.entry->node];
        RecordName(p.entry->entity_hash, p.entry->level, p.entry->name, node.level, node.name);
      }
      if (how == CounterTable::Placement::kOverflow) c->cacheable = false;
      if (c->cacheable) c->to_cache[i] = CachedCounter{&rule, slot, owner};
      if (!rule.gcra) {
        uint32_t epoch = c->epochs.Get(rule.sub_s);
        SlidingWindow::AddResult res{SlidingWindow::Outcome::kDenied, 0, epoch};
        Charge charged;
        Gcra::Result unused;
        res.outcome = ChargeCounter(slot, owner, &rule, epoch, c->since_us, p.amount, &res.usage,
                                    &unused, &charged);
        if (res.outcome == SlidingWindow::Outcome::kSlotGone) continue;
        if (res.outcome == SlidingWindow::Outcome::kAdmitted) {
          if (!CounterTable::StillOwns(slot, owner)) continue;  // reclaimed under us: redo
          charges->Add(charged);
          c->usage[i] = res.usage;
          break;
        }
        if (res.outcome == SlidingWindow::Outcome::kDenied) {
          c->cacheable = false;
          if (soft) {
            res = SlidingWindow::ForceAdd(*slot, epoch, p.amount);
            if (c->shadow_hit == nullptr) {
              c->shadow_hit = &p;
              c->shadow_usage = SlidingWindow::Usage(*slot, epoch);
            }
          } else {
            c->failed = &p;
            c->failed_usage = res.usage;
            c->failed_overflow = how == CounterTable::Placement::kOverflow;
            int64_t k = SlidingWindow::EpochsUntilRoom(*slot, epoch, p.amount, rule.max);
            int64_t sub_ms = int64_t{rule.sub_s} * 1000;
            c->failed_retry_ms = (c->since_ms / sub_ms + k) * sub_ms - c->since_ms;
            break;
          }
        }
        if (!CounterTable::StillOwns(slot, owner)) continue;  // reclaimed under us: redo
        charges->Add(slot, owner, false, res.epoch, 0, p.amount, false);
        c->usage[i] = res.usage;
        break;
      } else {
        Gcra::Result res{};
        Charge charged;
        uint64_t unused;
        const auto out = ChargeCounter(slot, owner, &rule, internal::GcraLeaseEpoch(c->since_us),
                                       c->since_us, p.amount, &unused, &res, &charged);
        if (out == SlidingWindow::Outcome::kSlotGone) continue;
        if (out == SlidingWindow::Outcome::kAdmitted) {
          if (!CounterTable::StillOwns(slot, owner)) continue;  // reclaimed under us: redo
          charges->Add(charged);
          break;
        }
        {  // denied by the counter itself (res is its answer)
          c->cacheable = false;
          if (soft) {
            res = Gcra::TryAdd(*slot, c->since_us, p.amount, rule.gcra_params, /*force=*/true);
            if (c->shadow_hit == nullptr) {
              c->shadow_hit = &p;
              c->shadow_usage = Gcra::Usage(*slot, c->since_us, rule.gcra_params);
            }
          } else {
            c->failed = &p;
            c->failed_usage = Gcra::Usage(*slot, c->since_us, rule.gcra_params);
            c->failed_overflow = how == CounterTable::Placement::kOverflow;
            c->failed_retry_ms = (res.retry_after_us + 999) / 1000;
            break;
          }
        }
        if (!CounterTable::StillOwns(slot, owner)) continue;
        charges->Add(slot, owner, true, 0, res.charged_us, p.amount, false);
        break;
      }
    }
  }
}

// A refused request: strict rules still count the attempt; the decision
// names the rule that had no room; the trip is an event.
void Limiter::Refuse(const Pending* pending, int n, const Charging& c, absl::Time now,
                     Decision* d) noexcept {
  // Strict rules count every attempt, admitted or not.
  for (int i = 0; i < n; ++i) {
    const Pending& p = pending[i];
    if (!p.rule->strict || p.rule->max == 0) continue;
    CounterTable::Placement how;
    const uint64_t ow = p.rule->overflow_word;
    Slot* slot =
        table_->FindOrClaim(p.hash, p.key_word, p.rule->overflow_hash, ow, c.since_ms, &how);
    if (slot == nullptr) continue;
    if (p.rule->gcra) {
      Gcra::TryAdd(*slot, c.since_us, p.amount, p.rule->gcra_params, true);
    } else {
      SlidingWindow::ForceAdd(*slot, SlidingWindow::EpochAt(c.since_ms, p.rule->sub_s), p.amount);
    }
  }
  FillDecision(d, c.failed->rule->action, c.failed->entry->level, c.failed->entry->name,
               *c.failed->rule, c.failed_usage);
  d->retry_after =
      c.failed_retry_ms < 0 ? absl::InfiniteDuration() : absl::Milliseconds(c.failed_retry_ms);
  d->overflow = c.failed_overflow;
  d->requested = c.failed->amount;
  if (c.failed_oversized) {
    d->oversized = true;
    if (d->action == Action::kDefer) {  // retrying cannot help: refuse for good
      const Metric m = c.failed->rule->metric;
      d->action = Action::kReject;
      d->smtp_code = m == Metric::kBytes ? 552 : 550;
      d->enhanced_status = m == Metric::kBytes        ? "5.3.4"
                           : m == Metric::kRecipients ? "5.5.3"
                                                      : "5.7.1";
    }
  }
  // Keys in the overflow bucket share one event (a flood is one trip).
  Emit(c.failed_overflow ? c.failed->rule->overflow_hash : c.failed->hash, now,
       c.failed->rule->window_s, [&] {
         std::string who = c.failed_overflow ? absl::StrCat("(overflow of ",
                                                            LevelName(c.failed->entry->level), ")")
                                             : std::string(c.failed->entry->name);
         return Event{now,
                      c.failed->entry->level,
                      std::move(who),
                      c.failed->rule->metric,
                      c.failed->rule->window_s,
                      c.failed->rule->max,
                      c.failed_usage,
                      c.failed->rule->action,
                      false};
       });
}

// Remembers the counters a request was charged to, so the same request
// from this thread takes FastApply next time.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline void Limiter::RememberPath(const Snapshot& s, uint64_t req_key,
                                                               int n, const Charging& c) noexcept {
  // A first sighting only notes the key, so a flood of one-off senders
  // does not churn the cache.
  PathCacheEntry* ce = PathToFill(internal::Cache(), req_key);
  if (ce == nullptr) return;
  ce->generation = Generation();
  ce->snapshot = &s;
  ce->n = n;
  ce->epochs_from_us = ce->epochs_until_us = 0;  // worked out at the first repeat
  for (int i = 0; i < n; ++i) {
    const CachedCounter& cc = ce->c[i] = c.to_cache[i];
    ce->lease[i] = TakesLeases(cc.rule) ? static_cast<uint16_t>(LeaseIndex(cc.key_word)) : kNoLease;
    ce->stamp[i] = 0;
    ce->metric[i] = static_cast<uint8_t>(cc.rule->metric);
  }
}

// A soft rule (shadow or notify) tripped: the mail passes; say which rule
// would have acted, and emit its event.
void Limiter::ReportShadow(const Charging& c, absl::Time now, Decision* d) noexcept {
  const Rule& rule = *c.shadow_hit->rule;
  FillDecision(d, rule.action == Action::kNotify ? Action::kNotify : Action::kAccept,
               c.shadow_hit->entry->level, c.shadow_hit->entry->name, rule, c.shadow_usage);
  d->shadow = true;
  d->shadow_action = rule.action;
  d->smtp_code = 250;
  d->enhanced_status = "2.0.0";
  Emit(c.shadow_hit->hash, now, rule.window_s, [&] {
    return Event{now,
                 c.shadow_hit->entry->level,
                 std::string(c.shadow_hit->entry->name),
                 rule.metric,
                 rule.window_s,
                 rule.max,
                 c.shadow_usage,
                 rule.action,
                 rule.shadow};
  });
}

// Apply, step by step (every step fills `d` in place: one Decision, so the
// return is never a copy of its 300 bytes): exemptions; the client address as its
// network; the thread's cached path (FastApply); else (ApplyPath) the path's rules (CollectRules),
// charged (ChargeRules: least specific first, and most specific first again if anything tripped, so
// the documented order decides what is reported); on a refusal everything is taken back (Refuse);
// otherwise the path is remembered for the next request (RememberPath) and a shadow trip is
// reported.
Decision Limiter::Apply(const Snapshot& s, const Request& r, absl::Time now, ChargeList* charges,
                        bool count_messages) noexcept {
  Decision d;
  if (s.any_exemption && Exempt(s, r)) {
    d.exempt = true;
    return d;
  }
  // Built only when the client-IP level counts networks (most requests
  // need no copy of the request).
  union Storage {
    Storage() {}
    Request request;
  } aggregated;
  char ipbuf[kIpTextBytes];
  const Request& req = AggregateClientIp(s, r, ipbuf, &aggregated.request);
  const uint64_t req_key = RequestKey(req, count_messages);
  const Fast fast = FastApply(s, req, now, charges, count_messages, req_key);
  if (fast != Fast::kAdmitted) ApplyPath(s, req, now, charges, count_messages, req_key, fast, &d);
  return d;
}

// Apply past the thread's cached path: the request's path resolved, its
// rules charged, the path remembered. Out of line: its frame (the path,
// the rules, the charges) is large, and a cached path does not need it.
ABSL_ATTRIBUTE_NOINLINE void Limiter::ApplyPath(const Snapshot& s, const Request& req,
                                                absl::Time now, ChargeList* charges,
                                                bool count_messages, uint64_t req_key, Fast fast,
                                                Decision* out) noexcept {
  Decision& d = *out;
  char mailbox_buf[kMaxAddress];
  PathEntry path[kNumLevels];
  const int np = ResolvePath(s, req, mailbox_buf, path);
  Pending pending[kMaxPending];
  const int n = CollectRules(path, np, req, count_messages, pending);

  const int64_t since_us = table_->SinceBaseUs(now);
  bool shared = false;
  if (options_.shared != nullptr) {
    for (int i = 0; i < n && !shared; ++i) shared = pending[i].rule->shared;
  }
  // A path with shared rules never goes to the thread's cache (FastApply
  // would skip the shared check).
  const bool may_cache = n <= kCacheCounters && !shared;
  Charging c(since_us, may_cache);
  const int first_charge = charges->n;
  // The quick order only when nothing is known to trip (a refused cached
  // path goes straight to the documented order).
  const bool reverse = n > 1 && fast == Fast::kMiss;
  ChargeRules(s, pending, n, charges, &c, reverse);
  if (reverse && (c.failed != nullptr || c.shadow_hit != nullptr)) {
    // Something tripped in the quick order: again in the documented one.
    Undo(charges->items + first_charge, charges->n - first_charge, now);
    charges->n = first_charge;
    c.Restart(may_cache);
    ChargeRules(s, pending, n, charges, &c, /*reverse=*/false);
  }
  if (c.failed == nullptr && shared) AdmitShared(pending, n, now, charges, &c);
  if (c.failed != nullptr) {
    // All or nothing: take back what this request charged.
    Undo(charges->items + first_charge, charges->n - first_charge, now);
    charges->n = first_charge;
    Refuse(pending, n, c, now, &d);
    return;
  }
  if (c.cacheable && c.shadow_hit == nullptr) RememberPath(s, req_key, n, c);
  if (c.shadow_hit != nullptr) ReportShadow(c, now, &d);
}

// Every hard sliding-window rule of a shared level, once its own counter
// admitted the request, is asked of the shared view (this host's share of
// the limit all hosts share); a refusal is the rule's refusal.
bool Limiter::AdmitShared(const Pending* pending, int n, absl::Time now, ChargeList* charges,
                          Charging* c) noexcept {
  for (int i = 0; i < n; ++i) {
    const Pending& p = pending[i];
    const Rule& rule = *p.rule;
    if (!rule.shared || rule.gcra || rule.max == 0 || rule.soft) continue;
    const SharedLimits::Key key = SharedKey(rule, p.hash, p.entry->name);
    const uint64_t token = options_.shared->Admit(key, p.amount, c->usage[i], now);
    if (token == 0) {
      c->failed = &p;
      c->failed_usage = options_.shared->GlobalUsage(key);
      // Room may come at the next sub-bucket boundary (what other hosts
      // counted leaves the window then), or sooner as leases come back.
      const int64_t sub_ms = int64_t{rule.sub_s} * 1000;
      c->failed_retry_ms = sub_ms - c->since_ms % sub_ms;
      return false;
    }
    charges->Add(nullptr, token, false, 0, 0, p.amount, false);
  }
  return true;
}

void Limiter::Undo(const Charge* charges, size_t n, absl::Time now) noexcept {
  const int64_t since_us = table_->SinceBaseUs(now);
  for (size_t i = n; i-- > 0;) {
    const Charge& c = charges[i];
    if (c.slot == nullptr) {  // a shared admission: its token
      if (options_.shared != nullptr) options_.shared->Refund(c.key_word, c.amount);
      continue;
    }
    if (!CounterTable::StillOwns(c.slot, c.key_word)) continue;
    if (c.leased) {  // back into this thread's lease if it is still there
      LeaseEntry& l = LeaseFor(c.key_word);
      if (l.generation == Generation() && l.key_word == c.key_word && l.slot == c.slot &&
          l.epoch == c.epoch) {
        l.remaining += c.amount;
        continue;
      }
    }
    if (c.gcra) {
      Gcra::Remove(*c.slot, since_us, c.gcra_us);
      continue;
    }
    SlidingWindow::Remove(*c.slot, c.epoch, c.amount);
  }
}

Decision Limiter::CheckAndCharge(const Request& request, absl::Time now) noexcept {
  ChargeList charges;
  charges.keep = false;  // nothing to give back later
  return Apply(*current(), request, now, &charges, true);
}

}  // namespace sluice
