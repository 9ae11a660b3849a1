// LocalExecutor: a pool of warm `drover worker` processes talking JSON lines over pipes.
#include <fcntl.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <map>

#include "common/fs.hpp"
#include "common/json_text.hpp"
#include "common/process.hpp"
#include "common/try_layout.hpp"
#include "executor/executor.hpp"
#include "executor/proc.hpp"
#include "executor/try_runner.hpp"

extern char** environ;

namespace drover {

namespace asio = boost::asio;
namespace fs = std::filesystem;

std::string try_key(const std::string& run_id, const std::string& task, int try_number) {
  return run_id + "/" + task + "/" + std::to_string(try_number);
}

std::string local_try_handle(const std::string& try_dir) {
  return to_json_text(json{{"try_dir", try_dir}});
}

Result<LogChunk> read_log_file(const std::string& path, unsigned long long offset, size_t max) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    return make_error(path + ": " + std::strerror(e), e == ENOENT ? Errc::NotFound : Errc::None);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return make_error(path + ": not a regular file", Errc::NotFound);
  }
  LogChunk c;
  c.size = static_cast<unsigned long long>(st.st_size);
  if (offset < c.size) {
    c.bytes.resize(static_cast<size_t>(std::min<unsigned long long>(c.size - offset, max)));
    size_t got = 0;
    while (got < c.bytes.size()) {
      ssize_t n =
          ::pread(fd, c.bytes.data() + got, c.bytes.size() - got, static_cast<off_t>(offset + got));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        int e = errno;
        ::close(fd);
        return make_error(path + ": " + std::strerror(e));
      }
      if (n == 0) break;
      got += static_cast<size_t>(n);
    }
    c.bytes.resize(got);
  }
  ::close(fd);
  c.next_offset = offset + c.bytes.size();
  return c;
}

namespace {

std::string this_hostname() {
  char buf[256] = {};
  ::gethostname(buf, sizeof buf - 1);
  return buf;
}

// What a handle names: the try's folder and, once it started, its processes (the try's
// process group leader, and the worker that writes its result.json).
struct LocalHandle {
  std::string try_dir;
  int pid = 0;
  long long pid_start = 0;
  int writer = 0;
  long long writer_start = 0;
};

std::optional<LocalHandle> parse_handle(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  if (!j.is_object() || !j["try_dir"].is_string() || j["try_dir"].get<std::string>().empty())
    return std::nullopt;
  LocalHandle h;
  h.try_dir = j["try_dir"].get<std::string>();
  h.pid = j.value("pid", 0);
  h.pid_start = j.value("pid_start", 0LL);
  h.writer = j.value("writer", 0);
  h.writer_start = j.value("writer_start", 0LL);
  return h;
}

struct Worker {
  int pid = 0;
  long long pid_start = 0;  // its start time, read once (its record names it)
  int to_fd = -1;
  std::unique_ptr<asio::posix::stream_descriptor> from;
  asio::streambuf buf;
  std::string current_key;  // empty: idle
  std::string current_try_dir;
  std::string last_key;  // the try it ran last (a chained start may follow it)
  // Chained starts handed to it, not yet started or dropped, in order (key, try folder):
  // each follows the one before it, the first follows current_key (or last_key).
  std::deque<std::pair<std::string, std::string>> armed;
  int try_pid = 0;
  long long try_pid_start = 0;
  bool dead = false;
  bool gone = false;   // its pipe reached EOF: no handler refers to it any more
  std::string record;  // HOME/workers/PID: the tries it holds (layout::worker_record)
  int record_fd = -1;
};

class LocalExecutor final : public Executor {
 public:
  LocalExecutor(asio::io_context& io, LocalExecutorOptions opts)
      : io_(io), opts_(std::move(opts)), host_(this_hostname()) {
    // A task writing to a closed pipe must not kill the daemon.
    ::signal(SIGPIPE, SIG_IGN);
    if (opts_.reap_orphans) {
      if (auto s = become_subreaper(); !s) {
        spdlog::warn("{}: the commands of killed workers will be lost", s.message());
      } else {
        reap_timer_ = std::make_unique<asio::steady_timer>(io_);
        reap_every_second();
      }
    }
  }

