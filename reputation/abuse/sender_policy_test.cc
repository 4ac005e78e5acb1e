#include "reputation/abuse/sender_policy.h"

#include "gtest/gtest.h"

namespace sluice {
namespace {

TEST(SenderPolicyTest, Modes) {
  SenderPolicy exact({SenderPolicy::Mode::kExact, {}});
  EXPECT_TRUE(exact.Allowed("anna@x.example", "Anna@X.example"));
  EXPECT_FALSE(exact.Allowed("anna@x.example", "ceo@x.example"));
  EXPECT_TRUE(exact.Allowed("anna", "anna@x.example"));  // bare login = local part
  EXPECT_TRUE(exact.Allowed("anna@x.example", ""));      // bounces
  EXPECT_TRUE(exact.Allowed("", "anyone@x.example"));    // not authenticated
  SenderPolicy domain({SenderPolicy::Mode::kSameDomain, {}});
  EXPECT_TRUE(domain.Allowed("anna@x.example", "sales@x.example"));
  EXPECT_FALSE(domain.Allowed("anna@x.example", "sales@y.example"));
  SenderPolicy::Options o;
  o.mode = SenderPolicy::Mode::kAliasMap;
  o.aliases["Anna@x.example"] = {"info@x.example", "@shop.example"};
  SenderPolicy alias(o);
  EXPECT_TRUE(alias.Allowed("anna@x.example", "info@x.example"));
  EXPECT_TRUE(alias.Allowed("anna@x.example", "orders@shop.example"));
  EXPECT_FALSE(alias.Allowed("anna@x.example", "ceo@x.example"));
  EXPECT_FALSE(alias.Allowed("bob@x.example", "info@x.example"));
}

}  // namespace
}  // namespace sluice
