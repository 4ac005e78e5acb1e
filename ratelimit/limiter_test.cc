#include "ratelimit/limiter.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "ratelimit/clock.h"
#include "ratelimit/config.h"
#include "ratelimit/testing.h"

namespace sluice {
namespace {

using testing::kT0;

std::unique_ptr<Limiter> Make(absl::string_view text, Limiter::Options o = {}) {
  return testing::MakeLimiter(text, "", o);
}

Request Msg(absl::string_view sender, uint64_t rcpts = 1) {
  Request r;
  r.sender = sender;
  r.recipients = rcpts;
  return r;
}

// Sends until the first non-admitted decision; returns how many passed.
int SendUntilBlocked(Limiter& l, absl::string_view sender, absl::Time now, int max = 10000,
                     Decision* last = nullptr) {
  for (int i = 0; i < max; ++i) {
    Decision d = l.CheckAndCharge(Msg(sender), now);
    if (!d.admitted()) {
      if (last) *last = d;
      return i;
    }
  }
  return max;
}

constexpr char kHosting[] = R"pb(
  level {
    name: "server"
    limit { window: "1h" max: 1000 }
  }
  level { name: "plan" }
  level {
    name: "subscription"
    limit { window: "1h" max: 50 }
  }
  level {
    name: "domain"
    limit { window: "1h" max: 30 }
  }
  level {
    name: "mailbox"
    limit { window: "1h" max: 10 }
  }
  entity {
    level: "plan"
    name: "basic"
    limit { applies_to: "mailbox" window: "1h" max: 5 }
  }
  entity { level: "plan" name: "pro" }
  entity { level: "subscription" name: "s1" parent: "basic" }
  entity {
    level: "subscription"
    name: "s2"
    parent: "pro"
    limit { window: "1h" max: 12 }
  }
  entity { level: "domain" name: "a.example" parent: "s1" }
  entity { level: "domain" name: "b.example" parent: "s1" }
  entity { level: "domain" name: "c.example" parent: "s2" }
  entity {
    level: "domain"
    name: "d.example"
    parent: "s2"
    limit { applies_to: "mailbox" window: "1h" max: 20 }
  }
  entity {
    level: "mailbox"
    name: "vip@c.example"
    limit { window: "1h" max: 100 }
  }
  entity {
    level: "mailbox"
    name: "blocked@c.example"
    limit { window: "1h" max: 0 }
  }
  entity { level: "mailbox" name: "free@c.example" unlimited: true }
)pb";

TEST(LimiterTest, MailboxLimitTripsAtExactCount) {
  auto l = Make(kHosting);
  Decision d;
  EXPECT_EQ(SendUntilBlocked(*l, "x@unknown.example", kT0, 100, &d), 10);
  EXPECT_EQ(d.action, Action::kDefer);
  EXPECT_EQ(d.level, Level::kMailbox);
  EXPECT_STREQ(d.entity, "x@unknown.example");
  EXPECT_EQ(d.limit, 10u);
  EXPECT_EQ(d.usage, 10u);
  EXPECT_EQ(d.smtp_code, 451);
  EXPECT_STREQ(d.enhanced_status, "4.7.1");
  EXPECT_GT(d.retry_after, absl::ZeroDuration());
  EXPECT_LE(d.retry_after, absl::Minutes(70));
}

TEST(LimiterTest, PlanDefaultAppliesToItsMailboxes) {
  auto l = Make(kHosting);
  EXPECT_EQ(SendUntilBlocked(*l, "u@a.example", kT0), 5);   // basic plan: 5
  EXPECT_EQ(SendUntilBlocked(*l, "u@c.example", kT0), 10);  // pro: level default
  EXPECT_EQ(SendUntilBlocked(*l, "u@d.example", kT0), 2);   // s2 subscription: 12 total
}

TEST(LimiterTest, DomainOverrideAndMailboxOverrides) {
  auto l = Make(kHosting);
  EXPECT_EQ(SendUntilBlocked(*l, "a@d.example", kT0), 12);  // 20 per mailbox, s2 caps at 12
  auto l2 = Make(kHosting);
  Decision d;
  EXPECT_EQ(SendUntilBlocked(*l2, "vip@c.example", kT0, 1000, &d), 12);  // s2 wins
  EXPECT_EQ(d.level, Level::kSubscription);
  EXPECT_STREQ(d.entity, "s2");
}

TEST(LimiterTest, ZeroBlocksAndUnlimitedSwitchesOff) {
  auto l = Make(kHosting);
  Decision d;
  EXPECT_EQ(SendUntilBlocked(*l, "blocked@c.example", kT0, 10, &d), 0);
  EXPECT_EQ(d.limit, 0u);
  EXPECT_EQ(d.retry_after, absl::InfiniteDuration());
  // free@ has no mailbox limit, so s2's 12 is what stops it.
  EXPECT_EQ(SendUntilBlocked(*l, "free@c.example", kT0, 100, &d), 12);
  EXPECT_EQ(d.level, Level::kSubscription);
}

TEST(LimiterTest, SpentSubscriptionStopsAllItsDomains) {
  auto l = Make(kHosting);
  // s1 = a.example + b.example; basic plan gives mailboxes 5; s1 allows 50.
  int sent = 0;
  for (int m = 0; m < 20 && sent < 100; ++m) {
    sent += SendUntilBlocked(*l, absl::StrCat("m", m, "@", m % 2 ? "a" : "b", ".example"), kT0);
  }
  // Domains cap at 30 each; the subscription at 50 total.
  EXPECT_EQ(sent, 50);
  Decision d = l->CheckAndCharge(Msg("fresh@b.example"), kT0);
  EXPECT_FALSE(d.admitted());
  EXPECT_EQ(d.level, Level::kSubscription);
  EXPECT_STREQ(d.entity, "s1");
  // Another subscription is unaffected.
  EXPECT_TRUE(l->CheckAndCharge(Msg("u@c.example"), kT0).admitted());
}

TEST(LimiterTest, AllOrNothingLeavesNoPartialCharges) {
  auto l = Make(kHosting);
  EXPECT_EQ(SendUntilBlocked(*l, "u@a.example", kT0), 5);
  // The denied attempts charged nothing at the domain, subscription, server.
  for (int i = 0; i < 50; ++i) l->CheckAndCharge(Msg("u@a.example"), kT0);
  auto rep = l->UsageForRequest(Msg("u@a.example"), kT0);
  for (const auto& r : rep.rule()) {
    EXPECT_EQ(r.usage(), 5u) << r.level();
  }
}

TEST(LimiterTest, RecipientsAndBytesAreCountedPerUnit) {
  auto l = Make(R"pb(
    level {
      name: "mailbox"
      limit { metric: RECIPIENTS window: "1h" max: 10 }
      limit { metric: BYTES window: "1h" max: 1000 }
    }
  )pb");
  Request r = Msg("a@x.example", 4);
  EXPECT_TRUE(l->CheckAndCharge(r, kT0).admitted());
  EXPECT_TRUE(l->CheckAndCharge(r, kT0).admitted());
  Decision d = l->CheckAndCharge(r, kT0);  // 12 > 10
  EXPECT_FALSE(d.admitted());
  EXPECT_EQ(d.metric, Metric::kRecipients);
  EXPECT_EQ(d.usage, 8u);
  r.recipients = 2;
  EXPECT_TRUE(l->CheckAndCharge(r, kT0).admitted());
  Request b = Msg("b@x.example");
  b.bytes = 600;
  EXPECT_TRUE(l->CheckAndCharge(b, kT0).admitted());
  d = l->CheckAndCharge(b, kT0);
  EXPECT_EQ(d.metric, Metric::kBytes);
  EXPECT_FALSE(d.admitted());
}

TEST(LimiterTest, SeveralWindowsAtOnce) {
  auto l = Make(R"pb(
    level {
      name: "mailbox"
      limit { window: "1h" max: 10 }
      limit { window: "1d" max: 25 }
    }
  )pb");
  absl::Time t = kT0;
  int total = 0;
  for (int hour = 0; hour < 5; ++hour) {
    total += SendUntilBlocked(*l, "a@x.example", t);
    t += absl::Minutes(71);  // the hourly window fully drains
  }
  EXPECT_EQ(total, 25);
  Decision d = l->CheckAndCharge(Msg("a@x.example"), t);
  EXPECT_EQ(d.window_seconds, 86400);
}

TEST(LimiterTest, WindowSlidesWithTime) {
  auto l = Make(R"pb(level {
                       name: "mailbox"
                       limit { window: "1h" max: 6 }
                     })pb");
  absl::Time t = kT0;
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(l->CheckAndCharge(Msg("a@x.example"), t).admitted());
    t += absl::Minutes(10);
  }
  // t = +60 min: the first message (at +0) is within 70 min: still counted.
  EXPECT_FALSE(l->CheckAndCharge(Msg("a@x.example"), t).admitted());
  // Past 70 minutes after the first message it has left.
  EXPECT_TRUE(l->CheckAndCharge(Msg("a@x.example"), kT0 + absl::Minutes(71)).admitted());
}

