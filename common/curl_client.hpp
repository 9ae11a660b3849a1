// The one libcurl client: a transfer described as data (CurlRequest) and performed by
// curl_perform(), which owns the easy handle, its header list and its error buffer for the
// call (RAII), sets the timeouts, TLS and signing options asked for, and turns a failure
// into an error text. HTTP(S) for the data remotes (data/http_remote, data/s3_remote) and
// the webhook alert channel, SMTP for the email channel; no caller sets up curl itself.
// Thread-safe: each call uses its own easy handle; curl's global init runs once.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace drover {

// A request body: `size` bytes from `data`, or else from file `fd` starting at `offset`
// (so large uploads are never held in memory). `pos` is how far the transfer has read.
struct UploadBody {
  const char* data = nullptr;
  int fd = -1;
  uint64_t offset = 0, size = 0, pos = 0;
};

struct CurlRequest {
  // GET; HEAD (no body is read); PUT (streams `body`); POST (`body->data` in memory, or an
  // empty body); any other verb is sent as is. Ignored for SMTP (see `mail`).
  std::string method = "GET";
  std::string url;
  // Extra header lines, "Name: value"; "Name:" removes a header curl would add ("Expect:").
  std::vector<std::string> headers;
  UploadBody* body = nullptr;

  // Timeouts; zero means none.
  std::chrono::milliseconds connect_timeout{30000};
  std::chrono::milliseconds timeout{0};    // the whole transfer
  std::chrono::seconds low_speed_time{0};  // fail when under 1 byte/s for this long
  // CURLOPT_PROTOCOLS_STR ("http,https"); empty: whatever the URL names.
  std::string protocols;
  // CA certificates to verify the server with (CURLOPT_CAINFO); empty: the system's.
  std::string ca_file;
  // When set and true, the transfer stops at its next progress tick (checked in curl's
  // progress callback; the error is libcurl's "Callback aborted").
  const std::atomic<bool>* cancel = nullptr;

  // AWS Signature V4: libcurl signs the request (CURLOPT_AWS_SIGV4 "aws:amz:REGION:SERVICE"
  // with the keys as user and password). The payload hash header is the caller's.
  struct SigV4 {
    std::string region, service = "s3";
    std::string access_key, secret_key;
  };
  std::optional<SigV4> sigv4;

  // SMTP (an smtp:// or smtps:// URL): the envelope and the login; `body` is the message.
  struct Mail {
    std::string from;             // without the angle brackets
    std::vector<std::string> to;  // likewise
    bool require_tls = false;     // STARTTLS or fail (CURLUSESSL_ALL)
    std::optional<std::string> username, password;
  };
  std::optional<Mail> mail;

  // Where the response body goes. Unset: the first `max_body` bytes are kept in
  // CurlResponse::body and the rest is read and dropped. Set: each piece is handed over
  // with the response's status; returning false aborts the transfer (the error is then
  // libcurl's write error: a sink that fails should remember why itself).
  std::function<bool(std::string_view piece, long status)> on_body;
  size_t max_body = 1u << 20;
  // Keep the response's header lines (without CR LF) in CurlResponse::headers.
  bool keep_headers = false;
};

struct CurlResponse {
  long status = 0;  // the HTTP status (or the last SMTP reply code); 0 when none came
  std::string body;
  std::vector<std::string> headers;
};

// Performs `req`. An answer with any status is a value: the caller decides what a 404 or a
// 500 means. Errors are libcurl's own text (its error buffer, else the code's name), e.g.
// "Failed to connect to 127.0.0.1 port 1 after 0 ms: Couldn't connect to server", or
// "curl_easy_init failed"; callers prefix what they were doing.
Result<CurlResponse> curl_perform(const CurlRequest& req);

// The value of header `name` (case-insensitive) among `headers` ("Name: value" lines), or
// "" when absent.
std::string header_value(const std::vector<std::string>& headers, std::string_view name);

}  // namespace drover
