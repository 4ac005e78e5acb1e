// Replay: a dry run of a config over an MTA's past traffic. Postfix logs
// (PostfixJoin: smtpd's client and login, pickup's local submissions,
// qmgr's sender, size and recipients) and Exim main logs (EximJoin) are
// played through the same engine
// the live doors use, on the log's own clock, with in-memory tables, no
// DNS and no cluster (nothing live is touched). Every message a rule would
// have deferred or refused (or, in shadow mode, would have) is listed with
// its time, queue id, whose quota and the rule's text, then a summary.
//
// Thread safety: a function; one call at a time per output.
#ifndef SLUICE_BINDINGS_CLI_REPLAY_H_
#define SLUICE_BINDINGS_CLI_REPLAY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "ratelimit/config.pb.h"

namespace sluice {

struct ReplaySummary {
  uint64_t lines = 0;
  uint64_t messages = 0;
  uint64_t tripped = 0;  // messages a rule would have acted on
  std::string report;    // the listing and the summary, for a person
  // What the report page draws (bindings/report/html_report.h): the
  // `report_per_level` heaviest entities of each level per hour over the
  // log, with their rules at the end of the log, and the trips.
  config::ActivityReport activity;
};

// Plays `logs` (files) through `config`. REQUIRES: config passed
// ValidateConfig.
absl::Status Replay(const config::Config& config, const std::vector<std::string>& logs,
                    absl::TimeZone tz, ReplaySummary* out, size_t report_per_level = 50);

}  // namespace sluice

#endif  // SLUICE_BINDINGS_CLI_REPLAY_H_
