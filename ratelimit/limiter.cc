#include "ratelimit/limiter.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>

#include "ratelimit/internal/event_dedup.h"
#include "ratelimit/internal/hash.h"
// Inline XXH3: short keys hash in a few ns without a call into libxxhash.
#define XXH_INLINE_ALL
#include <xxhash.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "ratelimit/gcra.h"
#include "ratelimit/ip.h"
#include "ratelimit/sliding_window.h"

namespace sluice {

using internal::MakeKeyWord;
using internal::Slot;

namespace {

constexpr int kMaxRulesPerLevel = 8;
constexpr int kMaxPending = kNumLevels * kMaxRulesPerLevel;
constexpr size_t kMaxAddress = 320;

inline uint64_t Mix(uint64_t x) { return internal::Mix64(x); }

uint64_t LevelSeed(Level level) { return 0x5a17ce0000000000ull + static_cast<uint64_t>(level); }

uint64_t EntityHash(Level level, absl::string_view name) {
  return XXH3_64bits_withSeed(name.data(), name.size(), LevelSeed(level));
}

// Lower-cases ASCII `in` into buf (at most cap bytes); returns the view.
// Branch-free so the compiler can vectorise it.
absl::string_view Lower(absl::string_view in, char* buf, size_t cap) {
  size_t n = std::min(in.size(), cap);
  const unsigned char* src = reinterpret_cast<const unsigned char*>(in.data());
  for (size_t i = 0; i < n; ++i) {
    unsigned char c = src[i];
    buf[i] = static_cast<char>(c | ((static_cast<unsigned char>(c - 'A') < 26u) << 5));
  }
  return absl::string_view(buf, n);
}

size_t LastAt(absl::string_view s) {
  for (size_t i = s.size(); i > 0; --i) {
    if (s[i - 1] == '@') return i - 1;
  }
  return absl::string_view::npos;
}

struct Cidr {
  IpAddress net;
  int prefix;
};

}  // namespace

// ---- Compiled config -------------------------------------------------------

namespace {

struct Rule {
  uint64_t seed = 0;  // identifies (level, metric, window, algorithm)
  uint64_t overflow_hash = 0;
  Level level = Level::kServer;
  Metric metric = Metric::kMessages;
  bool gcra = false;
  int64_t window_s = 0;
  uint32_t sub_s = 0;  // 0 for GCRA
  uint64_t max = 0;
  Gcra::Params gcra_params{1, 1};
  Action action = Action::kDefer;
  bool shadow = false;
  bool strict = false;
  uint64_t lease = 0;  // units a thread may take at once (0 = none)
  int smtp_code = 451;
  std::string enhanced;
  std::string text;
};

using RuleSet = std::vector<Rule>;

uint64_t RuleSeed(Level level, Metric metric, int64_t window_s, bool gcra) {
  uint64_t parts[4] = {static_cast<uint64_t>(level), static_cast<uint64_t>(metric),
                       static_cast<uint64_t>(window_s), gcra ? 1u : 0u};
  return XXH3_64bits(parts, sizeof(parts));
}

Rule MakeRule(Level level, const config::Limit& l) {
  Rule r;
  r.level = level;
  r.metric = static_cast<Metric>(l.metric());
  r.gcra = l.algorithm() == config::GCRA;
  r.window_s = *ParseWindow(l.window());
  r.sub_s = r.gcra ? 0 : SlidingWindow::SubBucketSeconds(r.window_s);
  r.max = l.max();
  r.gcra_params = Gcra::Make(r.max, r.window_s * 1000000, l.has_burst() ? l.burst() : 1);
  r.action = ToAction(l.action());
  r.shadow = l.shadow();
  r.strict = l.strict();
  // Large limits are charged in per-thread leases while far from the limit
  // (see Limiter's header): 1/1024 of the limit, at most 64 units.
  r.lease = (!r.gcra && r.metric != Metric::kBytes && r.max >= 4096)
                ? std::min<uint64_t>(64, r.max / 1024)
                : 0;
  r.seed = RuleSeed(level, r.metric, r.window_s, r.gcra);
  r.overflow_hash = Mix(r.seed ^ 0x0bad0bad0bad0badull);
  bool reject = r.action == Action::kReject;
  bool temp = r.action == Action::kDefer;
  r.smtp_code = l.has_smtp_code() ? static_cast<int>(l.smtp_code())
                                  : (reject ? 550
                                     : temp ? 451
                                            : 250);
  r.enhanced = l.has_enhanced_status() ? l.enhanced_status()
                                       : (reject ? "5.7.1"
                                          : temp ? "4.7.1"
                                                 : "2.0.0");
  r.text = l.has_text() ? l.text()
                        : absl::StrCat(LevelName(level), " ", MetricName(r.metric), " limit ",
                                       r.max, "/", FormatWindow(r.window_s), " exceeded");
  return r;
}

void MergeLimit(RuleSet* set, Level level, const config::Limit& l) {
  Metric metric = static_cast<Metric>(l.metric());
  int64_t window = *ParseWindow(l.window());
  bool gcra = l.algorithm() == config::GCRA;
  auto it = std::find_if(set->begin(), set->end(), [&](const Rule& r) {
    return r.metric == metric && r.window_s == window && r.gcra == gcra;
  });
  if (l.unlimited()) {
    if (it != set->end()) set->erase(it);
    return;
  }
  Rule r = MakeRule(level, l);
  if (it != set->end()) {
    *it = std::move(r);
  } else {
    set->push_back(std::move(r));
  }
}

}  // namespace

struct Limiter::Snapshot {
  struct Node {
    Level level = Level::kServer;
    std::string name;  // lower-case
    uint64_t hash = 0;
    int parent = -1;
    RuleSet resolved[kNumLevels];
  };
  config::Config config;
  bool enabled[kNumLevels] = {};
  std::vector<Node> nodes;  // nodes[0]: the server (root)
  // Entity hash -> node, open addressing over a power-of-two array (the
  // hash is already uniform; no second hashing). Key 0 = empty.
  std::vector<std::pair<uint64_t, int>> index;
  uint64_t index_mask = 0;

