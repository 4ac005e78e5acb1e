#include "reputation/content/body_normalizer.h"

#include <cctype>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "reputation/content/unicode_text.h"

namespace sluice {
namespace {

class Collect : public TokenSink {
 public:
  void Token(absl::string_view t) noexcept override { tokens.emplace_back(t); }
  void Tokens(const TokenBatch& batch) noexcept override {
    EXPECT_NE(batch.breaks, nullptr);
    for (size_t i = 0; batch.breaks != nullptr && i < 64 * (batch.count / 64 + 1); ++i) {
      if (((batch.breaks[i / 64] >> (i % 64)) & 1) == 0) continue;
      EXPECT_LE(i, batch.count) << "a paragraph end past the batch's tokens";
      breaks.push_back(tokens.size() + i);
    }
    TokenSink::Tokens(batch);
  }
  void Markup(absl::string_view m) noexcept override { markup.emplace_back(m); }
  std::string Joined() const { return absl::StrJoin(tokens, " "); }
  // The tokens with " /" where a paragraph ended (the same place reported
  // twice, at one batch's end and the next one's start, shows twice).
  std::string Paragraphs() const {
    std::string out;
    size_t b = 0;
    for (size_t i = 0; i <= tokens.size(); ++i) {
      for (; b < breaks.size() && breaks[b] == i; ++b) out += out.empty() ? "/" : " /";
      if (i < tokens.size()) absl::StrAppend(&out, out.empty() ? "" : " ", tokens[i]);
    }
    return out;
  }
  std::vector<std::string> tokens;
  std::vector<size_t> breaks;
  std::vector<std::string> markup;
};

// The rule lines of the message a normaliser finished, as " #r" and their
// token ordinals.
std::string RuleLines(const BodyNormalizer& n) {
  uint64_t at[BodyNormalizer::kRuleLines];
  const int k = n.rule_lines(at);
  std::string out = " #r";
  for (int i = 0; i < k; ++i) absl::StrAppend(&out, " ", at[i]);
  return out;
}

// A message normalised whole: what the sink collected, and its rule lines
// (RuleLines).
struct Normalized {
  Collect c;
  std::string rules;
};
Normalized NormalizeWhole(absl::string_view message, BodyNormalizer::Options o = {}) {
  BodyNormalizer n(o);
  Normalized r;
  n.Normalize(message, &r.c);
  r.rules = RuleLines(n);
  return r;
}

std::vector<std::string> MarkupOf(absl::string_view message) {
  return NormalizeWhole(message).c.markup;
}

std::string Norm(absl::string_view message, BodyNormalizer::Options o = {}) {
  return NormalizeWhole(message, o).c.Joined();
}

std::string Paragraphs(absl::string_view message) { return NormalizeWhole(message).c.Paragraphs(); }

// Paragraphs and rule lines.
std::string ParagraphsAndRules(absl::string_view message) {
  const Normalized r = NormalizeWhole(message);
  return r.c.Paragraphs() + r.rules;
}

// The rule lines alone.
std::string Rules(absl::string_view message) { return NormalizeWhole(message).rules.substr(1); }

// The tokens of `message` fed in pieces of 1 to `max_piece` bytes (with
// the paragraph ends if `paragraphs`, and the rule lines too if `rules`).
std::string NormInPieces(absl::string_view message, std::mt19937& rng, size_t max_piece,
                         bool paragraphs = false, bool rules = false) {
  BodyNormalizer n;
  Collect c;
  n.Reset(&c);
  for (size_t pos = 0; pos < message.size();) {
    const size_t len = 1 + rng() % max_piece;
    n.Feed(message.substr(pos, len));
    pos += len;
  }
  n.Finish();
  return (paragraphs ? c.Paragraphs() : c.Joined()) + (rules ? RuleLines(n) : "");
}

TEST(BodyNormalizerTest, PlainTextIsFoldedAndCollapsed) {
  EXPECT_EQ(Norm("Subject: x\n\nBUY   Cheap\tWatches\r\nNOW!!\n"), "buy cheap watches now");
  // A message starting with a blank line has no headers.
  EXPECT_EQ(Norm("\nCheap meds\n"), "cheap meds");
}

TEST(BodyNormalizerTest, PerRecipientTokensAreDropped) {
  EXPECT_EQ(Norm("\nYour order 48213 ships today. Code AB12CD. Or call 555-0199.\n"),
            "your order ships today code or call");
}

// An address goes with up to kAddressLeadIn (5) words before it: a
// recipient's footer leaves no trace; a word with an '@' that is not an
// address is dropped alone.
TEST(BodyNormalizerTest, AddressTakesItsLeadInWithIt) {
  static_assert(BodyNormalizer::kAddressLeadIn == 5, "the cases below count 5");
  EXPECT_EQ(Norm("\nBig sale on watches and more. This message was sent to "
                 "anna.k@Example.NET. Unsubscribe Anna.\n"),
            "big sale on watches and more unsubscribe anna");
  EXPECT_EQ(Norm("\nSent to anna@example.net\n"), "");
  // An address takes nothing from before the previous one.
  EXPECT_EQ(Norm("\none two three four five six seven anna@example.net bob@example.net eight\n"),
            "one two eight");
  EXPECT_EQ(Norm("\none two three four five six seven anna@example.net six bob@example.net\n"),
            "one two");
  EXPECT_EQ(Norm("\none two three four five six seven <anna@example.net> eight\n"),
            "one two eight");
  // Not past a link's host.
  EXPECT_EQ(Norm("\nvisit www.Shop.example or write to anna@example.net\n"),
            "visit u:www.shop.example");
  EXPECT_EQ(Norm("\nfollow our shop on the web @shop now\n"), "follow our shop on the web now");
  EXPECT_EQ(Norm("\nfollow our shop on the web a@b now\n"), "follow our shop on the web now");
  EXPECT_EQ(Norm("\nfollow our shop on the web user@ now\n"), "follow our shop on the web now");
  // In HTML text too.
  EXPECT_EQ(Norm("Content-Type: text/html\n\n<p>Big sale on watches and more.</p><p>This "
                 "message was sent to <b>anna@example.net</b></p>\n"),
            "big sale on watches and more");
}

// The lead-in is taken back wherever the token batches end: n words, then
// an address, whole or fed in pieces, SSE2 or AVX-512.
TEST(BodyNormalizerTest, AddressLeadInAcrossBatches) {
  // Words of 3 to 20 letters: a 64-byte block holds 3 to 16 of them, so
  // a batch also ends a few words before the address.
  std::mt19937 rng(11);
  std::vector<std::string> words;
  for (int i = 0; i < 560; ++i) {
    std::string w = {static_cast<char>('a' + i % 26), static_cast<char>('a' + i / 26)};
    const size_t len = 3 + rng() % 18;
    while (w.size() < len) w += static_cast<char>('a' + rng() % 26);
    words.push_back(w);
  }
  for (const bool wide : {true, false}) {
    BodyNormalizer::UseWideVectors(wide);
    for (size_t n = 300; n < words.size(); ++n) {
      std::vector<std::string> before(words.begin(), words.begin() + n);
      // (The second address takes nothing: there is nothing after the first.)
      const std::string message = absl::StrCat("\n", absl::StrJoin(before, " "),
                                               " anna@example.net bob@example.net after\n");
      std::vector<std::string> kept(words.begin(), words.begin() + (n - 5));
      kept.push_back("after");
      const std::string want = absl::StrJoin(kept, " ");
      ASSERT_EQ(Norm(message), want) << n << " wide " << wide;
      ASSERT_EQ(NormInPieces(message, rng, 100), want) << n << " wide " << wide << " in pieces";
    }
  }
  BodyNormalizer::UseWideVectors(true);
}

TEST(BodyNormalizerTest, GreetingLinesAreDropped) {
  EXPECT_EQ(Norm("\nDear John Smith,\nWe have an offer.\n"), "we have an offer");
  EXPECT_EQ(Norm("\nHi Anna\nWe have an offer.\n"), "we have an offer");
  EXPECT_EQ(Norm("\nHello, we have an offer.\n"), "we have an offer");
  BodyNormalizer::Options keep;
  keep.drop_greetings = false;
  EXPECT_EQ(Norm("\nDear John,\nOffer.\n", keep), "dear john offer");
}

TEST(BodyNormalizerTest, UrlsBecomeHosts) {
  EXPECT_EQ(Norm("\nClick https://Shop.Example.COM/track?id=8f7a6&u=anna now or "
                 "www.other.example/x or http://user:pw@evil.example:8080/p\n"),
            "click u:shop.example.com now or u:www.other.example or u:evil.example");
}

// The host of a URL, as the rules say: after a "://" that starts among the
// first 10 bytes, up to the first of / ? # \ " ' < > or a control/space;
// after the last '@' before that; before the last ':' after the '@';
// trailing dots dropped; lower case; at most 253 bytes.
std::string ReferenceHost(std::string url) {
  for (size_t i = 0; i < 10 && i + 3 <= url.size(); ++i) {
    if (url.compare(i, 3, "://") == 0) {
      url = url.substr(i + 3);
      break;
    }
  }
  size_t end = 0;
  while (end < url.size() && static_cast<unsigned char>(url[end]) > ' ' &&
         std::string("/?#\\\"'<>").find(url[end]) == std::string::npos) {
    ++end;
  }
  std::string host = url.substr(0, end);
  const size_t at = host.rfind('@');
  if (at != std::string::npos) host = host.substr(at + 1);
  const size_t colon = host.rfind(':');
  if (colon != std::string::npos) host = host.substr(0, colon);
  while (!host.empty() && host.back() == '.') host.pop_back();
  if (host.size() > 253) host.resize(253);
  for (char& c : host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return host;
}

// URLs of every shape and length, in text and in links, against the
// reference (hosts from 0 to 300 bytes cross the 16-byte steps).
TEST(BodyNormalizerTest, UrlHostsMatchTheRules) {
  std::mt19937 rng(41);
  const std::string host_bytes = "abcXYZ019.-_:@";
  const char* const schemes[] = {"http://", "https://", "HTTP://", "ftp://", "www."};
  const char* const tails[] = {"", "/", "/path/x", "?q=1", "#frag", "\\x", "\"", "'", "<", ">"};
  for (int trial = 0; trial < 3000; ++trial) {
    std::string host;
    const size_t len = trial % 50 == 0 ? 200 + rng() % 100 : rng() % 40;
    for (size_t i = 0; i < len; ++i) host += host_bytes[rng() % host_bytes.size()];
    const std::string scheme = schemes[rng() % 5];
    const std::string url = scheme + host + tails[rng() % 10];
    std::string want = ReferenceHost(url);
    // In text a URL is a word: it ends at the first separator, and "www."
    // stays part of the host.
    std::string word = url;
    for (size_t i = 0; i < word.size(); ++i) {
      const unsigned char c = static_cast<unsigned char>(word[i]);
      if (c <= ' ' || std::string("<>\"'()[]{},;|*!`").find(word[i]) != std::string::npos) {
        word.resize(i);
        break;
      }
    }
    if (word.size() > 256) continue;  // an over-long word: the word buffer's limit applies
    std::string text_host = ReferenceHost(word);
    const std::string got = Norm("\n" + word + " end\n");
    const std::string expect_text = (text_host.empty() ? "" : "u:" + text_host + " ") + "end";
    ASSERT_EQ(got, expect_text) << "url: " << word;
    const std::string link = Norm("Content-Type: text/html\n\n<a href=\"" + url + "\">x</a>\n");
    // Links keep the host of http(s) and www. URLs only.
    if (scheme == "ftp://") want.clear();
    const bool quoted_end = url.find('"') != std::string::npos;
    if (!quoted_end) {
      ASSERT_EQ(link, (want.empty() ? "" : "u:" + want + " ") + "x") << "link: " << url;
    }
  }
}

TEST(BodyNormalizerTest, QuotedPrintable) {
  EXPECT_EQ(Norm("Content-Transfer-Encoding: quoted-printable\n\n"
                 "Caf=D0=B6 pri=\nces =3D low\nsecond line\n"),
            "caf\xd0\xb6 prices low second line");  // Cyrillic zhe
}

TEST(BodyNormalizerTest, Base64AndBrokenBase64) {
  // "Limited offer today only" in base64, wrapped, with garbage mixed in.
  EXPECT_EQ(Norm("Content-Transfer-Encoding: base64\n\nTGltaXRl!ZCBvZmZl\nciB0b2R#heSBv\tbmx5\n"),
            "limited offer today only");
  // Truncated mid-group: what decodes is kept, nothing crashes.
  EXPECT_EQ(Norm("Content-Transfer-Encoding: base64\n\nTGltaXRlZCBvZm"), "limited of");
}

TEST(BodyNormalizerTest, HtmlTagsEntitiesStyleScriptComments) {
  EXPECT_EQ(Norm("Content-Type: text/html\n\n"
                 "<html><head><style>p { color: red }</style><script>var x=1;</script></head>"
                 "<body><p>Best&nbsp;PRICES &amp; deals</p><!-- hidden words -->"
                 "<a href=\"https://deals.example/r/123\">Click&#32;here</a>"
                 "<img src='http://img.example/a.png'> a &lt; b & c</body></html>\n"),
            "best prices deals u:deals.example click here u:img.example a b c");
  // HTML 4.01's named entities are their characters, folded as the text's
  // own: an accented letter (its accent dropped), a Greek look-alike, a soft
  // hyphen (nothing); a name HTML 4.01 does not have is a separator.
  EXPECT_EQ(
      Norm("Content-Type: text/html\n\n"
           "<p>caf&eacute; Caf\xC3\xA9 V&iota;agra Vi&shy;agra stra&szlig;e on&bogus;ly</p>\n"),
      "cafe cafe viagra viagra strasse on ly");
}

// Tag names in any case; a block tag starts a line (so a greeting after it
// is dropped); an element that shows something of its own ends the word;
// other tags, inline or unknown (browsers show those inline), end nothing,
// as a reader sees "Vi<b></b>agra"; a name that merely shares a prefix
// with one does nothing; style and script hide text only up to their own
// closing tag; href and src are found in any case and position.
TEST(BodyNormalizerTest, TagKindsAndLinks) {
  const std::string html = "Content-Type: text/html\n\n";
  EXPECT_EQ(Norm(html + "one<BLOCKQUOTE>Dear Anna, offer"), "one offer");
  EXPECT_EQ(Norm(html + "one<blockquotx>Dear Anna, offer"), "onedear anna offer");
  EXPECT_EQ(Norm(html + "one<H3 class=x>Hi Bob, two<Td>Hello Eve, three"), "one two three");
  EXPECT_EQ(Norm(html + "one<span>Dear Anna, two<h7>Hi Bob, three"),
            "onedear anna twohi bob three");
  EXPECT_EQ(Norm(html + "a<b>c</b>d<Section>Dear X, e"), "acd e");
  EXPECT_EQ(Norm(html + "Vi<b></b>agra C<FONT color=red>i</FONT>alis V<span>i</span>a<qx>g</qx>ra"),
            "viagra cialis viagra");
  EXPECT_EQ(Norm(html + "one<img src=x>two<TEXTAREA>three</textarea>four<fieldset>five"),
            "one two three four five");
  EXPECT_EQ(Norm(html + "one<textareax>two<fieldsex>three<dd>four"), "onetwothree four");
  EXPECT_EQ(Norm(html + "<STYLE type=text/css>hidden</script>still</STYLE>shown"), "shown");
  EXPECT_EQ(Norm(html + "<Script>hidden</style>still</SCRIPT>shown<stylex>seen"), "shownseen");
  EXPECT_EQ(Norm(html + "<A class=x HREF = 'http://one.example/' data-src=\"https://two.example\">"
                        "x<img alt=\"y\" SRC=http://Three.Example:8080/p.png>"),
            "u:two.example x u:three.example");
  EXPECT_EQ(Norm(html + "<a href=\"https://user:pw@Host.Example.:443/x\">y"), "u:host.example y");
}

TEST(BodyNormalizerTest, MultipartKeepsTextPartsOnly) {
  std::string m =
      "Content-Type: multipart/mixed; boundary=\"outer\"\n\n"
      "preamble is ignored\n"
      "--outer\n"
      "Content-Type: multipart/alternative; boundary=inner\n\n"
      "--inner\n"
      "Content-Type: text/plain\n\n"
      "plain words\n"
      "--inner\n"
      "Content-Type: text/html\n"
      "Content-Transfer-Encoding: quoted-printable\n\n"
      "<b>html=20words</b>\n"
      "--inner--\n"
      "--outer\n"
      "Content-Type: application/pdf\n"
      "Content-Transfer-Encoding: base64\n\n"
      "JVBERi0xLjQKJcfsj6IKNSAwIG9iago=\n"
      "--outer--\n"
      "epilogue ignored\n";
  BodyNormalizer n;
  Collect c;
  n.Normalize(m, &c);
  EXPECT_EQ(c.Joined(), "plain words html words");
  EXPECT_EQ(n.text_parts(), 2);
}

// Bulk mailers and phishing kits attach their page as
// application/octet-stream named *.htm or *.txt: read as what the name
// says (Content-Type's name= or Content-Disposition's filename=, in either
// order); other octet-streams, and other types whatever their name, are not.
TEST(BodyNormalizerTest, OctetStreamNamedAsPageOrTextIsRead) {
  const std::string page = absl::Base64Escape("<p>Brand new <b>premium</b> offer</p>");
  auto part = [&](absl::string_view headers) {
    return absl::StrCat("--b\n", headers, "Content-Transfer-Encoding: base64\n\n", page, "\n");
  };
  const std::string m = absl::StrCat(
      "Content-Type: multipart/mixed; boundary=b\n\n",
      "--b\nContent-Type: text/plain\n\nsee the attachment\n",
      part("Content-Type: application/octet-stream;\n\tname=\"C:\\Desktop\\Offer.HTM\"\n"),
      part("Content-Disposition: attachment; filename=notes.txt\n"
           "Content-Type: Application/Octet-Stream\n"),
      part("Content-Type: application/octet-stream; name=\"setup.exe\"\n"),
      part("Content-Type: image/png; name=\"offer.html\"\n"),
      part("Content-Type: application/octet-stream; name=\"offer.html.exe\"\n"), "--b--\n");
  BodyNormalizer n;
  Collect c;
  n.Normalize(m, &c);
  // The .htm part as HTML (tags gone), the .txt part as plain text (tags
  // are words there, so "p" and "b" stay), nothing of the others.
  EXPECT_EQ(c.Joined(),
            "see the attachment brand new premium offer p brand new b premium b offer p");
  EXPECT_EQ(n.text_parts(), 3);
  std::mt19937 rng(7);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(NormInPieces(m, rng, 1 + i * 3), c.Joined());
}

// Header lines that cannot matter are skipped many at a time: folded
// headers, "Cc:" (a 'C' that is not Content-*), a folded Content-Type, CRLF
// and a blank line made of "\r" must still be read as line by line, in
// any chunking.
TEST(BodyNormalizerTest, HeadersAroundContentTypeInAnyChunking) {
  std::string m =
      "Received: from a.example (a.example [192.0.2.1])\n\tby mx.example; Mon, 1 Jan 2024\n"
      "X-Long: " +
      std::string(300, 'x') +
      "\n"
      "Cc: someone@example.net\n"
      "Subject: not the body\n"
      "content-type: multipart/alternative;\n"
      "\tboundary=\"==b1\"\n"
      "X-After: 1\n \n"
      "\n"
      "--==b1\r\nX-Part: 2\r\nContent-Transfer-Encoding: quoted-printable\r\n"
      "Content-Type: text/plain\r\n\r\nsoft=\r\nly wrapped words\r\n--==b1--\r\n";
  EXPECT_EQ(Norm(m), "softly wrapped words");
  std::mt19937 rng(17);
  for (int trial = 0; trial < 300; ++trial) {
    ASSERT_EQ(NormInPieces(m, rng, trial % 3 == 0 ? 5 : 90), "softly wrapped words") << trial;
  }
}

// The rest of a header line longer than kLineMax (2048) is cut off, never
// read as a header of its own, fed whole or in pieces: a "Content-Type:"
// that falls right after the cut does not make the text part a skipped
// image; the cut of a Content-Type line leaves the type that starts it.
TEST(BodyNormalizerTest, OverLongHeaderLinesAreOneHeader) {
  const std::string skipped = "X-Long: " + std::string(2040, 'x') + "Content-Type: image/gif\n";
  ASSERT_EQ(skipped.find("Content-Type: image"), 2048u);
  const std::string kept = "Content-Type: text/plain; x=\"" + std::string(2100, 'y') + "\"\n";
  for (const std::string& header : {skipped, "Cc: " + skipped.substr(4), kept}) {
    const std::string m = "Subject: long headers\n" + header + "\nplain words\n";
    EXPECT_EQ(Norm(m), "plain words");
    std::mt19937 rng(5);
    for (int trial = 0; trial < 50; ++trial) {
      ASSERT_EQ(NormInPieces(m, rng, trial % 2 == 0 ? 7 : 700), "plain words")
          << trial << " " << header.substr(0, 12);
    }
  }
}

// The boundary parameter as mailers write it: spaces around '=' (a bulk
// mailer's "boundary= \"...\""), any case, after other parameters, not a
// parameter whose name ends in "boundary".
TEST(BodyNormalizerTest, BoundaryParameterForms) {
  for (const char* param :
       {"boundary= \"----=_NP_1\"", "boundary =----=_NP_1", "BOUNDARY = \"----=_NP_1\"; x=y",
        "charset=x;boundary=----=_NP_1", "xboundary=zz; boundary=\"----=_NP_1\""}) {
    const std::string m = absl::StrCat("Content-Type: multipart/mixed;", param,
                                       "\n\n------=_NP_1\nContent-Type: text/plain\n\nthe text\n"
                                       "------=_NP_1\nContent-Type: image/gif\n\nGIF89a\n"
                                       "------=_NP_1--\n");
    EXPECT_EQ(Norm(m), "the text") << param;
  }
  // A bulk mailer's delimiter lines with other spaces than its boundary.
  EXPECT_EQ(Norm("Content-Type: multipart/alternative; boundary=\"=Multipart Boundary 0925\"\n\n"
                 "--= Multipart Boundary 0925\nContent-Type: text/plain;\n\nthe text\n"
                 "--=Multipart  Boundary 0925\nContent-Type: image/gif\n\nGIF89a\n"
                 "--= Multipart Boundary 0925--\n"),
            "the text");
  EXPECT_EQ(Norm("Content-Type: multipart/mixed; boundary=ab\n\n--ab\nContent-Type: text/plain\n\n"
                 "x\n--a b\nContent-Type: image/gif\n\nGIF89a\n--ab--\n"),
            "x");  // "--a b" ends the text part
  // Without a boundary nothing of a multipart body is text.
  EXPECT_EQ(Norm("Content-Type: multipart/mixed; xboundary=a\n\n--a\nContent-Type: "
                 "text/plain\n\nhidden\n"),
            "");
}

TEST(BodyNormalizerTest, ChunkingDoesNotChangeTheResult) {
  std::string m =
      "Content-Type: multipart/alternative; boundary=b\n\n--b\nContent-Type: text/html\n"
      "Content-Transfer-Encoding: base64\n\n"
      "PHA+U3BlY2lhbCBvZmZlciBmb3IgeW91PC9wPjxhIGhyZWY9Imh0dHA6Ly9zaG9wLmV4YW1wbGUvIj5i\n"
      "dXk8L2E+\n--b\nContent-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\n"
      "Special offer for you =\n today, visit http://shop.example/x\n--b--\n";
  std::string whole = Norm(m);
  EXPECT_EQ(whole,
            "special offer for you u:shop.example buy special offer for you today visit "
            "u:shop.example");
  std::mt19937 rng(3);
  for (int trial = 0; trial < 200; ++trial) {
    ASSERT_EQ(NormInPieces(m, rng, 40), whole) << trial;
  }
}

TEST(BodyNormalizerTest, ParagraphEndsAreReported) {
  // Plain text: a blank line (blanks and carriage returns allowed on it)
  // ends a paragraph; a line end alone does not.
  EXPECT_EQ(Paragraphs("\nfirst words here\n\nsecond one\nstill second\n \t\r\nthird\n"),
            "first words here / second one still second / third");
  EXPECT_EQ(Paragraphs("\r\none two\r\n\r\nthree\r\n"), "one two / three");
  // Several blank lines end one paragraph.
  EXPECT_EQ(Paragraphs("\na\n\n\n\n\nb"), "a / b");
  // HTML: block tags end paragraphs, blank lines and inline tags do not.
  EXPECT_EQ(Paragraphs("Content-Type: text/html\n\n<p>one two</p>\n\nthree<b>four</b> "
                       "<br>five<div>six</div>"),
            "/ one two / threefour / five / six /");
  EXPECT_EQ(Paragraphs("Content-Type: text/html\n\nsome\n\ntext <span>here</span>"),
            "some text here");
  // A part's boundary ends a paragraph.
  EXPECT_EQ(Paragraphs("Content-Type: multipart/mixed; boundary=b\n\n--b\n\none\n--b\n\n"
                       "two\n--b--\n"),
            "/ one / two /");
  // However the bytes are cut, and through both encodings.
  const std::string text = "alpha beta\r\n\r\ngamma\n  \n\ndelta epsilon\nzeta\n\neta";
  const std::string whole = Paragraphs("\n" + text);
  EXPECT_EQ(whole, "alpha beta / gamma / delta epsilon zeta / eta");
  std::mt19937 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    ASSERT_EQ(NormInPieces("\n" + text, rng, 1 + trial % 9, true), whole) << trial;
  }
  EXPECT_EQ(Paragraphs("Content-Transfer-Encoding: base64\n\n" + absl::Base64Escape(text)), whole);
  EXPECT_EQ(Paragraphs("Content-Transfer-Encoding: quoted-printable\n\n"
                       "alpha =\nbeta\n\ngam=\nma\n=20\n\ndelta epsilon\nzeta\n\neta"),
            whole);
  // An address takes its lead-in back (up to 5 words, across a paragraph
  // end): the end stays where the dropped words were.
  EXPECT_EQ(Paragraphs("\nsome text\n\nwrite to anna@example.net now"), "/ now");
}

TEST(BodyNormalizerTest, RuleLinesAreReported) {
  // A line led (after blanks) by four or more ASCII symbols: where it
  // begins, as the number of tokens before it.
  EXPECT_EQ(Rules("\nsome words here\n-----\nfooter text\n"), "#r 3");
  EXPECT_EQ(Rules("\none two\n \t ====== Yahoo! Groups ======\nx\n____\n"), "#r 2 5");
  EXPECT_EQ(Rules("\n####\na\n****\nb\n~~~~\nc\n>>>>\nd\n"), "#r 0 1 2 3");
  // Not rule lines: fewer than four symbols, symbols after a word or with
  // blanks between, a signature's "-- ".
  EXPECT_EQ(Rules("\na\n---\nb\n-- \nc\nd ----\n- - - -\nx-----\n--- x\n-- -- --\n"), "#r");
  // <hr> in HTML (not <html>, not <hra>).
  EXPECT_EQ(Rules("Content-Type: text/html\n\n<html><p>one</p><HR/><p>two three</p>"
                  "<hr class=x><hra>four</hra>"),
            "#r 1 3");
  // The last kRuleLines only.
  std::string many = "\n";
  for (int i = 0; i < 10; ++i) absl::StrAppend(&many, "w", std::string(1, 'a' + i), "\n=====\n");
  EXPECT_EQ(Rules(many), "#r 3 4 5 6 7 8 9 10");
  // An address takes its lead-in back across a rule line: the line stays
  // where the dropped words were.
  EXPECT_EQ(ParagraphsAndRules("\nkeep one two three four\n-----\nwrite to anna@example.net now\n"),
            "keep one now #r 2");
  // However the bytes are cut (a rule's symbols split between pieces and
  // vector blocks), and through both encodings.
  std::string text;
  for (int i = 0; i < 12; ++i) {
    absl::StrAppend(&text, std::string(static_cast<size_t>(i * 7 % 61), 'a'), " word",
                    std::string(1, static_cast<char>('a' + i)), "\n",
                    std::string(static_cast<size_t>(i % 3), ' '),
                    std::string(4 + i % 5, "-_=*"[i % 4]), i % 2 ? " tail\n" : "\n");
  }
  const std::string whole = ParagraphsAndRules("\n" + text);
  EXPECT_NE(whole.find("#r 1"), std::string::npos) << whole;
  std::mt19937 rng(11);
  for (int trial = 0; trial < 300; ++trial) {
    ASSERT_EQ(NormInPieces("\n" + text, rng, 1 + trial % 97, true, true), whole) << trial;
  }
  EXPECT_EQ(ParagraphsAndRules("Content-Transfer-Encoding: base64\n\n" + absl::Base64Escape(text)),
            whole);
}

// Untransformed text is tokenised many lines at a time; CRLF or LF line
// ends, chunking, and a long line whose '\r' falls on the 2048-byte cut
// must not change the tokens.
TEST(BodyNormalizerTest, LineEndsAndLongLinesDoNotChangeTheResult) {
  std::string html_tag_line = "<a\r\nhref=\"http://far.example/\"\r\n>link</a>";
  std::string long_line(2047, 'x');
  long_line += "\r\nafter the long line";
  std::string body_lf =
      "Content-Type: multipart/mixed; boundary=zz\n\n--zz\nContent-Type: text/plain\n\n"
      "Dear Anna,\nCheap watches &amp; more\n--not a boundary\n" +
      long_line + "\n--zz\nContent-Type: text/html\n\n<p>Best&nbsp;price</p>\n" + html_tag_line +
      "\n--zz--\n";
  auto crlf = [](const std::string& s) {
    std::string out;
    for (char ch : s) {
      if (ch == '\n' && (out.empty() || out.back() != '\r')) out += '\r';
      out += ch;
    }
    return out;
  };
  const std::string whole = Norm(body_lf);
  EXPECT_NE(whole.find("cheap watches amp more"), std::string::npos) << whole;
  EXPECT_NE(whole.find("after the long line"), std::string::npos) << whole;
  EXPECT_NE(whole.find("u:far.example link"), std::string::npos) << whole;
  EXPECT_EQ(whole.find("anna"), std::string::npos) << whole;
  EXPECT_EQ(Norm(crlf(body_lf)), whole);
  std::mt19937 rng(11);
  for (const std::string& m : {body_lf, crlf(body_lf)}) {
    for (int trial = 0; trial < 100; ++trial) {
      ASSERT_EQ(NormInPieces(m, rng, trial % 2 ? 7 : 3000), whole) << trial;
    }
  }
}

// Random text with every kind of word the rules treat differently. The
// block walks tokenise whatever lands in a block at once; cutting the same
// text into other pieces (quoted-printable soft breaks at random places,
// so most pieces are shorter than a block and take the byte path) must
// give the same tokens.
std::string RandomText(std::mt19937& rng, bool html) {
  static const char* const kPieces[] = {"offer",
                                        "Cheap",
                                        "WATCHES",
                                        "re:",
                                        "buy-now",
                                        "U.S.A.",
                                        "e.g.",
                                        "x",
                                        "ab12",
                                        "2024",
                                        "$99.95",
                                        "café",
                                        "naïve",
                                        "http://Shop.Example/track?id=77",
                                        "www.deals.example/x",
                                        "ftp://files.example",
                                        "https://a.example:8080/",
                                        "anna@example.net",
                                        "user@",
                                        "@home",
                                        "wwwx",
                                        "http:/broken",
                                        "a:b",
                                        "path/to/file",
                                        "abcdefghijklmnopqrstuvwxyzabcdefghij",
                                        "abcdefghijklmnopqrstuvwxyzabcd",   // 30: kept
                                        "abcdefghijklmnopqrstuvwxyzabcde",  // 31: dropped
                                        "abcdefgh1",
                                        "newsletter2024x",
                                        "abcdefghijklmnopqrstu7w",
                                        "zzzzzzzzzzzzzzzzzzzzzzzzzzzzz9",
                                        "9zzzzzzzzzzzzzzzzzzzzzzzzzzzzz",
                                        "dear",
                                        "Dear",
                                        "Hi",
                                        "hello",
                                        "--",
                                        "...",
                                        "(note)",
                                        "\"quoted\"",
                                        "it's",
                                        "é-é",
                                        "----",
                                        "____",
                                        "==",
                                        "**",
                                        "~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~",
                                        "-=-=-x"};
  static const char* const kSeparators[] = {" ",  " ",  " ",    "  ",  "\t", ", ",   "; ",
                                            "! ", "\n", "\n\n", " - ", ". ", "\n  ", "\n\t"};
  static const char* const kHtml[] = {"<b>",
                                      "</b>",
                                      "<p>",
                                      "<br>",
                                      "&amp;",
                                      "&nbsp;",
                                      "<a href=\"http://link.example/p\">",
                                      "</a>",
                                      "&#233;",
                                      "<!-- note -->",
                                      "<!---->",
                                      "<!-- a -> b --->",
                                      "<!-- x - -- >"};
  std::string t;
  const int words = 20 + static_cast<int>(rng() % 400);
  for (int i = 0; i < words; ++i) {
    if (rng() % 30 == 0) {
      t += "Dear Anna Smith,\n";
    } else if (rng() % 200 == 0) {
      t += std::string(300, 'q');  // over-long: dropped whole
    }
    if (html && rng() % 8 == 0) t += kHtml[rng() % (sizeof(kHtml) / sizeof(kHtml[0]))];
    t += kPieces[rng() % (sizeof(kPieces) / sizeof(kPieces[0]))];
    t += kSeparators[rng() % (sizeof(kSeparators) / sizeof(kSeparators[0]))];
  }
  return t;
}

// Quoted-printable with soft line breaks every 1 to 80 bytes.
std::string SoftWrapped(const std::string& text, std::mt19937& rng) {
  std::string out;
  size_t line = 0, next = 1 + rng() % 80;
  for (char ch : text) {
    if (ch == '\n') {
      out += '\n';
      line = 0;
      continue;
    }
    if (line >= next) {
      out += "=\n";
      line = 0;
      next = 1 + rng() % 80;
    }
    if (ch == '=') {
      out += "=3D";
    } else {
      out += ch;
    }
    ++line;
  }
  return out;
}

TEST(BodyNormalizerTest, BlockAndBytePathsAgreeOnRandomText) {
  std::mt19937 rng(29);
  for (int trial = 0; trial < 400; ++trial) {
    const bool html = trial % 2 == 1;
    const std::string type = html ? "Content-Type: text/html\n" : "Content-Type: text/plain\n";
    const std::string text = RandomText(rng, html);
    const std::string whole = ParagraphsAndRules(type + "\n" + text);
    const std::string wrapped = ParagraphsAndRules(
        type + "Content-Transfer-Encoding: quoted-printable\n\n" + SoftWrapped(text, rng));
    ASSERT_EQ(wrapped, whole) << "trial " << trial << " text:\n" << text;
    ASSERT_EQ(NormInPieces(type + "\n" + text, rng, trial % 2 ? 5 : 300, true, true), whole)
        << "trial " << trial << " in pieces, text:\n"
        << text;
    if (trial < 2) {
      EXPECT_FALSE(whole.empty());
    }
  }
}

// Tokens and markup, in order, as one string.
std::string TokensAndMarkup(absl::string_view message) {
  const Normalized r = NormalizeWhole(message);
  return absl::StrCat(r.c.Paragraphs(), r.rules, " | ", absl::StrJoin(r.c.markup, " | "));
}

// Base64 in lines of random length (groups cut by line ends, some junk).
std::string Base64Lines(const std::string& text, std::mt19937& rng) {
  const std::string b = absl::Base64Escape(text);
  std::string out;
  for (size_t i = 0; i < b.size();) {
    const size_t n = std::min(b.size() - i, static_cast<size_t>(1 + rng() % 100));
    out += b.substr(i, n);
    if (rng() % 10 == 0) out += " ";  // junk the decoder skips
    out += "\r\n";
    i += n;
  }
  return out;
}

TEST(BodyNormalizerTest, WideAndNarrowVectorsAgree) {
  // AVX-512 classifies 64-byte blocks and finds links in 64-byte steps
  // where the CPU has it; SSE2 does the same 16 bytes at a time. Both must
  // give the same tokens and markup, and base64 the same as plain text.
  const bool wide = BodyNormalizer::UseWideVectors(true);
  std::mt19937 rng(53);
  for (int trial = 0; trial < 300; ++trial) {
    const bool html = trial % 2 == 1;
    std::string text = RandomText(rng, html);
    if (html) {
      // Links whose "href=" or "src=" lands anywhere in a 64-byte step, at
      // line starts (outside the other tags).
      for (int i = 0; i < 4; ++i) {
        size_t at = text.find('\n', rng() % (text.size() + 1));
        at = at == std::string::npos ? text.size() : at + 1;
        const std::string pad(rng() % 140, "tx-"[rng() % 3]);
        text.insert(
            at, rng() % 2
                    ? absl::StrCat("<a title=\"", pad, "\" href=\"http://far", i, ".example/\">")
                    : absl::StrCat("<img alt='", pad, "' SRC=www.img", i, ".example/x.gif>"));
      }
    }
    const std::string type = html ? "Content-Type: text/html\n" : "Content-Type: text/plain\n";
    const std::string plain = type + "\n" + text;
    const std::string base64 =
        type + "Content-Transfer-Encoding: base64\n\n" + Base64Lines(text, rng);
    BodyNormalizer::UseWideVectors(true);
    const std::string got = TokensAndMarkup(plain);
    ASSERT_EQ(TokensAndMarkup(base64), got) << "trial " << trial << " text:\n" << text;
    BodyNormalizer::UseWideVectors(false);
    ASSERT_EQ(TokensAndMarkup(plain), got) << "trial " << trial << " text:\n" << text;
    ASSERT_EQ(TokensAndMarkup(base64), got) << "trial " << trial << " text:\n" << text;
    if (html && text.find("<!--") == std::string::npos) {  // (a comment may hide them)
      for (int i = 0; i < 4; ++i) {
        ASSERT_NE(got.find(absl::StrCat(i, ".example")), std::string::npos) << text;
      }
    }
  }
  BodyNormalizer::UseWideVectors(true);
  if (!wide) GTEST_SKIP() << "this CPU has no AVX-512 BW+VBMI: only the SSE2 path was run";
}

TEST(BodyNormalizerTest, CommentEndSplitAcrossBuffers) {
  // Decoded text reaches the HTML parser 4 KiB at a time, and an over-long
  // line 2 KiB at a time: a comment's "-->" cut anywhere still ends it,
  // and "- ->" or "->" does not.
  for (size_t at = 2030; at < 4100; at = at == 2060 ? 4070 : at + 1) {
    for (const char* encoding : {"quoted-printable", "7bit", "base64"}) {
      for (const char* close : {"-->", "--->", "- ->", "->"}) {
        std::string html = "<p>" + std::string(at, 'f') + "<!-- hidden " + close + " after";
        html += " --> shown";
        std::string body = html;
        if (std::string(encoding) == "base64") body = absl::Base64Escape(html);
        const std::string msg = absl::StrCat(
            "Content-Type: text/html\nContent-Transfer-Encoding: ", encoding, "\n\n", body, "\n");
        const bool closes = std::string(close).find("--") != std::string::npos &&
                            std::string(close).find("- -") == std::string::npos;
        EXPECT_EQ(Norm(msg), closes ? "after shown" : "shown")
            << at << " " << encoding << " " << close;
      }
    }
  }
}

TEST(BodyNormalizerTest, QuotedPrintableEscapesCutWithOverLongLines) {
  // A line longer than the 2 KiB line buffer is decoded in pieces: an
  // "=XX" escape cut between two pieces is still one byte, and so is a
  // soft break whose '=' ends a piece. The same text in short lines is
  // the reference.
  for (size_t pad = 0; pad < 8; ++pad) {
    std::string text = std::string(pad, 'z') + " ";
    while (text.size() < 5000) text += "ab=cd ef=3Dgh ";
    std::string qp;
    for (char ch : text) qp += ch == '=' ? "=3D" : std::string(1, ch);
    const std::string type =
        "Content-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\n";
    std::string wrapped;
    for (size_t i = 0; i < qp.size(); i += 60) {
      size_t n = std::min<size_t>(60, qp.size() - i);
      while (qp[i + n - 1] == '=' || (n >= 2 && qp[i + n - 2] == '=')) --n;  // not inside "=3D"
      wrapped += qp.substr(i, n) + "=\n";
      i -= 60 - n;
    }
    const std::string reference = Norm(type + wrapped + "\n");
    EXPECT_NE(reference.find("ab cd ef ab cd ef"), std::string::npos);  // ("3dgh" has a digit)
    EXPECT_EQ(Norm(type + qp + "\n"), reference) << pad;
    EXPECT_EQ(Norm(type + qp.substr(0, 2047 + pad) + "=\n" + qp.substr(2047 + pad) + "\n"),
              reference)
        << pad;
  }
}

TEST(BodyNormalizerTest, HostileInputsStayBounded) {
  BodyNormalizer n;
  Collect c;
  // A megabyte of '<' in HTML, NUL bytes, an unterminated tag and entity.
  std::string lt = "Content-Type: text/html\n\n" + std::string(1 << 19, '<') + " word";
  n.Normalize(lt, &c);
  EXPECT_EQ(c.Joined(), "word");
  c.tokens.clear();
  n.Normalize(std::string("\nnul\0bytes\0here\n", 16) + "<a href=\"http://x.example" +
                  std::string(5000, 'a') + " &#99999999999; &unterminated",
              &c);
  EXPECT_EQ(c.tokens.front(), "nul");
  // A 50 MB single line: linear time, fixed memory, the budget caps text.
  c.tokens.clear();
  BodyNormalizer::Options o;
  o.max_text_bytes = 1 << 20;
  BodyNormalizer capped(o);
  std::string big = "\n" + std::string(50 << 20, 'x');
  capped.Normalize(big, &c);
  EXPECT_LE(capped.text_bytes(), uint64_t{1} << 20);
  EXPECT_TRUE(c.tokens.empty());  // one over-long word: dropped
  // Deeply nested multiparts beyond the depth limit are not a problem.
  std::string nest;
  for (int i = 0; i < 20; ++i) {
    nest += absl::StrCat("Content-Type: multipart/mixed; boundary=b", i, "\n\n--b", i, "\n");
  }
  nest += "Content-Type: text/plain\n\ndeep text\n";
  c.tokens.clear();
  n.Normalize(nest, &c);
  SUCCEED();
}

TEST(BodyNormalizerTest, MarkupOfTagsWithAttributes) {
  using V = std::vector<std::string>;
  // Name and attributes, lower case; values that may locate something (a
  // URL, a path, an address, a query) are left out, their names stay.
  EXPECT_EQ(
      MarkupOf("Content-Type: text/html\n\n"
               "<BODY><A HREF=\"http://x.example/t?id=1\" Class=Btn>"
               "<img src='cid:part1@x' WIDTH=600 height = \"400\" alt='Big Sale' /></a>"
               "<td style=\"color:red\" mailto=a@b.example>Buy now</td></body>\n"),
      (V{"a href class=btn", "img src width=600 height=400 alt=big sale", "td style mailto"}));
  // Closing tags, tags without attributes and what <style> and <script>
  // hide give none; nor does markup-like text of a text/plain part.
  EXPECT_EQ(MarkupOf("Content-Type: text/html\n\n<p><b>x</b><style>p {x:1}</style>"
                     "<script>var s = '<img width=1>';</script></p>\n"),
            V{});
  EXPECT_EQ(MarkupOf("\nuse <font color=red> here\n"), V{});
  // Broken tags: an unclosed quote runs to the tag's end, stray '=' and
  // '/' are skipped.
  EXPECT_EQ(MarkupOf("Content-Type: text/html\n\n<div a=\"b C d>x\n"), V{"div a=b c d"});
  EXPECT_EQ(MarkupOf("Content-Type: text/html\n\n<div = / x=1 =>x\n"), V{"div x=1"});
}

TEST(BodyNormalizerTest, MarkupOnlyBeforeFewTokens) {
  std::string html = "Content-Type: text/html\n\n<div id=top>";
  for (uint64_t i = 0; i + 1 < BodyNormalizer::kFewTokens; ++i) html += "word ";
  html += "<span class=a>last</span> <span class=b>after</span>\n";
  BodyNormalizer n;
  Collect c;
  n.Normalize(html, &c);
  ASSERT_EQ(c.tokens.size(), BodyNormalizer::kFewTokens + 1);
  // <span class=a> comes before the kFewTokens-th token, <span class=b>
  // after it.
  EXPECT_EQ(c.markup, (std::vector<std::string>{"div id=top", "span class=a"}));
}

}  // namespace
}  // namespace sluice

