// The normaliser's byte scanning, shared by its parts (MIME, HTML, token
// rules, text blocks): byte classes, SSE2 helpers and searches, the tag
// kinds and the greeting and address tests the tokenizer asks, the
// 64-byte block classifier, and the vector paths chosen at start-up
// (UseWideVectors stores them in the dispatch pointers below). Also the
// few BodyNormalizer members that every part calls on the hot path
// (Keep, AppendWordByte, WordEnded), inline so the tokenizer keeps them
// inlined. Internal to reputation/content/.
//
// Thread safety: constants and pure functions; the dispatch pointers are
// atomics (relaxed: each holds a valid function at all times).
#ifndef SLUICE_REPUTATION_CONTENT_INTERNAL_NORMALIZER_SCAN_H_
#define SLUICE_REPUTATION_CONTENT_INTERNAL_NORMALIZER_SCAN_H_

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>

#include "absl/strings/string_view.h"
#include "reputation/content/body_normalizer.h"
#include "reputation/content/internal/simd.h"

namespace sluice {
namespace internal {

// memcpy that accepts an empty (possibly null) source.
inline void Copy(char* dst, const char* src, size_t n) {
  if (n > 0) std::memcpy(dst, src, n);
}

inline constexpr unsigned char Lower(unsigned char c) {
  return static_cast<unsigned char>(c | ((static_cast<unsigned char>(c - 'A') < 26u) << 5));
}

inline constexpr bool IsAlpha(unsigned char c) {
  return static_cast<unsigned char>(Lower(c) - 'a') < 26u;
}
inline constexpr bool IsDigit(unsigned char c) { return static_cast<unsigned char>(c - '0') < 10u; }
inline constexpr bool IsAlnum(unsigned char c) { return IsAlpha(c) || IsDigit(c); }

// Case-insensitive prefix test (prefix is lower case).
inline bool StartsWithI(absl::string_view s, absl::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (Lower(static_cast<unsigned char>(s[i])) != static_cast<unsigned char>(prefix[i])) {
      return false;
    }
  }
  return true;
}

// Finds a lower-case needle case-insensitively.
inline size_t FindI(absl::string_view s, absl::string_view needle) {
  if (needle.empty() || needle.size() > s.size()) return absl::string_view::npos;
  const unsigned char first = static_cast<unsigned char>(needle[0]);
  for (size_t i = 0; i + needle.size() <= s.size(); ++i) {
    if (Lower(static_cast<unsigned char>(s[i])) == first && StartsWithI(s.substr(i), needle)) {
      return i;
    }
  }
  return absl::string_view::npos;
}

// Byte classes for the tokenizer, one table lookup per byte: whether the
// byte ends a word, and what it tells about the word (so FlushWord can skip
// its scans for a plain word).
inline constexpr uint8_t kSeparatorClass = 1;
inline constexpr uint8_t kDigitClass = 2;
inline constexpr uint8_t kAtClass = 4;
inline constexpr uint8_t kPunctClass = 8;  // ASCII, neither alphanumeric nor a separator
struct ByteClasses {
  uint8_t flags[256];
  uint8_t lower[256];
  constexpr ByteClasses() : flags(), lower() {
    for (int c = 0; c < 256; ++c) {
      lower[c] = Lower(static_cast<unsigned char>(c));
      if (c < 0x80 && !IsAlnum(static_cast<unsigned char>(c))) flags[c] = kPunctClass;
      if (IsDigit(static_cast<unsigned char>(c))) flags[c] = kDigitClass;
    }
    flags['@'] = kPunctClass | kAtClass;
    for (int c = 0; c <= ' '; ++c) flags[c] = kSeparatorClass;
    for (unsigned char c :
         {'<', '>', '"', '\'', '(', ')', '[', ']', '{', '}', ',', ';', '|', '*', '!', '`'}) {
      flags[c] = kSeparatorClass;
    }
    flags[0x7f] = kSeparatorClass;
  }
};
inline constexpr ByteClasses kClasses;

inline bool IsSeparator(unsigned char c) { return kClasses.flags[c] & kSeparatorClass; }

#if defined(__SSE2__)
// Sixteen bytes at a time: which are letters, digits or not ASCII (the
// bytes a word is mostly made of), and the bytes lower-cased.
inline __m128i InRange(__m128i v, char lo, char hi) {  // lo <= v <= hi, unsigned
  const __m128i d = _mm_sub_epi8(v, _mm_set1_epi8(lo));
  return _mm_cmpeq_epi8(_mm_min_epu8(d, _mm_set1_epi8(static_cast<char>(hi - lo))), d);
}
inline uint32_t Mask(__m128i m) { return static_cast<uint32_t>(_mm_movemask_epi8(m)); }

inline __m128i Eq(__m128i v, char c) { return _mm_cmpeq_epi8(v, _mm_set1_epi8(c)); }

// The separators of the table above (<= ' ', DEL and 16 punctuation
// marks), as ranges and single bytes.
inline __m128i Separators(__m128i v) {
  __m128i m = InRange(v, 0, '"');  // controls, space, '!', '"'
  m = _mm_or_si128(m, InRange(v, '\'', '*'));
  m = _mm_or_si128(m, InRange(v, ';', '<'));
  m = _mm_or_si128(m, InRange(v, '{', '}'));
  m = _mm_or_si128(m, _mm_or_si128(Eq(v, ','), Eq(v, '>')));
  m = _mm_or_si128(m, _mm_or_si128(Eq(v, '['), Eq(v, ']')));
  return _mm_or_si128(m, _mm_or_si128(Eq(v, '`'), Eq(v, 0x7f)));
}

inline __m128i ToLower(__m128i v) {
  return _mm_or_si128(v, _mm_and_si128(InRange(v, 'A', 'Z'), _mm_set1_epi8(0x20)));
}

// The low min(n, 16) bits: the bytes of a 16-byte vector that are before
// an end n bytes away.
inline uint32_t FirstBits(size_t n) { return (1u << (n < 16 ? n : 16)) - 1; }

// The 16 bytes at p (all readable) with those from the n-th on zeroed.
inline __m128i LoadFirst(const char* p, size_t n) {
  const __m128i index = _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  return _mm_and_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)),
                       _mm_cmplt_epi8(index, _mm_set1_epi8(static_cast<char>(n < 16 ? n : 16))));
}
#endif