TEST(LimiterTest, RetryAfterPointsAtTheFirstAdmissibleTime) {
  auto l = Make(R"pb(level {
                       name: "mailbox"
                       limit { window: "1h" max: 3 }
                     })pb");
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(l->CheckAndCharge(Msg("a@x.example"), kT0).admitted());
  Decision d = l->CheckAndCharge(Msg("a@x.example"), kT0 + absl::Minutes(5));
  ASSERT_FALSE(d.admitted());
  absl::Time retry = kT0 + absl::Minutes(5) + d.retry_after;
  EXPECT_FALSE(l->CheckAndCharge(Msg("a@x.example"), retry - absl::Seconds(1)).admitted());
  EXPECT_TRUE(l->CheckAndCharge(Msg("a@x.example"), retry).admitted());
}

TEST(LimiterTest, StrictCountsRejectedAttempts) {
  auto leaky = Make(R"pb(level {
                           name: "mailbox"
                           limit { window: "1h" max: 3 }
                         })pb");
  auto strict = Make(R"pb(level {
                            name: "mailbox"
                            limit { window: "1h" max: 3 strict: true }
                          })pb");
  for (int i = 0; i < 10; ++i) {
    leaky->CheckAndCharge(Msg("a@x.example"), kT0);
    strict->CheckAndCharge(Msg("a@x.example"), kT0);
  }
  EXPECT_EQ(leaky->Usage(Level::kMailbox, "a@x.example", kT0).rule(0).usage(), 3u);
  EXPECT_EQ(strict->Usage(Level::kMailbox, "a@x.example", kT0).rule(0).usage(), 10u);
}

TEST(LimiterTest, ShadowRulePassesMailAndReportsTheTrip) {
  auto l = Make(R"pb(
    level {
      name: "mailbox"
      limit { window: "1h" max: 2 shadow: true action: REJECT }
    }
    level {
      name: "server"
      limit { window: "1h" max: 100 }
    }
  )pb");
  std::vector<Event> events;
  l->AddEventSink([&](const Event& e) { events.push_back(e); });
  for (int i = 0; i < 2; ++i) {
    Decision d = l->CheckAndCharge(Msg("a@x.example"), kT0);
    EXPECT_FALSE(d.shadow);
  }
  for (int i = 0; i < 3; ++i) {
    Decision d = l->CheckAndCharge(Msg("a@x.example"), kT0);
    EXPECT_TRUE(d.admitted());
    EXPECT_TRUE(d.shadow);
    EXPECT_EQ(d.shadow_action, Action::kReject);
    EXPECT_EQ(d.level, Level::kMailbox);
  }
  ASSERT_EQ(events.size(), 1u);  // deduplicated per window
  EXPECT_TRUE(events[0].shadow);
  EXPECT_EQ(events[0].entity, "a@x.example");
  // The server still counted all five.
  EXPECT_EQ(l->Usage(Level::kServer, "", kT0).rule(0).usage(), 5u);
}

TEST(LimiterTest, EventsOncePerEntityPerWindow) {
  auto l = Make(R"pb(level {
                       name: "mailbox"
                       limit { window: "1m" max: 1 }
                     })pb");
  std::vector<Event> events;
  l->AddEventSink([&](const Event& e) { events.push_back(e); });
  for (int i = 0; i < 5; ++i) l->CheckAndCharge(Msg("a@x.example"), kT0);
  for (int i = 0; i < 5; ++i) l->CheckAndCharge(Msg("b@x.example"), kT0);
  EXPECT_EQ(events.size(), 2u);
  for (int i = 0; i < 5; ++i) l->CheckAndCharge(Msg("a@x.example"), kT0 + absl::Seconds(61));
  EXPECT_EQ(events.size(), 3u);
  EXPECT_EQ(events[2].entity, "a@x.example");
  EXPECT_EQ(events[2].action, Action::kDefer);
}

