#include "bindings/postfix/policy_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bindings/postfix/admin.h"
#include "gtest/gtest.h"
#include "ratelimit/config.h"
#include "ratelimit/limiter.h"
#include "reputation/abuse/abuse_guard.h"
#include "reputation/dns/dns_cache.h"
#include "reputation/dns/dnsbl.h"
#include "reputation/score_board.h"
#include "tests/testing/net.h"

namespace sluice {
namespace {

using testing::ConnectTcp;
using testing::ConnectUnix;

// Sends `data` and reads until "\n\n" or EOF (bounded by the 5 s timeout).
std::string Ask(int fd, const std::string& data) {
  if (!data.empty() && send(fd, data.data(), data.size(), MSG_NOSIGNAL) < 0) return "<send failed>";
  std::string got;
  char buf[4096];
  while (got.size() < 2 || got.compare(got.size() - 2, 2, "\n\n") != 0) {
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) return got.empty() ? "<closed>" : got;
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

std::string ReadAll(int fd) {
  std::string got;
  char buf[4096];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) got.append(buf, static_cast<size_t>(n));
  return got;
}

std::string Rcpt(const std::string& sender, const std::string& instance) {
  return absl::StrCat("request=smtpd_access_policy\nprotocol_state=RCPT\nsender=", sender,
                      "\nrecipient=r@remote.example\nclient_address=192.0.2.1\ninstance=", instance,
                      "\n\n");
}

class PolicyServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Short (unix socket paths) and unique (sandboxes share pid numbers).
    char tmpl[] = "/tmp/sluice-server-test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    config_path_ = dir_ + "/sluice.conf";
    WriteConfig(2);
    auto c = LoadConfigFile(config_path_);
    ASSERT_TRUE(c.ok()) << c.status();
    auto e = PolicyEngine::Create(*c, absl::Now(), PolicyEngine::Options());
    ASSERT_TRUE(e.ok()) << e.status();
    engine_ = std::move(*e);
    PolicyServer::Options o;
    o.listen = {"inet:127.0.0.1:0", "unix:" + dir_ + "/policy.sock"};
    o.threads = 2;
    o.idle_timeout = absl::Seconds(1);
    o.max_connections = 8;
    o.admin_socket = dir_ + "/admin.sock";
    o.metrics = "127.0.0.1:0";
    o.config_path = config_path_;
    o.handle_signals = false;
    o.log = [this](PolicyServer::LogPriority, const std::string& line) {
      std::lock_guard<std::mutex> lock(log_mu_);
      log_.push_back(line);
    };
    auto s = PolicyServer::Create(engine_.get(), o);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
    runner_ = std::thread([this] { server_->Run(); });
    port_ = server_->port(0);
  }

  void TearDown() override {
    if (server_ != nullptr) server_->Stop();
    if (runner_.joinable()) runner_.join();
    server_.reset();
    std::system(absl::StrCat("rm -rf ", dir_).c_str());
  }

  // The test's client (192.0.2.1) is a trusted network's: its mail is
  // outgoing, counted on its sender's mailbox.
  void WriteConfig(int max) {
    std::ofstream(config_path_) << "level { name: \"mailbox\" limit { window: \"1h\" max: " << max
                                << " } }\npolicy { trusted_network: \"192.0.2.0/24\" }\n";
  }

  bool Logged(absl::string_view what) {
    std::lock_guard<std::mutex> lock(log_mu_);
    for (const auto& l : log_) {
      if (l.find(std::string(what)) != std::string::npos) return true;
    }
    return false;
  }

  std::string Admin(const std::string& line) {
    int fd = ConnectUnix(o_admin());
    if (fd < 0) return "<no admin socket>";
    std::string cmd = line + "\n";
    send(fd, cmd.data(), cmd.size(), MSG_NOSIGNAL);
    std::string r = ReadAll(fd);
    close(fd);
    return r;
  }
  std::string o_admin() const { return dir_ + "/admin.sock"; }

  std::string dir_, config_path_;
  std::unique_ptr<PolicyEngine> engine_;
  std::unique_ptr<PolicyServer> server_;
  std::thread runner_;
  int port_ = 0;
  std::mutex log_mu_;
  std::vector<std::string> log_;
};

