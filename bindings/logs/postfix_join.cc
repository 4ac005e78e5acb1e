#include "bindings/logs/postfix_join.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "ratelimit/ip.h"

namespace sluice {
namespace {

// "4ABC123: rest" -> the queue id (letters and digits) and the rest.
bool QueueId(absl::string_view m, absl::string_view* id, absl::string_view* rest) {
  const size_t colon = m.find(": ");
  if (colon == absl::string_view::npos || colon == 0 || colon > 32) return false;
  for (char c : m.substr(0, colon)) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c))) return false;
  }
  if (m.substr(0, colon) == "NOQUEUE") return false;
  *id = m.substr(0, colon);
  *rest = m.substr(colon + 2);
  return true;
}

}  // namespace

bool PostfixJoin::Add(const LogLine& line, LoggedMessage* out) {
  if (!absl::StartsWith(line.program, "postfix")) return false;
  absl::string_view id, rest;
  if (!QueueId(line.message, &id, &rest)) return false;
  const std::string key(id);
  if (absl::EndsWith(line.program, "/smtpd") && absl::StartsWith(rest, "client=")) {
    Open& o = open_[key];
    const size_t open = rest.find('[');
    const size_t close = rest.find(']', open == absl::string_view::npos ? 0 : open);
    if (open != absl::string_view::npos && close != absl::string_view::npos) {
      IpAddress a;
      absl::string_view ip = rest.substr(open + 1, close - open - 1);
      if (ParseIp(ip, &a)) o.client_ip = std::string(ip);
    }
    o.sasl_username = std::string(LogField(rest, "sasl_username="));
    order_.push_back(key);
  } else if (absl::EndsWith(line.program, "/pickup") && absl::StartsWith(rest, "uid=")) {
    Open& o = open_[key];
    o.local = true;
    o.uid = std::string(LogField(rest, "uid="));
    order_.push_back(key);
  } else if (absl::EndsWith(line.program, "/qmgr") && absl::StartsWith(rest, "from=<")) {
    auto it = open_.find(key);
    if (it == open_.end()) return false;  // its start is not in this log
    *out = LoggedMessage();
    out->time = line.time;
    out->queue_id = key;
    out->client_ip = it->second.client_ip;
    out->sasl_username = it->second.sasl_username;
    out->local = it->second.local;
    out->uid = it->second.uid;
    out->sender = std::string(LogField(rest, "from="));
    absl::SimpleAtoi(LogField(rest, "size="), &out->size);
    absl::SimpleAtoi(LogField(rest, "nrcpt="), &out->recipients);
    open_.erase(it);  // a later qmgr line (a deferred retry) is not a new message
    return true;
  } else if (absl::EndsWith(line.program, "/qmgr") && rest == "removed") {
    open_.erase(key);
  }
  while (open_.size() > max_open_ && !order_.empty()) {
    open_.erase(order_.front());
    order_.pop_front();
  }
  if (order_.size() > 4 * max_open_ + 16) {  // ids already completed: drop them from the queue
    std::deque<std::string> live;
    for (auto& k : order_) {
      if (open_.contains(k)) live.push_back(std::move(k));
    }
    order_.swap(live);
  }
  return false;
}

}  // namespace sluice
