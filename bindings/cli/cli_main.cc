// sluice: the admin CLI of sluice-policyd, over its local admin socket.
//
//   sluice [--socket PATH] check-config [FILE]
//   sluice replay CONFIG LOG...  a dry run over Postfix logs (no daemon)
//   sluice default-config      the embedded default config (a starting point)
//   sluice [--socket PATH] explain ENTITY
//   sluice [--socket PATH] explain client_address=IP [sasl_username=U] [sender=S] ...
//   sluice [--socket PATH] usage ENTITY
//   sluice [--socket PATH] top LEVEL [messages|recipients|bytes] [WINDOW] [N]
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
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "bindings/cli/replay.h"
#include "bindings/engine/door_coverage.h"
#include "bindings/engine/version.h"
#include "ratelimit/config.h"

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
    return 2;
  }
  if (write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    std::fprintf(stderr, "sluice: write: %s\n", std::strerror(errno));
    return 2;
  }
  std::string reply;
  char buf[65536];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) reply.append(buf, static_cast<size_t>(n));
  close(fd);
  if (reply.empty()) {
    std::fprintf(stderr, "sluice: no reply from %s\n", socket_path.c_str());
    return 2;
  }
  return Print(reply);
}
