#include "ratelimit/safe_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace sluice {

namespace {

absl::Status FromErrno(int err, absl::string_view what, const std::string& path) {
  const std::string msg = absl::StrCat(what, " ", path, ": ", std::strerror(err));
  if (err == ENOENT) return absl::NotFoundError(msg);
  if (err == EACCES || err == EPERM) return absl::PermissionDeniedError(msg);
  if (err == EISDIR || err == ENOTDIR || err == ELOOP) return absl::FailedPreconditionError(msg);
  if (err == ENOSPC || err == EDQUOT || err == ENOMEM) return absl::ResourceExhaustedError(msg);
  return absl::UnavailableError(msg);  // an I/O error
}

bool InGroup(gid_t gid) {
  if (gid == getegid()) return true;
  const int n = getgroups(0, nullptr);
  if (n <= 0) return false;
  std::vector<gid_t> groups(static_cast<size_t>(n));
  const int got = getgroups(n, groups.data());
  for (int i = 0; i < got; ++i) {
    if (groups[static_cast<size_t>(i)] == gid) return true;
  }
  return false;
}

// Why an open file must not be used, or OK.
absl::Status Check(int fd, const std::string& path) {
  struct stat st;
  if (fstat(fd, &st) != 0) return FromErrno(errno, "fstat", path);
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(path, ": not a regular file; refused"));
  }
  if (st.st_mode & S_IWOTH) {
    return absl::FailedPreconditionError(absl::StrCat(path, ": writable by others (mode ",
                                                      absl::Hex(st.st_mode & 07777), "); refused"));
  }
  if (st.st_uid != geteuid() && st.st_uid != 0) {
    return absl::FailedPreconditionError(absl::StrCat(path, ": owned by uid ", st.st_uid,
                                                      ", not by this process's user (uid ",
                                                      geteuid(), ") or root; refused"));
  }
  // Group-writable: a share the owner chose (ours), or one we are part of.
  if ((st.st_mode & S_IWGRP) && st.st_uid != geteuid() && !InGroup(st.st_gid)) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": writable by group ", st.st_gid,
                     ", which this process is not in; refused (chmod g-w, or run in that group)"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<int> OpenOwnFile(const std::string& path, int flags, mode_t mode) {
  const int fd = ::open(path.c_str(), flags | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) {
    const int err = errno;
    if (err == ELOOP) {
      return absl::FailedPreconditionError(
          absl::StrCat(path, ": is a symbolic link; refused (give the real path)"));
    }
    return FromErrno(err, "open", path);
  }
  if (absl::Status s = Check(fd, path); !s.ok()) {
    ::close(fd);
    return s;
  }
  return fd;
}

absl::Status WriteFileAtomically(const std::string& path, absl::string_view bytes, mode_t mode) {
  std::string tmpl = path + ".XXXXXX";
  const int fd = mkostemp(tmpl.data(), O_CLOEXEC);  // O_EXCL, mode 0600
  if (fd < 0) return FromErrno(errno, "create a file beside", path);
  size_t off = 0;
  while (off < bytes.size()) {
    const ssize_t w = ::write(fd, bytes.data() + off, bytes.size() - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    off += static_cast<size_t>(w);
  }
  const int err = errno;
  const bool ok = off == bytes.size() && fchmod(fd, mode) == 0;
  ::close(fd);
  if (!ok) {
    unlink(tmpl.c_str());
    return FromErrno(err, "write", tmpl);
  }
  if (std::rename(tmpl.c_str(), path.c_str()) != 0) {
    const int e = errno;
    unlink(tmpl.c_str());
    return FromErrno(e, "rename onto", path);
  }
  return absl::OkStatus();
}

absl::StatusOr<int> LockFile(const std::string& path) {
  auto fd = OpenOwnFile(path, O_RDWR | O_CREAT, 0600);
  if (!fd.ok()) return fd.status();
  if (flock(*fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    char buf[32] = {0};
    const ssize_t n = pread(*fd, buf, sizeof(buf) - 1, 0);
    ::close(*fd);
    if (err != EWOULDBLOCK) return FromErrno(err, "flock", path);
    int64_t pid = 0;
    const bool known =
        n > 0 && absl::SimpleAtoi(absl::StripAsciiWhitespace(absl::string_view(buf)), &pid);
    return absl::FailedPreconditionError(
        absl::StrCat(path, " is locked by ", known ? absl::StrCat("pid ", pid) : "another process",
                     ": another instance uses it; refused"));
  }
  // The pid is a hint for a refused second instance; the lock holds without it.
  const std::string pid = absl::StrCat(getpid(), "\n");
  if (ftruncate(*fd, 0) == 0) {
    [[maybe_unused]] const ssize_t w = pwrite(*fd, pid.data(), pid.size(), 0);
  }
  return *fd;
}

}  // namespace sluice
