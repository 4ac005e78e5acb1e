// BodyNormalizer: turns a raw RFC 5322 message into the token stream that
// content fingerprints are computed from, in one streaming pass.
//
// What it does, in order, on bytes fed in chunks of any size:
//   1. MIME: parses the top-level and part headers (Content-Type with its
//      boundary, Content-Transfer-Encoding), follows multipart nesting (up
//      to 8 levels), and keeps only text/plain and text/html parts (a
//      message without MIME headers is text/plain). A part sent as
//      application/octet-stream whose file name says it is a web page or
//      text (.htm, .html, .shtml, .xhtml; .txt), as bulk mailers and
//      phishing kits attach them, is read as that.
//   2. Transfer decoding: quoted-printable (soft breaks joined) and base64
//      (whitespace and garbage skipped, broken tails dropped); then text as
//      a reader sees it (unicode_text.h): the part's charset decoded to
//      UTF-8, invisible code points dropped, NFKC case folding, ASCII
//      look-alikes made ASCII, runs of Chinese and Japanese characters cut
//      into overlapping pairs.
//   3. HTML (text/html parts): tags and comments removed, block tags become
//      line breaks, images and form fields end a word, inline and unknown
//      tags join the text around them ("Vi<b></b>agra" is one word, as a
//      reader sees it), text a reader does not see dropped (elements hidden by
//      display:none, visibility:hidden, a font of no size, no opacity,
//      off-screen positions, text coloured (nearly) like its background, the hidden
//      attribute, or a class a <style> block's rule hides that way),
//      entities decoded (&amp; &nbsp; &#NN; &#xHH; ...), and the
//      host of every href/src URL kept as a token; the tags before the
//      kFewTokens-th token also go to TokenSink::Markup.
//   4. Tokens: ASCII case folded, whitespace collapsed; URLs reduced to
//      "u:" + their host; e-mail addresses, numbers, tokens that mix letters
//      and digits (tracking ids, coupon codes), tokens longer than 30 bytes,
//      and greeting lines ("Dear John Smith,", "Hi Anna") dropped. An
//      address (name@host.tld) also takes back up to kAddressLeadIn words
//      kept before it (not past a link's host or the previous address):
//      the words that lead up to a recipient's address are the recipient's
//      footer ("this message was sent to", "you are subscribed as"), the
//      same in every copy but absent from the template.
//
// Tokens reach the sink in batches (TokenBatch) of up to 512, in order,
// with where paragraphs ended; where rule lines began (the first line of
// most footers) is kept for rule_lines().
//
// Speed: text is classified 64 bytes at a time into bit masks (separators,
// digits, punctuation, line ends, where a URL may start) and words are cut
// from the masks; with AVX-512 (BW + VBMI, found at start-up) one table
// lookup classifies a block, otherwise SSE2 does it 16 bytes at a time.
// Both give the same tokens (UseWideVectors; tests and the fuzzer compare).
//
// Bounds: memory is fixed (about 14 KiB of state, no allocation per token or
// per chunk after construction); time is linear in the input; at most
// `max_text_bytes` of decoded text are tokenised (the rest is skipped at
// the speed of the MIME scan). Garbage (NUL bytes, broken base64, a body
// of only '<', 50 MB lines) is handled like any other input.
//
// Thread safety: an instance is not thread-safe; use one per thread or per
// message. Different instances share nothing but the choice of vector
// code (UseWideVectors), which is process-wide.
#ifndef SLUICE_REPUTATION_CONTENT_BODY_NORMALIZER_H_
#define SLUICE_REPUTATION_CONTENT_BODY_NORMALIZER_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/strings/string_view.h"

