#include "bindings/logs/log_follower.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "ratelimit/safe_file.h"

namespace sluice {

absl::StatusOr<std::unique_ptr<LogFollower>> LogFollower::Open(Options options) {
  if (options.path.empty()) return absl::InvalidArgumentError("follow-log: no path");
  if (options.max_line < 64) options.max_line = 64;
  std::unique_ptr<LogFollower> f(new LogFollower(std::move(options)));
  if (f->options_.path == "-") {
    f->fd_ = f->options_.stream_fd;
    f->stream_ = true;
    return f;
  }
  if (!f->Reopen(f->options_.from_start)) {
    if (errno != ENOENT) {
      return absl::InvalidArgumentError(
          absl::StrCat("follow-log: cannot read ", f->options_.path, ": ", std::strerror(errno)));
    }
  }
  return f;
}

LogFollower::~LogFollower() {
  if (fd_ >= 0 && !stream_) close(fd_);
}

// Opens the path; the position comes from the state file when it names
// this file, else the start (from_start) or the end.
bool LogFollower::Reopen(bool from_start) {
  const int fd = open(options_.path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return false;
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    errno = EINVAL;
    return false;
  }
  if (fd_ >= 0) close(fd_);
  fd_ = fd;
  dev_ = st.st_dev;
  ino_ = st.st_ino;
  offset_ = from_start ? 0 : static_cast<uint64_t>(st.st_size);
  if (!options_.state_path.empty()) {
    std::ifstream in(options_.state_path);
    unsigned long long dev = 0, ino = 0, off = 0;
    if (in >> dev >> ino >> off) {
      if (dev == st.st_dev && ino == st.st_ino && off <= static_cast<uint64_t>(st.st_size)) {
        offset_ = off;  // where we stopped
      } else if (dev != st.st_dev || ino != st.st_ino) {
        offset_ = 0;  // rotated while we were away: all of the new file is news
      }
    }
  }
  lseek(fd_, static_cast<off_t>(offset_), SEEK_SET);
  partial_.clear();
  tail_.clear();
  cutting_ = false;
  return true;
}

void LogFollower::Split(const char* data, size_t n,
                        const std::function<void(absl::string_view)>& line, size_t* count) {
  size_t start = 0;
  for (size_t i = 0; i < n; ++i) {
    if (data[i] != '\n') continue;
    absl::string_view piece(data + start, i - start);
    if (cutting_) {
      cutting_ = false;
    } else if (partial_.empty()) {
      if (piece.size() > options_.max_line) {
        piece = piece.substr(0, options_.max_line);
        cut_.fetch_add(1, std::memory_order_relaxed);
      }
      line(piece);
      ++*count;
    } else {
      partial_.append(piece.data(), piece.size());
      if (partial_.size() > options_.max_line) {
        partial_.resize(options_.max_line);
        cut_.fetch_add(1, std::memory_order_relaxed);
      }
      line(partial_);
      partial_.clear();
      ++*count;
    }
    start = i + 1;
  }
  if (start < n && !cutting_) {
    partial_.append(data + start, n - start);
    if (partial_.size() > options_.max_line) {  // cut: keep what fits, drop to the newline
      partial_.resize(options_.max_line);
      line(partial_);
      partial_.clear();
      ++*count;
      cut_.fetch_add(1, std::memory_order_relaxed);
      cutting_ = true;
    }
  }
}

size_t LogFollower::Drain(const std::function<void(absl::string_view)>& line) {
  size_t count = 0;
  char buf[65536];
  for (;;) {
    const ssize_t r = read(fd_, buf, sizeof(buf));
    if (r <= 0) break;
    offset_ += static_cast<uint64_t>(r);
    // The last bytes read: a file truncated and written past this point
    // again between two polls shows other bytes here.
    tail_.append(buf + (r > 64 ? r - 64 : 0), static_cast<size_t>(r > 64 ? 64 : r));
    if (tail_.size() > 64) tail_.erase(0, tail_.size() - 64);
    Split(buf, static_cast<size_t>(r), line, &count);
    if (stream_) break;  // what is there now; the next Poll waits again
  }
  lines_.fetch_add(count, std::memory_order_relaxed);
  return count;
}

size_t LogFollower::Poll(const std::function<void(absl::string_view)>& line, int wait_ms) {
  if (stream_) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, wait_ms) <= 0) return 0;
    return Drain(line);
  }
  if (fd_ < 0) {
    if (!Reopen(/*from_start=*/true)) return 0;  // a file that appears is all news
  }
  size_t count = Drain(line);
  struct stat now;
  if (stat(options_.path.c_str(), &now) != 0) return count;  // gone: keep the old one
  if (now.st_dev != dev_ || now.st_ino != ino_) {
    // Rotated: the old file was read to its end above; now the new one.
    if (Reopen(/*from_start=*/true)) {
      rotations_.fetch_add(1, std::memory_order_relaxed);
      count += Drain(line);
    }
    return count;
  }
  bool truncated = static_cast<uint64_t>(now.st_size) < offset_;
  if (!truncated && !tail_.empty() && offset_ >= tail_.size()) {
    std::string again(tail_.size(), '\0');
    const ssize_t r =
        pread(fd_, again.data(), again.size(), static_cast<off_t>(offset_ - tail_.size()));
    truncated = r != static_cast<ssize_t>(again.size()) || again != tail_;
  }
  if (truncated) {  // truncated in place (copytruncate)
    truncations_.fetch_add(1, std::memory_order_relaxed);
    lseek(fd_, 0, SEEK_SET);
    offset_ = 0;
    partial_.clear();
    tail_.clear();
    cutting_ = false;
    count += Drain(line);
  }
  return count;
}

absl::Status LogFollower::SaveState() const {
  if (stream_ || options_.state_path.empty() || fd_ < 0) return absl::OkStatus();
  // A line not yet ended is read again next time.
  const uint64_t at = offset_ - std::min<uint64_t>(offset_, partial_.size());
  return WriteFileAtomically(options_.state_path,
                             absl::StrCat(static_cast<unsigned long long>(dev_), " ",
                                          static_cast<unsigned long long>(ino_), " ", at, "\n"),
                             0600);
}

LogFollower::Stats LogFollower::stats() const {
  Stats s;
  s.lines = lines_.load(std::memory_order_relaxed);
  s.cut = cut_.load(std::memory_order_relaxed);
  s.rotations = rotations_.load(std::memory_order_relaxed);
  s.truncations = truncations_.load(std::memory_order_relaxed);
  return s;
}

}  // namespace sluice
