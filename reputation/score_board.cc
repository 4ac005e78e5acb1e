#include "reputation/score_board.h"

#include <cmath>
#include <limits>

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace sluice {

namespace {
constexpr int kShards = Sharded<int>::kShards;
}  // namespace

ScoreBoard::ScoreBoard(Options o) : options_(o) {
  if (options_.half_life <= absl::ZeroDuration()) options_.half_life = absl::Hours(1);
  if (options_.max_keys < kShards) options_.max_keys = kShards;
}

double ScoreBoard::Decayed(const Value& v, absl::Time now) const {
  if (now <= v.at) return v.score;
  return v.score * std::exp2(-absl::FDivDuration(now - v.at, options_.half_life));
}

double ScoreBoard::Add(absl::string_view key, double points, absl::Time now) {
  if (!std::isfinite(points)) return Get(key, now);
  auto& s = shards_.For(key);
  std::lock_guard<std::mutex> lock(s.mu);
  auto it = s.map.find(key);
  if (it == s.map.end()) {
    if (s.map.size() >= options_.max_keys / kShards) {
      // Full: of the oldest few keys, drop the lowest current score; the
      // others go to the back of the line (a second chance).
      constexpr int kSample = 8;
      std::string sample[kSample];
      int n = 0;
      while (n < kSample && !s.order.empty()) {
        sample[n++] = std::move(s.order.front());
        s.order.pop_front();
      }
      int victim = 0;
      double least = std::numeric_limits<double>::infinity();
      for (int i = 0; i < n; ++i) {
        auto e = s.map.find(sample[i]);
        const double m = e == s.map.end() ? -1 : std::fabs(Decayed(e->second, now));
        if (m < least) {
          least = m;
          victim = i;
        }
      }
      // The newcomer has the least to say of all: it is not kept.
      const bool drop_new = least > std::fabs(points);
      for (int i = 0; i < n; ++i) {
        if (i == victim && !drop_new) {
          s.map.erase(sample[i]);
        } else {
          s.order.push_back(std::move(sample[i]));
        }
      }
      if (drop_new) return points;
    }
    it = s.map.emplace(std::string(key), Value{0, now}).first;
    s.order.push_back(it->first);
  }
  Value& v = it->second;
  v.score = Decayed(v, now) + points;
  v.at = now;
  return v.score;
}

double ScoreBoard::Get(absl::string_view key, absl::Time now) const {
  auto& s = shards_.For(key);
  std::lock_guard<std::mutex> lock(s.mu);
  auto it = s.map.find(key);
  return it == s.map.end() ? 0 : Decayed(it->second, now);
}

size_t ScoreBoard::size() const {
  size_t n = 0;
  shards_.ForEach([&n](const Map& m) { n += m.map.size(); });
  return n;
}

}  // namespace sluice
