#include "bindings/postfix/policy_protocol.h"

#include <string>

#include "gtest/gtest.h"
#include "ratelimit/limiter.h"
#include "reputation/abuse/abuse_guard.h"
#include "reputation/dns/dns_cache.h"
#include "reputation/dns/dnsbl.h"
#include "reputation/score_board.h"

namespace sluice {
namespace {

// What Postfix 3.7 sends at RCPT (attribute list from its SMTPD_POLICY_README).
constexpr char kRcpt[] =
    "request=smtpd_access_policy\n"
    "protocol_state=RCPT\n"
    "protocol_name=ESMTP\n"
    "client_address=192.0.2.1\n"
    "client_name=mail.example.net\n"
    "client_port=41000\n"
    "reverse_client_name=mail.example.net\n"
    "server_address=127.0.0.1\n"
    "server_port=2525\n"
    "helo_name=mail.example.net\n"
    "sender=alice@acme.example\n"
    "recipient=bob@remote.example\n"
    "recipient_count=0\n"
    "queue_id=\n"
    "instance=1a2b.5f0c1e2d.3a4b5.0\n"
    "size=12345\n"
    "etrn_domain=\n"
    "stress=\n"
    "sasl_method=PLAIN\n"
    "sasl_username=alice@acme.example\n"
    "sasl_sender=\n"
    "ccert_subject=\n"
    "ccert_issuer=\n"
    "ccert_fingerprint=\n"
    "ccert_pubkey_fingerprint=\n"
    "encryption_protocol=TLSv1.3\n"
    "encryption_cipher=TLS_AES_256_GCM_SHA384\n"
    "encryption_keysize=256\n"
    "policy_context=\n"
    "compatibility_level=3.6\n"
    "mail_version=3.7.11\n"
    "some_future_attribute=ignored\n"
    "\n";

TEST(PolicyProtocolTest, ParsesEveryAttributeSluiceUsesAndIgnoresTheRest) {
  PolicyLimits limits;
  auto n = FindPolicyRequest(kRcpt, limits);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, sizeof(kRcpt) - 1);
  PolicyRequest r;
  ASSERT_TRUE(ParsePolicyRequest(absl::string_view(kRcpt, *n), limits, &r).ok());
  EXPECT_EQ(r.protocol_state, "RCPT");
  EXPECT_EQ(r.client_address, "192.0.2.1");
  EXPECT_EQ(r.sender, "alice@acme.example");
  EXPECT_EQ(r.recipient, "bob@remote.example");
  EXPECT_EQ(r.instance, "1a2b.5f0c1e2d.3a4b5.0");
  EXPECT_EQ(r.sasl_username, "alice@acme.example");
  EXPECT_EQ(r.size, 12345u);
  EXPECT_EQ(r.attributes, 32);
}

TEST(PolicyProtocolTest, IncompleteAndPipelinedRequests) {
  PolicyLimits limits;
  std::string two = std::string(kRcpt) + kRcpt;
  EXPECT_EQ(*FindPolicyRequest(two, limits), sizeof(kRcpt) - 1);
  EXPECT_EQ(*FindPolicyRequest(absl::string_view(kRcpt, 100), limits), 0u);
  EXPECT_EQ(*FindPolicyRequest("", limits), 0u);
}

TEST(PolicyProtocolTest, OversizedInputIsAnError) {
  PolicyLimits limits;
  std::string long_line = "request=smtpd_access_policy\nsender=" + std::string(5000, 'a');
  EXPECT_EQ(FindPolicyRequest(long_line, limits).status().code(),
            absl::StatusCode::kInvalidArgument);
  // Never-ending request of short lines.
  std::string endless;
  while (endless.size() < 20000) endless += "x=y\n";
  EXPECT_EQ(FindPolicyRequest(endless, limits).status().code(),
            absl::StatusCode::kResourceExhausted);
}

// Values are checked a word at a time: a control byte at any position of a
// value of any length is found; tabs, 0x80-0xff and printable bytes pass.
TEST(PolicyProtocolTest, EveryControlByteAtEveryPositionIsFound) {
  PolicyLimits limits;
  PolicyRequest r;
  for (size_t len = 1; len <= 40; ++len) {
    for (size_t at = 0; at < len; ++at) {
      for (int c = 0; c < 256; ++c) {
        if (c == '\n') continue;  // ends the line
        std::string value(len, 'a');
        value[at] = static_cast<char>(c);
        // Neighbours that a word trick could confuse with a control byte.
        if (at > 0) value[at - 1] = static_cast<char>(0x80 + (c & 0x7f));
        if (at + 1 < len) value[at + 1] = '\t';
        const bool bad = (c < 0x20 && c != '\t') || c == 0x7f;
        const std::string text = "request=smtpd_access_policy\nsender=" + value + "\n\n";
        const absl::Status st = ParsePolicyRequest(text, limits, &r);
        ASSERT_EQ(st.ok(), !bad) << "length " << len << " position " << at << " byte " << c;
        if (!bad) ASSERT_EQ(r.sender, value);
      }
    }
  }
}

// Every attribute sluice reads is read, whatever its place; one it does not
// know is checked for its name and skipped.
TEST(PolicyProtocolTest, EveryKnownAttributeIsRead) {
  const std::string text =
      "unknown_attr=1\nclient_name=cn\nsasl_method=PLAIN\nsasl_sender=ss\n"
      "sluice_list=li\nserver_port=587\nprotocol_name=ESMTP\nsasl_username=su\n"
      "sluice_script=sc\nprotocol_state=RCPT\nclient_address=192.0.2.1\n"
      "policy_context=pc\nrecipient_count=3\nsize=99\nsender=s@x\nrequest=smtpd_access_policy\n"
      "queue_id=Q\ninstance=I\nhelo_name=h\nrecipient=r@y\n\n";
  PolicyRequest r;
  ASSERT_TRUE(ParsePolicyRequest(text, PolicyLimits(), &r).ok());
  EXPECT_EQ(r.client_name, "cn");
  EXPECT_EQ(r.sasl_method, "PLAIN");
  EXPECT_EQ(r.sasl_sender, "ss");
  EXPECT_EQ(r.list, "li");
  EXPECT_EQ(r.server_port, 587u);
  EXPECT_EQ(r.protocol_name, "ESMTP");
  EXPECT_EQ(r.sasl_username, "su");
  EXPECT_EQ(r.script, "sc");
  EXPECT_EQ(r.protocol_state, "RCPT");
  EXPECT_EQ(r.client_address, "192.0.2.1");
  EXPECT_EQ(r.policy_context, "pc");
  EXPECT_EQ(r.recipient_count, 3u);
  EXPECT_EQ(r.size, 99u);
  EXPECT_EQ(r.sender, "s@x");
  EXPECT_EQ(r.queue_id, "Q");
  EXPECT_EQ(r.instance, "I");
  EXPECT_EQ(r.helo_name, "h");
  EXPECT_EQ(r.recipient, "r@y");
  EXPECT_EQ(r.attributes, 20);
  // Names that only look like known ones are other attributes.
  ASSERT_TRUE(
      ParsePolicyRequest("request=smtpd_access_policy\nSender=x\nsenders=y\n\n", PolicyLimits(), &r)
          .ok());
  EXPECT_EQ(r.sender, "");
  EXPECT_EQ(ParsePolicyRequest("request=smtpd_access_policy\nsend-er=x\n\n", PolicyLimits(), &r)
                .message(),
            "line 2: bad attribute name");
  EXPECT_EQ(ParsePolicyRequest("request=smtpd_access_policy\n=x\n\n", PolicyLimits(), &r).message(),
            "line 2: not name=value");
}

TEST(PolicyProtocolTest, BadRequestsAreRefusedWithAReason) {
  PolicyLimits limits;
  PolicyRequest r;
  EXPECT_EQ(ParsePolicyRequest("protocol_state=RCPT\n\n", limits, &r).message(),
            "no request= attribute");
  EXPECT_EQ(ParsePolicyRequest("request=junk\n\n", limits, &r).message(),
            "unsupported request \"junk\"");
  EXPECT_EQ(ParsePolicyRequest("request=smtpd_access_policy\nnonsense\n\n", limits, &r).message(),
            "line 2: not name=value");
  EXPECT_EQ(ParsePolicyRequest(std::string("request=smtpd_access_policy\nsender=a\0b\n\n", 41),
                               limits, &r)
                .message(),
            "line 2: control byte in the value of sender");
  EXPECT_EQ(ParsePolicyRequest("req uest=x\n\n", limits, &r).message(),
            "line 1: bad attribute name");
  EXPECT_EQ(ParsePolicyRequest("request=smtpd_access_policy\nsize=12x\n\n", limits, &r).message(),
            "line 2: bad size");
  std::string many = "request=smtpd_access_policy\n";
  for (int i = 0; i < 70; ++i) many += "a=b\n";
  EXPECT_EQ(ParsePolicyRequest(many, limits, &r).message(), "more than 64 attributes");
  // Non-ASCII (SMTPUTF8) values are fine.
  EXPECT_TRUE(ParsePolicyRequest("request=smtpd_access_policy\nsender=j\xc3\xb6rg@x.example\n\n",
                                 limits, &r)
                  .ok());
}

TEST(PolicyProtocolTest, EngineEventFromARequest) {
  PolicyLimits limits;
  PolicyRequest r;
  ASSERT_TRUE(ParsePolicyRequest(kRcpt, limits, &r).ok());
  SmtpEvent e = ToSmtpEvent(r);
  EXPECT_EQ(e.stage, Stage::kRcpt);
  EXPECT_EQ(e.transaction, "1a2b.5f0c1e2d.3a4b5.0");
  EXPECT_EQ(e.sasl_username, "alice@acme.example");
  EXPECT_EQ(e.size, 12345u);
  EXPECT_EQ(e.server_port, 2525u);  // the door's markers for the direction rules
  EXPECT_EQ(e.door_name, "");
  ASSERT_TRUE(ParsePolicyRequest("request=smtpd_access_policy\nserver_port=587\n"
                                 "policy_context=submission\n\n",
                                 limits, &r)
                  .ok());
  e = ToSmtpEvent(r);
  EXPECT_EQ(e.server_port, 587u);
  EXPECT_EQ(e.door_name, "submission");
  EXPECT_EQ(e.script, "");
  // sluice's own attributes (Exim's ${readsocket} sends them).
  ASSERT_TRUE(ParsePolicyRequest("request=smtpd_access_policy\nsluice_script=33:mailer.php\n"
                                 "sluice_list=news.acme.example\n\n",
                                 limits, &r)
                  .ok());
  e = ToSmtpEvent(r);
  EXPECT_EQ(e.script, "33:mailer.php");
  EXPECT_EQ(e.list, "news.acme.example");
  EXPECT_EQ(ParsePolicyRequest("request=smtpd_access_policy\nserver_port=70000\n\n", limits, &r)
                .message(),
            "line 2: bad server_port");
  // Without `instance` the queue id ties the stages together.
  ASSERT_TRUE(ParsePolicyRequest("request=smtpd_access_policy\nprotocol_state=END-OF-MESSAGE\n"
                                 "queue_id=4ABC\n\n",
                                 limits, &r)
                  .ok());
  e = ToSmtpEvent(r);
  EXPECT_EQ(e.stage, Stage::kEndOfMessage);
  EXPECT_EQ(e.transaction, "4ABC");
}

TEST(PolicyProtocolTest, ReplyFormat) {
  EXPECT_EQ(FormatPolicyReply("DUNNO"), "action=DUNNO\n\n");
  EXPECT_EQ(FormatPolicyReply("451 4.7.1 a\nb"), "action=451 4.7.1 a\n\n");
}

}  // namespace
}  // namespace sluice
