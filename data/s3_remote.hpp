// S3Remote: a Remote on an S3-compatible object store through libcurl, signed with AWS
// Signature V4 (CURLOPT_AWS_SIGV4) and an explicit x-amz-content-sha256 header; HEAD to test
// existence, PUT / GET objects, multipart upload above 64 MB. Path-style URLs
// (ENDPOINT/BUCKET/KEY), so it works with MinIO, s3rver and AWS alike. Thread-safe: each
// call uses its own curl handle.
#pragma once

#include <memory>
#include <string>

#include "data/remote.hpp"

namespace drover::data {

struct S3Config {
  std::string endpoint;  // "http://127.0.0.1:4568" or "https://s3.eu-west-1.amazonaws.com"
  std::string bucket;
  std::string prefix;  // "" or "team/data" (no leading or trailing '/')
  std::string region = "us-east-1";
  std::string access_key, secret_key;
  uint64_t multipart_threshold = 64ull << 20;  // objects above this go up in parts
  uint64_t part_size = 16ull << 20;
};

class S3Remote final : public Remote {
 public:
  explicit S3Remote(S3Config cfg);
  // Parses "s3://bucket/prefix" and reads DROVER_S3_ENDPOINT (default
  // https://s3.REGION.amazonaws.com), AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION.
  static Result<std::unique_ptr<S3Remote>> from_env(std::string_view url);

  std::string url() const override;
  Result<bool> exists(const std::string& key) override;
  Status put_file(const std::string& key, const std::filesystem::path& src) override;
  Status put_bytes(const std::string& key, std::string_view data) override;
  Status get_file(const std::string& key, const std::filesystem::path& dest) override;
  Result<std::optional<std::string>> get_bytes(const std::string& key) override;
  unsigned parallelism() const override { return 8; }

  const S3Config& config() const { return cfg_; }

 private:
  struct Response;
  std::string object_url(const std::string& key) const;
  Status put_multipart(const std::string& key, const std::filesystem::path& src, uint64_t size);
  S3Config cfg_;
};

}  // namespace drover::data
