// Concurrency stress: threads and forked processes hammer one shared table;
// no entity's admitted total may ever exceed its limit, and the counters
// must equal what was admitted (no lost or leaked updates).
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "ratelimit/config.h"
#include "ratelimit/limiter.h"
#include "ratelimit/testing.h"

namespace sluice {
namespace {

using testing::kT0;

// Small limits so that every level is contended and trips.
constexpr char kConfig[] = R"pb(
  level {
    name: "server"
    limit { window: "1h" max: 1300 }
  }
  level { name: "plan" }
  level {
    name: "subscription"
    limit { window: "1h" max: 700 }
  }
  level {
    name: "domain"
    limit { window: "1h" max: 400 }
  }
  level {
    name: "mailbox"
    limit { window: "1h" max: 60 }
    limit { metric: RECIPIENTS window: "1h" max: 150 }
  }
  entity { level: "plan" name: "p" }
  entity { level: "subscription" name: "s0" parent: "p" }
  entity { level: "subscription" name: "s1" parent: "p" }
  entity { level: "domain" name: "d0.example" parent: "s0" }
  entity { level: "domain" name: "d1.example" parent: "s0" }
  entity { level: "domain" name: "d2.example" parent: "s1" }
  entity { level: "domain" name: "d3.example" parent: "s1" }
)pb";

std::string Sender(int i) { return absl::StrCat("user", i % 40, "@d", i % 4, ".example"); }
std::string Sub(int i) { return (i % 4) < 2 ? "s0" : "s1"; }

struct Tally {
  std::map<std::string, uint64_t> messages;    // entity -> admitted messages
  std::map<std::string, uint64_t> recipients;  // mailbox -> admitted recipients
  void Add(const Tally& o) {
    for (auto& [k, v] : o.messages) messages[k] += v;
    for (auto& [k, v] : o.recipients) recipients[k] += v;
  }
};

// Runs `n` requests; time advances slowly so sub-bucket boundaries are
// crossed while other workers are mid-flight. Some requests go through the
// reservation path and some are released.
void Work(Limiter& l, int seed, int n, Tally* t) {
  std::mt19937 rng(seed);
  for (int i = 0; i < n; ++i) {
    int who = static_cast<int>(rng() % 160);
    std::string sender = Sender(who);
    Request r;
    r.sender = sender;
    r.recipients = 1 + rng() % 3;
    // 0..59 minutes: every request stays in one window-length.
    absl::Time now = kT0 + absl::Milliseconds(static_cast<int64_t>(i) * 3600000 / (n + 1));
    bool admitted;
    if (rng() % 4 == 0) {
      std::string q = absl::StrCat("Q", seed, "-", i);
      admitted = l.Reserve(q, "rcpt", r, now).admitted();
      if (admitted && rng() % 2 == 0) {
        l.Release(q, now);
        admitted = false;
      } else if (admitted) {
        admitted = l.Commit(q, 0, now).admitted();
      }
    } else {
      admitted = l.CheckAndCharge(r, now).admitted();
    }
    if (!admitted) continue;
    t->messages["server"]++;
    t->messages[Sub(who)]++;
    t->messages[absl::StrCat("d", who % 4, ".example")]++;
    t->messages[sender]++;
    t->recipients[sender] += r.recipients;
  }
}

void CheckTally(const Tally& t, Limiter& l) {
  const absl::Time end = kT0 + absl::Minutes(59);
  EXPECT_EQ(t.messages.at("server"), l.Usage(Level::kServer, "", end).rule(0).usage());
  EXPECT_LE(t.messages.at("server"), 1300u);
  for (auto& [entity, n] : t.messages) {
    if (entity == "server") continue;
    if (entity[0] == 's') {
      EXPECT_LE(n, 700u) << entity;
      EXPECT_EQ(n, l.Usage(Level::kSubscription, entity, end).rule(0).usage()) << entity;
    } else if (entity[0] == 'd') {
      EXPECT_LE(n, 400u) << entity;
      EXPECT_EQ(n, l.Usage(Level::kDomain, entity, end).rule(0).usage()) << entity;
    } else {
      EXPECT_LE(n, 60u) << entity;
      auto u = l.Usage(Level::kMailbox, entity, end);
      EXPECT_EQ(n, u.rule(0).usage()) << entity;
      EXPECT_EQ(t.recipients.at(entity), u.rule(1).usage()) << entity;
      EXPECT_LE(t.recipients.at(entity), 150u) << entity;
    }
  }
  // The limits really were contended: something tripped at every level.
  EXPECT_EQ(t.messages.at("server"), 1300u);
}

std::unique_ptr<Limiter> Open(const std::string& path) {
  return testing::MakeLimiter(kConfig, path);
}

int Iterations() {
  const char* san = getenv("SLUICE_SANITIZER");
  return san != nullptr && std::string(san) == "tsan" ? 6000 : 20000;
}

TEST(LimiterConcurrencyTest, ThreadsNeverOvershoot) {
  auto l = Open("");
  const int kThreads = 4;
  std::vector<Tally> tallies(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] { Work(*l, 100 + i, Iterations(), &tallies[i]); });
  }
  for (auto& t : threads) t.join();
  Tally total;
  for (auto& t : tallies) total.Add(t);
  CheckTally(total, *l);
}

