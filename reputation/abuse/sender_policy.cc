#include "reputation/abuse/sender_policy.h"

#include <utility>

#include "absl/strings/ascii.h"

namespace sluice {

SenderPolicy::SenderPolicy(Options o) : options_(std::move(o)) {
  decltype(options_.aliases) lowered;
  for (auto& [user, list] : options_.aliases) {
    std::vector<std::string> l;
    for (auto& a : list) l.push_back(absl::AsciiStrToLower(a));
    lowered[absl::AsciiStrToLower(user)] = std::move(l);
  }
  options_.aliases = std::move(lowered);
}

bool SenderPolicy::Allowed(absl::string_view sasl_user, absl::string_view mail_from) const {
  if (mail_from.empty() || sasl_user.empty()) return true;
  const std::string user = absl::AsciiStrToLower(sasl_user);
  const std::string from = absl::AsciiStrToLower(mail_from);
  const size_t from_at = from.rfind('@');
  const size_t user_at = user.rfind('@');
  const absl::string_view from_domain =
      from_at == std::string::npos ? absl::string_view() : absl::string_view(from).substr(from_at);
  // kExact: the login itself, or a bare login as the local part.
  const bool exact =
      from == user || (user_at == std::string::npos && from_at != std::string::npos &&
                       absl::string_view(from).substr(0, from_at) == user);
  switch (options_.mode) {
    case Mode::kExact:
      return exact;
    case Mode::kSameDomain:
      if (exact) return true;
      return user_at != std::string::npos && from_at != std::string::npos &&
             absl::string_view(user).substr(user_at) == from_domain;
    case Mode::kAliasMap: {
      if (exact) return true;
      auto it = options_.aliases.find(user);
      if (it == options_.aliases.end()) return false;
      for (const auto& a : it->second) {
        if (a == from || (!a.empty() && a[0] == '@' && a == from_domain)) return true;
      }
      return false;
    }
  }
  return false;
}

}  // namespace sluice
