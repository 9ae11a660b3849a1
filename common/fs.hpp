// Small filesystem helpers with explicit durability: atomic replace (temp name, fsync,
// rename, fsync of the folder). Thread-safe (no shared state).
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "common/result.hpp"

namespace drover {

// Writes `content` to `path` atomically: readers see the old file or the new one. With
// `durable` the file and its folder are fsynced (survives power loss); without, it still
// survives the death of any process.
Status write_file_atomic(const std::filesystem::path& path, std::string_view content,
                         int mode = 0644, bool durable = true);
// Writes a small file that is written once, in place (create or truncate, one write, no temp
// name, no rename, no fsync): one folder entry instead of atomic replace's two. For files whose
// readers either never read while it is written (the writer is known dead or done) or take a
// file without its last byte (`content` ends with '\n') as absent: a reader may see it empty or,
// after the writer died, cut short. Survives the death of any process but the writer's. A
// symlink at `path` is never followed (ELOOP): the folder may be one a task can write to.
Status write_file_once(const std::filesystem::path& path, std::string_view content,
                       int mode = 0644);
Result<std::string> read_file(const std::filesystem::path& path, size_t max_bytes = 1u << 30);
// Whether `rel` is a relative path that stays inside the folder it is taken from: not
// empty, not absolute, no ".." part (a task's outputs, a train's artifacts and metrics).
bool is_inside_relative(const std::string& rel);

// A file a task wrote for us, read as a regular file only: never through a link (it could
// name any file the reader may read; the last component is checked, the caller checks the
// folders above), never a FIFO (it would wait for a writer), at most `max` bytes. nullopt
// when it is absent; errors start with `what`.
Result<std::optional<std::string>> read_untrusted_file(const std::filesystem::path& path, off_t max,
                                                       const char* what);
Status fsync_dir(const std::filesystem::path& dir);
Status make_dirs(const std::filesystem::path& dir);
// Writes all of `data` to `fd`, retrying short writes and EINTR; false on error (errno set).
bool write_all(int fd, std::string_view data);
// A fresh random hex string (for temp names and ids).
std::string random_hex(size_t bytes);

// An flock on a file (created if missing), held until destroyed or the process ends
// (kill -9 included). Move-only.
class FileLock {
 public:
  // Shared or exclusive. When another process holds it the other way: waits (calling
  // `on_wait` first), or with `wait` false fails with Errc::Busy. Errors name the file.
  static Result<FileLock> acquire(const std::filesystem::path& file, bool exclusive, bool wait,
                                  const std::function<void()>& on_wait = {});
  FileLock(FileLock&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  // Replaces the lock file's bytes (in place: the lock stays on the same inode), e.g. with
  // the holder's pid so that a process refused the lock can name it.
  Status set_content(std::string_view text);
  FileLock& operator=(FileLock&&) = delete;
  ~FileLock();

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace drover
