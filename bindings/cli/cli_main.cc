// sluice: the admin CLI of sluice-policyd, over its local admin socket.
//
//   sluice [--socket PATH] check-config [FILE]
//   sluice replay CONFIG LOG...  a dry run over Postfix logs (no daemon)
//   sluice default-config      the embedded default config (a starting point)
//   sluice [--socket PATH] explain ENTITY
//   sluice [--socket PATH] explain client_address=IP [sasl_username=U] [sender=S] ...
//   sluice [--socket PATH] usage ENTITY
//   sluice [--socket PATH] top LEVEL [messages|recipients|bytes] [WINDOW] [N]
//   sluice [--socket PATH] report [-o FILE] [--json] [--top N]
//   sluice report --replay CONFIG LOG... [-o FILE] [--json] [--top N]
//   sluice report --from-json FILE [-o FILE]
//                              the report page (HTML; --json: the data)
//   sluice [--socket PATH] reset ENTITY
//   sluice [--socket PATH] reload
//   sluice [--socket PATH] metrics
//   sluice help | --help | -h      this usage (no daemon needed)
//   sluice version | --version
//
// `check-config FILE` works without a daemon. Exit status: 0 OK, 1 the
// command failed (the reason is printed), 2 usage or connection error.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "bindings/cli/replay.h"
#include "bindings/engine/door_coverage.h"
#include "bindings/engine/version.h"
#include "bindings/report/html_report.h"
#include "google/protobuf/util/json_util.h"
#include "ratelimit/config.h"
#include "ratelimit/report.h"

namespace {

constexpr char kDefaultSocket[] = "/run/sluice/admin.sock";

// What `sluice help` prints (sluice(1) documents each command and option:
// tests/cli/manners_test.sh checks both ways).
constexpr char kUsage[] =
    "usage: sluice [--socket PATH] COMMAND\n"
    "commands (the admin socket of sluice-policyd or sluice-milter, default\n"
    "/run/sluice/admin.sock, unless noted):\n"
    "  check-config FILE          check a config; no daemon needed\n"
    "  replay CONFIG LOG...       a dry run of CONFIG over Postfix or Exim logs: what it would\n"
    "                             have deferred or refused; no daemon needed\n"
    "  default-config             print the embedded default config; no daemon needed\n"
    "  explain ENTITY             a level:entity's rules and usage\n"
    "  explain NAME=VALUE...      what a request would be charged (client_address=,\n"
    "                             sasl_username=, sender=, ...), counting nothing\n"
    "  usage ENTITY               usage of every rule of a level:entity\n"
    "  top LEVEL [messages|recipients|bytes] [WINDOW] [N]\n"
    "                             the heaviest senders of a level\n"
    "  report [-o FILE] [--json] [--top N]\n"
    "                             the report page: one self-contained HTML file (messages per\n"
    "                             hour per level with limits, top senders, trips, drill-down);\n"
    "                             --json writes its data instead\n"
    "  report --replay CONFIG LOG... [-o FILE] [--json] [--top N]\n"
    "                             the same page for a dry run over logs; no daemon needed\n"
    "  report --from-json FILE [-o FILE]\n"
    "                             the page of data saved with --json; no daemon needed\n"
    "  reset ENTITY               zero a level:entity's counters, lift its blocks\n"
    "  reload                     reread the config (a bad one is refused)\n"
    "  metrics                    the daemon's metrics (Prometheus text)\n"
    "  help, --help, -h           this text\n"
    "  version, --version         the version\n";

int Print(const std::string& reply) {
  // First line "OK ..." or "ERR reason"; the body follows.
  size_t nl = reply.find('\n');
  std::string first = reply.substr(0, nl);
  std::string body = nl == std::string::npos ? "" : reply.substr(nl + 1);
  if (first.rfind("ERR ", 0) == 0) {
    std::fprintf(stderr, "sluice: %s\n", first.substr(4).c_str());
    return 1;
  }
  if (first.size() > 3) std::printf("%s\n", first.substr(3).c_str());
  std::fputs(body.c_str(), stdout);
  return 0;
}

// Sends one command line to the daemon's admin socket; the reply in
// *reply. Returns 0, or 2 (printed) if the daemon cannot be reached.
int Ask(const std::string& socket_path, std::string line, std::string* reply) {
  line += "\n";
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (fd < 0 || socket_path.size() >= sizeof(sa.sun_path)) {
    std::fprintf(stderr, "sluice: bad socket %s\n", socket_path.c_str());
    return 2;
  }
  std::memcpy(sa.sun_path, socket_path.data(), socket_path.size());
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    std::fprintf(stderr, "sluice: cannot reach sluice-policyd at %s: %s\n", socket_path.c_str(),
                 std::strerror(errno));
    close(fd);
    return 2;
  }
  if (write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    std::fprintf(stderr, "sluice: write: %s\n", std::strerror(errno));
    close(fd);
    return 2;
  }
  char buf[65536];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) reply->append(buf, static_cast<size_t>(n));
  close(fd);
  if (reply->empty()) {
    std::fprintf(stderr, "sluice: no reply from %s\n", socket_path.c_str());
    return 2;
  }
  return 0;
}

