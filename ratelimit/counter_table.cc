#include "ratelimit/counter_table.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "ratelimit/gcra.h"
#include "ratelimit/safe_file.h"
#include "ratelimit/sliding_window.h"

namespace sluice {

using internal::kDeadHead;
using internal::KeySubSeconds;
using internal::kHistory;
using internal::Slot;

namespace {

// File-backed tables whose mapping a SIGBUS may hit: the file shrank under
// us (another process truncated it) or its filesystem could not back a
// page. The handler names the file on stderr and exits (EX_TEMPFAIL)
// instead of dying of a bare SIGBUS; a fault outside them gets the
// previous action. Async-signal-safe: fixed slots, atomics, write(2).
struct WatchedMapping {
  std::atomic<uintptr_t> begin{0};
  std::atomic<uintptr_t> end{0};
  char path[256];
};
constexpr int kWatched = 32;
WatchedMapping g_watched[kWatched];
struct sigaction g_previous_bus;

void WriteStderr(const char* s) {
  [[maybe_unused]] const ssize_t w = ::write(2, s, std::strlen(s));
}

void OnBus(int sig, siginfo_t* info, void* ucontext) {
  const auto addr = reinterpret_cast<uintptr_t>(info->si_addr);
  for (const WatchedMapping& w : g_watched) {
    const uintptr_t b = w.begin.load(std::memory_order_acquire);
    if (b != 0 && addr >= b && addr < w.end.load(std::memory_order_relaxed)) {
      WriteStderr("sluice: fatal: counter table ");
      WriteStderr(w.path);
      WriteStderr(
          " was cut short under this process (truncated by another process, or its "
          "filesystem is full); stopping\n");
      _exit(75);
    }
  }
  // Not ours: what would have happened without us.
  sigaction(SIGBUS, &g_previous_bus, nullptr);
  if ((g_previous_bus.sa_flags & SA_SIGINFO) && g_previous_bus.sa_sigaction != nullptr) {
    g_previous_bus.sa_sigaction(sig, info, ucontext);
  }
  // Returning re-runs the faulting access under the previous action.
}

void WatchMapping(void* map, uint64_t bytes, const std::string& path) {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa {};
    sa.sa_sigaction = OnBus;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, &g_previous_bus);
  });
  static std::mutex mu;  // writers only; the handler reads the atomics
  std::lock_guard<std::mutex> lock(mu);
  for (WatchedMapping& w : g_watched) {
    if (w.begin.load(std::memory_order_relaxed) != 0) continue;
    const size_t n = std::min(path.size(), sizeof(w.path) - 1);
    std::memcpy(w.path, path.data(), n);
    w.path[n] = 0;
    w.end.store(reinterpret_cast<uintptr_t>(map) + bytes, std::memory_order_relaxed);
    w.begin.store(reinterpret_cast<uintptr_t>(map), std::memory_order_release);  // publishes path
    return;
  }
}

void UnwatchMapping(void* map) {
  for (WatchedMapping& w : g_watched) {
    uintptr_t b = reinterpret_cast<uintptr_t>(map);
    if (w.begin.compare_exchange_strong(b, 0, std::memory_order_acq_rel)) return;
  }
}

constexpr char kMagic[8] = {'S', 'L', 'U', 'I', 'C', 'E', '\0', 'T'};

// The first bytes of the file. Everything up to `checksum` is covered by it.
struct TableHeader {
  char magic[8];
  uint32_t version;
  uint32_t header_bytes;
  uint64_t capacity;
  uint64_t overflow_capacity;
  uint32_t slot_bytes;
  uint32_t max_probe;
  int64_t base_unix_ms;
  uint64_t checksum;
};
static_assert(sizeof(TableHeader) <= CounterTable::kHeaderBytes, "header fits");

uint64_t HeaderChecksum(const TableHeader& h) {
  return XXH64(&h, offsetof(TableHeader, checksum), 0x511CEull);
}

