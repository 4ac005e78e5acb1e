// Gcra: the generic cell rate algorithm on one atomic word.
//
// A limit of `count` per `period` with a burst of `burst` requests:
//   emission interval T = period / count
//   tolerance        tau = T * burst
// The slot's head word holds the theoretical arrival time (TAT), in
// microseconds since the table's base time. A request of n units at `now`:
//   tat = max(TAT, now); new_tat = tat + n*T
//   admitted iff new_tat - tau <= now; then TAT := new_tat (one CAS)
// `retry_after` (denied) is how long until the same request would pass;
// `reset_after` is how long until the limiter is back to its idle state.
// This matches the usual GCRA semantics (redis-cell, throttled).
//
// Thread safety: thread-safe and lock-free (CAS loop on one word), also
// across processes sharing the slot.
#ifndef SLUICE_RATELIMIT_GCRA_H_
#define SLUICE_RATELIMIT_GCRA_H_

#include <atomic>
#include <cstdint>

#include "ratelimit/internal/slot.h"

namespace sluice {

class Gcra {
 public:
  struct Params {
    int64_t emission_us;   // T, > 0
    int64_t tolerance_us;  // tau >= 0
  };
  // Returns params for `count` per `period_us` with `burst` (>= 1).
  // Times are kept below kMaxUs so that sums of them never overflow.
  static constexpr int64_t kMaxUs = int64_t{1} << 60;

  static Params Make(uint64_t count, int64_t period_us, uint64_t burst) noexcept {
    int64_t t = period_us / static_cast<int64_t>(count ? count : 1);
    if (t < 1) t = 1;
    if (burst == 0) burst = 1;
    // Saturate instead of overflowing on absurd bursts.
    int64_t tolerance =
        burst > static_cast<uint64_t>(kMaxUs / t) ? kMaxUs : t * static_cast<int64_t>(burst);
    return {t, tolerance};
  }

  // Whether n units can ever pass: n * T <= tau (n at most the burst). A
  // request that does not fit is denied even on an idle limiter.
  static bool Fits(uint64_t n, const Params& p) noexcept {
    return n <= static_cast<uint64_t>(p.tolerance_us / p.emission_us);
  }

  enum class Outcome { kAdmitted, kDenied, kSlotGone };
  struct Result {
    Outcome outcome;
    int64_t retry_after_us;  // 0 if admitted
    int64_t reset_after_us;  // time until fully idle
    uint64_t remaining;      // requests of size 1 still allowed now
    int64_t charged_us;      // n*T actually added (for Remove)
  };

  // Tries to admit n units at `now_us` (microseconds since table base).
  // Inline, so a caller that reads only the outcome pays for no division.
  static Result TryAdd(internal::Slot& slot, int64_t now_us, uint64_t n, const Params& p,
                       bool force = false) noexcept {
    // A request too large to express in time never fits (and cannot be forced).
    // (n * T > kMaxUs, which is n > kMaxUs / T without a division.)
    uint64_t product;
    if (__builtin_mul_overflow(static_cast<uint64_t>(p.emission_us), n, &product) ||
        product > static_cast<uint64_t>(kMaxUs)) {
      return {Outcome::kDenied, kMaxUs, 0, 0, 0};
    }
    const int64_t increment = static_cast<int64_t>(product);
    // acquire: pairs with the acq_rel CAS of other writers.
    uint64_t w = slot.head.load(std::memory_order_acquire);
    for (;;) {
      if (w == internal::kDeadHead) return {Outcome::kSlotGone, 0, 0, 0, 0};
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

  // Undoes a charge of `charged_us`. Thread-safe.
  static void Remove(internal::Slot& slot, int64_t now_us, int64_t charged_us) noexcept;

  // Returns the equivalent "usage": requests of size 1 the window holds now,
  // i.e. ceil((TAT - now) / T). Thread-safe.
  static uint64_t Usage(const internal::Slot& slot, int64_t now_us, const Params& p) noexcept;

  static bool Expired(uint64_t head_word, int64_t now_us) noexcept {
    return head_word != internal::kDeadHead && static_cast<int64_t>(head_word) <= now_us;
  }
};

}  // namespace sluice

#endif  // SLUICE_RATELIMIT_GCRA_H_
