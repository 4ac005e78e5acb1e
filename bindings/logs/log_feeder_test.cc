#include "bindings/logs/log_feeder.h"

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "bindings/engine/policy_engine.h"
#include "bindings/engine/smtp_event.h"
#include "gtest/gtest.h"
#include "ratelimit/config.h"

namespace sluice {
namespace {

const absl::Time kT0 =
    absl::FromCivil(absl::CivilSecond(2026, 12, 6, 12, 0, 0), absl::UTCTimeZone());

std::unique_ptr<PolicyEngine> Make(absl::string_view abuse) {
  auto c = ParseConfigText(absl::StrCat(R"pb(level {
                                               name: "mailbox"
                                               limit { window: "1h" max: 1000 }
                                             }
                                             exempt { cidr: "192.0.2.200/32" }
                                        )pb",
                                        abuse));
  EXPECT_TRUE(c.ok()) << c.status();
  auto e = PolicyEngine::Create(*c, kT0, PolicyEngine::Options());
  EXPECT_TRUE(e.ok()) << e.status();
  return std::move(*e);
}

// The stage a policy service sees first (smtpd_client_restrictions).
Verdict AtConnect(PolicyEngine& e, absl::string_view ip, absl::Time t) {
  SmtpEvent ev;
  ev.stage = Stage::kConnect;
  ev.client_address = ip;
  return e.Evaluate(ev, t);
}

std::string Sasl(absl::string_view ip, absl::string_view at = "Dec  6 11:59:00") {
  return absl::StrCat(at, " mx postfix/submission/smtpd[42]: warning: unknown[", ip,
                      "]: SASL LOGIN authentication failed: UGFzc3dvcmQ6");
}

TEST(LogFeederTest, PasswordGuessesInTheLogBlockTheClientAtTheNextConnect) {
  auto e = Make(R"pb(abuse { auth_failures_per_ip { threshold: 3 block: "1h" } })pb");
  LogFeeder f(e.get(), absl::UTCTimeZone());
  for (int i = 0; i < 2; ++i) f.Feed(Sasl("198.51.100.7"), kT0);
  EXPECT_TRUE(AtConnect(*e, "198.51.100.7", kT0).admitted());
  f.Feed(Sasl("198.51.100.7"), kT0);
  Verdict v = AtConnect(*e, "198.51.100.7", kT0 + absl::Minutes(1));
  EXPECT_FALSE(v.admitted());
  EXPECT_EQ(v.source, "blocked");
  EXPECT_TRUE(AtConnect(*e, "198.51.100.8", kT0).admitted());  // someone else
  EXPECT_EQ(f.stats().auth_failures, 3u);
  EXPECT_EQ(f.stats().trips, 1u);
  // An exempt client (a webmail host) is never blocked by address.
  for (int i = 0; i < 5; ++i) f.Feed(Sasl("192.0.2.200"), kT0);
  EXPECT_TRUE(AtConnect(*e, "192.0.2.200", kT0).admitted());
}

TEST(LogFeederTest, DovecotSummariesCountAttemptsAndSilenceTheDetails) {
  auto e = Make(R"pb(abuse { auth_failures_per_user { threshold: 4 block: "1h" } })pb");
  LogFeeder f(e.get(), absl::UTCTimeZone());
  // Details alone (auth_verbose without login lines): each one counts.
  f.Feed("Dec  6 11:59:00 mx dovecot: auth: passwd-file(bob,198.51.100.9): Password mismatch", kT0);
  EXPECT_EQ(f.stats().auth_failures, 1u);
  // A summary of two attempts: both count; details after it do not.
  f.Feed(
      "Dec  6 11:59:01 mx dovecot: imap-login: Disconnected (auth failed, 2 attempts in 4 "
      "secs): user=<bob>, method=PLAIN, rip=198.51.100.9, lip=192.0.2.1",
      kT0);
  f.Feed("Dec  6 11:59:02 mx dovecot: auth: passwd-file(bob,198.51.100.9): Password mismatch", kT0);
  EXPECT_EQ(f.stats().auth_failures, 3u);
  EXPECT_EQ(f.stats().details_skipped, 1u);
  f.Feed(
      "Dec  6 11:59:03 mx dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 "
      "secs): user=<bob>, method=PLAIN, rip=198.51.100.10, lip=192.0.2.1",
      kT0);
  // Four failures for bob: the user is blocked, whatever the address.
  EXPECT_FALSE(e->Auth("203.0.113.1", "bob", false, kT0).admitted());
}

TEST(LogFeederTest, UnknownRecipientsAndConnectionsFeedTheirDetectors) {
  auto e = Make(R"pb(abuse {
                       unknown_recipients_per_ip { threshold: 3 block: "1h" }
                       concurrent_connections_per_ip { threshold: 2 }
                     })pb");
  LogFeeder f(e.get(), absl::UTCTimeZone());
  for (int i = 0; i < 3; ++i) {
    f.Feed(absl::StrCat("Dec  6 11:59:0", i,
                        " mx postfix/smtpd[9]: NOQUEUE: reject: RCPT from h[203.0.113.5]: 550 "
                        "5.1.1 <u",
                        i,
                        "@acme.example>: Recipient address rejected: User unknown in local "
                        "recipient table; from=<a@b> to=<u@acme.example> proto=ESMTP helo=<h>"),
           kT0);
  }
  EXPECT_FALSE(AtConnect(*e, "203.0.113.5", kT0).admitted());
  EXPECT_EQ(f.stats().unknown_recipients, 3u);
  // Connections: two open at once are allowed, the third trips.
  const std::string c = "Dec  6 11:59:00 mx postfix/smtpd[9]: connect from h[203.0.113.6]";
  const std::string d =
      "Dec  6 11:59:00 mx postfix/smtpd[9]: disconnect from h[203.0.113.6] "
      "ehlo=1 quit=1 commands=2";
  f.Feed(c, kT0);
  f.Feed(c, kT0);
  f.Feed(d, kT0);
  f.Feed(c, kT0);
  EXPECT_EQ(f.stats().trips, 1u);  // the unknown recipients only, so far
  f.Feed(c, kT0);                  // three open
  EXPECT_EQ(f.stats().trips, 2u);
  EXPECT_EQ(f.stats().connects, 4u);
  EXPECT_EQ(f.stats().disconnects, 1u);
}

TEST(LogFeederTest, BadLinesAreCountedAndSkipped) {
  auto e = Make("");
  LogFeeder f(e.get(), absl::UTCTimeZone());
  f.Feed("", kT0);
  f.Feed(std::string("\0\xff\x01 binary", 10), kT0);
  f.Feed("Dec  6 11:59:00 no program field here", kT0);
  f.Feed("Dec  6 11:59:00 mx postfix/qmgr[1]: 4ABC: removed", kT0);  // a line, no event
  EXPECT_EQ(f.stats().lines, 4u);
  EXPECT_EQ(f.stats().unparsed, 3u);
  EXPECT_NE(f.MetricsText().find("sluice_log_unparsed_total 3"), std::string::npos);
}

}  // namespace
}  // namespace sluice
