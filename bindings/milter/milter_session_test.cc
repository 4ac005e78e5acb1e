#include "bindings/milter/milter_session.h"

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "ratelimit/config.h"
#include "ratelimit/limiter.h"

namespace sluice {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1700000000);
using Answer = MilterSession::Answer;

std::unique_ptr<PolicyEngine> Make(absl::string_view text) {
  auto c = ParseConfigText(text);
  EXPECT_TRUE(c.ok()) << c.status();
  c->mutable_policy()->add_trusted_network("192.0.2.0/24");
  auto e = PolicyEngine::Create(*c, kT0, PolicyEngine::Options());
  EXPECT_TRUE(e.ok()) << e.status();
  return std::move(*e);
}

uint64_t Usage(PolicyEngine& e, Level level, absl::string_view entity, int rule = 0) {
  return e.limiter().Usage(level, entity, kT0).rule(rule).usage();
}

constexpr char kLimits[] = R"pb(
  level {
    name: "mailbox"
    limit { window: "1h" max: 2 }
    limit { metric: RECIPIENTS window: "1h" max: 100 }
  }
  level {
    name: "script"
    limit { window: "1h" max: 1 }
  }
  level {
    name: "list"
    limit { window: "1h" max: 1 }
  }
)pb";

// One message through a session: the answer of the first stage that
// refuses, or the end's.
Answer Send(MilterSession& s, absl::string_view sender, int rcpts, absl::string_view body,
            std::vector<std::pair<std::string, std::string>> headers = {},
            absl::string_view queue_id = "", absl::string_view mta = "Postfix 3.7.11") {
  Answer a = s.Mail(absl::StrCat("<", sender, ">"), "", queue_id, mta, kT0);
  if (a.kind != Answer::kContinue) return a;
  for (int i = 0; i < rcpts; ++i) {
    a = s.Rcpt(absl::StrCat("<r", i, "@remote.example>"), kT0);
    if (a.kind != Answer::kContinue) {
      s.Abort(kT0);
      return a;
    }
  }
  for (const auto& [name, value] : headers) s.Header(name, value);
  s.Header("Subject", "hello");
  s.EndOfHeaders();
  s.Body(body);
  return s.End("QID1", kT0);
}

TEST(MilterSessionTest, SmtpMessagesAreCountedOnceWithTheirRecipients) {
  auto e = Make(kLimits);
  MilterSession s(e.get(), {});
  EXPECT_EQ(s.Connect("192.0.2.7", "web.example", "smtpd", 25, kT0).kind, Answer::kContinue);
  EXPECT_EQ(s.Helo("web.example", kT0).kind, Answer::kContinue);
  EXPECT_EQ(Send(s, "a@acme.example", 3, "one").kind, Answer::kContinue);
  EXPECT_EQ(Usage(*e, Level::kMailbox, "a@acme.example"), 1u);
  EXPECT_EQ(Usage(*e, Level::kMailbox, "a@acme.example", 1), 3u);
  EXPECT_EQ(Send(s, "a@acme.example", 1, "two").kind, Answer::kContinue);
  // The third: its first recipient is refused, with the limit's reply.
  Answer a = Send(s, "a@acme.example", 1, "three");
  EXPECT_EQ(a.kind, Answer::kTempfail);
  EXPECT_EQ(a.smtp_code, 451);
  EXPECT_EQ(a.enhanced_status, "4.7.1");
  EXPECT_NE(a.text.find("mailbox messages limit 2/1h exceeded"), std::string::npos) << a.text;
  EXPECT_TRUE(a.tripped);
  EXPECT_NE(a.log_line.find("rule=limit level=mailbox"), std::string::npos) << a.log_line;
  EXPECT_EQ(Usage(*e, Level::kMailbox, "a@acme.example"), 2u);
  s.Close(kT0);
}

TEST(MilterSessionTest, ScriptAndListHeadersReachTheirLevels) {
  auto e = Make(kLimits);
  MilterSession s(e.get(), {});
  s.Connect("192.0.2.7", "web.example", "smtpd", 25, kT0);
  EXPECT_EQ(
      Send(s, "b@acme.example", 1, "x", {{"X-PHP-Originating-Script", " 33:mailer.php "}}).kind,
      Answer::kContinue);
  EXPECT_EQ(Usage(*e, Level::kScript, "33:mailer.php"), 1u);
  Answer a = Send(s, "c@acme.example", 1, "y", {{"X-PHP-Originating-Script", "33:mailer.php"}});
  EXPECT_EQ(a.kind, Answer::kTempfail) << a.text;
  EXPECT_NE(a.text.find("script"), std::string::npos) << a.text;
  EXPECT_EQ(Send(s, "d@acme.example", 1, "z", {{"List-Id", "News <news.acme.example>"}}).kind,
            Answer::kContinue);
  EXPECT_EQ(Usage(*e, Level::kList, "news.acme.example"), 1u);
  EXPECT_EQ(Send(s, "d@acme.example", 1, "w", {{"Precedence", "bulk"}}).kind, Answer::kContinue);
  EXPECT_EQ(Usage(*e, Level::kList, "d@acme.example"), 1u);
}