namespace sluice {
namespace {

// ---- Text as a reader sees it (unicode_text.h) --------------------------------

TEST(BodyNormalizerUnicodeTest, InvisibleCharactersAreDropped) {
  const std::string plain = Norm("\nBuy cheap watches today only\n");
  // Zero-width space, joiners, word joiner, BOM, soft hyphen.
  EXPECT_EQ(Norm("\nBuy\xE2\x80\x8B cheap wa\xE2\x80\x8Ctches to\xE2\x80\x8D"
                 "day\xE2\x81\xA0 on\xC2\xADly\xEF\xBB\xBF\n"),
            plain);
  // As HTML entities too.
  EXPECT_EQ(Norm("Content-Type: text/html\n\n<p>Buy che&#8203;ap wat&#x200c;ches today "
                 "on&shy;ly</p>\n"),
            plain);
  // No-break and other spaces separate words.
  EXPECT_EQ(Norm("\nBuy\xC2\xA0"
                 "cheap\xE2\x80\x83watches\xE3\x80\x80today only\n"),
            plain);
}

TEST(BodyNormalizerUnicodeTest, LookAlikesAndCompatibilityFormsFold) {
  const std::string plain = Norm("\nFree offer for your pills order\n");
  // Cyrillic а о р с е and Greek ο in place of Latin letters.
  EXPECT_EQ(Norm("\nFree \xD0\xBE"
                 "ffer f\xCE\xBFr your \xD1\x80ills \xD0\xBErder\n"),
            plain);
  // Fullwidth, a ligature, mathematical bold.
  EXPECT_EQ(Norm("\n\xEF\xBC\xA6\xEF\xBD\x92\xEF\xBD\x85\xEF\xBD\x85 o\xEF\xAC\x80"
                 "er for your pills \xF0\x9D\x90\xA8rder\n"),
            plain);
  // As entities: &#1086; is Cyrillic о.
  EXPECT_EQ(Norm("Content-Type: text/html\n\nFree &#1086;ffer for your pills order\n"), plain);
  // Text in another script keeps its letters: two Russian phrases differ.
  EXPECT_NE(Norm("\n\xD0\xBF\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82 \xD0\xBC\xD0\xB8\xD1\x80\n"),
            Norm("\n\xD0\xBF\xD0\xBE\xD0\xBA\xD0\xB0 \xD0\xBC\xD0\xB8\xD1\x80\n"));
}

// Accents sprinkled over a copy's letters, written on the letter or after
// it as a combining mark (NFC or NFD), are dropped; the vowel signs of
// Indic writing stay, and so does a letter without a decomposition.
TEST(BodyNormalizerUnicodeTest, LettersLoseTheirAccents) {
  EXPECT_EQ(Norm("\ncaf\xC3\xA9 M\xC3\xBCller Vi\xC3\xA1gra\n"), "cafe muller viagra");
  EXPECT_EQ(Norm("\ncafe\xCC\x81 Mu\xCC\x88ller Vi\xCC\x87"
                 "agra che\xCC\x88\xCC\x81"
                 "ap\n"),
            "cafe muller viagra cheap");
  // Stacked accents, Cyrillic yo, Greek tonos.
  EXPECT_EQ(Norm("\nVi\xE1\xBB\x87t \xD1\x91lka \xCE\xAC\n"),
            Norm("\nViet \xD0\xB5lka \xCE\xB1\n"));
  // Hindi's vowel signs and nasalisation are its words' letters.
  EXPECT_NE(Norm("\n\xE0\xA4\xB9\xE0\xA4\xBF\xE0\xA4\x82\xE0\xA4\xA6\xE0\xA5\x80\n"),
            Norm("\n\xE0\xA4\xB9\xE0\xA4\xA6\n"));
  // Without a decomposition: a letter of its own (o with stroke).
  EXPECT_NE(Norm("\n\xC3\xB8l\n"), Norm("\nol\n"));
}

TEST(BodyNormalizerUnicodeTest, DeclaredCharsetsAreDecoded) {
  const std::string utf8 = Norm(
      "Content-Type: text/plain; charset=utf-8\n\ncaf\xC3\xA9 cr\xC3\xA8me "
      "\xD0\xB4\xD0\xB5\xD1\x88\xD0\xB5\xD0\xB2\xD0\xBE\n");
  // The same text in ISO-8859-1 (the Cyrillic word is not in it) and KOI8-R.
  EXPECT_EQ(Norm("Content-Type: text/plain; charset=\"ISO-8859-1\"\n\ncaf\xE9 cr\xE8me\n"),
            Norm("Content-Type: text/plain; charset=utf-8\n\ncaf\xC3\xA9 cr\xC3\xA8me\n"));
  EXPECT_EQ(Norm("Content-Type: text/plain; charset=koi8-r\n\n\xC4\xC5\xDB\xC5\xD7\xCF\n"),
            Norm("Content-Type: text/plain; charset=utf-8\n\n"
                 "\xD0\xB4\xD0\xB5\xD1\x88\xD0\xB5\xD0\xB2\xD0\xBE\n"));
  // Base64 in windows-1252 and quoted-printable in UTF-8: one text.
  EXPECT_EQ(Norm("Content-Type: text/plain; charset=windows-1252\n"
                 "Content-Transfer-Encoding: base64\n\n" +
                 absl::Base64Escape("caf\xE9 cr\xE8me \x93quoted\x94") + "\n"),
            Norm("Content-Type: text/plain; charset=utf-8\n"
                 "Content-Transfer-Encoding: quoted-printable\n\n"
                 "caf=C3=A9 cr=C3=A8me =E2=80=9Cquoted=E2=80=9D\n"));
  EXPECT_NE(utf8, "");
  // An unknown charset: the bytes as UTF-8 (or as they are).
  EXPECT_EQ(Norm("Content-Type: text/plain; charset=x-unheard-of\n\ncaf\xC3\xA9\n"),
            Norm("Content-Type: text/plain\n\ncaf\xC3\xA9\n"));
  // Each part in its own charset.
  EXPECT_EQ(Norm("Content-Type: multipart/mixed; boundary=b\n\n--b\n"
                 "Content-Type: text/plain; charset=iso-8859-1\n\ncaf\xE9\n--b\n"
                 "Content-Type: text/plain\n\ncaf\xC3\xA9\n--b--\n"),
            "cafe cafe");  // (accents dropped: LettersLoseTheirAccents)
}

TEST(BodyNormalizerUnicodeTest, SameTokensHoweverTheBytesAreCut) {
  const std::string message =
      "Content-Type: text/html; charset=utf-8\n\n<p>Fr\xE2\x80\x8B"
      "ee \xD0\xBE"
      "ffer "
      "\xF0\x9D\x90\xA8rder &#1086;k caf\xC3\xA9 \xE4\xB8\xAD\xE6\x96\x87 \xFF\xFE broken "
      "\xE2\x80</p>\n";
  const std::string whole = Norm(message);
  std::mt19937 rng(3);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(NormInPieces(message, rng, 1 + i % 7), whole);
  const std::string koi =
      "Content-Type: text/plain; charset=koi8-r\n\n\xC4\xC5\xDB\xC5\xD7\xCF "
      "\xC4\xC5\xDB\xC5\xD7\xCF\n";
  const std::string koi_whole = Norm(koi);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(NormInPieces(koi, rng, 1 + i % 5), koi_whole);
}

TEST(BodyNormalizerUnicodeTest, ChineseAndJapaneseRunsBecomePairs) {
  // 中文字符: four Han characters without spaces become three pairs (one
  // token of 12 bytes before, and a sentence was longer than a token may
  // be: the message had no words).
  const std::string zh = "\xE4\xB8\xAD\xE6\x96\x87\xE5\xAD\x97\xE7\xAC\xA6";
  const std::string pairs =
      "\xE4\xB8\xAD\xE6\x96\x87 \xE6\x96\x87\xE5\xAD\x97 \xE5\xAD\x97\xE7\xAC\xA6";
  EXPECT_EQ(Norm("Content-Type: text/plain; charset=utf-8\n\n" + zh + "\n"), pairs);
  // The same text in GB2312, Big5 and Shift_JIS.
  EXPECT_EQ(Norm("Content-Type: text/plain; charset=gb2312\n\n\xD6\xD0\xCE\xC4\xD7\xD6\xB7\xFB\n"),
            pairs);
  EXPECT_EQ(Norm("Content-Type: text/plain; charset=big5\n\n\xA4\xA4\xA4\xE5\xA6\x72\xB2\xC5\n"),
            pairs);
  EXPECT_EQ(
      Norm("Content-Type: text/plain; charset=shift_jis\n\n\x92\x86\x95\xB6\x8E\x9A\x95\x84\n"),
      pairs);
  // A lone character stays alone and does not join the ASCII around it;
  // a run ends at ASCII, a tag or the end of the part.
  EXPECT_EQ(Norm("\nbuy\xE4\xB8\xADnow " + zh + "now\n"), "buy \xE4\xB8\xAD now " + pairs + " now");
  EXPECT_EQ(Norm("Content-Type: text/html\n\n<p>\xE4\xB8\xAD\xE6\x96\x87<b>\xE5\xAD\x97</b></p>"),
            "\xE4\xB8\xAD\xE6\x96\x87 \xE5\xAD\x97");
  // An invisible character inside a run does not cut it (zero-width space,
  // word joiner).
  EXPECT_EQ(Norm("\n\xE4\xB8\xAD\xE2\x80\x8B\xE6\x96\x87\xE2\x81\xA0\xE5\xAD\x97\xE7\xAC\xA6\n"),
            pairs);
  // Hiragana; half-width Katakana folds to full-width, then pairs.
  EXPECT_EQ(Norm("\n\xE3\x81\x93\xE3\x82\x93\xE3\x81\xAB\n"),
            "\xE3\x81\x93\xE3\x82\x93 \xE3\x82\x93\xE3\x81\xAB");
  EXPECT_EQ(Norm("\n\xEF\xBD\xB6\xEF\xBE\x80\xEF\xBD\xB6\n"),
            Norm("\n\xE3\x82\xAB\xE3\x82\xBF\xE3\x82\xAB\n"));
  // Korean separates its words: as it is.
  EXPECT_EQ(Norm("\n\xED\x95\x9C\xEA\xB5\xAD\xEC\x96\xB4 \xED\x95\x99\xEA\xB5\x90\n"),
            "\xED\x95\x9C\xEA\xB5\xAD\xEC\x96\xB4 \xED\x95\x99\xEA\xB5\x90");
  // However the bytes are cut, in UTF-8, a converter's charset, and
  // across a multipart boundary (a run does not reach into the next part).
  std::mt19937 rng(5);
  for (const std::string& message :
       {"Content-Type: text/html; charset=utf-8\n\n<p>" + zh + zh + "x" + zh + "</p>\xE4\xB8\xAD\n",
        std::string("Content-Type: text/plain; charset=gb2312\n\n\xD6\xD0\xCE\xC4 "
                    "\xD7\xD6\xB7\xFB\xD6\xD0\n"),
        "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain; "
        "charset=utf-8\n\n" +
            zh + "\n--b\nContent-Type: text/plain; charset=utf-8\n\n" + zh + "\n--b--\n"}) {
    const std::string whole = Norm(message);
    for (int i = 0; i < 40; ++i) EXPECT_EQ(NormInPieces(message, rng, 1 + i % 9), whole) << i;
  }
}

TEST(BodyNormalizerUnicodeTest, FoldCodePoint) {
  char out[UnicodeText::kMaxFold];
  EXPECT_EQ(UnicodeText::FoldCodePoint('A', out), 1u);  // ASCII as it is
  EXPECT_EQ(out[0], 'A');
  EXPECT_EQ(UnicodeText::FoldCodePoint(0x200B, out), 0u);
  EXPECT_EQ(UnicodeText::FoldCodePoint(0xFE0F, out), 0u);  // a variation selector
  ASSERT_EQ(UnicodeText::FoldCodePoint(0x0430, out), 1u);  // Cyrillic а
  EXPECT_EQ(out[0], 'a');
  ASSERT_EQ(UnicodeText::FoldCodePoint(0xFF21, out), 1u);  // fullwidth A
  EXPECT_EQ(out[0], 'a');
  ASSERT_EQ(UnicodeText::FoldCodePoint(0x00A0, out), 1u);
  EXPECT_EQ(out[0], ' ');
  ASSERT_EQ(UnicodeText::FoldCodePoint(0x110000, out), 1u);  // not a code point
  EXPECT_EQ(out[0], ' ');
  // Memoised: the same answer the second time.
  for (uint32_t c : {0x0430u, 0x00E9u, 0x4E2Du, 0xFB01u}) {
    char a[UnicodeText::kMaxFold], b[UnicodeText::kMaxFold];
    const size_t na = UnicodeText::FoldCodePoint(c, a), nb = UnicodeText::FoldCodePoint(c, b);
    EXPECT_EQ(std::string(a, na), std::string(b, nb)) << c;
  }
}

}  // namespace
}  // namespace sluice

