#include "reputation/abuse/session_signals.h"

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace sluice {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1767225600);
using Signal = SessionSignals::Signal;

std::unique_ptr<SessionSignals> Make(SessionSignals::Options o = {}) {
  o.table.capacity = 4096;
  auto s = SessionSignals::Create(o, kT0);
  EXPECT_TRUE(s.ok()) << s.status();
  return std::move(*s);
}

TEST(SessionSignalsTest, AuthBruteForceBlocksTheIpForTheBlockTime) {
  auto s = Make();
  for (int i = 0; i < 9; ++i) {
    EXPECT_EQ(s->AuthFailed("198.51.100.7", absl::StrCat("user", i), kT0).detector,
              Detector::kNone);
  }
  auto v = s->AuthFailed("198.51.100.7", "user9", kT0 + absl::Seconds(5));
  EXPECT_EQ(v.detector, Detector::kAuthFailuresPerIp);
  EXPECT_EQ(v.count, 10u);
  // Blocked: connections and logins are refused until the block ends.
  EXPECT_EQ(s->Connect("198.51.100.7", kT0 + absl::Minutes(30)).detector, Detector::kBlocked);
  EXPECT_EQ(s->AuthSucceeded("198.51.100.7", "anna", kT0 + absl::Minutes(30)).detector,
            Detector::kBlocked);
  auto left = s->CheckBlocked("198.51.100.7", "", kT0 + absl::Minutes(30)).retry_after;
  EXPECT_GT(left, absl::Minutes(29));
  EXPECT_LE(left, absl::Minutes(31));
  EXPECT_EQ(s->Connect("198.51.100.7", kT0 + absl::Minutes(62)).detector, Detector::kNone);
  // Another address is not affected.
  EXPECT_EQ(s->Connect("198.51.100.8", kT0 + absl::Minutes(30)).detector, Detector::kNone);
}

TEST(SessionSignalsTest, AuthBruteForceOnOneUserFromManyIps) {
  auto s = Make();
  Detector last = Detector::kNone;
  int tries = 0;
  for (; tries < 30 && last == Detector::kNone; ++tries) {
    last = s->AuthFailed(absl::StrCat("203.0.113.", tries), "ceo@corp.example", kT0).detector;
  }
  EXPECT_EQ(last, Detector::kAuthFailuresPerUser);
  EXPECT_EQ(tries, 20);
  EXPECT_EQ(s->AuthSucceeded("192.0.2.1", "ceo@corp.example", kT0).detector, Detector::kBlocked);
  s->Unblock("ceo@corp.example", kT0);
  EXPECT_EQ(s->AuthSucceeded("192.0.2.1", "ceo@corp.example", kT0).detector, Detector::kNone);
}

TEST(SessionSignalsTest, HarvestingBlocksTheIp) {
  auto s = Make();
  for (int i = 0; i < 19; ++i) EXPECT_FALSE(s->UnknownRecipient("192.0.2.9", kT0).reject());
  EXPECT_EQ(s->UnknownRecipient("192.0.2.9", kT0).detector, Detector::kUnknownRecipientsPerIp);
  EXPECT_EQ(s->Connect("192.0.2.9", kT0 + absl::Minutes(1)).detector, Detector::kBlocked);
}

TEST(SessionSignalsTest, CompromisedAccountSigns) {
  auto s = Make();
  // Normal: two addresses in one network.
  EXPECT_EQ(s->AuthSucceeded("192.0.2.10", "anna@x.example", kT0).detector, Detector::kNone);
  EXPECT_EQ(s->AuthSucceeded("192.0.2.11", "anna@x.example", kT0).detector, Detector::kNone);
  // A login from a network never seen for anna.
  EXPECT_EQ(s->AuthSucceeded("198.51.100.3", "anna@x.example", kT0).detector,
            Detector::kNewNetwork);
  EXPECT_EQ(s->AuthSucceeded("198.51.100.4", "anna@x.example", kT0).detector, Detector::kNone);
  // A botnet logging in from many networks within the hour.
  Detector last = Detector::kNone;
  int n = 0;
  for (; n < 20 && last != Detector::kNetworksPerUser; ++n) {
    last = s->AuthSucceeded(absl::StrCat("10.", n, ".0.1"), "bob@x.example", kT0 + absl::Minutes(n))
               .detector;
  }
  EXPECT_EQ(last, Detector::kNetworksPerUser);
  EXPECT_EQ(n, 5);
  // Many addresses in one network trip the IP count instead.
  SessionSignals::Options o;
  o.max_networks_per_user = 100;
  auto t = Make(o);
  last = Detector::kNone;
  for (n = 0; n < 30 && last != Detector::kIpsPerUser; ++n) {
    last = t->AuthSucceeded(absl::StrCat("172.16.5.", n), "carl@x.example", kT0).detector;
  }
  EXPECT_EQ(last, Detector::kIpsPerUser);
  EXPECT_EQ(n, 11);
  // Two hours later the windows have rolled over.
  EXPECT_EQ(t->AuthSucceeded("172.16.5.1", "carl@x.example", kT0 + absl::Hours(3)).detector,
            Detector::kNone);
}

TEST(SessionSignalsTest, ConnectionConcurrencyAndRate) {
  SessionSignals::Options o;
  o.max_concurrent_per_ip = 3;
  o.max_connections_per_ip = 5;
  auto s = Make(o);
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(s->Connect("192.0.2.50", kT0).reject());
  EXPECT_EQ(s->Connect("192.0.2.50", kT0).detector, Detector::kConcurrentConnectionsPerIp);
  s->Disconnect("192.0.2.50", kT0 + absl::Seconds(1));
  EXPECT_FALSE(s->Connect("192.0.2.50", kT0 + absl::Seconds(2)).reject());  // 5th in the minute
  EXPECT_EQ(s->Connect("192.0.2.50", kT0 + absl::Seconds(3)).detector, Detector::kConnectionsPerIp);
  // A minute and more later the rate has room again (the 3 open remain).
  for (int i = 0; i < 3; ++i) s->Disconnect("192.0.2.50", kT0 + absl::Minutes(3));
  EXPECT_FALSE(s->Connect("192.0.2.50", kT0 + absl::Minutes(3)).reject());
}

TEST(SessionSignalsTest, Networks) {
  EXPECT_EQ(SessionSignals::Network("192.0.2.77"), "192.0.2.0/24");
  EXPECT_EQ(SessionSignals::Network("2001:db8:1:2:3::9"), "2001:db8:1::/48");
  EXPECT_EQ(SessionSignals::Network("not-an-ip"), "not-an-ip");
}

}  // namespace
}  // namespace sluice
