// The C++ example of README.md, compiled and run (so the README cannot rot).
#include <cstdio>
#include <string>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "ratelimit/config.h"
#include "ratelimit/limiter.h"

TEST(ReadmeExampleTest, CompilesAndDefersTheBurst) {
  std::string path =
      std::string(getenv("TEST_TMPDIR") ? getenv("TEST_TMPDIR") : "/tmp") + "/counters.tbl";
  // --- as in README.md (the table path aside) ---
  auto config = sluice::ParseConfigText(R"pb(
                                          level {
                                            name: "domain"
                                            limit { window: "1h" max: 1000 }
                                          }
                                          level {
                                            name: "mailbox"
                                            limit { window: "1h" max: 100 }
                                            limit { metric: RECIPIENTS window: "1h" max: 300 }
                                          }
                                        )pb",
                                        "sluice.conf");
  ASSERT_TRUE(config.ok()) << config.status();
  config->mutable_table()->set_path(path);
  auto limiter = sluice::Limiter::Create(*config, absl::Now()).value();

  sluice::Request msg;
  msg.sender = "info@bakery.example";
  msg.recipients = 25;
  int admitted = 0;
  sluice::Decision d;
  for (int i = 0; i < 20; ++i) {
    d = limiter->CheckAndCharge(msg, absl::Now());
    if (!d.admitted()) {  // e.g. 451 4.7.1, level mailbox, retry after 41m
      printf("%d %s %s\n", d.smtp_code, d.enhanced_status, d.entity);
      break;
    }
    ++admitted;
  }
  EXPECT_EQ(admitted, 12);  // 300 recipients / 25
  EXPECT_EQ(d.smtp_code, 451);
  EXPECT_STREQ(d.entity, "info@bakery.example");
}
