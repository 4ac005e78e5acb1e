#include "ratelimit/cluster/shared_counter.h"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace sluice {
namespace {

SharedCounter::Options Opts(uint64_t limit) {
  SharedCounter::Options o;
  o.limit = limit;
  o.window_ms = 60 * 1000;
  o.sub_bucket_ms = 10 * 1000;
  o.interval_ms = 200;
  return o;
}

TEST(SharedCounterTest, NothingIsAdmittedWithoutALease) {
  MemoryStore store;
  SharedCounter c("k", Opts(10));
  EXPECT_FALSE(c.TryAdmit(1, 1000));
  ASSERT_TRUE(c.Sync(store, 1, 1000));
  EXPECT_TRUE(c.TryAdmit(1, 1000));  // min_lease 1
  EXPECT_FALSE(c.TryAdmit(1, 1000));
}

TEST(SharedCounterTest, LeasesGrowWithDemandAndStopAtTheLimit) {
  MemoryStore store;
  SharedCounter c("k", Opts(100));
  int admitted = 0;
  for (int64_t t = 0; t < 20000; t += 10) {
    if (t % 200 == 0) ASSERT_TRUE(c.Sync(store, 1, t));
    while (c.TryAdmit(1, t)) ++admitted;
  }
  EXPECT_EQ(admitted, 100);  // all of the limit, no more
}

TEST(SharedCounterTest, ALeaseExpiresAndAFailedSyncKeepsNothingTwice) {
  MemoryStore store;
  SharedCounter c("k", Opts(1000));
  ASSERT_TRUE(c.Sync(store, 1, 0));
  EXPECT_TRUE(c.TryAdmit(1, 100));
  EXPECT_FALSE(c.TryAdmit(1, 400));  // past 2 intervals: expired
  store.set_down(true);
  EXPECT_FALSE(c.Sync(store, 1, 400));
  EXPECT_FALSE(c.TryAdmit(1, 400));
  store.set_down(false);
  ASSERT_TRUE(c.Sync(store, 1, 600));
  // The store counts the one unit spent; the unspent rest came back.
  EXPECT_EQ(store.Sum("k", -1000, 1000), 1u + c.lease_left(600));
}

// Threads spend while the sync loop gives back and takes leases: every
// unit spent was granted, and once the last leases expire and are given
// back, the store counts exactly what was spent.
TEST(SharedCounterTest, ConcurrentSpendingAndSyncCountExactly) {
  MemoryStore store;
  SharedCounter c("k", Opts(1000000));
  std::atomic<int64_t> now{0};
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> spent{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      while (!stop.load()) {
        if (c.TryAdmit(1, now.load())) spent.fetch_add(1);
      }
    });
  }
  for (int64_t t = 0; t < 400 * 200; t += 200) {
    now.store(t);
    ASSERT_TRUE(c.Sync(store, 1, t));
    std::this_thread::yield();
  }
  stop.store(true);
  for (auto& th : threads) th.join();
  // Past every lease: two syncs give the rest back.
  const int64_t later = 400 * 200 + 1000;
  ASSERT_TRUE(c.Sync(store, 1, later));
  ASSERT_TRUE(c.Sync(store, 1, later + 1000));
  EXPECT_GT(spent.load(), 0u);
  EXPECT_EQ(store.Sum("k", -1, 1 << 20), spent.load() + c.lease_left(later + 1000));
}

// The deterministic simulation: N hosts share one limit through the store;
// random arrivals with bursts where every host bursts at once; syncs out of
// phase, late, and sometimes failing. Checks the bound of shared_counter.h:
// in any window of length W, all hosts together admit at most L.
struct SimResult {
  uint64_t max_in_window = 0;
  uint64_t admitted = 0;
  uint64_t offered = 0;
};

SimResult Simulate(int hosts, uint64_t limit, uint32_t seed) {
  std::mt19937_64 rng(seed);
  MemoryStore store;
  const SharedCounter::Options o = Opts(limit);
  std::vector<std::unique_ptr<SharedCounter>> counters;
  std::vector<int64_t> next_sync;
  for (int h = 0; h < hosts; ++h) {
    counters.push_back(std::make_unique<SharedCounter>("sub:acme", o));
    next_sync.push_back(static_cast<int64_t>(rng() % o.interval_ms));  // out of phase
  }
  std::vector<int64_t> admissions;
  SimResult r;
  const int64_t end = 5 * o.window_ms;
  std::uniform_real_distribution<double> u(0, 1);
  int64_t burst_until = -1;
  for (int64_t t = 0; t < end; t += 5) {
    if (burst_until < t && u(rng) < 0.0005) burst_until = t + 2000;  // all hosts at once
    store.set_down(u(rng) < 0.0002 ? true : (u(rng) < 0.01 ? false : false));
    for (int h = 0; h < hosts; ++h) {
      if (t >= next_sync[h]) {
        const bool failed = u(rng) < 0.03;  // the store did not answer this host
        if (!failed) counters[h]->Sync(store, hosts, t);
        // Late now and then (a slow loop), never early.
        next_sync[h] = t + o.interval_ms + (u(rng) < 0.1 ? static_cast<int64_t>(rng() % 300) : 0);
      }
      const double rate = t < burst_until ? 0.8 : 0.05 + 0.1 * h / hosts;  // per 5 ms
      if (u(rng) < rate) {
        const uint64_t n = 1 + rng() % 3;  // recipients
        ++r.offered;
        if (counters[h]->TryAdmit(n, t)) {
          for (uint64_t i = 0; i < n; ++i) admissions.push_back(t);
          r.admitted += n;
        }
      }
    }
    store.set_down(false);
  }
  // The most admitted in any window (a, a + W].
  std::sort(admissions.begin(), admissions.end());
  size_t lo = 0;
  for (size_t hi = 0; hi < admissions.size(); ++hi) {
    while (admissions[lo] <= admissions[hi] - o.window_ms) ++lo;
    r.max_in_window = std::max<uint64_t>(r.max_in_window, hi - lo + 1);
  }
  return r;
}

TEST(SharedCounterTest, SimulationNeverAdmitsMoreThanTheLimitInAnyWindow) {
  for (int hosts : {2, 3, 8}) {
    for (uint32_t seed = 1; seed <= 20; ++seed) {
      const uint64_t limit = 1000;
      SimResult r = Simulate(hosts, limit, seed);
      ASSERT_LE(r.max_in_window, limit) << hosts << " hosts, seed " << seed;
      // Not a trickle either: demand far above the limit fills most of it.
      EXPECT_GE(r.max_in_window, limit * 6 / 10) << hosts << " hosts, seed " << seed;
    }
  }
}

}  // namespace
}  // namespace sluice
