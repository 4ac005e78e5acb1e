#include "bindings/logs/exim_join.h"

#include <vector>

#include "gtest/gtest.h"

namespace sluice {
namespace {

TEST(EximJoinTest, LoggedInAndLocalMessagesWithTheirRecipients) {
  EximJoin j;
  std::vector<LoggedMessage> got;
  for (const char* l : {
           "2026-12-06 15:00:00 1tJabc-000123-AB <= alice@acme.example H=(client.example) "
           "[192.0.2.7]:4711 P=esmtpsa X=TLS1.3 A=dovecot_plain:alice@acme.example S=1234 "
           "id=x@y",
           "2026-12-06 15:00:01 [4242] 1tJabd-000124-CD <= www-data@acme.example U=www-data "
           "P=local S=99",
           "2026-12-06 15:00:02 1tJabc-000123-AB => r1@remote.example R=dnslookup T=remote_smtp",
           "2026-12-06 15:00:02 1tJabc-000123-AB -> r2@remote.example R=dnslookup T=remote_smtp",
           "2026-12-06 15:00:02 1tJabc-000123-AB ** bad@remote.example: unrouteable",
           "2026-12-06 15:00:02 1tJabc-000123-AB Completed",
           "2026-12-06 15:00:03 1tJabd-000124-CD => r@remote.example R=dnslookup",
           "2026-12-06 15:00:03 1tJabd-000124-CD Completed",
           "2026-12-06 15:00:04 1tJzzz-000999-ZZ Completed",  // its start is not in this log
           "2026-12-06 15:00:05 SMTP connection from [198.51.100.1] lost",
       }) {
    LoggedMessage m;
    if (j.Add(l, absl::UTCTimeZone(), &m)) got.push_back(m);
  }
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].queue_id, "1tJabc-000123-AB");
  EXPECT_EQ(got[0].sender, "alice@acme.example");
  EXPECT_EQ(got[0].client_ip, "192.0.2.7");
  EXPECT_EQ(got[0].sasl_username, "alice@acme.example");
  EXPECT_EQ(got[0].size, 1234u);
  EXPECT_EQ(got[0].recipients, 3u);
  EXPECT_FALSE(got[0].local);
  EXPECT_EQ(absl::FormatTime("%H:%M:%S", got[0].time, absl::UTCTimeZone()), "15:00:00");
  EXPECT_TRUE(got[1].local);
  EXPECT_EQ(got[1].uid, "www-data");
  EXPECT_EQ(got[1].recipients, 1u);
}

}  // namespace
}  // namespace sluice
