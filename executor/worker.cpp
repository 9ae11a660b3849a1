#include "executor/worker.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/fs.hpp"
#include "common/json_text.hpp"
#include "common/process.hpp"
#include "executor/proc.hpp"
#include "executor/try_runner.hpp"

namespace drover {

namespace {

bool write_line(int fd, const std::string& line) { return write_all(fd, line + "\n"); }

// Reads one line (without '\n'); false at end of input.
bool read_line(int fd, std::string& buf, std::string& line) {
  for (;;) {
    auto nl = buf.find('\n');
    if (nl != std::string::npos) {
      line = buf.substr(0, nl);
      buf.erase(0, nl + 1);
      return true;
    }
    char tmp[65536];
    ssize_t n = ::read(fd, tmp, sizeof tmp);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    buf.append(tmp, static_cast<size_t>(n));
  }
}

// A `command` try made ready to spawn (its argv directly: one fork+exec per task, as make and
// ninja do): a new process group leader, stdin /dev/null, stdout+stderr appended to the try's
// log, cwd the work dir, default signal dispositions, no descriptor of ours beyond 0-2. Made
// while the try before it still runs, when it is armed after that one: its work dir and log
// exist, its environment is built and its program found, so that its start, once due, is
// little more than the fork+exec.
struct Prepared {
  TrySpec spec;
  std::string key;
  bool armed = false;
  std::unique_ptr<BlobSource> blobs;
  Status ready;  // an error: it fails at once with it (exit 127)
  SpawnOptions opts;
};

Prepared prepare_command(TrySpec spec, std::string key, bool armed) {
  Prepared p{std::move(spec), std::move(key), armed, nullptr, {}, {}};
  p.blobs = blob_source_for(p.spec);
  p.ready = prepare_try(p.spec, *p.blobs);  // makes the work dir
  if (!p.ready) return p;
  p.opts.argv = p.spec.argv;
  p.opts.env = try_environment(p.spec);
  p.opts.cwd = p.spec.work_dir();
  p.opts.in = ChildFd::null();
  p.opts.out = ChildFd::append_to(p.spec.log_path().string());
  p.opts.err = ChildFd::same_as_stdout();
  if (p.opts.argv.empty()) {
    p.ready = make_error("empty command");
    return p;
  }
  auto program = resolve_program(p.opts.argv[0]);
  if (!program) {
    p.ready = program.error();
    return p;
  }
  p.opts.program = *program;
  // The log made now, not by the child: its start does not wait for a new folder entry.
  int log = ::open(p.spec.log_path().c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log >= 0) ::close(log);
  return p;
}

// Appends to `buf` what `fd` holds now, without waiting (the daemon's messages sent while a
// try ran). False when nothing was there.
bool read_now(int fd, std::string& buf) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, 0) != 1 || !(p.revents & POLLIN)) return false;
  char tmp[65536];
  ssize_t n = ::read(fd, tmp, sizeof tmp);
  if (n <= 0) return false;
  buf.append(tmp, static_cast<size_t>(n));
  return true;
}

std::string not_started_line(const std::string& key) {
  return to_json_text(json{{"ev", "finished"},
                           {"key", key},
                           {"not_started", true},
                           {"exit_code", nullptr},
                           {"signal", nullptr},
                           {"result", nullptr}}) +
         "\n";
}

// The last try this worker ran, for an armed try that arrives after it ended.
struct Ended {
  std::string key;
  bool ok = false;
};

struct Worker {
  int in_fd, out_fd;
  pid_t daemon_pid, self_pid;
  long long self_start;
  std::string buf;
  Ended last;

  // The first whole line in `buf` when it arms a `command` try after `key`: that try,
  // prepared (the line is consumed). Any other line stays for the main loop.
  std::optional<Prepared> successor_in_buf(const std::string& key) {
    auto nl = buf.find('\n');
    if (nl == std::string::npos) return std::nullopt;
    json msg = json::parse(std::string_view(buf).substr(0, nl), nullptr, false);
    if (!msg.is_object() || msg.value("op", "") != "run" || msg.value("after", "") != key)
      return std::nullopt;
    auto spec = TrySpec::from_json(msg["spec"]);
    if (!spec || spec->type != "command" || !spec->redact.empty()) return std::nullopt;
    buf.erase(0, nl + 1);
    return prepare_command(std::move(*spec), msg.value("key", ""), true);
  }

