#include "bindings/engine/policy_engine.h"

#include <atomic>
#include <deque>
#include <functional>
#include <mutex>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bindings/engine/direction.h"
#include "bindings/report/activity.h"
#include "ratelimit/clock.h"
#include "ratelimit/cluster/cluster_sync.h"
#include "ratelimit/config.h"
#include "ratelimit/config.pb.h"
#include "ratelimit/event_sinks.h"
#include "ratelimit/limiter.h"
#include "ratelimit/versions.h"
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

namespace {

// The path overrides an adapter asks for, applied to every config version.
config::Config WithOverrides(const config::Config& c, const PolicyEngine::Options& o) {
  config::Config out = c;
  if (!o.table_path.empty()) out.mutable_table()->set_path(o.table_path);
  if (!o.abuse_table_path.empty()) {
    out.mutable_abuse()->mutable_table()->set_path(o.abuse_table_path);
  }
  return out;
}

std::string RetryText(absl::Duration d) {
  if (d == absl::InfiniteDuration()) return "";  // blocked (max 0): no retry time to give
  if (d > absl::Hours(24 * 366)) d = absl::Hours(24 * 366);
  int64_t s = absl::ToInt64Seconds(absl::Ceil(d, absl::Seconds(1)));
  if (s <= 0) return "";
  if (s < 120) return absl::StrCat(", retry in ", s, "s");
  if (s < 7200) return absl::StrCat(", retry in ", (s + 59) / 60, "m");
  return absl::StrCat(", retry in ", (s + 3599) / 3600, "h");
}

}  // namespace

// The engine's parts and versions (see the header for what each does).
struct PolicyEngine::State {
  struct Settings {
    std::vector<std::string> identity;
    std::string shadow_header;
    absl::Duration transaction_timeout;
    std::string abuse_config;                              // serialized, to tell whether it changed
    std::string login_domain;                              // for logins without '@'
    absl::flat_hash_map<std::string, std::string> logins;  // lower-case login -> address
    std::unique_ptr<DirectionRules> direction;
    bool refuse_local_sender = false;  // policy.refuse_unauthenticated_local_sender
  };
  // A message as the engine sees it: its direction, whose quota it uses
  // and the limiter's request. Views point into the event and *this.
  struct Message {
    DirectionRules::Result direction;
    absl::string_view identity;
    bool identity_is_mailbox = false;
    std::string mapped_login;  // a login without '@' mapped to its mailbox
    Request request;
  };
  void Classify(const Settings& s, const SmtpEvent& e, Message* m) const;
  // Inbound mail from a local domain's address without a login, if the
  // policy refuses it.
  Verdict CheckLocalSender(const Settings& s, const SmtpEvent& e, const Message& m) const;
  static std::unique_ptr<Settings> MakeSettings(const config::Config& c);
  // The bodies of the public methods.
  Verdict Evaluate(const SmtpEvent& event, absl::Time now, bool wait_for_dns);
  Verdict Judge(const Settings& s, AbuseGuard& abuse, const SmtpEvent& e, const Message& m,
                absl::Time now, absl::Time dns_deadline);
  Verdict Auth(absl::string_view client_address, absl::string_view user, bool ok, absl::Time now);
  absl::Status Reload(const config::Config& config, absl::Time now);
  std::string PostfixAction(const Verdict& v) const;
  bool ShadowHeader(const Verdict& v, std::string* name, std::string* value) const;
  // Whose quota a message uses: the first present of the policy's identity
  // list. *mailbox says whether it names a mailbox (a login or a sender);
  // a client address does not: such mail (bounces, in the default list)
  // counts at the levels it can be attributed to (client IP, server), never
  // as a mailbox named after an IP.
  absl::string_view Identity(const Settings& s, const SmtpEvent& e, bool* mailbox) const;
  absl::string_view CountedAddress(absl::string_view client_address) const;
  static void FromFinding(const AbuseGuard::Finding& f, absl::string_view key, Verdict* v);
  absl::StatusOr<std::unique_ptr<AbuseGuard>> MakeAbuse(const config::Config& c, absl::Time now);

  Verdict CheckReputation(const SmtpEvent& e, bool outgoing, absl::Time now,
                          absl::Time dns_deadline);
  // The DNS-list subject of a message's envelope.
  static Dnsbl::Subject EnvelopeSubject(const SmtpEvent& e, bool outgoing);
  // The local lists' word on a message (no side effects).
  LocalLists::Match LocalMatch(const SmtpEvent& e, absl::string_view* domain) const;
  bool Prepare(const SmtpEvent& e, absl::Time now, const std::function<void()>& ready);
  Verdict CheckScores(absl::string_view ip, absl::string_view identity, absl::Time now);
  Verdict ListVerdict(const Dnsbl::Result& r, absl::string_view entity,
                      std::string default_text) const;
  // kDeny: `out` says why; kAllow: skip the lists and scores.
  // A deny also adds abuse_weight to the client's and identity's scores.
  LocalLists::Match CheckLocal(const SmtpEvent& e, absl::string_view identity, absl::Time now,
                               Verdict* out);
  // Remembers a committed message for the reports (activity_).
  void RecordActivity(const Request& r, const SmtpEvent& e, absl::Time now);
  // Feeds the guard's trips into the scores and the notices.
  void AttachGuard(AbuseGuard* guard);
  // Feeds the limiter's trips and the lists' suspensions into the notices
  // (at the first listener: without one, a trip builds no event).
  void AttachNotices();