TEST(LimiterTest, ActionsAndSmtpTexts) {
  auto l = Make(R"pb(
    level {
      name: "mailbox"
      limit {
        window: "1h"
        max: 1
        action: REJECT
        smtp_code: 554
        enhanced_status: "5.7.0"
        text: "Too much mail, call support"
      }
    }
    level {
      name: "script"
      limit { window: "1h" max: 1 action: HOLD }
    }
  )pb");
  l->CheckAndCharge(Msg("a@x.example"), kT0);
  Decision d = l->CheckAndCharge(Msg("a@x.example"), kT0);
  EXPECT_EQ(d.action, Action::kReject);
  EXPECT_EQ(d.smtp_code, 554);
  EXPECT_STREQ(d.enhanced_status, "5.7.0");
  EXPECT_STREQ(d.text, "Too much mail, call support");
  Request r = Msg("b@x.example");
  r.script = "/var/www/site/wp-content/x.php";
  EXPECT_TRUE(l->CheckAndCharge(r, kT0).admitted());
  r.sender = "c@x.example";
  d = l->CheckAndCharge(r, kT0);
  EXPECT_EQ(d.action, Action::kHold);
  EXPECT_EQ(d.level, Level::kScript);
  EXPECT_STREQ(d.entity, "/var/www/site/wp-content/x.php");
}

TEST(LimiterTest, Exemptions) {
  auto l = Make(R"pb(
    level {
      name: "mailbox"
      limit { window: "1h" max: 0 }
    }
    exempt {
      cidr: "10.1.0.0/16"
      cidr: "2001:db8::/32"
      sender: "ok@x.example"
      sender: "@trusted.example"
      sasl_user: "relayuser"
    }
  )pb");
  Request r = Msg("a@x.example");
  EXPECT_FALSE(l->CheckAndCharge(r, kT0).admitted());
  r.client_ip = "10.1.2.3";
  EXPECT_TRUE(l->CheckAndCharge(r, kT0).exempt);
  r.client_ip = "10.2.0.1";
  EXPECT_FALSE(l->CheckAndCharge(r, kT0).admitted());
  r.client_ip = "2001:db8:5::1";
  EXPECT_TRUE(l->CheckAndCharge(r, kT0).exempt);
  r.client_ip = "";
  r.sender = "OK@X.example";
  EXPECT_TRUE(l->CheckAndCharge(r, kT0).exempt);
  r.sender = "anyone@trusted.example";
  EXPECT_TRUE(l->CheckAndCharge(r, kT0).exempt);
  r.sender = "a@x.example";
  r.sasl_user = "relayuser";
  EXPECT_TRUE(l->CheckAndCharge(r, kT0).exempt);
}

// Inbound mail (from the internet) is counted at the client_ip level
// alone, whatever its sender, login, script or list say, and earns no
// sender or login exemption; a client address exemption still applies.
TEST(LimiterTest, InboundCountsOnlyItsClient) {
  auto l = Make(R"pb(
    level {
      name: "server"
      limit { window: "1h" max: 100 }
    }
    level {
      name: "mailbox"
      limit { window: "1h" max: 100 }
    }
    level {
      name: "sasl_user"
      limit { window: "1h" max: 100 }
    }
    level {
      name: "client_ip"
      limit { window: "1h" max: 2 }
    }
    exempt { cidr: "10.1.0.0/16" sender: "ok@x.example" sasl_user: "relayuser" }
  )pb");
  Request r = Msg("ok@x.example");
  r.sasl_user = "relayuser";
  r.client_ip = "203.0.113.9";
  r.inbound = true;
  Decision d = l->CheckAndCharge(r, kT0);
  EXPECT_TRUE(d.admitted());
  EXPECT_FALSE(d.exempt);
  EXPECT_TRUE(l->CheckAndCharge(r, kT0).admitted());
  d = l->CheckAndCharge(r, kT0);  // the third: the client's limit
  EXPECT_FALSE(d.admitted());
  EXPECT_EQ(d.level, Level::kClientIp);
  EXPECT_EQ(l->Usage(Level::kServer, "", kT0).rule(0).usage(), 0u);
  EXPECT_EQ(l->Usage(Level::kMailbox, "ok@x.example", kT0).rule(0).usage(), 0u);
  EXPECT_EQ(l->Usage(Level::kSaslUser, "relayuser", kT0).rule(0).usage(), 0u);
  // The same request outgoing: exempt, as configured.
  r.inbound = false;
  EXPECT_TRUE(l->CheckAndCharge(r, kT0).exempt);
  // Outgoing from a fresh address: every level counts it.
  r.sender = "b@x.example";
  r.sasl_user = "bob";
  r.client_ip = "198.51.100.1";
  EXPECT_TRUE(l->CheckAndCharge(r, kT0).admitted());
  EXPECT_EQ(l->Usage(Level::kServer, "", kT0).rule(0).usage(), 1u);
  // An exempt client address is exempt inbound too.
  r.inbound = true;
  r.client_ip = "10.1.2.3";
  EXPECT_TRUE(l->CheckAndCharge(r, kT0).exempt);
  // The thread's path cache keeps inbound and outgoing apart: the same
  // fields, asked both ways, charge different counters.
  r.client_ip = "198.51.100.1";
  EXPECT_TRUE(l->CheckAndCharge(r, kT0).admitted());
  EXPECT_EQ(l->Usage(Level::kServer, "", kT0).rule(0).usage(), 1u);
  EXPECT_EQ(l->Usage(Level::kClientIp, "198.51.100.1", kT0).rule(0).usage(), 2u);
}

TEST(LimiterTest, ClientIpDimensionAggregatesPrefixes) {
  auto l = Make(R"pb(
    level {
      name: "client_ip"
      ipv4_prefix: 24
      ipv6_prefix: 48
      limit { window: "1h" max: 3 }
    }
  )pb");
  Request r = Msg("a@x.example");
  for (int i = 1; i <= 3; ++i) {
    std::string ip = absl::StrCat("198.51.100.", i);
    r.client_ip = ip;
    EXPECT_TRUE(l->CheckAndCharge(r, kT0).admitted());
  }
  r.client_ip = "198.51.100.200";
  Decision d = l->CheckAndCharge(r, kT0);
  EXPECT_FALSE(d.admitted());
  EXPECT_STREQ(d.entity, "198.51.100.0/24");
  r.client_ip = "198.51.101.1";
  EXPECT_TRUE(l->CheckAndCharge(r, kT0).admitted());
  r.client_ip = "2001:db8:1:2::1";
  for (int i = 0; i < 3; ++i) l->CheckAndCharge(r, kT0);
  r.client_ip = "2001:db8:1:ffff::9";
  d = l->CheckAndCharge(r, kT0);
  EXPECT_FALSE(d.admitted());
  EXPECT_STREQ(d.entity, "2001:db8:1::/48");
}

