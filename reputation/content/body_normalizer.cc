#include "reputation/content/body_normalizer.h"

#include <algorithm>
#include <atomic>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

// GCC 12's AVX-512 intrinsics start from an undefined vector and warn
// about it (a false positive).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace sluice {

namespace {

// memcpy that accepts an empty (possibly null) source.
inline void Copy(char* dst, const char* src, size_t n) {
  if (n > 0) std::memcpy(dst, src, n);
}

constexpr unsigned char Lower(unsigned char c) {
  return static_cast<unsigned char>(c | ((static_cast<unsigned char>(c - 'A') < 26u) << 5));
}

constexpr bool IsAlpha(unsigned char c) { return static_cast<unsigned char>(Lower(c) - 'a') < 26u; }
constexpr bool IsDigit(unsigned char c) { return static_cast<unsigned char>(c - '0') < 10u; }
constexpr bool IsAlnum(unsigned char c) { return IsAlpha(c) || IsDigit(c); }

// Case-insensitive prefix test (prefix is lower case).
bool StartsWithI(absl::string_view s, absl::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (Lower(static_cast<unsigned char>(s[i])) != static_cast<unsigned char>(prefix[i])) {
      return false;
    }
  }
  return true;
}

// Finds a lower-case needle case-insensitively.
size_t FindI(absl::string_view s, absl::string_view needle) {
  if (needle.empty() || needle.size() > s.size()) return absl::string_view::npos;
  const unsigned char first = static_cast<unsigned char>(needle[0]);
  for (size_t i = 0; i + needle.size() <= s.size(); ++i) {
    if (Lower(static_cast<unsigned char>(s[i])) == first && StartsWithI(s.substr(i), needle)) {
      return i;
    }
  }
  return absl::string_view::npos;
}

// The value of the parameter `name` (lower case) of a Content-Type value:
// quoted or a token, with whitespace around the '=' as some mailers write
// it ("boundary= \"...\""); empty if absent.
absl::string_view ParameterValue(absl::string_view v, absl::string_view name) {
  auto space = [](char c) { return static_cast<unsigned char>(c) <= ' '; };
  for (size_t from = 0; from < v.size();) {
    const size_t at = FindI(v.substr(from), name);
    if (at == absl::string_view::npos) break;
    size_t i = from + at + name.size();
    from = i;
    const size_t start = i - name.size();
    if (start > 0 && v[start - 1] != ';' && !space(v[start - 1])) continue;  // in another word
    while (i < v.size() && space(v[i])) ++i;
    if (i == v.size() || v[i] != '=') continue;
    ++i;
    while (i < v.size() && space(v[i])) ++i;
    absl::string_view value = v.substr(i);
    if (!value.empty() && value[0] == '"') {
      value.remove_prefix(1);
      return value.substr(0, value.find('"'));
    }
    size_t end = 0;
    while (end < value.size() && value[end] != ';' && !space(value[end])) ++end;
    return value.substr(0, end);
  }
  return {};
}

// How many bytes of `line` (after its "--") the boundary `b` matches: all
// of b, or, for a boundary that a broken mailer wrote with other spaces in
// its delimiter lines ("--= Multipart Boundary 1" for "=Multipart Boundary
// 1"), b up to spaces and tabs; 0 if it does not match.
size_t MatchBoundary(absl::string_view line, absl::string_view b) {
  if (b.empty()) return 0;
  if (line.substr(0, b.size()) == b) return b.size();
  auto blank = [](char c) { return c == ' ' || c == '\t'; };
  size_t i = 0, j = 0;
  while (j < b.size()) {
    if (blank(b[j])) {
      ++j;
    } else if (i < line.size() && blank(line[i])) {
      ++i;
    } else if (i < line.size() && line[i] == b[j]) {
      ++i;
      ++j;
    } else {
      return 0;
    }
  }
  return i;
}

absl::string_view Trim(absl::string_view s) {
  while (!s.empty() && static_cast<unsigned char>(s.front()) <= ' ') s.remove_prefix(1);
  while (!s.empty() && static_cast<unsigned char>(s.back()) <= ' ') s.remove_suffix(1);
  return s;
}

int HexValue(unsigned char c) {
  if (IsDigit(c)) return c - '0';
  c = Lower(c);
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// Base64 digit values (standard and URL-safe alphabets); -1 elsewhere.
struct Base64Table {
  int8_t v[256];
  constexpr Base64Table() : v() {
    for (int c = 0; c < 256; ++c) v[c] = -1;
    for (int c = 'A'; c <= 'Z'; ++c) v[c] = static_cast<int8_t>(c - 'A');
    for (int c = 'a'; c <= 'z'; ++c) v[c] = static_cast<int8_t>(c - 'a' + 26);
    for (int c = '0'; c <= '9'; ++c) v[c] = static_cast<int8_t>(c - '0' + 52);
    v['+'] = v['-'] = 62;
    v['/'] = v['_'] = 63;
  }
};
constexpr Base64Table kBase64;
inline int Base64Value(unsigned char c) { return kBase64.v[c]; }

// Byte classes for the tokenizer, one table lookup per byte: whether the
// byte ends a word, and what it tells about the word (so FlushWord can skip
// its scans for a plain word).
constexpr uint8_t kSeparatorClass = 1;
constexpr uint8_t kDigitClass = 2;
constexpr uint8_t kAtClass = 4;
constexpr uint8_t kPunctClass = 8;  // ASCII, neither alphanumeric nor a separator
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
constexpr ByteClasses kClasses;

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
};

inline uint64_t Special(uint64_t at, uint64_t colon, uint64_t slash, uint64_t w) {
  return at | (colon & (slash >> 1)) | (w & (w >> 1) & (w >> 2));
}

#if defined(__SSE2__)
// kVectors x 16 bytes at p classified, their lower case written to `low`.
template <int kVectors>
inline void ClassifySse2(const unsigned char* p, char* low, BlockMasks* m) {
  uint64_t sep = 0, nl = 0, greet = 0, digit = 0, punct = 0, exits = 0;
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
  }
  *m = BlockMasks{sep, nl, greet, digit, punct, Special(at, colon, slash, w), at, exits};
}

void Classify64Sse2(const unsigned char* p, char* low, BlockMasks* m) {
  ClassifySse2<4>(p, low, m);
}
#endif

#if defined(__SSE2__) && defined(__x86_64__) && defined(__GNUC__)
#define SLUICE_HAVE_AVX512_CLASSIFY 1
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
constexpr AsciiClasses kAscii;

// 64 bytes at p classified at once: one table lookup of the 128 ASCII
// classes (bytes from 0x80 on have none), a mask per class.
__attribute__((target("avx512f,avx512bw,avx512vbmi"))) void Classify64Avx512(const unsigned char* p,
                                                                             char* low,
                                                                             BlockMasks* m) {
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
}
#endif

