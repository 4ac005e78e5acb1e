// 5-level check-and-charge: sluice vs a global std::mutex + unordered_map
// baseline vs a 64-way sharded absl::Mutex + flat_hash_map baseline, in one
// run. Mailbox keys: 1K drawn from a Zipf(1.0) distribution (a hot set) and
// 1M drawn uniformly; 1 and 2 threads. Every message also hits the same
// server and plan counters (the shared hot lines of a real server).
//
// Baselines do the same logical work: check five counters (server, plan,
// subscription, domain, mailbox), and charge all five only if all have room
// (all-or-nothing), with fixed-window counters (simpler than sluice's
// sliding windows). The sharded baseline locks the (up to five) shards a
// message touches in address order.
//
// Each request's strings are formatted into a small reused buffer, as an MTA
// has them fresh from the socket (in cache), rather than read from a 1M-entry
// table of strings whose cache misses would dominate every variant.
//
// Run: bazel run --config=opt //benchmarks:limiter_benchmark
#include <algorithm>
#include <atomic>
#include <cmath>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "benchmark/benchmark.h"
#include "ratelimit/config.h"
#include "ratelimit/limiter.h"

namespace {

constexpr int kDomainsPerSub = 10;
constexpr int kMailboxesPerDomain = 10;
const absl::Time kT0 = absl::FromUnixSeconds(1767225600);
constexpr uint64_t kHuge = 100000000000ull;  // limits that never trip

struct Population {
  int n = 0;
  std::vector<std::string> mailbox, domain, subscription;
  std::vector<std::string> subs;   // by subscription number
  std::vector<uint32_t> sequence;  // the order messages arrive in
};

// Builds n mailboxes; `zipf` picks the arrival order from Zipf(1.0).
const Population& GetPopulation(int n, bool zipf) {
  static std::mutex mu;
  static std::unordered_map<int, std::unique_ptr<Population>> cache;
  std::lock_guard<std::mutex> lock(mu);
  int key = n * 2 + (zipf ? 1 : 0);
  auto& p = cache[key];
  if (p) return *p;
  p = std::make_unique<Population>();
  p->n = n;
  int ndomains = std::max(1, n / kMailboxesPerDomain);
  int nsubs = std::max(1, ndomains / kDomainsPerSub);
  for (int s = 0; s < nsubs; ++s) p->subs.push_back(absl::StrCat("sub", s));
  for (int i = 0; i < n; ++i) {
    int d = i % ndomains;
    p->domain.push_back(absl::StrCat("d", d, ".example"));
    p->mailbox.push_back(absl::StrCat("user", i, "@d", d, ".example"));
    p->subscription.push_back(p->subs[d % nsubs]);
  }
  std::mt19937_64 rng(7);
  const size_t len = 1 << 20;
  p->sequence.resize(len);
  if (zipf) {
    std::vector<double> cdf(n);
    double sum = 0;
    for (int i = 0; i < n; ++i) cdf[i] = (sum += 1.0 / (i + 1));
    std::uniform_real_distribution<double> u(0, sum);
    for (auto& s : p->sequence) {
      s = static_cast<uint32_t>(std::lower_bound(cdf.begin(), cdf.end(), u(rng)) - cdf.begin());
    }
  } else {
    for (auto& s : p->sequence) s = static_cast<uint32_t>(rng() % n);
  }
  return *p;
}

// Writes decimal v at p; returns the end.
char* PutNum(char* p, uint32_t v) {
  char tmp[10];
  int n = 0;
  do {
    tmp[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  while (n > 0) *p++ = tmp[--n];
  return p;
}

char* Put(char* p, const char* s) {
  while (*s) *p++ = *s++;
  return p;
}

// Formats the names of mailbox `who` into small buffers, as an MTA has them
// fresh in cache: "userN@dM.example", "dM.example", "subK".
struct Names {
  char mailbox_buf[48], domain_buf[32], sub_buf[24];
  absl::string_view mailbox, domain, subscription;
  void Format(const Population& p, uint32_t who, bool all) {
    uint32_t ndomains = static_cast<uint32_t>(std::max(1, p.n / kMailboxesPerDomain));
    uint32_t d = who % ndomains;
    char* m = PutNum(Put(mailbox_buf, "user"), who);
    *m++ = '@';
    char* dom = m;
    m = Put(PutNum(Put(m, "d"), d), ".example");
    mailbox = absl::string_view(mailbox_buf, m - mailbox_buf);
    if (!all) return;
    domain = absl::string_view(dom, m - dom);
    char* s = PutNum(Put(sub_buf, "sub"), d % static_cast<uint32_t>(p.subs.size()));
    subscription = absl::string_view(sub_buf, s - sub_buf);
  }
};

// ---- sluice ----------------------------------------------------------------

// The hosting panel's directory: "dN.example" -> "sub(N % nsubs)", plan "p".
class Directory : public sluice::PathResolver {
 public:
  explicit Directory(const Population& p) : p_(p) {}
  Path Resolve(absl::string_view domain) noexcept override {
    uint32_t d = 0;
    size_t dot = domain.find('.');
    if (domain.size() < 2 || dot == absl::string_view::npos ||
        !absl::SimpleAtoi(domain.substr(1, dot - 1), &d)) {
      return {};
    }
    return {p_.subs[d % p_.subs.size()], "p"};
  }

 private:
  const Population& p_;
};

struct SluiceFixture {
  std::unique_ptr<Directory> dir;
  std::unique_ptr<sluice::Limiter> limiter;
};

SluiceFixture& GetSluice(int n, bool zipf, bool lease) {
  static std::mutex mu;
  static std::unordered_map<int, std::unique_ptr<SluiceFixture>> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto& f = cache[n * 4 + (zipf ? 1 : 0) + (lease ? 2 : 0)];
  if (f) return *f;
  f = std::make_unique<SluiceFixture>();
  const Population& p = GetPopulation(n, zipf);
  f->dir = std::make_unique<Directory>(p);
  std::string text;
  for (const char* level : {"server", "plan", "subscription", "domain", "mailbox"}) {
    absl::StrAppend(&text, "level { name: \"", level, "\" limit { window: \"1h\" max: ", kHuge,
                    " } }\n");
  }
  absl::StrAppend(&text, "entity { level: \"plan\" name: \"p\" }\n");
  auto c = sluice::ParseConfigText(text);
  if (!c.ok()) std::abort();
  sluice::Limiter::Options o;
  o.resolver = f->dir.get();
  o.lease = lease;
  o.table.capacity = n >= 1000000 ? (4u << 20) : 8192;
  o.table.max_probe = 64;
  auto l = sluice::Limiter::Create(*c, kT0, o);
  if (!l.ok()) std::abort();
  f->limiter = std::move(*l);
  return *f;
}

void BM_Sluice(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  const bool zipf = state.range(1) != 0;
  const bool lease = state.range(2) != 0;
  const Population& p = GetPopulation(n, zipf);
  sluice::Limiter& l = *GetSluice(n, zipf, lease).limiter;
  size_t i = static_cast<size_t>(state.thread_index()) * 7919;
  uint64_t denied = 0;
  sluice::Request r;
  Names names;
  for (auto _ : state) {
    uint32_t who = p.sequence[i++ & (p.sequence.size() - 1)];
    names.Format(p, who, false);
    r.sender = names.mailbox;
    // Time moves one millisecond per 64 messages.
    absl::Time now = kT0 + absl::Milliseconds(static_cast<int64_t>(i >> 6));
    sluice::Decision d = l.CheckAndCharge(r, now);
    denied += !d.admitted();
  }
  state.counters["denied"] = static_cast<double>(denied);
  state.SetItemsProcessed(state.iterations());
}

// ---- Baseline 1: one global std::mutex + std::unordered_map ----------------

struct FixedWindow {
  int64_t window = -1;
  uint64_t count = 0;
};

struct GlobalMutexLimiter {
  std::mutex mu;
  std::unordered_map<std::string, FixedWindow> counters;
  bool Charge(const std::string* keys[5], int64_t window) {
    std::lock_guard<std::mutex> lock(mu);
    FixedWindow* c[5];
    for (int k = 0; k < 5; ++k) {
      c[k] = &counters[*keys[k]];
      if (c[k]->window != window) {
        c[k]->window = window;
        c[k]->count = 0;
      }
      if (c[k]->count + 1 > kHuge) return false;
    }
    for (int k = 0; k < 5; ++k) c[k]->count++;
    return true;
  }
};

// ---- Baseline 2: 64 shards of absl::Mutex + absl::flat_hash_map -------------

struct ShardedLimiter {
  struct alignas(64) Shard {
    absl::Mutex mu;
    absl::flat_hash_map<std::string, FixedWindow> counters;
  };
  Shard shards[64];
  bool Charge(const std::string* keys[5], int64_t window) {
    int idx[5];
    for (int k = 0; k < 5; ++k) idx[k] = static_cast<int>(std::hash<std::string>()(*keys[k]) & 63);
    int order[5];
    int m = 0;
    for (int k = 0; k < 5; ++k) {
      bool seen = false;
      for (int j = 0; j < m; ++j) seen |= order[j] == idx[k];
      if (!seen) order[m++] = idx[k];
    }
    std::sort(order, order + m);
    for (int j = 0; j < m; ++j) shards[order[j]].mu.Lock();
    // Insert first, then take pointers: an insert may move other entries.
    for (int k = 0; k < 5; ++k) shards[idx[k]].counters.try_emplace(*keys[k]);
    FixedWindow* c[5];
    bool ok = true;
    for (int k = 0; k < 5 && ok; ++k) {
      c[k] = &shards[idx[k]].counters.find(*keys[k])->second;
      if (c[k]->window != window) {
        c[k]->window = window;
        c[k]->count = 0;
      }
      ok = c[k]->count + 1 <= kHuge;
    }
    if (ok) {
      for (int k = 0; k < 5; ++k) c[k]->count++;
    }
    for (int j = m - 1; j >= 0; --j) shards[order[j]].mu.Unlock();
    return ok;
  }
};

template <typename L>
L& GetBaseline(int n, bool zipf) {
  static std::mutex mu;
  static std::unordered_map<int, std::unique_ptr<L>> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto& l = cache[n * 2 + (zipf ? 1 : 0)];
  if (!l) l = std::make_unique<L>();
  return *l;
}

template <typename L>
void BM_Baseline(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  const bool zipf = state.range(1) != 0;
  const Population& p = GetPopulation(n, zipf);
  L& l = GetBaseline<L>(n, zipf);
  static const std::string server = "server", plan = "p";
  size_t i = static_cast<size_t>(state.thread_index()) * 7919;
  uint64_t denied = 0;
  Names names;
  std::string mailbox, domain, subscription;  // the maps' key type
  for (auto _ : state) {
    uint32_t who = p.sequence[i++ & (p.sequence.size() - 1)];
    names.Format(p, who, true);
    mailbox.assign(names.mailbox.data(), names.mailbox.size());
    domain.assign(names.domain.data(), names.domain.size());
    subscription.assign(names.subscription.data(), names.subscription.size());
    const std::string* keys[5] = {&server, &plan, &subscription, &domain, &mailbox};
    denied += !l.Charge(keys, static_cast<int64_t>(i >> 6) / 3600000);
  }
  state.counters["denied"] = static_cast<double>(denied);
  state.SetItemsProcessed(state.iterations());
}

// The harness alone (pick a mailbox, format its names, compute the time):
// subtract it from the rows above for the cost of the limiters themselves.
void BM_Harness(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  const bool zipf = state.range(1) != 0;
  const Population& p = GetPopulation(n, zipf);
  size_t i = static_cast<size_t>(state.thread_index()) * 7919;
  Names names;
  for (auto _ : state) {
    uint32_t who = p.sequence[i++ & (p.sequence.size() - 1)];
    names.Format(p, who, false);
    absl::Time now = kT0 + absl::Milliseconds(static_cast<int64_t>(i >> 6));
    benchmark::DoNotOptimize(names.mailbox.data());
    benchmark::DoNotOptimize(now);
  }
  state.SetItemsProcessed(state.iterations());
}

void Args(benchmark::internal::Benchmark* b) {
  b->Args({1000, 1})->Args({1000000, 0})->Threads(1)->Threads(2)->UseRealTime();
}

// Third argument: per-thread leases on (1) or off (0).
void SluiceArgs(benchmark::internal::Benchmark* b) {
  b->Args({1000, 1, 1})->Args({1000000, 0, 1})->Args({1000, 1, 0})->Args({1000000, 0, 0});
  b->Threads(1)->Threads(2)->UseRealTime();
}

BENCHMARK(BM_Harness)->Args({1000, 1})->Args({1000000, 0});
BENCHMARK(BM_Sluice)->Apply(SluiceArgs);
BENCHMARK_TEMPLATE(BM_Baseline, GlobalMutexLimiter)->Apply(Args);
BENCHMARK_TEMPLATE(BM_Baseline, ShardedLimiter)->Apply(Args);

}  // namespace

int main(int argc, char** argv) {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
