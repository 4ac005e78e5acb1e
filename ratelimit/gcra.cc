#include "ratelimit/gcra.h"

namespace sluice {

using internal::kDeadHead;
using internal::Slot;

void Gcra::Remove(Slot& slot, int64_t now_us, int64_t charged_us) noexcept {
  uint64_t w = slot.head.load(std::memory_order_acquire);
  for (;;) {
    if (w == kDeadHead) return;
    int64_t tat = static_cast<int64_t>(w);
    if (tat <= now_us) return;  // already idle
    int64_t new_tat = tat - charged_us;
    if (new_tat < now_us) new_tat = now_us;
    if (slot.head.compare_exchange_weak(w, static_cast<uint64_t>(new_tat),
                                        std::memory_order_acq_rel, std::memory_order_acquire)) {
      return;
    }
  }
}

uint64_t Gcra::Usage(const Slot& slot, int64_t now_us, const Params& p) noexcept {
  uint64_t w = slot.head.load(std::memory_order_acquire);
  if (w == kDeadHead) return 0;
  int64_t ahead = static_cast<int64_t>(w) - now_us;
  if (ahead <= 0) return 0;
  return static_cast<uint64_t>((ahead + p.emission_us - 1) / p.emission_us);
}

}  // namespace sluice
