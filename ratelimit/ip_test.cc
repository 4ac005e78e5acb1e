#include "ratelimit/ip.h"

#include "gtest/gtest.h"

namespace sluice {
namespace {

TEST(IpTest, ParsesBothFamilies) {
  IpAddress a;
  ASSERT_TRUE(ParseIp("192.0.2.7", &a));
  EXPECT_EQ(a.family, 4);
  EXPECT_EQ(a.bytes[0], 192);
  EXPECT_EQ(a.bytes[3], 7);
  EXPECT_EQ(FormatIp(a), "192.0.2.7");
  ASSERT_TRUE(ParseIp("2001:DB8::1", &a));
  EXPECT_EQ(a.family, 6);
  EXPECT_EQ(FormatIp(a), "2001:db8::1");
  ASSERT_TRUE(ParseIp("::ffff:192.0.2.1", &a));
  EXPECT_EQ(a.family, 6);
}

TEST(IpTest, RefusesWhatIsNotAnAddress) {
  IpAddress a;
  for (absl::string_view bad : {"", "192.0.2", "192.0.2.256", "192.0.2.1/24", "host.example",
                                " 192.0.2.1", "1:2:3:4:5:6:7:8:9",
                                "01234567890123456789012345678901"
                                "23456789012345678901234567890123"}) {
    EXPECT_FALSE(ParseIp(bad, &a)) << bad;
  }
  EXPECT_FALSE(ParseIp(absl::string_view("192.0.2.1\0x", 11), &a));  // NUL ends inet_pton's text
}

TEST(IpTest, Cidr) {
  IpAddress net, ip;
  int len = -1;
  ASSERT_TRUE(ParseCidr("192.0.2.0/24", &net, &len));
  EXPECT_EQ(len, 24);
  ASSERT_TRUE(ParseCidr("2001:db8::/32", &net, &len));
  EXPECT_EQ(len, 32);
  ASSERT_TRUE(ParseCidr("192.0.2.9", &net, &len));
  EXPECT_EQ(len, 32);
  EXPECT_FALSE(ParseCidr("192.0.2.0/33", &net, &len));
  EXPECT_FALSE(ParseCidr("192.0.2.0/-1", &net, &len));
  EXPECT_FALSE(ParseCidr("192.0.2.0/", &net, &len));
  EXPECT_FALSE(ParseCidr("2001:db8::/129", &net, &len));
  ASSERT_TRUE(ParseCidr("10.1.2.0/23", &net, &len));
  ASSERT_TRUE(ParseIp("10.1.3.200", &ip));
  EXPECT_TRUE(PrefixMatch(ip, net, len));
  ASSERT_TRUE(ParseIp("10.1.4.1", &ip));
  EXPECT_FALSE(PrefixMatch(ip, net, len));
  EXPECT_TRUE(PrefixMatch(ip, net, 0));
}

TEST(IpTest, MaskTo) {
  IpAddress a;
  ASSERT_TRUE(ParseIp("198.51.100.77", &a));
  MaskTo(&a, 24);
  EXPECT_EQ(FormatIp(a), "198.51.100.0");
  MaskTo(&a, 13);
  EXPECT_EQ(FormatIp(a), "198.48.0.0");
  ASSERT_TRUE(ParseIp("2001:db8:abcd:12::1", &a));
  MaskTo(&a, 48);
  EXPECT_EQ(FormatIp(a), "2001:db8:abcd::");
}

}  // namespace
}  // namespace sluice