#if defined(__SSE2__)
// The classifier of 64-byte blocks: AVX-512 (with VBMI's byte table
// lookup) where the CPU has it, else SSE2 (BodyNormalizer::UseWideVectors).
using Classify64Fn = void (*)(const unsigned char* p, char* low, BlockMasks* m);
// Constant-initialized to the code every CPU runs (a normaliser used by
// another file's static initializer finds it set); the CPU's best is
// chosen by a dynamic initializer below (BodyNormalizer::UseWideVectors).
std::atomic<Classify64Fn> g_classify64{Classify64Sse2};
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
void FindLinks(absl::string_view tag, size_t* href, size_t* src) {
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

#if defined(SLUICE_HAVE_AVX512_CLASSIFY)
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
__attribute__((target("avx512f,avx512bw"))) void FindLinksAvx512(absl::string_view tag,
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
std::atomic<FindLinksFn> g_find_links{FindLinks};

// Packs a block's kept tokens into a TokenBatch at once: the bytes of
// `kept` (whole tokens, lower case, from the 64-byte aligned block `low`)
// with a NUL after each token, to `out`; their lengths (from the token
// `starts` and last bytes `ends`) to `lengths`. Writes 64 bytes at `out`
// and 32 lengths whatever the count; returns the number of tokens and sets
// `*bytes` to the bytes that count. No token ends at the block's last byte.
using PackFn = size_t (*)(const char* low, uint64_t kept, uint64_t starts, uint64_t ends, char* out,
                          uint16_t* lengths, size_t* bytes);

#if defined(SLUICE_HAVE_AVX512_CLASSIFY)
alignas(64) constexpr uint8_t kIndex64[64] = {
    0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
    22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43,
    44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63};

// VBMI2's byte compress, into a register (the memory form is slow on some
// CPUs), then one store.
__attribute__((target("avx512f,avx512bw,avx512vbmi,avx512vbmi2,popcnt"))) size_t PackAvx512(
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

std::atomic<PackFn> g_pack{nullptr};

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

#if defined(SLUICE_HAVE_AVX512_CLASSIFY)
__attribute__((target("avx512f,avx512bw"))) bool ScanTagAvx512(const char* name, const char* end,
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

std::atomic<ScanTagFn> g_scan_tag{nullptr};

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

// The length of the whole lines at the start of `data` (which starts a
// line) that begin with none of 'c', 'C', '\n', '\r': the header lines that
// neither are nor continue a Content-* header (after one that is not),
// and do not end the headers. 0 if the first line may matter.
size_t SkippableHeaderLines(absl::string_view data) {
  auto candidate = [](char c) { return c == 'c' || c == 'C' || c == '\n' || c == '\r'; };
  if (data.empty() || candidate(data[0])) return 0;
  const char* const begin = data.data();
  const char* const end = begin + data.size();
  const char* p = begin;
#if defined(__SSE2__)
  // A line that matters starts after a '\n' with one of the four bytes.
  uint32_t carry = 0;  // a '\n' as the previous block's last byte
  while (end - p >= 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const uint32_t nl = Mask(Eq(v, '\n'));
    const uint32_t starts = Mask(
        _mm_or_si128(_mm_or_si128(Eq(v, 'c'), Eq(v, 'C')), _mm_or_si128(Eq(v, '\n'), Eq(v, '\r'))));
    const uint32_t hits = ((nl << 1) | carry) & starts;
    if (hits != 0) return static_cast<size_t>(p - begin) + __builtin_ctz(hits);
    carry = nl >> 15;
    p += 16;
  }
  if (carry != 0 && p < end && candidate(*p)) return static_cast<size_t>(p - begin);
#endif
  for (; p + 1 < end; ++p) {
    if (*p == '\n' && candidate(p[1])) return static_cast<size_t>(p + 1 - begin);
  }
  // No line that matters starts here: skip up to the last line end.
  const void* last = memrchr(begin, '\n', data.size());
  return last != nullptr ? static_cast<size_t>(static_cast<const char*>(last) - begin) + 1 : 0;
}

// Whether a word holding an '@' has an address's shape: something before
// the first '@', and after it a dot followed by a letter (the top-level
// domain): "anna.k@example.net." is one, "@anna" and "a@b" are not.
bool IsAddress(absl::string_view w) {
  const size_t at = w.find('@');
  if (at == 0 || at == absl::string_view::npos) return false;
  for (size_t i = at + 2; i + 1 < w.size(); ++i) {
    if (w[i] == '.' && IsAlpha(static_cast<unsigned char>(w[i + 1]))) return true;
  }
  return false;
}

// The greetings, zero-padded to 16 bytes.
alignas(16) constexpr char kGreetings[][16] = {"dear",      "hi",      "hello", "hey",
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
bool IsGreeting(absl::string_view w) {
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
// tr td th li ul ol table h1-h6 hr title center section blockquote);
// style and script hide what follows up to their closing tag.
enum TagKind : uint8_t { kOtherTag = 0, kBlockTag = 1, kStyleTag = 2, kScriptTag = 3 };

// A tag name's key: its first 7 bytes (lower case, zero-padded) and its
// length in the top byte. Only "blockquote" is longer than 7 bytes.
constexpr uint64_t TagKey(const char* name, size_t len) {
  uint64_t key = 0;
  for (size_t i = 0; i < len && i < 7; ++i) {
    key |= uint64_t{static_cast<unsigned char>(name[i])} << (8 * i);
  }
  return key | (uint64_t{len} << 56);
}

// The names in a 64-slot table without collisions (the multiplier was
// found by a seeded search; the compiler checks it): a lookup is one
// multiply and one compare.
struct TagTable {
  static constexpr int kBits = 6;
  static constexpr uint64_t kMultiplier = 0xe1988ad9f06c144bull;
  uint64_t keys[1 << kBits] = {};
  uint8_t kinds[1 << kBits] = {};
  bool collided = false;
  constexpr TagTable() {
    constexpr const char* kNames[] = {"p",      "br",      "div",        "tr",    "td",    "th",
                                      "li",     "ul",      "ol",         "table", "h1",    "h2",
                                      "h3",     "h4",      "h5",         "h6",    "hr",    "title",
                                      "center", "section", "blockquote", "style", "script"};
    constexpr size_t kCount = sizeof(kNames) / sizeof(kNames[0]);
    for (size_t i = 0; i < kCount; ++i) {
      size_t len = 0;
      while (kNames[i][len] != 0) ++len;
      const uint64_t key = TagKey(kNames[i], len);
      const size_t slot = static_cast<size_t>((key * kMultiplier) >> (64 - kBits));
      collided |= keys[slot] != 0;
      keys[slot] = key;
      kinds[slot] = i + 2 < kCount ? kBlockTag : i + 2 == kCount ? kStyleTag : kScriptTag;
    }
  }
};
constexpr TagTable kTags;
static_assert(!kTags.collided, "two tag names share a slot");

// The kind of a tag by its lower-case name (16 bytes readable at `name`).
TagKind KindOfTag(const char* name, size_t len) {
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
  if (len > 7 && std::memcmp(name + 7, "ote", 3) != 0) return kOtherTag;  // blockquote
  return kind;
}

// A byte that makes an attribute value a possible URL, path, address or
// query (left out of the markup: a link's host is a token already).
constexpr bool Locates(unsigned char c) {
  return c == '/' || c == ':' || c == '@' || c == '?' || c == '&' || c == '=';
}

// A tag's markup feature (TokenSink::Markup) written to `out` (room for
// twice the tag's size): its name, then " name" or " name=value" per
// attribute, lower case, without the values that Locates(). Returns the
// length, 0 for a tag without attributes.
size_t MarkupOfTag(absl::string_view tag, char* out) {
  const unsigned char* t = reinterpret_cast<const unsigned char*>(tag.data());
  const size_t size = tag.size();
  auto word_byte = [](unsigned char c) { return c > ' ' && c != '/' && c != '='; };
  size_t n = 0, i = 0;
  while (i < size && word_byte(t[i])) out[n++] = static_cast<char>(Lower(t[i++]));
  const size_t name_len = n;
  while (i < size) {
    if (!word_byte(t[i])) {  // spaces, '/' and stray '='
      ++i;
      continue;
    }
    out[n++] = ' ';
    while (i < size && word_byte(t[i])) out[n++] = static_cast<char>(Lower(t[i++]));
    size_t j = i;
    while (j < size && t[j] <= ' ') ++j;
    if (j == size || t[j] != '=') continue;
    i = j + 1;
    while (i < size && t[i] <= ' ') ++i;
    size_t to;
    if (i < size && (t[i] == '"' || t[i] == '\'')) {
      const unsigned char quote = t[i++];
      to = i;
      while (to < size && t[to] != quote) ++to;
    } else {
      to = i;
      while (to < size && t[to] > ' ') ++to;
    }
    const size_t before = n;
    out[n++] = '=';
    bool locates = false;
    for (; i < to; ++i) {
      locates |= Locates(t[i]);
      out[n++] = static_cast<char>(Lower(t[i]));
    }
    if (locates) n = before;
    if (i < size) ++i;  // the closing quote or the space
  }
  return n > name_len ? n : 0;
}

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

bool BodyNormalizer::UseWideVectors(bool use) noexcept {
#if defined(SLUICE_HAVE_AVX512_CLASSIFY)
  // What of AVX-512 the CPU has: BW (byte masks), VBMI (byte-table
  // lookups), VBMI2 (byte compress).
  bool bw = false, vbmi = false, vbmi2 = false;
  if (use) {
    __builtin_cpu_init();
    bw = __builtin_cpu_supports("avx512bw");
    vbmi = bw && __builtin_cpu_supports("avx512vbmi");
    vbmi2 = bw && __builtin_cpu_supports("avx512vbmi2") && __builtin_cpu_supports("popcnt");
  }
  g_classify64.store(vbmi ? Classify64Avx512 : Classify64Sse2, std::memory_order_relaxed);
  g_find_links.store(bw ? FindLinksAvx512 : FindLinks, std::memory_order_relaxed);
  g_pack.store(vbmi2 ? PackAvx512 : nullptr, std::memory_order_relaxed);
  g_scan_tag.store(bw ? ScanTagAvx512 : nullptr, std::memory_order_relaxed);
  return vbmi;
#else
  static_cast<void>(use);
  return false;
#endif
}

bool BodyNormalizer::UsesWideVectors() noexcept {
#if defined(__SSE2__)
  return g_classify64.load(std::memory_order_relaxed) != Classify64Sse2;
#else
  return false;
#endif
}

namespace {
// The CPU's best vector code, chosen once at start-up.
const bool g_wide_at_start = BodyNormalizer::UseWideVectors(true);
}  // namespace

BodyNormalizer::BodyNormalizer() : BodyNormalizer(Options()) {}
BodyNormalizer::BodyNormalizer(const Options& options) : options_(options) { Reset(nullptr); }

void BodyNormalizer::Reset(TokenSink* sink) noexcept {
  sink_ = sink;
  line_len_ = 0;
  line_overflowed_ = false;
  in_headers_ = true;
  header_len_ = 0;
  ClearPartHeaders();
  depth_ = 0;
  kind_ = PartKind::kPlain;
  encoding_ = Encoding::kIdentity;
  b64_acc_ = 0;
  b64_bits_ = 0;
  html_ = Html::kText;
  tag_len_ = 0;
  entity_len_ = 0;
  skip_until_close_ = 0;
  word_len_ = 0;
  word_overlong_ = false;
  word_flags_ = 0;
  line_start_ = true;
  greeting_left_ = 0;
  bytes_seen_ = 0;
  text_bytes_ = 0;
  tokens_ = 0;
  lead_in_floor_ = 0;
  text_parts_ = 0;
  pending_len_ = 0;
  batch_len_ = 0;
  batch_count_ = 0;
  qp_carry_len_ = 0;
}

void BodyNormalizer::Feed(absl::string_view data) noexcept {
  bytes_seen_ += data.size();
  // Once the text budget is spent only boundaries could matter, and nothing
  // after them would be tokenised either: stop looking.
  if (text_bytes_ >= options_.max_text_bytes) return;
  while (!data.empty()) {
    if (in_headers_ && header_len_ == 0 && line_len_ == 0 && !line_overflowed_) {
      // At the start of a header line, after a header that does not matter:
      // every line up to the next one that starts with 'c' or 'C' (maybe a
      // Content-* header) or ends the headers is a no-op. Skipped at once.
      const size_t skip = SkippableHeaderLines(data);
      if (skip > 0) {
        data.remove_prefix(skip);
        continue;
      }
    }
    if (!in_headers_ && line_len_ == 0 && !line_overflowed_ &&
        (kind_ == PartKind::kSkip || kind_ == PartKind::kMultipart ||
         encoding_ == Encoding::kIdentity)) {
      // Whole lines at once up to the next one that could be a boundary
      // (it starts with "--"): in a skipped part they are skipped, in
      // untransformed text they go to Text as one piece ('\r' and '\n'
      // separate words there as they do line by line).
      size_t stop = 0;
      if (!(depth_ > 0 && data.size() >= 2 && data[0] == '-' && data[1] == '-')) {
        const char* dash =
            depth_ > 0 ? FindDashLine(data.data(), data.data() + data.size()) : nullptr;
        if (dash != nullptr) {
          stop = static_cast<size_t>(dash - data.data()) + 1;
        } else {
          const void* last = memrchr(data.data(), '\n', data.size());
          if (last != nullptr) {
            stop = static_cast<size_t>(static_cast<const char*>(last) - data.data()) + 1;
          }
        }
      }
      if (stop > 0) {
        if (kind_ == PartKind::kPlain || kind_ == PartKind::kHtml) {
          // As line by line: a '\r' before a '\n' is not text.
          absl::string_view text = data.substr(0, stop);
          for (;;) {
            const void* cr = std::memchr(text.data(), '\r', text.size());
            if (cr == nullptr) break;
            const size_t at = static_cast<size_t>(static_cast<const char*>(cr) - text.data());
            const bool line_end = at + 1 < text.size() && text[at + 1] == '\n';
            Text(text.substr(0, line_end ? at : at + 1));
            text.remove_prefix(at + 1);
          }
          Text(text);
        }
        data.remove_prefix(stop);
        if (text_bytes_ >= options_.max_text_bytes) return;
        continue;
      }
    }
    const void* nl = Find(data.data(), data.data() + data.size(), '\n', data.data());
    size_t n = nl ? static_cast<size_t>(static_cast<const char*>(nl) - data.data()) : data.size();
    absl::string_view piece = data.substr(0, n);
    if (nl != nullptr && line_len_ == 0 && !line_overflowed_ && n < kLineMax) {
      // The whole (short) line is in this chunk: no copy. Long lines take
      // the copying path below, so they are cut at the same places however
      // the message is chunked.
      if (!piece.empty() && piece.back() == '\r') piece.remove_suffix(1);
      OnLine(piece, true);
    } else {
      while (!piece.empty()) {
        size_t room = kLineMax - line_len_;
        size_t take = piece.size() < room ? piece.size() : room;
        Copy(line_ + line_len_, piece.data(), take);
        line_len_ += take;
        piece.remove_prefix(take);
        if (line_len_ == kLineMax) {  // an over-long line goes on in pieces
          // A final '\r' waits for the next piece: if a '\n' follows, it
          // is dropped as at the end of any line.
          const bool cr = line_[kLineMax - 1] == '\r';
          OnLine(absl::string_view(line_, kLineMax - cr), false);
          line_len_ = 0;
          if (cr) line_[line_len_++] = '\r';
          line_overflowed_ = true;
        }
      }
      if (nl != nullptr) {
        absl::string_view line(line_, line_len_);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        OnLine(line, true);
        line_len_ = 0;
        line_overflowed_ = false;
      }
    }
    if (nl == nullptr) break;
    data.remove_prefix(n + 1);
    if (text_bytes_ >= options_.max_text_bytes) return;
  }
}

void BodyNormalizer::Finish() noexcept {
  if (line_len_ > 0) {
    OnLine(absl::string_view(line_, line_len_), true);
    line_len_ = 0;
  }
  FlushPending();
  if (in_headers_) EndHeaders();
  if (html_ == Html::kEntity) {
    html_ = Html::kText;
    TextByte('&');
  }
  Newline();
  FlushTokens();
}

void BodyNormalizer::OnLine(absl::string_view line, bool complete) noexcept {
  if (!in_headers_) {
    OnBodyLine(line, complete);
    return;
  }
  if (line_overflowed_) {  // the rest of an over-long line: never a new header
    ContinueHeader(line);
    return;
  }
  if (complete && line.empty()) {
    OnHeaderLine(absl::string_view());  // process the last header
    EndHeaders();
    return;
  }
  OnHeaderLine(line);
}

void BodyNormalizer::ContinueHeader(absl::string_view line) noexcept {
  if (header_len_ == 0) return;  // continues a header that does not matter
  const size_t take = std::min(line.size(), sizeof(header_) - header_len_);
  Copy(header_ + header_len_, line.data(), take);
  header_len_ += take;
}

// What an attachment's file name says its bytes are: a web page or text
// (by the extension, any case), else kSkip.
BodyNormalizer::PartKind BodyNormalizer::KindOfFileName(absl::string_view name) noexcept {
  const size_t dot = name.rfind('.');
  if (dot == absl::string_view::npos) return PartKind::kSkip;
  const absl::string_view ext = Trim(name.substr(dot + 1));
  auto is = [&](absl::string_view e) { return ext.size() == e.size() && StartsWithI(ext, e); };
  if (is("htm") || is("html") || is("shtml") || is("xhtml")) return PartKind::kHtml;
  if (is("txt")) return PartKind::kPlain;
  return PartKind::kSkip;
}

void BodyNormalizer::OnHeaderLine(absl::string_view line) noexcept {
  const bool continuation = !line.empty() && (line[0] == ' ' || line[0] == '\t');
  if (continuation) {
    ContinueHeader(line);
    return;
  }
  // A new header (or the end of them): act on the one collected so far.
  absl::string_view h(header_, header_len_);
  if (StartsWithI(h, "content-type:")) {
    saw_content_type_ = true;
    absl::string_view v = Trim(h.substr(13));
    next_octet_stream_ = false;
    if (StartsWithI(v, "text/html")) {
      next_kind_ = PartKind::kHtml;
    } else if (StartsWithI(v, "text/")) {
      next_kind_ = PartKind::kPlain;
    } else if (StartsWithI(v, "multipart/")) {
      next_kind_ = PartKind::kMultipart;
      const absl::string_view bv = ParameterValue(v, "boundary");
      next_boundary_len_ = std::min(bv.size(), sizeof(next_boundary_));
      Copy(next_boundary_, bv.data(), next_boundary_len_);
    } else {
      next_kind_ = PartKind::kSkip;
      if (StartsWithI(v, "application/octet-stream")) {
        next_octet_stream_ = true;
        const PartKind named = KindOfFileName(ParameterValue(v, "name"));
        if (named != PartKind::kSkip) next_file_kind_ = named;
      }
    }
  } else if (StartsWithI(h, "content-disposition:")) {
    const PartKind named = KindOfFileName(ParameterValue(h.substr(20), "filename"));
    if (named != PartKind::kSkip) next_file_kind_ = named;
  } else if (StartsWithI(h, "content-transfer-encoding:")) {
    absl::string_view v = Trim(h.substr(26));
    next_encoding_ = StartsWithI(v, "quoted-printable") ? Encoding::kQuotedPrintable
                     : StartsWithI(v, "base64")         ? Encoding::kBase64
                                                        : Encoding::kIdentity;
  }
  // Only Content-* headers matter: the others are not kept.
  const bool wanted = !line.empty() && (line[0] == 'c' || line[0] == 'C');
  header_len_ = wanted ? std::min(line.size(), sizeof(header_)) : 0;
  Copy(header_, line.data(), header_len_);
}

void BodyNormalizer::EndHeaders() noexcept {
  in_headers_ = false;
  header_len_ = 0;
  kind_ = next_octet_stream_ && next_file_kind_ != PartKind::kSkip ? next_file_kind_ : next_kind_;
  encoding_ = next_encoding_;
  b64_acc_ = 0;
  b64_bits_ = 0;
  qp_carry_len_ = 0;
  html_ = Html::kText;
  skip_until_close_ = 0;
  if (kind_ == PartKind::kMultipart) {
    if (next_boundary_len_ > 0 && depth_ < kMaxDepth) {
      Copy(boundaries_[depth_], next_boundary_, next_boundary_len_);
      boundary_len_[depth_] = next_boundary_len_;
      ++depth_;
    }
    kind_ = PartKind::kSkip;  // the preamble
  } else if (kind_ != PartKind::kSkip) {
    ++text_parts_;
  }
  ClearPartHeaders();
}

void BodyNormalizer::ClearPartHeaders() noexcept {
  next_kind_ = PartKind::kPlain;
  next_encoding_ = Encoding::kIdentity;
  next_boundary_len_ = 0;
  next_octet_stream_ = false;
  next_file_kind_ = PartKind::kSkip;
  saw_content_type_ = false;
}

void BodyNormalizer::OnBodyLine(absl::string_view line, bool complete) noexcept {
  if (complete && !line_overflowed_ && depth_ > 0 && line.size() >= 3 && line[0] == '-' &&
      line[1] == '-') {
    absl::string_view rest = line.substr(2);
    for (int d = depth_ - 1; d >= 0; --d) {
      absl::string_view b(boundaries_[d], boundary_len_[d]);
      const size_t matched = MatchBoundary(rest, b);
      if (matched == 0) continue;
      absl::string_view tail = Trim(rest.substr(matched));
      FlushPending();
      Newline();
      if (tail.substr(0, 2) == "--") {  // closing: back to the parent's epilogue
        depth_ = d;
        kind_ = PartKind::kSkip;
      } else {  // the next part of level d begins with its headers
        depth_ = d + 1;
        in_headers_ = true;
        header_len_ = 0;
      }
      return;
    }
  }
  if (kind_ == PartKind::kSkip || kind_ == PartKind::kMultipart) return;
  DecodeLine(line, complete);
}

void BodyNormalizer::DecodeLine(absl::string_view line, bool complete) noexcept {
  switch (encoding_) {
    case Encoding::kIdentity:
      Text(line);
      if (complete) Text("\n");
      return;
    case Encoding::kQuotedPrintable: {
      // An escape cut where an over-long line was cut: decoded with the
      // bytes that follow it (a line is at most kLineMax bytes).
      char joined[kLineMax + 2];
      if (qp_carry_len_ > 0) {
        std::memcpy(joined, qp_carry_, qp_carry_len_);
        Copy(joined + qp_carry_len_, line.data(), line.size());
        line = absl::string_view(joined, qp_carry_len_ + line.size());
        qp_carry_len_ = 0;
      }
      bool soft = false;
      size_t end = line.size();
      if (!complete) {  // "=" or "=X" at the cut: wait for the rest
        const size_t cut = end >= 1 && line[end - 1] == '=' ? 1
                           : end >= 2 && line[end - 2] == '=' &&
                                   HexValue(static_cast<unsigned char>(line[end - 1])) >= 0
                               ? 2
                               : 0;
        end -= cut;
        std::memcpy(qp_carry_, line.data() + end, cut);
        qp_carry_len_ = cut;
      }
      // Trailing whitespace is transport padding at a line's end only (not
      // where an over-long line is cut).
      while (complete && end > 0 && (line[end - 1] == ' ' || line[end - 1] == '\t')) --end;
      if (complete && end > 0 && line[end - 1] == '=') {
        soft = true;
        --end;
      }
      // Runs between '=' are copied whole.
      size_t i = 0;
      while (i < end) {
        const char* eq = Find(line.data() + i, line.data() + end, '=', line.data());
        const size_t at = eq ? static_cast<size_t>(eq - line.data()) : end;
        Pend(line.data() + i, at - i);
        if (at == end) break;
        int hi = at + 2 < end ? HexValue(static_cast<unsigned char>(line[at + 1])) : -1;
        int lo = at + 2 < end ? HexValue(static_cast<unsigned char>(line[at + 2])) : -1;
        if (hi >= 0 && lo >= 0) {
          PendByte(static_cast<char>(hi * 16 + lo));
          i = at + 3;
        } else {
          PendByte('=');
          i = at + 1;
        }
      }
      if (complete && !soft) PendByte('\n');
      return;
    }
    case Encoding::kBase64: {
      // Whole groups of four digits at a time, three bytes out, while the
      // decoder is between groups; the rest (padding, garbage, a group cut
      // by a line end) byte by byte.
      const unsigned char* q = reinterpret_cast<const unsigned char*>(line.data());
      const unsigned char* const end = q + line.size();
      if (b64_bits_ == 0) {
        while (end - q >= 4) {
          const int a = Base64Value(q[0]), b = Base64Value(q[1]);
          const int c = Base64Value(q[2]), d = Base64Value(q[3]);
          if ((a | b | c | d) < 0) break;  // '=', a line's junk: byte by byte
          if (kPendingMax - pending_len_ < 3) FlushPending();
          const uint32_t group = static_cast<uint32_t>(a << 18 | b << 12 | c << 6 | d);
          pending_[pending_len_] = static_cast<char>(group >> 16);
          pending_[pending_len_ + 1] = static_cast<char>(group >> 8);
          pending_[pending_len_ + 2] = static_cast<char>(group);
          pending_len_ += 3;
          q += 4;
        }
        if (pending_len_ == kPendingMax) FlushPending();
      }
      for (unsigned char c :
           absl::string_view(reinterpret_cast<const char*>(q), static_cast<size_t>(end - q))) {
        if (c == '=') {  // padding: the group ends
          b64_acc_ = 0;
          b64_bits_ = 0;
          continue;
        }
        int v = Base64Value(c);
        if (v < 0) continue;
        b64_acc_ = (b64_acc_ << 6) | static_cast<uint32_t>(v);
        b64_bits_ += 6;
        if (b64_bits_ >= 8) {
          b64_bits_ -= 8;
          PendByte(static_cast<char>((b64_acc_ >> b64_bits_) & 0xFF));
        }
      }
      return;
    }
  }
}

void BodyNormalizer::Pend(const char* src, size_t n) noexcept {
  while (n > 0) {
    const size_t take = std::min(n, kPendingMax - pending_len_);
    std::memcpy(pending_ + pending_len_, src, take);
    pending_len_ += take;
    src += take;
    n -= take;
    if (pending_len_ == kPendingMax) FlushPending();
  }
}

void BodyNormalizer::FlushPending() noexcept {
  if (pending_len_ == 0) return;
  const size_t n = pending_len_;
  pending_len_ = 0;
  Text(absl::string_view(pending_, n));
}

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
  TokenBatch batch;
  batch.bytes = batch_;
  batch.size = batch_len_ - held_bytes;
  batch.lengths = batch_lengths_;
  batch.count = send;
  if (sink_ != nullptr) sink_->Tokens(batch);
  // The held tokens (at most kAddressLeadIn x 256 bytes) to the front.
  std::memmove(batch_, batch_ + batch.size, held_bytes);
  std::memmove(batch_lengths_, batch_lengths_ + send, hold * sizeof(batch_lengths_[0]));
  batch_len_ = held_bytes;
  batch_count_ = hold;
}

void BodyNormalizer::DropAddressLeadIn() noexcept {
  // At most the tokens since the floor, all in the batch (a flush holds
  // back kAddressLeadIn): the same tokens however the batches fell.
  const uint64_t n = std::min<uint64_t>(kAddressLeadIn, tokens_ - lead_in_floor_);
  for (uint64_t i = 0; i < n && batch_count_ > 0; ++i) {
    batch_len_ -= batch_lengths_[--batch_count_] + size_t{1};
    --tokens_;
  }
  lead_in_floor_ = tokens_;
}

void TokenSink::Tokens(const TokenBatch& batch) noexcept {
  const char* p = batch.bytes;
  for (size_t i = 0; i < batch.count; ++i) {
    Token(absl::string_view(p, batch.lengths[i]));
    p += batch.lengths[i] + 1;
  }
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

// The run of word bytes at p (up to the first separator, or '&' when
// stop_at_amp): appended to the word, lower-cased. Returns the run's end.
inline const unsigned char* BodyNormalizer::CopyRun(const unsigned char* p,
                                                    const unsigned char* end,
                                                    bool stop_at_amp) noexcept {
  if (stop_at_amp) {
    while (p < end && !IsSeparator(*p) && *p != '&') AppendWordByte(*p++);
  } else {
    while (p < end && !IsSeparator(*p)) AppendWordByte(*p++);
  }
  return p;
}

// The bytes [from, to) of the lower-cased block join the word being
// collected (a word that goes on past the block, or came from before it).
inline void BodyNormalizer::AppendBlockRun(const char* low, uint32_t from, uint32_t to,
                                           uint64_t digit, uint64_t punct, uint64_t at) noexcept {
  const uint32_t len = to - from;
  const uint64_t range = Bits(from, len);
  if (word_len_ + len <= kWordMax) {
#if defined(__SSE2__)
    for (uint32_t k = 0; k < len; k += 16) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(word_ + word_len_ + k),
                       _mm_loadu_si128(reinterpret_cast<const __m128i*>(low + from + k)));
    }
#else
    std::memcpy(word_ + word_len_, low + from, len);
#endif
    word_len_ += len;
    word_flags_ |=
        static_cast<uint8_t>(((digit & range) ? kDigitClass : 0) |
                             ((punct & range) ? kPunctClass : 0) | ((at & range) ? kAtClass : 0));
  } else {
    for (uint32_t k = from; k < to; ++k) AppendWordByte(static_cast<unsigned char>(low[k]));
  }
}

// A block without URLs or addresses: the words inside it are split at
// punctuation into tokens straight from the masks, as WordEnded would
// split them. Tokens are the runs of letters, digits and non-ASCII bytes;
// a run holding a digit ends with a carry out of (tokens + digits). The
// separators between two tokens do what a run of them does in the walk.
// Needs a separator before the limit: the run before the first one may
// continue the word collected so far, the run after the last one may go on
// past the limit; both go to the word buffer.
inline void BodyNormalizer::FastBlock(const char* low, uint64_t sep, uint64_t digit, uint64_t punct,
                                      uint64_t nl, uint64_t greet, uint32_t limit) noexcept {
  const uint64_t before_limit = Bits(0, limit);
  const uint64_t seps = sep & before_limit;
  uint32_t pos = 0;
  if (word_len_ != 0) {
    pos = static_cast<uint32_t>(__builtin_ctzll(seps));
    if (pos > 0) AppendBlockRun(low, 0, pos, digit, punct, 0);
    EndWord();
  }
  const uint32_t last = 63 - static_cast<uint32_t>(__builtin_clzll(seps));
  // Bits [pos, last]: whole words only.
  const uint64_t region = Bits(pos, last + 1 - pos);
  const uint64_t tok = ~(sep | punct) & region;
  uint64_t starts = tok & ~(tok << 1);
  uint64_t ends = tok & ~(tok >> 1);
  const uint64_t digit_ends = (tok + (digit & tok)) & ~tok;  // the byte after such a token
  const uint64_t marks = nl | greet;
  // The token starts right after a gap (a run of non-token bytes) holding a
  // line end, or a mark: the carry out of (gaps + line ends) lands on them.
  const uint64_t gaps = ~tok & region;
  const uint64_t after_nl = (gaps + (nl & gaps)) & starts;
  const uint64_t after_mark = (gaps + (marks & gaps)) & starts;
  uint32_t gap = pos;  // where the separators after the last token begin
  // The block's tokens and their NULs take at most 64 + 32 bytes: room for
  // all of them (and a 64-byte store's overshoot) is made once.
  if (batch_len_ + 128 > kBatchBytes || batch_count_ + 64 > kBatchTokens) {
    FlushTokens(kAddressLeadIn);
  }
  if (starts != 0 && PackBlock(low, tok, starts, ends, digit, after_nl)) {
    gap = 64 - static_cast<uint32_t>(__builtin_clzll(ends));
  } else {
    TokenLoop(low, starts, ends, digit_ends, after_nl, after_mark, &gap);
  }
  const uint64_t tail = (~uint64_t{0} << gap) & region;
  if (marks & tail) SeparatorRun((nl & tail) != 0, true);  // no word is being collected
  if (last + 1 < limit) AppendBlockRun(low, last + 1, limit, digit, punct, 0);
}

// The block's tokens all at once (PackFn), where nothing in the block
// needs a token's neighbours: no greeting is being dropped or starts here,
// no token is over-long. Then a token is kept unless it holds a digit;
// the tokens that do are found by spreading each digit's bit back to its
// token's start (five shift steps, tokens being at most 30 bytes).
inline bool BodyNormalizer::PackBlock(const char* low, uint64_t tok, uint64_t starts, uint64_t ends,
                                      uint64_t digit, uint64_t after_nl) noexcept {
  const PackFn pack = g_pack.load(std::memory_order_relaxed);
  if (pack == nullptr || greeting_left_ != 0) return false;
  // run_n: the bits x with [x, x + n] all token bytes.
  const uint64_t run1 = tok & (tok >> 1), run2 = run1 & (run1 >> 1), run4 = run2 & (run2 >> 2);
  const uint64_t run8 = run4 & (run4 >> 4), run16 = run8 & (run8 >> 8);
  if ((run16 & (run16 >> 14)) != 0) return false;  // a token of 31 bytes or more
  // A line's first token may be a greeting (the first one here too, if a
  // line starts before the block).
  uint64_t first_words = after_nl | (line_start_ ? starts & (~starts + 1) : 0);
  while (first_words != 0) {
    const uint32_t s = static_cast<uint32_t>(__builtin_ctzll(first_words));
    first_words &= first_words - 1;
    const uint32_t e = s + static_cast<uint32_t>(__builtin_ctzll(ends >> s)) + 1;
    const absl::string_view word(low + s, e - s);
    if (MayBeGreeting(word) && IsGreeting(word)) return false;
  }
  uint64_t dirty = digit & tok;
  dirty |= (dirty >> 1) & run1;
  dirty |= (dirty >> 2) & run2;
  dirty |= (dirty >> 4) & run4;
  dirty |= (dirty >> 8) & run8;
  dirty |= (dirty >> 16) & run16;
  const uint64_t kept_starts = starts & ~dirty;
  // A start's carry runs through its token: the kept tokens' bytes.
  const uint64_t kept = tok & ~(tok + kept_starts);
  size_t bytes = 0;
  const size_t count = pack(low, kept, kept_starts, ends & kept, batch_ + batch_len_,
                            batch_lengths_ + batch_count_, &bytes);
  batch_len_ += bytes;
  batch_count_ += count;
  tokens_ += count;
  line_start_ = false;
  return true;
}

// The block's tokens one at a time, as WordEnded would do each.
inline void BodyNormalizer::TokenLoop(const char* low, uint64_t starts, uint64_t ends,
                                      uint64_t digit_ends, uint64_t after_nl, uint64_t after_mark,
                                      uint32_t* gap_out) noexcept {
  // The loop keeps its state in registers (stores through a char pointer
  // would make the compiler reload every member after each token).
  uint32_t gap = *gap_out;
  bool line_start = line_start_;
  int greeting_left = greeting_left_;
  char* out = batch_ + batch_len_;
  uint16_t* lengths = batch_lengths_ + batch_count_;
  auto save = [&] {  // the registers back to the members
    const size_t count = static_cast<size_t>(lengths - batch_lengths_);
    tokens_ += count - batch_count_;
    batch_count_ = count;
    batch_len_ = static_cast<size_t>(out - batch_);
    line_start_ = line_start;
    greeting_left_ = greeting_left;
  };
  while (starts != 0) {
    const uint32_t s = static_cast<uint32_t>(__builtin_ctzll(starts));
    const uint32_t e = static_cast<uint32_t>(__builtin_ctzll(ends)) + 1;  // exclusive
    starts &= starts - 1;
    ends &= ends - 1;
    // Without branches: which gaps hold a line end or a mark is random.
    greeting_left &= static_cast<int>((after_mark >> s) & 1) - 1;
    line_start |= (after_nl >> s) & 1;
    gap = e;
    const bool has_digit = (digit_ends >> e) & 1;  // e <= last < 64
    const absl::string_view token(low + s, e - s);
    // Only a line's first word can start a greeting: most first words
    // cannot be one (by length and first letter) and are emitted here.
    if ((line_start & MayBeGreeting(token)) | (greeting_left > 0)) {
      save();
      EmitWord(token, has_digit);  // may keep the token (and flush)
      line_start = line_start_;
      greeting_left = greeting_left_;
      out = batch_ + batch_len_;
      lengths = batch_lengths_ + batch_count_;
    } else if (line_start = false, !has_digit && token.size() <= 30) {
#if defined(__SSE2__)
      // Two vectors, whatever the token's length (at most 30 bytes): the
      // block has 32 bytes of slack.
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out),
                       _mm_loadu_si128(reinterpret_cast<const __m128i*>(token.data())));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 16),
                       _mm_loadu_si128(reinterpret_cast<const __m128i*>(token.data() + 16)));
#else
      std::memcpy(out, token.data(), token.size());
#endif
      out[token.size()] = 0;
      out += token.size() + 1;
      *lengths++ = static_cast<uint16_t>(token.size());
    }
  }
  save();
  *gap_out = gap;
}

