// Reputation microbenchmarks: a DNS cache hit (1 and 2 threads), a CIDR
// lookup in 100,000 prefixes, URL extraction throughput, and, with
// --unbound PORT, a serial query answered from a real unbound's cache over
// loopback (benchmarks/reputation_bench.sh starts unbound and rbldnsd).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "ratelimit/clock.h"
#include "reputation/content/url_extractor.h"
#include "reputation/dns/dns_cache.h"
#include "reputation/local_lists.h"
#include "tests/testing/net.h"

namespace sluice {
namespace {

int g_unbound_port = 0;

class InstantDns : public DnsResolver {
 public:
  void Query(const std::string&, Type, Callback cb) override {
    DnsAnswer a;
    a.a = {0x7f000002};
    a.ttl = 3600;
    cb(absl::OkStatus(), a);
  }
  uint64_t queries_sent() const override { return 0; }
};

DnsCache* Cache() {
  static InstantDns* dns = new InstantDns;
  static RealClock* clock = new RealClock;
  static DnsCache* cache = [] {
    auto* c = new DnsCache(dns, clock);
    for (int i = 0; i < 1000; ++i) {
      c->Lookup(absl::StrCat(i, ".2.0.192.zen.bl.test"), absl::Now() + absl::Seconds(1));
    }
    return c;
  }();
  return cache;
}

void BM_DnsCacheHit(benchmark::State& state) {
  DnsCache* cache = Cache();
  std::vector<std::string> names;
  for (int i = 0; i < 1000; ++i) names.push_back(absl::StrCat(i, ".2.0.192.zen.bl.test"));
  size_t i = state.thread_index() * 7;
  const absl::Time deadline = absl::Now() + absl::Hours(1);
  for (auto _ : state) {
    auto r = cache->Lookup(names[i++ % names.size()], deadline);
    benchmark::DoNotOptimize(r.answer.a.data());
  }
}
BENCHMARK(BM_DnsCacheHit)->Threads(1)->Threads(2)->UseRealTime();

void BM_CidrLookup100k(benchmark::State& state) {
  static std::shared_ptr<const LocalLists> lists = [] {
    std::mt19937 rng(1);
    std::string text;
    std::set<std::pair<uint32_t, int>> seen;  // distinct networks only
    while (seen.size() < 100000) {
      const int len = 8 + static_cast<int>(rng() % 25);  // /8 .. /32
      const uint32_t a = rng() & (len == 32 ? ~0u : ~(~0u >> len));
      if (!seen.insert({a, len}).second) continue;
      in_addr x;
      x.s_addr = htonl(a);
      char buf[INET_ADDRSTRLEN];
      inet_ntop(AF_INET, &x, buf, sizeof(buf));
      absl::StrAppend(&text, seen.size() % 3 ? "deny " : "allow ", buf, "/", len, "\n");
    }
    return *LocalLists::Parse(text);
  }();
  std::mt19937 rng(2);
  std::vector<std::string> ips;
  for (int i = 0; i < 4096; ++i) {
    in_addr x;
    x.s_addr = rng();
    char buf[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &x, buf, sizeof(buf));
    ips.push_back(buf);
  }
  size_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(lists->CheckIp(ips[i++ & 4095]));
  state.counters["prefixes"] = static_cast<double>(lists->size());
}
BENCHMARK(BM_CidrLookup100k);

void BM_UrlExtraction(benchmark::State& state) {
  std::string text;
  std::mt19937 rng(3);
  while (text.size() < (1 << 20)) {
    for (int w = 0; w < 40; ++w) absl::StrAppend(&text, "word", rng() % 1000, " ");
    absl::StrAppend(&text, "<a href=\"https://click", rng() % 50, ".tracker.example/r?id=", rng(),
                    "\">here</a> www.shop", rng() % 30, ".example\n");
  }
  // No per-message cap here: the whole text is scanned (a message stops
  // at max_hosts distinct hosts).
  UrlExtractor::Options o;
  o.max_hosts = 1 << 20;
  UrlExtractor x(o);
  std::vector<UrlHost> hosts;
  for (auto _ : state) {
    x.Extract(text, &hosts);
    benchmark::DoNotOptimize(hosts.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}
BENCHMARK(BM_UrlExtraction)->Unit(benchmark::kMillisecond);

// One A query for 2.0.0.127.zen.bl.test, sent to unbound and waited for;
// unbound answers from its cache after the first.
std::string DnsQuery(uint16_t id) {
  std::string m = {static_cast<char>(id >> 8), static_cast<char>(id), 1, 0, 0, 1, 0, 0, 0, 0, 0, 0};
  for (const char* l : {"2", "0", "0", "127", "zen", "bl", "test"}) {
    m.push_back(static_cast<char>(std::strlen(l)));
    m += l;
  }
  m += std::string("\0\0\1\0\1", 5);
  return m;
}

void BM_UnboundCacheHit(benchmark::State& state) {
  if (g_unbound_port == 0) {
    state.SkipWithError("no --unbound PORT");
    return;
  }
  int fd = testing::ConnectTcp(g_unbound_port, 2, SOCK_DGRAM);
  char buf[512];
  uint16_t id = 1;
  for (auto _ : state) {
    std::string q = DnsQuery(id++);
    send(fd, q.data(), q.size(), 0);
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n < 12 || (buf[3] & 0xF) != 0) {
      state.SkipWithError("no answer from unbound");
      break;
    }
  }
  close(fd);
}
BENCHMARK(BM_UnboundCacheHit);

}  // namespace
}  // namespace sluice

int main(int argc, char** argv) {
  std::vector<char*> rest = {argv[0]};
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--unbound" && i + 1 < argc) {
      sluice::g_unbound_port = std::atoi(argv[++i]);
    } else {
      rest.push_back(argv[i]);
    }
  }
  int n = static_cast<int>(rest.size());
  benchmark::Initialize(&n, rest.data());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
