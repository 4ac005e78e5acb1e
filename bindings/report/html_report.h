// The report page: an ActivityReport (activity.h; from a daemon's admin
// socket or a replay) as one self-contained HTML file that works offline.
// Charts are inline SVG; no script, style sheet, font or image is fetched
// (no URL appears in the page), so it can be mailed or archived.
//
// Sections, each with a stable id and data- attributes for tools and tests:
//   #summary    messages, recipients, bytes, trips over the period
//   #hourly     per level, messages per hour of its heaviest entities
//               (svg.chart, polyline.series) with their hourly limits drawn
//               in (line.limit: rules of one hour, and shorter windows as
//               the most they admit in an hour)
//   #top        per level, the heaviest senders with each rule's usage and
//               their share of the tightest limit (tr.sender, data-share)
//   #trips      the trips on a timeline (circle.trip) and as a table
//   #drilldown  subscriptions → domains → mailboxes (details elements)
// Every name from mail (entities, rule texts) is escaped: a sender called
// "<script>" is text on the page.
//
// Thread safety: a free function without shared state; thread-safe.
#ifndef SLUICE_BINDINGS_REPORT_HTML_REPORT_H_
#define SLUICE_BINDINGS_REPORT_HTML_REPORT_H_

#include <string>

#include "absl/time/time.h"
#include "ratelimit/config.pb.h"

namespace sluice {

struct HtmlReportOptions {
  absl::TimeZone tz = absl::UTCTimeZone();  // the times shown
  int chart_series = 5;                     // entities drawn per level chart
  int top_rows = 25;                        // senders listed per level
  int trip_rows = 500;                      // trips listed in the table
};

// Returns the page.
std::string RenderHtmlReport(const config::ActivityReport& report,
                             const HtmlReportOptions& options = HtmlReportOptions());

}  // namespace sluice

#endif  // SLUICE_BINDINGS_REPORT_HTML_REPORT_H_
