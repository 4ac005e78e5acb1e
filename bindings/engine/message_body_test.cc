#include "bindings/engine/message_body.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace sluice {
namespace {

// Quoted-printable HTML: a link split by a soft line break, one in an
// attribute, a decimal IP literal, an upper-case IDN-free host twice.
constexpr char kMessage[] =
    "Content-Type: text/html; charset=utf-8\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
    "<p>Buy now at <a href=3D\"https://Shop.Spam-Example.test/x?id=3D1\">here</a>=\r\n"
    " or http://cheap.ph=\r\n"
    "arma.test/p and http://3232235777/ and https://SHOP.spam-example.test/y</p>\r\n";

std::vector<std::string> Hosts(const MessageBody& b) {
  std::vector<std::string> out;
  for (const UrlHost& h : b.urls()) out.push_back(absl::StrCat(h.host, h.ip ? " ip" : ""));
  return out;
}

TEST(MessageBodyTest, LinkHostsComeFromTheDecodedBody) {
  MessageBody b;
  b.Begin();
  b.Feed(kMessage);
  b.Finish();
  EXPECT_EQ(Hosts(b), (std::vector<std::string>{"shop.spam-example.test", "cheap.pharma.test",
                                                "192.168.1.1 ip"}));
  EXPECT_EQ(b.bytes(), sizeof(kMessage) - 1);
  SmtpEvent e;
  b.AttachTo(&e);
  EXPECT_EQ(e.fingerprint, &b.fingerprint());
  EXPECT_EQ(e.urls, &b.urls());
}

TEST(MessageBodyTest, ChunkingChangesNothingAndBeginForgets) {
  MessageBody whole, bytes;
  whole.Begin();
  whole.Feed(kMessage);
  whole.Finish();
  bytes.Begin();
  for (const char& c : absl::string_view(kMessage)) bytes.Feed(absl::string_view(&c, 1));
  bytes.Finish();
  EXPECT_EQ(Hosts(whole), Hosts(bytes));
  EXPECT_TRUE(whole.fingerprint().SameTemplate(bytes.fingerprint()));
  Fingerprint direct;
  Fingerprinter f;
  f.Compute(kMessage, &direct);
  EXPECT_TRUE(whole.fingerprint().SameTemplate(direct));

  bytes.Begin();
  bytes.Feed("\r\nno links here at all\r\n");
  bytes.Finish();
  EXPECT_TRUE(bytes.urls().empty());
  EXPECT_FALSE(whole.fingerprint().SameTemplate(bytes.fingerprint()));
}

TEST(MessageBodyTest, HostsAreBoundedAndBadOnesDropped) {
  std::string body = "\r\n";
  for (int i = 0; i < 100; ++i) absl::StrAppend(&body, "see http://host", i, ".example.test/ ");
  absl::StrAppend(&body, "http://-bad-.\r\n");
  MessageBody b;
  b.Begin();
  b.Feed(body);
  b.Finish();
  EXPECT_EQ(b.urls().size(), MessageBody::kMaxHosts);
  EXPECT_EQ(b.urls()[0].host, "host0.example.test");
}

}  // namespace
}  // namespace sluice
