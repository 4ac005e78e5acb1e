#include "reputation/content/fingerprint.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "ratelimit/hash.h"
#include "reputation/content/internal/simd.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace sluice {

namespace {

constexpr uint64_t kEmpty = std::numeric_limits<uint64_t>::max();

// The first elements of a message's set (Fingerprint::exact), one past
// the most kept so that a larger set is known.
struct SmallSet {
  uint64_t v[Fingerprint::kMaxExact + 1];
  size_t n = 0;
  void Add(uint64_t h) {
    v[n < Fingerprint::kMaxExact ? n : Fingerprint::kMaxExact] = h;
    ++n;
  }

  // Content-defined blocks of the token stream (Fingerprint::blocks): the
  // tokens' hashes chained since the last block's end, and the block
  // hashes so far, appended and cut down to the smallest from time to time
  // (no ordered insert per block).
  static constexpr int kPending = 256;
  uint64_t block_acc = 0;
  uint32_t block_len = 0;
  uint32_t block_limit = 0xFFFFFFFFu;  // larger ones can no longer be among the smallest
  int npending = 0;
  uint32_t pending[kPending];
  int nhead = 0;
  uint32_t head[Fingerprint::kHead];
  // The last kRecent blocks, a ring (block i at recent[i % kRecent]), and
  // the token ordinal each ended at (how many tokens up to its last), for
  // Fingerprint::tail.
  static constexpr int kRecent = 32;
  uint64_t nblocks_seen = 0;
  uint32_t recent[kRecent];
  uint64_t recent_end[kRecent];
  void ResetBlocks() {
    nhead = 0;
    nblocks_seen = 0;
    block_acc = 0;
    block_len = 0;
    block_limit = 0xFFFFFFFFu;
    npending = 0;
  }
  // Whether a token ends a block (one in four): the top two bits of its
  // hash times an odd constant, which depend on every bit of the hash.
  // (The token hash is not avalanched: its low bits are those of a few of
  // the token's bytes, so a test on them cut blocks after words that
  // begin alike, and blocks of ordinary mail were alike more often.)
  static bool EndsBlock(uint64_t t) { return t * kBlockOdd < (uint64_t{1} << 62); }
  static constexpr uint64_t kBlockOdd = 0x9E3779B97F4A7C15ull;
  // One token's hash: a block ends after a token that EndsBlock, once it
  // has 4 tokens (about 6 on average).
  // `ordinal`: the token's (1 for the message's first).
  void Token(uint64_t t, uint64_t ordinal) {
    block_acc = ((block_acc << 7) | (block_acc >> 57)) ^ t;  // order-sensitive, one cycle
    if (++block_len < 4 || !EndsBlock(t)) return;
    const uint32_t h = static_cast<uint32_t>(Mix64(block_acc));
    block_acc = 0;
    block_len = 0;
    Block(h, ordinal);
  }
  // A paragraph ended (TokenBatch::breaks): so does a block of 4 tokens
  // or more (a shorter one goes on into the next paragraph). Text added
  // as a paragraph of its own, after a template or before it, then leaves
  // the template's blocks whole where they end on a paragraph.
  // `ordinal`: the token's before the paragraph end.
  void Break(uint64_t ordinal) {
    if (block_len < 4) return;
    Block(static_cast<uint32_t>(Mix64(block_acc)), ordinal);
    block_acc = 0;
    block_len = 0;
  }
  // Eight tokens' hashes at once, as Token eight times: `prefix[k]` is
  // the chain of the group's tokens 0..k alone (XOR of t_j rotated by
  // 7 * (k - j)), `ends` has bit k set where token k EndsBlock or a
  // paragraph ends after it (Break: the same length rule).
  // Only the candidate ends are visited (about two), not every token.
  // `before`: the ordinal of the token before the group.
  void Tokens8(const uint64_t* prefix, unsigned ends, uint64_t before) {
    int start = -1;  // the group's token that ended the last block, if any
    while (ends != 0) {
      const int k = __builtin_ctz(ends);
      ends &= ends - 1;
      const uint32_t length =
          start < 0 ? block_len + static_cast<uint32_t>(k) + 1 : static_cast<uint32_t>(k - start);
      if (length < 4) continue;
      const uint64_t chain = start < 0 ? RotlAny(block_acc, 7 * (k + 1)) ^ prefix[k]
                                       : prefix[k] ^ RotlAny(prefix[start], 7 * (k - start));
      start = k;
      Block(static_cast<uint32_t>(Mix64(chain)), before + static_cast<uint64_t>(k) + 1);
    }
    block_acc = start < 0 ? RotlAny(block_acc, 56) ^ prefix[7]
                          : prefix[7] ^ RotlAny(prefix[start], 7 * (7 - start));
    block_len = start < 0 ? block_len + 8 : static_cast<uint32_t>(7 - start);
  }
  // Rotation by 0 to 63 bits.
  static uint64_t RotlAny(uint64_t x, int r) { return (x << r) | (x >> ((64 - r) & 63)); }
  void Block(uint32_t h, uint64_t ordinal) {
    if (nhead < Fingerprint::kHead) head[nhead++] = h;
    recent[nblocks_seen % kRecent] = h;
    recent_end[nblocks_seen++ % kRecent] = ordinal;
    if (h >= block_limit) return;
    pending[npending++] = h;
    if (npending == kPending) Cut();
  }
  // Keeps the kBlocks smallest distinct values of `pending`, sorted.
  void Cut() {
    SortUniform(pending, npending);
    npending = static_cast<int>(std::unique(pending, pending + npending) - pending);
    if (npending >= Fingerprint::kBlocks) {
      npending = Fingerprint::kBlocks;
      block_limit = pending[npending - 1];
    }
  }
  // Sorts up to kPending hash values (uniform over 32 bits): a counting
  // pass on their top bits, about one value per bucket, then insertion
  // sort, which moves each value only within its bucket. A few times
  // faster than std::sort at these sizes (its compares mispredict half
  // the time), and no nth_element first. Values crafted to share their
  // top bits cost at most kPending^2 / 2 moves per cut.
  static void SortUniform(uint32_t* v, int n) {
    if (n < 2) return;
    const int bits = n <= 32 ? 5 : n <= 64 ? 6 : n <= 128 ? 7 : 8;
    const int shift = 32 - bits;
    uint16_t start[257] = {};
    for (int i = 0; i < n; ++i) ++start[(v[i] >> shift) + 1];
    for (int b = 1; b <= (1 << bits); ++b) start[b] += start[b - 1];
    uint32_t sorted[kPending];
    for (int i = 0; i < n; ++i) sorted[start[v[i] >> shift]++] = v[i];
    for (int i = 1; i < n; ++i) {
      const uint32_t x = sorted[i];
      int j = i;
      for (; j > 0 && sorted[j - 1] > x; --j) sorted[j] = sorted[j - 1];
      sorted[j] = x;
    }
    std::memcpy(v, sorted, sizeof(uint32_t) * static_cast<size_t>(n));
  }
};

// How many values two sorted lists of distinct values have in common
// below `limit`.
int CommonBelow(const uint32_t* a, int na, const uint32_t* b, int nb, uint64_t limit) {
  int i = 0, j = 0, both = 0;
  while (i < na && j < nb && a[i] < limit && b[j] < limit) {
    both += a[i] == b[j];
    const bool step_a = a[i] <= b[j], step_b = b[j] <= a[i];
    i += step_a;
    j += step_b;
  }
  return both;
}

}  // namespace

