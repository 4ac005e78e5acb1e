#include "reputation/local_lists.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "ratelimit/ip.h"

namespace sluice {

namespace {

uint32_t Mask4(uint32_t a, int len) { return len == 0 ? 0 : a & (~uint32_t{0} << (32 - len)); }

void Mask6(uint64_t* hi, uint64_t* lo, int len) {
  if (len <= 64) {
    *lo = 0;
    *hi = len == 0 ? 0 : *hi & (~uint64_t{0} << (64 - len));
  } else if (len < 128) {
    *lo &= ~uint64_t{0} << (128 - len);
  }
}

uint64_t Load64(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = v << 8 | p[i];
  return v;
}

}  // namespace

absl::StatusOr<std::shared_ptr<const LocalLists>> LocalLists::Parse(absl::string_view text,
                                                                    absl::string_view filename) {
  std::shared_ptr<LocalLists> l(new LocalLists);
  int line_no = 0;
  size_t start = 0;
  while (start <= text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == absl::string_view::npos) nl = text.size();
    absl::string_view line = text.substr(start, nl - start);
    start = nl + 1;
    ++line_no;
    size_t hash = line.find('#');
    if (hash != absl::string_view::npos) line = line.substr(0, hash);
    const size_t indent = line.size() - absl::StripLeadingAsciiWhitespace(line).size();
    line = absl::StripAsciiWhitespace(line);
    if (line.empty()) {
      if (nl == text.size()) break;
      continue;
    }
    auto err = [&](size_t col, absl::string_view msg) {
      return absl::InvalidArgumentError(
          absl::StrCat(filename, ":", line_no, ":", indent + col + 1, ": ", msg));
    };
    size_t sp = line.find_first_of(" \t");
    absl::string_view word = line.substr(0, sp);
    Match v;
    if (word == "allow") {
      v = Match::kAllow;
    } else if (word == "deny") {
      v = Match::kDeny;
    } else {
      return err(0, absl::StrCat("expected allow or deny, got \"", word, "\""));
    }
    if (sp == absl::string_view::npos) return err(line.size(), "missing address or domain");
    absl::string_view rest = line.substr(sp);
    const size_t col = sp + (rest.size() - absl::StripLeadingAsciiWhitespace(rest).size());
    absl::string_view item = absl::StripAsciiWhitespace(rest);
    if (item.find_first_of(" \t") != absl::string_view::npos) {
      return err(col, "one address or domain per line");
    }
    auto put = [&](auto& map, const auto& key) -> absl::Status {
      auto [it, inserted] = map.try_emplace(key, v);
      if (!inserted && it->second != v) return err(col, "listed as both allow and deny");
      if (inserted) ++l->entries_;
      return absl::OkStatus();
    };
    IpAddress ip;
    int len;
    const bool looks_ip = item.find(':') != absl::string_view::npos ||
                          (!item.empty() && absl::ascii_isdigit(item[0]) &&
                           item.find_first_not_of("0123456789./") == absl::string_view::npos);
    if (looks_ip) {
      if (!ParseCidr(item, &ip, &len)) {
        return err(col, absl::StrCat("bad address or CIDR \"", item, "\""));
      }
      const unsigned char* a = ip.bytes;
      if (ip.family == 4) {
        uint32_t x = uint32_t{a[0]} << 24 | uint32_t{a[1]} << 16 | uint32_t{a[2]} << 8 | a[3];
        if (auto s = put(l->v4_[len], Mask4(x, len)); !s.ok()) return s;
      } else {
        uint64_t hi = Load64(a), lo = Load64(a + 8);
        Mask6(&hi, &lo, len);
        if (auto s = put(l->v6_[len], Key6{hi, lo}); !s.ok()) return s;
      }
      continue;
    }
    std::string d = absl::AsciiStrToLower(item);
    while (!d.empty() && d.front() == '.') d.erase(0, 1);
    while (!d.empty() && d.back() == '.') d.pop_back();
    if (d.empty() || d.find("..") != std::string::npos ||
        d.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-._") != std::string::npos) {
      return err(col, absl::StrCat("bad domain \"", item, "\""));
    }
    if (auto s = put(l->domains_, d); !s.ok()) return s;
  }
  for (int len = 32; len >= 0; --len) {
    if (!l->v4_[len].empty()) l->v4_lengths_.push_back(len);
  }
  for (int len = 128; len >= 0; --len) {
    if (!l->v6_[len].empty()) l->v6_lengths_.push_back(len);
  }
  return std::shared_ptr<const LocalLists>(std::move(l));
}

LocalLists::Match LocalLists::CheckIp(absl::string_view ip) const {
  IpAddress addr;
  if (!ParseIp(ip, &addr)) return Match::kNone;
  const unsigned char* a = addr.bytes;
  if (addr.family == 4) {
    uint32_t x = uint32_t{a[0]} << 24 | uint32_t{a[1]} << 16 | uint32_t{a[2]} << 8 | a[3];
    for (int l : v4_lengths_) {
      auto it = v4_[l].find(Mask4(x, l));
      if (it != v4_[l].end()) return it->second;
    }
    return Match::kNone;
  }
  for (int l : v6_lengths_) {
    uint64_t hi = Load64(a), lo = Load64(a + 8);
    Mask6(&hi, &lo, l);
    auto it = v6_[l].find(Key6{hi, lo});
    if (it != v6_[l].end()) return it->second;
  }
  return Match::kNone;
}

LocalLists::Match LocalLists::CheckDomain(absl::string_view domain) const {
  if (domains_.empty() || domain.empty() || domain.size() > 253) return Match::kNone;
  char buf[256];
  size_t n = 0;
  for (char c : domain) buf[n++] = absl::ascii_tolower(static_cast<unsigned char>(c));
  while (n > 0 && buf[n - 1] == '.') --n;
  absl::string_view d(buf, n);
  // The name itself, then each parent: the first (longest) match wins.
  while (!d.empty()) {
    auto it = domains_.find(std::string(d));
    if (it != domains_.end()) return it->second;
    size_t dot = d.find('.');
    if (dot == absl::string_view::npos) break;
    d.remove_prefix(dot + 1);
  }
  return Match::kNone;
}

absl::StatusOr<std::unique_ptr<LocalListsFile>> LocalListsFile::Open(const std::string& path) {
  std::unique_ptr<LocalListsFile> f(new LocalListsFile);
  f->path_ = path;
  if (auto s = f->Reload(); !s.ok()) return s;
  return f;
}

absl::Status LocalListsFile::Reload() {
  std::ifstream in(path_);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path_));
  std::stringstream ss;
  ss << in.rdbuf();
  auto l = LocalLists::Parse(ss.str(), path_);
  if (!l.ok()) return l.status();
  std::lock_guard<std::mutex> lock(mu_);
  current_ = std::move(*l);
  return absl::OkStatus();
}

std::shared_ptr<const LocalLists> LocalListsFile::Get() const {
  std::lock_guard<std::mutex> lock(mu_);
  return current_;
}

}  // namespace sluice
