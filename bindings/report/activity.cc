#include "bindings/report/activity.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bindings/engine/notice_record.h"
#include "ratelimit/config.h"

namespace sluice {
namespace {

constexpr char kOther[] = "(other)";

int64_t HourOf(absl::Time t) { return absl::ToUnixSeconds(t) / 3600; }

// The map key of (level, name): the level's byte, then the name; in
// `buf` when it fits (no allocation on the way of a known entity), else in
// `*spill`.
absl::string_view Key(Level level, absl::string_view name, char (&buf)[320], std::string* spill) {
  if (name.size() + 1 <= sizeof(buf)) {
    buf[0] = static_cast<char>(level);
    std::memcpy(buf + 1, name.data(), name.size());
    return absl::string_view(buf, name.size() + 1);
  }
  spill->assign(1, static_cast<char>(level));
  spill->append(name.data(), name.size());
  return *spill;
}

}  // namespace

Activity::Options Activity::FromConfig(const config::Config& c) {
  Options o;
  o.history = DurationOr(c.report().history(), o.history);
  if (c.report().has_max_entities()) o.max_entities = c.report().max_entities();
  return o;
}

Activity::Activity(Options options) { Configure(options); }

void Activity::Configure(Options o) {
  history_hours_.store(std::max<int64_t>(1, absl::ToInt64Hours(o.history + absl::Minutes(59))),
                       std::memory_order_relaxed);
  max_entities_.store(o.max_entities, std::memory_order_relaxed);
  max_trips_.store(o.max_trips, std::memory_order_relaxed);
}

void Activity::Add(Level level, absl::string_view name, Level parent_level,
                   absl::string_view parent, int64_t hour, uint64_t messages, uint64_t recipients,
                   uint64_t bytes) {
  char buf[320];
  std::string spill;
  const absl::string_view key = Key(level, name, buf, &spill);
  auto& shard = shards_.For(key);
  std::unique_lock<std::mutex> lock(shard.mu);
  auto it = shard.map.find(key);
  if (it == shard.map.end()) {
    if (name != kOther && entities_.load(std::memory_order_relaxed) >=
                              max_entities_.load(std::memory_order_relaxed)) {
      lock.unlock();
      over_cap_.fetch_add(messages, std::memory_order_relaxed);
      Add(level, kOther, Level::kServer, "", hour, messages, recipients, bytes);
      return;
    }
    it = shard.map.try_emplace(std::string(key)).first;
    it->second.parent_level = parent_level;
    it->second.parent = std::string(parent);
    entities_.fetch_add(1, std::memory_order_relaxed);
  }
  std::deque<Hour>& hours = it->second.hours;
  // A message stamped before the newest hour (clocks of several threads)
  // goes into its own hour if that is still kept.
  auto h =
      std::find_if(hours.rbegin(), hours.rend(), [&](const Hour& x) { return x.hour <= hour; });
  if (h != hours.rend() && h->hour == hour) {
    h->messages += messages;
    h->recipients += recipients;
    h->bytes += bytes;
    return;
  }
  hours.insert(h.base(), Hour{hour, messages, recipients, bytes});
  const int64_t oldest = hours.back().hour - history_hours() + 1;
  while (!hours.empty() && hours.front().hour < oldest) hours.pop_front();
}

void Activity::Record(absl::Span<const PathEntity> path, uint64_t messages, uint64_t recipients,
                      uint64_t bytes, absl::Time now) {
  const int64_t hour = HourOf(now);
  Level parent_level = Level::kServer;
  absl::string_view parent;
  for (const auto& [level, name] : path) {
    if (name.empty()) continue;
    const bool chain = IsChainLevel(level);
    Add(level, name, parent_level, chain ? parent : absl::string_view(), hour, messages, recipients,
        bytes);
    if (chain) {
      parent_level = level;
      parent = name;
    }
  }
}

void Activity::RecordTrip(const Notice& notice) {
  config::NoticeRecord r = NoticeRecordOf(notice, "");
  r.clear_host();
  std::lock_guard<std::mutex> lock(trips_mu_);
  trips_.push_back(std::move(r));
  while (trips_.size() > max_trips_.load(std::memory_order_relaxed)) {
    trips_.pop_front();
    ++trips_dropped_;
  }
}

void Activity::Sweep(absl::Time now) {
  const int64_t oldest = HourOf(now) - history_hours() + 1;
  shards_.ForEach([&](Map& m) {
    for (auto it = m.map.begin(); it != m.map.end();) {
      std::deque<Hour>& hours = it->second.hours;
      while (!hours.empty() && hours.front().hour < oldest) hours.pop_front();
      if (hours.empty()) {
        m.map.erase(it++);
        entities_.fetch_sub(1, std::memory_order_relaxed);
      } else {
        ++it;
      }
    }
  });
}

config::ActivityReport Activity::Snapshot(absl::Time now, size_t per_level) const {
  config::ActivityReport rep;
  rep.set_time_unix(absl::ToUnixSeconds(now));
  const int64_t last = HourOf(now);
  int64_t first = last - history_hours() + 1;
  struct Row {
    Level level;
    std::string name;
    Level parent_level;
    std::string parent;
    uint64_t total;
    std::vector<Hour> hours;
  };
  std::vector<Row> rows;
  int64_t earliest = last;
  shards_.ForEach([&](const Map& m) {
    for (const auto& [key, e] : m.map) {
      Row r{static_cast<Level>(key[0]), key.substr(1), e.parent_level, e.parent, 0, {}};
      for (const Hour& h : e.hours) {
        if (h.hour < first || h.hour > last) continue;
        r.total += h.messages;
        r.hours.push_back(h);
        earliest = std::min(earliest, h.hour);
      }
      if (!r.hours.empty()) rows.push_back(std::move(r));
    }
  });
  // The trips of the history, which may be older than any message (AUTH
  // brute force).
  {
    std::lock_guard<std::mutex> lock(trips_mu_);
    for (const config::NoticeRecord& t : trips_) {
      absl::Time tt;
      std::string err;
      if (!absl::ParseTime(absl::RFC3339_full, t.time(), &tt, &err)) continue;
      const int64_t h = HourOf(tt);
      if (h < first || h > last) continue;
      earliest = std::min(earliest, h);
      *rep.add_trip() = t;
    }
    rep.set_trips_left_out(trips_dropped_);
  }
  first = std::max(first, earliest);  // a daemon up for two hours: two hours
  const int n = static_cast<int>(last - first + 1);
  rep.set_first_hour_unix(first * 3600);
  rep.set_hours(n);
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    if (a.level != b.level) return a.level < b.level;
    if (a.total != b.total) return a.total > b.total;
    return a.name < b.name;
  });
  std::map<Level, size_t> taken;
  for (const Row& r : rows) {
    if (taken[r.level]++ >= per_level) {
      rep.set_entities_left_out(rep.entities_left_out() + 1);
      continue;
    }
    config::ActivityReport::Series* s = rep.add_series();
    s->set_level(std::string(LevelName(r.level)));
    s->set_entity(CleanText(r.name));
    if (!r.parent.empty()) {
      s->set_parent_level(std::string(LevelName(r.parent_level)));
      s->set_parent(CleanText(r.parent));
    }
    s->set_total_messages(r.total);
    s->mutable_messages()->Resize(n, 0);
    s->mutable_recipients()->Resize(n, 0);
    s->mutable_bytes()->Resize(n, 0);
    for (const Hour& h : r.hours) {
      const int i = static_cast<int>(h.hour - first);
      s->set_messages(i, h.messages);
      s->set_recipients(i, h.recipients);
      s->set_bytes(i, h.bytes);
    }
  }
  rep.set_messages_over_cap(over_cap_.load(std::memory_order_relaxed));
  return rep;
}

}  // namespace sluice