  // The successors in `next` armed after `key`, each after the one before: more of them
  // from the lines already in `buf`. False when a line there is something else.
  bool take_successors(const std::string& key, std::deque<Prepared>& next) {
    while (buf.find('\n') != std::string::npos) {
      auto p = successor_in_buf(next.empty() ? key : next.back().key);
      if (!p) return false;
      next.push_back(std::move(*p));
    }
    return true;
  }

  // Waits for `pid` to exit. First the successors armed after `key` that the daemon has sent
  // already (it arms several tries ahead) are read and prepared, without waiting, while the
  // try runs; then a blocking waitpid, whose wakeup is a synchronous one on the CPU the try
  // exits on (a poll on a pidfd is woken where this process last ran, which may be busy).
  // A successor sent since is prepared after the exit, only when none is ready.
  int wait_reading(pid_t pid, const std::string& key, std::deque<Prepared>& next) {
    while (take_successors(key, next) && read_now(in_fd, buf)) {
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (next.empty() && (buf.find('\n') != std::string::npos || read_now(in_fd, buf)))
      if (auto p = successor_in_buf(key)) next.push_back(std::move(*p));
    return status;
  }

  // Runs a `command` try; then, while the try just ended succeeded and the daemon armed a
  // successor after it (prepared while it ran), that successor at once: spawned before the
  // end of the one before is even written up (a try that declares no outputs has succeeded
  // when it exits 0). The successor's Started goes out in the same write as its
  // predecessor's end (the daemon records both in one commit), and the predecessor's
  // result.json is written after the successor runs.
  void run_commands(Prepared cur) {
    std::string unsent;                                 // lines not sent yet
    std::optional<std::pair<TrySpec, json>> unwritten;  // a result.json to write
    auto flush = [&] {
      if (!unsent.empty()) write_all(out_fd, unsent);
      unsent.clear();
      if (unwritten) {
        if (auto s = write_try_result(unwritten->first, unwritten->second); !s)
          std::fprintf(stderr, "drover worker: writing result of %s: %s\n",
                       unwritten->first.task.c_str(), s.message().c_str());
        unwritten.reset();
      }
    };
    // The try before `cur`, when `cur` chained on it: written up once `cur` is spawned.
    struct Done {
      Prepared p;
      int status;
      long long started, ended;
      CollectBy by;
    };
    std::optional<Done> before;
    std::deque<Prepared> next;  // armed successors, prepared, each after the one before
    auto write_up = [&](Prepared& p, int status, long long started, long long ended, CollectBy by) {
      int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      TryResult r = make_try_result(p.spec, *p.blobs, code, "", started, {}, ended, by);
      json ev = {{"ev", "finished"},
                 {"key", p.key},
                 {"exit_code", r.code},
                 {"signal", nullptr},
                 {"result", r.result}};
      if (WIFSIGNALED(status)) ev["signal"] = WTERMSIG(status);
      unsent += to_json_text(ev) + "\n";
      unwritten.emplace(p.spec, r.result);
      last = {p.key, r.code == 0};
      return r.code == 0;
    };
    for (;;) {
      int claim = -1;
      if (cur.armed && cur.ready && (claim = claim_pid_file(cur.spec.try_dir)) < 0) {
        // Disarmed by a daemon that took over: it never starts.
        if (before) write_up(before->p, before->status, before->started, before->ended, before->by);
        unsent += not_started_line(cur.key);
        for (auto& n : next) unsent += not_started_line(n.key);
        flush();
        return;
      }
      long long started = now_us();
      // Collection ends by the try's timeout (the daemon kills only the command's group).
      CollectBy by;
      if (cur.spec.timeout_ms > 0)
        by = std::chrono::steady_clock::now() + std::chrono::milliseconds(cur.spec.timeout_ms);
      Result<pid_t> pid = cur.ready ? spawn_child(cur.opts) : Result<pid_t>(cur.ready.error());
      if (before) write_up(before->p, before->status, before->started, before->ended, before->by);
      before.reset();
      if (!pid) {
        if (claim >= 0) ::close(claim);
        TryResult r = make_try_result(cur.spec, *cur.blobs, 127, pid.message(), started);
        json ev = {{"ev", "finished"},
                   {"key", cur.key},
                   {"exit_code", r.code},
                   {"signal", nullptr},
                   {"result", r.result}};
        unsent += to_json_text(ev) + "\n";
        unwritten.emplace(cur.spec, r.result);
        last = {cur.key, false};
        for (auto& n : next) unsent += not_started_line(n.key);
        flush();
        return;
      }
      // This worker writes the result after the command exits: name it as the writer, so
      // that a daemon adopting the try waits for the result rather than calling it lost.
      long long pid_start = process_start_ticks(*pid);
      if (claim >= 0)
        write_claimed_pid_file(claim, *pid, pid_start, self_pid, self_start);
      else
        write_pid_file(cur.spec.try_dir, *pid, pid_start, self_pid, self_start);
      unsent += to_json_text(json{{"ev", "started"},
                                  {"key", cur.key},
                                  {"pid", *pid},
                                  {"pid_start", pid_start},
                                  {"at", started}}) +
                "\n";
      flush();
      int status = wait_reading(*pid, cur.key, next);
      long long ended = now_us();  // its end, before anything else is done
      bool exited_ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
      bool daemon_here = ::getppid() == daemon_pid;
      if (!next.empty() && exited_ok && daemon_here && cur.spec.outputs.empty()) {
        // Succeeded (nothing to collect): the successor starts first, this is written after.
        before = Done{std::move(cur), status, started, ended, by};
        cur = std::move(next.front());
        next.pop_front();
        continue;
      }
      // The daemon hears the result first, then it is written to TRY_DIR/result.json for a
      // daemon that adopts the try: this worker, named in TRY_DIR/pid as the writer, is
      // alive until the file is there, and an adopting daemon waits for it.
      bool ok = write_up(cur, status, started, ended, by);
      if (!next.empty() && ok && daemon_here) {  // declared outputs, collected: the successor
        cur = std::move(next.front());
        next.pop_front();
        continue;
      }
      for (auto& n : next) unsent += not_started_line(n.key);  // each followed a failure
      flush();
      return;
    }
  }
};

}  // namespace

