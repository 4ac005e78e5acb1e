#include "ratelimit/gcra.h"

#include <memory>

#include "gtest/gtest.h"
#include "ratelimit/testing.h"

namespace sluice {
namespace {

using internal::Slot;

using testing::NewSlot;

constexpr int64_t kSec = 1000000;

TEST(GcraTest, SteadyRateWithoutBurst) {
  // 10 per second, burst 1: one request every 100 ms.
  auto p = Gcra::Make(10, kSec, 1);
  EXPECT_EQ(p.emission_us, 100000);
  auto s = NewSlot();
  int64_t now = 5 * kSec;
  auto r1 = Gcra::TryAdd(*s, now, 1, p);
  EXPECT_EQ(r1.outcome, Gcra::Outcome::kAdmitted);
  auto r2 = Gcra::TryAdd(*s, now, 1, p);
  EXPECT_EQ(r2.outcome, Gcra::Outcome::kDenied);
  EXPECT_EQ(r2.retry_after_us, 100000);
  auto r3 = Gcra::TryAdd(*s, now + 100000, 1, p);
  EXPECT_EQ(r3.outcome, Gcra::Outcome::kAdmitted);
}

TEST(GcraTest, BurstThenRate) {
  auto p = Gcra::Make(60, 60 * kSec, 5);  // 1/s, bursts of 5
  auto s = NewSlot();
  int64_t now = 100 * kSec;
  int admitted = 0;
  for (int i = 0; i < 10; ++i) {
    if (Gcra::TryAdd(*s, now, 1, p).outcome == Gcra::Outcome::kAdmitted) ++admitted;
  }
  EXPECT_EQ(admitted, 5);
  auto denied = Gcra::TryAdd(*s, now, 1, p);
  EXPECT_EQ(denied.outcome, Gcra::Outcome::kDenied);
  EXPECT_EQ(denied.retry_after_us, kSec);
  EXPECT_EQ(denied.reset_after_us, 5 * kSec);
  // One more per second after that.
  EXPECT_EQ(Gcra::TryAdd(*s, now + kSec, 1, p).outcome, Gcra::Outcome::kAdmitted);
  EXPECT_EQ(Gcra::TryAdd(*s, now + kSec, 1, p).outcome, Gcra::Outcome::kDenied);
  // Idle long enough: the full burst is back.
  int64_t later = now + 100 * kSec;
  EXPECT_TRUE(Gcra::Expired(s->head.load(), later));
  admitted = 0;
  for (int i = 0; i < 10; ++i) {
    if (Gcra::TryAdd(*s, later, 1, p).outcome == Gcra::Outcome::kAdmitted) ++admitted;
  }
  EXPECT_EQ(admitted, 5);
}

TEST(GcraTest, RemainingAndUsage) {
  auto p = Gcra::Make(10, 10 * kSec, 4);
  auto s = NewSlot();
  int64_t now = 1000 * kSec;
  auto r = Gcra::TryAdd(*s, now, 1, p);
  EXPECT_EQ(r.remaining, 3u);
  EXPECT_EQ(Gcra::Usage(*s, now, p), 1u);
  Gcra::TryAdd(*s, now, 2, p);
  EXPECT_EQ(Gcra::Usage(*s, now, p), 3u);
}

TEST(GcraTest, RemoveGivesBackTheCharge) {
  auto p = Gcra::Make(1, kSec, 1);
  auto s = NewSlot();
  int64_t now = 50 * kSec;
  auto r = Gcra::TryAdd(*s, now, 1, p);
  ASSERT_EQ(r.outcome, Gcra::Outcome::kAdmitted);
  EXPECT_EQ(Gcra::TryAdd(*s, now, 1, p).outcome, Gcra::Outcome::kDenied);
  Gcra::Remove(*s, now, r.charged_us);
  EXPECT_EQ(Gcra::TryAdd(*s, now, 1, p).outcome, Gcra::Outcome::kAdmitted);
}

TEST(GcraTest, AbsurdNumbersSaturateInsteadOfOverflowing) {
  auto p = Gcra::Make(60, 1000000, 333333333333333335ull);  // found by the fuzzer
  EXPECT_EQ(p.tolerance_us, Gcra::kMaxUs);
  auto s = NewSlot();
  EXPECT_EQ(Gcra::TryAdd(*s, kSec, 1, p).outcome, Gcra::Outcome::kAdmitted);
  auto q = Gcra::Make(1, kSec, 1);
  auto r = Gcra::TryAdd(*s, kSec, ~uint64_t{0}, q, /*force=*/true);
  EXPECT_EQ(r.outcome, Gcra::Outcome::kDenied);  // cannot be expressed in time
}

TEST(GcraTest, OversizedRequestNeverFits) {
  auto p = Gcra::Make(10, kSec, 3);
  auto s = NewSlot();
  auto r = Gcra::TryAdd(*s, kSec, 4, p);
  EXPECT_EQ(r.outcome, Gcra::Outcome::kDenied);
  EXPECT_EQ(s->head.load(), 0u);  // nothing charged
}

}  // namespace
}  // namespace sluice
