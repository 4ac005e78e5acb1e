#include "bindings/report/activity.h"

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bindings/engine/policy_engine.h"
#include "gtest/gtest.h"
#include "ratelimit/config.h"

namespace sluice {
namespace {

// 2023-11-14 22:00:00 UTC: an hour's start.
const absl::Time kT0 = absl::FromUnixSeconds(1700000000 - 1700000000 % 3600);

using PE = Activity::PathEntity;

const config::ActivityReport::Series* Find(const config::ActivityReport& r, absl::string_view level,
                                           absl::string_view entity) {
  for (const auto& s : r.series()) {
    if (s.level() == level && s.entity() == entity) return &s;
  }
  return nullptr;
}

TEST(ActivityTest, CountsPerHourPerEntityWithParents) {
  Activity a(Activity::Options{});
  const std::vector<PE> path = {{Level::kServer, "mx"},
                                {Level::kSubscription, "acme"},
                                {Level::kDomain, "acme.example"},
                                {Level::kMailbox, "u@acme.example"},
                                {Level::kClientIp, "192.0.2.7"}};
  a.Record(path, 1, 3, 1000, kT0 + absl::Minutes(1));
  a.Record(path, 1, 2, 500, kT0 + absl::Minutes(59));
  a.Record(path, 1, 1, 10, kT0 + absl::Hours(2) + absl::Minutes(5));
  const config::ActivityReport r = a.Snapshot(kT0 + absl::Hours(2) + absl::Minutes(30), 10);
  EXPECT_EQ(r.hours(), 3);  // from the first recorded hour to now
  EXPECT_EQ(r.first_hour_unix(), absl::ToUnixSeconds(kT0));
  const auto* m = Find(r, "mailbox", "u@acme.example");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->parent_level(), "domain");
  EXPECT_EQ(m->parent(), "acme.example");
  ASSERT_EQ(m->messages_size(), 3);
  EXPECT_EQ(m->messages(0), 2u);
  EXPECT_EQ(m->messages(1), 0u);
  EXPECT_EQ(m->messages(2), 1u);
  EXPECT_EQ(m->recipients(0), 5u);
  EXPECT_EQ(m->bytes(0), 1500u);
  EXPECT_EQ(m->total_messages(), 3u);
  EXPECT_EQ(Find(r, "domain", "acme.example")->parent(), "acme");
  EXPECT_EQ(Find(r, "subscription", "acme")->parent(), "mx");
  EXPECT_EQ(Find(r, "server", "mx")->parent(), "");
  // A dimension has no parent in the chain.
  EXPECT_EQ(Find(r, "client_ip", "192.0.2.7")->parent(), "");
}

TEST(ActivityTest, HistoryDropsOldHoursAndIdleEntities) {
  Activity::Options o;
  o.history = absl::Hours(3);
  Activity a(o);
  a.Record({{PE{Level::kMailbox, "old@x.example"}}}, 1, 1, 0, kT0);
  a.Record({{PE{Level::kMailbox, "new@x.example"}}}, 1, 1, 0, kT0 + absl::Hours(4));
  config::ActivityReport r = a.Snapshot(kT0 + absl::Hours(4), 10);
  EXPECT_EQ(r.hours(), 1);
  EXPECT_EQ(Find(r, "mailbox", "old@x.example"), nullptr);
  EXPECT_NE(Find(r, "mailbox", "new@x.example"), nullptr);
  EXPECT_EQ(a.entities(), 2u);
  a.Sweep(kT0 + absl::Hours(4));
  EXPECT_EQ(a.entities(), 1u);
}

TEST(ActivityTest, CapSendsNewEntitiesToOtherAndReportKeepsTheHeaviest) {
  Activity::Options o;
  o.max_entities = 5;
  Activity a(o);
  for (int i = 0; i < 100; ++i) {
    const std::string name = absl::StrCat("u", i, "@x.example");
    for (int k = 0; k <= i % 7; ++k) a.Record({{PE{Level::kMailbox, name}}}, 1, 1, 0, kT0);
  }
  EXPECT_LE(a.entities(), 6u);  // five, and the level's (other)
  config::ActivityReport r = a.Snapshot(kT0, 2);
  EXPECT_GT(r.messages_over_cap(), 0u);
  const auto* other = Find(r, "mailbox", "(other)");
  ASSERT_NE(other, nullptr);  // the heaviest by far
  EXPECT_EQ(other->total_messages(), r.messages_over_cap());
  EXPECT_EQ(r.series_size(), 2);
  EXPECT_EQ(r.entities_left_out(), a.entities() - 2);
  // Heaviest first.
  EXPECT_GE(r.series(0).total_messages(), r.series(1).total_messages());
}

TEST(ActivityTest, TripsKeptWithinTheHistoryAndBounded) {
  Activity::Options o;
  o.history = absl::Hours(2);
  o.max_trips = 3;
  Activity a(o);
  for (int i = 0; i < 5; ++i) {
    Notice n;
    n.time = kT0 + absl::Minutes(50 * i);
    n.source = "limit";
    n.level = Level::kMailbox;
    n.entity = absl::StrCat("u", i, "@x.example\x01");
    n.action = Action::kDefer;
    n.text = "over";
    a.RecordTrip(n);
  }
  config::ActivityReport r = a.Snapshot(kT0 + absl::Minutes(200), 10);
  EXPECT_EQ(r.trips_left_out(), 2u);
  // u2..u4 are kept; u3 and u4 fall in the last two hours (whole hours).
  ASSERT_EQ(r.trip_size(), 2);
  EXPECT_EQ(r.trip(0).entity(), "u3@x.example?");  // control characters cleaned
  EXPECT_EQ(r.trip(1).level(), "mailbox");
  EXPECT_EQ(r.hours(), 2);  // the trips' hours count even without messages
  r = a.Snapshot(kT0 + absl::Hours(10), 10);
  EXPECT_EQ(r.trip_size(), 0);
}

TEST(ActivityTest, ConcurrentRecordsAllCounted) {
  Activity a(Activity::Options{});
  constexpr int kThreads = 4, kEach = 5000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&a, t] {
      for (int i = 0; i < kEach; ++i) {
        const std::string box = absl::StrCat("u", i % 50, "@x.example");
        a.Record({{PE{Level::kServer, "mx"}, PE{Level::kMailbox, box}}}, 1, 1, 100,
                 kT0 + absl::Seconds(i % 3600 + t));
      }
    });
  }
  for (auto& t : threads) t.join();
  const config::ActivityReport r = a.Snapshot(kT0 + absl::Hours(1), 100);
  EXPECT_EQ(Find(r, "server", "mx")->total_messages(), uint64_t{kThreads * kEach});
  uint64_t boxes = 0;
  for (const auto& s : r.series()) {
    if (s.level() == "mailbox") boxes += s.total_messages();
  }
  EXPECT_EQ(boxes, uint64_t{kThreads * kEach});
}

