// The REST API: a router that is a plain function of (Service, request) over one route
// table, and a Beast server in the shape of Beast's async example — a listener, and a session
// per connection made of do_x/on_x pairs on its own strand, with a timeout on every read and
// write.
#include "web/api_server.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/version.hpp>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>

#include "common/blob_store.hpp"
#include "common/fs.hpp"
#include "common/json_text.hpp"
#include "common/model_ref.hpp"
#include "common/sha256.hpp"
#include "data/registry.hpp"
#include "scheduler/service.hpp"
#include "web/auth.hpp"

namespace drover {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using beast::error_code;
namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------
// Router

namespace {

constexpr size_t kMaxLogChunk = 4u << 20;  // bytes of log per response; clients page on
constexpr int kMaxJsonDepth = 64;
constexpr int kMaxLimit = 1000;
constexpr long long kMaxModelVersion = 1LL << 53;  // a version in a path

const char* reason_code(int status) {
  switch (status) {
    case 400:
      return "bad_request";
    case 401:
      return "unauthorized";
    case 404:
      return "not_found";
    case 405:
      return "method_not_allowed";
    case 409:
      return "conflict";
    case 413:
      return "too_large";
    case 422:
      return "invalid";
    case 503:
      return "unavailable";
    default:
      return "internal";
  }
}

std::string dump(const json& j) { return to_json_text(j); }

ApiResponse error_response(int status, const std::string& message, std::string code = {}) {
  ApiResponse r;
  r.status = status;
  if (code.empty()) code = reason_code(status);
  r.body = dump(json{{"error", {{"code", code}, {"message", message}}}});
  return r;
}

ApiResponse json_response(int status, const json& body) {
  ApiResponse r;
  r.status = status;
  r.body = dump(body);
  return r;
}

// NotFound -> 404, Invalid -> 422, Conflict -> 409, BadRequest -> 400, else 500; the body's
// code is to_string(code), or "internal" with a 500.
ApiResponse service_error(const Error& e) {
  int status = 500;
  switch (e.code) {
    case Errc::NotFound:
      status = 404;
      break;
    case Errc::Invalid:
      status = 422;
      break;
    case Errc::Conflict:
      status = 409;
      break;
    case Errc::BadRequest:
      status = 400;
      break;
    default:
      break;
  }
  if (status == 500) spdlog::warn("api: internal error: {}", e.message);
  return error_response(status, e.message, status == 500 ? "internal" : to_string(e.code));
}

bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t n;
    unsigned cp;
    if (c < 0x80) {
      ++i;
      continue;
    }
    if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else
      return false;
    if (i + n >= s.size()) return false;
    for (size_t k = 1; k <= n; ++k) {
      auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += n + 1;
  }
  return true;
}

// Nesting depth of JSON text, counted outside strings, so that a deeply nested body is
// refused before the parser builds it.
int json_depth(std::string_view s) {
  int depth = 0, max_depth = 0;
  bool in_string = false, escape = false;
  for (char c : s) {
    if (in_string) {
      if (escape)
        escape = false;
      else if (c == '\\')
        escape = true;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      max_depth = std::max(max_depth, ++depth);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return max_depth;
}

// Parses a request body; an empty body is {}.
Result<json> parse_body(const std::string& body) {
  if (body.find_first_not_of(" \t\r\n") == std::string::npos) return json::object();
  if (!valid_utf8(body)) return make_error("request body is not valid UTF-8", Errc::BadRequest);
  if (json_depth(body) > kMaxJsonDepth)
    return make_error("request body is nested too deeply", Errc::BadRequest);
  try {
    return json::parse(body);
  } catch (const json::exception& e) {
    return make_error(std::string("malformed JSON: ") + e.what(), Errc::BadRequest);
  }
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (s[i] == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += s[i];
    }
  }
  return out;
}

struct Target {
  std::vector<std::string> segments;
  std::map<std::string, std::string> query;
};

std::optional<Target> parse_target(std::string_view target) {
  Target t;
  std::string_view path = target, query;
  if (auto q = target.find('?'); q != std::string_view::npos) {
    path = target.substr(0, q);
    query = target.substr(q + 1);
  }
  if (path.empty() || path[0] != '/') return std::nullopt;
  path.remove_prefix(1);
  while (true) {
    auto slash = path.find('/');
    auto seg = percent_decode(path.substr(0, slash), false);
    if (!seg) return std::nullopt;
    t.segments.push_back(std::move(*seg));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  if (!t.segments.empty() && t.segments.back().empty()) t.segments.pop_back();  // "/x/"
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    auto eq = pair.find('=');
    auto key = percent_decode(pair.substr(0, eq), true);
    auto value = percent_decode(eq == std::string_view::npos ? "" : pair.substr(eq + 1), true);
    if (!key || !value) return std::nullopt;
    if (!key->empty()) t.query[*key] = *value;
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return t;
}

// Run, task and DAG ids in paths: [A-Za-z0-9_.-]+, never "." or "..", so an id can
// never name a path outside its folder.
bool valid_id(const std::string& s) {
  if (s.empty() || s.size() > 200 || s == "." || s == "..") return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-')
      return false;
  return true;
}

std::optional<ApiResponse> check_id(const char* what, const std::string& id) {
  if (valid_id(id)) return std::nullopt;
  return error_response(400, std::string("invalid ") + what + " id '" + id +
                                 "' (allowed: letters, digits, '_', '.', '-')");
}

// A decimal integer in [lo, hi].
std::optional<long long> parse_int(const std::string& s, long long lo, long long hi) {
  if (s.empty() || s.size() > 18) return std::nullopt;
  long long v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  if (v < lo || v > hi) return std::nullopt;
  return v;
}

ApiResponse method_not_allowed(const char* allow) {
  ApiResponse r = error_response(405, std::string("method not allowed; use ") + allow);
  r.headers.emplace_back("Allow", allow);
  return r;
}

ApiResponse unauthorized() {
  ApiResponse r = error_response(401, "missing or invalid bearer token");
  r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"drover\"");
  return r;
}

ApiResponse trigger(Service& service, const std::string& dag, const std::string& body) {
  auto parsed = parse_body(body);
  if (!parsed) return service_error(parsed.error());
  const json& j = *parsed;
  if (!j.is_object()) return error_response(422, "request body must be a JSON object");
  json args = {{"params", json::object()}, {"cli_params", json::object()}};
  for (auto& [key, value] : j.items()) {
    if (key != "params" && key != "cli_params")
      return error_response(422, "unknown field '" + key + "' (expected params, cli_params)");
    if (!value.is_object()) return error_response(422, "'" + key + "' must be an object");
    if (key == "cli_params")
      for (auto& [name, v] : value.items())
        if (!v.is_string())
          return error_response(422, "'cli_params." + name + "' must be a string");
    args[key] = value;
  }
  auto run_id = service.trigger(dag, args, "api");
  if (!run_id) return service_error(run_id.error());
  ApiResponse r = json_response(201, {{"run_id", *run_id}});
  r.headers.emplace_back("Location", "/api/v1/runs/" + *run_id);
  return r;
}

ApiResponse list_runs(RunReads& reads, const std::map<std::string, std::string>& query) {
  RunFilter filter;
  if (auto it = query.find("dag"); it != query.end() && !it->second.empty()) {
    if (!valid_id(it->second)) return error_response(422, "invalid dag id '" + it->second + "'");
    filter.dag = it->second;
  }
  if (auto it = query.find("state"); it != query.end() && !it->second.empty()) {
    filter.state = run_state_from(it->second);
    if (!filter.state)
      return error_response(422, "unknown state '" + it->second +
                                     "' (one of queued, running, success, failed, cancelled)");
  }
  if (auto it = query.find("limit"); it != query.end() && !it->second.empty()) {
    auto limit = parse_int(it->second, 1, kMaxLimit);
    if (!limit)
      return error_response(422, "limit must be an integer from 1 to " + std::to_string(kMaxLimit));
    filter.limit = static_cast<int>(*limit);
  }
  if (auto it = query.find("before"); it != query.end() && !it->second.empty())
    filter.before_run = it->second;  // a run id: runs created before it (paging)
  auto runs = reads.list_runs(filter);
  if (!runs) return service_error(runs.error());
  return json_response(200, *runs);
}

ApiResponse task_log(Service& service, const std::string& run, const std::string& task,
                     const std::map<std::string, std::string>& query) {
  std::optional<int> try_number;
  long long offset = 0;
  if (auto it = query.find("try"); it != query.end() && !it->second.empty()) {
    auto n = parse_int(it->second, 1, 1000000);
    if (!n) return error_response(422, "try must be a positive integer");
    try_number = static_cast<int>(*n);
  }
  if (auto it = query.find("offset"); it != query.end() && !it->second.empty()) {
    auto n = parse_int(it->second, 0, (1LL << 62));
    if (!n) return error_response(422, "offset must be a non-negative integer");
    offset = *n;
  }
  // Read by the daemon's executor, wherever the try ran: the API opens no path itself.
  auto chunk = service.read_log(run, task, try_number, static_cast<unsigned long long>(offset),
                                kMaxLogChunk);
  if (!chunk) return service_error(chunk.error());
  ApiResponse r;
  r.content_type = "text/plain";
  r.body = std::move(chunk->bytes);
  r.headers.emplace_back("X-Drover-Log-Size", std::to_string(chunk->size));
  return r;
}

// ---- Blobs and dataset refs (docs/api.md "Blobs and dataset refs"): the daemon as the
// team's data registry, the server side of data/http_remote.hpp. Every name
// that reaches the filesystem is checked first (64 hex digits; [a-z0-9_.-]+), so no request
// can name a path outside HOME/blobs or HOME/datasets.

std::optional<ApiResponse> check_hash(const std::string& sha) {
  if (BlobStore::valid_hash(sha)) return std::nullopt;
  return error_response(400, "invalid blob hash '" + sha + "' (expected 64 lowercase hex digits)");
}

// HEAD, GET or PUT of a checked {sha256} (the route table checks both).
ApiResponse blob_route(const ApiOptions& options, const std::string& method, const std::string& sha,
                       const ApiRequest& req) {
  BlobStore blobs(fs::path(options.home) / "blobs");
  fs::path path = blobs.path_of(sha);
  struct stat st {};
  bool present = ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
  if (method == "HEAD" || method == "GET") {
    if (!present) return error_response(404, "no blob " + sha);
    ApiResponse r;
    r.content_type = "application/octet-stream";
    r.headers.emplace_back("Content-Length", std::to_string(st.st_size));
    r.headers.emplace_back("ETag", "\"" + sha + "\"");
    if (method == "GET") r.body_file = path.string();
    return r;
  }
  // One way in: the server streams an upload into a temp file; a body given in memory (a
  // direct caller of handle_api_request) is written to one first.
  std::string tmp = req.body_file;
  if (tmp.empty()) {
    auto path = blobs.new_temp_path();
    if (!path) return service_error(path.error());
    if (auto s = write_file_atomic(*path, req.body, 0644, /*durable=*/false); !s)
      return service_error(s.error());
    tmp = path->string();
  }
  auto put = blobs.adopt_temp(tmp, sha);
  if (!put && put.error().code == Errc::Mismatch) return error_response(422, put.message());
  if (!put) return service_error(put.error());
  if (present) return json_response(200, {{"sha256", sha}, {"size", put->size}});
  ApiResponse r = json_response(201, {{"sha256", sha}, {"size", put->size}});
  r.headers.emplace_back("Location", "/api/v1/blobs/" + sha);
  return r;
}

// GET or PUT of a checked {name} and {tag}. The refs live in the dataset registry
// (data/registry.hpp), which owns their files, checks and log; this maps its answer.
ApiResponse dataset_ref_route(const ApiOptions& options, const std::string& method,
                              const std::string& name, const std::string& tag,
                              const std::string& body) {
  data::Registry registry{fs::path(options.home)};
  if (method == "GET") {
    auto v = registry.ref(name, tag);
    if (!v) return error_response(404, "dataset '" + name + "' has no ref '" + tag + "'");
    return json_response(200, {{"version", *v}});
  }
  auto parsed = parse_body(body);
  if (!parsed) return service_error(parsed.error());
  const json& j = *parsed;
  if (!j.is_object() || !j.contains("version") || !j["version"].is_string() || j.size() != 1)
    return error_response(422, "request body must be {\"version\": \"<64 hex digits>\"}");
  std::string v = j["version"].get<std::string>();
  // Never waits for the store lock: this runs on the event loop.
  auto set = registry.set_ref(name, tag, v, "pushed " + name + "@" + tag + " through the API",
                              /*wait=*/false);
  if (!set && set.error().code == Errc::Busy)
    return error_response(503, "a snapshot gc is running on this server; retry when it ends");
  if (!set) return service_error(set.error());
  return json_response(200, {{"version", v}});
}

// ---- The model registry (docs/api.md "Models"): the same JSON as `drover models … --json`,
// built by scheduler/store_models.hpp. Reads go through RunReads (the read thread's own
// store connection in the daemon); an alias move goes to the Service, on the loop.

// PUT /api/v1/models/{model}/aliases/{alias}: body {"version": N, "reason": "…", "force":
// false} (reason and force optional). The move is `drover models alias`'s (move_model_alias,
// the same checks), by the API user as a trigger or a cancel is.
ApiResponse set_model_alias(Service& service, const std::string& model, const std::string& alias,
                            const std::string& body) {
  auto parsed = parse_body(body);
  if (!parsed) return service_error(parsed.error());
  const json& j = *parsed;
  const char* shape =
      "request body must be {\"version\": N, \"reason\": \"...\", \"force\": false}";
  if (!j.is_object()) return error_response(422, shape);
  AliasMove m;
  m.name = model;
  m.alias = alias;
  m.by = "api";
  for (auto& [key, value] : j.items()) {
    if (key == "version") {
      if (!value.is_number_integer() || value.get<int64_t>() < 1)
        return error_response(422, "'version' must be a positive integer");
      m.version = value.get<int64_t>();
    } else if (key == "reason") {
      if (!value.is_string()) return error_response(422, "'reason' must be a string");
      m.reason = value.get<std::string>();
    } else if (key == "force") {
      if (!value.is_boolean()) return error_response(422, "'force' must be true or false");
      m.force = value.get<bool>();
    } else {
      return error_response(422, "unknown field '" + key + "' (expected version, reason, force)");
    }
  }
  if (m.version == 0) return error_response(422, shape);
  auto event = service.set_model_alias(m);
  if (!event) return service_error(event.error());
  return json_response(200, *event);
}

// ---- The route table: every route the API has, in one place (docs/api.md lists the same;
// tests/web/http_test.cpp checks that they agree). Dispatch matches the path against each
// pattern; a {name} segment matches any one segment and is checked by its name (below)
// after the method. Unknown paths are 404 and a known path with another method is 405 with
// Allow, both only after authentication, except on routes of scope none.

// What a handler gets: the request, the named segments of its path, its query.
struct Call {
  Service* service;  // null on the blob and read threads (routes that run there never use it)
  RunReads* reads;   // the store's reader on the read thread, else the service
  const ApiOptions& options;
  const ApiRequest& req;
  const Target& target;
  std::vector<std::pair<std::string, std::string>> params;  // in the pattern's order
  const std::string& operator[](std::string_view name) const {
    for (auto& [n, v] : params)
      if (n == name) return v;
    std::abort();  // a handler asked for a segment its own pattern does not name
  }
};

// GET of a checked {model}: its latest version, or the one its {version} or {alias} names
// when the route has one.
ApiResponse model_version_route(const Call& c) {
  models::ModelRef ref{c["model"], std::nullopt, ""};
  for (auto& [name, value] : c.params) {
    if (name == "version") ref.version = std::stoll(value);  // checked: digits, in range
    if (name == "alias") ref.alias = value;
  }
  auto v = c.reads->get_model(ref);
  if (!v) return service_error(v.error());
  return json_response(200, *v);
}

// PUT /api/v1/models/{model}/versions/{version}/tags/{key}: body {"value": "…"}; DELETE of
// the same path removes the tag (no body). The change is `drover models tag`'s / `untag`'s
// (change_model_tags, the same checks and answer), by the API user.
ApiResponse model_tag_route(const Call& c) {
  TagChange t;
  t.ref = models::ModelRef{c["model"], std::stoll(c["version"]), ""};  // checked: in range
  t.by = "api";
  if (c.req.method == "DELETE") {
    t.tags.emplace_back(c["key"], std::nullopt);
  } else {
    auto parsed = parse_body(c.req.body);
    if (!parsed) return service_error(parsed.error());
    const json& j = *parsed;
    if (!j.is_object() || j.size() != 1 || !j.contains("value") || !j["value"].is_string())
      return error_response(422, "request body must be {\"value\": \"...\"}");
    t.tags.emplace_back(c["key"], j["value"].get<std::string>());
  }
  auto changed = c.service->set_model_tags(t);
  if (!changed) return service_error(changed.error());
  return json_response(200, *changed);
}

struct Route {
  std::vector<std::string> methods;  // in the order Allow names them
  std::string pattern;
  ApiScope scope;
  bool needs_home;  // a blob-store route: 404 where the server has no home
  // Its GET is a read of the record only (Call::reads): answered on the server's read thread
  // when it has one, so that a listing never holds the scheduler's loop. Its other methods
  // (a write) go to the Service on the loop.
  bool reads_only;
  ApiResponse (*handler)(const Call&);
};

const std::vector<Route>& route_table() {
  static const std::vector<Route> routes = {
      {{"GET"},
       "/api/v1/health",
       ApiScope::none,
       false,
       false,
       [](const Call&) {
         return json_response(200, {{"status", "ok"}});
       }},
      {{"GET"},
       "/api/v1/dags",
       ApiScope::user,
       false,
       false,
       [](const Call& c) { return json_response(200, c.service->list_dags()); }},
      {{"GET"},
       "/api/v1/dags/{dag}",
       ApiScope::user,
       false,
       false,
       [](const Call& c) {
         auto dag = c.service->get_dag(c["dag"]);
         if (!dag) return service_error(dag.error());
         return json_response(200, *dag);
       }},
      {{"POST"},
       "/api/v1/dags/{dag}/trigger",
       ApiScope::user,
       false,
       false,
       [](const Call& c) { return trigger(*c.service, c["dag"], c.req.body); }},
      {{"GET"},
       "/api/v1/runs",
       ApiScope::user,
       false,
       true,
       [](const Call& c) { return list_runs(*c.reads, c.target.query); }},
      {{"GET"},
       "/api/v1/alerts",
       ApiScope::user,
       false,
       false,
       [](const Call& c) {
         return json_response(200, {{"deliveries", c.service->alert_deliveries()}});
       }},
      {{"GET"},
       "/api/v1/runs/{run}",
       ApiScope::user,
       false,
       true,
       [](const Call& c) {
         auto run = c.reads->get_run(c["run"]);
         if (!run) return service_error(run.error());
         return json_response(200, *run);
       }},
      {{"POST"},
       "/api/v1/runs/{run}/cancel",
       ApiScope::user,
       false,
       false,
       [](const Call& c) {
         if (auto s = c.service->cancel(c["run"], "api"); !s) return service_error(s.error());
         return json_response(200, {{"run_id", c["run"]}});
       }},
      {{"GET"},
       "/api/v1/runs/{run}/tasks/{task}/logs",
       ApiScope::user,
       false,
       false,
       [](const Call& c) { return task_log(*c.service, c["run"], c["task"], c.target.query); }},
      {{"HEAD", "GET", "PUT"},
       "/api/v1/blobs/{sha256}",
       ApiScope::user,
       true,
       false,
       [](const Call& c) { return blob_route(c.options, c.req.method, c["sha256"], c.req); }},
      {{"GET", "PUT"},
       "/api/v1/datasets/{name}/refs/{tag}",
       ApiScope::user,
       true,
       false,
       [](const Call& c) {
         return dataset_ref_route(c.options, c.req.method, c["name"], c["tag"], c.req.body);
       }},
      {{"GET"},
       "/api/v1/models",
       ApiScope::user,
       false,
       true,
       [](const Call& c) {
         auto models = c.reads->list_models();
         if (!models) return service_error(models.error());
         return json_response(200, *models);
       }},
      {{"GET"}, "/api/v1/models/{model}", ApiScope::user, false, true, model_version_route},
      {{"GET"},
       "/api/v1/models/{model}/versions/{version}",
       ApiScope::user,
       false,
       true,
       model_version_route},
      {{"GET", "PUT"},
       "/api/v1/models/{model}/aliases/{alias}",
       ApiScope::user,
       false,
       true,
       [](const Call& c) {
         if (c.req.method == "GET") return model_version_route(c);
         return set_model_alias(*c.service, c["model"], c["alias"], c.req.body);
       }},
      {{"PUT", "DELETE"},
       "/api/v1/models/{model}/versions/{version}/tags/{key}",
       ApiScope::user,
       false,
       false,
       model_tag_route},
      {{"GET"},
       "/api/v1/models/{model}/history",
       ApiScope::user,
       false,
       true,
       [](const Call& c) {
         auto history = c.reads->model_history(c["model"]);
         if (!history) return service_error(history.error());
         return json_response(200, *history);
       }},
  };
  return routes;
}

// A path segment named {NAME} is checked by its name before any handler sees it, so no id
// can name a path outside its folder.
std::optional<ApiResponse> check_param(const std::string& name, const std::string& value) {
  if (name == "dag" || name == "run" || name == "task") return check_id(name.c_str(), value);
  if (name == "sha256") return check_hash(value);
  if (name == "name" && !data::valid_dataset_name(value))
    return error_response(400, "invalid dataset name '" + value + "' (allowed: [a-z0-9_.-]+)");
  if (name == "tag" && value != "latest" && !data::valid_tag_name(value))
    return error_response(400, "invalid tag '" + value + "' (allowed: [A-Za-z0-9_.-]+)");
  if (name == "model" && !models::valid_model_name(value))
    return error_response(400,
                          "invalid model name '" + value + "' (allowed: [a-z0-9][a-z0-9_.-]*)");
  if (name == "version" && !parse_int(value, 1, kMaxModelVersion))
    return error_response(400, "invalid version '" + value + "' (a positive integer)");
  if (name == "alias" && !models::valid_alias(value))
    return error_response(400, "invalid alias '" + value + "' (allowed: [a-z0-9_-]+)");
  if (name == "key" && !models::valid_tag_key(value))
    return error_response(400,
                          "invalid tag key '" + value + "' (allowed: 1 to 64 of [A-Za-z0-9_.-])");
  return std::nullopt;
}

// The named segments, in order, when `segments` matches `pattern`.
std::optional<std::vector<std::pair<std::string, std::string>>> match(
    const std::string& pattern, const std::vector<std::string>& segments) {
  std::vector<std::pair<std::string, std::string>> params;
  size_t i = 0, start = 1;  // every pattern starts with '/'
  while (start <= pattern.size()) {
    size_t end = pattern.find('/', start);
    if (end == std::string::npos) end = pattern.size();
    if (i == segments.size()) return std::nullopt;
    std::string_view piece(pattern.data() + start, end - start);
    if (piece.size() > 2 && piece.front() == '{' && piece.back() == '}')
      params.emplace_back(piece.substr(1, piece.size() - 2), segments[i]);
    else if (piece != segments[i])
      return std::nullopt;
    ++i;
    start = end + 1;
  }
  if (i != segments.size()) return std::nullopt;
  return params;
}

std::string allow_of(const Route& r) {
  std::string allow;
  for (auto& m : r.methods) allow += (allow.empty() ? "" : ", ") + m;
  return allow;
}

// What every route checks before its handler: the server has a home (blob routes), the
// method, the named segments.
std::optional<ApiResponse> precheck(const Route& r, const Call& call) {
  if (r.needs_home && call.options.home.empty())
    return error_response(404, "the blob API is not enabled here");
  if (std::find(r.methods.begin(), r.methods.end(), call.req.method) == r.methods.end())
    return method_not_allowed(allow_of(r).c_str());
  for (auto& [name, value] : call.params)
    if (auto bad = check_param(name, value)) return bad;
  return std::nullopt;
}

// `service` is null on the read thread, where only routes that are reads_only are sent.
ApiResponse route(Service* service, RunReads& reads, const ApiOptions& options,
                  const ApiRequest& req) {
  auto target = parse_target(req.target);
  if (!target) return error_response(400, "malformed request target");
  const Route* found = nullptr;
  std::vector<std::pair<std::string, std::string>> params;
  for (auto& r : route_table())
    if (auto p = match(r.pattern, target->segments)) {
      found = &r;
      params = std::move(*p);
      break;
    }
  // An unauthenticated caller learns nothing about routes: 401 comes before 404 and 405.
  if ((!found || found->scope != ApiScope::none) &&
      !token_matches(bearer_token(req.authorization), options.token_sha256))
    return unauthorized();
  if (!found) return error_response(404, "no route for " + req.method + " " + req.target);
  if (!service && !(found->reads_only && req.method == "GET"))
    return error_response(
        500, "internal error: " + req.method + " " + found->pattern + " sent to the read thread");
  Call call{service, &reads, options, req, *target, std::move(params)};
  if (auto bad = precheck(*found, call)) return *bad;
  return found->handler(call);
}

// True when a request for `target` needs the token: every route but the open ones, and any
// target that names no route (a caller without the token learns nothing of the routes).
bool needs_token(std::string_view target) {
  auto t = parse_target(target);
  if (!t) return true;
  for (auto& r : route_table())
    if (match(r.pattern, t->segments)) return r.scope != ApiScope::none;
  return true;
}

// True when `method` on the route `target` names only reads the record (a GET of a
// reads_only route: answered on the read thread).
bool reads_only(std::string_view method, std::string_view target) {
  if (method != "GET") return false;
  auto t = parse_target(target);
  if (!t) return false;
  for (auto& r : route_table())
    if (match(r.pattern, t->segments)) return r.reads_only;
  return false;
}

// A blob upload streamed to a file; runs on the blob thread, so it touches no Service.
ApiResponse route_blob_upload(const ApiOptions& options, const ApiRequest& req) {
  auto target = parse_target(req.target);
  if (!target) return error_response(400, "malformed request target");
  if (!token_matches(bearer_token(req.authorization), options.token_sha256)) return unauthorized();
  const Route* blobs = nullptr;
  for (auto& r : route_table())
    if (r.pattern == "/api/v1/blobs/{sha256}") blobs = &r;
  auto params = match(blobs->pattern, target->segments);
  if (!params) return error_response(404, "no route for " + req.method + " " + req.target);
  Call call{nullptr, nullptr, options, req, *target, std::move(*params)};
  if (auto bad = precheck(*blobs, call)) return *bad;
  // Not beside a gc (which could delete the blob right after it was found already there);
  // waiting is fine on the blob thread.
  auto lock = data::lock_store(options.home, false, /*wait=*/true);
  if (!lock) return service_error(lock.error());
  return blobs->handler(call);
}

}  // namespace

std::vector<ApiRoute> api_routes() {
  std::vector<ApiRoute> out;
  for (auto& r : route_table()) out.push_back({r.methods, r.pattern, r.scope});
  return out;
}

ApiResponse handle_blob_upload(const ApiOptions& options, const ApiRequest& request) {
  try {
    return route_blob_upload(options, request);
  } catch (const std::exception& e) {
    spdlog::warn("api: {} {}: {}", request.method, request.target, e.what());
    return error_response(500, std::string("internal error: ") + e.what());
  }
}

ApiResponse handle_api_request(Service& service, const ApiOptions& options,
                               const ApiRequest& request) {
  try {
    return route(&service, service, options, request);
  } catch (const std::exception& e) {
    spdlog::warn("api: {} {}: {}", request.method, request.target, e.what());
    return error_response(500, std::string("internal error: ") + e.what());
  }
}

ApiResponse handle_run_read(RunReads& reads, const ApiOptions& options, const ApiRequest& request) {
  try {
    return route(nullptr, reads, options, request);
  } catch (const std::exception& e) {
    spdlog::warn("api: {} {}: {}", request.method, request.target, e.what());
    return error_response(500, std::string("internal error: ") + e.what());
  }
}

// ---------------------------------------------------------------------------------------
// Server

namespace {

constexpr auto kIoTimeout = std::chrono::seconds(30);
constexpr auto kDrainTimeout = std::chrono::seconds(5);
constexpr size_t kDrainLimit = 64u << 20;

class Session;

// What the listener and every session share. Sessions register themselves so that stop()
// can close them.
struct Shared {
  Shared(Service& s, ApiOptions o) : service(s), options(std::move(o)) {}
  Service& service;
  ApiOptions options;
  // Hashes and stores uploaded blobs off the event loop (owned by ApiServer::Impl, so it is
  // never destroyed on its own thread).
  net::thread_pool* blob_pool = nullptr;
  // Answers the reads_only routes through `reads` off the event loop, when the server was
  // given a reader (owned by ApiServer::Impl too).
  RunReads* reads = nullptr;
  net::thread_pool* read_pool = nullptr;
  std::mutex mu;
  std::map<Session*, std::weak_ptr<Session>> sessions;
  std::map<std::string, size_t> per_address;  // open sessions by client address
  bool stopped = false;
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<Shared> shared, std::string address)
      : stream_(std::move(socket)), shared_(std::move(shared)), address_(std::move(address)) {}

