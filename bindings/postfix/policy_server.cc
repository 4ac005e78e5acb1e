#include "bindings/postfix/policy_server.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <ctime>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "bindings/postfix/admin.h"
#include "bindings/postfix/metrics.h"
#include "ratelimit/config.h"
#include "ratelimit/limiter.h"
#include "ratelimit/safe_file.h"
#include "reputation/abuse/abuse_guard.h"
#include "reputation/dns/dns_cache.h"
#include "reputation/dns/dnsbl.h"
#include "reputation/score_board.h"

namespace sluice {

namespace {

int64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

absl::Status Errno(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

// Opens a listening socket for "inet:HOST:PORT" or "unix:PATH".
// A unix socket this process owns: the lock beside it (PATH.lock) that
// keeps a second instance from taking it over.
struct OwnedSocket {
  std::string path;
  int lock_fd = -1;
};

// Binds "inet:HOST:PORT" or "unix:PATH". A unix socket is created with
// `unix_mode` (under a umask that allows no more: no window with other
// permissions, no chmod that could follow a swapped-in symlink) and group
// `gid` (-1: the process's); it is taken only with its lock, so a running
// instance's socket is never removed or stolen.
absl::StatusOr<int> Listen(const std::string& spec, mode_t unix_mode, gid_t gid,
                           std::vector<OwnedSocket>* owned) {
  if (spec.rfind("unix:", 0) == 0) {
    std::string path = spec.substr(5);
    sockaddr_un sa{};
    if (path.empty() || path.size() >= sizeof(sa.sun_path)) {
      return absl::InvalidArgumentError(absl::StrCat("bad unix socket path in \"", spec, "\""));
    }
    auto lock = LockFile(path + ".lock");
    if (!lock.ok()) return lock.status();
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      close(*lock);
      return Errno("socket");
    }
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, path.data(), path.size());
    unlink(path.c_str());  // a stale socket of an earlier run (we hold its lock)
    const mode_t old_umask = umask(0777 & ~unix_mode);
    const int bound = bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
    umask(old_umask);
    if (bound != 0 || (gid != static_cast<gid_t>(-1) && lchown(path.c_str(), -1, gid) != 0)) {
      auto s = Errno(absl::StrCat(bound != 0 ? "bind " : "chown ", path));
      close(fd);
      close(*lock);
      return s;
    }
    owned->push_back(OwnedSocket{path, *lock});
    if (listen(fd, 1024) != 0 || evutil_make_socket_nonblocking(fd) != 0) {
      close(fd);
      return Errno("listen");
    }
    return fd;
  }
  std::string rest = spec.rfind("inet:", 0) == 0 ? spec.substr(5) : spec;
  size_t colon = rest.rfind(':');
  int port = -1;
  if (colon == std::string::npos || !absl::SimpleAtoi(rest.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad listen address \"", spec, "\" (inet:HOST:PORT or unix:PATH)"));
  }
  std::string host = rest.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  sockaddr_storage ss{};
  socklen_t len;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    len = sizeof(*v4);
  } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    len = sizeof(*v6);
  } else {
    return absl::InvalidArgumentError(absl::StrCat("bad host in \"", spec, "\" (use an address)"));
  }
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("socket");
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    auto s = Errno(absl::StrCat("bind ", spec));
    close(fd);
    return s;
  }
  if (listen(fd, 1024) != 0 || evutil_make_socket_nonblocking(fd) != 0) {
    close(fd);
    return Errno("listen");
  }
  return fd;
}

int BoundPort(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return -1;
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return -1;
}

// Default log: mail.log-style lines on stderr. A worker batches the lines
// of one pass of its event loop into one write (thread-local buffer,
// flushed by FlushStderrLog from a lowest-priority event, or at 64 KiB);
// elsewhere every line is written at once.
thread_local bool t_batch_log = false;
thread_local std::string t_log;
thread_local int64_t t_stamp_second = -1;
thread_local char t_stamp[32];

void FlushStderrLog() {
  size_t off = 0;
  while (off < t_log.size()) {
    ssize_t w = write(2, t_log.data() + off, t_log.size() - off);
    if (w <= 0) break;
    off += static_cast<size_t>(w);
  }
  t_log.clear();
}

void StderrLog(PolicyServer::LogPriority, const std::string& line) {
  time_t t = time(nullptr);
  if (t != t_stamp_second) {
    tm tmv;
    localtime_r(&t, &tmv);
    strftime(t_stamp, sizeof(t_stamp), "%b %e %H:%M:%S", &tmv);
    t_stamp_second = t;
  }
  static const int pid = static_cast<int>(getpid());  // getpid() is a syscall
  // The program's name: sluice-policyd, or sluice-milter (the same daemon).
  absl::StrAppend(&t_log, t_stamp, " ", program_invocation_short_name, "[", pid, "]: ", line, "\n");
  if (!t_batch_log || t_log.size() > 65536) FlushStderrLog();
}

}  // namespace

