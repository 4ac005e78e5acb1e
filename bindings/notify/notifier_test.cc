#include "bindings/notify/notifier.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "ratelimit/config.h"
#include "ratelimit/testing.h"

namespace sluice {
namespace {

std::string Dir() {
  const char* t = std::getenv("TEST_TMPDIR");
  return t != nullptr ? t : "/tmp";
}

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// An executable shell script at DIR/name.
std::string Script(const std::string& name, const std::string& body) {
  const std::string p = absl::StrCat(Dir(), "/", name);
  std::ofstream(p) << "#!/bin/sh\n" << body << "\n";
  chmod(p.c_str(), 0755);
  return p;
}

Notice Trip(absl::string_view entity, uint64_t limit) {
  Notice n;
  n.time = absl::FromUnixSeconds(1796000000);
  n.source = "limit";
  n.level = Level::kMailbox;
  n.entity = std::string(entity);
  n.metric = Metric::kMessages;
  n.window_seconds = 3600;
  n.limit = limit;
  n.usage = limit;
  n.action = Action::kDefer;
  n.text = absl::StrCat("mailbox ", entity, " reached its limit of ", limit, " messages per 1h");
  return n;
}

// Waits (bounded: 5 s) until pred holds.
template <typename P>
bool WaitFor(P pred) {
  for (int i = 0; i < 500; ++i) {
    if (pred()) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return pred();
}

TEST(NotifierTest, NoticesAsJsonLinesWithNamesCleaned) {
  Notice n = Trip("a\"b\x01\xff@x.example", 5);
  const std::string j = NoticeJson(n, "mx1");
  EXPECT_TRUE(absl::StrContains(j, "\"source\":\"limit\"")) << j;
  EXPECT_TRUE(absl::StrContains(j, "\"level\":\"mailbox\"")) << j;
  EXPECT_TRUE(absl::StrContains(j, "\"entity\":\"a\\\"b??@x.example\"")) << j;
  EXPECT_TRUE(absl::StrContains(j, "\"window\":\"1h\"")) << j;
  EXPECT_TRUE(absl::StrContains(j, "\"host\":\"mx1\"")) << j;
  EXPECT_EQ(j.find('\n'), std::string::npos);
}

TEST(NotifierTest, EventsFileAndHookGetEveryNotice) {
  Notifier::Options o;
  o.events_file = testing::TempPath("events.jsonl");
  const std::string out = testing::TempPath("hook.out");
  o.exec = {Script("hook.sh", absl::StrCat("cat >> ", out))};
  o.host = "mx1";
  auto n = std::move(*Notifier::Create(o));
  n->Post(Trip("a@x.example", 5));
  n->Post(Trip("b@x.example", 6));
  n->Flush();
  EXPECT_TRUE(WaitFor([&] { return n->stats().hooks_run == 2; }));
  n.reset();  // waits for the hooks
  const std::string events = Read(o.events_file);
  EXPECT_EQ(std::count(events.begin(), events.end(), '\n'), 2);
  EXPECT_TRUE(absl::StrContains(events, "a@x.example"));
  const std::string hooked = Read(out);
  EXPECT_TRUE(absl::StrContains(hooked, "\"entity\":\"a@x.example\"")) << hooked;
  EXPECT_TRUE(absl::StrContains(hooked, "\"entity\":\"b@x.example\"")) << hooked;
}

TEST(NotifierTest, AFailingOrHangingHookIsCountedAndKilledNeverWaitedFor) {
  Notifier::Options o;
  o.exec = {Script("slow.sh", "sleep 30")};
  o.exec_timeout = absl::Milliseconds(300);
  o.max_exec = 1;
  std::string logged;
  std::mutex mu;
  o.log = [&](const std::string& l) {
    std::lock_guard<std::mutex> lock(mu);
    logged += l + "\n";
  };
  auto n = std::move(*Notifier::Create(o));
  const absl::Time start = absl::Now();
  n->Post(Trip("a@x.example", 1));
  n->Post(Trip("b@x.example", 1));                   // one hook at a time: this one is dropped
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));  // posting never waits
  n->Flush();
  EXPECT_TRUE(WaitFor([&] { return n->stats().hooks_failed == 1; }));  // killed at 300 ms
  EXPECT_EQ(n->stats().hooks_dropped, 1u);
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_TRUE(absl::StrContains(logged, "killed at its timeout")) << logged;
}

TEST(NotifierTest, MailIsOneDigestPerRecipientPerPeriod) {
  const std::string spool = testing::TempPath("spool");
  mkdir(spool.c_str(), 0755);
  Notifier::Options o;
  o.mail_command = {Script("sendmail.sh", absl::StrCat("cat > ", spool, "/mail.$$"))};
  o.mail_to = {"postmaster@hosting.example"};
  o.digest = absl::Hours(1);
  o.host = "mx1";
  o.contact = [](const Notice& n) {
    return absl::StrContains(n.entity, "acme") ? std::string("owner@acme.example") : std::string();
  };
  auto n = std::move(*Notifier::Create(o));
  n->Post(Trip("a@acme.example", 5));
  n->Flush();  // the first trip of the period: mailed at once
  EXPECT_TRUE(WaitFor([&] { return n->stats().mails_sent == 2; }));
  for (int i = 0; i < 30; ++i) n->Post(Trip(absl::StrCat("u", i, "@acme.example"), 5));
  EXPECT_TRUE(WaitFor([&] { return n->stats().posted == 31; }));
  absl::SleepFor(absl::Milliseconds(500));
  EXPECT_EQ(n->stats().mails_sent, 2u);  // the burst waits for the period
  n.reset();                             // at stop, what is pending goes out: one mail each
  FILE* ls = popen(absl::StrCat("cat ", spool, "/mail.*").c_str(), "r");
  ASSERT_NE(ls, nullptr);
  std::string text;
  char buf[4096];
  size_t got;
  while ((got = fread(buf, 1, sizeof(buf), ls)) > 0) text.append(buf, got);
  pclose(ls);
  size_t mails_to_owner = 0, at = 0;
  while ((at = text.find("To: <owner@acme.example>", at)) != std::string::npos) {
    ++mails_to_owner;
    ++at;
  }
  EXPECT_EQ(mails_to_owner, 2u);  // the first trip, then the burst of 30 as one digest
  EXPECT_TRUE(absl::StrContains(text, "Subject: sluice on mx1: 30 trips")) << text;
  EXPECT_TRUE(absl::StrContains(text, "mailbox u29@acme.example reached its limit"));
  EXPECT_TRUE(absl::StrContains(text, "Auto-Submitted: auto-generated"));
}

// A hook that exits at once, before reading: the write meets a closed
// pipe, which must not kill the process (SIGPIPE is not ignored here).
TEST(NotifierTest, AHookThatReadsNothingCannotKillTheProcess) {
  Notifier::Options o;
  o.exec = {"/bin/true"};
  auto n = std::move(*Notifier::Create(o));
  Notice big = Trip(std::string(50000, 'x') + "@x.example", 1);
  for (int i = 0; i < 20; ++i) {
    n->Post(big);
    n->Flush();
  }
  EXPECT_TRUE(WaitFor([&] { return n->stats().hooks_run + n->stats().hooks_dropped == 20; }));
}

TEST(NotifierTest, ContactsComeFromTheNearestConfiguredAncestor) {
  auto c = ParseConfigText(R"pb(
    level { name: "subscription" }
    level { name: "domain" }
    level { name: "mailbox" }
    entity { level: "subscription" name: "acme" contact: "owner@acme.example" }
    entity { level: "domain" name: "acme.example" parent: "acme" }
    entity { level: "domain" name: "shop.example" parent: "acme" contact: "shop@acme.example" }
    entity { level: "domain" name: "solo.example" }
  )pb");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(ContactFor(*c, Level::kMailbox, "Alice@ACME.example"), "owner@acme.example");
  EXPECT_EQ(ContactFor(*c, Level::kDomain, "acme.example"), "owner@acme.example");
  EXPECT_EQ(ContactFor(*c, Level::kMailbox, "bob@shop.example"), "shop@acme.example");
  EXPECT_EQ(ContactFor(*c, Level::kSubscription, "acme"), "owner@acme.example");
  EXPECT_EQ(ContactFor(*c, Level::kMailbox, "x@solo.example"), "");
  EXPECT_EQ(ContactFor(*c, Level::kMailbox, "x@unknown.example"), "");
  EXPECT_FALSE(
      ParseConfigText(R"pb(entity { level: "domain" name: "a" contact: "no at" })pb").ok());
}

}  // namespace
}  // namespace sluice
