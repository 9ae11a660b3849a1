// SHA-256 through OpenSSL's EVP (which uses the CPU's SHA extensions). Streaming: no
// file is read into memory whole. A Sha256 object is not thread-safe; the free
// functions are.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace drover {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, size_t n);
  void update(std::string_view s) { update(s.data(), s.size()); }
  std::string hex_digest();  // finishes; the object must not be updated again

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

std::string sha256_hex(std::string_view data);

// A check that a long read (hashing or copying a file) makes once every kReadCheckEvery
// bytes: a failed Status stops the read, and the reader returns that Status (a try's output
// collection, bounded by its timeout). An empty one is never called.
using ReadCheck = std::function<Status()>;
constexpr uint64_t kReadCheckEvery = uint64_t{64} << 20;

// Counts the bytes a loop reads and calls `check` each time kReadCheckEvery more are read.
class ReadChecker {
 public:
  explicit ReadChecker(const ReadCheck& check) : check_(check) {}
  Status add(uint64_t n) {
    if (!check_ || (since_ += n) < kReadCheckEvery) return {};
    since_ = 0;
    return check_();
  }

 private:
  const ReadCheck& check_;
  uint64_t since_ = 0;
};

struct FileDigest {
  std::string sha256;
  uint64_t size = 0;
};
// Hashes a file by streaming it in 128 KiB blocks.
Result<FileDigest> sha256_file(const std::filesystem::path& path);
// Hashes what remains of open file `fd` from its current offset; `name` goes into errors.
// `check` is made every kReadCheckEvery bytes; its failure is the result.
Result<FileDigest> sha256_fd(int fd, const std::string& name, const ReadCheck& check = {});

}  // namespace drover
