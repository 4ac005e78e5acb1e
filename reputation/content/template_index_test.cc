#include "reputation/content/template_index.h"

#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace sluice {
namespace {

std::string Text(uint32_t seed, int words, int change_every = 0) {
  std::mt19937 rng(seed);
  std::string s = "\n";
  for (int i = 0; i < words; ++i) {
    uint32_t w = rng() % 5000;
    if (change_every > 0 && i % change_every == 0) w += 100000;  // a different word
    std::string word;
    for (uint32_t x = w + 1; x > 0; x /= 26) word += static_cast<char>('a' + x % 26);
    absl::StrAppend(&s, word, " ");
  }
  return s;
}

Fingerprint Fp(const std::string& m) {
  static Fingerprinter* f = [] {  // 2-word shingles, as the figures below
    Fingerprinter::Options o;
    o.shingle = 2;
    return new Fingerprinter(o);
  }();
  Fingerprint fp;
  f->Compute(m, &fp);
  return fp;
}

TEST(TemplateIndexTest, ShortCopiesJoinBySetsKeptExactly) {
  // A message of 10 words (9 two-word shingles) and copies with a 5-word
  // footer (15 tokens, 14 shingles, 9 shared): exactly 9/14 = 0.64 (K = 32
  // bins would only estimate it); another short text starts its own.
  TemplateIndex index({1024, 0.6});
  const std::string base = "\nnew watches in stock ships free from our depot today\n";
  const Fingerprint a = Fp(base);
  ASSERT_GT(a.exact, 0);
  const uint64_t t = index.Assign(a);
  for (const char* name : {"anna", "bob", "carla", "dmitri", "eve"}) {
    double sim = 0;
    EXPECT_EQ(index.Assign(Fp(base + absl::StrCat("sent to you today ", name, "\n")), &sim), t)
        << name;
    EXPECT_DOUBLE_EQ(sim, 9.0 / 14.0) << name;
  }
  EXPECT_NE(index.Assign(Fp("\nmeeting moved to room four after the lunch break friday\n")), t);
}

TEST(TemplateIndexTest, NearDuplicatesJoinUnrelatedStartNew) {
  TemplateIndex index({1024, 0.5});
  double sim;
  uint64_t a = index.Assign(Fp(Text(1, 200)), &sim);
  EXPECT_NE(a, 0u);
  EXPECT_EQ(sim, 1.0);
  EXPECT_EQ(index.Assign(Fp(Text(1, 200))), a);            // exact copy
  EXPECT_EQ(index.Assign(Fp(Text(1, 200, 25)), &sim), a);  // 4% changed
  EXPECT_GE(sim, 0.5);
  EXPECT_LT(sim, 1.0);
  uint64_t b = index.Assign(Fp(Text(2, 200)));
  EXPECT_NE(b, a);
  EXPECT_EQ(index.size(), 2u);
  EXPECT_EQ(index.Assign(Fp("")), 0u);
}

TEST(TemplateIndexTest, MemoryIsBoundedByTheRing) {
  TemplateIndex index({64, 0.5});
  uint64_t first = index.Assign(Fp(Text(1000, 100)));
  for (uint32_t i = 0; i < 500; ++i) index.Assign(Fp(Text(i, 100)));
  EXPECT_EQ(index.size(), 64u);
  // The first template was forgotten: the same text starts a new one with
  // the same id (ids come from the digest).
  EXPECT_EQ(index.Assign(Fp(Text(1000, 100))), first);
}

TEST(TemplateIndexTest, ThresholdIsRespected) {
  TemplateIndex strict({1024, 0.95});
  uint64_t a = strict.Assign(Fp(Text(5, 200)));
  EXPECT_NE(strict.Assign(Fp(Text(5, 200, 10))), a);  // 10% changed: below 0.95
}

}  // namespace
}  // namespace sluice

