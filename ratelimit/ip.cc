#include "ratelimit/ip.h"

#include <arpa/inet.h>

#include <cstring>

#include "absl/strings/numbers.h"

namespace sluice {

bool ParseIp(absl::string_view text, IpAddress* out) noexcept {
  char buf[64];  // inet_pton wants a NUL-terminated string
  if (text.empty() || text.size() >= sizeof(buf)) return false;
  // A NUL inside would end inet_pton's string early: "192.0.2.1\0junk"
  // is not an address.
  if (std::memchr(text.data(), 0, text.size()) != nullptr) return false;
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = 0;
  std::memset(out->bytes, 0, sizeof(out->bytes));
  if (inet_pton(AF_INET, buf, out->bytes) == 1) {
    out->family = 4;
    return true;
  }
  if (inet_pton(AF_INET6, buf, out->bytes) == 1) {
    out->family = 6;
    return true;
  }
  out->family = 0;
  return false;
}

bool ParseCidr(absl::string_view text, IpAddress* out, int* prefix_len) noexcept {
  const size_t slash = text.find('/');
  if (!ParseIp(text.substr(0, slash), out)) return false;
  *prefix_len = out->bits();
  if (slash == absl::string_view::npos) return true;
  int len;
  if (!absl::SimpleAtoi(text.substr(slash + 1), &len) || len < 0 || len > out->bits()) {
    return false;
  }
  *prefix_len = len;
  return true;
}

bool PrefixMatch(const IpAddress& a, const IpAddress& b, int prefix_len) noexcept {
  const int full = prefix_len / 8;
  if (std::memcmp(a.bytes, b.bytes, full) != 0) return false;
  const int rest = prefix_len % 8;
  if (rest == 0) return true;
  const unsigned char mask = static_cast<unsigned char>(0xFF << (8 - rest));
  return (a.bytes[full] & mask) == (b.bytes[full] & mask);
}

void MaskTo(IpAddress* a, int prefix_len) noexcept {
  for (int i = 0; i < 16; ++i) {
    const int keep = prefix_len - i * 8;
    if (keep >= 8) continue;
    a->bytes[i] &= keep <= 0 ? 0 : static_cast<unsigned char>(0xFF << (8 - keep));
  }
}

absl::string_view FormatIp(const IpAddress& a, char* buf, size_t cap) noexcept {
  if (a.family != 4 && a.family != 6) return {};
  if (inet_ntop(a.family == 4 ? AF_INET : AF_INET6, a.bytes, buf, cap) == nullptr) return {};
  return absl::string_view(buf);
}

std::string FormatIp(const IpAddress& a) {
  char buf[INET6_ADDRSTRLEN];
  return std::string(FormatIp(a, buf, sizeof(buf)));
}

}  // namespace sluice