namespace sluice {
namespace {

// ---- Invisible HTML text --------------------------------------------------------

std::string Html(absl::string_view body) {
  return Norm(absl::StrCat("Content-Type: text/html\n\n", body, "\n"));
}

TEST(BodyNormalizerHiddenTest, HiddenElementsLoseTheirText) {
  const std::string plain = Html("<p>Cheap watches for sale</p><p>Order today</p>");
  for (const char* hidden :
       {"<span style=\"display:none\">lorem ipsum dolor</span>",
        "<span style='DISPLAY: NONE !important'>lorem ipsum dolor</span>",
        "<div style=\"visibility:hidden\">lorem <b>ipsum</b> dolor</div>",
        "<span style=\"font-size:0px\">lorem ipsum dolor</span>",
        "<span style=\"font-size: 1px; color:#333\">lorem ipsum dolor</span>",
        "<font style=\"font-size:0\">lorem ipsum dolor</font>",
        "<span style=\"opacity:0\">lorem ipsum dolor</span>",
        "<div style=\"max-height:0;overflow:hidden\">lorem ipsum dolor</div>",
        "<div style=\"position:absolute;left:-9999px\">lorem ipsum dolor</div>",
        "<span style=\"color:#ffffff\">lorem ipsum dolor</span>",
        "<span style=\"color:white;background-color:white\">lorem ipsum dolor</span>",
        "<font color=\"#FFF\">lorem ipsum dolor</font>",
        "<span style=\"color:rgb(255, 255, 255)\">lorem ipsum dolor</span>",
        // Nearly the background's colour.
        "<span style=\"color:#fdfefe\">lorem ipsum dolor</span>",
        "<font color=\"#f4f4f4\">lorem ipsum dolor</font>",
        "<span style=\"color:rgb(250,250,250)\">lorem ipsum dolor</span>",
        // No colour at all.
        "<span style=\"color: transparent\">lorem ipsum dolor</span>",
        "<span style=\"color:rgba(0, 0, 0, 0)\">lorem ipsum dolor</span>",
        "<span style=\"color:hsla(0,0%,0%,0.0)\">lorem ipsum dolor</span>",
        "<span style=\"color:rgb(10 20 30 / 0%)\">lorem ipsum dolor</span>",
        "<div hidden>lorem ipsum dolor</div>",
        // Nested elements of the same name inside the hidden one.
        "<div style=\"display:none\"><div>lorem</div> ipsum <div>dolor</div></div>"}) {
    EXPECT_EQ(Html(absl::StrCat("<p>Cheap watches for sale</p>", hidden, "<p>Order today</p>")),
              plain)
        << hidden;
  }
  // Hidden letters inside a word: the word as a reader sees it, whole.
  EXPECT_EQ(Html("<p>V<span style=\"font-size:0\">qz</span>iagra ch<font color=white>zz</font>eap "
                 "w<span style=\"display:none\">x<b>y</b></span>atches</p>"),
            "viagra cheap watches");
  // Text the same colour as a background set around it.
  EXPECT_EQ(Html("<p>Cheap watches for sale</p><table bgcolor=\"#000000\"><tr><td>"
                 "<font color=\"black\">lorem ipsum</font></td></tr></table><p>Order today</p>"),
            plain);
  EXPECT_EQ(Html("<p>Cheap watches for sale</p><div style=\"background:#203040\">"
                 "<span style=\"color:#25353f\">lorem ipsum</span></div><p>Order today</p>"),
            plain);
}

TEST(BodyNormalizerHiddenTest, StyleBlockClassesHide) {
  EXPECT_EQ(Html("<style>.x1 { color: red } .pad, span.hid { display : none }</style>"
                 "<p>Cheap watches <span class=\"a hid\">lorem ipsum</span>for sale</p>"
                 "<p class=pad>dolor sit</p><p class=x1>Order today</p>"),
            Html("<p>Cheap watches for sale</p><p>Order today</p>"));
  // The classes are the message's: the next message starts afresh.
  BodyNormalizer n;
  Collect c;
  n.Normalize("Content-Type: text/html\n\n<style>.h{display:none}</style><p class=h>gone</p>\n",
              &c);
  EXPECT_EQ(c.Joined(), "");
  Collect d;
  n.Normalize("Content-Type: text/html\n\n<p class=h>kept</p>\n", &d);
  EXPECT_EQ(d.Joined(), "kept");
}

TEST(BodyNormalizerHiddenTest, VisibleTextStays) {
  // Visible styles, white text on a dark background, void elements with
  // hiding styles, and a hidden element that ends.
  EXPECT_EQ(Html("<span style=\"font-size:12px;color:#333\">Cheap</span> "
                 "<td bgcolor=\"#003366\"><font color=\"#ffffff\">watches</font></td> "
                 "<img style=\"display:none\" src=x>for <br style=\"display:none\">sale "
                 "<span style=\"display:none\">x</span>today"),
            "cheap watches for sale today");
  // Faint but readable: grey on white, a colour of another hue.
  EXPECT_EQ(Html("<span style=\"color:#eeeeee\">cheap</span> <font color=\"#dddddd\">watches"
                 "</font> <div style=\"background:#203040\"><span style=\"color:#405060\">for"
                 "</span> <span style=\"color:#3050a0\">sale</span></div>"),
            "cheap watches for sale");
  // Colours with an alpha that shows them.
  EXPECT_EQ(Html("<span style=\"color:rgba(0,0,0,0.8)\">cheap</span> <span style=\"color:rgb(0 0 "
                 "0 / 50%)\">watches</span> <span style=\"color:rgba(0,0,0)\">now</span>"),
            "cheap watches now");
  // Plain text is not HTML.
  EXPECT_EQ(Norm("\n<span style=\"display:none\">shown</span>\n"),
            Norm("\n<span style=\"display:none\">shown</span>\n"));
  // A hidden element never closed hides the rest of its part only.
  EXPECT_EQ(Norm("Content-Type: multipart/alternative; boundary=b\n\n--b\n"
                 "Content-Type: text/html\n\n<div style=\"display:none\">gone\n--b\n"
                 "Content-Type: text/plain\n\nkept\n--b--\n"),
            "kept");
}

TEST(BodyNormalizerHiddenTest, SameTokensHoweverTheBytesAreCut) {
  const std::string message =
      "Content-Type: text/html\n\n<style>.h { display:none }</style><p>Cheap <span "
      "class=h>lorem</span>watches <div style=\"color:#fff\">ipsum</div> for <font "
      "color=white>dolor</font>sale</p>\n";
  const std::string whole = Norm(message);
  EXPECT_EQ(whole, "cheap watches for sale");
  std::mt19937 rng(5);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(NormInPieces(message, rng, 1 + i % 9), whole);
}

}  // namespace
}  // namespace sluice