// Text in blocks of kVectors x 16 bytes: one pass of vector compares
// gives bit masks of separators, line ends, greeting-ending marks (, ; !),
// digits, punctuation and '@'; then the block is walked a word and a run
// of separators at a time. A run of separators does what TextByte does
// for each of its bytes: the word before it ends, a line end starts a new
// line, and , ; ! end a greeting. HTML text stops at the first '<' or '&'
// (the parser's state changes there). Returns where it stopped: there, or
// with less than a block left.
template <int kVectors, bool kHtml>
const unsigned char* BodyNormalizer::TextBlocks(const unsigned char* p,
                                                const unsigned char* end) noexcept {
#if defined(__SSE2__)
  constexpr uint32_t kBytes = 16 * kVectors;
  // The block lower-cased, in a buffer of a whole 64-byte block (PackBlock
  // loads one) with slack for 32-byte loads.
  alignas(64) char low[64 + 32] = {};
  while (end - p >= kBytes) {
    BlockMasks m;
    if (kVectors == 4) {
      g_classify64.load(std::memory_order_relaxed)(p, low, &m);
    } else {
      ClassifySse2<kVectors>(p, low, &m);
    }
    uint64_t sep = m.sep;
    const uint64_t nl = m.nl, greet = m.greet, digit = m.digit, punct = m.punct, at = m.at;
    const uint64_t special = m.special;
    // The first exit, or the block's end.
    const uint32_t limit =
        kHtml && m.exits != 0 ? static_cast<uint32_t>(__builtin_ctzll(m.exits)) : kBytes;
    const uint64_t before_limit = Bits(0, limit);
    if ((special & before_limit) == 0 && (sep & before_limit) != 0) {
      // No URL, no address: every token of the block is decided from the
      // masks (FastBlock); only the words at its two ends use the buffer.
      FastBlock(low, sep, digit, punct, nl, greet, limit);
      p += limit;
      if (limit < kBytes) return p;
      continue;
    }
    if (limit < 64) sep |= ~uint64_t{0} << limit;  // no word goes past the limit
    uint32_t pos = 0;
    while (pos < limit) {
      const uint64_t rest = sep >> pos;
      if ((rest & 1) == 0) {  // word bytes up to the next separator
        const uint32_t len = rest != 0 ? static_cast<uint32_t>(__builtin_ctzll(rest)) : 64 - pos;
        const uint64_t range = Bits(pos, len);
        const uint8_t flags = static_cast<uint8_t>(((digit & range) ? kDigitClass : 0) |
                                                   ((punct & range) ? kPunctClass : 0) |
                                                   ((at & range) ? kAtClass : 0));
        if (word_len_ == 0 && pos + len < limit) {
          // A whole word inside the block: ended straight from the block
          // (no copy into the word buffer).
          WordEnded(absl::string_view(low + pos, len), flags, false);
        } else {
          AppendBlockRun(low, pos, pos + len, digit, punct, at);
        }
        pos += len;
        if (pos >= limit) break;
      }
      // A run of separators (before the limit).
      const uint64_t words = ~sep >> pos;
      uint32_t run = words != 0 ? static_cast<uint32_t>(__builtin_ctzll(words)) : 64 - pos;
      if (run > limit - pos) run = limit - pos;
      const uint64_t range = Bits(pos, run);
      SeparatorRun((nl & range) != 0, (greet & range) != 0);
      pos += run;
    }
    p += limit;
    if (limit < kBytes) return p;
  }
#endif
  return p;
}