  ~Session() {
    std::lock_guard lock(shared_->mu);
    shared_->sessions.erase(this);
    auto it = shared_->per_address.find(address_);
    if (it != shared_->per_address.end() && --it->second == 0) shared_->per_address.erase(it);
  }

  void run() {
    {
      std::lock_guard lock(shared_->mu);
      if (shared_->stopped) return;
      shared_->sessions[this] = weak_from_this();
    }
    net::dispatch(stream_.get_executor(),
                  beast::bind_front_handler(&Session::do_read, shared_from_this()));
  }

  // Called from stop(): closes the socket on the session's strand.
  void close_soon() {
    net::post(stream_.get_executor(), [self = shared_from_this()] { self->stream_.close(); });
  }

 private:
  // A request is read in three steps: the header (so the body limit and the body's
  // destination can depend on the route: blobs may be large), then the body in pieces, each
  // under its own timeout (a large upload may take long as a whole but must keep moving).
  // A blob upload (PUT /api/v1/blobs/{sha256}) is streamed into a temp file in the blob
  // store, never held in memory, and hashed and stored on the blob thread, not on the
  // daemon's event loop.
  void do_read() {
    header_parser_.emplace();
    // Beast checks a Content-Length against the limit as the header completes, so the
    // header is read under the larger limit and on_header narrows it for other routes.
    body_limit_ = std::max(shared_->options.max_body, shared_->options.max_blob_body);
    header_parser_->body_limit(body_limit_);
    header_parser_->header_limit(16 * 1024);
    stream_.expires_after(kIoTimeout);
    http::async_read_header(stream_, buffer_, *header_parser_,
                            beast::bind_front_handler(&Session::on_header, shared_from_this()));
  }