TEST(MilterSessionTest, LocalSubmissionIsRefusedOnlyAtTheEndAndHoldsNothing) {
  auto e = Make(kLimits);
  MilterSession s(e.get(), {});
  // Postfix's cleanup (non_smtpd_milters): localhost, the queue id at MAIL.
  s.Connect("127.0.0.1", "localhost", "sluice.example", 0, kT0);
  EXPECT_EQ(Send(s, "w@acme.example", 1, "1", {}, "4F1", "Postfix 3.7.11").kind, Answer::kContinue);
  EXPECT_TRUE(s.local_submission());
  EXPECT_EQ(Send(s, "w@acme.example", 1, "2", {}, "4F2").kind, Answer::kContinue);
  // Over the limit: RCPT still goes on (Postfix would loop), the end refuses.
  EXPECT_EQ(s.Mail("<w@acme.example>", "", "4F3", "Postfix 3.7.11", kT0).kind, Answer::kContinue);
  EXPECT_EQ(s.Rcpt("<r@remote.example>", kT0).kind, Answer::kContinue);
  s.EndOfHeaders();
  Answer a = s.End("4F3", kT0);
  EXPECT_EQ(a.kind, Answer::kQuarantine);  // a deferral would come back forever
  EXPECT_NE(a.log_line.find("4F3: sluice:"), std::string::npos) << a.log_line;
  EXPECT_EQ(Usage(*e, Level::kMailbox, "w@acme.example"), 2u);
  EXPECT_EQ(Usage(*e, Level::kMailbox, "w@acme.example", 1), 2u);  // nothing reserved stays
  // Sendmail knows the queue id at MAIL for SMTP too: not local there.
  MilterSession sm(e.get(), {});
  sm.Connect("192.0.2.9", "client.example", "MTA", 25, kT0);
  sm.Mail("<v@acme.example>", "", "5A1", "8.17.1", kT0);
  EXPECT_FALSE(sm.local_submission());
}

TEST(MilterSessionTest, AbortAnywhereGivesTheReservationsBack) {
  auto e = Make(kLimits);
  MilterSession s(e.get(), {});
  s.Connect("192.0.2.7", "web.example", "smtpd", 25, kT0);
  s.Mail("<a@acme.example>", "", "", "Postfix", kT0);
  s.Rcpt("<r1@remote.example>", kT0);
  s.Rcpt("<r2@remote.example>", kT0);
  s.Header("Subject", "x");
  s.Body("half a bo");
  EXPECT_EQ(Usage(*e, Level::kMailbox, "a@acme.example", 1), 2u);
  s.Abort(kT0);
  EXPECT_EQ(Usage(*e, Level::kMailbox, "a@acme.example", 1), 0u);
  EXPECT_EQ(Usage(*e, Level::kMailbox, "a@acme.example"), 0u);
  // A new MAIL without an abort, and a close in the middle: the same.
  s.Mail("<a@acme.example>", "", "", "Postfix", kT0);
  s.Rcpt("<r1@remote.example>", kT0);
  s.Mail("<a@acme.example>", "", "", "Postfix", kT0);
  s.Rcpt("<r1@remote.example>", kT0);
  s.Close(kT0);
  EXPECT_EQ(Usage(*e, Level::kMailbox, "a@acme.example", 1), 0u);
  // End of message without MAIL, headers without a message: answered, no harm.
  MilterSession t(e.get(), {});
  t.Header("X", "y");
  t.Body("z");
  EXPECT_EQ(t.End("", kT0).kind, Answer::kContinue);
}