  EventSinks<Notice> notices_;
  std::once_flag notices_attached_;
  Options options_;
  // Declared before the limiter, which asks it: it outlives the limiter.
  std::unique_ptr<ClusterSync> cluster_;
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
  std::unique_ptr<Activity> activity_;  // null: Options::record_activity off
  DnsResolver* dns_ = nullptr;          // own_dns_ or the injected one
  // FCrDNS results per client address (bounded; an hour each).
  std::mutex fcrdns_mu_;
  absl::flat_hash_map<std::string, std::pair<Fcrdns::Result, absl::Time>> fcrdns_;
  void CheckFcrdns(absl::string_view ip, absl::Time now, absl::Time dns_deadline);
  bool FcrdnsKnown(absl::string_view ip, absl::Time now);  // counted within the hour
  std::deque<std::string> fcrdns_order_;                   // oldest first, for eviction
  // The abuse detectors and settings in force, read in sections (Read());
  // a reload's replaced ones are freed once no call can hold them.
  mutable Versions<AbuseGuard> abuse_;
  mutable Versions<const Settings> settings_;
  std::mutex reload_mu_;  // serializes Reload
  void CollectVersions() {
    abuse_.Collect();
    settings_.Collect();
  }
};

PolicyEngine::PolicyEngine() : st_(std::make_unique<State>()) {}
PolicyEngine::~PolicyEngine() = default;

std::unique_ptr<PolicyEngine::State::Settings> PolicyEngine::State::MakeSettings(
    const config::Config& c) {
  auto s = std::make_unique<Settings>();
  const auto& p = c.policy();
  s->identity.assign(p.identity().begin(), p.identity().end());
  if (s->identity.empty()) s->identity = {"sasl_username", "sender", "client_address"};
  s->shadow_header = p.has_shadow_header() ? p.shadow_header() : "X-Sluice";
  s->transaction_timeout = p.has_transaction_timeout()
                               ? absl::Seconds(*ParseWindow(p.transaction_timeout()))
                               : absl::Minutes(10);
  s->abuse_config = c.abuse().SerializeAsString();
  s->login_domain = absl::AsciiStrToLower(p.login_domain());
  for (const auto& l : p.login()) {
    s->logins[absl::AsciiStrToLower(l.name())] = absl::AsciiStrToLower(l.address());
  }
  s->direction = std::make_unique<DirectionRules>(c);
  s->refuse_local_sender = p.refuse_unauthenticated_local_sender();
  return s;
}

absl::StatusOr<std::unique_ptr<PolicyEngine>> PolicyEngine::Create(const config::Config& config,
                                                                   absl::Time now,
                                                                   Options options) {
  std::unique_ptr<PolicyEngine> e(new PolicyEngine);
  State* s = e->st_.get();
  s->options_ = std::move(options);
  const config::Config c = WithOverrides(config, s->options_);
  Limiter::Options lo;
  lo.resolver = s->options_.resolver;
  lo.table.prefault = s->options_.prefault_tables;
  lo.save_names = s->options_.save_names;
  lo.lease = s->options_.leases;
  lo.table.huge_pages = s->options_.leases;  // a short-lived process: no huge pages
  if (c.policy().has_recipient_limit()) lo.max_recipients = c.policy().recipient_limit();
  if (c.cluster().server_size() > 0 && s->options_.leases) {
    auto sync = ClusterSync::Create(c.cluster());
    if (!sync.ok()) return sync.status();
    s->cluster_ = std::move(*sync);
    lo.shared = s->cluster_.get();
  }
  auto limiter = Limiter::Create(c, now, lo);
  if (!limiter.ok()) return limiter.status();
  s->limiter_ = std::move(*limiter);
  if (s->cluster_ != nullptr) s->cluster_->Start();
  if (s->options_.record_activity) {
    s->activity_ = std::make_unique<Activity>(Activity::FromConfig(c));
    Activity* a = s->activity_.get();
    e->AddNoticeSink([a](const Notice& n) { a->RecordTrip(n); });
  }
  if (!c.reputation().local_lists().empty()) {
    auto lists = LocalListsFile::Open(c.reputation().local_lists());
    if (!lists.ok()) return lists.status();
    s->local_lists_ = std::move(*lists);
  }
  ScoreBoard::Options so;
  if (c.reputation().has_score_half_life()) {
    (void)absl::ParseDuration(c.reputation().score_half_life(), &so.half_life);
  }
  s->scores_ = std::make_unique<ScoreBoard>(so);
  s->reputation_ = c.reputation();
  auto abuse = AbuseGuard::Create(c, now, s->options_.prefault_tables, s->options_.leases);
  if (!abuse.ok()) return abuse.status();
  s->AttachGuard(abuse->get());
  s->abuse_.Publish(std::move(*abuse), absl::Now());
  s->settings_.Publish(State::MakeSettings(c), absl::Now());
  if (c.reputation().list_size() > 0) {
    const config::Reputation& rc = c.reputation();
    static const RealClock real_clock;
    const Clock* clock = s->options_.clock != nullptr ? s->options_.clock : &real_clock;
    DnsResolver* dns = s->options_.dns;
    if (dns == nullptr) {
      AresResolver::Options ro;
      ro.server = rc.nameserver();
      ro.port = static_cast<int>(rc.port());
      if (rc.has_timeout()) (void)absl::ParseDuration(rc.timeout(), &ro.timeout);
      auto r = AresResolver::Create(ro);
      if (!r.ok()) return r.status();
      s->own_dns_ = std::move(*r);
      s->own_dns_->Start();
      dns = s->own_dns_.get();
    }
    DnsCache::Options co;
    if (rc.has_min_ttl()) (void)absl::ParseDuration(rc.min_ttl(), &co.min_ttl);
    if (rc.has_max_ttl()) (void)absl::ParseDuration(rc.max_ttl(), &co.max_ttl);
    if (rc.has_cache_entries()) co.max_entries = rc.cache_entries();
    if (rc.has_failure_ttl()) (void)absl::ParseDuration(rc.failure_ttl(), &co.failure_ttl);
    s->dns_ = dns;
    s->dns_cache_ = std::make_unique<DnsCache>(dns, clock, co);
    auto psl = PublicSuffixList::Load();
    if (psl.ok()) s->psl_ = std::move(*psl);  // without it domains are used as written
    auto d = Dnsbl::Create(rc, s->dns_cache_.get(), s->psl_.get(), clock);
    if (!d.ok()) return d.status();
    s->dnsbl_ = std::move(*d);
    if (rc.has_budget()) (void)absl::ParseDuration(rc.budget(), &s->dns_budget_);
  }
  return e;
}

