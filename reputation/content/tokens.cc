// The normaliser's token rules and batching: e-mail addresses take their
// lead-in with them, URL hosts become "u:" tokens, and tokens go to the
// TokenSink in batches (the lead-in held back). The greeting and address
// tests themselves sit in internal/normalizer_scan.h, where the tokenizer
// inlines them.
#include <algorithm>
#include <atomic>
#include <cstring>

#include "reputation/content/body_normalizer.h"
#include "reputation/content/internal/normalizer_scan.h"

namespace sluice {

namespace {

#if !defined(__SSE2__)
// Bytes that end a URL's host (the vector code compares them directly).
struct HostEnds {
  bool end[256];
  constexpr HostEnds() : end() {
    for (int c = 0; c <= ' '; ++c) end[c] = true;
    for (unsigned char c : {'/', '?', '#', '\\', '"', '\'', '<', '>'}) end[c] = true;
  }
};
constexpr HostEnds kHostEnds;
#endif

}  // namespace

void BodyNormalizer::FlushTokens(size_t hold) noexcept {
  // After a flush the held tokens leave room for a block's (FastBlock) or
  // a whole token (Keep).
  static_assert(kAddressLeadIn * 256 + 256 + 128 <= kBatchBytes, "held bytes fit");
  static_assert(kAddressLeadIn + 64 <= kBatchTokens, "held tokens fit");
  if (hold == 0) lead_in_floor_ = tokens_;  // nothing left to take back
  if (batch_count_ <= hold) return;
  const size_t send = batch_count_ - hold;
  size_t held_bytes = 0;
  for (size_t i = send; i < batch_count_; ++i) held_bytes += batch_lengths_[i] + size_t{1};
  // The paragraph ends up to the held tokens go with the batch (one
  // before the first held token at its end), the held tokens' after it.
  uint64_t held_breaks = 0;
  for (size_t i = 1; i <= hold; ++i) {
    held_breaks |= static_cast<uint64_t>(TakeParagraphEnd(send + i)) << i;
  }
  TokenBatch batch;
  batch.bytes = batch_;
  batch.size = batch_len_ - held_bytes;
  batch.lengths = batch_lengths_;
  batch.count = send;
  batch.breaks = batch_breaks_;
  if (sink_ != nullptr) sink_->Tokens(batch);
  // The held tokens (at most kAddressLeadIn x 256 bytes) to the front.
  std::memmove(batch_, batch_ + batch.size, held_bytes);
  std::memmove(batch_lengths_, batch_lengths_ + send, hold * sizeof(batch_lengths_[0]));
  batch_len_ = held_bytes;
  batch_count_ = hold;
  std::fill(batch_breaks_, batch_breaks_ + (send >> 6) + 1, 0);
  batch_breaks_[0] = held_breaks;
}

void BodyNormalizer::DropAddressLeadIn() noexcept {
  // At most the tokens since the floor, all in the batch (a flush holds
  // back kAddressLeadIn): the same tokens however the batches fell.
  const uint64_t n = std::min<uint64_t>(kAddressLeadIn, tokens_ - lead_in_floor_);
  for (uint64_t i = 0; i < n && batch_count_ > 0; ++i) {
    batch_len_ -= batch_lengths_[--batch_count_] + size_t{1};
    --tokens_;
  }
  // A paragraph end among the dropped tokens: where they were.
  bool dropped_break = false;
  for (size_t at = batch_count_ + 1; at <= batch_count_ + n; ++at) {
    dropped_break |= TakeParagraphEnd(at);
  }
  if (dropped_break) ParagraphEnd();
  // A rule line among them: where they were.
  for (uint64_t& at : rule_at_) at = std::min(at, tokens_);
  lead_in_floor_ = tokens_;
}

void TokenSink::Tokens(const TokenBatch& batch) noexcept {
  const char* p = batch.bytes;
  for (size_t i = 0; i < batch.count; ++i) {
    Token(absl::string_view(p, batch.lengths[i]));
    p += batch.lengths[i] + 1;
  }
}

// `url` has 16 readable bytes past its end (a word in the word buffer or a
// block, or a value inside a tag: both have the slack).
void BodyNormalizer::EmitUrlHost(absl::string_view url) noexcept {
  size_t end = 0, after_at = 0, colon = absl::string_view::npos;
#if defined(__SSE2__)
  {
    // A scheme ("http://"): a "://" starting among the first 10 bytes.
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(url.data()));
    const uint32_t colons = Mask(Eq(v, ':')), slashes = Mask(Eq(v, '/'));
    const size_t starts = url.size() >= 3 ? std::min<size_t>(url.size() - 2, 10) : 0;
    const uint32_t scheme = colons & (slashes >> 1) & (slashes >> 2) & ((1u << starts) - 1);
    if (scheme != 0) url.remove_prefix(static_cast<size_t>(__builtin_ctz(scheme)) + 3);
  }
  // The host: up to the path, query or fragment; after the last '@'
  // (user:pass@host), before the last ':' (a port). 16 bytes at a time.
  for (end = 0;; end += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(url.data() + end));
    const size_t left = url.size() - end;  // > 0 here
    const uint32_t valid = FirstBits(left);
    const __m128i stop =
        _mm_or_si128(_mm_or_si128(_mm_or_si128(InRange(v, 0, ' '), Eq(v, '/')),
                                  _mm_or_si128(Eq(v, '?'), Eq(v, '#'))),
                     _mm_or_si128(_mm_or_si128(Eq(v, '\\'), Eq(v, '"')),
                                  _mm_or_si128(Eq(v, '\''), _mm_or_si128(Eq(v, '<'), Eq(v, '>')))));
    const uint32_t ends = (Mask(stop) | ~valid) & 0xFFFFu;
    const uint32_t before = ends != 0 ? (1u << __builtin_ctz(ends)) - 1 : 0xFFFFu;
    const uint32_t ats = Mask(Eq(v, '@')) & before, colons = Mask(Eq(v, ':')) & before;
    if (ats != 0) after_at = end + 32 - static_cast<size_t>(__builtin_clz(ats));
    if (colons != 0) colon = end + 31 - static_cast<size_t>(__builtin_clz(colons));
    if (ends != 0) {
      end += static_cast<size_t>(__builtin_ctz(ends));
      break;
    }
    if (left == 16) {
      end = url.size();
      break;
    }
  }
