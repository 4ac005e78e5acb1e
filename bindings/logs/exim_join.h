// EximJoin: Exim's main log joined on the message id into messages, for
// the dry-run replay. "<=" starts a message (sender, H=...[IP], A=driver:user
// for a login, U= with P=local for a local submission, S=size); each
// recipient's outcome ("=>", "->" delivered, "**" failed) counts it; the
// message is complete at "Completed". Timestamps: "2026-12-06 15:00:00"
// (Exim's default), with an optional zone (log_timezone) and "[pid]".
//
// Thread safety: an object is for one thread.
#ifndef SLUICE_BINDINGS_LOGS_EXIM_JOIN_H_
#define SLUICE_BINDINGS_LOGS_EXIM_JOIN_H_

#include <deque>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "bindings/logs/postfix_join.h"

namespace sluice {

class EximJoin {
 public:
  explicit EximJoin(size_t max_open = 100000) : max_open_(max_open) {}
  // Takes one raw line; returns true and fills *out when it completes a
  // message (its time is the "<=" line's).
  bool Add(absl::string_view line, absl::TimeZone tz, LoggedMessage* out);

 private:
  const size_t max_open_;
  absl::flat_hash_map<std::string, LoggedMessage> open_;
  std::deque<std::string> order_;
};

}  // namespace sluice

#endif  // SLUICE_BINDINGS_LOGS_EXIM_JOIN_H_
