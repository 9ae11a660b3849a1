#include "data/snapshotter.hpp"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <vector>

#include "common/sha256.hpp"
#include "data/parallel.hpp"
#include "data/progress.hpp"

namespace drover::data {

namespace fs = std::filesystem;

namespace {

Error errno_error(const std::string& path, int e) {
  return make_error(path + ": " + std::strerror(e));
}

int64_t mtime_ns(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
}

FileStat to_file_stat(const struct stat& st) {
  return FileStat{static_cast<uint64_t>(st.st_size), mtime_ns(st),
                  static_cast<uint64_t>(st.st_ino)};
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// `status`: the file's hash and size, with nothing stored.
Result<BlobRef> hash_only(const std::string& abs) {
  auto d = sha256_file(abs);
  if (!d) return d.error();
  return BlobRef{d->sha256, d->size};
}

struct Walker {
  std::string root;  // absolute source folder, no trailing '/'
  std::string exclude;
  std::vector<ManifestEntry> entries;  // files have only path/kind set until hashed

  Result<std::string> read_link(const std::string& abs) {
    std::string buf(256, '\0');
    for (;;) {
      ssize_t n = ::readlink(abs.c_str(), buf.data(), buf.size());
      if (n < 0) return errno_error(abs, errno);
      if (static_cast<size_t>(n) < buf.size()) {
        buf.resize(static_cast<size_t>(n));
        return buf;
      }
      buf.resize(buf.size() * 2);
    }
  }

  // Walks folder `rel` ("" = root). Sets `empty` when it holds nothing at all.
  Status walk(const std::string& rel, bool& empty) {
    std::string abs = rel.empty() ? root : root + "/" + rel;
    DIR* d = ::opendir(abs.c_str());
    if (!d) return errno_error(abs, errno);
    std::vector<std::pair<std::string, unsigned char>> names;
    errno = 0;
    while (dirent* de = ::readdir(d)) {
      if (!std::strcmp(de->d_name, ".") || !std::strcmp(de->d_name, "..")) continue;
      names.emplace_back(de->d_name, de->d_type);
    }
    int e = errno;
    ::closedir(d);
    if (e) return errno_error(abs, e);
    std::sort(names.begin(), names.end());
    empty = names.empty();
    for (auto& [name, type] : names) {
      std::string child_rel = rel.empty() ? name : rel + "/" + name;
      std::string child_abs = root + "/" + child_rel;
      if (type == DT_UNKNOWN) {
        struct stat st;
        if (::lstat(child_abs.c_str(), &st) != 0) return errno_error(child_abs, errno);
        type = S_ISDIR(st.st_mode)   ? DT_DIR
               : S_ISLNK(st.st_mode) ? DT_LNK
               : S_ISREG(st.st_mode) ? DT_REG
                                     : DT_FIFO;
      }
      if (type == DT_DIR) {
        if (!exclude.empty() && child_abs == exclude) continue;
        bool child_empty = false;
        if (auto s = walk(child_rel, child_empty); !s) return s;
        if (child_empty) {
          ManifestEntry ent;
          ent.kind = ManifestEntry::Kind::Dir;
          ent.path = child_rel;
          entries.push_back(std::move(ent));
        }
      } else if (type == DT_LNK) {
        auto target = read_link(child_abs);
        if (!target) return target.error();
        ManifestEntry ent;
        ent.kind = ManifestEntry::Kind::Symlink;
        ent.path = child_rel;
        ent.target = std::move(*target);
        entries.push_back(std::move(ent));
      } else if (type == DT_REG) {
        ManifestEntry ent;
        ent.path = child_rel;
        entries.push_back(std::move(ent));
      } else {
        return make_error(child_abs + ": not a regular file, folder or symlink");
      }
    }
    return {};
  }
};

}  // namespace

Result<Manifest> build_manifest(const fs::path& src, const std::string& dataset, BlobStore& blobs,
                                StatCache* cache, const SnapshotOptions& opts,
                                SnapshotStats* stats_out) {
  std::error_code ec;
  fs::path abs_src = fs::absolute(src, ec).lexically_normal();
  if (ec) return make_error(src.string() + ": " + ec.message());
  std::string root = abs_src.string();
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  struct stat rst;
  if (::stat(root.c_str(), &rst) != 0) return errno_error(src.string(), errno);

  Walker w;
  std::string single;  // the file name when src is one file
  if (S_ISDIR(rst.st_mode)) {
    w.root = root;
    if (!opts.exclude.empty()) {
      fs::path ex = fs::weakly_canonical(opts.exclude, ec);
      fs::path canon_root = fs::weakly_canonical(abs_src, ec);
      // Compare in the walker's spelling of paths.
      auto rel = ex.lexically_relative(canon_root);
      if (!rel.empty() && *rel.begin() != "..") w.exclude = root + "/" + rel.string();
    }
    bool empty = false;
    if (auto s = w.walk("", empty); !s) return s.error();
  } else if (S_ISREG(rst.st_mode)) {
    w.root = abs_src.parent_path().string();
    ManifestEntry ent;
    ent.path = abs_src.filename().string();
    w.entries.push_back(std::move(ent));
  } else {
    return make_error(src.string() + ": not a regular file or folder");
  }

  if (cache) {
    if (auto s = cache->load(w.root); !s) return s.error();
  }
  std::vector<size_t> file_idx;
  for (size_t i = 0; i < w.entries.size(); ++i)
    if (w.entries[i].kind == ManifestEntry::Kind::File) file_idx.push_back(i);

  std::atomic<uint64_t> bytes_read{0}, hashed{0}, hits{0};
  Progress progress("hashing", file_idx.size(), opts.progress);
  Status st = parallel_for(file_idx.size(), opts.threads, [&](size_t k) -> Status {
    ManifestEntry& ent = w.entries[file_idx[k]];
    std::string abs = w.root + "/" + ent.path;
    int64_t started = now_ns();
    struct stat before;
    if (::lstat(abs.c_str(), &before) != 0) return errno_error(abs, errno);
    if (!S_ISREG(before.st_mode))
      return make_error(abs +
                        ": changed while being hashed; "
                        "snapshot aborted");
    FileStat fst = to_file_stat(before);
    ent.size = fst.size;
    ent.mode = static_cast<int>(before.st_mode & 07777);
    if (cache) {
      // A hit vouches for the bytes, not for the blob: gc forgets a blob's rows before it
      // deletes it, but a store copied without its blobs or a blob deleted by hand would
      // still be taken as stored. One stat says it is there; if not, the file is stored again.
      auto h = cache->lookup(abs, fst);
      if (h && opts.store && !blobs.has(*h)) h.reset();
      if (h) {
        ent.sha256 = std::move(*h);
        hits.fetch_add(1, std::memory_order_relaxed);
        progress.add(1, 0);
        return {};
      }
    }
    auto ref = opts.store ? blobs.put_file(abs) : hash_only(abs);
    if (!ref && ref.error().code == Errc::Changed)
      return make_error(abs + ": changed while being hashed; snapshot aborted");
    if (!ref) return ref.error();
    bytes_read.fetch_add(ref->size, std::memory_order_relaxed);
    hashed.fetch_add(1, std::memory_order_relaxed);
    if (opts.after_read) opts.after_read(ent.path);
    struct stat after;
    if (::lstat(abs.c_str(), &after) != 0) return errno_error(abs, errno);
    if (ref->size != fst.size || !(to_file_stat(after) == fst) || after.st_mode != before.st_mode)
      return make_error(abs + ": changed while being hashed; snapshot aborted");
    ent.sha256 = ref->sha256;
    if (cache && opts.store) cache->record(abs, fst, ent.sha256, started);
    progress.add(1, ref->size);
    return {};
  });
  if (!st) return st.error();
  if (cache) {
    if (auto s = cache->flush(); !s) return s.error();
  }

  Manifest m;
  m.dataset = dataset;
  m.files = std::move(w.entries);
  std::sort(m.files.begin(), m.files.end(),
            [](const ManifestEntry& a, const ManifestEntry& b) { return a.path < b.path; });
  if (stats_out) {
    SnapshotStats s;
    for (auto& e : m.files) {
      if (e.kind == ManifestEntry::Kind::File) {
        ++s.files;
        s.bytes_total += e.size;
      } else if (e.kind == ManifestEntry::Kind::Symlink) {
        ++s.symlinks;
      } else {
        ++s.dirs;
      }
    }
    s.bytes_read = bytes_read.load();
    s.files_hashed = hashed.load();
    s.cache_hits = hits.load();
    *stats_out = s;
  }
  return m;
}

}  // namespace drover::data
