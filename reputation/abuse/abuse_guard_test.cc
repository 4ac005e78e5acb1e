#include "reputation/abuse/abuse_guard.h"

#include <vector>

#include "gtest/gtest.h"
#include "ratelimit/config.h"

namespace sluice {
namespace {

using D = AbuseGuard::Detector;
const absl::Time kT0 = absl::FromUnixSeconds(1700000000);

std::unique_ptr<AbuseGuard> Make(absl::string_view text,
                                 std::vector<AbuseGuard::Event>* events = nullptr) {
  auto c = ParseConfigText(text);
  EXPECT_TRUE(c.ok()) << c.status();
  auto g = AbuseGuard::Create(*c, kT0);
  EXPECT_TRUE(g.ok()) << g.status();
  if (events != nullptr) {
    (*g)->AddEventSink([events](const AbuseGuard::Event& e) { events->push_back(e); });
  }
  return std::move(*g);
}

Fingerprint SizeOnly(uint64_t size) {
  Fingerprint fp;
  fp.size = size;
  fp.size_bucket = Fingerprint::SizeBucket(size);
  return fp;
}

TEST(AbuseGuardTest, AuthBruteForceBlocksForTheConfiguredTime) {
  std::vector<AbuseGuard::Event> events;
  auto g = Make(
      "abuse { auth_failures_per_ip { threshold: 3 window: \"10m\" block: \"30m\" "
      "action: REJECT } }",
      &events);
  absl::Time t = kT0;
  EXPECT_FALSE(g->AuthFailed("192.0.2.7", "bob", t).tripped());
  EXPECT_FALSE(g->AuthFailed("192.0.2.7", "carol", t).tripped());
  auto f = g->AuthFailed("192.0.2.7", "dave", t);
  EXPECT_EQ(f.detector, D::kAuthFailuresPerIp);
  EXPECT_EQ(f.action, Action::kReject);
  EXPECT_FALSE(f.admitted());
  EXPECT_EQ(f.count, 3u);
  EXPECT_EQ(f.limit, 3u);
  EXPECT_EQ(f.smtp_code, 550);
  EXPECT_STREQ(f.enhanced_status, "5.7.1");
  EXPECT_STREQ(f.text, "sluice: too many failed logins");
  auto b = g->CheckBlocked("192.0.2.7", "", t + absl::Minutes(29));
  EXPECT_EQ(b.detector, D::kBlocked);
  EXPECT_FALSE(b.admitted());
  EXPECT_EQ(b.retry_after, absl::Minutes(1));
  EXPECT_FALSE(g->CheckBlocked("192.0.2.8", "", t).tripped());
  EXPECT_FALSE(g->CheckBlocked("192.0.2.7", "", t + absl::Minutes(31)).tripped());
  ASSERT_EQ(events.size(), 2u);  // the trip, then one "blocked"
  EXPECT_EQ(events[0].detector, D::kAuthFailuresPerIp);
  EXPECT_EQ(events[0].key, "192.0.2.7");
}

TEST(AbuseGuardTest, ShadowAndNotifyNeverBlock) {
  for (const char* mode : {"shadow: true", "action: NOTIFY"}) {
    auto g = Make(absl::StrCat("abuse { unknown_recipients_per_ip { threshold: 2 ", mode, " } }"));
    g->UnknownRecipient("198.51.100.1", kT0);
    auto f = g->UnknownRecipient("198.51.100.1", kT0);
    EXPECT_EQ(f.detector, D::kUnknownRecipientsPerIp) << mode;
    EXPECT_TRUE(f.admitted()) << mode;
    EXPECT_FALSE(g->CheckBlocked("198.51.100.1", "", kT0 + absl::Seconds(1)).tripped()) << mode;
  }
}

TEST(AbuseGuardTest, OffDetectorNeverTrips) {
  auto g = Make("abuse { same_size { off: true } }");
  for (int i = 0; i < 100; ++i) {
    EXPECT_FALSE(g->Message("a@acme.example", SizeOnly(5000), kT0).tripped());
  }
}

TEST(AbuseGuardTest, SameSizeBurstWithCustomReplyAndOneEventPerWindow) {
  std::vector<AbuseGuard::Event> events;
  auto g = Make(
      "abuse { same_size { threshold: 3 window: \"10m\" smtp_code: 452 "
      "enhanced_status: \"4.7.0\" text: \"slow down\" } }",
      &events);
  EXPECT_FALSE(g->Message("a@acme.example", SizeOnly(5000), kT0).tripped());
  EXPECT_FALSE(g->Message("a@acme.example", SizeOnly(5001), kT0).tripped());
  auto f = g->Message("a@acme.example", SizeOnly(5002), kT0);
  EXPECT_EQ(f.detector, D::kSameSize);
  EXPECT_EQ(f.action, Action::kDefer);
  EXPECT_EQ(f.smtp_code, 452);
  EXPECT_STREQ(f.enhanced_status, "4.7.0");
  EXPECT_STREQ(f.text, "slow down");
  EXPECT_EQ(f.limit, 3u);
  for (int i = 0; i < 5; ++i) g->Message("a@acme.example", SizeOnly(5000), kT0);
  // Another sender is counted on its own.
  EXPECT_FALSE(g->Message("b@acme.example", SizeOnly(5000), kT0).tripped());
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].key, "a@acme.example");
  // The next window emits again.
  for (int i = 0; i < 3; ++i) g->Message("a@acme.example", SizeOnly(5000), kT0 + absl::Hours(1));
  EXPECT_EQ(events.size(), 2u);
}

