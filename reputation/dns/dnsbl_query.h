// DNS blocklist queries and answers (RFC 5782): the query name of an IP
// or a domain in a zone, return-code filters, and the catalogue of answers
// that are errors rather than listings.
//
// Thread safety: value types and free functions.
#ifndef SLUICE_REPUTATION_DNS_DNSBL_QUERY_H_
#define SLUICE_REPUTATION_DNS_DNSBL_QUERY_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "reputation/dns/return_filter.h"

namespace sluice {

// "192.0.2.1" -> "1.2.0.192.ZONE"; IPv6 -> 32 reversed nibbles + ".ZONE".
// False if `ip` is not an address.
bool IpQueryName(absl::string_view ip, absl::string_view zone, std::string* out);
// "example.com" -> "example.com.ZONE" (lower case, no trailing dot).
std::string DomainQueryName(absl::string_view domain, absl::string_view zone);

// Which answers count as a listing: see reputation/dns/return_filter.h.

// Kinds of lists, for their error answers.
enum class ListKind : uint8_t { kGeneric, kSpamhaus, kSpamhausDbl, kUribl, kSurbl, kDnswl };

// True if `addr` is an error answer of such a list (never a listing):
// 127.255.255.252/.254/.255 for every kind (Spamhaus: typo / public
// resolver / excessive queries); DBL 127.0.1.255 (IP queried); URIBL
// 127.0.0.1 (query refused); SURBL bit 1 (127.0.0.1: resolver blocked);
// DNSWL 127.0.0.255 (resolver blocked); any answer outside 127/8.
bool IsErrorAnswer(ListKind kind, uint32_t addr);

// "127.0.0.2" for 0x7f000002.
std::string FormatIpv4(uint32_t addr);

}  // namespace sluice

#endif  // SLUICE_REPUTATION_DNS_DNSBL_QUERY_H_
