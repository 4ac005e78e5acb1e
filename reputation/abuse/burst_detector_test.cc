#include "reputation/abuse/burst_detector.h"

#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace sluice {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1767225600);

std::string Text(uint32_t seed, int words, int substitute_every = 0, uint32_t sub_seed = 0) {
  static const char* kSyl[] = {"ka", "lo",  "mi",  "ne",  "ru",  "sa",  "ti",  "vo",  "ze",
                               "pa", "qui", "ber", "don", "fal", "gor", "hen", "jas", "mor"};
  std::mt19937 rng(seed), sub(sub_seed);
  std::string s = "Subject: x\n\n";
  for (int i = 0; i < words; ++i) {
    std::string w = absl::StrCat(kSyl[rng() % 18], kSyl[rng() % 18], kSyl[rng() % 18]);
    if (substitute_every > 0 && sub() % substitute_every == 0) {
      w = absl::StrCat(kSyl[sub() % 18], "x", kSyl[sub() % 18]);  // a substituted word
    }
    absl::StrAppend(&s, w, i % 11 == 10 ? "\n" : " ");
  }
  return s;
}

Fingerprint Fp(const std::string& m, int shingle = 2) {
  static Fingerprinter* pairs = [] {
    Fingerprinter::Options o;
    o.shingle = 2;
    return new Fingerprinter(o);
  }();
  static Fingerprinter* words = [] {
    Fingerprinter::Options o;
    o.shingle = 1;
    return new Fingerprinter(o);
  }();
  Fingerprint fp;
  (shingle == 1 ? words : pairs)->Compute(m, &fp);
  return fp;
}

std::unique_ptr<BurstDetector> Make(BurstDetector::Options o = {}) {
  o.table.capacity = 1 << 14;
  auto d = BurstDetector::Create(o, kT0);
  EXPECT_TRUE(d.ok()) << d.status();
  return std::move(*d);
}

TEST(BurstDetectorTest, SameSizeBurstFromOneSender) {
  auto d = Make();
  // 20 different texts of about the same size.
  for (int i = 0; i < 19; ++i) {
    Fingerprint fp = Fp(Text(1000 + i, 100));
    auto v = d->Observe("spammer@x.example", fp, kT0 + absl::Seconds(i));
    EXPECT_FALSE(v.same_size) << i;
  }
  auto v = d->Observe("spammer@x.example", Fp(Text(2000, 100)), kT0 + absl::Seconds(30));
  EXPECT_TRUE(v.same_size);
  EXPECT_EQ(v.same_size_count, 20u);
  EXPECT_FALSE(v.near_duplicate);  // the texts themselves differ
  // Another sender with the same sizes is counted separately.
  EXPECT_FALSE(d->Observe("other@x.example", Fp(Text(3000, 100)), kT0).same_size);
  // Once the window has passed, the count starts over.
  EXPECT_EQ(
      d->Observe("spammer@x.example", Fp(Text(4000, 100)), kT0 + absl::Minutes(30)).same_size_count,
      1u);
}

TEST(BurstDetectorTest, NearDuplicatesFromOneSender) {
  BurstDetector::Options o;
  o.near_duplicate_threshold = 10;
  auto d = Make(o);
  // Copies with ~5% of their words substituted, each differently: with
  // 2-word shingles every copy joins the first one's template.
  int fired_at = -1;
  for (int i = 0; i < 15 && fired_at < 0; ++i) {
    auto v = d->Observe("victim@x.example", Fp(Text(7, 200, 20, 500 + i)), kT0 + absl::Minutes(i));
    EXPECT_GE(v.similarity, 0.42);
    if (v.near_duplicate) fired_at = i + 1;
  }
  EXPECT_EQ(fired_at, 10);
  // ~7% substituted, word-set sketches (the default): one template.
  fired_at = -1;
  for (int i = 0; i < 15 && fired_at < 0; ++i) {
    auto v =
        d->Observe("victim2@x.example", Fp(Text(8, 200, 14, 700 + i), 1), kT0 + absl::Minutes(i));
    if (v.near_duplicate) fired_at = i + 1;
  }
  EXPECT_EQ(fired_at, 10);
  // Distinct texts from one sender never look like duplicates.
  for (int i = 0; i < 30; ++i) {
    auto v = d->Observe("newsletter@x.example", Fp(Text(9000 + i, 200)), kT0 + absl::Minutes(i));
    EXPECT_FALSE(v.near_duplicate) << i;
    EXPECT_LE(v.near_duplicate_count, 2u);
  }
}

