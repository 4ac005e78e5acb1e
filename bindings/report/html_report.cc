#include "bindings/report/html_report.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bindings/engine/notice_record.h"
#include "bindings/engine/version.h"
#include "ratelimit/config.h"

namespace sluice {
namespace {

using Series = config::ActivityReport::Series;

// Text from mail made safe inside HTML text and attribute values.
std::string Html(absl::string_view s) {
  const std::string clean = CleanText(s);
  std::string out;
  out.reserve(clean.size());
  for (char c : clean) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

// 1234567 -> "1,234,567".
std::string Count(uint64_t n) {
  std::string s = absl::StrCat(n);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(i, ",");
  return s;
}

std::string Bytes(uint64_t n) {
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  return u == 0 ? absl::StrCat(n, " B") : absl::StrFormat("%.1f %s", v, units[u]);
}

uint64_t Sum(const google::protobuf::RepeatedField<uint64_t>& v) {
  uint64_t s = 0;
  for (uint64_t x : v) s += x;
  return s;
}

// The colours of the charts' series, a trip's action, a share.
constexpr const char* kPalette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd",
                                    "#8c564b", "#e377c2", "#17becf", "#7f7f7f"};

const char* ActionColour(absl::string_view action, bool shadow) {
  if (shadow) return "#9e9e9e";
  if (action == "reject" || action == "discard") return "#d62728";
  if (action == "hold") return "#9467bd";
  if (action == "notify") return "#1f77b4";
  return "#ff9f1c";  // defer
}

const char* ShareColour(double share) {
  return share >= 0.9 ? "#d62728" : share >= 0.5 ? "#ff9f1c" : "#2ca02c";
}

// The most a message rule lets through in one hour, for rules drawn on an
// hourly chart: a 1h window's limit, or a shorter window's limit times
// the windows in an hour. 0: not drawn (longer windows, GCRA, shadow,
// unlimited).
uint64_t HourlyLimit(const config::RuleUsage& r, bool* exact) {
  if (r.metric() != config::MESSAGES || r.unlimited() || r.shadow()) return 0;
  if (r.algorithm() == config::GCRA) return 0;
  auto w = ParseWindow(r.window());
  if (!w.ok() || *w <= 0 || *w > 3600) return 0;
  *exact = *w == 3600;
  return r.limit() * static_cast<uint64_t>(3600 / *w);
}

// A rule's usage: with limits shared by several hosts, the larger of
// this host's and all hosts' at the last sync.
uint64_t Used(const config::RuleUsage& r) {
  return r.shared() ? std::max(r.usage(), r.global_usage()) : r.usage();
}

// The entity's tightest rule: the highest usage/limit (unlimited and
// shadow rules left out), and which rule it is.
double Share(const Series& s, const config::RuleUsage** which) {
  double best = -1;
  *which = nullptr;
  for (const config::RuleUsage& r : s.rule()) {
    if (r.unlimited() || r.shadow()) continue;
    const uint64_t used = Used(r);
    const double share = r.limit() == 0 ? 1.0 : static_cast<double>(used) / r.limit();
    if (share > best) {
      best = share;
      *which = &r;
    }
  }
  return best < 0 ? 0 : best;
}

std::string RuleText(const config::RuleUsage& r) {
  return absl::StrCat(Count(Used(r)), " / ",
                      r.unlimited() ? std::string("unlimited") : Count(r.limit()), " ",
                      MetricName(static_cast<Metric>(r.metric())), " per ", r.window(),
                      r.shadow() ? " (shadow)" : "", r.shared() ? " (all hosts)" : "");
}

// How close an entity came to its limits: the higher of its busiest
// hour against its hourly message limit (HourlyLimit) and its usage now
// against each rule (Share), with which it is in words. `any` false: no
// limit applies.
struct Tightness {
  bool any = false;
  double share = 0;
  std::string what;
};

Tightness Tightest(const Series& s) {
  Tightness t;
  const config::RuleUsage* now = nullptr;
  const double now_share = Share(s, &now);
  if (now != nullptr) {
    t = {true, now_share,
         absl::StrCat(MetricName(static_cast<Metric>(now->metric())), " per ", now->window(),
                      ", now")};
  }
  uint64_t hourly = 0;
  for (const config::RuleUsage& r : s.rule()) {
    bool exact = false;
    const uint64_t l = HourlyLimit(r, &exact);
    if (l > 0 && (hourly == 0 || l < hourly)) hourly = l;
  }
  if (hourly > 0) {
    uint64_t peak = 0;
    for (uint64_t v : s.messages()) peak = std::max(peak, v);
    const double p = static_cast<double>(peak) / static_cast<double>(hourly);
    if (!t.any || p > t.share) {
      t = {true, p, absl::StrCat("the ", Count(hourly), " messages an hour, busiest hour")};
    }
  }
  return t;
}

// A share as a bar and a percentage.
std::string Bar(const Tightness& t) {
  if (!t.any) return "–";
  return absl::StrFormat(
      "<svg class=\"bar\" width=\"120\" height=\"12\"><rect width=\"120\" height=\"12\" "
      "fill=\"#eee\"/><rect width=\"%.1f\" height=\"12\" fill=\"%s\"/></svg> "
      "<span class=\"share\" style=\"color:%s\">%d%%</span> <span class=\"what\">of %s</span>",
      120 * std::min(t.share, 1.0), ShareColour(t.share), ShareColour(t.share),
      std::llround(t.share * 100), Html(t.what));
}

class Page {
 public:
  Page(const config::ActivityReport& r, const HtmlReportOptions& o) : r_(r), o_(o) {
    for (const Series& s : r.series()) by_level_[s.level()].push_back(&s);
    for (auto& [level, v] : by_level_) {  // heaviest first, whoever wrote the report
      std::stable_sort(v.begin(), v.end(), [](const Series* a, const Series* b) {
        return a->total_messages() > b->total_messages();
      });
    }
  }

