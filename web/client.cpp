// A synchronous client over Beast: each operation is started asynchronously on a private
// io_context and run to completion, which gives every step a timeout (beast::tcp_stream's).
#include "web/client.hpp"

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <chrono>
#include <cstdlib>

#include "common/fs.hpp"

namespace drover {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using beast::error_code;
using json = nlohmann::json;

namespace {

constexpr auto kConnectTimeout = std::chrono::seconds(10);
constexpr auto kIoTimeout = std::chrono::seconds(30);
constexpr uint64_t kMaxResponse = 256u << 20;

std::string trim(std::string s) {
  auto not_space = [](unsigned char c) { return !std::isspace(c); };
  s.erase(s.begin(), std::find_if(s.begin(), s.end(), not_space));
  s.erase(std::find_if(s.rbegin(), s.rend(), not_space).base(), s.end());
  return s;
}

struct Url {
  std::string host, port, prefix, host_header;
};

Result<Url> parse_url(const std::string& url) {
  const std::string kScheme = "http://";
  if (url.rfind("https://", 0) == 0)
    return make_error("'" + url + "': https is not supported yet; use http://");
  if (url.rfind(kScheme, 0) != 0)
    return make_error("'" + url + "': server URL must start with http://");
  std::string rest = url.substr(kScheme.size());
  Url u;
  auto slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  if (slash != std::string::npos) u.prefix = rest.substr(slash);
  while (!u.prefix.empty() && u.prefix.back() == '/') u.prefix.pop_back();
  u.host_header = authority;
  if (!authority.empty() && authority[0] == '[') {
    auto close = authority.find(']');
    if (close == std::string::npos) return make_error("'" + url + "': malformed IPv6 address");
    u.host = authority.substr(1, close - 1);
    std::string tail = authority.substr(close + 1);
    if (!tail.empty() && tail[0] == ':') u.port = tail.substr(1);
  } else {
    auto colon = authority.rfind(':');
    u.host = authority.substr(0, colon);
    if (colon != std::string::npos) u.port = authority.substr(colon + 1);
  }
  if (u.port.empty()) u.port = "80";
  if (u.host.empty() || u.port.find_first_not_of("0123456789") != std::string::npos)
    return make_error("'" + url + "': expected http://HOST:PORT");
  return u;
}

}  // namespace

// ---------------------------------------------------------------------------------------

Result<ClientConfig> resolve_client(std::optional<std::string> home,
                                    std::optional<std::string> server) {
  ClientConfig c;
  c.home = home && !home->empty() ? std::filesystem::path(*home) : std::filesystem::path(".drover");
  if (server && !server->empty()) {
    c.url = *server;
  } else if (const char* env = std::getenv("DROVER_SERVER"); env && *env) {
    c.url = env;
  } else {
    auto path = c.home / "server.json";
    std::error_code ec;
    if (!std::filesystem::exists(path, ec))
      return make_error(
          "cannot find the server: pass --server URL, set DROVER_SERVER, or "
          "point --home at the daemon's folder (" +
          path.string() + " does not exist)");
    auto text = read_file(path, 1 << 20);
    if (!text) return text.error();
    json j = json::parse(*text, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("url") || !j["url"].is_string())
      return make_error(path.string() + ": expected {\"url\": \"http://...\"}");
    c.url = j["url"].get<std::string>();
  }
  while (!c.url.empty() && c.url.back() == '/') c.url.pop_back();
  if (auto u = parse_url(c.url); !u) return u.error();

  if (const char* env = std::getenv("DROVER_TOKEN"); env && *env) {
    c.token = trim(env);
  } else {
    auto path = c.home / "token";
    std::error_code ec;
    if (!std::filesystem::exists(path, ec))
      return make_error(
          "cannot find the API token: set DROVER_TOKEN or point --home at the "
          "daemon's folder (" +
          path.string() + " does not exist)");
    auto text = read_file(path, 4096);
    if (!text) return text.error();
    c.token = trim(*text);
    if (c.token.empty()) return make_error(path.string() + ": empty token file");
  }
  return c;
}

// ---------------------------------------------------------------------------------------

struct HttpClient::Impl {
  net::io_context io;
  beast::tcp_stream stream{io};
  beast::flat_buffer buffer;
  bool connected = false;
  int connections = 0;

  // Runs one asynchronous operation to completion and returns its error.
  template <class Start>
  error_code run(Start start) {
    error_code result = net::error::would_block;
    start([&result](error_code ec, auto&&...) { result = ec; });
    io.restart();
    io.run();
    return result;
  }

