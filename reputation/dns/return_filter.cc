#include "reputation/dns/return_filter.h"

namespace sluice {

absl::StatusOr<ReturnFilter> ReturnFilter::Parse(absl::string_view text) {
  auto m = ParseAnswerMatch(text);
  if (!m.ok()) return m.status();
  ReturnFilter f;
  f.m_ = *m;
  return f;
}

bool ReturnFilter::Match(uint32_t addr) const {
  if ((addr >> 24) != 127) return false;
  if (m_.mask != 0) return (addr & m_.mask) != 0;
  for (int i = 0; i < 4; ++i) {
    uint8_t o = static_cast<uint8_t>(addr >> (24 - 8 * i));
    if (o < m_.lo[i] || o > m_.hi[i]) return false;
  }
  return true;
}

}  // namespace sluice
