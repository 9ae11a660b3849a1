// Remote: where dataset versions are pushed to and pulled from — a flat key/object space
// holding "blobs/ab/cdef…" (content, never modified) and "refs/NAME/TAG" (a version id).
// Implemented by LocalRemote (a folder, here) and S3Remote (s3_remote.hpp). Implementations
// are thread-safe: push and pull run up to parallelism() transfers at once.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace drover::data {

class Remote {
 public:
  virtual ~Remote() = default;
  virtual std::string url() const = 0;
  // Whether an object exists under `key`.
  virtual Result<bool> exists(const std::string& key) = 0;
  // Uploads file `src` as `key` (atomically: readers never see a partial object).
  virtual Status put_file(const std::string& key, const std::filesystem::path& src) = 0;
  virtual Status put_bytes(const std::string& key, std::string_view data) = 0;
  // Downloads `key` into `dest` (created, must not exist). Errc::NotFound if absent.
  virtual Status get_file(const std::string& key, const std::filesystem::path& dest) = 0;
  // The object's bytes, or nullopt if absent.
  virtual Result<std::optional<std::string>> get_bytes(const std::string& key) = 0;
  virtual unsigned parallelism() const { return 4; }
};

// A folder (local disk, NFS mount …) used as a remote. Thread-safe.
class LocalRemote final : public Remote {
 public:
  explicit LocalRemote(std::filesystem::path root) : root_(std::move(root)) {}
  std::string url() const override { return root_.string(); }
  Result<bool> exists(const std::string& key) override;
  Status put_file(const std::string& key, const std::filesystem::path& src) override;
  Status put_bytes(const std::string& key, std::string_view data) override;
  Status get_file(const std::string& key, const std::filesystem::path& dest) override;
  Result<std::optional<std::string>> get_bytes(const std::string& key) override;

 private:
  std::filesystem::path root_;
};

// Opens a remote from its URL: a folder path, "file:///path", "s3://bucket/prefix"
// (endpoint and credentials from DROVER_S3_ENDPOINT, AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, AWS_REGION), or "http(s)://HOST:PORT", a drover daemon's blob API
// (token from DROVER_TOKEN; http_remote.hpp). Errors: "unsupported remote 'URL'" and
// missing credentials.
Result<std::unique_ptr<Remote>> open_remote(std::string_view url);

}  // namespace drover::data