// What the bytes of a block of text are, one bit per byte (bit i for byte
// i): what TextBlocks walks instead of the bytes.
struct BlockMasks {
  uint64_t sep;      // separators (kSeparatorClass)
  uint64_t nl;       // '\n'
  uint64_t greet;    // , ; ! (they end a greeting)
  uint64_t digit;    // 0-9
  uint64_t punct;    // other ASCII that is not alphanumeric (kPunctClass)
  uint64_t special;  // where a URL ("://", "www") or an address ('@') may be
  uint64_t at;       // '@'
  uint64_t exits;    // '<' and '&' (where HTML text stops)
  uint64_t space;    // bytes up to ' ' (white space and control bytes)
};

inline uint64_t Special(uint64_t at, uint64_t colon, uint64_t slash, uint64_t w) {
  return at | (colon & (slash >> 1)) | (w & (w >> 1) & (w >> 2));
}

#if defined(__SSE2__)
// kVectors x 16 bytes at p classified, their lower case written to `low`.
// Always inlined: the one-vector form sits in the HTML text loop, and an
// inline function shared by several files no longer gets the "called
// once" inlining a file-local one had (callgrind: +30 M instructions on
// the corpus without it).
template <int kVectors>
__attribute__((always_inline)) inline void ClassifySse2(const unsigned char* p, char* low,
                                                        BlockMasks* m) {
  uint64_t sep = 0, nl = 0, greet = 0, digit = 0, punct = 0, exits = 0, space = 0;
  uint64_t at = 0, colon = 0, slash = 0, w = 0;
  for (int k = 0; k < kVectors; ++k) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * k));
    const __m128i lower = ToLower(v);
    _mm_store_si128(reinterpret_cast<__m128i*>(low + 16 * k), lower);
    const uint64_t s = Mask(Separators(v));
    const uint64_t d = Mask(InRange(v, '0', '9'));
    const uint64_t a = Mask(InRange(lower, 'a', 'z'));
    const uint64_t high = Mask(v);  // not ASCII
    const int shift = 16 * k;
    sep |= s << shift;
    nl |= uint64_t{Mask(Eq(v, '\n'))} << shift;
    greet |= uint64_t{Mask(_mm_or_si128(_mm_or_si128(Eq(v, ','), Eq(v, ';')), Eq(v, '!')))}
             << shift;
    digit |= d << shift;
    punct |= (~(s | d | a | high) & 0xFFFF) << shift;
    at |= uint64_t{Mask(Eq(v, '@'))} << shift;
    colon |= uint64_t{Mask(Eq(v, ':'))} << shift;
    slash |= uint64_t{Mask(Eq(v, '/'))} << shift;
    w |= uint64_t{Mask(Eq(lower, 'w'))} << shift;
    exits |= uint64_t{Mask(_mm_or_si128(Eq(v, '<'), Eq(v, '&')))} << shift;
    space |= uint64_t{Mask(_mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(' ')), v))} << shift;
  }
  *m = BlockMasks{sep, nl, greet, digit, punct, Special(at, colon, slash, w), at, exits, space};
}

inline void Classify64Sse2(const unsigned char* p, char* low, BlockMasks* m) {
  ClassifySse2<4>(p, low, m);
}
#endif

#if defined(SLUICE_HAVE_AVX512)
// The first n bytes of a 64-byte block, as a mask (for masked loads).
inline uint64_t FirstBytes64(size_t n) { return n >= 64 ? ~uint64_t{0} : (uint64_t{1} << n) - 1; }

// 64 bytes with A-Z lower-cased.
__attribute__((target("avx512f,avx512bw"))) inline __m512i Lower64(__m512i v) {
  const __mmask64 upper =
      _mm512_cmplt_epu8_mask(_mm512_sub_epi8(v, _mm512_set1_epi8('A')), _mm512_set1_epi8(26));
  return _mm512_mask_add_epi8(v, upper, v, _mm512_set1_epi8(0x20));
}

