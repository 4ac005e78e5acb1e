#include "ratelimit/config.h"

#include <arpa/inet.h>

#include <cmath>
#include <fstream>
#include <initializer_list>
#include <set>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"
#include "ratelimit/ip.h"

namespace sluice {

namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::TextFormat;

class Collector : public google::protobuf::io::ErrorCollector {
 public:
  explicit Collector(absl::string_view filename) : filename_(filename) {}
  void AddError(int line, int column, const std::string& message) override {
    if (first_.empty()) {
      first_ = absl::StrCat(filename_, ":", line + 1, ":", column + 1, ": ", message);
    }
  }
  void AddWarning(int, int, const std::string&) override {}
  const std::string& first() const { return first_; }

 private:
  std::string filename_;
  std::string first_;
};

// Gives positions for semantic errors: from the parser's location tree when
// the config came from text, else a field path.
class Where {
 public:
  Where(std::string filename, const TextFormat::ParseInfoTree* tree, std::string path)
      : filename_(std::move(filename)), tree_(tree), path_(std::move(path)) {}

  std::string At(const Message& m, absl::string_view field, int index = -1) const {
    const FieldDescriptor* f = m.GetDescriptor()->FindFieldByName(std::string(field));
    if (tree_ != nullptr && f != nullptr) {
      auto loc = tree_->GetLocation(f, index);
      if (loc.line >= 0) {
        return absl::StrCat(filename_, ":", loc.line + 1, ":", loc.column + 1, ": ");
      }
    }
    std::string p = path_.empty() ? std::string(field) : absl::StrCat(path_, ".", field);
    if (index >= 0) absl::StrAppend(&p, "[", index, "]");
    return absl::StrCat(filename_, ": ", p, ": ");
  }

  Where Nested(const Message& m, absl::string_view field, int index) const {
    const FieldDescriptor* f = m.GetDescriptor()->FindFieldByName(std::string(field));
    if (f != nullptr && !f->is_repeated()) index = -1;
    const TextFormat::ParseInfoTree* t =
        (tree_ != nullptr && f != nullptr) ? tree_->GetTreeForNested(f, index) : nullptr;
    std::string p = path_.empty() ? std::string(field) : absl::StrCat(path_, ".", field);
    if (index >= 0) absl::StrAppend(&p, "[", index, "]");
    return Where(filename_, t, p);
  }

