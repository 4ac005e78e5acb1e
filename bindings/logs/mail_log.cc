#include "bindings/logs/mail_log.h"

#include <cstdint>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "ratelimit/ip.h"

namespace sluice {
namespace {

using absl::string_view;

bool Digits(string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

int Num(string_view s) {
  int v = 0;
  for (char c : s) v = v * 10 + (c - '0');
  return v;
}

// "2026-12-06T14:00:00[.frac][Z|+01:00|+0100]" or "2026-12-06 14:00:00" at
// the start of s; sets *used to its length.
bool IsoTime(string_view s, absl::TimeZone tz, absl::Time* t, size_t* used) {
  if (s.size() < 19 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != ' ') ||
      s[13] != ':' || s[16] != ':' || !Digits(s.substr(0, 4)) || !Digits(s.substr(5, 2)) ||
      !Digits(s.substr(8, 2)) || !Digits(s.substr(11, 2)) || !Digits(s.substr(14, 2)) ||
      !Digits(s.substr(17, 2))) {
    return false;
  }
  size_t i = 19;
  int64_t frac_us = 0;
  if (i < s.size() && s[i] == '.') {
    size_t j = i + 1;
    int64_t scale = 100000;
    while (j < s.size() && s[j] >= '0' && s[j] <= '9') {
      if (scale > 0) frac_us += (s[j] - '0') * scale;
      scale /= 10;
      ++j;
    }
    i = j;
  }
  absl::TimeZone zone = tz;
  if (i < s.size() && s[i] == 'Z') {
    zone = absl::UTCTimeZone();
    ++i;
  } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    const int sign = s[i] == '-' ? -1 : 1;
    string_view z = s.substr(i + 1);
    int hh, mm;
    if (z.size() >= 5 && z[2] == ':' && Digits(z.substr(0, 2)) && Digits(z.substr(3, 2))) {
      hh = Num(z.substr(0, 2));
      mm = Num(z.substr(3, 2));
      i += 6;
    } else if (z.size() >= 4 && Digits(z.substr(0, 4))) {
      hh = Num(z.substr(0, 2));
      mm = Num(z.substr(2, 2));
      i += 5;
    } else {
      return false;
    }
    zone = absl::FixedTimeZone(sign * (hh * 3600 + mm * 60));
  }
  const absl::CivilSecond cs(Num(s.substr(0, 4)), Num(s.substr(5, 2)), Num(s.substr(8, 2)),
                             Num(s.substr(11, 2)), Num(s.substr(14, 2)), Num(s.substr(17, 2)));
  *t = absl::FromCivil(cs, zone) + absl::Microseconds(frac_us);
  *used = i;
  return true;
}

// "Dec  6 14:00:00" or "Dec 06 14:00:00".
bool BsdTime(string_view s, absl::Time reference, absl::TimeZone tz, absl::Time* t, size_t* used) {
  static constexpr char kMonths[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
  if (s.size() < 14 || s[3] != ' ') return false;
  int month = 0;
  for (int m = 0; m < 12; ++m) {
    if (s.substr(0, 3) == string_view(kMonths + 3 * m, 3)) month = m + 1;
  }
  if (month == 0) return false;
  size_t i = 4;
  if (s[i] == ' ') ++i;
  size_t d0 = i;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
  if (i == d0 || i - d0 > 2 || i >= s.size() || s[i] != ' ') return false;
  const int day = Num(s.substr(d0, i - d0));
  ++i;
  string_view hms = s.substr(i, 8);
  if (hms.size() < 8 || hms[2] != ':' || hms[5] != ':' || !Digits(hms.substr(0, 2)) ||
      !Digits(hms.substr(3, 2)) || !Digits(hms.substr(6, 2))) {
    return false;
  }
  const int year = static_cast<int>(absl::ToCivilYear(reference, tz).year());
  absl::Time when = absl::FromCivil(absl::CivilSecond(year, month, day, Num(hms.substr(0, 2)),
                                                      Num(hms.substr(3, 2)), Num(hms.substr(6, 2))),
                                    tz);
  // A December line read in January belongs to last year.
  if (when > reference + absl::Hours(24)) {
    when = absl::FromCivil(absl::CivilSecond(year - 1, month, day, Num(hms.substr(0, 2)),
                                             Num(hms.substr(3, 2)), Num(hms.substr(6, 2))),
                           tz);
  }
  *t = when;
  *used = i + 8;
  return true;
}

// "@4000000065a1b2c3xxxxxxxx" (TAI64N).
bool Tai64nTime(string_view s, absl::Time* t, size_t* used) {
  if (s.size() < 25 || s[0] != '@') return false;
  uint64_t secs = 0;
  for (size_t i = 1; i <= 16; ++i) {
    const char c = s[i];
    const int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (v < 0) return false;
    secs = secs * 16 + static_cast<uint64_t>(v);
  }
  *t = absl::FromUnixSeconds(static_cast<int64_t>(secs - (uint64_t{1} << 62)) - 10);
  *used = 25;
  return true;
}

string_view NextToken(string_view s, size_t* pos) {
  while (*pos < s.size() && s[*pos] == ' ') ++*pos;
  const size_t start = *pos;
  while (*pos < s.size() && s[*pos] != ' ') ++*pos;
  return s.substr(start, *pos - start);
}

// "name[pid]:" or "name:" -> name.
string_view ProgramName(string_view token) {
  token.remove_suffix(1);  // ':'
  if (!token.empty() && token.back() == ']') {
    const size_t open = token.rfind('[');
    if (open != string_view::npos) token = token.substr(0, open);
  }
  return token;
}

// The IP in "NAME[IP]" starting at `from` in s ("unknown[192.0.2.1]:55729").
bool BracketIp(string_view s, size_t from, std::string* ip) {
  const size_t open = s.find('[', from);
  if (open == string_view::npos) return false;
  const size_t close = s.find(']', open + 1);
  if (close == string_view::npos) return false;
  string_view v = s.substr(open + 1, close - open - 1);
  IpAddress a;
  if (!ParseIp(v, &a)) return false;
  *ip = std::string(v);
  return true;
}

bool ValidIp(string_view s) {
  IpAddress a;
  return !s.empty() && ParseIp(s, &a);
}

void Postfix(string_view m, MailLogEvent* e) {
  if (absl::StartsWith(m, "connect from ")) {
    if (BracketIp(m, 13, &e->client_ip)) e->kind = MailLogEvent::Kind::kConnect;
    return;
  }
  if (absl::StartsWith(m, "disconnect from ")) {
    if (BracketIp(m, 16, &e->client_ip)) e->kind = MailLogEvent::Kind::kDisconnect;
    return;
  }
  if (absl::StartsWith(m, "warning: ")) {
    const size_t sasl = m.find(": SASL ");
    if (sasl == string_view::npos) return;
    const size_t failed = m.find(" authentication failed:", sasl);
    if (failed == string_view::npos) return;
    string_view reason = m.substr(failed + 23);
    // The server's trouble or an unoffered mechanism: no password was guessed.
    if (absl::StrContains(reason, "Connection lost to authentication server") ||
        absl::StrContains(reason, "Invalid authentication mechanism")) {
      return;
    }
    if (!BracketIp(m.substr(0, sasl), 9, &e->client_ip)) return;
    e->user = std::string(LogField(reason, "sasl_username="));
    e->kind = MailLogEvent::Kind::kAuthFailed;
    return;
  }
  // An unknown recipient at RCPT, or asked for with VRFY (harvesting too).
  size_t from = m.find("reject: RCPT from ");
  if (from == string_view::npos) from = m.find("reject: VRFY from ");
  if (from != string_view::npos && absl::StrContains(m, "User unknown")) {
    if (BracketIp(m, from + 18, &e->client_ip)) e->kind = MailLogEvent::Kind::kUnknownRecipient;
  }
}

void DovecotSummary(string_view m, MailLogEvent* e) {
  size_t at = m.find("(auth failed, ");
  int attempts = 0;
  if (at != string_view::npos) {
    string_view n = m.substr(at + 14);
    const size_t sp = n.find(' ');
    if (sp == string_view::npos || !absl::SimpleAtoi(n.substr(0, sp), &attempts) ||
        !absl::StartsWith(n.substr(sp), " attempt")) {
      return;
    }
  } else if (absl::StrContains(m, "(proxy dest auth failed)")) {
    attempts = 1;
  } else {
    return;
  }
  string_view rip = LogField(m, "rip=");
  if (!ValidIp(rip)) return;
  string_view user = LogField(m, "user=");
  e->kind = MailLogEvent::Kind::kAuthFailed;
  e->client_ip = std::string(rip);
  e->user = std::string(user);
  e->attempts = attempts < 1 ? 1 : attempts;
  e->summary = true;
  e->dovecot = true;
}

// Dovecot's auth process: "DRIVER(USER,IP[,<session>]): REASON".
void DovecotDetail(string_view m, MailLogEvent* e) {
  static constexpr string_view kReasons[] = {"): Password mismatch", "): unknown user",
                                             "): pam_authenticate() failed",
                                             "): invalid credentials"};
  for (string_view r : kReasons) {
    const size_t close = m.find(r);
    if (close == string_view::npos) continue;
    const size_t open = m.rfind('(', close);
    if (open == string_view::npos) return;
    string_view inside = m.substr(open + 1, close - open - 1);
    const size_t c1 = inside.find(',');
    if (c1 == string_view::npos) return;
    string_view rest = inside.substr(c1 + 1);
    string_view ip = rest.substr(0, rest.find(','));
    if (!ValidIp(ip)) return;
    e->kind = MailLogEvent::Kind::kAuthFailed;
    e->client_ip = std::string(ip);
    e->user = std::string(inside.substr(0, c1));
    e->dovecot = true;
    return;
  }
  // Through PAM: "pam_unix(dovecot:auth): authentication failure; ... rhost=IP [user=U]".
  if (absl::StrContains(m, "pam_unix(dovecot:auth): authentication failure")) {
    string_view ip = LogField(m, "rhost=");
    if (!ValidIp(ip)) return;
    e->kind = MailLogEvent::Kind::kAuthFailed;
    e->client_ip = std::string(ip);
    e->user = std::string(LogField(m, "user="));
    e->dovecot = true;
  }
}

}  // namespace

bool SplitLogLine(absl::string_view line, absl::Time reference, absl::TimeZone tz, LogLine* out) {
  *out = LogLine();
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  size_t used = 0;
  absl::Time t;
  if (IsoTime(line, tz, &t, &used) || BsdTime(line, reference, tz, &t, &used) ||
      Tai64nTime(line, &t, &used)) {
    out->time = t;
  } else {
    used = 0;
  }
  size_t pos = used;
  string_view first = NextToken(line, &pos);
  if (first.empty()) return false;
  if (first.back() != ':') {
    out->host = first;
    first = NextToken(line, &pos);
    if (first.empty() || first.back() != ':') return false;
  }
  out->program = ProgramName(first);
  while (pos < line.size() && line[pos] == ' ') ++pos;
  out->message = line.substr(pos);
  return true;
}

absl::string_view LogField(absl::string_view s, absl::string_view key) {
  size_t at = 0;
  while ((at = s.find(key, at)) != string_view::npos) {
    if (at == 0 || s[at - 1] == ' ') {
      string_view v = s.substr(at + key.size());
      if (!v.empty() && v[0] == '<') {
        const size_t end = v.find('>');
        return end == string_view::npos ? string_view() : v.substr(1, end - 1);
      }
      return v.substr(0, v.find_first_of(", "));
    }
    at += key.size();
  }
  return string_view();
}

MailLogEvent ClassifyMailLog(const LogLine& l) {
  MailLogEvent e;
  if (absl::StrContains(l.program, "smtpd")) {
    Postfix(l.message, &e);
    return e;
  }
  DovecotSummary(l.message, &e);
  if (e.kind == MailLogEvent::Kind::kNone) DovecotDetail(l.message, &e);
  return e;
}

}  // namespace sluice