void BodyNormalizer::Text(absl::string_view text) noexcept {
  const uint64_t budget =
      options_.max_text_bytes - std::min<uint64_t>(text_bytes_, options_.max_text_bytes);
  if (text.size() > budget) text = text.substr(0, budget);
  text_bytes_ += text.size();
  const unsigned char* p = reinterpret_cast<const unsigned char*>(text.data());
  const unsigned char* const end = p + text.size();
  // Two specialised loops on purpose: one loop testing the part kind per
  // byte measured ~45% slower (benchmarks/RESULTS.md figures).
  if (kind_ == PartKind::kHtml) {
    const bool wide = UsesWideVectors();
    const ScanTagFn scan_tag = g_scan_tag.load(std::memory_order_relaxed);
    while (p < end) {
      // Fast path: runs of word bytes in HTML text go straight to the word.
      if (html_ == Html::kText) {
        if (skip_until_close_ == 0) {
          if (*p != '<') {  // (no text between two tags: nothing to classify)
            // Wide blocks only where they are cheap (AVX-512): text between
            // tags is short, and a block is classified whole.
            if (wide) p = TextBlocks<4, true>(p, end);
            if (!wide || end - p < 64) p = TextBlocks<1, true>(p, end);
            p = CopyRun(p, end, true);  // what is left (< 16 bytes)
          }
        } else {  // inside <style> or <script>: only '<' and '&' matter
          p = reinterpret_cast<const unsigned char*>(FindTagOrEntity(
              reinterpret_cast<const char*>(p), reinterpret_cast<const char*>(end)));
        }
        if (p == end) break;
        if (*p == '<' && end - p >= 2 && StartsTag(p[1])) {
          // A whole tag in this text with 16 bytes after it: taken where
          // it is (what the byte-wise path would do, without the copy).
          const char* const name = reinterpret_cast<const char*>(p + 1);
          TagScan scan;
          if (scan_tag != nullptr && scan_tag(name, reinterpret_cast<const char*>(end), &scan)) {
            TagOfKind(absl::string_view(name, scan.len), scan.closing,
                      KindOfTag(scan.lower + scan.closing, scan.name_len), scan.links);
            p += scan.len + 2;
            continue;
          }
          const char* const gt = Find(name, reinterpret_cast<const char*>(end), '>', text.data());
          if (gt != nullptr && reinterpret_cast<const char*>(end) - gt >= 16) {
            TagEnded(absl::string_view(name, std::min(static_cast<size_t>(gt - name), kTagMax)));
            p = reinterpret_cast<const unsigned char*>(gt) + 1;
            continue;
          }
        }
      } else if (html_ == Html::kTag && (tag_len_ >= 3 || (tag_len_ > 0 && tag_[0] != '!') ||
                                         (tag_len_ == 0 && StartsTag(*p)))) {
        // A tag (not a comment, not "a < b" text): collect up to the '>'.
        const void* gt = Find(reinterpret_cast<const char*>(p), reinterpret_cast<const char*>(end),
                              '>', text.data());
        const unsigned char* stop = gt ? static_cast<const unsigned char*>(gt) : end;
        const size_t take = std::min(static_cast<size_t>(stop - p), kTagMax - tag_len_);
        Copy(tag_ + tag_len_, reinterpret_cast<const char*>(p), take);
        tag_len_ += take;
        p = stop;
        if (p == end) break;
      } else if (html_ == Html::kComment) {
        // Up to the next '>' at once: it ends the comment if two dashes
        // (or more) are right before it, as HtmlByte counts them.
        const char* const from = reinterpret_cast<const char*>(p);
        const char* gt = Find(from, reinterpret_cast<const char*>(end), '>', text.data());
        const char* const stop = gt != nullptr ? gt : reinterpret_cast<const char*>(end);
        const char* d = stop;
        while (d > from && d[-1] == '-') --d;
        const int dashes = static_cast<int>(stop - d) + (d == from ? comment_dashes_ : 0);
        if (gt == nullptr) {
          comment_dashes_ = dashes;
          break;
        }
        if (dashes >= 2) {
          html_ = Html::kText;
        } else {
          comment_dashes_ = 0;
        }
        p = reinterpret_cast<const unsigned char*>(gt) + 1;
        continue;
      }
      HtmlByte(*p++);
    }
    return;
  }
  p = TextBlocks<4, false>(p, end);
  while (p < end) {              // what is left (< 64 bytes)
    p = CopyRun(p, end, false);  // a run of word bytes, lower-cased
    if (p == end) break;
    TextByte(*p++);
  }
}

