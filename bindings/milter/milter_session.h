// MilterSession: one milter connection (one SMTP session, or one message
// that Postfix's cleanup hands to non_smtpd_milters) turned into the
// engine's stages. It knows nothing of libmilter (milter_server.cc feeds
// it from libmilter's callbacks; tests feed it directly), and it keeps no
// copy of the message:
//
//   Connect   client address and name, {daemon_name}, {daemon_port}
//   Helo      the HELO/EHLO name
//   Mail      sender, {auth_authen}; starts a transaction; whether this is
//             local submission (Postfix's sendmail(1) path: the queue id is
//             known at MAIL, which on SMTP it never is)
//   Rcpt      reserves the recipient on the sender's path; a refusal
//             refuses this recipient only (on local submission nothing is
//             refused here: Postfix would loop; the verdict waits for the
//             end of the message, where a defer becomes HOLD: the message
//             waits in Postfix's hold queue, since a deferred local
//             submission comes back again and again)
//   Header    X-PHP-Originating-Script (the script level), List-Id and
//             Precedence: bulk/list (the list level); every header also
//             goes to the body's normaliser (its MIME headers matter),
//             the first 64 KiB of them
//   Body      chunks into the normaliser and fingerprint (MessageBody)
//   End       commits with the size; the burst and campaign detectors;
//             body links on domain lists
//   Abort     gives the transaction's reservations back
// A message's answer is an Answer: continue, refuse (this recipient or the
// message) with a reply, discard, quarantine (HOLD), or add the shadow
// header.
//
// `count` false: another door on the same MTA counts these messages (see
// SmtpEvent::count); the milter then judges only what counts nothing.
//
// Thread safety: a session is used by one thread at a time (libmilter
// calls one connection's callbacks in order); sessions share the engine,
// which is thread-safe.
#ifndef SLUICE_BINDINGS_MILTER_MILTER_SESSION_H_
#define SLUICE_BINDINGS_MILTER_MILTER_SESSION_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "bindings/engine/message_body.h"
#include "bindings/engine/policy_engine.h"
#include "bindings/engine/smtp_event.h"

namespace sluice {

class MilterSession {
 public:
  struct Answer {
    enum Kind { kContinue, kTempfail, kReject, kDiscard, kQuarantine } kind = kContinue;
    int smtp_code = 0;            // kTempfail/kReject: "451", "550", ...
    std::string enhanced_status;  // "4.7.1"
    std::string text;             // reply text, or the quarantine reason
    std::string header_name;      // a header to add at the end (shadow)
    std::string header_value;
    bool tripped = false;  // something tripped (the log line says what)
    std::string log_line;  // mail.log style, when tripped
  };
  struct Options {
    bool count = true;
    // Header bytes fed to the normaliser per message (the rest is skipped).
    size_t max_header_bytes = 64 * 1024;
  };

  MilterSession(PolicyEngine* engine, Options options);
  MilterSession(const MilterSession&) = delete;
  MilterSession& operator=(const MilterSession&) = delete;

  Answer Connect(absl::string_view client_address, absl::string_view client_name,
                 absl::string_view daemon_name, uint32_t daemon_port, absl::Time now);
  Answer Helo(absl::string_view name, absl::Time now);
  // `queue_id`: the {i} macro if the MTA sent it at MAIL (empty if not);
  // `mta`: the v macro ("Postfix 3.7.11", "8.17.1").
  Answer Mail(absl::string_view sender, absl::string_view auth_user, absl::string_view queue_id,
              absl::string_view mta, absl::Time now);
  Answer Rcpt(absl::string_view recipient, absl::Time now);
  void Header(absl::string_view name, absl::string_view value);
  void EndOfHeaders();
  void Body(absl::string_view chunk);
  Answer End(absl::string_view queue_id, absl::Time now);
  // The MTA aborted the message (RSET, a refusal elsewhere, a lost client).
  void Abort(absl::Time now);
  // The connection ends (an open message is aborted).
  void Close(absl::Time now);

  // Local submission (Postfix's sendmail(1) path), as guessed at MAIL.
  bool local_submission() const { return local_; }
  // Whether a message is open (MAIL seen, no End or Abort yet).
  bool in_message() const { return in_message_; }

 private:
  SmtpEvent Event(Stage stage) const;
  Answer Judge(const Verdict& v, absl::string_view queue_id, bool at_end);
  static absl::string_view Strip(absl::string_view addr);  // "<a@b>" -> "a@b"

  PolicyEngine* engine_;
  Options options_;
  // The connection.
  std::string client_address_, client_name_, daemon_name_, helo_;
  uint32_t daemon_port_ = 0;
  uint64_t connection_id_;
  uint64_t messages_ = 0;
  // The message.
  bool in_message_ = false;
  bool local_ = false;
  std::string transaction_, sender_, auth_user_, script_, list_;
  uint64_t accepted_recipients_ = 0;
  uint64_t header_bytes_ = 0;
  uint64_t body_bytes_ = 0;
  bool body_started_ = false;
  MessageBody body_;
  // A refusal that waits for the end of the message (local submission), or
  // a HOLD/shadow header seen at an earlier stage.
  // pending_.kind set: a decision taken before the end (pending_verdict_).
  Answer pending_;
  Verdict pending_verdict_;
};

}  // namespace sluice

#endif  // SLUICE_BINDINGS_MILTER_MILTER_SESSION_H_
