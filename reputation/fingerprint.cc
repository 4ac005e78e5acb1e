#include "reputation/fingerprint.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "ratelimit/internal/hash.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace sluice {

namespace {

inline uint64_t Mix(uint64_t x) { return internal::Mix64(x); }

constexpr uint64_t kEmpty = std::numeric_limits<uint64_t>::max();

}  // namespace

struct Fingerprinter::State {
  XXH3_state_t digest;
  uint64_t window[4] = {0, 0, 0, 0};  // hashes of the last shingle-1 tokens
  uint64_t seen = 0;
  uint64_t bins[Fingerprint::kMaxK];
};

Fingerprinter::Fingerprinter() : Fingerprinter(Options()) {}

Fingerprinter::Fingerprinter(const Options& options)
    : options_(options), normalizer_(options.normalizer), state_(new State) {
  int k = options_.k;
  if (k < 8) k = 8;
  if (k > Fingerprint::kMaxK) k = Fingerprint::kMaxK;
  int bits = 0;
  while ((1 << (bits + 1)) <= k) ++bits;
  options_.k = 1 << bits;
  k_bits_ = bits;
  if (options_.shingle < 1) options_.shingle = 1;
  if (options_.shingle > 4) options_.shingle = 4;
}

Fingerprinter::~Fingerprinter() = default;

void Fingerprinter::Begin() noexcept {
  XXH3_128bits_reset(&state_->digest);
  state_->seen = 0;
  for (int i = 0; i < options_.k; ++i) state_->bins[i] = kEmpty;
  normalizer_.Reset(this);
}

namespace {

// A token's hash: XXH3 seeded with its length. A token shorter than 16
// bytes is hashed as its zero-padded 16-byte block (an injective encoding
// with the length as seed), without a branch on its length: TokenBatch
// guarantees 16 readable bytes at its start.
inline uint64_t TokenHash(const char* token, size_t size) {
  if (size >= 16) return XXH3_64bits_withSeed(token, size, size);
  alignas(16) char block[16];
#if defined(__SSE2__)
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(token));
  const __m128i index = _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  _mm_store_si128(reinterpret_cast<__m128i*>(block),
                  _mm_and_si128(v, _mm_cmplt_epi8(index, _mm_set1_epi8(static_cast<char>(size)))));
#else
  std::memset(block, 0, sizeof(block));
  std::memcpy(block, token, size);
#endif
  return XXH3_64bits_withSeed(block, 16, size);
}

}  // namespace

namespace {

// Adds a batch's shingles of kWidth tokens to the sketch: `window` holds
// the hashes of the last kWidth - 1 tokens, `seen` counts the tokens. The
// width is a template parameter and the state lives in registers so that
// tokens overlap in the pipeline (a token's work is a chain of multiplies).
template <int kWidth>
void AddShingles(const TokenBatch& batch, int shift, uint64_t* window, uint64_t* seen,
                 uint64_t* bins) noexcept {
  // Locals, not the arrays and the batch: stores to `bins` could alias them
  // and would make the compiler reload them per token.
  uint64_t w0 = window[0], w1 = window[1], w2 = window[2];
  uint64_t count = *seen;
  const char* p = batch.bytes;
  const uint16_t* const lengths = batch.lengths;
  const size_t n = batch.count;
  for (size_t i = 0; i < n; ++i) {
    const size_t size = lengths[i];
    const uint64_t t = TokenHash(p, size);
    p += size + 1;
    ++count;
    // The shingle's hash: the token hashes combined in order, mixed once
    // (a single token's XXH3 hash is already well mixed).
    uint64_t h = t;
    if (kWidth > 1) {
      constexpr uint64_t kOdd = 0x9E3779B97F4A7C15ull;
      uint64_t combined = t * kOdd + w0;
      if (kWidth > 2) combined = combined * kOdd + w1;
      if (kWidth > 3) combined = combined * kOdd + w2;
      h = Mix(combined);
      w2 = w1;
      w1 = w0;
      w0 = t;
      if (count < static_cast<uint64_t>(kWidth)) continue;  // not a full shingle yet
    }
    // One permutation hashing: the top bits choose the bin, keep the minimum.
    uint64_t& bin = bins[h >> shift];
    bin = std::min(bin, h);  // branch-free: which is smaller is random
  }
  window[0] = w0;
  window[1] = w1;
  window[2] = w2;
  *seen = count;
}

}  // namespace

