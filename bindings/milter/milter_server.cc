#include "bindings/milter/milter_server.h"

#include <arpa/inet.h>
#include <libmilter/mfapi.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bindings/milter/milter_session.h"

namespace sluice {
namespace {

// libmilter has one milter per process: its state is process-wide.
struct Global {
  PolicyEngine* engine = nullptr;
  MilterServer::Options options;
  std::atomic<uint64_t> connections{0};
  std::atomic<uint64_t> messages{0};
  std::atomic<uint64_t> refused{0};
  std::mutex log_mu;
};
Global* g = nullptr;

void Log(const std::string& line) {
  if (g->options.log) {
    g->options.log(line);
    return;
  }
  std::lock_guard<std::mutex> lock(g->log_mu);
  std::fprintf(stderr, "sluice-milter: %s\n", line.c_str());
}

// One connection: its session and what was negotiated.
struct Conn {
  explicit Conn(bool count) : session(g->engine, {count}) {}
  MilterSession session;
  bool no_reply_header = false;  // SMFIP_NR_HDR: header callbacks answer SMFIS_NOREPLY
  bool no_reply_eoh = false;     // SMFIP_NR_EOH
  bool no_reply_body = false;    // SMFIP_NR_BODY
};

Conn* ConnOf(SMFICTX* ctx) { return static_cast<Conn*>(smfi_getpriv(ctx)); }
MilterSession* Session(SMFICTX* ctx) {
  Conn* c = ConnOf(ctx);
  return c == nullptr ? nullptr : &c->session;
}

std::string Macro(SMFICTX* ctx, const char* name) {
  const char* v = smfi_getsymval(ctx, const_cast<char*>(name));
  return v == nullptr ? std::string() : std::string(v);
}

// A reply text for smfi_setreply: one line, no '%' (libmilter would read
// it as a format), at most 500 bytes.
std::string ReplyText(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '%') {
      out += "%%";
    } else if (c == '\r' || c == '\n') {
      out += ' ';
    } else {
      out += c;
    }
    if (out.size() >= 500) break;
  }
  return out;
}

// The answer as libmilter's status; `at_end`: headers and quarantine can be
// applied (only at the end of the message).
sfsistat Apply(SMFICTX* ctx, const MilterSession::Answer& a, bool at_end) {
  if (a.tripped && !a.log_line.empty()) Log(a.log_line);
  if (at_end && !a.header_name.empty()) {
    smfi_addheader(ctx, const_cast<char*>(a.header_name.c_str()),
                   const_cast<char*>(a.header_value.c_str()));
  }
  switch (a.kind) {
    case MilterSession::Answer::kContinue:
      return SMFIS_CONTINUE;
    case MilterSession::Answer::kQuarantine:
      if (at_end) smfi_quarantine(ctx, const_cast<char*>(ReplyText(a.text).c_str()));
      return SMFIS_CONTINUE;
    case MilterSession::Answer::kDiscard:
      g->refused.fetch_add(1, std::memory_order_relaxed);
      return SMFIS_DISCARD;
    case MilterSession::Answer::kTempfail:
    case MilterSession::Answer::kReject: {
      g->refused.fetch_add(1, std::memory_order_relaxed);
      const bool reject = a.kind == MilterSession::Answer::kReject;
      // The reply's first digit must match the status libmilter sends.
      int code = a.smtp_code;
      if (reject && (code < 500 || code > 599)) code = 550;
      if (!reject && (code < 400 || code > 499)) code = 451;
      std::string rcode = absl::StrCat(code);
      std::string xcode = a.enhanced_status;
      if (xcode.empty() || xcode[0] != rcode[0]) xcode = reject ? "5.7.1" : "4.7.1";
      std::string text = ReplyText(a.text);
      smfi_setreply(ctx, rcode.data(), xcode.data(), text.data());
      return reject ? SMFIS_REJECT : SMFIS_TEMPFAIL;
    }
  }
  return SMFIS_CONTINUE;
}

