#include "bindings/notify/notifier.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "bindings/engine/notice_record.h"
#include "ratelimit/config.h"
#include "ratelimit/report.h"
#include "ratelimit/types.h"

namespace sluice {
namespace {

constexpr size_t kDigestLines = 200;  // lines listed per mail; the rest counted
constexpr size_t kMaxInput = 60000;   // bytes a child gets on stdin (below a pipe's buffer)

}  // namespace

std::string NoticeJson(const Notice& n, absl::string_view host) {
  return ToJson(NoticeRecordOf(n, host));
}

std::string ContactFor(const config::Config& c, Level level, absl::string_view entity) {
  std::string name = absl::AsciiStrToLower(entity);
  std::string level_name(LevelName(level));
  for (int hops = 0; hops < 8 && !name.empty(); ++hops) {
    const config::Entity* found = nullptr;
    for (const auto& e : c.entity()) {
      if (absl::AsciiStrToLower(e.name()) == name &&
          (level_name.empty() || e.level() == level_name)) {
        found = &e;
        break;
      }
    }
    if (found == nullptr) {
      // An unlisted mailbox: its domain may be listed.
      if (level_name == "mailbox" && name.find('@') != std::string::npos) {
        name = name.substr(name.rfind('@') + 1);
        level_name = "domain";
        continue;
      }
      return "";
    }
    if (!found->contact().empty()) return found->contact();
    name = absl::AsciiStrToLower(found->parent());
    level_name.clear();  // a parent is named without its level
  }
  return "";
}

Notifier::Options Notifier::FromConfig(const config::Config& c) {
  const config::Notify& n = c.notify();
  Options o;
  o.events_file = n.events_file();
  o.exec.assign(n.exec().begin(), n.exec().end());
  o.max_exec = static_cast<int>(std::max<uint32_t>(1, n.max_exec()));
  o.exec_timeout = DurationOr(n.exec_timeout(), absl::Seconds(10));
  o.mail_to.assign(n.mail_to().begin(), n.mail_to().end());
  o.mail_from = n.mail_from();
  if (!n.mail_command().empty()) {
    o.mail_command = absl::StrSplit(n.mail_command(), ' ', absl::SkipEmpty());
  }
  o.digest = DurationOr(n.digest(), absl::Minutes(5));
  return o;
}

bool Notifier::Wanted(const config::Config& c) {
  const config::Notify& n = c.notify();
  if (!n.events_file().empty() || n.exec_size() > 0 || n.mail_to_size() > 0) return true;
  for (const auto& e : c.entity()) {
    if (!e.contact().empty()) return true;
  }
  return false;
}

absl::StatusOr<std::unique_ptr<Notifier>> Notifier::Create(Options options) {
  if (options.host.empty()) options.host = HostName();
  if (options.mail_from.empty()) options.mail_from = absl::StrCat("sluice@", options.host);
  std::unique_ptr<Notifier> n(new Notifier(std::move(options)));
  if (!n->options_.events_file.empty()) {
    n->events_fd_ = open(n->options_.events_file.c_str(),
                         O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
    if (n->events_fd_ < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "notify: cannot open ", n->options_.events_file, ": ", std::strerror(errno)));
    }
  }
  n->thread_ = std::thread([p = n.get()] { p->Loop(); });
  return n;
}

Notifier::Notifier(Options options) : options_(std::move(options)) {}

Notifier::~Notifier() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (events_fd_ >= 0) close(events_fd_);
}

void Notifier::Post(const Notice& n) {
  posted_.fetch_add(1, std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (queue_.size() >= options_.max_queue) {
      queue_.pop_front();
      dropped_.fetch_add(1, std::memory_order_relaxed);
    }
    queue_.push_back(n);
  }
  cv_.notify_one();
}

void Notifier::Flush() {
  std::unique_lock<std::mutex> lock(mu_);
  flush_ = true;
  cv_.notify_all();
  // Bounded: the thread clears the flag once the queue is handled.
  cv_.wait_for(lock, std::chrono::seconds(10), [this] { return !flush_; });
}

