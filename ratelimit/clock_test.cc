#include "ratelimit/clock.h"

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace sluice {
namespace {

TEST(FakeClockTest, MovesOnlyWhenTold) {
  FakeClock clock(absl::FromUnixSeconds(1000));
  EXPECT_EQ(clock.Now(), absl::FromUnixSeconds(1000));
  clock.Advance(absl::Seconds(5));
  EXPECT_EQ(clock.Now(), absl::FromUnixSeconds(1005));
  clock.Set(absl::FromUnixSeconds(7));
  EXPECT_EQ(clock.Now(), absl::FromUnixSeconds(7));
}

TEST(RealClockTest, IsNearSystemTime) {
  absl::Time a = absl::Now();
  absl::Time b = RealClock::Get()->Now();
  EXPECT_LT(absl::AbsDuration(b - a), absl::Seconds(5));
}

}  // namespace
}  // namespace sluice
