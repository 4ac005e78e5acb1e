// EventSinks: the one list of event sinks that every event source in
// sluice keeps (the limiter's trips, the abuse detectors' trips, the DNS
// lists' suspensions), and EventDedup, which lets one event per key and
// window through ("one event per entity, rule and window").
//
// Thread safety: thread-safe. Sinks are called under the list's mutex, one
// event at a time; a sink must not add sinks. Used only when something
// trips, never on an admitted request.
#ifndef SLUICE_RATELIMIT_EVENT_SINKS_H_
#define SLUICE_RATELIMIT_EVENT_SINKS_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "ratelimit/sharded.h"

namespace sluice {
namespace internal {

class EventDedup {
 public:
  // Returns true the first time `key` is seen in window `window_index`
  // (and remembers it). Memory is bounded: a shard that grows past
  // kMaxPerShard keys forgets them all (a repeat event is possible then,
  // never a lost first one).
  bool First(uint64_t key, int64_t window_index) {
    auto& shard = shards_.For(key);
    std::lock_guard<std::mutex> lock(shard.mu);
    auto [it, inserted] = shard.last.try_emplace(key, window_index);
    if (!inserted) {
      if (it->second == window_index) return false;
      it->second = window_index;
    }
    if (shard.last.size() > kMaxPerShard) shard.last.clear();
    return true;
  }

 private:
  static constexpr size_t kMaxPerShard = 4096;
  struct Last {
    absl::flat_hash_map<uint64_t, int64_t> last;
  };
  Sharded<Last> shards_;
};

}  // namespace internal

template <typename Event>
class EventSinks {
 public:
  using Sink = std::function<void(const Event&)>;

  // Adds a sink. Thread-safe.
  void Add(Sink sink) {
    std::lock_guard<std::mutex> lock(mu_);
    sinks_.push_back(std::move(sink));
    // release: a source that sees any() also sees the sink.
    any_.store(true, std::memory_order_release);
  }
  // Whether a sink was ever added (a source may skip building events).
  bool any() const noexcept { return any_.load(std::memory_order_acquire); }
  // True the first time `key` is seen in window `window_index` (see
  // internal::EventDedup).
  bool FirstInWindow(uint64_t key, int64_t window_index) { return dedup_.First(key, window_index); }
  // Hands `e` to every sink.
  void Deliver(const Event& e) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& sink : sinks_) sink(e);
  }

 private:
  std::mutex mu_;
  std::vector<Sink> sinks_;  // guarded by mu_
  std::atomic<bool> any_{false};
  internal::EventDedup dedup_;
};

}  // namespace sluice

#endif  // SLUICE_RATELIMIT_EVENT_SINKS_H_
