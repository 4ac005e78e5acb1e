// Limiter: hierarchical, all-or-nothing outgoing limits.
//
// A message's path runs server > plan > subscription > domain > mailbox
// (the configured subset), plus extra dimensions (client IP, SASL user,
// originating script, list address). The mailbox is the envelope sender;
// its domain comes from the address; domain > subscription > plan come from
// the config's entity directory (`parent`) or from a PathResolver the host
// supplies. Every level on the path has a resolved set of rules (metric x
// window x algorithm): the level's defaults, overridden by `applies_to`
// limits of the entity's ancestors (farthest first) and by the entity's own.
//
// CheckAndCharge admits a message only if every rule on the path has room,
// and then charges them all, with a lock-free check-and-add per counter; if
// one has no room, the ones already charged are taken back. A new path is
// charged least specific first (so a mailbox counter's fetch from memory
// overlaps the work on its ancestors); if anything trips, it is all taken
// back and tried again most specific first (mailbox before server), and
// that order decides which rule a refusal names. No counter ever exceeds its
// limit, however many threads and processes share the table. A concurrent
// request may see a transient charge that is then taken back (a spurious
// defer is possible at the very edge of a limit; an overshoot is not).
//
// Reserve / Commit / Release implement the SMTP transaction: recipients are
// reserved at RCPT (keyed by transaction id and recipient, idempotent),
// bytes are charged at end-of-data by Commit, Release returns everything.
//
// Thread safety: all public methods are thread-safe. CheckAndCharge,
// Reserve and Commit are the hot paths: CheckAndCharge takes no lock and
// allocates nothing (except to record a name the first time an entity is
// seen and when a trip event is emitted); Reserve/Commit/Release lock one
// shard of the transaction map.
#ifndef SLUICE_RATELIMIT_LIMITER_H_
#define SLUICE_RATELIMIT_LIMITER_H_

#include <atomic>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "ratelimit/config.h"
#include "ratelimit/config.pb.h"
#include "ratelimit/counter_table.h"
#include "ratelimit/event_sinks.h"
#include "ratelimit/gcra.h"
#include "ratelimit/sharded.h"
#include "ratelimit/sliding_window.h"
#include "ratelimit/types.h"
#include "ratelimit/versions.h"

namespace sluice {

namespace internal {
struct LeaseEntry;
struct PathCacheEntry;
}  // namespace internal

// One message (or one recipient, with Reserve). Strings are only read during
// the call.
struct Request {
  absl::string_view sender;     // envelope sender: the mailbox
  absl::string_view sasl_user;  // empty if not authenticated
  absl::string_view client_ip;  // textual IPv4 or IPv6 address, may be empty
  absl::string_view script;     // X-PHP-Originating-Script or similar
  absl::string_view list;       // mailing list address
  // Mail from the internet to local users: only the client-IP level counts
  // it (never the server, a plan, subscription, domain or mailbox, nor the
  // SASL, script or list dimensions), and sender and SASL exemptions do not
  // apply to it, whatever the other fields say (the sender is forgeable).
  bool inbound = false;
  // Only the script and list dimensions count this request: what a door
  // learns from the headers after RCPT, charged at the end of the message
  // (Commit does it for a transaction whose request names them).
  bool late_dimensions = false;
  uint64_t messages = 1;
  uint64_t recipients = 1;
  uint64_t bytes = 0;  // 0 = unknown yet (bytes rules skipped)
};

// The answer. Small and self-contained (no pointers into the request).
struct Decision {
  Action action = Action::kAccept;
  bool exempt = false;                     // matched an exemption; nothing was counted
  bool shadow = false;                     // a shadow or NOTIFY rule tripped; mail passes
  bool overflow = false;                   // the tripped counter is the level's shared
                                           // overflow bucket (the table is full)
  bool oversized = false;                  // the request alone is more than the rule
                                           // ever admits (over a window's limit or a
                                           // GCRA burst): it can never pass, so a
                                           // DEFER rule refuses permanently (5xx)
  Action shadow_action = Action::kAccept;  // what that rule would have done
  Level level = Level::kServer;            // level that tripped (if any)
  Metric metric = Metric::kMessages;
  int64_t window_seconds = 0;
  uint64_t limit = 0;
  uint64_t usage = 0;      // usage of the tripped counter
  uint64_t requested = 0;  // what the request asked of it (messages, recipients, bytes)
  // When the same request would pass if nothing else were charged
  // meanwhile: for a sliding window, the sub-bucket boundary at which enough
  // of the window has left (exact to the boundary; up to W + W/6 for counts
  // made just now); for GCRA, exact. InfiniteDuration when it never passes
  // (a limit of 0, or `oversized`).
  absl::Duration retry_after = absl::ZeroDuration();
  int smtp_code = 250;
  const char* enhanced_status = "2.0.0";
  const char* text = "";  // the rule's text (lives as long as the process)
  char entity[256];       // tripped entity, NUL-terminated, truncated

