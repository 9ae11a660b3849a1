// BlobSource: how blobs reach a try and leave it. The try runner (executor/try_runner.hpp)
// materializes a try's inputs through it and stores its declared outputs through it, never
// opening HOME/blobs itself. LocalBlobSource is the blob store of this host (the daemon's
// HOME/blobs, shared with the worker); a remote agent will have one that fetches blobs
// from the daemon over HTTP into a cache of its own. One per try process; not thread-safe
// (LocalBlobSource is, as BlobStore is).
#pragma once

#include <sys/stat.h>

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "common/blob_store.hpp"
#include "common/fs.hpp"
#include "common/result.hpp"
#include "common/sha256.hpp"

namespace drover {

class BlobSource {
 public:
  virtual ~BlobSource() = default;
  // Places blob `sha256` at `dest` (read-only; the folder exists). An error when the blob
  // is not to be had (its message names it) or cannot be placed.
  virtual Status fetch(std::string_view sha256, const std::filesystem::path& dest) = 0;
  // After the try: an error when an input it was given could reach the store and was
  // changed there (the blob is then out of the store).
  virtual Status check_fetched() { return {}; }
  // Stores the content of the file `src` (an output of the try); its hash and size. `check`
  // is made every kReadCheckEvery bytes read (the try's timeout); when it fails nothing is
  // stored and its Status is the result.
  virtual Result<BlobRef> store(const std::filesystem::path& src, const ReadCheck& check = {}) = 0;
  // Stores `bytes` (a symbolic link's target text, an output of the try); its hash and size.
  virtual Result<BlobRef> store_bytes(std::string_view bytes) = 0;
  // The bytes of blob `sha256` (a link's text, to place an input as a link): an error when
  // the blob is not to be had, is longer than `max_bytes` or does not match its hash.
  virtual Result<std::string> read_bytes(std::string_view sha256, size_t max_bytes) = 0;
  // The blob store on this host, for task types that read or write blobs themselves
  // (TaskContext::blobs: snapshot, drift). Owned by the source.
  virtual BlobStore& local() = 0;
};

// The blob store at `root` (HOME/blobs) on this host. An input is a copy of its blob (a
// reflink where the filesystem shares extents), so a task that writes it — as root too —
// changes its copy only. One bigger than kLinkAbove is hard-linked instead (copying
// gigabytes for each try costs what the try does) and checked after the try: a blob
// changed through it is taken out of the store and the try fails.
class LocalBlobSource final : public BlobSource {
 public:
  static constexpr off_t kLinkAbove = off_t{64} << 20;

  explicit LocalBlobSource(std::filesystem::path root) : store_(std::move(root)) {}
  Status fetch(std::string_view sha256, const std::filesystem::path& dest) override {
    struct stat st;
    if (::stat(store_.path_of(sha256).c_str(), &st) != 0 || st.st_size <= kLinkAbove)
      return store_.materialize(sha256, dest);
    auto linked = store_.link_to(sha256, dest);
    if (!linked) return linked.error();
    linked_.emplace_back(std::string(sha256), dest, *linked);
    return {};
  }
  Status check_fetched() override {
    for (auto& [sha, dest, before] : linked_)
      if (auto s = store_.unchanged_since(sha, before); !s)
        return make_error("input " + dest.string() + ": " + s.message(), s.error().code);
    return {};
  }
  // An output is read as what it is, never through a link (its target could be anything
  // the worker may read: /etc/shadow, the API token).
  Result<BlobRef> store(const std::filesystem::path& src, const ReadCheck& check = {}) override {
    return store_.put_file(src, /*follow_links=*/false, check);
  }
  Result<BlobRef> store_bytes(std::string_view bytes) override { return store_.put_bytes(bytes); }
  Result<std::string> read_bytes(std::string_view sha256, size_t max_bytes) override {
    if (!BlobStore::valid_hash(sha256))
      return make_error("invalid blob hash '" + std::string(sha256) + "'");
    auto bytes = read_file(store_.path_of(sha256), max_bytes);
    if (!bytes) return bytes.error();
    if (sha256_hex(*bytes) != sha256)
      return make_error("blob " + std::string(sha256) + " is corrupt");
    return bytes;
  }
  BlobStore& local() override { return store_; }

 private:
  BlobStore store_;
  std::vector<std::tuple<std::string, std::filesystem::path, struct stat>> linked_;
};

}  // namespace drover