  void BuildIndex() {
    size_t cap = 16;
    while (cap < nodes.size() * 2) cap <<= 1;
    index.assign(cap, {0, -1});
    index_mask = cap - 1;
    for (size_t i = 0; i < nodes.size(); ++i) {
      uint64_t h = nodes[i].hash | 1;
      for (uint64_t j = h & index_mask;; j = (j + 1) & index_mask) {
        if (index[j].first == 0 || index[j].first == h) {
          index[j] = {h, static_cast<int>(i)};
          break;
        }
      }
    }
  }
  // Returns the node of an entity hash, or -1.
  int Lookup(uint64_t hash) const {
    uint64_t h = hash | 1;
    for (uint64_t j = h & index_mask;; j = (j + 1) & index_mask) {
      if (index[j].first == h) return index[j].second;
      if (index[j].first == 0) return -1;
    }
  }
  std::vector<Cidr> exempt_cidrs;
  absl::flat_hash_set<std::string> exempt_senders;  // "a@b" or "@b"
  absl::flat_hash_set<std::string> exempt_sasl;
  int v4_prefix = 32;
  int v6_prefix = 64;

  int Find(Level level, absl::string_view name) const { return Lookup(EntityHash(level, name)); }
};

absl::StatusOr<std::unique_ptr<Limiter::Snapshot>> Limiter::Compile(const config::Config& c) {
  if (auto st = ValidateConfig(c); !st.ok()) return st;
  auto s = std::make_unique<Snapshot>();
  s->config = c;
  RuleSet defaults[kNumLevels];
  if (c.level_size() == 0) {
    // No levels configured: count the default chain (without limits, so
    // usage reports work and entities' own limits apply).
    for (int L = 0; L < kNumChainLevels; ++L) s->enabled[L] = true;
  }
  for (const auto& lv : c.level()) {
    Level level;
    ParseLevel(lv.name(), &level);
    s->enabled[static_cast<int>(level)] = true;
    for (const auto& l : lv.limit()) MergeLimit(&defaults[static_cast<int>(level)], level, l);
    if (level == Level::kClientIp) {
      if (lv.has_ipv4_prefix()) s->v4_prefix = static_cast<int>(lv.ipv4_prefix());
      if (lv.has_ipv6_prefix()) s->v6_prefix = static_cast<int>(lv.ipv6_prefix());
    }
  }
  // Nodes: the server root first, then every configured entity.
  const std::string server =
      absl::AsciiStrToLower(c.has_server_name() ? c.server_name() : "server");
  std::vector<const config::Entity*> cfg(1, nullptr);
  s->nodes.emplace_back();
  s->nodes[0].level = Level::kServer;
  s->nodes[0].name = server;
  for (const auto& e : c.entity()) {
    Level level;
    ParseLevel(e.level(), &level);
    if (level == Level::kServer) {
      cfg[0] = &e;  // limits for the server entity itself
      continue;
    }
    Snapshot::Node n;
    n.level = level;
    n.name = absl::AsciiStrToLower(e.name());
    s->nodes.push_back(std::move(n));
    cfg.push_back(&e);
  }
  for (size_t i = 0; i < s->nodes.size(); ++i) {
    auto& n = s->nodes[i];
    n.hash = EntityHash(n.level, n.name);
  }
  s->BuildIndex();
  for (size_t i = 1; i < s->nodes.size(); ++i) {
    auto& n = s->nodes[i];
    n.parent = 0;
    if (cfg[i]->has_parent()) {
      std::string p = absl::AsciiStrToLower(cfg[i]->parent());
      for (int l = static_cast<int>(n.level) - 1; l >= 1; --l) {
        int idx = s->Find(static_cast<Level>(l), p);
        if (idx >= 0) {
          n.parent = idx;
          break;
        }
      }
    }
  }
  // Resolve each node's rules for its own level and (chain) the levels below.
  for (size_t i = 0; i < s->nodes.size(); ++i) {
    auto& n = s->nodes[i];
    std::vector<int> chain;  // root ... n
    for (int j = static_cast<int>(i); j >= 0; j = s->nodes[j].parent) {
      chain.insert(chain.begin(), j);
      if (j == 0) break;
    }
    int first = static_cast<int>(n.level);
    int last = IsChainLevel(n.level) ? kNumChainLevels - 1 : first;
    if (i == 0) last = kNumLevels - 1;  // the root resolves every level
    for (int L = first; L <= last; ++L) {
      if (!s->enabled[L]) continue;
      RuleSet set = defaults[L];
      for (int j : chain) {
        const config::Entity* e = cfg[j];
        if (e == nullptr) continue;
        for (const auto& l : e->limit()) {
          Level target;
          bool own = !l.has_applies_to();
          if (!own) ParseLevel(l.applies_to(), &target);
          if ((own && j == static_cast<int>(i) && L == first) ||
              (!own && static_cast<int>(target) == L)) {
            MergeLimit(&set, static_cast<Level>(L), l);
          }
        }
        if (j == static_cast<int>(i) && L == first && e->unlimited()) set.clear();
      }
      if (set.size() > kMaxRulesPerLevel) {
        return absl::InvalidArgumentError(
            absl::StrCat("entity \"", n.name, "\" has ", set.size(), " limits at level ",
                         LevelName(static_cast<Level>(L)), "; at most ", kMaxRulesPerLevel));
      }
      n.resolved[L] = std::move(set);
    }
  }
  for (const auto& cidr : c.exempt().cidr()) {
    Cidr x{};
    if (ParseCidr(cidr, &x.net, &x.prefix)) s->exempt_cidrs.push_back(x);  // validated
  }
  for (const auto& e : c.exempt().sender()) s->exempt_senders.insert(absl::AsciiStrToLower(e));
  for (const auto& e : c.exempt().sasl_user()) s->exempt_sasl.insert(e);
  return s;
}

// ---- Names, events, transactions ------------------------------------------

namespace {
constexpr int kShards = 16;
}

struct Limiter::Names {
  struct Entry {
    Level level;
    std::string name;
    // The configured entity whose rules applied when first seen (its
    // nearest configured ancestor), so reports show the right limits.
    Level anc_level;
    std::string anc_name;
  };
  struct Shard {
    mutable std::mutex mu;
    absl::flat_hash_map<uint64_t, Entry> map;
  };
  Shard shards[kShards];
  std::atomic<size_t> size{0};
  size_t cap = 0;
};

struct Limiter::Events {
  std::mutex mu;
  std::vector<std::function<void(const Event&)>> sinks;
  std::atomic<bool> any{false};
  internal::EventDedup dedup;
};

struct Limiter::Charge {
  Slot* slot;
  uint64_t key_word;
  bool gcra;
  uint32_t epoch;
  int64_t gcra_us;
  uint64_t amount;
  bool leased;  // taken from this thread's lease
};

struct Limiter::ChargeList {
  Charge items[kMaxPending];
  int n = 0;
  void Add(Slot* slot, uint64_t key_word, bool gcra, uint32_t epoch, int64_t gcra_us,
           uint64_t amount, bool leased) {
    if (n >= kMaxPending) return;
    Charge& c = items[n++];
    c.slot = slot;
    c.key_word = key_word;
    c.gcra = gcra;
    c.epoch = epoch;
    c.gcra_us = gcra_us;
    c.amount = amount;
    c.leased = leased;
  }
};

struct Limiter::Txn {
  std::string sender, sasl_user, client_ip, script, list;
  std::vector<Charge> charges;
  absl::flat_hash_map<std::string, Decision> items;
  absl::Time created;
  bool counted_message = false;
};

struct Limiter::TxnShard {
  mutable std::mutex mu;
  absl::flat_hash_map<std::string, Txn> map;
  // Transaction ids in creation order, for evicting the oldest one at a
  // time (O(1) per new transaction: no bulk pass stalls a request). Ids of
  // transactions that ended meanwhile are skipped, and dropped in one pass
  // once they make up half of the queue.
  std::deque<std::string> order;
};

struct Limiter::PathEntry {
  const RuleSet* rules;
  uint64_t entity_hash;
  absl::string_view name;
  int node;  // the snapshot node whose rules apply
  Level level;

