// libFuzzer target: DNS answer handling on any bytes (what a hostile or
// broken DNS server could send). Invariants: no crash, and a parsed answer
// holds no more records than the message has room for.
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "reputation/dns/dns_answer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  sluice::DnsAnswer a;
  absl::string_view m(reinterpret_cast<const char*>(data), size);
  if (sluice::ParseDnsAnswer(m, &a).ok()) {
    // Every A record takes at least 2 (name) + 10 (header) + 4 bytes.
    if (a.a.size() * 16 > size) __builtin_trap();
    if (a.negative_ttl > 0x7FFFFFFF) __builtin_trap();
    if (a.txt.size() > 16) __builtin_trap();
  }
  return 0;
}