  std::string Render() {
    Head();
    Summary();
    Hourly();
    Top();
    Trips();
    Drilldown();
    absl::StrAppend(&out_, "<footer>sluice ", kVersionString,
                    " · charts are inline SVG; this page fetches nothing</footer>\n</body>\n"
                    "</html>\n");
    return std::move(out_);
  }

 private:
  // The levels in the order of the hierarchy, those with series only.
  std::vector<std::string> Levels() const {
    std::vector<std::string> out;
    for (const char* l : {"server", "plan", "subscription", "domain", "mailbox", "client_ip",
                          "sasl_user", "script", "list"}) {
      if (by_level_.count(l) > 0) out.push_back(l);
    }
    return out;
  }

  std::string HourLabel(int i, bool with_date) const {
    const absl::Time t = absl::FromUnixSeconds(r_.first_hour_unix() + int64_t{3600} * i);
    return absl::FormatTime(with_date ? "%b %d %H:00" : "%H:00", t, o_.tz);
  }
  std::string TimeText(absl::Time t) const {
    return absl::FormatTime("%Y-%m-%d %H:%M:%S", t, o_.tz);
  }

  void Head() {
    const absl::Time from = absl::FromUnixSeconds(r_.first_hour_unix());
    const absl::Time to = from + absl::Hours(std::max(r_.hours(), 1));
    const std::string period =
        r_.hours() <= 0
            ? std::string("nothing recorded yet")
            : absl::StrCat(TimeText(from), " to ", TimeText(to), " (", Html(o_.tz.name()), ") · ",
                           r_.hours(), r_.hours() == 1 ? " hour" : " hours");
    absl::StrAppend(&out_,
                    "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                    "<title>sluice report · ",
                    Html(r_.source()), "</title>\n<style>\n", kStyle, "</style>\n</head>\n<body>\n",
                    "<header><h1>sluice report</h1><p class=\"meta\">", Html(r_.source()), " · ",
                    period, "</p></header>\n");
  }

