#include "ratelimit/clock.h"

#include <time.h>

namespace sluice {

absl::Time RealClock::Now() const noexcept {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return absl::TimeFromTimespec(ts);
}

RealClock* RealClock::Get() {
  static RealClock* clock = new RealClock();
  return clock;
}

}  // namespace sluice
