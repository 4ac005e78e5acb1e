// ReturnFilter: which DNS-list answers (IPv4 addresses in 127/8) count as
// a listing. Lives in ratelimit/ so the config parser can check a list's
// `match` strings with line:column; used by reputation/'s blocklists.
//
// Thread safety: a value type.
#ifndef SLUICE_RATELIMIT_INTERNAL_RETURN_FILTER_H_
#define SLUICE_RATELIMIT_INTERNAL_RETURN_FILTER_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace sluice {
namespace internal {

// Which answers count as a listing.
//   "127.0.0.2"          exactly this address
//   "127.0.0.[2..11]"    a range in the last octet (also "127.0.[0..1].[2..11]"-style
//                        ranges in any octet)
//   "mask:0x04"          any address in 127/8 whose low 32 bits AND the mask != 0
//   "" / "any"           any address in 127/8
class ReturnFilter {
 public:
  static absl::StatusOr<ReturnFilter> Parse(absl::string_view text);
  bool Match(uint32_t addr) const;

 private:
  uint8_t lo_[4] = {127, 0, 0, 0}, hi_[4] = {127, 255, 255, 255};
  uint32_t mask_ = 0;  // nonzero: bitmask filter
};

}  // namespace internal
}  // namespace sluice

#endif  // SLUICE_RATELIMIT_INTERNAL_RETURN_FILTER_H_