// ---- Through the engine --------------------------------------------------

constexpr char kConfig[] = R"pb(
  server_name: "mx1"
  level {
    name: "server"
    limit { window: "1h" max: 10000 }
  }
  level { name: "subscription" }
  level { name: "domain" }
  level {
    name: "mailbox"
    limit { window: "1h" max: 3 }
  }
  entity { level: "subscription" name: "acme" }
  entity { level: "domain" name: "acme.example" parent: "acme" }
  policy { trusted_network: "192.0.2.10/32" }
  report { history: "24h" max_entities: 1000 }
)pb";

SmtpEvent Event(Stage stage, absl::string_view txn, absl::string_view sender,
                absl::string_view client = "192.0.2.10") {
  SmtpEvent e;
  e.stage = stage;
  e.transaction = txn;
  e.client_address = client;
  e.sender = sender;
  e.recipient = stage == Stage::kRcpt ? "r@remote.example" : "";
  e.recipient_count = 1;
  e.size = stage == Stage::kEndOfMessage ? 2000 : 0;
  return e;
}

// Plays one message; true if it passed.
bool Send(PolicyEngine& e, const std::string& txn, absl::string_view sender, absl::Time now,
          absl::string_view client = "192.0.2.10") {
  if (!e.Evaluate(Event(Stage::kRcpt, txn, sender, client), now).admitted()) return false;
  return e.Evaluate(Event(Stage::kEndOfMessage, txn, sender, client), now).admitted();
}

TEST(ActivityEngineTest, ReportsWhatPassedWithRulesAndTrips) {
  auto c = ParseConfigText(kConfig);
  ASSERT_TRUE(c.ok()) << c.status();
  auto e = PolicyEngine::Create(*c, kT0, PolicyEngine::Options());
  ASSERT_TRUE(e.ok()) << e.status();
  PolicyEngine& engine = **e;
  int passed = 0;
  for (int i = 0; i < 5; ++i) {
    passed += Send(engine, absl::StrCat("Q", i), "bob@acme.example", kT0 + absl::Minutes(i));
  }
  EXPECT_EQ(passed, 3);
  // Inbound mail (an untrusted client, a local domain's sender): only its
  // client address is charged, so only it appears.
  EXPECT_TRUE(Send(engine, "IN1", "bob@acme.example", kT0 + absl::Minutes(6), "203.0.113.9"));
  const config::ActivityReport r = engine.Report(kT0 + absl::Minutes(10), 50);
  const auto* box = Find(r, "mailbox", "bob@acme.example");
  ASSERT_NE(box, nullptr);
  EXPECT_EQ(box->total_messages(), 3u);  // the refused two never reached their end
  EXPECT_EQ(box->parent(), "acme.example");
  EXPECT_EQ(Find(r, "domain", "acme.example")->parent(), "acme");
  EXPECT_EQ(Find(r, "server", "mx1")->total_messages(), 3u);
  ASSERT_EQ(box->rule_size(), 1);
  EXPECT_EQ(box->rule(0).limit(), 3u);
  EXPECT_EQ(box->rule(0).usage(), 3u);
  const auto* in = Find(r, "client_ip", "203.0.113.9");
  ASSERT_NE(in, nullptr);
  EXPECT_EQ(in->total_messages(), 1u);
  ASSERT_GE(r.trip_size(), 1);
  EXPECT_EQ(r.trip(0).entity(), "bob@acme.example");
  EXPECT_EQ(r.trip(0).level(), "mailbox");
}

TEST(ActivityEngineTest, OffForShortLivedProcesses) {
  auto c = ParseConfigText(kConfig);
  ASSERT_TRUE(c.ok());
  PolicyEngine::Options o;
  o.record_activity = false;
  auto e = PolicyEngine::Create(*c, kT0, o);
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(Send(**e, "Q1", "bob@acme.example", kT0));
  const config::ActivityReport r = (*e)->Report(kT0, 50);
  EXPECT_EQ(r.series_size(), 0);
  EXPECT_EQ(r.hours(), 0);
}

TEST(ActivityEngineTest, ConfigChecksTheReportSection) {
  auto bad = ParseConfigText("report { history: \"40d\" }");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("1:"), std::string::npos) << bad.status();
  EXPECT_NE(bad.status().message().find("\"40d\""), std::string::npos) << bad.status();
  EXPECT_FALSE(ParseConfigText("report { max_entities: 0 }").ok());
  EXPECT_TRUE(ParseConfigText("report { history: \"168h\" max_entities: 5 }").ok());
}

}  // namespace
}  // namespace sluice
