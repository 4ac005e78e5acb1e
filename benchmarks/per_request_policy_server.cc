// The per-request design users run today for limits shared by many hosts
// (rspamd's ratelimit, envoyproxy/ratelimit): every message asks Redis,
// one script call per level (server, domain, mailbox), each a sliding
// window of two fixed buckets checked and incremented on its own (no
// all-or-nothing across levels). Calls of one message are pipelined (one
// round trip; kinder to it than sequential calls). A thread per
// connection, each with its own Redis connection. Speaks the Postfix
// policy protocol: action=DUNNO when every level had room, else
// action=DEFER_IF_PERMIT. Benchmarks only (benchmarks/cluster_bench.sh).
//   per_request_policy_server PORT REDIS_PORT MAILBOX_LIMIT [WINDOW_S]
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <thread>

namespace {

constexpr char kScript[] = R"lua(
local now, win, lim = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local cur = math.floor(now / win)
local v = redis.call('HMGET', KEYS[1], 'b' .. cur, 'b' .. (cur - 1))
local c, p = tonumber(v[1] or '0'), tonumber(v[2] or '0')
local used = c + p * (1 - (now - cur * win) / win)
if used + 1 > lim then return 0 end
redis.call('HINCRBY', KEYS[1], 'b' .. cur, 1)
redis.call('EXPIRE', KEYS[1], 2 * win)
return 1
)lua";

int g_redis_port = 0;
long g_limit = 0;
long g_window = 3600;

void Serve(int fd) {
  redisContext* r = redisConnect("127.0.0.1", g_redis_port);
  if (r == nullptr || r->err != 0) {
    close(fd);
    return;
  }
  auto* loaded = static_cast<redisReply*>(redisCommand(r, "SCRIPT LOAD %s", kScript));
  const std::string sha = loaded != nullptr && loaded->str != nullptr ? loaded->str : "";
  if (loaded != nullptr) freeReplyObject(loaded);
  std::string in;
  char buf[8192];
  for (;;) {
    size_t end;
    while ((end = in.find("\n\n")) == std::string::npos) {
      ssize_t n = read(fd, buf, sizeof(buf));
      if (n <= 0) {
        redisFree(r);
        close(fd);
        return;
      }
      in.append(buf, static_cast<size_t>(n));
    }
    std::string req = in.substr(0, end + 1);
    in.erase(0, end + 2);
    std::string sender;
    const size_t s = req.find("\nsender=");
    if (s != std::string::npos) sender = req.substr(s + 8, req.find('\n', s + 8) - s - 8);
    const std::string domain = sender.substr(sender.rfind('@') + 1);
    const std::string now = std::to_string(static_cast<long>(time(nullptr)));
    const std::string win = std::to_string(g_window);
    const std::string keys[3] = {"pr:{server}", "pr:{domain:" + domain + "}",
                                 "pr:{mailbox:" + sender + "}"};
    const std::string limits[3] = {"1000000000", "1000000000", std::to_string(g_limit)};
    for (int i = 0; i < 3; ++i) {
      redisAppendCommand(r, "EVALSHA %s 1 %s %s %s %s", sha.c_str(), keys[i].c_str(), now.c_str(),
                         win.c_str(), limits[i].c_str());
    }
    bool ok = true;
    for (int i = 0; i < 3; ++i) {
      void* reply = nullptr;
      if (redisGetReply(r, &reply) != REDIS_OK) {
        ok = false;
        break;
      }
      auto* rep = static_cast<redisReply*>(reply);
      if (rep->type != REDIS_REPLY_INTEGER || rep->integer != 1) ok = false;
      freeReplyObject(rep);
    }
    const char* answer = ok ? "action=DUNNO\n\n" : "action=DEFER_IF_PERMIT 4.7.1 rate limit\n\n";
    if (write(fd, answer, std::strlen(answer)) < 0) break;
  }
  redisFree(r);
  close(fd);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr,
                 "usage: per_request_policy_server PORT REDIS_PORT MAILBOX_LIMIT [WINDOW_S]\n");
    return 2;
  }
  const int port = std::atoi(argv[1]);
  g_redis_port = std::atoi(argv[2]);
  g_limit = std::atol(argv[3]);
  if (argc > 4) g_window = std::atol(argv[4]);
  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(lfd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 || listen(lfd, 1024) != 0) {
    std::perror("bind/listen");
    return 1;
  }
  for (;;) {
    int c = accept(lfd, nullptr, nullptr);
    if (c < 0) continue;
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    std::thread(Serve, c).detach();
  }
}
