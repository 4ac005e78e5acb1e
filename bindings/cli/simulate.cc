// sluice_simulate: the built-in demonstration (README's run command until
// the policy daemon exists).
//
// A shared hosting server with thousands of ordinary mailboxes in a handful
// of subscriptions sends its normal traffic through sluice's limiter, under a
// fake clock. At minute 20 one mailbox is compromised and starts a burst; at
// minute 40 a hacked PHP script starts mailing through the web server. Each
// simulated minute prints what was admitted and deferred, and which level
// and entity tripped; the end prints the top senders.
//
// Usage: sluice_simulate [--config FILE] [--minutes N] [--mailboxes N]
//                        [--seed N] [--json]
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "ratelimit/clock.h"
#include "ratelimit/config.h"
#include "ratelimit/limiter.h"
#include "ratelimit/report.h"

namespace {

using sluice::Decision;
using sluice::Level;
using sluice::Limiter;
using sluice::Request;

struct Args {
  std::string config_path;
  int minutes = 60;
  int mailboxes = 3000;
  uint64_t seed = 1;
  bool json = false;
};

bool ParseArgs(int argc, char** argv, Args* a) {
  for (int i = 1; i < argc; ++i) {
    std::string s = argv[i];
    auto next = [&](const char* what) -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "sluice_simulate: %s needs a value\n", what);
        std::exit(2);
      }
      return argv[++i];
    };
    if (s == "--config") {
      a->config_path = next("--config");
    } else if (s == "--minutes") {
      a->minutes = std::atoi(next("--minutes"));
    } else if (s == "--mailboxes") {
      a->mailboxes = std::atoi(next("--mailboxes"));
    } else if (s == "--seed") {
      a->seed = std::strtoull(next("--seed"), nullptr, 10);
    } else if (s == "--json") {
      a->json = true;
    } else if (s == "--help" || s == "-h") {
      std::printf(
          "usage: sluice_simulate [--config FILE] [--minutes N] [--mailboxes N] "
          "[--seed N] [--json]\n");
      std::exit(0);
    } else {
      std::fprintf(stderr, "sluice_simulate: unknown argument %s\n", s.c_str());
      return false;
    }
  }
  if (a->minutes < 1 || a->minutes > 24 * 60 || a->mailboxes < 10 || a->mailboxes > 1000000) {
    std::fprintf(stderr, "sluice_simulate: --minutes 1..1440, --mailboxes 10..1000000\n");
    return false;
  }
  return true;
}

// The hosting directory: configured domains plus many small hosted ones
// that the panel (this resolver) places in subscriptions on the starter plan.
class PanelDirectory : public sluice::PathResolver {
 public:
  Path Resolve(absl::string_view domain) noexcept override {
    // site17.example -> subscription "cust17", plan "starter"
    if (domain.size() > 12 && domain.substr(0, 4) == "site") {
      size_t dot = domain.find('.');
      buf_ = absl::StrCat("cust", domain.substr(4, dot - 4));
      return {buf_, "starter"};
    }
    return {};
  }

 private:
  static thread_local std::string buf_;
};
thread_local std::string PanelDirectory::buf_;

}  // namespace

