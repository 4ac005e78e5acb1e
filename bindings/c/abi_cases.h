// The calls the C ABI's cost is measured on, through the C++ API and
// through sluice.h, shared by sluice_c_benchmark (wall time) and
// abi_cost_main (instruction counts): a 4-level check-and-charge
// (server, subscription, domain, mailbox; limits that never trip) and a
// whole RCPT stage (trusted client, no transaction), 1,000 senders in turn.
//
// Thread safety: one AbiCases per thread.
#ifndef SLUICE_BINDINGS_C_ABI_CASES_H_
#define SLUICE_BINDINGS_C_ABI_CASES_H_

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "bindings/c/sluice.h"
#include "bindings/engine/policy_engine.h"
#include "ratelimit/config.h"
#include "ratelimit/limiter.h"

namespace sluice {

class AbiCases {
 public:
  AbiCases() {
    auto c = ParseConfigText(kConfig);
    limiter_ = std::move(*Limiter::Create(*c, kT0));
    engine_ = std::move(*PolicyEngine::Create(*c, kT0, PolicyEngine::Options()));
    sluice_limiter_open(kConfig, std::strlen(kConfig), nullptr, &c_limiter_, nullptr);
    sluice_engine_open(kConfig, std::strlen(kConfig), nullptr, &c_engine_, nullptr);
    for (int i = 0; i < 1000; ++i) senders_.push_back(absl::StrCat("user", i, "@acme.example"));
    verdict_.struct_size = sizeof(verdict_);
  }
  ~AbiCases() {
    sluice_limiter_close(c_limiter_);
    sluice_engine_close(c_engine_);
  }

  // One call each; true if admitted. `i` picks the sender.
  bool CxxCheckAndCharge(size_t i) {
    Request r;
    r.sender = senders_[i % senders_.size()];
    return limiter_->CheckAndCharge(r, kT0).admitted();
  }
  bool CAbiCheckAndCharge(size_t i) {
    sluice_request_t r{};
    r.struct_size = sizeof(r);
    r.messages = r.recipients = 1;
    const std::string& s = senders_[i % senders_.size()];
    r.sender = s.data();
    r.sender_len = s.size();
    sluice_limiter_check_and_charge(c_limiter_, &r, kT0Ms, &verdict_);
    return verdict_.admitted != 0;
  }
  bool CxxRcpt(size_t i) {
    SmtpEvent ev;
    ev.stage = Stage::kRcpt;
    ev.client_address = "192.0.2.10";
    ev.sender = senders_[i % senders_.size()];
    ev.recipient = "r@remote.example";
    return engine_->Evaluate(ev, kT0).admitted();
  }
  bool CAbiRcpt(size_t i) {
    sluice_event_t ev{};
    ev.struct_size = sizeof(ev);
    ev.stage = SLUICE_STAGE_RCPT;
    ev.client_address = "192.0.2.10";
    ev.client_address_len = 10;
    const std::string& s = senders_[i % senders_.size()];
    ev.sender = s.data();
    ev.sender_len = s.size();
    ev.recipient = "r@remote.example";
    ev.recipient_len = 16;
    sluice_engine_evaluate(c_engine_, &ev, kT0Ms, &verdict_);
    return verdict_.admitted != 0;
  }

 private:
  static constexpr char kConfig[] =
      "level { name: \"server\" limit { window: \"1h\" max: 100000000000 } }\n"
      "level { name: \"subscription\" limit { window: \"1h\" max: 100000000000 } }\n"
      "level { name: \"domain\" limit { window: \"1h\" max: 100000000000 } }\n"
      "level { name: \"mailbox\" limit { window: \"1h\" max: 100000000000 } }\n"
      "entity { level: \"subscription\" name: \"acme\" }\n"
      "entity { level: \"domain\" name: \"acme.example\" parent: \"acme\" }\n"
      "policy { trusted_network: \"192.0.2.0/24\" }\n";
  static constexpr int64_t kT0Ms = 1767225600000;
  const absl::Time kT0 = absl::FromUnixMillis(kT0Ms);

  std::unique_ptr<Limiter> limiter_;
  std::unique_ptr<PolicyEngine> engine_;
  sluice_limiter_t* c_limiter_ = nullptr;
  sluice_engine_t* c_engine_ = nullptr;
  std::vector<std::string> senders_;
  sluice_verdict_t verdict_{};
};

}  // namespace sluice

#endif  // SLUICE_BINDINGS_C_ABI_CASES_H_
