// RedisStore against real redis-server instances on 127.0.0.1 (started
// here, stopped by PID): the Lua script gives the in-memory store's
// answers op for op; a lost answer is counted once; a dead server leaves
// operations unanswered at once and is used again when it returns; three
// hosts share one limit; a 3-master Cluster with slots spread, ASK and
// MOVED followed; AUTH.
#include "ratelimit/cluster/redis_store.h"

#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "ratelimit/cluster/shared_counter.h"
#include "tests/testing/redis.h"

namespace sluice {
namespace {

using testing::FormCluster;
using testing::RedisServer;
using testing::TempDir;

// timeout_ms: 500 for a loaded test machine (the daemon's default is 50).
std::unique_ptr<RedisStore> StoreFor(std::vector<std::string> servers, bool cluster = false,
                                     const std::string& password = "", int timeout_ms = 500) {
  RedisStore::Options o;
  o.servers = std::move(servers);
  o.cluster = cluster;
  o.password = password;
  o.timeout_ms = timeout_ms;
  auto s = RedisStore::Create(o);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? std::move(*s) : nullptr;
}

// An operation of host "h", sequence 1, over buckets (0, sum_to], leasing
// `want` of `limit` in bucket sum_to.
SyncOp NewOp(const std::string& key, uint64_t want, uint64_t limit, int64_t sum_to = 1) {
  SyncOp op;
  op.key = key;
  op.host = "h";
  op.seq = 1;
  op.sum_to = sum_to;
  op.lease_bucket = sum_to;
  op.want = want;
  op.limit = limit;
  op.ttl_ms = 60000;
  return op;
}

SyncOp RandomOp(std::mt19937_64& rng, std::map<std::string, uint64_t>* seqs, bool repeat) {
  SyncOp op;
  op.key = "t{sub:" + std::to_string(rng() % 4) + "}:m:60";
  op.host = "h" + std::to_string(rng() % 3);
  uint64_t& seq = (*seqs)[op.key + "/" + op.host];
  if (!repeat || seq == 0) ++seq;
  op.seq = seq;
  const int64_t now = 100 + static_cast<int64_t>(rng() % 40);
  for (int i = 0; i < 2; ++i) {
    op.give_back_bucket[i] = now - static_cast<int64_t>(rng() % 8);
    op.give_back[i] = rng() % 3 == 0 ? rng() % 20 : 0;
  }
  op.spent_bucket = now;
  op.spent = rng() % 2 == 0 ? rng() % 30 : 0;
  op.sum_from = now - 6;
  op.sum_to = now + 1;
  op.lease_bucket = op.sum_to;
  op.want = rng() % 50;
  op.limit = 300;
  op.hosts = 3;
  op.ttl_ms = 60000;
  return op;
}

TEST(RedisStoreTest, TheScriptAnswersAsTheMemoryStoreDoes) {
  TempDir dir;
  RedisServer redis;
  ASSERT_TRUE(redis.Start(dir.path()));
  auto store = StoreFor({redis.address()});
  MemoryStore memory;
  std::mt19937_64 rng(7);
  std::map<std::string, uint64_t> seqs;
  for (int round = 0; round < 200; ++round) {
    std::vector<SyncOp> a, b;
    const int n = 1 + static_cast<int>(rng() % 6);
    for (int i = 0; i < n; ++i) {
      // One counter once per batch (a host sends one operation per counter).
      SyncOp op = RandomOp(rng, &seqs, rng() % 5 == 0);
      bool dup = false;
      for (const auto& x : a) dup |= x.key == op.key && x.host == op.host;
      if (dup) continue;
      a.push_back(op);
      b.push_back(op);
    }
    std::vector<SyncOp*> pa, pb;
    for (auto& x : a) pa.push_back(&x);
    for (auto& x : b) pb.push_back(&x);
    store->Run(pa);
    memory.Run(pb);
    for (size_t i = 0; i < a.size(); ++i) {
      ASSERT_TRUE(a[i].answered) << round;
      EXPECT_EQ(a[i].granted, b[i].granted) << "round " << round << " key " << a[i].key;
      EXPECT_EQ(a[i].usage, b[i].usage)
          << "round " << round << " key " << a[i].key << " host " << a[i].host << " seq "
          << a[i].seq << " gb " << a[i].give_back[0] << "@" << a[i].give_back_bucket[0] << " "
          << a[i].give_back[1] << "@" << a[i].give_back_bucket[1] << " spent " << a[i].spent << "@"
          << a[i].spent_bucket << " sum " << a[i].sum_from << ".." << a[i].sum_to << " want "
          << a[i].want;
    }
  }
  // Keys expire with their window.
  const std::string ttl = redis.Command({"PTTL", "t{sub:0}:m:60"});
  EXPECT_GT(std::stoll(ttl), 0) << ttl;
  EXPECT_LE(std::stoll(ttl), 60000);
  EXPECT_GT(store->stats().ops, 0u);
}

// Three hosts, each with its own connection, share a limit of 1000 while
// 5000 units are offered: at most the limit plus 3 first uses are admitted.
TEST(RedisStoreTest, ThreeHostsShareOneLimit) {
  TempDir dir;
  RedisServer redis;
  ASSERT_TRUE(redis.Start(dir.path()));
  std::vector<std::unique_ptr<RedisStore>> stores;
  std::vector<std::unique_ptr<SharedCounter>> counters;
  SharedCounter::Options o;
  o.limit = 1000;
  o.window_ms = 3600 * 1000;
  o.sub_bucket_ms = 600 * 1000;
  o.interval_ms = 200;
  o.hosts = 3;
  o.first_lease = 10;
  for (int h = 0; h < 3; ++h) {
    stores.push_back(StoreFor({redis.address()}));
    o.host = "relay" + std::to_string(h);
    counters.push_back(std::make_unique<SharedCounter>("t{subscription:acme}:messages:3600", o));
  }
  uint64_t admitted = 0;
  int offered = 0;
  std::mt19937_64 rng(3);
  int64_t t = int64_t{1800000000} * 1000;  // fake unix ms
  for (int step = 0; offered < 5000 && step < 100000; ++step, t += 5) {
    for (int h = 0; h < 3; ++h) {
      if ((step + 13 * h) % 40 == 0) counters[h]->Sync(*stores[h], t);  // out of phase
    }
    const int h = static_cast<int>(rng() % 3);
    ++offered;
    if (counters[h]->TryAdmit(1, t).ok) ++admitted;
  }
  EXPECT_LE(admitted, 1000u + 3 * 10);
  EXPECT_GE(admitted, 900u);
  // What Redis counts: the admitted units plus live leases.
  uint64_t leases = 0;
  for (auto& c : counters) leases += c->lease_left(t);
  std::vector<std::string> fields =
      absl::StrSplit(redis.Command({"HGETALL", "t{subscription:acme}:messages:3600"}), ' ');
  uint64_t counted = 0;
  for (size_t i = 0; i + 1 < fields.size(); i += 2) {
    if (fields[i].rfind("h:", 0) != 0) counted += std::stoull(fields[i + 1]);
  }
  EXPECT_GE(counted, admitted);
  EXPECT_LE(counted, admitted + leases + 3 * 2 * 1000 / 3);
}

TEST(RedisStoreTest, ALostAnswerIsCountedOnce) {
  TempDir dir;
  RedisServer redis;
  ASSERT_TRUE(redis.Start(dir.path()));
  auto store = StoreFor({redis.address()});
  SyncOp op = NewOp("t{mailbox:a@b}:m:60", 5, 100, 11);
  op.spent_bucket = 10;
  op.spent = 7;
  op.sum_from = 4;
  SyncOp again = op;
  store->Run({&op});
  ASSERT_TRUE(op.answered);
  store->Run({&again});  // the same operation: as if the first answer was lost
  ASSERT_TRUE(again.answered);
  EXPECT_EQ(again.granted, op.granted);
  EXPECT_EQ(redis.Command({"HGET", op.key, "10"}), "7");
  EXPECT_EQ(redis.Command({"HGET", op.key, "11"}), "24");  // a quarter of the room 93
}

TEST(RedisStoreTest, ADeadServerAnswersNothingAtOnceAndIsUsedWhenItReturns) {
  TempDir dir;
  RedisServer redis;
  ASSERT_TRUE(redis.Start(dir.path()));
  auto store = StoreFor({redis.address()}, false, "", /*timeout_ms=*/50);
  SyncOp op = NewOp("t{mailbox:x@y}:m:60", 3, 10, 2);
  redis.Kill();
  const absl::Time start = absl::Now();
  store->Run({&op});
  EXPECT_FALSE(op.answered);
  // Refused at once (a dead port), well within the timeout's order.
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  ASSERT_TRUE(redis.Restart());
  bool answered = false;
  for (int i = 0; i < 100 && !answered; ++i) {  // past the backoff
    absl::SleepFor(absl::Milliseconds(30));
    op.answered = false;
    store->Run({&op});
    answered = op.answered;
  }
  EXPECT_TRUE(answered);
  EXPECT_EQ(op.granted, 3u);
  EXPECT_GE(store->stats().errors, 1u);
}

// A server that stops answering (DEBUG SLEEP): the call times out after
// the store's timeout and the operation stays unanswered, to be sent again.
TEST(RedisStoreTest, ASlowServerTimesOut) {
  TempDir dir;
  RedisServer redis;
  redis.set_extra_args({"--enable-debug-command", "yes"});
  ASSERT_TRUE(redis.Start(dir.path()));
  auto store = StoreFor({redis.address()}, false, "", /*timeout_ms=*/50);
  SyncOp op = NewOp("t{slow}:m:60", 2, 10);
  ASSERT_TRUE(store->Ping());
  std::thread sleeper([&] { redis.Command({"DEBUG", "SLEEP", "1"}); });
  absl::SleepFor(absl::Milliseconds(100));
  const absl::Time start = absl::Now();
  store->Run({&op});
  const absl::Duration took = absl::Now() - start;
  sleeper.join();
  EXPECT_FALSE(op.answered);
  EXPECT_LT(took, absl::Milliseconds(900));  // the timeout, not the sleep
  EXPECT_GE(store->stats().errors, 1u);
  // Later the same operation is answered (once: the script may have run).
  bool answered = false;
  for (int i = 0; i < 100 && !answered; ++i) {
    absl::SleepFor(absl::Milliseconds(30));
    store->Run({&op});
    answered = op.answered;
  }
  EXPECT_TRUE(answered);
  EXPECT_EQ(redis.Command({"HGET", op.key, "1"}), "3");  // a quarter of the room 10
}

// An error reply (here: the key holds a string) leaves the operation
// unanswered and counts an error; other counters of the call go on.
TEST(RedisStoreTest, AnErrorReplyIsNoAnswer) {
  TempDir dir;
  RedisServer redis;
  ASSERT_TRUE(redis.Start(dir.path()));
  auto store = StoreFor({redis.address()});
  std::vector<SyncOp> ops = {NewOp("t{bad}:m:60", 1, 10), NewOp("t{good}:m:60", 1, 10)};
  ASSERT_EQ(redis.Command({"SET", "t{bad}:m:60", "x"}), "OK");
  store->Run({&ops[0]});
  EXPECT_FALSE(ops[0].answered);
  EXPECT_EQ(store->stats().errors, 1u);
  store->Run({&ops[1]});
  EXPECT_TRUE(ops[1].answered);
  EXPECT_NE(store->MetricsText().find("sluice_redis_errors_total 1"), std::string::npos);
}

TEST(RedisStoreTest, AuthWithAPasswordOrAnAclUser) {
  TempDir dir;
  RedisServer redis;
  ASSERT_TRUE(redis.Start(dir.path(), false, "s3cret"));
  SyncOp op = NewOp("t{a}:m:60", 2, 10);
  auto wrong = StoreFor({redis.address()}, false, "nope");
  wrong->Run({&op});
  EXPECT_FALSE(op.answered);
  auto right = StoreFor({redis.address()}, false, "s3cret");
  right->Run({&op});
  EXPECT_TRUE(op.answered);
  // An ACL user (Redis 6+) with just what the sync needs.
  ASSERT_EQ(redis.Command({"ACL", "SETUSER", "relay", "on", ">relaypw", "~t{*", "+evalsha",
                           "+script|load", "+ping", "+cluster|slots", "+hget", "+hset", "+hdel",
                           "+hincrby", "+hgetall", "+pexpire"}),
            "OK");
  RedisStore::Options o;
  o.servers = {redis.address()};
  o.user = "relay";
  o.password = "relaypw";
  o.timeout_ms = 500;
  auto acl = std::move(*RedisStore::Create(o));
  SyncOp next = NewOp("t{b}:m:60", 2, 10);
  acl->Run({&next});
  EXPECT_TRUE(next.answered);
  EXPECT_TRUE(acl->Ping());
}

TEST(RedisStoreTest, RefusesBadOptions) {
  RedisStore::Options o;
  EXPECT_FALSE(RedisStore::Create(o).ok());
  o.servers = {"localhost"};
  EXPECT_FALSE(RedisStore::Create(o).ok());
  o.servers = {"127.0.0.1:1", "127.0.0.1:2"};
  EXPECT_FALSE(RedisStore::Create(o).ok());  // two servers without cluster
  o.cluster = true;
  EXPECT_TRUE(RedisStore::Create(o).ok());
}

TEST(RedisStoreTest, SlotsFollowTheClusterSpec) {
  // Keys with one hash tag share a slot; the tag alone decides.
  EXPECT_EQ(RedisStore::Slot("a{user1000}.following"), RedisStore::Slot("b{user1000}.followers"));
  EXPECT_EQ(RedisStore::Slot("{user1000}"), RedisStore::Slot("user1000"));
  EXPECT_EQ(RedisStore::Slot("123456789"), 0x31C3 & 16383);  // CRC16/XMODEM check value
  EXPECT_EQ(RedisStore::Slot("foo{}{bar}"), RedisStore::Slot("foo{}{bar}"));
}

std::vector<SyncOp> ManyOps(int n) {
  std::vector<SyncOp> ops;
  for (int i = 0; i < n; ++i) {
    ops.push_back(NewOp("t{mailbox:user" + std::to_string(i) + "@acme}:m:60", 1, 10, 2));
  }
  return ops;
}

std::vector<SyncOp*> Ptrs(std::vector<SyncOp>& v) {
  std::vector<SyncOp*> p;
  for (auto& x : v) {
    x.answered = false;
    p.push_back(&x);
  }
  return p;
}

TEST(RedisStoreTest, AThreeMasterClusterWithAskAndMoved) {
  TempDir dir;
  RedisServer nodes[3];
  for (auto& n : nodes) ASSERT_TRUE(n.Start(dir.path(), /*cluster=*/true));
  ASSERT_TRUE(FormCluster({&nodes[0], &nodes[1], &nodes[2]}, 0));
  auto store = StoreFor({nodes[0].address()}, /*cluster=*/true);
  std::vector<SyncOp> ops = ManyOps(200);
  store->Run(Ptrs(ops));
  for (const auto& op : ops) ASSERT_TRUE(op.answered) << op.key;
  // Spread over all three masters.
  for (auto& n : nodes) EXPECT_GT(std::stoll(n.Command({"DBSIZE"})), 10) << n.address();

  // Move the slot of one key from its owner to another master by hand.
  const std::string key = ops[0].key;
  const std::string slot = std::to_string(RedisStore::Slot(key));
  int from = -1;
  for (int i = 0; i < 3; ++i) {
    if (nodes[i].Command({"EXISTS", key}) == "1") from = i;
  }
  ASSERT_GE(from, 0);
  const int to = (from + 1) % 3;
  const std::string from_id = nodes[from].Command({"CLUSTER", "MYID"});
  const std::string to_id = nodes[to].Command({"CLUSTER", "MYID"});
  ASSERT_EQ(nodes[to].Command({"CLUSTER", "SETSLOT", slot, "IMPORTING", from_id}), "OK");
  ASSERT_EQ(nodes[from].Command({"CLUSTER", "SETSLOT", slot, "MIGRATING", to_id}), "OK");
  // A new key of that slot while it migrates: the owner answers ASK.
  SyncOp fresh = ManyOps(1)[0];
  fresh.key = "t{mailbox:user0@acme}:recipients:60";
  ASSERT_EQ(std::to_string(RedisStore::Slot(fresh.key)), slot);
  store->Run({&fresh});
  EXPECT_TRUE(fresh.answered);
  EXPECT_GE(store->stats().asks, 1u);
  // Finish the move: the old owner answers MOVED; the store asks for the
  // map again and the next run lands on the new owner, counted once.
  ASSERT_EQ(nodes[from].Command(
                {"MIGRATE", "127.0.0.1", std::to_string(nodes[to].port()), key, "0", "5000"}),
            "OK");
  for (auto& n : nodes) n.Command({"CLUSTER", "SETSLOT", slot, "NODE", to_id});
  absl::SleepFor(absl::Milliseconds(200));
  SyncOp next = ops[0];
  next.seq = 2;
  next.want = 2;
  bool answered = false;
  for (int i = 0; i < 20 && !answered; ++i) {
    next.answered = false;
    store->Run({&next});
    answered = next.answered;
    if (!answered) absl::SleepFor(absl::Milliseconds(120));
  }
  ASSERT_TRUE(answered);
  EXPECT_EQ(next.usage, 3u);  // the first lease (a quarter of 10), not counted twice
  EXPECT_EQ(nodes[to].Command({"HGET", key, "2"}), "5");
  EXPECT_EQ(nodes[to].Command({"HGET", fresh.key, "2"}), "3");  // the one ASK put there
  EXPECT_GE(store->stats().moved, 1u);
}

}  // namespace
}  // namespace sluice