namespace sluice {

class UnicodeText;

// A run of normalised tokens in stream order: token i is lengths[i] bytes,
// each token followed by a NUL (tokens hold no NUL), so `bytes` is the
// token stream as a digest sees it. At least 16 bytes are readable from
// each token's start even for shorter tokens (what follows is unspecified
// past the NUL), so sinks may load a whole vector.
struct TokenBatch {
  const char* bytes = nullptr;
  size_t size = 0;  // all tokens and their NULs
  const uint16_t* lengths = nullptr;
  size_t count = 0;
  // Where paragraphs ended (a block tag in HTML, a blank line in text, a
  // part's boundary): bit i % 64 of breaks[i / 64] for i in [0, count] is
  // set if a paragraph ended before token i (count: after the last one);
  // the bits past count are 0. Null: none known. Sinks that do not need
  // them ignore them.
  const uint64_t* breaks = nullptr;
};

// Receives the normalised tokens: a sink overrides Token (one call per
// token) or Tokens (one call per batch of up to a few hundred, no call per
// token). Tokens and Markup calls arrive in stream order.
class TokenSink {
 public:
  virtual ~TokenSink() = default;
  // One token; the view is valid only during the call, with 16 readable
  // bytes at token.data() (as in TokenBatch).
  virtual void Token(absl::string_view token) noexcept { static_cast<void>(token); }
  // By default, Token for each token of the batch.
  virtual void Tokens(const TokenBatch& batch) noexcept;
  // The markup of an HTML tag with attributes, normalised (see
  // BodyNormalizer::kFewTokens); ignored unless overridden.
  virtual void Markup(absl::string_view markup) noexcept { static_cast<void>(markup); }
};

class BodyNormalizer {
 public:
  struct Options {
    size_t max_text_bytes = 1 << 20;  // decoded text tokenised per message
    bool drop_greetings = true;
  };
  BodyNormalizer();
  explicit BodyNormalizer(const Options& options);
  ~BodyNormalizer();
  BodyNormalizer(const BodyNormalizer&) = delete;
  BodyNormalizer& operator=(const BodyNormalizer&) = delete;

  // Starts a new message whose tokens go to `sink` (not owned).
  void Reset(TokenSink* sink) noexcept;
  // Feeds the next bytes of the raw message (headers and body).
  void Feed(absl::string_view data) noexcept;
  // Ends the message (flushes pending state).
  void Finish() noexcept;

  // While a message has had fewer tokens than this, each opening HTML tag
  // with attributes also goes to TokenSink::Markup as its name and
  // attributes, lower case, without the values that may hold a URL, a path,
  // an address or a query (a link's host is a token already). A message of
  // images and links with a line of text is known by its markup as well;
  // a long message's markup is not looked at (it costs time and says less
  // than its words). 48 rather than 8: a new opening sentence of a dozen
  // words does not push such a message's markup out of its set (the corpus
  // benchmark's "new opening" column: 98.8% -> 99.6%, nothing else worse,
  // the false-positive calibration unchanged).
  static constexpr uint64_t kFewTokens = 48;

  // How many words before an e-mail address are dropped with it (above).
  static constexpr size_t kAddressLeadIn = 5;

  // Whether text is classified 64 bytes at a time with AVX-512 (where the
  // CPU has AVX-512BW and VBMI, found at start-up) rather than with SSE2;
  // the tokens are the same either way. UseWideVectors(false) forces SSE2
  // (to compare the two), true goes back to the best the CPU has. Returns
  // whether AVX-512 is in use after the call. Process-wide: call it while
  // no normaliser runs.
  static bool UseWideVectors(bool use) noexcept;
  // Whether AVX-512 is in use (the Fingerprinter follows the same choice).
  static bool UsesWideVectors() noexcept;

  // Statistics of the current message.
  uint64_t bytes_seen() const { return bytes_seen_; }
  uint64_t text_bytes() const { return text_bytes_; }
  uint64_t tokens() const { return tokens_; }
  int text_parts() const { return text_parts_; }

  // Rule lines: a line of plain text whose first non-blank bytes are four
  // or more ASCII symbols ("-----", "_____", "=====", "*****", the first
  // line of most mailing-list and newsletter footers), and <hr> in HTML.
  // Writes where the current message's last kRuleLines rule lines began,
  // ascending, each as the number of tokens kept before it (a token
  // ordinal: the same however the message was chunked), and returns how
  // many it wrote. The Fingerprinter's tail ends before a footer with it.
  static constexpr int kRuleLines = 8;
  int rule_lines(uint64_t* out) const noexcept;

  // Convenience: normalises a whole message.
  void Normalize(absl::string_view message, TokenSink* sink) noexcept {
    Reset(sink);
    Feed(message);
    Finish();
  }

