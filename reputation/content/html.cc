// The normaliser's HTML scanner: tags and entities byte by byte, block
// tags as separators, style and script skipped, links (href/src) handed to
// the URL-host rule, markup of other tags reduced to its shape.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>

#include "reputation/content/body_normalizer.h"
#include "reputation/content/internal/html_entities.h"
#include "reputation/content/internal/normalizer_scan.h"
#include "reputation/content/unicode_text.h"

namespace sluice {

namespace {

// A byte that makes an attribute value a possible URL, path, address or
// query (left out of the markup: a link's host is a token already).
constexpr bool Locates(unsigned char c) {
  return c == '/' || c == ':' || c == '@' || c == '?' || c == '&' || c == '=';
}

// A tag's name and its attributes, one by one: name and value as written
// (the value without its quotes; `has_value` false for a bare name).
class Attributes {
 public:
  explicit Attributes(absl::string_view tag) : t_(tag) {
    while (i_ < t_.size() && WordByte(t_[i_])) ++i_;
    name_end_ = i_;
  }
  absl::string_view tag_name() const { return t_.substr(0, name_end_); }
  bool Next(absl::string_view* name, absl::string_view* value, bool* has_value) {
    while (i_ < t_.size() && !WordByte(t_[i_])) ++i_;  // spaces, '/' and stray '='
    if (i_ >= t_.size()) return false;
    const size_t from = i_;
    while (i_ < t_.size() && WordByte(t_[i_])) ++i_;
    *name = t_.substr(from, i_ - from);
    *value = absl::string_view();
    *has_value = false;
    size_t j = i_;
    while (j < t_.size() && static_cast<unsigned char>(t_[j]) <= ' ') ++j;
    if (j >= t_.size() || t_[j] != '=') return true;
    *has_value = true;
    i_ = j + 1;
    while (i_ < t_.size() && static_cast<unsigned char>(t_[i_]) <= ' ') ++i_;
    if (i_ < t_.size() && (t_[i_] == '"' || t_[i_] == '\'')) {
      const char q = t_[i_++];
      const size_t v = i_;
      while (i_ < t_.size() && t_[i_] != q) ++i_;
      *value = t_.substr(v, i_ - v);
      if (i_ < t_.size()) ++i_;  // the closing quote
    } else {
      const size_t v = i_;
      while (i_ < t_.size() && static_cast<unsigned char>(t_[i_]) > ' ') ++i_;
      *value = t_.substr(v, i_ - v);
    }
    return true;
  }