struct Fingerprinter::State {
  XXH3_state_t digest;
  uint64_t window[4] = {0, 0, 0, 0};  // hashes of the last shingle-1 tokens
  uint64_t seen = 0;
  uint64_t bins[Fingerprint::kMaxK];
  SmallSet small;
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
  state_->small.n = 0;
  state_->small.ResetBlocks();
  state_->seen = 0;
  for (int i = 0; i < options_.k; ++i) state_->bins[i] = kEmpty;
  if (link_hosts_ != nullptr) link_hosts_->clear();
  normalizer_.Reset(this);
}

void Fingerprinter::AddLinkHosts(const TokenBatch& batch) noexcept {
  const char* p = batch.bytes;
  for (size_t i = 0; i < batch.count; p += batch.lengths[i] + 1, ++i) {
    const size_t n = batch.lengths[i];
    if (n <= 2 || p[0] != 'u' || p[1] != ':') continue;
    const absl::string_view host(p + 2, n - 2);
    if (link_hosts_->size() >= max_link_hosts_) return;
    if (std::find(link_hosts_->begin(), link_hosts_->end(), host) != link_hosts_->end()) continue;
    link_hosts_->emplace_back(host);
  }
}

namespace {

constexpr uint64_t kOdd = 0x9E3779B97F4A7C15ull;
// Keys of the short-token hash (arbitrary constants with mixed bits).
constexpr uint64_t kKeyLo = 0x1CAD21F72C81017Cull;
constexpr uint64_t kKeyHi = 0xDB979083E96DD4DEull;

inline uint64_t Rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

// A token shorter than 16 bytes, as its zero-padded 16-byte block (lo,
// hi) and its length: one lane of XXH3's long-input accumulator (each
// 64-bit word keyed, its two 32-bit halves multiplied, the data added
// back). Not avalanched: the shingle's Mix does that. Eight tokens at a
// time in the AVX-512 kernel, the same arithmetic lane by lane.
inline uint64_t ShortTokenHash(uint64_t lo, uint64_t hi, uint64_t size) {
  const uint64_t x = lo ^ kKeyLo, y = hi ^ (kKeyHi + size);
  return (x & 0xFFFFFFFFu) * (x >> 32) + Rotl((y & 0xFFFFFFFFu) * (y >> 32), 32) +
         (Rotl(lo, 17) ^ hi);
}

// A token's hash: ShortTokenHash below 16 bytes (TokenBatch guarantees 16
// readable bytes at a token's start), XXH3 seeded with the length from 16.
inline uint64_t TokenHash(const char* token, size_t size) {
  if (size >= 16) return XXH3_64bits_withSeed(token, size, size);
  uint64_t lo, hi;
  std::memcpy(&lo, token, 8);
  std::memcpy(&hi, token + 8, 8);
  const unsigned bits = static_cast<unsigned>(size) * 8;
  lo &= bits >= 64 ? ~uint64_t{0} : ~(~uint64_t{0} << bits);
  hi &= bits <= 64 ? 0 : ~(~uint64_t{0} << (bits - 64));
  return ShortTokenHash(lo, hi, size);
}

// Adds a run of tokens' shingles of `width` tokens to the sketch from
// token `from` of the batch on (its bytes at `p`): `window` holds the
// hashes of the last three tokens, `seen` counts the tokens. The state
// lives in locals so that tokens overlap in the pipeline.
template <int kWidth>
void AddShingles(const TokenBatch& batch, size_t from, const char* p, int shift, uint64_t* window,
                 uint64_t* seen, uint64_t* bins, SmallSet* small) noexcept {
  // Locals, not the arrays and the batch: stores to `bins` could alias them
  // and would make the compiler reload them per token.
  uint64_t w0 = window[0], w1 = window[1], w2 = window[2];
  uint64_t count = *seen;
  const uint16_t* const lengths = batch.lengths;
  const size_t n = batch.count;
  const uint64_t* const breaks = batch.breaks;
  auto break_before = [breaks](size_t i) {
    return breaks != nullptr && ((breaks[i >> 6] >> (i & 63)) & 1) != 0;
  };
  for (size_t i = from; i < n; ++i) {
    if (break_before(i)) small->Break(count);
    const size_t size = lengths[i];
    const uint64_t t = TokenHash(p, size);
    p += size + 1;
    ++count;
    small->Token(t, count);
    // The shingle's hash: the token hashes combined in order, mixed once.
    uint64_t combined = t;
    if (kWidth > 1) combined = combined * kOdd + w0;
    if (kWidth > 2) combined = combined * kOdd + w1;
    if (kWidth > 3) combined = combined * kOdd + w2;
    w2 = w1;
    w1 = w0;
    w0 = t;
    if (count < static_cast<uint64_t>(kWidth)) continue;  // not a full shingle yet
    const uint64_t h = Mix64(combined);
    // One permutation hashing: the top bits choose the bin, keep the minimum.
    uint64_t& bin = bins[h >> shift];
    bin = std::min(bin, h);  // branch-free: which is smaller is random
    small->Add(h);
  }
  if (break_before(n)) small->Break(count);
  window[0] = w0;
  window[1] = w1;
  window[2] = w2;
  *seen = count;
}

using AddFn = void (*)(const TokenBatch&, size_t, const char*, int, uint64_t*, uint64_t*, uint64_t*,
                       SmallSet*) noexcept;
constexpr AddFn kAdd[4] = {AddShingles<1>, AddShingles<2>, AddShingles<3>, AddShingles<4>};

#if defined(SLUICE_HAVE_AVX512)
// Four tokens' first 16 bytes side by side (a lambda would not inherit
// the target).
__attribute__((target("avx512f,avx512dq"))) inline __m512i Load4(const char* t0, const char* t1,
                                                                 const char* t2,
                                                                 const char* t3) noexcept {
  const __m256i a = _mm256_inserti128_si256(
      _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t0))),
      _mm_loadu_si128(reinterpret_cast<const __m128i*>(t1)), 1);
  const __m256i b = _mm256_inserti128_si256(
      _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t2))),
      _mm_loadu_si128(reinterpret_cast<const __m128i*>(t3)), 1);
  return _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1);
}

