#include "reputation/dns/dnsbl_query.h"

#include <arpa/inet.h>

#include <cstring>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "ratelimit/ip.h"

namespace sluice {

bool IpQueryName(absl::string_view ip, absl::string_view zone, std::string* out) {
  IpAddress addr;
  if (!ParseIp(ip, &addr)) return false;
  const unsigned char* a = addr.bytes;
  if (addr.family == 4) {
    *out = absl::StrCat(a[3], ".", a[2], ".", a[1], ".", a[0], ".", zone);
    return true;
  }
  {
    static constexpr char kHex[] = "0123456789abcdef";
    out->clear();
    for (int i = 15; i >= 0; --i) {
      out->push_back(kHex[a[i] & 0xF]);
      out->push_back('.');
      out->push_back(kHex[a[i] >> 4]);
      out->push_back('.');
    }
    out->append(zone.data(), zone.size());
    return true;
  }
  return false;
}

std::string DomainQueryName(absl::string_view domain, absl::string_view zone) {
  while (!domain.empty() && domain.back() == '.') domain.remove_suffix(1);
  return absl::AsciiStrToLower(absl::StrCat(domain, ".", zone));
}

bool IsErrorAnswer(ListKind kind, uint32_t addr) {
  if ((addr >> 24) != 127) return true;
  if (addr == 0x7ffffffc || addr == 0x7ffffffe || addr == 0x7fffffff) return true;
  switch (kind) {
    case ListKind::kSpamhausDbl:
      return addr == 0x7f0001ff;
    case ListKind::kUribl:
      return addr == 0x7f000001;
    case ListKind::kSurbl:
      return (addr & 1) != 0;
    case ListKind::kDnswl:
      return addr == 0x7f0000ff;
    case ListKind::kGeneric:
    case ListKind::kSpamhaus:
      break;
  }
  return false;
}

std::string FormatIpv4(uint32_t a) {
  return absl::StrCat(a >> 24, ".", (a >> 16) & 255, ".", (a >> 8) & 255, ".", a & 255);
}

}  // namespace sluice