LocalLists::Match PolicyEngine::State::CheckLocal(const SmtpEvent& e, absl::string_view identity,
                                                  absl::Time now, Verdict* out) {
  if (local_lists_ == nullptr) return LocalLists::Match::kNone;
  absl::string_view domain;
  const LocalLists::Match match = LocalMatch(e, &domain);
  if (match == LocalLists::Match::kDeny) {
    const bool by_ip = domain.empty();
    out->source = "local_deny";
    out->action = reputation_.has_action() ? ToAction(reputation_.action()) : Action::kReject;
    out->shadow_action = out->action;
    out->entity = std::string(by_ip ? e.client_address : domain);
    const bool reject = out->action == Action::kReject;
    out->smtp_code = reject ? 554 : 450;
    out->enhanced_status = reject ? "5.7.1" : "4.7.1";
    out->text = absl::StrCat("sluice: ", by_ip ? "client [" : "sender domain ", out->entity,
                             by_ip ? "]" : "", " is on the local deny list");
    // A deny hit also counts against the client and the account's score.
    scores_->Add(e.client_address, reputation_.abuse_weight(), now);
    if (!identity.empty()) scores_->Add(identity, reputation_.abuse_weight(), now);
    return LocalLists::Match::kDeny;
  }
  return match;
}

// kDeny (by the client address: *domain stays empty; else by the sender's
// domain, named in *domain), kAllow, or kNone.
LocalLists::Match PolicyEngine::State::LocalMatch(const SmtpEvent& e,
                                                  absl::string_view* domain) const {
  if (local_lists_ == nullptr) return LocalLists::Match::kNone;
  std::shared_ptr<const LocalLists> lists = local_lists_->Get();
  const LocalLists::Match ip = lists->CheckIp(e.client_address);
  if (ip == LocalLists::Match::kDeny) return ip;
  absl::string_view sender_domain;
  const size_t at = e.sender.rfind('@');
  if (at != absl::string_view::npos) sender_domain = e.sender.substr(at + 1);
  const LocalLists::Match dom =
      sender_domain.empty() ? LocalLists::Match::kNone : lists->CheckDomain(sender_domain);
  if (dom == LocalLists::Match::kDeny) {
    *domain = sender_domain;
    return dom;
  }
  if (ip == LocalLists::Match::kAllow || dom == LocalLists::Match::kAllow) {
    return LocalLists::Match::kAllow;
  }
  return LocalLists::Match::kNone;
}

bool PolicyEngine::State::FcrdnsKnown(absl::string_view ip, absl::Time now) {
  std::lock_guard<std::mutex> lock(fcrdns_mu_);
  auto it = fcrdns_.find(ip);
  return it != fcrdns_.end() && now - it->second.second < absl::Hours(1);
}

void PolicyEngine::State::CheckFcrdns(absl::string_view ip, absl::Time now,
                                      absl::Time dns_deadline) {
  const double weight = reputation_.fcrdns_weight();
  if (weight == 0 || dns_cache_ == nullptr || ip.empty()) return;
  if (FcrdnsKnown(ip, now)) return;  // counted within the hour
  // Through the DNS cache: answers shared, failures remembered.
  const Fcrdns f = ForwardConfirmed(dns_cache_.get(), ip, dns_deadline);
  if (f.result == Fcrdns::Result::kUnknown) return;  // ask again next time
  {
    std::lock_guard<std::mutex> lock(fcrdns_mu_);
    auto [it, inserted] = fcrdns_.insert_or_assign(std::string(ip), std::make_pair(f.result, now));
    if (inserted) fcrdns_order_.push_back(it->first);
    while (fcrdns_.size() > 65536 && !fcrdns_order_.empty()) {  // bounded: oldest first
      fcrdns_.erase(fcrdns_order_.front());
      fcrdns_order_.pop_front();
    }
  }
  if (f.result != Fcrdns::Result::kConfirmed) scores_->Add(ip, weight, now);
}

void PolicyEngine::State::AttachGuard(AbuseGuard* guard) {
  const double weight = reputation_.abuse_weight();
  ScoreBoard* scores = scores_.get();
  EventSinks<Notice>* notices = &notices_;
  guard->AddEventSink([scores, weight, notices](const AbuseGuard::Event& ev) {
    if (!ev.key.empty()) scores->Add(ev.key, weight, ev.time);
    if (!notices->any()) return;
    Notice n;
    n.time = ev.time;
    n.source = std::string(AbuseGuard::DetectorName(ev.detector));
    n.entity = ev.key;
    n.limit = ev.limit;
    n.usage = ev.count;
    n.action = ev.action;
    n.shadow = ev.shadow;
    n.text = absl::StrCat(n.source, " tripped for ", ev.key, ": ", ev.count, " (limit ", ev.limit,
                          ")", ev.shadow ? " [shadow]" : "");
    notices->Deliver(n);
  });
}

