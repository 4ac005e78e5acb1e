// Fingerprint: what sluice remembers of a message's content to find
// same-size and near-duplicate bursts.
//
//   size, size_bucket   raw size and a logarithmic bucket (8 per doubling,
//                       ~9% wide), for "N messages of about this size"
//   digest              XXH3-128 over the normalised token stream
//                       (BodyNormalizer): equal for copies that differ only
//                       in names, numbers, tracking ids, URLs' paths,
//                       whitespace, case, line wrapping or MIME encoding
//   minhash             a MinHash sketch of the token shingles (one
//                       permutation hashing with rotation densification):
//                       Similarity() estimates the Jaccard similarity of
//                       two messages' shingle sets with standard error
//                       about sqrt(J(1-J)/K); the HTML markup of a
//                       message's start (before its
//                       BodyNormalizer::kFewTokens-th token) joins the set.
//                       A token under 16 bytes is hashed as one lane of
//                       XXH3's long-input accumulator (eight at a time
//                       with AVX-512), a longer one with XXH3-64; a
//                       shingle's hashes are combined and mixed with
//                       splitmix64's finalizer. Same values on every CPU.
//   blocks              the smallest hashes of content-defined blocks of
//                       about 6 tokens, which also end where a paragraph
//                       ends (TokenBatch::breaks) once they have 4 tokens:
//                       SharedBlocks counts the runs two messages have in
//                       common, which padding cannot dilute;
//                       ContainedBlocks finds a short template all of whose
//                       blocks are in a padded copy
//   head                the first blocks in stream order: CommonHead finds
//                       two copies of a template each padded after it with
//                       words of its own (neither contains the other)
//   tail                the last blocks before the footer (which begins at
//                       a rule line near the end, BodyNormalizer::
//                       rule_lines): CommonTail finds two copies each
//                       padded before it, and not two posts to one list
//   band keys           LSH bands of the sketch for candidate lookup: two
//                       messages with similarity J share at least one of b
//                       bands of r rows with probability 1 - (1 - J^r)^b
//
// Thread safety: Fingerprint is a value type. Fingerprinter is not
// thread-safe; use one per thread (it owns a normaliser and hash state and
// allocates nothing per message).
#ifndef SLUICE_REPUTATION_CONTENT_FINGERPRINT_H_
#define SLUICE_REPUTATION_CONTENT_FINGERPRINT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "reputation/content/body_normalizer.h"

namespace sluice {

struct Fingerprint {
  static constexpr int kMaxK = 128;
  uint64_t size = 0;
  uint32_t size_bucket = 0;
  uint64_t digest_lo = 0, digest_hi = 0;
  uint64_t tokens = 0;
  int k = 0;  // bins of the sketch: a power of two from 8 to kMaxK (0: no sketch)
  // The low 32 bits of each bin's minimum (a false match between different
  // minima has probability 2^-32 per bin): half the memory, and a compare
  // is 8 SIMD comparisons at K = 32 (aligned: no load crosses a line).
  alignas(64) uint32_t minhash[kMaxK];
  // A small message's set exactly: when it has at most kMaxExact elements
  // (shingles and markup features) and K >= kMaxExact, their hashes' low
  // 32 bits, sorted and distinct, and `exact` their number (0: the set is
  // larger, only the sketch). Two small sets compare exactly: a sketch of
  // K bins estimates a set of a few elements poorly.
  static constexpr int kMaxExact = 32;
  int exact = 0;
  uint32_t elements[kMaxExact];
  // Content-defined blocks of the token stream (a block ends after a token
  // whose hash says so, one in four, once it has 4 tokens: about 6 on
  // average): the kBlocks smallest block hashes (32 bits), sorted and
  // distinct, for SharedBlocks. Runs of words in order survive padding
  // that dilutes the word set.
  static constexpr int kBlocks = 64;
  int nblocks = 0;
  uint32_t blocks[kBlocks];
  // Whether `blocks` was cut to the smallest (the message has more).
  bool blocks_cut() const { return nblocks == kBlocks; }
  // The message's first kHead block hashes in the order they came (all of
  // them, not a sample): two copies of a template with different words
  // appended after it begin with the same blocks.
  static constexpr int kHead = 8;
  int nhead = 0;
  uint32_t head[kHead];
  // The first block (head[0]), or -1 if the message has none; as
  // ContainedBlocks' `first_a` and `first_b` take it.
  int64_t first_block() const { return nhead > 0 ? int64_t{head[0]} : -1; }
  // How many blocks two messages begin with alike (the longest common
  // prefix of `head`).
  static int CommonHead(const Fingerprint& a, const Fingerprint& b) noexcept;
  // The message's last kTail blocks before its footer, in the order they
  // came: two copies of a template each padded before it with words of
  // their own end alike, and a mailing list's or newsletter's footer,
  // which ordinary mail of one list shares, is not what they end with. A
  // footer is what follows a rule line (BodyNormalizer::rule_lines) with
  // at most kFooterBlocks blocks after it and no more than before it (the
  // earliest such line).
  static constexpr int kTail = 8;
  static constexpr int kFooterBlocks = 16;
  int ntail = 0;
  uint32_t tail[kTail];
  // How many blocks two messages end with alike before their footers (the
  // longest common suffix of `tail`).
  static int CommonTail(const Fingerprint& a, const Fingerprint& b) noexcept;