TEST(LimiterTest, SaslUserDimensionWithOverride) {
  auto l = Make(R"pb(
    level {
      name: "sasl_user"
      limit { window: "1h" max: 2 }
    }
    entity {
      level: "sasl_user"
      name: "bulk"
      limit { window: "1h" max: 5 }
    }
  )pb");
  Request r = Msg("a@x.example");
  r.sasl_user = "alice";
  EXPECT_EQ(SendUntilBlocked(*l, "a@x.example", kT0), 10000);  // no sasl user: not counted
  int n = 0;
  while (l->CheckAndCharge(r, kT0).admitted() && n < 100) ++n;
  EXPECT_EQ(n, 2);
  r.sasl_user = "bulk";
  n = 0;
  while (l->CheckAndCharge(r, kT0).admitted() && n < 100) ++n;
  EXPECT_EQ(n, 5);
}

class MapResolver : public PathResolver {
 public:
  Path Resolve(absl::string_view domain) noexcept override {
    ++calls;
    if (domain == "hosted.example") return {"cust42", "basic"};
    return {};
  }
  int calls = 0;
};

TEST(LimiterTest, HostResolverSuppliesSubscriptionAndPlan) {
  MapResolver resolver;
  Limiter::Options o;
  o.resolver = &resolver;
  auto l = Make(R"pb(
                  level { name: "plan" }
                  level {
                    name: "subscription"
                    limit { window: "1h" max: 7 }
                  }
                  level {
                    name: "mailbox"
                    limit { window: "1h" max: 100 }
                  }
                  entity {
                    level: "plan"
                    name: "basic"
                    limit { applies_to: "mailbox" window: "1h" max: 3 }
                  }
                )pb",
                o);
  EXPECT_EQ(SendUntilBlocked(*l, "a@hosted.example", kT0), 3);
  EXPECT_EQ(SendUntilBlocked(*l, "b@hosted.example", kT0), 3);
  Decision d;
  EXPECT_EQ(SendUntilBlocked(*l, "c@hosted.example", kT0, 100, &d), 1);
  EXPECT_EQ(d.level, Level::kSubscription);
  EXPECT_STREQ(d.entity, "cust42");
  EXPECT_GT(resolver.calls, 0);
  EXPECT_EQ(SendUntilBlocked(*l, "a@other.example", kT0, 1000), 100);
}

TEST(LimiterTest, GcraRule) {
  auto l = Make(R"pb(
    level {
      name: "mailbox"
      limit { algorithm: GCRA window: "1m" max: 60 burst: 3 }
    }
  )pb");
  EXPECT_EQ(SendUntilBlocked(*l, "a@x.example", kT0), 3);
  Decision d = l->CheckAndCharge(Msg("a@x.example"), kT0);
  EXPECT_EQ(d.retry_after, absl::Seconds(1));
  EXPECT_TRUE(l->CheckAndCharge(Msg("a@x.example"), kT0 + absl::Seconds(1)).admitted());
}

// A request larger than a rule ever admits can never pass: it is refused
// for good (a DEFER rule answers 5xx), counted nowhere, and says so; a
// request that fits is still deferred with a real retry time.
TEST(LimiterTest, OversizedRequestIsRefusedForGood) {
  auto l = Make(R"pb(
    level {
      name: "mailbox"
      limit { metric: RECIPIENTS algorithm: GCRA window: "1m" max: 60 burst: 5 }
      limit { metric: RECIPIENTS window: "1h" max: 100 }
      limit { metric: BYTES window: "1h" max: 1000 action: HOLD }
    }
  )pb");
  Decision d = l->CheckAndCharge(Msg("a@x.example", 6), kT0);  // over the burst
  EXPECT_FALSE(d.admitted());
  EXPECT_TRUE(d.oversized);
  EXPECT_EQ(d.action, Action::kReject);
  EXPECT_EQ(d.smtp_code, 550);
  EXPECT_STREQ(d.enhanced_status, "5.5.3");
  EXPECT_EQ(d.retry_after, absl::InfiniteDuration());
  EXPECT_EQ(d.requested, 6u);
  // Nothing was charged: the whole burst is still there.
  Decision ok = l->CheckAndCharge(Msg("a@x.example", 5), kT0);
  EXPECT_TRUE(ok.admitted());
  // Over the burst's room now, but it fits an idle limiter: a real retry.
  Decision later = l->CheckAndCharge(Msg("a@x.example", 1), kT0);
  EXPECT_FALSE(later.admitted());
  EXPECT_FALSE(later.oversized);
  EXPECT_EQ(later.action, Action::kDefer);
  EXPECT_EQ(later.retry_after, absl::Seconds(1));

  // The sliding window: 101 recipients in one message never fit 100/1h.
  auto win = Make(R"pb(
    level {
      name: "mailbox"
      limit { metric: RECIPIENTS window: "1h" max: 100 }
    }
  )pb");
  Decision w = win->CheckAndCharge(Msg("b@x.example", 101), kT0);
  EXPECT_TRUE(w.oversized);
  EXPECT_EQ(w.action, Action::kReject);
  EXPECT_EQ(w.limit, 100u);
  EXPECT_TRUE(win->CheckAndCharge(Msg("b@x.example", 100), kT0).admitted());
  // Bytes over a HOLD rule's limit keep the configured action.
  Request big = Msg("c@x.example");
  big.bytes = 5000;
  Decision b = l->CheckAndCharge(big, kT0);
  EXPECT_TRUE(b.oversized);
  EXPECT_EQ(b.action, Action::kHold);
  EXPECT_EQ(b.metric, Metric::kBytes);
}

