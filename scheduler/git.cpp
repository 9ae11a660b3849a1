#include "scheduler/git.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <vector>

extern char** environ;

namespace drover {

CommandOutput capture_command(const std::vector<std::string>& argv) {
  CommandOutput r;
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return r;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, p[1], 1);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid;
  int rc = ::posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(p[1]);
  if (rc != 0) {
    ::close(p[0]);
    return r;
  }
  char buf[4096];
  ssize_t n;
  while ((n = ::read(p[0], buf, sizeof buf)) > 0) r.out.append(buf, static_cast<size_t>(n));
  ::close(p[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
  while (!r.out.empty() && (r.out.back() == '\n' || r.out.back() == '\r')) r.out.pop_back();
  return r;
}

GitInfo git_info(const std::filesystem::path& dir) {
  GitInfo g;
  auto top = capture_command({"git", "-C", dir.string(), "rev-parse", "--show-toplevel"});
  if (top.code != 0) return g;
  g.toplevel = top.out;
  auto head = capture_command({"git", "-C", dir.string(), "rev-parse", "HEAD"});
  if (head.code == 0) g.commit = head.out;
  auto st = capture_command(
      {"git", "-C", dir.string(), "status", "--porcelain", "--untracked-files=no"});
  g.dirty = st.code != 0 || !st.out.empty();
  return g;
}

}  // namespace drover
