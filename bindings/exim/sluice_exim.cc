// sluice in Exim's own processes: a ${dlfunc} module (exim4-daemon-heavy)
// on the same config and counter table as sluice-policyd.
//
// Functions (each returns OK with the answer in its yield: "DUNNO", or an
// SMTP reply such as "451 4.7.1 sluice: ..." or "550 5.7.1 ..."; the ACL
// snippet in bindings/exim/README.md turns that into defer or deny):
//
//   sluice_rcpt  CONFIG TXN CLIENT_ADDRESS AUTH_ID SENDER RECIPIENT
//     acl_smtp_rcpt: reserves the recipient on the sender's path (or, for
//     inbound mail, the client's). TXN ties a message's recipients
//     together (an $acl_m variable set once per message).
//   sluice_data  CONFIG TXN CLIENT_ADDRESS AUTH_ID SENDER SIZE RCPT_COUNT SCRIPT
//     acl_smtp_data: commits with $message_size; the recipients Exim
//     accepted reconcile the reservations; SCRIPT is the
//     X-PHP-Originating-Script header (script level). The body, read from
//     Exim's spool ($spool_directory/input/$message_exim_id-D, under the
//     message's Content-Type and Content-Transfer-Encoding; the first
//     4 MiB), feeds the near-duplicate and campaign detectors, and its
//     link hosts go to the domain lists that check BODY_URLS. (The module
//     asks Exim for these itself: ${dlfunc} takes at most 8 arguments.)
//   sluice_not_smtp CONFIG MESSAGE_ID SENDER SIZE RCPT_COUNT SCRIPT
//     acl_not_smtp (exim -t: where PHP's mail() arrives): local submission,
//     outgoing whatever the addresses; charged at once. Exim can only
//     accept or refuse here (a refusal is final: exit 1 and a bounce), so a
//     limit that trips refuses; a bounce (empty sender) counts nothing.
//
// Each Exim process (one per SMTP connection, one per exim -t) opens the
// engine on its first call with leases off: counts on the shared table are
// exact however many processes there are.
//
// Preloaded into Exim's daemon (LD_PRELOAD=/path/sluice_exim.so with
// SLUICE_EXIM_CONFIG=CONFIG and LD_BIND_NOW=1 in the daemon's environment;
// bindings/exim/README.md), the module is loaded and linked once, and it
// reads CONFIG there (the config's types are built, the text parsed) and
// runs its text code once (ICU's data opened): the processes the daemon
// forks per connection start with all that done. A process still opens its
// own engine and counter table (the daemon starts no thread and opens no
// file of sluice's), and rereads CONFIG if the file changed since.
//
// If the config cannot be loaded the answer is "DUNNO" (fail open) and a
// log line goes to Exim's main log, unless CONFIG is prefixed "closed:"
// (then "451 4.3.0 ..." at RCPT/DATA).
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "bindings/engine/message_body.h"
#include "bindings/engine/policy_engine.h"
#include "ratelimit/config.h"

extern "C" {
#include <local_scan.h>
}

