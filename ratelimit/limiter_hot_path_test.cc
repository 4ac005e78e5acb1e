// The limiter's hot-path helpers (internal/limiter_state.h,
// internal/thread_cache.h) against their plain definitions, and the
// behaviours the fast paths must keep: senders sharing a path-cache set
// count exactly, a refusal names the most specific rule with no room
// whatever order the counters were charged in, and nothing stays charged.
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "ratelimit/counter_table.h"
#include "ratelimit/internal/limiter_state.h"
#include "ratelimit/internal/thread_cache.h"
#include "ratelimit/limiter.h"
#include "ratelimit/sliding_window.h"
#include "ratelimit/testing.h"

namespace sluice {
namespace {

using testing::kT0;

char LowerByte(unsigned char c) { return static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c); }

TEST(HotPathTest, EightByteLowerCasingEqualsBytewise) {
  // Every byte value at every position of a word.
  for (int pos = 0; pos < 8; ++pos) {
    for (int b = 0; b < 256; ++b) {
      char in[8] = {'x', 'Y', '@', 'Z', 'a', '[', '`', '{'};
      in[pos] = static_cast<char>(b);
      char out[8];
      internal::Lower(absl::string_view(in, 8), out, sizeof(out));
      for (int i = 0; i < 8; ++i) {
        ASSERT_EQ(out[i], LowerByte(static_cast<unsigned char>(in[i])))
            << "byte " << b << " at " << pos << ", index " << i;
      }
    }
  }
  // Random strings of every length up to 70, cut at `cap`.
  std::mt19937 rng(5);
  for (int len = 0; len <= 70; ++len) {
    for (int round = 0; round < 50; ++round) {
      std::string in(len, '\0');
      for (char& c : in) c = static_cast<char>(rng());
      char out[64];
      absl::string_view got = internal::Lower(in, out, sizeof(out));
      ASSERT_EQ(got.size(), std::min<size_t>(len, sizeof(out)));
      for (size_t i = 0; i < got.size(); ++i) {
        ASSERT_EQ(got[i], LowerByte(static_cast<unsigned char>(in[i])));
      }
    }
  }
}

TEST(HotPathTest, LastAtFindsTheLastAtSign) {
  EXPECT_EQ(internal::LastAt(""), absl::string_view::npos);
  EXPECT_EQ(internal::LastAt("postmaster"), absl::string_view::npos);
  EXPECT_EQ(internal::LastAt("@"), 0u);
  EXPECT_EQ(internal::LastAt("a@b"), 1u);
  EXPECT_EQ(internal::LastAt("\"a@b\"@c.example"), 5u);
  EXPECT_EQ(internal::LastAt("user@"), 4u);
}

TEST(HotPathTest, EpochMemoEqualsTheDivision) {
  std::mt19937_64 rng(9);
  const uint32_t subs[] = {1, 10, 600, 608, 14400, 65534, 7, 15};  // 600 and 608 share a memo entry
  int64_t t = 0;
  for (int i = 0; i < 200000; ++i) {
    // Mostly small steps forward, sometimes back, sometimes far.
    switch (rng() % 8) {
      case 0:
        t = static_cast<int64_t>(rng() % (int64_t{1} << 45));
        break;
      case 1:
        t -= static_cast<int64_t>(rng() % 5000);
        break;
      default:
        t += static_cast<int64_t>(rng() % 300);
    }
    const uint32_t sub = subs[rng() % 8];
    ASSERT_EQ(internal::EpochFor(t, sub), SlidingWindow::EpochAt(t, sub))
        << "t=" << t << " sub=" << sub;
  }
  // Exactly at and next to sub-bucket boundaries, and before the base.
  for (uint32_t sub : subs) {
    for (int64_t k = 0; k < 5; ++k) {
      for (int64_t d = -1; d <= 1; ++d) {
        const int64_t at = k * sub * 1000 + d;
        ASSERT_EQ(internal::EpochFor(at, sub), SlidingWindow::EpochAt(at, sub)) << at;
      }
    }
  }
}

// A cached path's sub-buckets, and the span of the clock they hold for,
// against the plain definitions at every time of a random walk.
TEST(HotPathTest, CachedEpochsEqualTheDivisionWithinTheirSpan) {
  const uint32_t subs[] = {1, 10, 600, 14400, 7};
  internal::Rule rules[6];
  internal::PathCacheEntry ce{};
  for (int k = 0; k < 5; ++k) {
    rules[k].sub_s = subs[k];
    ce.c[k].rule = &rules[k];
  }
  rules[5].gcra = true;
  ce.c[5].rule = &rules[5];
  ce.n = 6;
  auto expect_fresh = [&](int64_t t) {
    for (int k = 0; k < ce.n; ++k) {
      const uint32_t want = rules[k].gcra ? internal::GcraLeaseEpoch(t)
                                          : SlidingWindow::EpochAt(t / 1000, rules[k].sub_s);
      ASSERT_EQ(ce.epoch[k], want) << "t=" << t << " counter " << k;
    }
  };
  std::mt19937_64 rng(11);
  int64_t t = 0;
  int reused = 0;
  for (int i = 0; i < 200000; ++i) {
    switch (rng() % 8) {
      case 0:
        t = static_cast<int64_t>(rng() % (int64_t{1} << 45)) - (int64_t{1} << 20);
        break;
      case 1:
        t -= static_cast<int64_t>(rng() % 5000000);
        break;
      default:
        t += static_cast<int64_t>(rng() % 300000);
    }
    if (t >= ce.epochs_from_us && t < ce.epochs_until_us) {
      ++reused;  // what FastApply would read without working it out
    } else {
      internal::RefreshEpochs(&ce, t);
      if (t < 0) {
        ASSERT_EQ(ce.epochs_from_us, ce.epochs_until_us);  // before the base: never kept
      } else {
        ASSERT_LE(ce.epochs_from_us, t);
        ASSERT_GT(ce.epochs_until_us, t);
      }
    }
    expect_fresh(t < 0 ? 0 : t);
  }
  EXPECT_GT(reused, 100000);
  // The span's ends: its last microsecond keeps the epochs, the next one
  // changes at least one.
  internal::RefreshEpochs(&ce, 5000000);
  const int64_t last = ce.epochs_until_us - 1;
  expect_fresh(last);
  internal::PathCacheEntry next = ce;
  internal::RefreshEpochs(&next, ce.epochs_until_us);
  bool changed = false;
  for (int k = 0; k < ce.n; ++k) changed |= next.epoch[k] != ce.epoch[k];
  EXPECT_TRUE(changed);
}

// The table's clock, read inline, against absl::ToUnixMicros: around the
// epoch, before it, sub-microsecond parts, far times and the infinities.
TEST(HotPathTest, TableClockEqualsToUnixMicros) {
  CounterTable::Options o;
  o.capacity = 64;
  o.huge_pages = false;
  auto table = CounterTable::Open(o, kT0);
  ASSERT_TRUE(table.ok()) << table.status();
  const int64_t base_us = absl::ToUnixMillis(kT0) * 1000;
  std::mt19937_64 rng(3);
  std::vector<absl::Time> times = {kT0,
                                   absl::UnixEpoch(),
                                   absl::UnixEpoch() - absl::Nanoseconds(1),
                                   absl::UnixEpoch() - absl::Microseconds(1),
                                   absl::UnixEpoch() + absl::Nanoseconds(999),
                                   absl::FromUnixSeconds(int64_t{1} << 42),
                                   absl::FromUnixSeconds(-(int64_t{1} << 42)),
                                   absl::FromUnixSeconds(int64_t{1} << 50),
                                   absl::InfiniteFuture(),
                                   absl::InfinitePast()};
  for (int i = 0; i < 100000; ++i) {
    const int64_t s = static_cast<int64_t>(rng() % (int64_t{1} << 36)) - (int64_t{1} << 35);
    times.push_back(absl::FromUnixSeconds(s) + absl::Nanoseconds(rng() % 1000000000) +
                    absl::Nanoseconds(1) / 4 * (rng() % 4));
  }
  for (absl::Time t : times) {
    const int64_t s = absl::ToUnixSeconds(t);
    if (s <= -(int64_t{1} << 43) || s >= int64_t{1} << 43) {
      ASSERT_EQ((*table)->SinceBaseUs(t), s < 0 ? -(int64_t{1} << 62) : int64_t{1} << 62) << t;
    } else {
      ASSERT_EQ((*table)->SinceBaseUs(t), absl::ToUnixMicros(t) - base_us) << t;
    }
  }
}

constexpr char kChain[] = R"pb(
  level {
    name: "server"
    limit { window: "1h" max: 100000 }
  }
  level {
    name: "domain"
    limit { window: "1h" max: 5 }
  }
  level {
    name: "mailbox"
    limit { window: "1h" max: 5 }
  }
)pb";

