// PolicyServer: the Postfix policy delegation service on libevent.
//
// One event loop per worker thread (default: one per core); every worker
// listens on every socket (TCP "inet:HOST:PORT" or "unix:PATH") and serves
// its connections to the end: persistent connections, many requests each,
// pipelined or not. Per connection the input is bounded (PolicyLimits):
// a line or request over the limit, a request that does not parse, or
// binary garbage is logged and answered bad_request_action (default
// DEFER_IF_PERMIT with the reason), and the connection goes on; a client
// idle past idle_timeout is closed. A request whose DNS lookups are not
// answered yet waits beside the loop (the worker serves its other
// connections) at most the engine's DNS budget. Connections beyond
// max_connections are closed at accept (logged at most once a second);
// when accept() fails for want of descriptors, accepting pauses for
// 100 ms (logged at most every 10 s) instead of spinning. /metrics is a
// minimal HTTP/1.0 responder: one GET per connection, at most 16 at once,
// an 8 KiB request head, 10 s per read or write. A main loop serves the admin
// socket (mode 0600), the Prometheus endpoint (loopback HTTP, /metrics),
// SIGHUP (reload) / SIGTERM / SIGINT (stop) and periodic maintenance.
//
// Thread safety: Create, Run and Stop may be called from any thread; Stop
// is also safe while Run runs in another thread.
#ifndef SLUICE_BINDINGS_POSTFIX_POLICY_SERVER_H_
#define SLUICE_BINDINGS_POSTFIX_POLICY_SERVER_H_

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "bindings/engine/policy_engine.h"
#include "bindings/postfix/policy_protocol.h"

namespace sluice {

class PolicyServer {
 public:
  enum LogPriority { kInfo, kWarning, kError };
  struct Options {
    std::vector<std::string> listen;  // "inet:127.0.0.1:10040", "unix:/run/sluice.sock"
    int threads = 0;                  // 0: one per core
    absl::Duration idle_timeout = absl::Seconds(330);  // Postfix keeps it 300 s
    int max_connections = 4096;
    // Unix policy sockets: their mode (set at creation, not by a chmod
    // after it) and group (a name; empty: the process's). Postfix's smtpd
    // connects as user postfix: give it the group (e.g. "postfix").
    mode_t socket_mode = 0660;
    std::string socket_group;
    // The answer to a request that is too long or does not parse (the
    // reason is added in parentheses); the connection stays open.
    // DEFER_IF_PERMIT: Postfix defers unless a later restriction rejects.
    std::string bad_request_action = "DEFER_IF_PERMIT sluice: bad policy request";
    PolicyLimits limits;
    std::string admin_socket;  // unix socket path; empty: none
    std::string metrics;       // "127.0.0.1:PORT"; empty: none
    std::string config_path;   // reread on SIGHUP / reload; empty: embedded default
    bool handle_signals = true;
    // No policy socket (the daemon serves another door, the milter): only
    // the admin socket, metrics, signals and maintenance.
    bool no_listeners = false;
    // False: another door in this daemon (the milter) counts the messages;
    // policy requests are judged on what counts nothing (SmtpEvent::count).
    bool count = true;
    absl::Duration maintain_every = absl::Seconds(30);
    // More Prometheus lines for /metrics and the admin socket's `metrics`
    // (another door in this daemon: the milter). Called on the main loop.
    std::function<std::string()> extra_metrics;
    // Log sink; default: stderr.
    std::function<void(LogPriority, const std::string&)> log;
  };

  // Binds every socket (so the ports are known before Run). The engine
  // must outlive the server.
  static absl::StatusOr<std::unique_ptr<PolicyServer>> Create(PolicyEngine* engine,
                                                              Options options);
  ~PolicyServer();

  // The bound TCP port of listen[i] (useful with port 0).
  int port(size_t i) const;
  int metrics_port() const;

  // The log line writer used when Options::log is empty: stderr, in the
  // style of mail.log ("Dec  6 11:25:24 sluice-policyd[42]: ..."). Thread-safe.
  static void DefaultLog(LogPriority p, const std::string& line);

  // Serves until Stop() or SIGTERM/SIGINT.
  void Run();
  void Stop();
  // Rereads config_path into the engine; on error the running config stays.
  absl::Status Reload();
  // Prometheus text format.
  std::string MetricsText() const;

  struct Impl;

 private:
  PolicyServer() = default;
  bool engine_has_lists() const;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice

#endif  // SLUICE_BINDINGS_POSTFIX_POLICY_SERVER_H_