  void Set(Level l, absl::string_view n, uint64_t h, const RuleSet* r, int nd) {
    rules = r;
    entity_hash = h;
    name = n;
    node = nd;
    level = l;
  }
};

// ---- Thread-local path cache and leases --------------------------------------

namespace {

std::atomic<uint64_t> g_generation{1};

// The counters a recently seen request was charged to, so a repeat sender
// skips path resolution, hashing and probing. Validated on use: generation
// (limiter), snapshot pointer, and each slot's key.
struct CachedCounter {
  const Rule* rule;
  Slot* slot;
  uint64_t key_word;
};
constexpr int kCacheCounters = 8;
struct PathCacheEntry {
  uint64_t key = 0;
  uint64_t generation = 0;
  const void* snapshot = nullptr;
  int n = 0;
  CachedCounter c[kCacheCounters];
};
constexpr int kPathCacheSize = 4096;
thread_local PathCacheEntry tls_path_cache[kPathCacheSize];

// Units of a counter this thread has taken in advance (one CAS for many
// messages on busy shared counters such as the server's).
struct LeaseEntry {
  uint64_t generation = 0;
  uint64_t key_word = 0;
  Slot* slot = nullptr;
  uint32_t epoch = 0;
  uint64_t remaining = 0;
};
constexpr int kLeases = 256;
thread_local LeaseEntry tls_leases[kLeases];

LeaseEntry& LeaseFor(uint64_t key_word) {
  return tls_leases[((key_word >> 16) ^ (key_word >> 40)) & (kLeases - 1)];
}

// The common case of a busy shared counter: spend from this thread's lease.
inline bool SpendLease(uint64_t generation, Slot* slot, uint64_t owner, uint32_t epoch,
                       uint64_t amount) {
  LeaseEntry& l = LeaseFor(owner);
  if (l.key_word == owner && l.generation == generation && l.slot == slot && l.epoch == epoch &&
      l.remaining >= amount) {
    l.remaining -= amount;
    return true;
  }
  return false;
}

// Epochs of the request's time for each sub-bucket length, memoised: a
// 64-bit division costs ~40 cycles and most rules share a window.
class EpochMemo {
 public:
  explicit EpochMemo(int64_t since_ms) : since_ms_(since_ms) {}
  uint32_t Get(uint32_t sub_s) {
    if (sub_s != sub_) {
      sub_ = sub_s;
      epoch_ = SlidingWindow::EpochAt(since_ms_, sub_s);
    }
    return epoch_;
  }

