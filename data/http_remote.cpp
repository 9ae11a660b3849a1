#include "data/http_remote.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>

#include "common/blob_store.hpp"
#include "common/curl_client.hpp"
#include "common/fs.hpp"

namespace drover::data {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr auto kConnectTimeout = std::chrono::seconds(30);
constexpr auto kLowSpeedTime = std::chrono::seconds(120);  // slower than 1 byte/s this long fails
constexpr size_t kMaxErrorBody = 64u << 20;

// "blobs/ab/cdef…" -> the 64-digit hash, or "" when the key is not a blob key.
std::string blob_hash_of(const std::string& key) {
  if (key.size() != 6 + 2 + 1 + 62 || key.rfind("blobs/", 0) != 0 || key[8] != '/') return {};
  std::string h = key.substr(6, 2) + key.substr(9);
  return BlobStore::valid_hash(h) ? h : std::string();
}

bool valid_segment(std::string_view s) {
  if (s.empty() || s[0] == '.' || s[0] == '-') return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
  });
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  while (!s.empty() && (s.front() == ' ' || s.front() == '\n')) s.erase(s.begin());
  return s;
}

}  // namespace

struct HttpRemote::Request {
  const char* method = "GET";
  std::string route;
  UploadBody* body = nullptr;  // PUT body
  int sink_fd = -1;            // GET: write a 2xx body here instead of into Response::body
};

struct HttpRemote::Response {
  long status = 0;
  std::string body;
};

HttpRemote::HttpRemote(std::string base_url, std::string token)
    : base_url_(std::move(base_url)), token_(std::move(token)) {
  while (!base_url_.empty() && base_url_.back() == '/') base_url_.pop_back();
}

bool HttpRemote::is_http_url(std::string_view url) {
  return url.rfind("http://", 0) == 0 || url.rfind("https://", 0) == 0;
}

Result<std::unique_ptr<HttpRemote>> HttpRemote::open(std::string_view url,
                                                     const std::string& token_file) {
  if (!is_http_url(url)) return make_error("not an http(s):// URL: " + std::string(url));
  std::string token;
  if (!token_file.empty()) {
    auto text = read_file(token_file, 64 * 1024);
    if (!text) return make_error("--token-file: " + text.message());
    token = trim(*text);
    if (token.empty()) return make_error("--token-file: " + token_file + " is empty");
  } else if (const char* env = std::getenv("DROVER_TOKEN"); env && *env) {
    token = trim(env);
  } else {
    return make_error("no token for remote " + std::string(url) +
                      ": set DROVER_TOKEN or pass --token-file");
  }
  return std::make_unique<HttpRemote>(std::string(url), std::move(token));
}

Result<std::string> HttpRemote::route_of(const std::string& key) const {
  if (std::string h = blob_hash_of(key); !h.empty()) return "/api/v1/blobs/" + h;
  if (key.rfind("refs/", 0) == 0) {
    std::string rest = key.substr(5);
    size_t slash = rest.find('/');
    if (slash != std::string::npos) {
      std::string name = rest.substr(0, slash), tag = rest.substr(slash + 1);
      if (valid_segment(name) && valid_segment(tag))
        return "/api/v1/datasets/" + name + "/refs/" + tag;
    }
  }
  return make_error("remote " + base_url_ + ": unsupported key '" + key + "'", Errc::Invalid);
}

Result<HttpRemote::Response> HttpRemote::perform(const Request& req) const {
  CurlRequest c;
  c.method = req.method;
  c.url = base_url_ + req.route;
  c.headers = {"Authorization: Bearer " + token_, "Expect:"};  // no 100-continue round trip
  if (req.body) c.headers.push_back("Content-Type: application/octet-stream");
  c.body = req.body;
  c.connect_timeout = kConnectTimeout;
  c.low_speed_time = kLowSpeedTime;
  c.protocols = "http,https";
  // A 2xx body goes to `sink_fd` when there is one; error documents are kept for the message.
  std::string text;
  int write_errno = 0;
  c.on_body = [&](std::string_view piece, long status) {
    if (req.sink_fd < 0 || status < 200 || status >= 300) {
      if (text.size() < kMaxErrorBody) text.append(piece);
      return true;
    }
    if (write_all(req.sink_fd, piece)) return true;
    write_errno = errno;
    return false;
  };
  auto r = curl_perform(c);
  if (write_errno)
    return make_error("remote " + base_url_ +
                      ": writing a download failed: " + std::strerror(write_errno));
  if (!r)
    return make_error("remote " + base_url_ + ": " + req.method + " " + req.route + ": " +
                      r.message());
  Response resp;
  resp.status = r->status;
  resp.body = std::move(text);
  return resp;
}

