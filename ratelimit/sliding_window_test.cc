#include "ratelimit/sliding_window.h"

#include <memory>

#include "gtest/gtest.h"
#include "ratelimit/testing.h"

namespace sluice {
namespace {

using internal::Slot;

using testing::NewSlot;

TEST(SlidingWindowTest, SubBucketSeconds) {
  EXPECT_EQ(SlidingWindow::SubBucketSeconds(3600), 600u);
  EXPECT_EQ(SlidingWindow::SubBucketSeconds(60), 10u);
  EXPECT_EQ(SlidingWindow::SubBucketSeconds(10), 2u);
  EXPECT_EQ(SlidingWindow::SubBucketSeconds(1), 1u);
}

TEST(SlidingWindowTest, AdmitsUpToLimitThenDenies) {
  auto s = NewSlot();
  uint32_t e = 1000;
  for (int i = 0; i < 10; ++i) {
    auto r = SlidingWindow::TryAdd(*s, e, 1, 10);
    ASSERT_EQ(r.outcome, SlidingWindow::Outcome::kAdmitted) << i;
    EXPECT_EQ(r.usage, static_cast<uint64_t>(i + 1));
  }
  auto r = SlidingWindow::TryAdd(*s, e, 1, 10);
  EXPECT_EQ(r.outcome, SlidingWindow::Outcome::kDenied);
  EXPECT_EQ(r.usage, 10u);
  EXPECT_EQ(SlidingWindow::Usage(*s, e), 10u);
}

TEST(SlidingWindowTest, CountsLeaveAfterSevenSubBuckets) {
  auto s = NewSlot();
  ASSERT_EQ(SlidingWindow::TryAdd(*s, 100, 5, 100).outcome, SlidingWindow::Outcome::kAdmitted);
  ASSERT_EQ(SlidingWindow::TryAdd(*s, 103, 2, 100).outcome, SlidingWindow::Outcome::kAdmitted);
  EXPECT_EQ(SlidingWindow::Usage(*s, 103), 7u);
  EXPECT_EQ(SlidingWindow::Usage(*s, 106), 7u);  // 100 is age 6: still in
  EXPECT_EQ(SlidingWindow::Usage(*s, 107), 2u);  // 100 left
  EXPECT_EQ(SlidingWindow::Usage(*s, 109), 2u);
  EXPECT_EQ(SlidingWindow::Usage(*s, 110), 0u);
  EXPECT_TRUE(SlidingWindow::Expired(s->head.load(), 110));
  EXPECT_FALSE(SlidingWindow::Expired(s->head.load(), 109));
}

TEST(SlidingWindowTest, RemoveUndoesAnAddInHeadOrHistory) {
  auto s = NewSlot();
  auto a = SlidingWindow::TryAdd(*s, 50, 3, 10);
  auto b = SlidingWindow::TryAdd(*s, 52, 4, 10);
  EXPECT_EQ(SlidingWindow::Usage(*s, 52), 7u);
  SlidingWindow::Remove(*s, b.epoch, 4);  // in the head
  EXPECT_EQ(SlidingWindow::Usage(*s, 52), 3u);
  SlidingWindow::Remove(*s, a.epoch, 3);  // in the ring
  EXPECT_EQ(SlidingWindow::Usage(*s, 52), 0u);
  SlidingWindow::Remove(*s, a.epoch, 3);  // never below zero
  EXPECT_EQ(SlidingWindow::Usage(*s, 52), 0u);
  SlidingWindow::Remove(*s, 10, 3);  // long gone: no-op
  EXPECT_EQ(SlidingWindow::Usage(*s, 52), 0u);
}

TEST(SlidingWindowTest, StaleClockChargesNewestBucket) {
  auto s = NewSlot();
  SlidingWindow::TryAdd(*s, 200, 1, 10);
  auto r = SlidingWindow::TryAdd(*s, 198, 1, 10);  // a thread whose clock lags
  EXPECT_EQ(r.epoch, 200u);
  EXPECT_EQ(SlidingWindow::Usage(*s, 200), 2u);
}

TEST(SlidingWindowTest, FrozenHeadIsFinishedByTheNextCaller) {
  auto s = NewSlot();
  SlidingWindow::TryAdd(*s, 300, 4, 10);
  // Simulate a process killed right after freezing the head.
  s->head.store(s->head.load() | SlidingWindow::kFlagBit);
  auto r = SlidingWindow::TryAdd(*s, 301, 1, 10);
  ASSERT_EQ(r.outcome, SlidingWindow::Outcome::kAdmitted);
  EXPECT_EQ(r.usage, 5u);
  EXPECT_EQ(SlidingWindow::Usage(*s, 301), 5u);
}

TEST(SlidingWindowTest, EpochsUntilRoom) {
  auto s = NewSlot();
  SlidingWindow::TryAdd(*s, 10, 6, 10);
  SlidingWindow::TryAdd(*s, 12, 4, 10);
  EXPECT_EQ(SlidingWindow::EpochsUntilRoom(*s, 12, 1, 10), 5);  // 10 leaves at 17
  EXPECT_EQ(SlidingWindow::EpochsUntilRoom(*s, 12, 0, 10), 0);
  EXPECT_EQ(SlidingWindow::EpochsUntilRoom(*s, 12, 5, 10), 5);
  EXPECT_EQ(SlidingWindow::EpochsUntilRoom(*s, 12, 7, 10), 7);   // needs both gone
  EXPECT_EQ(SlidingWindow::EpochsUntilRoom(*s, 12, 11, 10), 7);  // never fits
}

TEST(SlidingWindowTest, EpochWrapAround) {
  auto s = NewSlot();
  uint32_t last = SlidingWindow::kEpochMask;
  SlidingWindow::TryAdd(*s, last, 2, 10);
  SlidingWindow::TryAdd(*s, 0, 3, 10);  // wrapped
  EXPECT_EQ(SlidingWindow::Usage(*s, 0), 5u);
  EXPECT_EQ(SlidingWindow::Diff(0, last), 1);
  EXPECT_EQ(SlidingWindow::Diff(last, 0), -1);
}

TEST(SlidingWindowTest, DeadSlotReportsGone) {
  auto s = NewSlot();
  s->head.store(internal::kDeadHead);
  EXPECT_EQ(SlidingWindow::TryAdd(*s, 5, 1, 10).outcome, SlidingWindow::Outcome::kSlotGone);
}

}  // namespace
}  // namespace sluice
