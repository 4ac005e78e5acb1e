// TemplateIndex: groups recent messages into templates (clusters of
// near-duplicates), so that bursts of personalised copies of one message
// are counted together.
//
// Each template keeps a compact 16-bit-per-bin copy of its first message's
// MinHash sketch (b-bit minwise hashing: K=32 bins -> 64 bytes; two
// unrelated bins collide with probability 1/65536). A message joins the
// template whose sketch it resembles most if the estimated Jaccard
// similarity is at least `similarity`; candidates are found through the
// exact template digest and LSH bands of 2 bins (16 bands for K=32: a
// message with J=0.6 to a template shares a band with probability
// 1-(1-0.36)^16 > 0.999), and, for a copy padded with words of its own,
// through the template's smallest content-defined blocks: it joins if it
// has `shared_blocks` blocks in common with the template (runs of words
// in order; Fingerprint::SharedBlocks), or if every one of the template's
// blocks (at least `contained_blocks` of them) is among its own, or every
// one of its own among the template's, the first block of either allowed
// missing (words put before the text change it; Fingerprint::ContainedBlocks);
// and, for two copies each padded with words of its own, through the
// template's first `head_blocks` blocks in stream order: it joins if it
// begins with the same ones (Fingerprint::CommonHead), or through its last
// `tail_blocks` blocks before its footer: it joins if it ends with the
// same ones (Fingerprint::CommonTail; copies padded before the text).
// Otherwise it starts a new template. The
// `max_templates` most recent templates are kept (a ring: the oldest is
// forgotten), so memory is fixed: about 390 + 24 * 24 bytes per template.
// A small first message (Fingerprint::exact) keeps its set exactly too,
// and two small sets are compared exactly.
//
// Template ids are derived from the first message's digest, so processes
// that see the same first message agree; near-duplicates arriving first
// in different processes get different ids (the index is per process).
//
// Thread safety: thread-safe (one mutex; Assign is a few microseconds).
#ifndef SLUICE_REPUTATION_CONTENT_TEMPLATE_INDEX_H_
#define SLUICE_REPUTATION_CONTENT_TEMPLATE_INDEX_H_

#include <cstdint>
#include <mutex>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "reputation/content/fingerprint.h"

namespace sluice {

class TemplateIndex {
 public:
  struct Options {
    size_t max_templates = 1 << 16;
    double similarity = 0.503;  // see BurstDetector::Options::similarity
    // Blocks in common (Fingerprint::SharedBlocks) that also make a
    // message a template's (0: off); see BurstDetector::Options.
    double shared_blocks = 11;
    // Blocks of one message all found in the other (template or message;
    // Fingerprint::ContainedBlocks) that also make it the template's (0:
    // off): a short template padded with many words of its own.
    int contained_blocks = 2;
    // Blocks two messages begin with alike (Fingerprint::CommonHead, at
    // most Fingerprint::kHead; 0: off) that also make a message the
    // template's: two copies of a template each padded after it.
    int head_blocks = 2;
    // Blocks two messages end with alike before their footers
    // (Fingerprint::CommonTail, at most Fingerprint::kTail; 0: off): two
    // copies each padded before it.
    int tail_blocks = 4;
  };
  explicit TemplateIndex(const Options& options);

  // Returns the template of `fp` (0 for a message without tokens) and,
  // if `similarity` is not null, the similarity to it (1 for a new one).
  uint64_t Assign(const Fingerprint& fp, double* similarity = nullptr);

  size_t size() const;

 private:
  static constexpr int kBins = 32;
  static constexpr int kBands = 16;
  static constexpr int kTemplateBlocks = 32;
  static constexpr int kIndexedBlocks = 8;
  struct Template {
    uint64_t id = 0;
    uint64_t digest = 0;
    uint16_t sketch[kBins];
    // The first message's set exactly if it is small (Fingerprint::exact).
    int exact = 0;
    uint32_t elements[Fingerprint::kMaxExact];
    // Its kTemplateBlocks smallest block hashes; the first kIndexedBlocks
    // are in by_block_.
    uint8_t nblocks = 0;
    bool blocks_cut = false;
    uint32_t blocks[kTemplateBlocks];
    int64_t first = -1;  // its first block (Fingerprint::head[0]; -1: none)
    // Its first head_blocks blocks as one key in by_head_, its last
    // tail_blocks in by_tail_ (0: fewer).
    uint64_t head = 0;
    uint64_t tail = 0;
  };
  // The keys of fp's first head_blocks and last tail_blocks blocks (0 if
  // it has fewer).
  uint64_t HeadKey(const Fingerprint& fp) const;
  uint64_t TailKey(const Fingerprint& fp) const;
  static void Compact(const Fingerprint& fp, uint16_t* out);
  static uint64_t Band(const uint16_t* sketch, int band);
  void Forget(uint32_t slot);

  Options options_;
  mutable std::mutex mu_;
  std::vector<Template> ring_;  // grows to max_templates, then wraps
  size_t next_ = 0;             // the oldest once full
  absl::flat_hash_map<uint64_t, uint32_t> by_digest_;
  absl::flat_hash_map<uint64_t, uint32_t> by_band_;
  absl::flat_hash_map<uint32_t, uint32_t> by_block_;
  absl::flat_hash_map<uint64_t, uint32_t> by_head_;
  absl::flat_hash_map<uint64_t, uint32_t> by_tail_;
};

}  // namespace sluice

#endif  // SLUICE_REPUTATION_CONTENT_TEMPLATE_INDEX_H_