// A sliding window's retry time is when the request really passes: the
// sub-bucket boundary at which enough of the window has left.
TEST(LimiterTest, SlidingWindowRetryIsWhenItPasses) {
  auto l = Make(R"pb(
    level {
      name: "mailbox"
      limit { window: "1h" max: 3 }
    }
  )pb");
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(l->CheckAndCharge(Msg("a@x.example"), kT0 + absl::Minutes(10 * i)).admitted());
  }
  const absl::Time asked = kT0 + absl::Minutes(25);
  Decision d = l->CheckAndCharge(Msg("a@x.example"), asked);
  ASSERT_FALSE(d.admitted());
  EXPECT_FALSE(d.oversized);
  // Refused just before retry_after, admitted at it (within one sub-bucket).
  EXPECT_FALSE(
      l->CheckAndCharge(Msg("a@x.example"), asked + d.retry_after - absl::Seconds(1)).admitted());
  EXPECT_TRUE(l->CheckAndCharge(Msg("a@x.example"), asked + d.retry_after).admitted());
  EXPECT_LE(d.retry_after, absl::Hours(1) + absl::Minutes(10));
}

// A sender whose local part is longer than the limiter keeps of an address
// still charges its domain (and the levels above it).
TEST(LimiterTest, LongLocalPartChargesItsDomain) {
  auto l = Make(kHosting);
  const std::string sender = std::string(400, 'x') + "@a.example";
  ASSERT_TRUE(l->CheckAndCharge(Msg(sender), kT0).admitted());
  EXPECT_EQ(l->Usage(Level::kDomain, "a.example", kT0).rule(0).usage(), 1u);
  EXPECT_EQ(l->Usage(Level::kSubscription, "s1", kT0).rule(0).usage(), 1u);
  // Upper case in either part is folded, as for short addresses.
  const std::string upper = std::string(400, 'X') + "@A.EXAMPLE";
  ASSERT_TRUE(l->CheckAndCharge(Msg(upper), kT0).admitted());
  EXPECT_EQ(l->Usage(Level::kDomain, "a.example", kT0).rule(0).usage(), 2u);
}

// END-OF-MESSAGE after the transaction expired (or was evicted by a flood
// of transactions) still charges its bytes, and is refused over the bytes
// limit; a repeated END-OF-MESSAGE charges nothing twice.
TEST(LimiterTest, LateCommitStillChargesItsBytes) {
  Limiter::Options o;
  o.max_transactions = 16;  // 4 per shard: easy to flood
  auto l = Make(R"pb(
                  level {
                    name: "mailbox"
                    limit { metric: MESSAGES window: "1h" max: 100 }
                    limit { metric: BYTES window: "1h" max: 10000 }
                  }
                )pb",
                o);
  Request r = Msg("a@x.example");
  ASSERT_TRUE(l->Reserve("T1", "r1@y", r, kT0).admitted());
  EXPECT_EQ(l->ExpireTransactions(kT0 + absl::Hours(2), absl::Minutes(10), /*keep=*/true), 1);
  EXPECT_EQ(l->open_transactions(), 0u);
  Decision d = l->Commit("T1", 8000, kT0, &r);
  EXPECT_TRUE(d.admitted());
  EXPECT_EQ(l->Usage(Level::kMailbox, "a@x.example", kT0).rule(1).usage(), 8000u);
  EXPECT_EQ(l->Usage(Level::kMailbox, "a@x.example", kT0).rule(0).usage(), 1u);  // not twice
  // Repeated: nothing more.
  EXPECT_TRUE(l->Commit("T1", 8000, kT0, &r).admitted());
  EXPECT_EQ(l->Usage(Level::kMailbox, "a@x.example", kT0).rule(1).usage(), 8000u);

  // A second transaction, pushed out by a flood of others, then ended
  // late with more bytes than are left: refused.
  ASSERT_TRUE(l->Reserve("T2", "r1@y", r, kT0).admitted());
  Request other = Msg("flood@x.example");
  for (int i = 0; i < 200; ++i) l->Reserve(absl::StrCat("F", i), "r@y", other, kT0);
  Decision late = l->Commit("T2", 5000, kT0, &r);
  EXPECT_FALSE(late.admitted());
  EXPECT_EQ(late.metric, Metric::kBytes);
  EXPECT_EQ(l->Usage(Level::kMailbox, "a@x.example", kT0).rule(1).usage(), 8000u);

  // Never reserved (an MTA asking only at the end): message and bytes.
  Request b = Msg("b@x.example", 3);
  EXPECT_TRUE(l->Commit("T3", 100, kT0, &b).admitted());
  EXPECT_EQ(l->Usage(Level::kMailbox, "b@x.example", kT0).rule(0).usage(), 1u);
  EXPECT_EQ(l->Usage(Level::kMailbox, "b@x.example", kT0).rule(1).usage(), 100u);
  // Without the request (the old call), an unknown transaction is a no-op.
  EXPECT_TRUE(l->Commit("T4", 100, kT0).admitted());
}

// Recipients per transaction are capped (Postfix's smtpd_recipient_limit).
TEST(LimiterTest, RecipientsPerTransactionAreCapped) {
  Limiter::Options o;
  o.max_recipients = 3;
  auto l = Make(R"pb(
                  level {
                    name: "mailbox"
                    limit { metric: RECIPIENTS window: "1h" max: 100 }
                  }
                )pb",
                o);
  Request r = Msg("a@x.example");
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(l->Reserve("T1", absl::StrCat("r", i, "@y"), r, kT0).admitted());
  }
  Decision d = l->Reserve("T1", "r3@y", r, kT0);
  EXPECT_FALSE(d.admitted());
  EXPECT_EQ(d.smtp_code, 452);
  EXPECT_STREQ(d.enhanced_status, "4.5.3");
  EXPECT_STREQ(d.entity, "a@x.example");
  EXPECT_TRUE(l->Reserve("T1", "r1@y", r, kT0).admitted());  // a repeat is still fine
  EXPECT_EQ(l->Usage(Level::kMailbox, "a@x.example", kT0).rule(0).usage(), 3u);
}

