#include "bindings/engine/door_coverage.h"

#include "gtest/gtest.h"
#include "ratelimit/config.h"

namespace sluice {
namespace {

config::Config Parse(const char* text) {
  auto c = ParseConfigText(text);
  EXPECT_TRUE(c.ok()) << c.status();
  return *c;
}

TEST(DoorCoverageTest, PolicyServiceCannotFeedHeaderAndBodyRules) {
  const config::Config c = Parse(R"pb(
    level {
      name: "mailbox"
      limit { window: "1h" max: 100 }
    }
    level {
      name: "script"
      limit { window: "1h" max: 50 }
    }
    abuse {
      near_duplicate { threshold: 5 }
      campaign { off: true }
      auth_failures_per_ip { threshold: 5 }
      ips_per_user { threshold: 5 }
    }
    reputation { list { zone: "dbl.example" check: BODY_URLS } }
  )pb");
  const std::vector<std::string> w = UnfedRules(c, kPostfixPolicyService);
  ASSERT_EQ(w.size(), 4u);
  EXPECT_EQ(w[0],
            "warning: level \"script\" never trips: the Postfix policy service does not see "
            "headers (X-PHP-Originating-Script) (the milter or the Exim module does)");
  EXPECT_NE(w[1].find("\"near_duplicate\""), std::string::npos);
  EXPECT_EQ(w[2],
            "warning: abuse detector \"auth_failures_per_ip\" never trips: the Postfix policy "
            "service does not see failed AUTH (follow the MTA's log with --follow-log)");
  EXPECT_NE(w[3].find("\"dbl.example\" on body URLs"), std::string::npos);  // campaign is off
  // Following the log feeds failed AUTH; headers and bodies still lack.
  const std::vector<std::string> logs = UnfedRules(c, WithLogFollower(kPostfixPolicyService));
  ASSERT_EQ(logs.size(), 3u);
  for (const auto& line : logs) EXPECT_EQ(line.find("auth_failures"), std::string::npos) << line;
  // A door that sees everything has nothing to warn about.
  DoorSees all{"a milter", true, true, true, true, true};
  EXPECT_TRUE(UnfedRules(c, all).empty());
}

// The embedded default limits PHP scripts, which only a door that sees
// headers can feed: the policy service says so, a milter would not.
TEST(DoorCoverageTest, DefaultConfigNamesItsScriptLevel) {
  auto c = ParseConfigText(DefaultConfigText(), "default");
  ASSERT_TRUE(c.ok());
  const std::vector<std::string> w = UnfedRules(*c, kPostfixPolicyService);
  ASSERT_EQ(w.size(), 1u);
  EXPECT_NE(w[0].find("level \"script\""), std::string::npos);
  DoorSees milter{"a milter", true, true, true, true, true};
  EXPECT_TRUE(UnfedRules(*c, milter).empty());
  EXPECT_EQ(ConfigSummary("x.conf", *c, milter).substr(0, 16), "x.conf is valid:");
}

}  // namespace
}  // namespace sluice
