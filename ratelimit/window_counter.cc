#include "ratelimit/window_counter.h"

#include "ratelimit/sliding_window.h"

namespace sluice {

uint64_t CountInWindow(CounterTable& table, uint64_t key, uint64_t overflow_key,
                       uint32_t sub_seconds, int64_t since_base_ms, int64_t delta) noexcept {
  CounterTable::Placement how;
  for (int attempt = 0; attempt < 4; ++attempt) {
    internal::Slot* slot =
        table.FindOrClaim(key, internal::MakeKeyWord(key, sub_seconds), overflow_key,
                          internal::MakeKeyWord(overflow_key, sub_seconds), since_base_ms, &how);
    if (slot == nullptr) return 0;
    const uint32_t epoch = SlidingWindow::EpochAt(since_base_ms, sub_seconds);
    if (delta > 0) {
      if (SlidingWindow::ForceAdd(*slot, epoch, static_cast<uint64_t>(delta)).outcome ==
          SlidingWindow::Outcome::kSlotGone) {
        continue;  // reclaimed under us: look again
      }
    } else if (delta < 0) {
      const uint64_t before = SlidingWindow::Usage(*slot, epoch);
      for (uint32_t back = 0; back <= SlidingWindow::kSubBuckets && before > 0; ++back) {
        SlidingWindow::Remove(*slot, (epoch - back) & SlidingWindow::kEpochMask,
                              static_cast<uint64_t>(-delta));
        if (SlidingWindow::Usage(*slot, epoch) < before) break;
      }
    }
    if (how == CounterTable::Placement::kOverflow) return 0;
    return SlidingWindow::Usage(*slot, epoch);
  }
  return 0;
}

}  // namespace sluice
