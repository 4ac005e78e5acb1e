// BurstDetector: same-size, near-duplicate and campaign bursts, counted on
// sluice's lock-free sliding windows (a CounterTable, so the memory cap,
// multi-process sharing and restart survival are the limiter's).
//
// For every message (sender + Fingerprint) it counts, per sliding window:
//   (a) same size:   messages of the sender in the same size bucket (or of
//                    exactly the same size);
//   (b) near-dup:    messages of the sender in the same template: the
//                    same digest, or MinHash similarity >= `similarity` to
//                    the template's first message (TemplateIndex);
//   (c) campaign:    distinct senders of the same template (a sender adds 1
//                    the first time in the window).
// Each count is compared with its threshold; a Bursts says which fired.
// Memory is the table's hard cap. When it is full, new keys go to a shared
// overflow counter per kind whose count raises no alarm (it mixes everyone's
// messages); keys already tracked keep being counted.
//
// Thread safety: Observe and Counts are thread-safe and lock-free.
#ifndef SLUICE_REPUTATION_ABUSE_BURST_DETECTOR_H_
#define SLUICE_REPUTATION_ABUSE_BURST_DETECTOR_H_

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "ratelimit/counter_table.h"
#include "reputation/content/fingerprint.h"
#include "reputation/content/template_index.h"

namespace sluice {

class BurstDetector {
 public:
  struct Options {
    // (a) same-size burst: N messages in T from one sender.
    uint64_t same_size_threshold = 20;
    absl::Duration same_size_window = absl::Minutes(10);
    bool exact_size = false;  // false: size bucket (~9% wide)
    // (b) near-duplicates from one sender.
    uint64_t near_duplicate_threshold = 10;
    absl::Duration near_duplicate_window = absl::Hours(1);
    // Estimated Jaccard similarity of the word sets to join a template,
    // or blocks of about 6 words in order in common with it
    // (Fingerprint::SharedBlocks; 0: off). With the same digest, the rule
    // the corpus benchmark measures, its thresholds calibrated together on
    // all 8.6 M distinct ham pairs of the corpus (<= 0.05% of them alike;
    // benchmarks/RESULTS.md).
    double similarity = 0.503;
    double shared_blocks = 11;
    // Or every block of one of the two (at least this many; 0: off) found
    // in the other, its first allowed missing (Fingerprint::ContainedBlocks):
    // a short template padded with many words of its own, after it or
    // before it. Calibrated with the two above.
    int contained_blocks = 2;
    // Or the same first blocks of both, at least this many (at most
    // Fingerprint::kHead; 0: off; Fingerprint::CommonHead): two copies of
    // a template, each padded after it with words of its own. Calibrated
    // with the three above.
    int head_blocks = 2;
    // Or the same last blocks of both before their footers, at least this
    // many (at most Fingerprint::kTail; 0: off; Fingerprint::CommonTail):
    // two copies, each padded before it. Calibrated last: with it the
    // similarity above rises from 0.441 to 0.503 to stay in the budget.
    int tail_blocks = 4;
    size_t max_templates = 1 << 16;  // templates remembered (memory cap)
    // (c) one template from many senders.
    uint64_t campaign_threshold = 5;
    absl::Duration campaign_window = absl::Hours(1);
    // A sender counts towards a template's campaign only if its message is
    // at least this similar to the template (or has its exact digest):
    // stricter than near-duplicates, because mailing-list boilerplate makes
    // unrelated senders' ham look alike (see the burst simulation).
    double campaign_similarity = 0.6;
    CounterTable::Options table;
  };

  struct Bursts {
    bool same_size = false;
    bool near_duplicate = false;
    bool campaign = false;
    uint64_t same_size_count = 0;
    uint64_t near_duplicate_count = 0;
    uint64_t campaign_senders = 0;
    uint64_t template_id = 0;  // 0 for a message without text
    double similarity = 0;     // to the template's first message
    bool any() const { return same_size || near_duplicate || campaign; }
  };

  static absl::StatusOr<std::unique_ptr<BurstDetector>> Create(const Options& options,
                                                               absl::Time now);

  // Counts the message and returns what fired (counts include it).
  // Thread-safe.
  Bursts Observe(absl::string_view sender, const Fingerprint& fp, absl::Time now) noexcept;

  CounterTable& table() { return *table_; }

 private:
  BurstDetector() = default;
  // Adds n to the counter of `key` under kind `kind`; returns its usage.
  uint64_t Add(uint64_t key, int kind, uint32_t sub_s, int64_t since_ms, uint64_t n) noexcept;

  Options options_;
  std::unique_ptr<CounterTable> table_;
  std::unique_ptr<TemplateIndex> templates_;
  uint32_t sub_[3] = {1, 1, 1};  // sub-bucket seconds per kind
};

}  // namespace sluice

#endif  // SLUICE_REPUTATION_ABUSE_BURST_DETECTOR_H_
