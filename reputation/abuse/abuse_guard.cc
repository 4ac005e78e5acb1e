#include "reputation/abuse/abuse_guard.h"

#include <limits>

#include "absl/strings/str_cat.h"
#include "ratelimit/config.h"
#include "ratelimit/hash.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace sluice {

namespace {

using D = AbuseGuard::Detector;

// Per detector: its config field (nullptr: none) and default response.
struct Spec {
  const char* name;
  Action action;
  int smtp_code;
  const char* enhanced_status;
  const char* text;
};
constexpr Spec kSpecs[AbuseGuard::kNumDetectors] = {
    {"none", Action::kAccept, 250, "2.0.0", ""},
    {"blocked", Action::kDefer, 450, "4.7.1", "blocked after repeated abuse, try again later"},
    {"same_size", Action::kDefer, 451, "4.7.1", "too many messages of the same size"},
    {"near_duplicate", Action::kDefer, 451, "4.7.1", "too many copies of the same message"},
    // Notify-only by default: list traffic makes distinct senders' ham look
    // alike (benchmarks/RESULTS.md, burst simulation).
    {"campaign", Action::kNotify, 451, "4.7.1", "message template sent by too many accounts"},
    {"auth_failures_per_ip", Action::kDefer, 450, "4.7.1", "too many failed logins"},
    {"auth_failures_per_user", Action::kDefer, 450, "4.7.1", "too many failed logins"},
    {"unknown_recipients_per_ip", Action::kDefer, 450, "4.7.1", "too many unknown recipients"},
    {"ips_per_user", Action::kDefer, 450, "4.7.1", "account used from too many addresses"},
    {"networks_per_user", Action::kDefer, 450, "4.7.1", "account used from too many networks"},
    {"new_network", Action::kNotify, 450, "4.7.1", "login from a new network"},
    {"concurrent_connections_per_ip", Action::kDefer, 450, "4.7.1", "too many connections"},
    {"connections_per_ip", Action::kDefer, 450, "4.7.1", "too many connections"},
    {"sender_mismatch", Action::kReject, 553, "5.7.1",
     "sender address not owned by the authenticated user"},
};

// The detector's config message, or an empty one.
const config::Detector& DetectorConfig(const config::Abuse& a, D d) {
  const auto* f = a.GetDescriptor()->FindFieldByName(kSpecs[static_cast<int>(d)].name);
  if (f == nullptr) return config::Detector::default_instance();
  return static_cast<const config::Detector&>(a.GetReflection()->GetMessage(a, f));
}

constexpr uint64_t kOff = std::numeric_limits<uint64_t>::max();

// Applies a detector's config: threshold (kOff when off), window, block.
void Tune(const config::Detector& c, bool passive, uint64_t* threshold, absl::Duration* window,
          absl::Duration* block) {
  if (c.has_threshold()) *threshold = c.threshold();
  if (c.off()) *threshold = kOff;
  if (window != nullptr && c.has_window()) *window = absl::Seconds(*ParseWindow(c.window()));
  if (block != nullptr) {
    if (c.has_block()) *block = absl::Seconds(*ParseWindow(c.block()));
    if (passive) *block = absl::ZeroDuration();  // shadow / notify never block
  }
}

CounterTable::Options TableOptions(const config::Abuse& a, const char* suffix, bool prefault,
                                   bool huge_pages) {
  CounterTable::Options t;
  t.prefault = prefault;
  t.huge_pages = huge_pages;
  t.max_memory_bytes = 16ull << 20;
  if (a.has_table()) {
    const auto& c = a.table();
    if (c.has_max_memory_bytes()) t.max_memory_bytes = c.max_memory_bytes();
    if (c.has_max_probe()) t.max_probe = c.max_probe();
    if (!c.path().empty()) t.path = c.path() + suffix;
  }
  return t;
}

}  // namespace

absl::string_view AbuseGuard::DetectorName(Detector d) { return kSpecs[static_cast<int>(d)].name; }

