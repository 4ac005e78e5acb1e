// LogWatch: a daemon's log follower: a LogFollower read on its own thread
// every `every` (a stream: as lines come), each line fed to the engine
// through a LogFeeder, the position saved about once a second and at
// stop. Nothing on a request path waits for it.
//
// Thread safety: MetricsText is thread-safe; Start and the destructor are
// for the daemon's main thread.
#ifndef SLUICE_BINDINGS_LOGS_LOG_WATCH_H_
#define SLUICE_BINDINGS_LOGS_LOG_WATCH_H_

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "bindings/logs/log_feeder.h"
#include "bindings/logs/log_follower.h"

namespace sluice {

class PolicyEngine;

class LogWatch {
 public:
  // `engine` is not owned and must outlive the watch.
  static absl::StatusOr<std::unique_ptr<LogWatch>> Start(
      PolicyEngine* engine, LogFollower::Options options,
      absl::Duration every = absl::Milliseconds(200));
  ~LogWatch();  // stops the thread and saves the position

  // Prometheus text lines (sluice_log_*).
  std::string MetricsText() const;

 private:
  LogWatch(PolicyEngine* engine, std::unique_ptr<LogFollower> follower, absl::Duration every);
  void Loop();

  std::unique_ptr<LogFollower> follower_;
  LogFeeder feeder_;
  const absl::Duration every_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace sluice

#endif  // SLUICE_BINDINGS_LOGS_LOG_WATCH_H_