 private:
  static bool WordByte(char c) {
    return static_cast<unsigned char>(c) > ' ' && c != '/' && c != '=';
  }
  absl::string_view t_;
  size_t i_ = 0;
  size_t name_end_ = 0;
};

// A tag's markup feature (TokenSink::Markup) written to `out` (room for
// twice the tag's size): its name, then " name" or " name=value" per
// attribute, lower case, without the values that Locates(). Returns the
// length, 0 for a tag without attributes.
size_t MarkupOfTag(absl::string_view tag, char* out) {
  Attributes attrs(tag);
  size_t n = 0;
  auto lower = [&](absl::string_view v) {
    for (char c : v) out[n++] = static_cast<char>(Lower(static_cast<unsigned char>(c)));
  };
  lower(attrs.tag_name());
  const size_t name_len = n;
  absl::string_view name, value;
  bool has_value;
  while (attrs.Next(&name, &value, &has_value)) {
    out[n++] = ' ';
    lower(name);
    if (!has_value) continue;
    const size_t before = n;
    out[n++] = '=';
    lower(value);
    if (std::any_of(value.begin(), value.end(),
                    [](char c) { return Locates(static_cast<unsigned char>(c)); })) {
      n = before;
    }
  }
  return n > name_len ? n : 0;
}

// ---- Invisible text ---------------------------------------------------------

// The lower-case name of a tag (after an optional '/') in `out` (16 bytes).
size_t TagNameOf(absl::string_view tag, bool closing, char* out) {
  size_t n = 0;
  for (size_t i = closing ? 1 : 0; i < tag.size() && n < 15; ++i) {
    const unsigned char c = static_cast<unsigned char>(tag[i]);
    if (!IsAlnum(c)) break;
    out[n++] = static_cast<char>(Lower(c));
  }
  out[n] = 0;
  return n;
}

bool VoidElement(absl::string_view name) {
  static constexpr absl::string_view kVoid[] = {"br",    "hr",     "img",   "input", "meta",
                                                "link",  "wbr",    "area",  "base",  "col",
                                                "embed", "source", "track", "param"};
  for (absl::string_view v : kVoid) {
    if (name == v) return true;
  }
  return false;
}

// Whether a tag may hide its text at all: it names a style, a class, a
// colour or the hidden attribute ("styl", "clas", "colo", "hidd" in any
// case), 16 positions at a time (16 bytes are readable past a tag).
bool MayHide(absl::string_view tag) {
  if (tag.size() < 6) return false;
  const char* p = tag.data();
  const size_t last = tag.size() - 4;  // the last position a word can start
#if defined(__SSE2__)
  const __m128i case_bit = _mm_set1_epi8(0x20);
  for (size_t i = 0; i <= last; i += 16) {
    auto at = [&](size_t k) {
      return _mm_or_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i + k)), case_bit);
    };
    const __m128i b0 = at(0), b1 = at(1), b2 = at(2), b3 = at(3);
    auto is = [](__m128i v, char c) { return _mm_cmpeq_epi8(v, _mm_set1_epi8(c)); };
    const __m128i style = _mm_and_si128(_mm_and_si128(is(b0, 's'), is(b1, 't')),
                                        _mm_and_si128(is(b2, 'y'), is(b3, 'l')));
    const __m128i clas_colo = _mm_and_si128(
        is(b0, 'c'),
        _mm_or_si128(_mm_and_si128(_mm_and_si128(is(b1, 'l'), is(b2, 'a')), is(b3, 's')),
                     _mm_and_si128(_mm_and_si128(is(b1, 'o'), is(b2, 'l')), is(b3, 'o'))));
    const __m128i hidd = _mm_and_si128(_mm_and_si128(is(b0, 'h'), is(b1, 'i')),
                                       _mm_and_si128(is(b2, 'd'), is(b3, 'd')));
    uint32_t hits = static_cast<uint32_t>(
        _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(style, clas_colo), hidd)));
    if (last - i < 15) hits &= (2u << (last - i)) - 1;  // starts within the tag only
    if (hits != 0) return true;
  }
  return false;
#else
  for (size_t i = 0; i <= last; ++i) {
    uint32_t w;
    std::memcpy(&w, p + i, 4);
    w |= 0x20202020u;  // ASCII letters to lower case (other bytes do not matter here)
    if (w == 0x6c797473u /* styl */ || w == 0x64646968u /* hidd */ || w == 0x73616c63u /* clas */ ||
        w == 0x6f6c6f63u /* colo */) {
      return true;
    }
  }
  return false;
#endif
}

// An attribute's name, any case.
bool NameIs(absl::string_view name, absl::string_view want) {
  return name.size() == want.size() && StartsWithI(name, want);
}