void PolicyEngine::State::AttachNotices() {
  EventSinks<Notice>* notices = &notices_;
  limiter_->AddEventSink([notices](const Event& ev) {
    if (!notices->any()) return;
    Notice n;
    n.time = ev.time;
    n.source = "limit";
    n.level = ev.level;
    n.entity = ev.entity;
    n.metric = ev.metric;
    n.window_seconds = ev.window_seconds;
    n.limit = ev.limit;
    n.usage = ev.usage;
    n.action = ev.action;
    n.shadow = ev.shadow;
    n.text = absl::StrCat(LevelName(ev.level), " ", ev.entity, " reached its limit of ", ev.limit,
                          " ", MetricName(ev.metric), " per ", FormatWindow(ev.window_seconds),
                          ev.shadow ? " [shadow]" : "");
    notices->Deliver(n);
  });
  if (dnsbl_ == nullptr) return;
  dnsbl_->AddEventSink([notices](const Dnsbl::Event& ev) {
    if (!notices->any()) return;
    Notice n;
    n.time = ev.time;
    n.source = "dnsbl";
    n.entity = ev.zone;
    n.action = Action::kNotify;
    n.text = absl::StrCat("DNS list ", ev.zone, " ", ev.what);
    notices->Deliver(n);
  });
}

Verdict PolicyEngine::State::CheckScores(absl::string_view ip, absl::string_view identity,
                                         absl::Time now) {
  Verdict v;
  const double threshold = reputation_.score_threshold();
  if (threshold <= 0) return v;
  for (absl::string_view key : {ip, identity}) {
    if (key.empty()) continue;
    const double s = scores_->Get(key, now);
    if (s < threshold) continue;
    v.source = "score";
    v.action = Action::kDefer;
    v.shadow_action = v.action;
    v.entity = std::string(key);
    v.usage = static_cast<uint64_t>(s);
    v.limit = static_cast<uint64_t>(threshold);
    v.smtp_code = 450;
    v.enhanced_status = "4.7.1";
    v.text = absl::StrFormat("sluice: reputation score %.1f of %s is over %.1f, try again later", s,
                             std::string(key), threshold);
    return v;
  }
  return v;
}

Dnsbl::Subject PolicyEngine::State::EnvelopeSubject(const SmtpEvent& e, bool outgoing) {
  Dnsbl::Subject s;
  s.outgoing = outgoing;
  s.client_ip = e.client_address;
  s.helo = e.helo;
  size_t at = e.sender.rfind('@');
  if (at != absl::string_view::npos) s.mail_from_domain = e.sender.substr(at + 1);
  return s;
}

Verdict PolicyEngine::State::CheckReputation(const SmtpEvent& e, bool outgoing, absl::Time now,
                                             absl::Time dns_deadline) {
  Verdict v;
  if (dnsbl_ == nullptr) return v;
  // The deadline is real time: a message never waits longer for DNS.
  Dnsbl::Result r = dnsbl_->Check(EnvelopeSubject(e, outgoing), dns_deadline);
  // The lists set a floor under the client's score (asked again per
  // recipient, they must not add up).
  if (!e.client_address.empty() && r.score > 0) {
    const double have = scores_->Get(e.client_address, now);
    if (have < r.score) scores_->Add(e.client_address, r.score - have, now);
  }
  if (r.hits.empty() || r.score < dnsbl_->threshold()) return v;
  std::string zones;
  for (const auto& h : r.hits) {
    if (zones.find(h.zone) == std::string::npos) {
      absl::StrAppend(&zones, zones.empty() ? "" : ", ", h.zone);
    }
  }
  return ListVerdict(r, e.client_address,
                     absl::StrCat("sluice: Service unavailable; client [", e.client_address,
                                  "] blocked using ", zones));
}

// The reputation section's response to a score at the threshold.
Verdict PolicyEngine::State::ListVerdict(const Dnsbl::Result& r, absl::string_view entity,
                                         std::string default_text) const {
  Verdict v;
  const auto& rc = reputation_;
  v.source = "dnsbl";
  v.action = rc.has_action() ? ToAction(rc.action()) : Action::kReject;
  v.shadow = v.action == Action::kNotify;
  v.shadow_action = v.action;
  v.entity = std::string(entity);
  v.usage = static_cast<uint64_t>(r.score);
  v.limit = static_cast<uint64_t>(dnsbl_->threshold());
  const bool reject = v.action == Action::kReject;
  v.smtp_code = rc.has_smtp_code() ? static_cast<int>(rc.smtp_code()) : reject ? 554 : 450;
  v.enhanced_status = rc.has_enhanced_status() ? rc.enhanced_status() : reject ? "5.7.1" : "4.7.1";
  v.text = rc.has_text() ? rc.text() : std::move(default_text);
  return v;
}