void BodyNormalizer::HtmlByte(unsigned char c) noexcept {
  switch (html_) {
    case Html::kText:
      if (c == '<') {
        html_ = Html::kTag;
        tag_len_ = 0;
      } else if (c == '&') {
        html_ = Html::kEntity;
        entity_len_ = 0;
      } else if (skip_until_close_ == 0) {
        TextByte(c);
      }
      return;
    case Html::kTag:
      if (tag_len_ == 0 && !(StartsTag(c) || c == '!')) {
        // "a < b" is text, not a tag.
        html_ = Html::kText;
        if (skip_until_close_ == 0) TextByte('<');
        HtmlByte(c);
        return;
      }
      if (c == '>') {
        html_ = Html::kText;
        EndTag();
        return;
      }
      if (tag_len_ < kTagMax) tag_[tag_len_++] = static_cast<char>(c);
      if (tag_len_ == 3 && std::memcmp(tag_, "!--", 3) == 0) {
        html_ = Html::kComment;
        comment_dashes_ = 0;
      }
      return;
    case Html::kComment:
      if (c == '-') {
        ++comment_dashes_;
      } else if (c == '>' && comment_dashes_ >= 2) {
        html_ = Html::kText;
      } else {
        comment_dashes_ = 0;
      }
      return;
    case Html::kEntity: {
      if (c == ';' && entity_len_ > 0) {
        html_ = Html::kText;
        absl::string_view e(entity_, entity_len_);
        uint32_t cp = 0;
        if (e[0] == '#') {
          bool hex = e.size() > 1 && (e[1] == 'x' || e[1] == 'X');
          for (size_t i = hex ? 2 : 1; i < e.size(); ++i) {
            int v = hex ? HexValue(static_cast<unsigned char>(e[i]))
                        : (IsDigit(static_cast<unsigned char>(e[i])) ? e[i] - '0' : -1);
            if (v < 0 || cp > 0x10FFFF) {
              cp = ' ';
              break;
            }
            cp = cp * (hex ? 16 : 10) + static_cast<uint32_t>(v);
          }
        } else if (e == "amp") {
          cp = '&';
        } else if (e == "lt") {
          cp = '<';
        } else if (e == "gt") {
          cp = '>';
        } else if (e == "quot") {
          cp = '"';
        } else if (e == "apos") {
          cp = '\'';
        } else {
          cp = ' ';  // &nbsp; and the rest: a separator
        }
        if (skip_until_close_ != 0) return;
        if (cp < 0x80) {
          TextByte(static_cast<unsigned char>(cp));
        } else if (cp < 0x800) {
          TextByte(static_cast<unsigned char>(0xC0 | (cp >> 6)));
          TextByte(static_cast<unsigned char>(0x80 | (cp & 0x3F)));
        } else if (cp < 0x10000) {
          TextByte(static_cast<unsigned char>(0xE0 | (cp >> 12)));
          TextByte(static_cast<unsigned char>(0x80 | ((cp >> 6) & 0x3F)));
          TextByte(static_cast<unsigned char>(0x80 | (cp & 0x3F)));
        } else if (cp <= 0x10FFFF) {
          TextByte(static_cast<unsigned char>(0xF0 | (cp >> 18)));
          TextByte(static_cast<unsigned char>(0x80 | ((cp >> 12) & 0x3F)));
          TextByte(static_cast<unsigned char>(0x80 | ((cp >> 6) & 0x3F)));
          TextByte(static_cast<unsigned char>(0x80 | (cp & 0x3F)));
        } else {
          TextByte(' ');
        }
        return;
      }
      if (entity_len_ < sizeof(entity_) - 1 && (IsAlnum(c) || (c == '#' && entity_len_ == 0))) {
        entity_[entity_len_++] = static_cast<char>(c);
        return;
      }
      // Not an entity after all: the '&' and what followed are text.
      html_ = Html::kText;
      if (skip_until_close_ == 0) {
        TextByte('&');
        for (size_t i = 0; i < entity_len_; ++i) TextByte(static_cast<unsigned char>(entity_[i]));
      }
      HtmlByte(c);
      return;
    }
  }
}

