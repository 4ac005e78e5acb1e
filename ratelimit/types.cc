#include "ratelimit/types.h"

namespace sluice {

namespace {

constexpr absl::string_view kLevelNames[kNumLevels] = {"server",    "plan",    "subscription",
                                                       "domain",    "mailbox", "client_ip",
                                                       "sasl_user", "script",  "list"};

}  // namespace

absl::string_view ActionName(Action a) {
  switch (a) {
    case Action::kAccept:
      return "accept";
    case Action::kDefer:
      return "defer";
    case Action::kReject:
      return "reject";
    case Action::kHold:
      return "hold";
    case Action::kDiscard:
      return "discard";
    case Action::kNotify:
      return "notify";
  }
  return "?";
}

absl::string_view MetricName(Metric m) {
  switch (m) {
    case Metric::kMessages:
      return "messages";
    case Metric::kRecipients:
      return "recipients";
    case Metric::kBytes:
      return "bytes";
  }
  return "?";
}

absl::string_view LevelName(Level level) { return kLevelNames[static_cast<int>(level)]; }

bool ParseLevel(absl::string_view name, Level* level) {
  for (int i = 0; i < kNumLevels; ++i) {
    if (kLevelNames[i] == name) {
      *level = static_cast<Level>(i);
      return true;
    }
  }
  return false;
}

}  // namespace sluice
