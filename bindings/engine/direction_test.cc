#include "bindings/engine/direction.h"

#include "gtest/gtest.h"
#include "ratelimit/config.h"

namespace sluice {
namespace {

DirectionRules Rules(absl::string_view text) {
  auto c = ParseConfigText(text);
  EXPECT_TRUE(c.ok()) << c.status();
  return DirectionRules(*c);
}

SmtpEvent From(absl::string_view client, absl::string_view sasl = "") {
  SmtpEvent e;
  e.stage = Stage::kRcpt;
  e.client_address = client;
  e.sasl_username = sasl;
  e.sender = "info@bakery.example";
  return e;
}

TEST(DirectionTest, DefaultTrustsLoopbackOnly) {
  DirectionRules d = Rules("");
  EXPECT_EQ(d.Classify(From("127.0.0.1")).reason, DirectionReason::kTrustedNetwork);
  EXPECT_EQ(d.Classify(From("127.8.9.10")).reason, DirectionReason::kTrustedNetwork);
  EXPECT_EQ(d.Classify(From("::1")).reason, DirectionReason::kTrustedNetwork);
  EXPECT_EQ(d.Classify(From("::ffff:127.0.0.1")).reason, DirectionReason::kTrustedNetwork);
  for (const char* ip : {"203.0.113.9", "192.0.2.10", "::2", "2001:db8::1", "::ffff:203.0.113.9",
                         "garbage", "127.0.0.1.example", "unknown"}) {
    DirectionRules::Result r = d.Classify(From(ip));
    EXPECT_EQ(r.direction, Direction::kInbound) << ip;
    EXPECT_EQ(r.reason, DirectionReason::kUntrustedClient) << ip;
  }
}

TEST(DirectionTest, LoginAndLocalSubmissionAreOutgoing) {
  DirectionRules d = Rules("");
  DirectionRules::Result r = d.Classify(From("203.0.113.9", "alice@acme.example"));
  EXPECT_TRUE(r.outgoing());
  EXPECT_EQ(r.reason, DirectionReason::kSaslLogin);
  r = d.Classify(From(""));
  EXPECT_TRUE(r.outgoing());
  EXPECT_EQ(r.reason, DirectionReason::kLocal);
}

TEST(DirectionTest, TheDoorsWordComesFirst) {
  DirectionRules d = Rules("");
  SmtpEvent e = From("203.0.113.9");
  e.direction = Direction::kOutgoing;  // e.g. Postfix's non_smtpd_milters
  EXPECT_TRUE(d.Classify(e).outgoing());
  EXPECT_EQ(d.Classify(e).reason, DirectionReason::kDoor);
  e = From("127.0.0.1", "alice");
  e.direction = Direction::kInbound;
  EXPECT_FALSE(d.Classify(e).outgoing());
  EXPECT_EQ(d.Classify(e).reason, DirectionReason::kDoor);
}

TEST(DirectionTest, ConfiguredNetworksReplaceTheDefault) {
  DirectionRules d =
      Rules(R"pb(policy { trusted_network: "192.0.2.0/24" trusted_network: "2001:db8::/32" })pb");
  EXPECT_TRUE(d.Classify(From("192.0.2.77")).outgoing());
  EXPECT_TRUE(d.Classify(From("2001:db8:1::5")).outgoing());
  EXPECT_FALSE(d.Classify(From("127.0.0.1")).outgoing());  // replaced, not added to
  EXPECT_FALSE(d.Classify(From("192.0.3.1")).outgoing());
}

TEST(DirectionTest, PortsAndDoorNames) {
  DirectionRules d = Rules(R"pb(policy { outgoing_port: 587 outgoing_door: "submission" })pb");
  SmtpEvent e = From("203.0.113.9");
  e.server_port = 25;
  EXPECT_FALSE(d.Classify(e).outgoing());
  e.server_port = 587;
  EXPECT_EQ(d.Classify(e).reason, DirectionReason::kOutgoingPort);
  e.server_port = 25;
  e.door_name = "Submission";
  EXPECT_EQ(d.Classify(e).reason, DirectionReason::kOutgoingDoor);
  e.door_name = "smtp";
  EXPECT_FALSE(d.Classify(e).outgoing());
}

TEST(DirectionTest, LocalDomainsAreEntitiesAndListedOnes) {
  DirectionRules d = Rules(R"pb(
    level { name: "domain" }
    entity { level: "domain" name: "Bakery.example" }
    policy { local_domain: "acme.example" }
  )pb");
  EXPECT_TRUE(d.IsLocalDomain("bakery.example"));
  EXPECT_TRUE(d.IsLocalDomain("ACME.example"));
  EXPECT_FALSE(d.IsLocalDomain("remote.example"));
  EXPECT_FALSE(d.IsLocalDomain(""));
}

TEST(DirectionTest, BadSettingsAreRefusedWithTheirPosition) {
  auto c = ParseConfigText("policy {\n  trusted_network: \"10.0.0.0/33\"\n}\n", "t.conf");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("t.conf:2:3"), std::string::npos) << c.status();
  c = ParseConfigText("policy { outgoing_port: 70000 }", "t.conf");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("1..65535"), std::string::npos) << c.status();
  c = ParseConfigText("policy { local_domain: \"a@b\" }", "t.conf");
  ASSERT_FALSE(c.ok());
  c = ParseConfigText("reputation { list { zone: \"z.example\" inbound: false } }", "t.conf");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("judges no mail"), std::string::npos) << c.status();
}

}  // namespace
}  // namespace sluice
