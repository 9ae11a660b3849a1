#include "common/process.hpp"

#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>

extern char** environ;

namespace drover {

namespace {

// Adds the file actions that give the child `want` on descriptor `target`.
void set_child_fd(posix_spawn_file_actions_t* fa, int target, const ChildFd& want) {
  switch (want.kind) {
    case ChildFd::Kind::Inherit:
      break;
    case ChildFd::Kind::Null:
      posix_spawn_file_actions_addopen(fa, target, "/dev/null", target == 0 ? O_RDONLY : O_WRONLY,
                                       0);
      break;
    case ChildFd::Kind::File:
      posix_spawn_file_actions_addopen(fa, target, want.path.c_str(), want.flags, want.mode);
      break;
    case ChildFd::Kind::Fd:
      // glibc (>= 2.29) clears FD_CLOEXEC when fd == target, as POSIX asks.
      posix_spawn_file_actions_adddup2(fa, want.fd, target);
      break;
  }
}

// The program `name` names, found as execvp finds it: a name with a '/' as it is; else the
// first regular, executable file of that name in the PATH directories (an empty entry is the
// current folder; no PATH: /bin:/usr/bin). Found here with stat and access rather than by
// letting posix_spawnp try execve in each directory: a failed execve costs the kernel a new
// address space, ten of them cost more than the task `true`. Empty when none is found, with
// `err` EACCES when a file of that name was there but not executable, else ENOENT.
std::string find_program(const std::string& name, int& err) {
  err = ENOENT;
  if (name.find('/') != std::string::npos) return name;
  const char* path = ::getenv("PATH");
  std::string_view dirs = path ? path : "/bin:/usr/bin";
  std::string candidate;
  for (size_t start = 0;;) {
    size_t colon = dirs.find(':', start);
    std::string_view dir = dirs.substr(
        start, colon == std::string_view::npos ? std::string_view::npos : colon - start);
    candidate.assign(dir.empty() ? "." : dir);
    candidate += '/';
    candidate += name;
    struct stat st;
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      if (::access(candidate.c_str(), X_OK) == 0) return candidate;
      err = EACCES;
    }
    if (colon == std::string_view::npos) break;
    start = colon + 1;
  }
  return {};
}

// The soft RLIMIT_NOFILE this process was started with, once raise_open_files_limit raised
// it (0: not raised): what its children get back (spawn_child).
std::atomic<rlim_t> started_soft_nofile{0};

}  // namespace

size_t raise_open_files_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1024;
  if (rl.rlim_cur < rl.rlim_max) {
    rlimit want = rl;
    want.rlim_cur = rl.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &want) == 0) {
      rlim_t none = 0;
      started_soft_nofile.compare_exchange_strong(none, rl.rlim_cur);
      rl = want;
    }
  }
  return rl.rlim_cur == RLIM_INFINITY ? size_t{1} << 20 : static_cast<size_t>(rl.rlim_cur);
}

Result<std::string> resolve_program(const std::string& name) {
  int err = ENOENT;
  std::string program = find_program(name, err);
  if (program.empty()) return make_error("cannot start '" + name + "': " + std::strerror(err));
  return program;
}

namespace {

Result<pid_t> spawn_unlisted(const SpawnOptions& o) {
  if (o.argv.empty()) return make_error("empty command");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  // Order matters: stdin and stdout first, then stderr (which may be "same as stdout").
  set_child_fd(&fa, 0, o.in);
  set_child_fd(&fa, 1, o.out);
  set_child_fd(&fa, 2, o.err);
  if (!o.cwd.empty()) posix_spawn_file_actions_addchdir_np(&fa, o.cwd.c_str());
  // Nothing of ours beyond 0-2 reaches the child: listening sockets, client connections,
  // pipes, the store, descriptors inherited from our own parent.
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);

  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  short flags = 0;
  if (o.new_process_group) {
    posix_spawnattr_setpgroup(&attr, 0);
    flags |= POSIX_SPAWN_SETPGROUP;
  }
  if (o.default_signals) {
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    for (int s : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD, SIGUSR1, SIGUSR2})
      sigaddset(&defaults, s);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    flags |= POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  }
  posix_spawnattr_setflags(&attr, flags);

  std::vector<char*> args;
  for (auto& a : o.argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<char*> envp;
  if (o.env) {
    for (auto& e : *o.env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
  }
  pid_t pid = -1;
  int not_found = ENOENT;
  std::string program = o.program.empty() ? find_program(o.argv[0], not_found) : o.program;
  int rc = program.empty() ? not_found
                           : ::posix_spawn(&pid, program.c_str(), &fa, &attr, args.data(),
                                           o.env ? envp.data() : environ);
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return make_error("cannot start '" + o.argv[0] + "': " + std::strerror(rc));
  return pid;
}

// The children spawn_child started and nobody has reaped yet, kept once this process is a
// subreaper (the lock is held across the spawn, so reap_orphans never sees one unlisted).
struct OwnChildren {
  std::mutex mu;
  bool tracking = false;
  std::set<pid_t> pids;
};

OwnChildren& own_children() {
  static OwnChildren* c = new OwnChildren;  // never destroyed: used until the last exit
  return *c;
}

void forget_child(pid_t pid) {
  auto& c = own_children();
  std::lock_guard lock(c.mu);
  c.pids.erase(pid);
}

}  // namespace

