// libFuzzer target: the config parser and validator must never crash, hang
// or leak on any input, and an accepted config must build a Limiter.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "ratelimit/config.h"
#include "ratelimit/limiter.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;
  absl::string_view text(reinterpret_cast<const char*>(data), size);
  auto c = sluice::ParseConfigText(text, "fuzz.conf");
  if (!c.ok()) {
    // Every error names the file and a position or field.
    if (c.status().message().find("fuzz.conf") != 0) __builtin_trap();
    return 0;
  }
  c->clear_table();  // never open files named by fuzz input
  sluice::Limiter::Options o;
  o.table.capacity = 1024;
  auto l = sluice::Limiter::Create(*c, absl::FromUnixSeconds(1767225600), o);
  if (!l.ok()) return 0;
  sluice::Request r;
  r.sender = "user@acme.example";
  r.client_ip = "192.0.2.1";
  (*l)->CheckAndCharge(r, absl::FromUnixSeconds(1767225600));
  return 0;
}
