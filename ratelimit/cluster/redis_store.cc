#include "ratelimit/cluster/redis_store.h"

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace sluice {
namespace {

// shared_counter.h's steps 1-4 for every key of the call, with 15
// arguments per key: host, seq, give-back bucket and units twice, spent
// bucket and units, sum from and to, lease bucket, want, limit, hosts, ttl
// in ms. Returns granted and usage per key.
constexpr char kScript[] = R"lua(
local out = {}
for i = 1, #KEYS do
  local k = KEYS[i]
  local a = 1 + (i - 1) * 15
  local host = 'h:' .. ARGV[a]
  local seq = ARGV[a + 1]
  local last = redis.call('HGET', k, host)
  local s, g, u
  if last then s, g, u = string.match(last, '^(%d+):(%d+):(%d+)$') end
  if s == seq then
    out[#out + 1] = tonumber(g)
    out[#out + 1] = tonumber(u)
  else
    for j = 0, 1 do
      local n = tonumber(ARGV[a + 3 + 2 * j])
      if n > 0 then
        local f = ARGV[a + 2 + 2 * j]
        local v = tonumber(redis.call('HGET', k, f) or '0')
        if v > n then redis.call('HSET', k, f, v - n)
        elseif v > 0 then redis.call('HDEL', k, f) end
      end
    end
    local spent = tonumber(ARGV[a + 7])
    if spent > 0 then redis.call('HINCRBY', k, ARGV[a + 6], spent) end
    local from, to = tonumber(ARGV[a + 8]), tonumber(ARGV[a + 9])
    local used = 0
    local all = redis.call('HGETALL', k)
    for j = 1, #all, 2 do
      local b = tonumber(all[j])
      if b then
        if b > from and b <= to then used = used + tonumber(all[j + 1])
        elseif b <= from then redis.call('HDEL', k, all[j]) end
      end
    end
    local want, limit, hosts = tonumber(ARGV[a + 11]), tonumber(ARGV[a + 12]), tonumber(ARGV[a + 13])
    local room = 0
    if limit > used then room = limit - used end
    local grant = 0
    if want > 0 then
      grant = math.min(math.max(want, math.ceil(room / (4 * hosts))), math.ceil(room / hosts))
    end
    if grant > 0 then redis.call('HINCRBY', k, ARGV[a + 10], grant) end
    redis.call('HSET', k, host, string.format('%s:%d:%d', seq, grant, used))
    redis.call('PEXPIRE', k, ARGV[a + 14])
    out[#out + 1] = grant
    out[#out + 1] = used
  end
end
return out
)lua";

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

bool SplitHostPort(absl::string_view spec, std::string* host, int* port) {
  const size_t colon = spec.rfind(':');
  if (colon == absl::string_view::npos || colon == 0) return false;
  int p = 0;
  if (!absl::SimpleAtoi(spec.substr(colon + 1), &p) || p <= 0 || p > 65535) return false;
  absl::string_view h = spec.substr(0, colon);
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  *host = std::string(h);
  *port = p;
  return true;
}

struct ReplyDeleter {
  void operator()(redisReply* r) const {
    if (r != nullptr) freeReplyObject(r);
  }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

// A command's arguments as hiredis's argv and lengths (binary-safe).
struct Argv {
  explicit Argv(const std::vector<std::string>& args) {
    for (const auto& a : args) {
      p.push_back(a.data());
      len.push_back(a.size());
    }
  }
  int argc() const { return static_cast<int>(p.size()); }
  std::vector<const char*> p;
  std::vector<size_t> len;
};

Reply Command(redisContext* c, const std::vector<std::string>& args) {
  Argv a(args);
  return Reply(static_cast<redisReply*>(redisCommandArgv(c, a.argc(), a.p.data(), a.len.data())));
}

bool IsError(const redisReply* r, absl::string_view prefix) {
  return r != nullptr && r->type == REDIS_REPLY_ERROR &&
         absl::string_view(r->str, r->len).substr(0, prefix.size()) == prefix;
}

}  // namespace

struct RedisStore::Node {
  std::string host;
  int port = 0;
  redisContext* ctx = nullptr;
  std::string sha;
  int64_t retry_at_ms = 0;
  int backoff_ms = 0;
};

absl::StatusOr<std::unique_ptr<RedisStore>> RedisStore::Create(Options options) {
  if (options.servers.empty()) return absl::InvalidArgumentError("cluster: no Redis server");
  if (!options.cluster && options.servers.size() > 1) {
    return absl::InvalidArgumentError(
        "cluster: several servers need `redis_cluster: true` (one Redis, or a Cluster's seeds)");
  }
  for (const auto& s : options.servers) {
    std::string h;
    int p;
    if (!SplitHostPort(s, &h, &p)) {
      return absl::InvalidArgumentError(
          absl::StrCat("cluster: bad server \"", s, "\" (HOST:PORT)"));
    }
  }
  if (options.timeout_ms <= 0) options.timeout_ms = 50;
  if (options.batch == 0) options.batch = 256;
  std::unique_ptr<RedisStore> s(new RedisStore(std::move(options)));
  for (const auto& spec : s->options_.servers) {
    std::string h;
    int p = 0;
    SplitHostPort(spec, &h, &p);
    s->NodeAt(h, p);
  }
  return s;
}

RedisStore::RedisStore(Options options) : options_(std::move(options)) {}

RedisStore::~RedisStore() {
  for (auto& n : nodes_) {
    if (n->ctx != nullptr) redisFree(n->ctx);
  }
}

int RedisStore::Slot(absl::string_view key) {
  const size_t open = key.find('{');
  if (open != absl::string_view::npos) {
    const size_t close = key.find('}', open + 1);
    if (close != absl::string_view::npos && close > open + 1) {
      key = key.substr(open + 1, close - open - 1);
    }
  }
  // CRC16-CCITT (XMODEM): polynomial 0x1021, initial value 0.
  uint16_t crc = 0;
  for (unsigned char c : key) {
    crc ^= static_cast<uint16_t>(c) << 8;
    for (int i = 0; i < 8; ++i) {
      crc = (crc & 0x8000) ? static_cast<uint16_t>((crc << 1) ^ 0x1021)
                           : static_cast<uint16_t>(crc << 1);
    }
  }
  return crc & 16383;
}

RedisStore::Stats RedisStore::stats() const {
  Stats s;
  s.calls = calls_.load(std::memory_order_relaxed);
  s.ops = ops_.load(std::memory_order_relaxed);
  s.errors = errors_.load(std::memory_order_relaxed);
  s.moved = moved_.load(std::memory_order_relaxed);
  s.asks = asks_.load(std::memory_order_relaxed);
  s.connects = connects_.load(std::memory_order_relaxed);
  s.slot_refreshes = slot_refreshes_.load(std::memory_order_relaxed);
  return s;
}

std::string RedisStore::MetricsText() const {
  const Stats s = stats();
  return absl::StrCat(
      "# TYPE sluice_redis_calls_total counter\nsluice_redis_calls_total ", s.calls,
      "\n# TYPE sluice_redis_errors_total counter\nsluice_redis_errors_total ", s.errors,
      "\n# TYPE sluice_redis_redirects_total "
      "counter\nsluice_redis_redirects_total{kind=\"moved\"} ",
      s.moved, "\nsluice_redis_redirects_total{kind=\"ask\"} ", s.asks,
      "\n# TYPE sluice_redis_connects_total counter\nsluice_redis_connects_total ", s.connects,
      "\n# TYPE sluice_redis_slot_map_refreshes_total counter\n"
      "sluice_redis_slot_map_refreshes_total ",
      s.slot_refreshes, "\n");
}

RedisStore::Node* RedisStore::NodeAt(const std::string& host, int port) {
  for (auto& n : nodes_) {
    if (n->host == host && n->port == port) return n.get();
  }
  nodes_.push_back(std::make_unique<Node>());
  nodes_.back()->host = host;
  nodes_.back()->port = port;
  return nodes_.back().get();
}

void RedisStore::Fail(Node* n, int64_t now_ms) {
  errors_.fetch_add(1, std::memory_order_relaxed);
  if (n->ctx != nullptr) redisFree(n->ctx);
  n->ctx = nullptr;
  n->backoff_ms = n->backoff_ms == 0 ? 50 : std::min(2000, n->backoff_ms * 2);
  n->retry_at_ms = now_ms + n->backoff_ms;
  if (options_.cluster) slots_stale_ = true;  // a failover may have moved its slots
}

bool RedisStore::Connect(Node* n, int64_t now_ms) {
  if (n->ctx != nullptr) return true;
  if (now_ms < n->retry_at_ms) return false;
  timeval tv{options_.timeout_ms / 1000, (options_.timeout_ms % 1000) * 1000};
  n->ctx = redisConnectWithTimeout(n->host.c_str(), n->port, tv);
  if (n->ctx == nullptr || n->ctx->err != 0 || redisSetTimeout(n->ctx, tv) != REDIS_OK) {
    Fail(n, now_ms);
    return false;
  }
  connects_.fetch_add(1, std::memory_order_relaxed);
  if (!options_.password.empty()) {
    std::vector<std::string> auth = {"AUTH"};
    if (!options_.user.empty()) auth.push_back(options_.user);
    auth.push_back(options_.password);
    Reply r = Command(n->ctx, auth);
    if (r == nullptr || r->type == REDIS_REPLY_ERROR) {
      Fail(n, now_ms);
      return false;
    }
  }
  Reply r = Command(n->ctx, {"SCRIPT", "LOAD", kScript});
  if (r == nullptr || r->type != REDIS_REPLY_STRING) {
    Fail(n, now_ms);
    return false;
  }
  n->sha.assign(r->str, r->len);
  n->backoff_ms = 0;
  return true;
}

void RedisStore::RefreshSlots(int64_t now_ms) {
  if (now_ms < next_refresh_ms_) return;
  next_refresh_ms_ = now_ms + 100;  // at most ten times a second
  const size_t known = nodes_.size();
  for (size_t i = 0; i < known; ++i) {
    Node* n = nodes_[i].get();
    if (!Connect(n, now_ms)) continue;
    Reply r = Command(n->ctx, {"CLUSTER", "SLOTS"});
    if (r == nullptr) {
      Fail(n, now_ms);
      continue;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) continue;
    std::vector<Node*> map(16384, nullptr);
    for (size_t j = 0; j < r->elements; ++j) {
      const redisReply* e = r->element[j];
      if (e->type != REDIS_REPLY_ARRAY || e->elements < 3) continue;
      const redisReply* master = e->element[2];
      if (master->type != REDIS_REPLY_ARRAY || master->elements < 2) continue;
      std::string host(master->element[0]->str == nullptr ? "" : master->element[0]->str,
                       master->element[0]->len);
      if (host.empty()) host = n->host;  // "" means the node asked
      Node* m = NodeAt(host, static_cast<int>(master->element[1]->integer));
      for (long long s = e->element[0]->integer; s <= e->element[1]->integer && s < 16384; ++s) {
        if (s >= 0) map[static_cast<size_t>(s)] = m;
      }
    }
    slots_ = std::move(map);
    slots_stale_ = false;
    slot_refreshes_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
}

RedisStore::Node* RedisStore::NodeFor(int slot) {
  if (!options_.cluster) return nodes_.front().get();
  if (slots_.empty()) return nullptr;
  return slots_[static_cast<size_t>(slot)];
}

bool RedisStore::Answer(void* reply, const std::vector<SyncOp*>& call) {
  const redisReply* r = static_cast<const redisReply*>(reply);
  if (r == nullptr || r->type != REDIS_REPLY_ARRAY || r->elements != 2 * call.size()) return false;
  for (size_t i = 0; i < call.size(); ++i) {
    const redisReply* g = r->element[2 * i];
    const redisReply* u = r->element[2 * i + 1];
    if (g->type != REDIS_REPLY_INTEGER || u->type != REDIS_REPLY_INTEGER) return false;
    call[i]->granted = static_cast<uint64_t>(std::max<long long>(0, g->integer));
    call[i]->usage = static_cast<uint64_t>(std::max<long long>(0, u->integer));
    call[i]->answered = true;
  }
  ops_.fetch_add(call.size(), std::memory_order_relaxed);
  return true;
}

namespace {
// EVALSHA's arguments for one call.
std::vector<std::string> CallArgs(const std::string& sha, const std::vector<SyncOp*>& call) {
  std::vector<std::string> a;
  a.reserve(3 + call.size() * 16);
  a.push_back("EVALSHA");
  a.push_back(sha);
  a.push_back(absl::StrCat(call.size()));
  for (const SyncOp* op : call) a.push_back(op->key);
  for (const SyncOp* op : call) {
    a.push_back(op->host);
    for (int64_t v : {static_cast<int64_t>(op->seq), op->give_back_bucket[0],
                      static_cast<int64_t>(op->give_back[0]), op->give_back_bucket[1],
                      static_cast<int64_t>(op->give_back[1]), op->spent_bucket,
                      static_cast<int64_t>(op->spent), op->sum_from, op->sum_to, op->lease_bucket,
                      static_cast<int64_t>(op->want), static_cast<int64_t>(op->limit),
                      static_cast<int64_t>(std::max(1, op->hosts)), op->ttl_ms}) {
      a.push_back(absl::StrCat(v));
    }
  }
  return a;
}

bool Append(redisContext* c, const std::vector<std::string>& args) {
  Argv a(args);
  return redisAppendCommandArgv(c, a.argc(), a.p.data(), a.len.data()) == REDIS_OK;
}

// "ASK 3999 127.0.0.1:6381" -> host and port.
bool Redirect(const redisReply* r, std::string* host, int* port) {
  std::vector<absl::string_view> parts = absl::StrSplit(absl::string_view(r->str, r->len), ' ');
  return parts.size() == 3 && SplitHostPort(parts[2], host, port);
}
}  // namespace

void RedisStore::RunOn(Node* n, std::vector<std::vector<SyncOp*>>& calls, int64_t now_ms) {
  if (!Connect(n, now_ms)) return;
  for (const auto& call : calls) {
    if (!Append(n->ctx, CallArgs(n->sha, call))) {
      Fail(n, now_ms);
      return;
    }
  }
  calls_.fetch_add(calls.size(), std::memory_order_relaxed);
  for (const auto& call : calls) {
    void* raw = nullptr;
    if (redisGetReply(n->ctx, &raw) != REDIS_OK) {  // timeout or broken: the rest unanswered
      Fail(n, now_ms);
      return;
    }
    Reply r(static_cast<redisReply*>(raw));
    if (Answer(r.get(), call)) continue;
    if (IsError(r.get(), "NOSCRIPT")) {  // not run: load it and send again
      Reply load = Command(n->ctx, {"SCRIPT", "LOAD", kScript});
      if (load == nullptr) {
        Fail(n, now_ms);
        return;
      }
      if (load->type == REDIS_REPLY_STRING) n->sha.assign(load->str, load->len);
      Reply again = Command(n->ctx, CallArgs(n->sha, call));
      if (again == nullptr) {
        Fail(n, now_ms);
        return;
      }
      if (!Answer(again.get(), call)) errors_.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    std::string host;
    int port = 0;
    if (IsError(r.get(), "MOVED")) {  // not applied; the next sync goes to the new owner
      moved_.fetch_add(1, std::memory_order_relaxed);
      slots_stale_ = true;
      continue;
    }
    if (IsError(r.get(), "ASK") && Redirect(r.get(), &host, &port)) {
      asks_.fetch_add(1, std::memory_order_relaxed);
      Node* target = NodeAt(host, port);
      if (!Connect(target, now_ms)) continue;
      if (!Append(target->ctx, {"ASKING"}) || !Append(target->ctx, CallArgs(target->sha, call))) {
        Fail(target, now_ms);
        continue;
      }
      void* ok = nullptr;
      void* ans = nullptr;
      if (redisGetReply(target->ctx, &ok) != REDIS_OK ||
          redisGetReply(target->ctx, &ans) != REDIS_OK) {
        if (ok != nullptr) freeReplyObject(ok);
        Fail(target, now_ms);
        continue;
      }
      freeReplyObject(ok);
      Reply a(static_cast<redisReply*>(ans));
      if (!Answer(a.get(), call)) errors_.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    errors_.fetch_add(1, std::memory_order_relaxed);  // an error reply (e.g. OOM, LOADING)
  }
}

bool RedisStore::Ping() {
  const int64_t now = NowMs();
  for (auto& n : nodes_) {
    if (!Connect(n.get(), now)) continue;
    Reply r = Command(n->ctx, {"PING"});
    if (r == nullptr) {
      Fail(n.get(), now);
      continue;
    }
    if (r->type == REDIS_REPLY_STATUS) return true;
  }
  return false;
}

void RedisStore::Run(const std::vector<SyncOp*>& ops) {
  if (ops.empty()) return;
  const int64_t now = NowMs();
  if (options_.cluster && slots_stale_) RefreshSlots(now);
  // Group by node, then by slot (a script call's keys share one slot).
  std::map<Node*, std::map<int, std::vector<SyncOp*>>> groups;
  for (SyncOp* op : ops) {
    const int slot = options_.cluster ? Slot(op->key) : 0;
    Node* n = NodeFor(slot);
    if (n == nullptr) {
      slots_stale_ = true;
      continue;
    }
    groups[n][slot].push_back(op);
  }
  for (auto& [node, by_slot] : groups) {
    std::vector<std::vector<SyncOp*>> calls;
    for (auto& [slot, list] : by_slot) {
      for (size_t i = 0; i < list.size(); i += options_.batch) {
        calls.emplace_back(list.begin() + i,
                           list.begin() + std::min(list.size(), i + options_.batch));
      }
    }
    RunOn(node, calls, now);
  }
}

}  // namespace sluice
