// MailLog: one line of an MTA's log (syslog's mail.log, Postfix's
// maillog_file, journald's output) split into its parts, and the events
// sluice's abuse detectors take from it:
//
//   line (message of ...)                                         event
//   postfix/*smtpd: warning: NAME[IP]: SASL M authentication      kAuthFailed (IP; the user when
//     failed: ...                                                   Postfix names it)
//   dovecot *-login: ... (auth failed, N attempts ...): user=<U>, kAuthFailed (rip, U), N attempts
//     ... rip=IP                                                    (a summary line)
//   dovecot auth: DRIVER(USER,IP[,<session>]): Password mismatch  kAuthFailed (IP, USER); a detail
//     | unknown user | pam_authenticate() failed | invalid           line (see below)
//     credentials; pam_unix(dovecot:auth): authentication
//     failure; ... rhost=IP [user=U]
//   postfix/*smtpd: ... reject: RCPT (or VRFY) from NAME[IP]:      kUnknownRecipient (IP)
//     550 ... User unknown ...
//   postfix/*smtpd: connect from NAME[IP]                         kConnect (IP)
//   postfix/*smtpd: disconnect from NAME[IP] ...                  kDisconnect (IP)
//
// Not failures, so not counted: a SASL failure caused by the server
// ("Connection lost to authentication server") or by a mechanism the
// server does not offer ("Invalid authentication mechanism"); Dovecot's
// "no auth attempts" and "tried to use disabled plaintext auth" (no
// password was tried). With auth_verbose, Dovecot logs one failure twice
// (a detail line from its auth process, a summary from the login
// process): LogFeeder counts the summaries once it has seen one, and the
// details only until then.
//
// Timestamps: RFC 3339 (rsyslog's high-precision format, journalctl -o
// short-iso and short-iso-precise: "2026-12-06T14:00:00.123456+01:00",
// "+0100"), "2026-12-06 14:00:00", BSD syslog ("Dec  6 14:00:00",
// journalctl's "Dec 06 14:00:00", the year taken as the latest that does
// not put the line more than a day after `reference`), TAI64N ("@4000...",
// multilog). A line whose time is not understood still yields its event,
// with time InfinitePast (the caller uses its own clock).
//
// Thread safety: free functions; thread-safe.
#ifndef SLUICE_BINDINGS_LOGS_MAIL_LOG_H_
#define SLUICE_BINDINGS_LOGS_MAIL_LOG_H_

#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace sluice {

struct LogLine {
  absl::Time time = absl::InfinitePast();  // not understood: InfinitePast
  absl::string_view host;                  // may be empty (no host field)
  absl::string_view program;               // "postfix/smtpd", "dovecot", "auth-worker"
  absl::string_view message;
};

// Splits a line. Returns false if it has no "program: message" part (not
// a log line). Views point into `line`.
bool SplitLogLine(absl::string_view line, absl::Time reference, absl::TimeZone tz, LogLine* out);

struct MailLogEvent {
  enum class Kind : uint8_t { kNone, kAuthFailed, kUnknownRecipient, kConnect, kDisconnect };
  Kind kind = Kind::kNone;
  std::string client_ip;  // textual IPv4 or IPv6
  std::string user;       // empty if the line names none
  int attempts = 1;
  bool summary = false;  // Dovecot's login-process line (else a detail line)
  bool dovecot = false;
};

// The event of a split line (kind kNone for every other line).
MailLogEvent ClassifyMailLog(const LogLine& line);

// The value of `key` ("rip=", "from=", "S=") in a log message: the key
// starts the message or follows a space; the value is what "<...>"
// encloses (empty if it never closes), else it runs to the next ',' or
// ' '. Empty if the key is absent.
absl::string_view LogField(absl::string_view message, absl::string_view key);

}  // namespace sluice

#endif  // SLUICE_BINDINGS_LOGS_MAIL_LOG_H_
