// BlobSource: how blobs reach a try and leave it. The try runner (executor/try_runner.hpp)
// materializes a try's inputs through it and stores its declared outputs through it, never
// opening HOME/blobs itself. LocalBlobSource is the blob store of this host (the daemon's
// HOME/blobs, shared with the worker); a remote agent will have one that fetches blobs
// from the daemon over HTTP into a cache of its own. One per try process; not thread-safe
// (LocalBlobSource is, as BlobStore is).
#pragma once

#include <filesystem>
#include <memory>
#include <string_view>

#include "common/blob_store.hpp"
#include "common/result.hpp"

namespace drover {

class BlobSource {
 public:
  virtual ~BlobSource() = default;
  // Places blob `sha256` at `dest` (read-only; the folder exists). An error when the blob
  // is not to be had (its message names it) or cannot be placed.
  virtual Status fetch(std::string_view sha256, const std::filesystem::path& dest) = 0;
  // Stores the content of the file `src` (an output of the try); its hash and size.
  virtual Result<BlobRef> store(const std::filesystem::path& src) = 0;
  // The blob store on this host, for task types that read or write blobs themselves
  // (TaskContext::blobs: snapshot, drift). Owned by the source.
  virtual BlobStore& local() = 0;
};

// The blob store at `root` (HOME/blobs) on this host.
class LocalBlobSource final : public BlobSource {
 public:
  explicit LocalBlobSource(std::filesystem::path root) : store_(std::move(root)) {}
  Status fetch(std::string_view sha256, const std::filesystem::path& dest) override {
    return store_.materialize(sha256, dest);
  }
  // An output is read as what it is, never through a link (its target could be anything
  // the worker may read: /etc/shadow, the API token).
  Result<BlobRef> store(const std::filesystem::path& src) override {
    return store_.put_file(src, /*follow_links=*/false);
  }
  BlobStore& local() override { return store_; }

 private:
  BlobStore store_;
};

}  // namespace drover