int worker_main(int in_fd, int out_fd) {
  ::signal(SIGPIPE, SIG_IGN);
  const pid_t daemon_pid = ::getppid();
  const pid_t self_pid = ::getpid();
  const long long self_start = process_start_ticks(self_pid);
  Worker me{in_fd, out_fd, daemon_pid, self_pid, self_start, {}, {}};
  std::string& buf = me.buf;
  std::string line;
  while (read_line(in_fd, buf, line)) {
    // A daemon that died after handing us a try has not seen it start: its successor will
    // retry it, so running it here too would run it twice.
    if (::getppid() != daemon_pid) break;
    json msg = json::parse(line, nullptr, false);
    if (msg.is_discarded() || msg.value("op", "") != "run") {
      std::fprintf(stderr, "drover worker: ignoring malformed message\n");
      continue;
    }
    std::string key = msg.value("key", "");
    std::string after = msg.value("after", "");
    auto spec = TrySpec::from_json(msg["spec"]);
    if (!after.empty() && (!spec || spec->type != "command" || !spec->redact.empty() ||
                           after != me.last.key || !me.last.ok)) {
      // Armed after a try that did not succeed (or that this worker did not run).
      write_all(out_fd, not_started_line(key));
      continue;
    }
    if (!spec) {
      write_line(out_fd, to_json_text(json{{"ev", "finished"},
                                           {"key", key},
                                           {"exit_code", nullptr},
                                           {"signal", nullptr},
                                           {"result", nullptr},
                                           {"error", spec.message()}}));
      continue;
    }
    // The direct spawn writes straight into the log; a try with secrets to mask goes the
    // forked way, where run_try filters its output (common/redact.hpp).
    if (spec->type == "command" && spec->redact.empty()) {
      me.run_commands(prepare_command(std::move(*spec), key, !after.empty()));
      continue;
    }
    me.last = {};
    (void)make_dirs(spec->work_dir());
    // The try process hands its result over this pipe too: what it could not write to
    // result.json (a full disk) still reaches the daemon, with the cause.
    int rp[2] = {-1, -1};
    if (::pipe2(rp, O_CLOEXEC) != 0) rp[0] = rp[1] = -1;
    pid_t pid = ::fork();
    if (pid < 0) {
      std::string why = std::string("fork: ") + std::strerror(errno);
      for (int fd : rp)
        if (fd >= 0) ::close(fd);
      write_line(out_fd, to_json_text(json{{"ev", "finished"},
                                           {"key", key},
                                           {"exit_code", nullptr},
                                           {"signal", nullptr},
                                           {"result", nullptr},
                                           {"error", why}}));
      continue;
    }
    if (pid == 0) {
      ::setpgid(0, 0);
      ::signal(SIGPIPE, SIG_DFL);
      // The try process keeps nothing of the worker's: its pipes to the daemon (0 and 1
      // here) become /dev/null, every other descriptor closes (run_try sets up 1 and 2).
      ::close(in_fd);
      ::close(out_fd);
      for (int fd = 0; fd <= 1; ++fd) {
        int null = ::open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
        if (null >= 0 && null != fd) {
          ::dup2(null, fd);
          ::close(null);
        }
      }
      // The result pipe becomes descriptor 3 (close-on-exec: the task never sees it).
      int result_fd = -1;
      if (rp[1] >= 0 &&
          (rp[1] == 3 ? ::fcntl(3, F_SETFD, FD_CLOEXEC) : ::dup3(rp[1], 3, O_CLOEXEC)) >= 0)
        result_fd = 3;
      ::syscall(SYS_close_range, result_fd == 3 ? 4U : 3U, ~0U, 0U);
      write_pid_file(spec->try_dir, ::getpid(), process_start_ticks(::getpid()));
      int code = run_try(*spec, *blob_source_for(*spec), result_fd);
      std::fflush(nullptr);
      ::_exit(code & 0xff);
    }
    ::setpgid(pid, pid);
    if (rp[1] >= 0) ::close(rp[1]);
    write_line(out_fd, to_json_text(json{{"ev", "started"},
                                         {"key", key},
                                         {"pid", pid},
                                         {"pid_start", process_start_ticks(pid)}}));
    // Read to the end before the wait: a big result fills the pipe before the try exits.
    std::string piped;
    if (rp[0] >= 0) {
      char chunk[16384];
      for (;;) {
        ssize_t n = ::read(rp[0], chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        piped.append(chunk, static_cast<size_t>(n));
      }
      ::close(rp[0]);
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    json ev = {{"ev", "finished"}, {"key", key}, {"exit_code", nullptr}, {"signal", nullptr}};
    if (WIFEXITED(status)) ev["exit_code"] = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) ev["signal"] = WTERMSIG(status);
    json result = json::parse(piped, nullptr, false);
    ev["result"] = result.is_object() ? result : read_try_result(spec->try_dir);
    me.last = {key, WIFEXITED(status) && WEXITSTATUS(status) == 0 && ev["result"].is_object() &&
                        ev["result"].value("exit_code", 1) == 0};
    write_line(out_fd, to_json_text(ev));
  }
  return 0;
}

int exec_try_file(const char* spec_path) {
  auto text = read_file(spec_path);
  if (!text) {
    std::fprintf(stderr, "drover exec: %s\n", text.message().c_str());
    return 1;
  }
  json j = json::parse(*text, nullptr, false);
  if (j.is_discarded()) {
    std::fprintf(stderr, "drover exec: %s: not valid JSON\n", spec_path);
    return 1;
  }
  auto spec = TrySpec::from_json(j);
  if (!spec) {
    std::fprintf(stderr, "drover exec: %s\n", spec.message().c_str());
    return 1;
  }
  (void)make_dirs(spec->work_dir());
  write_pid_file(spec->try_dir, ::getpid(), process_start_ticks(::getpid()));
  return run_try(*spec, *blob_source_for(*spec));
}

}  // namespace drover