uint64_t RoundUpPow2(uint64_t v) {
  uint64_t p = 1;
  while (p < v) p <<= 1;
  return p;
}

uint64_t OverflowFor(uint64_t capacity) {
  uint64_t o = capacity / 256;
  if (o < 1024) o = 1024;
  return RoundUpPow2(o);
}

// Faults in every page of a fresh mapping for writing (after MADV_HUGEPAGE,
// so anonymous memory gets huge pages). Without MADV_POPULATE_WRITE
// (Linux < 5.14) each page is touched by an atomic add of zero, which
// changes nothing even while other processes use a shared table.
void Prefault(void* map, uint64_t bytes) {
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
  if (madvise(map, bytes, MADV_POPULATE_WRITE) == 0) return;
  const long page = sysconf(_SC_PAGESIZE);
  for (uint64_t off = 0; off < bytes; off += static_cast<uint64_t>(page)) {
    // relaxed: only the fault matters, not the value.
    reinterpret_cast<std::atomic<uint64_t>*>(static_cast<char*>(map) + off)
        ->fetch_add(0, std::memory_order_relaxed);
  }
}

absl::Status Errno(absl::string_view what, const std::string& path) {
  return absl::InternalError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

}  // namespace

absl::StatusOr<std::unique_ptr<CounterTable>> CounterTable::Open(const Options& options,
                                                                 absl::Time now) {
  uint64_t capacity = options.capacity;
  if (capacity == 0) {
    // Largest power of two whose table (with overflow) fits the cap.
    uint64_t budget = options.max_memory_bytes;
    if (budget < kHeaderBytes + 2048 * sizeof(Slot)) {
      return absl::InvalidArgumentError(absl::StrCat("counter table: max_memory_bytes ", budget,
                                                     " is below the minimum ",
                                                     kHeaderBytes + 2048 * sizeof(Slot)));
    }
    capacity = 1024;
    while (kHeaderBytes + (capacity * 2 + OverflowFor(capacity * 2)) * sizeof(Slot) <= budget) {
      capacity *= 2;
    }
  }
  capacity = RoundUpPow2(capacity < 1024 ? 1024 : capacity);
  if (options.max_probe < 1 || options.max_probe > 4096) {
    return absl::InvalidArgumentError("counter table: max_probe must be in [1, 4096]");
  }

  std::unique_ptr<CounterTable> t(new CounterTable());
  t->path_ = options.path;
  t->max_probe_ = options.max_probe;
  TableHeader want{};
  std::memcpy(want.magic, kMagic, sizeof(kMagic));
  want.version = kFormatVersion;
  want.header_bytes = kHeaderBytes;
  want.capacity = capacity;
  want.overflow_capacity = OverflowFor(capacity);
  want.slot_bytes = sizeof(Slot);
  want.max_probe = options.max_probe;
  want.base_unix_ms = absl::ToUnixMillis(now);
  want.checksum = HeaderChecksum(want);
  uint64_t bytes = kHeaderBytes + (want.capacity + want.overflow_capacity) * sizeof(Slot);

  TableHeader have = want;
  if (options.path.empty()) {
    // Private: transparent huge pages work for private anonymous memory
    // only (shmem THP is usually off), and a random access per level costs
    // a TLB miss less. Processes share counters through a file instead.
    void* m = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) return Errno("mmap", "(anonymous)");
    if (options.huge_pages) madvise(m, bytes, MADV_HUGEPAGE);
    std::memcpy(m, &want, sizeof(want));
    t->map_ = m;
    t->bytes_ = bytes;
  } else {
    // Never through a symlink, never a file another user owns or can write.
    auto opened = OpenOwnFile(options.path, O_RDWR | O_CREAT, 0600);
    if (!opened.ok()) return opened.status();
    const int fd = *opened;
    t->fd_ = fd;
    if (flock(fd, LOCK_EX) != 0) return Errno("flock", options.path);
    struct stat st;
    if (fstat(fd, &st) != 0) return Errno("fstat", options.path);
    bool fresh = st.st_size == 0;
    if (fresh) {
      // Real blocks, not a sparse file: a full filesystem is an error now,
      // not a SIGBUS at some later request.
      if (int err = posix_fallocate(fd, 0, static_cast<off_t>(bytes)); err != 0) {
        [[maybe_unused]] const int ignored = ftruncate(fd, 0);
        flock(fd, LOCK_UN);
        return absl::ResourceExhaustedError(absl::StrCat("counter table ", options.path,
                                                         ": cannot allocate ", bytes,
                                                         " bytes: ", std::strerror(err)));
      }
      if (pwrite(fd, &want, sizeof(want), 0) != static_cast<ssize_t>(sizeof(want))) {
        flock(fd, LOCK_UN);
        return Errno("write header", options.path);
      }
    } else {
      if (static_cast<uint64_t>(st.st_size) < sizeof(TableHeader) ||
          pread(fd, &have, sizeof(have), 0) != static_cast<ssize_t>(sizeof(have))) {
        flock(fd, LOCK_UN);
        return absl::DataLossError(absl::StrCat("counter table ", options.path, ": file is ",
                                                st.st_size,
                                                " bytes, too short for a sluice table header"));
      }
      if (std::memcmp(have.magic, kMagic, sizeof(kMagic)) != 0) {
        flock(fd, LOCK_UN);
        return absl::FailedPreconditionError(absl::StrCat(
            "counter table ", options.path, ": not a sluice counter table (bad magic)"));
      }
      if (have.version != kFormatVersion) {
        flock(fd, LOCK_UN);
        return absl::FailedPreconditionError(
            absl::StrCat("counter table ", options.path, ": format version ", have.version,
                         ", this build reads version ", kFormatVersion,
                         "; move the file away to start with empty counters"));
      }
      if (HeaderChecksum(have) != have.checksum) {
        flock(fd, LOCK_UN);
        return absl::DataLossError(absl::StrCat("counter table ", options.path,
                                                ": header checksum mismatch (corrupt file)"));
      }
      uint64_t have_bytes = kHeaderBytes + (have.capacity + have.overflow_capacity) * sizeof(Slot);
      if (have.header_bytes != kHeaderBytes || have.slot_bytes != sizeof(Slot) ||
          have.capacity == 0 || (have.capacity & (have.capacity - 1)) != 0 ||
          have.overflow_capacity == 0 ||
          (have.overflow_capacity & (have.overflow_capacity - 1)) != 0 ||
          static_cast<uint64_t>(st.st_size) != have_bytes) {
        flock(fd, LOCK_UN);
        return absl::DataLossError(absl::StrCat("counter table ", options.path, ": file size ",
                                                st.st_size, " does not match its header (",
                                                have_bytes, " bytes expected)"));
      }
      if ((options.capacity != 0 || options.max_memory_bytes != Options().max_memory_bytes) &&
          have.capacity != capacity) {
        flock(fd, LOCK_UN);
        return absl::FailedPreconditionError(
            absl::StrCat("counter table ", options.path, ": file holds ", have.capacity,
                         " slots but the config asks for ", capacity,
                         "; move the file away or change the config to match"));
      }
      bytes = have_bytes;
      // A sparse file (copied, or made by an older build) gets its blocks.
      if (int err = posix_fallocate(fd, 0, static_cast<off_t>(bytes)); err != 0) {
        flock(fd, LOCK_UN);
        return absl::ResourceExhaustedError(absl::StrCat("counter table ", options.path,
                                                         ": cannot allocate ", bytes,
                                                         " bytes: ", std::strerror(err)));
      }
    }
    void* m = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    flock(fd, LOCK_UN);
    if (m == MAP_FAILED) return Errno("mmap", options.path);
    t->map_ = m;
    t->bytes_ = bytes;
    WatchMapping(m, bytes,
                 options.path);  // a file cut short later: a clear exit, not a bare SIGBUS
  }
  if (options.prefault) Prefault(t->map_, t->bytes_);
  t->capacity_ = have.capacity;
  t->mask_ = have.capacity - 1;
  t->overflow_capacity_ = have.overflow_capacity;
  t->overflow_mask_ = have.overflow_capacity - 1;
  t->max_probe_ = have.max_probe ? have.max_probe : options.max_probe;
  t->base_ms_ = have.base_unix_ms;
  t->base_ = absl::FromUnixMillis(have.base_unix_ms);
  t->slots_ = reinterpret_cast<Slot*>(static_cast<char*>(t->map_) + kHeaderBytes);
  t->overflow_ = t->slots_ + t->capacity_;
  return t;
}