TEST(LimiterTest, ReserveCommitRelease) {
  auto l = Make(R"pb(
    level {
      name: "mailbox"
      limit { metric: MESSAGES window: "1h" max: 2 }
      limit { metric: RECIPIENTS window: "1h" max: 5 }
      limit { metric: BYTES window: "1h" max: 10000 }
    }
  )pb");
  Request r = Msg("a@x.example");
  // Transaction 1: three recipients, one of them retried (idempotent).
  EXPECT_TRUE(l->Reserve("Q1", "r1@y", r, kT0).admitted());
  EXPECT_TRUE(l->Reserve("Q1", "r2@y", r, kT0).admitted());
  EXPECT_TRUE(l->Reserve("Q1", "r2@y", r, kT0).admitted());
  EXPECT_TRUE(l->Reserve("Q1", "r3@y", r, kT0).admitted());
  auto usage = [&](int i) { return l->Usage(Level::kMailbox, "a@x.example", kT0).rule(i).usage(); };
  EXPECT_EQ(usage(0), 1u);  // one message
  EXPECT_EQ(usage(1), 3u);  // three recipients
  EXPECT_TRUE(l->Commit("Q1", 4000, kT0).admitted());
  EXPECT_TRUE(l->Commit("Q1", 4000, kT0).admitted());  // idempotent
  EXPECT_EQ(usage(2), 4000u);
  // Transaction 2 aborts: everything comes back.
  EXPECT_TRUE(l->Reserve("Q2", "r1@y", r, kT0).admitted());
  EXPECT_TRUE(l->Reserve("Q2", "r2@y", r, kT0).admitted());
  Decision d = l->Reserve("Q2", "r3@y", r, kT0);  // 6th recipient
  EXPECT_FALSE(d.admitted());
  EXPECT_EQ(d.metric, Metric::kRecipients);
  EXPECT_EQ(l->open_transactions(), 1u);
  l->Release("Q2", kT0);
  l->Release("Q2", kT0);  // idempotent
  EXPECT_EQ(usage(0), 1u);
  EXPECT_EQ(usage(1), 3u);
  // Transaction 3: bytes do not fit at end-of-data: released.
  EXPECT_TRUE(l->Reserve("Q3", "r1@y", r, kT0).admitted());
  d = l->Commit("Q3", 7000, kT0);
  EXPECT_FALSE(d.admitted());
  EXPECT_EQ(d.metric, Metric::kBytes);
  EXPECT_EQ(usage(0), 1u);
  EXPECT_EQ(usage(2), 4000u);
  EXPECT_EQ(l->open_transactions(), 0u);
}

// A repeated item (a retried RCPT, another ACL stage) gets back exactly
// the answer it got first, whatever the counters say now: a plain
// admission, an exempt one, a shadow trip and a refusal alike. (Plain
// admissions are kept as a flag, the rest in full.)
TEST(LimiterTest, ARepeatedItemGetsItsFirstAnswerBack) {
  auto l = Make(R"pb(
    level {
      name: "mailbox"
      limit { metric: RECIPIENTS window: "1h" max: 2 }
      limit { metric: RECIPIENTS window: "1d" max: 1 shadow: true action: REJECT }
    }
    exempt { sender: "ok@x.example" }
  )pb");
  const Request r = Msg("a@x.example");
  const Decision plain = l->Reserve("Q1", "r1@y", r, kT0);
  const Decision shadow = l->Reserve("Q1", "r2@y", r, kT0);
  const Decision refused = l->Reserve("Q1", "r3@y", r, kT0);
  const Decision exempt = l->Reserve("Q2", "r1@y", Msg("ok@x.example"), kT0);
  ASSERT_TRUE(plain.admitted());
  ASSERT_FALSE(plain.shadow);
  ASSERT_TRUE(shadow.admitted());
  ASSERT_TRUE(shadow.shadow);
  ASSERT_FALSE(refused.admitted());
  ASSERT_TRUE(exempt.exempt);
  // The counters move on (another transaction spends nothing more: the
  // hard limit is reached), yet each repeat is answered as before.
  EXPECT_FALSE(l->Reserve("Q3", "r1@y", r, kT0).admitted());
  auto same = [](const Decision& a, const Decision& b) {
    EXPECT_EQ(a.action, b.action);
    EXPECT_EQ(a.exempt, b.exempt);
    EXPECT_EQ(a.shadow, b.shadow);
    EXPECT_EQ(a.shadow_action, b.shadow_action);
    EXPECT_EQ(a.level, b.level);
    EXPECT_EQ(a.metric, b.metric);
    EXPECT_EQ(a.limit, b.limit);
    EXPECT_EQ(a.usage, b.usage);
    EXPECT_EQ(a.retry_after, b.retry_after);
    EXPECT_EQ(a.smtp_code, b.smtp_code);
    EXPECT_STREQ(a.enhanced_status, b.enhanced_status);
    EXPECT_STREQ(a.text, b.text);
    EXPECT_STREQ(a.entity, b.entity);
  };
  for (int i = 0; i < 2; ++i) {
    same(l->Reserve("Q1", "r1@y", r, kT0 + absl::Minutes(1)), plain);
    same(l->Reserve("Q1", "r2@y", r, kT0 + absl::Minutes(1)), shadow);
    same(l->Reserve("Q1", "r3@y", r, kT0 + absl::Minutes(1)), refused);
    same(l->Reserve("Q2", "r1@y", Msg("ok@x.example"), kT0), exempt);
  }
  // Repeats charged nothing: two recipients counted.
  EXPECT_EQ(l->Usage(Level::kMailbox, "a@x.example", kT0).rule(0).usage(), 2u);
}

// A transaction's items are scanned while few and indexed once many: both
// ways, each repeat gets its own first answer and charges nothing, and ids
// that differ by one character stay apart (transactions and items alike).
TEST(LimiterTest, ManyItemsEachRepeatedKeepTheirOwnAnswers) {
  auto l = Make(R"pb(
    level {
      name: "mailbox"
      limit { metric: RECIPIENTS window: "1h" max: 25 }
    }
  )pb");
  const Request r = Msg("a@x.example");
  std::vector<bool> first;
  for (int i = 0; i < 40; ++i) {
    first.push_back(l->Reserve("Q1", absl::StrCat("r", i, "@y"), r, kT0).admitted());
    // Each recipient again at once (a retried RCPT), and an earlier one.
    EXPECT_EQ(l->Reserve("Q1", absl::StrCat("r", i, "@y"), r, kT0).admitted(), first[i]) << i;
    EXPECT_EQ(l->Reserve("Q1", absl::StrCat("r", i / 2, "@y"), r, kT0).admitted(), first[i / 2])
        << i;
  }
  for (int i = 0; i < 40; ++i) EXPECT_EQ(first[i], i < 25) << i;
  EXPECT_EQ(l->Usage(Level::kMailbox, "a@x.example", kT0).rule(0).usage(), 25u);
  // "Q10" and "Q1" are two transactions; "r1@y" of Q10 is a new item there.
  EXPECT_FALSE(l->Reserve("Q10", "r1@y", r, kT0).admitted());  // the limit is spent
  EXPECT_EQ(l->open_transactions(), 2u);
  // Committing Q1 keeps its 25; releasing Q10 gives nothing back it never took.
  EXPECT_TRUE(l->Commit("Q1", 0, kT0).admitted());
  l->Release("Q10", kT0);
  EXPECT_EQ(l->Usage(Level::kMailbox, "a@x.example", kT0).rule(0).usage(), 25u);
  EXPECT_EQ(l->open_transactions(), 0u);
}

