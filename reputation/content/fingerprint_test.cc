#include "reputation/content/fingerprint.h"

#include <algorithm>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"

namespace sluice {
namespace {

// A deterministic vocabulary of pronounceable, digit-free words.
std::vector<std::string> Vocabulary() {
  static const char* kSyl[] = {"ka", "lo",  "mi",  "ne",  "ru",  "sa",  "ti",  "vo",  "ze",
                               "pa", "qui", "ber", "don", "fal", "gor", "hen", "jas", "mor"};
  std::vector<std::string> v;
  for (int a = 0; a < 18; ++a) {
    for (int b = 0; b < 18; ++b) {
      for (int c = 0; c < 6; ++c) v.push_back(absl::StrCat(kSyl[a], kSyl[b], kSyl[c]));
    }
  }
  return v;
}

std::vector<std::string> Words(int n, uint32_t seed) {
  static const std::vector<std::string> vocab = Vocabulary();
  std::mt19937 rng(seed);
  std::vector<std::string> w;
  for (int i = 0; i < n; ++i) w.push_back(vocab[rng() % vocab.size()]);
  return w;
}

std::string Message(const std::vector<std::string>& words, absl::string_view greeting_name = "",
                    absl::string_view url = "https://shop.example/offer", int wrap = 12) {
  std::string body = "From: a@b.example\nSubject: offer\n\n";
  if (!greeting_name.empty()) absl::StrAppend(&body, "Dear ", greeting_name, ",\n");
  for (size_t i = 0; i < words.size(); ++i) {
    absl::StrAppend(&body, words[i], (i + 1) % wrap == 0 ? "\n" : " ");
    if (i == words.size() / 2) absl::StrAppend(&body, url, " ");
  }
  return body;
}

Fingerprint Fp(absl::string_view m, Fingerprinter::Options o = {}) {
  Fingerprinter f(o);
  Fingerprint fp;
  f.Compute(m, &fp);
  return fp;
}

TEST(FingerprintTest, WideAndNarrowVectorsGiveTheSameSketch) {
  // With AVX-512 the sketch hashes eight tokens at a time; without it, one
  // at a time: the same arithmetic, so the same fingerprint on any CPU
  // (fingerprints are compared across machines). Messages of 0 to 300
  // words of every length, every shingle width, and every tenth of up to
  // 4,000 words (more blocks than are kept: the cut in mid-stream).
  const bool wide = BodyNormalizer::UseWideVectors(true);
  std::mt19937 rng(61);
  for (int trial = 0; trial < 200; ++trial) {
    const int words = static_cast<int>(rng() % (trial % 10 == 0 ? 4000 : 300));
    auto w = Words(words, 500 + trial);
    for (auto& word : w) {
      if (rng() % 10 == 0) {
        word += "abcdefghijklmnop";  // 16 bytes or more
      } else if (rng() % 2 == 0) {
        word.append(rng() % 12, 'z');  // every length up to 15
      }
    }
    Fingerprinter::Options o;
    o.shingle = 1 + trial % 4;
    o.k = 8 << (trial % 5);
    std::string m = Message(w);
    // Paragraph ends (blank lines) in two messages of three, at random
    // places: blocks end there too; and rule lines, where the tail ends.
    if (trial % 3 != 0) {
      for (size_t at = m.find("\n\n") + 2; at < m.size(); ++at) {
        if (m[at] != ' ') continue;
        const uint32_t r = rng() % (1 + trial % 7);
        if (r == 0) m.replace(at, 1, "\n\n");
        if (r == 1 && rng() % 4 == 0) m.replace(at, 1, "\n-----\n");
      }
    }
    BodyNormalizer::UseWideVectors(true);
    const Fingerprint a = Fp(m, o);
    BodyNormalizer::UseWideVectors(false);
    const Fingerprint b = Fp(m, o);
    ASSERT_EQ(a.tokens, b.tokens);
    ASSERT_EQ(a.digest_lo, b.digest_lo);
    ASSERT_EQ(a.digest_hi, b.digest_hi);
    ASSERT_EQ(a.k, b.k);
    for (int i = 0; i < a.k; ++i) ASSERT_EQ(a.minhash[i], b.minhash[i]) << trial << " " << i;
    ASSERT_EQ(a.exact, b.exact);
    for (int i = 0; i < a.exact; ++i) ASSERT_EQ(a.elements[i], b.elements[i]) << trial;
    ASSERT_EQ(a.nblocks, b.nblocks) << trial;
    for (int i = 0; i < a.nblocks; ++i) ASSERT_EQ(a.blocks[i], b.blocks[i]) << trial << " " << i;
    ASSERT_EQ(a.nhead, b.nhead) << trial;
    for (int i = 0; i < a.nhead; ++i) ASSERT_EQ(a.head[i], b.head[i]) << trial << " " << i;
    ASSERT_EQ(a.ntail, b.ntail) << trial;
    for (int i = 0; i < a.ntail; ++i) ASSERT_EQ(a.tail[i], b.tail[i]) << trial << " " << i;
  }
  BodyNormalizer::UseWideVectors(true);
  if (!wide) GTEST_SKIP() << "this CPU has no AVX-512: only the one-at-a-time path was run";
}

TEST(FingerprintTest, CommonHeadCountsTheFirstBlocksAlike) {
  // The first blocks in stream order: words appended after a text leave
  // its first blocks as they were; a different opening changes them.
  auto w = Words(300, 77);
  auto pad = Words(300, 78);
  std::string text, other;
  for (const auto& x : w) absl::StrAppend(&text, x, " ");
  for (const auto& x : pad) absl::StrAppend(&other, x, " ");
  Fingerprinter::Options o;
  const Fingerprint a = Fp("\n" + text + "\n", o);
  const Fingerprint b = Fp("\n" + text + other + "\n", o);
  const Fingerprint c = Fp("\n" + other + text + "\n", o);
  ASSERT_EQ(a.nhead, Fingerprint::kHead);
  EXPECT_EQ(Fingerprint::CommonHead(a, b), Fingerprint::kHead);
  EXPECT_EQ(Fingerprint::CommonHead(a, a), Fingerprint::kHead);
  EXPECT_LT(Fingerprint::CommonHead(a, c), 2);
  // A message with fewer blocks than kHead keeps them all.
  const Fingerprint few =
      Fp("\nalpha bravo charlie delta echo foxtrot golf hotel india juliet\n", o);
  EXPECT_LT(few.nhead, Fingerprint::kHead);
  EXPECT_EQ(Fingerprint::CommonHead(few, few), few.nhead);
}

TEST(FingerprintTest, SmallSetsCompareExactly) {
  // Up to Fingerprint::kMaxExact elements a message's set is kept as it is
  // and two such sets compare exactly: 8 words against the same 8 and 7
  // more is 8/15 (the sketch's K = 32 bins would be off by +-0.14).
  Fingerprinter::Options words;
  words.shingle = 1;
  const std::string eight = "\nalpha bravo charlie delta echo foxtrot golf hotel\n";
  const Fingerprint a = Fp(eight, words);
  const Fingerprint b = Fp(eight + "india juliet kilo lima mike november oscar\n", words);
  EXPECT_EQ(a.exact, 8);
  EXPECT_EQ(b.exact, 15);
  EXPECT_DOUBLE_EQ(Fingerprint::Similarity(a, b), 8.0 / 15.0);
  EXPECT_DOUBLE_EQ(Fingerprint::Similarity(b, a), 8.0 / 15.0);
  EXPECT_DOUBLE_EQ(Fingerprint::Similarity(a, a), 1.0);
  // Repeated words count once.
  EXPECT_EQ(Fp("\nalpha alpha bravo alpha\n", words).exact, 2);
  // A larger set has only the sketch; so has every set when K < 32.
  const Fingerprint large = Fp(Message(Words(200, 4)), words);
  EXPECT_EQ(large.exact, 0);
  EXPECT_GT(Fingerprint::Similarity(large, large), 0.99);
  Fingerprinter::Options small_k = words;
  small_k.k = 16;
  EXPECT_EQ(Fp(eight, small_k).exact, 0);
  // One small and one large set: the sketches are compared.
  EXPECT_LT(Fingerprint::Similarity(a, large), 0.2);
}

TEST(FingerprintTest, PersonalisationKeepsTheTemplateDigest) {
  auto w = Words(150, 1);
  Fingerprint base = Fp(Message(w, "Anna Smith"));
  EXPECT_EQ(base.tokens, 151u);  // 150 words + the URL host
  // Another name, another tracking URL, other wrapping and spacing.
  Fingerprint other =
      Fp(Message(w, "Bob", "https://shop.example/offer?uid=8f3a99&r=bob%40x.example", 7));
  EXPECT_TRUE(base.SameTemplate(other));
  EXPECT_EQ(Fingerprint::Similarity(base, other), 1.0);
  // The same text as base64 and quoted-printable parts.
  std::string text = Message(w, "Carol");
  std::string body = text.substr(text.find("\n\n") + 2);
  std::string b64;
  {
    static const char* kAlphabet =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i = 0;
    int col = 0;
    for (; i + 2 < body.size(); i += 3) {
      uint32_t v = (uint8_t(body[i]) << 16) | (uint8_t(body[i + 1]) << 8) | uint8_t(body[i + 2]);
      for (int s = 18; s >= 0; s -= 6) b64 += kAlphabet[(v >> s) & 63];
      if ((col += 4) >= 76) {
        b64 += "\n";
        col = 0;
      }
    }
    std::string tail = body.substr(i);
    if (!tail.empty()) {
      uint32_t v = uint8_t(tail[0]) << 16;
      if (tail.size() > 1) v |= uint8_t(tail[1]) << 8;
      b64 += kAlphabet[(v >> 18) & 63];
      b64 += kAlphabet[(v >> 12) & 63];
      b64 += tail.size() > 1 ? kAlphabet[(v >> 6) & 63] : '=';
      b64 += '=';
    }
  }
  Fingerprint enc = Fp("Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\n" + b64);
  EXPECT_TRUE(base.SameTemplate(enc));
}

TEST(FingerprintTest, SubstitutedWordsKeepHighSimilarityAndShareABand) {
  Fingerprinter::Options pairs;  // 2-word shingles, as the figures below
  pairs.shingle = 2;
  auto w = Words(200, 2);
  Fingerprint base = Fp(Message(w), pairs);
  std::mt19937 rng(9);
  auto other_words = Words(200, 99);
  int shared_band_trials = 0, low_trials = 0;
  double sum = 0;
  const int kTrials = 200;
  for (int trial = 0; trial < kTrials; ++trial) {
    auto m = w;
    for (int i = 0; i < 20; ++i) m[rng() % m.size()] = other_words[rng() % other_words.size()];
    Fingerprint fp = Fp(Message(m), pairs);
    EXPECT_FALSE(base.SameTemplate(fp));
    double sim = Fingerprint::Similarity(base, fp);
    sum += sim;
    low_trials += sim <= 0.45;
    uint64_t a[8], b[8];
    ASSERT_EQ(base.BandKeys(8, a), 8);
    ASSERT_EQ(fp.BandKeys(8, b), 8);
    bool shared = false;
    for (int i = 0; i < 8; ++i) shared |= a[i] == b[i];
    shared_band_trials += shared;
  }
  // The true Jaccard of the 2-shingles is ~0.67; an estimate from K = 32
  // bins has a standard error of ~0.083, so the mean of 200 is within
  // +-0.04 (the trials share the base message: wider than independent
  // ones), and an estimate at or below 0.45 (2.6 sigma) is rare: ~0.5%,
  // at most 3% of the trials.
  EXPECT_NEAR(sum / kTrials, 0.67, 0.04);
  EXPECT_LE(low_trials, kTrials * 3 / 100);
  // 8 bands of 4 rows at J ~0.67: P(some band equal) = 1 - (1 - J^4)^8 ~0.82;
  // 200 trials put the observed rate within 0.82 +- 0.08 (3 sigma).
  EXPECT_GE(shared_band_trials, kTrials * 74 / 100);
  EXPECT_LE(shared_band_trials, kTrials * 90 / 100);
}

TEST(FingerprintTest, UnrelatedMessagesAreDissimilar) {
  for (uint32_t s = 0; s < 20; ++s) {
    Fingerprint a = Fp(Message(Words(150, 100 + s)));
    Fingerprint b = Fp(Message(Words(150, 200 + s)));
    EXPECT_LT(Fingerprint::Similarity(a, b), 0.2);
    EXPECT_FALSE(a.SameTemplate(b));
  }
}

TEST(FingerprintTest, SimilarityEstimatesJaccardOfWordSets) {
  Fingerprinter::Options o;
  o.shingle = 1;
  o.k = 128;
  auto pool = Words(400, 5);
  std::set<std::string> unique(pool.begin(), pool.end());
  std::vector<std::string> u(unique.begin(), unique.end());
  ASSERT_GE(u.size(), 300u);
  for (int overlap : {50, 100, 150, 200}) {
    // A = u[0..200), B = u[200-overlap .. 400-overlap): |A∩B| = overlap.
    std::vector<std::string> a(u.begin(), u.begin() + 200);
    std::vector<std::string> b(u.begin() + 200 - overlap, u.begin() + 400 - overlap);
    if (400 - overlap > static_cast<int>(u.size())) continue;
    double truth = static_cast<double>(overlap) / (400 - overlap);
    double est = Fingerprint::Similarity(Fp(Message(a, "", ""), o), Fp(Message(b, "", ""), o));
    EXPECT_NEAR(est, truth, 0.15) << overlap;
  }
}

TEST(FingerprintTest, SizeBuckets) {
  EXPECT_EQ(Fingerprint::SizeBucket(0), 0u);
  EXPECT_EQ(Fingerprint::SizeBucket(1024), 80u);
  EXPECT_EQ(Fingerprint::SizeBucket(1100), 80u);
  EXPECT_EQ(Fingerprint::SizeBucket(2048), 88u);
  EXPECT_LT(Fingerprint::SizeBucket(5000), Fingerprint::SizeBucket(6000));
  Fingerprint fp = Fp("\nabc\n");
  EXPECT_EQ(fp.size, 5u);
}

TEST(FingerprintTest, EmptyAndTinyMessages) {
  Fingerprint empty = Fp("");
  EXPECT_EQ(empty.tokens, 0u);
  EXPECT_EQ(Fingerprint::Similarity(empty, empty), 0.0);
  uint64_t keys[8];
  EXPECT_EQ(empty.BandKeys(8, keys), 0);
  Fingerprint one = Fp("\nviagra\n");
  Fingerprint one2 = Fp("\nVIAGRA\n");
  EXPECT_EQ(one.tokens, 1u);
  EXPECT_EQ(Fingerprint::Similarity(one, one2), 1.0);
}

// A message of images and links with a line of text: a per-recipient footer
// outweighs its few words, its markup keeps the copies together.
TEST(FingerprintTest, MarkupKeepsShortHtmlCopiesTogether) {
  auto html = [](absl::string_view widths, absl::string_view footer) {
    std::string m = "From: a@b.example\nContent-Type: text/html\n\n<html><body><table border=0>";
    for (char w : widths) {
      absl::StrAppend(&m, "<tr><td align=center><img src=\"http://img.example/", std::string(1, w),
                      ".gif\" width=", 100 + w, " height=", 50 + w, " alt=\"\"></td></tr>");
    }
    absl::StrAppend(&m, "</table><a href=\"http://shop.example/go\">Shop now</a>", footer,
                    "</body></html>\n");
    return m;
  };
  const Fingerprint base = Fp(html("abcdef", ""));
  // (A footer without an address: one with it takes its lead-in along.)
  const Fingerprint copy = Fp(html("abcdef", "<p>Reserved for Anna Smith only</p>"));
  const Fingerprint other = Fp(html("uvwxyz", "<p>Reserved for Anna Smith only</p>"));
  // 6 x u:img.example, u:shop.example, shop, now: 4 distinct tokens; the
  // copy adds 5 words, so the word sets alone have J = 4/9 (under the
  // corpus benchmark's threshold 0.46); the 8 markup features make it 12/17.
  EXPECT_EQ(base.tokens, 9u);
  EXPECT_EQ(copy.tokens, 14u);
  EXPECT_GE(Fingerprint::Similarity(base, copy), 0.6);
  // Another template with the same words but other images: J = 7/23.
  EXPECT_LT(Fingerprint::Similarity(base, other), 0.46);
  // A long message's markup is not looked at (past kFewTokens words).
  const std::string words =
      absl::StrJoin(Words(static_cast<int>(BodyNormalizer::kFewTokens) + 10, 3), " ");
  const Fingerprint a =
      Fp(absl::StrCat("Content-Type: text/html\n\n<p>", words, "<img width=1 alt=a></p>\n"));
  const Fingerprint b =
      Fp(absl::StrCat("Content-Type: text/html\n\n<p>", words, "<img width=2 alt=b></p>\n"));
  EXPECT_TRUE(std::equal(a.minhash, a.minhash + a.k, b.minhash));
}

}  // namespace
}  // namespace sluice

