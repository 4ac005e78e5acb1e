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
#include "absl/time/time.h"
#include "ratelimit/config.pb.h"
#include "ratelimit/types.h"

namespace sluice {

// The config's action as the limiter's.
Action ToAction(config::Action a);

// The config's enums and types.h's, tied: a value added to one fails the
// build here until the other (and ToAction) follows.
static_assert(static_cast<int>(Metric::kMessages) == config::MESSAGES &&
                  static_cast<int>(Metric::kRecipients) == config::RECIPIENTS &&
                  static_cast<int>(Metric::kBytes) == config::BYTES &&
                  config::Metric_ARRAYSIZE == kNumMetrics,
              "Metric and config::Metric must match value for value");
static_assert(config::Action_ARRAYSIZE == kNumActions - 1,
              "every config::Action but kAccept needs a case in ToAction");

// Parses a window such as "90s", "15m", "1h", "1d" (also a bare number of
// seconds) into seconds. Returns InvalidArgument for anything else.
absl::StatusOr<int64_t> ParseWindow(absl::string_view text);
// Formats seconds the way ParseWindow reads them ("1h", "90s").
std::string FormatWindow(int64_t seconds);
// A duration field of a validated config ("200ms", "5m"), or `fallback`
// when it is unset, empty or not a positive duration.
absl::Duration DurationOr(absl::string_view text, absl::Duration fallback);

// A DNS list's `match` string: octet ranges in 127/8 or a bitmask.
//   "127.0.0.2", "127.0.0.[2..11]" (a range in any octet), "mask:0x04",
//   "" or "any" (any address in 127/8).
// Part of the config language (errors carry the field's line:column);
// reputation/dns/return_filter.h applies it to answers.
struct AnswerMatch {
  uint8_t lo[4] = {127, 0, 0, 0};
  uint8_t hi[4] = {127, 255, 255, 255};
  uint32_t mask = 0;  // nonzero: a bitmask filter
};
absl::StatusOr<AnswerMatch> ParseAnswerMatch(absl::string_view text);

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
