#include "ratelimit/cluster/cluster_sync.h"

#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "ratelimit/limiter.h"
#include "ratelimit/testing.h"

namespace sluice {
namespace {

using testing::kT0;
using testing::MakeLimiter;

// The store is in-memory and shared by the "hosts" of a test; each host
// has its own limiter (its own table) and ClusterSync, as on a farm.
class SharedStore : public ClusterStore {
 public:
  explicit SharedStore(MemoryStore* m) : m_(m) {}
  void Run(const std::vector<SyncOp*>& ops) override { m_->Run(ops); }
  bool Ping() override { return m_->Ping(); }

 private:
  MemoryStore* m_;
};

constexpr char kConfig[] = R"pb(
  level {
    name: "subscription"
    limit { metric: MESSAGES window: "1h" max: 1000 }
  }
  level { name: "domain" }
  level {
    name: "mailbox"
    limit { metric: MESSAGES window: "1h" max: 400 }
  }
  entity { level: "domain" name: "acme.example" parent: "acme" }
  entity { level: "subscription" name: "acme" }
  cluster { server: "127.0.0.1:1" hosts: 3 shared_level: "subscription" }
)pb";

struct Host {
  std::unique_ptr<ClusterSync> sync;
  std::unique_ptr<Limiter> limiter;
};

Host MakeHost(MemoryStore* store, int i, double first_use = -1) {
  Host h;
  ClusterSync::Options o;
  o.hosts = 3;
  o.host_name = "relay" + std::to_string(i);
  o.first_use_share = first_use;
  h.sync = std::make_unique<ClusterSync>(std::make_unique<SharedStore>(store), o, kT0);
  Limiter::Options lo;
  lo.shared = h.sync.get();
  h.limiter = MakeLimiter(kConfig, "", lo);
  return h;
}

// REQUIRES: `sender` outlives the request.
Request From(absl::string_view sender) {
  Request r;
  r.sender = sender;
  return r;
}

TEST(ClusterSyncTest, ThreeHostsShareASubscriptionLimit) {
  MemoryStore store;
  std::vector<Host> hosts;
  for (int i = 0; i < 3; ++i) hosts.push_back(MakeHost(&store, i));
  std::mt19937_64 rng(11);
  uint64_t admitted = 0;
  int shared_trips = 0;
  absl::Time t = kT0;
  for (int i = 0; i < 5000; ++i, t += absl::Milliseconds(4)) {
    for (int h = 0; h < 3; ++h) {
      if (i % 50 == 17 * h % 50) hosts[h].sync->SyncOnce(absl::ToUnixMillis(t));
    }
    const int h = static_cast<int>(rng() % 3);
    // Twenty mailboxes: the mailbox limit (400, per host) is never the one.
    Decision d = hosts[h].limiter->CheckAndCharge(
        From("user" + std::to_string(rng() % 20) + "@acme.example"), t);
    if (d.admitted()) {
      ++admitted;
    } else if (d.level == Level::kSubscription) {
      ++shared_trips;
      EXPECT_EQ(d.action, Action::kDefer);
      EXPECT_GT(d.retry_after, absl::ZeroDuration());
    }
  }
  // F = 1000 / 60 = 16 per host.
  EXPECT_LE(admitted, 1000u + 3 * 16);
  EXPECT_GE(admitted, 950u);
  EXPECT_GT(shared_trips, 3000);
  // Each host counted only its own in its table; explain shows both.
  config::UsageReport r = hosts[0].limiter->Usage(Level::kSubscription, "acme", t);
  ASSERT_EQ(r.rule_size(), 1);
  EXPECT_TRUE(r.rule(0).shared());
  EXPECT_LT(r.rule(0).usage(), 700u);
  EXPECT_GE(r.rule(0).global_usage(), 900u);
  // The mailbox level stays local.
  config::UsageReport m = hosts[0].limiter->Usage(Level::kMailbox, "user1@acme.example", t);
  ASSERT_EQ(m.rule_size(), 1);
  EXPECT_FALSE(m.rule(0).shared());
}

TEST(ClusterSyncTest, ARefusalElsewhereGivesTheSharedUnitBack) {
  MemoryStore store;
  Host h = MakeHost(&store, 0, /*first_use=*/0);
  Request r = From("a@acme.example");
  // No lease yet, no first use: refused by the shared subscription, and
  // nothing stays counted locally.
  Decision d = h.limiter->CheckAndCharge(r, kT0);
  EXPECT_EQ(h.sync->stats(kT0).counters, 1u);
  EXPECT_EQ(h.sync->stats(kT0).fallback_admits, 0u);
  EXPECT_EQ(h.sync->stats(kT0).table_full, 0u);
  EXPECT_FALSE(d.admitted());
  EXPECT_EQ(d.level, Level::kSubscription);
  EXPECT_EQ(h.limiter->Usage(Level::kMailbox, "a@acme.example", kT0).rule(0).usage(), 0u);
  ASSERT_TRUE(h.sync->SyncOnce(absl::ToUnixMillis(kT0)));
  EXPECT_TRUE(h.limiter->CheckAndCharge(r, kT0).admitted());
  // A reservation released gives its unit back into the lease: the lease
  // (ceil(1000 / 12) = 84, one spent) then holds 83 reservations, not 82.
  const absl::Time t = kT0 + absl::Milliseconds(10);
  ASSERT_TRUE(h.limiter->Reserve("q1", "rcpt1", r, t).admitted());
  h.limiter->Release("q1", t);
  int more = 0;
  while (more < 200 && h.limiter->Reserve(absl::StrCat("q", 2 + more), "rcpt1", r, t).admitted()) {
    ++more;
  }
  EXPECT_EQ(more, 83);
}

TEST(ClusterSyncTest, RedisAwayMeansEachHostsShareOfItsOwnWindow) {
  MemoryStore store;
  Host h = MakeHost(&store, 0, /*first_use=*/0);
  store.set_down(true);
  absl::Time t = kT0;
  EXPECT_FALSE(h.sync->SyncOnce(absl::ToUnixMillis(t)));
  EXPECT_TRUE(h.sync->stats(t).fallback);
  int admitted = 0;
  for (int i = 0; i < 1000; ++i, t += absl::Milliseconds(1)) {
    const std::string sender = "u" + std::to_string(i % 10) + "@acme.example";
    if (h.limiter->CheckAndCharge(From(sender), t).admitted()) {
      ++admitted;
    }
  }
  EXPECT_EQ(admitted, 334);  // ceil(1000 / 3)
  EXPECT_EQ(h.sync->stats(t).fallback_admits, 334u);
  // Redis returns: the next round counts what was admitted, once.
  store.set_down(false);
  ASSERT_TRUE(h.sync->SyncOnce(absl::ToUnixMillis(t)));
  EXPECT_FALSE(h.sync->stats(t).fallback);
  const int64_t k = absl::ToUnixMillis(t) / 600000;
  EXPECT_GE(store.Sum("sluice:{subscription:acme}:messages:3600", k - 7, k + 2), 334u);
  ASSERT_TRUE(h.sync->SyncOnce(absl::ToUnixMillis(t) + 1000));
  EXPECT_EQ(h.sync->stats(t).fallback_admits, 334u);
}

TEST(ClusterSyncTest, AStalledLoopIsAFaultWithinTheFaultTime) {
  MemoryStore store;
  Host h = MakeHost(&store, 0);
  ASSERT_TRUE(h.sync->SyncOnce(absl::ToUnixMillis(kT0)));
  EXPECT_FALSE(h.sync->stats(kT0 + absl::Milliseconds(450)).fallback);
  EXPECT_TRUE(h.sync->stats(kT0 + absl::Milliseconds(451)).fallback);  // 2 * 200 + 50
}

TEST(ClusterSyncTest, AFullTableFallsBackToTheShareOfEachNewCounter) {
  MemoryStore store;
  ClusterSync::Options o;
  o.hosts = 2;
  o.max_counters = 1;
  ClusterSync sync(std::make_unique<SharedStore>(&store), o, kT0);
  SharedLimits::Key a{1, Level::kMailbox, "a", Metric::kMessages, 3600, 600, 10};
  SharedLimits::Key b{2, Level::kMailbox, "b", Metric::kMessages, 3600, 600, 10};
  EXPECT_NE(sync.Admit(a, 1, 1, kT0), 0u);  // first use
  EXPECT_NE(sync.Admit(b, 1, 5, kT0), 0u);  // no room for b's counter: within its share
  EXPECT_EQ(sync.Admit(b, 1, 6, kT0), 0u);
  EXPECT_EQ(sync.stats(kT0).counters, 1u);
  EXPECT_EQ(sync.stats(kT0).table_full, 2u);
}

TEST(ClusterSyncTest, TheLoopRunsOnItsOwnThreadWhileRequestsCome) {
  MemoryStore store;
  ClusterSync::Options o;
  o.hosts = 1;
  o.interval = absl::Milliseconds(5);
  auto sync = std::make_unique<ClusterSync>(std::make_unique<SharedStore>(&store), o, absl::Now());
  Limiter::Options lo;
  lo.shared = sync.get();
  auto limiter = MakeLimiter(kConfig, "", lo);
  sync->Start();
  std::vector<std::thread> threads;
  std::atomic<int> admitted{0};
  for (int i = 0; i < 2; ++i) {
    threads.emplace_back([&, i] {
      for (int j = 0; j < 3000; ++j) {
        const std::string sender =
            "t" + std::to_string(i) + "x" + std::to_string(j % 30) + "@acme.example";
        Request r = From(sender);
        if (limiter->CheckAndCharge(r, absl::Now()).admitted()) admitted.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_LE(admitted.load(), 1000 + 50);
  // The requests may all be done before the first round (5 ms) is due: wait
  // for it, bounded to 400 intervals.
  for (int i = 0; i < 400 && sync->stats(absl::Now()).rounds == 0; ++i) {
    absl::SleepFor(o.interval);
  }
  EXPECT_GT(sync->stats(absl::Now()).rounds, 0u);
  sync.reset();  // stops the loop first
}

}  // namespace
}  // namespace sluice