// AddShingles eight tokens at a time (whole groups of eight; returns how
// many tokens it took and where the next one's bytes are in `*next`). The
// blocks are gathered, masked to their lengths, hashed and combined lane
// by lane as above; tokens of 16 bytes or more are hashed one by one.
__attribute__((target("avx512f,avx512dq"))) size_t AddShinglesAvx512(
    const TokenBatch& batch, int width, int shift, uint64_t* window, uint64_t* seen, uint64_t* bins,
    SmallSet* small, const char** next) noexcept {
  const size_t groups = batch.count / 8;
  if (groups == 0) return 0;
  const __m512i ones = _mm512_set1_epi64(-1);
  const __m512i odd = _mm512_set1_epi64(static_cast<long long>(kOdd));
  // The last tokens' hashes in lanes 7, 6, 5 (as the previous group's).
  __m512i last =
      _mm512_set_epi64(static_cast<long long>(window[0]), static_cast<long long>(window[1]),
                       static_cast<long long>(window[2]), 0, 0, 0, 0, 0);
  uint64_t count = *seen;
  uint64_t offset = 0;
  alignas(64) uint64_t at[8];
  alignas(64) uint64_t out[8];
  for (size_t g = 0; g < groups; ++g) {
    // Paragraph ends before this group's tokens 1..7: ends after tokens
    // 0..6; one before token 0 ends the block before the group.
    const unsigned group_breaks =
        batch.breaks == nullptr
            ? 0u
            : static_cast<unsigned>(batch.breaks[g >> 3] >> (8 * (g & 7))) & 0xFFu;
    if (group_breaks & 1u) small->Break(count);
    const unsigned breaks = group_breaks >> 1;
    const uint16_t* const len16 = batch.lengths + 8 * g;
    for (int k = 0; k < 8; ++k) {
      at[k] = offset;
      offset += len16[k] + 1u;
    }
    const __m512i len =
        _mm512_cvtepu16_epi64(_mm_loadu_si128(reinterpret_cast<const __m128i*>(len16)));
    // Each token's 16 bytes, two tokens to a 256-bit half, then the low
    // and the high words of all eight apart (gathers are slower).
    const char* const bytes = batch.bytes;
    const __m512i a = Load4(bytes + at[0], bytes + at[1], bytes + at[2], bytes + at[3]);
    const __m512i b = Load4(bytes + at[4], bytes + at[5], bytes + at[6], bytes + at[7]);
    __m512i lo = _mm512_permutex2var_epi64(a, _mm512_set_epi64(14, 12, 10, 8, 6, 4, 2, 0), b);
    __m512i hi = _mm512_permutex2var_epi64(a, _mm512_set_epi64(15, 13, 11, 9, 7, 5, 3, 1), b);
    const __m512i bits = _mm512_slli_epi64(len, 3);
    // Shifts of 64 or more give 0: masks of the bytes before the length.
    lo = _mm512_andnot_si512(_mm512_sllv_epi64(ones, bits), lo);
    const __m512i hi_bits =
        _mm512_max_epi64(_mm512_sub_epi64(bits, _mm512_set1_epi64(64)), _mm512_setzero_si512());
    hi = _mm512_maskz_andnot_epi64(_mm512_cmpgt_epu64_mask(bits, _mm512_set1_epi64(64)),
                                   _mm512_sllv_epi64(ones, hi_bits), hi);
    const __m512i x = _mm512_xor_si512(lo, _mm512_set1_epi64(static_cast<long long>(kKeyLo)));
    const __m512i y = _mm512_xor_si512(
        hi, _mm512_add_epi64(_mm512_set1_epi64(static_cast<long long>(kKeyHi)), len));
    const __m512i px = _mm512_mul_epu32(x, _mm512_srli_epi64(x, 32));
    const __m512i py = _mm512_mul_epu32(y, _mm512_srli_epi64(y, 32));
    __m512i t = _mm512_add_epi64(_mm512_add_epi64(px, _mm512_rol_epi64(py, 32)),
                                 _mm512_xor_si512(_mm512_rol_epi64(lo, 17), hi));
    const __mmask8 long_tokens = _mm512_cmpge_epu64_mask(len, _mm512_set1_epi64(16));
    // Rare: XXH3, one by one, each into its lane (in registers: a vector
    // load after scalar stores would wait for them).
    for (unsigned rest = long_tokens; rest != 0; rest &= rest - 1) {
      const int k = __builtin_ctz(rest);
      t = _mm512_mask_set1_epi64(t, static_cast<__mmask8>(1u << k),
                                 static_cast<long long>(TokenHash(batch.bytes + at[k], len16[k])));
    }
    {
      // The blocks' chains: each lane XORs in its lower neighbours rotated
      // by 7 per step (a prefix in three steps), as Token's chain would.
      const __m512i zero = _mm512_setzero_si512();
      __m512i prefix = t;
      prefix = _mm512_xor_si512(prefix, _mm512_rol_epi64(_mm512_alignr_epi64(prefix, zero, 7), 7));
      prefix = _mm512_xor_si512(prefix, _mm512_rol_epi64(_mm512_alignr_epi64(prefix, zero, 6), 14));
      prefix = _mm512_xor_si512(prefix, _mm512_rol_epi64(_mm512_alignr_epi64(prefix, zero, 4), 28));
      _mm512_store_si512(out, prefix);
      const unsigned ends = _mm512_cmplt_epu64_mask(
          _mm512_mullo_epi64(t, _mm512_set1_epi64(static_cast<long long>(SmallSet::kBlockOdd))),
          _mm512_set1_epi64(static_cast<long long>(uint64_t{1} << 62)));
      small->Tokens8(out, ends | breaks, count);
    }
    __m512i c = t;
    if (width > 1)
      c = _mm512_add_epi64(_mm512_mullo_epi64(c, odd), _mm512_alignr_epi64(t, last, 7));
    if (width > 2)
      c = _mm512_add_epi64(_mm512_mullo_epi64(c, odd), _mm512_alignr_epi64(t, last, 6));
    if (width > 3)
      c = _mm512_add_epi64(_mm512_mullo_epi64(c, odd), _mm512_alignr_epi64(t, last, 5));
    // Mix (Mix64) lane by lane.
    c = _mm512_xor_si512(c, _mm512_srli_epi64(c, 30));
    c = _mm512_mullo_epi64(c, _mm512_set1_epi64(static_cast<long long>(0xbf58476d1ce4e5b9ull)));
    c = _mm512_xor_si512(c, _mm512_srli_epi64(c, 27));
    c = _mm512_mullo_epi64(c, _mm512_set1_epi64(static_cast<long long>(0x94d049bb133111ebull)));
    c = _mm512_xor_si512(c, _mm512_srli_epi64(c, 31));
    _mm512_store_si512(out, c);
    // Lane k is the shingle ending at token count + k + 1: full from the
    // width-th token of the message on.
    const uint64_t w = static_cast<uint64_t>(width);
    const int skip = count + 1 >= w ? 0 : static_cast<int>(w - count - 1);
    for (int k = skip; k < 8; ++k) {
      uint64_t& bin = bins[out[k] >> shift];
      bin = std::min(bin, out[k]);
    }
    if (small->n > Fingerprint::kMaxExact) {  // past the small set: only counted
      small->n += static_cast<size_t>(8 - skip);
    } else {
      for (int k = skip; k < 8; ++k) small->Add(out[k]);
    }
    count += 8;
    last = t;
  }
  _mm512_store_si512(out, last);
  window[0] = out[7];
  window[1] = out[6];
  window[2] = out[5];
  *seen = count;
  *next = batch.bytes + offset;
  return groups * 8;
}

