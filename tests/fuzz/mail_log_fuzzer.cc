// libFuzzer target: MTA log lines (split, classified) on any bytes.
// Invariants: the parts of a split line are views inside it; an event
// names a client address that parses, and at least one attempt.
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "bindings/logs/mail_log.h"
#include "ratelimit/ip.h"

namespace {
bool Inside(absl::string_view part, absl::string_view whole) {
  return part.empty() ||
         (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view line(reinterpret_cast<const char*>(data), size);
  sluice::LogLine l;
  const absl::Time ref = absl::FromUnixSeconds(1780000000);
  if (!sluice::SplitLogLine(line, ref, absl::UTCTimeZone(), &l)) return 0;
  if (!Inside(l.host, line) || !Inside(l.program, line) || !Inside(l.message, line)) {
    __builtin_trap();
  }
  const sluice::MailLogEvent e = sluice::ClassifyMailLog(l);
  if (e.kind != sluice::MailLogEvent::Kind::kNone) {
    sluice::IpAddress a;
    if (!sluice::ParseIp(e.client_ip, &a) || e.attempts < 1) __builtin_trap();
  }
  return 0;
}
