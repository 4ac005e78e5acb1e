#include "ratelimit/counter_table.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <random>
#include <string>

#include "gtest/gtest.h"
#include "ratelimit/sliding_window.h"
#include "ratelimit/testing.h"

namespace sluice {
namespace {

using internal::MakeKeyWord;
using internal::Slot;

using testing::kT0;

using testing::TempPath;

uint64_t H(int i) { return 0x9e3779b97f4a7c15ull * (i + 1); }

TEST(CounterTableTest, FindOrClaimIsStable) {
  CounterTable::Options o;
  o.capacity = 1024;
  auto t = CounterTable::Open(o, kT0);
  ASSERT_TRUE(t.ok()) << t.status();
  CounterTable::Placement how;
  Slot* a =
      (*t)->FindOrClaim(H(1), MakeKeyWord(H(1), 600), H(999), MakeKeyWord(H(999), 600), 0, &how);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(how, CounterTable::Placement::kClaimed);
  Slot* b =
      (*t)->FindOrClaim(H(1), MakeKeyWord(H(1), 600), H(999), MakeKeyWord(H(999), 600), 0, &how);
  EXPECT_EQ(a, b);
  EXPECT_EQ(how, CounterTable::Placement::kFound);
  EXPECT_EQ((*t)->Find(H(1), MakeKeyWord(H(1), 600)), a);
  EXPECT_EQ((*t)->Find(H(2), MakeKeyWord(H(2), 600)), nullptr);
}

TEST(CounterTableTest, CapacityFromMemoryCap) {
  CounterTable::Options o;
  o.max_memory_bytes = 8 << 20;
  auto t = CounterTable::Open(o, kT0);
  ASSERT_TRUE(t.ok());
  EXPECT_LE((*t)->mapped_bytes(), 8u << 20);
  EXPECT_GE((*t)->mapped_bytes(), 4u << 20);
}

TEST(CounterTableTest, FullTableSendsNewKeysToOverflowAndKeepsOldOnes) {
  CounterTable::Options o;
  o.capacity = 1024;
  o.max_probe = 8;
  auto t = CounterTable::Open(o, kT0);
  ASSERT_TRUE(t.ok());
  const uint64_t of = 0xabcdefull << 20;
  CounterTable::Placement how;
  int overflowed = 0;
  std::vector<Slot*> first(100);
  for (int i = 0; i < 5000; ++i) {
    Slot* s = (*t)->FindOrClaim(H(i), MakeKeyWord(H(i), 600), of, MakeKeyWord(of, 600), 0, &how);
    ASSERT_NE(s, nullptr);
    SlidingWindow::TryAdd(*s, 0, 1, 1000000);
    if (how == CounterTable::Placement::kOverflow) ++overflowed;
    if (i < 100) first[i] = s;
  }
  EXPECT_GT(overflowed, 3900);
  // Early keys are still tracked on their own.
  for (int i = 0; i < 100; ++i) {
    Slot* s = (*t)->FindOrClaim(H(i), MakeKeyWord(H(i), 600), of, MakeKeyWord(of, 600), 0, &how);
    EXPECT_EQ(s, first[i]);
    EXPECT_EQ(how, CounterTable::Placement::kFound);
  }
  // All overflowed keys share one counter.
  Slot* o1 =
      (*t)->FindOrClaim(H(90000), MakeKeyWord(H(90000), 600), of, MakeKeyWord(of, 600), 0, &how);
  EXPECT_EQ(how, CounterTable::Placement::kOverflow);
  EXPECT_EQ(SlidingWindow::Usage(*o1, 0), static_cast<uint64_t>(overflowed));
}

TEST(CounterTableTest, ExpiredSlotsAreReclaimed) {
  CounterTable::Options o;
  o.capacity = 1024;
  o.max_probe = 8;
  auto t = CounterTable::Open(o, kT0);
  ASSERT_TRUE(t.ok());
  const uint64_t of = 0x1234ull << 20;
  CounterTable::Placement how;
  for (int i = 0; i < 3000; ++i) {
    Slot* s = (*t)->FindOrClaim(H(i), MakeKeyWord(H(i), 10), of, MakeKeyWord(of, 10), 0, &how);
    SlidingWindow::TryAdd(*s, 0, 1, 100);
  }
  // 80 s later (window 60 s, sub-bucket 10 s) everything has expired.
  int64_t later = 80 * 1000;
  int reclaimed = 0;
  for (int i = 5000; i < 5900; ++i) {
    Slot* s = (*t)->FindOrClaim(H(i), MakeKeyWord(H(i), 10), of, MakeKeyWord(of, 10), later, &how);
    ASSERT_NE(how, CounterTable::Placement::kOverflow) << i;
    EXPECT_EQ(SlidingWindow::Usage(*s, SlidingWindow::EpochAt(later, 10)), 0u);
    reclaimed += how == CounterTable::Placement::kClaimed;
  }
  EXPECT_EQ(reclaimed, 900);
  EXPECT_GT((*t)->GetStats(kT0 + absl::Seconds(80)).reclaims, 0u);
}

TEST(CounterTableTest, SweepResetsExpiredSlotsBeforeEpochsWrap) {
  CounterTable::Options o;
  o.capacity = 1024;
  auto t = CounterTable::Open(o, kT0);
  ASSERT_TRUE(t.ok());
  CounterTable::Placement how;
  const uint64_t of = 1 << 20;
  // A 6-second window: 1-second sub-buckets, the fastest-wrapping case.
  Slot* s = (*t)->FindOrClaim(H(5), MakeKeyWord(H(5), 1), of, MakeKeyWord(of, 1), 0, &how);
  ASSERT_EQ(SlidingWindow::TryAdd(*s, 0, 5, 5).outcome, SlidingWindow::Outcome::kAdmitted);
  Slot* live = (*t)->FindOrClaim(H(6), MakeKeyWord(H(6), 1), of, MakeKeyWord(of, 1), 0, &how);
  ASSERT_EQ(SlidingWindow::TryAdd(*live, 99, 1, 5).outcome, SlidingWindow::Outcome::kAdmitted);
  // 2^25 seconds later the epoch wraps back to 0: unswept, the old count
  // would be read as current.
  const int64_t wrapped_ms = (int64_t{1} << SlidingWindow::kEpochBits) * 1000;
  EXPECT_EQ(SlidingWindow::Usage(*s, SlidingWindow::EpochAt(wrapped_ms, 1)), 5u);
  // A sweep at any time in between (here at 100 s) resets it; live slots stay.
  EXPECT_EQ((*t)->Sweep(kT0 + absl::Seconds(100)), 1u);
  EXPECT_EQ(SlidingWindow::Usage(*s, SlidingWindow::EpochAt(wrapped_ms, 1)), 0u);
  EXPECT_EQ(SlidingWindow::Usage(*live, 99), 1u);
  EXPECT_EQ((*t)->Find(H(5), MakeKeyWord(H(5), 1)), s);  // key kept
  EXPECT_EQ(SlidingWindow::TryAdd(*s, SlidingWindow::EpochAt(wrapped_ms, 1), 5, 5).outcome,
            SlidingWindow::Outcome::kAdmitted);
  // At the wrapped time the fresh count is current: nothing to reset.
  EXPECT_EQ((*t)->Sweep(kT0 + absl::Milliseconds(wrapped_ms)), 0u);
}

TEST(CounterTableTest, DeadSlotOfAKilledReclaimerIsRevived) {
  CounterTable::Options o;
  o.capacity = 1024;
  auto t = CounterTable::Open(o, kT0);
  CounterTable::Placement how;
  Slot* s =
      (*t)->FindOrClaim(H(7), MakeKeyWord(H(7), 600), 1 << 20, MakeKeyWord(1 << 20, 600), 0, &how);
  s->head.store(internal::kDeadHead);  // reclaimer died after step 1
  Slot* again =
      (*t)->FindOrClaim(H(7), MakeKeyWord(H(7), 600), 1 << 20, MakeKeyWord(1 << 20, 600), 0, &how);
  EXPECT_EQ(again, s);
  EXPECT_EQ(SlidingWindow::TryAdd(*s, 1, 1, 5).outcome, SlidingWindow::Outcome::kAdmitted);
}

TEST(CounterTableTest, FileTablePersistsAcrossReopen) {
  std::string path = TempPath("persist.tbl");
  CounterTable::Options o;
  o.capacity = 2048;
  o.path = path;
  Slot* s;
  CounterTable::Placement how;
  {
    auto t = CounterTable::Open(o, kT0);
    ASSERT_TRUE(t.ok()) << t.status();
    s = (*t)->FindOrClaim(H(3), MakeKeyWord(H(3), 600), 1 << 20, MakeKeyWord(1 << 20, 600), 0,
                          &how);
    SlidingWindow::TryAdd(*s, 0, 42, 100);
  }
  auto t = CounterTable::Open(o, kT0 + absl::Hours(5));  // base time stays
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ((*t)->base_time(), kT0);
  const Slot* r = (*t)->Find(H(3), MakeKeyWord(H(3), 600));
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(SlidingWindow::Usage(*r, 0), 42u);
}

// Resident size of the calling process in KiB (VmRSS).
long ResidentKiB() {
  FILE* f = fopen("/proc/self/status", "r");
  if (f == nullptr) return -1;
  char line[256];
  long kib = -1;
  while (fgets(line, sizeof(line), f) != nullptr) {
    if (sscanf(line, "VmRSS: %ld kB", &kib) == 1) break;
  }
  fclose(f);
  return kib;
}

TEST(CounterTableTest, PrefaultTouchesEveryPageAndChangesNothing) {
  // Anonymous: the whole table is resident right after Open.
  CounterTable::Options a;
  a.max_memory_bytes = 32ull << 20;
  a.prefault = true;
  const long before = ResidentKiB();
  auto anon = CounterTable::Open(a, kT0);
  ASSERT_TRUE(anon.ok()) << anon.status();
  const long mapped_kib = static_cast<long>((*anon)->mapped_bytes() / 1024);
  EXPECT_GE(mapped_kib, 8 * 1024);
  EXPECT_GE(ResidentKiB() - before, mapped_kib * 9 / 10);

  // A file table keeps its counts when reopened with prefault.
  CounterTable::Options o;
  o.capacity = 2048;
  o.path = TempPath("prefault.tbl");
  CounterTable::Placement how;
  {
    auto t = CounterTable::Open(o, kT0);
    ASSERT_TRUE(t.ok()) << t.status();
    Slot* s = (*t)->FindOrClaim(H(5), MakeKeyWord(H(5), 600), 1 << 20, MakeKeyWord(1 << 20, 600), 0,
                                &how);
    SlidingWindow::TryAdd(*s, 0, 7, 100);
  }
  o.prefault = true;
  auto t = CounterTable::Open(o, kT0);
  ASSERT_TRUE(t.ok()) << t.status();
  const Slot* r = (*t)->Find(H(5), MakeKeyWord(H(5), 600));
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(SlidingWindow::Usage(*r, 0), 7u);
}

void Corrupt(const std::string& path, off_t offset, const void* bytes, size_t n) {
  int fd = open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(pwrite(fd, bytes, n, offset), static_cast<ssize_t>(n));
  close(fd);
}

TEST(CounterTableTest, RefusesForeignCorruptAndMismatchedFiles) {
  std::string path = TempPath("bad.tbl");
  CounterTable::Options o;
  o.capacity = 1024;
  o.path = path;
  ASSERT_TRUE(CounterTable::Open(o, kT0).ok());

  // Another capacity in the config.
  CounterTable::Options bigger = o;
  bigger.capacity = 4096;
  auto r = CounterTable::Open(bigger, kT0);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("holds 1024 slots"), std::string::npos) << r.status();

