#include "bindings/logs/mail_log.h"

#include "gtest/gtest.h"

namespace sluice {
namespace {

const absl::Time kRef =
    absl::FromCivil(absl::CivilSecond(2026, 12, 6, 12, 0, 0), absl::UTCTimeZone());

LogLine Split(absl::string_view s) {
  LogLine l;
  EXPECT_TRUE(SplitLogLine(s, kRef, absl::UTCTimeZone(), &l)) << s;
  return l;
}

MailLogEvent Event(absl::string_view s) { return ClassifyMailLog(Split(s)); }

std::string Utc(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%E6S", t, absl::UTCTimeZone());
}

TEST(MailLogTest, TimestampsOfEveryFormat) {
  EXPECT_EQ(Utc(Split("Dec  6 11:22:33 mx postfix/smtpd[1]: x").time),
            "2026-12-06 11:22:33.000000");
  EXPECT_EQ(Utc(Split("Dec 06 11:22:33 mx postfix/smtpd[1]: x").time),
            "2026-12-06 11:22:33.000000");
  // A December line read on 6 January is last year's.
  LogLine l;
  const absl::Time jan =
      absl::FromCivil(absl::CivilSecond(2027, 1, 6, 0, 0, 0), absl::UTCTimeZone());
  ASSERT_TRUE(SplitLogLine("Dec 31 23:59:59 mx postfix/smtpd[1]: x", jan, absl::UTCTimeZone(), &l));
  EXPECT_EQ(Utc(l.time), "2026-12-31 23:59:59.000000");
  EXPECT_EQ(Utc(Split("2026-12-06T11:22:33.123456+01:00 mx postfix/smtpd[1]: x").time),
            "2026-12-06 10:22:33.123456");
  EXPECT_EQ(Utc(Split("2026-12-06T11:22:33+0100 mx postfix/smtpd[1]: x").time),
            "2026-12-06 10:22:33.000000");
  EXPECT_EQ(Utc(Split("2026-12-06T11:22:33Z mx postfix/smtpd[1]: x").time),
            "2026-12-06 11:22:33.000000");
  EXPECT_EQ(Utc(Split("2026-12-06 11:22:33 auth-worker(7): Info: x").time),
            "2026-12-06 11:22:33.000000");
  EXPECT_EQ(Utc(Split("@4000000069330c5d00000000 imap-login: Info: x").time),
            "2025-12-05 16:46:11.000000");  // 0x69330c5d - 10 s (TAI)
  // No time understood: the event still counts, at the caller's clock.
  EXPECT_EQ(Split("mx postfix/smtpd[1]: x").time, absl::InfinitePast());
}

TEST(MailLogTest, PartsOfALine) {
  LogLine l = Split("Dec  6 11:22:33 mx postfix/submission/smtpd[123]: connect from a[192.0.2.1]");
  EXPECT_EQ(l.host, "mx");
  EXPECT_EQ(l.program, "postfix/submission/smtpd");
  EXPECT_EQ(l.message, "connect from a[192.0.2.1]");
  l = Split("Dec  6 11:22:33 pop3-login: Info: hello");
  EXPECT_EQ(l.host, "");
  EXPECT_EQ(l.program, "pop3-login");
  LogLine bad;
  EXPECT_FALSE(SplitLogLine("", kRef, absl::UTCTimeZone(), &bad));
  EXPECT_FALSE(SplitLogLine("Dec  6 11:22:33 just words here", kRef, absl::UTCTimeZone(), &bad));
  EXPECT_FALSE(SplitLogLine("\x01\x02\xff", kRef, absl::UTCTimeZone(), &bad));
}

TEST(MailLogTest, PostfixSaslFailures) {
  MailLogEvent e = Event(
      "Dec  6 11:22:33 mx postfix/smtpd[9]: warning: guess.example[198.51.100.7]: SASL LOGIN "
      "authentication failed: UGFzc3dvcmQ6, sasl_username=alice@acme.example");
  EXPECT_EQ(e.kind, MailLogEvent::Kind::kAuthFailed);
  EXPECT_EQ(e.client_ip, "198.51.100.7");
  EXPECT_EQ(e.user, "alice@acme.example");
  e = Event(
      "Dec  6 11:22:33 mx postfix/smtps/smtpd[9]: warning: unknown[2001:db8::7]:4711: SASL "
      "PLAIN authentication failed:");
  EXPECT_EQ(e.kind, MailLogEvent::Kind::kAuthFailed);
  EXPECT_EQ(e.client_ip, "2001:db8::7");
  EXPECT_EQ(e.user, "");
  // The server's trouble, or a mechanism it does not offer: not a guess.
  EXPECT_EQ(Event("Dec  6 11:22:33 mx postfix/smtpd[9]: warning: unknown[192.0.2.9]: SASL LOGIN "
                  "authentication failed: Connection lost to authentication server")
                .kind,
            MailLogEvent::Kind::kNone);
  EXPECT_EQ(Event("Dec  6 11:22:33 mx postfix/smtpd[9]: warning: unknown[192.0.2.9]: SASL X "
                  "authentication failed: Invalid authentication mechanism")
                .kind,
            MailLogEvent::Kind::kNone);
  // Not an address in the brackets: nothing.
  EXPECT_EQ(Event("Dec  6 11:22:33 mx postfix/smtpd[9]: warning: unknown[nope]: SASL LOGIN "
                  "authentication failed: x")
                .kind,
            MailLogEvent::Kind::kNone);
}

TEST(MailLogTest, PostfixUnknownRecipientsAndConnections) {
  MailLogEvent e = Event(
      "Dec  6 11:22:33 mx postfix/smtpd[9]: NOQUEUE: reject: RCPT from h.example[203.0.113.5]: 550 "
      "5.1.1 <zz@acme.example>: Recipient address rejected: User unknown in virtual mailbox "
      "table; from=<a@b.example> to=<zz@acme.example> proto=ESMTP helo=<h.example>");
  EXPECT_EQ(e.kind, MailLogEvent::Kind::kUnknownRecipient);
  EXPECT_EQ(e.client_ip, "203.0.113.5");
  EXPECT_EQ(Event("Dec  6 11:22:33 mx postfix/smtpd[9]: NOQUEUE: reject: RCPT from "
                  "h.example[203.0.113.5]: 554 5.7.1 <x@y>: Relay access denied; from=<> to=<x@y>")
                .kind,
            MailLogEvent::Kind::kNone);
  e = Event("Dec  6 11:22:33 mx postfix/smtpd[9]: connect from h.example[203.0.113.5]");
  EXPECT_EQ(e.kind, MailLogEvent::Kind::kConnect);
  EXPECT_EQ(e.client_ip, "203.0.113.5");
  e = Event(
      "Dec  6 11:22:33 mx postfix/smtpd[9]: disconnect from h.example[203.0.113.5] ehlo=1 "
      "auth=0/1 quit=1 commands=2/3");
  EXPECT_EQ(e.kind, MailLogEvent::Kind::kDisconnect);
  // Other programs' lines of the same shape are not smtpd's.
  EXPECT_EQ(Event("Dec  6 11:22:33 mx postfix/qmgr[9]: connect from h.example[203.0.113.5]").kind,
            MailLogEvent::Kind::kNone);
}

TEST(MailLogTest, DovecotSummaryAndDetailLines) {
  MailLogEvent e = Event(
      "Dec  6 11:22:33 mx dovecot: imap-login: Disconnected (auth failed, 3 attempts in 9 secs): "
      "user=<bob>, method=PLAIN, rip=198.51.100.20, lip=192.0.2.1, TLS");
  EXPECT_EQ(e.kind, MailLogEvent::Kind::kAuthFailed);
  EXPECT_EQ(e.client_ip, "198.51.100.20");
  EXPECT_EQ(e.user, "bob");
  EXPECT_EQ(e.attempts, 3);
  EXPECT_TRUE(e.summary);
  e = Event(
      "Dec  6 11:22:33 mx dovecot: auth: passwd-file(bob,198.51.100.20,<abc>): Password "
      "mismatch");
  EXPECT_EQ(e.kind, MailLogEvent::Kind::kAuthFailed);
  EXPECT_EQ(e.user, "bob");
  EXPECT_EQ(e.client_ip, "198.51.100.20");
  EXPECT_FALSE(e.summary);
  e = Event(
      "Dec  6 11:22:33 mx auth: pam_unix(dovecot:auth): authentication failure; logname= "
      "uid=0 euid=0 tty=dovecot ruser=bob rhost=198.51.100.21  user=bob");
  EXPECT_EQ(e.client_ip, "198.51.100.21");
  EXPECT_EQ(e.user, "bob");
  EXPECT_EQ(Event("Dec  6 11:22:33 mx dovecot: pop3-login: Disconnected (no auth attempts in 2 "
                  "secs): user=<>, rip=198.51.100.22, lip=192.0.2.1")
                .kind,
            MailLogEvent::Kind::kNone);
  EXPECT_EQ(Event("Dec  6 11:22:33 mx dovecot: pop3-login: Aborted login (tried to use disabled "
                  "plaintext auth): rip=198.51.100.22, lip=192.0.2.1")
                .kind,
            MailLogEvent::Kind::kNone);
}

TEST(MailLogTest, FieldsOfAMessage) {
  EXPECT_EQ(LogField("from=<a@b.example>, size=12, nrcpt=2", "from="), "a@b.example");
  EXPECT_EQ(LogField("from=<a@b.example>, size=12, nrcpt=2", "size="), "12");
  EXPECT_EQ(LogField("ruser=x rhost=192.0.2.1 user=bob", "user="), "bob");  // not ruser=
  EXPECT_EQ(LogField("ruser=rhost=1.2.3.4 rhost=192.0.2.9", "rhost="), "192.0.2.9");
  EXPECT_EQ(LogField("user=<>, rip=1.2.3.4", "user="), "");
  EXPECT_EQ(LogField("user=<cut", "user="), "");  // never closed
  EXPECT_EQ(LogField("H=(c) [192.0.2.7] S=99", "S="), "99");
  EXPECT_EQ(LogField("no fields here", "S="), "");
}

}  // namespace
}  // namespace sluice