const bool kAvx512Shingles = internal::CpuVectors().f && internal::CpuVectors().dq;
#endif

}  // namespace

void Fingerprinter::Tokens(const TokenBatch& batch) noexcept {
  State& s = *state_;
  // The digest hashes the token stream as the batch holds it: each token
  // followed by a NUL.
  XXH3_128bits_update(&s.digest, batch.bytes, batch.size);
  if (link_hosts_ != nullptr) AddLinkHosts(batch);
  const int shift = 64 - k_bits_;
  size_t done = 0;
  const char* p = batch.bytes;
#if defined(SLUICE_HAVE_AVX512)
  // With the normaliser's wide vectors (the same switch for both).
  if (kAvx512Shingles && BodyNormalizer::UsesWideVectors()) {
    done =
        AddShinglesAvx512(batch, options_.shingle, shift, s.window, &s.seen, s.bins, &s.small, &p);
  }
#endif
  kAdd[options_.shingle - 1](batch, done, p, shift, s.window, &s.seen, s.bins, &s.small);
}

void Fingerprinter::Markup(absl::string_view markup) noexcept {
  // A feature of its own, not shingled with the tokens.
  const uint64_t h = Mix64(XXH3_64bits(markup.data(), markup.size()) ^ 0x6D61726B7570ull);
  uint64_t& bin = state_->bins[h >> (64 - k_bits_)];
  bin = std::min(bin, h);
  state_->small.Add(h);
}