  ~LocalExecutor() override { shutdown(); }

  void set_callback(Callback cb) override { cb_ = std::move(cb); }

  bool can_chain(const TrySpec& spec) const override {
    // The worker's direct spawn (worker.cpp): a command without secrets to mask.
    return spec.type == "command" && spec.redact.empty();
  }

  Status start(const TrySpec& spec) override {
    stopping_ = false;
    std::string key = try_key(spec.run_id, spec.task, spec.try_number);
    if (!spec.after.empty()) return arm(spec, key);
    if (opts_.max_workers > 0 && busy_workers() >= opts_.max_workers)
      return make_error("capacity exceeded: this host takes " + std::to_string(opts_.max_workers) +
                            " tries at once",
                        Errc::Busy);
    Worker* w = idle_worker();
    if (!w) return make_error("no worker process could be started");
    w->current_key = key;
    w->current_try_dir = spec.try_dir;
    w->try_pid = 0;
    if (opts_.reap_orphans) dispatched_[key] = Dispatched{spec, 0};
    write_record(*w, spec.home);
    std::string line =
        to_json_text(json{{"op", "run"}, {"key", key}, {"spec", spec.to_json()}}) + "\n";
    if (!write_all(w->to_fd, line)) {
      w->current_key.clear();
      mark_dead(*w);
      return make_error("worker pipe closed");
    }
    return {};
  }

  // A chained start goes to the worker of the try it follows (running it, or just done
  // with it), which starts it the moment that try ends in success.
  Status arm(const TrySpec& spec, const std::string& key) {
    Worker* w = nullptr;
    for (auto& c : workers_) {
      const std::string& tail = !c->armed.empty()         ? c->armed.back().first
                                : !c->current_key.empty() ? c->current_key
                                                          : c->last_key;
      if (!c->dead && tail == spec.after) w = c.get();
    }
    if (!w || !can_chain(spec))
      return make_error("try " + spec.after + " does not run here", Errc::Invalid);
    w->armed.emplace_back(key, spec.try_dir);
    if (opts_.reap_orphans) dispatched_[key] = Dispatched{spec, 0};
    write_record(*w, spec.home);
    std::string line =
        to_json_text(
            json{{"op", "run"}, {"key", key}, {"after", spec.after}, {"spec", spec.to_json()}}) +
        "\n";
    if (!write_all(w->to_fd, line)) {
      w->armed.pop_back();
      mark_dead(*w);
      return make_error("worker pipe closed");
    }
    return {};
  }

  bool disarm(const std::string& key) override {
    // Its worker claims it by creating TRY_DIR/pid before it spawns it (executor/proc.hpp):
    // made here first, the claim fails and the worker answers not_started.
    for (auto& w : workers_)
      for (auto& [k, dir] : w->armed)
        if (k == key) return disarm_pid_file(dir);
    return true;
  }

  Capacity capacity() const override {
    Capacity c;
    if (opts_.max_workers > 0) c.total = opts_.max_workers;
    return c;
  }

  Result<LogChunk> read_log(const std::string& key, const std::string& handle,
                            unsigned long long offset, size_t max) const override {
    auto h = parse_handle(handle);
    if (!h) return make_error("try " + key + ": not a local try handle", Errc::Invalid);
    return read_log_file(layout::log(h->try_dir).string(), offset, max);
  }

  void kill(const std::string& key, const std::string& why) override {
    for (auto& w : workers_) {
      if (w->current_key == key && w->try_pid > 0) {
        note_in_log(w->current_try_dir, why);
        signal_group(w->try_pid, w->try_pid_start);
        return;
      }
    }
    auto it = adopted_.find(key);
    if (it != adopted_.end()) {
      note_in_log(it->second.try_dir, why);
      signal_group(it->second.pid, it->second.pid_start);
    }
  }

  void adopt(const std::string& key, const std::string& handle) override {
    auto h = parse_handle(handle);
    if (!h) {
      finish_error(key, "cannot adopt: not a local try handle");
      return;
    }
    if (h->pid == 0) {  // recorded before it started (or before handles): its pid file
      PidFile p = read_pid_file(h->try_dir);
      h->pid = p.pid;
      h->pid_start = p.start;
      h->writer = p.writer;
      h->writer_start = p.writer_start;
    }
    adopted_[key] = *h;
    // Report asynchronously, like every other event, never from inside the caller.
    asio::post(io_, [this] { poll_adopted(); });
  }

