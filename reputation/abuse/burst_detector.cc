#include "reputation/abuse/burst_detector.h"

#include <algorithm>

#include "absl/status/status.h"
#include "ratelimit/hash.h"
#include "ratelimit/sliding_window.h"
#include "ratelimit/window_counter.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace sluice {

namespace {

// Counter kinds; they seed the keys so kinds never share a counter.
enum Kind : int { kSameSize = 0, kNearDup = 1, kCampaign = 2, kSeenBySender = 3 };

uint64_t Key(int kind, uint64_t a, uint64_t b) {
  return Mix64(Mix64(a ^ (0x6275727374000000ull + static_cast<uint64_t>(kind))) ^ b);
}

}  // namespace

absl::StatusOr<std::unique_ptr<BurstDetector>> BurstDetector::Create(const Options& options,
                                                                     absl::Time now) {
  if (!(options.shared_blocks >= 0 && options.shared_blocks <= 1000)) {
    return absl::InvalidArgumentError("burst detector: shared_blocks must be in [0, 1000]");
  }
  if (options.contained_blocks < 0 || options.contained_blocks > Fingerprint::kBlocks) {
    return absl::InvalidArgumentError("burst detector: contained_blocks must be in [0, 64]");
  }
  if (options.head_blocks < 0 || options.head_blocks > Fingerprint::kHead) {
    return absl::InvalidArgumentError("burst detector: head_blocks must be in [0, 8]");
  }
  if (options.tail_blocks < 0 || options.tail_blocks > Fingerprint::kTail) {
    return absl::InvalidArgumentError("burst detector: tail_blocks must be in [0, 8]");
  }
  if (!(options.similarity > 0 && options.similarity <= 1)) {
    return absl::InvalidArgumentError("burst detector: similarity must be in (0, 1]");
  }
  for (absl::Duration w :
       {options.same_size_window, options.near_duplicate_window, options.campaign_window}) {
    if (w < absl::Seconds(1) || w > absl::Seconds(393204)) {
      return absl::InvalidArgumentError("burst detector: windows must be 1s .. 4.5d");
    }
  }
  auto table = CounterTable::Open(options.table, now);
  if (!table.ok()) return table.status();
  std::unique_ptr<BurstDetector> d(new BurstDetector());
  d->options_ = options;
  d->table_ = std::move(*table);
  d->templates_ = std::make_unique<TemplateIndex>(
      TemplateIndex::Options{options.max_templates, options.similarity, options.shared_blocks,
                             options.contained_blocks, options.head_blocks, options.tail_blocks});
  d->sub_[kSameSize] =
      SlidingWindow::SubBucketSeconds(absl::ToInt64Seconds(options.same_size_window));
  d->sub_[kNearDup] =
      SlidingWindow::SubBucketSeconds(absl::ToInt64Seconds(options.near_duplicate_window));
  d->sub_[kCampaign] =
      SlidingWindow::SubBucketSeconds(absl::ToInt64Seconds(options.campaign_window));
  return d;
}

uint64_t BurstDetector::Add(uint64_t key, int kind, uint32_t sub_s, int64_t since_ms,
                            uint64_t n) noexcept {
  // A full table's shared overflow counter mixes everybody's messages: it
  // reads as 0, so it raises no alarm for whoever lands in it.
  return CountInWindow(*table_, key, Key(kind, 0x0f10, 0), sub_s, since_ms,
                       static_cast<int64_t>(n));
}

BurstDetector::Bursts BurstDetector::Observe(absl::string_view sender, const Fingerprint& fp,
                                             absl::Time now) noexcept {
  Bursts v;
  const int64_t since_ms = table_->SinceBaseMs(now);
  const uint64_t who = XXH3_64bits(sender.data(), sender.size());

  // (a) same size or size bucket.
  const uint64_t size_key = options_.exact_size ? fp.size : (uint64_t{1} << 40) + fp.size_bucket;
  v.same_size_count = Add(Key(kSameSize, who, size_key), kSameSize, sub_[kSameSize], since_ms, 1);
  v.same_size = v.same_size_count >= options_.same_size_threshold;

  // (b) + (c): counted per template (a cluster of near-duplicates).
  v.template_id = templates_->Assign(fp, &v.similarity);
  if (v.template_id != 0) {
    const uint64_t t = v.template_id;
    v.near_duplicate_count = Add(Key(kNearDup, who, t), kNearDup, sub_[kNearDup], since_ms, 1);
    // The first time this sender uses this template in the campaign window
    // it counts as one more sender of the template.
    // Only close copies count towards a campaign (campaign_similarity).
    if (v.similarity >= options_.campaign_similarity) {
      uint64_t mine = Add(Key(kSeenBySender, who, t), kSeenBySender, sub_[kCampaign], since_ms, 1);
      v.campaign_senders =
          Add(Key(kCampaign, t, 0), kCampaign, sub_[kCampaign], since_ms, mine == 1 ? 1 : 0);
    }
  }
  v.near_duplicate = v.near_duplicate_count >= options_.near_duplicate_threshold;
  v.campaign = v.campaign_senders >= options_.campaign_threshold;
  return v;
}

}  // namespace sluice
