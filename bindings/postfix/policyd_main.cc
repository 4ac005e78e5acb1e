// sluice-policyd: the Postfix policy delegation service, and sluice-milter
// (the same daemon built under that name): the milter for Postfix and
// Sendmail. One daemon may serve both doors on one engine and one table.
//
//   sluice-policyd [--config FILE] --listen inet:127.0.0.1:10040 [--listen unix:PATH]
//                  [--milter inet:10041@127.0.0.1|unix:PATH]
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
//
// --milter: also (sluice-milter: only, unless --listen is given) serve the
// milter protocol (bindings/milter/milter_server.h). In main.cf:
//   smtpd_milters = inet:127.0.0.1:10041
//   non_smtpd_milters = inet:127.0.0.1:10041
// With both doors on one Postfix the milter counts (it sees every stage,
// headers, body and sendmail(1) mail) and the policy service answers only
// what counts nothing (blocks, lists, sender match): a message is counted
// once.
#include <sys/resource.h>
#include <syslog.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "bindings/engine/door_coverage.h"
#include "bindings/engine/policy_engine.h"
#include "bindings/engine/version.h"
#include "bindings/logs/log_watch.h"
#include "bindings/milter/milter_server.h"
#include "bindings/notify/notifier.h"
#include "bindings/postfix/policy_server.h"
#include "ratelimit/config.h"
#include "ratelimit/limiter.h"
#include "ratelimit/safe_file.h"
#include "reputation/abuse/abuse_guard.h"
#include "reputation/dns/dns_cache.h"
#include "reputation/dns/dnsbl.h"
#include "reputation/score_board.h"

