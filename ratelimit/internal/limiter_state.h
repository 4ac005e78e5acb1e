// The limiter's shared state, for its own .cc files only: the compiled
// config (Snapshot and its Rules), the charges of a request, transactions,
// names for reports, and the small helpers every part uses. See limiter.h
// for the behaviour; limiter.cc holds the hot path, limiter_rules.cc the
// compilation, limiter_txn.cc the transactions, limiter_report.cc reports.
//
// Thread safety: as limiter.h says for the members that hold these.
#ifndef SLUICE_RATELIMIT_INTERNAL_LIMITER_STATE_H_
#define SLUICE_RATELIMIT_INTERNAL_LIMITER_STATE_H_

#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/inlined_vector.h"
#include "absl/container/node_hash_set.h"
#include "absl/strings/string_view.h"
#include "ratelimit/event_sinks.h"
#include "ratelimit/gcra.h"
#include "ratelimit/hash.h"
#include "ratelimit/ip.h"
#include "ratelimit/limiter.h"
#include "ratelimit/sharded.h"
#include "ratelimit/sliding_window.h"
// Inline XXH3: short keys hash in a few ns without a call into libxxhash.
#ifndef XXH_INLINE_ALL
#define XXH_INLINE_ALL
#endif
#include <xxhash.h>

namespace sluice {
namespace internal {

inline constexpr int kMaxRulesPerLevel = 8;
inline constexpr int kMaxPending = kNumLevels * kMaxRulesPerLevel;
inline constexpr size_t kMaxAddress = 320;

inline uint64_t LevelSeed(Level level) {
  return 0x5a17ce0000000000ull + static_cast<uint64_t>(level);
}

inline uint64_t EntityHash(Level level, absl::string_view name) {
  return XXH3_64bits_withSeed(name.data(), name.size(), LevelSeed(level));
}

// Lower-cases the ASCII letters of eight bytes at once (others unchanged).
inline uint64_t LowerWord(uint64_t w) {
  constexpr uint64_t kHigh = 0x8080808080808080ull;
  const uint64_t low7 = w & ~kHigh;
  const uint64_t at_least_a = low7 + 0x3f3f3f3f3f3f3f3full;   // high bit: byte >= 'A'
  const uint64_t above_z = low7 + 0x2525252525252525ull;      // high bit: byte > 'Z'
  const uint64_t upper = ~w & at_least_a & ~above_z & kHigh;  // ASCII 'A'..'Z'
  return w | (upper >> 2);                                    // + 0x20
}

// Lower-cases ASCII `in` into buf (at most cap bytes); returns the view.
// Eight bytes per step.
inline absl::string_view Lower(absl::string_view in, char* buf, size_t cap) {
  const size_t n = std::min(in.size(), cap);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, in.data() + i, 8);
    w = LowerWord(w);
    std::memcpy(buf + i, &w, 8);
  }
  for (; i < n; ++i) {
    const unsigned char c = static_cast<unsigned char>(in[i]);
    buf[i] = static_cast<char>(c | ((static_cast<unsigned char>(c - 'A') < 26u) << 5));
  }
  return absl::string_view(buf, n);
}

inline size_t LastAt(absl::string_view s) {
  const void* at = s.empty() ? nullptr : memrchr(s.data(), '@', s.size());
  return at == nullptr ? absl::string_view::npos
                       : static_cast<size_t>(static_cast<const char*>(at) - s.data());
}

// An address lower-cased into buf (kMaxAddress bytes). A longer one keeps
// its whole domain and as much of the local part as fits, so it still
// charges its domain, subscription and plan.
inline absl::string_view LowerAddress(absl::string_view address, char* buf) {
  if (address.size() <= kMaxAddress) return Lower(address, buf, kMaxAddress);
  const size_t at = LastAt(address);
  if (at == absl::string_view::npos || address.size() - at > kMaxAddress / 2) {
    return Lower(address, buf, kMaxAddress);  // no usable domain: cut as it comes
  }
  const size_t domain_len = address.size() - at;  // with the '@'
  const size_t keep = kMaxAddress - domain_len;
  Lower(address.substr(0, keep), buf, keep);
  Lower(address.substr(at), buf + keep, domain_len);
  return absl::string_view(buf, kMaxAddress);
}

