// The client side of the REST API, for the CLI commands (trigger, runs, logs, cancel, dags):
// finding the server and the token, and a small synchronous HTTP/1.1 client with keep-alive
// and 30 s timeouts. An HttpClient is not thread-safe (use one per thread); the free
// functions are.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace drover {

struct ClientConfig {
  std::string url;    // "http://HOST:PORT[/PREFIX]", no trailing slash
  std::string token;  // bearer token
  std::filesystem::path home;
};

struct HttpResponse {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // names in lower case
};

// Finds the server: `server` (--server), else $DROVER_SERVER, else HOME/server.json
// {"url": ...} as written by `drover serve`; and the token: $DROVER_TOKEN, else HOME/token.
// HOME is `home` (--home) or ./.drover. Errors say which of these to provide.
Result<ClientConfig> resolve_client(std::optional<std::string> home,
                                    std::optional<std::string> server);

class HttpClient {
 public:
  explicit HttpClient(ClientConfig config);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends one request (target relative to the URL, e.g. "/api/v1/runs?limit=5") with the
  // bearer token, reusing the open connection when the server kept it alive. A GET that
  // finds a kept-alive connection closed by the server is retried once on a new one.
  // Errors: the server cannot be reached, a timeout, a malformed response; any HTTP
  // status is a value.
  Result<HttpResponse> request(const std::string& method, const std::string& target,
                               const std::string& body = {});

  // request() for JSON APIs: a 2xx body parsed as JSON (an empty body is null); any other
  // status becomes an Error with the server's {"error": {"code", "message"}}.
  Result<nlohmann::json> call(const std::string& method, const std::string& target,
                              const std::string& body = {});

  const ClientConfig& config() const { return config_; }
  int connections_opened() const;  // for tests of keep-alive

 private:
  struct Impl;
  ClientConfig config_;
  std::unique_ptr<Impl> impl_;
};

// One request on a fresh connection.
Result<HttpResponse> request(const ClientConfig& config, const std::string& method,
                             const std::string& target, const std::string& body = {});

// The message of an API error response, or "HTTP STATUS" plus the body's start.
Error api_error(const HttpResponse& response);

// Percent-encodes everything but [A-Za-z0-9_.~-], for path segments and query values.
std::string url_encode(std::string_view s);

// Rows as aligned columns (two spaces apart), the first row being the header.
std::string format_table(const std::vector<std::vector<std::string>>& rows);

}  // namespace drover