CounterTable::~CounterTable() {
  if (map_ != nullptr && fd_ >= 0) UnwatchMapping(map_);
  if (map_ != nullptr) munmap(map_, bytes_);
  if (fd_ >= 0) close(fd_);
}

absl::Status CounterTable::Sync() {
  if (fd_ < 0) return absl::OkStatus();
  if (msync(map_, bytes_, MS_SYNC) != 0) return Errno("msync", path_);
  return absl::OkStatus();
}

bool CounterTable::IsExpired(uint64_t key_word, uint64_t head,
                             int64_t since_base_ms) const noexcept {
  uint32_t sub = KeySubSeconds(key_word);
  if (sub == 0) return Gcra::Expired(head, since_base_ms * 1000);
  return SlidingWindow::Expired(head, SlidingWindow::EpochAt(since_base_ms, sub));
}

void CounterTable::Revive(Slot& s) noexcept {
  // Nobody writes the ring while the head is dead, so plain resets are safe.
  for (auto& h : s.hist) h.store(0, std::memory_order_relaxed);
  uint64_t dead = kDeadHead;
  // acq_rel: publishes the cleared ring with the fresh head.
  s.head.compare_exchange_strong(dead, 0, std::memory_order_acq_rel, std::memory_order_acquire);
}

bool CounterTable::Reclaim(Slot& s, uint64_t old_key, uint64_t old_head,
                           uint64_t new_key) noexcept {
  // 1. Kill the head: fails if anyone touched the slot since we judged it
  //    expired (then it is live and not ours to take).
  if (!s.head.compare_exchange_strong(old_head, kDeadHead, std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
    return false;
  }
  for (auto& h : s.hist) h.store(0, std::memory_order_relaxed);
  // 2. Hand the key over; 3. bring the head back to life.
  uint64_t k = old_key;
  bool ok = s.key.compare_exchange_strong(k, new_key, std::memory_order_acq_rel,
                                          std::memory_order_acquire);
  uint64_t dead = kDeadHead;
  s.head.compare_exchange_strong(dead, 0, std::memory_order_acq_rel, std::memory_order_acquire);
  return ok;
}

Slot* CounterTable::Probe(Slot* base, uint64_t mask, uint64_t hash, uint64_t key_word,
                          int64_t since_base_ms, uint32_t max_probe, bool* claimed) noexcept {
  *claimed = false;
  const uint64_t start = hash & mask;
  for (int attempt = 0; attempt < 4; ++attempt) {
    Slot* candidate = nullptr;
    uint64_t cand_key = 0, cand_head = 0;
    uint32_t limit = max_probe < mask + 1 ? max_probe : static_cast<uint32_t>(mask + 1);
    for (uint32_t i = 0; i < limit; ++i) {
      Slot& s = base[(start + i) & mask];
      // acquire: pairs with the claiming CAS, so the fresh head is visible.
      uint64_t k = s.key.load(std::memory_order_acquire);
      if (k == key_word) {
        if (s.head.load(std::memory_order_acquire) == kDeadHead) Revive(s);
        return &s;
      }
      if (k == 0) {
        if (s.key.compare_exchange_strong(k, key_word, std::memory_order_acq_rel,
                                          std::memory_order_acquire)) {
          claims_.fetch_add(1, std::memory_order_relaxed);
          *claimed = true;
          return &s;
        }
        if (k == key_word) return &s;  // a racing thread placed the same key
        continue;
      }
      if (candidate == nullptr) {
        uint64_t h = s.head.load(std::memory_order_acquire);
        if (IsExpired(k, h, since_base_ms)) {
          candidate = &s;
          cand_key = k;
          cand_head = h;
        }
      }
    }
    if (candidate == nullptr) return nullptr;
    if (Reclaim(*candidate, cand_key, cand_head, key_word)) {
      reclaims_.fetch_add(1, std::memory_order_relaxed);
      *claimed = true;
      return candidate;
    }
    // Lost a race for the candidate: look again (the key may be there now).
  }
  return nullptr;
}

Slot* CounterTable::FindOrClaimSlow(uint64_t hash, uint64_t key_word, uint64_t overflow_hash,
                                    uint64_t overflow_word, int64_t since_base_ms,
                                    Placement* how) noexcept {
  bool claimed;
  Slot* s = Probe(slots_, mask_, hash, key_word, since_base_ms, max_probe_, &claimed);
  if (s != nullptr) {
    *how = claimed ? Placement::kClaimed : Placement::kFound;
    return s;
  }
  *how = Placement::kOverflow;
  overflows_.fetch_add(1, std::memory_order_relaxed);
  return Probe(overflow_, overflow_mask_, overflow_hash, overflow_word, since_base_ms,
               static_cast<uint32_t>(overflow_capacity_), &claimed);
}

const Slot* CounterTable::Find(uint64_t hash, uint64_t key_word) const noexcept {
  const uint64_t start = hash & mask_;
  for (uint32_t i = 0; i < max_probe_ && i <= mask_; ++i) {
    const Slot& s = slots_[(start + i) & mask_];
    uint64_t k = s.key.load(std::memory_order_acquire);
    if (k == key_word) return &s;
    if (k == 0) return nullptr;
  }
  return nullptr;
}

bool CounterTable::Reset(uint64_t hash, uint64_t key_word) noexcept {
  Slot* s = const_cast<Slot*>(Find(hash, key_word));
  if (s == nullptr) return false;
  for (int attempt = 0; attempt < 64; ++attempt) {
    uint64_t h = s->head.load(std::memory_order_acquire);
    if (h == kDeadHead) continue;  // someone else is resetting it
    if (Reclaim(*s, key_word, h, key_word)) return true;
  }
  return false;
}

uint64_t CounterTable::Sweep(absl::Time now) noexcept {
  const int64_t since = SinceBaseMs(now);
  uint64_t reset = 0;
  for (uint64_t i = 0; i < capacity_ + overflow_capacity_; ++i) {
    Slot& s = slots_[i];
    uint64_t k = s.key.load(std::memory_order_acquire);
    if (k == 0) continue;
    uint64_t h = s.head.load(std::memory_order_acquire);
    if (h == 0 || !IsExpired(k, h, since)) continue;
    // Same protocol as a reclaim, keeping the key: kill the head (fails if
    // the slot was touched meanwhile), clear the ring, bring it back fresh.
    if (Reclaim(s, k, h, k)) ++reset;
  }
  return reset;
}

CounterTable::Stats CounterTable::GetStats(absl::Time now) const {
  Stats st;
  int64_t since = SinceBaseMs(now);
  for (uint64_t i = 0; i < capacity_ + overflow_capacity_; ++i) {
    uint64_t k = slots_[i].key.load(std::memory_order_relaxed);
    if (k == 0) continue;
    if (i >= capacity_) {
      ++st.overflow_slots_used;
      continue;
    }
    ++st.used_slots;
    if (!IsExpired(k, slots_[i].head.load(std::memory_order_relaxed), since)) {
      ++st.live_slots;
    }
  }
  st.claims = claims_.load(std::memory_order_relaxed);
  st.reclaims = reclaims_.load(std::memory_order_relaxed);
  st.overflows = overflows_.load(std::memory_order_relaxed);
  return st;
}

}  // namespace sluice
