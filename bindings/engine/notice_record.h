// A notice (smtp_event.h) as a record for files, hooks and reports
// (config::NoticeRecord), text from SMTP sessions made safe to show, and
// the host name they carry.
//
// Thread safety: free functions without shared state; thread-safe.
#ifndef SLUICE_BINDINGS_ENGINE_NOTICE_RECORD_H_
#define SLUICE_BINDINGS_ENGINE_NOTICE_RECORD_H_

#include <string>

#include "absl/strings/string_view.h"
#include "bindings/engine/smtp_event.h"
#include "ratelimit/config.pb.h"

namespace sluice {

// Returns `s` as valid UTF-8 with control characters (and the bytes of
// broken sequences) replaced by '?': names come from SMTP sessions.
std::string CleanText(absl::string_view s);

// This host's name (gethostname), "localhost" if it has none: the host
// notices and reports name.
std::string HostName();

// Returns the notice as a record (times RFC 3339 UTC; level, metric and
// window only for a limit's notice; names cleaned with CleanText).
config::NoticeRecord NoticeRecordOf(const Notice& n, absl::string_view host);

}  // namespace sluice

#endif  // SLUICE_BINDINGS_ENGINE_NOTICE_RECORD_H_
