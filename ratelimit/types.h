// The small vocabulary every part of sluice shares: what a rule does when it
// trips (Action), what it counts (Metric) and where in the hierarchy it
// sits (Level). A door or a binding includes this header, not the limiter.
// config.h ties Action and Metric to the config's enums with
// static_asserts, so a value added on one side fails the build until the
// other follows.
//
// Thread safety: constants and pure functions; thread-safe.
#ifndef SLUICE_RATELIMIT_TYPES_H_
#define SLUICE_RATELIMIT_TYPES_H_

#include <cstdint>

#include "absl/strings/string_view.h"

namespace sluice {

// What happens to a message when a rule or detector trips.
enum class Action : uint8_t { kAccept, kDefer, kReject, kHold, kDiscard, kNotify };
inline constexpr int kNumActions = 6;

// What a rule counts. Values equal config::Metric's.
enum class Metric : uint8_t { kMessages, kRecipients, kBytes };
inline constexpr int kNumMetrics = 3;

// The levels a limit can be attached to. The first five form the chain
// server > plan > subscription > domain > mailbox; the rest are extra
// dimensions counted beside it.
enum class Level : uint8_t {
  kServer = 0,
  kPlan,
  kSubscription,
  kDomain,
  kMailbox,
  kClientIp,
  kSaslUser,
  kScript,
  kList,
};
inline constexpr int kNumLevels = 9;
inline constexpr int kNumChainLevels = 5;
inline bool IsChainLevel(Level l) { return static_cast<int>(l) < kNumChainLevels; }

// Lower-case names as the config, logs and reports spell them
// ("defer", "recipients", "subscription", ...).
absl::string_view ActionName(Action a);
absl::string_view MetricName(Metric m);
absl::string_view LevelName(Level level);
// Parses a level name. Returns false if unknown.
bool ParseLevel(absl::string_view name, Level* level);

}  // namespace sluice

#endif  // SLUICE_RATELIMIT_TYPES_H_