void Notifier::Log(const std::string& line) {
  if (options_.log) options_.log(line);
}

void Notifier::Loop() {
  // A child that exits before reading its input must not kill the process
  // with SIGPIPE: blocked on this thread, the write fails with EPIPE.
  sigset_t pipe_set;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, nullptr);
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait_for(lock, std::chrono::milliseconds(200),
                 [this] { return stop_ || flush_ || !queue_.empty(); });
    std::deque<Notice> batch;
    batch.swap(queue_);
    const bool stop = stop_, flush = flush_;
    lock.unlock();
    for (const Notice& n : batch) Handle(n);
    SendDue(/*all=*/stop || flush);
    Reap(/*wait_all=*/stop);
    lock.lock();
    if (flush) {
      flush_ = false;
      cv_.notify_all();
    }
    if (stop) return;
  }
}

void Notifier::Handle(const Notice& n) {
  const std::string json = NoticeJson(n, options_.host);
  if (events_fd_ >= 0) {
    const std::string line = json + "\n";
    if (write(events_fd_, line.data(), line.size()) == static_cast<ssize_t>(line.size())) {
      written_.fetch_add(1, std::memory_order_relaxed);
    } else {
      Log(absl::StrCat("notify: cannot write ", options_.events_file, ": ", std::strerror(errno)));
    }
  }
  if (!options_.exec.empty()) {
    Reap(false);
    int running = 0;
    for (const Child& c : children_) running += c.mail ? 0 : 1;
    if (running >= options_.max_exec) {
      hooks_dropped_.fetch_add(1, std::memory_order_relaxed);
    } else if (Spawn(options_.exec, json + "\n", /*mail=*/false)) {
      hooks_run_.fetch_add(1, std::memory_order_relaxed);
    } else {
      hooks_failed_.fetch_add(1, std::memory_order_relaxed);
      Log(absl::StrCat("notify: cannot run ", options_.exec[0], ": ", std::strerror(errno)));
    }
  }
  std::vector<std::string> to = options_.mail_to;
  if (options_.contact) {
    std::string c = options_.contact(n);
    if (!c.empty() && std::find(to.begin(), to.end(), c) == to.end()) to.push_back(std::move(c));
  }
  const std::string line = absl::StrCat(
      absl::FormatTime("%Y-%m-%d %H:%M:%S", n.time, absl::UTCTimeZone()), "  ", CleanText(n.text));
  for (const std::string& rcpt : to) {
    Digest& d = digests_[rcpt];
    if (d.lines.size() < kDigestLines) {
      d.lines.push_back(line);
    } else {
      ++d.more;
    }
  }
}

void Notifier::SendDue(bool all) {
  const absl::Time now = absl::Now();
  for (auto& [rcpt, d] : digests_) {
    if (d.lines.empty()) continue;
    // One mail per recipient per period: the first at once, the rest
    // gathered until the period since the last one has passed.
    if (!all && now < d.due) continue;
    std::string body = absl::StrCat("sluice on ", options_.host,
                                    " saw these trips (one per entity, rule and window; times "
                                    "UTC):\n\n",
                                    absl::StrJoin(d.lines, "\n"), "\n");
    if (d.more > 0) absl::StrAppend(&body, "\n... and ", d.more, " more.\n");
    const size_t n = d.lines.size() + d.more;
    std::string mail = absl::StrCat(
        "From: sluice <", options_.mail_from, ">\nTo: <", rcpt, ">\nSubject: sluice on ",
        options_.host, ": ", n, n == 1 ? " trip" : " trips",
        "\nDate: ", absl::FormatTime("%a, %d %b %Y %H:%M:%S +0000", now, absl::UTCTimeZone()),
        "\nAuto-Submitted: auto-generated\nMIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n",
        body);
    if (!Spawn(options_.mail_command, mail, /*mail=*/true)) {
      mails_failed_.fetch_add(1, std::memory_order_relaxed);
      Log(absl::StrCat("notify: cannot run ", options_.mail_command[0], ": ",
                       std::strerror(errno)));
    }
    d.lines.clear();
    d.more = 0;
    d.due = now + options_.digest;
  }
}