namespace {

const char* g_name = "sluice-policyd";  // or sluice-milter (argv[0])

// The usage text (what --help prints; the man pages document each option:
// tests/cli/manners_test.sh checks both ways).
void PrintUsage(FILE* out) {
  std::fprintf(out,
               "usage: %s [--config FILE] --listen inet:HOST:PORT|unix:PATH ...\n"
               "       [--milter inet:PORT@HOST|unix:PATH]\n"
               "       [--threads N] [--table FILE] [--abuse-table FILE] [--admin-socket PATH]\n"
               "       [--metrics HOST:PORT] [--idle-timeout SECONDS] [--max-connections N]\n"
               "       [--syslog] [--pid-file FILE] [--maintain-every SECONDS]\n"
               "       [--socket-mode OCTAL] [--socket-group GROUP]\n"
               "       [--bad-request-action \"ACTION TEXT\"]\n"
               "       [--follow-log FILE|-] [--follow-log-state FILE]\n"
               "       %s --help | --version\n",
               g_name, g_name);
}

// A usage error: why, the usage, exit status 2.
int Usage(const char* why) {
  std::fprintf(stderr, "%s: %s\n", g_name, why);
  PrintUsage(stderr);
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
  std::fprintf(stderr, "%s: %s\n", g_name, std::string(s.message()).c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  const char* slash = std::strrchr(argv[0], '/');
  if (std::strstr(slash != nullptr ? slash + 1 : argv[0], "milter") != nullptr) {
    g_name = "sluice-milter";
  }
  sluice::PolicyServer::Options so;
  sluice::MilterServer::Options mo;
  sluice::PolicyEngine::Options eo;
  eo.prefault_tables = true;        // a daemon: pay the tables' page faults at start
  eo.save_names = true;             // and keep `top`'s names across restarts
  sluice::LogFollower::Options lo;  // --follow-log: the MTA's log into the detectors
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
    if (a == "-h" || a == "--help") {
      PrintUsage(stdout);
      return 0;
    }
    if (a == "--version") {
      std::printf("%s %s\n", g_name, sluice::kVersionString);
      return 0;
    }
    if ((v = value()) == nullptr) return Usage(("missing value for " + a).c_str());
    if (a == "--config") {
      so.config_path = v;
    } else if (a == "--listen") {
      so.listen.push_back(v);
    } else if (a == "--milter") {
      mo.listen = v;
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
    } else if (a == "--follow-log") {
      lo.path = v;
    } else if (a == "--follow-log-state") {
      lo.state_path = v;
    } else {
      return Usage(("bad option " + a + " " + v).c_str());
    }
  }
  if (use_syslog) {
    openlog(g_name, LOG_PID, LOG_MAIL);
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
    std::fprintf(stderr, "%s: %s\n", g_name, std::string(config.status().message()).c_str());
    return 1;
  }
  // Rules this door cannot feed never trip: say so at start.
  sluice::DoorSees door = mo.listen.empty() ? sluice::kPostfixPolicyService : sluice::kMilter;
  if (!lo.path.empty()) door = sluice::WithLogFollower(door);
  for (const std::string& w : sluice::UnfedRules(*config, door)) {
    if (so.log) {
      so.log(sluice::PolicyServer::kWarning, w);
    } else {
      std::fprintf(stderr, "%s: %s\n", g_name, w.c_str());
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
    std::fprintf(stderr, "%s: %s\n", g_name, std::string(engine.status().message()).c_str());
    return 1;
  }
  // The milter door: both doors count once (see above).
  std::unique_ptr<sluice::MilterServer> milter;
  if (!mo.listen.empty()) {
    so.no_listeners = true;
    so.count = false;
    auto log = so.log ? so.log : sluice::PolicyServer::DefaultLog;
    mo.log = [log](const std::string& line) { log(sluice::PolicyServer::kInfo, line); };
    auto m = sluice::MilterServer::Create(engine->get(), mo);
    if (!m.ok()) return Fail(m.status());
    milter = std::move(*m);
  } else if (std::strcmp(g_name, "sluice-milter") == 0) {
    return Usage("--milter is needed");
  }
  std::unique_ptr<sluice::LogWatch> log_watch;
  if (!lo.path.empty()) {
    auto w = sluice::LogWatch::Start(engine->get(), lo);
    if (!w.ok()) return Fail(w.status());
    log_watch = std::move(*w);
  }
  // Notifications (config notify): an events file, a hook, mail digests.
  std::unique_ptr<sluice::Notifier> notifier;
  if (sluice::Notifier::Wanted(*config)) {
    sluice::Notifier::Options no = sluice::Notifier::FromConfig(*config);
    // Contacts as the config had them at start (a reload keeps them).
    no.contact = [c = *config](const sluice::Notice& n) {
      return n.source == "limit" ? sluice::ContactFor(c, n.level, n.entity) : std::string();
    };
    auto log = so.log ? so.log : sluice::PolicyServer::DefaultLog;
    no.log = [log](const std::string& line) { log(sluice::PolicyServer::kWarning, line); };
    auto n = sluice::Notifier::Create(std::move(no));
    if (!n.ok()) return Fail(n.status());
    notifier = std::move(*n);
    (*engine)->AddNoticeSink([p = notifier.get()](const sluice::Notice& x) { p->Post(x); });
  }
  so.extra_metrics = [door = milter.get(), watch = log_watch.get(), notes = notifier.get()] {
    std::string text;
    if (door != nullptr) text += door->MetricsText();
    if (watch != nullptr) text += watch->MetricsText();
    if (notes != nullptr) text += notes->MetricsText();
    return text;
  };
  auto server = sluice::PolicyServer::Create(engine->get(), so);
  if (!server.ok()) return Fail(server.status());
  // libmilter serves on its own threads; this thread keeps the signals
  // (SIGHUP reload, SIGTERM/SIGINT stop: they go to the main thread, which
  // does not block them) and the admin socket.
  std::thread milter_thread;
  if (milter != nullptr) milter_thread = std::thread([&milter] { milter->Run(); });
  if (!pid_file.empty()) {
    // A fresh file renamed into place: a symlink planted there is
    // replaced, never followed.
    auto s = sluice::WriteFileAtomically(pid_file, absl::StrCat(getpid(), "\n"), 0644);
    if (!s.ok()) return Fail(s);
  }
  (*server)->Run();
  if (milter != nullptr) {
    milter->Stop();
    milter_thread.join();
  }
  log_watch.reset();  // saves where the log was read to
  notifier.reset();   // sends the digests still pending
  server->reset();
  if (!pid_file.empty()) unlink(pid_file.c_str());
  return 0;
}