int main(int argc, char** argv) {
  Args args;
  if (!ParseArgs(argc, argv, &args)) return 2;
  auto cfg = args.config_path.empty()
                 ? sluice::ParseConfigText(sluice::DefaultConfigText(), "<built-in>")
                 : sluice::LoadConfigFile(args.config_path);
  if (!cfg.ok()) {
    std::fprintf(stderr, "sluice_simulate: %s\n", std::string(cfg.status().message()).c_str());
    return 1;
  }
  sluice::FakeClock clock(absl::FromUnixSeconds(1767261600));  // 2026-01-01 10:00 UTC
  PanelDirectory directory;
  Limiter::Options opt;
  opt.resolver = &directory;
  auto made = Limiter::Create(*cfg, clock.Now(), opt);
  if (!made.ok()) {
    std::fprintf(stderr, "sluice_simulate: %s\n", std::string(made.status().message()).c_str());
    return 1;
  }
  Limiter& limiter = **made;

  std::vector<std::string> trips;
  limiter.AddEventSink([&](const sluice::Event& e) {
    trips.push_back(absl::StrFormat(
        "%s %s %s %s: %s %d/%s reached (usage %d)", e.shadow ? "SHADOW" : "TRIP",
        sluice::ActionName(e.action), sluice::LevelName(e.level), e.entity,
        sluice::MetricName(e.metric), e.limit, sluice::FormatWindow(e.window_seconds), e.usage));
  });

  // The population: configured domains and 40 small hosted sites.
  std::vector<std::string> domains = {"acme.example", "acme-shop.example", "bakery.example",
                                      "consult.example"};
  for (int i = 0; i < 40; ++i) domains.push_back(absl::StrCat("site", i, ".example"));
  std::vector<std::string> mailboxes, homes;
  for (int i = 0; i < args.mailboxes; ++i) {
    mailboxes.push_back(absl::StrCat("user", i, "@", domains[i % domains.size()]));
    // Each user submits from an address of its own (home, office, phone).
    homes.push_back(absl::StrCat("198.18.", (i / 256) % 256, ".", i % 256));
  }
  const std::string compromised = "info@bakery.example";
  const std::string script = "/var/www/vhosts/acme.example/httpdocs/wp-content/uploads/x.php";
  const std::string script_sender = "wordpress@acme.example";

  std::mt19937_64 rng(args.seed);
  // Ordinary mailboxes send about 2 messages an hour, 1-3 recipients each.
  const double p_send = 2.0 / 60.0;
  std::uniform_real_distribution<double> uni(0, 1);

  std::printf("sluice simulation: %d mailboxes on %zu domains, %d minutes\n", args.mailboxes,
              domains.size(), args.minutes);
  std::printf("minute 20: %s is compromised (40 messages/minute, 25 recipients each)\n",
              compromised.c_str());
  std::printf("minute 40: a PHP script on acme.example starts mailing (30 messages/minute)\n\n");
  std::printf("%6s %9s %9s %11s %11s  %s\n", "minute", "admitted", "deferred", "compromised",
              "script", "what tripped");
  uint64_t total_ok = 0, total_deferred = 0, normal_deferred = 0, burst_ok = 0, burst_total = 0;
  for (int minute = 0; minute < args.minutes; ++minute) {
    int ok = 0, deferred = 0, bad_ok = 0, bad_total = 0, php_ok = 0, php_total = 0;
    size_t trips_before = trips.size();
    for (int second = 0; second < 60; second += 5) {
      absl::Time now = clock.Now();
      // Normal traffic for this 5-second slice.
      for (size_t i = 0; i < mailboxes.size(); ++i) {
        if (uni(rng) >= p_send / 12) continue;
        Request r;
        r.sender = mailboxes[i];
        r.recipients = 1 + rng() % 3;
        r.client_ip = homes[i];
        Decision d = limiter.CheckAndCharge(r, now);
        if (d.admitted()) {
          ++ok;
        } else {
          ++deferred;
          ++normal_deferred;
        }
      }
      // One attacker's messages for this slice; counts what got through.
      auto attack = [&](int n, const Request& r, int* admitted, int* total) {
        for (int i = 0; i < n; ++i) {
          ++*total;
          if (limiter.CheckAndCharge(r, now).admitted()) {
            ++*admitted;
            ++ok;
          } else {
            ++deferred;
          }
        }
      };
      if (minute >= 20) {  // 40 a minute, 25 recipients each
        Request r;
        r.sender = compromised;
        r.recipients = 25;
        r.client_ip = "198.51.100.66";
        attack(40 / 12 + (second % 15 == 0 ? 1 : 0), r, &bad_ok, &bad_total);
      }
      if (minute >= 40) {  // 30 a minute from the script
        Request r;
        r.sender = script_sender;
        r.script = script;
        attack(30 / 12 + (second % 10 == 0 ? 1 : 0), r, &php_ok, &php_total);
      }
      clock.Advance(absl::Seconds(5));
    }
    total_ok += ok;
    total_deferred += deferred;
    burst_ok += bad_ok + php_ok;
    burst_total += bad_total + php_total;
    std::string what;
    for (size_t i = trips_before; i < trips.size(); ++i) {
      if (!what.empty()) what += "\n" + std::string(52, ' ') + " ";
      what += trips[i];
    }
    std::printf("%6d %9d %9d %5d/%-5d %5d/%-5d  %s\n", minute, ok, deferred, bad_ok, bad_total,
                php_ok, php_total, what.c_str());
  }
  std::printf(
      "\ntotal: %llu admitted, %llu deferred; ordinary mailboxes deferred: %llu; "
      "attack messages admitted %llu of %llu\n\n",
      static_cast<unsigned long long>(total_ok), static_cast<unsigned long long>(total_deferred),
      static_cast<unsigned long long>(normal_deferred), static_cast<unsigned long long>(burst_ok),
      static_cast<unsigned long long>(burst_total));
  absl::Time now = clock.Now();
  for (Level level : {Level::kSubscription, Level::kDomain, Level::kMailbox}) {
    auto top = limiter.Top(level, sluice::Metric::kMessages, 3600, 5, now);
    if (args.json) {
      std::printf("%s\n", sluice::ToJson(top).c_str());
    } else {
      std::printf("%s\n", sluice::FormatTopTable(top).c_str());
    }
  }
  return 0;
}