// The tail: the last kTail blocks before the message's footer, if it has
// one. A footer begins at a rule line (BodyNormalizer::rule_lines) with
// at most kFooterBlocks blocks after it, and no more than before it (a
// rule under a short message's first line does not make the rest of it a
// footer): the earliest such, so that a footer with rules of its own (an
// advertisement between two) goes whole.
// Blocks that end at or before the rule line's ordinal are before it.
namespace {
void SetTail(const SmallSet& small, const uint64_t* rules, int nrules, Fingerprint* out) noexcept {
  const uint64_t n = small.nblocks_seen;
  constexpr int kRecent = SmallSet::kRecent;
  // Blocks kept: [n - kept, n).
  const uint64_t kept = std::min<uint64_t>(n, kRecent);
  uint64_t cut = n;  // the blocks before the footer: [.., cut)
  for (int r = 0; r < nrules; ++r) {
    // Blocks ending after the rule line, among the kept ones.
    uint64_t before = n;
    while (before > n - kept && small.recent_end[(before - 1) % kRecent] > rules[r]) --before;
    if (before == n - kept && kept < n) continue;  // too far back to tell
    if (n - before <= static_cast<uint64_t>(Fingerprint::kFooterBlocks) && n - before <= before) {
      cut = before;
      break;
    }
  }
  // The kTail blocks before the cut that the ring still holds.
  const uint64_t from =
      std::max(cut >= Fingerprint::kTail ? cut - Fingerprint::kTail : 0, n - kept);
  out->ntail = static_cast<int>(cut - from);
  for (uint64_t i = from; i < cut; ++i) out->tail[i - from] = small.recent[i % kRecent];
}
}  // namespace

