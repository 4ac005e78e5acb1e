// Microbenchmarks of the counter primitives: one sliding-window add, one
// GCRA add (uncontended and with two threads on one slot), and a table
// lookup of a present key.
#include <memory>

#include "benchmark/benchmark.h"
#include "ratelimit/counter_table.h"
#include "ratelimit/gcra.h"
#include "ratelimit/sliding_window.h"

namespace sluice {
namespace {

using internal::Slot;

Slot* SharedSlot() {
  static Slot* s = [] {
    auto* slot = new Slot();
    slot->key.store(1);
    return slot;
  }();
  return s;
}

void BM_SlidingWindowTryAdd(benchmark::State& state) {
  Slot private_slot{};
  Slot* slot = state.range(0) ? SharedSlot() : &private_slot;
  uint32_t epoch = 1000;
  uint64_t i = 0;
  for (auto _ : state) {
    auto r = SlidingWindow::TryAdd(*slot, epoch + static_cast<uint32_t>(++i >> 20), 1,
                                   SlidingWindow::kMaxCount);
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_SlidingWindowTryAdd)->Arg(0)->Threads(1);
BENCHMARK(BM_SlidingWindowTryAdd)->Arg(1)->Threads(2)->UseRealTime();

void BM_GcraTryAdd(benchmark::State& state) {
  Slot private_slot{};
  Slot* slot = state.range(0) ? SharedSlot() : &private_slot;
  auto p = Gcra::Make(1000000000, 1000000, 1000000000000ull);  // always admits
  int64_t now = 1000000;
  for (auto _ : state) {
    auto r = Gcra::TryAdd(*slot, ++now, 1, p);
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_GcraTryAdd)->Arg(0)->Threads(1);

void BM_TableFind(benchmark::State& state) {
  CounterTable::Options o;
  o.capacity = static_cast<uint64_t>(state.range(0)) * 2;
  auto t = CounterTable::Open(o, absl::FromUnixSeconds(0));
  const uint64_t n = static_cast<uint64_t>(state.range(0));
  CounterTable::Placement how;
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t h = (i + 1) * 0x9e3779b97f4a7c15ull;
    (*t)->FindOrClaim(h, internal::MakeKeyWord(h, 600), 1, internal::MakeKeyWord(1, 600), 0, &how);
  }
  uint64_t i = 0;
  for (auto _ : state) {
    uint64_t h = ((i++ % n) + 1) * 0x9e3779b97f4a7c15ull;
    Slot* s = (*t)->FindOrClaim(h, internal::MakeKeyWord(h, 600), 1, internal::MakeKeyWord(1, 600),
                                0, &how);
    benchmark::DoNotOptimize(s);
  }
}
BENCHMARK(BM_TableFind)->Arg(1000)->Arg(1000000);

}  // namespace
}  // namespace sluice

BENCHMARK_MAIN();