  Decision() { entity[0] = 0; }

  // Copies `name` into `entity`, cut to fit.
  void SetEntity(absl::string_view name) {
    const size_t n = name.size() < sizeof(entity) - 1 ? name.size() : sizeof(entity) - 1;
    if (n > 0) std::memcpy(entity, name.data(), n);
    entity[n] = 0;
  }

  // True if the message may go (accept, or a shadow/notify trip).
  bool admitted() const { return action == Action::kAccept || action == Action::kNotify; }
  bool tripped() const { return !admitted() || shadow; }
};

// A trip of a rule, delivered to event sinks at most once per entity, rule
// and window.
struct Event {
  absl::Time time;
  Level level;
  std::string entity;
  Metric metric;
  int64_t window_seconds;
  uint64_t limit;
  uint64_t usage;
  Action action;  // the rule's action
  bool shadow;
};

// Host-supplied directory: the subscription and plan of a domain. Called on
// the hot path for domains the config does not list. The returned views
// must stay valid until the next call from the same thread.
class PathResolver {
 public:
  struct Path {
    absl::string_view subscription;
    absl::string_view plan;
  };
  virtual ~PathResolver() = default;
  virtual Path Resolve(absl::string_view domain) noexcept = 0;
};

// Limits shared with other hosts (ratelimit/cluster/cluster_sync.h): the
// limiter asks after a shared rule's own counter admitted a request, and
// refuses if the shared view has no room. Admit and Refund are hot paths:
// noexcept, lock-free, no I/O.
class SharedLimits {
 public:
  struct Key {
    uint64_t hash;  // identifies (level, entity, metric, window)
    Level level;
    absl::string_view entity;
    Metric metric;
    int64_t window_s;
    uint32_t sub_s;
    uint64_t limit;
  };
  virtual ~SharedLimits() = default;
  // Admits n units; `local_usage` is this host's own window with n in it.
  // Returns a token for Refund, 0 if refused. Thread-safe.
  virtual uint64_t Admit(const Key& key, uint64_t n, uint64_t local_usage,
                         absl::Time now) noexcept = 0;
  // Takes back an admission (another rule refused). Thread-safe.
  virtual void Refund(uint64_t token, uint64_t n) noexcept = 0;
  // The global usage at the last sync (0 if the counter is unknown here).
  // Thread-safe.
  virtual uint64_t GlobalUsage(const Key& key) const noexcept = 0;
};

class Limiter {
 public:
  struct Options {
    PathResolver* resolver = nullptr;  // not owned; may be null
    // Limits shared with other hosts (not owned; outlives the limiter):
    // the rules of the config's `cluster.shared_level` levels (sliding
    // windows, hard rules) are checked against it as well. Null: none.
    SharedLimits* shared = nullptr;
    // Names kept for reports (top senders). Bounded; beyond it new entities
    // are counted but not listed. The memory cap (config table
    // max_memory_bytes) also bounds it: 1/8 of the cap goes to names.
    size_t max_names = 1 << 16;
    // Overrides config.table (e.g. tests). Empty path = use config's.
    CounterTable::Options table;
    bool table_from_config = true;
    // Per-thread leases on counters with large limits (>= 4096; for GCRA,
    // bursts >= 4096): while a counter is below half its limit (a GCRA
    // arrival time less than half its tolerance ahead), a thread takes up to
    // 64 units with one CAS and spends them locally (a GCRA lease within
    // about a second). Never overshoots. Reports (Usage,
    // Top, explain) leave out the units this process's threads hold, so
    // they show admitted counts. Leases go back when a thread ends, when the
    // Limiter is destroyed (the destroying thread's; stop other threads
    // first, as a daemon does), on Reload (the reloading thread's), and when
    // an entry is reused. A process killed with -9 leaves at most 64 units
    // per thread and busy counter counted until they leave the window
    // (limiter_lease_test). Short-lived processes (a process per message or
    // connection: Exim, a forking C ABI caller) should set lease = false.
    bool lease = true;
    // Open transactions kept (memory bound: about 1 KB each). Beyond it the
    // oldest one of a shard is ended with its reservations kept counted, as
    // ExpireTransactions(keep) does: an MTA that never reports a
    // transaction's end (RCPT-only policy checks) cannot grow memory.
    size_t max_transactions = 1 << 16;
    // Recipients one transaction may reserve; Reserve refuses more with
    // 452 4.5.3 (as Postfix's smtpd_recipient_limit). 0 = no cap.
    size_t max_recipients = 1000;
    // With a file-backed table: keep the names for reports in TABLE.names
    // (written by Maintain when new ones were seen, and at destruction;
    // read by Create), so `top` names the senders counted before a restart
    // or a crash. For one long-lived process per table (a daemon); an
    // unreadable names file is ignored (names are a convenience).
    bool save_names = false;
  };

