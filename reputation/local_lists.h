// LocalLists: the administrator's own allow and deny lists for client
// addresses (IPv4 and IPv6 CIDR) and domains (a domain and all its
// subdomains), from a text file, reloaded without blocking lookups.
//
// File format, one entry per line, '#' starts a comment:
//   allow 192.0.2.0/24
//   deny  2001:db8:bad::/48
//   deny  198.51.100.7          (a host: /32 or /128)
//   allow partner.example       (the domain and every subdomain)
//   deny  spam.example
// The longest matching prefix wins for addresses, the most specific
// domain for names; an allow and a deny of the same entry is an error.
// Errors name FILE:LINE:COLUMN; a file with errors is refused and the
// running lists stay.
//
// Thread safety: a LocalLists is immutable and thread-safe. LocalListsFile
// swaps whole versions: Get() is a short-lived shared_ptr copy and never
// waits for a reload.
#ifndef SLUICE_REPUTATION_LOCAL_LISTS_H_
#define SLUICE_REPUTATION_LOCAL_LISTS_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace sluice {

class LocalLists {
 public:
  enum class Match : uint8_t { kNone, kAllow, kDeny };

  static absl::StatusOr<std::shared_ptr<const LocalLists>> Parse(
      absl::string_view text, absl::string_view filename = "<lists>");

  // The verdict of the longest matching prefix (kNone if none matches or
  // `ip` is not an address).
  Match CheckIp(absl::string_view ip) const;
  // The verdict of the longest matching domain suffix.
  Match CheckDomain(absl::string_view domain) const;
  size_t size() const { return entries_; }

 private:
  struct Key6 {
    uint64_t hi, lo;
    bool operator==(const Key6& o) const { return hi == o.hi && lo == o.lo; }
    template <typename H>
    friend H AbslHashValue(H h, const Key6& k) {
      return H::combine(std::move(h), k.hi, k.lo);
    }
  };
  LocalLists() = default;
  // Per prefix length, the masked networks; only lengths in use are
  // probed, longest first.
  absl::flat_hash_map<uint32_t, Match> v4_[33];
  absl::flat_hash_map<Key6, Match> v6_[129];
  std::vector<int> v4_lengths_, v6_lengths_;  // descending
  absl::flat_hash_map<std::string, Match> domains_;
  size_t entries_ = 0;
};

class LocalListsFile {
 public:
  // Loads `path` (NotFound / InvalidArgument with FILE:LINE:COLUMN).
  static absl::StatusOr<std::unique_ptr<LocalListsFile>> Open(const std::string& path);
  // Rereads the file; on error the current lists stay and the error is
  // returned.
  absl::Status Reload();
  std::shared_ptr<const LocalLists> Get() const;

 private:
  std::string path_;
  mutable std::mutex mu_;  // guards the pointer swap only
  std::shared_ptr<const LocalLists> current_;
};

}  // namespace sluice

#endif  // SLUICE_REPUTATION_LOCAL_LISTS_H_
