#include "scheduler/dag_folder.hpp"

#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio.hpp>
#include <cstring>

#include "scheduler/dag_loader.hpp"

namespace drover {

namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace {

class DagFolder final : public DagSource {
 public:
  DagFolder(asio::io_context& io, fs::path dir, const DagLimits& limits)
      : io_(io), dir_(std::move(dir)), limits_(limits) {}
  ~DagFolder() override { stop(); }

  Scan scan() override {
    Scan out;
    std::map<std::string, std::string> seen_ids;  // id -> file
    for (auto& path : find_dag_files(dir_)) {
      std::string file = path.string();
      out.files.insert(file);
      LoadResult r = load_dag_file(path, limits_);
      if (!r.dag) {
        out.errors[file] = r.diagnostics;
        continue;
      }
      if (auto seen = seen_ids.find(r.dag->id); seen != seen_ids.end()) {
        out.errors[file].push_back(Diagnostic{
            file, 1, 1, "dag id '" + r.dag->id + "' is already defined in " + seen->second});
        continue;
      }
      seen_ids[r.dag->id] = file;
      out.dags[file] = r.dag;
    }
    return out;
  }

  void watch(std::function<void()> changed) override {
    changed_ = std::move(changed);
    fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd_ < 0) return;
    watch_tree(dir_);
    stream_ = std::make_unique<asio::posix::stream_descriptor>(io_, fd_);
    settle_ = std::make_unique<asio::steady_timer>(io_);
    read();
  }

  void stop() override {
    stopped_ = true;
    if (stream_) {
      boost::system::error_code ec;
      stream_->close(ec);  // closes fd_
    }
    if (settle_) settle_->cancel();
  }

 private:
  static constexpr uint32_t kMask =
      IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE | IN_MODIFY | IN_ATTRIB;

  void read() {
    stream_->async_read_some(asio::buffer(buf_),
                             [this](const boost::system::error_code& ec, size_t n) {
                               if (ec || stopped_) return;
                               on_events(n);
                               // Changes come in bursts (editors write, rename, chmod): settle.
                               // The scan that ends the burst comes after the watches of new
                               // folders were added, so it finds what was written in them first.
                               settle_->expires_after(std::chrono::milliseconds(150));
                               settle_->async_wait([this](const boost::system::error_code& e) {
                                 if (!e && !stopped_ && changed_) changed_();
                               });
                               read();
                             });
  }

  // One read holds whole events only.
  void on_events(size_t n) {
    for (size_t at = 0; at + sizeof(inotify_event) <= n;) {
      inotify_event e;
      std::memcpy(&e, buf_.data() + at, sizeof e);
      on_event(e, e.len ? buf_.data() + at + sizeof e : "");
      at += sizeof e + e.len;
    }
  }

  // Folders are watched as they come and forgotten as they go; files need nothing, the scan
  // after the burst reads them.
  void on_event(const inotify_event& e, const char* name) {
    if (e.mask & IN_Q_OVERFLOW) return rewatch();  // events were lost: trust none of them
    if (e.mask & IN_IGNORED) {  // removed, moved out and unwatched, or the file system is gone
      dirs_.erase(e.wd);
      return;
    }
    if (!(e.mask & IN_ISDIR) || !*name) return;
    auto parent = dirs_.find(e.wd);
    if (parent == dirs_.end()) return;
    fs::path dir = parent->second / name;
    if (e.mask & IN_MOVED_FROM) unwatch_tree(dir);  // out of the folder, or renamed within
    if (e.mask & (IN_CREATE | IN_MOVED_TO)) watch_tree(dir);
  }

  // Watches `top` and every folder under it that the scan reads (hidden ones and links to
  // folders it skips). Folders made under `top` before its watch was added are found by the
  // walk, those made after by their IN_CREATE: `mkdir -p a/b/c` misses none.
  void watch_tree(const fs::path& top) {
    if (top != dir_ && hidden(top)) return;
    if (!add_watch(top, top == dir_ ? kMask : kMask | IN_DONT_FOLLOW | IN_ONLYDIR)) return;
    std::error_code ec, entry_ec;
    for (auto it = fs::recursive_directory_iterator(
             top, fs::directory_options::skip_permission_denied, ec);
         !ec && it != fs::end(it); it.increment(ec)) {
      if (it->is_symlink(entry_ec) || !it->is_directory(entry_ec)) continue;
      if (hidden(it->path()))
        it.disable_recursion_pending();
      else
        add_watch(it->path(), kMask | IN_DONT_FOLLOW | IN_ONLYDIR);
    }
  }

  bool add_watch(const fs::path& dir, uint32_t mask) {
    int wd = ::inotify_add_watch(fd_, dir.c_str(), mask);
    if (wd < 0) return false;
    dirs_[wd] = dir;  // the same folder twice keeps its descriptor
    return true;
  }

  // Each watch's IN_IGNORED then takes it out of dirs_.
  void unwatch_tree(const fs::path& top) {
    for (auto& [wd, dir] : dirs_)
      if (within(dir, top)) ::inotify_rm_watch(fd_, wd);
  }

  // After an overflow the folders seen are unknown: watch the tree as it is now and drop the
  // watches of folders no longer in it (their IN_IGNORED may have been lost).
  void rewatch() {
    std::map<int, fs::path> old;
    old.swap(dirs_);
    watch_tree(dir_);
    for (auto& [wd, dir] : old)
      if (!dirs_.count(wd)) ::inotify_rm_watch(fd_, wd);
  }

  static bool hidden(const fs::path& p) {
    std::string base = p.filename().string();
    return !base.empty() && base[0] == '.';  // as find_dag_files: .git, .drover
  }

  static bool within(const fs::path& p, const fs::path& top) {
    return std::mismatch(top.begin(), top.end(), p.begin(), p.end()).first == top.end();
  }

  asio::io_context& io_;
  fs::path dir_;
  DagLimits limits_;
  std::function<void()> changed_;
  int fd_ = -1;
  bool stopped_ = false;
  std::unique_ptr<asio::posix::stream_descriptor> stream_;
  std::unique_ptr<asio::steady_timer> settle_;
  std::map<int, fs::path> dirs_;  // by watch descriptor: the folders watched
  std::array<char, 16384> buf_{};
};

}  // namespace

std::unique_ptr<DagSource> make_dag_folder(asio::io_context& io, fs::path dir,
                                           const DagLimits& limits) {
  return std::make_unique<DagFolder>(io, std::move(dir), limits);
}

}  // namespace drover
