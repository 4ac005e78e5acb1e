#include "bindings/engine/notice_record.h"

#include <string>

#include "gtest/gtest.h"

namespace sluice {
namespace {

TEST(CleanTextTest, KeepsWellFormedUtf8) {
  EXPECT_EQ(CleanText("plain"), "plain");
  for (const char* ok :
       {"caf\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80", "\xED\x9F\xBF", "\xF4\x8F\xBF\xBF"}) {
    EXPECT_EQ(CleanText(ok), ok);
  }
}

TEST(CleanTextTest, ReplacesControlsAndIllFormedBytes) {
  EXPECT_EQ(CleanText("a\x01"
                      "b\x7f"),
            "a?b?");
  EXPECT_EQ(CleanText("\xC3"), "?");                 // cut
  EXPECT_EQ(CleanText("\xC0\xAF"), "??");            // overlong '/'
  EXPECT_EQ(CleanText("\xE0\x80\xAF"), "???");       // overlong, 3 bytes
  EXPECT_EQ(CleanText("\xED\xA0\x80"), "???");       // a surrogate
  EXPECT_EQ(CleanText("\xF4\x90\x80\x80"), "????");  // above U+10FFFF
  EXPECT_EQ(CleanText("\xF5\x80\x80"), "???");       // no such lead byte
  EXPECT_EQ(CleanText("\xFF"
                      "x"),
            "?x");
}

}  // namespace
}  // namespace sluice