TEST(LimiterTest, ReleaseGivesBackEveryRecipientOfALargeTransaction) {
  auto l = Make(R"pb(
    level {
      name: "mailbox"
      limit { metric: RECIPIENTS window: "1h" max: 1000 }
    }
    level {
      name: "domain"
      limit { metric: RECIPIENTS window: "1h" max: 1000 }
    }
  )pb");
  Request r = Msg("a@x.example");
  for (int i = 0; i < 300; ++i) {
    ASSERT_TRUE(l->Reserve("BIG", absl::StrCat("r", i, "@y"), r, kT0).admitted()) << i;
  }
  EXPECT_EQ(l->Usage(Level::kMailbox, "a@x.example", kT0).rule(0).usage(), 300u);
  l->Release("BIG", kT0);
  EXPECT_EQ(l->Usage(Level::kMailbox, "a@x.example", kT0).rule(0).usage(), 0u);
  EXPECT_EQ(l->Usage(Level::kDomain, "x.example", kT0).rule(0).usage(), 0u);
  // The same through expiry.
  for (int i = 0; i < 300; ++i) l->Reserve("OLD", absl::StrCat("r", i, "@y"), r, kT0);
  EXPECT_EQ(l->ExpireTransactions(kT0 + absl::Hours(2), absl::Minutes(10)), 1);
  EXPECT_EQ(l->Usage(Level::kMailbox, "a@x.example", kT0 + absl::Hours(2)).rule(0).usage(), 0u);
}

TEST(LimiterTest, AbandonedTransactionsExpire) {
  auto l = Make(R"pb(level {
                       name: "mailbox"
                       limit { window: "1h" max: 1 }
                     })pb");
  EXPECT_TRUE(l->Reserve("Q9", "r", Msg("a@x.example"), kT0).admitted());
  EXPECT_FALSE(l->CheckAndCharge(Msg("a@x.example"), kT0).admitted());
  EXPECT_EQ(l->ExpireTransactions(kT0 + absl::Minutes(1), absl::Minutes(10)), 0);
  EXPECT_EQ(l->ExpireTransactions(kT0 + absl::Minutes(11), absl::Minutes(10)), 1);
  EXPECT_TRUE(l->CheckAndCharge(Msg("a@x.example"), kT0 + absl::Minutes(11)).admitted());
}

TEST(LimiterTest, OpenTransactionsAreBoundedAndEvictedOnesStayCounted) {
  auto c = ParseConfigText(R"pb(level {
                                  name: "mailbox"
                                  limit { metric: RECIPIENTS window: "1h" max: 4000 }
                                })pb");
  ASSERT_TRUE(c.ok());
  Limiter::Options o;
  o.max_transactions = 256;
  auto l = Limiter::Create(*c, kT0, o);
  ASSERT_TRUE(l.ok());
  for (int i = 0; i < 3000; ++i) {
    ASSERT_TRUE(
        (*l)->Reserve(absl::StrCat("T", i), "r", Msg("a@x.example"), kT0 + absl::Milliseconds(i))
            .admitted());
    ASSERT_LE((*l)->open_transactions(), 256u);
  }
  EXPECT_EQ((*l)->Usage(Level::kMailbox, "a@x.example", kT0 + absl::Seconds(5)).rule(0).usage(),
            3000u);
  // (No leases below 4096.) The oldest were ended kept counted: releasing
  // one gives nothing back; the newest are still open: releasing gives back.
  const absl::Time t = kT0 + absl::Seconds(5);
  (*l)->Release("T0", t);
  EXPECT_EQ((*l)->Usage(Level::kMailbox, "a@x.example", t).rule(0).usage(), 3000u);
  for (int i = 2990; i < 3000; ++i) (*l)->Release(absl::StrCat("T", i), t);
  EXPECT_EQ((*l)->Usage(Level::kMailbox, "a@x.example", t).rule(0).usage(), 2990u);
  EXPECT_TRUE((*l)->Commit("T2989", 10, t).admitted());
}

TEST(LimiterTest, ResetUnblocksOneEntityOnly) {
  auto l = Make(R"pb(level {
                       name: "mailbox"
                       limit { window: "1h" max: 2 }
                       limit { window: "1d" max: 5 }
                     })pb");
  EXPECT_EQ(SendUntilBlocked(*l, "a@x.example", kT0), 2);
  EXPECT_EQ(SendUntilBlocked(*l, "b@x.example", kT0), 2);
  EXPECT_EQ(l->Reset(Level::kMailbox, "A@x.example"), 2);
  EXPECT_EQ(l->Usage(Level::kMailbox, "a@x.example", kT0).rule(0).usage(), 0u);
  EXPECT_EQ(SendUntilBlocked(*l, "a@x.example", kT0), 2);
  EXPECT_FALSE(l->CheckAndCharge(Msg("b@x.example"), kT0).admitted());
  EXPECT_EQ(l->Reset(Level::kMailbox, "never-seen@x.example"), 0);
}

TEST(LimiterTest, ExpiredTransactionsCanStayCounted) {
  auto l = Make(R"pb(level {
                       name: "mailbox"
                       limit { metric: RECIPIENTS window: "1h" max: 2 }
                     })pb");
  EXPECT_TRUE(l->Reserve("Q1", "r1", Msg("a@x.example"), kT0).admitted());
  EXPECT_TRUE(l->Reserve("Q1", "r2", Msg("a@x.example"), kT0).admitted());
  EXPECT_EQ(l->ExpireTransactions(kT0 + absl::Minutes(11), absl::Minutes(10), /*keep=*/true), 1);
  EXPECT_EQ(l->open_transactions(), 0u);
  EXPECT_FALSE(l->Reserve("Q2", "r3", Msg("a@x.example"), kT0 + absl::Minutes(11)).admitted());
}

