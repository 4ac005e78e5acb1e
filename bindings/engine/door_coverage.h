// Door coverage: which configured rules a door can feed. A door sees only
// part of a message (the Postfix policy service sees the envelope, never
// headers or bodies, nor failed AUTH); a rule nobody feeds never trips, so
// an administrator must hear about it at start and from check-config.
//
// Thread safety: pure functions; thread-safe.
#ifndef SLUICE_BINDINGS_ENGINE_DOOR_COVERAGE_H_
#define SLUICE_BINDINGS_ENGINE_DOOR_COVERAGE_H_

#include <string>
#include <vector>

namespace sluice {

namespace config {
class Config;
}  // namespace config

// What a door reports to the engine besides the envelope.
struct DoorSees {
  const char* door;                 // its name in warnings
  bool headers = false;             // X-PHP-Originating-Script, List-Id (script, list levels)
  bool body = false;                // fingerprints and body URLs
  bool auth_results = false;        // failed AUTH (brute force per IP and per user)
  bool unknown_recipients = false;  // RCPT to unknown users (harvesting)
  bool connections = false;         // connects and disconnects (connection limits)
};

// The Postfix SMTPD policy service (sluice-policyd): the envelope only.
inline constexpr DoorSees kPostfixPolicyService{"the Postfix policy service"};
// The milter (sluice-milter): headers and body; a failed AUTH or an
// unknown recipient never reaches a milter (connection counts come with
// the log follower).
inline constexpr DoorSees kMilter{"the milter",           /*headers=*/true,
                                  /*body=*/true,
                                  /*auth_results=*/false, /*unknown_recipients=*/false,
                                  /*connections=*/false};

// The same door with the MTA's log followed (--follow-log): failed AUTH,
// unknown recipients and connections come from the log.
inline constexpr DoorSees WithLogFollower(DoorSees d) {
  d.auth_results = true;
  d.unknown_recipients = true;
  d.connections = true;
  return d;
}

// One line per rule of `config` that `door` cannot feed, saying what it
// lacks and which door would feed it; empty if every rule is fed.
std::vector<std::string> UnfedRules(const config::Config& config, const DoorSees& door);

// What check-config prints for a valid config: "PATH is valid: N levels,
// M entities" and the UnfedRules lines, each ending in a newline.
std::string ConfigSummary(const std::string& path, const config::Config& config,
                          const DoorSees& door);

}  // namespace sluice

#endif  // SLUICE_BINDINGS_ENGINE_DOOR_COVERAGE_H_
