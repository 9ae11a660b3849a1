// Snapshotter: turns a folder (or one file) into a Manifest, storing every file's content
// in the BlobStore. Files are hashed in parallel on all cores, streamed (BlobStore::put_file
// hashes while copying); a StatCache hit skips the read entirely. A file whose size, mtime
// or inode differs after it was read makes the snapshot fail. Thread-safe (no shared state
// beyond the BlobStore and StatCache, both thread-safe).
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "common/blob_store.hpp"
#include "common/result.hpp"
#include "data/manifest.hpp"
#include "data/stat_cache.hpp"

namespace drover::data {

struct SnapshotOptions {
  unsigned threads = 0;   // 0 = all cores
  bool progress = false;  // progress bar on stderr
  // A folder never descended into (the drover home when it lies inside the dataset).
  std::filesystem::path exclude;
  // Test seam: called with the relative path after a file was read and before its stat is
  // checked again (lets a test change the file "while it is being hashed", deterministically).
  std::function<void(const std::string& rel)> after_read;
  // false: only hash (for `status`): nothing is written to the blob store, and fresh hashes
  // are not recorded in the stat cache (a cache row promises that its blob is stored).
  bool store = true;
};

struct SnapshotStats {
  uint64_t files = 0, symlinks = 0, dirs = 0;
  uint64_t bytes_total = 0;   // size of all files in the version
  uint64_t bytes_read = 0;    // bytes actually read from the source (0 for cache hits)
  uint64_t files_hashed = 0;  // files read and hashed
  uint64_t cache_hits = 0;    // files whose hash came from the stat cache
};

// Builds the manifest of `src` for `dataset`. `cache` may be null (no stat cache). Errors:
// unreadable files, unsupported file types (sockets, devices, FIFOs), and
// "PATH: changed while being hashed; snapshot aborted".
Result<Manifest> build_manifest(const std::filesystem::path& src, const std::string& dataset,
                                BlobStore& blobs, StatCache* cache, const SnapshotOptions& opts,
                                SnapshotStats* stats = nullptr);

}  // namespace drover::data
