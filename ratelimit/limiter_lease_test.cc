// Leases (a thread's units taken in advance on a busy counter) never show
// as usage and never go missing: reports show admitted counts; a process
// or thread that ends cleanly gives its leases back; a process killed with
// -9 loses at most one lease (64 units) per thread and counter.
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "ratelimit/config.h"
#include "ratelimit/limiter.h"
#include "ratelimit/testing.h"

namespace sluice {
namespace {

using testing::kT0;
using testing::TempPath;

constexpr char kConfig[] = R"pb(
  level {
    name: "server"
    limit { window: "1h" max: 100000 }
  }
)pb";

Request Msg(const char* sender) {
  Request r;
  r.sender = sender;
  return r;
}

uint64_t ServerUsage(Limiter& l) { return l.Usage(Level::kServer, "", kT0).rule(0).usage(); }

// Ten processes share one table, each charging twice (the second charge
// takes a lease) and ending cleanly: the usage is exactly 20.
TEST(LimiterLeaseTest, ForkedProcessesGiveTheirLeasesBack) {
  const std::string path = TempPath("lease_fork.tbl");
  { auto init = testing::MakeLimiter(kConfig, path); }
  for (int c = 0; c < 10; ++c) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      int bad = 0;
      {
        auto l = testing::MakeLimiter(kConfig, path);
        for (int i = 0; i < 2; ++i) bad += !l->CheckAndCharge(Msg("a@x.example"), kT0).admitted();
      }
      _exit(bad);
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  auto l = testing::MakeLimiter(kConfig, path);
  EXPECT_EQ(ServerUsage(*l), 20u);
}

// A process killed without its destructors loses its leases, at most one
// lease (64 units) per thread and counter: bounded, as documented.
TEST(LimiterLeaseTest, KilledProcessLosesAtMostOneLease) {
  const std::string path = TempPath("lease_kill.tbl");
  { auto init = testing::MakeLimiter(kConfig, path); }
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto l = testing::MakeLimiter(kConfig, path);
    for (int i = 0; i < 2; ++i) l->CheckAndCharge(Msg("a@x.example"), kT0);
    _exit(0);  // no destructors: as if killed
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  auto l = testing::MakeLimiter(kConfig, path);
  EXPECT_GE(ServerUsage(*l), 2u);
  EXPECT_LE(ServerUsage(*l), 2u + 64u);
}

// Inside one process, reports leave out what threads hold in leases, and a
// thread that ends gives its leases back.
TEST(LimiterLeaseTest, ReportsShowAdmittedCountsAndThreadsGiveBack) {
  auto l = testing::MakeLimiter(kConfig);
  std::thread t([&] {
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(l->CheckAndCharge(Msg("a@x.example"), kT0).admitted());
    EXPECT_EQ(ServerUsage(*l), 5u);  // while this thread holds a lease
  });
  t.join();
  EXPECT_EQ(ServerUsage(*l), 5u);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(l->CheckAndCharge(Msg("a@x.example"), kT0).admitted());
  EXPECT_EQ(ServerUsage(*l), 8u);
}

// A reload from another thread (a daemon's admin thread): the workers'
// leases, taken under the old rules, are never spent under the new ones;
// reports stay exact meanwhile, and a worker gives its old lease back when
// it next charges that counter.
TEST(LimiterLeaseTest, ReloadRetiresOtherThreadsLeases) {
  auto l = testing::MakeLimiter(kConfig);
  std::promise<void> charged, reloaded;
  std::thread t([&] {
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(l->CheckAndCharge(Msg("a@x.example"), kT0).admitted());
    charged.set_value();
    reloaded.get_future().wait();
    EXPECT_EQ(ServerUsage(*l), 5u);  // its old lease is still not usage
    ASSERT_TRUE(l->CheckAndCharge(Msg("a@x.example"), kT0).admitted());
    EXPECT_EQ(ServerUsage(*l), 6u);
  });
  charged.get_future().wait();
  auto c = ParseConfigText(kConfig);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(l->Reload(*c).ok());
  EXPECT_EQ(ServerUsage(*l), 5u);
  reloaded.set_value();
  t.join();
  EXPECT_EQ(ServerUsage(*l), 6u);
}

// GCRA counters take leases too (a burst of 5000: leases of 4 units while
// the arrival time is less than half the tolerance ahead). Two threads
// against one burst at one instant: exactly the burst passes, reports
// leave out the units a thread still holds, and nothing is lost when the
// threads end.
TEST(LimiterLeaseTest, GcraLeasesAdmitExactlyTheBurst) {
  auto l = testing::MakeLimiter(R"pb(
    level {
      name: "server"
      limit { algorithm: GCRA window: "1d" max: 5000 burst: 5000 }
    }
  )pb");
  ASSERT_NE(l, nullptr);
  std::atomic<int> admitted{0};
  auto work = [&] {
    for (int i = 0; i < 4000; ++i)
      admitted += l->CheckAndCharge(Msg("a@x.example"), kT0).admitted();
  };
  std::thread a(work), b(work);
  a.join();
  b.join();
  EXPECT_EQ(admitted.load(), 5000);
  EXPECT_EQ(ServerUsage(*l), 5000u);
  // A thread that charged a few and holds a lease: reports show what passed.
  auto m = testing::MakeLimiter(R"pb(
    level {
      name: "server"
      limit { algorithm: GCRA window: "1d" max: 100000 burst: 100000 }
    }
  )pb");
  std::thread t([&] {
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(m->CheckAndCharge(Msg("a@x.example"), kT0).admitted());
    EXPECT_EQ(ServerUsage(*m), 5u);
  });
  t.join();
  EXPECT_EQ(ServerUsage(*m), 5u);  // the thread's unspent units went back
}

}  // namespace
}  // namespace sluice