TEST(LimiterTest, ReloadKeepsCountersOfEntitiesThatStillExist) {
  auto l = Make(R"pb(level {
                       name: "mailbox"
                       limit { window: "1h" max: 10 }
                     })pb");
  EXPECT_EQ(SendUntilBlocked(*l, "a@x.example", kT0), 10);
  auto raised = ParseConfigText(R"pb(level {
                                       name: "mailbox"
                                       limit { window: "1h" max: 15 }
                                     })pb");
  ASSERT_TRUE(l->Reload(*raised).ok());
  EXPECT_EQ(SendUntilBlocked(*l, "a@x.example", kT0), 5);
  // A bad config is refused and the running one stays.
  config::Config bad = *raised;
  bad.mutable_level(0)->mutable_limit(0)->set_window("0s");
  EXPECT_FALSE(l->Reload(bad).ok());
  EXPECT_EQ(l->config().level(0).limit(0).max(), 15u);
  config::Config other_table = *raised;
  other_table.mutable_table()->set_path("/tmp/elsewhere.tbl");
  EXPECT_EQ(l->Reload(other_table).code(), absl::StatusCode::kFailedPrecondition);
}

TEST(LimiterTest, TopReportIsSorted) {
  auto l = Make(kHosting);
  for (int i = 0; i < 3; ++i) l->CheckAndCharge(Msg("a@c.example"), kT0);
  for (int i = 0; i < 7; ++i) l->CheckAndCharge(Msg("b@c.example"), kT0);
  for (int i = 0; i < 1; ++i) l->CheckAndCharge(Msg("c@a.example"), kT0);
  auto top = l->Top(Level::kMailbox, Metric::kMessages, 0, 10, kT0);
  ASSERT_EQ(top.entry_size(), 3);
  EXPECT_EQ(top.entry(0).entity(), "b@c.example");
  EXPECT_EQ(top.entry(0).usage(), 7u);
  EXPECT_EQ(top.entry(1).entity(), "a@c.example");
  EXPECT_EQ(top.entry(2).entity(), "c@a.example");
  EXPECT_EQ(top.entry(2).limit(), 5u);  // basic plan's mailbox limit
  auto dom = l->Top(Level::kDomain, Metric::kMessages, 3600, 1, kT0);
  ASSERT_EQ(dom.entry_size(), 1);
  EXPECT_EQ(dom.entry(0).entity(), "c.example");
  EXPECT_EQ(dom.entry(0).usage(), 10u);
}

TEST(LimiterTest, TopKeepsItsNamesAcrossARestartWithSaveNames) {
  const std::string path = testing::TempPath("names.tbl");
  unlink((path + ".names").c_str());
  Limiter::Options o;
  o.save_names = true;
  config::TopReport before;
  {
    auto l = testing::MakeLimiter(kHosting, path, o);
    for (int i = 0; i < 4; ++i) l->CheckAndCharge(Msg("a@c.example"), kT0);
    l->Maintain(kT0);  // saves the names
    for (int i = 0; i < 2; ++i) l->CheckAndCharge(Msg("c@a.example"), kT0);
    // c@a is saved when the limiter goes (a daemon's clean stop).
    before = l->Top(Level::kMailbox, Metric::kMessages, 0, 10, kT0);
  }
  struct stat st;
  ASSERT_EQ(stat((path + ".names").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  {
    auto l = testing::MakeLimiter(kHosting, path, o);
    auto top = l->Top(Level::kMailbox, Metric::kMessages, 0, 10, kT0);
    ASSERT_EQ(top.entry_size(), 2);
    EXPECT_EQ(top.entry(0).entity(), "a@c.example");
    EXPECT_EQ(top.entry(0).usage(), 4u);
    EXPECT_EQ(top.entry(1).entity(), "c@a.example");
    EXPECT_EQ(top.entry(1).usage(), 2u);
    EXPECT_EQ(top.entry(1).limit(), 5u);  // basic plan's mailbox limit: the rules' owner is back
    EXPECT_EQ(top.DebugString().substr(top.DebugString().find("entry")),
              before.DebugString().substr(before.DebugString().find("entry")));
  }
  // A broken names file is ignored: the counts are there, the names not.
  {
    FILE* f = fopen((path + ".names").c_str(), "w");
    ASSERT_NE(f, nullptr);
    fputs("\xff\xff not a snapshot", f);
    fclose(f);
    auto l = testing::MakeLimiter(kHosting, path, o);
    ASSERT_NE(l, nullptr);
    EXPECT_EQ(l->Top(Level::kMailbox, Metric::kMessages, 0, 10, kT0).entry_size(), 0);
    EXPECT_EQ(l->Usage(Level::kMailbox, "a@c.example", kT0).rule(0).usage(), 4u);
  }
  // Without save_names nothing is written.
  unlink((path + ".names").c_str());
  {
    auto l = testing::MakeLimiter(kHosting, path);
    l->CheckAndCharge(Msg("c@c.example"), kT0);
    l->Maintain(kT0);
  }
  EXPECT_NE(access((path + ".names").c_str(), F_OK), 0);
}

TEST(LimiterTest, NullSenderCountsOnlyUpperLevels) {
  auto l = Make(kHosting);
  for (int i = 0; i < 20; ++i) EXPECT_TRUE(l->CheckAndCharge(Msg(""), kT0).admitted());
  EXPECT_EQ(l->Usage(Level::kServer, "", kT0).rule(0).usage(), 20u);
}

TEST(LimiterTest, NoLevelsMeansTheDefaultChain) {
  auto l = Make(R"pb(
    entity {
      level: "domain"
      name: "x.example"
      limit { window: "1h" max: 4 }
    }
    entity {
      level: "mailbox"
      name: "a@y.example"
      limit { window: "1h" max: 2 }
    }
  )pb");
  Decision d;
  EXPECT_EQ(SendUntilBlocked(*l, "a@x.example", kT0, 100, &d), 4);
  EXPECT_EQ(d.level, Level::kDomain);
  EXPECT_EQ(SendUntilBlocked(*l, "a@y.example", kT0, 100), 2);
  EXPECT_EQ(SendUntilBlocked(*l, "b@y.example", kT0, 100), 100);
  EXPECT_EQ(l->Usage(Level::kServer, "", kT0).rule_size(), 0);
}

TEST(LimiterTest, AddressCaseDoesNotMatter) {
  auto l = Make(kHosting);
  EXPECT_EQ(SendUntilBlocked(*l, "Mixed@C.Example", kT0), 10);
  EXPECT_FALSE(l->CheckAndCharge(Msg("mixed@c.example"), kT0).admitted());
}

}  // namespace
}  // namespace sluice
