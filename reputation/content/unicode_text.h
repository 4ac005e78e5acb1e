// UnicodeText: a text part's bytes as a reader sees them, for the body
// normaliser (body_normalizer.h). Bulk mailers bust content hashes with
// characters a reader does not see or cannot tell apart; this stage,
// between transfer decoding and the tokenizer, undoes that:
//
//   charset      a part that declares a charset other than UTF-8 or ASCII
//                (Content-Type charset=: ISO-8859-*, windows-125*, KOI8-R,
//                GB2312, Big5, Shift_JIS, ISO-2022-JP, ...) is decoded to
//                Unicode with ICU's converters; an unknown charset is read
//                as UTF-8. Undeclared bytes that are not UTF-8 pass as
//                they are (a copy's bytes are the template's).
//   invisible    default-ignorable code points are dropped (zero-width
//                space, joiners, soft hyphen, word joiner, BOM, variation
//                selectors, bidi controls, tags)
//   spaces       other space separators (no-break, en/em, ideographic)
//                and punctuation outside ASCII (curly quotes, dashes,
//                ellipses, after NFKC) become an ASCII space
//   NFKC         compatibility forms fold and case folds (ICU's NFKC_Casefold:
//                fullwidth, ligatures, circled and mathematical letters)
//   accents      diacritics dropped from Latin, Greek and Cyrillic letters,
//                whether written on the letter (é, ï, ё) or after it as a
//                combining mark (e + U+0301): bulk mailers sprinkle accents
//                over a copy's letters, and mailers differ in NFC and NFD
//                (the vowel signs of Indic, Arabic and Hebrew writing stay)
//   look-alikes  a letter whose UTS #39 confusable skeleton (ICU uspoof)
//                is ASCII becomes that ASCII (Cyrillic а е о р с х,
//                Greek ο, ...); ASCII itself never changes, so a word
//                typed in ASCII and its look-alike copy are the same
//                token, and other scripts keep their letters
//   CJK          Chinese and Japanese are written without spaces: a run of
//                Han, Hiragana or Katakana (after the folds) becomes its
//                overlapping pairs of characters, space-separated ("ABCD"
//                -> "AB BC CD", a lone "A" stays "A"), as search engines
//                index them. Before this a sentence was one token longer
//                than the tokenizer keeps, and such a message had no
//                words. Korean separates its words and is left as it is.
//                (Written as HTML entities, each character folds alone
//                and joins its neighbours: not paired.)
//
// FoldCodePoint is memoised for the Basic Multilingual Plane in a
// process-wide table filled on first use (atomics; 512 KiB of address
// space, touched only where used); other planes ask ICU each time.
// ASCII-only text in a UTF-8 part costs one scan for a high bit.
//
// Thread safety: FoldCodePoint is thread-safe. An instance is not: one per
// normaliser.
#ifndef SLUICE_REPUTATION_CONTENT_UNICODE_TEXT_H_
#define SLUICE_REPUTATION_CONTENT_UNICODE_TEXT_H_

#include <cstddef>
#include <cstdint>

#include "absl/functional/function_ref.h"
#include "absl/strings/string_view.h"

namespace sluice {

class UnicodeText {
 public:
  // Bytes FoldCodePoint may write.
  static constexpr size_t kMaxFold = 64;
  // Writes code point c as a reader sees it (above) to `out` as UTF-8 and
  // returns its length: 0 for an invisible one. ASCII is written as is.
  // Not a code point (> 0x10FFFF, a surrogate): a space.
  static size_t FoldCodePoint(uint32_t c, char* out) noexcept;

  UnicodeText();
  ~UnicodeText();
  UnicodeText(const UnicodeText&) = delete;
  UnicodeText& operator=(const UnicodeText&) = delete;

  // A new text part in `charset` (the Content-Type parameter; "" for
  // none). Forgets what the previous part left.
  void StartPart(absl::string_view charset) noexcept;
  // Whether `text` can go to the tokenizer as it is: a UTF-8 part, nothing
  // carried over, no byte >= 0x80.
  bool Unchanged(absl::string_view text) const noexcept;
  // Folds the next bytes of the part; `out` gets the result in pieces
  // (each with 16 readable bytes past its end). With `end_of_part`, what
  // waits for more bytes (a cut sequence) is flushed.
  void Fold(absl::string_view text, bool end_of_part,
            absl::FunctionRef<void(absl::string_view)> out) noexcept;
  // Whether bytes wait for the rest of their sequence, or a CJK run for
  // its end.
  bool pending() const noexcept {
    return carry_len_ > 0 || converter_ != nullptr || cjk_prev_len_ > 0;
  }
  // Whether code point c (folded) is written without spaces between words
  // and goes in pairs (CJK above).
  static bool Paired(uint32_t c) noexcept;

 private:
  // Appends c folded; hands out the buffer when it is nearly full.
  void Put(uint32_t c, absl::FunctionRef<void(absl::string_view)>& out) noexcept;
  void Drain(absl::FunctionRef<void(absl::string_view)>& out) noexcept;
  // Appends bytes that pass as they are (ASCII).
  void PutAscii(const unsigned char* p, const unsigned char* end,
                absl::FunctionRef<void(absl::string_view)>& out) noexcept;
  void FoldUtf8(absl::string_view text, bool end_of_part,
                absl::FunctionRef<void(absl::string_view)>& out) noexcept;
  void FoldConverted(absl::string_view text, bool end_of_part,
                     absl::FunctionRef<void(absl::string_view)>& out) noexcept;

  void FoldTable(absl::string_view text, absl::FunctionRef<void(absl::string_view)>& out) noexcept;
  // Ends an open CJK run: a lone character goes out alone, then a space.
  void EndRun() noexcept;

  char cjk_prev_[4];         // the run's last character (UTF-8), not yet paired
  size_t cjk_prev_len_ = 0;  // 0: no run open
  bool cjk_lone_ = false;    // the run has one character, not yet written

  // A single-byte charset (ISO-8859-*, windows-125*, KOI8-*) is read
  // through a table of its upper half (ASCII is ASCII in all of them),
  // kept for the next parts that name it; others through an ICU converter.
  void* converter_ = nullptr;        // UConverter*, null for UTF-8 and tables
  const uint32_t* table_ = nullptr;  // code points of bytes 0x80-0xFF, in cached_
  struct Cached {
    char name[48];
    uint32_t table[128];
  };
  static constexpr int kCached = 4;  // mail mixes a few: ISO-8859-1, windows-1252, ...
  Cached cached_[kCached];
  int cached_count_ = 0;
  int cached_next_ = 0;
  char carry_[4];  // a UTF-8 sequence cut by the end of a call
  size_t carry_len_ = 0;
  uint16_t high_surrogate_ = 0;  // a converter's output cut inside a pair
  static constexpr size_t kOut = 4096;
  char out_[kOut + kMaxFold + 16];
  size_t out_len_ = 0;
};

}  // namespace sluice

#endif  // SLUICE_REPUTATION_CONTENT_UNICODE_TEXT_H_
