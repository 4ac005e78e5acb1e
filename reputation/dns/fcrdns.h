// Forward-confirmed reverse DNS (FCrDNS) of a client address: its PTR
// names, each resolved forward (A or AAAA), and whether one of them leads
// back to the address. A signal (many legitimate senders fail it), not a
// verdict by itself.
//
// Thread safety: ForwardConfirmed is thread-safe if the resolver is.
#ifndef SLUICE_REPUTATION_DNS_FCRDNS_H_
#define SLUICE_REPUTATION_DNS_FCRDNS_H_

#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "reputation/dns/resolver.h"

namespace sluice {

struct Fcrdns {
  enum class Result : uint8_t { kConfirmed, kNotConfirmed, kNoPtr, kUnknown };
  Result result = Result::kUnknown;
  std::string name;  // the confirmed PTR name (kConfirmed)
};

// The in-addr.arpa / ip6.arpa name of an address ("" if not an address).
std::string ReverseName(absl::string_view ip);

// Asks at most 4 PTR names forward. Gives up at `deadline` (kUnknown).
Fcrdns ForwardConfirmed(DnsResolver* resolver, absl::string_view ip, absl::Time deadline);

}  // namespace sluice

#endif  // SLUICE_REPUTATION_DNS_FCRDNS_H_