TEST_F(PolicyServerTest, PersistentConnectionPipelinedRequestsAndTheLimit) {
  int fd = ConnectTcp(port_);
  ASSERT_GE(fd, 0);
  // Two requests in one write: two answers, in order.
  std::string both = Ask(fd, Rcpt("a@x.example", "t1") + Rcpt("a@x.example", "t2"));
  if (both == "action=DUNNO\n\n") both += Ask(fd, "");
  EXPECT_EQ(both, "action=DUNNO\n\naction=DUNNO\n\n");
  std::string third = Ask(fd, Rcpt("a@x.example", "t3"));
  EXPECT_EQ(third.rfind("action=451 4.7.1 sluice: mailbox messages limit 2/1h exceeded", 0), 0u)
      << third;
  close(fd);
  EXPECT_TRUE(
      Logged("sluice: defer identity=<a@x.example> direction=outgoing "
             "direction_by=trusted_network rule=limit level=mailbox"));
}

TEST_F(PolicyServerTest, UnixSocket) {
  int fd = ConnectUnix(dir_ + "/policy.sock");
  ASSERT_GE(fd, 0);
  EXPECT_EQ(Ask(fd, Rcpt("u@x.example", "u1")), "action=DUNNO\n\n");
  close(fd);
}

// Bad input gets a defined answer (DEFER_IF_PERMIT with the reason) and a
// log line; the connection stays usable for the next request.
TEST_F(PolicyServerTest, BadInputIsAnsweredAndTheConnectionGoesOn) {
  struct Case {
    std::string payload, reason;
  } cases[] = {
      {std::string("\x01\x02\x00garbage\n\n", 12), "not name=value"},
      {"protocol_state=RCPT\nsender=a@x.example\n\n", "no request= attribute"},
      {"request=smtpd_access_policy\nsender=" + std::string(4000, 'a') + "\n\n",
       "line longer than"},
  };
  int n = 0;
  for (const auto& c : cases) {
    int fd = ConnectTcp(port_);
    ASSERT_GE(fd, 0);
    const std::string answer = Ask(fd, c.payload);
    EXPECT_EQ(answer.rfind("action=DEFER_IF_PERMIT sluice: bad policy request (", 0), 0u) << answer;
    EXPECT_NE(answer.find(c.reason), std::string::npos) << answer;
    EXPECT_EQ(Ask(fd, Rcpt(absl::StrCat("ok", n, "@x.example"), absl::StrCat("b", n))),
              "action=DUNNO\n\n");
    ++n;
    close(fd);
    EXPECT_TRUE(Logged(c.reason)) << c.reason;
  }
  // A request longer than the request limit, sent in pieces: its rest is
  // dropped as it comes (memory stays bounded), then it is answered.
  int fd = ConnectTcp(port_);
  std::string endless = "request=smtpd_access_policy\n";
  while (endless.size() < 100000) endless += "x=y\n";
  ASSERT_GT(send(fd, endless.data(), endless.size(), MSG_NOSIGNAL), 0);
  const std::string answer = Ask(fd, "\n");
  EXPECT_NE(answer.find("request longer than"), std::string::npos) << answer;
  EXPECT_EQ(Ask(fd, Rcpt("after@x.example", "k1")), "action=DUNNO\n\n");
  close(fd);
  EXPECT_TRUE(Logged("request longer than"));
}

TEST_F(PolicyServerTest, IdleClientWithoutTheBlankLineIsClosed) {
  int fd = ConnectTcp(port_);
  ASSERT_GE(fd, 0);
  absl::Time start = absl::Now();
  // Half a request, then silence: closed after the 1 s idle timeout.
  EXPECT_EQ(Ask(fd, "request=smtpd_access_policy\nprotocol_state=RCPT\n"), "<closed>");
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(900));
  close(fd);
}

