#include "reputation/dns/fcrdns.h"

#include <arpa/inet.h>

#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include "ratelimit/ip.h"
#include "reputation/dns/dnsbl_query.h"

namespace sluice {

namespace {

// One query, waited for with a deadline. A late answer after a timeout
// lands in the shared state and is dropped with it.
bool Ask(DnsResolver* r, const std::string& name, DnsResolver::Type type, absl::Time deadline,
         DnsAnswer* out) {
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    bool ok = false;
    DnsAnswer answer;
  };
  auto st = std::make_shared<State>();
  r->Query(name, type, [st](const absl::Status& s, const DnsAnswer& a) {
    std::lock_guard<std::mutex> lock(st->mu);
    st->done = true;
    st->ok = s.ok();
    st->answer = a;
    st->cv.notify_all();
  });
  std::unique_lock<std::mutex> lock(st->mu);
  st->cv.wait_until(lock, absl::ToChronoTime(deadline), [&] { return st->done; });
  if (!st->done || !st->ok) return false;
  *out = st->answer;
  return true;
}

// Canonical text of an address, to compare with forward answers.
std::string Canonical(absl::string_view ip, int* family) {
  IpAddress a;
  if (!ParseIp(ip, &a)) return "";
  *family = a.family;
  return FormatIp(a);
}

}  // namespace

std::string ReverseName(absl::string_view ip) {
  int family = 0;
  if (Canonical(ip, &family).empty()) return "";
  std::string name;
  IpQueryName(ip, family == 4 ? "in-addr.arpa" : "ip6.arpa", &name);
  return name;
}

Fcrdns ForwardConfirmed(const FcrdnsAsk& ask, absl::string_view ip) {
  Fcrdns f;
  int family = 0;
  const std::string want = Canonical(ip, &family);
  if (want.empty()) return f;
  DnsAnswer ptr;
  if (!ask(ReverseName(ip), DnsResolver::Type::kPtr, &ptr)) return f;
  if (ptr.ptr.empty()) {
    f.result = Fcrdns::Result::kNoPtr;
    return f;
  }
  bool all_answered = true;
  for (size_t i = 0; i < ptr.ptr.size() && i < 4; ++i) {
    DnsAnswer fwd;
    const auto type = family == 4 ? DnsResolver::Type::kA : DnsResolver::Type::kAaaa;
    if (!ask(ptr.ptr[i], type, &fwd)) {
      all_answered = false;
      continue;
    }
    bool match = false;
    if (family == 4) {
      for (uint32_t a : fwd.a) match |= FormatIpv4(a) == want;
    } else {
      for (const auto& a : fwd.aaaa) match |= a == want;
    }
    if (match) {
      f.result = Fcrdns::Result::kConfirmed;
      f.name = ptr.ptr[i];
      return f;
    }
  }
  f.result = all_answered ? Fcrdns::Result::kNotConfirmed : Fcrdns::Result::kUnknown;
  return f;
}

Fcrdns ForwardConfirmed(DnsResolver* resolver, absl::string_view ip, absl::Time deadline) {
  return ForwardConfirmed([&](const std::string& name, DnsResolver::Type type,
                              DnsAnswer* out) { return Ask(resolver, name, type, deadline, out); },
                          ip);
}

Fcrdns ForwardConfirmed(DnsCache* cache, absl::string_view ip, absl::Time deadline) {
  return ForwardConfirmed(
      [&](const std::string& name, DnsResolver::Type type, DnsAnswer* out) {
        DnsCache::Result r = cache->Lookup(name, type, deadline);
        if (!r.known()) return false;
        *out = std::move(r.answer);
        return true;
      },
      ip);
}

}  // namespace sluice