  void shutdown() override {
    stopping_ = true;
    for (auto& w : workers_) {
      if (w->to_fd >= 0) ::close(w->to_fd);
      w->to_fd = -1;
    }
    if (poll_timer_) poll_timer_->cancel();
    if (reap_timer_) reap_timer_->cancel();
  }

 private:
  // A try handed to a worker, kept until the worker reports its end: what the daemon needs
  // to write the try's result itself when the worker dies and its command ends as our orphan.
  struct Dispatched {
    TrySpec spec;
    long long started_us = 0;
    std::chrono::steady_clock::time_point started_steady{};  // when its start was heard
  };
  // An orphan reaped (a command whose worker died, or anything a task left): its wait status
  // and when it was seen ended, kept a minute for an adopted try to claim.
  struct OrphanExit {
    int status = 0;
    long long ended_us = 0;
    std::chrono::steady_clock::time_point seen;
  };

  void collect_orphans() {
    auto now = std::chrono::steady_clock::now();
    for (auto& [pid, status] : reap_orphans()) orphan_exits_[pid] = {status, now_us(), now};
    for (auto it = orphan_exits_.begin(); it != orphan_exits_.end();)
      it = now - it->second.seen > std::chrono::minutes(1) ? orphan_exits_.erase(it) : ++it;
  }

  void reap_every_second() {
    collect_orphans();
    reap_timer_->expires_after(std::chrono::seconds(1));
    reap_timer_->async_wait([this](const boost::system::error_code& ec) {
      if (!ec) reap_every_second();
    });
  }

  // The result of a try whose worker died while its command ran, from the command's exit
  // (reaped here, as its subreaper): written to TRY_DIR/result.json as the worker would
  // have, outputs collected. Null when this executor did not dispatch it.
  json write_up_orphan(const std::string& key, const LocalHandle& a, const OrphanExit& exit) {
    auto d = dispatched_.find(key);
    if (d == dispatched_.end()) return nullptr;
    const TrySpec& spec = d->second.spec;
    int status = exit.status;
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    note_in_log(a.try_dir, "the worker of this try died; its command's end (exit " +
                               std::to_string(code) +
                               ") was collected by the process that started the worker");
    auto blobs = blob_source_for(spec);
    CollectBy by;  // bounded as the worker's collection is: the try's timeout
    if (spec.timeout_ms > 0 && d->second.started_steady != std::chrono::steady_clock::time_point{})
      by = d->second.started_steady + std::chrono::milliseconds(spec.timeout_ms);
    TryResult r =
        make_try_result(spec, *blobs, code, "", d->second.started_us, {}, exit.ended_us, by);
    if (auto s = write_try_result(spec, r.result); !s)
      spdlog::warn("try {}: writing its result: {}", key, s.message());
    return r.result;
  }

  using Adopted = LocalHandle;  // what it watches is what the handle names