sfsistat OnNegotiate(SMFICTX* ctx, unsigned long f0, unsigned long f1, unsigned long, unsigned long,
                     unsigned long* pf0, unsigned long* pf1, unsigned long* pf2,
                     unsigned long* pf3) {
  *pf0 = f0 & (SMFIF_ADDHDRS | SMFIF_QUARANTINE | SMFIF_SETSYMLIST);
  // No reply to each header, the end of headers and each body chunk where
  // the MTA offers it (about half the packets of a message: they only feed
  // the session), and no DATA or unknown-command packets (unused).
  *pf1 = f1 & (SMFIP_NR_HDR | SMFIP_NR_EOH | SMFIP_NR_BODY | SMFIP_NODATA | SMFIP_NOUNKNOWN);
  *pf2 = *pf3 = 0;
  Conn* c = ConnOf(ctx);
  if (c == nullptr) {
    c = new (std::nothrow) Conn(g->options.count);
    if (c == nullptr) return SMFIS_REJECT;  // libmilter: refuse this connection
    smfi_setpriv(ctx, c);
  }
  c->no_reply_header = (*pf1 & SMFIP_NR_HDR) != 0;
  c->no_reply_eoh = (*pf1 & SMFIP_NR_EOH) != 0;
  c->no_reply_body = (*pf1 & SMFIP_NR_BODY) != 0;
  if (f0 & SMFIF_SETSYMLIST) {
    smfi_setsymlist(ctx, SMFIM_CONNECT,
                    const_cast<char*>("{client_addr} {client_name} {daemon_name} {daemon_port} v"));
    smfi_setsymlist(ctx, SMFIM_ENVFROM, const_cast<char*>("{auth_authen} i"));
    smfi_setsymlist(ctx, SMFIM_EOM, const_cast<char*>("i"));
  }
  return SMFIS_CONTINUE;
}

std::string AddressText(const sockaddr* sa) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (sa == nullptr) return std::string();
  if (sa->sa_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, buf, sizeof(buf));
  } else if (sa->sa_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, buf, sizeof(buf));
  } else {
    return std::string();  // a unix socket: submitted on this host
  }
  return buf;
}

sfsistat OnConnect(SMFICTX* ctx, char* hostname, _SOCK_ADDR* addr) {
  if (ConnOf(ctx) == nullptr) {  // an MTA that did not negotiate
    auto* c = new (std::nothrow) Conn(g->options.count);
    if (c == nullptr) return SMFIS_TEMPFAIL;
    smfi_setpriv(ctx, c);
  }
  MilterSession* s = Session(ctx);
  g->connections.fetch_add(1, std::memory_order_relaxed);
  std::string ip = AddressText(addr);
  if (ip.empty()) ip = Macro(ctx, "{client_addr}");
  uint32_t port = 0;
  (void)absl::SimpleAtoi(Macro(ctx, "{daemon_port}"), &port);
  return Apply(ctx,
               s->Connect(ip, hostname != nullptr ? hostname : "", Macro(ctx, "{daemon_name}"),
                          port, absl::Now()),
               false);
}

sfsistat OnHelo(SMFICTX* ctx, char* name) {
  MilterSession* s = Session(ctx);
  if (s == nullptr) return SMFIS_CONTINUE;
  return Apply(ctx, s->Helo(name != nullptr ? name : "", absl::Now()), false);
}

sfsistat OnMail(SMFICTX* ctx, char** argv) {
  MilterSession* s = Session(ctx);
  if (s == nullptr || argv == nullptr || argv[0] == nullptr) return SMFIS_CONTINUE;
  g->messages.fetch_add(1, std::memory_order_relaxed);
  return Apply(
      ctx,
      s->Mail(argv[0], Macro(ctx, "{auth_authen}"), Macro(ctx, "i"), Macro(ctx, "v"), absl::Now()),
      false);
}

sfsistat OnRcpt(SMFICTX* ctx, char** argv) {
  MilterSession* s = Session(ctx);
  if (s == nullptr || argv == nullptr || argv[0] == nullptr) return SMFIS_CONTINUE;
  return Apply(ctx, s->Rcpt(argv[0], absl::Now()), false);
}