  void on_header(error_code ec, size_t) {
    if (ec) return on_read(ec, 0);
    auto& req = header_parser_->get();
    std::string_view target(req.target().data(), req.target().size());
    bool blob = target.rfind("/api/v1/blobs/", 0) == 0;
    // The token is checked from the headers, before a byte of the body is read: a caller
    // without it gets 401 at once and holds no buffer (1,000 token-less connections each
    // trickling a 1 MiB body held 1 GB).
    auto auth = req[http::field::authorization];
    bool open = !needs_token(target);
    if (!open && !token_matches(bearer_token(std::string_view(auth.data(), auth.size())),
                                shared_->options.token_sha256))
      return send_error(401, "missing or invalid bearer token");
    // Only a blob upload (PUT, streamed to a file) may be large; any other method on any
    // route is held to max_body (a POST to a blob was buffered in memory up to 64 GiB), and
    // an open route (the health check, which anyone may call) takes no body at all.
    body_limit_ = open                                      ? 0
                  : blob && req.method() == http::verb::put ? shared_->options.max_blob_body
                                                            : shared_->options.max_body;
    if (auto length = header_parser_->content_length(); length && *length > body_limit_)
      return on_read(http::error::body_limit, 0);
    bool expect_continue = beast::iequals(req[http::field::expect], "100-continue");
    if (blob && req.method() == http::verb::put && !shared_->options.home.empty()) {
      auto tmp = BlobStore(fs::path(shared_->options.home) / "blobs").new_temp_path();
      if (!tmp) return send_error(500, tmp.message());
      file_parser_.emplace(std::move(*header_parser_));
      header_parser_.reset();
      file_parser_->body_limit(body_limit_);
      error_code fec;
      file_parser_->get().body().open(tmp->c_str(), beast::file_mode::write_new, fec);
      if (fec) {
        file_parser_.reset();
        return send_error(500, "cannot create " + tmp->string() + ": " + fec.message());
      }
      upload_tmp_ = tmp->string();
    } else {
      parser_.emplace(std::move(*header_parser_));
      header_parser_.reset();
      parser_->body_limit(body_limit_);
    }
    if (expect_continue && !body_done()) {
      continue_ = {};
      continue_.version(11);
      continue_.result(http::status::continue_);
      stream_.expires_after(kIoTimeout);
      return http::async_write(stream_, continue_,
                               [self = shared_from_this()](error_code ec, size_t) {
                                 if (ec) return self->discard_upload();
                                 self->do_read_body();
                               });
    }
    do_read_body();
  }

