// The normaliser's tokenizer: text in 64-byte blocks classified with SSE2
// or AVX-512 (chosen at start-up by UseWideVectors), words cut and
// lower-cased in bulk, and what ends a word. The hot loop lives here so the
// compiler inlines it whole; MIME (mime.cc), HTML (html.cc) and the token
// rules (tokens.cc) call into it.
#include "reputation/content/body_normalizer.h"

#include <algorithm>
#include <atomic>
#include <cstring>

#include "reputation/content/internal/normalizer_scan.h"
#include "reputation/content/unicode_text.h"

namespace sluice {

bool BodyNormalizer::UseWideVectors(bool use) noexcept {
#if defined(SLUICE_HAVE_AVX512)
  // What of AVX-512 the CPU has: BW (byte masks), VBMI (byte-table
  // lookups), VBMI2 (byte compress).
  const internal::Avx512 cpu = use ? internal::CpuVectors() : internal::Avx512();
  const bool bw = cpu.bw, vbmi = cpu.vbmi, vbmi2 = cpu.vbmi2;
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
                                      uint64_t nl, uint64_t greet, uint32_t limit,
                                      uint64_t paragraphs, uint64_t rules) noexcept {
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
  const size_t first = batch_count_;  // the block's first token
  uint64_t kept_starts = 0;
  if (starts != 0 && PackBlock(low, tok, starts, ends, digit, after_nl, &kept_starts)) {
    gap = 64 - static_cast<uint32_t>(__builtin_clzll(ends));
  } else {
    TokenLoop(low, starts, ends, digit_ends, after_nl, after_mark, &gap, &kept_starts);
  }
  // Paragraph ends and rule lines (after line ends, all after the word
  // carried in): before the block's tokens that start after them.
  const auto index_of = [&](uint64_t mask) {
    const uint32_t k = static_cast<uint32_t>(__builtin_ctzll(mask));
    return first + static_cast<size_t>(__builtin_popcountll(kept_starts & Bits(0, k)));
  };
  for (; paragraphs != 0; paragraphs &= paragraphs - 1) ParagraphEndAt(index_of(paragraphs));
  for (; rules != 0; rules &= rules - 1) RuleLineAt(index_of(rules));
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
                                      uint64_t digit, uint64_t after_nl,
                                      uint64_t* kept_out) noexcept {
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
  *kept_out = kept_starts;
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
                                      uint32_t* gap_out, uint64_t* kept_out) noexcept {
  // The loop keeps its state in registers (stores through a char pointer
  // would make the compiler reload every member after each token).
  uint32_t gap = *gap_out;
  uint64_t kept = 0;  // the starts of the tokens kept
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
      EmitWord(token, has_digit);  // may keep the token (the block made room: no flush)
      line_start = line_start_;
      greeting_left = greeting_left_;
      out = batch_ + batch_len_;
      kept |= static_cast<uint64_t>(batch_lengths_ + batch_count_ != lengths) << s;
      lengths = batch_lengths_ + batch_count_;
    } else if (line_start = false, !has_digit && token.size() <= 30) {
      kept |= uint64_t{1} << s;
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
  *kept_out = kept;
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
    // Plain text: a line end after a blank line (white space only, from
    // the line end before it, maybe in an earlier block: blank_line_)
    // ends a paragraph: bit k of `paragraphs` for one ending with byte k.
    // A line's start plus the run of white space after it lands on that
    // run's end (the carry).
    uint64_t paragraphs = 0, rules = 0;
    if (!kHtml) {
      const uint64_t blank = m.space & ~nl;
      const uint64_t starts = (nl << 1) | static_cast<uint64_t>(blank_line_);
      paragraphs = ((starts + blank) & ~blank) & nl;
      // After the block: white space only since its last line end.
      blank_line_ = nl != 0 ? (~m.space >> (63 - __builtin_clzll(nl))) <= 1
                            : blank_line_ && m.space == ~uint64_t{0};
      rules = BlockRuleLines((sep | punct) & ~m.space, nl, blank);
    }
    const uint64_t before_limit = Bits(0, limit);
    if ((special & before_limit) == 0 && (sep & before_limit) != 0) {
      // No URL, no address: every token of the block is decided from the
      // masks (FastBlock); only the words at its two ends use the buffer.
      FastBlock(low, sep, digit, punct, nl, greet, limit, paragraphs, rules);
      p += limit;
      if (limit < kBytes) return p;
      continue;
    }
    if (limit < 64) sep |= ~uint64_t{0} << limit;  // no word goes past the limit
    uint32_t pos = 0;
    while (pos < limit) {
      if ((rules >> pos) & 1) RuleLine();  // before the word or run it begins
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
      if (paragraphs & range) ParagraphEnd();  // the words before it are out
      if (rules & range) RuleLine();
      pos += run;
    }
    p += limit;
    if (limit < kBytes) return p;
  }
#endif
  return p;
}

void BodyNormalizer::Text(absl::string_view text) noexcept {
  if (unicode_->Unchanged(text)) {  // ASCII in a UTF-8 part: as it is
    Tokenize(text);
    return;
  }
  unicode_->Fold(text, /*end_of_part=*/false, [this](absl::string_view t) { Tokenize(t); });
}