  void Summary() {
    // The server level counts every message once (each message is charged
    // to it); without it, the mailboxes do.
    uint64_t msgs = 0, rcpts = 0, bytes = 0;
    for (const char* l : {"server", "mailbox", "client_ip"}) {
      auto it = by_level_.find(l);
      if (it == by_level_.end()) continue;
      for (const Series* s : it->second) {
        msgs += Sum(s->messages());
        rcpts += Sum(s->recipients());
        bytes += Sum(s->bytes());
      }
      break;
    }
    size_t entities = 0;
    for (const auto& [l, v] : by_level_) entities += v.size();
    absl::StrAppend(&out_, "<section id=\"summary\"><h2>Summary</h2><div class=\"cards\">");
    auto card = [&](const char* name, const std::string& value, const std::string& key) {
      absl::StrAppend(&out_, "<div class=\"card\" data-key=\"", key, "\"><b>", value, "</b><span>",
                      name, "</span></div>");
    };
    card("messages", Count(msgs), "messages");
    card("recipients", Count(rcpts), "recipients");
    card("bytes", Bytes(bytes), "bytes");
    card("trips", Count(static_cast<uint64_t>(r_.trip_size())), "trips");
    card("entities shown", Count(entities), "entities");
    absl::StrAppend(&out_, "</div>");
    if (r_.messages_over_cap() > 0 || r_.entities_left_out() > 0 || r_.trips_left_out() > 0) {
      absl::StrAppend(&out_, "<p class=\"note\">", Count(r_.entities_left_out()),
                      " lighter entities left out of this page; ", Count(r_.messages_over_cap()),
                      " messages counted under (other) (the recorder was full); ",
                      Count(r_.trips_left_out()), " older trips dropped.</p>");
    }
    if (r_.series_size() == 0 && r_.trip_size() == 0) {
      absl::StrAppend(&out_, "<p class=\"empty\">No traffic recorded in this period.</p>");
    }
    absl::StrAppend(&out_, "</section>\n");
  }

