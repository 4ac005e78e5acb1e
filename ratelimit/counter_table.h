// CounterTable: a fixed-capacity, lock-free hash table of counter slots,
// in process memory or in a file shared by many processes.
//
// This is where every sliding-window and GCRA counter of sluice lives. The
// capacity is fixed when the table is created: it is the hard memory cap.
// Keys are 64-bit XXH3 hashes (see Limiter); a slot stores a 48-bit
// fingerprint of the hash plus the rule's sub-bucket length, so slots whose
// windows have fully expired can be recognised and reclaimed in place by
// any process, whatever rule they belonged to.
//
// Layout (format version 1; all integers little-endian, native atomics):
//   [0, 4096)         TableHeader: magic "SLUICE\0T", version, capacity,
//                     overflow capacity, probe limit, base time, checksum
//   [4096, ...)       capacity main slots, then overflow slots, 64 B each
// A file with another magic, version, size or a bad header checksum is
// refused with an error that says which; it is never misread.
//
// Lookup is linear probing over at most `max_probe` slots. When a new key
// finds neither a free nor an expired slot in its probe window, the table is
// full *for that key*: FindOrClaim returns the slot of `overflow_key`
// instead, in a separate overflow region. The Limiter uses one overflow key
// per (level, rule), so a flood of random keys ends up sharing one counter
// and limits itself, while keys already in the table stay tracked.
//
// Persistence: with a file path the table is a MAP_SHARED mapping; counts
// survive the death (even kill -9) of any process using it and a restart of
// all of them. Sync() flushes to disk for machine crashes.
//
// The file: opened without following symlinks and refused when another
// user owns it or it is writable by others (safe_file.h; a group share,
// mode 0660, is fine); its blocks are allocated at Open (posix_fallocate),
// so a full filesystem is an error then, not a SIGBUS later. A file cut
// short under a running process (another process truncated it) ends that
// process with a message naming the file on stderr (exit 75), not a bare
// SIGBUS.
//
// Thread safety: all methods are thread-safe; the table can be used by many
// threads of many processes at once. Open() serialises concurrent creators
// of one file with flock().
#ifndef SLUICE_RATELIMIT_COUNTER_TABLE_H_
#define SLUICE_RATELIMIT_COUNTER_TABLE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/optimization.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ratelimit/internal/slot.h"

namespace sluice {

class CounterTable {
 public:
  struct Options {
    // Slots in the main region, rounded up to a power of two. If 0, derived
    // from max_memory_bytes.
    uint64_t capacity = 0;
    // Hard cap on the table's size (header + all slots), used when
    // capacity == 0. Default 64 MiB (about 1M counters).
    uint64_t max_memory_bytes = 64ull << 20;
    // Longest probe sequence. Larger fills the table more before overflow.
    uint32_t max_probe = 64;
    // Empty: anonymous memory private to this process (fork()ed children
    // get a copy, not a share). Otherwise a file shared by every process
    // that opens it.
    std::string path;
    // Touch every page at Open, so that no request later pays a first-touch
    // fault (zeroing a 2 MiB huge page took several ms in a measured run).
    // For long-running daemons; costs the table's size in memory at once.
    bool prefault = false;
    // In-memory tables: ask for transparent huge pages (a TLB miss less per
    // access). Off for processes that live for one message: the first
    // touch of a huge page zeroes 2 MB.
    bool huge_pages = true;
  };

  static constexpr uint32_t kFormatVersion = 1;
  static constexpr uint64_t kHeaderBytes = 4096;

  // Creates or opens a table. For an existing file the stored capacity wins
  // unless `capacity`/`max_memory_bytes` ask for a different one, which is an
  // error (FailedPrecondition) naming both numbers. Corrupt or foreign files
  // are refused (DataLoss / FailedPrecondition).
  static absl::StatusOr<std::unique_ptr<CounterTable>> Open(const Options& options, absl::Time now);
  ~CounterTable();

  CounterTable(const CounterTable&) = delete;
  CounterTable& operator=(const CounterTable&) = delete;

  // Advanced: the slot-level calls below hand out internal::Slot (the
  // layout in internal/slot.h) for sluice's own counters (limiter,
  // detectors); an embedder counts through Limiter instead.
  // Returns the slot for `key_word` (see internal::MakeKeyWord) whose probe
  // sequence starts at `hash`, claiming a free or expired slot if the key is
  // absent. If none is free, returns the slot of `overflow_word` in the
  // overflow region. Returns nullptr only if even the
  // overflow region is full. `since_base_ms` is now relative to base time.
  // *how says whether the key was found, newly placed, or overflowed.
  // Thread-safe, lock-free.
  enum class Placement { kFound, kClaimed, kOverflow };
  // Inline for the common case (the key in the first slot of its probe
  // sequence); FindOrClaimSlow does the rest.
  internal::Slot* FindOrClaim(uint64_t hash, uint64_t key_word, uint64_t overflow_hash,
                              uint64_t overflow_word, int64_t since_base_ms,
                              Placement* how) noexcept {
    internal::Slot* s = &slots_[hash & mask_];
    // acquire: pairs with the claiming CAS, so the fresh head is visible.
    if (s->key.load(std::memory_order_acquire) == key_word &&
        s->head.load(std::memory_order_acquire) != internal::kDeadHead) {
      *how = Placement::kFound;
      return s;
    }
    return FindOrClaimSlow(hash, key_word, overflow_hash, overflow_word, since_base_ms, how);
  }
  internal::Slot* FindOrClaimSlow(uint64_t hash, uint64_t key_word, uint64_t overflow_hash,
                                  uint64_t overflow_word, int64_t since_base_ms,
                                  Placement* how) noexcept;

