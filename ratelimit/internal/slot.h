// Slot: one 64-byte, cache-line-aligned counter cell of a CounterTable.
//
// A slot holds one counter of one entity for one rule (e.g. "mailbox
// a@example.com, messages per hour"). Its layout is part of the table file
// format (see counter_table.h): eight 64-bit words, all accessed atomically.
//
//   word 0  key    0 = empty. Bits 63..16: key fingerprint (never 0).
//                  Bits 15..0: the rule's sub-bucket length in seconds for a
//                  sliding window (1..65534), 0 for GCRA, 0xFFFF never used.
//   word 1  head   sliding window: epoch(25) | frozen(1) | count(38)
//                  GCRA: theoretical arrival time, microseconds since the
//                  table's base time (0 = never used).
//   word 2-7 hist  sliding window: epoch(25) | valid(1) | count(38), ring of
//                  the six most recent retired sub-buckets, index epoch % 6.
//
// Thread safety: every word is a std::atomic; slots live in memory shared by
// threads and by processes (MAP_SHARED). std::atomic<uint64_t> is lock-free
// and address-free on x86-64 and aarch64, which the static_asserts check.
#ifndef SLUICE_RATELIMIT_INTERNAL_SLOT_H_
#define SLUICE_RATELIMIT_INTERNAL_SLOT_H_

#include <atomic>
#include <cstdint>

namespace sluice {
namespace internal {

inline constexpr int kHistory = 6;

struct alignas(64) Slot {
  std::atomic<uint64_t> key;
  std::atomic<uint64_t> head;
  std::atomic<uint64_t> hist[kHistory];
};

static_assert(sizeof(Slot) == 64, "a slot is one cache line");
static_assert(std::atomic<uint64_t>::is_always_lock_free,
              "shared-memory counters need lock-free 64-bit atomics");

// Key word helpers.
inline constexpr uint64_t kKeyTagMask = 0xFFFF;
inline constexpr uint64_t kFingerprintMask = ~kKeyTagMask;

// Makes the key word from a 64-bit hash and the rule's sub-bucket seconds
// (0 for GCRA). The fingerprint is the hash's upper 48 bits, forced nonzero.
inline uint64_t MakeKeyWord(uint64_t hash, uint32_t sub_seconds) noexcept {
  uint64_t fp = hash & kFingerprintMask;
  if (fp == 0) fp = uint64_t{1} << 16;
  return fp | (sub_seconds & kKeyTagMask);
}
inline uint32_t KeySubSeconds(uint64_t key_word) noexcept {
  return static_cast<uint32_t>(key_word & kKeyTagMask);
}

// A head value that marks a slot being reclaimed: its contents are garbage.
// It can never be produced by the window encoding (count is bounded).
inline constexpr uint64_t kDeadHead = ~uint64_t{0};

}  // namespace internal
}  // namespace sluice

#endif  // SLUICE_RATELIMIT_INTERNAL_SLOT_H_