 private:
  enum class PartKind : uint8_t { kSkip, kPlain, kHtml, kMultipart };
  enum class Encoding : uint8_t { kIdentity, kQuotedPrintable, kBase64 };
  // What an attachment's file name says its bytes are: kHtml or kPlain
  // by the extension, else kSkip.
  static PartKind KindOfFileName(absl::string_view name) noexcept;

  void OnLine(absl::string_view line, bool complete) noexcept;
  void OnHeaderLine(absl::string_view line) noexcept;
  // Bytes that continue the header being collected (a folded line, or the
  // rest of an over-long one); dropped if that header does not matter.
  void ContinueHeader(absl::string_view line) noexcept;
  void EndHeaders() noexcept;
  // The defaults for the next part's headers (a part without MIME
  // headers is text/plain, identity encoded).
  void ClearPartHeaders() noexcept;
  void OnBodyLine(absl::string_view line, bool complete) noexcept;
  void DecodeLine(absl::string_view line, bool complete) noexcept;
  // Decoded text of the current part waits in pending_ and goes to Text a
  // buffer at a time (how text is cut into calls does not change the
  // tokens; long calls let the block walks see long runs).
  void Pend(const char* src, size_t n) noexcept;
  void PendByte(char c) noexcept {
    pending_[pending_len_++] = c;
    if (pending_len_ == kPendingMax) FlushPending();
  }
  // With `end_of_part`, also what the Unicode stage holds for the rest of
  // a sequence.
  void FlushPending(bool end_of_part = false) noexcept;
  // Decoded text of the current part: through the Unicode stage
  // (unicode_), then Tokenize.
  void Text(absl::string_view text) noexcept;
  // Text as the tokenizer takes it (UTF-8, folded), 16 bytes readable
  // past its end.
  void Tokenize(absl::string_view text) noexcept;
  // A rule line begins before the batch's token `index` (<= batch_count_);
  // RuleLine: before the next token kept.
  void RuleLineAt(size_t index) noexcept;
  void RuleLine() noexcept { RuleLineAt(batch_count_); }
  // The rule-line state after plain-text bytes that are not a line end:
  // a run of word bytes [from, to), or one separator byte.
  void LeadBytes(const unsigned char* from, const unsigned char* to) noexcept;
  void LeadByte(unsigned char c) noexcept;
  // A paragraph ends before the next token kept (TokenBatch::breaks).
  void ParagraphEnd() noexcept { ParagraphEndAt(batch_count_); }
  // Before the batch's token `index` (<= batch_count_).
  void ParagraphEndAt(size_t index) noexcept {
    batch_breaks_[index >> 6] |= uint64_t{1} << (index & 63);
  }
  // Clears the paragraph end before token `index`; returns whether there
  // was one.
  bool TakeParagraphEnd(size_t index) noexcept {
    uint64_t& word = batch_breaks_[index >> 6];
    const uint64_t bit = uint64_t{1} << (index & 63);
    const bool was = (word & bit) != 0;
    word &= ~bit;
    return was;
  }
  void TextByte(unsigned char c) noexcept;
  void HtmlByte(unsigned char c) noexcept;
  void EndTag() noexcept;
  // What a tag does (its bytes between '<' and '>'; 16 bytes readable past
  // its end): block tags end the line, style and script hide text, links
  // keep their host.
  void TagEnded(absl::string_view tag) noexcept;
  // What a tag of a known kind (TagKind) does; `links` are the values'
  // offsets of its first "href=" and "src=" (npos: none), or null to find
  // them.
  void TagOfKind(absl::string_view tag, bool closing, int kind, const size_t* links) noexcept;
  // An opening tag (not void) whose attributes hide its text (see
  // html.cc: a hidden attribute, an inline style that hides, a class a
  // style block hides, a colour equal to the background): starts hiding
  // until its end and returns true. Else records a background it sets.
  bool HiddenElement(absl::string_view tag) noexcept;
  // A <style> block's text, kept for StyleRules (bounded).
  void CaptureStyle(const char* p, size_t n) noexcept;
  // Reads the captured style block's rules: the classes they hide.
  void StyleRules() noexcept;
  // Sends the tag's markup to the sink (kFewTokens).
  [[gnu::noinline]] void TagMarkup(absl::string_view tag) noexcept;
  void CharOut(unsigned char c) noexcept;
  void AppendWordByte(unsigned char c) noexcept;
  template <int kVectors, bool kHtml>
  const unsigned char* TextBlocks(const unsigned char* p, const unsigned char* end) noexcept;
  // `paragraphs`: the line ends in the block that end a paragraph.
  // `rules`: where rule lines begin (BlockRuleLines).
  void FastBlock(const char* low, uint64_t sep, uint64_t digit, uint64_t punct, uint64_t nl,
                 uint64_t greet, uint32_t limit, uint64_t paragraphs, uint64_t rules) noexcept;
  // Rule lines in a block of 64 bytes of plain text: bit k for one whose
  // first symbol is byte k. `symbols`: ASCII that is neither alphanumeric
  // nor white space; `blank`: white space but line ends. Carries lead_
  // over blocks; a rule line that began in an earlier block and is
  // complete here is reported at once (RuleLine: no token of its line
  // came yet).
  uint64_t BlockRuleLines(uint64_t symbols, uint64_t nl, uint64_t blank) noexcept;
  // Both set `*kept_out` to the starts of the tokens they kept.
  bool PackBlock(const char* low, uint64_t tok, uint64_t starts, uint64_t ends, uint64_t digit,
                 uint64_t after_nl, uint64_t* kept_out) noexcept;
  void TokenLoop(const char* low, uint64_t starts, uint64_t ends, uint64_t digit_ends,
                 uint64_t after_nl, uint64_t after_mark, uint32_t* gap_out,
                 uint64_t* kept_out) noexcept;
  void AppendBlockRun(const char* low, uint32_t from, uint32_t to, uint64_t digit, uint64_t punct,
                      uint64_t at) noexcept;
  const unsigned char* CopyRun(const unsigned char* p, const unsigned char* end,
                               bool stop_at_amp) noexcept;
  // Ends the word being collected, if any (most separators end none).
  void FlushWord() noexcept {
    if (word_len_ != 0) EndWord();
  }
  void EndWord() noexcept;
  // What ends a word does: a URL becomes its host, an e-mail address is
  // dropped, other words are split at punctuation and emitted. `w` is
  // lower case, with 16 readable bytes at w.data() (TokenSink); `flags`
  // the OR of its bytes' classes.
  void WordEnded(absl::string_view w, uint8_t flags, bool overlong) noexcept;
  void WordWithPunctuationEnded(absl::string_view w, uint8_t flags, bool overlong) noexcept;
  void EmitWord(absl::string_view w, bool has_digit) noexcept;
  // `url` has 16 readable bytes past its end (as every word and tag here).
  void EmitUrlHost(absl::string_view url) noexcept;
  // A token that is kept: counted, and batched for the sink.
  void Keep(absl::string_view token) noexcept;
  // Hands the batched tokens to the sink, but for the last `hold` (at most
  // kAddressLeadIn), which stay batched so that an address can still take
  // back the words that lead up to it, wherever a batch ends.
  void FlushTokens(size_t hold = 0) noexcept;
  // An address: up to kAddressLeadIn tokens kept last are taken back, but
  // none from before the previous address, link host or full flush.
  void DropAddressLeadIn() noexcept;
  void Newline() noexcept;
  // What a run of separators does: the word before it ends; a line end
  // starts a new line; , ; ! (a mark) end a greeting.
  void SeparatorRun(bool line_end, bool mark) noexcept;