TEST_F(PolicyServerTest, ConnectionFloodIsCappedAndLogged) {
  std::vector<int> fds;
  for (int i = 0; i < 20; ++i) fds.push_back(ConnectTcp(port_));
  // The first 8 are served; the rest are closed at accept.
  int served = 0, closed = 0;
  for (size_t i = 0; i < fds.size(); ++i) {
    std::string r = Ask(fds[i], Rcpt(absl::StrCat("f", i, "@x.example"), absl::StrCat("f", i)));
    if (r == "action=DUNNO\n\n") ++served;
    if (r == "<closed>") ++closed;
  }
  EXPECT_EQ(served, 8);
  EXPECT_EQ(closed, 12);
  EXPECT_TRUE(Logged("too many connections (max 8)"));
  for (int fd : fds) close(fd);
  // Once they are gone, new clients are served again (bounded wait).
  std::string r;
  for (int i = 0; i < 50 && r != "action=DUNNO\n\n"; ++i) {
    absl::SleepFor(absl::Milliseconds(20));
    int fd = ConnectTcp(port_);
    r = Ask(fd, Rcpt("later@x.example", absl::StrCat("l", i)));
    close(fd);
  }
  EXPECT_EQ(r, "action=DUNNO\n\n");
}

TEST_F(PolicyServerTest, AdminSocketAndReload) {
  int fd = ConnectTcp(port_);
  Ask(fd, Rcpt("b@x.example", "b1"));
  Ask(fd, Rcpt("b@x.example", "b2"));
  EXPECT_NE(Ask(fd, Rcpt("b@x.example", "b3")), "action=DUNNO\n\n");
  std::string usage = Admin("usage b@x.example");
  EXPECT_EQ(usage.rfind("OK\n", 0), 0u) << usage;
  EXPECT_NE(usage.find("b@x.example"), std::string::npos) << usage;
  std::string top = Admin("top mailbox");
  EXPECT_NE(top.find("b@x.example"), std::string::npos) << top;
  EXPECT_EQ(Admin("reset b@x.example").rfind("OK reset 1 counters", 0), 0u);
  EXPECT_EQ(Ask(fd, Rcpt("b@x.example", "b4")), "action=DUNNO\n\n");
  // A bad config file is refused with its position; the old one stays.
  std::ofstream(config_path_) << "level { name: \"mailbox\" limit { window: \"1q\" max: 1 } }\n";
  std::string bad = Admin("reload");
  EXPECT_EQ(bad.rfind("ERR " + config_path_ + ":1:", 0), 0u) << bad;
  EXPECT_EQ(Admin("check-config").rfind("ERR", 0), 0u);
  WriteConfig(10);
  EXPECT_EQ(Admin("check-config"), "OK " + config_path_ + " is valid: 1 levels, 0 entities\n");
  EXPECT_EQ(Admin("reload"), "OK reloaded\n");
  EXPECT_EQ(Ask(fd, Rcpt("b@x.example", "b5")), "action=DUNNO\n\n");
  close(fd);
  EXPECT_EQ(Admin("frobnicate").rfind("ERR unknown command", 0), 0u);
  // explain of a message (Postfix's attributes): direction and why; bad
  // attributes get a clear error.
  std::string x = Admin("explain client_address=192.0.2.1 sender=b@x.example server_port=587");
  EXPECT_NE(x.find("direction: outgoing (trusted_network)"), std::string::npos) << x;
  EXPECT_NE(x.find("mailbox"), std::string::npos) << x;
  EXPECT_EQ(Admin("explain client_address=203.0.113.9 color=red"),
            "ERR unknown attribute \"color\" (client_address, sasl_username, sender, recipient, "
            "server_port, policy_context)\n");
  EXPECT_EQ(Admin("explain client_address=203.0.113.9 sender"), "ERR not name=value: \"sender\"\n");
  EXPECT_EQ(Admin("explain server_port=70000"), "ERR bad server_port\n");
  EXPECT_EQ(Admin("explain server_port=x"), "ERR bad server_port\n");
}

