#include "bindings/engine/direction.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

namespace sluice {

DirectionRules::DirectionRules(const config::Config& config) {
  const config::Policy& p = config.policy();
  auto add = [this](absl::string_view cidr) {
    Cidr n;
    if (ParseCidr(cidr, &n.net, &n.prefix)) trusted_.push_back(n);  // validated
  };
  for (const std::string& c : p.trusted_network()) add(c);
  if (p.trusted_network_size() == 0) {
    add("127.0.0.0/8");
    add("::1/128");
  }
  ports_.assign(p.outgoing_port().begin(), p.outgoing_port().end());
  doors_.assign(p.outgoing_door().begin(), p.outgoing_door().end());
  for (const auto& e : config.entity()) {
    if (e.level() == "domain") local_domains_.insert(absl::AsciiStrToLower(e.name()));
  }
  for (const std::string& d : p.local_domain()) local_domains_.insert(absl::AsciiStrToLower(d));
}

bool DirectionRules::Trusted(absl::string_view ip) const noexcept {
  IpAddress a;
  if (!ParseIp(ip, &a)) return false;
  static constexpr unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (a.family == 6 && std::memcmp(a.bytes, kMapped, sizeof(kMapped)) == 0) {
    IpAddress v4;  // ::ffff:192.0.2.1 is 192.0.2.1
    v4.family = 4;
    std::memcpy(v4.bytes, a.bytes + 12, 4);
    a = v4;
  }
  for (const Cidr& n : trusted_) {
    if (n.Contains(a)) return true;
  }
  return false;
}

DirectionRules::Result DirectionRules::Classify(const SmtpEvent& e) const noexcept {
  Result r;
  if (e.direction != Direction::kUnknown) {
    r.direction = e.direction;
    r.reason = DirectionReason::kDoor;
    return r;
  }
  r.direction = Direction::kOutgoing;
  if (!e.sasl_username.empty()) {
    r.reason = DirectionReason::kSaslLogin;
  } else if (e.client_address.empty()) {
    r.reason = DirectionReason::kLocal;
  } else if (Trusted(e.client_address)) {
    r.reason = DirectionReason::kTrustedNetwork;
  } else if (e.server_port != 0 &&
             std::find(ports_.begin(), ports_.end(), e.server_port) != ports_.end()) {
    r.reason = DirectionReason::kOutgoingPort;
  } else if (!e.door_name.empty() &&
             std::any_of(doors_.begin(), doors_.end(), [&](const std::string& d) {
               return absl::EqualsIgnoreCase(d, e.door_name);
             })) {
    r.reason = DirectionReason::kOutgoingDoor;
  } else {
    r.direction = Direction::kInbound;
    r.reason = DirectionReason::kUntrustedClient;
  }
  return r;
}

bool DirectionRules::IsLocalDomain(absl::string_view domain) const {
  if (domain.empty() || local_domains_.empty()) return false;
  return local_domains_.contains(absl::AsciiStrToLower(domain));
}

}  // namespace sluice
