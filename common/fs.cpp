#include "common/fs.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>

namespace drover {

namespace fs = std::filesystem;

static Error errno_error(const fs::path& p, int e) {
  return make_error(p.string() + ": " + std::strerror(e));
}

std::string random_hex(size_t bytes) {
  static thread_local std::mt19937_64 rng(std::random_device{}() ^
                                          (static_cast<uint64_t>(::getpid()) << 32));
  static const char* kHex = "0123456789abcdef";
  std::string out;
  out.reserve(bytes * 2);
  for (size_t i = 0; i < bytes; ++i) {
    auto b = static_cast<unsigned>(rng() & 0xff);
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

bool write_all(int fd, std::string_view data) {
  const char* p = data.data();
  size_t n = data.size();
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

Status fsync_dir(const fs::path& dir) {
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno_error(dir, errno);
  ::fsync(fd);
  ::close(fd);
  return {};
}

Status make_dirs(const fs::path& dir) {
  // The common cases in one or two system calls: the folder is new under an existing
  // parent (a try's folder), or exists already. Anything else takes the library's walk.
  if (::mkdir(dir.c_str(), 0777) == 0) return {};
  if (errno == EEXIST) {
    struct stat st;
    if (::stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return {};
  } else if (errno == ENOENT && dir.has_parent_path() && dir.parent_path() != dir) {
    if (auto s = make_dirs(dir.parent_path()); !s) return s;
    if (::mkdir(dir.c_str(), 0777) == 0) return {};
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return make_error(dir.string() + ": " + ec.message());
  return {};
}

Status write_file_atomic(const fs::path& path, std::string_view content, int mode, bool durable) {
  fs::path tmp = path;
  tmp += ".tmp-" + random_hex(6);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return errno_error(tmp, errno);
  if (!write_all(fd, content)) {
    int e = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return errno_error(tmp, e);
  }
  ::fchmod(fd, mode);
  if ((durable && ::fsync(fd) != 0) || ::close(fd) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return errno_error(tmp, e);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return errno_error(path, e);
  }
  return durable ? fsync_dir(path.parent_path()) : Status{};
}

Status write_file_once(const fs::path& path, std::string_view content, int mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) return errno_error(path, errno);
  bool ok = write_all(fd, content);
  int e = errno;
  if (::close(fd) != 0 && ok) ok = false, e = errno;
  return ok ? Status{} : errno_error(path, e);
}

Result<std::string> read_file(const fs::path& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(path.string() + ": " + std::strerror(errno));
  std::string out;
  char buf[65536];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    out.append(buf, static_cast<size_t>(in.gcount()));
    if (out.size() > max_bytes)
      return make_error(path.string() + ": larger than " + std::to_string(max_bytes) + " bytes");
  }
  return out;
}

Result<FileLock> FileLock::acquire(const std::filesystem::path& file, bool exclusive, bool wait,
                                   const std::function<void()>& on_wait) {
  if (auto s = make_dirs(file.parent_path()); !s) return s.error();
  int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return make_error(file.string() + ": " + std::strerror(errno));
  int op = exclusive ? LOCK_EX : LOCK_SH;
  if (::flock(fd, op | LOCK_NB) != 0) {
    int e = errno;
    if (e != EWOULDBLOCK || !wait) {
      ::close(fd);
      if (e == EWOULDBLOCK)
        return make_error(file.string() + ": held by another process", Errc::Busy);
      return make_error(file.string() + ": " + std::strerror(e));
    }
    if (on_wait) on_wait();
    while (::flock(fd, op) != 0) {
      if (errno == EINTR) continue;
      e = errno;
      ::close(fd);
      return make_error(file.string() + ": " + std::strerror(e));
    }
  }
  return FileLock(fd);
}

Status FileLock::set_content(std::string_view text) {
  if (::ftruncate(fd_, 0) != 0 ||
      ::pwrite(fd_, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size()))
    return make_error(std::string("writing a lock file: ") + std::strerror(errno));
  return {};
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);
}

Result<std::optional<std::string>> read_untrusted_file(const std::filesystem::path& path, off_t max,
                                                       const char* what) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
  if (fd < 0 && errno == ENOENT) return std::optional<std::string>();
  if (fd < 0 && errno == ELOOP) return make_error(std::string(what) + " is a symbolic link");
  if (fd < 0) return make_error(std::string(what) + ": " + std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st;
  if (::fstat(fd, &st) != 0) return make_error(std::string(what) + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return make_error(std::string(what) + " is not a regular file");
  if (st.st_size > max)
    return make_error(std::string(what) + " is over " + std::to_string(max >> 20) + " MiB");
  std::string text(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < text.size()) {
    ssize_t n = ::read(fd, text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error(std::string(what) + ": " + std::strerror(errno));
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  text.resize(got);
  return std::optional<std::string>(std::move(text));
}

bool is_inside_relative(const std::string& rel) {
  if (rel.empty() || rel[0] == '/') return false;
  for (auto& part : fs::path(rel))
    if (part == "..") return false;
  return true;
}

}  // namespace drover
