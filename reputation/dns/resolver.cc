#include "reputation/dns/resolver.h"

#include <ares.h>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"

namespace sluice {

namespace {

std::once_flag g_ares_init;

struct QueryContext {
  DnsResolver::Callback cb;
};

void OnAnswer(void* arg, int status, int /*timeouts*/, unsigned char* abuf, int alen) {
  std::unique_ptr<QueryContext> q(static_cast<QueryContext*>(arg));
  DnsAnswer answer;
  absl::Status s;
  if (abuf != nullptr && alen > 0 &&
      (status == ARES_SUCCESS || status == ARES_ENOTFOUND || status == ARES_ENODATA)) {
    s = ParseDnsAnswer(
        absl::string_view(reinterpret_cast<const char*>(abuf), static_cast<size_t>(alen)), &answer);
    if (!s.ok()) s = absl::DataLossError(s.message());
  } else if (status == ARES_ETIMEOUT) {
    s = absl::DeadlineExceededError("DNS timeout");
  } else if (status == ARES_ECANCELLED || status == ARES_EDESTRUCTION) {
    s = absl::CancelledError("DNS query cancelled");
  } else {
    s = absl::UnavailableError(absl::StrCat("DNS error: ", ares_strerror(status)));
  }
  q->cb(s, answer);
}

}  // namespace

absl::StatusOr<std::unique_ptr<AresResolver>> AresResolver::Create(const Options& options) {
  std::call_once(g_ares_init, [] { ares_library_init(ARES_LIB_INIT_ALL); });
  std::unique_ptr<AresResolver> r(new AresResolver);
  r->options_ = options;
  ares_options o{};
  o.timeout = static_cast<int>(absl::ToInt64Milliseconds(options.timeout));
  o.tries = options.tries;
  int mask = ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
  ares_channel ch;
  if (int rc = ares_init_options(&ch, &o, mask); rc != ARES_SUCCESS) {
    return absl::InternalError(absl::StrCat("c-ares init: ", ares_strerror(rc)));
  }
  r->channel_ = ch;
  if (!options.server.empty()) {
    std::string csv = options.server.find(':') != std::string::npos
                          ? absl::StrCat("[", options.server, "]:", options.port)
                          : absl::StrCat(options.server, ":", options.port);
    if (int rc = ares_set_servers_ports_csv(ch, csv.c_str()); rc != ARES_SUCCESS) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad nameserver ", csv, ": ", ares_strerror(rc)));
    }
  }
  if (pipe2(r->wake_, O_CLOEXEC | O_NONBLOCK) != 0) return absl::InternalError("pipe failed");
  return r;
}

AresResolver::~AresResolver() {
  stop_.store(true);
  if (wake_[1] >= 0) (void)!write(wake_[1], "x", 1);
  if (thread_.joinable()) thread_.join();
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& p : queue_) p.cb(absl::CancelledError("resolver stopped"), DnsAnswer());
    queue_.clear();
    if (channel_ != nullptr) ares_destroy(channel_);  // runs pending callbacks (cancelled)
    channel_ = nullptr;
  }
  for (int fd : wake_) {
    if (fd >= 0) close(fd);
  }
}

void AresResolver::Query(const std::string& name, Type type, Callback cb) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(Pending{name, type, std::move(cb)});
  }
  (void)!write(wake_[1], "x", 1);  // the driving thread submits it
}

void AresResolver::Submit() {
  std::vector<Pending> q;
  q.swap(queue_);
  for (auto& p : q) {
    sent_.fetch_add(1, std::memory_order_relaxed);
    ares_query(channel_, p.name.c_str(), 1 /* class IN */, static_cast<int>(p.type), OnAnswer,
               new QueryContext{std::move(p.cb)});
  }
}

std::vector<AresResolver::Socket> AresResolver::Sockets() {
  std::vector<Socket> out;
  out.push_back(Socket{wake_[0], true, false});
  std::lock_guard<std::mutex> lock(mu_);
  ares_socket_t socks[ARES_GETSOCK_MAXNUM];
  int bits = ares_getsock(channel_, socks, ARES_GETSOCK_MAXNUM);
  for (int i = 0; i < ARES_GETSOCK_MAXNUM; ++i) {
    bool r = ARES_GETSOCK_READABLE(bits, i), w = ARES_GETSOCK_WRITABLE(bits, i);
    if (r || w) out.push_back(Socket{socks[i], r, w});
  }
  return out;
}

absl::Duration AresResolver::Timeout(absl::Duration max) {
  std::lock_guard<std::mutex> lock(mu_);
  timeval maxtv = absl::ToTimeval(max), tv;
  timeval* t = ares_timeout(channel_, &maxtv, &tv);
  return absl::DurationFromTimeval(*t);
}

void AresResolver::Process(int read_fd, int write_fd) {
  if (read_fd == wake_[0]) {
    char buf[256];
    while (read(wake_[0], buf, sizeof(buf)) > 0) {
    }
    read_fd = ARES_SOCKET_BAD;
  }
  std::lock_guard<std::mutex> lock(mu_);
  Submit();
  ares_process_fd(channel_, read_fd < 0 ? ARES_SOCKET_BAD : read_fd,
                  write_fd < 0 ? ARES_SOCKET_BAD : write_fd);
}

void AresResolver::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void AresResolver::Loop() {
  while (!stop_.load()) {
    std::vector<Socket> socks = Sockets();
    std::vector<pollfd> fds;
    for (const auto& s : socks) {
      fds.push_back(
          pollfd{s.fd, static_cast<short>((s.read ? POLLIN : 0) | (s.write ? POLLOUT : 0)), 0});
    }
    int ms = static_cast<int>(absl::ToInt64Milliseconds(Timeout(absl::Milliseconds(100)))) + 1;
    int n = poll(fds.data(), fds.size(), ms);
    if (n <= 0) {
      Process(-1, -1);  // timeouts (and queued queries)
      continue;
    }
    for (const auto& p : fds) {
      if (p.revents == 0) continue;
      Process((p.revents & (POLLIN | POLLERR | POLLHUP)) ? p.fd : -1,
              (p.revents & POLLOUT) ? p.fd : -1);
    }
  }
}

}  // namespace sluice
