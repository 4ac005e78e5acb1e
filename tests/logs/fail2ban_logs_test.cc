// The log parser against real MTA log lines labelled by another project:
// the test logs of Debian's fail2ban package (unpacked by scripts/setup.sh,
// read here at test time, never copied). Each "# failJSON" comment labels
// the next line: whether fail2ban's filter must match it, and the client.
//
// Postfix, the sections of the "auth" mode (SASL brute force): sluice
// counts an AUTH failure exactly where the label says, for the labelled
// client. Every Postfix line with "User unknown" that the labels count is
// an unknown recipient of the labelled client, and nothing else is.
// Dovecot, the default-mode sections: sluice counts an AUTH failure
// exactly where the label says, for the labelled client, except on
// purpose for "tried to use disabled plaintext auth" (no password was
// tried; fail2ban's filter bans it, the brute-force counter does not).
// Times agree with the labels (month, day and time of day).
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "bindings/logs/mail_log.h"
#include "gtest/gtest.h"

namespace sluice {
namespace {

std::string LogsDir() {
  if (const char* d = std::getenv("SLUICE_FAIL2BAN_LOGS")) return d;
  const char* home = std::getenv("HOME");
  const std::string cached = absl::StrCat(home != nullptr ? home : "/root",
                                          "/.cache/sluice-fail2ban/root/usr/lib/python3/"
                                          "dist-packages/fail2ban/tests/files/logs");
  if (std::ifstream(cached + "/postfix").good()) return cached;
  return "/usr/lib/python3/dist-packages/fail2ban/tests/files/logs";
}

struct Labelled {
  std::string options;  // the section's filterOptions ("" before any)
  bool match = false;
  std::string host;
  std::string time;  // "2005-01-29T05:32:50" or ""
  std::string line;
  int number = 0;
};

// The value of "key" in a failJSON comment (a string or true/false).
std::string JsonValue(const std::string& json, const std::string& key) {
  size_t at = json.find("\"" + key + "\"");
  if (at == std::string::npos) return "";
  at = json.find(':', at);
  size_t start = json.find_first_not_of(" ", at + 1);
  if (json[start] == '"') {
    const size_t end = json.find('"', start + 1);
    return json.substr(start + 1, end - start - 1);
  }
  const size_t end = json.find_first_of(",} ", start);
  return json.substr(start, end - start);
}

std::vector<Labelled> Read(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot read " << path << " (scripts/setup.sh unpacks fail2ban)";
  std::vector<Labelled> out;
  std::string options, line, pending;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (absl::StartsWith(line, "# filterOptions:")) {
      options = line;
      continue;
    }
    if (absl::StrContains(line, "failJSON:") && line[0] == '#') {
      pending = line;
      continue;
    }
    if (line.empty() || line[0] == '#' || pending.empty()) continue;
    Labelled l;
    l.options = options;
    l.match = JsonValue(pending, "match") == "true";
    l.host = JsonValue(pending, "host");
    l.time = JsonValue(pending, "time");
    l.line = line;
    l.number = n;
    out.push_back(l);
    pending.clear();
  }
  return out;
}

MailLogEvent Classify(const Labelled& l, absl::Time* when) {
  // The labels' years are fail2ban's choice; the reference only sets one.
  const absl::Time ref =
      absl::FromCivil(absl::CivilSecond(2005, 12, 31, 0, 0, 0), absl::UTCTimeZone());
  LogLine line;
  if (!SplitLogLine(l.line, ref, absl::UTCTimeZone(), &line)) return MailLogEvent();
  *when = line.time;
  return ClassifyMailLog(line);
}

void CheckTime(const Labelled& l, absl::Time when) {
  if (l.time.size() < 19 || l.line[0] == '@') return;  // TAI64N: the labels use local time
  ASSERT_NE(when, absl::InfinitePast()) << l.number << ": " << l.line;
  EXPECT_EQ(absl::FormatTime("%m-%dT%H:%M:%S", when, absl::UTCTimeZone()), l.time.substr(5, 14))
      << l.number << ": " << l.line;
}

TEST(Fail2banLogsTest, PostfixSaslFailuresAndUnknownRecipients) {
  int auth_checked = 0, unknown_checked = 0;
  for (const Labelled& l : Read(LogsDir() + "/postfix")) {
    absl::Time when;
    const MailLogEvent e = Classify(l, &when);
    const bool auth_mode = absl::StrContains(l.options, "\"auth\"");
    if (auth_mode) {
      ++auth_checked;
      EXPECT_EQ(e.kind == MailLogEvent::Kind::kAuthFailed, l.match) << l.number << ": " << l.line;
      if (l.match) {
        EXPECT_EQ(e.client_ip, l.host) << l.number;
        CheckTime(l, when);
      }
    } else {
      EXPECT_NE(e.kind, MailLogEvent::Kind::kAuthFailed) << l.number << ": " << l.line;
    }
    if (absl::StrContains(l.line, "User unknown") && l.match) {
      ++unknown_checked;
      EXPECT_EQ(e.kind, MailLogEvent::Kind::kUnknownRecipient) << l.number << ": " << l.line;
      EXPECT_EQ(e.client_ip, l.host) << l.number;
      CheckTime(l, when);
    } else {
      EXPECT_NE(e.kind, MailLogEvent::Kind::kUnknownRecipient) << l.number << ": " << l.line;
    }
  }
  EXPECT_GE(auth_checked, 12);
  EXPECT_GE(unknown_checked, 1);
}

TEST(Fail2banLogsTest, DovecotAuthFailures) {
  int checked = 0, failures = 0;
  for (const Labelled& l : Read(LogsDir() + "/dovecot")) {
    if (absl::StrContains(l.options, "aggressive")) continue;  // fail2ban's wider net
    absl::Time when;
    const MailLogEvent e = Classify(l, &when);
    const bool expected = l.match && !absl::StrContains(l.line, "plaintext auth");
    ++checked;
    EXPECT_EQ(e.kind == MailLogEvent::Kind::kAuthFailed, expected) << l.number << ": " << l.line;
    if (expected) {
      ++failures;
      EXPECT_EQ(e.client_ip, l.host) << l.number << ": " << l.line;
      CheckTime(l, when);
    }
  }
  EXPECT_GE(checked, 40);
  EXPECT_GE(failures, 30);
}

}  // namespace
}  // namespace sluice