void BodyNormalizer::EndTag() noexcept { TagEnded(absl::string_view(tag_, tag_len_)); }

void BodyNormalizer::TagEnded(absl::string_view tag) noexcept {
  const bool closing = !tag.empty() && tag[0] == '/';
  // The name: the alphanumeric bytes after the optional '/', lower-cased.
  alignas(16) char lname[16];
  size_t n = 0;
  const size_t avail = tag.size() - closing;
#if defined(__SSE2__)
  {
    // 16 bytes are readable past the tag: the bytes past it are masked off.
    const __m128i v = LoadFirst(tag.data() + closing, avail);
    const __m128i lower = ToLower(v);
    _mm_store_si128(reinterpret_cast<__m128i*>(lname), lower);
    const uint32_t alnum = Mask(_mm_or_si128(InRange(lower, 'a', 'z'), InRange(v, '0', '9')));
    n = static_cast<size_t>(__builtin_ctz(~alnum | 0x10000u));
  }
#else
  std::memset(lname, 0, sizeof(lname));
  while (n < avail && n < sizeof(lname) && IsAlnum(static_cast<unsigned char>(tag[closing + n]))) {
    lname[n] = static_cast<char>(Lower(static_cast<unsigned char>(tag[closing + n])));
    ++n;
  }
#endif
  TagOfKind(tag, closing, KindOfTag(lname, n), nullptr);
}