// The byte classes of ASCII for the AVX-512 table lookup, one bit each.
struct AsciiClasses {
  static constexpr uint8_t kSep = 1, kDigit = 2, kPunct = 4, kNl = 8, kGreet = 16, kAt = 32,
                           kColon = 64, kSlash = 128;
  alignas(64) uint8_t bits[128];
  constexpr AsciiClasses() : bits() {
    for (int c = 0; c < 128; ++c) {
      const uint8_t f = kClasses.flags[c];
      bits[c] =
          static_cast<uint8_t>(((f & kSeparatorClass) ? kSep : 0) |
                               ((f & kDigitClass) ? kDigit : 0) | ((f & kPunctClass) ? kPunct : 0));
    }
    bits['\n'] |= kNl;
    bits[','] |= kGreet;
    bits[';'] |= kGreet;
    bits['!'] |= kGreet;
    bits['@'] |= kAt;
    bits[':'] |= kColon;
    bits['/'] |= kSlash;
  }
};
inline constexpr AsciiClasses kAscii;

// 64 bytes at p classified at once: one table lookup of the 128 ASCII
// classes (bytes from 0x80 on have none), a mask per class.
__attribute__((target("avx512f,avx512bw,avx512vbmi"))) inline void Classify64Avx512(
    const unsigned char* p, char* low, BlockMasks* m) {
  const __m512i v = _mm512_loadu_si512(p);
  const __m512i lo = _mm512_load_si512(kAscii.bits);
  const __m512i hi = _mm512_load_si512(kAscii.bits + 64);
  const __mmask64 ascii = ~_mm512_movepi8_mask(v);
  const __m512i cls = _mm512_maskz_permutex2var_epi8(ascii, lo, v, hi);
  const __m512i lower = Lower64(v);
  _mm512_storeu_si512(low, lower);
  // A lambda would not inherit the target: each class spelled out.
  const uint64_t at = _mm512_test_epi8_mask(cls, _mm512_set1_epi8(AsciiClasses::kAt));
  const uint64_t colon = _mm512_test_epi8_mask(cls, _mm512_set1_epi8(AsciiClasses::kColon));
  const uint64_t slash =
      _mm512_test_epi8_mask(cls, _mm512_set1_epi8(static_cast<char>(AsciiClasses::kSlash)));
  const uint64_t w = _mm512_cmpeq_epi8_mask(lower, _mm512_set1_epi8('w'));
  m->sep = _mm512_test_epi8_mask(cls, _mm512_set1_epi8(AsciiClasses::kSep));
  m->nl = _mm512_test_epi8_mask(cls, _mm512_set1_epi8(AsciiClasses::kNl));
  m->greet = _mm512_test_epi8_mask(cls, _mm512_set1_epi8(AsciiClasses::kGreet));
  m->digit = _mm512_test_epi8_mask(cls, _mm512_set1_epi8(AsciiClasses::kDigit));
  m->punct = _mm512_test_epi8_mask(cls, _mm512_set1_epi8(AsciiClasses::kPunct));
  m->special = Special(at, colon, slash, w);
  m->at = at;
  m->exits = _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('<')) |
             _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('&'));
  m->space = _mm512_cmple_epu8_mask(v, _mm512_set1_epi8(' '));
}
#endif

#if defined(__SSE2__)
// The classifier of 64-byte blocks: AVX-512 (with VBMI's byte table
// lookup) where the CPU has it, else SSE2 (BodyNormalizer::UseWideVectors).
using Classify64Fn = void (*)(const unsigned char* p, char* low, BlockMasks* m);
// Constant-initialized to the code every CPU runs (a normaliser used by
// another file's static initializer finds it set); the CPU's best is
// chosen by a dynamic initializer below (BodyNormalizer::UseWideVectors).
inline std::atomic<Classify64Fn> g_classify64{Classify64Sse2};
#endif

// Bits [from, from + len) of a block's 64-bit masks.
inline uint64_t Bits(uint32_t from, uint32_t len) {
  return (len >= 64 ? ~uint64_t{0} : ((uint64_t{1} << len) - 1)) << from;
}

// What a starting tag's first byte is: a letter, '/' or '?' ("a < b" is
// text, and "<!" opens a comment or a declaration).
inline bool StartsTag(unsigned char c) { return IsAlpha(c) || c == '/' || c == '?'; }

