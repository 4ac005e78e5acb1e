// libFuzzer target: the Postfix policy request parser and the policy engine
// behind it, on any bytes as they would arrive on a connection. Requests
// are cut as the daemon cuts them; every one that parses is evaluated by a
// PolicyEngine on the embedded default config (in memory, fixed time).
// Invariants: a cut never runs past the input, and a reply action is one
// line.
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "bindings/engine/policy_engine.h"
#include "bindings/postfix/policy_protocol.h"
#include "ratelimit/config.h"
#include "ratelimit/limiter.h"
#include "reputation/abuse/abuse_guard.h"
#include "reputation/dns/dns_cache.h"
#include "reputation/dns/dnsbl.h"
#include "reputation/score_board.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static sluice::PolicyEngine* engine = [] {
    auto c = sluice::ParseConfigText(sluice::DefaultConfigText());
    return sluice::PolicyEngine::Create(*c, absl::FromUnixSeconds(1700000000),
                                        sluice::PolicyEngine::Options())
        ->release();
  }();
  static int64_t tick = 0;
  sluice::PolicyLimits limits;
  limits.max_line = 512;
  limits.max_request = 2048;
  absl::string_view buf(reinterpret_cast<const char*>(data), size);
  while (!buf.empty()) {
    auto end = sluice::FindPolicyRequest(buf, limits);
    if (!end.ok() || *end == 0) break;  // the daemon closes / waits
    if (*end > buf.size()) __builtin_trap();
    sluice::PolicyRequest req;
    if (sluice::ParsePolicyRequest(buf.substr(0, *end), limits, &req).ok()) {
      sluice::Verdict v = engine->Evaluate(sluice::ToSmtpEvent(req),
                                           absl::FromUnixSeconds(1700000000 + tick++ / 64));
      std::string action = engine->PostfixAction(v);
      if (action.find('\n') != std::string::npos) __builtin_trap();
    }
    buf.remove_prefix(*end);
  }
  if (tick % 4096 == 0) engine->Maintain(absl::FromUnixSeconds(1700000000 + tick / 64));
  return 0;
}