Request Msg(absl::string_view sender) {
  Request r;
  r.sender = sender;
  return r;
}

// Senders whose requests share one set of the two-way path cache evict
// each other; each must still be counted exactly.
TEST(HotPathTest, SendersSharingACacheSetCountExactly) {
  auto l = testing::MakeLimiter(R"pb(
    level {
      name: "mailbox"
      limit { window: "1h" max: 40 }
    }
  )pb");
  ASSERT_NE(l, nullptr);
  std::vector<std::string> senders;
  const uint64_t want =
      internal::PathSet(internal::RequestKey(Msg("s0@set.example"), /*count_messages=*/true));
  for (int i = 0; senders.size() < 4 && i < 10000000; ++i) {
    std::string s = absl::StrCat("s", i, "@set.example");
    if (internal::PathSet(internal::RequestKey(Msg(s), true)) == want) senders.push_back(s);
  }
  ASSERT_EQ(senders.size(), 4u);
  std::vector<int> admitted(senders.size());
  for (int round = 0; round < 60; ++round) {
    // Orders that make every way the least recently used in turn.
    for (size_t k = 0; k < senders.size(); ++k) {
      const size_t who = round % 3 == 0 ? k : round % 3 == 1 ? senders.size() - 1 - k : (k * 3) % 4;
      admitted[who] += l->CheckAndCharge(Msg(senders[who]), kT0).admitted();
    }
  }
  for (size_t k = 0; k < senders.size(); ++k) {
    EXPECT_EQ(admitted[k], 40) << senders[k];
    EXPECT_EQ(l->Usage(Level::kMailbox, senders[k], kT0).rule(0).usage(), 40u) << senders[k];
  }
}

