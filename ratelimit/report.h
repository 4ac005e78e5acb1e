// Report formatting: usage and top-K reports (config.proto's UsageReport and
// TopReport) as JSON and as fixed-width text tables for terminals and logs.
//
// Thread safety: free functions without shared state; thread-safe.
#ifndef SLUICE_RATELIMIT_REPORT_H_
#define SLUICE_RATELIMIT_REPORT_H_

#include <string>

#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"
#include "ratelimit/config.pb.h"
#include "ratelimit/types.h"

namespace sluice {

// Returns the message as one line of JSON (proto3 JSON mapping, enum names).
std::string ToJson(const google::protobuf::Message& report);

// Returns a text table: rank, entity, usage, limit, percent of limit.
std::string FormatTopTable(const config::TopReport& report);

// An entity as an administrator names it: "LEVEL:NAME" (subscription:acme),
// a mailbox (has '@'), an IP address (client_ip), else a domain. Returns
// false for an empty name.
bool ParseEntityName(absl::string_view text, Level* level, std::string* name);

}  // namespace sluice

#endif  // SLUICE_RATELIMIT_REPORT_H_
