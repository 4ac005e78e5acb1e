// sluice-policyd: the Postfix policy delegation service.
//
//   sluice-policyd [--config FILE] --listen inet:127.0.0.1:10040 [--listen unix:PATH]
//                  [--threads N] [--table FILE] [--abuse-table FILE]
//                  [--admin-socket PATH] [--metrics 127.0.0.1:PORT]
//                  [--idle-timeout SECONDS] [--max-connections N] [--syslog]
//                  [--pid-file FILE] [--maintain-every SECONDS]
//                  [--socket-mode OCTAL] [--socket-group GROUP]
//                  [--bad-request-action "ACTION TEXT"]
//
// A request that is too long or does not parse is answered
// --bad-request-action (default "DEFER_IF_PERMIT sluice: bad policy
// request") with the reason in parentheses; the connection goes on.
//
// One instance per counter table: a second one on the same table (or the
// same unix socket) refuses to start and names the first one's pid
// (TABLE.lock, PATH.lock). Unix sockets get --socket-mode (default 0660)
// and --socket-group at creation: Postfix's smtpd connects as user
// postfix, so give it the group (--socket-group postfix) or use inet:.
// The soft limit on open files is raised to the hard one at start, and
// --max-connections is kept below it.
//
// --maintain-every: how often stale transactions are ended and expired
// counters swept (default 30 s).
// Without --config it runs the embedded default config. SIGHUP rereads the
// config (a bad one is refused and logged; the running one stays);
// SIGTERM/SIGINT stop it. In main.cf:
//   smtpd_recipient_restrictions = ..., check_policy_service inet:127.0.0.1:10040, ...
//   smtpd_end_of_data_restrictions = check_policy_service inet:127.0.0.1:10040
#include <sys/resource.h>
#include <syslog.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "bindings/engine/door_coverage.h"
#include "bindings/engine/policy_engine.h"
#include "bindings/postfix/policy_server.h"
#include "ratelimit/config.h"
#include "ratelimit/limiter.h"
#include "ratelimit/safe_file.h"
#include "reputation/abuse/abuse_guard.h"
#include "reputation/dns/dns_cache.h"
#include "reputation/dns/dnsbl.h"
#include "reputation/score_board.h"

