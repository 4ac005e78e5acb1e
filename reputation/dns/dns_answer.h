// DnsAnswer: what a DNS response says for a blocklist lookup: the rcode,
// the A records with their TTLs, TXT strings, and for a negative answer the
// negative-caching TTL from the SOA in the authority section (RFC 2308:
// min(SOA TTL, SOA MINIMUM)).
//
// ParseDnsAnswer reads a raw response (as c-ares hands it over) without
// trusting it: every length and compression pointer is bounds-checked,
// and a malformed message is an error, never a crash.
//
// Thread safety: a free function without shared state.
#ifndef SLUICE_REPUTATION_DNS_DNS_ANSWER_H_
#define SLUICE_REPUTATION_DNS_DNS_ANSWER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace sluice {

struct DnsAnswer {
  int rcode = 0;            // 0 NOERROR, 3 NXDOMAIN, 2 SERVFAIL, ...
  std::vector<uint32_t> a;  // IPv4 addresses, host byte order (127.0.0.2 = 0x7f000002)
  std::vector<std::string> txt;
  std::vector<std::string> ptr;   // PTR targets, lower case, no trailing dot
  std::vector<std::string> aaaa;  // IPv6 addresses, textual
  uint32_t ttl = 0;               // smallest TTL of the A records
  int64_t negative_ttl = -1;      // from the SOA, -1 if none
};

absl::Status ParseDnsAnswer(absl::string_view message, DnsAnswer* out);

}  // namespace sluice

#endif  // SLUICE_REPUTATION_DNS_DNS_ANSWER_H_
