// The loopback limit: a bare server answering "action=DUNNO" to every
// request (an empty line ends one) without parsing anything. Two epoll
// threads on one SO_REUSEPORT port. Benchmarks only.
//   echo_policy_server PORT [THREADS]
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

void Serve(int port) {
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(lfd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 || listen(lfd, 1024) != 0) {
    std::perror("bind/listen");
    std::exit(1);
  }
  int ep = epoll_create1(0);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = lfd;
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  std::unordered_map<int, int> tail;  // fd -> trailing '\n' count of the last read
  static const char kReply[] = "action=DUNNO\n\n";
  std::vector<epoll_event> evs(256);
  char buf[16384];
  std::string out;
  for (;;) {
    int n = epoll_wait(ep, evs.data(), static_cast<int>(evs.size()), -1);
    for (int i = 0; i < n; ++i) {
      int fd = evs[i].data.fd;
      if (fd == lfd) {
        int c;
        while ((c = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK)) >= 0) {
          setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
          epoll_event cev{};
          cev.events = EPOLLIN;
          cev.data.fd = c;
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
          tail[c] = 0;
        }
        continue;
      }
      ssize_t r = read(fd, buf, sizeof(buf));
      if (r <= 0) {
        close(fd);
        tail.erase(fd);
        continue;
      }
      int& t = tail[fd];
      out.clear();
      for (ssize_t k = 0; k < r; ++k) {
        if (buf[k] == '\n') {
          if (++t == 2) {
            out.append(kReply, sizeof(kReply) - 1);
            t = 0;
          }
        } else {
          t = 0;
        }
      }
      if (!out.empty()) (void)!write(fd, out.data(), out.size());
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: echo_policy_server PORT [THREADS]\n");
    return 2;
  }
  int port = std::atoi(argv[1]);
  int threads = argc > 2 ? std::atoi(argv[2]) : 2;
  std::vector<std::thread> ts;
  for (int i = 0; i < threads; ++i) ts.emplace_back(Serve, port);
  for (auto& t : ts) t.join();
}