void PolicyServer::DefaultLog(LogPriority p, const std::string& line) { StderrLog(p, line); }

struct PolicyServer::Impl {
  struct Worker {
    Impl* impl = nullptr;
    event_base* base = nullptr;
    std::thread thread;
    WorkerMetrics metrics;
    absl::flat_hash_set<void*> conns;  // open connections (this worker's thread only)
    // Runs after every connection event of a loop pass (lowest priority):
    // writes the log lines of the pass at once.
    event* log_flush = nullptr;
    bool log_flush_active = false;
    // Connections accepted by the main thread for this worker.
    std::mutex adopt_mu;
    std::vector<int> adopt;  // guarded by adopt_mu
    event* adopt_ev = nullptr;
    std::atomic<int> load{0};  // open and handed-over connections
  };
  // A policy connection: plain events and direct reads and writes (one
  // read and one send per batch of requests; no output buffering unless
  // the socket is full).
  // How a DNS thread wakes a parked connection: event_active on its
  // resume event, unless the connection has closed meanwhile.
  struct Wake {
    std::mutex mu;
    event* ev = nullptr;  // null once the connection is gone
  };
  struct Conn {
    Worker* worker;
    int fd;
    event* rev = nullptr;     // read, persistent, with the idle timeout
    event* wev = nullptr;     // write, only while `pending` holds output
    event* resume = nullptr;  // a parked request: its DNS ended, or its budget did
    std::string in;
    std::string pending;
    // While a request waits for DNS (reads stop; its text stays in `in`):
    // when its budget ends. InfinitePast: not parked.
    absl::Time parked_until = absl::InfinitePast();
    std::shared_ptr<Wake> wake;
    bool reading = true;  // rev is added
    // Dropping the rest of an over-long request until its empty line.
    bool skipping = false;
    bool skip_newline = false;  // the last byte dropped was '\n'
    std::string skip_reason;
    std::function<void()> ready;  // wakes this connection (given to Prepare)
  };
  static constexpr size_t kMaxPending = 1 << 20;  // a client that does not read

  PolicyEngine* engine = nullptr;
  Options options;
  std::vector<int> fds;  // listening sockets (options.listen order)
  int admin_fd = -1;
  std::vector<OwnedSocket> owned_sockets;
  event* accept_resume = nullptr;  // main thread only, as the two below
  uint64_t accept_errors = 0;
  absl::Time last_accept_error_log = absl::InfinitePast();
  std::vector<std::unique_ptr<Worker>> workers;
  event_base* main_base = nullptr;
  std::vector<event*> main_events;
  std::vector<evconnlistener*> listeners;  // policy sockets, on main_base
  evconnlistener* admin_listener = nullptr;
  evconnlistener* metrics_listener = nullptr;
  struct MetricsConn;
  absl::flat_hash_set<MetricsConn*> metrics_conns;  // main thread only
  int metrics_port = -1;
  std::atomic<int> open_connections{0};
  std::atomic<int64_t> last_refusal_log{0};
  std::atomic<uint64_t> refused{0};
  std::atomic<uint64_t> reloads_ok{0}, reloads_failed{0};
  std::atomic<int64_t> config_loaded_unix{0};
  absl::Time last_health = absl::InfinitePast();  // main thread only
  std::thread health_thread;
  std::atomic<bool> health_running{false};

  void Log(LogPriority p, const std::string& line) {
    if (options.log) {
      options.log(p, line);
    } else {
      StderrLog(p, line);
    }
  }

  // ---- Policy connections -------------------------------------------------

