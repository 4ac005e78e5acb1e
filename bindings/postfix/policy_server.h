// PolicyServer: the Postfix policy delegation service on libevent.
//
// One event loop per worker thread (default: one per core); every worker
// listens on every socket (TCP "inet:HOST:PORT" or "unix:PATH") and serves
// its connections to the end: persistent connections, many requests each,
// pipelined or not. Per connection the input is bounded (PolicyLimits):
// a line or request over the limit, a request that does not parse, binary
// garbage, or a client idle past idle_timeout gets a logged error and a
// closed connection. Connections beyond max_connections are closed at
// accept (logged at most once a second). A main loop serves the admin
// socket (mode 0600), the Prometheus endpoint (loopback HTTP, /metrics),
// SIGHUP (reload) / SIGTERM / SIGINT (stop) and periodic maintenance.
//
// Thread safety: Create, Run and Stop may be called from any thread; Stop
// is also safe while Run runs in another thread.
#ifndef SLUICE_BINDINGS_POSTFIX_POLICY_SERVER_H_
#define SLUICE_BINDINGS_POSTFIX_POLICY_SERVER_H_

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
    PolicyLimits limits;
    std::string admin_socket;  // unix socket path; empty: none
    std::string metrics;       // "127.0.0.1:PORT"; empty: none
    std::string config_path;   // reread on SIGHUP / reload; empty: embedded default
    bool handle_signals = true;
    absl::Duration maintain_every = absl::Seconds(30);
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
