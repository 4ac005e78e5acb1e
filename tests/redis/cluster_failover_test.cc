// Three hosts (each its own limiter, table and ClusterSync with a
// RedisStore) share 20 subscription limits through a real 6-node Redis
// Cluster (3 masters, 3 replicas; started here, stopped by PID). While
// traffic runs, a master is killed: its replica takes over, the hosts fall
// back to their shares meanwhile, find the new master through CLUSTER
// SLOTS and sync again. Limits whose slots the dead master did not hold
// keep the strict bound (L + N * F) and end counted exactly in Redis;
// those it held keep the fault bound (L + N * (S + F)).
#include <atomic>
#include <cstdio>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "ratelimit/cluster/cluster_sync.h"
#include "ratelimit/cluster/redis_store.h"
#include "ratelimit/config.h"
#include "ratelimit/limiter.h"
#include "tests/testing/redis.h"

namespace sluice {
namespace {

using testing::FormCluster;
using testing::RedisServer;
using testing::TempDir;

constexpr int kSubs = 20;
constexpr uint64_t kLimit = 300;
constexpr int kHosts = 3;

std::string Config(const std::string& seed) {
  std::string c = absl::StrCat(R"pb(
                                 level { name: "subscription"
                                         limit { metric: MESSAGES window: "1h" max:)pb",
                               kLimit, R"pb(}
                                            }
    level { name: "domain" }
    cluster { redis_cluster: true hosts: 3 interval: "100ms" server: ")pb",
                               seed, "\" }\n");
  for (int i = 0; i < kSubs; ++i) {
    absl::StrAppend(&c, "entity { level: \"domain\" name: \"d", i, ".example\" parent: \"s", i,
                    "\" }\n", "entity { level: \"subscription\" name: \"s", i, "\" }\n");
  }
  return c;
}

// The sum of a counter hash's bucket fields on whichever node holds it.
uint64_t Counted(RedisServer* nodes, int n, const std::string& key) {
  for (int i = 0; i < n; ++i) {
    if (!nodes[i].running()) continue;
    const std::string all = nodes[i].Command({"HGETALL", key});
    if (all.rfind("(error)", 0) == 0 || all.empty()) continue;
    std::vector<std::string> f = absl::StrSplit(all, ' ');
    uint64_t sum = 0;
    for (size_t j = 0; j + 1 < f.size(); j += 2) {
      if (!f[j].empty() && f[j].rfind("h:", 0) != 0) sum += std::stoull(f[j + 1]);
    }
    return sum;
  }
  return 0;
}

TEST(ClusterFailoverTest, AMasterDiesWhileTrafficRuns) {
  TempDir dir;
  RedisServer nodes[6];
  for (auto& n : nodes) ASSERT_TRUE(n.Start(dir.path(), /*cluster=*/true));
  ASSERT_TRUE(FormCluster({&nodes[0], &nodes[1], &nodes[2], &nodes[3], &nodes[4], &nodes[5]}, 1));
  // Wait (bounded) until every replica is in sync, so the failover has one.
  for (int i = 0; i < 100; ++i) {
    int synced = 0;
    for (auto& n : nodes) {
      if (n.Command({"ROLE"}).find("connected") != std::string::npos) ++synced;
    }
    if (synced >= 3) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  auto cfg = ParseConfigText(Config(nodes[0].address()), "failover.conf");
  ASSERT_TRUE(cfg.ok()) << cfg.status();

  struct Host {
    std::unique_ptr<ClusterSync> sync;
    std::unique_ptr<Limiter> limiter;
  };
  std::vector<Host> hosts(kHosts);
  for (int h = 0; h < kHosts; ++h) {
    config::Cluster c = cfg->cluster();
    c.set_host_name(absl::StrCat("relay", h));
    c.set_timeout("100ms");  // a loaded test machine
    auto sync = ClusterSync::Create(c);
    ASSERT_TRUE(sync.ok()) << sync.status();
    hosts[h].sync = std::move(*sync);
    Limiter::Options lo;
    lo.shared = hosts[h].sync.get();
    lo.table.capacity = 4096;
    auto l = Limiter::Create(*cfg, absl::Now(), lo);
    ASSERT_TRUE(l.ok()) << l.status();
    hosts[h].limiter = std::move(*l);
    hosts[h].sync->Start();
  }
  // The master to kill, and which subscriptions its slots hold.
  int victim = -1;
  for (int i = 0; i < 6 && victim < 0; ++i) {
    if (nodes[i].Command({"ROLE"}).rfind("master", 0) == 0) victim = i;
  }
  ASSERT_GE(victim, 0);
  std::set<int> on_victim;
  for (int s = 0; s < kSubs; ++s) {
    const std::string key = absl::StrCat("sluice:{subscription:s", s, "}:messages:3600");
    // The victim answers for a key of its own slots; MOVED otherwise.
    if (nodes[victim].Command({"EXISTS", key}).rfind("(error) MOVED", 0) != 0) on_victim.insert(s);
  }

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> admitted[kSubs] = {};
  std::vector<std::thread> traffic;
  for (int h = 0; h < kHosts; ++h) {
    traffic.emplace_back([&, h] {
      for (int i = 0; !stop.load(); ++i) {
        const int s = (i * 7 + h) % kSubs;
        const std::string sender = absl::StrCat("u", i % 10, "@d", s, ".example");
        Request r;
        r.sender = sender;
        if (hosts[h].limiter->CheckAndCharge(r, absl::Now()).admitted()) admitted[s].fetch_add(1);
        absl::SleepFor(absl::Milliseconds(2));
      }
    });
  }
  absl::SleepFor(absl::Seconds(2));
  nodes[victim].Kill();
  // The replica takes over after cluster-node-timeout (1 s); the hosts
  // fall back meanwhile and sync again once they find it.
  bool fell_back = false;
  bool recovered = false;
  const absl::Time killed = absl::Now();
  while (absl::Now() - killed < absl::Seconds(20) && !recovered) {
    absl::SleepFor(absl::Milliseconds(100));
    bool all_back = true;
    for (auto& h : hosts) {
      const auto st = h.sync->stats(absl::Now());
      fell_back |= st.fallback;
      all_back &= !st.fallback;
    }
    recovered = fell_back && all_back;
  }
  absl::SleepFor(absl::Seconds(2));  // traffic on the new master
  stop.store(true);
  for (auto& t : traffic) t.join();
  EXPECT_TRUE(fell_back);
  EXPECT_TRUE(recovered) << "the hosts never synced again after the failover";
  absl::SleepFor(absl::Seconds(1));  // leases expire and are given back

  const uint64_t first = kLimit / (20 * kHosts);
  const uint64_t share = (kLimit + kHosts - 1) / kHosts;
  uint64_t total = 0;
  for (int s = 0; s < kSubs; ++s) {
    const uint64_t a = admitted[s].load();
    total += a;
    const std::string key = absl::StrCat("sluice:{subscription:s", s, "}:messages:3600");
    if (on_victim.count(s)) {
      EXPECT_LE(a, kLimit + kHosts * (share + first)) << "s" << s << " (on the dead master)";
    } else {
      // The fallback lets a host admit its share past leases, on every
      // limit, while any store call fails: the fault bound holds for all;
      // what Redis counts is exact for the keys that never moved.
      EXPECT_LE(a, kLimit + kHosts * (share + first)) << "s" << s;
      EXPECT_EQ(Counted(nodes, 6, key), a) << "s" << s;
    }
  }
  EXPECT_GT(total, kSubs * kLimit / 2);
  std::printf("admitted %llu over %d limits of %llu; %zu on the dead master\n",
              static_cast<unsigned long long>(total), kSubs,
              static_cast<unsigned long long>(kLimit), on_victim.size());
  for (auto& h : hosts) h.limiter.reset();
}

}  // namespace
}  // namespace sluice
