// Integration test: FCrDNS through sluice's c-ares resolver against a real
// unbound on 127.0.0.1 serving PTR, A and AAAA records from local data
// (started and stopped by this test).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "reputation/dns/fcrdns.h"
#include "reputation/dns/resolver.h"
#include "tests/testing/net.h"

namespace sluice {
namespace {

using testing::ChildRunning;
using testing::FreePort;
using testing::StopChild;

class UnboundTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sluice-unbound.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    chmod(dir_.c_str(), 0755);
    // A port can be taken between picking and binding it (by the tests that
    // run beside this one): if unbound exits, start it again on another.
    bool up = false;
    for (int start = 0; start < 3 && !up; ++start) {
      StopChild(pid_);
      pid_ = -1;
      resolver_.reset();
      port_ = FreePort();
      ASSERT_NE(port_, 0);
      StartUnbound();
      AresResolver::Options o;
      o.server = "127.0.0.1";
      o.port = port_;
      o.timeout = absl::Milliseconds(300);
      auto r = AresResolver::Create(o);
      ASSERT_TRUE(r.ok()) << r.status();
      resolver_ = std::move(*r);
      resolver_->Start();
      // Bounded wait for unbound to answer.
      for (int i = 0; i < 100 && !up; ++i) {
        if (!ChildRunning(pid_)) {  // reaped: nothing left to stop
          pid_ = -1;
          break;
        }
        up = ForwardConfirmed(resolver_.get(), "192.0.2.1", absl::Now() + absl::Milliseconds(200))
                 .result == Fcrdns::Result::kConfirmed;
        if (!up) absl::SleepFor(absl::Milliseconds(50));
      }
    }
    std::ifstream log(dir_ + "/unbound.log");
    ASSERT_TRUE(up) << "unbound did not answer on port " << port_ << "; its log:\n" << log.rdbuf();
  }
  void StartUnbound() {
    std::ofstream(dir_ + "/unbound.conf") << absl::StrCat(
        "server:\n  interface: 127.0.0.1\n  port: ", port_,
        "\n  do-ip6: no\n  do-tcp: no\n  do-daemonize: no\n  username: \"\"\n  chroot: \"\"\n"
        "  directory: \"",
        dir_, "\"\n  pidfile: \"", dir_, "/unbound.pid\"\n  use-syslog: no\n  logfile: \"", dir_,
        "/unbound.log\"\n  access-control: 127.0.0.0/8 allow\n  module-config: \"iterator\"\n"
        "  local-zone: \"test.\" nodefault\n"
        "  local-zone: \"2.0.192.in-addr.arpa.\" static\n"
        "  local-zone: \"8.b.d.0.1.0.0.2.ip6.arpa.\" static\n"
        "  local-zone: \"good.test.\" static\n  local-zone: \"bad.test.\" static\n"
        "  local-data: \"1.2.0.192.in-addr.arpa. 300 IN PTR mail.good.test.\"\n"
        "  local-data: \"mail.good.test. 300 IN A 192.0.2.1\"\n"
        "  local-data: \"2.2.0.192.in-addr.arpa. 300 IN PTR fake.bad.test.\"\n"
        "  local-data: \"fake.bad.test. 300 IN A 198.51.100.9\"\n"
        "  local-data: \"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa. "
        "300 IN PTR v6.good.test.\"\n"
        "  local-data: \"v6.good.test. 300 IN AAAA 2001:db8::1\"\n");
    pid_ = fork();
    if (pid_ == 0) {
      const std::string conf = dir_ + "/unbound.conf";
      execlp("unbound", "unbound", "-c", conf.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
  }
  void TearDown() override {
    resolver_.reset();
    StopChild(pid_);
    std::system(absl::StrCat("rm -rf ", dir_).c_str());
  }
  Fcrdns Check(const std::string& ip) {
    return ForwardConfirmed(resolver_.get(), ip, absl::Now() + absl::Seconds(3));
  }

  std::string dir_;
  int port_ = 0;
  pid_t pid_ = -1;
  std::unique_ptr<AresResolver> resolver_;
};

TEST_F(UnboundTest, ForwardConfirmedReverseDns) {
  Fcrdns good = Check("192.0.2.1");
  EXPECT_EQ(good.result, Fcrdns::Result::kConfirmed);
  EXPECT_EQ(good.name, "mail.good.test");
  EXPECT_EQ(Check("192.0.2.2").result, Fcrdns::Result::kNotConfirmed);  // PTR points elsewhere
  EXPECT_EQ(Check("192.0.2.3").result, Fcrdns::Result::kNoPtr);
  Fcrdns v6 = Check("2001:db8::1");
  EXPECT_EQ(v6.result, Fcrdns::Result::kConfirmed);
  EXPECT_EQ(v6.name, "v6.good.test");
  EXPECT_EQ(Check("not-an-ip").result, Fcrdns::Result::kUnknown);
  EXPECT_EQ(ReverseName("192.0.2.1"), "1.2.0.192.in-addr.arpa");
}

}  // namespace
}  // namespace sluice