  // The main thread accepts every connection and hands it to the worker
  // with the fewest (the kernel's choice among workers sharing a listening
  // socket left one worker with all 128 connections in a measured run).
  static void OnAccept(evconnlistener*, evutil_socket_t fd, sockaddr*, int, void* arg) {
    Impl* impl = static_cast<Impl*>(arg);
    if (impl->open_connections.fetch_add(1, std::memory_order_relaxed) >=
        impl->options.max_connections) {
      impl->open_connections.fetch_sub(1, std::memory_order_relaxed);
      evutil_closesocket(fd);
      impl->refused.fetch_add(1, std::memory_order_relaxed);
      const int64_t now = absl::ToUnixSeconds(absl::Now());
      int64_t last = impl->last_refusal_log.load(std::memory_order_relaxed);
      if (now != last && impl->last_refusal_log.compare_exchange_strong(last, now)) {
        impl->Log(kWarning,
                  absl::StrCat("warning: too many connections (max ", impl->options.max_connections,
                               "); closing new ones (", impl->refused.load(), " so far)"));
      }
      return;
    }
    evutil_make_socket_nonblocking(fd);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));  // fails harmlessly on unix
    Worker* w = impl->workers[0].get();
    for (auto& cand : impl->workers) {
      // relaxed: a balancing hint; a stale count only skews the choice.
      if (cand->load.load(std::memory_order_relaxed) < w->load.load(std::memory_order_relaxed)) {
        w = cand.get();
      }
    }
    w->load.fetch_add(1, std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lock(w->adopt_mu);
      w->adopt.push_back(fd);
    }
    event_active(w->adopt_ev, EV_READ, 0);  // thread-safe: evthread_use_pthreads
  }

  // accept() failed for a reason that does not go away at once (out of
  // file descriptors: EMFILE/ENFILE; out of memory): libevent would call
  // accept again on every loop pass, at 100% CPU, logging each time.
  // Instead every listener pauses for 100 ms, and the error is logged at
  // most once every 10 s with how often it happened.
  static void OnAcceptError(evconnlistener*, void* arg) {
    Impl* impl = static_cast<Impl*>(arg);
    const int err = EVUTIL_SOCKET_ERROR();
    for (evconnlistener* l : impl->listeners) evconnlistener_disable(l);
    if (impl->admin_listener != nullptr) evconnlistener_disable(impl->admin_listener);
    if (impl->metrics_listener != nullptr) evconnlistener_disable(impl->metrics_listener);
    timeval tv = {0, 100000};
    event_add(impl->accept_resume, &tv);
    ++impl->accept_errors;
    const absl::Time now = absl::Now();
    if (now - impl->last_accept_error_log >= absl::Seconds(10)) {
      impl->last_accept_error_log = now;
      impl->Log(kWarning, absl::StrCat("warning: accept(): ", evutil_socket_error_to_string(err),
                                       "; new connections wait (", impl->accept_errors,
                                       " accept errors so far)"));
    }
  }

  static void OnAcceptResume(evutil_socket_t, short, void* arg) {
    Impl* impl = static_cast<Impl*>(arg);
    for (evconnlistener* l : impl->listeners) evconnlistener_enable(l);
    if (impl->admin_listener != nullptr) evconnlistener_enable(impl->admin_listener);
    if (impl->metrics_listener != nullptr) evconnlistener_enable(impl->metrics_listener);
  }

  static void OnAdopt(evutil_socket_t, short, void* arg) {
    auto* w = static_cast<Worker*>(arg);
    std::vector<int> fds;
    {
      std::lock_guard<std::mutex> lock(w->adopt_mu);
      fds.swap(w->adopt);
    }
    timeval tv = absl::ToTimeval(w->impl->options.idle_timeout);
    for (int fd : fds) {
      auto* c = new Conn{w, fd};
      c->rev = event_new(w->base, fd, EV_READ | EV_PERSIST, OnReadable, c);
      c->wev = event_new(w->base, fd, EV_WRITE, OnWritable, c);
      c->resume = event_new(w->base, -1, 0, OnResume, c);
      c->wake = std::make_shared<Wake>();
      c->wake->ev = c->resume;
      c->ready = [wake = c->wake] {
        std::lock_guard<std::mutex> lock(wake->mu);
        if (wake->ev != nullptr) event_active(wake->ev, EV_READ, 0);  // thread-safe
      };
      w->conns.insert(c);
      w->metrics.Add(w->metrics.connections);
      event_add(c->rev, &tv);
    }
  }

  static void OnLogFlush(evutil_socket_t, short, void* arg) {
    static_cast<Worker*>(arg)->log_flush_active = false;
    if (!t_log.empty()) FlushStderrLog();
  }

  static void Close(Conn* c) {
    Impl* impl = c->worker->impl;
    c->worker->conns.erase(c);
    c->worker->load.fetch_sub(1, std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lock(c->wake->mu);
      c->wake->ev = nullptr;  // a late DNS answer wakes no one
    }
    event_free(c->resume);
    event_free(c->rev);
    event_free(c->wev);
    evutil_closesocket(c->fd);
    delete c;
    impl->open_connections.fetch_sub(1, std::memory_order_relaxed);
  }

  // Sends `data` (after anything pending); returns false if the connection
  // must close.
  static bool Send(Conn* c, const char* data, size_t n) {
    if (c->pending.empty()) {
      ssize_t w = send(c->fd, data, n, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return false;
      size_t sent = w > 0 ? static_cast<size_t>(w) : 0;
      if (sent == n) return true;
      c->pending.assign(data + sent, n - sent);
      event_add(c->wev, nullptr);
      return true;
    }
    if (c->pending.size() + n > kMaxPending) return false;
    c->pending.append(data, n);
    return true;
  }

  static void OnWritable(evutil_socket_t, short, void* arg) {
    auto* c = static_cast<Conn*>(arg);
    ssize_t w = send(c->fd, c->pending.data(), c->pending.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return Close(c);
    if (w > 0) c->pending.erase(0, static_cast<size_t>(w));
    if (!c->pending.empty()) event_add(c->wev, nullptr);
  }

  // Writes a loop pass's log lines at once, after the pass.
  struct BatchLog {
    Worker* w;
    explicit BatchLog(Worker* worker) : w(worker) { t_batch_log = true; }
    ~BatchLog() {
      t_batch_log = false;
      if (!t_log.empty() && !w->log_flush_active) {
        w->log_flush_active = true;
        event_active(w->log_flush, EV_TIMEOUT, 0);
      }
    }
  };

  static void OnReadable(evutil_socket_t fd, short what, void* arg) {
    auto* c = static_cast<Conn*>(arg);
    Worker* w = c->worker;
    if (what & EV_TIMEOUT) {
      w->metrics.Add(w->metrics.idle_closed);
      return Close(c);
    }
    char buf[16384];
    ssize_t r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    BatchLog batch(w);
    if (r == 0) return Close(c);  // the client closed
    if (r < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
      return Close(c);
    }
    c->in.append(buf, static_cast<size_t>(r));
    Drain(c);
  }

  // A parked request's DNS answers came (or some did), or its budget ended.
  static void OnResume(evutil_socket_t, short, void* arg) {
    auto* c = static_cast<Conn*>(arg);
    BatchLog batch(c->worker);
    if (c->parked_until == absl::InfinitePast()) return;  // a late wake-up
    Drain(c);
  }

  // Answers the complete requests in c->in in order. A request whose DNS
  // lookups are not all answered parks the connection (reads stop, other
  // connections go on) until they are or its budget ends; then Drain goes
  // on from it. Closes the connection on a bad request.
  static void Drain(Conn* c) {
    Worker* w = c->worker;
    Impl* impl = w->impl;
    const PolicyLimits& limits = impl->options.limits;
    std::string out;
    size_t done = 0;
    bool parked = false;
    while (done < c->in.size()) {
      if (c->skipping) {
        // The rest of an over-long request: dropped up to its empty line.
        size_t i = done;
        for (; i < c->in.size(); ++i) {
          if (c->in[i] == '\n' && c->skip_newline) break;
          c->skip_newline = c->in[i] == '\n';
        }
        if (i == c->in.size()) {
          done = i;
          break;
        }
        done = i + 1;
        c->skipping = false;
        c->skip_newline = false;
        out.append(FormatPolicyReply(impl->BadRequestAction(c->skip_reason)));
        continue;
      }
      absl::string_view rest(c->in.data() + done, c->in.size() - done);
      auto end = FindPolicyRequest(rest, limits);
      if (!end.ok()) {
        // Too long: answered once its end comes; the connection stays.
        impl->Refuse(c, end.status());
        c->skipping = true;
        c->skip_newline = false;
        c->skip_reason = std::string(end.status().message());
        continue;
      }
      if (*end == 0) break;  // wait for the rest
      PolicyRequest req;
      absl::Status s = ParsePolicyRequest(rest.substr(0, *end), limits, &req);
      if (!s.ok()) {
        impl->Refuse(c, s);
        out.append(FormatPolicyReply(impl->BadRequestAction(s.message())));
        done += *end;
        continue;
      }
      SmtpEvent ev = ToSmtpEvent(req);
      ev.count = impl->options.count;
      const absl::Time now = absl::Now();
      const bool resuming = c->parked_until != absl::InfinitePast();
      if (!resuming || now < c->parked_until) {
        if (!impl->engine->Prepare(ev, now, c->ready)) {
          if (!resuming) {
            c->parked_until = now + impl->engine->dns_budget();
            w->metrics.Add(w->metrics.parked);
          }
          timeval tv = absl::ToTimeval(std::max(c->parked_until - now, absl::ZeroDuration()));
          event_add(c->resume, &tv);
          parked = true;
          break;
        }
      }
      c->parked_until = absl::InfinitePast();
      const int64_t t0 = MonotonicNs();
      impl->Serve(w, req, ev, now, &out);
      w->metrics.CountRequest(MonotonicNs() - t0);
      done += *end;
    }
    c->in.erase(0, done);
    if (parked && c->reading) {
      event_del(c->rev);  // the parked request's text must stay as it is
      c->reading = false;
    } else if (!parked && !c->reading) {
      event_del(c->resume);
      timeval tv = absl::ToTimeval(impl->options.idle_timeout);
      event_add(c->rev, &tv);
      c->reading = true;
    }
    if (!out.empty() && !Send(c, out.data(), out.size())) return Close(c);
  }

  // What a bad request is answered (options.bad_request_action and why).
  std::string BadRequestAction(absl::string_view why) const {
    return absl::StrCat(options.bad_request_action, " (", why, ")");
  }

  // Logs a bad request (its peer and why) and counts it.
  void Refuse(Conn* c, const absl::Status& s) {
    c->worker->metrics.Add(c->worker->metrics.bad_requests);
    std::string peer = "unknown";
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    if (getpeername(c->fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
      char host[INET6_ADDRSTRLEN] = "";
      if (ss.ss_family == AF_INET) {
        inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr, host, sizeof(host));
      } else if (ss.ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr, host, sizeof(host));
      } else {
        std::snprintf(host, sizeof(host), "local");
      }
      peer = host;
    }
    Log(kError, absl::StrCat("error: bad policy request from ", peer, ": ", s.message()));
  }

  void Serve(Worker* w, const PolicyRequest& req, const SmtpEvent& ev, absl::Time now,
             std::string* out) {
    Verdict v = engine->Evaluate(ev, now, /*wait_for_dns=*/false);  // Prepare said it may
    w->metrics.CountVerdict(v);
    if (!v.tripped()) {
      out->append("action=DUNNO\n\n");
      return;
    }
    out->append(FormatPolicyReply(engine->PostfixAction(v)));
    Log(v.admitted() ? kInfo : kWarning, PolicyEngine::LogLine(v, req.queue_id));
  }

  // ---- Admin socket -------------------------------------------------------

  struct AdminConn {
    Impl* impl;
    bufferevent* bev;
  };

  static void OnAdminAccept(evconnlistener*, evutil_socket_t fd, sockaddr*, int, void* arg) {
    auto* impl = static_cast<Impl*>(arg);
    bufferevent* bev = bufferevent_socket_new(impl->main_base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (bev == nullptr) {
      evutil_closesocket(fd);
      return;
    }
    auto* a = new AdminConn{impl, bev};
    bufferevent_setcb(bev, OnAdminRead, nullptr, OnAdminEvent, a);
    timeval tv = {10, 0};
    bufferevent_set_timeouts(bev, &tv, &tv);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
  }

  static void OnAdminEvent(bufferevent*, short, void* arg) {
    auto* a = static_cast<AdminConn*>(arg);
    bufferevent_free(a->bev);
    delete a;
  }

  static void OnAdminWritten(bufferevent* bev, void* arg) {
    if (evbuffer_get_length(bufferevent_get_output(bev)) == 0) OnAdminEvent(bev, 0, arg);
  }

  static void OnAdminRead(bufferevent* bev, void* arg) {
    auto* a = static_cast<AdminConn*>(arg);
    evbuffer* in = bufferevent_get_input(bev);
    size_t len = 0;
    char* line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF);
    if (line == nullptr) {
      if (evbuffer_get_length(in) > 4096) OnAdminEvent(bev, 0, arg);
      return;
    }
    Impl* impl = a->impl;
    AdminContext ctx;
    ctx.engine = impl->engine;
    ctx.config_path = impl->options.config_path;
    ctx.reload = [impl] { return impl->Reload(); };
    ctx.metrics = [impl] { return impl->Metrics(); };
    std::string reply = HandleAdminCommand(ctx, absl::string_view(line, len), absl::Now());
    std::free(line);
    bufferevent_disable(bev, EV_READ);
    bufferevent_setcb(bev, nullptr, OnAdminWritten, OnAdminEvent, a);
    bufferevent_write(bev, reply.data(), reply.size());
  }

  // ---- Main loop ----------------------------------------------------------

  absl::Status Reload() {
    if (options.config_path.empty()) {
      return absl::FailedPreconditionError("no config file: the embedded default is running");
    }
    absl::Status s;
    auto c = LoadConfigFile(options.config_path);
    if (!c.ok()) {
      s = c.status();
    } else {
      s = engine->Reload(*c, absl::Now());
    }
    if (s.ok()) {
      reloads_ok.fetch_add(1);
      config_loaded_unix.store(absl::ToUnixSeconds(absl::Now()));
      Log(kInfo, absl::StrCat("reloaded ", options.config_path));
    } else {
      reloads_failed.fetch_add(1);
      Log(kError, absl::StrCat("error: reload refused, the running config stays: ", s.message()));
    }
    return s;
  }

  static void OnSignal(evutil_socket_t sig, short, void* arg) {
    auto* impl = static_cast<Impl*>(arg);
    if (sig == SIGHUP) {
      impl->Reload().IgnoreError();
      return;
    }
    impl->Log(kInfo, absl::StrCat("stopping on signal ", static_cast<int>(sig)));
    event_base_loopexit(impl->main_base, nullptr);
  }

  static void OnMaintain(evutil_socket_t, short, void* arg) {
    auto* impl = static_cast<Impl*>(arg);
    const absl::Time now = absl::Now();
    impl->engine->Maintain(now);
    if (impl->engine->dnsbl() != nullptr && now - impl->last_health >= absl::Minutes(10)) {
      impl->StartHealthCheck();
    }
  }

  // Runs CheckHealth on its own thread (it waits for DNS up to 3 s): the
  // accepting thread never waits. One at a time.
  void StartHealthCheck() {
    if (health_running.exchange(true)) return;
    last_health = absl::Now();
    if (health_thread.joinable()) health_thread.join();  // the last one, finished
    health_thread = std::thread([this] {
      CheckHealth();
      health_running.store(false);
    });
  }

  // RFC 5782 test points of every DNS list; failing lists are suspended
  // (Dnsbl logs that through its event sink).
  void CheckHealth() {
    auto results = engine->dnsbl()->CheckHealth(absl::Now() + absl::Seconds(3));
    int ok = 0;
    for (const auto& s : results) {
      if (s.ok()) {
        ++ok;
      } else {
        Log(kWarning, absl::StrCat("warning: DNS list health check: ", s.message()));
      }
    }
    Log(kInfo, absl::StrCat("DNS list health check: ", ok, " of ", results.size(), " lists ok"));
  }

  // ---- /metrics: a minimal HTTP/1.0 responder --------------------------
  //
  // One GET (or HEAD) per connection, answered, then closed. Bounded: at
  // most kMaxMetricsConns at once (more are closed at accept), a request
  // head of 8 KiB (a line without end is cut off there: 431), 10 s per
  // read or write.

  struct MetricsConn {
    Impl* impl;
    bufferevent* bev;
  };
  static constexpr int kMaxMetricsConns = 16;
  static constexpr size_t kMaxMetricsHead = 8192;

  static void OnMetricsAccept(evconnlistener*, evutil_socket_t fd, sockaddr*, int, void* arg) {
    auto* impl = static_cast<Impl*>(arg);
    if (impl->metrics_conns.size() >= kMaxMetricsConns) {
      evutil_closesocket(fd);
      return;
    }
    bufferevent* bev = bufferevent_socket_new(impl->main_base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (bev == nullptr) {
      evutil_closesocket(fd);
      return;
    }
    auto* m = new MetricsConn{impl, bev};
    impl->metrics_conns.insert(m);
    bufferevent_setcb(bev, OnMetricsRead, nullptr, OnMetricsEvent, m);
    timeval tv = {10, 0};
    bufferevent_set_timeouts(bev, &tv, &tv);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
  }

  static void CloseMetrics(MetricsConn* m) {
    m->impl->metrics_conns.erase(m);
    bufferevent_free(m->bev);
    delete m;
  }

  static void OnMetricsEvent(bufferevent*, short, void* arg) {
    CloseMetrics(static_cast<MetricsConn*>(arg));
  }

  static void OnMetricsWritten(bufferevent* bev, void* arg) {
    if (evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
      CloseMetrics(static_cast<MetricsConn*>(arg));
    }
  }

  static void MetricsReply(MetricsConn* m, int code, absl::string_view reason,
                           const std::string& body, bool head_only) {
    bufferevent_disable(m->bev, EV_READ);
    const std::string head = absl::StrCat(
        "HTTP/1.0 ", code, " ", reason, "\r\nContent-Type: text/plain; version=0.0.4\r\n",
        "Content-Length: ", body.size(), "\r\nConnection: close\r\n\r\n");
    bufferevent_setcb(m->bev, nullptr, OnMetricsWritten, OnMetricsEvent, m);
    bufferevent_write(m->bev, head.data(), head.size());
    if (!head_only) bufferevent_write(m->bev, body.data(), body.size());
  }

  static void OnMetricsRead(bufferevent* bev, void* arg) {
    auto* m = static_cast<MetricsConn*>(arg);
    evbuffer* in = bufferevent_get_input(bev);
    const evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, nullptr);
    if (end.pos < 0) {
      if (evbuffer_get_length(in) > kMaxMetricsHead) {
        MetricsReply(m, 431, "Request Header Fields Too Large", "", false);
      }
      return;
    }
    if (static_cast<size_t>(end.pos) > kMaxMetricsHead) {
      MetricsReply(m, 431, "Request Header Fields Too Large", "", false);
      return;
    }
    size_t len = 0;
    char* line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF);
    const std::string first = line != nullptr ? std::string(line, len) : "";
    std::free(line);
    const std::vector<std::string> w = absl::StrSplit(first, ' ');
    if (w.size() != 3 || (w[0] != "GET" && w[0] != "HEAD")) {
      MetricsReply(m, 405, "Method Not Allowed", "GET /metrics\n", false);
    } else if (w[1] != "/metrics") {
      MetricsReply(m, 404, "Not Found", "GET /metrics\n", false);
    } else {
      MetricsReply(m, 200, "OK", m->impl->Metrics(), w[0] == "HEAD");
    }
  }

  std::string Metrics() {
    std::vector<const WorkerMetrics*> per_worker;
    for (auto& w : workers) per_worker.push_back(&w->metrics);
    ServerGauges g;
    g.open_connections = open_connections.load();
    g.refused = refused.load();
    g.reloads_ok = reloads_ok.load();
    g.reloads_failed = reloads_failed.load();
    std::string text = sluice::MetricsText(per_worker, g, *engine);
    if (options.extra_metrics) text += options.extra_metrics();
    return text;
  }
};

