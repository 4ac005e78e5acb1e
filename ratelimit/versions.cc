#include "ratelimit/versions.h"

#include <functional>
#include <thread>

namespace sluice {
namespace internal {

size_t ThisThreadShard() noexcept {
  static thread_local const size_t shard = std::hash<std::thread::id>()(std::this_thread::get_id());
  return shard;
}

}  // namespace internal
}  // namespace sluice
