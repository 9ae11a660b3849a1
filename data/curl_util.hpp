// What the libcurl users share: one global init, and a request body read from memory or
// from a file range (so large uploads are never held in memory). Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>

namespace drover::data {

// curl_global_init, once per process, before the first easy handle.
void ensure_curl();

// A request body: `size` bytes from `data`, or else from file `fd` starting at `offset`.
struct UploadBody {
  const char* data = nullptr;
  int fd = -1;
  uint64_t offset = 0, size = 0, pos = 0;
};

// CURLOPT_READFUNCTION for an UploadBody (CURLOPT_READDATA = UploadBody*).
size_t read_upload_body(char* out, size_t sz, size_t nmemb, void* body);

}  // namespace drover::data
