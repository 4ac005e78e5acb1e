// Versions<T>: the current version of something a reload replaces (a
// limiter's compiled rules, an engine's settings and abuse detectors), read
// lock-free, and the replaced ones freed once no reader can hold them, so
// memory stays flat over any number of reloads.
//
// Two ways to read, chosen by the owner for all its readers:
//   Read()     a section: the version stays valid while the returned handle
//              lives. Collect() frees a retired version once every section
//              that could have seen it has ended (two counter epochs, as in
//              RCU: a writer flips the epoch and waits for the old one's
//              sections to drain; never blocks, asks again at the next
//              Collect). Costs a reader two uncontended atomic adds on its
//              thread's shard.
//   current()  no section, for hot paths that never block: the owner frees
//              with CollectOlderThan(now, grace), a grace longer than any
//              reader holds a version.
//
// Thread safety: current() and Read() are thread-safe and lock-free;
// Publish, Collect, CollectOlderThan and retired() are thread-safe (they
// serialize on an internal mutex).
#ifndef SLUICE_RATELIMIT_VERSIONS_H_
#define SLUICE_RATELIMIT_VERSIONS_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <utility>

#include "absl/time/time.h"

namespace sluice {

namespace internal {
// A number of this thread's, fixed for its life, for spreading threads over
// shards (versions.cc: one definition, not one per template instance).
size_t ThisThreadShard() noexcept;
}  // namespace internal

template <typename T>
class Versions {
 public:
  Versions() = default;
  Versions(const Versions&) = delete;
  Versions& operator=(const Versions&) = delete;

  // A read section: the version it holds stays valid until it ends.
  class Handle {
   public:
    Handle(Handle&& o) noexcept : count_(o.count_), v_(o.v_) { o.count_ = nullptr; }
    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;
    Handle& operator=(Handle&&) = delete;
    ~Handle() {
      if (count_ != nullptr) count_->fetch_sub(1, std::memory_order_release);  // section ends
    }
    T* get() const { return v_; }
    T* operator->() const { return v_; }
    T& operator*() const { return *v_; }

   private:
    friend class Versions;
    Handle(std::atomic<int64_t>* c, T* v) : count_(c), v_(v) {}
    std::atomic<int64_t>* count_;
    T* v_;
  };

  // The current version, in a read section.
  Handle Read() noexcept {
    Shard& shard = shards_[ThreadShard()];
    for (;;) {
      // seq_cst: the count, the epoch check and the version load are
      // ordered with the writer's flip and check.
      const int e = epoch_.load(std::memory_order_seq_cst);
      shard.count[e].fetch_add(1, std::memory_order_seq_cst);
      if (epoch_.load(std::memory_order_seq_cst) == e) {
        return Handle(&shard.count[e], current_.load(std::memory_order_seq_cst));
      }
      shard.count[e].fetch_sub(1, std::memory_order_relaxed);  // flipped meanwhile: again
    }
  }

  // The current version (null before the first Publish), without a
  // section: see CollectOlderThan.
  T* current() const noexcept {
    return current_.load(std::memory_order_acquire);  // sees the version fully built
  }

  // Makes `v` current; the previous one is retired at `now`. Returns `v`.
  T* Publish(std::unique_ptr<T> v, absl::Time now) {
    std::lock_guard<std::mutex> lock(mu_);
    T* raw = v.get();
    current_.store(raw, std::memory_order_seq_cst);  // publishes the built version
    if (owned_ != nullptr) retired_.emplace_back(now, std::move(owned_));
    owned_ = std::move(v);
    return raw;
  }

  // For Read() owners: frees the retired versions no section can still
  // hold; starts the next drain if more are retired. Never waits. Returns
  // how many are still kept.
  size_t Collect() {
    std::deque<std::unique_ptr<T>> dead;  // freed outside the lock
    std::lock_guard<std::mutex> lock(mu_);
    // Frees what the drain waits for once the old epoch's sections ended.
    auto finish_drain = [&] {
      if (!draining_ || !Drained(1 - epoch_.load(std::memory_order_seq_cst))) return;
      for (size_t i = 0; i < drain_count_; ++i) {
        dead.push_back(std::move(retired_.front().second));
        retired_.pop_front();
      }
      draining_ = false;
    };
    finish_drain();
    if (!draining_ && !retired_.empty()) {
      // Sections from now on count in the other epoch; the ones in the old
      // epoch may hold what is retired so far.
      epoch_.store(1 - epoch_.load(std::memory_order_relaxed), std::memory_order_seq_cst);
      draining_ = true;
      drain_count_ = retired_.size();
      finish_drain();  // no section was open: at once
    }
    return retired_.size();
  }

  // For current() owners: frees the versions retired at least `grace`
  // before `now`; returns how many are still kept.
  size_t CollectOlderThan(absl::Time now, absl::Duration grace) {
    std::deque<std::unique_ptr<T>> dead;  // freed outside the lock
    std::lock_guard<std::mutex> lock(mu_);
    while (!retired_.empty() && now - retired_.front().first >= grace) {
      dead.push_back(std::move(retired_.front().second));
      retired_.pop_front();
    }
    return retired_.size();
  }

  size_t retired() const {
    std::lock_guard<std::mutex> lock(mu_);
    return retired_.size();
  }

 private:
  static constexpr int kShards = 16;
  struct alignas(64) Shard {
    std::atomic<int64_t> count[2] = {};
  };
  static size_t ThreadShard() noexcept { return internal::ThisThreadShard() % kShards; }
  // True if no section is open in epoch `e`.
  bool Drained(int e) const {
    int64_t n = 0;
    for (const Shard& s : shards_) n += s.count[e].load(std::memory_order_seq_cst);
    return n == 0;
  }

  std::atomic<T*> current_{nullptr};
  std::atomic<int> epoch_{0};
  Shard shards_[kShards];
  mutable std::mutex mu_;
  std::unique_ptr<T> owned_;  // the current version's owner
  std::deque<std::pair<absl::Time, std::unique_ptr<T>>> retired_;
  bool draining_ = false;   // an epoch flip waits for its old sections
  size_t drain_count_ = 0;  // the first drain_count_ retired ones wait on it
};

}  // namespace sluice

#endif  // SLUICE_RATELIMIT_VERSIONS_H_
