#include "bindings/cli/replay.h"

#include <algorithm>
#include <deque>
#include <fstream>
#include <map>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "bindings/engine/policy_engine.h"
#include "bindings/engine/smtp_event.h"
#include "bindings/logs/exim_join.h"
#include "bindings/logs/mail_log.h"
#include "bindings/logs/postfix_join.h"
#include "ratelimit/types.h"

namespace sluice {
namespace {

// Per entity, the most messages it sent in any window of `window`.
class Peaks {
 public:
  explicit Peaks(absl::Duration window) : window_(window) {}
  void Add(const std::string& entity, absl::Time t) {
    if (entity.empty()) return;
    Entry& e = entries_[entity];
    e.times.push_back(t);
    while (!e.times.empty() && e.times.front() <= t - window_) e.times.pop_front();
    e.peak = std::max<uint64_t>(e.peak, e.times.size());
  }
  // The peak that only `fraction` of the entities exceeded, the highest
  // peak, and how many entities.
  void Summary(double fraction, uint64_t* quantile, uint64_t* max, size_t* n) const {
    std::vector<uint64_t> p;
    for (const auto& [name, e] : entries_) p.push_back(e.peak);
    std::sort(p.begin(), p.end());
    *n = p.size();
    *max = p.empty() ? 0 : p.back();
    if (p.empty()) {
      *quantile = 0;
      return;
    }
    const size_t over = static_cast<size_t>(static_cast<double>(p.size()) * fraction);
    *quantile = p[p.size() - 1 - std::min(over, p.size() - 1)];
  }