absl::StatusOr<std::unique_ptr<PolicyServer>> PolicyServer::Create(PolicyEngine* engine,
                                                                   Options options) {
  static std::once_flag threads_once;
  std::call_once(threads_once, [] { evthread_use_pthreads(); });
  std::unique_ptr<PolicyServer> s(new PolicyServer);
  s->impl_ = std::make_unique<Impl>();
  Impl& impl = *s->impl_;
  impl.engine = engine;
  impl.options = std::move(options);
  if (impl.options.threads <= 0) {
    impl.options.threads = static_cast<int>(std::thread::hardware_concurrency());
    if (impl.options.threads <= 0) impl.options.threads = 1;
  }
  if (impl.options.listen.empty() && !impl.options.no_listeners) {
    return absl::InvalidArgumentError("nothing to listen on (--listen inet:HOST:PORT|unix:PATH)");
  }
  gid_t gid = static_cast<gid_t>(-1);
  if (!impl.options.socket_group.empty()) {
    group gr;
    group* found = nullptr;
    char buf[4096];
    if (getgrnam_r(impl.options.socket_group.c_str(), &gr, buf, sizeof(buf), &found) != 0 ||
        found == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown socket group \"", impl.options.socket_group, "\""));
    }
    gid = found->gr_gid;
  }
  for (const std::string& spec : impl.options.listen) {
    auto fd = Listen(spec, impl.options.socket_mode, gid, &impl.owned_sockets);
    if (!fd.ok()) return fd.status();
    impl.fds.push_back(*fd);
  }
  impl.main_base = event_base_new();
  if (impl.main_base == nullptr) return absl::InternalError("event_base_new failed");
  for (int i = 0; i < impl.options.threads; ++i) {
    auto w = std::make_unique<Impl::Worker>();
    w->impl = &impl;
    w->base = event_base_new();
    if (w->base == nullptr) return absl::InternalError("event_base_new failed");
    // Priorities: 0 unused, 1 (the default) connections, 2 the log flush.
    event_base_priority_init(w->base, 3);
    w->log_flush = event_new(w->base, -1, 0, Impl::OnLogFlush, w.get());
    event_priority_set(w->log_flush, 2);
    w->adopt_ev = event_new(w->base, -1, 0, Impl::OnAdopt, w.get());
    impl.workers.push_back(std::move(w));
  }
  impl.accept_resume = event_new(impl.main_base, -1, 0, Impl::OnAcceptResume, &impl);
  impl.main_events.push_back(impl.accept_resume);
  for (int fd : impl.fds) {
    evconnlistener* l =
        evconnlistener_new(impl.main_base, Impl::OnAccept, &impl, LEV_OPT_CLOSE_ON_EXEC, -1, fd);
    if (l == nullptr) return absl::InternalError("evconnlistener_new failed");
    evconnlistener_set_error_cb(l, Impl::OnAcceptError);
    impl.listeners.push_back(l);
  }
  if (!impl.options.admin_socket.empty()) {
    auto fd = Listen("unix:" + impl.options.admin_socket, 0600, static_cast<gid_t>(-1),
                     &impl.owned_sockets);
    if (!fd.ok()) return fd.status();
    impl.admin_fd = *fd;
    impl.admin_listener = evconnlistener_new(impl.main_base, Impl::OnAdminAccept, &impl,
                                             LEV_OPT_CLOSE_ON_EXEC, -1, impl.admin_fd);
    if (impl.admin_listener == nullptr) return absl::InternalError("admin listener failed");
    evconnlistener_set_error_cb(impl.admin_listener, Impl::OnAcceptError);
  }
  if (!impl.options.metrics.empty()) {
    size_t colon = impl.options.metrics.rfind(':');
    int port = -1;
    if (colon == std::string::npos ||
        !absl::SimpleAtoi(impl.options.metrics.substr(colon + 1), &port)) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad metrics address \"", impl.options.metrics, "\" (HOST:PORT)"));
    }
    // Our own listener: out of descriptors it pauses like the others
    // (OnAcceptError), and connections are capped.
    auto mfd = Listen(absl::StrCat("inet:", impl.options.metrics), 0, static_cast<gid_t>(-1),
                      &impl.owned_sockets);
    if (!mfd.ok()) {
      return absl::InternalError(
          absl::StrCat("cannot listen on ", impl.options.metrics, ": ", mfd.status().message()));
    }
    impl.metrics_port = BoundPort(*mfd);
    impl.metrics_listener =
        evconnlistener_new(impl.main_base, Impl::OnMetricsAccept, &impl,
                           LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_CLOSE_ON_FREE, -1, *mfd);
    if (impl.metrics_listener == nullptr) return absl::InternalError("metrics listener failed");
    evconnlistener_set_error_cb(impl.metrics_listener, Impl::OnAcceptError);
  }
  if (impl.options.handle_signals) {
    for (int sig : {SIGHUP, SIGTERM, SIGINT}) {
      event* ev = evsignal_new(impl.main_base, sig, Impl::OnSignal, &impl);
      evsignal_add(ev, nullptr);
      impl.main_events.push_back(ev);
    }
    std::signal(SIGPIPE, SIG_IGN);
  }
  if (engine->dnsbl() != nullptr) {
    Impl* ip = &impl;
    engine->dnsbl()->AddEventSink([ip](const Dnsbl::Event& e) {
      ip->Log(kWarning, absl::StrCat("warning: DNS list ", e.zone, " ", e.what));
    });
  }
  event* tick = event_new(impl.main_base, -1, EV_PERSIST, Impl::OnMaintain, &impl);
  timeval tv = absl::ToTimeval(impl.options.maintain_every);
  event_add(tick, &tv);
  impl.main_events.push_back(tick);
  return s;
}