  // Builds a limiter and opens (or creates) its counter table.
  static absl::StatusOr<std::unique_ptr<Limiter>> Create(const config::Config& config,
                                                         absl::Time now, Options options);
  static absl::StatusOr<std::unique_ptr<Limiter>> Create(const config::Config& config,
                                                         absl::Time now) {
    return Create(config, now, Options());
  }
  ~Limiter();

  // Checks every rule on the request's path and charges all of them, or
  // none. Thread-safe, lock-free.
  Decision CheckAndCharge(const Request& request, absl::Time now) noexcept;

  // Reserves one item (e.g. a recipient) of transaction `txn`: the first
  // item charges messages=request.messages, every item recipients=
  // request.recipients. Repeating an item returns the earlier decision and
  // charges nothing. Thread-safe.
  Decision Reserve(absl::string_view txn, absl::string_view item, const Request& request,
                   absl::Time now);
  // Makes a transaction's reservations final and charges `bytes` (checked
  // against bytes rules). If bytes do not fit, everything is released and
  // the decision says why. Unknown or already committed txn: accept, no-op.
  //
  // A transaction that is no longer open (it expired or was evicted with
  // its reservations kept counted, or it was never reserved: an MTA that
  // asks only at the end) is still charged when `request` is given: its
  // bytes, and for one never seen also its message and
  // request->recipients (0: unknown, counted as one). One already committed or released: no-op, so
  // a repeated end-of-message charges nothing twice.
  //
  // For an open transaction, a nonzero request->recipients is how many
  // recipients the MTA finally accepted (Postfix's recipient_count): the
  // reservations of recipients beyond it (refused by a later restriction)
  // are given back before the bytes are charged. A script or list in
  // request that the reservations did not name (learnt from the headers)
  // is charged now, all or nothing with the rest.
  Decision Commit(absl::string_view txn, uint64_t bytes, absl::Time now,
                  const Request* request = nullptr);
  // Gives back everything a transaction reserved. Idempotent. Thread-safe.
  void Release(absl::string_view txn, absl::Time now);
  // Ends transactions older than max_age; returns how many. Their charges
  // are given back, or with `keep` stay counted (as if committed without
  // bytes: for MTAs that never say when a transaction ends).
  int ExpireTransactions(absl::Time now, absl::Duration max_age, bool keep = false);
  size_t open_transactions() const;

  // Swaps in a new config. Counters of (level, entity, metric, window) that
  // still exist keep their counts. A config that asks for a different table
  // is refused; the running config stays. Thread-safe.
  absl::Status Reload(const config::Config& config);

  // Registers a sink for trip events (deduplicated per entity, rule, window).
  void AddEventSink(std::function<void(const Event&)> sink);

  // Reports (not hot paths).
  config::UsageReport Usage(Level level, absl::string_view entity, absl::Time now) const;
  // Usage for a sender's whole path (every level it is charged on).
  config::UsageReport UsageForRequest(const Request& request, absl::Time now) const;
  // One entity of a request's path: its level and name.
  using PathEntity = std::pair<Level, absl::string_view>;
  // Calls f once with every entity of a request's path, levels without
  // rules included: the chain from the server down, then the extra
  // dimensions (for activity reports; exemptions are not asked). The
  // names are valid during the call. Thread-safe; not a hot path.
  void WithPath(const Request& request,
                absl::FunctionRef<void(absl::Span<const PathEntity>)> f) const;
  // Zeroes every counter of an entity at a level (a manual unblock).
  // Returns the number of counters reset. A charge racing with the reset
  // may survive it. Thread-safe.
  int Reset(Level level, absl::string_view entity);

