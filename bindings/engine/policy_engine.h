// PolicyEngine: one place where an SMTP transaction meets sluice's limits
// and abuse detectors, shared by every adapter (Postfix policy daemon,
// milter, Exim).
//
// An adapter reports each SMTP stage with what it knows (SmtpEvent) and
// gets one Verdict back:
//   every stage      a blocked client IP or SASL user is refused
//   MAIL             a SASL login feeds the compromised-account signs;
//                    MAIL FROM must belong to the login (sender match)
//   RCPT             the recipient is reserved on every level of the
//                    sender's path (all-or-nothing), keyed by transaction
//   END-OF-MESSAGE   the reservation is committed with the size (bytes
//                    limits) and the message feeds the burst detectors
//   RCPT             (first) the DNS lists of the reputation section are
//                    asked about the client IP, HELO and MAIL FROM domain
//                    within the budget; a score at the threshold refuses
// A transaction whose end is never reported (an MTA asking only at RCPT)
// stays counted: Maintain() ends it after the policy's
// transaction_timeout. Abort() gives a transaction's reservations back.
//
// Whose mail it is comes first (bindings/engine/direction.h): outgoing
// mail (a login, a trusted client, local submission) is counted on its
// sender's path, feeds the burst detectors and is not judged by DNS lists
// (unless a list says `outgoing: true`); inbound mail is counted only at
// the client_ip level, never earns a sender exemption, and gets the DNS
// lists, FCrDNS and the client's score. Verdict and log line say which and
// why.
//
// Whose quota an outgoing message uses (the mailbox level's key) is the
// first present of the policy's identity list (default: SASL username,
// envelope sender, client address).
//
// Thread safety: all methods are thread-safe. Reload swaps the config
// while requests run; counters of entities that still exist keep counting.
#ifndef SLUICE_BINDINGS_ENGINE_POLICY_ENGINE_H_
#define SLUICE_BINDINGS_ENGINE_POLICY_ENGINE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "bindings/engine/smtp_event.h"

namespace sluice {

namespace config {
class ActivityReport;
class Config;
class UsageReport;
}  // namespace config
class AbuseGuard;
class Clock;
class DnsCache;
class DnsResolver;
class Dnsbl;
class ClusterSync;
class Limiter;
class PathResolver;
class ScoreBoard;

struct Decision;  // ratelimit/limiter.h

// A limiter's decision as a verdict (source "limit", the text with its
// entity and retry time); nothing if it did not trip. For doors that call
// the limiter alone (the C ABI).
void FromDecision(const Decision& d, Verdict* v);

class PolicyEngine {
 public:
  struct Options {
    // Overrides the config's table path (e.g. tests, daemon flags).
    std::string table_path;
    std::string abuse_table_path;
    PathResolver* resolver = nullptr;  // not owned
    // DNS for the reputation lists (not owned; tests). Null: c-ares on the
    // config's nameserver, with its own thread.
    DnsResolver* dns = nullptr;
    const Clock* clock = nullptr;  // for DNS TTLs; null: the real clock
    // Touch the counter tables' pages at creation (daemons: no request
    // pays a first-touch page fault).
    bool prefault_tables = false;
    // Keep the names for reports beside a file-backed table
    // (Limiter::Options::save_names): `top` survives a restart.
    bool save_names = false;
    // Per-thread leases on busy counters (Limiter::Options::lease). Off for
    // processes that live for one message or connection (Exim, a forking
    // C ABI caller): then in-memory tables also skip huge pages (the first
    // touch of one zeroes 2 MB, for the few counters such a process uses).
    bool leases = true;
    // Remember messages per hour per entity and the trips for `sluice
    // report` (bindings/report/activity.h; config `report`). Off for
    // processes that live for one message or connection.
    bool record_activity = true;
  };

  ~PolicyEngine();

  // REQUIRES: config passed ValidateConfig (ParseConfigText does).
  static absl::StatusOr<std::unique_ptr<PolicyEngine>> Create(const config::Config& config,
                                                              absl::Time now, Options options);

  // Evaluates one stage. Thread-safe. Waits for DNS lookups (lists,
  // FCrDNS) at most the reputation budget; lists not answered by then count
  // as unknown, never as listed.
  Verdict Evaluate(const SmtpEvent& event, absl::Time now);
  // The same; with wait_for_dns false it never waits: only answers already
  // in the DNS cache count (what is missing is asked, and counts as
  // unknown). For doors with an event loop, after Prepare.
  Verdict Evaluate(const SmtpEvent& event, absl::Time now, bool wait_for_dns);

