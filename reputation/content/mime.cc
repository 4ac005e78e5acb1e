// The normaliser's MIME layer: headers and parts, boundaries, the
// quoted-printable and base64 transfer decodings, and which parts are
// read as text or HTML. Decoded text goes on to the tokenizer (Text) or
// the HTML scanner (HtmlByte).
#include <algorithm>
#include <atomic>
#include <cstring>

#include "reputation/content/body_normalizer.h"
#include "reputation/content/internal/normalizer_scan.h"
#include "reputation/content/unicode_text.h"

namespace sluice {

namespace {

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

}  // namespace

BodyNormalizer::BodyNormalizer() : BodyNormalizer(Options()) {}
BodyNormalizer::BodyNormalizer(const Options& options)
    : options_(options), unicode_(std::make_unique<UnicodeText>()) {
  Reset(nullptr);
}

BodyNormalizer::~BodyNormalizer() = default;

void BodyNormalizer::Reset(TokenSink* sink) noexcept {
  sink_ = sink;
  unicode_->StartPart("");
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
  hidden_depth_ = 0;
  background_depth_ = 0;
  hidden_class_count_ = 0;
  style_len_ = 0;
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
  std::fill(std::begin(batch_breaks_), std::end(batch_breaks_), 0);
  blank_line_ = false;
  lead_ = kLeadBlank;
  rule_count_ = 0;
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
    // A last line without its line end: whole (a closing boundary there
    // still closes), but no line end is added to its text (a blank one
    // would end a paragraph that base64 text ending alike does not).
    last_line_ = true;
    OnLine(absl::string_view(line_, line_len_), true);
    last_line_ = false;
    line_len_ = 0;
  }
  FlushPending(/*end_of_part=*/true);
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
    const absl::string_view cs = ParameterValue(v, "charset");
    next_charset_len_ = std::min(cs.size(), sizeof(next_charset_));
    Copy(next_charset_, cs.data(), next_charset_len_);
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
  hidden_depth_ = 0;
  background_depth_ = 0;
  style_len_ = 0;
  unicode_->StartPart(kind_ == PartKind::kPlain || kind_ == PartKind::kHtml
                          ? absl::string_view(next_charset_, next_charset_len_)
                          : absl::string_view());
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
  next_charset_len_ = 0;
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
      FlushPending(/*end_of_part=*/true);
      Newline();
      ParagraphEnd();
      blank_line_ = false;
      lead_ = kLeadBlank;
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
      if (complete && !last_line_) Text("\n");
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
      if (complete && !soft && !last_line_) PendByte('\n');
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

void BodyNormalizer::FlushPending(bool end_of_part) noexcept {
  const size_t n = pending_len_;
  pending_len_ = 0;
  if (n > 0) Text(absl::string_view(pending_, n));
  if (end_of_part && unicode_->pending()) {
    unicode_->Fold(absl::string_view(), /*end_of_part=*/true,
                   [this](absl::string_view t) { Tokenize(t); });
  }
}

}  // namespace sluice
