// Resolver: asynchronous DNS lookups for the blocklist cache.
//
// DnsResolver is the interface (tests use a scripted one); AresResolver is
// c-ares on a configurable nameserver and port. It can run its own thread
// (Start), or be driven by the host's event loop: Sockets() says which
// descriptors to watch and Timeout() how long to wait at most, and
// Process() is called when they are ready or the time has passed.
//
// Thread safety: Query is thread-safe. Callbacks run on the thread that
// drives the resolver (its own, or the host loop's) and must not block.
#ifndef SLUICE_REPUTATION_DNS_RESOLVER_H_
#define SLUICE_REPUTATION_DNS_RESOLVER_H_

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "reputation/dns/dns_answer.h"

struct ares_channeldata;

namespace sluice {

class DnsResolver {
 public:
  enum class Type { kA = 1, kPtr = 12, kTxt = 16, kAaaa = 28 };
  // status: OK with an answer (NOERROR or NXDOMAIN, see answer.rcode), or
  // DeadlineExceeded (timeout), Unavailable (server failure, refused,
  // unreachable), DataLoss (malformed answer).
  using Callback = std::function<void(const absl::Status&, const DnsAnswer&)>;
  virtual ~DnsResolver() = default;
  virtual void Query(const std::string& name, Type type, Callback cb) = 0;
  // Queries sent to the network so far.
  virtual uint64_t queries_sent() const = 0;
};

class AresResolver : public DnsResolver {
 public:
  struct Options {
    std::string server = "127.0.0.1";  // nameserver address; empty: /etc/resolv.conf
    int port = 53;
    absl::Duration timeout = absl::Milliseconds(500);  // per try
    int tries = 2;
  };
  static absl::StatusOr<std::unique_ptr<AresResolver>> Create(const Options& options);
  ~AresResolver() override;

  void Query(const std::string& name, Type type, Callback cb) override;
  uint64_t queries_sent() const override { return sent_.load(std::memory_order_relaxed); }

  // Own thread mode.
  void Start();
  // Host-loop mode (do not mix with Start): descriptors to watch for
  // reading (and writing), the longest wait, and the work when ready.
  struct Socket {
    int fd;
    bool read, write;
  };
  std::vector<Socket> Sockets();
  absl::Duration Timeout(absl::Duration max);
  void Process(int read_fd, int write_fd);  // -1 for none; also runs timeouts

 private:
  AresResolver() = default;
  void Submit();  // sends queued queries (holds mu_)
  void Loop();

  Options options_;
  ares_channeldata* channel_ = nullptr;
  std::mutex mu_;  // the channel is not thread-safe
  struct Pending {
    std::string name;
    Type type;
    Callback cb;
  };
  std::vector<Pending> queue_;
  int wake_[2] = {-1, -1};
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> sent_{0};
  std::thread thread_;
};

}  // namespace sluice

#endif  // SLUICE_REPUTATION_DNS_RESOLVER_H_