 private:
  std::string filename_;
  const TextFormat::ParseInfoTree* tree_;
  std::string path_;
};

absl::Status Err(const std::string& where, absl::string_view msg) {
  return absl::InvalidArgumentError(absl::StrCat(where, msg));
}

// A reply code must be 4xx or 5xx and agree with a DEFER or REJECT action.
bool SmtpCodeFits(config::Action action, uint32_t code) {
  if (code < 400 || code > 599) return false;
  if (action == config::DEFER) return code < 500;
  if (action == config::REJECT) return code >= 500;
  return true;
}

absl::Status ValidateTable(const config::Table& t, const Where& w) {
  if (t.has_max_probe() && (t.max_probe() < 1 || t.max_probe() > 4096)) {
    return Err(w.At(t, "max_probe"), "max_probe must be in [1, 4096]");
  }
  return absl::OkStatus();
}

absl::Status ValidateDetector(const config::Detector& d, const Where& w) {
  if (d.has_window()) {
    auto win = ParseWindow(d.window());
    if (!win.ok()) return Err(w.At(d, "window"), win.status().message());
    if (*win > kMaxWindowSeconds) {
      return Err(w.At(d, "window"),
                 absl::StrCat("window longer than ", FormatWindow(kMaxWindowSeconds)));
    }
  }
  if (d.has_block()) {
    auto b = ParseWindow(d.block());
    if (!b.ok()) return Err(w.At(d, "block"), b.status().message());
  }
  if (d.has_threshold() && (d.threshold() < 1 || d.threshold() > (uint64_t{1} << 37) - 1)) {
    return Err(w.At(d, "threshold"), "threshold must be in [1, 137438953471] (off: true disables)");
  }
  if (d.has_smtp_code() && !SmtpCodeFits(d.action(), d.smtp_code())) {
    return Err(w.At(d, "smtp_code"), "smtp_code must be 4xx for DEFER and 5xx for REJECT");
  }
  return absl::OkStatus();
}

absl::Status ValidateAbuse(const config::Abuse& a, const Where& w) {
  // Every Detector field, found by reflection so a new detector is checked too.
  const auto* desc = a.GetDescriptor();
  const auto* refl = a.GetReflection();
  for (int i = 0; i < desc->field_count(); ++i) {
    const FieldDescriptor* f = desc->field(i);
    if (f->message_type() != config::Detector::descriptor() || !refl->HasField(a, f)) continue;
    const auto& d = static_cast<const config::Detector&>(refl->GetMessage(a, f));
    if (auto s = ValidateDetector(d, w.Nested(a, f->name(), 0)); !s.ok()) return s;
  }
  for (const char* name : {"similarity", "campaign_similarity"}) {
    const FieldDescriptor* f = desc->FindFieldByName(name);
    if (!refl->HasField(a, f)) continue;
    double v = refl->GetDouble(a, f);
    if (!(v > 0 && v <= 1)) return Err(w.At(a, name), "similarity must be in (0, 1]");
  }
  if (a.has_shared_blocks() && !(a.shared_blocks() >= 0 && a.shared_blocks() <= 1000)) {
    return Err(w.At(a, "shared_blocks"), "shared_blocks must be in [0, 1000] (0: off)");
  }
  if (a.has_contained_blocks() && a.contained_blocks() > 64) {
    return Err(w.At(a, "contained_blocks"), "contained_blocks must be in [0, 64] (0: off)");
  }
  if (a.has_head_blocks() && a.head_blocks() > 8) {
    return Err(w.At(a, "head_blocks"), "head_blocks must be in [0, 8] (0: off)");
  }
  for (int i = 0; i < a.alias_size(); ++i) {
    const auto& al = a.alias(i);
    Where aw = w.Nested(a, "alias", i);
    if (al.login().empty()) return Err(aw.At(al, "login"), "alias needs a login");
    for (int j = 0; j < al.address_size(); ++j) {
      if (al.address(j).find('@') == std::string::npos) {
        return Err(aw.At(al, "address", j),
                   absl::StrCat("\"", al.address(j), "\" is neither an address nor @domain"));
      }
    }
  }
  if (a.has_table()) return ValidateTable(a.table(), w.Nested(a, "table", 0));
  return absl::OkStatus();
}

// A domain as the policy section names one: not empty, no '@', blank or '/'.
bool ValidDomain(absl::string_view d) {
  return !d.empty() && d.find_first_of("@ \t/") == absl::string_view::npos;
}

bool ValidCidr(absl::string_view text) {
  IpAddress a;
  int len;
  return ParseCidr(text, &a, &len);
}

// Each named string field of m that is set must be a positive duration of
// at most `max`; `allow_empty` lets a field set to "" mean its default.
// The error names the field and shows `hint`.
absl::Status CheckDurations(const Message& m, std::initializer_list<const char*> names,
                            absl::Duration max, bool allow_empty, absl::string_view hint,
                            const Where& w) {
  for (const char* name : names) {
    const FieldDescriptor* f = m.GetDescriptor()->FindFieldByName(name);
    if (!m.GetReflection()->HasField(m, f)) continue;
    const std::string v = m.GetReflection()->GetString(m, f);
    if (v.empty() && allow_empty) continue;
    absl::Duration d;
    if (!absl::ParseDuration(v, &d) || d <= absl::ZeroDuration() || d > max) {
      return Err(w.At(m, name), absl::StrCat("bad duration \"", v, "\" (", hint, ")"));
    }
  }
  return absl::OkStatus();
}

// An address for notifications: one mailbox, nothing that could end a
// header or list a second one.
bool BadAddress(const std::string& a) {
  return a.find('@') == std::string::npos || a.find_first_of(" \r\n<>,") != std::string::npos;
}

absl::Status ValidateReputation(const config::Reputation& r, const Where& w) {
  for (int i = 0; i < r.list_size(); ++i) {
    const auto& l = r.list(i);
    Where lw = w.Nested(r, "list", i);
    if (l.zone().empty() || l.zone().find_first_of(" \t/@") != std::string::npos) {
      return Err(l.has_zone() ? lw.At(l, "zone") : w.At(r, "list", i),
                 "a list needs a zone (e.g. zone: \"zen.spamhaus.org\")");
    }
    for (int j = 0; j < l.match_size(); ++j) {
      auto f = ParseAnswerMatch(l.match(j));
      if (!f.ok()) return Err(lw.At(l, "match", j), f.status().message());
    }
    if (!std::isfinite(l.weight())) return Err(lw.At(l, "weight"), "weight must be a number");
    if (!l.inbound() && !l.outgoing()) {
      return Err(lw.At(l, "inbound"), "the list judges no mail (inbound and outgoing both off)");
    }
    if (l.has_suspend()) {
      absl::Duration d;
      if (!absl::ParseDuration(l.suspend(), &d) || d < absl::ZeroDuration()) {
        return Err(lw.At(l, "suspend"), absl::StrCat("bad duration \"", l.suspend(), "\""));
      }
    }
  }
  if (auto s = CheckDurations(
          r, {"timeout", "budget", "min_ttl", "max_ttl", "score_half_life", "failure_ttl"},
          absl::InfiniteDuration(), /*allow_empty=*/false, "e.g. \"500ms\", \"2s\"", w);
      !s.ok()) {
    return s;
  }
  if (r.has_smtp_code() && !SmtpCodeFits(r.action(), r.smtp_code())) {
    return Err(w.At(r, "smtp_code"), "smtp_code must be 4xx for DEFER and 5xx for REJECT");
  }
  return absl::OkStatus();
}

absl::Status ValidateCluster(const config::Cluster& c, const Where& w) {
  for (int i = 0; i < c.server_size(); ++i) {
    const std::string& sv = c.server(i);
    const size_t colon = sv.rfind(':');
    int port = 0;
    if (colon == std::string::npos || colon == 0 ||
        !absl::SimpleAtoi(absl::string_view(sv).substr(colon + 1), &port) || port <= 0 ||
        port > 65535) {
      return Err(w.At(c, "server", i), absl::StrCat("bad server \"", sv, "\" (HOST:PORT)"));
    }
  }
  if (c.server_size() > 1 && !c.redis_cluster()) {
    return Err(w.At(c, "server", 1),
               "several servers are a Redis Cluster's seeds: set redis_cluster: true");
  }
  if (c.server_size() > 0 && c.hosts() == 0) {
    return Err(w.At(c, "server", 0),
               "cluster needs `hosts`: how many hosts share the limits (their fallback share)");
  }
  if (auto s = CheckDurations(c, {"interval", "timeout"}, absl::Minutes(1), /*allow_empty=*/true,
                              "e.g. \"200ms\", up to 1m", w);
      !s.ok()) {
    return s;
  }
  for (int i = 0; i < c.shared_level_size(); ++i) {
    Level l;
    if (!ParseLevel(c.shared_level(i), &l)) {
      return Err(w.At(c, "shared_level", i),
                 absl::StrCat("unknown level \"", c.shared_level(i), "\""));
    }
  }
  if (c.has_fallback_share() && !(c.fallback_share() > 0 && c.fallback_share() <= 1)) {
    return Err(w.At(c, "fallback_share"), "fallback_share must be in (0, 1]");
  }
  if (c.has_first_use_share() && !(c.first_use_share() >= 0 && c.first_use_share() <= 1)) {
    return Err(w.At(c, "first_use_share"), "first_use_share must be in [0, 1]");
  }
  return absl::OkStatus();
}

absl::Status ValidateNotify(const config::Notify& n, const Where& w) {
  if (auto s = CheckDurations(n, {"exec_timeout", "digest"}, absl::Hours(24),
                              /*allow_empty=*/true, "e.g. \"10s\", up to 24h", w);
      !s.ok()) {
    return s;
  }
  if (n.has_max_exec() && n.max_exec() < 1)
    return Err(w.At(n, "max_exec"), "max_exec must be >= 1");
  if (n.exec_size() > 0 && (n.exec(0).empty() || n.exec(0)[0] != '/')) {
    return Err(w.At(n, "exec", 0), "exec needs an absolute program path (no shell runs it)");
  }
  for (int i = 0; i < n.mail_to_size(); ++i) {
    if (BadAddress(n.mail_to(i))) {
      return Err(w.At(n, "mail_to", i), absl::StrCat("bad address \"", n.mail_to(i), "\""));
    }
  }
  if (n.has_mail_command() && (n.mail_command().empty() || n.mail_command()[0] != '/')) {
    return Err(w.At(n, "mail_command"), "mail_command needs an absolute program path");
  }
  return absl::OkStatus();
}

absl::Status ValidatePolicy(const config::Policy& p, const Where& w) {
  for (int i = 0; i < p.identity_size(); ++i) {
    const std::string& id = p.identity(i);
    if (id != "sasl_username" && id != "sender" && id != "client_address") {
      return Err(
          w.At(p, "identity", i),
          absl::StrCat("unknown identity \"", id, "\" (sasl_username, sender or client_address)"));
    }
  }
  if (p.has_transaction_timeout()) {
    auto t = ParseWindow(p.transaction_timeout());
    if (!t.ok()) return Err(w.At(p, "transaction_timeout"), t.status().message());
  }
  if (p.has_login_domain() && !ValidDomain(p.login_domain())) {
    return Err(w.At(p, "login_domain"), "login_domain must be a domain (e.g. \"acme.example\")");
  }
  for (int i = 0; i < p.login_size(); ++i) {
    const auto& l = p.login(i);
    Where lw = w.Nested(p, "login", i);
    if (l.name().empty() || l.name().find('@') != std::string::npos) {
      return Err(l.has_name() ? lw.At(l, "name") : w.At(p, "login", i),
                 "a login entry needs the login without '@' (name: \"alice\")");
    }
    const size_t at = l.address().rfind('@');
    if (at == std::string::npos || at == 0 || at + 1 == l.address().size()) {
      return Err(l.has_address() ? lw.At(l, "address") : w.At(p, "login", i),
                 "a login entry maps to an address (address: \"alice@acme.example\")");
    }
  }
  for (int i = 0; i < p.trusted_network_size(); ++i) {
    if (!ValidCidr(p.trusted_network(i))) {
      return Err(w.At(p, "trusted_network", i),
                 absl::StrCat("bad CIDR \"", p.trusted_network(i), "\" in trusted_network"));
    }
  }
  for (int i = 0; i < p.outgoing_port_size(); ++i) {
    if (p.outgoing_port(i) == 0 || p.outgoing_port(i) > 65535) {
      return Err(w.At(p, "outgoing_port", i), "outgoing_port must be 1..65535");
    }
  }
  for (int i = 0; i < p.outgoing_door_size(); ++i) {
    if (p.outgoing_door(i).empty()) return Err(w.At(p, "outgoing_door", i), "empty outgoing_door");
  }
  for (int i = 0; i < p.local_domain_size(); ++i) {
    const std::string& d = p.local_domain(i);
    if (!ValidDomain(d)) {
      return Err(w.At(p, "local_domain", i),
                 absl::StrCat("local_domain must be a domain, not \"", d, "\""));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateLimit(const config::Limit& l, const Where& w, Level owner_level,
                           bool owner_is_entity, const bool* configured) {
  if (!l.has_window()) return Err(w.At(l, "max"), "limit needs a window (e.g. window: \"1h\")");
  auto win = ParseWindow(l.window());
  if (!win.ok()) return Err(w.At(l, "window"), win.status().message());
  if (l.algorithm() == config::SLIDING_WINDOW && *win > kMaxWindowSeconds) {
    return Err(w.At(l, "window"),
               absl::StrCat("sliding window longer than ", FormatWindow(kMaxWindowSeconds),
                            " is not supported; use GCRA for longer periods"));
  }
  if (l.has_max() && l.unlimited()) {
    return Err(w.At(l, "unlimited"), "a limit has either max or unlimited, not both");
  }
  if (!l.has_max() && !l.unlimited()) {
    return Err(w.At(l, "window"), "limit needs max (0 blocks) or unlimited: true");
  }
  if (l.max() > (uint64_t{1} << 37) - 1) {
    return Err(w.At(l, "max"), "max is larger than 137438953471");
  }
  if (l.has_burst() && l.algorithm() != config::GCRA) {
    return Err(w.At(l, "burst"), "burst applies to algorithm: GCRA only");
  }
  if (l.has_burst() && (l.burst() < 1 || l.burst() > 1000000000)) {
    return Err(w.At(l, "burst"), "burst must be between 1 and 1000000000");
  }
  if (l.has_smtp_code() && !SmtpCodeFits(l.action(), l.smtp_code())) {
    return Err(w.At(l, "smtp_code"), "smtp_code must be 4xx for DEFER and 5xx for REJECT");
  }
  if (l.has_applies_to()) {
    Level target;
    if (!ParseLevel(l.applies_to(), &target)) {
      return Err(w.At(l, "applies_to"), absl::StrCat("unknown level \"", l.applies_to(), "\""));
    }
    if (!owner_is_entity) {
      return Err(w.At(l, "applies_to"), "applies_to is only valid on an entity's limit");
    }
    if (!IsChainLevel(owner_level) || !IsChainLevel(target) ||
        static_cast<int>(target) <= static_cast<int>(owner_level)) {
      return Err(w.At(l, "applies_to"),
                 absl::StrCat("applies_to must name a level below \"", LevelName(owner_level),
                              "\" in the hierarchy"));
    }
    if (!configured[static_cast<int>(target)]) {
      return Err(w.At(l, "applies_to"),
                 absl::StrCat("level \"", l.applies_to(), "\" is not configured"));
    }
  }
  return absl::OkStatus();
}

absl::Status Validate(const config::Config& c, const Where& w) {
  bool configured[kNumLevels] = {};
  for (int i = 0; i < c.level_size(); ++i) {
    const auto& lv = c.level(i);
    Where lw = w.Nested(c, "level", i);
    Level level;
    if (!ParseLevel(lv.name(), &level)) {
      return Err(lw.At(lv, "name"),
                 absl::StrCat("unknown level \"", lv.name(),
                              "\" (levels: server, plan, subscription, domain, mailbox, "
                              "client_ip, sasl_user, script, list)"));
    }
    if (configured[static_cast<int>(level)]) {
      return Err(lw.At(lv, "name"), absl::StrCat("level \"", lv.name(), "\" configured twice"));
    }
    configured[static_cast<int>(level)] = true;
    if ((lv.has_ipv4_prefix() || lv.has_ipv6_prefix()) && level != Level::kClientIp) {
      return Err(lw.At(lv, "name"), "ipv4_prefix/ipv6_prefix apply to client_ip only");
    }
    if (lv.ipv4_prefix() > 32) return Err(lw.At(lv, "ipv4_prefix"), "ipv4_prefix must be <= 32");
    if (lv.ipv6_prefix() > 128) return Err(lw.At(lv, "ipv6_prefix"), "ipv6_prefix must be <= 128");
  }
  if (c.level_size() == 0) {
    // No levels listed: the default chain server > ... > mailbox.
    for (int l = 0; l < kNumChainLevels; ++l) configured[l] = true;
  }
  for (int i = 0; i < c.level_size(); ++i) {
    const auto& lv = c.level(i);
    Where lw = w.Nested(c, "level", i);
    Level level;
    ParseLevel(lv.name(), &level);
    std::set<std::pair<std::string, int>> seen;
    for (int j = 0; j < lv.limit_size(); ++j) {
      Where limw = lw.Nested(lv, "limit", j);
      if (auto s = ValidateLimit(lv.limit(j), limw, level, false, configured); !s.ok()) return s;
    }
  }
  // Entities: names unique per level, parents exist one level up or higher.
  std::set<std::pair<int, std::string>> names;
  for (int i = 0; i < c.entity_size(); ++i) {
    const auto& e = c.entity(i);
    Where ew = w.Nested(c, "entity", i);
    Level level;
    if (!ParseLevel(e.level(), &level)) {
      return Err(ew.At(e, "level"), absl::StrCat("unknown level \"", e.level(), "\""));
    }
    if (!configured[static_cast<int>(level)] && level != Level::kServer) {
      // An entity of an unconfigured level would never be counted.
      return Err(ew.At(e, "level"),
                 absl::StrCat("level \"", e.level(), "\" is not configured (add level { name: \"",
                              e.level(), "\" })"));
    }
    if (e.name().empty()) return Err(ew.At(e, "level"), "entity needs a name");
    if (!names.insert({static_cast<int>(level), absl::AsciiStrToLower(e.name())}).second) {
      return Err(ew.At(e, "name"),
                 absl::StrCat("duplicate entity \"", e.name(), "\" at level ", e.level()));
    }
    for (int j = 0; j < e.limit_size(); ++j) {
      Where limw = ew.Nested(e, "limit", j);
      if (auto s = ValidateLimit(e.limit(j), limw, level, true, configured); !s.ok()) return s;
    }
  }
  for (int i = 0; i < c.entity_size(); ++i) {
    const auto& e = c.entity(i);
    if (!e.has_parent()) continue;
    Where ew = w.Nested(c, "entity", i);
    Level level;
    ParseLevel(e.level(), &level);
    if (!IsChainLevel(level) || level == Level::kServer) {
      return Err(ew.At(e, "parent"),
                 absl::StrCat("entities at level ", e.level(), " have no parent"));
    }
    bool found = false;
    for (int l = static_cast<int>(level) - 1; l >= 1 && !found; --l) {
      found = names.count({l, absl::AsciiStrToLower(e.parent())}) > 0;
    }
    if (!found) {
      return Err(ew.At(e, "parent"),
                 absl::StrCat("unknown parent \"", e.parent(), "\" (no entity of a level above ",
                              e.level(), " has that name)"));
    }
  }
  if (c.has_exempt()) {
    const auto& x = c.exempt();
    Where xw = w.Nested(c, "exempt", 0);
    for (int i = 0; i < x.cidr_size(); ++i) {
      if (!ValidCidr(x.cidr(i))) {
        return Err(xw.At(x, "cidr", i), absl::StrCat("bad CIDR \"", x.cidr(i), "\""));
      }
    }
    for (int i = 0; i < x.sender_size(); ++i) {
      if (x.sender(i).empty()) return Err(xw.At(x, "sender", i), "empty sender");
    }
  }
  if (c.has_table()) {
    if (auto s = ValidateTable(c.table(), w.Nested(c, "table", 0)); !s.ok()) return s;
  }
  if (c.has_abuse()) {
    if (auto s = ValidateAbuse(c.abuse(), w.Nested(c, "abuse", 0)); !s.ok()) return s;
  }
  if (c.has_policy()) {
    if (auto s = ValidatePolicy(c.policy(), w.Nested(c, "policy", 0)); !s.ok()) return s;
  }
  if (c.has_reputation()) {
    if (auto s = ValidateReputation(c.reputation(), w.Nested(c, "reputation", 0)); !s.ok()) {
      return s;
    }
  }
  if (c.has_cluster()) {
    if (auto s = ValidateCluster(c.cluster(), w.Nested(c, "cluster", 0)); !s.ok()) return s;
  }
  if (c.has_notify()) {
    if (auto s = ValidateNotify(c.notify(), w.Nested(c, "notify", 0)); !s.ok()) return s;
  }
  if (c.has_report()) {
    const Where rw = w.Nested(c, "report", 0);
    if (auto s = CheckDurations(c.report(), {"history"}, absl::Hours(24 * 31),
                                /*allow_empty=*/true, "e.g. \"48h\", up to 31 days", rw);
        !s.ok()) {
      return s;
    }
    if (c.report().has_max_entities() && c.report().max_entities() < 1) {
      return Err(rw.At(c.report(), "max_entities"), "max_entities must be >= 1");
    }
  }
  for (int i = 0; i < c.entity_size(); ++i) {
    const std::string& contact = c.entity(i).contact();
    if (!contact.empty() && BadAddress(contact)) {
      Where ew = w.Nested(c, "entity", i);
      return Err(ew.At(c.entity(i), "contact"), absl::StrCat("bad address \"", contact, "\""));
    }
  }
  return absl::OkStatus();
}

}  // namespace

Action ToAction(config::Action a) {
  switch (a) {
    case config::DEFER:
      return Action::kDefer;
    case config::REJECT:
      return Action::kReject;
    case config::HOLD:
      return Action::kHold;
    case config::DISCARD:
      return Action::kDiscard;
    case config::NOTIFY:
      return Action::kNotify;
  }
  return Action::kDefer;
}

absl::StatusOr<AnswerMatch> ParseAnswerMatch(absl::string_view text) {
  AnswerMatch f;
  text = absl::StripAsciiWhitespace(text);
  if (text.empty() || text == "any") return f;
  if (absl::StartsWith(text, "mask:")) {
    uint32_t m = 0;
    absl::string_view v = text.substr(5);
    bool ok =
        absl::StartsWith(v, "0x") ? absl::SimpleHexAtoi(v.substr(2), &m) : absl::SimpleAtoi(v, &m);
    if (!ok || m == 0) {
      return absl::InvalidArgumentError(absl::StrCat("bad bitmask \"", text, "\""));
    }
    f.mask = m;
    return f;
  }
  // Split at dots outside brackets ("[2..11]" holds dots of its own).
  std::vector<absl::string_view> octets;
  size_t start = 0;
  int depth = 0;
  for (size_t i = 0; i <= text.size(); ++i) {
    if (i < text.size() && text[i] == '[') ++depth;
    if (i < text.size() && text[i] == ']') --depth;
    if (i == text.size() || (text[i] == '.' && depth == 0)) {
      octets.push_back(text.substr(start, i - start));
      start = i + 1;
    }
  }
  if (octets.size() != 4) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad return code \"", text, "\" (127.0.0.2, 127.0.0.[2..11], mask:0x04)"));
  }
  for (int i = 0; i < 4; ++i) {
    absl::string_view o = octets[i];
    uint32_t lo, hi;
    if (absl::StartsWith(o, "[") && absl::EndsWith(o, "]")) {
      std::vector<absl::string_view> r = absl::StrSplit(o.substr(1, o.size() - 2), "..");
      if (r.size() != 2 || !absl::SimpleAtoi(r[0], &lo) || !absl::SimpleAtoi(r[1], &hi) ||
          lo > hi || hi > 255) {
        return absl::InvalidArgumentError(absl::StrCat("bad range \"", o, "\" in \"", text, "\""));
      }
    } else if (!absl::SimpleAtoi(o, &lo) || lo > 255) {
      return absl::InvalidArgumentError(absl::StrCat("bad octet \"", o, "\" in \"", text, "\""));
    } else {
      hi = lo;
    }
    f.lo[i] = static_cast<uint8_t>(lo);
    f.hi[i] = static_cast<uint8_t>(hi);
  }
  return f;
}