  Options options_;
  TokenSink* sink_ = nullptr;

  // Line assembly.
  static constexpr size_t kLineMax = 2048;
  char line_[kLineMax];
  size_t line_len_ = 0;
  bool line_overflowed_ = false;

  // MIME state.
  bool in_headers_ = true;
  char header_[1024];
  size_t header_len_ = 0;
  PartKind next_kind_ = PartKind::kPlain;
  Encoding next_encoding_ = Encoding::kIdentity;
  // application/octet-stream, and what its file name (Content-Type's
  // name= or Content-Disposition's filename=) says it is (kSkip: nothing).
  bool next_octet_stream_ = false;
  PartKind next_file_kind_ = PartKind::kSkip;
  char next_boundary_[72];
  size_t next_boundary_len_ = 0;
  static constexpr int kMaxDepth = 8;
  char boundaries_[kMaxDepth][72];
  size_t boundary_len_[kMaxDepth];
  int depth_ = 0;
  PartKind kind_ = PartKind::kPlain;
  Encoding encoding_ = Encoding::kIdentity;
  bool saw_content_type_ = false;

  // The next part's charset (Content-Type charset=).
  char next_charset_[48];
  size_t next_charset_len_ = 0;
  // Charset decoding and the Unicode folds (unicode_text.h), between the
  // transfer decoding and the tokenizer.
  std::unique_ptr<UnicodeText> unicode_;

