// MilterServer: sluice as a milter (libmilter), for Postfix (smtpd_milters
// for SMTP, non_smtpd_milters for sendmail(1): PHP's mail(), cron) and
// Sendmail (INPUT_MAIL_FILTER). One MilterSession per connection, on
// libmilter's thread per connection, all on one engine.
//
// Each stage's answer becomes libmilter's: a refusal is a reply set with
// smfi_setreply and SMFIS_TEMPFAIL/SMFIS_REJECT (at RCPT it refuses that
// recipient only), DISCARD is SMFIS_DISCARD, HOLD is smfi_quarantine at the
// end of the message, a shadow rule adds its header (smfi_addheader). The
// macros it needs are asked for in negotiation: {client_addr}
// {client_name} {daemon_name} {daemon_port} v at connect, {auth_authen} i
// at MAIL, i at the end. Every stage that tripped is logged (mail.log
// style, with the queue id at the end of the message).
//
// libmilter allows one milter per process; the process's signals are not
// libmilter's: Run's caller (the daemon's main loop) handles them and calls
// Stop.
//
// Thread safety: Create, Run and Stop may be called from any thread; one
// MilterServer per process.
#ifndef SLUICE_BINDINGS_MILTER_MILTER_SERVER_H_
#define SLUICE_BINDINGS_MILTER_MILTER_SERVER_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "bindings/engine/policy_engine.h"

namespace sluice {

class MilterServer {
 public:
  struct Options {
    // libmilter's connection spec: "inet:PORT@127.0.0.1",
    // "inet6:PORT@::1", "unix:/run/sluice/milter.sock".
    std::string listen;
    // Another door (the policy service in the same daemon) counts; see
    // MilterSession::Options::count.
    bool count = true;
    int timeout_seconds = 300;                    // libmilter's I/O timeout with the MTA
    std::function<void(const std::string&)> log;  // default: stderr
  };

  // Registers the milter and opens its socket. The engine must outlive
  // the server.
  static absl::StatusOr<std::unique_ptr<MilterServer>> Create(PolicyEngine* engine,
                                                              Options options);
  ~MilterServer();

  // Serves until Stop (libmilter's smfi_main). Returns its status.
  int Run();
  // Makes Run return (connections in progress are finished by libmilter).
  void Stop();

  // Counters for metrics (relaxed reads).
  struct Stats {
    uint64_t connections = 0;
    uint64_t messages = 0;
    uint64_t refused = 0;
  };
  Stats stats() const;
  // The counters as Prometheus text (sluice_milter_*_total).
  std::string MetricsText() const;

 private:
  MilterServer() = default;
};

}  // namespace sluice

#endif  // SLUICE_BINDINGS_MILTER_MILTER_SERVER_H_
