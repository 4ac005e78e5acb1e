#include "ratelimit/cluster/cluster_sync.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "ratelimit/cluster/redis_store.h"
#include "ratelimit/config.h"
#include "ratelimit/types.h"

namespace sluice {
namespace {

int64_t Ms(absl::Duration d) { return absl::ToInt64Milliseconds(d); }

// Token: the counter's address (64-byte aligned) | source (low bits) |
// lease id << 48. kTableFull: admitted on the fallback rule without a
// counter (nothing to refund).
constexpr uint64_t kTableFull = 1;
constexpr uint64_t kSourceMask = 0x7;
constexpr uint64_t kPointerMask = ((uint64_t{1} << 48) - 1) & ~uint64_t{63};

}  // namespace

ClusterSync::Options ClusterSync::FromConfig(const config::Cluster& c) {
  Options o;
  o.hosts = std::max<int>(1, static_cast<int>(c.hosts()));
  if (!c.host_name().empty()) {
    o.host_name = c.host_name();
  } else {
    char name[256] = {};
    gethostname(name, sizeof(name) - 1);
    o.host_name = name;
  }
  // A suffix new with every process: operation sequences start again at a
  // restart, and two daemons on one machine must not answer for each other.
  absl::StrAppend(&o.host_name, "#", absl::Hex(absl::Uniform<uint32_t>(absl::BitGen())));
  o.interval = DurationOr(c.interval(), absl::Milliseconds(200));
  o.fault = DurationOr(c.timeout(), absl::Milliseconds(50));
  if (c.has_fallback_share()) o.fallback_share = c.fallback_share();
  if (c.has_first_use_share()) o.first_use_share = c.first_use_share();
  if (!c.key_prefix().empty()) o.key_prefix = c.key_prefix();
  if (c.max_counters() > 0) o.max_counters = c.max_counters();
  return o;
}

absl::StatusOr<std::unique_ptr<ClusterSync>> ClusterSync::Create(const config::Cluster& c) {
  RedisStore::Options ro;
  ro.servers.assign(c.server().begin(), c.server().end());
  ro.cluster = c.redis_cluster();
  ro.user = c.user();
  ro.password = c.password();
  const Options o = FromConfig(c);
  ro.timeout_ms = static_cast<int>(std::max<int64_t>(1, Ms(o.fault)));
  auto store = RedisStore::Create(ro);
  if (!store.ok()) return store.status();
  return std::make_unique<ClusterSync>(std::move(*store), o, absl::Now());
}

ClusterSync::ClusterSync(std::unique_ptr<ClusterStore> store, Options options, absl::Time now)
    : store_(std::move(store)),
      options_(std::move(options)),
      interval_ms_(std::max<int64_t>(1, Ms(options_.interval))),
      fault_ms_(std::max<int64_t>(1, Ms(options_.fault))),
      last_ok_ms_(absl::ToUnixMillis(now)) {
  size_t cap = 64;
  while (cap < 2 * options_.max_counters) cap <<= 1;
  table_.reset(new std::atomic<SharedCounter*>[cap]);
  for (size_t i = 0; i < cap; ++i) table_[i].store(nullptr, std::memory_order_relaxed);
  mask_ = cap - 1;
}

ClusterSync::~ClusterSync() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  for (uint64_t i = 0; i <= mask_; ++i) delete table_[i].load(std::memory_order_relaxed);
}

void ClusterSync::Start() {
  thread_ = std::thread([this] {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      lock.unlock();
      const auto start = std::chrono::steady_clock::now();
      SyncOnce(absl::ToUnixMillis(absl::Now()));
      lock.lock();
      cv_.wait_until(lock, start + std::chrono::milliseconds(interval_ms_),
                     [this] { return stop_; });
    }
  });
}

SharedCounter* ClusterSync::Find(uint64_t hash) const noexcept {
  for (uint64_t i = 0, j = hash & mask_; i < 32; ++i, j = (j + 1) & mask_) {
    // acquire: pairs with the release that published the counter.
    SharedCounter* c = table_[j].load(std::memory_order_acquire);
    if (c == nullptr) return nullptr;
    if (c->tag() == hash) return c;
  }
  return nullptr;
}