  // For a door that must never block its loop: starts the DNS lookups
  // `event` will need and returns true if Evaluate(event, now, false) has
  // every answer it can get (cached, or failed recently). Otherwise returns
  // false and calls `ready` (on a DNS thread; it must not block, and may
  // be called more than once) as lookups end: then call Prepare again (a
  // first answer may need a second lookup: FCrDNS), and Evaluate without
  // waiting once it returns true or dns_budget() has passed. Thread-safe.
  bool Prepare(const SmtpEvent& event, absl::Time now, const std::function<void()>& ready);
  // How long a message may wait for DNS in total (reputation.budget).
  absl::Duration dns_budget() const;
  // What the engine makes of a message, counting nothing: its direction
  // and why, whose quota it uses, and in *usage (if not null) every rule on
  // the path it would be charged to. Thread-safe.
  struct Explanation {
    Direction direction = Direction::kUnknown;
    DirectionReason reason = DirectionReason::kUntrustedClient;
    std::string identity;
  };
  Explanation Explain(const SmtpEvent& event, absl::Time now, config::UsageReport* usage) const;
  // What the engine remembers of its traffic (Options::record_activity):
  // per level the `per_level` heaviest entities, messages per hour, each
  // with its rules (limits, usage now), and the trips. Empty without
  // activity. Thread-safe.
  config::ActivityReport Report(absl::Time now, size_t per_level) const;
  // Gives back a transaction's reservations (the client aborted).
  void Abort(absl::string_view transaction, absl::Time now);
  // Reports an AUTH result (adapters that see AUTH: milter, Exim; the log
  // follower for failures).
  Verdict Auth(absl::string_view client_address, absl::string_view user, bool ok, absl::Time now);
  // Reports a recipient the MTA refused as unknown (the log follower:
  // harvesting per client). Thread-safe.
  Verdict UnknownRecipient(absl::string_view client_address, absl::Time now);
  // Reports an SMTP connection opened or closed (the log follower:
  // connections per client, simultaneous and rate). Thread-safe.
  Verdict Connection(absl::string_view client_address, bool opened, absl::Time now);

  // Swaps in a new config; on error the running one stays. Abuse counters
  // restart when the abuse section changes (unless file-backed).
  absl::Status Reload(const config::Config& config, absl::Time now);
  // Ends stale transactions (kept counted) and sweeps expired counters.
  void Maintain(absl::Time now);

  // Adds a listener for notices (trips of limits and detectors, once per
  // entity, rule and window; DNS list suspensions). It is called on the
  // thread that tripped, one notice at a time, and must not call back into
  // this engine's AddNoticeSink. Listeners stay across reloads. Thread-safe.
  void AddNoticeSink(std::function<void(const Notice&)> sink);

  // The Postfix policy action for a verdict ("DUNNO", "451 4.7.1 ...",
  // "PREPEND X-Sluice: ...", "WARN ...", "HOLD ...", "DISCARD ...").
  std::string PostfixAction(const Verdict& v) const;
  // The header a shadow verdict adds where a door can add one (Postfix's
  // PREPEND, a milter's smfi_addheader): policy.shadow_header (default
  // X-Sluice) and "would ACTION; TEXT". False if there is none: nothing
  // tripped, the verdict refuses, a notify rule, or shadow_header "".
  bool ShadowHeader(const Verdict& v, std::string* name, std::string* value) const;
  // One mail.log-style line for a verdict that tripped.
  static std::string LogLine(const Verdict& v, absl::string_view queue_id);

  Limiter& limiter();
  Dnsbl* dnsbl();  // null without reputation lists
  ScoreBoard& scores();
  // The sync of limits shared with other hosts (config `cluster`), or
  // null. Started at Create in a process with leases (a daemon); a
  // short-lived process (leases off) counts on its host only.
  const ClusterSync* cluster() const;
  DnsCache* dns_cache();  // null without reputation lists
  // The abuse detectors in force (tests, tools): valid until a reload
  // replaces them and Maintain frees the old ones.
  AbuseGuard& abuse();
  const config::Config& config() const;
  // Lifts blocks and restarts an entity's counters' view: unblocks an IP
  // or user in the abuse detectors.
  void Unblock(absl::string_view ip_or_user, absl::Time now);

 private:
  // Everything else (the limiter, the reputation parts, the abuse guard and
  // their versions) lives in policy_engine.cc: a door that includes this
  // header does not compile the whole library's headers.
  struct State;
  PolicyEngine();
  std::unique_ptr<State> st_;
};

}  // namespace sluice

#endif  // SLUICE_BINDINGS_ENGINE_POLICY_ENGINE_H_
