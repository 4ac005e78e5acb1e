#include "bindings/logs/log_feeder.h"

#include "absl/strings/str_cat.h"
#include "bindings/engine/policy_engine.h"
#include "bindings/logs/mail_log.h"

namespace sluice {

LogFeeder::LogFeeder(PolicyEngine* engine, absl::TimeZone tz) : engine_(engine), tz_(tz) {}

void LogFeeder::Feed(absl::string_view text, absl::Time now) {
  lines_.fetch_add(1, std::memory_order_relaxed);
  LogLine line;
  if (!SplitLogLine(text, now, tz_, &line)) {
    unparsed_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  const MailLogEvent e = ClassifyMailLog(line);
  const absl::Time t = line.time == absl::InfinitePast() || line.time > now ? now : line.time;
  Verdict v;
  switch (e.kind) {
    case MailLogEvent::Kind::kNone:
      return;
    case MailLogEvent::Kind::kAuthFailed:
      if (e.dovecot && !e.summary && seen_summary_) {
        details_skipped_.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      if (e.summary) seen_summary_ = true;
      for (int i = 0; i < e.attempts; ++i) {
        Verdict one = engine_->Auth(e.client_ip, e.user, /*ok=*/false, t);
        if (one.tripped()) v = std::move(one);
      }
      auth_failures_.fetch_add(static_cast<uint64_t>(e.attempts), std::memory_order_relaxed);
      break;
    case MailLogEvent::Kind::kUnknownRecipient:
      v = engine_->UnknownRecipient(e.client_ip, t);
      unknown_recipients_.fetch_add(1, std::memory_order_relaxed);
      break;
    case MailLogEvent::Kind::kConnect:
      v = engine_->Connection(e.client_ip, /*opened=*/true, t);
      connects_.fetch_add(1, std::memory_order_relaxed);
      break;
    case MailLogEvent::Kind::kDisconnect:
      v = engine_->Connection(e.client_ip, /*opened=*/false, t);
      disconnects_.fetch_add(1, std::memory_order_relaxed);
      break;
  }
  if (v.tripped()) trips_.fetch_add(1, std::memory_order_relaxed);
}

LogFeeder::Stats LogFeeder::stats() const {
  Stats s;
  s.lines = lines_.load(std::memory_order_relaxed);
  s.unparsed = unparsed_.load(std::memory_order_relaxed);
  s.auth_failures = auth_failures_.load(std::memory_order_relaxed);
  s.unknown_recipients = unknown_recipients_.load(std::memory_order_relaxed);
  s.connects = connects_.load(std::memory_order_relaxed);
  s.disconnects = disconnects_.load(std::memory_order_relaxed);
  s.details_skipped = details_skipped_.load(std::memory_order_relaxed);
  s.trips = trips_.load(std::memory_order_relaxed);
  return s;
}

std::string LogFeeder::MetricsText() const {
  const Stats s = stats();
  std::string o = absl::StrCat("# TYPE sluice_log_lines_total counter\nsluice_log_lines_total ",
                               s.lines, "\n# TYPE sluice_log_unparsed_total counter\n",
                               "sluice_log_unparsed_total ", s.unparsed, "\n");
  absl::StrAppend(&o, "# TYPE sluice_log_events_total counter\n");
  const std::pair<const char*, uint64_t> rows[] = {{"auth_failed", s.auth_failures},
                                                   {"unknown_recipient", s.unknown_recipients},
                                                   {"connect", s.connects},
                                                   {"disconnect", s.disconnects},
                                                   {"detail_skipped", s.details_skipped}};
  for (const auto& [kind, n] : rows) {
    absl::StrAppend(&o, "sluice_log_events_total{kind=\"", kind, "\"} ", n, "\n");
  }
  absl::StrAppend(&o, "# TYPE sluice_log_trips_total counter\nsluice_log_trips_total ", s.trips,
                  "\n");
  return o;
}

}  // namespace sluice