  // The k entities of `level` with the highest usage of (metric, window),
  // highest first. window_seconds 0 = the level's first rule of that metric.
  config::TopReport Top(Level level, Metric metric, int64_t window_seconds, size_t k,
                        absl::Time now) const;

  // Whether `r` matches the config's exemptions (client CIDR, sender or
  // its @domain, SASL user): such mail is not counted, and adapters skip
  // the message-level abuse detectors for it too. Thread-safe.
  bool IsExempt(const Request& r) const noexcept;
  // Whether a client address is in the exempt CIDRs (a webmail or
  // application host that relays for many users): adapters do not count
  // per-address abuse signals (AUTH failures, blocks) for it. Thread-safe.
  bool IsExemptClient(absl::string_view ip) const noexcept;

  // Housekeeping to call periodically (e.g. hourly): resets counters whose
  // windows have expired (see CounterTable::Sweep), releases transactions
  // older than `max_txn_age`, with save_names saves new names, and frees
  // configs replaced by Reload more than a minute ago.
  // Returns slots reset. Thread-safe, but not to be called concurrently
  // with itself.
  uint64_t Maintain(absl::Time now, absl::Duration max_txn_age = absl::Hours(1));

  CounterTable& table() { return *table_; }
  const config::Config& config() const;

 private:
  struct Snapshot;
  struct Charge;
  struct ChargeList;
  struct Txn;
  struct TxnShard;
  size_t TxnShardCap() const;  // open (and remembered ended) transactions per shard
  Limiter() = default;
  static absl::StatusOr<std::unique_ptr<Snapshot>> Compile(const config::Config& c);
  struct PathEntry;
  // The rules (null if none) and hash of (level, entity name) in `out`.
  void EntityRules(const Snapshot& s, Level level, const std::string& name, PathEntry* out) const;
  // The entities of r's path that have rules, most specific first; with
  // `all_levels`, those without rules too (reports).
  int ResolvePath(const Snapshot& s, const Request& r, char* mailbox_buf, PathEntry* out,
                  bool all_levels = false) const noexcept;

