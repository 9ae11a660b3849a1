#include "data/registry.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <sstream>
#include <utility>

#include "common/clock.hpp"
#include "common/fs.hpp"
#include "common/sha256.hpp"
#include "common/time.hpp"
#include "data/parallel.hpp"
#include "data/progress.hpp"

namespace drover::data {

namespace fs = std::filesystem;

namespace {

constexpr int kBlobMode = 0444;

Error errno_error(const fs::path& p, int e) {
  return make_error(p.string() + ": " + std::strerror(e));
}

bool name_chars(std::string_view s, bool upper_ok) {
  if (s.empty() || s[0] == '.' || s[0] == '-') return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
              c == '-' || (upper_ok && c >= 'A' && c <= 'Z');
    if (!ok) return false;
  }
  return true;
}

bool is_hex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  return s;
}

std::optional<std::string> read_ref(const fs::path& file) {
  struct stat st;
  if (::stat(file.c_str(), &st) != 0) return std::nullopt;
  auto text = read_file(file, 1024);
  if (!text) return std::nullopt;
  std::string v = trim(*text);
  if (!BlobStore::valid_hash(v)) return std::nullopt;
  return v;
}

std::vector<std::string> list_dir(const fs::path& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (dirent* de = ::readdir(d)) {
    if (de->d_name[0] == '.') continue;
    out.emplace_back(de->d_name);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

std::string blob_key(const std::string& sha) {
  return "blobs/" + sha.substr(0, 2) + "/" + sha.substr(2);
}

// The mode a checked-out file gets from the one its manifest records (which may come from a
// remote anyone could write): setuid, setgid and sticky dropped, and write for group and
// others, so that a version cannot plant a setuid or world-writable file. What restricts is
// kept (a 0600 file stays private); git keeps even less (0644 or 0755).
int checkout_mode(int recorded) { return recorded & 0755; }

// Copies blob `src` to `dest` (created with O_EXCL), hashing while copying; gives it `mode`.
Status copy_verified(const fs::path& src, const std::string& sha, const fs::path& dest, int mode) {
  int in = ::open(src.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return errno_error(src, errno);
  int out = ::open(dest.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (out < 0) {
    int e = errno;
    ::close(in);
    return errno_error(dest, e);
  }
  Sha256 h;
  std::vector<char> buf(1 << 20);
  int err = 0;
  for (;;) {
    ssize_t n = ::read(in, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      err = errno;
      break;
    }
    if (n == 0) break;
    h.update(buf.data(), static_cast<size_t>(n));
    const char* p = buf.data();
    size_t left = static_cast<size_t>(n);
    while (left > 0 && !err) {
      ssize_t w = ::write(out, p, left);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0)
        err = errno;
      else {
        p += w;
        left -= static_cast<size_t>(w);
      }
    }
    if (err) break;
  }
  ::close(in);
  if (!err && ::fchmod(out, static_cast<mode_t>(mode)) != 0) err = errno;
  if (::close(out) != 0 && !err) err = errno;
  if (err) {
    ::unlink(dest.c_str());
    return errno_error(dest, err);
  }
  if (h.hex_digest() != sha) {
    ::unlink(dest.c_str());
    return make_error("blob " + sha + " is corrupt");
  }
  return {};
}

}  // namespace

bool valid_dataset_name(std::string_view name) { return name_chars(name, false); }

bool valid_tag_name(std::string_view tag) { return tag != "latest" && name_chars(tag, true); }

Diff diff_manifests(const Manifest& a, const Manifest& b) {
  Diff d;
  size_t i = 0, j = 0;
  auto entry = [](const ManifestEntry& e) {
    return DiffEntry{e.path, e.size, e.size, e.sha256, e.sha256};
  };
  while (i < a.files.size() || j < b.files.size()) {
    if (j == b.files.size() || (i < a.files.size() && a.files[i].path < b.files[j].path)) {
      auto e = entry(a.files[i++]);
      e.new_size = 0;
      e.new_sha256.clear();
      d.removed.push_back(std::move(e));
    } else if (i == a.files.size() || b.files[j].path < a.files[i].path) {
      auto e = entry(b.files[j++]);
      e.old_size = 0;
      e.old_sha256.clear();
      d.added.push_back(std::move(e));
    } else {
      const auto& x = a.files[i++];
      const auto& y = b.files[j++];
      if (!(x == y)) d.changed.push_back(DiffEntry{x.path, x.size, y.size, x.sha256, y.sha256});
    }
  }
  return d;
}

Registry::Registry(fs::path home) : home_(std::move(home)), blobs_(home_ / "blobs") {}

Result<FileLock> lock_store(const fs::path& home, bool exclusive, bool wait,
                            const std::function<void()>& on_wait) {
  return FileLock::acquire(home / "blobs.lock", exclusive, wait, on_wait);
}

fs::path Registry::dataset_dir(std::string_view name) const {
  return home_ / "datasets" / std::string(name);
}

bool Registry::has_dataset(std::string_view name) const {
  if (!valid_dataset_name(name)) return false;
  struct stat st;
  return ::stat(dataset_dir(name).c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::vector<std::string> Registry::datasets() const {
  std::vector<std::string> out;
  for (auto& n : list_dir(home_ / "datasets"))
    if (valid_dataset_name(n)) out.push_back(n);
  return out;
}

Result<std::vector<LogEntry>> Registry::log(const std::string& dataset) const {
  std::vector<LogEntry> out;
  fs::path file = dataset_dir(dataset) / "log";
  struct stat st;
  if (::stat(file.c_str(), &st) != 0) return out;
  auto text = read_file(file);
  if (!text) return text.error();
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) {
    size_t a = line.find('\t');
    if (a == std::string::npos) continue;
    size_t b = line.find('\t', a + 1);
    LogEntry e;
    e.time = line.substr(0, a);
    e.version = line.substr(a + 1, b == std::string::npos ? std::string::npos : b - a - 1);
    if (b != std::string::npos) e.message = line.substr(b + 1);
    if (BlobStore::valid_hash(e.version)) out.push_back(std::move(e));
  }
  return out;
}

std::map<std::string, std::string> Registry::tags(const std::string& dataset) const {
  std::map<std::string, std::string> out;
  fs::path dir = dataset_dir(dataset) / "tags";
  for (auto& t : list_dir(dir))
    if (valid_tag_name(t))
      if (auto v = read_ref(dir / t)) out[t] = *v;
  return out;
}

std::optional<std::string> Registry::latest(const std::string& dataset) const {
  return read_ref(dataset_dir(dataset) / "latest");
}

std::optional<std::string> Registry::ref(std::string_view dataset, std::string_view tag) const {
  if (!valid_dataset_name(dataset) || (tag != "latest" && !valid_tag_name(tag)))
    return std::nullopt;
  fs::path dir = dataset_dir(dataset);
  return read_ref(tag == "latest" ? dir / "latest" : dir / "tags" / std::string(tag));
}

Status Registry::set_ref(const std::string& dataset, const std::string& tag,
                         const std::string& version, const std::string& message, bool wait) {
  if (!valid_dataset_name(dataset))
    return make_error("invalid dataset name '" + dataset + "': use [a-z0-9_.-]+", Errc::Invalid);
  if (tag != "latest" && !valid_tag_name(tag))
    return make_error("invalid tag '" + tag + "': use [A-Za-z0-9_.-]+ (or 'latest')",
                      Errc::Invalid);
  if (!BlobStore::valid_hash(version))
    return make_error("invalid version '" + version + "' (expected 64 lowercase hex digits)",
                      Errc::Invalid);
  // Held until the ref is written, so a gc cannot delete the version's blobs between the
  // check below and the ref that makes them live.
  auto lock = lock_store(home_, false, wait);
  if (!lock) return lock.error();
  if (!blobs_.has(version))
    return make_error(
        "version " + version + " is not on this server: push its blobs and manifest first",
        Errc::Invalid);
  auto manifest = load(version);
  if (!manifest)
    return make_error("version " + version + " is not a manifest: " + manifest.message(),
                      Errc::Invalid);
  size_t missing = 0;
  std::string first_missing;
  for (auto& f : manifest->files)
    if (f.kind == ManifestEntry::Kind::File && !blobs_.has(f.sha256))
      if (missing++ == 0) first_missing = f.path + " (" + f.sha256 + ")";
  if (missing)
    return make_error("version " + version +
                          " is incomplete on this server: " + std::to_string(missing) +
                          " file(s) missing, first " + first_missing + "; push its blobs first",
                      Errc::Invalid);
  // A log line first, then the ref itself.
  fs::path dir = dataset_dir(dataset);
  if (auto s = append_log(dataset, version, message); !s) return s;
  if (auto s = write_ref(tag == "latest" ? dir / "latest" : dir / "tags" / tag, version); !s)
    return s;
  struct stat st;
  if (tag != "latest" && ::stat((dir / "latest").c_str(), &st) != 0)
    if (auto s = write_ref(dir / "latest", version); !s) return s;
  return {};
}

Status Registry::delete_ref(const std::string& dataset, const std::string& tag) {
  if (!valid_dataset_name(dataset))
    return make_error("invalid dataset name '" + dataset + "': use [a-z0-9_.-]+", Errc::Invalid);
  if (tag == "latest")
    return make_error("'" + dataset + "@latest' cannot be deleted: it moves with new versions",
                      Errc::Invalid);
  if (!valid_tag_name(tag))
    return make_error("invalid tag '" + tag + "': use [A-Za-z0-9_.-]+ (and not 'latest')",
                      Errc::Invalid);
  fs::path file = dataset_dir(dataset) / "tags" / tag;
  if (::unlink(file.c_str()) != 0) {
    if (errno == ENOENT)
      return make_error("dataset '" + dataset + "' has no tag '" + tag + "'", Errc::NotFound);
    return errno_error(file, errno);
  }
  return fsync_dir(file.parent_path());
}

std::set<std::string> Registry::known_versions() const {
  std::set<std::string> out;
  for (auto& d : datasets()) {
    if (auto l = log(d); l.ok())
      for (auto& e : *l) out.insert(e.version);
    for (auto& [t, v] : tags(d)) out.insert(v);
    if (auto v = latest(d)) out.insert(*v);
  }
  return out;
}

Status Registry::append_log(const std::string& dataset, const std::string& version,
                            const std::string& message) {
  fs::path dir = dataset_dir(dataset);
  if (auto s = make_dirs(dir / "tags"); !s) return s;
  SystemClock clock;
  std::string line = format_iso_utc(clock.now()) + "\t" + version + "\t" + one_line(message) + "\n";
  fs::path file = dir / "log";
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return errno_error(file, errno);
  // One write() of a short line with O_APPEND: concurrent writers never interleave.
  ssize_t n = ::write(fd, line.data(), line.size());
  int e = errno;
  bool synced = ::fsync(fd) == 0;
  ::close(fd);
  if (n != static_cast<ssize_t>(line.size()) || !synced) return errno_error(file, e);
  return {};
}

Status Registry::write_ref(const fs::path& file, const std::string& version) {
  if (auto s = make_dirs(file.parent_path()); !s) return s;
  return write_file_atomic(file, version + "\n");
}

Result<AddResult> Registry::add(const fs::path& src, const std::string& dataset,
                                const std::string& tag, const std::string& message,
                                SnapshotOptions opts) {
  if (!valid_dataset_name(dataset))
    return make_error("invalid dataset name '" + dataset + "': use [a-z0-9_.-]+", Errc::Invalid);
  if (!tag.empty() && !valid_tag_name(tag))
    return make_error("invalid tag '" + tag + "': use [A-Za-z0-9_.-]+ (and not 'latest')",
                      Errc::Invalid);
  if (opts.exclude.empty()) opts.exclude = home_;
  auto lock = lock_store(home_, false, true);
  if (!lock) return lock.error();
  auto cache = StatCache::open(home_ / "cache" / "stat.db");
  if (!cache) return cache.error();
  AddResult res;
  // Many small blobs: one syncfs at the end instead of two fsyncs per blob; the blobs are
  // durable before the manifest and the refs that name them are written.
  blobs_.set_deferred_sync(true);
  auto m = build_manifest(src, dataset, blobs_, cache->get(), opts, &res.stats);
  blobs_.set_deferred_sync(false);
  if (!m) return m.error();
  if (auto s = blobs_.sync(); !s) return s.error();  // only when new blobs were stored
  auto ref = blobs_.put_bytes(to_canonical_json(*m));
  if (!ref) return ref.error();
  res.version = ref->sha256;
  res.manifest = std::move(*m);
  if (auto s = append_log(dataset, res.version, message); !s) return s.error();
  if (auto s = write_ref(dataset_dir(dataset) / "latest", res.version); !s) return s.error();
  if (!tag.empty())
    if (auto s = write_ref(dataset_dir(dataset) / "tags" / tag, res.version); !s) return s.error();
  return res;
}

Result<StatusResult> Registry::status(const fs::path& src, const std::string& dataset,
                                      const std::string& against, SnapshotOptions opts) {
  if (!valid_dataset_name(dataset))
    return make_error("invalid dataset name '" + dataset + "': use [a-z0-9_.-]+", Errc::Invalid);
  auto v = resolve(against.empty() ? dataset + "@latest" : against);
  if (!v) return v.error();
  auto old = load(*v);
  if (!old) return old.error();
  if (opts.exclude.empty()) opts.exclude = home_;
  opts.store = false;
  auto cache = StatCache::open(home_ / "cache" / "stat.db");
  if (!cache) return cache.error();
  StatusResult res;
  res.against = *v;
  auto now = build_manifest(src, dataset, blobs_, cache->get(), opts, &res.stats);
  if (!now) return now.error();
  res.diff = diff_manifests(*old, *now);
  return res;
}

Result<std::string> Registry::resolve(std::string_view ref_in) const {
  std::string ref(ref_in);
  size_t at = ref.find('@');
  if (at != std::string::npos) {
    std::string name = ref.substr(0, at), tag = ref.substr(at + 1);
    if (!valid_dataset_name(name))
      return make_error("invalid dataset name '" + name + "' in '" + ref + "'", Errc::Invalid);
    if (!has_dataset(name)) return make_error("unknown dataset '" + name + "'", Errc::NotFound);
    if (tag == "latest") {
      if (auto v = latest(name)) return *v;
      return make_error("dataset '" + name + "' has no versions", Errc::NotFound);
    }
    if (!valid_tag_name(tag))
      return make_error("invalid tag '" + tag + "' in '" + ref + "'", Errc::Invalid);
    if (auto v = read_ref(dataset_dir(name) / "tags" / tag)) return *v;
    return make_error("dataset '" + name + "' has no tag '" + tag + "'", Errc::NotFound);
  }
  if (ref.size() < 8 || ref.size() > 64 || !is_hex(ref)) {
    if (has_dataset(ref))
      return make_error("'" + ref + "' is not a version: did you mean '" + ref + "@latest'?",
                        Errc::Invalid);
    return make_error("'" + ref +
                          "' is not a version: use NAME@TAG, NAME@latest or a version id "
                          "(at least 8 hex digits)",
                      Errc::Invalid);
  }
  auto known = known_versions();
  if (ref.size() == 64) {
    if (known.count(ref) || (blobs_.has(ref) && load(ref).ok())) return ref;
    return make_error("no version matches '" + ref + "'", Errc::NotFound);
  }
  std::vector<std::string> matches;
  for (auto it = known.lower_bound(ref); it != known.end() && it->rfind(ref, 0) == 0; ++it)
    matches.push_back(*it);
  if (matches.empty()) return make_error("no version matches '" + ref + "'", Errc::NotFound);
  if (matches.size() > 1) {
    std::string list;
    for (auto& m : matches) list += (list.empty() ? "" : ", ") + m.substr(0, 16);
    return make_error("version prefix '" + ref + "' is ambiguous: " + list, Errc::Invalid);
  }
  return matches[0];
}

Result<Manifest> Registry::load(std::string_view version) const {
  std::string v(version);
  if (!BlobStore::valid_hash(v)) return make_error("invalid version id '" + v + "'", Errc::Invalid);
  if (!blobs_.has(v))
    return make_error("manifest of version " + v + " is missing (pull it from a remote)",
                      Errc::NotFound);
  auto text = read_file(blobs_.path_of(v), 1u << 30);
  if (!text) return text.error();
  if (sha256_hex(*text) != v) return make_error("blob " + v + " is corrupt");
  return parse_manifest(*text);
}

Status Registry::set_tag(std::string_view ref, const std::string& tag) {
  if (!valid_tag_name(tag))
    return make_error("invalid tag '" + tag + "': use [A-Za-z0-9_.-]+ (and not 'latest')",
                      Errc::Invalid);
  auto v = resolve(ref);
  if (!v) return v.error();
  auto m = load(*v);
  if (!m) return m.error();
  if (!valid_dataset_name(m->dataset))
    return make_error("version " + *v + " has an invalid dataset name", Errc::Invalid);
  if (!has_dataset(m->dataset))
    if (auto s = append_log(m->dataset, *v, "tagged " + tag); !s) return s;
  return write_ref(dataset_dir(m->dataset) / "tags" / tag, *v);
}

Status Registry::checkout(std::string_view ref, const fs::path& dest, const CheckoutOptions& opts) {
  auto v = resolve(ref);
  if (!v) return v.error();
  auto m = load(*v);
  if (!m) return m.error();
  std::error_code ec;
  auto st = fs::symlink_status(dest, ec);
  if (!ec && fs::exists(st)) {
    if (!fs::is_directory(st)) return make_error(dest.string() + ": exists and is not a folder");
    if (!fs::is_empty(dest, ec)) return make_error(dest.string() + ": exists and is not empty");
  }
  for (auto& e : m->files)
    if (e.kind == ManifestEntry::Kind::File && !blobs_.has(e.sha256))
      return make_error(
          "blob " + e.sha256 + " of '" + e.path + "' is missing (pull the version from a remote)",
          Errc::NotFound);
  if (auto s = make_dirs(dest); !s) return s;
  // Folders first (serially), then files in parallel, then symlinks last so that no file
  // is ever written through a link.
  std::set<std::string> made;
  auto mkparents = [&](const std::string& rel, bool self) -> Status {
    fs::path p = self ? fs::path(rel) : fs::path(rel).parent_path();
    if (p.empty() || made.count(p.string())) return {};
    made.insert(p.string());
    return make_dirs(dest / p);
  };
  std::vector<const ManifestEntry*> files;
  for (auto& e : m->files) {
    bool is_dir = e.kind == ManifestEntry::Kind::Dir;
    if (auto s = mkparents(e.path, is_dir); !s) return s;
    if (e.kind == ManifestEntry::Kind::File) files.push_back(&e);
  }
  Progress progress("checkout", files.size(), opts.progress);
  Status s = parallel_for(files.size(), opts.threads, [&](size_t i) -> Status {
    const ManifestEntry& e = *files[i];
    fs::path out = dest / e.path;
    fs::path blob = blobs_.path_of(e.sha256);
    if (opts.link_always) {
      if (auto v = blobs_.verify(e.sha256); !v) return v;
      if (::link(blob.c_str(), out.c_str()) == 0) {
        progress.add(1, e.size);
        return {};
      }
      if (errno != EXDEV && errno != EPERM && errno != EMLINK) return errno_error(out, errno);
    }
    if (auto c = copy_verified(blob, e.sha256, out, checkout_mode(e.mode)); !c) return c;
    progress.add(1, e.size);
    return {};
  });
  if (!s) return s;
  for (auto& e : m->files) {
    if (e.kind != ManifestEntry::Kind::Symlink) continue;
    fs::path out = dest / e.path;
    if (::symlink(e.target.c_str(), out.c_str()) != 0) return errno_error(out, errno);
  }
  return {};
}

Result<GcResult> Registry::gc(const GcOptions& opts) {
  auto lock = lock_store(home_, true, true, opts.on_wait);
  if (!lock) return lock.error();
  std::set<std::string> live;
  std::set<std::string> versions = known_versions();
  auto is_manifest = [&](const std::string& sha) {
    std::string head(16, '\0');
    int fd = ::open(blobs_.path_of(sha).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    ssize_t n = ::read(fd, head.data(), head.size());
    ::close(fd);
    return n > 0 && head.rfind("{\"dataset\":", 0) == 0;
  };
  for (auto& k : opts.keep) {
    live.insert(k);
    if (BlobStore::valid_hash(k) && blobs_.has(k) && is_manifest(k)) versions.insert(k);
  }
  for (auto& v : versions) {
    live.insert(v);
    auto m = load(v);
    if (!m) {
      if (blobs_.has(v))  // a manifest we cannot read: keep everything, delete nothing
        return make_error("gc aborted: " + m.message());
      continue;
    }
    for (auto& e : m->files)
      if (e.kind == ManifestEntry::Kind::File) live.insert(e.sha256);
  }
  GcResult res;
  auto now = std::chrono::system_clock::now();
  auto cutoff = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count() -
                opts.grace_seconds;
  fs::path root = blobs_.root();
  std::set<std::string> doomed_shas;
  std::vector<std::pair<fs::path, uint64_t>> doomed;
  for (auto& sub : list_dir(root)) {
    bool tmp = sub == "tmp";
    if (!tmp && (sub.size() != 2 || !is_hex(sub))) continue;
    for (auto& name : list_dir(root / sub)) {
      fs::path p = root / sub / name;
      struct stat st;
      if (::lstat(p.c_str(), &st) != 0) continue;
      std::string sha = sub + name;
      if (!tmp && live.count(sha)) {
        ++res.blobs_kept;
        continue;
      }
      if (st.st_mtim.tv_sec > cutoff) {
        ++res.blobs_kept;
        continue;
      }
      if (!tmp) doomed_shas.insert(sha);
      doomed.emplace_back(p, static_cast<uint64_t>(st.st_size));
    }
  }
  if (opts.dry_run) {
    res.blobs_deleted = doomed.size();
    for (auto& [p, size] : doomed) res.bytes_freed += size;
    return res;
  }
  // The stat cache forgets the doomed blobs before the first is deleted: a gc killed or
  // failing halfway leaves rows only for blobs that are still there, so no later `snapshot
  // add` takes a file as stored whose blob is gone.
  if (!doomed_shas.empty()) {
    auto cache = StatCache::open(home_ / "cache" / "stat.db");
    if (!cache) return cache.error();
    if (auto s = (*cache)->forget(doomed_shas); !s) return s.error();
  }
  if (before_delete_) before_delete_();
  for (auto& [p, size] : doomed) {
    if (::unlink(p.c_str()) != 0) return errno_error(p, errno);
    ++res.blobs_deleted;
    res.bytes_freed += size;
  }
  return res;
}

Result<TransferResult> Registry::push(std::string_view ref, Remote& remote, bool progress) {
  auto v = resolve(ref);
  if (!v) return v.error();
  auto m = load(*v);
  if (!m) return m.error();
  TransferResult res;
  res.version = *v;
  std::set<std::string> uniq;
  for (auto& e : m->files)
    if (e.kind == ManifestEntry::Kind::File) uniq.insert(e.sha256);
  std::vector<std::string> hashes(uniq.begin(), uniq.end());
  for (auto& h : hashes)
    if (!blobs_.has(h))
      return make_error("blob " + h + " is missing locally; cannot push " + *v, Errc::NotFound);
  std::atomic<uint64_t> sent{0}, bytes{0}, skipped{0};
  Progress bar("push", hashes.size(), progress);
  Status s = parallel_for(hashes.size(), remote.parallelism(), [&](size_t i) -> Status {
    const std::string& h = hashes[i];
    auto has = remote.exists(blob_key(h));
    if (!has) return has.error();
    struct stat st;
    uint64_t size = ::stat(blobs_.path_of(h).c_str(), &st) == 0 ? st.st_size : 0;
    if (*has) {
      skipped.fetch_add(1);
      bar.add(1, 0);
      return {};
    }
    // Verified on the way out: a blob whose bytes no longer match its name (changed in place
    // on disk) must not reach a remote, where every pull would trust it.
    if (auto ok = blobs_.verify(h); !ok)
      return make_error(ok.message() + " in the local store; not pushed", Errc::Mismatch);
    if (auto p = remote.put_file(blob_key(h), blobs_.path_of(h)); !p) return p;
    sent.fetch_add(1);
    bytes.fetch_add(size);
    bar.add(1, size);
    return {};
  });
  if (!s) return s.error();
  auto has_manifest = remote.exists(blob_key(*v));
  if (!has_manifest) return has_manifest.error();
  if (!*has_manifest) {
    if (auto s = blobs_.verify(*v); !s) return make_error(s.message() + " in the local store");
    if (auto p = remote.put_file(blob_key(*v), blobs_.path_of(*v)); !p) return p.error();
  }
  size_t at = ref.find('@');
  if (at != std::string_view::npos) {
    std::string key =
        "refs/" + std::string(ref.substr(0, at)) + "/" + std::string(ref.substr(at + 1));
    if (auto p = remote.put_bytes(key, *v + "\n"); !p) return p.error();
  }
  res.blobs_sent = sent;
  res.bytes_sent = bytes;
  res.blobs_skipped = skipped;
  return res;
}

Status Registry::fetch_blob(Remote& remote, const std::string& sha, uint64_t* bytes) {
  fs::path tmpdir = blobs_.root() / "tmp";
  if (auto s = make_dirs(tmpdir); !s) return s;
  fs::path tmp = tmpdir / ("pull-" + random_hex(12));
  if (auto s = remote.get_file(blob_key(sha), tmp); !s) {
    ::unlink(tmp.c_str());
    if (s.error().code == Errc::NotFound)
      return make_error("blob " + sha + " is missing on remote " + remote.url(), Errc::NotFound);
    return s;
  }
  auto d = sha256_file(tmp);
  if (!d || d->sha256 != sha) {
    ::unlink(tmp.c_str());
    if (!d) return d.error();
    return make_error("blob " + sha + " from remote " + remote.url() + " is corrupt");
  }
  ::chmod(tmp.c_str(), kBlobMode);
  {
    int fd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      ::fsync(fd);
      ::close(fd);
    }
  }
  fs::path dest = blobs_.path_of(sha);
  if (auto s = make_dirs(dest.parent_path()); !s) return s;
  if (::rename(tmp.c_str(), dest.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return errno_error(dest, e);
  }
  (void)fsync_dir(dest.parent_path());
  if (bytes) *bytes += d->size;
  return {};
}

Result<TransferResult> Registry::pull(std::string_view ref_in, Remote& remote, bool progress) {
  auto lock = lock_store(home_, false, true);
  if (!lock) return lock.error();
  std::string ref(ref_in);
  std::string version, name, tag;
  size_t at = ref.find('@');
  if (at != std::string::npos) {
    name = ref.substr(0, at);
    tag = ref.substr(at + 1);
    if (!valid_dataset_name(name))
      return make_error("invalid dataset name '" + name + "' in '" + ref + "'", Errc::Invalid);
    if (tag != "latest" && !valid_tag_name(tag))
      return make_error("invalid tag '" + tag + "' in '" + ref + "'", Errc::Invalid);
    auto text = remote.get_bytes("refs/" + name + "/" + tag);
    if (!text) return text.error();
    if (!*text)
      return make_error("remote " + remote.url() + " has no ref '" + ref + "'", Errc::NotFound);
    version = trim(**text);
    if (!BlobStore::valid_hash(version))
      return make_error("remote " + remote.url() + ": ref '" + ref + "' is malformed");
  } else if (BlobStore::valid_hash(ref)) {
    version = ref;
  } else {
    return make_error("pull needs NAME@TAG, NAME@latest or a full version id, not '" + ref + "'",
                      Errc::Invalid);
  }
  TransferResult res;
  res.version = version;
  uint64_t manifest_bytes = 0;
  if (!blobs_.has(version))
    if (auto s = fetch_blob(remote, version, &manifest_bytes); !s) return s.error();
  auto m = load(version);
  if (!m) return m.error();
  std::set<std::string> uniq;
  for (auto& e : m->files)
    if (e.kind == ManifestEntry::Kind::File) uniq.insert(e.sha256);
  std::vector<std::string> missing;
  for (auto& h : uniq) {
    if (blobs_.has(h))
      ++res.blobs_skipped;
    else
      missing.push_back(h);
  }
  std::atomic<uint64_t> bytes{0};
  Progress bar("pull", missing.size(), progress);
  Status s = parallel_for(missing.size(), remote.parallelism(), [&](size_t i) -> Status {
    uint64_t n = 0;
    if (auto f = fetch_blob(remote, missing[i], &n); !f) return f;
    bytes.fetch_add(n);
    bar.add(1, n);
    return {};
  });
  if (!s) return s.error();
  res.blobs_sent = missing.size();
  res.bytes_sent = bytes;
  std::string dataset = name.empty() ? m->dataset : name;
  if (!valid_dataset_name(dataset))
    return make_error("version " + version + " has an invalid dataset name", Errc::Invalid);
  if (auto a = append_log(dataset, version, "pulled " + ref + " from " + remote.url()); !a)
    return a.error();
  if (!tag.empty() && tag != "latest")
    if (auto w = write_ref(dataset_dir(dataset) / "tags" / tag, version); !w) return w.error();
  if (tag == "latest" || !latest(dataset))
    if (auto w = write_ref(dataset_dir(dataset) / "latest", version); !w) return w.error();
  return res;
}

}  // namespace drover::data
