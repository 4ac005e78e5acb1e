// Mix64: the one 64-bit mixer of sluice, shared by ratelimit/ and
// reputation/ (combining and re-hashing XXH3 values into counter keys).
//
// Thread safety: pure functions; thread-safe.
#ifndef SLUICE_RATELIMIT_HASH_H_
#define SLUICE_RATELIMIT_HASH_H_

#include <cstdint>

namespace sluice {

// The splitmix64 finaliser: spreads every input bit over the whole word.
// Used to combine and re-hash 64-bit XXH3 values.
inline uint64_t Mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

}  // namespace sluice

#endif  // SLUICE_RATELIMIT_HASH_H_
