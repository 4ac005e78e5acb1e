// libFuzzer target: URL host extraction on any bytes. Invariants: at most
// max_hosts hosts, all distinct, each already normal (normalising it again
// gives itself).
#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/strings/string_view.h"
#include "reputation/content/url_extractor.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  sluice::UrlExtractor::Options o;
  o.max_hosts = 8;
  sluice::UrlExtractor x(o);
  std::vector<sluice::UrlHost> hosts;
  x.Extract(absl::string_view(reinterpret_cast<const char*>(data), size), &hosts);
  if (hosts.size() > o.max_hosts) __builtin_trap();
  for (size_t i = 0; i < hosts.size(); ++i) {
    for (size_t j = i + 1; j < hosts.size(); ++j) {
      if (hosts[i] == hosts[j]) __builtin_trap();
    }
    sluice::UrlHost again;
    if (!sluice::UrlExtractor::NormalizeHost(hosts[i].host, &again) || !(again == hosts[i])) {
      __builtin_trap();
    }
  }
  return 0;
}
