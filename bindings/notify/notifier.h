// Notifier: what a trip sets off besides the log line (the config's
// `notify` section): a JSON line in an events file, an exec hook given the
// notice as JSON on its standard input, and e-mail through the local
// sendmail(1) to the administrators and to the tripping entity's contact
// (a subscription's owner), one digest per recipient per period so that a
// burst of trips is one message.
//
// Nothing here delays a request: Post (called on the thread that
// tripped) only queues the notice (bounded: the oldest are dropped and
// counted past max_queue); a thread of its own writes the file, starts
// and reaps the hooks and the mail command (each killed after its
// timeout; at most max_exec hooks at once, more dropped and counted), and
// logs what fails.
//
// Thread safety: Post, Flush and stats are thread-safe.
#ifndef SLUICE_BINDINGS_NOTIFY_NOTIFIER_H_
#define SLUICE_BINDINGS_NOTIFY_NOTIFIER_H_

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "bindings/engine/smtp_event.h"
#include "ratelimit/config.pb.h"

namespace sluice {

// A notice as one line of JSON (config::NoticeRecord; invalid UTF-8 in
// names replaced), without a newline.
std::string NoticeJson(const Notice& n, absl::string_view host);

// The contact of an entity (config Entity.contact), else of its nearest
// configured ancestor (a mailbox's domain, a domain's subscription, ...);
// "" if none.
std::string ContactFor(const config::Config& config, Level level, absl::string_view entity);

class Notifier {
 public:
  struct Options {
    std::string events_file;
    std::vector<std::string> exec;  // argv
    int max_exec = 4;
    absl::Duration exec_timeout = absl::Seconds(10);
    std::vector<std::string> mail_to;
    std::string mail_from;                                                       // "" : sluice@HOST
    std::vector<std::string> mail_command = {"/usr/sbin/sendmail", "-t", "-i"};  // argv
    absl::Duration digest = absl::Minutes(5);
    size_t max_queue = 10000;
    std::string host;  // this host's name (default: gethostname)
    // The entity's contact for a notice ("" : none).
    std::function<std::string(const Notice&)> contact;
    // Where failures are reported (a hook that failed, a mail not sent).
    std::function<void(const std::string&)> log;
  };
  struct Stats {
    uint64_t posted = 0;
    uint64_t dropped = 0;  // queue full
    uint64_t written = 0;  // events file lines
    uint64_t hooks_run = 0;
    uint64_t hooks_failed = 0;   // non-zero exit, killed at the timeout, or not started
    uint64_t hooks_dropped = 0;  // max_exec busy
    uint64_t mails_sent = 0;
    uint64_t mails_failed = 0;
  };

  // The options of a config's `notify` section.
  static Options FromConfig(const config::Config& c);
  // Whether a config asks for any notification (a file, a hook, mail to
  // administrators or to an entity's contact).
  static bool Wanted(const config::Config& c);
  static absl::StatusOr<std::unique_ptr<Notifier>> Create(Options options);
  ~Notifier();  // sends the digests that are pending, waits (bounded) for children

  // Queues a notice. Thread-safe; takes a mutex for a moment, never waits.
  void Post(const Notice& n);
  // Sends every pending digest now (tests; the thread does it when due).
  void Flush();
  Stats stats() const;
  std::string MetricsText() const;

 private:
  struct Child {
    pid_t pid;
    absl::Time deadline;
    bool mail;
  };
  struct Digest {
    absl::Time due;
    std::vector<std::string> lines;
    size_t more = 0;  // lines past the cap
  };
  explicit Notifier(Options options);
  void Loop();
  void Handle(const Notice& n);
  void SendDue(bool all);
  // Starts argv with `input` on its standard input; false if it did not start.
  bool Spawn(const std::vector<std::string>& argv, const std::string& input, bool mail);
  void Reap(bool wait_all);
  void Log(const std::string& line);

  const Options options_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Notice> queue_;               // guarded by mu_
  bool stop_ = false;                      // guarded by mu_
  bool flush_ = false;                     // guarded by mu_
  int events_fd_ = -1;                     // the thread's
  std::vector<Child> children_;            // the thread's
  std::map<std::string, Digest> digests_;  // the thread's: per recipient
  std::atomic<uint64_t> posted_{0}, dropped_{0}, written_{0}, hooks_run_{0}, hooks_failed_{0},
      hooks_dropped_{0}, mails_sent_{0}, mails_failed_{0};
  std::thread thread_;
};

}  // namespace sluice

#endif  // SLUICE_BINDINGS_NOTIFY_NOTIFIER_H_
