#include "reputation/abuse/hyperloglog.h"

#include <cmath>
#include <random>

#include "gtest/gtest.h"

namespace sluice {
namespace {

uint64_t Hash(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

TEST(HyperLogLogTest, SmallCountsAreNearlyExact) {
  HyperLogLog h(8);
  EXPECT_EQ(h.Estimate(), 0);
  for (uint64_t i = 0; i < 10; ++i) {
    h.Add(Hash(i));
    h.Add(Hash(i));  // duplicates do not count
  }
  // Linear counting: off only by the odd collision in one of 256 registers.
  EXPECT_NEAR(h.Estimate(), 10, 1.0);
}

TEST(HyperLogLogTest, ErrorWithinThreeStandardErrors) {
  for (int p : {6, 8, 10, 12}) {
    for (uint64_t n : {100u, 1000u, 20000u, 200000u}) {
      HyperLogLog h(p);
      for (uint64_t i = 0; i < n; ++i) h.Add(Hash(i * 7 + static_cast<uint64_t>(p) * 1000003));
      double rel = std::fabs(h.Estimate() - static_cast<double>(n)) / static_cast<double>(n);
      EXPECT_LT(rel, 3 * h.StandardError()) << "p=" << p << " n=" << n;
    }
  }
}

TEST(HyperLogLogTest, MergeIsTheUnion) {
  HyperLogLog a(10), b(10), both(10);
  for (uint64_t i = 0; i < 3000; ++i) {
    a.Add(Hash(i));
    both.Add(Hash(i));
  }
  for (uint64_t i = 2000; i < 6000; ++i) {
    b.Add(Hash(i));
    both.Add(Hash(i));
  }
  a.Merge(b);
  EXPECT_EQ(a.Estimate(), both.Estimate());
  EXPECT_NEAR(a.Estimate(), 6000, 6000 * 3 * a.StandardError());
  HyperLogLog other(8);
  a.Merge(other);  // different precision: no-op
  EXPECT_EQ(a.Estimate(), both.Estimate());
  a.Clear();
  EXPECT_EQ(a.Estimate(), 0);
}

}  // namespace
}  // namespace sluice
