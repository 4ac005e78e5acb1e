#include "bindings/engine/smtp_event.h"

namespace sluice {

Stage ParseStage(absl::string_view s) {
  if (s == "RCPT") return Stage::kRcpt;
  if (s == "END-OF-MESSAGE") return Stage::kEndOfMessage;
  if (s == "MAIL") return Stage::kMail;
  if (s == "DATA") return Stage::kData;
  if (s == "CONNECT") return Stage::kConnect;
  if (s == "EHLO" || s == "HELO") return Stage::kHelo;
  return Stage::kOther;
}

const char* DirectionName(Direction d) {
  switch (d) {
    case Direction::kInbound:
      return "inbound";
    case Direction::kOutgoing:
      return "outgoing";
    default:
      return "unknown";
  }
}

const char* DirectionReasonName(DirectionReason r) {
  switch (r) {
    case DirectionReason::kDoor:
      return "door";
    case DirectionReason::kSaslLogin:
      return "sasl_login";
    case DirectionReason::kLocal:
      return "local";
    case DirectionReason::kTrustedNetwork:
      return "trusted_network";
    case DirectionReason::kOutgoingPort:
      return "outgoing_port";
    case DirectionReason::kOutgoingDoor:
      return "outgoing_door";
    default:
      return "untrusted_client";
  }
}

}  // namespace sluice