void BodyNormalizer::TagOfKind(absl::string_view tag, bool closing, int kind,
                               const size_t* links) noexcept {
  if (skip_until_close_ != 0) {
    // Inside <style> (1) or <script> (2): only its closing tag matters.
    if (closing && kind == skip_until_close_ + 1) skip_until_close_ = 0;
    return;
  }
  if (kind >= kStyleTag && !closing) {
    skip_until_close_ = kind - 1;
    return;
  }
  // The word before the tag ends; a block tag also ends the line (as
  // Newline), without a branch on which tags come.
  FlushWord();
  const bool block = kind == kBlockTag;
  line_start_ |= block;
  greeting_left_ &= static_cast<int>(block) - 1;
  if (closing) return;  // "</a>": no markup, no link
  if (tokens_ < kFewTokens && sink_ != nullptr) TagMarkup(tag);
  // Links keep their host: the first "href=" and the first "src=" (any
  // case).
  size_t value_at[2] = {absl::string_view::npos, absl::string_view::npos};
  if (links != nullptr) {
    value_at[0] = links[0];
    value_at[1] = links[1];
  } else {
    g_find_links.load(std::memory_order_relaxed)(tag, &value_at[0], &value_at[1]);
  }
  for (size_t at : value_at) {
    if (at == absl::string_view::npos) continue;
    absl::string_view v = tag.substr(at);
    if (!v.empty() && (v[0] == '"' || v[0] == '\'')) {
      const char* close = FindPadded(v.data() + 1, v.data() + v.size(), v[0]);
      v = absl::string_view(
          v.data() + 1, static_cast<size_t>((close ? close : v.data() + v.size()) - v.data() - 1));
    } else {
      size_t e = 0;
      while (e < v.size() && static_cast<unsigned char>(v[e]) > ' ') ++e;
      v = v.substr(0, e);
    }
    v = Trim(v);
    if (StartsWithI(v, "http://") || StartsWithI(v, "https://") || StartsWithI(v, "www.")) {
      EmitUrlHost(v);
    }
  }
}