  // Which worker holds each try, until it writes TRY_DIR/pid: a daemon adopting the try
  // meanwhile waits for that worker instead of calling the try "never started". One record
  // per worker (HOME/workers/PID), rewritten in place before each hand-off: no new file per
  // try. Its first line names the worker; a record cut short (no final newline: this engine
  // died writing it) names nothing the worker was handed.
  static void write_record(Worker& w, const std::string& home) {
    if (w.record_fd < 0 && !home.empty()) {
      (void)make_dirs(layout::workers_dir(home));
      w.record = layout::worker_record(home, w.pid).string();
      w.record_fd =
          ::open(w.record.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    }
    if (w.record_fd < 0) return;
    std::string text = std::to_string(w.pid) + " " + std::to_string(w.pid_start) + "\n";
    if (!w.current_key.empty()) text += w.current_try_dir + "\n";
    for (auto& [key, dir] : w.armed) text += dir + "\n";
    if (::pwrite(w.record_fd, text.data(), text.size(), 0) == static_cast<ssize_t>(text.size()))
      (void)::ftruncate(w.record_fd, static_cast<off_t>(text.size()));
  }

  static bool names_live_worker(const std::string& text, const std::string& try_dir) {
    if (text.empty() || text.back() != '\n') return false;
    int pid = 0;
    long long start = 0;
    if (std::sscanf(text.c_str(), "%d %lld", &pid, &start) != 2 || pid <= 0) return false;
    if (!try_dir.empty() && text.find("\n" + try_dir + "\n") == std::string::npos) return false;
    return process_alive(pid, start);
  }

  // A live worker holds the try (it may yet start it, or refuse it and exit because its
  // daemon is gone): a worker record names it, or (from a drover before session 6) the
  // try's own TRY_DIR/dispatch.
  static bool dispatched_worker_alive(const std::string& try_dir) {
    if (auto text = read_file(layout::dispatch(try_dir), 128); text)
      return names_live_worker(*text, "");
    std::error_code ec;
    fs::path dir = layout::workers_dir(layout::home_of_try_dir(try_dir));
    for (auto& e : fs::directory_iterator(dir, ec)) {
      auto text = read_file(e.path(), 1 << 20);
      if (text && names_live_worker(*text, try_dir)) return true;
    }
    return false;
  }

  // Appends "drover: WHY" to the try's log, so that `drover logs` says why it ended.
  static void note_in_log(const std::string& try_dir, const std::string& why) {
    if (why.empty() || try_dir.empty()) return;
    int fd = ::open(layout::log(try_dir).c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return;
    (void)write_all(fd, "\ndrover: " + why + "\n");
    ::close(fd);
  }

  // Whether any process is left in process group `pgid` (its leader may be gone: the group's
  // number is not reused while it has members).
  static bool group_alive(int pgid) { return ::kill(-pgid, 0) == 0 || errno == EPERM; }

  void signal_group(int pid, long long start) {
    if (pid <= 0 || !process_alive(pid, start)) return;
    ::kill(-pid, SIGTERM);
    auto t =
        std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(opts_.kill_grace_ms));
    t->async_wait([t, pid, start](const boost::system::error_code& ec) {
      if (!ec && process_alive(pid, start)) ::kill(-pid, SIGKILL);
    });
  }

  int busy_workers() const {
    int n = 0;
    for (auto& w : workers_) n += !w->dead && !w->current_key.empty();
    return n + static_cast<int>(adopted_.size());
  }

  Worker* idle_worker() {
    for (auto& w : workers_)
      if (!w->dead && w->current_key.empty() && w->armed.empty()) return w.get();
    // Drop dead workers, then start a new one.
    workers_.erase(
        std::remove_if(workers_.begin(), workers_.end(), [](auto& w) { return w->gone; }),
        workers_.end());
    return spawn_worker();
  }

  Worker* spawn_worker() {
    int to[2], from[2];
    if (::pipe2(to, O_CLOEXEC) != 0) return nullptr;
    if (::pipe2(from, O_CLOEXEC) != 0) {
      ::close(to[0]);
      ::close(to[1]);
      return nullptr;
    }
    SpawnOptions o;
    o.argv = {opts_.self_exe, "worker"};
    o.in = ChildFd::from(to[0]);
    o.out = ChildFd::from(from[1]);
    o.err = ChildFd::inherit();
    o.new_process_group = false;  // a Ctrl-C of the daemon reaches its workers, not the tries
    auto pid = spawn_child(o);
    ::close(to[0]);
    ::close(from[1]);
    if (!pid) {
      spdlog::error("cannot start worker: {}", pid.message());
      ::close(to[1]);
      ::close(from[0]);
      return nullptr;
    }
    auto w = std::make_unique<Worker>();
    w->pid = *pid;
    w->pid_start = process_start_ticks(*pid);
    w->to_fd = to[1];
    w->from = std::make_unique<asio::posix::stream_descriptor>(io_, from[0]);
    Worker* raw = w.get();
    workers_.push_back(std::move(w));
    read_next(raw);
    return raw;
  }

  void read_next(Worker* w) {
    asio::async_read_until(*w->from, w->buf, '\n',
                           [this, w](const boost::system::error_code& ec, size_t n) {
                             if (ec) {
                               on_worker_gone(w);
                               return;
                             }
                             // Every whole line here, in order, before anything else
                             // runs: a try's end and the chained start after it reach the
                             // Engine together (one pump, one commit).
                             for (;;) {
                               std::string line(asio::buffers_begin(w->buf.data()),
                                                asio::buffers_begin(w->buf.data()) + n);
                               w->buf.consume(n);
                               on_line(w, line);
                               auto b = asio::buffers_begin(w->buf.data());
                               auto e = asio::buffers_end(w->buf.data());
                               auto nl = std::find(b, e, '\n');
                               if (nl == e) break;
                               n = static_cast<size_t>(nl - b) + 1;
                             }
                             if (!w->dead) read_next(w);
                           });
  }

  void on_line(Worker* w, const std::string& line) {
    json ev = json::parse(line, nullptr, false);
    if (ev.is_discarded()) return;
    std::string kind = ev.value("ev", "");
    std::string key = ev.value("key", "");
    if (kind == "started") {
      if (!w->armed.empty() && key == w->armed.front().first) {  // the chained start ran
        w->current_key = key;
        w->current_try_dir = w->armed.front().second;
        w->armed.pop_front();
      }
      w->try_pid = ev.value("pid", 0);
      w->try_pid_start = ev.value("pid_start", 0LL);
      TryEvent e;
      e.kind = TryEvent::Kind::Started;
      e.key = key;
      e.pid = w->try_pid;
      e.pid_start = w->try_pid_start;
      e.started_us = ev.value("at", 0LL);
      if (auto d = dispatched_.find(key); d != dispatched_.end()) {
        d->second.started_us = e.started_us ? e.started_us : now_us();
        d->second.started_steady = std::chrono::steady_clock::now();
      }
      e.facts = {{"executor", "local"}, {"hostname", host_}};
      // The worker waits for the try and may write its result: it is the writer to wait for.
      e.handle = to_json_text(json{{"try_dir", w->current_try_dir},
                                   {"pid", w->try_pid},
                                   {"pid_start", w->try_pid_start},
                                   {"writer", w->pid},
                                   {"writer_start", w->pid_start}});
      if (cb_) cb_(e);
    } else if (kind == "finished") {
      TryEvent e;
      e.kind = TryEvent::Kind::Finished;
      e.key = key;
      e.pid = w->try_pid;
      if (ev["exit_code"].is_number_integer()) e.exit_code = ev["exit_code"].get<int>();
      if (ev["signal"].is_number_integer()) e.signal = ev["signal"].get<int>();
      e.result = ev.value("result", json());
      e.error = ev.value("error", "");
      e.not_started = ev.value("not_started", false);
      dispatched_.erase(key);
      auto a = std::find_if(w->armed.begin(), w->armed.end(),
                            [&](const auto& x) { return x.first == key; });
      if (a != w->armed.end()) {  // dropped, or it failed to start
        w->armed.erase(a);
      } else if (key == w->current_key) {
        w->last_key = key;
        w->current_key.clear();
        w->try_pid = 0;
      }
      write_record(*w, "");  // it holds that try no more
      if (cb_) cb_(e);
    }
  }

  void mark_dead(Worker& w) {
    w.dead = true;
    if (w.to_fd >= 0) ::close(w.to_fd);
    w.to_fd = -1;
  }

  // Collects an exited worker's status so it leaves no zombie (events came by pipe).
  void reap(int pid, int attempts = 100) {
    int status = 0;
    if (pid <= 0 || reap_child(pid, &status, false) != 0 || attempts == 0) return;
    auto t = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(50));
    t->async_wait([this, t, pid, attempts](const boost::system::error_code& ec) {
      if (!ec) reap(pid, attempts - 1);
    });
  }