sfsistat OnHeader(SMFICTX* ctx, char* name, char* value) {
  Conn* c = ConnOf(ctx);
  if (c == nullptr) return SMFIS_CONTINUE;
  if (name != nullptr) c->session.Header(name, value != nullptr ? value : "");
  return c->no_reply_header ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

sfsistat OnEoh(SMFICTX* ctx) {
  Conn* c = ConnOf(ctx);
  if (c == nullptr) return SMFIS_CONTINUE;
  c->session.EndOfHeaders();
  return c->no_reply_eoh ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

sfsistat OnBody(SMFICTX* ctx, unsigned char* chunk, size_t len) {
  Conn* c = ConnOf(ctx);
  if (c == nullptr) return SMFIS_CONTINUE;
  if (chunk != nullptr) c->session.Body({reinterpret_cast<const char*>(chunk), len});
  return c->no_reply_body ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

sfsistat OnEom(SMFICTX* ctx) {
  MilterSession* s = Session(ctx);
  if (s == nullptr) return SMFIS_CONTINUE;
  return Apply(ctx, s->End(Macro(ctx, "i"), absl::Now()), true);
}

sfsistat OnAbort(SMFICTX* ctx) {
  MilterSession* s = Session(ctx);
  if (s != nullptr) s->Abort(absl::Now());
  return SMFIS_CONTINUE;
}

sfsistat OnClose(SMFICTX* ctx) {
  Conn* c = ConnOf(ctx);
  if (c != nullptr) {
    c->session.Close(absl::Now());
    delete c;
    smfi_setpriv(ctx, nullptr);
  }
  return SMFIS_CONTINUE;
}

}  // namespace

absl::StatusOr<std::unique_ptr<MilterServer>> MilterServer::Create(PolicyEngine* engine,
                                                                   Options options) {
  if (g != nullptr) return absl::FailedPreconditionError("one milter per process");
  if (options.listen.empty()) return absl::InvalidArgumentError("no milter socket");
  g = new Global;
  g->engine = engine;
  g->options = std::move(options);
  smfiDesc desc{};
  desc.xxfi_name = const_cast<char*>("sluice");
  desc.xxfi_version = SMFI_VERSION;
  desc.xxfi_flags = SMFIF_ADDHDRS | SMFIF_QUARANTINE | SMFIF_SETSYMLIST;
  desc.xxfi_connect = OnConnect;
  desc.xxfi_helo = OnHelo;
  desc.xxfi_envfrom = OnMail;
  desc.xxfi_envrcpt = OnRcpt;
  desc.xxfi_header = OnHeader;
  desc.xxfi_eoh = OnEoh;
  desc.xxfi_body = OnBody;
  desc.xxfi_eom = OnEom;
  desc.xxfi_abort = OnAbort;
  desc.xxfi_close = OnClose;
  desc.xxfi_negotiate = OnNegotiate;
  auto fail = [](const std::string& what) {
    delete g;
    g = nullptr;
    return absl::InvalidArgumentError(what);
  };
  std::string conn = g->options.listen;
  if (conn.rfind("unix:", 0) == 0) unlink(conn.c_str() + 5);  // a stale socket
  if (smfi_setconn(conn.data()) != MI_SUCCESS) return fail("bad milter socket " + conn);
  smfi_settimeout(g->options.timeout_seconds);
  if (smfi_register(desc) != MI_SUCCESS) return fail("smfi_register failed");
  if (smfi_opensocket(true) != MI_SUCCESS) {
    return fail("cannot listen on milter socket " + conn);
  }
  return std::unique_ptr<MilterServer>(new MilterServer);
}

MilterServer::~MilterServer() {
  delete g;
  g = nullptr;
}

int MilterServer::Run() { return smfi_main(); }

void MilterServer::Stop() { smfi_stop(); }

MilterServer::Stats MilterServer::stats() const {
  Stats s;
  s.connections = g->connections.load(std::memory_order_relaxed);
  s.messages = g->messages.load(std::memory_order_relaxed);
  s.refused = g->refused.load(std::memory_order_relaxed);
  return s;
}

std::string MilterServer::MetricsText() const {
  const Stats s = stats();
  return absl::StrCat(
      "# HELP sluice_milter_connections_total Milter connections from the MTA.\n"
      "# TYPE sluice_milter_connections_total counter\n"
      "sluice_milter_connections_total ",
      s.connections,
      "\n# HELP sluice_milter_messages_total Messages (MAIL commands) the milter saw.\n"
      "# TYPE sluice_milter_messages_total counter\n"
      "sluice_milter_messages_total ",
      s.messages,
      "\n# HELP sluice_milter_refused_total Recipients or messages the milter refused.\n"
      "# TYPE sluice_milter_refused_total counter\n"
      "sluice_milter_refused_total ",
      s.refused, "\n");
}

}  // namespace sluice
