// libFuzzer target: report data (the admin socket's JSON, or a file given
// to `sluice report --from-json`) on any bytes, drawn as the report page.
// Invariants: data that parses always makes a whole page, its details
// elements balanced, and nothing from the data becomes markup that runs.
#include <cstddef>
#include <cstdint>
#include <string>

#include "bindings/report/html_report.h"
#include "google/protobuf/util/json_util.h"
#include "ratelimit/config.pb.h"

namespace {
int CountOf(const std::string& s, const char* what) {
  int n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  sluice::config::ActivityReport r;
  google::protobuf::util::JsonParseOptions o;
  o.ignore_unknown_fields = true;
  if (!google::protobuf::util::JsonStringToMessage(text, &r, o).ok()) return 0;
  if (r.hours() < 0 || r.hours() > 24 * 366) return 0;  // refused by the CLI
  const std::string page = sluice::RenderHtmlReport(r);
  if (page.size() < 7 || page.compare(page.size() - 8, 8, "</html>\n") != 0) __builtin_trap();
  if (CountOf(page, "<details") != CountOf(page, "</details>")) __builtin_trap();
  if (page.find("<script") != std::string::npos || page.find("<img") != std::string::npos) {
    __builtin_trap();
  }
  return 0;
}
