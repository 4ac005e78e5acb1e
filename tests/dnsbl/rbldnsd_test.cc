// Integration test: sluice's c-ares resolver and DNS cache against a real
// rbldnsd on 127.0.0.1 (started here, zones written here, stopped by PID).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "ratelimit/clock.h"
#include "reputation/dns/dns_cache.h"
#include "reputation/dns/dnsbl.h"
#include "reputation/dns/dnsbl_query.h"
#include "reputation/dns/resolver.h"
#include "tests/testing/net.h"

namespace sluice {
namespace {

using testing::FreePort;
using testing::StopChild;

class Rbldnsd {
 public:
  explicit Rbldnsd(const std::string& dir) : dir_(dir), port_(FreePort()) {}
  ~Rbldnsd() { Stop(); }

  void Start() {
    const std::string bind = absl::StrCat("127.0.0.1/", port_);
    const std::string log = "+" + dir_ + "/queries.log";
    pid_ = fork();
    if (pid_ == 0) {
      execlp("rbldnsd", "rbldnsd", "-u", "rbldns", "-n", "-b", bind.c_str(), "-w", dir_.c_str(),
             "-l", log.c_str(), "-t", "300", "zen.bl.test:ip4set:ip4.zone",
             "zen.bl.test:ip4set:ip4b.zone", "zen.bl.test:ip6trie:ip6.zone",
             "dbl.bl.test:dnset:dbl.zone", "err.bl.test:ip4set:err.zone",
             static_cast<char*>(nullptr));
      _exit(127);
    }
  }
  void Stop() {
    StopChild(pid_);
    pid_ = -1;
  }
  int port() const { return port_; }
  // Lines in the query log that mention `name`.
  int Logged(const std::string& name) const {
    std::ifstream in(dir_ + "/queries.log");
    std::string line;
    int n = 0;
    while (std::getline(in, line)) n += line.find(name) != std::string::npos;
    return n;
  }

 private:
  std::string dir_;
  int port_;
  pid_t pid_ = -1;
};

class RbldnsdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sluice-rbldnsd.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    chmod(dir_.c_str(), 0755);  // rbldnsd runs as rbldns
    Write("queries.log", "");
    chmod((dir_ + "/queries.log").c_str(), 0666);  // ... and writes its query log
    Write("ip4.zone",
          "$SOA 300 ns.bl.test. hostmaster.bl.test. 1 600 300 86400 60\n$TTL 300\n"
          ":127.0.0.2:Listed, see https://bl.test/$\n127.0.0.2\n192.0.2.0/24 :127.0.0.4:Spam "
          "source\n198.51.100.7\n");
    Write("ip4b.zone", "$TTL 300\n198.51.100.7 :127.0.0.10:Also in the policy list\n");
    Write("ip6.zone",
          "$TTL 300\n2001:db8::/32 :127.0.0.3:IPv6 spam network\n"
          "::ffff:7f00:2 :127.0.0.2:RFC 5782 IPv6 test point\n");
    Write("dbl.zone", "$TTL 300\n:127.0.1.2:Spam domain\nspam.example\n.spamfarm.example\ntest\n");
    Write("err.zone", "$TTL 300\n192.0.2.1 :127.255.255.254:Public resolver\n");
    server_ = std::make_unique<Rbldnsd>(dir_);
    server_->Start();
    AresResolver::Options o;
    o.server = "127.0.0.1";
    o.port = server_->port();
    o.timeout = absl::Milliseconds(300);
    o.tries = 2;
    auto r = AresResolver::Create(o);
    ASSERT_TRUE(r.ok()) << r.status();
    resolver_ = std::move(*r);
    resolver_->Start();
    DnsCache::Options co;
    co.prefetch = 0;  // expiry checks below need entries that are not refreshed early
    cache_ = std::make_unique<DnsCache>(resolver_.get(), &clock_, co);
    // rbldnsd loads its zones in the background: wait (bounded) for an answer.
    bool up = false;
    for (int i = 0; i < 100 && !up; ++i) {
      DnsAnswer a;
      up = Query("2.0.0.127.zen.bl.test", &a).ok() && !a.a.empty();
      if (!up) absl::SleepFor(absl::Milliseconds(50));
    }
    ASSERT_TRUE(up) << "rbldnsd did not answer on port " << server_->port();
  }
  void TearDown() override {
    cache_.reset();
    resolver_.reset();
    server_.reset();
    std::system(absl::StrCat("rm -rf ", dir_).c_str());
  }
  void Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ + "/" + name) << text;
  }
  // A direct query through the resolver (no cache).
  absl::Status Query(const std::string& name, DnsAnswer* out,
                     DnsResolver::Type type = DnsResolver::Type::kA) {
    // std::mutex, not absl::Notification: Debian's Abseil is invisible to
    // TSan. Shared state: a late callback after a timeout writes nowhere stale.
    struct State {
      std::mutex mu;
      std::condition_variable cv;
      bool done = false;
      absl::Status status;
      DnsAnswer answer;
    };
    auto st = std::make_shared<State>();
    resolver_->Query(name, type, [st](const absl::Status& s, const DnsAnswer& a) {
      std::lock_guard<std::mutex> lock(st->mu);
      st->status = s;
      st->answer = a;
      st->done = true;
      st->cv.notify_all();
    });
    std::unique_lock<std::mutex> lock(st->mu);
    if (!st->cv.wait_for(lock, std::chrono::seconds(5), [&] { return st->done; })) {
      return absl::DeadlineExceededError("no callback");
    }
    *out = st->answer;
    return st->status;
  }
  DnsCache::Result Lookup(const std::string& name) {
    return cache_->Lookup(name, absl::Now() + absl::Seconds(3));
  }

  std::string dir_;
  std::unique_ptr<Rbldnsd> server_;
  FakeClock clock_{absl::FromUnixSeconds(1700000000)};
  std::unique_ptr<AresResolver> resolver_;
  std::unique_ptr<DnsCache> cache_;
};

