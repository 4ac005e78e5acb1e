#include "reputation/dns/dns_answer.h"

#include <arpa/inet.h>

#include <algorithm>

namespace sluice {

namespace {

class Reader {
 public:
  explicit Reader(absl::string_view m) : m_(m) {}
  bool U8(uint8_t* v) {
    if (pos_ + 1 > m_.size()) return false;
    *v = static_cast<uint8_t>(m_[pos_++]);
    return true;
  }
  bool U16(uint16_t* v) {
    uint8_t a, b;
    if (!U8(&a) || !U8(&b)) return false;
    *v = static_cast<uint16_t>(a << 8 | b);
    return true;
  }
  bool U32(uint32_t* v) {
    uint16_t a, b;
    if (!U16(&a) || !U16(&b)) return false;
    *v = uint32_t{a} << 16 | b;
    return true;
  }
  // Skips a (possibly compressed) name at the cursor.
  bool SkipName() {
    for (int labels = 0; labels < 128; ++labels) {
      uint8_t len;
      if (!U8(&len)) return false;
      if (len == 0) return true;
      if ((len & 0xC0) == 0xC0) return Skip(1);  // a pointer ends the name here
      if ((len & 0xC0) != 0) return false;
      if (!Skip(len)) return false;
    }
    return false;
  }
  bool Skip(size_t n) {
    if (m_.size() - pos_ < n) return false;
    pos_ += n;
    return true;
  }
  size_t pos() const { return pos_; }
  absl::string_view Bytes(size_t at, size_t n) const { return m_.substr(at, n); }

 private:
  absl::string_view m_;
  size_t pos_ = 0;
};

// Reads a possibly compressed name starting at `at` (bounded: at most 128
// labels and 16 pointer jumps, 255 bytes).
bool ReadName(absl::string_view m, size_t at, std::string* out) {
  out->clear();
  int jumps = 0;
  for (int labels = 0; labels < 128; ++labels) {
    if (at >= m.size()) return false;
    const uint8_t len = static_cast<uint8_t>(m[at]);
    if (len == 0) return true;
    if ((len & 0xC0) == 0xC0) {
      if (at + 1 >= m.size() || ++jumps > 16) return false;
      at = (size_t{len & 0x3Fu} << 8) | static_cast<uint8_t>(m[at + 1]);
      continue;
    }
    if ((len & 0xC0) != 0 || at + 1 + len > m.size()) return false;
    if (!out->empty()) out->push_back('.');
    for (size_t i = 0; i < len; ++i) {
      char ch = m[at + 1 + i];
      out->push_back(ch >= 'A' && ch <= 'Z' ? static_cast<char>(ch - 'A' + 'a') : ch);
    }
    if (out->size() > 255) return false;
    at += 1 + len;
  }
  return false;
}

absl::Status Bad(const char* why) {
  return absl::InvalidArgumentError(std::string("malformed DNS answer: ") + why);
}

}  // namespace

absl::Status ParseDnsAnswer(absl::string_view message, DnsAnswer* out) {
  *out = DnsAnswer();
  Reader r(message);
  uint16_t id, flags, qd, an, ns, ar;
  if (!r.U16(&id) || !r.U16(&flags) || !r.U16(&qd) || !r.U16(&an) || !r.U16(&ns) || !r.U16(&ar)) {
    return Bad("short header");
  }
  if ((flags & 0x8000) == 0) return Bad("not a response");
  out->rcode = flags & 0xF;
  for (int i = 0; i < qd; ++i) {
    if (!r.SkipName() || !r.Skip(4)) return Bad("question");
  }
  uint32_t min_ttl = UINT32_MAX;
  const int records = an + ns;  // the additional section is not needed
  for (int i = 0; i < records; ++i) {
    uint16_t type, klass, rdlen;
    uint32_t ttl;
    if (!r.SkipName() || !r.U16(&type) || !r.U16(&klass) || !r.U32(&ttl) || !r.U16(&rdlen)) {
      return Bad("record header");
    }
    const size_t rdata = r.pos();
    if (!r.Skip(rdlen)) return Bad("record data");
    ttl = std::min<uint32_t>(ttl, 0x7FFFFFFF);  // RFC 2181: a TTL is 31 bits
    const bool answer = i < an;
    if (answer && type == 1 && klass == 1) {  // A
      if (rdlen != 4) return Bad("A length");
      absl::string_view b = r.Bytes(rdata, 4);
      out->a.push_back(uint32_t{static_cast<uint8_t>(b[0])} << 24 |
                       uint32_t{static_cast<uint8_t>(b[1])} << 16 |
                       uint32_t{static_cast<uint8_t>(b[2])} << 8 | static_cast<uint8_t>(b[3]));
      min_ttl = std::min(min_ttl, ttl);
    } else if (answer && type == 12 && klass == 1) {  // PTR
      std::string name;
      if (!ReadName(message, rdata, &name)) return Bad("PTR name");
      if (out->ptr.size() < 16) out->ptr.push_back(name);
      min_ttl = std::min(min_ttl, ttl);
    } else if (answer && type == 28 && klass == 1) {  // AAAA
      if (rdlen != 16) return Bad("AAAA length");
      char buf[INET6_ADDRSTRLEN];
      inet_ntop(AF_INET6, r.Bytes(rdata, 16).data(), buf, sizeof(buf));
      out->aaaa.push_back(buf);
      min_ttl = std::min(min_ttl, ttl);
    } else if (answer && type == 16 && klass == 1) {  // TXT: length-prefixed strings
      std::string text;
      size_t p = 0;
      absl::string_view b = r.Bytes(rdata, rdlen);
      while (p < b.size()) {
        size_t n = static_cast<uint8_t>(b[p++]);
        if (n > b.size() - p) return Bad("TXT string");
        text.append(b.data() + p, n);
        p += n;
      }
      if (out->txt.size() < 16) out->txt.push_back(text.substr(0, 512));
    } else if (!answer && type == 6) {  // SOA in authority: negative TTL
      // MNAME and RNAME, then serial, refresh, retry, expire, minimum.
      Reader s(r.Bytes(0, rdata + rdlen));
      if (!s.Skip(rdata) || !s.SkipName() || !s.SkipName() || !s.Skip(16)) {
        return Bad("SOA");
      }
      uint32_t minimum;
      if (!s.U32(&minimum)) return Bad("SOA minimum");
      out->negative_ttl = std::min<uint32_t>(ttl, std::min<uint32_t>(minimum, 0x7FFFFFFF));
    }
  }
  out->ttl = min_ttl == UINT32_MAX ? 0 : min_ttl;
  return absl::OkStatus();
}

}  // namespace sluice
