// RedisStore: the cluster sync's global store on Redis or Redis Cluster,
// through hiredis's blocking API with short timeouts, on the sync loop's
// thread only (nothing on a request path ever calls it).
//
// Each counter is one Redis hash: fields named by bucket number hold the
// units counted there, and a field per host ("h:<host>") its last
// operation's sequence and answer, so a retried operation is answered
// again, not applied twice. One Lua script (loaded with SCRIPT LOAD, run
// with EVALSHA) does shared_counter.h's steps 1-4 for up to `batch`
// counters at once, and sets the key to expire with its window.
//
// Keys are "PREFIX{LEVEL:ENTITY}:METRIC:WINDOW": the hash tag puts every
// window and metric of one entity in one Cluster slot. With Cluster, the
// slot map comes from CLUSTER SLOTS (asked of any known node) and is asked
// again after a MOVED, a refused connection or a timeout; an operation
// answered MOVED waits for the next sync (it was not applied), one answered
// ASK is sent at once to the node named, after ASKING. Counters of one
// slot share a script call; different slots need different calls (CROSSSLOT).
//
// Faults: connect, read and write time out after `timeout_ms`; a node that
// failed is not tried again before its backoff (doubling from 50 ms to 2
// s); operations not answered are left so (SharedCounter keeps and resends
// them). AUTH with a password, or an ACL user and password, on every
// connection. Debian's hiredis has no TLS: run Redis behind a local TLS
// tunnel (stunnel or spiped on 127.0.0.1) and point `servers` at it.
//
// Thread safety: one thread at a time (the sync loop); stats() is
// thread-safe.
#ifndef SLUICE_RATELIMIT_CLUSTER_REDIS_STORE_H_
#define SLUICE_RATELIMIT_CLUSTER_REDIS_STORE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ratelimit/cluster/shared_counter.h"

struct redisContext;

namespace sluice {

class RedisStore : public ClusterStore {
 public:
  struct Options {
    std::vector<std::string> servers;  // "host:port"; with cluster, seeds
    bool cluster = false;
    std::string user;  // ACL user (Redis 6+); empty: AUTH with the password alone
    std::string password;
    int timeout_ms = 50;
    size_t batch = 256;  // counters per script call
  };
  struct Stats {
    uint64_t calls = 0;  // script calls sent
    uint64_t ops = 0;    // counter operations answered
    uint64_t errors = 0;
    uint64_t moved = 0;
    uint64_t asks = 0;
    uint64_t connects = 0;
    uint64_t slot_refreshes = 0;
  };

  // Checks the options (no connection is made: Redis may come later).
  static absl::StatusOr<std::unique_ptr<RedisStore>> Create(Options options);
  ~RedisStore() override;

  void Run(const std::vector<SyncOp*>& ops) override;
  // PING to the server (with Cluster, to a known node).
  bool Ping() override;
  std::string MetricsText() const override;

  // The Cluster slot of a key (CRC16 of its hash tag, mod 16384).
  static int Slot(absl::string_view key);
  Stats stats() const;

 private:
  struct Node;
  explicit RedisStore(Options options);
  Node* NodeFor(int slot);
  Node* NodeAt(const std::string& host, int port);
  bool Connect(Node* n, int64_t now_ms);
  void Fail(Node* n, int64_t now_ms);
  void RefreshSlots(int64_t now_ms);
  // Sends the calls for `ops` (one slot or one server) to n, pipelined,
  // and reads the answers.
  void RunOn(Node* n, std::vector<std::vector<SyncOp*>>& calls, int64_t now_ms);
  bool Answer(void* reply, const std::vector<SyncOp*>& call);

  const Options options_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::vector<Node*> slots_;  // 16384 entries with cluster
  bool slots_stale_ = true;
  int64_t next_refresh_ms_ = 0;
  std::atomic<uint64_t> calls_{0}, ops_{0}, errors_{0}, moved_{0}, asks_{0}, connects_{0},
      slot_refreshes_{0};
};

}  // namespace sluice

#endif  // SLUICE_RATELIMIT_CLUSTER_REDIS_STORE_H_
