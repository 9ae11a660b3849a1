// Registry: the dataset registry under a drover home (DESIGN.md §6 snapshot, §9). Blobs in
// HOME/blobs, refs as files: HOME/datasets/NAME/{latest, log, tags/TAG}. Makes versions,
// resolves REFs (NAME@TAG, NAME@latest, a version id or a unique prefix of ≥ 8 hex digits),
// diffs, checks out, tags, garbage-collects, pushes and pulls. Safe to use from several
// processes at once (atomic ref writes, append-only logs); one Registry object is not
// meant to be shared between threads.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/blob_store.hpp"
#include "common/fs.hpp"
#include "common/result.hpp"
#include "data/manifest.hpp"
#include "data/remote.hpp"
#include "data/snapshotter.hpp"

namespace drover::data {

// Dataset names: [a-z0-9_.-]+, not starting with '.' or '-'. Tags: [A-Za-z0-9_.-]+, not
// starting with '.' or '-', and not "latest".
bool valid_dataset_name(std::string_view name);
bool valid_tag_name(std::string_view tag);

struct LogEntry {
  std::string time;  // ISO 8601 UTC
  std::string version;
  std::string message;
};

struct AddResult {
  std::string version;
  Manifest manifest;
  SnapshotStats stats;
};

struct DiffEntry {
  std::string path;
  uint64_t old_size = 0, new_size = 0;
  std::string old_sha256, new_sha256;  // empty for symlinks and folders
};
struct Diff {
  std::vector<DiffEntry> added, removed, changed;  // each sorted by path
};
// Compares two manifests: a path present in both whose kind, content, mode or link target
// differs is "changed".
Diff diff_manifests(const Manifest& a, const Manifest& b);

struct StatusResult {
  std::string against;  // the version compared with
  Diff diff;            // from `against` to the folder as it is now
  SnapshotStats stats;
};

struct CheckoutOptions {
  unsigned threads = 0;
  bool progress = false;
  // Hard-link every file from the store (files then carry the store's read-only mode, and a
  // write to one as root changes the blob). By default every file is a verified copy with
  // its recorded mode.
  bool link_always = false;
};

struct GcOptions {
  // Blob hashes to keep besides those reachable from datasets (e.g. referenced by runs);
  // a kept hash that is a manifest keeps its files too.
  std::set<std::string> keep;
  // Blobs written less than this long ago are kept (a snapshot in progress has stored its
  // files but not yet its refs).
  int64_t grace_seconds = 3600;
  bool dry_run = false;
  // Called once when gc must wait for an add or pull in progress (see Registry).
  std::function<void()> on_wait;
};
struct GcResult {
  uint64_t blobs_deleted = 0, bytes_freed = 0, blobs_kept = 0;
};

struct TransferResult {
  std::string version;
  uint64_t blobs_sent = 0, bytes_sent = 0, blobs_skipped = 0;
};

// The store lock, HOME/blobs.lock (see Registry): shared for writers, exclusive for gc.
Result<FileLock> lock_store(const std::filesystem::path& home, bool exclusive, bool wait,
                            const std::function<void()>& on_wait = {});

// Writers of the store (add, pull, the daemon's ref route) hold HOME/blobs.lock shared and gc holds
// it exclusive (flock: released when the process ends, kill -9 included), so gc never deletes a
// blob that an add in progress is about to name, nor runs on a cache row that is about to go.
class Registry {
 public:
  explicit Registry(std::filesystem::path home);

  const std::filesystem::path& home() const { return home_; }
  BlobStore& blobs() { return blobs_; }