  bool body_done() const { return file_parser_ ? file_parser_->is_done() : parser_->is_done(); }

  void do_read_body() {
    if (file_parser_) return read_body_of(*file_parser_);
    read_body_of(*parser_);
  }

  template <class Parser>
  void read_body_of(Parser& parser) {
    if (parser.is_done()) return on_read({}, 0);
    stream_.expires_after(kIoTimeout);
    http::async_read_some(stream_, buffer_, parser,
                          [self = shared_from_this()](error_code ec, size_t) {
                            if (ec) return self->on_read(ec, 0);
                            self->do_read_body();
                          });
  }

  // Closes and deletes a partly received upload.
  void discard_upload() {
    if (file_parser_) {
      file_parser_->get().body().close();
      file_parser_.reset();
    }
    if (!upload_tmp_.empty()) ::unlink(upload_tmp_.c_str());
    upload_tmp_.clear();
  }

  void on_read(error_code ec, size_t) {
    if (ec) discard_upload();
    if (ec == http::error::end_of_stream) return do_close();
    if (ec == http::error::body_limit)
      return send_error(413, "request body over " + std::to_string(body_limit_) + " bytes");
    if (ec == http::error::header_limit) return send_error(400, "request header too large");
    if (ec && ec.category() == http::make_error_code(http::error::bad_target).category() &&
        ec != http::error::partial_message)  // a parse error
      return send_error(400, "malformed HTTP request: " + ec.message());
    if (ec) return;  // timeout, reset, or closed by stop(): the connection is gone

    if (file_parser_) return on_upload();
    auto req = parser_->release();
    parser_.reset();
    ApiRequest request{std::string(req.method_string()),
                       std::string(req.target()),
                       std::string(req[http::field::authorization]),
                       std::move(req.body()),
                       {}};
    if (shared_->read_pool && reads_only(request.method, request.target))
      return on_run_read(std::move(request), req.version(), req.keep_alive());
    ApiResponse r = handle_api_request(shared_->service, shared_->options, request);
    respond(request, r, req.version(), req.keep_alive());
  }