  // Messages per hour of a level's heaviest entities, with limits.
  void Chart(const std::string& level, const std::vector<const Series*>& all) {
    const int n = std::max(r_.hours(), 1);
    const size_t k = std::min<size_t>(all.size(), static_cast<size_t>(o_.chart_series));
    std::vector<const Series*> drawn(all.begin(), all.begin() + k);
    // Limit lines: distinct hourly limits of the drawn entities.
    std::map<uint64_t, std::pair<bool, std::string>> limits;  // limit -> exact, whose
    uint64_t top = 1;
    for (const Series* s : drawn) {
      for (int i = 0; i < s->messages_size(); ++i) top = std::max(top, s->messages(i));
      for (const config::RuleUsage& r : s->rule()) {
        bool exact = false;
        const uint64_t l = HourlyLimit(r, &exact);
        if (l == 0) continue;
        auto [it, fresh] = limits.try_emplace(l, exact, s->entity());
        if (!fresh && !it->second.first && exact) it->second.first = true;
      }
    }
    // Draw a limit only if it is within 4x of the traffic: a limit far above
    // would flatten the lines to the floor; it is listed instead.
    std::vector<std::pair<uint64_t, bool>> lines;
    std::vector<uint64_t> off_chart;
    for (const auto& [l, v] : limits) {
      if (l <= top * 4) {
        lines.emplace_back(l, v.first);
        top = std::max(top, l);
      } else {
        off_chart.push_back(l);
      }
    }
    // The axis ends at a round number just above the highest line, with
    // a grid line at each quarter.
    const double want = static_cast<double>(top) * 1.05;
    const double decade = std::pow(10.0, std::floor(std::log10(want)));
    double ymax = 10 * decade;
    for (double m : {1.0, 1.2, 1.6, 2.0, 2.4, 3.0, 4.0, 5.0, 6.0, 8.0}) {
      if (m * decade >= want) {
        ymax = m * decade;
        break;
      }
    }
    constexpr int grid = 4;
    constexpr int kW = 900, kH = 240, kL = 56, kR = 16, kT = 12, kB = 34;
    const double pw = kW - kL - kR, ph = kH - kT - kB;
    auto x = [&](int i) { return kL + (n == 1 ? pw / 2 : pw * i / (n - 1)); };
    auto y = [&](double v) { return kT + ph - ph * v / ymax; };
    absl::StrAppend(&out_, "<figure><figcaption>", Html(level), ": messages per hour, ",
                    k < all.size() ? absl::StrCat("the ", k, " heaviest of ", all.size())
                                   : absl::StrCat(k, k == 1 ? " entity" : " entities"),
                    "</figcaption>\n<svg class=\"chart\" data-level=\"", Html(level),
                    "\" viewBox=\"0 0 ", kW, " ", kH, "\" width=\"", kW, "\" height=\"", kH,
                    "\" role=\"img\" aria-label=\"messages per hour at level ", Html(level),
                    "\">\n");
    // Axes and grid.
    for (int g = 0; g <= grid; ++g) {
      const double v = ymax * g / grid;
      absl::StrAppendFormat(&out_,
                            "<line class=\"grid\" x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\"/>"
                            "<text class=\"tick\" x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s"
                            "</text>\n",
                            kL, kW - kR, y(v), y(v), kL - 6, y(v) + 4,
                            Count(static_cast<uint64_t>(std::llround(v))));
    }
    const int step = std::max(1, n / 12);
    for (int i = 0; i < n; i += step) {
      absl::StrAppendFormat(&out_,
                            "<text class=\"tick\" x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s"
                            "</text>\n",
                            x(i), kH - kB + 16, HourLabel(i, i == 0 || step >= 24));
    }
    // Labels at the right end; one too close to the previous goes left.
    double last_label = -100;
    for (const auto& [l, exact] : lines) {
      const double ly = y(static_cast<double>(l));
      const bool left = std::abs(ly - last_label) < 12;
      if (!left) last_label = ly;
      absl::StrAppendFormat(
          &out_,
          "<line class=\"limit%s\" data-limit=\"%d\" x1=\"%d\" x2=\"%d\" y1=\"%.1f\" "
          "y2=\"%.1f\"><title>limit %s messages per hour%s</title></line>"
          "<text class=\"limit-label\" x=\"%d\" y=\"%.1f\" text-anchor=\"%s\">limit %s/h%s"
          "</text>\n",
          exact ? "" : " derived", l, kL, kW - kR, ly, ly, Count(l),
          exact ? "" : " (a shorter window's most)", left ? kL + 4 : kW - kR - 4, ly - 4,
          left ? "start" : "end", Count(l), exact ? "" : "*");
    }
    for (size_t j = 0; j < drawn.size(); ++j) {
      const Series& s = *drawn[j];
      const char* colour = kPalette[j % (sizeof(kPalette) / sizeof(kPalette[0]))];
      std::string points;
      for (int i = 0; i < n && i < s.messages_size(); ++i) {
        absl::StrAppendFormat(&points, "%s%.1f,%.1f", i ? " " : "", x(i),
                              y(static_cast<double>(s.messages(i))));
      }
      absl::StrAppend(&out_, "<polyline class=\"series\" data-entity=\"", Html(s.entity()),
                      "\" stroke=\"", colour, "\" points=\"", points, "\"><title>",
                      Html(s.entity()), ": ", Count(s.total_messages()),
                      " messages</title></polyline>\n");
      if (n <= 48) {
        for (int i = 0; i < n && i < s.messages_size(); ++i) {
          if (s.messages(i) == 0) continue;
          absl::StrAppendFormat(
              &out_, "<circle class=\"point\" cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>",
              x(i), y(static_cast<double>(s.messages(i))), colour);
        }
        absl::StrAppend(&out_, "\n");
      }
    }
    absl::StrAppend(&out_, "</svg>\n<ul class=\"legend\">");
    for (size_t j = 0; j < drawn.size(); ++j) {
      absl::StrAppend(&out_, "<li><i style=\"background:",
                      kPalette[j % (sizeof(kPalette) / sizeof(kPalette[0]))], "\"></i>",
                      Html(drawn[j]->entity()), " (", Count(drawn[j]->total_messages()), ")</li>");
    }
    if (!lines.empty()) absl::StrAppend(&out_, "<li><i class=\"dash\"></i>limit per hour</li>");
    for (uint64_t l : off_chart) {
      absl::StrAppend(&out_, "<li class=\"off\">limit ", Count(l), "/h (above the chart)</li>");
    }
    absl::StrAppend(&out_, "</ul></figure>\n");
  }

  void Hourly() {
    absl::StrAppend(&out_, "<section id=\"hourly\"><h2>Messages per hour</h2>\n");
    for (const std::string& level : Levels()) Chart(level, by_level_[level]);
    absl::StrAppend(&out_, "</section>\n");
  }