// Writes `data` to `path` (through a temporary file and a rename: a
// reader never sees half a page), or to stdout for "" or "-".
int WriteOut(const std::string& path, const std::string& data) {
  if (path.empty() || path == "-") {
    std::fwrite(data.data(), 1, data.size(), stdout);
    return 0;
  }
  const std::string tmp = absl::StrCat(path, ".tmp.", getpid());
  FILE* f = std::fopen(tmp.c_str(), "w");
  bool ok = f != nullptr && std::fwrite(data.data(), 1, data.size(), f) == data.size();
  if (f != nullptr) ok = std::fclose(f) == 0 && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::fprintf(stderr, "sluice: cannot write %s: %s\n", path.c_str(), std::strerror(errno));
    std::remove(tmp.c_str());
    return 1;
  }
  return 0;
}

// sluice report ...: the report page from the daemon, a replay or JSON.
int ReportCommand(const std::string& socket_path, const std::vector<std::string>& args) {
  std::string out, from_json, config_path;
  std::vector<std::string> logs;
  bool json = false, replay = false;
  size_t top = 50;
  for (size_t k = 0; k < args.size(); ++k) {
    const std::string& a = args[k];
    const bool has_value = k + 1 < args.size();
    if ((a == "-o" || a == "--output") && has_value) {
      out = args[++k];
    } else if (a == "--json") {
      json = true;
    } else if (a == "--top" && has_value) {
      if (!absl::SimpleAtoi(args[++k], &top) || top < 1 || top > 100000) {
        std::fprintf(stderr, "sluice: --top needs a number from 1 to 100000\n");
        return 2;
      }
    } else if (a == "--from-json" && has_value) {
      from_json = args[++k];
    } else if (a == "--replay" && k + 2 < args.size()) {
      replay = true;
      config_path = args[++k];
      while (k + 1 < args.size() && args[k + 1].rfind("-", 0) != 0) logs.push_back(args[++k]);
    } else {
      std::fprintf(stderr, "sluice: report: bad argument \"%s\"\n%s", a.c_str(), kUsage);
      return 2;
    }
  }
  if (replay && !from_json.empty()) {
    std::fprintf(stderr, "sluice: report: --replay or --from-json, not both\n");
    return 2;
  }
  sluice::config::ActivityReport rep;
  if (replay) {
    auto c = sluice::LoadConfigFile(config_path);
    if (!c.ok()) {
      std::fprintf(stderr, "sluice: %s\n", std::string(c.status().message()).c_str());
      return 1;
    }
    sluice::ReplaySummary r;
    if (absl::Status s = sluice::Replay(*c, logs, absl::LocalTimeZone(), &r, top); !s.ok()) {
      std::fprintf(stderr, "sluice: %s\n", std::string(s.message()).c_str());
      return 1;
    }
    rep = std::move(r.activity);
  } else {
    std::string text;
    if (!from_json.empty()) {
      std::ifstream in(from_json, std::ios::binary);
      if (!in.good()) {
        std::fprintf(stderr, "sluice: cannot read %s\n", from_json.c_str());
        return 1;
      }
      text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    } else {
      std::string reply;
      if (int rc = Ask(socket_path, absl::StrCat("report ", top), &reply); rc != 0) return rc;
      if (reply.rfind("OK\n", 0) != 0) return Print(reply);
      text = reply.substr(3);
    }
    google::protobuf::util::JsonParseOptions po;
    po.ignore_unknown_fields = true;  // data from a newer daemon
    if (auto s = google::protobuf::util::JsonStringToMessage(text, &rep, po); !s.ok()) {
      std::fprintf(stderr, "sluice: %s: not report data: %s\n",
                   from_json.empty() ? "the daemon's reply" : from_json.c_str(),
                   std::string(s.message()).c_str());
      return 1;
    }
    if (rep.hours() < 0 || rep.hours() > 24 * 366) {
      std::fprintf(stderr, "sluice: report data covers %d hours (at most a year)\n", rep.hours());
      return 1;
    }
  }
  if (json) return WriteOut(out, sluice::ToJson(rep) + "\n");
  sluice::HtmlReportOptions ho;
  ho.tz = absl::LocalTimeZone();
  if (int rc = WriteOut(out, sluice::RenderHtmlReport(rep, ho)); rc != 0) return rc;
  if (!out.empty() && out != "-") {
    std::fprintf(stderr, "sluice: wrote %s (%d entities, %d trips, %d hours)\n", out.c_str(),
                 rep.series_size(), rep.trip_size(), rep.hours());
  }
  return 0;
}
}  // namespace