Result<pid_t> spawn_child(const SpawnOptions& o) {
  auto& own = own_children();
  std::unique_lock lock(own.mu);
  auto spawned = spawn_unlisted(o);
  if (spawned && own.tracking) own.pids.insert(*spawned);
  // The raised limit is this process's, not its children's: a program that sizes a table by
  // it, loops to it closing descriptors, or hands select() a descriptor past 1023 gets the
  // limit it would have had (posix_spawn has no rlimit attribute: set as it starts; a
  // `drover worker` so spawned spawns every task after this).
  if (rlim_t soft = started_soft_nofile.load(); spawned && soft != 0) {
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0) {
      rl.rlim_cur = soft;
      (void)::prlimit(*spawned, RLIMIT_NOFILE, &rl, nullptr);
    }
  }
  return spawned;
}

pid_t reap_child(pid_t pid, int* status, bool block) {
  pid_t r;
  while ((r = ::waitpid(pid, status, block ? 0 : WNOHANG)) < 0 && errno == EINTR) {
  }
  if (r == pid) forget_child(pid);
  return r;
}

Status become_subreaper() {
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1L, 0L, 0L, 0L) != 0)
    return make_error(std::string("prctl(PR_SET_CHILD_SUBREAPER): ") + std::strerror(errno));
  auto& own = own_children();
  std::lock_guard lock(own.mu);
  own.tracking = true;
  return {};
}

std::vector<std::pair<pid_t, int>> reap_orphans() {
  std::vector<std::pair<pid_t, int>> out;
  auto& own = own_children();
  std::lock_guard lock(own.mu);
  if (!own.tracking) return out;
  // Each thread's children: an orphan is handed to one thread of the subreaper.
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/self/task", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    std::ifstream in(it->path() / "children");
    pid_t pid;
    while (in >> pid) {
      if (own.pids.count(pid)) continue;
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) == pid) out.emplace_back(pid, status);
    }
  }
  return out;
}

Result<int> wait_child(pid_t pid) {
  int status = 0;
  if (reap_child(pid, &status, true) != pid)
    return make_error(std::string("waitpid: ") + std::strerror(errno));
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

Result<int> run_child(const SpawnOptions& opts) {
  auto pid = spawn_child(opts);
  if (!pid) return pid.error();
  return wait_child(*pid);
}

CapturedOutput capture_child(const std::vector<std::string>& argv,
                             const std::filesystem::path& cwd) {
  CapturedOutput r;
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return r;
  SpawnOptions o;
  o.argv = argv;
  o.cwd = cwd;
  o.out = ChildFd::from(p[1]);
  o.err = ChildFd::null();
  auto pid = spawn_child(o);
  ::close(p[1]);
  if (!pid) {
    ::close(p[0]);
    return r;
  }
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(p[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    r.out.append(buf, static_cast<size_t>(n));
  }
  ::close(p[0]);
  auto code = wait_child(*pid);
  r.code = code ? *code : 128;
  while (!r.out.empty() && (r.out.back() == '\n' || r.out.back() == '\r')) r.out.pop_back();
  return r;
}

bool plain_environment_passes(std::string_view name) {
  static constexpr std::string_view kNames[] = {"PATH", "HOME", "LANG",    "LANGUAGE",
                                                "TZ",   "USER", "LOGNAME", "TMPDIR"};
  for (auto n : kNames)
    if (name == n) return true;
  return name.size() > 3 && name.substr(0, 3) == "LC_";
}

std::vector<std::string> plain_environment(const std::map<std::string, std::string>& extra) {
  std::vector<std::string> out;
  for (char** e = environ; *e; ++e) {
    std::string_view kv(*e);
    auto eq = kv.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view name = kv.substr(0, eq);
    if (plain_environment_passes(name) && !extra.count(std::string(name))) out.emplace_back(kv);
  }
  for (auto& [k, v] : extra) out.push_back(k + "=" + v);
  return out;
}

void cloexec_all_above_stdio() {
  // close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) (Linux 5.11) where available; else walk
  // /proc/self/fd.
#ifdef SYS_close_range
  if (::syscall(SYS_close_range, 3U, ~0U, 4U /*CLOSE_RANGE_CLOEXEC*/) == 0) return;
#endif
  long max = ::sysconf(_SC_OPEN_MAX);
  if (max < 0 || max > 1 << 20) max = 1 << 20;
  for (int fd = 3; fd < max; ++fd) {
    int f = ::fcntl(fd, F_GETFD);
    if (f >= 0 && !(f & FD_CLOEXEC)) ::fcntl(fd, F_SETFD, f | FD_CLOEXEC);
  }
}

}  // namespace drover