// The first `c` in [p, end), or null: like memchr, inline, for the short
// distances of lines and tags. The bytes from `floor` (<= p) on are
// readable: a tail shorter than a vector is looked at as the 16 bytes
// ending at `end` when there are that many (no byte loop).
inline const char* Find(const char* p, const char* end, char c, const char* floor) {
#if defined(__SSE2__)
  // 64 bytes per step: most lines and tags end within the first one, so the
  // loop's exit is predictable.
  while (end - p >= 64) {
    const __m128i a = Eq(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)), c);
    const __m128i b = Eq(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16)), c);
    const __m128i d = Eq(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 32)), c);
    const __m128i e = Eq(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 48)), c);
    const uint64_t m = uint64_t{Mask(a)} | uint64_t{Mask(b)} << 16 | uint64_t{Mask(d)} << 32 |
                       uint64_t{Mask(e)} << 48;
    if (m != 0) return p + __builtin_ctzll(m);
    p += 64;
  }
  while (end - p >= 16) {
    const uint32_t m = Mask(Eq(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)), c));
    if (m != 0) return p + __builtin_ctz(m);
    p += 16;
  }
  if (end - floor >= 16) {
    const uint32_t m = Mask(Eq(_mm_loadu_si128(reinterpret_cast<const __m128i*>(end - 16)), c)) >>
                       (16 - (end - p));
    return m != 0 ? p + __builtin_ctz(m) : nullptr;
  }
#endif
  for (; p < end; ++p) {
    if (*p == c) return p;
  }
  return nullptr;
}

// The first '<' or '&' in [p, end), or end: two compares per 16 bytes
// (the text of a style sheet or a script is skipped up to its end tag).
inline const char* FindTagOrEntity(const char* p, const char* end) {
#if defined(__SSE2__)
  for (; end - p >= 16; p += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const uint32_t m = Mask(_mm_or_si128(Eq(v, '<'), Eq(v, '&')));
    if (m != 0) return p + __builtin_ctz(m);
  }
#endif
  while (p < end && *p != '<' && *p != '&') ++p;
  return p;
}

// The first "\n--" in [p, end) (a line that may be a boundary), or null:
// three compares per 16 bytes (glibc's memmem is a general search).
inline const char* FindDashLine(const char* p, const char* end) {
#if defined(__SSE2__)
  for (; end - p >= 18; p += 16) {
    const __m128i a = Eq(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)), '\n');
    const __m128i b = Eq(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 1)), '-');
    const __m128i c = Eq(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2)), '-');
    const uint32_t m = Mask(_mm_and_si128(a, _mm_and_si128(b, c)));
    if (m != 0) return p + __builtin_ctz(m);
  }
#endif
  for (; end - p >= 3; ++p) {
    if (p[0] == '\n' && p[1] == '-' && p[2] == '-') return p;
  }
  return nullptr;
}

// Where the values of a tag's first "href=" and first "src=" (any case)
// begin, or npos; 16 bytes are readable past the tag. Sixteen bytes at a
// time: bit masks of the letters and of '=', each '=' that the letters of
// a name end at found by shifting the masks (the previous block's masks
// carry names that straddle two blocks), no branch per attribute.
inline void FindLinks(absl::string_view tag, size_t* href, size_t* src) {
#if defined(__SSE2__)
  uint32_t h0 = 0, r0 = 0, e0 = 0, f0 = 0, s0 = 0, c0 = 0;  // the previous block's
  for (size_t k = 0; k < tag.size(); k += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(tag.data() + k));
    const __m128i l = _mm_or_si128(v, _mm_set1_epi8(0x20));  // letters in lower case
    const size_t left = tag.size() - k;
    const uint32_t eq = Mask(Eq(v, '=')) & FirstBits(left);
    const uint32_t h = Mask(Eq(l, 'h')) << 16 | h0, r = Mask(Eq(l, 'r')) << 16 | r0;
    const uint32_t e = Mask(Eq(l, 'e')) << 16 | e0, f = Mask(Eq(l, 'f')) << 16 | f0;
    const uint32_t s = Mask(Eq(l, 's')) << 16 | s0, c = Mask(Eq(l, 'c')) << 16 | c0;
    const uint32_t at_href = (h << 4) & (r << 3) & (e << 2) & (f << 1) & (eq << 16);
    const uint32_t at_src = (s << 3) & (r << 2) & (c << 1) & (eq << 16);
    if ((at_href | at_src) != 0) {
      if (at_href != 0 && *href == absl::string_view::npos) {
        *href = k + static_cast<size_t>(__builtin_ctz(at_href)) - 16 + 1;
      }
      if (at_src != 0 && *src == absl::string_view::npos) {
        *src = k + static_cast<size_t>(__builtin_ctz(at_src)) - 16 + 1;
      }
      if (*href != absl::string_view::npos && *src != absl::string_view::npos) return;
    }
    h0 = h >> 16;
    r0 = r >> 16;
    e0 = e >> 16;
    f0 = f >> 16;
    s0 = s >> 16;
    c0 = c >> 16;
  }
#else
  for (size_t at = 3; at < tag.size(); ++at) {
    if (tag[at] != '=') continue;
    if (*href == absl::string_view::npos && at >= 4 && StartsWithI(tag.substr(at - 4), "href")) {
      *href = at + 1;
    } else if (*src == absl::string_view::npos && StartsWithI(tag.substr(at - 3), "src")) {
      *src = at + 1;
    }
  }
#endif
}