  void Top() {
    absl::StrAppend(&out_,
                    "<section id=\"top\"><h2>Top senders</h2><p class=\"hint\">Messages over the "
                    "period; usage of each rule now, and the share of the tightest limit.</p>\n");
    for (const std::string& level : Levels()) {
      const auto& all = by_level_[level];
      absl::StrAppend(&out_, "<h3>", Html(level), "</h3><table class=\"top\" data-level=\"",
                      Html(level),
                      "\"><thead><tr><th>#</th><th>entity</th><th>messages</th>"
                      "<th>peak / hour</th><th>rules now</th><th>share of limit</th></tr>"
                      "</thead><tbody>\n");
      const size_t rows = std::min<size_t>(all.size(), static_cast<size_t>(o_.top_rows));
      for (size_t i = 0; i < rows; ++i) {
        const Series& s = *all[i];
        uint64_t peak = 0;
        for (uint64_t v : s.messages()) peak = std::max(peak, v);
        const Tightness t = Tightest(s);
        std::string rules;
        for (const config::RuleUsage& r : s.rule()) {
          absl::StrAppend(&rules, rules.empty() ? "" : "<br>", Html(RuleText(r)));
        }
        absl::StrAppendFormat(
            &out_,
            "<tr class=\"sender\" data-entity=\"%s\" data-share=\"%.3f\"><td>%d</td><td>%s</td>"
            "<td class=\"num\">%s</td><td class=\"num\">%s</td><td class=\"rules\">%s</td>"
            "<td>%s",
            Html(s.entity()), t.share, i + 1, Html(s.entity()), Count(s.total_messages()),
            Count(peak), rules.empty() ? "no rule" : rules, Bar(t));
        absl::StrAppend(&out_, "</td></tr>\n");
      }
      absl::StrAppend(&out_, "</tbody></table>\n");
      if (all.size() > rows) {
        absl::StrAppend(&out_, "<p class=\"note\">", all.size() - rows, " more not listed</p>\n");
      }
    }
    absl::StrAppend(&out_, "</section>\n");
  }

  void Trips() {
    absl::StrAppend(&out_, "<section id=\"trips\"><h2>Trips</h2>\n");
    if (r_.trip_size() == 0) {
      absl::StrAppend(&out_, "<p class=\"empty\">No rule tripped in this period.</p></section>\n");
      return;
    }
    // One row per level (limits) or detector.
    std::vector<std::string> rows;
    std::vector<std::pair<absl::Time, const config::NoticeRecord*>> trips;
    for (const config::NoticeRecord& t : r_.trip()) {
      absl::Time tt;
      std::string err;
      if (!absl::ParseTime(absl::RFC3339_full, t.time(), &tt, &err)) continue;
      trips.emplace_back(tt, &t);
      const std::string row = t.source() == "limit" ? t.level() : t.source();
      if (std::find(rows.begin(), rows.end(), row) == rows.end()) rows.push_back(row);
    }
    const absl::Time from = absl::FromUnixSeconds(r_.first_hour_unix());
    const double span = std::max<double>(1, r_.hours()) * 3600;
    constexpr int kW = 900, kL = 120, kR = 16, kRow = 26, kT = 10;
    const int h = kT + kRow * static_cast<int>(rows.size()) + 28;
    absl::StrAppend(&out_, "<svg class=\"timeline\" viewBox=\"0 0 ", kW, " ", h, "\" width=\"", kW,
                    "\" height=\"", h, "\" role=\"img\" aria-label=\"trips over time\">\n");
    for (size_t i = 0; i < rows.size(); ++i) {
      const int yy = kT + kRow * static_cast<int>(i) + kRow / 2;
      absl::StrAppendFormat(
          &out_,
          "<line class=\"grid\" x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\"/>"
          "<text class=\"tick\" x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>\n",
          kL, kW - kR, yy, yy, kL - 6, yy + 4, Html(rows[i]));
    }
    const int n = std::max(r_.hours(), 1);
    const int step = std::max(1, n / 12);
    for (int i = 0; i <= n; i += step) {
      absl::StrAppendFormat(&out_,
                            "<text class=\"tick\" x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s"
                            "</text>\n",
                            kL + (kW - kL - kR) * static_cast<double>(i) / n, h - 8,
                            HourLabel(i, i == 0 || step >= 24));
    }
    for (const auto& [tt, t] : trips) {
      const std::string row = t->source() == "limit" ? t->level() : t->source();
      const size_t ri = std::find(rows.begin(), rows.end(), row) - rows.begin();
      const double frac = std::clamp(absl::ToDoubleSeconds(tt - from) / span, 0.0, 1.0);
      absl::StrAppendFormat(
          &out_,
          "<circle class=\"trip\" data-source=\"%s\" data-level=\"%s\" data-entity=\"%s\" "
          "data-action=\"%s\" cx=\"%.1f\" cy=\"%d\" r=\"5\" fill=\"%s\"><title>%s %s %s: %s"
          "</title></circle>\n",
          Html(t->source()), Html(t->level()), Html(t->entity()), Html(t->action()),
          kL + (kW - kL - kR) * frac, kT + kRow * static_cast<int>(ri) + kRow / 2,
          ActionColour(t->action(), t->shadow()), TimeText(tt), Html(t->entity()),
          t->shadow() ? absl::StrCat("would ", Html(t->action())) : Html(t->action()),
          Html(t->text()));
    }
    absl::StrAppend(&out_,
                    "</svg>\n<table class=\"trips\"><thead><tr><th>time</th><th>rule</th>"
                    "<th>entity</th><th>usage / limit</th><th>action</th><th>text</th></tr>"
                    "</thead><tbody>\n");
    // Newest first.
    int listed = 0;
    for (auto it = trips.rbegin(); it != trips.rend() && listed < o_.trip_rows; ++it, ++listed) {
      const config::NoticeRecord& t = *it->second;
      const std::string rule = t.source() == "limit"
                                   ? absl::StrCat(t.level(), " ", t.metric(), " per ", t.window())
                                   : t.source();
      absl::StrAppend(&out_, "<tr class=\"trip\"><td>", TimeText(it->first), "</td><td>",
                      Html(rule), "</td><td>", Html(t.entity()), "</td><td class=\"num\">",
                      Count(t.usage()), " / ", Count(t.limit()), "</td><td>",
                      t.shadow() ? "would " : "", Html(t.action()), "</td><td>", Html(t.text()),
                      "</td></tr>\n");
    }
    absl::StrAppend(&out_, "</tbody></table>\n");
    if (trips.size() > static_cast<size_t>(listed)) {
      absl::StrAppend(&out_, "<p class=\"note\">", trips.size() - listed,
                      " older trips on the timeline only</p>\n");
    }
    absl::StrAppend(&out_, "</section>\n");
  }