struct Rule {
  uint64_t seed = 0;  // identifies (level, metric, window, algorithm)
  uint64_t overflow_hash = 0;
  uint64_t overflow_word = 0;  // the overflow bucket's key word (MakeKeyWord)
  Level level = Level::kServer;
  Metric metric = Metric::kMessages;
  bool gcra = false;
  int64_t window_s = 0;
  uint32_t sub_s = 0;  // 0 for GCRA
  uint64_t max = 0;
  Gcra::Params gcra_params{1, 1};
  Action action = Action::kDefer;
  bool shadow = false;
  bool soft = false;  // shadow or notify: a trip is reported, the mail passes
  bool strict = false;
  uint64_t lease = 0;   // units a thread may take at once (0 = none)
  bool shared = false;  // also checked against Limiter::Options::shared
  int smtp_code = 451;
  const char* enhanced = "4.7.1";  // InternText: lives as long as the process
  const char* text = "";
};

// The one copy of a reply text for the process's life (a Decision's text
// must stay valid after a reload frees the rules it came from). Texts come
// from configs, so the set stays as small as what administrators wrote.
// Thread-safe.
inline const char* InternText(absl::string_view text) {
  static std::mutex mu;
  static auto* texts = new absl::node_hash_set<std::string>();
  std::lock_guard<std::mutex> lock(mu);
  return texts->emplace(text).first->c_str();
}

using RuleSet = std::vector<Rule>;

// The epoch of a GCRA lease (LeaseEntry in thread_cache.h; reports read it
// too). A GCRA lease is good for about a second of the table's clock (2^20 us):
// its units are spent soon after they were taken, or go back.
inline constexpr int kGcraLeaseShift = 20;
inline uint32_t GcraLeaseEpoch(int64_t since_us) {
  return static_cast<uint32_t>((since_us < 0 ? 0 : since_us) >> kGcraLeaseShift) &
         SlidingWindow::kEpochMask;
}

// A counter's hash in the table: the entity's under the rule's seed.
inline uint64_t CounterHash(uint64_t entity_hash, const Rule& rule) {
  return Mix64(entity_hash ^ rule.seed);
}

// What the shared view (Limiter::Options::shared) knows a rule's counter
// (CounterHash) of an entity by.
inline SharedLimits::Key SharedKey(const Rule& rule, uint64_t counter_hash,
                                   absl::string_view entity) {
  return SharedLimits::Key{counter_hash,  rule.level, entity,  rule.metric,
                           rule.window_s, rule.sub_s, rule.max};
}

}  // namespace internal

// The limiter's .cc files (the only includers) name these unqualified.
using internal::CounterHash;
using internal::EntityHash;
using internal::InternText;
using internal::kMaxAddress;
using internal::kMaxPending;
using internal::kMaxRulesPerLevel;
using internal::LastAt;
using internal::Lower;
using internal::LowerAddress;
using internal::MakeKeyWord;
using internal::Rule;
using internal::RuleSet;
using internal::SharedKey;
using internal::Slot;

struct Limiter::Snapshot {
  struct Node {
    Level level = Level::kServer;
    std::string name;  // lower-case
    uint64_t hash = 0;
    int parent = -1;
    internal::RuleSet resolved[kNumLevels];
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
  bool any_exemption = false;  // any of the three below is non-empty
  std::vector<Cidr> exempt_cidrs;
  absl::flat_hash_set<std::string> exempt_senders;  // "a@b" or "@b"
  absl::flat_hash_set<std::string> exempt_sasl;
  int v4_prefix = 32;
  int v6_prefix = 64;

  int Find(Level level, absl::string_view name) const {
    return Lookup(internal::EntityHash(level, name));
  }
};

struct Limiter::Names {
  struct Entry {
    Level level;
    std::string name;
    // The configured entity whose rules applied when first seen (its
    // nearest configured ancestor), so reports show the right limits.
    Level anc_level;
    std::string anc_name;
  };
  struct Map {
    absl::flat_hash_map<uint64_t, Entry> map;
  };
  Sharded<Map> shards;
  std::atomic<size_t> size{0};
  size_t cap = 0;
};

struct Limiter::Charge {
  internal::Slot* slot;
  uint64_t key_word;
  bool gcra;
  uint32_t epoch;
  int64_t gcra_us;
  uint64_t amount;
  bool leased;  // taken from this thread's lease

