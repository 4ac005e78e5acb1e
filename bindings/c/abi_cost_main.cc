// Runs exactly N calls of one variant, for instruction counts under
// callgrind (deterministic, unlike wall time on a shared VM): the C ABI's
// cost per call is the difference between two runs' counts over the
// difference in N, C ABI minus C++.
//
//   abi_cost_main VARIANT N     VARIANT: cxx | cabi | cxx_rcpt | cabi_rcpt
// Run: bash bindings/c/abi_cost.sh
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "bindings/c/sluice.h"
#include "bindings/engine/policy_engine.h"
#include "ratelimit/config.h"
#include "ratelimit/limiter.h"

namespace {

constexpr char kConfig[] =
    "level { name: \"server\" limit { window: \"1h\" max: 100000000000 } }\n"
    "level { name: \"subscription\" limit { window: \"1h\" max: 100000000000 } }\n"
    "level { name: \"domain\" limit { window: \"1h\" max: 100000000000 } }\n"
    "level { name: \"mailbox\" limit { window: \"1h\" max: 100000000000 } }\n"
    "entity { level: \"subscription\" name: \"acme\" }\n"
    "entity { level: \"domain\" name: \"acme.example\" parent: \"acme\" }\n"
    "policy { trusted_network: \"192.0.2.0/24\" }\n";
const absl::Time kT0 = absl::FromUnixSeconds(1767225600);
constexpr int64_t kT0Ms = 1767225600000;

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: abi_cost_main cxx|cabi|cxx_rcpt|cabi_rcpt N\n");
    return 2;
  }
  const std::string variant = argv[1];
  const long n = std::atol(argv[2]);
  std::vector<std::string> senders;
  for (int i = 0; i < 1000; ++i) senders.push_back(absl::StrCat("user", i, "@acme.example"));
  long admitted = 0;
  if (variant == "cxx" || variant == "cxx_rcpt") {
    auto c = sluice::ParseConfigText(kConfig);
    auto l = sluice::Limiter::Create(*c, kT0);
    auto e = sluice::PolicyEngine::Create(*c, kT0, sluice::PolicyEngine::Options());
    for (long i = 0; i < n; ++i) {
      const std::string& s = senders[i % 1000];
      if (variant == "cxx") {
        sluice::Request r;
        r.sender = s;
        admitted += (*l)->CheckAndCharge(r, kT0).admitted();
      } else {
        sluice::SmtpEvent ev;
        ev.stage = sluice::Stage::kRcpt;
        ev.client_address = "192.0.2.10";
        ev.sender = s;
        ev.recipient = "r@remote.example";
        admitted += (*e)->Evaluate(ev, kT0).admitted();
      }
    }
  } else {
    sluice_limiter_t* l = nullptr;
    sluice_engine_t* e = nullptr;
    sluice_limiter_open(kConfig, std::strlen(kConfig), nullptr, &l, nullptr);
    sluice_engine_open(kConfig, std::strlen(kConfig), nullptr, &e, nullptr);
    sluice_verdict_t v{};
    v.struct_size = sizeof(v);
    for (long i = 0; i < n; ++i) {
      const std::string& s = senders[i % 1000];
      if (variant == "cabi") {
        sluice_request_t r{};
        r.struct_size = sizeof(r);
        r.messages = r.recipients = 1;
        r.sender = s.data();
        r.sender_len = s.size();
        sluice_limiter_check_and_charge(l, &r, kT0Ms, &v);
      } else {
        sluice_event_t ev{};
        ev.struct_size = sizeof(ev);
        ev.stage = SLUICE_STAGE_RCPT;
        ev.client_address = "192.0.2.10";
        ev.client_address_len = 10;
        ev.sender = s.data();
        ev.sender_len = s.size();
        ev.recipient = "r@remote.example";
        ev.recipient_len = 16;
        sluice_engine_evaluate(e, &ev, kT0Ms, &v);
      }
      admitted += v.admitted;
    }
    sluice_limiter_close(l);
    sluice_engine_close(e);
  }
  std::printf("%s %ld calls, %ld admitted\n", variant.c_str(), n, admitted);
  return admitted == n ? 0 : 1;
}
