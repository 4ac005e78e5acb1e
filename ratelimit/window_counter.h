// WindowCounter: a keyed sliding-window count in a CounterTable, for callers
// that only count (abuse detectors, session signals) rather than enforce a
// limit the way the Limiter does.
//
// Thread safety: thread-safe and lock-free, like the table.
#ifndef SLUICE_RATELIMIT_WINDOW_COUNTER_H_
#define SLUICE_RATELIMIT_WINDOW_COUNTER_H_

#include <cstdint>

#include "ratelimit/counter_table.h"

namespace sluice {

// Adds `delta` to the count of `key` in a window cut into `sub_seconds`
// sub-buckets (see SlidingWindow) and returns the count afterwards. A
// negative delta is taken from the newest sub-bucket that still holds a
// count (a gauge's "done"). delta == 0 only reads. When the table is full
// the key lands in the shared counter of `overflow_key`; that mixes
// everybody's counts, so the result is then 0: nothing should trip on it.
uint64_t CountInWindow(CounterTable& table, uint64_t key, uint64_t overflow_key,
                       uint32_t sub_seconds, int64_t since_base_ms, int64_t delta) noexcept;

}  // namespace sluice

#endif  // SLUICE_RATELIMIT_WINDOW_COUNTER_H_