namespace sluice {
namespace {

// ---- Blocks: runs of words that padding cannot dilute -------------------------------

TEST(FingerprintBlocksTest, PaddedCopiesShareTheTemplatesBlocks) {
  const auto tmpl = Words(300, 7);
  const Fingerprint t = Fp(Message(tmpl));
  ASSERT_GT(t.nblocks, 20);
  std::mt19937 rng(4);
  for (int trial = 0; trial < 20; ++trial) {
    // Each copy: the template and as many random words again, appended.
    auto pad1 = tmpl, pad2 = tmpl;
    const auto extra1 = Words(300, 1000 + 2 * trial), extra2 = Words(300, 1001 + 2 * trial);
    pad1.insert(pad1.end(), extra1.begin(), extra1.end());
    pad2.insert(pad2.end(), extra2.begin(), extra2.end());
    const Fingerprint c1 = Fp(Message(pad1)), c2 = Fp(Message(pad2));
    // The word sets are diluted to about 1/2 and 1/3...
    EXPECT_LT(Fingerprint::Similarity(t, c1), 0.7);
    EXPECT_LT(Fingerprint::Similarity(c1, c2), 0.55);
    // ...but the template's ~45 blocks are in both (estimated).
    EXPECT_GE(Fingerprint::SharedBlocks(t, c1), 20) << trial;
    EXPECT_GE(Fingerprint::SharedBlocks(c1, c2), 20) << trial;
  }
  // Unrelated texts share none.
  for (uint32_t s = 0; s < 20; ++s) {
    EXPECT_LE(Fingerprint::SharedBlocks(Fp(Message(Words(300, 100 + s))),
                                        Fp(Message(Words(300, 200 + s)))),
              2);
  }
}

// Whether a token ends a block depends on all of its bytes: short words
// that begin with the same letter end blocks one time in four, like any
// words (a block is then about 7 tokens: 4, and the wait for an end).
// The token hash is not avalanched; a test on its low bits depended, for
// words of up to four letters, on the first letter alone, so all of such
// a text's words ended blocks (60 blocks of 4) or none did (no block).
TEST(FingerprintBlocksTest, BlockEndsDependOnTheWholeWord) {
  std::mt19937 rng(11);
  for (char first = 'a'; first <= 'z'; ++first) {
    std::set<std::string> seen;
    std::vector<std::string> words;
    while (words.size() < 240) {
      std::string w(1, first);
      for (int i = 0; i < 3; ++i) w += static_cast<char>('a' + rng() % 26);
      if (seen.insert(w).second) words.push_back(w);
    }
    const Fingerprint fp = Fp(Message(words, "", "", 12));
    EXPECT_GE(fp.nblocks, 20) << first;
    EXPECT_LE(fp.nblocks, 50) << first;
  }
}

// A short template (a handful of blocks, too few to share the 11 that
// make two long messages one) inside copies padded with many times its
// words: every one of its blocks is in each copy (a block is cut only
// where a token ends one, so words appended after the template's last
// block leave it whole).
TEST(FingerprintBlocksTest, AShortTemplateIsContainedInItsPaddedCopies) {
  const auto tmpl = Words(40, 17);
  const Fingerprint t = Fp(Message(tmpl, "", ""));
  ASSERT_GE(t.nblocks, 2);
  ASSERT_LT(t.nblocks, 11);
  for (int trial = 0; trial < 20; ++trial) {
    auto padded = tmpl;
    const auto extra = Words(40 * (2 + trial), 3000 + trial);  // 2x .. 21x the template
    padded.insert(padded.end(), extra.begin(), extra.end());
    const Fingerprint c = Fp(Message(padded, "", ""));
    EXPECT_LT(Fingerprint::Similarity(t, c), 0.44) << trial;
    EXPECT_LT(Fingerprint::SharedBlocks(t, c), 11) << trial;
    // All of them, or (a copy with more than kBlocks blocks keeps its
    // smallest) those its list reaches.
    int reach = t.nblocks;
    if (c.blocks_cut()) {
      reach = 0;
      while (reach < t.nblocks && t.blocks[reach] <= c.blocks[c.nblocks - 1]) ++reach;
    }
    ASSERT_GT(reach, 0) << trial;
    EXPECT_EQ(Fingerprint::ContainedBlocks(t, c, 0), reach) << trial;
    EXPECT_EQ(Fingerprint::ContainedBlocks(c, t, 0), reach) << trial;  // either way round
  }
  // One block in the middle changed (the padding written into one of the
  // template's sentences): found only when one may be missing.
  int changed = -1;
  Fingerprint e;
  for (int i = 10; i < 30 && changed < 0; ++i) {  // a word whose edit changes one block
    auto edited = tmpl;
    edited[i] = "zzzzqx";
    e = Fp(Message(edited, "", ""));
    if (Fingerprint::SharedBlocks(t, e) == t.nblocks - 1 && e.head[0] == t.head[0]) changed = i;
  }
  ASSERT_GE(changed, 0);
  EXPECT_EQ(Fingerprint::ContainedBlocks(t, e, 0), 0);
  EXPECT_EQ(Fingerprint::ContainedBlocks(t, e, 1), t.nblocks - 1);
  // The first block changed: what words put before the text do; it may
  // be missing without `missing` (the lists alone do not know it).
  auto opened = tmpl;
  opened[0] = "zzzzqx";
  const Fingerprint o = Fp(Message(opened, "", ""));
  // (The first word cannot end a block: only the first block changes.)
  ASSERT_EQ(Fingerprint::SharedBlocks(t, o), t.nblocks - 1);
  EXPECT_EQ(Fingerprint::ContainedBlocks(t, o, 0), t.nblocks - 1);
  EXPECT_EQ(Fingerprint::ContainedBlocks(t.blocks, t.nblocks, false, o.blocks, o.nblocks, false, 0),
            0);
  // Unrelated short texts: nothing contained.
  for (uint32_t s = 0; s < 20; ++s) {
    EXPECT_EQ(Fingerprint::ContainedBlocks(Fp(Message(Words(40, 500 + s), "", "")),
                                           Fp(Message(Words(400, 700 + s), "", "")), 0),
              0);
  }
}

// Words put before a short template (a new opening, padding before the
// text) run into its first block, and a block chain that starts
// elsewhere may cut the next ones elsewhere too until it meets the
// template's: the copy holds the template's other blocks, and the first
// block may be missing.
TEST(FingerprintBlocksTest, AShortTemplateIsContainedInCopiesWithWordsBeforeIt) {
  const auto tmpl = Words(40, 17);
  const Fingerprint t = Fp(Message(tmpl, "", ""));
  ASSERT_GE(t.nblocks, 3);
  int found_all_but_first = 0;
  for (int trial = 0; trial < 40; ++trial) {
    auto copy = Words(12 + 4 * trial, 4000 + trial);  // 12 to 168 words before it
    copy.insert(copy.end(), tmpl.begin(), tmpl.end());
    const Fingerprint c = Fp(Message(copy, "", ""));
    EXPECT_LT(Fingerprint::SharedBlocks(t, c), 11) << trial;
    EXPECT_EQ(Fingerprint::CommonHead(t, c), 0) << trial;
    const int contained = Fingerprint::ContainedBlocks(t, c, 0);
    // The new chain meets the template's at its first block's end or
    // later: all but the first found, or (rarely) fewer and none counted.
    EXPECT_TRUE(contained == 0 || contained >= t.nblocks - 1) << trial;
    found_all_but_first += contained >= t.nblocks - 1;
  }
  EXPECT_GE(found_all_but_first, 30);
}

TEST(FingerprintBlocksTest, AParagraphAddedBeforeOrAfterLeavesTheTemplatesBlocks) {
  // Words added as a paragraph of their own: the template's blocks end
  // where it begins and ends (once they have 4 tokens), so a copy keeps
  // every block of the template, not all but the first.
  const auto tmpl = Words(40, 17);
  const std::string text = absl::StrJoin(tmpl, " ");
  const Fingerprint t = Fp(absl::StrCat("Subject: x\n\n", text, "\n"));
  ASSERT_GE(t.nblocks, 3);
  int all_before = 0, all_after = 0, all_run_on = 0;
  for (int trial = 0; trial < 40; ++trial) {
    const std::string pad = absl::StrJoin(Words(12 + 4 * trial, 4000 + trial), " ");
    const Fingerprint before = Fp(absl::StrCat("Subject: x\n\n", pad, "\n\n", text, "\n"));
    const Fingerprint after = Fp(absl::StrCat("Subject: x\n\n", text, "\n\n", pad, "\n"));
    const Fingerprint run_on = Fp(absl::StrCat("Subject: x\n\n", pad, " ", text, "\n"));
    const int found_before = Fingerprint::ContainedBlocks(t, before, 0);
    EXPECT_GE(found_before, t.nblocks - 1) << trial;  // at worst the first is lost
    all_before += found_before == t.nblocks;
    all_after += Fingerprint::ContainedBlocks(t, after, 0) == t.nblocks;
    all_run_on += Fingerprint::ContainedBlocks(t, run_on, 0) == t.nblocks;
    // Two copies padded before, each with words of its own.
    const std::string pad2 = absl::StrJoin(Words(12 + 4 * trial, 6000 + trial), " ");
    const Fingerprint other = Fp(absl::StrCat("Subject: x\n\n", pad2, "\n\n", text, "\n"));
    EXPECT_GE(Fingerprint::SharedBlocks(before, other), t.nblocks - 1) << trial;
  }
  // Before: all of them unless the padding's last words (fewer than 4 past
  // its last block) run on into the template's first block (18 of 40).
  EXPECT_GE(all_before, 12);
  EXPECT_EQ(all_after, 40);
  // Without the blank line the padding runs on into the first block.
  EXPECT_LT(all_run_on, all_before) << all_run_on;
}

TEST(FingerprintBlocksTest, TheTailEndsBeforeTheFooter) {
  // Two copies of a template, each with words of its own before it, and a
  // list's footer after a rule line: they end alike before the footer.
  const std::string text = absl::StrJoin(Words(120, 31), " ");
  const std::string footer =
      absl::StrCat("\n____________________\n", absl::StrJoin(Words(30, 32), " "), "\n");
  int alike = 0;
  for (int trial = 0; trial < 20; ++trial) {
    const std::string pad1 = absl::StrJoin(Words(40, 7000 + trial), " ");
    const std::string pad2 = absl::StrJoin(Words(40, 8000 + trial), " ");
    const Fingerprint a = Fp(absl::StrCat("Subject: x\n\n", pad1, "\n\n", text, footer));
    const Fingerprint b = Fp(absl::StrCat("Subject: x\n\n", pad2, "\n\n", text, footer));
    ASSERT_EQ(a.ntail, Fingerprint::kTail);
    alike += Fingerprint::CommonTail(a, b) == Fingerprint::kTail;
    // Without the footer: the same.
    const Fingerprint c = Fp(absl::StrCat("Subject: x\n\n", pad1, "\n\n", text, "\n"));
    EXPECT_EQ(Fingerprint::CommonTail(a, c), Fingerprint::CommonTail(a, b)) << trial;
  }
  EXPECT_EQ(alike, 20);
  // Two different texts with the same footer: nothing alike before it...
  const std::string other = absl::StrJoin(Words(120, 33), " ");
  const Fingerprint x = Fp(absl::StrCat("Subject: x\n\n", text, footer));
  const Fingerprint y = Fp(absl::StrCat("Subject: x\n\n", other, footer));
  EXPECT_EQ(Fingerprint::CommonTail(x, y), 0);
  // ...while without the rule line the footer would be their common tail.
  const std::string bare = absl::StrCat("\n\n", absl::StrJoin(Words(30, 32), " "), "\n");
  EXPECT_GE(Fingerprint::CommonTail(Fp(absl::StrCat("Subject: x\n\n", text, bare)),
                                    Fp(absl::StrCat("Subject: x\n\n", other, bare))),
            3);
  // A rule line far from the end (more than kFooterBlocks blocks after
  // it) is no footer's: the tail is the message's last blocks.
  const std::string longer = absl::StrJoin(Words(300, 35), " ");
  const Fingerprint far = Fp(absl::StrCat("Subject: x\n\n-----\n", longer, "\n"));
  const Fingerprint plain = Fp(absl::StrCat("Subject: x\n\n", longer, "\n"));
  ASSERT_GT(plain.nblocks, Fingerprint::kFooterBlocks);
  EXPECT_EQ(Fingerprint::CommonTail(far, plain), Fingerprint::kTail);
  // Within kFooterBlocks of the end it is one: all after it is footer.
  const Fingerprint near = Fp(absl::StrCat("Subject: x\n\n", absl::StrJoin(Words(40, 36), " "),
                                           "\n-----\n", absl::StrJoin(Words(30, 37), " "), "\n"));
  const Fingerprint near_bare =
      Fp(absl::StrCat("Subject: x\n\n", absl::StrJoin(Words(40, 36), " "), "\n"));
  EXPECT_GE(Fingerprint::CommonTail(near, near_bare), 3);
  // Nor is a rule under a short message's first line (what follows it is
  // longer than what came before).
  const std::string body40 = absl::StrJoin(Words(40, 38), " ");
  const Fingerprint under = Fp(absl::StrCat("Subject: x\n\nBig news\n-----\n", body40, "\n"));
  const Fingerprint bare40 = Fp(absl::StrCat("Subject: x\n\n", body40, "\n"));
  EXPECT_GE(Fingerprint::CommonTail(under, bare40), 3);
  // Fewer blocks than kTail before the footer: all of them.
  const Fingerprint few =
      Fp(absl::StrCat("Subject: x\n\n", absl::StrJoin(Words(12, 34), " "), footer));
  EXPECT_LT(few.ntail, Fingerprint::kTail);
  EXPECT_EQ(Fingerprint::CommonTail(few, few), few.ntail);
}

TEST(FingerprintBlocksTest, ContainedBlocksOnListsExactAndCut) {
  const uint32_t small[] = {5, 9, 40};
  const uint32_t big[] = {1, 5, 9, 12, 40, 90};
  EXPECT_EQ(Fingerprint::ContainedBlocks(small, 3, false, big, 6, false, 0), 3);
  EXPECT_EQ(Fingerprint::ContainedBlocks(big, 6, false, small, 3, false, 0), 3);  // either way
  const uint32_t one_off[] = {5, 9, 41};
  EXPECT_EQ(Fingerprint::ContainedBlocks(one_off, 3, false, big, 6, false, 0), 0);
  EXPECT_EQ(Fingerprint::ContainedBlocks(one_off, 3, false, big, 6, false, 1), 2);
  EXPECT_EQ(Fingerprint::ContainedBlocks(small, 0, false, big, 6, false, 0), 0);
  // The other list cut at 12: only 5 and 9 can be checked, and are there.
  const uint32_t cut[] = {1, 5, 9, 12};
  EXPECT_EQ(Fingerprint::ContainedBlocks(small, 3, false, cut, 4, true, 0), 2);
  // A cut list is never the contained one (its whole set is unknown): the
  // answer is the other direction's.
  const uint32_t disjoint[] = {2, 3, 4};
  EXPECT_EQ(Fingerprint::ContainedBlocks(cut, 4, true, small, 3, false, 0), 2);
  EXPECT_EQ(Fingerprint::ContainedBlocks(cut, 4, true, disjoint, 3, false, 0), 0);
}

TEST(FingerprintBlocksTest, ExactForSmallSetsEstimatedForLargeOnes) {
  const uint32_t a[] = {1, 5, 9, 12};
  const uint32_t b[] = {5, 9, 40};
  EXPECT_EQ(Fingerprint::SharedBlocks(a, 4, false, b, 3, false), 2);
  EXPECT_EQ(Fingerprint::SharedBlocks(a, 0, false, b, 3, false), 0);
  // A cut list: only values below its largest count, scaled up.
  const uint32_t c[] = {0x10000000u, 0x20000000u, 0x40000000u};  // cut at 1/4 of the space
  const uint32_t d[] = {0x10000000u, 0x20000000u, 0x30000000u, 0x80000000u};
  EXPECT_NEAR(Fingerprint::SharedBlocks(c, 3, true, d, 4, false), 8, 0.01);
}

}  // namespace
}  // namespace sluice