TEST_F(RbldnsdTest, Ipv4Ipv6AndDomainListings) {
  std::string q;
  ASSERT_TRUE(IpQueryName("192.0.2.55", "zen.bl.test", &q));
  auto r = Lookup(q);
  ASSERT_EQ(r.source, DnsCache::Source::kNetwork);
  EXPECT_EQ(r.answer.a, std::vector<uint32_t>{0x7f000004});
  EXPECT_EQ(r.answer.ttl, 300u);
  ASSERT_TRUE(IpQueryName("2001:db8::25", "zen.bl.test", &q));
  r = Lookup(q);
  EXPECT_EQ(r.answer.a, std::vector<uint32_t>{0x7f000003});
  r = Lookup(DomainQueryName("www.spamfarm.example", "dbl.bl.test"));
  EXPECT_EQ(r.answer.a, std::vector<uint32_t>{0x7f000102});
  r = Lookup(DomainQueryName("spam.example", "dbl.bl.test"));
  EXPECT_EQ(r.answer.a, std::vector<uint32_t>{0x7f000102});
  // Several A records for one name (two datasets of one zone).
  ASSERT_TRUE(IpQueryName("198.51.100.7", "zen.bl.test", &q));
  r = Lookup(q);
  std::vector<uint32_t> both = r.answer.a;
  std::sort(both.begin(), both.end());
  EXPECT_EQ(both, (std::vector<uint32_t>{0x7f000002, 0x7f00000a}));
  // Filters on real answers.
  auto range = ReturnFilter::Parse("127.0.0.[2..11]");
  auto mask = ReturnFilter::Parse("mask:0x08");
  EXPECT_TRUE(range->Match(both[0]) && range->Match(both[1]));
  EXPECT_TRUE(mask->Match(0x7f00000a));
  EXPECT_FALSE(mask->Match(0x7f000002));
}

TEST_F(RbldnsdTest, TxtReasonsAndNxdomainWithSoaNegativeTtl) {
  DnsAnswer a;
  ASSERT_TRUE(Query("55.2.0.192.zen.bl.test", &a, DnsResolver::Type::kTxt).ok());
  ASSERT_FALSE(a.txt.empty());
  EXPECT_EQ(a.txt[0], "Spam source");
  ASSERT_TRUE(Query("1.1.1.10.zen.bl.test", &a).ok());
  EXPECT_EQ(a.rcode, 3);
  EXPECT_TRUE(a.a.empty());
  EXPECT_EQ(a.negative_ttl, 60);  // the SOA minimum
  // The cache keeps NXDOMAIN for that long (clamped to >= min_ttl 60 s).
  auto r = Lookup("1.1.1.10.zen.bl.test");
  EXPECT_EQ(r.source, DnsCache::Source::kNetwork);
  clock_.Advance(absl::Seconds(59));
  EXPECT_EQ(Lookup("1.1.1.10.zen.bl.test").source, DnsCache::Source::kCache);
  clock_.Advance(absl::Seconds(2));
  EXPECT_EQ(Lookup("1.1.1.10.zen.bl.test").source, DnsCache::Source::kNetwork);
}

