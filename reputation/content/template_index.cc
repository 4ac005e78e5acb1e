#include "reputation/content/template_index.h"

#include <algorithm>

#include "ratelimit/hash.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace sluice {

namespace {

// One key for `want` blocks in order (0: fewer than that, or none wanted).
uint64_t RunKey(const uint32_t* run, int have, int want) {
  if (want == 0 || have < want) return 0;
  return XXH3_64bits(run, sizeof(run[0]) * static_cast<size_t>(want)) | 1;
}

// Erases `key` from an index if it still points to `slot` (a later
// template may have taken the key over).
template <typename Map, typename Key>
void EraseIfSlot(Map& map, const Key& key, uint32_t slot) {
  auto it = map.find(key);
  if (it != map.end() && it->second == slot) map.erase(it);
}

}  // namespace

TemplateIndex::TemplateIndex(const Options& options) : options_(options) {
  if (options_.max_templates < 16) options_.max_templates = 16;
  options_.head_blocks = std::max(0, std::min(options_.head_blocks, Fingerprint::kHead));
  options_.tail_blocks = std::max(0, std::min(options_.tail_blocks, Fingerprint::kTail));
  // Reserved, not filled: the ring's pages are touched as templates come
  // (a process that lives for one connection pays for what it uses).
  ring_.reserve(options_.max_templates);
}

void TemplateIndex::Compact(const Fingerprint& fp, uint16_t* out) {
  // Fold any K down to 32 bins (K is a power of two >= 8; smaller K repeats).
  for (int i = 0; i < kBins; ++i) {
    uint64_t v = fp.minhash[i % fp.k];
    if (fp.k > kBins) {
      for (int j = i + kBins; j < fp.k; j += kBins) v ^= Mix64(fp.minhash[j]);
    }
    out[i] = static_cast<uint16_t>(Mix64(v) >> 48);
  }
}

uint64_t TemplateIndex::Band(const uint16_t* sketch, int band) {
  uint32_t pair = (uint32_t{sketch[2 * band]} << 16) | sketch[2 * band + 1];
  return Mix64((uint64_t{pair} << 8) | static_cast<uint64_t>(band)) | 1;
}

uint64_t TemplateIndex::HeadKey(const Fingerprint& fp) const {
  return RunKey(fp.head, fp.nhead, options_.head_blocks);
}

uint64_t TemplateIndex::TailKey(const Fingerprint& fp) const {
  const int skip = std::max(0, fp.ntail - options_.tail_blocks);
  return RunKey(fp.tail + skip, fp.ntail, options_.tail_blocks);
}

void TemplateIndex::Forget(uint32_t slot) {
  const Template& t = ring_[slot];
  if (t.id == 0) return;
  EraseIfSlot(by_digest_, t.digest, slot);
  for (int b = 0; b < kBands; ++b) EraseIfSlot(by_band_, Band(t.sketch, b), slot);
  for (int i = 0; i < std::min<int>(t.nblocks, kIndexedBlocks); ++i) {
    EraseIfSlot(by_block_, t.blocks[i], slot);
  }
  if (t.head != 0) EraseIfSlot(by_head_, t.head, slot);
  if (t.tail != 0) EraseIfSlot(by_tail_, t.tail, slot);
}

