#include "ratelimit/report.h"

#include "gtest/gtest.h"
#include "ratelimit/config.h"
#include "ratelimit/limiter.h"

namespace sluice {
namespace {

TEST(ReportTest, TopAsJsonAndTable) {
  const absl::Time t = absl::FromUnixSeconds(1767225600);
  auto c = ParseConfigText(R"pb(level {
                                  name: "mailbox"
                                  limit { window: "1h" max: 10 }
                                })pb");
  Limiter::Options o;
  o.table.capacity = 1024;
  auto l = Limiter::Create(*c, t, o);
  ASSERT_TRUE(l.ok());
  Request r;
  r.sender = "a@x.example";
  for (int i = 0; i < 4; ++i) (*l)->CheckAndCharge(r, t);
  auto top = (*l)->Top(Level::kMailbox, Metric::kMessages, 0, 5, t);
  EXPECT_EQ(ToJson(top),
            "{\"time_unix\":\"1767225600\",\"level\":\"mailbox\",\"metric\":\"MESSAGES\","
            "\"window\":\"1h\",\"entry\":[{\"level\":\"mailbox\",\"entity\":\"a@x.example\","
            "\"metric\":\"MESSAGES\",\"window\":\"1h\",\"algorithm\":\"SLIDING_WINDOW\","
            "\"usage\":\"4\",\"limit\":\"10\",\"shadow\":false}]}");
  std::string table = FormatTopTable(top);
  EXPECT_NE(table.find("top mailbox by messages per 1h"), std::string::npos) << table;
  EXPECT_NE(table.find("a@x.example"), std::string::npos);
  EXPECT_NE(table.find("40%"), std::string::npos) << table;
}

}  // namespace
}  // namespace sluice
