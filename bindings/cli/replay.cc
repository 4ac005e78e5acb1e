#include "bindings/cli/replay.h"

#include <fstream>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bindings/engine/policy_engine.h"
#include "bindings/engine/smtp_event.h"
#include "bindings/logs/mail_log.h"
#include "bindings/logs/postfix_join.h"
#include "ratelimit/types.h"

namespace sluice {

absl::Status Replay(const config::Config& live, const std::vector<std::string>& logs,
                    absl::TimeZone tz, ReplaySummary* out) {
  // Nothing live: in-memory tables, no DNS lists, no cluster.
  config::Config c = live;
  c.mutable_table()->clear_path();
  c.mutable_abuse()->mutable_table()->clear_path();
  c.mutable_reputation()->clear_list();
  c.clear_cluster();
  c.clear_notify();
  PolicyEngine::Options eo;
  std::unique_ptr<PolicyEngine> engine;
  PostfixJoin join;
  std::map<std::string, uint64_t> by_rule;
  *out = ReplaySummary();
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
      if (!SplitLogLine(text, ref, tz, &line) || !join.Add(line, &m)) continue;
      if (m.time == absl::InfinitePast()) continue;
      last = m.time;
      if (engine == nullptr) {  // the engine's clock starts with the log
        auto e = PolicyEngine::Create(c, m.time, eo);
        if (!e.ok()) return e.status();
        engine = std::move(*e);
      }
      ++out->messages;
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
      ++by_rule[first.text];
      absl::StrAppend(&out->report, absl::FormatTime("%Y-%m-%d %H:%M:%S", m.time, tz), "  ",
                      m.queue_id, "  ", first.identity.empty() ? m.sender : first.identity, "  ",
                      first.shadow ? absl::StrCat("would-", ActionName(first.shadow_action))
                                   : std::string(ActionName(first.action)),
                      "  ", first.text, "\n");
    }
  }
  absl::StrAppend(&out->report, "\n", out->lines, " lines, ", out->messages, " messages, ",
                  out->tripped, " a rule would have acted on\n");
  for (const auto& [rule, count] : by_rule) {
    absl::StrAppend(&out->report, absl::StrFormat("%8d  %s\n", count, rule));
  }
  return absl::OkStatus();
}

}  // namespace sluice