absl::Status PolicyEngine::State::Reload(const config::Config& config, absl::Time now) {
  if (auto s = ValidateConfig(config); !s.ok()) return s;
  const config::Config c = WithOverrides(config, options_);
  std::lock_guard<std::mutex> lock(reload_mu_);
  auto settings = MakeSettings(c);
  std::unique_ptr<AbuseGuard> abuse;
  if (settings->abuse_config != settings_.current()->abuse_config) {
    auto a = AbuseGuard::Create(c, now, options_.prefault_tables, options_.leases);
    if (!a.ok()) return a.status();
    abuse = std::move(*a);
    AttachGuard(abuse.get());
  }
  if (local_lists_ != nullptr) {
    if (auto s = local_lists_->Reload(); !s.ok()) return s;
  }
  if (auto s = limiter_->Reload(c); !s.ok()) return s;
  if (activity_ != nullptr) activity_->Configure(Activity::FromConfig(c));
  if (abuse != nullptr) abuse_.Publish(std::move(abuse), absl::Now());
  settings_.Publish(std::move(settings), absl::Now());
  CollectVersions();
  return absl::OkStatus();
}

absl::string_view PolicyEngine::State::Identity(const Settings& s, const SmtpEvent& e,
                                                bool* mailbox) const {
  *mailbox = true;
  for (const std::string& id : s.identity) {
    if (id == "sasl_username" && !e.sasl_username.empty()) return e.sasl_username;
    if (id == "sender" && !e.sender.empty()) return e.sender;
    if (id == "client_address" && !e.client_address.empty()) {
      *mailbox = false;
      return e.client_address;
    }
  }
  *mailbox = false;
  return "";
}

void FromDecision(const Decision& d, Verdict* v) {
  if (!d.tripped()) return;
  v->action = d.action;
  v->shadow = d.shadow;
  v->shadow_action = d.shadow_action;
  v->source = "limit";
  v->level = d.level;
  v->entity = d.entity;
  v->metric = d.metric;
  v->window_seconds = d.window_seconds;
  v->limit = d.limit;
  v->usage = d.usage;
  v->retry_after = d.retry_after;
  v->smtp_code = d.smtp_code;
  v->enhanced_status = d.enhanced_status;
  v->text = absl::StrCat("sluice: ", d.text, " (", d.entity, ")",
                         d.oversized ? absl::StrCat("; ", d.requested, " ", MetricName(d.metric),
                                                    " at once can never pass")
                                     : RetryText(d.retry_after));
}

void PolicyEngine::State::FromFinding(const AbuseGuard::Finding& f, absl::string_view key,
                                      Verdict* v) {
  if (!f.tripped()) return;
  const bool passes = f.shadow || f.action == Action::kNotify || f.action == Action::kAccept;
  v->action = passes ? (f.action == Action::kNotify ? Action::kNotify : Action::kAccept) : f.action;
  v->shadow = passes;
  v->shadow_action = f.action;
  v->source = std::string(AbuseGuard::DetectorName(f.detector));
  v->entity = std::string(key);
  v->limit = f.limit;
  v->usage = f.count;
  v->retry_after = f.retry_after;
  v->smtp_code = f.smtp_code;
  v->enhanced_status = f.enhanced_status;
  v->text = absl::StrCat(f.text, RetryText(f.retry_after));
}

// Per-address abuse signals are not kept for exempt clients (a webmail
// host relays for all its users; one user's typos must not block them
// all): they are given no address.
absl::string_view PolicyEngine::State::CountedAddress(absl::string_view client_address) const {
  return limiter_->IsExemptClient(client_address) ? absl::string_view() : client_address;
}

void PolicyEngine::State::Classify(const Settings& s, const SmtpEvent& e, Message* m) const {
  m->direction = s.direction->Classify(e);
  Request& r = m->request;
  r.client_ip = e.client_address;
  if (!m->direction.outgoing()) {
    // Inbound: the client is all that counts it and all it is known by.
    m->identity = e.client_address;
    m->identity_is_mailbox = false;
    r.inbound = true;
    return;
  }
  m->identity = Identity(s, e, &m->identity_is_mailbox);
  // A login without '@' counts as the mailbox the config maps it to.
  if (m->identity_is_mailbox && m->identity == e.sasl_username &&
      m->identity.find('@') == absl::string_view::npos) {
    m->mapped_login = absl::AsciiStrToLower(m->identity);
    auto it = s.logins.find(m->mapped_login);
    if (it != s.logins.end()) {
      m->mapped_login = it->second;
      m->identity = m->mapped_login;
    } else if (!s.login_domain.empty()) {
      absl::StrAppend(&m->mapped_login, "@", s.login_domain);
      m->identity = m->mapped_login;
    }
  }
  r.sender = m->identity_is_mailbox ? m->identity : absl::string_view();
  // The client_ip level counts inbound clients and logged-in users'
  // addresses, not the trusted networks' hosts (a webmail host sends for
  // everyone; Postfix's anvil exempts mynetworks the same way) - unless
  // the address is exempt, which the limiter must see to exempt it.
  if ((m->direction.reason == DirectionReason::kTrustedNetwork ||
       m->direction.reason == DirectionReason::kDoor) &&
      !limiter_->IsExemptClient(e.client_address)) {
    r.client_ip = absl::string_view();
  }
  r.sasl_user = e.sasl_username;
  r.script = e.script;
  r.list = e.list;
}