  // A 120x18 sparkline of an entity's messages per hour.
  std::string Spark(const Series& s) const {
    uint64_t top = 1;
    for (uint64_t v : s.messages()) top = std::max(top, v);
    const int n = s.messages_size();
    std::string pts;
    for (int i = 0; i < n; ++i) {
      absl::StrAppendFormat(&pts, "%s%.1f,%.1f", i ? " " : "", n == 1 ? 60.0 : 120.0 * i / (n - 1),
                            17 - 16.0 * static_cast<double>(s.messages(i)) / top);
    }
    return absl::StrCat("<svg class=\"spark\" width=\"120\" height=\"18\"><polyline points=\"", pts,
                        "\"/></svg>");
  }

  // One entity's line in the drill-down: name, messages, sparkline, share.
  std::string Line(const Series& s) const {
    return absl::StrCat("<span class=\"name\">", Html(s.entity()), "</span> <span class=\"num\">",
                        Count(s.total_messages()), " messages</span> ", Spark(s), " ",
                        Bar(Tightest(s)));
  }

  // An entity of the drill-down and, inside it, the entities below it.
  // The heaviest subscription and its heaviest domain are open.
  void Entry(const std::string& level, const Series& s, bool open) {
    if (level == "mailbox") {
      absl::StrAppend(&out_, "<div class=\"mailbox\" data-entity=\"", Html(s.entity()), "\">",
                      Line(s), "</div>\n");
      return;
    }
    absl::StrAppend(&out_, "<details class=\"", level, "\" data-entity=\"", Html(s.entity()),
                    open ? "\" open>" : "\">", "<summary>", Line(s), "</summary>\n");
    const std::string below = level == "subscription" ? "domain" : "mailbox";
    auto it = by_level_.find(below);
    if (it != by_level_.end()) {
      bool first = true;
      for (const Series* c : it->second) {
        if (c->parent() != s.entity() || c->parent_level() != level) continue;
        Entry(below, *c, open && first);
        first = false;
      }
    }
    absl::StrAppend(&out_, "</details>\n");
  }