absl::StatusOr<int64_t> ParseWindow(absl::string_view text) {
  if (text.empty()) return absl::InvalidArgumentError("empty window");
  int64_t mult = 1;
  absl::string_view num = text;
  switch (text.back()) {
    case 's':
      mult = 1;
      num.remove_suffix(1);
      break;
    case 'm':
      mult = 60;
      num.remove_suffix(1);
      break;
    case 'h':
      mult = 3600;
      num.remove_suffix(1);
      break;
    case 'd':
      mult = 86400;
      num.remove_suffix(1);
      break;
    default:
      break;
  }
  int64_t v;
  if (num.empty() || !absl::SimpleAtoi(num, &v)) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad window \"", text, "\" (use e.g. \"90s\", \"15m\", \"1h\", \"1d\")"));
  }
  if (v <= 0)
    return absl::InvalidArgumentError(absl::StrCat("window \"", text, "\" must be positive"));
  if (v > (int64_t{1} << 40) / mult) return absl::InvalidArgumentError("window too long");
  return v * mult;
}

absl::Duration DurationOr(absl::string_view text, absl::Duration fallback) {
  absl::Duration d;
  return !text.empty() && absl::ParseDuration(text, &d) && d > absl::ZeroDuration() ? d : fallback;
}

std::string FormatWindow(int64_t s) {
  if (s % 86400 == 0) return absl::StrCat(s / 86400, "d");
  if (s % 3600 == 0) return absl::StrCat(s / 3600, "h");
  if (s % 60 == 0) return absl::StrCat(s / 60, "m");
  return absl::StrCat(s, "s");
}