Verdict PolicyEngine::State::CheckLocalSender(const Settings& s, const SmtpEvent& e,
                                              const Message& m) const {
  Verdict v;
  if (!s.refuse_local_sender || m.direction.outgoing()) return v;
  const size_t at = e.sender.rfind('@');
  if (at == absl::string_view::npos) return v;
  const absl::string_view domain = e.sender.substr(at + 1);
  if (!s.direction->IsLocalDomain(domain)) return v;
  v.source = "local_sender";
  v.action = Action::kReject;
  v.shadow_action = v.action;
  v.entity = std::string(e.sender);
  v.smtp_code = 550;
  v.enhanced_status = "5.7.1";
  v.text = absl::StrCat("sluice: sender <", e.sender, "> is in a local domain (", domain,
                        "); log in to send as a local user");
  return v;
}

Verdict PolicyEngine::State::Evaluate(const SmtpEvent& e, absl::Time now, bool wait_for_dns) {
  const auto settings = settings_.Read();  // valid for this call
  const Settings& s = *settings;
  const auto abuse_version = abuse_.Read();  // valid for this call
  AbuseGuard& abuse = *abuse_version;
  Message m;
  Classify(s, e, &m);
  const absl::Time dns_deadline = wait_for_dns ? absl::Now() + dns_budget_ : absl::InfinitePast();
  Verdict v = Judge(s, abuse, e, m, now, dns_deadline);
  // Set once: the stages may replace v.
  v.identity = std::string(m.identity);
  v.direction = m.direction.direction;
  v.direction_reason = m.direction.reason;
  return v;
}

Verdict PolicyEngine::State::Judge(const Settings& s, AbuseGuard& abuse, const SmtpEvent& e,
                                   const Message& m, absl::Time now, absl::Time dns_deadline) {
  Verdict v;
  const absl::string_view identity = m.identity;
  const bool outgoing = m.direction.outgoing();
  // A blocked client or user is refused at every stage.
  AbuseGuard::Finding blocked =
      abuse.CheckBlocked(CountedAddress(e.client_address), e.sasl_username, now);
  if (blocked.tripped()) {
    FromFinding(blocked, e.client_address.empty() ? e.sasl_username : e.client_address, &v);
    if (!v.admitted()) return v;
  }
  if (e.stage == Stage::kMail || e.stage == Stage::kRcpt) {
    Verdict ls = CheckLocalSender(s, e, m);
    if (ls.tripped()) return ls;
  }
  const Request& r = m.request;
  switch (e.stage) {
    case Stage::kMail: {
      if (e.sasl_username.empty()) break;
      Verdict w;
      if (e.count) {
        FromFinding(abuse.AuthSucceeded(e.client_address, e.sasl_username, now), e.sasl_username,
                    &w);
      }
      if (w.tripped()) v = std::move(w);
      if (!v.admitted()) break;
      Verdict m;
      FromFinding(abuse.MailFrom(e.sasl_username, e.sender, now), e.sasl_username, &m);
      if (m.tripped() && (!v.tripped() || !m.admitted())) v = std::move(m);
      break;
    }
    case Stage::kRcpt: {
      Verdict local;
      const LocalLists::Match lv =
          CheckLocal(e, outgoing ? identity : absl::string_view(), now, &local);
      if (lv == LocalLists::Match::kDeny) {
        v = std::move(local);
        break;
      }
      if (lv != LocalLists::Match::kAllow) {  // allowed clients skip scores and lists
        // Inbound mail is judged by its client (FCrDNS, its score); outgoing
        // mail by its account (a user on a residential address is not the
        // address's other users).
        if (!outgoing) CheckFcrdns(e.client_address, now, dns_deadline);
        Verdict sc =
            outgoing ? CheckScores("", identity, now) : CheckScores(e.client_address, "", now);
        if (sc.tripped()) {
          v = std::move(sc);
          break;
        }
        Verdict rep = CheckReputation(e, outgoing, now, dns_deadline);
        if (rep.tripped() && !rep.admitted()) {
          v = std::move(rep);
          break;
        }
      }
      if (!e.count) break;  // another door counts
      Decision d = e.transaction.empty() ? limiter_->CheckAndCharge(r, now)
                                         : limiter_->Reserve(e.transaction, e.recipient, r, now);
      FromDecision(d, &v);
      break;
    }
    case Stage::kEndOfMessage: {
      if (!e.count) break;  // another door counts and judges the message
      // The burst detectors first: a message they refuse must not stay
      // counted against the limits (all or nothing).
      Fingerprint size_only;
      const Fingerprint* fp = e.fingerprint;
      if (fp == nullptr) {
        size_only.size = e.size;
        size_only.size_bucket = Fingerprint::SizeBucket(e.size);
        fp = &size_only;
      }
      // The burst detectors watch what local accounts send. Exempt senders
      // and clients (a list manager, a newsletter host) send many
      // near-identical messages on purpose.
      // Asked once, for the detectors and for the report's figures.
      const bool exempt = (outgoing || activity_ != nullptr) && limiter_->IsExempt(r);
      Verdict b;
      if (outgoing && !exempt) {
        FromFinding(abuse.Message(identity, *fp, now), identity, &b);
      }
      if (b.tripped() && !b.admitted()) {
        limiter_->Release(e.transaction, now);
        v = std::move(b);
        break;
      }
      // URL domains of the body on the domain lists (adapters that see the
      // body: milter, Exim).
      if (e.urls != nullptr && !e.urls->empty() && dnsbl_ != nullptr) {
        Dnsbl::Subject subject;
        subject.urls = e.urls;
        subject.outgoing = outgoing;
        Dnsbl::Result r = dnsbl_->Check(subject, dns_deadline);
        if (!r.hits.empty() && r.score >= dnsbl_->threshold()) {
          v = ListVerdict(
              r, r.hits[0].query,
              absl::StrCat("sluice: message contains a URL listed by ", r.hits[0].zone));
          limiter_->Release(e.transaction, now);
          break;
        }
      }
      // A transaction no longer open (expired, evicted, or never reserved)
      // is still charged: its bytes, and what it has not paid yet.
      // recipient_count also gives back the reservations of recipients a
      // later restriction refused.
      Request whole = r;
      whole.recipients = e.recipient_count;
      Decision d;
      if (!e.transaction.empty()) {
        d = limiter_->Commit(e.transaction, e.size, now, &whole);
      } else if (e.size > 0) {  // no transaction to tie it to: its bytes alone
        whole.messages = 0;
        whole.recipients = 0;
        whole.bytes = e.size;
        d = limiter_->CheckAndCharge(whole, now);
      }
      FromDecision(d, &v);
      if (activity_ != nullptr && d.admitted() && !exempt) {
        RecordActivity(whole, e, now);
      }
      if (b.tripped() && v.admitted()) v = std::move(b);  // a notify/shadow finding
      break;
    }
    default:
      break;
  }
  return v;
}