  // Snapshots `src` as a new version of `dataset`: stores the files and the manifest, appends
  // to the log, moves `latest`, and sets `tag` when non-empty.
  Result<AddResult> add(const std::filesystem::path& src, const std::string& dataset,
                        const std::string& tag, const std::string& message,
                        SnapshotOptions opts = {});
  // What `add` would record now, compared with version `against` (default NAME@latest):
  // the folder is hashed (the stat cache spares unchanged files) but nothing is stored.
  Result<StatusResult> status(const std::filesystem::path& src, const std::string& dataset,
                              const std::string& against = "", SnapshotOptions opts = {});
  // REF -> version id. Errors (Errc::NotFound or Errc::Invalid) are the product: see
  // docs/data.md.
  Result<std::string> resolve(std::string_view ref) const;
  Result<Manifest> load(std::string_view version) const;
  Status set_tag(std::string_view ref, const std::string& tag);

  std::vector<std::string> datasets() const;
  bool has_dataset(std::string_view name) const;
  // Oldest first.
  Result<std::vector<LogEntry>> log(const std::string& dataset) const;
  std::map<std::string, std::string> tags(const std::string& dataset) const;
  std::optional<std::string> latest(const std::string& dataset) const;

  // Refs one at a time, as the daemon's dataset-ref routes (web/api_server.cpp) serve them.
  // `tag` is a tag name or "latest".
  //
  // The version ref NAME@TAG names; nullopt when the dataset or the ref is missing, its
  // file does not hold a version id, or a name is invalid (an invalid name has no ref).
  std::optional<std::string> ref(std::string_view dataset, std::string_view tag) const;
  // Points NAME@TAG at `version`, a version pushed here from another registry (blobs, then
  // the manifest, then this). Holding the store lock shared (so a gc cannot delete what it
  // checked), it checks that the manifest and every file blob it names are stored here;
  // then appends `message` to the log (so gc and `snapshot ls` know the version), replaces
  // the ref file atomically, and sets `latest` too when the dataset has none. Errors:
  // Errc::Invalid (a bad name, tag or version id; a version not stored here, not a manifest, or
  // incomplete: the message names how many files are missing and the first), Errc::Busy (a gc
  // holds the lock and `wait` is false: nothing changed), I/O.
  Status set_ref(const std::string& dataset, const std::string& tag, const std::string& version,
                 const std::string& message, bool wait = true);
  // Deletes tag `tag` of `dataset`; the versions stay (a gc may then collect them). `latest`
  // cannot be deleted: it moves with new versions. Errors: Errc::Invalid (a bad name or tag,
  // "latest"), Errc::NotFound (no such tag), I/O.
  Status delete_ref(const std::string& dataset, const std::string& tag);

  // Materializes version `ref` into `dest` (which must not exist or be an empty folder),
  // verifying every file's hash.
  Status checkout(std::string_view ref, const std::filesystem::path& dest,
                  const CheckoutOptions& opts = {});
  Result<GcResult> gc(const GcOptions& opts);
  // Tests: called by gc after it forgot the doomed blobs' stat-cache rows, before it deletes
  // the first blob (where a gc killed halfway stops).
  void set_before_delete(std::function<void()> f) { before_delete_ = std::move(f); }

  // Sends the version's missing blobs, then its manifest, then (for NAME@TAG / NAME@latest)
  // the ref, so a ref on the remote always names a complete version.
  Result<TransferResult> push(std::string_view ref, Remote& remote, bool progress = false);
  // Fetches a version by NAME@TAG, NAME@latest (read on the remote) or full version id,
  // verifying every blob; records it in the local log (and the tag) so gc keeps it.
  Result<TransferResult> pull(std::string_view ref, Remote& remote, bool progress = false);

 private:
  std::filesystem::path dataset_dir(std::string_view name) const;
  Status append_log(const std::string& dataset, const std::string& version,
                    const std::string& message);
  Status write_ref(const std::filesystem::path& file, const std::string& version);
  std::set<std::string> known_versions() const;
  Status fetch_blob(Remote& remote, const std::string& sha, uint64_t* bytes);

  std::filesystem::path home_;
  BlobStore blobs_;
  std::function<void()> before_delete_;
};

}  // namespace drover::data