  // Equal template digests; a message without tokens has no template (as
  // in TemplateIndex), so two empty messages are not the same template.
  bool SameTemplate(const Fingerprint& o) const {
    return tokens > 0 && o.tokens > 0 && digest_lo == o.digest_lo && digest_hi == o.digest_hi;
  }
  // Estimated Jaccard similarity of the shingle sets, in [0, 1] (exact for
  // two small sets). Sketches of different K compare as 0. Two empty
  // messages compare as 0.
  static double Similarity(const Fingerprint& a, const Fingerprint& b) noexcept;
  // Estimated number of blocks two messages have in common (exact while
  // both have fewer than kBlocks; else the bottom-k estimate below the
  // smaller list's largest value). A template padded with words of its
  // own, or two such copies, still share the template's blocks.
  static double SharedBlocks(const Fingerprint& a, const Fingerprint& b) noexcept;
  // The same on two sorted lists of block hashes; `full` if the list was
  // cut to its smallest values (else it holds the whole set).
  static double SharedBlocks(const uint32_t* a, int na, bool full_a, const uint32_t* b, int nb,
                             bool full_b) noexcept;
  // How many blocks of one message were found in the other, if no more
  // than `missing` of those checked were not (else 0): every block of a
  // message whose whole block set is known (not cut to kBlocks) is
  // checked, as far as the other's list reaches (all of it, or up to its
  // largest value if cut). A template padded with words of its own
  // contains its blocks, how much padding soever dilutes its words and
  // however few blocks it has (a block ends only where a token ends one,
  // so words appended after it leave its blocks whole). A message's first
  // block (head[0]) may be missing besides: words put before the text (a
  // new opening, padding before it) run into it and change it, and leave
  // the others whole. `missing` allows more blocks changed by an edit.
  // Both directions are tried; the larger count is returned.
  static int ContainedBlocks(const Fingerprint& a, const Fingerprint& b, int missing) noexcept;
  // The same on two sorted lists (`full`: cut to their smallest values);
  // `first_a` and `first_b` are the messages' first blocks (-1: not
  // known, none may be missing besides `missing`).
  static int ContainedBlocks(const uint32_t* a, int na, bool full_a, const uint32_t* b, int nb,
                             bool full_b, int missing, int64_t first_a = -1,
                             int64_t first_b = -1) noexcept;
  // Writes `bands` band keys (K must be divisible by bands). Returns the
  // number written (0 for an empty message).
  int BandKeys(int bands, uint64_t* out) const noexcept;

  // |A ∩ B| / |A ∪ B| of two sorted sets of distinct values.
  static double ExactJaccard(const uint32_t* a, int na, const uint32_t* b, int nb) noexcept;

  // Returns the size bucket of a size in bytes.
  static uint32_t SizeBucket(uint64_t size) noexcept;
};

class Fingerprinter : private TokenSink {
 public:
  struct Options {
    int k = 32;  // sketch size: a power of two in [8, 128]
    // Tokens per shingle: 1 (word sets, the default: the rule the corpus
    // benchmark measures and calibrates, benchmarks/RESULTS.md) to 4.
    int shingle = 1;
    BodyNormalizer::Options normalizer;
  };
  Fingerprinter();
  explicit Fingerprinter(const Options& options);
  ~Fingerprinter() override;
  Fingerprinter(const Fingerprinter&) = delete;
  Fingerprinter& operator=(const Fingerprinter&) = delete;

  // Fingerprints a whole raw message (headers + body).
  void Compute(absl::string_view message, Fingerprint* out) noexcept;

  // Streaming: Begin, Feed chunks, Finish.
  void Begin() noexcept;
  // From now on, the hosts of each message's links (http://, www., href and
  // src; lower-case, as written) go to *out: cleared at Begin, distinct, in
  // order of first appearance, at most `max`. Null stops it. For the domain
  // lists (UrlExtractor::NormalizeHost turns them into UrlHosts).
  void CollectLinkHosts(std::vector<std::string>* out, size_t max = 16) noexcept {
    link_hosts_ = out;
    max_link_hosts_ = max;
  }
  void Feed(absl::string_view chunk) noexcept { normalizer_.Feed(chunk); }
  void Finish(Fingerprint* out) noexcept;

 private:
  void Tokens(const TokenBatch& batch) noexcept override;
  void Markup(absl::string_view markup) noexcept override;

  void AddLinkHosts(const TokenBatch& batch) noexcept;

  Options options_;
  std::vector<std::string>* link_hosts_ = nullptr;
  size_t max_link_hosts_ = 16;
  int k_bits_ = 5;
  BodyNormalizer normalizer_;
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace sluice

#endif  // SLUICE_REPUTATION_CONTENT_FINGERPRINT_H_
