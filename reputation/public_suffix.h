// PublicSuffixList: registered ("registrable") domains from the Public
// Suffix List, through libpsl and Debian's publicsuffix data.
//
//   RegisteredDomain("WwW.Example.CO.UK") == "example.co.uk"
//   RegisteredDomain("co.uk") == ""   (a public suffix itself)
//
// Input is lower-cased (UTF-8 aware); a name with a leading dot, an empty
// label or no registrable part gives "". Unicode names stay Unicode and
// punycode stays punycode (the PSL's own test vectors expect both).
//
// Thread safety: const methods are thread-safe (libpsl contexts are
// read-only after loading).
#ifndef SLUICE_REPUTATION_PUBLIC_SUFFIX_H_
#define SLUICE_REPUTATION_PUBLIC_SUFFIX_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

struct psl_ctx_st;

namespace sluice {

class PublicSuffixList {
 public:
  // Debian's compiled list (public_suffix_list.dafsa), else the .dat.
  static constexpr char kDefaultPath[] = "/usr/share/publicsuffix/public_suffix_list.dafsa";

  // Loads a list (.dat or .dafsa). NotFound if it cannot be read.
  static absl::StatusOr<std::unique_ptr<PublicSuffixList>> Load(
      const std::string& path = kDefaultPath);
  ~PublicSuffixList();

  // The registered domain of `host`, or "" if it has none.
  std::string RegisteredDomain(absl::string_view host) const;
  // True if `host` is itself a public suffix ("com", "co.uk", "github.io").
  bool IsPublicSuffix(absl::string_view host) const;

 private:
  PublicSuffixList() = default;
  // Lower-cases (UTF-8); false for input the PSL cannot hold.
  static bool Normalize(absl::string_view host, std::string* out);
  psl_ctx_st* psl_ = nullptr;
};

}  // namespace sluice

#endif  // SLUICE_REPUTATION_PUBLIC_SUFFIX_H_
