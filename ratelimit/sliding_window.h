// SlidingWindow: a lock-free sliding-window counter living in one Slot.
//
// A window of length W is cut into sub-buckets of s = ceil(W / 6) seconds.
// The slot keeps the current sub-bucket in its `head` word and the six most
// recent retired sub-buckets in a ring. The usage reported at time t (in
// sub-bucket e = floor(t / s)) is the sum of sub-buckets e-6 .. e.
//
// ERROR BOUND (checked by sliding_window_property_test against an exact log):
//   exact(t - W, t]  <=  Usage(t)  <=  exact(t - 7s, t]
// where exact(a, b] counts the events with time in (a, b]. Since 6s >= W,
// the estimate never undercounts the true sliding window, so a limit is
// never overshot in any true window of length W; it may over-count events
// that are at most s (+ rounding of W to whole seconds) older than the
// window, i.e. up to 1/6 of the window early. A sender at a steady rate can
// therefore be held to at least 6/7 of its nominal limit per W.
//
// CONCURRENCY. All adds are a CAS on the head word, taken only after the sum
// of the retired buckets has been read; retired buckets never grow (they can
// only shrink through Remove), so a successful CAS is a linearisation point
// at which `usage <= limit` held: concurrent TryAdd calls never overshoot.
// Moving the head to a new sub-bucket is a three-step protocol that any
// thread or process can finish for another (so a process killed mid-way
// blocks nobody): freeze the head (CAS), publish its count into the ring
// (CAS, idempotent), then install the new head (CAS).
//
// Epochs are counted since the table's base time, modulo 2^25, and compared
// with wrap-around arithmetic: a slot untouched for 2^24 sub-buckets (194
// days at s = 1 s) must have been reclaimed first (CounterTable::Sweep).
//
// Thread safety: all functions are thread-safe and lock-free, also across
// processes sharing the slot.
#ifndef SLUICE_RATELIMIT_SLIDING_WINDOW_H_
#define SLUICE_RATELIMIT_SLIDING_WINDOW_H_

#include <cstdint>

#include "ratelimit/internal/slot.h"

namespace sluice {

class SlidingWindow {
 public:
  // Number of sub-buckets a window is cut into, and how many the usage sums.
  static constexpr int kSubBuckets = internal::kHistory;
  // Largest count a window can hold; config validation keeps limits below.
  static constexpr uint64_t kMaxCount = (uint64_t{1} << 37) - 1;
  static constexpr uint32_t kEpochBits = 25;
  static constexpr uint32_t kEpochMask = (1u << kEpochBits) - 1;

  // Returns the sub-bucket length in seconds for a window: ceil(W / 6), at
  // least 1. REQUIRES: window_seconds >= 1.
  static uint32_t SubBucketSeconds(int64_t window_seconds) noexcept {
    int64_t s = (window_seconds + kSubBuckets - 1) / kSubBuckets;
    return static_cast<uint32_t>(s < 1 ? 1 : s);
  }

  // Returns the (wrapped) epoch of a time given in ms since the table base.
  static uint32_t EpochAt(int64_t since_base_ms, uint32_t sub_seconds) noexcept {
    if (since_base_ms < 0) since_base_ms = 0;
    return static_cast<uint32_t>(since_base_ms / (int64_t{sub_seconds} * 1000)) & kEpochMask;
  }

  enum class Outcome { kAdmitted, kDenied, kSlotGone };
  struct AddResult {
    Outcome outcome;
    uint64_t usage;  // usage after the add if admitted, before it if denied
    uint32_t epoch;  // sub-bucket charged (pass to Remove to undo)
  };