TEST(AbuseGuardTest, SenderMismatchDefaultsToReject553) {
  auto g = Make(
      "abuse { sender_ownership: ALIAS_MAP alias { login: \"bob@acme.example\" "
      "address: \"@shop.example\" } }");
  EXPECT_FALSE(g->MailFrom("bob@acme.example", "bob@acme.example", kT0).tripped());
  EXPECT_FALSE(g->MailFrom("bob@acme.example", "sales@shop.example", kT0).tripped());
  auto f = g->MailFrom("bob@acme.example", "ceo@bank.example", kT0);
  EXPECT_EQ(f.detector, D::kSenderMismatch);
  EXPECT_EQ(f.action, Action::kReject);
  EXPECT_EQ(f.smtp_code, 553);
  EXPECT_FALSE(f.admitted());
}

TEST(AbuseGuardTest, CampaignIsNotifyOnlyByDefault) {
  auto g = Make("abuse { same_size { off: true } near_duplicate { off: true } }");
  Fingerprinter fper;
  Fingerprint fp;
  fper.Compute("Subject: x\n\nCheap watches at the lowest prices ever seen anywhere today", &fp);
  AbuseGuard::Finding last;
  for (int i = 0; i < 10; ++i) {
    last = g->Message(absl::StrCat("user", i, "@acme.example"), fp, kT0);
  }
  EXPECT_EQ(last.detector, D::kCampaign);
  EXPECT_EQ(last.action, Action::kNotify);
  EXPECT_TRUE(last.admitted());
}

TEST(AbuseGuardTest, ConnectionLimitsFromConfig) {
  auto g = Make("abuse { concurrent_connections_per_ip { threshold: 2 } }");
  EXPECT_FALSE(g->Connect("203.0.113.5", kT0).tripped());
  EXPECT_FALSE(g->Connect("203.0.113.5", kT0).tripped());
  auto f = g->Connect("203.0.113.5", kT0);
  EXPECT_EQ(f.detector, D::kConcurrentConnectionsPerIp);
  EXPECT_FALSE(f.admitted());
  g->Disconnect("203.0.113.5", kT0);
  EXPECT_FALSE(g->Connect("203.0.113.5", kT0).tripped());
}

}  // namespace
}  // namespace sluice
