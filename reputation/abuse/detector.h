// Detector: every abuse sign sluice recognises, one name for the session
// signals that find them, the guard that responds to them, events,
// metrics and the config (AbuseGuard::DetectorName gives the config name).
//
// Thread safety: an enum.
#ifndef SLUICE_REPUTATION_ABUSE_DETECTOR_H_
#define SLUICE_REPUTATION_ABUSE_DETECTOR_H_

#include <cstdint>

namespace sluice {

enum class Detector : uint8_t {
  kNone,
  kBlocked,  // refused because an earlier trip blocked the IP or user
  kSameSize,
  kNearDuplicate,
  kCampaign,
  kAuthFailuresPerIp,
  kAuthFailuresPerUser,
  kUnknownRecipientsPerIp,
  kIpsPerUser,
  kNetworksPerUser,
  kNewNetwork,
  kConcurrentConnectionsPerIp,
  kConnectionsPerIp,
  kSenderMismatch,
};
inline constexpr int kNumDetectors = 14;

}  // namespace sluice

#endif  // SLUICE_REPUTATION_ABUSE_DETECTOR_H_