#else
  // A scheme ("http://"): a "://" among the first 12 bytes.
  for (size_t i = 0; i < 10 && i + 3 <= url.size(); ++i) {
    if (url[i] == ':' && url[i + 1] == '/' && url[i + 2] == '/') {
      url.remove_prefix(i + 3);
      break;
    }
  }
  for (; end < url.size(); ++end) {
    const unsigned char c = static_cast<unsigned char>(url[end]);
    if (kHostEnds.end[c]) break;
    after_at = c == '@' ? end + 1 : after_at;
    colon = c == ':' ? end : colon;
  }
#endif
  absl::string_view host = url.substr(after_at, end - after_at);
  if (colon != absl::string_view::npos && colon >= after_at) {
    host = host.substr(0, colon - after_at);
  }
  while (!host.empty() && host.back() == '.') host.remove_suffix(1);
  if (host.empty()) return;
  char buf[2 + 253 + 16] = {};  // 16 readable bytes past any token (TokenSink)
  buf[0] = 'u';
  buf[1] = ':';
  const size_t n = std::min(host.size(), sizeof(buf) - 2 - 16);
#if defined(__SSE2__)
  for (size_t i = 0; i < n; i += 16) {  // whole vectors: host has 16 readable bytes past it
    _mm_storeu_si128(reinterpret_cast<__m128i*>(buf + 2 + i),
                     ToLower(_mm_loadu_si128(reinterpret_cast<const __m128i*>(host.data() + i))));
  }
#else
  for (size_t i = 0; i < n; ++i) {
    buf[2 + i] = static_cast<char>(Lower(static_cast<unsigned char>(host[i])));
  }
#endif
  Keep(absl::string_view(buf, 2 + n));
  lead_in_floor_ = tokens_;  // a link's host is no address's lead-in
}

}  // namespace sluice