TEST(LimiterConcurrencyTest, ForkedProcessesOnOneFileNeverOvershoot) {
  std::string path = testing::TempPath("shared.tbl");
  { auto creator = Open(path); }  // create the file once
  const int kProcs = 4;
  std::vector<int> fds;
  std::vector<pid_t> pids;
  for (int p = 0; p < kProcs; ++p) {
    int fd[2];
    ASSERT_EQ(pipe(fd), 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(fd[0]);
      auto l = Open(path);
      Tally t;
      // Two threads per process as well.
      Tally t2;
      std::thread th([&] { Work(*l, 900 + p, Iterations() / 2, &t2); });
      Work(*l, 200 + p, Iterations() / 2, &t);
      th.join();
      t.Add(t2);
      std::string out;
      for (auto& [k, v] : t.messages) absl::StrAppend(&out, "m ", k, " ", v, "\n");
      for (auto& [k, v] : t.recipients) absl::StrAppend(&out, "r ", k, " ", v, "\n");
      size_t off = 0;
      while (off < out.size()) {
        ssize_t w = write(fd[1], out.data() + off, out.size() - off);
        if (w <= 0) _exit(3);
        off += static_cast<size_t>(w);
      }
      close(fd[1]);
      _exit(0);
    }
    close(fd[1]);
    fds.push_back(fd[0]);
    pids.push_back(pid);
  }
  Tally total;
  for (int p = 0; p < kProcs; ++p) {
    std::string data;
    char buf[4096];
    ssize_t n;
    while ((n = read(fds[p], buf, sizeof(buf))) > 0) data.append(buf, static_cast<size_t>(n));
    close(fds[p]);
    int status = 0;
    ASSERT_EQ(waitpid(pids[p], &status, 0), pids[p]);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    Tally t;
    for (absl::string_view line : absl::StrSplit(data, '\n', absl::SkipEmpty())) {
      std::vector<std::string> f = absl::StrSplit(line, ' ');
      ASSERT_EQ(f.size(), 3u);
      uint64_t v = std::stoull(f[2]);
      (f[0] == "m" ? t.messages : t.recipients)[f[1]] += v;
    }
    total.Add(t);
  }
  auto l = Open(path);
  CheckTally(total, *l);
}

}  // namespace
}  // namespace sluice

namespace sluice {
namespace {

// Large limits switch on per-thread leases; they must not overshoot either,
// and what they hold back (leased, unused) stays small.
TEST(LimiterConcurrencyTest, LeasedCountersNeverOvershoot) {
  auto made = testing::MakeLimiter(R"pb(
    level {
      name: "server"
      limit { window: "1h" max: 10000 }
    }
    level {
      name: "domain"
      limit { window: "1h" max: 4096 }
    }
  )pb");
  ASSERT_NE(made, nullptr);
  Limiter& l = *made;
  const int kThreads = 4;
  std::vector<std::map<std::string, uint64_t>> admitted(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      for (int i = 0; i < Iterations(); ++i) {
        std::string sender = absl::StrCat("u", rng() % 50, "@d", rng() % 4, ".example");
        Request r;
        r.sender = sender;
        absl::Time now = kT0 + absl::Milliseconds(int64_t{i} * 100);
        if (l.CheckAndCharge(r, now).admitted()) {
          admitted[t]["server"]++;
          admitted[t][sender.substr(sender.find('@') + 1)]++;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  std::map<std::string, uint64_t> total;
  for (auto& m : admitted) {
    for (auto& [k, v] : m) total[k] += v;
  }
  const absl::Time end = kT0 + absl::Minutes(50);
  EXPECT_LE(total["server"], 10000u);
  EXPECT_GE(total["server"], 9000u);  // leases hold back little
  uint64_t usage = l.Usage(Level::kServer, "", end).rule(0).usage();
  EXPECT_GE(usage, total["server"]);
  EXPECT_LE(usage, total["server"] + kThreads * 64);
  for (int d = 0; d < 4; ++d) {
    std::string dom = absl::StrCat("d", d, ".example");
    EXPECT_LE(total[dom], 4096u) << dom;
    EXPECT_GE(l.Usage(Level::kDomain, dom, end).rule(0).usage(), total[dom]) << dom;
  }
}

}  // namespace
}  // namespace sluice