void BodyNormalizer::Tokenize(absl::string_view text) noexcept {
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
        if ((skip_until_close_ | hidden_depth_) == 0) {
          if (*p != '<') {  // (no text between two tags: nothing to classify)
            // Wide blocks only where they are cheap (AVX-512): text between
            // tags is short, and a block is classified whole.
            if (wide) p = TextBlocks<4, true>(p, end);
            if (!wide || end - p < 64) p = TextBlocks<1, true>(p, end);
            p = CopyRun(p, end, true);  // what is left (< 16 bytes)
          }
        } else {  // inside <style>, <script> or hidden text: only '<' and '&' matter
          const unsigned char* const from = p;
          p = reinterpret_cast<const unsigned char*>(FindTagOrEntity(
              reinterpret_cast<const char*>(p), reinterpret_cast<const char*>(end)));
          if (skip_until_close_ == 1) {
            CaptureStyle(reinterpret_cast<const char*>(from), static_cast<size_t>(p - from));
          }
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
  while (p < end) {  // what is left (< 64 bytes)
    const unsigned char* const run = p;
    p = CopyRun(p, end, false);  // a run of word bytes, lower-cased
    blank_line_ &= p == run;
    LeadBytes(run, p);
    if (p == end) break;
    const unsigned char c = *p++;
    if (c == '\n') {  // after a blank line: a paragraph ends (no word is pending)
      if (blank_line_) ParagraphEnd();
      blank_line_ = true;
      lead_ = kLeadBlank;
    } else {
      if (c > ' ') blank_line_ = false;
      LeadByte(c);
    }
    TextByte(c);
  }
}

uint64_t BodyNormalizer::BlockRuleLines(uint64_t symbols, uint64_t nl, uint64_t blank) noexcept {
  uint64_t starts = nl << 1;  // a line starts after each line end
  if (lead_ == kLeadBlank) {
    starts |= 1;  // the line before goes on with only blanks so far
  } else if (lead_ != kLeadDone) {
    // Symbols the line began with in the blocks before: the rest here?
    const uint32_t need = 4 - static_cast<uint32_t>(lead_ - kLeadBlank);
    if ((symbols & Bits(0, need)) == Bits(0, need)) RuleLine();
  }
  // Each line's first byte that is not blank (the carry of its start runs
  // through the blanks after it), if not its end; a rule line's has four
  // symbols from it on.
  const uint64_t first = ((starts + blank) & ~blank) & ~nl;
  const uint64_t rules = first & symbols & (symbols >> 1) & (symbols >> 2) & (symbols >> 3);
  // The lead after the block: that of its last line.
  if (nl == 0 && lead_ != kLeadBlank) {
    lead_ = kLeadDone;  // a line that began before, decided above or before
    return rules;
  }
  const uint32_t from = nl == 0 ? 0 : 64 - static_cast<uint32_t>(__builtin_clzll(nl));
  const uint64_t shown = from == 64 ? 0 : ~blank & (~uint64_t{0} << from);
  if (shown == 0) {
    lead_ = kLeadBlank;
  } else {
    const uint32_t f = static_cast<uint32_t>(__builtin_ctzll(shown));
    // Fewer than four symbols up to the block's end: maybe a rule line.
    lead_ = f > 60 && (symbols >> f) == (~uint64_t{0} >> f)
                ? static_cast<uint8_t>(kLeadBlank + (64 - f))
                : kLeadDone;
  }
  return rules;
}

void BodyNormalizer::LeadBytes(const unsigned char* from, const unsigned char* to) noexcept {
  while (from < to && lead_ != kLeadDone) LeadByte(*from++);
}

void BodyNormalizer::LeadByte(unsigned char c) noexcept {
  if (lead_ == kLeadDone) return;
  if (c <= ' ') {  // blanks before the symbols only (a line end is the caller's)
    if (lead_ != kLeadBlank) lead_ = kLeadDone;
    return;
  }
  // A symbol: a separator or punctuation that is not white space, as the
  // block masks' `symbols`.
  if ((kClasses.flags[c] & (kSeparatorClass | kPunctClass)) == 0) {
    lead_ = kLeadDone;
    return;
  }
  if (++lead_ == kLeadBlank + 4) {
    lead_ = kLeadDone;
    RuleLine();
  }
}

void BodyNormalizer::RuleLineAt(size_t index) noexcept {
  const uint64_t at = tokens_ - batch_count_ + index;
  if (rule_count_ > 0 && rule_at_[(rule_count_ - 1) % kRuleLines] == at) return;
  rule_at_[rule_count_++ % kRuleLines] = at;
}

int BodyNormalizer::rule_lines(uint64_t* out) const noexcept {
  const uint64_t n = std::min<uint64_t>(rule_count_, kRuleLines);
  for (uint64_t i = 0; i < n; ++i) out[i] = rule_at_[(rule_count_ - n + i) % kRuleLines];
  return static_cast<int>(n);
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

}  // namespace sluice
