// 5-level check-and-charge: sluice vs a global std::mutex + unordered_map
// baseline vs a 64-way sharded absl::Mutex + flat_hash_map baseline, in one
// run. Mailbox keys: 1K drawn from a Zipf(1.0) distribution (a hot set) and
// 1M drawn uniformly; 1 and 2 threads (and, for sluice alone, 10K drawn
// uniformly). Every message also hits the same server and plan counters
// (the shared hot lines of a real server).
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
// The same rows run for GCRA limits (every level a GCRA rule; the mutex
// baseline keeps a theoretical arrival time per key) and for a 3-level path
// (server, domain, mailbox).
//
// Run: bazel run --config=opt //benchmarks:limiter_benchmark
//
// Profile mode (benchmarks/limiter_profile.sh runs it under callgrind):
//   limiter_benchmark --profile=sluice|mutex [--n=1000] [--levels=5]
//                     [--gcra] [--no_lease] [--checks=200000]
// warms the limiter up with 2M checks, then runs `checks` more inside
// MeasuredChecks (the function callgrind's --toggle-collect names), and
// prints the hardware counters per check where perf_event_open has them.
#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
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
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "benchmark/benchmark.h"
#include "ratelimit/config.h"
#include "ratelimit/limiter.h"

namespace {

constexpr int kDomainsPerSub = 10;
constexpr int kMailboxesPerDomain = 10;
constexpr int64_t kT0Us = int64_t{1767225600} * 1000000;
const absl::Time kT0 = absl::FromUnixMicros(kT0Us);
constexpr uint64_t kHuge = 100000000000ull;  // limits that never trip
// GCRA rows: a burst whose tolerance (1,000 s of the benchmark's clock)
// covers how far two threads' clocks drift apart in a run (each thread's
// time follows its own message count), so those rows never trip either.
constexpr int64_t kGcraBurst = 1000000000;

struct Population {
  int n = 0;
  uint32_t ndomains = 1;
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
  p->ndomains = static_cast<uint32_t>(ndomains);
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

// Writes decimal v at p; returns the end. Two digits per step from a
// table: the harness should cost little next to what it measures.
char* PutNum(char* p, uint32_t v) {
  static const char kPairs[] =
      "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
      "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
      "8081828384858687888990919293949596979899";
  static const uint32_t kPow10[] = {1,      10,      100,      1000,      10000,
                                    100000, 1000000, 10000000, 100000000, 1000000000};
  // The digit count from the bit length (1233 / 4096 ~ log10(2)), no loop.
  const int lg = ((32 - __builtin_clz(v | 1)) * 1233) >> 12;
  const int digits = std::max(1, lg + (v >= kPow10[lg] ? 1 : 0));
  char* end = p + digits;
  char* t = end;
  while (v >= 100) {
    const uint32_t r = v % 100;
    v /= 100;
    t -= 2;
    std::memcpy(t, kPairs + 2 * r, 2);
  }
  if (v >= 10) {
    std::memcpy(t - 2, kPairs + 2 * v, 2);
  } else {
    t[-1] = static_cast<char>('0' + v);
  }
  return end;
}

template <size_t N>
char* Put(char* p, const char (&s)[N]) {
  std::memcpy(p, s, N - 1);
  return p + N - 1;
}

// Formats the names of mailbox `who` into small buffers, as an MTA has them
// fresh in cache: "userN@dM.example", "dM.example", "subK".
struct Names {
  char mailbox_buf[48], domain_buf[32], sub_buf[24];
  absl::string_view mailbox, domain, subscription;
  void Format(const Population& p, uint32_t who, bool all) {
    uint32_t d = who % p.ndomains;
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

// Each message's names, formatted one message ahead, as an MTA has parsed
// a sender well before it asks about it. Read right after they were
// written, the names would cost every row a stall no MTA pays: a load of
// bytes still in the store buffer, written in other widths (two-byte
// digits, an eight-byte view), cannot be forwarded and waits for them.
struct NamesAhead {
  Names buf[2];
  size_t ready = ~size_t{0};  // the message whose names buf holds next
  const Names& For(const Population& p, size_t i, bool all) {
    const size_t mask = p.sequence.size() - 1;
    if (ready != i) buf[i & 1].Format(p, p.sequence[i & mask], all);
    buf[(i + 1) & 1].Format(p, p.sequence[(i + 1) & mask], all);
    ready = i + 1;
    return buf[i & 1];
  }
};

// The shape of a row: how many levels a message is charged at (5: server,
// plan, subscription, domain, mailbox; 3: server, domain, mailbox) and
// which algorithm every level's rule uses.
struct Shape {
  int levels = 5;
  bool gcra = false;
  int Key() const { return levels * 2 + (gcra ? 1 : 0); }
};

// Time moves one millisecond per 64 messages.
// (Built from microseconds since the epoch: inline, where adding a
// Duration to a Time is a call into Abseil.)
inline int64_t MicrosOf(size_t i) { return kT0Us + static_cast<int64_t>(i >> 6) * 1000; }
inline absl::Time TimeOf(size_t i) { return absl::FromUnixMicros(MicrosOf(i)); }

// Where the next run's message numbers start: past every earlier run's, so
// time never goes back between runs and repetitions on one fixture (a GCRA
// counter whose theoretical arrival time is ahead of the clock refuses).
std::atomic<size_t> g_next_message{0};
size_t FirstMessage(const benchmark::State& state) {
  return g_next_message.load(std::memory_order_relaxed) +
         static_cast<size_t>(state.thread_index()) * 7919;
}
void RunEnded(size_t last_message) {
  size_t seen = g_next_message.load(std::memory_order_relaxed);
  while (seen < last_message + 1 &&
         !g_next_message.compare_exchange_weak(seen, last_message + 1, std::memory_order_relaxed)) {
  }
}

// ---- sluice ----------------------------------------------------------------

// The hosting panel's directory: "dN.example" -> "sub(N % nsubs)", plan "p".
class Directory : public sluice::PathResolver {
 public:
  explicit Directory(const Population& p) : p_(p) {}
  // "dN.example": N read in place (the baselines get the subscription from
  // the harness for free; a panel's lookup should not cost more than that).
  Path Resolve(absl::string_view domain) noexcept override {
    if (domain.size() < 2 || domain[0] != 'd') return {};
    uint32_t d = 0;
    size_t i = 1;
    for (; i < domain.size() && domain[i] >= '0' && domain[i] <= '9' && i < 11; ++i) {
      d = d * 10 + static_cast<uint32_t>(domain[i] - '0');
    }
    if (i == 1 || i >= domain.size() || domain[i] != '.') return {};
    return {p_.subs[d % p_.subs.size()], "p"};
  }

 private:
  const Population& p_;
};

struct SluiceFixture {
  std::unique_ptr<Directory> dir;
  std::unique_ptr<sluice::Limiter> limiter;
};

SluiceFixture& GetSluice(int n, bool zipf, bool lease, Shape shape) {
  static std::mutex mu;
  static std::unordered_map<int64_t, std::unique_ptr<SluiceFixture>> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto& f = cache[(int64_t{n} * 4 + (zipf ? 1 : 0) + (lease ? 2 : 0)) * 16 + shape.Key()];
  if (f) return *f;
  f = std::make_unique<SluiceFixture>();
  const Population& p = GetPopulation(n, zipf);
  f->dir = std::make_unique<Directory>(p);
  std::string text;
  std::vector<const char*> levels = {"server", "plan", "subscription", "domain", "mailbox"};
  if (shape.levels == 3) levels = {"server", "domain", "mailbox"};
  for (const char* level : levels) {
    if (shape.gcra) {
      absl::StrAppend(&text, "level { name: \"", level,
                      "\" limit { algorithm: GCRA window: \"1h\" max: ", kHuge,
                      " burst: ", kGcraBurst, " } }\n");
    } else {
      absl::StrAppend(&text, "level { name: \"", level, "\" limit { window: \"1h\" max: ", kHuge,
                      " } }\n");
    }
  }
  if (shape.levels == 5) absl::StrAppend(&text, "entity { level: \"plan\" name: \"p\" }\n");
  auto c = sluice::ParseConfigText(text);
  if (!c.ok()) std::abort();
  sluice::Limiter::Options o;
  o.resolver = f->dir.get();
  o.lease = lease;
  o.table.capacity = n > 4096 ? (4u << 20) : 8192;
  o.table.max_probe = 64;
  auto l = sluice::Limiter::Create(*c, kT0, o);
  if (!l.ok()) std::abort();
  f->limiter = std::move(*l);
  return *f;
}

// One check-and-charge of message i's sender; returns 1 if refused.
struct SluiceStep {
  const Population& p;
  sluice::Limiter& l;
  sluice::Request r;
  NamesAhead names;
  inline uint64_t operator()(size_t i) {
    r.sender = names.For(p, i, false).mailbox;
    return !l.CheckAndCharge(r, TimeOf(i)).admitted();
  }
};

void BM_Sluice(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  const bool zipf = state.range(1) != 0;
  const bool lease = state.range(2) != 0;
  const Shape shape{static_cast<int>(state.range(3)), state.range(4) != 0};
  const Population& p = GetPopulation(n, zipf);
  SluiceStep step{p, *GetSluice(n, zipf, lease, shape).limiter, {}, {}};
  size_t i = FirstMessage(state);
  uint64_t denied = 0;
  for (auto _ : state) denied += step(++i);
  RunEnded(i);
  state.counters["denied"] = static_cast<double>(denied);
  state.SetItemsProcessed(state.iterations());
}

// ---- Baseline 1: one global std::mutex + std::unordered_map ----------------

// A fixed-window counter, or (GCRA rows) a theoretical arrival time in
// microseconds with the emission interval and tolerance of sluice's rows.
struct Counter {
  int64_t window = -1;
  uint64_t count = 0;
  int64_t tat_us = 0;
};
constexpr int64_t kEmissionUs = 1;            // 1h / kHuge, at least 1 us
constexpr int64_t kToleranceUs = kGcraBurst;  // kEmissionUs * kGcraBurst

// Whether counter c has room at window `window` / time now_us, per shape.
inline bool Room(Counter* c, bool gcra, int64_t window, int64_t now_us) {
  if (gcra) {
    const int64_t tat = std::max(c->tat_us, now_us);
    return tat + kEmissionUs - kToleranceUs <= now_us;
  }
  if (c->window != window) {
    c->window = window;
    c->count = 0;
  }
  return c->count + 1 <= kHuge;
}
inline void Take(Counter* c, bool gcra, int64_t now_us) {
  if (gcra) {
    c->tat_us = std::max(c->tat_us, now_us) + kEmissionUs;
  } else {
    c->count++;
  }
}

struct GlobalMutexLimiter {
  std::mutex mu;
  std::unordered_map<std::string, Counter> counters;
  bool Charge(const std::string* const* keys, int nkeys, bool gcra, int64_t now_us) {
    const int64_t window = now_us / 3600000000;
    std::lock_guard<std::mutex> lock(mu);
    Counter* c[5];
    for (int k = 0; k < nkeys; ++k) {
      c[k] = &counters[*keys[k]];
      if (!Room(c[k], gcra, window, now_us)) return false;
    }
    for (int k = 0; k < nkeys; ++k) Take(c[k], gcra, now_us);
    return true;
  }
};

// ---- Baseline 2: 64 shards of absl::Mutex + absl::flat_hash_map -------------

struct ShardedLimiter {
  struct alignas(64) Shard {
    absl::Mutex mu;
    absl::flat_hash_map<std::string, Counter> counters;
  };
  Shard shards[64];
  bool Charge(const std::string* const* keys, int nkeys, bool gcra, int64_t now_us) {
    const int64_t window = now_us / 3600000000;
    int idx[5];
    for (int k = 0; k < nkeys; ++k) {
      idx[k] = static_cast<int>(std::hash<std::string>()(*keys[k]) & 63);
    }
    int order[5];
    int m = 0;
    for (int k = 0; k < nkeys; ++k) {
      bool seen = false;
      for (int j = 0; j < m; ++j) seen |= order[j] == idx[k];
      if (!seen) order[m++] = idx[k];
    }
    std::sort(order, order + m);
    for (int j = 0; j < m; ++j) shards[order[j]].mu.Lock();
    // Insert first, then take pointers: an insert may move other entries.
    for (int k = 0; k < nkeys; ++k) shards[idx[k]].counters.try_emplace(*keys[k]);
    Counter* c[5];
    bool ok = true;
    for (int k = 0; k < nkeys && ok; ++k) {
      c[k] = &shards[idx[k]].counters.find(*keys[k])->second;
      ok = Room(c[k], gcra, window, now_us);
    }
    if (ok) {
      for (int k = 0; k < nkeys; ++k) Take(c[k], gcra, now_us);
    }
    for (int j = m - 1; j >= 0; --j) shards[order[j]].mu.Unlock();
    return ok;
  }
};

template <typename L>
L& GetBaseline(int n, bool zipf, Shape shape) {
  static std::mutex mu;
  static std::unordered_map<int64_t, std::unique_ptr<L>> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto& l = cache[(int64_t{n} * 2 + (zipf ? 1 : 0)) * 16 + shape.Key()];
  if (!l) l = std::make_unique<L>();
  return *l;
}

// One charge of message i's path in a baseline; returns 1 if refused.
template <typename L>
struct BaselineStep {
  const Population& p;
  L& l;
  Shape shape;
  NamesAhead ahead;
  std::string mailbox, domain, subscription;  // the maps' key type
  inline uint64_t operator()(size_t i) {
    static const std::string server = "server", plan = "p";
    const Names& names = ahead.For(p, i, true);
    mailbox.assign(names.mailbox.data(), names.mailbox.size());
    domain.assign(names.domain.data(), names.domain.size());
    const int64_t now_us = MicrosOf(i);
    if (shape.levels == 3) {
      const std::string* keys[3] = {&server, &domain, &mailbox};
      return !l.Charge(keys, 3, shape.gcra, now_us);
    }
    subscription.assign(names.subscription.data(), names.subscription.size());
    const std::string* keys[5] = {&server, &plan, &subscription, &domain, &mailbox};
    return !l.Charge(keys, 5, shape.gcra, now_us);
  }
};

template <typename L>
void BM_Baseline(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  const bool zipf = state.range(1) != 0;
  const Shape shape{static_cast<int>(state.range(2)), state.range(3) != 0};
  const Population& p = GetPopulation(n, zipf);
  BaselineStep<L> step{p, GetBaseline<L>(n, zipf, shape), shape, {}, {}, {}, {}};
  size_t i = FirstMessage(state);
  uint64_t denied = 0;
  for (auto _ : state) denied += step(++i);
  RunEnded(i);
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
  NamesAhead ahead;
  for (auto _ : state) {
    ++i;
    const Names& names = ahead.For(p, i, false);
    absl::Time now = TimeOf(i);
    benchmark::DoNotOptimize(names.mailbox.data());
    benchmark::DoNotOptimize(now);
  }
  state.SetItemsProcessed(state.iterations());
}

// Rows: {mailboxes, zipf, levels, gcra}: the 1K hot set on 1 and 2
// threads, 1M mailboxes on 1 and 2; the 5-level sliding windows first,
// then GCRA and the 3-level path.
void Rows(benchmark::internal::Benchmark* b, bool with_lease) {
  for (int shape = 0; shape < 3; ++shape) {
    const int levels = shape == 2 ? 3 : 5;
    const int gcra = shape == 1 ? 1 : 0;
    for (int lease = with_lease ? 1 : 0; lease >= 0; --lease) {
      // Leases off: the 5-level sliding windows only (what a forking MTA runs).
      if (lease == 0 && with_lease && shape != 0) continue;
      std::vector<int64_t> hot = {1000, 1}, all = {1000000, 0};
      if (with_lease) {
        hot.push_back(lease);
        all.push_back(lease);
      }
      for (auto* a : {&hot, &all}) {
        a->push_back(levels);
        a->push_back(gcra);
        b->Args(*a);
      }
    }
  }
  b->Threads(1)->Threads(2)->UseRealTime();
}

BENCHMARK(BM_Harness)->Args({1000, 1})->Args({1000000, 0});
// 10K mailboxes drawn uniformly: too many for the thread's path cache, few
// enough that their counters stay in cache. What a check costs when its
// path is resolved and charged in full, without the DRAM of the 1M row.
BENCHMARK(BM_Sluice)->Args({10000, 0, 1, 5, 0})->Threads(1)->UseRealTime();
BENCHMARK(BM_Sluice)->Apply([](benchmark::internal::Benchmark* b) { Rows(b, true); });
BENCHMARK_TEMPLATE(BM_Baseline, GlobalMutexLimiter)->Apply([](benchmark::internal::Benchmark* b) {
  Rows(b, false);
});
BENCHMARK_TEMPLATE(BM_Baseline, ShardedLimiter)
    ->Args({1000, 1, 5, 0})
    ->Args({1000000, 0, 5, 0})
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();

// ---- Profile mode --------------------------------------------------------

// Hardware counters of this thread through perf_event_open, where the
// machine has them (many VMs do not: then available() is false).
class HardwareCounters {
 public:
  HardwareCounters() {
    const uint64_t configs[kN] = {PERF_COUNT_HW_INSTRUCTIONS, PERF_COUNT_HW_CPU_CYCLES,
                                  PERF_COUNT_HW_CACHE_MISSES, PERF_COUNT_HW_BRANCH_MISSES};
    for (int k = 0; k < kN; ++k) {
      perf_event_attr a;
      std::memset(&a, 0, sizeof(a));
      a.type = PERF_TYPE_HARDWARE;
      a.size = sizeof(a);
      a.config = configs[k];
      a.disabled = 1;
      a.exclude_kernel = 1;
      a.exclude_hv = 1;
      fd_[k] = static_cast<int>(syscall(SYS_perf_event_open, &a, 0, -1, -1, 0));
    }
  }
  ~HardwareCounters() {
    for (int fd : fd_) {
      if (fd >= 0) close(fd);
    }
  }
  bool available() const { return fd_[0] >= 0; }
  void Start() {
    for (int fd : fd_) {
      if (fd < 0) continue;
      ioctl(fd, PERF_EVENT_IOC_RESET, 0);
      ioctl(fd, PERF_EVENT_IOC_ENABLE, 0);
    }
  }
  void Stop() {
    for (int k = 0; k < kN; ++k) {
      value_[k] = -1;
      if (fd_[k] < 0) continue;
      ioctl(fd_[k], PERF_EVENT_IOC_DISABLE, 0);
      uint64_t v = 0;
      if (read(fd_[k], &v, sizeof(v)) == sizeof(v)) value_[k] = static_cast<int64_t>(v);
    }
  }
  // instructions, cycles, cache misses, branch misses (-1: not counted).
  int64_t value(int k) const { return value_[k]; }
  static constexpr int kN = 4;

 private:
  int fd_[kN];
  int64_t value_[kN] = {-1, -1, -1, -1};
};

// The measured part of a profile (callgrind: --toggle-collect='*MeasuredChecks*').
template <typename Step>
__attribute__((noinline)) uint64_t MeasuredChecks(Step& step, size_t from, size_t count) {
  uint64_t denied = 0;
  for (size_t i = from; i < from + count; ++i) denied += step(i);
  return denied;
}

template <typename Step>
int Profile(Step& step, const char* what, size_t checks) {
  const size_t warm = 2000000;
  uint64_t denied = 0;
  for (size_t i = 0; i < warm; ++i) denied += step(i);
  HardwareCounters hw;
  const auto start = std::chrono::steady_clock::now();
  hw.Start();
  denied += MeasuredChecks(step, warm, checks);
  hw.Stop();
  const double ns =
      std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
  std::printf("profile %s: %zu checks measured after %zu, %llu denied, %.1f ns per check\n", what,
              checks, warm, static_cast<unsigned long long>(denied), ns / checks);
  if (!hw.available()) {
    std::printf("hardware counters: not available on this machine (run under callgrind)\n");
    return 0;
  }
  const char* names[HardwareCounters::kN] = {"instructions", "cycles", "cache misses",
                                             "branch misses"};
  for (int k = 0; k < HardwareCounters::kN; ++k) {
    if (hw.value(k) < 0) {
      std::printf("%s per check: not counted\n", names[k]);
    } else {
      std::printf("%s per check: %.2f\n", names[k], static_cast<double>(hw.value(k)) / checks);
    }
  }
  return 0;
}

// Runs profile mode if argv asks for it; returns -1 otherwise.
int MaybeProfile(int argc, char** argv) {
  std::string kind;
  int n = 1000, levels = 5;
  bool gcra = false, lease = true;
  size_t checks = 200000;
  for (int k = 1; k < argc; ++k) {
    absl::string_view a = argv[k];
    if (absl::ConsumePrefix(&a, "--profile=")) {
      kind = std::string(a);
    } else if (absl::ConsumePrefix(&a, "--n=")) {
      if (!absl::SimpleAtoi(a, &n)) return 2;
    } else if (absl::ConsumePrefix(&a, "--levels=")) {
      if (!absl::SimpleAtoi(a, &levels) || (levels != 3 && levels != 5)) return 2;
    } else if (a == "--gcra") {
      gcra = true;
    } else if (a == "--no_lease") {
      lease = false;
    } else if (absl::ConsumePrefix(&a, "--checks=")) {
      if (!absl::SimpleAtoi(a, &checks)) return 2;
    }
  }
  if (kind.empty()) return -1;
  const bool zipf = n <= 1000;  // the 1K hot set; larger sets uniform
  const Shape shape{levels, gcra};
  const Population& p = GetPopulation(n, zipf);
  const std::string what = absl::StrCat(kind, " n=", n, " levels=", levels, gcra ? " gcra" : "",
                                        lease ? "" : " no_lease");
  if (kind == "sluice") {
    SluiceStep step{p, *GetSluice(n, zipf, lease, shape).limiter, {}, {}};
    return Profile(step, what.c_str(), checks);
  }
  if (kind == "mutex") {
    BaselineStep<GlobalMutexLimiter> step{
        p, GetBaseline<GlobalMutexLimiter>(n, zipf, shape), shape, {}, {}, {}, {}};
    return Profile(step, what.c_str(), checks);
  }
  std::fprintf(stderr, "--profile= sluice or mutex\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // The harness's number formatting against the library's, at every digit
  // count and its edges, before anything is measured with it.
  for (uint64_t p10 = 1; p10 <= 1000000000; p10 *= 10) {
    for (uint64_t v : {p10 - 1, p10, p10 + 1, p10 * 7 / 3}) {
      if (v > UINT32_MAX) continue;
      char buf[16];
      const std::string got(buf, PutNum(buf, static_cast<uint32_t>(v)));
      if (got != absl::StrCat(v)) {
        std::fprintf(stderr, "PutNum(%llu) wrote %s\n", static_cast<unsigned long long>(v),
                     got.c_str());
        return 1;
      }
    }
  }
  const int profiled = MaybeProfile(argc, argv);
  if (profiled >= 0) return profiled;
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
