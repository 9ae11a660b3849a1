#include "common/curl_client.hpp"

#include <curl/curl.h>
#include <dlfcn.h>
#include <strings.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>

namespace drover {

namespace {

// libcurl, loaded on first use. Linked normally it costs every drover process about 6 ms at
// start (libcurl and the ~25 libraries it needs are mapped and initialized: the engine, each
// warm worker, every CLI call), while only alert channels and the S3 client ever call it.
struct CurlApi {
  CURLcode (*global_init)(long);
  CURL* (*easy_init)();
  CURLcode (*easy_setopt)(CURL*, CURLoption, ...);
  CURLcode (*easy_perform)(CURL*);
  CURLcode (*easy_getinfo)(CURL*, CURLINFO, ...);
  void (*easy_cleanup)(CURL*);
  const char* (*easy_strerror)(CURLcode);
  curl_slist* (*slist_append)(curl_slist*, const char*);
  void (*slist_free_all)(curl_slist*);
};

template <typename F>
bool bind(void* lib, const char* name, F& f, std::string& error) {
  f = reinterpret_cast<F>(::dlsym(lib, name));
  if (!f && error.empty()) error = std::string("libcurl has no ") + name;
  return f != nullptr;
}

// The loaded library, or the reason it cannot be used; loaded and curl_global_init'ed once per
// process, before the first easy handle. Thread-safe.
const CurlApi* curl_api(std::string* why) {
  static CurlApi api{};
  static std::string error;
  static std::once_flag once;
  std::call_once(once, [] {
    void* lib = ::dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      const char* e = ::dlerror();
      error = std::string("cannot load libcurl (libcurl.so.4): ") + (e ? e : "unknown error");
      return;
    }
    bool ok = bind(lib, "curl_global_init", api.global_init, error) &&
              bind(lib, "curl_easy_init", api.easy_init, error) &&
              bind(lib, "curl_easy_setopt", api.easy_setopt, error) &&
              bind(lib, "curl_easy_perform", api.easy_perform, error) &&
              bind(lib, "curl_easy_getinfo", api.easy_getinfo, error) &&
              bind(lib, "curl_easy_cleanup", api.easy_cleanup, error) &&
              bind(lib, "curl_easy_strerror", api.easy_strerror, error) &&
              bind(lib, "curl_slist_append", api.slist_append, error) &&
              bind(lib, "curl_slist_free_all", api.slist_free_all, error);
    if (ok && api.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) error = "curl_global_init failed";
  });
  if (!error.empty()) {
    if (why) *why = error;
    return nullptr;
  }
  return &api;
}

// The easy handle and the lists it points to, freed together whatever path the call takes.
struct Easy {
  const CurlApi& curl;
  CURL* handle = curl.easy_init();
  curl_slist* headers = nullptr;
  curl_slist* recipients = nullptr;
  explicit Easy(const CurlApi& api) : curl(api) {}
  Easy(const Easy&) = delete;
  Easy& operator=(const Easy&) = delete;
  ~Easy() {
    curl.slist_free_all(headers);
    curl.slist_free_all(recipients);
    if (handle) curl.easy_cleanup(handle);
  }
};

// CURLOPT_READFUNCTION for an UploadBody.
size_t read_body(char* out, size_t sz, size_t nmemb, void* user) {
  auto* b = static_cast<UploadBody*>(user);
  size_t want = std::min<uint64_t>(sz * nmemb, b->size - b->pos);
  if (want == 0) return 0;
  if (b->data) {
    std::memcpy(out, b->data + b->pos, want);
  } else {
    ssize_t n;
    do n = ::pread(b->fd, out, want, static_cast<off_t>(b->offset + b->pos));
    while (n < 0 && errno == EINTR);
    if (n <= 0) return CURL_READFUNC_ABORT;
    want = static_cast<size_t>(n);
  }
  b->pos += want;
  return want;
}

struct Sink {
  const CurlApi* curl;
  const CurlRequest* req;
  CurlResponse* resp;
  CURL* handle;
};

size_t write_body(char* p, size_t sz, size_t nmemb, void* user) {
  auto* s = static_cast<Sink*>(user);
  size_t n = sz * nmemb;
  if (s->req->on_body) {
    long status = 0;
    s->curl->easy_getinfo(s->handle, CURLINFO_RESPONSE_CODE, &status);
    return s->req->on_body(std::string_view(p, n), status) ? n : 0;
  }
  std::string& body = s->resp->body;
  if (body.size() < s->req->max_body) body.append(p, std::min(n, s->req->max_body - body.size()));
  return n;
}

size_t keep_header(char* p, size_t sz, size_t nmemb, void* user) {
  std::string line(p, sz * nmemb);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  static_cast<std::vector<std::string>*>(user)->push_back(std::move(line));
  return sz * nmemb;
}

int on_progress(void* cancel, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<const std::atomic<bool>*>(cancel)->load() ? 1 : 0;
}

}  // namespace

