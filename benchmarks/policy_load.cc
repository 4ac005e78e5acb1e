// policy_load: a load generator speaking the Postfix policy delegation
// protocol, for sluice-policyd and its peers (policyd-rate-limit, postfwd,
// a Python floor, a bare echo server).
//
//   policy_load --target HOST:PORT --connections C --senders S --requests N
//               --limit L [--threads T] [--name NAME] [--seed X]
//               [--rate R] [--verbose 1] [--inbound-connections K]
//
// --inbound-connections K: the first K connections send only inbound mail
// from a fresh client address each time (198.18.0.0/15: every request
// needs its DNS lookups; with a black-holed DNS server each waits its whole
// budget). They run while the others do; the result line is the others'
// (requests/s to their last answer, latency, wrong), and a second line
// gives the inbound ones'.
//
// Like Postfix's smtpd, every connection has one request in flight. By
// default the load is a closed loop (each connection sends its next request
// as soon as the answer is in: the server's throughput); --rate R offers a
// fixed R requests/s instead (latency at a given load, measured from each
// request's due time). Each
// request is a RCPT-stage request of its own transaction from one of S
// senders (a fixed pseudo-random order). With a per-sender limit of L per
// window configured in the server, a correct server allows each sender
// exactly min(answered, L) requests; "wrong" is the sum over senders of the
// difference. Prints one result line: requests/s, p50/p99 latency, wrong.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Options {
  std::string host = "127.0.0.1";
  int port = 0;
  int connections = 16;
  int senders = 1000;
  long requests = 100000;
  long limit = 50;
  int threads = 2;
  std::string name = "server";
  uint64_t seed = 1;
  bool verbose = false;
  double rate = 0;  // open loop: requests/s over all threads; 0: closed loop
  int inbound_connections = 0;
};

using Clock = std::chrono::steady_clock;

struct Conn {
  int fd = -1;
  std::string out;
  size_t out_off = 0;
  std::string in;
  long request = -1;      // index in flight
  bool want_out = false;  // registered for EPOLLOUT
  bool inbound = false;   // sends inbound mail from fresh addresses
  Clock::time_point sent;
};

struct Shared {
  Options o;
  std::vector<int> sender_of;  // request -> sender
  std::atomic<long> next{0};
  std::vector<std::atomic<long>> allowed;   // per sender: answers that let the mail through
  std::vector<std::atomic<long>> answered;  // per sender: answers
  std::atomic<long> errors{0};
  std::atomic<long> inbound_next{0};
  std::atomic<int64_t> last_answer_ns{0};  // of a normal request, since the start
  Clock::time_point start;
  std::string run_tag;
  explicit Shared(const Options& opt) : o(opt), allowed(opt.senders), answered(opt.senders) {}
};

std::string MakeRequest(const Shared& s, long i) {
  char buf[512];
  int n = std::snprintf(buf, sizeof(buf),
                        "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n"
                        "client_address=192.0.2.%d\nclient_name=client.example\n"
                        "helo_name=client.example\nqueue_id=\nsender=s%d-%s@load.example\n"
                        "recipient=r%ld@remote.example\nrecipient_count=0\ninstance=%s.%ld\n"
                        "size=0\nsasl_method=\nsasl_username=\nsasl_sender=\n\n",
                        1 + s.sender_of[i] % 250, s.sender_of[i], s.run_tag.c_str(), i,
                        s.run_tag.c_str(), i);
  return std::string(buf, static_cast<size_t>(n));
}

// Inbound mail for a local user from a client never seen before.
std::string MakeInboundRequest(const Shared& s, long i) {
  char buf[512];
  int n = std::snprintf(buf, sizeof(buf),
                        "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n"
                        "client_address=198.%ld.%ld.%ld\nclient_name=unknown\n"
                        "helo_name=mx.remote.example\nqueue_id=\nsender=news@remote.example\n"
                        "recipient=user@load.example\nrecipient_count=0\ninstance=%s.in.%ld\n"
                        "size=0\nsasl_method=\nsasl_username=\nsasl_sender=\n\n",
                        18 + (i >> 16) % 2, (i >> 8) % 256, i % 256, s.run_tag.c_str(), i);
  return std::string(buf, static_cast<size_t>(n));
}

int Connect(const Options& o) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(o.port));
  inet_pton(AF_INET, o.host.c_str(), &sa.sin_addr);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 && errno != EINPROGRESS) {
    close(fd);
    return -1;
  }
  return fd;
}

// Whether an answer lets the mail through.
bool Allowed(const std::string& in) {
  std::string a = in.substr(0, in.find('\n'));
  for (auto& ch : a) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return a == "action=dunno" || a == "action=ok" || a.rfind("action=prepend", 0) == 0;
}