 private:
  int64_t since_ms_;
  uint32_t sub_ = 0;
  uint32_t epoch_ = 0;
};

uint64_t RequestKey(const Request& r, bool count_messages) {
  uint64_t mask =
      (count_messages && r.messages ? 1 : 0) | (r.recipients ? 2 : 0) | (r.bytes ? 4 : 0);
  uint64_t h = XXH3_64bits_withSeed(r.sender.data(), r.sender.size(), mask);
  absl::string_view dims[4] = {r.sasl_user, r.client_ip, r.script, r.list};
  for (int i = 0; i < 4; ++i) {
    if (!dims[i].empty()) h ^= Mix(XXH3_64bits_withSeed(dims[i].data(), dims[i].size(), i + 8));
  }
  return h | 1;
}

}  // namespace

// Charges a sliding-window counter, from this thread's lease when the rule
// allows it. Returns the TryAdd outcome; fills *charge when admitted.
SlidingWindow::Outcome Limiter::ChargeWindow(Slot* slot, uint64_t owner, const void* rule_ptr,
                                             uint32_t epoch, uint64_t amount, uint64_t* usage,
                                             ChargeList* charges) noexcept {
  const Rule& rule = *static_cast<const Rule*>(rule_ptr);
  if (options_.lease && rule.lease > 0) {
    if (SpendLease(generation_, slot, owner, epoch, amount)) {
      charges->Add(slot, owner, false, epoch, 0, amount, true);
      return SlidingWindow::Outcome::kAdmitted;
    }
    LeaseEntry& l = LeaseFor(owner);
    const bool mine = l.generation == generation_ && l.key_word == owner && l.slot == slot;
    if (!CounterTable::StillOwns(slot, owner)) return SlidingWindow::Outcome::kSlotGone;
    if (mine) {
      // Our lease is spent or from an older sub-bucket: give back the rest
      // and take a new one, only while far from the limit (<= max/2).
      if (l.remaining > 0 && CounterTable::StillOwns(slot, owner)) {
        SlidingWindow::Remove(*slot, l.epoch, l.remaining);
      }
      l.remaining = 0;
      auto res = SlidingWindow::TryAdd(*slot, epoch, amount + rule.lease, rule.max / 2);
      if (res.outcome == SlidingWindow::Outcome::kAdmitted) {
        l.epoch = res.epoch;
        l.remaining = rule.lease;
        charges->Add(slot, owner, false, res.epoch, 0, amount, true);
        *usage = res.usage;
        return res.outcome;
      }
      if (res.outcome == SlidingWindow::Outcome::kSlotGone) return res.outcome;
    } else if (l.generation != generation_ || l.remaining == 0) {
      // A counter earns a lease entry by being seen twice in a row here, so
      // busy shared counters keep theirs and one-off senders do not churn.
      l = LeaseEntry{generation_, owner, slot, 0, 0};
    }
  }
  if (!CounterTable::StillOwns(slot, owner)) return SlidingWindow::Outcome::kSlotGone;
  auto res = SlidingWindow::TryAdd(*slot, epoch, amount, rule.max);
  *usage = res.usage;
  if (res.outcome == SlidingWindow::Outcome::kAdmitted) {
    charges->Add(slot, owner, false, res.epoch, 0, amount, false);
  }
  return res.outcome;
}

bool Limiter::FastApply(const Snapshot& s, const Request& r, absl::Time now, ChargeList* charges,
                        bool count_messages, uint64_t key) noexcept {
  const PathCacheEntry& ce = tls_path_cache[key & (kPathCacheSize - 1)];
  if (ce.key != key || ce.generation != generation_ || ce.snapshot != &s) return false;
  const int64_t since_us = table_->SinceBaseUs(now);
  const int64_t since_ms = since_us / 1000;
  EpochMemo epochs(since_ms);
  const int first = charges->n;
  bool ok = true;
  for (int i = 0; i < ce.n && ok; ++i) {
    const CachedCounter& c = ce.c[i];
    const Rule& rule = *c.rule;
    uint64_t amount = rule.metric == Metric::kMessages     ? (count_messages ? r.messages : 0)
                      : rule.metric == Metric::kRecipients ? r.recipients
                                                           : r.bytes;
    if (!rule.gcra) {
      const uint32_t epoch = epochs.Get(rule.sub_s);
      if (rule.lease > 0 && options_.lease &&
          SpendLease(generation_, c.slot, c.key_word, epoch, amount)) {
        charges->Add(c.slot, c.key_word, false, epoch, 0, amount, true);
        continue;
      }
      // ChargeWindow checks the slot's owner unless a lease covers it.
      uint64_t usage;
      auto out = ChargeWindow(c.slot, c.key_word, &rule, epoch, amount, &usage, charges);
      if (out != SlidingWindow::Outcome::kAdmitted) {
        ok = false;
        break;
      }
    } else {
      if (!CounterTable::StillOwns(c.slot, c.key_word)) {
        ok = false;
        break;
      }
      auto res = Gcra::TryAdd(*c.slot, since_us, amount, rule.gcra_params);
      if (res.outcome != Gcra::Outcome::kAdmitted) {
        ok = false;
        break;
      }
      charges->Add(c.slot, c.key_word, true, 0, res.charged_us, amount, false);
    }
  }
  if (ok) return true;
  Undo(charges->items + first, charges->n - first, now);
  charges->n = first;
  return false;
}

// ---- Construction ----------------------------------------------------------

absl::StatusOr<std::unique_ptr<Limiter>> Limiter::Create(const config::Config& config,
                                                         absl::Time now, Options options) {
  auto snap = Compile(config);
  if (!snap.ok()) return snap.status();
  std::unique_ptr<Limiter> l(new Limiter());
  l->options_ = options;
  l->generation_ = g_generation.fetch_add(1, std::memory_order_relaxed);
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
  l->events_ = std::make_unique<Events>();
  l->txns_.reset(new TxnShard[kShards]);
  l->snapshot_.store(snap->get(), std::memory_order_release);
  l->snapshots_.push_back(std::move(*snap));
  return l;
}

Limiter::~Limiter() {
  if (!names_path_.empty()) SaveNames();
}

void Limiter::LoadNames() {
  std::ifstream in(names_path_, std::ios::binary);
  if (!in) return;
  config::NameSnapshot snap;
  if (!snap.ParseFromIstream(&in)) return;
  Names& n = *names_;
  for (const auto& e : snap.entry()) {
    Level level, anc_level;
    if (!ParseLevel(e.level(), &level) || !ParseLevel(e.anc_level(), &anc_level)) continue;
    if (n.size.load(std::memory_order_relaxed) >= n.cap) break;
    auto& shard = n.shards[e.hash() % kShards];
    std::lock_guard<std::mutex> lock(shard.mu);
    if (shard.map.try_emplace(e.hash(), Names::Entry{level, e.name(), anc_level, e.anc_name()})
            .second) {
      n.size.fetch_add(1, std::memory_order_relaxed);
    }
  }
  names_saved_.store(n.size.load(std::memory_order_relaxed), std::memory_order_relaxed);
}

void Limiter::SaveNames() {
  Names& n = *names_;
  const size_t size = n.size.load(std::memory_order_relaxed);
  if (size == names_saved_.load(std::memory_order_relaxed)) return;  // nothing new
  config::NameSnapshot snap;
  for (int i = 0; i < kShards; ++i) {
    std::lock_guard<std::mutex> lock(n.shards[i].mu);
    for (const auto& [h, e] : n.shards[i].map) {
      auto* out = snap.add_entry();
      out->set_hash(h);
      out->set_level(std::string(LevelName(e.level)));
      out->set_name(e.name);
      out->set_anc_level(std::string(LevelName(e.anc_level)));
      out->set_anc_name(e.anc_name);
    }
  }
  // Written whole under another name, then renamed: a crash leaves the
  // old file or the new one, never half of one.
  // Mode 0600 like the table: the names are the server's senders.
  const std::string tmp = names_path_ + ".tmp";
  const std::string bytes = snap.SerializeAsString();
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return;
  size_t off = 0;
  while (off < bytes.size()) {
    const ssize_t w = ::write(fd, bytes.data() + off, bytes.size() - off);
    if (w <= 0) break;
    off += static_cast<size_t>(w);
  }
  ::close(fd);
  if (off == bytes.size() && std::rename(tmp.c_str(), names_path_.c_str()) == 0) {
    names_saved_.store(size, std::memory_order_relaxed);
  }
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
  std::lock_guard<std::mutex> lock(snapshots_mu_);
  // release: publishes the fully built snapshot.
  snapshot_.store(snap->get(), std::memory_order_release);
  snapshots_.push_back(std::move(*snap));
  return absl::OkStatus();
}

void Limiter::AddEventSink(std::function<void(const Event&)> sink) {
  std::lock_guard<std::mutex> lock(events_->mu);
  events_->sinks.push_back(std::move(sink));
  events_->any.store(true, std::memory_order_release);
}

void Limiter::RecordName(uint64_t entity_hash, Level level, absl::string_view name, Level anc_level,
                         absl::string_view anc_name) noexcept {
  Names& n = *names_;
  // relaxed: an approximate cap is enough.
  if (n.size.load(std::memory_order_relaxed) >= n.cap) return;
  auto& shard = n.shards[entity_hash % kShards];
  std::lock_guard<std::mutex> lock(shard.mu);
  auto [it, inserted] = shard.map.try_emplace(
      entity_hash, Names::Entry{level, std::string(name), anc_level, std::string(anc_name)});
  if (inserted) n.size.fetch_add(1, std::memory_order_relaxed);
}

void Limiter::Emit(const Event& e, uint64_t dedup_key, int64_t window_index) {
  if (!events_->any.load(std::memory_order_acquire)) return;
  if (!events_->dedup.First(dedup_key, window_index)) return;
  std::lock_guard<std::mutex> lock(events_->mu);
  for (auto& sink : events_->sinks) sink(e);
}

// ---- The hot path ----------------------------------------------------------

int Limiter::ResolvePath(const Snapshot& s, const Request& r, char* mailbox_buf,
                         PathEntry* out) const noexcept {
  int n = 0;
  const auto& root = s.nodes[0];
  // Extra dimensions.
  auto dim = [&](Level level, absl::string_view name) {
    if (!s.enabled[static_cast<int>(level)] || name.empty()) return;
    uint64_t h = EntityHash(level, name);
    int found = s.Lookup(h);
    int node = found >= 0 ? found : 0;
    out[n++].Set(level, name, h, &s.nodes[node].resolved[static_cast<int>(level)], node);
  };
  // Chain: find the names (and, for directory entities, their nodes), then
  // walk top-down inheriting from the nearest configured ancestor.
  absl::string_view names[kNumChainLevels];
  int known[kNumChainLevels] = {0, -1, -1, -1, -1};  // node, if already found
  uint64_t hashes[kNumChainLevels];
  names[0] = root.name;
  hashes[0] = root.hash;
  absl::string_view mailbox = Lower(r.sender, mailbox_buf, kMaxAddress);
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
    for (const Rule& rule : root.resolved[kM]) table_->Prefetch(Mix(hashes[kM] ^ rule.seed));
  }
  if (!domain.empty()) {
    constexpr int kD = static_cast<int>(Level::kDomain);
    hashes[kD] = EntityHash(Level::kDomain, domain);
    for (const Rule& rule : root.resolved[kD]) table_->Prefetch(Mix(hashes[kD] ^ rule.seed));
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
    if (!s.enabled[L]) continue;
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
  d->enhanced_status = rule.enhanced.c_str();
  d->text = rule.text.c_str();
  size_t n = std::min(entity.size(), sizeof(d->entity) - 1);
  if (n > 0) std::memcpy(d->entity, entity.data(), n);
  d->entity[n] = 0;
}

}  // namespace

