// Forward-confirmed reverse DNS (FCrDNS) of a client address: its PTR
// names, each resolved forward (A or AAAA), and whether one of them leads
// back to the address. A signal (many legitimate senders fail it), not a
// verdict by itself.
//
// Thread safety: ForwardConfirmed is thread-safe if the resolver (or `ask`) is.
#ifndef SLUICE_REPUTATION_DNS_FCRDNS_H_
#define SLUICE_REPUTATION_DNS_FCRDNS_H_

#include <functional>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "reputation/dns/dns_cache.h"
#include "reputation/dns/resolver.h"

namespace sluice {

struct Fcrdns {
  enum class Result : uint8_t { kConfirmed, kNotConfirmed, kNoPtr, kUnknown };
  Result result = Result::kUnknown;
  std::string name;  // the confirmed PTR name (kConfirmed)
};

// The in-addr.arpa / ip6.arpa name of an address ("" if not an address).
std::string ReverseName(absl::string_view ip);

// How FCrDNS asks: fills *out with the answer of (name, type) and returns
// true, or returns false if it is not known (yet, or the query failed).
using FcrdnsAsk =
    std::function<bool(const std::string& name, DnsResolver::Type type, DnsAnswer* out)>;

// Asks the PTR names of `ip` and at most 4 of them forward, through `ask`:
// kUnknown if an answer it needs is not known.
Fcrdns ForwardConfirmed(const FcrdnsAsk& ask, absl::string_view ip);

// Through a resolver, waiting until `deadline` (then kUnknown).
Fcrdns ForwardConfirmed(DnsResolver* resolver, absl::string_view ip, absl::Time deadline);

// Through the cache (answers shared, failures remembered), waiting until
// `deadline`; with InfinitePast it never waits (what is not cached yet is
// asked, and the result is kUnknown until it is).
Fcrdns ForwardConfirmed(DnsCache* cache, absl::string_view ip, absl::Time deadline);

}  // namespace sluice

#endif  // SLUICE_REPUTATION_DNS_FCRDNS_H_