  // Adds n if usage + n <= limit. Returns kSlotGone if the slot is being
  // reclaimed (the caller looks the key up again). Thread-safe, lock-free.
  // Inline for the common case (the head is in the request's sub-bucket and
  // even the whole ring leaves room: one load of the line, one CAS); the
  // rest (advancing the head, filtering the ring near the limit, a lost
  // race) is TryAddSlow.
  static AddResult TryAdd(internal::Slot& slot, uint32_t epoch, uint64_t n,
                          uint64_t limit) noexcept {
    epoch &= kEpochMask;
    // acquire: see the ring as published before this head was installed.
    uint64_t h = slot.head.load(std::memory_order_acquire);
    // (kDeadHead has the flag bit set, so it never takes this path.)
    if ((h & kFlagBit) == 0 && EpochOf(h) == epoch) {
      const uint64_t upper = UpperUsage(slot, h);
      // acq_rel: the linearisation point of the add.
      if (upper + n <= limit &&
          slot.head.compare_exchange_strong(h, h + n, std::memory_order_acq_rel,
                                            std::memory_order_acquire)) {
        return {Outcome::kAdmitted, upper + n, epoch};
      }
    }
    return TryAddSlow(slot, epoch, n, limit);
  }
  static AddResult TryAddSlow(internal::Slot& slot, uint32_t epoch, uint64_t n,
                              uint64_t limit) noexcept;

  // Adds n whatever the usage (strict counting, shadow rules).
  static AddResult ForceAdd(internal::Slot& slot, uint32_t epoch, uint64_t n) noexcept {
    return TryAdd(slot, epoch, n, kMaxCount);
  }

  // Undoes an add of n charged to sub-bucket `charged_epoch`; a no-op if that
  // sub-bucket has left the ring. Counts never go below zero. Thread-safe.
  static void Remove(internal::Slot& slot, uint32_t charged_epoch, uint64_t n) noexcept;

  // Returns the usage at `epoch` (read-only). Thread-safe.
  static uint64_t Usage(const internal::Slot& slot, uint32_t epoch) noexcept;

  // Returns how many sub-bucket boundaries must pass after `epoch` before
  // usage + n <= limit holds (0 if it holds now). Used for retry-after.
  static int64_t EpochsUntilRoom(const internal::Slot& slot, uint32_t epoch, uint64_t n,
                                 uint64_t limit) noexcept;

  // Returns true if nothing in the slot counts at `epoch` any more.
  static bool Expired(uint64_t head_word, uint32_t epoch) noexcept;

  // Signed distance a - b between wrapped epochs.
  static int32_t Diff(uint32_t a, uint32_t b) noexcept {
    uint32_t d = (a - b) & kEpochMask;
    return d >= (1u << (kEpochBits - 1)) ? static_cast<int32_t>(d) - (1 << kEpochBits)
                                         : static_cast<int32_t>(d);
  }

  // Word encodings (exposed for tests and the table's reclaim logic).
  static constexpr uint64_t kCountMask = (uint64_t{1} << 38) - 1;
  static constexpr uint64_t kFlagBit = uint64_t{1} << 38;  // frozen / valid
  static uint64_t Pack(uint32_t epoch, bool flag, uint64_t count) noexcept {
    return (uint64_t{epoch & kEpochMask} << 39) | (flag ? kFlagBit : 0) | (count & kCountMask);
  }
  static uint32_t EpochOf(uint64_t w) noexcept {
    return static_cast<uint32_t>(w >> 39) & kEpochMask;
  }
  static bool FlagOf(uint64_t w) noexcept { return (w & kFlagBit) != 0; }
  static uint64_t CountOf(uint64_t w) noexcept { return w & kCountMask; }

 private:
  // The head's count plus every ring entry, stale ones included: an
  // over-estimate of the usage, exact enough far from the limit.
  static uint64_t UpperUsage(const internal::Slot& slot, uint64_t head) noexcept {
    uint64_t upper = CountOf(head);
    for (int i = 0; i < kSubBuckets; ++i) {
      // acquire: pairs with the release of the publishing CAS.
      upper += CountOf(slot.hist[i].load(std::memory_order_acquire));
    }
    return upper;
  }
  static void HelpAdvance(internal::Slot& slot, uint64_t frozen_head, uint32_t new_epoch) noexcept;
  static uint64_t HistorySum(const internal::Slot& slot, uint32_t epoch, uint32_t skip_epoch,
                             bool use_skip) noexcept;
};

}  // namespace sluice

#endif  // SLUICE_RATELIMIT_SLIDING_WINDOW_H_
