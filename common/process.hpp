// The one process launcher (DESIGN.md §10): every child Drover starts — a task's command, a
// warm worker, git, an alert command, a tool a task type runs — is started here. The child
// gets exactly the descriptors 0, 1 and 2 the caller names (stdin /dev/null unless told
// otherwise); every other descriptor of this process is closed in the child, whether or not
// it is close-on-exec. Thread-safe (posix_spawn; nothing process-wide is changed).
#pragma once

#include <fcntl.h>
#include <sys/types.h>

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace drover {

// What a child gets on one of its standard descriptors.
struct ChildFd {
  enum class Kind { Null, Inherit, Fd, File };
  Kind kind = Kind::Null;
  int fd = -1;       // Fd: this process's descriptor, dup2'ed onto the child's
  std::string path;  // File: opened in the child
  int flags = 0;     // File: open(2) flags (O_CLOEXEC is irrelevant: it is dup'ed onto 0-2)
  int mode = 0644;   // File: creation mode

  static ChildFd null() { return {}; }
  static ChildFd inherit() { return make(Kind::Inherit); }
  static ChildFd from(int fd) { return make(Kind::Fd, fd); }
  static ChildFd append_to(std::string path) {
    return make(Kind::File, -1, std::move(path), O_WRONLY | O_CREAT | O_APPEND);
  }
  // The child's stderr onto its stdout (after stdout is set up).
  static ChildFd same_as_stdout() { return make(Kind::Fd, 1); }

 private:
  static ChildFd make(Kind k, int fd = -1, std::string path = {}, int flags = 0) {
    ChildFd c;
    c.kind = k;
    c.fd = fd;
    c.path = std::move(path);
    c.flags = flags;
    return c;
  }
};

struct SpawnOptions {
  std::vector<std::string> argv;  // argv[0] is looked up on PATH when it has no '/'
  std::string program;  // the file to run, when already found (resolve_program); else argv[0]'s
  std::optional<std::vector<std::string>> env;  // "NAME=value"; nullopt: this process's environ
  std::filesystem::path cwd;                    // empty: this process's
  ChildFd in = ChildFd::null();
  ChildFd out = ChildFd::inherit();
  ChildFd err = ChildFd::inherit();
  bool new_process_group = true;  // the child leads a group of its own (kill(-pid))
  bool default_signals = true;    // empty signal mask, SIGPIPE etc. back to default
};

// Raises this process's soft RLIMIT_NOFILE to its hard limit (systemd's default soft limit
// is 1024) and returns the soft limit now in force. Children started by spawn_child after it
// get the soft limit this process started with.
size_t raise_open_files_limit();

// The file `name` runs as, found on PATH as execvp would find it (a name with a '/' as it is);
// the error says "cannot start 'NAME': " and why (no such file, not executable).
Result<std::string> resolve_program(const std::string& name);

// Starts the child; returns its pid. An error names argv[0] and the reason (ENOENT etc.)
// when it cannot be started. The caller reaps it (wait_child or its own waitpid).
Result<pid_t> spawn_child(const SpawnOptions& opts);

// Waits for `pid` (retrying on EINTR). Returns the exit code, or 128 + signal when a
// signal ended it; an error when waitpid fails.
Result<int> wait_child(pid_t pid);

// spawn_child, then wait_child.
Result<int> run_child(const SpawnOptions& opts);

// waitpid(pid) for a child of spawn_child, without blocking unless `block`, retrying on
// EINTR: pid when it was reaped (its status in *status), 0 while it runs, -1 on an error.
pid_t reap_child(pid_t pid, int* status, bool block);

// Orphans. A process that made itself a child subreaper receives the orphaned descendants of
// its children — a task's command whose `drover worker` was killed, a process a task left
// behind — instead of init, so that it can learn how a command it did not start ended. It
// must reap them: reap_orphans() reaps those that have exited and returns (pid, wait status)
// for each, never touching a child of spawn_child (its caller waits for that one, with
// wait_child or reap_child). Linux only; become_subreaper fails elsewhere.
Status become_subreaper();
std::vector<std::pair<pid_t, int>> reap_orphans();

// Runs argv with stdout captured (stderr to /dev/null, stdin /dev/null) and waits; the
// output has trailing newlines removed. `code` is -1 when it could not be started.
struct CapturedOutput {
  int code = -1;
  std::string out;
};
CapturedOutput capture_child(const std::vector<std::string>& argv,
                             const std::filesystem::path& cwd = {});

// The environment a process we do not trust gets (a task, an alert command): only this
// process's variables that describe the host and the user — PATH, HOME, LANG, LANGUAGE,
// LC_*, TZ, USER, LOGNAME, TMPDIR — plus `extra` (which wins), as "NAME=value" strings.
// Nothing else passes: not DROVER_TOKEN, DROVER_SECRET_*, AWS_*, SMTP passwords.
std::vector<std::string> plain_environment(const std::map<std::string, std::string>& extra = {});
// Whether plain_environment passes NAME on.
bool plain_environment_passes(std::string_view name);

// Marks every descriptor above 2 of this process close-on-exec (at start-up, for
// descriptors inherited from the shell or opened by libraries without O_CLOEXEC).
void cloexec_all_above_stdio();

}  // namespace drover