  void close() {
    stream.close();
    buffer.clear();
    connected = false;
  }
};

HttpClient::HttpClient(ClientConfig config)
    : config_(std::move(config)), impl_(std::make_unique<Impl>()) {}

HttpClient::~HttpClient() = default;

int HttpClient::connections_opened() const { return impl_->connections; }

Result<HttpResponse> HttpClient::request(const std::string& method, const std::string& target,
                                         const std::string& body) {
  auto url = parse_url(config_.url);
  if (!url) return url.error();
  auto fail = [&](const std::string& what, const error_code& ec) {
    impl_->close();
    std::string why = ec == beast::error::timeout ? "timed out" : ec.message();
    return make_error(what + " " + config_.url + ": " + why);
  };
  http::request<http::string_body> req;
  req.method_string(method);
  req.target(url->prefix + target);
  req.version(11);
  req.set(http::field::host, url->host_header);
  req.set(http::field::user_agent, "drover-cli");
  if (!config_.token.empty()) req.set(http::field::authorization, "Bearer " + config_.token);
  if (!body.empty()) req.set(http::field::content_type, "application/json");
  req.body() = body;
  req.prepare_payload();
  bool idempotent = method == "GET" || method == "HEAD";

  for (int attempt = 0;; ++attempt) {
    bool reused = impl_->connected;
    bool may_retry = reused && idempotent && attempt == 0;
    if (!impl_->connected) {
      tcp::resolver resolver(impl_->io);
      error_code ec;
      auto endpoints = resolver.resolve(url->host, url->port, ec);
      if (ec) return fail("cannot resolve", ec);
      impl_->stream.expires_after(kConnectTimeout);
      ec = impl_->run([&](auto handler) { impl_->stream.async_connect(endpoints, handler); });
      if (ec) return fail("cannot reach the drover server at", ec);
      impl_->connected = true;
      impl_->connections++;
    }
    impl_->stream.expires_after(kIoTimeout);
    error_code ec =
        impl_->run([&](auto handler) { http::async_write(impl_->stream, req, handler); });
    if (ec) {
      if (may_retry) {
        impl_->close();
        continue;
      }
      return fail("cannot send to", ec);
    }
    http::response_parser<http::string_body> parser;
    parser.body_limit(kMaxResponse);
    impl_->stream.expires_after(kIoTimeout);
    ec = impl_->run(
        [&](auto handler) { http::async_read(impl_->stream, impl_->buffer, parser, handler); });
    if (ec) {
      bool stale = ec == http::error::end_of_stream || ec == net::error::connection_reset ||
                   ec == net::error::eof;
      if (may_retry && stale) {
        impl_->close();
        continue;
      }
      return fail("no answer from", ec);
    }
    auto& res = parser.get();
    HttpResponse out;
    out.status = static_cast<int>(res.result_int());
    for (auto& field : res) {
      std::string name(field.name_string());
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      out.headers[name] = std::string(field.value());
    }
    out.body = std::move(res.body());
    if (!res.keep_alive()) impl_->close();
    return out;
  }
}

Result<json> HttpClient::call(const std::string& method, const std::string& target,
                              const std::string& body) {
  auto res = request(method, target, body);
  if (!res) return res.error();
  if (res->status < 200 || res->status >= 300) return api_error(*res);
  if (res->body.empty()) return json();
  json j = json::parse(res->body, nullptr, false);
  if (j.is_discarded()) return make_error("the server sent malformed JSON");
  return j;
}

Result<HttpResponse> request(const ClientConfig& config, const std::string& method,
                             const std::string& target, const std::string& body) {
  HttpClient client(config);
  return client.request(method, target, body);
}

Error api_error(const HttpResponse& response) {
  json j = json::parse(response.body, nullptr, false);
  if (j.is_object() && j.contains("error") && j["error"].is_object()) {
    const json& e = j["error"];
    std::string message = e.value("message", std::string());
    Errc code = errc_from_string(e.value("code", std::string()));
    if (!message.empty()) return make_error(message, code);
  }
  std::string head = response.body.substr(0, 200);
  return make_error("HTTP " + std::to_string(response.status) + (head.empty() ? "" : ": ") + head);
}

std::string url_encode(std::string_view s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '_' || c == '.' || c == '~' || c == '-') {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string format_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (auto& row : rows)
    for (size_t i = 0; i < row.size(); ++i) {
      if (width.size() <= i) width.push_back(0);
      width[i] = std::max(width[i], row[i].size());
    }
  std::string out;
  for (auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

}  // namespace drover