  // A listing or a run record: read on the read thread (its own store connection), then
  // answered back on this session's strand. The scheduler's loop only parses and writes.
  void on_run_read(ApiRequest request, unsigned version, bool keep_alive) {
    net::post(*shared_->read_pool, [self = shared_from_this(), request = std::move(request),
                                    version, keep_alive]() mutable {
      ApiResponse r = handle_run_read(*self->shared_->reads, self->shared_->options, request);
      net::post(self->stream_.get_executor(),
                [self, request = std::move(request), r = std::move(r), version,
                 keep_alive]() mutable { self->respond(request, r, version, keep_alive); });
    });
  }

  // A blob upload is complete in its temp file: hash and store it on the blob thread, then
  // answer back on this session's strand.
  void on_upload() {
    auto req = file_parser_->release();
    file_parser_.reset();
    req.body().close();
    ApiRequest request{std::string(req.method_string()),
                       std::string(req.target()),
                       std::string(req[http::field::authorization]),
                       {},
                       {}};
    request.body_file = std::move(upload_tmp_);
    upload_tmp_.clear();
    unsigned version = req.version();
    bool keep_alive = req.keep_alive();
    if (!shared_->blob_pool) {  // the server is gone (stopped and destroyed)
      ::unlink(request.body_file.c_str());
      return stream_.close();
    }
    net::post(*shared_->blob_pool, [self = shared_from_this(), request = std::move(request),
                                    version, keep_alive] {
      ApiResponse r = handle_blob_upload(self->shared_->options, request);
      ::unlink(request.body_file.c_str());  // gone already unless it was refused
      net::post(self->stream_.get_executor(), [self, request, r, version, keep_alive]() mutable {
        self->respond(request, r, version, keep_alive);
      });
    });
  }