TEST_F(PolicyServerTest, PrometheusMetrics) {
  int fd = ConnectTcp(port_);
  for (int i = 0; i < 3; ++i) Ask(fd, Rcpt("m@x.example", absl::StrCat("m", i)));
  close(fd);
  int h = ConnectTcp(server_->metrics_port());
  ASSERT_GE(h, 0);
  std::string req = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  send(h, req.data(), req.size(), MSG_NOSIGNAL);
  std::string page = ReadAll(h);
  close(h);
  EXPECT_NE(page.find("200 OK"), std::string::npos);
  EXPECT_NE(page.find("sluice_requests_total 3"), std::string::npos) << page;
  EXPECT_NE(page.find("sluice_decisions_total{action=\"defer\"} 1"), std::string::npos);
  EXPECT_NE(page.find("sluice_trips_total{rule=\"limit\",level=\"mailbox\"} 1"), std::string::npos);
  EXPECT_NE(page.find("sluice_request_duration_seconds_count 3"), std::string::npos);
}

// Lists everything but the RFC 5782 "not listed" test point 127.0.0.1.
class ListedDns : public DnsResolver {
 public:
  void Query(const std::string& name, Type, Callback cb) override {
    DnsAnswer a;
    if (name.rfind("1.0.0.127.", 0) == 0) {
      a.rcode = 3;
    } else {
      a.a = {0x7f000002};
      a.ttl = 300;
    }
    cb(absl::OkStatus(), a);
  }
  uint64_t queries_sent() const override { return 0; }
};

TEST(PolicyServerDnsTest, DnsblRefusalAndCacheMetrics) {
  auto c = ParseConfigText(R"pb(level {
                                  name: "mailbox"
                                  limit { window: "1h" max: 10 }
                                }
                                reputation { list { zone: "zen.bl.test" } })pb");
  ASSERT_TRUE(c.ok()) << c.status();
  ListedDns dns;
  PolicyEngine::Options eo;
  eo.dns = &dns;
  auto engine = PolicyEngine::Create(*c, absl::Now(), eo);
  ASSERT_TRUE(engine.ok()) << engine.status();
  PolicyServer::Options o;
  o.listen = {"inet:127.0.0.1:0"};
  o.threads = 1;
  o.metrics = "127.0.0.1:0";
  o.handle_signals = false;
  std::mutex log_mu;
  std::vector<std::string> log;
  o.log = [&](PolicyServer::LogPriority, const std::string& line) {
    std::lock_guard<std::mutex> lock(log_mu);
    log.push_back(line);
  };
  auto server = PolicyServer::Create(engine->get(), o);
  ASSERT_TRUE(server.ok()) << server.status();
  std::thread runner([&] { (*server)->Run(); });
  int fd = ConnectTcp((*server)->port(0));
  std::string r1 = Ask(fd, Rcpt("a@x.example", "z1"));
  std::string r2 = Ask(fd, Rcpt("a@x.example", "z2"));
  close(fd);
  EXPECT_EQ(r1.rfind("action=554 5.7.1 sluice: Service unavailable; client [192.0.2.1] blocked "
                     "using zen.bl.test",
                     0),
            0u)
      << r1;
  EXPECT_EQ(r1, r2);
  // The health check runs beside the loop: wait for its line (bounded).
  bool health = false;
  for (int i = 0; i < 500 && !health; ++i) {
    {
      std::lock_guard<std::mutex> lock(log_mu);
      for (const auto& l : log) health |= l == "DNS list health check: 1 of 1 lists ok";
    }
    if (!health) absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_TRUE(health);
  int h = ConnectTcp((*server)->metrics_port());
  std::string req = "GET /metrics HTTP/1.0\r\n\r\n";
  send(h, req.data(), req.size(), MSG_NOSIGNAL);
  std::string page = ReadAll(h);
  close(h);
  // Two lookups for the health check (127.0.0.2 and 127.0.0.1), one for
  // the client: its second request is answered from the cache.
  EXPECT_NE(page.find("sluice_dns_cache_lookups_total{outcome=\"miss\"} 3"), std::string::npos)
      << page;
  EXPECT_EQ(page.find("sluice_dns_cache_lookups_total{outcome=\"hit\"} 0\n"), std::string::npos);
  EXPECT_NE(page.find("sluice_decisions_total{action=\"reject\"} 2"), std::string::npos);
  (*server)->Stop();
  runner.join();
}

