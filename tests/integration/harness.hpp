// Test harness for end-to-end tests: runs the real `drover` binary (DROVER_BIN) in temp
// homes, starts and kills real daemons, and waits on conditions with deadlines (never on
// wall-clock luck). Header-only; each test binary is single-threaded.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/temp_dir.hpp"

extern char** environ;

namespace drover::testing {

namespace fs = std::filesystem;
using json = nlohmann::json;

struct ProcResult {
  int code = -1;
  std::string out, err;
};

inline std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void write_text(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

inline std::vector<std::string> env_with(const std::map<std::string, std::string>& extra) {
  std::vector<std::string> out;
  for (char** e = environ; *e; ++e) {
    std::string kv(*e);
    if (!extra.count(kv.substr(0, kv.find('=')))) out.push_back(kv);
  }
  for (auto& [k, v] : extra) out.push_back(k + "=" + v);
  return out;
}

// Spawns argv with stdout/stderr to files; returns the pid.
inline pid_t spawn(const std::vector<std::string>& argv, const fs::path& out, const fs::path& err,
                   const std::map<std::string, std::string>& env = {}) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  auto envs = env_with(env);
  std::vector<char*> envp;
  for (auto& e : envs) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t pid = -1;
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  if (posix_spawnp(&pid, args[0], &fa, &attr, args.data(), envp.data()) != 0) pid = -1;
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&fa);
  return pid;
}

// Runs `drover ARGS...` to completion (bounded by timeout), capturing its output.
inline ProcResult drover(const std::vector<std::string>& args,
                         const std::map<std::string, std::string>& env = {},
                         std::chrono::seconds timeout = std::chrono::seconds(120)) {
  static int counter = 0;
  fs::path dir = fs::temp_directory_path() /
                 ("drover-proc-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
  fs::create_directories(dir);
  std::vector<std::string> argv = {DROVER_BIN};
  argv.insert(argv.end(), args.begin(), args.end());
  ProcResult r;
  pid_t pid = spawn(argv, dir / "out", dir / "err", env);
  if (pid < 0) return r;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  for (;;) {
    pid_t w = ::waitpid(pid, &status, WNOHANG);
    if (w == pid) break;
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(-pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      r.err = "TIMED OUT\n";
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read_all(dir / "out");
  r.err += read_all(dir / "err");
  fs::remove_all(dir);
  return r;
}

// Polls `pred` every 20 ms until it holds or `deadline` passes.
template <class F>
bool wait_until(F pred, std::chrono::milliseconds deadline = std::chrono::seconds(30)) {
  auto end = std::chrono::steady_clock::now() + deadline;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

// A TCP connection to 127.0.0.1:port: its descriptor, or -1 with errno set.
inline int connect_loopback(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) return fd;
  int e = errno;
  ::close(fd);
  errno = e;
  return -1;
}

inline bool pid_alive(pid_t pid) {
  if (::kill(pid, 0) != 0) return false;
  std::string stat = read_all("/proc/" + std::to_string(pid) + "/stat");
  auto close = stat.rfind(')');
  return close == std::string::npos || stat[close + 2] != 'Z';
}

// A real `drover serve` on a loopback port 0 in a temp home.
class Daemon {
 public:
  Daemon(fs::path home, fs::path dags, std::vector<std::string> extra = {})
      : home_(std::move(home)), dags_(std::move(dags)), extra_(std::move(extra)) {}
  ~Daemon() { stop(); }

  bool start() {
    fs::create_directories(home_);
    fs::remove(home_ / "server.json");
    std::vector<std::string> argv = prefix_;
    for (std::string a :
         {std::string(DROVER_BIN), std::string("serve"), std::string("--home"), home_.string(),
          std::string("--dags"), dags_.string(), std::string("--listen"), listen_})
      argv.push_back(a);
    argv.insert(argv.end(), extra_.begin(), extra_.end());
    pid_ = spawn(argv, home_ / ("daemon-" + std::to_string(starts_) + ".out"),
                 home_ / ("daemon-" + std::to_string(starts_) + ".err"));
    ++starts_;
    if (pid_ < 0) return false;
    return wait_until([&] { return fs::exists(home_ / "server.json"); }, std::chrono::seconds(30));
  }
  // A command the next start() runs the daemon under, e.g. {"prlimit", "--nofile=1024:1024"}
  // (it must exec the daemon, keeping its pid).
  void run_under(std::vector<std::string> prefix) { prefix_ = std::move(prefix); }
  // The address the next start() listens on (default "127.0.0.1:0": any free port).
  void listen_on(std::string address) { listen_ = std::move(address); }
  // The port of url() (0 when there is none).
  int port() const {
    std::string u = url();
    auto colon = u.rfind(':');
    return colon == std::string::npos ? 0 : std::atoi(u.c_str() + colon + 1);
  }
  void kill9() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);  // the daemon only: its workers and tries live on
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }
  void stop() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int status;
      if (!wait_until([&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; },
                      std::chrono::seconds(10))) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
      }
      pid_ = -1;
    }
  }
  std::string url() const { return json::parse(read_all(home_ / "server.json")).value("url", ""); }
  std::string token() const { return read_all(home_ / "token"); }
  std::string log() const {
    std::string all;
    for (int i = 0; i < starts_; ++i)
      all += read_all(home_ / ("daemon-" + std::to_string(i) + ".err"));
    return all;
  }
  pid_t pid() const { return pid_; }
  const fs::path& home() const { return home_; }

  // `drover ARGS... --home HOME` against this daemon.
  ProcResult cli(std::vector<std::string> args) const {
    args.push_back("--home");
    args.push_back(home_.string());
    return drover(args);
  }
  json run_record(const std::string& run_id) const {
    auto r = cli({"runs", "show", run_id, "--json"});
    json j = json::parse(r.out, nullptr, false);
    return j.is_discarded() ? json() : j;
  }

 private:
  fs::path home_, dags_;
  std::vector<std::string> extra_;
  std::string listen_ = "127.0.0.1:0";
  std::vector<std::string> prefix_;
  pid_t pid_ = -1;
  int starts_ = 0;
};

