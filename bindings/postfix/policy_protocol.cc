#include "bindings/postfix/policy_protocol.h"

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace sluice {

namespace {

bool NameByte(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || (c >= 'A' && c <= 'Z');
}

// Values are text: no control bytes except tab; bytes >= 0x80 are allowed
// (SMTPUTF8 addresses).
bool ValueOk(absl::string_view v) {
  for (unsigned char c : v) {
    if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<size_t> FindPolicyRequest(absl::string_view buffer, const PolicyLimits& limits) {
  const auto too_long = [&] {
    return absl::ResourceExhaustedError(
        absl::StrCat("request longer than ", limits.max_request, " bytes"));
  };
  size_t line_start = 0;
  for (size_t i = 0; i < buffer.size(); ++i) {
    if (buffer[i] != '\n') continue;
    if (i - line_start > limits.max_line) {
      return absl::InvalidArgumentError(
          absl::StrCat("line longer than ", limits.max_line, " bytes"));
    }
    if (i + 1 > limits.max_request) return too_long();
    if (i == line_start) return i + 1;  // the empty line ends the request
    line_start = i + 1;
  }
  if (buffer.size() - line_start > limits.max_line) {
    return absl::InvalidArgumentError(absl::StrCat("line longer than ", limits.max_line, " bytes"));
  }
  if (buffer.size() > limits.max_request) return too_long();
  return 0;
}

absl::Status ParsePolicyRequest(absl::string_view text, const PolicyLimits& limits,
                                PolicyRequest* out) {
  *out = PolicyRequest();
  int line_no = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    absl::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == absl::string_view::npos ? text.size() : nl + 1);
    if (line.empty()) break;  // end of the request
    ++line_no;
    if (line.size() > limits.max_line) {
      return absl::InvalidArgumentError(absl::StrCat("line ", line_no, " is too long"));
    }
    if (++out->attributes > limits.max_attributes) {
      return absl::InvalidArgumentError(
          absl::StrCat("more than ", limits.max_attributes, " attributes"));
    }
    size_t eq = line.find('=');
    if (eq == absl::string_view::npos || eq == 0) {
      return absl::InvalidArgumentError(absl::StrCat("line ", line_no, ": not name=value"));
    }
    absl::string_view name = line.substr(0, eq), value = line.substr(eq + 1);
    for (unsigned char c : name) {
      if (!NameByte(c)) {
        return absl::InvalidArgumentError(absl::StrCat("line ", line_no, ": bad attribute name"));
      }
    }
    if (!ValueOk(value)) {
      return absl::InvalidArgumentError(
          absl::StrCat("line ", line_no, ": control byte in the value of ", name));
    }
    switch (name[0]) {
      case 'c':
        if (name == "client_address") out->client_address = value;
        if (name == "client_name") out->client_name = value;
        break;
      case 'h':
        if (name == "helo_name") out->helo_name = value;
        break;
      case 'i':
        if (name == "instance") out->instance = value;
        break;
      case 'p':
        if (name == "protocol_state") out->protocol_state = value;
        if (name == "protocol_name") out->protocol_name = value;
        if (name == "policy_context") out->policy_context = value;
        break;
      case 'q':
        if (name == "queue_id") out->queue_id = value;
        break;
      case 'r':
        if (name == "request") out->request = value;
        if (name == "recipient") out->recipient = value;
        if (name == "recipient_count" && !value.empty() &&
            !absl::SimpleAtoi(value, &out->recipient_count)) {
          return absl::InvalidArgumentError(
              absl::StrCat("line ", line_no, ": bad recipient_count"));
        }
        break;
      case 's':
        if (name == "sender") out->sender = value;
        if (name == "sasl_method") out->sasl_method = value;
        if (name == "sasl_username") out->sasl_username = value;
        if (name == "sasl_sender") out->sasl_sender = value;
        if (name == "sluice_script") out->script = value;
        if (name == "sluice_list") out->list = value;
        if (name == "size" && !value.empty() && !absl::SimpleAtoi(value, &out->size)) {
          return absl::InvalidArgumentError(absl::StrCat("line ", line_no, ": bad size"));
        }
        if (name == "server_port" && !value.empty() &&
            (!absl::SimpleAtoi(value, &out->server_port) || out->server_port > 65535)) {
          return absl::InvalidArgumentError(absl::StrCat("line ", line_no, ": bad server_port"));
        }
        break;
      default:
        break;  // attributes sluice does not use
    }
  }
  if (out->request.empty()) return absl::InvalidArgumentError("no request= attribute");
  if (out->request != "smtpd_access_policy") {
    return absl::InvalidArgumentError(
        absl::StrCat("unsupported request \"", out->request.substr(0, 64), "\""));
  }
  return absl::OkStatus();
}

SmtpEvent ToSmtpEvent(const PolicyRequest& r) {
  SmtpEvent e;
  e.stage = ParseStage(r.protocol_state);
  e.transaction = !r.instance.empty() ? r.instance : r.queue_id;
  e.client_address = r.client_address;
  e.helo = r.helo_name;
  e.sasl_username = r.sasl_username;
  e.sender = r.sender;
  e.recipient = r.recipient;
  e.size = r.size;
  e.recipient_count = r.recipient_count;
  e.server_port = r.server_port;
  e.door_name = r.policy_context;
  e.script = r.script;
  e.list = r.list;
  return e;
}

std::string FormatPolicyReply(absl::string_view action) {
  action = action.substr(0, action.find('\n'));
  return absl::StrCat("action=", action, "\n\n");
}

}  // namespace sluice
