// PostfixJoin: Postfix's log lines joined on the queue id into messages,
// for the dry-run replay. A message is complete at qmgr's "from=<...>,
// size=N, nrcpt=N" line; what came before for its queue id says who sent
// it: smtpd's "client=NAME[IP][, sasl_method=M, sasl_username=U]" (SMTP,
// maybe logged in) or pickup's "uid=N from=<...>" (sendmail(1): a local
// submission). Queue ids forgotten at "removed" and, bounded, oldest first.
//
// Thread safety: an object is for one thread.
#ifndef SLUICE_BINDINGS_LOGS_POSTFIX_JOIN_H_
#define SLUICE_BINDINGS_LOGS_POSTFIX_JOIN_H_

#include <cstdint>
#include <deque>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "bindings/logs/mail_log.h"

namespace sluice {

struct LoggedMessage {
  absl::Time time;  // qmgr's line
  std::string queue_id;
  std::string client_ip;  // empty for a local submission
  std::string sasl_username;
  bool local = false;  // pickup: sendmail(1)
  std::string uid;     // pickup's uid
  std::string sender;
  uint64_t size = 0;
  uint64_t recipients = 0;
};

class PostfixJoin {
 public:
  explicit PostfixJoin(size_t max_open = 100000) : max_open_(max_open) {}
  // Takes one split line; returns true and fills *out when it completes a
  // message.
  bool Add(const LogLine& line, LoggedMessage* out);

 private:
  struct Open {
    std::string client_ip, sasl_username, uid;
    bool local = false;
  };
  const size_t max_open_;
  absl::flat_hash_map<std::string, Open> open_;
  std::deque<std::string> order_;
};

}  // namespace sluice

#endif  // SLUICE_BINDINGS_LOGS_POSTFIX_JOIN_H_