int main(int argc, char** argv) {
  std::string socket_path = kDefaultSocket;
  int i = 1;
  if (i + 1 < argc && std::strcmp(argv[i], "--socket") == 0) {
    socket_path = argv[i + 1];
    i += 2;
  }
  if (i >= argc) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  const std::string cmd = argv[i];
  if (cmd == "help" || cmd == "--help" || cmd == "-h") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (cmd == "version" || cmd == "--version") {
    std::printf("sluice %s\n", sluice::kVersionString);
    return 0;
  }
  if (std::strcmp(argv[i], "default-config") == 0) {
    const absl::string_view text = sluice::DefaultConfigText();
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fputs("\n", stdout);
    return 0;
  }
  if (cmd == "replay") {
    if (i + 2 >= argc) {
      std::fputs(kUsage, stderr);
      return 2;
    }
    auto c = sluice::LoadConfigFile(argv[i + 1]);
    if (!c.ok()) {
      std::fprintf(stderr, "sluice: %s\n", std::string(c.status().message()).c_str());
      return 1;
    }
    sluice::ReplaySummary r;
    absl::Status s = sluice::Replay(*c, std::vector<std::string>(argv + i + 2, argv + argc),
                                    absl::LocalTimeZone(), &r);
    if (!s.ok()) {
      std::fprintf(stderr, "sluice: %s\n", std::string(s.message()).c_str());
      return 1;
    }
    std::fputs(r.report.c_str(), stdout);
    return 0;
  }
  if (cmd == "report") {
    return ReportCommand(socket_path, std::vector<std::string>(argv + i + 1, argv + argc));
  }
  if (std::strcmp(argv[i], "check-config") == 0 && i + 1 < argc) {
    auto c = sluice::LoadConfigFile(argv[i + 1]);
    if (!c.ok()) {
      std::fprintf(stderr, "sluice: %s\n", std::string(c.status().message()).c_str());
      return 1;
    }
    // Rules the policy service cannot feed are reported (sluice-policyd is
    // the door this tool serves).
    std::fputs(sluice::ConfigSummary(argv[i + 1], *c, sluice::kPostfixPolicyService).c_str(),
               stdout);
    return 0;
  }
  std::string line;
  for (int j = i; j < argc; ++j) absl::StrAppend(&line, j > i ? " " : "", argv[j]);
  std::string reply;
  if (int rc = Ask(socket_path, line, &reply); rc != 0) return rc;
  return Print(reply);
}