// Out of line: its buffer would cost every TagEnded call a bigger frame.
void BodyNormalizer::TagMarkup(absl::string_view tag) noexcept {
  char markup[2 * kTagMax];  // a space or '=' per byte at most
  const size_t n = MarkupOfTag(tag, markup);
  if (n == 0) return;
  FlushTokens();  // in stream order
  sink_->Markup(absl::string_view(markup, n));
}

void BodyNormalizer::TextByte(unsigned char c) noexcept {
  if (IsSeparator(c)) {
    SeparatorRun(c == '\n', c == ',' || c == ';' || c == '!');
    return;
  }
  AppendWordByte(c);
}

void BodyNormalizer::SeparatorRun(bool line_end, bool mark) noexcept {
  if (line_end) {
    Newline();
    return;
  }
  FlushWord();
  if (mark) greeting_left_ = 0;
}

void BodyNormalizer::Newline() noexcept {
  FlushWord();
  line_start_ = true;
  greeting_left_ = 0;
}

void BodyNormalizer::EndWord() noexcept {
  const absl::string_view w(word_, word_len_);
  const bool overlong = word_overlong_;
  const uint8_t flags = word_flags_;
  word_len_ = 0;
  word_overlong_ = false;
  word_flags_ = 0;
  WordEnded(w, flags, overlong);
}

void BodyNormalizer::WordWithPunctuationEnded(absl::string_view w, uint8_t flags,
                                              bool overlong) noexcept {
  const char first = w[0];  // already lower case
  if ((first == 'h' || first == 'f' || first == 'w') &&
      (StartsWithI(w, "http://") || StartsWithI(w, "https://") || StartsWithI(w, "ftp://") ||
       StartsWithI(w, "www."))) {
    EmitUrlHost(w);
    line_start_ = false;
    return;
  }
  if (overlong) return;
  if (flags & kAtClass) {  // an e-mail address, or a word with an '@'
    line_start_ = false;
    if (IsAddress(w)) DropAddressLeadIn();
    return;
  }
  // Split at ASCII punctuation ("re:", "buy-now", "U.S.A."), one table
  // lookup per byte.
  size_t start = 0;
  bool has_digit = false;
  for (size_t i = 0; i < w.size(); ++i) {
    const uint8_t f = kClasses.flags[static_cast<unsigned char>(w[i])];
    if (f & kPunctClass) {
      if (i > start) EmitWord(w.substr(start, i - start), has_digit);
      start = i + 1;
      has_digit = false;
    } else {
      has_digit |= (f & kDigitClass) != 0;
    }
  }
  if (w.size() > start) EmitWord(w.substr(start), has_digit);
}

void BodyNormalizer::EmitWord(absl::string_view w, bool has_digit) noexcept {
  const bool at_start = line_start_;
  line_start_ = false;
  if (options_.drop_greetings) {
    if (at_start && IsGreeting(w)) {
      greeting_left_ = 4;  // the name that follows
      return;
    }
    if (greeting_left_ > 0) {
      --greeting_left_;
      return;
    }
  }
  if (w.size() > 30) return;
  if (has_digit) return;  // numbers, prices, ids and codes that vary per recipient
  Keep(w);
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