PolicyServer::~PolicyServer() {
  if (impl_ == nullptr) return;
  Impl& impl = *impl_;
  for (auto& w : impl.workers) {
    for (void* c : std::vector<void*>(w->conns.begin(), w->conns.end())) {
      Impl::Close(static_cast<Impl::Conn*>(c));
    }
    for (int fd : w->adopt) evutil_closesocket(fd);
    if (w->log_flush != nullptr) event_free(w->log_flush);
    if (w->adopt_ev != nullptr) event_free(w->adopt_ev);
    if (w->base != nullptr) event_base_free(w->base);
  }
  for (auto* l : impl.listeners) evconnlistener_free(l);
  for (event* ev : impl.main_events) event_free(ev);
  if (impl.admin_listener != nullptr) evconnlistener_free(impl.admin_listener);
  for (auto* m :
       std::vector<Impl::MetricsConn*>(impl.metrics_conns.begin(), impl.metrics_conns.end())) {
    Impl::CloseMetrics(m);
  }
  if (impl.metrics_listener != nullptr) evconnlistener_free(impl.metrics_listener);
  if (impl.main_base != nullptr) event_base_free(impl.main_base);
  for (int fd : impl.fds) close(fd);
  if (impl.admin_fd >= 0) close(impl.admin_fd);
  for (const OwnedSocket& o : impl.owned_sockets) {  // only what this instance bound
    unlink(o.path.c_str());
    close(o.lock_fd);
  }
}