TEST(BurstDetectorTest, CampaignAcrossSenders) {
  BurstDetector::Options o;
  o.campaign_threshold = 5;
  auto d = Make(o);
  // One sender repeating the template is not a campaign.
  for (int i = 0; i < 8; ++i) {
    auto v = d->Observe("a@x.example", Fp(Text(42, 150)), kT0 + absl::Seconds(i));
    EXPECT_EQ(v.campaign_senders, 1u);
    EXPECT_FALSE(v.campaign);
  }
  // Four more accounts sending lightly varied copies (one word in 40
  // changed: Jaccard ~0.9, far above campaign_similarity whatever the
  // sketch's sampling): the 5th sender fires.
  for (int s = 1; s <= 4; ++s) {
    auto v = d->Observe(absl::StrCat("acct", s, "@y.example"), Fp(Text(42, 150, 40, s)),
                        kT0 + absl::Seconds(10 + s));
    EXPECT_EQ(v.campaign_senders, static_cast<uint64_t>(s + 1)) << s;
    EXPECT_EQ(v.campaign, s == 4) << s;
  }
}

TEST(BurstDetectorTest, EmptyMessagesOnlyCountSize) {
  auto d = Make();
  auto v = d->Observe("a@x.example", Fp(""), kT0);
  EXPECT_EQ(v.near_duplicate_count, 0u);
  EXPECT_EQ(v.campaign_senders, 0u);
  EXPECT_EQ(v.same_size_count, 1u);
}

TEST(BurstDetectorTest, FullTableRaisesNoFalseAlarms) {
  BurstDetector::Options o;
  o.table.capacity = 1024;
  o.table.max_probe = 8;
  o.near_duplicate_threshold = 3;
  auto d = BurstDetector::Create(o, kT0);
  ASSERT_TRUE(d.ok());
  int alarms = 0;
  for (int i = 0; i < 3000; ++i) {
    auto v = (*d)->Observe(absl::StrCat("u", i, "@x.example"), Fp(Text(i, 60)), kT0);
    alarms += v.near_duplicate || v.campaign;
  }
  EXPECT_EQ(alarms, 0);
}

TEST(BurstDetectorTest, BadOptionsAreRefused) {
  BurstDetector::Options o;
  o.similarity = 0;
  EXPECT_FALSE(BurstDetector::Create(o, kT0).ok());
  o = BurstDetector::Options();
  o.similarity = 1.5;
  EXPECT_FALSE(BurstDetector::Create(o, kT0).ok());
  o = BurstDetector::Options();
  o.campaign_window = absl::Milliseconds(10);
  EXPECT_FALSE(BurstDetector::Create(o, kT0).ok());
  // The block terms' ranges, each refused by name.
  o = BurstDetector::Options();
  o.contained_blocks = Fingerprint::kBlocks + 1;
  EXPECT_TRUE(
      absl::StrContains(BurstDetector::Create(o, kT0).status().message(), "contained_blocks"));
  o = BurstDetector::Options();
  o.head_blocks = Fingerprint::kHead + 1;
  EXPECT_TRUE(absl::StrContains(BurstDetector::Create(o, kT0).status().message(), "head_blocks"));
  o.head_blocks = 2;
  o.tail_blocks = Fingerprint::kTail + 1;
  EXPECT_TRUE(absl::StrContains(BurstDetector::Create(o, kT0).status().message(), "tail_blocks"));
  o.tail_blocks = -1;
  EXPECT_TRUE(absl::StrContains(BurstDetector::Create(o, kT0).status().message(), "tail_blocks"));
  o.tail_blocks = 4;
  o.head_blocks = -1;
  EXPECT_TRUE(absl::StrContains(BurstDetector::Create(o, kT0).status().message(), "head_blocks"));
  o.head_blocks = Fingerprint::kHead;
  EXPECT_TRUE(BurstDetector::Create(o, kT0).ok());
}

}  // namespace
}  // namespace sluice