// A colour as "#rrggbb" in `out` (8 bytes), or "" if it is none of the
// forms mailers write (#rgb, #rrggbb, rgb(r,g,b), white, black).
size_t NormalColour(absl::string_view v, char* out) {
  char b[32];
  size_t n = 0;
  for (char c : v) {
    if (static_cast<unsigned char>(c) <= ' ' || c == '"' || c == '\'') continue;
    if (c == ';' || c == '!') break;
    if (n == sizeof(b)) return 0;
    b[n++] = static_cast<char>(Lower(static_cast<unsigned char>(c)));
  }
  const absl::string_view s(b, n);
  auto hex = [&](const char* digits) {
    out[0] = '#';
    std::memcpy(out + 1, digits, 6);
    out[7] = 0;
    return size_t{7};
  };
  if (s == "white") return hex("ffffff");
  if (s == "black") return hex("000000");
  if (!s.empty() && s[0] == '#') {
    for (size_t i = 1; i < s.size(); ++i) {
      if (HexValue(static_cast<unsigned char>(s[i])) < 0) return 0;
    }
    if (s.size() == 4) {
      const char d[6] = {s[1], s[1], s[2], s[2], s[3], s[3]};
      return hex(d);
    }
    if (s.size() == 7) return hex(s.data() + 1);
    return 0;
  }
  if (s.substr(0, 4) == "rgb(") {
    int c[3] = {0, 0, 0}, k = 0;
    bool digit = false;
    for (size_t i = 4; i < s.size() && k < 3; ++i) {
      if (IsDigit(static_cast<unsigned char>(s[i]))) {
        c[k] = std::min(255, c[k] * 10 + (s[i] - '0'));
        digit = true;
      } else if (s[i] == ',' || s[i] == ')') {
        k += digit;
        digit = false;
      } else {
        return 0;  // percentages, alpha: not compared
      }
    }
    if (k != 3) return 0;
    static const char kHex[] = "0123456789abcdef";
    char d[6];
    for (int i = 0; i < 3; ++i) {
      d[2 * i] = kHex[c[i] >> 4];
      d[2 * i + 1] = kHex[c[i] & 15];
    }
    return hex(d);
  }
  return 0;
}

// A CSS declaration list, lower case and without whitespace, in `out`.
size_t CompactCss(absl::string_view css, char* out, size_t cap) {
  size_t n = 0;
  for (char c : css) {
    if (static_cast<unsigned char>(c) <= ' ') continue;
    if (n == cap) break;
    out[n++] = static_cast<char>(Lower(static_cast<unsigned char>(c)));
  }
  return n;
}

// A number at the start of a CSS value and its unit (up to 3 bytes).
bool LeadingNumber(absl::string_view v, double* out, absl::string_view* unit) {
  size_t i = 0;
  const bool minus = i < v.size() && v[i] == '-';
  i += minus;
  double x = 0, scale = 0;
  bool any = false;
  for (; i < v.size(); ++i) {
    const char c = v[i];
    if (IsDigit(static_cast<unsigned char>(c))) {
      any = true;
      if (scale == 0) {
        x = x * 10 + (c - '0');
      } else {
        x += (c - '0') * scale;
        scale /= 10;
      }
    } else if (c == '.' && scale == 0) {
      scale = 0.1;
    } else {
      break;
    }
  }
  if (!any) return false;
  size_t u = i;
  while (u < v.size() && u - i < 3 && ((v[u] >= 'a' && v[u] <= 'z') || v[u] == '%')) ++u;
  *unit = v.substr(i, u - i);
  *out = minus ? -x : x;
  return true;
}

// Whether text of colour `fg` on background `bg` (both NormalColour, or
// empty) is as good as invisible: no channel differs by more than 12 of
// 255 (#f4f4f4 or #fdfefe on white, #0a0a0a on black; mailers use such
// near colours where a filter compares colours for equality). Readable
// faint text (#eeeeee, #dddddd on white) differs by 17 and more.
bool Unreadable(absl::string_view fg, absl::string_view bg) {
  if (fg.size() != 7 || bg.size() != 7) return false;
  auto channel = [](absl::string_view c, size_t i) {
    return HexValue(static_cast<unsigned char>(c[i])) * 16 +
           HexValue(static_cast<unsigned char>(c[i + 1]));
  };
  for (size_t i = 1; i < 7; i += 2) {
    if (std::abs(channel(fg, i) - channel(bg, i)) > 12) return false;
  }
  return true;
}