TEST_F(RbldnsdTest, Rfc5782TestPointsAndErrorAnswers) {
  EXPECT_EQ(Lookup("2.0.0.127.zen.bl.test").answer.a, std::vector<uint32_t>{0x7f000002});
  auto not_listed = Lookup("1.0.0.127.zen.bl.test");
  EXPECT_TRUE(not_listed.known());
  EXPECT_EQ(not_listed.answer.rcode, 3);
  auto err = Lookup("1.2.0.192.err.bl.test");
  ASSERT_EQ(err.answer.a.size(), 1u);
  EXPECT_TRUE(IsErrorAnswer(ListKind::kSpamhaus, err.answer.a[0]));
}

TEST_F(RbldnsdTest, SingleFlightThousandConcurrentLookupsOneQuery) {
  const std::string name = "77.2.0.192.zen.bl.test";
  const uint64_t before = resolver_->queries_sent();
  std::vector<std::thread> threads;
  std::atomic<int> listed{0};
  for (int t = 0; t < 20; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        auto r = cache_->Lookup(name, absl::Now() + absl::Seconds(5));
        if (!r.answer.a.empty()) listed++;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(listed.load(), 1000);
  EXPECT_EQ(resolver_->queries_sent() - before, 1u);
  absl::SleepFor(absl::Milliseconds(100));  // the log is unbuffered; give it a moment
  EXPECT_EQ(server_->Logged("77.2.0.192.zen.bl.test"), 1);
}

TEST_F(RbldnsdTest, ServeStaleWhenTheServerIsGone) {
  auto r = Lookup("88.2.0.192.zen.bl.test");
  ASSERT_EQ(r.source, DnsCache::Source::kNetwork);
  server_->Stop();
  clock_.Advance(absl::Seconds(301));  // expired
  absl::Time start = absl::Now();
  auto stale = cache_->Lookup("88.2.0.192.zen.bl.test", absl::Now() + absl::Seconds(2));
  EXPECT_EQ(stale.source, DnsCache::Source::kStale);
  EXPECT_EQ(stale.answer.a, std::vector<uint32_t>{0x7f000004});
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  // A name never seen: unknown, never listed.
  auto unknown = cache_->Lookup("99.2.0.192.zen.bl.test", absl::Now() + absl::Seconds(2));
  EXPECT_EQ(unknown.source, DnsCache::Source::kUnknown);
}

TEST_F(RbldnsdTest, ListsWeightsThresholdSuspensionAndHealth) {
  config::Reputation rc;
  auto* zen = rc.add_list();
  zen->set_zone("zen.bl.test");
  zen->set_kind(config::SPAMHAUS);
  zen->add_match("127.0.0.[2..11]");
  zen->set_weight(2);
  zen->set_ipv6(true);
  auto* dbl = rc.add_list();
  dbl->set_zone("dbl.bl.test");
  dbl->set_kind(config::SPAMHAUS_DBL);
  dbl->add_check(config::MAIL_FROM_DOMAIN);
  dbl->add_check(config::BODY_URLS);
  auto* err = rc.add_list();
  err->set_zone("err.bl.test");
  err->set_suspend("10m");
  rc.set_threshold(2);
  auto psl = PublicSuffixList::Load();
  ASSERT_TRUE(psl.ok());
  auto d = Dnsbl::Create(rc, cache_.get(), psl->get(), &clock_);
  ASSERT_TRUE(d.ok()) << d.status();
  std::vector<Dnsbl::Event> events;
  std::mutex mu;
  (*d)->AddEventSink([&](const Dnsbl::Event& e) {
    std::lock_guard<std::mutex> lock(mu);
    events.push_back(e);
  });
  // Health: zen and dbl answer their test points; err lists nothing, so
  // its 127.0.0.2 test point fails and it is suspended.
  auto health = (*d)->CheckHealth(absl::Now() + absl::Seconds(3));
  ASSERT_EQ(health.size(), 3u);
  EXPECT_TRUE(health[0].ok()) << health[0];
  EXPECT_TRUE(health[1].ok()) << health[1];
  EXPECT_FALSE(health[2].ok());
  // A listed client, a spam MAIL FROM domain and a URL on a listed farm.
  std::vector<UrlHost> urls = {{"www.spamfarm.example", false}, {"fine.example", false}};
  Dnsbl::Subject s;
  s.client_ip = "192.0.2.50";
  s.mail_from_domain = "news.spam.example";
  s.urls = &urls;
  auto res = (*d)->Check(s, absl::Now() + absl::Seconds(3));
  EXPECT_EQ(res.unknown, 0);
  EXPECT_EQ(res.suspended, 1);  // err.bl.test
  ASSERT_EQ(res.hits.size(), 3u);
  EXPECT_EQ(res.hits[0].answer, "127.0.0.4");
  EXPECT_DOUBLE_EQ(res.score, 4);  // 2 (zen) + 1 (dbl, MAIL FROM) + 1 (dbl, URL)
  EXPECT_GE(res.score, (*d)->threshold());
  // An error answer never lists and suspends the list, once.
  clock_.Advance(absl::Minutes(11));  // err's health suspension is over
  Dnsbl::Subject e;
  e.client_ip = "192.0.2.1";  // err.bl.test answers 127.255.255.254 for it
  auto er = (*d)->Check(e, absl::Now() + absl::Seconds(3));
  double from_zen = 2;  // 192.0.2.1 is also in zen (127.0.0.4)
  EXPECT_DOUBLE_EQ(er.score, from_zen);
  (*d)->Check(e, absl::Now() + absl::Seconds(3));
  std::lock_guard<std::mutex> lock(mu);
  int error_events = 0;
  for (const auto& ev : events) {
    error_events += ev.zone == "err.bl.test" &&
                    ev.what.find("error answer 127.255.255.254") != std::string::npos;
  }
  EXPECT_EQ(error_events, 1);
}

TEST_F(RbldnsdTest, HostEventLoopDrivesTheResolver) {
  // No thread of its own: this test's loop polls the resolver's sockets.
  AresResolver::Options o;
  o.server = "127.0.0.1";
  o.port = server_->port();
  auto r = AresResolver::Create(o);
  ASSERT_TRUE(r.ok());
  bool done = false;
  DnsAnswer got;
  (*r)->Query("2.0.0.127.zen.bl.test", DnsResolver::Type::kA,
              [&](const absl::Status& s, const DnsAnswer& a) {
                EXPECT_TRUE(s.ok()) << s;
                got = a;
                done = true;
              });
  const absl::Time end = absl::Now() + absl::Seconds(3);
  while (!done && absl::Now() < end) {
    std::vector<pollfd> fds;
    for (const auto& s : (*r)->Sockets()) {
      fds.push_back(
          pollfd{s.fd, static_cast<short>((s.read ? POLLIN : 0) | (s.write ? POLLOUT : 0)), 0});
    }
    int ms = static_cast<int>(absl::ToInt64Milliseconds((*r)->Timeout(absl::Milliseconds(50))));
    if (poll(fds.data(), fds.size(), ms + 1) <= 0) {
      (*r)->Process(-1, -1);
      continue;
    }
    for (const auto& p : fds) {
      if (p.revents != 0) {
        (*r)->Process((p.revents & (POLLIN | POLLERR | POLLHUP)) ? p.fd : -1,
                      (p.revents & POLLOUT) ? p.fd : -1);
      }
    }
  }
  ASSERT_TRUE(done);
  EXPECT_EQ(got.a, std::vector<uint32_t>{0x7f000002});
}

TEST(RbldnsdBudgetTest, ServerThatDropsPacketsCostsAtMostTheBudget) {
  // A UDP socket that never answers: every query is dropped.
  int hole_port = 0;
  const int hole = testing::BlackHoleUdp(&hole_port);
  ASSERT_GE(hole, 0);
  AresResolver::Options o;
  o.server = "127.0.0.1";
  o.port = hole_port;
  o.timeout = absl::Seconds(2);
  auto r = AresResolver::Create(o);
  ASSERT_TRUE(r.ok());
  (*r)->Start();
  FakeClock clock(absl::FromUnixSeconds(1700000000));
  DnsCache cache(r->get(), &clock);
  absl::Time start = absl::Now();
  auto res = cache.Lookup("2.0.0.127.zen.bl.test", start + absl::Milliseconds(200));
  absl::Duration took = absl::Now() - start;
  EXPECT_EQ(res.source, DnsCache::Source::kUnknown);
  EXPECT_GE(took, absl::Milliseconds(190));
  EXPECT_LT(took, absl::Milliseconds(1500));  // generous for a loaded machine
  close(hole);
}

}  // namespace
}  // namespace sluice
