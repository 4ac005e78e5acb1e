#include "reputation/local_lists.h"

#include <atomic>
#include <cstdio>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace sluice {
namespace {

using V = LocalLists::Match;

TEST(LocalListsTest, LongestPrefixWinsForBothFamilies) {
  auto l = LocalLists::Parse(
      "# office and partners\n"
      "deny 192.0.2.0/24\n"
      "allow 192.0.2.128/25\n"
      "deny 192.0.2.200\n"
      "deny 2001:db8::/32\n"
      "allow 2001:db8:1::/48\n"
      "deny 0.0.0.0/0   # everything else\n");
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ((*l)->CheckIp("192.0.2.1"), V::kDeny);
  EXPECT_EQ((*l)->CheckIp("192.0.2.130"), V::kAllow);
  EXPECT_EQ((*l)->CheckIp("192.0.2.200"), V::kDeny);
  EXPECT_EQ((*l)->CheckIp("198.51.100.1"), V::kDeny);  // /0
  EXPECT_EQ((*l)->CheckIp("2001:db8:1::5"), V::kAllow);
  EXPECT_EQ((*l)->CheckIp("2001:db8:2::5"), V::kDeny);
  EXPECT_EQ((*l)->CheckIp("2001:dead::1"), V::kNone);
  EXPECT_EQ((*l)->CheckIp("not an ip"), V::kNone);
  EXPECT_EQ((*l)->size(), 6u);
}

TEST(LocalListsTest, DomainsMatchThemselvesAndSubdomains) {
  auto l =
      LocalLists::Parse("deny spam.example\nallow good.spam.example\nallow Partner.Example.\n");
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ((*l)->CheckDomain("spam.example"), V::kDeny);
  EXPECT_EQ((*l)->CheckDomain("a.b.SPAM.example"), V::kDeny);
  EXPECT_EQ((*l)->CheckDomain("x.good.spam.example"), V::kAllow);
  EXPECT_EQ((*l)->CheckDomain("notspam.example"), V::kNone);
  EXPECT_EQ((*l)->CheckDomain("mail.partner.example."), V::kAllow);
  EXPECT_EQ((*l)->CheckDomain(std::string(300, 'a')), V::kNone);
}

TEST(LocalListsTest, ErrorsHaveLineAndColumn) {
  EXPECT_EQ(
      LocalLists::Parse("allow 10.0.0.0/8\n  block 1.2.3.4\n", "lists.txt").status().message(),
      "lists.txt:2:3: expected allow or deny, got \"block\"");
  EXPECT_EQ(LocalLists::Parse("deny 10.0.0.0/33", "l").status().message(),
            "l:1:6: bad address or CIDR \"10.0.0.0/33\"");
  EXPECT_EQ(LocalLists::Parse("deny a..example", "l").status().message(),
            "l:1:6: bad domain \"a..example\"");
  EXPECT_EQ(LocalLists::Parse("deny 10.0.0.0/8\nallow 10.0.0.0/8", "l").status().message(),
            "l:2:7: listed as both allow and deny");
  EXPECT_EQ(LocalLists::Parse("deny", "l").status().message(), "l:1:5: missing address or domain");
  EXPECT_EQ(LocalLists::Parse("deny a b", "l").status().message(),
            "l:1:6: one address or domain per line");
}

TEST(LocalListsTest, HotReloadKeepsServingAndRefusesABadFile) {
  char tmpl[] = "/tmp/sluice-lists.XXXXXX";
  int fd = mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  close(fd);
  const std::string path = tmpl;
  std::ofstream(path) << "deny 192.0.2.0/24\n";
  auto f = LocalListsFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status();
  std::atomic<bool> stop{false};
  std::atomic<long> lookups{0}, wrong{0};
  std::thread reader([&] {
    while (!stop.load()) {
      V v = (*f)->Get()->CheckIp("192.0.2.9");
      if (v != V::kDeny && v != V::kAllow) wrong++;
      lookups++;
    }
  });
  for (int i = 0; i < 50; ++i) {
    std::ofstream(path) << (i % 2 ? "deny 192.0.2.0/24\n" : "allow 192.0.2.0/24\n");
    ASSERT_TRUE((*f)->Reload().ok());
  }
  std::ofstream(path) << "deny 192.0.2.0/24\nallow 192.0.2.0/24\n";  // broken
  EXPECT_FALSE((*f)->Reload().ok());
  stop = true;
  reader.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_GT(lookups.load(), 0);
  EXPECT_EQ((*f)->Get()->CheckIp("192.0.2.9"), V::kDeny);  // the last good version
  std::remove(path.c_str());
  EXPECT_EQ(LocalListsFile::Open("/nonexistent/lists").status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace sluice