absl::StatusOr<std::unique_ptr<AbuseGuard>> AbuseGuard::Create(const config::Config& config,
                                                               absl::Time now, bool prefault,
                                                               bool huge_pages) {
  std::unique_ptr<AbuseGuard> g(new AbuseGuard);
  const config::Abuse& a = config.abuse();
  for (int i = 0; i < kNumDetectors; ++i) {
    const Spec& spec = kSpecs[i];
    const config::Detector& c = DetectorConfig(a, static_cast<D>(i));
    Response& r = g->responses_[i];
    r.off = c.off();
    r.action = c.has_action() ? ToAction(c.action()) : spec.action;
    r.shadow = c.shadow();
    if (c.has_window()) r.window_s = *ParseWindow(c.window());
    const bool own_default = r.action == spec.action;
    r.smtp_code = c.has_smtp_code()             ? static_cast<int>(c.smtp_code())
                  : own_default                 ? spec.smtp_code
                  : r.action == Action::kReject ? 550
                                                : 451;
    r.enhanced_status = c.has_enhanced_status() ? c.enhanced_status()
                        : r.smtp_code >= 500    ? "5.7.1"
                                                : "4.7.1";
    if (own_default && !c.has_enhanced_status()) r.enhanced_status = spec.enhanced_status;
    r.text = c.has_text() ? c.text() : absl::StrCat("sluice: ", spec.text);
  }
  auto passive = [&](D d) {
    const Response& r = g->responses_[static_cast<int>(d)];
    return r.shadow || r.action == Action::kNotify || r.action == Action::kAccept;
  };

  BurstDetector::Options b;
  Tune(DetectorConfig(a, D::kSameSize), false, &b.same_size_threshold, &b.same_size_window,
       nullptr);
  Tune(DetectorConfig(a, D::kNearDuplicate), false, &b.near_duplicate_threshold,
       &b.near_duplicate_window, nullptr);
  Tune(DetectorConfig(a, D::kCampaign), false, &b.campaign_threshold, &b.campaign_window, nullptr);
  b.exact_size = a.exact_size();
  if (a.has_similarity()) b.similarity = a.similarity();
  if (a.has_shared_blocks()) b.shared_blocks = a.shared_blocks();
  if (a.has_contained_blocks()) b.contained_blocks = static_cast<int>(a.contained_blocks());
  if (a.has_head_blocks()) b.head_blocks = static_cast<int>(a.head_blocks());
  if (a.has_tail_blocks()) b.tail_blocks = static_cast<int>(a.tail_blocks());
  if (a.has_campaign_similarity()) b.campaign_similarity = a.campaign_similarity();
  if (a.has_max_templates()) b.max_templates = a.max_templates();
  b.table = TableOptions(a, ".bursts", prefault, huge_pages);
  auto bursts = BurstDetector::Create(b, now);
  if (!bursts.ok()) return bursts.status();
  g->bursts_ = std::move(*bursts);
  g->burst_options_ = b;

  SessionSignals::Options s;
  Tune(DetectorConfig(a, D::kAuthFailuresPerIp), passive(D::kAuthFailuresPerIp),
       &s.auth_failures_per_ip, &s.auth_window, &s.auth_block);
  Tune(DetectorConfig(a, D::kAuthFailuresPerUser), passive(D::kAuthFailuresPerUser),
       &s.auth_failures_per_user, &s.auth_user_window, &s.auth_user_block);
  Tune(DetectorConfig(a, D::kUnknownRecipientsPerIp), passive(D::kUnknownRecipientsPerIp),
       &s.unknown_recipients_per_ip, &s.unknown_recipient_window, &s.harvest_block);
  Tune(DetectorConfig(a, D::kIpsPerUser), false, &s.max_ips_per_user, &s.login_window, nullptr);
  Tune(DetectorConfig(a, D::kNetworksPerUser), false, &s.max_networks_per_user, &s.login_window,
       nullptr);
  Tune(DetectorConfig(a, D::kConcurrentConnectionsPerIp), false, &s.max_concurrent_per_ip, nullptr,
       nullptr);
  Tune(DetectorConfig(a, D::kConnectionsPerIp), false, &s.max_connections_per_ip,
       &s.connection_window, nullptr);
  if (a.has_max_users()) s.max_users = a.max_users();
  s.table = TableOptions(a, ".signals", prefault, huge_pages);
  auto signals = SessionSignals::Create(s, now);
  if (!signals.ok()) return signals.status();
  g->signals_ = std::move(*signals);

  SenderPolicy::Options p;
  switch (a.sender_ownership()) {
    case config::EXACT:
      p.mode = SenderPolicy::Mode::kExact;
      break;
    case config::SAME_DOMAIN:
      p.mode = SenderPolicy::Mode::kSameDomain;
      break;
    case config::ALIAS_MAP:
      p.mode = SenderPolicy::Mode::kAliasMap;
      break;
  }
  for (const auto& al : a.alias()) {
    auto& v = p.aliases[al.login()];
    v.insert(v.end(), al.address().begin(), al.address().end());
  }
  g->senders_ = std::make_unique<SenderPolicy>(std::move(p));
  return g;
}