  void on_worker_gone(Worker* w) {
    w->gone = true;
    mark_dead(*w);
    reap(w->pid);
    if (w->record_fd >= 0) {
      ::close(w->record_fd);
      w->record_fd = -1;
      ::unlink(w->record.c_str());
    }
    if (!w->current_key.empty() && !stopping_) {
      // The worker died mid-try: its try process may live on; watch it like an adopted one.
      std::string key = w->current_key;
      std::string dir = w->current_try_dir;
      w->current_key.clear();
      adopt(key, local_try_handle(dir));
    }
    auto armed = std::move(w->armed);
    w->armed.clear();
    for (auto& [key, dir] : armed) {
      // Its chained starts: dropped, unless it claimed one before it died (then it may run).
      TryEvent e;
      e.key = key;
      bool dropped = disarm_pid_file(dir);
      if (dropped) {
        e.kind = TryEvent::Kind::Finished;
        e.not_started = true;
      } else {
        e.kind = TryEvent::Kind::Started;
        e.facts = {{"executor", "local"}, {"hostname", host_}};
        e.handle = local_try_handle(dir);
      }
      post_event(e);
      if (!dropped) adopt(key, e.handle);
    }
  }

  // Reports asynchronously, like every other event, never from inside the caller.
  void post_event(const TryEvent& e) {
    if (e.kind == TryEvent::Kind::Finished) dispatched_.erase(e.key);
    asio::post(io_, [this, e] {
      if (cb_) cb_(e);
    });
  }

