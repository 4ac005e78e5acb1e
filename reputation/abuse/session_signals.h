// SessionSignals: abuse signs seen in SMTP sessions, per client address
// and per authenticated user.
//
//   auth brute force   failed AUTH per client IP and per username in a
//                      window -> the IP (or the username) is blocked
//   harvesting         RCPT to unknown users per client IP in a window ->
//                      the IP is blocked
//   compromised user   distinct client IPs and distinct networks (/24 for
//                      IPv4, /48 for IPv6) per SASL user over the last one
//                      to two windows (HyperLogLog, ~6.5% error at the
//                      default precision 8), and logins from a network the
//                      user was never seen on (the last 16 remembered)
//   connections        simultaneous connections and connection rate per IP
//
// Counters and blocks live in a CounterTable (shared by processes when it
// is a file; blocks are "blocked until" times that expire by themselves).
// Per-user login sketches are per process, bounded by `max_users`.
//
// Thread safety: all methods are thread-safe.
#ifndef SLUICE_REPUTATION_ABUSE_SESSION_SIGNALS_H_
#define SLUICE_REPUTATION_ABUSE_SESSION_SIGNALS_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "ratelimit/counter_table.h"
#include "reputation/abuse/detector.h"
#include "reputation/abuse/hyperloglog.h"

namespace sluice {

class SessionSignals {
 public:
  struct Options {
    uint64_t auth_failures_per_ip = 10;
    uint64_t auth_failures_per_user = 20;
    absl::Duration auth_window = absl::Minutes(15);  // per IP
    absl::Duration auth_block = absl::Hours(1);      // of the IP
    absl::Duration auth_user_window = absl::Minutes(15);
    absl::Duration auth_user_block = absl::Hours(1);
    uint64_t unknown_recipients_per_ip = 20;
    absl::Duration unknown_recipient_window = absl::Minutes(10);
    absl::Duration harvest_block = absl::Hours(1);
    uint64_t max_ips_per_user = 10;
    uint64_t max_networks_per_user = 4;
    absl::Duration login_window = absl::Hours(1);
    int hll_precision = 8;
    size_t max_users = 100000;
    uint64_t max_concurrent_per_ip = 20;
    uint64_t max_connections_per_ip = 120;
    absl::Duration connection_window = absl::Minutes(1);
    CounterTable::Options table;
  };

  // What a session event found: a detector that tripped (kNone if none),
  // with its count and limit, and the time left of a block.
  struct Signal {
    Detector detector = Detector::kNone;
    uint64_t count = 0;  // the count that tripped (or was checked)
    uint64_t limit = 0;
    absl::Duration retry_after = absl::ZeroDuration();  // for blocks
    bool reject() const { return detector != Detector::kNone && detector != Detector::kNewNetwork; }
  };

  static absl::StatusOr<std::unique_ptr<SessionSignals>> Create(const Options& o, absl::Time now);

  // A client connects: refused while blocked, over the concurrency limit
  // or over the connection rate. Admitted connections must be followed by
  // exactly one Disconnect.
  Signal Connect(absl::string_view ip, absl::Time now) noexcept;
  void Disconnect(absl::string_view ip, absl::Time now) noexcept;
  // Reports a failed AUTH; may block the IP or the username.
  Signal AuthFailed(absl::string_view ip, absl::string_view user, absl::Time now) noexcept;
  // Reports a successful AUTH; returns compromised-account signs (or a
  // block of the user or IP, which also refuses the login).
  Signal AuthSucceeded(absl::string_view ip, absl::string_view user, absl::Time now);
  // Reports a RCPT to an unknown user; may block the IP.
  Signal UnknownRecipient(absl::string_view ip, absl::Time now) noexcept;
  // Returns kBlocked with the time left if the IP (or user) is blocked.
  Signal CheckBlocked(absl::string_view ip, absl::string_view user, absl::Time now) noexcept;
  // Lifts a block (manual unblock).
  void Unblock(absl::string_view ip_or_user, absl::Time now) noexcept;

  // Returns the /24 (IPv4) or /48 (IPv6) network of a textual address, or
  // the text itself if it does not parse.
  static std::string Network(absl::string_view ip);

 private:
  SessionSignals() = default;
  uint64_t Count(uint64_t key, int64_t window_s, int64_t since_ms, int64_t delta) noexcept;
  void Block(uint64_t key, absl::Duration d, absl::Time now) noexcept;
  absl::Duration BlockedFor(uint64_t key, absl::Time now) noexcept;

  struct User {
    int64_t window = -1;
    HyperLogLog ips[2], nets[2];  // current and previous window
    uint64_t known_nets[16] = {};
    int next_known = 0;
    explicit User(int p)
        : ips{HyperLogLog(p), HyperLogLog(p)}, nets{HyperLogLog(p), HyperLogLog(p)} {}
  };

  Options options_;
  std::unique_ptr<CounterTable> table_;
  std::mutex users_mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<User>> users_;
};

}  // namespace sluice

#endif  // SLUICE_REPUTATION_ABUSE_SESSION_SIGNALS_H_
