// SenderPolicy: whether an authenticated user may use an envelope sender
// (MAIL FROM must belong to the SASL login).
//
// Thread safety: const methods are thread-safe.
#ifndef SLUICE_REPUTATION_ABUSE_SENDER_POLICY_H_
#define SLUICE_REPUTATION_ABUSE_SENDER_POLICY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"

namespace sluice {

class SenderPolicy {
 public:
  enum class Mode : uint8_t {
    kExact,       // MAIL FROM is the SASL login (an address) or login@domain
    kSameDomain,  // MAIL FROM is in the login's domain
    kAliasMap,    // kExact, or listed for the login in `aliases`
  };
  struct Options {
    Mode mode = Mode::kExact;
    // login -> allowed addresses ("a@b.example") or domains ("@b.example").
    absl::flat_hash_map<std::string, std::vector<std::string>> aliases;
  };
  explicit SenderPolicy(Options o);
  // True if `mail_from` may be used by `sasl_user`. The null sender (empty)
  // is always allowed; an unauthenticated session is not this policy's
  // business (true). Case-insensitive.
  bool Allowed(absl::string_view sasl_user, absl::string_view mail_from) const;

 private:
  Options options_;
};

}  // namespace sluice

#endif  // SLUICE_REPUTATION_ABUSE_SENDER_POLICY_H_
