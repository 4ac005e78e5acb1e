#include "reputation/score_board.h"

#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace sluice {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1700000000);

TEST(ScoreBoardTest, DecaysWithTheHalfLife) {
  ScoreBoard::Options o;
  o.half_life = absl::Minutes(30);
  ScoreBoard b(o);
  EXPECT_DOUBLE_EQ(b.Add("192.0.2.1", 8, kT0), 8);
  EXPECT_DOUBLE_EQ(b.Get("192.0.2.1", kT0 + absl::Minutes(30)), 4);
  EXPECT_DOUBLE_EQ(b.Get("192.0.2.1", kT0 + absl::Minutes(60)), 2);
  EXPECT_DOUBLE_EQ(b.Add("192.0.2.1", 1, kT0 + absl::Minutes(60)), 3);
  EXPECT_DOUBLE_EQ(b.Get("unknown", kT0), 0);
  // Good signs weigh negative.
  EXPECT_DOUBLE_EQ(b.Add("192.0.2.1", -3, kT0 + absl::Minutes(60)), 0);
  EXPECT_DOUBLE_EQ(b.Add("x", std::nan(""), kT0), 0);
}

TEST(ScoreBoardTest, BoundedKeysDropTheLeastImportant) {
  ScoreBoard::Options o;
  o.max_keys = 64;
  ScoreBoard b(o);
  b.Add("heavy", 100, kT0);
  for (int i = 0; i < 10000; ++i) b.Add(absl::StrCat("k", i), 1, kT0);
  EXPECT_LE(b.size(), 64u);
  EXPECT_DOUBLE_EQ(b.Get("heavy", kT0), 100);
}

// A large board under a flood of new keys: still bounded, heavy keys kept.
TEST(ScoreBoardTest, LargeBoardUnderAFloodKeepsItsHeavyKeys) {
  ScoreBoard::Options o;
  o.max_keys = 16384;
  ScoreBoard b(o);
  for (int i = 0; i < 50; ++i) b.Add(absl::StrCat("heavy", i), 100, kT0);
  for (int i = 0; i < 200000; ++i) b.Add(absl::StrCat("k", i), 1, kT0);
  EXPECT_LE(b.size(), 16384u);
  for (int i = 0; i < 50; ++i) EXPECT_DOUBLE_EQ(b.Get(absl::StrCat("heavy", i), kT0), 100) << i;
}

TEST(ScoreBoardTest, ConcurrentAddsSumUp) {
  ScoreBoard b;
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) b.Add("shared", 1, kT0);
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_DOUBLE_EQ(b.Get("shared", kT0), 4000);
}

}  // namespace
}  // namespace sluice