  // Another format version (checksum would also fail; version is checked first).
  uint32_t v = 99;
  Corrupt(path, 8, &v, 4);
  r = CounterTable::Open(o, kT0);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("format version 99"), std::string::npos) << r.status();

  // Flipped header byte.
  v = CounterTable::kFormatVersion;
  Corrupt(path, 8, &v, 4);
  uint64_t cap = 2048;
  Corrupt(path, 16, &cap, 8);
  r = CounterTable::Open(o, kT0);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find("checksum"), std::string::npos) << r.status();

  // Not a table at all.
  Corrupt(path, 0, "GIF89a!!", 8);
  r = CounterTable::Open(o, kT0);
  EXPECT_NE(r.status().message().find("bad magic"), std::string::npos) << r.status();

  // Truncated.
  ASSERT_EQ(truncate(path.c_str(), 10), 0);
  r = CounterTable::Open(o, kT0);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
}

TEST(CounterTableTest, TruncatedSlotsAreRefused) {
  std::string path = TempPath("short.tbl");
  CounterTable::Options o;
  o.capacity = 1024;
  o.path = path;
  ASSERT_TRUE(CounterTable::Open(o, kT0).ok());
  ASSERT_EQ(truncate(path.c_str(), 8192), 0);
  auto r = CounterTable::Open(o, kT0);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find("does not match its header"), std::string::npos);
}

}  // namespace
}  // namespace sluice
