#include "bindings/milter/milter_session.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace sluice {
namespace {

// Connections of this process, for transaction names that no other
// connection (or a restarted milter) uses.
std::atomic<uint64_t> g_connections{0};
const int64_t g_started = absl::ToUnixMicros(absl::Now());
const int g_pid = getpid();  // once: getpid() is a system call

// What the MTA hands over, with control bytes (CR, LF, NUL, ...) made
// '?': they must never reach a reply text or a log line.
std::string Clean(absl::string_view in) {
  std::string out(in);
  for (char& c : out) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) c = '?';
  }
  return out;
}

bool Refuses(const MilterSession::Answer& a) {
  return a.kind == MilterSession::Answer::kTempfail || a.kind == MilterSession::Answer::kReject ||
         a.kind == MilterSession::Answer::kDiscard;
}

}  // namespace

MilterSession::MilterSession(PolicyEngine* engine, Options options)
    : engine_(engine),
      options_(options),
      connection_id_(g_connections.fetch_add(1, std::memory_order_relaxed)) {}

absl::string_view MilterSession::Strip(absl::string_view addr) {
  addr = absl::StripAsciiWhitespace(addr);
  if (addr.size() >= 2 && addr.front() == '<' && addr.back() == '>') {
    addr = addr.substr(1, addr.size() - 2);
  }
  return addr;
}

SmtpEvent MilterSession::Event(Stage stage) const {
  SmtpEvent e;
  e.stage = stage;
  e.transaction = transaction_;
  e.client_address = client_address_;
  e.helo = helo_;
  e.sasl_username = auth_user_;
  e.sender = sender_;
  e.script = script_;
  e.list = list_;
  e.server_port = daemon_port_;
  e.door_name = daemon_name_;
  e.count = options_.count;
  if (local_) e.direction = Direction::kOutgoing;  // sendmail(1): submitted on this host
  return e;
}

MilterSession::Answer MilterSession::Judge(const Verdict& verdict, absl::string_view queue_id,
                                           bool at_end) {
  Answer a;
  if (!verdict.tripped()) return a;
  a.tripped = true;
  if (verdict.admitted() || verdict.shadow) {
    a.log_line = PolicyEngine::LogLine(verdict, queue_id);
    std::string name, value;
    if (engine_->ShadowHeader(verdict, &name, &value) && pending_.header_name.empty()) {
      pending_.header_name = std::move(name);  // added at the end of the message
      pending_.header_value = std::move(value);
    }
    return a;
  }
  // Local submission cannot be deferred: Postfix would put the file back
  // and pickup would hand it over again and again, under a new queue id
  // each time. The message waits in the hold queue instead, for the
  // administrator (postsuper -H releases it, -d deletes it).
  Verdict v = verdict;
  if (local_ && v.action == Action::kDefer) v.action = Action::kHold;
  a.log_line = PolicyEngine::LogLine(v, queue_id);
  switch (v.action) {
    case Action::kHold:
      a.kind = Answer::kQuarantine;
      break;
    case Action::kDiscard:
      a.kind = Answer::kDiscard;
      break;
    case Action::kReject:
      a.kind = Answer::kReject;
      break;
    default:
      a.kind = Answer::kTempfail;
      break;
  }
  a.smtp_code = v.smtp_code;
  a.enhanced_status = v.enhanced_status;
  a.text = v.text;
  // Before the end of the message: HOLD is a quarantine, which only the end
  // of the message can do; on local submission, a refusal before the end
  // makes Postfix retry the file forever (see REAL_SERVERS.md).
  if (!at_end && (a.kind == Answer::kQuarantine || local_)) {
    if (pending_.kind == Answer::kContinue) {  // the first decision stands
      pending_.kind = a.kind;
      pending_verdict_ = verdict;  // judged again at the end, with the queue id
    }
    return Answer();  // logged at the end, with the queue id
  }
  return a;
}

MilterSession::Answer MilterSession::Connect(absl::string_view client_address,
                                             absl::string_view client_name,
                                             absl::string_view daemon_name, uint32_t daemon_port,
                                             absl::Time now) {
  if (in_message_) Abort(now);  // a new connection: the old message is gone
  client_address_ = Clean(client_address);
  client_name_ = Clean(client_name);
  daemon_name_ = Clean(daemon_name);
  daemon_port_ = daemon_port;
  return Judge(engine_->Evaluate(Event(Stage::kConnect), now), "", false);
}

MilterSession::Answer MilterSession::Helo(absl::string_view name, absl::Time now) {
  helo_ = Clean(name);
  return Judge(engine_->Evaluate(Event(Stage::kHelo), now), "", false);
}

