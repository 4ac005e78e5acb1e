// ReturnFilter: which DNS-list answers (IPv4 addresses in 127/8) count as
// a listing, as a list's `match` string says (the grammar is the config's:
// ParseAnswerMatch in ratelimit/config.h, so a bad string is refused with
// its line:column).
//
// Thread safety: a value type.
#ifndef SLUICE_REPUTATION_DNS_RETURN_FILTER_H_
#define SLUICE_REPUTATION_DNS_RETURN_FILTER_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ratelimit/config.h"

namespace sluice {

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
  AnswerMatch m_;
};

}  // namespace sluice

#endif  // SLUICE_REPUTATION_DNS_RETURN_FILTER_H_
