#include "ratelimit/config.h"

#include "gtest/gtest.h"

namespace sluice {
namespace {

std::string Error(absl::string_view text) {
  auto c = ParseConfigText(text, "sluice.conf");
  EXPECT_FALSE(c.ok());
  return std::string(c.status().message());
}

TEST(ConfigTest, DefaultConfigIsValid) {
  auto c = ParseConfigText(DefaultConfigText());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->level_size(), 7);
}

TEST(ConfigTest, AbuseBlockRulesAreCheckedWithTheirPlace) {
  EXPECT_EQ(Error("abuse {\n  contained_blocks: 65\n}"),
            "sluice.conf:2:3: contained_blocks must be in [0, 64] (0: off)");
  EXPECT_EQ(Error("abuse { shared_blocks: -1 }"),
            "sluice.conf:1:9: shared_blocks must be in [0, 1000] (0: off)");
  EXPECT_TRUE(ParseConfigText("abuse { contained_blocks: 0 shared_blocks: 0 }").ok());
  EXPECT_TRUE(ParseConfigText("abuse { contained_blocks: 64 }").ok());
  EXPECT_EQ(Error("abuse {\n  similarity: 0.5\n  head_blocks: 9\n}"),
            "sluice.conf:3:3: head_blocks must be in [0, 8] (0: off)");
  EXPECT_TRUE(ParseConfigText("abuse { head_blocks: 0 }").ok());
  EXPECT_TRUE(ParseConfigText("abuse { head_blocks: 8 }").ok());
}

TEST(ConfigTest, ClusterSectionsAreCheckedWithTheirPlace) {
  EXPECT_EQ(Error("cluster {\n  server: \"redis.example\"\n  hosts: 2\n}"),
            "sluice.conf:2:3: bad server \"redis.example\" (HOST:PORT)");
  EXPECT_EQ(Error("cluster { server: \"a:1\" server: \"b:2\" hosts: 2 }"),
            "sluice.conf:1:25: several servers are a Redis Cluster's seeds: set "
            "redis_cluster: true");
  EXPECT_EQ(Error("cluster { server: \"a:1\" }"),
            "sluice.conf:1:11: cluster needs `hosts`: how many hosts share the limits (their "
            "fallback share)");
  EXPECT_EQ(Error("cluster { server: \"a:1\" hosts: 2 interval: \"0s\" }"),
            "sluice.conf:1:34: bad duration \"0s\" (e.g. \"200ms\", up to 1m)");
  EXPECT_EQ(Error("cluster { server: \"a:1\" hosts: 2 shared_level: \"planet\" }"),
            "sluice.conf:1:34: unknown level \"planet\"");
  EXPECT_EQ(Error("cluster { server: \"a:1\" hosts: 2 fallback_share: 1.5 }"),
            "sluice.conf:1:34: fallback_share must be in (0, 1]");
  EXPECT_TRUE(ParseConfigText("cluster { server: \"a:1\" server: \"b:2\" redis_cluster: true "
                              "hosts: 3 shared_level: \"subscription\" }")
                  .ok());
}

TEST(ConfigTest, Windows) {
  EXPECT_EQ(*ParseWindow("90s"), 90);
  EXPECT_EQ(*ParseWindow("15m"), 900);
  EXPECT_EQ(*ParseWindow("1h"), 3600);
  EXPECT_EQ(*ParseWindow("2d"), 172800);
  EXPECT_EQ(*ParseWindow("45"), 45);
  EXPECT_FALSE(ParseWindow("").ok());
  EXPECT_FALSE(ParseWindow("h").ok());
  EXPECT_FALSE(ParseWindow("1w").ok());
  EXPECT_FALSE(ParseWindow("-5m").ok());
  EXPECT_FALSE(ParseWindow("0s").ok());
  EXPECT_EQ(FormatWindow(3600), "1h");
  EXPECT_EQ(FormatWindow(90), "90s");
}

TEST(ConfigTest, SyntaxErrorsHaveLineAndColumn) {
  EXPECT_EQ(Error("level { name: \"mailbox\"\n  limit { window: \"1h\" max: 10 \n"),
            "sluice.conf:3:1: Expected identifier, got: ");
  EXPECT_EQ(Error("level { nmae: \"mailbox\" }"),
            "sluice.conf:1:13: Message type \"sluice.config.Level\" has no field named \"nmae\".");
  EXPECT_EQ(Error("level {\n  name: \"mailbox\"\n  limit { max: -3 window: \"1h\" }\n}"),
            "sluice.conf:3:16: Expected integer, got: -");
}

TEST(ConfigTest, LoginMappingErrorsHavePositions) {
  EXPECT_EQ(Error("level { name: \"mailbox\" }\npolicy { login_domain: \"a@b\" }"),
            "sluice.conf:2:10: login_domain must be a domain (e.g. \"acme.example\")");
  EXPECT_EQ(Error("level { name: \"mailbox\" }\npolicy {\n  login { name: \"alice\" address: "
                  "\"alice\" }\n}"),
            "sluice.conf:3:25: a login entry maps to an address (address: "
            "\"alice@acme.example\")");
  EXPECT_EQ(
      Error("level { name: \"mailbox\" }\npolicy { login { name: \"a@b\" address: \"x@y\" } }"),
      "sluice.conf:2:18: a login entry needs the login without '@' (name: \"alice\")");
}

TEST(ConfigTest, UnknownLevel) {
  EXPECT_EQ(Error("level { name: \"mailbox\" }\nlevel { name: \"mailboxes\" }"),
            "sluice.conf:2:9: unknown level \"mailboxes\" (levels: server, plan, subscription, "
            "domain, mailbox, client_ip, sasl_user, script, list)");
}

TEST(ConfigTest, ZeroAndBadWindow) {
  EXPECT_EQ(Error("level {\n  name: \"mailbox\"\n  limit { window: \"0m\" max: 5 }\n}"),
            "sluice.conf:3:11: window \"0m\" must be positive");
  EXPECT_EQ(Error("level { name: \"mailbox\" limit { window: \"1 hour\" max: 5 } }"),
            "sluice.conf:1:33: bad window \"1 hour\" (use e.g. \"90s\", \"15m\", \"1h\", \"1d\")");
  EXPECT_EQ(Error("level { name: \"mailbox\" limit { max: 5 } }"),
            "sluice.conf:1:33: limit needs a window (e.g. window: \"1h\")");
  EXPECT_EQ(Error("level { name: \"mailbox\" limit { window: \"30d\" max: 5 } }"),
            "sluice.conf:1:33: sliding window longer than 393204s is not supported; use GCRA "
            "for longer periods");
}

TEST(ConfigTest, LimitNeedsMaxOrUnlimited) {
  EXPECT_EQ(Error("level { name: \"mailbox\" limit { window: \"1h\" } }"),
            "sluice.conf:1:33: limit needs max (0 blocks) or unlimited: true");
  EXPECT_EQ(Error("level { name: \"mailbox\" limit { window: \"1h\" max: 3 unlimited: true } }"),
            "sluice.conf:1:53: a limit has either max or unlimited, not both");
}

TEST(ConfigTest, OverrideOfUnknownEntityOrParent) {
  EXPECT_EQ(Error("level { name: \"domain\" }\n"
                  "entity { level: \"domain\" name: \"a.example\" parent: \"nosuch\" }"),
            "sluice.conf:2:44: unknown parent \"nosuch\" (no entity of a level above domain "
            "has that name)");
  EXPECT_EQ(Error("level { name: \"domain\" }\nentity { level: \"mailbox\" name: \"a@b\" }"),
            "sluice.conf:2:10: level \"mailbox\" is not configured (add level { name: "
            "\"mailbox\" })");
  EXPECT_EQ(Error("level { name: \"domain\" }\n"
                  "entity { level: \"domain\" name: \"a.example\" }\n"
                  "entity { level: \"domain\" name: \"A.example\" }"),
            "sluice.conf:3:26: duplicate entity \"A.example\" at level domain");
}

TEST(ConfigTest, AppliesToMustPointDown) {
  EXPECT_EQ(Error("level { name: \"plan\" }\nlevel { name: \"mailbox\" }\n"
                  "entity { level: \"plan\" name: \"p\"\n"
                  "         limit { applies_to: \"server\" window: \"1h\" max: 1 } }"),
            "sluice.conf:4:18: applies_to must name a level below \"plan\" in the hierarchy");
  EXPECT_EQ(Error("level { name: \"plan\" }\n"
                  "entity { level: \"plan\" name: \"p\"\n"
                  "         limit { applies_to: \"domain\" window: \"1h\" max: 1 } }"),
            "sluice.conf:3:18: level \"domain\" is not configured");
  EXPECT_EQ(
      Error("level { name: \"mailbox\" limit { applies_to: \"mailbox\" window: \"1h\" max: 1 } }"),
      "sluice.conf:1:33: applies_to is only valid on an entity's limit");
}

TEST(ConfigTest, Misc) {
  EXPECT_EQ(Error("level { name: \"mailbox\" }\nlevel { name: \"mailbox\" }"),
            "sluice.conf:2:9: level \"mailbox\" configured twice");
  EXPECT_EQ(Error("exempt { cidr: \"10.0.0.0/8\" cidr: \"10.0.0.0/33\" }"),
            "sluice.conf:1:29: bad CIDR \"10.0.0.0/33\"");
  EXPECT_EQ(Error("level { name: \"mailbox\" limit { window: \"1h\" max: 1 action: DEFER "
                  "smtp_code: 550 } }"),
            "sluice.conf:1:67: smtp_code must be 4xx for DEFER and 5xx for REJECT");
  EXPECT_EQ(Error("level { name: \"mailbox\" limit { window: \"1h\" max: 1 burst: 3 } }"),
            "sluice.conf:1:53: burst applies to algorithm: GCRA only");
  EXPECT_EQ(Error("level { name: \"mailbox\" limit { algorithm: GCRA window: \"1m\" max: 6 "
                  "burst: 333333333333333335 } }"),
            "sluice.conf:1:69: burst must be between 1 and 1000000000");
  EXPECT_EQ(Error("level { name: \"domain\" ipv4_prefix: 24 }"),
            "sluice.conf:1:9: ipv4_prefix/ipv6_prefix apply to client_ip only");
  EXPECT_EQ(Error("table { max_probe: 0 }"), "sluice.conf:1:9: max_probe must be in [1, 4096]");
}

TEST(ConfigTest, AbuseAndPolicySections) {
  auto ok = ParseConfigText(
      "abuse {\n"
      "  same_size { threshold: 30 window: \"10m\" action: REJECT smtp_code: 554 }\n"
      "  auth_failures_per_ip { threshold: 5 window: \"15m\" block: \"2h\" }\n"
      "  new_network { action: NOTIFY }\n"
      "  campaign { off: true }\n"
      "  similarity: 0.5 sender_ownership: ALIAS_MAP\n"
      "  alias { login: \"bob\" address: \"@acme.example\" }\n"
      "}\n"
      "policy { identity: \"sasl_username\" identity: \"sender\" transaction_timeout: \"5m\" }\n");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->abuse().same_size().threshold(), 30u);
  EXPECT_EQ(Error("abuse {\n  same_size { window: \"10q\" }\n}"),
            "sluice.conf:2:15: bad window \"10q\" (use e.g. \"90s\", \"15m\", \"1h\", \"1d\")");
  EXPECT_EQ(Error("abuse { auth_failures_per_user { block: \"-1h\" } }"),
            "sluice.conf:1:34: window \"-1h\" must be positive");
  EXPECT_EQ(Error("abuse { harvest: 1 }"),
            "sluice.conf:1:16: Message type \"sluice.config.Abuse\" has no field named "
            "\"harvest\".");
  EXPECT_EQ(Error("abuse { near_duplicate { threshold: 0 } }"),
            "sluice.conf:1:26: threshold must be in [1, 137438953471] (off: true disables)");
  EXPECT_EQ(Error("abuse { sender_mismatch { action: DEFER smtp_code: 553 } }"),
            "sluice.conf:1:41: smtp_code must be 4xx for DEFER and 5xx for REJECT");
  EXPECT_EQ(Error("abuse { similarity: 1.5 }"), "sluice.conf:1:9: similarity must be in (0, 1]");
  EXPECT_EQ(Error("abuse { alias { login: \"bob\" address: \"acme.example\" } }"),
            "sluice.conf:1:30: \"acme.example\" is neither an address nor @domain");
  EXPECT_EQ(Error("abuse { table { max_probe: 9999 } }"),
            "sluice.conf:1:17: max_probe must be in [1, 4096]");
  EXPECT_EQ(
      Error("policy { identity: \"helo\" }"),
      "sluice.conf:1:10: unknown identity \"helo\" (sasl_username, sender or client_address)");
}

