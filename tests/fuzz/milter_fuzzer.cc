// libFuzzer target: the milter's entry points (MilterSession: connect,
// HELO, MAIL, RCPT, headers, body chunks, end, abort, close) in any order
// with any bytes, on a PolicyEngine with a config that has every level,
// the burst detectors and a low limit (in memory, fixed time). The input
// is a list of steps: one byte picks the stage, one byte the length, then
// that many bytes of argument.
// Invariants: a reply text is one line; after the session closes no
// transaction stays open (nothing reserved is kept).
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "bindings/engine/policy_engine.h"
#include "bindings/milter/milter_session.h"
#include "ratelimit/config.h"
#include "ratelimit/limiter.h"

namespace {

constexpr char kConfig[] = R"pb(
  level {
    name: "mailbox"
    limit { window: "1h" max: 5 }
  }
  level {
    name: "script"
    limit { window: "1h" max: 2 }
  }
  level {
    name: "list"
    limit { window: "1h" max: 2 }
  }
  level {
    name: "client_ip"
    limit { window: "1h" max: 50 }
  }
  abuse { near_duplicate { threshold: 3 window: "10m" } }
  policy { trusted_network: "192.0.2.0/24" }
)pb";

void CheckAnswer(const sluice::MilterSession::Answer& a) {
  if (a.text.find_first_of("\r\n") != std::string::npos) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static sluice::PolicyEngine* engine = [] {
    auto c = sluice::ParseConfigText(kConfig);
    return sluice::PolicyEngine::Create(*c, absl::FromUnixSeconds(1700000000),
                                        sluice::PolicyEngine::Options())
        ->release();
  }();
  static int64_t tick = 0;
  const absl::Time now = absl::FromUnixSeconds(1700000000 + tick++ / 16);
  sluice::MilterSession s(engine, {});
  size_t i = 0;
  while (i + 2 <= size) {
    const uint8_t op = data[i] % 11;
    const size_t len = std::min<size_t>(data[i + 1], size - i - 2);
    const absl::string_view arg(reinterpret_cast<const char*>(data + i + 2), len);
    i += 2 + len;
    const size_t cut = arg.find(':');
    const absl::string_view head = arg.substr(0, cut);
    const absl::string_view tail = cut == absl::string_view::npos ? "" : arg.substr(cut + 1);
    switch (op) {
      case 0:
        CheckAnswer(s.Connect(head, tail, "smtpd", 25, now));
        break;
      case 1:
        CheckAnswer(s.Helo(arg, now));
        break;
      case 2:
        CheckAnswer(s.Mail(head, "", tail, "Postfix 3.7.11", now));
        break;
      case 3:
        CheckAnswer(s.Mail(head, tail, "", "Postfix 3.7.11", now));
        break;
      case 4:
        CheckAnswer(s.Rcpt(arg, now));
        break;
      case 5:
        s.Header(head, tail);
        break;
      case 6:
        s.EndOfHeaders();
        break;
      case 7:
        s.Body(arg);
        break;
      case 8:
        CheckAnswer(s.End(arg, now));
        break;
      case 9:
        s.Abort(now);
        break;
      default:
        s.Close(now);
        break;
    }
  }
  s.Close(now);
  if (engine->limiter().open_transactions() != 0) __builtin_trap();
  return 0;
}