uint64_t TemplateIndex::Assign(const Fingerprint& fp, double* similarity) {
  if (fp.tokens == 0 || fp.k == 0) {
    if (similarity) *similarity = 0;
    return 0;
  }
  uint16_t sketch[kBins];
  Compact(fp, sketch);
  const uint64_t digest = fp.digest_lo ^ Mix64(fp.digest_hi);
  std::lock_guard<std::mutex> lock(mu_);
  auto exact = by_digest_.find(digest);
  if (exact != by_digest_.end()) {
    if (similarity) *similarity = 1;
    return ring_[exact->second].id;
  }
  // A template's similarity to the message (exact for two small sets, as
  // Fingerprint::Similarity).
  auto similarity_to = [&](const Template& t) {
    if (t.exact > 0 && fp.exact > 0) {
      return Fingerprint::ExactJaccard(t.elements, t.exact, fp.elements, fp.exact);
    }
    int equal = 0;
    for (int i = 0; i < kBins; ++i) equal += t.sketch[i] == sketch[i];
    return static_cast<double>(equal) / kBins;
  };
  // Candidates through the bands; keep the most similar.
  int best = -1;
  double best_similarity = -1;
  uint32_t seen[kBands];
  int nseen = 0;
  for (int b = 0; b < kBands; ++b) {
    auto it = by_band_.find(Band(sketch, b));
    if (it == by_band_.end()) continue;
    uint32_t slot = it->second;
    bool dup = false;
    for (int i = 0; i < nseen; ++i) dup |= seen[i] == slot;
    if (dup) continue;
    seen[nseen++] = slot;
    const double s = similarity_to(ring_[slot]);
    if (s > best_similarity) {
      best_similarity = s;
      best = static_cast<int>(slot);
    }
  }
  if (best >= 0 && best_similarity >= options_.similarity) {
    if (similarity) *similarity = best_similarity;
    return ring_[best].id;
  }
  // A copy padded with words of its own: the templates that have one of
  // its blocks among their smallest, joined if enough blocks are shared.
  if (options_.shared_blocks > 0 || options_.contained_blocks > 0) {
    uint32_t tried[kIndexedBlocks * 2];
    int ntried = 0;
    for (int i = 0; i < fp.nblocks && ntried < static_cast<int>(sizeof(tried) / sizeof(tried[0]));
         ++i) {
      auto it = by_block_.find(fp.blocks[i]);
      if (it == by_block_.end()) continue;
      const uint32_t slot = it->second;
      bool dup = false;
      for (int k = 0; k < ntried; ++k) dup |= tried[k] == slot;
      if (dup) continue;
      tried[ntried++] = slot;
      const Template& t = ring_[slot];
      const bool shared =
          options_.shared_blocks > 0 &&
          Fingerprint::SharedBlocks(t.blocks, t.nblocks, t.blocks_cut, fp.blocks, fp.nblocks,
                                    fp.blocks_cut()) >= options_.shared_blocks;
      const bool contained =
          options_.contained_blocks > 0 &&
          Fingerprint::ContainedBlocks(t.blocks, t.nblocks, t.blocks_cut, fp.blocks, fp.nblocks,
                                       fp.blocks_cut(), 0, t.first,
                                       fp.first_block()) >= options_.contained_blocks;
      if (shared || contained) {
        // (What a campaign counts: the similarity to this template.)
        if (similarity) *similarity = similarity_to(t);
        return t.id;
      }
    }
  }
  // Two copies padded each with words of its own: the same first blocks
  // (padded after the text), or the same last ones (padded before it).
  const uint64_t head = HeadKey(fp), tail = TailKey(fp);
  for (const auto& [key, index] :
       {std::make_pair(head, &by_head_), std::make_pair(tail, &by_tail_)}) {
    if (key == 0) continue;
    auto it = index->find(key);
    if (it != index->end()) {
      if (similarity) *similarity = similarity_to(ring_[it->second]);
      return ring_[it->second].id;
    }
  }
  // A new template, in the oldest place of the ring.
  uint32_t slot;
  if (ring_.size() < options_.max_templates) {
    slot = static_cast<uint32_t>(ring_.size());
    ring_.emplace_back();
  } else {
    slot = static_cast<uint32_t>(next_);
    next_ = (next_ + 1) % ring_.size();
    Forget(slot);
  }
  Template& t = ring_[slot];
  t.id = Mix64(digest) | 1;
  t.digest = digest;
  std::copy(sketch, sketch + kBins, t.sketch);
  t.exact = fp.exact;
  std::copy(fp.elements, fp.elements + fp.exact, t.elements);
  t.nblocks = static_cast<uint8_t>(std::min(fp.nblocks, kTemplateBlocks));
  t.blocks_cut = fp.nblocks > kTemplateBlocks;
  std::copy(fp.blocks, fp.blocks + t.nblocks, t.blocks);
  t.first = fp.first_block();
  by_digest_[digest] = slot;
  for (int b = 0; b < kBands; ++b) by_band_[Band(sketch, b)] = slot;
  for (int i = 0; i < std::min<int>(t.nblocks, kIndexedBlocks); ++i) by_block_[t.blocks[i]] = slot;
  t.head = head;
  if (head != 0) by_head_[head] = slot;
  t.tail = tail;
  if (tail != 0) by_tail_[tail] = slot;
  if (similarity) *similarity = 1;
  return t.id;
}

size_t TemplateIndex::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return ring_.size();
}

}  // namespace sluice
