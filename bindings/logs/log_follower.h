// LogFollower: reads an MTA's log as it grows, line by line, the way
// `tail -F` does and then some:
//   - a file (/var/log/mail.log, Postfix's maillog_file): from where it
//     stopped last time when a state file says so (device, inode, offset),
//     else from its end (history is not news); after a rotation (the path
//     names another file) the old file is read to its end, then the new one
//     from its start; after a truncation (copytruncate: the file got
//     shorter than what was read, or the last bytes read are no longer
//     there) from its start again;
//   - a stream ("-": standard input, e.g. journalctl -f -o short-iso -u
//     postfix piped in).
// Lines longer than max_line are cut there (the rest is dropped up to the
// next newline) and counted; binary bytes pass through (the parser
// rejects what it does not understand).
//
// Thread safety: an object is for one thread (the daemon's follower
// thread); stats() is thread-safe.
#ifndef SLUICE_BINDINGS_LOGS_LOG_FOLLOWER_H_
#define SLUICE_BINDINGS_LOGS_LOG_FOLLOWER_H_

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace sluice {

class LogFollower {
 public:
  struct Options {
    std::string path;         // a file, or "-" for standard input
    int stream_fd = 0;        // the stream's descriptor when path is "-" (not owned)
    std::string state_path;   // where the position is kept ("": nowhere)
    bool from_start = false;  // without a saved position, read the file from its start
    size_t max_line = 16384;
  };
  struct Stats {
    uint64_t lines = 0;
    uint64_t cut = 0;  // lines longer than max_line
    uint64_t rotations = 0;
    uint64_t truncations = 0;
  };

  // Opens the file (it may not exist yet: it is opened when it appears).
  static absl::StatusOr<std::unique_ptr<LogFollower>> Open(Options options);
  ~LogFollower();

  // Calls `line` for every complete line that arrived since the last call
  // (without its newline), and returns how many. Never blocks for a file;
  // for a stream, waits at most `wait_ms` for data.
  size_t Poll(const std::function<void(absl::string_view)>& line, int wait_ms = 0);
  // Writes the position to the state file (atomically). Files only.
  absl::Status SaveState() const;

  Stats stats() const;

 private:
  explicit LogFollower(Options options) : options_(std::move(options)) {}
  bool Reopen(bool from_start);
  size_t Drain(const std::function<void(absl::string_view)>& line);
  void Split(const char* data, size_t n, const std::function<void(absl::string_view)>& line,
             size_t* count);

  const Options options_;
  int fd_ = -1;
  bool stream_ = false;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
  uint64_t offset_ = 0;   // bytes of the open file consumed
  std::string partial_;   // a line not yet ended
  std::string tail_;      // the last bytes read (at most 64): truncation shows there
  bool cutting_ = false;  // dropping the rest of an over-long line
  std::atomic<uint64_t> lines_{0}, cut_{0}, rotations_{0}, truncations_{0};
};

}  // namespace sluice

#endif  // SLUICE_BINDINGS_LOGS_LOG_FOLLOWER_H_
