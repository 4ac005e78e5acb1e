#include "ratelimit/report.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "google/protobuf/util/json_util.h"

namespace sluice {

std::string ToJson(const google::protobuf::Message& report) {
  std::string out;
  google::protobuf::util::JsonPrintOptions opt;
  opt.preserve_proto_field_names = true;
  opt.always_print_primitive_fields = false;
  (void)google::protobuf::util::MessageToJsonString(report, &out, opt);
  return out;
}

std::string FormatTopTable(const config::TopReport& r) {
  std::string metric = config::Metric_Name(r.metric());
  for (auto& c : metric) c = static_cast<char>(std::tolower(c));
  std::string out = absl::StrFormat("top %s by %s per %s\n", r.level(), metric,
                                    r.window().empty() ? "-" : r.window());
  absl::StrAppend(
      &out, absl::StrFormat("%4s  %-40s %10s %10s %6s\n", "#", r.level(), metric, "limit", "used"));
  int rank = 0;
  for (const auto& e : r.entry()) {
    double pct = e.limit() > 0 ? 100.0 * static_cast<double>(e.usage()) / e.limit() : 0;
    absl::StrAppend(&out, absl::StrFormat("%4d  %-40s %10d %10d %5.0f%%\n", ++rank, e.entity(),
                                          e.usage(), e.limit(), pct));
  }
  if (r.entry_size() == 0) absl::StrAppend(&out, "      (no usage)\n");
  return out;
}

bool ParseEntityName(absl::string_view text, Level* level, std::string* name) {
  if (text.empty()) return false;
  const bool at = text.find('@') != absl::string_view::npos;
  size_t colon = text.find(':');
  if (!at && colon != absl::string_view::npos && ParseLevel(text.substr(0, colon), level)) {
    *name = std::string(text.substr(colon + 1));
    return !name->empty();
  }
  bool ip_like = colon != absl::string_view::npos;
  if (!ip_like) {
    ip_like = true;
    for (char ch : text) ip_like &= absl::ascii_isdigit(ch) || ch == '.';
  }
  *level = at ? Level::kMailbox : ip_like ? Level::kClientIp : Level::kDomain;
  *name = std::string(text);
  return true;
}

}  // namespace sluice