namespace {

// The engine of this process, opened on the first call.
struct Loaded {
  std::string config_path;
  std::unique_ptr<sluice::PolicyEngine> engine;
  std::string error;
};

Loaded& State() {
  static Loaded* s = new Loaded;
  return *s;
}

// A config file as it was when read: the same path, inode, size and
// modification time mean the same text.
struct FileStamp {
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = -1;
  timespec mtime{};
  static std::optional<FileStamp> Of(const std::string& path) {
    struct stat st;
    if (stat(path.c_str(), &st) != 0) return std::nullopt;
    return FileStamp{st.st_dev, st.st_ino, st.st_size, st.st_mtim};
  }
  bool operator==(const FileStamp& o) const {
    return dev == o.dev && ino == o.ino && size == o.size && mtime.tv_sec == o.mtime.tv_sec &&
           mtime.tv_nsec == o.mtime.tv_nsec;
  }
};

// The config the daemon read when the module was preloaded (see the top).
struct Preread {
  std::string path;
  FileStamp stamp;
  sluice::config::Config config;
};
Preread* g_preread = nullptr;

// Runs when the module is loaded; does anything only in a daemon that
// preloads it with SLUICE_EXIM_CONFIG set.
__attribute__((constructor)) void PreloadInDaemon() {
  const char* path = std::getenv("SLUICE_EXIM_CONFIG");
  if (path == nullptr || *path == 0) return;
  auto stamp = FileStamp::Of(path);
  auto c = sluice::LoadConfigFile(path);
  if (stamp.has_value() && c.ok()) g_preread = new Preread{path, *stamp, std::move(*c)};
  // The text path once (a line of non-ASCII text opens ICU's normaliser
  // and confusables data), so a forked process does not open them again.
  sluice::MessageBody body;
  body.Begin();
  body.Feed(
      "Content-Type: text/plain; charset=utf-8\r\n\r\nWarm \xc3\xa9t\xc3\xa9 w\xd0\xb0rm\r\n");
  body.Finish();
}

// CONFIG, from the daemon's reading when the file is unchanged since.
absl::StatusOr<sluice::config::Config> ReadConfig(const std::string& path) {
  if (g_preread != nullptr && g_preread->path == path) {
    auto now = FileStamp::Of(path);
    if (now.has_value() && *now == g_preread->stamp) return g_preread->config;
  }
  return sluice::LoadConfigFile(path);
}

// The yield: a copy in Exim's memory pool (Exim frees it).
int Yield(uschar** yield, absl::string_view answer) {
  auto* out = static_cast<uschar*>(store_get(static_cast<int>(answer.size()) + 1, GET_UNTAINTED));
  std::memcpy(out, answer.data(), answer.size());
  out[answer.size()] = 0;
  *yield = out;
  return OK;
}

// The engine for CONFIG ("closed:PATH" fails closed), or null with the
// answer to give in *fallback.
sluice::PolicyEngine* Engine(absl::string_view arg, std::string* fallback) {
  bool closed = false;
  if (arg.substr(0, 7) == "closed:") {
    closed = true;
    arg.remove_prefix(7);
  }
  Loaded& s = State();
  if (s.engine == nullptr && s.error.empty()) {
    s.config_path = std::string(arg);
    auto c = ReadConfig(s.config_path);
    if (c.ok()) {
      sluice::PolicyEngine::Options o;
      o.leases = false;  // a process per connection: exact counts
      o.record_activity = false;
      auto e = sluice::PolicyEngine::Create(*c, absl::Now(), o);
      if (e.ok()) {
        s.engine = std::move(*e);
      } else {
        s.error = std::string(e.status().message());
      }
    } else {
      s.error = std::string(c.status().message());
    }
    if (!s.error.empty()) {
      log_write(0, LOG_MAIN, "sluice: cannot load %s: %s (failing %s)", s.config_path.c_str(),
                s.error.c_str(), closed ? "closed" : "open");
    }
  }
  if (s.engine == nullptr) {
    *fallback = closed ? "451 4.3.0 sluice: mail policy unavailable, try again later" : "DUNNO";
  }
  return s.engine.get();
}

absl::string_view Arg(int argc, uschar* argv[], int i) {
  return i < argc && argv[i] != nullptr ? absl::string_view(reinterpret_cast<char*>(argv[i]))
                                        : absl::string_view();
}

// Reads the body in Exim's spool -D file (its first line is the file's own
// name; the body follows), under the message's MIME headers, into the
// fingerprint and link hosts of `body`.
bool ReadBody(absl::string_view path, absl::string_view content_type, absl::string_view encoding,
              sluice::MessageBody* body) {
  if (path.empty()) return false;
  std::FILE* f = std::fopen(std::string(path).c_str(), "rb");
  if (f == nullptr) return false;
  body->Begin();
  if (!content_type.empty()) body->Feed(absl::StrCat("Content-Type: ", content_type, "\r\n"));
  if (!encoding.empty()) {
    body->Feed(absl::StrCat("Content-Transfer-Encoding: ", encoding, "\r\n"));
  }
  body->Feed("\r\n");
  char buf[65536];
  size_t total = 0;
  bool first_line = true;
  while (total < (4u << 20)) {
    const size_t n = std::fread(buf, 1, sizeof(buf), f);
    if (n == 0) break;
    absl::string_view chunk(buf, n);
    if (first_line) {  // "<id>-D\n"
      const size_t nl = chunk.find('\n');
      if (nl == absl::string_view::npos) continue;
      chunk.remove_prefix(nl + 1);
      first_line = false;
    }
    body->Feed(chunk);
    total += n;
  }
  std::fclose(f);
  body->Finish();
  return true;
}

// An Exim expansion ("" if it fails).
absl::string_view Expand(const char* what) {
  const uschar* out = expand_string(const_cast<uschar*>(reinterpret_cast<const uschar*>(what)));
  return out == nullptr ? absl::string_view()
                        : absl::string_view(reinterpret_cast<const char*>(out));
}

uint64_t Number(absl::string_view s) {
  uint64_t n = 0;
  return absl::SimpleAtoi(s, &n) ? n : 0;
}

// The verdict as the module's answer (and a main-log line when it tripped).
int Answer(sluice::PolicyEngine* e, const sluice::Verdict& v, uschar** yield) {
  if (v.tripped()) {
    log_write(0, LOG_MAIN, "%s", sluice::PolicyEngine::LogLine(v, "").c_str());
  }
  if (v.admitted()) return Yield(yield, "DUNNO");
  return Yield(yield, absl::StrCat(v.smtp_code, " ", v.enhanced_status, " ", v.text));
}

// The envelope the SMTP functions share: CONFIG TXN CLIENT_ADDRESS AUTH_ID
// SENDER are their first arguments.
sluice::SmtpEvent Envelope(sluice::Stage stage, int argc, uschar* argv[]) {
  sluice::SmtpEvent ev;
  ev.stage = stage;
  ev.transaction = Arg(argc, argv, 1);
  ev.client_address = Arg(argc, argv, 2);
  ev.sasl_username = Arg(argc, argv, 3);
  ev.sender = Arg(argc, argv, 4);
  return ev;
}

}  // namespace

