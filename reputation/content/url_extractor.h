// UrlExtractor: the hosts of the URLs in a message's text (plain or HTML,
// already transfer-decoded), for domain blocklists (SURBL, URIBL, DBL).
//
// Finds "scheme://host" (http, https, ftp and the defanged hxxp/hxxps),
// bare "www." hosts, and hosts in HTML attributes; undoes the usual
// obfuscations: %-encoded host bytes, Unicode full stops (U+3002, U+FF0E,
// U+FF61) as dots, IPv4 literals in any base ("0x7f.1", "2130706433",
// "0177.0.0.1" -> "127.0.0.1"), IDN names to punycode (libidn2), case,
// trailing dots, userinfo ("http://bank.example@evil.example/"). Returns
// distinct hosts in order of first appearance, at most max_hosts. Linear
// time and bounded memory on any input (a megabyte-long line, an
// unterminated tag, binary data).
//
// Thread safety: Extract is const and thread-safe.
#ifndef SLUICE_REPUTATION_CONTENT_URL_EXTRACTOR_H_
#define SLUICE_REPUTATION_CONTENT_URL_EXTRACTOR_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace sluice {

struct UrlHost {
  std::string host;  // lower-case ASCII: a domain (punycode) or a dotted IPv4
  bool ip = false;
  bool operator==(const UrlHost& o) const { return host == o.host && ip == o.ip; }
};

class UrlExtractor {
 public:
  struct Options {
    size_t max_hosts = 16;  // distinct hosts per message
  };
  UrlExtractor() = default;
  explicit UrlExtractor(const Options& o) : options_(o) {}

  // Appends the distinct hosts of `text` to *out (which it clears first).
  void Extract(absl::string_view text, std::vector<UrlHost>* out) const;

  // Normalises one host as Extract does; false if it is not a usable
  // domain or IPv4 address.
  static bool NormalizeHost(absl::string_view raw, UrlHost* out);

 private:
  Options options_;
};

}  // namespace sluice

#endif  // SLUICE_REPUTATION_CONTENT_URL_EXTRACTOR_H_