  void respond(const ApiRequest& request, ApiResponse& r, unsigned version, bool keep_alive) {
    spdlog::debug("api: {} {} {}", request.method, request.target, r.status);
    res_ = {};
    res_.version(version);
    res_.keep_alive(keep_alive);
    fill(r, request.method == "HEAD");
    do_write();
  }

  template <class Message>
  void set_headers(Message& m, const ApiResponse& r) {
    m.result(static_cast<unsigned>(r.status));
    m.set(http::field::server, "drover");
    m.set(http::field::content_type, r.content_type);
    m.set(http::field::cache_control, "no-store");
    for (auto& [name, value] : r.headers) m.set(name, value);
  }

  // A response to HEAD keeps the Content-Length the handler gave (the size of what GET
  // would send) and carries no body. A body_file is streamed from disk.
  void fill(ApiResponse& r, bool head = false) {
    file_res_.reset();
    if (!r.body_file.empty() && !head) {
      http::file_body::value_type file;
      error_code ec;
      file.open(r.body_file.c_str(), beast::file_mode::scan, ec);
      if (!ec) {
        file_res_.emplace();
        file_res_->version(res_.version());
        file_res_->keep_alive(res_.keep_alive());
        set_headers(*file_res_, r);
        file_res_->body() = std::move(file);
        file_res_->prepare_payload();
        file_sr_.emplace(*file_res_);
        return;
      }
      r = error_response(404, "cannot open the response body: " + ec.message());
    }
    set_headers(res_, r);
    if (head) {
      bool has_length = std::any_of(r.headers.begin(), r.headers.end(), [](auto& h) {
        return beast::iequals(h.first, "Content-Length");
      });
      if (!has_length) res_.content_length(r.body.size());
      return;
    }
    res_.body() = std::move(r.body);
    res_.prepare_payload();
  }

