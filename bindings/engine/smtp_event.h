// What a door reports to the policy engine and what it gets back: the SMTP
// stage, the event (SmtpEvent) and the engine's answer (Verdict). A door
// includes this header and policy_engine.h, not the library's internals.
//
// Thread safety: plain values.
#ifndef SLUICE_BINDINGS_ENGINE_SMTP_EVENT_H_
#define SLUICE_BINDINGS_ENGINE_SMTP_EVENT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "ratelimit/types.h"

namespace sluice {

struct Fingerprint;  // reputation/content/fingerprint.h
struct UrlHost;      // reputation/content/url_extractor.h

enum class Stage : uint8_t { kConnect, kHelo, kMail, kRcpt, kData, kEndOfMessage, kOther };
// Parses Postfix's protocol_state ("RCPT", "END-OF-MESSAGE", ...).
Stage ParseStage(absl::string_view protocol_state);

// Whose mail it is. Outgoing: what local accounts, scripts and users send
// (counted by the limits, keyed by its sender). Inbound: mail from the
// internet to local users (counted only by its client address; DNS lists
// judge it). kUnknown in an event: the door leaves it to the engine.
enum class Direction : uint8_t { kUnknown, kInbound, kOutgoing };
const char* DirectionName(Direction d);  // "unknown", "inbound", "outgoing"

// Why the engine gave a message its direction (first that applies, in this
// order; see bindings/engine/direction.h).
enum class DirectionReason : uint8_t {
  kDoor,             // the door said so (local submission: sendmail(1), ...)
  kSaslLogin,        // the client logged in (SASL)
  kLocal,            // no client address: submitted on this host
  kTrustedNetwork,   // the client is in policy.trusted_network
  kOutgoingPort,     // connected to a policy.outgoing_port
  kOutgoingDoor,     // a door named in policy.outgoing_door
  kUntrustedClient,  // none of the above: mail from the internet
};
// "door", "sasl_login", "local", "trusted_network", "outgoing_port",
// "outgoing_door", "untrusted_client".
const char* DirectionReasonName(DirectionReason r);

// What a door knows at one stage of an SMTP transaction. Strings are only
// read during the call.
struct SmtpEvent {
  Stage stage = Stage::kOther;
  absl::string_view transaction;  // ties one transaction's stages together
  absl::string_view client_address;
  absl::string_view helo;
  absl::string_view sasl_username;
  absl::string_view sender;
  absl::string_view recipient;
  absl::string_view script;  // X-PHP-Originating-Script or similar
  absl::string_view list;
  uint64_t size = 0;
  uint64_t recipient_count = 0;  // at END-OF-MESSAGE: recipients the MTA accepted (0: unknown)
  // Where the mail comes in. A door that knows (a local-submission entry:
  // Postfix's non_smtpd_milters, Exim's acl_not_smtp) sets `direction`;
  // else the engine decides from the login, the client address and these.
  Direction direction = Direction::kUnknown;
  uint32_t server_port = 0;                    // the port the client connected to (0: unknown)
  absl::string_view door_name;                 // Postfix's policy_context, a milter's {daemon_name}
  const Fingerprint* fingerprint = nullptr;    // the body's, when the adapter sees it
  const std::vector<UrlHost>* urls = nullptr;  // the body's URL hosts (UrlExtractor)
  // False: another door counts this message (the milter beside the policy
  // service on one Postfix): only what counts nothing is judged here
  // (blocks, local and DNS lists, scores, sender match); no limit is
  // charged and no detector is fed.
  bool count = true;
};

// The engine's answer for one stage: what to do and, if something
// tripped, what, whose and why. A value (owns its strings).
struct Verdict {
  Action action = Action::kAccept;
  bool shadow = false;  // a shadow or notify rule tripped; mail passes
  Action shadow_action = Action::kAccept;
  // What tripped: "limit" or an abuse detector's name; empty if nothing.
  std::string source;
  Level level = Level::kServer;  // for "limit"
  std::string entity;            // tripped entity, IP, user or sender
  Metric metric = Metric::kMessages;
  int64_t window_seconds = 0;
  uint64_t limit = 0;
  uint64_t usage = 0;
  absl::Duration retry_after = absl::ZeroDuration();
  int smtp_code = 250;
  std::string enhanced_status = "2.0.0";
  std::string text;
  std::string identity;                       // whose quota the message used
  Direction direction = Direction::kUnknown;  // as the engine classified the message
  DirectionReason direction_reason = DirectionReason::kUntrustedClient;
  bool admitted() const { return action == Action::kAccept || action == Action::kNotify; }
  bool tripped() const { return !source.empty(); }
};

// What the engine tells its listeners (PolicyEngine::AddNoticeSink): a
// limit or a detector tripped (once per entity, rule and window), or a DNS
// list was suspended. For notifications, exec hooks and C callbacks.
struct Notice {
  absl::Time time;
  std::string source;                 // "limit", a detector's name, "dnsbl"
  Level level = Level::kServer;       // for "limit"
  std::string entity;                 // mailbox, domain, IP, user; a list's zone
  Metric metric = Metric::kMessages;  // for "limit"
  int64_t window_seconds = 0;         // for "limit"
  uint64_t limit = 0;
  uint64_t usage = 0;
  Action action = Action::kAccept;  // the rule's action
  bool shadow = false;              // the rule is in shadow mode
  std::string text;                 // one line for a person
};

}  // namespace sluice

#endif  // SLUICE_BINDINGS_ENGINE_SMTP_EVENT_H_