#if defined(SLUICE_HAVE_AVX512)
// The letters of "href" and "src" in a 64-byte block (any case), one mask
// each.
struct LinkLetters {
  uint64_t h = 0, r = 0, e = 0, f = 0, s = 0, c = 0;
};
__attribute__((target("avx512f,avx512bw"))) inline LinkLetters LettersOf(__m512i v) {
  const __m512i l = _mm512_or_si512(v, _mm512_set1_epi8(0x20));  // letters in lower case
  LinkLetters m;
  m.h = _mm512_cmpeq_epi8_mask(l, _mm512_set1_epi8('h'));
  m.r = _mm512_cmpeq_epi8_mask(l, _mm512_set1_epi8('r'));
  m.e = _mm512_cmpeq_epi8_mask(l, _mm512_set1_epi8('e'));
  m.f = _mm512_cmpeq_epi8_mask(l, _mm512_set1_epi8('f'));
  m.s = _mm512_cmpeq_epi8_mask(l, _mm512_set1_epi8('s'));
  m.c = _mm512_cmpeq_epi8_mask(l, _mm512_set1_epi8('c'));
  return m;
}
// The '=' bits (of `eq`) that end "href" and "src": each letter mask moved
// n bytes on, with the previous block's last n bits (`p`).
inline void LinkEnds(const LinkLetters& m, const LinkLetters& p, uint64_t eq, uint64_t* href,
                     uint64_t* src) {
  *href = (m.h << 4 | p.h >> 60) & (m.r << 3 | p.r >> 61) & (m.e << 2 | p.e >> 62) &
          (m.f << 1 | p.f >> 63) & eq;
  *src = (m.s << 3 | p.s >> 61) & (m.r << 2 | p.r >> 62) & (m.c << 1 | p.c >> 63) & eq;
}

// FindLinks 64 bytes at a time (a masked load: nothing is read past the
// tag); most tags take one step.
__attribute__((target("avx512f,avx512bw"))) inline void FindLinksAvx512(absl::string_view tag,
                                                                        size_t* href, size_t* src) {
  LinkLetters previous;
  for (size_t k = 0; k < tag.size(); k += 64) {
    const size_t left = tag.size() - k;
    const __mmask64 valid = FirstBytes64(left);
    const __m512i v = _mm512_maskz_loadu_epi8(valid, tag.data() + k);
    const LinkLetters m = LettersOf(v);
    uint64_t at_href, at_src;
    LinkEnds(m, previous, _mm512_mask_cmpeq_epi8_mask(valid, v, _mm512_set1_epi8('=')), &at_href,
             &at_src);
    if (at_href != 0 && *href == absl::string_view::npos) {
      *href = k + static_cast<size_t>(__builtin_ctzll(at_href)) + 1;
    }
    if (at_src != 0 && *src == absl::string_view::npos) {
      *src = k + static_cast<size_t>(__builtin_ctzll(at_src)) + 1;
    }
    if (*href != absl::string_view::npos && *src != absl::string_view::npos) return;
    previous = m;
  }
}
#endif

// FindLinks for the CPU (as UseWideVectors chooses).
using FindLinksFn = void (*)(absl::string_view tag, size_t* href, size_t* src);
inline std::atomic<FindLinksFn> g_find_links{FindLinks};

// Packs a block's kept tokens into a TokenBatch at once: the bytes of
// `kept` (whole tokens, lower case, from the 64-byte aligned block `low`)
// with a NUL after each token, to `out`; their lengths (from the token
// `starts` and last bytes `ends`) to `lengths`. Writes 64 bytes at `out`
// and 32 lengths whatever the count; returns the number of tokens and sets
// `*bytes` to the bytes that count. No token ends at the block's last byte.
using PackFn = size_t (*)(const char* low, uint64_t kept, uint64_t starts, uint64_t ends, char* out,
                          uint16_t* lengths, size_t* bytes);

#if defined(SLUICE_HAVE_AVX512)
alignas(64) inline constexpr uint8_t kIndex64[64] = {
    0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
    22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43,
    44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63};

// VBMI2's byte compress, into a register (the memory form is slow on some
// CPUs), then one store.
__attribute__((target("avx512f,avx512bw,avx512vbmi,avx512vbmi2,popcnt"))) inline size_t PackAvx512(
    const char* low, uint64_t kept, uint64_t starts, uint64_t ends, char* out, uint16_t* lengths,
    size_t* bytes) {
  const uint64_t nuls = ends << 1;  // the byte after each token becomes its NUL
  const __m512i text = _mm512_maskz_mov_epi8(~nuls, _mm512_load_si512(low));
  const uint64_t take = kept | nuls;
  _mm512_storeu_si512(out, _mm512_maskz_compress_epi8(take, text));
  const __m512i index = _mm512_load_si512(kIndex64);
  const __m512i first = _mm512_maskz_compress_epi8(starts, index);
  const __m512i last = _mm512_maskz_compress_epi8(ends, index);
  const __m512i size = _mm512_sub_epi8(_mm512_add_epi8(last, _mm512_set1_epi8(1)), first);
  // Byte i to 16-bit lane i: byte 2i from byte i, odd bytes zero.
  // (vpermb reads an index's low 6 bits: the bit shifted in from the
  // odd byte does not matter)
  const __m512i spread = _mm512_srli_epi16(index, 1);  // 2i and 2i + 1 -> i
  _mm512_storeu_si512(lengths, _mm512_maskz_permutexvar_epi8(0x5555555555555555ull, spread, size));
  *bytes = static_cast<size_t>(_mm_popcnt_u64(take));
  return static_cast<size_t>(_mm_popcnt_u64(starts));
}
#endif

