// Reports: usage along a path or of one entity, top entities of a level,
// manual resets, and the names kept for them (saved beside a file table).
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "ratelimit/internal/limiter_state.h"
#include "ratelimit/safe_file.h"

namespace sluice {

void Limiter::LoadNames() {
  // Never through a symlink or from a file another user can write.
  auto fd = OpenOwnFile(names_path_, O_RDONLY);
  if (!fd.ok()) return;  // names are a convenience
  config::NameSnapshot snap;
  const bool parsed = snap.ParseFromFileDescriptor(*fd);
  ::close(*fd);
  if (!parsed) return;
  Names& n = *names_;
  for (const auto& e : snap.entry()) {
    Level level, anc_level;
    if (!ParseLevel(e.level(), &level) || !ParseLevel(e.anc_level(), &anc_level)) continue;
    if (n.size.load(std::memory_order_relaxed) >= n.cap) break;
    auto& shard = n.shards.For(e.hash());
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
  n.shards.ForEach([&snap](const Names::Map& m) {
    for (const auto& [h, e] : m.map) {
      auto* out = snap.add_entry();
      out->set_hash(h);
      out->set_level(std::string(LevelName(e.level)));
      out->set_name(e.name);
      out->set_anc_level(std::string(LevelName(e.anc_level)));
      out->set_anc_name(e.anc_name);
    }
  });

  // Written whole under a fresh name, then renamed (safe_file.h): a crash
  // leaves the old file or the new one, and a symlink planted at the path
  // is replaced, never followed. Mode 0600 like the table: the names are
  // the server's senders.
  if (WriteFileAtomically(names_path_, snap.SerializeAsString(), 0600).ok()) {
    names_saved_.store(size, std::memory_order_relaxed);
  }
}

namespace {

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

uint64_t Limiter::ReadUsage(const void* rule_ptr, uint64_t entity_hash, absl::Time now) const {
  const Rule& rule = *static_cast<const Rule*>(rule_ptr);
  const CounterTable& t = *table_;
  uint64_t h = CounterHash(entity_hash, rule);
  const Slot* slot = t.Find(h, MakeKeyWord(h, rule.sub_s));
  if (slot == nullptr) return 0;
  // Units this process's threads took in advance but did not spend yet
  // are not admitted mail: leave them out.
  const int64_t since_us = t.SinceBaseUs(now);
  const uint32_t epoch = rule.gcra ? internal::GcraLeaseEpoch(since_us)
                                   : SlidingWindow::EpochAt(t.SinceBaseMs(now), rule.sub_s);
  const uint64_t usage = rule.gcra ? Gcra::Usage(*slot, since_us, rule.gcra_params)
                                   : SlidingWindow::Usage(*slot, epoch);
  const uint64_t leased = rule.lease > 0 ? LeasedUnits(slot, epoch) : 0;
  return usage > leased ? usage - leased : 0;
}

void Limiter::FillShared(config::RuleUsage* u, const void* rule_ptr, uint64_t entity_hash,
                         absl::string_view entity) const {
  const Rule& rule = *static_cast<const Rule*>(rule_ptr);
  if (!rule.shared || options_.shared == nullptr) return;
  const SharedLimits::Key key = SharedKey(rule, CounterHash(entity_hash, rule), entity);
  u->set_shared(true);
  u->set_global_usage(options_.shared->GlobalUsage(key));
}

config::UsageReport Limiter::UsageForRequest(const Request& request, absl::Time now) const {
  config::UsageReport rep;
  rep.set_time_unix(absl::ToUnixSeconds(now));
  const Snapshot& s = *current();
  char buf[kMaxAddress];
  PathEntry path[kNumLevels];
  int np = ResolvePath(s, request, buf, path);
  for (int i = np - 1; i >= 0; --i) {
    for (const Rule& rule : *path[i].rules) {
      config::RuleUsage* u = rep.add_rule();
      FillUsage(u, rule, path[i].name, ReadUsage(&rule, path[i].entity_hash, now));
      FillShared(u, &rule, path[i].entity_hash, path[i].name);
    }
  }
  return rep;
}

void Limiter::WithPath(const Request& request,
                       absl::FunctionRef<void(absl::Span<const PathEntity>)> f) const {
  const Snapshot& s = *current();
  char buf[kMaxAddress];
  PathEntry path[kNumLevels];
  const int np = ResolvePath(s, request, buf, path, /*all_levels=*/true);
  // ResolvePath lists the extra dimensions first, then the chain from the
  // mailbox up: the chain top-down, then the dimensions.
  PathEntity out[kNumLevels];
  size_t n = 0;
  for (int i = np - 1; i >= 0; --i) {
    if (IsChainLevel(path[i].level)) out[n++] = {path[i].level, path[i].name};
  }
  for (int i = 0; i < np; ++i) {
    if (!IsChainLevel(path[i].level)) out[n++] = {path[i].level, path[i].name};
  }
  f(absl::MakeConstSpan(out, n));
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
      auto& shard = names_->shards.For(h);
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
    config::RuleUsage* u = rep.add_rule();
    const std::string& who = level == Level::kServer ? s.nodes[0].name : name;
    FillUsage(u, rule, who, ReadUsage(&rule, e.entity_hash, now));
    FillShared(u, &rule, e.entity_hash, who);
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
    uint64_t h = CounterHash(e.entity_hash, rule);
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
  for (int i = 0; i < Sharded<Names::Map>::kShards; ++i) {
    std::vector<std::pair<uint64_t, std::string>> entries;
    {
      std::lock_guard<std::mutex> lock(names_->shards.at(i).mu);
      for (const auto& [h, e] : names_->shards.at(i).map) {
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
