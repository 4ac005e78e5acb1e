// Dnsbl: the DNS lists of the config's `reputation` section, asked about a
// message's client IP, HELO name, MAIL FROM domain and body URL domains,
// through the DnsCache, within one time budget per message.
//
// Each list has a kind (its error answers), targets, return-code matches
// and a weight; hits add their weights to a score that the policy compares
// with the threshold (postscreen style; allowlists weigh negative). An
// error answer (e.g. Spamhaus 127.255.255.254 "public resolver") is never
// a listing: the list is suspended for its `suspend` time and an event
// says so. Lists not answered within the budget count as unknown.
// CheckHealth asks the RFC 5782 test points (127.0.0.2 listed, 127.0.0.1
// not; ::FFFF:7F00:2 / ::FFFF:7F00:1; TEST / INVALID) and suspends lists
// that answer them wrongly.
//
// Thread safety: all methods are thread-safe.
#ifndef SLUICE_REPUTATION_DNS_DNSBL_H_
#define SLUICE_REPUTATION_DNS_DNSBL_H_

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
#include "ratelimit/clock.h"
#include "ratelimit/config.pb.h"
#include "ratelimit/event_sinks.h"
#include "reputation/content/url_extractor.h"
#include "reputation/dns/dns_cache.h"
#include "reputation/dns/dnsbl_query.h"
#include "reputation/public_suffix.h"

namespace sluice {

class Dnsbl {
 public:
  struct Subject {
    absl::string_view client_ip;
    absl::string_view helo;
    absl::string_view mail_from_domain;
    const std::vector<UrlHost>* urls = nullptr;
    // Outgoing mail (a login, a trusted client): only lists with
    // `outgoing: true` are asked; else only lists with `inbound` (default).
    bool outgoing = false;
  };
  struct Hit {
    std::string zone;
    std::string query;   // the name asked
    std::string answer;  // "127.0.0.2"
    double weight = 0;
    config::ListTarget target = config::CLIENT_IP;
  };
  struct Result {
    double score = 0;
    std::vector<Hit> hits;
    int unknown = 0;    // lookups not answered in time (or failed)
    int suspended = 0;  // lookups skipped because their list is suspended
  };
  struct Event {
    absl::Time time;
    std::string zone;
    std::string what;  // "suspended: error answer 127.255.255.254 for ...", ...
  };

  // `cache`, `psl` (may be null: domains are used as they are) and `clock`
  // are not owned.
  static absl::StatusOr<std::unique_ptr<Dnsbl>> Create(const config::Reputation& config,
                                                       DnsCache* cache, const PublicSuffixList* psl,
                                                       const Clock* clock);

  // Asks every list that judges the subject, all at once, waiting at
  // most until `deadline` (InfinitePast: answers only from the cache; what
  // is not there yet is asked and counts as unknown).
  Result Check(const Subject& s, absl::Time deadline);
  // The DNS names Check would look up (for a door's event loop to wait on
  // with DnsCache::Peek before calling Check without waiting).
  std::vector<std::string> QueryNames(const Subject& s);
  // RFC 5782 test points for every list; a list that fails is suspended.
  // Returns one status per list (in config order).
  std::vector<absl::Status> CheckHealth(absl::Time deadline);
  void AddEventSink(std::function<void(const Event&)> sink);
  double threshold() const { return threshold_; }

 private:
  struct List;
  struct Query {
    List* list;
    config::ListTarget target;
    std::string name;
  };
  // The queries a subject needs (lists that judge its direction and are
  // not suspended; r->suspended counts the others).
  std::vector<Query> Queries(const Subject& s, Result* r);
  struct List {
    config::DnsList config;
    ListKind kind;
    std::vector<ReturnFilter> filters;
    absl::Duration suspend;
    std::atomic<int64_t> suspended_until_ms{0};
  };
  Dnsbl() = default;
  bool Matches(const List& l, uint32_t a) const;
  void Suspend(List& l, const std::string& why);
  void Emit(const Event& e);

  std::vector<std::unique_ptr<List>> lists_;
  DnsCache* cache_ = nullptr;
  const PublicSuffixList* psl_ = nullptr;
  const Clock* clock_ = nullptr;
  double threshold_ = 1;
  size_t max_url_domains_ = 8;
  EventSinks<Event> sinks_;
};

}  // namespace sluice

#endif  // SLUICE_REPUTATION_DNS_DNSBL_H_