inline std::atomic<PackFn> g_pack{nullptr};

// A whole tag read at once (TagScan): where its '>' is, its name lower
// case, the values of its first "href=" and "src=".
struct TagScan {
  size_t len;                  // bytes before the '>'
  size_t name_len;             // the name's alphanumeric bytes (at most 16)
  bool closing;                // "</..."
  size_t links[2];             // where the values of href= and src= start, or npos
  alignas(64) char lower[64];  // the tag's bytes lower-cased
};
// Fills `out` for the tag whose bytes start at `name` (after the '<') if
// its '>' is among the next 64 bytes with 16 more readable bytes after it
// (what TagEnded needs); else false.
using ScanTagFn = bool (*)(const char* name, const char* end, TagScan* out);

#if defined(SLUICE_HAVE_AVX512)
__attribute__((target("avx512f,avx512bw"))) inline bool ScanTagAvx512(const char* name,
                                                                      const char* end,
                                                                      TagScan* out) {
  const size_t left = static_cast<size_t>(end - name);
  const __mmask64 valid = FirstBytes64(left);
  const __m512i v = _mm512_maskz_loadu_epi8(valid, name);
  const uint64_t gt = _mm512_mask_cmpeq_epi8_mask(valid, v, _mm512_set1_epi8('>'));
  if (gt == 0) return false;
  const size_t len = static_cast<size_t>(__builtin_ctzll(gt));
  if (left - len < 16) return false;
  const bool closing = name[0] == '/';
  const __m512i lower = Lower64(v);
  _mm512_store_si512(out->lower, lower);
  const uint64_t alnum =
      _mm512_cmplt_epu8_mask(_mm512_sub_epi8(lower, _mm512_set1_epi8('a')), _mm512_set1_epi8(26)) |
      _mm512_cmplt_epu8_mask(_mm512_sub_epi8(v, _mm512_set1_epi8('0')), _mm512_set1_epi8(10));
  out->len = len;
  out->closing = closing;
  // The '>' ends the name if nothing else does; 16 bytes at most (as the
  // SSE2 path reads).
  out->name_len = static_cast<size_t>(__builtin_ctzll((~alnum >> closing) | (uint64_t{1} << 16)));
  // FindLinks on the same vector: a name's letters before each '='.
  uint64_t at_href, at_src;
  LinkEnds(LettersOf(v), LinkLetters(), (gt - 1) & _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('=')),
           &at_href, &at_src);
  out->links[0] =
      at_href != 0 ? static_cast<size_t>(__builtin_ctzll(at_href)) + 1 : absl::string_view::npos;
  out->links[1] =
      at_src != 0 ? static_cast<size_t>(__builtin_ctzll(at_src)) + 1 : absl::string_view::npos;
  return true;
}
#endif

inline std::atomic<ScanTagFn> g_scan_tag{nullptr};

// Find in a buffer with 16 bytes of slack past `end` (tag_): whole
// vectors, the bits past `end` dropped.
inline const char* FindPadded(const char* p, const char* end, char c) {
#if defined(__SSE2__)
  for (; p < end; p += 16) {
    const uint32_t m = Mask(Eq(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)), c)) &
                       FirstBits(static_cast<size_t>(end - p));
    if (m != 0) return p + __builtin_ctz(m);
  }
  return nullptr;
#else
  return Find(p, end, c, p);
#endif
}

// Whether a word holding an '@' has an address's shape: something before
// the first '@', and after it a dot followed by a letter (the top-level
// domain): "anna.k@example.net." is one, "@anna" and "a@b" are not.
inline bool IsAddress(absl::string_view w) {
  const size_t at = w.find('@');
  if (at == 0 || at == absl::string_view::npos) return false;
  for (size_t i = at + 2; i + 1 < w.size(); ++i) {
    if (w[i] == '.' && IsAlpha(static_cast<unsigned char>(w[i + 1]))) return true;
  }
  return false;
}

// The greetings, zero-padded to 16 bytes.
alignas(16) inline constexpr char kGreetings[][16] = {"dear",      "hi",      "hello", "hey",
                                                      "greetings", "dearest", "attn",  "attention"};

// Whether a word could be a greeting, by its length (2 to 9) and first
// letter (a d g h): cheap, no branch.
inline bool MayBeGreeting(absl::string_view w) {
  constexpr uint32_t kFirst =
      1u << ('a' & 31) | 1u << ('d' & 31) | 1u << ('g' & 31) | 1u << ('h' & 31);
  const uint32_t first = static_cast<unsigned char>(w[0]);
  return (w.size() - 2 < 8) & (first >= 'a') & (first <= 'z') & ((kFirst >> (first & 31)) & 1);
}

