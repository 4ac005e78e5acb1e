#include "bindings/logs/log_follower.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "ratelimit/testing.h"

namespace sluice {
namespace {

using testing::TempPath;

void Append(const std::string& path, const std::string& text) {
  FILE* f = std::fopen(path.c_str(), "a");
  ASSERT_NE(f, nullptr);
  std::fwrite(text.data(), 1, text.size(), f);
  std::fclose(f);
}

std::vector<std::string> Poll(LogFollower& f) {
  std::vector<std::string> got;
  f.Poll([&](absl::string_view l) { got.emplace_back(l); });
  return got;
}

std::unique_ptr<LogFollower> Follow(const std::string& path, const std::string& state = "",
                                    bool from_start = false) {
  LogFollower::Options o;
  o.path = path;
  o.state_path = state;
  o.from_start = from_start;
  o.max_line = 100;
  auto f = LogFollower::Open(o);
  EXPECT_TRUE(f.ok()) << f.status();
  return std::move(*f);
}

using Lines = std::vector<std::string>;

TEST(LogFollowerTest, ReadsWhatIsAppendedNotTheHistory) {
  const std::string p = TempPath("mail.log");
  Append(p, "old 1\nold 2\n");
  auto f = Follow(p);
  EXPECT_EQ(Poll(*f), Lines{});
  Append(p, "new 1\nnew 2\nhal");
  EXPECT_EQ(Poll(*f), (Lines{"new 1", "new 2"}));
  Append(p, "f done\n");
  EXPECT_EQ(Poll(*f), Lines{"half done"});
  auto all = Follow(p, "", /*from_start=*/true);
  EXPECT_EQ(Poll(*all).size(), 5u);
}

TEST(LogFollowerTest, FollowsRotationAndTruncation) {
  const std::string p = TempPath("rot.log");
  Append(p, "");
  auto f = Follow(p);
  Append(p, "a\n");
  EXPECT_EQ(Poll(*f), Lines{"a"});
  // logrotate: the old file renamed (and written once more), a new one.
  Append(p, "b\n");
  ASSERT_EQ(std::rename(p.c_str(), (p + ".1").c_str()), 0);
  Append(p + ".1", "c\n");
  Append(p, "d\n");
  EXPECT_EQ(Poll(*f), (Lines{"b", "c", "d"}));
  EXPECT_EQ(f->stats().rotations, 1u);
  // copytruncate: the same file, emptied, written again.
  ASSERT_EQ(truncate(p.c_str(), 0), 0);
  Append(p, "e\n");
  EXPECT_EQ(Poll(*f), Lines{"e"});
  EXPECT_EQ(f->stats().truncations, 1u);
}

TEST(LogFollowerTest, ResumesWhereItStoppedWithoutLossOrRepeat) {
  const std::string p = TempPath("state.log");
  const std::string s = TempPath("state.pos");
  Append(p, "");
  {
    auto f = Follow(p, s);
    Append(p, "1\n2\npart");
    EXPECT_EQ(Poll(*f), (Lines{"1", "2"}));
    ASSERT_TRUE(f->SaveState().ok());
  }
  Append(p, "ial\n3\n");  // written while the daemon was down
  auto again = Follow(p, s);
  EXPECT_EQ(Poll(*again), (Lines{"partial", "3"}));
  // A state file for another file (rotated while down): the new file whole.
  ASSERT_EQ(std::rename(p.c_str(), (p + ".1").c_str()), 0);
  Append(p, "4\n");
  auto rotated = Follow(p, s);
  EXPECT_EQ(Poll(*rotated), Lines{"4"});
}

TEST(LogFollowerTest, CutsOverlongLinesAndWaitsForAFileToAppear) {
  const std::string p = TempPath("late.log");
  auto f = Follow(p);  // not there yet
  EXPECT_EQ(Poll(*f), Lines{});
  Append(p, std::string(250, 'x') + "\nshort\n" + std::string(120, 'y'));
  Append(p, std::string(30, 'y') + "\n");
  Lines got = Poll(*f);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0], std::string(100, 'x'));
  EXPECT_EQ(got[1], "short");
  EXPECT_EQ(got[2], std::string(100, 'y'));
  EXPECT_EQ(f->stats().cut, 2u);
}

TEST(LogFollowerTest, AStreamLikeJournalctlPipedIn) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  LogFollower::Options o;
  o.path = "-";
  o.stream_fd = fds[0];
  auto f = std::move(*LogFollower::Open(o));
  const std::string text = "x1\nx2\nx";
  ASSERT_EQ(write(fds[1], text.data(), text.size()), static_cast<ssize_t>(text.size()));
  Lines got;
  f->Poll([&](absl::string_view l) { got.emplace_back(l); }, 100);
  EXPECT_EQ(got, (Lines{"x1", "x2"}));
  close(fds[1]);
  EXPECT_EQ(f->Poll([&](absl::string_view) {}, 10), 0u);  // closed: nothing, no hang
  close(fds[0]);
}

}  // namespace
}  // namespace sluice
