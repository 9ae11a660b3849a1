#include "executor/worker.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
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

long long now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Starts a `command` try's argv directly (one fork+exec per task, as make and ninja do):
// a new process group leader, stdin /dev/null, stdout+stderr appended to the try's log,
// cwd the work dir, default signal dispositions, no descriptor of ours beyond 0-2.
Result<pid_t> spawn_command_try(const TrySpec& spec) {
  SpawnOptions o;
  o.argv = spec.argv;
  o.env = try_environment(spec);
  o.cwd = spec.work_dir();
  o.in = ChildFd::null();
  o.out = ChildFd::append_to(spec.log_path().string());
  o.err = ChildFd::same_as_stdout();
  return spawn_child(o);
}

}  // namespace

int worker_main(int in_fd, int out_fd) {
  ::signal(SIGPIPE, SIG_IGN);
  const pid_t daemon_pid = ::getppid();
  const pid_t self_pid = ::getpid();
  const long long self_start = process_start_ticks(self_pid);
  std::string buf, line;
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
    auto spec = TrySpec::from_json(msg["spec"]);
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
      long long started = now_us();
      json ev = {{"ev", "finished"}, {"key", key}, {"exit_code", nullptr}, {"signal", nullptr}};
      auto blobs = blob_source_for(*spec);
      auto prepared = prepare_try(*spec, *blobs);  // makes the work dir
      Result<pid_t> pid =
          prepared.ok() ? spawn_command_try(*spec) : Result<pid_t>(prepared.error());
      TryResult r;
      if (!pid) {
        r = make_try_result(*spec, *blobs, 127, pid.message(), started, json::object(),
                            json::array(), {});
      } else {
        // This worker writes the result after the command exits: name it as the writer, so
        // that a daemon adopting the try waits for the result rather than calling it lost.
        long long pid_start = process_start_ticks(*pid);
        write_pid_file(spec->try_dir, *pid, pid_start, self_pid, self_start);
        write_line(out_fd,
                   to_json_text(json{
                       {"ev", "started"}, {"key", key}, {"pid", *pid}, {"pid_start", pid_start}}));
        int status = 0;
        while (::waitpid(*pid, &status, 0) < 0 && errno == EINTR) {
        }
        int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (WIFSIGNALED(status)) ev["signal"] = WTERMSIG(status);
        r = make_try_result(*spec, *blobs, code, "", started, json::object(), json::array(), {});
      }
      // The daemon hears the result first, then it is written to TRY_DIR/result.json for a
      // daemon that adopts the try: this worker, named in TRY_DIR/pid as the writer, is
      // alive until the file is there, and an adopting daemon waits for it.
      ev["exit_code"] = r.code;
      ev["result"] = r.result;
      write_line(out_fd, to_json_text(ev));
      if (auto s = write_try_result(*spec, r.result); !s)
        std::fprintf(stderr, "drover worker: writing result of %s: %s\n", key.c_str(),
                     s.message().c_str());
      continue;
    }
    (void)make_dirs(spec->work_dir());
    pid_t pid = ::fork();
    if (pid < 0) {
      write_line(out_fd,
                 to_json_text(json{{"ev", "finished"},
                                   {"key", key},
                                   {"exit_code", nullptr},
                                   {"signal", nullptr},
                                   {"result", nullptr},
                                   {"error", std::string("fork: ") + std::strerror(errno)}}));
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
      ::syscall(SYS_close_range, 3U, ~0U, 0U);
      write_pid_file(spec->try_dir, ::getpid(), process_start_ticks(::getpid()));
      int code = run_try(*spec, *blob_source_for(*spec));
      std::fflush(nullptr);
      ::_exit(code & 0xff);
    }
    ::setpgid(pid, pid);
    write_line(out_fd, to_json_text(json{{"ev", "started"},
                                         {"key", key},
                                         {"pid", pid},
                                         {"pid_start", process_start_ticks(pid)}}));
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    json ev = {{"ev", "finished"}, {"key", key}, {"exit_code", nullptr}, {"signal", nullptr}};
    if (WIFEXITED(status)) ev["exit_code"] = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) ev["signal"] = WTERMSIG(status);
    ev["result"] = read_try_result(spec->try_dir);
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