// Thousands of busy counters on one thread, more than its lease table has
// entries: counters share lease entries and take turns with them,
// cached paths spend from leases they checked once (their stamps), time
// crosses sub-buckets. Every counter's report still equals what it
// admitted, so no path ever spent from another counter's lease.
TEST(HotPathTest, CountersSharingLeaseEntriesCountExactly) {
  Limiter::Options o;
  o.table.capacity = 1 << 15;  // room for every counter (no overflow bucket)
  auto l = testing::MakeLimiter(R"pb(
                                  level {
                                    name: "server"
                                    limit { window: "1h" max: 100000000 }
                                  }
                                  level {
                                    name: "domain"
                                    limit { window: "1h" max: 10000000 }
                                  }
                                  level {
                                    name: "mailbox"
                                    limit { window: "1h" max: 100000 }
                                  }
                                )pb",
                                "", o);
  ASSERT_NE(l, nullptr);
  constexpr int kSenders = 6000;  // > internal::kLeases
  constexpr int kDomains = 40;
  std::vector<std::string> senders;
  for (int i = 0; i < kSenders; ++i)
    senders.push_back(absl::StrCat("m", i, "@d", i % kDomains, ".example"));
  std::vector<uint64_t> admitted(kSenders), domain(kDomains);
  uint64_t total = 0;
  std::mt19937_64 rng(5);
  absl::Time now = kT0;
  for (int step = 0; step < 150000; ++step) {
    if (step % 5000 == 0) now += absl::Seconds(70);  // past a sub-bucket (1h / 64)
    // Half the requests from 200 busy senders (cached paths), half from all.
    const int who = static_cast<int>(step % 2 == 0 ? rng() % 200 : rng() % kSenders);
    if (l->CheckAndCharge(Msg(senders[who]), now).admitted()) {
      ++admitted[who];
      ++domain[who % kDomains];
      ++total;
    }
  }
  EXPECT_EQ(total, 150000u);
  for (int i = 0; i < kSenders; ++i) {
    if (admitted[i] == 0) continue;
    ASSERT_EQ(l->Usage(Level::kMailbox, senders[i], now).rule(0).usage(), admitted[i])
        << senders[i];
  }
  for (int d = 0; d < kDomains; ++d) {
    const std::string name = absl::StrCat("d", d, ".example");
    ASSERT_EQ(l->Usage(Level::kDomain, name, now).rule(0).usage(), domain[d]) << name;
  }
  EXPECT_EQ(l->Usage(Level::kServer, "", now).rule(0).usage(), total);
}