Result<CurlResponse> curl_perform(const CurlRequest& req) {
  std::string why;
  const CurlApi* curl = curl_api(&why);
  if (!curl) return make_error(why);
  Easy easy(*curl);
  CURL* h = easy.handle;
  if (!h) return make_error("curl_easy_init failed");
  char errbuf[CURL_ERROR_SIZE];
  errbuf[0] = '\0';
  CurlResponse resp;
  Sink sink{curl, &req, &resp, h};

  curl->easy_setopt(h, CURLOPT_URL, req.url.c_str());
  for (const auto& line : req.headers)
    easy.headers = curl->slist_append(easy.headers, line.c_str());
  if (easy.headers) curl->easy_setopt(h, CURLOPT_HTTPHEADER, easy.headers);
  curl->easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl->easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  if (req.connect_timeout.count() > 0)
    curl->easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(req.connect_timeout.count()));
  if (req.timeout.count() > 0)
    curl->easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(req.timeout.count()));
  if (req.low_speed_time.count() > 0) {
    curl->easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl->easy_setopt(h, CURLOPT_LOW_SPEED_TIME, static_cast<long>(req.low_speed_time.count()));
  }
  if (!req.protocols.empty()) curl->easy_setopt(h, CURLOPT_PROTOCOLS_STR, req.protocols.c_str());
  if (!req.ca_file.empty()) curl->easy_setopt(h, CURLOPT_CAINFO, req.ca_file.c_str());
  if (req.cancel) {
    curl->easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl->easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl->easy_setopt(h, CURLOPT_XFERINFODATA, const_cast<std::atomic<bool>*>(req.cancel));
  }
  std::string sigv4, userpwd;
  if (req.sigv4) {
    sigv4 = "aws:amz:" + req.sigv4->region + ":" + req.sigv4->service;
    userpwd = req.sigv4->access_key + ":" + req.sigv4->secret_key;
    curl->easy_setopt(h, CURLOPT_AWS_SIGV4, sigv4.c_str());
    curl->easy_setopt(h, CURLOPT_USERPWD, userpwd.c_str());
  }

  UploadBody none;
  UploadBody* body = req.body ? req.body : &none;
  auto upload = [&] {
    curl->easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl->easy_setopt(h, CURLOPT_READFUNCTION, read_body);
    curl->easy_setopt(h, CURLOPT_READDATA, body);
    curl->easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(body->size));
  };
  std::string from;
  if (req.mail) {
    from = "<" + req.mail->from + ">";
    for (const auto& r : req.mail->to)
      easy.recipients = curl->slist_append(easy.recipients, ("<" + r + ">").c_str());
    curl->easy_setopt(h, CURLOPT_MAIL_FROM, from.c_str());
    curl->easy_setopt(h, CURLOPT_MAIL_RCPT, easy.recipients);
    upload();
    if (req.mail->require_tls)
      curl->easy_setopt(h, CURLOPT_USE_SSL, static_cast<long>(CURLUSESSL_ALL));
    if (req.mail->username) curl->easy_setopt(h, CURLOPT_USERNAME, req.mail->username->c_str());
    if (req.mail->password) curl->easy_setopt(h, CURLOPT_PASSWORD, req.mail->password->c_str());
  } else if (req.method == "HEAD") {
    curl->easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (req.method == "PUT") {
    upload();
  } else if (req.method == "POST") {
    curl->easy_setopt(h, CURLOPT_POST, 1L);
    curl->easy_setopt(h, CURLOPT_POSTFIELDS, body->data ? body->data : "");
    curl->easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body->size));
  } else if (req.method != "GET") {
    curl->easy_setopt(h, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  }
  curl->easy_setopt(h, CURLOPT_WRITEFUNCTION, write_body);
  curl->easy_setopt(h, CURLOPT_WRITEDATA, &sink);
  if (req.keep_headers) {
    curl->easy_setopt(h, CURLOPT_HEADERFUNCTION, keep_header);
    curl->easy_setopt(h, CURLOPT_HEADERDATA, &resp.headers);
  }

  CURLcode rc = curl->easy_perform(h);
  curl->easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp.status);
  if (rc != CURLE_OK) return make_error(errbuf[0] ? errbuf : curl->easy_strerror(rc));
  return resp;
}

std::string header_value(const std::vector<std::string>& headers, std::string_view name) {
  for (const auto& h : headers) {
    if (h.size() <= name.size() || h[name.size()] != ':') continue;
    if (strncasecmp(h.c_str(), std::string(name).c_str(), name.size()) != 0) continue;
    std::string v = h.substr(name.size() + 1);
    while (!v.empty() && v.front() == ' ') v.erase(v.begin());
    return v;
  }
  return {};
}

}  // namespace drover
