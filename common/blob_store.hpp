// BlobStore: the content-addressed folder of DESIGN.md §9 (`HOME/blobs/ab/cdef…`). A blob
// is written under a temp name, fsynced and renamed; it is never modified afterwards
// (mode 0444). Identical content is stored once. Thread-safe and process-safe: concurrent
// writers of the same blob race benignly to the same rename.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace drover {

struct BlobRef {
  std::string sha256;
  uint64_t size = 0;
};

class BlobStore {
 public:
  explicit BlobStore(std::filesystem::path root);

  const std::filesystem::path& root() const { return root_; }
  // Copies `src` into the store, hashing while copying (one read of the source).
  Result<BlobRef> put_file(const std::filesystem::path& src);
  Result<BlobRef> put_bytes(std::string_view data);
  bool has(std::string_view sha256) const;
  std::filesystem::path path_of(std::string_view sha256) const;
  // Places blob `sha256` at `dest` (hard link when possible, else a copy), with `mode`
  // applied to a copy; hard links keep the blob's read-only mode.
  Status materialize(std::string_view sha256, const std::filesystem::path& dest) const;
  // Re-hashes a stored blob and compares (used when fetching from elsewhere).
  Status verify(std::string_view sha256) const;

  static bool valid_hash(std::string_view s);

  // Batch mode for writers of many blobs (snapshots): put_* skip the per-blob fsync of the
  // file and its folder, and the caller calls sync() once (syncfs) before publishing
  // anything that refers to the new blobs. Off by default. Set before concurrent use.
  void set_deferred_sync(bool on) { deferred_sync_ = on; }
  Status sync() const;

 private:
  Result<BlobRef> commit_temp(const std::filesystem::path& tmp, BlobRef ref);
  std::filesystem::path root_;
  bool deferred_sync_ = false;
};

}  // namespace drover
