#include "bindings/engine/door_coverage.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "ratelimit/config.pb.h"

namespace sluice {

namespace {

// Whether a level of the config counts anything (limits of its own or of
// its entities).
bool LevelLimited(const config::Config& c, absl::string_view level) {
  for (const auto& l : c.level()) {
    if (l.name() == level && l.limit_size() > 0) return true;
  }
  for (const auto& e : c.entity()) {
    if (e.level() == level && e.limit_size() > 0) return true;
  }
  return false;
}

}  // namespace

std::vector<std::string> UnfedRules(const config::Config& c, const DoorSees& door) {
  std::vector<std::string> out;
  auto warn = [&](absl::string_view rule, absl::string_view lacks,
                  absl::string_view who = "the milter or the Exim module does") {
    out.push_back(absl::StrCat("warning: ", rule, " never trips: ", door.door, " does not see ",
                               lacks, " (", who, ")"));
  };
  if (!door.headers) {
    if (LevelLimited(c, "script")) {
      warn("level \"script\"", "headers (X-PHP-Originating-Script)");
    }
    if (LevelLimited(c, "list")) warn("level \"list\"", "headers (List-Id)");
  }
  const config::Abuse& a = c.abuse();
  struct Detector {
    bool set;
    bool off;
    const char* name;
    bool fed;
    const char* lacks;
    bool from_log;  // the MTA's log has it
  };
  const Detector detectors[] = {
      {a.has_near_duplicate(), a.near_duplicate().off(), "near_duplicate", door.body,
       "message bodies", false},
      {a.has_campaign(), a.campaign().off(), "campaign", door.body, "message bodies", false},
      {a.has_auth_failures_per_ip(), a.auth_failures_per_ip().off(), "auth_failures_per_ip",
       door.auth_results, "failed AUTH", true},
      {a.has_auth_failures_per_user(), a.auth_failures_per_user().off(), "auth_failures_per_user",
       door.auth_results, "failed AUTH", true},
      {a.has_unknown_recipients_per_ip(), a.unknown_recipients_per_ip().off(),
       "unknown_recipients_per_ip", door.unknown_recipients, "which recipients are unknown", true},
      {a.has_concurrent_connections_per_ip(), a.concurrent_connections_per_ip().off(),
       "concurrent_connections_per_ip", door.connections, "connections", true},
      {a.has_connections_per_ip(), a.connections_per_ip().off(), "connections_per_ip",
       door.connections, "connections", true},
  };
  for (const Detector& d : detectors) {
    if (d.set && !d.off && !d.fed) {
      warn(absl::StrCat("abuse detector \"", d.name, "\""), d.lacks,
           d.from_log ? "follow the MTA's log with --follow-log"
                      : "the milter or the Exim module does");
    }
  }
  if (!door.body) {
    for (const auto& l : c.reputation().list()) {
      for (int t : l.check()) {
        if (t == config::BODY_URLS) {
          warn(absl::StrCat("DNS list \"", l.zone(), "\" on body URLs"), "message bodies");
        }
      }
    }
  }
  return out;
}

std::string ConfigSummary(const std::string& path, const config::Config& c, const DoorSees& door) {
  std::string s = absl::StrCat(path, " is valid: ", c.level_size(), " levels, ", c.entity_size(),
                               " entities\n");
  if (c.cluster().server_size() > 0) {
    const auto& k = c.cluster();
    absl::StrAppend(&s, "shared with ", k.hosts(), " hosts through ",
                    k.redis_cluster() ? "the Redis Cluster of " : "Redis at ",
                    absl::StrJoin(k.server(), ", "), ": ",
                    k.shared_level_size() == 0 ? std::string("every level")
                                               : absl::StrJoin(k.shared_level(), ", "),
                    "\n");
  }
  for (const std::string& w : UnfedRules(c, door)) absl::StrAppend(&s, w, "\n");
  return s;
}

}  // namespace sluice