  static bool Exempt(const Snapshot& s, const Request& r) noexcept;
  Decision Apply(const Snapshot& s, const Request& r, absl::Time now, ChargeList* charges,
                 bool count_messages) noexcept;
  // Apply's steps (limiter.cc).
  // Whether the thread's cached path admitted the request (kAdmitted),
  // refused it (kRefused: charged nothing; Apply decides) or is absent.
  enum class Fast { kMiss, kAdmitted, kRefused };
  void ApplyPath(const Snapshot& s, const Request& req, absl::Time now, ChargeList* charges,
                 bool count_messages, uint64_t req_key, Fast fast, Decision* d) noexcept;
  struct Pending;
  struct PassResult;
  struct Charging;
  const Request& AggregateClientIp(const Snapshot& s, const Request& r, char* ipbuf,
                                   Request* aggregated) const noexcept;
  int CollectRules(const PathEntry* path, int np, const Request& req, bool count_messages,
                   Pending* pending) const noexcept;
  void ChargeRules(const Snapshot& s, const Pending* pending, int n, ChargeList* charges,
                   Charging* c, bool reverse) noexcept;
  void Refuse(const Pending* pending, int n, const Charging& c, absl::Time now,
              Decision* d) noexcept;
  void RememberPath(const Snapshot& s, uint64_t req_key, int n, const Charging& c) noexcept;
  void ReportShadow(const Charging& c, absl::Time now, Decision* d) noexcept;
  // Takes back n charges (latest first); transactions pass all of theirs.
  void Undo(const Charge* charges, size_t n, absl::Time now) noexcept;
  // Asks options_.shared for every shared rule charged (after ChargeRules
  // admitted them all); on a refusal fills c->failed and returns false.
  bool AdmitShared(const Pending* pending, int n, absl::Time now, ChargeList* charges,
                   Charging* c) noexcept;
  Fast FastApply(const Snapshot& s, const Request& r, absl::Time now, ChargeList* charges,
                 bool count_messages, uint64_t key) noexcept;
  // FastApply past its first k counters (spent from leases), out of line;
  // `leases` is this thread's lease table.
  Fast FastApplyRest(internal::PathCacheEntry* ce, internal::LeaseEntry* leases, int k,
                     const uint64_t* amounts, int64_t since_us, absl::Time now,
                     ChargeList* charges) noexcept;
  // Charges one counter itself, no lease (limiter.cc says more).
  static SlidingWindow::Outcome ChargeDirect(internal::Slot* slot, uint64_t owner, const void* rule,
                                             uint32_t epoch, int64_t since_us, uint64_t amount,
                                             uint64_t* usage, Gcra::Result* gcra,
                                             Charge* charge) noexcept;
  // Whether a rule's counters take this thread's leases.
  bool TakesLeases(const void* rule) const noexcept;
  // Charges one counter, from this thread's lease when the rule takes
  // leases (limiter.cc says more).
  SlidingWindow::Outcome ChargeCounter(internal::Slot* slot, uint64_t owner, const void* rule,
                                       uint32_t epoch, int64_t since_us, uint64_t amount,
                                       uint64_t* usage, Gcra::Result* gcra,
                                       Charge* charge) noexcept;
  bool RenewLease(internal::LeaseEntry& l, internal::Slot* slot, uint64_t owner, const void* rule,
                  uint32_t epoch, int64_t since_us, uint64_t amount, uint64_t* usage,
                  Charge* charge, SlidingWindow::Outcome* out) noexcept;
  // Leases (limiter.cc): this thread's given back; another limiter's entry
  // given back before reuse; the units all threads of this process hold on
  // a counter at `epoch` (reports subtract them: they show admitted counts).
  void NewGeneration();  // takes a new generation_ (Create, Reload)
  void GiveBackLeases() noexcept;
  static void GiveBackOtherLease(internal::LeaseEntry* e) noexcept;
  uint64_t LeasedUnits(const internal::Slot* slot, uint32_t epoch) const;
  // A counter's admitted usage now (limiter_report.cc). `rule` is a Rule.
  uint64_t ReadUsage(const void* rule, uint64_t entity_hash, absl::Time now) const;
  // A shared rule's global usage into a report row.
  void FillShared(config::RuleUsage* u, const void* rule, uint64_t entity_hash,
                  absl::string_view entity) const;
  void RecordName(uint64_t entity_hash, Level level, absl::string_view name, Level anc_level,
                  absl::string_view anc_name) noexcept;
  // Calls make() and hands its Event to the sinks if this is the first trip
  // of `dedup_key` in its window (of `window_s` seconds, at `now`): a
  // refusal that repeats builds no event, and none is built without sinks.
  template <typename MakeEvent>
  void Emit(uint64_t dedup_key, absl::Time now, int64_t window_s, MakeEvent make) {
    if (events_.any() && events_.FirstInWindow(dedup_key, absl::ToUnixSeconds(now) / window_s)) {
      events_.Deliver(make());
    }
  }
  const Snapshot* current() const { return snapshots_.current(); }

  std::unique_ptr<CounterTable> table_;
  Options options_;
  // Tells this limiter's thread-local cache and lease entries apart; a
  // Reload takes a new one, so no thread spends a lease taken under the old
  // rules (it gives it back when it next meets it). Relaxed: each reader
  // only compares it with entries of its own thread.
  std::atomic<uint64_t> generation_{0};
  uint64_t Generation() const noexcept { return generation_.load(std::memory_order_relaxed); }
  // Every generation this limiter has had (under the lease registry's
  // mutex): its threads' leases of any of them are its own.
  std::vector<uint64_t> generations_;
  // The compiled config; a replaced one is freed kSnapshotGrace after a
  // Reload (no call holds one that long: none blocks), by Maintain or the
  // next Reload.
  Versions<const Snapshot> snapshots_;
  static constexpr absl::Duration kSnapshotGrace = absl::Seconds(60);
  std::mutex reload_mu_;  // one Reload at a time

  struct Names;
  std::unique_ptr<Names> names_;
  std::string names_path_;              // empty: names are not saved
  std::atomic<size_t> names_saved_{0};  // names_->size at the last save
  void LoadNames();
  void SaveNames();
  EventSinks<Event> events_;
  std::unique_ptr<Sharded<TxnShard>> txns_;
  uint64_t txn_seed_ = 0;  // seeds the hash that keys transactions and items (random)
  std::atomic<uint64_t> evicted_txns_{0};  // transactions evicted (statistics)
};

}  // namespace sluice

#endif  // SLUICE_RATELIMIT_LIMITER_H_