bool Notifier::Spawn(const std::vector<std::string>& argv, const std::string& input, bool mail) {
  if (argv.empty()) return false;
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return false;
  const pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return false;
  }
  if (pid == 0) {  // only async-signal-safe calls until exec
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);  // the hook gets default signals
    dup2(fds[0], STDIN_FILENO);
    const int null = open("/dev/null", O_WRONLY);
    if (null >= 0) {
      dup2(null, STDOUT_FILENO);
      dup2(null, STDERR_FILENO);
    }
    execv(args[0], args.data());
    _exit(127);
  }
  close(fds[0]);
  // The input fits the pipe's buffer: the write never waits for the child.
  const size_t n = std::min(input.size(), kMaxInput);
  fcntl(fds[1], F_SETFL, O_NONBLOCK);
  if (write(fds[1], input.data(), n) != static_cast<ssize_t>(n)) {
    Log(absl::StrCat("notify: ", argv[0], " did not take its input"));
  }
  close(fds[1]);
  children_.push_back(
      Child{pid, absl::Now() + (mail ? absl::Seconds(60) : options_.exec_timeout), mail});
  return true;
}

void Notifier::Reap(bool wait_all) {
  const absl::Time give_up = absl::Now() + absl::Seconds(5);
  for (;;) {
    const absl::Time now = absl::Now();
    for (auto it = children_.begin(); it != children_.end();) {
      int status = 0;
      pid_t r = waitpid(it->pid, &status, WNOHANG);
      bool killed = false;
      if (r == 0 && (now > it->deadline || (wait_all && now > give_up))) {
        kill(it->pid, SIGKILL);
        r = waitpid(it->pid, &status, 0);
        killed = true;
      }
      if (r == 0) {
        ++it;
        continue;
      }
      const bool ok = !killed && r == it->pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
      if (it->mail) {
        (ok ? mails_sent_ : mails_failed_).fetch_add(1, std::memory_order_relaxed);
      } else if (!ok) {
        hooks_failed_.fetch_add(1, std::memory_order_relaxed);
      }
      if (!ok) {
        Log(absl::StrCat("notify: ", it->mail ? "mail command" : "hook", " ",
                         killed ? "killed at its timeout"
                                : absl::StrCat("exited with status ",
                                               WIFEXITED(status) ? WEXITSTATUS(status) : -1)));
      }
      it = children_.erase(it);
    }
    if (!wait_all || children_.empty()) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

Notifier::Stats Notifier::stats() const {
  Stats s;
  s.posted = posted_.load(std::memory_order_relaxed);
  s.dropped = dropped_.load(std::memory_order_relaxed);
  s.written = written_.load(std::memory_order_relaxed);
  s.hooks_run = hooks_run_.load(std::memory_order_relaxed);
  s.hooks_failed = hooks_failed_.load(std::memory_order_relaxed);
  s.hooks_dropped = hooks_dropped_.load(std::memory_order_relaxed);
  s.mails_sent = mails_sent_.load(std::memory_order_relaxed);
  s.mails_failed = mails_failed_.load(std::memory_order_relaxed);
  return s;
}

std::string Notifier::MetricsText() const {
  const Stats s = stats();
  std::string o = "# TYPE sluice_notify_total counter\n";
  const std::pair<const char*, uint64_t> rows[] = {{"posted", s.posted},
                                                   {"dropped", s.dropped},
                                                   {"written", s.written},
                                                   {"hook_run", s.hooks_run},
                                                   {"hook_failed", s.hooks_failed},
                                                   {"hook_dropped", s.hooks_dropped},
                                                   {"mail_sent", s.mails_sent},
                                                   {"mail_failed", s.mails_failed}};
  for (const auto& [what, n] : rows) {
    absl::StrAppend(&o, "sluice_notify_total{what=\"", what, "\"} ", n, "\n");
  }
  return o;
}

}  // namespace sluice
