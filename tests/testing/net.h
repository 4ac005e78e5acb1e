// Loopback helpers for tests and benchmarks that talk to servers on
// 127.0.0.1: free ports, connecting with a receive timeout, and starting
// and stopping child processes.
//
// Thread safety: free functions; thread-safe.
#ifndef SLUICE_TESTS_TESTING_NET_H_
#define SLUICE_TESTS_TESTING_NET_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace sluice {
namespace testing {

// A port on 127.0.0.1 that was free for both TCP and UDP a moment ago, or 0.
// It is TCP's bind(0) choice: Linux hands bind(0) odd ports and connect()
// even ones, so a port picked this way rarely meets the local port of an
// outgoing connection of a test running beside this one (a server that
// listens on TCP as well, like unbound, fails to start if it does).
// A DNS server that never answers: a UDP socket on 127.0.0.1 that nobody
// reads. Returns its descriptor (close it when done; recv on it counts the
// queries that reached it) and sets *port, or returns -1.
inline int BlackHoleUdp(int* port) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) return -1;
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(sa);
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
    close(fd);
    return -1;
  }
  *port = ntohs(sa.sin_port);
  return fd;
}

inline int FreePort() {
  for (int attempt = 0; attempt < 50; ++attempt) {
    int tcp = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(sa);
    if (tcp < 0 || bind(tcp, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 ||
        getsockname(tcp, reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
      if (tcp >= 0) close(tcp);
      continue;
    }
    int udp = socket(AF_INET, SOCK_DGRAM, 0);
    const bool udp_free = udp >= 0 && bind(udp, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0;
    if (udp >= 0) close(udp);
    close(tcp);
    if (udp_free) return ntohs(sa.sin_port);
  }
  return 0;
}

// Connects fd to `sa` and sets its receive timeout; returns fd, or -1
// (fd closed) if the connection fails.
inline int ConnectWithTimeout(int fd, const sockaddr* sa, socklen_t len, int timeout_s) {
  if (connect(fd, sa, len) != 0) {
    close(fd);
    return -1;
  }
  timeval tv{timeout_s, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  return fd;
}

// A socket connected to 127.0.0.1:port (SOCK_STREAM or SOCK_DGRAM) whose
// reads time out after `timeout_s` seconds, or -1.
inline int ConnectTcp(int port, int timeout_s = 5, int type = SOCK_STREAM) {
  int fd = socket(AF_INET, type, 0);
  if (fd < 0) return -1;
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return ConnectWithTimeout(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa), timeout_s);
}

// A stream socket connected to the unix socket at `path` whose reads time
// out after `timeout_s` seconds, or -1.
inline int ConnectUnix(const std::string& path, int timeout_s = 5) {
  sockaddr_un sa{};
  if (path.size() >= sizeof(sa.sun_path)) return -1;
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, path.data(), path.size());
  return ConnectWithTimeout(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa), timeout_s);
}

// True while the child `pid` has not exited (reaps it if it has).
inline bool ChildRunning(pid_t pid) { return pid > 0 && waitpid(pid, nullptr, WNOHANG) == 0; }

// TERM, a bounded wait (2 s), then KILL.
inline void StopChild(pid_t pid) {
  if (pid <= 0) return;
  kill(pid, SIGTERM);
  for (int i = 0; i < 100; ++i) {
    if (waitpid(pid, nullptr, WNOHANG) == pid) return;
    absl::SleepFor(absl::Milliseconds(20));
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
}

}  // namespace testing
}  // namespace sluice

#endif  // SLUICE_TESTS_TESTING_NET_H_
