#include "web/auth.hpp"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>

#include "common/fs.hpp"
#include "common/sha256.hpp"

namespace drover {

namespace fs = std::filesystem;

static std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

static Result<std::string> read_token(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && (st.st_mode & 077) != 0) ::chmod(path.c_str(), 0600);
  auto content = read_file(path, 4096);
  if (!content) return content.error();
  std::string token(trim(*content));
  if (token.empty()) return make_error(path.string() + ": empty token file");
  return token;
}

static Result<std::string> new_token() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof bytes) != 1) return make_error("cannot generate a random token");
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned char b : bytes) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

Result<std::string> ensure_token(const fs::path& home) {
  fs::path path = home / "token";
  std::error_code ec;
  if (fs::exists(path, ec)) return read_token(path);
  if (auto s = make_dirs(home); !s) return s.error();
  auto token = new_token();
  if (!token) return token.error();
  // Write a complete file under a private name, then link it into place: link() fails
  // when another process created the token first, and then its token wins.
  fs::path tmp = home / ("token.new-" + random_hex(8));
  if (auto s = write_file_atomic(tmp, *token + "\n", 0600); !s) return s.error();
  int rc = ::link(tmp.c_str(), path.c_str());
  int err = errno;
  ::unlink(tmp.c_str());
  if (rc != 0 && err != EEXIST) return make_error(path.string() + ": " + std::strerror(err));
  if (rc == 0) {
    if (auto s = fsync_dir(home); !s) return s.error();
    return token;
  }
  return read_token(path);
}

std::string token_hash(std::string_view token) { return sha256_hex(token); }

bool token_matches(std::string_view presented, std::string_view expected_sha256) {
  std::string got = sha256_hex(presented);
  if (got.size() != expected_sha256.size()) return false;
  return CRYPTO_memcmp(got.data(), expected_sha256.data(), got.size()) == 0;
}

std::string_view bearer_token(std::string_view authorization) {
  std::string_view v = trim(authorization);
  constexpr std::string_view kScheme = "bearer";
  if (v.size() <= kScheme.size()) return {};
  for (size_t i = 0; i < kScheme.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(v[i])) != kScheme[i]) return {};
  if (v[kScheme.size()] != ' ') return {};
  return trim(v.substr(kScheme.size()));
}

}  // namespace drover