// Starts the next request on c; returns false when none is left.
bool Next(Shared& s, Conn& c) {
  if (c.inbound) {  // while the normal stream lasts
    if (s.next.load(std::memory_order_relaxed) >= s.o.requests) return false;
    c.request = -1;
    c.out = MakeInboundRequest(s, s.inbound_next.fetch_add(1, std::memory_order_relaxed));
    c.out_off = 0;
    c.in.clear();
    return true;
  }
  long i = s.next.fetch_add(1, std::memory_order_relaxed);
  if (i >= s.o.requests) return false;
  c.request = i;
  c.out = MakeRequest(s, i);
  c.out_off = 0;
  c.in.clear();
  return true;
}

// Sends what is left of c's request; returns false if the connection
// failed. A request that does not fit the socket buffer waits for EPOLLOUT.
bool Flush(int ep, uint32_t k, Conn& c) {
  while (c.out_off < c.out.size()) {
    ssize_t w = send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno != EAGAIN) return false;
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLOUT;
      ev.data.u32 = k;
      epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
      c.want_out = true;
      return true;
    }
    c.out_off += static_cast<size_t>(w);
  }
  if (c.want_out) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = k;
    epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
    c.want_out = false;
  }
  return true;
}

// One epoll loop over nconn connections.
//
// Closed loop (rate 0): a request is sent as soon as the answer to the
// previous one is in (no epoll_ctl per request), so the generator costs two
// syscalls per request plus its share of epoll_wait; latency is measured
// from the send.
//
// Open loop (rate > 0 requests/s for this thread): request j is due at
// t0 + j / rate and goes out on an idle connection; latency is measured
// from the due time, so a server that falls behind is charged for the
// queueing it causes (no coordinated omission).
void Worker(Shared& s, int first, int nconn, double rate, std::vector<double>* lat,
            std::vector<double>* lat_in) {
  int ep = epoll_create1(0);
  std::vector<Conn> conns(nconn);
  for (int k = 0; k < nconn; ++k) conns[k].inbound = first + k < s.o.inbound_connections;
  std::vector<uint32_t> idle;  // open loop: connections with nothing in flight
  int active = 0;
  bool more = true;  // requests left to start
  for (int k = 0; k < nconn; ++k) {
    Conn& c = conns[k];
    c.fd = Connect(s.o);
    if (c.fd < 0) {
      s.errors++;
      continue;
    }
    epoll_event ev{};
    ev.data.u32 = static_cast<uint32_t>(k);
    if (rate > 0) {
      ev.events = EPOLLIN;
      idle.push_back(static_cast<uint32_t>(k));
    } else {
      if (!Next(s, c)) {
        close(c.fd);
        c.fd = -1;
        continue;
      }
      ev.events = EPOLLIN | EPOLLOUT;  // the connect completes first
      c.want_out = true;
      c.sent = Clock::now();
    }
    epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev);
    ++active;
  }
  std::vector<epoll_event> evs(256);
  char buf[4096];
  const auto t0 = Clock::now();
  const auto deadline = t0 + std::chrono::minutes(5);
  long issued = 0;  // open loop: requests started by this thread
  auto due_time = [&](long j) {
    return t0 +
           std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(j / rate));
  };
  auto close_conn = [&](Conn& c) {
    close(c.fd);
    c.fd = -1;
    --active;
  };
  while (active > 0) {
    auto now = Clock::now();
    if (now >= deadline) break;
    timespec timeout{1, 0};
    if (rate > 0) {
      // Start every due request that has an idle connection.
      while (more && !idle.empty() && due_time(issued) <= now) {
        const uint32_t k = idle.back();
        Conn& c = conns[k];
        if (!Next(s, c)) {
          more = false;
          break;
        }
        idle.pop_back();
        c.sent = due_time(issued++);
        if (!Flush(ep, k, c)) {
          s.errors++;
          close_conn(c);
        }
      }
      if (!more) {  // nothing left to send: idle connections are done
        for (uint32_t k : idle) close_conn(conns[k]);
        idle.clear();
        if (active == 0) break;
      } else if (!idle.empty()) {
        const auto wait = std::max(due_time(issued) - Clock::now(), Clock::duration::zero());
        const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(wait).count();
        timeout = {static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
      }
    }
    int n = epoll_pwait2(ep, evs.data(), static_cast<int>(evs.size()), &timeout, nullptr);
    for (int e = 0; e < n; ++e) {
      const uint32_t k = evs[e].data.u32;
      Conn& c = conns[k];
      if (c.fd < 0) continue;
      bool dead = (evs[e].events & (EPOLLERR | EPOLLHUP)) != 0;
      if (!dead && (evs[e].events & EPOLLOUT)) dead = !Flush(ep, k, c);
      if (!dead && (evs[e].events & EPOLLIN)) {
        ssize_t r = recv(c.fd, buf, sizeof(buf), 0);
        if (r == 0 || (r < 0 && errno != EAGAIN)) dead = true;
        if (r > 0) c.in.append(buf, static_cast<size_t>(r));
        if (c.in.size() >= 2 && c.in.compare(c.in.size() - 2, 2, "\n\n") == 0) {
          const auto answered_at = Clock::now();
          const double us = std::chrono::duration<double, std::micro>(answered_at - c.sent).count();
          if (c.inbound) {
            lat_in->push_back(us);
          } else {
            lat->push_back(us);
            if (Allowed(c.in)) s.allowed[s.sender_of[c.request]]++;
            s.answered[s.sender_of[c.request]]++;
            const int64_t ns =
                std::chrono::duration_cast<std::chrono::nanoseconds>(answered_at - s.start).count();
            int64_t last = s.last_answer_ns.load(std::memory_order_relaxed);
            while (ns > last && !s.last_answer_ns.compare_exchange_weak(last, ns)) {
            }
          }
          c.in.clear();
          if (rate > 0) {
            idle.push_back(k);
          } else if (Next(s, c)) {
            c.sent = Clock::now();
            dead = !Flush(ep, k, c);
          } else {
            close_conn(c);
          }
        }
      }
      if (dead && c.fd >= 0) {
        s.errors++;
        close_conn(c);
      }
    }
  }
  for (auto& c : conns) {
    if (c.fd >= 0) close(c.fd);
  }
  close(ep);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i], v = argv[i + 1];
    if (a == "--target") {
      size_t colon = v.rfind(':');
      o.host = v.substr(0, colon);
      o.port = std::atoi(v.c_str() + colon + 1);
    } else if (a == "--connections") {
      o.connections = std::atoi(v.c_str());
    } else if (a == "--senders") {
      o.senders = std::atoi(v.c_str());
    } else if (a == "--requests") {
      o.requests = std::atol(v.c_str());
    } else if (a == "--limit") {
      o.limit = std::atol(v.c_str());
    } else if (a == "--threads") {
      o.threads = std::atoi(v.c_str());
    } else if (a == "--name") {
      o.name = v;
    } else if (a == "--rate") {
      o.rate = std::atof(v.c_str());
    } else if (a == "--verbose") {
      o.verbose = v == "1";
    } else if (a == "--inbound-connections") {
      o.inbound_connections = std::atoi(v.c_str());
    } else if (a == "--seed") {
      o.seed = std::strtoull(v.c_str(), nullptr, 10);
    } else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  if (o.port <= 0 || o.connections < 1 || o.senders < 1 || o.requests < 1) {
    std::fprintf(stderr,
                 "usage: policy_load --target HOST:PORT --connections C --senders S "
                 "--requests N --limit L [--threads T] [--name NAME] [--seed X] [--rate R] "
                 "[--verbose 1]\n");
    return 2;
  }
  Shared s(o);
  std::mt19937_64 rng(o.seed);
  s.sender_of.resize(static_cast<size_t>(o.requests));
  for (auto& x : s.sender_of) x = static_cast<int>(rng() % static_cast<uint64_t>(o.senders));
  s.run_tag =
      std::to_string(std::chrono::system_clock::now().time_since_epoch().count() % 1000000007);
  int threads = std::max(1, std::min(o.threads, o.connections));
  std::vector<std::vector<double>> lat(threads), lat_in(threads);
  std::vector<std::thread> ts;
  s.start = Clock::now();
  int first = 0;
  for (int t = 0; t < threads; ++t) {
    int n = o.connections / threads + (t < o.connections % threads ? 1 : 0);
    ts.emplace_back(Worker, std::ref(s), first, n, o.rate * n / o.connections, &lat[t], &lat_in[t]);
    first += n;
  }
  for (auto& t : ts) t.join();
  // Normal requests' throughput: up to their last answer (inbound ones may
  // still wait for DNS then).
  double secs = s.last_answer_ns.load() / 1e9;
  if (secs <= 0) secs = std::chrono::duration<double>(Clock::now() - s.start).count();
  std::vector<double> all, in;
  for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
  for (auto& v : lat_in) in.insert(in.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  std::sort(in.begin(), in.end());
  auto pct_of = [](const std::vector<double>& v, double p) {
    return v.empty() ? 0.0 : v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
  };
  auto pct = [&](double p) { return pct_of(all, p); };
  // A request lost with its connection (errors) may still have been
  // counted by the server: with errors, "wrong" can include those.
  long wrong = 0;
  for (int k = 0; k < o.senders; ++k) {
    wrong += std::labs(s.allowed[k].load() - std::min(s.answered[k].load(), o.limit));
  }
  std::printf(
      "%-22s conns %4d  requests %7zu  %9.0f req/s  p50 %8.1f us  p99 %8.1f us  "
      "wrong %ld  errors %ld\n",
      o.name.c_str(), o.connections, all.size(), all.size() / secs, pct(0.50), pct(0.99), wrong,
      s.errors.load());
  if (o.inbound_connections > 0) {
    std::printf("%-22s inbound conns %4d  requests %7zu  p50 %8.1f us  p99 %8.1f us\n", "",
                o.inbound_connections, in.size(), pct_of(in, 0.50), pct_of(in, 0.99));
  }
  if (o.verbose) {
    std::printf("  p90 %.1f us  p99.9 %.1f us  max %.1f us\n", pct(0.90), pct(0.999),
                all.empty() ? 0.0 : all.back());
  }
  return 0;
}
