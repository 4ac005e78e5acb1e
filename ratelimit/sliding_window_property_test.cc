// Property test: the sliding window against an exact sliding log.
//
// Thousands of random operation sequences (adds of random sizes at random
// times, removals, long idle gaps) under a fake clock. After every step:
//   exact(t - W, t] <= Usage(t) <= exact(t - 7s, t]    (the documented bound)
// and every admission leaves exact(t - W, t] <= limit (never overshoots).
#include <deque>
#include <memory>
#include <random>

#include "gtest/gtest.h"
#include "ratelimit/sliding_window.h"

namespace sluice {
namespace {

using internal::Slot;

struct Event {
  int64_t t_ms;
  uint64_t n;
  uint32_t epoch;
  bool removed = false;
};

uint64_t Exact(const std::deque<Event>& log, int64_t from_exclusive_ms, int64_t to_ms) {
  uint64_t sum = 0;
  for (const auto& e : log) {
    if (!e.removed && e.t_ms > from_exclusive_ms && e.t_ms <= to_ms) sum += e.n;
  }
  return sum;
}

TEST(SlidingWindowPropertyTest, BoundHoldsAndNeverOvershoots) {
  std::mt19937_64 rng(20261123);
  const int64_t windows[] = {6, 10, 60, 90, 3600, 86400};
  int sequences = 0;
  for (int seq = 0; seq < 3000; ++seq, ++sequences) {
    const int64_t W = windows[rng() % 6];
    const uint32_t s = SlidingWindow::SubBucketSeconds(W);
    const int64_t s_ms = int64_t{s} * 1000;
    const uint64_t limit = 1 + rng() % 50;
    auto slot = std::make_unique<Slot>();
    slot->key.store(1);
    std::deque<Event> log;
    int64_t t = static_cast<int64_t>(rng() % 100000) * 1000;
    for (int step = 0; step < 200; ++step) {
      // Time moves: mostly small steps, sometimes a long gap.
      uint64_t r = rng() % 100;
      if (r < 70) {
        t += static_cast<int64_t>(rng() % (s_ms / 2 + 1));
      } else if (r < 95) {
        t += static_cast<int64_t>(rng() % (2 * s_ms + 1));
      } else {
        t += static_cast<int64_t>(rng() % (10 * W * 1000 + 1));
      }
      uint32_t epoch = SlidingWindow::EpochAt(t, s);
      if (rng() % 10 == 0 && !log.empty()) {
        Event& e = log[rng() % log.size()];
        if (!e.removed) {
          SlidingWindow::Remove(*slot, e.epoch, e.n);
          // Removal only takes effect if its sub-bucket is still counted.
          e.removed = true;
        }
      } else {
        uint64_t n = 1 + rng() % 3;
        auto res = SlidingWindow::TryAdd(*slot, epoch, n, limit);
        ASSERT_NE(res.outcome, SlidingWindow::Outcome::kSlotGone);
        if (res.outcome == SlidingWindow::Outcome::kAdmitted) {
          log.push_back(Event{t, n, res.epoch});
          ASSERT_LE(Exact(log, t - W * 1000, t), limit) << "overshoot: W=" << W << " step=" << step;
        } else {
          // Denied only if the estimate (which bounds the log) had no room.
          ASSERT_GT(res.usage + n, limit);
        }
      }
      uint64_t usage = SlidingWindow::Usage(*slot, epoch);
      // The estimate covers sub-buckets epoch-6 .. epoch.
      int64_t covered_from = (t / s_ms - 6) * s_ms - 1;  // exclusive lower bound
      ASSERT_GE(usage, Exact(log, t - W * 1000, t)) << "undercount W=" << W;
      ASSERT_LE(usage, Exact(log, covered_from, t)) << "overcount W=" << W;
      ASSERT_LE(usage, Exact(log, t - 7 * s_ms, t)) << "bound W=" << W;
      while (!log.empty() && log.front().t_ms < t - 8 * s_ms) log.pop_front();
    }
  }
  EXPECT_EQ(sequences, 3000);
}

}  // namespace
}  // namespace sluice
