// The one libcurl client (common/curl_client.hpp) against a real HTTP server on loopback:
// a thread that accepts one connection, reads one request whole and answers it as told.
#include "common/curl_client.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

namespace drover {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// One connection, one request. `answer` is written back as is; empty: the server holds the
// connection without answering until the client goes.
class OneShotServer {
 public:
  explicit OneShotServer(std::string answer) : answer_(std::move(answer)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), len) != 0 || ::listen(fd_, 1) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
      std::abort();
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~OneShotServer() {
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
  }
  std::string url(const std::string& path = "/x") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  // What the client sent (headers and body); complete once the client has its answer.
  std::string request() {
    thread_.join();
    thread_ = std::thread([] {});
    return request_;
  }

 private:
  void serve() {
    int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) return;
    char buf[4096];
    size_t want = std::string::npos;
    while (request_.size() < want) {
      pollfd p{c, POLLIN, 0};
      if (::poll(&p, 1, 5000) <= 0) break;
      ssize_t n = ::read(c, buf, sizeof buf);
      if (n <= 0) break;
      request_.append(buf, static_cast<size_t>(n));
      auto end = request_.find("\r\n\r\n");
      if (end == std::string::npos || want != std::string::npos) continue;
      size_t length = 0;
      if (auto at = request_.find("Content-Length: "); at != std::string::npos && at < end)
        length = std::stoul(request_.substr(at + 16));
      want = end + 4 + length;
    }
    if (answer_.empty()) {  // hold until the client gives up
      pollfd p{c, POLLIN, 0};
      while (::poll(&p, 1, 5000) > 0 && ::read(c, buf, sizeof buf) > 0) {
      }
    } else {
      (void)!::write(c, answer_.data(), answer_.size());
    }
    ::close(c);
  }

  std::string answer_, request_;
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
};

std::string http_answer(int status, const std::string& body, const std::string& extra = "") {
  return "HTTP/1.1 " + std::to_string(status) +
         " X\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n" +
         extra + "\r\n" + body;
}

TEST(CurlClientTest, AnAnswerOfAnyStatusIsAValueWithItsBodyCappedAndItsHeaders) {
  OneShotServer server(http_answer(404, "not here, and more", "ETag: \"abc\"\r\n"));
  CurlRequest req;
  req.url = server.url("/blobs/1");
  req.headers = {"Authorization: Bearer t0ken", "Expect:"};
  req.max_body = 8;
  req.keep_headers = true;
  auto r = curl_perform(req);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(r->body, "not here");
  EXPECT_EQ(header_value(r->headers, "etag"), "\"abc\"");
  EXPECT_EQ(header_value(r->headers, "X-Missing"), "");
  std::string sent = server.request();
  EXPECT_EQ(sent.rfind("GET /blobs/1 HTTP/1.1\r\n", 0), 0u) << sent;
  EXPECT_NE(sent.find("Authorization: Bearer t0ken\r\n"), std::string::npos) << sent;
}

TEST(CurlClientTest, APutStreamsItsBodyFromAFileRange) {
  fs::path file = fs::temp_directory_path() / ("curl-client-" + std::to_string(::getpid()));
  {
    int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ASSERT_EQ(::write(fd, "skip-me|the body|tail", 21), 21);
    ::close(fd);
  }
  int fd = ::open(file.c_str(), O_RDONLY);
  UploadBody body;
  body.fd = fd;
  body.offset = 8;
  body.size = 8;
  OneShotServer server(http_answer(201, "{}"));
  CurlRequest req;
  req.method = "PUT";
  req.url = server.url();
  req.body = &body;
  auto r = curl_perform(req);
  ::close(fd);
  fs::remove(file);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->status, 201);
  std::string sent = server.request();
  EXPECT_EQ(sent.rfind("PUT /x HTTP/1.1\r\n", 0), 0u) << sent;
  EXPECT_EQ(sent.substr(sent.find("\r\n\r\n") + 4), "the body");
}

TEST(CurlClientTest, APostSendsItsBodyFromMemoryAndABodySinkSeesTheStatus) {
  OneShotServer server(http_answer(200, "streamed"));
  std::string payload = "{\"kind\": \"drift\"}";
  UploadBody body;
  body.data = payload.data();
  body.size = payload.size();
  CurlRequest req;
  req.method = "POST";
  req.url = server.url();
  req.headers = {"Content-Type: application/json"};
  req.body = &body;
  std::string got;
  long seen = 0;
  req.on_body = [&](std::string_view piece, long status) {
    got.append(piece);
    seen = status;
    return true;
  };
  auto r = curl_perform(req);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(got, "streamed");
  EXPECT_EQ(seen, 200);
  EXPECT_EQ(r->body, "");
  std::string sent = server.request();
  EXPECT_EQ(sent.substr(sent.find("\r\n\r\n") + 4), payload);
}

TEST(CurlClientTest, ASinkThatRefusesAbortsTheTransfer) {
  OneShotServer server(http_answer(200, "bytes"));
  CurlRequest req;
  req.url = server.url();
  req.on_body = [](std::string_view, long) { return false; };
  auto r = curl_perform(req);
  ASSERT_FALSE(r.ok());
  EXPECT_FALSE(r.message().empty());
}

TEST(CurlClientTest, ARefusedConnectionSaysSoInLibcurlsWords) {
  int port;
  {
    OneShotServer server(http_answer(200, ""));
    port = std::stoi(server.url().substr(std::string("http://127.0.0.1:").size()));
    CurlRequest probe;
    probe.url = server.url();
    ASSERT_TRUE(curl_perform(probe).ok());
  }
  CurlRequest req;
  req.url = "http://127.0.0.1:" + std::to_string(port) + "/x";
  auto r = curl_perform(req);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("Couldn't connect to server"), std::string::npos) << r.message();
}

TEST(CurlClientTest, TheWholeTransferTimeoutEndsASilentServer) {
  OneShotServer server("");
  CurlRequest req;
  req.url = server.url();
  req.timeout = 200ms;
  auto start = std::chrono::steady_clock::now();
  auto r = curl_perform(req);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("timed out"), std::string::npos) << r.message();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
}

TEST(CurlClientTest, ASetCancelFlagStopsTheTransfer) {
  OneShotServer server("");
  std::atomic<bool> cancel{true};
  CurlRequest req;
  req.url = server.url();
  req.timeout = 5s;
  req.cancel = &cancel;
  auto start = std::chrono::steady_clock::now();
  auto r = curl_perform(req);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("aborted"), std::string::npos) << r.message();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
}

TEST(CurlClientTest, AnOtherProtocolThanTheAllowedOnesIsRefused) {
  CurlRequest req;
  req.url = "file:///etc/hostname";
  req.protocols = "http,https";
  auto r = curl_perform(req);
  ASSERT_FALSE(r.ok());
  EXPECT_FALSE(r.message().empty());
}

}  // namespace
}  // namespace drover
