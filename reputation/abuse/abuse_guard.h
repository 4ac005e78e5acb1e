// AbuseGuard: the abuse detectors as the config's `abuse` section sets them
// up, each with its threshold, window and response (action, block, shadow,
// SMTP reply), emitting deduplicated events like the limiter.
//
//   session     Connect / Disconnect (connections per IP: simultaneous and
//               rate), AuthFailed (brute force per IP and per user, then a
//               block), AuthSucceeded (distinct IPs and networks per user,
//               new network), UnknownRecipient (harvesting, then a block),
//               CheckBlocked
//   envelope    MailFrom: the sender must belong to the SASL login
//   content     Message: same-size, near-duplicate and campaign bursts of a
//               sender's fingerprints (size only when the body is unseen)
//
// A detector in shadow mode or with action NOTIFY counts and reports but
// never refuses and never blocks. A Finding carries the response of the
// first detector that tripped; every trip is an event, at most one per
// detector, key and window.
//
// Thread safety: all methods are thread-safe. The findings' text pointers
// live as long as the AbuseGuard.
#ifndef SLUICE_REPUTATION_ABUSE_ABUSE_GUARD_H_
#define SLUICE_REPUTATION_ABUSE_ABUSE_GUARD_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "ratelimit/config.pb.h"
#include "ratelimit/event_sinks.h"
#include "ratelimit/limiter.h"
#include "reputation/abuse/burst_detector.h"
#include "reputation/abuse/detector.h"
#include "reputation/abuse/sender_policy.h"
#include "reputation/abuse/session_signals.h"
#include "reputation/content/fingerprint.h"

namespace sluice {

class AbuseGuard {
 public:
  using Detector = ::sluice::Detector;  // reputation/abuse/detector.h
  static constexpr int kNumDetectors = ::sluice::kNumDetectors;
  // The detector's config name ("same_size", ...; "blocked", "none").
  static absl::string_view DetectorName(Detector d);

  struct Finding {
    Detector detector = Detector::kNone;
    Action action = Action::kAccept;  // the detector's action when it tripped
    bool shadow = false;              // tripped in shadow mode: mail passes
    uint64_t count = 0;               // the count that tripped
    uint64_t limit = 0;
    absl::Duration retry_after = absl::ZeroDuration();  // block left
    int smtp_code = 250;
    const char* enhanced_status = "2.0.0";
    const char* text = "";
    bool tripped() const { return detector != Detector::kNone; }
    // True if the mail or session may go on.
    bool admitted() const {
      return detector == Detector::kNone || shadow || action == Action::kAccept ||
             action == Action::kNotify;
    }
  };

  struct Event {
    absl::Time time;
    Detector detector;
    std::string key;  // client IP, SASL user or sender
    uint64_t count;
    uint64_t limit;
    Action action;
    bool shadow;
  };

  // Builds the detectors from `config.abuse()` (defaults where absent);
  // `prefault` touches their tables at once (CounterTable::Options).
  // REQUIRES: config passed ValidateConfig.
  // prefault: touch the tables' pages now (daemons); huge_pages: see
  // CounterTable::Options (off for processes that live for one message).
  static absl::StatusOr<std::unique_ptr<AbuseGuard>> Create(const config::Config& config,
                                                            absl::Time now, bool prefault = false,
                                                            bool huge_pages = true);

  Finding Connect(absl::string_view ip, absl::Time now) noexcept;
  void Disconnect(absl::string_view ip, absl::Time now) noexcept;
  Finding AuthFailed(absl::string_view ip, absl::string_view user, absl::Time now) noexcept;
  Finding AuthSucceeded(absl::string_view ip, absl::string_view user, absl::Time now);
  Finding UnknownRecipient(absl::string_view ip, absl::Time now) noexcept;
  Finding CheckBlocked(absl::string_view ip, absl::string_view user, absl::Time now) noexcept;
  Finding MailFrom(absl::string_view sasl_user, absl::string_view mail_from, absl::Time now);
  // Counts a message of `sender` (its fingerprint, or only size and
  // size_bucket with tokens = 0 when the body is not seen).
  Finding Message(absl::string_view sender, const Fingerprint& fp, absl::Time now) noexcept;
  // Lifts a block of an IP or user.
  void Unblock(absl::string_view ip_or_user, absl::Time now) noexcept;

  void AddEventSink(std::function<void(const Event&)> sink);

 private:
  struct Response {
    bool off = false;
    Action action = Action::kDefer;
    bool shadow = false;
    int64_t window_s = 3600;  // for event deduplication
    int smtp_code = 450;
    std::string enhanced_status;
    std::string text;
  };
  AbuseGuard() = default;
  Finding Trip(Detector d, absl::string_view key, uint64_t count, uint64_t limit,
               absl::Duration retry_after, absl::Time now);
  Finding FromSignal(const SessionSignals::Signal& v, absl::string_view ip, absl::string_view user,
                     absl::Time now);

  Response responses_[kNumDetectors];
  std::unique_ptr<SessionSignals> signals_;
  std::unique_ptr<BurstDetector> bursts_;
  BurstDetector::Options burst_options_;
  std::unique_ptr<SenderPolicy> senders_;
  EventSinks<Event> sinks_;
};

}  // namespace sluice

#endif  // SLUICE_REPUTATION_ABUSE_ABUSE_GUARD_H_
