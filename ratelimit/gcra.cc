#include "ratelimit/gcra.h"

namespace sluice {

using internal::kDeadHead;
using internal::Slot;

Gcra::Result Gcra::TryAdd(Slot& slot, int64_t now_us, uint64_t n, const Params& p,
                          bool force) noexcept {
  // A request too large to express in time never fits (and cannot be forced).
  if (n > static_cast<uint64_t>(kMaxUs / p.emission_us)) {
    return {Outcome::kDenied, kMaxUs, 0, 0, 0};
  }
  const int64_t increment = p.emission_us * static_cast<int64_t>(n);
  // acquire: pairs with the acq_rel CAS of other writers.
  uint64_t w = slot.head.load(std::memory_order_acquire);
  for (;;) {
    if (w == kDeadHead) return {Outcome::kSlotGone, 0, 0, 0, 0};
    int64_t tat = static_cast<int64_t>(w);
    if (tat < now_us) tat = now_us;
    const int64_t new_tat = tat + increment;
    const int64_t allow_at = new_tat - p.tolerance_us;
    if (allow_at > now_us && !force) {
      int64_t remaining_us = p.tolerance_us - (tat - now_us);
      return {Outcome::kDenied, allow_at - now_us, tat - now_us,
              remaining_us > 0 ? static_cast<uint64_t>(remaining_us / p.emission_us) : 0, 0};
    }
    // acq_rel: the linearisation point of the admission.
    if (slot.head.compare_exchange_weak(w, static_cast<uint64_t>(new_tat),
                                        std::memory_order_acq_rel, std::memory_order_acquire)) {
      int64_t left = p.tolerance_us - (new_tat - now_us);
      return {Outcome::kAdmitted, 0, new_tat - now_us,
              left > 0 ? static_cast<uint64_t>(left / p.emission_us) : 0, increment};
    }
  }
}

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
