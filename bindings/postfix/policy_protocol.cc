#include "bindings/postfix/policy_protocol.h"

#include <array>
#include <cstdint>
#include <cstring>

#include "absl/base/optimization.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace sluice {

namespace {

// The bytes of an attribute name: [A-Za-z0-9_].
constexpr std::array<bool, 256> kNameByte = [] {
  std::array<bool, 256> t{};
  for (int c = 0; c < 256; ++c) {
    t[c] = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || (c >= 'A' && c <= 'Z');
  }
  return t;
}();

bool ControlByte(unsigned char c) { return (c < 0x20 && c != '\t') || c == 0x7f; }

// Whether p[0, n) holds no control byte, one byte at a time.
bool BytesOk(const char* p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (ControlByte(static_cast<unsigned char>(p[i]))) return false;
  }
  return true;
}

// Values are text: no control bytes except tab; bytes >= 0x80 are allowed
// (SMTPUTF8 addresses). Eight bytes at a time: a word with no byte below
// 0x20 and none equal to 0x7f is clean (the test may flag a clean word,
// never miss a bad one: a flagged word is checked byte by byte, which is
// where a tab goes).
bool ValueOk(absl::string_view v) {
  constexpr uint64_t kOnes = 0x0101010101010101ull;
  constexpr uint64_t kHigh = 0x8080808080808080ull;
  const auto word_ok = [](const char* p) {
    uint64_t x;
    std::memcpy(&x, p, 8);
    const uint64_t below_space = (x - kOnes * 0x20) & ~x & kHigh;
    const uint64_t d = x ^ (kOnes * 0x7f);
    const uint64_t del = (d - kOnes) & ~d & kHigh;
    return ABSL_PREDICT_TRUE((below_space | del) == 0) || BytesOk(p, 8);
  };
  const char* p = v.data();
  const size_t n = v.size();
  if (n < 8) return BytesOk(p, n);
  for (size_t i = 0; i + 8 <= n; i += 8) {
    if (!word_ok(p + i)) return false;
  }
  return (n % 8) == 0 || word_ok(p + n - 8);  // the last bytes, overlapping
}

// The attributes sluice reads. A name that is one of these needs no byte
// check; any other is checked against [A-Za-z0-9_] and ignored.
enum class Attr {
  kOther,
  kRequest,
  kProtocolState,
  kProtocolName,
  kHeloName,
  kQueueId,
  kSender,
  kRecipient,
  kClientAddress,
  kClientName,
  kInstance,
  kSaslMethod,
  kSaslUsername,
  kSaslSender,
  kScript,
  kList,
  kPolicyContext,
  kServerPort,
  kRecipientCount,
  kSize,
};

Attr AttrOf(absl::string_view n) {
  switch (n.size()) {  // by length first: at most five names to compare
    case 4:
      if (n == "size") return Attr::kSize;
      break;
    case 6:
      if (n == "sender") return Attr::kSender;
      break;
    case 7:
      if (n == "request") return Attr::kRequest;
      break;
    case 8:
      if (n == "queue_id") return Attr::kQueueId;
      if (n == "instance") return Attr::kInstance;
      break;
    case 9:
      if (n == "helo_name") return Attr::kHeloName;
      if (n == "recipient") return Attr::kRecipient;
      break;
    case 11:
      if (n == "client_name") return Attr::kClientName;
      if (n == "sasl_method") return Attr::kSaslMethod;
      if (n == "sasl_sender") return Attr::kSaslSender;
      if (n == "sluice_list") return Attr::kList;
      if (n == "server_port") return Attr::kServerPort;
      break;
    case 13:
      if (n == "protocol_name") return Attr::kProtocolName;
      if (n == "sasl_username") return Attr::kSaslUsername;
      if (n == "sluice_script") return Attr::kScript;
      break;
    case 14:
      if (n == "protocol_state") return Attr::kProtocolState;
      if (n == "client_address") return Attr::kClientAddress;
      if (n == "policy_context") return Attr::kPolicyContext;
      break;
    case 15:
      if (n == "recipient_count") return Attr::kRecipientCount;
      break;
    default:
      break;
  }
  return Attr::kOther;
}