Error HttpRemote::http_error(const std::string& method, const std::string& route,
                             const Response& r) const {
  std::string message;
  json j = json::parse(r.body, nullptr, false);
  if (j.is_object() && j.contains("error") && j["error"].is_object())
    message = j["error"].value("message", "");
  if (message.empty()) {  // e.g. the answer to a HEAD, which has no body
    switch (r.status) {
      case 401:
        message = "missing or invalid bearer token";
        break;
      case 403:
        message = "forbidden";
        break;
      case 413:
        message = "too large";
        break;
      default:
        break;
    }
  }
  std::string text = "remote " + base_url_ + ": " + method + " " + route + ": HTTP " +
                     std::to_string(r.status) + (message.empty() ? "" : ": " + message);
  return make_error(text, r.status == 404 ? Errc::NotFound : Errc::None);
}

Result<bool> HttpRemote::exists(const std::string& key) {
  auto route = route_of(key);
  if (!route) return route.error();
  bool blob = key.rfind("blobs/", 0) == 0;
  Request req;
  req.method = blob ? "HEAD" : "GET";
  req.route = *route;
  auto r = perform(req);
  if (!r) return r.error();
  if (r->status == 200) return true;
  if (r->status == 404) return false;
  return http_error(req.method, req.route, *r);
}

Status HttpRemote::put_file(const std::string& key, const fs::path& src) {
  if (key.rfind("refs/", 0) == 0) {
    auto text = read_file(src, 4096);
    if (!text) return text.error();
    return put_bytes(key, *text);
  }
  auto route = route_of(key);
  if (!route) return route.error();
  int fd = ::open(src.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_error(src.string() + ": " + std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    return make_error(src.string() + ": " + std::strerror(e));
  }
  UploadBody body;
  body.fd = fd;
  body.size = static_cast<uint64_t>(st.st_size);
  Request req;
  req.method = "PUT";
  req.route = *route;
  req.body = &body;
  auto r = perform(req);
  ::close(fd);
  if (!r) return r.error();
  if (r->status != 200 && r->status != 201) return http_error("PUT", req.route, *r);
  return {};
}

Status HttpRemote::put_bytes(const std::string& key, std::string_view data) {
  auto route = route_of(key);
  if (!route) return route.error();
  std::string payload;
  if (key.rfind("refs/", 0) == 0)  // the Remote's ref object is "VERSION\n"; the API's JSON
    payload = json{{"version", trim(std::string(data))}}.dump();
  else
    payload = std::string(data);
  UploadBody body;
  body.data = payload.data();
  body.size = payload.size();
  Request req;
  req.method = "PUT";
  req.route = *route;
  req.body = &body;
  auto r = perform(req);
  if (!r) return r.error();
  if (r->status != 200 && r->status != 201) return http_error("PUT", req.route, *r);
  return {};
}

Status HttpRemote::get_file(const std::string& key, const fs::path& dest) {
  if (key.rfind("refs/", 0) == 0) {
    auto bytes = get_bytes(key);
    if (!bytes) return bytes.error();
    if (!*bytes)
      return make_error("remote " + base_url_ + ": " + key + ": not found", Errc::NotFound);
    return write_file_atomic(dest, **bytes);
  }
  auto route = route_of(key);
  if (!route) return route.error();
  int fd = ::open(dest.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return make_error(dest.string() + ": " + std::strerror(errno));
  Request req;
  req.route = *route;
  req.sink_fd = fd;
  auto r = perform(req);
  ::close(fd);
  Status out;
  if (!r)
    out = r.error();
  else if (r->status != 200)
    out = http_error("GET", req.route, *r);
  if (!out) ::unlink(dest.c_str());
  return out;
}

Result<std::optional<std::string>> HttpRemote::get_bytes(const std::string& key) {
  auto route = route_of(key);
  if (!route) return route.error();
  Request req;
  req.route = *route;
  auto r = perform(req);
  if (!r) return r.error();
  if (r->status == 404) return std::optional<std::string>();
  if (r->status != 200) return http_error("GET", req.route, *r);
  if (key.rfind("refs/", 0) != 0) return std::optional<std::string>(std::move(r->body));
  json j = json::parse(r->body, nullptr, false);
  if (!j.is_object() || !j.contains("version") || !j["version"].is_string())
    return make_error("remote " + base_url_ + ": GET " + req.route +
                      ": malformed answer (expected {\"version\": ...})");
  return std::optional<std::string>(j["version"].get<std::string>() + "\n");
}

}  // namespace drover::data
