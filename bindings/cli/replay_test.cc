#include "bindings/cli/replay.h"

#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "ratelimit/config.h"
#include "ratelimit/testing.h"

namespace sluice {
namespace {

// A Postfix log of n messages from `sender` (SMTP with a login) a minute
// apart from 15:00, and one local submission.
std::string Log(int n, const std::string& sender) {
  std::string s;
  for (int i = 0; i < n; ++i) {
    const std::string id = absl::StrCat("A", i);
    const std::string at = absl::StrFormat("Dec  6 15:%02d:00", i);
    absl::StrAppend(&s, at, " mx postfix/smtpd[1]: ", id,
                    ": client=h[192.0.2.7], sasl_method=PLAIN, sasl_username=", sender, "\n");
    absl::StrAppend(&s, at, " mx postfix/qmgr[2]: ", id, ": from=<", sender,
                    ">, size=1000, nrcpt=1 (queue active)\n");
    absl::StrAppend(&s, at, " mx postfix/qmgr[2]: ", id, ": removed\n");
  }
  absl::StrAppend(&s, "Dec  6 15:59:00 mx postfix/pickup[3]: L1: uid=33 from=<www-data>\n");
  absl::StrAppend(&s,
                  "Dec  6 15:59:00 mx postfix/qmgr[2]: L1: from=<www-data@acme.example>, size=10, "
                  "nrcpt=3 (queue active)\n");
  return s;
}

TEST(ReplayTest, ListsWhatALimitWouldHaveDeferred) {
  const std::string path = testing::TempPath("mail.log");
  std::ofstream(path) << Log(5, "alice@acme.example");
  auto c = ParseConfigText(R"pb(level {
                                  name: "mailbox"
                                  limit { window: "1h" max: 3 }
                                }
                                table { path: "/nonexistent/must-not-be-touched.table" })pb");
  ASSERT_TRUE(c.ok()) << c.status();
  ReplaySummary r;
  ASSERT_TRUE(Replay(*c, {path}, absl::UTCTimeZone(), &r).ok());
  EXPECT_EQ(r.messages, 6u);
  EXPECT_EQ(r.tripped, 2u) << r.report;  // the 4th and 5th of alice
  EXPECT_TRUE(absl::StrContains(r.report, "2026-12-06 15:03:00  A3  alice@acme.example  defer"))
      << r.report;
  EXPECT_TRUE(absl::StrContains(r.report, "mailbox messages limit 3/1h exceeded")) << r.report;
  EXPECT_FALSE(absl::StrContains(r.report, "L1")) << r.report;  // the local one is within its limit
  // The suggestions: alice's 5 in an hour are the heaviest mailbox (of 2).
  EXPECT_TRUE(absl::StrContains(r.report, "suggested limits")) << r.report;
  EXPECT_TRUE(absl::StrContains(
      r.report, absl::StrFormat("%-10s %-6s %9d %10d %10d %10d", "mailbox", "1h", 2, 5, 5, 5)))
      << r.report;
  EXPECT_FALSE(Replay(*c, {"/nonexistent.log"}, absl::UTCTimeZone(), &r).ok());
  // An Exim main log: the same rule, the same answer.
  std::string exim;
  for (int i = 0; i < 5; ++i) {
    const std::string id = absl::StrFormat("1tJab%d-00012%d-AB", i, i);
    absl::StrAppend(&exim, absl::StrFormat("2026-12-06 16:%02d:00 ", i), id,
                    " <= bob@acme.example H=(c) [192.0.2.8] P=esmtpa A=plain:bob@acme.example "
                    "S=500\n",
                    absl::StrFormat("2026-12-06 16:%02d:01 ", i), id, " => r@remote.example\n",
                    absl::StrFormat("2026-12-06 16:%02d:01 ", i), id, " Completed\n");
  }
  const std::string epath = testing::TempPath("exim_mainlog");
  std::ofstream(epath) << exim;
  ASSERT_TRUE(Replay(*c, {epath}, absl::UTCTimeZone(), &r).ok());
  EXPECT_EQ(r.messages, 5u);
  EXPECT_EQ(r.tripped, 2u) << r.report;
  EXPECT_TRUE(absl::StrContains(r.report, "1tJab3-000123-AB  bob@acme.example  defer")) << r.report;
}

}  // namespace
}  // namespace sluice
