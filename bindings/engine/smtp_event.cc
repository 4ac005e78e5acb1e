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

}  // namespace sluice