MilterSession::Answer MilterSession::Mail(absl::string_view sender, absl::string_view auth_user,
                                          absl::string_view queue_id, absl::string_view mta,
                                          absl::Time now) {
  if (in_message_) Abort(now);  // a new MAIL without RSET: the old one is gone
  in_message_ = true;
  ++messages_;
  transaction_ =
      absl::StrCat("milter.", getpid(), ".", g_started, ".", connection_id_, ".", messages_);
  sender_ = Clean(Strip(sender));
  auth_user_ = Clean(auth_user);
  script_.clear();
  list_.clear();
  accepted_recipients_ = 0;
  header_bytes_ = 0;
  body_bytes_ = 0;
  body_started_ = false;
  pending_ = Answer();
  body_.Begin();
  // Postfix's cleanup knows the queue id at MAIL only for mail that
  // sendmail(1) submitted; its smtpd assigns it after the first RCPT.
  local_ = !queue_id.empty() && absl::StartsWith(mta, "Postfix");
  return Judge(engine_->Evaluate(Event(Stage::kMail), now), queue_id, false);
}

MilterSession::Answer MilterSession::Rcpt(absl::string_view recipient, absl::Time now) {
  if (!in_message_) return Answer();  // RCPT without MAIL: no MTA sends it
  SmtpEvent e = Event(Stage::kRcpt);
  const std::string rcpt = Clean(Strip(recipient));
  e.recipient = rcpt;
  Answer a = Judge(engine_->Evaluate(e, now), "", false);
  if (a.kind == Answer::kContinue) ++accepted_recipients_;
  return a;
}

void MilterSession::Header(absl::string_view name, absl::string_view value) {
  const size_t bytes = name.size() + 2 + value.size() + 2;
  header_bytes_ += bytes;
  const absl::string_view v = absl::StripAsciiWhitespace(value);
  if (absl::EqualsIgnoreCase(name, "X-PHP-Originating-Script")) {
    script_ = Clean(v.substr(0, 256));
  } else if (absl::EqualsIgnoreCase(name, "List-Id")) {
    // "Name <list.example.org>": the id in angle brackets.
    const size_t lt = v.rfind('<'), gt = v.rfind('>');
    list_ = Clean(lt != absl::string_view::npos && gt != absl::string_view::npos && gt > lt
                      ? v.substr(lt + 1, std::min<size_t>(gt - lt - 1, 256))
                      : v.substr(0, 256));
  } else if (absl::EqualsIgnoreCase(name, "Precedence") && list_.empty() &&
             (absl::EqualsIgnoreCase(v, "bulk") || absl::EqualsIgnoreCase(v, "list"))) {
    list_ = sender_;  // bulk mail without a List-Id: the sender's list
  }
  if (header_bytes_ <= options_.max_header_bytes) {
    body_.Feed(absl::StrCat(name, ": ", value, "\r\n"));
  }
}

void MilterSession::EndOfHeaders() {
  if (body_started_) return;
  body_.Feed("\r\n");
  body_started_ = true;
}

void MilterSession::Body(absl::string_view chunk) {
  if (!body_started_) EndOfHeaders();
  body_bytes_ += chunk.size();
  body_.Feed(chunk);
}

MilterSession::Answer MilterSession::End(absl::string_view queue_id, absl::Time now) {
  if (!in_message_) {  // end of message without MAIL (a broken client or MTA)
    Answer a;
    return a;
  }
  if (!body_started_) EndOfHeaders();
  Answer a;
  if (pending_.kind != Answer::kContinue) {
    // Decided at an earlier stage (local submission, or HOLD): nothing of
    // the message stays counted.
    engine_->Abort(transaction_, now);
    a = Judge(pending_verdict_, queue_id, true);
  } else {
    body_.Finish();
    SmtpEvent e = Event(Stage::kEndOfMessage);
    e.size = header_bytes_ + 2 + body_bytes_;  // headers, the blank line, the body
    e.recipient_count = accepted_recipients_;
    body_.AttachTo(&e);
    a = Judge(engine_->Evaluate(e, now), queue_id, true);
  }
  if (a.header_name.empty() && !Refuses(a)) {
    a.header_name = pending_.header_name;
    a.header_value = pending_.header_value;
  }
  in_message_ = false;
  pending_ = Answer();
  return a;
}

void MilterSession::Abort(absl::Time now) {
  if (!in_message_) return;
  engine_->Abort(transaction_, now);
  in_message_ = false;
  pending_ = Answer();
}

void MilterSession::Close(absl::Time now) { Abort(now); }

}  // namespace sluice
