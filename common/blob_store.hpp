// BlobStore: the content-addressed folder of DESIGN.md §9 (`HOME/blobs/ab/cdef…`). A blob
// is written under a temp name, fsynced and renamed; it is never modified afterwards
// (mode 0444). Identical content is stored once. Thread-safe and process-safe: concurrent
// writers of the same blob race benignly to the same rename.
#pragma once

#include <sys/stat.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

#include "common/result.hpp"
#include "common/sha256.hpp"

namespace drover {

struct BlobRef {
  std::string sha256;
  uint64_t size = 0;
};

class BlobStore {
 public:
  explicit BlobStore(std::filesystem::path root);

  const std::filesystem::path& root() const { return root_; }
  // Stores the content of `src`. Hashes it first and copies only a blob not yet stored (a
  // reflink or an in-kernel copy), so storing known content writes nothing; a file that
  // changes meanwhile is refused ("SRC: changed while being stored") and nothing is stored.
  // A file changed in the last `racy_window` seconds is copied while hashed instead.
  // A regular file only (a FIFO, device or socket is refused without being read: opened
  // without waiting); `follow_links` false also refuses a symbolic link. `check` is made
  // every kReadCheckEvery bytes hashed or copied (common/sha256.hpp); when it fails nothing
  // is stored (no temp file is left) and its Status is the result.
  Result<BlobRef> put_file(const std::filesystem::path& src, bool follow_links = true,
                           const ReadCheck& check = {});
  Result<BlobRef> put_bytes(std::string_view data);
  // A fresh name under root()/tmp for a writer that streams a blob in (an upload); gc
  // deletes such files once older than its grace period.
  Result<std::filesystem::path> new_temp_path() const;
  // Takes over `tmp` (from new_temp_path, written by the caller alone): hashes it and, when
  // the hash is `expected`, makes it that blob (fsync, mode 0444, rename). Otherwise, or on
  // any error, `tmp` is deleted; a mismatch is an error with Errc::Mismatch naming the
  // actual hash.
  Result<BlobRef> adopt_temp(const std::filesystem::path& tmp, std::string_view expected);
  bool has(std::string_view sha256) const;
  std::filesystem::path path_of(std::string_view sha256) const;
  // Places a copy of blob `sha256` at `dest` (created: it must not exist), mode 0444: a
  // reflink where the filesystem shares extents, else an in-kernel copy. Never a hard link:
  // nothing done to `dest`, by root either, reaches the blob.
  Status materialize(std::string_view sha256, const std::filesystem::path& dest) const;
  // Hard-links blob `sha256` at `dest`, for a file too big to copy: whoever may write `dest`
  // can change the blob, so the caller checks it afterwards with unchanged_since(). Returns
  // the blob's status after the link.
  Result<struct stat> link_to(std::string_view sha256, const std::filesystem::path& dest) const;
  // Whether the blob is as `before` (from link_to) says; when its inode changed since (a
  // write, a chmod, or only another link) it is hashed again, and a blob whose bytes no
  // longer match its name is taken out of the store (Errc::Mismatch): nothing reads it again.
  Status unchanged_since(std::string_view sha256, const struct stat& before) const;
  // Re-hashes a stored blob and compares (used when fetching from elsewhere).
  Status verify(std::string_view sha256) const;

  static bool valid_hash(std::string_view s);

  // Batch mode for writers of many blobs (snapshots): put_* skip the per-blob fsync of the
  // file and its folder, and the caller calls sync() once (syncfs) before publishing
  // anything that refers to the new blobs. Off by default. Set before concurrent use.
  void set_deferred_sync(bool on) { deferred_sync_ = on; }
  Status sync();  // a no-op when no blob was stored since the last one

  static constexpr int64_t kDefaultRacyWindowNs = 2'000'000'000;
  // For tests: the racy window, and a hook called between hashing and copying.
  void set_racy_window_ns(int64_t ns) { racy_window_ns_ = ns; }
  void set_after_hash_hook(std::function<void(const std::filesystem::path&)> f) {
    after_hash_ = std::move(f);
  }

 private:
  Result<BlobRef> commit_temp(const std::filesystem::path& tmp, BlobRef ref);
  Result<BlobRef> copy_while_hashing(int in, const std::filesystem::path& src,
                                     const ReadCheck& check);
  std::filesystem::path root_;
  bool deferred_sync_ = false;
  std::atomic<uint64_t> unsynced_{0};  // blobs stored in batch mode since the last sync()
  int64_t racy_window_ns_ = kDefaultRacyWindowNs;
  std::function<void(const std::filesystem::path&)> after_hash_;
};

}  // namespace drover
