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
// Whose quota a message uses (the mailbox level's key) is the first
// present of the policy's identity list (default: SASL username, envelope
// sender, client address).
//
// Thread safety: all methods are thread-safe. Reload swaps the config
// while requests run; counters of entities that still exist keep counting.
#ifndef SLUICE_BINDINGS_ENGINE_POLICY_ENGINE_H_
#define SLUICE_BINDINGS_ENGINE_POLICY_ENGINE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "bindings/engine/smtp_event.h"
#include "ratelimit/config.pb.h"
#include "ratelimit/limiter.h"
#include "reputation/abuse/abuse_guard.h"
#include "reputation/content/fingerprint.h"
#include "reputation/dns/dns_cache.h"
#include "reputation/dns/dnsbl.h"
#include "reputation/dns/fcrdns.h"
#include "reputation/dns/resolver.h"
#include "reputation/local_lists.h"
#include "reputation/public_suffix.h"
#include "reputation/score_board.h"

namespace sluice {

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
  };

  // REQUIRES: config passed ValidateConfig (ParseConfigText does).
  static absl::StatusOr<std::unique_ptr<PolicyEngine>> Create(const config::Config& config,
                                                              absl::Time now, Options options);

  // Evaluates one stage. Thread-safe.
  Verdict Evaluate(const SmtpEvent& event, absl::Time now);
  // Gives back a transaction's reservations (the client aborted).
  void Abort(absl::string_view transaction, absl::Time now);
  // Reports an AUTH result (adapters that see AUTH: milter, Exim).
  Verdict Auth(absl::string_view client_address, absl::string_view user, bool ok, absl::Time now);

  // Swaps in a new config; on error the running one stays. Abuse counters
  // restart when the abuse section changes (unless file-backed).
  absl::Status Reload(const config::Config& config, absl::Time now);
  // Ends stale transactions (kept counted) and sweeps expired counters.
  void Maintain(absl::Time now);

  // The Postfix policy action for a verdict ("DUNNO", "451 4.7.1 ...",
  // "PREPEND X-Sluice: ...", "WARN ...", "HOLD ...", "DISCARD ...").
  std::string PostfixAction(const Verdict& v) const;
  // One mail.log-style line for a verdict that tripped.
  static std::string LogLine(const Verdict& v, absl::string_view queue_id);

  Limiter& limiter() { return *limiter_; }
  Dnsbl* dnsbl() { return dnsbl_.get(); }  // null without reputation lists
  ScoreBoard& scores() { return *scores_; }
  DnsCache* dns_cache() { return dns_cache_.get(); }
  AbuseGuard& abuse() { return *abuse_.load(std::memory_order_acquire); }
  const config::Config& config() const { return limiter_->config(); }
  // Lifts blocks and restarts an entity's counters' view: unblocks an IP
  // or user in the abuse detectors.
  void Unblock(absl::string_view ip_or_user, absl::Time now);

 private:
  struct Settings {
    std::vector<std::string> identity;
    std::string shadow_header;
    absl::Duration transaction_timeout;
    std::string abuse_config;  // serialized, to tell whether it changed
  };
  PolicyEngine() = default;
  static std::unique_ptr<Settings> MakeSettings(const config::Config& c);
  absl::string_view Identity(const Settings& s, const SmtpEvent& e) const;
  absl::string_view CountedAddress(absl::string_view client_address) const;
  static void FromDecision(const Decision& d, Verdict* v);
  static void FromFinding(const AbuseGuard::Finding& f, absl::string_view key, Verdict* v);
  absl::StatusOr<std::unique_ptr<AbuseGuard>> MakeAbuse(const config::Config& c, absl::Time now);

  Verdict CheckReputation(const SmtpEvent& e, absl::Time now);
  Verdict CheckScores(absl::string_view ip, absl::string_view identity, absl::Time now);
  Verdict ListVerdict(const Dnsbl::Result& r, absl::string_view entity,
                      std::string default_text) const;
  // kDeny: `out` says why; kAllow: skip the lists and scores.
  // A deny also adds abuse_weight to the client's and identity's scores.
  LocalLists::Match CheckLocal(const SmtpEvent& e, absl::string_view identity, absl::Time now,
                               Verdict* out);
  // Feeds the guard's trips into the scores.
  void AttachScores(AbuseGuard* guard);

  Options options_;
  std::unique_ptr<Limiter> limiter_;
  // Reputation (built at Create; a reload keeps the lists of the first
  // config: changing them needs a restart).
  std::unique_ptr<AresResolver> own_dns_;
  std::unique_ptr<DnsCache> dns_cache_;
  std::unique_ptr<PublicSuffixList> psl_;
  std::unique_ptr<Dnsbl> dnsbl_;
  config::Reputation reputation_;
  absl::Duration dns_budget_ = absl::Seconds(2);
  std::unique_ptr<ScoreBoard> scores_;
  std::unique_ptr<LocalListsFile> local_lists_;
  DnsResolver* dns_ = nullptr;  // own_dns_ or the injected one
  // FCrDNS results per client address (bounded; an hour each).
  std::mutex fcrdns_mu_;
  absl::flat_hash_map<std::string, std::pair<Fcrdns::Result, absl::Time>> fcrdns_;
  void CheckFcrdns(absl::string_view ip, absl::Time now);
  std::atomic<AbuseGuard*> abuse_{nullptr};
  std::atomic<const Settings*> settings_{nullptr};
  std::mutex reload_mu_;  // serializes Reload; owns every version (readers hold none)
  std::vector<std::unique_ptr<AbuseGuard>> abuse_versions_;
  std::vector<std::unique_ptr<Settings>> settings_versions_;
};

}  // namespace sluice

#endif  // SLUICE_BINDINGS_ENGINE_POLICY_ENGINE_H_