  void Drilldown() {
    absl::StrAppend(&out_,
                    "<section id=\"drilldown\"><h2>Subscriptions and domains</h2>"
                    "<p class=\"hint\">Open a subscription for its domains, a domain for its "
                    "mailboxes.</p>\n");
    const bool subs = by_level_.count("subscription") > 0;
    if (subs) {
      bool first = true;
      for (const Series* s : by_level_["subscription"]) {
        Entry("subscription", *s, first);
        first = false;
      }
    }
    // Domains whose subscription is not on the page (or none).
    std::set<std::string> shown_subs;
    if (subs) {
      for (const Series* s : by_level_["subscription"]) shown_subs.insert(s->entity());
    }
    std::set<std::string> orphan_parents;
    if (by_level_.count("domain") > 0) {
      for (const Series* s : by_level_["domain"]) {
        if (s->parent_level() != "subscription" || shown_subs.count(s->parent()) == 0) {
          orphan_parents.insert(s->parent_level() == "subscription" ? s->parent() : "");
        }
      }
    }
    for (const std::string& p : orphan_parents) {
      if (!p.empty() || subs) {
        absl::StrAppend(&out_, "<details class=\"subscription other\" data-entity=\"", Html(p),
                        "\"><summary><span class=\"name\">",
                        p.empty() ? "(no subscription)" : Html(p), "</span></summary>\n");
      }
      auto it = by_level_.find("domain");
      for (const Series* s : it->second) {
        const std::string sp = s->parent_level() == "subscription" ? s->parent() : "";
        if (sp != p || (!sp.empty() && shown_subs.count(sp) > 0)) continue;
        Entry("domain", *s, false);
      }
      if (!p.empty() || subs) absl::StrAppend(&out_, "</details>\n");
    }
    if (by_level_.count("domain") == 0 && !subs) {
      absl::StrAppend(&out_, "<p class=\"empty\">No domain traffic in this period.</p>");
    }
    absl::StrAppend(&out_, "</section>\n");
  }

  static constexpr const char* kStyle =
      "body{font:14px/1.4 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;"
      "max-width:960px;padding:0 16px 32px;color:#222;background:#fff}\n"
      "h1{font-size:22px;margin:16px 0 4px}h2{font-size:18px;border-bottom:1px solid #ddd;"
      "padding-bottom:4px;margin-top:28px}h3{font-size:15px;margin:16px 0 4px}\n"
      ".meta,.hint,.note{color:#666}.empty{color:#888;font-style:italic}\n"
      ".cards{display:flex;gap:12px;flex-wrap:wrap}.card{border:1px solid #ddd;"
      "border-radius:6px;padding:8px 14px;min-width:110px}.card b{display:block;font-size:20px}"
      ".card span{color:#666}\n"
      "figure{margin:12px 0}figcaption{font-weight:600;margin-bottom:4px}\n"
      "svg.chart,svg.timeline{max-width:100%;height:auto;background:#fcfcfc;"
      "border:1px solid #eee}\n"
      "svg text{font-size:11px;fill:#555}.grid{stroke:#e6e6e6}\n"
      "polyline.series{fill:none;stroke-width:2}\n"
      "line.limit{stroke:#d62728;stroke-width:1.5;stroke-dasharray:6 4}"
      "line.limit.derived{stroke:#f08080}text.limit-label{fill:#d62728}\n"
      ".legend{list-style:none;padding:0;display:flex;gap:14px;flex-wrap:wrap;margin:4px 0}"
      ".legend i{display:inline-block;width:12px;height:3px;margin-right:5px;"
      "vertical-align:middle}.legend i.dash{border-top:2px dashed #d62728;height:0}"
      ".legend .off{color:#888}\n"
      "table{border-collapse:collapse;width:100%;margin:4px 0}th,td{text-align:left;"
      "padding:3px 8px;border-bottom:1px solid #eee;vertical-align:top}"
      "th{background:#f6f6f6}td.num{text-align:right;font-variant-numeric:tabular-nums}"
      "td.rules{font-size:12px;color:#444}\n"
      "details{margin:2px 0 2px 18px}summary{cursor:pointer}.mailbox{margin-left:36px}"
      "svg.spark,svg.bar{vertical-align:middle}.what{color:#777;font-size:12px}svg.spark "
      "polyline{fill:none;stroke:#1f77b4;"
      "stroke-width:1.5}.name{font-weight:600}\n"
      "footer{margin-top:32px;color:#999;font-size:12px}\n";

  const config::ActivityReport& r_;
  const HtmlReportOptions& o_;
  std::map<std::string, std::vector<const Series*>> by_level_;  // in report order
  std::string out_;
};

}  // namespace

std::string RenderHtmlReport(const config::ActivityReport& report,
                             const HtmlReportOptions& options) {
  return Page(report, options).Render();
}

}  // namespace sluice
