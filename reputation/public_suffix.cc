#include "reputation/public_suffix.h"

#include <libpsl.h>

#include <cstdlib>
#include <fstream>

#include "absl/strings/str_cat.h"

namespace sluice {

absl::StatusOr<std::unique_ptr<PublicSuffixList>> PublicSuffixList::Load(const std::string& path) {
  std::unique_ptr<PublicSuffixList> l(new PublicSuffixList);
  l->psl_ = psl_load_file(path.c_str());
  if (l->psl_ == nullptr) {
    return absl::NotFoundError(absl::StrCat("cannot load the Public Suffix List from ", path,
                                            " (Debian package publicsuffix)"));
  }
  return l;
}

PublicSuffixList::~PublicSuffixList() {
  if (psl_ != nullptr) psl_free(psl_);
}

bool PublicSuffixList::Normalize(absl::string_view host, std::string* out) {
  if (host.empty() || host.size() > 253 || host.front() == '.') return false;
  for (char c : host) {
    if (c == 0) return false;
  }
  bool ascii = true;
  out->assign(host.data(), host.size());
  for (char& c : *out) {
    if (static_cast<unsigned char>(c) >= 0x80) ascii = false;
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  if (!ascii) {
    char* lower = nullptr;
    if (psl_str_to_utf8lower(out->c_str(), "utf-8", nullptr, &lower) != PSL_SUCCESS) return false;
    out->assign(lower);
    psl_free_string(lower);
  }
  return out->find("..") == std::string::npos;
}

std::string PublicSuffixList::RegisteredDomain(absl::string_view host) const {
  std::string name;
  if (!Normalize(host, &name)) return "";
  const char* r = psl_registrable_domain(psl_, name.c_str());
  return r == nullptr ? "" : std::string(r);
}

bool PublicSuffixList::IsPublicSuffix(absl::string_view host) const {
  std::string name;
  if (!Normalize(host, &name)) return false;
  return psl_is_public_suffix2(psl_, name.c_str(), PSL_TYPE_ANY) != 0;
}

}  // namespace sluice
