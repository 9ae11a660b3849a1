// Git facts of a DAG file for the run record: the commit of its repository and whether
// the work tree is dirty. Runs `git` with an argv (no shell) through the one launcher.
// Thread-safe (the cache has a lock).
#pragma once

#include <chrono>
#include <filesystem>
#include <string>

namespace drover {

struct GitInfo {
  std::string toplevel;  // empty when not in a git work tree
  std::string commit;
  bool dirty = false;
};

// Asks git now: three short `git` processes (rev-parse twice, status).
GitInfo git_info(const std::filesystem::path& dir);

// git_info() for a DAG file's folder, asked at most once per `max_age` per folder — and at
// once again when the cheap facts change: the HEAD commit (read from .git without a
// process), the mtime and size of .git/index, or the mtime and size of `file` (outside a
// repository: the age bound and `file` alone). So a run records the
// exact commit it was made from; `dirty` may lag an edit of another tracked file by up to
// `max_age`. What the scheduler calls for each new run (runs/s without a fork per run).
GitInfo git_info_cached(const std::filesystem::path& dir, const std::filesystem::path& file,
                        std::chrono::milliseconds max_age = std::chrono::seconds(1));

}  // namespace drover
