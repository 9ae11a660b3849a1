#include "data/curl_util.hpp"

#include <curl/curl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>

namespace drover::data {

void ensure_curl() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

size_t read_upload_body(char* out, size_t sz, size_t nmemb, void* user) {
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

}  // namespace drover::data
