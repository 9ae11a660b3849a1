#include "data/s3_remote.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "common/blob_store.hpp"
#include "common/curl_client.hpp"
#include "common/fs.hpp"
#include "common/sha256.hpp"

namespace drover::data {

namespace fs = std::filesystem;

namespace {

// A response body: into a string, or a file descriptor.
struct Sink {
  std::string text;
  int fd = -1;
  bool failed = false;
};

// Percent-encodes a key for the URL path ('/' kept), as SigV4 expects.
std::string encode_key(std::string_view key) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (char ch : key) {
    auto c = static_cast<unsigned char>(ch);
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~' || c == '/') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string xml_value(const std::string& xml, const std::string& tag) {
  std::string open = "<" + tag + ">", close = "</" + tag + ">";
  size_t a = xml.find(open);
  if (a == std::string::npos) return {};
  a += open.size();
  size_t b = xml.find(close, a);
  if (b == std::string::npos) return {};
  return xml.substr(a, b - a);
}

std::string empty_sha() { return sha256_hex(""); }

}  // namespace

struct S3Remote::Response {
  long status = 0;
  std::string body;
  std::vector<std::string> headers;
};

S3Remote::S3Remote(S3Config cfg) : cfg_(std::move(cfg)) {}

Result<std::unique_ptr<S3Remote>> S3Remote::from_env(std::string_view url) {
  if (url.rfind("s3://", 0) != 0) return make_error("not an s3:// URL: " + std::string(url));
  std::string rest(url.substr(5));
  S3Config cfg;
  size_t slash = rest.find('/');
  cfg.bucket = rest.substr(0, slash);
  if (slash != std::string::npos) cfg.prefix = rest.substr(slash + 1);
  while (!cfg.prefix.empty() && cfg.prefix.back() == '/') cfg.prefix.pop_back();
  if (cfg.bucket.empty()) return make_error("s3 remote '" + std::string(url) + "' has no bucket");
  auto env = [](const char* n) -> std::string {
    const char* v = std::getenv(n);
    return v ? v : "";
  };
  if (!env("AWS_REGION").empty()) cfg.region = env("AWS_REGION");
  cfg.endpoint = env("DROVER_S3_ENDPOINT");
  if (cfg.endpoint.empty()) cfg.endpoint = "https://s3." + cfg.region + ".amazonaws.com";
  while (!cfg.endpoint.empty() && cfg.endpoint.back() == '/') cfg.endpoint.pop_back();
  cfg.access_key = env("AWS_ACCESS_KEY_ID");
  cfg.secret_key = env("AWS_SECRET_ACCESS_KEY");
  if (cfg.access_key.empty() || cfg.secret_key.empty())
    return make_error("s3 remote needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
  return std::make_unique<S3Remote>(std::move(cfg));
}

std::string S3Remote::url() const {
  return "s3://" + cfg_.bucket + (cfg_.prefix.empty() ? "" : "/" + cfg_.prefix);
}

std::string S3Remote::object_url(const std::string& key) const {
  std::string full = cfg_.prefix.empty() ? key : cfg_.prefix + "/" + key;
  return cfg_.endpoint + "/" + cfg_.bucket + "/" + encode_key(full);
}

namespace {

// One signed request. `body` may be null (no body); `sink` receives the response body.
Result<long> perform(const S3Config& cfg, const std::string& method, const std::string& url,
                     UploadBody* body, const std::string& body_sha, Sink* sink,
                     std::vector<std::string>* headers_out) {
  CurlRequest c;
  c.method = method;
  c.url = url;
  c.headers = {"x-amz-content-sha256: " + body_sha};
  c.sigv4 = CurlRequest::SigV4{cfg.region, "s3", cfg.access_key, cfg.secret_key};
  c.body = body;
  c.connect_timeout = std::chrono::seconds(30);
  c.low_speed_time = std::chrono::seconds(120);
  c.keep_headers = headers_out != nullptr;
  if (sink)
    c.on_body = [sink](std::string_view piece, long) {
      if (sink->fd < 0) {
        if (sink->text.size() < (1u << 20)) sink->text.append(piece);  // error documents are small
        return true;
      }
      if (write_all(sink->fd, piece)) return true;
      sink->failed = true;
      return false;
    };
  auto r = curl_perform(c);
  if (!r) return make_error(method + " " + url + ": " + r.message());
  if (headers_out) *headers_out = std::move(r->headers);
  return r->status;
}

Error http_error(const std::string& method, const std::string& url, long status,
                 const std::string& body) {
  std::string code = xml_value(body, "Code"), msg = xml_value(body, "Message");
  std::string text = method + " " + url + ": HTTP " + std::to_string(status);
  if (!code.empty()) text += " " + code;
  if (!msg.empty()) text += ": " + msg;
  return make_error(text, status == 404 ? Errc::NotFound : Errc::None);
}

}  // namespace

Result<bool> S3Remote::exists(const std::string& key) {
  std::string u = object_url(key);
  auto st = perform(cfg_, "HEAD", u, nullptr, empty_sha(), nullptr, nullptr);
  if (!st) return st.error();
  if (*st == 200) return true;
  if (*st == 404) return false;
  return http_error("HEAD", u, *st, "");
}

Status S3Remote::put_bytes(const std::string& key, std::string_view data) {
  std::string u = object_url(key);
  UploadBody b;
  b.data = data.data();
  b.size = data.size();
  Sink sink;
  auto st = perform(cfg_, "PUT", u, &b, sha256_hex(data), &sink, nullptr);
  if (!st) return st.error();
  if (*st != 200) return http_error("PUT", u, *st, sink.text);
  return {};
}

Status S3Remote::put_file(const std::string& key, const fs::path& src) {
  int fd = ::open(src.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_error(src.string() + ": " + std::strerror(errno));
  struct stat st;
  ::fstat(fd, &st);
  uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size > cfg_.multipart_threshold) {
    ::close(fd);
    return put_multipart(key, src, size);
  }
  // A blob's key names its hash; anything else is hashed first.
  std::string sha;
  std::string tail = key.rfind("blobs/", 0) == 0 && key.size() == 6 + 65
                         ? key.substr(6, 2) + key.substr(9)
                         : std::string();
  if (BlobStore::valid_hash(tail)) {
    sha = tail;
  } else {
    auto d = sha256_file(src);
    if (!d) {
      ::close(fd);
      return d.error();
    }
    sha = d->sha256;
  }
  std::string u = object_url(key);
  UploadBody b;
  b.fd = fd;
  b.size = size;
  Sink sink;
  auto r = perform(cfg_, "PUT", u, &b, sha, &sink, nullptr);
  ::close(fd);
  if (!r) return r.error();
  if (*r != 200) return http_error("PUT", u, *r, sink.text);
  return {};
}

Status S3Remote::put_multipart(const std::string& key, const fs::path& src, uint64_t size) {
  std::string u = object_url(key);
  Sink init;
  auto r = perform(cfg_, "POST", u + "?uploads=", nullptr, empty_sha(), &init, nullptr);
  if (!r) return r.error();
  if (*r != 200) return http_error("POST", u + "?uploads=", *r, init.text);
  std::string upload_id = xml_value(init.text, "UploadId");
  if (upload_id.empty()) return make_error("POST " + u + "?uploads=: no UploadId in reply");
  auto abort_upload = [&] {
    (void)perform(cfg_, "DELETE", u + "?uploadId=" + encode_key(upload_id), nullptr, empty_sha(),
                  nullptr, nullptr);
  };
  int fd = ::open(src.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    abort_upload();
    return make_error(src.string() + ": " + std::strerror(errno));
  }
  std::vector<char> buf(cfg_.part_size);
  std::string complete = "<CompleteMultipartUpload>";
  int part = 0;
  for (uint64_t off = 0; off < size; off += cfg_.part_size) {
    ++part;
    uint64_t n = std::min<uint64_t>(cfg_.part_size, size - off);
    uint64_t got = 0;
    while (got < n) {
      ssize_t k = ::pread(fd, buf.data() + got, n - got, static_cast<off_t>(off + got));
      if (k <= 0) {
        ::close(fd);
        abort_upload();
        return make_error(src.string() + ": short read");
      }
      got += static_cast<uint64_t>(k);
    }
    UploadBody b;
    b.data = buf.data();
    b.size = n;
    Sink sink;
    std::vector<std::string> headers;
    std::string pu =
        u + "?partNumber=" + std::to_string(part) + "&uploadId=" + encode_key(upload_id);
    auto pr =
        perform(cfg_, "PUT", pu, &b, sha256_hex(std::string_view(buf.data(), n)), &sink, &headers);
    if (!pr || *pr != 200) {
      ::close(fd);
      abort_upload();
      if (!pr) return pr.error();
      return http_error("PUT", pu, *pr, sink.text);
    }
    complete += "<Part><PartNumber>" + std::to_string(part) + "</PartNumber><ETag>" +
                header_value(headers, "ETag") + "</ETag></Part>";
  }
  ::close(fd);
  complete += "</CompleteMultipartUpload>";
  UploadBody b;
  b.data = complete.data();
  b.size = complete.size();
  Sink sink;
  std::string cu = u + "?uploadId=" + encode_key(upload_id);
  auto cr = perform(cfg_, "POST", cu, &b, sha256_hex(complete), &sink, nullptr);
  if (!cr) return cr.error();
  if (*cr != 200 || sink.text.find("<Error>") != std::string::npos) {
    abort_upload();
    return http_error("POST", cu, *cr, sink.text);
  }
  return {};
}

Status S3Remote::get_file(const std::string& key, const fs::path& dest) {
  std::string u = object_url(key);
  int fd = ::open(dest.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return make_error(dest.string() + ": " + std::strerror(errno));
  Sink sink;
  sink.fd = fd;
  auto r = perform(cfg_, "GET", u, nullptr, empty_sha(), &sink, nullptr);
  ::close(fd);
  if (!r || *r != 200 || sink.failed) {
    std::string body;
    if (r && *r != 200) {
      auto text = std::string();
      // The error document went into the file; read it back for the message.
      int rfd = ::open(dest.c_str(), O_RDONLY | O_CLOEXEC);
      if (rfd >= 0) {
        char b[4096];
        ssize_t n = ::read(rfd, b, sizeof b);
        if (n > 0) body.assign(b, static_cast<size_t>(n));
        ::close(rfd);
      }
    }
    ::unlink(dest.c_str());
    if (!r) return r.error();
    if (sink.failed) return make_error(dest.string() + ": write failed");
    return http_error("GET", u, *r, body);
  }
  return {};
}

Result<std::optional<std::string>> S3Remote::get_bytes(const std::string& key) {
  std::string u = object_url(key);
  Sink sink;
  auto r = perform(cfg_, "GET", u, nullptr, empty_sha(), &sink, nullptr);
  if (!r) return r.error();
  if (*r == 404) return std::optional<std::string>();
  if (*r != 200) return http_error("GET", u, *r, sink.text);
  return std::optional<std::string>(std::move(sink.text));
}

}  // namespace drover::data