  // Units taken from this thread's lease of `rule`'s counter at `epoch` (a
  // window's sub-bucket or GCRA's lease epoch). A GCRA unit carries its
  // emission interval, for a give-back that finds the lease gone.
  static Charge Leased(internal::Slot* slot, uint64_t key_word, const internal::Rule& rule,
                       uint32_t epoch, uint64_t amount) {
    const int64_t unit_us = rule.gcra ? rule.gcra_params.emission_us : 0;
    return Charge{slot,   key_word, rule.gcra, epoch, unit_us * static_cast<int64_t>(amount),
                  amount, true};
  }
};

// A request's charges: one per counter, and one per shared admission
// (slot null, key_word the SharedLimits token).
struct Limiter::ChargeList {
  Charge items[2 * internal::kMaxPending];
  int n = 0;
  // False when the caller only needs the decision (CheckAndCharge): the
  // cached path then records its charges only to take them back.
  bool keep = true;
  void Add(const Charge& c) {
    if (n < 2 * internal::kMaxPending) items[n++] = c;
  }
  void Add(internal::Slot* slot, uint64_t key_word, bool gcra, uint32_t epoch, int64_t gcra_us,
           uint64_t amount, bool leased) {
    Add(Charge{slot, key_word, gcra, epoch, gcra_us, amount, leased});
  }
};

namespace internal {

// A transaction's or an item's id as the transaction store keeps it: its
// XXH3-128 under the limiter's random seed (Limiter::txn_seed_). Ids are
// never stored: a fixed 16-byte key needs no allocation and compares in two
// words. Two ids that differ share a key with probability 2^-128 per pair;
// the seed is drawn per limiter, so no id can be chosen to collide with
// another without it.
struct TxnKey {
  uint64_t lo = 0;  // picks the shard
  uint64_t hi = 0;  // the hash within a shard's maps (independent of lo)

  static TxnKey Of(absl::string_view id, uint64_t seed) {
    const XXH128_hash_t h = XXH3_128bits_withSeed(id.data(), id.size(), seed);
    return TxnKey{h.low64, h.high64};
  }
  bool operator==(const TxnKey& o) const { return lo == o.lo && hi == o.hi; }
  struct Hash {
    size_t operator()(const TxnKey& k) const { return static_cast<size_t>(k.hi); }
  };
};

}  // namespace internal

struct Limiter::Txn {
  // The request's names, kept for the end of the transaction: one string
  // (one allocation at most), each name's length in `name_len`.
  std::string names;
  uint32_t name_len[5] = {};
  void SetNames(const Request& r) {
    const absl::string_view n[5] = {r.sender, r.sasl_user, r.client_ip, r.script, r.list};
    names.clear();
    for (int i = 0; i < 5; ++i) {
      name_len[i] = static_cast<uint32_t>(n[i].size());
      names.append(n[i].data(), n[i].size());
    }
  }
  absl::string_view Name(int i) const {
    size_t at = 0;
    for (int k = 0; k < i; ++k) at += name_len[k];
    return absl::string_view(names.data() + at, name_len[i]);
  }
  absl::string_view sender() const { return Name(0); }
  absl::string_view sasl_user() const { return Name(1); }
  absl::string_view client_ip() const { return Name(2); }
  absl::string_view script() const { return Name(3); }
  absl::string_view list() const { return Name(4); }
  bool inbound = false;
  bool counted_message = false;
  absl::Time created;
  std::vector<Charge> charges;
  // Where each admitted, counted item's charges begin in `charges`, in
  // order: the first item's hold the message too; a later one's are its
  // recipient alone (what giving back a refused recipient undoes). Most
  // transactions have one or two: kept inline.
  absl::InlinedVector<uint32_t, 2> item_start;
  // Each item's answer, returned again when the item repeats (a retried
  // RCPT, another ACL stage). Most are plain admissions: a flag, not a
  // Decision (~350 bytes); anything else (a refusal, a shadow trip) is
  // kept in full.
  struct Answer {
    std::unique_ptr<Decision> full;  // null: a plain admission
    bool exempt = false;