int PolicyServer::port(size_t i) const {
  return i < impl_->fds.size() ? BoundPort(impl_->fds[i]) : -1;
}

int PolicyServer::metrics_port() const { return impl_->metrics_port; }

void PolicyServer::Run() {
  Impl& impl = *impl_;
  impl.Log(kInfo, absl::StrCat("serving on ", impl.options.listen.size(), " socket(s) with ",
                               impl.workers.size(), " worker thread(s)"));
  if (engine_has_lists()) impl.StartHealthCheck();  // at start, then every 10 minutes
  for (auto& w : impl.workers) {
    w->thread = std::thread([b = w->base] {
      event_base_loop(b, EVLOOP_NO_EXIT_ON_EMPTY);
      if (!t_log.empty()) FlushStderrLog();  // lines of the last pass
    });
  }
  event_base_loop(impl.main_base, EVLOOP_NO_EXIT_ON_EMPTY);
  for (auto& w : impl.workers) event_base_loopexit(w->base, nullptr);
  for (auto& w : impl.workers) w->thread.join();
  if (impl.health_thread.joinable()) impl.health_thread.join();
}

void PolicyServer::Stop() { event_base_loopexit(impl_->main_base, nullptr); }

bool PolicyServer::engine_has_lists() const { return impl_->engine->dnsbl() != nullptr; }

absl::Status PolicyServer::Reload() { return impl_->Reload(); }

std::string PolicyServer::MetricsText() const { return impl_->Metrics(); }

}  // namespace sluice