// Whether a word (lower case, 16 bytes readable at w.data() as for
// TokenSink) is a greeting: compared with all of them at once, without a
// branch per candidate (which of them a line's first word is, if any, is
// not predictable).
inline bool IsGreeting(absl::string_view w) {
#if defined(__SSE2__)
  const __m128i v = LoadFirst(w.data(), w.size());  // a longer word differs in its 16th byte
  uint32_t equal = 0;
  for (const auto& g : kGreetings) {
    equal |= static_cast<uint32_t>(_mm_movemask_epi8(
                 _mm_cmpeq_epi8(v, _mm_load_si128(reinterpret_cast<const __m128i*>(g))))) +
             1;  // 0x10000 when all 16 bytes are equal
  }
  return (equal >> 16) & 1;
#else
  for (const auto& g : kGreetings) {
    if (w == absl::string_view(g)) return true;
  }
  return false;
#endif
}

// What a tag does, by name: block-level tags end a line of text (br p div
// tr td th li ul ol dl dt dd table thead tbody tfoot caption h1-h6 hr pre
// title center section article aside header footer nav main figure form
// fieldset legend address blockquote menu frame html head body); elements
// that show something of their own (img input button select option
// textarea iframe object embed video audio canvas svg) end a word; style
// and script hide what follows up to their closing tag. Other tags, inline
// elements (b i u s em strong span font a small sub sup ...) and names no
// browser knows (which it shows inline), end nothing: "Vi<b></b>agra"
// reads "Viagra".
enum TagKind : uint8_t {
  kOtherTag = 0,
  kBlockTag = 1,
  kBreakTag = 2,
  kStyleTag = 3,  // BodyNormalizer::skip_until_close_ is kind - 2
  kScriptTag = 4
};

// A tag name's key: its first 7 bytes (lower case, zero-padded) and its
// length in the top byte (longer names are checked on their tails).
inline constexpr uint64_t TagKey(const char* name, size_t len) {
  uint64_t key = 0;
  for (size_t i = 0; i < len && i < 7; ++i) {
    key |= uint64_t{static_cast<unsigned char>(name[i])} << (8 * i);
  }
  return key | (uint64_t{len} << 56);
}

// The names in a 256-slot table without collisions (the multiplier was
// found by a seeded search; the compiler checks it): a lookup is one
// multiply and one compare.
struct TagTable {
  static constexpr int kBits = 8;
  static constexpr uint64_t kMultiplier = 0x58eb76e4539736cdull;
  uint64_t keys[1 << kBits] = {};
  uint8_t kinds[1 << kBits] = {};
  uint32_t tails[1 << kBits] = {};  // bytes 7 to 10 of a longer name
  bool collided = false;
  constexpr TagTable() {
    constexpr const char* kBlocks[] = {
        "p",      "br",       "div",     "tr",      "td",         "th",     "li",      "ul",
        "ol",     "table",    "h1",      "h2",      "h3",         "h4",     "h5",      "h6",
        "hr",     "title",    "center",  "section", "blockquote", "dl",     "dt",      "dd",
        "pre",    "address",  "article", "aside",   "header",     "footer", "nav",     "main",
        "figure", "fieldset", "legend",  "thead",   "tbody",      "tfoot",  "caption", "form",
        "html",   "body",     "head",    "menu",    "frame"};
    constexpr const char* kBreaks[] = {"img",    "input",  "button", "select", "textarea",
                                       "iframe", "object", "embed",  "video",  "audio",
                                       "canvas", "svg",    "option"};
    for (const char* name : kBlocks) Add(name, kBlockTag);
    for (const char* name : kBreaks) Add(name, kBreakTag);
    Add("style", kStyleTag);
    Add("script", kScriptTag);
  }
  constexpr void Add(const char* name, TagKind kind) {
    size_t len = 0;
    while (name[len] != 0) ++len;
    const uint64_t key = TagKey(name, len);
    const size_t slot = static_cast<size_t>((key * kMultiplier) >> (64 - kBits));
    collided |= keys[slot] != 0;
    keys[slot] = key;
    kinds[slot] = kind;
    for (size_t i = 7; i < len && i < 11; ++i) {
      tails[slot] |= uint32_t{static_cast<unsigned char>(name[i])} << (8 * (i - 7));
    }
  }
};
inline constexpr TagTable kTags;
static_assert(!kTags.collided, "two tag names share a slot");

