// StatCache: remembers (path, size, mtime_ns, inode) -> SHA-256 so that a file unchanged
// since it was last hashed is never read again (DESIGN.md §6). Backed by SQLite at
// HOME/cache/stat.db; entries under one folder are loaded into memory at once, lookups are
// then lock-free reads and records are buffered until flush(). Thread-safe after load().
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/result.hpp"

struct sqlite3;

namespace drover::data {

struct FileStat {
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  uint64_t inode = 0;
  bool operator==(const FileStat&) const = default;
};

class StatCache {
 public:
  // A file whose mtime is within `racy_window_ns` of the moment it was hashed may change
  // again within the same timestamp tick unnoticed, so it is not cached (git's "racy
  // clean" rule); it is hashed again next time, by when it is old enough.
  static constexpr int64_t kDefaultRacyWindowNs = 1'000'000'000;

  // Opens (creating) the cache database. Errors name the file.
  static Result<std::unique_ptr<StatCache>> open(const std::filesystem::path& db,
                                                 int64_t racy_window_ns = kDefaultRacyWindowNs);
  ~StatCache();
  StatCache(const StatCache&) = delete;
  StatCache& operator=(const StatCache&) = delete;

  // Loads every entry whose path lies under folder `root` (an absolute path) into memory.
  Status load(std::string_view root);
  // The cached hash of `path` if its stat still matches. Thread-safe after load().
  std::optional<std::string> lookup(const std::string& path, const FileStat& st) const;
  // Buffers a fresh hash; `hashed_at_ns` is the wall-clock time (ns since the epoch) when
  // hashing started. Returns false (and records nothing) for a racy entry. Thread-safe.
  bool record(const std::string& path, const FileStat& st, const std::string& sha256,
              int64_t hashed_at_ns);
  // Writes buffered records in one transaction.
  Status flush();
  // Drops every row whose hash is in `hashes` (blobs that gc deleted), so that a later
  // lookup never names a blob that is gone.
  Status forget(const std::set<std::string>& hashes);
  size_t loaded_size() const { return entries_.size(); }

 private:
  struct Entry {
    FileStat st;
    std::string sha256;
  };
  StatCache(sqlite3* db, int64_t racy_window_ns) : db_(db), racy_window_ns_(racy_window_ns) {}
  sqlite3* db_;
  int64_t racy_window_ns_;
  std::unordered_map<std::string, Entry> entries_;
  std::mutex mu_;
  std::vector<std::pair<std::string, Entry>> pending_;  // guarded by mu_
};

}  // namespace drover::data