SharedCounter* ClusterSync::FindOrAdd(const Key& key) noexcept {
  for (uint64_t i = 0, j = key.hash & mask_; i < 32; ++i, j = (j + 1) & mask_) {
    SharedCounter* c = table_[j].load(std::memory_order_acquire);
    if (c == nullptr) {
      if (count_.load(std::memory_order_relaxed) >= options_.max_counters) return nullptr;
      // First sight of this counter on this host: the one allocation, as
      // the limiter's names.
      SharedCounter::Options o;
      o.limit = key.limit;
      o.window_ms = key.window_s * 1000;
      o.sub_bucket_ms = std::max<int64_t>(1, int64_t{key.sub_s} * 1000);
      o.interval_ms = interval_ms_;
      o.hosts = options_.hosts;
      o.fallback_share = options_.fallback_share;
      const double first =
          options_.first_use_share >= 0 ? options_.first_use_share : 1.0 / (20.0 * options_.hosts);
      o.first_lease = static_cast<uint64_t>(static_cast<double>(key.limit) * first);
      if (options_.first_use_share < 0) o.first_lease = std::max<uint64_t>(1, o.first_lease);
      o.host = options_.host_name;
      auto* fresh = new (std::nothrow)
          SharedCounter(absl::StrCat(options_.key_prefix, "{", LevelName(key.level), ":",
                                     key.entity, "}:", MetricName(key.metric), ":", key.window_s),
                        o);
      if (fresh == nullptr) return nullptr;
      fresh->set_tag(key.hash);
      // release: a reader that finds the pointer sees the counter built.
      if (table_[j].compare_exchange_strong(c, fresh, std::memory_order_acq_rel)) {
        count_.fetch_add(1, std::memory_order_relaxed);
        return fresh;
      }
      delete fresh;  // another thread filled the slot: look at what it put
    }
    if (c->tag() == key.hash) return c;
  }
  return nullptr;
}

// A round that failed (the store refused, timed out after `fault`, or
// answered errors) says so at once; a loop that answered nothing for two
// intervals and `fault` (stuck, or starved of CPU: its last leases have
// just expired) counts as failed too.
bool ClusterSync::Fallback(int64_t now_ms) const noexcept {
  return failing_.load(std::memory_order_relaxed) ||
         now_ms - last_ok_ms_.load(std::memory_order_relaxed) > 2 * interval_ms_ + fault_ms_;
}

uint64_t ClusterSync::Admit(const Key& key, uint64_t n, uint64_t local_usage,
                            absl::Time now) noexcept {
  const int64_t now_ms = absl::ToUnixMillis(now);
  SharedCounter* c = FindOrAdd(key);
  if (c == nullptr) {  // no room for the counter: the fallback rule alone
    table_full_.fetch_add(1, std::memory_order_relaxed);
    const uint64_t share =
        SharedCounter::FallbackShare(key.limit, options_.hosts, options_.fallback_share);
    return local_usage <= share ? kTableFull : 0;
  }
  if (c->limit() != key.limit) c->set_limit(key.limit);  // a reload changed it
  const SharedCounter::Admission a = c->TryAdmit(n, now_ms, Fallback(now_ms), local_usage);
  if (!a.ok) return 0;
  if (a.source == 4) fallback_admits_.fetch_add(n, std::memory_order_relaxed);
  return reinterpret_cast<uint64_t>(c) | a.source | (uint64_t{a.lease_id} << 48);
}

void ClusterSync::Refund(uint64_t token, uint64_t n) noexcept {
  if (token == kTableFull || token == 0) return;
  auto* c = reinterpret_cast<SharedCounter*>(token & kPointerMask);
  SharedCounter::Admission a;
  a.ok = true;
  a.source = static_cast<uint8_t>(token & kSourceMask);
  a.lease_id = static_cast<uint16_t>(token >> 48);
  c->Refund(a, n);
}

uint64_t ClusterSync::GlobalUsage(const Key& key) const noexcept {
  const SharedCounter* c = Find(key.hash);
  return c == nullptr ? 0 : c->global_usage() + c->uncounted();
}

