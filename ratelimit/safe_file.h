// Files sluice keeps on disk (counter tables, their names files, lock and
// pid files) are opened the way a root daemon must: never through a
// symlink, never a file someone else could have planted or can write.
//
//   OpenOwnFile       open(O_NOFOLLOW | O_CLOEXEC), then refuse what is not
//                     a regular file, is writable by others, is owned by
//                     another user (neither this process's user nor root),
//                     or is someone else's and group-writable for a group
//                     this process is not in (sharing a table through a
//                     group, mode 0660, is fine: root's daemon and Exim's
//                     Debian-exim processes). Errors name the file and say
//                     what is wrong.
//   WriteFileAtomically  a new file under a fresh name (O_EXCL, in the same
//                     directory), written whole, then renamed over the
//                     target: a planted symlink is replaced, never followed;
//                     a crash leaves the old file or the new one.
//   LockFile          an exclusive flock on PATH (created if missing, our
//                     pid written in it) held as long as the returned
//                     descriptor is open: a second process asking for it
//                     is refused with the holder's pid.
//
// Thread safety: free functions; thread-safe.
#ifndef SLUICE_RATELIMIT_SAFE_FILE_H_
#define SLUICE_RATELIMIT_SAFE_FILE_H_

#include <sys/types.h>

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace sluice {

// flags: O_RDONLY / O_RDWR, optionally O_CREAT (then `mode` applies).
// Returns the descriptor (close it), or FailedPrecondition (refused),
// NotFound, or the errno's error.
absl::StatusOr<int> OpenOwnFile(const std::string& path, int flags, mode_t mode = 0600);

absl::Status WriteFileAtomically(const std::string& path, absl::string_view bytes,
                                 mode_t mode = 0600);

// Returns the open descriptor that holds the lock, or FailedPrecondition
// naming the holder ("... is locked by pid 1234").
absl::StatusOr<int> LockFile(const std::string& path);

}  // namespace sluice

#endif  // SLUICE_RATELIMIT_SAFE_FILE_H_
