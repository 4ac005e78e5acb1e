// The normaliser's HTML scanner: tags and entities byte by byte, block
// tags as separators, style and script skipped, links (href/src) handed to
// the URL-host rule, markup of other tags reduced to its shape.
#include <algorithm>
#include <atomic>
#include <cstring>

#include "reputation/content/body_normalizer.h"
#include "reputation/content/internal/normalizer_scan.h"
#include "reputation/content/unicode_text.h"

namespace sluice {

namespace {

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

}  // namespace

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
        } else if (e == "shy" || e == "zwnj" || e == "zwj" || e == "lrm" || e == "rlm" ||
                   e == "ZeroWidthSpace" || e == "NoBreak" || e == "InvisibleTimes" ||
                   e == "InvisibleComma" || e == "ic" || e == "it") {
          return;  // invisible: nothing (as UnicodeText drops their code points)
        } else {
          cp = ' ';  // &nbsp; and the rest: a separator
        }
        if (skip_until_close_ != 0) return;
        // As the text's own characters are (UnicodeText): an entity is
        // no way around the folds.
        char folded[UnicodeText::kMaxFold];
        const size_t n = UnicodeText::FoldCodePoint(cp, folded);
        for (size_t i = 0; i < n; ++i) TextByte(static_cast<unsigned char>(folded[i]));
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

}  // namespace sluice