// Try N of TASK in a run record (`drover run --json`, `runs show --json`); null when absent.
inline json try_of(const json& rec, const std::string& task, int n) {
  for (auto& t : rec["tasks"])
    if (t["task"] == task && t["try"] == n) return t;
  return json();
}

inline std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}

// The fixture of tests that run DAG files without a daemon: a temp dir holding the files
// and the home (`drover run FILE --home HOME`).
class LocalFixture : public ::testing::Test {
 protected:
  TempDir tmp;
  fs::path home() const { return tmp / "home"; }
  fs::path dag(const std::string& name, const std::string& text) {
    fs::path p = tmp / name;
    write_text(p, text);
    return p;
  }
  // `drover run FILE --json` over this home, {{ project_dir }} the temp dir.
  ProcResult run(const fs::path& file, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"run",           file.string(),   "--home",
                                     home().string(), "--project-dir", tmp.path().string(),
                                     "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    return drover(args);
  }
};

// The fixture of tests that drive a real daemon over a DAG folder in a temp dir: DAG files
// written as editors and git do (write, then rename), a daemon with {{ project_dir }} the
// temp dir, triggers through the real CLI, the daemon's log printed when a test fails.
class DaemonFixture : public ::testing::Test {
 protected:
  TempDir tmp;
  std::unique_ptr<Daemon> daemon;
  fs::path dags() const { return tmp / "dags"; }
  fs::path home() const { return tmp / "home"; }
  void dag(const std::string& name, const std::string& text) {
    fs::create_directories(dags());
    fs::path part = tmp / (name + ".part");
    write_text(part, text);
    fs::rename(part, dags() / name);
  }
  void start(std::vector<std::string> extra = {}, std::vector<std::string> under = {}) {
    extra.push_back("--project-dir");
    extra.push_back(tmp.path().string());
    daemon = std::make_unique<Daemon>(home(), dags(), extra);
    daemon->run_under(std::move(under));
    ASSERT_TRUE(daemon->start()) << "daemon did not start\n" << daemon->log();
  }
  // `drover trigger ARGS...`; returns the run id it printed.
  std::string trigger(std::vector<std::string> args) {
    args.insert(args.begin(), "trigger");
    auto r = daemon->cli(args);
    EXPECT_EQ(r.code, 0) << r.out << r.err;
    return trim(r.out);
  }
  std::string state_of(const std::string& run) {
    return daemon->run_record(run).value("state", "");
  }
  void TearDown() override {
    if (HasFailure() && daemon) std::fprintf(stderr, "daemon log:\n%s\n", daemon->log().c_str());
  }
};

}  // namespace drover::testing