  // An answer to a request that could not be read whole: the connection ends after it.
  void send_error(int status, const std::string& message) {
    ApiResponse r;
    r.status = status;
    r.body = dump(json{{"error", {{"code", reason_code(status)}, {"message", message}}}});
    if (status == 401) r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"drover\"");
    res_ = {};
    res_.version(11);
    res_.keep_alive(false);
    fill(r);
    drain_after_write_ = true;
    do_write();
  }

  void do_write() {
    if (file_res_) return do_write_file();
    stream_.expires_after(kIoTimeout);
    http::async_write(stream_, res_,
                      beast::bind_front_handler(&Session::on_write, shared_from_this()));
  }

  // A file body goes out in pieces, each under its own timeout.
  void do_write_file() {
    if (file_sr_->is_done()) return on_write({}, 0);
    stream_.expires_after(kIoTimeout);
    http::async_write_some(stream_, *file_sr_, [self = shared_from_this()](error_code ec, size_t) {
      if (ec) return;
      self->do_write_file();
    });
  }

  void on_write(error_code ec, size_t) {
    if (ec) return;
    if (drain_after_write_) return do_drain();
    bool need_eof = file_res_ ? file_res_->need_eof() : res_.need_eof();
    file_sr_.reset();
    file_res_.reset();
    if (need_eof) return do_close();
    do_read();
  }

  // After refusing a request whose body we did not read, half-close and read (and drop)
  // what the client still sends: closing with unread data would reset the connection and
  // the client could lose our answer.
  void do_drain() {
    error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(kDrainTimeout);
    drain_read();
  }

  void drain_read() {
    if (drained_ > kDrainLimit) return stream_.close();
    drain_buf_.resize(64 * 1024);
    stream_.async_read_some(net::buffer(drain_buf_),
                            [self = shared_from_this()](error_code ec, size_t n) {
                              if (ec) return self->stream_.close();
                              self->drained_ += n;
                              self->drain_read();
                            });
  }

  void do_close() {
    error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::empty_body>> header_parser_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::request_parser<http::file_body>> file_parser_;  // a blob upload
  std::string upload_tmp_;  // its temp file, until handed to the blob thread
  http::response<http::string_body> res_;
  http::response<http::empty_body> continue_;
  std::optional<http::response<http::file_body>> file_res_;
  std::optional<http::response_serializer<http::file_body>> file_sr_;
  size_t body_limit_ = 0;
  std::shared_ptr<Shared> shared_;
  std::string address_;  // the client's, counted in Shared::per_address
  bool drain_after_write_ = false;
  std::vector<char> drain_buf_;
  size_t drained_ = 0;
};

// Fills in the connection caps left 0 from the descriptors this process may open.
ApiOptions with_connection_limits(ApiOptions o) {
  if (o.max_connections == 0) {
    rlimit rl{};
    size_t soft = ::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
                      ? static_cast<size_t>(rl.rlim_cur)
                      : size_t{1} << 20;
    o.max_connections =
        soft > ApiOptions::kDescriptorReserve + 32 ? soft - ApiOptions::kDescriptorReserve : 16;
  }
  if (o.max_connections_per_address == 0)
    o.max_connections_per_address = std::max<size_t>(1, o.max_connections / 2);
  return o;
}

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  Listener(net::io_context& io, tcp::acceptor acceptor, std::shared_ptr<Shared> shared)
      : io_(io), acceptor_(std::move(acceptor)), retry_(io), shared_(std::move(shared)) {}

