#include "bindings/report/html_report.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace sluice {
namespace {

int CountOf(const std::string& s, const std::string& what) {
  int n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

config::ActivityReport::Series* AddSeries(config::ActivityReport* r, const std::string& level,
                                          const std::string& entity, const std::string& parent,
                                          std::initializer_list<uint64_t> per_hour) {
  auto* s = r->add_series();
  s->set_level(level);
  s->set_entity(entity);
  if (!parent.empty()) {
    s->set_parent(parent);
    s->set_parent_level(level == "mailbox"  ? "domain"
                        : level == "domain" ? "subscription"
                                            : "plan");
  }
  uint64_t total = 0;
  for (uint64_t v : per_hour) {
    s->add_messages(v);
    s->add_recipients(v);
    s->add_bytes(v * 1000);
    total += v;
  }
  s->set_total_messages(total);
  return s;
}

void AddRule(config::ActivityReport::Series* s, const std::string& window, uint64_t limit,
             uint64_t usage, config::Metric metric = config::MESSAGES) {
  auto* r = s->add_rule();
  r->set_level(s->level());
  r->set_entity(s->entity());
  r->set_metric(metric);
  r->set_window(window);
  r->set_limit(limit);
  r->set_usage(usage);
}

config::ActivityReport Sample() {
  config::ActivityReport r;
  r.set_source("test");
  r.set_first_hour_unix(1700000000 - 1700000000 % 3600);
  r.set_hours(3);
  AddRule(AddSeries(&r, "subscription", "acme", "", {10, 20, 30}), "1h", 500, 30);
  AddRule(AddSeries(&r, "domain", "acme.example", "acme", {10, 20, 30}), "1h", 1000, 30);
  auto* m = AddSeries(&r, "mailbox", "bob@acme.example", "acme.example", {10, 20, 30});
  AddRule(m, "1h", 40, 30);
  AddRule(m, "10m", 10, 3);   // at most 60 an hour: drawn as derived
  AddRule(m, "1d", 500, 60);  // a day: not on the hourly chart
  AddSeries(&r, "mailbox", "amy@acme.example", "acme.example", {1, 0, 2});
  auto* t = r.add_trip();
  t->set_time("2023-11-14T22:30:00.000Z");
  t->set_source("limit");
  t->set_level("mailbox");
  t->set_entity("bob@acme.example");
  t->set_metric("messages");
  t->set_window("1h");
  t->set_limit(40);
  t->set_usage(40);
  t->set_action("defer");
  t->set_text("mailbox bob@acme.example reached its limit");
  return r;
}

TEST(HtmlReportTest, SectionsChartsLimitsTripsAndDrilldown) {
  const std::string page = RenderHtmlReport(Sample());
  for (const char* id : {"summary", "hourly", "top", "trips", "drilldown"}) {
    EXPECT_TRUE(absl::StrContains(page, absl::StrCat("<section id=\"", id, "\">"))) << id;
  }
  EXPECT_EQ(CountOf(page, "<svg class=\"chart\""), 3);  // subscription, domain, mailbox
  EXPECT_TRUE(absl::StrContains(page, "<line class=\"limit\" data-limit=\"40\""));
  EXPECT_TRUE(absl::StrContains(page, "<line class=\"limit derived\" data-limit=\"60\""));
  EXPECT_FALSE(absl::StrContains(page, "data-limit=\"500\" "));  // per day: not hourly
  // 1000/h over the domain's 30 at most: listed, not drawn (it would
  // flatten the line).
  EXPECT_TRUE(absl::StrContains(page, "limit 1,000/h (above the chart)"));
  EXPECT_EQ(CountOf(page, "<polyline class=\"series\""), 4);
  EXPECT_EQ(CountOf(page, "<circle class=\"trip\""), 1);
  EXPECT_EQ(CountOf(page, "<tr class=\"trip\">"), 1);
  // bob: busiest hour 30 of 40 an hour.
  EXPECT_TRUE(absl::StrContains(page, "data-entity=\"bob@acme.example\" data-share=\"0.750\""));
  // Drill-down: the subscription holds the domain, which holds both mailboxes.
  const size_t sub = page.find("<details class=\"subscription\" data-entity=\"acme\" open>");
  const size_t dom = page.find("<details class=\"domain\" data-entity=\"acme.example\" open>");
  const size_t box = page.find("<div class=\"mailbox\" data-entity=\"amy@acme.example\">");
  ASSERT_NE(sub, std::string::npos);
  ASSERT_NE(dom, std::string::npos);
  ASSERT_NE(box, std::string::npos);
  EXPECT_LT(sub, dom);
  EXPECT_LT(dom, box);
  EXPECT_EQ(CountOf(page, "<details"), CountOf(page, "</details>"));
}

TEST(HtmlReportTest, FetchesNothing) {
  const std::string page = RenderHtmlReport(Sample());
  for (const char* bad : {"http:", "https:", "src=", "href=", "url(", "@import", "<script", "<link",
                          "<img", "<iframe"}) {
    EXPECT_FALSE(absl::StrContains(page, bad)) << bad;
  }
}

TEST(HtmlReportTest, NamesFromMailAreText) {
  config::ActivityReport r = Sample();
  const std::string evil = "\"><script>alert(1)</script><img src=x onerror=alert(2)>'@evil.example";
  AddRule(AddSeries(&r, "mailbox", evil, "</details><b>", {5, 5, 5}), "1h", 10, 5);
  r.mutable_trip(0)->set_entity(evil);
  r.mutable_trip(0)->set_text(evil);
  r.set_source("<title>x");
  AddSeries(&r, "domain", std::string("bad\xff\xfe\x01utf8"), "acme", {1, 1, 1});
  const std::string page = RenderHtmlReport(r);
  EXPECT_FALSE(absl::StrContains(page, "<script"));
  EXPECT_FALSE(absl::StrContains(page, "<img"));
  EXPECT_FALSE(absl::StrContains(page, "</details><b>"));
  EXPECT_FALSE(absl::StrContains(page, "onerror=alert(2)>"));
  EXPECT_TRUE(absl::StrContains(page, "&lt;script&gt;alert(1)&lt;/script&gt;"));
  EXPECT_TRUE(absl::StrContains(page, "bad???utf8"));
  EXPECT_EQ(CountOf(page, "<details"), CountOf(page, "</details>"));
  EXPECT_EQ(CountOf(page, "<title>"), 1 + CountOf(page, "</title></"));
}

TEST(HtmlReportTest, EmptyAndMalformedDataStillMakeAPage) {
  config::ActivityReport empty;
  std::string page = RenderHtmlReport(empty);
  EXPECT_TRUE(absl::StrContains(page, "No traffic recorded in this period."));
  EXPECT_TRUE(absl::StrContains(page, "No rule tripped in this period."));
  EXPECT_TRUE(absl::StrContains(page, "</html>"));
  // Series shorter or longer than the hours, a bad trip time, zero limits,
  // a huge value: drawn within the chart, no crash.
  config::ActivityReport odd = Sample();
  odd.set_hours(1);
  AddRule(AddSeries(&odd, "mailbox", "z@acme.example", "acme.example", {~uint64_t{0} / 2}), "1h", 0,
          0);
  odd.mutable_trip(0)->set_time("yesterday");
  page = RenderHtmlReport(odd);
  EXPECT_TRUE(absl::StrContains(page, "</html>"));
  EXPECT_FALSE(absl::StrContains(page, "nan"));
  EXPECT_FALSE(absl::StrContains(page, "inf\""));
}

}  // namespace
}  // namespace sluice
