// A flood of 10 million random sender keys: resident memory stays under the
// configured cap, and a real heavy sender stays tracked and is deferred at
// exactly its limit.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "ratelimit/config.h"
#include "ratelimit/limiter.h"

namespace sluice {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1767225600);

uint64_t RssBytes() {
  std::ifstream f("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  f >> size >> resident;
  return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

int FloodKeys() {
  // The full 10M in a normal build; sanitizer builds (5-20x slower) use 2M,
  // still twice the table's capacity.
  return getenv("SLUICE_SANITIZER") != nullptr ? 2000000 : 10000000;
}

TEST(LimiterFloodTest, RandomKeysStayUnderCapAndHeavySenderIsStillLimited) {
  constexpr uint64_t kCap = 64ull << 20;
  auto c = ParseConfigText(absl::StrCat(R"pb(
                                          level {
                                            name: "mailbox"
                                            limit { window: "1h" max: 100 }
                                          }
                                          table { max_memory_bytes:)pb",
                                        kCap, " }"));
  ASSERT_TRUE(c.ok()) << c.status();
  const uint64_t rss_before = RssBytes();
  auto made = Limiter::Create(*c, kT0);
  ASSERT_TRUE(made.ok()) << made.status();
  Limiter& l = **made;
  Request heavy;
  heavy.sender = "heavy@real.example";
  int heavy_admitted = 0;
  for (int i = 0; i < 60; ++i) heavy_admitted += l.CheckAndCharge(heavy, kT0).admitted();
  ASSERT_EQ(heavy_admitted, 60);

  std::mt19937_64 rng(42);
  char buf[64];
  const int n = FloodKeys();
  uint64_t flood_admitted = 0, overflow_deferred = 0;
  for (int i = 0; i < n; ++i) {
    // Within one hour, like an attack at full speed.
    absl::Time now = kT0 + absl::Milliseconds(static_cast<int64_t>(i) * 3000000 / n);
    int len =
        snprintf(buf, sizeof(buf), "%016llx@flood.example", static_cast<unsigned long long>(rng()));
    Request r;
    r.sender = absl::string_view(buf, static_cast<size_t>(len));
    Decision d = l.CheckAndCharge(r, now);
    if (d.admitted()) {
      ++flood_admitted;
    } else {
      overflow_deferred += d.overflow;
    }
    if (i % 250000 == 0) heavy_admitted += l.CheckAndCharge(heavy, now).admitted();
  }
  const uint64_t rss_after = RssBytes();
  const uint64_t grew = rss_after > rss_before ? rss_after - rss_before : 0;
  std::printf(
      "flood: %d keys, table %llu slots (%llu MiB), admitted %llu, deferred in overflow "
      "%llu, RSS grew %.1f MiB (cap %llu MiB)\n",
      n, static_cast<unsigned long long>(l.table().capacity()),
      static_cast<unsigned long long>(l.table().mapped_bytes() >> 20),
      static_cast<unsigned long long>(flood_admitted),
      static_cast<unsigned long long>(overflow_deferred), grew / 1048576.0,
      static_cast<unsigned long long>(kCap >> 20));
  EXPECT_LT(grew, kCap);
  EXPECT_LE(l.table().mapped_bytes(), kCap);
  // The flood limited itself: each tracked key sent one, the overflow bucket
  // took its 100, everything else was deferred.
  EXPECT_LE(flood_admitted, l.table().capacity() + 100);
  EXPECT_GT(overflow_deferred, static_cast<uint64_t>(n) / 2);
  // The heavy sender is still tracked on its own counter: deferred at 100.
  for (int i = 0; i < 200; ++i) {
    heavy_admitted += l.CheckAndCharge(heavy, kT0 + absl::Minutes(50)).admitted();
  }
  EXPECT_EQ(heavy_admitted, 100);
  Decision d = l.CheckAndCharge(heavy, kT0 + absl::Minutes(50));
  EXPECT_FALSE(d.admitted());
  EXPECT_FALSE(d.overflow);
  EXPECT_STREQ(d.entity, "heavy@real.example");
}

}  // namespace
}  // namespace sluice