bool PolicyEngine::State::Prepare(const SmtpEvent& e, absl::Time now,
                                  const std::function<void()>& ready) {
  if (dns_cache_ == nullptr) return true;
  const auto settings = settings_.Read();  // valid for this call
  const Settings& s = *settings;
  Message m;
  Classify(s, e, &m);
  const bool outgoing = m.direction.outgoing();
  std::vector<std::string> names;
  bool pending = false;
  if (e.stage == Stage::kRcpt) {
    absl::string_view ignored;
    if (LocalMatch(e, &ignored) != LocalLists::Match::kNone) return true;  // no lists asked
    if (dnsbl_ != nullptr) names = dnsbl_->QueryNames(EnvelopeSubject(e, outgoing));
    if (!outgoing && reputation_.fcrdns_weight() != 0 && !e.client_address.empty() &&
        !FcrdnsKnown(e.client_address, now)) {
      // FCrDNS walked over the cache without waiting: what it still needs
      // is asked now (its forward names once the PTR answer is in).
      ForwardConfirmed(
          [&](const std::string& name, DnsResolver::Type type, DnsAnswer* out) {
            DnsCache::Result r = dns_cache_->Peek(name, type, ready);
            pending |= r.pending();
            if (!r.known()) return false;
            *out = std::move(r.answer);
            return true;
          },
          e.client_address);
    }
  } else if (e.stage == Stage::kEndOfMessage && e.urls != nullptr && dnsbl_ != nullptr) {
    Dnsbl::Subject subject;
    subject.urls = e.urls;
    subject.outgoing = outgoing;
    names = dnsbl_->QueryNames(subject);
  }
  for (const std::string& name : names) {
    pending |= dns_cache_->Peek(name, DnsResolver::Type::kA, ready).pending();
  }
  return !pending;
}

PolicyEngine::Explanation PolicyEngine::Explain(const SmtpEvent& event, absl::Time now,
                                                config::UsageReport* usage) const {
  const auto settings = st_->settings_.Read();
  const State::Settings& s = *settings;
  State::Message m;
  st_->Classify(s, event, &m);
  if (usage != nullptr) *usage = st_->limiter_->UsageForRequest(m.request, now);
  return Explanation{m.direction.direction, m.direction.reason, std::string(m.identity)};
}

void PolicyEngine::Abort(absl::string_view transaction, absl::Time now) {
  st_->limiter_->Release(transaction, now);
}

Verdict PolicyEngine::State::Auth(absl::string_view client_address, absl::string_view user, bool ok,
                                  absl::Time now) {
  const auto abuse_version = abuse_.Read();  // valid for this call
  AbuseGuard& abuse = *abuse_version;
  Verdict v;
  if (ok) {
    FromFinding(abuse.AuthSucceeded(client_address, user, now), user, &v);
  } else {
    AbuseGuard::Finding f = abuse.AuthFailed(CountedAddress(client_address), user, now);
    FromFinding(f, f.detector == AbuseGuard::Detector::kAuthFailuresPerUser ? user : client_address,
                &v);
  }
  return v;
}

void PolicyEngine::State::RecordActivity(const Request& r, const SmtpEvent& e, absl::Time now) {
  limiter_->WithPath(r, [&](absl::Span<const Limiter::PathEntity> path) {
    activity_->Record(path, 1, e.recipient_count == 0 ? 1 : e.recipient_count, e.size, now);
  });
}

config::ActivityReport PolicyEngine::Report(absl::Time now, size_t per_level) const {
  if (st_->activity_ == nullptr) return config::ActivityReport();
  config::ActivityReport rep = st_->activity_->Snapshot(now, per_level);
  for (config::ActivityReport::Series& s : *rep.mutable_series()) {
    Level level;
    if (s.entity() == "(other)" || !ParseLevel(s.level(), &level)) continue;
    config::UsageReport u = st_->limiter_->Usage(level, s.entity(), now);
    for (config::RuleUsage& r : *u.mutable_rule()) *s.add_rule() = std::move(r);
  }
  return rep;
}

void PolicyEngine::Maintain(absl::Time now) {
  const auto settings = st_->settings_.Read();
  const State::Settings& s = *settings;
  st_->limiter_->ExpireTransactions(now, s.transaction_timeout, /*keep=*/true);
  st_->limiter_->Maintain(now, s.transaction_timeout);
  if (st_->activity_ != nullptr) st_->activity_->Sweep(now);
  st_->CollectVersions();
}

