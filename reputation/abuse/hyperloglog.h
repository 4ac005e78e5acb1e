// HyperLogLog: an approximate count of distinct items in fixed memory.
//
// 2^p one-byte registers (p in [4, 16]); each item is a 64-bit hash (use
// xxHash of the item). The estimate has a relative standard error of about
// 1.04 / sqrt(2^p): 6.5% at p = 8 (256 bytes), 3.3% at p = 10, 1.6% at
// p = 12; small counts (< 2.5 * 2^p) use linear counting and are close to
// exact (hyperloglog_test checks the error bound). Two sketches of the same
// p merge by taking register maxima (the union's count).
//
// Thread safety: not thread-safe; callers lock.
#ifndef SLUICE_REPUTATION_ABUSE_HYPERLOGLOG_H_
#define SLUICE_REPUTATION_ABUSE_HYPERLOGLOG_H_

#include <cstdint>
#include <vector>

namespace sluice {

class HyperLogLog {
 public:
  // REQUIRES: 4 <= precision <= 16.
  explicit HyperLogLog(int precision = 8);

  void Add(uint64_t hash) noexcept;
  // Returns the estimated number of distinct hashes added.
  double Estimate() const noexcept;
  // Adds every item of `other` (same precision; otherwise a no-op).
  void Merge(const HyperLogLog& other) noexcept;
  void Clear() noexcept;
  int precision() const { return p_; }
  // Relative standard error of Estimate() for this precision.
  double StandardError() const;

 private:
  int p_;
  std::vector<uint8_t> registers_;
};

}  // namespace sluice

#endif  // SLUICE_REPUTATION_ABUSE_HYPERLOGLOG_H_