void Fingerprinter::Finish(Fingerprint* out) noexcept {
  normalizer_.Finish();
  State& s = *state_;
  // A message shorter than one shingle: use its tokens as they are.
  if (s.seen > 0 && s.seen < static_cast<uint64_t>(options_.shingle)) {
    uint64_t h = Mix64(s.window[0] ^ s.seen);
    uint64_t& bin = s.bins[h >> (64 - k_bits_)];
    bin = std::min(bin, h);  // markup may be there already
    s.small.Add(h);
  }
  XXH128_hash_t d = XXH3_128bits_digest(&s.digest);
  out->digest_lo = d.low64;
  out->digest_hi = d.high64;
  out->tokens = normalizer_.tokens();
  out->size = normalizer_.bytes_seen();
  out->size_bucket = Fingerprint::SizeBucket(out->size);
  out->k = options_.k;
  s.small.Cut();
  out->nblocks = s.small.npending;
  out->nhead = s.small.nhead;
  std::copy(s.small.head, s.small.head + s.small.nhead, out->head);
  uint64_t rules[BodyNormalizer::kRuleLines];
  SetTail(s.small, rules, normalizer_.rule_lines(rules), out);
  std::copy(s.small.pending, s.small.pending + s.small.npending, out->blocks);
  const int k = options_.k;
  // A small set is kept exactly (its elements' low 32 bits, sorted, as the
  // bins keep theirs).
  out->exact = 0;
  if (s.small.n <= Fingerprint::kMaxExact && k >= Fingerprint::kMaxExact) {
    for (size_t i = 0; i < s.small.n; ++i) out->elements[i] = static_cast<uint32_t>(s.small.v[i]);
    std::sort(out->elements, out->elements + s.small.n);
    out->exact =
        static_cast<int>(std::unique(out->elements, out->elements + s.small.n) - out->elements);
  }
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
    out->minhash[i] = static_cast<uint32_t>(
        Mix64(s.bins[j] + 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(dist)));
  }
}

