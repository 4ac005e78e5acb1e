// Rule compilation: a config becomes a Snapshot (levels, entities, their
// resolved rule sets, exemptions) that the hot path reads without locks.
#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "ratelimit/internal/limiter_state.h"

namespace sluice {

namespace {

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
  // (see Limiter's header): 1/1024 of the limit, at most 64 units. For
  // GCRA the limit is the burst (what the tolerance admits at once).
  const uint64_t capacity =
      r.gcra ? static_cast<uint64_t>(r.gcra_params.tolerance_us / r.gcra_params.emission_us)
             : r.max;
  r.lease = (r.metric != Metric::kBytes && capacity >= 4096)
                ? std::min<uint64_t>(64, capacity / 1024)
                : 0;
  r.seed = RuleSeed(level, r.metric, r.window_s, r.gcra);
  r.overflow_hash = Mix64(r.seed ^ 0x0bad0bad0bad0badull);
  r.overflow_word = MakeKeyWord(r.overflow_hash, r.sub_s);
  r.soft = r.shadow || r.action == Action::kNotify;
  bool reject = r.action == Action::kReject;
  bool temp = r.action == Action::kDefer;
  r.smtp_code = l.has_smtp_code() ? static_cast<int>(l.smtp_code())
                                  : (reject ? 550
                                     : temp ? 451
                                            : 250);
  // Interned: a Decision points at them, and may outlive the config
  // version (a transaction's remembered answers).
  r.enhanced = InternText(l.has_enhanced_status() ? l.enhanced_status()
                                                  : (reject ? "5.7.1"
                                                     : temp ? "4.7.1"
                                                            : "2.0.0"));
  r.text =
      InternText(l.has_text() ? l.text()
                              : absl::StrCat(LevelName(level), " ", MetricName(r.metric), " limit ",
                                             r.max, "/", FormatWindow(r.window_s), " exceeded"));
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
  s->any_exemption =
      !s->exempt_cidrs.empty() || !s->exempt_senders.empty() || !s->exempt_sasl.empty();
  // Rules shared with other hosts (config cluster): sliding windows of the
  // shared levels. No per-thread leases on them (each admission is checked
  // against the shared view with this host's own usage).
  if (c.cluster().server_size() > 0) {
    bool shared_level[kNumLevels] = {};
    for (const auto& name : c.cluster().shared_level()) {
      Level l;
      if (ParseLevel(name, &l)) shared_level[static_cast<int>(l)] = true;
    }
    if (c.cluster().shared_level_size() == 0) {
      for (bool& b : shared_level) b = true;
    }
    for (auto& node : s->nodes) {
      for (int l = 0; l < kNumLevels; ++l) {
        for (Rule& r : node.resolved[l]) {
          if (shared_level[static_cast<int>(r.level)] && !r.gcra) {
            r.shared = true;
            r.lease = 0;
          }
        }
      }
    }
  }
  return s;
}

}  // namespace sluice
