#include "reputation/content/url_extractor.h"

#include <arpa/inet.h>
#include <idn2.h>
#include <netinet/in.h>

#include <cstdlib>
#include <cstring>

namespace sluice {

namespace {

constexpr size_t kMaxHost = 253;
constexpr size_t kMaxRaw = 4 * kMaxHost;  // before %-decoding and dot mapping

inline unsigned char Lower(unsigned char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<unsigned char>(c - 'A' + 'a') : c;
}
inline bool IsAlnum(unsigned char c) {
  c = Lower(c);
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

// Length of a Unicode full stop at p (U+3002, U+FF0E, U+FF61), else 0.
size_t UnicodeDot(const unsigned char* p, const unsigned char* end) {
  if (end - p < 3) return 0;
  if (p[0] == 0xE3 && p[1] == 0x80 && p[2] == 0x82) return 3;  // U+3002
  if (p[0] == 0xEF && p[1] == 0xBC && p[2] == 0x8E) return 3;  // U+FF0E
  if (p[0] == 0xEF && p[1] == 0xBD && p[2] == 0xA1) return 3;  // U+FF61
  return 0;
}

int Hex(unsigned char c) {
  c = Lower(c);
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// True for a byte that can be part of a host as written in text.
inline bool HostByte(unsigned char c) {
  return IsAlnum(c) || c == '-' || c == '.' || c == '_' || c == '%' || c >= 0x80;
}

// Case-insensitive: does `s` at `i` start with `word` (lower case)?
bool At(absl::string_view s, size_t i, absl::string_view word) {
  if (s.size() - i < word.size()) return false;
  for (size_t k = 0; k < word.size(); ++k) {
    if (Lower(static_cast<unsigned char>(s[i + k])) != static_cast<unsigned char>(word[k])) {
      return false;
    }
  }
  return true;
}

// An IPv4 literal in any base inet_aton accepts ("0x7f.1", "2130706433",
// "0177.0.0.1"), if `h` holds only digits, dots and hex.
bool ParseIpv4(const std::string& h, std::string* out) {
  if (h.empty() || h.size() > 40) return false;
  bool has_digit = false;
  for (unsigned char c : h) {
    if (!(IsAlnum(c) || c == '.')) return false;
    if (c >= '0' && c <= '9') has_digit = true;
    if (c > 'f' && c != 'x') return false;  // letters beyond hex: a name
  }
  if (!has_digit || !(h[0] >= '0' && h[0] <= '9')) return false;
  in_addr a;
  if (inet_aton(h.c_str(), &a) == 0) return false;
  char buf[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &a, buf, sizeof(buf));
  *out = buf;
  return true;
}

}  // namespace

bool UrlExtractor::NormalizeHost(absl::string_view raw, UrlHost* out) {
  if (raw.empty() || raw.size() > kMaxRaw) return false;
  // %-decode, map Unicode dots, lower-case ASCII.
  std::string h;
  h.reserve(raw.size());
  const auto* p = reinterpret_cast<const unsigned char*>(raw.data());
  const auto* end = p + raw.size();
  while (p < end) {
    if (*p == '%' && end - p >= 3 && Hex(p[1]) >= 0 && Hex(p[2]) >= 0) {
      h.push_back(static_cast<char>(Lower(static_cast<unsigned char>(Hex(p[1]) * 16 + Hex(p[2])))));
      p += 3;
      continue;
    }
    if (size_t n = UnicodeDot(p, end)) {
      h.push_back('.');
      p += n;
      continue;
    }
    h.push_back(static_cast<char>(Lower(*p)));
    ++p;
  }
  while (!h.empty() && h.back() == '.') h.pop_back();
  while (!h.empty() && h.front() == '.') h.erase(0, 1);
  if (h.empty()) return false;
  std::string ip;
  if (ParseIpv4(h, &ip)) {
    out->host = ip;
    out->ip = true;
    return true;
  }
  bool ascii = true;
  for (unsigned char c : h) ascii &= c < 0x80;
  if (!ascii) {
    char* puny = nullptr;
    if (idn2_to_ascii_8z(h.c_str(), &puny, IDN2_NONTRANSITIONAL) != IDN2_OK) {
      if (idn2_to_ascii_8z(h.c_str(), &puny, IDN2_TRANSITIONAL) != IDN2_OK) return false;
    }
    h = puny;
    idn2_free(puny);
  }
  // A domain: labels of [a-z0-9-_], 1..63 bytes, at least two labels, a
  // TLD that is not all digits.
  if (h.size() > kMaxHost) return false;
  size_t label = 0, labels = 1;
  bool tld_alpha = false;
  for (size_t i = 0; i < h.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(h[i]);
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
      ++labels;
      tld_alpha = false;
      continue;
    }
    if (!(IsAlnum(c) || c == '-' || c == '_')) return false;
    if (++label > 63) return false;
    if (!(c >= '0' && c <= '9')) tld_alpha = true;
  }
  if (label == 0 || labels < 2 || !tld_alpha) return false;
  out->host = std::move(h);
  out->ip = false;
  return true;
}

void UrlExtractor::Extract(absl::string_view text, std::vector<UrlHost>* out) const {
  out->clear();
  const size_t n = text.size();
  auto add = [&](size_t start) -> size_t {  // returns where the host ends
    const auto* b = reinterpret_cast<const unsigned char*>(text.data());
    size_t i = start;
    // Userinfo: "user:pass@" before the host; keep the part after the
    // last '@' of the authority.
    size_t host_start = start;
    while (i < n && i - start <= kMaxRaw) {
      unsigned char c = b[i];
      if (c == '@') {
        host_start = i + 1;
      } else if (!(HostByte(c) || c == ':')) {
        break;
      }
      ++i;
    }
    size_t host_end = host_start;
    while (host_end < i && b[host_end] != ':') ++host_end;  // drop a port
    if (i - start > kMaxRaw) {
      while (i < n && HostByte(b[i])) ++i;  // skip an absurd run whole
      return i;
    }
    UrlHost h;
    if (out->size() < options_.max_hosts &&
        NormalizeHost(text.substr(host_start, host_end - host_start), &h)) {
      bool seen = false;
      for (const auto& e : *out) seen |= e == h;
      if (!seen) out->push_back(std::move(h));
    }
    return i > start ? i : start + 1;
  };
  size_t i = 0;
  while (i < n && out->size() < options_.max_hosts) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    const unsigned char lc = Lower(c);
    // Only a few letters can start a URL: test them cheaply first.
    if (lc != 'h' && lc != 'f' && lc != 'w') {
      ++i;
      continue;
    }
    const bool boundary = i == 0 || !IsAlnum(static_cast<unsigned char>(text[i - 1]));
    if (!boundary) {
      ++i;
      continue;
    }
    size_t scheme = 0;
    for (absl::string_view s : {"https://", "http://", "hxxps://", "hxxp://", "ftp://"}) {
      if (At(text, i, s)) {
        scheme = s.size();
        break;
      }
    }
    if (scheme > 0) {
      size_t h = i + scheme;
      while (h < n && text[h] == '/') ++h;  // "http:///host"
      i = add(h);
      continue;
    }
    const auto* b = reinterpret_cast<const unsigned char*>(text.data());
    if (At(text, i, "www.") ||
        (At(text, i, "www") && i + 3 < n && UnicodeDot(b + i + 3, b + n) > 0)) {
      i = add(i);
      continue;
    }
    ++i;
  }
}

}  // namespace sluice
