// The C ABI's cost per call: the same work through the C++ API and through
// sluice.h, in one run. Check-and-charge on a 4-level path (server,
// subscription, domain, mailbox; limits that never trip), 1,000 senders in
// turn; and a whole RCPT stage through the engine (trusted client, no
// transaction: one check-and-charge plus the engine's work).
//
// Run: bazel run --config=opt //bindings/c:sluice_c_benchmark
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "benchmark/benchmark.h"
#include "bindings/c/sluice.h"
#include "bindings/engine/policy_engine.h"
#include "ratelimit/config.h"
#include "ratelimit/limiter.h"

namespace {

constexpr char kConfig[] = R"pb(
  level {
    name: "server"
    limit { window: "1h" max: 100000000000 }
  }
  level {
    name: "subscription"
    limit { window: "1h" max: 100000000000 }
  }
  level {
    name: "domain"
    limit { window: "1h" max: 100000000000 }
  }
  level {
    name: "mailbox"
    limit { window: "1h" max: 100000000000 }
  }
  entity { level: "subscription" name: "acme" }
  entity { level: "domain" name: "acme.example" parent: "acme" }
  policy { trusted_network: "192.0.2.0/24" }
)pb";
const absl::Time kT0 = absl::FromUnixSeconds(1767225600);
constexpr int64_t kT0Ms = 1767225600000;

const std::vector<std::string>& Senders() {
  static const auto* s = [] {
    auto* v = new std::vector<std::string>;
    for (int i = 0; i < 1000; ++i) v->push_back(absl::StrCat("user", i, "@acme.example"));
    return v;
  }();
  return *s;
}

void BM_CxxCheckAndCharge(benchmark::State& state) {
  auto c = sluice::ParseConfigText(kConfig);
  auto l = sluice::Limiter::Create(*c, kT0);
  const auto& senders = Senders();
  size_t i = 0;
  for (auto _ : state) {
    sluice::Request r;
    r.sender = senders[i++ % senders.size()];
    benchmark::DoNotOptimize(l.value()->CheckAndCharge(r, kT0));
  }
}
BENCHMARK(BM_CxxCheckAndCharge);

void BM_CAbiCheckAndCharge(benchmark::State& state) {
  sluice_limiter_t* l = nullptr;
  sluice_limiter_open(kConfig, std::strlen(kConfig), nullptr, &l, nullptr);
  const auto& senders = Senders();
  size_t i = 0;
  sluice_verdict_t v{};
  v.struct_size = sizeof(v);
  for (auto _ : state) {
    sluice_request_t r{};
    r.struct_size = sizeof(r);
    r.messages = r.recipients = 1;
    const std::string& s = senders[i++ % senders.size()];
    r.sender = s.data();
    r.sender_len = s.size();
    benchmark::DoNotOptimize(sluice_limiter_check_and_charge(l, &r, kT0Ms, &v));
  }
  sluice_limiter_close(l);
}
BENCHMARK(BM_CAbiCheckAndCharge);

void BM_CxxEngineRcpt(benchmark::State& state) {
  auto c = sluice::ParseConfigText(kConfig);
  auto e = sluice::PolicyEngine::Create(*c, kT0, sluice::PolicyEngine::Options());
  const auto& senders = Senders();
  size_t i = 0;
  for (auto _ : state) {
    sluice::SmtpEvent ev;
    ev.stage = sluice::Stage::kRcpt;
    ev.client_address = "192.0.2.10";
    ev.sender = senders[i++ % senders.size()];
    ev.recipient = "r@remote.example";
    benchmark::DoNotOptimize(e.value()->Evaluate(ev, kT0));
  }
}
BENCHMARK(BM_CxxEngineRcpt);

void BM_CAbiEngineRcpt(benchmark::State& state) {
  sluice_engine_t* e = nullptr;
  sluice_engine_open(kConfig, std::strlen(kConfig), nullptr, &e, nullptr);
  const auto& senders = Senders();
  size_t i = 0;
  sluice_verdict_t v{};
  v.struct_size = sizeof(v);
  for (auto _ : state) {
    sluice_event_t ev{};
    ev.struct_size = sizeof(ev);
    ev.stage = SLUICE_STAGE_RCPT;
    ev.client_address = "192.0.2.10";
    ev.client_address_len = 10;
    const std::string& s = senders[i++ % senders.size()];
    ev.sender = s.data();
    ev.sender_len = s.size();
    ev.recipient = "r@remote.example";
    ev.recipient_len = 16;
    benchmark::DoNotOptimize(sluice_engine_evaluate(e, &ev, kT0Ms, &v));
  }
  sluice_engine_close(e);
}
BENCHMARK(BM_CAbiEngineRcpt);

}  // namespace

BENCHMARK_MAIN();