  // Decoded text not yet tokenised (see Pend).
  static constexpr size_t kPendingMax = 4096;
  char pending_[kPendingMax];
  size_t pending_len_ = 0;

  // Quoted-printable: an escape cut by an over-long line's cut.
  char qp_carry_[2];
  size_t qp_carry_len_ = 0;

  // Base64 decoder state.
  uint32_t b64_acc_ = 0;
  int b64_bits_ = 0;

  // HTML state.
  enum class Html : uint8_t { kText, kTag, kComment, kEntity };
  Html html_ = Html::kText;
  static constexpr size_t kTagMax = 512;
  char tag_[kTagMax + 16];  // 16 bytes of slack for whole-vector loads
  size_t tag_len_ = 0;
  int comment_dashes_ = 0;
  int skip_until_close_ = 0;  // inside <style> (1) or <script> (2)
  char entity_[24];
  size_t entity_len_ = 0;
  // Invisible text: the element being hidden (its name) and how deep its
  // own tags nest; the backgrounds open elements set (for text coloured
  // like its background); the classes style blocks hide.
  int hidden_depth_ = 0;
  char hidden_name_[16];
  size_t hidden_name_len_ = 0;
  struct Background {
    char name[16];
    uint8_t name_len;
    char color[8];  // "#rrggbb"
  };
  static constexpr int kMaxBackgrounds = 8;
  Background backgrounds_[kMaxBackgrounds];
  int background_depth_ = 0;
  static constexpr int kMaxHiddenClasses = 16;
  char hidden_classes_[kMaxHiddenClasses][32];
  uint8_t hidden_class_len_[kMaxHiddenClasses];
  int hidden_class_count_ = 0;
  char style_[2048];
  size_t style_len_ = 0;

  // Tokenizer state.
  static constexpr size_t kWordMax = 256;
  char word_[kWordMax + 16] = {};  // 16 bytes of slack for whole-vector stores
  size_t word_len_ = 0;
  bool word_overlong_ = false;
  uint8_t word_flags_ = 0;  // OR of the word's byte classes (digit, '@', punctuation)
  bool line_start_ = true;
  int greeting_left_ = 0;  // words of a greeting line still to drop

  // Tokens not yet handed to the sink (TokenBatch), each followed by a NUL.
  static constexpr size_t kBatchBytes = 4096;
  static constexpr size_t kBatchTokens = 512;
  char batch_[kBatchBytes + 32];  // 32 bytes of slack for whole-vector stores
  size_t batch_len_ = 0;
  uint16_t batch_lengths_[kBatchTokens];
  size_t batch_count_ = 0;
  // Paragraph ends in the batch (TokenBatch::breaks): bits 0 to
  // batch_count_, none past it.
  uint64_t batch_breaks_[kBatchTokens / 64 + 1] = {};
  // In plain text: only white space since the last line end (a line end
  // now ends a paragraph).
  bool blank_line_ = false;
  // Finish is passing on a last line that had no line end.
  bool last_line_ = false;
  // In plain text, the current line's lead: kLeadBlank while only blanks
  // since its start, kLeadBlank + n after n symbols (n < 4) right after
  // them, kLeadDone once the line is or is not a rule line.
  static constexpr uint8_t kLeadDone = 0, kLeadBlank = 1;
  uint8_t lead_ = kLeadBlank;
  // Token ordinals of the last rule lines (rule_lines), a ring.
  uint64_t rule_at_[kRuleLines] = {};
  uint64_t rule_count_ = 0;

  uint64_t bytes_seen_ = 0;
  uint64_t text_bytes_ = 0;
  uint64_t tokens_ = 0;
  // tokens_ after the last address, link host or full flush: an address
  // takes back no token kept before it (so never more than a flush holds).
  uint64_t lead_in_floor_ = 0;
  int text_parts_ = 0;
};

}  // namespace sluice

#endif  // SLUICE_REPUTATION_CONTENT_BODY_NORMALIZER_H_
