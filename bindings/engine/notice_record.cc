#include "bindings/engine/notice_record.h"

#include <unistd.h>

#include "ratelimit/config.h"
#include "ratelimit/types.h"

namespace sluice {

std::string CleanText(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      out.push_back(c < 0x20 || c == 0x7f ? '?' : static_cast<char>(c));
      ++i;
      continue;
    }
    // Well-formed UTF-8 only (RFC 3629): no lead byte above F4, no
    // overlong forms, no surrogates, nothing above U+10FFFF.
    const size_t len = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c <= 0xf4 ? 4 : 0;
    bool ok = len > 0 && c >= 0xc2 && i + len <= s.size();
    for (size_t k = 1; ok && k < len; ++k) {
      const unsigned char b = static_cast<unsigned char>(s[i + k]);
      unsigned char lo = 0x80, hi = 0xbf;  // the second byte's range depends on the first
      if (k == 1 && c == 0xe0) lo = 0xa0;
      if (k == 1 && c == 0xed) hi = 0x9f;
      if (k == 1 && c == 0xf0) lo = 0x90;
      if (k == 1 && c == 0xf4) hi = 0x8f;
      ok = b >= lo && b <= hi;
    }
    if (ok) {
      out.append(s.data() + i, len);
      i += len;
    } else {
      out.push_back('?');
      ++i;
    }
  }
  return out;
}

std::string HostName() {
  char name[256] = {};
  gethostname(name, sizeof(name) - 1);
  return name[0] != 0 ? name : "localhost";
}

config::NoticeRecord NoticeRecordOf(const Notice& n, absl::string_view host) {
  config::NoticeRecord r;
  r.set_time(absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", n.time, absl::UTCTimeZone()));
  r.set_source(CleanText(n.source));
  if (n.source == "limit") {
    r.set_level(std::string(LevelName(n.level)));
    r.set_metric(std::string(MetricName(n.metric)));
    r.set_window(FormatWindow(n.window_seconds));
  }
  r.set_entity(CleanText(n.entity));
  r.set_limit(n.limit);
  r.set_usage(n.usage);
  r.set_action(std::string(ActionName(n.action)));
  r.set_shadow(n.shadow);
  r.set_text(CleanText(n.text));
  r.set_host(CleanText(host));
  return r;
}

}  // namespace sluice
