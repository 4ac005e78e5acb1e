// IpAddress: the one parser of textual IPv4 and IPv6 addresses and CIDR
// prefixes in sluice (the limiter's exemptions and client-IP level, the
// config's checks, DNS-list query names, FCrDNS, session networks, local
// lists all use it).
//
// Thread safety: value types and pure functions; thread-safe. ParseIp and
// ParseCidr allocate nothing.
#ifndef SLUICE_RATELIMIT_IP_H_
#define SLUICE_RATELIMIT_IP_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace sluice {

struct IpAddress {
  int family = 0;                // 4 or 6; 0 = none
  unsigned char bytes[16] = {};  // network order; IPv4 in the first 4
  int bits() const { return family == 4 ? 32 : 128; }
};

// Parses a textual IPv4 ("192.0.2.1") or IPv6 ("2001:db8::1") address, as
// inet_pton reads it. Returns false for anything else (empty, longer than
// any address, a prefix, a name, text holding a NUL); *out is then
// unspecified.
bool ParseIp(absl::string_view text, IpAddress* out) noexcept;

// Parses "address" or "address/length". The length defaults to the
// address's full width and must be within 0..32 (IPv4) or 0..128 (IPv6).
bool ParseCidr(absl::string_view text, IpAddress* out, int* prefix_len) noexcept;

// True if the first `prefix_len` bits of a and b are equal (the families
// are not compared). REQUIRES: 0 <= prefix_len <= 128.
bool PrefixMatch(const IpAddress& a, const IpAddress& b, int prefix_len) noexcept;

// A network: an address and its prefix length (as ParseCidr fills them).
struct Cidr {
  IpAddress net;
  int prefix = 0;
  // True if `a` is in this network (same family, same first `prefix` bits).
  bool Contains(const IpAddress& a) const noexcept {
    return net.family == a.family && PrefixMatch(a, net, prefix);
  }
};

// Zeroes every bit after the first `prefix_len` (the network of a prefix).
void MaskTo(IpAddress* a, int prefix_len) noexcept;

// The canonical text (inet_ntop): "192.0.2.1", "2001:db8::1". Writes into
// buf (INET6_ADDRSTRLEN = 46 bytes suffice) and returns the view, empty if
// it does not fit.
absl::string_view FormatIp(const IpAddress& a, char* buf, size_t cap) noexcept;
std::string FormatIp(const IpAddress& a);

}  // namespace sluice

#endif  // SLUICE_RATELIMIT_IP_H_
