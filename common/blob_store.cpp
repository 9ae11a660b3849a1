#include "common/blob_store.hpp"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "common/fs.hpp"
#include "common/sha256.hpp"

namespace drover {

namespace fs = std::filesystem;

BlobStore::BlobStore(fs::path root) : root_(std::move(root)) {}

bool BlobStore::valid_hash(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

fs::path BlobStore::path_of(std::string_view sha) const {
  return root_ / std::string(sha.substr(0, 2)) / std::string(sha.substr(2));
}

bool BlobStore::has(std::string_view sha) const {
  if (!valid_hash(sha)) return false;
  struct stat st;
  return ::stat(path_of(sha).c_str(), &st) == 0;
}

Result<BlobRef> BlobStore::commit_temp(const fs::path& tmp, BlobRef ref) {
  fs::path dest = path_of(ref.sha256);
  struct stat st;
  if (::stat(dest.c_str(), &st) == 0) {  // already stored: dedup
    ::unlink(tmp.c_str());
    return ref;
  }
  if (auto s = make_dirs(dest.parent_path()); !s) {
    ::unlink(tmp.c_str());
    return s.error();
  }
  if (::rename(tmp.c_str(), dest.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return make_error(dest.string() + ": " + std::strerror(e));
  }
  if (!deferred_sync_)
    (void)fsync_dir(dest.parent_path());
  else
    unsynced_.fetch_add(1, std::memory_order_relaxed);
  return ref;
}

Status BlobStore::sync() {
  if (unsynced_.exchange(0) == 0) return {};  // nothing new since the last sync
  int fd = ::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return make_error(root_.string() + ": " + std::strerror(errno));
  int rc = ::syncfs(fd);
  int e = errno;
  ::close(fd);
  if (rc != 0) return make_error(root_.string() + ": syncfs: " + std::strerror(e));
  return {};
}

static Result<int> open_temp(const fs::path& root, fs::path& tmp) {
  if (auto s = make_dirs(root / "tmp"); !s) return s.error();
  tmp = root / "tmp" / random_hex(12);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
  if (fd < 0) return make_error(tmp.string() + ": " + std::strerror(errno));
  return fd;
}

namespace {

int64_t to_ns(const timespec& t) { return int64_t{t.tv_sec} * 1'000'000'000 + t.tv_nsec; }

int64_t now_ns() {
  timespec t;
  ::clock_gettime(CLOCK_REALTIME, &t);
  return to_ns(t);
}

// Any write, truncate, chmod or utimes() sets ctime to the current time, which nobody can
// set back; so a file whose ctime is older than the racy window and unchanged afterwards
// was not touched in between.
bool unchanged(const struct stat& a, const struct stat& b) {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino && a.st_size == b.st_size &&
         to_ns(a.st_mtim) == to_ns(b.st_mtim) && to_ns(a.st_ctim) == to_ns(b.st_ctim);
}

// Copies `in` (from offset 0) into the empty file `out`: a reflink where the filesystem can
// share extents (btrfs, XFS), else an in-kernel copy_file_range, else read/write. False with
// errno set on an error; false with `*stopped` set when `check` failed.
bool copy_fd(int in, int out, const ReadCheck& check = {}, Status* stopped = nullptr) {
#ifdef FICLONE
  if (::ioctl(out, FICLONE, in) == 0) return true;
#endif
  ReadChecker checker(check);
  auto go_on = [&](ssize_t n) {
    Status s = checker.add(static_cast<uint64_t>(n));
    if (!s && stopped) *stopped = s;
    return s.ok();
  };
  // A check is made between calls: one call copies no more than it lets go unchecked.
  size_t chunk = check ? size_t{kReadCheckEvery} : size_t{1} << 30;
  loff_t off_in = 0, off_out = 0;
  for (;;) {
    ssize_t n = ::copy_file_range(in, &off_in, out, &off_out, chunk, 0);
    if (n > 0) {
      if (!go_on(n)) return false;
      continue;
    }
    if (n == 0) return true;
    if (errno == EINTR) continue;
    if (off_in == 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL ||
                        errno == EOPNOTSUPP || errno == EPERM))
      break;  // this pair of files cannot: copy through user space
    return false;
  }
  thread_local std::vector<char> buf(128 << 10);
  for (off_t off = 0;;) {
    ssize_t n = ::pread(in, buf.data(), buf.size(), off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) return true;
    if (!write_all(out, std::string_view(buf.data(), static_cast<size_t>(n)))) return false;
    off += n;
    if (!go_on(n)) return false;
  }
}

}  // namespace

Result<BlobRef> BlobStore::put_file(const fs::path& src, bool follow_links,
                                    const ReadCheck& check) {
  // O_NONBLOCK: opening a FIFO for reading would wait for a writer (forever, for a FIFO a
  // task left behind); regular files read the same with it.
  int in = ::open(src.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | (follow_links ? 0 : O_NOFOLLOW));
  if (in < 0 && errno == ELOOP && !follow_links)
    return make_error(src.string() + ": is a symbolic link");
  if (in < 0) return make_error(src.string() + ": " + std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{in};
  struct stat before;
  if (::fstat(in, &before) != 0) return make_error(src.string() + ": " + std::strerror(errno));
  if (!S_ISREG(before.st_mode)) return make_error(src.string() + ": not a regular file");
  ::posix_fadvise(in, 0, 0, POSIX_FADV_SEQUENTIAL);
  auto changed = [&] {
    return make_error(src.string() + ": changed while being stored", Errc::Changed);
  };
  // A file changed within the racy window may change again within the same timestamp
  // tick, unseen by stat: store it by copying while hashing, so the blob holds exactly
  // the bytes that were hashed.
  if (to_ns(before.st_ctim) > now_ns() - racy_window_ns_) return copy_while_hashing(in, src, check);

  // Otherwise hash first (read only); a blob already stored costs no write at all.
  auto digest = sha256_fd(in, src.string(), check);
  if (!digest) return digest.error();
  if (digest->size != static_cast<uint64_t>(before.st_size)) return changed();
  BlobRef ref{digest->sha256, digest->size};
  if (after_hash_) after_hash_(src);
  fs::path tmp;
  if (!has(ref.sha256)) {
    auto out = open_temp(root_, tmp);
    if (!out) return out.error();
    Status stopped;
    bool ok = copy_fd(in, *out, check, &stopped);
    int e = errno;
    ok = ok && (deferred_sync_ || ::fsync(*out) == 0);
    ok = (::close(*out) == 0) && ok;
    if (!ok) {
      ::unlink(tmp.c_str());
      if (!stopped) return stopped.error();
      return make_error(src.string() + ": copying into the blob store: " + std::strerror(e));
    }
  }
  struct stat after;
  if (::fstat(in, &after) != 0 || !unchanged(before, after)) {
    if (!tmp.empty()) ::unlink(tmp.c_str());
    return changed();
  }
  if (tmp.empty()) return ref;
  return commit_temp(tmp, ref);
}

Result<BlobRef> BlobStore::copy_while_hashing(int in, const fs::path& src, const ReadCheck& check) {
  fs::path tmp;
  auto out = open_temp(root_, tmp);
  if (!out) return out.error();
  Sha256 h;
  BlobRef ref;
  ReadChecker checker(check);
  thread_local std::vector<char> buf(128 << 10);
  for (;;) {
    ssize_t n = ::read(in, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 ||
        (n > 0 && !write_all(*out, std::string_view(buf.data(), static_cast<size_t>(n))))) {
      int e = errno;
      ::close(*out);
      ::unlink(tmp.c_str());
      return make_error(src.string() + ": " + std::strerror(e));
    }
    if (n == 0) break;
    h.update(buf.data(), static_cast<size_t>(n));
    ref.size += static_cast<uint64_t>(n);
    if (auto s = checker.add(static_cast<uint64_t>(n)); !s) {
      ::close(*out);
      ::unlink(tmp.c_str());
      return s.error();
    }
  }
  bool ok = deferred_sync_ || ::fsync(*out) == 0;
  ok = (::close(*out) == 0) && ok;
  if (!ok) {
    ::unlink(tmp.c_str());
    return make_error(tmp.string() + ": fsync failed");
  }
  ref.sha256 = h.hex_digest();
  return commit_temp(tmp, ref);
}

Result<BlobRef> BlobStore::put_bytes(std::string_view data) {
  BlobRef ref{sha256_hex(data), data.size()};
  if (has(ref.sha256)) return ref;
  fs::path tmp;
  auto out = open_temp(root_, tmp);
  if (!out) return out.error();
  bool ok = write_all(*out, data) && (deferred_sync_ || ::fsync(*out) == 0);
  ok = (::close(*out) == 0) && ok;
  if (!ok) {
    ::unlink(tmp.c_str());
    return make_error(tmp.string() + ": write failed");
  }
  return commit_temp(tmp, ref);
}

Result<fs::path> BlobStore::new_temp_path() const {
  if (auto s = make_dirs(root_ / "tmp"); !s) return s.error();
  return root_ / "tmp" / ("upload-" + random_hex(12));
}

Result<BlobRef> BlobStore::adopt_temp(const fs::path& tmp, std::string_view expected) {
  int fd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return make_error(tmp.string() + ": " + std::strerror(e));
  }
  auto d = sha256_fd(fd, tmp.string());
  bool ok = d && ::fchmod(fd, 0444) == 0 && (deferred_sync_ || ::fsync(fd) == 0);
  int e = errno;
  ::close(fd);
  if (!d || !ok || d->sha256 != expected) {
    ::unlink(tmp.c_str());
    if (!d) return d.error();
    if (!ok) return make_error(tmp.string() + ": " + std::strerror(e));
    return make_error("body hash " + d->sha256 + " does not match blob " + std::string(expected),
                      Errc::Mismatch);
  }
  return commit_temp(tmp, BlobRef{d->sha256, d->size});
}

Status BlobStore::materialize(std::string_view sha, const fs::path& dest) const {
  if (!valid_hash(sha)) return make_error("invalid blob hash '" + std::string(sha) + "'");
  fs::path src = path_of(sha);
  int in = ::open(src.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return make_error(src.string() + ": " + std::strerror(errno));
  int out = ::open(dest.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
  if (out < 0) {
    int e = errno;
    ::close(in);
    return make_error(dest.string() + ": " + (e == EEXIST ? "already exists" : std::strerror(e)));
  }
  bool ok = copy_fd(in, out);
  int e = errno;
  ::close(in);
  if (::close(out) != 0 && ok) {
    ok = false;
    e = errno;
  }
  if (!ok) {
    ::unlink(dest.c_str());
    return make_error(dest.string() + ": " + std::strerror(e));
  }
  return {};
}

Result<struct stat> BlobStore::link_to(std::string_view sha, const fs::path& dest) const {
  if (!valid_hash(sha)) return make_error("invalid blob hash '" + std::string(sha) + "'");
  fs::path src = path_of(sha);
  if (::link(src.c_str(), dest.c_str()) != 0) {
    if (errno == EEXIST) return make_error(dest.string() + ": already exists");
    return make_error(dest.string() + ": " + std::strerror(errno));
  }
  struct stat st;
  if (::lstat(src.c_str(), &st) != 0) return make_error(src.string() + ": " + std::strerror(errno));
  return st;
}

Status BlobStore::unchanged_since(std::string_view sha, const struct stat& before) const {
  fs::path p = path_of(sha);
  struct stat now;
  if (::lstat(p.c_str(), &now) != 0) return make_error(p.string() + ": " + std::strerror(errno));
  if (unchanged(now, before)) return {};
  auto d = sha256_file(p);
  if (!d) return d.error();
  if (d->sha256 == sha) return {};
  // Out of the store at once, under a temp name that gc deletes: a later run must not read
  // forged bytes under the old name.
  auto tmp = new_temp_path();
  if (!tmp || ::rename(p.c_str(), tmp->c_str()) != 0) ::unlink(p.c_str());
  return make_error("blob " + std::string(sha) + " was changed in place (its bytes now hash to " +
                        d->sha256 + "); it is out of the store",
                    Errc::Mismatch);
}

Status BlobStore::verify(std::string_view sha) const {
  auto d = sha256_file(path_of(sha));
  if (!d) return d.error();
  if (d->sha256 != sha) return make_error("blob " + std::string(sha) + " is corrupt");
  return {};
}

}  // namespace drover
