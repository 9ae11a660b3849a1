#include "scheduler/dag_folder.hpp"

#include <sys/inotify.h>
#include <unistd.h>

#include <array>
#include <boost/asio.hpp>

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
    const uint32_t mask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE |
                          IN_MODIFY | IN_ATTRIB;
    ::inotify_add_watch(fd_, dir_.c_str(), mask);
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(dir_, ec); !ec && it != fs::end(it);
         it.increment(ec))
      if (it->is_directory()) ::inotify_add_watch(fd_, it->path().c_str(), mask);
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
  void read() {
    stream_->async_read_some(asio::buffer(buf_),
                             [this](const boost::system::error_code& ec, size_t) {
                               if (ec || stopped_) return;
                               // Changes come in bursts (editors write, rename, chmod): settle.
                               settle_->expires_after(std::chrono::milliseconds(150));
                               settle_->async_wait([this](const boost::system::error_code& e) {
                                 if (!e && !stopped_ && changed_) changed_();
                               });
                               read();
                             });
  }

  asio::io_context& io_;
  fs::path dir_;
  DagLimits limits_;
  std::function<void()> changed_;
  int fd_ = -1;
  bool stopped_ = false;
  std::unique_ptr<asio::posix::stream_descriptor> stream_;
  std::unique_ptr<asio::steady_timer> settle_;
  std::array<char, 16384> buf_{};
};

}  // namespace

std::unique_ptr<DagSource> make_dag_folder(asio::io_context& io, fs::path dir,
                                           const DagLimits& limits) {
  return std::make_unique<DagFolder>(io, std::move(dir), limits);
}

}  // namespace drover