TEST(MilterSessionTest, ThousandsOfHeadersAndBinaryBodiesAreBounded) {
  auto e = Make(kLimits);
  MilterSession s(e.get(), {});
  s.Connect("192.0.2.7", "web.example", "smtpd", 25, kT0);
  s.Mail("<h@acme.example>", "", "", "Postfix", kT0);
  s.Rcpt("<r@remote.example>", kT0);
  const std::string long_value(100000, 'v');
  for (int i = 0; i < 5000; ++i) s.Header(absl::StrCat("X-H", i), i % 100 == 0 ? long_value : "v");
  s.EndOfHeaders();
  std::string binary;
  for (int i = 0; i < 70000; ++i) binary += static_cast<char>(i * 7);
  s.Body(binary);
  s.Body("Content-Type: text/html\r\n\r\n<a href=\"http://x");  // truncated MIME and HTML
  EXPECT_EQ(s.End("QID", kT0).kind, Answer::kContinue);
  // The size counted is the headers and body seen.
  EXPECT_EQ(Usage(*e, Level::kMailbox, "h@acme.example"), 1u);
}

TEST(MilterSessionTest, ControlBytesNeverReachARefusalOrALogLine) {
  auto e = Make(kLimits);
  MilterSession s(e.get(), {});
  s.Connect("192.0.2.7", "web.example", "smtpd", 25, kT0);
  for (int i = 0; i < 2; ++i) Send(s, "x\r\ny@acme.example", 1, absl::StrCat("body ", i));
  Answer a = Send(s, "x\r\ny@acme.example", 1, "three");
  ASSERT_EQ(a.kind, Answer::kTempfail);
  EXPECT_EQ(a.text.find_first_of("\r\n"), std::string::npos) << a.text;
  EXPECT_EQ(a.log_line.find_first_of("\r\n"), std::string::npos) << a.log_line;
  EXPECT_NE(a.text.find("x??y@acme.example"), std::string::npos) << a.text;
}

TEST(MilterSessionTest, NearDuplicateBodiesTripTheBurstDetectorAtTheEnd) {
  auto e = Make(R"pb(level {
                       name: "mailbox"
                       limit { window: "1h" max: 1000 }
                     }
                     abuse {
                       near_duplicate { threshold: 3 window: "10m" }
                       same_size { off: true }
                     })pb");
  MilterSession s(e.get(), {});
  s.Connect("192.0.2.7", "web.example", "smtpd", 25, kT0);
  auto letter = [](absl::string_view name) {
    return absl::StrCat("Dear ", name,
                        ", your parcel is waiting at the depot near the station; bring this "
                        "letter and an ID to collect it before Friday. Kind regards, the parcel "
                        "service of the town.\r\n");
  };
  EXPECT_EQ(Send(s, "n@acme.example", 1, letter("Alice")).kind, Answer::kContinue);
  EXPECT_EQ(Send(s, "n@acme.example", 1, letter("Bob")).kind, Answer::kContinue);
  Answer a = Send(s, "n@acme.example", 1, letter("Carol"));
  EXPECT_EQ(a.kind, Answer::kTempfail);
  EXPECT_NE(a.text.find("too many copies"), std::string::npos) << a.text;
  EXPECT_EQ(Usage(*e, Level::kMailbox, "n@acme.example"), 2u);  // the refused one is not counted
}

TEST(MilterSessionTest, ShadowAddsAHeaderAndHoldQuarantines) {
  auto e = Make(R"pb(level {
                       name: "mailbox"
                       limit { window: "1h" max: 0 shadow: true }
                     })pb");
  MilterSession s(e.get(), {});
  s.Connect("192.0.2.7", "web.example", "smtpd", 25, kT0);
  Answer a = Send(s, "a@acme.example", 1, "x");
  EXPECT_EQ(a.kind, Answer::kContinue);
  EXPECT_EQ(a.header_name, "X-Sluice");
  EXPECT_EQ(a.header_value.substr(0, 12), "would defer;") << a.header_value;
  auto h = Make(R"pb(level {
                       name: "mailbox"
                       limit { window: "1h" max: 0 action: HOLD }
                     })pb");
  MilterSession t(h.get(), {});
  t.Connect("192.0.2.7", "web.example", "smtpd", 25, kT0);
  a = Send(t, "a@acme.example", 1, "x");
  EXPECT_EQ(a.kind, Answer::kQuarantine);
  EXPECT_NE(a.text.find("mailbox messages limit 0/1h"), std::string::npos) << a.text;
}

TEST(MilterSessionTest, WhenAnotherDoorCountsNothingIsCharged) {
  auto e = Make(kLimits);
  MilterSession s(e.get(), {/*count=*/false});
  s.Connect("192.0.2.7", "web.example", "smtpd", 25, kT0);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(Send(s, "a@acme.example", 2, "x").kind, Answer::kContinue);
  EXPECT_EQ(Usage(*e, Level::kMailbox, "a@acme.example"), 0u);
}

}  // namespace
}  // namespace sluice
