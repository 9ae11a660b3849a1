// ApiServer: the daemon's REST API (DESIGN.md §7, docs/api.md) — an asynchronous HTTP/1.1
// server (Boost.Beast, keep-alive, 30 s read timeouts) that authenticates every call with
// the bearer token and answers it through the scheduler's Service. Runs on the io_context
// it is given, which must be run by ONE thread (the daemon's): all Service calls happen
// there, except run listings and records and the model registry's reads when the server is
// given a RunReads of their own (then answered on a thread of the server's). Not
// thread-safe: call listen() and stop() on that thread, or before it runs.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/result.hpp"

namespace boost::asio {
class io_context;
}

namespace drover {

class RunReads;
class Service;

struct ApiOptions {
  std::string token_sha256;   // hex SHA-256 of the accepted bearer token (web/auth.hpp)
  size_t max_body = 1 << 20;  // larger request bodies are refused with 413
  // The drover home: blobs under HOME/blobs, dataset refs under HOME/datasets. Empty: the
  // blob and dataset-ref routes answer 404.
  std::string home;
  // The body limit of PUT /api/v1/blobs/{sha256}. Uploads stream to disk, never to memory.
  size_t max_blob_body = size_t{64} << 30;
  // Connections open at once, in all and from one client address; beyond them a new one is
  // answered 503 and closed. 0: derived from RLIMIT_NOFILE, keeping kDescriptorReserve
  // descriptors for the scheduler (its store, workers, logs): a flood of connections never
  // leaves a try without the descriptors it needs to start.
  size_t max_connections = 0;
  size_t max_connections_per_address = 0;  // 0: half of max_connections
  static constexpr size_t kDescriptorReserve = 256;
};

// One request as the router sees it, free of any HTTP library: `target` is the raw
// request target ("/api/v1/runs?dag=x"), `authorization` the header's value.
struct ApiRequest {
  std::string method;
  std::string target;
  std::string authorization;
  std::string body;
  // A blob upload the server streamed to this file (under HOME/blobs/tmp) instead of `body`;
  // the handler takes it over (stores or deletes it).
  std::string body_file;
};

struct ApiResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
  // When non-empty, the body is this file's bytes, streamed by the server (`body` is then
  // ignored): how blobs are sent without reading them into memory.
  std::string body_file;
};

// Who may call a route. The one token the daemon accepts holds every scope; scopes of their
// own (admin, agent) come with per-user tokens.
enum class ApiScope {
  none,  // no token needed (health)
  user,  // the bearer token: read, trigger, cancel, blobs, dataset refs, model aliases
};

// One row of the API's route table, as docs/api.md lists it: the methods (in the order an
// Allow header names them), the path with named segments ("/api/v1/runs/{run}/cancel") and
// the scope it needs.
struct ApiRoute {
  std::vector<std::string> methods;
  std::string pattern;
  ApiScope scope;
};

// Every route handle_api_request() answers. A path that matches none is 404; a path that
// matches one with another method is 405 with Allow naming its methods (both after the token
// check unless the route's scope is none).
std::vector<ApiRoute> api_routes();

// Routes one request to the Service and renders its answer or error. Every error is
// {"error": {"code", "message"}} (see docs/api.md for the status of each code). Reads log
// files from disk for the logs route. Never throws.
ApiResponse handle_api_request(Service& service, const ApiOptions& options,
                               const ApiRequest& request);

// The route of PUT /api/v1/blobs/{sha256} with `body_file` set: thread-safe, touches no
// Service (the server runs it off the event loop). Never throws.
ApiResponse handle_blob_upload(const ApiOptions& options, const ApiRequest& request);

class ApiServer {
 public:
  // `io` and `service` must outlive the server and every handler it leaves queued on `io`.
  // `reads` (optional; it must outlive the server) answers GET /api/v1/runs,
  // GET /api/v1/runs/{run} and the GETs of /api/v1/models… on a thread of the server's own,
  // so that a heavy listing never holds the scheduler; without it they go to `service` on
  // the loop. Writes (an alias move included) always go to `service` on the loop.
  ApiServer(boost::asio::io_context& io, Service& service, ApiOptions options,
            RunReads* reads = nullptr);
  ~ApiServer();  // stops
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  // Binds "HOST:PORT" ("127.0.0.1:8080", "[::1]:0", "localhost:0"; port 0 picks a free
  // port) and starts accepting. Returns the URL clients use, e.g. "http://127.0.0.1:41234"
  // (a wildcard address is reported as 127.0.0.1). Errors name the address.
  Result<std::string> listen(const std::string& host_port);

  // Closes the listening socket and every open connection; requests in progress are
  // dropped. Idempotent. When it returns, the server leaves no work of its own to keep
  // io.run() going beyond the cancelled handlers.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace drover