bool ClusterSync::SyncOnce(int64_t now_ms) {
  ops_buf_.clear();
  std::vector<SharedCounter*> who;
  for (uint64_t i = 0; i <= mask_; ++i) {
    SharedCounter* c = table_[i].load(std::memory_order_acquire);
    if (c == nullptr) continue;
    SyncOp op;
    if (c->Prepare(now_ms, &op)) {
      ops_buf_.push_back(std::move(op));
      who.push_back(c);
    }
  }
  bool ok = true;
  if (ops_buf_.empty()) {
    ok = store_->Ping();
  } else {
    std::vector<SyncOp*> ptrs;
    ptrs.reserve(ops_buf_.size());
    for (SyncOp& op : ops_buf_) ptrs.push_back(&op);
    store_->Run(ptrs);
    uint64_t answered = 0;
    for (size_t i = 0; i < who.size(); ++i) {
      who[i]->Finish(ops_buf_[i], now_ms);
      if (ops_buf_[i].answered) ++answered;
    }
    ok = answered == who.size();
    ops_.fetch_add(answered, std::memory_order_relaxed);
    last_batch_.store(who.size(), std::memory_order_relaxed);
    if (who.size() > max_batch_.load(std::memory_order_relaxed)) {
      max_batch_.store(who.size(), std::memory_order_relaxed);
    }
  }
  rounds_.fetch_add(1, std::memory_order_relaxed);
  if (ok) {
    last_ok_ms_.store(now_ms, std::memory_order_relaxed);
    failing_.store(false, std::memory_order_relaxed);
  } else {
    failed_rounds_.fetch_add(1, std::memory_order_relaxed);
    failing_.store(true, std::memory_order_relaxed);
  }
  return ok;
}

ClusterSync::Stats ClusterSync::stats(absl::Time now) const {
  Stats s;
  const int64_t now_ms = absl::ToUnixMillis(now);
  s.counters = count_.load(std::memory_order_relaxed);
  s.rounds = rounds_.load(std::memory_order_relaxed);
  s.failed_rounds = failed_rounds_.load(std::memory_order_relaxed);
  s.ops = ops_.load(std::memory_order_relaxed);
  s.last_batch = last_batch_.load(std::memory_order_relaxed);
  s.max_batch = max_batch_.load(std::memory_order_relaxed);
  s.lag_ms = std::max<int64_t>(0, now_ms - last_ok_ms_.load(std::memory_order_relaxed));
  s.fallback = Fallback(now_ms);
  s.fallback_admits = fallback_admits_.load(std::memory_order_relaxed);
  s.table_full = table_full_.load(std::memory_order_relaxed);
  return s;
}

std::string ClusterSync::MetricsText(absl::Time now) const {
  const Stats s = stats(now);
  return absl::StrCat(
      "# TYPE sluice_cluster_counters gauge\nsluice_cluster_counters ", s.counters,
      "\n# TYPE sluice_cluster_sync_rounds_total counter\nsluice_cluster_sync_rounds_total ",
      s.rounds,
      "\n# TYPE sluice_cluster_sync_failures_total counter\nsluice_cluster_sync_failures_total ",
      s.failed_rounds,
      "\n# TYPE sluice_cluster_sync_ops_total counter\nsluice_cluster_sync_ops_total ", s.ops,
      "\n# TYPE sluice_cluster_sync_batch gauge\nsluice_cluster_sync_batch ", s.last_batch,
      "\n# TYPE sluice_cluster_sync_batch_max gauge\nsluice_cluster_sync_batch_max ", s.max_batch,
      "\n# TYPE sluice_cluster_sync_lag_seconds gauge\nsluice_cluster_sync_lag_seconds ",
      static_cast<double>(s.lag_ms) / 1000.0,
      "\n# TYPE sluice_cluster_fallback gauge\nsluice_cluster_fallback ", s.fallback ? 1 : 0,
      "\n# TYPE sluice_cluster_fallback_admitted_total counter\n"
      "sluice_cluster_fallback_admitted_total ",
      s.fallback_admits,
      "\n# TYPE sluice_cluster_table_full_total counter\nsluice_cluster_table_full_total ",
      s.table_full, "\n", store_->MetricsText());
}

}  // namespace sluice