extern "C" {

__attribute__((visibility("default"))) int sluice_rcpt(uschar** yield, int argc, uschar* argv[]) {
  std::string fallback;
  sluice::PolicyEngine* e = Engine(Arg(argc, argv, 0), &fallback);
  if (e == nullptr) return Yield(yield, fallback);
  sluice::SmtpEvent ev = Envelope(sluice::Stage::kRcpt, argc, argv);
  ev.recipient = Arg(argc, argv, 5);
  return Answer(e, e->Evaluate(ev, absl::Now()), yield);
}

__attribute__((visibility("default"))) int sluice_data(uschar** yield, int argc, uschar* argv[]) {
  std::string fallback;
  sluice::PolicyEngine* e = Engine(Arg(argc, argv, 0), &fallback);
  if (e == nullptr) return Yield(yield, fallback);
  sluice::SmtpEvent ev = Envelope(sluice::Stage::kEndOfMessage, argc, argv);
  ev.size = Number(Arg(argc, argv, 5));
  ev.recipient_count = Number(Arg(argc, argv, 6));
  ev.script = Arg(argc, argv, 7);
  static sluice::MessageBody* body = new sluice::MessageBody;  // one per process
  if (ReadBody(Expand("$spool_directory/input/$message_exim_id-D"), Expand("$h_Content-Type:"),
               Expand("$h_Content-Transfer-Encoding:"), body)) {
    body->AttachTo(&ev);  // fingerprint and link hosts
  }
  return Answer(e, e->Evaluate(ev, absl::Now()), yield);
}

__attribute__((visibility("default"))) int sluice_not_smtp(uschar** yield, int argc,
                                                           uschar* argv[]) {
  std::string fallback;
  sluice::PolicyEngine* e = Engine(Arg(argc, argv, 0), &fallback);
  if (e == nullptr) return Yield(yield, "DUNNO");  // here a refusal is a bounce: never for us
  sluice::SmtpEvent ev;
  ev.stage = sluice::Stage::kEndOfMessage;
  ev.direction = sluice::Direction::kOutgoing;  // local submission
  ev.transaction = Arg(argc, argv, 1);
  ev.sender = Arg(argc, argv, 2);
  if (ev.sender.empty()) return Yield(yield, "DUNNO");  // Exim's own bounces
  ev.size = Number(Arg(argc, argv, 3));
  ev.recipient_count = Number(Arg(argc, argv, 4));
  ev.script = Arg(argc, argv, 5);
  return Answer(e, e->Evaluate(ev, absl::Now()), yield);
}

}  // extern "C"
