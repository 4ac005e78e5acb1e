// Test helpers shared by ratelimit's tests (not part of the library).
//
// Thread safety: the functions are thread-safe; what they return is not
// shared.
#ifndef SLUICE_RATELIMIT_TESTING_H_
#define SLUICE_RATELIMIT_TESTING_H_

#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "ratelimit/config.h"
#include "ratelimit/internal/slot.h"
#include "ratelimit/limiter.h"

namespace sluice {
namespace testing {

// 2026-01-01 00:00 UTC: the fake "now" of the tests.
inline const absl::Time kT0 = absl::FromUnixSeconds(1767225600);

// Returns a fresh path in the test's temporary directory (the file is
// removed if it exists).
inline std::string TempPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  std::string p = std::string(dir ? dir : "/tmp") + "/" + name;
  unlink(p.c_str());
  return p;
}

// Returns an empty slot that owns key 1.
inline std::unique_ptr<internal::Slot> NewSlot() {
  auto s = std::make_unique<internal::Slot>();
  s->key.store(1);
  s->head.store(0);
  for (auto& h : s->hist) h.store(0);
  return s;
}

// Builds a limiter from config text on a small table (4,096 counters unless
// `o` asks for another size; in memory, or in the file `path`). Fails the
// test on error.
inline std::unique_ptr<Limiter> MakeLimiter(absl::string_view text, const std::string& path = "",
                                            Limiter::Options o = {}) {
  auto c = ParseConfigText(text, "test.conf");
  EXPECT_TRUE(c.ok()) << c.status();
  if (!c.ok()) return nullptr;
  if (o.table.capacity == CounterTable::Options().capacity) o.table.capacity = 4096;
  o.table.path = path;
  auto l = Limiter::Create(*c, kT0, o);
  EXPECT_TRUE(l.ok()) << l.status();
  return l.ok() ? std::move(*l) : nullptr;
}

}  // namespace testing
}  // namespace sluice

#endif  // SLUICE_RATELIMIT_TESTING_H_
