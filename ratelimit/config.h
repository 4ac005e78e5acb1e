// Config loading: protobuf text format with file:line:column errors and
// semantic validation (see config.proto for the schema).
//
// Thread safety: free functions with no shared state; thread-safe.
#ifndef SLUICE_RATELIMIT_CONFIG_H_
#define SLUICE_RATELIMIT_CONFIG_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ratelimit/config.pb.h"

namespace sluice {

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

// Returns the level's config name ("server", ..., "client_ip", ...).
absl::string_view LevelName(Level level);
// Parses a level name. Returns false if unknown.
bool ParseLevel(absl::string_view name, Level* level);

// Parses a window such as "90s", "15m", "1h", "1d" (also a bare number of
// seconds) into seconds. Returns InvalidArgument for anything else.
absl::StatusOr<int64_t> ParseWindow(absl::string_view text);
// Formats seconds the way ParseWindow reads them ("1h", "90s").
std::string FormatWindow(int64_t seconds);

// Longest sliding window (sub-buckets of at most 65534 s).
inline constexpr int64_t kMaxWindowSeconds = 6 * 65534;

// Parses and validates a config. Errors read "FILE:LINE:COLUMN: message"
// (1-based), for syntax errors and semantic ones alike (unknown level, zero
// window, unknown parent, duplicate entity, ...).
absl::StatusOr<config::Config> ParseConfigText(absl::string_view text,
                                               absl::string_view filename = "<config>");

// Reads and parses a file. NotFound if it cannot be read.
absl::StatusOr<config::Config> LoadConfigFile(const std::string& path);

// Validates a config built in code (errors name the field path instead of a
// position).
absl::Status ValidateConfig(const config::Config& config);

// The built-in demonstration config of a hosting server (used by the
// simulation and as README's example).
absl::string_view DefaultConfigText();

}  // namespace sluice

#endif  // SLUICE_RATELIMIT_CONFIG_H_
