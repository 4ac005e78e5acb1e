#include "bindings/postfix/admin.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "bindings/engine/door_coverage.h"
#include "bindings/engine/notice_record.h"
#include "bindings/postfix/policy_protocol.h"
#include "ratelimit/config.h"
#include "ratelimit/limiter.h"
#include "ratelimit/report.h"
#include "reputation/abuse/abuse_guard.h"
#include "reputation/dns/dns_cache.h"
#include "reputation/dns/dnsbl.h"
#include "reputation/score_board.h"

namespace sluice {

namespace {

std::string Err(absl::string_view why) { return absl::StrCat("ERR ", why, "\n"); }

// One row per rule. With limits shared with other hosts (config cluster),
// USAGE is this host's and GLOBAL what all hosts counted at its last sync
// ("-" for a rule that stays per host).
std::string FormatUsage(const config::UsageReport& rep) {
  bool shared = false;
  for (const auto& r : rep.rule()) shared |= r.shared();
  std::string out = absl::StrFormat("%-12s %-32s %-10s %-6s %12s %12s", "LEVEL", "ENTITY", "METRIC",
                                    "WINDOW", "USAGE", "LIMIT");
  absl::StrAppend(&out, shared ? absl::StrFormat(" %12s\n", "GLOBAL") : "\n");
  for (const auto& r : rep.rule()) {
    std::string limit = r.unlimited() ? "unlimited" : absl::StrCat(r.limit());
    if (r.shadow()) absl::StrAppend(&limit, " (shadow)");
    absl::StrAppendFormat(&out, "%-12s %-32s %-10s %-6s %12d %12s", r.level(), r.entity(),
                          absl::AsciiStrToLower(config::Metric_Name(r.metric())), r.window(),
                          r.usage(), limit);
    if (shared) {
      absl::StrAppendFormat(&out, " %12s",
                            r.shared() ? absl::StrCat(r.global_usage()) : std::string("-"));
    }
    absl::StrAppend(&out, "\n");
  }
  return out;
}

}  // namespace

std::string HandleAdminCommand(const AdminContext& ctx, absl::string_view line, absl::Time now) {
  std::vector<std::string> w = absl::StrSplit(line, ' ', absl::SkipWhitespace());
  if (w.empty()) return Err("empty command");
  PolicyEngine& e = *ctx.engine;
  const std::string& cmd = w[0];
  if (cmd == "check-config") {
    std::string path = w.size() > 1 ? w[1] : ctx.config_path;
    if (path.empty()) return Err("no config file (the daemon runs the embedded default)");
    auto c = LoadConfigFile(path);
    if (!c.ok()) return Err(c.status().message());
    return absl::StrCat("OK ", ConfigSummary(path, *c, kPostfixPolicyService));
  }
  if (cmd == "explain" && w.size() > 1 && w[1].find('=') != std::string::npos) {
    // A message, as Postfix's attributes: what the engine makes of it. The
    // words become a policy request, read by the one parser of them.
    std::string text = "request=smtpd_access_policy\nprotocol_state=RCPT\n";
    for (size_t i = 1; i < w.size(); ++i) {
      const size_t eq = w[i].find('=');
      if (eq == std::string::npos) return Err(absl::StrCat("not name=value: \"", w[i], "\""));
      const absl::string_view name = absl::string_view(w[i]).substr(0, eq);
      if (name != "client_address" && name != "sasl_username" && name != "sender" &&
          name != "recipient" && name != "policy_context" && name != "server_port") {
        return Err(absl::StrCat("unknown attribute \"", name,
                                "\" (client_address, sasl_username, sender, recipient, "
                                "server_port, policy_context)"));
      }
      absl::StrAppend(&text, w[i], "\n");
    }
    PolicyRequest req;
    if (absl::Status st = ParsePolicyRequest(text, PolicyLimits(), &req); !st.ok()) {
      const absl::string_view why = st.message();  // "line N: why": the lines are ours
      return Err(why.substr(why.find(": ") == absl::string_view::npos ? 0 : why.find(": ") + 2));
    }
    const SmtpEvent ev = ToSmtpEvent(req);
    config::UsageReport usage;
    PolicyEngine::Explanation x = e.Explain(ev, now, &usage);
    return absl::StrCat("OK\ndirection: ", DirectionName(x.direction), " (",
                        DirectionReasonName(x.reason), ")\nidentity: ", x.identity, "\n",
                        FormatUsage(usage));
  }
  if (cmd == "explain" || cmd == "usage" || cmd == "reset") {
    if (w.size() != 2) return Err(absl::StrCat("usage: ", cmd, " ENTITY"));
    Level level;
    std::string name;
    if (!ParseEntityName(w[1], &level, &name)) {
      return Err(absl::StrCat("bad entity \"", w[1], "\" (mailbox, domain or LEVEL:NAME)"));
    }
    if (cmd == "reset") {
      int n = e.limiter().Reset(level, name);
      e.Unblock(name, now);
      return absl::StrCat("OK reset ", n, " counters of ", LevelName(level), " ", name, "\n");
    }
    if (cmd == "usage" || (level != Level::kMailbox && level != Level::kDomain)) {
      return absl::StrCat("OK\n", FormatUsage(e.limiter().Usage(level, name, now)));
    }
    Request r;
    std::string sender = level == Level::kDomain ? "@" + name : name;
    r.sender = sender;
    return absl::StrCat("OK\n", FormatUsage(e.limiter().UsageForRequest(r, now)));
  }
  if (cmd == "top") {
    if (w.size() < 2) return Err("usage: top LEVEL [messages|recipients|bytes] [WINDOW] [N]");
    Level level;
    if (!ParseLevel(w[1], &level)) return Err(absl::StrCat("unknown level \"", w[1], "\""));
    Metric metric = Metric::kMessages;
    int64_t window = 0;
    size_t n = 20;
    for (size_t i = 2; i < w.size(); ++i) {
      const std::string& a = w[i];
      if (a == "messages" || a == "--by=messages") {
        metric = Metric::kMessages;
      } else if (a == "recipients" || a == "--by=recipients") {
        metric = Metric::kRecipients;
      } else if (a == "bytes" || a == "--by=bytes") {
        metric = Metric::kBytes;
      } else if (absl::SimpleAtoi(a, &n)) {
      } else if (auto win = ParseWindow(a); win.ok()) {
        window = *win;
      } else {
        return Err(absl::StrCat("bad argument \"", a, "\""));
      }
    }
    return absl::StrCat("OK\n", FormatTopTable(e.limiter().Top(level, metric, window, n, now)));
  }
  if (cmd == "report") {
    size_t per_level = 50;
    if (w.size() > 2 || (w.size() == 2 && (!absl::SimpleAtoi(w[1], &per_level) || per_level < 1 ||
                                           per_level > 100000))) {
      return Err("usage: report [N] (the N heaviest entities of each level, 1 to 100000)");
    }
    config::ActivityReport rep = e.Report(now, per_level);
    rep.set_source(absl::StrCat("sluice daemon on ", HostName()));
    return absl::StrCat("OK\n", ToJson(rep), "\n");
  }
  if (cmd == "reload") {
    if (!ctx.reload) return Err("reload is not available");
    absl::Status s = ctx.reload();
    if (!s.ok()) return Err(absl::StrCat(s.message(), " (the running config stays)"));
    return "OK reloaded\n";
  }
  if (cmd == "metrics") {
    if (!ctx.metrics) return Err("no metrics");
    return absl::StrCat("OK\n", ctx.metrics());
  }
  return Err(
      absl::StrCat("unknown command \"", cmd,
                   "\" (check-config, explain, usage, top, report, reset, reload, metrics)"));
}

}  // namespace sluice
