// Real redis-server instances for tests and benchmarks: a single server or
// a Cluster, on 127.0.0.1 free ports, in a private folder, stopped by PID.
//
// Thread safety: an object is for one thread.
#ifndef SLUICE_TESTS_TESTING_REDIS_H_
#define SLUICE_TESTS_TESTING_REDIS_H_

#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tests/testing/net.h"

namespace sluice {
namespace testing {

// Whether 127.0.0.1:port can be bound (TCP) now.
inline bool PortFree(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = fd >= 0 && bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0;
  if (fd >= 0) close(fd);
  return ok;
}

class RedisServer {
 public:
  // Starts redis-server on a free port (cluster mode: a node of a Cluster
  // that Cluster() below forms). Returns false if it did not answer PING
  // within 5 s.
  bool Start(const std::string& dir, bool cluster = false, const std::string& password = "") {
    dir_ = dir;
    // A Cluster node also listens on port + 10000 (its bus).
    for (int i = 0; i < 50; ++i) {
      port_ = FreePort();
      if (!cluster || (port_ > 0 && port_ + 10000 <= 65535 && PortFree(port_ + 10000))) break;
      port_ = 0;
    }
    if (port_ == 0) return false;
    cluster_ = cluster;
    password_ = password;
    return Restart();
  }
  // Starts it again on the same port (after Stop or Kill).
  bool Restart() {
    const std::string port = std::to_string(port_);
    const std::string conf = absl::StrCat(dir_, "/nodes-", port_, ".conf");
    pid_ = fork();
    if (pid_ == 0) {
      std::vector<std::string> args = {"redis-server",
                                       "--port",
                                       port,
                                       "--bind",
                                       "127.0.0.1",
                                       "--save",
                                       "",
                                       "--appendonly",
                                       "no",
                                       "--dir",
                                       dir_,
                                       "--daemonize",
                                       "no",
                                       "--loglevel",
                                       "warning",
                                       "--logfile",
                                       absl::StrCat(dir_, "/redis-", port_, ".log")};
      if (cluster_) {
        for (const char* a : {"--cluster-enabled", "yes", "--cluster-node-timeout", "1000",
                              "--cluster-config-file"}) {
          args.push_back(a);
        }
        args.push_back(conf);
      }
      for (const auto& a : extra_args_) args.push_back(a);
      if (!password_.empty()) {
        args.push_back("--requirepass");
        args.push_back(password_);
        args.push_back("--masterauth");
        args.push_back(password_);
      }
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execvp("redis-server", argv.data());
      _exit(127);
    }
    for (int i = 0; i < 250; ++i) {
      if (Ping()) return true;
      if (!ChildRunning(pid_)) return false;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return false;
  }
  bool Ping() const {
    redisContext* c = Connect();
    if (c == nullptr) return false;
    auto* r = static_cast<redisReply*>(redisCommand(c, "PING"));
    const bool ok = r != nullptr && r->type == REDIS_REPLY_STATUS;
    if (r != nullptr) freeReplyObject(r);
    redisFree(c);
    return ok;
  }
  // A connection (AUTH done), or null.
  redisContext* Connect() const {
    timeval tv{1, 0};
    redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, tv);
    if (c == nullptr || c->err != 0) {
      if (c != nullptr) redisFree(c);
      return nullptr;
    }
    redisSetTimeout(c, tv);
    if (!password_.empty()) {
      auto* r = static_cast<redisReply*>(redisCommand(c, "AUTH %s", password_.c_str()));
      if (r != nullptr) freeReplyObject(r);
    }
    return c;
  }
  // The reply of one command as text (integers in decimal, arrays joined
  // with spaces), or "(error) ..." / "(none)".
  std::string Command(const std::vector<std::string>& args) const {
    redisContext* c = Connect();
    if (c == nullptr) return "(none)";
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    auto* r = static_cast<redisReply*>(
        redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()));
    std::string out = Text(r);
    if (r != nullptr) freeReplyObject(r);
    redisFree(c);
    return out;
  }
  void Stop() {
    StopChild(pid_);
    pid_ = -1;
  }
  void Kill() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    pid_ = -1;
  }
  ~RedisServer() { Stop(); }
  int port() const { return port_; }
  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }
  bool running() const { return pid_ > 0; }
  // More redis-server arguments for the next Start or Restart.
  void set_extra_args(std::vector<std::string> args) { extra_args_ = std::move(args); }

 private:
  static std::string Text(const redisReply* r) {
    if (r == nullptr) return "(none)";
    switch (r->type) {
      case REDIS_REPLY_INTEGER:
        return std::to_string(r->integer);
      case REDIS_REPLY_ERROR:
        return absl::StrCat("(error) ", std::string(r->str, r->len));
      case REDIS_REPLY_NIL:
        return "(nil)";
      case REDIS_REPLY_ARRAY: {
        std::string s;
        for (size_t i = 0; i < r->elements; ++i) {
          if (i > 0) s += ' ';
          s += Text(r->element[i]);
        }
        return s;
      }
      default:
        return std::string(r->str, r->len);
    }
  }
  std::string dir_;
  std::string password_;
  std::vector<std::string> extra_args_;
  int port_ = 0;
  bool cluster_ = false;
  pid_t pid_ = -1;
};

// A private folder under /tmp (removed by the caller's ~TempDir).
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/sluice-redis.XXXXXX";
    if (mkdtemp(tmpl) != nullptr) path_ = tmpl;
  }
  ~TempDir() {
    if (!path_.empty()) system(("rm -rf '" + path_ + "'").c_str());
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Forms a Cluster of started cluster-mode servers with redis-cli (replicas
// per master as given) and waits (bounded, 20 s) until it is ok. Returns
// false if it did not form.
inline bool FormCluster(const std::vector<RedisServer*>& nodes, int replicas,
                        const std::string& password = "") {
  std::string cmd = "redis-cli";
  if (!password.empty()) cmd += " -a '" + password + "' --no-auth-warning";
  cmd += " --cluster create";
  for (const RedisServer* n : nodes) cmd += " " + n->address();
  cmd += " --cluster-replicas " + std::to_string(replicas) + " --cluster-yes >/dev/null 2>&1";
  if (system(cmd.c_str()) != 0) return false;
  for (int i = 0; i < 200; ++i) {
    bool ok = true;
    for (const RedisServer* n : nodes) {
      if (n->Command({"CLUSTER", "INFO"}).find("cluster_state:ok") == std::string::npos) ok = false;
    }
    if (ok) return true;
    absl::SleepFor(absl::Milliseconds(100));
  }
  return false;
}

}  // namespace testing
}  // namespace sluice

#endif  // SLUICE_TESTS_TESTING_REDIS_H_