namespace {

int Usage(const char* why) {
  std::fprintf(stderr,
               "sluice-policyd: %s\n"
               "usage: sluice-policyd [--config FILE] --listen inet:HOST:PORT|unix:PATH ...\n"
               "       [--threads N] [--table FILE] [--abuse-table FILE] [--admin-socket PATH]\n"
               "       [--metrics HOST:PORT] [--idle-timeout SECONDS] [--max-connections N]\n"
               "       [--syslog] [--pid-file FILE] [--maintain-every SECONDS]\n"
               "       [--socket-mode OCTAL] [--socket-group GROUP]\n"
               "       [--bad-request-action \"ACTION TEXT\"]\n",
               why);
  return 2;
}

bool ParseMode(const char* text, mode_t* out) {
  char* end = nullptr;
  const long m = std::strtol(text, &end, 8);
  if (end == text || *end != 0 || m < 0 || m > 0777) return false;
  *out = static_cast<mode_t>(m);
  return true;
}

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "sluice-policyd: %s\n", std::string(s.message()).c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  sluice::PolicyServer::Options so;
  sluice::PolicyEngine::Options eo;
  eo.prefault_tables = true;  // a daemon: pay the tables' page faults at start
  eo.save_names = true;       // and keep `top`'s names across restarts
  std::string pid_file;
  bool use_syslog = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    int n = 0;
    if (a == "--syslog") {
      use_syslog = true;
      continue;
    }
    if (a == "-h" || a == "--help") return Usage("help");
    if ((v = value()) == nullptr) return Usage(("missing value for " + a).c_str());
    if (a == "--config") {
      so.config_path = v;
    } else if (a == "--listen") {
      so.listen.push_back(v);
    } else if (a == "--threads" && absl::SimpleAtoi(v, &n)) {
      so.threads = n;
    } else if (a == "--table") {
      eo.table_path = v;
    } else if (a == "--abuse-table") {
      eo.abuse_table_path = v;
    } else if (a == "--admin-socket") {
      so.admin_socket = v;
    } else if (a == "--metrics") {
      so.metrics = v;
    } else if (a == "--idle-timeout" && absl::SimpleAtoi(v, &n) && n > 0) {
      so.idle_timeout = absl::Seconds(n);
    } else if (a == "--max-connections" && absl::SimpleAtoi(v, &n) && n > 0) {
      so.max_connections = n;
    } else if (a == "--pid-file") {
      pid_file = v;
    } else if (a == "--maintain-every" && absl::SimpleAtoi(v, &n) && n > 0) {
      so.maintain_every = absl::Seconds(n);
    } else if (a == "--socket-mode" && ParseMode(v, &so.socket_mode)) {
    } else if (a == "--socket-group") {
      so.socket_group = v;
    } else if (a == "--bad-request-action" && *v != 0 && std::strchr(v, '\n') == nullptr) {
      so.bad_request_action = v;
    } else {
      return Usage(("bad option " + a + " " + v).c_str());
    }
  }
  if (use_syslog) {
    openlog("sluice-policyd", LOG_PID, LOG_MAIL);
    so.log = [](sluice::PolicyServer::LogPriority p, const std::string& line) {
      int pri = p == sluice::PolicyServer::kError     ? LOG_ERR
                : p == sluice::PolicyServer::kWarning ? LOG_WARNING
                                                      : LOG_INFO;
      syslog(pri, "%s", line.c_str());
    };
  }
  auto config = so.config_path.empty()
                    ? sluice::ParseConfigText(sluice::DefaultConfigText(), "<embedded default>")
                    : sluice::LoadConfigFile(so.config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "sluice-policyd: %s\n", std::string(config.status().message()).c_str());
    return 1;
  }
  // Rules this door cannot feed never trip: say so at start.
  for (const std::string& w : sluice::UnfedRules(*config, sluice::kPostfixPolicyService)) {
    if (so.log) {
      so.log(sluice::PolicyServer::kWarning, w);
    } else {
      std::fprintf(stderr, "sluice-policyd: %s\n", w.c_str());
    }
  }
  // One daemon per counter table: a second one is refused, never shares.
  const std::string table =
      !eo.table_path.empty() ? eo.table_path : std::string(config->table().path());
  if (!table.empty()) {
    auto lock = sluice::LockFile(table + ".lock");  // held until exit
    if (!lock.ok()) return Fail(lock.status());
  }
  // File descriptors: as many as the hard limit allows, and connections
  // kept below them (the rest: listeners, DNS, tables, logs).
  rlimit nofile{};
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0) {
    if (nofile.rlim_cur < nofile.rlim_max) {
      nofile.rlim_cur = nofile.rlim_max;
      setrlimit(RLIMIT_NOFILE, &nofile);
      getrlimit(RLIMIT_NOFILE, &nofile);
    }
    if (nofile.rlim_cur != RLIM_INFINITY) {
      const int64_t room = static_cast<int64_t>(nofile.rlim_cur) - 64;
      so.max_connections =
          static_cast<int>(std::max<int64_t>(16, std::min<int64_t>(so.max_connections, room)));
    }
  }
  auto engine = sluice::PolicyEngine::Create(*config, absl::Now(), eo);
  if (!engine.ok()) {
    std::fprintf(stderr, "sluice-policyd: %s\n", std::string(engine.status().message()).c_str());
    return 1;
  }
  auto server = sluice::PolicyServer::Create(engine->get(), so);
  if (!server.ok()) {
    std::fprintf(stderr, "sluice-policyd: %s\n", std::string(server.status().message()).c_str());
    return 1;
  }
  if (!pid_file.empty()) {
    // A fresh file renamed into place: a symlink planted there is
    // replaced, never followed.
    auto s = sluice::WriteFileAtomically(pid_file, absl::StrCat(getpid(), "\n"), 0644);
    if (!s.ok()) return Fail(s);
  }
  (*server)->Run();
  server->reset();
  if (!pid_file.empty()) unlink(pid_file.c_str());
  return 0;
}
