// Clock: the source of "now" for everything in sluice.
//
// Time is always injected: hot paths take a `now` argument, and objects that
// need time on their own hold a `Clock*`. Tests use FakeClock to step time
// deterministically; production uses RealClock.
//
// Thread safety: RealClock is thread-safe. FakeClock is thread-safe (its time
// is an atomic); Advance() from one thread is seen by others.
#ifndef SLUICE_RATELIMIT_CLOCK_H_
#define SLUICE_RATELIMIT_CLOCK_H_

#include <atomic>
#include <cstdint>

#include "absl/time/time.h"

namespace sluice {

class Clock {
 public:
  virtual ~Clock() = default;
  // Returns the current wall-clock time. Thread-safe.
  virtual absl::Time Now() const noexcept = 0;
};

// Wall-clock time from clock_gettime(CLOCK_REALTIME). Counter tables that
// persist across restarts need a clock that survives a reboot, so sluice uses
// real time, not CLOCK_MONOTONIC.
class RealClock final : public Clock {
 public:
  absl::Time Now() const noexcept override;
  // Returns a process-wide instance. Thread-safe.
  static RealClock* Get();
};

// A clock that only moves when told to. Thread-safe.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1767225600))
      : nanos_(absl::ToUnixNanos(start)) {}
  absl::Time Now() const noexcept override {
    // relaxed: the fake time carries no other data with it.
    return absl::FromUnixNanos(nanos_.load(std::memory_order_relaxed));
  }
  void Advance(absl::Duration d) noexcept {
    nanos_.fetch_add(absl::ToInt64Nanoseconds(d), std::memory_order_relaxed);
  }
  void Set(absl::Time t) noexcept { nanos_.store(absl::ToUnixNanos(t), std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> nanos_;
};

}  // namespace sluice

#endif  // SLUICE_RATELIMIT_CLOCK_H_
