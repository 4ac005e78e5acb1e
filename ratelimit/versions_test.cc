#include "ratelimit/versions.h"

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace sluice {
namespace {

// A version that says when it is freed, and checks it is never read after.
struct Tracked {
  explicit Tracked(int v, std::atomic<int>* freed) : value(v), freed(freed) {}
  ~Tracked() {
    alive = false;
    freed->fetch_add(1);
  }
  int value;
  std::atomic<int>* freed;
  std::atomic<bool> alive{true};
};

const absl::Time kT0 = absl::FromUnixSeconds(1700000000);

TEST(VersionsTest, ASectionKeepsItsVersionUntilItEnds) {
  std::atomic<int> freed{0};
  Versions<Tracked> v;
  v.Publish(std::make_unique<Tracked>(1, &freed), kT0);
  {
    auto held = v.Read();
    EXPECT_EQ(held->value, 1);
    v.Publish(std::make_unique<Tracked>(2, &freed), kT0);
    EXPECT_EQ(v.Read()->value, 2);  // new sections see the new one
    EXPECT_EQ(v.Collect(), 1u);     // version 1 is still held
    EXPECT_EQ(freed.load(), 0);
    EXPECT_TRUE(held->alive);
  }
  EXPECT_EQ(v.Collect(), 0u);  // the section ended: freed
  EXPECT_EQ(freed.load(), 1);
}

TEST(VersionsTest, ManyReplacementsStayBounded) {
  std::atomic<int> freed{0};
  Versions<Tracked> v;
  for (int i = 0; i < 100; ++i) {
    v.Publish(std::make_unique<Tracked>(i, &freed), kT0);
    auto h = v.Read();
    EXPECT_EQ(h->value, i);
    EXPECT_LE(v.Collect(), 2u);
  }
  v.Collect();
  EXPECT_EQ(v.retired(), 0u);
  EXPECT_EQ(freed.load(), 99);
}

TEST(VersionsTest, WithoutSectionsAGraceDecides) {
  std::atomic<int> freed{0};
  Versions<Tracked> v;
  v.Publish(std::make_unique<Tracked>(1, &freed), kT0);
  v.Publish(std::make_unique<Tracked>(2, &freed), kT0 + absl::Seconds(10));
  EXPECT_EQ(v.CollectOlderThan(kT0 + absl::Seconds(30), absl::Seconds(60)), 1u);
  EXPECT_EQ(freed.load(), 0);
  EXPECT_EQ(v.CollectOlderThan(kT0 + absl::Seconds(71), absl::Seconds(60)), 0u);
  EXPECT_EQ(freed.load(), 1);
  EXPECT_EQ(v.current()->value, 2);
}

// Readers on several threads while a writer replaces and collects: no
// reader ever sees a freed version (ASan/TSan would also say so), and
// everything retired is freed at the end.
TEST(VersionsTest, ConcurrentReadersNeverSeeAFreedVersion) {
  std::atomic<int> freed{0};
  Versions<Tracked> v;
  v.Publish(std::make_unique<Tracked>(0, &freed), kT0);
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&] {
      for (int i = 0; i < 200000 && !stop.load(); ++i) {
        auto h = v.Read();
        if (!h->alive.load() || h->value < 0) bad.fetch_add(1);
      }
    });
  }
  for (int i = 1; i <= 2000; ++i) {
    v.Publish(std::make_unique<Tracked>(i, &freed), kT0);
    v.Collect();
  }
  stop = true;
  for (auto& t : readers) t.join();
  for (int i = 0; i < 3; ++i) v.Collect();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(v.retired(), 0u);
  EXPECT_EQ(freed.load(), 2000);
}

}  // namespace
}  // namespace sluice
