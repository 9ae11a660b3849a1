#include "data/remote.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "common/fs.hpp"
#include "data/http_remote.hpp"
#include "data/s3_remote.hpp"

namespace drover::data {

namespace fs = std::filesystem;

static Error errno_error(const fs::path& p, int e) {
  return make_error(p.string() + ": " + std::strerror(e));
}

// Copies src to a temp file beside dest, fsyncs, renames: readers see all or nothing.
static Status copy_atomic(const fs::path& src, const fs::path& dest) {
  if (auto s = make_dirs(dest.parent_path()); !s) return s;
  int in = ::open(src.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return errno_error(src, errno);
  fs::path tmp = dest;
  tmp += ".tmp-" + random_hex(6);
  int out = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
  if (out < 0) {
    int e = errno;
    ::close(in);
    return errno_error(tmp, e);
  }
  std::vector<char> buf(1 << 20);
  bool ok = true;
  int err = 0;
  for (;;) {
    ssize_t n = ::read(in, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ok = false;
      err = errno;
      break;
    }
    if (n == 0) break;
    const char* p = buf.data();
    size_t left = static_cast<size_t>(n);
    while (left > 0) {
      ssize_t w = ::write(out, p, left);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) {
        ok = false;
        err = errno;
        break;
      }
      p += w;
      left -= static_cast<size_t>(w);
    }
    if (!ok) break;
  }
  ::close(in);
  if (ok && ::fsync(out) != 0) {
    ok = false;
    err = errno;
  }
  ::close(out);
  if (ok && ::rename(tmp.c_str(), dest.c_str()) != 0) {
    ok = false;
    err = errno;
  }
  if (!ok) {
    ::unlink(tmp.c_str());
    return errno_error(dest, err);
  }
  return fsync_dir(dest.parent_path());
}

Result<bool> LocalRemote::exists(const std::string& key) {
  struct stat st;
  if (::stat((root_ / key).c_str(), &st) == 0) return true;
  if (errno == ENOENT || errno == ENOTDIR) return false;
  return errno_error(root_ / key, errno);
}

Status LocalRemote::put_file(const std::string& key, const fs::path& src) {
  return copy_atomic(src, root_ / key);
}

Status LocalRemote::put_bytes(const std::string& key, std::string_view data) {
  fs::path dest = root_ / key;
  if (auto s = make_dirs(dest.parent_path()); !s) return s;
  return write_file_atomic(dest, data);
}

Status LocalRemote::get_file(const std::string& key, const fs::path& dest) {
  fs::path src = root_ / key;
  struct stat st;
  if (::stat(src.c_str(), &st) != 0) {
    if (errno == ENOENT) return make_error(src.string() + ": not found", Errc::NotFound);
    return errno_error(src, errno);
  }
  std::error_code ec;
  fs::copy_file(src, dest, ec);
  if (ec) return make_error(dest.string() + ": " + ec.message());
  return {};
}

Result<std::optional<std::string>> LocalRemote::get_bytes(const std::string& key) {
  fs::path src = root_ / key;
  struct stat st;
  if (::stat(src.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return std::optional<std::string>();
    return errno_error(src, errno);
  }
  auto data = read_file(src);
  if (!data) return data.error();
  return std::optional<std::string>(std::move(*data));
}

Result<std::unique_ptr<Remote>> open_remote(std::string_view url) {
  if (url.empty()) return make_error("empty remote URL");
  if (url.rfind("s3://", 0) == 0) {
    auto r = S3Remote::from_env(url);
    if (!r) return r.error();
    return std::unique_ptr<Remote>(std::move(*r));
  }
  if (HttpRemote::is_http_url(url)) {
    auto r = HttpRemote::open(url);
    if (!r) return r.error();
    return std::unique_ptr<Remote>(std::move(*r));
  }
  std::string path;
  if (url.rfind("file://", 0) == 0) {
    path = std::string(url.substr(7));
    if (path.empty() || path[0] != '/')
      return make_error("unsupported remote '" + std::string(url) +
                        "': file:// URLs need an absolute path (file:///path)");
  } else if (url.find("://") != std::string_view::npos) {
    return make_error("unsupported remote '" + std::string(url) +
                      "': use a folder, file:///path or s3://bucket/prefix");
  } else {
    path = std::string(url);
  }
  return std::unique_ptr<Remote>(std::make_unique<LocalRemote>(fs::path(path)));
}

}  // namespace drover::data
