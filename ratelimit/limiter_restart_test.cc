// Counts survive kill -9 of the process that owns a file-backed table, and
// a restart never hands a spammer a fresh quota.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "ratelimit/config.h"
#include "ratelimit/limiter.h"
#include "ratelimit/testing.h"

namespace sluice {
namespace {

using testing::kT0;
using testing::TempPath;

std::unique_ptr<Limiter> Open(const std::string& path) {
  return testing::MakeLimiter(R"pb(
                                level {
                                  name: "server"
                                  limit { window: "1h" max: 100000 }
                                }
                                level {
                                  name: "mailbox"
                                  limit { window: "1h" max: 50 }
                                }
                              )pb",
                              path);
}

Request Msg(const char* sender) {
  Request r;
  r.sender = sender;
  return r;
}

// The child charges `n` messages (n < 0: until killed), reporting each
// admitted one with a byte on the pipe, then waits to be killed.
pid_t SpawnSender(const std::string& path, int n, int* read_fd) {
  int fd[2];
  EXPECT_EQ(pipe(fd), 0);
  pid_t pid = fork();
  if (pid == 0) {
    close(fd[0]);
    auto l = Open(path);
    for (int i = 0; n < 0 || i < n; ++i) {
      if (l->CheckAndCharge(Msg("spammer@x.example"), kT0 + absl::Seconds(i % 60)).admitted()) {
        if (write(fd[1], "+", 1) != 1) _exit(2);
      } else if (n < 0) {
        if (write(fd[1], "-", 1) != 1) _exit(2);
      }
    }
    if (write(fd[1], "!", 1) != 1) _exit(2);
    for (;;) pause();
  }
  close(fd[1]);
  *read_fd = fd[0];
  return pid;
}

TEST(LimiterRestartTest, CountsSurviveKill9) {
  std::string path = TempPath("restart.tbl");
  int fd;
  pid_t pid = SpawnSender(path, 37, &fd);
  int admitted = 0;
  char c;
  while (read(fd, &c, 1) == 1 && c != '!') admitted += c == '+';
  ASSERT_EQ(admitted, 37);
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  int status;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status));
  close(fd);

  auto l = Open(path);  // the "restarted MTA"
  EXPECT_EQ(l->Usage(Level::kMailbox, "spammer@x.example", kT0 + absl::Minutes(1)).rule(0).usage(),
            37u);
  int more = 0;
  while (more < 100 &&
         l->CheckAndCharge(Msg("spammer@x.example"), kT0 + absl::Minutes(1)).admitted()) {
    ++more;
  }
  EXPECT_EQ(more, 13);
}

TEST(LimiterRestartTest, KilledMidStreamLosesNothingAcknowledged) {
  std::string path = TempPath("midstream.tbl");
  int fd;
  pid_t pid = SpawnSender(path, -1, &fd);
  int admitted = 0, seen = 0;
  char c;
  // Kill it somewhere in the middle of its traffic.
  while (seen < 20 && read(fd, &c, 1) == 1) {
    ++seen;
    admitted += c == '+';
  }
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  int status;
  waitpid(pid, &status, 0);
  while (read(fd, &c, 1) == 1) admitted += c == '+';
  close(fd);
  auto l = Open(path);
  uint64_t usage =
      l->Usage(Level::kMailbox, "spammer@x.example", kT0 + absl::Minutes(1)).rule(0).usage();
  // Every acknowledged admission is counted; at most one was in flight.
  EXPECT_GE(usage, static_cast<uint64_t>(admitted));
  EXPECT_LE(usage, static_cast<uint64_t>(admitted) + 1);
  EXPECT_LE(usage, 50u);
}

TEST(LimiterRestartTest, RestartedLimiterKeepsDenying) {
  std::string path = TempPath("deny.tbl");
  {
    auto l = Open(path);
    for (int i = 0; i < 60; ++i) l->CheckAndCharge(Msg("s@x.example"), kT0);
  }
  auto l = Open(path);
  Decision d = l->CheckAndCharge(Msg("s@x.example"), kT0 + absl::Minutes(5));
  EXPECT_FALSE(d.admitted());
  EXPECT_EQ(d.usage, 50u);
}

}  // namespace
}  // namespace sluice