  // Returns the slot holding `key_word`, or nullptr (read-only). Thread-safe.
  const internal::Slot* Find(uint64_t hash, uint64_t key_word) const noexcept;
  // Zeroes the counter of a key in place (the reclaim protocol, keeping the
  // key). Returns false if the key is not in the main region. Thread-safe;
  // a concurrent charge may land before or after the reset.
  bool Reset(uint64_t hash, uint64_t key_word) noexcept;

  // Hints the CPU to fetch the first slot of `hash`'s probe sequence.
  // (The empty volatile asm is a side effect: without it GCC, which may
  // delete a loop that has none (-ffinite-loops, on for C++ at -O2), drops
  // a loop of prefetches whole, and a caller's loop over its rules fetched
  // nothing.)
  void Prefetch(uint64_t hash) const noexcept {
    __builtin_prefetch(&slots_[hash & mask_], 1, 3);
    asm volatile("");
  }

  // Returns true if `slot` still belongs to `key_word` (after an add, to
  // detect a concurrent reclaim). Thread-safe.
  static bool StillOwns(const internal::Slot* slot, uint64_t key_word) noexcept {
    // acquire: orders this check after the add it validates.
    return slot->key.load(std::memory_order_acquire) == key_word;
  }

  // The table's base time: epochs and GCRA times count from it.
  absl::Time base_time() const { return base_; }
  int64_t SinceBaseMs(absl::Time now) const noexcept { return absl::ToUnixMillis(now) - base_ms_; }
  // The time in microseconds since the base. Inline (absl::ToUnixMicros is
  // a call into the library; a Time is seconds plus quarter-nanosecond
  // ticks since 1970); times more than ~278,000 years from 1970, the
  // infinities among them, read as +-2^62.
  int64_t SinceBaseUs(absl::Time now) const noexcept {
    const absl::Duration d = absl::time_internal::ToUnixDuration(now);
    const int64_t hi = absl::time_internal::GetRepHi(d);
    constexpr int64_t kFar = int64_t{1} << 43;  // seconds
    if (ABSL_PREDICT_FALSE(hi <= -kFar || hi >= kFar)) {
      return hi < 0 ? -(int64_t{1} << 62) : int64_t{1} << 62;
    }
    return hi * 1000000 + absl::time_internal::GetRepLo(d) / 4000 - base_ms_ * 1000;
  }

  uint64_t capacity() const { return capacity_; }
  uint64_t overflow_capacity() const { return overflow_capacity_; }
  uint64_t mapped_bytes() const { return bytes_; }
  const std::string& path() const { return path_; }

  struct Stats {
    uint64_t used_slots = 0;  // main-region slots holding a key
    uint64_t live_slots = 0;  // ... whose counts have not all expired
    uint64_t overflow_slots_used = 0;
    uint64_t claims = 0;     // this process: new keys placed
    uint64_t reclaims = 0;   // this process: expired slots reused
    uint64_t overflows = 0;  // this process: keys sent to overflow
  };
  // Scans the whole table (O(capacity)): for reports, not hot paths.
  Stats GetStats(absl::Time now) const;

  // Calls fn(slot) for every used main and overflow slot. Thread-safe; sees
  // a moving table.
  template <typename Fn>
  void ForEachSlot(Fn fn) const {
    for (uint64_t i = 0; i < capacity_ + overflow_capacity_; ++i) {
      if (slots_[i].key.load(std::memory_order_acquire) != 0) fn(slots_[i]);
    }
  }

  // Resets every slot whose counts have all expired to a fresh state (the
  // key stays). Call it periodically (hourly is plenty): sliding-window
  // epochs wrap after 2^25 sub-buckets (388 days at 1-second sub-buckets),
  // and a slot idle for half that must be reset before it is misread.
  // O(capacity); thread-safe and lock-free like every other method.
  // Returns the number of slots reset.
  uint64_t Sweep(absl::Time now) noexcept;

  // Flushes a file-backed table to disk (msync). No-op in memory.
  absl::Status Sync();

 private:
  CounterTable() = default;
  bool IsExpired(uint64_t key_word, uint64_t head, int64_t since_base_ms) const noexcept;
  bool Reclaim(internal::Slot& s, uint64_t old_key, uint64_t old_head, uint64_t new_key) noexcept;
  static void Revive(internal::Slot& s) noexcept;
  internal::Slot* Probe(internal::Slot* base, uint64_t mask, uint64_t hash, uint64_t key_word,
                        int64_t since_base_ms, uint32_t max_probe, bool* claimed) noexcept;

  void* map_ = nullptr;
  uint64_t bytes_ = 0;
  int fd_ = -1;
  std::string path_;
  internal::Slot* slots_ = nullptr;
  internal::Slot* overflow_ = nullptr;
  uint64_t capacity_ = 0;
  uint64_t mask_ = 0;
  uint64_t overflow_capacity_ = 0;
  uint64_t overflow_mask_ = 0;
  uint32_t max_probe_ = 64;
  int64_t base_ms_ = 0;
  absl::Time base_;
  // Per-process statistics; relaxed counters, contention-free enough for
  // the rare paths that bump them.
  mutable std::atomic<uint64_t> claims_{0}, reclaims_{0}, overflows_{0};
};

}  // namespace sluice

#endif  // SLUICE_RATELIMIT_COUNTER_TABLE_H_