namespace sluice {
namespace {

// A word of letters only (the normaliser drops words with digits).
std::string Letters(int n) {
  std::string w = "w";
  for (; n > 0; n /= 26) w += static_cast<char>('a' + n % 26);
  return w;
}

// A body's fingerprint on word sets (the default, as the detectors).
Fingerprint WordsFp(const std::string& body) {
  static Fingerprinter* words = new Fingerprinter();
  Fingerprint f;
  words->Compute("\n" + body + "\n", &f);
  return f;
}

TEST(TemplateIndexBlocksTest, PaddedCopiesJoinThroughTheirBlocks) {
  std::string base;
  for (int i = 0; i < 400; ++i) absl::StrAppend(&base, Letters((i * 7919) % 1000), " ");
  TemplateIndex index({1024, 0.44, 11, 2, 2, 0});
  const uint64_t t = index.Assign(WordsFp(base));
  TemplateIndex no_blocks({1024, 0.44, 0, 2, 0, 0});
  const uint64_t u = no_blocks.Assign(WordsFp(base));
  for (int copy = 0; copy < 5; ++copy) {
    std::string padding;  // three times as many words of its own
    for (int i = 0; i < 1200; ++i) absl::StrAppend(&padding, Letters(5000 + copy * 2000 + i), " ");
    EXPECT_EQ(index.Assign(WordsFp(base + padding)), t) << copy;
    EXPECT_NE(no_blocks.Assign(WordsFp(base + padding)), u) << copy;
  }
}

// A short template (too few blocks to share 11 with anything) and copies
// padded with ten times its words: they join it through containment.
TEST(TemplateIndexBlocksTest, ShortTemplatesPaddedManyTimesJoinByContainment) {
  std::string base;
  for (int i = 0; i < 40; ++i) absl::StrAppend(&base, Letters((i * 7919) % 1000), " ");
  base += "\n\n";  // its last paragraph ends before the padding
  ASSERT_LT(WordsFp(base).nblocks, 11);
  TemplateIndex index({1024, 0.44, 11, 2, 0, 0});
  const uint64_t t = index.Assign(WordsFp(base));
  TemplateIndex no_containment({1024, 0.44, 11, 0, 0, 0});
  const uint64_t u = no_containment.Assign(WordsFp(base));
  for (int copy = 0; copy < 5; ++copy) {
    std::string padding;
    for (int i = 0; i < 400; ++i) absl::StrAppend(&padding, Letters(5000 + copy * 2000 + i), " ");
    EXPECT_EQ(index.Assign(WordsFp(base + padding)), t) << copy;
    EXPECT_NE(no_containment.Assign(WordsFp(base + padding)), u) << copy;
  }
  // An unrelated short message starts its own.
  std::string other;
  for (int i = 0; i < 40; ++i) absl::StrAppend(&other, Letters(20000 + i * 31), " ");
  EXPECT_NE(index.Assign(WordsFp(other)), t);
}

TEST(TemplateIndexBlocksTest, CopiesPaddedBeforeTheTextJoinByTheirTail) {
  // Copies of a short template (too few blocks to share 11), each with
  // words of its own before it, and a footer after a rule line: neither
  // contains the other and they begin differently; they end alike before
  // the footer.
  std::string base;
  for (int i = 0; i < 60; ++i) absl::StrAppend(&base, Letters((i * 7919) % 1000), " ");
  const std::string footer = "\n-----\nto leave this list write to the list owner\n";
  auto copy = [&](int n) {
    std::string pad;
    for (int i = 0; i < 90; ++i) absl::StrAppend(&pad, Letters(40000 + n * 1000 + i), " ");
    return WordsFp(pad + "\n\n" + base + footer);
  };
  TemplateIndex index({1024, 0.503, 11, 2, 2, 4});  // the defaults
  TemplateIndex no_tail({1024, 0.503, 11, 2, 2, 0});
  const uint64_t t = index.Assign(copy(0));
  const uint64_t u = no_tail.Assign(copy(0));
  for (int n = 1; n < 6; ++n) {
    ASSERT_LT(Fingerprint::SharedBlocks(copy(0), copy(n)), 11);
    EXPECT_EQ(index.Assign(copy(n)), t) << n;
    EXPECT_NE(no_tail.Assign(copy(n)), u) << n;
  }
  // Another text with the same footer starts its own.
  std::string other;
  for (int i = 0; i < 60; ++i) absl::StrAppend(&other, Letters(90000 + i * 13), " ");
  EXPECT_NE(index.Assign(WordsFp(other + footer)), t);
}

TEST(TemplateIndexBlocksTest, AJoinReportsTheSimilarityToTheTemplateJoined) {
  // A padded copy of a short template whose padding has many words of
  // another template (not enough to join it): it joins the short one
  // through its blocks, and what it reports (what a campaign counts) is its
  // similarity to that one, not to the other.
  std::string base;
  for (int i = 0; i < 40; ++i) absl::StrAppend(&base, Letters((i * 7919) % 1000), " ");
  base += "\n\n";
  std::string other;
  for (int i = 0; i < 200; ++i) absl::StrAppend(&other, Letters(30000 + i), " ");
  TemplateIndex index({1024, 0.503, 11, 2, 2, 4});  // the defaults
  const uint64_t t = index.Assign(WordsFp(base));
  const uint64_t o = index.Assign(WordsFp(other));
  std::string copy = base;
  // (In another order: no block of the other template.)
  for (int i = 0; i < 130; ++i) absl::StrAppend(&copy, Letters(30000 + (i * 37) % 200), " ");
  for (int i = 0; i < 250; ++i) absl::StrAppend(&copy, Letters(60000 + i), " ");
  const Fingerprint c = WordsFp(copy);
  ASSERT_LT(Fingerprint::Similarity(c, WordsFp(other)), 0.44);
  ASSERT_GT(Fingerprint::Similarity(c, WordsFp(other)), 0.2);
  double sim = -1;
  EXPECT_EQ(index.Assign(c, &sim), t);
  EXPECT_NE(t, o);
  EXPECT_LT(sim, 0.2);  // about 40 / 420 of the words
}

TEST(TemplateIndexBlocksTest, CopiesWithWordsBeforeTheTemplateJoinIt) {
  // The template first, then copies with many random words put before
  // it: the words change its first block, the others are in each copy.
  std::string base;
  for (int i = 0; i < 40; ++i) absl::StrAppend(&base, Letters((i * 7919) % 1000), " ");
  ASSERT_GE(WordsFp(base).nblocks, 3);
  TemplateIndex index({1024, 0.503, 11, 2, 2, 4});  // the defaults
  TemplateIndex no_containment({1024, 0.503, 11, 0, 2, 0});
  const uint64_t t = index.Assign(WordsFp(base));
  const uint64_t u = no_containment.Assign(WordsFp(base));
  int joined = 0;
  for (int copy = 0; copy < 10; ++copy) {
    std::string opening;
    for (int i = 0; i < 100; ++i) absl::StrAppend(&opening, Letters(5000 + copy * 2000 + i), " ");
    const Fingerprint c = WordsFp(opening + "\n\n" + base);
    ASSERT_EQ(Fingerprint::CommonHead(WordsFp(base), c), 0);
    joined += index.Assign(c) == t;
    EXPECT_NE(no_containment.Assign(c), u) << copy;
  }
  // Most (a chain that meets the template's only after its second block
  // loses two): measured on the corpus, 97.6% of such copies.
  EXPECT_GE(joined, 7);
}

TEST(TemplateIndexBlocksTest, CopiesPaddedEachWithTheirOwnJoinByTheirFirstBlocks) {
  // A burst's copies: a short template, each copy padded after it with
  // many random words of its own. Neither copy contains the other and
  // they share fewer than 11 blocks, but they begin with the same ones.
  std::string base;
  for (int i = 0; i < 40; ++i) absl::StrAppend(&base, Letters((i * 7919) % 1000), " ");
  base += "\n\n";
  auto padded = [&](int copy) {
    std::string padding;
    for (int i = 0; i < 400; ++i) absl::StrAppend(&padding, Letters(5000 + copy * 2000 + i), " ");
    return base + padding;
  };
  ASSERT_GE(WordsFp(base).nhead, 3);
  ASSERT_LT(WordsFp(base).nblocks, 11);
  EXPECT_GE(Fingerprint::CommonHead(WordsFp(padded(0)), WordsFp(padded(1))), 3);
  EXPECT_EQ(Fingerprint::ContainedBlocks(WordsFp(padded(0)), WordsFp(padded(1)), 0), 0);
  TemplateIndex index({1024, 0.503, 11, 2, 2, 4});  // the defaults
  TemplateIndex no_head({1024, 0.503, 11, 2, 0, 0});
  const uint64_t t = index.Assign(WordsFp(padded(0)));
  const uint64_t u = no_head.Assign(WordsFp(padded(0)));
  for (int copy = 1; copy < 6; ++copy) {
    EXPECT_EQ(index.Assign(WordsFp(padded(copy))), t) << copy;
    EXPECT_NE(no_head.Assign(WordsFp(padded(copy))), u) << copy;
  }
  // A message that begins otherwise, padded as the copies are, does not.
  std::string other;
  for (int i = 0; i < 40; ++i) absl::StrAppend(&other, Letters(20000 + i * 31), " ");
  EXPECT_NE(index.Assign(WordsFp(other + "\n\n" + padded(9).substr(base.size()))), t);
  // Forgotten with its template: a ring of 16 pushes it out.
  TemplateIndex small({16, 0.44, 11, 2, 3, 0});
  const uint64_t first = small.Assign(WordsFp(padded(0)));
  for (int i = 0; i < 16; ++i) {
    std::string filler;
    for (int w = 0; w < 40; ++w) absl::StrAppend(&filler, Letters(100000 + i * 1000 + w), " ");
    small.Assign(WordsFp(filler));
  }
  EXPECT_NE(small.Assign(WordsFp(padded(1))), first);
}

}  // namespace
}  // namespace sluice
