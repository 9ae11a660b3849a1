#include "plugins/process.hpp"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

extern char** environ;

namespace drover {

std::vector<std::string> merged_environment(const std::map<std::string, std::string>& extra) {
  std::vector<std::string> out;
  for (char** e = environ; *e; ++e) {
    std::string_view kv(*e);
    auto eq = kv.find('=');
    std::string name(kv.substr(0, eq));
    if (!extra.count(name)) out.emplace_back(kv);
  }
  for (auto& [k, v] : extra) out.push_back(k + "=" + v);
  return out;
}

Result<int> spawn_and_wait(const std::vector<std::string>& argv,
                           const std::map<std::string, std::string>& extra_env,
                           const std::filesystem::path& cwd) {
  if (argv.empty()) return make_error("empty command");
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  auto env = merged_environment(extra_env);
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);

  // posix_spawn has no chdir (glibc 2.36 lacks addchdir_np's portability guarantee): the
  // try process's cwd is already the work dir; change it here only when asked otherwise.
  std::error_code ec;
  auto old = std::filesystem::current_path(ec);
  if (!cwd.empty() && cwd != old && ::chdir(cwd.c_str()) != 0)
    return make_error(cwd.string() + ": " + std::strerror(errno));
  pid_t pid;
  int rc = ::posix_spawnp(&pid, args[0], nullptr, nullptr, args.data(), envp.data());
  if (!cwd.empty() && cwd != old) (void)::chdir(old.c_str());
  if (rc != 0) return make_error("cannot start '" + argv[0] + "': " + std::strerror(rc));
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return make_error(std::string("waitpid: ") + std::strerror(errno));
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

}  // namespace drover