bool Limiter::Exempt(const Snapshot& s, const Request& r) noexcept {
  if (!s.exempt_cidrs.empty() && !r.client_ip.empty()) {
    IpAddress a;
    if (ParseIp(r.client_ip, &a)) {
      for (const auto& c : s.exempt_cidrs) {
        if (c.net.family == a.family && PrefixMatch(a, c.net, c.prefix)) {
          return true;
        }
      }
    }
  }
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

Decision Limiter::Apply(const Snapshot& s, const Request& r, absl::Time now, ChargeList* charges,
                        bool count_messages) noexcept {
  Decision d;
  if (Exempt(s, r)) {
    d.exempt = true;
    return d;
  }

  // Aggregate the client address into its prefix (text form of the network).
  Request aggregated;
  const Request* rp = &r;
  char ipbuf[64];
  if (s.enabled[static_cast<int>(Level::kClientIp)] && !r.client_ip.empty()) {
    IpAddress a;
    if (ParseIp(r.client_ip, &a)) {
      const int prefix = a.family == 4 ? s.v4_prefix : s.v6_prefix;
      if (prefix < a.bits()) {
        MaskTo(&a, prefix);
        if (!FormatIp(a, ipbuf, sizeof(ipbuf)).empty()) {
          size_t len = std::strlen(ipbuf);
          int w = snprintf(ipbuf + len, sizeof(ipbuf) - len, "/%d", prefix);
          aggregated = r;
          aggregated.client_ip = absl::string_view(ipbuf, len + (w > 0 ? w : 0));
          rp = &aggregated;
        }
      }
    }
  }

  const Request& req = *rp;
  const uint64_t req_key = RequestKey(req, count_messages);
  if (FastApply(s, req, now, charges, count_messages, req_key)) return d;

  char mailbox_buf[kMaxAddress];
  PathEntry path[kNumLevels];
  int np = ResolvePath(s, req, mailbox_buf, path);

  struct Pending {
    const Rule* rule;
    const PathEntry* entry;
    uint64_t hash;
    uint64_t key_word;
    uint64_t amount;
  };
  Pending pending[kMaxPending];
  int n = 0;
  for (int i = 0; i < np; ++i) {
    for (const Rule& rule : *path[i].rules) {
      uint64_t amount = rule.metric == Metric::kMessages     ? (count_messages ? req.messages : 0)
                        : rule.metric == Metric::kRecipients ? req.recipients
                                                             : req.bytes;
      if (amount == 0) continue;
      uint64_t h = Mix(path[i].entity_hash ^ rule.seed);
      pending[n++] = Pending{&rule, &path[i], h, MakeKeyWord(h, rule.sub_s), amount};
      table_->Prefetch(h);
    }
  }

  const int64_t since_us = table_->SinceBaseUs(now);
  const int64_t since_ms = since_us / 1000;
  EpochMemo epochs(since_ms);
  const int first_charge = charges->n;
  const Pending* failed = nullptr;
  uint64_t failed_usage = 0;
  int64_t failed_retry_ms = 0;
  const Pending* shadow_hit = nullptr;
  uint64_t shadow_usage = 0;
  bool failed_overflow = false;
  bool cacheable = n <= kCacheCounters;
  CachedCounter to_cache[kCacheCounters];

  for (int i = 0; i < n && failed == nullptr; ++i) {
    const Pending& p = pending[i];
    const Rule& rule = *p.rule;
    const bool soft = rule.shadow || rule.action == Action::kNotify;
    if (rule.max == 0 && !rule.gcra) {  // 0 blocks: no counter needed
      cacheable = false;
      if (soft) {
        if (shadow_hit == nullptr) shadow_hit = &p;
        continue;
      }
      failed = &p;
      failed_retry_ms = -1;
      break;
    }
    for (int attempt = 0; attempt < 8; ++attempt) {
      CounterTable::Placement how;
      uint64_t overflow_word = MakeKeyWord(rule.overflow_hash, rule.sub_s);
      Slot* slot = table_->FindOrClaim(p.hash, p.key_word, rule.overflow_hash, overflow_word,
                                       since_ms, &how);
      if (slot == nullptr) {  // even the overflow region is full: fail closed
        failed = &p;
        failed_retry_ms = 60000;
        break;
      }
      uint64_t owner = how == CounterTable::Placement::kOverflow ? overflow_word : p.key_word;
      if (how == CounterTable::Placement::kClaimed) {
        const auto& node = s.nodes[p.entry->node];
        RecordName(p.entry->entity_hash, p.entry->level, p.entry->name, node.level, node.name);
      }
      if (how == CounterTable::Placement::kOverflow) cacheable = false;
      if (cacheable) to_cache[i] = CachedCounter{&rule, slot, owner};
      if (!rule.gcra) {
        uint32_t epoch = epochs.Get(rule.sub_s);
        SlidingWindow::AddResult res{SlidingWindow::Outcome::kDenied, 0, epoch};
        res.outcome = ChargeWindow(slot, owner, &rule, epoch, p.amount, &res.usage, charges);
        if (res.outcome == SlidingWindow::Outcome::kSlotGone) continue;
        if (res.outcome == SlidingWindow::Outcome::kAdmitted) {
          if (!CounterTable::StillOwns(slot, owner)) {  // reclaimed under us: redo
            --charges->n;
            continue;
          }
          break;
        }
        if (res.outcome == SlidingWindow::Outcome::kDenied) {
          cacheable = false;
          if (soft) {
            res = SlidingWindow::ForceAdd(*slot, epoch, p.amount);
            if (shadow_hit == nullptr) {
              shadow_hit = &p;
              shadow_usage = SlidingWindow::Usage(*slot, epoch);
            }
          } else {
            failed = &p;
            failed_usage = res.usage;
            failed_overflow = how == CounterTable::Placement::kOverflow;
            int64_t k = SlidingWindow::EpochsUntilRoom(*slot, epoch, p.amount, rule.max);
            int64_t sub_ms = int64_t{rule.sub_s} * 1000;
            failed_retry_ms = (since_ms / sub_ms + k) * sub_ms - since_ms;
            break;
          }
        }
        if (!CounterTable::StillOwns(slot, owner)) continue;  // reclaimed under us: redo
        charges->Add(slot, owner, false, res.epoch, 0, p.amount, false);
        break;
      } else {
        auto res = Gcra::TryAdd(*slot, since_us, p.amount, rule.gcra_params);
        if (res.outcome == Gcra::Outcome::kSlotGone) continue;
        if (res.outcome == Gcra::Outcome::kDenied) {
          cacheable = false;
          if (soft) {
            res = Gcra::TryAdd(*slot, since_us, p.amount, rule.gcra_params, /*force=*/true);
            if (shadow_hit == nullptr) {
              shadow_hit = &p;
              shadow_usage = Gcra::Usage(*slot, since_us, rule.gcra_params);
            }
          } else {
            failed = &p;
            failed_usage = Gcra::Usage(*slot, since_us, rule.gcra_params);
            failed_overflow = how == CounterTable::Placement::kOverflow;
            failed_retry_ms = (res.retry_after_us + 999) / 1000;
            break;
          }
        }
        if (!CounterTable::StillOwns(slot, owner)) continue;
        charges->Add(slot, owner, true, 0, res.charged_us, p.amount, false);
        break;
      }
    }
  }

  if (failed != nullptr) {
    // All or nothing: take back what this request charged.
    Undo(charges->items + first_charge, charges->n - first_charge, now);
    charges->n = first_charge;
    // Strict rules count every attempt, admitted or not.
    for (int i = 0; i < n; ++i) {
      const Pending& p = pending[i];
      if (!p.rule->strict || p.rule->max == 0) continue;
      CounterTable::Placement how;
      uint64_t ow = MakeKeyWord(p.rule->overflow_hash, p.rule->sub_s);
      Slot* slot =
          table_->FindOrClaim(p.hash, p.key_word, p.rule->overflow_hash, ow, since_ms, &how);
      if (slot == nullptr) continue;
      if (p.rule->gcra) {
        Gcra::TryAdd(*slot, since_us, p.amount, p.rule->gcra_params, true);
      } else {
        SlidingWindow::ForceAdd(*slot, SlidingWindow::EpochAt(since_ms, p.rule->sub_s), p.amount);
      }
    }
    FillDecision(&d, failed->rule->action, failed->entry->level, failed->entry->name, *failed->rule,
                 failed_usage);
    d.retry_after =
        failed_retry_ms < 0 ? absl::InfiniteDuration() : absl::Milliseconds(failed_retry_ms);
    d.overflow = failed_overflow;
    if (events_->any.load(std::memory_order_relaxed)) {
      // Keys in the overflow bucket share one event (a flood is one trip).
      std::string who = failed_overflow
                            ? absl::StrCat("(overflow of ", LevelName(failed->entry->level), ")")
                            : std::string(failed->entry->name);
      Emit(Event{now, failed->entry->level, std::move(who), failed->rule->metric,
                 failed->rule->window_s, failed->rule->max, failed_usage, failed->rule->action,
                 false},
           failed_overflow ? failed->rule->overflow_hash : failed->hash,
           absl::ToUnixSeconds(now) / failed->rule->window_s);
    }
    return d;
  }
  if (cacheable && shadow_hit == nullptr) {
    PathCacheEntry& ce = tls_path_cache[req_key & (kPathCacheSize - 1)];
    if (ce.key != req_key) {
      // First sighting: only remember the key (one cache line), so a flood
      // of one-off senders does not churn the whole cache.
      ce.key = req_key;
      ce.n = -1;
      ce.generation = 0;
      return d;
    }
    ce.generation = generation_;
    ce.snapshot = &s;
    ce.n = n;
    for (int i = 0; i < n; ++i) ce.c[i] = to_cache[i];
  }
  if (shadow_hit != nullptr) {
    const Rule& rule = *shadow_hit->rule;
    FillDecision(&d, rule.action == Action::kNotify ? Action::kNotify : Action::kAccept,
                 shadow_hit->entry->level, shadow_hit->entry->name, rule, shadow_usage);
    d.shadow = true;
    d.shadow_action = rule.action;
    d.smtp_code = 250;
    d.enhanced_status = "2.0.0";
    if (events_->any.load(std::memory_order_relaxed)) {
      Emit(Event{now, shadow_hit->entry->level, std::string(shadow_hit->entry->name), rule.metric,
                 rule.window_s, rule.max, shadow_usage, rule.action, rule.shadow},
           shadow_hit->hash, absl::ToUnixSeconds(now) / rule.window_s);
    }
  }
  return d;
}

void Limiter::Undo(const Charge* charges, size_t n, absl::Time now) noexcept {
  const int64_t since_us = table_->SinceBaseUs(now);
  for (size_t i = n; i-- > 0;) {
    const Charge& c = charges[i];
    if (!CounterTable::StillOwns(c.slot, c.key_word)) continue;
    if (c.gcra) {
      Gcra::Remove(*c.slot, since_us, c.gcra_us);
      continue;
    }
    if (c.leased) {  // back into this thread's lease if it is still there
      LeaseEntry& l = LeaseFor(c.key_word);
      if (l.generation == generation_ && l.key_word == c.key_word && l.slot == c.slot &&
          l.epoch == c.epoch) {
        l.remaining += c.amount;
        continue;
      }
    }
    SlidingWindow::Remove(*c.slot, c.epoch, c.amount);
  }
}

Decision Limiter::CheckAndCharge(const Request& request, absl::Time now) noexcept {
  ChargeList charges;
  return Apply(*current(), request, now, &charges, true);
}

// ---- Transactions ------------------------------------------------------------

Decision Limiter::Reserve(absl::string_view txn_id, absl::string_view item, const Request& request,
                          absl::Time now) {
  auto& shard = txns_[XXH3_64bits(txn_id.data(), txn_id.size()) % kShards];
  std::lock_guard<std::mutex> lock(shard.mu);
  const size_t shard_cap = std::max<size_t>(4, options_.max_transactions / kShards);
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
  auto& shard = txns_[XXH3_64bits(txn_id.data(), txn_id.size()) % kShards];
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
  auto& shard = txns_[XXH3_64bits(txn_id.data(), txn_id.size()) % kShards];
  std::lock_guard<std::mutex> lock(shard.mu);
  auto it = shard.map.find(txn_id);
  if (it == shard.map.end()) return;
  Undo(it->second.charges.data(), it->second.charges.size(), now);
  shard.map.erase(it);
}

int Limiter::ExpireTransactions(absl::Time now, absl::Duration max_age, bool keep) {
  int released = 0;
  for (int i = 0; i < kShards; ++i) {
    auto& shard = txns_[i];
    std::lock_guard<std::mutex> lock(shard.mu);
    for (auto it = shard.map.begin(); it != shard.map.end();) {
      if (now - it->second.created > max_age) {
        if (!keep) Undo(it->second.charges.data(), it->second.charges.size(), now);
        shard.map.erase(it++);
        ++released;
      } else {
        ++it;
      }
    }
  }
  return released;
}

uint64_t Limiter::Maintain(absl::Time now, absl::Duration max_txn_age) {
  ExpireTransactions(now, max_txn_age);
  if (!names_path_.empty()) SaveNames();
  return table_->Sweep(now);
}

size_t Limiter::open_transactions() const {
  size_t n = 0;
  for (int i = 0; i < kShards; ++i) {
    std::lock_guard<std::mutex> lock(txns_[i].mu);
    n += txns_[i].map.size();
  }
  return n;
}

// ---- Reports -----------------------------------------------------------------

namespace {

uint64_t ReadUsage(const CounterTable& t, const Rule& rule, uint64_t entity_hash, absl::Time now) {
  uint64_t h = Mix(entity_hash ^ rule.seed);
  const Slot* slot = t.Find(h, MakeKeyWord(h, rule.sub_s));
  if (slot == nullptr) return 0;
  if (rule.gcra) return Gcra::Usage(*slot, t.SinceBaseUs(now), rule.gcra_params);
  return SlidingWindow::Usage(*slot, SlidingWindow::EpochAt(t.SinceBaseMs(now), rule.sub_s));
}

void FillUsage(config::RuleUsage* u, const Rule& rule, absl::string_view entity, uint64_t usage) {
  u->set_level(std::string(LevelName(rule.level)));
  u->set_entity(std::string(entity));
  u->set_metric(static_cast<config::Metric>(rule.metric));
  u->set_window(FormatWindow(rule.window_s));
  u->set_algorithm(rule.gcra ? config::GCRA : config::SLIDING_WINDOW);
  u->set_usage(usage);
  u->set_limit(rule.max);
  u->set_shadow(rule.shadow);
}

}  // namespace

config::UsageReport Limiter::UsageForRequest(const Request& request, absl::Time now) const {
  config::UsageReport rep;
  rep.set_time_unix(absl::ToUnixSeconds(now));
  const Snapshot& s = *current();
  char buf[kMaxAddress];
  PathEntry path[kNumLevels];
  int np = ResolvePath(s, request, buf, path);
  for (int i = np - 1; i >= 0; --i) {
    for (const Rule& rule : *path[i].rules) {
      FillUsage(rep.add_rule(), rule, path[i].name,
                ReadUsage(*table_, rule, path[i].entity_hash, now));
    }
  }
  return rep;
}

void Limiter::EntityRules(const Snapshot& s, Level level, const std::string& name,
                          PathEntry* out) const {
  Request r;
  std::string sender;
  if (level == Level::kMailbox) {
    sender = name;
  } else if (level == Level::kDomain) {
    sender = "@" + name;
  }
  r.sender = sender;
  const RuleSet* rules = nullptr;
  if (level == Level::kMailbox || level == Level::kDomain) {
    char buf[kMaxAddress];
    PathEntry path[kNumLevels];
    int np = ResolvePath(s, r, buf, path);
    for (int i = 0; i < np; ++i) {
      if (path[i].level == level) rules = path[i].rules;
    }
  } else {
    int idx = s.Find(level, name);
    if (idx < 0) {
      // Not configured: use the ancestor recorded when it was first seen.
      uint64_t h = EntityHash(level, name);
      auto& shard = names_->shards[h % kShards];
      std::lock_guard<std::mutex> lock(shard.mu);
      auto it = shard.map.find(h);
      if (it != shard.map.end()) idx = s.Find(it->second.anc_level, it->second.anc_name);
    }
    rules = idx >= 0 ? &s.nodes[idx].resolved[static_cast<int>(level)]
                     : &s.nodes[0].resolved[static_cast<int>(level)];
    if (level == Level::kServer) rules = &s.nodes[0].resolved[0];
  }
  out->rules = rules;
  out->entity_hash = EntityHash(level, level == Level::kServer ? s.nodes[0].name : name);
}

config::UsageReport Limiter::Usage(Level level, absl::string_view entity, absl::Time now) const {
  std::string name = absl::AsciiStrToLower(entity);
  config::UsageReport rep;
  rep.set_time_unix(absl::ToUnixSeconds(now));
  const Snapshot& s = *current();
  PathEntry e;
  EntityRules(s, level, name, &e);
  if (e.rules == nullptr) return rep;
  for (const Rule& rule : *e.rules) {
    FillUsage(rep.add_rule(), rule, level == Level::kServer ? s.nodes[0].name : name,
              ReadUsage(*table_, rule, e.entity_hash, now));
  }
  return rep;
}

int Limiter::Reset(Level level, absl::string_view entity) {
  std::string name = absl::AsciiStrToLower(entity);
  const Snapshot& s = *current();
  PathEntry e;
  EntityRules(s, level, name, &e);
  if (e.rules == nullptr) return 0;
  int n = 0;
  for (const Rule& rule : *e.rules) {
    uint64_t h = Mix(e.entity_hash ^ rule.seed);
    n += table_->Reset(h, MakeKeyWord(h, rule.sub_s));
  }
  return n;
}

config::TopReport Limiter::Top(Level level, Metric metric, int64_t window_seconds, size_t k,
                               absl::Time now) const {
  config::TopReport rep;
  rep.set_time_unix(absl::ToUnixSeconds(now));
  rep.set_level(std::string(LevelName(level)));
  rep.set_metric(static_cast<config::Metric>(metric));
  std::vector<config::RuleUsage> rows;
  for (int i = 0; i < kShards; ++i) {
    std::vector<std::pair<uint64_t, std::string>> entries;
    {
      std::lock_guard<std::mutex> lock(names_->shards[i].mu);
      for (const auto& [h, e] : names_->shards[i].map) {
        if (e.level == level) entries.emplace_back(h, e.name);
      }
    }
    for (const auto& [h, name] : entries) {
      config::UsageReport u = Usage(level, name, now);
      for (const auto& ru : u.rule()) {
        if (ru.metric() != static_cast<config::Metric>(metric)) continue;
        if (window_seconds != 0 && *ParseWindow(ru.window()) != window_seconds) continue;
        if (ru.usage() == 0) break;
        rows.push_back(ru);
        break;
      }
    }
  }
  std::sort(rows.begin(), rows.end(), [](const config::RuleUsage& a, const config::RuleUsage& b) {
    return a.usage() != b.usage() ? a.usage() > b.usage() : a.entity() < b.entity();
  });
  if (rows.size() > k) rows.resize(k);
  if (!rows.empty()) rep.set_window(rows[0].window());
  for (auto& r : rows) *rep.add_entry() = std::move(r);
  return rep;
}

}  // namespace sluice
