#include "reputation/abuse/hyperloglog.h"

#include <algorithm>
#include <cmath>

namespace sluice {

HyperLogLog::HyperLogLog(int precision) : p_(std::clamp(precision, 4, 16)) {
  registers_.assign(size_t{1} << p_, 0);
}

void HyperLogLog::Add(uint64_t hash) noexcept {
  const uint64_t index = hash >> (64 - p_);
  const uint64_t rest = (hash << p_) | (uint64_t{1} << (p_ - 1));  // never all zero
  const uint8_t rank = static_cast<uint8_t>(__builtin_clzll(rest) + 1);
  if (rank > registers_[index]) registers_[index] = rank;
}

double HyperLogLog::Estimate() const noexcept {
  const double m = static_cast<double>(registers_.size());
  double sum = 0;
  int zeros = 0;
  for (uint8_t r : registers_) {
    sum += std::ldexp(1.0, -r);
    zeros += r == 0;
  }
  const double alpha = m == 16   ? 0.673
                       : m == 32 ? 0.697
                       : m == 64 ? 0.709
                                 : 0.7213 / (1 + 1.079 / m);
  double e = alpha * m * m / sum;
  if (e <= 2.5 * m && zeros > 0) e = m * std::log(m / zeros);  // linear counting
  return e;
}

void HyperLogLog::Merge(const HyperLogLog& other) noexcept {
  if (other.p_ != p_) return;
  for (size_t i = 0; i < registers_.size(); ++i) {
    registers_[i] = std::max(registers_[i], other.registers_[i]);
  }
}

void HyperLogLog::Clear() noexcept { std::fill(registers_.begin(), registers_.end(), 0); }

double HyperLogLog::StandardError() const {
  return 1.04 / std::sqrt(static_cast<double>(registers_.size()));
}

}  // namespace sluice
