// LogFeeder: an MTA's log lines (mail_log.h) into the engine's abuse
// detectors: an AUTH failure (Postfix SASL, Dovecot) to the brute-force
// counters per client and per user, an unknown recipient to harvesting
// per client, connects and disconnects to the connection counts. A client
// or user the detectors then block is refused at the next stage a door
// sees (the policy service at CONNECT, EHLO or MAIL with
// smtpd_client_restrictions; the milter at connect).
//
// Each event is counted at its line's time, or at `now` when the line
// has none or claims a time after `now`. Dovecot with auth_verbose logs a
// failure twice (auth process, login process): once a login-process
// summary has been seen, auth-process lines are not counted. Lines that
// do not parse are counted and skipped.
//
// Thread safety: Feed is for one thread at a time (the follower thread);
// stats() and MetricsText() are thread-safe.
#ifndef SLUICE_BINDINGS_LOGS_LOG_FEEDER_H_
#define SLUICE_BINDINGS_LOGS_LOG_FEEDER_H_

#include <atomic>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace sluice {

class PolicyEngine;

class LogFeeder {
 public:
  struct Stats {
    uint64_t lines = 0;
    uint64_t unparsed = 0;  // not a log line (no "program: message")
    uint64_t auth_failures = 0;
    uint64_t unknown_recipients = 0;
    uint64_t connects = 0;
    uint64_t disconnects = 0;
    uint64_t details_skipped = 0;  // Dovecot auth-process lines after summaries
    uint64_t trips = 0;            // events after which a detector tripped
  };
  // `engine` is not owned and must outlive the feeder.
  explicit LogFeeder(PolicyEngine* engine, absl::TimeZone tz = absl::LocalTimeZone());

  void Feed(absl::string_view line, absl::Time now);

  Stats stats() const;
  // Prometheus text lines (sluice_log_*).
  std::string MetricsText() const;

 private:
  PolicyEngine* const engine_;
  const absl::TimeZone tz_;
  bool seen_summary_ = false;
  std::atomic<uint64_t> lines_{0}, unparsed_{0}, auth_failures_{0}, unknown_recipients_{0},
      connects_{0}, disconnects_{0}, details_skipped_{0}, trips_{0};
};

}  // namespace sluice

#endif  // SLUICE_BINDINGS_LOGS_LOG_FEEDER_H_
