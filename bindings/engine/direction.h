// DirectionRules: whose mail a message is. Outgoing mail is what local
// accounts, scripts and users send: the limits count it on its sender's
// path. Inbound mail comes from the internet for local users: only its
// client address counts it, and its MAIL FROM (anyone can write any) never
// names whose quota it spends or earns an exemption.
//
// A message is outgoing when, first that applies (DirectionReason):
//   kDoor            the door says so (a local-submission entry point:
//                    Postfix's non_smtpd_milters, Exim's acl_not_smtp);
//                    a door may also say kInbound
//   kSaslLogin       the client logged in (sasl_username)
//   kLocal           there is no client address (sendmail(1) on this host)
//   kTrustedNetwork  the client is in policy.trusted_network (default
//                    127.0.0.0/8 and ::1; IPv4-mapped IPv6 counts as IPv4)
//   kOutgoingPort    the client connected to a policy.outgoing_port
//   kOutgoingDoor    the door's name (Postfix policy_context, a milter's
//                    {daemon_name}) is a policy.outgoing_door
// and otherwise inbound (kUntrustedClient).
//
// Thread safety: immutable after construction; Classify and IsLocalDomain
// are thread-safe, and Classify allocates nothing.
#ifndef SLUICE_BINDINGS_ENGINE_DIRECTION_H_
#define SLUICE_BINDINGS_ENGINE_DIRECTION_H_

#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "bindings/engine/smtp_event.h"
#include "ratelimit/config.pb.h"
#include "ratelimit/ip.h"

namespace sluice {

class DirectionRules {
 public:
  struct Result {
    Direction direction = Direction::kInbound;
    DirectionReason reason = DirectionReason::kUntrustedClient;
    bool outgoing() const { return direction == Direction::kOutgoing; }
  };

  // REQUIRES: config passed ValidateConfig (the CIDRs parse).
  explicit DirectionRules(const config::Config& config);

  // The direction of the message `e` belongs to, and why.
  Result Classify(const SmtpEvent& e) const noexcept;

  // True if `domain` is one of the config's domain entities or a
  // policy.local_domain (case-insensitive).
  bool IsLocalDomain(absl::string_view domain) const;

  // True if `ip` is in the trusted networks.
  bool Trusted(absl::string_view ip) const noexcept;

 private:
  std::vector<Cidr> trusted_;
  std::vector<uint32_t> ports_;
  std::vector<std::string> doors_;
  absl::flat_hash_set<std::string> local_domains_;  // lower case
};

}  // namespace sluice

#endif  // SLUICE_BINDINGS_ENGINE_DIRECTION_H_