absl::StatusOr<config::Config> ParseConfigText(absl::string_view text, absl::string_view filename) {
  config::Config c;
  TextFormat::Parser parser;
  Collector collector(filename);
  TextFormat::ParseInfoTree tree;
  parser.RecordErrorsTo(&collector);
  parser.WriteLocationsTo(&tree);
  if (!parser.ParseFromString(std::string(text), &c)) {
    return absl::InvalidArgumentError(
        collector.first().empty() ? absl::StrCat(filename, ": parse error") : collector.first());
  }
  if (auto s = Validate(c, Where(std::string(filename), &tree, "")); !s.ok()) return s;
  return c;
}

absl::StatusOr<config::Config> LoadConfigFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read config ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseConfigText(ss.str(), path);
}

absl::Status ValidateConfig(const config::Config& config) {
  return Validate(config, Where("<config>", nullptr, ""));
}

absl::string_view DefaultConfigText() {
  return R"pb(# sluice demo config: a shared hosting server.
              server_name: "mx1.hosting.example"
              level {
                name: "server"
                limit { metric: MESSAGES window: "1h" max: 20000 }
              }
              level { name: "plan" }
              level {
                name: "subscription"
                limit { metric: MESSAGES window: "1h" max: 2000 }
              }
              level {
                name: "domain"
                limit { metric: MESSAGES window: "1h" max: 1000 }
              }
              level {
                name: "mailbox"
                limit { metric: MESSAGES window: "1h" max: 100 }
                limit { metric: RECIPIENTS window: "1h" max: 300 }
                limit { metric: MESSAGES window: "1d" max: 500 }
              }
              level {
                name: "script"
                limit { metric: MESSAGES window: "1h" max: 50 }
              }
              # Per client address: what one internet host may send in
              # (inbound), and what logged-in users send from one address.
              level {
                name: "client_ip"
                limit { metric: MESSAGES window: "1h" max: 1000 }
                limit { metric: RECIPIENTS window: "1h" max: 1000 }
              }

              entity {
                level: "plan"
                name: "starter"
                limit { applies_to: "subscription" metric: MESSAGES window: "1h" max: 500 }
                limit { applies_to: "mailbox" metric: MESSAGES window: "1h" max: 60 }
              }
              entity {
                level: "plan"
                name: "business"
                limit { applies_to: "subscription" metric: MESSAGES window: "1h" max: 4000 }
              }
              entity { level: "subscription" name: "acme" parent: "business" }
              entity { level: "subscription" name: "bakery" parent: "starter" }
              entity { level: "subscription" name: "consult" parent: "starter" }
              entity { level: "domain" name: "acme.example" parent: "acme" }
              entity { level: "domain" name: "acme-shop.example" parent: "acme" }
              entity { level: "domain" name: "bakery.example" parent: "bakery" }
              entity { level: "domain" name: "consult.example" parent: "consult" }
              entity {
                level: "mailbox"
                name: "newsletter@acme.example"
                limit { metric: MESSAGES window: "1h" max: 1000 }
              }
              exempt { cidr: "192.0.2.10/32" sender: "postmaster@acme.example" }
  )pb";
}

}  // namespace sluice
