// The Postfix SMTPD access policy delegation protocol (policy requests
// name=value lines ended by an empty line; replies "action=...").
//
// Postfix 3.x sends request, protocol_state (CONNECT, EHLO, HELO, MAIL,
// RCPT, DATA, END-OF-MESSAGE, VRFY, ETRN), protocol_name, helo_name,
// queue_id, sender, recipient, recipient_count, client_address,
// client_name, reverse_client_name, instance, sasl_method, sasl_username,
// sasl_sender, size, ccert_*, encryption_*, etrn_domain, stress,
// policy_context, server_address, server_port, compatibility_level,
// mail_version, client_port. The parser keeps the ones sluice uses and
// ignores the rest (and any it does not know), as Postfix asks.
//
// Thread safety: free functions without shared state.
#ifndef SLUICE_BINDINGS_POSTFIX_POLICY_PROTOCOL_H_
#define SLUICE_BINDINGS_POSTFIX_POLICY_PROTOCOL_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "bindings/engine/smtp_event.h"

namespace sluice {

// A parsed request. Views point into the text given to ParsePolicyRequest.
struct PolicyRequest {
  absl::string_view request;  // "smtpd_access_policy"
  absl::string_view protocol_state;
  absl::string_view protocol_name;
  absl::string_view helo_name;
  absl::string_view queue_id;
  absl::string_view sender;
  absl::string_view recipient;
  absl::string_view client_address;
  absl::string_view client_name;
  absl::string_view instance;
  absl::string_view sasl_method;
  absl::string_view sasl_username;
  absl::string_view sasl_sender;
  // sluice's own attributes, for doors other than Postfix (Exim's
  // ${readsocket}): the X-PHP-Originating-Script header (script level)
  // and a mailing list (list level).
  absl::string_view script;          // sluice_script=
  absl::string_view list;            // sluice_list=
  absl::string_view policy_context;  // check_policy_service { ..., policy_context=NAME }
  uint32_t server_port = 0;          // the port the client connected to
  uint64_t recipient_count = 0;
  uint64_t size = 0;
  int attributes = 0;  // lines read, known or not
};

struct PolicyLimits {
  size_t max_line = 2048;      // longest name=value line
  size_t max_request = 16384;  // longest request (all lines)
  int max_attributes = 64;
};

// Returns the length of the first complete request in `buffer` including
// its terminating empty line, 0 if none is complete yet. A request that is
// not complete within limits.max_request bytes, or holds a line longer than
// limits.max_line, is an error (InvalidArgument / ResourceExhausted) and
// the connection should be closed.
absl::StatusOr<size_t> FindPolicyRequest(absl::string_view buffer, const PolicyLimits& limits);

// Parses one request (as delimited by FindPolicyRequest; the trailing
// empty line may be included). Errors: a line without '=', a bad attribute
// name, NUL or other control bytes, too many attributes, no "request=", a
// request other than smtpd_access_policy, a non-numeric size.
absl::Status ParsePolicyRequest(absl::string_view text, const PolicyLimits& limits,
                                PolicyRequest* out);

// The policy engine's view of a request: the stage, the transaction (the
// `instance` attribute, else the queue id) and the envelope. Views point
// into `r`'s text.
SmtpEvent ToSmtpEvent(const PolicyRequest& r);

// Formats a reply: "action=<action>\n\n". The action text must not hold a
// newline (it is cut at the first one).
std::string FormatPolicyReply(absl::string_view action);

}  // namespace sluice

#endif  // SLUICE_BINDINGS_POSTFIX_POLICY_PROTOCOL_H_