// The kind of a tag by its lower-case name (16 bytes readable at `name`).
inline TagKind KindOfTag(const char* name, size_t len) {
  uint64_t first = 0;
  std::memcpy(&first, name, 8);
  const uint64_t key =
      (len >= 7 ? first & 0x00FFFFFFFFFFFFFFull : first & ((uint64_t{1} << (8 * len)) - 1)) |
      (uint64_t{len} << 56);
  const size_t slot = static_cast<size_t>((key * TagTable::kMultiplier) >> (64 - TagTable::kBits));
  // Without a branch on the outcome (which tags come is not predictable):
  // the kind masked by the comparison.
  const uint8_t hit = static_cast<uint8_t>(-static_cast<int>(kTags.keys[slot] == key));
  const TagKind kind = static_cast<TagKind>(kTags.kinds[slot] & hit);
  if (len > 7) {  // blockquote, fieldset, textarea: their bytes past the key
    if (len > 11) return kOtherTag;
    uint32_t tail = 0;
    std::memcpy(&tail, name + 7, 4);
    if (len < 11) tail &= (uint32_t{1} << (8 * (len - 7))) - 1;
    if (tail != kTags.tails[slot]) return kOtherTag;
  }
  return kind;
}

inline absl::string_view Trim(absl::string_view s) {
  while (!s.empty() && static_cast<unsigned char>(s.front()) <= ' ') s.remove_prefix(1);
  while (!s.empty() && static_cast<unsigned char>(s.back()) <= ' ') s.remove_suffix(1);
  return s;
}

inline int HexValue(unsigned char c) {
  if (IsDigit(c)) return c - '0';
  c = Lower(c);
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

}  // namespace internal

using internal::AsciiClasses;
using internal::Bits;
using internal::BlockMasks;
using internal::ByteClasses;
using internal::Classify64Avx512;
using internal::Classify64Fn;
using internal::Classify64Sse2;
using internal::ClassifySse2;
using internal::Copy;
using internal::Eq;
using internal::Find;
using internal::FindDashLine;
using internal::FindI;
using internal::FindLinks;
using internal::FindLinksAvx512;
using internal::FindLinksFn;
using internal::FindPadded;
using internal::FindTagOrEntity;
using internal::FirstBits;
using internal::FirstBytes64;
using internal::g_classify64;
using internal::g_find_links;
using internal::g_pack;
using internal::g_scan_tag;
using internal::HexValue;
using internal::InRange;
using internal::IsAddress;
using internal::IsAlnum;
using internal::IsAlpha;
using internal::IsDigit;
using internal::IsGreeting;
using internal::IsSeparator;
using internal::kAscii;
using internal::kAtClass;
using internal::kBlockTag;
using internal::kClasses;
using internal::kDigitClass;
using internal::kGreetings;
using internal::kIndex64;
using internal::KindOfTag;
using internal::kOtherTag;
using internal::kPunctClass;
using internal::kScriptTag;
using internal::kSeparatorClass;
using internal::kStyleTag;
using internal::kTags;
using internal::LettersOf;
using internal::LinkEnds;
using internal::LinkLetters;
using internal::LoadFirst;
using internal::Lower;
using internal::Lower64;
using internal::Mask;
using internal::MayBeGreeting;
using internal::PackAvx512;
using internal::PackFn;
using internal::ScanTagAvx512;
using internal::ScanTagFn;
using internal::Separators;
using internal::Special;
using internal::StartsTag;
using internal::StartsWithI;
using internal::TagKey;
using internal::TagKind;
using internal::TagScan;
using internal::TagTable;
using internal::ToLower;
using internal::Trim;

inline void BodyNormalizer::Keep(absl::string_view token) noexcept {
  ++tokens_;
  // Tokens are at most 255 bytes (a "u:" host): with the held ones, far
  // less than the batch.
  if (batch_len_ + token.size() + 1 > kBatchBytes || batch_count_ == kBatchTokens) {
    FlushTokens(kAddressLeadIn);
  }
  char* const to = batch_ + batch_len_;
#if defined(__SSE2__)
  // Whole vectors: the token has 16 readable bytes past its start, the
  // batch 16 bytes of slack.
  for (size_t k = 0; k < token.size(); k += 16) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(to + k),
                     _mm_loadu_si128(reinterpret_cast<const __m128i*>(token.data() + k)));
  }
#else
  std::memcpy(to, token.data(), token.size());
#endif
  to[token.size()] = 0;
  batch_len_ += token.size() + 1;
  batch_lengths_[batch_count_++] = static_cast<uint16_t>(token.size());
}

inline void BodyNormalizer::AppendWordByte(unsigned char c) noexcept {
  if (word_len_ < kWordMax) {
    word_[word_len_++] = static_cast<char>(kClasses.lower[c]);
    word_flags_ |= kClasses.flags[c];
  } else {
    word_overlong_ = true;
  }
}

// What ends a word does: a plain word is emitted; one with punctuation
// may be a URL (its host is kept), an e-mail address (dropped) or pieces.
// Every URL prefix and every address holds punctuation.
inline void BodyNormalizer::WordEnded(absl::string_view w, uint8_t flags, bool overlong) noexcept {
  if (flags & kPunctClass) {
    WordWithPunctuationEnded(w, flags, overlong);
  } else if (!overlong) {
    EmitWord(w, flags & kDigitClass);
  }
}

}  // namespace sluice

#endif  // SLUICE_REPUTATION_CONTENT_INTERNAL_NORMALIZER_SCAN_H_
