#include "reputation/public_suffix.h"

#include <fstream>
#include <regex>
#include <string>

#include "gtest/gtest.h"

namespace sluice {
namespace {

constexpr char kVectors[] = "/usr/share/doc/publicsuffix/examples/test_psl.txt";

std::unique_ptr<PublicSuffixList> Psl() {
  auto l = PublicSuffixList::Load();
  EXPECT_TRUE(l.ok()) << l.status();
  return std::move(*l);
}

// The PSL project's official test vectors, read from Debian's publicsuffix
// package: checkPublicSuffix('input', 'expected' | null).
TEST(PublicSuffixTest, OfficialTestVectors) {
  auto psl = Psl();
  std::ifstream in(kVectors);
  ASSERT_TRUE(in) << "missing " << kVectors << " (Debian package publicsuffix)";
  std::regex line_re(R"(^checkPublicSuffix\((null|'([^']*)'), (null|'([^']*)')\);)");
  std::string line;
  int checked = 0;
  while (std::getline(in, line)) {
    std::smatch m;
    if (!std::regex_search(line, m, line_re)) continue;  // comments, commented-out cases
    const std::string input = m[1] == "null" ? "" : m[2].str();
    const std::string want = m[3] == "null" ? "" : m[4].str();
    EXPECT_EQ(psl->RegisteredDomain(input), want) << line;
    ++checked;
  }
  EXPECT_GE(checked, 70);  // the file holds 82 checks, some commented out
}

TEST(PublicSuffixTest, Basics) {
  auto psl = Psl();
  EXPECT_EQ(psl->RegisteredDomain("mail.Shop.Example.CO.UK"), "example.co.uk");
  EXPECT_EQ(psl->RegisteredDomain("user.github.io"), "user.github.io");  // private section
  EXPECT_TRUE(psl->IsPublicSuffix("co.uk"));
  EXPECT_TRUE(psl->IsPublicSuffix("github.io"));
  EXPECT_FALSE(psl->IsPublicSuffix("example.com"));
  EXPECT_EQ(psl->RegisteredDomain(""), "");
  EXPECT_EQ(psl->RegisteredDomain("a..example.com"), "");
  EXPECT_EQ(psl->RegisteredDomain(std::string("a\0b.com", 7)), "");
  EXPECT_EQ(psl->RegisteredDomain(std::string(300, 'a') + ".com"), "");
}

TEST(PublicSuffixTest, MissingListIsAClearError) {
  auto l = PublicSuffixList::Load("/nonexistent/list.dat");
  EXPECT_EQ(l.status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace sluice
