#include "executor/worker.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include <nlohmann/json.hpp>

#include "common/fs.hpp"
#include "executor/proc.hpp"
#include "executor/try_runner.hpp"

namespace drover {

namespace {

bool write_line(int fd, const std::string& line) {
  std::string s = line + "\n";
  const char* p = s.data();
  size_t n = s.size();
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

}  // namespace

int worker_main(int in_fd, int out_fd) {
  ::signal(SIGPIPE, SIG_IGN);
  const pid_t daemon_pid = ::getppid();
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
      write_line(out_fd, json{{"ev", "finished"}, {"key", key}, {"exit_code", nullptr},
                              {"signal", nullptr}, {"result", nullptr},
                              {"error", spec.message()}}.dump());
      continue;
    }
    (void)make_dirs(spec->work_dir());
    pid_t pid = ::fork();
    if (pid < 0) {
      write_line(out_fd, json{{"ev", "finished"}, {"key", key}, {"exit_code", nullptr},
                              {"signal", nullptr}, {"result", nullptr},
                              {"error", std::string("fork: ") + std::strerror(errno)}}.dump());
      continue;
    }
    if (pid == 0) {
      ::setpgid(0, 0);
      ::signal(SIGPIPE, SIG_DFL);
      ::close(in_fd);
      ::close(out_fd);
      write_pid_file(spec->try_dir, ::getpid(), process_start_ticks(::getpid()));
      int code = run_try(*spec);
      std::fflush(nullptr);
      ::_exit(code & 0xff);
    }
    ::setpgid(pid, pid);
    write_line(out_fd, json{{"ev", "started"}, {"key", key}, {"pid", pid},
                            {"pid_start", process_start_ticks(pid)}}.dump());
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    json ev = {{"ev", "finished"}, {"key", key}, {"exit_code", nullptr}, {"signal", nullptr}};
    if (WIFEXITED(status)) ev["exit_code"] = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) ev["signal"] = WTERMSIG(status);
    ev["result"] = read_try_result(spec->try_dir);
    write_line(out_fd, ev.dump());
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
  return run_try(*spec);
}

}  // namespace drover