void Fingerprinter::Compute(absl::string_view message, Fingerprint* out) noexcept {
  Begin();
  Feed(message);
  Finish(out);
}

double Fingerprint::Similarity(const Fingerprint& a, const Fingerprint& b) noexcept {
  if (a.k != b.k || a.k == 0 || a.tokens == 0 || b.tokens == 0) return 0;
  if (a.exact > 0 && b.exact > 0) return ExactJaccard(a.elements, a.exact, b.elements, b.exact);
#if defined(__SSE2__)
  // K >= 8 is a multiple of 8: four bins per compare, two compares per
  // step into two accumulators; each equal bin subtracts -1 from its lane.
  __m128i acc = _mm_setzero_si128(), acc2 = _mm_setzero_si128();
  for (int i = 0; i < a.k; i += 8) {
    const __m128i* x = reinterpret_cast<const __m128i*>(a.minhash + i);
    const __m128i* y = reinterpret_cast<const __m128i*>(b.minhash + i);
    acc = _mm_sub_epi32(acc, _mm_cmpeq_epi32(_mm_load_si128(x), _mm_load_si128(y)));
    acc2 = _mm_sub_epi32(acc2, _mm_cmpeq_epi32(_mm_load_si128(x + 1), _mm_load_si128(y + 1)));
  }
  acc = _mm_add_epi32(acc, acc2);
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

double Fingerprint::SharedBlocks(const Fingerprint& a, const Fingerprint& b) noexcept {
  return SharedBlocks(a.blocks, a.nblocks, a.blocks_cut(), b.blocks, b.nblocks, b.blocks_cut());
}

double Fingerprint::SharedBlocks(const uint32_t* a, int na, bool full_a, const uint32_t* b, int nb,
                                 bool full_b) noexcept {
  if (na == 0 || nb == 0) return 0;
  // A list that kept every block holds all of its set; a full one holds
  // its set's values up to its largest. Below the smaller of the full
  // lists' largest values both lists are complete: the blocks in common
  // there, scaled by the share of hash space below it (bottom-k).
  uint64_t limit = uint64_t{1} << 32;
  if (full_a) limit = std::min<uint64_t>(limit, uint64_t{a[na - 1]} + 1);
  if (full_b) limit = std::min<uint64_t>(limit, uint64_t{b[nb - 1]} + 1);
  const int both = CommonBelow(a, na, b, nb, limit);
  if (!full_a && !full_b) return both;  // exact
  return static_cast<double>(both) * 4294967296.0 / static_cast<double>(limit);
}

int Fingerprint::ContainedBlocks(const Fingerprint& a, const Fingerprint& b, int missing) noexcept {
  return ContainedBlocks(a.blocks, a.nblocks, a.blocks_cut(), b.blocks, b.nblocks, b.blocks_cut(),
                         missing, a.first_block(), b.first_block());
}

int Fingerprint::ContainedBlocks(const uint32_t* a, int na, bool full_a, const uint32_t* b, int nb,
                                 bool full_b, int missing, int64_t first_a,
                                 int64_t first_b) noexcept {
  // x inside y: x holds its whole set; y's list reaches `limit`.
  auto inside = [missing](const uint32_t* x, int nx, const uint32_t* y, int ny, bool full_y,
                          int64_t first) {
    const uint64_t limit = full_y ? uint64_t{y[ny - 1]} + 1 : uint64_t{1} << 32;
    int checked = 0;
    while (checked < nx && x[checked] < limit) ++checked;
    const int found = CommonBelow(x, checked, y, ny, limit);
    // x's first block checked and not found: an opening may have changed it.
    const bool first_lost = first >= 0 && static_cast<uint64_t>(first) < limit &&
                            std::binary_search(x, x + checked, static_cast<uint32_t>(first)) &&
                            !std::binary_search(y, y + ny, static_cast<uint32_t>(first));
    return checked > 0 && found + missing + (first_lost ? 1 : 0) >= checked ? found : 0;
  };
  if (na == 0 || nb == 0) return 0;
  return std::max(full_a ? 0 : inside(a, na, b, nb, full_b, first_a),
                  full_b ? 0 : inside(b, nb, a, na, full_a, first_b));
}

int Fingerprint::CommonHead(const Fingerprint& a, const Fingerprint& b) noexcept {
  const int n = std::min(a.nhead, b.nhead);
  int i = 0;
  while (i < n && a.head[i] == b.head[i]) ++i;
  return i;
}

int Fingerprint::CommonTail(const Fingerprint& a, const Fingerprint& b) noexcept {
  const int n = std::min(a.ntail, b.ntail);
  int i = 0;
  while (i < n && a.tail[a.ntail - 1 - i] == b.tail[b.ntail - 1 - i]) ++i;
  return i;
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

double Fingerprint::ExactJaccard(const uint32_t* a, int na, const uint32_t* b, int nb) noexcept {
  const int both = CommonBelow(a, na, b, nb, uint64_t{1} << 32);
  return static_cast<double>(both) / static_cast<double>(na + nb - both);
}

uint32_t Fingerprint::SizeBucket(uint64_t size) noexcept {
  if (size == 0) return 0;
  return static_cast<uint32_t>(std::floor(std::log2(static_cast<double>(size)) * 8.0));
}

}  // namespace sluice