    static Answer Of(const Decision& d) {
      Answer a;
      a.exempt = d.exempt;
      if (!IsPlainAdmission(d)) a.full = std::make_unique<Decision>(d);
      return a;
    }
    Decision Get() const {
      if (full != nullptr) return *full;
      Decision d;
      d.exempt = exempt;
      return d;
    }
    // Whether d is a default Decision but for `exempt`.
    static bool IsPlainAdmission(const Decision& d) {
      const Decision p;
      return d.action == p.action && !d.shadow && !d.overflow && !d.oversized &&
             d.shadow_action == p.shadow_action && d.level == p.level && d.metric == p.metric &&
             d.window_seconds == 0 && d.limit == 0 && d.usage == 0 && d.requested == 0 &&
             d.retry_after == p.retry_after && d.smtp_code == p.smtp_code &&
             d.enhanced_status != nullptr &&
             std::strcmp(d.enhanced_status, p.enhanced_status) == 0 && d.text != nullptr &&
             d.text[0] == 0 && d.entity[0] == 0;
    }
  };
  // The items in order, the first inline (most transactions have one
  // recipient); a hash index over them once there are more than
  // kItemsScanned, so a transaction of thousands of recipients is not
  // scanned on each.
  struct Item {
    internal::TxnKey key;
    Answer answer;
  };
  static constexpr size_t kItemsScanned = 8;
  using ItemIndex = absl::flat_hash_map<internal::TxnKey, uint32_t, internal::TxnKey::Hash>;
  absl::InlinedVector<Item, 1> items;
  std::unique_ptr<ItemIndex> index;  // item -> its place in `items`; past kItemsScanned

  // The answer remembered for `key`, or null.
  const Answer* FindItem(const internal::TxnKey& key) const {
    if (index != nullptr) {
      auto it = index->find(key);
      return it == index->end() ? nullptr : &items[it->second].answer;
    }
    for (const Item& i : items) {
      if (i.key == key) return &i.answer;
    }
    return nullptr;
  }
  // REQUIRES: FindItem(key) is null.
  void AddItem(const internal::TxnKey& key, Answer answer) {
    items.push_back(Item{key, std::move(answer)});
    if (index != nullptr) {
      index->emplace(key, static_cast<uint32_t>(items.size() - 1));
    } else if (items.size() > kItemsScanned) {
      index = std::make_unique<ItemIndex>();
      for (uint32_t i = 0; i < items.size(); ++i) index->emplace(items[i].key, i);
    }
  }
};

struct Limiter::TxnShard {
  using Key = internal::TxnKey;
  absl::flat_hash_map<Key, Txn, Key::Hash> map;
  // Transactions that ended, and how: a late end-of-message must neither
  // escape its bytes nor charge twice. Bounded (oldest forgotten first).
  enum class Ended : uint8_t { kCommitted, kKept, kReleased };
  absl::flat_hash_map<Key, Ended, Key::Hash> ended;
  std::deque<Key> ended_order;
  void Remember(const Key& id, Ended how, size_t cap) {
    auto [it, inserted] = ended.insert_or_assign(id, how);
    if (inserted) ended_order.push_back(id);
    while (ended.size() > cap && !ended_order.empty()) {
      ended.erase(ended_order.front());
      ended_order.pop_front();
    }
  }
  // Transaction ids in creation order, for evicting the oldest one at a
  // time (O(1) per new transaction: no bulk pass stalls a request). Ids of
  // transactions that ended meanwhile are skipped, and dropped in one pass
  // once they make up half of the queue.
  std::deque<Key> order;
};

struct Limiter::PathEntry {
  const internal::RuleSet* rules;
  uint64_t entity_hash;
  absl::string_view name;
  int node;  // the snapshot node whose rules apply
  Level level;

  void Set(Level l, absl::string_view n, uint64_t h, const internal::RuleSet* r, int nd) {
    rules = r;
    entity_hash = h;
    name = n;
    node = nd;
    level = l;
  }
};

}  // namespace sluice

#endif  // SLUICE_RATELIMIT_INTERNAL_LIMITER_STATE_H_