// Mailbox and domain spent together: the refusal names the mailbox (the
// documented order), whether the path was new or cached; nothing stays
// charged at the levels that had room.
TEST(HotPathTest, RefusalNamesTheMostSpecificRuleAndChargesNothing) {
  auto l = testing::MakeLimiter(kChain);
  ASSERT_NE(l, nullptr);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(l->CheckAndCharge(Msg("u@one.example"), kT0).admitted());
  for (int attempt = 0; attempt < 3; ++attempt) {
    Decision d = l->CheckAndCharge(Msg("u@one.example"), kT0);
    ASSERT_FALSE(d.admitted());
    EXPECT_EQ(d.level, Level::kMailbox);
    EXPECT_STREQ(d.entity, "u@one.example");
    EXPECT_EQ(d.usage, 5u);
  }
  EXPECT_EQ(l->Usage(Level::kServer, "server", kT0).rule(0).usage(), 5u);
  // Domain spent by others, mailbox with room: the domain is named and
  // neither the mailbox nor the server keeps a charge.
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(l->CheckAndCharge(Msg(absl::StrCat("m", i, "@two.example")), kT0).admitted());
  }
  for (int attempt = 0; attempt < 3; ++attempt) {
    Decision d = l->CheckAndCharge(Msg("fresh@two.example"), kT0);
    ASSERT_FALSE(d.admitted());
    EXPECT_EQ(d.level, Level::kDomain);
    EXPECT_STREQ(d.entity, "two.example");
  }
  EXPECT_EQ(l->Usage(Level::kMailbox, "fresh@two.example", kT0).rule(0).usage(), 0u);
  EXPECT_EQ(l->Usage(Level::kServer, "server", kT0).rule(0).usage(), 10u);
}

// A shadow rule that trips on a new path is reported once, and only the
// first (most specific) soft rule is named.
TEST(HotPathTest, ShadowTripsAreReportedInTheDocumentedOrder) {
  auto l = testing::MakeLimiter(R"pb(
    level {
      name: "domain"
      limit { window: "1h" max: 2 shadow: true }
    }
    level {
      name: "mailbox"
      limit { window: "1h" max: 2 shadow: true }
    }
  )pb");
  ASSERT_NE(l, nullptr);
  for (int i = 0; i < 2; ++i) ASSERT_FALSE(l->CheckAndCharge(Msg("a@s.example"), kT0).shadow);
  Decision d = l->CheckAndCharge(Msg("a@s.example"), kT0);
  EXPECT_TRUE(d.admitted());
  EXPECT_TRUE(d.shadow);
  EXPECT_EQ(d.level, Level::kMailbox);
  // Shadow rules count what passes, once each.
  EXPECT_EQ(l->Usage(Level::kMailbox, "a@s.example", kT0).rule(0).usage(), 3u);
  EXPECT_EQ(l->Usage(Level::kDomain, "s.example", kT0).rule(0).usage(), 3u);
}

}  // namespace
}  // namespace sluice
