#include "ratelimit/internal/return_filter.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace sluice {
namespace internal {

absl::StatusOr<ReturnFilter> ReturnFilter::Parse(absl::string_view text) {
  ReturnFilter f;
  text = absl::StripAsciiWhitespace(text);
  if (text.empty() || text == "any") return f;
  if (absl::StartsWith(text, "mask:")) {
    uint32_t m = 0;
    absl::string_view v = text.substr(5);
    bool ok =
        absl::StartsWith(v, "0x") ? absl::SimpleHexAtoi(v.substr(2), &m) : absl::SimpleAtoi(v, &m);
    if (!ok || m == 0) {
      return absl::InvalidArgumentError(absl::StrCat("bad bitmask \"", text, "\""));
    }
    f.mask_ = m;
    return f;
  }
  // Split at dots outside brackets ("[2..11]" holds dots of its own).
  std::vector<absl::string_view> octets;
  size_t start = 0;
  int depth = 0;
  for (size_t i = 0; i <= text.size(); ++i) {
    if (i < text.size() && text[i] == '[') ++depth;
    if (i < text.size() && text[i] == ']') --depth;
    if (i == text.size() || (text[i] == '.' && depth == 0)) {
      octets.push_back(text.substr(start, i - start));
      start = i + 1;
    }
  }
  if (octets.size() != 4) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad return code \"", text, "\" (127.0.0.2, 127.0.0.[2..11], mask:0x04)"));
  }
  for (int i = 0; i < 4; ++i) {
    absl::string_view o = octets[i];
    uint32_t lo, hi;
    if (absl::StartsWith(o, "[") && absl::EndsWith(o, "]")) {
      std::vector<absl::string_view> r = absl::StrSplit(o.substr(1, o.size() - 2), "..");
      if (r.size() != 2 || !absl::SimpleAtoi(r[0], &lo) || !absl::SimpleAtoi(r[1], &hi) ||
          lo > hi || hi > 255) {
        return absl::InvalidArgumentError(absl::StrCat("bad range \"", o, "\" in \"", text, "\""));
      }
    } else if (!absl::SimpleAtoi(o, &lo) || lo > 255) {
      return absl::InvalidArgumentError(absl::StrCat("bad octet \"", o, "\" in \"", text, "\""));
    } else {
      hi = lo;
    }
    f.lo_[i] = static_cast<uint8_t>(lo);
    f.hi_[i] = static_cast<uint8_t>(hi);
  }
  return f;
}

bool ReturnFilter::Match(uint32_t addr) const {
  if ((addr >> 24) != 127) return false;
  if (mask_ != 0) return (addr & mask_) != 0;
  for (int i = 0; i < 4; ++i) {
    uint8_t o = static_cast<uint8_t>(addr >> (24 - 8 * i));
    if (o < lo_[i] || o > hi_[i]) return false;
  }
  return true;
}

}  // namespace internal
}  // namespace sluice