// Whether a compact colour value draws nothing: transparent, or an alpha
// of (nearly) zero (rgba(r,g,b,0), hsla(...,0), rgb(r g b / 0)).
bool Transparent(absl::string_view v) {
  if (v.substr(0, 11) == "transparent") return true;
  if (v.substr(0, 3) != "rgb" && v.substr(0, 3) != "hsl") return false;
  const size_t close = v.find(')');
  if (close == absl::string_view::npos) return false;
  const absl::string_view args = v.substr(0, close);
  size_t at = args.rfind('/');  // rgb(r g b / alpha)
  if (at == absl::string_view::npos) {
    // Four numbers: the last is the alpha.
    if (std::count(args.begin(), args.end(), ',') != 3) return false;
    at = args.rfind(',');
  }
  double x;
  absl::string_view unit;
  return LeadingNumber(args.substr(at + 1), &x, &unit) && (unit == "%" ? x <= 5 : x <= 0.05);
}

// Whether compact declarations (CompactCss) hide their element's text, in
// one pass over them: display:none, visibility:hidden, a font of (nearly)
// no size, no opacity, a transparent colour, no height or width with the
// overflow hidden, far off screen, or text coloured (nearly) like its
// background (its own, else `background`: the nearest one set around it).
// Its own background, if set, goes to *own_bg (NormalColour; 0 if none).
bool HidingCss(absl::string_view css, absl::string_view background, char* own_bg,
               size_t* own_bg_len) {
  bool overflow_hidden = false, no_extent = false;
  absl::string_view fg_value;
  *own_bg_len = 0;
  for (size_t at = 0; at < css.size();) {
    size_t end = css.find(';', at);
    if (end == absl::string_view::npos) end = css.size();
    const absl::string_view decl = css.substr(at, end - at);
    at = end + 1;
    const size_t colon = decl.find(':');
    if (colon == absl::string_view::npos) continue;
    const absl::string_view prop = decl.substr(0, colon), v = decl.substr(colon + 1);
    double x;
    absl::string_view unit;
    switch (prop.empty() ? 0 : prop[0]) {
      case 'd':
        if (prop == "display" && v.substr(0, 4) == "none") return true;
        break;
      case 'v':
        if (prop == "visibility" && (v.substr(0, 6) == "hidden" || v.substr(0, 8) == "collapse")) {
          return true;
        }
        break;
      case 'f':
        if (prop == "font-size" && LeadingNumber(v, &x, &unit) &&
            (x <= 0 || ((unit == "px" || unit == "pt" || unit.empty()) && x <= 1) ||
             ((unit == "em" || unit == "rem") && x <= 0.1) || (unit == "%" && x <= 10))) {
          return true;
        }
        break;
      case 'o':
        if (prop == "opacity" && LeadingNumber(v, &x, &unit) && x <= 0.05) return true;
        if (prop == "overflow" && v.substr(0, 6) == "hidden") overflow_hidden = true;
        break;
      case 'm':
      case 'h':
      case 'w':
      case 'l':
      case 't':
        if ((prop == "height" || prop == "max-height" || prop == "width" || prop == "max-width") &&
            LeadingNumber(v, &x, &unit) && x <= 1) {
          no_extent = true;
        }
        if ((prop == "left" || prop == "top" || prop == "text-indent" || prop == "margin-left" ||
             prop == "margin-top") &&
            LeadingNumber(v, &x, &unit) && x <= -500) {
          return true;
        }
        break;
      case 'c':
        if (prop == "color") {
          if (Transparent(v)) return true;
          fg_value = v;
        }
        break;
      case 'b':
        if (prop == "background-color" || prop == "background") {
          *own_bg_len = NormalColour(v, own_bg);
        }
        break;
      default:
        break;
    }
  }
  if (overflow_hidden && no_extent) return true;
  if (!fg_value.empty()) {
    char fg[8];
    const size_t nf = NormalColour(fg_value, fg);
    const absl::string_view b =
        *own_bg_len > 0 ? absl::string_view(own_bg, *own_bg_len) : background;
    if (nf > 0 && Unreadable(absl::string_view(fg, nf), b)) return true;
  }
  return false;
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
      } else if ((skip_until_close_ | hidden_depth_) == 0) {
        TextByte(c);
      } else if (skip_until_close_ == 1) {
        const char b = static_cast<char>(c);
        CaptureStyle(&b, 1);
      }
      return;
    case Html::kTag:
      if (tag_len_ == 0 && !(StartsTag(c) || c == '!')) {
        // "a < b" is text, not a tag.
        html_ = Html::kText;
        if ((skip_until_close_ | hidden_depth_) == 0) TextByte('<');
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
        } else if (e == "apos") {
          cp = '\'';
        } else if (e == "ZeroWidthSpace" || e == "NoBreak" || e == "InvisibleTimes" ||
                   e == "InvisibleComma" || e == "ic" || e == "it") {
          return;  // invisible (HTML5's names): nothing, as UnicodeText drops them
        } else {
          // HTML 4.01's names (&eacute; &alpha; &nbsp; &shy; ...): their
          // characters, folded as the text's own are (a Greek look-alike
          // written as an entity is still a look-alike); others a separator.
          cp = internal::NamedEntity(e);
          if (cp == 0) cp = ' ';
        }
        if ((skip_until_close_ | hidden_depth_) != 0) return;
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
      if ((skip_until_close_ | hidden_depth_) == 0) {
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
    // Inside <style> (1) or <script> (2): only its closing tag matters; a
    // style block's rules may hide classes.
    if (closing && kind == skip_until_close_ + 2) {
      if (skip_until_close_ == 1) StyleRules();
      skip_until_close_ = 0;
    }
    return;
  }
  if (kind >= kStyleTag && !closing) {
    skip_until_close_ = kind - 2;
    style_len_ = 0;
    return;
  }
  if (hidden_depth_ > 0) {  // inside a hidden element: only its nesting matters
    char name[16];
    const size_t n = TagNameOf(tag, closing, name);
    if (n == hidden_name_len_ && std::memcmp(name, hidden_name_, n) == 0 &&
        !(tag.size() > 0 && tag.back() == '/')) {
      hidden_depth_ += closing ? -1 : 1;
    }
    return;
  }
  // The word before the tag ends at a block tag or an element that shows
  // something of its own (TagKind), not at an inline or unknown one; a
  // block tag also ends the line (as Newline), without a branch on which
  // block tags come.
  if (kind != kOtherTag) FlushWord();
  const bool block = kind == kBlockTag;
  if (block) {
    ParagraphEnd();
    // <hr>: a rule line.
    if (!closing && tag.size() >= 2 && (tag[0] | 0x20) == 'h' && (tag[1] | 0x20) == 'r' &&
        (tag.size() == 2 || !IsAlnum(static_cast<unsigned char>(tag[2])))) {
      RuleLine();
    }
  }
  line_start_ |= block;
  greeting_left_ &= static_cast<int>(block) - 1;
  if (closing) {  // "</a>": no markup, no link; a background it set ends
    if (background_depth_ > 0) {
      char name[16];
      const size_t n = TagNameOf(tag, true, name);
      const Background& top = backgrounds_[background_depth_ - 1];
      if (n == top.name_len && std::memcmp(name, top.name, n) == 0) --background_depth_;
    }
    return;
  }
  if (MayHide(tag) && HiddenElement(tag)) return;
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