 private:
  struct Entry {
    std::deque<absl::Time> times;
    uint64_t peak = 0;
  };
  const absl::Duration window_;
  absl::flat_hash_map<std::string, Entry> entries_;
};

std::string DomainOf(absl::string_view address) {
  const size_t at = address.rfind('@');
  return at == absl::string_view::npos ? std::string()
                                       : absl::AsciiStrToLower(address.substr(at + 1));
}

}  // namespace

absl::Status Replay(const config::Config& live, const std::vector<std::string>& logs,
                    absl::TimeZone tz, ReplaySummary* out, size_t report_per_level) {
  // Nothing live: in-memory tables, no DNS lists, no cluster.
  config::Config c = live;
  c.mutable_table()->clear_path();
  c.mutable_abuse()->mutable_table()->clear_path();
  c.mutable_reputation()->clear_list();
  c.clear_cluster();
  c.clear_notify();
  c.mutable_report()->set_history("744h");  // the report covers the log (up to 31 days)
  PolicyEngine::Options eo;
  std::unique_ptr<PolicyEngine> engine;
  PostfixJoin join;
  EximJoin exim;
  std::map<std::string, uint64_t> by_rule;
  // For the suggestions: peaks per level and window (messages).
  struct Track {
    const char* level;
    const char* window;
    Peaks peaks;
  };
  std::vector<Track> tracks;
  for (const char* level : {"mailbox", "domain", "sasl_user", "client_ip"}) {
    tracks.push_back(Track{level, "1h", Peaks(absl::Hours(1))});
    tracks.push_back(Track{level, "1d", Peaks(absl::Hours(24))});
  }
  *out = ReplaySummary();
  absl::Time end = absl::InfinitePast();  // the newest message's time
  for (const std::string& path : logs) {
    std::ifstream in(path);
    if (!in.good()) return absl::NotFoundError(absl::StrCat("replay: cannot read ", path));
    std::string text;
    absl::Time last = absl::UnixEpoch();
    while (std::getline(in, text)) {
      ++out->lines;
      LogLine line;
      LoggedMessage m;
      const absl::Time ref = last > absl::UnixEpoch() ? last + absl::Hours(12) : absl::Now();
      const bool postfix = SplitLogLine(text, ref, tz, &line) && join.Add(line, &m);
      if (!postfix && !exim.Add(text, tz, &m)) continue;
      if (m.time == absl::InfinitePast()) continue;
      last = m.time;
      end = std::max(end, m.time);
      if (engine == nullptr) {  // the engine's clock starts with the log
        auto e = PolicyEngine::Create(c, m.time, eo);
        if (!e.ok()) return e.status();
        engine = std::move(*e);
      }
      ++out->messages;
      const std::string mailbox = m.sasl_username.empty() ? absl::AsciiStrToLower(m.sender)
                                                          : absl::AsciiStrToLower(m.sasl_username);
      for (Track& t : tracks) {
        const std::string level = t.level;
        t.peaks.Add(level == "mailbox"     ? mailbox
                    : level == "domain"    ? DomainOf(mailbox)
                    : level == "sasl_user" ? m.sasl_username
                                           : m.client_ip,
                    m.time);
      }
      SmtpEvent ev;
      ev.transaction = m.queue_id;
      ev.client_address = m.client_ip;
      ev.sasl_username = m.sasl_username;
      ev.sender = m.sender;
      if (m.local) ev.direction = Direction::kOutgoing;
      Verdict first;
      const uint64_t n = m.recipients == 0 ? 1 : m.recipients;
      std::vector<std::string> rcpts;
      for (uint64_t i = 0; i < n; ++i) rcpts.push_back(absl::StrCat("rcpt", i, "@replay.invalid"));
      ev.stage = Stage::kRcpt;
      for (const std::string& r : rcpts) {
        ev.recipient = r;
        Verdict v = engine->Evaluate(ev, m.time, /*wait_for_dns=*/false);
        if (v.tripped() && !first.tripped()) first = std::move(v);
      }
      ev.stage = Stage::kEndOfMessage;
      ev.recipient = "";
      ev.size = m.size;
      ev.recipient_count = n;
      Verdict end = engine->Evaluate(ev, m.time, /*wait_for_dns=*/false);
      if (end.tripped() && !first.tripped()) first = std::move(end);
      if (!first.tripped()) continue;
      ++out->tripped;
      // Per rule: the text without its retry time.
      ++by_rule[first.text.substr(0, first.text.find(", retry in "))];
      absl::StrAppend(&out->report, absl::FormatTime("%Y-%m-%d %H:%M:%S", m.time, tz), "  ",
                      m.queue_id, "  ", first.identity.empty() ? m.sender : first.identity, "  ",
                      first.shadow ? absl::StrCat("would-", ActionName(first.shadow_action))
                                   : std::string(ActionName(first.action)),
                      "  ", first.text, "\n");
    }
  }
  if (engine != nullptr) out->activity = engine->Report(end, report_per_level);
  out->activity.set_source(absl::StrCat("replay of ", absl::StrJoin(logs, ", ")));
  absl::StrAppend(&out->report, "\n", out->lines, " lines, ", out->messages, " messages, ",
                  out->tripped, " a rule would have acted on\n");
  for (const auto& [rule, count] : by_rule) {
    absl::StrAppend(&out->report, absl::StrFormat("%8d  %s\n", count, rule));
  }
  // Limits that would have touched no one but the top 0.1%: a limit of the
  // p99.9 peak admits everyone at or below it (with under 1,000 entities of
  // a level, that is the heaviest one's peak).
  absl::StrAppend(&out->report,
                  "\nsuggested limits: messages per window that only the top 0.1% exceeded\n",
                  absl::StrFormat("%-10s %-6s %9s %10s %10s %10s\n", "level", "window", "entities",
                                  "p99.9 peak", "max peak", "suggest"));
  for (const Track& t : tracks) {
    uint64_t q = 0, max = 0;
    size_t n = 0;
    t.peaks.Summary(0.001, &q, &max, &n);
    if (n == 0) continue;
    absl::StrAppend(&out->report, absl::StrFormat("%-10s %-6s %9d %10d %10d %10d\n", t.level,
                                                  t.window, n, q, max, q));
  }
  return absl::OkStatus();
}

}  // namespace sluice