void AbuseGuard::AddEventSink(std::function<void(const Event&)> sink) {
  sinks_.Add(std::move(sink));
}

AbuseGuard::Finding AbuseGuard::Trip(Detector d, absl::string_view key, uint64_t count,
                                     uint64_t limit, absl::Duration retry_after, absl::Time now) {
  const Response& r = responses_[static_cast<int>(d)];
  Finding f;
  if (r.off) return f;
  f.detector = d;
  f.action = r.action;
  f.shadow = r.shadow;
  f.count = count;
  f.limit = limit;
  f.retry_after = retry_after;
  f.smtp_code = r.smtp_code;
  f.enhanced_status = r.enhanced_status.c_str();
  f.text = r.text.c_str();
  const uint64_t dedup =
      Mix64(XXH3_64bits(key.data(), key.size()) ^ (static_cast<uint64_t>(d) << 56));
  if (sinks_.FirstInWindow(dedup, absl::ToUnixSeconds(now) / r.window_s)) {
    sinks_.Deliver(Event{now, d, std::string(key), count, limit, r.action, r.shadow});
  }
  return f;
}

AbuseGuard::Finding AbuseGuard::FromSignal(const SessionSignals::Signal& v, absl::string_view ip,
                                           absl::string_view user, absl::Time now) {
  absl::string_view key;  // whose sign it is
  switch (v.detector) {
    case D::kNone:
      return Finding();
    case D::kBlocked:
      key = ip.empty() ? user : ip;
      break;
    case D::kAuthFailuresPerUser:
    case D::kIpsPerUser:
    case D::kNetworksPerUser:
    case D::kNewNetwork:
      key = user;
      break;
    default:
      key = ip;
      break;
  }
  return Trip(v.detector, key, v.count, v.limit, v.retry_after, now);
}

AbuseGuard::Finding AbuseGuard::Connect(absl::string_view ip, absl::Time now) noexcept {
  return FromSignal(signals_->Connect(ip, now), ip, "", now);
}

void AbuseGuard::Disconnect(absl::string_view ip, absl::Time now) noexcept {
  signals_->Disconnect(ip, now);
}

AbuseGuard::Finding AbuseGuard::AuthFailed(absl::string_view ip, absl::string_view user,
                                           absl::Time now) noexcept {
  return FromSignal(signals_->AuthFailed(ip, user, now), ip, user, now);
}

AbuseGuard::Finding AbuseGuard::AuthSucceeded(absl::string_view ip, absl::string_view user,
                                              absl::Time now) {
  return FromSignal(signals_->AuthSucceeded(ip, user, now), ip, user, now);
}

AbuseGuard::Finding AbuseGuard::UnknownRecipient(absl::string_view ip, absl::Time now) noexcept {
  return FromSignal(signals_->UnknownRecipient(ip, now), ip, "", now);
}

AbuseGuard::Finding AbuseGuard::CheckBlocked(absl::string_view ip, absl::string_view user,
                                             absl::Time now) noexcept {
  return FromSignal(signals_->CheckBlocked(ip, user, now), ip, user, now);
}

AbuseGuard::Finding AbuseGuard::MailFrom(absl::string_view sasl_user, absl::string_view mail_from,
                                         absl::Time now) {
  if (senders_->Allowed(sasl_user, mail_from)) return Finding();
  return Trip(D::kSenderMismatch, sasl_user, 1, 0, absl::ZeroDuration(), now);
}

AbuseGuard::Finding AbuseGuard::Message(absl::string_view sender, const Fingerprint& fp,
                                        absl::Time now) noexcept {
  const BurstDetector::Bursts v = bursts_->Observe(sender, fp, now);
  Finding first;
  auto consider = [&](bool fired, D d, uint64_t count, uint64_t limit) {
    if (!fired) return;
    Finding f = Trip(d, sender, count, limit, absl::ZeroDuration(), now);
    // The first refusing detector wins; else the first that tripped.
    if (!first.tripped() || (first.admitted() && !f.admitted())) first = f;
  };
  consider(v.near_duplicate, D::kNearDuplicate, v.near_duplicate_count,
           burst_options_.near_duplicate_threshold);
  consider(v.same_size, D::kSameSize, v.same_size_count, burst_options_.same_size_threshold);
  consider(v.campaign, D::kCampaign, v.campaign_senders, burst_options_.campaign_threshold);
  return first;
}

void AbuseGuard::Unblock(absl::string_view ip_or_user, absl::Time now) noexcept {
  signals_->Unblock(ip_or_user, now);
}

}  // namespace sluice
