#include "bindings/logs/postfix_join.h"

#include <vector>

#include "gtest/gtest.h"

namespace sluice {
namespace {

std::vector<LoggedMessage> Join(const std::vector<std::string>& lines) {
  PostfixJoin j;
  std::vector<LoggedMessage> out;
  const absl::Time ref =
      absl::FromCivil(absl::CivilSecond(2026, 12, 6, 23, 0, 0), absl::UTCTimeZone());
  for (const auto& l : lines) {
    LogLine line;
    LoggedMessage m;
    if (SplitLogLine(l, ref, absl::UTCTimeZone(), &line) && j.Add(line, &m)) out.push_back(m);
  }
  return out;
}

TEST(PostfixJoinTest, SmtpAndLocalSubmissionsBecomeMessages) {
  auto m = Join({
      "Dec  6 15:00:00 mx postfix/smtpd[1]: 4ABC: client=h[192.0.2.7], sasl_method=PLAIN, "
      "sasl_username=alice@acme.example",
      "Dec  6 15:00:00 mx postfix/pickup[2]: 5DEF: uid=33 from=<www-data>",
      "Dec  6 15:00:00 mx postfix/cleanup[3]: 4ABC: message-id=<x@y>",
      "Dec  6 15:00:01 mx postfix/qmgr[4]: 4ABC: from=<alice@acme.example>, size=1234, nrcpt=2 "
      "(queue active)",
      "Dec  6 15:00:02 mx postfix/qmgr[4]: 5DEF: from=<www-data@acme.example>, size=99, nrcpt=1 "
      "(queue active)",
      "Dec  6 15:00:03 mx postfix/smtp[5]: 4ABC: to=<r@remote.example>, relay=x, status=sent (250)",
      // A deferred message's later qmgr line is not a new message.
      "Dec  6 15:10:00 mx postfix/qmgr[4]: 4ABC: from=<alice@acme.example>, size=1234, nrcpt=2 "
      "(queue active)",
      "Dec  6 15:10:00 mx postfix/qmgr[4]: 4ABC: removed",
      // Its start before this log began: not a message of this log.
      "Dec  6 15:11:00 mx postfix/qmgr[4]: 9999: from=<x@y>, size=1, nrcpt=1 (queue active)",
      "Dec  6 15:12:00 mx postfix/smtpd[1]: NOQUEUE: reject: RCPT from h[192.0.2.9]: 554 x",
  });
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0].queue_id, "4ABC");
  EXPECT_EQ(m[0].client_ip, "192.0.2.7");
  EXPECT_EQ(m[0].sasl_username, "alice@acme.example");
  EXPECT_EQ(m[0].sender, "alice@acme.example");
  EXPECT_EQ(m[0].size, 1234u);
  EXPECT_EQ(m[0].recipients, 2u);
  EXPECT_FALSE(m[0].local);
  EXPECT_TRUE(m[1].local);
  EXPECT_EQ(m[1].uid, "33");
  EXPECT_EQ(m[1].client_ip, "");
  EXPECT_EQ(m[1].sender, "www-data@acme.example");
  EXPECT_EQ(absl::FormatTime("%H:%M:%S", m[1].time, absl::UTCTimeZone()), "15:00:02");
}

}  // namespace
}  // namespace sluice