bool BodyNormalizer::HiddenElement(absl::string_view tag) noexcept {
  if (!tag.empty() && tag.back() == '/') return false;  // self-closing: no content to hide
  const absl::string_view background =
      background_depth_ > 0 ? absl::string_view(backgrounds_[background_depth_ - 1].color, 7)
                            : absl::string_view("#ffffff");
  bool hidden = false;
  char own_bg[8];
  size_t own_bg_len = 0;
  Attributes attrs(tag);
  absl::string_view an, value;
  bool has_value;
  while (!hidden && attrs.Next(&an, &value, &has_value)) {
    if (NameIs(an, "hidden")) {
      hidden = true;
    } else if (NameIs(an, "style")) {
      char css[512];
      const absl::string_view c(css, CompactCss(value, css, sizeof(css)));
      size_t bg_len = 0;
      hidden = HidingCss(c, background, own_bg, &bg_len);
      if (bg_len > 0) own_bg_len = bg_len;
    } else if (NameIs(an, "class")) {
      // Any of its classes that a style block hides.
      for (size_t i = 0; i < value.size() && !hidden;) {
        while (i < value.size() && static_cast<unsigned char>(value[i]) <= ' ') ++i;
        size_t j = i;
        while (j < value.size() && static_cast<unsigned char>(value[j]) > ' ') ++j;
        const absl::string_view cls = value.substr(i, j - i);
        for (int k = 0; k < hidden_class_count_ && !hidden; ++k) {
          hidden = cls.size() == hidden_class_len_[k] &&
                   StartsWithI(cls, absl::string_view(hidden_classes_[k], hidden_class_len_[k]));
        }
        i = j;
      }
    } else if (NameIs(an, "color")) {  // <font color=...>
      char fg[8];
      const size_t n = NormalColour(value, fg);
      hidden = n > 0 && Unreadable(absl::string_view(fg, n), background);
    } else if (NameIs(an, "bgcolor")) {
      own_bg_len = NormalColour(value, own_bg);
    }
  }
  if (!hidden && own_bg_len == 0) return false;
  char name[16];
  const size_t name_len = TagNameOf(tag, false, name);
  if (name_len == 0 || VoidElement(absl::string_view(name, name_len))) {
    return false;  // no content to hide, no text on a background
  }
  if (hidden) {
    hidden_depth_ = 1;
    std::memcpy(hidden_name_, name, name_len);
    hidden_name_len_ = name_len;
    return true;
  }
  if (own_bg_len == 7 && background_depth_ < kMaxBackgrounds) {
    Background& b = backgrounds_[background_depth_++];
    std::memcpy(b.name, name, name_len);
    b.name_len = static_cast<uint8_t>(name_len);
    std::memcpy(b.color, own_bg, 8);
  }
  return false;
}

