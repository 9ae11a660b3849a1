// HttpRemote: a Remote on a drover daemon's blob API (docs/api.md "Blobs and dataset refs"),
// so a central daemon is the team's data registry. Keys map to routes: "blobs/ab/cdef…" ->
// /api/v1/blobs/abcdef…, "refs/NAME/TAG" -> /api/v1/datasets/NAME/refs/TAG. Bearer-token
// auth; libcurl. Thread-safe: each call uses its own curl handle.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "data/remote.hpp"

namespace drover::data {

class HttpRemote final : public Remote {
 public:
  // `base_url` is "http://HOST:PORT" or "https://HOST[:PORT][/prefix]" (no trailing '/').
  HttpRemote(std::string base_url, std::string token);

  // True for "http://…" and "https://…".
  static bool is_http_url(std::string_view url);
  // Opens `url` with the token read from `token_file` when non-empty, else from the
  // environment variable DROVER_TOKEN. Errors: "no token for remote URL: set DROVER_TOKEN or
  // pass --token-file" and an unreadable or empty token file.
  static Result<std::unique_ptr<HttpRemote>> open(std::string_view url,
                                                  const std::string& token_file = "");

  std::string url() const override { return base_url_; }
  Result<bool> exists(const std::string& key) override;
  Status put_file(const std::string& key, const std::filesystem::path& src) override;
  Status put_bytes(const std::string& key, std::string_view data) override;
  Status get_file(const std::string& key, const std::filesystem::path& dest) override;
  Result<std::optional<std::string>> get_bytes(const std::string& key) override;
  unsigned parallelism() const override { return 8; }

 private:
  struct Response;
  struct Request;
  Result<std::string> route_of(const std::string& key) const;
  Result<Response> perform(const Request& req) const;
  Error http_error(const std::string& method, const std::string& route, const Response& r) const;

  std::string base_url_;
  std::string token_;
};

}  // namespace drover::data
