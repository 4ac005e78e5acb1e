// Admin commands of sluice-policyd, served on a local socket (and used by
// the `sluice` CLI). One command per connection, one line:
//
//   check-config [FILE]       parse and validate a config (default: the
//                             daemon's own file)
//   explain ENTITY            the limits resolved along ENTITY's path and
//                             their usage (ENTITY: a mailbox, a domain, or
//                             LEVEL:NAME such as subscription:acme)
//   explain NAME=VALUE...     what the engine makes of a message given by
//                             Postfix's attributes (client_address,
//                             sasl_username, sender, recipient,
//                             server_port, policy_context): its direction
//                             and why, whose quota, and the rules on the
//                             path it would be charged to (counts nothing)
//   usage ENTITY              the counters of the entity itself
//   top LEVEL [messages|recipients|bytes] [WINDOW] [N]
//                             the top senders of a level ("Statistics Out")
//   report [N]                what the daemon remembers of its traffic
//                             (config::ActivityReport as JSON): messages
//                             per hour of each level's N heaviest
//                             entities (default 50) with their rules, and
//                             the trips; `sluice report` draws it
//   reset ENTITY              zero an entity's counters and lift abuse
//                             blocks of that IP or user (manual unblock)
//   reload                    reread the config file (a bad one is refused)
//   metrics                   the Prometheus text
//
// The reply's first line is "OK" or "ERR <reason>"; the body follows.
//
// Thread safety: HandleAdminCommand is thread-safe (the engine is).
#ifndef SLUICE_BINDINGS_POSTFIX_ADMIN_H_
#define SLUICE_BINDINGS_POSTFIX_ADMIN_H_

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "bindings/engine/policy_engine.h"

namespace sluice {

struct AdminContext {
  PolicyEngine* engine = nullptr;
  std::string config_path;               // the daemon's config file (may be empty)
  std::function<absl::Status()> reload;  // rereads config_path
  std::function<std::string()> metrics;  // Prometheus text
};

std::string HandleAdminCommand(const AdminContext& ctx, absl::string_view line, absl::Time now);

}  // namespace sluice

#endif  // SLUICE_BINDINGS_POSTFIX_ADMIN_H_