// A DNS server that never answers (a UDP socket nobody reads): requests
// that need it wait off the loop, within the budget; the worker's other
// connections are served at once; a failed lookup is remembered, so the
// next request from that client neither waits nor asks again.
TEST(PolicyServerDnsTest, RequestsWaitingForDnsDoNotStallOthers) {
  int dns_port = 0;
  const int hole = testing::BlackHoleUdp(&dns_port);
  ASSERT_GE(hole, 0);
  // Queries that reached the black hole so far (drains its queue).
  int queries = 0;
  auto count_queries = [&] {
    char buf[512];
    while (recv(hole, buf, sizeof(buf), MSG_DONTWAIT) > 0) ++queries;
    return queries;
  };
  auto c = ParseConfigText(absl::StrCat(R"pb(level {
                                               name: "mailbox"
                                               limit { window: "1h" max: 10 }
                                             }
                                             reputation { list { zone: "zen.bl.test" }
                                                          nameserver: "127.0.0.1"
                                                          timeout: "300ms"
                                                          budget: "3s"
                                                          port:)pb",
                                        dns_port, "}"));
  ASSERT_TRUE(c.ok()) << c.status();
  auto engine = PolicyEngine::Create(*c, absl::Now(), PolicyEngine::Options());
  ASSERT_TRUE(engine.ok()) << engine.status();
  PolicyServer::Options o;
  o.listen = {"inet:127.0.0.1:0"};
  o.threads = 1;  // one worker: a stalled loop would stall everyone
  o.handle_signals = false;
  o.log = [](PolicyServer::LogPriority, const std::string&) {};
  auto server = PolicyServer::Create(engine->get(), o);
  ASSERT_TRUE(server.ok()) << server.status();
  std::thread runner([&] { (*server)->Run(); });
  const int port = (*server)->port(0);
  auto rcpt = [](const char* client, const char* instance) {
    return absl::StrCat(
        "request=smtpd_access_policy\nprotocol_state=RCPT\nsender=a@x.example\n"
        "recipient=r@remote.example\nclient_address=",
        client, "\ninstance=", instance, "\n\n");
  };
  // Two connections park on RCPT (their lists' lookups go unanswered).
  const absl::Time start = absl::Now();
  int a = ConnectTcp(port), b = ConnectTcp(port);
  std::string ra = rcpt("198.51.100.1", "p1"), rb = rcpt("198.51.100.2", "p2");
  ASSERT_GT(send(a, ra.data(), ra.size(), MSG_NOSIGNAL), 0);
  ASSERT_GT(send(b, rb.data(), rb.size(), MSG_NOSIGNAL), 0);
  // A third connection's MAIL request needs no DNS: answered at once.
  int m = ConnectTcp(port);
  const std::string mail =
      "request=smtpd_access_policy\nprotocol_state=MAIL\nsender=a@x.example\n"
      "client_address=198.51.100.3\ninstance=p3\n\n";
  const absl::Time asked = absl::Now();
  EXPECT_EQ(Ask(m, mail), "action=DUNNO\n\n");
  const absl::Duration mail_took = absl::Now() - asked;
  // The parked ones are answered when their lookups fail: unknown, so
  // admitted (never "listed"), within the budget.
  EXPECT_EQ(Ask(a, ""), "action=DUNNO\n\n");
  EXPECT_EQ(Ask(b, ""), "action=DUNNO\n\n");
  const absl::Duration parked_took = absl::Now() - start;
  EXPECT_LT(mail_took, absl::Milliseconds(500)) << "the loop waited for DNS";
  EXPECT_LT(parked_took, absl::Seconds(3) + absl::Seconds(1));
  // The same client again: its failure is remembered, no new query.
  absl::SleepFor(absl::Milliseconds(100));
  const int before = count_queries();
  EXPECT_GT(before, 0);
  EXPECT_EQ(Ask(a, rcpt("198.51.100.1", "p4")), "action=DUNNO\n\n");
  EXPECT_EQ(count_queries(), before);
  close(a);
  close(b);
  close(m);
  (*server)->Stop();
  runner.join();
  close(hole);
}

}  // namespace
}  // namespace sluice
