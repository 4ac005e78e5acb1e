#include "reputation/content/unicode_text.h"

#include <unicode/uchar.h>
#include <unicode/ucnv.h>
#include <unicode/unorm2.h>
#include <unicode/uspoof.h>
#include <unicode/utf16.h>

#include <algorithm>
#include <atomic>
#include <cstring>

namespace sluice {
namespace {

struct Icu {
  const UNormalizer2* nfkc_cf = nullptr;
  const UNormalizer2* nfd = nullptr;
  USpoofChecker* spoof = nullptr;  // const use only: thread-safe
};

const Icu& GetIcu() {
  static const Icu icu = [] {
    Icu i;
    UErrorCode e = U_ZERO_ERROR;
    i.nfkc_cf = unorm2_getNFKCCasefoldInstance(&e);
    if (U_FAILURE(e)) i.nfkc_cf = nullptr;
    e = U_ZERO_ERROR;
    i.nfd = unorm2_getNFDInstance(&e);
    if (U_FAILURE(e)) i.nfd = nullptr;
    e = U_ZERO_ERROR;
    i.spoof = uspoof_open(&e);
    if (U_FAILURE(e)) i.spoof = nullptr;
    return i;
  }();
  return icu;
}

size_t Utf8(uint32_t c, char* out) {
  if (c < 0x80) {
    out[0] = static_cast<char>(c);
    return 1;
  }
  if (c < 0x800) {
    out[0] = static_cast<char>(0xC0 | (c >> 6));
    out[1] = static_cast<char>(0x80 | (c & 0x3F));
    return 2;
  }
  if (c < 0x10000) {
    out[0] = static_cast<char>(0xE0 | (c >> 12));
    out[1] = static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out[2] = static_cast<char>(0x80 | (c & 0x3F));
    return 3;
  }
  out[0] = static_cast<char>(0xF0 | (c >> 18));
  out[1] = static_cast<char>(0x80 | ((c >> 12) & 0x3F));
  out[2] = static_cast<char>(0x80 | ((c >> 6) & 0x3F));
  out[3] = static_cast<char>(0x80 | (c & 0x3F));
  return 4;
}

bool IsAsciiAlnum(UChar c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// The fold of one code point of one character after NFKC_Casefold: its
// ASCII look-alike if its confusable skeleton is one or two ASCII
// letters or digits, else itself.
size_t LookAlike(UChar32 d, char* out) {
  const Icu& icu = GetIcu();
  if (icu.spoof != nullptr) {
    UChar one[2];
    int32_t ol = 0;
    U16_APPEND_UNSAFE(one, ol, d);
    UChar skeleton[8];
    UErrorCode e = U_ZERO_ERROR;
    const int32_t sl = uspoof_getSkeleton(icu.spoof, 0, one, ol, skeleton, 8, &e);
    if (U_SUCCESS(e) && sl >= 1 && sl <= 2 && IsAsciiAlnum(skeleton[0]) &&
        (sl == 1 || IsAsciiAlnum(skeleton[1]))) {
      for (int32_t i = 0; i < sl; ++i) {
        const UChar c = skeleton[i];
        out[i] = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
      }
      return static_cast<size_t>(sl);
    }
  }
  return Utf8(static_cast<uint32_t>(d), out);
}

// A combining mark of the blocks that put accents on Latin, Greek and
// Cyrillic letters (not the vowel signs and points of Indic, Arabic or
// Hebrew writing, which make the words).
bool IsDiacritic(UChar32 d) {
  return (d >= 0x0300 && d <= 0x036F) || (d >= 0x1AB0 && d <= 0x1AFF) ||
         (d >= 0x1DC0 && d <= 0x1DFF) || (d >= 0x20D0 && d <= 0x20FF) ||
         (d >= 0xFE20 && d <= 0xFE2F);
}

// A letter without its accents: the base of its canonical decomposition
// if everything after the base is a diacritic (é, ï, ǘ, ё, ά), else the
// letter itself.
UChar32 WithoutAccents(UChar32 d) {
  const Icu& icu = GetIcu();
  if (icu.nfd == nullptr) return d;
  UChar one[2];
  int32_t ol = 0;
  U16_APPEND_UNSAFE(one, ol, d);
  UChar parts[16];
  UErrorCode e = U_ZERO_ERROR;
  const int32_t pl = unorm2_normalize(icu.nfd, one, ol, parts, 16, &e);
  if (U_FAILURE(e) || pl <= 0) return d;
  int32_t i = 0;
  UChar32 base;
  U16_NEXT(parts, i, pl, base);
  if (i == pl) return d;  // no decomposition
  while (i < pl) {
    UChar32 m;
    U16_NEXT(parts, i, pl, m);
    if (!IsDiacritic(m)) return d;
  }
  return base;
}

bool IsPunctuation(int8_t type) {
  return type == U_DASH_PUNCTUATION || type == U_START_PUNCTUATION || type == U_END_PUNCTUATION ||
         type == U_CONNECTOR_PUNCTUATION || type == U_OTHER_PUNCTUATION ||
         type == U_INITIAL_PUNCTUATION || type == U_FINAL_PUNCTUATION;
}

size_t Compute(uint32_t c, char* out) {
  if (c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) {
    out[0] = ' ';
    return 1;
  }
  const UChar32 cp = static_cast<UChar32>(c);
  if (u_hasBinaryProperty(cp, UCHAR_DEFAULT_IGNORABLE_CODE_POINT)) return 0;
  const int8_t type = u_charType(cp);
  if (type == U_SPACE_SEPARATOR || type == U_LINE_SEPARATOR || type == U_PARAGRAPH_SEPARATOR ||
      type == U_CONTROL_CHAR) {
    out[0] = ' ';
    return 1;
  }
  UChar src[2];
  int32_t sl = 0;
  U16_APPEND_UNSAFE(src, sl, cp);
  UChar norm[24];
  int32_t nl = -1;
  const Icu& icu = GetIcu();
  if (icu.nfkc_cf != nullptr) {
    UErrorCode e = U_ZERO_ERROR;
    nl = unorm2_normalize(icu.nfkc_cf, src, sl, norm, 24, &e);
    if (U_FAILURE(e)) nl = -1;
  }
  if (nl < 0) {  // no normaliser, or a fold too long to matter
    std::memcpy(norm, src, sizeof(UChar) * static_cast<size_t>(sl));
    nl = sl;
  }
  size_t n = 0;
  for (int32_t i = 0; i < nl && n + 8 <= UnicodeText::kMaxFold;) {
    UChar32 d;
    U16_NEXT(norm, i, nl, d);
    if (d < 0x80) {
      out[n++] = static_cast<char>(d);
    } else if (u_hasBinaryProperty(d, UCHAR_DEFAULT_IGNORABLE_CODE_POINT)) {
      continue;
    } else if (IsPunctuation(u_charType(d))) {
      out[n++] = ' ';  // curly quotes, dashes, ellipses: between words
    } else if (IsDiacritic(d)) {
      continue;  // an accent written apart from its letter: as one written on it
    } else {
      d = WithoutAccents(d);
      if (d < 0x80) {
        out[n++] = static_cast<char>(d);
      } else {
        n += LookAlike(d, out + n);
      }
    }
  }
  return n;
}

// The code point of a whole UTF-8 sequence of `len` (2 to 4) bytes.
uint32_t DecodeSequence(const unsigned char* c, size_t len) {
  return len == 2   ? ((c[0] & 0x1Fu) << 6) | (c[1] & 0x3Fu)
         : len == 3 ? ((c[0] & 0x0Fu) << 12) | ((c[1] & 0x3Fu) << 6) | (c[2] & 0x3Fu)
                    : ((c[0] & 0x07u) << 18) | ((c[1] & 0x3Fu) << 12) | ((c[2] & 0x3Fu) << 6) |
                          (c[3] & 0x3Fu);
}

// The first byte at or after p that is not ASCII, or end; 8 bytes at a time.
const unsigned char* AsciiEnd(const unsigned char* p, const unsigned char* end) {
  while (end - p >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    const uint64_t high = w & 0x8080808080808080ull;
    if (high != 0) return p + (__builtin_ctzll(high) >> 3);
    p += 8;
  }
  while (p < end && *p < 0x80) ++p;
  return p;
}

// The Basic Multilingual Plane's folds, filled on first use: bit 63 known,
// bit 62 longer than 7 bytes (computed each time), bits 56-58 the length,
// bytes 0-6 the fold. relaxed: a value is complete in one word, and two
// threads computing one entry write the same value.
std::atomic<uint64_t> g_memo[0x10000];

}  // namespace

size_t UnicodeText::FoldCodePoint(uint32_t c, char* out) noexcept {
  if (c < 0x80) {
    out[0] = static_cast<char>(c);
    return 1;
  }
  if (c >= 0x10000) return Compute(c, out);
  const uint64_t m = g_memo[c].load(std::memory_order_relaxed);
  if ((m >> 63) != 0 && ((m >> 62) & 1) == 0) {
    const size_t n = (m >> 56) & 7;
    for (size_t i = 0; i < n; ++i) out[i] = static_cast<char>((m >> (8 * i)) & 0xFF);
    return n;
  }
  const size_t n = Compute(c, out);
  uint64_t v = uint64_t{1} << 63;
  if (n > 7) {
    v |= uint64_t{1} << 62;
  } else {
    v |= static_cast<uint64_t>(n) << 56;
    for (size_t i = 0; i < n; ++i)
      v |= static_cast<uint64_t>(static_cast<uint8_t>(out[i])) << (8 * i);
  }
  g_memo[c].store(v, std::memory_order_relaxed);
  return n;
}

bool UnicodeText::Paired(uint32_t c) noexcept {
  return (c >= 0x3040 && c <= 0x30FF) ||  // Hiragana, Katakana
         (c >= 0x31F0 && c <= 0x31FF) ||  // Katakana phonetic extensions
         (c >= 0x3400 && c <= 0x4DBF) ||  // CJK extension A
         (c >= 0x4E00 && c <= 0x9FFF) ||  // CJK unified ideographs
         (c >= 0xF900 && c <= 0xFAFF) ||  // compatibility ideographs (kept by NFKC: a few)
         (c >= 0x20000 && c <= 0x3134F);  // extensions B-G
}

UnicodeText::UnicodeText() = default;

UnicodeText::~UnicodeText() {
  if (converter_ != nullptr) ucnv_close(static_cast<UConverter*>(converter_));
}

void UnicodeText::StartPart(absl::string_view charset) noexcept {
  if (converter_ != nullptr) {
    ucnv_close(static_cast<UConverter*>(converter_));
    converter_ = nullptr;
  }
  table_ = nullptr;
  carry_len_ = 0;
  out_len_ = 0;
  high_surrogate_ = 0;
  cjk_prev_len_ = 0;
  char name[48];
  size_t n = 0;
  for (char c : charset) {
    if (n + 1 >= sizeof(name)) return;  // no charset is named so long: UTF-8
    if (c == '"' || c == '\'' || c <= ' ') continue;
    name[n++] = c;
  }
  name[n] = 0;
  if (n == 0) return;
  // UTF-8 and its subsets need no converter.
  if (ucnv_compareNames(name, "utf-8") == 0 || ucnv_compareNames(name, "us-ascii") == 0 ||
      ucnv_compareNames(name, "ascii") == 0) {
    return;
  }
  for (int i = 0; i < cached_count_; ++i) {
    if (ucnv_compareNames(name, cached_[i].name) == 0) {
      table_ = cached_[i].table;
      return;
    }
  }
  UErrorCode e = U_ZERO_ERROR;
  UConverter* conv = ucnv_open(name, &e);
  if (U_FAILURE(e) || conv == nullptr) return;  // unknown: read as UTF-8
  const char* canonical = ucnv_getName(conv, &e);
  if (U_SUCCESS(e) && canonical != nullptr && ucnv_compareNames(canonical, "UTF-8") == 0) {
    ucnv_close(conv);
    return;
  }
  // A single-byte charset whose lower half is ASCII: its upper half as a
  // table, kept for the next parts in it.
  uint32_t upper[128];
  bool ascii = ucnv_getMaxCharSize(conv) == 1;
  for (int b = 0; ascii && b < 0x100; ++b) {
    const char byte = static_cast<char>(b);
    UChar u[4];
    UErrorCode ce = U_ZERO_ERROR;
    ucnv_reset(conv);
    const int32_t len = ucnv_toUChars(conv, u, 4, &byte, 1, &ce);
    const uint32_t cp = U_SUCCESS(ce) && len == 1 ? u[0] : 0xFFFD;
    if (b < 0x80) {
      ascii = cp == static_cast<uint32_t>(b);
    } else {
      upper[b - 0x80] = cp;
    }
  }
  if (ascii) {
    ucnv_close(conv);
    Cached& c = cached_[cached_next_];  // a ring: the oldest goes
    cached_next_ = (cached_next_ + 1) % kCached;
    cached_count_ = std::min(cached_count_ + 1, kCached);
    std::memcpy(c.table, upper, sizeof(upper));
    std::memcpy(c.name, name, n + 1);
    table_ = c.table;
    return;
  }
  ucnv_reset(conv);
  converter_ = conv;
}

bool UnicodeText::Unchanged(absl::string_view text) const noexcept {
  // (A table's charset is ASCII below 0x80, as UTF-8.)
  if (converter_ != nullptr || carry_len_ > 0 || cjk_prev_len_ > 0) return false;
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  return AsciiEnd(p, p + text.size()) == p + text.size();
}

void UnicodeText::Drain(absl::FunctionRef<void(absl::string_view)>& out) noexcept {
  if (out_len_ == 0) return;
  const size_t n = out_len_;
  out_len_ = 0;
  out(absl::string_view(out_, n));
}

void UnicodeText::Put(uint32_t c, absl::FunctionRef<void(absl::string_view)>& out) noexcept {
  char* const at = out_ + out_len_;
  const size_t n = FoldCodePoint(c, at);
  if (n == 0) return;  // invisible: an open run goes on through it
  // One character of 3 or 4 bytes that pairs (the fold may change it:
  // NFKC makes half-width Katakana full-width).
  const unsigned char lead = static_cast<unsigned char>(at[0]);
  if ((n == 3 && lead >= 0xE0 && lead < 0xF0) || (n == 4 && lead >= 0xF0)) {
    const uint32_t folded = DecodeSequence(reinterpret_cast<const unsigned char*>(at), n);
    if (Paired(folded)) {
      char ch[4];
      std::memcpy(ch, at, n);
      if (cjk_prev_len_ > 0) {  // " " previous, this: the pair
        out_[out_len_] = ' ';
        std::memcpy(out_ + out_len_ + 1, cjk_prev_, cjk_prev_len_);
        std::memcpy(out_ + out_len_ + 1 + cjk_prev_len_, ch, n);
        out_len_ += 1 + cjk_prev_len_ + n;
        cjk_lone_ = false;
      } else {  // a run starts: wait for its second character
        cjk_lone_ = true;
      }
      std::memcpy(cjk_prev_, ch, n);
      cjk_prev_len_ = n;
      if (out_len_ >= kOut) Drain(out);
      return;
    }
  }
  if (cjk_prev_len_ > 0) {  // the fold is not paired: the run ends before it
    char folded[kMaxFold];
    std::memcpy(folded, at, n);
    EndRun();
    std::memcpy(out_ + out_len_, folded, n);
  }
  out_len_ += n;
  if (out_len_ >= kOut) Drain(out);
}

void UnicodeText::EndRun() noexcept {
  if (cjk_prev_len_ == 0) return;
  out_[out_len_++] = ' ';
  if (cjk_lone_) {
    std::memcpy(out_ + out_len_, cjk_prev_, cjk_prev_len_);
    out_len_ += cjk_prev_len_;
    out_[out_len_++] = ' ';
  }
  cjk_prev_len_ = 0;
  cjk_lone_ = false;
}

void UnicodeText::PutAscii(const unsigned char* p, const unsigned char* end,
                           absl::FunctionRef<void(absl::string_view)>& out) noexcept {
  if (p < end && cjk_prev_len_ > 0) {
    EndRun();
    if (out_len_ >= kOut) Drain(out);
  }
  while (p < end) {
    const size_t take = std::min(static_cast<size_t>(end - p), kOut - out_len_);
    std::memcpy(out_ + out_len_, p, take);
    out_len_ += take;
    p += take;
    if (out_len_ >= kOut) Drain(out);
  }
}

void UnicodeText::Fold(absl::string_view text, bool end_of_part,
                       absl::FunctionRef<void(absl::string_view)> out) noexcept {
  if (converter_ != nullptr) {
    FoldConverted(text, end_of_part, out);
  } else if (table_ != nullptr) {
    FoldTable(text, out);
  } else {
    FoldUtf8(text, end_of_part, out);
  }
  if (end_of_part) EndRun();
  Drain(out);
}

void UnicodeText::FoldTable(absl::string_view text,
                            absl::FunctionRef<void(absl::string_view)>& out) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* const end = p + text.size();
  while (p < end) {
    const unsigned char* q = AsciiEnd(p, end);
    PutAscii(p, q, out);
    p = q;
    if (p == end) break;
    Put(table_[*p++ - 0x80], out);
  }
}

void UnicodeText::FoldUtf8(absl::string_view text, bool end_of_part,
                           absl::FunctionRef<void(absl::string_view)>& out) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* const end = p + text.size();
  // A sequence cut by the last call: completed from this one's bytes.
  while (carry_len_ > 0) {
    const unsigned char lead = static_cast<unsigned char>(carry_[0]);
    const size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
    while (carry_len_ < need && p < end && (*p & 0xC0) == 0x80) carry_[carry_len_++] = *p++;
    if (carry_len_ < need && p == end && !end_of_part) return;  // still cut
    if (carry_len_ == need) {
      Put(DecodeSequence(reinterpret_cast<const unsigned char*>(carry_), need), out);
    } else {  // broken: its bytes as they are
      EndRun();
      std::memcpy(out_ + out_len_, carry_, carry_len_);
      out_len_ += carry_len_;
    }
    carry_len_ = 0;
  }
  while (p < end) {
    // ASCII runs as they are.
    const unsigned char* q = AsciiEnd(p, end);
    PutAscii(p, q, out);
    p = q;
    if (p == end) break;
    const unsigned char lead = *p;
    size_t len = lead >= 0xC2 && lead <= 0xDF   ? 2
                 : lead >= 0xE0 && lead <= 0xEF ? 3
                 : lead >= 0xF0 && lead <= 0xF4 ? 4
                                                : 0;
    size_t have = 1;
    while (len > 0 && have < len && p + have < end && (p[have] & 0xC0) == 0x80) ++have;
    if (len > 0 && have < len && p + have == end && !end_of_part) {
      std::memcpy(carry_, p, have);  // cut by the end of this call
      carry_len_ = have;
      return;
    }
    if (len == 0 || have < len) {  // not UTF-8: the byte as it is
      EndRun();
      out_[out_len_++] = static_cast<char>(lead);
      ++p;
      if (out_len_ >= kOut) Drain(out);
      continue;
    }
    Put(DecodeSequence(p, len), out);
    p += len;
  }
}

void UnicodeText::FoldConverted(absl::string_view text, bool end_of_part,
                                absl::FunctionRef<void(absl::string_view)>& out) noexcept {
  auto* conv = static_cast<UConverter*>(converter_);
  const char* src = text.data();
  const char* const src_end = src + text.size();
  UChar buf[1024];
  for (;;) {
    UChar* t = buf;
    UErrorCode e = U_ZERO_ERROR;
    ucnv_toUnicode(conv, &t, buf + 1024, &src, src_end, nullptr, end_of_part, &e);
    for (UChar* u = buf; u < t; ++u) {
      const UChar c = *u;
      if (U16_IS_LEAD(c)) {
        high_surrogate_ = c;
        continue;
      }
      if (U16_IS_TRAIL(c) && high_surrogate_ != 0) {
        Put(static_cast<uint32_t>(U16_GET_SUPPLEMENTARY(high_surrogate_, c)), out);
      } else {
        Put(c, out);
      }
      high_surrogate_ = 0;
    }
    if (e != U_BUFFER_OVERFLOW_ERROR) break;
  }
}

}  // namespace sluice