  void finish_error(const std::string& key, const std::string& error) {
    TryEvent e;
    e.kind = TryEvent::Kind::Finished;
    e.key = key;
    e.error = error;
    post_event(e);
  }

  void poll_adopted() {
    collect_orphans();
    std::vector<std::string> done;
    for (auto& [key, a] : adopted_) {
      if (a.pid == 0) {
        PidFile p = read_pid_file(a.try_dir);
        a.pid = p.pid;
        a.pid_start = p.start;
        a.writer = p.writer;
        a.writer_start = p.writer_start;
      }
      if (a.pid == 0 && dispatched_worker_alive(a.try_dir)) continue;  // not started yet
      // (A command that is our orphan stays a zombie, "alive", until collect_orphans reaps it.)
      if (a.pid > 0 && process_alive(a.pid, a.pid_start)) continue;
      // The command is gone; its result comes from the writer, which may still be at it.
      if (a.writer > 0 && process_alive(a.writer, a.writer_start)) continue;
      // No result, and a process of the try's group lives on (the shell was killed, its
      // child trains on): the try may still be at work, and a retry now would run beside it.
      // It ends when its group does (or its timeout kills the group).
      if (a.pid > 0 && group_alive(a.pid) && !read_try_result(a.try_dir).is_object()) continue;
      done.push_back(key);
    }
    for (auto& key : done) {
      Adopted a = adopted_[key];
      adopted_.erase(key);
      TryEvent e;
      e.kind = TryEvent::Kind::Finished;
      e.key = key;
      e.pid = a.pid;
      e.result = read_try_result(a.try_dir);
      if (auto exit = orphan_exits_.find(a.pid);
          !e.result.is_object() && a.pid > 0 && exit != orphan_exits_.end()) {
        e.result = write_up_orphan(key, a, exit->second);
        orphan_exits_.erase(exit);
      }
      dispatched_.erase(key);
      if (e.result.is_object()) {
        e.exit_code = e.result.value("exit_code", 1);
      } else {
        e.error = a.pid ? "the try process vanished without a result"
                        : "the try never started (no pid file)";
      }
      if (cb_) cb_(e);
    }
    if (adopted_.empty()) return;
    if (!poll_timer_) poll_timer_ = std::make_unique<asio::steady_timer>(io_);
    poll_timer_->expires_after(std::chrono::milliseconds(100));
    poll_timer_->async_wait([this](const boost::system::error_code& ec) {
      if (!ec) poll_adopted();
    });
  }

  asio::io_context& io_;
  LocalExecutorOptions opts_;
  std::string host_;
  Callback cb_;
  bool stopping_ = false;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::map<std::string, Adopted> adopted_;
  std::unique_ptr<asio::steady_timer> poll_timer_;
  std::map<std::string, Dispatched> dispatched_;  // with reap_orphans only
  std::map<pid_t, OrphanExit> orphan_exits_;
  std::unique_ptr<asio::steady_timer> reap_timer_;
};

}  // namespace

std::unique_ptr<Executor> make_local_executor(asio::io_context& io, LocalExecutorOptions opts) {
  return std::make_unique<LocalExecutor>(io, std::move(opts));
}

}  // namespace drover
