// Process facts from /proc, used to adopt tries that outlived a daemon: a pid is only
// "the same process" when its start time matches too (pids are reused). Thread-safe.
#pragma once

#include <chrono>
#include <string>

namespace drover {

// The wall clock in µs since the epoch: how tries' start and end times are written.
inline long long now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Start time of `pid` in clock ticks since boot (/proc/PID/stat field 22); 0 if absent.
long long process_start_ticks(int pid);
// True when `pid` exists, is not a zombie, and (when start != 0) started at `start`.
bool process_alive(int pid, long long start);
// "PID START [WRITER WRITER_START]" in TRY_DIR/pid: the try's process group leader and,
// when another process writes its result.json (the warm worker, for a command it spawned
// directly), that writer too. A try has ended only once both are gone: the command may
// exit a moment before its writer has written the result. {0,0,0,0} when absent.
struct PidFile {
  int pid = 0;
  long long start = 0;
  int writer = 0;
  long long writer_start = 0;
};
PidFile read_pid_file(const std::string& try_dir);
// The path of the running executable (/proc/self/exe, read once), or "drover" when unknown.
std::string self_exe_path();
void write_pid_file(const std::string& try_dir, int pid, long long start, int writer = 0,
                    long long writer_start = 0);
// The start of an armed try (a chained start) is claimed, once: the worker that starts it
// creates TRY_DIR/pid (O_EXCL) before it spawns the command and writes the line into it after
// (claim_pid_file: the open descriptor, or -1 when it exists already: disarmed); a daemon
// that recovers the armed try disarms it the same way (disarm_pid_file: true when it made the
// file, "disarmed\n": nothing will start the try; false: a worker claimed it first and the
// try runs, or is about to). Whoever creates the file first decides.
int claim_pid_file(const std::string& try_dir);
void write_claimed_pid_file(int fd, int pid, long long start, int writer, long long writer_start);
bool disarm_pid_file(const std::string& try_dir);

}  // namespace drover
