#include <atomic>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "ratelimit/clock.h"
#include "reputation/dns/dns_answer.h"
#include "reputation/dns/dns_cache.h"
#include "reputation/dns/dnsbl_query.h"
#include "reputation/dns/resolver.h"

namespace sluice {
namespace {

// ---- Query names, filters, error answers -----------------------------------

TEST(DnsblQueryTest, QueryNames) {
  std::string n;
  ASSERT_TRUE(IpQueryName("192.0.2.99", "zen.bl.test", &n));
  EXPECT_EQ(n, "99.2.0.192.zen.bl.test");
  ASSERT_TRUE(IpQueryName("2001:db8::1", "zen.bl.test", &n));
  EXPECT_EQ(n, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.zen.bl.test");
  EXPECT_FALSE(IpQueryName("not-an-ip", "zen.bl.test", &n));
  EXPECT_FALSE(IpQueryName(std::string(100, '1'), "zen.bl.test", &n));
  EXPECT_EQ(DomainQueryName("Spam.Example.", "dbl.bl.test"), "spam.example.dbl.bl.test");
}

TEST(DnsblQueryTest, ReturnFilters) {
  auto exact = ReturnFilter::Parse("127.0.0.2");
  ASSERT_TRUE(exact.ok());
  EXPECT_TRUE(exact->Match(0x7f000002));
  EXPECT_FALSE(exact->Match(0x7f000003));
  auto range = ReturnFilter::Parse("127.0.0.[2..11]");
  ASSERT_TRUE(range.ok());
  EXPECT_TRUE(range->Match(0x7f000002));
  EXPECT_TRUE(range->Match(0x7f00000b));
  EXPECT_FALSE(range->Match(0x7f00000c));
  auto mask = ReturnFilter::Parse("mask:0x04");
  ASSERT_TRUE(mask.ok());
  EXPECT_TRUE(mask->Match(0x7f000006));
  EXPECT_FALSE(mask->Match(0x7f000002));
  EXPECT_FALSE(mask->Match(0x0a000004));  // outside 127/8
  auto any = ReturnFilter::Parse("");
  EXPECT_TRUE(any->Match(0x7f0000ff));
  EXPECT_FALSE(ReturnFilter::Parse("127.0.0.[11..2]").ok());
  EXPECT_FALSE(ReturnFilter::Parse("127.0.0").ok());
  EXPECT_FALSE(ReturnFilter::Parse("mask:0").ok());
  EXPECT_EQ(ReturnFilter::Parse("127.0.0.x").status().message(),
            "bad octet \"x\" in \"127.0.0.x\"");
}

TEST(DnsblQueryTest, ErrorCatalogue) {
  for (ListKind k : {ListKind::kGeneric, ListKind::kSpamhaus, ListKind::kSurbl}) {
    EXPECT_TRUE(IsErrorAnswer(k, 0x7ffffffe));  // 127.255.255.254 public resolver
    EXPECT_TRUE(IsErrorAnswer(k, 0x7fffffff));
    EXPECT_TRUE(IsErrorAnswer(k, 0x7ffffffc));
    EXPECT_TRUE(IsErrorAnswer(k, 0x0a000002));  // not 127/8
  }
  EXPECT_FALSE(IsErrorAnswer(ListKind::kSpamhaus, 0x7f000002));
  EXPECT_TRUE(IsErrorAnswer(ListKind::kSpamhausDbl, 0x7f0001ff));
  EXPECT_FALSE(IsErrorAnswer(ListKind::kSpamhausDbl, 0x7f000102));
  EXPECT_TRUE(IsErrorAnswer(ListKind::kUribl, 0x7f000001));
  EXPECT_TRUE(IsErrorAnswer(ListKind::kSurbl, 0x7f000003));  // bit 1
  EXPECT_FALSE(IsErrorAnswer(ListKind::kSurbl, 0x7f000008));
  EXPECT_TRUE(IsErrorAnswer(ListKind::kDnswl, 0x7f0000ff));
  EXPECT_EQ(FormatIpv4(0x7f000002), "127.0.0.2");
}

// ---- Answer parsing ----------------------------------------------------------

std::string U16(int v) { return std::string{static_cast<char>(v >> 8), static_cast<char>(v)}; }
std::string U32(uint32_t v) { return U16(v >> 16) + U16(v & 0xffff); }
std::string Name(const std::string& dotted) {
  std::string out;
  size_t s = 0;
  while (s <= dotted.size()) {
    size_t e = dotted.find('.', s);
    if (e == std::string::npos) e = dotted.size();
    out.push_back(static_cast<char>(e - s));
    out += dotted.substr(s, e - s);
    s = e + 1;
  }
  out.push_back(0);
  return out;
}

std::string Message(int rcode, const std::vector<uint32_t>& a, uint32_t ttl, int soa_min = -1) {
  std::string m = U16(0x1234) + U16(0x8180 | rcode) + U16(1) + U16(static_cast<int>(a.size())) +
                  U16(soa_min >= 0 ? 1 : 0) + U16(0);
  m += Name("2.0.0.127.zen.bl.test") + U16(1) + U16(1);
  for (uint32_t x : a) m += U16(0xC00C) + U16(1) + U16(1) + U32(ttl) + U16(4) + U32(x);
  if (soa_min >= 0) {
    std::string rdata = Name("ns.bl.test") + Name("hostmaster.bl.test") + U32(1) + U32(600) +
                        U32(300) + U32(86400) + U32(static_cast<uint32_t>(soa_min));
    m += Name("zen.bl.test") + U16(6) + U16(1) + U32(900) + U16(static_cast<int>(rdata.size())) +
         rdata;
  }
  return m;
}

TEST(DnsAnswerTest, ParsesAnswersAndNegativeTtl) {
  DnsAnswer a;
  ASSERT_TRUE(ParseDnsAnswer(Message(0, {0x7f000002, 0x7f00000a}, 300), &a).ok());
  EXPECT_EQ(a.rcode, 0);
  EXPECT_EQ(a.a, (std::vector<uint32_t>{0x7f000002, 0x7f00000a}));
  EXPECT_EQ(a.ttl, 300u);
  ASSERT_TRUE(ParseDnsAnswer(Message(3, {}, 0, 60), &a).ok());
  EXPECT_EQ(a.rcode, 3);
  EXPECT_EQ(a.negative_ttl, 60);  // min(SOA TTL 900, minimum 60)
  std::string m = Message(0, {0x7f000002}, 300);
  for (size_t cut = 0; cut < m.size(); ++cut) {
    EXPECT_FALSE(ParseDnsAnswer(m.substr(0, cut), &a).ok()) << cut;
  }
}

// ---- The cache, with a scripted resolver and a fake clock ----------------------

class ScriptedResolver : public DnsResolver {
 public:
  void Query(const std::string& name, Type, Callback cb) override {
    sent_++;
    std::lock_guard<std::mutex> lock(mu_);
    pending_.push_back({name, std::move(cb)});
  }
  uint64_t queries_sent() const override { return sent_.load(); }
  // Answers the oldest pending query (false if none).
  bool Answer(const absl::Status& s, const DnsAnswer& a) {
    std::pair<std::string, Callback> q;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (pending_.empty()) return false;
      q = std::move(pending_.front());
      pending_.pop_front();
    }
    q.second(s, a);
    return true;
  }
  size_t pending() {
    std::lock_guard<std::mutex> lock(mu_);
    return pending_.size();
  }

 private:
  std::mutex mu_;
  std::deque<std::pair<std::string, Callback>> pending_;
  std::atomic<uint64_t> sent_{0};
};

DnsAnswer Listed(uint32_t ttl) {
  DnsAnswer a;
  a.a = {0x7f000002};
  a.ttl = ttl;
  return a;
}

TEST(DnsCacheTest, TtlClampsNegativeCachingAndExpiry) {
  ScriptedResolver r;
  FakeClock clock(absl::FromUnixSeconds(1700000000));
  DnsCache::Options o;
  o.min_ttl = absl::Seconds(60);
  o.max_ttl = absl::Seconds(600);
  o.prefetch = 0;
  DnsCache cache(&r, &clock, o);
  const absl::Time far = absl::Now() + absl::Seconds(5);
  std::thread answer([&] {
    while (!r.Answer(absl::OkStatus(), Listed(5))) absl::SleepFor(absl::Milliseconds(1));
  });
  auto first = cache.Lookup("2.0.0.127.zen.bl.test", far);
  answer.join();
  EXPECT_EQ(first.source, DnsCache::Source::kNetwork);
  // TTL 5 s is clamped up to 60 s.
  clock.Advance(absl::Seconds(59));
  EXPECT_EQ(cache.Lookup("2.0.0.127.zen.bl.test", far).source, DnsCache::Source::kCache);
  EXPECT_EQ(r.queries_sent(), 1u);
  clock.Advance(absl::Seconds(2));
  std::thread again([&] {
    while (!r.Answer(absl::OkStatus(), Listed(100000))) absl::SleepFor(absl::Milliseconds(1));
  });
  EXPECT_EQ(cache.Lookup("2.0.0.127.zen.bl.test", far).source, DnsCache::Source::kNetwork);
  again.join();
  // TTL 100000 s is clamped down to 600 s.
  clock.Advance(absl::Seconds(599));
  EXPECT_EQ(cache.Lookup("2.0.0.127.zen.bl.test", far).source, DnsCache::Source::kCache);
  clock.Advance(absl::Seconds(2));
  EXPECT_EQ(cache.Lookup("2.0.0.127.zen.bl.test", absl::Now()).source,
            DnsCache::Source::kStale);  // no answer in time: the expired one, marked
  // NXDOMAIN cached for the SOA's negative TTL.
  DnsAnswer nx;
  nx.rcode = 3;
  nx.negative_ttl = 120;
  std::thread neg([&] {
    while (r.pending() < 2) absl::SleepFor(absl::Milliseconds(1));
    r.Answer(absl::OkStatus(), Listed(300));  // the refresh of the stale name
    r.Answer(absl::OkStatus(), nx);
  });
  auto n1 = cache.Lookup("9.9.9.9.zen.bl.test", far);
  neg.join();
  EXPECT_EQ(n1.source, DnsCache::Source::kNetwork);
  EXPECT_EQ(n1.answer.rcode, 3);
  clock.Advance(absl::Seconds(119));
  EXPECT_EQ(cache.Lookup("9.9.9.9.zen.bl.test", far).source, DnsCache::Source::kCache);
}

TEST(DnsCacheTest, PrefetchNearExpiryRefreshesWithoutWaiting) {
  ScriptedResolver r;
  FakeClock clock(absl::FromUnixSeconds(1700000000));
  DnsCache cache(&r, &clock);  // prefetch in the last 10% of the TTL
  std::thread first([&] {
    while (!r.Answer(absl::OkStatus(), Listed(300))) absl::SleepFor(absl::Milliseconds(1));
  });
  cache.Lookup("2.0.0.127.zen.bl.test", absl::Now() + absl::Seconds(5));
  first.join();
  clock.Advance(absl::Seconds(200));
  EXPECT_EQ(cache.Lookup("2.0.0.127.zen.bl.test", absl::Now()).source, DnsCache::Source::kCache);
  EXPECT_EQ(r.queries_sent(), 1u);   // not yet near expiry
  clock.Advance(absl::Seconds(80));  // 20 s left of 300
  absl::Time start = absl::Now();
  EXPECT_EQ(cache.Lookup("2.0.0.127.zen.bl.test", absl::Now() + absl::Seconds(5)).source,
            DnsCache::Source::kCache);  // answered at once from the cache
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  EXPECT_EQ(r.queries_sent(), 2u);  // and refreshed in the background
  EXPECT_EQ(cache.GetStats().prefetches, 1u);
  ASSERT_TRUE(r.Answer(absl::OkStatus(), Listed(300)));
  clock.Advance(absl::Seconds(100));  // past the first expiry, within the refreshed one
  EXPECT_EQ(cache.Lookup("2.0.0.127.zen.bl.test", absl::Now()).source, DnsCache::Source::kCache);
}

TEST(DnsCacheTest, SingleFlight) {
  ScriptedResolver r;
  FakeClock clock(absl::FromUnixSeconds(1700000000));
  DnsCache cache(&r, &clock);
  std::vector<std::thread> threads;
  std::atomic<int> network{0};
  for (int i = 0; i < 50; ++i) {
    threads.emplace_back([&] {
      auto res = cache.Lookup("2.0.0.127.zen.bl.test", absl::Now() + absl::Seconds(10));
      if (res.source == DnsCache::Source::kNetwork) network++;
    });
  }
  while (cache.GetStats().joined + cache.GetStats().misses < 50) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  EXPECT_EQ(r.queries_sent(), 1u);
  r.Answer(absl::OkStatus(), Listed(300));
  for (auto& t : threads) t.join();
  EXPECT_EQ(network.load(), 50);
  EXPECT_EQ(r.queries_sent(), 1u);
}

TEST(DnsCacheTest, TimeoutIsUnknownNeverListed) {
  ScriptedResolver r;
  FakeClock clock(absl::FromUnixSeconds(1700000000));
  DnsCache cache(&r, &clock);
  absl::Time start = absl::Now();
  auto res = cache.Lookup("2.0.0.127.zen.bl.test", start + absl::Milliseconds(50));
  EXPECT_EQ(res.source, DnsCache::Source::kUnknown);
  EXPECT_EQ(res.status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  // A resolver error with nothing cached: unknown too.
  std::thread fail([&] {
    while (!r.Answer(absl::UnavailableError("refused"), DnsAnswer())) {
      absl::SleepFor(absl::Milliseconds(1));
    }
  });
  auto res2 = cache.Lookup("2.0.0.127.zen.bl.test", absl::Now() + absl::Seconds(5));
  fail.join();
  EXPECT_FALSE(res2.known());  // unknown, or the failure remembered (kFailed)
}

// A failed or timed-out query is remembered for failure_ttl: lookups
// meanwhile are answered at once (kFailed) without a new query; then the
// name is asked again.
TEST(DnsCacheTest, FailuresAreRememberedBriefly) {
  ScriptedResolver r;
  FakeClock clock(absl::FromUnixSeconds(1700000000));
  DnsCache::Options o;
  o.failure_ttl = absl::Seconds(60);
  DnsCache cache(&r, &clock, o);
  cache.Prepare("5.0.0.127.zen.bl.test");
  ASSERT_TRUE(r.Answer(absl::DeadlineExceededError("timeout"), DnsAnswer()));
  const absl::Time start = absl::Now();
  auto res = cache.Lookup("5.0.0.127.zen.bl.test", start + absl::Seconds(5));
  EXPECT_EQ(res.source, DnsCache::Source::kFailed);
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));  // no wait
  EXPECT_EQ(r.queries_sent(), 1u);
  EXPECT_EQ(cache.GetStats().failed, 1u);
  clock.Advance(absl::Seconds(61));
  cache.Prepare("5.0.0.127.zen.bl.test");
  EXPECT_EQ(r.queries_sent(), 2u);  // asked again
  ASSERT_TRUE(r.Answer(absl::OkStatus(), Listed(300)));
  EXPECT_EQ(cache.Lookup("5.0.0.127.zen.bl.test", absl::Now()).source, DnsCache::Source::kCache);
}

// Peek never waits: a pending name calls `ready` once its query ends, and
// the next Peek has the answer. PTR answers are kept apart from A answers.
TEST(DnsCacheTest, PeekCallsBackAndTypesAreApart) {
  ScriptedResolver r;
  FakeClock clock(absl::FromUnixSeconds(1700000000));
  DnsCache cache(&r, &clock);
  std::atomic<int> calls{0};
  auto ready = [&] { calls.fetch_add(1); };
  auto p = cache.Peek("9.2.0.192.in-addr.arpa", DnsResolver::Type::kPtr, ready);
  EXPECT_TRUE(p.pending());
  EXPECT_TRUE(cache.Peek("9.2.0.192.in-addr.arpa", DnsResolver::Type::kPtr, ready).pending());
  EXPECT_EQ(r.queries_sent(), 1u);  // one query for both
  EXPECT_EQ(calls.load(), 0);
  DnsAnswer ptr;
  ptr.ptr = {"mail.example"};
  ptr.ttl = 300;
  ASSERT_TRUE(r.Answer(absl::OkStatus(), ptr));
  EXPECT_EQ(calls.load(), 2);
  p = cache.Peek("9.2.0.192.in-addr.arpa", DnsResolver::Type::kPtr, ready);
  EXPECT_EQ(p.source, DnsCache::Source::kCache);
  ASSERT_EQ(p.answer.ptr.size(), 1u);
  EXPECT_EQ(p.answer.ptr[0], "mail.example");
  // The same name as an A query is another entry.
  EXPECT_TRUE(cache.Peek("9.2.0.192.in-addr.arpa", DnsResolver::Type::kA, nullptr).pending());
  EXPECT_EQ(r.queries_sent(), 2u);
}

TEST(DnsCacheTest, BoundedEntries) {
  ScriptedResolver r;
  FakeClock clock(absl::FromUnixSeconds(1700000000));
  DnsCache::Options o;
  o.max_entries = 64;
  DnsCache cache(&r, &clock, o);
  std::thread answerer([&] {
    for (int i = 0; i < 1000;) i += r.Answer(absl::OkStatus(), Listed(300)) ? 1 : 0;
  });
  for (int i = 0; i < 1000; ++i) {
    cache.Lookup(absl::StrCat(i, ".zen.bl.test"), absl::Now() + absl::Seconds(5));
  }
  answerer.join();
  EXPECT_LE(cache.size(), 64u + 16u);
  EXPECT_GT(cache.GetStats().evictions, 900u);
}

}  // namespace
}  // namespace sluice