  void do_accept() {
    acceptor_.async_accept(net::make_strand(io_),
                           beast::bind_front_handler(&Listener::on_accept, shared_from_this()));
  }

  void close() {
    error_code ignored;
    acceptor_.close(ignored);
    retry_.cancel();
  }

 private:
  void on_accept(error_code ec, tcp::socket socket) {
    if (!acceptor_.is_open() || ec == net::error::operation_aborted) return;
    if (ec) {
      // Out of file descriptors and the like: wait a little instead of spinning.
      spdlog::warn("api: accept: {}", ec.message());
      retry_.expires_after(std::chrono::milliseconds(100));
      retry_.async_wait([self = shared_from_this()](error_code ec) {
        if (!ec) self->do_accept();
      });
      return;
    }
    error_code aec;
    auto peer = socket.remote_endpoint(aec);
    std::string address = aec ? std::string() : peer.address().to_string();
    bool admitted = false;
    {
      std::lock_guard lock(shared_->mu);
      const ApiOptions& o = shared_->options;
      size_t& mine = shared_->per_address[address];
      if (shared_->sessions.size() < o.max_connections && mine < o.max_connections_per_address) {
        ++mine;
        admitted = true;
      } else if (mine == 0) {
        shared_->per_address.erase(address);
      }
    }
    if (!admitted) {
      // Over the cap: told so at once and closed, holding nothing (a best-effort write on
      // a non-blocking socket; a client that does not read it loses only the message).
      static const std::string busy = [] {
        std::string body =
            "{\"error\":{\"code\":\"unavailable\",\"message\":\"too many connections; try "
            "again\"}}\n";
        return "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: "
               "application/json\r\nContent-Length: " +
               std::to_string(body.size()) + "\r\n\r\n" + body;
      }();
      error_code ignored;
      socket.non_blocking(true, ignored);
      socket.write_some(net::buffer(busy), ignored);
      socket.close(ignored);
      if (!warned_) spdlog::warn("api: connection limit reached; refusing new connections");
      warned_ = true;
      return do_accept();
    }
    warned_ = false;
    std::make_shared<Session>(std::move(socket), shared_, std::move(address))->run();
    do_accept();
  }

  net::io_context& io_;
  tcp::acceptor acceptor_;
  net::steady_timer retry_;
  std::shared_ptr<Shared> shared_;
  bool warned_ = false;
};

// "HOST:PORT" or "[V6]:PORT" -> host, port.
std::optional<std::pair<std::string, std::string>> split_host_port(const std::string& s) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos || colon + 1 == s.size()) return std::nullopt;
  std::string host = s.substr(0, colon), port = s.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (host.empty()) host = "127.0.0.1";
  if (port.find_first_not_of("0123456789") != std::string::npos || port.size() > 5)
    return std::nullopt;
  return std::make_pair(host, port);
}

}  // namespace

struct ApiServer::Impl {
  Impl(net::io_context& i, Service& s, ApiOptions o, RunReads* reads)
      : io(i), shared(std::make_shared<Shared>(s, with_connection_limits(std::move(o)))) {
    shared->blob_pool = &blob_pool;
    if (reads) {
      shared->reads = reads;
      shared->read_pool = &read_pool;
    }
  }
  // Sessions may outlive the server (their handlers still queued on `io`): they find no
  // pool and drop an upload instead of posting to a destroyed one.
  ~Impl() {
    shared->blob_pool = nullptr;
    shared->read_pool = nullptr;
    read_pool.join();
    blob_pool.join();
  }
  net::io_context& io;
  std::shared_ptr<Shared> shared;
  std::shared_ptr<Listener> listener;
  // The pools are declared last, so they are joined first when the server goes.
  // One thread: uploads are disk- and hash-bound, and the event loop keeps the other core.
  net::thread_pool blob_pool{1};
  // One thread, for the one reader connection (a Store is used by one thread at a time).
  net::thread_pool read_pool{1};
};

ApiServer::ApiServer(net::io_context& io, Service& service, ApiOptions options, RunReads* reads)
    : impl_(std::make_unique<Impl>(io, service, std::move(options), reads)) {}

ApiServer::~ApiServer() { stop(); }

Result<std::string> ApiServer::listen(const std::string& host_port) {
  if (impl_->listener) return make_error("the API server is already listening");
  auto hp = split_host_port(host_port);
  if (!hp) return make_error("invalid listen address '" + host_port + "' (expected HOST:PORT)");
  auto fail = [&](const error_code& ec) {
    return make_error("cannot listen on " + host_port + ": " + ec.message());
  };
  error_code ec;
  tcp::resolver resolver(impl_->io);
  auto results = resolver.resolve(hp->first, hp->second,
                                  tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec) return fail(ec);
  if (results.empty()) return fail(net::error::host_not_found);
  tcp::endpoint endpoint = results.begin()->endpoint();
  tcp::acceptor acceptor(impl_->io);
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return fail(ec);
  tcp::endpoint bound = acceptor.local_endpoint(ec);
  if (ec) return fail(ec);
  {
    std::lock_guard lock(impl_->shared->mu);
    impl_->shared->stopped = false;
  }
  impl_->listener = std::make_shared<Listener>(impl_->io, std::move(acceptor), impl_->shared);
  impl_->listener->do_accept();

  auto address = bound.address();
  std::string host;
  if (address.is_unspecified())
    host = "127.0.0.1";
  else if (address.is_v6())
    host = "[" + address.to_string() + "]";
  else
    host = address.to_string();
  return "http://" + host + ":" + std::to_string(bound.port());
}

void ApiServer::stop() {
  if (impl_->listener) {
    impl_->listener->close();
    impl_->listener.reset();
  }
  std::vector<std::shared_ptr<Session>> open;
  {
    std::lock_guard lock(impl_->shared->mu);
    impl_->shared->stopped = true;
    for (auto& [_, weak] : impl_->shared->sessions)
      if (auto s = weak.lock()) open.push_back(std::move(s));
  }
  for (auto& s : open) s->close_soon();
}

}  // namespace drover