TEST(ConfigTest, ReputationSection) {
  auto ok = ParseConfigText(
      "reputation {\n"
      "  list { zone: \"zen.bl.test\" kind: SPAMHAUS match: \"127.0.0.[2..11]\" weight: 2 }\n"
      "  list { zone: \"dbl.bl.test\" check: MAIL_FROM_DOMAIN check: BODY_URLS }\n"
      "  list { zone: \"wl.bl.test\" kind: DNSWL weight: -1 match: \"mask:0x02\" }\n"
      "  threshold: 2 budget: \"1500ms\" nameserver: \"127.0.0.1\" port: 5353\n"
      "}\n");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->reputation().list_size(), 3);
  EXPECT_EQ(Error("reputation {\n  list { zone: \"zen.bl.test\" match: \"127.0.0.[9..2]\" }\n}"),
            "sluice.conf:2:30: bad range \"[9..2]\" in \"127.0.0.[9..2]\"");
  EXPECT_EQ(Error("reputation { list { weight: 1 } }"),
            "sluice.conf:1:14: a list needs a zone (e.g. zone: \"zen.spamhaus.org\")");
  EXPECT_EQ(Error("reputation { budget: \"soon\" }"),
            "sluice.conf:1:14: bad duration \"soon\" (e.g. \"500ms\", \"2s\")");
}

TEST(ConfigTest, ValidationWithoutTextNamesTheField) {
  config::Config c;
  c.add_level()->set_name("mailbox");
  auto* l = c.mutable_level(0)->add_limit();
  l->set_window("1x");
  l->set_max(1);
  auto s = ValidateConfig(c);
  EXPECT_EQ(s.message(),
            "<config>: level[0].limit[0].window: bad window \"1x\" (use e.g. "
            "\"90s\", \"15m\", \"1h\", \"1d\")");
}

TEST(ConfigTest, MissingFile) {
  auto c = LoadConfigFile("/nonexistent/sluice.conf");
  EXPECT_EQ(c.status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace sluice
