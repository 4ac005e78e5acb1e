#include "reputation/dns/dnsbl.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace sluice {

namespace {

ListKind ToKind(config::ListKind k) {
  switch (k) {
    case config::SPAMHAUS:
      return ListKind::kSpamhaus;
    case config::SPAMHAUS_DBL:
      return ListKind::kSpamhausDbl;
    case config::URIBL:
      return ListKind::kUribl;
    case config::SURBL:
      return ListKind::kSurbl;
    case config::DNSWL:
      return ListKind::kDnswl;
    case config::GENERIC:
      break;
  }
  return ListKind::kGeneric;
}

bool Targets(const config::DnsList& l, config::ListTarget t) {
  if (l.check_size() == 0) return t == config::CLIENT_IP;
  for (int c : l.check()) {
    if (c == t) return true;
  }
  return false;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Dnsbl>> Dnsbl::Create(const config::Reputation& config,
                                                     DnsCache* cache, const PublicSuffixList* psl,
                                                     const Clock* clock) {
  std::unique_ptr<Dnsbl> d(new Dnsbl);
  d->cache_ = cache;
  d->psl_ = psl;
  d->clock_ = clock;
  d->threshold_ = config.threshold();
  d->max_url_domains_ = config.max_url_domains();
  for (const auto& lc : config.list()) {
    auto l = std::make_unique<List>();
    l->config = lc;
    l->kind = ToKind(lc.kind());
    for (const auto& m : lc.match()) {
      auto f = ReturnFilter::Parse(m);
      if (!f.ok()) return f.status();
      l->filters.push_back(*f);
    }
    l->suspend = absl::Minutes(10);
    if (lc.has_suspend() && !absl::ParseDuration(lc.suspend(), &l->suspend)) {
      return absl::InvalidArgumentError(absl::StrCat("bad suspend \"", lc.suspend(), "\""));
    }
    d->lists_.push_back(std::move(l));
  }
  return d;
}

void Dnsbl::AddEventSink(std::function<void(const Event&)> sink) { sinks_.Add(std::move(sink)); }

void Dnsbl::Emit(const Event& e) { sinks_.Deliver(e); }

bool Dnsbl::Matches(const List& l, uint32_t a) const {
  if (l.filters.empty()) return (a >> 24) == 127;
  for (const auto& f : l.filters) {
    if (f.Match(a)) return true;
  }
  return false;
}

void Dnsbl::Suspend(List& l, const std::string& why) {
  const int64_t now_ms = absl::ToUnixMillis(clock_->Now());
  const int64_t until = now_ms + absl::ToInt64Milliseconds(l.suspend);
  int64_t prev = l.suspended_until_ms.load(std::memory_order_relaxed);
  // One event per suspension, whoever sets it first.
  if (prev <= now_ms && l.suspended_until_ms.compare_exchange_strong(prev, until)) {
    Emit(Event{clock_->Now(), l.config.zone(),
               absl::StrCat("suspended for ", absl::FormatDuration(l.suspend), ": ", why)});
  }
}

std::vector<Dnsbl::Query> Dnsbl::Queries(const Subject& s, Result* result) {
  std::vector<Query> queries;
  const int64_t now_ms = absl::ToUnixMillis(clock_->Now());
  Result& r = *result;
  auto domain_of = [&](const List& l, absl::string_view host) {
    std::string h = absl::AsciiStrToLower(host);
    if (l.config.registered_domain() && psl_ != nullptr) {
      std::string reg = psl_->RegisteredDomain(h);
      if (!reg.empty()) return reg;
    }
    return h;
  };
  for (auto& lp : lists_) {
    List& l = *lp;
    if (s.outgoing ? !l.config.outgoing() : !l.config.inbound()) continue;
    if (l.suspended_until_ms.load(std::memory_order_relaxed) > now_ms) {
      ++r.suspended;
      continue;
    }
    std::string name;
    if (Targets(l.config, config::CLIENT_IP) && !s.client_ip.empty() &&
        IpQueryName(s.client_ip, l.config.zone(), &name)) {
      queries.push_back({&l, config::CLIENT_IP, name});
    }
    if (Targets(l.config, config::HELO) && s.helo.find('.') != absl::string_view::npos) {
      queries.push_back({&l, config::HELO, DomainQueryName(domain_of(l, s.helo), l.config.zone())});
    }
    if (Targets(l.config, config::MAIL_FROM_DOMAIN) && !s.mail_from_domain.empty()) {
      queries.push_back({&l, config::MAIL_FROM_DOMAIN,
                         DomainQueryName(domain_of(l, s.mail_from_domain), l.config.zone())});
    }
    if (Targets(l.config, config::BODY_URLS) && s.urls != nullptr) {
      std::vector<std::string> seen;
      for (const UrlHost& u : *s.urls) {
        if (seen.size() >= max_url_domains_) break;
        std::string q;
        if (u.ip) {
          if (!IpQueryName(u.host, l.config.zone(), &q)) continue;
        } else {
          q = DomainQueryName(domain_of(l, u.host), l.config.zone());
        }
        bool dup = false;
        for (const auto& x : seen) dup |= x == q;
        if (dup) continue;
        seen.push_back(q);
        queries.push_back({&l, config::BODY_URLS, q});
      }
    }
  }
  return queries;
}

std::vector<std::string> Dnsbl::QueryNames(const Subject& s) {
  Result ignored;
  std::vector<std::string> names;
  for (Query& q : Queries(s, &ignored)) names.push_back(std::move(q.name));
  return names;
}

Dnsbl::Result Dnsbl::Check(const Subject& s, absl::Time deadline) {
  Result r;
  const std::vector<Query> queries = Queries(s, &r);
  for (const auto& q : queries) cache_->Prepare(q.name);  // all out at once
  for (const auto& q : queries) {
    DnsCache::Result res = cache_->Lookup(q.name, deadline);
    if (!res.known()) {
      ++r.unknown;
      continue;
    }
    for (uint32_t a : res.answer.a) {
      if (IsErrorAnswer(q.list->kind, a)) {
        Suspend(*q.list, absl::StrCat("error answer ", FormatIpv4(a), " for ", q.name));
        break;
      }
      if (Matches(*q.list, a)) {
        r.hits.push_back(
            Hit{q.list->config.zone(), q.name, FormatIpv4(a), q.list->config.weight(), q.target});
        r.score += q.list->config.weight();
        break;  // one hit per query
      }
    }
  }
  return r;
}

std::vector<absl::Status> Dnsbl::CheckHealth(absl::Time deadline) {
  std::vector<absl::Status> out;
  for (auto& lp : lists_) {
    List& l = *lp;
    const bool ip_list = Targets(l.config, config::CLIENT_IP);
    std::vector<std::pair<std::string, bool>> points;  // name, must be listed
    std::string n;
    if (ip_list) {
      IpQueryName("127.0.0.2", l.config.zone(), &n);
      points.push_back({n, true});
      IpQueryName("127.0.0.1", l.config.zone(), &n);
      points.push_back({n, false});
      if (l.config.ipv6()) {
        IpQueryName("::ffff:7f00:2", l.config.zone(), &n);
        points.push_back({n, true});
        IpQueryName("::ffff:7f00:1", l.config.zone(), &n);
        points.push_back({n, false});
      }
    } else {
      points.push_back({DomainQueryName("test", l.config.zone()), true});
      points.push_back({DomainQueryName("invalid", l.config.zone()), false});
    }
    for (const auto& p : points) cache_->Prepare(p.first);
    absl::Status st;
    for (const auto& p : points) {
      DnsCache::Result res = cache_->Lookup(p.first, deadline);
      if (!res.known()) {
        st = absl::UnavailableError(absl::StrCat(l.config.zone(), ": no answer for ", p.first));
        break;
      }
      const bool listed = !res.answer.a.empty();
      if (listed != p.second) {
        st = absl::FailedPreconditionError(absl::StrCat(l.config.zone(), ": test point ", p.first,
                                                        p.second ? " not listed" : " listed"));
        break;
      }
    }
    if (!st.ok()) Suspend(l, std::string(st.message()));
    out.push_back(st);
  }
  return out;
}

}  // namespace sluice
