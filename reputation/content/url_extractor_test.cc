#include "reputation/content/url_extractor.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace sluice {
namespace {

std::vector<std::string> Hosts(absl::string_view text, size_t max = 16) {
  UrlExtractor::Options o;
  o.max_hosts = max;
  std::vector<UrlHost> hosts;
  UrlExtractor(o).Extract(text, &hosts);
  std::vector<std::string> out;
  for (const auto& h : hosts) out.push_back(h.host);
  return out;
}

using V = std::vector<std::string>;

TEST(UrlExtractorTest, SchemesBareWwwAndHtml) {
  EXPECT_EQ(Hosts("Visit http://Shop.Example.COM/path?q=1 or https://x.example:8443/a now"),
            (V{"shop.example.com", "x.example"}));
  EXPECT_EQ(Hosts("go to www.cheap-pills.example today"), (V{"www.cheap-pills.example"}));
  EXPECT_EQ(Hosts("<a href=\"https://click.tracker.example/r?id=123\">here</a>"),
            (V{"click.tracker.example"}));
  EXPECT_EQ(Hosts("ftp://files.example/x hxxp://defanged.example/"),
            (V{"files.example", "defanged.example"}));
  EXPECT_EQ(Hosts("no urls here, just shopwww.example and http:// nothing"), V{});
}

TEST(UrlExtractorTest, Obfuscations) {
  // IPv4 literals in any base.
  EXPECT_EQ(Hosts("http://0x7f.1/ http://2130706433/ http://0177.0.0.1/ http://127.0.0.1/"),
            (V{"127.0.0.1"}));
  EXPECT_EQ(Hosts("http://0xC0.0xA8.0x01.0x02/x"), (V{"192.168.1.2"}));
  // Unicode full stops.
  EXPECT_EQ(Hosts("http://evil\xe3\x80\x82"
                  "example/ http://evil\xef\xbc\x8e"
                  "example/ "
                  "http://evil\xef\xbd\xa1"
                  "example/"),
            (V{"evil.example"}));
  EXPECT_EQ(Hosts("www\xe3\x80\x82spam\xe3\x80\x82"
                  "example"),
            (V{"www.spam.example"}));
  // Percent-encoded host bytes, case, trailing dot, userinfo.
  EXPECT_EQ(Hosts("http://%77%77%77.EVIL.example./login"), (V{"www.evil.example"}));
  EXPECT_EQ(Hosts("http://paypal.example@phish.example/"), (V{"phish.example"}));
  // IDN to punycode.
  EXPECT_EQ(Hosts("http://b\xc3\xbc"
                  "cher.example/"),
            (V{"xn--bcher-kva.example"}));
}

TEST(UrlExtractorTest, DistinctAndCapped) {
  std::string text;
  for (int i = 0; i < 50; ++i) text += "http://host" + std::to_string(i % 20) + ".example/ ";
  auto h = Hosts(text, 8);
  ASSERT_EQ(h.size(), 8u);
  EXPECT_EQ(h[0], "host0.example");
  EXPECT_EQ(h[7], "host7.example");
  EXPECT_EQ(Hosts(text, 100).size(), 20u);
}

TEST(UrlExtractorTest, RejectsWhatIsNotAHost) {
  UrlHost h;
  EXPECT_FALSE(UrlExtractor::NormalizeHost("localhost", &h));
  EXPECT_FALSE(UrlExtractor::NormalizeHost("a..example", &h));
  EXPECT_FALSE(UrlExtractor::NormalizeHost("example.123", &h));
  EXPECT_FALSE(UrlExtractor::NormalizeHost(std::string(64, 'a') + ".example", &h));
  EXPECT_FALSE(UrlExtractor::NormalizeHost("ex ample.com", &h));
  EXPECT_TRUE(UrlExtractor::NormalizeHost(std::string(63, 'a') + ".example", &h));
}

TEST(UrlExtractorTest, HostileInputsStayBounded) {
  // A megabyte-long line of host bytes after a scheme, an unterminated tag,
  // binary data: no crash, no host from the absurd run, the later URL found.
  std::string huge = "http://" + std::string(1 << 20, 'a') + ".example/ then http://ok.example/";
  EXPECT_EQ(Hosts(huge), (V{"ok.example"}));
  std::string tag = "<a href=\"http://tag.example" + std::string(100000, ' ');
  EXPECT_EQ(Hosts(tag), (V{"tag.example"}));
  std::string bin;
  for (int i = 0; i < 100000; ++i) bin.push_back(static_cast<char>(i * 131));
  bin += " http://after.example/";
  auto h = Hosts(bin, 64);
  ASSERT_FALSE(h.empty());
  EXPECT_EQ(h.back(), "after.example");
  std::string www_run;
  for (int i = 0; i < 200000; ++i) www_run += "www";
  EXPECT_EQ(Hosts(www_run), V{});
}

}  // namespace
}  // namespace sluice