void Fingerprinter::Tokens(const TokenBatch& batch) noexcept {
  State& s = *state_;
  // The digest hashes the token stream as the batch holds it: each token
  // followed by a NUL.
  XXH3_128bits_update(&s.digest, batch.bytes, batch.size);
  const int shift = 64 - k_bits_;
  switch (options_.shingle) {
    case 1:
      AddShingles<1>(batch, shift, s.window, &s.seen, s.bins);
      break;
    case 2:
      AddShingles<2>(batch, shift, s.window, &s.seen, s.bins);
      break;
    case 3:
      AddShingles<3>(batch, shift, s.window, &s.seen, s.bins);
      break;
    default:
      AddShingles<4>(batch, shift, s.window, &s.seen, s.bins);
      break;
  }
}

void Fingerprinter::Markup(absl::string_view markup) noexcept {
  // A feature of its own, not shingled with the tokens.
  const uint64_t h = Mix(XXH3_64bits(markup.data(), markup.size()) ^ 0x6D61726B7570ull);
  uint64_t& bin = state_->bins[h >> (64 - k_bits_)];
  bin = std::min(bin, h);
}

void Fingerprinter::Finish(Fingerprint* out) noexcept {
  normalizer_.Finish();
  State& s = *state_;
  // A message shorter than one shingle: use its tokens as they are.
  if (s.seen > 0 && s.seen < static_cast<uint64_t>(options_.shingle)) {
    uint64_t h = Mix(s.window[0] ^ s.seen);
    uint64_t& bin = s.bins[h >> (64 - k_bits_)];
    bin = std::min(bin, h);  // markup may be there already
  }
  XXH128_hash_t d = XXH3_128bits_digest(&s.digest);
  out->digest_lo = d.low64;
  out->digest_hi = d.high64;
  out->tokens = normalizer_.tokens();
  out->size = normalizer_.bytes_seen();
  out->size_bucket = Fingerprint::SizeBucket(out->size);
  out->k = options_.k;
  const int k = options_.k;
  bool any = false;
  for (int i = 0; i < k; ++i) any |= s.bins[i] != kEmpty;
  for (int i = 0; i < k; ++i) {
    if (!any) {
      out->minhash[i] = 0;
      continue;
    }
    if (s.bins[i] != kEmpty) {
      out->minhash[i] = static_cast<uint32_t>(s.bins[i]);
      continue;
    }
    // Densification: borrow from the next non-empty bin to the right,
    // re-hashed with the distance so borrowed values differ per bin.
    int j = i, dist = 0;
    do {
      j = (j + 1) & (k - 1);
      ++dist;
    } while (s.bins[j] == kEmpty);
    out->minhash[i] =
        static_cast<uint32_t>(Mix(s.bins[j] + 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(dist)));
  }
}

void Fingerprinter::Compute(absl::string_view message, Fingerprint* out) noexcept {
  Begin();
  Feed(message);
  Finish(out);
}

double Fingerprint::Similarity(const Fingerprint& a, const Fingerprint& b) noexcept {
  if (a.k != b.k || a.k == 0 || a.tokens == 0 || b.tokens == 0) return 0;
#if defined(__SSE2__)
  // K >= 8 is a multiple of 4: four bins per compare; each equal bin
  // subtracts -1 from its lane of the accumulator.
  __m128i acc = _mm_setzero_si128();
  for (int i = 0; i < a.k; i += 4) {
    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a.minhash + i));
    const __m128i y = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.minhash + i));
    acc = _mm_sub_epi32(acc, _mm_cmpeq_epi32(x, y));
  }
  acc = _mm_add_epi32(acc, _mm_shuffle_epi32(acc, _MM_SHUFFLE(1, 0, 3, 2)));
  acc = _mm_add_epi32(acc, _mm_shuffle_epi32(acc, _MM_SHUFFLE(2, 3, 0, 1)));
  const int equal = _mm_cvtsi128_si32(acc);
#else
  int equal = 0;
  for (int i = 0; i < a.k; ++i) equal += a.minhash[i] == b.minhash[i];
#endif
  // k is a power of two: scale by its exact reciprocal (no division).
  static constexpr double kInverse[] = {1.0,    0.5,     0.25,     0.125,
                                        0.0625, 0.03125, 0.015625, 0.0078125};
  return static_cast<double>(equal) * kInverse[__builtin_ctz(static_cast<unsigned>(a.k))];
}

int Fingerprint::BandKeys(int bands, uint64_t* out) const noexcept {
  if (tokens == 0 || bands <= 0 || k % bands != 0) return 0;
  const int rows = k / bands;
  for (int b = 0; b < bands; ++b) {
    out[b] = XXH3_64bits_withSeed(&minhash[b * rows], sizeof(minhash[0]) * rows,
                                  static_cast<uint64_t>(b));
  }
  return bands;
}

uint32_t Fingerprint::SizeBucket(uint64_t size) noexcept {
  if (size == 0) return 0;
  return static_cast<uint32_t>(std::floor(std::log2(static_cast<double>(size)) * 8.0));
}

}  // namespace sluice
