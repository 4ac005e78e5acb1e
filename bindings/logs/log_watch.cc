#include "bindings/logs/log_watch.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"

namespace sluice {

absl::StatusOr<std::unique_ptr<LogWatch>> LogWatch::Start(PolicyEngine* engine,
                                                          LogFollower::Options options,
                                                          absl::Duration every) {
  auto follower = LogFollower::Open(std::move(options));
  if (!follower.ok()) return follower.status();
  std::unique_ptr<LogWatch> w(new LogWatch(engine, std::move(*follower), every));
  w->thread_ = std::thread([p = w.get()] { p->Loop(); });
  return w;
}

LogWatch::LogWatch(PolicyEngine* engine, std::unique_ptr<LogFollower> follower,
                   absl::Duration every)
    : follower_(std::move(follower)), feeder_(engine), every_(every) {}

LogWatch::~LogWatch() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  static_cast<void>(follower_->SaveState());
}

void LogWatch::Loop() {
  const int every_ms = static_cast<int>(std::max<int64_t>(1, absl::ToInt64Milliseconds(every_)));
  absl::Time saved = absl::Now();
  bool dirty = false;
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    lock.unlock();
    // A stream waits in poll for its lines; a file is read to its end.
    const size_t n = follower_->Poll(
        [this](absl::string_view line) { feeder_.Feed(line, absl::Now()); }, every_ms);
    dirty |= n > 0;
    if (dirty && absl::Now() - saved > absl::Seconds(1)) {
      static_cast<void>(follower_->SaveState());
      saved = absl::Now();
      dirty = false;
    }
    lock.lock();
    cv_.wait_for(lock, std::chrono::milliseconds(every_ms), [this] { return stop_; });
  }
}

std::string LogWatch::MetricsText() const {
  const LogFollower::Stats s = follower_->stats();
  return absl::StrCat(feeder_.MetricsText(),
                      "# TYPE sluice_log_cut_lines_total counter\nsluice_log_cut_lines_total ",
                      s.cut, "\n# TYPE sluice_log_rotations_total counter\n",
                      "sluice_log_rotations_total ", s.rotations + s.truncations, "\n");
}

}  // namespace sluice