void BodyNormalizer::CaptureStyle(const char* p, size_t n) noexcept {
  const size_t take = std::min(n, sizeof(style_) - style_len_);
  std::memcpy(style_ + style_len_, p, take);
  style_len_ += take;
}

void BodyNormalizer::StyleRules() noexcept {
  // Rules "SELECTORS { DECLARATIONS }" whose declarations hide text: the
  // classes their selectors name (".name", "tag.name") are hidden.
  char css[sizeof(style_)];
  const absl::string_view c(css,
                            CompactCss(absl::string_view(style_, style_len_), css, sizeof(css)));
  style_len_ = 0;
  size_t at = 0;
  while (at < c.size() && hidden_class_count_ < kMaxHiddenClasses) {
    const size_t open = c.find('{', at);
    if (open == absl::string_view::npos) break;
    const size_t close = c.find('}', open);
    const absl::string_view selectors = c.substr(at, open - at);
    const absl::string_view body =
        c.substr(open + 1, (close == absl::string_view::npos ? c.size() : close) - open - 1);
    at = close == absl::string_view::npos ? c.size() : close + 1;
    char bg[8];
    size_t bg_len;
    if (!HidingCss(body, "#ffffff", bg, &bg_len)) continue;
    for (size_t i = 0; i < selectors.size() && hidden_class_count_ < kMaxHiddenClasses;) {
      const size_t dot = selectors.find('.', i);
      if (dot == absl::string_view::npos) break;
      size_t j = dot + 1;
      while (j < selectors.size() && (IsAlnum(static_cast<unsigned char>(selectors[j])) ||
                                      selectors[j] == '-' || selectors[j] == '_')) {
        ++j;
      }
      const size_t n = std::min<size_t>(j - dot - 1, sizeof(hidden_classes_[0]));
      if (n > 0) {
        std::memcpy(hidden_classes_[hidden_class_count_], selectors.data() + dot + 1, n);
        hidden_class_len_[hidden_class_count_++] = static_cast<uint8_t>(n);
      }
      i = j;
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