void PolicyEngine::Unblock(absl::string_view ip_or_user, absl::Time now) {
  st_->abuse_.Read()->Unblock(ip_or_user, now);
}

bool PolicyEngine::State::ShadowHeader(const Verdict& v, std::string* name,
                                       std::string* value) const {
  if (!v.tripped() || !(v.shadow || v.admitted()) || v.action == Action::kNotify) return false;
  const auto settings = settings_.Read();  // valid for this call
  if (settings->shadow_header.empty()) return false;
  *name = settings->shadow_header;
  *value = absl::StrCat("would ", ActionName(v.shadow_action), "; ", v.text);
  return true;
}

std::string PolicyEngine::State::PostfixAction(const Verdict& v) const {
  if (!v.tripped()) return "DUNNO";
  if (v.shadow || v.admitted()) {
    std::string name, value;
    if (!ShadowHeader(v, &name, &value)) return "WARN " + v.text;
    return absl::StrCat("PREPEND ", name, ": ", value);
  }
  switch (v.action) {
    case Action::kHold:
      return "HOLD " + v.text;
    case Action::kDiscard:
      return "DISCARD " + v.text;
    default:
      return absl::StrCat(v.smtp_code, " ", v.enhanced_status, " ", v.text);
  }
}

std::string PolicyEngine::LogLine(const Verdict& v, absl::string_view queue_id) {
  std::string line;  // one allocation: room for the fixed parts and the names
  line.reserve(256 + queue_id.size() + v.identity.size() + v.entity.size() + v.source.size());
  absl::StrAppend(&line, queue_id.empty() ? "NOQUEUE" : queue_id,
                  ": sluice: ", v.shadow ? "shadow " : "",
                  ActionName(v.shadow ? v.shadow_action : v.action), " identity=<", v.identity,
                  "> direction=", DirectionName(v.direction),
                  " direction_by=", DirectionReasonName(v.direction_reason), " rule=", v.source);
  if (v.source == "limit") {
    absl::StrAppend(&line, " level=", LevelName(v.level), " entity=<", v.entity,
                    "> metric=", MetricName(v.metric), " window=", FormatWindow(v.window_seconds));
  } else {
    absl::StrAppend(&line, " key=<", v.entity, ">");
  }
  absl::StrAppend(&line, " limit=", v.limit, " usage=", v.usage, " retry_after=");
  if (v.retry_after == absl::InfiniteDuration()) {
    line.append("never");
  } else {
    absl::StrAppend(&line, absl::ToInt64Seconds(v.retry_after), "s");
  }
  return line;
}

// ---- The public methods ------------------------------------------------------

Verdict PolicyEngine::Evaluate(const SmtpEvent& event, absl::Time now) {
  return st_->Evaluate(event, now, /*wait_for_dns=*/true);
}

Verdict PolicyEngine::Evaluate(const SmtpEvent& event, absl::Time now, bool wait_for_dns) {
  return st_->Evaluate(event, now, wait_for_dns);
}

bool PolicyEngine::Prepare(const SmtpEvent& event, absl::Time now,
                           const std::function<void()>& ready) {
  return st_->Prepare(event, now, ready);
}

absl::Duration PolicyEngine::dns_budget() const { return st_->dns_budget_; }

Verdict PolicyEngine::Auth(absl::string_view client_address, absl::string_view user, bool ok,
                           absl::Time now) {
  return st_->Auth(client_address, user, ok, now);
}

Verdict PolicyEngine::UnknownRecipient(absl::string_view client_address, absl::Time now) {
  const absl::string_view ip = st_->CountedAddress(client_address);
  Verdict v;
  if (ip.empty()) return v;               // an exempt client (a webmail host) or none
  const auto abuse = st_->abuse_.Read();  // valid for this call
  State::FromFinding(abuse->UnknownRecipient(ip, now), client_address, &v);
  return v;
}

Verdict PolicyEngine::Connection(absl::string_view client_address, bool opened, absl::Time now) {
  const absl::string_view ip = st_->CountedAddress(client_address);
  Verdict v;
  if (ip.empty()) return v;
  const auto abuse = st_->abuse_.Read();  // valid for this call
  if (opened) {
    State::FromFinding(abuse->Connect(ip, now), client_address, &v);
  } else {
    abuse->Disconnect(ip, now);
  }
  return v;
}

void PolicyEngine::AddNoticeSink(std::function<void(const Notice&)> sink) {
  std::call_once(st_->notices_attached_, [this] { st_->AttachNotices(); });
  st_->notices_.Add(std::move(sink));
}

absl::Status PolicyEngine::Reload(const config::Config& config, absl::Time now) {
  return st_->Reload(config, now);
}

std::string PolicyEngine::PostfixAction(const Verdict& v) const { return st_->PostfixAction(v); }

bool PolicyEngine::ShadowHeader(const Verdict& v, std::string* name, std::string* value) const {
  return st_->ShadowHeader(v, name, value);
}

Limiter& PolicyEngine::limiter() { return *st_->limiter_; }
Dnsbl* PolicyEngine::dnsbl() { return st_->dnsbl_.get(); }
ScoreBoard& PolicyEngine::scores() { return *st_->scores_; }
DnsCache* PolicyEngine::dns_cache() { return st_->dns_cache_.get(); }
const ClusterSync* PolicyEngine::cluster() const { return st_->cluster_.get(); }
AbuseGuard& PolicyEngine::abuse() { return *st_->abuse_.current(); }
const config::Config& PolicyEngine::config() const { return st_->limiter_->config(); }

}  // namespace sluice
