#include "ratelimit/sliding_window.h"

namespace sluice {

using internal::kDeadHead;
using internal::kHistory;
using internal::Slot;

uint64_t SlidingWindow::HistorySum(const Slot& slot, uint32_t epoch, uint32_t skip_epoch,
                                   bool use_skip) noexcept {
  uint64_t sum = 0;
  for (int i = 0; i < kHistory; ++i) {
    // acquire: pairs with the release of the publishing CAS.
    uint64_t v = slot.hist[i].load(std::memory_order_acquire);
    if (!FlagOf(v)) continue;
    uint32_t e = EpochOf(v);
    int32_t age = Diff(epoch, e);
    if (age < 1 || age > kHistory) continue;
    if (use_skip && e == skip_epoch) continue;
    sum += CountOf(v);
  }
  return sum;
}

void SlidingWindow::HelpAdvance(Slot& slot, uint64_t frozen_head, uint32_t new_epoch) noexcept {
  const uint32_t he = EpochOf(frozen_head);
  const uint64_t count = CountOf(frozen_head);
  if (count > 0) {
    std::atomic<uint64_t>& w = slot.hist[he % kHistory];
    uint64_t v = w.load(std::memory_order_acquire);
    for (;;) {
      // Already published (same epoch) or overwritten by a newer one: done.
      if (FlagOf(v) && Diff(EpochOf(v), he) >= 0) break;
      // acq_rel: the published count must be visible before the new head.
      if (w.compare_exchange_weak(v, Pack(he, true, count), std::memory_order_acq_rel,
                                  std::memory_order_acquire)) {
        break;
      }
    }
  }
  uint64_t expected = frozen_head;
  // acq_rel: installs the new head after the publish above.
  slot.head.compare_exchange_strong(expected, Pack(new_epoch, false, 0), std::memory_order_acq_rel,
                                    std::memory_order_acquire);
}

SlidingWindow::AddResult SlidingWindow::TryAddSlow(Slot& slot, uint32_t epoch, uint64_t n,
                                                   uint64_t limit) noexcept {
  epoch &= kEpochMask;
  for (;;) {
    // acquire: see the ring as published before this head was installed.
    uint64_t h = slot.head.load(std::memory_order_acquire);
    if (h == kDeadHead) return {Outcome::kSlotGone, 0, epoch};
    const uint32_t he = EpochOf(h);
    if (FlagOf(h)) {  // frozen: finish the other thread's advance
      HelpAdvance(slot, h, Diff(epoch, he) > 0 ? epoch : (he + 1) & kEpochMask);
      continue;
    }
    const int32_t d = Diff(epoch, he);
    if (d < 0) {  // our clock is behind the slot's: charge the newest bucket
      epoch = he;
      continue;
    }
    if (d > 0) {
      uint64_t frozen = h | kFlagBit;
      // acq_rel: freezing orders the publish after every add to this head.
      if (slot.head.compare_exchange_strong(h, frozen, std::memory_order_acq_rel,
                                            std::memory_order_acquire)) {
        HelpAdvance(slot, frozen, epoch);
      }
      continue;
    }
    // Fast path: if even the sum of every ring entry (stale ones included,
    // an over-estimate) leaves room, there is no need to filter by epoch.
    const uint64_t upper = UpperUsage(slot, h);
    const uint64_t usage =
        upper + n <= limit ? upper : CountOf(h) + HistorySum(slot, epoch, 0, false);
    if (usage + n > limit) return {Outcome::kDenied, usage, epoch};
    // acq_rel: the linearisation point of the add.
    if (slot.head.compare_exchange_weak(h, h + n, std::memory_order_acq_rel,
                                        std::memory_order_acquire)) {
      // `usage` may include stale ring entries on the fast path; it is only
      // exact when it matters (near the limit).
      return {Outcome::kAdmitted, usage + n, epoch};
    }
  }
}

void SlidingWindow::Remove(Slot& slot, uint32_t charged_epoch, uint64_t n) noexcept {
  charged_epoch &= kEpochMask;
  for (;;) {
    uint64_t h = slot.head.load(std::memory_order_acquire);
    if (h == kDeadHead) return;
    const uint32_t he = EpochOf(h);
    if (he == charged_epoch) {
      if (FlagOf(h)) {
        HelpAdvance(slot, h, (he + 1) & kEpochMask);
        continue;
      }
      uint64_t c = CountOf(h);
      uint64_t take = n < c ? n : c;
      // acq_rel: same word as the adds.
      if (slot.head.compare_exchange_weak(h, h - take, std::memory_order_acq_rel,
                                          std::memory_order_acquire)) {
        return;
      }
      continue;
    }
    if (Diff(he, charged_epoch) < 0) return;  // not ours (slot was reset)
    std::atomic<uint64_t>& w = slot.hist[charged_epoch % kHistory];
    uint64_t v = w.load(std::memory_order_acquire);
    for (;;) {
      if (!FlagOf(v) || EpochOf(v) != charged_epoch) return;  // left the ring
      uint64_t c = CountOf(v);
      uint64_t take = n < c ? n : c;
      if (w.compare_exchange_weak(v, v - take, std::memory_order_acq_rel,
                                  std::memory_order_acquire)) {
        return;
      }
    }
  }
}

uint64_t SlidingWindow::Usage(const Slot& slot, uint32_t epoch) noexcept {
  epoch &= kEpochMask;
  uint64_t h = slot.head.load(std::memory_order_acquire);
  if (h == kDeadHead) return 0;
  const uint32_t he = EpochOf(h);
  int32_t age = Diff(epoch, he);
  if (age < 0) {  // reader's clock is behind: read as of the head's epoch
    epoch = he;
    age = 0;
  }
  uint64_t head_count = age <= kHistory ? CountOf(h) : 0;
  // The head may already be published in the ring (frozen): skip that copy.
  return head_count + HistorySum(slot, epoch, he, true);
}

int64_t SlidingWindow::EpochsUntilRoom(const Slot& slot, uint32_t epoch, uint64_t n,
                                       uint64_t limit) noexcept {
  epoch &= kEpochMask;
  uint64_t h = slot.head.load(std::memory_order_acquire);
  if (h == kDeadHead) return 0;
  uint32_t he = EpochOf(h);
  if (Diff(epoch, he) < 0) epoch = he;
  // counts[a] = count of the sub-bucket of age a (0 = current).
  uint64_t counts[kHistory + 1] = {};
  int32_t head_age = Diff(epoch, he);
  if (head_age >= 0 && head_age <= kHistory) counts[head_age] += CountOf(h);
  for (int i = 0; i < kHistory; ++i) {
    uint64_t v = slot.hist[i].load(std::memory_order_acquire);
    if (!FlagOf(v) || EpochOf(v) == he) continue;
    int32_t age = Diff(epoch, EpochOf(v));
    if (age >= 0 && age <= kHistory) counts[age] += CountOf(v);
  }
  uint64_t usage = 0;
  for (uint64_t c : counts) usage += c;
  if (n > limit) return kHistory + 1;
  // After k boundaries the sub-buckets of age > kHistory - k have left.
  for (int k = 0; k <= kHistory + 1; ++k) {
    if (usage + n <= limit) return k;
    int age_leaving = kHistory - k;
    if (age_leaving >= 0) usage -= counts[age_leaving];
  }
  return kHistory + 1;
}

bool SlidingWindow::Expired(uint64_t head_word, uint32_t epoch) noexcept {
  if (head_word == kDeadHead) return false;
  if (head_word == 0) return true;
  if (FlagOf(head_word)) return false;  // an advance is in flight
  return Diff(epoch & kEpochMask, EpochOf(head_word)) > kHistory;
}

}  // namespace sluice