// Where each text attribute goes (null: a number, or one sluice ignores).
constexpr absl::string_view PolicyRequest::*kTextField[] = {
    nullptr,                         // kOther
    &PolicyRequest::request,         // kRequest
    &PolicyRequest::protocol_state,  // kProtocolState
    &PolicyRequest::protocol_name,   // kProtocolName
    &PolicyRequest::helo_name,       // kHeloName
    &PolicyRequest::queue_id,        // kQueueId
    &PolicyRequest::sender,          // kSender
    &PolicyRequest::recipient,       // kRecipient
    &PolicyRequest::client_address,  // kClientAddress
    &PolicyRequest::client_name,     // kClientName
    &PolicyRequest::instance,        // kInstance
    &PolicyRequest::sasl_method,     // kSaslMethod
    &PolicyRequest::sasl_username,   // kSaslUsername
    &PolicyRequest::sasl_sender,     // kSaslSender
    &PolicyRequest::script,          // kScript
    &PolicyRequest::list,            // kList
    &PolicyRequest::policy_context,  // kPolicyContext
    nullptr,                         // kServerPort
    nullptr,                         // kRecipientCount
    nullptr,                         // kSize
};
static_assert(sizeof(kTextField) / sizeof(kTextField[0]) == static_cast<int>(Attr::kSize) + 1);

}  // namespace

absl::StatusOr<size_t> FindPolicyRequest(absl::string_view buffer, const PolicyLimits& limits) {
  const auto too_long = [&] {
    return absl::ResourceExhaustedError(
        absl::StrCat("request longer than ", limits.max_request, " bytes"));
  };
  size_t line_start = 0;
  while (line_start < buffer.size()) {
    const void* nl = std::memchr(buffer.data() + line_start, '\n', buffer.size() - line_start);
    if (nl == nullptr) break;
    const size_t i = static_cast<const char*>(nl) - buffer.data();
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
    const void* nl = std::memchr(text.data(), '\n', text.size());
    const size_t len = nl == nullptr ? text.size() : static_cast<const char*>(nl) - text.data();
    absl::string_view line = text.substr(0, len);
    text.remove_prefix(nl == nullptr ? text.size() : len + 1);
    if (line.empty()) break;  // end of the request
    ++line_no;
    if (line.size() > limits.max_line) {
      return absl::InvalidArgumentError(absl::StrCat("line ", line_no, " is too long"));
    }
    if (++out->attributes > limits.max_attributes) {
      return absl::InvalidArgumentError(
          absl::StrCat("more than ", limits.max_attributes, " attributes"));
    }
    const void* eq_at = std::memchr(line.data(), '=', line.size());
    if (eq_at == nullptr || eq_at == line.data()) {
      return absl::InvalidArgumentError(absl::StrCat("line ", line_no, ": not name=value"));
    }
    const size_t eq = static_cast<const char*>(eq_at) - line.data();
    absl::string_view name = line.substr(0, eq), value = line.substr(eq + 1);
    const Attr attr = AttrOf(name);
    if (attr == Attr::kOther) {
      for (unsigned char c : name) {
        if (!kNameByte[c]) {
          return absl::InvalidArgumentError(absl::StrCat("line ", line_no, ": bad attribute name"));
        }
      }
    }
    if (!ValueOk(value)) {
      return absl::InvalidArgumentError(
          absl::StrCat("line ", line_no, ": control byte in the value of ", name));
    }
    if (absl::string_view PolicyRequest::*field = kTextField[static_cast<int>(attr)]) {
      out->*field = value;
      continue;
    }
    if (attr == Attr::kOther || value.empty()) continue;  // an empty number stays 0
    uint64_t n = 0;
    const uint64_t max = attr == Attr::kServerPort ? 65535 : UINT64_MAX;
    if (!absl::SimpleAtoi(value, &n) || n > max) {
      return absl::InvalidArgumentError(absl::StrCat("line ", line_no, ": bad ", name));
    }
    if (attr == Attr::kServerPort) out->server_port = static_cast<uint32_t>(n);
    if (attr == Attr::kRecipientCount) out->recipient_count = n;
    if (attr == Attr::kSize) out->size = n;
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
