#include "bindings/logs/exim_join.h"

#include <algorithm>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "bindings/logs/mail_log.h"
#include "ratelimit/ip.h"

namespace sluice {

bool EximJoin::Add(absl::string_view line, absl::TimeZone tz, LoggedMessage* out) {
  std::vector<absl::string_view> w = absl::StrSplit(line, ' ', absl::SkipEmpty());
  if (w.size() < 4) return false;
  absl::Time t;
  std::string err;
  if (!absl::ParseTime("%Y-%m-%d %H:%M:%S", absl::StrCat(w[0], " ", w[1]), tz, &t, &err)) {
    return false;
  }
  size_t i = 2;
  if (i < w.size() && (w[i][0] == '+' || w[i][0] == '-') && w[i].size() == 5) ++i;  // zone
  if (i < w.size() && w[i][0] == '[') ++i;                                          // [pid]
  if (i + 1 >= w.size()) return false;
  const absl::string_view id = w[i];
  const absl::string_view mark = w[i + 1];
  // Exim ids: "1tJabc-000123-AB" (4.97+) or "1tJabc-0001Ab-Cd".
  if (id.size() < 16 || id[6] != '-' || std::count(id.begin(), id.end(), '-') != 2) return false;
  const std::string key(id);
  const absl::string_view rest = line.substr(w[i + 1].data() + mark.size() - line.data());
  if (mark == "<=") {
    LoggedMessage m;
    m.time = t;
    m.queue_id = key;
    m.sender = i + 2 < w.size() && w[i + 2] != "<>" ? std::string(w[i + 2]) : std::string();
    const absl::string_view h = LogField(rest, "H=");
    const size_t open = rest.find(" [", rest.find("H="));
    if (!h.empty() && open != absl::string_view::npos) {
      const size_t close = rest.find(']', open);
      absl::string_view ip = rest.substr(open + 2, close - open - 2);
      const size_t colon = ip.rfind(':');  // "[192.0.2.7]:4711" is outside; IPv6 is inside
      IpAddress a;
      if (!ParseIp(ip, &a) && colon != absl::string_view::npos) ip = ip.substr(0, colon);
      if (ParseIp(ip, &a)) m.client_ip = std::string(ip);
    }
    const absl::string_view auth = LogField(rest, "A=");
    if (!auth.empty()) m.sasl_username = std::string(auth.substr(auth.find(':') + 1));
    m.local = h.empty() && LogField(rest, "P=") == "local";
    m.uid = std::string(LogField(rest, "U="));
    absl::SimpleAtoi(LogField(rest, "S="), &m.size);
    open_[key] = std::move(m);
    order_.push_back(key);
    while (open_.size() > max_open_ && !order_.empty()) {
      open_.erase(order_.front());
      order_.pop_front();
    }
    return false;
  }
  auto it = open_.find(key);
  if (it == open_.end()) return false;
  if (mark == "=>" || mark == "->" || mark == "**") {
    ++it->second.recipients;
    return false;
  }
  if (mark == "Completed") {
    *out = std::move(it->second);
    open_.erase(it);
    return true;
  }
  return false;
}

}  // namespace sluice
